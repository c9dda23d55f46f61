/*
 * picture_checks.c: see picture_checks.h.
 */
#define _GNU_SOURCE
#include "picture_checks.h"

#include "image.h"
#include "pictures.h"
#include "plot.h"
#include "render.h"
#include "testutil.h"
#include "vae_util.h"
#include "variant.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tu_grid_png tu_read_grid(const char *dir, const char *name)
{
    char path[4200];
    tu_grid_png g;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(vae_png_read_gray(path, &g.px, &g.width, &g.height), 0, "%s", vae_last_error());
    tu_grid_origin(g.px, g.width, g.height, &g.x0, &g.y0);
    return g;
}

void tu_grid_tile(const tu_grid_png *g, int row, int col, uint8_t *out)
{
    const int x0 = g->x0 + VAE_GRID_BORDER + col * (8 + VAE_GRID_BORDER),
              y0 = g->y0 + VAE_GRID_BORDER + row * (8 + VAE_GRID_BORDER);
    for (int y = 0; y < 8; y++)
        memcpy(out + y * 8, g->px + (size_t)(y0 + y) * g->width + x0, 8);
}

/* The checks' model: variant `variant` (vae, ae, joint, ...) on the 8x8 patterns, one hidden layer
 * of 24, a latent of `latent` dimensions. */
static void small_config(vae_config *c, const char *variant, int latent)
{
    vae_config_default(c);
    c->variant = vae_variant_find(variant);
    cr_assert_not_null(c->variant, "no variant %s", variant);
    c->input_dim = 64;
    c->image_rows = c->image_cols = 8;
    c->latent_dim = latent;
    cr_assert_eq(vae_config_parse_hidden("24", c), 0);
}

/* manifold.png in dir (scale 1, side S, linear over [-R, R]^2) holds at its corners and centre the
 * library's decode of those points, each pixel within one grey level; and the corners differ. */
static void expect_linear_manifold(vae_model *m, const char *dir, float R, int S)
{
    const float pts[5][2] = {{-R, R}, {R, R}, {-R, -R}, {R, -R}, {0, 0}}; /* (z1, z2) */
    const int at[5][2] = {{0, 0}, {0, S - 1}, {S - 1, 0}, {S - 1, S - 1}, {S / 2, S / 2}}; /* (row, col) */
    const int n = S % 2 ? 5 : 4; /* the centre (0, 0) is a grid point of an odd side only */
    float probs[5 * 64];
    vae_pictures_decode(m, &pts[0][0], n, -1, NULL, probs);
    tu_grid_png g = tu_read_grid(dir, "manifold.png");
    int grid_w = 0; /* the grid's bottom border, from its origin */
    while (g.x0 + grid_w < g.width && g.px[(size_t)(g.height - 1) * g.width + g.x0 + grid_w] == VAE_GRID_BORDER_VALUE)
        grid_w++;
    cr_expect_eq(grid_w, S * (8 + VAE_GRID_BORDER) + VAE_GRID_BORDER, "the manifold is not %d tiles wide", S);
    uint8_t tile[5][64];
    for (int k = 0; k < n; k++) {
        tu_grid_tile(&g, at[k][0], at[k][1], tile[k]);
        int worst = 0, worst_p = 0;
        for (int p = 0; p < 64; p++) {
            int lib = (int)lrintf(probs[k * 64 + p] * 255.0f), d = abs(lib - (int)tile[k][p]);
            if (d > worst) {
                worst = d;
                worst_p = p;
            }
        }
        cr_expect_leq(worst, 1, "manifold tile (%d, %d) is not the decode of (%g, %g): pixel %d differs by %d",
                      at[k][0], at[k][1], pts[k][0], pts[k][1], worst_p, worst);
    }
    int apart = 0;
    for (int k = 1; k < 4; k++)
        for (int p = 0; p < 64; p++)
            apart |= abs((int)tile[k][p] - (int)tile[0][p]) > 2;
    cr_expect(apart, "the manifold's corners are all the same pixels: the check would not see a flipped axis");
    vae_free(g.px);
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

void tu_check_latent_pictures(vae_backend *be)
{
    vae_dataset test;
    tu_make_patterns(&test, 24, 611);
    vae_config c;
    small_config(&c, "vae", 2);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 12);
    const char *dir = tu_tmpdir();
    enum { N = 4, K = 7, SCATTER = 17, SIDE = 5 };
    vae_pictures_options o = {.scale = 1, .seed = 5, .manifold_range = 2.5, .manifold_side = SIDE,
                              .scatter_samples = 1, .scatter_images = SCATTER, .cloud_images = N, .cloud_samples = K};
    cr_assert_eq(vae_pictures_write_all(&m, &test, dir, &o), 6, "%s", vae_last_error());
    expect_linear_manifold(&m, dir, 2.5f, SIDE);

    char *cloud = tu_slurp_in(dir, "posterior_cloud.svg", NULL);
    cr_assert_not_null(cloud, "no posterior_cloud.svg");
    cr_expect_eq(count_of(cloud, "r=\"2.5\""), N * K, "the cloud does not hold %d x %d points", N, K);
    for (int i = 0; i < N; i++) {
        char point[64], legend[32];
        snprintf(point, sizeof point, "r=\"2.5\" fill=\"%s\"", vae_plot_color(i));
        cr_expect_eq(count_of(cloud, point), K, "image %d's colour holds %d points, not %d", i + 1,
                     count_of(cloud, point), K);
        snprintf(legend, sizeof legend, ">image %d (%d)<", i + 1, test.labels[i]);
        cr_expect(strstr(cloud, legend), "the legend does not name %s", legend);
    }
    cr_expect(strstr(cloud, "7 draws of q(z|x) for each of 4 test images"), "the cloud's title");
    free(cloud);
    char *scatter = tu_slurp_in(dir, "latent_scatter.svg", NULL);
    cr_assert_not_null(scatter);
    cr_expect_eq(count_of(scatter, "r=\"2.5\""), SCATTER, "the sampled scatter is not one point per image");
    cr_expect(strstr(scatter, "One draw of q(z|x) per test image (17 images)"), "the sampled scatter's title");
    free(scatter);

    /* the draws: about each image's mean with its deviation; the same for the same seed */
    enum { DRAWS = 4000 };
    int idx[2] = {3, 9};
    float mu[4], lv[4], *z = vae_calloc(2 * DRAWS * 2, sizeof(float));
    float *again = vae_calloc(2 * DRAWS * 2, sizeof(float));
    vae_pictures_encode(&m, &test, idx, 2, mu, lv, NULL);
    vae_pictures_posterior_draws(&m, &test, idx, 2, DRAWS, 9, z);
    vae_pictures_posterior_draws(&m, &test, idx, 2, DRAWS, 9, again);
    cr_expect(memcmp(z, again, sizeof(float) * 2 * DRAWS * 2) == 0, "the same seed draws differently");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double s = 0, s2 = 0, sd = exp(0.5 * lv[i * 2 + j]);
            for (int k = 0; k < DRAWS; k++) {
                double v = z[((size_t)i * DRAWS + k) * 2 + j];
                s += v;
                s2 += v * v;
            }
            double mean = s / DRAWS, dev = sqrt((s2 - s * s / DRAWS) / (DRAWS - 1));
            cr_expect(fabs(mean - mu[i * 2 + j]) < 5 * sd / sqrt(DRAWS), "image %d z%d: draws' mean %g, mu %g", idx[i],
                      j + 1, mean, mu[i * 2 + j]);
            cr_expect(fabs(dev / sd - 1) < 0.1, "image %d z%d: draws' deviation %g, sigma %g", idx[i], j + 1, dev, sd);
        }
    vae_free(z);
    vae_free(again);
    vae_model_free(&m);
    vae_dataset_free(&test);
}

