/*
 * picture_checks.h: checks of the pictures' content that run on either backend, so that
 * test_pictures (the CPU) and test_cuda_pictures (the GPU, or the emulated device) check the
 * same things: grids read back tile by tile and compared with the library's own decode.
 */
#ifndef TU_PICTURE_CHECKS_H
#define TU_PICTURE_CHECKS_H

#include "backend.h"

#include <stdint.h>

/* A grid PNG of 8x8 tiles (scale 1) read back, with where its grid starts (tu_grid_origin). */
typedef struct {
    uint8_t *px;
    int width, height, x0, y0;
} tu_grid_png;

tu_grid_png tu_read_grid(const char *dir, const char *name);
/* Tile (row, col) of g into out (64). */
void tu_grid_tile(const tu_grid_png *g, int row, int col, uint8_t *out);

/* The joint model's pictures decode with the code they name, on backend be: a joint model (seeded
 * parameters; a 3-D Gaussian and a 4-class categorical latent) on 8x8 patterns writes
 * reconstructions.png, traversals.png and interpolation.png into a new directory; the first test
 * image's posterior mean decoded at its argmax q(c|x) must be the same pixels through the three
 * paths: its reconstruction, every traversal row's middle column (offset 0) and interpolation's
 * first frame; the second image's reconstruction is interpolation's last frame. Checked for
 * several parameter seeds, at least one with the images' codes apart. */
void tu_check_joint_pictures_decode_their_code(vae_backend *be);
/* The autoencoder's pictures on backend be (an ae with seeded parameters, a 2-D code, on 8x8
 * patterns): samples are refused (no prior) and write nothing; the pictures of the prior
 * (manifold, per-digit samples) are skipped with the reason in the log and not written; the
 * scatter says it shows codes; the first two images' codes (encode: logvar -inf) decoded by the
 * library are their reconstructions (to a grey level), interpolation's end frames and every
 * traversal row's middle column, pixel for pixel; a linear manifold (--manifold-range) decodes
 * its code plane, corner by corner. */
void tu_check_ae_pictures(vae_backend *be);
/* The pictures of the 2-D latent plane and of the posterior on backend be (a VAE with seeded
 * parameters, a 2-D latent, on 8x8 patterns), drawn with every picture option set: the manifold's
 * linear grid over [-R, R]^2 holds at its four corners and its centre the library's decode of
 * (+-R, +-R) and, for an odd side, (0, 0), each to a grey level (and the corners differ, so a flipped axis fails);
 * the posterior cloud holds K x N points, K in each of N colours, with a legend per image; the
 * sampled scatter one point per image of the chosen number; and the posterior draws behind both
 * scatter about each image's mean with its standard deviation, the same for the same seed. */
void tu_check_latent_pictures(vae_backend *be);

#endif /* TU_PICTURE_CHECKS_H */
