/*
 * cmd_model.c: the commands that use a saved model: `sample`, `reconstruct`,
 * `eval`, and `info` (which also describes a model from flags alone).
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "cli.h"
#include "cluster.h"
#include "data_source.h"
#include "evaluate.h"
#include "pictures.h"
#include "progress.h"
#include "render.h"
#include "train_settings.h"
#include "train.h"
#include "vae_util.h"
#include "variant.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { OPT_MODEL = VAE_OPT_FIRST_PRIVATE, OPT_OUT, OPT_N, OPT_INDICES, OPT_IW_SAMPLES, OPT_JSON, OPT_BINARIZE, OPT_LABEL, OPT_FORCE, OPT_SCALE,
       OPT_CATEGORY, OPT_CATEGORIES, OPT_SPLIT, OPT_DIGIT, OPT_POSTERIOR_SAMPLES, OPT_ALL, OPT_BINARIZE_EPOCH,
       OPT_BERNOULLI };

/* What the saved-model commands take. */
typedef struct {
    const char *cmd; /* "sample", ... */
    const char *model, *out;
    int n;
    int n_given;         /* --n was on the command line */
    const char *indices; /* reconstruct --indices */
    int iw_samples; /* eval --iw-samples (0: none) */
    int json;       /* eval --json */
    vae_binarize binarize; /* eval --binarize */
    int binarize_epoch;    /* eval --binarize-epoch: train --binarize-test redraw's draw of this epoch (0: none) */
    int label;             /* sample --label (-1: none) */
    int category;          /* sample --category (-1: none) */
    int categories;        /* sample --categories: the category grid */
    vae_render_pixels pixels; /* sample --bernoulli: pixels drawn from the decoder's Bernoulli, not its means */
    vae_split split;       /* eval, reconstruct --split (default test) */
    int digit;             /* reconstruct --digit (-1: none) */
    int posterior_samples; /* reconstruct --posterior-samples (0: the reconstruction from z = mu) */
    int force;             /* --force: an --out holding a model may be replaced */
    int scale;             /* sample, reconstruct --scale: each pixel as a scale x scale block */
    int all;               /* info --all: every recorded key, those that do not apply too */
    vae_run_settings s;
    char recorded_data[4096]; /* the model's recorded data set, when used */
    char model_buf[4200];     /* DIR/model.safetensors for --model DIR */
} model_args;

/* One flag of a saved-model command (shared ones are applied by vae_cli_parse). */
static int model_option(void *ctx, int c, const char *arg)
{
    model_args *a = ctx;
    if (c == OPT_MODEL)
        a->model = arg;
    else if (c == OPT_OUT)
        a->out = arg;
    else if (c == OPT_N) {
        a->n_given = 1;
        if (vae_cli_parse_int("--n", arg, 1, 4096, &a->n))
            return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    } else if (c == OPT_INDICES)
        a->indices = arg;
    else if (c == OPT_IW_SAMPLES && vae_cli_parse_int("--iw-samples", arg, 1, 1000000, &a->iw_samples))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_JSON)
        a->json = 1;
    else if (c == OPT_BINARIZE && vae_binarize_parse(arg, &a->binarize))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_BINARIZE_EPOCH && vae_cli_parse_int("--binarize-epoch", arg, 1, 1000000000, &a->binarize_epoch))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_FORCE)
        a->force = 1;
    else if (c == OPT_ALL)
        a->all = 1;
    else if (c == OPT_BERNOULLI)
        a->pixels = VAE_RENDER_BERNOULLI;
    else if (c == OPT_LABEL && vae_cli_parse_int("--label", arg, 0, 255, &a->label))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_SCALE && vae_cli_parse_int("--scale", arg, 1, 64, &a->scale))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_CATEGORY && vae_cli_parse_int("--category", arg, 0, 1023, &a->category))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_CATEGORIES)
        a->categories = 1;
    else if (c == OPT_SPLIT && strcmp(arg, "test") == 0)
        a->split = VAE_SPLIT_TEST;
    else if (c == OPT_SPLIT && strcmp(arg, "train") == 0)
        a->split = VAE_SPLIT_TRAIN;
    else if (c == OPT_SPLIT)
        return vae_cli_usage_error(a->cmd, "--split '%s': expected test or train", arg);
    else if (c == OPT_DIGIT && vae_cli_parse_int("--digit", arg, 0, 255, &a->digit))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    else if (c == OPT_POSTERIOR_SAMPLES && vae_cli_parse_int("--posterior-samples", arg, 1, 64, &a->posterior_samples))
        return vae_cli_usage_error(a->cmd, "%s", vae_last_error());
    return 0;
}

