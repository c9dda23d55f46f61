/*
 * profile_backend.c: the timing wrapper of profile_backend.h. On the CPU each op of
 * the table synchronizes the inner backend, reads the host clock, runs the inner op,
 * synchronizes again and adds the elapsed time to the op's row; on the CUDA backend
 * each op runs between two CUDA events on the backend's stream (cuda_timer.h) and
 * its row gets their elapsed device time. No op is changed: the inner backend gets
 * the same arguments, so results are bit-identical. The timed ops, their wrappers'
 * table and the rows' names follow the op list of backend_ops.h.
 */
#include "profile_backend.h"
#include "backend_ops.h"
#include "cuda_timer.h"
#include "vae_util.h"

#include <string.h>

/* The table's rows: one per timed op of backend_ops.h (STREAM and COMPUTE), in the list's
 * order, gemm's split by its transposes (its own row is NT, a layer's forward). */
typedef enum {
#define PROF_ROW(op) PROF_##op,
    VAE_BACKEND_OPS(VAE_BACKEND_OP_SKIP, PROF_ROW, PROF_ROW, VAE_BACKEND_OP_SKIP)
#undef PROF_ROW
    PROF_GEMM_TN,
    PROF_GEMM_NN,
    PROF_GEMM_TT,
    PROF_COUNT
} prof_row;

static const char *const row_names[PROF_COUNT] = {
#define PROF_NAME(op) #op,
    VAE_BACKEND_OPS(VAE_BACKEND_OP_SKIP, PROF_NAME, PROF_NAME, VAE_BACKEND_OP_SKIP)
#undef PROF_NAME
    "gemm TN (weight grad)",
    "gemm NN (input grad)",
    "gemm TT",
};

/* A row's name in the report: the op's, gemm's NT row named as its siblings are. */
static const char *row_name(int row) { return row == PROF_gemm ? "gemm NT (forward)" : row_names[row]; }

_Static_assert((int)PROF_COUNT <= (int)VAE_PROFILE_MAX_OPS, "VAE_PROFILE_MAX_OPS too small");

