/*
 * test_sweep.c: `cuvae sweep` (sweep.h) through the real binary on a small IDX set: the plan of
 * a product and of zipped lists (names, order, the train command of each run, --dry-run writes
 * nothing), the refusals (bad items, unknown and owned flags, lists of unequal length under --zip,
 * a directory holding another plan, a second sweep on a locked directory); a 12-run sweep stopped
 * by SIGINT mid-way and continued (no finished run trained again, the interrupted ones resumed to
 * the same numbers as the same run never stopped); a run that diverges is recorded as failed,
 * not retried, and counted in the exit status; the Slurm script; the report's table and page.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static char out[1 << 16];

/* A fresh temporary directory (tu_tmpdir's buffer is reused by its next call). */
static const char *new_dir(void)
{
    static char dirs[8][256];
    static int next;
    char *d = dirs[next++ % 8];
    snprintf(d, sizeof dirs[0], "%s", tu_tmpdir());
    return d;
}

/* The data set of the runs. */
static const char *data_dir(void)
{
    const char *d = new_dir();
    tu_write_patterns_idx(d, 96, 30, 3);
    return d;
}

#define TINY "--epochs 3 --batch-size 16 --hidden 24 --lr 3e-3"

static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, prefix)); p++)
        n++;
    return n;
}

Test(sweep, dry_run_prints_the_product_and_writes_nothing)
{
    const char *data = data_dir(), *dir = new_dir();
    char sweep[1024];
    snprintf(sweep, sizeof sweep, "%s/s", dir);
    int rc = tu_cuvae(out, sizeof out, "sweep --out %s --dry-run --data %s " TINY " --beta 0.5,1 --latent 2,3 --seed 1:3",
                      sweep, data);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "12 runs over --beta (2 values), --latent (2 values), --seed (3 values), every combination"),
              "%s", out);
    cr_expect_eq(count_lines(out, " train --data "), 12, "%s", out);
    /* the last list varies fastest; the names hold the values; each run its own --out */
    const char *first = strstr(out, "beta=0.5_latent=2_seed=1"), *second = strstr(out, "beta=0.5_latent=2_seed=2"),
               *last = strstr(out, "beta=1_latent=3_seed=3");
    cr_expect(first && second && last && first < second && second < last, "%s", out);
    cr_expect(strstr(out, "--beta 0.5 --latent 2 --seed 1") && strstr(out, "--threads 1 --out ") &&
                  strstr(out, "/s/runs/beta=1_latent=3_seed=3"),
              "%s", out);
    struct stat st;
    cr_expect_neq(stat(sweep, &st), 0, "--dry-run made the sweep directory");
    /* zipped: side by side */
    rc = tu_cuvae(out, sizeof out, "sweep --out %s --dry-run --zip --data %s " TINY " --beta 0.5,1,2 --seed 4:6", sweep,
                  data);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "3 runs") && strstr(out, "zipped") && strstr(out, "beta=2_seed=6") &&
                  !strstr(out, "beta=2_seed=4"),
              "%s", out);
    /* a value that is valid as it is stays one value; ';' separates such values */
    rc = tu_cuvae(out, sizeof out, "sweep --out %s --dry-run --data %s --epochs 1 --hidden '24;32,16'", sweep, data);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "2 runs") && strstr(out, "--hidden 32,16") && strstr(out, "hidden=24"), "%s", out);
    rc = tu_cuvae(out, sizeof out, "sweep --out %s --dry-run --data %s --epochs 1 --hidden 32,16 --beta 1,2", sweep,
                  data);
    cr_expect(rc == 0 && strstr(out, "2 runs over --beta") && strstr(out, "--hidden 32,16 --beta 2"), "%s", out);
}

Test(sweep, bad_lists_and_flags_are_refused)
{
    const char *data = data_dir(), *dir = new_dir();
    static const struct {
        const char *args, *says;
    } bad[] = {
        {"--beta 0.5,x", "--beta 0.5,x: item 'x'"},
        {"--beta 0.5,,1", "an empty item"},
        {"--seed 3:1", "--seed 3:1: item '3:1'"},
        {"--bta 1,2", "--bta: not a flag of cuvae train"},
        {"--resume x", "--resume: the sweep decides it"},
        {"--quiet --beta 1,2", NULL}, /* --quiet is the sweep's own: fine */
        {"--zip --beta 1,2 --seed 1:3", "--zip takes lists of one length"},
        {"--beta 1,2 --beta 3", "--beta is given twice"},
        {"--toy-n 100,200", "only with --data toy"},
        {"--latent", "--latent needs a value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tu_cuvae(out, sizeof out, "sweep --out %s/s%zu --dry-run --data %s --epochs 1 %s", dir, i, data,
                          bad[i].args);
        if (!bad[i].says) {
            cr_expect_eq(rc, 0, "%s: %s", bad[i].args, out);
            continue;
        }
        cr_expect_eq(rc, 2, "%s: exit %d\n%s", bad[i].args, rc, out);
        cr_expect(strstr(out, bad[i].says), "%s: the message does not say '%s':\n%s", bad[i].args, bad[i].says, out);
        cr_expect_eq(count_lines(out, "cuvae sweep: "), 1, "%s: not one message:\n%s", bad[i].args, out);
    }
    cr_expect_eq(tu_cuvae(out, sizeof out, "sweep --data %s --beta 1,2", data), 2, "%s", out);
    cr_expect(strstr(out, "--out DIR is required"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "sweep --out %s/x --jobs 0 --beta 1,2", dir), 2, "%s", out);
    cr_expect(strstr(out, "--jobs"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "sweep %s/none", dir), 1, "%s", out);
    cr_expect(strstr(out, "plan.jsonl"), "continuing a directory without a plan: %s", out);
}

