/*
 * cmd_train.c: `cuvae train`: check the run directory, load the data, train
 * with a checkpoint every N epochs, and leave a run directory with
 * model.safetensors, checkpoint.safetensors, metrics.csv, metrics.jsonl,
 * provenance.txt, samples.png, reconstructions.png, the pictures of pictures.h
 * and report.html (and
 * best.safetensors with a validation split). `--resume DIR` continues a run from its checkpoint;
 * SIGINT/SIGTERM stop it after the current step with a checkpoint.
 *
 * Exit codes: 0 done; 1 a failure (data, files, devices); 2 a usage error
 * (a bad flag, an --out holding a previous run, a resume with other
 * settings); 130 / 143 stopped by SIGINT / SIGTERM after writing a checkpoint.
 *
 * Not here: the loop itself (train.c), the checkpoint format (train_state.c),
 * run-directory rules and provenance (run_dir.c).
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "evaluate.h"
#include "devmem.h"
#include "holdout.h"
#include "metrics.h"
#include "pictures.h"
#include "progress.h"
#include "report.h"
#include "run_dir.h"
#include "stop_signal.h"
#include "toy.h"
#include "toy_pictures.h"
#include "train.h"
#include "train_settings.h"
#include "train_state.h"
#include "vae_util.h"
#include "variant.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OPT_OUT = VAE_OPT_TRAIN_NEXT, OPT_QUIET, OPT_FORCE, OPT_RESUME, OPT_SCALE, OPT_NO_LOCK };

#define CHECKPOINT_FILE "checkpoint.safetensors"
#define CK_PATH_MAX 4200
#define DATA_PATH_MAX 4096

static void help(void)
{
    printf("usage: cuvae train [options]\n"
           "       cuvae train --resume DIR [--epochs N]\n\n"
           "Train a VAE with a Bernoulli decoder and a Gaussian posterior; each epoch prints\n"
           "the training loss split into reconstruction and KL, and the test loss, per image in nats.\n\n"
           "%s%s%s%s%s"
           "  --out DIR           run directory (default models/vae-YYYYmmdd-HHMMSS-PID, always new);\n"
           "                      one that holds a previous run is refused without --force\n"
           "  --force             replace the run in --out: its cuvae files are removed once the new\n"
           "                      run's data has loaded\n"
           "  --resume DIR        continue the run in DIR from its checkpoint (only --epochs may change)\n"
           "  --no-lock           run where the file system refuses locks (flock and POSIX record locks);\n"
           "                      the run directory is then not protected from a second writer\n"
           "  --checkpoint-every N  write DIR/checkpoint.safetensors every N epochs (default 1)\n"
           "  --val-fraction F    hold out this fraction of the training set for validation\n"
           "                      (default 0); keeps the best model as best.safetensors\n"
           "  --samples N         images in samples.png (default 64)\n"
           "  --scale S           each pixel of the PNG grids as an S x S block, 1 to 64 (default 3)\n"
           "  --clip-grad-norm X  scale each step's gradients to a global L2 norm of at most X\n"
           "                      (default 0: no clipping)\n"
           "  --lr-schedule S     constant (default); cosine: from --lr down to 0 over the run, step\n"
           "                      by step; step:E[:G]: multiply the rate by G (default 0.1) every E epochs\n"
           "  --kl-warmup W       raise the KL weight linearly from 0 to --beta over the first W\n"
           "                      epochs (default 0: no warm-up)\n"
           "  --temperature T     joint: Gumbel-softmax temperature (default 0.67)\n"
           "  --temperature-anneal T_END  joint: to T_END linearly over the run\n"
           "  --capacity-z MAX,ITERS,GAMMA  joint: gamma |KL_z - C_z|, C_z rising from 0 to MAX\n"
           "                      nats over ITERS steps (paper: 5,25000,30); default: plain KL\n"
           "  --capacity-c MAX,ITERS,GAMMA  joint: the same for KL_c, C_c at most log K\n"
           "  --binarize MODE     none (default): values as they are; dynamic: every image a fresh\n"
           "                      Bernoulli draw of its pixels at every step (seeded), tested on a static\n"
           "                      draw of the test set; static: one fixed draw of the training and test sets\n"
           "                      (data in [0, 1] only)\n"
           "  --data toy          the 1-D Gaussian-mixture toy, drawn in memory (seeded by --seed); its model\n"
           "                      defaults to a 1-D latent, --hidden 100,100, tanh, --likelihood gaussian,\n"
           "                      --sigma 0.1; writes toy_density.svg, toy_latent.svg, toy_generated.svg\n"
           "  --toy-weights W,..  component weights, each > 0, normalized to sum 1 (default 0.2,0.45,0.35,0.1)\n"
           "  --toy-means M,..    component means (default -3,2.5,1.5,-2.5)\n"
           "  --toy-stds S,..     component standard deviations, each > 0 (default 0.3,1.2,0.3,0.2)\n"
           "  --toy-n TRAIN,TEST  rows drawn for the training and test sets (default 20000,5000)\n"
           "  --quiet             no progress output, only the epoch lines\n"
           "  -h, --help          this help\n\n"
           "Exit status: 0 done, 1 failure, 2 usage error, 3 diverged (a loss or gradient became NaN\n"
           "or infinite; nothing of that epoch is saved), 130/143 stopped by SIGINT/SIGTERM\n"
           "(a checkpoint was written; resume with --resume DIR).\n",
           vae_cli_help_training, vae_cli_help_model, vae_variant_help(), vae_cli_help_device,
           vae_cli_help_tf32);
}

/* ---- data ------------------------------------------------------------------------ */

