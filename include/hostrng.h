/*
 * hostrng.h: a small seeded generator on the host (xoshiro256** seeded through
 * splitmix64) for the things that are not per-step noise: parameter
 * initialization and the order of the training images each epoch. Per-step
 * noise comes from Philox through the backend (backend.h).
 */
#ifndef VAE_HOSTRNG_H
#define VAE_HOSTRNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} vae_hostrng;

void vae_hostrng_seed(vae_hostrng *r, uint64_t seed);
uint64_t vae_hostrng_next(vae_hostrng *r);
/* Uniform in [0, 1) with 53 random bits. */
double vae_hostrng_uniform(vae_hostrng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t vae_hostrng_below(vae_hostrng *r, uint64_t n);
/* Fisher-Yates shuffle of idx (n). */
void vae_hostrng_shuffle(vae_hostrng *r, int32_t *idx, size_t n);

#endif
