/*
 * run_log.c: what a training run leaves besides its pictures: the metrics text (metrics.csv,
 * and metrics.jsonl made from it), the checkpoint and model files with the run's settings and
 * data digests as metadata, and provenance.txt; see train_run.h.
 */
#include "train_run.h"

#include "checkpoint.h"
#include "metrics.h"
#include "run_dir.h"
#include "vae_util.h"
#include "variant.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void text_append(char **text, size_t *len, size_t *cap, const char *line)
{
    size_t n = strlen(line);
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *b = vae_calloc(c, 1);
        if (*text)
            memcpy(b, *text, *len);
        vae_free(*text);
        *text = b;
        *cap = c;
    }
    memcpy(*text + *len, line, n + 1);
    *len += n;
}

static int metrics_cells(char *buf, size_t len, const vae_losses *l);

static void metrics_append(vae_train_run *r, const char *line)
{
    text_append(&r->metrics, &r->metrics_len, &r->metrics_cap, line);
}

/* The first `rows` data rows of the metrics text (with its header): a checkpoint holds the rows of
 * finished epochs only, not the row of a last epoch that --steps ended part-way. */
static char *metrics_rows(const vae_train_run *r, int rows)
{
    const char *p = r->metrics, *end = r->metrics + r->metrics_len;
    for (int i = 0; i <= rows && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    char *out = vae_calloc((size_t)(p - r->metrics) + 1, 1);
    memcpy(out, r->metrics, (size_t)(p - r->metrics));
    return out;
}

/* The settings and data digests as checkpoint / model metadata; texts live in vals. */
static int settings_meta(const vae_train_run *r, vae_st_meta *meta, char vals[][VAE_SETTING_MAX], char keys[4][96])
{
    int n = 0;
    for (int k = 0; k < VAE_TS_N; k++) {
        vae_train_setting_text(&r->ts, k, vals[k]);
        meta[n++] = (vae_st_meta){vae_train_setting_keys[k].key, vals[k]};
    }
    for (int i = 0; i < r->data.n_files; i++) {
        snprintf(keys[i], sizeof keys[i], "train.data.sha256.%s", vae_run_data_name(&r->data, i));
        meta[n++] = (vae_st_meta){keys[i], r->data.sha256[i]};
    }
    meta[n++] = (vae_st_meta){"train.device", r->be->name};
    if (strcmp(r->be->name, "cpu") == 0) { /* the CPU's results depend on it (oneDNN splits by threads) */
        static char threads[16];
        snprintf(threads, sizeof threads, "%d", vae_cpu_threads());
        meta[n++] = (vae_st_meta){"train.threads", threads};
    }
    return n;
}

int vae_run_save_checkpoint(vae_train_run *r)
{
    static char vals[VAE_TS_N][VAE_SETTING_MAX];
    char keys[4][96];
    vae_st_meta meta[VAE_TS_N + 6];
    int n = settings_meta(r, meta, vals, keys);
    vae_train_progress p = {.best_val = r->best_val, .best_epoch = r->best_epoch, .metrics_steps = r->steps};
    vae_trainer_get_state(r->t, &p.trainer);
    char *rows = metrics_rows(r, p.trainer.epochs_done);
    p.metrics = rows;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, VAE_CHECKPOINT_FILE);
    int rc = vae_train_state_save(path, &r->m, &p, meta, n);
    vae_free(rows);
    return rc;
}

/* A model file (model.safetensors, best.safetensors) with the run's settings and final losses. */
int vae_run_save_model(vae_train_run *r, const char *name, const vae_epoch_metrics *e)
{
    static char vals[VAE_TS_N][VAE_SETTING_MAX];
    char keys[4][96], train_s[32], test_s[32], epoch_s[32];
    vae_st_meta meta[VAE_TS_N + 11];
    int n = settings_meta(r, meta, vals, keys);
    snprintf(train_s, sizeof train_s, "%.6f", e->train.loss);
    snprintf(test_s, sizeof test_s, "%.6f", e->test.loss);
    snprintf(epoch_s, sizeof epoch_s, "%d", e->epoch);
    meta[n++] = (vae_st_meta){"train.device_name", r->be->device_name};
    meta[n++] = (vae_st_meta){"train.saved_epoch", epoch_s};
    meta[n++] = (vae_st_meta){"train.final_train_loss", train_s};
    meta[n++] = (vae_st_meta){"train.final_test_loss", test_s};
    if (r->model_meta_key[0])
        meta[n++] = (vae_st_meta){r->model_meta_key, r->model_meta_value};
    /* vae_checkpoint_save checks that these and the configuration's entries fit */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return vae_checkpoint_save(&r->m, path, meta, n);
}

