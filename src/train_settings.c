/*
 * train_settings.c: recording, applying and comparing a run's settings; see train_settings.h.
 */
#include "train_settings.h"

#include "vae_util.h"
#include "variant.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shortest decimal text that reads back as the same float (0.001, not 0.00100000005). */
static void float_text(float x, char *buf)
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, VAE_SETTING_MAX, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x)
            return;
    }
}

/* ---- the settings with texts (and parses) of their own: text_<name>, apply_<name> ------------ */
static void text_data(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", t->data_abs ? t->data_abs : "");
}

static void text_seed(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%llu", (unsigned long long)t->s.seed);
}

static void text_hidden(const vae_train_settings *t, int k, char *buf)
{
    buf[0] = 0;
    for (int i = 0; i < t->s.cfg.n_hidden; i++)
        snprintf(buf + strlen(buf), VAE_SETTING_MAX - strlen(buf), "%s%d", i ? "," : "", t->s.cfg.hidden[i]);
}

static void text_act(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", vae_act_name(t->s.cfg.act));
}

static void text_likelihood(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", vae_likelihood_name(t->s.cfg.likelihood));
}

static void text_model(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", vae_variant_of(&t->s.cfg)->name);
}

static void text_math(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", t->s.tf32 ? "tf32" : "fp32");
}

static void text_lr_schedule(const vae_train_settings *t, int k, char *buf)
{
    vae_schedule_lr_text(&t->schedule, buf, VAE_SETTING_MAX);
}

static int apply_lr_schedule(vae_train_settings *t, int k, const char *arg)
{
    return vae_schedule_parse_lr(arg, &t->schedule);
}

static void text_temperature(const vae_train_settings *t, int k, char *buf)
{
    float_text(t->schedule.temperature > 0.0f ? t->schedule.temperature : VAE_TEMPERATURE_DEFAULT, buf);
}

static int apply_temperature(vae_train_settings *t, int k, const char *arg)
{
    return vae_cli_parse_float("--temperature", arg, 1e-3, 100.0, &t->schedule.temperature);
}

static void text_temperature_anneal(const vae_train_settings *t, int k, char *buf)
{
    if (!(t->schedule.temperature_end > 0.0f))
        snprintf(buf, VAE_SETTING_MAX, "off");
    else
        float_text(t->schedule.temperature_end, buf);
}

static int apply_temperature_anneal(vae_train_settings *t, int k, const char *arg)
{
    if (strcmp(arg, "off") == 0) {
        t->schedule.temperature_end = 0.0f;
        return 0;
    }
    return vae_cli_parse_float("--temperature-anneal", arg, 1e-3, 100.0, &t->schedule.temperature_end);
}

static const vae_capacity *capacity_of(const vae_train_settings *t, int k)
{
    return k == VAE_TS_CAPACITY_Z ? &t->s.cfg.cap_z : &t->s.cfg.cap_c;
}

static void text_capacity(const vae_train_settings *t, int k, char *buf)
{
    const vae_capacity *cap = capacity_of(t, k);
    if (!(cap->gamma > 0))
        snprintf(buf, VAE_SETTING_MAX, "off");
    else
        snprintf(buf, VAE_SETTING_MAX, "%g,%d,%g", (double)cap->max, cap->iters, (double)cap->gamma);
}

static int apply_capacity(vae_train_settings *t, int k, const char *arg)
{
    vae_capacity *cap = (vae_capacity *)capacity_of(t, k);
    if (strcmp(arg, "off") == 0) {
        *cap = (vae_capacity){0};
        return 0;
    }
    return vae_capacity_parse(vae_train_setting_keys[k].flag, arg, cap);
}

static void text_condition(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", vae_condition_name(t->s.cfg.condition));
}

static int apply_condition(vae_train_settings *t, int k, const char *arg)
{
    return vae_condition_parse(arg, &t->s.cfg.condition);
}

static void text_binarize(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", vae_binarize_name(t->binarize));
}

static int apply_binarize(vae_train_settings *t, int k, const char *arg)
{
    return vae_binarize_parse_train(arg, &t->binarize);
}

static void text_binarize_test(const vae_train_settings *t, int k, char *buf)
{
    snprintf(buf, VAE_SETTING_MAX, "%s", t->binarize_test_redraw ? "redraw" : "fixed");
}

static int apply_binarize_test(vae_train_settings *t, int k, const char *arg)
{
    if (strcmp(arg, "fixed") && strcmp(arg, "redraw"))
        return vae_set_error("--binarize-test: '%s' is neither fixed nor redraw", arg);
    t->binarize_test_redraw = strcmp(arg, "redraw") == 0;
    return 0;
}

