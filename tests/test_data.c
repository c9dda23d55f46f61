/*
 * test_data.c: data that is not an image. Float data sets (vae_dataset_from_floats) and
 * their rows, subsets and validation split; the gather_rows op on the CPU against its
 * definition and vae_device_data_gather on both kinds of data; a float data set holding the
 * byte images / 255 trains bit for bit like the bytes; a model whose input is not an image
 * (image_rows = image_cols = 0) trains on 3-D float rows, saves and loads; such a model is
 * refused, with one plain message, by everything that draws images, in the library and on the
 * command line, while `cuvae info` and `cuvae report` describe it.
 *
 * The CUDA side of gather_rows is tested against the CPU in test_cuda_ops.c.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "dataset.h"
#include "devmem.h"
#include "holdout.h"
#include "pictures.h"
#include "render.h"
#include "safetensors.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- float data sets ------------------------------------------------------------------------ */

Test(data, from_floats_copies_the_rows_and_is_not_an_image)
{
    float v[6] = {0.5f, -1.0f, 2.0f, 3.0f, 1e-3f, -7.25f};
    uint8_t lab[2] = {4, 1};
    vae_dataset d;
    cr_assert_eq(vae_dataset_from_floats(&d, 2, 3, v, lab), 0, "%s", vae_last_error());
    v[0] = 99.0f; /* copies: the caller's arrays are its own */
    lab[0] = 0;
    cr_expect_eq(d.kind, VAE_DATA_FLOATS);
    cr_expect(d.n == 2 && d.dim == 3 && d.rows == 0 && d.cols == 0);
    cr_expect_null(d.pixels);
    cr_expect_eq(d.values[0], 0.5f);
    cr_expect_eq(d.values[5], -7.25f);
    cr_expect(d.labels && d.labels[0] == 4 && d.labels[1] == 1);
    cr_expect_eq(d.classes, 5, "classes %d: 1 + the largest label", d.classes);
    float row[3];
    vae_dataset_row(&d, 1, row);
    cr_expect(row[0] == 3.0f && row[1] == 1e-3f && row[2] == -7.25f, "row 1 as it is");
    vae_dataset_free(&d);

    cr_assert_eq(vae_dataset_from_floats(&d, 2, 3, v, NULL), 0, "%s", vae_last_error());
    cr_expect_null(d.labels, "unlabelled data has no labels");
    cr_expect_eq(d.classes, 0);
    vae_dataset_free(&d);
}

Test(data, from_floats_refuses_empty_shapes_and_values_that_are_not_finite)
{
    float v[6] = {0, 1, 2, 3, 4, 5};
    vae_dataset d;
    cr_expect_eq(vae_dataset_from_floats(&d, 0, 3, v, NULL), -1);
    cr_expect(strstr(vae_last_error(), "0 rows of 3 values"), "%s", vae_last_error());
    cr_expect_eq(vae_dataset_from_floats(&d, 2, 0, v, NULL), -1);
    cr_expect_eq(vae_dataset_from_floats(&d, 65536, 65536, v, NULL), -1, "2^32 values accepted");
    cr_expect(strstr(vae_last_error(), "2^31 - 1"), "%s", vae_last_error());
    v[5] = NAN;
    cr_expect_eq(vae_dataset_from_floats(&d, 2, 3, v, NULL), -1);
    cr_expect(strstr(vae_last_error(), "row 1, value 2 is nan"), "%s", vae_last_error());
    v[5] = -INFINITY;
    cr_expect_eq(vae_dataset_from_floats(&d, 2, 3, v, NULL), -1);
    cr_expect(d.n == 0 && d.values == NULL && d.labels == NULL, "a refused data set is left zeroed");
    vae_dataset_free(&d);
}

Test(data, rows_of_bytes_are_scaled_like_the_gather_op)
{
    vae_dataset d;
    tu_make_patterns(&d, 5, 3);
    float row[64];
    vae_dataset_row(&d, 4, row);
    for (int j = 0; j < 64; j++)
        cr_assert_eq(row[j], (float)d.pixels[4 * 64 + j] / 255.0f, "column %d", j);
    vae_dataset_free(&d);
}

