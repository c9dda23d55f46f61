/*
 * reparam.cu: the reparameterisation trick, forward and backward.
 *
 *   forward   z = mu + eps * exp(logvar / 2)
 *   backward  dmu += dz;  dlogvar += dz * eps * exp(logvar / 2) / 2
 *   gauss_log_ratio  out_i = sum_j (eps_ij^2 - z_ij^2 + logvar_ij) / 2
 *             = log N(z; 0, I) - log N(z; mu, exp(logvar)) per row (eval's importance weights;
 *             one thread per row, j summed in order as on the CPU)
 *
 * stats (B, 2Z) holds [mu | logvar] per row, dstats (B, 2Z) [dmu | dlogvar];
 * z, dz, eps (B, Z). Elementwise, one thread per (i, j), grid-stride with
 * size_t indices. No noise is drawn here: eps comes from rng_normal.
 */
#include "cuda_common.cuh"

static __global__ void reparam_forward_kernel(float *z, const float *stats, const float *eps, size_t n, int Z)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const size_t i = k / (size_t)Z, j = k % (size_t)Z;
        const float *row = stats + i * 2 * (size_t)Z;
        const float mu = row[j], logvar = row[(size_t)Z + j];
        z[k] = mu + eps[k] * expf(0.5f * logvar);
    }
}

static __global__ void reparam_backward_kernel(float *dstats, const float *dz, const float *stats, const float *eps,
                                               size_t n, int Z)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const size_t i = k / (size_t)Z, j = k % (size_t)Z;
        const size_t mu_at = i * 2 * (size_t)Z + j, logvar_at = mu_at + (size_t)Z;
        const float g = dz[k];
        dstats[mu_at] += g;
        dstats[logvar_at] += g * eps[k] * 0.5f * expf(0.5f * stats[logvar_at]);
    }
}

static __global__ void gauss_log_ratio_kernel(float *out, const float *z, const float *stats, const float *eps,
                                              int R, int Z)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)R; i += stride) {
        const float *zr = z + i * (size_t)Z, *er = eps + i * (size_t)Z, *lv = stats + i * 2 * (size_t)Z + (size_t)Z;
        float s = 0.0f;
        for (int j = 0; j < Z; j++)
            s += 0.5f * (er[j] * er[j] - zr[j] * zr[j] + lv[j]);
        out[i] = s;
    }
}

static void reparam_forward_cuda(const cuda_ctx *c, float *z, const float *stats, const float *eps, int B, int Z,
                                 cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)Z;
    const int threads = 256;
    CUDA_LAUNCH(reparam_forward_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(z, stats, eps, n, Z);
    CUDA_CHECK_LAUNCH();
}

static void reparam_backward_cuda(const cuda_ctx *c, float *dstats, const float *dz, const float *stats,
                                  const float *eps, int B, int Z, cudaStream_t stream)
{
    const size_t n = (size_t)B * (size_t)Z;
    const int threads = 256;
    CUDA_LAUNCH(reparam_backward_kernel, cuda_grid_size(c, n, threads), threads, 0, stream)(
        dstats, dz, stats, eps, n, Z);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_reparam_forward(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z)
{
    if (B <= 0 || Z <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    reparam_forward_cuda(c, z, stats, eps, B, Z, c->stream);
}

extern "C" void cuda_reparam_backward(vae_backend *be, float *dstats, const float *dz, const float *stats,
                                      const float *eps, int B, int Z)
{
    if (B <= 0 || Z <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    reparam_backward_cuda(c, dstats, dz, stats, eps, B, Z, c->stream);
}

static void gauss_log_ratio_cuda(const cuda_ctx *c, float *out, const float *z, const float *stats, const float *eps,
                                 int R, int Z, cudaStream_t stream)
{
    const int threads = 256;
    CUDA_LAUNCH(gauss_log_ratio_kernel, cuda_grid_size(c, (size_t)R, threads), threads, 0, stream)(
        out, z, stats, eps, R, Z);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gauss_log_ratio(vae_backend *be, float *out, const float *z, const float *stats,
                                     const float *eps, int R, int Z)
{
    if (R <= 0 || Z <= 0)
        return;
    cuda_ctx *c = cuda_ctx_of(be);
    gauss_log_ratio_cuda(c, out, z, stats, eps, R, Z, c->stream);
}