/* Each run directory's state: 'F' finished, 'C' a checkpoint, '-' neither. */
static void states(const char *sweep, const char *const *names, int n, char *s)
{
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", sweep, names[i]);
        s[i] = stat(path, &st) == 0 ? 'F' : '-';
        snprintf(path, sizeof path, "%s/runs/%s/checkpoint.safetensors", sweep, names[i]);
        if (s[i] == '-' && stat(path, &st) == 0)
            s[i] = 'C';
    }
    s[n] = 0;
}

static long mtime_ns(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : -1;
}

Test(sweep, interrupted_and_continued_without_losing_or_repeating_a_run, .timeout = 600)
{
    const char *data = data_dir(), *dir = new_dir();
    char sweep[1024], names[12][64];
    const char *name_ptr[12];
    snprintf(sweep, sizeof sweep, "%s/s", dir);
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "beta=%s_seed=%d", (const char *[]){"0.5", "1", "2"}[i / 4], i % 4 + 1);
        name_ptr[i] = names[i];
    }
    /* the sweep in the background, stopped by SIGINT once two runs have finished */
    pid_t pid = fork();
    if (pid == 0) {
        char log[1100];
        snprintf(log, sizeof log, "%s/first.log", dir);
        freopen(log, "w", stderr);
        execl(CUVAE_BINARY, CUVAE_BINARY, "sweep", "--out", sweep, "--jobs", "2", "--data", data, "--epochs", "30",
              "--batch-size", "16", "--hidden", "24", "--lr", "3e-3", "--beta", "0.5,1,2", "--seed", "1:4",
              (char *)NULL);
        _exit(127);
    }
    char s[13];
    for (int tries = 0; tries < 6000; tries++) {
        states(sweep, name_ptr, 12, s);
        if (strchr(s, 'F') && strchr(strchr(s, 'F') + 1, 'F'))
            break;
        usleep(10000);
    }
    kill(pid, SIGINT);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char *first_log = tu_slurp_in(dir, "first.log", NULL);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 130, "the stopped sweep's status %d:\n%s", status, first_log);
    cr_expect(strstr(first_log, "sweep stopped by Interrupt") && strstr(first_log, "continues it"), "%s", first_log);
    free(first_log);
    states(sweep, name_ptr, 12, s);
    char before[13];
    strcpy(before, s);
    cr_expect(strchr(s, 'F') && strchr(s, '-'), "after the stop, some runs finished and some not started: %s", s);
    long model_time[12];
    for (int i = 0; i < 12; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", sweep, names[i]);
        model_time[i] = mtime_ns(path);
    }
    /* continued: every run finishes, none finished before is trained again */
    int rc = tu_cuvae(out, sizeof out, "sweep %s --quiet", sweep);
    cr_assert_eq(rc, 0, "%s", out);
    states(sweep, name_ptr, 12, s);
    cr_expect_str_eq(s, "FFFFFFFFFFFF");
    for (int i = 0; i < 12; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", sweep, names[i]);
        if (before[i] == 'F')
            cr_expect_eq(mtime_ns(path), model_time[i], "%s was trained again", names[i]);
    }
    /* a run resumed from its checkpoint ends as the same run never stopped */
    for (int i = 0; i < 12; i++) {
        if (before[i] != 'C')
            continue;
        char alone[1100], want[1 << 14], got[1 << 14], run[4096];
        snprintf(alone, sizeof alone, "%s/alone", dir);
        rc = tu_cuvae(out, sizeof out,
                      "train --data %s --epochs 30 --batch-size 16 --hidden 24 --lr 3e-3 --beta %s --seed %d "
                      "--threads 1 --out %s --quiet",
                      data, (const char *[]){"0.5", "1", "2"}[i / 4], i % 4 + 1, alone);
        cr_assert_eq(rc, 0, "%s", out);
        snprintf(run, sizeof run, "%s/runs/%s", sweep, names[i]);
        tu_metrics_losses(alone, want, sizeof want);
        tu_metrics_losses(run, got, sizeof got);
        cr_expect_str_eq(got, want, "%s resumed differs from the same run uninterrupted", names[i]);
        break;
    }
    /* again: nothing left to do */
    rc = tu_cuvae(out, sizeof out, "sweep %s", sweep);
    cr_expect(rc == 0 && strstr(out, "12 finished, 0 failed, 0 to run"), "%s", out);
    /* the same plan given again continues it; another plan in the directory is refused */
    rc = tu_cuvae(out, sizeof out, "sweep --out %s --jobs 2 --data %s --epochs 30 --batch-size 16 --hidden 24 "
                                   "--lr 3e-3 --beta 0.5,1,2 --seed 1:4 --quiet", sweep, data);
    cr_expect(rc == 0 && strstr(out, "the same plan is there already"), "%s", out);
    rc = tu_cuvae(out, sizeof out, "sweep --out %s --data %s " TINY " --beta 4,8", sweep, data);
    cr_expect(rc == 2 && strstr(out, "holds the plan of another sweep"), "%s", out);

    /* the report: one row per run, sorted; the page renders */
    rc = tu_cuvae(out, sizeof out, "sweep report %s --sort test_loss", sweep);
    cr_assert_eq(rc, 0, "%s", out);
    char *csv = tu_slurp_in(sweep, "sweep.csv", NULL), *html = tu_slurp_in(sweep, "sweep.html", NULL);
    cr_assert(csv && html);
    static const char header[] = "run,beta,seed,train_loss,test_loss,test_recon,test_kl,seconds,active_units,state\n";
    cr_expect(strncmp(csv, header, strlen(header)) == 0, "%s", csv);
    cr_expect_eq(count_lines(csv, ",finished\n"), 12, "%s", csv);
    double prev = -1e300;
    for (const char *line = strchr(csv, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        double train, test;
        const char *p = line;
        for (int commas = 0; commas < 3; p++) /* past run, beta, seed */
            commas += *p == ',';
        cr_assert_eq(sscanf(p, "%lf,%lf", &train, &test), 2, "%s", line);
        cr_expect_geq(test, prev, "not sorted by test_loss:\n%s", csv);
        prev = test;
    }
    cr_expect(strstr(html, "href=\"runs/beta%3D0.5_seed%3D1/report.html\"") && strstr(html, "<svg"),
              "the page lacks the links or the chart");
    free(csv);
    free(html);
    char shot[1100];
    snprintf(shot, sizeof shot, "%s/sweep.png", dir);
    if (tu_run("command -v chromium", out, sizeof out) == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "timeout 120 chromium --headless --no-sandbox --disable-gpu --screenshot=%s --window-size=1000,1200 "
                 "file://%s/sweep.html",
                 shot, sweep);
        cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
        cr_expect(tu_nonempty_in(dir, "sweep.png"), "chromium drew nothing");
    }
    cr_expect_eq(tu_cuvae(out, sizeof out, "sweep report %s --sort nothing", sweep), 2, "%s", out);
    cr_expect(strstr(out, "--sort nothing: no such column"), "%s", out);
}

