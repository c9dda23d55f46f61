/*
 * op_table.c: the descriptors of every backend op (see op_table.h): each
 * op's cases (odd shapes: 1, 5, 7, 13, 37, 129, 257, 785 rows or columns;
 * input ranges the model produces), its buffers' roles, tolerances, the
 * function that runs it (the only place that names its signature), and
 * where it has them a closed form in double, an objective for finite
 * differences and a check of its outputs' properties.
 *
 * Not here: the drivers (op_drivers.c) and hand-computed single-op checks
 * (test_ops.c).
 */
#include "op_table.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "testutil.h"
#include "vae_math.h"
#include "vae_util.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const int ROWS[] = {1, 5, 37, 129};
static const int COLS[] = {7, 13, 257, 785};

/* Tolerances of a candidate backend against the reference, |cand - ref| <= atol + rtol |ref|. */
#define TOL_ELEMENTWISE 1e-5, 1e-5 /* one rounding or one libm ulp apart */
#define TOL_GEMM 1e-4, 1e-4        /* summation order differs (oneDNN vs cuBLAS) */
/* Whole-buffer normalised error, for every op: an rms error of 1e-5 relative, 100 times what
 * one rounding or a different summation order gives, so a small error on every element (a
 * constant wrong in its fifth digit) fails even where each element is within rtol. */
#define NMSE_ALL 1e-10

size_t op_type_size(op_type t)
{
    switch (t) {
    case OP_F32: return sizeof(float);
    case OP_F64: return sizeof(double);
    case OP_I32: return sizeof(int32_t);
    default: return 1;
    }
}

void op_case_make(const op_desc *d, op_case *c, int k, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->ref_scale = 1.0;
    d->make(c, k, seed);
}

void op_case_free(op_case *c)
{
    for (int b = 0; b < c->nbuf; b++)
        vae_free(c->buf[b].host);
    c->nbuf = 0;
}

/* ---- building cases ------------------------------------------------------------ */

static void *add_buf(op_case *c, const char *name, op_type t, op_role role, size_t n)
{
    if (c->nbuf >= OP_MAX_BUFS)
        vae_fatal("op_table: more than %d buffers in one case", OP_MAX_BUFS);
    op_buf *b = &c->buf[c->nbuf++];
    b->name = name;
    b->type = t;
    b->role = role;
    b->n = n;
    b->host = vae_calloc(n ? n : 1, op_type_size(t));
    return b->host;
}

/* Buffer contents from the case's seed and the buffer's index: every buffer its own stream. */
static uint64_t buf_seed(const op_case *c, uint64_t seed)
{
    return seed * 1000003u + (uint64_t)c->nbuf * 7919u;
}

static float *add_f32(op_case *c, const char *name, op_role role, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = buf_seed(c, seed);
    float *x = add_buf(c, name, OP_F32, role, n);
    tu_fill_uniform(x, n, s, lo, hi);
    return x;
}

static void set_tol(op_case *c, int b, double atol, double rtol)
{
    c->buf[b].own_tol = 1;
    c->buf[b].atol = atol;
    c->buf[b].rtol = rtol;
}

static void add_fd(op_case *c, int grad, int wrt, int acc)
{
    if (c->nfd >= OP_MAX_FD)
        vae_fatal("op_table: more than %d finite-difference pairs", OP_MAX_FD);
    c->fd[c->nfd].grad = grad;
    c->fd[c->nfd].wrt = wrt;
    c->fd[c->nfd].acc = acc;
    c->nfd++;
}

static double act_d(double x, vae_act a)
{
    switch (a) {
    case VAE_ACT_RELU: return x > 0 ? x : 0;
    case VAE_ACT_TANH: return tanh(x);
    default: return x;
    }
}

static double softplus_d(double l) { return fmax(l, 0) + log1p(exp(-fabs(l))); }

/* ---- gemm ------------------------------------------------------------------------ */

enum { GEMM_A, GEMM_B, GEMM_C };
enum { GEMM_TA, GEMM_TB, GEMM_M, GEMM_N, GEMM_K, GEMM_LDA, GEMM_LDB, GEMM_LDC };
static const int gemm_shapes[][3] = {{7, 5, 13},    {1, 7, 13},      {5, 13, 7},  {37, 257, 129},
                                     {129, 785, 37}, {128, 784, 400}, {5, 1, 785}, {257, 129, 1}};
#define GEMM_GRID (COUNT(gemm_shapes) * 8)

/* Cases: every shape x trans_a x trans_b x (beta 0 | beta 0.3), then two large ones for the
 * determinism and CUDA drivers: a forward-sized product and a transposed K = 1000 reduction. */
static void gemm_make(op_case *c, int k, uint64_t seed)
{
    int M, N, K, ta, tb, with_beta;
    if (k < GEMM_GRID) {
        M = gemm_shapes[k / 8][0], N = gemm_shapes[k / 8][1], K = gemm_shapes[k / 8][2];
        ta = (k >> 2) & 1, tb = (k >> 1) & 1, with_beta = k & 1;
    } else if (k == GEMM_GRID) {
        M = 1000, N = 785, K = 257, ta = 0, tb = 0, with_beta = 0;
        c->big = 1;
    } else {
        M = 257, N = 785, K = 1000, ta = 1, tb = 0, with_beta = 1;
        c->big = 1;
    }
    /* Leading dimensions above the minimum, so padding must be skipped and kept. */
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    int *a = c->i;
    a[GEMM_TA] = ta, a[GEMM_TB] = tb, a[GEMM_M] = M, a[GEMM_N] = N, a[GEMM_K] = K;
    a[GEMM_LDA] = lda, a[GEMM_LDB] = ldb, a[GEMM_LDC] = ldc;
    c->f[0] = 0.7f;                     /* alpha */
    c->f[1] = with_beta ? 0.3f : 0.0f; /* beta 0: C is not read; its padding must survive */
    add_f32(c, "A", OP_IN, (size_t)(ta ? K : M) * lda, seed, -1, 1);
    add_f32(c, "B", OP_IN, (size_t)(tb ? N : K) * ldb, seed, -1, 1);
    add_f32(c, "C", with_beta ? OP_ACC : OP_WRITE, (size_t)M * ldc, seed, -1, 1);
    c->ref_scale = K > 13 ? K / 13.0 : 1.0; /* float sums of K products against double */
    snprintf(c->shape, sizeof c->shape, "ta=%d tb=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d beta=%g", ta, tb, M, N,
             K, lda, ldb, ldc, (double)c->f[1]);
}

static void gemm_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int *a = c->i;
    be->gemm(be, a[GEMM_TA], a[GEMM_TB], a[GEMM_M], a[GEMM_N], a[GEMM_K], c->f[0], d[GEMM_A], a[GEMM_LDA],
             d[GEMM_B], a[GEMM_LDB], c->f[1], d[GEMM_C], a[GEMM_LDC]);
}

static unsigned gemm_reference(const op_case *c, double *const *in, double *const *out)
{
    const int *a = c->i;
    const int ta = a[GEMM_TA], tb = a[GEMM_TB], lda = a[GEMM_LDA], ldb = a[GEMM_LDB], ldc = a[GEMM_LDC];
    const double alpha = c->f[0], beta = c->f[1];
    for (int i = 0; i < a[GEMM_M]; i++)
        for (int j = 0; j < a[GEMM_N]; j++) {
            double s = 0;
            for (int k = 0; k < a[GEMM_K]; k++) {
                double x = ta ? in[GEMM_A][(size_t)k * lda + i] : in[GEMM_A][(size_t)i * lda + k];
                double y = tb ? in[GEMM_B][(size_t)j * ldb + k] : in[GEMM_B][(size_t)k * ldb + j];
                s += x * y;
            }
            double *o = &out[GEMM_C][(size_t)i * ldc + j];
            *o = alpha * s + (beta != 0 ? beta * in[GEMM_C][(size_t)i * ldc + j] : 0.0);
        }
    return 1u << GEMM_C;
}

static const op_desc desc_gemm = {
    .name = "gemm",
    .ncases = GEMM_GRID + 2,
    .make = gemm_make,
    .run = gemm_run,
    .atol = 1e-4, .rtol = 1e-4, .nmse = NMSE_ALL,
    .reference = gemm_reference,
    .ref_atol = 1e-5, .ref_rtol = 1e-5,
};

/* ---- bias + activation, forward then backward --------------------------------------------
 * y starts as the pre-activation x and becomes act(x + bias); the backward then reads that y,
 * so the objective sum dy * act(x + bias) is a function of the op's inputs. */

enum { BA_Y, BA_BIAS, BA_DY, BA_DX, BA_DBIAS };
enum { BA_B, BA_N, BA_ACT, BA_IN_PLACE };
static const int ba_rows[] = {1, 5, 37, 129, 1000};
#define BA_GRID (3 * COUNT(ba_rows) * COUNT(COLS) * 2)

