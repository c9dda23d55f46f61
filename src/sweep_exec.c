/*
 * sweep_exec.c: driving a sweep's runs (sweep.h). Each run is its own `cuvae train` process (a
 * new run, or `train --resume` of an interrupted one) in its own process group, so a terminal's
 * Ctrl-C reaches the sweep alone and the sweep forwards exactly one signal to each run (a second
 * one would end a run without its checkpoint). Runs on the CPU get the --threads of the plan,
 * `jobs` at a time; on GPUs, `per_gpu` at a time on each, with --device cuda:N. Each attempt's
 * output is appended to DIR/logs/NAME.log.
 *
 * The sweep directory's lock (DIR/.cuvae.lock): exclusive for a local sweep, shared for each
 * Slurm task (`cuvae sweep run`), so a local sweep and a Slurm one never drive the same runs.
 */
#define _GNU_SOURCE
#include "sweep.h"

#include "cli.h"
#include "run_dir.h"
#include "vae_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

/* SIGINT and SIGTERM set stop_signal and interrupt a blocking wait (no SA_RESTART). */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int vae_sweep_lock(const char *dir, int shared)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, VAE_RUN_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return vae_set_error("sweep %s: cannot open its lock file: %s", dir, strerror(errno));
    struct flock fl = {.l_type = shared ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    int busy = flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (!busy && fcntl(fd, F_SETLK, &fl) != 0 && (errno == EACCES || errno == EAGAIN))
        busy = 1;
    if (busy) {
        close(fd);
        return vae_set_error("sweep %s is in use: %s holds its lock (%s); wait for it to end", dir,
                             shared ? "a local `cuvae sweep`" : "another `cuvae sweep` or a Slurm task of it", path);
    }
    return 0;
}

/* ---- one attempt of one run ---------------------------------------------------------------- */

static int has_flag(const vae_sweep_run *run, const char *flag)
{
    for (int i = 0; i < run->argc; i++)
        if (!strcmp(run->argv[i], flag))
            return 1;
    return 0;
}

/* Start run i: `train --resume` when it has a checkpoint, else its train command (--force when
 * an earlier attempt left run files but no checkpoint); device NULL: as the plan says. The
 * child's pid, or -1 with vae_set_error. */
static pid_t launch(const vae_sweep_plan *p, int i, const char *device)
{
    const vae_sweep_run *run = &p->runs[i];
    char **argv = vae_calloc((size_t)run->argc + 10, sizeof *argv), threads[24];
    int argc = 0, resume = vae_sweep_run_state(p, i) == VAE_SWEEP_INTERRUPTED;
    snprintf(threads, sizeof threads, "%d", run->threads);
    argv[argc++] = p->cuvae;
    if (resume) {
        argv[argc++] = "train";
        argv[argc++] = "--resume";
        argv[argc++] = run->dir;
        argv[argc++] = "--threads";
        argv[argc++] = threads;
        for (int k = 0; k + 1 < run->argc; k++) /* the plan's own --device, which a resume takes too */
            if (!strcmp(run->argv[k], "--device")) {
                argv[argc++] = "--device";
                argv[argc++] = run->argv[k + 1];
            }
    } else {
        for (int k = 0; k < run->argc; k++)
            argv[argc++] = run->argv[k];
        if (vae_run_dir_count_files(run->dir) > 0)
            argv[argc++] = "--force"; /* a killed attempt's files, before its first checkpoint */
    }
    if (device && !has_flag(run, "--device")) {
        argv[argc++] = "--device";
        argv[argc++] = (char *)device;
    }
    char logs[PATH_MAX + 16], log_path[PATH_MAX + 300];
    snprintf(logs, sizeof logs, "%s/logs", p->dir);
    snprintf(log_path, sizeof log_path, "%s/%s.log", logs, run->name);
    if (mkdir(logs, 0755) != 0 && errno != EEXIST) {
        vae_free(argv);
        return vae_set_error("%s: %s", logs, strerror(errno));
    }
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        vae_free(argv);
        return vae_set_error("%s: %s", log_path, strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* a terminal's Ctrl-C reaches the sweep, which forwards it once */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv(p->cuvae, argv);
        fprintf(stderr, "cuvae sweep: cannot run %s: %s\n", p->cuvae, strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(log_fd);
    vae_free(argv);
    if (pid < 0)
        return vae_set_error("fork: %s", strerror(e));
    return pid;
}

/* How an attempt ended. */
typedef enum { ENDED_FINISHED, ENDED_STOPPED, ENDED_CRASHED, ENDED_FAILED } ended;

static ended classify(int status, int stopping)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return ENDED_FINISHED;
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 128 + SIGINT || WEXITSTATUS(status) == 128 + SIGTERM))
        return stopping ? ENDED_STOPPED : ENDED_CRASHED; /* a signal it was not sent by us: a lost node */
    if (WIFSIGNALED(status))
        return stopping ? ENDED_STOPPED : ENDED_CRASHED;
    return ENDED_FAILED; /* 1 a failure, 2 a usage error, 3 divergence: the same again on a retry */
}