typedef struct {
    vae_backend be; /* first: the wrapper's vae_backend * is its profile_ctx *; a copy of the
                     * inner table (ctx included) with the timed ops replaced */
    vae_backend *inner;
    long calls[PROF_COUNT];
    double seconds[PROF_COUNT]; /* host clock (CPU); on CUDA the timer holds the seconds */
    vae_cuda_timer *gpu;        /* CUDA: events on inner's stream; NULL on the CPU */
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

static void tock(profile_ctx *p, prof_row op, double t0)
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

/* ---- timed: a prof_<op> for each STREAM and COMPUTE op of backend_ops.h -------------------
 * (its SETUP ops, allocation, freeing and the generators' bookkeeping, are the inner table's
 * own, untimed) */
static void prof_upload(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    TIMED(PROF_upload, in->upload(in, dst, src, bytes));
}
static void prof_download(vae_backend *be, void *dst, const void *src, size_t bytes)
{
    TIMED(PROF_download, in->download(in, dst, src, bytes));
}
static void prof_memset_zero(vae_backend *be, void *ptr, size_t bytes)
{
    TIMED(PROF_memset_zero, in->memset_zero(in, ptr, bytes));
}
static void prof_synchronize(vae_backend *be)
{
    TIMED(PROF_synchronize, in->synchronize(in));
}
static void prof_rng_normal(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    TIMED(PROF_rng_normal, in->rng_normal(in, rng, out, n));
}
static void prof_rng_uniform(vae_backend *be, vae_rng *rng, float *out, size_t n)
{
    TIMED(PROF_rng_uniform, in->rng_uniform(in, rng, out, n));
}
static void prof_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    const prof_row op = trans_a ? (trans_b ? PROF_GEMM_TT : PROF_GEMM_TN) : (trans_b ? PROF_gemm : PROF_GEMM_NN);
    TIMED(op, in->gemm(in, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}
static void prof_bias_act_forward(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act)
{
    TIMED(PROF_bias_act_forward, in->bias_act_forward(in, y, bias, B, N, act));
}
static void prof_bias_act_backward(vae_backend *be, float *dx, float *dbias, const float *dy, const float *y, int B,
                                   int N, vae_act act)
{
    TIMED(PROF_bias_act_backward, in->bias_act_backward(in, dx, dbias, dy, y, B, N, act));
}
static void prof_reparam_forward(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z)
{
    TIMED(PROF_reparam_forward, in->reparam_forward(in, z, stats, eps, B, Z));
}
static void prof_reparam_backward(vae_backend *be, float *dstats, const float *dz, const float *stats,
                                  const float *eps, int B, int Z)
{
    TIMED(PROF_reparam_backward, in->reparam_backward(in, dstats, dz, stats, eps, B, Z));
}
static void prof_lik_bernoulli(vae_backend *be, float *loss, int T, float *dlogits, const float *logits,
                               const float *x, int B, int D, const float *weight, float grad_scale)
{
    TIMED(PROF_lik_bernoulli, in->lik_bernoulli(in, loss, T, dlogits, logits, x, B, D, weight, grad_scale));
}
static void prof_lik_gaussian(vae_backend *be, float *loss, int T, float *dmean, const float *mean, const float *x,
                              int B, int D, float sigma, const float *weight, float grad_scale)
{
    TIMED(PROF_lik_gaussian, in->lik_gaussian(in, loss, T, dmean, mean, x, B, D, sigma, weight, grad_scale));
}
static void prof_kl_gaussian(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                             const float *weight, float grad_scale)
{
    TIMED(PROF_kl_gaussian, in->kl_gaussian(in, loss, T, dstats, stats, B, Z, weight, grad_scale));
}
static void prof_loss_accumulate(vae_backend *be, double *acc, const float *row_loss, int B, int T)
{
    TIMED(PROF_loss_accumulate, in->loss_accumulate(in, acc, row_loss, B, T));
}
static void prof_adam_step(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                           const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                           const float *grad_scale)
{
    TIMED(PROF_adam_step, in->adam_step(in, params, grads, m, v, n, cfg, lr, step, skip, grad_scale));
}
static void prof_gather_batch(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D)
{
    TIMED(PROF_gather_batch, in->gather_batch(in, x, data, idx, B, D));
}
static void prof_gather_rows(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D)
{
    TIMED(PROF_gather_rows, in->gather_rows(in, x, data, idx, B, D));
}
static void prof_gather_one_hot(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K)
{
    TIMED(PROF_gather_one_hot, in->gather_one_hot(in, y, labels, idx, B, K));
}
static void prof_binarize(vae_backend *be, float *x, const float *u, size_t n)
{
    TIMED(PROF_binarize, in->binarize(in, x, u, n));
}
static void prof_gumbel_softmax_forward(vae_backend *be, float *y, const float *logits, const float *u, int B, int K,
                                        const float *tau)
{
    TIMED(PROF_gumbel_softmax_forward, in->gumbel_softmax_forward(in, y, logits, u, B, K, tau));
}
static void prof_gumbel_softmax_backward(vae_backend *be, float *dlogits, const float *dy, const float *y, int B,
                                         int K, const float *tau)
{
    TIMED(PROF_gumbel_softmax_backward, in->gumbel_softmax_backward(in, dlogits, dy, y, B, K, tau));
}
static void prof_onehot_argmax(vae_backend *be, float *y, const float *logits, int B, int K)
{
    TIMED(PROF_onehot_argmax, in->onehot_argmax(in, y, logits, B, K));
}
static void prof_kl_categorical(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B,
                                int K, const float *weight, float grad_scale)
{
    TIMED(PROF_kl_categorical, in->kl_categorical(in, loss, T, dlogits, logits, B, K, weight, grad_scale));
}
static void prof_capacity_weight(vae_backend *be, float *weight, const float *loss, int T, int B,
                                 const float *capacity, float gamma)
{
    TIMED(PROF_capacity_weight, in->capacity_weight(in, weight, loss, T, B, capacity, gamma));
}
static void prof_gauss_log_ratio(vae_backend *be, float *out, const float *z, const float *stats, const float *eps,
                                 int R, int Z)
{
    TIMED(PROF_gauss_log_ratio, in->gauss_log_ratio(in, out, z, stats, eps, R, Z));
}
static void prof_check_finite(vae_backend *be, int *flag, const float *x, size_t n, int code)
{
    TIMED(PROF_check_finite, in->check_finite(in, flag, x, n, code));
}
static void prof_grad_clip_scale(vae_backend *be, float *scale, const float *x, size_t n, float max_norm)
{
    TIMED(PROF_grad_clip_scale, in->grad_clip_scale(in, scale, x, n, max_norm));
}

static void prof_destroy(vae_backend *be)
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
        p->gpu = vae_cuda_timer_create(inner, PROF_COUNT);
    vae_backend *be = &p->be;
    vae_backend_wrap(be, inner, "profiled", prof_destroy); /* kind, name, ctx and the untimed ops: the inner's */
#define PROF_WRAP(op) be->op = prof_##op;
    VAE_BACKEND_OPS(VAE_BACKEND_OP_SKIP, PROF_WRAP, PROF_WRAP, VAE_BACKEND_OP_SKIP)
#undef PROF_WRAP
    return be;
}

int vae_backend_profile_read(vae_backend *wrapped, vae_profile_entry *out, int max)
{
    profile_ctx *p = (profile_ctx *)wrapped;
    if (p->gpu)
        vae_cuda_timer_collect(p->gpu); /* waits for the ops still in flight */
    int n = 0;
    for (int op = 0; op < PROF_COUNT; op++) {
        if (!p->calls[op])
            continue;
        if (n == max)
            vae_fatal("vae_backend_profile_read: room for %d ops, more were called", max);
        const double sec = p->gpu ? vae_cuda_timer_seconds(p->gpu, op) : p->seconds[op];
        out[n++] = (vae_profile_entry){row_name(op), p->calls[op], sec};
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
