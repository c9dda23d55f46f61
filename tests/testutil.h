/*
 * testutil.h: helpers shared by the Criterion tests: scratch directories,
 * files written with chosen bytes and read back whole, running the cuvae binary,
 * seeded random inputs, a backend that counts its allocations, a safetensors
 * file's metadata read and rewritten, and tolerance comparisons (elementwise, naming the worst element, and in ulps). Not for what
 * one test file alone needs: that stays in the file.
 */
#ifndef VAE_TESTUTIL_H
#define VAE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "dataset.h"
#include "train.h"

#include <jansson.h>

#include <signal.h>

/* A fresh directory under /tmp, unique to this process and call; the returned
 * string is static storage valid until the next call. */
const char *tu_tmpdir(void);

/* Write `n` bytes to `path` (truncating). */
void tu_write_file(const char *path, const void *bytes, size_t n);

/* dir/name into out (cap bytes); a Criterion failure when it does not fit. */
void tu_join(char *out, size_t cap, const char *dir, const char *name);

/* The whole file at path in a malloc'd buffer (free with free()) with a NUL after its last byte,
 * so that a text file is also a string; *len, when len is not NULL, gets the byte count without
 * that NUL. NULL, with errno set, when the file cannot be opened: the caller decides whether a
 * missing file is a failure. A read error after the open is a Criterion failure. */
void *tu_slurp(const char *path, size_t *len);
/* tu_slurp of dir/name. */
void *tu_slurp_in(const char *dir, const char *name, size_t *len);
/* tu_slurp of a file that must be there: a Criterion failure naming path and the cause otherwise. */
void *tu_read_file(const char *path, size_t *len);

/* Where needle first stands in the file at path, which must be there and may hold NUL bytes, or
 * NULL; the text from there on stays readable (NUL-terminated) until the next call. */
const char *tu_file_find(const char *path, const char *needle);
/* Whether needle stands in the file at path (tu_file_find). */
int tu_file_has(const char *path, const char *needle);

/* Whether path exists (stat succeeds; a directory counts). */
int tu_exists(const char *path);
/* Whether dir/name exists. */
int tu_exists_in(const char *dir, const char *name);
/* Whether dir/name exists and holds at least one byte. */
int tu_nonempty_in(const char *dir, const char *name);

/* malloc(bytes), at least one byte; a Criterion failure when it fails. */
void *tu_malloc(size_t bytes);

/* A copy of backend be whose buffer_alloc adds each request to tu_alloc_bytes and
 * tu_alloc_buffers (both reset here) and then passes it to be's own. The counts are global, as
 * buffer_alloc has no place for them: one counting backend at a time. Free be, not the copy. */
vae_backend tu_counting_backend(const vae_backend *be);
extern size_t tu_alloc_bytes;
extern int tu_alloc_buffers;

/* Run a shell command; stdout+stderr are captured into `out` (truncated to
 * outlen-1 chars, NUL-terminated). Returns the exit status (or -1). */
int tu_run(const char *cmd, char *out, size_t outlen);

/* Deterministic uniform floats in [lo, hi) from a splitmix64 stream. */
void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* |got - want| in units in the last place of a float at want's magnitude: the ulp of the float
 * binade [2^k, 2^(k+1)) that holds |want| (taken from the exact double, not want rounded to
 * float, so a want just below a power of two is measured with the finer ulp below it), and 2^-149
 * (the subnormal spacing) below 2^-126. Finite for any finite want, however large. A NaN on one
 * side only is INFINITY ulps, NaN against NaN 0; an infinite want matches only itself. */
double tu_ulps(float got, double want);

/* Compare got against ref elementwise with |got-ref| <= atol + rtol*|ref|;
 * NaN/Inf in either fails. On failure prints the worst element (index, both
 * values) under `what` and returns 0; returns 1 when all elements pass. */
int tu_allclose(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol);

/* Same, for doubles. */
int tu_allclose_d(const char *what, const double *got, const double *ref, size_t n, double atol, double rtol);

/* n 8x8 images of three stroke patterns (label i % 3) with seeded pixel noise: a data set a small
 * model learns in a few epochs. Free with vae_dataset_free. */
void tu_make_patterns(vae_dataset *d, int n, uint64_t seed);

/* The tu_make_patterns data set as the four IDX files of a data set directory (uncompressed):
 * n_train training images from seed, n_test test images from seed + 1000000. */
void tu_write_patterns_idx(const char *dir, int n_train, int n_test, uint64_t seed);

/* An MNIST-format data set in dir (created if missing): n_train and n_test images of side x side
 * pixels, three stroke patterns (label i % 3) with fixed noise. */