/* name.csv with text, then name.jsonl made from it (metrics.h): the two never disagree. */
static int write_table(vae_train_run *r, const char *name, const char *text, size_t text_len)
{
    char file[64];
    snprintf(file, sizeof file, "%s.csv", name);
    if (vae_run_write_text(r->dir, file, text, text_len))
        return -1;
    vae_metrics_table t;
    char what[4300];
    if (r->resuming)
        snprintf(what, sizeof what, "%s/%s (its rows from %s)", r->dir, file, r->ck_path);
    else
        snprintf(what, sizeof what, "%s/%s", r->dir, file);
    if (vae_metrics_parse(text, text_len, what, &t))
        return -1; /* only a resumed checkpoint's text can be malformed (and it was checked on opening) */
    size_t len;
    char *jsonl = vae_metrics_jsonl(&t, &len);
    vae_metrics_table_free(&t);
    snprintf(file, sizeof file, "%s.jsonl", name);
    int rc = vae_run_write_text(r->dir, file, jsonl, len);
    vae_free(jsonl);
    return rc;
}

int vae_run_log_write_metrics(vae_train_run *r)
{
    if (write_table(r, "metrics", r->metrics, r->metrics_len))
        return -1;
    return r->steps ? write_table(r, "metrics_steps", r->steps, r->steps_len) : 0;
}

/* The scheduled scalars a step row records for model m: the learning rate and the KL weight always,
 * the temperature with a categorical latent, each capacity that is on. */
static int step_scalar_on(const vae_model *m, vae_scalar k)
{
    switch (k) {
    case VAE_SCALAR_TEMPERATURE: return vae_model_categorical(m) >= 0;
    case VAE_SCALAR_CAPACITY_Z: return m->cfg.cap_z.gamma > 0;
    case VAE_SCALAR_CAPACITY_C: return m->cfg.cap_c.gamma > 0;
    default: return 1;
    }
}

void vae_run_steps_header(vae_model *m, char *line, size_t cap)
{
    static const char *const scalar_names[VAE_SCALAR_SCHEDULED] = {"lr", "kl_weight", "temperature", "capacity_z",
                                                                   "capacity_c"};
    int w = snprintf(line, cap, "step,epoch,train_loss");
    for (int k = 0; k < m->n_terms; k++)
        w += snprintf(line + w, cap - (size_t)w, ",train_%s", m->term[k].name);
    for (int k = 0; k < VAE_SCALAR_SCHEDULED; k++)
        if (step_scalar_on(m, (vae_scalar)k))
            w += snprintf(line + w, cap - (size_t)w, ",%s", scalar_names[k]);
    snprintf(line + w, cap - (size_t)w, "\n");
}

void vae_run_log_steps(vae_train_run *r)
{
    const vae_step_row *rows;
    const int n = vae_trainer_step_rows(r->t, &rows);
    for (int i = 0; i < n; i++) {
        char line[1024];
        int w = snprintf(line, sizeof line, "%ld,%.6f", rows[i].step, rows[i].epoch);
        w += metrics_cells(line + w, sizeof line - (size_t)w, &rows[i].train);
        for (int k = 0; k < VAE_SCALAR_SCHEDULED; k++)
            if (step_scalar_on(&r->m, (vae_scalar)k))
                w += snprintf(line + w, sizeof line - (size_t)w, ",%.6g", (double)rows[i].scalar[k]);
        snprintf(line + w, sizeof line - (size_t)w, "\n");
        text_append(&r->steps, &r->steps_len, &r->steps_cap, line);
    }
}

/* metrics.csv's header line (with its newline) of model m, a layout will do: epoch, then per split
 * the loss and each of the model's terms (train_loss,train_recon,train_kl,test_loss,...), the
 * model's extra columns, then the timing columns. */
void vae_run_metrics_header(vae_model *m, int with_val, char *line, size_t cap)
{
    static const char *const splits[3] = {"train", "test", "val"};
    int w = snprintf(line, cap, "epoch");
    for (int sp = 0; sp < 2 + with_val; sp++) {
        w += snprintf(line + w, cap - (size_t)w, ",%s_loss", splits[sp]);
        for (int k = 0; k < m->n_terms; k++)
            w += snprintf(line + w, cap - (size_t)w, ",%s_%s", splits[sp], m->term[k].name);
    }
    vae_metrics_extra x;
    vae_variant_metrics_extras(m, NULL, NULL, NULL, &x);
    for (int k = 0; k < x.n; k++)
        w += snprintf(line + w, cap - (size_t)w, ",%s", x.name[k]);
    snprintf(line + w, cap - (size_t)w, ",seconds,images_per_second\n");
}

/* ",loss,term,term..." of one split, in the header's order. */
static int metrics_cells(char *buf, size_t len, const vae_losses *l)
{
    int w = snprintf(buf, len, ",%.6f", l->loss);
    for (int k = 0; k < l->n_terms; k++)
        w += snprintf(buf + w, len - (size_t)w, ",%.6f", l->term[k]);
    return w;
}

