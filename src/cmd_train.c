/*
 * cmd_train.c: `cuvae train`: load the data, train, and leave a run directory
 * with model.safetensors, metrics.csv, samples.png and reconstructions.png.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "cli.h"
#include "devmem.h"
#include "progress.h"
#include "train.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { OPT_OUT = VAE_OPT_FIRST_PRIVATE, OPT_QUIET, OPT_SAMPLES, OPT_CLIP };

static void help(void)
{
    printf("usage: cuvae train [options]\n\n"
           "Train a VAE with a Bernoulli decoder and a Gaussian posterior; each epoch prints\n"
           "the training loss split into reconstruction and KL, and the test loss, per image in nats.\n\n"
           "%s%s%s"
           "  --out DIR           run directory (default models/vae-YYYYmmdd-HHMMSS)\n"
           "  --samples N         images in samples.png (default 64)\n"
           "  --clip-grad-norm X  scale each step's gradients to a global L2 norm of at most X\n"
           "                      (default: no clipping)\n"
           "  --quiet             no progress output, only the epoch lines\n"
           "  -h, --help          this help\n",
           vae_cli_help_training, vae_cli_help_model, vae_cli_help_device);
}

static void write_metrics_row(FILE *f, const char *path, const vae_epoch_metrics *e)
{
    if (fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%.1f\n", e->epoch, e->train.loss, e->train.recon,
                e->train.kl, e->test.loss, e->test.recon, e->test.kl, e->seconds, e->images_per_second) < 0 ||
        fflush(f) != 0)
        vae_fatal("writing %s failed", path);
}

static int load_data(const char *dir, vae_dataset *train, vae_dataset *test)
{
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, train))
        return -1;
    if (vae_dataset_load(dir, VAE_SPLIT_TEST, test)) {
        vae_dataset_free(train);
        return -1;
    }
    if (train->rows != test->rows || train->cols != test->cols) {
        vae_dataset_free(train);
        vae_dataset_free(test);
        return vae_set_error("%s: training images are %dx%d but test images %dx%d", dir, train->rows,
                             train->cols, test->rows, test->cols);
    }
    return 0;
}

int vae_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_DEVICE_OPTION,
        {"out", required_argument, 0, OPT_OUT},
        {"samples", required_argument, 0, OPT_SAMPLES},
        {"clip-grad-norm", required_argument, 0, OPT_CLIP},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    const char *out_dir = NULL;
    int quiet = 0, n_samples = 64, c;
    float clip_grad_norm = 0.0f;
    optind = 0;
    while ((c = vae_cli_next_option("train", argc, argv, opts)) != -1) {
        if (c == -2)
            return 2;
        if (c == 'h') {
            help();
            return 0;
        }
        int r = vae_cli_apply_shared(&s, c, optarg);
        if (r < 0)
            return vae_cli_usage_error("train", "%s", vae_last_error());
        if (r > 0)
            continue;
        if (c == OPT_OUT)
            out_dir = optarg;
        else if (c == OPT_QUIET)
            quiet = 1;
        else if (c == OPT_SAMPLES && vae_cli_parse_int("--samples", optarg, 1, 4096, &n_samples))
            return vae_cli_usage_error("train", "%s", vae_last_error());
        else if (c == OPT_CLIP && vae_cli_parse_float("--clip-grad-norm", optarg, 1e-6, 1e12, &clip_grad_norm))
            return vae_cli_usage_error("train", "%s", vae_last_error());
    }

    char default_out[128];
    if (!out_dir) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(default_out, sizeof default_out, "models/vae-%Y%m%d-%H%M%S", &tm);
        out_dir = default_out;
    }

    vae_dataset train, test;
    if (load_data(s.data_dir, &train, &test))
        return vae_cli_fail();
    s.cfg.input_dim = train.dim;
    s.cfg.image_rows = train.rows;
    s.cfg.image_cols = train.cols;
    if (vae_config_validate(&s.cfg)) {
        vae_dataset_free(&train);
        vae_dataset_free(&test);
        return vae_cli_usage_error("train", "%s", vae_last_error());
    }
    vae_backend *be = vae_cli_backend(s.device, stderr);
    vae_device_plan plan;
    if (!be || vae_device_plan_train(&plan, &s.cfg, s.batch_size, train.n, test.n) ||
        vae_device_plan_check(&plan, be)) {
        vae_backend_free(be);
        vae_dataset_free(&train);
        vae_dataset_free(&test);
        return vae_cli_fail();
    }
    if (vae_mkdir_p(out_dir)) {
        vae_backend_free(be);
        vae_dataset_free(&train);
        vae_dataset_free(&test);
        return vae_cli_fail();
    }

    vae_model m;
    if (vae_model_init(&m, &s.cfg, be, s.batch_size))
        vae_fatal("model: %s", vae_last_error()); /* the config was validated above */
    vae_model_init_params(&m, s.seed);
    fprintf(stderr, "data: %s (%d training, %d test images, %dx%d)\n", s.data_dir, train.n, test.n, train.rows,
            train.cols);
    vae_model_print_summary(&m, stderr);

    vae_device_data dtrain, dtest;
    vae_device_data_init(&dtrain, be, &train);
    vae_device_data_init(&dtest, be, &test);

    vae_train_options topt = {
        .epochs = s.epochs,
        .batch_size = s.batch_size,
        .adam = {.lr = s.lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .seed = s.seed,
        .clip_grad_norm = clip_grad_norm,
        .progress = quiet ? -1 : vae_progress_auto_mode(stderr),
        .log = stderr,
    };
    vae_trainer *t = vae_trainer_init(&m, &topt);

    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    FILE *metrics = vae_fopen(path, "w");
    if (fprintf(metrics, "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,"
                         "images_per_second\n") < 0)
        vae_fatal("writing %s failed", path);
    vae_epoch_metrics e = {0};
    double total_s = 0;
    vae_divergence div;
    int diverged = 0;
    for (int ep = 1; ep <= s.epochs; ep++) {
        vae_trainer_epoch(t, &dtrain, &dtest, ep, &e);
        if ((diverged = vae_trainer_diverged(t, &div)))
            break;
        total_s += e.seconds;
        write_metrics_row(metrics, path, &e);
        fprintf(stderr, "epoch %3d/%d  train %.4f (recon %.4f, kl %.4f)  test %.4f  %.2f s  %.0f img/s\n", ep,
                s.epochs, e.train.loss, e.train.recon, e.train.kl, e.test.loss, e.seconds, e.images_per_second);
    }
    vae_fclose(metrics, path);
    if (diverged) {
        fprintf(stderr,
                "cuvae train: training diverged at epoch %d, step %d of the epoch (step %ld of the run): the %s "
                "became NaN or infinite. That step and later ones were not applied; no model was saved from "
                "this epoch (metrics.csv holds the epochs before it). Try a lower --lr (now %g) or "
                "--clip-grad-norm.\n",
                div.epoch, div.epoch_step, div.step, vae_diverged_quantity_name(div.quantity), (double)s.lr);
        vae_trainer_free(t);
        vae_device_data_free(&dtrain, be);
        vae_device_data_free(&dtest, be);
        vae_model_free(&m);
        vae_backend_free(be);
        vae_dataset_free(&train);
        vae_dataset_free(&test);
        return VAE_EXIT_DIVERGED;
    }

    char epochs_s[32], batch_s[32], lr_s[32], seed_s[32], train_s[32], test_s[32];
    snprintf(epochs_s, sizeof epochs_s, "%d", s.epochs);
    snprintf(batch_s, sizeof batch_s, "%d", s.batch_size);
    snprintf(lr_s, sizeof lr_s, "%.6g", (double)s.lr);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)s.seed);
    snprintf(train_s, sizeof train_s, "%.6f", e.train.loss);
    snprintf(test_s, sizeof test_s, "%.6f", e.test.loss);
    vae_st_meta extra[] = {
        {"train.data", s.data_dir}, {"train.epochs", epochs_s},     {"train.batch_size", batch_s},
        {"train.lr", lr_s},         {"train.seed", seed_s},         {"train.device", be->device_name},
        {"train.final_train_loss", train_s}, {"train.final_test_loss", test_s},
    };
    int rc = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (vae_checkpoint_save(&m, path, extra, (int)(sizeof extra / sizeof extra[0])))
        rc = vae_cli_fail();
    snprintf(path, sizeof path, "%s/samples.png", out_dir);
    if (!rc && vae_render_samples(&m, path, n_samples, s.seed))
        rc = vae_cli_fail();
    snprintf(path, sizeof path, "%s/reconstructions.png", out_dir);
    if (!rc && vae_render_reconstructions(&m, &test, path, 32))
        rc = vae_cli_fail();
    if (!rc)
        fprintf(stderr, "trained %d epochs in %.1f s; final test loss %.4f nats/image\n"
                        "wrote %s/{model.safetensors,metrics.csv,samples.png,reconstructions.png}\n",
                s.epochs, total_s, e.test.loss, out_dir);

    vae_trainer_free(t);
    vae_device_data_free(&dtrain, be);
    vae_device_data_free(&dtest, be);
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
    return rc;
}
