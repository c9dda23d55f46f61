/*
 * report.c: report.html of a run directory; see report.h.
 */
#define _GNU_SOURCE
#include "report.h"

#include "metrics.h"
#include "run_dir.h"
#include "safetensors.h"
#include "vae_util.h"

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
    {"loss_curves.svg", "Loss curves: the training and test loss and each of its terms, per epoch"},
    {"samples.png", "Samples: images decoded from draws of the prior N(0, I)"},
    {"reconstructions.png", "Reconstructions: test images beside their reconstructions"},
    {"latent_scatter.svg", "Latent space: the posterior means of test images, coloured by label (their first two "
                           "principal components when the latent has more than two dimensions)"},
    {"manifold.png", "Manifold: an even grid of the 2-D latent, through the prior's inverse CDF, decoded"},
    {"traversals.png", "Traversals: each latent dimension varied alone, the others held"},
    {"interpolation.png", "Interpolation: decoded points on the line between two test images' latents"},
    {"per_digit.png", "Per digit: samples around one encoded example of each digit"},
    /* the 1-D mixture toy's (toy_pictures.h) */
    {"toy_density.svg", "Toy data: the training values' histogram under the true mixture density"},
    {"toy_latent.svg", "Toy encoder: samples (x, z ~ q(z|x)) of test values, with the histograms of x and z"},
    {"toy_generated.svg", "Toy generation: x ~ p(x|z), z ~ N(0, 1), under the true density, with their total "
                          "variation distance"},
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

/* A raw byte string (a path, a file name) as valid UTF-8 text (run_dir's escape), HTML-escaped. */
static void put_esc_raw(FILE *f, const char *s)
{
    char *e = vae_safetensors_escape(s);
    put_esc(f, e);
    vae_free(e);
}

/* A file name as a relative URL: every byte but [A-Za-z0-9._~-] percent-encoded. */
static void put_url(FILE *f, const char *name)
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

static const char css[] =
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
    fputs("<p class=\"note\">The metadata of model.safetensors.</p>\n<table class=\"meta\">\n", f);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < st->n_meta; i++) {
            int train = strncmp(st->meta[i].key, "train.", 6) == 0;
            if (train != pass)
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

/* A line chart of train_loss, val_loss and test_loss against epoch, as inline SVG. */
static void chart_fallback(FILE *f, const vae_metrics_table *t)
{
    static const struct {
        const char *col, *label, *colour, *dash;
    } lines[] = {
        {"train_loss", "train", "#1f77b4", ""},
        {"val_loss", "validation", "#2ca02c", " stroke-dasharray=\"2 3\""},
        {"test_loss", "test", "#d62728", " stroke-dasharray=\"6 3\""},
    };
    int je = vae_metrics_column(t, "epoch");
    double lo = INFINITY, hi = -INFINITY, e_lo = INFINITY, e_hi = -INFINITY;
    for (size_t l = 0; l < 3; l++) {
        int j = vae_metrics_column(t, lines[l].col);
        for (int i = 0; j >= 0 && je >= 0 && i < t->n_rows; i++) {
            double v = t->values[(size_t)i * (size_t)t->n_cols + (size_t)j];
            double e = t->values[(size_t)i * (size_t)t->n_cols + (size_t)je];
            if (!isfinite(v) || !isfinite(e))
                continue;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
            e_lo = fmin(e_lo, e);
            e_hi = fmax(e_hi, e);
        }
    }
    if (!(lo <= hi)) {
        fputs("<p class=\"note\">No finished epoch to draw.</p>\n", f);
        return;
    }
    if (hi - lo < 1e-9) {
        lo -= 0.5;
        hi += 0.5;
    }
    if (e_hi - e_lo < 1e-9) {
        e_lo -= 1;
        e_hi += 1;
    }
    const double W = 640, H = 320, L = 70, R = 130, T = 15, B = 45;
    const double pw = W - L - R, ph = H - T - B;
#define X(e) (L + ((e) - e_lo) / (e_hi - e_lo) * pw)
#define Y(v) (T + (hi - (v)) / (hi - lo) * ph)
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" "
               "aria-label=\"loss per epoch\">\n",
            W, H, W, H);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n", L, T,
            pw, ph);
    for (int k = 0; k <= 4; k++) { /* y ticks */
        double v = lo + (hi - lo) * k / 4;
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                L, L + pw, Y(v), Y(v), L - 6, Y(v) + 4, v);
    }
    int ticks = (int)fmin(e_hi - e_lo, 10);
    for (int k = 0; k <= ticks; k++) { /* x ticks, whole epochs */
        double e = round(e_lo + (e_hi - e_lo) * k / (ticks ? ticks : 1));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", X(e), T + ph + 16, e);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n", L + pw / 2, H - 8);
    fprintf(f, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">loss (nats/image)</text>\n",
            T + ph / 2);
    int shown = 0;
    for (size_t l = 0; l < 3; l++) {
        int j = vae_metrics_column(t, lines[l].col);
        if (j < 0)
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", lines[l].colour,
                lines[l].dash);
        for (int i = 0; i < t->n_rows; i++) {
            double v = t->values[(size_t)i * (size_t)t->n_cols + (size_t)j];
            double e = t->values[(size_t)i * (size_t)t->n_cols + (size_t)je];
            if (isfinite(v) && isfinite(e))
                fprintf(f, "%.1f,%.1f ", X(e), Y(v));
        }
        fputs("\"/>\n", f);
        for (int i = 0; i < t->n_rows; i++) {
            double v = t->values[(size_t)i * (size_t)t->n_cols + (size_t)j];
            double e = t->values[(size_t)i * (size_t)t->n_cols + (size_t)je];
            if (isfinite(v) && isfinite(e))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", X(e), Y(v), lines[l].colour);
        }
        double ly = T + 10 + 20 * shown++;
        fprintf(f, "\n<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>"
                   "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                L + pw + 12, L + pw + 40, ly, ly, lines[l].colour, lines[l].dash, L + pw + 46, ly + 4, lines[l].label);
    }