void tu_write_stroke_idx(const char *dir, int n_train, int n_test, int side);

/* Run the cuvae binary (CUVAE_BINARY) with printf-style arguments; stdout and stderr go to out
 * (outlen bytes, NUL-terminated). Returns the exit status, as tu_run. */
int tu_cuvae(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A run directory's metrics.csv without its timing columns (the last two of every line,
 * seconds and images/s) into dst (cap bytes): what must be identical between runs. */
void tu_metrics_losses(const char *run_dir, char *dst, size_t cap);

/* The tests' small model: 13-11-7-3(x2)-7-11-13 (six linear layers, a Gaussian latent,
 * Bernoulli likelihood), the other settings the defaults. */
vae_config tu_small_config(void);
/* That model on be for batches of B, learning rate lr, parameters seeded 5, and seeded
 * inputs (6) and noise (7) uploaded (the profiling tests). */
void tu_small_model(vae_model *m, vae_backend *be, int B, float lr);

/* The Python that imports torch and numpy (python3, else /usr/bin/python3); without one the
 * calling test is skipped, saying why. */
const char *tu_need_torch(void);

/* Where the grid of a picture (a PNG of image.h, labelled or not) starts: its top-left border
 * pixel, found from the bottom border row. Fails the test when there is none. */
void tu_grid_origin(const uint8_t *px /* (height, width) */, int width, int height, int *x0, int *y0);

/* Without a usable GPU: a visible Criterion skip whose reason is the CUDA backend's own ("no CUDA
 * device: no NVIDIA driver is installed ..."), never a pass. Does nothing where a GPU is present. */
void tu_need_gpu(void);
/* The CUDA backend on device 0, or that skip. */
vae_backend *tu_cuda_backend(void);

/* A small training run for the resume tests of both backends: a 64-24-3 relu model with seeded
 * parameters on the 8x8 patterns, and its trainer (4 epochs, batch 16, Adam 3e-3, seed 9), whose
 * epoch stops after the current step once `stop` is set. The session owns be. */
typedef struct {
    vae_backend *be;
    vae_model m;
    vae_trainer *t;
    vae_device_data dtr, dte;
    volatile sig_atomic_t stop;
} tu_session;
void tu_session_open(tu_session *s, vae_backend *be, const vae_dataset *train, const vae_dataset *test);
/* The same model and data with the trainer options o (their stop replaced by the session's). */
void tu_session_open_with(tu_session *s, vae_backend *be, const vae_dataset *train, const vae_dataset *test,
                          const vae_train_options *o);
void tu_session_close(tu_session *s);

/* Run the shell command cmd (its stderr dropped) and parse its stdout as one JSON object (a
 * Criterion failure otherwise); the object is the caller's (json_decref). */
json_t *tu_run_json(const char *cmd);
/* o[key], which must be a number (a Criterion failure otherwise). */
double tu_json_num(const json_t *o, const char *key);

/* Training steps of a small 64-24-3 model on one fixed batch of the 8x8 patterns, on backend be:
 * before step s the model's backend scalars are set to learning rate lr[s] and KL weight kl[s],
 * and the step runs from a graph captured once at the first step where the backend has graphs
 * (replayed after), eagerly elsewhere. *params gets (steps + 1, n_params) floats (malloc'd): the
 * parameters before the first step, then after each. Returns n_params. */
size_t tu_scalar_steps(vae_backend *be, const float *lr, const float *kl, int steps, float **params);

/* Every model `cuvae train` trains, as `cuvae compare` flags on small shapes (hidden layers of
 * 65 and 33, so no size is a multiple of a block): the plain VAE with either likelihood, the
 * cvae, the joint model plain and with controlled capacity and an annealed temperature, dynamic
 * and static binarization, clipping with the learning-rate and KL schedules, and the 1-D toy
 * (plain and conditional). `shows` is a piece of compare's setup lines that only those flags
 * print, so a test sees that they reached the model. */
typedef struct {
    const char *name, *flags, *shows;
} tu_compare_model;
extern const tu_compare_model tu_compare_models[];
extern const int tu_compare_model_count;

/* The safetensors file at path (F32 tensors of up to 4 dimensions) written again with its metadata
 * key set to value (added when absent) or dropped (value NULL); a Criterion failure otherwise. */
void tu_st_rewrite_meta(const char *path, const char *key, const char *value);
/* A malloc'd copy of the metadata value of key in the safetensors file at path (free with free());
 * a Criterion failure when there is none. */
char *tu_st_meta(const char *path, const char *key);

#endif