void tu_check_joint_pictures_decode_their_code(vae_backend *be)
{
    vae_dataset test;
    tu_make_patterns(&test, 24, 515);
    vae_config c;
    small_config(&c, "joint", 3);
    c.disc = 4;
    int codes_apart = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
        vae_model_init_params(&m, seed);
        const char *dir = tu_tmpdir();
        char path[4200];
        snprintf(path, sizeof path, "%s/reconstructions.png", dir);
        cr_assert_eq(vae_render_reconstructions(&m, &test, path, 8, 1), 0, "%s", vae_last_error());
        int cats[24], idx[24];
        float mu[24 * 3], lv[24 * 3];
        for (int i = 0; i < 24; i++)
            idx[i] = i;
        vae_pictures_encode(&m, &test, idx, 24, mu, lv, cats);
        for (int i = 1; i < 24; i++)
            codes_apart |= cats[i] != cats[0];
        /* what a previous pass may leave: every row of the categorical sample another class */
        int other[16];
        for (int i = 0; i < 16; i++)
            other[i] = (cats[0] + 1 + i % 3) % 4;
        vae_model_set_categories(&m, 16, other);
        vae_pictures_options o = {.scale = 1, .seed = seed};
        cr_assert_geq(vae_pictures_write_all(&m, &test, dir, &o), 0, "%s", vae_last_error());
        tu_grid_png rec = tu_read_grid(dir, "reconstructions.png"), trav = tu_read_grid(dir, "traversals.png"),
                 interp = tu_read_grid(dir, "interpolation.png");
        uint8_t want[64], got[64];
        tu_grid_tile(&rec, 1, 0, want); /* the first image's reconstruction, under the originals' row */
        for (int r = 0; r < 3; r++) {
            tu_grid_tile(&trav, r, VAE_PICTURES_TRAVERSAL_STEPS / 2, got);
            cr_expect(memcmp(got, want, 64) == 0,
                      "seed %llu: traversal row %d's middle column is not the image's reconstruction (c = %d)",
                      (unsigned long long)seed, r, cats[0]);
        }
        tu_grid_tile(&interp, 0, 1, got);
        cr_expect(memcmp(got, want, 64) == 0,
                  "seed %llu: interpolation's first frame is not the image's reconstruction (c = %d)",
                  (unsigned long long)seed, cats[0]);
        /* its last frame: the other end (test image 1, the first of another label) at its own code */
        tu_grid_tile(&rec, 1, 1, want);
        tu_grid_tile(&interp, 0, VAE_PICTURES_INTERP_STEPS, got);
        cr_expect(memcmp(got, want, 64) == 0,
                  "seed %llu: interpolation's last frame is not the second image's reconstruction (c = %d)",
                  (unsigned long long)seed, cats[1]);
        vae_free(rec.px);
        vae_free(trav.px);
        vae_free(interp.px);
        vae_model_free(&m);
    }
    cr_expect(codes_apart, "every test image has the same argmax q(c|x): the check would not see a wrong code");
    vae_dataset_free(&test);
}

