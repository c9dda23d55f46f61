/*
 * cmd_encode.c: `cuvae encode`: run every image of a data split through a saved
 * model's encoder, in batches on the chosen backend, and write each image's
 * posterior mean and log-variance with its label to a safetensors file that
 * PyTorch (safetensors.torch.load_file) and NumPy (safetensors.numpy, or the
 * 8-byte header length, the JSON header and np.frombuffer) read:
 *   mu (N, Z) F32, logvar (N, Z) F32, labels (N) F32 holding the class 0..9
 * (the writer stores F32 only; small integers are exact in F32). A model without posterior
 * noise (vae_model_has_prior: the ae) has no logvar: its file holds mu, the code z, and labels.
 *
 * Not here: sampling z (the file holds the posterior's parameters), plots of
 * the latent space.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "cli.h"
#include "data_source.h"
#include "pictures.h"
#include "safetensors.h"
#include "vae_util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum { OPT_MODEL = VAE_OPT_FIRST_PRIVATE, OPT_OUT, OPT_SPLIT, OPT_FORCE };

static void help(void)
{
    printf("usage: cuvae encode --model PATH --out FILE [options]\n\n"
           "Encode every image of a data split and write its posterior mean and log-variance,\n"
           "with its label, to a safetensors file: mu (N, Z) F32, logvar (N, Z) F32 and\n"
           "labels (N) F32 (the class 0..9 as a float). Read it in Python with\n"
           "safetensors.torch.load_file(FILE) or safetensors.numpy.load_file(FILE).\n\n"
           "  --model PATH        model.safetensors written by cuvae train\n"
           "  --out FILE          output file (.safetensors); an input of the command is refused, and\n"
           "                      so is one that holds a model\n"
           "  --force             replace an --out that holds a model\n"
           "  --data DIR          data set directory (default: the data set recorded in the model,\n"
           "                      checked by SHA-256; data/mnist if none)\n"
           "  --split SPLIT       test (default) or train\n"
           "  --batch-size B      images per forward pass (default 128)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

/* encode's own flags. */
typedef struct {
    const char *model, *out;
    vae_split split;
    int force;
} encode_args;

static int encode_option(void *ctx, int c, const char *arg)
{
    encode_args *a = ctx;
    if (c == OPT_MODEL)
        a->model = arg;
    else if (c == OPT_OUT)
        a->out = arg;
    else if (c == OPT_FORCE)
        a->force = 1;
    else if (c == OPT_SPLIT && strcmp(arg, "test") == 0)
        a->split = VAE_SPLIT_TEST;
    else if (c == OPT_SPLIT && strcmp(arg, "train") == 0)
        a->split = VAE_SPLIT_TRAIN;
    else if (c == OPT_SPLIT)
        return vae_cli_usage_error("encode", "--split '%s': expected test or train", arg);
    return 0;
}

int vae_cmd_encode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"out", required_argument, 0, OPT_OUT},
        {"data", required_argument, 0, VAE_OPT_DATA},
        {"split", required_argument, 0, OPT_SPLIT},
        {"force", no_argument, 0, OPT_FORCE},
        {"batch-size", required_argument, 0, VAE_OPT_BATCH},
        VAE_CLI_DEVICE_OPTION,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    vae_run_settings s;
    vae_run_settings_default(&s);
    encode_args a = {.split = VAE_SPLIT_TEST};
    int c = vae_cli_parse("encode", argc, argv, opts, help, &s, encode_option, &a);
    if (c >= 0)
        return c;
    char model_buf[4200];
    const char *model = a.model ? vae_cli_model_file(a.model, model_buf, sizeof model_buf) : NULL, *out = a.out;
    const vae_split split = a.split;
    const int force = a.force;
    if (!model)
        return vae_cli_usage_error("encode", "--model PATH is required");
    if (!out)
        return vae_cli_usage_error("encode", "--out FILE is required");

    char recorded[4096];
    if (vae_cli_model_data(model, split, &s, recorded, sizeof recorded))
        return vae_cli_fail();
    char data_paths[2][4096];
    const char *inputs[3] = {model};
    int n_inputs = 1;
    vae_cli_data_inputs(s.data_dir, split, data_paths, inputs, &n_inputs);
    if ((c = vae_cli_check_output("encode", out, inputs, n_inputs, force)))
        return c;
    vae_dataset d;
    if (vae_data_source_of(s.data_dir)->load_split(s.data_dir, model, split, &d))
        return vae_cli_fail();
    vae_backend *be = vae_cli_backend(&s, stderr);
    if (!be) {
        vae_dataset_free(&d);
        return vae_cli_fail();
    }
    vae_model m;
    int rc = 0;
    if (vae_checkpoint_load(model, be, s.batch_size, &m)) {
        rc = vae_cli_fail();
        goto free_backend;
    }
    if (vae_cli_check_data_shape(&m, model, &d, s.data_dir)) {
        rc = vae_cli_fail();
        goto free_model;
    }
    if (vae_cli_check_labels(&m, model, &d, s.data_dir, split)) {
        rc = vae_cli_fail();
        goto free_model;
    }
    const int Z = m.cfg.latent_dim;
    float *mu = vae_calloc((size_t)d.n * Z, sizeof(float));
    float *logvar = vae_calloc((size_t)d.n * Z, sizeof(float));
    float *labels = vae_calloc((size_t)d.n, sizeof(float));
    int *every = vae_calloc((size_t)d.n, sizeof *every);
    for (int i = 0; i < d.n; i++) {
        every[i] = i;
        labels[i] = (float)d.labels[i];
    }
    vae_pictures_encode(&m, &d, every, d.n, mu, logvar, NULL);
    vae_free(every);
    const int prior = vae_model_has_prior(&m);
    const vae_st_tensor_in t[] = {
        {"mu", 2, {d.n, Z}, mu},
        {"labels", 1, {d.n}, labels},
        {"logvar", 2, {d.n, Z}, logvar}, /* last: left out without posterior noise */
    };
    const char *split_name = vae_split_name(split);
    const vae_st_meta meta[] = {
        {"encode.model", model},
        {"encode.data", s.data_dir},
        {"encode.split", split_name},
        {"encode.labels", "F32 holding the integer class of each image"},
    };
    if (vae_safetensors_write(out, t, prior ? 3 : 2, meta, 4))
        rc = vae_cli_fail();
    else
        fprintf(stderr, "wrote %s (%d x %d) and labels of the %d %s %ss to %s\n",
                prior ? "mu and logvar" : "mu (the codes z; the model has no logvar)", d.n, Z, d.n, split_name,
                vae_data_source_of(s.data_dir)->row, out);
    vae_free(mu);
    vae_free(logvar);
    vae_free(labels);
free_model:
    vae_model_free(&m);
free_backend:
    vae_backend_free(be);
    vae_dataset_free(&d);
    return rc;
}
