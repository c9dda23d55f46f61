/*
 * test_pictures.c: the pictures of a trained model (pictures.h): the inverse
 * normal CDF against known quantiles, the PCA against a hand case, every
 * picture written by a tiny model trained in-process on 8x8 patterns (PNG
 * sizes read back, SVGs well-formed, the manifold only for a 2-D latent),
 * identical bytes for the same model and seed, the scaled grids, and the
 * `cuvae plot` command with its usage errors and a missing model.
 */
#define _GNU_SOURCE
#include "data_source.h"
#include "evaluate.h"
#include "image.h"
#include "pictures.h"
#include "run_dir.h"
#include "picture_checks.h"
#include "testutil.h"
#include "train.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- numerics -------------------------------------------------------------------------- */

Test(pictures, inverse_normal_cdf_known_values)
{
    static const struct {
        double p, x;
    } known[] = { /* Python's statistics.NormalDist().inv_cdf (Wichura's AS241) */
        {0.5, 0},
        {0.975, 1.959963984540054},
        {0.025, -1.959963984540054},
        {0.8413447460685429, 1.0}, /* Phi(1) */
        {0.001, -3.090232306167813},
        {0.999, 3.090232306167813},
        {1e-10, -6.361340902404056},
        {0.02425, -1.9729610513118845}, /* at the switch between Acklam's regions */
        {0.3, -0.5244005127080407},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        double x = vae_inv_normal_cdf(known[i].p);
        cr_expect(fabs(x - known[i].x) <= 1e-12 * (1 + fabs(known[i].x)), "Phi^-1(%g) = %.17g, expected %.17g",
                  known[i].p, x, known[i].x);
    }
    /* Phi(Phi^-1(p)) = p across (0, 1), the tails included */
    for (int k = 1; k < 1000; k++) {
        double p = k / 1000.0, q = pow(10, -k / 50.0);
        double x = vae_inv_normal_cdf(p), y = vae_inv_normal_cdf(q);
        cr_expect(fabs(0.5 * erfc(-x / sqrt(2.0)) - p) <= 1e-14, "round trip at p = %g", p);
        cr_expect(fabs(0.5 * erfc(-y / sqrt(2.0)) - q) <= 1e-13 * q, "round trip at p = %g", q);
    }
    cr_expect(isinf(vae_inv_normal_cdf(0)) && vae_inv_normal_cdf(0) < 0);
    cr_expect(isinf(vae_inv_normal_cdf(1)) && vae_inv_normal_cdf(1) > 0);
    cr_expect(isnan(vae_inv_normal_cdf(-0.1)) && isnan(vae_inv_normal_cdf(1.5)) && isnan(vae_inv_normal_cdf(NAN)));
}

Test(pictures, pca_hand_case)
{
    /* points t * (1, 2, 0) + s * (0, 0, 1), t and s uncorrelated with mean 0, shifted by (5, -1, 3) */
    const double t[5] = {-2, -1, 0, 1, 2}, s[5] = {0.1, -0.1, 0, -0.1, 0.1};
    double x[15], proj[10], comp[6], var[2];
    for (int i = 0; i < 5; i++) {
        x[3 * i] = 5 + t[i];
        x[3 * i + 1] = -1 + 2 * t[i];
        x[3 * i + 2] = 3 + s[i];
    }
    vae_pca2(x, 5, 3, proj, comp, var);
    const double r5 = sqrt(5.0);
    const double want_comp[6] = {1 / r5, 2 / r5, 0, 0, 0, 1};
    cr_expect(tu_allclose_d("components", comp, want_comp, 6, 1e-12, 0), "components");
    const double want_var[2] = {5 * 2.5, 0.01}; /* 5 var(t), var(s), both with n - 1 */
    cr_expect(tu_allclose_d("variances", var, want_var, 2, 1e-12, 1e-12), "variances");
    for (int i = 0; i < 5; i++) {
        cr_expect(fabs(proj[2 * i] - r5 * t[i]) < 1e-12, "PC1 of point %d: %g", i, proj[2 * i]);
        cr_expect(fabs(proj[2 * i + 1] - s[i]) < 1e-12, "PC2 of point %d: %g", i, proj[2 * i + 1]);
    }
    /* the sign convention: the largest entry of each component is positive, whatever the data's sign */
    for (int i = 0; i < 15; i++)
        x[i] = -x[i];
    vae_pca2(x, 5, 3, proj, comp, var);
    cr_expect(tu_allclose_d("components of -x", comp, want_comp, 6, 1e-12, 0), "components of -x");
    for (int i = 0; i < 5; i++)
        cr_expect(fabs(proj[2 * i] + r5 * t[i]) < 1e-12, "PC1 of -x at point %d", i);
    /* one dimension: the second projection is 0 */
    double one[4] = {1, 2, 3, 4}, p1[8];
    vae_pca2(one, 4, 1, p1, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        cr_expect(fabs(p1[2 * i] - (one[i] - 2.5)) < 1e-12);
        cr_expect_eq(p1[2 * i + 1], 0.0);
    }
}

