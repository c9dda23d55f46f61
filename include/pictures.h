/*
 * pictures.h: the pictures of a trained model, written into the run directory
 * at the end of `cuvae train` and on demand by `cuvae plot`.
 *
 * Every image goes through the model's own backend ops (vae_model_forward,
 * vae_model_decode), in batches of up to the model's batch_cap rows: one
 * upload, one forward or decode and one download per batch, on either backend.
 * Grids are PNGs (image.h) with each pixel drawn as a scale x scale block;
 * charts are SVG (plot.h). The files and their captions are vae_pictures[].
 *
 * Unlabelled test data (labels NULL) gets a scatter in one colour, an
 * interpolation between its first two rows and one row of per-digit samples.
 * A model whose input is not an image is refused (vae_pictures_need_image).
 *
 * Not here: the sample and reconstruction grids (render.c), the report that
 * shows the pictures.
 */
#ifndef VAE_PICTURES_H
#define VAE_PICTURES_H

#include "dataset.h"
#include "model.h"

#include <stdint.h>
#include <stdio.h>

/* Pixel scale of grids when none is given: each pixel a 3 x 3 block. */
#define VAE_PICTURES_SCALE_DEFAULT 3

/* Traversals: at most this many latent dimensions (rows), and this many values from -3 to 3. */
#define VAE_PICTURES_TRAVERSAL_ROWS 20
#define VAE_PICTURES_TRAVERSAL_STEPS 13
/* Manifold: a side x side grid (2-D latents only), by default this side; plot --manifold-size up to
 * the most. */
#define VAE_PICTURES_MANIFOLD_SIDE 20
#define VAE_PICTURES_MANIFOLD_SIDE_MAX 50
/* Interpolation: decoded steps between (and including) the two codes, originals at both ends. */
#define VAE_PICTURES_INTERP_STEPS 10
/* Per-digit generation: samples z = mu + sigma * eps beside each original. */
#define VAE_PICTURES_PER_DIGIT 8
/* Latent scatter: at most this many test images unless plot --scatter-images asks for more. */
#define VAE_PICTURES_SCATTER_MAX 5000
/* Posterior cloud: this many test images (one colour each: at most VAE_PLOT_N_COLORS), this many
 * draws of q(z|x) each, unless plot --cloud-images / --cloud-samples say otherwise. */
#define VAE_PICTURES_CLOUD_IMAGES 10
#define VAE_PICTURES_CLOUD_SAMPLES 200
#define VAE_PICTURES_CLOUD_SAMPLES_MAX 10000

/* The pictures in the order written, listed once: X(ID, file, caption), the name in the run
 * directory and one line saying what it shows. The enum (VAE_PICTURE_LATENT_SCATTER, ...),
 * vae_pictures[] and the pictures among the run's files (run_dir.c) come from it. */
#define VAE_PICTURE_KINDS(X)                                                                                   \
    X(LATENT_SCATTER, "latent_scatter.svg",                                                                    \
      "posterior means (an autoencoder's codes; with plot --scatter samples one draw of q(z|x) each) of "      \
      "test images coloured by label (2-D latents directly, larger ones on the first two principal "          \
      "components of the means)")                                                                              \
    X(MANIFOLD, "manifold.png",                                                                                \
      "decoded grid of the 2-D latent plane: 20x20 evenly spaced in the prior's quantiles, or with plot "      \
      "--manifold-range R --manifold-size N an N x N linear grid over [-R, R]^2")                              \
    X(TRAVERSALS, "traversals.png",                                                                            \
      "one row per latent dimension: that dimension moved from -3 to "                                         \
      "+3 around a test image's posterior mean, decoded")                                                      \
    X(INTERPOLATION, "interpolation.png",                                                                      \
      "two test images (at the ends) and the decoded straight "                                                \
      "line between their posterior means")                                                                    \
    X(PER_DIGIT, "per_digit.png",                                                                              \
      "one test image per label (left) and decoded samples "                                                   \
      "z = mu + sigma * eps from its posterior")                                                               \
    X(POSTERIOR_CLOUD, "posterior_cloud.svg",                                                                  \
      "K draws of q(z|x) for each of N test images, one colour per image, in the latent scatter's plane "      \
      "(plot --cloud-images N --cloud-samples K; default 10 and 200)")                                         \
    X(LOSS_CURVES, "loss_curves.svg",                                                                          \
      "loss, reconstruction and KL per epoch, train and test "                                                 \
      "(and validation), in nats per image")

