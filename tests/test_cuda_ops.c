/*
 * test_cuda_ops.c: every op of the CUDA backend (kernels/) against the CPU
 * backend (src/cpu_backend.c), the reference, on identical seeded inputs with
 * odd shapes that are not multiples of any block size; then bit-identical
 * reruns on the GPU, graph capture and replay against eager runs, and the
 * misuse that must be fatal.
 *
 * Every buffer is followed by a guard region that must come back untouched
 * (a write past the end), and every output that an op writes (rather than
 * accumulates into) starts as NaN, so an element never written fails the
 * comparison. Tolerances are stated per op, as atol + rtol * |cpu|.
 *
 * Without a GPU (this project's CI), every test that needs one is skipped
 * through Criterion with the reason ("no CUDA device: ..."), never passed;
 * the tests of the no-GPU path itself run and must pass.
 *
 * The no-GPU path itself (init failing with a reason, --device auto taking the
 * CPU) is tested in test_backend.c, which runs everywhere.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "evaluate.h"
#include "testutil.h"
#include "vae_util.h"

TestSuite(cuda_init);
TestSuite(cuda_ops);
TestSuite(cuda_determinism);
TestSuite(cuda_graph);

/* Tolerances, |gpu - cpu| <= atol + rtol |cpu|. */
#define TOL_ELEMENTWISE 1e-5, 1e-5 /* one rounding or one libm ulp apart */
#define TOL_GEMM 1e-4, 1e-4        /* summation order differs (OpenBLAS vs cuBLAS) */
#define TOL_COLSUM 1e-4, 1e-5      /* dbias: sums over up to 129 rows, other order */
#define TOL_LOSS_ROW 1e-4, 1e-4    /* sums over D = 785 columns, other order */
/* Random numbers have no tolerance: both backends run include/philox.h, so they must be equal bit for bit. */
#define TOL_ACC_D 1e-9, 1e-9       /* double sums of the same floats */

static const int ROWS[] = {1, 5, 37, 129};
static const int COLS[] = {7, 13, 257, 785};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- backends ---------------------------------------------------------------- */

typedef struct {
    vae_backend *cpu; /* the reference */
    vae_backend *gpu; /* under test */
} pair;

static pair pair_init(void)
{
    pair p;
    p.gpu = tu_cuda_backend();
    p.cpu = vae_backend_cpu_init();
    return p;
}

static void pair_free(pair *p)
{
    vae_backend_free(p->gpu);
    vae_backend_free(p->cpu);
}

/* ---- host buffers ----------------------------------------------------------- */

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    cr_assert_not_null(p, "malloc(%zu)", bytes);
    return p;
}

static float *rand_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = xmalloc(n * sizeof *x);
    tu_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static float *nan_floats(size_t n)
{
    float *x = xmalloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

/* ---- guarded backend buffers --------------------------------------------------- */

#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5

/* A backend buffer of `bytes` holding `init` (zeros when NULL), followed by
 * GUARD_BYTES bytes of GUARD_BYTE. */
static void *gbuf_new(vae_backend *be, const void *init, size_t bytes)
{
    unsigned char *stage = xmalloc(bytes + GUARD_BYTES);
    if (init)
        memcpy(stage, init, bytes);
    else
        memset(stage, 0, bytes);
    memset(stage + bytes, GUARD_BYTE, GUARD_BYTES);
    void *p = be->buffer_alloc(be, bytes + GUARD_BYTES);
    be->upload(be, p, stage, bytes + GUARD_BYTES);
    free(stage);
    return p;
}

/* Download the `bytes` of p into out; fail if any guard byte after them changed. */
static void gbuf_get(vae_backend *be, void *out, const void *p, size_t bytes, const char *what)
{
    unsigned char *stage = xmalloc(bytes + GUARD_BYTES);
    be->download(be, stage, p, bytes + GUARD_BYTES);
    for (size_t i = 0; i < GUARD_BYTES; i++)
        cr_assert(stage[bytes + i] == GUARD_BYTE, "%s on %s: written past the end (guard byte %zu is 0x%02x)",
                  what, be->name, i, stage[bytes + i]);
    memcpy(out, stage, bytes);
    free(stage);
}

/* The same data on both backends. */
typedef struct {
    void *cpu, *gpu;
    size_t bytes;
} twin;

static twin twin_new(const pair *p, const void *init, size_t bytes)
{
    twin t;
    t.cpu = gbuf_new(p->cpu, init, bytes);
    t.gpu = gbuf_new(p->gpu, init, bytes);
    t.bytes = bytes;
    return t;
}

static void twin_free(const pair *p, twin *t)
{
    p->cpu->buffer_free(p->cpu, t->cpu);
    p->gpu->buffer_free(p->gpu, t->gpu);
}

/* Both sides' floats, GPU against the CPU reference. */
static int twin_expect_close(const pair *p, const twin *t, const char *what, double atol, double rtol)
{
    size_t n = t->bytes / sizeof(float);
    float *ref = xmalloc(t->bytes), *got = xmalloc(t->bytes);
    gbuf_get(p->cpu, ref, t->cpu, t->bytes, what);
    gbuf_get(p->gpu, got, t->gpu, t->bytes, what);
    int ok = tu_allclose(what, got, ref, n, atol, rtol);
    cr_expect(ok, "%s: %s differs from cpu beyond atol %g + rtol %g |ref| (worst element printed above)", what,
              p->gpu->name, atol, rtol);
    free(ref);
    free(got);
    return ok;
}

/* Both sides' bytes, equal; the first difference is reported. */
static int twin_expect_equal(const pair *p, const twin *t, const char *what)
{
    size_t n = t->bytes / sizeof(float);
    float *ref = xmalloc(t->bytes), *got = xmalloc(t->bytes);
    gbuf_get(p->cpu, ref, t->cpu, t->bytes, what);
    gbuf_get(p->gpu, got, t->gpu, t->bytes, what);
    size_t i = 0;
    while (i < n && memcmp(&ref[i], &got[i], sizeof *ref) == 0)
        i++;
    cr_expect(i == n, "%s: %s differs from cpu at element %zu of %zu: %.9g, cpu %.9g", what, p->gpu->name, i, n,
              i < n ? got[i] : 0.0, i < n ? ref[i] : 0.0);
    free(ref);
    free(got);
    return i == n;
}

Test(cuda_init, table_is_complete)
{
    vae_backend *be = tu_cuda_backend();
    cr_assert_str_eq(be->name, "cuda");
    cr_assert(be->graph_capture_begin && be->graph_capture_end && be->graph_launch && be->graph_free);
    cr_assert(be->device_name[0] != '\0', "empty device name");
    cr_assert(be->buffer_alloc && be->buffer_free && be->upload && be->download && be->memset_zero &&
              be->synchronize && be->destroy);
    cr_assert(be->rng_init && be->rng_free && be->rng_reset && be->rng_normal && be->rng_uniform);
    cr_assert(be->gemm && be->bias_act_forward && be->bias_act_backward && be->reparam_forward &&
              be->reparam_backward && be->loss_bce_kl && be->loss_accumulate && be->adam_step &&
              be->gather_batch && be->gumbel_softmax_forward && be->gumbel_softmax_backward &&
              be->gauss_log_ratio);
    cr_assert(be->check_finite && be->grad_clip_scale);
    cr_log_info("device: %s", be->device_name);
    vae_backend_free(be);
}

/* ---- memory ------------------------------------------------------------------ */

Test(cuda_ops, alloc_is_zeroed_and_memset_zero_and_roundtrip)
{
    vae_backend *be = tu_cuda_backend();
    const size_t n = 1000003;
    unsigned char *host = xmalloc(n);
    float *p = be->buffer_alloc(be, n);
    be->download(be, host, p, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(host[i], 0, "buffer_alloc not zero-filled at byte %zu", i);
    for (size_t i = 0; i < n; i++)
        host[i] = (unsigned char)(i * 131u + 7u);
    be->upload(be, p, host, n);
    unsigned char *back = xmalloc(n);
    be->download(be, back, p, n);
    cr_assert(memcmp(host, back, n) == 0, "upload/download roundtrip differs");
    be->memset_zero(be, (unsigned char *)p + 13, n - 26);
    be->download(be, back, p, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char want = (i < 13 || i >= n - 13) ? host[i] : 0;
        cr_assert_eq(back[i], want, "memset_zero: byte %zu is %u, want %u", i, back[i], want);
    }
    be->synchronize(be);
    be->buffer_free(be, p);
    free(host);
    free(back);
    vae_backend_free(be);
}

/* ---- random numbers ------------------------------------------------------------- */

Test(cuda_ops, rng_matches_cpu_and_reset_reproduces)
{
    pair p = pair_init();
    const uint64_t seed = 20240611u;
    vae_rng *rc = p.cpu->rng_init(p.cpu, seed), *rg = p.gpu->rng_init(p.gpu, seed);
    /* Sizes that leave Philox's blocks of four part-used between calls. */
    const struct {
        int normal;
        size_t n;
    } calls[] = {{1, 4096}, {0, 7}, {1, 2}, {0, 1000003}, {1, 130}, {0, 1}, {1, 1000002}};
    float *first = NULL;
    for (int k = 0; k < COUNT(calls); k++) {
        size_t n = calls[k].n;
        float *poison = nan_floats(n);
        twin t = twin_new(&p, poison, n * sizeof(float));
        char what[96];
        snprintf(what, sizeof what, "rng call %d: %s n=%zu", k, calls[k].normal ? "normal" : "uniform", n);
        if (calls[k].normal) {
            p.cpu->rng_normal(p.cpu, rc, t.cpu, n);
            p.gpu->rng_normal(p.gpu, rg, t.gpu, n);
            twin_expect_equal(&p, &t, what);
        } else {
            p.cpu->rng_uniform(p.cpu, rc, t.cpu, n);
            p.gpu->rng_uniform(p.gpu, rg, t.gpu, n);
            twin_expect_equal(&p, &t, what);
            float *u = xmalloc(n * sizeof *u);
            gbuf_get(p.gpu, u, t.gpu, n * sizeof *u, what);
            for (size_t i = 0; i < n; i++)
                cr_assert(u[i] > 0.0f && u[i] <= 1.0f, "%s: u[%zu] = %g outside (0, 1]", what, i, u[i]);
            free(u);
        }
        if (k == 0) {
            first = xmalloc(n * sizeof *first);
            gbuf_get(p.gpu, first, t.gpu, n * sizeof *first, what);
        }
        twin_free(&p, &t);
        free(poison);
    }

    /* Back to the seed's first number: the first draw again, bit for bit. */
    p.cpu->rng_reset(p.cpu, rc);
    p.gpu->rng_reset(p.gpu, rg);
    size_t n0 = calls[0].n;
    float *poison = nan_floats(n0);
    twin t = twin_new(&p, poison, n0 * sizeof(float));
    p.cpu->rng_normal(p.cpu, rc, t.cpu, n0);
    p.gpu->rng_normal(p.gpu, rg, t.gpu, n0);
    twin_expect_equal(&p, &t, "rng normal after reset");
    float *again = xmalloc(n0 * sizeof *again);
    gbuf_get(p.gpu, again, t.gpu, n0 * sizeof *again, "rng after reset");
    cr_expect(memcmp(again, first, n0 * sizeof *again) == 0, "rng_reset did not reproduce the first draw on %s",
              p.gpu->name);

    /* A different seed gives different numbers. */
    vae_rng *other = p.gpu->rng_init(p.gpu, seed + 1);
    p.gpu->rng_normal(p.gpu, other, t.gpu, n0);
    gbuf_get(p.gpu, again, t.gpu, n0 * sizeof *again, "rng other seed");
    cr_expect(memcmp(again, first, n0 * sizeof *again) != 0, "seeds %llu and %llu gave the same numbers",
              (unsigned long long)seed, (unsigned long long)seed + 1);
    p.gpu->rng_free(p.gpu, other);

    twin_free(&p, &t);
    free(poison);
    free(again);
    free(first);
    p.cpu->rng_free(p.cpu, rc);
    p.gpu->rng_free(p.gpu, rg);
    pair_free(&p);
}

Test(cuda_ops, rng_offset_roundtrip_follows_the_cpu)
{
    pair p = pair_init();
    const uint64_t seed = 0xfedcba9876543210ull, o = (1ull << 34) + 3; /* high halves in use, odd offset */
    vae_rng *rc = p.cpu->rng_init(p.cpu, seed), *rg = p.gpu->rng_init(p.gpu, seed);
    p.cpu->rng_set_offset(p.cpu, rc, o);
    p.gpu->rng_set_offset(p.gpu, rg, o);
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), o);
    const size_t n = 1001; /* odd: the normals after it start mid-block */
    float *poison = nan_floats(n + 1);
    twin t = twin_new(&p, poison, (n + 1) * sizeof(float));
    p.cpu->rng_uniform(p.cpu, rc, t.cpu, n);
    p.gpu->rng_uniform(p.gpu, rg, t.gpu, n);
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), o + n);
    p.cpu->rng_normal(p.cpu, rc, t.cpu, n + 1);
    p.gpu->rng_normal(p.gpu, rg, t.gpu, n + 1);
    twin_expect_equal(&p, &t, "rng normal at offset 2^34 + 3 + 1001");
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), p.cpu->rng_get_offset(p.cpu, rc));
    twin_free(&p, &t);
    free(poison);
    p.cpu->rng_free(p.cpu, rc);
    p.gpu->rng_free(p.gpu, rg);
    pair_free(&p);
}

