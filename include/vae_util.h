/*
 * vae_util.h: error reporting, checked allocation and checked file I/O shared
 * by every part of cuvae.
 *
 * Two kinds of failure:
 *  - Bad input (a file, a flag, a value): the function that finds it records
 *    one message with vae_set_error() and returns -1; the caller passes it up
 *    and the command line prints vae_last_error() once and exits non-zero.
 *  - Broken environment (out of memory, a failing CUDA/cuBLAS call, a
 *    write that fails half way): vae_fatal() prints the call, file, line and
 *    cause and exits. Nothing sensible can continue from there.
 */
#ifndef VAE_UTIL_H
#define VAE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define VAE_NORETURN __attribute__((noreturn))
#else
#define VAE_PRINTF(a, b)
#define VAE_NORETURN
#endif

/* Record the message of a recoverable error; always returns -1. */
int vae_set_error(const char *fmt, ...) VAE_PRINTF(1, 2);
/* The last message recorded by vae_set_error() in this thread ("" if none). */
const char *vae_last_error(void);

/* Print "cuvae: fatal: <message> (file:line)" to stderr and exit(1). */
VAE_NORETURN void vae_fatal_at(const char *file, int line, const char *fmt, ...) VAE_PRINTF(3, 4);
#define vae_fatal(...) vae_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

/* Allocation that never returns NULL: on failure it is fatal and names the
 * size and the place of the call. Memory comes back zero-filled. */
void *vae_calloc_at(size_t count, size_t size, const char *file, int line);
#define vae_calloc(count, size) vae_calloc_at((count), (size), __FILE__, __LINE__)
void vae_free(void *p);

/* Multiply sizes, returning -1 on overflow (result untouched) and 0 otherwise. */
int vae_mul_overflow(size_t a, size_t b, size_t *out);

/* "needs X MiB, Y MiB free on WHERE" into buf (X rounded up, Y down, so the
 * two never read as equal when need > free). Returns buf. */
char *vae_format_memory_shortfall(char *buf, size_t len, size_t need_bytes, size_t free_bytes, const char *where);

/* Create a directory and its parents; returns -1 with vae_set_error on failure. */
int vae_mkdir_p(const char *path);

/* After renaming a finished file into place: fsync its directory so the rename
 * survives a crash. -1 with vae_set_error ("<path>: written, but ...") on failure. */
int vae_sync_parent_dir(const char *path);

/* A file written whole or not at all: vae_atomic_open creates "<path>.tmp" for the caller to
 * write through a->f; vae_atomic_commit flushes, fsyncs and closes it, renames it onto path and
 * syncs the directory, so that a crash leaves the old file or the new one, never a part of
 * one. A path that exists and is a FIFO, a device node or a socket is refused, not replaced. A failure of either returns -1 with vae_set_error naming path and the step, and leaves
 * no temporary file; after a failure of its own writing the caller calls vae_atomic_abort
 * (close and remove). path must outlive the commit. */
typedef struct {
    FILE *f;
    char *tmp;        /* "<path>.tmp", owned */
    const char *path; /* the caller's */
} vae_atomic_file;
int vae_atomic_open(vae_atomic_file *a, const char *path);
int vae_atomic_commit(vae_atomic_file *a);
void vae_atomic_abort(vae_atomic_file *a);

/* "a FIFO", "a character device", ...: what a file of mode st_mode is, for messages. */
const char *vae_file_type_name(unsigned mode);
/* An input file opened for reading without waiting on a FIFO (O_NONBLOCK, cleared once open) and
 * checked to be a regular file: a FIFO, a device or a directory is refused, naming path and what
 * it is. The descriptor, or -1 with vae_set_error. */
int vae_open_regular(const char *path);
/* vae_open_regular as a FILE "rb"; NULL with vae_set_error. */
FILE *vae_fopen_regular(const char *path);
/* The whole of a regular text file of at most cap bytes (vae_open_regular), NUL-terminated, in a
 * vae_calloc'd buffer (vae_free); *len (when len is not NULL) its length. NULL with vae_set_error
 * naming path: not openable, not a regular file, larger than cap, or a read error. */
char *vae_read_text(const char *path, size_t cap, size_t *len);
/* The most bytes cuvae reads of a text file it wrote (metrics.csv, provenance.txt). */
#define VAE_TEXT_FILE_MAX ((size_t)64 << 20)

/* Index of the first NaN or infinity in x (n), or n when all are finite. */
size_t vae_first_non_finite(const float *x, size_t n);
/* "NaN", "inf" or "-inf": the name of a non-finite v, for messages. */
const char *vae_non_finite_name(float v);

/* The names of an enum's values: a table generated from the enum's X-list, indexed by value
 * ([VAE_ACT_RELU] = "relu", ...; a value the list skips is NULL). VAE_NAMES_N: its length. */
#define VAE_NAMES_N(names) ((int)(sizeof(names) / sizeof((names)[0])))
/* names[value], or "?" for a value without a name (out of range, or skipped). */
const char *vae_name_of(const char *const *names, int n, int value);
/* The value whose name is s, or -1 when none is. */
int vae_name_find(const char *const *names, int n, const char *s);

/* Wall-clock seconds from a monotonic clock. */
double vae_now_seconds(void);

#ifdef __cplusplus
}
#endif
#endif /* VAE_UTIL_H */
