/*
 * train_state.h: the checkpoint of a training run (checkpoint.safetensors in
 * the run directory): everything `cuvae train --resume` needs to continue bit
 * for bit. Tensors "params", "adam.m", "adam.v" (n_params floats each, the
 * flat layout of model.h); metadata: format "cuvae-checkpoint",
 * format_version "1", the run's settings as given by the caller (key "train.*"
 * strings, from which the model is rebuilt), the trainer's position
 * (state.*: epochs done, step in the epoch, noise offset, shuffle generator,
 * loss sums as exact hex bits, the step log's row in progress: state.win_acc,
 * state.win_images), Adam's step, the best validation loss so far, the metrics
 * CSV so far and the step log's (metrics_steps; absent in older checkpoints).
 *
 * Written atomically (temporary file, fsync, rename, directory fsync) by
 * vae_safetensors_write, so a kill at any moment leaves the previous
 * checkpoint or the new one, never a broken file.
 *
 * Not here: the model file (checkpoint.h), run directories (run_dir.h).
 */
#ifndef VAE_TRAIN_STATE_H
#define VAE_TRAIN_STATE_H

#include "safetensors.h"
#include "train.h"

/* The generator whose offset a checkpoint's state.noise_offset counts (include/philox.h),
 * recorded as state.noise_generator; a checkpoint of another is refused. */
#define VAE_NOISE_GENERATOR "philox4x32-10"

typedef struct {
    vae_trainer_state trainer;
    int adam_step;
    double best_val;  /* best validation loss so far; NAN when there is none */
    int best_epoch;   /* its epoch; 0 when there is none */
    const char *metrics; /* metrics.csv as it stands: header and one row per finished epoch */
    const char *metrics_steps; /* metrics_steps.csv as it stands ("" without --log-every) */
} vae_train_progress;

/* Write the checkpoint of model m (downloaded from its backend) and progress p;
 * settings holds n_settings "train.*" pairs. 0, or -1 with vae_set_error. */
int vae_train_state_save(const char *path, const vae_model *m, const vae_train_progress *p,
                         const vae_st_meta *settings, int n_settings);

/* A checkpoint read back: the file (owning every string) and the parsed progress. */
typedef struct {
    vae_safetensors st;
    vae_train_progress p;
} vae_train_checkpoint;

/* Read and check a checkpoint's format and progress keys (not yet its tensors).
 * 0, or -1 with vae_set_error naming the path; free with vae_train_checkpoint_free. */
int vae_train_checkpoint_read(const char *path, vae_train_checkpoint *ck);
/* The checkpoint against the run it continues, before anything is allocated or trained: the
 * tensors params, adam.m and adam.v are F32 vectors of layout->n_params (the model the recorded
 * settings describe, vae_model_layout: a small file cannot ask for a large model); state.acc
 * and state.win_acc hold one finite sum per loss term of layout; state.step is below `batches` (the steps of an
 * epoch); state.best_epoch is at most epochs_done, its best_val finite; and the metrics text is
 * the line `header` (metrics.csv's, with its newline) and then epochs_done rows, row k of epoch k,
 * every cell a number. 0, or -1 with vae_set_error naming path and the value. */
int vae_train_checkpoint_check(const vae_train_checkpoint *ck, const char *path, const vae_model *layout,
                               long batches, const char *header);
/* A "train.*" setting recorded in the checkpoint, or NULL. */
const char *vae_train_checkpoint_setting(const vae_train_checkpoint *ck, const char *key);
/* Copy the parameters, Adam moments and Adam step into m, built from the recorded settings;
 * -1 with vae_set_error when the tensors do not fit m. */
int vae_train_checkpoint_restore(const vae_train_checkpoint *ck, const char *path, vae_model *m);
void vae_train_checkpoint_free(vae_train_checkpoint *ck);

#endif
