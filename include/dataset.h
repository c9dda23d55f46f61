/*
 * dataset.h: an image data set (MNIST, Fashion-MNIST or anything laid out the
 * same way) loaded from a directory holding the four standard IDX files:
 *
 *   train split: train-images-idx3-ubyte  train-labels-idx1-ubyte
 *   test split:  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
 *
 * each either raw or gzip-compressed with a ".gz" suffix; when both exist the
 * raw file is used. Images must be rank 3 (n, rows, cols), labels rank 1 (n),
 * with the same n. Pixels stay bytes 0..255; scaling them to floats is the
 * caller's business. This module does not shuffle, batch or download: the
 * script scripts/fetch_mnist.sh fetches MNIST.
 */
#ifndef VAE_DATASET_H
#define VAE_DATASET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n;           /* number of images */
    int rows, cols;  /* image height and width */
    int dim;         /* rows * cols */
    uint8_t *pixels; /* (n, dim), row-major images, 0..255; owned */
    uint8_t *labels; /* (n), class of each image; owned */
} vae_dataset;

typedef enum { VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST = 1 } vae_split;

/* Load one split of the data set in directory `dir` into `out`. Returns 0, or
 * -1 with one message (vae_last_error()) naming the directory or file and the
 * problem; on failure `out` is left zeroed, so vae_dataset_free is safe. */
int vae_dataset_load(const char *dir, vae_split split, vae_dataset *out);

/* The paths of the images and labels files of a split that vae_dataset_load reads
 * (raw preferred over .gz): paths[0] images, paths[1] labels, 4096 bytes each.
 * 0, or -1 with vae_set_error when one is missing. */
int vae_dataset_file_paths(const char *dir, vae_split split, char paths[2][4096]);

/* Release the arrays of `d` and zero it; a NULL or zeroed `d` is fine. */
void vae_dataset_free(vae_dataset *d);

#ifdef __cplusplus
}
#endif
#endif /* VAE_DATASET_H */
