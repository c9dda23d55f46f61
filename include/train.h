/*
 * train.h: the training loop and evaluation, written once against the backend
 * table. An epoch: shuffle the image order on the host (seeded), upload it,
 * then per batch gather the images on the backend, draw the noise (Philox, backend.h)
 * and run one training step; on the CUDA backend the step (forward, loss,
 * backward, Adam, loss accumulation) is captured once per batch size as a
 * graph and replayed. Losses stay on the backend until the epoch's end, or a
 * progress update, reads them back.
 */
#ifndef VAE_TRAIN_H
#define VAE_TRAIN_H

#include "dataset.h"
#include "hostrng.h"
#include "model.h"

#include <signal.h>
#include <stdio.h>

/* A data set resident on the backend. */
typedef struct {
    int n, dim;
    uint8_t *pixels; /* (n, dim) backend memory */
    int32_t *order;  /* (n) backend memory: the order batches are drawn in */
} vae_device_data;

void vae_device_data_init(vae_device_data *d, vae_backend *be, const vae_dataset *ds);
void vae_device_data_free(vae_device_data *d, vae_backend *be);

/* Losses per image in nats. loss = recon + beta * kl. */
typedef struct {
    double loss, recon, kl;
} vae_losses;

typedef struct {
    int epoch;
    vae_losses train, test;
    double seconds; /* training time of the epoch */
    double images_per_second;
} vae_epoch_metrics;

typedef struct {
    int epochs;
    int batch_size;
    vae_adam_config adam;
    uint64_t seed;
    float clip_grad_norm; /* > 0: clip the gradients to this global L2 norm; 0: off */
    int progress;   /* 1: progress bar (terminal), 0: plain periodic log lines, -1: silent */
    FILE *log;      /* where progress and epoch lines go (stderr, usually) */
    /* When not NULL and non-zero after a step (a signal handler sets it), the epoch stops
     * after that step and vae_trainer_epoch returns 1; the state then resumes mid-epoch. */
    const volatile sig_atomic_t *stop;
} vae_train_options;

/* Where a trainer stands, beyond the model's parameters, Adam moments and Adam step: what
 * a checkpoint saves so that a resumed run continues bit for bit. */
typedef struct {
    int epochs_done;        /* finished epochs */
    int step;               /* steps finished in epoch epochs_done + 1 (0 at an epoch boundary) */
    uint64_t noise_offset;  /* the noise generator's offset (backend rng_get_offset) */
    vae_hostrng order_rng;  /* the shuffle generator before the shuffle of epoch epochs_done + 1 */
    double acc[2];          /* summed [recon, kl] of those `step` steps */
    double seconds;         /* training seconds of those steps */
} vae_trainer_state;

typedef struct vae_trainer vae_trainer;

/* A trainer owns the noise generators, the batch order and the captured graphs. */
vae_trainer *vae_trainer_init(vae_model *m, const vae_train_options *opt);
void vae_trainer_free(vae_trainer *t);
/* One epoch over `train` (its order is reshuffled), then the test losses (NaN when test is NULL).
 * A trainer whose state is mid-epoch (after an interruption, or vae_trainer_set_state) finishes
 * that epoch: same order, same noise. Returns 0 when the epoch finished, 1 when opt.stop ended
 * it early (`out` is then untouched). */
int vae_trainer_epoch(vae_trainer *t, vae_device_data *train, vae_device_data *test, int epoch,
                      vae_epoch_metrics *out);
/* The trainer's position (reads the loss sums back from the backend). */
void vae_trainer_get_state(vae_trainer *t, vae_trainer_state *s);
/* Continue from a saved position (model parameters, moments and Adam step restored apart). */
void vae_trainer_set_state(vae_trainer *t, const vae_trainer_state *s);
/* Whether training has diverged: a step's loss or gradient was not finite, so that
 * step and every later one left the parameters untouched (see vae_model_train_step).
 * The trainer reads the flag whenever it reads the losses, and an epoch stops at
 * the first read that finds it. 1 and *d filled (epoch, step in the epoch, step of
 * the run, quantity), else 0. */
int vae_trainer_diverged(vae_trainer *t, vae_divergence *d);
/* Training steps first_step .. first_step + steps - 1 on `train` in its current order,
 * step s taking the batch that starts at image s * batch_size (wrapping around the
 * data set); returns the mean losses of those steps. Used by `cuvae compare`. */
vae_losses vae_trainer_steps(vae_trainer *t, vae_device_data *train, int first_step, int steps);

/* Mean losses over a whole data set with one noise draw per image, from a
 * generator reset to `seed` first: the same number for the same model every time. */
vae_losses vae_evaluate(vae_model *m, vae_device_data *data, uint64_t seed);

/* Images: a grid of n samples decoded from z ~ N(0, I) (Philox, seeded), and a grid of
 * n test images each followed by its reconstruction from z = mu; each pixel drawn as a
 * scale x scale block (vae_image_grid_write_scaled). */
int vae_render_samples(vae_model *m, const char *path, int n, uint64_t seed, int scale);
int vae_render_reconstructions(vae_model *m, const vae_dataset *data, const char *path, int n, int scale);

#endif
