/*
 * vae_math.h: the transcendental functions of the Bernoulli likelihood, and the scaling
 * of a pixel byte to [0, 1]: one formula compiled for both backends (src/cpu_backend.c,
 * kernels/loss.cu and kernels/gather.cu).
 *
 * The loss of a logit l against a target x is max(l, 0) - l x + log1p(exp(-|l|)),
 * and its gradient sigmoid(l) - x; both need e = exp(-|l|) in (0, 1] and
 * log1p(e). glibc's expf and log1pf are scalar calls that no compiler vectorizes,
 * and were a fifth of a CPU training step. These are branch-free, so that GCC
 * vectorizes a loop of them, and use only explicit fmaf, IEEE division, integer
 * steps on the bits, and vae_philox_logf (include/philox.h), so that nvcc and GCC
 * compute the same bits element by element (sums over elements still run in each
 * backend's own order). vae_bernoulli_term is the element both backends compute.
 *
 * Accuracy (tests/test_vae_math.c, against double-precision libm): vae_exp_nonpos
 * within 0.94 ulp on [-104, 0] (subnormal results included), and vae_log1p_unit
 * within 1.24 ulp on [0, 1] (every float of both ranges; glibc's are within 1 ulp).
 *
 * Also the constants more than one op or backend writes: log sqrt(2 pi) of the Gaussian
 * likelihood, and the clamp of the Gumbel-softmax op's uniforms.
 *
 * Not here: the other ops' expf and logf (reparameterization, KL, Gumbel-softmax),
 * which run on vectors a hundredth of the image's size; they stay libm.
 */
#ifndef VAE_MATH_H
#define VAE_MATH_H

#include "philox.h"

#ifdef __CUDACC__
#define VAE_MATH_FN static __host__ __device__ __forceinline__
#else
#define VAE_MATH_FN static inline
#endif

/* log sqrt(2 pi), the Gaussian likelihood's constant per value (the float literal is the float
 * nearest it, as the double one rounded to float is). */
#define VAE_LOG_SQRT_2PI 0.91893853320467274178
#define VAE_LOG_SQRT_2PI_F 0.91893853320467274178f
/* The Gumbel-softmax op clamps each uniform u to [VAE_GUMBEL_U_MIN, VAE_GUMBEL_U_MAX] = [1e-20,
 * 1 - 2^-24] before g = -log(-log u): cuRAND's and Philox's uniforms may be exactly 1 (and a
 * test's 0), whose g would not be finite. */
#define VAE_GUMBEL_U_MIN 1e-20f
#define VAE_GUMBEL_U_MAX 0.99999994f

/* exp(x) for x <= 0 (NaN stays NaN). x = k ln2 + r with k = round(x / ln2), taken
 * from the bits of x log2(e) + 1.5 * 2^23 (no float-to-int conversion, so a NaN is
 * no undefined behaviour), r = x - k ln2 in two exact-product steps, |r| <= ln2/2;
 * exp(r) by its Taylor polynomial to r^7 (truncation below 2e-9 relative); then
 * 2^k in two factors 2^k1 2^k2 (each a normal float), so that a subnormal result is
 * rounded once. Below -104, where exp(x) < 2^-150 rounds to 0, x is clamped to -104,
 * whose result rounds to 0 too. */
VAE_MATH_FN float vae_exp_nonpos(float x)
{
    const float LOG2E = 1.44269504088896341f;
    const float LN2_HI = 0.693145751953125f;      /* ln 2 to 16 bits: k * LN2_HI is exact */
    const float LN2_LO = 1.4286068202862268e-06f; /* ln 2 - LN2_HI */
    const float SHIFTER = 12582912.0f;            /* 1.5 * 2^23: rounds to an integer in the low bits */
    x = x < -104.0f ? -104.0f : x;                /* a NaN compares false and stays */
    const float t = fmaf(x, LOG2E, SHIFTER);
    const int32_t k = (int32_t)(vae_philox_float_bits(t) - vae_philox_float_bits(SHIFTER)); /* in [-150, 0] */
    const float kf = t - SHIFTER;                                                         /* k, exactly */
    float r = fmaf(kf, -LN2_HI, x);
    r = fmaf(kf, -LN2_LO, r);
    float p = fmaf(r, 1.0f / 5040.0f, 1.0f / 720.0f);
    p = fmaf(r, p, 1.0f / 120.0f);
    p = fmaf(r, p, 1.0f / 24.0f);
    p = fmaf(r, p, 1.0f / 6.0f);
    p = fmaf(r, p, 0.5f);
    p = fmaf(r, p, 1.0f);
    p = fmaf(r, p, 1.0f);
    const int32_t k1 = k / 2, k2 = k - k1; /* each in [-75, 0] */
    const float s1 = vae_philox_bits_float((uint32_t)(k1 + 127) << 23);
    const float s2 = vae_philox_bits_float((uint32_t)(k2 + 127) << 23);
    return (p * s1) * s2; /* p * s1 is exact (a normal float times a power of two) */
}

/* log1p(e) for e in [0, 1]. u = 1 + e rounds away the low bits of e; u - 1 is exact
 * (Sterbenz), so c = e - (u - 1) is what was lost, and log1p(e) = log(u) + c / u to
 * first order in c (c / u < 2^-24 relative to log(u)). */
VAE_MATH_FN float vae_log1p_unit(float e)
{
    const float u = 1.0f + e;
    const float c = e - (u - 1.0f);
    return vae_philox_logf(u) + c / u;
}

/* b / 255 correctly rounded (the same bits as (float)b / 255.0f) for a byte b, without a
 * division (a vector division was a quarter of the CPU's batch gather): q = b * (1/255)
 * is off by an ulp for about half the bytes; one step q + (b - 255 q) / 255, with the
 * remainder exact in an FMA, rounds each of the 256 correctly (tests/test_vae_math.c
 * checks every one). */
VAE_MATH_FN float vae_byte_unit(uint32_t b)
{
    const float RCP_255 = 1.0f / 255.0f;
    const float x = (float)b;
    const float q = x * RCP_255;
    return fmaf(fmaf(-q, 255.0f, x), RCP_255, q);
}

/* One element of the Bernoulli likelihood on logits, for a logit l and a target x: returns
 * max(l, 0) - l x + log1p(e), e = exp(-|l|) in (0, 1] (no overflow for either sign), and
 * sets *sigmoid = sigmoid(l) = (l >= 0 ? 1 : e) / (1 + e). max(l, 0) is a comparison:
 * fmaxf's NaN rule would keep GCC from vectorizing it (a NaN gives 0 either way). The
 * product l x is rounded on its own (never fused into an FMA): nvcc contracts by default. */
VAE_MATH_FN float vae_bernoulli_term(float l, float x, float *sigmoid)
{
    const float e = vae_exp_nonpos(-fabsf(l));
    *sigmoid = (l >= 0.0f ? 1.0f : e) / (1.0f + e);
#ifdef __CUDA_ARCH__
    const float lx = __fmul_rn(l, x);
#else
    const float lx = l * x;
#endif
    return ((l > 0.0f ? l : 0.0f) - lx) + vae_log1p_unit(e);
}

#endif