Test(data, subset_keeps_kind_order_labels_and_shape)
{
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i * 0.5f;
    uint8_t lab[4] = {0, 1, 2, 3};
    vae_dataset f, s;
    cr_assert_eq(vae_dataset_from_floats(&f, 4, 3, v, lab), 0);
    int32_t idx[3] = {3, 0, 3};
    vae_dataset_subset(&f, idx, 3, &s);
    cr_expect(s.kind == VAE_DATA_FLOATS && s.n == 3 && s.dim == 3 && s.rows == 0 && s.classes == 4);
    cr_expect(s.values != f.values && s.pixels == NULL, "a copy");
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(s.labels[i], lab[idx[i]]);
        for (int j = 0; j < 3; j++)
            cr_expect_eq(s.values[i * 3 + j], v[idx[i] * 3 + j]);
    }
    vae_dataset_free(&s);
    vae_dataset_free(&f);

    cr_assert_eq(vae_dataset_from_floats(&f, 4, 3, v, NULL), 0);
    vae_dataset_subset(&f, idx, 3, &s);
    cr_expect(s.labels == NULL && s.classes == 0, "unlabelled stays unlabelled");
    vae_dataset_free(&s);
    vae_dataset_free(&f);

    vae_dataset b;
    tu_make_patterns(&b, 6, 8);
    vae_dataset_subset(&b, idx, 3, &s);
    cr_expect(s.kind == VAE_DATA_BYTES && s.rows == 8 && s.cols == 8 && s.values == NULL);
    for (int i = 0; i < 3; i++) {
        cr_expect(memcmp(s.pixels + i * 64, b.pixels + idx[i] * 64, 64) == 0, "image %d", i);
        cr_expect_eq(s.labels[i], b.labels[idx[i]]);
    }
    vae_dataset_free(&s);
    vae_dataset_free(&b);
}

Test(data, validation_split_of_unlabelled_float_rows)
{
    enum { N = 50, D = 2 };
    float v[N * D];
    for (int i = 0; i < N * D; i++)
        v[i] = (float)i;
    vae_dataset all, tr, va;
    cr_assert_eq(vae_dataset_from_floats(&all, N, D, v, NULL), 0);
    cr_assert_eq(vae_holdout_split(&all, 0.2, 7, &tr, &va), 0, "%s", vae_last_error());
    cr_expect(tr.n == 40 && va.n == 10 && tr.kind == VAE_DATA_FLOATS && va.labels == NULL);
    int seen[N] = {0};
    for (int i = 0; i < tr.n; i++)
        seen[(int)tr.values[i * D] / D]++;
    for (int i = 0; i < va.n; i++)
        seen[(int)va.values[i * D] / D]++;
    for (int i = 0; i < N; i++)
        cr_expect_eq(seen[i], 1, "row %d is in %d parts", i, seen[i]);
    for (int i = 1; i < tr.n; i++)
        cr_expect(tr.values[i * D] > tr.values[(i - 1) * D], "training rows keep their order");
    vae_dataset_free(&tr);
    vae_dataset_free(&va);
    vae_dataset_free(&all);
}

/* ---- the gather op and the device data ---------------------------------------------------- */

Test(data, gather_rows_on_the_cpu_is_its_definition)
{
    vae_backend *be = vae_backend_cpu_init();
    const int N = 11, dims[] = {1, 3, 13};
    for (int k = 0; k < 3; k++) {
        const int D = dims[k], B = 7;
        float *data = malloc(sizeof(float) * N * D), *x = malloc(sizeof(float) * (B * D + 1));
        tu_fill_uniform(data, (size_t)N * D, 40 + k, -5.0f, 5.0f);
        int32_t idx[7] = {10, 0, 3, 3, 9, 1, 10};
        x[B * D] = 12345.0f; /* a guard after the output */
        be->gather_rows(be, x, data, idx, B, D);
        for (int i = 0; i < B; i++)
            for (int d = 0; d < D; d++)
                cr_assert_eq(x[i * D + d], data[idx[i] * D + d], "D %d: x[%d, %d]", D, i, d);
        cr_assert_eq(x[B * D], 12345.0f, "D %d: written past the end", D);
        free(data);
        free(x);
    }
    vae_backend_free(be);
}

