/*
 * test_train.c: short real training runs on the CPU backend: the loss falls,
 * the same seed gives bit-identical results run after run, a different seed
 * does not, and the comparison machinery of `cuvae compare` passes when it
 * compares the CPU with itself (explicitly, as `--candidate cpu` does).
 */
#define _GNU_SOURCE
#include "compare.h"
#include "dataset.h"
#include "progress.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 600 8x8 images: three stroke patterns with seeded pixel noise. */
static void make_patterns(vae_dataset *d, uint64_t seed)
{
    *d = (vae_dataset){.n = 600, .rows = 8, .cols = 8, .dim = 64, .kind = VAE_DATA_BYTES, .classes = 3};
    d->pixels = vae_calloc((size_t)d->n * 64, 1);
    d->labels = vae_calloc((size_t)d->n, 1);
    float noise[64];
    for (int i = 0; i < d->n; i++) {
        int k = i % 3;
        d->labels[i] = (uint8_t)k;
        tu_fill_uniform(noise, 64, seed + (uint64_t)i, 0, 60);
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                int on = k == 0 ? (c == 3 || c == 4) : k == 1 ? (r == 3 || r == 4) : (r == c || r == 7 - c);
                d->pixels[i * 64 + r * 8 + c] = (uint8_t)(on ? 255 - noise[r * 8 + c] : noise[r * 8 + c]);
            }
    }
}

typedef struct {
    double first_loss, last_loss, test_loss;
    float *params;
    size_t n_params;
} run_result;

static run_result train_run(const vae_dataset *train, const vae_dataset *test, int epochs, uint64_t seed,
                            const char *hidden, int latent)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c;
    vae_config_default(&c);
    c.input_dim = train->dim;
    c.image_rows = train->rows;
    c.image_cols = train->cols;
    c.latent_dim = latent;
    cr_assert_eq(vae_config_parse_hidden(hidden, &c), 0);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 50), 0, "%s", vae_last_error());
    vae_model_init_params(&m, seed);
    vae_device_data dtr, dte;
    vae_device_data_init(&dtr, be, train);
    vae_device_data_init(&dte, be, test);
    vae_train_options o = {.epochs = epochs, .batch_size = 50,
                           .adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = seed, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    run_result r = {0};
    vae_epoch_metrics e;
    for (int ep = 1; ep <= epochs; ep++) {
        vae_trainer_epoch(t, &dtr, &dte, ep, &e);
        cr_assert(isfinite(e.train.loss) && isfinite(e.test.loss), "epoch %d: non-finite loss", ep);
        if (ep == 1)
            r.first_loss = e.test.loss;
    }
    cr_expect_null(vae_trainer_step_graph(t), "the CPU backend captured a step graph");
    r.last_loss = e.train.loss;
    r.test_loss = e.test.loss;
    r.n_params = m.n_params;
    r.params = malloc(m.n_params * 4);
    memcpy(r.params, m.params, m.n_params * 4);
    vae_trainer_free(t);
    vae_device_data_free(&dtr, be);
    vae_device_data_free(&dte, be);
    vae_model_free(&m);
    vae_backend_free(be);
    return r;
}

Test(train, loss_falls_on_patterns)
{
    vae_dataset d;
    make_patterns(&d, 5);
    run_result r = train_run(&d, &d, 20, 1, "32", 2);
    /* The pixel noise alone costs ~22 nats per image (its binary entropy): a trained model gets
     * close to that floor, far under where the first epoch ends. */
    cr_assert(r.test_loss < 30.0 && r.test_loss < 0.7 * r.first_loss,
              "test loss %.3f after 20 epochs vs %.3f after 1", r.test_loss, r.first_loss);
    free(r.params);
    vae_dataset_free(&d);
}

Test(train, same_seed_is_bit_identical_and_seeds_matter)
{
    vae_dataset d;
    make_patterns(&d, 6);
    run_result a = train_run(&d, &d, 2, 42, "16,8", 3);
    run_result b = train_run(&d, &d, 2, 42, "16,8", 3);
    run_result c = train_run(&d, &d, 2, 43, "16,8", 3);
    cr_assert(a.test_loss == b.test_loss, "same seed: %.9g vs %.9g", a.test_loss, b.test_loss);
    cr_assert(memcmp(a.params, b.params, a.n_params * 4) == 0, "same seed: parameters differ");
    cr_assert(memcmp(a.params, c.params, a.n_params * 4) != 0, "different seeds: identical parameters");
    free(a.params);
    free(b.params);
    free(c.params);
    vae_dataset_free(&d);
}

Test(train, mnist_two_epochs_on_a_subset)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/mnist", CUVAE_SOURCE_DIR);
    vae_dataset train, test;
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, &train))
        cr_skip_test("MNIST not fetched (%s); scripts/test.sh runs scripts/fetch_mnist.sh first", vae_last_error());
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TEST, &test), 0, "%s", vae_last_error());
    train.n = 2000; /* a subset keeps the test short; the buffers stay valid */
    test.n = 500;
    run_result r = train_run(&train, &test, 2, 1, "400", 20);
    /* an untrained Bernoulli decoder pays ~543 nats per MNIST image; two short epochs get well under 250 */
    cr_assert(r.test_loss < 250.0, "test loss %.2f after 2 epochs on 2000 images", r.test_loss);
    cr_assert(r.test_loss < r.first_loss, "test loss rose: %.2f -> %.2f", r.first_loss, r.test_loss);
    free(r.params);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

Test(train, compare_cpu_against_itself_passes)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.steps = 3;
    o.cfg.input_dim = 49;
    o.cfg.image_rows = o.cfg.image_cols = 7;
    o.cfg.n_hidden = 1;
    o.cfg.hidden[0] = 13;
    o.cfg.latent_dim = 5;
    vae_backend *a = vae_backend_cpu_init(), *b = vae_backend_cpu_init();
    char buf[65536];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    int fails = vae_compare_run(&o, a, b, f);
    fclose(f);
    cr_assert_eq(fails, 0, "compare of the CPU with itself failed:\n%s", buf);
    cr_assert(strstr(buf, "cpu") && strstr(buf, "PASS"), "%s", buf);
    cr_assert(strstr(buf, "grad@1 decoder.out.weight"), "no per-tensor rows:\n%s", buf);
    vae_backend_free(a);
    vae_backend_free(b);
}

/* A progress line counts what the rows are: images by default, the toy's values when it says so
 * (its epochs once showed img/s). */
Test(train, progress_lines_name_their_rows)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    vae_progress p;
    vae_progress_begin(&p, f, 0, "epoch 1/2", 100);
    vae_progress_update(&p, 50, 1.5);
    vae_progress_begin(&p, f, 0, "epoch 2/2", 100);
    vae_progress_units(&p, "value", "values/s");
    vae_progress_update(&p, 50, NAN);
    fclose(f);
    cr_expect(strstr(text, "epoch 1/2: 50/100 images (50%),") && strstr(text, " img/s, ETA ") &&
                  strstr(text, ", loss 1.500\n"),
              "%s", text);
    cr_expect(strstr(text, "epoch 2/2: 50/100 values (50%),") && strstr(text, " values/s, ETA "), "%s", text);
    cr_expect(!strstr(strstr(text, "epoch 2/2"), "loss"), "a NAN loss is printed:\n%s", text);
    free(text);
}