Test(pictures, every_picture_is_a_run_file)
{
    for (int k = 0; k < VAE_PICTURES_N; k++) {
        int found = 0;
        for (int i = 0; i < VAE_RUN_N_FILES; i++)
            found |= strcmp(vae_run_files[i], vae_pictures[k].file) == 0;
        cr_expect(found, "%s is not in vae_run_files: --force and --resume would not treat it as the run's",
                  vae_pictures[k].file);
        cr_expect(vae_pictures[k].caption && strlen(vae_pictures[k].caption) > 10);
    }
}

Test(pictures, grids_scale_each_pixel)
{
    const char *dir = tu_tmpdir();
    float img[2 * 4] = {0, 1, 0.5f, 0, 1, 1, 1, 1}; /* two 2x2 images */
    char path[1024];
    snprintf(path, sizeof path, "%s/g.png", dir);
    cr_assert_eq(vae_image_grid_write_scaled(path, img, 2, 2, 2, 2, 3), 0, "%s", vae_last_error());
    uint8_t *px;
    int w, h;
    cr_assert_eq(vae_png_read_gray(path, &px, &w, &h), 0, "%s", vae_last_error());
    cr_expect_eq(w, 3 * (2 * (2 + 2) + 2));
    cr_expect_eq(h, 3 * (2 + 2 + 2));
    /* the image's pixel (0, 1) = 255 sits at (3, 2) of the unscaled grid: a 3x3 block from (9, 6) */
    for (int y = 6; y < 9; y++)
        for (int x = 9; x < 12; x++)
            cr_expect_eq(px[y * w + x], 255, "(%d, %d)", x, y);
    cr_expect_eq(px[6 * w + 8], 0, "pixel (0, 0) of the first image is black");
    cr_expect_eq(px[0], VAE_GRID_BORDER_VALUE);
    vae_free(px);
    cr_expect_eq(vae_image_grid_write_scaled(path, img, 2, 2, 2, 2, 0), -1);
    cr_expect_eq(vae_image_grid_write_scaled(path, img, 2, 2, 2, 2, 65), -1);
}

/* ---- a tiny trained model ------------------------------------------------------------- */

typedef struct {
    vae_backend *be;
    vae_model m;
    vae_dataset train, test;
} tiny;

