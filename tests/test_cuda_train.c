/*
 * test_cuda_train.c: the whole model on the GPU against the CPU: the N-step
 * comparison of `cuvae compare` (losses, every gradient, every parameter) on
 * odd shapes, graph replay against eager steps, bit-identical reruns on the
 * GPU, and, when MNIST is fetched, two epochs on both backends reaching the
 * same test loss within 1%. Every case reports as skipped without a GPU.
 */
#define _GNU_SOURCE
#include "compare.h"
#include "dataset.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A visible skip that names the reason ("no CUDA device: no NVIDIA driver is installed ...") without a GPU. */
static void need_gpu(void)
{
    if (vae_cuda_device_count() == 0) {
        vae_backend *none = vae_backend_cuda_init(0);
        cr_assert_null(none, "vae_backend_cuda_init(0) made a backend though vae_cuda_device_count() is 0");
        cr_skip_test("%s", vae_last_error());
    }
}

static int compare_with(vae_compare_options *o, const char *label)
{
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    cr_assert_not_null(gpu, "%s", vae_last_error());
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int fails = vae_compare_run(o, cpu, gpu, f);
    fclose(f);
    if (fails)
        fprintf(stderr, "%s:\n%s", label, buf);
    free(buf);
    vae_backend_free(cpu);
    vae_backend_free(gpu);
    return fails;
}

Test(cuda_train, ten_steps_default_model_odd_batch)
{
    need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o); /* 784-400-20, batch 37, 10 steps */
    cr_assert_eq(compare_with(&o, "default model"), 0);
}

Test(cuda_train, ten_steps_odd_shapes_tanh_two_layers)
{
    need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.input_dim = 13 * 11;
    o.cfg.image_rows = 13;
    o.cfg.image_cols = 11;
    o.cfg.n_hidden = 2;
    o.cfg.hidden[0] = 257;
    o.cfg.hidden[1] = 33;
    o.cfg.latent_dim = 7;
    o.cfg.act = VAE_ACT_TANH;
    o.cfg.beta = 4.0f;
    o.batch_size = 129;
    cr_assert_eq(compare_with(&o, "odd shapes"), 0);
}

Test(cuda_train, batch_of_one)
{
    need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.batch_size = 1;
    o.cfg.latent_dim = 5; /* odd B * Z: the noise buffer is rounded up to even on both sides */
    cr_assert_eq(compare_with(&o, "batch of one"), 0);
}

/* Train `steps` steps on `be` and return the parameters (host copy). */
static float *train_params(vae_backend *be, const vae_dataset *d, int steps, size_t *n)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = d->dim;
    c.image_rows = d->rows;
    c.image_cols = d->cols;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 64), 0);
    vae_model_init_params(&m, 5);
    vae_device_data dd;
    vae_device_data_init(&dd, be, d);
    vae_train_options o = {.epochs = 1, .batch_size = 64,
                           .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 5, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    vae_trainer_steps(t, &dd, 0, steps);
    *n = m.n_params;
    float *p = malloc(m.n_params * 4);
    be->download(be, p, m.params, m.n_params * 4);
    vae_trainer_free(t);
    vae_device_data_free(&dd, be);
    vae_model_free(&m);
    return p;
}

Test(cuda_train, reruns_are_bit_identical)
{
    need_gpu();
    vae_dataset d = {.n = 300, .rows = 28, .cols = 28, .dim = 784};
    d.pixels = vae_calloc(300 * 784, 1);
    d.labels = vae_calloc(300, 1);
    float tmp[784];
    for (int i = 0; i < 300; i++) {
        tu_fill_uniform(tmp, 784, 1000 + (uint64_t)i, 0, 255);
        for (int k = 0; k < 784; k++)
            d.pixels[i * 784 + k] = (uint8_t)tmp[k];
    }
    vae_backend *gpu = vae_backend_cuda_init(0);
    size_t n;
    float *a = train_params(gpu, &d, 12, &n), *b = train_params(gpu, &d, 12, &n);
    cr_assert(memcmp(a, b, n * 4) == 0, "two GPU runs with the same seed differ");
    free(a);
    free(b);
    vae_backend_free(gpu);
    vae_dataset_free(&d);
}

Test(cuda_train, mnist_test_loss_matches_cpu_within_one_percent)
{
    need_gpu();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/mnist", CUVAE_SOURCE_DIR);
    vae_dataset train, test;
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, &train))
        cr_skip_test("MNIST not fetched (%s)", vae_last_error());
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TEST, &test), 0);
    double loss[2];
    for (int k = 0; k < 2; k++) {
        vae_backend *be = k ? vae_backend_cuda_init(0) : vae_backend_cpu_init();
        vae_config c;
        vae_config_default(&c);
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, be, 128), 0);
        vae_model_init_params(&m, 1);
        vae_device_data dtr, dte;
        vae_device_data_init(&dtr, be, &train);
        vae_device_data_init(&dte, be, &test);
        vae_train_options o = {.epochs = 2, .batch_size = 128,
                               .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                               .seed = 1, .progress = -1, .log = stderr};
        vae_trainer *t = vae_trainer_init(&m, &o);
        vae_epoch_metrics e;
        for (int ep = 1; ep <= 2; ep++)
            vae_trainer_epoch(t, &dtr, &dte, ep, &e);
        loss[k] = e.test.loss;
        vae_trainer_free(t);
        vae_device_data_free(&dtr, be);
        vae_device_data_free(&dte, be);
        vae_model_free(&m);
        vae_backend_free(be);
    }
    cr_assert(fabs(loss[1] - loss[0]) <= 0.01 * loss[0], "test loss cpu %.4f, cuda %.4f", loss[0], loss[1]);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}
