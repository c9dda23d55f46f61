/*
 * loss.cu: the loss-term ops of backend.h and their accumulation over batches.
 * Each op writes one column t of the per-image loss matrix row_loss (B, T)
 * (`loss` points at column t, rows T apart) and, when its gradient pointer is
 * not NULL, writes the gradient of the weighted term:
 *
 *   lik_bernoulli  loss_i = sum_d max(l,0) - l x + log1p(exp(-|l|))   (stable BCE with logits)
 *                  dlogits = gs (sigmoid(l) - x)
 *                  (exp and log1p from include/vae_math.h: each element's value and gradient
 *                  are the CPU backend's bits; the row sum runs in this kernel's order)
 *   lik_gaussian   loss_i = sum_d (x - mean)^2 / (2 sigma^2) + log(sigma) + log(2 pi) / 2
 *                  dmean = gs (mean - x) / sigma^2
 *   kl_gaussian    loss_i = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))
 *                  dstats = gs [mu | (exp(logvar) - 1) / 2]
 *   capacity_weight  *weight = gamma * sign(mean_i loss_i - *capacity)   (one thread, double, row order)
 *
 * with gs = grad_scale * (*weight), the weight read from device memory by the
 * kernel (NULL: 1), so a captured graph follows a schedule.
 *
 * One block per row (rows strided by gridDim.x); each thread sums a fixed set
 * of columns in order, then block_sum adds the per-thread sums in a fixed
 * tree. loss_accumulate is one block per term column summing in double,
 * likewise fixed. No atomics: bit-identical from run to run.
 */
#include "cuda_common.cuh"
#include "vae_math.h"

#define LOSS_THREADS 256       /* multiple of 32, as block_sum requires */
#define ACCUMULATE_THREADS 256

static __global__ void lik_bernoulli_kernel(float *loss, int T, float *dlogits, const float *logits, const float *x,
                                            int B, int D, const float *weight, float grad_scale)
{
    __shared__ float scratch[32];
    const float gs = loss_grad_scale(weight, grad_scale);
    for (int i = blockIdx.x; i < B; i += gridDim.x) { /* uniform over the block: block_sum is safe */
        const size_t row = (size_t)i;
        const float *l_row = logits + row * (size_t)D;
        const float *x_row = x + row * (size_t)D;
        float recon = 0.0f;
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            const float t = x_row[d];
            float sigmoid; /* the CPU's element, bit for bit: include/vae_math.h */
            recon += vae_bernoulli_term(l_row[d], t, &sigmoid);
            if (dlogits)
                dlogits[row * (size_t)D + d] = gs * (sigmoid - t);
        }
        recon = block_sum(recon, scratch);
        if (threadIdx.x == 0)
            loss[row * (size_t)T] = recon;
    }
}

static void lik_bernoulli_cuda(float *loss, int T, float *dlogits, const float *logits, const float *x, int B, int D,
                               const float *weight, float grad_scale, cudaStream_t stream)
{
    CUDA_LAUNCH(lik_bernoulli_kernel, cuda_grid_rows(B), LOSS_THREADS, 0, stream)(
        loss, T, dlogits, logits, x, B, D, weight, grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_lik_bernoulli(vae_backend *be, float *loss, int T, float *dlogits, const float *logits,
                                   const float *x, int B, int D, const float *weight, float grad_scale)
{
    if (B <= 0)
        return;
    if (D < 0 || T < 1)
        vae_fatal("lik_bernoulli: bad shape D=%d T=%d", D, T);
    lik_bernoulli_cuda(loss, T, dlogits, logits, x, B, D, weight, grad_scale, cuda_ctx_of(be)->stream);
}

static __global__ void lik_gaussian_kernel(float *loss, int T, float *dmean, const float *mean, const float *x, int B,
                                           int D, float sigma, const float *weight, float grad_scale)
{
    __shared__ float scratch[32];
    const float gs = loss_grad_scale(weight, grad_scale);
    const float inv_var = 1.0f / (sigma * sigma), log_norm = logf(sigma) + VAE_LOG_SQRT_2PI_F;
    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const size_t row = (size_t)i;
        const float *m_row = mean + row * (size_t)D;
        const float *x_row = x + row * (size_t)D;
        float nll = 0.0f;
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            const float r = m_row[d] - x_row[d];
            nll += 0.5f * r * r * inv_var + log_norm;
            if (dmean)
                dmean[row * (size_t)D + d] = gs * r * inv_var;
        }
        nll = block_sum(nll, scratch);
        if (threadIdx.x == 0)
            loss[row * (size_t)T] = nll;
    }
}