static void tiny_train(tiny *t, int latent)
{
    memset(t, 0, sizeof *t);
    tu_make_patterns(&t->train, 240, 3);
    tu_make_patterns(&t->test, 60, 1003);
    t->be = vae_backend_cpu_init();
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = latent;
    cr_assert_eq(vae_config_parse_hidden("24", &c), 0);
    cr_assert_eq(vae_model_init(&t->m, &c, t->be, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&t->m, 5);
    vae_device_data dtr, dte;
    vae_device_data_init(&dtr, t->be, &t->train);
    vae_device_data_init(&dte, t->be, &t->test);
    volatile sig_atomic_t stop = 0;
    vae_train_options o = {.epochs = 3, .batch_size = 16,
                           .adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
                           .seed = 5, .progress = -1, .log = NULL, .stop = &stop};
    vae_trainer *tr = vae_trainer_init(&t->m, &o);
    vae_epoch_metrics e;
    for (int ep = 1; ep <= 3; ep++)
        cr_assert_eq(vae_trainer_epoch(tr, &dtr, &dte, ep, &e), 0);
    vae_trainer_free(tr);
    vae_device_data_free(&dtr, t->be);
    vae_device_data_free(&dte, t->be);
}

static void tiny_free(tiny *t)
{
    vae_model_free(&t->m);
    vae_backend_free(t->be);
    vae_dataset_free(&t->train);
    vae_dataset_free(&t->test);
}

static const char metrics_csv[] = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,"
                                  "images_per_second\n"
                                  "1,40.5,38.0,2.5,39.0,36.9,2.1,0.1,1000\n"
                                  "2,30.5,27.0,3.5,31.0,27.9,3.1,0.1,1000\n";

/* A grid PNG whose grid of tiles is w x h pixels with at least one bright pixel; labelled: with text
 * (black pixels) in the margins around the grid, else nothing but the grid. */
static void expect_png(const char *dir, const char *name, int w, int h, int labelled)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *px;
    int gw, gh, x0, y0, grid_w = 0;
    cr_assert_eq(vae_png_read_gray(path, &px, &gw, &gh), 0, "%s", vae_last_error());
    tu_grid_origin(px, gw, gh, &x0, &y0);
    while (x0 + grid_w < gw && px[(size_t)(gh - 1) * gw + x0 + grid_w] == VAE_GRID_BORDER_VALUE)
        grid_w++;
    cr_expect(grid_w == w && gh - y0 == h, "%s: its grid is %dx%d, expected %dx%d", name, grid_w, gh - y0, w, h);
    int lit = 0, text = 0;
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            int in_grid = x >= x0 && x < x0 + grid_w && y >= y0;
            lit += in_grid && px[(size_t)y * gw + x] > 128;
            text += !in_grid && px[(size_t)y * gw + x] == 0;
        }
    cr_expect(lit > 0, "%s has no bright pixel", name);
    if (labelled)
        cr_expect(text > 0, "%s has no labels around its grid", name);
    else
        cr_expect(gw == w && gh == h, "%s is %dx%d: more than its grid (%dx%d)", name, gw, gh, w, h);
    vae_free(px);
}

static void expect_well_formed_svg(const char *dir, const char *name)
{
    char out[4096], cmd[4096];
    if (tu_run("python3 -c 'import xml.etree.ElementTree'", out, sizeof out) != 0)
        cr_skip_test("python3 with xml.etree is not available: %s", out);
    snprintf(cmd, sizeof cmd, "python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' %s/%s", dir,
             name);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "%s is not well-formed XML: %s", name, out);
}

/* Every picture of a model with `latent` dimensions, at scale 2; returns the directory. */
static const char *write_pictures(tiny *t, uint64_t seed)
{
    const char *dir = tu_tmpdir();
    char csv[1024];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    tu_write_file(csv, metrics_csv, strlen(metrics_csv));
    vae_pictures_options o = {.scale = 2, .seed = seed, .metrics_csv = csv, .log = NULL};
    int n = vae_pictures_write_all(&t->m, &t->test, dir, &o);
    cr_assert_geq(n, 0, "%s", vae_last_error());
    cr_expect_eq(n, t->m.cfg.latent_dim == 2 ? 7 : 6, "%d pictures written", n);
    return dir;
}

