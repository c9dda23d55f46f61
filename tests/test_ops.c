/*
 * test_ops.c: every CPU backend op against its closed form in double
 * precision, and every op's backward against central finite differences
 * computed in double precision. The CPU backend is the reference the CUDA
 * backend is checked against (test_cuda_ops.c), so it is checked first, here.
 */
#include "backend.h"
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

#define FD_H 1e-6

/* ---- double-precision closed forms ------------------------------------------- */

static double act_d(double x, vae_act a)
{
    switch (a) {
    case VAE_ACT_RELU: return x > 0 ? x : 0;
    case VAE_ACT_TANH: return tanh(x);
    default: return x;
    }
}

static double softplus_d(double l) { return fmax(l, 0) + log1p(exp(-fabs(l))); }

/* sum_ij w_ij * act(x_ij + b_j) */
static double bias_act_objective(const double *x, const double *b, const float *w, int B, int N, vae_act a)
{
    double s = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++)
            s += w[i * N + j] * act_d(x[i * N + j] + b[j], a);
    return s;
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Keep pre-activations away from relu's kink so differences are smooth. */
static void push_from_zero(float *x, const float *b, int B, int N)
{
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++) {
            float v = x[i * N + j] + b[j];
            if (fabsf(v) < 0.05f)
                x[i * N + j] += v >= 0 ? 0.1f : -0.1f;
        }
}

static void check_bias_act(vae_act a, int B, int N, uint64_t seed)
{
    size_t n = (size_t)B * N;
    float *x = malloc(n * 4), *y = malloc(n * 4), *w = malloc(n * 4), *dx = malloc(n * 4);
    float *b = malloc(N * 4), *db = calloc(N, 4);
    tu_fill_uniform(x, n, seed, -2, 2);
    tu_fill_uniform(b, N, seed + 1, -1, 1);
    tu_fill_uniform(w, n, seed + 2, -1, 1);
    push_from_zero(x, b, B, N);
    memcpy(y, x, n * 4);
    be->bias_act_forward(be, y, b, B, N, a);
    double *xd = to_double(x, n), *bd = to_double(b, N);
    float *ref = malloc(n * 4);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++)
            ref[i * N + j] = (float)act_d(xd[i * N + j] + bd[j], a);
    cr_assert(tu_allclose("bias_act_forward", y, ref, n, 1e-6, 1e-6));

    for (int j = 0; j < N; j++)
        db[j] = 0.25f; /* parameter gradients accumulate: start from a known value */
    be->bias_act_backward(be, dx, db, w, y, B, N, a);
    double *fdx = malloc(n * sizeof *fdx), *fdb = malloc(N * sizeof *fdb);
    for (size_t k = 0; k < n; k++) {
        double keep = xd[k];
        xd[k] = keep + FD_H;
        double fp = bias_act_objective(xd, bd, w, B, N, a);
        xd[k] = keep - FD_H;
        double fm = bias_act_objective(xd, bd, w, B, N, a);
        xd[k] = keep;
        fdx[k] = (fp - fm) / (2 * FD_H);
    }
    for (int j = 0; j < N; j++) {
        double keep = bd[j];
        bd[j] = keep + FD_H;
        double fp = bias_act_objective(xd, bd, w, B, N, a);
        bd[j] = keep - FD_H;
        double fm = bias_act_objective(xd, bd, w, B, N, a);
        bd[j] = keep;
        fdb[j] = 0.25 + (fp - fm) / (2 * FD_H);
    }
    double *dxd = to_double(dx, n), *dbd = to_double(db, N);
    cr_assert(tu_allclose_d("bias_act_backward dx vs finite differences", dxd, fdx, n, 1e-5, 1e-4));
    cr_assert(tu_allclose_d("bias_act_backward dbias vs finite differences", dbd, fdb, N, 1e-4, 1e-4));
    free(x); free(y); free(w); free(dx); free(b); free(db); free(xd); free(bd); free(ref);
    free(fdx); free(fdb); free(dxd); free(dbd);
}

Test(ops, bias_act_relu) { check_bias_act(VAE_ACT_RELU, 5, 13, 11); }
Test(ops, bias_act_tanh) { check_bias_act(VAE_ACT_TANH, 7, 11, 12); }
Test(ops, bias_act_none) { check_bias_act(VAE_ACT_NONE, 3, 17, 13); }

