/*
 * cpu_backend.c: the CPU implementation of the backend table (backend.h).
 * GEMMs go to oneDNN's dnnl_sgemm (chosen by measurement: docs/benchmarks.md "The GEMM
 * library, by measurement"); random numbers come from include/philox.h, the
 * formula kernels/rng.cu runs, so the CPU draws the same noise as the CUDA backend
 * bit for bit; the Bernoulli likelihood's exp and log1p come from include/vae_math.h,
 * the formula kernels/loss.cu runs.
 *
 * Speed: the ops a training step spends time in (the likelihood, Adam,
 * bias/activation, the gather, the finiteness check, the normals, the
 * reparameterization and the Gaussian KL) split their rows or elements
 * into fixed blocks shared among the OpenMP threads that oneDNN also uses (one
 * pool, one thread count: vae_cpu_set_threads); the longest run each block in a
 * function compiled three times (CPU_KERNEL: AVX-512, AVX2, baseline; the CPU picks
 * at load time). Every result is independent of the thread count and of which of the
 * three runs: an element's arithmetic is the same (ISO C: no contraction into FMAs;
 * explicit fmaf only), and a sum runs in a fixed order (cpu_lanes_add's lanes, a row
 * in order, or down a column).
 * The GEMMs alone depend on the thread count (oneDNN splits K differently).
 * Buffers of 2 MiB and more are transparent huge pages (cpu_buffer_alloc).
 *
 * Not here: graph capture (the table's graph entries are NULL: ops run as they
 * are called).
 */
#define _DEFAULT_SOURCE /* madvise */
#include "backend.h"
#include "backend_ops.h"
#include "philox.h"
#include "vae_math.h"
#include "vae_util.h"