/* Parse argv for `cmd`; returns -1 to go on, or the exit code. */
static int parse_model_args(const char *cmd, int argc, char **argv, const struct option *opts, model_args *a,
                            void (*help)(void))
{
    a->cmd = cmd;
    a->scale = VAE_PICTURES_SCALE_DEFAULT;
    a->split = VAE_SPLIT_TEST; /* eval --split may choose the training split */
    int rc = vae_cli_parse(cmd, argc, argv, opts, help, &a->s, model_option, a);
    if (rc >= 0)
        return rc;
    if (!a->model && strcmp(cmd, "info") != 0)
        return vae_cli_usage_error(cmd, "--model PATH is required");
    if (a->model)
        a->model = vae_cli_model_file(a->model, a->model_buf, sizeof a->model_buf);
    return -1;
}

/* The backend and the model of a->model on it; with need_image, a model whose input is not an
 * image is refused (vae_pictures_need_image). Returns 0, or the exit code. */
static int open_model(const model_args *a, int batch_cap, int need_image, vae_backend **be, vae_model *m)
{
    *be = vae_cli_backend(&a->s, stderr);
    if (!*be)
        return vae_cli_fail();
    if (vae_checkpoint_load(a->model, *be, batch_cap, m)) {
        vae_backend_free(*be);
        return vae_cli_fail();
    }
    if (need_image && vae_pictures_need_image(&m->cfg, a->model)) {
        vae_model_free(m);
        vae_backend_free(*be);
        return vae_cli_fail();
    }
    return 0;
}

/* The data set of eval and reconstruct (vae_cli_model_data): --data, else the model's own. */
static int choose_data(model_args *a)
{
    return vae_cli_model_data(a->model, a->split, &a->s, a->recorded_data, sizeof a->recorded_data);
}

