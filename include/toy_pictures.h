/*
 * toy_pictures.h: the three SVG pictures of a model trained on the 1-D mixture
 * toy (toy.h), drawn with the plot writer (plot.h), and the total-variation
 * distance between the model's generated data and the true mixture:
 *
 *   toy_density.svg    the true density over the training data's histogram;
 *   toy_latent.svg     the encoder's (x, z) samples, z ~ q(z|x), of the test rows coloured by
 *                      component, with the histograms of x and of z (both marginals);
 *   toy_generated.svg  the histogram of generated data x ~ p(x|z), z ~ N(0, 1), over the true
 *                      density, its title giving the total-variation distance between the two.
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
    X(GENERATED, "toy_generated.svg")

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

/* Write the three pictures into dir; *tv gets the distance drawn in toy_generated.svg (the same
 * number for the same model and seed every time). 0, or -1 with vae_set_error. */
int vae_toy_pictures_write(vae_model *m, const vae_toy *t, const vae_dataset *train, const vae_dataset *test,
                           const char *dir, uint64_t seed, double *tv);

#endif /* VAE_TOY_PICTURES_H */
