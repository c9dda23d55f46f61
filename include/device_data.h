/*
 * device_data.h: a data set resident on the backend, and the one way to build
 * a batch from it. The values stay of their kind (bytes or floats, see
 * dataset.h); vae_device_data_gather picks the backend op that reads them
 * (gather_batch scales bytes by 1/255, gather_rows copies floats), so the
 * trainer, the evaluation and every other caller never branch on the kind.
 * The labels come along when the data set has them, and
 * vae_device_data_gather_model fills a model's whole input for a batch: x, and the
 * one-hot label y when the model reads one (gather_one_hot), so no caller branches on
 * the model either.
 *
 * Not here: shuffling (the trainer writes `order`), loading (dataset.h).
 */
#ifndef VAE_DEVICE_DATA_H
#define VAE_DEVICE_DATA_H

#include "backend.h"
#include "dataset.h"
#include "model.h"

#include <stdint.h>

typedef struct {
    int n, dim;
    vae_data_kind kind;
    void *values;   /* (n, dim) backend memory: uint8 for VAE_DATA_BYTES, float for VAE_DATA_FLOATS */
    int32_t *order; /* (n) backend memory: the order batches are drawn in (0..n-1 at first) */
    uint8_t *labels; /* (n) backend memory: each row's class, < classes; NULL for unlabelled data */
    int classes;     /* 1 + the largest label (the data set's); 0 when unlabelled */
} vae_device_data;

/* Upload ds's values, its labels when it has them, and the identity order. */
void vae_device_data_init(vae_device_data *d, vae_backend *be, const vae_dataset *ds);
/* Replace d's values with ds's, a data set of d's shape and kind (a fresh binarization of the same
 * images); the order and the labels stay. */
void vae_device_data_upload_values(vae_device_data *d, vae_backend *be, const vae_dataset *ds);
void vae_device_data_free(vae_device_data *d, vae_backend *be);

/* x[i, :] = row idx[i] of d as the model reads it (bytes / 255, floats as they are), i < B.
 * x (B, d->dim) float backend memory, idx (B) int32 backend memory (d->order + first, usually),
 * each index in [0, d->n). */
void vae_device_data_gather(vae_backend *be, const vae_device_data *d, float *x, const int32_t *idx, int B);

/* A model's input for rows idx[0 .. B) of d: m->x as above and, when the model reads the
 * label (vae_model_reads_label), m->y = one_hot(label) (B, classes). Such a model needs labelled
 * data whose labels are below its classes: checked where the data is loaded for it
 * (vae_dataset_check_labels); here a mismatch is a programming error (vae_fatal). */
void vae_device_data_gather_model(vae_model *m, const vae_device_data *d, const int32_t *idx, int B);

#endif
