/*
 * cmd_model.c: the commands that use a saved model: `sample`, `reconstruct`,
 * `eval`, and `info` (which also describes a model from flags alone).
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "cli.h"
#include "pictures.h"
#include "run_dir.h"
#include "sha256.h"
#include "train.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum { OPT_MODEL = VAE_OPT_FIRST_PRIVATE, OPT_OUT, OPT_N };

/* What the saved-model commands take. */
typedef struct {
    const char *model, *out;
    int n;
    int data_given; /* --data was on the command line */
    vae_run_settings s;
    char recorded_data[4096]; /* the model's recorded data set, when used */
} model_args;

/* Parse argv for `cmd`; returns -1 to go on, or the exit code. */
static int parse_model_args(const char *cmd, int argc, char **argv, const struct option *opts, model_args *a,
                            void (*help)(void))
{
    int c;
    optind = 0;
    while ((c = vae_cli_next_option(cmd, argc, argv, opts)) != -1) {
        if (c == -2)
            return 2;
        if (c == 'h') {
            help();
            return 0;
        }
        int r = vae_cli_apply_shared(&a->s, c, optarg);
        if (r < 0)
            return vae_cli_usage_error(cmd, "%s", vae_last_error());
        if (c == VAE_OPT_DATA)
            a->data_given = 1;
        if (r > 0)
            continue;
        if (c == OPT_MODEL)
            a->model = optarg;
        else if (c == OPT_OUT)
            a->out = optarg;
        else if (c == OPT_N && vae_cli_parse_int("--n", optarg, 1, 4096, &a->n))
            return vae_cli_usage_error(cmd, "%s", vae_last_error());
    }
    if (!a->model && strcmp(cmd, "info") != 0)
        return vae_cli_usage_error(cmd, "--model PATH is required");
    return -1;
}

/* The backend and the model of a->model on it; returns 0, or the exit code. */
static int open_model(const model_args *a, int batch_cap, vae_backend **be, vae_model *m)
{
    *be = vae_cli_backend(a->s.device, stderr);
    if (!*be)
        return vae_cli_fail();
    if (vae_checkpoint_load(a->model, *be, batch_cap, m)) {
        vae_backend_free(*be);
        return vae_cli_fail();
    }
    return 0;
}

/* The data set of eval and reconstruct: --data when given, else the one recorded in the model
 * (train.data, its test files checked against their recorded SHA-256), else data/mnist for a
 * model that records none. Says which on stderr. 0, or -1 with vae_set_error. */
static int choose_data(model_args *a)
{
    if (a->data_given) {
        fprintf(stderr, "data: %s (--data)\n", a->s.data_dir);
        return 0;
    }
    vae_safetensors st;
    if (vae_safetensors_read(a->model, &st))
        return -1;
    const char *rec = vae_safetensors_meta_get(&st, "train.data");
    int rc = 0;
    if (!rec || rec[0] != '/') {
        fprintf(stderr, "data: %s (default; %s records no absolute data path)\n", a->s.data_dir, a->model);
        goto out;
    }
    rc = -1;
    if (vae_run_unescape(rec, a->recorded_data, sizeof a->recorded_data))
        goto out;
    char paths[2][4096];
    if (vae_dataset_file_paths(a->recorded_data, VAE_SPLIT_TEST, paths)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", vae_last_error());
        vae_set_error("%s was trained on %s, which cannot be used here (%s); pass --data DIR", a->model, rec, why);
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        const char *slash = strrchr(paths[i], '/');
        char key[4200], hex[65];
        snprintf(key, sizeof key, "train.data.sha256.%.200s", slash ? slash + 1 : paths[i]);
        const char *want = vae_safetensors_meta_get(&st, key);
        if (vae_sha256_file(paths[i], hex))
            goto out;
        if (!want || strcmp(want, hex) != 0) {
            vae_set_error("%s: SHA-256 %s differs from the %s that %s recorded: the data changed since "
                          "training; pass --data DIR to use it anyway",
                          paths[i], hex, want ? want : "none", a->model);
            goto out;
        }
    }
    a->s.data_dir = a->recorded_data;
    fprintf(stderr, "data: %s (recorded in the model; SHA-256 checked)\n", rec);
    rc = 0;
out:
    vae_safetensors_free(&st);
    return rc;
}

static void help_sample(void)
{
    printf("usage: cuvae sample --model PATH [options]\n\n"
           "Decode z ~ N(0, I) through a saved model and write the means as a PNG grid.\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --out PNG           output image (default samples.png)\n"
           "  --n N               number of samples (default 64)\n"
           "  --seed S            seed of the latent draws (default 1)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

int vae_cmd_sample(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"n", required_argument, 0, OPT_N},         {"seed", required_argument, 0, VAE_OPT_SEED},
        VAE_CLI_DEVICE_OPTION,                      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    model_args a = {.out = "samples.png", .n = 64};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("sample", argc, argv, opts, &a, help_sample);
    if (rc >= 0)
        return rc;
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.n < 256 ? a.n : 256, &be, &m)))
        return rc;
    rc = vae_render_samples(&m, a.out, a.n, a.s.seed, VAE_PICTURES_SCALE_DEFAULT) ? vae_cli_fail() : 0;
    if (!rc)
        fprintf(stderr, "wrote %d samples to %s\n", a.n, a.out);
    vae_model_free(&m);
    vae_backend_free(be);
    return rc;
}

