/*
 * cmd_sweep.c: `cuvae sweep`, many training runs from one command (sweep.h):
 *
 *   cuvae sweep --out DIR [sweep flags] TRAIN FLAGS WITH LISTS   plan, then run (or --dry-run, --slurm)
 *   cuvae sweep DIR [--jobs N] [--per-gpu K] [--quiet]           continue a sweep
 *   cuvae sweep run DIR --index I                                one run of the plan (a Slurm task)
 *   cuvae sweep report DIR [--sort COLUMN]                       the table and the page
 *
 * Not here: the plan (sweep_plan.c), driving the runs (sweep_exec.c), the Slurm script
 * (sweep_slurm.c), the page (sweep_report.c).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "backend.h"
#include "run_dir.h"
#include "sweep.h"
#include "vae_util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs at a time on each GPU when --per-gpu is not given: not yet measured on a GPU (the GPU
 * check's second call measures it; docs/sweeps.md). */
#define VAE_SWEEP_PER_GPU_DEFAULT 4

static void help(void)
{
    printf("usage: cuvae sweep --out DIR [--zip] [--dry-run] [--jobs N] [--per-gpu K] [--quiet]\n"
           "                   [--slurm [--partition P] [--time T] [--gpus-per-task G] [--signal-seconds S]]\n"
           "                   TRAIN FLAGS, with lists\n"
           "       cuvae sweep DIR [--jobs N] [--per-gpu K] [--quiet]\n"
           "       cuvae sweep run DIR --index I\n"
           "       cuvae sweep report DIR [--sort COLUMN]\n\n"
           "Train one model per combination of the listed values of train's flags:\n"
           "  cuvae sweep --out sweeps/beta --epochs 20 --beta 0.5,1,2,4 --latent 2,10,20 --seed 1:3\n"
           "is 36 runs. A value is a list when it is not itself a value of the flag: 0.5,1,2 (commas),\n"
           "1:3 (integers 1 to 3); ';' separates values that hold commas (--hidden '400;512,256').\n"
           "The plan (DIR/plan.jsonl) is written before anything runs; each run trains into\n"
           "DIR/runs/NAME, NAME made of its values, and logs to DIR/logs/NAME.log.\n\n"
           "  --out DIR           the sweep directory (a new one, or one holding the same plan)\n"
           "  --zip               take the lists side by side (all of one length), not every combination\n"
           "  --dry-run           print the plan and stop; nothing is written\n"
           "  --jobs N            runs at a time on the CPU (default: one per core, each --threads 1;\n"
           "                      with N, each run gets cores / N threads, recorded in the plan)\n"
           "  --per-gpu K         runs at a time on each GPU (default %d, not yet measured on a GPU)\n"
           "  --quiet             no progress lines\n"
           "  --slurm             write DIR/slurm.sh, a Slurm job array of the plan, instead of running;\n"
           "                      submit it with sbatch (docs/sweeps.md)\n"
           "  --partition P, --time T, --gpus-per-task G\n"
           "                      the array's partition, time limit per task and GPUs per task\n"
           "  --signal-seconds S  SIGTERM this long before a task's time limit (default 120), so the\n"
           "                      run checkpoints and the task requeues itself\n\n"
           "`cuvae sweep DIR` continues a sweep: finished runs are skipped, interrupted ones resume from\n"
           "their checkpoints, a run that crashed is retried once, failed ones are reported (DIR/failed/).\n"
           "Ctrl-C stops every run with a checkpoint. Exit status: 0 every run finished, N the number of\n"
           "failed runs (at most 100), 128 + signal when stopped, 2 a usage error.\n"
           "  -h, --help          this help\n",
           VAE_SWEEP_PER_GPU_DEFAULT);
}

