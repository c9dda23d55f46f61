/*
 * cli.h: the command-line program's subcommands and the value parsers they
 * share. Each parser checks the whole string and the range and reports the
 * flag by name, so every bad value gets one clear message.
 */
#ifndef VAE_CLI_H
#define VAE_CLI_H

#include "backend.h"
#include "dataset.h"
#include "model.h"

#include <stdint.h>
#include <stdio.h>

/* Exit codes of the program (docs/commands.md). */
enum {
    VAE_EXIT_OK = 0,
    VAE_EXIT_FAILURE = 1,  /* a bad input file, a missing backend, a failed write, an internal error */
    VAE_EXIT_USAGE = 2,    /* a bad flag or value */
    VAE_EXIT_DIVERGED = 3, /* train: a loss or gradient became NaN or infinite; training stopped */
};

int vae_cli_parse_int(const char *flag, const char *s, long lo, long hi, int *out);
int vae_cli_parse_u64(const char *flag, const char *s, uint64_t *out);
int vae_cli_parse_float(const char *flag, const char *s, double lo, double hi, float *out);

/* Print "cuvae <cmd>: <message>" and a hint to --help; returns 2 (usage error). */
int vae_cli_usage_error(const char *cmd, const char *fmt, ...);
/* Print "cuvae: <vae_last_error()>"; returns 1. */
int vae_cli_fail(void);

int vae_cmd_train(int argc, char **argv);
int vae_cmd_sample(int argc, char **argv);
int vae_cmd_reconstruct(int argc, char **argv);
int vae_cmd_eval(int argc, char **argv);
int vae_cmd_info(int argc, char **argv);
int vae_cmd_plot(int argc, char **argv);
int vae_cmd_compare(int argc, char **argv);
int vae_cmd_bench(int argc, char **argv);
int vae_cmd_report(int argc, char **argv);
int vae_cmd_sweep(int argc, char **argv);
int vae_cmd_encode(int argc, char **argv);
int vae_cmd_devices(int argc, char **argv);
int vae_cmd_version(int argc, char **argv);

/* ---- settings shared by train, compare and bench -------------------------- */

typedef struct {
    const char *data_dir;      /* --data */
    int epochs;                /* --epochs */
    int batch_size;            /* --batch-size */
    float lr;                  /* --lr */
    uint64_t seed;             /* --seed */
    vae_config cfg;            /* --hidden --latent --activation --beta --likelihood --sigma --model --disc */
    vae_device_choice device;  /* --device */
    int threads;               /* --threads: OpenMP threads of the CPU backend; 0 leaves OpenMP's default
                                * default. Not a recorded setting: a run may resume with another count */
    int data_given;            /* --data was on the command line (data_dir is not the default) */
    int tf32;                  /* --tf32: the CUDA backend's GEMMs in TF32 (vae_cuda_set_tf32); 0: FP32.
                                * train records it ("train.math": fp32 | tf32) */
} vae_run_settings;

/* Long-option codes of the shared flags (beyond the range of short options). */
enum {
    VAE_OPT_DATA = 1000, VAE_OPT_EPOCHS, VAE_OPT_BATCH, VAE_OPT_LR, VAE_OPT_SEED, VAE_OPT_HIDDEN,
    VAE_OPT_LATENT, VAE_OPT_ACT, VAE_OPT_BETA, VAE_OPT_DEVICE, VAE_OPT_THREADS, VAE_OPT_LIKELIHOOD, VAE_OPT_SIGMA,
    VAE_OPT_MODEL_KIND, VAE_OPT_DISC, VAE_OPT_TF32,
    VAE_OPT_FIRST_PRIVATE = 1100 /* commands number their own options from here */
};

void vae_run_settings_default(vae_run_settings *s); /* data/mnist, 10 epochs, batch 128, lr 1e-3, seed 1 */
/* Apply one shared option: 1 handled, 0 not a shared option, -1 bad value (vae_set_error).
 * VAE_OPT_TF32 takes no value on the command line (arg NULL: on); a recorded "fp32" or
 * "tf32" (train.math, on resume) sets it off or on. */
int vae_cli_apply_shared(vae_run_settings *s, int opt, const char *arg);

/* A command's flags: getopt_long over argv with ":h" and `opts`. -h/--help prints `help`; an
 * unknown or ambiguous option, a missing or empty value, a stray positional argument or (with
 * shared not NULL) a bad value of a shared option prints a usage error. With shared, the shared
 * options (vae_cli_apply_shared) are applied to it; every other option goes to own(ctx, opt,
 * optarg), which returns 0 to go on or an exit code (vae_cli_usage_error's 2) to stop.
 * Returns -1 when every flag was taken, else the exit code: 0 after --help, 2 a usage error. */
struct option;
typedef int (*vae_cli_option_fn)(void *ctx, int opt, const char *arg);
int vae_cli_parse(const char *cmd, int argc, char **argv, const struct option *opts, void (*help)(void),
                  vae_run_settings *shared, vae_cli_option_fn own, void *ctx);

/* The help text of the shared flags, for the commands' --help. */
extern const char vae_cli_help_model[];    /* --hidden --latent --activation --beta --likelihood --sigma */
extern const char vae_cli_help_training[]; /* --data --epochs --batch-size --lr --seed */
extern const char vae_cli_help_device[];   /* --device --threads */
extern const char vae_cli_help_threads[];  /* --threads alone (commands without --device) */
/* --model and the variants' own flags (--disc): vae_variant_help() of variant.h */
extern const char vae_cli_help_tf32[];     /* --tf32 */

