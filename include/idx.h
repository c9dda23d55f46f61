/*
 * idx.h: reader for IDX files, the format of the MNIST and Fashion-MNIST
 * distributions, raw or gzip-compressed (zlib tells the two apart itself).
 *
 * An IDX file is a 4-byte magic number 0x00 0x00 TYPE RANK, then RANK
 * big-endian uint32 dimension sizes, then the elements in row-major order.
 * cuvae reads only TYPE 0x08 (unsigned byte) and RANK 1..4; it does not read
 * the signed, integer or floating-point IDX types, and it does not write IDX.
 *
 * Everything in the file is checked: the magic, the rank, every dimension
 * (non-zero, product within VAE_IDX_MAX_BYTES), the data length (no short
 * data, no bytes after it) and the gzip stream itself (CRC, corruption, and
 * nothing after the last gzip member: zlib alone would ignore such bytes). A
 * bad file gives -1 and one message "<path>: <problem>" through
 * vae_set_error(); it never aborts.
 */
#ifndef VAE_IDX_H
#define VAE_IDX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest data section accepted, in bytes (2^31 - 1): more than any image
 * data set cuvae is meant for, and it keeps every dimension within an int. */
#define VAE_IDX_MAX_BYTES ((size_t)0x7fffffff)

typedef struct {
    int ndim;      /* rank, 1..4 */
    int dims[4];   /* dims[0..ndim-1] as in the file; unused entries are 0 */
    size_t count;  /* dims[0] * ... * dims[ndim-1], number of bytes in data */
    uint8_t *data; /* (dims[0], ..., dims[ndim-1]), row-major; owned */
} vae_idx;

/* Read the IDX file at `path` (raw or gzip) into `out`. Returns 0, or -1 with
 * a message naming the path and the problem (vae_last_error()); on failure
 * `out` is left zeroed, so vae_idx_free(out) is always safe. */
int vae_idx_read(const char *path, vae_idx *out);

/* The header of the IDX file at `path` alone (its rank, dims and count; data stays NULL): what a
 * reader of two files that must agree compares before inflating either. 0, or -1 as vae_idx_read. */
int vae_idx_read_header(const char *path, vae_idx *out);
/* Release the data of `a` and zero it; a NULL or zeroed `a` is fine. */
void vae_idx_free(vae_idx *a);

#ifdef __cplusplus
}
#endif
#endif /* VAE_IDX_H */