/* path as an absolute path: realpath when it exists, else the current directory joined to it. */
static int absolute(const char *path, char *out, size_t cap)
{
    if (realpath(path, out))
        return 0;
    if (path[0] == '/') {
        snprintf(out, cap, "%s", path);
        return 0;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return vae_set_error("getcwd: %s", strerror(errno));
    if ((size_t)snprintf(out, cap, "%s/%s", cwd, path) >= cap)
        return vae_set_error("%s: path too long", path);
    return 0;
}

typedef struct {
    const char *out;
    int zip, dry_run, quiet, slurm;
    int jobs, per_gpu;
    vae_sweep_slurm_options so;
} sweep_args;

static int parse_int(const char *flag, const char *value, long lo, long hi, int *out)
{
    if (!value)
        return vae_cli_usage_error("sweep", "%s needs a value", flag);
    if (vae_cli_parse_int(flag, value, lo, hi, out))
        return vae_cli_usage_error("sweep", "%s", vae_last_error());
    return -1;
}

/* Take the sweep's own flags out of argv (what is left: train's flags, in order, into rest).
 * -1 to go on, or the exit code. */
static int parse_own(int argc, char **argv, sweep_args *a, char **rest, int *n_rest)
{
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = -1;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            help();
            return 0;
        } else if (!strcmp(f, "--out")) {
            if (!v || !*v)
                return vae_cli_usage_error("sweep", "--out needs a directory");
            a->out = v, i++;
        } else if (!strcmp(f, "--zip"))
            a->zip = 1;
        else if (!strcmp(f, "--dry-run"))
            a->dry_run = 1;
        else if (!strcmp(f, "--quiet"))
            a->quiet = 1;
        else if (!strcmp(f, "--slurm"))
            a->slurm = 1;
        else if (!strcmp(f, "--jobs"))
            rc = parse_int("--jobs", v, 1, 4096, &a->jobs), i++;
        else if (!strcmp(f, "--per-gpu"))
            rc = parse_int("--per-gpu", v, 1, 256, &a->per_gpu), i++;
        else if (!strcmp(f, "--gpus-per-task"))
            rc = parse_int("--gpus-per-task", v, 0, 64, &a->so.gpus), i++;
        else if (!strcmp(f, "--signal-seconds"))
            rc = parse_int("--signal-seconds", v, 10, 86400, &a->so.signal_seconds), i++;
        else if (!strcmp(f, "--partition") || !strcmp(f, "--time")) {
            if (!v || !*v || strpbrk(v, " \t\n'\"\\$`"))
                return vae_cli_usage_error("sweep", "%s needs a plain value (no spaces or quotes)", f);
            *(!strcmp(f, "--time") ? &a->so.time : &a->so.partition) = v;
            i++;
        } else
            rest[(*n_rest)++] = argv[i];
        if (rc >= 0)
            return rc;
    }
    if (!a->slurm && (a->so.partition || a->so.time || a->so.gpus))
        return vae_cli_usage_error("sweep", "--partition, --time and --gpus-per-task go with --slurm");
    return -1;
}

/* The devices of a local sweep: GPUs unless the plan's runs say --device cpu (or no usable GPU). */
static void devices(const vae_sweep_plan *p, const sweep_args *a, vae_sweep_exec_options *o)
{
    const char *device = "auto";
    for (int i = 0; p->n_runs && i + 1 < p->runs[0].argc; i++)
        if (!strcmp(p->runs[0].argv[i], "--device"))
            device = p->runs[0].argv[i + 1];
    int gpus = vae_cuda_device_count();
    if (!strcmp(device, "cpu") || (!strcmp(device, "auto") && vae_cuda_is_emulated()))
        gpus = 0;
    o->n_gpus = gpus;
    o->per_gpu = a->per_gpu ? a->per_gpu : VAE_SWEEP_PER_GPU_DEFAULT;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = p->n_runs ? p->runs[0].threads : 1;
    o->jobs = a->jobs ? a->jobs : (int)(cores / (threads > 0 ? threads : 1));
    if (o->jobs < 1)
        o->jobs = 1;
    o->quiet = a->quiet;
}

/* Whether dir holds anything but a sweep's files (and the lock file). */
static int holds_other_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int other = 0;
    while ((e = readdir(d)))
        other |= strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, VAE_RUN_LOCK_FILE);
    closedir(d);
    return other;
}

static int new_sweep(sweep_args *a, int argc, char **argv)
{
    if (!a->out)
        return vae_cli_usage_error("sweep", "--out DIR is required: the sweep directory (or `cuvae sweep DIR` to "
                                            "continue one)");
    char dir[PATH_MAX];
    if (absolute(a->out, dir, sizeof dir))
        return vae_cli_fail();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = a->jobs ? (int)(cores / a->jobs) : 1;
    vae_sweep_plan plan;
    if (vae_sweep_expand(argc, argv, dir, a->zip, threads < 1 ? 1 : threads, &plan))
        return vae_cli_usage_error("sweep", "%s", vae_last_error());
    if (a->dry_run) {
        vae_sweep_plan_print(&plan, stdout);
        vae_sweep_plan_free(&plan);
        return 0;
    }
    int rc = 0;
    vae_sweep_plan old;
    char plan_path[PATH_MAX + 16];
    snprintf(plan_path, sizeof plan_path, "%s/%s", dir, VAE_SWEEP_PLAN);
    if (vae_run_dir_check_writable(dir) || vae_sweep_lock(dir, 0)) {
        rc = vae_cli_fail();
        goto out;
    }
    if (access(plan_path, F_OK) == 0) {
        if (vae_sweep_plan_read(dir, &old)) {
            rc = vae_cli_fail();
            goto out;
        }
        int same = vae_sweep_plan_same(&old, &plan);
        vae_sweep_plan_free(&old);
        if (!same) {
            rc = vae_cli_usage_error("sweep", "--out %s holds the plan of another sweep (%s); continue that one with "
                                              "`cuvae sweep %s`, or give another --out",
                                     a->out, plan_path, a->out);
            goto out;
        }
        fprintf(stderr, "sweep %s: the same plan is there already; continuing it\n", dir);
    } else {
        if (holds_other_files(dir)) {
            rc = vae_cli_usage_error("sweep", "--out %s holds files but no sweep plan; give a new or empty directory",
                                     a->out);
            goto out;
        }
        char *text = vae_sweep_plan_text(&plan);
        int bad = vae_run_write_text(dir, VAE_SWEEP_PLAN, text, strlen(text));
        vae_free(text);
        if (bad) {
            rc = vae_cli_fail();
            goto out;
        }
        fprintf(stderr, "wrote %s: %d runs\n", plan_path, plan.n_runs);
    }
    if (a->slurm) {
        char path[PATH_MAX + 16];
        a->so.cpus = plan.runs[0].threads;
        if (!a->so.signal_seconds)
            a->so.signal_seconds = 120;
        if (vae_sweep_write_slurm(&plan, &a->so, path, sizeof path)) {
            rc = vae_cli_fail();
            goto out;
        }
        fprintf(stderr, "wrote %s; submit it with: sbatch %s\n", path, path);
        goto out;
    }
    vae_sweep_exec_options o;
    devices(&plan, a, &o);
    rc = vae_sweep_execute(&plan, &o);
out:
    vae_sweep_plan_free(&plan);
    return rc;
}

