/*
 * test_runs.c: run directories as a user meets them, through the cuvae
 * program: an --out holding a run is refused (exit 2) unless --force; default
 * run directories never collide; provenance is recorded; --resume continues a
 * run bit for bit and refuses changed settings; SIGINT/SIGTERM leave a
 * checkpoint and exit 130/143; kill -9 at seeded random moments always leaves
 * a run that resumes to the uninterrupted result; stale .tmp files go; eval and
 * reconstruct use the model's recorded, checksummed data; a non-UTF-8 --data
 * path is recorded escaped; an unwritable --out is reported before the data
 * is loaded; --val-fraction adds validation columns and best.safetensors.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "backend.h"
#include "run_dir.h"
#include "train_state.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char out[65536];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

/* The whole text of dir/name, or "" when absent; valid until the next call, so that it can stand
 * inside an expression. */
static const char *slurp(const char *dir, const char *name)
{
    static char *last;
    free(last);
    last = tu_slurp_in(dir, name, NULL);
    return last ? last : "";
}

#define SMALL "--hidden 16 --latent 3 --batch-size 16 --lr 3e-3 --device cpu --quiet"

Test(runs, out_holding_a_run_is_refused_unless_force)
{
    char data[512], run[600];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s " SMALL, data, run), 0, "%s", out);
    char first[4096];
    snprintf(first, sizeof first, "%s", slurp(run, "metrics.csv"));

    int rc = cuvae("train --data %s --epochs 2 --out %s " SMALL, data, run);
    cr_expect_eq(rc, 2, "a second run into the same --out: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "holds a previous run") && strstr(out, "--force") && strstr(out, "--resume"), "%s", out);
    cr_expect_str_eq(slurp(run, "metrics.csv"), first, "the refused run touched metrics.csv");

    /* a file of someone else's stays; cuvae's files are replaced */
    char keep[700];
    snprintf(keep, sizeof keep, "%s/notes.txt", run);
    tu_write_file(keep, "mine", 4);
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s --force " SMALL, data, run), 0, "%s", out);
    cr_expect(tu_exists_in(run, "notes.txt"), "--force removed a file that is not cuvae's");
    const char *m = slurp(run, "metrics.csv");
    cr_expect(strstr(m, "\n2,") != NULL && strstr(m, "\n3,") == NULL, "metrics after --force:\n%s", m);

    /* an empty directory is fine */
    char empty[700];
    snprintf(empty, sizeof empty, "%s/empty", data);
    mkdir(empty, 0755);
    cr_expect_eq(cuvae("train --data %s --epochs 1 --out %s " SMALL, data, empty), 0, "%s", out);
}

Test(runs, default_out_is_unique_for_runs_started_together)
{
    char data[512], cmd[8192];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(cmd, sizeof cmd,
             "cd %s && for i in 1 2 3; do %s train --data %s --epochs 2 " SMALL " & done; wait", data,
             CUVAE_BINARY, data);
    tu_run(cmd, out, sizeof out);
    char models[600];
    snprintf(models, sizeof models, "%s/models", data);
    DIR *d = opendir(models);
    cr_assert_not_null(d, "no models/ directory:\n%s", out);
    int runs = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        runs++;
        char run[1200];
        snprintf(run, sizeof run, "%s/%s", models, e->d_name);
        cr_expect(strncmp(e->d_name, "vae-", 4) == 0, "%s", e->d_name);
        const char *m = slurp(run, "metrics.csv");
        int rows = 0;
        for (const char *p = m; (p = strchr(p, '\n')); p++)
            rows++;
        cr_expect_eq(rows, 3, "%s: %d lines in metrics.csv (runs mixed?):\n%s", run, rows, m);
        cr_expect(tu_exists_in(run, "model.safetensors"), "%s lacks its model", run);
    }
    closedir(d);
    cr_expect_eq(runs, 3, "3 runs started together made %d directories:\n%s", runs, out);
}

Test(runs, provenance_records_command_version_host_and_data)
{
    char data[512], run[600];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s " SMALL, data, run), 0, "%s", out);
    const char *p = slurp(run, "provenance.txt");
    cr_expect(strstr(p, "command: ") && strstr(p, "train --data") && strstr(p, "--epochs 1"), "%s", p);
    cr_expect(strstr(p, "\nversion: ") && strstr(p, "\ncommit: ") && strstr(p, "\nhost: "), "%s", p);
    /* SHA-256 of the 8-byte-header label file is checked by recomputing it with sha256sum */
    char cmd[1024], sum[256];
    snprintf(cmd, sizeof cmd, "sha256sum %s/t10k-labels-idx1-ubyte | cut -c1-64", data);
    tu_run(cmd, sum, sizeof sum);
    sum[64] = 0;
    cr_expect(strstr(p, sum) != NULL, "provenance lacks the labels' SHA-256 %s:\n%s", sum, p);
    cr_expect(strstr(p, "/t10k-labels-idx1-ubyte") != NULL, "%s", p);
}

