/*
 * test_cvae.c: the conditional VAE from the command line: training one, sample --label K and
 * its class grid, the labels checked against the model's classes (a bad --label, a data set
 * with a label beyond the classes, a plain VAE given --label), and the check that it
 * draws the digit it is asked for: a softmax-regression classifier trained here on the MNIST
 * training split judges samples of every label drawn from a cvae trained by `cuvae train`.
 *
 * --condition decoder (the decoder alone reads y): recorded, checked on resume, in the file's
 * metadata; the class grid's columns share z, through the CLI and through the library.
 *
 * Not here: the cvae's gradients (test_model.c), the gather_one_hot op (op_table.c), PyTorch's
 * evaluation of a cvae file (test_pytorch_model.c).
 */
#include <criterion/criterion.h>

#include "checkpoint.h"
#include "dataset.h"
#include "image.h"
#include "model.h"
#include "pictures.h"
#include "render.h"
#include "safetensors.h"
#include "testutil.h"
#include "vae_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[65536];

/* A small labelled data set (3 classes: labels i % 3) and a cvae trained on it for 2 epochs. */
static const char *stroke_run(char *data, size_t cap)
{
    const char *tmp = tu_tmpdir();
    snprintf(data, cap, "%s/strokes", tmp);
    tu_write_stroke_idx(data, 300, 60, 8);
    static char run[600];
    snprintf(run, sizeof run, "%s/run", tmp);
    int rc = tu_cuvae(out, sizeof out,
                      "train --model cvae --data %s --epochs 2 --batch-size 32 --hidden 16 --latent 2 --samples 9 "
                      "--device cpu --quiet --out %s",
                      data, run);
    cr_assert_eq(rc, 0, "train --model cvae failed: %s", out);
    return run;
}

Test(cvae_cli, trains_records_and_names_its_bound)
{
    char data[600];
    const char *run = stroke_run(data, sizeof data);
    cr_expect(strstr(out, "CVAE: input 64 (8x8) + one-hot label (3 classes)"), "%s", out);
    cr_expect(strstr(out, "(400, ") == NULL);
    cr_expect(strstr(out, "encoder.fc1      (16, 67)"), "[x | y] is 64 + 3 columns: %s", out);
    cr_expect(strstr(out, "decoder.fc1      (16, 5)"), "[z | y] is 2 + 3 columns: %s", out);
    cr_expect(strstr(out, "(-log p(x|y) bound)"), "the epoch line names the bound: %s", out);
    cr_expect(strstr(out, "final test loss") && strstr(out, "(a bound on -log p(x|y))"), "%s", out);
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "model"), "cvae");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "classes"), "3");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "train.model"), "cvae");
    vae_safetensors_free(&st);
    /* eval says what its numbers are conditional on */
    cr_assert_eq(tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu --iw-samples 4", path, data), 0,
                 "%s", out);
    cr_expect(strstr(out, "the test loss bounds -log p(x|y)"), "%s", out);
    cr_expect(strstr(out, "importance-weighted -log p(x|y)"), "%s", out);
}

Test(cvae_cli, sample_draws_a_label_or_one_row_per_class)
{
    char data[600];
    const char *run = stroke_run(data, sizeof data);
    char model[700], png[700];
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    snprintf(png, sizeof png, "%s/two.png", run);
    cr_assert_eq(tu_cuvae(out, sizeof out, "sample --model %s --label 2 --n 5 --out %s --device cpu", model, png), 0,
                 "%s", out);
    cr_expect(strstr(out, "wrote 5 samples of class 2"), "%s", out);
    cr_assert_eq(tu_cuvae(out, sizeof out, "sample --model %s --n 4 --out %s --device cpu", model, png), 0, "%s",
                 out);
    cr_expect(strstr(out, "wrote 2 samples of each of the 3 classes (one row per class)"), "%s", out);
    /* the grid: 3 rows (one per class) of 2 samples, each row labelled with its class */
    uint8_t *px;
    int w, h, gx, gy;
    cr_assert_eq(vae_png_read_gray(png, &px, &w, &h), 0, "%s", vae_last_error());
    tu_grid_origin(px, w, h, &gx, &gy);
    const int gw = w - gx, gh = h - gy;
    cr_expect(gh * 2 > gw * 3 - gw / 2 && gh * 2 < gw * 3 + gw / 2, "a 3 x 2 grid is about 3/2 as high as wide: %dx%d",
              gw, gh);
    cr_expect_gt(gx, 0, "the rows are not labelled with their classes");
    vae_free(px);
}

