/*
 * activation.cu: bias + activation, forward in place and backward.
 *
 *   forward   y = act(y + bias)                        y (B, N), bias (N)
 *   backward  dx = dy * act'(y)   (y the forward output) dx, dy, y (B, N)
 *             dbias = sum over rows of dx               dbias (N)
 *   act'(y):  none 1;  relu [y > 0];  tanh 1 - y^2
 *
 * The column sums of the backward pass run in a fixed order (no atomics):
 * a block owns 32 columns; its 16 row-stripes each sum their rows in order,
 * then one thread per column adds the 16 stripe sums in order. Bit-identical
 * from run to run. dx may alias dy: each element is read, then written, by
 * the same thread.
 */
#include "cuda_common.cuh"

static __device__ __forceinline__ float act_apply(float v, vae_act act)
{
    switch (act) {
    case VAE_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case VAE_ACT_TANH: return tanhf(v);
    case VAE_ACT_NONE:
    default: return v;
    }
}

/* d act / d x, written in terms of the activation's output y. */
static __device__ __forceinline__ float act_grad(float y, vae_act act)
{
    switch (act) {
    case VAE_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case VAE_ACT_TANH: return 1.0f - y * y;
    case VAE_ACT_NONE:
    default: return 1.0f;
    }
}

/* Grid-stride over the n = B*N elements of y; column = index mod N. */
static __global__ void bias_act_forward_kernel(float *y, const float *bias, size_t n, int N, vae_act act)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = act_apply(y[i] + bias[i % (size_t)N], act);
}

static void bias_act_forward_cuda(const cuda_ctx *c, float *y, const float *bias, int B, int N, vae_act act,
                                  cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)N;
    const int threads = 256;
    CUDA_LAUNCH(bias_act_forward_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(y, bias, n, N, act);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_bias_act_forward(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act)
{
    if (B <= 0 || N <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    bias_act_forward_cuda(c, y, bias, B, N, act, c->stream);
}

#define BACKWARD_COLS 32 /* columns per block: threadIdx.x, one warp, coalesced rows */
#define BACKWARD_ROWS 16 /* row stripes per block: threadIdx.y */

/* Block (BACKWARD_COLS, BACKWARD_ROWS); block b owns columns [32 b, 32 b + 32),
 * looping over column tiles with a stride of gridDim.x. No pointer is
 * __restrict__: dx may alias dy. */
static __global__ void bias_act_backward_kernel(float *dx, float *dbias, const float *dy, const float *y, int B,
                                                int N, vae_act act)
{
    __shared__ float stripe_sum[BACKWARD_ROWS][BACKWARD_COLS + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int ntiles = (int)(((long long)N + BACKWARD_COLS - 1) / BACKWARD_COLS);
    for (int tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
        const long long j = (long long)tile * BACKWARD_COLS + tx;
        float s = 0.0f;
        if (j < N) {
            for (long long i = ty; i < B; i += BACKWARD_ROWS) {
                const size_t k = (size_t)i * (size_t)N + (size_t)j;
                const float g = dy[k] * act_grad(y[k], act);
                dx[k] = g;
                s += g;
            }
        }
        stripe_sum[ty][tx] = s;
        __syncthreads();
        if (ty == 0 && j < N && dbias) {
            float t = 0.0f;
            for (int r = 0; r < BACKWARD_ROWS; r++)
                t += stripe_sum[r][tx];
            dbias[j] = t;
        }
        __syncthreads(); /* stripe_sum is rewritten by the next tile */
    }
}

static void bias_act_backward_cuda(const cuda_ctx *c, float *dx, float *dbias, const float *dy, const float *y,
                                   int B, int N, vae_act act, cudaStream_t stream)
{
    const int ntiles = (int)(((long long)N + BACKWARD_COLS - 1) / BACKWARD_COLS);
    const dim3 block(BACKWARD_COLS, BACKWARD_ROWS);
    const unsigned int grid = cuda_grid_size(c, (size_t)ntiles, 1);
    CUDA_LAUNCH(bias_act_backward_kernel, grid, block, 0, stream)(dx, dbias, dy, y, B, N, act);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_bias_act_backward(vae_backend *be, float *dx, float *dbias, const float *dy, const float *y,
                                       int B, int N, vae_act act)
{
    if (B <= 0 || N <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    bias_act_backward_cuda(c, dx, dbias, dy, y, B, N, act, c->stream);
}