static void lik_gaussian_cuda(float *loss, int T, float *dmean, const float *mean, const float *x, int B, int D,
                              float sigma, const float *weight, float grad_scale, cudaStream_t stream)
{
    CUDA_LAUNCH(lik_gaussian_kernel, cuda_grid_rows(B), LOSS_THREADS, 0, stream)(
        loss, T, dmean, mean, x, B, D, sigma, weight, grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_lik_gaussian(vae_backend *be, float *loss, int T, float *dmean, const float *mean,
                                  const float *x, int B, int D, float sigma, const float *weight, float grad_scale)
{
    if (B <= 0)
        return;
    if (D < 0 || T < 1 || !(sigma > 0.0f))
        vae_fatal("lik_gaussian: bad arguments D=%d T=%d sigma=%g", D, T, (double)sigma);
    lik_gaussian_cuda(loss, T, dmean, mean, x, B, D, sigma, weight, grad_scale, cuda_ctx_of(be)->stream);
}

static __global__ void kl_gaussian_kernel(float *loss, int T, float *dstats, const float *stats, int B, int Z,
                                          const float *weight, float grad_scale)
{
    __shared__ float scratch[32];
    const float gs = loss_grad_scale(weight, grad_scale);
    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const size_t row = (size_t)i;
        const float *s_row = stats + row * 2 * (size_t)Z;
        float kl = 0.0f;
        for (int j = threadIdx.x; j < Z; j += blockDim.x) {
            const float mu = s_row[j], logvar = s_row[(size_t)Z + j];
            const float var = expf(logvar);
            kl += 1.0f + logvar - mu * mu - var;
            if (dstats) {
                float *ds_row = dstats + row * 2 * (size_t)Z;
                ds_row[j] = gs * mu;
                ds_row[(size_t)Z + j] = gs * 0.5f * (var - 1.0f);
            }
        }
        kl = block_sum(kl, scratch);
        if (threadIdx.x == 0)
            loss[row * (size_t)T] = -0.5f * kl;
    }
}

static void kl_gaussian_cuda(float *loss, int T, float *dstats, const float *stats, int B, int Z, const float *weight,
                             float grad_scale, cudaStream_t stream)
{
    CUDA_LAUNCH(kl_gaussian_kernel, cuda_grid_rows(B), LOSS_THREADS, 0, stream)(loss, T, dstats, stats, B, Z, weight,
                                                                                grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_kl_gaussian(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                                 const float *weight, float grad_scale)
{
    if (B <= 0)
        return;
    if (Z < 0 || T < 1)
        vae_fatal("kl_gaussian: bad shape Z=%d T=%d", Z, T);
    kl_gaussian_cuda(loss, T, dstats, stats, B, Z, weight, grad_scale, cuda_ctx_of(be)->stream);
}

/* One block per term column t: thread k sums rows k, k + blockDim.x, ... in
 * double, in order; block_sum then adds the per-thread sums in a fixed tree. */
static __global__ void loss_accumulate_kernel(double *acc, const float *row_loss, int B, int T)
{
    __shared__ double scratch[32];
    const int t = blockIdx.x;
    double s = 0.0;
    for (long long i = threadIdx.x; i < B; i += blockDim.x)
        s += (double)row_loss[i * T + t];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0)
        acc[t] += s;
}

static void loss_accumulate_cuda(double *acc, const float *row_loss, int B, int T, cudaStream_t stream)
{
    CUDA_LAUNCH(loss_accumulate_kernel, T, ACCUMULATE_THREADS, 0, stream)(acc, row_loss, B, T);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B, int T)
{
    if (B <= 0 || T <= 0)
        return;
    loss_accumulate_cuda(acc, row_loss, B, T, cuda_ctx_of(be)->stream);
}

/* A single thread sums the column in double in row order, as the CPU does: B is a batch
 * (hundreds of rows), and the same order gives the same sign at the boundary. */
static __global__ void capacity_weight_kernel(float *weight, const float *loss, int T, int B, const float *capacity,
                                              float gamma)
{
    double s = 0.0;
    for (int i = 0; i < B; i++)
        s += (double)loss[(size_t)i * (size_t)T];
    const double d = s / B - (double)*capacity;
    *weight = d > 0 ? gamma : d < 0 ? -gamma : 0.0f;
}

static void capacity_weight_cuda(float *weight, const float *loss, int T, int B, const float *capacity, float gamma,
                                 cudaStream_t stream)
{
    CUDA_LAUNCH(capacity_weight_kernel, 1, 1, 0, stream)(weight, loss, T, B, capacity, gamma);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_capacity_weight(vae_backend *be, float *weight, const float *loss, int T, int B,
                                     const float *capacity, float gamma)
{
    if (B < 1 || T < 1)
        vae_fatal("capacity_weight: bad shape B=%d T=%d", B, T);
    capacity_weight_cuda(weight, loss, T, B, capacity, gamma, cuda_ctx_of(be)->stream);
}
