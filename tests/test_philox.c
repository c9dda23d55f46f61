/*
 * test_philox.c: include/philox.h and the CPU backend's random numbers built on it.
 * Philox4x32-10 against Random123's published known answers; the uniform
 * conversion exactly; our log and sin/cos(2 pi u) against double-precision libm
 * on every one of the 2^24 uniforms; Box-Muller against its double-precision
 * value; the normals' and uniforms' first moments; and the CPU backend: the
 * draw layout backend.h documents, draws split across calls equal one long
 * draw, offsets that continue the sequence.
 *
 * The CUDA backend's numbers are compared with these, bit for bit, in
 * test_cuda_ops.c.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "philox.h"
#include "testutil.h"

#define TWO_PI 6.283185307179586476925286766559

/* Random123 1.14, examples/kat_vectors: counter (4), key (2) -> output (4). */
Test(philox, known_answers)
{
    static const uint32_t kat[][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        vae_philox4x32_10(kat[k], kat[k] + 4, out);
        for (int i = 0; i < 4; i++)
            cr_expect_eq(out[i], kat[k][6 + i], "vector %d word %d: %08x, want %08x", k, i, out[i], kat[k][6 + i]);
    }
}

Test(philox, stream_layout)
{
    /* word j is word j % 4 of the block at counter j / 4, in 64 bits, keyed by the seed's halves */
    const uint64_t seed = 0x0123456789abcdefull;
    const uint64_t js[] = {0, 1, 3, 4, 7, (1ull << 34) + 5, 0xfffffffffffffffeull};
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        const uint64_t j = js[i], b = j / 4;
        const uint32_t ctr[4] = {(uint32_t)(b & 0xffffffffu), (uint32_t)(b >> 32), 0, 0};
        const uint32_t key[2] = {0x89abcdefu, 0x01234567u};
        uint32_t out[4];
        vae_philox4x32_10(ctr, key, out);
        cr_expect_eq(vae_philox_word(seed, j), out[j % 4], "word %llu", (unsigned long long)j);
    }
}

Test(philox, uniform_is_exact_and_in_0_1)
{
    cr_expect_eq(vae_philox_uniform(0), 0x1p-24f);
    cr_expect_eq(vae_philox_uniform(0xffffffffu), 1.0f);
    cr_expect_eq(vae_philox_uniform(0x000000ffu), 0x1p-24f, "the low 8 bits are not used");
    for (uint64_t w = 0; w <= 0xffffffffull; w += 0x10001ull) {
        const double want = (double)((w >> 8) + 1) / 16777216.0;
        cr_assert_eq((double)vae_philox_uniform((uint32_t)w), want, "uniform(%08llx)", (unsigned long long)w);
    }
}

Test(philox, logf_within_one_ulp_on_every_uniform)
{
    double worst = 0;
    uint32_t at = 0;
    for (uint32_t k = 1; k <= (1u << 24); k++) {
        const float u = (float)k * 0x1p-24f;
        const double e = tu_ulps(vae_philox_logf(u), log((double)u));
        if (e > worst) {
            worst = e;
            at = k;
        }
    }
    cr_log_info("log: max error %.3f ulp at u = %u * 2^-24", worst, at);
    cr_expect_leq(worst, 1.0, "log: %.3f ulp at u = %u * 2^-24", worst, at);
    cr_expect_eq(vae_philox_logf(1.0f), 0.0f);
}

Test(philox, logf_on_positive_normal_floats)
{
    /* beyond the uniforms: a sweep of every exponent, seeded mantissas */
    uint64_t s = 12345;
    double worst = 0;
    for (int i = 0; i < 2000000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t bits = (uint32_t)(0x00800000u + (s >> 33) % (0x7f800000u - 0x00800000u));
        float x;
        memcpy(&x, &bits, sizeof x);
        const double e = tu_ulps(vae_philox_logf(x), log((double)x));
        if (e > worst)
            worst = e;
    }
    cr_log_info("log on normal floats: max error %.3f ulp", worst);
    cr_expect_leq(worst, 1.0, "log on normal floats: %.3f ulp", worst);
}