/* ---- gemm ------------------------------------------------------------------------ */

Test(cuda_ops, gemm_all_transposes_odd_shapes_and_strides)
{
    pair p = pair_init();
    const int shapes[][3] = {{1, 7, 13},    {5, 13, 7},     {37, 257, 129}, {129, 785, 37},
                             {128, 784, 400}, {5, 1, 785}, {257, 129, 1}};
    uint64_t seed = 100;
    for (int s = 0; s < COUNT(shapes); s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int with_beta = 0; with_beta < 2; with_beta++) {
                    const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    /* Leading dimensions above the minimum, so padding must be skipped and kept. */
                    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                    const size_t a_n = (size_t)(ta ? K : M) * lda, b_n = (size_t)(tb ? N : K) * ldb;
                    const size_t c_n = (size_t)M * ldc;
                    const float alpha = 0.7f, beta = with_beta ? 0.3f : 0.0f;
                    float *a = rand_floats(a_n, seed++, -1.0f, 1.0f);
                    float *b = rand_floats(b_n, seed++, -1.0f, 1.0f);
                    float *c = rand_floats(c_n, seed++, -1.0f, 1.0f);
                    if (!with_beta) /* beta = 0: C is not read; its padding must survive */
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++)
                                c[(size_t)i * ldc + j] = NAN;
                    twin A = twin_new(&p, a, a_n * sizeof(float)), B = twin_new(&p, b, b_n * sizeof(float));
                    twin C = twin_new(&p, c, c_n * sizeof(float));
                    p.cpu->gemm(p.cpu, ta, tb, M, N, K, alpha, A.cpu, lda, B.cpu, ldb, beta, C.cpu, ldc);
                    p.gpu->gemm(p.gpu, ta, tb, M, N, K, alpha, A.gpu, lda, B.gpu, ldb, beta, C.gpu, ldc);
                    char what[128];
                    snprintf(what, sizeof what, "gemm ta=%d tb=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d beta=%g",
                             ta, tb, M, N, K, lda, ldb, ldc, beta);
                    twin_expect_close(&p, &C, what, TOL_GEMM);
                    /* The padding columns of C are untouched on the GPU. */
                    float *got = xmalloc(c_n * sizeof *got);
                    gbuf_get(p.gpu, got, C.gpu, c_n * sizeof *got, what);
                    for (int i = 0; i < M; i++)
                        for (int j = N; j < ldc; j++)
                            cr_assert(memcmp(&got[(size_t)i * ldc + j], &c[(size_t)i * ldc + j], sizeof(float)) == 0,
                                      "%s: padding C[%d][%d] written", what, i, j);
                    free(got);
                    twin_free(&p, &A);
                    twin_free(&p, &B);
                    twin_free(&p, &C);
                    free(a);
                    free(b);
                    free(c);
                }
    pair_free(&p);
}

/* ---- bias + activation -------------------------------------------------------------- */

static const char *act_name(vae_act act)
{
    return act == VAE_ACT_RELU ? "relu" : act == VAE_ACT_TANH ? "tanh" : "none";
}