Test(sweep, a_failing_run_is_recorded_and_not_retried)
{
    const char *data = data_dir(), *dir = new_dir();
    char sweep[1024];
    snprintf(sweep, sizeof sweep, "%s/s", dir);
    /* --lr 10 diverges (exit 3); --lr 3e-3 trains */
    int rc = tu_cuvae(out, sizeof out, "sweep --out %s --quiet --data %s --epochs 2 --batch-size 16 --hidden 24 "
                                       "--lr 3e-3,10", sweep, data);
    cr_expect_eq(rc, 1, "one failed run: exit 1\n%s", out);
    cr_expect(strstr(out, "sweep: run lr=10 failed (exit 3)"), "%s", out);
    char *why = tu_slurp_in(sweep, "failed/lr=10", NULL);
    cr_assert_not_null(why, "no failed/lr=10");
    cr_expect(strncmp(why, "exit 3: ", 8) == 0, "%s", why);
    free(why);
    char log_dir[1100];
    snprintf(log_dir, sizeof log_dir, "%s/logs", sweep);
    char *log = tu_slurp_in(log_dir, "lr=10.log", NULL);
    cr_expect(log && count_lines(log, "diverged") >= 1, "%s", log ? log : "(no log)");
    int attempts = log ? count_lines(log, "device: ") : 0;
    free(log);
    rc = tu_cuvae(out, sizeof out, "sweep %s", sweep);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "run lr=10 failed before and is not run again") && strstr(out, "1 finished, 1 failed, 0 to run"),
              "%s", out);
    log = tu_slurp_in(log_dir, "lr=10.log", NULL);
    cr_expect_eq(count_lines(log, "device: "), attempts, "the failed run was run again");
    free(log);
}

