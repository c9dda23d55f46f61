/*
 * gumbel.cu: Gumbel-softmax sampling, forward and backward, row by row.
 *
 *   forward   u' = min(max(u, 1e-20), 1 - 2^-24);  g = -log(-log(u'))
 *             y = softmax((logits + g) / tau)         (max-subtracted)
 *   backward  dlogits += y * (dy - sum_k dy_k y_k) / tau   (accumulated)
 * y, logits, u, dy, dlogits (B, K); tau (1) read from device memory by the kernel.
 *
 * One warp per row, 8 rows per block, rows strided over the grid; a lane
 * handles columns lane, lane + 32, ... The row max and sums are warp
 * butterflies, fixed in order: bit-identical from run to run. The forward
 * pass uses y as its scratch (each lane rereads only what it wrote).
 */
#include "cuda_common.cuh"
#include "vae_math.h"

#define GUMBEL_THREADS 256 /* 8 warps, one row each */
#define GUMBEL_ROWS_PER_BLOCK (GUMBEL_THREADS / 32)

static __global__ void gumbel_softmax_forward_kernel(float *y, const float *logits, const float *u, int B, int K,
                                                     const float *tau_p)
{
    const float tau = *tau_p;
    const int lane = threadIdx.x & 31;
    const long long first = (long long)blockIdx.x * GUMBEL_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const long long stride = (long long)gridDim.x * GUMBEL_ROWS_PER_BLOCK;
    for (long long i = first; i < B; i += stride) { /* uniform over the warp */
        const size_t off = (size_t)i * (size_t)K;
        float *y_row = y + off;
        float row_max = -INFINITY;
        for (int k = lane; k < K; k += 32) {
            float uk = u[off + k];
            uk = fminf(fmaxf(uk, VAE_GUMBEL_U_MIN), VAE_GUMBEL_U_MAX);
            const float g = -logf(-logf(uk));
            const float s = (logits[off + k] + g) / tau;
            y_row[k] = s;
            row_max = fmaxf(row_max, s);
        }
        row_max = warp_max(row_max);
        float sum = 0.0f;
        for (int k = lane; k < K; k += 32) {
            const float e = expf(y_row[k] - row_max);
            y_row[k] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        for (int k = lane; k < K; k += 32)
            y_row[k] = y_row[k] / sum;
    }
}

static __global__ void gumbel_softmax_backward_kernel(float *dlogits, const float *dy, const float *y, int B, int K,
                                                      const float *tau_p)
{
    const float tau = *tau_p;
    const int lane = threadIdx.x & 31;
    const long long first = (long long)blockIdx.x * GUMBEL_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const long long stride = (long long)gridDim.x * GUMBEL_ROWS_PER_BLOCK;
    for (long long i = first; i < B; i += stride) { /* uniform over the warp */
        const size_t off = (size_t)i * (size_t)K;
        float dot = 0.0f;
        for (int k = lane; k < K; k += 32)
            dot += dy[off + k] * y[off + k];
        dot = warp_sum(dot);
        for (int k = lane; k < K; k += 32) {
            const float yk = y[off + k];
            dlogits[off + k] += yk * (dy[off + k] - dot) / tau;
        }
    }
}

static unsigned int gumbel_grid(int B)
{
    return cuda_grid_rows((int)(((long long)B + GUMBEL_ROWS_PER_BLOCK - 1) / GUMBEL_ROWS_PER_BLOCK));
}

static void gumbel_softmax_forward_cuda(float *y, const float *logits, const float *u, int B, int K, const float *tau,
                                        cudaStream_t stream)
{
    CUDA_LAUNCH(gumbel_softmax_forward_kernel, gumbel_grid(B), GUMBEL_THREADS, 0, stream)(y, logits, u, B, K, tau);
    CUDA_CHECK_LAUNCH();
}

static void gumbel_softmax_backward_cuda(float *dlogits, const float *dy, const float *y, int B, int K, const float *tau,
                                         cudaStream_t stream)
{
    CUDA_LAUNCH(gumbel_softmax_backward_kernel, gumbel_grid(B), GUMBEL_THREADS, 0, stream)(dlogits, dy, y, B, K, tau);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gumbel_softmax_forward(vae_backend *be, float *y, const float *logits, const float *u, int B,
                                            int K, const float *tau)
{
    if (B <= 0 || K <= 0)
        return;
    gumbel_softmax_forward_cuda(y, logits, u, B, K, tau, cuda_ctx_of(be)->stream);
}

extern "C" void cuda_gumbel_softmax_backward(vae_backend *be, float *dlogits, const float *dy, const float *y, int B,
                                             int K, const float *tau)
{
    if (B <= 0 || K <= 0)
        return;
    gumbel_softmax_backward_cuda(dlogits, dy, y, B, K, tau, cuda_ctx_of(be)->stream);
}