static void help_sample(void)
{
    printf("usage: cuvae sample --model PATH [options]\n\n"
           "Decode z ~ N(0, I) through a saved model and write the means (or, with --bernoulli,\n"
           "pixels drawn from them) as a PNG grid. A conditional model (cvae) draws the digit\n"
           "--label asks for or, without it, one row per class, z fixed down each column. A joint\n"
           "model draws one category with --category, or its category grid with --categories.\n\n"
           "  --model PATH        model.safetensors written by cuvae train, or its run directory\n"
           "  --out PNG           output image (default samples.png); one that holds a model is refused\n"
           "  --force             replace an --out that holds a model\n"
           "  --n N               number of samples (default 64)\n"
           "  --label K           the class to draw, 0 .. classes - 1 (a cvae only)\n"
           "  --category K        joint: draw N samples of category K of the categorical latent\n"
           "  --categories        joint: the category grid instead: one row per category, each\n"
           "                      column one z decoded with every category\n"
           "  --bernoulli         each pixel a draw x ~ Bernoulli(mean), 0 or 1, instead of the mean\n"
           "                      (a Bernoulli decoder only; seeded with --seed)\n"
           "  --seed S            seed of the latent draws (default 1)\n"
           "  --scale S           each pixel as an S x S block, 1 to 64 (default 3)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

int vae_cmd_sample(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"n", required_argument, 0, OPT_N},         {"seed", required_argument, 0, VAE_OPT_SEED},
        {"label", required_argument, 0, OPT_LABEL}, {"force", no_argument, 0, OPT_FORCE}, VAE_CLI_DEVICE_OPTION,
        {"scale", required_argument, 0, OPT_SCALE},
        {"category", required_argument, 0, OPT_CATEGORY}, {"categories", no_argument, 0, OPT_CATEGORIES},
        {"bernoulli", no_argument, 0, OPT_BERNOULLI},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    model_args a = {.out = "samples.png", .n = 64, .label = -1, .category = -1};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("sample", argc, argv, opts, &a, help_sample);
    if (rc >= 0)
        return rc;
    if (a.category >= 0 && a.categories)
        return vae_cli_usage_error("sample", "--category K and --categories both choose what is drawn: give one");
    const char *inputs[1] = {a.model};
    if ((rc = vae_cli_check_output("sample", a.out, inputs, 1, a.force)))
        return rc;
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.n < 256 ? a.n : 256, 1, &be, &m)))
        return rc;
    const int cat = vae_model_categorical(&m), cols = (int)ceil(sqrt((double)a.n));
    if ((a.category >= 0 || a.categories) && cat < 0) {
        vae_set_error("%s: the model has no categorical latent (--model joint): %s applies only to one", a.model,
                      a.categories ? "--categories" : "--category");
        rc = vae_cli_fail();
    } else if (a.category >= 0 && a.category >= m.latent[cat].dim) {
        vae_set_error("--category %d is out of range: the model has %d categories (0..%d)", a.category,
                      m.latent[cat].dim, m.latent[cat].dim - 1);
        rc = vae_cli_fail();
    } else if (a.categories) {
        rc = vae_render_categories(&m, a.out, cols, a.s.seed, a.scale, a.pixels) ? vae_cli_fail() : 0;
        if (!rc)
            fprintf(stderr, "wrote %d samples of each of the %d categories (one row per category, z fixed down each "
                            "column) to %s\n",
                    cols, m.latent[cat].dim, a.out);
    } else if (a.category >= 0) {
        rc = vae_render_category_samples(&m, a.out, a.n, a.category, a.s.seed, a.scale, a.pixels) ? vae_cli_fail()
                                                                                                    : 0;
        if (!rc)
            fprintf(stderr, "wrote %d samples of category %d to %s\n", a.n, a.category, a.out);
    } else {
        rc = vae_render_samples(&m, a.out, a.n, a.label, a.s.seed, a.scale, NULL, a.pixels) ? vae_cli_fail() : 0;
        if (!rc && m.y && a.label < 0)
            fprintf(stderr, "wrote %d samples of each of the %d classes (one row per class) to %s\n", cols,
                    m.cfg.classes, a.out);
        else if (!rc && m.y)
            fprintf(stderr, "wrote %d samples of class %d to %s\n", a.n, a.label, a.out);
        else if (!rc)
            fprintf(stderr, "wrote %d samples to %s\n", a.n, a.out);
    }
    vae_model_free(&m);
    vae_backend_free(be);
    return rc;
}

