/*
 * cuda_common.cuh: what every file of the CUDA backend shares: the check
 * macros (each names the failing call, the function, the file, the line and
 * the library's own message), the backend's private context, launch-size
 * helpers, fixed-order reductions, and the prototypes of the op entry points
 * that kernels/cuda_backend.cu puts into the vae_backend table.
 *
 * Not here: any kernel. Each op family has its own .cu file (gemm.cu,
 * activation.cu, reparam.cu, loss.cu, adam.cu, gather.cu, gumbel.cu, categorical.cu, rng.cu,
 * guard.cu).
 *
 * Determinism: no kernel of this backend uses floating-point atomics; every
 * reduction runs in an order fixed by the launch configuration, so the same
 * inputs give bit-identical outputs on every run on the same GPU.
 */
#ifndef VAE_CUDA_COMMON_CUH
#define VAE_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "vae_util.h"

/* ---- checks ---------------------------------------------------------------- */

#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        cudaError_t cuda_check_err_ = (call);                                                   \
        if (cuda_check_err_ != cudaSuccess)                                                     \
            vae_fatal_at(__FILE__, __LINE__, "%s: %s failed: %s: %s", __func__, #call,          \
                         cudaGetErrorName(cuda_check_err_), cudaGetErrorString(cuda_check_err_)); \
    } while (0)

/* After every kernel launch: catches a bad launch configuration at once (an
 * error inside the kernel shows at the next synchronizing call). */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(call)                                                                      \
    do {                                                                                        \
        cublasStatus_t cublas_check_st_ = (call);                                               \
        if (cublas_check_st_ != CUBLAS_STATUS_SUCCESS)                                          \
            vae_fatal_at(__FILE__, __LINE__, "%s: %s failed: %s: %s", __func__, #call,          \
                         cublasGetStatusName(cublas_check_st_),                                 \
                         cublasGetStatusString(cublas_check_st_));                              \
    } while (0)

/* ---- the backend's private state (vae_backend.ctx) ---------------------------- */

/* cuBLAS's recommended workspace for Hopper (4 MiB suffices before it). Set
 * with cublasSetWorkspace so that a gemm captured in a graph never allocates. */
#define CUDA_CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* Blocks of the first pass of a two-pass reduction (guard.cu), and so the
 * length of cuda_ctx.reduce_partials. */
#define CUDA_REDUCE_MAX_BLOCKS 1024

typedef struct {
    int device;                  /* CUDA ordinal, current on the thread that made the backend */
    cudaDeviceProp prop;         /* cudaGetDeviceProperties(device) */
    cudaStream_t stream;         /* the one stream every op runs on (cudaStreamNonBlocking) */
    cublasHandle_t cublas;       /* bound to `stream`, FP32 math (TF32 after vae_cuda_set_tf32), host pointers */
    void *cublas_workspace;      /* (CUDA_CUBLAS_WORKSPACE_BYTES) */
    int capturing;               /* between graph_capture_begin and graph_capture_end */
    double *reduce_partials;     /* (CUDA_REDUCE_MAX_BLOCKS) per-block sums of a two-pass reduction */
} cuda_ctx;

static inline cuda_ctx *cuda_ctx_of(vae_backend *be)
{
    return (cuda_ctx *)be->ctx;
}

/* be's context, fatal (naming `caller`) unless be is the CUDA backend itself (a
 * wrapper such as profile_backend.h's has the same kind but not this context). */
cuda_ctx *cuda_backend_ctx(vae_backend *be, const char *caller);

/* Fatal when `stream` is being captured: `what` (a download, a synchronize,
 * an allocation) cannot be recorded into a graph. */
void cuda_check_not_capturing(cuda_ctx *c, const char *what);

/* ---- launches ------------------------------------------------------------------- */

/* CUDA_LAUNCH(kernel, grid, block, smem, stream)(args...) is
 * kernel<<<grid, block, smem, stream>>>(args...). Under the emulated device
 * (-DCUVAE_CUDA_EMU=ON, tests/cuda_emu/) the same kernels are host C++, which has no
 * <<<>>>, and the macro hands the launch to the emulator's runtime instead. */
#ifdef CUVAE_CUDA_EMU
#define CUDA_LAUNCH(kernel, grid, block, smem, stream) cuda_emu_launch(#kernel, kernel, grid, block, smem, stream)
#else
#define CUDA_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#endif

/* ---- launch sizes ---------------------------------------------------------------- */

/* Blocks for a grid-stride loop over n elements with `threads` per block:
 * enough to fill the GPU, never more than needed, never above the grid limit.
 * n must be > 0. Kernels index with size_t, so n may exceed 2^31. */
static inline unsigned int cuda_grid_size(const cuda_ctx *c, size_t n, int threads)
{
    size_t blocks = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)c->prop.multiProcessorCount * 32;
    if (cap < 1)
        cap = 1;
    if (blocks > cap)
        blocks = cap;
    return (unsigned int)blocks;
}