Test(cuda_ops, bias_act_forward_matches_cpu)
{
    pair p = pair_init();
    uint64_t seed = 200;
    for (int a = 0; a < 3; a++)
        for (int r = 0; r < COUNT(ROWS); r++)
            for (int c = 0; c < COUNT(COLS); c++) {
                const vae_act act = (vae_act)a;
                const int B = ROWS[r], N = COLS[c];
                const size_t n = (size_t)B * N;
                float *y = rand_floats(n, seed++, -2.0f, 2.0f), *bias = rand_floats((size_t)N, seed++, -1.0f, 1.0f);
                twin Y = twin_new(&p, y, n * sizeof(float)), Bias = twin_new(&p, bias, (size_t)N * sizeof(float));
                p.cpu->bias_act_forward(p.cpu, Y.cpu, Bias.cpu, B, N, act);
                p.gpu->bias_act_forward(p.gpu, Y.gpu, Bias.gpu, B, N, act);
                char what[96];
                snprintf(what, sizeof what, "bias_act_forward %s B=%d N=%d", act_name(act), B, N);
                twin_expect_close(&p, &Y, what, TOL_ELEMENTWISE);
                twin_expect_close(&p, &Bias, "bias (input, unchanged)", 0.0, 0.0);
                twin_free(&p, &Y);
                twin_free(&p, &Bias);
                free(y);
                free(bias);
            }
    pair_free(&p);
}

Test(cuda_ops, bias_act_backward_matches_cpu_separate_and_in_place)
{
    pair p = pair_init();
    uint64_t seed = 300;
    const int rows[] = {1, 5, 37, 129, 1000};
    for (int in_place = 0; in_place < 2; in_place++)
        for (int a = 0; a < 3; a++)
            for (int r = 0; r < COUNT(rows); r++)
                for (int c = 0; c < COUNT(COLS); c++) {
                    const vae_act act = (vae_act)a;
                    const int B = rows[r], N = COLS[c];
                    const size_t n = (size_t)B * N;
                    float *dy = rand_floats(n, seed++, -1.0f, 1.0f);
                    float *y = rand_floats(n, seed++, -0.99f, 0.99f); /* a tanh output */
                    if (act == VAE_ACT_RELU)                        /* a relu output: exact zeros */
                        for (size_t i = 0; i < n; i++)
                            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
                    float *dbias = rand_floats((size_t)N, seed++, -1.0f, 1.0f); /* accumulated into */
                    float *poison = nan_floats(n);
                    twin DY = twin_new(&p, dy, n * sizeof(float)), Y = twin_new(&p, y, n * sizeof(float));
                    twin DB = twin_new(&p, dbias, (size_t)N * sizeof(float));
                    twin DX = twin_new(&p, poison, n * sizeof(float));
                    twin *out = in_place ? &DY : &DX;
                    p.cpu->bias_act_backward(p.cpu, out->cpu, DB.cpu, DY.cpu, Y.cpu, B, N, act);
                    p.gpu->bias_act_backward(p.gpu, out->gpu, DB.gpu, DY.gpu, Y.gpu, B, N, act);
                    char what[112];
                    snprintf(what, sizeof what, "bias_act_backward %s B=%d N=%d%s: dx", act_name(act), B, N,
                             in_place ? " (dx aliases dy)" : "");
                    twin_expect_close(&p, out, what, TOL_ELEMENTWISE);
                    snprintf(what, sizeof what, "bias_act_backward %s B=%d N=%d%s: dbias", act_name(act), B, N,
                             in_place ? " (dx aliases dy)" : "");
                    twin_expect_close(&p, &DB, what, TOL_COLSUM);
                    twin_free(&p, &DY);
                    twin_free(&p, &Y);
                    twin_free(&p, &DB);
                    twin_free(&p, &DX);
                    free(dy);
                    free(y);
                    free(dbias);
                    free(poison);
                }
    pair_free(&p);
}

/* ---- reparameterisation ------------------------------------------------------------ */

Test(cuda_ops, reparam_forward_backward_match_cpu)
{
    pair p = pair_init();
    uint64_t seed = 400;
    const int zs[] = {1, 7, 13, 257};
    for (int r = 0; r < COUNT(ROWS); r++)
        for (int k = 0; k < COUNT(zs); k++) {
            const int B = ROWS[r], Z = zs[k];
            const size_t n = (size_t)B * Z;
            float *stats = rand_floats(2 * n, seed++, -3.0f, 3.0f), *eps = rand_floats(n, seed++, -3.0f, 3.0f);
            float *dz = rand_floats(n, seed++, -1.0f, 1.0f), *dstats = rand_floats(2 * n, seed++, -1.0f, 1.0f);
            float *poison = nan_floats(n);
            twin S = twin_new(&p, stats, 2 * n * sizeof(float)), E = twin_new(&p, eps, n * sizeof(float));
            twin Zt = twin_new(&p, poison, n * sizeof(float)), DZ = twin_new(&p, dz, n * sizeof(float));
            twin DS = twin_new(&p, dstats, 2 * n * sizeof(float));
            p.cpu->reparam_forward(p.cpu, Zt.cpu, S.cpu, E.cpu, B, Z);
            p.gpu->reparam_forward(p.gpu, Zt.gpu, S.gpu, E.gpu, B, Z);
            p.cpu->reparam_backward(p.cpu, DS.cpu, DZ.cpu, S.cpu, E.cpu, B, Z);
            p.gpu->reparam_backward(p.gpu, DS.gpu, DZ.gpu, S.gpu, E.gpu, B, Z);
            char what[96];
            snprintf(what, sizeof what, "reparam_forward B=%d Z=%d: z", B, Z);
            twin_expect_close(&p, &Zt, what, TOL_ELEMENTWISE);
            snprintf(what, sizeof what, "reparam_backward B=%d Z=%d: dstats (+=)", B, Z);
            twin_expect_close(&p, &DS, what, TOL_ELEMENTWISE);
            twin_free(&p, &S);
            twin_free(&p, &E);
            twin_free(&p, &Zt);
            twin_free(&p, &DZ);
            twin_free(&p, &DS);
            free(stats);
            free(eps);
            free(dz);
            free(dstats);
            free(poison);
        }
    pair_free(&p);
}

/* log p(z) - log q(z|x) per row (eval's importance weights): a sum over Z columns per row */
Test(cuda_ops, gauss_log_ratio_matches_cpu)
{
    pair p = pair_init();
    uint64_t seed = 450;
    const int zs[] = {1, 7, 13, 257};
    for (int r = 0; r < COUNT(ROWS); r++)
        for (int k = 0; k < COUNT(zs); k++) {
            const int R = ROWS[r], Z = zs[k];
            const size_t n = (size_t)R * Z;
            float *stats = rand_floats(2 * n, seed++, -3.0f, 3.0f), *eps = rand_floats(n, seed++, -3.0f, 3.0f);
            float *z = rand_floats(n, seed++, -4.0f, 4.0f), *poison = nan_floats((size_t)R);
            twin S = twin_new(&p, stats, 2 * n * sizeof(float)), E = twin_new(&p, eps, n * sizeof(float));
            twin Zt = twin_new(&p, z, n * sizeof(float)), O = twin_new(&p, poison, (size_t)R * sizeof(float));
            p.cpu->gauss_log_ratio(p.cpu, O.cpu, Zt.cpu, S.cpu, E.cpu, R, Z);
            p.gpu->gauss_log_ratio(p.gpu, O.gpu, Zt.gpu, S.gpu, E.gpu, R, Z);
            char what[96];
            snprintf(what, sizeof what, "gauss_log_ratio R=%d Z=%d", R, Z);
            twin_expect_close(&p, &O, what, TOL_LOSS_ROW);
            twin_free(&p, &S);
            twin_free(&p, &E);
            twin_free(&p, &Zt);
            twin_free(&p, &O);
            free(stats);
            free(eps);
            free(z);
            free(poison);
        }
    pair_free(&p);
}

/* `cuvae eval`'s whole computation (evaluate.c) on both backends: the same initial parameters,
 * the same images, the same noise stream; odd latent size, odd row budget, K not a multiple of
 * the samples per launch. The normals agree within about 4e-6 and the sums differ in order, so
 * the per-image means agree to about 1e-4 relative. */