/* The labels file of a split of dir, to name it in messages (dir itself when none is found). */
static void labels_source(const char *dir, vae_split split, char out[4096])
{
    char paths[2][4096];
    if (vae_dataset_file_paths(dir, split, paths))
        snprintf(out, 4096, "%s", dir);
    else
        snprintf(out, 4096, "%s", paths[1]);
}

/* A conditional model's classes: 1 + the largest training label, every test label below it.
 * 0, or -1 with vae_set_error naming the labels file. */
static int set_classes(vae_config *cfg, const char *dir, const vae_dataset *train, const vae_dataset *test)
{
    char src[4096];
    const vae_variant *v = vae_variant_of(cfg);
    if (!v->reads_labels)
        return 0;
    labels_source(dir, VAE_SPLIT_TRAIN, src);
    if (!train->labels)
        return vae_set_error("%s: the data has no labels; --model %s needs one per image", src, v->name);
    cfg->classes = train->classes;
    if (cfg->classes < 2)
        return vae_set_error("%s: --model %s needs at least 2 label classes; the training labels hold %d", src,
                             v->name, cfg->classes);
    labels_source(dir, VAE_SPLIT_TEST, src);
    return vae_dataset_check_labels(test, cfg->classes, src);
}

static int load_data(const char *dir, vae_dataset *train, vae_dataset *test)
{
    if (vae_dataset_load(dir, VAE_SPLIT_TRAIN, train))
        return -1;
    if (vae_dataset_load(dir, VAE_SPLIT_TEST, test)) {
        vae_dataset_free(train);
        return -1;
    }
    if (train->rows != test->rows || train->cols != test->cols) {
        vae_set_error("%s: training images are %dx%d but test images %dx%d", dir, train->rows, train->cols,
                      test->rows, test->cols);
        vae_dataset_free(train);
        vae_dataset_free(test);
        return -1;
    }
    return 0;
}

/* The toy's data record: no files, its name as the data directory. */
static void toy_run_data(vae_run_data *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", VAE_TOY_DATA);
}

/* The seed of --binarize dynamic's one static draw of the validation set is --seed ^ this; the
 * training set's (static) is --seed ^ VAE_SEED_BINARIZE_TRAIN (evaluate.h), the test set's --seed. */
#define SEED_BINARIZE_VAL 0x62696e76616cull /* "binval" */

/* --binarize before the validation split: static draws the training set once; both static and
 * dynamic test on one static draw of the test set. 0, or the exit code. */
static int binarize_data(const vae_train_settings *ts, vae_dataset *all, vae_dataset *test)
{
    if (ts->binarize == VAE_BINARIZE_NONE)
        return 0;
    const char *what = vae_toy_selected(ts->s.data_dir) ? "--data toy" : ts->s.data_dir;
    if (vae_binarize_check(all, what) || vae_binarize_check(test, what))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    if (ts->binarize == VAE_BINARIZE_STATIC)
        vae_binarize_static(all, ts->s.seed ^ VAE_SEED_BINARIZE_TRAIN);
    vae_binarize_static(test, ts->s.seed);
    return 0;
}

/* The run header's line on the binarization every loss of the run uses. */
static void print_binarization(const vae_train_settings *ts, int val)
{
    const unsigned long long seed = (unsigned long long)ts->s.seed;
    if (ts->binarize == VAE_BINARIZE_NONE)
        fprintf(stderr, "binarization: none (the training and test losses are of the values as they are)\n");
    else if (ts->binarize == VAE_BINARIZE_STATIC)
        fprintf(stderr, "binarization: static (training%s and test losses on one fixed Bernoulli draw of each "
                        "set; the test set's is `cuvae eval --binarize static --seed %llu`)\n",
                val ? ", validation" : "", seed);
    else
        fprintf(stderr, "binarization: dynamic (the training loss on a fresh Bernoulli draw of every image at "
                        "every step; the %stest loss on one fixed draw, as `cuvae eval --binarize static --seed "
                        "%llu`)\n",
                val ? "validation and " : "", seed);
}

/* ---- the run ------------------------------------------------------------------- */

typedef struct {
    const char *dir;
    vae_train_settings ts;
    vae_run_data data;
    char data_esc[VAE_SETTING_MAX];
    vae_backend *be;
    vae_model m;
    vae_trainer *t;
    char *metrics;  /* metrics.csv text */
    size_t metrics_len, metrics_cap;
    double best_val;
    int best_epoch;
    char toy_tv[32]; /* the toy's total-variation distance as model metadata; "" for other data */
    int recorded_threads; /* a resumed CPU run's train.threads; 0 when none is recorded */
    int lock_fd;     /* the run directory's lock (run_dir.h), held until the process ends; -1 unlocked */
    const char *ck_path; /* the checkpoint a resumed run's metrics came from; NULL for a new run */
} run;

static void metrics_append(run *r, const char *line)
{
    size_t n = strlen(line);
    if (r->metrics_len + n + 1 > r->metrics_cap) {
        size_t cap = (r->metrics_len + n + 1) * 2;
        char *b = vae_calloc(cap, 1);
        if (r->metrics)
            memcpy(b, r->metrics, r->metrics_len);
        vae_free(r->metrics);
        r->metrics = b;
        r->metrics_cap = cap;
    }
    memcpy(r->metrics + r->metrics_len, line, n + 1);
    r->metrics_len += n;
}