Test(data, device_gather_reads_either_kind)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_dataset b, f;
    tu_make_patterns(&b, 9, 21);
    float *v = malloc(sizeof(float) * 9 * 64);
    for (int i = 0; i < 9; i++)
        vae_dataset_row(&b, i, v + i * 64);
    for (int i = 0; i < 9 * 64; i++)
        v[i] = v[i] * 3.0f - 1.0f; /* floats outside [0, 1]: read as they are */
    cr_assert_eq(vae_dataset_from_floats(&f, 9, 64, v, NULL), 0);
    vae_device_data db, df;
    vae_device_data_init(&db, be, &b);
    vae_device_data_init(&df, be, &f);
    cr_expect(db.kind == VAE_DATA_BYTES && df.kind == VAE_DATA_FLOATS);
    int32_t idx[4] = {8, 2, 2, 0};
    int32_t *didx = be->buffer_alloc(be, sizeof idx);
    be->upload(be, didx, idx, sizeof idx);
    float *xb = be->buffer_alloc(be, 4 * 64 * sizeof(float)), *xf = be->buffer_alloc(be, 4 * 64 * sizeof(float));
    vae_device_data_gather(be, &db, xb, didx, 4);
    vae_device_data_gather(be, &df, xf, didx, 4);
    float hb[4 * 64], hf[4 * 64];
    be->download(be, hb, xb, sizeof hb);
    be->download(be, hf, xf, sizeof hf);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 64; j++) {
            cr_assert_eq(hb[i * 64 + j], (float)b.pixels[idx[i] * 64 + j] / 255.0f);
            cr_assert_eq(hf[i * 64 + j], v[idx[i] * 64 + j]);
        }
    be->buffer_free(be, didx);
    be->buffer_free(be, xb);
    be->buffer_free(be, xf);
    vae_device_data_free(&db, be);
    vae_device_data_free(&df, be);
    vae_dataset_free(&b);
    vae_dataset_free(&f);
    free(v);
    vae_backend_free(be);
}

Test(data, the_device_plan_counts_four_bytes_a_float_value)
{
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 3;
    c.image_rows = c.image_cols = 0;
    vae_device_plan pb, pf;
    cr_assert_eq(vae_device_plan_train(&pb, &c, 64, 900, 100, VAE_DATA_BYTES), 0, "%s", vae_last_error());
    cr_assert_eq(vae_device_plan_train(&pf, &c, 64, 900, 100, VAE_DATA_FLOATS), 0, "%s", vae_last_error());
    cr_expect_eq(pb.data, (size_t)1000 * (3 + 4));
    cr_expect_eq(pf.data, (size_t)1000 * (3 * 4 + 4));
    cr_expect_eq(pf.total - pf.data, pb.total - pb.data, "the plans differ beyond the data");
}

/* ---- training ------------------------------------------------------------------------------- */

typedef struct {
    vae_epoch_metrics e[3];
    float *params;
    size_t n_params;
} run_result;

/* A seeded run of `epochs` epochs (batch 16, so each epoch ends on a smaller batch) on the CPU. */
static run_result train_run(const vae_config *c, const vae_dataset *train, const vae_dataset *test, int epochs)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_model_init(&m, c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 5);
    vae_device_data dtr, dte;
    vae_device_data_init(&dtr, be, train);
    vae_device_data_init(&dte, be, test);
    vae_train_options o = {.epochs = epochs, .batch_size = 16,
                           .adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 17, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    run_result r = {0};
    for (int ep = 1; ep <= epochs; ep++) {
        vae_trainer_epoch(t, &dtr, &dte, ep, &r.e[ep - 1]);
        cr_assert(isfinite(r.e[ep - 1].train.loss) && isfinite(r.e[ep - 1].test.loss), "epoch %d: not finite", ep);
    }
    r.n_params = m.n_params;
    r.params = malloc(m.n_params * sizeof(float));
    be->download(be, r.params, m.params, m.n_params * sizeof(float));
    vae_trainer_free(t);
    vae_device_data_free(&dtr, be);
    vae_device_data_free(&dte, be);
    vae_model_free(&m);
    vae_backend_free(be);
    return r;
}

