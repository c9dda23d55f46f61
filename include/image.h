/*
 * image.h: 8-bit grayscale PNG files through libpng, and image grids (sample
 * sheets, reconstructions, manifolds) built from float images in [0, 1].
 *
 * Every libpng error (a bad file, a full disk, an image too large) becomes a
 * vae_set_error message naming the path; nothing here aborts on bad input.
 * Writes go to "<path>.tmp", are fsynced and then renamed onto path, so a
 * reader never sees a half-written PNG.
 *
 * Float to pixel: p = (uint8_t)lrintf(255 * clamp(x, 0, 1)), NaN -> 0.
 *
 * Not here: colour output, other bit depths, other formats.
 */
#ifndef VAE_IMAGE_H
#define VAE_IMAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Grid geometry (pixels): tiles are separated and surrounded by this border. */
#define VAE_GRID_BORDER 2
/* The border's gray level (also the fill of empty grid cells). */
#define VAE_GRID_BORDER_VALUE 64

/* Write pixels (height, width), row-major, as an 8-bit grayscale PNG.
 * Returns 0, or -1 with vae_set_error. */
int vae_png_write_gray(const char *path, const uint8_t *pixels /* (height, width) */, int width, int height);

/* Read a PNG as 8-bit gray. 8-bit gray is returned as stored; 1/2/4-bit gray
 * is expanded (1-bit: 0 and 255), 16-bit is scaled to 8 bits, RGB and palette
 * images are converted by libpng with the BT.709 luma weights
 * (0.2126, 0.7152, 0.0722; a cHRM chunk in the file may change them), and
 * alpha and tRNS transparency are dropped (not composited).
 * *pixels is (height, width), row-major; free it with vae_free.
 * Images over 2^28 pixels are refused. Returns 0, or -1 with vae_set_error
 * (and *pixels NULL). */
int vae_png_read_gray(const char *path, uint8_t **pixels /* out: (height, width) */, int *width, int *height);

/* Tile n images of (h, w) floats into a grid with `cols` columns and
 * ceil(n / cols) rows and write it as a PNG. The grid is
 * cols * (w + 2) + 2 pixels wide and rows * (h + 2) + 2 high; image k sits at
 * row k / cols, column k % cols, its top-left pixel at
 * (x, y) = (2 + col * (w + 2), 2 + row * (h + 2)). Borders and unused cells
 * are VAE_GRID_BORDER_VALUE. Returns 0, or -1 with vae_set_error. */
int vae_image_grid_write(const char *path, const float *images /* (n, h*w) */, int n, int h, int w, int cols);

/* The same grid with every pixel drawn as a scale x scale block (1 <= scale <= 64): the PNG is
 * scale times as wide and as high. scale 1 is vae_image_grid_write. */
int vae_image_grid_write_scaled(const char *path, const float *images /* (n, h*w) */, int n, int h, int w, int cols,
                                int scale);

/* Labels drawn around a grid (font.h's bitmap font, black on a white margin): a title line above,
 * a label above each column and one left of each row. Any pointer may be NULL, and so may any
 * entry of the label arrays (no label there). Column labels too wide for their columns are
 * thinned: every k-th column is labelled, k the smallest that keeps them apart. */
typedef struct {
    const char *title;
    const char *const *col_labels; /* (cols) */
    const char *const *row_labels; /* (rows) */
    const uint8_t *row_muted;      /* (rows) nonzero: that row's label in gray (an inactive dimension) */
} vae_grid_labels;

/* vae_image_grid_write_scaled's grid with labels: the grid sits unchanged (pixel for pixel) right
 * of the row labels' margin and below the title's and column labels' lines; the text is drawn in
 * blocks of 2 x 2 pixels at scale >= 2, 1 x 1 at scale 1. labels NULL: the plain grid. */
int vae_image_grid_write_labelled(const char *path, const float *images /* (n, h*w) */, int n, int h, int w,
                                  int cols, int scale, const vae_grid_labels *labels);
/* Where the grid's top-left pixel lands in vae_image_grid_write_labelled's PNG, for the tests. */
void vae_image_grid_origin(const vae_grid_labels *labels, int rows, int cols, int scale, int *x0, int *y0);

/* The pixel value of one float: lrintf(255 * clamp(x, 0, 1)), NaN -> 0. */
uint8_t vae_image_to_u8(float x);

#ifdef __cplusplus
}
#endif
#endif /* VAE_IMAGE_H */
