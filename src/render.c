/*
 * render.c: the sample, reconstruction and category grids; see render.h.
 */
#include "image.h"
#include "hostrng.h"
#include "pictures.h"
#include "render.h"
#include "vae_util.h"

#include <stdio.h>
#include <string.h>

/* The seed of sample --bernoulli's pixel draws is the grid's seed ^ this ("pixels"): apart from the
 * latent draws of the same seed. */
#define SEED_BERNOULLI_PIXELS 0x706978656c73ull

/* n decoded means in img, as `pixels` asks: kept (VAE_RENDER_MEANS), or each replaced by a draw
 * x ~ Bernoulli(mean) (1 with probability mean, else 0; host uniforms seeded with seed, in order). */
static void draw_pixels(float *img, size_t n, vae_render_pixels pixels, uint64_t seed)
{
    if (pixels != VAE_RENDER_BERNOULLI)
        return;
    vae_hostrng r;
    vae_hostrng_seed(&r, seed ^ SEED_BERNOULLI_PIXELS);
    for (size_t i = 0; i < n; i++)
        img[i] = vae_hostrng_uniform(&r) < img[i] ? 1.0f : 0.0f;
}

/* -1 with vae_set_error when m cannot give `pixels` (Bernoulli draws of a Gaussian decoder). */
static int check_pixels(const vae_model *m, vae_render_pixels pixels)
{
    if (pixels == VAE_RENDER_BERNOULLI && m->cfg.likelihood != VAE_LIKELIHOOD_BERNOULLI)
        return vae_set_error("--bernoulli: the model's decoder is Gaussian (sigma %g), not Bernoulli: its pixels "
                             "are not Bernoulli draws (its samples show the means)",
                             (double)m->cfg.sigma);
    return 0;
}

static int grid_cols(int n)
{
    int cols = 1;
    while (cols * cols < n)
        cols++;
    return cols;
}

void vae_render_column_codes(vae_model *m, int cols, uint64_t seed, float *z)
{
    vae_backend *be = m->be;
    const int g = vae_model_gaussian(m), Z = m->latent[g].dim;
    if (cols > m->batch_cap)
        vae_fatal("vae_render_column_codes: %d columns for batches of %d rows", cols, m->batch_cap);
    vae_rng *rng = be->rng_init(be, seed);
    be->rng_normal(be, rng, m->sample[g], vae_rng_normal_count((size_t)cols * Z)); /* one z ~ N(0, I) per column */
    be->download(be, z, m->sample[g], (size_t)cols * Z * sizeof(float));
    be->rng_free(be, rng);
}

/* A model that reads the label, without --label: one row per class, column j decoded from the one
 * z_j (vae_render_column_codes) in every row. */
static int render_class_grid(vae_model *m, const char *path, int cols, uint64_t seed, int scale,
                             const char *const *class_names, vae_render_pixels pixels)
{
    const int D = m->cfg.input_dim, Z = m->cfg.latent_dim, K = m->cfg.classes, n = K * cols;
    float *zs = vae_calloc((size_t)cols * Z, sizeof(float)), *z = vae_calloc((size_t)n * Z, sizeof(float));
    float *img = vae_calloc((size_t)n * D, sizeof(float));
    vae_render_column_codes(m, cols, seed, zs);
    for (int i = 0; i < n; i++) /* cell i: row (class) i / cols, column i % cols */
        memcpy(z + (size_t)i * Z, zs + (size_t)(i % cols) * Z, (size_t)Z * sizeof(float));
    for (int k = 0; k < K; k++) /* a row at a time: vae_pictures_decode takes one label */
        vae_pictures_decode(m, z + (size_t)k * cols * Z, cols, k, NULL, img + (size_t)k * cols * D);
    draw_pixels(img, (size_t)n * D, pixels, seed);
    char (*text)[16] = vae_calloc((size_t)K, sizeof *text); /* each row labelled with its class */
    const char **row_labels = vae_calloc((size_t)K, sizeof *row_labels);
    for (int k = 0; k < K; k++) {
        snprintf(text[k], sizeof text[k], "%d", k);
        row_labels[k] = class_names ? class_names[k] : text[k];
    }
    vae_grid_labels class_rows = {.row_labels = row_labels};
    int rc = vae_image_grid_write_labelled(path, img, n, m->cfg.image_rows, m->cfg.image_cols, cols, scale,
                                           &class_rows);
    vae_free(row_labels);
    vae_free(text);
    vae_free(zs);
    vae_free(z);
    vae_free(img);
    return rc;
}