static void help_reconstruct(void)
{
    printf("usage: cuvae reconstruct --model PATH [options]\n\n"
           "Encode test images, decode z = mu, and write rows of originals each followed by\n"
           "a row of their reconstructions as a PNG grid.\n\n"
           "  --model PATH        model.safetensors written by cuvae train, or its run directory\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, checked by SHA-256; data/mnist if none)\n"
           "  --out PNG           output image (default reconstructions.png); one that holds a model is\n"
           "                      refused\n"
           "  --force             replace an --out that holds a model\n"
           "  --n N               number of test images, the first N (default 32)\n"
           "  --indices LIST      these test images instead, in this order: indices from 0 and\n"
           "                      ranges, e.g. 0,5,17 or 0-7,100-107\n"
           "  --digit K           the first N images of label K instead\n"
           "  --split SPLIT       test (default) or train: the split the images come from\n"
           "  --posterior-samples S  each image (left) and S decodes of z ~ q(z|x), one row per\n"
           "                      image, instead of the reconstruction from z = mu (1 to 64)\n"
           "  --seed S            seed of the posterior samples (default 1)\n"
           "  --scale S           each pixel as an S x S block, 1 to 64 (default 3)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

/* The test images of --indices LIST, in its order, as a data set of their own (*sub). 0, or the
 * exit code of a usage error. */
static int pick_indices(const char *list, const vae_dataset *test, vae_dataset *sub)
{
    int *idx, n;
    if (vae_cli_parse_indices("--indices", list, test->n, &idx, &n))
        return vae_cli_usage_error("reconstruct", "%s", vae_last_error());
    vae_dataset_subset(test, idx, n, sub);
    vae_free(idx);
    return 0;
}

int vae_cmd_reconstruct(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"n", required_argument, 0, OPT_N},         {"data", required_argument, 0, VAE_OPT_DATA},
        {"indices", required_argument, 0, OPT_INDICES}, {"force", no_argument, 0, OPT_FORCE}, VAE_CLI_DEVICE_OPTION,
        {"scale", required_argument, 0, OPT_SCALE},
        {"digit", required_argument, 0, OPT_DIGIT}, {"split", required_argument, 0, OPT_SPLIT},
        {"posterior-samples", required_argument, 0, OPT_POSTERIOR_SAMPLES}, {"seed", required_argument, 0, VAE_OPT_SEED},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    model_args a = {.out = "reconstructions.png", .n = 32, .digit = -1};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("reconstruct", argc, argv, opts, &a, help_reconstruct);
    if (rc >= 0)
        return rc;
    if (a.indices && a.n_given)
        return vae_cli_usage_error("reconstruct", "--n and --indices both choose the images: give one");
    if (a.indices && a.digit >= 0)
        return vae_cli_usage_error("reconstruct", "--digit and --indices both choose the images: give one");
    /* the model first, so that one without pictures is refused before any data is looked for; with
     * --indices (or posterior samples) the batches hold up to 256 rows, as with --n */
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.indices || a.posterior_samples || a.n > 256 ? 256 : a.n, 1, &be, &m)))
        return rc;
    if (a.posterior_samples && !vae_model_has_prior(&m)) {
        vae_set_error("--posterior-samples: %s has no posterior noise (a --model ae file): its one reconstruction "
                      "decodes its code",
                      a.model);
        rc = vae_cli_fail();
        vae_model_free(&m);
        vae_backend_free(be);
        return rc;
    }
    vae_dataset test = {0};
    if (choose_data(&a)) {
        rc = vae_cli_fail();
        goto out;
    }
    char data_paths[2][4096];
    const char *inputs[3] = {a.model};
    int n_inputs = 1;
    vae_cli_data_inputs(a.s.data_dir, a.split, data_paths, inputs, &n_inputs);
    if ((rc = vae_cli_check_output("reconstruct", a.out, inputs, n_inputs, a.force)))
        goto out;
    if (vae_data_source_of(a.s.data_dir)->load_split(a.s.data_dir, a.model, a.split, &test) ||
        vae_cli_check_data_shape(&m, a.model, &test, a.s.data_dir) ||
        vae_cli_check_labels(&m, a.model, &test, a.s.data_dir, a.split)) {
        rc = vae_cli_fail();
        goto out;
    }
    if (a.digit >= 0) { /* the first N images of that label, in the split's order */
        int32_t *idx = vae_calloc((size_t)a.n, sizeof *idx);
        int found = 0;
        for (int i = 0; test.labels && i < test.n && found < a.n; i++)
            if (test.labels[i] == a.digit)
                idx[found++] = i;
        if (!found) {
            vae_set_error("--digit %d: the %s split of %s has no image of label %d%s", a.digit,
                          vae_split_name(a.split), a.s.data_dir, a.digit, test.labels ? "" : " (it has no labels)");
            vae_free(idx);
            rc = vae_cli_fail();
            goto out;
        }
        vae_dataset chosen;
        vae_dataset_subset(&test, idx, found, &chosen);
        vae_free(idx);
        vae_dataset_free(&test);
        test = chosen;
        a.n = test.n;
    }
    if (a.indices) {
        vae_dataset chosen;
        if ((rc = pick_indices(a.indices, &test, &chosen)))
            goto out;
        vae_dataset_free(&test);
        test = chosen;
        a.n = test.n;
    }
    const int shown = a.n < test.n ? a.n : test.n;
    if (a.posterior_samples) {
        rc = vae_render_posterior_samples(&m, &test, a.out, shown, a.posterior_samples, a.s.seed, a.scale)
                 ? vae_cli_fail()
                 : 0;
        if (!rc)
            fprintf(stderr, "wrote %d %s images, each with %d decodes of z ~ q(z|x), to %s\n", shown,
                    vae_split_name(a.split), a.posterior_samples, a.out);
    } else {
        rc = vae_render_reconstructions(&m, &test, a.out, a.n, a.scale) ? vae_cli_fail() : 0;
        if (!rc)
            fprintf(stderr, "wrote %d %s images and their reconstructions to %s\n", shown, vae_split_name(a.split),
                    a.out);
    }
