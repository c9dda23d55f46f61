/*
 * op_drivers.h: the generic drivers of the table-driven op tests
 * (op_table.h). Each runs one case of one descriptor and returns 1 when it
 * passes; otherwise it prints the op, the case's shape, the buffer and the
 * worst element with its index, and returns 0, so that a test can also prove
 * that a driver fails on a broken op.
 *
 * On every backend run, each buffer is followed by a guard region that must
 * come back untouched, written outputs start as NaN (an element never written
 * shows), accumulated ones from the case's nonzero values, and inputs (and
 * outputs that must not be written) must come back bit for bit.
 *
 * Not here: Criterion tests (test_ops.c, test_cuda_ops.c) or op knowledge.
 */
#ifndef VAE_OP_DRIVERS_H
#define VAE_OP_DRIVERS_H

#include "op_table.h"

/* How a driver runs the op: a descriptor's run, or a deliberately broken one in a self-test. */
typedef void (*op_run_fn)(vae_backend *be, const op_case *c, void *const *d);

/* Whether the case is small enough for the double-precision drivers (closed form, finite differences). */
int op_drive_fd_applies(const op_desc *d, const op_case *c);

/* The op on be (the CPU) against the descriptor's closed form in double, then its check. */
int op_drive_reference(const op_desc *d, const op_case *c, vae_backend *be);

/* The op's gradient outputs on be against central differences in double of its objective. */
int op_drive_fd(const op_desc *d, const op_case *c, vae_backend *be, op_run_fn run);

/* The op on cand (run by cand_run, NULL: the descriptor's) against the op on ref, within the
 * descriptor's tolerances; the check on cand's outputs. */
int op_drive_compare(const op_desc *d, const op_case *c, vae_backend *ref, vae_backend *cand, op_run_fn cand_run);

/* The op twice on be from identical inputs: every buffer bit-identical. */
int op_drive_determinism(const op_desc *d, const op_case *c, vae_backend *be, op_run_fn run);

/* Case k captured once (eagerly run where be has no graphs), then replayed `replays` times on the
 * contents of new seeds (inputs and backend scalars uploaded into the captured buffers between
 * replays): each replay bit-identical to an eager run on the same contents. Capturing must not
 * run the op. */
int op_drive_graph(const op_desc *d, int k, uint64_t seed, int replays, vae_backend *be, op_run_fn run);

/* Whether op d is selected by the environment variable OP_TABLE_OPS (a comma-separated list
 * of op names; unset or empty: every op). */
int op_selected(const op_desc *d);
/* The first name in OP_TABLE_OPS that is no op of the table, copied into buf (len bytes), or
 * NULL when every name is one: a misspelt name must fail, not select nothing. */
const char *op_selection_unknown(char *buf, size_t len);

#endif