static void metrics_row(vae_train_run *r, const vae_epoch_metrics *e, const vae_losses *val, const vae_metrics_extra *x)
{
    char line[1024];
    int w = snprintf(line, sizeof line, "%d", e->epoch);
    w += metrics_cells(line + w, sizeof line - (size_t)w, &e->train);
    w += metrics_cells(line + w, sizeof line - (size_t)w, &e->test);
    if (val)
        w += metrics_cells(line + w, sizeof line - (size_t)w, val);
    for (int k = 0; k < x->n; k++)
        w += snprintf(line + w, sizeof line - (size_t)w, ",%.6f", x->value[k]);
    snprintf(line + w, sizeof line - (size_t)w, ",%.4f,%.1f\n", e->seconds, e->images_per_second);
    metrics_append(r, line);
}

/* provenance.txt: a new run's block, or the run's file with a resume's block appended.
 * argv is the command's (argv[0] "train"): main's argv[0], the program, is just before it. */
static int write_provenance(vae_train_run *r, int argc, char **argv)
{
    char *prov = vae_run_provenance(r->resuming ? "resumed" : "started", argc + 1, argv - 1, r->be->name, &r->data);
    if (r->resuming) {
        char path[VAE_RUN_PATH_MAX];
        snprintf(path, sizeof path, "%s/provenance.txt", r->dir);
        char *old = NULL;
        size_t old_len = 0;
        struct stat st;
        /* a regular file of at most VAE_TEXT_FILE_MAX bytes: a FIFO there is refused, not waited on */
        if (!(stat(path, &st) != 0 && errno == ENOENT) && !(old = vae_read_text(path, VAE_TEXT_FILE_MAX, &old_len))) {
            vae_free(prov);
            return -1;
        }
        size_t n = old_len + strlen(prov) + 2;
        char *both = vae_calloc(n, 1);
        snprintf(both, n, "%s%s%s", old ? old : "", old_len ? "\n" : "", prov);
        vae_free(old);
        vae_free(prov);
        prov = both;
    }
    int rc = vae_run_write_text(r->dir, "provenance.txt", prov, strlen(prov));
    vae_free(prov);
    return rc;
}

/* The train_loss of metrics.csv's last row (the second column), so that a resume with nothing left
 * to train writes the model the run wrote; NAN when there is no row. */
double vae_run_log_last_train_loss(const vae_train_run *r)
{
    if (!r->metrics || r->metrics_len < 2)
        return NAN;
    const char *end = r->metrics + r->metrics_len - 1; /* the last row's newline */
    const char *row = end;
    while (row > r->metrics && row[-1] != '\n')
        row--;
    const char *comma = memchr(row, ',', (size_t)(end - row));
    if (row == r->metrics || !comma) /* only the header */
        return NAN;
    char *stop;
    double v = strtod(comma + 1, &stop);
    return stop != comma + 1 ? v : NAN;
}


int vae_run_log_begin(vae_train_run *r, int argc, char **argv)
{
    r->wrote = 1;
    if (write_provenance(r, argc, argv))
        return -1;
    if (r->resuming) {
        metrics_append(r, r->ck.p.metrics);
    } else {
        char header[1024];
        vae_run_metrics_header(&r->m, r->val.n > 0, header, sizeof header);
        metrics_append(r, header);
    }
    if (r->ts.log_every > 0) {
        if (r->resuming && r->ck.p.metrics_steps[0]) {
            text_append(&r->steps, &r->steps_len, &r->steps_cap, r->ck.p.metrics_steps);
        } else {
            char header[1024];
            vae_run_steps_header(&r->m, header, sizeof header);
            text_append(&r->steps, &r->steps_len, &r->steps_cap, header);
        }
    }
    return vae_run_log_write_metrics(r);
}

void vae_run_log_epoch(vae_train_run *r, const vae_epoch_metrics *e, const vae_losses *val)
{
    vae_metrics_extra extra;
    vae_variant_metrics_extras(&r->m, r->t, &r->dtest, &r->test, &extra);
    metrics_row(r, e, val, &extra);
    char terms[256];
    vae_losses_describe(&e->train, &r->m, terms, sizeof terms);
    fprintf(stderr, "epoch %3d/%d  train %.4f%s  test %.4f", e->epoch, r->ts.s.epochs, e->train.loss, terms,
            e->test.loss);
    if (vae_model_reads_label(&r->m))
        fprintf(stderr, " (%s bound)", vae_model_nll_name(&r->m));
    if (val)
        fprintf(stderr, "  val %.4f", val->loss);
    for (int k = 0; k < extra.n; k++)
        fprintf(stderr, "  %s %.4f", extra.name[k], extra.value[k]);
    fprintf(stderr, "  %.2f s  %.0f %s\n", e->seconds, e->images_per_second, r->source->rate);
}