/* The last line of the run's log, for failed/NAME and the message. */
static void last_log_line(const vae_sweep_plan *p, int i, char *out, size_t cap)
{
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/logs/%s.log", p->dir, p->runs[i].name);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(out, cap, "%s", line);
    if (f)
        fclose(f);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n')
        out[n - 1] = 0;
}

static void record_failure(const vae_sweep_plan *p, int i, int status)
{
    char dir[PATH_MAX + 16], line[2048], text[2300];
    snprintf(dir, sizeof dir, "%s/failed", p->dir);
    mkdir(dir, 0755);
    last_log_line(p, i, line, sizeof line);
    int n = snprintf(text, sizeof text, "exit %d: %s\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                     line);
    if (vae_run_write_text(dir, p->runs[i].name, text, (size_t)n))
        fprintf(stderr, "cuvae sweep: %s\n", vae_last_error());
}

/* ---- the sweep ---------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int run;
    double started;
} slot;

int vae_sweep_execute(const vae_sweep_plan *p, const vae_sweep_exec_options *o)
{
    catch_stop_signals();
    const int n_slots = o->n_gpus ? o->n_gpus * o->per_gpu : o->jobs;
    slot *slots = vae_calloc((size_t)n_slots, sizeof *slots);
    /* every run at most twice in the queue: its first attempt and one retry after a crash */
    int *queue = vae_calloc((size_t)2 * p->n_runs, sizeof *queue), *tries = vae_calloc((size_t)p->n_runs, sizeof *tries);
    int n_queue = 0, head = 0, finished = 0, failed = 0, running = 0, done_here = 0;
    double busy_s = 0;
    for (int i = 0; i < p->n_runs; i++) {
        vae_sweep_state s = vae_sweep_run_state(p, i);
        finished += s == VAE_SWEEP_FINISHED;
        failed += s == VAE_SWEEP_FAILED;
        if (s == VAE_SWEEP_NEW || s == VAE_SWEEP_INTERRUPTED)
            queue[n_queue++] = i;
        if (s == VAE_SWEEP_FAILED && !o->quiet) {
            char path[PATH_MAX + 300], why[2400] = "";
            snprintf(path, sizeof path, "%s/failed/%s", p->dir, p->runs[i].name);
            char *text = vae_read_text(path, 4096, NULL);
            if (text)
                snprintf(why, sizeof why, "%s", text);
            vae_free(text);
            fprintf(stderr, "sweep: run %s failed before and is not run again (%s): %s", p->runs[i].name, path,
                    why[0] ? why : "\n");
        }
    }
    if (!o->quiet)
        fprintf(stderr, "sweep %s: %d runs, %d finished, %d failed, %d to run (%d at a time on %s)\n", p->dir,
                p->n_runs, finished, failed, n_queue, n_slots, o->n_gpus ? "the GPUs" : "the CPU");
    int rc = 0;
    while ((head < n_queue && !stop_signal) || running) {
        for (int s = 0; s < n_slots && head < n_queue && !stop_signal; s++) {
            if (slots[s].pid)
                continue;
            char device[32];
            if (o->n_gpus)
                snprintf(device, sizeof device, "cuda:%d", s / o->per_gpu);
            else
                snprintf(device, sizeof device, "cpu");
            int i = queue[head++];
            pid_t pid = launch(p, i, device);
            if (pid < 0) {
                fprintf(stderr, "cuvae sweep: run %s: %s\n", p->runs[i].name, vae_last_error());
                failed++;
                continue;
            }
            slots[s] = (slot){.pid = pid, .run = i, .started = now_s()};
            tries[i]++;
            running++;
        }
        if (!running)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno != EINTR)
                vae_fatal("waitpid: %s", strerror(errno));
            if (stop_signal) /* forward the signal once to every run, then wait for them */
                for (int s = 0; s < n_slots; s++)
                    if (slots[s].pid && slots[s].pid > 0)
                        kill(slots[s].pid, stop_signal), slots[s].pid = -slots[s].pid;
            continue;
        }
        int s = 0;
        while (s < n_slots && slots[s].pid != pid && slots[s].pid != -pid)
            s++;
        if (s == n_slots)
            continue;
        const int i = slots[s].run;
        busy_s += now_s() - slots[s].started;
        slots[s].pid = 0;
        running--;
        char line[2048];
        switch (classify(status, stop_signal != 0)) {
        case ENDED_FINISHED:
            finished++;
            done_here++;
            break;
        case ENDED_STOPPED: break;
        case ENDED_CRASHED:
            last_log_line(p, i, line, sizeof line);
            if (tries[i] < 2) {
                fprintf(stderr, "sweep: run %s ended by a signal it was not sent (%s); trying it once more\n",
                        p->runs[i].name, line);
                queue[n_queue++] = i;
                break;
            }
            failed++;
            fprintf(stderr, "sweep: run %s crashed again (%s); see %s/logs/%s.log\n", p->runs[i].name, line, p->dir,
                    p->runs[i].name);
            break;
        case ENDED_FAILED:
            failed++;
            record_failure(p, i, status);
            last_log_line(p, i, line, sizeof line);
            fprintf(stderr, "sweep: run %s failed (exit %d): %s\n", p->runs[i].name,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, line);
            break;
        }
        if (!o->quiet) {
            int waiting = n_queue - head;
            fprintf(stderr, "sweep: %d/%d finished, %d running, %d failed, %d waiting", finished, p->n_runs, running,
                    failed, waiting);
            if (done_here && waiting + running > 0 && !stop_signal) {
                double eta = busy_s / done_here * (waiting + running) / n_slots;
                fprintf(stderr, ", about %.0f s left", eta);
            }
            fputc('\n', stderr);
        }
    }
    if (stop_signal) {
        fprintf(stderr, "sweep stopped by %s: every run that was running wrote its checkpoint; `cuvae sweep %s` "
                        "continues it\n", strsignal(stop_signal), p->dir);
        rc = 128 + stop_signal;
    } else
        rc = failed > 100 ? 100 : failed;
    if (!stop_signal && !o->quiet)
        fprintf(stderr, "sweep %s: %d of %d runs finished, %d failed\n", p->dir, finished, p->n_runs, failed);
    vae_free(slots);
    vae_free(queue);
    vae_free(tries);
    return rc;
}

