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
#include "config.h"
#include "data_source.h"
#include "evaluate.h"
#include "run_dir.h"
#include "safetensors.h"
#include "schedule.h"
#include "toy.h"
#include "train_state.h"

#include <getopt.h>

/* The settings a checkpoint records, in the order recorded: the one table. A row is
 *   X(ID, key, flag, opt, absent, codec, step)
 * ID         VAE_TS_<ID>, the setting's index;
 * key, flag  "train.lr", "--lr";
 * opt        its option code when the flag is shared with other commands (cli.h VAE_OPT_*, parsed by
 *            vae_cli_apply_shared); 0 for train's own, whose code is VAE_TS_OPT(VAE_TS_<ID>);
 * absent     its value in a checkpoint written before the setting existed; NULL: required;
 * codec      how its value is parsed and written (src/train_settings.c): INT(field, lo, hi) and
 *            FLOAT(field, lo, hi) for a member of vae_train_settings, SHARED_INT(field) and
 *            SHARED_FLOAT(field) for one vae_cli_apply_shared parses, FN(name, is_float) for one
 *            with its own text_<name> and apply_<name>, SHARED_FN(name) for a shared one with its
 *            own text_<name>, SOURCE(source) for a data source's own (its apply and text);
 * step       1 when it changes the training steps (compare takes it too), 0 when not.
 * Adding a setting: a row here, its field in vae_train_settings, its line in train's --help. */
#define VAE_TRAIN_SETTINGS(X)                                                                                   \
    X(DATA, "train.data", "--data", VAE_OPT_DATA, NULL, SHARED_FN(data), 0)                                        \
    X(BATCH, "train.batch_size", "--batch-size", VAE_OPT_BATCH, NULL, SHARED_INT(s.batch_size), 0)             \
    X(LR, "train.lr", "--lr", VAE_OPT_LR, NULL, SHARED_FLOAT(s.lr), 0)                                         \
    X(SEED, "train.seed", "--seed", VAE_OPT_SEED, NULL, SHARED_FN(seed), 0)                                        \
    X(HIDDEN, "train.hidden", "--hidden", VAE_OPT_HIDDEN, NULL, SHARED_FN(hidden), 0)                              \
    X(LATENT, "train.latent", "--latent", VAE_OPT_LATENT, NULL, SHARED_INT(s.cfg.latent_dim), 0)               \
    X(ACT, "train.activation", "--activation", VAE_OPT_ACT, NULL, SHARED_FN(act), 0)                               \
    X(BETA, "train.beta", "--beta", VAE_OPT_BETA, NULL, SHARED_FLOAT(s.cfg.beta), 0)                           \
    X(SAMPLES, "train.samples", "--samples", 0, NULL, INT(samples, 1, 4096), 0)                                \
    X(VAL, "train.val_fraction", "--val-fraction", 0, NULL, FLOAT(val_fraction, 0.0, 0.9), 0)                  \
    X(CKPT, "train.checkpoint_every", "--checkpoint-every", 0, NULL, INT(checkpoint_every, 1, 100000), 0)      \
    X(CLIP, "train.clip_grad_norm", "--clip-grad-norm", 0, NULL, FLOAT(clip_grad_norm, 0.0, 1e12), 1)          \
    X(LR_SCHEDULE, "train.lr_schedule", "--lr-schedule", 0, "constant", FN(lr_schedule, 0), 1)                 \
    X(KL_WARMUP, "train.kl_warmup", "--kl-warmup", 0, "0", FLOAT(schedule.kl_warmup_epochs, 0.0, 1e6), 1)      \
    X(LIKELIHOOD, "train.likelihood", "--likelihood", VAE_OPT_LIKELIHOOD, "bernoulli", SHARED_FN(likelihood), 0)   \
    X(SIGMA, "train.sigma", "--sigma", VAE_OPT_SIGMA, "1", SHARED_FLOAT(s.cfg.sigma), 0)                       \
    X(MODEL, "train.model", "--model", VAE_OPT_MODEL_KIND, "vae", SHARED_FN(model), 0)                             \
    X(DISC, "train.disc", "--disc", VAE_OPT_DISC, "10", SHARED_INT(s.cfg.disc), 0)                             \
    X(CONDITION, "train.condition", "--condition", 0, "both", FN(condition, 0), 0)                             \
    X(TEMPERATURE, "train.temperature", "--temperature", 0, "0.67", FN(temperature, 1), 1)                     \
    X(TEMPERATURE_ANNEAL, "train.temperature_anneal", "--temperature-anneal", 0, "off",                         \
      FN(temperature_anneal, 0), 1)                                                                             \
    X(CAPACITY_Z, "train.capacity_z", "--capacity-z", 0, "off", FN(capacity, 0), 1)                            \
    X(CAPACITY_C, "train.capacity_c", "--capacity-c", 0, "off", FN(capacity, 0), 1)                            \
    X(BINARIZE, "train.binarize", "--binarize", 0, "none", FN(binarize, 0), 1)                                 \
    X(BINARIZE_TEST, "train.binarize_test", "--binarize-test", 0, "fixed", FN(binarize_test, 0), 0)           \
    X(TOY_WEIGHTS, "train.toy_weights", "--toy-weights", 0, VAE_TOY_DEFAULT_WEIGHTS, SOURCE(vae_data_toy), 1)  \
    X(TOY_MEANS, "train.toy_means", "--toy-means", 0, VAE_TOY_DEFAULT_MEANS, SOURCE(vae_data_toy), 1)          \
    X(TOY_STDS, "train.toy_stds", "--toy-stds", 0, VAE_TOY_DEFAULT_STDS, SOURCE(vae_data_toy), 1)             \
    X(TOY_N, "train.toy_n", "--toy-n", 0, VAE_TOY_DEFAULT_N, SOURCE(vae_data_toy), 1)                          \
    X(TOY_SNAPSHOT, "train.toy_snapshot_every", "--snapshot-every", 0, "auto", SOURCE(vae_data_toy), 0)          \
    X(MATH, "train.math", "--tf32", VAE_OPT_TF32, "fp32", SHARED_FN(math), 0) /* the GEMMs' precision on CUDA */  \
    X(LOG_EVERY, "train.log_every", "--log-every", 0, "0", INT(log_every, 0, 1 << 30), 0)                       \
    X(STEPS, "train.steps", "--steps", 0, "off", FN(steps, 0), 0) /* the run's length in steps; epochs follow */ \
    X(EPOCHS, "train.epochs", "--epochs", VAE_OPT_EPOCHS, NULL, SHARED_INT(s.epochs), 0)