static int continue_sweep(const char *dir, sweep_args *a)
{
    if (a->out || a->zip || a->dry_run || a->slurm)
        return vae_cli_usage_error("sweep", "`cuvae sweep DIR` continues the plan in DIR; it takes --jobs, --per-gpu "
                                            "and --quiet only");
    vae_sweep_plan plan;
    if (vae_sweep_plan_read(dir, &plan))
        return vae_cli_fail();
    int rc;
    if (vae_sweep_lock(plan.dir, 0))
        rc = vae_cli_fail();
    else {
        vae_sweep_exec_options o;
        devices(&plan, a, &o);
        rc = vae_sweep_execute(&plan, &o);
    }
    vae_sweep_plan_free(&plan);
    return rc;
}

static int run_task(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--index") != 0 || argv[0][0] == '-')
        return vae_cli_usage_error("sweep run", "usage: cuvae sweep run DIR --index I");
    int index;
    if (vae_cli_parse_int("--index", argv[2], 0, VAE_SWEEP_MAX_RUNS - 1, &index))
        return vae_cli_usage_error("sweep run", "%s", vae_last_error());
    vae_sweep_plan plan;
    if (vae_sweep_plan_read(argv[0], &plan))
        return vae_cli_fail();
    int rc = vae_sweep_lock(plan.dir, 1) ? vae_cli_fail() : vae_sweep_run_one(&plan, index);
    vae_sweep_plan_free(&plan);
    return rc;
}

static int report(int argc, char **argv)
{
    const char *sort = NULL;
    int iw = 0;
    if (argc < 1 || argv[0][0] == '-')
        return vae_cli_usage_error("sweep report", "usage: cuvae sweep report DIR [--sort COLUMN] [--iw-samples K]");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sort") && i + 1 < argc && argv[i + 1][0])
            sort = argv[++i];
        else if (!strcmp(argv[i], "--iw-samples") && i + 1 < argc) {
            if (vae_cli_parse_int("--iw-samples", argv[++i], 1, 1000000, &iw))
                return vae_cli_usage_error("sweep report", "%s", vae_last_error());
        } else
            return vae_cli_usage_error("sweep report",
                                       "unexpected '%s' (usage: cuvae sweep report DIR [--sort COLUMN] [--iw-samples K])",
                                       argv[i]);
    }
    vae_sweep_plan plan;
    if (vae_sweep_plan_read(argv[0], &plan))
        return vae_cli_fail();
    int rc = vae_sweep_report(&plan, sort, iw, stderr);
    vae_sweep_plan_free(&plan);
    return rc == 2 ? vae_cli_usage_error("sweep report", "%s", vae_last_error()) : rc < 0 ? vae_cli_fail() : 0;
}

int vae_cmd_sweep(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "run"))
        return run_task(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "report"))
        return report(argc - 2, argv + 2);
    sweep_args a = {0};
    char **rest = vae_calloc((size_t)argc + 1, sizeof *rest);
    int n_rest, rc = parse_own(argc - 1, argv + 1, &a, rest, &n_rest);
    if (rc < 0) {
        if (n_rest >= 1 && strncmp(rest[0], "--", 2) != 0) /* cuvae sweep DIR */
            rc = n_rest == 1 ? continue_sweep(rest[0], &a)
                             : vae_cli_usage_error("sweep", "`cuvae sweep DIR` takes no train flags: '%s'", rest[1]);
        else if (n_rest == 0 && !a.out)
            rc = vae_cli_usage_error("sweep", "give a sweep directory to continue, or --out DIR and train flags");
        else
            rc = new_sweep(&a, n_rest, rest);
    }
    vae_free(rest);
    return rc;
}
