/*
 * toy_pictures.c: the 1-D mixture toy's three SVG pictures and its total-variation distance;
 * see toy_pictures.h. The model runs through pictures.h's batched encode and decode (either
 * backend); the histograms and densities are host code.
 */
#define _GNU_SOURCE /* M_PI */
#include "toy_pictures.h"

#include "hostrng.h"
#include "pictures.h"
#include "plot.h"
#include "vae_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const vae_toy_pictures[VAE_TOY_N_PICTURES] = {
#define TOY_PICTURE_FILE(id, file) [VAE_TOY_PICTURE_##id] = file,
    VAE_TOY_PICTURE_KINDS(TOY_PICTURE_FILE)
#undef TOY_PICTURE_FILE
};

/* Points of the density curves, and of the decoder's mean curve. */
#define CURVE_POINTS 600
#define VAE_TOY_CURVE_POINTS 241
/* Seeds of the generated data's two draws and of the encoder's samples, from the run's seed. */
#define SEED_TOY_GEN 0x746f7967656eull   /* "toygen" */
#define SEED_TOY_ENC 0x746f79656e63ull   /* "toyenc" */

void vae_toy_generate(vae_model *m, int n, uint64_t seed, double *x)
{
    vae_toy_generate_with_z(m, n, seed, x, NULL);
}

void vae_toy_generate_with_z(vae_model *m, int n, uint64_t seed, double *x, double *z0)
{
    const int Z = m->cfg.latent_dim;
    if (m->cfg.input_dim != 1 || m->cfg.likelihood != VAE_LIKELIHOOD_GAUSSIAN)
        vae_fatal("vae_toy_generate: the model's input is %d-D with the %s likelihood, not 1-D Gaussian",
                  m->cfg.input_dim, vae_likelihood_name(m->cfg.likelihood));
    vae_hostrng r;
    vae_hostrng_seed(&r, seed ^ SEED_TOY_GEN);
    float *z = vae_calloc((size_t)n * Z, sizeof *z), *mean = vae_calloc((size_t)n, sizeof *mean);
    for (size_t i = 0; i < (size_t)n * Z; i++)
        z[i] = (float)vae_toy_normal(&r);
    vae_pictures_decode(m, z, n, -1, NULL, mean);
    for (int i = 0; i < n; i++)
        x[i] = mean[i] + m->cfg.sigma * vae_toy_normal(&r);
    for (int i = 0; z0 && i < n; i++)
        z0[i] = z[(size_t)i * Z];
    vae_free(z);
    vae_free(mean);
}

/* The true density as expected counts of a histogram of n values in bins of the TV width. */
static void add_density(vae_plot *p, const vae_toy *t, int n, double lo, double hi)
{
    double x[CURVE_POINTS], y[CURVE_POINTS];
    for (int i = 0; i < CURVE_POINTS; i++) {
        x[i] = lo + (hi - lo) * i / (CURVE_POINTS - 1);
        y[i] = n * VAE_TOY_TV_BIN_WIDTH * vae_toy_density(t, x[i]);
    }
    vae_plot_line(p, "true density", x, y, CURVE_POINTS, 3);
}

static int bins_of(double lo, double hi)
{
    return (int)lround((hi - lo) / VAE_TOY_TV_BIN_WIDTH);
}

static int write_density(const vae_toy *t, const vae_dataset *train, const char *dir, double lo, double hi)
{
    double *x = vae_calloc((size_t)train->n, sizeof *x);
    for (int i = 0; i < train->n; i++)
        x[i] = train->values[i];
    char title[128];
    snprintf(title, sizeof title, "Training data (%d rows) and the true density", train->n);
    vae_plot *p = vae_plot_new(title, "x", "count per bin of 0.1");
    vae_plot_histogram(p, "training data", x, train->n, bins_of(lo, hi), lo, hi, 0);
    add_density(p, t, train->n, lo, hi);
    int rc = vae_plot_write(p, dir, vae_toy_pictures[VAE_TOY_PICTURE_DENSITY]);
    vae_plot_free(p);
    vae_free(x);
    return rc;
}