Test(philox, sincos2pi_within_two_ulp_on_every_uniform)
{
    double worst_s = 0, worst_c = 0;
    uint32_t at_s = 0, at_c = 0;
    for (uint32_t k = 0; k <= (1u << 24); k++) {
        const float u = (float)k * 0x1p-24f;
        float s, c;
        vae_philox_sincos2pi(u, &s, &c);
        double ws = sin(TWO_PI * (double)u), wc = cos(TWO_PI * (double)u);
        if (k % (1u << 22) == 0) { /* multiples of a quarter turn: exact zeros and ones */
            ws = (double)((int[]){0, 1, 0, -1, 0})[k >> 22];
            wc = (double)((int[]){1, 0, -1, 0, 1})[k >> 22];
            cr_expect(fabs(s) == fabs(ws) && fabs(c) == fabs(wc) && s * ws >= 0 && c * wc >= 0,
                      "sincos(2 pi %g) = (%g, %g), want (%g, %g)", u, s, c, ws, wc);
            continue;
        }
        const double es = tu_ulps(s, ws), ec = tu_ulps(c, wc);
        if (es > worst_s) {
            worst_s = es;
            at_s = k;
        }
        if (ec > worst_c) {
            worst_c = ec;
            at_c = k;
        }
    }
    cr_log_info("sin(2 pi u): max error %.3f ulp at u = %u * 2^-24; cos: %.3f ulp at %u * 2^-24", worst_s, at_s,
                worst_c, at_c);
    cr_expect_leq(worst_s, 2.0, "sin(2 pi u): %.3f ulp at u = %u * 2^-24", worst_s, at_s);
    cr_expect_leq(worst_c, 2.0, "cos(2 pi u): %.3f ulp at u = %u * 2^-24", worst_c, at_c);
}

Test(philox, normal_pair_matches_double_box_muller)
{
    /* error in units of 2^-24 r: the pair is r (cos, sin), so this is the angle's and the radius's error */
    double worst = 0;
    for (uint64_t p = 0; p < (1u << 21); p++) {
        const uint32_t a = vae_philox_word(99, 2 * p), b = vae_philox_word(99, 2 * p + 1);
        float z0, z1;
        vae_philox_normal_pair(a, b, &z0, &z1);
        const double ua = (double)vae_philox_uniform(a), ub = (double)vae_philox_uniform(b);
        const double r = sqrt(-2.0 * log(ua)), w0 = r * cos(TWO_PI * ub), w1 = r * sin(TWO_PI * ub);
        if (r == 0) {
            cr_expect(z0 == 0 && z1 == 0);
            continue;
        }
        const double e = fmax(fabs(z0 - w0), fabs(z1 - w1)) / (r * 0x1p-24);
        if (e > worst)
            worst = e;
    }
    cr_log_info("normals: max error %.3f x 2^-24 r", worst);
    cr_expect_leq(worst, 4.0, "normals: error %.3f x 2^-24 r", worst);
}

Test(philox, moments_of_the_cpu_backends_draws)
{
    vae_backend *be = vae_backend_cpu_init();
    const size_t n = 4000000;
    float *x = tu_malloc(n * sizeof *x);
    vae_rng *r = be->rng_init(be, 2026);
    be->rng_normal(be, r, x, n);
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        m1 += v;
        m2 += v * v;
        m3 += v * v * v;
        m4 += v * v * v * v;
    }
    m1 /= n, m2 /= n, m3 /= n, m4 /= n;
    /* five standard errors of each sample moment of N(0, 1) */
    cr_expect_leq(fabs(m1), 5 * sqrt(1.0 / n), "mean %g", m1);
    cr_expect_leq(fabs(m2 - 1), 5 * sqrt(2.0 / n), "E[z^2] %g", m2);
    cr_expect_leq(fabs(m3), 5 * sqrt(15.0 / n), "E[z^3] %g", m3);
    cr_expect_leq(fabs(m4 - 3), 5 * sqrt(96.0 / n), "E[z^4] %g", m4);
    cr_log_info("normals: mean %.2e, E[z^2] %.6f, E[z^3] %.2e, E[z^4] %.5f over %zu", m1, m2, m3, m4, n);

    be->rng_uniform(be, r, x, n);
    double u1 = 0, u2 = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(x[i] > 0.0f && x[i] <= 1.0f, "u[%zu] = %g outside (0, 1]", i, x[i]);
        u1 += x[i];
        u2 += (double)x[i] * x[i];
    }
    u1 /= n, u2 /= n;
    cr_expect_leq(fabs(u1 - 0.5), 5 * sqrt(1.0 / 12 / n), "uniform mean %g", u1);
    cr_expect_leq(fabs(u2 - 1.0 / 3), 5 * sqrt(4.0 / 45 / n), "uniform E[u^2] %g", u2);
    be->rng_free(be, r);
    free(x);
    vae_backend_free(be);
}

