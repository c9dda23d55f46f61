/*
 * cmd_compare.c: `cuvae compare`: N training steps on the CPU and on the GPU
 * from the same parameters and noise; per tensor the largest differences;
 * exit 1 beyond tolerance. This is what a GPU CI job runs. The model and its
 * training are given with train's flags, parsed and checked by train's own
 * code (train_settings.h: vae_train_setting_parse, vae_train_settings_new_run),
 * so every model train trains can be compared; the flags that do not change
 * a training step's arithmetic (--out, --samples, --val-fraction, ...) are
 * not taken.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "compare.h"
#include "train_settings.h"
#include "vae_util.h"
#include "variant.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum { OPT_STEPS = VAE_OPT_TRAIN_NEXT, OPT_CANDIDATE, OPT_TOL };

static void help(void)
{
    vae_compare_options o, t;
    vae_compare_options_default(&o);
    t = o;
    vae_compare_options_tf32(&t);
    printf("usage: cuvae compare [options]\n\n"
           "Train the same model from the same initial parameters with the same noise on the\n"
           "CPU backend (the reference) and on the CUDA backend, then print per tensor (step\n"
           "losses, every gradient after the first and the last step, every parameter) the\n"
           "largest absolute difference, the largest difference over the tensor's largest\n"
           "magnitude, and the relative L2 error. Every step starts both backends from the\n"
           "CPU's state, so each step measures one step's arithmetic. A tensor passes when its\n"
           "relative L2 error is within tolerance; a parameter must also be within 2 * lr * steps\n"
           "of the CPU's in every element. Exit status 1 when any tensor is beyond tolerance,\n"
           "2 for bad flags, 1 when there is no GPU.\n\n"
           "  --steps N           training steps (default %d)\n"
           "  --batch-size B      images per step (default %d for every model: not a multiple of any\n"
           "                      block size)\n"
           "  --lr X              Adam learning rate (default 1e-3; joint: 5e-4, as train)\n"
           "  --seed S            seed of parameters, data order and noise (default 1)\n"
           "  --data DIR          train on this data set's training split (default: %d seeded\n"
           "                      synthetic images, so no download is needed); --data toy: the 1-D\n"
           "                      Gaussian-mixture toy's training set and model defaults, as train\n"
           "%s%s"
           "  --clip-grad-norm X, --lr-schedule S, --kl-warmup W, --temperature T,\n"
           "  --temperature-anneal T_END, --capacity-z MAX,ITERS,GAMMA, --capacity-c MAX,ITERS,GAMMA,\n"
           "  --binarize none|dynamic|static, --toy-weights W,.., --toy-means M,.., --toy-stds S,..,\n"
           "  --toy-n TRAIN,TEST\n"
           "                      as in 'cuvae train --help', checked as train checks them; the\n"
           "                      schedules run over the N steps rounded up to whole epochs of the data\n"
           "  --tolerance X       scale all tolerances by X (defaults, relative L2: loss %.0e,\n"
           "                      gradients %.0e, parameters %.0e)\n"
           "  --tf32              the GPU's GEMMs in TF32 (inputs rounded to 10 mantissa bits, sums in\n"
           "                      FP32) against the FP32 CPU, with TF32's own tolerances, derived from its\n"
           "                      unit roundoff 2^-11 (default model: loss %.1e, gradients, parameters\n"
           "                      %.1e); refused with --candidate cpu\n"
           "  --candidate DEV     backend checked against the CPU: cuda (default), cuda:N (GPU N) or\n"
           "                      cpu (a self-check of this command, printed as cpu against cpu)\n"
           "%s"
           "  -h, --help          this help\n",
           o.steps, o.batch_size, VAE_COMPARE_SYNTHETIC_IMAGES, vae_cli_help_model, vae_variant_help(),
           o.tol_loss, o.tol_grad, o.tol_param, t.tol_loss, t.tol_grad, vae_cli_help_threads);
}

/* compare's flags beyond the options it fills directly. */
typedef struct {
    vae_train_settings *ts;
    int given[VAE_TS_N];
    vae_device_choice cand; /* --candidate */
    float scale;            /* --tolerance */
    int *steps;             /* --steps */
} compare_args;

