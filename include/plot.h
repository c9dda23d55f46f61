/*
 * plot.h: a small SVG plot writer for the run's charts (loss curves, latent
 * scatter; later the toy's densities and histograms, NMI and capacity curves).
 *
 * A plot is a panel: a title, an x and a y axis with "nice" ticks (steps of
 * 1, 2 or 5 times a power of ten) and tick labels, axis labels, a legend, and
 * any number of series of three kinds: lines (several per plot), scatter
 * points with a colour class each (10 distinguishable colours, one per digit),
 * and histograms (counts over equal bins). Axis ranges come from the finite
 * data; NaN and infinite values are skipped (a line breaks there); an empty
 * plot still draws its axes.
 *
 * Output is deterministic (same calls, same bytes): numbers are printed with
 * snprintf in the C locale, which the program never changes, and text is
 * escaped for XML (& < > " ').
 *
 * Several plots can be stacked as panels of one file (vae_plot_svg_stack).
 *
 * Not here: bitmaps (image.h), log axes.
 */
#ifndef VAE_PLOT_H
#define VAE_PLOT_H

#include <stddef.h>

#define VAE_PLOT_N_COLORS 10

typedef struct vae_plot vae_plot;

/* A new empty plot; the strings are copied (NULL for none). */
vae_plot *vae_plot_new(const char *title, const char *xlabel, const char *ylabel);
void vae_plot_free(vae_plot *p);

/* A line through the n points (x[i], y[i]) in colour class `color`, named in the legend (name NULL:
 * no legend entry, e.g. the second line of a colour already named). */
void vae_plot_line(vae_plot *p, const char *name, const double *x /* (n) */, const double *y /* (n) */, int n,
                   int color);
/* n points, point i in colour class cls[i] (0..VAE_PLOT_N_COLORS-1, taken modulo); the legend
 * names class k class_names[k] for k < n_names (NULL: no legend entries). */
void vae_plot_scatter(vae_plot *p, const double *x /* (n) */, const double *y /* (n) */, const int *cls /* (n) */,
                      int n, const char *const *class_names /* (n_names) */, int n_names);
/* A histogram of the finite values, `bins` equal bins over [lo, hi] (values outside are not
 * counted; lo >= hi: the values' own finite range), drawn as outlined bars. */
void vae_plot_histogram(vae_plot *p, const char *name, const double *values /* (n) */, int n, int bins, double lo,
                        double hi, int color);

/* Ticks of the x axis at whole numbers only (epochs, steps). */
void vae_plot_x_integer(vae_plot *p);

/* The SVG text of the plot (NUL-terminated, *len bytes); free with vae_free. */
char *vae_plot_svg(const vae_plot *p, size_t *len);
/* n plots stacked top to bottom in one SVG (the document's <title> is the first plot's). */
char *vae_plot_svg_stack(const vae_plot *const *p /* (n) */, int n, size_t *len);
/* Write the SVG of one plot, or of a stack, to dir/name atomically. 0, or -1 with vae_set_error. */
int vae_plot_write(const vae_plot *p, const char *dir, const char *name);
int vae_plot_write_stack(const vae_plot *const *p /* (n) */, int n, const char *dir, const char *name);

/* The "#rrggbb" of colour class k (taken modulo VAE_PLOT_N_COLORS): Tableau's 10. */
const char *vae_plot_color(int k);

/* Nice ticks covering [lo, hi]: about `target` steps of 1, 2 or 5 x 10^k; the first tick is
 * floor(lo / step) * step and the last ceil(hi / step) * step. Writes at most max ticks and
 * returns how many there are (lo == hi is widened to lo +- 1 first, or +- |lo|/10).
 * Non-finite lo or hi: 0. */
int vae_plot_nice_ticks(double lo, double hi, int target, double *ticks /* (max) */, int max, double *step);

/* s escaped for XML text and attributes into a new string; free with vae_free. */
char *vae_plot_escape(const char *s);

#endif /* VAE_PLOT_H */
