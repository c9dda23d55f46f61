/*
 * run_open.c: a training run's directory, new or resumed, and the run's release at the end;
 * see train_run.h.
 */
#define _GNU_SOURCE
#include "train_run.h"

#include "cli.h"
#include "run_dir.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vae_train_run_init(vae_train_run *r, const vae_train_settings *ts)
{
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    r->ts = *ts;
    r->best_val = NAN;
}

/* A run directory in use, or one that cannot be locked: exit 2, the message of vae_run_dir_lock. */
static int refuse_dir(void)
{
    fprintf(stderr, "cuvae train: %s\n", vae_last_error());
    return 2;
}

static int lock(vae_train_run *r, const char *how, int no_lock)
{
    char what[VAE_RUN_PATH_MAX];
    snprintf(what, sizeof what, "%s %s", how, r->dir);
    return vae_run_dir_lock(r->dir, what, no_lock, &r->lock_fd) ? refuse_dir() : 0;
}

int vae_train_run_open_new(vae_train_run *r, const char *out_dir, int force, int no_lock)
{
    if (!out_dir) {
        if (vae_run_dir_create_unique("models", r->dir_buf, sizeof r->dir_buf))
            return vae_cli_fail();
        r->created = 1;
        r->dir = r->dir_buf;
        return lock(r, "run directory", no_lock);
    }
    struct stat st;
    const int existed = stat(out_dir, &st) == 0;
    if (vae_run_dir_count_files(out_dir) < 0 || vae_run_dir_check_writable(out_dir))
        return vae_cli_fail();
    r->dir = out_dir;
    r->created = !existed;
    int rc = lock(r, "--out", no_lock);
    if (rc)
        return rc;
    int n = vae_run_dir_count_files(out_dir);
    if (n < 0)
        return vae_cli_fail();
    if (n > 0 && !force) {
        r->created = 0; /* another run's files arrived: never removed */
        return vae_cli_usage_error("train",
                                   "--out %s holds a previous run; use --resume %s to continue it, --force to "
                                   "replace it, or another --out",
                                   out_dir, out_dir);
    }
    return 0;
}

/* The recorded settings of the checkpoint, then the new total of epochs, the device and the
 * thread count if given. 0, or the exit code. */
static int resume_settings(vae_train_run *r, const vae_train_settings *given_ts, const int *given, int device_given)
{
    vae_train_checkpoint *ck = &r->ck;
    vae_run_settings_default(&r->ts.s);
    if (vae_train_settings_recorded(ck, r->ck_path, &r->ts))
        return vae_cli_fail();
    if (given[VAE_TS_EPOCHS] && given[VAE_TS_STEPS])
        return vae_cli_usage_error("train", "--steps %d and --epochs %d both set the run's length: give one",
                                   given_ts->steps, given_ts->s.epochs);
    if (given[VAE_TS_EPOCHS]) { /* a length in epochs from here on */
        r->ts.s.epochs = given_ts->s.epochs;
        r->ts.steps = 0;
    }
    if (given[VAE_TS_STEPS]) /* a length in steps: checked against the steps done once the data is known */
        r->ts.steps = given_ts->steps;
    const char *dev = vae_train_checkpoint_setting(ck, "train.device");
    r->ts.s.device = given_ts->s.device;
    /* the recorded thread count unless --threads is given (then results differ from an uninterrupted
     * run's; said once the backend is known) */
    const char *threads = vae_train_checkpoint_setting(ck, "train.threads");
    if (threads && vae_cli_parse_int("train.threads", threads, 1, 1024, &r->recorded_threads)) {
        vae_set_error("%s: recorded train.threads '%.40s' is not a thread count", r->ck_path, threads);
        return vae_cli_fail();
    }
    r->ts.s.threads = given_ts->s.threads ? given_ts->s.threads : r->recorded_threads;
    if (!device_given && dev && vae_device_parse(dev, &r->ts.s.device))
        r->ts.s.device = VAE_DEVICE_AUTO;
    /* an epoch in progress is finished before the run can end */
    const int done = ck->p.trainer.epochs_done, step = ck->p.trainer.step, least = done + (step > 0);
    if (!r->ts.steps && r->ts.s.epochs < least) {
        if (step)
            return vae_cli_usage_error("train", "--epochs %d: the run in %s is at epoch %d, step %d; give at least "
                                                "--epochs %d",
                                       r->ts.s.epochs, r->dir, done + 1, step, least);
        return vae_cli_usage_error("train", "--epochs %d: the run in %s has already done %d epochs",
                                   r->ts.s.epochs, r->dir, done);
    }
    if (vae_run_unescape(vae_train_checkpoint_setting(ck, "train.data"), r->data_buf, sizeof r->data_buf))
        return vae_cli_fail();
    r->ts.s.data_dir = r->data_buf;
    return 0;
}

int vae_train_run_open_resume(vae_train_run *r, const char *dir, const vae_train_settings *given_ts,
                              const int *given, int device_given, int no_lock)
{
    r->dir = dir;
    r->resuming = 1;
    snprintf(r->ck_path, sizeof r->ck_path, "%s/%s", dir, VAE_CHECKPOINT_FILE);
    struct stat st;
    if (stat(dir, &st) != 0) {
        vae_set_error("--resume %s: %s; give the directory of a run that wrote a checkpoint", dir, strerror(errno));
        return vae_cli_fail();
    }
    if (!S_ISDIR(st.st_mode)) {
        vae_set_error("--resume %s: not a directory; give the directory of a run that wrote a checkpoint", dir);
        return vae_cli_fail();
    }
    int rc = lock(r, "--resume", no_lock); /* before anything is read or removed */
    if (rc)
        return rc;
    if (access(r->ck_path, F_OK) != 0) {
        vae_set_error("--resume %s: no %s there (%s)%s", dir, VAE_CHECKPOINT_FILE, strerror(errno),
                      errno == ENOENT ? "; the run stopped before its first checkpoint: start it again with "
                                        "--out DIR --force"
                                      : "");
        return vae_cli_fail();
    }
    if (vae_run_dir_check_writable(dir))
        return vae_cli_fail();
    vae_run_dir_remove_stale(dir);
    if (vae_train_checkpoint_read(r->ck_path, &r->ck))
        return vae_cli_fail();
    if (vae_train_settings_check(&r->ck, given_ts, given, dir))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    return resume_settings(r, given_ts, given, device_given);
}

void vae_train_run_free(vae_train_run *r)
{
    if (r->t) {
        vae_trainer_free(r->t);
        vae_device_data_free(&r->dtrain, r->be);
        vae_device_data_free(&r->dtest, r->be);
        if (r->val.n)
            vae_device_data_free(&r->dval, r->be);
    }
    if (r->model_ready)
        vae_model_free(&r->m);
    if (r->be)
        vae_backend_free(r->be);
    vae_train_checkpoint_free(&r->ck);
    vae_free(r->metrics);
    vae_free(r->steps);
    vae_dataset_free(&r->train);
    vae_dataset_free(&r->val);
    vae_dataset_free(&r->test);
    vae_dataset_free(&r->test_grey);
    if (r->created && !r->wrote) { /* the directory this run made, its lock file with it */
        char lock_path[VAE_RUN_PATH_MAX];
        snprintf(lock_path, sizeof lock_path, "%s/%s", r->dir, VAE_RUN_LOCK_FILE);
        unlink(lock_path);
        rmdir(r->dir);
    }
}
