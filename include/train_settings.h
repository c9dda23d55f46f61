/*
 * train_settings.h: the settings of a training run as a checkpoint records
 * them ("train.data", "train.lr", ...: one canonical text per setting), and
 * what a resume does with them: apply the recorded ones, compare the flags a
 * user gave again, and check that the recorded data files are unchanged.
 * Not here: parsing the command line (cmd_train.c), the checkpoint's format
 * (train_state.h).
 */
#ifndef VAE_TRAIN_SETTINGS_H
#define VAE_TRAIN_SETTINGS_H

#include "cli.h"
#include "data_source.h"
#include "evaluate.h"
#include "run_dir.h"
#include "schedule.h"
#include "toy.h"
#include "train_state.h"

/* Option codes of train's own flags that are settings (cli.h numbers private options from here). */
enum {
    VAE_OPT_SAMPLES = VAE_OPT_FIRST_PRIVATE, VAE_OPT_CKPT_EVERY, VAE_OPT_VAL, VAE_OPT_CLIP, VAE_OPT_LR_SCHEDULE,
    VAE_OPT_KL_WARMUP, VAE_OPT_TEMPERATURE, VAE_OPT_TEMPERATURE_ANNEAL, VAE_OPT_CAPACITY_Z, VAE_OPT_CAPACITY_C,
    VAE_OPT_BINARIZE, VAE_OPT_TOY_WEIGHTS, VAE_OPT_TOY_MEANS, VAE_OPT_TOY_STDS, VAE_OPT_TOY_N,
    VAE_OPT_TRAIN_NEXT
};

typedef struct vae_train_settings {
    vae_run_settings s;
    int samples, checkpoint_every;
    float val_fraction;
    float clip_grad_norm; /* --clip-grad-norm; 0: no clipping */
    vae_schedule schedule; /* --lr-schedule, --kl-warmup, --temperature, --temperature-anneal */
    const char *data_abs; /* escaped absolute data directory, once known ("toy" for the toy) */
    vae_binarize binarize; /* --binarize */
    vae_toy toy;           /* --toy-weights, --toy-means, --toy-stds, --toy-n (used with --data toy) */
} vae_train_settings;

/* The settings a checkpoint records, in order. */
enum {
    VAE_TS_DATA, VAE_TS_BATCH, VAE_TS_LR, VAE_TS_SEED, VAE_TS_HIDDEN, VAE_TS_LATENT, VAE_TS_ACT, VAE_TS_BETA,
    VAE_TS_SAMPLES, VAE_TS_VAL, VAE_TS_CKPT, VAE_TS_CLIP, VAE_TS_LR_SCHEDULE, VAE_TS_KL_WARMUP, VAE_TS_LIKELIHOOD,
    VAE_TS_SIGMA, VAE_TS_MODEL, VAE_TS_DISC, VAE_TS_TEMPERATURE, VAE_TS_TEMPERATURE_ANNEAL, VAE_TS_CAPACITY_Z,
    VAE_TS_CAPACITY_C, VAE_TS_BINARIZE, VAE_TS_TOY_WEIGHTS, VAE_TS_TOY_MEANS, VAE_TS_TOY_STDS, VAE_TS_TOY_N,
    VAE_TS_MATH, VAE_TS_EPOCHS, VAE_TS_N
};

typedef struct {
    const char *key, *flag; /* "train.lr", "--lr" */
    int opt;                /* its option code */
    const char *absent;     /* its value in a checkpoint written before the setting existed; NULL: required */
    const vae_data_source *source; /* the data source whose setting it is (its apply and text); NULL: any run's */
} vae_train_setting_key;
extern const vae_train_setting_key vae_train_setting_keys[VAE_TS_N];

/* Longest canonical text of a setting (an escaped path). */
#define VAE_SETTING_MAX (4 * 4096 + 1)

/* The canonical text of setting k into buf (VAE_SETTING_MAX bytes): what is recorded and compared. */
void vae_train_setting_text(const vae_train_settings *t, int k, char *buf);
/* Apply one option (shared or train's own) with value arg: 1 applied, 0 not a setting, -1 bad value. */
int vae_train_setting_apply(vae_train_settings *t, int opt, const char *arg);
/* vae_train_setting_apply, and on success given[k] set for the setting k whose option opt is
 * (given has VAE_TS_N entries): what a command that takes train's flags (train, compare) runs
 * for each option. 1 applied, 0 not a setting, -1 bad value. */
int vae_train_setting_parse(vae_train_settings *t, int *given, int opt, const char *arg);
/* The defaults of the model's variant (variant.h; the joint model's: --hidden 512,256 --latent 10
 * --batch-size 64 --lr 5e-4) for each of those flags not given (given[k] set for each flag given);
 * nothing for a variant without. */
void vae_train_settings_model_defaults(vae_train_settings *t, const int *given);
/* A new run's settings once its flags are parsed (given[k] set for each flag given), before any
 * data is loaded: a data source's own flags (--toy-*) only with that source, whose new_run
 * checks them and sets its model's defaults for the model flags not given (data_source.h);
 * then the variant's defaults
 * (vae_train_settings_model_defaults). 0, or -1 with vae_set_error: a usage error. */
int vae_train_settings_new_run(vae_train_settings *t, const int *given);
/* Compare the settings given on the command line (given[k] set for each flag given) with those
 * recorded in ck; epochs may differ. -1 with a message naming each flag that differs. */
int vae_train_settings_check(const vae_train_checkpoint *ck, const vae_train_settings *given_ts, const int *given,
                             const char *dir);
/* Apply every recorded setting of ck (all but the data directory) to t. -1 with vae_set_error. */
int vae_train_settings_recorded(const vae_train_checkpoint *ck, const char *path, vae_train_settings *t);
/* The recorded SHA-256 of each data file must match d's. -1 with vae_set_error naming the file. */
int vae_train_settings_check_data(const vae_train_checkpoint *ck, const char *path, const vae_run_data *d);

#endif