/* --condition: its bad values refused by flag; decoder composes an encoder that reads x alone and a
 * decoder that reads [z | y], says so, records it (train.condition, the model file's condition) and
 * loads back as it; a resume with another --condition is refused naming the flag. */
Test(cvae_cli, condition_decoder_trains_records_and_resumes)
{
    cr_expect_eq(tu_cuvae(out, sizeof out, "train --model cvae --condition sideways"), 2, "%s", out);
    cr_expect(strstr(out, "invalid --condition 'sideways' (expected both or decoder)"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "train --condition decoder --epochs 1"), 2, "%s", out);
    cr_expect(strstr(out, "--condition decoder: only for a model that reads the label (--model cvae)"), "%s", out);
    const char *tmp = tu_tmpdir();
    char data[600], run[700], model[800];
    snprintf(data, sizeof data, "%s/strokes", tmp);
    tu_write_stroke_idx(data, 300, 60, 8);
    snprintf(run, sizeof run, "%s/run", tmp);
    cr_assert_eq(tu_cuvae(out, sizeof out,
                          "train --model cvae --condition decoder --data %s --epochs 2 --batch-size 32 --hidden 16 "
                          "--latent 2 --samples 9 --device cpu --quiet --out %s",
                          data, run),
                 0, "%s", out);
    cr_expect(strstr(out, "encoder.fc1      (16, 64)"), "the encoder reads x alone: %s", out);
    cr_expect(strstr(out, "decoder.fc1      (16, 5)"), "[z | y] is 2 + 3 columns: %s", out);
    cr_expect(strstr(out, "conditioned: the decoder alone reads y (q(z|x), p(x|z, y))"), "%s", out);
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(model, &st), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "condition"), "decoder");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "train.condition"), "decoder");
    vae_safetensors_free(&st);
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(model, be, 4, &m), 0, "%s", vae_last_error());
    cr_expect_eq(m.cfg.condition, VAE_CONDITION_DECODER);
    cr_expect_eq(m.lin[0].n_blocks, 1, "the encoder's first layer reads one block, x");
    cr_expect_eq(m.lin[m.n_encoder].n_blocks, 2, "the decoder's reads [z | y]");
    vae_model_free(&m);
    vae_backend_free(be);
    /* a bad condition in a file: refused, naming the file and the key */
    char bad[900];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmp);
    size_t len;
    void *bytes = tu_read_file(model, &len);
    tu_write_file(bad, bytes, len);
    free(bytes);
    tu_st_rewrite_meta(bad, "condition", "encoder");
    cr_expect_eq(tu_cuvae(out, sizeof out, "info --model %s", bad), 1, "%s", out);
    cr_expect(strstr(out, "condition") && strstr(out, "both or decoder"), "%s", out);
    /* a resume keeps it */
    cr_expect_eq(tu_cuvae(out, sizeof out, "train --resume %s --epochs 3 --condition both", run), 2, "%s", out);
    cr_expect(strstr(out, "--condition both (the run has decoder)"), "%s", out);
    cr_assert_eq(tu_cuvae(out, sizeof out, "train --resume %s --epochs 3 --quiet", run), 0, "%s", out);
    cr_expect(strstr(out, "epoch   3/3"), "%s", out);
}

/* Tile (row, col) of an 8x8 grid PNG read back (border VAE_GRID_BORDER, scale 1) into out (64). */
/* Tile (row, col) of a grid of 8x8 images at scale 1, labelled or not (tu_grid_origin). */
static void tile(const uint8_t *px, int width, int height, int row, int col, uint8_t *to)
{
    int gx, gy;
    tu_grid_origin(px, width, height, &gx, &gy);
    const int x0 = gx + VAE_GRID_BORDER + col * (8 + VAE_GRID_BORDER),
              y0 = gy + VAE_GRID_BORDER + row * (8 + VAE_GRID_BORDER);
    for (int y = 0; y < 8; y++)
        memcpy(to + y * 8, px + (size_t)(y0 + y) * width + x0, 8);
}

