/*
 * toy.h: the 1-D Gaussian-mixture toy of `cuvae train --data toy`: its
 * parameters (flags --toy-weights, --toy-means, --toy-stds, --toy-n, recorded
 * as training settings so a resume draws the same data), the seeded sampler,
 * the true density and CDF, and the total-variation distance between samples
 * and the true mixture.
 *
 * The weights must be positive; they are used normalized (each divided by
 * their sum), so "1,1" means two equal components. Standard deviations must be
 * positive; the three lists must have the same number of components.
 *
 * Total variation (vae_toy_tv): the samples' histogram against the mixture's
 * probability of each bin (from its CDF, exact), 0.5 * sum_b |n_b / n - P_b|,
 * over bins of VAE_TOY_TV_BIN_WIDTH on the fixed range vae_toy_range (every
 * component's mean +- 4 standard deviations, rounded out to whole bins) plus
 * one bin below and one above that range, so the two histograms are whole
 * probability distributions and the distance is in [0, 1].
 *
 * Not here: the toy as a data source of runs, with its model's defaults (data_toy.c), the
 * pictures (toy_pictures.h), training (train.h).
 */
#ifndef VAE_TOY_H
#define VAE_TOY_H

#include "dataset.h"
#include "hostrng.h"
#include "model.h"

#include <stdint.h>

#define VAE_TOY_MAX_COMPONENTS 16
/* The data name that selects the toy (--data toy: data_toy.c). */
#define VAE_TOY_DATA "toy"
/* The default mixture and row counts, as the flags write them (the one place they are given). */
#define VAE_TOY_DEFAULT_WEIGHTS "0.2,0.45,0.35,0.1"
#define VAE_TOY_DEFAULT_MEANS "-3,2.5,1.5,-2.5"
#define VAE_TOY_DEFAULT_STDS "0.3,1.2,0.3,0.2"
#define VAE_TOY_DEFAULT_N "20000,5000"
/* The Gaussian decoder's standard deviation when --sigma is not given. */
#define VAE_TOY_SIGMA 0.1f
/* Histogram bin width of the total variation distance, and the generated samples it uses. */
#define VAE_TOY_TV_BIN_WIDTH 0.1
#define VAE_TOY_TV_SAMPLES 100000

typedef struct {
    int k;                                  /* components */
    int k_weights, k_means, k_stds;         /* how many each flag gave (validated equal to k) */
    double weight[VAE_TOY_MAX_COMPONENTS];  /* > 0, as given (used normalized) */
    double mean[VAE_TOY_MAX_COMPONENTS];
    double std[VAE_TOY_MAX_COMPONENTS];     /* > 0 */
    int n_train, n_test;
    int snapshot_every;                     /* --snapshot-every: a snapshot every N steps; 0 auto (dense early,
                                             * vae_toy_snapshot_due); -1 off */
} vae_toy;

/* Whether `train` draws a snapshot after `step` steps (0: before the first) with --snapshot-every
 * `every`: N > 0 every N steps and at 0; 0 (auto, the default) dense early and sparse later, at 0 and
 * at 1, 2 and 5 times each power of ten from 10 (10, 20, 50, 100, 200, 500, 1000, ...); -1 never. */
int vae_toy_snapshot_due(int every, long step);

/* The VAE_TOY_DEFAULT_* mixture and row counts. */
void vae_toy_default(vae_toy *t);

/* Set one list from its flag's text: "--toy-weights" "--toy-means" "--toy-stds" (comma-separated
 * numbers), or "--toy-n" ("TRAIN,TEST" row counts). 0, or -1 with vae_set_error naming the flag. */
int vae_toy_set(vae_toy *t, const char *flag, const char *text);
/* The canonical text of a flag's value (shortest round-trip decimals), into buf (cap bytes). */
void vae_toy_text(const vae_toy *t, const char *flag, char *buf, size_t cap);
/* Same number of components in the three lists. 0, or -1 with vae_set_error. */
int vae_toy_validate(const vae_toy *t);

/* The mixture's density and CDF at x (normalized weights). */
double vae_toy_density(const vae_toy *t, double x);
double vae_toy_cdf(const vae_toy *t, double x);
/* A standard normal draw (Box-Muller on two uniforms of r). */
double vae_toy_normal(vae_hostrng *r);
/* n draws of the mixture from a generator seeded with seed: x (n), and the component of each
 * into comp (n) when not NULL. Deterministic for (t, n, seed). */
void vae_toy_sample(const vae_toy *t, int n, uint64_t seed, double *x /* (n) */, uint8_t *comp /* (n) or NULL */);
/* The training and test sets (floats, not images, labelled by component), each drawn from
 * its own seed derived from seed (either NULL: not drawn). 0, or -1 with vae_set_error. */
int vae_toy_datasets(const vae_toy *t, uint64_t seed, vae_dataset *train, vae_dataset *test);

/* The fixed range of the histograms: [lo, hi], whole bins of VAE_TOY_TV_BIN_WIDTH. */
void vae_toy_range(const vae_toy *t, double *lo, double *hi);
/* Total variation distance between the n samples' histogram and the mixture (see the top). */
double vae_toy_tv(const vae_toy *t, const double *x /* (n) */, int n);

#endif /* VAE_TOY_H */