static void bias_act_make(op_case *c, int k, uint64_t seed)
{
    int B, N, a, in_place;
    if (k < BA_GRID) {
        in_place = k % 2;
        N = COLS[(k / 2) % COUNT(COLS)];
        B = ba_rows[(k / 2 / COUNT(COLS)) % COUNT(ba_rows)];
        a = k / (BA_GRID / 3);
    } else { /* the shapes of the earlier hand-written checks */
        B = k == BA_GRID ? 7 : 3, N = k == BA_GRID ? 11 : 17;
        a = k == BA_GRID ? VAE_ACT_TANH : VAE_ACT_NONE;
        in_place = 0;
    }
    c->i[BA_B] = B, c->i[BA_N] = N, c->i[BA_ACT] = a, c->i[BA_IN_PLACE] = in_place;
    const size_t n = (size_t)B * N;
    float *x = add_f32(c, "y", OP_ACC, n, seed, -2, 2);
    float *bias = add_f32(c, "bias", OP_IN, (size_t)N, seed, -1, 1);
    /* Keep pre-activations away from relu's kink, so finite differences are smooth. */
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++) {
            float v = x[(size_t)i * N + j] + bias[j];
            if (fabsf(v) < 0.05f)
                x[(size_t)i * N + j] += v >= 0 ? 0.1f : -0.1f;
        }
    add_f32(c, "dy", in_place ? OP_ACC : OP_IN, n, seed, -1, 1);
    add_f32(c, "dx", in_place ? OP_UNTOUCHED : OP_WRITE, n, seed, -1, 1);
    add_f32(c, "dbias", OP_WRITE, (size_t)N, seed, -1, 1); /* a parameter gradient: written */
    set_tol(c, BA_DBIAS, 1e-4, 1e-5);                   /* sums over up to 1000 rows, other order */
    add_fd(c, in_place ? BA_DY : BA_DX, BA_Y, 0);
    add_fd(c, BA_DBIAS, BA_BIAS, 0);
    snprintf(c->shape, sizeof c->shape, "%s B=%d N=%d%s", vae_act_name((vae_act)a), B, N,
             in_place ? " (dx aliases dy)" : "");
}

static void bias_act_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int B = c->i[BA_B], N = c->i[BA_N];
    const vae_act act = (vae_act)c->i[BA_ACT];
    be->bias_act_forward(be, d[BA_Y], d[BA_BIAS], B, N, act);
    be->bias_act_backward(be, c->i[BA_IN_PLACE] ? d[BA_DY] : d[BA_DX], d[BA_DBIAS], d[BA_DY], d[BA_Y], B, N, act);
}

static unsigned bias_act_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[BA_B], N = c->i[BA_N];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++)
            out[BA_Y][(size_t)i * N + j] = act_d(in[BA_Y][(size_t)i * N + j] + in[BA_BIAS][j], (vae_act)c->i[BA_ACT]);
    return 1u << BA_Y;
}

static double bias_act_objective(const op_case *c, double *const *x)
{
    const int B = c->i[BA_B], N = c->i[BA_N];
    double s = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < N; j++)
            s += x[BA_DY][(size_t)i * N + j] * act_d(x[BA_Y][(size_t)i * N + j] + x[BA_BIAS][j], (vae_act)c->i[BA_ACT]);
    return s;
}

static const op_desc desc_bias_act = {
    .name = "bias_act",
    .ncases = BA_GRID + 2,
    .make = bias_act_make,
    .run = bias_act_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = bias_act_reference,
    .ref_atol = 1e-6, .ref_rtol = 1e-6,
    .objective = bias_act_objective,
    .fd_atol = 1e-5, .fd_rtol = 1e-4,
};

/* ---- reparameterisation, forward then backward ------------------------------------------ */

enum { RP_STATS, RP_EPS, RP_DZ, RP_Z, RP_DSTATS };
static const int reparam_z[] = {1, 7, 13, 257};
#define RP_GRID (COUNT(ROWS) * COUNT(reparam_z))

static void reparam_make(op_case *c, int k, uint64_t seed)
{
    const int B = k < RP_GRID ? ROWS[k / COUNT(reparam_z)] : 5;
    const int Z = k < RP_GRID ? reparam_z[k % COUNT(reparam_z)] : 3;
    c->i[0] = B, c->i[1] = Z;
    const size_t n = (size_t)B * Z;
    add_f32(c, "stats", OP_IN, 2 * n, seed, -3, 3);
    add_f32(c, "eps", OP_IN, n, seed, -3, 3);
    add_f32(c, "dz", OP_IN, n, seed, -1, 1);
    add_f32(c, "z", OP_WRITE, n, seed, 0, 0);
    add_f32(c, "dstats", OP_ACC, 2 * n, seed, -1, 1); /* the loss wrote it; backward adds */
    add_fd(c, RP_DSTATS, RP_STATS, 1);
    snprintf(c->shape, sizeof c->shape, "B=%d Z=%d", B, Z);
}

static void reparam_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->reparam_forward(be, d[RP_Z], d[RP_STATS], d[RP_EPS], c->i[0], c->i[1]);
    be->reparam_backward(be, d[RP_DSTATS], d[RP_DZ], d[RP_STATS], d[RP_EPS], c->i[0], c->i[1]);
}

static double reparam_z_d(double *const *x, int Z, int i, int j)
{
    return x[RP_STATS][(size_t)i * 2 * Z + j] +
           x[RP_EPS][(size_t)i * Z + j] * exp(0.5 * x[RP_STATS][(size_t)i * 2 * Z + Z + j]);
}

static unsigned reparam_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[0], Z = c->i[1];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Z; j++)
            out[RP_Z][(size_t)i * Z + j] = reparam_z_d(in, Z, i, j);
    return 1u << RP_Z;
}

static double reparam_objective(const op_case *c, double *const *x)
{
    const int B = c->i[0], Z = c->i[1];
    double s = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Z; j++)
            s += x[RP_DZ][(size_t)i * Z + j] * reparam_z_d(x, Z, i, j);
    return s;
}

static const op_desc desc_reparam = {
    .name = "reparam",
    .ncases = RP_GRID + 1,
    .make = reparam_make,
    .run = reparam_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = reparam_reference,
    .ref_atol = 1e-6, .ref_rtol = 1e-6,
    .objective = reparam_objective,
    .fd_atol = 1e-5, .fd_rtol = 1e-4,
};

/* ---- gauss_log_ratio ---------------------------------------------------------------------- */

enum { GL_Z, GL_STATS, GL_EPS, GL_OUT };

static void gauss_log_ratio_make(op_case *c, int k, uint64_t seed)
{
    const int R = k < RP_GRID ? ROWS[k / COUNT(reparam_z)] : 7;
    const int Z = k < RP_GRID ? reparam_z[k % COUNT(reparam_z)] : 5;
    c->i[0] = R, c->i[1] = Z;
    const size_t n = (size_t)R * Z;
    float *z = add_f32(c, "z", OP_IN, n, seed, 0, 0);
    float *stats = add_f32(c, "stats", OP_IN, 2 * n, seed, -3, 3);
    float *eps = add_f32(c, "eps", OP_IN, n, seed, -3, 3);
    add_f32(c, "out", OP_WRITE, (size_t)R, seed, 0, 0);
    /* z = mu + eps * exp(logvar / 2), as the op's eps^2 form assumes (and eval passes) */
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Z; j++) {
            const float *s = stats + (size_t)i * 2 * Z;
            z[(size_t)i * Z + j] = (float)(s[j] + (double)eps[(size_t)i * Z + j] * exp(0.5 * s[Z + j]));
        }
    c->ref_scale = Z > 5 ? Z / 5.0 : 1.0; /* z rounded to float, summed over Z columns */
    snprintf(c->shape, sizeof c->shape, "R=%d Z=%d", R, Z);
}

static void gauss_log_ratio_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->gauss_log_ratio(be, d[GL_OUT], d[GL_Z], d[GL_STATS], d[GL_EPS], c->i[0], c->i[1]);
}

/* log N(z; 0, I) - log N(z; mu, exp(logvar)) from the densities themselves, with their 2 pi
 * constants and (z - mu)^2 / exp(logvar): the op's eps^2 form must agree. */
static unsigned gauss_log_ratio_reference(const op_case *c, double *const *in, double *const *out)
{
    const int R = c->i[0], Z = c->i[1];
    const double log2pi = 2 * VAE_LOG_SQRT_2PI;
    for (int i = 0; i < R; i++) {
        double lp = 0, lq = 0;
        for (int j = 0; j < Z; j++) {
            double z = in[GL_Z][(size_t)i * Z + j], mu = in[GL_STATS][(size_t)i * 2 * Z + j];
            double lv = in[GL_STATS][(size_t)i * 2 * Z + Z + j];
            lp += -0.5 * (log2pi + z * z);
            lq += -0.5 * (log2pi + lv + (z - mu) * (z - mu) / exp(lv));
        }
        out[GL_OUT][i] = lp - lq;
    }
    return 1u << GL_OUT;
}