Test(cuda_ops, eval_matches_cpu)
{
    pair p = pair_init();
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 5;
    c.hidden[0] = 13;
    vae_dataset ds;
    tu_make_patterns(&ds, 37, 460);
    vae_eval_result r[2];
    vae_backend *bes[2] = {p.cpu, p.gpu};
    for (int b = 0; b < 2; b++) {
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, bes[b], 29), 0, "%s", vae_last_error());
        vae_model_init_params(&m, 461);
        vae_device_data d;
        vae_device_data_init(&d, bes[b], &ds);
        vae_eval_options opt = {.iw_samples = 11, .seed = 462};
        cr_assert_eq(vae_eval_run(&m, &d, &opt, &r[b]), 0, "%s", vae_last_error());
        vae_device_data_free(&d, bes[b]);
        vae_model_free(&m);
    }
    const double got[] = {r[1].loss, r[1].recon, r[1].kl, r[1].loss_mc, r[1].iw_nll};
    const double ref[] = {r[0].loss, r[0].recon, r[0].kl, r[0].loss_mc, r[0].iw_nll};
    cr_expect(tu_allclose_d("eval: loss, recon, kl, loss_mc, iw_nll", got, ref, 5, 1e-4, 1e-4));
    cr_expect(tu_allclose_d("eval: kl per dimension", r[1].kl_dim, r[0].kl_dim, 5, 1e-5, 1e-4));
    cr_expect(tu_allclose_d("eval: variance of the posterior means", r[1].mu_var, r[0].mu_var, 5, 1e-5, 1e-4));
    vae_eval_result_free(&r[0]);
    vae_eval_result_free(&r[1]);
    vae_dataset_free(&ds);
    pair_free(&p);
}

/* ---- loss ------------------------------------------------------------------------------ */

Test(cuda_ops, loss_bce_kl_matches_cpu_with_and_without_gradients)
{
    pair p = pair_init();
    uint64_t seed = 500;
    const int dz[][2] = {{784, 20}, {13, 3}, {785, 33}, {1, 1}};
    for (int with_grad = 0; with_grad < 2; with_grad++)
        for (int r = 0; r < COUNT(ROWS); r++)
            for (int k = 0; k < COUNT(dz); k++) {
                const int B = ROWS[r], D = dz[k][0], Z = dz[k][1];
                const size_t nd = (size_t)B * D, ns = (size_t)B * 2 * Z;
                float *logits = rand_floats(nd, seed++, -8.0f, 8.0f), *x = rand_floats(nd, seed++, 0.0f, 1.0f);
                float *stats = rand_floats(ns, seed++, -3.0f, 3.0f);
                /* Extremes: the stable forms must stay finite. */
                logits[0] = 100.0f;
                x[0] = 0.0f;
                if (nd > 1) {
                    logits[nd - 1] = -100.0f;
                    x[nd - 1] = 1.0f;
                }
                float *poison_rows = nan_floats((size_t)B * 2), *poison_d = nan_floats(nd),
                      *poison_s = nan_floats(ns);
                twin L = twin_new(&p, logits, nd * sizeof(float)), X = twin_new(&p, x, nd * sizeof(float));
                twin S = twin_new(&p, stats, ns * sizeof(float));
                twin RL = twin_new(&p, poison_rows, (size_t)B * 2 * sizeof(float));
                twin DL = twin_new(&p, poison_d, nd * sizeof(float)), DS = twin_new(&p, poison_s, ns * sizeof(float));
                const float beta = 0.7f, grad_scale = 1.0f / (float)B;
                p.cpu->loss_bce_kl(p.cpu, RL.cpu, with_grad ? DL.cpu : NULL, with_grad ? DS.cpu : NULL, L.cpu,
                                   X.cpu, S.cpu, B, D, Z, beta, grad_scale);
                p.gpu->loss_bce_kl(p.gpu, RL.gpu, with_grad ? DL.gpu : NULL, with_grad ? DS.gpu : NULL, L.gpu,
                                   X.gpu, S.gpu, B, D, Z, beta, grad_scale);
                char what[112];
                snprintf(what, sizeof what, "loss_bce_kl B=%d D=%d Z=%d grad=%d: row_loss", B, D, Z, with_grad);
                twin_expect_close(&p, &RL, what, TOL_LOSS_ROW);
                if (with_grad) {
                    snprintf(what, sizeof what, "loss_bce_kl B=%d D=%d Z=%d: dlogits", B, D, Z);
                    twin_expect_close(&p, &DL, what, TOL_ELEMENTWISE);
                    snprintf(what, sizeof what, "loss_bce_kl B=%d D=%d Z=%d: dstats", B, D, Z);
                    twin_expect_close(&p, &DS, what, TOL_ELEMENTWISE);
                } else { /* nothing but row_loss is written */
                    float *got = xmalloc(nd * sizeof *got);
                    gbuf_get(p.gpu, got, DL.gpu, nd * sizeof *got, "dlogits (NULL passed)");
                    for (size_t i = 0; i < nd; i++)
                        cr_assert(isnan(got[i]), "loss_bce_kl without gradients wrote dlogits[%zu]", i);
                    free(got);
                }
                twin_free(&p, &L);
                twin_free(&p, &X);
                twin_free(&p, &S);
                twin_free(&p, &RL);
                twin_free(&p, &DL);
                twin_free(&p, &DS);
                free(logits);
                free(x);
                free(stats);
                free(poison_rows);
                free(poison_d);
                free(poison_s);
            }
    pair_free(&p);
}

Test(cuda_ops, loss_accumulate_in_double_matches_cpu)
{
    pair p = pair_init();
    const int rows[] = {1, 5, 37, 129, 1000, 4097};
    for (int r = 0; r < COUNT(rows); r++) {
        const int B = rows[r];
        float *row_loss = rand_floats((size_t)B * 2, 600 + (uint64_t)r, 0.0f, 600.0f);
        const double acc0[2] = {12.5, -3.25};
        twin RL = twin_new(&p, row_loss, (size_t)B * 2 * sizeof(float)), ACC = twin_new(&p, acc0, sizeof acc0);
        for (int rep = 0; rep < 2; rep++) { /* accumulates */
            p.cpu->loss_accumulate(p.cpu, ACC.cpu, RL.cpu, B);
            p.gpu->loss_accumulate(p.gpu, ACC.gpu, RL.gpu, B);
        }
        double ref[2], got[2];
        gbuf_get(p.cpu, ref, ACC.cpu, sizeof ref, "acc");
        gbuf_get(p.gpu, got, ACC.gpu, sizeof got, "acc");
        char what[64];
        snprintf(what, sizeof what, "loss_accumulate B=%d", B);
        cr_expect(tu_allclose_d(what, got, ref, 2, TOL_ACC_D), "%s: %.17g %.17g vs cpu %.17g %.17g", what, got[0],
                  got[1], ref[0], ref[1]);
        twin_free(&p, &RL);
        twin_free(&p, &ACC);
        free(row_loss);
    }
    pair_free(&p);
}

/* ---- Adam ----------------------------------------------------------------------------- */

static void adam_compare(size_t n, int steps, uint64_t seed)
{
    pair p = pair_init();
    const vae_adam_config cfg = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    float *params = rand_floats(n, seed, -1.0f, 1.0f);
    twin P = twin_new(&p, params, n * sizeof(float)), G = twin_new(&p, NULL, n * sizeof(float));
    twin Mt = twin_new(&p, NULL, n * sizeof(float)), V = twin_new(&p, NULL, n * sizeof(float));
    const int step0 = 0;
    twin STEP = twin_new(&p, &step0, sizeof(int));
    for (int s = 0; s < steps; s++) {
        float *g = rand_floats(n, seed + 1 + (uint64_t)s, -1.0f, 1.0f);
        if (n > 2)
            g[n / 2] = 0.0f; /* a parameter without gradient */
        p.cpu->upload(p.cpu, G.cpu, g, n * sizeof(float));
        p.gpu->upload(p.gpu, G.gpu, g, n * sizeof(float));
        p.cpu->adam_step(p.cpu, P.cpu, G.cpu, Mt.cpu, V.cpu, n, &cfg, STEP.cpu, NULL, NULL);
        p.gpu->adam_step(p.gpu, P.gpu, G.gpu, Mt.gpu, V.gpu, n, &cfg, STEP.gpu, NULL, NULL);
        free(g);
    }
    char what[96];
    snprintf(what, sizeof what, "adam n=%zu after %d steps: params", n, steps);
    twin_expect_close(&p, &P, what, 1e-6, 1e-5);
    snprintf(what, sizeof what, "adam n=%zu after %d steps: m", n, steps);
    twin_expect_close(&p, &Mt, what, 1e-7, 1e-5);
    snprintf(what, sizeof what, "adam n=%zu after %d steps: v", n, steps);
    twin_expect_close(&p, &V, what, 1e-9, 1e-5);
    int sc, sg;
    gbuf_get(p.cpu, &sc, STEP.cpu, sizeof sc, "step");
    gbuf_get(p.gpu, &sg, STEP.gpu, sizeof sg, "step");
    cr_expect_eq(sc, steps);
    cr_expect_eq(sg, steps, "step counter on %s is %d after %d steps", p.gpu->name, sg, steps);
    twin_free(&p, &P);
    twin_free(&p, &G);
    twin_free(&p, &Mt);
    twin_free(&p, &V);
    twin_free(&p, &STEP);
    free(params);
    pair_free(&p);
}