Test(runs, resume_continues_bit_exactly_and_refuses_changes)
{
    char data[512], full[600], half[600], a[6000], b[6000], fa[1400], fb[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 200, 40, 8);
    snprintf(full, sizeof full, "%s/full", data);
    snprintf(half, sizeof half, "%s/half", data);
    cr_assert_eq(cuvae("train --data %s --epochs 4 --out %s " SMALL, data, full), 0, "%s", out);
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s " SMALL, data, half), 0, "%s", out);

    cr_expect_eq(cuvae("train --resume %s --epochs 4 --lr 0.01 --hidden 16", half), 2, "%s", out);
    cr_expect(strstr(out, "--lr 0.01 (the run has 0.003)") && !strstr(out, "--hidden"), "%s", out);
    /* the refusal and train --help name the same flags a resume may change */
    cr_expect(strstr(out, "only --epochs or --steps (and --device, --threads, --quiet) may change"), "%s", out);
    cr_assert_eq(cuvae("train --help"), 0, "%s", out);
    cr_expect(strstr(out, "only --epochs or --steps,\n                      --device, --threads and --quiet may change"),
              "%s", out);
    cr_expect_eq(cuvae("train --resume %s --out %s", half, full), 2, "%s", out);
    cr_expect_eq(cuvae("train --resume %s --epochs 1", half), 2, "%s", out);
    cr_expect(strstr(out, "already done 2 epochs"), "%s", out);
    /* a directory that is not there is named as such, not as a run that stopped early */
    cr_expect_eq(cuvae("train --resume %s/nothing", data), 1, "%s", out);
    cr_expect(strstr(out, "nothing: No such file or directory") && !strstr(out, "stopped before"), "%s", out);
    char empty[4096];
    snprintf(empty, sizeof empty, "%s/empty", data);
    cr_assert_eq(mkdir(empty, 0755), 0);
    cr_expect_eq(cuvae("train --resume %s", empty), 1, "%s", out);
    cr_expect(strstr(out, "no checkpoint.safetensors there") && strstr(out, "stopped before its first checkpoint"),
              "%s", out);

    cr_assert_eq(cuvae("train --resume %s --epochs 4 --data %s --batch-size 16", half, data), 0, "%s", out);
    cr_expect(strstr(out, "resuming") && strstr(out, "epoch 3, step 0"), "%s", out);
    tu_metrics_losses(full, a, sizeof a);
    tu_metrics_losses(half, b, sizeof b);
    cr_expect_str_eq(b, a, "resumed metrics differ from the uninterrupted run's");
    snprintf(fa, sizeof fa, "cmp %s/model.safetensors %s/model.safetensors", full, half);
    cr_expect_eq(tu_run(fa, fb, sizeof fb), 0, "models differ: %s", fb);
    cr_expect(strstr(slurp(half, "provenance.txt"), "resumed: "), "a resume is not recorded");
}

/* The schedules are recorded settings: a resume continues them bit for bit (a step schedule
 * and the KL warm-up do not depend on the run's length, so --epochs may grow), and refuses
 * other values; a bad schedule is a usage error naming the flag. */
