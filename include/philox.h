/*
 * philox.h: the random numbers of both backends, one formula compiled twice.
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC 2011): a counter-based generator, so value j of a stream is a
 * pure function of (key, j) and any thread can compute any value. On top of it:
 *
 *   word(key, j)   = Philox4x32-10(counter = (lo32(j/4), hi32(j/4), 0, 0),
 *                                  key = (lo32(key), hi32(key)))[j % 4]
 *   uniform(w)     = ((w >> 8) + 1) * 2^-24          in (0, 1], exact: 2^24 values
 *   normal pair    (a, b two words) r = sqrt(-2 log(uniform(a))), u = uniform(b),
 *                  (r cos(2 pi u), r sin(2 pi u))      (Box-Muller)
 *
 * The same source is compiled by the host C compiler (src/cpu_backend.c, tests,
 * bench) and by nvcc (kernels/rng.cu), and must give bit-identical floats on
 * both. So the log and the sin/cos are our own (range reduction by exact
 * integer and float steps, then short polynomials), written so that every
 * rounding is one both compilers must perform the same way:
 *  - every multiply-add is an explicit fmaf (one rounding; glibc's fmaf and
 *    the GPU's FFMA are both correctly rounded); no other expression has the
 *    a * b + c shape a compiler could contract into an FMA, so the result does
 *    not depend on -ffp-contract or nvcc's --fmad (the build also sets
 *    --fmad=false on kernels/rng.cu, belt and braces, and the C code is
 *    compiled as ISO C11, where GCC's default is -ffp-contract=off);
 *  - the one division and sqrtf are IEEE correctly rounded on both sides
 *    (nvcc's defaults -prec-div=true, -prec-sqrt=true; no fast-math anywhere);
 *  - no libm transcendental, no intrinsic (bit casts only).
 * (gcc -O0 and -O3, with -march=x86-64-v3 -ffp-contract=fast too, and clang
 * give the same bits for 2^23 normals.) The kernel's PTX holds as many FMAs
 * with --fmad=true as with --fmad=false: nothing is left to contract.
 * Accuracy (tests/test_philox.c, against double-precision libm over all 2^24
 * uniforms): log within 0.86 ulp, sin and cos of 2 pi u within 1.7 ulp.
 *
 * Not here: the backends' offset bookkeeping (backend.h, cpu_backend.c, rng.cu).
 */
#ifndef VAE_PHILOX_H
#define VAE_PHILOX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_runtime.h>
#define VAE_PHILOX_FN static __host__ __device__ __forceinline__
#else
#define VAE_PHILOX_FN static inline
#endif

#define VAE_PHILOX_M0 0xD2511F53u
#define VAE_PHILOX_M1 0xCD9E8D57u
#define VAE_PHILOX_W0 0x9E3779B9u /* golden ratio */
#define VAE_PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* out = Philox4x32-10(ctr, key). ctr (4), key (2), out (4). */
VAE_PHILOX_FN void vae_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += VAE_PHILOX_W0;
            k1 += VAE_PHILOX_W1;
        }
        const uint64_t p0 = (uint64_t)VAE_PHILOX_M0 * c0;
        const uint64_t p1 = (uint64_t)VAE_PHILOX_M1 * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The block of four words holding word j of the stream `seed`: block[j % 4] is word j. */
VAE_PHILOX_FN void vae_philox_block(uint64_t seed, uint64_t j, uint32_t block[4])
{
    const uint64_t b = j >> 2;
    const uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0u, 0u};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    vae_philox4x32_10(ctr, key, block);
}

/* Word j of the stream `seed` (one Philox block per call: loops that walk the
 * stream should keep the block, as cpu_backend.c does). */
VAE_PHILOX_FN uint32_t vae_philox_word(uint64_t seed, uint64_t j)
{
    uint32_t block[4];
    vae_philox_block(seed, j, block);
    return block[j & 3];
}

/* Uniform in (0, 1]: the top 24 bits plus one, times 2^-24. Both steps are exact. */
VAE_PHILOX_FN float vae_philox_uniform(uint32_t w)
{
    return (float)((w >> 8) + 1u) * 0x1p-24f;
}

VAE_PHILOX_FN uint32_t vae_philox_float_bits(float x)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