/* The same images as floats: each row as the model reads the bytes, the shape and labels kept. */
static void as_floats(const vae_dataset *b, vae_dataset *f)
{
    float *v = malloc(sizeof(float) * (size_t)b->n * b->dim);
    for (int i = 0; i < b->n; i++)
        vae_dataset_row(b, i, v + (size_t)i * b->dim);
    cr_assert_eq(vae_dataset_from_floats(f, b->n, b->dim, v, b->labels), 0, "%s", vae_last_error());
    f->rows = b->rows;
    f->cols = b->cols;
    free(v);
}

Test(data, floats_of_the_byte_images_train_bit_for_bit_like_the_bytes)
{
    vae_dataset btr, bte, ftr, fte;
    tu_make_patterns(&btr, 150, 31);
    tu_make_patterns(&bte, 40, 32);
    as_floats(&btr, &ftr);
    as_floats(&bte, &fte);
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 3;
    c.hidden[0] = 24;
    run_result rb = train_run(&c, &btr, &bte, 3), rf = train_run(&c, &ftr, &fte, 3);
    for (int ep = 0; ep < 3; ep++) {
        cr_expect(rb.e[ep].train.term[0] == rf.e[ep].train.term[0] && rb.e[ep].train.term[1] == rf.e[ep].train.term[1],
                  "epoch %d train: bytes %.9g %.9g, floats %.9g %.9g", ep + 1, rb.e[ep].train.term[0],
                  rb.e[ep].train.term[1], rf.e[ep].train.term[0], rf.e[ep].train.term[1]);
        cr_expect(rb.e[ep].test.loss == rf.e[ep].test.loss, "epoch %d test: bytes %.9g, floats %.9g", ep + 1,
                  rb.e[ep].test.loss, rf.e[ep].test.loss);
    }
    cr_expect(rb.e[2].train.loss < rb.e[0].train.loss, "the runs train: %.4f then %.4f", rb.e[0].train.loss,
              rb.e[2].train.loss);
    cr_expect(memcmp(rb.params, rf.params, rb.n_params * sizeof(float)) == 0, "the parameters differ");
    free(rb.params);
    free(rf.params);
    vae_dataset *all[] = {&btr, &bte, &ftr, &fte};
    for (int i = 0; i < 4; i++)
        vae_dataset_free(all[i]);
}

/* n rows of three values in [0, 1] near one of two points, the first two coordinates equal:
 * data with structure for a 1-D latent, not an image. */
static void three_d_rows(vae_dataset *d, int n, uint64_t seed)
{
    float *v = malloc(sizeof(float) * (size_t)n * 3), *u = malloc(sizeof(float) * (size_t)n * 3);
    tu_fill_uniform(u, (size_t)n * 3, seed, -0.03f, 0.03f);
    for (int i = 0; i < n; i++) {
        float centre = i % 2 ? 0.95f : 0.05f;
        v[i * 3] = centre + u[i * 3];
        v[i * 3 + 1] = centre + u[i * 3];
        v[i * 3 + 2] = 1.0f - centre + u[i * 3 + 2];
    }
    cr_assert_eq(vae_dataset_from_floats(d, n, 3, v, NULL), 0, "%s", vae_last_error());
    free(v);
    free(u);
}

static void non_image_config(vae_config *c)
{
    vae_config_default(c);
    c->input_dim = 3;
    c->image_rows = c->image_cols = 0;
    c->latent_dim = 1;
    c->hidden[0] = 8;
}

Test(data, config_takes_no_image_shape_or_a_whole_one)
{
    vae_config c;
    non_image_config(&c);
    cr_expect_eq(vae_config_validate(&c), 0, "%s", vae_last_error());
    c.image_rows = 3;
    cr_expect_eq(vae_config_validate(&c), -1, "3x0 accepted");
    cr_expect(strstr(vae_last_error(), "image shape 3x0"), "%s", vae_last_error());
    c.image_rows = 0;
    c.image_cols = 3;
    cr_expect_eq(vae_config_validate(&c), -1, "0x3 accepted");
    c.image_rows = c.image_cols = -1;
    cr_expect_eq(vae_config_validate(&c), -1, "-1x-1 accepted");
    c.image_rows = 1;
    c.image_cols = 3;
    cr_expect_eq(vae_config_validate(&c), 0, "a 1x3 image refused: %s", vae_last_error());
}

