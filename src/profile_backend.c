/*
 * profile_backend.c: the timing wrapper of profile_backend.h. On the CPU each op of
 * the table synchronizes the inner backend, reads the host clock, runs the inner op,
 * synchronizes again and adds the elapsed time to the op's row; on the CUDA backend
 * each op runs between two CUDA events on the backend's stream (cuda_timer.h) and
 * its row gets their elapsed device time. No op is changed: the inner backend gets
 * the same arguments, so results are bit-identical.
 */
#include "profile_backend.h"
#include "cuda_timer.h"
#include "vae_util.h"

#include <string.h>

typedef enum {
    OP_GEMM_NT, OP_GEMM_TN, OP_GEMM_NN, OP_GEMM_TT,
    OP_BIAS_ACT_FORWARD, OP_BIAS_ACT_BACKWARD, OP_REPARAM_FORWARD, OP_REPARAM_BACKWARD,
    OP_LIK_BERNOULLI, OP_LIK_GAUSSIAN, OP_KL_GAUSSIAN, OP_KL_CATEGORICAL, OP_CAPACITY_WEIGHT,
    OP_LOSS_ACCUMULATE, OP_ADAM_STEP, OP_CHECK_FINITE, OP_GRAD_CLIP_SCALE,
    OP_GATHER_BATCH, OP_GATHER_ROWS, OP_GATHER_ONE_HOT, OP_BINARIZE,
    OP_GUMBEL_SOFTMAX_FORWARD, OP_GUMBEL_SOFTMAX_BACKWARD, OP_ONEHOT_ARGMAX, OP_GAUSS_LOG_RATIO,
    OP_RNG_NORMAL, OP_RNG_UNIFORM, OP_MEMSET_ZERO, OP_UPLOAD, OP_DOWNLOAD, OP_SYNCHRONIZE,
    OP_COUNT
} profile_op;

static const char *const op_names[OP_COUNT] = {
    "gemm NT (forward)", "gemm TN (weight grad)", "gemm NN (input grad)", "gemm TT",
    "bias_act_forward", "bias_act_backward", "reparam_forward", "reparam_backward",
    "lik_bernoulli", "lik_gaussian", "kl_gaussian", "kl_categorical", "capacity_weight",
    "loss_accumulate", "adam_step", "check_finite", "grad_clip_scale",
    "gather_batch", "gather_rows", "gather_one_hot", "binarize",
    "gumbel_softmax_forward", "gumbel_softmax_backward", "onehot_argmax", "gauss_log_ratio",
    "rng_normal", "rng_uniform", "memset_zero", "upload", "download", "synchronize",
};

_Static_assert((int)OP_COUNT <= (int)VAE_PROFILE_MAX_OPS, "VAE_PROFILE_MAX_OPS too small");

typedef struct {
    vae_backend be; /* first: the wrapper's vae_backend * is its profile_ctx *; a copy of the
                     * inner table (ctx included) with the timed ops replaced */
    vae_backend *inner;
    long calls[OP_COUNT];
    double seconds[OP_COUNT]; /* host clock (CPU); on CUDA the timer holds the seconds */
    vae_cuda_timer *gpu;      /* CUDA: events on inner's stream; NULL on the CPU */
} profile_ctx;

static double tick(profile_ctx *p)
{
    if (p->gpu) {
        vae_cuda_timer_begin(p->gpu);
        return 0.0;
    }
    p->inner->synchronize(p->inner);
    return vae_now_seconds();
}

static void tock(profile_ctx *p, profile_op op, double t0)
{
    p->calls[op]++;
    if (p->gpu) {
        vae_cuda_timer_end(p->gpu, (int)op);
        return;
    }
    p->inner->synchronize(p->inner);
    p->seconds[op] += vae_now_seconds() - t0;
}

/* Run `call` (an op of `in`, the inner backend) timed as op. */
#define TIMED(op, call)                                                                                           \
    do {                                                                                                          \
        profile_ctx *p = (profile_ctx *)be;                                                                       \
        vae_backend *in = p->inner;                                                                               \
        double t0 = tick(p);                                                                                      \
        call;                                                                                                     \
        tock(p, op, t0);                                                                                          \
    } while (0)

/* Allocation, freeing and the generators' bookkeeping are the inner table's own, untimed. */

