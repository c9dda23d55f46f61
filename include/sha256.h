/*
 * sha256.h: SHA-256 (FIPS 180-4) of memory and of files, for the provenance
 * of a run: each data file's digest is recorded in the run directory and in
 * the model, and checked again when a model's recorded data set is reused.
 * Not a general crypto library: no HMAC, no other digests.
 */
#ifndef VAE_SHA256_H
#define VAE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;      /* message length so far */
    uint8_t block[64];   /* partial block */
    size_t fill;         /* bytes in block */
} vae_sha256;

void vae_sha256_init(vae_sha256 *c);
void vae_sha256_update(vae_sha256 *c, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL (hex: 65 bytes). */
void vae_sha256_final_hex(vae_sha256 *c, char hex[65]);

/* SHA-256 of a whole file as hex; 0, or -1 with vae_set_error naming the path and cause. */
int vae_sha256_file(const char *path, char hex[65]);

#endif