static const op_desc desc_gauss_log_ratio = {
    .name = "gauss_log_ratio",
    .ncases = RP_GRID + 1,
    .make = gauss_log_ratio_make,
    .run = gauss_log_ratio_run,
    .atol = 1e-4, .rtol = 1e-4, .nmse = NMSE_ALL, /* a sum over Z columns per row, other order */
    .reference = gauss_log_ratio_reference,
    .ref_atol = 1e-4, .ref_rtol = 1e-5,
};

/* ---- loss terms: lik_bernoulli, lik_gaussian, kl_gaussian ---------------------------------------
 * Each writes its term into column t of a (B, T) matrix: the other columns keep their poison,
 * so a write there fails. With a gradient pointer it also writes the gradient of
 * grad_scale * w * term, w one float in backend memory (a backend scalar: by seed, so a graph
 * replay sees it change) or NULL for 1. Without one, the gradient's buffer must stay untouched. */

enum { LT_B, LT_D, LT_T, LT_COL, LT_GRAD, LT_WEIGHT, LT_BASE /* index of the weight; loss, gradient follow */ };
static const int loss_widths[] = {784, 13, 785, 1};
static const int kl_widths[] = {20, 3, 33, 1};
#define LT_GRID (COUNT(ROWS) * COUNT(loss_widths) * 2)

/* Case k's rows, width, T, column, gradient and weight (case LT_GRID: MNIST's width, few rows,
 * with gradients: small enough for finite differences). */
static void loss_term_shape(op_case *c, int k, const int *widths, int fd_width)
{
    int *a = c->i;
    if (k < LT_GRID) {
        a[LT_GRAD] = k % 2;
        a[LT_D] = widths[(k / 2) % COUNT(loss_widths)];
        a[LT_B] = ROWS[k / 2 / COUNT(loss_widths)];
    } else {
        a[LT_GRAD] = 1, a[LT_D] = fd_width, a[LT_B] = 3;
    }
    a[LT_T] = 1 + k % 3;
    a[LT_COL] = (k / 3) % a[LT_T];
    a[LT_WEIGHT] = (k / 2 + k / 8) % 2;
    c->f[0] = 1.0f / (float)a[LT_B]; /* grad_scale */
}

/* The weight, loss and gradient buffers, after the op's inputs (the first of which the
 * gradient is of). */
static void loss_term_outputs(op_case *c, uint64_t seed, size_t grad_n, const char *grad_name)
{
    int *a = c->i;
    const int base = a[LT_BASE] = c->nbuf;
    float *w = add_buf(c, "weight", OP_F32, a[LT_WEIGHT] ? OP_IN : OP_UNTOUCHED, 1);
    *w = 0.25f * (float)(seed % 5); /* 0 included: a KL warm-up starts there */
    add_f32(c, "loss", OP_WRITE, (size_t)a[LT_B] * a[LT_T], seed, 0, 0);
    set_tol(c, base + 1, 1e-4, 1e-4); /* sums over up to 785 columns, other order */
    add_f32(c, grad_name, a[LT_GRAD] ? OP_WRITE : OP_UNTOUCHED, grad_n, seed, 0, 0);
    if (a[LT_GRAD])
        add_fd(c, base + 2, 0, 0);
}

/* lik_bernoulli's gradient: each element from include/vae_math.h on both backends, so the
 * backends must agree bit for bit (only the row sums run in different orders). */
static void loss_term_grad_exact(op_case *c)
{
    if (c->i[LT_GRAD])
        set_tol(c, c->i[LT_BASE] + 2, 0, 0);
}

static void loss_term_shape_text(op_case *c, const char *width_name)
{
    const int *a = c->i;
    snprintf(c->shape, sizeof c->shape, "B=%d %s=%d T=%d t=%d %s, weight %s", a[LT_B], width_name, a[LT_D], a[LT_T],
             a[LT_COL], a[LT_GRAD] ? "with gradient" : "forward only", a[LT_WEIGHT] ? "by seed" : "NULL");
}

/* The op's arguments: the loss column, the gradient (or NULL) and the weight (or NULL). */
static float *loss_term_column(const op_case *c, void *const *d)
{
    return (float *)d[c->i[LT_BASE] + 1] + c->i[LT_COL];
}
static float *loss_term_grad(const op_case *c, void *const *d)
{
    return c->i[LT_GRAD] ? d[c->i[LT_BASE] + 2] : NULL;
}
static const float *loss_term_weight(const op_case *c, void *const *d)
{
    return c->i[LT_WEIGHT] ? d[c->i[LT_BASE]] : NULL;
}

enum { LB_LOGITS, LB_X };

static void lik_bernoulli_make(op_case *c, int k, uint64_t seed)
{
    loss_term_shape(c, k, loss_widths, 784);
    const size_t nd = (size_t)c->i[LT_B] * c->i[LT_D];
    const float lmax = k < LT_GRID ? 8 : 6;
    float *logits = add_f32(c, "logits", OP_IN, nd, seed, -lmax, lmax);
    float *x = add_f32(c, "x", OP_IN, nd, seed, 0, 1); /* targets in [0, 1] */
    /* Extremes: the stable forms must stay finite. */
    logits[0] = 100.0f;
    x[0] = 0.0f;
    if (nd > 1) {
        logits[nd - 1] = -100.0f;
        x[nd - 1] = 1.0f;
    }
    loss_term_outputs(c, seed, nd, "dlogits");
    loss_term_grad_exact(c);
    loss_term_shape_text(c, "D");
}

static void lik_bernoulli_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int *a = c->i;
    be->lik_bernoulli(be, loss_term_column(c, d), a[LT_T], loss_term_grad(c, d), d[LB_LOGITS], d[LB_X], a[LT_B],
                      a[LT_D], loss_term_weight(c, d), c->f[0]);
}

/* -log p(x|z) of row i: sum_d softplus(l) - l x */
static double lik_bernoulli_row(const op_case *c, double *const *x, int i)
{
    const int D = c->i[LT_D];
    double s = 0;
    for (int d = 0; d < D; d++) {
        double l = x[LB_LOGITS][(size_t)i * D + d];
        s += softplus_d(l) - l * x[LB_X][(size_t)i * D + d];
    }
    return s;
}

typedef double (*loss_row_fn)(const op_case *c, double *const *x, int i);

/* The loss ops' closed form (column t of each row) and objective (grad_scale * w * the rows' sum). */
static unsigned loss_term_reference(const op_case *c, double *const *in, double *const *out, loss_row_fn row)
{
    const int base = c->i[LT_BASE];
    for (int i = 0; i < c->i[LT_B]; i++)
        out[base + 1][(size_t)i * c->i[LT_T] + c->i[LT_COL]] = row(c, in, i);
    return 1u << (base + 1);
}

static double loss_term_objective(const op_case *c, double *const *x, loss_row_fn row)
{
    double s = 0;
    for (int i = 0; i < c->i[LT_B]; i++)
        s += row(c, x, i);
    const double w = c->i[LT_WEIGHT] ? x[c->i[LT_BASE]][0] : 1.0;
    return (double)c->f[0] * w * s;
}

static unsigned lik_bernoulli_reference(const op_case *c, double *const *in, double *const *out)
{
    return loss_term_reference(c, in, out, lik_bernoulli_row);
}

static double lik_bernoulli_objective(const op_case *c, double *const *x)
{
    return loss_term_objective(c, x, lik_bernoulli_row);
}

static const op_desc desc_lik_bernoulli = {
    .name = "lik_bernoulli",
    .ncases = LT_GRID + 1,
    .make = lik_bernoulli_make,
    .run = lik_bernoulli_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = lik_bernoulli_reference,
    .ref_atol = 1e-4, .ref_rtol = 1e-5,
    .objective = lik_bernoulli_objective,
    .fd_atol = 1e-6, .fd_rtol = 1e-4,
};

enum { LG_MEAN, LG_X };

static void lik_gaussian_make(op_case *c, int k, uint64_t seed)
{
    loss_term_shape(c, k, loss_widths, 784);
    c->f[1] = (k / 4) % 2 ? 0.3f : 1.0f; /* sigma */
    const size_t nd = (size_t)c->i[LT_B] * c->i[LT_D];
    add_f32(c, "mean", OP_IN, nd, seed, -3, 3);
    add_f32(c, "x", OP_IN, nd, seed, -1, 1);
    loss_term_outputs(c, seed, nd, "dmean");
    loss_term_shape_text(c, "D");
    snprintf(c->shape + strlen(c->shape), sizeof c->shape - strlen(c->shape), ", sigma %g", (double)c->f[1]);
}

