/*
 * test_ops.c: the CPU backend, the reference the CUDA backend is checked
 * against (test_cuda_ops.c), so it is checked first, here. Every op of the
 * table (op_table.c) against its closed form in double and its gradients
 * against central finite differences in double; every op twice, bit for bit;
 * the drivers that test_cuda_ops runs on the GPU, run here with the CPU as
 * the candidate (they must pass) and with deliberately broken ops (they must
 * fail), and that the table runs every compute op of backend_ops.h; then the
 * single-op checks computed by hand (Adam's steps, the
 * divergence flag, the clipping factor, extreme logits, the generator).
 */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "backend_ops.h"
#include "op_drivers.h"
#include "profile_backend.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vae_backend *be;
static void setup(void) { be = vae_backend_cpu_init(); }
static void teardown(void) { vae_backend_free(be); }
TestSuite(ops, .init = setup, .fini = teardown);

/* ---- the table's drivers on the CPU -------------------------------------------------- */

TestSuite(op_table, .init = setup, .fini = teardown);

#define SEED 1234

Test(op_table, closed_forms_on_the_cpu)
{
    int cases = 0;
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            if (!c.big && (d->reference || d->check)) {
                cr_expect(op_drive_reference(d, &c, be), "%s %s: closed form (printed above)", d->name, c.shape);
                cases++;
            }
            op_case_free(&c);
        }
    }
    cr_log_info("closed forms and output checks: %d cases", cases);
}

Test(op_table, finite_differences_on_the_cpu)
{
    int cases = 0;
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        int op_cases = 0;
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            if (op_drive_fd_applies(d, &c)) {
                cr_expect(op_drive_fd(d, &c, be, NULL), "%s %s: finite differences (printed above)", d->name, c.shape);
                op_cases++;
            }
            op_case_free(&c);
        }
        /* every op with an objective is checked on some case */
        cr_expect(!d->objective || op_cases > 0, "%s has an objective but no case small enough", d->name);
        cases += op_cases;
    }
    cr_log_info("finite differences: %d cases", cases);
}

Test(op_table, twice_on_the_cpu_is_bit_identical)
{
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            cr_expect(op_drive_determinism(d, &c, be, NULL), "%s %s: two runs differ", d->name, c.shape);
            op_case_free(&c);
        }
    }
}

/* The driver test_cuda_ops runs against the GPU, with a second CPU backend as the candidate:
 * it must pass, and this proves it runs here. */
Test(op_table, cpu_against_cpu)
{
    vae_backend *cand = vae_backend_cpu_init();
    int cases = 0;
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        for (int k = 0; k < d->ncases; k++, cases++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            cr_expect(op_drive_compare(d, &c, be, cand, NULL), "%s %s: cpu against cpu", d->name, c.shape);
            op_case_free(&c);
        }
    }
    cr_log_info("%d ops, %d cases", op_table_count, cases);
    vae_backend_free(cand);
}

/* The graph driver; the CPU backend has no graphs, so its "replays" are eager runs. */
Test(op_table, graph_replay_on_the_cpu)
{
    cr_assert_null(be->graph_capture_begin, "the CPU backend captures graphs now: this test's premise is gone");
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            const int big = c.big; /* the large cases add time, not coverage, to a replay */
            op_case_free(&c);
            if (!big)
                cr_expect(op_drive_graph(d, k, SEED + (uint64_t)k, 3, be, NULL), "%s case %d: replay (printed above)",
                          d->name, k);
        }
    }
}

/* Whether the profile e (n rows) counts calls of op: its row, or one of its rows ("gemm NT ..."). */
static int profile_has(const vae_profile_entry *e, int n, const char *op)
{
    const size_t len = strlen(op);
    for (int i = 0; i < n; i++)
        if (strncmp(e[i].name, op, len) == 0 && (e[i].name[len] == '\0' || e[i].name[len] == ' '))
            return 1;
    return 0;
}