static void text_steps(const vae_train_settings *t, int k, char *buf)
{
    if (t->steps > 0)
        snprintf(buf, VAE_SETTING_MAX, "%d", t->steps);
    else
        snprintf(buf, VAE_SETTING_MAX, "off");
}

static int apply_steps(vae_train_settings *t, int k, const char *arg)
{
    if (strcmp(arg, "off") == 0) {
        t->steps = 0;
        return 0;
    }
    return vae_cli_parse_int("--steps", arg, 1, (1L << 31) - 1, &t->steps);
}

/* ---- the table (train_settings.h VAE_TRAIN_SETTINGS) -------------------------------------- */
typedef enum { CODEC_INT, CODEC_FLOAT, CODEC_FN, CODEC_SOURCE } codec_kind;

typedef struct {
    codec_kind kind;
    size_t offset;   /* INT, FLOAT: the member of vae_train_settings */
    double lo, hi;   /* INT, FLOAT of train's own: the range its flag takes */
    int is_float;    /* a resume compares its value as a float (0.001 == 1e-3) */
    void (*text)(const vae_train_settings *t, int k, char *buf);  /* FN */
    int (*apply)(vae_train_settings *t, int k, const char *arg);  /* FN of train's own */
} codec;

#define INT(field, lo_, hi_) {.kind = CODEC_INT, .offset = offsetof(vae_train_settings, field), .lo = lo_, .hi = hi_}
#define FLOAT(field, lo_, hi_)                                                                                    \
    {.kind = CODEC_FLOAT, .offset = offsetof(vae_train_settings, field), .lo = lo_, .hi = hi_, .is_float = 1}
#define SHARED_INT(field) {.kind = CODEC_INT, .offset = offsetof(vae_train_settings, field)}
#define SHARED_FLOAT(field) {.kind = CODEC_FLOAT, .offset = offsetof(vae_train_settings, field), .is_float = 1}
#define FN(name, is_float_) {.kind = CODEC_FN, .text = text_##name, .apply = apply_##name, .is_float = is_float_}
#define SHARED_FN(name) {.kind = CODEC_FN, .text = text_##name}
#define SOURCE(src) {.kind = CODEC_SOURCE}

