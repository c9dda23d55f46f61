/*
 * sweep_report.c: a sweep's table and page (sweep.h): DIR/sweep.csv and DIR/sweep.html, one row
 * per run with the values that vary, the final epoch's train loss, its test loss and terms, and
 * the scores its metrics.csv holds (nmi and cluster_acc of a joint model), the
 * active units and, when asked, the importance-weighted bound (both from `cuvae eval --json` on
 * the run's model), the training seconds and the run's state; sorted by a chosen column; each
 * run's test loss per epoch on one chart, coloured by the first varied value; each row linking
 * to the run's own report.html.
 */
#define _GNU_SOURCE
#include "sweep.h"

#include "metrics.h"
#include "plot.h"
#include "report.h"
#include "run_dir.h"
#include "vae_util.h"

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_COLS 24

/* One run's row: named numbers (NaN where absent), and its loss curve. */
typedef struct {
    int run;
    const char *state;
    double value[MAX_COLS];
    int n_epochs;
    double *epoch, *test_loss; /* (n_epochs) */
} row;

typedef struct {
    int n;
    char name[MAX_COLS][32];
} columns;

static int column(columns *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], name))
            return i;
    if (c->n == MAX_COLS)
        return -1;
    snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
    return c->n++;
}

/* `cuvae eval --json` of the run's model: active_units and, with iw_samples, iw_nll. */
static void eval_run(const vae_sweep_plan *p, const vae_sweep_run *run, int iw_samples, columns *c, row *r)
{
    char model[PATH_MAX + 32], iw[24];
    snprintf(model, sizeof model, "%s/model.safetensors", run->dir);
    snprintf(iw, sizeof iw, "%d", iw_samples);
    int out[2];
    if (pipe(out))
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO); /* its "device: ..." lines: the page has what matters */
        close(out[0]);
        close(out[1]);
        if (iw_samples)
            execl(p->cuvae, p->cuvae, "eval", "--model", model, "--json", "--device", "cpu", "--iw-samples", iw,
                  (char *)NULL);
        else
            execl(p->cuvae, p->cuvae, "eval", "--model", model, "--json", "--device", "cpu", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    json_t *j = f ? json_loadf(f, 0, NULL) : NULL;
    if (f)
        fclose(f);
    int status;
    if (pid > 0)
        waitpid(pid, &status, 0);
    json_t *au = json_object_get(j, "active_units"), *nll = json_object_get(j, "iw_nll");
    int k;
    if (json_is_number(au) && (k = column(c, "active_units")) >= 0)
        r->value[k] = json_number_value(au);
    if (iw_samples && json_is_number(nll) && (k = column(c, "iw_nll")) >= 0)
        r->value[k] = json_number_value(nll);
    json_decref(j);
}

/* The last row of the run's metrics.csv (losses and extra columns), the sum of its seconds, and
 * its test loss per epoch. */
static void read_metrics(const vae_sweep_run *run, columns *c, row *r)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.csv", run->dir);
    size_t len;
    char *text = access(path, F_OK) == 0 ? vae_read_text(path, VAE_TEXT_FILE_MAX, &len) : NULL;
    vae_metrics_table t;
    if (!text || vae_metrics_parse(text, len, path, &t)) {
        vae_free(text);
        return;
    }
    int epoch_col = -1, test_col = -1, seconds_col = -1;
    for (int j = 0; j < t.n_cols; j++) {
        epoch_col = !strcmp(t.names[j], "epoch") ? j : epoch_col;
        test_col = !strcmp(t.names[j], "test_loss") ? j : test_col;
        seconds_col = !strcmp(t.names[j], "seconds") ? j : seconds_col;
    }
    r->epoch = vae_calloc((size_t)t.n_rows + 1, sizeof *r->epoch);
    r->test_loss = vae_calloc((size_t)t.n_rows + 1, sizeof *r->test_loss);
    double seconds = 0;
    for (int i = 0; i < t.n_rows; i++) {
        r->epoch[i] = epoch_col >= 0 ? t.values[(size_t)i * t.n_cols + epoch_col] : i + 1;
        r->test_loss[i] = test_col >= 0 ? t.values[(size_t)i * t.n_cols + test_col] : NAN;
        seconds += seconds_col >= 0 ? t.values[(size_t)i * t.n_cols + seconds_col] : 0;
    }
    r->n_epochs = t.n_rows;
    /* the train loss, every test column (the loss and each term: across betas the loss is
     * recon + beta kl, so the terms are what compare), the validation loss, the clustering scores */
    for (int j = 0; t.n_rows && j < t.n_cols; j++)
        if (!strcmp(t.names[j], "train_loss") || !strncmp(t.names[j], "test_", 5) || !strcmp(t.names[j], "val_loss") ||
            !strcmp(t.names[j], "nmi") || !strcmp(t.names[j], "cluster_acc")) {
            int k = column(c, t.names[j]);
            if (k >= 0)
                r->value[k] = t.values[(size_t)(t.n_rows - 1) * t.n_cols + j];
        }
    int k = column(c, "seconds");
    if (k >= 0 && seconds_col >= 0)
        r->value[k] = seconds;
    vae_metrics_table_free(&t);
    vae_free(text);
}