/* ---- timed ---------------------------------------------------------------- */
static void p_upload(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    TIMED(OP_UPLOAD, in->upload(in, dst, src, bytes));
}
static void p_download(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    TIMED(OP_DOWNLOAD, in->download(in, dst, src, bytes));
}
static void p_memset_zero(vae_backend *be, void *ptr, size_t bytes)
{
    TIMED(OP_MEMSET_ZERO, in->memset_zero(in, ptr, bytes));
}
static void p_synchronize(vae_backend *be)
{
    TIMED(OP_SYNCHRONIZE, in->synchronize(in));
}
static void p_rng_normal(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    TIMED(OP_RNG_NORMAL, in->rng_normal(in, rng, out, n));
}
static void p_rng_uniform(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    TIMED(OP_RNG_UNIFORM, in->rng_uniform(in, rng, out, n));
}
static void p_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    const profile_op op = trans_a ? (trans_b ? OP_GEMM_TT : OP_GEMM_TN) : (trans_b ? OP_GEMM_NT : OP_GEMM_NN);
    TIMED(op, in->gemm(in, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}
static void p_bias_act_forward(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act)
{
    TIMED(OP_BIAS_ACT_FORWARD, in->bias_act_forward(in, y, bias, B, N, act));
}
static void p_bias_act_backward(vae_backend *be, float *dx, float *dbias, const float *dy, const float *y, int B,
                                int N, vae_act act)
{
    TIMED(OP_BIAS_ACT_BACKWARD, in->bias_act_backward(in, dx, dbias, dy, y, B, N, act));
}
static void p_reparam_forward(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z)
{
    TIMED(OP_REPARAM_FORWARD, in->reparam_forward(in, z, stats, eps, B, Z));
}
static void p_reparam_backward(vae_backend *be, float *dstats, const float *dz, const float *stats,
                               const float *eps, int B, int Z)
{
    TIMED(OP_REPARAM_BACKWARD, in->reparam_backward(in, dstats, dz, stats, eps, B, Z));
}
static void p_lik_bernoulli(vae_backend *be, float *loss, int T, float *dlogits, const float *logits,
                            const float *x, int B, int D, const float *weight, float grad_scale)
{
    TIMED(OP_LIK_BERNOULLI, in->lik_bernoulli(in, loss, T, dlogits, logits, x, B, D, weight, grad_scale));
}
static void p_lik_gaussian(vae_backend *be, float *loss, int T, float *dmean, const float *mean, const float *x,
                           int B, int D, float sigma, const float *weight, float grad_scale)
{
    TIMED(OP_LIK_GAUSSIAN, in->lik_gaussian(in, loss, T, dmean, mean, x, B, D, sigma, weight, grad_scale));
}
static void p_kl_gaussian(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                          const float *weight, float grad_scale)
{
    TIMED(OP_KL_GAUSSIAN, in->kl_gaussian(in, loss, T, dstats, stats, B, Z, weight, grad_scale));
}
static void p_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B, int T)
{
    TIMED(OP_LOSS_ACCUMULATE, in->loss_accumulate(in, acc, row_loss, B, T));
}
static void p_adam_step(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                        const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                        const float *grad_scale)
{
    TIMED(OP_ADAM_STEP, in->adam_step(in, params, grads, m, v, n, cfg, lr, step, skip, grad_scale));
}
static void p_gather_batch(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D)
{
    TIMED(OP_GATHER_BATCH, in->gather_batch(in, x, data, idx, B, D));
}
static void p_gather_rows(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D)
{
    TIMED(OP_GATHER_ROWS, in->gather_rows(in, x, data, idx, B, D));
}
static void p_gather_one_hot(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K)
{
    TIMED(OP_GATHER_ONE_HOT, in->gather_one_hot(in, y, labels, idx, B, K));
}
static void p_binarize(vae_backend *be, float *x, const float *u, size_t n)
{
    TIMED(OP_BINARIZE, in->binarize(in, x, u, n));
}
static void p_gumbel_softmax_forward(vae_backend *be, float *y, const float *logits, const float *u, int B, int K,
                                     const float *tau)
{
    TIMED(OP_GUMBEL_SOFTMAX_FORWARD, in->gumbel_softmax_forward(in, y, logits, u, B, K, tau));
}
static void p_gumbel_softmax_backward(vae_backend *be, float *dlogits, const float *dy, const float *y, int B,
                                      int K, const float *tau)
{
    TIMED(OP_GUMBEL_SOFTMAX_BACKWARD, in->gumbel_softmax_backward(in, dlogits, dy, y, B, K, tau));
}
static void p_onehot_argmax(vae_backend *be, float *y, const float *logits, int B, int K)
{
    TIMED(OP_ONEHOT_ARGMAX, in->onehot_argmax(in, y, logits, B, K));
}
static void p_kl_categorical(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B,
                             int K, const float *weight, float grad_scale)
{
    TIMED(OP_KL_CATEGORICAL, in->kl_categorical(in, loss, T, dlogits, logits, B, K, weight, grad_scale));
}
static void p_capacity_weight(vae_backend *be, float *weight, const float *loss, int T, int B,
                              const float *capacity, float gamma)
{
    TIMED(OP_CAPACITY_WEIGHT, in->capacity_weight(in, weight, loss, T, B, capacity, gamma));
}
static void p_gauss_log_ratio(vae_backend *be, float *out, const float *z, const float *stats, const float *eps,
                              int R, int Z)
{
    TIMED(OP_GAUSS_LOG_RATIO, in->gauss_log_ratio(in, out, z, stats, eps, R, Z));
}
static void p_check_finite(vae_backend *be, int *flag, const float *x, size_t n, int code)
{
    TIMED(OP_CHECK_FINITE, in->check_finite(in, flag, x, n, code));
}
static void p_grad_clip_scale(vae_backend *be, float *scale, const float *x, size_t n, float max_norm)
{
    TIMED(OP_GRAD_CLIP_SCALE, in->grad_clip_scale(in, scale, x, n, max_norm));
}