void tu_check_ae_pictures(vae_backend *be)
{
    vae_dataset test;
    tu_make_patterns(&test, 24, 516);
    vae_config c;
    small_config(&c, "ae", 2);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&m, 7);
    const char *dir = tu_tmpdir();
    char path[4200], *log = NULL;
    size_t log_len = 0;
    snprintf(path, sizeof path, "%s/samples.png", dir);
    cr_expect_eq(vae_render_samples(&m, path, 16, -1, 1, 1, NULL, VAE_RENDER_MEANS), -1,
                 "an autoencoder has no prior to sample");
    cr_expect(strstr(vae_last_error(), "no prior to draw z from"), "%s", vae_last_error());
    cr_expect_not(tu_exists(path));
    snprintf(path, sizeof path, "%s/reconstructions.png", dir);
    cr_assert_eq(vae_render_reconstructions(&m, &test, path, 8, 1), 0, "%s", vae_last_error());
    FILE *f = open_memstream(&log, &log_len);
    vae_pictures_options o = {.scale = 1, .seed = 1, .log = f};
    cr_assert_eq(vae_pictures_write_all(&m, &test, dir, &o), 3, "%s", vae_last_error());
    fclose(f);
    cr_expect(strstr(log, "skipped manifold.png: the model has no prior") &&
                  strstr(log, "skipped per_digit.png: the model has no prior") &&
                  strstr(log, "skipped posterior_cloud.svg: the model has no prior"),
              "%s", log);
    cr_expect(tu_exists_in(dir, "latent_scatter.svg") && tu_exists_in(dir, "traversals.png") &&
                  tu_exists_in(dir, "interpolation.png") && !tu_exists_in(dir, "manifold.png") &&
                  !tu_exists_in(dir, "per_digit.png") && !tu_exists_in(dir, "posterior_cloud.svg"),
              "%s", log);
    char scatter[4200];
    snprintf(scatter, sizeof scatter, "%s/latent_scatter.svg", dir);
    cr_expect(tu_file_has(scatter, "Latent codes (24 test images)"), "the scatter says it shows codes");
    free(log);
    /* the code decoded is the same pixels through the reconstruction, the traversal's middle and the
     * interpolation's ends, and is the library's decode of the library's encoding */
    int idx[2] = {0, 1};
    float mu[4], lv[4], probs[2 * 64];
    vae_pictures_encode(&m, &test, idx, 2, mu, lv, NULL);
    cr_expect(isinf(lv[0]) && lv[0] < 0, "a deterministic code's logvar is log 0");
    vae_pictures_decode(&m, mu, 2, -1, NULL, probs);
    tu_grid_png rec = tu_read_grid(dir, "reconstructions.png"), trav = tu_read_grid(dir, "traversals.png"),
             interp = tu_read_grid(dir, "interpolation.png");
    uint8_t want[64], got[64];
    for (int k = 0; k < 2; k++) {
        tu_grid_tile(&rec, 1, k, want);
        for (int p = 0; p < 64; p++) { /* the PNG's grey level of the library's decode */
            const uint8_t lib = (uint8_t)lrintf(probs[k * 64 + p] * 255.0f);
            cr_expect(abs((int)lib - (int)want[p]) <= 1, "image %d pixel %d: reconstruction %d, decode %d", k, p,
                      want[p], lib);
        }
        tu_grid_tile(&interp, 0, k ? VAE_PICTURES_INTERP_STEPS : 1, got);
        cr_expect(memcmp(got, want, 64) == 0, "interpolation's %s frame is not image %d's reconstruction",
                  k ? "last" : "first", k);
    }
    tu_grid_tile(&rec, 1, 0, want);
    for (int r = 0; r < 2; r++) {
        tu_grid_tile(&trav, r, VAE_PICTURES_TRAVERSAL_STEPS / 2, got);
        cr_expect(memcmp(got, want, 64) == 0, "traversal row %d's middle column is not the reconstruction", r);
    }
    vae_free(rec.px);
    vae_free(trav.px);
    vae_free(interp.px);
    /* a linear grid needs no prior: the code plane decoded, corner by corner */
    vae_pictures_options lin = {.scale = 1, .seed = 1, .manifold_range = 3, .manifold_side = 4};
    cr_assert_eq(vae_pictures_write_all(&m, &test, dir, &lin), 4, "%s", vae_last_error());
    expect_linear_manifold(&m, dir, 3.0f, 4);
    vae_model_free(&m);
    vae_dataset_free(&test);
}
