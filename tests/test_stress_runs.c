/*
 * test_stress_runs.c: issue 19's stress tests, with real cuvae processes.
 *
 * Signals: chains of runs on the CPU backend, each run sent SIGINT or SIGTERM
 * at a seeded random moment (start-up, training, checkpoints, the model and
 * pictures after the last epoch, the exit) and resumed until one finishes;
 * every signal that reaches a live process must end it with 128 + signal,
 * with an interrupt checkpoint or a line saying nothing was written yet (or,
 * before main() has run, with the signal's default action and nothing
 * printed; or, once the run printed its last line and is exiting, with exit
 * 0: the kernel drops a signal to a process it is tearing down), and
 * every chain must end bit for bit as the uninterrupted run (metrics and
 * model.safetensors). On 1 and on 2 threads. Before the signals were taken
 * by a thread of their own, a handler running inside oneDNN's GEMM corrupted
 * the heap (exit 134 or 139, no checkpoint) and a signal after the last
 * epoch ended in exit 0.
 *
 * Locks: rounds of three processes started together on one run directory,
 * each a new train, a --force train or a --resume: at most one may exit 0
 * having trained, the others are refused (exit 2 naming the directory and a
 * sibling's pid, or for their own reasons: a previous run without --force, no
 * checkpoint yet) or, a --resume that held the lock before or after the
 * writer, find the run finished and train nothing (exit 0); the directory then
 * holds exactly one run: the winner's metrics, equal to a reference run of its
 * seed, and its provenance block last (or a finished-run resume's after it).
 *
 * Sizes: CUVAE_STRESS_SIGNALS signals per thread count (default 20) and
 * CUVAE_STRESS_ROUNDS lock rounds (default 20), CUVAE_STRESS_SEED (default
 * 19) for the moments; scripts/stress_runs.sh runs the long version.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char out[65536];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

static uint64_t rng_state;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Start cuvae with args in the background, its output to log; its pid. */
static pid_t spawn(const char *args, const char *log)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s %s >%s 2>&1", CUVAE_BINARY, args, log);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Wait until pid runs the cuvae binary (the shell before it has exec'd it), so that a signal
 * reaches cuvae and not the shell. */
static void wait_exec(pid_t pid)
{
    char proc[64], exe[4096], want[4096];
    cr_assert(realpath(CUVAE_BINARY, want), "%s", CUVAE_BINARY);
    snprintf(proc, sizeof proc, "/proc/%d/exe", (int)pid);
    for (int i = 0; i < 100000; i++) {
        ssize_t n = readlink(proc, exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            if (strcmp(exe, want) == 0)
                return;
        }
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("pid %d never ran %s", (int)pid, want);
}

static int status_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

static int wait_status(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return status_code(st);
}

/* wait_status, and whether the signal's default action ended the process (*killed). */
static int wait_killed(pid_t pid, int *killed)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    *killed = WIFSIGNALED(st);
    return status_code(st);
}