/* Every COMPUTE op of backend_ops.h is run by a descriptor of the table (a new op needs one):
 * the first case of every descriptor, through the profiler, which counts the calls of each op. */
Test(op_table, runs_every_compute_op)
{
    vae_backend *prof = vae_backend_profile_wrap(be);
    for (int t = 0; t < op_table_count; t++) {
        op_case c;
        op_case_make(op_table[t], &c, 0, SEED);
        cr_expect(op_drive_determinism(op_table[t], &c, prof, NULL), "%s %s", op_table[t]->name, c.shape);
        op_case_free(&c);
    }
    vae_profile_entry e[VAE_PROFILE_MAX_OPS];
    const int n = vae_backend_profile_read(prof, e, VAE_PROFILE_MAX_OPS);
#define RUN_BY_THE_TABLE(op) cr_expect(profile_has(e, n, #op), "no descriptor of op_table.c runs " #op);
    VAE_BACKEND_OPS(VAE_BACKEND_OP_SKIP, VAE_BACKEND_OP_SKIP, RUN_BY_THE_TABLE, VAE_BACKEND_OP_SKIP)
#undef RUN_BY_THE_TABLE
    vae_backend_free(prof);
}

/* OP_TABLE_OPS, which the sanitizer's racecheck uses to pick ops: whole names, comma-separated. */
Test(op_table, op_table_ops_selects_by_name)
{
    const op_desc *gemm = op_table[0], *bias_act = op_table[1];
    cr_assert_str_eq(gemm->name, "gemm");
    cr_assert_str_eq(bias_act->name, "bias_act");
    cr_assert_eq(unsetenv("OP_TABLE_OPS"), 0);
    cr_expect(op_selected(gemm) && op_selected(bias_act), "unset: every op");
    cr_assert_eq(setenv("OP_TABLE_OPS", "rng,bias_act", 1), 0);
    cr_expect(!op_selected(gemm) && op_selected(bias_act));
    cr_assert_eq(setenv("OP_TABLE_OPS", "gem,bias_act_x", 1), 0);
    cr_expect(!op_selected(gemm) && !op_selected(bias_act), "a prefix is not a name");
    char name[64];
    cr_expect_str_eq(op_selection_unknown(name, sizeof name), "gem", "a misspelt name is not reported");
    cr_assert_eq(setenv("OP_TABLE_OPS", "lik_bernoulli,loss_accumulate", 1), 0);
    cr_expect_null(op_selection_unknown(name, sizeof name), "known names reported: %s", name);
    cr_assert_eq(setenv("OP_TABLE_OPS", "", 1), 0);
    cr_expect(op_selected(gemm), "empty: every op");
    cr_expect_null(op_selection_unknown(name, sizeof name));
    cr_assert_eq(unsetenv("OP_TABLE_OPS"), 0);
}

/* ---- the drivers fail on broken ops ------------------------------------------------------- */

static const op_desc *find_op(const char *name)
{
    for (int t = 0; t < op_table_count; t++)
        if (strcmp(op_table[t]->name, name) == 0)
            return op_table[t];
    cr_assert_fail("no op %s in the table", name);
    return NULL;
}

/* reparam_forward that forgets the last row: the poison shows */
static void broken_reparam_last_row(vae_backend *b, const op_case *c, void *const *d)
{
    b->reparam_forward(b, d[3], d[0], d[1], c->i[0] - 1, c->i[1]);
    b->reparam_backward(b, d[4], d[2], d[0], d[1], c->i[0], c->i[1]);
}

/* reparam_backward applied twice: a wrong gradient */
static void broken_reparam_twice(vae_backend *b, const op_case *c, void *const *d)
{
    b->reparam_forward(b, d[3], d[0], d[1], c->i[0], c->i[1]);
    b->reparam_backward(b, d[4], d[2], d[0], d[1], c->i[0], c->i[1]);
    b->reparam_backward(b, d[4], d[2], d[0], d[1], c->i[0], c->i[1]);
}