/* A trained non-image model saved as dir/model.safetensors; returns its path (static). */
static const char *save_non_image_model(const char *dir)
{
    static char path[4200];
    vae_dataset tr, te;
    three_d_rows(&tr, 200, 61);
    three_d_rows(&te, 50, 62);
    vae_config c;
    non_image_config(&c);
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 3);
    vae_device_data dtr, dte;
    vae_device_data_init(&dtr, be, &tr);
    vae_device_data_init(&dte, be, &te);
    enum { EPOCHS = 10 };
    vae_train_options o = {.epochs = EPOCHS, .batch_size = 16,
                           .adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 2, .progress = -1, .log = stderr};
    vae_trainer *t = vae_trainer_init(&m, &o);
    vae_epoch_metrics e[EPOCHS];
    for (int ep = 1; ep <= EPOCHS; ep++) {
        vae_trainer_epoch(t, &dtr, &dte, ep, &e[ep - 1]);
        cr_assert(isfinite(e[ep - 1].train.loss) && isfinite(e[ep - 1].test.loss), "epoch %d: not finite", ep);
    }
    /* 3 log 2 = 2.08 nats while the latent is unused; the two clusters cost it about log 2 of KL and
     * save more than that in reconstruction (1.45 after 10 epochs) */
    cr_expect(e[EPOCHS - 1].test.loss < e[0].test.loss - 0.3 && e[EPOCHS - 1].test.term[1] > 0.3,
              "the model did not learn the two clusters: test loss %.5f then %.5f (kl %.5f)", e[0].test.loss,
              e[EPOCHS - 1].test.loss, e[EPOCHS - 1].test.term[1]);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(vae_checkpoint_save(&m, path, NULL, 0), 0, "%s", vae_last_error());
    vae_trainer_free(t);
    vae_device_data_free(&dtr, be);
    vae_device_data_free(&dte, be);
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&tr);
    vae_dataset_free(&te);
    return path;
}

Test(data, a_non_image_model_trains_on_float_rows_saves_and_loads)
{
    const char *path = save_non_image_model(tu_tmpdir());
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "image_rows"), "0");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "image_cols"), "0");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "input_dim"), "3");
    vae_safetensors_free(&st);
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(path, be, 8, &m), 0, "%s", vae_last_error());
    cr_expect(m.cfg.image_rows == 0 && m.cfg.image_cols == 0 && m.cfg.input_dim == 3 && m.cfg.latent_dim == 1);
    /* saved again from the loaded model: the same bytes */
    char again[4300];
    snprintf(again, sizeof again, "%s.again", path);
    cr_assert_eq(vae_checkpoint_save(&m, again, NULL, 0), 0, "%s", vae_last_error());
    char cmd[9000], out[256];
    snprintf(cmd, sizeof cmd, "cmp %s %s", path, again);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "the reloaded model saves differently: %s", out);
    vae_model_free(&m);
    vae_backend_free(be);
}

/* ---- pictures ------------------------------------------------------------------------------- */

Test(data, the_picture_writers_refuse_a_non_image_model)
{
    const char *dir = tu_tmpdir();
    vae_config c;
    non_image_config(&c);
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 1);
    vae_dataset te;
    three_d_rows(&te, 20, 5);
    char png[4200];
    snprintf(png, sizeof png, "%s/samples.png", dir);
    cr_expect_eq(vae_render_samples(&m, png, 16, -1, 1, 3, NULL, VAE_RENDER_MEANS), -1);
    cr_expect(strstr(vae_last_error(), "the model is not an image model (image_rows and image_cols are 0; its "
                                       "input is 3 values per row): it has no pictures to draw"),
              "%s", vae_last_error());
    cr_expect_eq(vae_render_reconstructions(&m, &te, png, 8, 3), -1);
    cr_expect(strstr(vae_last_error(), "not an image model"), "%s", vae_last_error());
    vae_pictures_options o = {.scale = 3, .seed = 1};
    cr_expect_eq(vae_pictures_write_all(&m, &te, dir, &o), -1);
    cr_expect(strstr(vae_last_error(), "not an image model"), "%s", vae_last_error());
    cr_expect_not(tu_exists(png), "a picture was written");
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&te);
}

