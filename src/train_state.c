/*
 * train_state.c: writing and reading the training checkpoint; see train_state.h.
 * Numbers that must come back bit for bit (generator states, loss sums) are
 * stored as hexadecimal bit patterns, not decimal.
 */
#include "train_state.h"

#include "metrics.h"
#include "vae_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_STATE_FORMAT "cuvae-checkpoint"
#define TRAIN_STATE_MAX_META 64

static uint64_t double_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int vae_train_state_save(const char *path, const vae_model *m, const vae_train_progress *p,
                         const vae_st_meta *settings, int n_settings)
{
    if (n_settings > TRAIN_STATE_MAX_META - 16)
        vae_fatal("train_state: %d settings exceed the metadata table", n_settings);
    vae_backend *be = m->be;
    size_t n = m->n_params;
    float *host = vae_calloc(3 * n, sizeof(float));
    be->download(be, host, m->params, n * sizeof(float));
    be->download(be, host + n, m->adam_m, n * sizeof(float));
    be->download(be, host + 2 * n, m->adam_v, n * sizeof(float));
    int adam_step;
    be->download(be, &adam_step, m->adam_step, sizeof adam_step);
    static const char *const names[3] = {"params", "adam.m", "adam.v"};
    for (int i = 0; i < 3; i++) {
        size_t bad = vae_first_non_finite(host + i * n, n);
        if (bad < n) { /* the training loop stops before this; the last line of defence */
            vae_set_error("%s: not saved: '%s' holds %s at element %zu (a diverged state is never written)", path,
                          names[i], vae_non_finite_name(host[i * n + bad]), bad);
            vae_free(host);
            return -1;
        }
    }
    vae_st_tensor_in t[3] = {
        {.name = "params", .ndim = 1, .shape = {(int64_t)n}, .data = host},
        {.name = "adam.m", .ndim = 1, .shape = {(int64_t)n}, .data = host + n},
        {.name = "adam.v", .ndim = 1, .shape = {(int64_t)n}, .data = host + 2 * n},
    };

    const vae_trainer_state *s = &p->trainer;
    char v[11][VAE_MAX_TERMS * 17 + 1];
    snprintf(v[0], sizeof v[0], "%d", s->epochs_done);
    snprintf(v[1], sizeof v[1], "%d", s->step);
    snprintf(v[2], sizeof v[2], "%" PRIu64, s->noise_offset);
    snprintf(v[3], sizeof v[3], "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64, s->order_rng.s[0],
             s->order_rng.s[1], s->order_rng.s[2], s->order_rng.s[3]);
    v[4][0] = '\0';
    for (int k = 0; k < s->n_terms; k++)
        snprintf(v[4] + strlen(v[4]), sizeof v[4] - strlen(v[4]), "%s%016" PRIx64, k ? "," : "",
                 double_bits(s->acc[k]));
    snprintf(v[5], sizeof v[5], "%.17g", s->seconds);
    snprintf(v[6], sizeof v[6], "%d", adam_step);
    snprintf(v[7], sizeof v[7], "%016" PRIx64, double_bits(p->best_val));
    snprintf(v[8], sizeof v[8], "%d", p->best_epoch);
    v[9][0] = '\0';
    for (int k = 0; k < s->n_terms; k++)
        snprintf(v[9] + strlen(v[9]), sizeof v[9] - strlen(v[9]), "%s%016" PRIx64, k ? "," : "",
                 double_bits(s->win_acc[k]));
    snprintf(v[10], sizeof v[10], "%ld", s->win_images);
    vae_st_meta meta[TRAIN_STATE_MAX_META] = {
        {"format", TRAIN_STATE_FORMAT}, {"format_version", "1"},   {"state.epochs_done", v[0]},
        {"state.step", v[1]},           {"state.noise_offset", v[2]}, {"state.order_rng", v[3]},
        {"state.acc", v[4]},            {"state.seconds", v[5]},   {"state.adam_step", v[6]},
        {"state.best_val", v[7]},       {"state.best_epoch", v[8]}, {"metrics", p->metrics},
        {"state.noise_generator", VAE_NOISE_GENERATOR},
        {"state.win_acc", v[9]},        {"state.win_images", v[10]}, {"metrics_steps", p->metrics_steps ? p->metrics_steps : ""},
    };
    int nm = 16;
    for (int i = 0; i < n_settings; i++)
        meta[nm++] = settings[i];
    int rc = vae_safetensors_write(path, t, 3, meta, nm);
    vae_free(host);
    return rc;
}