/* The settings and data digests as checkpoint / model metadata; texts live in vals. */
static int settings_meta(const run *r, vae_st_meta *meta, char vals[][VAE_SETTING_MAX], char keys[4][96])
{
    int n = 0;
    for (int k = 0; k < VAE_TS_N; k++) {
        vae_train_setting_text(&r->ts, k, vals[k]);
        meta[n++] = (vae_st_meta){vae_train_setting_keys[k].key, vals[k]};
    }
    for (int i = 0; i < r->data.n_files; i++) {
        snprintf(keys[i], sizeof keys[i], "train.data.sha256.%s", vae_run_data_name(&r->data, i));
        meta[n++] = (vae_st_meta){keys[i], r->data.sha256[i]};
    }
    meta[n++] = (vae_st_meta){"train.device", r->be->name};
    if (strcmp(r->be->name, "cpu") == 0) { /* the CPU's results depend on it (oneDNN splits by threads) */
        static char threads[16];
        snprintf(threads, sizeof threads, "%d", vae_cpu_threads());
        meta[n++] = (vae_st_meta){"train.threads", threads};
    }
    return n;
}

static int save_checkpoint(run *r)
{
    static char vals[VAE_TS_N][VAE_SETTING_MAX];
    char keys[4][96];
    vae_st_meta meta[VAE_TS_N + 6];
    int n = settings_meta(r, meta, vals, keys);
    vae_train_progress p = {.best_val = r->best_val, .best_epoch = r->best_epoch, .metrics = r->metrics};
    vae_trainer_get_state(r->t, &p.trainer);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, CHECKPOINT_FILE);
    return vae_train_state_save(path, &r->m, &p, meta, n);
}

/* A model file (model.safetensors, best.safetensors) with the run's settings and final losses. */
static int save_model(run *r, const char *name, const vae_epoch_metrics *e)
{
    static char vals[VAE_TS_N][VAE_SETTING_MAX];
    char keys[4][96], train_s[32], test_s[32], epoch_s[32];
    vae_st_meta meta[VAE_TS_N + 11];
    int n = settings_meta(r, meta, vals, keys);
    snprintf(train_s, sizeof train_s, "%.6f", e->train.loss);
    snprintf(test_s, sizeof test_s, "%.6f", e->test.loss);
    snprintf(epoch_s, sizeof epoch_s, "%d", e->epoch);
    meta[n++] = (vae_st_meta){"train.device_name", r->be->device_name};
    meta[n++] = (vae_st_meta){"train.saved_epoch", epoch_s};
    meta[n++] = (vae_st_meta){"train.final_train_loss", train_s};
    meta[n++] = (vae_st_meta){"train.final_test_loss", test_s};
    if (r->toy_tv[0])
        meta[n++] = (vae_st_meta){"train.toy_tv", r->toy_tv};
    /* vae_checkpoint_save checks that these and the configuration's entries fit */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return vae_checkpoint_save(&r->m, path, meta, n);
}

/* metrics.csv, then metrics.jsonl made from its text (metrics.h): the two never disagree. */
static int write_metrics(run *r)
{
    if (vae_run_write_text(r->dir, "metrics.csv", r->metrics, r->metrics_len))
        return -1;
    vae_metrics_table t;
    char what[4300];
    if (r->ck_path)
        snprintf(what, sizeof what, "%s/metrics.csv (its rows from %s)", r->dir, r->ck_path);
    else
        snprintf(what, sizeof what, "%s/metrics.csv", r->dir);
    if (vae_metrics_parse(r->metrics, r->metrics_len, what, &t))
        return -1; /* only a resumed checkpoint's text can be malformed (and it was checked on opening) */
    size_t len;
    char *jsonl = vae_metrics_jsonl(&t, &len);
    vae_metrics_table_free(&t);
    int rc = vae_run_write_text(r->dir, "metrics.jsonl", jsonl, len);
    vae_free(jsonl);
    return rc;
}

/* metrics.csv's header line (with its newline) of model m, a layout will do: epoch, then per split
 * the loss and each of the model's terms (train_loss,train_recon,train_kl,test_loss,...), the
 * model's extra columns, then the timing columns. */
static void metrics_header_text(vae_model *m, int with_val, char *line, size_t cap)
{
    static const char *const splits[3] = {"train", "test", "val"};
    int w = snprintf(line, cap, "epoch");
    for (int sp = 0; sp < 2 + with_val; sp++) {
        w += snprintf(line + w, cap - (size_t)w, ",%s_loss", splits[sp]);
        for (int k = 0; k < m->n_terms; k++)
            w += snprintf(line + w, cap - (size_t)w, ",%s_%s", splits[sp], m->term[k].name);
    }
    vae_metrics_extra x; /* the variant's extra columns */
    vae_variant_metrics_extras(m, NULL, NULL, NULL, &x);
    for (int k = 0; k < x.n; k++)
        w += snprintf(line + w, cap - (size_t)w, ",%s", x.name[k]);
    snprintf(line + w, cap - (size_t)w, ",seconds,images_per_second\n");
}

/* ",loss,term,term..." of one split, in the header's order. */
static int metrics_cells(char *buf, size_t len, const vae_losses *l)
{
    int w = snprintf(buf, len, ",%.6f", l->loss);
    for (int k = 0; k < l->n_terms; k++)
        w += snprintf(buf + w, len - (size_t)w, ",%.6f", l->term[k]);
    return w;
}