Test(runs, schedules_are_recorded_and_resume_bit_exactly)
{
    char data[512], full[600], half[600], a[6000], b[6000], fa[1400], fb[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 200, 40, 8);
    snprintf(full, sizeof full, "%s/full", data);
    snprintf(half, sizeof half, "%s/half", data);
    const char *sched = "--lr-schedule step:1:0.5 --kl-warmup 1.5";
    cr_assert_eq(cuvae("train --data %s --epochs 4 --out %s %s " SMALL, data, full, sched), 0, "%s", out);
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s %s " SMALL, data, half, sched), 0, "%s", out);
    cr_expect_eq(cuvae("train --resume %s --epochs 4 --kl-warmup 2", half), 2, "%s", out);
    cr_expect(strstr(out, "--kl-warmup 2 (the run has 1.5)"), "%s", out);
    cr_expect_eq(cuvae("train --resume %s --epochs 4 --lr-schedule cosine", half), 2, "%s", out);
    cr_expect(strstr(out, "--lr-schedule cosine (the run has step:1:0.5)"), "%s", out);
    cr_assert_eq(cuvae("train --resume %s --epochs 4 --lr-schedule step:1:0.5", half), 0, "%s", out);
    tu_metrics_losses(full, a, sizeof a);
    tu_metrics_losses(half, b, sizeof b);
    cr_expect_str_eq(b, a, "resumed metrics differ from the uninterrupted run's");
    snprintf(fa, sizeof fa, "cmp %s/model.safetensors %s/model.safetensors", full, half);
    cr_expect_eq(tu_run(fa, fb, sizeof fb), 0, "models differ: %s", fb);

    /* the schedules change the run */
    char plain[600], c[6000];
    snprintf(plain, sizeof plain, "%s/plain", data);
    cr_assert_eq(cuvae("train --data %s --epochs 4 --out %s " SMALL, data, plain), 0, "%s", out);
    tu_metrics_losses(plain, c, sizeof c);
    cr_expect_str_neq(c, a, "--lr-schedule and --kl-warmup changed nothing");
    cr_expect_eq(cuvae("train --data %s --lr-schedule step:0 --out %s/bad", data, data), 2, "%s", out);
    cr_expect(strstr(out, "--lr-schedule 'step:0'"), "%s", out);
    cr_expect_eq(cuvae("train --data %s --kl-warmup -1 --out %s/bad", data, data), 2, "%s", out);
    cr_expect(strstr(out, "--kl-warmup"), "%s", out);
}

/* Start cuvae with args in the background, output to log; returns its pid. */
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

