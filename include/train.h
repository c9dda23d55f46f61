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
#include "device_data.h"
#include "hostrng.h"
#include "model.h"
#include "schedule.h"

#include <signal.h>
#include <stdio.h>

/* Losses per example in nats: each of the model's terms (model.h, in its order), and
 * loss = sum_t weight_t * term_t with the terms' configured weights (recon + beta * kl). */
typedef struct {
    int n_terms;
    double term[VAE_MAX_TERMS];
    double loss;
} vae_losses;

/* Every value NaN (no test set). */
vae_losses vae_losses_nan(const vae_model *m);
/* " (recon 97.8234, kl 22.3590)": every term, as the epoch line prints them, into buf. */
void vae_losses_describe(const vae_losses *l, const vae_model *m, char *buf, size_t len);

typedef struct {
    int epoch;
    vae_losses train, test;
    double seconds; /* training time of the epoch */
    double images_per_second;
} vae_epoch_metrics;

typedef struct {
    int epochs;
    int batch_size;
    vae_adam_config adam;  /* adam.lr is the base rate of the schedule */
    vae_schedule schedule; /* learning rate and KL weight per step */
    uint64_t seed;
    float clip_grad_norm; /* > 0: clip the gradients to this global L2 norm; 0: off */
    int binarize_dynamic; /* 1: each step's batch becomes a fresh Bernoulli draw of itself (binarize op,
                           * uniforms from the noise generator after the step's normals); data in [0, 1] */
    int progress;   /* 1: progress bar (terminal), 0: plain periodic log lines, -1: silent */
    FILE *log;      /* where progress and epoch lines go (stderr, usually) */
    const char *row, *rate; /* what a row is in the progress lines ("image", "img/s"; the defaults) */
    long total_steps; /* > 0: the run ends after this many steps of all epochs (its last epoch may stop part-way,
                       * see vae_trainer_epoch) and the schedules span them; 0: epochs whole epochs */
    int log_every;    /* > 0: a step row (vae_step_row) every log_every steps of the run; 0: none */
    /* When not NULL, called after each training step with the steps of the run done and the fractional
     * epoch (a snapshot of the model; it must leave the training state alone). */
    void (*at_step)(void *ctx, long step, double epoch);
    void *at_step_ctx;
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
    int n_terms;            /* the model's terms */
    double acc[VAE_MAX_TERMS]; /* summed terms of those `step` steps */
    double seconds;         /* training seconds of those steps */
    double win_acc[VAE_MAX_TERMS]; /* summed terms of the steps of the step row in progress (opt.log_every) */
    long win_images;        /* the rows those steps trained on; 0: no step row in progress */
} vae_trainer_state;

/* A row of the step log (opt.log_every > 0): the mean losses of the log_every steps that end at
 * step `step` of the run, weighted as an epoch's training loss is, and the schedules' values at
 * that last step. The mean of an epoch's rows, when log_every divides its steps and every batch
 * is whole, is the epoch's training loss. */
typedef struct {
    long step;        /* steps of the run done at the row's end: a multiple of log_every */
    double epoch;     /* step / steps per epoch: the fractional epoch */
    vae_losses train; /* mean losses per row of data over the row's steps */
    float scalar[VAE_SCALAR_SCHEDULED]; /* the scheduled scalars (lr, KL weight, temperature, capacities) */
} vae_step_row;

/* The options of a run of `epochs` at batch_size: Adam at base rate lr with the usual betas
 * (0.9, 0.999) and eps (1e-8), the default schedule (schedule.h), the seed, no clipping, no
 * dynamic binarization, silent, no stop flag. Callers change what differs. */
void vae_train_options_default(vae_train_options *o, int epochs, int batch_size, float lr, uint64_t seed);

typedef struct vae_trainer vae_trainer;

/* A trainer owns the noise generators, the batch order and the captured graphs. */
vae_trainer *vae_trainer_init(vae_model *m, const vae_train_options *opt);
void vae_trainer_free(vae_trainer *t);
/* One epoch over `train` (its order is reshuffled), then the test losses (NaN when test is NULL).
 * A trainer whose state is mid-epoch (after an interruption, or vae_trainer_set_state) finishes
 * that epoch: same order, same noise. Returns 0 when the epoch finished, 1 when opt.stop ended
 * it early (`out` is then untouched). With opt.total_steps the run's last epoch ends at that step:
 * `out` holds its losses so far, and the trainer stays mid-epoch (its state, saved, continues the
 * epoch bit for bit when a resume asks for more steps; run again with no more steps, it trains
 * nothing and gives the same `out`). */
int vae_trainer_epoch(vae_trainer *t, vae_device_data *train, vae_device_data *test, int epoch,
                      vae_epoch_metrics *out);
/* The step rows finished since the last call (opt.log_every), oldest first, into *rows (the
 * trainer's memory, valid until its next epoch); returns how many. The rows are read back from
 * the backend when the trainer reads its losses anyway: at the end of an epoch, and at a stop. */
int vae_trainer_step_rows(vae_trainer *t, const vae_step_row **rows);
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
/* The value the trainer last wrote to backend scalar `which` (the schedules' value of the
 * latest step): the learning rate, KL weight, and for a joint model the temperature and
 * the capacities (0 before the first step); NAN for another scalar. */
float vae_trainer_scalar_now(const vae_trainer *t, vae_scalar which);
/* The captured graph of a full batch's step (forward, loss, backward, Adam, loss accumulation;
 * the batch's gather and the schedules' upload run before it, outside), once a step of
 * batch_size has run; NULL before that and on a backend without graphs (the CPU). */
const vae_graph *vae_trainer_step_graph(const vae_trainer *t);
/* Training steps first_step .. first_step + steps - 1 on `train` in its current order,
 * step s taking the batch that starts at image s * batch_size (wrapping around the
 * data set); returns the mean losses of those steps. Used by `cuvae compare`. */
vae_losses vae_trainer_steps(vae_trainer *t, vae_device_data *train, int first_step, int steps);

/* The loss alone, as training reports it after each epoch (the test and validation columns):
 * mean losses over a whole data set with one noise draw per image, from a generator reset to
 * `seed` first, the same number for the same model every time. A categorical latent is summed
 * out exactly (vae_model_forward_eval). `cuvae eval`'s full report is vae_eval_report
 * (evaluate.h), whose loss is this one for the same seed. */
vae_losses vae_eval_loss(vae_model *m, vae_device_data *data, uint64_t seed);

#endif
