/*
 * compare.h: the CPU-vs-CUDA check behind `cuvae compare`. Two models with the
 * same configuration and the same initial parameters, one per backend, train
 * on the same images with the same noise for N steps. Before every step the
 * candidate is given the reference's parameters, Adam moments and step
 * counter, so each step measures one step's arithmetic on a state along the
 * reference's trajectory. The step losses are compared at every step; every
 * gradient and every parameter after the first and after the last step.
 *
 * A tensor passes when it is finite and its relative L2 error ||a - r|| / ||r||
 * is within the tolerance of its kind; a parameter tensor must also have no
 * element further than vae_compare_param_bound() from the reference.
 *
 * Why each step starts from the same state: a GPU sums in another order than
 * the CPU, so results differ in the last bits, and training amplifies such
 * differences. Measured with one ulp of noise on every GEMM element
 * (tests/test_compare.c), free-running parameters drift to a relative L2
 * error of 4e-4 in 30 steps and the gradients that follow from them to 5e-2,
 * while a step from a shared state stays near 1e-5.
 *
 * Why no element-wise relative bound: where the last bits decide a sign, the
 * two sides part ways for single elements. A ReLU unit whose input is within
 * rounding of zero is on in one and off in the other, and a gradient element
 * that is cancellation noise (1e-9 beside values of 1e-2) has either sign,
 * which Adam's first update, about lr * sign(g), turns into a full step in
 * opposite directions. Such elements are legitimate and few; the relative L2
 * error of their tensor stays small, while a bug moves it.
 * tests/test_compare.c checks both sides of that line without a GPU.
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
    double tol_grad;    /* relative L2, per gradient tensor */
    double tol_param;   /* relative L2, per parameter tensor after the steps */
    int tf32;           /* --tf32: the candidate (a CUDA backend) runs its GEMMs in TF32 */
} vae_compare_options;

void vae_compare_options_default(vae_compare_options *o);

/* TF32's unit roundoff: 10 mantissa bits kept, so rounding an input errs by at most 2^-11. */
#define VAE_COMPARE_TF32_UNIT_ROUNDOFF (1.0 / 2048.0)
/* --tf32: set o->tf32 and the tolerances derived for TF32 GEMMs (compare.c) for o->cfg: with
 * u = VAE_COMPARE_TF32_UNIT_ROUNDOFF and L = 2 (n_hidden + 1) GEMM layers in the forward pass,
 * loss 2uL, gradients and parameters 4uL (default model: 3.9e-3 and 7.8e-3). */
void vae_compare_options_tf32(vae_compare_options *o);

/* The largest difference allowed in any parameter element after `steps` Adam
 * steps at learning rate lr from the same state: 2 * lr * steps. Adam moves an
 * element by about lr per step at most, so two sides that disagree on the sign
 * of a gradient element end at most that far apart; an error in the arithmetic
 * of a whole tensor shows in its relative L2 error instead. */
double vae_compare_param_bound(float lr, int steps);

/* Run the comparison of `cand` against `ref` and print a table to `out`. With o->tf32 the
 * candidate must be a CUDA backend: it is switched to TF32 (vae_cuda_set_tf32) and the
 * output says so and gives the tolerances in use; otherwise -1 with vae_set_error.
 * Returns the number of tensors beyond tolerance (0 = pass), or -1 with
 * vae_set_error when the data cannot be loaded. */
int vae_compare_run(const vae_compare_options *o, vae_backend *ref, vae_backend *cand, FILE *out);

#endif
