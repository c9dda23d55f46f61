/*
 * categorical.cu: the categorical latent's ops besides its Gumbel-softmax sample
 * (gumbel.cu): the one-hot argmax of q(c|x) and the KL term against the uniform prior.
 *
 *   onehot_argmax   y[i, k] = 1 at the first index of row i's largest logit, else 0; a NaN ranks
 *                   above every number (NumPy's and PyTorch's argmax): a row holding one takes
 *                   its first NaN. The CPU backend follows the same rule.
 *   kl_categorical  q = softmax(l), loss_i = sum_k q_k log q_k + log K     (= log K - H(q))
 *                   dlogits_j = gs * q_j * (log q_j + log K - loss_i),  gs = grad_scale * (*weight)
 * y, logits, dlogits (B, K); loss points at column t of a (B, T) matrix.
 *
 * One warp per row, 8 rows per block, rows strided over the grid, as in gumbel.cu;
 * the reductions are warp butterflies, fixed in order: bit-identical from run to run.
 * Not here: the controlled-capacity weight (loss.cu, capacity_weight).
 */
#include "cuda_common.cuh"

#define CAT_THREADS 256 /* 8 warps, one row each */
#define CAT_ROWS_PER_BLOCK (CAT_THREADS / 32)

static unsigned int cat_grid(int B)
{
    return cuda_grid_rows((int)(((long long)B + CAT_ROWS_PER_BLOCK - 1) / CAT_ROWS_PER_BLOCK));
}

/* Whether (v, k) ranks before (best, best_k) in onehot_argmax's order: a NaN before every
 * number, a larger number before a smaller one, and between equals (NaNs included) the smaller
 * index. best_k == K: nothing yet, which everything ranks before; k == K: nothing, which ranks
 * before nothing. A total order on the (value, index) pairs of a row, so the butterfly below
 * ends with the same pair in every lane. */
static __device__ bool argmax_ranks_before(float v, int k, float best, int best_k, int K)
{
    if (k == K)
        return false;
    if (best_k == K)
        return true;
    const bool v_nan = isnan(v), best_nan = isnan(best);
    if (v_nan != best_nan)
        return v_nan;
    if (!v_nan && v != best)
        return v > best;
    return k < best_k;
}

static __global__ void onehot_argmax_kernel(float *y, const float *logits, int B, int K)
{
    const int lane = threadIdx.x & 31;
    const long long first = (long long)blockIdx.x * CAT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const long long stride = (long long)gridDim.x * CAT_ROWS_PER_BLOCK;
    for (long long i = first; i < B; i += stride) { /* uniform over the warp */
        const size_t off = (size_t)i * (size_t)K;
        float best = -INFINITY;
        int best_k = K;
        for (int k = lane; k < K; k += 32) { /* each lane's first in the order */
            const float v = logits[off + k];
            if (argmax_ranks_before(v, k, best, best_k, K)) {
                best = v;
                best_k = k;
            }
        }
        for (int o = 16; o > 0; o >>= 1) { /* the first of all lanes' */
            const float ov = __shfl_xor_sync(0xffffffffu, best, o);
            const int ok = __shfl_xor_sync(0xffffffffu, best_k, o);
            if (argmax_ranks_before(ov, ok, best, best_k, K)) {
                best = ov;
                best_k = ok;
            }
        }
        for (int k = lane; k < K; k += 32)
            y[off + k] = k == best_k ? 1.0f : 0.0f;
    }
}

static __global__ void kl_categorical_kernel(float *loss, int T, float *dlogits, const float *logits, int B, int K,
                                             const float *weight, float grad_scale)
{
    const int lane = threadIdx.x & 31;
    const long long first = (long long)blockIdx.x * CAT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const long long stride = (long long)gridDim.x * CAT_ROWS_PER_BLOCK;
    const float gs = loss_grad_scale(weight, grad_scale), log_k = logf((float)K);
    for (long long i = first; i < B; i += stride) { /* uniform over the warp */
        const size_t off = (size_t)i * (size_t)K;
        float mx = -INFINITY;
        for (int k = lane; k < K; k += 32)
            mx = fmaxf(mx, logits[off + k]);
        mx = warp_max(mx);
        float s = 0.0f;
        for (int k = lane; k < K; k += 32)
            s += expf(logits[off + k] - mx);
        const float lse = mx + logf(warp_sum(s));
        float kl = 0.0f;
        for (int k = lane; k < K; k += 32) {
            const float lq = logits[off + k] - lse;
            kl += expf(lq) * lq;
        }
        kl = warp_sum(kl) + log_k;
        if (lane == 0)
            loss[(size_t)i * (size_t)T] = kl;
        if (dlogits == nullptr)
            continue;
        for (int k = lane; k < K; k += 32) {
            const float lq = logits[off + k] - lse;
            dlogits[off + k] = gs * expf(lq) * (lq + log_k - kl);
        }
    }
}

static void onehot_argmax_cuda(float *y, const float *logits, int B, int K, cudaStream_t stream)
{
    CUDA_LAUNCH(onehot_argmax_kernel, cat_grid(B), CAT_THREADS, 0, stream)(y, logits, B, K);
    CUDA_CHECK_LAUNCH();
}

static void kl_categorical_cuda(float *loss, int T, float *dlogits, const float *logits, int B, int K,
                                const float *weight, float grad_scale, cudaStream_t stream)
{
    CUDA_LAUNCH(kl_categorical_kernel, cat_grid(B), CAT_THREADS, 0, stream)(loss, T, dlogits, logits, B, K, weight,
                                                                            grad_scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_onehot_argmax(vae_backend *be, float *y, const float *logits, int B, int K)
{
    if (B <= 0 || K <= 0)
        return;
    onehot_argmax_cuda(y, logits, B, K, cuda_ctx_of(be)->stream);
}

extern "C" void cuda_kl_categorical(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B,
                                    int K, const float *weight, float grad_scale)
{
    if (B <= 0)
        return;
    if (K < 1 || T < 1)
        vae_fatal("kl_categorical: bad shape K=%d T=%d", K, T);
    kl_categorical_cuda(loss, T, dlogits, logits, B, K, weight, grad_scale, cuda_ctx_of(be)->stream);
}