#undef X
#undef Y
    fputs("</svg><figcaption>Loss per epoch (negative ELBO per image), drawn from metrics.csv.</figcaption>"
          "</figure>\n",
          f);
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

static void figure(FILE *f, const char *name, const char *caption)
{
    size_t n = strlen(name);
    fputs("<figure><img src=\"", f);
    put_url(f, name);
    fprintf(f, "\"%s alt=\"", strcmp(name + n - 4, ".png") == 0 ? " class=\"px\"" : "");
    put_esc_raw(f, name);
    fputs("\"><figcaption><b>", f);
    put_esc_raw(f, name);
    fputs("</b>", f);
    if (caption) {
        fputs(": ", f);
        put_esc(f, caption);
    }
    fputs("</figcaption></figure>\n", f);
}

/* The curves (loss_curves.svg, or the inline chart) and every picture: known ones in order, then the rest. */
static int section_pictures(FILE *f, const char *dir, const vae_metrics_table *t)
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
                figure(f, names[i], known[k].caption);
                shown++;
            }
    for (size_t i = 0; i < n; i++)
        if (!vae_report_caption(names[i])) {
            figure(f, names[i], NULL);
            shown++;
        }
    if (!shown)
        fputs("<p class=\"note\">This run directory has no pictures.</p>\n", f);
    for (size_t i = 0; i < n; i++)
        vae_free(names[i]);
    vae_free(names);
    return 0;
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
    put_esc_raw(f, base);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>cuvae run <code>", css);
    put_esc_raw(f, base);
    fputs("</code></h1>\n<p class=\"note\">A variational autoencoder trained by cuvae. This page is made from the "
          "files in its run directory (regenerate it with <code>cuvae report DIR</code>).</p>\n",
          f);
    section_final(f, &t);
    if (section_pictures(f, dir, &t))
        r = -1;
    section_provenance(f, prov);
    section_model(f, have_model ? &st : NULL, why);
    section_epochs(f, &t);
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
