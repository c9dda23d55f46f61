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
 * Every model `cuvae train` trains can be compared: the plain VAE, the cvae,
 * the joint model (its temperature and capacities scheduled as in training),
 * either likelihood, dynamic and static binarization, gradient clipping, the
 * learning-rate and KL schedules, on seeded synthetic images, an IDX data set
 * or the 1-D toy. The trainer (train.c) runs each step as it does in training
 * (on the CUDA backend a captured graph, replayed), over a run whose length is
 * the N steps rounded up to whole epochs of the data, so the schedules move.
 * Not here: the command line (cmd_compare.c, which reads train's flags through
 * train_settings.h).
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
#include "dataset.h"
#include "evaluate.h"
#include "model.h"
#include "schedule.h"
#include "toy.h"

#include <stdio.h>

typedef struct {
    vae_config cfg;     /* the model; its input size, image shape and (cvae) classes come from
                         * the data, except on synthetic data (a cvae's classes 0 there: 10) */
    int steps;          /* training steps (>= 1) */
    int batch_size;
    float lr;
    uint64_t seed;
    const char *data_dir; /* NULL: seeded synthetic images of cfg's size; "toy" (VAE_TOY_DATA): the
                           * training set of the toy `toy`; else an IDX directory's training split */
    vae_toy toy;        /* the toy's mixture and row counts (with data_dir "toy") */
    vae_binarize binarize; /* none; dynamic: each step's batch a fresh Bernoulli draw on the backend;
                            * static: the data drawn once, as train draws its training set */
    float clip_grad_norm;  /* > 0: each step's gradients clipped to this global L2 norm */
    vae_schedule schedule; /* learning rate, KL weight and temperature over the run */
    double tol_loss;    /* relative, per step loss */
    double tol_grad;    /* relative L2, per gradient tensor */
    double tol_param;   /* relative L2, per parameter tensor after the steps */
    int tf32;           /* --tf32: the candidate (a CUDA backend) runs its GEMMs in TF32 */
} vae_compare_options;

/* The plain VAE of vae_config_default on 512 synthetic images, 10 steps of batch 37 at lr 1e-3,
 * seed 1, the toy's default mixture, no binarization, no clipping, the default schedule. */
void vae_compare_options_default(vae_compare_options *o);
/* Classes of a cvae on synthetic data whose cfg gives none. */
#define VAE_COMPARE_SYNTHETIC_CLASSES 10
/* Images of the synthetic data. */
#define VAE_COMPARE_SYNTHETIC_IMAGES 512

/* TF32's unit roundoff: 10 mantissa bits kept, so rounding an input errs by at most 2^-11. */
#define VAE_COMPARE_TF32_UNIT_ROUNDOFF (1.0 / 2048.0)
/* --tf32: set o->tf32 and the tolerances derived for TF32 GEMMs (compare.c) for o->cfg: with
 * u = VAE_COMPARE_TF32_UNIT_ROUNDOFF and L = 2 (n_hidden + 1) GEMM layers in the forward pass,
 * loss 2uL, gradients and parameters 4uL times 8 for cancellation (default model: 3.9e-3 and
 * 6.25e-2). */
void vae_compare_options_tf32(vae_compare_options *o);

/* The largest difference allowed in any parameter element after `steps` Adam
 * steps at learning rate lr from the same state: 2 * lr * steps. Adam moves an
 * element by about lr per step at most, so two sides that disagree on the sign
 * of a gradient element end at most that far apart; an error in the arithmetic
 * of a whole tensor shows in its relative L2 error instead. */
double vae_compare_param_bound(float lr, int steps);

/* What vae_compare_load and vae_compare_run return when the options do not suit the data (a
 * usage error: --binarize on values outside [0, 1], a configuration vae_config_validate refuses
 * once the data gave its size), with vae_set_error. */
#define VAE_COMPARE_UNSUITED (-2)

/* The data the comparison trains on (synthetic, the toy's training set, or the IDX training
 * split; with --binarize static drawn once from o->seed ^ VAE_SEED_BINARIZE_TRAIN) and the
 * model's configuration for it (o->cfg with the data's input size and image shape, and a cvae's
 * classes), validated. 0 (free data with vae_dataset_free), -1 with vae_set_error when the data
 * cannot be loaded or a cvae's has no labels of 2 classes or more, or VAE_COMPARE_UNSUITED. */
int vae_compare_load(const vae_compare_options *o, vae_dataset *data, vae_config *cfg);

/* Run the comparison of `cand` against `ref` on data and cfg from vae_compare_load and print a
 * table to `out`. With o->tf32 the candidate must be a CUDA backend: it is switched to TF32
 * (vae_cuda_set_tf32) and the output says so and gives the tolerances in use; otherwise -1 with
 * vae_set_error. Returns the number of tensors beyond tolerance (0 = pass). */
int vae_compare_run_data(const vae_compare_options *o, const vae_dataset *data, const vae_config *cfg,
                         vae_backend *ref, vae_backend *cand, FILE *out);

/* vae_compare_load, then vae_compare_run_data: the number of tensors beyond tolerance, or
 * vae_compare_load's -1 or VAE_COMPARE_UNSUITED. */
int vae_compare_run(const vae_compare_options *o, vae_backend *ref, vae_backend *cand, FILE *out);

#endif