static int get_u64(const vae_train_checkpoint *ck, const char *path, const char *key, int hex, uint64_t *out)
{
    const char *v = vae_safetensors_meta_get(&ck->st, key);
    if (!v)
        return vae_set_error("%s: not a complete cuvae checkpoint: '%s' is missing", path, key);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, hex ? 16 : 10);
    if (end == v || *end || errno || v[0] == '-' || v[0] == ' ')
        return vae_set_error("%s: checkpoint value %s = '%s' is not valid", path, key, v);
    *out = x;
    return 0;
}

static int get_int(const vae_train_checkpoint *ck, const char *path, const char *key, int *out)
{
    uint64_t x = 0;
    if (get_u64(ck, path, key, 0, &x))
        return -1;
    if (x > (1u << 30))
        return vae_set_error("%s: checkpoint value %s = %llu is out of range", path, key, (unsigned long long)x);
    *out = (int)x;
    return 0;
}

/* n comma-separated 16-digit hex words of `key`. */
static int get_hex_words(const vae_train_checkpoint *ck, const char *path, const char *key, uint64_t *w, int n)
{
    const char *v = vae_safetensors_meta_get(&ck->st, key);
    if (!v)
        return vae_set_error("%s: not a complete cuvae checkpoint: '%s' is missing", path, key);
    if (strlen(v) != (size_t)(17 * n - 1))
        return vae_set_error("%s: checkpoint value %s = '%s' is not valid", path, key, v);
    for (int i = 0; i < n; i++) {
        char word[17];
        memcpy(word, v + 17 * i, 16);
        word[16] = 0;
        char *end;
        w[i] = strtoull(word, &end, 16);
        if (*end || (i + 1 < n && v[17 * i + 16] != ','))
            return vae_set_error("%s: checkpoint value %s = '%s' is not valid", path, key, v);
    }
    return 0;
}

/* The noise offset counts draws of one generator: a checkpoint of another (cuRAND's, before
 * our Philox; absent key) cannot continue its run bit for bit, so it is refused, not resumed
 * with other noise. */
static int check_noise_generator(const vae_train_checkpoint *ck, const char *path)
{
    const char *g = vae_safetensors_meta_get(&ck->st, "state.noise_generator");
    if (g && strcmp(g, VAE_NOISE_GENERATOR) == 0)
        return 0;
    return vae_set_error("%s: this checkpoint's noise came from %s%s%s, not %s, which this build draws: its run "
                         "cannot be continued bit for bit (docs/formats.md, \"Random numbers\"); start a new run",
                         path, g ? "'" : "cuRAND (a cuvae build before 2026-11-22)", g ? g : "", g ? "'" : "",
                         VAE_NOISE_GENERATOR);
}

