/*
 * train_settings.c: recording, applying and comparing a run's settings; see train_settings.h.
 */
#include "train_settings.h"

#include "vae_util.h"
#include "variant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Recorded key, command-line flag and option code of each setting. */
const vae_train_setting_key vae_train_setting_keys[VAE_TS_N] = {
    [VAE_TS_DATA] = {"train.data", "--data", VAE_OPT_DATA},
    [VAE_TS_BATCH] = {"train.batch_size", "--batch-size", VAE_OPT_BATCH},
    [VAE_TS_LR] = {"train.lr", "--lr", VAE_OPT_LR},
    [VAE_TS_SEED] = {"train.seed", "--seed", VAE_OPT_SEED},
    [VAE_TS_HIDDEN] = {"train.hidden", "--hidden", VAE_OPT_HIDDEN},
    [VAE_TS_LATENT] = {"train.latent", "--latent", VAE_OPT_LATENT},
    [VAE_TS_ACT] = {"train.activation", "--activation", VAE_OPT_ACT},
    [VAE_TS_BETA] = {"train.beta", "--beta", VAE_OPT_BETA},
    [VAE_TS_SAMPLES] = {"train.samples", "--samples", VAE_OPT_SAMPLES},
    [VAE_TS_VAL] = {"train.val_fraction", "--val-fraction", VAE_OPT_VAL},
    [VAE_TS_CKPT] = {"train.checkpoint_every", "--checkpoint-every", VAE_OPT_CKPT_EVERY},
    [VAE_TS_CLIP] = {"train.clip_grad_norm", "--clip-grad-norm", VAE_OPT_CLIP},
    [VAE_TS_LR_SCHEDULE] = {"train.lr_schedule", "--lr-schedule", VAE_OPT_LR_SCHEDULE, "constant"},
    [VAE_TS_KL_WARMUP] = {"train.kl_warmup", "--kl-warmup", VAE_OPT_KL_WARMUP, "0"},
    [VAE_TS_LIKELIHOOD] = {"train.likelihood", "--likelihood", VAE_OPT_LIKELIHOOD, "bernoulli"},
    [VAE_TS_SIGMA] = {"train.sigma", "--sigma", VAE_OPT_SIGMA, "1"},
    [VAE_TS_MODEL] = {"train.model", "--model", VAE_OPT_MODEL_KIND, "vae"},
    [VAE_TS_DISC] = {"train.disc", "--disc", VAE_OPT_DISC, "10"},
    [VAE_TS_TEMPERATURE] = {"train.temperature", "--temperature", VAE_OPT_TEMPERATURE, "0.67"},
    [VAE_TS_TEMPERATURE_ANNEAL] = {"train.temperature_anneal", "--temperature-anneal", VAE_OPT_TEMPERATURE_ANNEAL,
                                   "off"},
    [VAE_TS_CAPACITY_Z] = {"train.capacity_z", "--capacity-z", VAE_OPT_CAPACITY_Z, "off"},
    [VAE_TS_CAPACITY_C] = {"train.capacity_c", "--capacity-c", VAE_OPT_CAPACITY_C, "off"},
    [VAE_TS_BINARIZE] = {"train.binarize", "--binarize", VAE_OPT_BINARIZE, "none"},
    [VAE_TS_TOY_WEIGHTS] = {"train.toy_weights", "--toy-weights", VAE_OPT_TOY_WEIGHTS, VAE_TOY_DEFAULT_WEIGHTS, &vae_data_toy},
    [VAE_TS_TOY_MEANS] = {"train.toy_means", "--toy-means", VAE_OPT_TOY_MEANS, VAE_TOY_DEFAULT_MEANS, &vae_data_toy},
    [VAE_TS_TOY_STDS] = {"train.toy_stds", "--toy-stds", VAE_OPT_TOY_STDS, VAE_TOY_DEFAULT_STDS, &vae_data_toy},
    [VAE_TS_TOY_N] = {"train.toy_n", "--toy-n", VAE_OPT_TOY_N, VAE_TOY_DEFAULT_N, &vae_data_toy},
    [VAE_TS_MATH] = {"train.math", "--tf32", VAE_OPT_TF32, "fp32"}, /* the GEMMs' precision on CUDA */
    [VAE_TS_EPOCHS] = {"train.epochs", "--epochs", VAE_OPT_EPOCHS},
};