static int compare_option(void *ctx, int c, const char *arg)
{
    compare_args *a = ctx;
    int r = vae_train_setting_parse(a->ts, a->given, c, arg);
    if (r < 0)
        return vae_cli_usage_error("compare", "%s", vae_last_error());
    if (r > 0)
        return 0;
    int bad = 0;
    if (c == OPT_STEPS)
        bad = vae_cli_parse_int("--steps", arg, 1, 100000, a->steps);
    else if (c == OPT_TOL)
        bad = vae_cli_parse_float("--tolerance", arg, 1e-3, 1e6, &a->scale);
    else if (c == OPT_CANDIDATE && (vae_device_parse(arg, &a->cand) || a->cand == VAE_DEVICE_AUTO))
        bad = vae_set_error("--candidate '%s': expected cuda, cuda:N or cpu", arg);
    return bad ? vae_cli_usage_error("compare", "%s", vae_last_error()) : 0;
}

int vae_cmd_compare(int argc, char **argv)
{
    static const struct option fixed[] = {
        {"steps", required_argument, 0, OPT_STEPS},
        {"batch-size", required_argument, 0, VAE_OPT_BATCH},
        {"lr", required_argument, 0, VAE_OPT_LR},
        {"seed", required_argument, 0, VAE_OPT_SEED},
        {"data", required_argument, 0, VAE_OPT_DATA},
        VAE_CLI_MODEL_OPTIONS,
        VAE_CLI_MODEL_KIND_OPTION,
        {"tolerance", required_argument, 0, OPT_TOL},
        {"candidate", required_argument, 0, OPT_CANDIDATE},
        VAE_CLI_THREADS_OPTION,
        VAE_CLI_TF32_OPTION,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct option opts[sizeof fixed / sizeof fixed[0] + VAE_TS_N];
    vae_train_setting_options(opts, fixed, 1); /* and the flags of the settings that change the steps */
    vae_compare_options o;
    vae_compare_options_default(&o);
    /* train's settings with compare's defaults: synthetic data, its batch size */
    vae_train_settings ts = {.samples = 64, .checkpoint_every = 1};
    vae_run_settings_default(&ts.s);
    vae_schedule_default(&ts.schedule);
    vae_toy_default(&ts.toy);
    ts.s.data_dir = NULL;
    ts.s.batch_size = o.batch_size;
    compare_args a = {.ts = &ts, .cand = VAE_DEVICE_CUDA, .scale = 1.0f, .steps = &o.steps};
    int rc = vae_cli_parse("compare", argc, argv, opts, help, NULL, compare_option, &a);
    if (rc >= 0)
        return rc;
    int *given = a.given;
    const vae_device_choice cand = a.cand;
    const float scale = a.scale;
    if (ts.s.tf32 && cand == VAE_DEVICE_CPU)
        return vae_cli_refuse_tf32("compare", "--candidate cpu");
    given[VAE_TS_BATCH] = 1; /* compare's batch size for every model, the joint one's too */
    if (vae_train_settings_new_run(&ts, given))
        return vae_cli_usage_error("compare", "%s", vae_last_error());
    o.cfg = ts.s.cfg;
    o.batch_size = ts.s.batch_size;
    o.lr = ts.s.lr;
    o.seed = ts.s.seed;
    o.data_dir = ts.s.data_dir;
    o.toy = ts.toy;
    o.binarize = ts.binarize;
    o.clip_grad_norm = ts.clip_grad_norm;
    o.schedule = ts.schedule;
    if (ts.s.tf32)
        vae_compare_options_tf32(&o); /* for this model's depth */
    o.tol_loss *= scale;
    o.tol_grad *= scale;
    o.tol_param *= scale;

    /* The data and the model it makes, checked before any backend starts. */
    vae_dataset data;
    vae_config cfg;
    rc = vae_compare_load(&o, &data, &cfg);
    if (rc == VAE_COMPARE_UNSUITED)
        return vae_cli_usage_error("compare", "%s", vae_last_error());
    if (rc)
        return vae_cli_fail();

    if (ts.s.threads > 0)
        vae_cpu_set_threads(ts.s.threads);
    vae_backend *cand_be = vae_backend_create(cand);
    if (!cand_be) {
        char why[512];
        snprintf(why, sizeof why, "%s", vae_last_error());
        vae_set_error("compare needs a GPU: %s (--candidate cpu runs the command's self-check on the CPU)", why);
        vae_dataset_free(&data);
        return vae_cli_fail();
    }
    vae_backend *ref = vae_backend_cpu_init();
    int fails = vae_compare_run_data(&o, &data, &cfg, ref, cand_be, stdout);
    vae_backend_free(ref);
    vae_backend_free(cand_be);
    vae_dataset_free(&data);
    if (fails < 0)
        return vae_cli_fail();
    return fails ? 1 : 0;
}