static void lik_gaussian_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int *a = c->i;
    be->lik_gaussian(be, loss_term_column(c, d), a[LT_T], loss_term_grad(c, d), d[LG_MEAN], d[LG_X], a[LT_B],
                     a[LT_D], c->f[1], loss_term_weight(c, d), c->f[0]);
}

/* -log N(x; mean, sigma^2) of row i, constants included */
static double lik_gaussian_row(const op_case *c, double *const *x, int i)
{
    const int D = c->i[LT_D];
    const double sigma = c->f[1], log_norm = log(sigma) + VAE_LOG_SQRT_2PI;
    double s = 0;
    for (int d = 0; d < D; d++) {
        double r = x[LG_MEAN][(size_t)i * D + d] - x[LG_X][(size_t)i * D + d];
        s += r * r / (2 * sigma * sigma) + log_norm;
    }
    return s;
}

static unsigned lik_gaussian_reference(const op_case *c, double *const *in, double *const *out)
{
    return loss_term_reference(c, in, out, lik_gaussian_row);
}

static double lik_gaussian_objective(const op_case *c, double *const *x)
{
    return loss_term_objective(c, x, lik_gaussian_row);
}

static const op_desc desc_lik_gaussian = {
    .name = "lik_gaussian",
    .ncases = LT_GRID + 1,
    .make = lik_gaussian_make,
    .run = lik_gaussian_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = lik_gaussian_reference,
    .ref_atol = 1e-4, .ref_rtol = 1e-5,
    .objective = lik_gaussian_objective,
    .fd_atol = 1e-5, .fd_rtol = 1e-4, /* the objective reaches 1e4 at sigma 0.3: its rounding over h */
};

enum { KL_STATS };

static void kl_gaussian_make(op_case *c, int k, uint64_t seed)
{
    loss_term_shape(c, k, kl_widths, 20);
    const int B = c->i[LT_B], Z = c->i[LT_D];
    float *stats = add_f32(c, "stats", OP_IN, (size_t)B * 2 * Z, seed, -3, 3); /* mu in [-3, 3] */
    float *lv = vae_calloc((size_t)B * Z, sizeof *lv);
    tu_fill_uniform(lv, (size_t)B * Z, seed + 17, -3, 2); /* logvar in [-3, 2] */
    for (int i = 0; i < B; i++)
        memcpy(stats + (size_t)i * 2 * Z + Z, lv + (size_t)i * Z, (size_t)Z * sizeof *lv);
    vae_free(lv);
    loss_term_outputs(c, seed, (size_t)B * 2 * Z, "dstats");
    loss_term_shape_text(c, "Z");
}

static void kl_gaussian_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int *a = c->i;
    be->kl_gaussian(be, loss_term_column(c, d), a[LT_T], loss_term_grad(c, d), d[KL_STATS], a[LT_B], a[LT_D],
                    loss_term_weight(c, d), c->f[0]);
}

/* KL(N(mu, exp(lv)) || N(0, I)) of row i */
static double kl_gaussian_row(const op_case *c, double *const *x, int i)
{
    const int Z = c->i[LT_D];
    double s = 0;
    for (int j = 0; j < Z; j++) {
        double mu = x[KL_STATS][(size_t)i * 2 * Z + j], lv = x[KL_STATS][(size_t)i * 2 * Z + Z + j];
        s += -0.5 * (1 + lv - mu * mu - exp(lv));
    }
    return s;
}

static unsigned kl_gaussian_reference(const op_case *c, double *const *in, double *const *out)
{
    return loss_term_reference(c, in, out, kl_gaussian_row);
}

static double kl_gaussian_objective(const op_case *c, double *const *x)
{
    return loss_term_objective(c, x, kl_gaussian_row);
}

static const op_desc desc_kl_gaussian = {
    .name = "kl_gaussian",
    .ncases = LT_GRID + 1,
    .make = kl_gaussian_make,
    .run = kl_gaussian_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = kl_gaussian_reference,
    .ref_atol = 1e-4, .ref_rtol = 1e-5,
    .objective = kl_gaussian_objective,
    .fd_atol = 1e-6, .fd_rtol = 1e-4,
};

/* ---- loss_accumulate ------------------------------------------------------------------------ */

enum { LA_ROWS, LA_ACC };
static const int la_rows[] = {1, 5, 7, 37, 129, 1000, 4097};
static const int la_terms[] = {2, 1, 3, 5};

static void loss_accumulate_make(op_case *c, int k, uint64_t seed)
{
    const int B = la_rows[k % COUNT(la_rows)], T = la_terms[k / COUNT(la_rows)];
    c->i[0] = B, c->i[1] = T;
    add_f32(c, "row_loss", OP_IN, (size_t)B * T, seed, 0, 600);
    double *acc = add_buf(c, "acc", OP_F64, OP_ACC, (size_t)T); /* accumulated into: starts nonzero */
    for (int t = 0; t < T; t++)
        acc[t] = 12.5 * (t + 1) - 3.25 * (double)(seed % 7);
    snprintf(c->shape, sizeof c->shape, "B=%d T=%d", B, T);
}

static void loss_accumulate_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->loss_accumulate(be, d[LA_ACC], d[LA_ROWS], c->i[0], c->i[1]);
}

static unsigned loss_accumulate_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[0], T = c->i[1];
    for (int t = 0; t < T; t++) {
        double s = 0; /* in double, in row order */
        for (int i = 0; i < B; i++)
            s += in[LA_ROWS][(size_t)i * T + t];
        out[LA_ACC][t] += s;
    }
    return 1u << LA_ACC;
}

static const op_desc desc_loss_accumulate = {
    .name = "loss_accumulate",
    .ncases = COUNT(la_rows) * COUNT(la_terms),
    .make = loss_accumulate_make,
    .run = loss_accumulate_run,
    .atol = 1e-9, .rtol = 1e-9, .nmse = NMSE_ALL, /* double sums of the same floats */
    .reference = loss_accumulate_reference,
    .ref_atol = 1e-9, .ref_rtol = 1e-9,
};

/* ---- adam_step ------------------------------------------------------------------------------ *
 * Several steps in one run, each with its own gradient; the learning rate, the skip flag and
 * the clipping factor are backend scalars read by pointer: their values come from the seed, so
 * graph replays see them change. cfg->lr is NaN: the op must not read it. */

enum { AD_P, AD_G, AD_M, AD_V, AD_STEP, AD_LR, AD_SKIP, AD_SCALE };
enum { AD_N, AD_STEPS, AD_SKIP_MODE, AD_SCALE_MODE };
/* skip mode: 0 NULL, 1 a flag that is 0 or 1 by seed, 2 always set; scale mode: 0 NULL, 1 by seed */
static const int adam_cases[][4] = {
    {1000003, 5, 0, 0}, {5, 3, 0, 0}, {100003, 3, 1, 1}, {100003, 1, 2, 1}, {4099, 2, 1, 1}, {7, 4, 0, 1},
};

static void adam_make(op_case *c, int k, uint64_t seed)
{
    const int n = adam_cases[k][0], steps = adam_cases[k][1];
    const int skip_mode = adam_cases[k][2], scale_mode = adam_cases[k][3];
    c->i[AD_N] = n, c->i[AD_STEPS] = steps, c->i[AD_SKIP_MODE] = skip_mode, c->i[AD_SCALE_MODE] = scale_mode;
    c->f[0] = NAN, c->f[1] = 0.9f, c->f[2] = 0.999f, c->f[3] = 1e-8f; /* cfg: lr (not read), beta1, beta2, eps */
    add_f32(c, "params", OP_ACC, (size_t)n, seed, -1, 1);
    float *g = add_f32(c, "grads", OP_IN, (size_t)n * steps, seed, -1, 1); /* one gradient per step */
    if (n > 2)
        for (int s = 0; s < steps; s++)
            g[(size_t)s * n + n / 2] = 0.0f; /* a parameter without gradient */
    add_f32(c, "m", OP_ACC, (size_t)n, seed, -0.1f, 0.1f);
    add_f32(c, "v", OP_ACC, (size_t)n, seed, 0, 0.01f);
    int32_t *step = add_buf(c, "step", OP_I32, OP_ACC, 1);
    *step = (int32_t)(seed % 4);
    float *lr = add_buf(c, "lr", OP_F32, OP_IN, 1);
    *lr = 1e-3f * (float)(1 + seed % 3);
    int32_t *skip = add_buf(c, "skip", OP_I32, skip_mode ? OP_IN : OP_UNTOUCHED, 1);
    *skip = skip_mode == 2 ? 1 : (int32_t)(seed & 1);
    float *scale = add_buf(c, "grad_scale", OP_F32, scale_mode ? OP_IN : OP_UNTOUCHED, 1);
    *scale = 0.25f * (float)(1 + seed % 4);
    set_tol(c, AD_P, 1e-6, 1e-5);
    set_tol(c, AD_M, 1e-7, 1e-5);
    set_tol(c, AD_V, 1e-9, 1e-5);
    snprintf(c->shape, sizeof c->shape, "n=%d steps=%d skip=%s grad_scale=%s", n, steps,
             skip_mode == 0 ? "NULL" : skip_mode == 1 ? "by seed" : "set", scale_mode ? "by seed" : "NULL");
}

