/*
 * test_vae_math.c: include/vae_math.h, the exp and log1p of the Bernoulli
 * likelihood that both backends compute with one formula: their accuracy against
 * double-precision libm over a dense sample of their ranges (every 7th float, and
 * every float near the ends), the special values, and that the CPU backend's
 * vectorized lik_bernoulli (compiled for AVX-512, AVX2 or the baseline, whichever
 * this CPU runs) gives each element's gradient bit for bit as the scalar formula
 * compiled here for the baseline; and the byte scaling of the data, against IEEE
 * division for every byte.
 */
#include "backend.h"
#include "testutil.h"
#include "vae_math.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The largest error of f(sign m) for magnitudes m in [m_lo, m_hi]: every `step`th float, and
 * every float among the 4096 at each end. */
static double worst_ulps(float (*f)(float), double (*ref)(double), float sign, float m_lo, float m_hi, int step,
                         float *at)
{
    uint32_t lo, hi;
    memcpy(&lo, &m_lo, 4);
    memcpy(&hi, &m_hi, 4);
    double worst = 0;
    for (uint32_t u = lo; u <= hi; u += (u - lo < 4096 || hi - u < 4096) ? 1 : (uint32_t)step) {
        float m;
        memcpy(&m, &u, 4);
        const float x = sign * m;
        const double e = tu_ulps(f(x), ref((double)x));
        if (e > worst) {
            worst = e;
            *at = x;
        }
    }
    return worst;
}

static float exp_nonpos(float x) { return vae_exp_nonpos(x); }
static float log1p_unit(float e) { return vae_log1p_unit(e); }

Test(vae_math, exp_nonpos_is_within_one_ulp_on_minus_104_to_0)
{
    float at = 0;
    /* [-104, -2^-40]: below 2^-40 exp is 1 to the last bit; checked at the end */
    const double worst = worst_ulps(exp_nonpos, exp, -1.0f, 0x1p-40f, 104.0f, 7, &at);
    cr_expect_leq(worst, 0.94, "vae_exp_nonpos: %.3f ulp at %a", worst, (double)at);
    cr_expect_eq(vae_exp_nonpos(-0x1p-40f), 1.0f);
    cr_expect_eq(vae_exp_nonpos(0.0f), 1.0f);
    cr_expect_eq(vae_exp_nonpos(-0.0f), 1.0f);
}

Test(vae_math, exp_nonpos_special_values)
{
    cr_expect_eq(vae_exp_nonpos(-104.0f), 0.0f, "exp(-104) < 2^-150 rounds to 0");
    cr_expect_eq(vae_exp_nonpos(-1e30f), 0.0f);
    cr_expect_eq(vae_exp_nonpos(-INFINITY), 0.0f);
    cr_expect(isnan(vae_exp_nonpos(NAN)), "a NaN must stay a NaN");
    /* subnormal results, rounded once: exp(-100) = 3.72e-44 is 26.6 smallest subnormals */
    cr_expect_eq(vae_exp_nonpos(-100.0f), (float)exp(-100.0), "%a", (double)vae_exp_nonpos(-100.0f));
    cr_expect_eq(vae_exp_nonpos(-88.0f), (float)exp(-88.0), "%a", (double)vae_exp_nonpos(-88.0f));
}

Test(vae_math, log1p_unit_is_within_1_24_ulp_on_0_to_1)
{
    float at = 0;
    const double worst = worst_ulps(log1p_unit, log1p, 1.0f, 0x1p-60f, 1.0f, 7, &at);
    cr_expect_leq(worst, 1.24, "vae_log1p_unit: %.3f ulp at %a", worst, (double)at);
    cr_expect_eq(vae_log1p_unit(0.0f), 0.0f);
    cr_expect_eq(vae_log1p_unit(0x1p-140f), 0x1p-140f, "log1p(e) = e for a tiny e");
    cr_expect(isnan(vae_log1p_unit(NAN)));
}

/* Every byte, against IEEE division: the scaling of the data sets' pixels has to be the
 * correctly rounded b / 255 on both backends (op_table's gather_batch then compares each
 * backend's vector code with b / 255 at zero tolerance). */