VAE_PHILOX_FN float vae_philox_bits_float(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/* Natural log of a positive normal float x (the uniforms are at least 2^-24).
 * x = 2^k m with m in [sqrt(1/2), sqrt(2)) (integer steps on the bits), f = m - 1,
 * s = f / (2 + f), |s| <= 0.172, and log m = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R),
 * R = 2s^2/3 + 2s^4/5 + 2s^6/7 + 2s^8/9 (the next term is below 1e-9 of the result):
 * f - f^2/2 carries the value, so s's roundings only touch a small correction.
 * log x = k ln2 + log m, with ln2 split in a high part (k * LN2_HI exact) and a low part. */
VAE_PHILOX_FN float vae_philox_logf(float x)
{
    const uint32_t SQRT_HALF_BITS = 0x3f3504f3u; /* sqrt(1/2) rounded */
    uint32_t ix = vae_philox_float_bits(x);
    ix += 0x3f800000u - SQRT_HALF_BITS; /* moves the exponent boundary from 1 to sqrt(1/2) */
    const int k = (int)(ix >> 23) - 127;
    const float f = vae_philox_bits_float((ix & 0x007fffffu) + SQRT_HALF_BITS) - 1.0f; /* exact (Sterbenz) */
    const float s = f / (2.0f + f);
    const float s2 = s * s;
    float p = fmaf(s2, 2.0f / 9.0f, 2.0f / 7.0f);
    p = fmaf(s2, p, 2.0f / 5.0f);
    p = fmaf(s2, p, 2.0f / 3.0f);
    const float hfsq = 0.5f * (f * f);
    const float t = fmaf(s2, p, hfsq); /* f^2/2 + R */
    const float LN2_HI = 0.693145751953125f;         /* ln 2 to 16 bits */
    const float LN2_LO = 1.4286068202862268e-06f;    /* ln 2 - LN2_HI */
    const float kf = (float)k;
    const float k_lo = kf * LN2_LO;
    const float v = fmaf(s, t, k_lo);  /* s (f^2/2 + R) + k LN2_LO */
    const float y = (hfsq - v) - f;    /* -(log m + k LN2_LO) */
    return fmaf(kf, LN2_HI, -y);       /* the product is exact */
}

/* sin(2 pi u) and cos(2 pi u) for u in [0, 1]. The reduction is exact, in turns:
 * q = round(4u), f = u - q/4 in [-1/8, 1/8] (exact for every float u in [0, 1]),
 * then Taylor polynomials in f of sin(2 pi f) to f^9 and cos(2 pi f) to f^10
 * (truncation below 2e-9 at |2 pi f| <= pi/4), and the quadrant q mod 4. */
VAE_PHILOX_FN void vae_philox_sincos2pi(float u, float *s_out, float *c_out)
{
    const int q = (int)fmaf(4.0f, u, 0.5f); /* 4u is exact: the same as 4u + 0.5 rounded once */
    const float f = fmaf((float)-q, 0.25f, u);
    const float f2 = f * f;
    /* (2 pi)^n / n! with alternating signs, rounded to float. */
    const float S1 = 6.283185307179586f, S3 = -41.341702240399755f, S5 = 81.60524927607504f,
                S7 = -76.70585975306136f, S9 = 42.058693944897634f;
    const float C0 = 1.0f, C2 = -19.739208802178716f, C4 = 64.93939402266828f,
                C6 = -85.45681720669371f, C8 = 60.24464137187664f, C10 = -26.426256783374388f;
    float ps = fmaf(f2, S9, S7);
    ps = fmaf(f2, ps, S5);
    ps = fmaf(f2, ps, S3);
    ps = fmaf(f2, ps, S1);
    const float sn = f * ps;
    float pc = fmaf(f2, C10, C8);
    pc = fmaf(f2, pc, C6);
    pc = fmaf(f2, pc, C4);
    pc = fmaf(f2, pc, C2);
    const float cs = fmaf(f2, pc, C0);
    /* The quadrant q mod 4, by selects rather than branches (so a loop of these vectorizes):
     * (sin, cos) = (sn, cs), (cs, -sn), (-sn, -cs), (-cs, sn) for q mod 4 = 0, 1, 2, 3. */
    const float s = (q & 1) ? cs : sn, c = (q & 1) ? sn : cs;
    *s_out = (q & 2) ? -s : s;
    *c_out = ((q + 1) & 2) ? -c : c;
}

/* Box-Muller on two words: z0 = r cos(2 pi u), z1 = r sin(2 pi u),
 * r = sqrt(-2 log uniform(a)), u = uniform(b). */
VAE_PHILOX_FN void vae_philox_normal_pair(uint32_t a, uint32_t b, float *z0, float *z1)
{
    const float r = sqrtf(-2.0f * vae_philox_logf(vae_philox_uniform(a)));
    float s, c;
    vae_philox_sincos2pi(vae_philox_uniform(b), &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}

#endif