#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The block functions, compiled for AVX-512, for AVX2 and FMA, and for the baseline
 * (GCC's function multiversioning; an ifunc picks one when the program loads). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_KERNEL
#endif

/* Work below this many elements runs on the calling thread: waking the others costs more. */
#define CPU_PARALLEL_MIN 32768
/* The same for ops with an exp per element (reparameterization, the Gaussian KL): each counts
 * as about 16 plain elements. */
#define CPU_PARALLEL_MIN_EXP (CPU_PARALLEL_MIN / 16)
/* Elements per block of an element-wise op (a multiple of 16: blocks start 64-byte aligned). */
#define CPU_BLOCK 16384

static int cpu_blocks(size_t n) { return (int)((n + CPU_BLOCK - 1) / CPU_BLOCK); }
/* The end of block b of an n-element op (it starts at b * CPU_BLOCK). */
static size_t cpu_block_end(int b, size_t n)
{
    const size_t end = (size_t)(b + 1) * CPU_BLOCK;
    return end < n ? end : n;
}

/* Row-wise ops give each thread one contiguous range of rows (one call of the row function,
 * one dispatch of its clones): the thread count for `work` elements, and thread t's rows. */
static int cpu_row_threads(size_t work) { return work >= CPU_PARALLEL_MIN ? omp_get_max_threads() : 1; }
static int cpu_row_first(int B, int t, int threads) { return (int)((long)B * t / threads); }

struct vae_rng {
    uint64_t seed;   /* Philox's key */
    uint64_t offset; /* 32-bit values drawn since the seed's first one */
};

/* ---- memory ---------------------------------------------------------------- */

/* Buffers of at least this size (the data set, the flat parameter, gradient and Adam
 * buffers) are whole transparent huge pages: a step reads rows scattered through tens of
 * MB and streams some 20 MB through Adam, and with 4 KiB pages each of those pages costs
 * a TLB miss (measured: 0 to 2% of a one-thread epoch, within the run-to-run noise). */
#define CPU_HUGE_PAGE ((size_t)2 << 20)

static void *cpu_buffer_alloc(vae_backend *be, size_t bytes)
{
    /* 64-byte alignment for vector loads, 2 MiB for a big buffer; zero-filled like the CUDA
     * side (which also faults the pages in now, not in the first step). */
    const size_t align = bytes >= CPU_HUGE_PAGE ? CPU_HUGE_PAGE : 64;
    size_t rounded = (bytes + align - 1) & ~(align - 1);
    rounded = rounded ? rounded : 64;
    void *p = aligned_alloc(align, rounded);
    if (!p)
        vae_fatal("aligned_alloc(%zu, %zu): out of memory", align, rounded);
#ifdef MADV_HUGEPAGE
    /* A hint: where the kernel has transparent huge pages off it refuses (EINVAL) or does
     * nothing, and the buffer is the same memory in small pages, only slower to walk. */
    if (align == CPU_HUGE_PAGE)
        (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    memset(p, 0, rounded);
    return p;
}

static void cpu_buffer_free(vae_backend *be, void *p) { free(p); }

/* Backend memory is host memory: either way a copy is one memcpy. */
static void cpu_upload(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memcpy(dst, src, bytes);
}

static void cpu_download(vae_backend *be, void *dst, const void *src, size_t bytes) { cpu_upload(be, dst, src, bytes); }

static void cpu_memset_zero(vae_backend *be, void *p, size_t bytes)
{
    if (bytes) /* a step clears nothing (the gradients are written); the large clears are once, at init */
        memset(p, 0, bytes);
}

static void cpu_synchronize(vae_backend *be) {} /* every op has finished when it returns */

/* ---- random numbers --------------------------------------------------------- */
/* philox.h's formula, walked in order: the layout in backend.h, the same numbers as kernels/rng.cu. */

static vae_rng *cpu_rng_init(vae_backend *be, uint64_t seed)
{
    vae_rng *r = vae_calloc(1, sizeof *r);
    r->seed = seed;
    return r;
}

static void cpu_rng_free(vae_backend *be, vae_rng *r)
{
    vae_free(r);
}

static void cpu_rng_reset(vae_backend *be, vae_rng *r)
{
    r->offset = 0;
}

static uint64_t cpu_rng_get_offset(vae_backend *be, vae_rng *r)
{
    return r->offset;
}

static void cpu_rng_set_offset(vae_backend *be, vae_rng *r, uint64_t offset)
{
    r->offset = offset;
}

/* Word j of r's stream, computing a Philox block only when j leaves the one in *cache. */
typedef struct {
    uint64_t block; /* j / 4 of the words in w; UINT64_MAX before the first */
    uint32_t w[4];
} cpu_rng_cache;

static uint32_t cpu_rng_word(const vae_rng *r, cpu_rng_cache *cache, uint64_t j)
{
    if (cache->block != j >> 2) {
        vae_philox_block(r->seed, j, cache->w);
        cache->block = j >> 2;
    }
    return cache->w[j & 3];
}

/* Normals [2 p0, 2 p1) of the stream from word `offset` on, pair by pair (any offset). */
CPU_KERNEL static void cpu_rng_normal_pairs(const vae_rng *r, float *out, size_t p0, size_t p1)
{
    cpu_rng_cache cache = {UINT64_MAX, {0, 0, 0, 0}};
    for (size_t p = p0; p < p1; p++) {
        const uint64_t j = r->offset + 2 * (uint64_t)p;
        const uint32_t a = cpu_rng_word(r, &cache, j);
        const uint32_t b = cpu_rng_word(r, &cache, j + 1);
        vae_philox_normal_pair(a, b, &out[2 * p], &out[2 * p + 1]);
    }
}

/* Normals from whole Philox blocks: block `first + b` gives out[4b, 4b + 4) (two pairs).
 * Straight-line per block, so the compiler vectorizes across blocks. */
CPU_KERNEL static void cpu_rng_normal_blocks(uint64_t seed, uint64_t first, float *out, size_t blocks)
{
    for (size_t b = 0; b < blocks; b++) {
        uint32_t w[4];
        vae_philox_block(seed, 4 * (first + b), w);
        vae_philox_normal_pair(w[0], w[1], &out[4 * b], &out[4 * b + 1]);
        vae_philox_normal_pair(w[2], w[3], &out[4 * b + 2], &out[4 * b + 3]);
    }
}

static void cpu_rng_normal(vae_backend *be, vae_rng *r, float *out, size_t n)
{
    if (n % 2)
        vae_fatal("rng_normal: n = %zu is odd; normals come in Box-Muller pairs (round the buffer up)", n);
    if (r->offset % 4 == 0) {
        /* the usual case: the stream is at a block boundary; a Philox block and its two
         * Box-Muller pairs cost about as much as 64 elements of an element-wise op */
        const size_t blocks = n / 4, part = 64, parts = (blocks + part - 1) / part;
#pragma omp parallel for schedule(static) if (blocks * 64 >= CPU_PARALLEL_MIN)
        for (size_t k = 0; k < parts; k++)
            cpu_rng_normal_blocks(r->seed, r->offset / 4 + k * part, out + 4 * k * part,
                                  k + 1 < parts ? part : blocks - k * part);
        cpu_rng_normal_pairs(r, out, 2 * blocks, n / 2);
    } else {
        cpu_rng_normal_pairs(r, out, 0, n / 2);
    }
    r->offset += n;
}

static void cpu_rng_uniform(vae_backend *be, vae_rng *r, float *out, size_t n)
{
    cpu_rng_cache cache = {UINT64_MAX, {0, 0, 0, 0}};
    for (size_t i = 0; i < n; i++)
        out[i] = vae_philox_uniform(cpu_rng_word(r, &cache, r->offset + i));
    r->offset += n;
}

/* ---- compute ------------------------------------------------------------------ */

static void cpu_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0)
        return;
    /* dnnl_sgemm is row-major, like the table's contract. */
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta,
                                  C, ldc);
    if (st != dnnl_success)
        vae_fatal("dnnl_sgemm(%c%c, M=%d, N=%d, K=%d, lda=%d, ldb=%d, ldc=%d) failed: oneDNN status %d",
                  trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, lda, ldb, ldc, (int)st);
}