Test(ops, gemm_all_transposes)
{
    const int M = 7, N = 5, K = 13, lda_pad = 3, ldb_pad = 2, ldc_pad = 4;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + lda_pad, ldb = (tb ? K : N) + ldb_pad, ldc = N + ldc_pad;
            int arows = ta ? K : M, brows = tb ? N : K;
            float *A = malloc((size_t)arows * lda * 4), *Bm = malloc((size_t)brows * ldb * 4);
            float *C = malloc((size_t)M * ldc * 4), *ref = malloc((size_t)M * ldc * 4);
            tu_fill_uniform(A, (size_t)arows * lda, 100 + ta, -1, 1);
            tu_fill_uniform(Bm, (size_t)brows * ldb, 200 + tb, -1, 1);
            tu_fill_uniform(C, (size_t)M * ldc, 300, -1, 1);
            memcpy(ref, C, (size_t)M * ldc * 4);
            const float alpha = 0.75f, beta = 0.5f;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[k * lda + i] : A[i * lda + k];
                        double b = tb ? Bm[j * ldb + k] : Bm[k * ldb + j];
                        s += a * b;
                    }
                    ref[i * ldc + j] = (float)(alpha * s + beta * (double)C[i * ldc + j]);
                }
            be->gemm(be, ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
            char what[64];
            snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d", ta, tb);
            cr_assert(tu_allclose(what, C, ref, (size_t)M * ldc, 1e-5, 1e-5));
            free(A); free(Bm); free(C); free(ref);
        }
}

/* sum w * z, z = mu + eps * exp(lv / 2) */
static double reparam_objective(const double *stats, const float *eps, const float *w, int B, int Z)
{
    double s = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Z; j++)
            s += w[i * Z + j] * (stats[i * 2 * Z + j] + eps[i * Z + j] * exp(0.5 * stats[i * 2 * Z + Z + j]));
    return s;
}

Test(ops, reparam_forward_backward)
{
    const int B = 5, Z = 3;
    size_t ns = (size_t)B * 2 * Z, nz = (size_t)B * Z;
    float stats[30], eps[15], w[15], z[15], dstats[30], zref[15];
    tu_fill_uniform(stats, ns, 21, -1.5f, 1.5f);
    tu_fill_uniform(eps, nz, 22, -2, 2);
    tu_fill_uniform(w, nz, 23, -1, 1);
    be->reparam_forward(be, z, stats, eps, B, Z);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Z; j++)
            zref[i * Z + j] = (float)(stats[i * 2 * Z + j] + (double)eps[i * Z + j] * exp(0.5 * stats[i * 2 * Z + Z + j]));
    cr_assert(tu_allclose("reparam_forward", z, zref, nz, 1e-6, 1e-6));

    for (size_t k = 0; k < ns; k++)
        dstats[k] = 0.5f; /* backward adds to what the loss wrote */
    be->reparam_backward(be, dstats, w, stats, eps, B, Z);
    double *sd = to_double(stats, ns), fd[30], got[30];
    for (size_t k = 0; k < ns; k++) {
        double keep = sd[k];
        sd[k] = keep + FD_H;
        double fp = reparam_objective(sd, eps, w, B, Z);
        sd[k] = keep - FD_H;
        double fm = reparam_objective(sd, eps, w, B, Z);
        sd[k] = keep;
        fd[k] = 0.5 + (fp - fm) / (2 * FD_H);
        got[k] = dstats[k];
    }
    cr_assert(tu_allclose_d("reparam_backward vs finite differences", got, fd, ns, 1e-5, 1e-4));
    free(sd);
}

/* log N(z; 0, I) - log N(z; mu, exp(logvar)) from the densities themselves, in double, with
 * their 2 pi constants and (z - mu)^2 / exp(logvar): the op's eps^2 form must agree. */
Test(ops, gauss_log_ratio_is_the_log_density_ratio)
{
    const int R = 7, Z = 5;
    float stats[70], eps[35], z[35], out[8];
    tu_fill_uniform(stats, (size_t)R * 2 * Z, 61, -2.0f, 2.0f);
    tu_fill_uniform(eps, (size_t)R * Z, 62, -3.0f, 3.0f);
    be->reparam_forward(be, z, stats, eps, R, Z);
    out[R] = 12345.0f; /* a guard after the rows: untouched */
    be->gauss_log_ratio(be, out, z, stats, eps, R, Z);
    float ref[7];
    const double log2pi = 1.8378770664093454836; /* log(2 pi) */
    for (int i = 0; i < R; i++) {
        double lp = 0, lq = 0;
        for (int j = 0; j < Z; j++) {
            double zj = z[i * Z + j], mu = stats[i * 2 * Z + j], lv = stats[i * 2 * Z + Z + j];
            lp += -0.5 * (log2pi + zj * zj);
            lq += -0.5 * (log2pi + lv + (zj - mu) * (zj - mu) / exp(lv));
        }
        ref[i] = (float)(lp - lq);
    }
    cr_assert(tu_allclose("gauss_log_ratio", out, ref, (size_t)R, 1e-4, 1e-5));
    cr_assert_eq(out[R], 12345.0f, "wrote past its R rows");
}

