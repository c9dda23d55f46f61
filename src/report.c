/*
 * report.c: report.html of a run directory; see report.h.
 */
#define _GNU_SOURCE
#include "plot.h"
#include "report.h"

#include "metrics.h"
#include "run_dir.h"
#include "safetensors.h"
#include "train_settings.h"
#include "toy_pictures.h"
#include "vae_util.h"
#include "variant.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The known pictures, in the order the report shows them. */
static const struct {
    const char *name, *caption;
} known[] = {
    {"loss_curves.svg", "Loss curves: the training and test loss and each of its terms, per epoch; with --log-every "
                        "the training loss of every step row (metrics_steps.csv) under the epochs' points; a joint "
                        "model's NMI, cluster accuracy, capacities and temperature"},
    {"samples.png", "Samples: images decoded from draws of the prior N(0, I)"},
    {"reconstructions.png", "Reconstructions: test images beside their reconstructions"},
    {"latent_scatter.svg", "Latent space: the posterior means of test images (an autoencoder's codes; one draw of "
                           "q(z|x) each when plotted with --scatter samples), coloured by label (the means' first "
                           "two principal components when the latent has more than two dimensions)"},
    {"manifold.png", "Manifold: an even grid of the 2-D latent, through the prior's inverse CDF (or linear over "
                     "[-R, R]^2 when plotted with --manifold-range R), decoded"},
    {"traversals.png", "Traversals: each latent dimension varied alone, the others held"},
    {"interpolation.png", "Interpolation: decoded points on the line between two test images' latents"},
    {"per_digit.png", "Per digit: samples around one encoded example of each digit"},
    {"posterior_cloud.svg", "Posterior clouds: draws of q(z|x) for each of a few test images, one colour per image, "
                            "in the latent scatter's plane"},
    /* the 1-D mixture toy's (toy_pictures.h) */
    {"toy_density.svg", "Toy data: the training values' histogram under the true mixture density"},
    {"toy_latent.svg", "Toy encoding: samples (x, z ~ q(z|x)) of test values, hist(x) over the true density and "
                       "hist(z) over N(0, 1)"},
    {"toy_decoded.svg", "Toy decoding: the decoder's mean x = f(z) over z, and the histogram of the test values' "
                        "reconstructions f(z), z ~ q(z|x), over the true density"},
    {"toy_generated.svg", "Toy generation: z ~ N(0, 1), x = f(z) + sigma eps: the (x, z) scatter, hist(x) over the "
                          "true density with their total variation distance, and hist(z) over N(0, 1)"},
};
#define N_KNOWN (sizeof known / sizeof known[0])

const char *vae_report_caption(const char *name)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known[i].name, name) == 0)
            return known[i].caption;
    return NULL;
}

/* ---- text --------------------------------------------------------------------- */

static void put_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

void vae_html_text(FILE *f, const char *s)
{
    char *e = vae_safetensors_escape(s);
    put_esc(f, e);
    vae_free(e);
}

