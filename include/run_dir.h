/*
 * run_dir.h: the run directory of `cuvae train` and what it records.
 *
 * A run directory belongs to one run. Its files (VAE_RUN_FILES): model.safetensors,
 * best.safetensors, checkpoint.safetensors, metrics.csv, metrics.jsonl, metrics_steps.csv, metrics_steps.jsonl,
 * provenance.txt, samples.png, reconstructions.png, report.html, the pictures of
 * pictures.h (latent_scatter.svg, manifold.png, traversals.png, interpolation.png,
 * per_digit.png, loss_curves.svg), the toy's (toy_density.svg, toy_latent.svg,
 * toy_generated.svg), and the ".tmp" file of each while it is
 * being written. A directory holding any of them holds a previous run: a new
 * run refuses it unless told to replace it (--force removes exactly those
 * files, nothing else) or to continue it (--resume). Stale ".tmp" files, left
 * by a killed save, are removed when a run starts or resumes there.
 *
 * provenance.txt records the full command line, cuvae's version and commit,
 * the host, the start time, the device, and each data file's absolute path
 * and SHA-256; a resume appends its own command line and time.
 *
 * A run directory belongs to one process (vae_run_dir_lock): `train`, its
 * --force and --resume, and `plot` writing into a run directory, hold an
 * exclusive lock on DIR/.cuvae.lock (VAE_RUN_LOCK_FILE) for as long as they
 * write there. The file is never removed (not by --force either), so two
 * processes always lock the same file; the kernel drops the lock when its
 * holder dies, so kill -9 leaves no stale lock. flock is taken, and a POSIX
 * record lock on the same file too (it names the holder's pid, and it is what
 * a file system without flock offers); a directory where neither works is
 * refused unless the caller allows running unlocked (train --no-lock).
 *
 * Paths are recorded losslessly as text, in the escape of safetensors.h
 * (vae_safetensors_escape): a byte that is not part of well-formed UTF-8, or a
 * control character, as \xNN, and a backslash doubled.
 *
 * Not here: the training loop, the checkpoint's contents (train_state.h).
 */
#ifndef VAE_RUN_DIR_H
#define VAE_RUN_DIR_H

#include "dataset.h"

#include <stddef.h>

/* The run files: its own, the pictures (pictures.h) and the toy's (toy_pictures.h); run_dir.c
 * asserts at compile time that the count is theirs. */
#define VAE_RUN_N_FILES 22
extern const char *const vae_run_files[VAE_RUN_N_FILES];

/* vae_safetensors_escape(in) into out (cap bytes; 4 * strlen(in) + 1 always suffice). -1 if out is
 * too small. */
int vae_run_escape(const char *in, char *out, size_t cap);
/* Undo vae_run_escape into out (cap bytes). -1 with vae_set_error on a malformed escape. */
int vae_run_unescape(const char *in, char *out, size_t cap);

/* Create a new, unique run directory models/vae-YYYYmmdd-HHMMSS-<pid>[-k] (mkdir is atomic,
 * so two runs never share one) and put its path in out. 0, or -1 with vae_set_error. */
int vae_run_dir_create_unique(const char *parent, char *out, size_t cap);

/* Count of run files in dir (0 when dir does not exist). -1 with vae_set_error when dir exists
 * but cannot be listed or is not a directory. */
int vae_run_dir_count_files(const char *dir);

/* Create dir (and parents) if needed and check that a file can be created in it.
 * 0, or -1 with vae_set_error ("cannot write to DIR: Permission denied"). */
int vae_run_dir_check_writable(const char *dir);

/* The lock file in a run directory; not one of the run files. */
#define VAE_RUN_LOCK_FILE ".cuvae.lock"

/* Take the exclusive lock of run directory dir (which must exist) for this process, before
 * anything in it is written or removed; the lock lasts until the process ends (or *fd is
 * closed). *fd gets the lock file's descriptor (-1 when running unlocked). `what` names the
 * directory in messages ("--out DIR", "--resume DIR"). -1 with vae_set_error when another
 * process holds it (naming dir and the holder's pid), or when the file system refuses both
 * kinds of lock and allow_unlocked is 0. Where allow_unlocked is 1 and neither lock works,
 * a warning line goes to stderr and 0 is returned with *fd -1.
 * For tests, the environment's CUVAE_TEST_LOCKS=posix has flock act as refused by the file
 * system, and CUVAE_TEST_LOCKS=none both kinds. */
int vae_run_dir_lock(const char *dir, const char *what, int allow_unlocked, int *fd);
/* Remove the ".tmp" files of the run files in dir. */
void vae_run_dir_remove_stale(const char *dir);
/* Remove every run file in dir (for --force). 0, or -1 with vae_set_error. */
int vae_run_dir_clear(const char *dir);

/* Write text to dir/name atomically (temporary file, fsync, rename, directory fsync).
 * 0, or -1 with vae_set_error naming the file and the cause. */
int vae_run_write_text(const char *dir, const char *name, const char *text, size_t len);

/* The absolute form of path in out (realpath); -1 with vae_set_error. */
int vae_run_abspath(const char *path, char *out, size_t cap);

/* The four data files of data set dir (absolute paths) and their SHA-256, in the order
 * train images, train labels, test images, test labels. */
typedef struct {
    int n_files;           /* 4 for a data directory; 0 for data made in memory (the toy) */
    char dir[4096];        /* absolute; or the in-memory data's name ("toy") */
    char path[4][4096];    /* absolute */
    char sha256[4][65];
} vae_run_data;
int vae_run_data_hash(const char *dir, vae_run_data *d);
/* The basename of d->path[i]. */
const char *vae_run_data_name(const vae_run_data *d, int i);

/* Text of provenance.txt: header line `what` ("started" or "resumed"), the command line
 * (argv escaped, shell-quoted), version, commit, host, time, device and the data files.
 * Returns a vae_calloc'd string. */
char *vae_run_provenance(const char *what, int argc, char **argv, const char *device,
                         const vae_run_data *d);

#endif