int vae_render_samples(vae_model *m, const char *path, int n, int label, uint64_t seed, int scale,
                       const char *const *class_names, vae_render_pixels pixels)
{
    vae_backend *be = m->be;
    if (vae_pictures_need_image(&m->cfg, NULL) || check_pixels(m, pixels))
        return -1;
    if (!vae_model_has_prior(m))
        return vae_set_error("the model has no prior to draw z from (a --model ae file: its code is the encoder's "
                             "output): it has no samples; `cuvae reconstruct` decodes the codes of test images");
    const int g = vae_model_gaussian(m), D = m->cfg.input_dim, Z = m->latent[g].dim, cols = grid_cols(n);
    uint8_t *labels = NULL; /* (n) each sample's label, for a model that reads one */
    if (!m->y && label >= 0)
        return vae_set_error("--label %d: the model is not conditional (it reads no label)", label);
    if (m->y) {
        if (label >= m->cfg.classes)
            return vae_set_error("--label %d is out of range: the model has %d classes (0..%d)", label,
                                 m->cfg.classes, m->cfg.classes - 1);
        if (label < 0) /* one row of cols samples per class, z fixed down each column */
            return render_class_grid(m, path, cols < m->batch_cap ? cols : m->batch_cap, seed, scale, class_names,
                                     pixels);
        labels = vae_calloc((size_t)n, 1);
        for (int i = 0; i < n; i++)
            labels[i] = (uint8_t)(label >= 0 ? label : i / cols);
    }
    float *img = vae_calloc((size_t)n * D, sizeof(float));
    vae_rng *rng = be->rng_init(be, seed);
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        vae_model_set_labels(m, labels ? labels + first : NULL, B);
        be->rng_normal(be, rng, m->sample[g], vae_rng_normal_count((size_t)B * Z)); /* z ~ N(0, I) */
        vae_model_set_categories(m, B, NULL); /* a categorical latent, if any: class i % K, uniform */
        vae_model_decode(m, B);
        vae_model_download_mean(m, B, img + (size_t)first * D);
    }
    be->rng_free(be, rng);
    draw_pixels(img, (size_t)n * D, pixels, seed);
    int rc = vae_image_grid_write_scaled(path, img, n, m->cfg.image_rows, m->cfg.image_cols, cols, scale);
    vae_free(img);
    vae_free(labels);
    return rc;
}

int vae_render_category_samples(vae_model *m, const char *path, int n, int category, uint64_t seed, int scale,
                                vae_render_pixels pixels)
{
    vae_backend *be = m->be;
    const int c = vae_model_categorical(m);
    if (c < 0)
        return vae_set_error("the model has no categorical latent (--model joint)");
    if (category < 0 || category >= m->latent[c].dim)
        return vae_set_error("--category %d is out of range: the model has %d categories (0..%d)", category,
                             m->latent[c].dim, m->latent[c].dim - 1);
    if (vae_pictures_need_image(&m->cfg, NULL) || check_pixels(m, pixels))
        return -1;
    const int g = vae_model_gaussian(m), D = m->cfg.input_dim, Z = m->latent[g].dim;
    float *img = vae_calloc((size_t)n * D, sizeof(float));
    int *cats = vae_calloc((size_t)m->batch_cap, sizeof(int));
    for (int i = 0; i < m->batch_cap; i++)
        cats[i] = category;
    vae_rng *rng = be->rng_init(be, seed);
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        be->rng_normal(be, rng, m->sample[g], vae_rng_normal_count((size_t)B * Z)); /* z ~ N(0, I) */
        vae_model_set_categories(m, B, cats);
        vae_model_decode(m, B);
        vae_model_download_mean(m, B, img + (size_t)first * D);
    }
    be->rng_free(be, rng);
    draw_pixels(img, (size_t)n * D, pixels, seed);
    int rc = vae_image_grid_write_scaled(path, img, n, m->cfg.image_rows, m->cfg.image_cols, grid_cols(n), scale);
    vae_free(img);
    vae_free(cats);
    return rc;
}

int vae_render_categories(vae_model *m, const char *path, int cols, uint64_t seed, int scale,
                          vae_render_pixels pixels)
{
    vae_backend *be = m->be;
    const int c = vae_model_categorical(m), g = vae_model_gaussian(m), D = m->cfg.input_dim, Z = m->latent[g].dim;
    if (c < 0)
        return vae_set_error("the model has no categorical latent (--model joint)");
    if (vae_pictures_need_image(&m->cfg, NULL) || check_pixels(m, pixels))
        return -1;
    if (cols > m->batch_cap)
        cols = m->batch_cap;
    const int K = m->latent[c].dim, n = K * cols;
    float *img = vae_calloc((size_t)n * D, sizeof(float)), *zs = vae_calloc((size_t)cols * Z, sizeof(float));
    float *zb = vae_calloc((size_t)m->batch_cap * Z, sizeof(float));
    int *cats = vae_calloc((size_t)m->batch_cap, sizeof(int));
    vae_render_column_codes(m, cols, seed, zs); /* one z ~ N(0, I) per column */
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        for (int r = 0; r < B; r++) { /* grid cell first + r: row = class, column = z */
            cats[r] = (first + r) / cols;
            memcpy(zb + (size_t)r * Z, zs + (size_t)((first + r) % cols) * Z, (size_t)Z * sizeof(float));
        }
        be->upload(be, m->sample[g], zb, (size_t)B * Z * sizeof(float));
        vae_model_set_categories(m, B, cats);
        vae_model_decode(m, B);
        vae_model_download_mean(m, B, img + (size_t)first * D);
    }
    vae_free(zs);
    vae_free(zb);
    vae_free(cats);
    draw_pixels(img, (size_t)n * D, pixels, seed);
    char (*text)[16] = vae_calloc((size_t)K, sizeof *text);
    const char **row_labels = vae_calloc((size_t)K, sizeof *row_labels);
    for (int k = 0; k < K; k++) {
        snprintf(text[k], sizeof text[k], "c = %d", k);
        row_labels[k] = text[k];
    }
    vae_grid_labels category_rows = {.row_labels = row_labels};
    int rc = vae_image_grid_write_labelled(path, img, n, m->cfg.image_rows, m->cfg.image_cols, cols, scale,
                                           &category_rows);
    vae_free(row_labels);
    vae_free(text);
    vae_free(img);
    return rc;
}