static void adam_run(vae_backend *be, const op_case *c, void *const *d)
{
    const vae_adam_config cfg = {.lr = c->f[0], .beta1 = c->f[1], .beta2 = c->f[2], .eps = c->f[3]};
    const size_t n = (size_t)c->i[AD_N];
    for (int s = 0; s < c->i[AD_STEPS]; s++)
        be->adam_step(be, d[AD_P], (const float *)d[AD_G] + (size_t)s * n, d[AD_M], d[AD_V], n, &cfg, d[AD_LR],
                      d[AD_STEP], c->i[AD_SKIP_MODE] ? d[AD_SKIP] : NULL, c->i[AD_SCALE_MODE] ? d[AD_SCALE] : NULL);
}

/* The counter moves by the number of steps; a set skip flag leaves everything as it was; the
 * parameters stay finite (cfg->lr, NaN, unread). */
static int adam_check(const op_case *c, void *const *out, const char *where)
{
    const float *p = out[AD_P];
    for (size_t i = 0; i < c->buf[AD_P].n; i++)
        if (!isfinite(p[i])) {
            fprintf(stderr, "%s: params[%zu] = %g\n", where, i, (double)p[i]);
            return 0;
        }
    const int skipped = c->i[AD_SKIP_MODE] && *(const int32_t *)c->buf[AD_SKIP].host != 0;
    const int32_t step0 = *(const int32_t *)c->buf[AD_STEP].host, step = *(const int32_t *)out[AD_STEP];
    const int32_t want = skipped ? step0 : step0 + c->i[AD_STEPS];
    if (step != want) {
        fprintf(stderr, "%s: step counter %d, expected %d\n", where, step, want);
        return 0;
    }
    if (skipped)
        for (int b = AD_P; b <= AD_V; b++)
            if (b != AD_G && memcmp(out[b], c->buf[b].host, c->buf[b].n * sizeof(float)) != 0) {
                fprintf(stderr, "%s: %s changed while the skip flag was set\n", where, c->buf[b].name);
                return 0;
            }
    return 1;
}

static const op_desc desc_adam_step = {
    .name = "adam_step",
    .ncases = COUNT(adam_cases),
    .make = adam_make,
    .run = adam_run,
    .atol = 1e-6, .rtol = 1e-5, .nmse = NMSE_ALL,
    .check = adam_check,
};

/* ---- gather_batch ------------------------------------------------------------------------------ */

enum { GB_X, GB_DATA, GB_IDX };
static const int gather_d[] = {784, 13, 1};
#define GB_GRID (COUNT(gather_d) * COUNT(ROWS))

static void gather_make(op_case *c, int k, uint64_t seed)
{
    const int D = k < GB_GRID ? gather_d[k / COUNT(ROWS)] : 5, B = k < GB_GRID ? ROWS[k % COUNT(ROWS)] : 4;
    const int n_images = k < GB_GRID ? 300 : 6;
    c->i[0] = B, c->i[1] = D;
    const size_t nd = (size_t)n_images * D;
    add_f32(c, "x", OP_WRITE, (size_t)B * D, seed, 0, 0);
    uint64_t s = buf_seed(c, seed);
    uint8_t *data = add_buf(c, "data", OP_U8, OP_IN, nd);
    float *u = vae_calloc(nd > (size_t)B ? nd : (size_t)B, sizeof *u);
    tu_fill_uniform(u, nd, s, 0, 256);
    for (size_t i = 0; i < nd; i++)
        data[i] = (uint8_t)(u[i] >= 255.0f ? 255 : (int)u[i]);
    data[0] = 255; /* both ends of the byte range */
    data[nd - 1] = 0;
    s = buf_seed(c, seed);
    int32_t *idx = add_buf(c, "idx", OP_I32, OP_IN, (size_t)B); /* valid indices, repeats allowed */
    tu_fill_uniform(u, (size_t)B, s, 0, (float)n_images);
    for (int i = 0; i < B; i++)
        idx[i] = (int32_t)u[i] >= n_images ? n_images - 1 : (int32_t)u[i];
    idx[0] = n_images - 1; /* the last image */
    if (B > 1)
        idx[B - 1] = 0;
    vae_free(u);
    snprintf(c->shape, sizeof c->shape, "B=%d D=%d images=%d", B, D, n_images);
}

static void gather_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->gather_batch(be, d[GB_X], d[GB_DATA], d[GB_IDX], c->i[0], c->i[1]);
}

static unsigned gather_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[0], D = c->i[1];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < D; j++)
            out[GB_X][(size_t)i * D + j] = (float)in[GB_DATA][(size_t)in[GB_IDX][i] * D + j] / 255.0f;
    return 1u << GB_X;
}

static const op_desc desc_gather_batch = {
    .name = "gather_batch",
    .ncases = GB_GRID + 1,
    .make = gather_make,
    .run = gather_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* (float)byte / 255.0f on both: exact */
    .reference = gather_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- gather_rows -------------------------------------------------------------------------------- */

enum { GR_X, GR_DATA, GR_IDX };
static const int gather_rows_d[] = {1, 3, 13, 785};
#define GR_GRID (COUNT(gather_rows_d) * COUNT(ROWS))

static void gather_rows_make(op_case *c, int k, uint64_t seed)
{
    const int D = gather_rows_d[k / COUNT(ROWS)], B = ROWS[k % COUNT(ROWS)], n_rows = 300;
    c->i[0] = B, c->i[1] = D;
    const size_t nd = (size_t)n_rows * D;
    add_f32(c, "x", OP_WRITE, (size_t)B * D, seed, 0, 0);
    float *data = add_f32(c, "data", OP_IN, nd, seed, -40, 40);
    data[0] = -0.0f; /* copied as they are: the sign of zero and tiny values too */
    data[nd - 1] = 1e-38f;
    uint64_t s = buf_seed(c, seed);
    int32_t *idx = add_buf(c, "idx", OP_I32, OP_IN, (size_t)B); /* valid indices, repeats allowed */
    float *u = vae_calloc((size_t)B, sizeof *u);
    tu_fill_uniform(u, (size_t)B, s, 0, (float)n_rows);
    for (int i = 0; i < B; i++)
        idx[i] = (int32_t)u[i] >= n_rows ? n_rows - 1 : (int32_t)u[i];
    idx[0] = n_rows - 1; /* the last row */
    if (B > 1)
        idx[B - 1] = 0;
    vae_free(u);
    snprintf(c->shape, sizeof c->shape, "B=%d D=%d rows=%d", B, D, n_rows);
}

static void gather_rows_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->gather_rows(be, d[GR_X], d[GR_DATA], d[GR_IDX], c->i[0], c->i[1]);
}

static unsigned gather_rows_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[0], D = c->i[1];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < D; j++)
            out[GR_X][(size_t)i * D + j] = in[GR_DATA][(size_t)in[GR_IDX][i] * D + j];
    return 1u << GR_X;
}

static const op_desc desc_gather_rows = {
    .name = "gather_rows",
    .ncases = GR_GRID,
    .make = gather_rows_make,
    .run = gather_rows_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* a copy: bit for bit */
    .reference = gather_rows_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- gather_one_hot ---------------------------------------------------------------------------- */

enum { GO_Y, GO_LABELS, GO_IDX };
static const int one_hot_k[] = {1, 2, 10, 256};
#define GO_GRID (COUNT(one_hot_k) * COUNT(ROWS))

static void gather_one_hot_make(op_case *c, int k, uint64_t seed)
{
    const int K = one_hot_k[k / COUNT(ROWS)], B = ROWS[k % COUNT(ROWS)], n_rows = 300;
    c->i[0] = B, c->i[1] = K;
    add_f32(c, "y", OP_WRITE, (size_t)B * K, seed, -1, 1); /* stale values: every element is written */
    uint64_t s = buf_seed(c, seed);
    uint8_t *labels = add_buf(c, "labels", OP_U8, OP_IN, (size_t)n_rows);
    float *u = vae_calloc((size_t)n_rows, sizeof *u);
    tu_fill_uniform(u, (size_t)n_rows, s, 0, (float)K);
    for (int i = 0; i < n_rows; i++)
        labels[i] = (uint8_t)((int)u[i] >= K ? K - 1 : (int)u[i]);
    labels[n_rows - 1] = (uint8_t)(K - 1); /* both ends of the class range */
    labels[0] = 0;
    s = buf_seed(c, seed);
    int32_t *idx = add_buf(c, "idx", OP_I32, OP_IN, (size_t)B); /* valid indices, repeats allowed */
    tu_fill_uniform(u, (size_t)B, s, 0, (float)n_rows);
    for (int i = 0; i < B; i++)
        idx[i] = (int32_t)u[i] >= n_rows ? n_rows - 1 : (int32_t)u[i];
    idx[0] = n_rows - 1; /* the last row */
    if (B > 1)
        idx[B - 1] = 0;
    vae_free(u);
    snprintf(c->shape, sizeof c->shape, "B=%d K=%d rows=%d", B, K, n_rows);
}

static void gather_one_hot_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->gather_one_hot(be, d[GO_Y], d[GO_LABELS], d[GO_IDX], c->i[0], c->i[1]);
}