CPU_KERNEL static void cpu_bias_act_forward_rows(float *y, const float *bias, int i0, int i1, int N, vae_act act)
{
    for (int i = i0; i < i1; i++) {
        float *row = y + (size_t)i * N;
        switch (act) {
        case VAE_ACT_NONE:
            for (int j = 0; j < N; j++)
                row[j] = row[j] + bias[j];
            break;
        case VAE_ACT_RELU:
            for (int j = 0; j < N; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        case VAE_ACT_TANH:
            for (int j = 0; j < N; j++)
                row[j] = tanhf(row[j] + bias[j]);
            break;
        }
    }
}

static void cpu_bias_act_forward(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act)
{
    const int threads = cpu_row_threads((size_t)B * N);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++)
        cpu_bias_act_forward_rows(y, bias, cpu_row_first(B, t, threads), cpu_row_first(B, t + 1, threads), N, act);
}

enum { CPU_COLS = 64 }; /* columns of one block of bias_act_backward */

/* Columns [j0, j0 + n) of bias_act_backward, n <= CPU_COLS: dx, then each column's sum in
 * row order, written to dbias. The CUDA kernel (activation.cu) sums in another order: 16 row
 * stripes (rows i, i + 16, ...) each in row order, then the 16 stripes' sums, so dbias differs
 * between the backends in the last bits (within the op table's tolerance, not bit for bit). */
CPU_KERNEL static void cpu_bias_act_backward_cols(float *dx, float *dbias, const float *dy, const float *y, int B,
                                                  int N, int j0, int n, vae_act act)
{
    float sum[CPU_COLS] = {0};
    for (int i = 0; i < B; i++) {
        const float *dyr = dy + (size_t)i * N + j0, *yr = y + (size_t)i * N + j0;
        float *dxr = dx + (size_t)i * N + j0;
        switch (act) {
        case VAE_ACT_NONE:
            for (int j = 0; j < n; j++)
                dxr[j] = dyr[j];
            break;
        case VAE_ACT_RELU:
            for (int j = 0; j < n; j++)
                dxr[j] = yr[j] > 0.0f ? dyr[j] : 0.0f;
            break;
        case VAE_ACT_TANH:
            for (int j = 0; j < n; j++)
                dxr[j] = dyr[j] * (1.0f - yr[j] * yr[j]);
            break;
        }
        for (int j = 0; j < n; j++)
            sum[j] += dxr[j];
    }
    for (int j = 0; j < n; j++)
        dbias[j0 + j] = sum[j];
}

static void cpu_bias_act_backward(vae_backend *be, float *dx, float *dbias, const float *dy, const float *y,
                                  int B, int N, vae_act act)
{
    const int blocks = (N + CPU_COLS - 1) / CPU_COLS;
#pragma omp parallel for schedule(static) if ((size_t)B * N >= CPU_PARALLEL_MIN)
    for (int b = 0; b < blocks; b++) {
        const int j0 = b * CPU_COLS;
        cpu_bias_act_backward_cols(dx, dbias, dy, y, B, N, j0, N - j0 < CPU_COLS ? N - j0 : CPU_COLS, act);
    }
}