void vae_html_url(FILE *f, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._~-", *p))
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* The whole of dir/name into *text (NUL-terminated, vae_free): 1 absent, 0 read, -1 error (not a
 * regular file, e.g. a FIFO or a link to /dev/zero, or more than VAE_TEXT_FILE_MAX bytes). */
static int read_text(const char *dir, const char *name, char **text, size_t *len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *text = NULL;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return 1;
    *text = vae_read_text(path, VAE_TEXT_FILE_MAX, len);
    return *text ? 0 : -1;
}

/* ---- sections --------------------------------------------------------------------- */

const char vae_report_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:2em auto;"
    "max-width:72em;padding:0 1em;color:#1a1a1a;background:#fff;line-height:1.4}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
    "td.k{white-space:nowrap;color:#444}td.v{font-family:ui-monospace,'DejaVu Sans Mono',monospace;"
    "word-break:break-all}"
    ".scroll{max-height:30em;overflow:auto;display:inline-block}"
    "figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #ddd}"
    ".seq{display:flex;gap:.8em;overflow-x:auto}.seq figure{flex:0 0 24em;margin:0 0 1em}"
    "img.px{image-rendering:pixelated}figcaption{color:#444;font-size:.9em;margin-top:.3em}"
    "p.note{color:#666}";

/* provenance.txt: each block ("started"/"resumed" ... until a blank line) as a table of its lines. */
static void section_provenance(FILE *f, const char *prov)
{
    fputs("<h2>Configuration</h2>\n", f);
    if (!prov) {
        fputs("<p class=\"note\">This run directory has no provenance.txt.</p>\n", f);
        return;
    }
    int open = 0;
    for (const char *p = prov; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = vae_calloc(n + 1, 1);
        memcpy(line, p, n);
        if (n == 0) {
            if (open)
                fputs("</table>\n", f);
            open = 0;
        } else {
            if (!open)
                fputs("<table class=\"prov\">\n", f);
            open = 1;
            char *colon = strstr(line, ": ");
            fputs("<tr><td class=\"k\">", f);
            if (colon) {
                *colon = 0;
                put_esc(f, line);
                fputs("</td><td class=\"v\">", f);
                put_esc(f, colon + 2);
            } else {
                fputs("</td><td class=\"v\">", f);
                put_esc(f, line);
            }
            fputs("</td></tr>\n", f);
        }
        vae_free(line);
        p = nl ? nl + 1 : p + n;
    }
    if (open)
        fputs("</table>\n", f);
}

/* model.safetensors' metadata: the model's shape, then the training settings and the rest. */
static void section_model(FILE *f, const vae_safetensors *st, const char *why)
{
    fputs("<h2>Model and training settings</h2>\n", f);
    if (!st) {
        fputs("<p class=\"note\">", f);
        put_esc(f, why);
        fputs("</p>\n", f);
        return;
    }
    int hidden = 0;
    for (int i = 0; i < st->n_meta; i++)
        hidden += !vae_train_setting_applies(st->meta[i].key, st);
    fputs("<p class=\"note\">The metadata of model.safetensors", f);
    if (hidden)
        fprintf(f, " (less %d recorded setting%s that do%s not apply to this model: <code>cuvae info --all</code> "
                   "lists every key)", hidden, hidden == 1 ? "" : "s", hidden == 1 ? "es" : "");
    fputs(".</p>\n<table class=\"meta\">\n", f);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < st->n_meta; i++) {
            int train = strncmp(st->meta[i].key, "train.", 6) == 0;
            if (train != pass || !vae_train_setting_applies(st->meta[i].key, st))
                continue;
            fputs("<tr><td class=\"k\">", f);
            put_esc(f, st->meta[i].key);
            fputs("</td><td class=\"v\">", f);
            put_esc(f, st->meta[i].value);
            fputs("</td></tr>\n", f);
        }
    fputs("</table>\n", f);
}