Test(cuda_ops, adam_step_large_flat_buffer_several_steps)
{
    adam_compare(1000003, 5, 700);
}

Test(cuda_ops, adam_step_small_buffer)
{
    adam_compare(5, 3, 710);
}

/* ---- divergence guard and clipping ------------------------------------------------------- */

Test(cuda_ops, check_finite_flags_like_the_cpu)
{
    pair p = pair_init();
    const size_t sizes[] = {1, 5, 257, 1000003};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < COUNT(sizes); k++) {
        const size_t n = sizes[k];
        float *x = rand_floats(n, 900 + (uint64_t)k, -1.5e38f, 1.5e38f); /* hi - lo stays finite */
        for (size_t i = 0; i < n; i++)
            cr_assert(isfinite(x[i]), "test input %zu is not finite", i);
        const size_t where[] = {0, n / 2, n - 1};
        for (int b = -1; b < COUNT(bad); b++)
            for (int w = 0; w < (b < 0 ? 1 : COUNT(where)); w++) {
                float keep = x[where[w]];
                if (b >= 0)
                    x[where[w]] = bad[b];
                const int zero = 0;
                twin X = twin_new(&p, x, n * 4), F = twin_new(&p, &zero, sizeof(int));
                p.cpu->check_finite(p.cpu, F.cpu, X.cpu, n, 2);
                p.gpu->check_finite(p.gpu, F.gpu, X.gpu, n, 2);
                p.cpu->check_finite(p.cpu, F.cpu, X.cpu, n, 3); /* latched: stays 2 */
                p.gpu->check_finite(p.gpu, F.gpu, X.gpu, n, 3);
                int fc, fg;
                gbuf_get(p.cpu, &fc, F.cpu, sizeof fc, "flag");
                gbuf_get(p.gpu, &fg, F.gpu, sizeof fg, "flag");
                cr_expect_eq(fc, b < 0 ? 0 : 2, "cpu n=%zu bad=%d at %zu: flag %d", n, b, where[w], fc);
                cr_expect_eq(fg, fc, "cuda n=%zu bad=%d at %zu: flag %d, cpu %d", n, b, where[w], fg, fc);
                twin_free(&p, &X);
                twin_free(&p, &F);
                x[where[w]] = keep;
            }
        free(x);
    }
    pair_free(&p);
}

Test(cuda_ops, grad_clip_scale_matches_the_cpu)
{
    pair p = pair_init();
    const size_t sizes[] = {0, 1, 7, 1025, 1000003};
    const float max_norm[] = {1e-3f, 0.7f, 1e6f};
    for (int k = 0; k < COUNT(sizes); k++)
        for (int j = 0; j < COUNT(max_norm); j++) {
            const size_t n = sizes[k];
            float *x = rand_floats(n, 950 + (uint64_t)k, -1.0f, 1.0f);
            const float nan = NAN;
            twin X = twin_new(&p, x, n * 4), S = twin_new(&p, &nan, sizeof(float));
            p.cpu->grad_clip_scale(p.cpu, S.cpu, X.cpu, n, max_norm[j]);
            p.gpu->grad_clip_scale(p.gpu, S.gpu, X.gpu, n, max_norm[j]);
            char what[96];
            /* both sum exact squares in double: the float factors agree to the last bit or two */
            snprintf(what, sizeof what, "grad_clip_scale n=%zu max_norm=%g", n, (double)max_norm[j]);
            twin_expect_close(&p, &S, what, 0.0, 2e-7);
            twin_free(&p, &X);
            twin_free(&p, &S);
            free(x);
        }
    pair_free(&p);
}

Test(cuda_ops, adam_skip_and_grad_scale_match_the_cpu)
{
    pair p = pair_init();
    const size_t n = 100003;
    const vae_adam_config cfg = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    float *params = rand_floats(n, 960, -1, 1), *g = rand_floats(n, 961, -1, 1);
    const int zero = 0, set = 1;
    const float scale = 0.3f;
    twin P = twin_new(&p, params, n * 4), G = twin_new(&p, g, n * 4), Mt = twin_new(&p, NULL, n * 4);
    twin V = twin_new(&p, NULL, n * 4), STEP = twin_new(&p, &zero, sizeof(int));
    twin SKIP = twin_new(&p, &zero, sizeof(int)), SC = twin_new(&p, &scale, sizeof(float));
    for (int s = 0; s < 3; s++) {
        p.cpu->adam_step(p.cpu, P.cpu, G.cpu, Mt.cpu, V.cpu, n, &cfg, STEP.cpu, SKIP.cpu, SC.cpu);
        p.gpu->adam_step(p.gpu, P.gpu, G.gpu, Mt.gpu, V.gpu, n, &cfg, STEP.gpu, SKIP.gpu, SC.gpu);
    }
    twin_expect_close(&p, &P, "adam with grad_scale: params", 1e-6, 1e-5);
    twin_expect_close(&p, &Mt, "adam with grad_scale: m", 1e-7, 1e-5);
    float *before = xmalloc(n * 4), *after = xmalloc(n * 4);
    gbuf_get(p.gpu, before, P.gpu, n * 4, "params");
    p.gpu->upload(p.gpu, SKIP.gpu, &set, sizeof set);
    p.gpu->adam_step(p.gpu, P.gpu, G.gpu, Mt.gpu, V.gpu, n, &cfg, STEP.gpu, SKIP.gpu, SC.gpu);
    gbuf_get(p.gpu, after, P.gpu, n * 4, "params");
    int st;
    gbuf_get(p.gpu, &st, STEP.gpu, sizeof st, "step");
    cr_expect_eq(st, 3, "the skipped step moved Adam's counter to %d", st);
    cr_expect(memcmp(before, after, n * 4) == 0, "the skipped step changed the parameters on %s", p.gpu->name);
    twin *all[] = {&P, &G, &Mt, &V, &STEP, &SKIP, &SC};
    for (int i = 0; i < COUNT(all); i++)
        twin_free(&p, all[i]);
    free(before);
    free(after);
    free(params);
    free(g);
    pair_free(&p);
}

/* ---- gather ---------------------------------------------------------------------------- */

Test(cuda_ops, gather_batch_exact)
{
    pair p = pair_init();
    const int n_images = 300, dims[] = {784, 13, 1};
    uint64_t seed = 800;
    for (int k = 0; k < COUNT(dims); k++)
        for (int r = 0; r < COUNT(ROWS); r++) {
            const int D = dims[k], B = ROWS[r];
            const size_t nd = (size_t)n_images * D, nx = (size_t)B * D;
            float *u = rand_floats(nd, seed++, 0.0f, 256.0f);
            uint8_t *data = xmalloc(nd);
            for (size_t i = 0; i < nd; i++)
                data[i] = (uint8_t)(u[i] >= 255.0f ? 255 : (int)u[i]);
            data[0] = 255; /* both ends of the byte range */
            data[nd - 1] = 0;
            float *fi = rand_floats((size_t)B, seed++, 0.0f, (float)n_images);
            int32_t *idx = xmalloc((size_t)B * sizeof *idx);
            for (int i = 0; i < B; i++)
                idx[i] = (int32_t)fi[i] >= n_images ? n_images - 1 : (int32_t)fi[i];
            idx[0] = n_images - 1; /* the last image */
            if (B > 1)
                idx[B - 1] = 0;
            float *poison = nan_floats(nx);
            twin DATA = twin_new(&p, data, nd), IDX = twin_new(&p, idx, (size_t)B * sizeof *idx);
            twin X = twin_new(&p, poison, nx * sizeof(float));
            p.cpu->gather_batch(p.cpu, X.cpu, DATA.cpu, IDX.cpu, B, D);
            p.gpu->gather_batch(p.gpu, X.gpu, DATA.gpu, IDX.gpu, B, D);
            char what[64];
            snprintf(what, sizeof what, "gather_batch B=%d D=%d", B, D);
            twin_expect_close(&p, &X, what, 0.0, 0.0); /* (float)byte / 255.0f on both: exact */
            twin_free(&p, &DATA);
            twin_free(&p, &IDX);
            twin_free(&p, &X);
            free(u);
            free(data);
            free(fi);
            free(idx);
            free(poison);
        }
    pair_free(&p);
}