/* The shortest decimal text that reads back as the same float (0.001, not 0.00100000005). */
static void float_text(float x, char *buf)
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, VAE_SETTING_MAX, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x)
            return;
    }
}

/* The canonical text of setting k: what the checkpoint records and a resume compares. */
void vae_train_setting_text(const vae_train_settings *t, int k, char *buf)
{
    const vae_run_settings *s = &t->s;
    switch (k) {
    case VAE_TS_DATA: snprintf(buf, VAE_SETTING_MAX, "%s", t->data_abs ? t->data_abs : ""); break;
    case VAE_TS_BATCH: snprintf(buf, VAE_SETTING_MAX, "%d", s->batch_size); break;
    case VAE_TS_LR: float_text(s->lr, buf); break;
    case VAE_TS_SEED: snprintf(buf, VAE_SETTING_MAX, "%llu", (unsigned long long)s->seed); break;
    case VAE_TS_HIDDEN:
        buf[0] = 0;
        for (int i = 0; i < s->cfg.n_hidden; i++)
            snprintf(buf + strlen(buf), VAE_SETTING_MAX - strlen(buf), "%s%d", i ? "," : "", s->cfg.hidden[i]);
        break;
    case VAE_TS_LATENT: snprintf(buf, VAE_SETTING_MAX, "%d", s->cfg.latent_dim); break;
    case VAE_TS_ACT: snprintf(buf, VAE_SETTING_MAX, "%s", vae_act_name(s->cfg.act)); break;
    case VAE_TS_BETA: float_text(s->cfg.beta, buf); break;
    case VAE_TS_SAMPLES: snprintf(buf, VAE_SETTING_MAX, "%d", t->samples); break;
    case VAE_TS_VAL: float_text(t->val_fraction, buf); break;
    case VAE_TS_CKPT: snprintf(buf, VAE_SETTING_MAX, "%d", t->checkpoint_every); break;
    case VAE_TS_CLIP: float_text(t->clip_grad_norm, buf); break;
    case VAE_TS_LR_SCHEDULE: vae_schedule_lr_text(&t->schedule, buf, VAE_SETTING_MAX); break;
    case VAE_TS_KL_WARMUP: float_text(t->schedule.kl_warmup_epochs, buf); break;
    case VAE_TS_LIKELIHOOD: snprintf(buf, VAE_SETTING_MAX, "%s", vae_likelihood_name(s->cfg.likelihood)); break;
    case VAE_TS_SIGMA: float_text(s->cfg.sigma, buf); break;
    case VAE_TS_MODEL: snprintf(buf, VAE_SETTING_MAX, "%s", vae_variant_of(&s->cfg)->name); break;
    case VAE_TS_DISC: snprintf(buf, VAE_SETTING_MAX, "%d", s->cfg.disc); break;
    case VAE_TS_TEMPERATURE:
        float_text(t->schedule.temperature > 0.0f ? t->schedule.temperature : VAE_TEMPERATURE_DEFAULT, buf);
        break;
    case VAE_TS_TEMPERATURE_ANNEAL:
        if (!(t->schedule.temperature_end > 0.0f))
            snprintf(buf, VAE_SETTING_MAX, "off");
        else
            float_text(t->schedule.temperature_end, buf);
        break;
    case VAE_TS_CAPACITY_Z:
    case VAE_TS_CAPACITY_C: {
        const vae_capacity *cap = k == VAE_TS_CAPACITY_Z ? &s->cfg.cap_z : &s->cfg.cap_c;
        if (!(cap->gamma > 0)) {
            snprintf(buf, VAE_SETTING_MAX, "off");
            break;
        }
        snprintf(buf, VAE_SETTING_MAX, "%g,%d,%g", (double)cap->max, cap->iters, (double)cap->gamma);
        break;
    }
    case VAE_TS_BINARIZE: snprintf(buf, VAE_SETTING_MAX, "%s", vae_binarize_name(t->binarize)); break;
    case VAE_TS_TOY_WEIGHTS:
    case VAE_TS_TOY_MEANS:
    case VAE_TS_TOY_STDS:
    case VAE_TS_TOY_N: vae_train_setting_keys[k].source->text(t, k, buf); break;
    case VAE_TS_MATH: snprintf(buf, VAE_SETTING_MAX, "%s", s->tf32 ? "tf32" : "fp32"); break;
    case VAE_TS_EPOCHS: snprintf(buf, VAE_SETTING_MAX, "%d", s->epochs); break;
    }
}

