/*
 * plot.c: the SVG plot writer; see plot.h. One panel per file: axes with nice
 * ticks, labels, a title, a legend at the right, and line, scatter and
 * histogram series. Not here: bitmaps (image.c), what is plotted (pictures.c).
 */
#define _GNU_SOURCE
#include "plot.h"

#include "run_dir.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Geometry of the picture (SVG user units = CSS pixels). */
#define W 720
#define H 460
#define LEFT 78
#define RIGHT 170 /* the legend's column */
#define TOP 44
#define BOTTOM 62
#define MAX_TICKS 32
#define MAX_LEGEND 24

typedef enum { SERIES_LINE, SERIES_SCATTER, SERIES_HIST } series_kind;

typedef struct {
    series_kind kind;
    char *name;
    int n, color;
    double *x, *y; /* (n) points; for a histogram x is (n + 1) bin edges, y (n) counts */
    int *cls;      /* (n) scatter classes */
    char **class_names;
    int n_names;
} series;

struct vae_plot {
    char *title, *xlabel, *ylabel;
    int x_integer; /* x ticks at whole numbers only */
    int n_series, cap;
    series *s;
};

static const char *const colors[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};
_Static_assert(sizeof colors / sizeof colors[0] == VAE_PLOT_N_COLORS,
               "VAE_PLOT_N_COLORS (plot.h) is not the count of colors");

const char *vae_plot_color(int k)
{
    k %= VAE_PLOT_N_COLORS;
    return colors[k < 0 ? k + VAE_PLOT_N_COLORS : k];
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = vae_calloc(n + 1, 1);
    memcpy(d, s, n);
    return d;
}

static double *dup_doubles(const double *v, int n)
{
    double *d = vae_calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    if (n > 0)
        memcpy(d, v, (size_t)n * sizeof(double));
    return d;
}

vae_plot *vae_plot_new(const char *title, const char *xlabel, const char *ylabel)
{
    vae_plot *p = vae_calloc(1, sizeof *p);
    p->title = dup_str(title);
    p->xlabel = dup_str(xlabel);
    p->ylabel = dup_str(ylabel);
    return p;
}

void vae_plot_free(vae_plot *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_series; i++) {
        series *s = &p->s[i];
        vae_free(s->name);
        vae_free(s->x);
        vae_free(s->y);
        vae_free(s->cls);
        for (int k = 0; k < s->n_names; k++)
            vae_free(s->class_names[k]);
        vae_free(s->class_names);
    }
    vae_free(p->s);
    vae_free(p->title);
    vae_free(p->xlabel);
    vae_free(p->ylabel);
    vae_free(p);
}

static series *add_series(vae_plot *p, series_kind kind, const char *name, int n, int color)
{
    if (p->n_series == p->cap) {
        int cap = p->cap ? 2 * p->cap : 4;
        series *s = vae_calloc((size_t)cap, sizeof *s);
        if (p->n_series)
            memcpy(s, p->s, (size_t)p->n_series * sizeof *s);
        vae_free(p->s);
        p->s = s;
        p->cap = cap;
    }
    series *s = &p->s[p->n_series++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->name = dup_str(name);
    s->n = n > 0 ? n : 0;
    s->color = color;
    return s;
}

void vae_plot_line(vae_plot *p, const char *name, const double *x, const double *y, int n, int color)
{
    series *s = add_series(p, SERIES_LINE, name, n, color);
    s->x = dup_doubles(x, s->n);
    s->y = dup_doubles(y, s->n);
}

void vae_plot_scatter(vae_plot *p, const double *x, const double *y, const int *cls, int n,
                      const char *const *class_names, int n_names)
{
    series *s = add_series(p, SERIES_SCATTER, NULL, n, 0);
    s->x = dup_doubles(x, s->n);
    s->y = dup_doubles(y, s->n);
    s->cls = vae_calloc(s->n ? (size_t)s->n : 1, sizeof(int));
    if (s->n)
        memcpy(s->cls, cls, (size_t)s->n * sizeof(int));
    if (class_names && n_names > 0) {
        s->n_names = n_names;
        s->class_names = vae_calloc((size_t)n_names, sizeof(char *));
        for (int k = 0; k < n_names; k++)
            s->class_names[k] = dup_str(class_names[k] ? class_names[k] : "");
    }
}

void vae_plot_histogram(vae_plot *p, const char *name, const double *values, int n, int bins, double lo, double hi,
                        int color)
{
    if (!(lo < hi) || !isfinite(lo) || !isfinite(hi)) {
        lo = INFINITY;
        hi = -INFINITY;
        for (int i = 0; i < n; i++)
            if (isfinite(values[i])) {
                lo = fmin(lo, values[i]);
                hi = fmax(hi, values[i]);
            }
        if (lo == hi) {
            lo -= 0.5;
            hi += 0.5;
        }
    }
    if (!(lo < hi) || bins < 1)
        bins = 0; /* nothing finite to count */
    series *s = add_series(p, SERIES_HIST, name, bins, color);
    s->x = vae_calloc((size_t)bins + 1, sizeof(double));
    s->y = vae_calloc(bins ? (size_t)bins : 1, sizeof(double));
    for (int b = 0; b <= bins; b++)
        s->x[b] = lo + (hi - lo) * b / bins;
    for (int i = 0; i < n && bins; i++) {
        double v = values[i];
        if (!isfinite(v) || v < lo || v > hi)
            continue;
        int b = (int)((v - lo) / (hi - lo) * bins);
        s->y[b < bins ? b : bins - 1] += 1;
    }
}

/* ---- ticks and numbers --------------------------------------------------------- */

int vae_plot_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step)
{
    if (!isfinite(lo) || !isfinite(hi))
        return 0;
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (lo == hi) {
        double d = lo == 0 ? 1 : fabs(lo) / 10;
        lo -= d;
        hi += d;
    }
    if (target < 1)
        target = 1;
    double raw = (hi - lo) / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double st = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    double first = floor(lo / st + 1e-9), last = ceil(hi / st - 1e-9);
    int n = 0;
    for (double k = first; k <= last && n < max; k++)
        ticks[n++] = k * st + 0.0; /* + 0.0: no "-0" */
    if (step)
        *step = st;
    return n;
}