out:
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&test);
    return rc;
}

static void help_eval(void)
{
    printf("usage: cuvae eval --model PATH [options]\n\n"
           "Test-set numbers of a saved model, per image in nats: the negative ELBO split into\n"
           "recon (-log p(x|z), one posterior sample per image) and kl (closed form), each latent\n"
           "dimension's KL and whether it is active (variance over the test set of its posterior\n"
           "mean > 0.01), and with --iw-samples K the importance-weighted estimate of -log p(x)\n"
           "(Burda et al. 2015). A joint model's categorical latent is also scored as a clustering\n"
           "of the labelled split: argmax q(c|x) against the labels, NMI and cluster accuracy.\n"
           "Noise comes from a generator seeded with --seed: the same numbers every time.\n\n"
           "  --model PATH        model.safetensors written by cuvae train, or its run directory\n"
           "  --data DIR          data set directory; its test split is used (default: the data set\n"
           "                      recorded in the model, checked by SHA-256; data/mnist if none)\n"
           "  --split SPLIT       test (default) or train: the split evaluated\n"
           "  --iw-samples K      posterior samples per image for the IW estimate (5000 is the\n"
           "                      literature's convention; default: no IW estimate)\n"
           "  --binarize MODE     none: the Bernoulli likelihood of grey levels x/255 (not a\n"
           "                      normalized likelihood of grey images); static: one fixed draw\n"
           "                      of each test pixel, seeded with --seed, as in binarized MNIST\n"
           "                      (default none)\n"
           "  --binarize-epoch E  with --binarize static: the draw `train --binarize-test redraw`\n"
           "                      made for epoch E with this --seed (epoch 1's is the plain one), so\n"
           "                      that epoch's test loss is reproduced\n"
           "  --json              print one JSON object instead of the text report\n"
           "  --batch-size B      rows per launch, images x samples (default 4096)\n"
           "  --seed S            seed of the posterior samples and the binarization (default 1)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_device);
}

/* What the numbers are: the model's likelihood applied to the test data as binarized. */
static const char *eval_likelihood_note(const vae_model *m, vae_binarize b)
{
    if (m->cfg.likelihood == VAE_LIKELIHOOD_GAUSSIAN)
        return b == VAE_BINARIZE_STATIC
                   ? "Gaussian likelihood (fixed sigma, constants included) of a static binarization of the test images"
                   : "Gaussian likelihood (fixed sigma, constants included) of the values as they are: a density, so "
                     "not comparable with Bernoulli (binarized) figures";
    return b == VAE_BINARIZE_STATIC
               ? "Bernoulli likelihood of a static binarization of the test images (one seeded draw per pixel): "
                 "comparable with binarized-MNIST figures"
               : "Bernoulli likelihood on grey levels in [0,1]: not a normalized likelihood of grey images; use "
                 "--binarize static for numbers comparable with binarized MNIST";
}

/* A joint model's clustering of the evaluated split: argmax q(c|x) against its labels (NAN without
 * labels, or for a model without a categorical latent). */
typedef struct {
    double nmi, acc;
} eval_clustering;

static void eval_print_text(const model_args *a, const vae_model *m, const vae_eval_result *r,
                            const eval_clustering *cl)
{
    printf("model: %s\n", a->model);
    const char *row = vae_data_source_of(a->s.data_dir)->row;
    printf("data: %s %s split, %d %ss, binarization %s", a->s.data_dir, vae_split_name(a->split), r->images, row,
           vae_binarize_name(a->binarize));
    if (a->binarize == VAE_BINARIZE_STATIC && a->binarize_epoch)
        printf(" (seed %llu, training's draw for epoch %d)", (unsigned long long)a->s.seed, a->binarize_epoch);
    else if (a->binarize == VAE_BINARIZE_STATIC)
        printf(" (seed %llu)", (unsigned long long)a->s.seed);
    printf("\nlikelihood: %s\n", eval_likelihood_note(m, a->binarize));
    if (vae_model_reads_label(m))
        printf("conditional model (%d classes): every number is conditional on the test labels y; the test loss "
               "bounds -log p(x|y)\n",
               m->cfg.classes);
    if (!vae_model_has_prior(m))
        printf("test loss %.4f nats/%s (recon alone: -log p(x|z) at the code z; the model has no prior and no KL, "
               "so this bounds no -log p(x)) over %d %ss\n",
               r->loss, row, r->images, row);
    else
        printf("test loss %.4f nats/%s (recon %.4f, kl %.4f, beta %g) over %d %ss\n", r->loss, row, r->recon, r->kl,
               (double)m->cfg.beta, r->images, row);
    if (m->cfg.beta != 1.0f)
        printf("  (the loss is the negative ELBO, recon + kl; the training objective recon + beta * kl is %.4f)\n",
               r->recon + (double)m->cfg.beta * r->kl);
    if (r->iw_samples > 0)
        printf("importance-weighted %s %.4f nats/image (K = %d samples per image; a bound at or below "
               "the negative ELBO, up to sampling noise)\n",
               vae_model_nll_name(m), r->iw_nll, r->iw_samples);
    if (vae_model_categorical(m) >= 0 && isnan(cl->nmi))
        printf("clustering: not scored (the %s split has no labels)\n", vae_split_name(a->split));
    else if (vae_model_categorical(m) >= 0)
        printf("clustering of the %s split by argmax q(c|x) against its labels: NMI %.4f, cluster accuracy %.4f "
               "(the best one-to-one map of categories to labels)\n",
               vae_split_name(a->split), cl->nmi, cl->acc);
    printf("active latent units: %d of %d (variance of the %s over the test set > %g)\n", r->active_units,
           r->latent_dim, vae_model_has_prior(m) ? "posterior mean" : "code", VAE_ACTIVE_UNIT_VAR);
    printf("  %5s %10s %10s  %s\n", "dim", "kl", "var(mu)", "active");
    for (int j = 0; j < r->latent_dim; j++)
        printf("  %5d %10.4f %10.4f  %s\n", j, r->kl_dim[j], r->mu_var[j], r->active[j] ? "yes" : "no");
}

/* Set key to a new JSON value; a failed allocation is fatal. */
static void json_put(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v))
        vae_fatal("building the JSON report failed at key '%s'", key);
}