/* bias_act_backward whose dbias is added to itself (twice the sum: a gradient accumulated once
 * too often) */
static void broken_bias_act_doubled(vae_backend *b, const op_case *c, void *const *d)
{
    const int B = c->i[0], N = c->i[1];
    b->bias_act_forward(b, d[0], d[1], B, N, (vae_act)c->i[2]);
    b->bias_act_backward(b, d[3], d[4], d[2], d[0], B, N, (vae_act)c->i[2]);
    b->bias_act_forward(b, d[4], d[4], 1, N, VAE_ACT_NONE);
}

/* gemm with one row too many: a write past the end of C */
static void broken_gemm_extra_row(vae_backend *b, const op_case *c, void *const *d)
{
    const int *a = c->i;
    b->gemm(b, a[0], a[1], a[2] + 1, a[3], a[4], c->f[0], d[0], a[5], d[1], a[6], c->f[1], d[2], a[7]);
}

/* gemm with alpha off by 5e-5 relative: every element within gemm's rtol, the whole buffer not */
static void broken_gemm_alpha(vae_backend *b, const op_case *c, void *const *d)
{
    const int *a = c->i;
    b->gemm(b, a[0], a[1], a[2], a[3], a[4], c->f[0] * (1 + 5e-5f), d[0], a[5], d[1], a[6], c->f[1], d[2], a[7]);
}

/* the KL term without a gradient, writing it all the same */
static void broken_kl_writes_gradient(vae_backend *b, const op_case *c, void *const *d)
{
    const int base = c->i[6];
    b->kl_gaussian(b, (float *)d[base + 1] + c->i[3], c->i[2], d[base + 2], d[0], c->i[0], c->i[1],
                   c->i[5] ? d[base] : NULL, c->f[0]);
}

/* the KL term written into column 0 whatever its column */
static void broken_kl_column(vae_backend *b, const op_case *c, void *const *d)
{
    const int base = c->i[6];
    b->kl_gaussian(b, d[base + 1], c->i[2], c->i[4] ? d[base + 2] : NULL, d[0], c->i[0], c->i[1],
                   c->i[5] ? d[base] : NULL, c->f[0]);
}

/* gather_batch that scales its input bytes in place: an input changed */
static void broken_gather_changes_input(vae_backend *b, const op_case *c, void *const *d)
{
    b->gather_batch(b, d[0], d[1], d[2], c->i[0], c->i[1]);
    b->memset_zero(b, d[1], 1);
}

/* gather_rows that copies the last row's -0 as +0 */
static void broken_gather_rows_zero_sign(vae_backend *b, const op_case *c, void *const *d)
{
    const int B = c->i[0], D = c->i[1];
    b->gather_rows(b, d[0], d[1], d[2], B, D);
    b->memset_zero(b, (float *)d[0] + (size_t)(B - 1) * D, sizeof(float));
}

/* gather_batch whose result depends on how often it ran */
static void broken_gather_counts(vae_backend *b, const op_case *c, void *const *d)
{
    static int calls;
    b->gather_batch(b, d[0], d[1], d[2], c->i[0], c->i[1]);
    if (calls++ % 2)
        b->memset_zero(b, d[0], (size_t)c->i[0] * (size_t)c->i[1] * sizeof(float));
}

static op_case case_where(const op_desc *d, const char *shape)
{
    op_case c;
    for (int k = 0; k < d->ncases; k++) {
        op_case_make(d, &c, k, SEED);
        if (strcmp(c.shape, shape) == 0)
            return c;
        op_case_free(&c);
    }
    cr_assert_fail("%s has no case %s", d->name, shape);
    return c;
}