/* Test rows' samples z ~ q(z|x) (the first latent dimension: z (n)) of the first n test rows, with their
 * values x (n) and components cls (n); zfull (n, Z) gets every dimension when not NULL. */
static void encode_samples(vae_model *m, const vae_dataset *test, int n, uint64_t seed, double *x, double *z, int *cls,
                           float *zfull)
{
    const int Z = m->cfg.latent_dim;
    int *idx = vae_calloc((size_t)n, sizeof *idx);
    float *mu = vae_calloc((size_t)n * Z, sizeof *mu), *lv = vae_calloc((size_t)n * Z, sizeof *lv);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    vae_pictures_encode(m, test, idx, n, mu, lv, NULL);
    vae_hostrng r;
    vae_hostrng_seed(&r, seed ^ SEED_TOY_ENC);
    for (int i = 0; i < n; i++) {
        x[i] = test->values[i];
        cls[i] = test->labels ? test->labels[i] : 0;
        for (int d = 0; d < Z; d++) { /* z ~ q(z|x), dimension by dimension (the first as before) */
            const double zd = mu[(size_t)i * Z + d] + exp(0.5 * lv[(size_t)i * Z + d]) * vae_toy_normal(&r);
            if (d == 0)
                z[i] = zd;
            if (zfull)
                zfull[(size_t)i * Z + d] = (float)zd;
        }
    }
    vae_free(idx);
    vae_free(mu);
    vae_free(lv);
}

/* The histogram of z (bins of 0.1 on [-4, 4]) over the prior N(0, 1)'s expected counts. */
static vae_plot *z_histogram(const char *title, const char *zname, const double *z, int n)
{
    vae_plot *p = vae_plot_new(title, zname, "count per bin of 0.1");
    vae_plot_histogram(p, zname, z, n, 80, -4, 4, 1);
    double gx[CURVE_POINTS], gy[CURVE_POINTS];
    for (int i = 0; i < CURVE_POINTS; i++) {
        gx[i] = -4 + 8.0 * i / (CURVE_POINTS - 1);
        gy[i] = n * 0.1 * exp(-0.5 * gx[i] * gx[i]) / sqrt(2 * M_PI);
    }
    vae_plot_line(p, "prior N(0, 1)", gx, gy, CURVE_POINTS, 3);
    return p;
}

static int test_rows(const vae_dataset *test)
{
    return test->n < VAE_PICTURES_SCATTER_MAX ? test->n : VAE_PICTURES_SCATTER_MAX;
}

/* Encoding: the (x, z ~ q(z|x)) scatter of the test rows by component, hist(x) over the true density,
 * hist(z) over the prior. Three plots into p. */
static void encoding_plots(vae_model *m, const vae_toy *t, const vae_dataset *test, uint64_t seed, double lo,
                           double hi, const char *when, vae_plot *p[3])
{
    const int Z = m->cfg.latent_dim, n = test_rows(test);
    int *cls = vae_calloc((size_t)n, sizeof *cls);
    double *x = vae_calloc((size_t)n, sizeof *x), *z = vae_calloc((size_t)n, sizeof *z);
    encode_samples(m, test, n, seed, x, z, cls, NULL);
    char names[VAE_TOY_MAX_COMPONENTS][48];
    const char *name_ptr[VAE_TOY_MAX_COMPONENTS];
    for (int k = 0; k < t->k; k++) {
        snprintf(names[k], sizeof names[k], "component %d", k + 1);
        name_ptr[k] = names[k];
    }
    const char *zname = Z == 1 ? "z" : "z[0]";
    char title[200];
    snprintf(title, sizeof title, "Encoding%s: samples (x, %s ~ q(z|x)), %d test rows", when, zname, n);
    p[0] = vae_plot_new(title, "x", zname);
    vae_plot_scatter(p[0], x, z, cls, n, name_ptr, t->k);
    p[1] = vae_plot_new("Marginal of x (test rows) and the true density", "x", "count per bin of 0.1");
    vae_plot_histogram(p[1], "x", x, n, bins_of(lo, hi), lo, hi, 0);
    add_density(p[1], t, n, lo, hi);
    snprintf(title, sizeof title, "Marginal of %s (aggregate posterior) and the prior", zname);
    p[2] = z_histogram(title, zname, z, n);
    vae_free(cls);
    vae_free(x);
    vae_free(z);
}

