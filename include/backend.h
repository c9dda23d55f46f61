/*
 * backend.h: the table of operations that the model and the training loop are
 * written against. The CPU backend (src/cpu_backend.c) and the CUDA backend
 * (kernels/) both fill this table, with the same argument order, so every op
 * can be run on both and compared. The ops' names are listed once more, in this
 * struct's order, in backend_ops.h: the tables are generated from that list.
 *
 * Conventions
 *  - Matrices are row-major float32. "(B, N)" means B rows of N floats.
 *  - Every pointer passed to an op is backend memory: host memory on the CPU
 *    backend, device memory on the CUDA backend (from buffer_alloc).
 *  - Ops are asynchronous on the CUDA backend (one stream, in order);
 *    download() and synchronize() wait for everything enqueued before them.
 *  - Parameter gradients are written (=: bias_act_backward's dbias, and the model's
 *    beta-0 weight-gradient GEMMs), so a step never clears them; an activation gradient
 *    is written by its first writer and accumulated by the others (model.c).
 *  - Failures of the environment (allocation, a CUDA/cuBLAS call) are
 *    fatal and report the call, file and line; ops have no error returns.
 *
 * Not here: anything model-specific. Layer order, shapes and the flat
 * parameter layout live in model.h.
 */
#ifndef VAE_BACKEND_H
#define VAE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VAE_BACKEND_CPU = 0,
    VAE_BACKEND_CUDA = 1,
} vae_backend_kind;

/* The activations, listed once: X(ID, value, name). The enum (VAE_ACT_NONE = 0, ...) and the
 * names (config.c: vae_act_name, vae_act_parse) come from it. */
#define VAE_ACTS(X)                                           \
    X(NONE, 0, "none") /* identity: y = x                     */ \
    X(RELU, 1, "relu") /* y = max(x, 0);  dy/dx = [y > 0]     */ \
    X(TANH, 2, "tanh") /* y = tanh(x);    dy/dx = 1 - y^2     */

typedef enum {
#define VAE_ACT_ENUM(id, value, name) VAE_ACT_##id = value,
    VAE_ACTS(VAE_ACT_ENUM)
#undef VAE_ACT_ENUM
} vae_act;

/* Adam with bias correction (Kingma & Ba), written as PyTorch does:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)           */
typedef struct {
    float lr;    /* the run's base rate; the op reads the step's rate by pointer (adam_step) */
    float beta1;
    float beta2;
    float eps;
} vae_adam_config;

typedef struct vae_rng vae_rng;     /* a seeded Philox4x32-10 stream and its offset */
typedef struct vae_graph vae_graph; /* a captured, replayable sequence of ops  */
typedef struct vae_backend vae_backend;

struct vae_backend {
    vae_backend_kind kind;
    const char *name;      /* "cpu" or "cuda" */
    char device_name[256]; /* e.g. "oneDNN, 2 threads", "NVIDIA H100 80GB HBM3" */
    void *ctx;             /* backend-private state */

    /* ---- memory ------------------------------------------------------ */
    /* Zero-filled allocation of `bytes`; fatal on failure. */
    void *(*buffer_alloc)(vae_backend *be, size_t bytes);
    void (*buffer_free)(vae_backend *be, void *p);
    /* host -> backend; `src` may be reused as soon as the call returns. */
    void (*upload)(vae_backend *be, void *dst, const void *src, size_t bytes);
    /* backend -> host; waits for all earlier work. */
    void (*download)(vae_backend *be, void *dst, const void *src, size_t bytes);
    void (*memset_zero)(vae_backend *be, void *p, size_t bytes);
    void (*synchronize)(vae_backend *be);