/* The first number of r that is not finite ("loss", "kl of latent dimension 3", ...) into what, or 0
 * when every one is: such a result is reported as a failure in both modes, never printed. */
static int eval_non_finite(const vae_eval_result *r, char *what, size_t cap, double *v)
{
    const double top[4] = {r->loss, r->recon, r->kl, r->iw_samples > 0 ? r->iw_nll : 0.0};
    static const char *const names[4] = {"test loss", "reconstruction term", "KL term", "importance-weighted -log p(x)"};
    for (int k = 0; k < 4; k++)
        if (!isfinite(top[k])) {
            snprintf(what, cap, "%s", names[k]);
            *v = top[k];
            return 1;
        }
    for (int j = 0; j < r->latent_dim; j++)
        if (!isfinite(r->kl_dim[j]) || !isfinite(r->mu_var[j])) {
            snprintf(what, cap, "%s of latent dimension %d", isfinite(r->kl_dim[j]) ? "var(mu)" : "KL", j);
            *v = isfinite(r->kl_dim[j]) ? r->mu_var[j] : r->kl_dim[j];
            return 1;
        }
    return 0;
}

static int eval_print_json(const model_args *a, const vae_model *m, const vae_eval_result *r,
                           const eval_clustering *cl)
{
    json_t *o = json_object(), *kl = json_array(), *var = json_array(), *act = json_array();
    if (!o || !kl || !var || !act)
        vae_fatal("building the JSON report failed");
    json_put(o, "model", json_string(a->model));
    json_put(o, "data", json_string(a->s.data_dir));
    json_put(o, "split", json_string(vae_split_name(a->split)));
    json_put(o, "images", json_integer(r->images));
    json_put(o, "binarization", json_string(vae_binarize_name(a->binarize)));
    json_put(o, "likelihood", json_string(vae_likelihood_name(m->cfg.likelihood)));
    json_put(o, "likelihood_note", json_string(eval_likelihood_note(m, a->binarize)));
    json_put(o, "seed", json_integer((json_int_t)a->s.seed));
    if (a->binarize_epoch)
        json_put(o, "binarize_epoch", json_integer(a->binarize_epoch));
    json_put(o, "model_kind", json_string(vae_variant_of(&m->cfg)->name));
    if (vae_model_has_prior(m)) /* an autoencoder's loss bounds nothing */
        json_put(o, "bound_of", json_string(vae_model_nll_name(m)));
    json_put(o, "beta", json_real(m->cfg.beta));
    json_put(o, "loss", json_real(r->loss));
    json_put(o, "recon", json_real(r->recon));
    json_put(o, "kl", json_real(r->kl));
    json_put(o, "objective", json_real(r->recon + (double)m->cfg.beta * r->kl));
    if (vae_model_has_prior(m)) /* NaN without one */
        json_put(o, "loss_mc", json_real(r->loss_mc));
    if (r->iw_samples > 0) {
        json_put(o, "iw_nll", json_real(r->iw_nll));
        json_put(o, "iw_samples", json_integer(r->iw_samples));
    }
    if (vae_model_categorical(m) >= 0 && !isnan(cl->nmi)) { /* a joint model on a labelled split */
        json_put(o, "nmi", json_real(cl->nmi));
        json_put(o, "cluster_acc", json_real(cl->acc));
    }
    json_put(o, "latent_dim", json_integer(r->latent_dim));
    json_put(o, "active_units", json_integer(r->active_units));
    json_put(o, "active_threshold", json_real(VAE_ACTIVE_UNIT_VAR));
    for (int j = 0; j < r->latent_dim; j++)
        if (json_array_append_new(kl, json_real(r->kl_dim[j])) ||
            json_array_append_new(var, json_real(r->mu_var[j])) ||
            json_array_append_new(act, json_boolean(r->active[j])))
            vae_fatal("building the JSON report failed");
    json_put(o, "kl_per_dim", kl);
    json_put(o, "mu_var_per_dim", var);
    json_put(o, "active_per_dim", act);
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc)
        return vae_set_error("writing the JSON report to standard output failed");
    printf("\n");
    return 0;
}