/* Blocks for a loop over `rows` independent rows (row-per-block or
 * rows-per-block kernels loop with a stride of gridDim.x). */
static inline unsigned int cuda_grid_rows(int rows)
{
    const int max_blocks = 65535 * 16; /* well under gridDim.x's limit of 2^31-1 */
    return (unsigned int)(rows < max_blocks ? rows : max_blocks);
}

/* ---- fixed-order reductions ------------------------------------------------------ */

#ifdef __CUDACC__
/* A loss term's gradient scale: grad_scale times the term's weight, read from device memory
 * (NULL: 1), so a captured graph follows a schedule. */
static __device__ __forceinline__ float loss_grad_scale(const float *weight, float grad_scale)
{
    return weight != nullptr ? grad_scale * *weight : grad_scale;
}

/* Sum over the 32 lanes of a warp; every lane gets the total. The butterfly's
 * order is fixed, so the result is the same on every run. */
template <typename T>
static __device__ __forceinline__ T warp_sum(T v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* Sum over a block whose size is a multiple of 32 (at most 1024); every thread
 * gets the total. `scratch` holds 32 values in shared memory. Warp sums, then
 * warp 0 sums the per-warp values in a fixed order. Must be reached by every
 * thread of the block; it synchronizes before returning and before reusing
 * `scratch`, so it may be called several times in a row. */
template <typename T>
static __device__ __forceinline__ T block_sum(T v, T *scratch)
{
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int nwarps = (int)(blockDim.x >> 5);
    v = warp_sum(v);
    __syncthreads(); /* an earlier call may still be reading scratch */
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    T total = lane < nwarps ? scratch[lane] : (T)0;
    total = warp_sum(total); /* every warp computes the same total, in the same order */
    return total;
}
#endif

/* ---- op entry points, one per vae_backend field (see backend.h) --------------------- */
/* cuda_<op> for each op of backend_ops.h: cuda_backend.cu's table names them from that list;
 * the memory and graph ops are cuda_backend.cu's own. */

#ifdef __cplusplus
extern "C" {
#endif

/* rng.cu */
vae_rng *cuda_rng_init(vae_backend *be, uint64_t seed);
void cuda_rng_free(vae_backend *be, vae_rng *rng);
void cuda_rng_reset(vae_backend *be, vae_rng *rng);
uint64_t cuda_rng_get_offset(vae_backend *be, vae_rng *rng);
void cuda_rng_set_offset(vae_backend *be, vae_rng *rng, uint64_t offset);
void cuda_rng_normal(vae_backend *be, vae_rng *rng, float *out, size_t n);
void cuda_rng_uniform(vae_backend *be, vae_rng *rng, float *out, size_t n);

/* gemm.cu */
void cuda_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* activation.cu */
void cuda_bias_act_forward(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act);
void cuda_bias_act_backward(vae_backend *be, float *dx, float *dbias, const float *dy, const float *y,
                            int B, int N, vae_act act);

/* reparam.cu */
void cuda_reparam_forward(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z);
void cuda_reparam_backward(vae_backend *be, float *dstats, const float *dz, const float *stats,
                           const float *eps, int B, int Z);
void cuda_gauss_log_ratio(vae_backend *be, float *out, const float *z, const float *stats, const float *eps,
                          int R, int Z);

/* loss.cu */
void cuda_lik_bernoulli(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, const float *x,
                        int B, int D, const float *weight, float grad_scale);
void cuda_lik_gaussian(vae_backend *be, float *loss, int T, float *dmean, const float *mean, const float *x, int B,
                       int D, float sigma, const float *weight, float grad_scale);
void cuda_kl_gaussian(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                      const float *weight, float grad_scale);
void cuda_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B, int T);
void cuda_capacity_weight(vae_backend *be, float *weight, const float *loss, int T, int B, const float *capacity,
                          float gamma);

/* adam.cu */
void cuda_adam_step(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                    const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                    const float *grad_scale);

/* guard.cu */
void cuda_check_finite(vae_backend *be, int *flag, const float *x, size_t n, int code);
void cuda_grad_clip_scale(vae_backend *be, float *scale, const float *x, size_t n, float max_norm);

/* gather.cu */
void cuda_gather_batch(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D);
void cuda_gather_rows(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D);
void cuda_gather_one_hot(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K);
void cuda_binarize(vae_backend *be, float *x, const float *u, size_t n);

/* gumbel.cu */
void cuda_gumbel_softmax_forward(vae_backend *be, float *y, const float *logits, const float *u, int B, int K,
                                 const float *tau);
void cuda_gumbel_softmax_backward(vae_backend *be, float *dlogits, const float *dy, const float *y, int B,
                                  int K, const float *tau);

/* categorical.cu */
void cuda_onehot_argmax(vae_backend *be, float *y, const float *logits, int B, int K);
void cuda_kl_categorical(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B, int K,
                         const float *weight, float grad_scale);

#ifdef __cplusplus
}
#endif

#endif /* VAE_CUDA_COMMON_CUH */