static unsigned gather_one_hot_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[0], K = c->i[1];
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++)
            out[GO_Y][(size_t)i * K + k] = in[GO_LABELS][(size_t)in[GO_IDX][i]] == k ? 1.0 : 0.0;
    return 1u << GO_Y;
}

static const op_desc desc_gather_one_hot = {
    .name = "gather_one_hot",
    .ncases = GO_GRID,
    .make = gather_one_hot_make,
    .run = gather_one_hot_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* zeros and ones: exact */
    .reference = gather_one_hot_reference,
};

/* ---- binarize ------------------------------------------------------------------------------------- */

enum { BZ_X, BZ_U };
static const int binarize_n[] = {1, 7, 13, 785, 4099};

static void binarize_make(op_case *c, int k, uint64_t seed)
{
    const int n = binarize_n[k];
    c->i[0] = n;
    float *x = add_f32(c, "x", OP_ACC, (size_t)n, seed, 0, 1);
    float *u = add_f32(c, "u", OP_IN, (size_t)n, seed, 0, 1);
    x[0] = 1.0f; /* both ends of [0, 1], and a tie u == x (not below: 0) */
    u[0] = 1.0f;
    if (n > 2) {
        x[1] = 0.0f;
        u[1] = 1e-30f;
        u[2] = x[2];
    }
    snprintf(c->shape, sizeof c->shape, "n=%d", n);
}

static void binarize_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->binarize(be, d[BZ_X], d[BZ_U], (size_t)c->i[0]);
}

static unsigned binarize_reference(const op_case *c, double *const *in, double *const *out)
{
    for (int i = 0; i < c->i[0]; i++)
        out[BZ_X][i] = in[BZ_U][i] < in[BZ_X][i] ? 1.0 : 0.0;
    return 1u << BZ_X;
}

static const op_desc desc_binarize = {
    .name = "binarize",
    .ncases = COUNT(binarize_n),
    .make = binarize_make,
    .run = binarize_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* one comparison: bit for bit */
    .reference = binarize_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- Gumbel-softmax, forward then backward ------------------------------------------------------ */

enum { GS_LOGITS, GS_U, GS_DY, GS_Y, GS_DL, GS_TAU };
enum { GS_B, GS_K };
#define GS_GRID (COUNT(ROWS) * COUNT(COLS))

/* tau is a backend scalar (by seed: an annealed temperature under graph replay); the backward
 * pass accumulates onto dlogits' start (what a KL term wrote there). */
static void gumbel_make(op_case *c, int k, uint64_t seed)
{
    int B, K;
    if (k < GS_GRID) {
        K = COLS[k % COUNT(COLS)];
        B = ROWS[(k / COUNT(COLS)) % COUNT(ROWS)];
    } else {
        B = 5, K = 7;
    }
    c->i[GS_B] = B, c->i[GS_K] = K;
    const size_t n = (size_t)B * K;
    add_f32(c, "logits", OP_IN, n, seed, -3, 3);
    float *u = add_f32(c, "u", OP_IN, n, seed, 1e-3f, 1);
    u[0] = 1.0f; /* both clamps: cuRAND's uniform includes 1 */
    if (n > 1)
        u[n - 1] = 1e-30f;
    add_f32(c, "dy", OP_IN, n, seed, -1, 1);
    add_f32(c, "y", OP_WRITE, n, seed, 0, 0);
    add_f32(c, "dlogits", OP_ACC, n, seed, -1, 1);
    float *tau = add_buf(c, "tau", OP_F32, OP_IN, 1);
    *tau = k == GS_GRID ? 0.67f : 0.5f + 0.25f * (float)(seed % 3); /* 0.5, 0.75, 1 */
    add_fd(c, GS_DL, GS_LOGITS, 1);
    snprintf(c->shape, sizeof c->shape, "B=%d K=%d tau by seed", B, K);
}

static void gumbel_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int B = c->i[GS_B], K = c->i[GS_K];
    be->gumbel_softmax_forward(be, d[GS_Y], d[GS_LOGITS], d[GS_U], B, K, d[GS_TAU]);
    be->gumbel_softmax_backward(be, d[GS_DL], d[GS_DY], d[GS_Y], B, K, d[GS_TAU]);
}

/* sum dy * softmax((logits + g) / tau), g = -log(-log(u)) with u clamped as the op does */
static double gumbel_objective(const op_case *c, double *const *x)
{
    const int B = c->i[GS_B], K = c->i[GS_K];
    const double tau = x[GS_TAU][0];
    double s = 0, *z = vae_calloc((size_t)K, sizeof *z);
    for (int i = 0; i < B; i++) {
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < K; k++) {
            double uk = fminf(fmaxf((float)x[GS_U][(size_t)i * K + k], VAE_GUMBEL_U_MIN), VAE_GUMBEL_U_MAX);
            z[k] = (x[GS_LOGITS][(size_t)i * K + k] - log(-log(uk))) / tau;
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < K; k++)
            sum += exp(z[k] - mx);
        for (int k = 0; k < K; k++)
            s += x[GS_DY][(size_t)i * K + k] * exp(z[k] - mx) / sum;
    }
    vae_free(z);
    return s;
}

/* y is a distribution per row: finite, non-negative, summing to 1. */
static int gumbel_check(const op_case *c, void *const *out, const char *where)
{
    const int B = c->i[GS_B], K = c->i[GS_K];
    const float *y = out[GS_Y];
    for (int i = 0; i < B; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            float v = y[(size_t)i * K + k];
            if (!isfinite(v) || v < 0) {
                fprintf(stderr, "%s: y[%d][%d] = %g\n", where, i, k, (double)v);
                return 0;
            }
            s += v;
        }
        if (fabs(s - 1) >= 1e-5) {
            fprintf(stderr, "%s: row %d of y sums to %.9g\n", where, i, s);
            return 0;
        }
    }
    return 1;
}

static const op_desc desc_gumbel_softmax = {
    .name = "gumbel_softmax",
    .ncases = GS_GRID + 1,
    .make = gumbel_make,
    .run = gumbel_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .objective = gumbel_objective,
    .fd_atol = 1e-5, .fd_rtol = 1e-4,
    .check = gumbel_check,
};

/* ---- check_finite -------------------------------------------------------------------------------- */

enum { CF_X, CF_FLAG };
enum { CF_N, CF_BAD, CF_WHERE, CF_FLAG_MODE };
static const int cf_sizes[] = {1, 5, 257, 1000003};
#define CF_PER_SIZE 10 /* all finite, then NaN, +inf, -inf at the first, middle and last element */
#define CF_GRID (COUNT(cf_sizes) * CF_PER_SIZE)

static void check_finite_make(op_case *c, int k, uint64_t seed)
{
    int n, bad, where, flag_mode = 0;
    if (k < CF_GRID) {
        n = cf_sizes[k / CF_PER_SIZE];
        int v = k % CF_PER_SIZE;
        bad = v == 0 ? -1 : (v - 1) / 3;
        where = v == 0 ? 0 : (v - 1) % 3;
    } else { /* a flag already set by an earlier check (or not, by seed): latched */
        n = 37, bad = k == CF_GRID ? 0 : -1, where = 1, flag_mode = 1;
    }
    c->i[CF_N] = n, c->i[CF_BAD] = bad, c->i[CF_WHERE] = where, c->i[CF_FLAG_MODE] = flag_mode;
    float *x = add_f32(c, "x", OP_IN, (size_t)n, seed, -1.5e38f, 1.5e38f); /* hi - lo stays finite */
    const size_t at[] = {0, (size_t)n / 2, (size_t)n - 1};
    static const float bads[] = {NAN, INFINITY, -INFINITY};
    static const char *bad_names[] = {"nan", "+inf", "-inf"};
    if (bad >= 0)
        x[at[where]] = bads[bad];
    int32_t *flag = add_buf(c, "flag", OP_I32, OP_ACC, 1);
    *flag = flag_mode && (seed & 1) ? 4 : 0;
    snprintf(c->shape, sizeof c->shape, "n=%d %s%s", n, bad < 0 ? "all finite" : bad_names[bad],
             flag_mode ? " flag set by seed" : "");
    if (bad >= 0)
        snprintf(c->shape + strlen(c->shape), sizeof c->shape - strlen(c->shape), " at %zu", at[where]);
}