static void expect_all(const char *dir, int latent)
{
    const int s = 2; /* 8x8 tiles, 2-pixel borders: a grid of c columns is (10 c + 2) * s wide */
    expect_png(dir, "traversals.png", (10 * VAE_PICTURES_TRAVERSAL_STEPS + 2) * s, (10 * latent + 2) * s, 1);
    expect_png(dir, "interpolation.png", (10 * (VAE_PICTURES_INTERP_STEPS + 2) + 2) * s, 12 * s, 1);
    /* labels 0, 1, 2 in the pattern set: three rows of an original and its samples */
    expect_png(dir, "per_digit.png", (10 * (VAE_PICTURES_PER_DIGIT + 1) + 2) * s, 32 * s, 1);
    if (latent == 2)
        expect_png(dir, "manifold.png", (10 * VAE_PICTURES_MANIFOLD_SIDE + 2) * s,
                   (10 * VAE_PICTURES_MANIFOLD_SIDE + 2) * s, 1);
    else
        cr_expect(!tu_exists_in(dir, "manifold.png"), "a manifold for a %d-D latent", latent);
    expect_well_formed_svg(dir, "latent_scatter.svg");
    expect_well_formed_svg(dir, "loss_curves.svg");
    expect_well_formed_svg(dir, "posterior_cloud.svg");
    size_t n;
    char *svg = tu_slurp_in(dir, "latent_scatter.svg", &n);
    cr_assert_not_null(svg, "%s/latent_scatter.svg is missing", dir);
    cr_expect(strstr(svg, latent <= 2 ? "z1 (posterior mean)" : "PC1 ("), "axis label of a %d-D latent", latent);
    if (latent == 1)
        cr_expect(strstr(svg, ">label</text>"), "a 1-D latent is drawn against the label");
    cr_expect(strstr(svg, ">0</text>") && strstr(svg, ">2</text>") && !strstr(svg, ">3</text>"),
              "legend of labels 0..2");
    size_t points = 0;
    for (const char *p = strstr(svg, "r=\"2.5\""); p; p = strstr(p + 1, "r=\"2.5\""))
        points++;
    cr_expect_eq(points, 60, "one point per test image");
    free(svg);
    svg = tu_slurp_in(dir, "loss_curves.svg", &n);
    cr_assert_not_null(svg, "%s/loss_curves.svg is missing", dir);
    cr_expect(strstr(svg, ">KL term per epoch</text>") && strstr(svg, ">train</text>") && strstr(svg, ">test</text>"));
    free(svg);
}

Test(pictures, two_d_latent_writes_all_six)
{
    tiny t;
    tiny_train(&t, 2);
    expect_all(write_pictures(&t, 1), 2);
    tiny_free(&t);
}

Test(pictures, three_d_latent_no_manifold_pca_scatter)
{
    tiny t;
    tiny_train(&t, 3);
    expect_all(write_pictures(&t, 1), 3);
    tiny_free(&t);
}

Test(pictures, one_d_latent_against_the_label)
{
    tiny t;
    tiny_train(&t, 1);
    expect_all(write_pictures(&t, 1), 1);
    tiny_free(&t);
}

Test(pictures, same_model_and_seed_same_bytes)
{
    tiny t;
    tiny_train(&t, 2);
    char a[1024];
    snprintf(a, sizeof a, "%s", write_pictures(&t, 7));
    const char *b = write_pictures(&t, 7);
    for (int k = 0; k < VAE_PICTURES_N; k++) {
        size_t na, nb;
        char *fa = tu_slurp_in(a, vae_pictures[k].file, &na), *fb = tu_slurp_in(b, vae_pictures[k].file, &nb);
        cr_assert(fa && fb, "%s is missing", vae_pictures[k].file);
        cr_expect(na == nb && memcmp(fa, fb, na) == 0, "%s differs between two writes", vae_pictures[k].file);
        free(fa);
        free(fb);
    }
    /* another seed changes the per-digit samples, and nothing else */
    const char *c = write_pictures(&t, 8);
    for (int k = 0; k < VAE_PICTURES_N; k++) {
        size_t na, nc;
        char *fa = tu_slurp_in(a, vae_pictures[k].file, &na), *fc = tu_slurp_in(c, vae_pictures[k].file, &nc);
        cr_assert(fa && fc, "%s is missing", vae_pictures[k].file);
        int same = na == nc && memcmp(fa, fc, na) == 0;
        const int seeded = k == VAE_PICTURE_PER_DIGIT || k == VAE_PICTURE_POSTERIOR_CLOUD; /* draws of q(z|x) */
        cr_expect(same == !seeded, "%s: seed 7 and 8 %s", vae_pictures[k].file, same ? "agree" : "differ");
        free(fa);
        free(fc);
    }
    tiny_free(&t);
}