/* The class grid of `sample` holds z fixed down each column: a cvae conditioned on the decoder
 * alone (and one on both halves), its grid written by the CLI; through the library, each column's
 * z (vae_render_column_codes, the same seed) decoded with two labels gives those two rows' cells,
 * pixel for pixel (the PNG's grey levels of the library's means), and the two labels' cells
 * differ (the label is read). */
Test(cvae_cli, class_grid_columns_share_z_through_the_cli_and_the_library)
{
    const char *tmp = tu_tmpdir();
    char data[600];
    snprintf(data, sizeof data, "%s/strokes", tmp);
    tu_write_stroke_idx(data, 300, 60, 8);
    const char *conditions[2] = {"decoder", "both"};
    for (int ci = 0; ci < 2; ci++) {
        char run[700], model[800], png[800];
        snprintf(run, sizeof run, "%s/run-%s", tmp, conditions[ci]);
        cr_assert_eq(tu_cuvae(out, sizeof out,
                              "train --model cvae --condition %s --data %s --epochs 3 --batch-size 32 --hidden 16 "
                              "--latent 2 --device cpu --quiet --out %s",
                              conditions[ci], data, run),
                     0, "%s", out);
        snprintf(model, sizeof model, "%s/model.safetensors", run);
        snprintf(png, sizeof png, "%s/grid.png", run);
        cr_assert_eq(tu_cuvae(out, sizeof out, "sample --model %s --n 9 --seed 5 --scale 1 --out %s --device cpu",
                              model, png),
                     0, "%s", out);
        cr_expect(strstr(out, "wrote 3 samples of each of the 3 classes (one row per class)"), "%s", out);
        uint8_t *px;
        int w, h;
        cr_assert_eq(vae_png_read_gray(png, &px, &w, &h), 0, "%s", vae_last_error());
        int gx, gy;
        tu_grid_origin(px, w, h, &gx, &gy);
        cr_assert_eq(w - gx, VAE_GRID_BORDER + 3 * (8 + VAE_GRID_BORDER));
        cr_assert_eq(h - gy, VAE_GRID_BORDER + 3 * (8 + VAE_GRID_BORDER), "3 rows, one per class");
        cr_assert_gt(gx, 0, "the rows are not labelled with their classes");

        vae_backend *be = vae_backend_cpu_init();
        vae_model m;
        cr_assert_eq(vae_checkpoint_load(model, be, 9, &m), 0, "%s", vae_last_error());
        float z[3 * 2], probs[64];
        vae_render_column_codes(&m, 3, 5, z);
        int differ = 0;
        for (int col = 0; col < 3; col++) {
            uint8_t first[64];
            const int rows[2] = {0, 2};
            for (int r = 0; r < 2; r++) {
                uint8_t cell[64];
                tile(px, w, h, rows[r], col, cell);
                vae_pictures_decode(&m, z + col * 2, 1, rows[r], NULL, probs);
                for (int p = 0; p < 64; p++) {
                    const float v = probs[p] < 0 ? 0 : probs[p] > 1 ? 1 : probs[p];
                    const uint8_t lib = (uint8_t)lrintf(255.0f * v);
                    cr_expect_eq(cell[p], lib, "%s: column %d, label %d, pixel %d: grid %d, library %d",
                                 conditions[ci], col, rows[r], p, cell[p], lib);
                }
                if (r == 0)
                    memcpy(first, cell, 64);
                else
                    differ += memcmp(first, cell, 64) != 0;
            }
        }
        cr_expect_gt(differ, 0, "%s: labels 0 and 2 decode every column's z to the same pixels", conditions[ci]);
        vae_free(px);
        vae_model_free(&m);
        vae_backend_free(be);
    }
}

