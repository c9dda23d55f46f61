/*
 * test_compare.c: the verdicts of `cuvae compare` (src/compare.c), checked
 * here without a GPU. The candidate is the CPU backend with its GEMM results
 * moved by one unit in the last place, element by element (seeded): the kind
 * of difference a GPU's other summation order makes, and enough to flip ReLU
 * units that sit at rounding level and to flip the sign of Adam's first update
 * on gradient elements that are cancellation noise. Such a candidate must
 * pass, for every model. A candidate with a real error (GEMMs off by 1e-3
 * relative, Adam stepping with a learning rate 1% too large, or an op of one
 * model's own wrong: its label, likelihood, Gumbel-softmax, capacity,
 * binarization, clipping or float rows) must fail.
 *
 * Then the command: every model of testutil's tu_compare_models through
 * `cuvae compare --candidate cpu` (the self-check, which needs no GPU), and
 * the flags it refuses as train refuses them. The same models against the
 * CUDA backend are test_cuda_compare.c's.
 */
#define _GNU_SOURCE
#include "compare.h"
#include "testutil.h"
#include "vae_util.h"
#include "variant.h"

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

/* The CPU backend's ops of the models' own parts, and wrong versions of each. */
static void (*cpu_lik_gaussian)(vae_backend *, float *, int, float *, const float *, const float *, int, int, float,
                                const float *, float);
static void (*cpu_gumbel)(vae_backend *, float *, const float *, const float *, int, int, const float *);
static void (*cpu_capacity_weight)(vae_backend *, float *, const float *, int, int, const float *, float);
static void (*cpu_clip_scale)(vae_backend *, float *, const float *, size_t, float);
static void (*cpu_gather_rows)(vae_backend *, float *, const float *, const int32_t *, int, int);

static void lik_gaussian_sigma_off(vae_backend *be, float *loss, int T, float *dmean, const float *mean,
                                   const float *x, int B, int D, float sigma, const float *weight, float grad_scale)
{
    cpu_lik_gaussian(be, loss, T, dmean, mean, x, B, D, sigma * 1.01f, weight, grad_scale);
}

static void gumbel_temperature_off(vae_backend *be, float *y, const float *logits, const float *u, int B, int K,
                                   const float *tau)
{
    const float wrong = *tau * 1.05f; /* the CPU backend's scalars are host memory */
    cpu_gumbel(be, y, logits, u, B, K, &wrong);
}

static void capacity_gamma_off(vae_backend *be, float *weight, const float *loss, int T, int B, const float *capacity,
                               float gamma)
{
    cpu_capacity_weight(be, weight, loss, T, B, capacity, gamma * 0.5f);
}

/* A binarization that rounds instead of drawing. */
static void binarize_rounds(vae_backend *be, float *x, const float *u, size_t n)
{
    (void)be, (void)u;
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] >= 0.5f ? 1.0f : 0.0f;
}

/* Clipping that never scales. (A clipping norm off by a constant factor would hardly show: Adam's
 * step is nearly invariant to the scale of its gradients.) */
static void clip_never_scales(vae_backend *be, float *scale, const float *x, size_t n, float max_norm)
{
    cpu_clip_scale(be, scale, x, n, max_norm * 1e6f);
}

static void gather_rows_off(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D)
{
    cpu_gather_rows(be, x, data, idx, B, D);
    for (size_t i = 0; i < (size_t)B * D; i++)
        x[i] *= 1.001f;
}

typedef enum {
    CAND_ULP_NOISE, CAND_GEMM_OFF, CAND_ADAM_OFF, CAND_ONE_HOT_OFF, CAND_GAUSSIAN_OFF, CAND_GUMBEL_OFF,
    CAND_CAPACITY_OFF, CAND_BINARIZE_OFF, CAND_CLIP_OFF, CAND_ROWS_OFF
} candidate_kind;