/* The sort: by a number column (NaN last), or by a varied flag's value (as a number when both are). */
static const vae_sweep_plan *sort_plan;
static int sort_col = -1, sort_axis = -1;
static int by_column(const void *a, const void *b)
{
    const row *x = a, *y = b;
    double u, v;
    if (sort_axis >= 0) {
        const char *s = sort_plan->runs[x->run].values[sort_axis], *t = sort_plan->runs[y->run].values[sort_axis];
        char *e1, *e2;
        u = strtod(s, &e1);
        v = strtod(t, &e2);
        if (*e1 || *e2)
            return strcmp(s, t);
    } else {
        u = x->value[sort_col];
        v = y->value[sort_col];
    }
    if (isnan(u) || isnan(v))
        return isnan(u) - isnan(v);
    return u < v ? -1 : u > v ? 1 : x->run - y->run;
}

static const char *state_name(vae_sweep_state s)
{
    return s == VAE_SWEEP_FINISHED ? "finished" : s == VAE_SWEEP_FAILED ? "failed" : s == VAE_SWEEP_INTERRUPTED ? "interrupted" : "not started";
}

int vae_sweep_report(const vae_sweep_plan *p, const char *sort, int iw_samples, FILE *log)
{
    columns c = {0};
    static const char *const fixed[] = {"train_loss", "test_loss"};
    for (size_t i = 0; i < 2; i++)
        column(&c, fixed[i]);
    row *rows = vae_calloc((size_t)p->n_runs, sizeof *rows);
    for (int r = 0; r < p->n_runs; r++) {
        rows[r].run = r;
        for (int k = 0; k < MAX_COLS; k++)
            rows[r].value[k] = NAN;
        vae_sweep_state s = vae_sweep_run_state(p, r);
        rows[r].state = state_name(s);
        read_metrics(&p->runs[r], &c, &rows[r]);
        if (s == VAE_SWEEP_FINISHED)
            eval_run(p, &p->runs[r], iw_samples, &c, &rows[r]);
    }
    sort_plan = p;
    sort_col = sort_axis = -1;
    if (sort) {
        for (int a = 0; a < p->n_axes; a++)
            if (!strcmp(p->axes[a].flag + 2, sort) || !strcmp(p->axes[a].flag, sort))
                sort_axis = a;
        for (int k = 0; k < c.n && sort_axis < 0; k++)
            if (!strcmp(c.name[k], sort))
                sort_col = k;
        if (sort_axis < 0 && sort_col < 0) {
            for (int r = 0; r < p->n_runs; r++) {
                vae_free(rows[r].epoch);
                vae_free(rows[r].test_loss);
            }
            vae_free(rows);
            vae_set_error("--sort %s: no such column (the varied flags and the table's columns)", sort);
            return 2;
        }
        qsort(rows, (size_t)p->n_runs, sizeof *rows, by_column);
    }
    /* sweep.csv */
    char *csv = NULL, *html = NULL;
    size_t csv_len = 0, html_len = 0;
    FILE *f = open_memstream(&csv, &csv_len);
    fprintf(f, "run");
    for (int a = 0; a < p->n_axes; a++)
        fprintf(f, ",%s", p->axes[a].flag + 2);
    for (int k = 0; k < c.n; k++)
        fprintf(f, ",%s", c.name[k]);
    fprintf(f, ",state\n");
    for (int r = 0; r < p->n_runs; r++) {
        const vae_sweep_run *run = &p->runs[rows[r].run];
        fprintf(f, "%s", run->name);
        for (int a = 0; a < p->n_axes; a++)
            fprintf(f, ",\"%s\"", run->values[a]);
        for (int k = 0; k < c.n; k++)
            isnan(rows[r].value[k]) ? fprintf(f, ",") : fprintf(f, ",%.6f", rows[r].value[k]);
        fprintf(f, ",%s\n", rows[r].state);
    }
    fclose(f);
    /* the chart: each run's test loss per epoch, coloured by its first varied value */
    vae_plot *chart = vae_plot_new("Test loss per epoch of every run", "epoch", "nats per image");
    vae_plot_x_integer(chart);
    int *named = vae_calloc((size_t)(p->n_axes ? p->axes[0].n : 1), sizeof *named);
    for (int r = 0; r < p->n_runs; r++) {
        int color = 0;
        for (int i = 0; p->n_axes && i < p->axes[0].n; i++)
            if (!strcmp(p->axes[0].values[i], p->runs[rows[r].run].values[0]))
                color = i;
        char legend[128]; /* one entry per value: the first line of its colour names it */
        snprintf(legend, sizeof legend, "%s %s", p->n_axes ? p->axes[0].flag : "run",
                 p->n_axes ? p->axes[0].values[color] : p->runs[0].name);
        if (rows[r].n_epochs)
            vae_plot_line(chart, named[color]++ ? NULL : legend, rows[r].epoch, rows[r].test_loss, rows[r].n_epochs,
                          color);
    }
    vae_free(named);
    size_t svg_len;
    char *svg = vae_plot_svg(chart, &svg_len);
    vae_plot_free(chart);
    /* sweep.html */
    f = open_memstream(&html, &html_len);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>cuvae sweep</title>\n"
               "<style>%s</style>\n</head>\n<body>\n<h1>cuvae sweep <code>", vae_report_css);
    vae_html_text(f, p->dir);
    fprintf(f, "</code></h1>\n<p class=\"note\">%d runs", p->n_runs);
    for (int a = 0; a < p->n_axes; a++) {
        fputs(a ? ", " : " over ", f);
        vae_html_text(f, p->axes[a].flag);
        fputs(" (", f);
        for (int i = 0; i < p->axes[a].n; i++) {
            fputs(i ? ", " : "", f);
            vae_html_text(f, p->axes[a].values[i]);
        }
        fputs(")", f);
    }
    fputs(". Made by <code>cuvae sweep report</code> from each run's metrics.csv and <code>cuvae eval --json</code> "
          "of its model; the table is sweep.csv.</p>\n<h2>Runs</h2>\n<table>\n<tr><th>run</th>",
          f);
    for (int a = 0; a < p->n_axes; a++) {
        fputs("<th>", f);
        vae_html_text(f, p->axes[a].flag + 2);
        fputs("</th>", f);
    }
    for (int k = 0; k < c.n; k++)
        fprintf(f, "<th>%s</th>", c.name[k]);
    fputs("<th>state</th></tr>\n", f);
    for (int r = 0; r < p->n_runs; r++) {
        const vae_sweep_run *run = &p->runs[rows[r].run];
        fputs("<tr><td><a href=\"runs/", f);
        vae_html_url(f, run->name);
        fputs("/report.html\">", f);
        vae_html_text(f, run->name);
        fputs("</a></td>", f);
        for (int a = 0; a < p->n_axes; a++) {
            fputs("<td>", f);
            vae_html_text(f, run->values[a]);
            fputs("</td>", f);
        }
        for (int k = 0; k < c.n; k++)
            if (isnan(rows[r].value[k]))
                fputs("<td></td>", f);
            else if (rows[r].value[k] == floor(rows[r].value[k])) /* a count */
                fprintf(f, "<td>%.0f</td>", rows[r].value[k]);
            else
                fprintf(f, "<td>%.4f</td>", rows[r].value[k]);
        fprintf(f, "<td>%s</td></tr>\n", rows[r].state);
    }
    fprintf(f, "</table>\n<h2>Loss curves</h2>\n<figure>%s<figcaption>The test loss of every run after each epoch, "
               "coloured by its %s.</figcaption></figure>\n</body>\n</html>\n",
            svg, p->n_axes ? p->axes[0].flag : "run");
    fclose(f);
    int rc = vae_run_write_text(p->dir, "sweep.csv", csv, csv_len) || vae_run_write_text(p->dir, "sweep.html", html, html_len)
                 ? -1
                 : 0;
    if (!rc && log)
        fprintf(log, "wrote %s/sweep.csv and %s/sweep.html (%d runs)\n", p->dir, p->dir, p->n_runs);
    free(csv);
    free(html);
    vae_free(svg);
    for (int r = 0; r < p->n_runs; r++) {
        vae_free(rows[r].epoch);
        vae_free(rows[r].test_loss);
    }
    vae_free(rows);
    return rc;
}