#define KEY_ROW(id, key_, flag_, opt_, absent_, codec_, step_)                                                   \
    {.key = key_, .flag = flag_, .opt = (opt_) ? (opt_) : VAE_TS_OPT(VAE_TS_##id), .absent = absent_,            \
     .source = SOURCE_OF_##codec_, .step = step_},
#define SOURCE_OF_INT(...) NULL
#define SOURCE_OF_FLOAT(...) NULL
#define SOURCE_OF_SHARED_INT(...) NULL
#define SOURCE_OF_SHARED_FLOAT(...) NULL
#define SOURCE_OF_FN(...) NULL
#define SOURCE_OF_SHARED_FN(...) NULL
#define SOURCE_OF_SOURCE(src) &src
const vae_train_setting_key vae_train_setting_keys[VAE_TS_N] = {VAE_TRAIN_SETTINGS(KEY_ROW)};

#define CODEC_ROW(id, key_, flag_, opt_, absent_, codec_, step_) codec_,
static const codec codecs[VAE_TS_N] = {VAE_TRAIN_SETTINGS(CODEC_ROW)};

/* The canonical text of setting k: what the checkpoint records and a resume compares. */
void vae_train_setting_text(const vae_train_settings *t, int k, char *buf)
{
    const codec *c = &codecs[k];
    const char *field = (const char *)t + c->offset;
    switch (c->kind) {
    case CODEC_INT: snprintf(buf, VAE_SETTING_MAX, "%d", *(const int *)field); break;
    case CODEC_FLOAT: float_text(*(const float *)field, buf); break;
    case CODEC_FN: c->text(t, k, buf); break;
    case CODEC_SOURCE: vae_train_setting_keys[k].source->text(t, k, buf); break;
    }
}

void vae_train_setting_options(struct option *out, const struct option *fixed, int steps_only)
{
    int n = 0;
    for (; fixed[n].name; n++)
        out[n] = fixed[n];
    for (int k = 0; k < VAE_TS_N; k++)
        if (vae_train_setting_keys[k].opt == VAE_TS_OPT(k) && (!steps_only || vae_train_setting_keys[k].step))
            out[n++] = (struct option){vae_train_setting_keys[k].flag + 2, required_argument, 0, VAE_TS_OPT(k)};
    out[n] = (struct option){0, 0, 0, 0};
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
    if (given[VAE_TS_STEPS] && given[VAE_TS_EPOCHS])
        return vae_set_error("--steps %d and --epochs %d both set the run's length: give one", t->steps, t->s.epochs);
    for (int k = 0; k < VAE_TS_N; k++) {
        const vae_data_source *owner = vae_train_setting_keys[k].source;
        if (given[k] && owner && owner != src)
            return vae_set_error("%s: only with %s", vae_train_setting_keys[k].flag, owner->what(NULL));
    }
    if (given[VAE_TS_BINARIZE_TEST] && t->binarize != VAE_BINARIZE_DYNAMIC)
        return vae_set_error("--binarize-test: only with --binarize dynamic (static is one fixed draw of both sets; "
                             "none leaves the values as they are)");
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
    const int k = opt - VAE_TS_OPT(0);
    if (k < 0 || k >= VAE_TS_N || vae_train_setting_keys[k].opt != opt)
        return 0;
    const codec *c = &codecs[k];
    const char *flag = vae_train_setting_keys[k].flag;
    char *field = (char *)t + c->offset;
    switch (c->kind) {
    case CODEC_INT: return vae_cli_parse_int(flag, arg, (long)c->lo, (long)c->hi, (int *)field) ? -1 : 1;
    case CODEC_FLOAT: return vae_cli_parse_float(flag, arg, c->lo, c->hi, (float *)field) ? -1 : 1;
    case CODEC_FN: return c->apply(t, k, arg) ? -1 : 1;
    case CODEC_SOURCE: return vae_train_setting_keys[k].source->apply(t, k, arg) ? -1 : 1;
    }
    return 0;
}

/* Compare the flags given with the recorded settings; -1 with a message listing what differs. */
int vae_train_settings_check(const vae_train_checkpoint *ck, const vae_train_settings *given_ts, const int *given,
                             const char *dir)
{
    char diff[16384] = "", mine[VAE_SETTING_MAX];
    for (int k = 0; k < VAE_TS_N; k++) {
        if (k == VAE_TS_EPOCHS || k == VAE_TS_STEPS || !given[k])
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
        if (rec && codecs[k].is_float && strtof(rec, NULL) == strtof(mine, NULL))
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
        return vae_set_error("--resume %s: %s; only --epochs or --steps (and --device, --threads, --quiet) may change on resume", dir,
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


/* Whether the file's architecture (its "architecture" metadata) has a latent of this kind. */
static int has_latent_kind(const vae_safetensors *st, const char *kind)
{
    const char *text = vae_safetensors_meta_get(st, "architecture");
    json_t *arch = text ? json_loads(text, 0, NULL) : NULL, *latent;
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(arch, "latents"), i, latent)
        found |= json_is_string(json_object_get(latent, "kind")) &&
                 strcmp(json_string_value(json_object_get(latent, "kind")), kind) == 0;
    json_decref(arch);
    return found;
}

int vae_train_setting_applies(const char *key, const vae_safetensors *st)
{
    int k = 0;
    while (k < VAE_TS_N && strcmp(vae_train_setting_keys[k].key, key) != 0)
        k++;
    if (k == VAE_TS_N)
        return 1; /* not a setting */
    const vae_data_source *owner = vae_train_setting_keys[k].source;
    const char *data = vae_safetensors_meta_get(st, "train.data"), *lik = vae_safetensors_meta_get(st, "likelihood");
    const char *model = vae_safetensors_meta_get(st, "train.model");
    const vae_variant *v = model ? vae_variant_find(model) : NULL;
    if (owner)
        return data && vae_data_source_of(data) == owner;
    switch (k) {
    case VAE_TS_SIGMA: return lik && strcmp(lik, vae_likelihood_name(VAE_LIKELIHOOD_GAUSSIAN)) == 0;
    case VAE_TS_BINARIZE: return !lik || strcmp(lik, vae_likelihood_name(VAE_LIKELIHOOD_BERNOULLI)) == 0;
    case VAE_TS_BINARIZE_TEST: { /* only a dynamic binarization draws the test set apart from training */
        const char *b = vae_safetensors_meta_get(st, "train.binarize");
        return b && strcmp(b, vae_binarize_name(VAE_BINARIZE_DYNAMIC)) == 0;
    }
    case VAE_TS_DISC:
    case VAE_TS_TEMPERATURE:
    case VAE_TS_TEMPERATURE_ANNEAL: return has_latent_kind(st, "categorical");
    case VAE_TS_CAPACITY_Z:
    case VAE_TS_CAPACITY_C: return !v || v->capacities;
    default: return 1;
    }
}
