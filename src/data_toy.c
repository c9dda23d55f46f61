/*
 * data_toy.c: the data source of --data toy, the 1-D Gaussian-mixture toy (toy.h) drawn in
 * memory from the run's seed and its --toy-* settings: its model's defaults (a 1-D latent,
 * two tanh layers of 100, a Gaussian decoder with sigma VAE_TOY_SIGMA), its splits (drawn
 * again from a model file's recorded settings for the commands that read one), and the three
 * pictures of a finished run (toy_pictures.h) with the total-variation distance they measure,
 * and its loss curves.
 * See data_source.h.
 */
#include "data_source.h"
#include "pictures.h"
#include "toy.h"
#include "toy_pictures.h"
#include "train_settings.h"
#include "vae_util.h"
#include "variant.h"

#include <stdlib.h>
#include <string.h>

static int toy_selects(const char *data) { return data && strcmp(data, VAE_TOY_DATA) == 0; }

static const char *toy_what(const char *data) { return "--data toy"; }

static int toy_absolute(const char *data, char *out, size_t cap)
{
    snprintf(out, cap, "%s", VAE_TOY_DATA);
    return 0;
}

/* The toy's model where a flag did not say otherwise; it must keep the Gaussian likelihood. */
static int toy_new_run(vae_train_settings *t, const int *given)
{
    if (vae_toy_validate(&t->toy))
        return -1;
    vae_config *c = &t->s.cfg;
    if (!given[VAE_TS_HIDDEN]) {
        c->n_hidden = 2;
        c->hidden[0] = c->hidden[1] = 100;
    }
    if (!given[VAE_TS_LATENT])
        c->latent_dim = 1;
    if (!given[VAE_TS_ACT])
        c->act = VAE_ACT_TANH;
    if (!given[VAE_TS_LIKELIHOOD])
        c->likelihood = VAE_LIKELIHOOD_GAUSSIAN;
    if (!given[VAE_TS_SIGMA])
        c->sigma = VAE_TOY_SIGMA;
    if (c->likelihood != VAE_LIKELIHOOD_GAUSSIAN)
        return vae_set_error("--data toy --likelihood %s: the toy's values are real numbers, not in [0, 1]; it "
                             "takes --likelihood gaussian (its default)",
                             vae_likelihood_name(c->likelihood));
    vae_model parts; /* toy_generated.svg and its distance decode z ~ N(0, 1): a model needs that prior */
    if (vae_model_layout(&parts, c) == 0 && !vae_model_has_prior(&parts))
        return vae_set_error("--data toy --model %s: the toy's generated data and its total variation distance "
                             "decode z drawn from the prior, and this model has none (its code is deterministic)",
                             vae_variant_of(c)->name);
    return 0;
}

static int toy_apply(vae_train_settings *t, int k, const char *arg)
{
    if (k == VAE_TS_TOY_SNAPSHOT) { /* auto, off, or every N steps */
        if (strcmp(arg, "auto") == 0 || strcmp(arg, "off") == 0) {
            t->toy.snapshot_every = arg[0] == 'a' ? 0 : -1;
            return 0;
        }
        if (vae_cli_parse_int("--snapshot-every", arg, 1, 1 << 30, &t->toy.snapshot_every))
            return vae_set_error("--snapshot-every '%s': expected a number of steps from 1, auto (dense early: "
                                 "steps 0, 10, 20, 50, 100, 200, 500, ...) or off",
                                 arg);
        return 0;
    }
    return vae_toy_set(&t->toy, vae_train_setting_keys[k].flag, arg);
}

static void toy_text(const vae_train_settings *t, int k, char *buf)
{
    if (k == VAE_TS_TOY_SNAPSHOT) {
        if (t->toy.snapshot_every > 0)
            snprintf(buf, VAE_SETTING_MAX, "%d", t->toy.snapshot_every);
        else
            snprintf(buf, VAE_SETTING_MAX, "%s", t->toy.snapshot_every ? "off" : "auto");
        return;
    }
    vae_toy_text(&t->toy, vae_train_setting_keys[k].flag, buf, VAE_SETTING_MAX);
}

static int toy_load(const vae_train_settings *t, vae_dataset *train, vae_dataset *test)
{
    return vae_toy_datasets(&t->toy, t->s.seed, train, test);
}

/* The toy settings and the seed of the run that wrote `model` (train.toy_*, train.seed; a setting not
 * recorded takes its default) into t. 0, or -1 with vae_set_error. */
static int toy_recorded_settings(const char *model, vae_train_settings *t)
{
    vae_safetensors st;
    if (vae_safetensors_read(model, &st))
        return -1;
    memset(t, 0, sizeof *t);
    vae_run_settings_default(&t->s);
    vae_toy_default(&t->toy);
    int rc = -1;
    for (int k = 0; k < VAE_TS_N; k++) {
        const vae_train_setting_key *key = &vae_train_setting_keys[k];
        if (key->source != &vae_data_toy)
            continue;
        const char *v = vae_safetensors_meta_get(&st, key->key);
        if (v && vae_train_setting_apply(t, key->opt, v) != 1) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            vae_set_error("%s: recorded %s: %s", model, key->key, why);
            goto out;
        }
    }
    const char *seed = vae_safetensors_meta_get(&st, vae_train_setting_keys[VAE_TS_SEED].key);
    if (seed && vae_cli_parse_u64("train.seed", seed, &t->s.seed)) {
        vae_set_error("%s: recorded train.seed '%s' is not a number", model, seed);
        goto out;
    }
    rc = 0;
out:
    vae_safetensors_free(&st);
    return rc;
}