/* Decoding: the decoder's mean x = f(z) over z in [-3, 3] (the other dimensions 0), and the histogram of
 * the test rows' reconstructions f(z), z ~ q(z|x), over the true density. Two plots into p. */
static void decoding_plots(vae_model *m, const vae_toy *t, const vae_dataset *test, uint64_t seed, double lo,
                           double hi, const char *when, vae_plot *p[2])
{
    const int Z = m->cfg.latent_dim, n = test_rows(test);
    float *zc = vae_calloc((size_t)VAE_TOY_CURVE_POINTS * Z, sizeof *zc), *fc = vae_calloc(VAE_TOY_CURVE_POINTS, sizeof *fc);
    double cx[VAE_TOY_CURVE_POINTS], cy[VAE_TOY_CURVE_POINTS];
    for (int i = 0; i < VAE_TOY_CURVE_POINTS; i++)
        zc[(size_t)i * Z] = (float)(cx[i] = -3 + 6.0 * i / (VAE_TOY_CURVE_POINTS - 1));
    vae_pictures_decode(m, zc, VAE_TOY_CURVE_POINTS, -1, NULL, fc);
    for (int i = 0; i < VAE_TOY_CURVE_POINTS; i++)
        cy[i] = fc[i];
    const char *zname = Z == 1 ? "z" : "z[0]";
    char title[200];
    snprintf(title, sizeof title, "Decoding%s: the decoder's mean x = f(%s)", when, zname);
    p[0] = vae_plot_new(title, zname, "x = f(z)");
    vae_plot_line(p[0], "f(z)", cx, cy, VAE_TOY_CURVE_POINTS, 0);
    int *cls = vae_calloc((size_t)n, sizeof *cls);
    double *x = vae_calloc((size_t)n, sizeof *x), *z = vae_calloc((size_t)n, sizeof *z);
    float *zs = vae_calloc((size_t)n * Z, sizeof *zs), *rec = vae_calloc((size_t)n, sizeof *rec);
    encode_samples(m, test, n, seed, x, z, cls, zs);
    vae_pictures_decode(m, zs, n, -1, NULL, rec);
    for (int i = 0; i < n; i++)
        x[i] = rec[i];
    snprintf(title, sizeof title, "Reconstructions f(z), z ~ q(z|x), of %d test rows, and the true density", n);
    p[1] = vae_plot_new(title, "x", "count per bin of 0.1");
    vae_plot_histogram(p[1], "reconstructions", x, n, bins_of(lo, hi), lo, hi, 2);
    add_density(p[1], t, n, lo, hi);
    vae_free(zc);
    vae_free(fc);
    vae_free(cls);
    vae_free(x);
    vae_free(z);
    vae_free(zs);
    vae_free(rec);
}

/* Generation: z ~ N(0, I), x = f(z) + sigma eps (n of them): the (x, z) scatter (the first
 * VAE_PICTURES_SCATTER_MAX), hist(x) over the true density titled with the total-variation distance *tv,
 * and hist(z) over the prior. Three plots into p. */