static void help_reconstruct(void)
{
    printf("usage: cuvae reconstruct --model PATH [options]\n\n"
           "Encode test images, decode z = mu, and write rows of originals each followed by\n"
           "a row of their reconstructions as a PNG grid.\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, checked by SHA-256; data/mnist if none)\n"
           "  --out PNG           output image (default reconstructions.png)\n"
           "  --n N               number of test images (default 32)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

int vae_cmd_reconstruct(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"n", required_argument, 0, OPT_N},         {"data", required_argument, 0, VAE_OPT_DATA},
        VAE_CLI_DEVICE_OPTION,                      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    model_args a = {.out = "reconstructions.png", .n = 32};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("reconstruct", argc, argv, opts, &a, help_reconstruct);
    if (rc >= 0)
        return rc;
    if (choose_data(&a))
        return vae_cli_fail();
    vae_dataset test;
    if (vae_dataset_load(a.s.data_dir, VAE_SPLIT_TEST, &test))
        return vae_cli_fail();
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.n < 256 ? a.n : 256, &be, &m))) {
        vae_dataset_free(&test);
        return rc;
    }
    rc = vae_render_reconstructions(&m, &test, a.out, a.n, VAE_PICTURES_SCALE_DEFAULT) ? vae_cli_fail() : 0;
    if (!rc)
        fprintf(stderr, "wrote %d test images and their reconstructions to %s\n", a.n < test.n ? a.n : test.n,
                a.out);
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&test);
    return rc;
}

static void help_eval(void)
{
    printf("usage: cuvae eval --model PATH [options]\n\n"
           "Test loss of a saved model: reconstruction (Bernoulli NLL) + beta * KL per image in nats,\n"
           "with one posterior sample per image drawn from a generator seeded with --seed.\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, checked by SHA-256; data/mnist if none)\n"
           "  --batch-size B      images per forward pass (default 128)\n"
           "  --seed S            seed of the posterior samples (default 1)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

int vae_cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL},          {"data", required_argument, 0, VAE_OPT_DATA},
        {"batch-size", required_argument, 0, VAE_OPT_BATCH}, {"seed", required_argument, 0, VAE_OPT_SEED},
        VAE_CLI_DEVICE_OPTION,                               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    model_args a = {0};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("eval", argc, argv, opts, &a, help_eval);
    if (rc >= 0)
        return rc;
    if (choose_data(&a))
        return vae_cli_fail();
    vae_dataset test;
    if (vae_dataset_load(a.s.data_dir, VAE_SPLIT_TEST, &test))
        return vae_cli_fail();
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.s.batch_size, &be, &m))) {
        vae_dataset_free(&test);
        return rc;
    }
    if (test.dim != m.cfg.input_dim) {
        vae_set_error("%s: images have %d pixels, the model expects %d", a.s.data_dir, test.dim, m.cfg.input_dim);
        rc = vae_cli_fail();
    } else {
        vae_device_data d;
        vae_device_data_init(&d, be, &test);
        vae_losses l = vae_evaluate(&m, &d, a.s.seed);
        vae_device_data_free(&d, be);
        printf("test loss %.4f nats/image (recon %.4f, kl %.4f, beta %g) over %d images\n", l.loss, l.recon, l.kl,
               (double)m.cfg.beta, test.n);
    }
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&test);
    return rc;
}

static void help_info(void)
{
    printf("usage: cuvae info [--model PATH | model options]\n\n"
           "Print the layers, their shapes and parameter counts of a saved model, or of the\n"
           "model the flags describe.\n\n"
           "  --model PATH        model.safetensors written by cuvae train (also prints its metadata)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_model);
}

int vae_cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, VAE_CLI_MODEL_OPTIONS, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    model_args a = {0};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("info", argc, argv, opts, &a, help_info);
    if (rc >= 0)
        return rc;
    vae_model m;
    if (!a.model) { /* the layout alone: counting parameters allocates nothing */
        if (vae_model_layout(&m, &a.s.cfg))
            return vae_cli_usage_error("info", "%s", vae_last_error());
        vae_model_print_summary(&m, stdout);
        return 0;
    }
    vae_backend *be = vae_backend_cpu_init();
    vae_safetensors st;
    if (vae_checkpoint_load(a.model, be, 1, &m)) {
        vae_backend_free(be);
        return vae_cli_fail();
    }
    if (vae_safetensors_read(a.model, &st)) { /* the file changed since the line above */
        vae_model_free(&m);
        vae_backend_free(be);
        return vae_cli_fail();
    }
    printf("%s\n", a.model);
    for (int i = 0; i < st.n_meta; i++)
        printf("  %-24s %s\n", st.meta[i].key, st.meta[i].value);
    vae_safetensors_free(&st);
    vae_model_print_summary(&m, stdout);
    vae_model_free(&m);
    vae_backend_free(be);
    return 0;
}
