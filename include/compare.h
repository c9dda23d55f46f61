/*
 * compare.h: the CPU-vs-CUDA check behind `cuvae compare`. Two models with the
 * same configuration and the same initial parameters, one per backend, train
 * on the same images with the same noise; after the first step and after the
 * last, every tensor is compared: the step losses, every gradient, every
 * parameter. A tensor passes when its relative L2 error ||a - r|| / ||r|| and
 * its largest absolute difference over its largest magnitude are both within
 * the tolerance of its kind.
 */
#ifndef VAE_COMPARE_H
#define VAE_COMPARE_H

#include "backend.h"
#include "model.h"

#include <stdio.h>

typedef struct {
    vae_config cfg;
    int steps;          /* training steps (>= 1) */
    int batch_size;
    float lr;
    uint64_t seed;
    const char *data_dir; /* NULL: seeded synthetic images of cfg's size */
    double tol_loss;    /* relative, per step loss */
    double tol_grad;    /* relative L2 and max-abs/max-magnitude, per gradient tensor */
    double tol_param;   /* same, per parameter tensor after the steps */
} vae_compare_options;

void vae_compare_options_default(vae_compare_options *o);

/* Run the comparison of `cand` against `ref` and print a table to `out`.
 * Returns the number of tensors beyond tolerance (0 = pass), or -1 with
 * vae_set_error when the data cannot be loaded. */
int vae_compare_run(const vae_compare_options *o, vae_backend *ref, vae_backend *cand, FILE *out);

#endif