    /* ---- random numbers (our Philox4x32-10, include/philox.h) -------------
     * Both backends run the one formula of philox.h and give the same numbers bit for bit.
     * A generator is (seed, offset): offset counts the 32-bit values drawn since the seed's
     * first one and lives in backend memory (device memory on CUDA). rng_normal and
     * rng_uniform read it there and advance it there by n, so they may be captured in a
     * graph: every replay draws the next n values. Draw layout, for a call of n at offset o:
     *   word(j)     = Philox4x32-10(counter = (lo32(j/4), hi32(j/4), 0, 0),
     *                               key = (lo32(seed), hi32(seed)))[j % 4]
     *   rng_uniform out[i] = ((word(o + i) >> 8) + 1) * 2^-24               in (0, 1]
     *   rng_normal  (out[2p], out[2p+1]) = (r cos(2 pi u), r sin(2 pi u)),
     *               r = sqrt(-2 log uniform(word(o + 2p))), u = uniform(word(o + 2p + 1))
     * with philox.h's own log and sin/cos. `n` must be even for rng_normal (pairs);
     * callers round their buffers up. */
    vae_rng *(*rng_init)(vae_backend *be, uint64_t seed);
    void (*rng_free)(vae_backend *be, vae_rng *rng);
    void (*rng_reset)(vae_backend *be, vae_rng *rng); /* offset 0 (an upload: not in a capture) */
    /* The offset: every rng_normal or rng_uniform call of n advances it by n. get_offset
     * downloads it (waiting for the draws enqueued before it), set_offset uploads it; neither
     * may be captured. set_offset(get_offset()) on a fresh generator of the same seed
     * continues the sequence exactly; used by checkpoints. */
    uint64_t (*rng_get_offset)(vae_backend *be, vae_rng *rng);
    void (*rng_set_offset)(vae_backend *be, vae_rng *rng, uint64_t offset);
    void (*rng_normal)(vae_backend *be, vae_rng *rng, float *out /* (n) */, size_t n);
    void (*rng_uniform)(vae_backend *be, vae_rng *rng, float *out /* (n), in (0,1] */, size_t n);