/* The last epoch: loss, reconstruction and KL of each split present. */
static void section_final(FILE *f, const vae_metrics_table *t)
{
    fputs("<h2>Final metrics</h2>\n", f);
    if (t->n_rows == 0) {
        fputs("<p class=\"note\">No epoch has finished yet.</p>\n", f);
        return;
    }
    const char *last = t->cells[(size_t)(t->n_rows - 1) * (size_t)t->n_cols]; /* the epoch column */
    fputs("<p>After epoch ", f);
    put_esc(f, last);
    /* the loss, then every term the header names (train_<term>) */
    enum { MAX_TERMS = 1 + 8 };
    const char *terms[MAX_TERMS] = {"loss"};
    int n_terms = 1;
    for (int c = 0; c < t->n_cols && n_terms < MAX_TERMS; c++)
        if (strncmp(t->names[c], "train_", 6) == 0 && strcmp(t->names[c], "train_loss") != 0)
            terms[n_terms++] = t->names[c] + 6;
    fputs(", per image in nats (the loss is the sum of the terms, each with its weight):</p>\n"
          "<table class=\"final\">\n<tr><th></th>",
          f);
    for (int k = 0; k < n_terms; k++) {
        fputs("<th class=\"n\">", f);
        put_esc(f, strcmp(terms[k], "recon") == 0 ? "reconstruction" : strcmp(terms[k], "kl") == 0 ? "KL" : terms[k]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    static const char *splits[] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "%s_loss", splits[s]);
        if (vae_metrics_column(t, name) < 0)
            continue;
        fprintf(f, "<tr><th>%s</th>", splits[s]);
        for (int k = 0; k < n_terms; k++) {
            snprintf(name, sizeof name, "%s_%s", splits[s], terms[k]);
            int j = vae_metrics_column(t, name);
            fputs("<td class=\"n\">", f);
            if (j >= 0)
                put_esc(f, t->cells[(size_t)(t->n_rows - 1) * (size_t)t->n_cols + (size_t)j]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    int js = vae_metrics_column(t, "seconds");
    if (js >= 0) {
        double total = 0;
        for (int i = 0; i < t->n_rows; i++)
            total += t->values[(size_t)i * (size_t)t->n_cols + (size_t)js];
        if (isfinite(total))
            fprintf(f, "<p>%d epochs recorded, %.1f s of training.</p>\n", t->n_rows, total);
    }
}

static void section_epochs(FILE *f, const vae_metrics_table *t)
{
    fputs("<h2>Every epoch</h2>\n<p class=\"note\">metrics.csv (also as metrics.jsonl).</p>\n"
          "<div class=\"scroll\"><table class=\"epochs\">\n<tr>",
          f);
    for (int j = 0; j < t->n_cols; j++) {
        fputs("<th class=\"n\">", f);
        put_esc(f, t->names[j]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int i = 0; i < t->n_rows; i++) {
        fputs("<tr>", f);
        for (int j = 0; j < t->n_cols; j++) {
            fputs("<td class=\"n\">", f);
            put_esc(f, t->cells[(size_t)i * (size_t)t->n_cols + (size_t)j]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table></div>\n", f);
}

/* The loss per epoch (train_loss, val_loss, test_loss), drawn by the plot writer (its nice ticks)
 * as inline SVG, for a run without loss_curves.svg. */
static void chart_fallback(FILE *f, const vae_metrics_table *t)
{
    static const struct {
        const char *col, *label;
    } lines[] = {{"train_loss", "train"}, {"test_loss", "test"}, {"val_loss", "validation"}};
    const int je = vae_metrics_column(t, "epoch");
    double *x = vae_calloc((size_t)t->n_rows + 1, sizeof *x), *y = vae_calloc((size_t)t->n_rows + 1, sizeof *y);
    vae_plot *p = vae_plot_new("Loss per epoch", "epoch", "loss (nats)");
    vae_plot_x_integer(p);
    int drawn = 0;
    for (int l = 0; l < 3; l++) {
        const int j = vae_metrics_column(t, lines[l].col);
        int n = 0;
        for (int i = 0; j >= 0 && je >= 0 && i < t->n_rows; i++) {
            const double v = t->values[(size_t)i * (size_t)t->n_cols + (size_t)j];
            const double e = t->values[(size_t)i * (size_t)t->n_cols + (size_t)je];
            if (isfinite(v) && isfinite(e)) {
                x[n] = e;
                y[n++] = v;
            }
        }
        if (n) {
            vae_plot_line(p, lines[l].label, x, y, n, l);
            drawn++;
        }
    }
    if (drawn) {
        size_t len;
        char *svg = vae_plot_svg(p, &len);
        const char *body = strstr(svg, "<svg"); /* inline: without the XML declaration */
        fprintf(f, "<figure>%s</figure>\n", body ? body : svg);
        vae_free(svg);
    } else {
        fputs("<p class=\"note\">No finished epoch to draw.</p>\n", f);
    }
    vae_plot_free(p);
    vae_free(x);
    vae_free(y);
}

static int is_picture(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && (strcmp(name + n - 4, ".png") == 0 || strcmp(name + n - 4, ".svg") == 0);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A snapshot drawn while training (toy_pictures.h): shown as a sequence of its own. */
static int is_snapshot(const char *name)
{
    return strncmp(name, VAE_TOY_SNAPSHOT_PREFIX, strlen(VAE_TOY_SNAPSHOT_PREFIX)) == 0;
}

static void figure(FILE *f, const char *name, const char *caption)
{
    size_t n = strlen(name);
    fputs("<figure><img src=\"", f);
    vae_html_url(f, name);
    fprintf(f, "\"%s alt=\"", strcmp(name + n - 4, ".png") == 0 ? " class=\"px\"" : "");
    vae_html_text(f, name);
    fputs("\"><figcaption><b>", f);
    vae_html_text(f, name);
    fputs("</b>", f);
    if (caption) {
        fputs(": ", f);
        put_esc(f, caption);
    }
    fputs("</figcaption></figure>\n", f);
}

/* The curves (loss_curves.svg, or the inline chart) and every picture: known ones in order, then the rest. */
static int section_pictures(FILE *f, const char *dir, const vae_metrics_table *t, const vae_variant *v)
{
    DIR *d = opendir(dir);
    if (!d)
        return vae_set_error("cannot list %s: %s", dir, strerror(errno));
    size_t n = 0, cap = 16;
    char **names = vae_calloc(cap, sizeof *names);
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (!is_picture(ent->d_name))
            continue;
        char path[PATH_MAX + 300];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            char **b = vae_calloc(cap * 2, sizeof *b);
            memcpy(b, names, n * sizeof *names);
            vae_free(names);
            names = b;
            cap *= 2;
        }
        names[n] = vae_calloc(strlen(ent->d_name) + 1, 1);
        memcpy(names[n++], ent->d_name, strlen(ent->d_name));
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int have_curves = 0;
    for (size_t i = 0; i < n; i++)
        have_curves |= strcmp(names[i], "loss_curves.svg") == 0;
    fputs("<h2>Curves</h2>\n", f);
    if (have_curves)
        figure(f, "loss_curves.svg", vae_report_caption("loss_curves.svg"));
    else
        chart_fallback(f, t);
    fputs("<h2>Pictures</h2>\n", f);
    int shown = 0;
    for (size_t k = 1; k < N_KNOWN; k++) /* 0 is loss_curves.svg, shown above */
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], known[k].name) == 0) {
                const int samples = strcmp(names[i], "samples.png") == 0;
                figure(f, names[i], samples && v && v->samples_caption ? v->samples_caption : known[k].caption);
                shown++;
            }
    for (size_t i = 0; i < n; i++) /* the variant's own pictures, then any other */
        if (!vae_report_caption(names[i]) && v && v->picture_files && strcmp(names[i], v->picture_files) == 0) {
            figure(f, names[i], v->picture_caption);
            shown++;
        }
    for (size_t i = 0; i < n; i++)
        if (!vae_report_caption(names[i]) && !(v && v->picture_files && strcmp(names[i], v->picture_files) == 0) &&
            !is_snapshot(names[i])) {
            figure(f, names[i], NULL);
            shown++;
        }
    if (!shown)
        fputs("<p class=\"note\">This run directory has no pictures.</p>\n", f);
    /* the snapshots drawn while training, in the order of their steps (the names sort so) */
    int snaps = 0;
    for (size_t i = 0; i < n; i++)
        snaps += is_snapshot(names[i]);
    if (snaps) {
        fprintf(f, "<h2>While it trained</h2>\n<p class=\"note\">%d snapshots of the encoding, decoding and "
                   "generation panels, each after the number of training steps in its name (train "
                   "--snapshot-every); scroll sideways for later ones.</p>\n<div class=\"seq\">\n",
                snaps);
        for (size_t i = 0; i < n; i++)
            if (is_snapshot(names[i])) {
                char caption[64];
                snprintf(caption, sizeof caption, "after %ld steps",
                         strtol(names[i] + strlen(VAE_TOY_SNAPSHOT_PREFIX), NULL, 10));
                figure(f, names[i], caption);
            }
        fputs("</div>\n", f);
    }
    for (size_t i = 0; i < n; i++)
        vae_free(names[i]);
    vae_free(names);
    return 0;
}

/* What metrics_steps.csv holds (--log-every), below the epochs' table; nothing without one. */
static void section_steps(FILE *f, const char *dir)
{
    char *csv = NULL;
    size_t len = 0;
    if (read_text(dir, "metrics_steps.csv", &csv, &len) != 0)
        return;
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "%s/metrics_steps.csv", dir);
    vae_metrics_table t;
    if (vae_metrics_parse(csv, len, what, &t) == 0) {
        const int js = vae_metrics_column(&t, "step"), je = vae_metrics_column(&t, "epoch");
        if (t.n_rows > 0 && js >= 0 && je >= 0)
            fprintf(f, "<p class=\"note\">metrics_steps.csv (also as metrics_steps.jsonl): %d step rows, one every "
                       "%.0f training steps, to step %.0f (epoch %.3f); loss_curves.svg draws them.</p>\n",
                    t.n_rows, t.values[js], t.values[(size_t)(t.n_rows - 1) * t.n_cols + js],
                    t.values[(size_t)(t.n_rows - 1) * t.n_cols + je]);
        vae_metrics_table_free(&t);
    }
    vae_free(csv);
}

/* ---- the page ----------------------------------------------------------------------- */

int vae_report_write(const char *dir)
{
    char *csv = NULL, *prov = NULL;
    size_t csv_len = 0, prov_len = 0;
    int r = read_text(dir, "metrics.csv", &csv, &csv_len);
    if (r > 0)
        return vae_set_error("%s: no metrics.csv there; is it a cuvae run directory?", dir);
    if (r < 0)
        return -1;
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "%s/metrics.csv", dir);
    vae_metrics_table t;
    if (vae_metrics_parse(csv, csv_len, what, &t)) {
        vae_free(csv);
        return -1;
    }
    vae_free(csv);
    if (read_text(dir, "provenance.txt", &prov, &prov_len) < 0) {
        vae_metrics_table_free(&t);
        return -1;
    }
    char model_path[PATH_MAX + 64], why[1024] = "";
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    vae_safetensors st;
    int have_model = access(model_path, F_OK) == 0;
    if (!have_model)
        snprintf(why, sizeof why, "This run directory has no model.safetensors (the run has not finished).");
    else if (vae_safetensors_read(model_path, &st)) {
        snprintf(why, sizeof why, "model.safetensors could not be read: %s", vae_last_error());
        have_model = 0;
    }

    char *html = NULL;
    size_t html_len = 0;
    FILE *f = open_memstream(&html, &html_len);
    if (!f)
        vae_fatal("open_memstream: %s", strerror(errno));
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>cuvae run ",
          f);
    vae_html_text(f, base);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>cuvae run <code>", vae_report_css);
    vae_html_text(f, base);
    /* the variant of the model, for what it is and its pictures' captions (none yet: the plain VAE's) */
    vae_config cfg;
    vae_config_default(&cfg);
    const vae_variant *v = have_model && vae_variant_read_meta(&st, model_path, &cfg) == 0 ? vae_variant_of(&cfg)
                                                                                           : NULL;
    fprintf(f, "</code></h1>\n<p class=\"note\">A model trained by cuvae (<code>--model %s</code>). This page is made "
               "from the files in its run directory (regenerate it with <code>cuvae report DIR</code>).</p>\n",
            v ? v->name : vae_variant_of(&cfg)->name);
    section_final(f, &t);
    if (section_pictures(f, dir, &t, v))
        r = -1;
    section_provenance(f, prov);
    section_model(f, have_model ? &st : NULL, why);
    section_epochs(f, &t);
    section_steps(f, dir);
    fputs("</body>\n</html>\n", f);
    if (fclose(f) != 0)
        vae_fatal("open_memstream: %s", strerror(errno));
    if (have_model)
        vae_safetensors_free(&st);
    vae_free(prov);
    vae_metrics_table_free(&t);
    if (r == 0)
        r = vae_run_write_text(dir, "report.html", html, html_len);
    free(html);
    return r;
}