int vae_cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"data", required_argument, 0, VAE_OPT_DATA},
        {"batch-size", required_argument, 0, VAE_OPT_BATCH},
        {"seed", required_argument, 0, VAE_OPT_SEED},
        {"iw-samples", required_argument, 0, OPT_IW_SAMPLES},
        {"split", required_argument, 0, OPT_SPLIT},
        {"json", no_argument, 0, OPT_JSON},
        {"binarize", required_argument, 0, OPT_BINARIZE},
        {"binarize-epoch", required_argument, 0, OPT_BINARIZE_EPOCH},
        VAE_CLI_DEVICE_OPTION,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    model_args a = {0};
    vae_run_settings_default(&a.s);
    a.s.batch_size = 4096;
    int rc = parse_model_args("eval", argc, argv, opts, &a, help_eval);
    if (rc >= 0)
        return rc;
    if (a.binarize_epoch && a.binarize != VAE_BINARIZE_STATIC)
        return vae_cli_usage_error("eval", "--binarize-epoch %d: only with --binarize static (the draw it names is a "
                                   "static one)", a.binarize_epoch);
    if (choose_data(&a))
        return vae_cli_fail();
    vae_dataset test;
    if (vae_data_source_of(a.s.data_dir)->load_split(a.s.data_dir, a.model, a.split, &test))
        return vae_cli_fail();
    if (a.binarize == VAE_BINARIZE_STATIC && vae_binarize_check(&test, a.s.data_dir)) {
        vae_dataset_free(&test);
        return vae_cli_usage_error("eval", "%s", vae_last_error());
    }
    if (a.binarize == VAE_BINARIZE_STATIC) /* epoch 1's draw (or none named) is the seed's own */
        vae_binarize_static(&test, vae_binarize_epoch_seed(a.s.seed, a.binarize_epoch ? a.binarize_epoch : 1));
    vae_backend *be;
    vae_model m;
    if ((rc = open_model(&a, a.s.batch_size, 0, &be, &m))) {
        vae_dataset_free(&test);
        return rc;
    }
    if (vae_cli_check_data_shape(&m, a.model, &test, a.s.data_dir)) {
        rc = vae_cli_fail();
    } else if (vae_cli_check_labels(&m, a.model, &test, a.s.data_dir, a.split)) {
        rc = vae_cli_fail();
    } else {
        vae_device_data d;
        vae_device_data_init(&d, be, &test);
        vae_eval_options opt = {
            .iw_samples = a.iw_samples, .seed = a.s.seed, .log = stderr, .progress = vae_progress_auto_mode(stderr)};
        vae_eval_result r;
        char what[64];
        double bad;
        if (vae_eval_report(&m, &d, &opt, &r)) {
            rc = vae_cli_fail();
        } else if (eval_non_finite(&r, what, sizeof what, &bad)) {
            vae_set_error("%s: its %s on the test split of %s is %s, not a number eval can report (the model's "
                          "arithmetic overflows on this data)",
                          a.model, what, a.s.data_dir, isnan(bad) ? "NaN" : bad > 0 ? "inf" : "-inf");
            rc = vae_cli_fail();
            vae_eval_result_free(&r);
        } else {
            eval_clustering cl = {NAN, NAN};
            if (vae_model_categorical(&m) >= 0)
                vae_cluster_scores(&m, &d, &test, &cl.nmi, &cl.acc);
            if (a.json)
                rc = eval_print_json(&a, &m, &r, &cl) ? vae_cli_fail() : 0;
            else
                eval_print_text(&a, &m, &r, &cl);
            vae_eval_result_free(&r);
        }
        vae_device_data_free(&d, be);
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
           "  --model PATH        model.safetensors written by cuvae train, or its run directory (also\n"
           "                      prints its metadata: the settings that apply to this model)\n"
           "  --all               with --model: every recorded key, also the settings that do not apply\n"
           "                      (--sigma of a Bernoulli model, the toy's of an image model, ...)\n%s"
           "  -h, --help          this help\n",
           vae_cli_help_model);
}