int vae_train_checkpoint_read(const char *path, vae_train_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    if (vae_safetensors_read(path, &ck->st))
        return -1;
    const char *fmt = vae_safetensors_meta_get(&ck->st, "format");
    const char *ver = vae_safetensors_meta_get(&ck->st, "format_version");
    vae_train_progress *p = &ck->p;
    uint64_t w[4] = {0};
    if (!fmt || strcmp(fmt, TRAIN_STATE_FORMAT) != 0) {
        vae_set_error("%s: not a cuvae training checkpoint (metadata 'format' is not '%s')", path,
                      TRAIN_STATE_FORMAT);
        goto fail;
    }
    if (!ver || strcmp(ver, "1") != 0) {
        vae_set_error("%s: unsupported checkpoint format_version '%s' (this build reads 1)", path, ver ? ver : "");
        goto fail;
    }
    if (get_int(ck, path, "state.epochs_done", &p->trainer.epochs_done) ||
        get_int(ck, path, "state.step", &p->trainer.step) ||
        check_noise_generator(ck, path) || get_u64(ck, path, "state.noise_offset", 0, &p->trainer.noise_offset) ||
        get_int(ck, path, "state.adam_step", &p->adam_step) ||
        get_int(ck, path, "state.best_epoch", &p->best_epoch))
        goto fail;
    if (get_hex_words(ck, path, "state.order_rng", p->trainer.order_rng.s, 4))
        goto fail;
    /* one word per loss term of the model */
    const char *acc = vae_safetensors_meta_get(&ck->st, "state.acc");
    p->trainer.n_terms = acc ? (int)((strlen(acc) + 1) / 17) : 0;
    if (p->trainer.n_terms < 1 || p->trainer.n_terms > VAE_MAX_TERMS) {
        vae_set_error("%s: checkpoint value state.acc is missing or not valid", path);
        goto fail;
    }
    uint64_t acc_words[VAE_MAX_TERMS];
    if (get_hex_words(ck, path, "state.acc", acc_words, p->trainer.n_terms))
        goto fail;
    for (int k = 0; k < p->trainer.n_terms; k++)
        p->trainer.acc[k] = bits_double(acc_words[k]);
    if (get_hex_words(ck, path, "state.best_val", w, 1))
        goto fail;
    p->best_val = bits_double(w[0]);
    const char *secs = vae_safetensors_meta_get(&ck->st, "state.seconds");
    char *secs_end = NULL;
    p->trainer.seconds = secs ? strtod(secs, &secs_end) : 0;
    if (secs && (secs_end == secs || *secs_end || !isfinite(p->trainer.seconds) || p->trainer.seconds < 0)) {
        vae_set_error("%s: checkpoint value state.seconds = '%.40s' is not a number of seconds", path, secs);
        goto fail;
    }
    /* the step log's row in progress and its text: absent before the step log existed (none then) */
    if (vae_safetensors_meta_get(&ck->st, "state.win_images")) {
        uint64_t win[VAE_MAX_TERMS], images = 0;
        if (get_hex_words(ck, path, "state.win_acc", win, p->trainer.n_terms) ||
            get_u64(ck, path, "state.win_images", 0, &images))
            goto fail;
        for (int k = 0; k < p->trainer.n_terms; k++)
            p->trainer.win_acc[k] = bits_double(win[k]);
        if (images > (1u << 30)) {
            vae_set_error("%s: checkpoint value state.win_images = %llu is out of range", path,
                          (unsigned long long)images);
            goto fail;
        }
        p->trainer.win_images = (long)images;
    }
    p->metrics_steps = vae_safetensors_meta_get(&ck->st, "metrics_steps");
    if (!p->metrics_steps)
        p->metrics_steps = "";
    p->metrics = vae_safetensors_meta_get(&ck->st, "metrics");
    if (!p->metrics) {
        vae_set_error("%s: not a complete cuvae checkpoint: 'metrics' is missing", path);
        goto fail;
    }
    return 0;
fail:
    vae_safetensors_free(&ck->st);
    memset(ck, 0, sizeof *ck);
    return -1;
}

/* The tensors params, adam.m and adam.v: F32 vectors of n values each. */
static int check_state_tensors(const vae_train_checkpoint *ck, const char *path, size_t n)
{
    static const char *const names[3] = {"params", "adam.m", "adam.v"};
    for (int i = 0; i < 3; i++) {
        const vae_st_tensor *t = vae_safetensors_find(&ck->st, names[i]);
        if (!t)
            return vae_set_error("%s: tensor '%s' is missing", path, names[i]);
        if (strcmp(t->dtype, "F32") != 0 || t->ndim != 1 || t->shape[0] != (int64_t)n)
            return vae_set_error("%s: tensor '%s' holds %zu bytes of %s, but the model its settings describe has "
                                 "%zu parameters (F32): the file is damaged or its settings were changed",
                                 path, names[i], t->nbytes, t->dtype, n);
    }
    return 0;
}

/* The metrics text: the line header, then one row per finished epoch (k on row k), every cell a
 * number (nan included: a clustering metric of an unlabelled set). */
static int check_metrics(const vae_train_checkpoint *ck, const char *path, const char *header)
{
    const char *csv = ck->p.metrics;
    const size_t hlen = strlen(header);
    const char *nl = strchr(csv, '\n');
    const size_t line = nl ? (size_t)(nl - csv) : strlen(csv); /* the first line without its newline */
    if (!nl || line + 1 != hlen || memcmp(csv, header, hlen) != 0)
        return vae_set_error("%s: its metrics header '%.*s' is not the one of the model its settings describe "
                             "('%.*s'): the file is damaged or its settings were changed",
                             path, (int)(line > 300 ? 300 : line), csv, (int)(hlen ? hlen - 1 : 0), header);
    char what[4200];
    snprintf(what, sizeof what, "%s: its metrics", path);
    vae_metrics_table t;
    if (vae_metrics_parse(csv, strlen(csv), what, &t))
        return -1;
    int rc = 0;
    if (t.n_rows != ck->p.trainer.epochs_done)
        rc = vae_set_error("%s: its metrics hold %d rows, but state.epochs_done is %d: the file is damaged", path,
                           t.n_rows, ck->p.trainer.epochs_done);
    for (int r = 0; !rc && r < t.n_rows; r++)
        for (int c = 0; !rc && c < t.n_cols; c++) {
            const char *cell = t.cells[(size_t)r * t.n_cols + c];
            char *end;
            double v = strtod(cell, &end);
            if (end == cell || *end || (c == 0 && v != r + 1))
                rc = vae_set_error("%s: its metrics row %d has %s '%.40s' in column %s: the file is damaged", path,
                                   r + 1, c == 0 ? "epoch" : "the value", cell, t.names[c]);
        }
    vae_metrics_table_free(&t);
    return rc;
}

