/*
 * devmem.h: the device memory a training run needs, worked out from the model
 * layout, the batch size and the data set sizes before anything is allocated,
 * and the check of that figure against the GPU's free memory, so that a run
 * too large for the GPU is refused at the start with the numbers, rather than
 * failing in the middle of an allocation.
 *
 * Not here: the allocations themselves (model.c, train.c), or the backend's
 * own fixed buffers (the cuBLAS workspace and the reduction scratch), which
 * exist once the backend does and so are already out of the free figure.
 */
#ifndef VAE_DEVMEM_H
#define VAE_DEVMEM_H

#include "backend.h"
#include "dataset.h"
#include "model.h"

#include <stddef.h>

/* Allowance, beyond the buffers cuvae allocates, for what the CUDA runtime and
 * libraries take while the run goes on: cudaMalloc's rounding of each buffer up
 * to its granularity (below) and the instantiated
 * graphs. An allowance, not a measurement. */
#define VAE_DEVICE_ALLOC_GRANULARITY ((size_t)512)
#define VAE_DEVICE_HEADROOM_BYTES ((size_t)32 << 20)

typedef struct {
    size_t model;    /* parameters, gradients, Adam moments and the activations of one batch */
    size_t data;     /* training and test rows (1 byte a pixel, 4 a float value) and their order (int32) */
    size_t trainer;  /* loss accumulators of training and evaluation */
    size_t headroom; /* rounding of every buffer plus VAE_DEVICE_HEADROOM_BYTES */
    size_t total;
} vae_device_plan;

/* The plan of `cuvae train` for cfg, batches of batch_size, and data sets of n_train and
 * n_test rows of cfg->input_dim values of the given kind (bytes or floats, dataset.h).
 * 0, or -1 with vae_set_error for a bad cfg. */
int vae_device_plan_train(vae_device_plan *p, const vae_config *cfg, int batch_size, int n_train, int n_test,
                          vae_data_kind kind);

/* Whether the plan fits in free_bytes on `device` (a name, for the message): 0, or -1
 * with vae_set_error: "not enough GPU memory: this run needs X MiB, Y MiB free on
 * <device> (...)". Pure: no CUDA call. */
int vae_device_plan_fits(const vae_device_plan *p, size_t free_bytes, const char *device);

/* The same against the free memory of be's device now; always 0 on the CPU backend. */
int vae_device_plan_check(const vae_device_plan *p, vae_backend *be);

#endif