/* Rows of the grid alternate: up to 8 test images, then their reconstructions. */
int vae_render_reconstructions(vae_model *m, const vae_dataset *data, const char *path, int n, int scale)
{
    vae_backend *be = m->be;
    const int g = vae_model_code(m), D = m->cfg.input_dim, Z = m->latent[g].dim;
    if (vae_pictures_need_image(&m->cfg, NULL))
        return -1;
    if (n > data->n)
        n = data->n;
    if (data->dim != D)
        return vae_set_error("data has %d pixels per image, the model expects %d", data->dim, D);
    int cols = n < 8 ? n : 8;
    int rows = (n + cols - 1) / cols;
    float *x = vae_calloc((size_t)n * D, sizeof(float));
    float *rec = vae_calloc((size_t)n * D, sizeof(float));
    float *grid = vae_calloc((size_t)2 * rows * cols * D, sizeof(float));
    for (int i = 0; i < n; i++)
        vae_dataset_row(data, i, x + (size_t)i * D);
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        be->upload(be, m->x, x + (size_t)first * D, (size_t)B * D * sizeof(float));
        vae_model_set_labels(m, data->labels ? data->labels + first : NULL, B); /* a cvae's: the true labels */
        if (m->noise[g]) /* a deterministic code has none: z is the code */
            be->memset_zero(be, m->noise[g], (size_t)B * Z * sizeof(float)); /* z = mu */
        vae_model_forward(m, B, 0);
        vae_model_download_mean(m, B, rec + (size_t)first * D);
    }
    for (int i = 0; i < n; i++) {
        int r = i / cols, c = i % cols;
        memcpy(grid + ((size_t)(2 * r) * cols + c) * D, x + (size_t)i * D, D * sizeof(float));
        memcpy(grid + ((size_t)(2 * r + 1) * cols + c) * D, rec + (size_t)i * D, D * sizeof(float));
    }
    const char **row_labels = vae_calloc((size_t)2 * rows, sizeof *row_labels);
    for (int r = 0; r < 2 * rows; r++)
        row_labels[r] = r % 2 ? "reconstruction" : "original";
    vae_grid_labels pairs = {.row_labels = row_labels};
    int rc = vae_image_grid_write_labelled(path, grid, 2 * rows * cols, m->cfg.image_rows, m->cfg.image_cols, cols,
                                           scale, &pairs);
    vae_free(row_labels);
    vae_free(x);
    vae_free(rec);
    vae_free(grid);
    return rc;
}

/* One row per image: the image, then S decodes of z ~ q(z|x) drawn by the model's own forward pass
 * (the backend's generator seeded with seed), as the per-digit picture draws them. */
int vae_render_posterior_samples(vae_model *m, const vae_dataset *data, const char *path, int n, int S, uint64_t seed,
                                 int scale)
{
    const int D = m->cfg.input_dim;
    if (vae_pictures_need_image(&m->cfg, NULL))
        return -1;
    if (!vae_model_has_prior(m))
        return vae_set_error("--posterior-samples: the model has no posterior noise (a --model ae file)");
    if (data->dim != D)
        return vae_set_error("data has %d pixels per image, the model expects %d", data->dim, D);
    if (n > data->n)
        n = data->n;
    float *tiles = vae_calloc((size_t)n * (S + 1) * D, sizeof(float));
    int *idx = vae_calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++)
        idx[i] = i;
    vae_pictures_posterior_tiles(m, data, idx, n, S, seed, tiles);
    vae_free(idx);
    char (*text)[16] = vae_calloc((size_t)S + 1, sizeof *text); /* "x", then the samples 1..S */
    const char **col_labels = vae_calloc((size_t)S + 1, sizeof *col_labels);
    for (int c = 0; c <= S; c++) {
        snprintf(text[c], sizeof text[c], c ? "%d" : "x", c);
        col_labels[c] = text[c];
    }
    vae_grid_labels columns = {.title = "each image x, then decodes of z ~ q(z|x)", .col_labels = col_labels};
    int rc = vae_image_grid_write_labelled(path, tiles, n * (S + 1), m->cfg.image_rows, m->cfg.image_cols, S + 1,
                                           scale, &columns);
    vae_free(col_labels);
    vae_free(text);
    vae_free(tiles);
    return rc;
}