typedef enum {
#define VAE_PICTURE_ENUM(id, file, caption) VAE_PICTURE_##id,
    VAE_PICTURE_KINDS(VAE_PICTURE_ENUM)
#undef VAE_PICTURE_ENUM
    VAE_PICTURES_N
} vae_picture_kind;

typedef struct {
    const char *file;    /* name in the run directory: "latent_scatter.svg", ... */
    const char *caption; /* one line saying what it shows */
} vae_picture;

/* The pictures in the order written, indexed by vae_picture_kind. */
extern const vae_picture vae_pictures[VAE_PICTURES_N];

/* What to draw and how; a zero field takes its default, so {.scale = 3, .seed = 1} draws the
 * pictures `cuvae train` leaves. */
typedef struct {
    int scale;               /* pixel scale of the PNG grids (1..64) */
    uint64_t seed;           /* the noise of every posterior draw (per-digit samples, cloud, sampled scatter) */
    const char *metrics_csv; /* the run's metrics.csv for the loss curves; NULL or missing: none drawn */
    FILE *log;               /* "wrote ..." and "skipped ..." lines; NULL: silent */
    double manifold_range;   /* > 0: the manifold an even linear grid over [-R, R]^2; 0: the prior's quantiles */
    int manifold_side;       /* the manifold's side, 2..VAE_PICTURES_MANIFOLD_SIDE_MAX; 0: MANIFOLD_SIDE */
    int scatter_samples;     /* latent scatter: 1 one draw of q(z|x) per image, 0 the posterior means */
    int scatter_images;      /* latent scatter: the first this many test images; 0: up to SCATTER_MAX */
    int cloud_images;        /* posterior cloud: the first this many test images, 1..VAE_PLOT_N_COLORS; 0: default */
    int cloud_samples;       /* posterior cloud: draws per image, 1..CLOUD_SAMPLES_MAX; 0: default */
} vae_pictures_options;

/* Write every picture that applies into dir (the manifold only for a 2-D latent, the loss curves
 * only with a metrics.csv). Returns how many were written, or -1 with vae_set_error. */
int vae_pictures_write_all(vae_model *m, const vae_dataset *test, const char *dir, const vae_pictures_options *o);

/* loss_curves.svg in dir from the run's metrics.csv at csv: a panel for the loss and one per loss
 * term (the columns train_<term>), each with its train, test and val columns against epoch, in
 * nats per `row` ("image", "value"); the loss panel's title says the negative ELBO only at beta
 * 1 (the reported loss weighs the KL by beta). For any model, images or not. 1 written, 0 no
 * such file, -1 with vae_set_error. */
int vae_pictures_loss_curves(const char *csv, const char *dir, double beta, const char *row);

/* 0 when c's input is an image (image_rows x image_cols); else -1 with vae_set_error naming
 * model_path (NULL: "the model") and why there is nothing to draw. Every function that draws
 * images (these, vae_render_samples, vae_render_reconstructions) checks it first, and the
 * commands that draw (sample, reconstruct, plot) check it with the model's path before they
 * load anything else. */
int vae_pictures_need_image(const vae_config *c, const char *model_path);

/* Whether picture k applies to this model drawn with options o (NULL: the defaults). The manifold:
 * a 2-D latent of a model that reads no label (a conditional model's latent plane is another
 * picture for every class), and for the prior's quantiles a model with a prior; a linear grid
 * (o->manifold_range > 0) decodes an autoencoder's code plane too. The per-digit samples and the
 * posterior cloud: a model with a prior and posterior noise. */
int vae_picture_applies(const vae_model *m, vae_picture_kind k, const vae_pictures_options *o);
/* Why picture k is skipped for m, one phrase, when the model rules it out (no prior: an
 * autoencoder); NULL when it applies or is left out only for its shape (a latent not 2-D). */