int vae_sweep_run_one(const vae_sweep_plan *p, int index)
{
    if (index < 0 || index >= p->n_runs)
        return vae_cli_usage_error("sweep run", "--index %d: the plan has runs 0 to %d", index, p->n_runs - 1);
    const vae_sweep_run *run = &p->runs[index];
    if (vae_sweep_run_state(p, index) == VAE_SWEEP_FINISHED) {
        fprintf(stderr, "sweep run %s: finished already\n", run->name);
        return 0;
    }
    catch_stop_signals();
    pid_t pid = launch(p, index, NULL);
    if (pid < 0)
        return vae_cli_fail();
    int status, forwarded = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            vae_fatal("waitpid: %s", strerror(errno));
        if (stop_signal && !forwarded) {
            kill(pid, stop_signal);
            forwarded = 1;
        }
    }
    ended e = classify(status, stop_signal != 0);
    if (e == ENDED_FINISHED)
        return 0;
    if (e == ENDED_FAILED) {
        record_failure(p, index, status);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    const char *job = getenv("SLURM_JOB_ID");
    if (e == ENDED_STOPPED && job && *job) {
        /* Slurm never requeues a task that reached its time limit: this one asks for it, and its
         * checkpoint is where the requeued task continues */
        fprintf(stderr, "sweep run %s: stopped by %s with its checkpoint; requeueing job %s\n", run->name,
                strsignal(stop_signal), job);
        pid_t q = fork();
        if (q == 0) {
            execlp("scontrol", "scontrol", "requeue", job, (char *)NULL);
            _exit(127);
        }
        int qs;
        if (q > 0 && waitpid(q, &qs, 0) == q && WIFEXITED(qs) && WEXITSTATUS(qs) == 0)
            return 0;
        fprintf(stderr, "sweep run %s: scontrol requeue %s failed; run the task again to continue\n", run->name, job);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
