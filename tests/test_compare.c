/*
 * test_compare.c: the verdicts of `cuvae compare` (src/compare.c), checked
 * here without a GPU. The candidate is the CPU backend with its GEMM results
 * moved by one unit in the last place, element by element (seeded): the kind
 * of difference a GPU's other summation order makes, and enough to flip ReLU
 * units that sit at rounding level and to flip the sign of Adam's first update
 * on gradient elements that are cancellation noise. Such a candidate must
 * pass. A candidate with a real error (GEMMs off by 1e-3 relative, or Adam
 * stepping with a learning rate 1% too large) must fail.
 */
#define _GNU_SOURCE
#include "compare.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CPU backend's own ops, called by the perturbing wrappers. */
static void (*cpu_gemm)(vae_backend *, int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);
static void (*cpu_adam)(vae_backend *, float *, const float *, float *, float *, size_t, const vae_adam_config *,
                        const float *, int *, const int *, const float *);
static double gemm_rel_error; /* 0: one ulp of noise; > 0: a systematic relative error */
static uint64_t gemm_calls;

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* C as the CPU computes it, then each element one ulp up, one ulp down or unchanged (seeded by the call
 * and the element), or scaled by 1 + gemm_rel_error when that is set. */
static void noisy_gemm(vae_backend *be, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    cpu_gemm(be, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_calls++;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            if (gemm_rel_error > 0) {
                *c = (float)(*c * (1.0 + gemm_rel_error));
                continue;
            }
            uint64_t h = splitmix(gemm_calls * 0x100000001b3ull + (uint64_t)i * 65537u + (uint64_t)j) % 3;
            if (h == 1)
                *c = nextafterf(*c, INFINITY);
            else if (h == 2)
                *c = nextafterf(*c, -INFINITY);
        }
}

static void adam_lr_too_large(vae_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                              const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                              const float *grad_scale)
{
    const float wrong = *lr * 1.01f; /* the CPU backend's scalars are host memory */
    cpu_adam(be, p, g, m, v, n, cfg, &wrong, step, skip, grad_scale);
}

static void (*cpu_one_hot)(vae_backend *, float *, const uint8_t *, const int32_t *, int, int);

/* The one-hot of the next class: each row's y rolled by one column. */
static void one_hot_of_the_next_class(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B,
                                      int K)
{
    cpu_one_hot(be, y, labels, idx, B, K);
    for (int i = 0; i < B; i++) {
        float *r = y + (size_t)i * K, last = r[K - 1];
        memmove(r + 1, r, (size_t)(K - 1) * sizeof *r);
        r[0] = last;
    }
}

typedef enum { CAND_ULP_NOISE, CAND_GEMM_OFF, CAND_ADAM_OFF, CAND_ONE_HOT_OFF } candidate_kind;

/* A CPU backend that computes like a GPU would (one ulp of noise per GEMM element), or with a real bug. */
static vae_backend *candidate(candidate_kind kind)
{
    vae_backend *be = vae_backend_cpu_init();
    cpu_gemm = be->gemm;
    cpu_adam = be->adam_step;
    cpu_one_hot = be->gather_one_hot;
    gemm_calls = 0;
    gemm_rel_error = kind == CAND_GEMM_OFF ? 1e-3 : 0;
    be->gemm = noisy_gemm;
    if (kind == CAND_ADAM_OFF)
        be->adam_step = adam_lr_too_large;
    if (kind == CAND_ONE_HOT_OFF)
        be->gather_one_hot = one_hot_of_the_next_class;
    snprintf(be->device_name, sizeof be->device_name, "%s", "CPU with perturbed arithmetic");
    return be;
}

/* Run the comparison; returns the number of tensors beyond tolerance and prints the table on failure
 * (or always, with `show`). */
static int run(const vae_compare_options *o, candidate_kind kind, int show)
{
    vae_backend *ref = vae_backend_cpu_init(), *cand = candidate(kind);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int fails = vae_compare_run(o, ref, cand, f);
    fclose(f);
    if (show || (kind == CAND_ULP_NOISE && fails))
        fprintf(stderr, "%s", buf);
    free(buf);
    vae_backend_free(ref);
    vae_backend_free(cand);
    return fails;
}

TestSuite(compare_verdicts);

Test(compare_verdicts, ulp_noise_passes_default_comparison)
{
    vae_compare_options o;
    vae_compare_options_default(&o); /* 784-400-20 relu, batch 37, 10 steps, synthetic data */
    cr_assert_eq(run(&o, CAND_ULP_NOISE, 0), 0, "one ulp of GEMM noise must pass the default comparison");
}

Test(compare_verdicts, ulp_noise_passes_long_comparison_over_many_seeds)
{
    /* ReLU flips and sign flips of tiny gradients are rare events: many seeds and steps make them happen. */
    for (uint64_t seed = 1; seed <= 6; seed++) {
        vae_compare_options o;
        vae_compare_options_default(&o);
        o.seed = seed;
        o.steps = 30;
        o.batch_size = 64;
        cr_assert_eq(run(&o, CAND_ULP_NOISE, 0), 0, "seed %llu: one ulp of GEMM noise must pass",
                     (unsigned long long)seed);
    }
}

Test(compare_verdicts, gemm_error_fails)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    cr_assert_gt(run(&o, CAND_GEMM_OFF, 0), 0, "GEMMs off by 1e-3 relative must fail");
}

Test(compare_verdicts, adam_error_fails)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    cr_assert_gt(run(&o, CAND_ADAM_OFF, 0), 0, "Adam with a 1%% larger learning rate must fail");
}

/* A cvae: its synthetic data carries labels of every class, gathered into y on each backend;
 * one ulp of noise passes and a backend that gathers the wrong class fails. */
Test(compare_verdicts, cvae_labels_are_compared)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.cfg.kind = VAE_MODEL_CVAE;
    o.cfg.classes = 7;
    o.cfg.hidden[0] = 65;
    o.cfg.latent_dim = 5;
    cr_assert_eq(run(&o, CAND_ULP_NOISE, 0), 0, "one ulp of GEMM noise must pass a cvae's comparison");
    cr_assert_gt(run(&o, CAND_ONE_HOT_OFF, 0), 0, "a one-hot of the wrong class must fail");
}

Test(compare_verdicts, identical_backends_pass_at_zero_difference)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.steps = 3;
    vae_backend *a = vae_backend_cpu_init(), *b = vae_backend_cpu_init();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int fails = vae_compare_run(&o, a, b, f);
    fclose(f);
    cr_expect_eq(fails, 0, "%s", buf);
    cr_expect(strstr(buf, "PASS") != NULL, "%s", buf);
    free(buf);
    vae_backend_free(a);
    vae_backend_free(b);
}

Test(compare_verdicts, ulp_noise_passes_on_mnist_as_the_gpu_check_runs_it)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/mnist", CUVAE_SOURCE_DIR);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", dir);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", dir);
        f = fopen(probe, "rb");
    }
    if (!f)
        cr_skip_test("MNIST is not in %s (scripts/fetch_mnist.sh puts it there)", dir);
    fclose(f);
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.data_dir = dir;
    o.steps = 20;
    o.batch_size = 128;
    cr_assert_eq(run(&o, CAND_ULP_NOISE, 0), 0, "one ulp of GEMM noise must pass on MNIST");
}