/* The joint model's traversals and interpolation decode with the code of their image, as its
 * reconstruction does (they once kept whatever categorical sample the previous pass left). */
Test(pictures, joint_pictures_decode_with_their_images_code)
{
    vae_backend *be = vae_backend_cpu_init();
    tu_check_joint_pictures_decode_their_code(be);
    vae_backend_free(be);
}

/* The autoencoder (--model ae) has no prior: samples are refused, the manifold and the per-digit
 * samples skipped with the reason; the pictures of its codes decode the code itself. */
Test(pictures, ae_pictures_decode_its_codes_and_skip_the_prior)
{
    vae_backend *be = vae_backend_cpu_init();
    tu_check_ae_pictures(be);
    vae_backend_free(be);
}

/* The manifold's linear grid, the posterior cloud, the sampled scatter and the draws behind them. */
Test(pictures, linear_manifold_corners_posterior_cloud_and_draws)
{
    vae_backend *be = vae_backend_cpu_init();
    tu_check_latent_pictures(be);
    vae_backend_free(be);
}

/* The loss panel says "negative ELBO" only at beta 1: the reported loss is recon + beta kl. Any
 * model draws its curves, in nats per its rows' unit. */
Test(pictures, loss_curves_title_follows_beta)
{
    const char *dir = tu_tmpdir();
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    const char text[] = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds,images_per_second\n"
                        "1,3.5,1.5,1.0,3.0,1.0,1.0,0.1,10\n2,2.5,1.0,0.75,2.0,0.8,0.6,0.1,10\n";
    tu_write_file(csv, text, strlen(text));
    cr_assert_eq(vae_pictures_loss_curves(csv, dir, 1.0, "image"), 1, "%s", vae_last_error());
    char *svg = tu_slurp_in(dir, "loss_curves.svg", NULL);
    cr_expect(strstr(svg, "Loss (negative ELBO) per epoch") && strstr(svg, "nats per image"), "%s", svg);
    free(svg);
    cr_assert_eq(vae_pictures_loss_curves(csv, dir, 2.0, "value"), 1, "%s", vae_last_error());
    svg = tu_slurp_in(dir, "loss_curves.svg", NULL);
    cr_expect(!strstr(svg, "negative ELBO") && strstr(svg, "recon + 2 kl") && strstr(svg, "nats per value"), "%s",
              svg);
    free(svg);
    char none[4200];
    snprintf(none, sizeof none, "%s/none.csv", dir);
    cr_expect_eq(vae_pictures_loss_curves(none, dir, 1.0, "image"), 0, "a missing metrics.csv");
}

Test(pictures, encode_decode_batched_like_one_by_one)
{
    tiny t;
    tiny_train(&t, 3); /* batch_cap 16: 37 images take three batches */
    int idx[37];
    for (int i = 0; i < 37; i++)
        idx[i] = (i * 7) % 60;
    float mu[37 * 3], lv[37 * 3], mu1[3], lv1[3], probs[37 * 64], p1[64];
    vae_pictures_encode(&t.m, &t.test, idx, 37, mu, lv, NULL);
    vae_pictures_decode(&t.m, mu, 37, -1, NULL, probs);
    /* Alone, each row gives the same numbers up to the GEMM's rounding for another batch size. */
    for (int i = 0; i < 37; i += 9) {
        vae_pictures_encode(&t.m, &t.test, &idx[i], 1, mu1, lv1, NULL);
        cr_expect(tu_allclose("mu alone", mu1, mu + 3 * i, 3, 1e-5, 1e-5), "image %d encodes differently alone", i);
        cr_expect(tu_allclose("logvar alone", lv1, lv + 3 * i, 3, 1e-5, 1e-5), "image %d", i);
        vae_pictures_decode(&t.m, mu + 3 * i, 1, -1, NULL, p1);
        cr_expect(tu_allclose("probs alone", p1, probs + 64 * i, 64, 1e-5, 1e-5), "code %d decodes differently", i);
    }
    /* and the rows are in order: image 0 and image 1 differ */
    cr_expect(memcmp(mu, mu + 3, sizeof mu1) != 0);
    tiny_free(&t);
}