Test(op_table, drivers_catch_broken_ops)
{
    vae_backend *cand = vae_backend_cpu_init();
    cr_log_info("the failures printed below are expected: each comes from a deliberately broken op");

    const op_desc *rp = find_op("reparam");
    op_case c = case_where(rp, "B=5 Z=7");
    cr_assert(op_drive_compare(rp, &c, be, cand, NULL), "the unbroken reparam fails");
    cr_assert(op_drive_fd(rp, &c, be, NULL), "the unbroken reparam fails");
    cr_expect_not(op_drive_compare(rp, &c, be, cand, broken_reparam_last_row), "a row never written passed");
    cr_expect_not(op_drive_fd(rp, &c, be, broken_reparam_twice), "a doubled gradient passed finite differences");
    cr_expect_not(op_drive_compare(rp, &c, be, cand, broken_reparam_twice), "a doubled gradient passed");
    op_case_free(&c);

    const op_desc *ba = find_op("bias_act");
    c = case_where(ba, "tanh B=5 N=13");
    cr_assert(op_drive_compare(ba, &c, be, cand, NULL), "the unbroken bias_act fails");
    cr_expect_not(op_drive_compare(ba, &c, be, cand, broken_bias_act_doubled), "a doubled dbias passed");
    cr_expect_not(op_drive_fd(ba, &c, be, broken_bias_act_doubled), "a doubled dbias passed finite differences");
    op_case_free(&c);

    const op_desc *gm = find_op("gemm");
    c = case_where(gm, "ta=0 tb=0 M=7 N=5 K=13 lda=16 ldb=10 ldc=7 beta=0");
    cr_assert(op_drive_compare(gm, &c, be, cand, NULL), "the unbroken gemm fails");
    cr_expect_not(op_drive_compare(gm, &c, be, cand, broken_gemm_extra_row), "a write past the end passed");
    op_case_free(&c);
    c = case_where(gm, "ta=0 tb=0 M=128 N=784 K=400 lda=403 ldb=789 ldc=786 beta=0");
    cr_assert(op_drive_compare(gm, &c, be, cand, NULL), "the unbroken gemm fails");
    cr_expect_not(op_drive_compare(gm, &c, be, cand, broken_gemm_alpha), "a small error everywhere passed");
    op_case_free(&c);

    const op_desc *kl = find_op("kl_gaussian");
    c = case_where(kl, "B=5 Z=3 T=2 t=1 forward only, weight NULL");
    cr_assert(op_drive_compare(kl, &c, be, cand, NULL), "the unbroken KL fails");
    cr_expect_not(op_drive_compare(kl, &c, be, cand, broken_kl_writes_gradient),
                  "a gradient written through a NULL pointer's buffer passed");
    cr_expect_not(op_drive_compare(kl, &c, be, cand, broken_kl_column), "the wrong column passed");
    op_case_free(&c);

    const op_desc *gb = find_op("gather_batch");
    c = case_where(gb, "B=5 D=13 images=300");
    cr_assert(op_drive_compare(gb, &c, be, cand, NULL), "the unbroken gather fails");
    cr_expect_not(op_drive_compare(gb, &c, be, cand, broken_gather_changes_input), "a changed input passed");
    cr_expect_not(op_drive_determinism(gb, &c, be, broken_gather_counts), "a run-count-dependent op passed");
    op_case_free(&c);
    const op_desc *gr = find_op("gather_rows");
    c = case_where(gr, "B=5 D=13 rows=300");
    cr_assert(op_drive_compare(gr, &c, be, cand, NULL), "the unbroken gather_rows fails");
    cr_expect_not(op_drive_compare(gr, &c, be, cand, broken_gather_rows_zero_sign), "+0 for -0 passed an exact op");
    op_case_free(&c);
    cr_expect_not(op_drive_graph(gb, 0, SEED, 3, be, broken_gather_counts),
                  "a replay unlike the eager run passed");
    vae_backend_free(cand);
}

/* ---- single ops, by hand ------------------------------------------------------------------ */