Test(cvae_cli, labels_out_of_range_are_refused_plainly)
{
    char data[600];
    const char *run = stroke_run(data, sizeof data);
    char model[700];
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    /* --label beyond the classes */
    cr_expect_eq(tu_cuvae(out, sizeof out, "sample --model %s --label 3 --out %s/x.png --device cpu", model, run), 1);
    cr_expect(strstr(out, "--label 3 is out of range: the model has 3 classes (0..2)"), "%s", out);
    /* a test set holding a label the training labels do not have: train and eval refuse it, naming the file */
    char bad[700], lab[800];
    snprintf(bad, sizeof bad, "%s/bad", run);
    tu_write_stroke_idx(bad, 300, 60, 8);
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", bad);
    FILE *f = fopen(lab, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 8 + 17, SEEK_SET), 0); /* after the 8-byte IDX header: image 17's label */
    cr_assert_eq(fputc(7, f), 7);
    cr_assert_eq(fclose(f), 0);
    cr_expect_eq(tu_cuvae(out, sizeof out,
                          "train --model cvae --data %s --epochs 1 --hidden 8 --latent 2 --device cpu --quiet --out "
                          "%s/badrun",
                          bad, run),
                 1);
    cr_expect(strstr(out, "t10k-labels-idx1-ubyte: label 7 of row 17 is out of range for a model of 3 classes (0..2)"),
              "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu", model, bad), 1);
    cr_expect(strstr(out, "t10k-labels-idx1-ubyte (for ") && strstr(out, "label 7 of row 17 is out of range"), "%s",
              out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "reconstruct --model %s --data %s --out %s/r.png --device cpu", model, bad,
                          run),
                 1);
    cr_expect(strstr(out, "label 7 of row 17 is out of range"), "%s", out);
    /* the same labels are fine for a plain VAE, which reads none; --label is not for it */
    cr_assert_eq(tu_cuvae(out, sizeof out,
                          "train --data %s --epochs 1 --hidden 8 --latent 2 --device cpu --quiet --out %s/plain", bad,
                          run),
                 0, "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "sample --model %s/plain/model.safetensors --label 0 --out %s/p.png "
                                           "--device cpu",
                          run, run),
                 1);
    cr_expect(strstr(out, "--label 0: the model is not conditional"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "train --model cave --data %s --device cpu", bad), 2);
    cr_expect(strstr(out, "invalid --model 'cave' (expected vae, cvae, joint or ae)"), "%s", out);
}

/* ---- does it draw the digit it is asked for? -------------------------------------------- */

enum { PIX = 784, CLS = 10 };

/* Multinomial logistic regression on the pixels / 255: W (CLS, PIX), b (CLS). */
typedef struct {
    double w[CLS][PIX], b[CLS];
} classifier;

static int classify(const classifier *c, const float *x)
{
    int best = 0;
    double top = -INFINITY;
    for (int k = 0; k < CLS; k++) {
        double s = c->b[k];
        for (int d = 0; d < PIX; d++)
            s += c->w[k][d] * x[d];
        if (s > top)
            top = s, best = k;
    }
    return best;
}

/* Minibatch SGD on the cross-entropy, 8 epochs in a seeded order. */
static void classifier_train(classifier *c, const vae_dataset *train)
{
    memset(c, 0, sizeof *c);
    const int n = train->n, batch = 50, epochs = 8;
    const double lr = 0.5;
    int *order = vae_calloc((size_t)n, sizeof *order);
    float *x = vae_calloc((size_t)batch * PIX, sizeof(float));
    static double gw[CLS][PIX];
    double gb[CLS];
    uint64_t s = 12345;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int e = 0; e < epochs; e++) {
        for (int i = n - 1; i > 0; i--) { /* Fisher-Yates with a splitmix64 stream */
            s += 0x9e3779b97f4a7c15ull;
            uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            int j = (int)(z % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int first = 0; first + batch <= n; first += batch) {
            memset(gw, 0, sizeof gw);
            memset(gb, 0, sizeof gb);
            for (int r = 0; r < batch; r++) {
                const int i = order[first + r];
                float *xr = x + (size_t)r * PIX;
                vae_dataset_row(train, i, xr);
                double p[CLS], mx = -INFINITY, z = 0;
                for (int k = 0; k < CLS; k++) {
                    p[k] = c->b[k];
                    for (int d = 0; d < PIX; d++)
                        p[k] += c->w[k][d] * xr[d];
                    mx = fmax(mx, p[k]);
                }
                for (int k = 0; k < CLS; k++)
                    z += p[k] = exp(p[k] - mx);
                for (int k = 0; k < CLS; k++) {
                    const double g = p[k] / z - (k == train->labels[i]);
                    gb[k] += g;
                    for (int d = 0; d < PIX; d++)
                        gw[k][d] += g * xr[d];
                }
            }
            for (int k = 0; k < CLS; k++) {
                c->b[k] -= lr * gb[k] / batch;
                for (int d = 0; d < PIX; d++)
                    c->w[k][d] -= lr * gw[k][d] / batch;
            }
        }
    }
    vae_free(order);
    vae_free(x);
}