/* A command given --tf32 with only the CPU backend asked for (`cpu_only`: the flag that asks for
 * it, e.g. "--device cpu"): prints the one usage error and returns 2. */
int vae_cli_refuse_tf32(const char *cmd, const char *cpu_only);

/* The backend for s->device, announced on `log` ("device: cuda:0 (NVIDIA H100 ...)"),
 * with s->threads OpenMP threads when given (it applies to the CPU backend) and, with
 * s->tf32, TF32 GEMMs on a CUDA backend (the line then ends ", GEMMs in TF32 (--tf32)"; on
 * the CPU, chosen by auto or a resume, it ends ", --tf32 has no effect on the CPU (FP32)").
 * NULL with vae_set_error when the choice cannot be met. */
vae_backend *vae_cli_backend(const vae_run_settings *s, FILE *log);

/* The data set of a command that uses a saved model: s->data_dir as given when s->data_given
 * (--data), else the absolute train.data the model records, its `split` files checked
 * against their recorded SHA-256 (unescaped into recorded, cap bytes, and pointed to by
 * s->data_dir), else s->data_dir's default for a model that records none. Says which on
 * stderr. 0, or -1 with vae_set_error. */
int vae_cli_model_data(const char *model, vae_split split, vae_run_settings *s, char *recorded, size_t cap);

/* The labels of `split` of dir for model m loaded from model_path: for a conditional model, every
 * image labelled and below its classes (vae_dataset_check_labels, naming the labels file and the
 * model); nothing to check for a plain VAE. 0, or -1 with vae_set_error. */
int vae_cli_check_labels(const vae_model *m, const char *model_path, const vae_dataset *d, const char *dir,
                         vae_split split);

/* The model file of a --model value: the value itself, or DIR/model.safetensors when it names a
 * directory (a run directory). Into buf (cap bytes); returns buf. */
const char *vae_cli_model_file(const char *arg, char *buf, size_t cap);
/* Whether `cmd` may write its output file out: refused when out is one of its inputs (inputs[0..n):
 * the same file, by device and inode, under any name) and, unless force (--force), when out holds a
 * cuvae model or training checkpoint (safetensors whose metadata 'format' is cuvae's). A path that
 * does not exist yet is fine. 0, or the exit code of the usage error (2), printed. */
int vae_cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs, int force);
/* The inputs of a command that reads `split` of the data set dir: its images and labels files
 * (vae_dataset_file_paths) appended to inputs[*n..], the paths kept in paths; nothing for the toy
 * or a split that cannot be found (its loading reports that). */
void vae_cli_data_inputs(const char *dir, vae_split split, char paths[2][4096], const char **inputs, int *n);

/* The data d (of the directory dir) against model m loaded from model_path: as many values per
 * image as the model's input and, for images, the shape it was trained on (a 28x28 model does not
 * take 14x56 images). 0, or -1 with vae_set_error naming the data, the model and both shapes. */
int vae_cli_check_data_shape(const vae_model *m, const char *model_path, const vae_dataset *d, const char *dir);

/* Parse a list of image indices such as "0,5,17" or "0-7,12" against a set of
 * n_max images: *out (vae_calloc'd, caller frees) gets them in the order given,
 * *n their count. -1 with vae_set_error naming `flag`, the bad item and, for an
 * index past the end, the set's size. */
#define VAE_CLI_MAX_INDICES 4096 /* --indices gives at most this many */
int vae_cli_parse_indices(const char *flag, const char *s, int n_max, int **out, int *n);

/* struct option entries of the shared flags, to put in a command's table. */
#define VAE_CLI_MODEL_OPTIONS                                                          \
    {"hidden", required_argument, 0, VAE_OPT_HIDDEN}, {"latent", required_argument, 0, VAE_OPT_LATENT}, \
    {"activation", required_argument, 0, VAE_OPT_ACT}, {"beta", required_argument, 0, VAE_OPT_BETA},   \
    {"likelihood", required_argument, 0, VAE_OPT_LIKELIHOOD}, {"sigma", required_argument, 0, VAE_OPT_SIGMA}
#define VAE_CLI_TRAINING_OPTIONS                                                       \
    {"data", required_argument, 0, VAE_OPT_DATA}, {"epochs", required_argument, 0, VAE_OPT_EPOCHS}, \
    {"batch-size", required_argument, 0, VAE_OPT_BATCH}, {"lr", required_argument, 0, VAE_OPT_LR},  \
    {"seed", required_argument, 0, VAE_OPT_SEED}
#define VAE_CLI_THREADS_OPTION {"threads", required_argument, 0, VAE_OPT_THREADS}
#define VAE_CLI_TF32_OPTION {"tf32", no_argument, 0, VAE_OPT_TF32}
/* --model vae|cvae|joint and --disc K: the member of the model family (train; the commands that
 * read a saved model take --model PATH instead, and the file says which it is). */
#define VAE_CLI_MODEL_KIND_OPTION                                                                     \
    {"model", required_argument, 0, VAE_OPT_MODEL_KIND}, {"disc", required_argument, 0, VAE_OPT_DISC}
/* --device and --threads: every command that picks a backend takes both. */
#define VAE_CLI_DEVICE_OPTION {"device", required_argument, 0, VAE_OPT_DEVICE}, VAE_CLI_THREADS_OPTION

#endif /* VAE_CLI_H */
