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

/* Points of the density curves. */
#define CURVE_POINTS 600
/* Seeds of the generated data's two draws and of the encoder's samples, from the run's seed. */
#define SEED_TOY_GEN 0x746f7967656eull   /* "toygen" */
#define SEED_TOY_ENC 0x746f79656e63ull   /* "toyenc" */

void vae_toy_generate(vae_model *m, int n, uint64_t seed, double *x)
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

static int write_latent(vae_model *m, const vae_toy *t, const vae_dataset *test, const char *dir, uint64_t seed,
                        double lo, double hi)
{
    const int Z = m->cfg.latent_dim, n = test->n < VAE_PICTURES_SCATTER_MAX ? test->n : VAE_PICTURES_SCATTER_MAX;
    int *idx = vae_calloc((size_t)n, sizeof *idx), *cls = vae_calloc((size_t)n, sizeof *cls);
    float *mu = vae_calloc((size_t)n * Z, sizeof *mu), *lv = vae_calloc((size_t)n * Z, sizeof *lv);
    double *x = vae_calloc((size_t)n, sizeof *x), *z = vae_calloc((size_t)n, sizeof *z);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    vae_pictures_encode(m, test, idx, n, mu, lv, NULL);
    vae_hostrng r;
    vae_hostrng_seed(&r, seed ^ SEED_TOY_ENC);
    for (int i = 0; i < n; i++) {
        x[i] = test->values[i];
        z[i] = mu[(size_t)i * Z] + exp(0.5 * lv[(size_t)i * Z]) * vae_toy_normal(&r); /* z[0] ~ q(z|x) */
        cls[i] = test->labels ? test->labels[i] : 0;
    }
    char names[VAE_TOY_MAX_COMPONENTS][48];
    const char *name_ptr[VAE_TOY_MAX_COMPONENTS];
    for (int k = 0; k < t->k; k++) {
        snprintf(names[k], sizeof names[k], "component %d", k + 1);
        name_ptr[k] = names[k];
    }
    const char *zname = Z == 1 ? "z" : "z[0]";
    char title[160];
    snprintf(title, sizeof title, "Encoder samples (x, %s ~ q(z|x)), %d test rows", zname, n);
    vae_plot *p[3];
    p[0] = vae_plot_new(title, "x", zname);
    vae_plot_scatter(p[0], x, z, cls, n, name_ptr, t->k);
    p[1] = vae_plot_new("Marginal of x (test rows) and the true density", "x", "count per bin of 0.1");
    vae_plot_histogram(p[1], "x", x, n, bins_of(lo, hi), lo, hi, 0);
    add_density(p[1], t, n, lo, hi);
    snprintf(title, sizeof title, "Marginal of %s (aggregate posterior) and the prior", zname);
    p[2] = vae_plot_new(title, zname, "count per bin of 0.1");
    vae_plot_histogram(p[2], zname, z, n, 80, -4, 4, 1);
    double gx[CURVE_POINTS], gy[CURVE_POINTS];
    for (int i = 0; i < CURVE_POINTS; i++) {
        gx[i] = -4 + 8.0 * i / (CURVE_POINTS - 1);
        gy[i] = n * 0.1 * exp(-0.5 * gx[i] * gx[i]) / sqrt(2 * M_PI);
    }
    vae_plot_line(p[2], "prior N(0, 1)", gx, gy, CURVE_POINTS, 3);
    int rc = vae_plot_write_stack((const vae_plot *const *)p, 3, dir, vae_toy_pictures[VAE_TOY_PICTURE_LATENT]);
    for (int i = 0; i < 3; i++)
        vae_plot_free(p[i]);
    vae_free(idx);
    vae_free(cls);
    vae_free(mu);
    vae_free(lv);
    vae_free(x);
    vae_free(z);
    return rc;
}

static int write_generated(vae_model *m, const vae_toy *t, const char *dir, uint64_t seed, double lo, double hi,
                           double *tv)
{
    double *x = vae_calloc(VAE_TOY_TV_SAMPLES, sizeof *x);
    vae_toy_generate(m, VAE_TOY_TV_SAMPLES, seed, x);
    *tv = vae_toy_tv(t, x, VAE_TOY_TV_SAMPLES);
    char title[128], xlabel[160];
    snprintf(title, sizeof title, "Generated data: total variation %.4f from the true density", *tv);
    snprintf(xlabel, sizeof xlabel, "x ~ p(x|z), z ~ N(0, 1): %d samples; TV over bins of 0.1 on [%g, %g]",
             VAE_TOY_TV_SAMPLES, lo, hi);
    vae_plot *p = vae_plot_new(title, xlabel, "count per bin of 0.1");
    vae_plot_histogram(p, "generated", x, VAE_TOY_TV_SAMPLES, bins_of(lo, hi), lo, hi, 1);
    add_density(p, t, VAE_TOY_TV_SAMPLES, lo, hi);
    int rc = vae_plot_write(p, dir, vae_toy_pictures[VAE_TOY_PICTURE_GENERATED]);
    vae_plot_free(p);
    vae_free(x);
    return rc;
}

int vae_toy_pictures_write(vae_model *m, const vae_toy *t, const vae_dataset *train, const vae_dataset *test,
                           const char *dir, uint64_t seed, double *tv)
{
    double lo, hi;
    vae_toy_range(t, &lo, &hi);
    if (write_density(t, train, dir, lo, hi) || write_latent(m, t, test, dir, seed, lo, hi))
        return -1;
    return write_generated(m, t, dir, seed, lo, hi, tv);
}