/* A CPU backend that computes like a GPU would (one ulp of noise per GEMM element), or with a real bug. */
static vae_backend *candidate(candidate_kind kind)
{
    vae_backend *be = vae_backend_cpu_init();
    cpu_gemm = be->gemm;
    cpu_adam = be->adam_step;
    cpu_one_hot = be->gather_one_hot;
    cpu_lik_gaussian = be->lik_gaussian;
    cpu_gumbel = be->gumbel_softmax_forward;
    cpu_capacity_weight = be->capacity_weight;
    cpu_clip_scale = be->grad_clip_scale;
    cpu_gather_rows = be->gather_rows;
    gemm_calls = 0;
    gemm_rel_error = kind == CAND_GEMM_OFF ? 1e-3 : 0;
    be->gemm = noisy_gemm;
    if (kind == CAND_ADAM_OFF)
        be->adam_step = adam_lr_too_large;
    if (kind == CAND_ONE_HOT_OFF)
        be->gather_one_hot = one_hot_of_the_next_class;
    if (kind == CAND_GAUSSIAN_OFF)
        be->lik_gaussian = lik_gaussian_sigma_off;
    if (kind == CAND_GUMBEL_OFF)
        be->gumbel_softmax_forward = gumbel_temperature_off;
    if (kind == CAND_CAPACITY_OFF)
        be->capacity_weight = capacity_gamma_off;
    if (kind == CAND_BINARIZE_OFF)
        be->binarize = binarize_rounds;
    if (kind == CAND_CLIP_OFF)
        be->grad_clip_scale = clip_never_scales;
    if (kind == CAND_ROWS_OFF)
        be->gather_rows = gather_rows_off;
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
    o.cfg.variant = vae_variant_find("cvae");
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

/* ---- every model ------------------------------------------------------------------------------ */

/* A model of the family on small shapes, and the candidate whose error only it can show. */
typedef struct {
    const char *name;
    void (*setup)(vae_compare_options *o);
    candidate_kind broken;
} model_case;

static void small(vae_compare_options *o)
{
    o->cfg.hidden[0] = 65;
    o->cfg.latent_dim = 5;
    o->steps = 20;
}

static void m_gaussian(vae_compare_options *o)
{
    small(o);
    o->cfg.likelihood = VAE_LIKELIHOOD_GAUSSIAN;
    o->cfg.sigma = 0.5f;
}

static void m_joint(vae_compare_options *o)
{
    small(o);
    o->cfg.variant = vae_variant_find("joint");
    o->cfg.disc = 7;
    o->schedule.temperature_end = 0.3f;
}

static void m_joint_capacity(vae_compare_options *o)
{
    m_joint(o);
    o->cfg.cap_z = (vae_capacity){.max = 5, .iters = 8, .gamma = 30};
    o->cfg.cap_c = (vae_capacity){.max = 2, .iters = 8, .gamma = 30};
}

static void m_binarize(vae_compare_options *o)
{
    small(o);
    o->binarize = VAE_BINARIZE_DYNAMIC;
}

static void m_clip(vae_compare_options *o)
{
    small(o);
    o->clip_grad_norm = 0.5f;
    o->schedule.lr_kind = VAE_LR_COSINE;
    o->schedule.kl_warmup_epochs = 1.0f;
}

static void m_toy(vae_compare_options *o)
{
    o->data_dir = VAE_TOY_DATA;
    o->cfg.n_hidden = 2;
    o->cfg.hidden[0] = o->cfg.hidden[1] = 100;
    o->cfg.latent_dim = 1;
    o->cfg.act = VAE_ACT_TANH;
    o->cfg.likelihood = VAE_LIKELIHOOD_GAUSSIAN;
    o->cfg.sigma = VAE_TOY_SIGMA;
    o->toy.n_train = 3000;
    o->steps = 20;
}

static const model_case models[] = {
    {"gaussian likelihood", m_gaussian, CAND_GAUSSIAN_OFF},
    {"joint, annealed temperature", m_joint, CAND_GUMBEL_OFF},
    {"joint, controlled capacity", m_joint_capacity, CAND_CAPACITY_OFF},
    {"dynamic binarization", m_binarize, CAND_BINARIZE_OFF},
    {"clipping, cosine learning rate, KL warm-up", m_clip, CAND_CLIP_OFF},
    {"toy", m_toy, CAND_ROWS_OFF},
};

Test(compare_verdicts, ulp_noise_passes_every_model_and_its_own_error_fails)
{
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        vae_compare_options o;
        vae_compare_options_default(&o);
        models[k].setup(&o);
        cr_expect_eq(run(&o, CAND_ULP_NOISE, 0), 0, "%s: one ulp of GEMM noise must pass", models[k].name);
        cr_expect_gt(run(&o, models[k].broken, 0), 0, "%s: a candidate with its own op wrong must fail",
                     models[k].name);
    }
}

