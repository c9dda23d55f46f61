/*
 * dataset.h: a data set: n rows of dim values, the model's inputs, with an
 * optional class label per row. The values are either bytes (images, 0..255,
 * read as byte / 255) or floats (read as they are); rows and cols give the
 * image shape, and are both 0 when the rows are not images (the model then
 * has no pictures). Two ways to make one:
 *
 * - vae_dataset_from_floats: rows of floats held in memory (the 1-D toy, any
 *   data that is not an image), labelled or not;
 * - vae_dataset_load: an image data set (MNIST, Fashion-MNIST or anything laid
 *   out the same way) from a directory holding the four standard IDX files:
 *
 *   train split: train-images-idx3-ubyte  train-labels-idx1-ubyte
 *   test split:  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
 *
 * each either raw or gzip-compressed with a ".gz" suffix; when both exist the
 * raw file is used. Images must be rank 3 (n, rows, cols), labels rank 1 (n),
 * with the same n. Pixels stay bytes 0..255; vae_dataset_row (on the host)
 * and the gather ops (on the backend, device_data.h) scale them. This module
 * does not shuffle, batch or download: the script scripts/fetch_mnist.sh
 * fetches MNIST.
 */
#ifndef VAE_DATASET_H
#define VAE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a data set's values are. Bytes are 0 so that a zeroed vae_dataset is a byte data set. */
typedef enum {
    VAE_DATA_BYTES = 0, /* uint8 0..255 (images): the model reads byte / 255 */
    VAE_DATA_FLOATS = 1 /* float: the model reads them as they are */
} vae_data_kind;

typedef struct {
    int n;              /* number of rows (images) */
    int rows, cols;     /* image height and width; both 0 when the rows are not images */
    int dim;            /* values per row (rows * cols for images) */
    vae_data_kind kind; /* which of pixels and values holds the data */
    uint8_t *pixels;    /* (n, dim) row-major, 0..255, kind VAE_DATA_BYTES; else NULL; owned */
    float *values;      /* (n, dim) row-major, finite, kind VAE_DATA_FLOATS; else NULL; owned */
    uint8_t *labels;    /* (n) class of each row, < classes; NULL when unlabelled; owned */
    int classes;        /* 1 + the largest label; 0 when unlabelled */
    const char *const *class_names; /* (classes) what each label means, static; NULL: its number */
} vae_dataset;

/* Label k's name: class_names[k], or its number written into buf. */
const char *vae_dataset_class_name(const vae_dataset *d, int k, char buf[16]);

/* The splits of an image data set, listed once: X(ID, name, images file, labels file). The
 * enum (VAE_SPLIT_TRAIN = 0, VAE_SPLIT_TEST = 1), the names and the files the loader looks for
 * come from it. */
#define VAE_SPLITS(X)                                                         \
    X(TRAIN, "train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte") \
    X(TEST, "test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

typedef enum {
#define VAE_SPLIT_ENUM(id, name, images, labels) VAE_SPLIT_##id,
    VAE_SPLITS(VAE_SPLIT_ENUM)
#undef VAE_SPLIT_ENUM
    VAE_SPLIT_COUNT
} vae_split;

/* The split's name: "train" or "test". */
const char *vae_split_name(vae_split split);

/* Load one split of the data set in directory `dir` into `out`. Returns 0, or
 * -1 with one message (vae_last_error()) naming the directory or file and the
 * problem; on failure `out` is left zeroed, so vae_dataset_free is safe. */
int vae_dataset_load(const char *dir, vae_split split, vae_dataset *out);

/* The paths of the images and labels files of a split that vae_dataset_load reads
 * (raw preferred over .gz): paths[0] images, paths[1] labels, 4096 bytes each.
 * 0, or -1 with vae_set_error when one is missing. */
int vae_dataset_file_paths(const char *dir, vae_split split, char paths[2][4096]);

/* A data set of n rows of dim floats that are not images (rows = cols = 0), from a COPY of
 * values (n, dim) and of labels (n), or unlabelled when labels is NULL; the caller keeps its
 * arrays. 0, or -1 with vae_set_error (n or dim below 1, n * dim above 2^31 - 1 values, a value
 * that is not finite); on failure `out` is left zeroed. */
int vae_dataset_from_floats(vae_dataset *out, int n, int dim, const float *values /* (n, dim) */,
                            const uint8_t *labels /* (n) or NULL */);

/* Row i as the model reads it: bytes / 255 ((float)byte / 255.0f, as the gather ops compute
 * it, bit for bit) or the floats as they are. out (dim). */
void vae_dataset_row(const vae_dataset *d, int i, float *out);

/* A new data set of rows idx[0..n) of d, in that order, of d's kind, shape and classes (copies;
 * d is untouched). Indices must be in [0, d->n). */
void vae_dataset_subset(const vae_dataset *d, const int32_t *idx /* (n) */, int n, vae_dataset *out);

/* The labels of d for a model of `classes` label classes (a conditional one): 0 when every row
 * has a label below classes; -1 with vae_set_error naming `source` (the labels file, or whatever
 * the data came from) when d has no labels or one is out of range. */
int vae_dataset_check_labels(const vae_dataset *d, int classes, const char *source);

/* Bytes per value of a kind: 1 for bytes, 4 for floats. */
size_t vae_data_value_size(vae_data_kind kind);

/* Release the arrays of `d` and zero it; a NULL or zeroed `d` is fine. */
void vae_dataset_free(vae_dataset *d);

#ifdef __cplusplus
}
#endif
#endif /* VAE_DATASET_H */
