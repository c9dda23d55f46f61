/*
 * op_table.h: one descriptor per backend op (include/backend.h), for the
 * table-driven op tests in the spirit of ggml's test-backend-ops. A
 * descriptor says how to build each of its cases from a seed (shapes, odd
 * ones included, and input ranges), which buffers the op reads, writes (=)
 * or accumulates into (+=), its tolerances, how to run it on a backend, and
 * optionally a closed form in double, a double-precision objective whose
 * gradient the op's gradient outputs must equal (finite differences), and a
 * check of properties of one backend's outputs.
 *
 * The drivers that use the table are in op_drivers.h. A descriptor's run
 * function is the only place that names the op's signature: a change of
 * signature touches one function here.
 *
 * Not here: tests of whole computations (training steps, eval, a captured
 * sequence of several ops) and hand-computed checks of single ops, which
 * stay in the test programs.
 */
#ifndef VAE_OP_TABLE_H
#define VAE_OP_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef enum { OP_F32, OP_F64, OP_I32, OP_U8 } op_type;

typedef enum {
    OP_IN,        /* read only: must come back bit for bit */
    OP_WRITE,     /* written (=): poisoned (NaN) before the op, so an element never written fails */
    OP_ACC,       /* accumulated (+=) or updated in place: starts from the case's (nonzero) values */
    OP_UNTOUCHED, /* not to be written (its pointer passed as NULL, or aliased away): poisoned, and must
                     come back bit for bit */
} op_role;

#define OP_MAX_BUFS 8
#define OP_MAX_FD 3
#define OP_MAX_INTS 10
#define OP_MAX_FLOATS 4

typedef struct {
    const char *name;
    op_type type;
    op_role role;
    size_t n;     /* elements */
    void *host;   /* the initial contents, n elements (at least one allocated) */
    int own_tol;  /* atol, rtol below replace the descriptor's for this buffer */
    double atol, rtol;
} op_buf;

typedef struct {
    char shape[160]; /* "B=5 N=13 relu": printed with every failure */
    int nbuf;
    op_buf buf[OP_MAX_BUFS];
    int i[OP_MAX_INTS];     /* integer arguments (sizes, flags), named by the descriptor */
    float f[OP_MAX_FLOATS]; /* plain float arguments: frozen in a captured graph, so the same for every seed */
    /* Finite differences: buffer grad must equal d objective / d buffer wrt, plus grad's start
     * when acc (the op accumulates into it). */
    int nfd;
    struct {
        int grad, wrt, acc;
    } fd[OP_MAX_FD];
    int big;          /* large: left out of the double-precision drivers (closed form, finite differences)
                         and of graph replay; for determinism and backend against backend */
    double ref_scale; /* multiplies the closed form's tolerance (long sums); 1 unless make says */
} op_case;

typedef struct op_desc {
    const char *name;
    int ncases;
    /* Case k (0 <= k < ncases) from a seed. The shapes and the plain arguments (i, f) depend on k
     * only; buffer contents, backend scalars included, on the seed: the graph driver re-makes a
     * case with new seeds and uploads the new contents into the captured buffers. */
    void (*make)(op_case *c, int k, uint64_t seed);
    /* Run the op on be; d[b] is the backend pointer of buffer b. Never uploads or downloads. */
    void (*run)(vae_backend *be, const op_case *c, void *const *d);
    double atol, rtol; /* a candidate backend against the reference: |got - ref| <= atol + rtol |ref| */
    double nmse;       /* and sum (got - ref)^2 / sum ref^2 per buffer at most this */
    /* Closed form (optional): from the double copies of every buffer's initial contents (in[b]),
     * compute outputs into out[b] (which start as the backend's buffers do: the poison of OP_WRITE
     * buffers, the start of OP_ACC ones); returns the mask (1 << b) of the buffers it computed. */
    unsigned (*reference)(const op_case *c, double *const *in, double *const *out);
    double ref_atol, ref_rtol;
    /* A scalar function of the inputs in double (optional), for the case's fd pairs. */
    double (*objective)(const op_case *c, double *const *x);
    double fd_atol, fd_rtol;
    /* Properties of one backend's outputs (optional): out[b] holds buffer b after the op; returns
     * 1 when they hold, else prints what failed (prefixed with `where`) and returns 0. */
    int (*check)(const op_case *c, void *const *out, const char *where);
    const char *no_graph; /* why the op cannot be captured in a graph, or NULL */
} op_desc;

extern const op_desc *const op_table[];
extern const int op_table_count;

/* Build case k of d from seed (ref_scale 1, then d->make); free with op_case_free. */
void op_case_make(const op_desc *d, op_case *c, int k, uint64_t seed);
void op_case_free(op_case *c);
/* Bytes of one element of t. */
size_t op_type_size(op_type t);

#endif
