/*
 * cmd_plot.c: `cuvae plot`: the pictures of a saved model (pictures.h) written
 * again, or into another directory, with another scale or seed.
 *
 * Exit codes: 0 done; 1 a failure (model, data, files, devices); 2 a usage error.
 *
 * Not here: the pictures themselves (pictures.c).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "checkpoint.h"
#include "data_source.h"
#include "pictures.h"
#include "run_dir.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { OPT_MODEL = VAE_OPT_FIRST_PRIVATE, OPT_OUT, OPT_SCALE };

static void help(void)
{
    printf("usage: cuvae plot --model PATH [options]\n\n"
           "Write the pictures of a saved model: latent_scatter.svg, manifold.png (2-D latents),\n"
           "traversals.png, interpolation.png, per_digit.png, and loss_curves.svg from the\n"
           "metrics.csv beside the model (when there is one). A model of the 1-D toy gets its\n"
           "panels instead: toy_density.svg, toy_latent.svg (encoding), toy_decoded.svg\n"
           "(decoding), toy_generated.svg (generation, with the recorded total variation).\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, SHA-256 checked; else data/mnist)\n"
           "  --out DIR           where to write (default: the model's directory)\n"
           "  --scale S           each pixel of the PNG grids as an S x S block, 1 to 64 (default %d)\n"
           "  --seed S            seed of the per-digit samples (default 1)\n%s"
           "  -h, --help          this help\n",
           VAE_PICTURES_SCALE_DEFAULT, vae_cli_help_device);
}

/* The model's directory (dirname of path) into out. */
static void model_dir(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* plot's own flags. */
typedef struct {
    const char *model, *out;
    int scale;
} plot_args;

static int plot_option(void *ctx, int c, const char *arg)
{
    plot_args *a = ctx;
    if (c == OPT_MODEL)
        a->model = arg;
    else if (c == OPT_OUT)
        a->out = arg;
    else if (c == OPT_SCALE && vae_cli_parse_int("--scale", arg, 1, 64, &a->scale))
        return vae_cli_usage_error("plot", "%s", vae_last_error());
    return 0;
}

int vae_cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"scale", required_argument, 0, OPT_SCALE}, {"data", required_argument, 0, VAE_OPT_DATA},
        {"seed", required_argument, 0, VAE_OPT_SEED}, VAE_CLI_DEVICE_OPTION,
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    plot_args a = {.scale = VAE_PICTURES_SCALE_DEFAULT};
    int c = vae_cli_parse("plot", argc, argv, opts, help, &s, plot_option, &a);
    if (c >= 0)
        return c;
    char model_buf[4200];
    const char *model = a.model ? vae_cli_model_file(a.model, model_buf, sizeof model_buf) : NULL, *out = a.out;
    const int scale = a.scale;
    if (!model)
        return vae_cli_usage_error("plot", "--model PATH is required");

    char dir[4096], out_dir[4096], metrics[4200], recorded[4096];
    model_dir(model, dir, sizeof dir);
    snprintf(out_dir, sizeof out_dir, "%s", out ? out : dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", dir);
    if (vae_run_dir_check_writable(out_dir))
        return vae_cli_fail();
    /* A run directory (it has a lock file) is written only under its lock: never into a run in progress. */
    char lock_path[4200], what[4200];
    snprintf(lock_path, sizeof lock_path, "%s/%s", out_dir, VAE_RUN_LOCK_FILE);
    snprintf(what, sizeof what, "%s %s", out ? "--out" : "the model's directory", out_dir);
    int lock_fd = -1;
    if (access(lock_path, F_OK) == 0 && vae_run_dir_lock(out_dir, what, 1, &lock_fd)) {
        fprintf(stderr, "cuvae plot: %s; or give --out DIR to write the pictures elsewhere\n", vae_last_error());
        return VAE_EXIT_USAGE;
    }
    vae_backend *be = vae_cli_backend(&s, stderr);
    if (!be)
        return vae_cli_fail();
    vae_model m;
    if (vae_checkpoint_load(model, be, 256, &m)) {
        vae_backend_free(be);
        return vae_cli_fail();
    }
    int rc = VAE_EXIT_FAILURE;
    if (vae_pictures_need_image(&m.cfg, NULL)) {
        /* rows that are not images: the pictures of the model's data source (the toy's panels), if it has any */
        const vae_data_source *src = NULL;
        if (!vae_cli_model_data(model, VAE_SPLIT_TEST, &s, recorded, sizeof recorded))
            src = vae_data_source_of(s.data_dir);
        if (!src || !src->plot) {
            vae_pictures_need_image(&m.cfg, model);
            vae_cli_fail();
            goto free_model;
        }
        int n = src->plot(&m, model, out_dir, stderr);
        if (n < 0) {
            vae_cli_fail();
        } else {
            fprintf(stderr, "wrote %d pictures to %s\n", n, out_dir);
            rc = 0;
        }
        goto free_model;
    }
    vae_dataset test;
    if (vae_cli_model_data(model, VAE_SPLIT_TEST, &s, recorded, sizeof recorded) ||
        vae_data_source_of(s.data_dir)->load_split(s.data_dir, model, VAE_SPLIT_TEST, &test)) {
        vae_cli_fail();
        goto free_model;
    }
    if (vae_cli_check_data_shape(&m, model, &test, s.data_dir) ||
        vae_cli_check_labels(&m, model, &test, s.data_dir, VAE_SPLIT_TEST)) {
        vae_cli_fail();
        vae_dataset_free(&test);
        goto free_model;
    }
    vae_pictures_options o = {.scale = scale, .seed = s.seed, .metrics_csv = metrics, .log = stderr};
    int n = vae_pictures_write_all(&m, &test, out_dir, &o);
    if (n < 0) {
        vae_cli_fail();
    } else {
        fprintf(stderr, "wrote %d pictures to %s\n", n, out_dir);
        rc = 0;
    }
    vae_dataset_free(&test);
free_model:
    vae_model_free(&m);
    vae_backend_free(be);
    if (lock_fd >= 0)
        close(lock_fd); /* the run directory's lock, held while the pictures were written */
    return rc;
}
