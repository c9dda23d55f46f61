/*
 * render.h: the sample, reconstruction and category grids (PNG) written after training
 * (data_idx.c) and by the `sample` and `reconstruct` commands (src/render.c).
 *
 * Not here: the pictures of pictures.h (latent scatter, manifold, traversals, ...).
 */
#ifndef VAE_RENDER_H
#define VAE_RENDER_H

#include "dataset.h"
#include "model.h"

#include <stdint.h>

/* What a sample grid shows of each decoded image: the decoder's means (the default), or pixels drawn
 * from the decoder's Bernoulli, x ~ Bernoulli(mean) (sample --bernoulli; host uniforms seeded from
 * the grid's seed), as the binarized-MNIST practicals show samples. A model with a Gaussian decoder
 * has no Bernoulli pixels: -1 with vae_set_error naming --bernoulli. */
typedef enum { VAE_RENDER_MEANS, VAE_RENDER_BERNOULLI } vae_render_pixels;

/* Images: a grid of n samples decoded from z ~ N(0, I) (Philox, seeded; a categorical latent,
 * if any, cycles through its classes: image i has class i mod K), and a grid of
 * n test images each followed by its reconstruction from z = mu; each pixel drawn as a
 * scale x scale block (vae_image_grid_write_scaled). A model whose input is not an image
 * is refused: -1 with vae_pictures_need_image's message. A model that reads the label
 * (a cvae) draws digit `label` (y = one-hot label) in all n samples or, with label -1, a
 * class grid: one row of ceil(sqrt(n)) samples per class (at most the batch size), each column
 * one z decoded with every class (vae_render_column_codes); its reconstructions use the
 * data's true labels. A label out of range, or one given to a plain VAE, is -1 with
 * vae_set_error naming --label. A model without a prior (vae_model_has_prior: the ae) has no
 * samples: -1 with vae_set_error saying so; its reconstructions decode its code z. Grids are
 * labelled (image.h): a class grid's rows with their classes (class_names, or the numbers),
 * the reconstructions' rows "original" and "reconstruction", the categories' rows "c = k". */
int vae_render_samples(vae_model *m, const char *path, int n, int label, uint64_t seed, int scale,
                       const char *const *class_names /* (classes) or NULL: their numbers */,
                       vae_render_pixels pixels);
/* The codes of a class grid's columns: cols draws z ~ N(0, I) (seeded; cols at most the batch
 * size) into z (cols, Z). The class grid of vae_render_samples (label -1, a model that reads the
 * label) decodes column j from z_j with every row's class, so a column shows one style across the
 * classes; vae_pictures_decode(z_j, label k) gives its cell (k, j). */
void vae_render_column_codes(vae_model *m, int cols, uint64_t seed, float *z /* (cols, Z) */);
int vae_render_reconstructions(vae_model *m, const vae_dataset *data, const char *path, int n, int scale);
/* A model with a categorical latent (joint): one row per class k, `cols` columns (at most the
 * batch size), column j decoded from one z_j ~ N(0, I) (seeded) with c = one-hot k, so each
 * column shows what the class changes. -1 with vae_set_error for a model without one. */
int vae_render_categories(vae_model *m, const char *path, int cols, uint64_t seed, int scale,
                          vae_render_pixels pixels);
/* A model with a categorical latent: a grid of n samples decoded from z ~ N(0, I) (seeded, as
 * vae_render_samples draws them) with c = one-hot `category` in every one. -1 with vae_set_error
 * for a model without one or a category out of range (naming --category). */
int vae_render_category_samples(vae_model *m, const char *path, int n, int category, uint64_t seed, int scale,
                                vae_render_pixels pixels);

/* One row per image of data (the first n): the image, then S decodes of z ~ q(z|x) drawn by the
 * model's forward pass (seeded; a conditional model reads each image's label). A model without
 * posterior noise (the ae): -1 with vae_set_error naming --posterior-samples. */
int vae_render_posterior_samples(vae_model *m, const vae_dataset *data, const char *path, int n, int S, uint64_t seed,
                                 int scale);

#endif /* VAE_RENDER_H */
