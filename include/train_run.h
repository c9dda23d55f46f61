/*
 * train_run.h: one run of `cuvae train` as its steps share it (cmd_train.c), and the two jobs
 * it hands to files of their own:
 *
 *   run_open.c  the run directory: a new one (unique by default, or --out when it holds no run,
 *               or --force), or --resume DIR's with its checkpoint and recorded settings; locked
 *               before anything in it is read or written, removed again when the run fails
 *               before it wrote anything into a directory it made;
 *   run_log.c   what the run leaves besides its pictures: metrics.csv and metrics.jsonl (losses,
 *               each term, the model's extra columns), the checkpoint and model files with the
 *               settings and data digests as metadata, provenance.txt.
 *
 * Not here: the loop (train.h), the checkpoint's format (train_state.h), the settings' texts
 * (train_settings.h), run-directory rules (run_dir.h).
 */
#ifndef VAE_TRAIN_RUN_H
#define VAE_TRAIN_RUN_H

#include "data_source.h"
#include "device_data.h"
#include "train.h"
#include "train_settings.h"
#include "train_state.h"

#define VAE_CHECKPOINT_FILE "checkpoint.safetensors"
#define VAE_RUN_PATH_MAX 4200

typedef struct {
    const char *dir;        /* the run directory */
    vae_train_settings ts;  /* the run's settings (a resume's: those recorded) */
    const vae_data_source *source;
    vae_run_data data;      /* the data's record (provenance, digests) */
    char data_esc[VAE_SETTING_MAX];
    vae_dataset train, test, val; /* val.n 0: no validation split */
    vae_dataset test_grey;  /* --binarize-test redraw: the test set before any draw (n 0 otherwise) */
    vae_backend *be;
    vae_model m;            /* allocated once be is set and model_ready */
    int model_ready;
    vae_trainer *t;
    vae_device_data dtrain, dtest, dval; /* uploaded once t is set */
    char *metrics;          /* metrics.csv text */
    size_t metrics_len, metrics_cap;
    char *steps;            /* metrics_steps.csv text (--log-every; NULL without) */
    size_t steps_len, steps_cap;
    double best_val;        /* the best validation loss so far (NAN: none yet), and its epoch */
    int best_epoch;
    char model_meta_key[32], model_meta_value[32]; /* the source's extra model metadata ("" none) */
    int recorded_threads;   /* a resumed CPU run's train.threads; 0 when none is recorded */
    int lock_fd;            /* the run directory's lock (run_dir.h), held until the process ends; -1 unlocked */
    int created;            /* the directory was made by this run (removed if it fails before writing) */
    int wrote;              /* something of this run was written into the directory */
    int resuming;
    int snapshot_failed;    /* the source's snapshot failed once: no more are drawn */
    vae_train_checkpoint ck; /* a resumed run's checkpoint, until its state is restored */
    char ck_path[VAE_RUN_PATH_MAX];  /* its path */
    char dir_buf[VAE_RUN_PATH_MAX];  /* a default run directory's path */
    char data_buf[4096];             /* a resumed run's data directory */
} vae_train_run;

/* ---- run_open.c ----------------------------------------------------------------------- */
/* A zeroed run with settings ts. */
void vae_train_run_init(vae_train_run *r, const vae_train_settings *ts);
/* Open a new run's directory: a unique default one (out_dir NULL), or --out when it holds no run
 * (or force). Created, locked and checked for writing before any data is loaded; whether it holds
 * a run is decided under the lock. 0, or the exit code. */
int vae_train_run_open_new(vae_train_run *r, const char *out_dir, int force, int no_lock);
/* Open the run of --resume dir: its checkpoint, the recorded settings (checked against the flags
 * given: given_ts, given[k] per setting, device_given), the new total of epochs, the device and
 * thread count. 0, or the exit code. */
int vae_train_run_open_resume(vae_train_run *r, const char *dir, const vae_train_settings *given_ts,
                              const int *given, int device_given, int no_lock);
/* Release everything the run holds; a directory it made and left empty (but for its lock) goes. */
void vae_train_run_free(vae_train_run *r);

/* ---- run_log.c ------------------------------------------------------------------------ */
/* metrics.csv's header line (with its newline) for model m (a layout will do). */
void vae_run_metrics_header(vae_model *m, int with_val, char *line, size_t cap);
/* Start the run's log: provenance.txt (a new block, or the resumed run's with one appended;
 * argv is the command's, argv[0] "train"), the metrics text (the header, or the checkpoint's
 * rows), metrics.csv and metrics.jsonl. 0, or -1 with vae_set_error. */
int vae_run_log_begin(vae_train_run *r, int argc, char **argv);
/* One epoch's row (training, test and validation losses, the model's extra columns, timing)
 * appended to the text, and its line on stderr. val NULL: no validation split. */
void vae_run_log_epoch(vae_train_run *r, const vae_epoch_metrics *e, const vae_losses *val);
/* metrics_steps.csv's header line (with its newline) for model m and log (--log-every) rows:
 * step, epoch (fractional), train_loss and train_<term> for each term, lr, kl_weight, and
 * temperature, capacity_z, capacity_c where m has them (a categorical latent, a capacity). */
void vae_run_steps_header(vae_model *m, char *line, size_t cap);
/* The trainer's finished step rows (vae_trainer_step_rows) appended to the step text. */
void vae_run_log_steps(vae_train_run *r);
/* metrics.csv, then metrics.jsonl made from its text: the two never disagree; with --log-every
 * metrics_steps.csv and metrics_steps.jsonl the same way. */
int vae_run_log_write_metrics(vae_train_run *r);
/* The train_loss of the text's last row; NAN when there is none. */
double vae_run_log_last_train_loss(const vae_train_run *r);
/* checkpoint.safetensors: everything a resume needs. */
int vae_run_save_checkpoint(vae_train_run *r);
/* A model file (model.safetensors, best.safetensors) with the run's settings and losses e. */
int vae_run_save_model(vae_train_run *r, const char *name, const vae_epoch_metrics *e);

#endif /* VAE_TRAIN_RUN_H */
