/*
 * profile_backend.h: a backend that wraps another and times each of its ops, for
 * `cuvae bench --profile`: which op a training step spends its time in.
 *
 * Every op of the wrapped backend runs between two timestamps, and its calls and
 * seconds are added up per op (the GEMMs split by their transposes, which tell the
 * model's call sites apart: NT is a layer's forward x W^T, TN its weight gradient
 * dY^T x, NN its input gradient dY W). The clock depends on the backend: on the CPU
 * the wrapper synchronizes the inner backend before and after each op and reads the
 * host clock; on the CUDA backend it records a CUDA event on the backend's stream
 * before and after each op and adds their elapsed device time (cuda_timer.h: no
 * synchronization per op; the events are read back in batches). The wrapper has no
 * graph ops, so the trainer runs eagerly, one launch per op. Its times are for finding
 * the bottleneck, not for the headline figure, which `cuvae bench` measures unwrapped.
 *
 * Timed: the STREAM and COMPUTE ops of backend_ops.h's list. Not timed: its SETUP ops
 * (allocation and freeing, of buffers and generators, the generator's offset), and graph
 * ops (none): the wrapper's table is a copy of the inner one (its state included) with
 * every timed op replaced by a timed call, so an op it does not time runs untimed rather
 * than missing. Results are those of the inner backend, bit for bit.
 * vae_backend_memory_info must be asked of the inner backend, not the wrapper.
 */
#ifndef VAE_PROFILE_BACKEND_H
#define VAE_PROFILE_BACKEND_H

#include "backend.h"

typedef struct {
    const char *name; /* "gemm NT (forward)", "bias_act_forward", ... (static storage) */
    long calls;
    double seconds;
} vae_profile_entry;

/* A backend running inner's ops, timed. Destroying it frees the wrapper only: the
 * caller keeps inner and frees it after the wrapper. */
vae_backend *vae_backend_profile_wrap(vae_backend *inner);

/* The ops called since the wrap or the last reset, in backend_ops.h's order (gemm's TN,
 * NN and TT rows last), into out (room for max entries; VAE_PROFILE_MAX_OPS is enough).
 * Returns the count. */
enum { VAE_PROFILE_MAX_OPS = 40 };
int vae_backend_profile_read(vae_backend *wrapped, vae_profile_entry *out, int max);
/* Zero every op's calls and seconds (e.g. after a warm-up epoch). */
void vae_backend_profile_reset(vae_backend *wrapped);
/* Which clock the times come from, in words for the profile header: "every op
 * synchronized" (the host clock, CPU) or "each op timed by CUDA events on the stream". */
const char *vae_backend_profile_clock(vae_backend *wrapped);

#endif /* VAE_PROFILE_BACKEND_H */
