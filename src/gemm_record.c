/*
 * gemm_record.c: the GEMM recorder of gemm_record.h. The recorder is a
 * vae_backend whose table is the inner backend's, with gemm replaced by one that
 * appends the call to a list and then runs it on the inner backend.
 */
#include "gemm_record.h"
#include "vae_util.h"

#include <string.h>

typedef struct {
    int trans_a, trans_b, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_call;

typedef struct {
    vae_backend be; /* first: a vae_backend * of the recorder is a gemm_recorder * */
    vae_backend *inner;
    int on;
    gemm_call *calls;
    long n, cap;
} gemm_recorder;

static void rec_gemm(vae_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_recorder *r = (gemm_recorder *)be;
    if (r->on) {
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 1024;
            gemm_call *grown = vae_calloc((size_t)r->cap, sizeof *grown);
            if (r->n)
                memcpy(grown, r->calls, (size_t)r->n * sizeof *grown);
            vae_free(r->calls);
            r->calls = grown;
        }
        r->calls[r->n++] = (gemm_call){trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    }
    r->inner->gemm(r->inner, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void rec_destroy(vae_backend *be)
{
    gemm_recorder *r = (gemm_recorder *)be;
    vae_free(r->calls);
    vae_free(r);
}

vae_backend *vae_backend_gemm_record_wrap(vae_backend *inner)
{
    gemm_recorder *r = vae_calloc(1, sizeof *r);
    vae_backend_wrap(&r->be, inner, NULL, rec_destroy); /* eager: every GEMM passes through rec_gemm */
    r->inner = inner;
    r->on = 1;
    r->be.gemm = rec_gemm;
    return &r->be;
}

void vae_gemm_record_set(vae_backend *rec, int on)
{
    gemm_recorder *r = (gemm_recorder *)rec;
    if (on)
        r->n = 0;
    r->on = on;
}

long vae_gemm_record_count(const vae_backend *rec) { return ((const gemm_recorder *)rec)->n; }

double vae_gemm_record_flops(const vae_backend *rec)
{
    const gemm_recorder *r = (const gemm_recorder *)rec;
    double f = 0;
    for (long i = 0; i < r->n; i++)
        f += 2.0 * r->calls[i].M * r->calls[i].N * r->calls[i].K;
    return f;
}

double vae_gemm_record_replay(vae_backend *rec)
{
    gemm_recorder *r = (gemm_recorder *)rec;
    vae_backend *in = r->inner;
    in->synchronize(in);
    const double t0 = vae_now_seconds();
    for (long i = 0; i < r->n; i++) {
        const gemm_call *c = &r->calls[i];
        in->gemm(in, c->trans_a, c->trans_b, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, c->beta, c->C,
                 c->ldc);
    }
    in->synchronize(in);
    return vae_now_seconds() - t0;
}
