/*
 * timer.cu: per-op device times from pairs of CUDA events on the backend's stream;
 * see include/cuda_timer.h. A pool of event pairs is filled op by op and read back
 * (cudaEventSynchronize on the last stop, then cudaEventElapsedTime of each pair)
 * when it is full or collected.
 *
 * Not here: any kernel, and which op is which (profile_backend.c numbers them).
 */
#include "cuda_common.cuh"
#include "cuda_timer.h"

#include <string.h>

/* Pairs recorded before a read-back: one read per about 30 training steps of the default model. */
#define CUDA_TIMER_PAIRS 1024

struct vae_cuda_timer {
    cuda_ctx *c;
    int n_ops;
    double *seconds;                       /* (n_ops) collected totals */
    cudaEvent_t start[CUDA_TIMER_PAIRS];   /* start[i], stop[i]: pair i */
    cudaEvent_t stop[CUDA_TIMER_PAIRS];
    int op[CUDA_TIMER_PAIRS];              /* the op of pair i */
    int pending;                           /* pairs 0 .. pending - 1 recorded, not yet collected */
    int open;                              /* begin recorded start[pending], end not yet */
};

extern "C" vae_cuda_timer *vae_cuda_timer_create(vae_backend *be, int n_ops)
{
    if (n_ops < 1)
        vae_fatal("vae_cuda_timer_create: %d ops (at least one)", n_ops);
    vae_cuda_timer *t = (vae_cuda_timer *)vae_calloc(1, sizeof *t);
    t->c = cuda_backend_ctx(be, "vae_cuda_timer_create");
    t->n_ops = n_ops;
    t->seconds = (double *)vae_calloc((size_t)n_ops, sizeof(double));
    CUDA_CHECK(cudaSetDevice(t->c->device));
    for (int i = 0; i < CUDA_TIMER_PAIRS; i++) {
        CUDA_CHECK(cudaEventCreateWithFlags(&t->start[i], cudaEventDefault)); /* timing enabled */
        CUDA_CHECK(cudaEventCreateWithFlags(&t->stop[i], cudaEventDefault));
    }
    return t;
}

extern "C" void vae_cuda_timer_free(vae_cuda_timer *t)
{
    if (!t)
        return;
    for (int i = 0; i < CUDA_TIMER_PAIRS; i++) {
        CUDA_CHECK(cudaEventDestroy(t->start[i]));
        CUDA_CHECK(cudaEventDestroy(t->stop[i]));
    }
    vae_free(t->seconds);
    vae_free(t);
}

extern "C" void vae_cuda_timer_collect(vae_cuda_timer *t)
{
    if (t->open)
        vae_fatal("vae_cuda_timer_collect: between vae_cuda_timer_begin and vae_cuda_timer_end");
    if (t->pending == 0)
        return;
    /* One stream, in order: once the last stop event has completed, so has every earlier event. */
    CUDA_CHECK(cudaEventSynchronize(t->stop[t->pending - 1]));
    for (int i = 0; i < t->pending; i++) {
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, t->start[i], t->stop[i]));
        t->seconds[t->op[i]] += 1e-3 * (double)ms;
    }
    t->pending = 0;
}

extern "C" void vae_cuda_timer_begin(vae_cuda_timer *t)
{
    if (t->open)
        vae_fatal("vae_cuda_timer_begin: the previous op's vae_cuda_timer_end is missing (timed ops do not nest)");
    cuda_check_not_capturing(t->c, "vae_cuda_timer_begin");
    if (t->pending == CUDA_TIMER_PAIRS)
        vae_cuda_timer_collect(t);
    CUDA_CHECK(cudaEventRecord(t->start[t->pending], t->c->stream));
    t->open = 1;
}

extern "C" void vae_cuda_timer_end(vae_cuda_timer *t, int op)
{
    if (!t->open)
        vae_fatal("vae_cuda_timer_end: no vae_cuda_timer_begin before it");
    if (op < 0 || op >= t->n_ops)
        vae_fatal("vae_cuda_timer_end: op %d out of range (0..%d)", op, t->n_ops - 1);
    CUDA_CHECK(cudaEventRecord(t->stop[t->pending], t->c->stream));
    t->op[t->pending++] = op;
    t->open = 0;
}

extern "C" double vae_cuda_timer_seconds(const vae_cuda_timer *t, int op)
{
    if (op < 0 || op >= t->n_ops)
        vae_fatal("vae_cuda_timer_seconds: op %d out of range (0..%d)", op, t->n_ops - 1);
    return t->seconds[op];
}

extern "C" void vae_cuda_timer_reset(vae_cuda_timer *t)
{
    vae_cuda_timer_collect(t); /* let the recorded events complete before they are reused */
    memset(t->seconds, 0, (size_t)t->n_ops * sizeof(double));
}