/* A tick label: as many decimals as the step needs, no "-0". */
static void fmt_tick(char *buf, size_t cap, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    if (fabs(v) >= 1e6 || (step < 1e-4 && v != 0)) {
        snprintf(buf, cap, "%.3g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, cap, "%.*f", dec, v);
    if (strcmp(buf, "-0") == 0 || (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)))
        memmove(buf, buf + 1, strlen(buf));
}

char *vae_plot_escape(const char *s)
{
    if (!s)
        s = "";
    size_t n = 0;
    for (const char *c = s; *c; c++)
        n += *c == '&' ? 5 : *c == '<' || *c == '>' ? 4 : *c == '"' || *c == '\'' ? 6 : 1;
    char *out = vae_calloc(n + 1, 1), *o = out;
    for (const char *c = s; *c; c++) {
        const char *r = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;" : *c == '"' ? "&quot;"
                      : *c == '\'' ? "&apos;" : NULL;
        unsigned char u = (unsigned char)*c;
        if (r) {
            memcpy(o, r, strlen(r));
            o += strlen(r);
        } else {
            *o++ = u < 0x20 && u != '\t' && u != '\n' ? ' ' : *c; /* XML 1.0 forbids other control bytes */
        }
    }
    return out;
}

/* ---- the SVG text ------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    double x0, x1, y0, y1; /* data range of the axes */
} canvas;

/* Coordinates are clamped to +-1e6 so that no "inf" reaches the file. */
static double clamp_coord(double v)
{
    return v < -1e6 ? -1e6 : v > 1e6 ? 1e6 : v;
}

static double px(const canvas *c, double x)
{
    return clamp_coord(LEFT + (x - c->x0) / (c->x1 - c->x0) * (W - LEFT - RIGHT));
}

static double py(const canvas *c, double y)
{
    return clamp_coord((H - BOTTOM) - (y - c->y0) / (c->y1 - c->y0) * (H - TOP - BOTTOM));
}

static void text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s)
{
    char *e = vae_plot_escape(s);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>%s</text>\n", x, y, anchor, extra, e);
    vae_free(e);
}

/* The finite data range over every series. */
static void data_range(const vae_plot *p, double *xlo, double *xhi, double *ylo, double *yhi)
{
    *xlo = *ylo = INFINITY;
    *xhi = *yhi = -INFINITY;
    for (int i = 0; i < p->n_series; i++) {
        const series *s = &p->s[i];
        if (s->kind == SERIES_HIST) {
            if (!s->n)
                continue;
            *xlo = fmin(*xlo, s->x[0]);
            *xhi = fmax(*xhi, s->x[s->n]);
            *ylo = fmin(*ylo, 0);
            for (int b = 0; b < s->n; b++)
                *yhi = fmax(*yhi, s->y[b]);
            continue;
        }
        for (int k = 0; k < s->n; k++) {
            if (!isfinite(s->x[k]) || !isfinite(s->y[k]))
                continue;
            *xlo = fmin(*xlo, s->x[k]);
            *xhi = fmax(*xhi, s->x[k]);
            *ylo = fmin(*ylo, s->y[k]);
            *yhi = fmax(*yhi, s->y[k]);
        }
    }
    if (!(*xlo <= *xhi)) {
        *xlo = 0;
        *xhi = 1;
    }
    if (!(*ylo <= *yhi)) {
        *ylo = 0;
        *yhi = 1;
    }
}

