/*
 * toy_pictures.h: the SVG pictures of a model trained on the 1-D mixture toy (toy.h), drawn
 * with the plot writer (plot.h), and the total-variation distance between the model's
 * generated data and the true mixture. The three panels of the practical, and the data:
 *
 *   toy_density.svg    the true density over the training data's histogram;
 *   toy_latent.svg     encoding: the encoder's (x, z) samples, z ~ q(z|x), of the test rows
 *                      coloured by component, hist(x) over the true density, hist(z) over N(0, 1);
 *   toy_decoded.svg    decoding: the decoder's mean curve x = f(z) over z in [-3, 3], and the
 *                      histogram of the test rows' reconstructions f(z), z ~ q(z|x), over the
 *                      true density;
 *   toy_generated.svg  generation: z ~ N(0, 1), x = f(z) + sigma eps: the (x, z) scatter, hist(x)
 *                      over the true density titled with the total-variation distance between
 *                      the two, and hist(z) over N(0, 1).
 *
 * A snapshot (toy_snapshot_NNNNNNNN.svg, the step in the name) stacks the three panels of the
 * model as it stands after that many training steps; `train` writes them while it trains.
 *
 * Generated data: VAE_TOY_TV_SAMPLES draws z ~ N(0, I) (host generator seeded with the run's
 * seed), decoded through the model's backend ops to the Gaussian mean, plus sigma times a
 * second normal draw. The histograms use bins of VAE_TOY_TV_BIN_WIDTH on vae_toy_range, the
 * same bins as the distance.
 *
 * Not here: the image pictures (pictures.h), which a toy model has none of.
 */
#ifndef VAE_TOY_PICTURES_H
#define VAE_TOY_PICTURES_H

#include "dataset.h"
#include "model.h"
#include "toy.h"

#include <stdint.h>

/* The pictures in the order written, listed once: X(ID, file). The enum
 * (VAE_TOY_PICTURE_DENSITY, ...), vae_toy_pictures[] and the toy's pictures among the run's
 * files (run_dir.c, data_toy.c) come from it. */
#define VAE_TOY_PICTURE_KINDS(X)      \
    X(DENSITY, "toy_density.svg")     \
    X(LATENT, "toy_latent.svg")       \
    X(DECODED, "toy_decoded.svg")     \
    X(GENERATED, "toy_generated.svg")

/* Generated draws of a snapshot's generation panel (its distance: of these, noisier than the run's). */
#define VAE_TOY_SNAPSHOT_SAMPLES 20000
/* A snapshot's file: the prefix, the step (8 digits, so the names sort by step) and ".svg". */
#define VAE_TOY_SNAPSHOT_PREFIX "toy_snapshot_"

typedef enum {
#define VAE_TOY_PICTURE_ENUM(id, file) VAE_TOY_PICTURE_##id,
    VAE_TOY_PICTURE_KINDS(VAE_TOY_PICTURE_ENUM)
#undef VAE_TOY_PICTURE_ENUM
    VAE_TOY_N_PICTURES
} vae_toy_picture_kind;

/* File names in the order written, indexed by vae_toy_picture_kind. */
extern const char *const vae_toy_pictures[VAE_TOY_N_PICTURES];

/* n generated values x ~ p(x|z), z ~ N(0, I), seeded; x (n). The model must have the Gaussian
 * likelihood and a 1-D input. */
void vae_toy_generate(vae_model *m, int n, uint64_t seed, double *x /* (n) */);

/* vae_toy_generate, and the first dimension of each draw's z into z0 (n) when not NULL. */
void vae_toy_generate_with_z(vae_model *m, int n, uint64_t seed, double *x /* (n) */, double *z0 /* (n) */);

/* A snapshot's file name for `step` into buf ("toy_snapshot_00000250.svg"). */
void vae_toy_snapshot_name(long step, char *buf, size_t cap);
/* The snapshot of model m after `step` steps (fractional epoch `epoch`) into dir: the encoding,
 * decoding and generation panels stacked in one SVG; *tv gets its generation's distance. 0, or -1
 * with vae_set_error. */
int vae_toy_snapshot_write(vae_model *m, const vae_toy *t, const vae_dataset *test, const char *dir, uint64_t seed,
                           long step, double epoch, double *tv);

/* Write the four pictures into dir; *tv gets the distance drawn in toy_generated.svg (the same
 * number for the same model and seed every time). 0, or -1 with vae_set_error. */
int vae_toy_pictures_write(vae_model *m, const vae_toy *t, const vae_dataset *train, const vae_dataset *test,
                           const char *dir, uint64_t seed, double *tv);

#endif /* VAE_TOY_PICTURES_H */