Test(ops, lik_bernoulli_extreme_logits_stay_finite)
{
    float logits[4] = {-200.0f, 200.0f, -90.0f, 90.0f}, x[4] = {1, 0, 0, 1};
    float rows[1], dl[4];
    be->lik_bernoulli(be, rows, 1, dl, logits, x, 1, 4, NULL, 1.0f);
    cr_assert(isfinite(rows[0]) && fabsf(rows[0] - 400.0f) < 1e-2f, "recon %g, expected 400", rows[0]);
    for (int i = 0; i < 4; i++)
        cr_assert(isfinite(dl[i]) && fabsf(dl[i]) <= 1.0f, "dlogits[%d] = %g", i, dl[i]);
    cr_assert_float_eq(dl[0], -1.0f, 1e-6);
    cr_assert_float_eq(dl[1], 1.0f, 1e-6);
}

/* Without gradients each loss term is the same as with them, bit for bit. */
Test(ops, loss_terms_forward_only_equal_the_fused_pass)
{
    const int B = 5, D = 13, Z = 3, T = 3;
    float logits[65], x[65], stats[30], dl[65], ds[30], rows[15], rows2[15];
    const float w = 0.7f;
    tu_fill_uniform(logits, 65, 31, -4, 4);
    tu_fill_uniform(x, 65, 32, 0, 1);
    tu_fill_uniform(stats, 30, 33, -2, 2);
    be->lik_bernoulli(be, rows, T, dl, logits, x, B, D, NULL, 1.0f / B);
    be->lik_gaussian(be, rows + 1, T, dl, logits, x, B, D, 0.3f, &w, 1.0f / B);
    be->kl_gaussian(be, rows + 2, T, ds, stats, B, Z, &w, 1.0f / B);
    be->lik_bernoulli(be, rows2, T, NULL, logits, x, B, D, NULL, 1.0f / B);
    be->lik_gaussian(be, rows2 + 1, T, NULL, logits, x, B, D, 0.3f, &w, 1.0f / B);
    be->kl_gaussian(be, rows2 + 2, T, NULL, stats, B, Z, &w, 1.0f / B);
    cr_assert(memcmp(rows, rows2, sizeof rows) == 0, "a forward-only loss term differs from the fused pass");
}

Test(ops, adam_matches_hand_computed_steps)
{
    /* p = 1, lr 0.1, betas (0.9, 0.999), eps 1e-8; gradients 0.5 then -1.
     * t=1: m = 0.05, v = 0.00025, p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)                = 0.900000002
     * t=2: m = -0.055, v = 0.00124975, mhat = -0.2894737, sqrt(vhat) = 0.7906883,
     *      p = 0.900000002 + 0.1 * 0.2894737 / 0.7906883                          = 0.93661035 */
    vae_adam_config cfg = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    float p[2] = {1.0f, -3.0f}, g[2] = {0.5f, 0.0f}, m[2] = {0}, v[2] = {0};
    int step = 0;
    be->adam_step(be, p, g, m, v, 2, &cfg, &cfg.lr, &step, NULL, NULL);
    cr_assert_eq(step, 1);
    /* float rounds (1 - 0.9f) and (1 - 0.999f) by up to 1.3e-5 relative */
    cr_assert_float_eq(m[0], 0.05f, 0.05f * 1e-4);
    cr_assert_float_eq(v[0], 0.00025f, 0.00025f * 1e-4);
    cr_assert_float_eq(p[0], 0.900000002f, 1e-6);
    cr_assert_float_eq(p[1], -3.0f, 0.0f, "a zero gradient must leave the parameter unchanged");
    g[0] = -1.0f;
    be->adam_step(be, p, g, m, v, 2, &cfg, &cfg.lr, &step, NULL, NULL);
    cr_assert_eq(step, 2);
    cr_assert_float_eq(m[0], -0.055f, 0.055f * 1e-4);
    cr_assert_float_eq(v[0], 0.00124975f, 0.00124975f * 1e-4);
    cr_assert_float_eq(p[0], 0.93661035f, 2e-6);
}

