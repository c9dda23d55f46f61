/*
 * sweep.h: many training runs from one command (`cuvae sweep`). A base `train` command and value
 * lists for its flags expand into a plan, written into the sweep directory before anything
 * runs; the runs are then driven by this machine's devices (sweep_exec.c) or by a Slurm job
 * array (one `cuvae sweep run DIR --index I` per task), and compared on one page
 * (sweep_report.c).
 *
 * Lists. A flag's value is a list of alternatives when it is not itself a valid value of the
 * flag: "--beta 0.5,1,2" (commas), "--seed 1:3" (an integer range, both ends included); a
 * value that is valid as it is ("--hidden 512,256", "--capacity-c 5,3760,30") is one value,
 * and ';' separates alternatives of such flags ("--hidden '400;512,256'"). The runs are the
 * product of the lists in the order given, the last varying fastest, or with --zip the lists
 * taken side by side (all of one length).
 *
 * The sweep directory DIR:
 *   plan.jsonl        the plan: a header line (the sweep's version, cuvae's absolute path and
 *                     version, the flags that vary), then one line per run: its index, name,
 *                     run directory, threads, the values it takes and its full `train` argv
 *   runs/NAME/        each run's own run directory (run_dir.h), NAME made of the varied values
 *   logs/NAME.log     each run's stdout and stderr, appended by every attempt
 *   failed/NAME       a run that failed for a reason a retry would not change (a usage error,
 *                     divergence, a bad input): its exit status and the line saying why
 *   .cuvae.lock       held by the process driving the sweep (run_dir.h's lock), so two sweeps
 *                     never drive the same runs
 * A run is finished when its run directory holds model.safetensors, interrupted when it holds a
 * checkpoint but no model (resumed with `train --resume`), new otherwise.
 */
#ifndef VAE_SWEEP_H
#define VAE_SWEEP_H

#include <stddef.h>
#include <stdio.h>

#define VAE_SWEEP_MAX_AXES 16
#define VAE_SWEEP_MAX_RUNS 100000
#define VAE_SWEEP_PLAN "plan.jsonl"

/* One flag that varies, with its alternatives. */
typedef struct {
    char *flag;    /* "--beta" */
    int n;         /* number of alternatives */
    char **values; /* (n) "0.5", "1", ... */
} vae_sweep_axis;

typedef struct {
    int index;
    char *name;       /* "beta=0.5_latent=2": the varied values, made safe for a file name */
    char *dir;        /* absolute: DIR/runs/NAME */
    int threads;      /* its --threads (a result depends on it, so the plan fixes it) */
    char **values;    /* (n_axes) the value of each varied flag */
    int argc;
    char **argv;      /* (argc) "train", flags..., "--out", dir */
} vae_sweep_run;

typedef struct {
    char *dir;   /* absolute sweep directory */
    char *cuvae; /* absolute path of the program that made the plan */
    char *version;
    int zip;
    int n_axes;
    vae_sweep_axis axes[VAE_SWEEP_MAX_AXES];
    int n_runs;
    vae_sweep_run *runs; /* (n_runs) */
} vae_sweep_plan;

/* Expand the flags of argv (a base train command with lists; the sweep's own flags already
 * removed) into plan for sweep directory dir (absolute), each run with `threads` threads unless the base
 * gives --threads. The values are checked as train checks them (each run's settings composed
 * and validated), so a bad item, an unknown flag or a flag the sweep owns (--out, --resume,
 * --force, --quiet) is refused here: -1 with vae_set_error naming the flag and the item. */
int vae_sweep_expand(int argc, char **argv, const char *dir, int zip, int threads, vae_sweep_plan *plan);
void vae_sweep_plan_free(vae_sweep_plan *plan);

/* plan.jsonl's text of plan (a vae_calloc'd string), and the plan read back from dir. */
char *vae_sweep_plan_text(const vae_sweep_plan *plan);
int vae_sweep_plan_read(const char *dir, vae_sweep_plan *plan);
/* Whether two plans run the same runs (names, directories and argv; not the version). */
int vae_sweep_plan_same(const vae_sweep_plan *a, const vae_sweep_plan *b);
/* Print the plan as `--dry-run` shows it: one line per run, its name and train command. */
void vae_sweep_plan_print(const vae_sweep_plan *plan, FILE *f);

/* A run's state from its files. */
typedef enum { VAE_SWEEP_NEW, VAE_SWEEP_INTERRUPTED, VAE_SWEEP_FINISHED, VAE_SWEEP_FAILED } vae_sweep_state;
vae_sweep_state vae_sweep_run_state(const vae_sweep_plan *plan, int i);

/* The sweep directory's lock (DIR/.cuvae.lock, run_dir.h's file): exclusive for the process that
 * writes a plan or drives a local sweep, shared for each Slurm task (`cuvae sweep run`), so a
 * local sweep and a Slurm one never drive the same runs. Held until the process ends; -1 with
 * vae_set_error when another holder excludes it. */
int vae_sweep_lock(const char *dir, int shared);

/* How the runs of a plan are driven on this machine. */
typedef struct {
    int jobs;       /* runs at a time on the CPU */
    int per_gpu;    /* runs at a time on each GPU */
    int n_gpus;     /* 0: the CPU takes every run */
    int quiet;      /* no progress line */
} vae_sweep_exec_options;

/* Drive every run that is not finished or failed: new ones trained, interrupted ones resumed, a
 * run killed by a signal it did not ask for (a crash, a lost node) retried once, a failure a
 * retry would not change recorded under failed/. SIGINT and SIGTERM stop every run with its
 * checkpoint (one signal forwarded to each) and end the sweep with 128 + the signal. The caller
 * holds the sweep's lock (vae_sweep_lock), here and in vae_sweep_run_one. Returns the
 * exit status: 0 when every run finished, else the number of failed runs (at most 100), or
 * 128 + signal when stopped. */
int vae_sweep_execute(const vae_sweep_plan *plan, const vae_sweep_exec_options *o);

/* Run plan line `index` in the foreground (a Slurm array task): train or resume it, forwarding
 * SIGTERM/SIGINT once; when stopped by a signal under Slurm, requeue the job (`scontrol requeue
 * $SLURM_JOB_ID`) so it continues from its checkpoint. Returns the run's exit status. */
int vae_sweep_run_one(const vae_sweep_plan *plan, int index);

/* The Slurm job-array script of plan into DIR/slurm.sh. */
typedef struct {
    const char *partition; /* NULL: the cluster's default */
    const char *time;      /* time limit per task ("01:00:00"); NULL: the partition's */
    int gpus;              /* GPUs per task (0: none) */
    int signal_seconds;    /* SIGTERM this long before the time limit */
    int cpus;              /* CPUs per task: the runs' --threads */
} vae_sweep_slurm_options;
int vae_sweep_write_slurm(const vae_sweep_plan *plan, const vae_sweep_slurm_options *o, char *path, size_t cap);

/* The sweep's table and page: DIR/sweep.csv and DIR/sweep.html (one row per run: the varied
 * values, final train and test losses, the extra columns a model records such as nmi, active
 * units and, with iw_samples > 0, the importance-weighted bound, seconds; sorted by column
 * `sort`, NULL: plan order; the loss curves of every run on one chart). 0; 2 with vae_set_error
 * for a `sort` that names no column; -1 with vae_set_error when a file cannot be written. */
int vae_sweep_report(const vae_sweep_plan *plan, const char *sort, int iw_samples, FILE *log);

#endif /* VAE_SWEEP_H */