static void metrics_row(run *r, const vae_epoch_metrics *e, const vae_losses *val, const vae_metrics_extra *x)
{
    char line[1024];
    int w = snprintf(line, sizeof line, "%d", e->epoch);
    w += metrics_cells(line + w, sizeof line - (size_t)w, &e->train);
    w += metrics_cells(line + w, sizeof line - (size_t)w, &e->test);
    if (val)
        w += metrics_cells(line + w, sizeof line - (size_t)w, val);
    for (int k = 0; k < x->n; k++)
        w += snprintf(line + w, sizeof line - (size_t)w, ",%.6f", x->value[k]);
    snprintf(line + w, sizeof line - (size_t)w, ",%.4f,%.1f\n", e->seconds, e->images_per_second);
    metrics_append(r, line);
}

/* provenance.txt: a new run's block, or the run's file with a resume's block appended.
 * argv is the command's (argv[0] "train"): main's argv[0], the program, is just before it. */
static int write_provenance(run *r, int resuming, int argc, char **argv)
{
    char *prov = vae_run_provenance(resuming ? "resumed" : "started", argc + 1, argv - 1, r->be->name, &r->data);
    if (resuming) {
        char path[CK_PATH_MAX];
        snprintf(path, sizeof path, "%s/provenance.txt", r->dir);
        char *old = NULL;
        size_t old_len = 0;
        struct stat st;
        /* a regular file of at most VAE_TEXT_FILE_MAX bytes: a FIFO there is refused, not waited on */
        if (!(stat(path, &st) != 0 && errno == ENOENT) && !(old = vae_read_text(path, VAE_TEXT_FILE_MAX, &old_len))) {
            vae_free(prov);
            return -1;
        }
        size_t n = old_len + strlen(prov) + 2;
        char *both = vae_calloc(n, 1);
        snprintf(both, n, "%s%s%s", old ? old : "", old_len ? "\n" : "", prov);
        vae_free(old);
        vae_free(prov);
        prov = both;
    }
    int rc = vae_run_write_text(r->dir, "provenance.txt", prov, strlen(prov));
    vae_free(prov);
    return rc;
}

/* The train_loss of metrics.csv's last row (the second column), so that a resume with nothing left
 * to train writes the model the run wrote; NAN when there is no row. */
static double last_train_loss(const run *r)
{
    if (!r->metrics || r->metrics_len < 2)
        return NAN;
    const char *end = r->metrics + r->metrics_len - 1; /* the last row's newline */
    const char *row = end;
    while (row > r->metrics && row[-1] != '\n')
        row--;
    const char *comma = memchr(row, ',', (size_t)(end - row));
    if (row == r->metrics || !comma) /* only the header */
        return NAN;
    char *stop;
    double v = strtod(comma + 1, &stop);
    return stop != comma + 1 ? v : NAN;
}

/* A run directory in use, or one that cannot be locked: exit 2, the message of vae_run_dir_lock. */
static int refuse_dir(void)
{
    fprintf(stderr, "cuvae train: %s\n", vae_last_error());
    return 2;
}

/* Whether the end of the run goes on: no failure and no signal. */
static int going(int rc) { return !rc && !vae_stop_signal; }

/* " --threads N" for a run on the CPU backend (the count its bits depend on), "" otherwise. */
static const char *threads_hint(const run *r, char *buf, size_t cap)
{
    buf[0] = 0;
    if (strcmp(r->be->name, "cpu") == 0)
        snprintf(buf, cap, " --threads %d", vae_cpu_threads());
    return buf;
}

/* Open the run of --resume DIR: its checkpoint, the recorded settings (checked against the flags
 * given), the new total of epochs and the device. Returns 0, or the exit code with ck freed. */
static int open_resume(run *r, vae_train_checkpoint *ck, char *ck_path, const vae_train_settings *given_ts,
                       const int *given, int device_given, int no_lock, char *data_dir)
{
    snprintf(ck_path, CK_PATH_MAX, "%s/%s", r->dir, CHECKPOINT_FILE);
    struct stat st;
    if (stat(r->dir, &st) == 0 && S_ISDIR(st.st_mode)) { /* locked before anything is read or removed */
        char what[CK_PATH_MAX];
        snprintf(what, sizeof what, "--resume %s", r->dir);
        if (vae_run_dir_lock(r->dir, what, no_lock, &r->lock_fd))
            return refuse_dir();
    }
    if (access(ck_path, F_OK) != 0) {
        vae_set_error("--resume %s: no %s there (%s)%s", r->dir, CHECKPOINT_FILE, strerror(errno),
                      errno == ENOENT ? "; the run stopped before its first checkpoint: start it again with "
                                        "--out DIR --force"
                                      : "");
        return vae_cli_fail();
    }
    if (vae_run_dir_check_writable(r->dir))
        return vae_cli_fail();
    vae_run_dir_remove_stale(r->dir);
    if (vae_train_checkpoint_read(ck_path, ck))
        return vae_cli_fail();
    if (vae_train_settings_check(ck, given_ts, given, r->dir)) {
        vae_train_checkpoint_free(ck);
        return vae_cli_usage_error("train", "%s", vae_last_error());
    }
    /* The recorded settings, then the new total of epochs and device if given. */
    vae_run_settings_default(&r->ts.s);
    if (vae_train_settings_recorded(ck, ck_path, &r->ts)) {
        vae_train_checkpoint_free(ck);
        return vae_cli_fail();
    }
    if (given[VAE_TS_EPOCHS])
        r->ts.s.epochs = given_ts->s.epochs;
    const char *dev = vae_train_checkpoint_setting(ck, "train.device");
    r->ts.s.device = given_ts->s.device;
    /* the recorded thread count unless --threads is given (then results differ from an uninterrupted
     * run's; said once the backend is known) */
    const char *threads = vae_train_checkpoint_setting(ck, "train.threads");
    if (threads && vae_cli_parse_int("train.threads", threads, 1, 1024, &r->recorded_threads)) {
        vae_set_error("%s: recorded train.threads '%.40s' is not a thread count", ck_path, threads);
        vae_train_checkpoint_free(ck);
        return vae_cli_fail();
    }
    r->ts.s.threads = given_ts->s.threads ? given_ts->s.threads : r->recorded_threads;
    if (!device_given && dev && vae_device_parse(dev, &r->ts.s.device))
        r->ts.s.device = VAE_DEVICE_AUTO;
    /* an epoch in progress is finished before the run can end */
    int least = ck->p.trainer.epochs_done + (ck->p.trainer.step > 0);
    if (r->ts.s.epochs < least) {
        int done = ck->p.trainer.epochs_done, step = ck->p.trainer.step;
        vae_train_checkpoint_free(ck);
        if (step)
            return vae_cli_usage_error("train", "--epochs %d: the run in %s is at epoch %d, step %d; give at least "
                                                "--epochs %d",
                                       r->ts.s.epochs, r->dir, done + 1, step, least);
        return vae_cli_usage_error("train", "--epochs %d: the run in %s has already done %d epochs",
                                   r->ts.s.epochs, r->dir, done);
    }
    if (vae_run_unescape(vae_train_checkpoint_setting(ck, "train.data"), data_dir, DATA_PATH_MAX)) {
        vae_train_checkpoint_free(ck);
        return vae_cli_fail();
    }
    r->ts.s.data_dir = data_dir;
    return 0;
}

