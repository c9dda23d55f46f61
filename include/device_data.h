/*
 * device_data.h: a data set resident on the backend, and the one way to build
 * a batch from it. The values stay of their kind (bytes or floats, see
 * dataset.h); vae_device_data_gather picks the backend op that reads them
 * (gather_batch scales bytes by 1/255, gather_rows copies floats), so the
 * trainer, the evaluation and every other caller never branch on the kind.
 *
 * Not here: shuffling (the trainer writes `order`), loading (dataset.h).
 */
#ifndef VAE_DEVICE_DATA_H
#define VAE_DEVICE_DATA_H

#include "backend.h"
#include "dataset.h"

#include <stdint.h>

typedef struct {
    int n, dim;
    vae_data_kind kind;
    void *values;   /* (n, dim) backend memory: uint8 for VAE_DATA_BYTES, float for VAE_DATA_FLOATS */
    int32_t *order; /* (n) backend memory: the order batches are drawn in (0..n-1 at first) */
} vae_device_data;

/* Upload ds's values (not its labels) and the identity order. */
void vae_device_data_init(vae_device_data *d, vae_backend *be, const vae_dataset *ds);
void vae_device_data_free(vae_device_data *d, vae_backend *be);

/* x[i, :] = row idx[i] of d as the model reads it (bytes / 255, floats as they are), i < B.
 * x (B, d->dim) float backend memory, idx (B) int32 backend memory (d->order + first, usually),
 * each index in [0, d->n). */
void vae_device_data_gather(vae_backend *be, const vae_device_data *d, float *x, const int32_t *idx, int B);

#endif
