/*
 * cmd_bench.c: `cuvae bench`: time the training loop, epoch by epoch, on each
 * backend asked for, and print images/s and seconds per epoch (median over the
 * timed epochs, after one warm-up epoch). scripts/bench.sh runs it beside the
 * same model in PyTorch and prints the ratios. A benchmark, not a test.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "train.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_BACKENDS = VAE_OPT_FIRST_PRIVATE };

static void help(void)
{
    printf("usage: cuvae bench [options]\n\n"
           "Time training epochs (no evaluation) after one warm-up epoch; print one line per\n"
           "backend: images/s and the median seconds per epoch.\n\n"
           "%s%s"
           "  --backends LIST     cpu, cuda, cuda:N (GPU N), or cpu with one of those, comma-separated\n"
           "                      (default: cpu, plus cuda:0 when a GPU is present)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_training, vae_cli_help_model, vae_cli_help_threads);
}

/* --backends: "cpu", a CUDA device ("cuda", "cuda:N"), or one of each, comma-separated. */
static int parse_backends(const char *arg, int *want_cpu, int *want_cuda, vae_device_choice *gpu)
{
    *want_cpu = *want_cuda = 0;
    const char *p = arg;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[64];
        vae_device_choice c;
        snprintf(item, sizeof item, "%.*s", (int)(len < 60 ? len : 60), p);
        int *count = NULL; /* of this item's kind: each may come once */
        if (len < 60 && vae_device_parse(item, &c) == 0 && c != VAE_DEVICE_AUTO)
            count = c == VAE_DEVICE_CPU ? want_cpu : want_cuda;
        if (!count || *count)
            return vae_set_error("--backends '%s': expected cpu, cuda, cuda:N or cpu with one of those", arg);
        *count = 1;
        if (vae_device_is_cuda(c))
            *gpu = c;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_one(vae_backend *be, const vae_run_settings *s, const vae_dataset *train)
{
    vae_model m;
    if (vae_model_init(&m, &s->cfg, be, s->batch_size))
        return -1;
    vae_model_init_params(&m, s->seed);
    vae_device_data d;
    vae_device_data_init(&d, be, train);
    vae_train_options topt = {
        .epochs = s->epochs + 1, .batch_size = s->batch_size,
        .adam = {.lr = s->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .seed = s->seed, .progress = -1, .log = stderr,
    };
    vae_trainer *t = vae_trainer_init(&m, &topt);
    double *sec = vae_calloc((size_t)s->epochs, sizeof(double));
    vae_epoch_metrics e;
    vae_trainer_epoch(t, &d, NULL, 0, &e); /* warm-up: graph capture, caches, clocks */
    for (int i = 0; i < s->epochs; i++) {
        vae_trainer_epoch(t, &d, NULL, i + 1, &e);
        sec[i] = e.seconds;
    }
    qsort(sec, (size_t)s->epochs, sizeof(double), cmp_double);
    double med = s->epochs % 2 ? sec[s->epochs / 2] : 0.5 * (sec[s->epochs / 2 - 1] + sec[s->epochs / 2]);
    printf("bench impl=cuvae backend=%s device=\"%s\" images=%d batch=%d epochs=%d median_s_per_epoch=%.6f "
           "images_per_s=%.1f final_train_loss=%.4f\n",
           be->name, be->device_name, train->n, s->batch_size, s->epochs, med, train->n / med, e.train.loss);
    fflush(stdout);
    vae_free(sec);
    vae_trainer_free(t);
    vae_device_data_free(&d, be);
    vae_model_free(&m);
    return 0;
}

int vae_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_THREADS_OPTION,
        {"backends", required_argument, 0, OPT_BACKENDS},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    s.epochs = 3;
    int want_cpu = 1, want_cuda = vae_cuda_device_count() > 0, c;
    vae_device_choice gpu = VAE_DEVICE_CUDA;
    optind = 0;
    while ((c = vae_cli_next_option("bench", argc, argv, opts)) != -1) {
        if (c == -2)
            return 2;
        if (c == 'h') {
            help();
            return 0;
        }
        int r = vae_cli_apply_shared(&s, c, optarg);
        if (r < 0)
            return vae_cli_usage_error("bench", "%s", vae_last_error());
        if (r == 0 && c == OPT_BACKENDS && parse_backends(optarg, &want_cpu, &want_cuda, &gpu))
            return vae_cli_usage_error("bench", "%s", vae_last_error());
    }
    if (s.threads > 0)
        vae_cpu_set_threads(s.threads);
    vae_dataset train;
    if (vae_dataset_load(s.data_dir, VAE_SPLIT_TRAIN, &train))
        return vae_cli_fail();
    s.cfg.input_dim = train.dim;
    s.cfg.image_rows = train.rows;
    s.cfg.image_cols = train.cols;
    int rc = 0;
    if (want_cpu) {
        vae_backend *be = vae_backend_cpu_init();
        if (bench_one(be, &s, &train))
            rc = vae_cli_fail();
        vae_backend_free(be);
    }
    if (!rc && want_cuda) {
        vae_backend *be = vae_backend_cuda_init(vae_device_ordinal(gpu));
        if (!be) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            char dev[16];
            vae_set_error("--backends %s: %s", vae_device_text(gpu, dev), why);
        }
        if (!be || bench_one(be, &s, &train))
            rc = vae_cli_fail();
        vae_backend_free(be);
    }
    vae_dataset_free(&train);
    return rc;
}