static void cpu_reparam_forward(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z)
{
#pragma omp parallel for schedule(static) if ((size_t)B * Z >= CPU_PARALLEL_MIN_EXP)
    for (int i = 0; i < B; i++) {
        const float *mu = stats + (size_t)i * 2 * Z, *lv = mu + Z;
        for (int j = 0; j < Z; j++)
            z[(size_t)i * Z + j] = mu[j] + eps[(size_t)i * Z + j] * expf(0.5f * lv[j]);
    }
}

static void cpu_reparam_backward(vae_backend *be, float *dstats, const float *dz, const float *stats,
                                 const float *eps, int B, int Z)
{
#pragma omp parallel for schedule(static) if ((size_t)B * Z >= CPU_PARALLEL_MIN_EXP)
    for (int i = 0; i < B; i++) {
        const float *lv = stats + (size_t)i * 2 * Z + Z;
        float *dmu = dstats + (size_t)i * 2 * Z, *dlv = dmu + Z;
        for (int j = 0; j < Z; j++) {
            float g = dz[(size_t)i * Z + j];
            dmu[j] += g;
            dlv[j] += g * eps[(size_t)i * Z + j] * 0.5f * expf(0.5f * lv[j]);
        }
    }
}

static void cpu_gauss_log_ratio(vae_backend *be, float *out, const float *z, const float *stats, const float *eps,
                                int R, int Z)
{
    for (int i = 0; i < R; i++) {
        const float *zr = z + (size_t)i * Z, *er = eps + (size_t)i * Z, *lv = stats + (size_t)i * 2 * Z + Z;
        float s = 0.0f;
        for (int j = 0; j < Z; j++)
            s += 0.5f * (er[j] * er[j] - zr[j] * zr[j] + lv[j]);
        out[i] = s;
    }
}

/* A loss term's gradient scale: grad_scale times the term's weight (a backend scalar; NULL: 1). */
static inline float cpu_term_scale(const float *weight, float grad_scale)
{
    return weight ? grad_scale * *weight : grad_scale;
}

enum { CPU_LANES = 16, CPU_CHUNK = 256 }; /* CPU_CHUNK: a multiple of CPU_LANES */

/* lane[k] += x[k], x[k + 16], ... for x[0, n): a sum in a fixed order that vectorizes. */
static inline void cpu_lanes_add(float lane[CPU_LANES], const float *x, int n)
{
    int d = 0;
    for (; d + CPU_LANES <= n; d += CPU_LANES)
        for (int k = 0; k < CPU_LANES; k++)
            lane[k] += x[d + k];
    for (int k = 0; d + k < n; k++)
        lane[k] += x[d + k];
}

static inline float cpu_lanes_total(const float lane[CPU_LANES])
{
    float s = lane[0];
    for (int k = 1; k < CPU_LANES; k++)
        s += lane[k];
    return s;
}

/* Rows [i0, i1) of lik_bernoulli. Element d's loss is vae_bernoulli_term's, its gradient
 * gs (sigmoid(l) - x); a row's loss is the sum of its elements in cpu_lanes_add's order. */
CPU_KERNEL static void cpu_lik_bernoulli_rows(float *loss, int T, float *dlogits, const float *logits, const float *x,
                                              int i0, int i1, int D, float gs)
{
    float term[CPU_CHUNK];
    for (int i = i0; i < i1; i++) {
        float lane[CPU_LANES] = {0};
        for (int d0 = 0; d0 < D; d0 += CPU_CHUNK) {
            const int n = D - d0 < CPU_CHUNK ? D - d0 : CPU_CHUNK;
            const float *l = logits + (size_t)i * D + d0, *xr = x + (size_t)i * D + d0;
            if (dlogits) {
                float *dl = dlogits + (size_t)i * D + d0;
                for (int d = 0; d < n; d++) {
                    float sig;
                    term[d] = vae_bernoulli_term(l[d], xr[d], &sig);
                    dl[d] = gs * (sig - xr[d]);
                }
            } else {
                for (int d = 0; d < n; d++) {
                    float sig;
                    term[d] = vae_bernoulli_term(l[d], xr[d], &sig);
                }
            }
            cpu_lanes_add(lane, term, n);
        }
        loss[(size_t)i * T] = cpu_lanes_total(lane);
    }
}

