/*
 * evaluate.h: the numbers `cuvae eval` reports for a saved model on a test set,
 * computed in row batches through the backend table (both backends):
 *
 *   - the negative ELBO split into its terms, per image in nats: recon = -log p(x|z) with one
 *     posterior sample z ~ q(z|x) per image, kl = KL(q(z|x) || p(z)) in closed form;
 *   - per latent dimension: its KL averaged over the images, and the variance over the images
 *     of its posterior mean; a dimension is active when that variance exceeds 0.01 (the count
 *     of active units of Burda et al. 2015), so posterior collapse is visible;
 *   - with K > 0 samples per image, the importance-weighted estimate of -log p(x) (Burda et al.):
 *     log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x), and
 *     iw_i = -log (1/K sum_k w_k), averaged over the images. Rows of a launch are images x
 *     samples (each image's pixels gathered once per sample); each chunk's log weights come
 *     back in one small download and enter a running log-sum-exp per image in double.
 *
 * Not here: argument parsing and printing (cmd_model.c), the test loss that training reports
 * after each epoch (train.c's vae_eval_loss, which gives the same loss for the same seed).
 */
#ifndef VAE_EVALUATE_H
#define VAE_EVALUATE_H

#include "dataset.h"
#include "model.h"
#include "train.h"

#include <stdint.h>
#include <stdio.h>

/* How the grey test images meet the Bernoulli likelihood, listed once: X(ID, value, name). The
 * enum (VAE_BINARIZE_NONE = 0, ...) and the names (evaluate.c) come from it. */
#define VAE_BINARIZATIONS(X)                                                                                  \
    X(NONE, 0, "none")       /* x = pixel / 255 in [0, 1]: not a normalized likelihood of grey images */     \
    X(STATIC, 1, "static")   /* one fixed draw per pixel: x = [u < pixel / 255], u seeded */                 \
    X(DYNAMIC, 2, "dynamic") /* training only: a fresh draw of every image at every step (binarize op) */

typedef enum {
#define VAE_BINARIZE_ENUM(id, value, name) VAE_BINARIZE_##id = value,
    VAE_BINARIZATIONS(VAE_BINARIZE_ENUM)
#undef VAE_BINARIZE_ENUM
} vae_binarize;

/* "none" | "static"; -1 with vae_set_error on anything else. */
int vae_binarize_parse(const char *s, vae_binarize *out);
/* train --binarize: "none" | "dynamic" | "static"; -1 with vae_set_error on anything else. */
int vae_binarize_parse_train(const char *s, vae_binarize *out);
const char *vae_binarize_name(vae_binarize b);
/* The seed of `--binarize static`'s one draw of a training set is --seed ^ this ("bintra"); the
 * test set's is --seed itself, as `cuvae eval --binarize static --seed S` draws it. */
#define VAE_SEED_BINARIZE_TRAIN 0x62696e747261ull
/* Static binarization in place: pixel = 255 if u < pixel / 255 else 0 for bytes, value = 1 if
 * u < value else 0 for floats (which must lie in [0, 1]: vae_binarize_check), with one u per
 * value, in order, from vae_hostrng seeded with `seed` (deterministic for a seed). */
void vae_binarize_static(vae_dataset *d, uint64_t seed);
/* The seed of epoch `epoch`'s (1-based) draw of the test set under train --binarize dynamic
 * --binarize-test redraw: epoch 1's is `seed` itself (the fixed draw's), each later epoch's its own,
 * so a resumed run draws what the uninterrupted one drew. */
uint64_t vae_binarize_epoch_seed(uint64_t seed, int epoch);
/* Whether d can be binarized: bytes always; floats only when every value is in [0, 1].
 * 0, or -1 with vae_set_error naming `what` (the data) and the first value outside. */
int vae_binarize_check(const vae_dataset *d, const char *what);

typedef struct {
    int iw_samples; /* K samples per image for the IW estimate; 0: none */
    uint64_t seed;  /* the noise generator's seed (both passes start from it) */
    FILE *log;      /* each pass's progress (progress.h), NULL: silent */
    int progress;   /* its mode: 1 bar, 0 a line every few seconds, -1 silent */
} vae_eval_options;

/* Per-image means in nats. The model's batch_cap is the row budget of one launch. */
typedef struct {
    int images, latent_dim;
    double recon;   /* -log p(x|z), one z ~ q(z|x) per image */
    double kl;      /* KL(q(z|x) || N(0, I)), closed form */
    double loss;    /* the negative ELBO: recon + kl */
    double loss_mc; /* recon + log q(z|x) - log p(z) at the same z: the ELBO with its KL term
                     * estimated by that sample; equals iw_nll with K = 1 and the same seed. NaN
                     * for a model without a prior (vae_model_has_prior: the ae), whose kl and
                     * kl_dim are 0 and whose loss is recon alone, not a bound on -log p(x) */
    double *kl_dim; /* (latent_dim) KL of each dimension averaged over the images */
    double *mu_var; /* (latent_dim) variance over the images of each dimension's posterior mean */
    int *active;    /* (latent_dim) 1 where mu_var > VAE_ACTIVE_UNIT_VAR */
    int active_units;
    int iw_samples; /* K, 0 when not asked */
    double iw_nll;  /* the IW estimate of -log p(x); NaN when K = 0 */
} vae_eval_result;

#define VAE_ACTIVE_UNIT_VAR 0.01

/* The report of `cuvae eval` on every image of `data`: the loss and its terms (vae_eval_loss's for
 * the same seed), per-dimension KL and active units, the importance-weighted bound. 0, or -1 with vae_set_error when a log weight is not
 * finite. Free the result with vae_eval_result_free. */
int vae_eval_report(vae_model *m, const vae_device_data *data, const vae_eval_options *opt, vae_eval_result *out);
void vae_eval_result_free(vae_eval_result *r);

#endif /* VAE_EVALUATE_H */