Test(vae_math, byte_unit_is_byte_over_255_for_every_byte)
{
    int wrong = 0, first = -1;
    for (uint32_t b = 0; b < 256; b++) {
        volatile float denominator = 255.0f; /* a real division, not one the compiler rewrote */
        if (vae_byte_unit(b) != (float)b / denominator) {
            wrong++;
            first = first < 0 ? (int)b : first;
        }
    }
    cr_expect_eq(wrong, 0, "%d bytes scaled wrongly, the first %d", wrong, first);
    cr_expect_eq(vae_byte_unit(0), 0.0f);
    cr_expect_eq(vae_byte_unit(255), 1.0f);
}

/* The gradient of lik_bernoulli, element by element, against the scalar formula compiled
 * here (no -march: the baseline ISA, fmaf through libm): the CPU backend's vector code must
 * give the same bits, at every logit from -120 to 120 and at the extremes. */
Test(vae_math, cpu_lik_bernoulli_matches_the_scalar_formula_bit_for_bit)
{
    const int B = 3, D = 1000; /* D not a multiple of the 16 lanes or the 256-element chunks */
    float *l = vae_calloc((size_t)B * D, sizeof(float)), *x = vae_calloc((size_t)B * D, sizeof(float));
    float *dl = vae_calloc((size_t)B * D, sizeof(float)), loss[3];
    tu_fill_uniform(l, (size_t)B * D, 11, -120.0f, 120.0f);
    tu_fill_uniform(x, (size_t)B * D, 12, 0.0f, 1.0f);
    const float extremes[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 87.0f, -87.0f, 103.5f, -103.5f, 104.0f, -104.0f, 1e30f,
                              -1e30f};
    for (size_t k = 0; k < sizeof extremes / sizeof extremes[0]; k++)
        l[k * 37] = extremes[k];
    vae_backend *be = vae_backend_cpu_init();
    const float w = 0.75f;
    be->lik_bernoulli(be, loss, 1, dl, l, x, B, D, &w, 2.0f);
    int mismatches = 0, sigmoid_off = 0;
    double worst_rel = 0;
    for (int i = 0; i < B; i++) {
        double row = 0;
        for (int d = 0; d < D; d++) {
            const float li = l[i * D + d], xi = x[i * D + d];
            float sig;
            (void)vae_bernoulli_term(li, xi, &sig);
            const float want = (2.0f * w) * (sig - xi);
            /* sigmoid within 2 ulp of the double one, whichever side of 0: 1 + e rounds (half
             * an ulp of 1), e's own error (0.94 ulp) enters scaled by e / (1 + e) <= 1/2, and
             * the division rounds (half an ulp) */
            const double sig_ref = 1.0 / (1.0 + exp(-(double)li));
            if (tu_ulps(sig, sig_ref) > 2.0 && sigmoid_off++ < 5)
                cr_log_error("logit %a: sigmoid %a, %.2f ulp from %a", (double)li, (double)sig, tu_ulps(sig, sig_ref),
                             sig_ref);
            if (memcmp(&want, &dl[i * D + d], 4) != 0 && mismatches++ < 5)
                cr_log_error("row %d, element %d (logit %a): gradient %a, the formula gives %a", i, d, (double)li,
                             (double)dl[i * D + d], (double)want);
            row += fmax(li, 0.0) - (double)li * xi + log1p(exp(-fabs((double)li)));
        }
        worst_rel = fmax(worst_rel, fabs(loss[i] - row) / row);
    }
    cr_expect_eq(mismatches, 0, "%d gradients differ from the scalar formula", mismatches);
    cr_expect_eq(sigmoid_off, 0, "%d sigmoids more than 2 ulp off", sigmoid_off);
    /* 1000 terms of up to 120 summed in float, 16 lanes: within 1e-6 of the double sum */
    cr_expect_leq(worst_rel, 1e-6, "row loss %.3g relative from double precision", worst_rel);
    vae_backend_free(be);
    vae_free(l);
    vae_free(x);
    vae_free(dl);
}