#define VAE_TS_ENUM(id, key, flag, opt, absent, codec, step) VAE_TS_##id,
enum { VAE_TRAIN_SETTINGS(VAE_TS_ENUM) VAE_TS_N };
#undef VAE_TS_ENUM

/* The option code of train's own flag of setting k (a row whose opt is 0), and the first code
 * a command may number its own options from after them. */
#define VAE_TS_OPT(k) (VAE_OPT_FIRST_PRIVATE + (k))
#define VAE_OPT_TRAIN_NEXT VAE_TS_OPT(VAE_TS_N)

typedef struct vae_train_settings {
    vae_run_settings s;
    int samples, checkpoint_every;
    int log_every;         /* --log-every: a row of metrics_steps.csv every N steps; 0: none */
    int steps;             /* --steps: the run's length in steps (epochs = their ceiling); 0: --epochs's */
    float val_fraction;
    float clip_grad_norm; /* --clip-grad-norm; 0: no clipping */
    vae_schedule schedule; /* --lr-schedule, --kl-warmup, --temperature, --temperature-anneal */
    const char *data_abs; /* escaped absolute data directory, once known ("toy" for the toy) */
    vae_binarize binarize; /* --binarize */
    int binarize_test_redraw; /* --binarize-test redraw: with --binarize dynamic, the test set drawn anew each
                               * epoch (vae_binarize_epoch_seed); 0 (fixed): one draw for the run */
    vae_toy toy;           /* --toy-weights, --toy-means, --toy-stds, --toy-n (used with --data toy) */
} vae_train_settings;

/* A row of the table as the rest of the code reads it. */
typedef struct {
    const char *key, *flag; /* "train.lr", "--lr" */
    int opt;                /* its option code */
    const char *absent;     /* its value in a checkpoint written before the setting existed; NULL: required */
    const vae_data_source *source; /* the data source whose setting it is (its apply and text); NULL: any run's */
    int step;               /* it changes the training steps (compare takes it) */
} vae_train_setting_key;
extern const vae_train_setting_key vae_train_setting_keys[VAE_TS_N];
/* A command's getopt table: its fixed entries (terminated by a zeroed one), then the flags of
 * train's own settings (rows whose opt is 0; only those with step set when steps_only), then the
 * terminator, into out (room for the fixed entries and VAE_TS_N more). */
void vae_train_setting_options(struct option *out, const struct option *fixed, int steps_only);

/* Longest canonical text of a setting (an escaped path). */
#define VAE_SETTING_MAX (4 * 4096 + 1)

/* Whether the recorded setting under metadata key `key` applies to the model of file st: the
 * data source's own settings only with that source, --sigma only with the Gaussian likelihood,
 * --binarize only with the Bernoulli one, --disc and the temperature only with a categorical
 * latent (the file's architecture), the capacities only for a variant that takes them. Keys
 * that are no setting (provenance, final losses) apply. Lets `info` and the report show what
 * shaped this model, not every key every run records. */
int vae_train_setting_applies(const char *key, const vae_safetensors *st);

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
 * recorded in ck; epochs and steps may differ. -1 with a message naming each flag that differs. */
int vae_train_settings_check(const vae_train_checkpoint *ck, const vae_train_settings *given_ts, const int *given,
                             const char *dir);
/* Apply every recorded setting of ck (all but the data directory) to t. -1 with vae_set_error. */
int vae_train_settings_recorded(const vae_train_checkpoint *ck, const char *path, vae_train_settings *t);
/* The recorded SHA-256 of each data file must match d's. -1 with vae_set_error naming the file. */
int vae_train_settings_check_data(const vae_train_checkpoint *ck, const char *path, const vae_run_data *d);

#endif