static void cpu_lik_bernoulli(vae_backend *be, float *loss, int T, float *dlogits, const float *logits,
                              const float *x, int B, int D, const float *weight, float grad_scale)
{
    const float gs = cpu_term_scale(weight, grad_scale);
    const int threads = cpu_row_threads((size_t)B * D);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++)
        cpu_lik_bernoulli_rows(loss, T, dlogits, logits, x, cpu_row_first(B, t, threads),
                               cpu_row_first(B, t + 1, threads), D, gs);
}

static void cpu_lik_gaussian(vae_backend *be, float *loss, int T, float *dmean, const float *mean, const float *x,
                             int B, int D, float sigma, const float *weight, float grad_scale)
{
    const float gs = cpu_term_scale(weight, grad_scale);
    const float inv_var = 1.0f / (sigma * sigma), log_norm = logf(sigma) + VAE_LOG_SQRT_2PI_F;
    for (int i = 0; i < B; i++) {
        const float *mr = mean + (size_t)i * D, *xr = x + (size_t)i * D;
        float nll = 0.0f;
        for (int d = 0; d < D; d++) {
            float r = mr[d] - xr[d];
            nll += 0.5f * r * r * inv_var + log_norm;
            if (dmean)
                dmean[(size_t)i * D + d] = gs * r * inv_var;
        }
        loss[(size_t)i * T] = nll;
    }
}

static void cpu_kl_gaussian(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                            const float *weight, float grad_scale)
{
    const float gs = cpu_term_scale(weight, grad_scale);
#pragma omp parallel for schedule(static) if ((size_t)B * Z >= CPU_PARALLEL_MIN_EXP)
    for (int i = 0; i < B; i++) {
        const float *mu = stats + (size_t)i * 2 * Z, *lv = mu + Z;
        float *dmu = dstats ? dstats + (size_t)i * 2 * Z : NULL, *dlv = dmu ? dmu + Z : NULL;
        float kl = 0.0f;
        for (int j = 0; j < Z; j++) {
            const float var = expf(lv[j]); /* once, for the loss and the gradient */
            kl += 1.0f + lv[j] - mu[j] * mu[j] - var;
            if (dmu) {
                dmu[j] = gs * mu[j];
                dlv[j] = gs * 0.5f * (var - 1.0f);
            }
        }
        loss[(size_t)i * T] = -0.5f * kl;
    }
}

static void cpu_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B, int T)
{
    for (int t = 0; t < T; t++) {
        double s = 0.0;
        for (int i = 0; i < B; i++)
            s += row_loss[(size_t)i * T + t];
        acc[t] += s;
    }
}