/* ---- the command ------------------------------------------------------------------------ */

static char out[65536];

/* The cuvae binary with args (a plain string, not a format); its output goes to out. */
#define cuvae(args) tu_cuvae(out, sizeof out, "%s", (args))

Test(pictures, plot_command)
{
    char data[512], run[600], args[2048], other[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 120, 30, 11);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(other, sizeof other, "%s/other", data);

    cr_expect_eq(cuvae("plot"), 2, "%s", out);
    cr_expect(strstr(out, "--model PATH is required"), "%s", out);
    cr_expect_eq(cuvae("plot --model m --scale 0"), 2, "%s", out);
    cr_expect(strstr(out, "--scale: 0 is out of range"), "%s", out);
    cr_expect_eq(cuvae("plot --model m --scale 65"), 2, "%s", out);
    cr_expect_eq(cuvae("plot --model m --bogus"), 2, "%s", out);
    cr_expect(strstr(out, "unknown option '--bogus'"), "%s", out);
    cr_expect_eq(cuvae("plot --model m --device gpu"), 2, "%s", out);
    static const struct {
        const char *args, *says;
    } bad[] = {
        {"--manifold-range 0", "--manifold-range: 0 is out of range"},
        {"--manifold-range 1001", "--manifold-range: 1001 is out of range"},
        {"--manifold-range wide", "--manifold-range"},
        {"--manifold-size 1", "--manifold-size: 1 is out of range"},
        {"--manifold-size 51", "--manifold-size: 51 is out of range"},
        {"--scatter mean", "--scatter: 'mean' is neither means nor samples"},
        {"--scatter-images 0", "--scatter-images: 0 is out of range"},
        {"--cloud-images 11", "--cloud-images: 11 is out of range"},
        {"--cloud-images 0", "--cloud-images: 0 is out of range"},
        {"--cloud-samples 0", "--cloud-samples: 0 is out of range"},
        {"--cloud-samples 10001", "--cloud-samples: 10001 is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "plot --model m %s", bad[i].args);
        cr_expect_eq(cuvae(args), 2, "%s: %s", bad[i].args, out);
        cr_expect(strstr(out, bad[i].says), "%s: %s", bad[i].args, out);
    }
    cr_expect_eq(cuvae("train --scale 0"), 2, "%s", out);
    cr_expect(strstr(out, "--scale: 0 is out of range"), "%s", out);
    snprintf(args, sizeof args, "plot --model %s/missing.safetensors --device cpu", data);
    cr_expect_eq(cuvae(args), 1, "%s", out);
    cr_expect(strstr(out, "missing.safetensors"), "the missing model is not named: %s", out);

    /* train leaves every picture, grids at the default scale 3 */
    snprintf(args, sizeof args,
             "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --lr 3e-3 --out %s --device cpu "
             "--quiet",
             data, run);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    for (int k = 0; k < VAE_PICTURES_N; k++)
        cr_expect(tu_exists_in(run, vae_pictures[k].file), "train did not write %s", vae_pictures[k].file);
    expect_png(run, "samples.png", 3 * (8 * 10 + 2), 3 * (8 * 10 + 2), 0);      /* 64 samples, 8 columns */
    expect_png(run, "reconstructions.png", 3 * (8 * 10 + 2), 3 * (8 * 10 + 2), 1); /* 30 images: 4 rows of 8, twice */
    expect_png(run, "manifold.png", 3 * 202, 3 * 202, 1);

    /* plot writes them again elsewhere, at another scale; the loss curves from the model's metrics.csv */
    snprintf(args, sizeof args, "plot --model %s/model.safetensors --data %s --out %s --scale 1 --device cpu", run,
             data, other);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 7 pictures"), "%s", out);
    for (int k = 0; k < VAE_PICTURES_N; k++)
        cr_expect(tu_exists_in(other, vae_pictures[k].file), "plot did not write %s", vae_pictures[k].file);
    expect_png(other, "manifold.png", 202, 202, 1);
    /* the default --out is the model's directory; the data set recorded in the model is used */
    snprintf(args, sizeof args, "plot --model %s/model.safetensors --device cpu", run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "recorded in the model"), "%s", out);
    /* a model without a metrics.csv beside it: the loss curves are skipped, saying so */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp %s/model.safetensors %s/m.safetensors", run, other);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(cmd, sizeof cmd, "rm %s/loss_curves.svg", other);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "plot --model %s/m.safetensors --data %s --device cpu", other, data);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 6 pictures") && strstr(out, "no metrics.csv"), "%s", out);
    cr_expect(!tu_exists_in(other, "loss_curves.svg"));
    /* --force removes the pictures with the rest of the run */
    snprintf(args, sizeof args,
             "train --data %s --epochs 1 --batch-size 16 --hidden 24 --latent 3 --out %s --force --device cpu --quiet",
             data, run);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(!tu_exists_in(run, "manifold.png"), "the 2-D run's manifold survived --force");
    /* flags the 3-D model cannot honour: one usage error naming the flag, nothing written */
    snprintf(args, sizeof args, "plot --model %s --out %s/three --manifold-range 2 --device cpu", run, data);
    cr_expect_eq(cuvae(args), 2, "%s", out);
    cr_expect(strstr(out, "--manifold-range: ") && strstr(out, "has a 3-D latent"), "%s", out);
    snprintf(args, sizeof args, "plot --model %s --out %s/three --manifold-size 9 --device cpu", run, data);
    cr_expect_eq(cuvae(args), 2, "%s", out);
    cr_expect(strstr(out, "--manifold-size: ") && strstr(out, "has a 3-D latent"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/three", data);
    cr_expect(!tu_exists_in(cmd, "latent_scatter.svg"), "a refused plot wrote pictures");
    /* the sampled scatter, the cloud's sizes and the scatter's count from the CLI, on the 3-D model */
    snprintf(args, sizeof args,
             "plot --model %s --out %s/three --scatter samples --scatter-images 11 --cloud-images 3 "
             "--cloud-samples 5 --device cpu",
             run, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    char *svg = tu_slurp_in(cmd, "latent_scatter.svg", NULL);
    cr_expect(svg && strstr(svg, "One draw of q(z|x) per test image, on the means&apos; first two PCs (11 images)"),
              "%s", svg ? svg : "no scatter");
    free(svg);
    svg = tu_slurp_in(cmd, "posterior_cloud.svg", NULL);
    cr_expect(svg && strstr(svg, "5 draws of q(z|x) for each of 3 test images (the means&apos; first two PCs)"), "%s",
              svg ? svg : "no cloud");
    free(svg);
}

/* ---- labels ------------------------------------------------------------------------------- */

/* Traversal rows name their dimension's KL over the test images and whether it is active, the
 * same numbers `cuvae eval` reports (vae_eval_report over the same images). */
Test(pictures, traversal_labels_are_evals_kl_and_activity)
{
    tiny t;
    tiny_train(&t, 5);
    const int Z = 5;
    /* dimension 2 made inactive: its mean and log-variance rows of the encoder's head zeroed */
    const vae_linear *H = &t.m.lin[t.m.latent[vae_model_gaussian(&t.m)].stats_layer];
    for (int r = 2; r < 2 * Z; r += Z) {
        memset(t.m.params + H->w_off + (size_t)r * H->in, 0, (size_t)H->in * sizeof(float));
        t.m.params[H->b_off + r] = 0.0f;
    }
    double kl[5];
    int active[5];
    vae_pictures_dimension_kl(&t.m, &t.test, kl, active);
    vae_device_data d;
    vae_device_data_init(&d, t.be, &t.test);
    vae_eval_options opt = {.iw_samples = 0, .seed = 1};
    vae_eval_result r;
    cr_assert_eq(vae_eval_report(&t.m, &d, &opt, &r), 0, "%s", vae_last_error());
    for (int j = 0; j < Z; j++) {
        cr_expect(fabs(kl[j] - r.kl_dim[j]) <= 1e-5 * (1 + fabs(r.kl_dim[j])), "z%d: KL %.8g, eval says %.8g", j + 1,
                  kl[j], r.kl_dim[j]);
        cr_expect_eq(active[j], r.active[j], "z%d: active %d, eval says %d", j + 1, active[j], r.active[j]);
    }
    cr_expect_eq(active[2], 0, "the zeroed dimension is active");
    cr_expect_eq(kl[2], 0.0);
    char label[48];
    vae_pictures_dimension_label(2, kl[2], active[2], label, sizeof label);
    cr_expect_str_eq(label, "z3 KL 0.00 inactive");
    vae_pictures_dimension_label(0, 12.345, 1, label, sizeof label);
    cr_expect_str_eq(label, "z1 KL 12.35");
    vae_eval_result_free(&r);
    vae_device_data_free(&d, t.be);
    tiny_free(&t);
}

/* Fashion-MNIST's labels are recognised (by their digest) and named in the latent scatter's
 * legend; a subset of them is not, and keeps the numbers. */
Test(pictures, fashion_mnist_classes_are_named)
{
    const char *dir = tu_tmpdir();
    tu_write_patterns_idx(dir, 60, 10000, 7); /* the test split: 10,000 images, as Fashion-MNIST's */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm %s/t10k-labels-idx1-ubyte && cp %s/tests/data/fashion-mnist/t10k-labels-idx1-ubyte.gz %s/",
             dir, CUVAE_SOURCE_DIR, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    vae_dataset test;
    cr_assert_eq(vae_data_source_of(dir)->load_split(dir, NULL, VAE_SPLIT_TEST, &test), 0, "%s", vae_last_error());
    cr_assert_not_null(test.class_names, "Fashion-MNIST's test labels were not recognised");
    char num[16];
    cr_expect_str_eq(vae_dataset_class_name(&test, 0, num), "T-shirt/top");
    cr_expect_str_eq(vae_dataset_class_name(&test, 9, num), "Ankle boot");
    tiny t;
    tiny_train(&t, 2);
    vae_pictures_options o = {.scale = 1, .seed = 1};
    const char *pics = tu_tmpdir();
    cr_assert_geq(vae_pictures_write_all(&t.m, &test, pics, &o), 0, "%s", vae_last_error());
    size_t n;
    char *svg = tu_slurp_in(pics, "latent_scatter.svg", &n);
    cr_expect(strstr(svg, "Ankle boot") && strstr(svg, "T-shirt/top"), "the legend does not name the classes");
    free(svg);
    /* the first 1,000 of them: another digest, no names */
    const char *sub = tu_tmpdir();
    tu_write_patterns_idx(sub, 60, 1000, 7);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import gzip, struct, sys; b = gzip.open(sys.argv[1]).read(); "
             "open(sys.argv[2], \"wb\").write(struct.pack(\">II\", 0x801, 1000) + b[8:1008])' "
             "%s/tests/data/fashion-mnist/t10k-labels-idx1-ubyte.gz %s/t10k-labels-idx1-ubyte",
             CUVAE_SOURCE_DIR, sub);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    vae_dataset part;
    cr_assert_eq(vae_data_source_of(sub)->load_split(sub, NULL, VAE_SPLIT_TEST, &part), 0, "%s", vae_last_error());
    cr_expect_eq(part.classes, 10);
    cr_expect_null(part.class_names, "a subset of Fashion-MNIST's labels was named");
    cr_expect_str_eq(vae_dataset_class_name(&part, 3, num), "3");
    vae_dataset_free(&part);
    tiny_free(&t);
    vae_dataset_free(&test);
}
