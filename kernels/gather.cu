/*
 * gather.cu: build a batch on the GPU from a data set already resident there.
 *   gather_batch: x[i, d] = data[idx[i], d] / 255   x (B, D) float, data (N, D) uint8, idx (B) int32
 *   gather_rows:  x[i, d] = data[idx[i], d]         x (B, D) float, data (N, D) float, idx (B) int32
 *   gather_one_hot: y[i, k] = (labels[idx[i]] == k)  y (B, K) float, labels (N) uint8, idx (B) int32
 *   binarize:     x[k] = u[k] < x[k] ? 1 : 0         x (n) float in place, u (n) uniform: dynamic
 *                 binarization of a gathered batch, one comparison as on the CPU
 * The bytes are scaled by vae_byte_unit (include/vae_math.h: byte / 255 correctly
 * rounded), as the CPU backend does, and the floats copied, so both backends give the
 * same floats bit for bit.
 *
 * Not here: shuffling (idx is made on the host), the choice between the two
 * (vae_device_data_gather, src/device_data.c) or any bounds check on idx: an
 * index outside the data set is the caller's bug.
 */
#include "cuda_common.cuh"
#include "vae_math.h"

static __global__ void gather_batch_kernel(float *x, const uint8_t *data, const int32_t *idx, size_t n, int D)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const size_t i = k / (size_t)D, d = k % (size_t)D;
        const size_t src = (size_t)idx[i] * (size_t)D + d;
        x[k] = vae_byte_unit(data[src]);
    }
}

static void gather_batch_cuda(const cuda_ctx *c, float *x, const uint8_t *data, const int32_t *idx, int B, int D,
                              cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)D;
    const int threads = 256;
    CUDA_LAUNCH(gather_batch_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(x, data, idx, n, D);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gather_batch(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D)
{
    if (B <= 0 || D <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    gather_batch_cuda(c, x, data, idx, B, D, c->stream);
}

static __global__ void gather_rows_kernel(float *x, const float *data, const int32_t *idx, size_t n, int D)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const size_t i = k / (size_t)D, d = k % (size_t)D;
        x[k] = data[(size_t)idx[i] * (size_t)D + d];
    }
}

static void gather_rows_cuda(const cuda_ctx *c, float *x, const float *data, const int32_t *idx, int B, int D,
                             cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)D;
    const int threads = 256;
    CUDA_LAUNCH(gather_rows_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(x, data, idx, n, D);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gather_rows(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D)
{
    if (B <= 0 || D <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    gather_rows_cuda(c, x, data, idx, B, D, c->stream);
}

static __global__ void gather_one_hot_kernel(float *y, const uint8_t *labels, const int32_t *idx, size_t n, int K)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const size_t i = k / (size_t)K, j = k % (size_t)K;
        y[k] = (size_t)labels[idx[i]] == j ? 1.0f : 0.0f;
    }
}

static void gather_one_hot_cuda(const cuda_ctx *c, float *y, const uint8_t *labels, const int32_t *idx, int B, int K,
                                cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)K;
    const int threads = 256;
    CUDA_LAUNCH(gather_one_hot_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(y, labels, idx, n, K);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gather_one_hot(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K)
{
    if (B <= 0 || K <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    gather_one_hot_cuda(c, y, labels, idx, B, K, c->stream);
}

static __global__ void binarize_kernel(float *x, const float *u, size_t n)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride)
        x[k] = u[k] < x[k] ? 1.0f : 0.0f;
}

static void binarize_cuda(const cuda_ctx *c, float *x, const float *u, size_t n, cudaStream_t stream)
{
    const int threads = 256;
    CUDA_LAUNCH(binarize_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(x, u, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_binarize(vae_backend *be, float *x, const float *u, size_t n)
{
    if (n == 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    binarize_cuda(c, x, u, n, c->stream);
}