/* Open a new run's directory: a unique default one, or --out when it holds no run (or --force).
 * Created, locked (run_dir.h) and checked for writing before any data is loaded; whether it
 * holds a run is decided under the lock. Returns 0, or the exit code. */
static int open_new(run *r, const char *out_dir, int force, int no_lock, char *default_out, int *created)
{
    if (!out_dir) {
        if (vae_run_dir_create_unique("models", default_out, DATA_PATH_MAX))
            return vae_cli_fail();
        *created = 1;
        r->dir = default_out;
        char what[CK_PATH_MAX];
        snprintf(what, sizeof what, "run directory %s", default_out);
        if (vae_run_dir_lock(default_out, what, no_lock, &r->lock_fd))
            return refuse_dir();
        return 0;
    }
    if (vae_run_dir_count_files(out_dir) < 0 || vae_run_dir_check_writable(out_dir))
        return vae_cli_fail();
    char what[CK_PATH_MAX];
    snprintf(what, sizeof what, "--out %s", out_dir);
    if (vae_run_dir_lock(out_dir, what, no_lock, &r->lock_fd))
        return refuse_dir();
    int n = vae_run_dir_count_files(out_dir);
    if (n < 0)
        return vae_cli_fail();
    if (n > 0 && !force)
        return vae_cli_usage_error("train",
                                   "--out %s holds a previous run; use --resume %s to continue it, --force to "
                                   "replace it, or another --out",
                                   out_dir, out_dir);
    r->dir = out_dir;
    return 0;
}