Test(rng, cpu_draws_follow_the_documented_layout)
{
    vae_backend *be = vae_backend_cpu_init();
    const uint64_t seed = 0xfedcba9876543210ull, o = (1ull << 34) + 3; /* high halves in use, odd offset */
    vae_rng *r = be->rng_init(be, seed);
    be->rng_set_offset(be, r, o);
    float u[9], z[10];
    be->rng_uniform(be, r, u, 9);
    for (int i = 0; i < 9; i++) {
        const uint32_t w = vae_philox_word(seed, o + (uint64_t)i);
        cr_expect_eq(u[i], (float)((double)((w >> 8) + 1) / 16777216.0), "uniform %d", i);
    }
    be->rng_normal(be, r, z, 10); /* at offset o + 9: even, a pair straddles a block */
    for (int p = 0; p < 5; p++) {
        float z0, z1;
        vae_philox_normal_pair(vae_philox_word(seed, o + 9 + 2 * (uint64_t)p),
                               vae_philox_word(seed, o + 10 + 2 * (uint64_t)p), &z0, &z1);
        cr_expect(z[2 * p] == z0 && z[2 * p + 1] == z1, "normal pair %d", p);
    }
    cr_expect_eq(be->rng_get_offset(be, r), o + 19);
    be->rng_free(be, r);
    vae_backend_free(be);
}

Test(rng, cpu_draws_across_calls_equal_one_long_draw)
{
    vae_backend *be = vae_backend_cpu_init();
    /* sizes that leave blocks of four part-used and the offset odd */
    const size_t sizes[] = {1, 6, 3, 2, 130, 7, 4096, 5};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    for (int normal = 0; normal < 2; normal++) {
        float *whole = tu_malloc((total + 1) * sizeof *whole), *parts = tu_malloc((total + 1) * sizeof *parts);
        vae_rng *a = be->rng_init(be, 5), *b = be->rng_init(be, 5);
        size_t at = 0;
        if (normal) { /* normals in pairs: an odd uniform first, then the pieces rounded to even */
            be->rng_uniform(be, a, whole, 1);
            be->rng_uniform(be, b, parts, 1);
            size_t even = 0;
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                even += sizes[i] + sizes[i] % 2;
            free(whole);
            free(parts);
            whole = tu_malloc(even * sizeof *whole);
            parts = tu_malloc(even * sizeof *parts);
            be->rng_normal(be, a, whole, even);
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                const size_t n = sizes[i] + sizes[i] % 2;
                be->rng_normal(be, b, parts + at, n);
                at += n;
            }
        } else {
            be->rng_uniform(be, a, whole, total);
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                be->rng_uniform(be, b, parts + at, sizes[i]);
                at += sizes[i];
            }
        }
        cr_expect(memcmp(whole, parts, at * sizeof *whole) == 0, "%s: pieces differ from one long draw",
                  normal ? "normal" : "uniform");
        cr_expect_eq(be->rng_get_offset(be, a), be->rng_get_offset(be, b));
        cr_expect_eq(be->rng_get_offset(be, b), at + (size_t)normal);
        be->rng_free(be, a);
        be->rng_free(be, b);
        free(whole);
        free(parts);
    }
    vae_backend_free(be);
}