/* The split of the toy run that wrote `model`, drawn again from its recorded settings. */
static int toy_load_split(const char *data, const char *model, vae_split split, vae_dataset *out)
{
    vae_train_settings t;
    if (toy_recorded_settings(model, &t))
        return -1;
    const int train = split == VAE_SPLIT_TRAIN;
    return vae_toy_datasets(&t.toy, t.s.seed, train ? out : NULL, train ? NULL : out); /* the split alone */
}

static int toy_record(const char *data, vae_run_data *d)
{
    memset(d, 0, sizeof *d);
    return toy_absolute(data, d->dir, sizeof d->dir);
}

static int toy_recorded(const vae_safetensors *st, const char *model, const char *rec, vae_split split,
                        char *recorded, size_t cap, const char **data, FILE *log)
{
    *data = VAE_TOY_DATA;
    fprintf(log, "data: toy (recorded in the model: its %s set drawn again from the recorded train.toy_* settings "
                 "and train.seed)\n",
            split == VAE_SPLIT_TRAIN ? "training" : "test");
    return 0;
}

static void toy_inputs(const char *data, vae_split split, char paths[2][4096], const char **inputs, int *n) {}

static void toy_labels_name(const char *data, vae_split split, char *out, size_t cap)
{
    snprintf(out, cap, "--data toy");
}

static void toy_describe(const vae_train_settings *t, const vae_dataset *train, const vae_dataset *test, int n_val,
                         FILE *log)
{
    fprintf(log, "data: toy, a mixture of %d Gaussians drawn with --seed %llu (%d training, %d test values)\n",
            t->toy.k, (unsigned long long)t->s.seed, train->n + n_val, test->n);
}

/* The three pictures; the distance toy_generated.svg draws goes into the model's metadata. */
static int toy_pictures(vae_source_run_end *e)
{
    double tv, lo, hi;
    if (vae_toy_pictures_write(e->m, &e->ts->toy, e->train, e->test, e->dir, e->ts->s.seed, &tv))
        return -1;
    snprintf(e->meta_key, sizeof e->meta_key, "train.toy_tv");
    snprintf(e->meta_value, sizeof e->meta_value, "%.6f", tv);
    vae_toy_range(&e->ts->toy, &lo, &hi);
    snprintf(e->summary, sizeof e->summary,
             "toy: total variation distance %.4f between %d generated values x ~ p(x|z), z ~ N(0, 1), and the true "
             "mixture (histogram bins of %g on [%g, %g] and one bin beyond each end)\n",
             tv, VAE_TOY_TV_SAMPLES, VAE_TOY_TV_BIN_WIDTH, lo, hi);
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/metrics.csv", e->dir);
    int curves = vae_pictures_loss_curves(csv, e->dir, e->m->cfg.beta, "value");
    if (curves < 0)
        return -1;
#define TOY_PICTURE_LISTED(id, file) "," file
    snprintf(e->files, sizeof e->files, "%s%s", VAE_TOY_PICTURE_KINDS(TOY_PICTURE_LISTED),
             curves ? ",loss_curves.svg" : "");
#undef TOY_PICTURE_LISTED
    snprintf(e->tail, sizeof e->tail, " (no image pictures: the toy's rows are not images)");
    return 0;
}

/* The panels of the model as it stands, when --snapshot-every says so (or at the run's last step). */
static int toy_snapshot(const vae_source_step *s)
{
    if (!s->last && !vae_toy_snapshot_due(s->ts->toy.snapshot_every, s->step))
        return 0;
    if (s->ts->toy.snapshot_every < 0)
        return 0;
    double tv;
    return vae_toy_snapshot_write(s->m, &s->ts->toy, s->test, s->dir, s->ts->s.seed, s->step, s->epoch, &tv);
}

/* `cuvae plot` of a saved toy model: its data drawn again from the recorded settings, and the pictures a run
 * writes (with the run's seed, so the distance is the one recorded), and the loss curves beside the model. */
static int toy_plot(vae_model *m, const char *model, const char *out_dir, FILE *log)
{
    vae_train_settings t;
    if (toy_recorded_settings(model, &t))
        return -1;
    vae_dataset train, test;
    if (vae_toy_datasets(&t.toy, t.s.seed, &train, &test))
        return -1;
    double tv;
    int rc = vae_toy_pictures_write(m, &t.toy, &train, &test, out_dir, t.s.seed, &tv);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
    if (rc)
        return -1;
    int n = 0;
    for (int k = 0; k < VAE_TOY_N_PICTURES; k++, n++)
        fprintf(log, "wrote %s/%s\n", out_dir, vae_toy_pictures[k]);
    fprintf(log, "toy: total variation distance %.4f (toy_generated.svg)\n", tv);
    char csv[4200], dir[4096];
    const char *slash = strrchr(model, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - model) : 1, slash ? model : ".");
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    const int curves = vae_pictures_loss_curves(csv, out_dir, m->cfg.beta, "value");
    if (curves < 0)
        return -1;
    if (curves) {
        fprintf(log, "wrote %s/loss_curves.svg\n", out_dir);
        n++;
    }
    return n;
}

const vae_data_source vae_data_toy = {
    .name = "toy",
    .row = "value",
    .rate = "values/s",
    .selects = toy_selects,
    .what = toy_what,
    .absolute = toy_absolute,
    .new_run = toy_new_run,
    .apply = toy_apply,
    .text = toy_text,
    .load = toy_load,
    .load_split = toy_load_split,
    .record = toy_record,
    .recorded = toy_recorded,
    .inputs = toy_inputs,
    .labels_name = toy_labels_name,
    .describe = toy_describe,
    .pictures = toy_pictures,
    .snapshot = toy_snapshot,
    .plot = toy_plot,
};
