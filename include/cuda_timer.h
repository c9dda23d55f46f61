/*
 * cuda_timer.h: device-side timing of a CUDA backend's ops with CUDA events, for the
 * profiling wrapper (profile_backend.c). Each timed op runs between two events
 * recorded on the backend's stream; cudaEventElapsedTime gives the device time
 * between them, so no op is bracketed by host synchronizations and a host clock.
 * Pairs are kept pending and read back in batches (when the pool is full, and by
 * vae_cuda_timer_collect), so timing does not stall the stream after every op.
 *
 * What an op's time holds: from the moment the stream reaches its start event to the
 * moment it reaches its stop event. When the host keeps the stream busy that is the
 * op's own device time; when the stream runs dry before an op, the wait for its launch
 * is included.
 *
 * Not here: graph replays (the wrapper runs ops eagerly) and the CPU backend, which
 * the wrapper times with the host clock.
 */
#ifndef VAE_CUDA_TIMER_H
#define VAE_CUDA_TIMER_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vae_cuda_timer vae_cuda_timer;

/* A timer on be's stream (be: the CUDA backend itself) for ops numbered 0 .. n_ops - 1. */
vae_cuda_timer *vae_cuda_timer_create(vae_backend *be, int n_ops);
void vae_cuda_timer_free(vae_cuda_timer *t);
/* Record the start event of the next op on the stream (not during a capture). */
void vae_cuda_timer_begin(vae_cuda_timer *t);
/* Record its stop event; the pair's elapsed time goes to op `op` once collected. */
void vae_cuda_timer_end(vae_cuda_timer *t, int op);
/* Wait for every pending pair and add its elapsed seconds to its op's total. */
void vae_cuda_timer_collect(vae_cuda_timer *t);
/* Op `op`'s total seconds collected so far. */
double vae_cuda_timer_seconds(const vae_cuda_timer *t, int op);
/* Wait for the pending pairs (their events are reused), then zero every total. */
void vae_cuda_timer_reset(vae_cuda_timer *t);

#ifdef __cplusplus
}
#endif
#endif /* VAE_CUDA_TIMER_H */