Test(ops, check_finite_sets_and_latches_the_flag)
{
    float x[37];
    tu_fill_uniform(x, 37, 41, -1e30f, 1e30f);
    x[5] = 3.4e38f; /* near FLT_MAX: finite */
    int flag = 0;
    be->check_finite(be, &flag, x, 37, 7);
    cr_assert_eq(flag, 0, "all finite, yet the flag is %d", flag);
    be->check_finite(be, &flag, x, 0, 7);
    cr_assert_eq(flag, 0);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const size_t where[] = {0, 18, 36};
    for (int b = 0; b < 3; b++)
        for (int w = 0; w < 3; w++) {
            float y[37];
            memcpy(y, x, sizeof y);
            y[where[w]] = bad[b];
            flag = 0;
            be->check_finite(be, &flag, y, 37, 2);
            cr_expect_eq(flag, 2, "%g at %zu: flag %d", (double)bad[b], where[w], flag);
            /* latched: a later check, bad or good, leaves the first code */
            be->check_finite(be, &flag, y, 37, 5);
            be->check_finite(be, &flag, x, 37, 6);
            cr_expect_eq(flag, 2, "the flag moved from 2 to %d", flag);
        }
    /* a bad value past n is not looked at */
    float y[4] = {1, 2, 3, NAN};
    flag = 0;
    be->check_finite(be, &flag, y, 3, 1);
    cr_expect_eq(flag, 0);
}

Test(ops, adam_skips_everything_while_the_flag_is_set)
{
    vae_adam_config cfg = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    float p[3] = {1.0f, -3.0f, 0.5f}, g[3] = {0.5f, NAN, 2.0f}, m[3] = {0.1f, 0.2f, 0.3f}, v[3] = {1, 2, 3};
    float p0[3], m0[3], v0[3];
    memcpy(p0, p, sizeof p);
    memcpy(m0, m, sizeof m);
    memcpy(v0, v, sizeof v);
    int step = 4, flag = 2;
    be->adam_step(be, p, g, m, v, 3, &cfg, &cfg.lr, &step, &flag, NULL);
    cr_assert_eq(step, 4, "the step counter moved to %d", step);
    cr_assert(memcmp(p, p0, sizeof p) == 0 && memcmp(m, m0, sizeof m) == 0 && memcmp(v, v0, sizeof v) == 0,
              "parameters or moments changed while the flag was set");
    /* a clear flag is the same as no flag at all, bit for bit */
    float q[3], mq[3], vq[3];
    g[1] = 0.25f;
    memcpy(q, p, sizeof p);
    memcpy(mq, m, sizeof m);
    memcpy(vq, v, sizeof v);
    int step_q = 4;
    flag = 0;
    be->adam_step(be, p, g, m, v, 3, &cfg, &cfg.lr, &step, &flag, NULL);
    be->adam_step(be, q, g, mq, vq, 3, &cfg, &cfg.lr, &step_q, NULL, NULL);
    cr_assert_eq(step, 5);
    cr_assert(memcmp(p, q, sizeof p) == 0 && memcmp(m, mq, sizeof m) == 0 && memcmp(v, vq, sizeof v) == 0);
}

