/*
 * sweep_slurm.c: the Slurm job-array script of a sweep (sweep.h), DIR/slurm.sh. One array task
 * per plan line; each task execs `cuvae sweep run DIR --index $SLURM_ARRAY_TASK_ID`, so the
 * SIGTERM that --signal=B:TERM@S sends to the batch shell reaches cuvae itself: the run writes
 * its checkpoint, and the task requeues itself (Slurm does not requeue a task that reached its
 * time limit) to continue from it. --requeue lets a preempted task come back the same way.
 */
#define _GNU_SOURCE
#include "sweep.h"

#include "run_dir.h"
#include "vae_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s single-quoted for sh. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

int vae_sweep_write_slurm(const vae_sweep_plan *p, const vae_sweep_slurm_options *o, char *path, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        vae_fatal("open_memstream: out of memory");
    fprintf(f, "#!/bin/sh\n"
               "# The Slurm job array of the cuvae sweep in this directory: one task per line of plan.jsonl.\n"
               "# Submit it with: sbatch %s/slurm.sh\n"
               "# A task stopped by its time limit or by preemption checkpoints on the SIGTERM below, requeues\n"
               "# itself, and continues from the checkpoint when it runs again.\n",
            p->dir);
    fprintf(f, "#SBATCH --job-name=cuvae-sweep\n#SBATCH --array=0-%d\n#SBATCH --requeue\n", p->n_runs - 1);
    fprintf(f, "#SBATCH --signal=B:TERM@%d\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=%d\n", o->signal_seconds,
            o->cpus);
    fprintf(f, "#SBATCH --output=%s/logs/slurm-%%A_%%a.out\n", p->dir);
    if (o->partition)
        fprintf(f, "#SBATCH --partition=%s\n", o->partition);
    if (o->time)
        fprintf(f, "#SBATCH --time=%s\n", o->time);
    if (o->gpus)
        fprintf(f, "#SBATCH --gpus-per-task=%d\n", o->gpus);
    fputs("exec ", f);
    put_quoted(f, p->cuvae);
    fputs(" sweep run ", f);
    put_quoted(f, p->dir);
    fputs(" --index \"$SLURM_ARRAY_TASK_ID\"\n", f);
    if (fclose(f))
        vae_fatal("open_memstream: out of memory");
    char logs[PATH_MAX + 16];
    snprintf(logs, sizeof logs, "%s/logs", p->dir);
    int rc = vae_run_dir_check_writable(logs) || vae_run_write_text(p->dir, "slurm.sh", text, len) ? -1 : 0;
    free(text);
    snprintf(path, cap, "%s/slurm.sh", p->dir);
    return rc;
}