int vae_train_checkpoint_check(const vae_train_checkpoint *ck, const char *path, const vae_model *layout,
                               long batches, const char *header)
{
    const vae_trainer_state *s = &ck->p.trainer;
    if (check_state_tensors(ck, path, layout->n_params))
        return -1;
    if (s->n_terms != layout->n_terms)
        return vae_set_error("%s: state.acc sums %d loss terms, the model its settings describe has %d", path,
                             s->n_terms, layout->n_terms);
    for (int k = 0; k < s->n_terms; k++)
        if (!isfinite(s->acc[k]))
            return vae_set_error("%s: state.acc holds %s for the loss term '%s': a checkpoint holds finite sums "
                                 "(the file is damaged)",
                                 path, isnan(s->acc[k]) ? "NaN" : "an infinity", layout->term[k].name);
    for (int k = 0; k < s->n_terms; k++)
        if (!isfinite(s->win_acc[k]))
            return vae_set_error("%s: state.win_acc holds %s for the loss term '%s': a checkpoint holds finite sums "
                                 "(the file is damaged)",
                                 path, isnan(s->win_acc[k]) ? "NaN" : "an infinity", layout->term[k].name);
    if (s->step < 0 || s->step >= batches)
        return vae_set_error("%s: state.step %d is not a step of an epoch of %ld batches (0 to %ld): the file is "
                             "damaged",
                             path, s->step, batches, batches - 1);
    if (ck->p.best_epoch > s->epochs_done)
        return vae_set_error("%s: state.best_epoch %d is after the %d epochs done: the file is damaged", path,
                             ck->p.best_epoch, s->epochs_done);
    if (ck->p.best_epoch > 0 && !isfinite(ck->p.best_val))
        return vae_set_error("%s: state.best_val of epoch %d is not a finite number: the file is damaged", path,
                             ck->p.best_epoch);
    return check_metrics(ck, path, header);
}

const char *vae_train_checkpoint_setting(const vae_train_checkpoint *ck, const char *key)
{
    return vae_safetensors_meta_get(&ck->st, key);
}

int vae_train_checkpoint_restore(const vae_train_checkpoint *ck, const char *path, vae_model *m)
{
    if (ck->p.trainer.n_terms != m->n_terms)
        return vae_set_error("%s: the checkpoint sums %d loss terms, the recorded model has %d", path,
                             ck->p.trainer.n_terms, m->n_terms);
    static const char *const names[3] = {"params", "adam.m", "adam.v"};
    float *dst[3] = {m->params, m->adam_m, m->adam_v};
    for (int i = 0; i < 3; i++) {
        const vae_st_tensor *t = vae_safetensors_find(&ck->st, names[i]);
        if (!t || strcmp(t->dtype, "F32") != 0 || t->ndim != 1 || t->shape[0] != (int64_t)m->n_params)
            return vae_set_error("%s: tensor '%s' is missing or is not F32 (%zu) as the recorded model needs",
                                 path, names[i], m->n_params);
    }
    /* Each buffer through the host (the file's bytes need not be aligned for floats), checked finite first. */
    float *host = vae_calloc(m->n_params, sizeof(float));
    for (int i = 0; i < 3; i++) {
        memcpy(host, vae_safetensors_find(&ck->st, names[i])->data, m->n_params * sizeof(float));
        size_t bad = vae_first_non_finite(host, m->n_params);
        if (bad < m->n_params) {
            vae_set_error("%s: '%s' holds %s at element %zu: the run diverged (or the file is damaged) and cannot "
                          "be resumed",
                          path, names[i], vae_non_finite_name(host[bad]), bad);
            vae_free(host);
            return -1;
        }
        m->be->upload(m->be, dst[i], host, m->n_params * sizeof(float));
    }
    vae_free(host);
    m->be->upload(m->be, m->adam_step, &ck->p.adam_step, sizeof ck->p.adam_step);
    return 0;
}

void vae_train_checkpoint_free(vae_train_checkpoint *ck)
{
    vae_safetensors_free(&ck->st);
    memset(ck, 0, sizeof *ck);
}