/* s with each control character escaped as safetensors.h's escape writes it (\xNN): C0 controls,
 * DEL, and the C1 controls U+0080 to U+009F (two bytes, 0xC2 0x80-0x9F, each written \xNN); the
 * rest as it is (metadata is valid UTF-8, jansson checked; a stored escape stays as stored).
 * Returns the columns written. */
static int print_controls_escaped(FILE *f, const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            w += fprintf(f, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            w += fprintf(f, "\\x%02x\\x%02x", p[0], p[1]);
            p++;
        } else {
            fputc(*p, f);
            w += (*p & 0xc0) != 0x80; /* one column per character, not per byte */
        }
    }
    return w;
}

int vae_cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"all", no_argument, 0, OPT_ALL}, VAE_CLI_MODEL_OPTIONS,
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    model_args a = {0};
    vae_run_settings_default(&a.s);
    int rc = parse_model_args("info", argc, argv, opts, &a, help_info);
    if (rc >= 0)
        return rc;
    vae_model m;
    if (a.all && !a.model)
        return vae_cli_usage_error("info", "--all lists a saved model's recorded keys: give --model PATH");
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
    /* a control character of a key or value (a terminal escape, a newline that would forge a line)
     * is printed as \xNN, never sent to the terminal */
    int hidden = 0;
    for (int i = 0; i < st.n_meta; i++) {
        if (!a.all && !vae_train_setting_applies(st.meta[i].key, &st)) {
            hidden++;
            continue;
        }
        printf("  ");
        int w = print_controls_escaped(stdout, st.meta[i].key);
        printf("%*s ", w < 24 ? 24 - w : 0, "");
        print_controls_escaped(stdout, st.meta[i].value);
        printf("\n");
    }
    if (hidden)
        printf("  (%d recorded setting%s that do%s not apply to this model not shown: cuvae info --all)\n", hidden,
               hidden == 1 ? "" : "s", hidden == 1 ? "es" : "");
    vae_safetensors_free(&st);
    vae_model_print_summary(&m, stdout);
    vae_model_free(&m);
    vae_backend_free(be);
    return 0;
}