static double classifier_accuracy(const classifier *c, const vae_dataset *d)
{
    float x[PIX];
    int right = 0;
    for (int i = 0; i < d->n; i++) {
        vae_dataset_row(d, i, x);
        right += classify(c, x) == d->labels[i];
    }
    return (double)right / d->n;
}

/* The reference: with a 2-D latent the decoder has to use the label, and ten epochs use
 * it well. The cvae is trained by the CLI (default settings but --latent 2), its samples
 * z ~ N(0, I) with y = one-hot(K) decoded to Bernoulli means, 100 per label, and the classifier
 * asked which digit each is. Measured (CPU, seed 1): the classifier gets 0.909 of the test split
 * right; 0.963 of the samples are classified as the label asked for (the worst label, 0, 81 of
 * 100); chance is 0.10. The thresholds, 0.75 overall and 40 of 100 for every label, leave room
 * for another BLAS or backend while staying far above chance. */
Test(cvae_mnist, samples_are_the_digit_asked_for, .timeout = 300)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data/mnist", CUVAE_SOURCE_DIR);
    vae_dataset train, test;
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, &train))
        cr_skip_test("MNIST is not in %s (scripts/fetch_mnist.sh puts it there): %s", dir, vae_last_error());
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TEST, &test), 0, "%s", vae_last_error());
    cr_assert_eq(train.dim, PIX);

    static classifier c;
    classifier_train(&c, &train);
    const double test_acc = classifier_accuracy(&c, &test);
    cr_log_info("classifier: %.3f of the %d test images right", test_acc, test.n);
    cr_assert_geq(test_acc, 0.85, "the judge itself must be good: %.3f", test_acc);

    const char *run = tu_tmpdir();
    cr_assert_eq(tu_cuvae(out, sizeof out,
                          "train --model cvae --latent 2 --epochs 10 --data %s --device cpu --threads 2 --quiet "
                          "--samples 4 --out %s/run",
                          dir, run),
                 0, "%s", out);
    char model[700];
    snprintf(model, sizeof model, "%s/run/model.safetensors", run);
    /* a label the model does not have is refused, naming the flag */
    cr_expect_eq(tu_cuvae(out, sizeof out, "sample --model %s --label 10 --out %s/x.png --device cpu", model, run), 1);
    cr_expect(strstr(out, "--label 10 is out of range: the model has 10 classes (0..9)"), "%s", out);

    enum { PER = 100 };
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(model, be, PER, &m), 0, "%s", vae_last_error());
    cr_assert_eq(m.cfg.classes, CLS);
    vae_rng *rng = be->rng_init(be, 7);
    float *img = vae_calloc((size_t)PER * PIX, sizeof(float));
    uint8_t labels[PER];
    int right = 0, worst = PER, worst_label = -1;
    for (int k = 0; k < CLS; k++) {
        memset(labels, k, sizeof labels);
        vae_model_set_labels(&m, labels, PER);
        be->rng_normal(be, rng, m.sample[vae_model_gaussian(&m)], vae_rng_normal_count((size_t)PER * m.cfg.latent_dim));
        vae_model_decode(&m, PER);
        vae_model_download_mean(&m, PER, img);
        int r = 0;
        for (int i = 0; i < PER; i++)
            r += classify(&c, img + (size_t)i * PIX) == k;
        cr_log_info("label %d: %d of %d samples classified as %d", k, r, PER, k);
        right += r;
        if (r < worst)
            worst = r, worst_label = k;
    }
    const double rate = (double)right / (CLS * PER);
    cr_log_info("samples classified as the label asked for: %.3f (worst: label %d, %d of %d)", rate, worst_label,
                worst, PER);
    cr_expect_geq(rate, 0.75, "samples are the digit asked for only %.3f of the time (chance 0.1)", rate);
    cr_expect_geq(worst, 40, "label %d: only %d of %d samples classified as it", worst_label, worst, PER);
    vae_free(img);
    be->rng_free(be, rng);
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}