/* ---- Gumbel-softmax ---------------------------------------------------------------------- */

Test(cuda_ops, gumbel_softmax_forward_backward_match_cpu)
{
    pair p = pair_init();
    uint64_t seed = 900;
    const float taus[] = {1.0f, 0.5f};
    for (int t = 0; t < COUNT(taus); t++)
        for (int r = 0; r < COUNT(ROWS); r++)
            for (int c = 0; c < COUNT(COLS); c++)
                for (int in_place = 0; in_place < 2; in_place++) {
                    const int B = ROWS[r], K = COLS[c];
                    const float tau = taus[t];
                    const size_t n = (size_t)B * K;
                    float *logits = rand_floats(n, seed++, -3.0f, 3.0f), *u = rand_floats(n, seed++, 0.0f, 1.0f);
                    float *dy = rand_floats(n, seed++, -1.0f, 1.0f);
                    u[0] = 1.0f; /* both clamps */
                    u[n - 1] = 1e-30f;
                    float *poison = nan_floats(n);
                    twin L = twin_new(&p, logits, n * sizeof(float)), U = twin_new(&p, u, n * sizeof(float));
                    twin Y = twin_new(&p, poison, n * sizeof(float));
                    p.cpu->gumbel_softmax_forward(p.cpu, Y.cpu, L.cpu, U.cpu, B, K, tau);
                    p.gpu->gumbel_softmax_forward(p.gpu, Y.gpu, L.gpu, U.gpu, B, K, tau);
                    char what[112];
                    snprintf(what, sizeof what, "gumbel_softmax_forward B=%d K=%d tau=%g: y", B, K, tau);
                    twin_expect_close(&p, &Y, what, TOL_ELEMENTWISE);
                    float *y = xmalloc(n * sizeof *y);
                    gbuf_get(p.gpu, y, Y.gpu, n * sizeof *y, what);
                    for (int i = 0; i < B; i++) {
                        double s = 0.0;
                        for (int k = 0; k < K; k++)
                            s += y[(size_t)i * K + k];
                        cr_expect(fabs(s - 1.0) < 1e-5, "%s: row %d sums to %.9g", what, i, s);
                    }
                    /* Backward from the CPU's y, so both sides see the same input. */
                    float *y_ref = xmalloc(n * sizeof *y_ref);
                    gbuf_get(p.cpu, y_ref, Y.cpu, n * sizeof *y_ref, what);
                    twin YIN = twin_new(&p, y_ref, n * sizeof(float)), DY = twin_new(&p, dy, n * sizeof(float));
                    twin DL = twin_new(&p, poison, n * sizeof(float));
                    twin *out = in_place ? &DY : &DL;
                    p.cpu->gumbel_softmax_backward(p.cpu, out->cpu, DY.cpu, YIN.cpu, B, K, tau);
                    p.gpu->gumbel_softmax_backward(p.gpu, out->gpu, DY.gpu, YIN.gpu, B, K, tau);
                    snprintf(what, sizeof what, "gumbel_softmax_backward B=%d K=%d tau=%g%s: dlogits", B, K, tau,
                             in_place ? " (aliases dy)" : "");
                    twin_expect_close(&p, out, what, TOL_ELEMENTWISE);
                    twin_free(&p, &L);
                    twin_free(&p, &U);
                    twin_free(&p, &Y);
                    twin_free(&p, &YIN);
                    twin_free(&p, &DY);
                    twin_free(&p, &DL);
                    free(logits);
                    free(u);
                    free(dy);
                    free(poison);
                    free(y);
                    free(y_ref);
                }
    pair_free(&p);
}

/* ---- determinism: the same ops twice on the GPU, bit-identical ----------------------------- */

#define MAX_RESULTS 16

typedef struct {
    int n;
    const char *name[MAX_RESULTS];
    size_t bytes[MAX_RESULTS];
    void *host[MAX_RESULTS];
} results;

static void results_take(results *rs, vae_backend *be, const char *name, const void *dev, size_t bytes)
{
    cr_assert_lt(rs->n, MAX_RESULTS);
    rs->name[rs->n] = name;
    rs->bytes[rs->n] = bytes;
    rs->host[rs->n] = xmalloc(bytes);
    be->download(be, rs->host[rs->n], dev, bytes);
    rs->n++;
}

static void *upload_new(vae_backend *be, const void *host, size_t bytes)
{
    void *p = be->buffer_alloc(be, bytes);
    be->upload(be, p, host, bytes);
    return p;
}

/* One run of every reducing op (and the rest), from the same inputs every time. */
static results run_all_ops(vae_backend *be)
{
    results rs = {0};
    /* gemm, then bias + tanh, then its backward over many rows. */
    const int M = 1000, N = 785, K = 257;
    float *a = rand_floats((size_t)M * K, 1, -1, 1), *w = rand_floats((size_t)K * N, 2, -1, 1);
    float *bias = rand_floats((size_t)N, 3, -1, 1), *dy = rand_floats((size_t)M * N, 4, -1, 1);
    float *A = upload_new(be, a, (size_t)M * K * 4), *W = upload_new(be, w, (size_t)K * N * 4);
    float *Bias = upload_new(be, bias, (size_t)N * 4), *DY = upload_new(be, dy, (size_t)M * N * 4);
    float *C = be->buffer_alloc(be, (size_t)M * N * 4), *DB = be->buffer_alloc(be, (size_t)N * 4);
    float *DW = be->buffer_alloc(be, (size_t)K * N * 4);
    be->gemm(be, 0, 0, M, N, K, 1.0f, A, K, W, N, 0.0f, C, N);
    be->bias_act_forward(be, C, Bias, M, N, VAE_ACT_TANH);
    be->bias_act_backward(be, DY, DB, DY, C, M, N, VAE_ACT_TANH);
    be->gemm(be, 1, 0, K, N, M, 1.0f, A, K, DY, N, 1.0f, DW, N); /* a long K = 1000 reduction */
    results_take(&rs, be, "gemm + bias_act_forward", C, (size_t)M * N * 4);
    results_take(&rs, be, "bias_act_backward dx", DY, (size_t)M * N * 4);
    results_take(&rs, be, "bias_act_backward dbias", DB, (size_t)N * 4);
    results_take(&rs, be, "gemm transposed (dW)", DW, (size_t)K * N * 4);

    /* loss + accumulate, reparam, gumbel */
    const int B = 129, D = 784, Z = 32;
    float *logits = rand_floats((size_t)B * D, 5, -8, 8), *x = rand_floats((size_t)B * D, 6, 0, 1);
    float *stats = rand_floats((size_t)B * 2 * Z, 7, -3, 3), *eps = rand_floats((size_t)B * Z, 8, -3, 3);
    float *L = upload_new(be, logits, (size_t)B * D * 4), *X = upload_new(be, x, (size_t)B * D * 4);
    float *S = upload_new(be, stats, (size_t)B * 2 * Z * 4), *E = upload_new(be, eps, (size_t)B * Z * 4);
    float *RL = be->buffer_alloc(be, (size_t)B * 2 * 4), *DL = be->buffer_alloc(be, (size_t)B * D * 4);
    float *DS = be->buffer_alloc(be, (size_t)B * 2 * Z * 4), *Zb = be->buffer_alloc(be, (size_t)B * Z * 4);
    double *ACC = be->buffer_alloc(be, 2 * sizeof(double));
    be->loss_bce_kl(be, RL, DL, DS, L, X, S, B, D, Z, 0.5f, 1.0f / B);
    be->loss_accumulate(be, ACC, RL, B);
    be->reparam_forward(be, Zb, S, E, B, Z);
    be->reparam_backward(be, DS, Zb, S, E, B, Z);
    be->gumbel_softmax_forward(be, DL, L, X, B, D, 0.5f); /* x doubles as u */
    be->gumbel_softmax_backward(be, L, X, DL, B, D, 0.5f);
    results_take(&rs, be, "loss_bce_kl row_loss", RL, (size_t)B * 2 * 4);
    results_take(&rs, be, "loss_accumulate", ACC, 2 * sizeof(double));
    results_take(&rs, be, "loss dstats + reparam", DS, (size_t)B * 2 * Z * 4);
    results_take(&rs, be, "gumbel forward", DL, (size_t)B * D * 4);
    results_take(&rs, be, "gumbel backward", L, (size_t)B * D * 4);

    /* Adam over a large flat buffer, and the noise generators. */
    const size_t n = 1000003;
    const vae_adam_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f};
    float *g = rand_floats(n, 9, -1, 1), *pp = rand_floats(n, 10, -1, 1);
    float *P = upload_new(be, pp, n * 4), *G = upload_new(be, g, n * 4);
    float *Mm = be->buffer_alloc(be, n * 4), *V = be->buffer_alloc(be, n * 4);
    int *STEP = be->buffer_alloc(be, sizeof(int));
    for (int s = 0; s < 3; s++)
        be->adam_step(be, P, G, Mm, V, n, &cfg, STEP, NULL, NULL);
    vae_rng *rng = be->rng_init(be, 42);
    be->rng_normal(be, rng, G, n - 1); /* n - 1 is even */
    results_take(&rs, be, "adam params", P, n * 4);
    float *SC = be->buffer_alloc(be, sizeof(float));
    be->grad_clip_scale(be, SC, P, n, 1.0f); /* a sum over a million elements in double */
    results_take(&rs, be, "grad_clip_scale", SC, sizeof(float));
    be->buffer_free(be, SC);
    results_take(&rs, be, "rng_normal", G, (n - 1) * 4);
    be->rng_free(be, rng);

    void *bufs[] = {A, W, Bias, DY, C, DB, DW, L, X, S, E, RL, DL, DS, Zb, ACC, P, G, Mm, V, STEP};
    for (int i = 0; i < COUNT(bufs); i++)
        be->buffer_free(be, bufs[i]);
    void *hosts[] = {a, w, bias, dy, logits, x, stats, eps, g, pp};
    for (int i = 0; i < COUNT(hosts); i++)
        free(hosts[i]);
    return rs;
}