static void generation_plots(vae_model *m, const vae_toy *t, uint64_t seed, double lo, double hi, const char *when,
                             int n, vae_plot *p[3], double *tv)
{
    const int shown = n < VAE_PICTURES_SCATTER_MAX ? n : VAE_PICTURES_SCATTER_MAX;
    double *x = vae_calloc((size_t)n, sizeof *x), *z = vae_calloc((size_t)n, sizeof *z);
    vae_toy_generate_with_z(m, n, seed, x, z);
    *tv = vae_toy_tv(t, x, n);
    const char *zname = m->cfg.latent_dim == 1 ? "z" : "z[0]";
    char title[200], xlabel[200];
    int *cls = vae_calloc((size_t)shown, sizeof *cls);
    snprintf(title, sizeof title, "Generation%s: (x, %s), %s ~ N(0, 1), x = f(z) + sigma eps", when, zname, zname);
    snprintf(xlabel, sizeof xlabel, "x (the first %d of %d draws)", shown, n);
    p[0] = vae_plot_new(title, xlabel, zname);
    vae_plot_scatter(p[0], x, z, cls, shown, NULL, 0);
    vae_free(cls);
    snprintf(title, sizeof title, "Generated data: total variation %.4f from the true density", *tv);
    snprintf(xlabel, sizeof xlabel, "x ~ p(x|z), z ~ N(0, 1): %d samples; TV over bins of 0.1 on [%g, %g]", n, lo,
             hi);
    if (n != VAE_TOY_TV_SAMPLES) /* a snapshot's: fewer draws, so a noisier distance than the run's */
        snprintf(title, sizeof title, "Generated data: total variation %.4f from the true density (%d draws)", *tv, n);
    p[1] = vae_plot_new(title, xlabel, "count per bin of 0.1");
    vae_plot_histogram(p[1], "generated", x, n, bins_of(lo, hi), lo, hi, 1);
    add_density(p[1], t, n, lo, hi);
    snprintf(title, sizeof title, "The generating %s ~ N(0, 1)", zname);
    p[2] = z_histogram(title, zname, z, n);
    vae_free(x);
    vae_free(z);
}

static int write_stack(vae_plot **p, int n, const char *dir, const char *name)
{
    int rc = vae_plot_write_stack((const vae_plot *const *)p, n, dir, name);
    for (int i = 0; i < n; i++)
        vae_plot_free(p[i]);
    return rc;
}

int vae_toy_pictures_write(vae_model *m, const vae_toy *t, const vae_dataset *train, const vae_dataset *test,
                           const char *dir, uint64_t seed, double *tv)
{
    double lo, hi;
    vae_toy_range(t, &lo, &hi);
    vae_plot *p[3];
    if (write_density(t, train, dir, lo, hi))
        return -1;
    encoding_plots(m, t, test, seed, lo, hi, "", p);
    if (write_stack(p, 3, dir, vae_toy_pictures[VAE_TOY_PICTURE_LATENT]))
        return -1;
    decoding_plots(m, t, test, seed, lo, hi, "", p);
    if (write_stack(p, 2, dir, vae_toy_pictures[VAE_TOY_PICTURE_DECODED]))
        return -1;
    generation_plots(m, t, seed, lo, hi, "", VAE_TOY_TV_SAMPLES, p, tv);
    return write_stack(p, 3, dir, vae_toy_pictures[VAE_TOY_PICTURE_GENERATED]);
}

void vae_toy_snapshot_name(long step, char *buf, size_t cap)
{
    snprintf(buf, cap, VAE_TOY_SNAPSHOT_PREFIX "%08ld.svg", step);
}

int vae_toy_snapshot_write(vae_model *m, const vae_toy *t, const vae_dataset *test, const char *dir, uint64_t seed,
                           long step, double epoch, double *tv)
{
    double lo, hi;
    vae_toy_range(t, &lo, &hi);
    char when[96], name[64];
    snprintf(when, sizeof when, " after %ld steps (epoch %.2f)", step, epoch);
    vae_plot *p[8];
    encoding_plots(m, t, test, seed, lo, hi, when, p);
    decoding_plots(m, t, test, seed, lo, hi, when, p + 3);
    generation_plots(m, t, seed, lo, hi, when, VAE_TOY_SNAPSHOT_SAMPLES, p + 5, tv);
    vae_toy_snapshot_name(step, name, sizeof name);
    return write_stack(p, 8, dir, name);
}