/* Float images without labels get every picture, and the float rows draw exactly the bytes'
 * reconstructions. */
Test(data, pictures_of_unlabelled_float_images)
{
    const char *dir = tu_tmpdir();
    vae_dataset b, f;
    tu_make_patterns(&b, 30, 71);
    as_floats(&b, &f);
    vae_free(f.labels);
    f.labels = NULL;
    f.classes = 0;
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 2;
    c.hidden[0] = 16;
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 4);
    vae_pictures_options o = {.scale = 1, .seed = 1};
    cr_expect_eq(vae_pictures_write_all(&m, &f, dir, &o), 6, "%s", vae_last_error());
    const char *files[] = {"latent_scatter.svg", "manifold.png",  "traversals.png",
                           "interpolation.png",  "per_digit.png", "posterior_cloud.svg"};
    for (int i = 0; i < 6; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        cr_expect(tu_exists(p), "%s was not written", files[i]);
    }
    char cloud[4200];
    snprintf(cloud, sizeof cloud, "%s/posterior_cloud.svg", dir);
    cr_expect(tu_file_has(cloud, ">image 1</text>") && !tu_file_has(cloud, ">image 1 ("),
              "an unlabelled image's cloud is named by its number alone");
    char pb[4200], pf[4200], cmd[9000], out[256];
    snprintf(pb, sizeof pb, "%s/recon_bytes.png", dir);
    snprintf(pf, sizeof pf, "%s/recon_floats.png", dir);
    cr_assert_eq(vae_render_reconstructions(&m, &b, pb, 16, 2), 0, "%s", vae_last_error());
    cr_assert_eq(vae_render_reconstructions(&m, &f, pf, 16, 2), 0, "%s", vae_last_error());
    snprintf(cmd, sizeof cmd, "cmp %s %s", pb, pf);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "float and byte images reconstruct differently: %s", out);
    vae_model_free(&m);
    vae_backend_free(be);
    vae_dataset_free(&b);
    vae_dataset_free(&f);
}

/* ---- the command line ----------------------------------------------------------------------- */

#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

Test(data_cli, image_commands_refuse_a_non_image_model_and_info_describes_it)
{
    char dir[4096], out[16384], want[4300];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    const char *model = save_non_image_model(dir);
    snprintf(want, sizeof want, "cuvae: %s: is not an image model (image_rows and image_cols are 0; its input is 3 "
                                "values per row): it has no pictures to draw", model);

    cr_expect_eq(cuvae("sample --model %s --out %s/s.png --device cpu", model, dir), 1, "%s", out);
    cr_expect(strstr(out, want), "sample: %s", out);
    /* the model is refused before the (missing) data is looked for */
    cr_expect_eq(cuvae("reconstruct --model %s --data %s/none --out %s/r.png --device cpu", model, dir, dir), 1,
                 "%s", out);
    cr_expect(strstr(out, want) && !strstr(out, "none"), "reconstruct: %s", out);
    cr_expect_eq(cuvae("plot --model %s --data %s/none --device cpu", model, dir), 1, "%s", out);
    cr_expect(strstr(out, want), "plot: %s", out);
    char p[4200];
    const char *pngs[] = {"s.png", "r.png", "latent_scatter.svg", "traversals.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, pngs[i]);
        cr_expect_not(tu_exists(p), "%s was written", pngs[i]);
    }

    cr_expect_eq(cuvae("info --model %s", model), 0, "%s", out);
    cr_expect(strstr(out, "VAE: input 3 (not an image), latent 1"), "info: %s", out);
    cr_expect(strstr(out, "image_rows               0"), "info: %s", out);
    /* the report draws nothing: it shows what the run directory holds */
    static const char csv[] = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,"
                              "images_per_second\n1,1.5,0.9,0.6,1.4,0.8,0.6,0.1,2000\n";
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    tu_write_file(p, csv, sizeof csv - 1);
    cr_expect_eq(cuvae("report %s", dir), 0, "report: %s", out);
    snprintf(p, sizeof p, "%s/report.html", dir);
    cr_expect(tu_exists(p), "no report.html: %s", out);
}
