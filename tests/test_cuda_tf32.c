/*
 * test_cuda_tf32.c: --tf32 on the GPU: cuBLAS's TF32 math mode really rounds the
 * GEMMs' inputs (errors within the 2u-per-product bound of compare.c, and far above
 * FP32's) and switching back restores FP32 bit for bit; `cuvae compare --tf32` passes
 * with TF32's tolerances while FP32's would catch TF32 GEMMs; and the bench's CUDA
 * line says math=tf32. Every case reports as skipped without a GPU (the suite's name has
 * no digits, so that CMakeLists.txt's skip pattern for cuda_[a-z_]+ suites matches it).
 */
#define _GNU_SOURCE
#include "compare.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 96, N = 80, K = 512 };

/* C = A B (row-major, A (M, K), B (K, N)) on the GPU into c. */
static void gpu_gemm(vae_backend *be, const float *a, const float *b, float *c)
{
    float *da = be->buffer_alloc(be, sizeof(float) * M * K), *db = be->buffer_alloc(be, sizeof(float) * K * N),
          *dc = be->buffer_alloc(be, sizeof(float) * M * N);
    be->upload(be, da, a, sizeof(float) * M * K);
    be->upload(be, db, b, sizeof(float) * K * N);
    be->gemm(be, 0, 0, M, N, K, 1.0f, da, K, db, N, 0.0f, dc, N);
    be->download(be, c, dc, sizeof(float) * M * N);
    be->buffer_free(be, da);
    be->buffer_free(be, db);
    be->buffer_free(be, dc);
}

/* max over elements of |c - exact| / sum_k |a_ik b_kj|: the error per unit of the products' size. */
static double worst_relative_error(const float *a, const float *b, const float *c)
{
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double exact = 0, size = 0;
            for (int k = 0; k < K; k++) {
                exact += (double)a[i * K + k] * b[k * N + j];
                size += fabs((double)a[i * K + k] * b[k * N + j]);
            }
            worst = fmax(worst, fabs(c[i * N + j] - exact) / size);
        }
    return worst;
}

Test(cuda_tensorfloat, gemm_rounds_its_inputs_within_the_bound_and_fp32_comes_back)
{
    vae_backend *be = tu_cuda_backend();
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c32 = malloc(sizeof(float) * M * N), *ctf = malloc(sizeof(float) * M * N),
          *cback = malloc(sizeof(float) * M * N);
    cr_assert(a && b && c32 && ctf && cback);
    tu_fill_uniform(a, (size_t)M * K, 31, -1.0f, 1.0f); /* full 23-bit mantissas */
    tu_fill_uniform(b, (size_t)K * N, 32, -1.0f, 1.0f);
    gpu_gemm(be, a, b, c32);
    vae_cuda_set_tf32(be, 1);
    gpu_gemm(be, a, b, ctf);
    vae_cuda_set_tf32(be, 0);
    gpu_gemm(be, a, b, cback);
    const double u = VAE_COMPARE_TF32_UNIT_ROUNDOFF, e32 = worst_relative_error(a, b, c32),
                 etf = worst_relative_error(a, b, ctf);
    /* FP32: summation alone, K terms at 2^-24 each at most */
    cr_expect_leq(e32, K * ldexp(1.0, -24), "FP32 error %g", e32);
    /* TF32: 2u + u^2 per product (compare.c) plus the same FP32 summation */
    cr_expect_leq(etf, 2 * u + u * u + K * ldexp(1.0, -24), "TF32 error %g above its bound", etf);
    cr_expect_gt(etf, 10 * e32, "TF32 error %g is not above FP32's %g: the math mode did not take", etf, e32);
    cr_expect_eq(memcmp(c32, cback, sizeof(float) * M * N), 0, "back to FP32 is not bit-identical to FP32");
    free(a);
    free(b);
    free(c32);
    free(ctf);
    free(cback);
    vae_backend_free(be);
}

/* vae_compare_run of the default model, the candidate in TF32 (o->tf32, or set by hand); its failures. */
static int compare_tf32(vae_compare_options *o, int by_hand, char **text)
{
    vae_backend *cpu = vae_backend_cpu_init(), *gpu = tu_cuda_backend();
    if (by_hand)
        vae_cuda_set_tf32(gpu, 1);
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    cr_assert_not_null(f);
    int fails = vae_compare_run(o, cpu, gpu, f);
    fclose(f);
    vae_backend_free(cpu);
    vae_backend_free(gpu);
    return fails;
}

Test(cuda_tensorfloat, compare_passes_with_tf32_tolerances_and_fp32_ones_catch_tf32)
{
    tu_need_gpu();
    vae_compare_options o;
    vae_compare_options_default(&o);
    vae_compare_options_tf32(&o);
    char *text = NULL;
    int fails = compare_tf32(&o, 0, &text);
    cr_expect_eq(fails, 0, "compare --tf32 failed:\n%s", text);
    cr_expect(strstr(text, "GEMMs: TF32 on cuda (--tf32), FP32 on cpu") != NULL, "%s", text);
    free(text);

    vae_compare_options_default(&o); /* FP32's tolerances, the candidate in TF32 behind their back */
    fails = compare_tf32(&o, 1, &text);
    cr_expect_gt(fails, 0, "FP32's tolerances let TF32 GEMMs pass:\n%s", text);
    free(text);
}

Test(cuda_tensorfloat, compare_command_and_bench_line)
{
    tu_need_gpu();
    static char out[1 << 16];
    int rc = tu_cuvae(out, sizeof out, "compare --tf32");
    cr_expect_eq(rc, 0, "compare --tf32: %s", out);
    cr_expect(strstr(out, "TF32's tolerances") && strstr(out, "PASS"), "%s", out);

    const char *data = tu_tmpdir();
    tu_write_patterns_idx(data, 300, 20, 3);
    cr_assert_eq(tu_cuvae(out, sizeof out, "bench --backends cuda --data %s --epochs 1 --batch-size 100 --tf32", data),
                 0, "%s", out);
    cr_expect(strstr(out, "bench impl=cuvae backend=cuda ") && strstr(out, " math=tf32 "), "%s", out);
    cr_assert_eq(tu_cuvae(out, sizeof out, "bench --backends cuda --data %s --epochs 1 --batch-size 100", data), 0,
                 "%s", out);
    cr_expect(strstr(out, " math=fp32 ") != NULL, "%s", out);
}
