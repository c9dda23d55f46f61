/*
 * gemm_record.h: a backend that runs another's ops and records every GEMM it is
 * asked for, so that `cuvae bench --gemm-only` can time an epoch's GEMMs alone:
 * the same calls (shapes, transposes, operands, order) the training step made,
 * replayed back to back with nothing between them. That is the floor the
 * issue's "one epoch within 1.2x its GEMMs" is measured against.
 *
 * The recorder shares the inner backend's state (its table is a copy of the
 * inner's, with gemm replaced), so buffers and generators are the inner's; it has
 * no graph ops, so the trainer calls every op eagerly and every GEMM is seen.
 * Replayed GEMMs write into the model's buffers (activations, gradients): replay
 * only while the model that made them is alive, and do not train it afterwards.
 *
 * Not here: timing of anything but GEMMs (profile_backend.h).
 */
#ifndef VAE_GEMM_RECORD_H
#define VAE_GEMM_RECORD_H

#include "backend.h"

/* A recorder around inner. vae_backend_free frees the recorder only: the caller
 * keeps inner and frees it after. Recording is on from the start. */
vae_backend *vae_backend_gemm_record_wrap(vae_backend *inner);
/* Stop (0) or restart (1) recording; restarting drops what was recorded. */
void vae_gemm_record_set(vae_backend *rec, int on);
/* GEMM calls recorded, and their floating-point operations (2 M N K each). */
long vae_gemm_record_count(const vae_backend *rec);
double vae_gemm_record_flops(const vae_backend *rec);
/* Run every recorded call once, in order, on the inner backend, and synchronize it;
 * returns the seconds from the first call to the end of the last. */
double vae_gemm_record_replay(vae_backend *rec);

#endif /* VAE_GEMM_RECORD_H */