/* grad_scale * sum_i (recon_i + beta * kl_i), recon and kl in double */
static double loss_objective(const double *logits, const float *x, const double *stats, int B, int D, int Z,
                             double beta, double scale, double *rows)
{
    double total = 0;
    for (int i = 0; i < B; i++) {
        double recon = 0, kl = 0;
        for (int d = 0; d < D; d++) {
            double l = logits[i * D + d];
            recon += softplus_d(l) - l * x[i * D + d];
        }
        for (int j = 0; j < Z; j++) {
            double mu = stats[i * 2 * Z + j], lv = stats[i * 2 * Z + Z + j];
            kl += -0.5 * (1 + lv - mu * mu - exp(lv));
        }
        if (rows) {
            rows[2 * i] = recon;
            rows[2 * i + 1] = kl;
        }
        total += recon + beta * kl;
    }
    return scale * total;
}

/* The Bernoulli term and the Gaussian KL into the two columns of rows (B, 2), with the
 * KL's gradient weighted by beta (a host scalar here: the CPU backend's memory). */
static void loss_bce_kl(vae_backend *b, float *rows, float *dlogits, float *dstats, const float *logits,
                        const float *x, const float *stats, int B, int D, int Z, float beta, float scale)
{
    b->lik_bernoulli(b, rows, 2, dlogits, logits, x, B, D, NULL, scale);
    b->kl_gaussian(b, rows + 1, 2, dstats, stats, B, Z, &beta, scale);
}

static void check_loss(int B, int D, int Z, float lmax, uint64_t seed)
{
    size_t nl = (size_t)B * D, ns = (size_t)B * 2 * Z;
    float *logits = malloc(nl * 4), *x = malloc(nl * 4), *stats = malloc(ns * 4);
    float *dlogits = malloc(nl * 4), *dstats = malloc(ns * 4), *rows = malloc((size_t)B * 2 * 4);
    tu_fill_uniform(logits, nl, seed, -lmax, lmax);
    tu_fill_uniform(x, nl, seed + 1, 0, 1);
    tu_fill_uniform(stats, ns, seed + 2, -2, 2);
    const float beta = 0.7f, scale = 1.0f / B;
    loss_bce_kl(be, rows, dlogits, dstats, logits, x, stats, B, D, Z, beta, scale);

    double *ld = to_double(logits, nl), *sd = to_double(stats, ns);
    double *rref = malloc((size_t)B * 2 * sizeof(double)), *rgot = to_double(rows, (size_t)B * 2);
    loss_objective(ld, x, sd, B, D, Z, beta, scale, rref);
    cr_assert(tu_allclose_d("loss_bce_kl rows [recon, kl]", rgot, rref, (size_t)B * 2, 1e-4, 1e-5));

    double *fdl = malloc(nl * sizeof(double)), *fds = malloc(ns * sizeof(double));
    for (size_t k = 0; k < nl; k++) {
        double keep = ld[k];
        ld[k] = keep + FD_H;
        double fp = loss_objective(ld, x, sd, B, D, Z, beta, scale, NULL);
        ld[k] = keep - FD_H;
        double fm = loss_objective(ld, x, sd, B, D, Z, beta, scale, NULL);
        ld[k] = keep;
        fdl[k] = (fp - fm) / (2 * FD_H);
    }
    for (size_t k = 0; k < ns; k++) {
        double keep = sd[k];
        sd[k] = keep + FD_H;
        double fp = loss_objective(ld, x, sd, B, D, Z, beta, scale, NULL);
        sd[k] = keep - FD_H;
        double fm = loss_objective(ld, x, sd, B, D, Z, beta, scale, NULL);
        sd[k] = keep;
        fds[k] = (fp - fm) / (2 * FD_H);
    }
    double *gl = to_double(dlogits, nl), *gs = to_double(dstats, ns);
    cr_assert(tu_allclose_d("loss_bce_kl dlogits vs finite differences", gl, fdl, nl, 1e-6, 1e-4));
    cr_assert(tu_allclose_d("loss_bce_kl dstats vs finite differences", gs, fds, ns, 1e-6, 1e-4));

    /* forward only: same rows, gradients untouched */
    float *rows2 = malloc((size_t)B * 2 * 4);
    loss_bce_kl(be, rows2, NULL, NULL, logits, x, stats, B, D, Z, beta, scale);
    cr_assert(memcmp(rows, rows2, (size_t)B * 2 * 4) == 0, "forward-only loss differs from the fused pass");
    free(logits); free(x); free(stats); free(dlogits); free(dstats); free(rows); free(rows2);
    free(ld); free(sd); free(rref); free(rgot); free(fdl); free(fds); free(gl); free(gs);
}