static int wait_status(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

#define LONGER "--hidden 32 --latent 4 --batch-size 4 --lr 1e-3 --device cpu --quiet --epochs 3"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void check_signal(int sig, int want_rc, int twice)
{
    char data[512], ref[600], run[600], args[4096], log[700], a[6000], b[6000];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(ref, sizeof ref, "%s/ref", data);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(log, sizeof log, "%s/log", data);
    cr_assert_eq(cuvae("train --data %s --out %s " LONGER, data, ref), 0, "%s", out);
    snprintf(args, sizeof args, "train --data %s --out %s " LONGER, data, run);
    pid_t pid = spawn(args, log);
    /* early in the second epoch, whatever the machine's speed: any moment must do */
    for (int i = 0; i < 50000 && !strstr(slurp(run, "metrics.csv"), "\n1,"); i++)
        sleep_s(0.0002);
    sleep_s(0.01);
    kill(pid, sig);
    if (twice) {
        /* the second signal ends the run at once; whatever it interrupted, the last
         * checkpoint stays whole (or there is none yet, and the run starts again) */
        kill(pid, sig);
        int rc = wait_status(pid);
        cr_expect_eq(rc, want_rc, "exit %d after two signals %d:\n%s", rc, sig, slurp(data, "log"));
        rc = tu_exists_in(run, "checkpoint.safetensors") ? cuvae("train --resume %s", run)
                                                   : cuvae("train --data %s --out %s --force " LONGER, data, run);
        cr_assert_eq(rc, 0, "%s", out);
        tu_metrics_losses(ref, a, sizeof a);
        tu_metrics_losses(run, b, sizeof b);
        cr_expect_str_eq(b, a, "metrics after two signals and a resume differ from the uninterrupted run's");
        return;
    }
    int rc = wait_status(pid);
    const char *l = slurp(data, "log");
    cr_expect_eq(rc, want_rc, "exit %d after signal %d:\n%s", rc, sig, l);
    char want[800];
    snprintf(want, sizeof want, "; resume with: cuvae train --resume %s --threads ", run);
    cr_expect(strstr(l, "interrupted at epoch ") && strstr(l, want), "%s", l);
    cr_assert(tu_exists_in(run, "checkpoint.safetensors"));
    int ep = 0, step = 0;
    fprintf(stderr, "signal test: %s", strstr(l, "interrupted") ? strstr(l, "interrupted") : "no line\n");
    const char *at = strstr(l, "interrupted at epoch ");
    if (at && sscanf(at, "interrupted at epoch %d, step %d", &ep, &step) == 2 && step > 0 && ep > 1) {
        /* the epoch in progress must be finished: a resume to fewer epochs is refused */
        cr_expect_eq(cuvae("train --resume %s --epochs %d", run, ep - 1), 2, "%s", out);
        cr_expect(strstr(out, "give at least --epochs"), "%s", out);
    }
    cr_assert_eq(cuvae("train --resume %s", run), 0, "%s", out);
    tu_metrics_losses(ref, a, sizeof a);
    tu_metrics_losses(run, b, sizeof b);
    cr_expect_str_eq(b, a, "metrics after a signal and a resume differ from the uninterrupted run's");
}

Test(runs, sigint_writes_a_checkpoint_and_exits_130) { check_signal(SIGINT, 130, 0); }
Test(runs, sigterm_writes_a_checkpoint_and_exits_143) { check_signal(SIGTERM, 143, 0); }
Test(runs, a_second_signal_exits_at_once_and_leaves_a_resumable_run) { check_signal(SIGINT, 130, 1); }

Test(runs, resume_of_a_finished_run_rewrites_its_model)
{
    char data[512], run[600];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s " SMALL, data, run), 0, "%s", out);
    cr_assert_eq(cuvae("train --resume %s", run), 0, "%s", out);
    cr_expect(strstr(out, "final test loss nan") == NULL, "%s", out);
}

/* Wait (up to 4 s) until dir/name exists. */
static void wait_for(const char *dir, const char *name)
{
    for (int i = 0; i < 4000 && !tu_exists_in(dir, name); i++)
        sleep_s(0.001);
}

Test(runs, kill9_at_random_moments_always_resumes_to_the_same_result)
{
    char data[512], ref[600], run[600], args[4096], log[700], a[6000], b[6000];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(ref, sizeof ref, "%s/ref", data);
    snprintf(log, sizeof log, "%s/log", data);
    /* one thread: steps of a steady length (OpenMP's waiting threads make a busy machine's
     * two-thread steps erratic), and 8 epochs, long enough for the kills to land in training */
    const char *set = "--hidden 32 --latent 4 --batch-size 4 --lr 1e-3 --device cpu --threads 1 --quiet --epochs 8";

    /* the reference run, timed: start-up (until metrics.csv appears), then training */
    snprintf(args, sizeof args, "train --data %s --out %s %s", data, ref, set);
    double t0 = now_s();
    pid_t pid = spawn(args, log);
    wait_for(ref, "metrics.csv");
    double t1 = now_s();
    cr_assert_eq(wait_status(pid), 0, "%s", slurp(data, "log"));
    double startup = t1 - t0, training = now_s() - t1;
    tu_metrics_losses(ref, a, sizeof a);

    int mid = 0;
    uint64_t x = 2024; /* seeded moments, so a failure can be replayed */
    for (int k = 0; k < 20; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0, delay;
        snprintf(run, sizeof run, "%s/run%d", data, k);
        snprintf(args, sizeof args, "train --data %s --out %s %s", data, run, set);
        pid = spawn(args, log);
        if (k % 4 == 0) { /* during start-up */
            delay = u * startup;
        } else {          /* anywhere in training, saves included, or just after it */
            wait_for(run, "metrics.csv");
            delay = u * 1.05 * training;
        }
        sleep_s(delay);
        kill(pid, SIGKILL);
        wait_status(pid);
        mid += tu_exists_in(run, "checkpoint.safetensors") && !strstr(slurp(run, "metrics.csv"), "\n8,");
        int rc = tu_exists_in(run, "checkpoint.safetensors") ? cuvae("train --resume %s", run)
                                                        : cuvae("train --data %s --out %s --force %s", data, run, set);
        cr_assert_eq(rc, 0, "kill %d after %.3f s, then resume: exit %d\n%s", k, delay, rc, out);
        tu_metrics_losses(run, b, sizeof b);
        cr_expect_str_eq(b, a, "kill %d after %.3f s: resumed metrics differ", k, delay);
        cr_expect(!tu_exists_in(run, "checkpoint.safetensors.tmp") && !tu_exists_in(run, "metrics.csv.tmp"),
                  "kill %d: a stale .tmp file is left", k);
    }
    fprintf(stderr, "kill -9: %d of 20 kills fell between the first checkpoint and the end\n", mid);
    cr_expect(mid >= 4, "only %d of 20 kills fell between the first checkpoint and the end (training %.3f s)", mid,
              training);
}

/* The epochs done in dir's checkpoint, or -1 when there is none. */
static int checkpoint_epochs(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    vae_train_checkpoint ck;
    if (!tu_exists_in(dir, "checkpoint.safetensors"))
        return -1;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    int done = ck.p.trainer.epochs_done;
    vae_train_checkpoint_free(&ck);
    return done;
}

Test(runs, checkpoint_every_n_epochs)
{
    char data[512], run[600], args[4096], log[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(log, sizeof log, "%s/log", data);
    snprintf(args, sizeof args, "train --data %s --out %s --checkpoint-every 2 " LONGER, data, run);
    pid_t pid = spawn(args, log);
    /* freeze the run once epoch 1 is in metrics.csv: no checkpoint may hold epoch 1 */
    int seen = 0;
    for (int i = 0; i < 20000 && !seen; i++) {
        if (strstr(slurp(run, "metrics.csv"), "\n1,")) {
            kill(pid, SIGSTOP);
            seen = 1;
        } else {
            sleep_s(0.0002);
        }
    }
    cr_assert(seen, "epoch 1 never ended:\n%s", slurp(data, "log"));
    int done = checkpoint_epochs(run);
    kill(pid, SIGCONT);
    cr_expect(done == -1 || done == 2, "a checkpoint after %d epochs with --checkpoint-every 2", done);
    cr_expect_eq(wait_status(pid), 0, "%s", slurp(data, "log"));
    cr_expect_eq(checkpoint_epochs(run), 3, "the last epoch is always checkpointed");
}

Test(runs, a_failed_checkpoint_write_stops_plainly_and_keeps_the_last_one)
{
    char data[512], run[600], ref[600], cmd[8192], a[6000], b[6000];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(ref, sizeof ref, "%s/ref", data);
    cr_assert_eq(cuvae("train --data %s --epochs 3 --out %s " SMALL, data, ref), 0, "%s", out);
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s " SMALL, data, run), 0, "%s", out);
    /* files of at most 8 KiB (a checkpoint is ~28 KB), as on a full disk; SIGXFSZ ignored so the
     * write fails with EFBIG instead of killing the process */
    snprintf(cmd, sizeof cmd, "ulimit -f 16; trap '' XFSZ; %s train --resume %s --epochs 3", CUVAE_BINARY, run);
    int rc = tu_run(cmd, out, sizeof out);
    cr_expect_eq(rc, 1, "exit %d:\n%s", rc, out);
    cr_expect(strstr(out, "checkpoint.safetensors") && strstr(out, "File too large"), "%s", out);
    cr_expect(!strstr(out, "fatal") && !strstr(out, ".c:"), "a developer's message:\n%s", out);
    cr_assert_eq(cuvae("train --resume %s --epochs 3", run), 0, "the last checkpoint is damaged:\n%s", out);
    tu_metrics_losses(ref, a, sizeof a);
    tu_metrics_losses(run, b, sizeof b);
    cr_expect_str_eq(b, a);
}

Test(runs, stale_tmp_files_are_removed_on_resume)
{
    char data[512], run[600], tmp[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s " SMALL, data, run), 0, "%s", out);
    snprintf(tmp, sizeof tmp, "%s/model.safetensors.tmp", run);
    tu_write_file(tmp, "half a file", 11);
    cr_assert_eq(cuvae("train --resume %s --epochs 2", run), 0, "%s", out);
    cr_expect(!tu_exists_in(run, "model.safetensors.tmp"), "the stale .tmp survived a resume");
}

Test(runs, eval_and_reconstruct_use_the_recorded_data_and_check_it)
{
    char data[512], other[600], run[600];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(other, sizeof other, "%s/other", data);
    tu_write_stroke_idx(other, 60, 13, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s " SMALL, data, run), 0, "%s", out);
    cr_expect_eq(cuvae("eval --model %s/model.safetensors --device cpu", run), 0, "%s", out);
    cr_expect(strstr(out, "over 20 images") && strstr(out, "recorded in the model"), "%s", out);
    cr_expect_eq(cuvae("reconstruct --model %s/model.safetensors --out %s/r.png --device cpu", run, run), 0, "%s",
                 out);
    cr_expect(strstr(out, "recorded in the model"), "%s", out);
    cr_expect_eq(cuvae("eval --model %s/model.safetensors --data %s --device cpu", run, other), 0, "%s", out);
    cr_expect(strstr(out, "over 13 images") && strstr(out, "(--data)"), "%s", out);
    /* the recorded data changes: refused, naming the file */
    char changed[700];
    snprintf(changed, sizeof changed, "%s/t10k-images-idx3-ubyte", data);
    tu_write_file(changed, "other bytes", 11);
    cr_expect_eq(cuvae("eval --model %s/model.safetensors --device cpu", run), 1, "%s", out);
    cr_expect(strstr(out, "t10k-images-idx3-ubyte") && strstr(out, "SHA-256") && strstr(out, "--data"), "%s", out);
}

Test(runs, non_utf8_data_path_is_recorded_escaped)
{
    char base[512], data[600], run[700];
    snprintf(base, sizeof base, "%s", tu_tmpdir());
    snprintf(data, sizeof data, "%s/d\xff\xfe", base);
    tu_write_stroke_idx(data, 60, 20, 8);
    snprintf(run, sizeof run, "%s/run", base);
    cr_assert_eq(cuvae("train --data '%s' --epochs 1 --out %s " SMALL, data, run), 0, "%s", out);
    cr_expect(tu_exists_in(run, "model.safetensors"), "the model was not saved");
    cr_expect(strstr(slurp(run, "provenance.txt"), "/d\\xff\\xfe") != NULL, "%s", slurp(run, "provenance.txt"));
    cr_expect_eq(cuvae("info --model %s/model.safetensors", run), 0, "%s", out);
    cr_expect(strstr(out, "d\\xff\\xfe") != NULL, "%s", out);
    cr_expect_eq(cuvae("eval --model %s/model.safetensors --device cpu", run), 0, "the escaped path is not used:\n%s",
                 out);
}

Test(runs, unwritable_out_is_reported_plainly_before_the_data)
{
    char base[512], file[600];
    snprintf(base, sizeof base, "%s", tu_tmpdir());
    snprintf(file, sizeof file, "%s/afile", base);
    tu_write_file(file, "x", 1);
    int rc = cuvae("train --data /nonexistent/data --out %s/run --device cpu", file);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "--out") && strstr(out, "afile") && strstr(out, "Not a directory"), "%s", out);
    cr_expect(!strstr(out, "nonexistent/data"), "the data was loaded before --out was checked:\n%s", out);
    cr_expect(!strstr(out, "fatal") && !strstr(out, ".c:"), "a developer's message:\n%s", out);
}

/* A run that fails before it wrote anything (missing data, a device that is not there) leaves no
 * directory it made behind; a directory that was there before stays. */
Test(runs, a_failed_run_leaves_no_directory_it_made)
{
    char base[512], run[700], mine[700];
    snprintf(base, sizeof base, "%s", tu_tmpdir());
    snprintf(run, sizeof run, "%s/run", base);
    cr_expect_eq(cuvae("train --data %s/no-data --out %s " SMALL, base, run), 1, "%s", out);
    cr_expect(strstr(out, "no-data"), "%s", out);
    struct stat st;
    cr_expect(stat(run, &st) != 0, "the failed run left %s behind", run);
    if (vae_cuda_device_count() == 0) {
        tu_write_stroke_idx(base, 60, 20, 8);
        cr_expect_eq(cuvae("train --data %s --out %s --hidden 16 --latent 3 --device cuda --quiet", base, run), 1,
                     "%s", out);
        cr_expect(stat(run, &st) != 0, "the run without a GPU left %s behind:\n%s", run, out);
    }
    snprintf(mine, sizeof mine, "%s/mine", base);
    cr_assert_eq(mkdir(mine, 0755), 0);
    cr_expect_eq(cuvae("train --data %s/no-data --out %s " SMALL, base, mine), 1, "%s", out);
    cr_expect(stat(mine, &st) == 0 && S_ISDIR(st.st_mode), "the user's own empty directory was removed");
}

Test(runs, val_fraction_adds_columns_and_keeps_the_best)
{
    char data[512], run[600];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 100, 20, 8);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --epochs 3 --val-fraction 0.2 --out %s " SMALL, data, run), 0, "%s", out);
    cr_expect(strstr(out, "validation: 20 images"), "%s", out);
    const char *m = slurp(run, "metrics.csv");
    const char *header = "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,"
                         "val_loss,val_recon,val_kl,seconds,images_per_second\n";
    cr_expect(strncmp(m, header, strlen(header)) == 0, "%s", m);
    cr_expect(tu_exists_in(run, "best.safetensors"));
    cr_expect_eq(cuvae("eval --model %s/best.safetensors --device cpu", run), 0, "%s", out);
    cr_expect_eq(cuvae("train --data %s --epochs 1 --val-fraction 0.001 --out %s/v2 " SMALL, data, data), 2, "%s",
                 out);
}

Test(runs, different_image_sizes_are_named)
{
    char data[512];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 60, 20, 8);
    char small[600], from[700], to[700]; /* test images of 4x4 from another set */
    snprintf(small, sizeof small, "%s/small", data);
    tu_write_stroke_idx(small, 60, 20, 4);
    snprintf(from, sizeof from, "%s/t10k-images-idx3-ubyte", small);
    snprintf(to, sizeof to, "%s/t10k-images-idx3-ubyte", data);
    cr_assert_eq(rename(from, to), 0);
    cr_expect_eq(cuvae("train --data %s --epochs 1 --out %s/run " SMALL, data, data), 1, "%s", out);
    cr_expect(strstr(out, "8x8") && strstr(out, "4x4"), "%s", out);
}