const char *vae_picture_skip_reason(const vae_model *m, vae_picture_kind k);
/* The reason a picture drawn from the prior is skipped for a model without one. */
#define VAE_PICTURE_NO_PRIOR                                                                            \
    "the model has no prior to draw from (an autoencoder: its code is deterministic); the pictures "   \
    "of its codes (reconstructions, latent scatter, traversals, interpolation) are drawn"

/* ---- the pieces, for the tests ----------------------------------------------------------- */

/* Posterior means and log-variances of images idx[0..n) of data (n, Z) each (a deterministic
 * code: mu is z and logvar -inf; logvar may be NULL), in batches of the encoder alone (a
 * conditional model reads the images' labels with them), and for a model with a
 * categorical latent each image's argmax q(c|x) into cats (n) when cats is not NULL (untouched
 * for a model without one); `cuvae encode` writes these for a whole split. */
void vae_pictures_encode(vae_model *m, const vae_dataset *data, const int *idx /* (n) */, int n,
                         float *mu /* (n, Z) */, float *logvar /* (n, Z) */, int *cats /* (n) or NULL */);
/* Decode n latent codes to Bernoulli means, in batches; a conditional model decodes them all
 * with the label `label` (a test image's), which a plain one ignores (pass -1); a model with a
 * categorical latent decodes row i with the one-hot code cats[i] (cats NULL: class 0), which a
 * model without one ignores. */
void vae_pictures_decode(vae_model *m, const float *z /* (n, Z) */, int n, int label, const int *cats /* (n) or NULL */,
                         float *probs /* (n, D) */);

/* S draws z = mu + sigma * eps of q(z|x) for each of images idx[0..n) of data, by the model's own
 * forward pass (eps from the backend's generator seeded with seed; a conditional model reads each
 * image's label), into z (n * S, Z): image i's draws are rows i*S .. i*S+S-1. */
void vae_pictures_posterior_draws(vae_model *m, const vae_dataset *data, const int *idx /* (n) */, int n, int S,
                                  uint64_t seed, float *z /* (n * S, Z) */);
/* Images idx[0..n) of data, each followed by S decodes of z = mu + sigma * eps drawn by the
 * model's own forward pass (eps from the backend's generator seeded with seed; a conditional model
 * reads each image's label), into tiles (n * (S + 1), D): per_digit.png's rows and `reconstruct
 * --posterior-samples`' grid. */
void vae_pictures_posterior_tiles(vae_model *m, const vae_dataset *data, const int *idx /* (n) */, int n, int S,
                                  uint64_t seed, float *tiles /* (n * (S + 1), D) */);
/* Each latent dimension's KL(q(z_j|x) || N(0, 1)) averaged over the first (at most
 * VAE_PICTURES_SCATTER_MAX) test images into kl (Z), and whether it is active (its posterior mean
 * varies across them by more than VAE_ACTIVE_UNIT_VAR, as `cuvae eval` counts) into active (Z).
 * A model without a prior (the ae) has no KL: NaN. */
void vae_pictures_dimension_kl(vae_model *m, const vae_dataset *test, double *kl /* (Z) */, int *active /* (Z) */);
/* The traversal row label of dimension j (0-based): "z<j+1> KL <kl>" ("z<j+1>" for a NaN kl),
 * " inactive" appended. */
void vae_pictures_dimension_label(int j, double kl, int active, char *out, size_t cap);

/* The first two principal components of the n rows of x (n, d), in double: the rows projected on
 * them (centred) into proj (n, 2), the unit components into comp (2, d) if not NULL, and their
 * variances into var (2) if not NULL. Each component's sign is chosen so that its entry of the
 * largest magnitude (the first such) is positive. d == 1: the second projection is 0. */
void vae_pca2(const double *x /* (n, d) */, int n, int d, double *proj /* (n, 2) */, double *comp /* (2, d) */,
              double *var /* (2) */);

/* The standard normal quantile Phi^{-1}(p) for 0 < p < 1 (Acklam's rational approximation
 * refined by one Halley step with erfc: relative error near 1e-15); -inf at 0, +inf at 1, NaN
 * outside [0, 1]. */
double vae_inv_normal_cdf(double p);

#endif /* VAE_PICTURES_H */