Test(ops, loss_bce_kl_small) { check_loss(5, 13, 3, 4.0f, 31); }
Test(ops, loss_bce_kl_mnist_width) { check_loss(3, 784, 20, 6.0f, 32); }

Test(ops, loss_bce_kl_extreme_logits_stay_finite)
{
    float logits[4] = {-200.0f, 200.0f, -90.0f, 90.0f}, x[4] = {1, 0, 0, 1}, stats[2] = {0, 0};
    float rows[2], dl[4], ds[2];
    loss_bce_kl(be, rows, dl, ds, logits, x, stats, 1, 4, 1, 1.0f, 1.0f);
    cr_assert(isfinite(rows[0]) && fabsf(rows[0] - 400.0f) < 1e-2f, "recon %g, expected 400", rows[0]);
    for (int i = 0; i < 4; i++)
        cr_assert(isfinite(dl[i]) && fabsf(dl[i]) <= 1.0f, "dlogits[%d] = %g", i, dl[i]);
    cr_assert_float_eq(dl[0], -1.0f, 1e-6);
    cr_assert_float_eq(dl[1], 1.0f, 1e-6);
}

Test(ops, loss_accumulate_sums_in_double)
{
    const int B = 7;
    float rows[14];
    tu_fill_uniform(rows, 14, 41, 0, 300);
    double acc[2] = {1.5, -2.5}, r0 = 1.5, r1 = -2.5;
    for (int i = 0; i < B; i++) {
        r0 += rows[2 * i];
        r1 += rows[2 * i + 1];
    }
    be->loss_accumulate(be, acc, rows, B, 2);
    cr_assert(fabs(acc[0] - r0) < 1e-9 && fabs(acc[1] - r1) < 1e-9, "acc %g %g, expected %g %g", acc[0], acc[1], r0, r1);
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

Test(ops, gather_batch_scales_bytes)
{
    const int N = 6, D = 5, B = 4;
    uint8_t data[30];
    for (int i = 0; i < N * D; i++)
        data[i] = (uint8_t)(i * 37 % 256);
    int32_t idx[4] = {5, 0, 3, 3};
    float x[20];
    be->gather_batch(be, x, data, idx, B, D);
    for (int i = 0; i < B; i++)
        for (int d = 0; d < D; d++)
            cr_assert_eq(x[i * D + d], (float)data[idx[i] * D + d] / 255.0f);
}

/* sum w * softmax((logits + g) / tau) */
static double gumbel_objective(const double *logits, const float *u, const float *w, int B, int K, double tau)
{
    double s = 0;
    for (int i = 0; i < B; i++) {
        double mx = -INFINITY, z[64], sum = 0;
        for (int k = 0; k < K; k++) {
            double uk = fmin(fmax(u[i * K + k], 1e-20), 0.99999994);
            z[k] = (logits[i * K + k] - log(-log(uk))) / tau;
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < K; k++)
            sum += exp(z[k] - mx);
        for (int k = 0; k < K; k++)
            s += w[i * K + k] * exp(z[k] - mx) / sum;
    }
    return s;
}

Test(ops, gumbel_softmax_forward_backward)
{
    const int B = 5, K = 7;
    const float tau = 0.67f;
    size_t n = (size_t)B * K;
    float logits[35], u[35], w[35], y[35], dl[35];
    tu_fill_uniform(logits, n, 51, -2, 2);
    tu_fill_uniform(u, n, 52, 0.001f, 0.999f);
    tu_fill_uniform(w, n, 53, -1, 1);
    u[0] = 1.0f; /* cuRAND's uniform includes 1: must not give inf */
    be->gumbel_softmax_forward(be, y, logits, u, B, K, tau);
    for (int i = 0; i < B; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            cr_assert(isfinite(y[i * K + k]) && y[i * K + k] >= 0);
            s += y[i * K + k];
        }
        cr_assert(fabs(s - 1) < 1e-5, "row %d sums to %g", i, s);
    }
    be->gumbel_softmax_backward(be, dl, w, y, B, K, tau);
    double *ld = to_double(logits, n), fd[35], got[35];
    for (size_t k = 0; k < n; k++) {
        double keep = ld[k];
        ld[k] = keep + FD_H;
        double fp = gumbel_objective(ld, u, w, B, K, tau);
        ld[k] = keep - FD_H;
        double fm = gumbel_objective(ld, u, w, B, K, tau);
        ld[k] = keep;
        fd[k] = (fp - fm) / (2 * FD_H);
        got[k] = dl[k];
    }
    cr_assert(tu_allclose_d("gumbel_softmax_backward vs finite differences", got, fd, n, 1e-5, 1e-4));
    free(ld);
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