    /* ---- compute ------------------------------------------------------ */
    /* C = alpha * op(A) @ op(B) + beta * C, all row-major.
     * op(A) is (M, K): A is (M, lda>=K) or, transposed, (K, lda>=M).
     * op(B) is (K, N): B is (K, ldb>=N) or, transposed, (N, ldb>=K).
     * C is (M, ldc>=N). */
    void (*gemm)(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

    /* y = act(y + bias), in place. y (B, N), bias (N). */
    void (*bias_act_forward)(vae_backend *be, float *y, const float *bias, int B, int N, vae_act act);

    /* dx = dy * act'(y) (from the activation's output y); dbias = sum over rows of dx, in float in
     * a fixed order (the CPU: row order; CUDA: 16 row stripes, then their sums in order).
     * dx, dy, y (B, N); dbias (N). dx may alias dy. */
    void (*bias_act_backward)(vae_backend *be, float *dx, float *dbias, const float *dy,
                              const float *y, int B, int N, vae_act act);

    /* z = mu + eps * exp(logvar / 2), where stats (B, 2Z) holds [mu | logvar] per row.
     * z (B, Z), eps (B, Z). */
    void (*reparam_forward)(vae_backend *be, float *z, const float *stats, const float *eps, int B, int Z);

    /* dmu += dz;  dlogvar += dz * eps * exp(logvar / 2) / 2.
     * dstats (B, 2Z) = [dmu | dlogvar], dz (B, Z), stats (B, 2Z), eps (B, Z). */
    void (*reparam_backward)(vae_backend *be, float *dstats, const float *dz, const float *stats,
                             const float *eps, int B, int Z);

    /* ---- loss terms ----------------------------------------------------------
     * A model's per-image losses are one (B, T) matrix, column t = loss term t
     * (model.h names them). Each op below writes its term into column t: `loss`
     * points at element (0, t) and rows are T apart. When its gradient pointer
     * is not NULL it also WRITES (=) the gradient of the weighted term,
     *     grad_scale * (*weight) * d(term)/d(input),
     * where weight is one float in backend memory (read by the op, so a captured
     * graph sees a schedule change it; NULL means 1) and grad_scale a plain float
     * (1/B for a batch mean). A row's sum runs in float, in a fixed order, so reruns give
     * the same bits; the order is each backend's own, so the backends agree to rounding, not
     * bit for bit: on the CPU in index order (lik_bernoulli: 16 interleaved lanes, then the
     * lanes in order); on CUDA each thread's strided elements in order, then a fixed tree over
     * the block's threads (kl_categorical: over a warp's). */

    /* Bernoulli likelihood on logits, fused with its gradient (the heavy part):
     *   loss[i*T] = sum_d max(l,0) - l*x + log1p(exp(-|l|))        (= -log p(x|z) in nats)
     *   dlogits   = grad_scale * w * (sigmoid(l) - x)
     * logits, x, dlogits (B, D). */
    void (*lik_bernoulli)(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, const float *x,
                          int B, int D, const float *weight, float grad_scale);

    /* Gaussian likelihood with a fixed standard deviation sigma, constants included:
     *   loss[i*T] = sum_d ((x - mean)^2 / (2 sigma^2) + log(sigma) + log(2 pi) / 2)
     *   dmean     = grad_scale * w * (mean - x) / sigma^2
     * mean, x, dmean (B, D); sigma > 0. */
    void (*lik_gaussian)(vae_backend *be, float *loss, int T, float *dmean, const float *mean, const float *x,
                         int B, int D, float sigma, const float *weight, float grad_scale);

    /* KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in closed form:
     *   loss[i*T] = -1/2 sum_j (1 + lv_j - mu_j^2 - exp(lv_j))
     *   dstats    = grad_scale * w * [mu | (exp(lv) - 1) / 2]
     * stats, dstats (B, 2Z) = [mu | logvar]. */
    void (*kl_gaussian)(vae_backend *be, float *loss, int T, float *dstats, const float *stats, int B, int Z,
                        const float *weight, float grad_scale);

    /* acc[t] += sum_i row_loss[i, t] for t < T, each summed in double in a fixed order (row
     * order on the CPU; a fixed tree on CUDA), so reruns give the same bits.
     * acc (T) double, row_loss (B, T). */
    void (*loss_accumulate)(vae_backend *be, double *acc, const float *row_loss, int B, int T);

    /* One Adam step over a flat buffer: *step += 1, then the update of vae_adam_config with
     * t = *step, the learning rate *lr and g = grads[i] * *grad_scale. params, grads, m, v (n);
     * lr (1) float and step (1) int in backend memory, read by the op, so it can be captured
     * in a graph and replayed while a schedule changes *lr (cfg->lr is not read).
     * skip (1), backend memory, or NULL: when *skip != 0 the op does nothing at all
     * (params, m, v and *step untouched); it is read by the op, on the device, so a
     * divergence flag set by check_finite gates the update without a synchronization.
     * grad_scale (1), backend memory, or NULL for 1 (see grad_clip_scale). */
    void (*adam_step)(vae_backend *be, float *params, const float *grads, float *m, float *v, size_t n,
                      const vae_adam_config *cfg, const float *lr, int *step, const int *skip,
                      const float *grad_scale);

    /* x[i, :] = data[idx[i], :] / 255. x (B, D) float, data (N, D) uint8, idx (B) int32. */
    void (*gather_batch)(vae_backend *be, float *x, const uint8_t *data, const int32_t *idx, int B, int D);
    /* x[i, :] = data[idx[i], :]. x (B, D) float, data (N, D) float, idx (B) int32. */
    void (*gather_rows)(vae_backend *be, float *x, const float *data, const int32_t *idx, int B, int D);
    /* y[i, k] = 1 if labels[idx[i]] == k else 0 (the one-hot label of a conditional model's batch).
     * y (B, K) float, labels (N) uint8, each < K (checked when the data is loaded), idx (B) int32. */
    void (*gather_one_hot)(vae_backend *be, float *y, const uint8_t *labels, const int32_t *idx, int B, int K);
    /* A Bernoulli draw of each value, in place: x[i] = u[i] < x[i] ? 1 : 0 (dynamic binarization).
     * x (n) float in [0, 1], u (n) uniform (rng_uniform). */
    void (*binarize)(vae_backend *be, float *x, const float *u, size_t n);

    /* Gumbel-softmax sample: y = softmax((logits + g) / tau), g = -log(-log(u)), row by row.
     * u (B, K) uniform in (0,1] (clamped away from 0 and 1 inside); y, logits (B, K).
     * tau (1) in backend memory (a backend scalar: an annealed temperature under graph replay). */
    void (*gumbel_softmax_forward)(vae_backend *be, float *y, const float *logits, const float *u,
                                   int B, int K, const float *tau);

    /* dlogits += y * (dy - sum_k dy_k y_k) / tau (accumulated onto what a KL term wrote).
     * dlogits, dy, y (B, K), distinct; tau (1) in backend memory. */
    void (*gumbel_softmax_backward)(vae_backend *be, float *dlogits, const float *dy, const float *y,
                                    int B, int K, const float *tau);

    /* y[i, k] = 1 where k is the first index of row i's largest logit, else 0: the one-hot
     * argmax q(c|x) that pictures and clustering use. A NaN ranks above every number (as in
     * NumPy's and PyTorch's argmax): a row holding one takes its first NaN, on every backend.
     * y, logits (B, K). */
    void (*onehot_argmax)(vae_backend *be, float *y, const float *logits, int B, int K);

    /* KL(softmax(logits) || uniform over K) per row, a loss term like those above:
     *   q = softmax(l),  loss[i*T] = sum_k q_k log q_k + log K     (= log K - H(q))
     *   dlogits_j = grad_scale * w * q_j * (log q_j + log K - loss_i)
     * logits, dlogits (B, K); log q_k = l_k - max - log(sum exp(l - max)). */
    void (*kl_categorical)(vae_backend *be, float *loss, int T, float *dlogits, const float *logits, int B, int K,
                           const float *weight, float grad_scale);

    /* The gradient weight of a controlled-capacity term gamma * |mean_i loss_i - C| (Burgess 2018):
     *   *weight = gamma * sign(sum_i loss[i*T] / B - *capacity)       (0 when equal)
     * the sum in double in row order; loss points at column t of a (B, T) matrix; weight and
     * capacity (1) in backend memory, so a captured step follows the capacity's schedule. */
    void (*capacity_weight)(vae_backend *be, float *weight, const float *loss, int T, int B, const float *capacity,
                            float gamma);

    /* log N(z; 0, I) - log N(z; mu, diag(exp(logvar))) per row, for the importance weights of
     * `cuvae eval` (log p(z) - log q(z|x) with z = mu + eps * exp(logvar / 2)); the 2 pi
     * constants cancel and (z - mu)^2 / exp(logvar) = eps^2, so
     *   out_i = sum_j (eps_ij^2 - z_ij^2 + logvar_ij) / 2     (summed in float, j in order).
     * out (R), z (R, Z), stats (R, 2Z) = [mu | logvar], eps (R, Z). */
    void (*gauss_log_ratio)(vae_backend *be, float *out, const float *z, const float *stats, const float *eps,
                            int R, int Z);

    /* ---- divergence guard and gradient clipping (issue 7) ----------------
     * Both run on the backend and write backend memory: a training step can
     * check and gate itself inside a captured graph, with no synchronization.
     * Deterministic: the flag is set with an integer compare-and-swap (the
     * same value whoever wins), the norm is summed in double in a fixed order. */

    /* If *flag == 0 and some x[i] is NaN or infinite, *flag = code (code != 0);
     * otherwise *flag is left as it is, so the first code set stays (latched)
     * until the host clears it. flag (1) int, x (n). */
    void (*check_finite)(vae_backend *be, int *flag, const float *x, size_t n, int code);

    /* PyTorch's clip_grad_norm_ factor for a flat buffer:
     *   norm = sqrt(sum_i x[i]^2) (squares and sum in double),
     *   *scale = min(1, max_norm / (norm + 1e-6)) (as float).
     * scale (1) float, x (n); max_norm > 0. Adam multiplies its gradients by *scale. */
    void (*grad_clip_scale)(vae_backend *be, float *scale, const float *x, size_t n, float max_norm);

    /* ---- graphs (optional: NULL where the backend runs ops eagerly) ------
     * Between capture_begin and capture_end, ops are recorded, not run; the
     * graph then replays them with the same pointers and plain arguments: a
     * value that changes between replays (a learning rate, a KL weight) must
     * reach the ops through backend memory, as the pointer arguments above do. */
    void (*graph_capture_begin)(vae_backend *be);
    vae_graph *(*graph_capture_end)(vae_backend *be);
    void (*graph_launch)(vae_backend *be, vae_graph *g);
    void (*graph_free)(vae_backend *be, vae_graph *g);

    void (*destroy)(vae_backend *be); /* frees the backend itself */
};

/* n rounded up to even: the count to pass to rng_normal, and to allocate, for n normals. */
static inline size_t vae_rng_normal_count(size_t n)
{
    return (n + 1) & ~(size_t)1;
}

/* ---- choosing a backend -------------------------------------------------- */
/* A choice carries the GPU's ordinal: VAE_DEVICE_CUDA + N is cuda:N, so
 * VAE_DEVICE_CUDA itself ("cuda") is cuda:0. Use the helpers below. The choices, listed once:
 * X(ID, value, name), the name --device takes; CUDA last. The enum and the names (backend.c:
 * vae_device_parse, vae_device_text) come from it. */
#define VAE_DEVICE_CHOICES(X)                                                                        \
    X(AUTO, 0, "auto") /* CUDA device 0 when a GPU is present, else CPU, and say which */           \
    X(CPU, 1, "cpu")                                                                                 \
    X(CUDA, 2, "cuda") /* cuda:0; cuda:N is VAE_DEVICE_CUDA + N, N <= VAE_DEVICE_MAX_ORDINAL */

typedef enum {
#define VAE_DEVICE_ENUM(id, value, name) VAE_DEVICE_##id = value,
    VAE_DEVICE_CHOICES(VAE_DEVICE_ENUM)
#undef VAE_DEVICE_ENUM
} vae_device_choice;

#define VAE_DEVICE_MAX_ORDINAL 1023

static inline vae_device_choice vae_device_cuda(int ordinal) /* 0 <= ordinal <= VAE_DEVICE_MAX_ORDINAL */
{
    return (vae_device_choice)(VAE_DEVICE_CUDA + ordinal);
}
static inline int vae_device_is_cuda(vae_device_choice c)
{
    return c >= VAE_DEVICE_CUDA;
}
/* The GPU ordinal of a CUDA choice (0 for "cuda"). */
static inline int vae_device_ordinal(vae_device_choice c)
{
    return c >= VAE_DEVICE_CUDA ? (int)c - VAE_DEVICE_CUDA : 0;
}

/* Parse "auto" | "cpu" | "cuda" | "cuda:N" (N a non-negative decimal integer, no
 * sign or spaces, at most VAE_DEVICE_MAX_ORDINAL); -1 with vae_set_error on anything
 * else. Whether device N exists is checked when the backend is created. */
int vae_device_parse(const char *s, vae_device_choice *out);
/* The choice as a user writes it: "auto", "cpu", "cuda" (GPU 0) or "cuda:N"; into buf. */
const char *vae_device_text(vae_device_choice c, char buf[16]);

/* Number of usable CUDA devices (0 without a GPU, a driver, or a CUDA build). */
int vae_cuda_device_count(void);
/* 1 when the CUDA backend runs on the emulated device of a -DCUVAE_CUDA_EMU=ON build
 * (tests/cuda_emu/: the kernels executed on the CPU, for tests), 0 on a real GPU or in a
 * build without CUDA. "auto" never picks the emulated device. */
int vae_cuda_is_emulated(void);

/* The CPU backend; never fails. */
vae_backend *vae_backend_cpu_init(void);
/* The number of OpenMP threads the CPU backend (oneDNN's GEMMs and its own loops)
 * uses from now on, for every CPU backend of the process (omp_set_num_threads; n >= 1;
 * without a call, OpenMP's default: OMP_NUM_THREADS, else one per core). Results are
 * bit-identical run to run only for the same count (the GEMMs split their work by it). */
void vae_cpu_set_threads(int n);
/* The thread count the CPU backend uses now. */
int vae_cpu_threads(void);
/* "oneDNN <version> (<ISA> kernels), OpenMP, N threads" into buf. */
void vae_cpu_describe(char *buf, size_t len);
/* The CUDA backend on device `device`; NULL with vae_set_error when there is
 * no usable GPU ("no CUDA device: <why>"; in a build without CUDA, "no CUDA device:
 * this build of cuvae has no CUDA backend ..."). Other CUDA failures are fatal. */
vae_backend *vae_backend_cuda_init(int device);

/* The message of a CUDA runtime that cannot start, in words: driver_version as
 * cudaDriverGetVersion reports it (0: no driver installed), runtime_version as
 * cudaRuntimeGetVersion (e.g. 13000), and the runtime's error. Tells "no
 * NVIDIA driver" from "a driver older than the runtime", which the runtime
 * reports alike (cudaErrorInsufficientDriver). Writes "no CUDA device: ..."
 * into buf (len bytes); returns snprintf's count. */
int vae_cuda_describe_unavailable(char *buf, size_t len, const char *err_name, const char *err_text,
                                  int driver_version, int runtime_version);

/* The CUDA side of `cuvae --version`, one "name: value" per line into buf (len
 * bytes): the CUDA runtime cuvae was built with, the driver's CUDA version ("no
 * NVIDIA driver" when cudaDriverGetVersion gives 0) and the cuBLAS version. Never
 * fails, with or without a GPU. */
void vae_cuda_describe_versions(char *buf, size_t len);
/* One line per GPU into buf: "cuda:N  NAME  memory T MiB (F MiB free)  compute
 * capability X.Y  M multiprocessors". Returns the number of GPUs; 0 with the reason
 * of vae_backend_cuda_init ("no CUDA device: ...") in buf when there is none. */
int vae_cuda_describe_devices(char *buf, size_t len);

/* The GEMM precision of a CUDA backend (the backend itself, not a wrapper; not during a
 * capture): on 0, FP32 (CUBLAS_DEFAULT_MATH, the default); on 1, TF32
 * (CUBLAS_TF32_TENSOR_OP_MATH: cuBLAS may round each GEMM input to 10 mantissa bits, unit
 * roundoff 2^-11, and sums in FP32). Every later gemm and graph capture follows it; no
 * other op changes. The CPU backend has no such mode: it always computes in FP32
 * (the commands refuse --tf32 with the CPU alone; cli.h). */
void vae_cuda_set_tf32(vae_backend *be, int on);

/* The nodes of a captured graph, by type (a child graph's nodes counted as its parent's). */
typedef struct {
    int nodes;   /* every node */
    int kernels; /* kernel launches (cudaGraphNodeTypeKernel), cuBLAS's included */
    int memsets; /* cudaGraphNodeTypeMemset */
    int memcpys; /* cudaGraphNodeTypeMemcpy */
} vae_graph_nodes;
/* Count g's nodes (cudaGraphGetNodes, cudaGraphNodeGetType) into out. Graphs exist only on
 * the CUDA backend (the CPU's graph entries are NULL, so it never has a vae_graph). */
void vae_graph_count_nodes(const vae_graph *g, vae_graph_nodes *out);

/* Free and total memory of the backend's device in bytes (cudaMemGetInfo): 0, or -1 with
 * vae_set_error on the CPU backend, whose memory is the host's and is not checked here. */
int vae_backend_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes);
/* The CUDA backend's answer to the above (kernels/cuda_backend.cu). */
void vae_cuda_memory_info(vae_backend *be, size_t *free_bytes, size_t *total_bytes);

/* Create the backend the user asked for. "auto" falls back to the CPU only when
 * no GPU is present; "cuda" or "cuda:N" without that GPU returns NULL with
 * vae_set_error ("no CUDA device N: M device(s) present"). */
vae_backend *vae_backend_create(vae_device_choice choice);

/* Start a wrapper w of inner (the profiler, the GEMM recorder): inner's table and state (kind,
 * name, ctx, every op), device_name inner's with ", <suffix>" when suffix is not NULL, no graph
 * ops (so a trainer runs every op eagerly, through the wrapper) and `destroy`. The caller then
 * replaces the ops it intercepts; the wrapper never frees inner. */
void vae_backend_wrap(vae_backend *w, const vae_backend *inner, const char *suffix, void (*destroy)(vae_backend *));

static inline void vae_backend_free(vae_backend *be)
{
    if (be)
        be->destroy(be);
}

#ifdef __cplusplus
}
#endif
#endif /* VAE_BACKEND_H */