static void check_finite_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->check_finite(be, d[CF_FLAG], d[CF_X], (size_t)c->i[CF_N], 2);
    be->check_finite(be, d[CF_FLAG], d[CF_X], (size_t)c->i[CF_N], 3); /* latched: the first code stays */
}

static unsigned check_finite_reference(const op_case *c, double *const *in, double *const *out)
{
    int bad = 0;
    for (int i = 0; i < c->i[CF_N]; i++)
        bad |= !isfinite(in[CF_X][i]);
    out[CF_FLAG][0] = in[CF_FLAG][0] != 0 ? in[CF_FLAG][0] : bad ? 2 : 0;
    return 1u << CF_FLAG;
}

static const op_desc desc_check_finite = {
    .name = "check_finite",
    .ncases = CF_GRID + 2,
    .make = check_finite_make,
    .run = check_finite_run,
    .atol = 0, .rtol = 0, .nmse = 0,
    .reference = check_finite_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- grad_clip_scale ------------------------------------------------------------------------------ */

enum { GC_X, GC_SCALE };
static const int gc_sizes[] = {0, 1, 7, 1025, 1000003};
static const float gc_max_norm[] = {1e-3f, 0.7f, 1e6f};
#define GC_GRID (COUNT(gc_sizes) * COUNT(gc_max_norm))

static void grad_clip_make(op_case *c, int k, uint64_t seed)
{
    const int n = k < GC_GRID ? gc_sizes[k / COUNT(gc_max_norm)] : 2;
    c->f[0] = k < GC_GRID ? gc_max_norm[k % COUNT(gc_max_norm)] : k == GC_GRID ? 1.0f : 10.0f;
    c->i[0] = n;
    float *x = add_f32(c, "x", OP_IN, (size_t)n, seed, -1, 1);
    if (k >= GC_GRID) /* |(3, 4)| = 5 */
        x[0] = 3.0f, x[1] = 4.0f;
    add_f32(c, "scale", OP_WRITE, 1, seed, 0, 0);
    snprintf(c->shape, sizeof c->shape, "n=%d max_norm=%g", n, (double)c->f[0]);
}

static void grad_clip_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->grad_clip_scale(be, d[GC_SCALE], d[GC_X], (size_t)c->i[0], c->f[0]);
}

/* PyTorch's clip_grad_norm_ factor: min(1, max_norm / (norm + 1e-6)), squares summed in double */
static unsigned grad_clip_reference(const op_case *c, double *const *in, double *const *out)
{
    double ss = 0;
    for (int i = 0; i < c->i[0]; i++)
        ss += in[GC_X][i] * in[GC_X][i];
    double want = (double)c->f[0] / (sqrt(ss) + 1e-6);
    out[GC_SCALE][0] = (float)(want < 1.0 ? want : 1.0);
    return 1u << GC_SCALE;
}

static const op_desc desc_grad_clip_scale = {
    .name = "grad_clip_scale",
    .ncases = GC_GRID + 2,
    .make = grad_clip_make,
    .run = grad_clip_run,
    /* both sum exact squares in double: the float factors agree to the last bit or two */
    .atol = 0, .rtol = 2e-7, .nmse = NMSE_ALL,
    .reference = grad_clip_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- random numbers --------------------------------------------------------------------------------
 * A sequence of rng_normal and rng_uniform calls from one seed, sizes that leave Philox's blocks
 * of four part-used between calls, then rng_reset and the first call again. Distributions are
 * checked in test_ops.c. */

enum { RNG_NORMAL, RNG_UNIFORM, RNG_AGAIN, RNG_OTHER };
#define RNG_SEED 20240611u
typedef struct {
    int ncalls;
    struct {
        int normal;
        int n;
    } call[8];
} rng_sequence;
static const rng_sequence rng_sequences[] = {
    {7, {{1, 4096}, {0, 7}, {1, 2}, {0, 1000003}, {1, 130}, {0, 1}, {1, 1000002}}},
    {4, {{1, 2}, {0, 5}, {1, 6}, {0, 1}}},
};

static void rng_make(op_case *c, int k, uint64_t seed)
{
    /* `seed` is not read: the generator's seed is a plain argument, the same for every seed of the case */
    const rng_sequence *q = &rng_sequences[k];
    size_t nn = 0, nu = 0;
    for (int i = 0; i < q->ncalls; i++)
        *(q->call[i].normal ? &nn : &nu) += (size_t)q->call[i].n;
    c->i[0] = k;
    add_f32(c, "normals", OP_WRITE, nn, 0, 0, 0);
    add_f32(c, "uniforms", OP_WRITE, nu, 0, 0, 0);
    add_f32(c, "first call after reset", OP_WRITE, (size_t)q->call[0].n, 0, 0, 0);
    add_f32(c, "first call of the next seed", OP_WRITE, (size_t)q->call[0].n, 0, 0, 0);
    /* Both backends run include/philox.h (its own log and sin/cos, explicit fmaf): every
     * number is equal bit for bit. */
    set_tol(c, RNG_NORMAL, 0, 0);
    set_tol(c, RNG_UNIFORM, 0, 0);
    set_tol(c, RNG_AGAIN, 0, 0);
    set_tol(c, RNG_OTHER, 0, 0);
    snprintf(c->shape, sizeof c->shape, "%d calls, %zu normals, %zu uniforms", q->ncalls, nn, nu);
}

static void rng_run(vae_backend *be, const op_case *c, void *const *d)
{
    const rng_sequence *q = &rng_sequences[c->i[0]];
    vae_rng *r = be->rng_init(be, RNG_SEED);
    float *normals = d[RNG_NORMAL], *uniforms = d[RNG_UNIFORM];
    for (int i = 0; i < q->ncalls; i++) {
        const size_t n = (size_t)q->call[i].n;
        if (q->call[i].normal) {
            be->rng_normal(be, r, normals, n);
            normals += n;
        } else {
            be->rng_uniform(be, r, uniforms, n);
            uniforms += n;
        }
    }
    be->rng_reset(be, r);
    be->rng_normal(be, r, d[RNG_AGAIN], (size_t)q->call[0].n);
    be->rng_free(be, r);
    r = be->rng_init(be, RNG_SEED + 1);
    be->rng_normal(be, r, d[RNG_OTHER], (size_t)q->call[0].n);
    be->rng_free(be, r);
}

/* Uniforms in (0, 1]; after a reset, the first draw again, bit for bit; another seed, other numbers. */
static int rng_check(const op_case *c, void *const *out, const char *where)
{
    const float *u = out[RNG_UNIFORM];
    for (size_t i = 0; i < c->buf[RNG_UNIFORM].n; i++)
        if (!(u[i] > 0.0f && u[i] <= 1.0f)) {
            fprintf(stderr, "%s: u[%zu] = %g outside (0, 1]\n", where, i, (double)u[i]);
            return 0;
        }
    if (memcmp(out[RNG_AGAIN], out[RNG_NORMAL], c->buf[RNG_AGAIN].n * sizeof(float)) != 0) {
        fprintf(stderr, "%s: rng_reset did not reproduce the first draw\n", where);
        return 0;
    }
    if (memcmp(out[RNG_OTHER], out[RNG_NORMAL], c->buf[RNG_OTHER].n * sizeof(float)) == 0) {
        fprintf(stderr, "%s: seeds %u and %u gave the same numbers\n", where, RNG_SEED, RNG_SEED + 1);
        return 0;
    }
    return 1;
}

static const op_desc desc_rng = {
    .name = "rng",
    .ncases = COUNT(rng_sequences),
    .make = rng_make,
    .run = rng_run,
    .atol = 0, .rtol = 0, .nmse = NMSE_ALL, /* every buffer has its own tolerance */
    .check = rng_check,
    .no_graph = "the case creates, resets and frees generators (uploads a capture refuses); the draws "
                "themselves replay, each anew (test_cuda_ops: cuda_graph::rng_replay_draws_the_next_numbers)",
};

/* ---- onehot_argmax ------------------------------------------------------------------------------- */

enum { OA_LOGITS, OA_Y };
enum { OA_B, OA_K };
static const int oa_cols[] = {1, 2, 10, 33, 257};
#define OA_GRID (COUNT(ROWS) * COUNT(oa_cols))

/* Rows 2 to 4 (B >= 5) hold NaNs, which rank above every number: each row takes its first NaN.
 * Row 2: a NaN at column 5 (lane 5's first element on the GPU) with the row's largest number
 * later in the same lane (column 37), which a lane stuck at its NaN once dropped; row 3: NaNs at
 * columns 0 and K - 1; row 4: NaNs at K - 1 and K / 2, the largest number before both. */
static void onehot_argmax_make(op_case *c, int k, uint64_t seed)
{
    const int B = ROWS[k / COUNT(oa_cols)], K = oa_cols[k % COUNT(oa_cols)];
    c->i[OA_B] = B, c->i[OA_K] = K;
    float *l = add_f32(c, "logits", OP_IN, (size_t)B * K, seed, -5, 5);
    l[0] = 9.0f; /* a tie in row 0: the first index wins */
    l[K - 1] = 9.0f;
    if (B > 1 && K > 2)
        l[(size_t)K + K - 1] = 9.5f; /* row 1's maximum at its last column, across lanes for K > 32 */
    if (B >= 5) {
        float *r2 = l + 2 * (size_t)K, *r3 = l + 3 * (size_t)K, *r4 = l + 4 * (size_t)K;
        r2[K > 5 ? 5 : K - 1] = NAN;
        if (K > 37)
            r2[37] = 9.9f;
        r3[0] = r3[K - 1] = NAN;
        r4[0] = 9.9f;
        r4[K - 1] = r4[K / 2] = NAN;
    }
    add_f32(c, "y", OP_WRITE, (size_t)B * K, seed, 0, 0);
    snprintf(c->shape, sizeof c->shape, "B=%d K=%d", B, K);
}

static void onehot_argmax_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->onehot_argmax(be, d[OA_Y], d[OA_LOGITS], c->i[OA_B], c->i[OA_K]);
}