Test(sweep, a_locked_sweep_is_refused_and_slurm_gets_its_array)
{
    const char *data = data_dir(), *dir = new_dir();
    char sweep[1024];
    snprintf(sweep, sizeof sweep, "%s/s", dir);
    int rc = tu_cuvae(out, sizeof out, "sweep --out %s --slurm --partition debug --time 00:10:00 --gpus-per-task 1 "
                                       "--data %s " TINY " --seed 1:3", sweep, data);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "sbatch ") && strstr(out, "slurm.sh"), "%s", out);
    char *script = tu_slurp_in(sweep, "slurm.sh", NULL);
    cr_assert_not_null(script);
    static const char *const lines[] = {"#SBATCH --array=0-2\n", "#SBATCH --requeue\n", "#SBATCH --signal=B:TERM@120\n",
                                        "#SBATCH --partition=debug\n", "#SBATCH --time=00:10:00\n",
                                        "#SBATCH --gpus-per-task=1\n", " sweep run '", "' --index \"$SLURM_ARRAY_TASK_ID\"\n",
                                        "\nexec '"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(script, lines[i]), "slurm.sh lacks %s:\n%s", lines[i], script);
    free(script);
    /* one task of the array, as Slurm would run it, then the task again: finished already */
    rc = tu_cuvae(out, sizeof out, "sweep run %s --index 1", sweep);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(tu_nonempty_in(sweep, "runs/seed=2/model.safetensors"));
    rc = tu_cuvae(out, sizeof out, "sweep run %s --index 1", sweep);
    cr_expect(rc == 0 && strstr(out, "finished already"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "sweep run %s --index 3", sweep), 2, "%s", out);
    cr_expect(strstr(out, "--index 3: the plan has runs 0 to 2"), "%s", out);
    /* a local sweep holding the lock keeps a task (and a second local sweep) out */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "flock %s/.cuvae.lock -c '%s sweep run %s --index 0; echo task=$?; %s sweep %s; echo local=$?'",
             sweep, CUVAE_BINARY, sweep, CUVAE_BINARY, sweep);
    tu_run(cmd, out, sizeof out);
    cr_expect(strstr(out, "task=1") && strstr(out, "local=1") && strstr(out, "is in use"), "%s", out);
}

/* A run killed by a signal the sweep did not send (a crash, the OOM killer) is tried once more,
 * from its checkpoint, and the sweep still ends with every run finished; the report adds the
 * importance-weighted bound when asked. */
Test(sweep, a_crashed_run_is_retried_once_from_its_checkpoint, .timeout = 600)
{
    const char *data = data_dir(), *dir = new_dir();
    char sweep[1024], log[1100];
    snprintf(sweep, sizeof sweep, "%s/s", dir);
    snprintf(log, sizeof log, "%s/sweep.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "w", stderr);
        execl(CUVAE_BINARY, CUVAE_BINARY, "sweep", "--out", sweep, "--jobs", "2", "--data", data, "--epochs", "600",
              "--batch-size", "16", "--hidden", "24", "--lr", "3e-3", "--seed", "1:2", (char *)NULL);
        _exit(127);
    }
    /* once seed=1 has a checkpoint, kill its train process as the OOM killer would */
    char ckpt[1200], out_flag[1200], cmd[2600];
    snprintf(ckpt, sizeof ckpt, "%s/runs/seed=1/checkpoint.safetensors", sweep);
    snprintf(out_flag, sizeof out_flag, "--out %s/runs/seed=1( |$)", sweep);
    struct stat st;
    for (int tries = 0; tries < 6000 && stat(ckpt, &st) != 0; tries++)
        usleep(10000);
    cr_assert_eq(stat(ckpt, &st), 0, "seed=1 wrote no checkpoint");
    snprintf(cmd, sizeof cmd, "pkill -KILL -f -- '%s'", out_flag);
    int killed = tu_run(cmd, out, sizeof out) == 0;
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char *text = tu_slurp_in(dir, "sweep.log", NULL);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the sweep's status %d:\n%s", status, text);
    cr_expect(killed, "no train process of seed=1 to kill (600 epochs over already?)");
    cr_expect(strstr(text, "sweep: run seed=1 ended by a signal it was not sent") && strstr(text, "trying it once more"),
              "%s", text);
    cr_expect(strstr(text, "2 of 2 runs finished, 0 failed"), "%s", text);
    free(text);
    int rc = tu_cuvae(out, sizeof out, "sweep report %s --iw-samples 3", sweep);
    cr_assert_eq(rc, 0, "%s", out);
    char *csv = tu_slurp_in(sweep, "sweep.csv", NULL);
    cr_expect(csv && strstr(csv, ",active_units,iw_nll,state\n"), "%s", csv ? csv : "(none)");
    free(csv);
}