/* Elements [lo, hi) of Adam's update (cpu_adam_step). */
CPU_KERNEL static void cpu_adam_range(float *restrict params, const float *restrict grads, float *restrict m,
                                      float *restrict v, size_t lo, size_t hi, float gs, float b1, float b2,
                                      float eps, float step_size, float bc2_sqrt)
{
    for (size_t i = lo; i < hi; i++) {
        float g = grads[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

static void cpu_adam_step(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                          const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                          const float *grad_scale)
{
    if (skip && *skip)
        return; /* a non-finite loss or gradient: the whole update is skipped */
    /* g * 1.0f is g exactly, so without clipping the update is bit-identical to g alone. */
    const float gs = grad_scale ? *grad_scale : 1.0f;
    int t = ++*step;
    const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    const float step_size = *lr / (1.0f - powf(b1, (float)t));
    const float bc2_sqrt = sqrtf(1.0f - powf(b2, (float)t));
    const int blocks = cpu_blocks(n);
#pragma omp parallel for schedule(static) if (n >= CPU_PARALLEL_MIN)
    for (int b = 0; b < blocks; b++) {
        cpu_adam_range(params, grads, m, v, (size_t)b * CPU_BLOCK, cpu_block_end(b, n), gs, b1, b2, eps, step_size,
                       bc2_sqrt);
    }
}

/* Ask for row idx[i] of the data set now: the rows are scattered through it (a random order
 * over tens of MB), so each is a miss all the way to memory unless asked for ahead. */
static inline void cpu_prefetch_row(const uint8_t *data, const int32_t *idx, int i, int D)
{
    const uint8_t *row = data + (size_t)idx[i] * D;
    for (int d = 0; d < D; d += 64)
        __builtin_prefetch(row + d);
}

enum { CPU_GATHER_AHEAD = 8 }; /* rows asked for ahead of the one converted */

CPU_KERNEL static void cpu_gather_batch_rows(float *x, const uint8_t *data, const int32_t *idx, int i0, int i1,
                                             int D)
{
    for (int i = i0; i < i1 && i < i0 + CPU_GATHER_AHEAD; i++)
        cpu_prefetch_row(data, idx, i, D);
    for (int i = i0; i < i1; i++) {
        if (i + CPU_GATHER_AHEAD < i1)
            cpu_prefetch_row(data, idx, i + CPU_GATHER_AHEAD, D);
        const uint8_t *src = data + (size_t)idx[i] * D;
        float *dst = x + (size_t)i * D;
        for (int d = 0; d < D; d++)
            dst[d] = vae_byte_unit(src[d]);
    }
}

static void cpu_gather_batch(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D)
{
    const int threads = cpu_row_threads((size_t)B * D);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++)
        cpu_gather_batch_rows(x, data, idx, cpu_row_first(B, t, threads), cpu_row_first(B, t + 1, threads), D);
}

static void cpu_gather_rows(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D)
{
    for (int i = 0; i < B; i++)
        memcpy(x + (size_t)i * D, data + (size_t)idx[i] * D, (size_t)D * sizeof(float));
}

static void cpu_binarize(vae_backend *be, float *x, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = u[i] < x[i] ? 1.0f : 0.0f;
}

static void cpu_gather_one_hot(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K)
{
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++)
            y[(size_t)i * K + k] = labels[idx[i]] == k ? 1.0f : 0.0f;
}

static void cpu_gumbel_softmax_forward(vae_backend *be, float *y, const float *logits, const float *u,
                                       int B, int K, const float *tau_p)
{
    const float tau = *tau_p;
    for (int i = 0; i < B; i++) {
        const float *l = logits + (size_t)i * K, *ur = u + (size_t)i * K;
        float *yr = y + (size_t)i * K;
        float mx = -INFINITY;
        for (int k = 0; k < K; k++) {
            float uk = fminf(fmaxf(ur[k], VAE_GUMBEL_U_MIN), VAE_GUMBEL_U_MAX);
            float g = -logf(-logf(uk));
            yr[k] = (l[k] + g) / tau;
            mx = fmaxf(mx, yr[k]);
        }
        float s = 0.0f;
        for (int k = 0; k < K; k++) {
            yr[k] = expf(yr[k] - mx);
            s += yr[k];
        }
        for (int k = 0; k < K; k++)
            yr[k] /= s;
    }
}

static void cpu_gumbel_softmax_backward(vae_backend *be, float *dlogits, const float *dy, const float *y,
                                        int B, int K, const float *tau_p)
{
    const float tau = *tau_p;
    for (int i = 0; i < B; i++) {
        const float *dyr = dy + (size_t)i * K, *yr = y + (size_t)i * K;
        float dot = 0.0f;
        for (int k = 0; k < K; k++)
            dot += dyr[k] * yr[k];
        for (int k = 0; k < K; k++)
            dlogits[(size_t)i * K + k] += yr[k] * (dyr[k] - dot) / tau;
    }
}

/* The row's first NaN if it holds one (a NaN ranks above every number, as in NumPy's and
 * PyTorch's argmax), else the first index of its largest value: kernels/categorical.cu's rule. */
static void cpu_onehot_argmax(vae_backend *be, float *y, const float *logits, int B, int K)
{
    for (int i = 0; i < B; i++) {
        const float *l = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K && !isnan(l[best]); k++)
            if (isnan(l[k]) || l[k] > l[best])
                best = k;
        for (int k = 0; k < K; k++)
            y[(size_t)i * K + k] = k == best ? 1.0f : 0.0f;
    }
}

static void cpu_kl_categorical(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B, int K,
                               const float *weight, float grad_scale)
{
    const float gs = cpu_term_scale(weight, grad_scale), log_k = logf((float)K);
    for (int i = 0; i < B; i++) {
        const float *l = logits + (size_t)i * K;
        float mx = -INFINITY, s = 0.0f;
        for (int k = 0; k < K; k++)
            mx = fmaxf(mx, l[k]);
        for (int k = 0; k < K; k++)
            s += expf(l[k] - mx);
        const float lse = mx + logf(s);
        float kl = 0.0f;
        for (int k = 0; k < K; k++) {
            const float lq = l[k] - lse;
            kl += expf(lq) * lq;
        }
        kl += log_k;
        loss[(size_t)i * T] = kl;
        if (!dlogits)
            continue;
        for (int k = 0; k < K; k++) {
            const float lq = l[k] - lse;
            dlogits[(size_t)i * K + k] = gs * expf(lq) * (lq + log_k - kl);
        }
    }
}