/* ---- issue 19: one process per run directory, scripts/run.sh, the recorded thread count ---- */

Test(runs, a_locked_run_directory_refuses_a_second_writer_and_plot)
{
    char data[512], run[600], args[4096], log[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(log, sizeof log, "%s/log", data);
    snprintf(args, sizeof args, "train --data %s --out %s " LONGER " --threads 1 --epochs 6", data, run);
    pid_t pid = spawn(args, log);
    wait_for(run, "metrics.csv"); /* it holds the lock from before its first file */
    /* Stopped, it keeps its lock while the others try (a fast machine finished its 6 epochs
     * before the three tries below were done); SIGCONT before the SIGINT. */
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    char want[800];
    snprintf(want, sizeof want, "run directory %s is in use: another process (pid %d) holds its lock", run, (int)pid);
    int rc = cuvae("train --data %s --out %s --force " SMALL, data, run);
    cr_expect_eq(rc, 2, "--force into a run in progress: exit %d\n%s", rc, out);
    cr_expect(strstr(out, want), "%s", out);
    rc = cuvae("train --resume %s", run);
    cr_expect_eq(rc, 2, "--resume of a run in progress: exit %d\n%s", rc, out);
    cr_expect(strstr(out, want), "%s", out);
    rc = cuvae("train --data %s --out %s " SMALL, data, run);
    cr_expect_eq(rc, 2, "a second train: exit %d\n%s", rc, out);
    cr_expect(strstr(out, want), "%s", out);
    kill(pid, SIGINT); /* pending while stopped, taken at the SIGCONT */
    kill(pid, SIGCONT);
    cr_assert_eq(wait_status(pid), 130, "%s", slurp(data, "log"));
    cr_expect(tu_exists_in(run, ".cuvae.lock"), "the lock file was removed");
    cr_assert_eq(cuvae("train --resume %s", run), 0, "the lock outlived its holder:\n%s", out);
    /* plot writes into the run directory only under its lock */
    char model[700];
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    int fd;
    cr_assert_eq(vae_run_dir_lock(run, "the test", 0, &fd), 0, "%s", vae_last_error());
    pid_t holder = fork();
    if (holder == 0) { /* a child holds the lock (locks belong to processes) */
        sleep(30);
        _exit(0);
    }
    close(fd); /* the child's copy of the descriptor keeps the flock */
    rc = cuvae("plot --model %s", model);
    cr_expect_eq(rc, 2, "plot into a locked run directory: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "is in use") && strstr(out, "--out"), "%s", out);
    cr_expect_eq(cuvae("plot --model %s --out %s/elsewhere", model, data), 0, "%s", out);
    kill(holder, SIGKILL);
    wait_status(holder);
    cr_expect_eq(cuvae("plot --model %s", model), 0, "%s", out);
}

Test(runs, without_flock_posix_locks_guard_the_run_and_without_either_it_is_refused)
{
    char data[512], run[600], args[4096], log[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(run, sizeof run, "%s/run", data);
    snprintf(log, sizeof log, "%s/log", data);
    /* a file system without flock: the POSIX record lock alone keeps a second writer out, and names it */
    snprintf(args, sizeof args, "train --data %s --out %s " LONGER " --threads 1 --epochs 6", data, run);
    setenv("CUVAE_TEST_LOCKS", "posix", 1);
    pid_t pid = spawn(args, log);
    wait_for(run, "metrics.csv");
    /* stopped, it keeps its lock while the others try (a fast machine finishes its 6 epochs first) */
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    char want[800];
    snprintf(want, sizeof want, "(pid %d) holds its lock", (int)pid);
    int rc = cuvae("train --data %s --out %s --force " SMALL, data, run);
    cr_expect_eq(rc, 2, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, want), "%s", out);
    unsetenv("CUVAE_TEST_LOCKS"); /* a process with flock still meets the POSIX lock */
    rc = cuvae("train --resume %s", run);
    cr_expect_eq(rc, 2, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, want), "%s", out);
    kill(pid, SIGTERM); /* pending while stopped, taken at the SIGCONT */
    kill(pid, SIGCONT);
    cr_assert_eq(wait_status(pid), 143, "%s", slurp(data, "log"));
    /* neither lock: refused, unless --no-lock */
    setenv("CUVAE_TEST_LOCKS", "none", 1);
    char other[700];
    snprintf(other, sizeof other, "%s/other", data);
    rc = cuvae("train --data %s --out %s " SMALL " --epochs 1", data, other);
    cr_expect_eq(rc, 2, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, "refuses both flock and POSIX record locks") && strstr(out, "--no-lock"), "%s", out);
    cr_expect(!tu_exists_in(other, "metrics.csv"), "a refused run wrote its files");
    rc = cuvae("train --data %s --out %s --no-lock " SMALL " --epochs 1", data, other);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, "running without one (--no-lock)"), "%s", out);
    unsetenv("CUVAE_TEST_LOCKS");
}