Test(cuda_determinism, same_inputs_give_bit_identical_outputs)
{
    vae_backend *be = tu_cuda_backend();
    results r1 = run_all_ops(be), r2 = run_all_ops(be);
    cr_assert_eq(r1.n, r2.n);
    for (int i = 0; i < r1.n; i++) {
        const unsigned char *x = r1.host[i], *y = r2.host[i];
        size_t first = r1.bytes[i];
        for (size_t k = 0; k < r1.bytes[i]; k++)
            if (x[k] != y[k]) {
                first = k;
                break;
            }
        cr_expect(first == r1.bytes[i], "%s: two runs differ, first at byte %zu of %zu", r1.name[i], first,
                  r1.bytes[i]);
        free(r1.host[i]);
        free(r2.host[i]);
    }
    vae_backend_free(be);
}

/* ---- graphs ------------------------------------------------------------------------------ */

/* The buffers of a short training-like sequence: C = X P, C = tanh(C + bias),
 * then an Adam step on P with C as its gradient (M == K, so C and P have the
 * same size). Each replay reads the P that the previous one updated. */
typedef struct {
    float *X, *P, *bias, *C, *m, *v;
    int *step;
} graph_bufs;

enum { GM = 37, GK = 37, GN = 129 };

static graph_bufs graph_bufs_new(vae_backend *be)
{
    graph_bufs g;
    float *x = rand_floats((size_t)GM * GK, 11, -1, 1), *p = rand_floats((size_t)GK * GN, 12, -1, 1);
    float *bias = rand_floats(GN, 13, -1, 1);
    g.X = upload_new(be, x, (size_t)GM * GK * 4);
    g.P = upload_new(be, p, (size_t)GK * GN * 4);
    g.bias = upload_new(be, bias, (size_t)GN * 4);
    g.C = be->buffer_alloc(be, (size_t)GM * GN * 4);
    g.m = be->buffer_alloc(be, (size_t)GK * GN * 4);
    g.v = be->buffer_alloc(be, (size_t)GK * GN * 4);
    g.step = be->buffer_alloc(be, sizeof(int));
    free(x);
    free(p);
    free(bias);
    return g;
}

static void graph_bufs_free(vae_backend *be, graph_bufs *g)
{
    void *bufs[] = {g->X, g->P, g->bias, g->C, g->m, g->v, g->step};
    for (int i = 0; i < COUNT(bufs); i++)
        be->buffer_free(be, bufs[i]);
}

static void graph_sequence(vae_backend *be, graph_bufs *g)
{
    static const vae_adam_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f};
    be->gemm(be, 0, 0, GM, GN, GK, 1.0f, g->X, GK, g->P, GN, 0.0f, g->C, GN);
    be->bias_act_forward(be, g->C, g->bias, GM, GN, VAE_ACT_TANH);
    be->adam_step(be, g->P, g->C, g->m, g->v, (size_t)GK * GN, &cfg, g->step, NULL, NULL);
}

static void graph_bufs_get(vae_backend *be, graph_bufs *g, float *p, float *c, float *m, float *v, int *step)
{
    be->download(be, p, g->P, (size_t)GK * GN * 4);
    be->download(be, c, g->C, (size_t)GM * GN * 4);
    be->download(be, m, g->m, (size_t)GK * GN * 4);
    be->download(be, v, g->v, (size_t)GK * GN * 4);
    be->download(be, step, g->step, sizeof(int));
}