static void cpu_capacity_weight(vae_backend *be, float *weight, const float *loss, int T, int B, const float *capacity,
                                float gamma)
{
    double s = 0.0;
    for (int i = 0; i < B; i++)
        s += loss[(size_t)i * T];
    const double d = s / B - (double)*capacity;
    *weight = d > 0 ? gamma : d < 0 ? -gamma : 0.0f;
}

/* 1 when x[lo, hi) holds an infinity or a NaN (x - x is 0 exactly for every finite x). */
CPU_KERNEL static int cpu_any_nonfinite(const float *x, size_t lo, size_t hi)
{
    int bad = 0;
    for (size_t i = lo; i < hi; i++)
        bad |= !(x[i] - x[i] == 0.0f);
    return bad;
}

static void cpu_check_finite(vae_backend *be, int *flag, const float *x, size_t n, int code)
{
    if (*flag != 0)
        return; /* latched: the first code stays */
    int bad = 0;
    const int blocks = cpu_blocks(n);
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= CPU_PARALLEL_MIN)
    for (int b = 0; b < blocks; b++) {
        bad |= cpu_any_nonfinite(x, (size_t)b * CPU_BLOCK, cpu_block_end(b, n));
    }
    if (bad)
        *flag = code;
}

static void cpu_grad_clip_scale(vae_backend *be, float *scale, const float *x, size_t n, float max_norm)
{
    double s = 0.0; /* a float times a float is exact in double; the sum runs in index order */
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    double coef = (double)max_norm / (sqrt(s) + 1e-6);
    *scale = (float)(coef < 1.0 ? coef : 1.0);
}

static void cpu_destroy(vae_backend *be) { vae_free(be); }

vae_backend *vae_backend_cpu_init(void)
{
    vae_backend *be = vae_calloc(1, sizeof *be);
    /* Every op of backend_ops.h is cpu_<op>, but the graph ops: the CPU runs ops as they are called. */
#define CPU_OP(op) .op = cpu_##op,
#define CPU_EAGER(op) .op = NULL,
    *be = (vae_backend){
        .kind = VAE_BACKEND_CPU,
        .name = "cpu",
        VAE_BACKEND_OPS(CPU_OP, CPU_OP, CPU_OP, CPU_EAGER)
    };
#undef CPU_OP
#undef CPU_EAGER
    const int threads = omp_get_max_threads();
    snprintf(be->device_name, sizeof be->device_name, "oneDNN, %d thread%s", threads, threads == 1 ? "" : "s");
    return be;
}

void vae_cpu_set_threads(int n)
{
    if (n < 1)
        vae_fatal("vae_cpu_set_threads(%d): the thread count must be at least 1", n);
    omp_set_num_threads(n);
}

int vae_cpu_threads(void) { return omp_get_max_threads(); }

void vae_cpu_describe(char *buf, size_t len)
{
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } isas[] = {
        {dnnl_cpu_isa_sse41, "SSE4.1"},
        {dnnl_cpu_isa_avx, "AVX"},
        {dnnl_cpu_isa_avx2, "AVX2"},
        {dnnl_cpu_isa_avx2_vnni, "AVX2 VNNI"},
        {dnnl_cpu_isa_avx512_core, "AVX-512"},
        {dnnl_cpu_isa_avx512_core_vnni, "AVX-512 VNNI"},
        {dnnl_cpu_isa_avx512_core_bf16, "AVX-512 BF16"},
        {dnnl_cpu_isa_avx512_core_amx, "AVX-512 AMX"},
    };
    const dnnl_version_t *v = dnnl_version();
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *isa_name = "other ISA";
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (isas[i].isa == isa)
            isa_name = isas[i].name;
    const int threads = omp_get_max_threads();
    snprintf(buf, len, "oneDNN %d.%d.%d (%s kernels), OpenMP, %d thread%s", v->major, v->minor, v->patch, isa_name,
             threads, threads == 1 ? "" : "s");
}