Test(runs, run_sh_never_forces_a_users_out)
{
    /* run.sh in a copy of the tree whose installer, fetcher, cmake and cuvae only record their arguments */
    char root[512], cmd[8192];
    snprintf(root, sizeof root, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; mkdir -p scripts build bin; cp %s/scripts/run.sh scripts/;"
             "printf '#!/bin/sh\\nexit 0\\n' > scripts/install_deps.sh; cp scripts/install_deps.sh scripts/fetch_mnist.sh;"
             "cp scripts/install_deps.sh bin/cmake;"
             "printf '#!/bin/sh\\necho \"cuvae $*\" >> %s/calls\\n' > build/cuvae;"
             "chmod +x scripts/*.sh bin/cmake build/cuvae",
             root, CUVAE_SOURCE_DIR, root);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    const char *cases[][2] = {
        {"--out models/important", " --out models/important"},
        {"--out=models/important --epochs 2", " --out=models/important --epochs 2"},
        {"--ou models/important", " --ou models/important"},
        {"--resume models/important", "cuvae train --resume models/important\n"},
        {"--device cpu", " --out models/default --device cpu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd %s && rm -f calls && PATH=%s/bin:$PATH bash scripts/run.sh %s && cat calls", root,
                 root, cases[i][0]);
        cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
        int own = strstr(cases[i][0], "models/important") != NULL;
        cr_expect(strstr(out, cases[i][1]), "run.sh %s: %s", cases[i][0], out);
        cr_expect(own ? !strstr(out, "--force") : strstr(out, "--force") != NULL, "run.sh %s: %s", cases[i][0], out);
        cr_expect(own ? !strstr(out, "models/default") : 1, "run.sh %s: %s", cases[i][0], out);
    }
}