int vae_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_MODEL_KIND_OPTION, VAE_CLI_DEVICE_OPTION,
        VAE_CLI_TF32_OPTION,
        {"out", required_argument, 0, OPT_OUT},
        {"samples", required_argument, 0, VAE_OPT_SAMPLES},
        VAE_CLI_STEP_OPTIONS,
        {"scale", required_argument, 0, OPT_SCALE},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"force", no_argument, 0, OPT_FORCE},
        {"no-lock", no_argument, 0, OPT_NO_LOCK},
        {"resume", required_argument, 0, OPT_RESUME},
        {"checkpoint-every", required_argument, 0, VAE_OPT_CKPT_EVERY},
        {"val-fraction", required_argument, 0, VAE_OPT_VAL},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    /* SIGINT and SIGTERM blocked first, before any other thread exists, and taken by a thread of their
     * own (stop_signal.h): no handler may ever run inside a oneDNN GEMM. */
    if (vae_stop_signals_start("cuvae train"))
        return vae_cli_fail();
    vae_train_settings given_ts = {.samples = 64, .checkpoint_every = 1};
    vae_run_settings_default(&given_ts.s);
    vae_schedule_default(&given_ts.schedule);
    vae_toy_default(&given_ts.toy);
    const char *out_dir = NULL, *resume_dir = NULL;
    int quiet = 0, force = 0, no_lock = 0, given[VAE_TS_N] = {0}, device_given = 0, scale = VAE_PICTURES_SCALE_DEFAULT, c;
    optind = 0;
    while ((c = vae_cli_next_option("train", argc, argv, opts, help, NULL)) != -1) {
        if (c < 0)
            return vae_cli_exit_status(c);
        int r = vae_train_setting_parse(&given_ts, given, c, optarg);
        if (r < 0)
            return vae_cli_usage_error("train", "%s", vae_last_error());
        if (c == VAE_OPT_DEVICE)
            device_given = 1;
        if (r > 0)
            continue;
        if (c == OPT_OUT)
            out_dir = optarg;
        else if (c == OPT_QUIET)
            quiet = 1;
        else if (c == OPT_FORCE)
            force = 1;
        else if (c == OPT_NO_LOCK)
            no_lock = 1;
        else if (c == OPT_RESUME)
            resume_dir = optarg;
        else if (c == OPT_SCALE && vae_cli_parse_int("--scale", optarg, 1, 64, &scale))
            return vae_cli_usage_error("train", "%s", vae_last_error());
    }
    if (given[VAE_TS_MATH] && given_ts.s.device == VAE_DEVICE_CPU)
        return vae_cli_refuse_tf32("train", "--device cpu");
    if (resume_dir && (out_dir || force))
        return vae_cli_usage_error("train", "--resume DIR continues the run in DIR; it takes neither --out nor "
                                            "--force");
    if (!resume_dir && vae_train_settings_new_run(&given_ts, given))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    run r;
    memset(&r, 0, sizeof r);
    r.lock_fd = -1;
    r.ts = given_ts;
    r.best_val = NAN;
    char default_out[DATA_PATH_MAX], ck_path[CK_PATH_MAX];
    vae_train_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    int resuming = resume_dir != NULL, created_default = 0;

    /* 1. The run directory, before anything is loaded. */
    if (resuming) {
        r.dir = resume_dir;
        if ((c = open_resume(&r, &ck, ck_path, &given_ts, given, device_given, no_lock, default_out)))
            return c;
    } else if ((c = open_new(&r, out_dir, force, no_lock, default_out, &created_default))) {
        return c;
    }
    vae_run_settings *s = &r.ts.s;

    /* 2. The data, its digests, the validation split. */
    int rc = 1;
    vae_dataset all, train, test, val;
    memset(&val, 0, sizeof val);
    memset(&train, 0, sizeof train);
    const int toy = vae_toy_selected(s->data_dir);
    if (toy ? vae_toy_datasets(&r.ts.toy, s->seed, &all, &test) : load_data(s->data_dir, &all, &test)) {
        vae_cli_fail();
        if (created_default) { /* the empty directory this run made, its lock file with it */
            char lock[CK_PATH_MAX];
            snprintf(lock, sizeof lock, "%s/%s", r.dir, VAE_RUN_LOCK_FILE);
            unlink(lock);
            rmdir(r.dir);
        }
        vae_train_checkpoint_free(&ck);
        return 1;
    }
    if (toy)
        toy_run_data(&r.data);
    if ((!toy && vae_run_data_hash(s->data_dir, &r.data)) ||
        vae_run_escape(r.data.dir, r.data_esc, sizeof r.data_esc) != 0 ||
        (resuming && vae_train_settings_check_data(&ck, ck_path, &r.data))) {
        vae_cli_fail();
        goto free_data;
    }
    r.ts.data_abs = r.data_esc;
    if ((rc = binarize_data(&r.ts, &all, &test)))
        goto free_data;
    rc = 1;
    if (r.ts.val_fraction > 0) {
        if (vae_holdout_split(&all, r.ts.val_fraction, s->seed, &train, &val)) {
            rc = vae_cli_usage_error("train", "%s", vae_last_error());
            goto free_data;
        }
        vae_dataset_free(&all);
        if (r.ts.binarize == VAE_BINARIZE_DYNAMIC)
            vae_binarize_static(&val, s->seed ^ SEED_BINARIZE_VAL);
    } else {
        train = all;
        memset(&all, 0, sizeof all);
    }
    s->cfg.input_dim = train.dim;
    s->cfg.image_rows = train.rows;
    s->cfg.image_cols = train.cols;
    if (s->batch_size > train.n) { /* a batch is at most the data set; the rest would be allocated unused */
        fprintf(stderr, "note: --batch-size %d is larger than the %d training %s: each epoch is one batch of %d, "
                        "recorded as --batch-size %d\n",
                s->batch_size, train.n, toy ? "values" : "images", train.n, train.n);
        s->batch_size = train.n;
    }
    if (set_classes(&s->cfg, s->data_dir, &train, &test)) {
        vae_cli_fail();
        goto free_data;
    }
    if (vae_config_validate(&s->cfg)) {
        rc = vae_cli_usage_error("train", "%s", vae_last_error());
        goto free_data;
    }
    if (resuming) { /* the checkpoint against the run it continues, before anything is allocated for it */
        vae_model layout;
        char header[1024];
        if (vae_model_layout(&layout, &s->cfg))
            vae_fatal("model: %s", vae_last_error()); /* the config was validated above */
        metrics_header_text(&layout, val.n > 0, header, sizeof header);
        if (vae_train_checkpoint_check(&ck, ck_path, &layout, ((long)train.n + s->batch_size - 1) / s->batch_size,
                                       header)) {
            vae_cli_fail();
            goto free_data;
        }
    }

    /* 3. Backend, model, trainer. */
    r.be = vae_cli_backend(s, stderr);
    if (!r.be) {
        vae_cli_fail();
        goto free_data;
    }
    if (r.recorded_threads && strcmp(r.be->name, "cpu") == 0 && vae_cpu_threads() != r.recorded_threads)
        fprintf(stderr, "note: the run was trained with --threads %d and resumes with %d: oneDNN splits its GEMMs "
                        "by the thread count, so the results will differ from an uninterrupted run's\n",
                r.recorded_threads, vae_cpu_threads());
    vae_device_plan plan; /* what the run will allocate, checked against the GPU's free memory first */
    if (vae_device_plan_train(&plan, &s->cfg, s->batch_size, train.n + val.n, test.n, train.kind) ||
        vae_device_plan_check(&plan, r.be)) {
        vae_cli_fail();
        vae_backend_free(r.be);
        goto free_data;
    }
    if (vae_model_init(&r.m, &s->cfg, r.be, s->batch_size))
        vae_fatal("model: %s", vae_last_error()); /* the config was validated above */
    if (resuming) {
        if (vae_train_checkpoint_restore(&ck, ck_path, &r.m)) {
            vae_cli_fail();
            goto free_model;
        }
    } else {
        vae_model_init_params(&r.m, s->seed);
    }
    if (toy)
        fprintf(stderr, "data: toy, a mixture of %d Gaussians drawn with --seed %llu (%d training, %d test values)\n",
                r.ts.toy.k, (unsigned long long)s->seed, train.n + val.n, test.n);
    else
        fprintf(stderr, "data: %s (%d training, %d test images, %dx%d)\n", s->data_dir, train.n, test.n,
                train.rows, train.cols);
    print_binarization(&r.ts, val.n > 0);
    if (val.n)
        fprintf(stderr, "validation: %d images held out of the training set (--val-fraction %g)\n", val.n,
                (double)r.ts.val_fraction);
    vae_model_print_summary(&r.m, stderr);

    vae_device_data dtrain, dtest, dval;
    memset(&dval, 0, sizeof dval);
    vae_device_data_init(&dtrain, r.be, &train);
    vae_device_data_init(&dtest, r.be, &test);
    if (val.n)
        vae_device_data_init(&dval, r.be, &val);

    vae_train_options topt;
    vae_train_options_default(&topt, s->epochs, s->batch_size, s->lr, s->seed);
    topt.clip_grad_norm = r.ts.clip_grad_norm;
    topt.binarize_dynamic = r.ts.binarize == VAE_BINARIZE_DYNAMIC;
    topt.schedule = r.ts.schedule;
    topt.progress = quiet ? -1 : vae_progress_auto_mode(stderr);
    topt.stop = &vae_stop_signal;
    r.t = vae_trainer_init(&r.m, &topt);
    vae_stop_signals_arm(); /* from here a signal ends the run with a checkpoint */

    /* 4. The run directory's files: the old run's go (--force), provenance, metrics. */
    if (force && vae_run_dir_clear(r.dir)) {
        vae_cli_fail();
        goto free_trainer;
    }
    vae_run_dir_remove_stale(r.dir);
    if (write_provenance(&r, resuming, argc, argv)) {
        vae_cli_fail();
        goto free_trainer;
    }
    if (resuming) {
        r.ck_path = ck_path;
        metrics_append(&r, ck.p.metrics);
        r.best_val = ck.p.best_val;
        r.best_epoch = ck.p.best_epoch;
        vae_trainer_set_state(r.t, &ck.p.trainer);
        if (ck.p.trainer.epochs_done >= s->epochs)
            fprintf(stderr, "resuming %s: its %d epochs are done; writing its model and pictures again\n", r.dir,
                    s->epochs);
        else
            fprintf(stderr, "resuming %s at epoch %d, step %d, to %d epochs\n", r.dir,
                    ck.p.trainer.epochs_done + 1, ck.p.trainer.step, s->epochs);
    } else {
        char header[1024];
        metrics_header_text(&r.m, val.n > 0, header, sizeof header);
        metrics_append(&r, header);
    }
    if (write_metrics(&r)) {
        vae_cli_fail();
        goto free_trainer;
    }

    /* 5. Train. */
    vae_epoch_metrics e = {0};
    double total_s = 0;
    int done = resuming ? ck.p.trainer.epochs_done : 0;
    vae_train_checkpoint_free(&ck);
    int saved_at = -1; /* epochs done at the last checkpoint */
    char hint[64];
    while (done < s->epochs && !vae_stop_signal) {
        int stopped = vae_trainer_epoch(r.t, &dtrain, &dtest, done + 1, &e);
        vae_divergence div;
        if (vae_trainer_diverged(r.t, &div)) {
            /* The parameters are the last good ones, but the noise and the data order have moved past the
             * bad step: nothing of this epoch is saved, and the last checkpoint stays as it is. */
            fprintf(stderr,
                    "cuvae train: training diverged at epoch %d, step %d of the epoch (step %ld of the run): the "
                    "%s became NaN or infinite. That step and later ones were not applied; nothing of this epoch "
                    "was saved (metrics.csv and the last checkpoint hold the epochs before it). Try a lower --lr "
                    "(now %g) or --clip-grad-norm.\n",
                    div.epoch, div.epoch_step, div.step, vae_diverged_quantity_name(div.quantity), (double)s->lr);
            rc = VAE_EXIT_DIVERGED;
            goto free_trainer;
        }
        if (stopped)
            break; /* stopped mid-epoch by a signal */
        done++;
        total_s += e.seconds;
        vae_losses vl;
        if (val.n)
            vl = vae_evaluate(&r.m, &dval, s->seed);
        vae_metrics_extra extra;
        vae_variant_metrics_extras(&r.m, r.t, &dtest, &test, &extra);
        metrics_row(&r, &e, val.n ? &vl : NULL, &extra);
        if (val.n && !(vl.loss >= r.best_val)) { /* first, or better */
            r.best_val = vl.loss;
            r.best_epoch = done;
            if (save_model(&r, "best.safetensors", &e)) {
                vae_cli_fail();
                goto free_trainer;
            }
        }
        if (done % r.ts.checkpoint_every == 0 || done == s->epochs) {
            if (save_checkpoint(&r)) {
                vae_cli_fail();
                goto free_trainer;
            }
            saved_at = done;
        }
        if (write_metrics(&r)) {
            vae_cli_fail();
            goto free_trainer;
        }
        char terms[256];
        vae_losses_describe(&e.train, &r.m, terms, sizeof terms);
        fprintf(stderr, "epoch %3d/%d  train %.4f%s  test %.4f", done, s->epochs, e.train.loss, terms, e.test.loss);
        if (vae_model_reads_label(&r.m))
            fprintf(stderr, " (%s bound)", vae_model_nll_name(&r.m));
        if (val.n)
            fprintf(stderr, "  val %.4f", vl.loss);
        for (int k = 0; k < extra.n; k++)
            fprintf(stderr, "  %s %.4f", extra.name[k], extra.value[k]);
        fprintf(stderr, "  %.2f s  %.0f img/s\n", e.seconds, e.images_per_second);
    }
    if (vae_stop_signal) {
        vae_trainer_state st;
        vae_trainer_get_state(r.t, &st);
        if ((st.step || saved_at != done) && save_checkpoint(&r)) {
            vae_cli_fail();
            goto free_trainer;
        }
        if (st.epochs_done >= s->epochs)
            fprintf(stderr, "interrupted after the last epoch, before the model and the pictures were written; "
                            "resume with: cuvae train --resume %s%s\n",
                    r.dir, threads_hint(&r, hint, sizeof hint));
        else
            fprintf(stderr, "interrupted at epoch %d, step %d; resume with: cuvae train --resume %s%s\n",
                    st.epochs_done + 1, st.step, r.dir, threads_hint(&r, hint, sizeof hint));
        rc = 128 + vae_stop_signal;
        goto free_trainer;
    }

    /* 6. The model and its pictures. */
    rc = 0;
    if (e.epoch == 0) {
        /* a resume with nothing left to train: the model of the checkpoint, evaluated again */
        e.epoch = done;
        e.train.loss = last_train_loss(&r);
        e.test = vae_evaluate(&r.m, &dtest, s->seed);
    }
    double tv = NAN;
    if (toy && !vae_stop_signal) { /* its pictures first: the distance they compute goes into the model's metadata */
        if (vae_toy_pictures_write(&r.m, &r.ts.toy, &train, &test, r.dir, s->seed, &tv))
            rc = vae_cli_fail();
        snprintf(r.toy_tv, sizeof r.toy_tv, "%.6f", tv);
    }
    if (going(rc) && save_model(&r, "model.safetensors", &e))
        rc = vae_cli_fail();
    char path[4200];
    if (!toy) {
        snprintf(path, sizeof path, "%s/samples.png", r.dir);
        if (going(rc) && vae_render_samples(&r.m, path, r.ts.samples, -1, s->seed, scale))
            rc = vae_cli_fail();
        snprintf(path, sizeof path, "%s/reconstructions.png", r.dir);
        if (going(rc) && vae_render_reconstructions(&r.m, &test, path, 32, scale))
            rc = vae_cli_fail();
        if (going(rc) && vae_variant_pictures(&r.m, r.dir, s->seed, scale)) /* the variant's own, if any */
            rc = vae_cli_fail();
        snprintf(path, sizeof path, "%s/metrics.csv", r.dir);
        vae_pictures_options po = {.scale = scale, .seed = s->seed, .metrics_csv = path, .log = NULL};
        if (going(rc) && vae_pictures_write_all(&r.m, &test, r.dir, &po) < 0)
            rc = vae_cli_fail();
    }
    if (going(rc) && vae_report_write(r.dir))
        rc = vae_cli_fail();
    if (!rc && vae_stop_signal) {
        /* a signal after the last epoch: the checkpoint of the finished run is whole, and a resume
         * writes the model and the pictures again */
        fprintf(stderr, "interrupted after the last epoch, while writing the model and the pictures; the "
                        "checkpoint holds the finished run: cuvae train --resume %s%s writes them again\n",
                r.dir, threads_hint(&r, hint, sizeof hint));
        rc = 128 + vae_stop_signal;
    } else if (!rc && toy) {
        double lo, hi;
        vae_toy_range(&r.ts.toy, &lo, &hi);
        fprintf(stderr, "trained %d epochs in %.1f s; final test loss %.4f nats/value\n"
                        "toy: total variation distance %.4f between %d generated values x ~ p(x|z), z ~ N(0, 1), "
                        "and the true mixture (histogram bins of %g on [%g, %g] and one bin beyond each end)\n"
                        "wrote %s/{model.safetensors,checkpoint.safetensors,metrics.csv,metrics.jsonl,provenance.txt,"
                        "toy_density.svg,toy_latent.svg,toy_generated.svg,report.html%s} (no image pictures: the "
                        "toy's rows are not images)\n",
                s->epochs, total_s, e.test.loss, tv, VAE_TOY_TV_SAMPLES, VAE_TOY_TV_BIN_WIDTH, lo, hi, r.dir,
                val.n ? ",best.safetensors" : "");
    } else if (!rc) {
        const char *own = vae_variant_of(&r.m.cfg)->picture_files; /* the variant's own pictures */
        fprintf(stderr, "trained %d epochs in %.1f s; final test loss %.4f nats/image%s\n"
                        "wrote %s/{model.safetensors,checkpoint.safetensors,metrics.csv,metrics.jsonl,provenance.txt,"
                        "samples.png,reconstructions.png,report.html%s%s%s} and the pictures (cuvae plot --help)\n",
                s->epochs, total_s, e.test.loss, vae_model_reads_label(&r.m) ? " (a bound on -log p(x|y))" : "", r.dir,
                val.n ? ",best.safetensors" : "", own ? "," : "", own ? own : "");
    }

free_trainer:
    vae_trainer_free(r.t);
    vae_device_data_free(&dtrain, r.be);
    vae_device_data_free(&dtest, r.be);
    if (val.n)
        vae_device_data_free(&dval, r.be);
free_model:
    vae_model_free(&r.m);
    vae_backend_free(r.be);
free_data:
    vae_train_checkpoint_free(&ck);
    vae_free(r.metrics);
    vae_dataset_free(&all);
    vae_dataset_free(&train);
    vae_dataset_free(&val);
    vae_dataset_free(&test);
    return vae_stop_signals_finish(rc);
}