static unsigned onehot_argmax_reference(const op_case *c, double *const *in, double *const *out)
{
    const int B = c->i[OA_B], K = c->i[OA_K];
    for (int i = 0; i < B; i++) {
        const double *l = in[OA_LOGITS] + (size_t)i * K;
        int best = -1; /* the first NaN, else the first index of the largest value */
        for (int k = 0; k < K && best < 0; k++)
            if (isnan(l[k]))
                best = k;
        if (best < 0) {
            best = 0;
            for (int k = 1; k < K; k++)
                if (l[k] > l[best])
                    best = k;
        }
        for (int k = 0; k < K; k++)
            out[OA_Y][(size_t)i * K + k] = k == best;
    }
    return 1u << OA_Y;
}

static const op_desc desc_onehot_argmax = {
    .name = "onehot_argmax",
    .ncases = OA_GRID,
    .make = onehot_argmax_make,
    .run = onehot_argmax_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* zeros and ones: bit for bit */
    .reference = onehot_argmax_reference,
    .ref_atol = 0, .ref_rtol = 0,
};

/* ---- kl_categorical (a loss term, as those above) ------------------------------------------------ */

enum { KC_LOGITS };
static const int cat_widths[] = {10, 3, 33, 2}; /* K; as many as loss_widths */

static void kl_categorical_make(op_case *c, int k, uint64_t seed)
{
    loss_term_shape(c, k, cat_widths, 10);
    const int B = c->i[LT_B], K = c->i[LT_D];
    float *l = add_f32(c, "logits", OP_IN, (size_t)B * K, seed, -4, 4);
    if (k < LT_GRID)
        l[0] = 30.0f; /* a nearly one-hot row: q's logs stay finite */
    loss_term_outputs(c, seed, (size_t)B * K, "dlogits");
    loss_term_shape_text(c, "K");
}

static void kl_categorical_run(vae_backend *be, const op_case *c, void *const *d)
{
    const int *a = c->i;
    be->kl_categorical(be, loss_term_column(c, d), a[LT_T], loss_term_grad(c, d), d[KC_LOGITS], a[LT_B], a[LT_D],
                       loss_term_weight(c, d), c->f[0]);
}

/* sum_k q_k log q_k + log K, q = softmax(logits of row i) */
static double kl_categorical_row(const op_case *c, double *const *x, int i)
{
    const int K = c->i[LT_D];
    const double *l = x[KC_LOGITS] + (size_t)i * K;
    double mx = l[0], sum = 0, kl = log((double)K);
    for (int k = 1; k < K; k++)
        mx = fmax(mx, l[k]);
    for (int k = 0; k < K; k++)
        sum += exp(l[k] - mx);
    for (int k = 0; k < K; k++) {
        double lq = l[k] - mx - log(sum);
        kl += exp(lq) * lq;
    }
    return kl;
}

static unsigned kl_categorical_reference(const op_case *c, double *const *in, double *const *out)
{
    return loss_term_reference(c, in, out, kl_categorical_row);
}

static double kl_categorical_objective(const op_case *c, double *const *x)
{
    return loss_term_objective(c, x, kl_categorical_row);
}

static const op_desc desc_kl_categorical = {
    .name = "kl_categorical",
    .ncases = LT_GRID + 1,
    .make = kl_categorical_make,
    .run = kl_categorical_run,
    .atol = 1e-5, .rtol = 1e-5, .nmse = NMSE_ALL,
    .reference = kl_categorical_reference,
    .ref_atol = 1e-5, .ref_rtol = 1e-5,
    .objective = kl_categorical_objective,
    .fd_atol = 1e-6, .fd_rtol = 1e-4,
};

/* ---- capacity_weight ------------------------------------------------------------------------------
 * weight = gamma * sign(mean_i loss[i, t] - C): the derivative of -gamma |mean - C| with respect to
 * C, which the finite differences check (C kept away from the mean, where it is smooth). */

enum { CW_LOSS, CW_CAP, CW_WEIGHT };
enum { CW_B, CW_T, CW_COL };
#define CW_GRID (COUNT(ROWS) * 3 * 2)

static void capacity_weight_make(op_case *c, int k, uint64_t seed)
{
    const int B = ROWS[k / 6], T = 1 + (k / 2) % 3, col = (k / 2) % 3 == 0 ? 0 : T - 1;
    c->i[CW_B] = B, c->i[CW_T] = T, c->i[CW_COL] = col;
    c->f[0] = k % 2 ? 30.0f : 1.5f; /* gamma */
    float *loss = add_f32(c, "loss", OP_IN, (size_t)B * T, seed, 2, 4);
    double mean = 0;
    for (int i = 0; i < B; i++)
        mean += loss[(size_t)i * T + col];
    mean /= B;
    float *cap = add_buf(c, "capacity", OP_F32, OP_IN, 1);
    *cap = (float)(mean + (seed % 2 ? 0.5 : -0.5) * (1 + (double)(seed % 5))); /* above or below, by seed */
    add_f32(c, "weight", OP_WRITE, 1, seed, 0, 0);
    add_fd(c, CW_WEIGHT, CW_CAP, 0);
    snprintf(c->shape, sizeof c->shape, "B=%d T=%d t=%d gamma=%g", B, T, col, (double)c->f[0]);
}

static void capacity_weight_run(vae_backend *be, const op_case *c, void *const *d)
{
    be->capacity_weight(be, d[CW_WEIGHT], (const float *)d[CW_LOSS] + c->i[CW_COL], c->i[CW_T], c->i[CW_B],
                        d[CW_CAP], c->f[0]);
}

static double capacity_mean_gap(const op_case *c, double *const *x)
{
    const int B = c->i[CW_B], T = c->i[CW_T];
    double s = 0;
    for (int i = 0; i < B; i++)
        s += x[CW_LOSS][(size_t)i * T + c->i[CW_COL]];
    return s / B - x[CW_CAP][0];
}

static unsigned capacity_weight_reference(const op_case *c, double *const *in, double *const *out)
{
    const double d = capacity_mean_gap(c, in);
    out[CW_WEIGHT][0] = d > 0 ? c->f[0] : d < 0 ? -c->f[0] : 0;
    return 1u << CW_WEIGHT;
}

static double capacity_weight_objective(const op_case *c, double *const *x)
{
    return -(double)c->f[0] * fabs(capacity_mean_gap(c, x));
}

static const op_desc desc_capacity_weight = {
    .name = "capacity_weight",
    .ncases = CW_GRID,
    .make = capacity_weight_make,
    .run = capacity_weight_run,
    .atol = 0, .rtol = 0, .nmse = 0, /* +-gamma: bit for bit */
    .reference = capacity_weight_reference,
    .ref_atol = 0, .ref_rtol = 0,
    .objective = capacity_weight_objective,
    .fd_atol = 1e-4, .fd_rtol = 1e-4,
};

/* ---- the table ---------------------------------------------------------------------------------- */

const op_desc *const op_table[] = {
    &desc_gemm,           &desc_bias_act,        &desc_reparam,      &desc_gauss_log_ratio,
    &desc_lik_bernoulli,  &desc_lik_gaussian,    &desc_kl_gaussian,  &desc_loss_accumulate,
    &desc_adam_step,      &desc_gather_batch,    &desc_gather_rows,  &desc_gather_one_hot, &desc_binarize,
    &desc_gumbel_softmax, &desc_check_finite,    &desc_grad_clip_scale, &desc_rng,         &desc_onehot_argmax,
    &desc_kl_categorical, &desc_capacity_weight,
};
const int op_table_count = COUNT(op_table);