static void p_destroy(vae_backend *be)
{
    profile_ctx *p = (profile_ctx *)be;
    vae_cuda_timer_free(p->gpu);
    vae_free(p);
}

vae_backend *vae_backend_profile_wrap(vae_backend *inner)
{
    profile_ctx *p = vae_calloc(1, sizeof *p);
    p->inner = inner;
    if (inner->kind == VAE_BACKEND_CUDA)
        p->gpu = vae_cuda_timer_create(inner, OP_COUNT);
    vae_backend *be = &p->be;
    vae_backend_wrap(be, inner, "profiled", p_destroy); /* kind, name, ctx and the untimed ops: the inner's */
    be->upload = p_upload;
    be->download = p_download;
    be->memset_zero = p_memset_zero;
    be->synchronize = p_synchronize;
    be->rng_normal = p_rng_normal;
    be->rng_uniform = p_rng_uniform;
    be->gemm = p_gemm;
    be->bias_act_forward = p_bias_act_forward;
    be->bias_act_backward = p_bias_act_backward;
    be->reparam_forward = p_reparam_forward;
    be->reparam_backward = p_reparam_backward;
    be->lik_bernoulli = p_lik_bernoulli;
    be->lik_gaussian = p_lik_gaussian;
    be->kl_gaussian = p_kl_gaussian;
    be->loss_accumulate = p_loss_accumulate;
    be->adam_step = p_adam_step;
    be->gather_batch = p_gather_batch;
    be->gather_rows = p_gather_rows;
    be->gather_one_hot = p_gather_one_hot;
    be->binarize = p_binarize;
    be->gumbel_softmax_forward = p_gumbel_softmax_forward;
    be->gumbel_softmax_backward = p_gumbel_softmax_backward;
    be->onehot_argmax = p_onehot_argmax;
    be->kl_categorical = p_kl_categorical;
    be->capacity_weight = p_capacity_weight;
    be->gauss_log_ratio = p_gauss_log_ratio;
    be->check_finite = p_check_finite;
    be->grad_clip_scale = p_grad_clip_scale;
    return be;
}

int vae_backend_profile_read(vae_backend *wrapped, vae_profile_entry *out, int max)
{
    profile_ctx *p = (profile_ctx *)wrapped;
    if (p->gpu)
        vae_cuda_timer_collect(p->gpu); /* waits for the ops still in flight */
    int n = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        if (!p->calls[op])
            continue;
        if (n == max)
            vae_fatal("vae_backend_profile_read: room for %d ops, more were called", max);
        const double sec = p->gpu ? vae_cuda_timer_seconds(p->gpu, op) : p->seconds[op];
        out[n++] = (vae_profile_entry){op_names[op], p->calls[op], sec};
    }
    return n;
}

void vae_backend_profile_reset(vae_backend *wrapped)
{
    profile_ctx *p = (profile_ctx *)wrapped;
    memset(p->calls, 0, sizeof p->calls);
    memset(p->seconds, 0, sizeof p->seconds);
    if (p->gpu)
        vae_cuda_timer_reset(p->gpu);
}

const char *vae_backend_profile_clock(vae_backend *wrapped)
{
    const profile_ctx *p = (profile_ctx *)wrapped;
    return p->gpu ? "each op timed by CUDA events on the stream" : "every op synchronized";
}