static void draw_axes(const vae_plot *p, canvas *c)
{
    FILE *f = c->f;
    double xlo, xhi, ylo, yhi, xt[MAX_TICKS], yt[MAX_TICKS], xs, ys;
    data_range(p, &xlo, &xhi, &ylo, &yhi);
    int nx = vae_plot_nice_ticks(xlo, xhi, 6, xt, MAX_TICKS, &xs);
    if (p->x_integer && nx > 0 && xs < 1) {
        xs = 1;
        nx = 0;
        for (double k = floor(xlo); k <= ceil(xhi) && nx < MAX_TICKS; k++)
            xt[nx++] = k + 0.0;
        if (nx == 1)
            xt[nx++] = xt[0] + 1;
    }
    int ny = vae_plot_nice_ticks(ylo, yhi, 6, yt, MAX_TICKS, &ys);
    if (nx < 2 || !(xt[0] < xt[nx - 1]) || ny < 2 || !(yt[0] < yt[ny - 1])) {
        /* a range too wide for doubles' ticks (near DBL_MAX): plain unit axes, no ticks */
        nx = ny = 0;
        xlo = ylo = 0;
        xhi = yhi = 1;
    }
    c->x0 = nx ? xt[0] : xlo;
    c->x1 = nx ? xt[nx - 1] : xhi;
    c->y0 = ny ? yt[0] : ylo;
    c->y1 = ny ? yt[ny - 1] : yhi;
    char lab[64];
    fprintf(f, "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (int i = 0; i < nx; i++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px(c, xt[i]), TOP, px(c, xt[i]),
                H - BOTTOM);
    for (int i = 0; i < ny; i++)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT, py(c, yt[i]), W - RIGHT,
                py(c, yt[i]));
    fprintf(f, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000\"/>\n", LEFT,
            TOP, W - LEFT - RIGHT, H - TOP - BOTTOM);
    fprintf(f, "<g class=\"ticks\" stroke=\"#000\">\n");
    for (int i = 0; i < nx; i++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px(c, xt[i]), H - BOTTOM, px(c, xt[i]),
                H - BOTTOM + 5);
    for (int i = 0; i < ny; i++)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT - 5, py(c, yt[i]), LEFT,
                py(c, yt[i]));
    fprintf(f, "</g>\n<g class=\"tick-labels\" font-size=\"12\">\n");
    for (int i = 0; i < nx; i++) {
        fmt_tick(lab, sizeof lab, xt[i], xs);
        text(f, px(c, xt[i]), H - BOTTOM + 19, "middle", "", lab);
    }
    for (int i = 0; i < ny; i++) {
        fmt_tick(lab, sizeof lab, yt[i], ys);
        text(f, LEFT - 8, py(c, yt[i]) + 4, "end", "", lab);
    }
    fprintf(f, "</g>\n");
    if (p->title)
        text(f, W / 2.0, TOP - 16, "middle", " font-size=\"16\" font-weight=\"bold\"", p->title);
    if (p->xlabel)
        text(f, (LEFT + W - RIGHT) / 2.0, H - 18, "middle", " font-size=\"13\"", p->xlabel);
    if (p->ylabel) {
        char extra[128];
        double cy = (TOP + H - BOTTOM) / 2.0;
        snprintf(extra, sizeof extra, " font-size=\"13\" transform=\"rotate(-90 %d %.1f)\"", 20, cy);
        text(f, 20, cy, "middle", extra, p->ylabel);
    }
}

static void draw_line(const canvas *c, const series *s)
{
    FILE *f = c->f;
    const char *col = vae_plot_color(s->color);
    int open = 0;
    for (int k = 0; k < s->n; k++) {
        int ok = isfinite(s->x[k]) && isfinite(s->y[k]);
        if (ok && !open) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
            open = 1;
        } else if (!ok && open) {
            fprintf(f, "\"/>\n");
            open = 0;
        }
        if (ok)
            fprintf(f, "%.2f,%.2f ", px(c, s->x[k]), py(c, s->y[k]));
    }
    if (open)
        fprintf(f, "\"/>\n");
    if (s->n <= 60) /* markers, so a one-point curve shows too */
        for (int k = 0; k < s->n; k++)
            if (isfinite(s->x[k]) && isfinite(s->y[k]))
                fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", px(c, s->x[k]),
                        py(c, s->y[k]), col);
}