Test(ops, adam_multiplies_the_gradient_by_the_clipping_factor)
{
    /* Adam with g * 0.25 equals Adam with the pre-scaled gradient (exact: a power of two),
     * and a factor of 1 equals no factor, bit for bit. */
    vae_adam_config cfg = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    float g[5], gq[5], p[5], q[5], r[5], m[5] = {0}, v[5] = {0}, mq[5] = {0}, vq[5] = {0}, mr[5] = {0}, vr[5] = {0};
    tu_fill_uniform(g, 5, 51, -2, 2);
    tu_fill_uniform(p, 5, 52, -1, 1);
    memcpy(q, p, sizeof p);
    memcpy(r, p, sizeof p);
    for (int i = 0; i < 5; i++)
        gq[i] = g[i] * 0.25f;
    int sp = 0, sq = 0, sr = 0;
    const float quarter = 0.25f, one = 1.0f;
    for (int k = 0; k < 3; k++) {
        be->adam_step(be, p, g, m, v, 5, &cfg, &cfg.lr, &sp, NULL, &quarter);
        be->adam_step(be, q, gq, mq, vq, 5, &cfg, &cfg.lr, &sq, NULL, NULL);
        be->adam_step(be, r, gq, mr, vr, 5, &cfg, &cfg.lr, &sr, NULL, &one);
    }
    cr_assert(memcmp(p, q, sizeof p) == 0 && memcmp(m, mq, sizeof m) == 0 && memcmp(v, vq, sizeof v) == 0,
              "Adam with a factor of 0.25 differs from Adam on g/4");
    cr_assert(memcmp(r, q, sizeof r) == 0, "a factor of 1 changed the update");
}

Test(ops, grad_clip_scale_is_pytorchs_factor)
{
    /* |(3, 4)| = 5: max_norm 1 gives 1 / (5 + 1e-6); max_norm 10 gives 1 (never above). */
    const float x[2] = {3.0f, 4.0f};
    float s = -1;
    be->grad_clip_scale(be, &s, x, 2, 1.0f);
    cr_assert_eq(s, (float)(1.0 / (5.0 + 1e-6)), "scale %.9g", (double)s);
    be->grad_clip_scale(be, &s, x, 2, 10.0f);
    cr_assert_eq(s, 1.0f);
    be->grad_clip_scale(be, &s, x, 0, 1.0f); /* an empty buffer has norm 0 */
    cr_assert_eq(s, 1.0f);
    /* a long buffer: squares summed in double */
    enum { N = 100003 };
    float *y = malloc(N * sizeof *y);
    tu_fill_uniform(y, N, 53, -1e-2f, 1e-2f);
    double ss = 0;
    for (int i = 0; i < N; i++)
        ss += (double)y[i] * y[i];
    be->grad_clip_scale(be, &s, y, N, 0.5f);
    double want = 0.5 / (sqrt(ss) + 1e-6);
    cr_assert(want < 1.0, "the test buffer's norm %g is too small to clip", sqrt(ss));
    cr_assert_eq(s, (float)want, "scale %.9g, expected %.9g", (double)s, want);
    free(y);
}

Test(ops, rng_is_seeded_and_resettable)
{
    float a[64], b[64], c[64];
    vae_rng *r1 = be->rng_init(be, 7), *r2 = be->rng_init(be, 7), *r3 = be->rng_init(be, 8);
    be->rng_normal(be, r1, a, 64);
    be->rng_normal(be, r2, b, 64);
    be->rng_normal(be, r3, c, 64);
    cr_assert(memcmp(a, b, sizeof a) == 0, "same seed, different numbers");
    cr_assert(memcmp(a, c, sizeof a) != 0, "different seeds, same numbers");
    be->rng_reset(be, r1);
    be->rng_normal(be, r1, b, 64);
    cr_assert(memcmp(a, b, sizeof a) == 0, "rng_reset did not restart the sequence");
    double mean = 0, var = 0;
    float big[20000];
    be->rng_normal(be, r1, big, 20000);
    for (int i = 0; i < 20000; i++)
        mean += big[i] / 20000.0;
    for (int i = 0; i < 20000; i++)
        var += (big[i] - mean) * (big[i] - mean) / 20000.0;
    cr_assert(fabs(mean) < 0.03 && fabs(var - 1) < 0.05, "N(0,1)? mean %g var %g", mean, var);
    be->rng_uniform(be, r3, big, 20000);
    for (int i = 0; i < 20000; i++)
        cr_assert(big[i] > 0 && big[i] <= 1);
    be->rng_free(be, r1);
    be->rng_free(be, r2);
    be->rng_free(be, r3);
}