Test(cuda_graph, replay_matches_eager_and_advances_step)
{
    pair pr = pair_init();
    vae_backend *be = pr.gpu;
    const size_t np = (size_t)GK * GN, nc = (size_t)GM * GN;
    float *pe = xmalloc(np * 4), *ce = xmalloc(nc * 4), *me = xmalloc(np * 4), *ve = xmalloc(np * 4);
    float *pg = xmalloc(np * 4), *cg = xmalloc(nc * 4), *mg = xmalloc(np * 4), *vg = xmalloc(np * 4);
    float *p0 = xmalloc(np * 4);
    int step_e, step_g;

    /* Eagerly, three times (this also loads every kernel before the capture). */
    graph_bufs eager = graph_bufs_new(be);
    for (int r = 0; r < 3; r++)
        graph_sequence(be, &eager);
    graph_bufs_get(be, &eager, pe, ce, me, ve, &step_e);
    cr_assert_eq(step_e, 3);

    /* Captured once: recorded, not run. */
    graph_bufs gb = graph_bufs_new(be);
    be->download(be, p0, gb.P, np * 4);
    be->graph_capture_begin(be);
    graph_sequence(be, &gb);
    vae_graph *graph = be->graph_capture_end(be);
    cr_assert_not_null(graph);
    graph_bufs_get(be, &gb, pg, cg, mg, vg, &step_g);
    cr_expect_eq(step_g, 0, "the capture ran the ops (step %d)", step_g);
    cr_expect(memcmp(pg, p0, np * 4) == 0, "the capture changed the parameters");

    /* Replayed three times: the same as eager, the step counter at 3. */
    for (int r = 0; r < 3; r++)
        be->graph_launch(be, graph);
    graph_bufs_get(be, &gb, pg, cg, mg, vg, &step_g);
    cr_expect_eq(step_g, 3, "adam step counter after 3 replays is %d", step_g);
    cr_expect(tu_allclose("graph vs eager: params", pg, pe, np, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: C", cg, ce, nc, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: m", mg, me, np, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: v", vg, ve, np, 1e-9, 1e-6));

    /* And the CPU backend, three eager runs: the reference. */
    graph_bufs cpu = graph_bufs_new(pr.cpu);
    for (int r = 0; r < 3; r++)
        graph_sequence(pr.cpu, &cpu);
    int step_c;
    graph_bufs_get(pr.cpu, &cpu, pe, ce, me, ve, &step_c);
    cr_expect_eq(step_c, 3);
    cr_expect(tu_allclose("graph vs cpu: params", pg, pe, np, 1e-4, 1e-4));
    cr_expect(tu_allclose("graph vs cpu: C", cg, ce, nc, 1e-4, 1e-4));

    be->graph_free(be, graph);
    graph_bufs_free(be, &eager);
    graph_bufs_free(be, &gb);
    graph_bufs_free(pr.cpu, &cpu);
    float *hosts[] = {pe, ce, me, ve, pg, cg, mg, vg, p0};
    for (int i = 0; i < COUNT(hosts); i++)
        free(hosts[i]);
    pair_free(&pr);
}

Test(cuda_graph, the_divergence_gate_works_in_a_replayed_graph)
{
    vae_backend *be = tu_cuda_backend();
    const size_t n = 4099;
    const vae_adam_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f};
    float *params = rand_floats(n, 970, -1, 1), *g = rand_floats(n, 971, -1, 1);
    float *P = upload_new(be, params, n * 4), *G = upload_new(be, g, n * 4);
    float *Mm = be->buffer_alloc(be, n * 4), *V = be->buffer_alloc(be, n * 4), *SC = be->buffer_alloc(be, 4);
    int *STEP = be->buffer_alloc(be, sizeof(int)), *FLAG = be->buffer_alloc(be, sizeof(int));
    be->graph_capture_begin(be);
    be->check_finite(be, FLAG, G, n, 2);
    be->grad_clip_scale(be, SC, G, n, 1.0f);
    be->adam_step(be, P, G, Mm, V, n, &cfg, STEP, FLAG, SC);
    vae_graph *graph = be->graph_capture_end(be);
    be->graph_launch(be, graph);
    be->graph_launch(be, graph);
    int step, flag;
    be->download(be, &step, STEP, sizeof step);
    be->download(be, &flag, FLAG, sizeof flag);
    cr_expect_eq(step, 2);
    cr_expect_eq(flag, 0);
    float *before = xmalloc(n * 4), *after = xmalloc(n * 4);
    be->download(be, before, P, n * 4);
    g[n - 1] = INFINITY;
    be->upload(be, G, g, n * 4);
    be->graph_launch(be, graph);
    g[n - 1] = 0.5f; /* a good gradient again: still skipped, the flag is latched */
    be->upload(be, G, g, n * 4);
    be->graph_launch(be, graph);
    be->download(be, after, P, n * 4);
    be->download(be, &step, STEP, sizeof step);
    be->download(be, &flag, FLAG, sizeof flag);
    cr_expect_eq(flag, 2, "flag %d after an infinite gradient", flag);
    cr_expect_eq(step, 2, "Adam's counter moved to %d", step);
    cr_expect(memcmp(before, after, n * 4) == 0, "a replay after the infinite gradient changed the parameters");
    be->graph_free(be, graph);
    void *bufs[] = {P, G, Mm, V, SC, STEP, FLAG};
    for (int i = 0; i < COUNT(bufs); i++)
        be->buffer_free(be, bufs[i]);
    free(params);
    free(g);
    free(before);
    free(after);
    vae_backend_free(be);
}

/* A graph holding draws draws new numbers at every replay (the offset is read and advanced on
 * the device), the same numbers as eager draws on the CPU. */
Test(cuda_graph, rng_replay_draws_the_next_numbers)
{
    pair p = pair_init();
    vae_backend *be = p.gpu;
    const uint64_t seed = 31337;
    const size_t nu = 1281, nz = 2560; /* an odd uniform count: the normals start mid-block */
    vae_rng *rg = be->rng_init(be, seed), *rc = p.cpu->rng_init(p.cpu, seed);
    float *u = be->buffer_alloc(be, nu * sizeof(float)), *z = be->buffer_alloc(be, nz * sizeof(float));
    be->graph_capture_begin(be);
    be->rng_uniform(be, rg, u, nu);
    be->rng_normal(be, rg, z, nz);
    vae_graph *graph = be->graph_capture_end(be);
    cr_assert_not_null(graph);
    cr_expect_eq(be->rng_get_offset(be, rg), 0, "the capture drew numbers");
    float *gu[2], *gz[2], *cu = xmalloc(nu * sizeof *cu), *cz = xmalloc(nz * sizeof *cz);
    for (int r = 0; r < 2; r++) {
        be->graph_launch(be, graph);
        gu[r] = xmalloc(nu * sizeof *gu[r]);
        gz[r] = xmalloc(nz * sizeof *gz[r]);
        be->download(be, gu[r], u, nu * sizeof *gu[r]);
        be->download(be, gz[r], z, nz * sizeof *gz[r]);
        p.cpu->rng_uniform(p.cpu, rc, cu, nu);
        p.cpu->rng_normal(p.cpu, rc, cz, nz);
        cr_expect(memcmp(gu[r], cu, nu * sizeof *cu) == 0, "replay %d: uniforms differ from the CPU's", r + 1);
        cr_expect(memcmp(gz[r], cz, nz * sizeof *cz) == 0, "replay %d: normals differ from the CPU's", r + 1);
        cr_expect_eq(be->rng_get_offset(be, rg), (uint64_t)(r + 1) * (nu + nz), "offset after replay %d", r + 1);
    }
    cr_expect(memcmp(gz[0], gz[1], nz * sizeof *cz) != 0, "two replays drew the same normals");
    cr_expect(memcmp(gu[0], gu[1], nu * sizeof *cu) != 0, "two replays drew the same uniforms");
    for (int r = 0; r < 2; r++) {
        free(gu[r]);
        free(gz[r]);
    }
    free(cu);
    free(cz);
    be->graph_free(be, graph);
    be->buffer_free(be, u);
    be->buffer_free(be, z);
    be->rng_free(be, rg);
    p.cpu->rng_free(p.cpu, rc);
    pair_free(&p);
}

/* ---- misuse that must be fatal ------------------------------------------------------------ */

/* Runs `body` in a child process (which alone touches CUDA, so the fork is
 * safe) with its stderr captured into err. Returns the child's exit status:
 * 77 when it found no GPU, 1 when vae_fatal ended it. */
static int run_child(void (*body)(vae_backend *), char *err, size_t errlen)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        if (vae_cuda_device_count() == 0) {
            fprintf(stderr, "%s", vae_backend_cuda_init(0) ? "" : vae_last_error());
            _exit(77);
        }
        vae_backend *be = vae_backend_cuda_init(0);
        if (!be)
            _exit(78);
        body(be);
        _exit(0); /* body returned: the misuse was not caught */
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < errlen && (got = read(fd[0], err + len, errlen - 1 - len)) > 0)
        len += (size_t)got;
    err[len] = '\0';
    char sink[256];
    while (read(fd[0], sink, sizeof sink) > 0) {
    }
    close(fd[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void download_during_capture(vae_backend *be)
{
    float *x = be->buffer_alloc(be, 64), host[16];
    be->graph_capture_begin(be);
    be->memset_zero(be, x, 64);
    be->download(be, host, x, sizeof host);
}

static void rng_set_offset_during_capture(vae_backend *be)
{
    float *x = be->buffer_alloc(be, 64);
    vae_rng *r = be->rng_init(be, 1);
    be->graph_capture_begin(be);
    be->rng_normal(be, r, x, 16); /* may be captured */
    be->rng_set_offset(be, r, 16); /* an upload: may not */
}

static void expect_fatal_child(void (*body)(vae_backend *), const char *what)
{
    char err[2048];
    int st = run_child(body, err, sizeof err);
    if (st == 77)
        cr_skip_test("%s", err); /* "no CUDA device: ..." */
    cr_assert_eq(st, 1, "%s: the child exited with %d, not through vae_fatal; stderr: %s", what, st, err);
    cr_assert(strstr(err, "graph capture") != NULL, "%s: message does not mention the capture: %s", what, err);
}

Test(cuda_graph, download_during_capture_is_fatal)
{
    expect_fatal_child(download_during_capture, "download during capture");
}

Test(cuda_graph, rng_set_offset_during_capture_is_fatal)
{
    expect_fatal_child(rng_set_offset_during_capture, "rng_set_offset during capture");
}
