/*
 * guard.cu: the divergence guard and gradient clipping of a training step
 * (backend.h), on the device, in stream order, capturable in a graph:
 *   check_finite     *flag = code if *flag == 0 and some x[i] is NaN or inf
 *   grad_clip_scale  *scale = min(1, max_norm / (sqrt(sum x^2) + 1e-6))
 * Adam (adam.cu) reads both results from device memory.
 *
 * Determinism: the flag is set with atomicCAS(flag, 0, code); every thread
 * that finds a bad value writes the same code, so the result does not depend
 * on which wins. The norm is summed in double in two passes with a fixed
 * shape: each of at most CUDA_REDUCE_MAX_BLOCKS blocks sums a fixed strided
 * set of elements (block_sum), then one block sums the per-block values in
 * index order. No floating-point atomics.
 *
 * Not here: the Adam update itself, or reading the flag back (the host does
 * that when it reads the losses: src/train.c).
 */
#include "cuda_common.cuh"

#include <math.h>

static __global__ void check_finite_kernel(int *flag, const float *x, size_t n, int code)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    int bad = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        bad |= !isfinite(x[i]);
    if (bad)
        atomicCAS(flag, 0, code); /* latched: a flag already set keeps its code */
}

extern "C" void cuda_check_finite(vae_backend *be, int *flag, const float *x, size_t n, int code)
{
    cuda_ctx *c = cuda_ctx_of(be);
    if (n == 0)
        return;
    const int threads = 256;
    CUDA_LAUNCH(check_finite_kernel, cuda_grid_size(c, n, threads), threads, 0, c->stream)(flag, x, n, code);
    CUDA_CHECK_LAUNCH();
}

/* Pass 1: partials[b] = sum of x[i]^2 over block b's strided elements. */
static __global__ void sum_squares_partial_kernel(double *partials, const float *x, size_t n)
{
    __shared__ double scratch[32];
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        s += (double)x[i] * (double)x[i]; /* exact: a float times a float fits a double */
    s = block_sum(s, scratch);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

/* Pass 2, one block: the total, the norm and the clipping factor. */
static __global__ void clip_scale_finish_kernel(float *scale, const double *partials, int n_partials,
                                                float max_norm)
{
    __shared__ double scratch[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n_partials; i += blockDim.x)
        s += partials[i];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) {
        const double coef = (double)max_norm / (sqrt(s) + 1e-6);
        *scale = (float)(coef < 1.0 ? coef : 1.0);
    }
}

extern "C" void cuda_grad_clip_scale(vae_backend *be, float *scale, const float *x, size_t n, float max_norm)
{
    cuda_ctx *c = cuda_ctx_of(be);
    const int threads = 256;
    unsigned int blocks = 0;
    if (n > 0) {
        blocks = cuda_grid_size(c, n, threads);
        if (blocks > CUDA_REDUCE_MAX_BLOCKS)
            blocks = CUDA_REDUCE_MAX_BLOCKS;
        CUDA_LAUNCH(sum_squares_partial_kernel, blocks, threads, 0, c->stream)(c->reduce_partials, x, n);
        CUDA_CHECK_LAUNCH();
    }
    CUDA_LAUNCH(clip_scale_finish_kernel, 1, 1024, 0, c->stream)(scale, c->reduce_partials, (int)blocks, max_norm);
    CUDA_CHECK_LAUNCH();
}