/* Whether pid has ended (it stays a zombie, to be reaped by wait_status). */
static int has_ended(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static const char *slurp(const char *dir, const char *name)
{
    static char *last;
    free(last);
    last = tu_slurp_in(dir, name, NULL);
    return last ? last : "";
}

static int same_file(const char *a, const char *b)
{
    char cmd[2048], o[512];
    snprintf(cmd, sizeof cmd, "cmp %s %s", a, b);
    return tu_run(cmd, o, sizeof o) == 0;
}

/* ---- signals -------------------------------------------------------------------- */

/* The default model's layer sizes (784-400-20), whose GEMMs are the ones that crashed. */
#define SIG_SET "--hidden 400 --latent 20 --batch-size 64 --lr 1e-3 --device cpu --quiet --epochs 3"

static void stress_signals(int threads)
{
    const int want = env_int("CUVAE_STRESS_SIGNALS", 20);
    /* OpenMP's idle threads sleep instead of spinning: on a busy machine, spinning threads make two-thread
     * runs many times slower; the results do not depend on it */
    setenv("OMP_WAIT_POLICY", "passive", 1);
    rng_state = (uint64_t)env_int("CUVAE_STRESS_SEED", 19) * 1000 + (uint64_t)threads;
    char data[512], ref[600], run[700], args[4096], log[700], a[8192], b[8192], pa[800], pb[800];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 2000, 200, 28);
    snprintf(ref, sizeof ref, "%s/ref", data);
    snprintf(log, sizeof log, "%s/log", data);
    char set[256];
    snprintf(set, sizeof set, SIG_SET " --threads %d", threads);

    snprintf(args, sizeof args, "train --data %s --out %s %s", data, ref, set);
    double t0 = now_s();
    cr_assert_eq(wait_status(spawn(args, log)), 0, "%s", slurp(data, "log"));
    const double whole = now_s() - t0;
    tu_metrics_losses(ref, a, sizeof a);
    snprintf(pa, sizeof pa, "%s/model.safetensors", ref);

    int sent = 0, missed = 0, chains = 0, before_main = 0, at_exit = 0, setup = 0, training = 0, after_last = 0, done_phase = 0;
    /* A busy machine stretches the runs unevenly, so fewer of the random moments may fall in
     * training: then more signals are sent (up to three times as many) until a quarter of the
     * asked-for count has. */
    const int min_training = want / 4;
    int enough = 0;
    while (!enough) {
        snprintf(run, sizeof run, "%s/chain%d", data, chains++);
        for (;;) {
            int resume = tu_exists_in(run, "checkpoint.safetensors");
            if (resume)
                snprintf(args, sizeof args, "train --resume %s", run);
            else
                snprintf(args, sizeof args, "train --data %s --out %s --force %s", data, run, set);
            pid_t pid = spawn(args, log);
            enough = sent >= want && (training >= min_training || sent >= 3 * want);
            if (enough) { /* the chain's last run goes to its end */
                int rc = wait_status(pid);
                cr_assert_eq(rc, 0, "chain %d's last run: exit %d\n%s", chains - 1, rc, slurp(data, "log"));
                break;
            }
            double delay = uniform() * 1.1 * whole;
            wait_exec(pid);
            sleep_s(delay);
            if (has_ended(pid)) { /* it finished first: no signal was sent */
                int rc = wait_status(pid);
                cr_assert_eq(rc, 0, "a run that was sent no signal: exit %d\n%s", rc, slurp(data, "log"));
                missed++;
                break;
            }
            int sig = uniform() < 0.5 ? SIGINT : SIGTERM;
            /* its last line printed, the run is complete and on its way out: a signal that meets the
             * process already exiting (the kernel tearing it down) is lost, as it would be for any program */
            int ending = strstr(slurp(data, "log"), "\nwrote ") != NULL;
            cr_assert_eq(kill(pid, sig), 0);
            sent++;
            int killed, rc = wait_killed(pid, &killed);
            const char *l = slurp(data, "log");
            if (killed) { /* before main() blocked the signals: the dynamic loader's moment; nothing printed */
                cr_assert_eq(l[0], 0, "signal %d: the default action ended a run that had started:\n%s", sent, l);
                before_main++;
                continue;
            }
            if (ending && rc == 0) {
                at_exit++;
                break;
            }
            cr_assert_eq(rc, 128 + sig, "signal %d (%s after %.3f s, %s, %d threads): exit %d, not %d\n%s", sent,
                         sig == SIGINT ? "SIGINT" : "SIGTERM", delay, resume ? "a resume" : "a new run", threads, rc,
                         128 + sig, l);
            if (strstr(l, "before training began: nothing was written")) {
                setup++;
            } else if (strstr(l, "after the run had written its files") || strstr(l, "as the run ended")) {
                done_phase++;
            } else {
                cr_assert(strstr(l, "interrupted ") && strstr(l, "resume"), "signal %d: no interrupt line\n%s", sent,
                          l);
                if (strstr(l, "after the last epoch"))
                    after_last++;
                else
                    training++;
            }
            if (!strstr(l, "before training began"))
                cr_assert(tu_exists_in(run, "checkpoint.safetensors"), "signal %d: no checkpoint\n%s", sent, l);
        }
        tu_metrics_losses(run, b, sizeof b);
        cr_assert_str_eq(b, a, "%s: metrics after signals and resumes differ from the uninterrupted run's", run);
        snprintf(pb, sizeof pb, "%s/model.safetensors", run);
        cr_assert(same_file(pa, pb), "%s: the model differs from the uninterrupted run's", run);
    }
    fprintf(stderr,
            "signals, %d thread%s: %d sent in %d chains, all ended in 130/143 and resumed bit for bit (%d before "
            "main, %d in start-up, %d in training, %d after the last epoch, %d after the files were written, %d in "
            "the exit after the last line (exit 0); %d runs finished before their moment)\n",
            threads, threads > 1 ? "s" : "", sent, chains, before_main, setup, training, after_last, done_phase,
            at_exit, missed);
    cr_expect(training >= min_training, "only %d of %d signals fell in training", training, sent);
}

Test(stress, signals_at_random_moments_one_thread, .timeout = 600) { stress_signals(1); }
Test(stress, signals_at_random_moments_two_threads, .timeout = 600) { stress_signals(2); }

/* ---- locks ---------------------------------------------------------------------- */

#define LOCK_SET "--hidden 64 --latent 4 --batch-size 8 --lr 1e-3 --device cpu --threads 1 --quiet --epochs 2"

enum { KIND_NEW, KIND_FORCE, KIND_RESUME };

/* The last provenance block in prov: from its last "started: " or "resumed: " on. */
static const char *last_block(const char *prov)
{
    const char *last = prov;
    static const char *const heads[] = {"started: ", "resumed: "};
    for (int h = 0; h < 2; h++)
        for (const char *p = prov; (p = strstr(p, heads[h])); p++)
            if (p > last)
                last = p;
    return last;
}

