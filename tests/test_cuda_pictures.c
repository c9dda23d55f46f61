/*
 * test_cuda_pictures.c: the pictures on the GPU against the CPU: the same
 * parameters on both backends encode and decode test images alike (batched,
 * odd counts), and every PNG picture, the per-digit samples included (both
 * backends draw the same Philox noise, bit for bit), agrees pixel for pixel within
 * one grey level. Every case reports as skipped without a GPU.
 */
#define _GNU_SOURCE
#include "image.h"
#include "pictures.h"
#include "render.h"
#include "variant.h"
#include "picture_checks.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vae_backend *cpu, *gpu;
    vae_model mc, mg;
    vae_dataset test;
} pair;

/* The same seeded parameters (PyTorch's init, a 2-D latent) on both backends, batches of 16. */
static void pair_open(pair *p, int latent)
{
    memset(p, 0, sizeof *p);
    tu_make_patterns(&p->test, 45, 77);
    p->cpu = vae_backend_cpu_init();
    p->gpu = vae_backend_cuda_init(0);
    cr_assert_not_null(p->gpu, "%s", vae_last_error());
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = latent;
    cr_assert_eq(vae_config_parse_hidden("24", &c), 0);
    cr_assert_eq(vae_model_init(&p->mc, &c, p->cpu, 16), 0, "%s", vae_last_error());
    cr_assert_eq(vae_model_init(&p->mg, &c, p->gpu, 16), 0, "%s", vae_last_error());
    vae_model_init_params(&p->mc, 21);
    p->gpu->upload(p->gpu, p->mg.params, p->mc.params, p->mc.n_params * sizeof(float)); /* CPU params: host memory */
}

static void pair_close(pair *p)
{
    vae_model_free(&p->mc);
    vae_model_free(&p->mg);
    vae_backend_free(p->cpu);
    vae_backend_free(p->gpu);
    vae_dataset_free(&p->test);
}

Test(cuda_pictures, encode_decode_match_the_cpu)
{
    tu_need_gpu();
    pair p;
    pair_open(&p, 3);
    enum { N = 37 };
    int idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 11) % 45;
    float mu_c[N * 3], lv_c[N * 3], mu_g[N * 3], lv_g[N * 3], pc[N * 64], pg[N * 64];
    vae_pictures_encode(&p.mc, &p.test, idx, N, mu_c, lv_c, NULL);
    vae_pictures_encode(&p.mg, &p.test, idx, N, mu_g, lv_g, NULL);
    cr_expect(tu_allclose("mu", mu_g, mu_c, N * 3, 1e-5, 1e-4));
    cr_expect(tu_allclose("logvar", lv_g, lv_c, N * 3, 1e-5, 1e-4));
    vae_pictures_decode(&p.mc, mu_c, N, -1, NULL, pc);
    vae_pictures_decode(&p.mg, mu_c, N, -1, NULL, pg);
    cr_expect(tu_allclose("probs", pg, pc, N * 64, 1e-5, 1e-4));
    pair_close(&p);
}

Test(cuda_pictures, every_png_matches_the_cpu)
{
    tu_need_gpu();
    pair p;
    pair_open(&p, 2);
    char dc[1024], dg[1024];
    snprintf(dc, sizeof dc, "%s", tu_tmpdir());
    snprintf(dg, sizeof dg, "%s", tu_tmpdir());
    vae_pictures_options o = {.scale = 1, .seed = 3, .metrics_csv = NULL, .log = NULL};
    cr_assert_eq(vae_pictures_write_all(&p.mc, &p.test, dc, &o), 6, "%s", vae_last_error());
    cr_assert_eq(vae_pictures_write_all(&p.mg, &p.test, dg, &o), 6, "%s", vae_last_error());
    for (int k = 0; k < VAE_PICTURES_N; k++) {
        const char *name = vae_pictures[k].file;
        if (!strstr(name, ".png"))
            continue;
        char a[2048], b[2048];
        snprintf(a, sizeof a, "%s/%s", dc, name);
        snprintf(b, sizeof b, "%s/%s", dg, name);
        uint8_t *pa, *pb;
        int wa, ha, wb, hb;
        cr_assert_eq(vae_png_read_gray(a, &pa, &wa, &ha), 0, "%s", vae_last_error());
        cr_assert_eq(vae_png_read_gray(b, &pb, &wb, &hb), 0, "%s", vae_last_error());
        cr_assert(wa == wb && ha == hb, "%s: %dx%d on the CPU, %dx%d on the GPU", name, wa, ha, wb, hb);
        int worst = 0, at = 0;
        for (int i = 0; i < wa * ha; i++) {
            int d = abs((int)pa[i] - (int)pb[i]);
            if (d > worst) {
                worst = d;
                at = i;
            }
        }
        cr_expect(worst <= 1, "%s: pixel (%d, %d) is %d on the CPU, %d on the GPU", name, at % wa, at / wa, pa[at],
                  pb[at]);
        vae_free(pa);
        vae_free(pb);
    }
    pair_close(&p);
}

/* The joint model's traversals and interpolation decode with the code of their image, as its
 * reconstruction does, on the GPU (test_pictures checks the CPU). */
/* Two grid PNGs agree pixel for pixel: the means within one grey level; Bernoulli pixels exactly,
 * but for a draw u that falls between the two backends' means (at most 2 pixels here, where the
 * means differ by about 1e-6). */
