/*
 * loss.cu: the fused VAE loss (Bernoulli reconstruction on logits + Gaussian
 * KL, with gradients in the same pass) and its accumulation over batches.
 *
 * Per row i (l = logits[i,d], x = x[i,d], [mu | logvar] = stats[i,:]):
 *   recon_i = sum_d max(l,0) - l x + log1p(exp(-|l|))      (stable BCE with logits)
 *   kl_i    = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))
 *   row_loss (B, 2) = [recon_i, kl_i]
 * and, when dlogits is not NULL (written, not accumulated):
 *   dlogits (B, D)  = grad_scale (sigmoid(l) - x)
 *   dstats  (B, 2Z) = grad_scale beta [mu | (exp(logvar) - 1) / 2]
 *
 * One block per row (rows strided by gridDim.x); each thread sums a fixed
 * set of columns in order, then block_sum adds the per-thread sums in a fixed
 * tree. loss_accumulate is a single block summing in double, likewise fixed.
 * No atomics: bit-identical from run to run.
 */
#include "cuda_common.cuh"

#define LOSS_THREADS 256       /* multiple of 32, as block_sum requires */
#define ACCUMULATE_THREADS 256

static __global__ void loss_bce_kl_kernel(float *row_loss, float *dlogits, float *dstats, const float *logits,
                                          const float *x, const float *stats, int B, int D, int Z, float beta,
                                          float grad_scale)
{
    __shared__ float scratch[32];
    const float kl_scale = grad_scale * beta;
    for (int i = blockIdx.x; i < B; i += gridDim.x) { /* uniform over the block: block_sum is safe */
        const size_t row = (size_t)i;
        const float *l_row = logits + row * (size_t)D;
        const float *x_row = x + row * (size_t)D;
        const float *s_row = stats + row * 2 * (size_t)Z;

        float recon = 0.0f;
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            const float l = l_row[d], t = x_row[d];
            const float e = expf(-fabsf(l)); /* in (0, 1]: never overflows */
            recon += fmaxf(l, 0.0f) - l * t + log1pf(e);
            if (dlogits) {
                const float sigmoid = l >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
                dlogits[row * (size_t)D + d] = grad_scale * (sigmoid - t);
            }
        }

        float kl = 0.0f;
        for (int j = threadIdx.x; j < Z; j += blockDim.x) {
            const float mu = s_row[j], logvar = s_row[(size_t)Z + j];
            const float var = expf(logvar);
            kl += 1.0f + logvar - mu * mu - var;
            if (dlogits) {
                float *ds_row = dstats + row * 2 * (size_t)Z;
                ds_row[j] = kl_scale * mu;
                ds_row[(size_t)Z + j] = kl_scale * 0.5f * (var - 1.0f);
            }
        }

        recon = block_sum(recon, scratch);
        kl = block_sum(kl, scratch);
        if (threadIdx.x == 0) {
            row_loss[2 * row] = recon;
            row_loss[2 * row + 1] = -0.5f * kl;
        }
    }
}

static void loss_bce_kl_cuda(float *row_loss, float *dlogits, float *dstats, const float *logits, const float *x,
                             const float *stats, int B, int D, int Z, float beta, float grad_scale,
                             cudaStream_t stream)
{
    loss_bce_kl_kernel<<<cuda_grid_rows(B), LOSS_THREADS, 0, stream>>>(row_loss, dlogits, dstats, logits, x,
                                                                         stats, B, D, Z, beta, grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_loss_bce_kl(vae_backend *be, float *row_loss, float *dlogits, float *dstats,
                                 const float *logits, const float *x, const float *stats, int B, int D, int Z,
                                 float beta, float grad_scale)
{
    if (dlogits && !dstats)
        vae_fatal("loss_bce_kl: dlogits given without dstats");
    if (B <= 0)
        return;
    if (D < 0 || Z < 0)
        vae_fatal("loss_bce_kl: negative shape D=%d Z=%d", D, Z);
    loss_bce_kl_cuda(row_loss, dlogits, dstats, logits, x, stats, B, D, Z, beta, grad_scale,
                     cuda_ctx_of(be)->stream);
}

/* A single block: thread t sums rows t, t + blockDim.x, ... in double, in
 * order; block_sum then adds the per-thread sums in a fixed tree. */
static __global__ void loss_accumulate_kernel(double *acc, const float *row_loss, int B)
{
    __shared__ double scratch[32];
    double recon = 0.0, kl = 0.0;
    for (long long i = threadIdx.x; i < B; i += blockDim.x) {
        recon += (double)row_loss[2 * i];
        kl += (double)row_loss[2 * i + 1];
    }
    recon = block_sum(recon, scratch);
    kl = block_sum(kl, scratch);
    if (threadIdx.x == 0) {
        acc[0] += recon;
        acc[1] += kl;
    }
}

static void loss_accumulate_cuda(double *acc, const float *row_loss, int B, cudaStream_t stream)
{
    loss_accumulate_kernel<<<1, ACCUMULATE_THREADS, 0, stream>>>(acc, row_loss, B);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B)
{
    if (B <= 0)
        return;
    loss_accumulate_cuda(acc, row_loss, B, cuda_ctx_of(be)->stream);
}