void vae_train_settings_model_defaults(vae_train_settings *t, const int *given)
{
    const vae_variant_defaults *d = vae_variant_of(&t->s.cfg)->defaults;
    if (!d)
        return;
    if (d->n_hidden && !given[VAE_TS_HIDDEN]) {
        t->s.cfg.n_hidden = d->n_hidden;
        memcpy(t->s.cfg.hidden, d->hidden, (size_t)d->n_hidden * sizeof d->hidden[0]);
    }
    if (d->latent_dim && !given[VAE_TS_LATENT])
        t->s.cfg.latent_dim = d->latent_dim;
    if (d->batch_size && !given[VAE_TS_BATCH])
        t->s.batch_size = d->batch_size;
    if (d->lr > 0.0f && !given[VAE_TS_LR])
        t->s.lr = d->lr;
}

int vae_train_setting_parse(vae_train_settings *t, int *given, int opt, const char *arg)
{
    int r = vae_train_setting_apply(t, opt, arg);
    if (r > 0)
        for (int k = 0; k < VAE_TS_N; k++)
            if (vae_train_setting_keys[k].opt == opt)
                given[k] = 1;
    return r;
}

int vae_train_settings_new_run(vae_train_settings *t, const int *given)
{
    const vae_data_source *src = vae_data_source_of(t->s.data_dir);
    for (int k = 0; k < VAE_TS_N; k++) {
        const vae_data_source *owner = vae_train_setting_keys[k].source;
        if (given[k] && owner && owner != src)
            return vae_set_error("%s: only with %s", vae_train_setting_keys[k].flag, owner->what(NULL));
    }
    if (src->new_run(t, given))
        return -1;
    vae_train_settings_model_defaults(t, given);
    return 0;
}

/* Apply one train-only or shared option; 1 handled, 0 not ours, -1 bad value. */
int vae_train_setting_apply(vae_train_settings *t, int opt, const char *arg)
{
    int r = vae_cli_apply_shared(&t->s, opt, arg);
    if (r)
        return r;
    if (opt == VAE_OPT_SAMPLES)
        return vae_cli_parse_int("--samples", arg, 1, 4096, &t->samples) ? -1 : 1;
    if (opt == VAE_OPT_CKPT_EVERY)
        return vae_cli_parse_int("--checkpoint-every", arg, 1, 100000, &t->checkpoint_every) ? -1 : 1;
    if (opt == VAE_OPT_VAL)
        return vae_cli_parse_float("--val-fraction", arg, 0.0, 0.9, &t->val_fraction) ? -1 : 1;
    if (opt == VAE_OPT_CLIP)
        return vae_cli_parse_float("--clip-grad-norm", arg, 0.0, 1e12, &t->clip_grad_norm) ? -1 : 1;
    if (opt == VAE_OPT_LR_SCHEDULE)
        return vae_schedule_parse_lr(arg, &t->schedule) ? -1 : 1;
    if (opt == VAE_OPT_KL_WARMUP)
        return vae_cli_parse_float("--kl-warmup", arg, 0.0, 1e6, &t->schedule.kl_warmup_epochs) ? -1 : 1;
    if (opt == VAE_OPT_TEMPERATURE)
        return vae_cli_parse_float("--temperature", arg, 1e-3, 100.0, &t->schedule.temperature) ? -1 : 1;
    if (opt == VAE_OPT_TEMPERATURE_ANNEAL) {
        if (strcmp(arg, "off") == 0) {
            t->schedule.temperature_end = 0.0f;
            return 1;
        }
        return vae_cli_parse_float("--temperature-anneal", arg, 1e-3, 100.0, &t->schedule.temperature_end) ? -1 : 1;
    }
    if (opt == VAE_OPT_CAPACITY_Z || opt == VAE_OPT_CAPACITY_C) {
        vae_capacity *cap = opt == VAE_OPT_CAPACITY_Z ? &t->s.cfg.cap_z : &t->s.cfg.cap_c;
        if (strcmp(arg, "off") == 0) {
            *cap = (vae_capacity){0};
            return 1;
        }
        return vae_capacity_parse(opt == VAE_OPT_CAPACITY_Z ? "--capacity-z" : "--capacity-c", arg, cap) ? -1 : 1;
    }
    if (opt == VAE_OPT_BINARIZE)
        return vae_binarize_parse_train(arg, &t->binarize) ? -1 : 1;
    for (int k = 0; k < VAE_TS_N; k++)
        if (opt == vae_train_setting_keys[k].opt && vae_train_setting_keys[k].source)
            return vae_train_setting_keys[k].source->apply(t, k, arg) ? -1 : 1;
    return 0;
}