static void expect_png_close(const char *what, const char *a, const char *b, vae_render_pixels pixels)
{
    uint8_t *pa, *pb;
    int wa, ha, wb, hb;
    cr_assert_eq(vae_png_read_gray(a, &pa, &wa, &ha), 0, "%s", vae_last_error());
    cr_assert_eq(vae_png_read_gray(b, &pb, &wb, &hb), 0, "%s", vae_last_error());
    cr_assert(wa == wb && ha == hb, "%s: %dx%d on the CPU, %dx%d on the GPU", what, wa, ha, wb, hb);
    int worst = 0, flips = 0;
    for (int i = 0; i < wa * ha; i++) {
        worst = abs(pa[i] - pb[i]) > worst ? abs(pa[i] - pb[i]) : worst;
        flips += pa[i] != pb[i];
    }
    if (pixels == VAE_RENDER_BERNOULLI)
        cr_expect_leq(flips, 2, "%s: %d Bernoulli pixels differ between the CPU and the GPU", what, flips);
    else
        cr_expect_leq(worst, 1, "%s: a pixel differs by %d grey levels", what, worst);
    vae_free(pa);
    vae_free(pb);
}

/* The sample grids of a saved model's own kinds on the GPU: a joint model's samples of one category
 * (sample --category) and its category grid (sample --categories), and a cvae's class grid (z fixed
 * down each column, conditioned on the decoder alone): the same pixels as the CPU's within one grey
 * level (the same Philox draws on both). */
Test(cuda_pictures, category_and_class_grids_match_the_cpu)
{
    tu_need_gpu();
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = vae_backend_cuda_init(0);
    cr_assert_not_null(gpu, "%s", vae_last_error());
    for (int kind = 0; kind < 2; kind++) {
        vae_config c;
        vae_config_default(&c);
        c.input_dim = 64;
        c.image_rows = c.image_cols = 8;
        c.latent_dim = 3;
        cr_assert_eq(vae_config_parse_hidden("24", &c), 0);
        c.variant = vae_variant_find(kind ? "cvae" : "joint");
        c.disc = 4;
        if (kind) {
            c.classes = 3;
            c.condition = VAE_CONDITION_DECODER;
        }
        vae_model mc, mg;
        cr_assert_eq(vae_model_init(&mc, &c, cpu, 16), 0, "%s", vae_last_error());
        cr_assert_eq(vae_model_init(&mg, &c, gpu, 16), 0, "%s", vae_last_error());
        vae_model_init_params(&mc, 31);
        gpu->upload(gpu, mg.params, mc.params, mc.n_params * sizeof(float));
        const char *dir = tu_tmpdir();
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/cpu.png", dir);
        snprintf(b, sizeof b, "%s/gpu.png", dir);
        for (int px = VAE_RENDER_MEANS; px <= VAE_RENDER_BERNOULLI; px++) {
            const vae_render_pixels pixels = (vae_render_pixels)px;
            if (kind == 0) {
                cr_assert_eq(vae_render_category_samples(&mc, a, 21, 2, 5, 1, pixels), 0, "%s", vae_last_error());
                cr_assert_eq(vae_render_category_samples(&mg, b, 21, 2, 5, 1, pixels), 0, "%s", vae_last_error());
                expect_png_close("samples of category 2", a, b, pixels);
                cr_assert_eq(vae_render_categories(&mc, a, 5, 5, 1, pixels), 0, "%s", vae_last_error());
                cr_assert_eq(vae_render_categories(&mg, b, 5, 5, 1, pixels), 0, "%s", vae_last_error());
                expect_png_close("the category grid", a, b, pixels);
            } else {
                cr_assert_eq(vae_render_samples(&mc, a, 16, -1, 5, 1, NULL, pixels), 0, "%s", vae_last_error());
                cr_assert_eq(vae_render_samples(&mg, b, 16, -1, 5, 1, NULL, pixels), 0, "%s", vae_last_error());
                expect_png_close("the class grid", a, b, pixels);
            }
        }
        vae_model_free(&mc);
        vae_model_free(&mg);
    }
    vae_backend_free(cpu);
    vae_backend_free(gpu);
}

/* The autoencoder's pictures on the GPU (test_pictures checks the CPU): no prior drawn from, its
 * codes decoded through every path to the same pixels. */
Test(cuda_pictures, ae_pictures_decode_its_codes_and_skip_the_prior)
{
    tu_need_gpu();
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_not_null(be, "%s", vae_last_error());
    tu_check_ae_pictures(be);
    vae_backend_free(be);
}

Test(cuda_pictures, joint_pictures_decode_with_their_images_code)
{
    tu_need_gpu();
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_not_null(be, "%s", vae_last_error());
    tu_check_joint_pictures_decode_their_code(be);
    vae_backend_free(be);
}

/* The manifold's linear grid, the posterior cloud, the sampled scatter and the draws behind them on
 * the GPU (test_pictures checks the CPU). */
Test(cuda_pictures, linear_manifold_posterior_cloud_and_draws)
{
    tu_need_gpu();
    vae_backend *be = vae_backend_cuda_init(0);
    cr_assert_not_null(be, "%s", vae_last_error());
    tu_check_latent_pictures(be);
    vae_backend_free(be);
}

/* The posterior draws of the cloud and the sampled scatter: the CPU's numbers on the GPU (the same
 * Philox noise), over a batch boundary (37 images x 3 draws in batches of 16), and a 3-D latent. */
Test(cuda_pictures, posterior_draws_match_the_cpu)
{
    tu_need_gpu();
    pair p;
    pair_open(&p, 3);
    enum { N = 37, S = 3 };
    int idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 7) % 45;
    float zc[N * S * 3], zg[N * S * 3];
    vae_pictures_posterior_draws(&p.mc, &p.test, idx, N, S, 17, zc);
    vae_pictures_posterior_draws(&p.mg, &p.test, idx, N, S, 17, zg);
    cr_expect(tu_allclose("posterior draws", zg, zc, N * S * 3, 1e-5, 1e-4));
    pair_close(&p);
}