static void draw_scatter(const canvas *c, const series *s)
{
    FILE *f = c->f;
    fprintf(f, "<g class=\"scatter\" fill-opacity=\"0.75\">\n");
    for (int k = 0; k < s->n; k++)
        if (isfinite(s->x[k]) && isfinite(s->y[k]))
            fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", px(c, s->x[k]), py(c, s->y[k]),
                    vae_plot_color(s->cls[k]));
    fprintf(f, "</g>\n");
}

static void draw_hist(const canvas *c, const series *s)
{
    FILE *f = c->f;
    const char *col = vae_plot_color(s->color);
    for (int b = 0; b < s->n; b++) {
        if (s->y[b] <= 0)
            continue;
        double x0 = px(c, s->x[b]), x1 = px(c, s->x[b + 1]), y0 = py(c, s->y[b]), y1 = py(c, 0);
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" fill-opacity=\"0.35\" "
                "stroke=\"%s\"/>\n",
                x0, y0, x1 - x0, y1 - y0, col, col);
    }
}

/* One legend entry per named line or histogram and per named scatter class, at most MAX_LEGEND. */
static void draw_legend(const vae_plot *p, FILE *f)
{
    int row = 0;
    double x = W - RIGHT + 14;
    for (int i = 0; i < p->n_series && row < MAX_LEGEND; i++) {
        const series *s = &p->s[i];
        if (s->kind == SERIES_SCATTER) {
            for (int k = 0; k < s->n_names && row < MAX_LEGEND; k++, row++) {
                double y = TOP + 8 + 18 * row;
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x + 9, y,
                        vae_plot_color(k));
                text(f, x + 24, y + 4, "start", "", s->class_names[k]);
            }
            continue;
        }
        if (!s->name)
            continue;
        double y = TOP + 8 + 18 * row++;
        const char *col = vae_plot_color(s->color);
        if (s->kind == SERIES_LINE)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                    x, y, x + 18, y, col);
        else
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"10\" fill=\"%s\" fill-opacity=\"0.35\" "
                       "stroke=\"%s\"/>\n",
                    x, y - 5, col, col);
        text(f, x + 24, y + 4, "start", "", s->name);
    }
}

void vae_plot_x_integer(vae_plot *p)
{
    p->x_integer = 1;
}

/* One panel's elements, shifted down by dy. */
static void panel(const vae_plot *p, FILE *f, int dy)
{
    fprintf(f, "<g transform=\"translate(0 %d)\">\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", dy, W, H);
    canvas c = {.f = f};
    draw_axes(p, &c);
    for (int i = 0; i < p->n_series; i++) {
        const series *s = &p->s[i];
        if (s->kind == SERIES_HIST)
            draw_hist(&c, s);
    }
    for (int i = 0; i < p->n_series; i++) {
        const series *s = &p->s[i];
        if (s->kind == SERIES_SCATTER)
            draw_scatter(&c, s);
        else if (s->kind == SERIES_LINE)
            draw_line(&c, s);
    }
    draw_legend(p, f);
    fprintf(f, "</g>\n");
}

char *vae_plot_svg_stack(const vae_plot *const *p, int n, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        vae_fatal("open_memstream: %s", strerror(errno));
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            W, H * n, W, H * n);
    char *t = vae_plot_escape(n > 0 ? p[0]->title : "");
    fprintf(f, "<title>%s</title>\n", t);
    vae_free(t);
    for (int k = 0; k < n; k++)
        panel(p[k], f, k * H);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0)
        vae_fatal("open_memstream: %s", strerror(errno));
    char *out = vae_calloc(size + 1, 1);
    memcpy(out, buf, size);
    free(buf);
    if (len)
        *len = size;
    return out;
}

char *vae_plot_svg(const vae_plot *p, size_t *len)
{
    return vae_plot_svg_stack(&p, 1, len);
}

int vae_plot_write_stack(const vae_plot *const *p, int n, const char *dir, const char *name)
{
    size_t len;
    char *svg = vae_plot_svg_stack(p, n, &len);
    int rc = vae_run_write_text(dir, name, svg, len);
    vae_free(svg);
    return rc;
}

int vae_plot_write(const vae_plot *p, const char *dir, const char *name)
{
    return vae_plot_write_stack(&p, 1, dir, name);
}