/* ---- the command ------------------------------------------------------------------------------ */

TestSuite(compare_command);

/* Every model through `cuvae compare --candidate cpu`: the flags reach the model (its setup lines say
 * so) and the self-check passes at zero difference. */
Test(compare_command, every_model_runs_its_self_check)
{
    static char out[1 << 16];
    for (int k = 0; k < tu_compare_model_count; k++) {
        const tu_compare_model *m = &tu_compare_models[k];
        int rc = tu_cuvae(out, sizeof out, "compare --candidate cpu --steps 20 %s 2>&1", m->flags);
        cr_expect_eq(rc, 0, "%s (%s): exit %d\n%s", m->name, m->flags, rc, out);
        cr_expect(strstr(out, m->shows) != NULL, "%s (%s): the setup lines lack '%s':\n%s", m->name, m->flags,
                  m->shows, out);
        cr_expect(strstr(out, "PASS: 0 tensors beyond tolerance") != NULL, "%s: %s", m->name, out);
        cr_expect(strstr(out, "compare: cpu (") == out, "%s: not cpu against cpu: %s", m->name, out);
    }
}

/* compare refuses what train refuses, with train's messages (the same code checks both), and
 * train's flags that change no training step. */
Test(compare_command, refuses_what_train_refuses)
{
    static const struct {
        const char *flags, *says;
    } bad[] = {
        {"--toy-n 100,10", "--toy-n: only with --data toy"},
        {"--toy-weights 1,2", "--toy-weights: only with --data toy"},
        {"--data toy --likelihood bernoulli", "the toy's values are real numbers, not in [0, 1]"},
        {"--data toy --toy-means 1,2", "give each the same number"},
        {"--data toy --binarize dynamic", "--binarize: --data toy holds value"},
        {"--data toy --binarize static", "--binarize: --data toy holds value"},
        {"--binarize sometimes", "--binarize 'sometimes': expected none, dynamic or static"},
        {"--capacity-z 5,8,30", "--capacity-z: only for --model joint"},
        {"--model joint --capacity-c 5,0,30", "--capacity-c"},
        {"--model joint --temperature 0", "--temperature: 0 is out of range"},
        {"--temperature-anneal -1", "--temperature-anneal"},
        {"--model gan", "invalid --model 'gan'"},
        {"--model joint --disc 1", "--disc: 1 is out of range"},
        {"--lr-schedule linear", "--lr-schedule"},
        {"--kl-warmup -1", "--kl-warmup"},
        {"--clip-grad-norm -2", "--clip-grad-norm"},
        {"--tf32 --candidate cpu", "--tf32"},
        {"--samples 8", "unknown option '--samples'"},
        {"--epochs 2", "unknown option '--epochs'"},
        {"--val-fraction 0.1", "unknown option '--val-fraction'"},
    };
    char out[4096];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = tu_cuvae(out, sizeof out, "compare --candidate cpu --steps 1 %s 2>&1", bad[k].flags);
        cr_expect_eq(rc, 2, "%s: exit %d, not 2 (a usage error)\n%s", bad[k].flags, rc, out);
        cr_expect(strstr(out, "cuvae compare: ") == out && strstr(out, bad[k].says) != NULL,
                  "%s: the message lacks '%s':\n%s", bad[k].flags, bad[k].says, out);
    }
    /* train says the same of the same flags */
    int rc = tu_cuvae(out, sizeof out, "train --out %s/run --data toy --likelihood bernoulli 2>&1", tu_tmpdir());
    cr_expect_eq(rc, 2, "%s", out);
    cr_expect(strstr(out, "cuvae train: --data toy --likelihood bernoulli: the toy's values are real numbers") == out,
              "%s", out);
}

Test(compare_command, help_names_every_models_flags)
{
    static char out[1 << 15];
    cr_assert_eq(tu_cuvae(out, sizeof out, "compare --help"), 0, "%s", out);
    static const char *const flags[] = {"--model KIND", "--disc K", "--likelihood", "--sigma", "--binarize",
                                        "--data toy", "--temperature-anneal", "--capacity-z", "--capacity-c",
                                        "--clip-grad-norm", "--lr-schedule", "--kl-warmup", "--toy-n", "--steps",
                                        "--candidate", "--tf32"};
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        cr_expect(strstr(out, flags[k]) != NULL, "compare --help does not name %s:\n%s", flags[k], out);
}