Test(stress, one_writer_per_run_directory, .timeout = 600)
{
    const int rounds = env_int("CUVAE_STRESS_ROUNDS", 20);
    rng_state = (uint64_t)env_int("CUVAE_STRESS_SEED", 19) * 7919;
    char data[512], dir[600], refs[4][8192], path[700], args[4096], logs[3][700], a[8192];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    for (int k = 1; k <= 3; k++) { /* the reference run of each seed */
        snprintf(path, sizeof path, "%s/ref%d", data, k);
        cr_assert_eq(cuvae("train --data %s --out %s --seed %d " LOCK_SET, data, path, k), 0, "%s", out);
        tu_metrics_losses(path, refs[k], sizeof refs[k]);
    }
    snprintf(dir, sizeof dir, "%s/shared", data);
    int run_seed = 0, resumed_last = 0, wins = 0, in_use = 0, other = 0, late = 0;
    for (int round = 0; round < rounds; round++) {
        pid_t pid[3];
        int kind[3], rc[3];
        for (int i = 0; i < 3; i++) {
            kind[i] = (int)(uniform() * 3);
            if (kind[i] == KIND_RESUME)
                snprintf(args, sizeof args, "train --resume %s", dir);
            else
                snprintf(args, sizeof args, "train --data %s --out %s --seed %d %s " LOCK_SET, data, dir, i + 1,
                         kind[i] == KIND_FORCE ? "--force" : "");
            snprintf(logs[i], sizeof logs[i], "%s/log%d", data, i);
            pid[i] = spawn(args, logs[i]);
            sleep_s(uniform() * 0.02);
        }
        int winner = -1, late_here = 0;
        for (int i = 0; i < 3; i++) {
            rc[i] = wait_status(pid[i]);
            char *l = tu_read_file(logs[i], NULL);
            if (rc[i] == 0 && kind[i] == KIND_RESUME && strstr(l, "epochs are done; writing its model")) {
                /* a resume that found the run finished: it held the lock before or after the writer (on a
                 * busy machine one's start-up can outlast another's whole run) and trained nothing */
                late_here++;
            } else if (rc[i] == 0) {
                cr_assert_eq(winner, -1, "round %d: two processes wrote into %s and both exited 0:\n%s\n---\n%s",
                             round, dir, l, slurp(data, winner == 0 ? "log0" : "log1"));
                winner = i;
            } else if (strstr(l, "is in use")) {
                /* refused at once, naming the directory and the holder: one of the others */
                char want_dir[700];
                snprintf(want_dir, sizeof want_dir, "run directory %s is in use", dir);
                cr_assert_eq(rc[i], 2, "round %d: %s", round, l);
                cr_assert(strstr(l, want_dir), "round %d: %s", round, l);
                const char *p = strstr(l, "(pid ");
                long holder = p ? strtol(p + 5, NULL, 10) : 0;
                cr_assert(holder == pid[(i + 1) % 3] || holder == pid[(i + 2) % 3],
                          "round %d: the holder named (pid %ld) is none of the others (%d %d %d):\n%s", round,
                          holder, (int)pid[0], (int)pid[1], (int)pid[2], l);
                in_use++;
            } else {
                /* refused for its own reason, under the lock: a run there without --force, or none to resume
                 * (no checkpoint yet, or not even the directory yet) */
                cr_assert((rc[i] == 2 && strstr(l, "holds a previous run")) ||
                              (rc[i] == 1 && kind[i] == KIND_RESUME &&
                               (strstr(l, "no checkpoint.safetensors") || strstr(l, "No such file or directory"))),
                          "round %d: exit %d:\n%s", round, rc[i], l);
                other++;
            }
            free(l);
        }
        if (winner >= 0) {
            wins++;
            if (kind[winner] != KIND_RESUME)
                run_seed = winner + 1;
            resumed_last = kind[winner] == KIND_RESUME;
            cr_assert(run_seed > 0, "round %d: a resume won where no run was", round);
        }
        late += late_here;
        cr_assert(!late_here || run_seed > 0, "round %d: a finished run was resumed where none was", round);
        if (run_seed) { /* the directory holds one run: the last winner's */
            tu_metrics_losses(dir, a, sizeof a);
            cr_assert_str_eq(a, refs[run_seed], "round %d: %s's metrics are not those of seed %d's run", round, dir,
                             run_seed);
            const char *blk = last_block(slurp(dir, "provenance.txt"));
            char want[64];
            snprintf(want, sizeof want, "--seed %d", run_seed);
            const int resumed = strncmp(blk, "resumed: ", 9) == 0;
            if (late_here) { /* the finished run's resume came before or after the winner: either is last */
                cr_assert(resumed || strstr(blk, want), "round %d: provenance's last block:\n%s", round, blk);
                resumed_last = resumed;
            } else if (resumed_last)
                cr_assert(resumed, "round %d: provenance's last block:\n%s", round, blk);
            else
                cr_assert(strstr(blk, want), "round %d: provenance's last block is not seed %d's:\n%s", round,
                          run_seed, blk);
        }
    }
    fprintf(stderr,
            "locks: %d rounds of 3 processes on one directory: %d won (exit 0, one at most per round), %d refused "
            "as in use naming the holder, %d refused for their own reason, %d resumed the run after it had "
            "finished\n",
            rounds, wins, in_use, other, late);
    cr_expect(in_use >= rounds, "only %d refusals for a directory in use in %d rounds", in_use, rounds);
}