Test(runs, resume_keeps_the_recorded_thread_count)
{
    char data[512], ref[600], run[600], a[6000], b[6000], cmd[2048];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 1500, 100, 28);
    snprintf(ref, sizeof ref, "%s/ref", data);
    snprintf(run, sizeof run, "%s/run", data);
    cr_assert_eq(cuvae("train --data %s --out %s " LONGER " --threads 1 --epochs 2", data, ref), 0, "%s", out);
    cr_assert_eq(cuvae("train --data %s --out %s " LONGER " --threads 1 --epochs 1", data, run), 0, "%s", out);
    char path[700];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    const char *rec = vae_train_checkpoint_setting(&ck, "train.threads");
    cr_expect(rec && strcmp(rec, "1") == 0, "train.threads recorded: %s", rec ? rec : "(none)");
    vae_train_checkpoint_free(&ck);
    /* the machine's default would be 2 threads here: the resume keeps 1, and the run is the same */
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 %s train --resume %s --epochs 2 2>&1", CUVAE_BINARY, run);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "(oneDNN, 1 thread)") && !strstr(out, "results will differ"), "%s", out);
    tu_metrics_losses(ref, a, sizeof a);
    tu_metrics_losses(run, b, sizeof b);
    cr_expect_str_eq(b, a, "a resume on the default thread count differs from the uninterrupted run");
    /* another count is allowed, with a line saying what it costs */
    cr_assert_eq(cuvae("train --resume %s --epochs 3 --threads 2", run), 0, "%s", out);
    cr_expect(strstr(out, "trained with --threads 1 and resumes with 2") && strstr(out, "will differ"), "%s", out);
}
