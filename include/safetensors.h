/*
 * safetensors.h: reading and writing the safetensors tensor file format, used
 * for cuvae's checkpoints and for exchanging weights with PyTorch.
 *
 * File layout (all integers little-endian, whatever the host):
 *
 *   u64 N                      length of the header in bytes
 *   N bytes of UTF-8 JSON      {"name": {"dtype": "F32", "shape": [d0, d1, ...],
 *                                        "data_offsets": [begin, end]}, ...,
 *                               "__metadata__": {"key": "value", ...}}   (optional)
 *                              may be padded at the end with spaces
 *   the data buffer            each tensor's bytes, row-major, little-endian,
 *                              at [begin, end) relative to the buffer's start
 *
 * The writer emits only F32 tensors, pads the header with spaces so the buffer
 * starts at a multiple of 8 bytes in the file, and packs tensors back to back
 * in the order given. The reader accepts every fixed-size safetensors dtype
 * (BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 I64 U64 F64) but
 * checks only their byte counts: interpreting non-F32 data is the caller's job.
 *
 * The reader treats the file as hostile. It fails with one message, starting
 * with the path, for: a file shorter than 8 bytes; a header longer than the
 * file or than VAE_ST_MAX_HEADER (checked before the header is read); a header
 * that is not strict JSON (parsed by jansson; the message gives jansson's byte
 * position, just past the offending token), including \u0000 escapes,
 * malformed UTF-8 and integers outside int64; a header whose parse would take
 * more than VAE_ST_JSON_MEMORY_FACTOR bytes of memory per header byte (plus
 * 1 MiB); duplicate keys; an unknown dtype; a shape whose
 * element count times element size differs from end - begin; offsets past the
 * end of the buffer; tensors that overlap or leave holes in the buffer; bytes
 * after the last tensor; metadata values that are not strings.
 *
 * Not here: dtype conversion, memory mapping, lazy loading. A file is read
 * whole into memory.
 */
#ifndef VAE_SAFETENSORS_H
#define VAE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header the reader accepts: 16 MiB, room for about 100,000 tensors
 * (the largest public checkpoints have headers under 2 MB; the reference
 * implementation's limit is 100 MB). */
#define VAE_ST_MAX_HEADER ((uint64_t)16 << 20)
/* Most bytes the parsed header may take in memory, per byte of header (plus
 * 1 MiB), as jansson 2.14 allocates on x86-64: real headers take 8 to 14 per
 * byte (20,000 long tensor names: 8; 50,000 one-byte tensors: 14), hostile
 * ones more ("[[],[],...]" 41, "[{},{},...]" 73). At the header limit the
 * parse takes at most 512 MiB. */
#define VAE_ST_JSON_MEMORY_FACTOR 32
/* Most dimensions the reader accepts for one tensor. */
#define VAE_ST_MAX_DIMS 8

/* One F32 tensor to write. data: (shape[0], ..., shape[ndim-1]) floats,
 * row-major; ndim in 0..4 (0 is a scalar holding one float). */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
} vae_st_tensor_in;

/* One "__metadata__" entry: a UTF-8 key and a value (see vae_safetensors_write). */
typedef struct {
    const char *key;
    const char *value;
} vae_st_meta;

/* Write tensors[0..n_tensors) and meta[0..n_meta) to path.
 * The file is written to "<path>.tmp", flushed with fsync and renamed onto
 * path, so an interrupted write never leaves a broken file at path (and a
 * failed write removes the .tmp). Tensors are stored in the order given.
 * Tensor names and metadata keys must be valid UTF-8, tensor names unique and
 * not "__metadata__", metadata keys unique. A metadata value that is not
 * valid UTF-8 (a path of raw bytes, say) never makes the write fail: it is
 * stored as vae_safetensors_escape(value). meta may be NULL when n_meta is 0.
 * The header is built with jansson, compact, metadata first, tensors in order.
 * Returns 0, or -1 with vae_set_error. */
int vae_safetensors_write(const char *path, const vae_st_tensor_in *tensors, int n_tensors,
                          const vae_st_meta *meta, int n_meta);

/* One tensor of a file that was read.
 * data: nbytes bytes in the file's little-endian layout converted to the
 * host's byte order, aligned to the element size (a tensor stored at an
 * unaligned offset is copied to an aligned place), so an F32 tensor can be
 * read through (const float *)data. */
typedef struct {
    char *name;                       /* owned, NUL-terminated UTF-8 */
    char dtype[8];                    /* "F32", "BF16", ... */
    int ndim;                         /* 0..VAE_ST_MAX_DIMS */
    int64_t shape[VAE_ST_MAX_DIMS];   /* shape[0..ndim) */
    size_t nbytes;                    /* end - begin */
    const void *data;                 /* points into blob */
} vae_st_tensor;

/* A whole file in memory. Tensors are in the header's order. */
typedef struct {
    int n_tensors;
    vae_st_tensor *tensors;   /* (n_tensors) */
    int n_meta;
    vae_st_meta *meta;        /* (n_meta), owned copies of keys and values */
    void *blob;               /* the data buffer (plus aligned copies, if any) */
    size_t blob_size;         /* bytes of the data buffer in the file */
} vae_safetensors;

/* Read and validate path into *out. On failure returns -1 with vae_set_error
 * (the message starts with the path) and leaves *out empty; on success
 * returns 0 and the caller frees *out with vae_safetensors_free. */
int vae_safetensors_read(const char *path, vae_safetensors *out);

/* The tensor called name, or NULL if the file has none. */
const vae_st_tensor *vae_safetensors_find(const vae_safetensors *st, const char *name);

/* The metadata value for key, or NULL if absent. */
const char *vae_safetensors_meta_get(const vae_safetensors *st, const char *key);

/* Free everything *st owns and empty it; safe on an empty struct. */
void vae_safetensors_free(vae_safetensors *st);

/* A copy of the byte string s that is valid UTF-8 without control characters
 * and says exactly what s held: every well-formed UTF-8 sequence other than a
 * control character is kept, a backslash becomes two backslashes, and every
 * other byte (not well-formed UTF-8, or a control character such as a newline)
 * becomes a backslash, 'x' and two lower-case hex digits (0xff -> \xff). So
 * printable text without backslashes comes back unchanged, and
 * vae_safetensors_unescape gives back s byte for byte. The one escape cuvae
 * records paths and metadata in. Free with vae_free. */
char *vae_safetensors_escape(const char *s);

/* The bytes vae_safetensors_escape(s) was made from; NULL with vae_set_error
 * when s holds a backslash that escape would not have written. Free with vae_free. */
char *vae_safetensors_unescape(const char *s);

/* Size in bytes of one element of a safetensors dtype ("F32" -> 4), or 0 if
 * the name is not a dtype this reader knows. */
size_t vae_safetensors_dtype_size(const char *dtype);

#ifdef __cplusplus
}
#endif
#endif /* VAE_SAFETENSORS_H */
