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
#include "plot.h"
#include "run_dir.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_MODEL = VAE_OPT_FIRST_PRIVATE,
    OPT_OUT,
    OPT_SCALE,
    OPT_MANIFOLD_RANGE,
    OPT_MANIFOLD_SIZE,
    OPT_SCATTER,
    OPT_SCATTER_IMAGES,
    OPT_CLOUD_IMAGES,
    OPT_CLOUD_SAMPLES
};

static void help(void)
{
    printf("usage: cuvae plot --model PATH [options]\n\n"
           "Write the pictures of a saved model: latent_scatter.svg, manifold.png (2-D latents),\n"
           "traversals.png, interpolation.png, per_digit.png, posterior_cloud.svg, and\n"
           "loss_curves.svg from the metrics.csv beside the model (when there is one). A model\n"
           "of the 1-D toy gets its panels instead: toy_density.svg, toy_latent.svg (encoding),\n"
           "toy_decoded.svg (decoding), toy_generated.svg (generation, with the recorded total\n"
           "variation).\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, SHA-256 checked; else data/mnist)\n"
           "  --out DIR           where to write (default: the model's directory)\n"
           "  --scale S           each pixel of the PNG grids as an S x S block, 1 to 64 (default %d)\n"
           "  --seed S            seed of every posterior draw: per-digit samples, the cloud, a\n"
           "                      sampled scatter (default 1)\n"
           "  --manifold-range R  manifold.png an even linear grid over [-R, R]^2, corners included\n"
           "                      (0 < R <= 1000; default: the prior's quantiles; an autoencoder's\n"
           "                      2-D code plane is drawn only this way)\n"
           "  --manifold-size N   the manifold N x N, 2 to %d (default %d)\n"
           "  --scatter WHAT      latent_scatter.svg shows the posterior `means` (default) or\n"
           "                      `samples`: one draw z ~ q(z|x) per image\n"
           "  --scatter-images N  the scatter over the first N test images (default: up to %d)\n"
           "  --cloud-images N    posterior_cloud.svg: the first N test images, 1 to %d (default %d),\n"
           "  --cloud-samples K   each with K draws of q(z|x), 1 to %d (default %d)\n%s"
           "  -h, --help          this help\n",
           VAE_PICTURES_SCALE_DEFAULT, VAE_PICTURES_MANIFOLD_SIDE_MAX, VAE_PICTURES_MANIFOLD_SIDE,
           VAE_PICTURES_SCATTER_MAX, VAE_PLOT_N_COLORS, VAE_PICTURES_CLOUD_IMAGES, VAE_PICTURES_CLOUD_SAMPLES_MAX,
           VAE_PICTURES_CLOUD_SAMPLES, vae_cli_help_device);
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

/* plot's own flags; o's picture options are zero (the defaults) where no flag set them. */
typedef struct {
    const char *model, *out;
    vae_pictures_options o;
} plot_args;

static int plot_option(void *ctx, int c, const char *arg)
{
    plot_args *a = ctx;
    float range;
    int bad = 0;
    if (c == OPT_MODEL)
        a->model = arg;
    else if (c == OPT_OUT)
        a->out = arg;
    else if (c == OPT_SCALE)
        bad = vae_cli_parse_int("--scale", arg, 1, 64, &a->o.scale);
    else if (c == OPT_MANIFOLD_RANGE) {
        bad = vae_cli_parse_float("--manifold-range", arg, 1e-6, 1000, &range);
        a->o.manifold_range = range;
    } else if (c == OPT_MANIFOLD_SIZE)
        bad = vae_cli_parse_int("--manifold-size", arg, 2, VAE_PICTURES_MANIFOLD_SIDE_MAX, &a->o.manifold_side);
    else if (c == OPT_SCATTER) {
        if (strcmp(arg, "means") && strcmp(arg, "samples"))
            return vae_cli_usage_error("plot", "--scatter: '%s' is neither means nor samples", arg);
        a->o.scatter_samples = strcmp(arg, "samples") == 0;
    } else if (c == OPT_SCATTER_IMAGES)
        bad = vae_cli_parse_int("--scatter-images", arg, 1, 100000000, &a->o.scatter_images);
    else if (c == OPT_CLOUD_IMAGES)
        bad = vae_cli_parse_int("--cloud-images", arg, 1, VAE_PLOT_N_COLORS, &a->o.cloud_images);
    else if (c == OPT_CLOUD_SAMPLES)
        bad = vae_cli_parse_int("--cloud-samples", arg, 1, VAE_PICTURES_CLOUD_SAMPLES_MAX, &a->o.cloud_samples);
    return bad ? vae_cli_usage_error("plot", "%s", vae_last_error()) : 0;
}

/* The picture flags given that model m (at path) cannot honour: one usage error naming the flag and
 * why; 0 when all apply. An image model only (the toy's panels take none of them). */
static int check_picture_flags(const vae_model *m, const char *path, const vae_pictures_options *o)
{
    const int manifold_flag = o->manifold_range > 0 || o->manifold_side > 0;
    const char *flag = o->manifold_range > 0 ? "--manifold-range" : "--manifold-size";
    if (vae_pictures_need_image(&m->cfg, NULL) &&
        (manifold_flag || o->scatter_samples || o->scatter_images || o->cloud_images || o->cloud_samples))
        return vae_cli_usage_error("plot", "%s is not an image model: the picture flags (--manifold-*, --scatter*, "
                                   "--cloud-*) do not apply to its panels", path);
    if (manifold_flag && (m->cfg.latent_dim != 2 || vae_model_reads_label(m)))
        return vae_cli_usage_error("plot", "%s: %s has a %d-D latent%s; the manifold is drawn for a 2-D latent of a "
                                   "model that reads no label", flag, path, m->cfg.latent_dim,
                                   vae_model_reads_label(m) ? " and reads the label" : "");
    if (manifold_flag && !vae_picture_applies(m, VAE_PICTURE_MANIFOLD, o))
        return vae_cli_usage_error("plot", "--manifold-size: %s has no prior, so no quantile grid; give "
                                   "--manifold-range R to decode a linear grid of its code plane", path);
    if (vae_model_has_prior(m))
        return 0;
    if (o->scatter_samples)
        return vae_cli_usage_error("plot", "--scatter samples: %s is an autoencoder: its code is deterministic, "
                                   "with no posterior to draw from (--scatter means draws its codes)", path);
    if (o->cloud_images || o->cloud_samples)
        return vae_cli_usage_error("plot", "%s: %s is an autoencoder: its code is deterministic, with no posterior "
                                   "cloud to draw", o->cloud_images ? "--cloud-images" : "--cloud-samples", path);
    return 0;
}

int vae_cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"scale", required_argument, 0, OPT_SCALE}, {"data", required_argument, 0, VAE_OPT_DATA},
        {"seed", required_argument, 0, VAE_OPT_SEED}, VAE_CLI_DEVICE_OPTION,
        {"manifold-range", required_argument, 0, OPT_MANIFOLD_RANGE},
        {"manifold-size", required_argument, 0, OPT_MANIFOLD_SIZE},
        {"scatter", required_argument, 0, OPT_SCATTER},
        {"scatter-images", required_argument, 0, OPT_SCATTER_IMAGES},
        {"cloud-images", required_argument, 0, OPT_CLOUD_IMAGES},
        {"cloud-samples", required_argument, 0, OPT_CLOUD_SAMPLES},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    plot_args a = {.o = {.scale = VAE_PICTURES_SCALE_DEFAULT}};
    int c = vae_cli_parse("plot", argc, argv, opts, help, &s, plot_option, &a);
    if (c >= 0)
        return c;
    char model_buf[4200];
    const char *model = a.model ? vae_cli_model_file(a.model, model_buf, sizeof model_buf) : NULL, *out = a.out;
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
    if (check_picture_flags(&m, model, &a.o)) {
        rc = VAE_EXIT_USAGE;
        goto free_model;
    }
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
    vae_pictures_options o = a.o;
    o.seed = s.seed;
    o.metrics_csv = metrics;
    o.log = stderr;
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
