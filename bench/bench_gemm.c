/*
 * bench_gemm.c: the GEMMs of one training epoch of the default model, alone,
 * to choose the CPU GEMM library by measurement (issue 11, README "bench").
 *
 * Model 784-400-20-400-784 (layers 784->400, 400->40 (mean and log-variance
 * merged), 20->400, 400->784), batch 128, one 60,000-image epoch = 469 steps
 * (468 of 128 and one of 96). Per step and per layer, exactly the calls of
 * src/model.c linear_forward/linear_backward, row-major:
 *   forward      out  = x @ W^T         (M=B,   N=out, K=in,  beta 0)
 *   weight grad  dW   = dpre^T @ x      (M=out, N=in,  K=B,   beta 0)
 *   input grad   din  = dpre @ W        (M=B,   N=in,  K=out, beta 0; not for the first layer)
 * (forward pass first, then the backward pass from the last layer down).
 *
 * The library is chosen at compile time: CBLAS cblas_sgemm by default (OpenBLAS,
 * BLIS), -DGEMM_DNNL for oneDNN's dnnl_sgemm (row-major, no CBLAS), -DGEMM_XSMM
 * for libxsmm's libxsmm_sgemm (column-major BLAS interface: called with the
 * operands swapped). The thread count is the library's own environment
 * variable (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, BLIS_NUM_THREADS), set by
 * scripts/bench_gemm_libs.sh; the first argument only labels the output.
 *
 * Not a test: it checks only that the results stay finite (and prints a checksum). Not the whole
 * training step either (bias/activation, loss, Adam are not timed here).
 *
 * usage: bench_gemm LABEL THREADS [ROUNDS]
 *   prints one line per round and a median line:
 *   LABEL threads=T round=R seconds=S gflops=G
 *   LABEL threads=T median seconds=S gflops=G rounds=N epoch_gflop=F checksum=C
 *   (checksum: sum of |dW| after the last step, to check the libraries compute the same thing)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(GEMM_DNNL)
#include <dnnl.h>
#elif defined(GEMM_XSMM)
#include <libxsmm.h>
#else
#include <cblas.h>
#endif

enum { N_LAYERS = 4, BATCH = 128, EPOCH_IMAGES = 60000 };

static const int layer_in[N_LAYERS] = {784, 400, 20, 400};
static const int layer_out[N_LAYERS] = {400, 40, 400, 784};

typedef struct {
    float *x;    /* (BATCH, in) */
    float *w;    /* (out, in) */
    float *dw;   /* (out, in) */
    float *y;    /* (BATCH, out) */
    float *dy;   /* (BATCH, out) */
    float *dx;   /* (BATCH, in) */
} layer_bufs;

/* Row-major C = alpha op(A) op(B) + beta C, the CPU backend's cpu_gemm contract. */
static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc)
{
#if defined(GEMM_DNNL)
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success) {
        fprintf(stderr, "bench_gemm: dnnl_sgemm failed with status %d\n", (int)st);
        exit(1);
    }
#elif defined(GEMM_XSMM)
    /* Row-major C (M x N) is column-major C^T (N x M) = op(B)^T op(A)^T. */
    const char tra = tb ? 'T' : 'N', trb = ta ? 'T' : 'N';
    const libxsmm_blasint m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    const float alpha = 1.0f;
    libxsmm_sgemm(&tra, &trb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                lda, B, ldb, beta, C, ldc);
#endif
}

static float *alloc_filled(size_t n, unsigned *seed)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_gemm: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = ((float)(*seed >> 8) / 16777216.0f - 0.5f) * 0.02f;
    }
    return p;
}

static void train_step_gemms(layer_bufs *L, int B)
{
    for (int l = 0; l < N_LAYERS; l++)
        gemm(0, 1, B, layer_out[l], layer_in[l], L[l].x, layer_in[l], L[l].w, layer_in[l], 0.0f, L[l].y,
             layer_out[l]);
    for (int l = N_LAYERS - 1; l >= 0; l--) {
        gemm(1, 0, layer_out[l], layer_in[l], B, L[l].dy, layer_out[l], L[l].x, layer_in[l], 0.0f, L[l].dw,
             layer_in[l]);
        if (l > 0)
            gemm(0, 0, B, layer_in[l], layer_out[l], L[l].dy, layer_out[l], L[l].w, layer_in[l], 0.0f, L[l].dx,
                 layer_in[l]);
    }
}

static double step_flops(int B)
{
    double f = 0;
    for (int l = 0; l < N_LAYERS; l++)
        f += 2.0 * B * layer_in[l] * layer_out[l] * (l > 0 ? 3 : 2);
    return f;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: bench_gemm LABEL THREADS [ROUNDS]\n");
        return 2;
    }
    const char *label = argv[1];
    const int threads = atoi(argv[2]);
    const int rounds = argc == 4 ? atoi(argv[3]) : 5;
    if (threads < 1 || rounds < 1 || rounds > 100) {
        fprintf(stderr, "bench_gemm: THREADS must be >= 1 and ROUNDS 1..100\n");
        return 2;
    }
    unsigned seed = 12345u;
    layer_bufs L[N_LAYERS];
    for (int l = 0; l < N_LAYERS; l++) {
        const size_t in = (size_t)layer_in[l], out = (size_t)layer_out[l];
        L[l] = (layer_bufs){alloc_filled(BATCH * in, &seed), alloc_filled(out * in, &seed),
                            alloc_filled(out * in, &seed), alloc_filled(BATCH * out, &seed),
                            alloc_filled(BATCH * out, &seed), alloc_filled(BATCH * in, &seed)};
    }
    const int full_steps = EPOCH_IMAGES / BATCH, last = EPOCH_IMAGES % BATCH;
    const double epoch_flops = full_steps * step_flops(BATCH) + (last ? step_flops(last) : 0.0);

    for (int s = 0; s < 20; s++) /* warm-up: threads started, caches and pages touched */
        train_step_gemms(L, BATCH);

    double secs[100];
    for (int r = 0; r < rounds; r++) {
        const double t0 = now();
        for (int s = 0; s < full_steps; s++)
            train_step_gemms(L, BATCH);
        if (last)
            train_step_gemms(L, last);
        secs[r] = now() - t0;
        printf("%s threads=%d round=%d seconds=%.4f gflops=%.1f\n", label, threads, r + 1, secs[r],
               epoch_flops / secs[r] * 1e-9);
    }
    double checksum = 0; /* sum |dW|: the same for every library up to rounding (same inputs, same calls) */
    for (int l = 0; l < N_LAYERS; l++) {
        const size_t n = (size_t)layer_out[l] * (size_t)layer_in[l];
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(L[l].dw[i])) {
                fprintf(stderr, "bench_gemm: %s produced a non-finite weight gradient\n", label);
                return 1;
            }
            checksum += fabs((double)L[l].dw[i]);
        }
    }
    qsort(secs, (size_t)rounds, sizeof secs[0], cmp_double);
    const double med = rounds % 2 ? secs[rounds / 2] : 0.5 * (secs[rounds / 2 - 1] + secs[rounds / 2]);
    printf("%s threads=%d median seconds=%.4f gflops=%.1f rounds=%d epoch_gflop=%.2f checksum=%.6e\n", label, threads,
           med, epoch_flops / med * 1e-9, rounds, epoch_flops * 1e-9, checksum);
    for (int l = 0; l < N_LAYERS; l++) {
        free(L[l].x);
        free(L[l].w);
        free(L[l].dw);
        free(L[l].y);
        free(L[l].dy);
        free(L[l].dx);
    }
    return 0;
}