/* Compare the flags given with the recorded settings; -1 with a message listing what differs. */
int vae_train_settings_check(const vae_train_checkpoint *ck, const vae_train_settings *given_ts, const int *given,
                             const char *dir)
{
    char diff[16384] = "", mine[VAE_SETTING_MAX];
    for (int k = 0; k < VAE_TS_N; k++) {
        if (k == VAE_TS_EPOCHS || !given[k])
            continue;
        const char *rec = vae_train_checkpoint_setting(ck, vae_train_setting_keys[k].key);
        if (k == VAE_TS_DATA) {
            char abs[4096];
            const vae_data_source *src = vae_data_source_of(given_ts->s.data_dir);
            if (src->absolute(given_ts->s.data_dir, abs, sizeof abs) || vae_run_escape(abs, mine, sizeof mine))
                snprintf(mine, sizeof mine, "%s", given_ts->s.data_dir);
        } else {
            vae_train_setting_text(given_ts, k, mine);
        }
        if (!rec)
            rec = vae_train_setting_keys[k].absent;
        if (rec && strcmp(rec, mine) == 0)
            continue;
        int is_float =
            k == VAE_TS_LR || k == VAE_TS_BETA || k == VAE_TS_VAL || k == VAE_TS_CLIP || k == VAE_TS_KL_WARMUP ||
            k == VAE_TS_SIGMA || k == VAE_TS_TEMPERATURE;
        if (rec && is_float && strtof(rec, NULL) == strtof(mine, NULL))
            continue;
        size_t len = strlen(diff);
        if (k == VAE_TS_MATH) /* a flag without a value: given, it asks for tf32 */
            snprintf(diff + len, sizeof diff - len, "%s--tf32 (the run has %s)", len ? ", " : "",
                     rec ? rec : "nothing recorded");
        else
            snprintf(diff + len, sizeof diff - len, "%s%s %.1000s (the run has %.1000s)", len ? ", " : "",
                     vae_train_setting_keys[k].flag, mine, rec ? rec : "nothing recorded");
    }
    if (diff[0])
        return vae_set_error("--resume %s: %s; only --epochs (and --device, --threads, --quiet) may change on resume", dir,
                             diff);
    return 0;
}

/* The settings recorded in ck, applied to t (as if given as flags). */
int vae_train_settings_recorded(const vae_train_checkpoint *ck, const char *path, vae_train_settings *t)
{
    for (int k = 0; k < VAE_TS_N; k++) {
        const char *v = vae_train_checkpoint_setting(ck, vae_train_setting_keys[k].key);
        if (!v)
            v = vae_train_setting_keys[k].absent;
        if (!v)
            return vae_set_error("%s: not a complete cuvae checkpoint: '%s' is missing", path,
                                 vae_train_setting_keys[k].key);
        if (k == VAE_TS_DATA)
            continue;
        if (vae_train_setting_apply(t, vae_train_setting_keys[k].opt, v) != 1) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            return vae_set_error("%s: recorded %s: %s", path, vae_train_setting_keys[k].key, why);
        }
    }
    return 0;
}

/* The recorded data files must still be the same bytes. */
int vae_train_settings_check_data(const vae_train_checkpoint *ck, const char *path, const vae_run_data *d)
{
    for (int i = 0; i < d->n_files; i++) {
        char key[96];
        snprintf(key, sizeof key, "train.data.sha256.%s", vae_run_data_name(d, i));
        const char *rec = vae_train_checkpoint_setting(ck, key);
        if (!rec || strcmp(rec, d->sha256[i]) != 0)
            return vae_set_error("%s: SHA-256 %s differs from the one the run recorded in %s (%s): the data "
                                 "changed since the run started",
                                 d->path[i], d->sha256[i], path, rec ? rec : "none");
    }
    return 0;
}

