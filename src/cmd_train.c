/*
 * cmd_train.c: `cuvae train`, the steps of a run from top to bottom: parse the flags, open the
 * run directory (new, or --resume DIR's: run_open.c), load the data from its source
 * (data_source.h), make the backend, model and trainer, start the log (run_log.c), train with a
 * checkpoint every N epochs, then write the pictures, model.safetensors and report.html.
 * SIGINT/SIGTERM stop it after the current step with a checkpoint.
 *
 * Exit codes: 0 done; 1 a failure (data, files, devices); 2 a usage error
 * (a bad flag, an --out holding a previous run, a resume with other
 * settings); 3 diverged; 130 / 143 stopped by SIGINT / SIGTERM after writing a checkpoint.
 *
 * Not here: the loop itself (train.c), the checkpoint format (train_state.c), the run's
 * directory and log (train_run.h), run-directory rules and provenance (run_dir.c).
 */
#define _GNU_SOURCE
#include "train_run.h"

#include "devmem.h"
#include "holdout.h"
#include "pictures.h"
#include "progress.h"
#include "report.h"
#include "stop_signal.h"
#include "vae_util.h"
#include "variant.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { OPT_OUT = VAE_OPT_TRAIN_NEXT, OPT_QUIET, OPT_FORCE, OPT_RESUME, OPT_SCALE, OPT_NO_LOCK };

static void help(void)
{
    printf("usage: cuvae train [options]\n"
           "       cuvae train --resume DIR [--epochs N | --steps N] [--device DEV] [--threads N] [--quiet]\n\n"
           "Train a VAE with a Bernoulli decoder and a Gaussian posterior; each epoch prints\n"
           "the training loss split into reconstruction and KL, and the test loss, per image in nats.\n\n"
           "%s%s%s%s%s"
           "  --out DIR           run directory (default models/vae-YYYYmmdd-HHMMSS-PID, always new);\n"
           "                      one that holds a previous run is refused without --force\n"
           "  --force             replace the run in --out: its cuvae files are removed once the new\n"
           "                      run's data has loaded\n"
           "  --resume DIR        continue the run in DIR from its checkpoint; only --epochs or --steps,\n"
           "                      --device, --threads and --quiet may change (another --threads changes\n"
           "                      the bits)\n"
           "  --no-lock           run where the file system refuses locks (flock and POSIX record locks);\n"
           "                      the run directory is then not protected from a second writer\n"
           "  --checkpoint-every N  write DIR/checkpoint.safetensors every N epochs (default 1)\n"
           "  --steps N           the run's length in training steps instead of --epochs: the epochs\n"
           "                      that hold them, the last one stopped part-way (resumable; a resume\n"
           "                      may give more --steps)\n"
           "  --log-every N       every N steps a row of DIR/metrics_steps.csv and .jsonl: step,\n"
           "                      fractional epoch, the loss and its terms over those N steps, lr, KL\n"
           "                      weight (and temperature, capacities); loss_curves.svg draws them\n"
           "                      (default 0: none)\n"
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
           "  --condition WHICH   cvae: both (default): the encoder and the decoder read the label;\n"
           "                      decoder: the decoder alone (q(z|x), p(x|z, y))\n"
           "  --temperature T     joint: Gumbel-softmax temperature (default 0.67)\n"
           "  --temperature-anneal T_END  joint: to T_END linearly over the run\n"
           "  --capacity-z MAX,ITERS,GAMMA  joint: gamma |KL_z - C_z|, C_z rising from 0 to MAX\n"
           "                      nats over ITERS steps (paper: 5,25000,30); default: plain KL\n"
           "  --capacity-c MAX,ITERS,GAMMA  joint: the same for KL_c, C_c at most log K\n"
           "  --binarize MODE     none (default): values as they are; dynamic: every image a fresh\n"
           "                      Bernoulli draw of its pixels at every step (seeded), tested on a static\n"
           "                      draw of the test set; static: one fixed draw of the training and test sets\n"
           "                      (data in [0, 1] only)\n"
           "  --binarize-test HOW with --binarize dynamic: fixed (default): the test loss on one draw of\n"
           "                      the test set; redraw: a fresh draw each epoch (epoch 1's is the fixed\n"
           "                      one), as the Theano practical does; validation stays one draw\n"
           "  --data toy          the 1-D Gaussian-mixture toy, drawn in memory (seeded by --seed); its model\n"
           "                      defaults to a 1-D latent, --hidden 100,100, tanh, --likelihood gaussian,\n"
           "                      --sigma 0.1; writes toy_density.svg and the panels toy_latent.svg\n"
           "                      (encoding), toy_decoded.svg (decoding), toy_generated.svg (generation)\n"
           "  --toy-weights W,..  component weights, each > 0, normalized to sum 1 (default " VAE_TOY_DEFAULT_WEIGHTS ")\n"
           "  --toy-means M,..    component means (default " VAE_TOY_DEFAULT_MEANS ")\n"
           "  --toy-stds S,..     component standard deviations, each > 0 (default " VAE_TOY_DEFAULT_STDS ")\n"
           "  --toy-n TRAIN,TEST  rows drawn for the training and test sets (default " VAE_TOY_DEFAULT_N ")\n"
           "  --snapshot-every N  toy: the three panels of the model after every N steps, each kept as\n"
           "                      toy_snapshot_<step>.svg; auto (default): dense early, sparse later (steps\n"
           "                      0, 10, 20, 50, 100, 200, 500, ...) and the last; off: none\n"
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

/* The seed of --binarize dynamic's one static draw of the validation set is --seed ^ this; the
 * training set's (static) is --seed ^ VAE_SEED_BINARIZE_TRAIN (evaluate.h), the test set's --seed. */
#define SEED_BINARIZE_VAL 0x62696e76616cull /* "binval" */

/* --binarize before the validation split: static draws the training set once; both static and
 * dynamic test on one static draw of the test set. 0, or the exit code. */
static int binarize_data(const vae_train_settings *ts, vae_dataset *all, vae_dataset *test)
{
    if (ts->binarize == VAE_BINARIZE_NONE)
        return 0;
    const char *what = vae_data_source_of(ts->s.data_dir)->what(ts->s.data_dir);
    if (vae_binarize_check(all, what) || vae_binarize_check(test, what))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    if (ts->binarize == VAE_BINARIZE_STATIC)
        vae_binarize_static(all, ts->s.seed ^ VAE_SEED_BINARIZE_TRAIN);
    vae_binarize_static(test, ts->s.seed);
    return 0;
}

/* --binarize-test redraw: the test set as epoch `epoch` evaluates it, a fresh draw of its grey levels
 * (epoch 1's is the run's first, fixed draw), on the host (the pictures read it) and on the backend. */
static void redraw_test(vae_train_run *r, int epoch)
{
    if (!r->ts.binarize_test_redraw)
        return;
    const size_t bytes = (size_t)r->test.n * r->test.dim * vae_data_value_size(r->test.kind);
    if (r->test.kind == VAE_DATA_FLOATS)
        memcpy(r->test.values, r->test_grey.values, bytes);
    else
        memcpy(r->test.pixels, r->test_grey.pixels, bytes);
    vae_binarize_static(&r->test, vae_binarize_epoch_seed(r->ts.s.seed, epoch));
    vae_device_data_upload_values(&r->dtest, r->be, &r->test);
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
    else if (ts->binarize_test_redraw)
        fprintf(stderr, "binarization: dynamic (the training loss on a fresh Bernoulli draw of every image at "
                        "every step; the test loss on a fresh draw of the test set each epoch (--binarize-test "
                        "redraw; epoch E's is `cuvae eval --binarize static --seed %llu --binarize-epoch E`)%s)\n",
                seed, val ? "; the validation loss on one fixed draw" : "");
    else
        fprintf(stderr, "binarization: dynamic (the training loss on a fresh Bernoulli draw of every image at "
                        "every step; the %stest loss on one fixed draw, as `cuvae eval --binarize static --seed "
                        "%llu`)\n",
                val ? "validation and " : "", seed);
}

/* A conditional model's classes: 1 + the largest training label, every test label below it.
 * 0, or -1 with vae_set_error naming the labels. */
static int set_classes(vae_train_run *r)
{
    vae_config *cfg = &r->ts.s.cfg;
    const vae_variant *v = vae_variant_of(cfg);
    const char *data = r->ts.s.data_dir;
    char src[4096];
    if (!v->reads_labels)
        return 0;
    r->source->labels_name(data, VAE_SPLIT_TRAIN, src, sizeof src);
    if (!r->train.labels)
        return vae_set_error("%s: the data has no labels; --model %s needs one per image", src, v->name);
    cfg->classes = r->train.classes;
    if (cfg->classes < 2)
        return vae_set_error("%s: --model %s needs at least 2 label classes; the training labels hold %d", src,
                             v->name, cfg->classes);
    r->source->labels_name(data, VAE_SPLIT_TEST, src, sizeof src);
    return vae_dataset_check_labels(&r->test, cfg->classes, src);
}

/* ---- the steps of a run -------------------------------------------------------- */

/* The flags of one invocation. */
typedef struct {
    vae_train_settings ts; /* the settings given (defaults where not) */
    int given[VAE_TS_N];   /* 1 for each setting given as a flag */
    const char *out_dir, *resume_dir;
    int quiet, force, no_lock, device_given, scale;
} train_args;

/* One flag of train: a setting (the table of train_settings.h), or one of the invocation's own. */
static int train_option(void *ctx, int c, const char *arg)
{
    train_args *a = ctx;
    int r = vae_train_setting_parse(&a->ts, a->given, c, arg);
    if (r < 0)
        return vae_cli_usage_error("train", "%s", vae_last_error());
    if (c == VAE_OPT_DEVICE)
        a->device_given = 1;
    if (r > 0)
        return 0;
    if (c == OPT_OUT)
        a->out_dir = arg;
    else if (c == OPT_QUIET)
        a->quiet = 1;
    else if (c == OPT_FORCE)
        a->force = 1;
    else if (c == OPT_NO_LOCK)
        a->no_lock = 1;
    else if (c == OPT_RESUME)
        a->resume_dir = arg;
    else if (c == OPT_SCALE && vae_cli_parse_int("--scale", arg, 1, 64, &a->scale))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    return 0;
}

/* Parse the flags into a; -1 when they are good, else the exit code (help, or a usage error). */
static int parse_args(int argc, char **argv, train_args *a)
{
    static const struct option fixed[] = {
        VAE_CLI_TRAINING_OPTIONS, VAE_CLI_MODEL_OPTIONS, VAE_CLI_MODEL_KIND_OPTION, VAE_CLI_DEVICE_OPTION,
        VAE_CLI_TF32_OPTION,
        {"out", required_argument, 0, OPT_OUT},
        {"scale", required_argument, 0, OPT_SCALE},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"force", no_argument, 0, OPT_FORCE},
        {"no-lock", no_argument, 0, OPT_NO_LOCK},
        {"resume", required_argument, 0, OPT_RESUME},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct option opts[sizeof fixed / sizeof fixed[0] + VAE_TS_N];
    vae_train_setting_options(opts, fixed, 0); /* and the flags of train's own settings */
    memset(a, 0, sizeof *a);
    a->ts.samples = 64;
    a->ts.checkpoint_every = 1;
    vae_run_settings_default(&a->ts.s);
    vae_schedule_default(&a->ts.schedule);
    vae_toy_default(&a->ts.toy);
    a->scale = VAE_PICTURES_SCALE_DEFAULT;
    int rc = vae_cli_parse("train", argc, argv, opts, help, NULL, train_option, a);
    if (rc >= 0)
        return rc;
    if (a->given[VAE_TS_MATH] && a->ts.s.device == VAE_DEVICE_CPU)
        return vae_cli_refuse_tf32("train", "--device cpu");
    if (a->resume_dir && (a->out_dir || a->force))
        return vae_cli_usage_error("train", "--resume DIR continues the run in DIR; it takes neither --out nor "
                                            "--force");
    if (!a->resume_dir && vae_train_settings_new_run(&a->ts, a->given))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    return -1;
}

/* 2. The data from its source, its record, binarization, the validation split, and what the model
 * takes from it (its size; a conditional model's classes). 0, or the exit code. */
static int load_data(vae_train_run *r)
{
    vae_run_settings *s = &r->ts.s;
    r->source = vae_data_source_of(s->data_dir);
    vae_dataset all;
    if (r->source->load(&r->ts, &all, &r->test))
        return vae_cli_fail();
    r->train = all; /* freed with the run until the split below */
    if (r->source->record(s->data_dir, &r->data) || vae_run_escape(r->data.dir, r->data_esc, sizeof r->data_esc) ||
        (r->resuming && vae_train_settings_check_data(&r->ck, r->ck_path, &r->data)))
        return vae_cli_fail();
    r->ts.data_abs = r->data_esc;
    if (r->ts.binarize_test_redraw) { /* the grey levels kept, each epoch's draw made from them */
        int32_t *all_rows = vae_calloc((size_t)r->test.n, sizeof(int32_t));
        for (int i = 0; i < r->test.n; i++)
            all_rows[i] = i;
        vae_dataset_subset(&r->test, all_rows, r->test.n, &r->test_grey);
        vae_free(all_rows);
    }
    int rc = binarize_data(&r->ts, &r->train, &r->test);
    if (rc)
        return rc;
    if (r->ts.val_fraction > 0) {
        memset(&r->train, 0, sizeof r->train);
        rc = vae_holdout_split(&all, r->ts.val_fraction, s->seed, &r->train, &r->val);
        vae_dataset_free(&all);
        if (rc)
            return vae_cli_usage_error("train", "%s", vae_last_error());
        if (r->ts.binarize == VAE_BINARIZE_DYNAMIC)
            vae_binarize_static(&r->val, s->seed ^ SEED_BINARIZE_VAL);
    }
    s->cfg.input_dim = r->train.dim;
    s->cfg.image_rows = r->train.rows;
    s->cfg.image_cols = r->train.cols;
    if (s->batch_size > r->train.n) { /* a batch is at most the data set; the rest would be allocated unused */
        fprintf(stderr, "note: --batch-size %d is larger than the %d training %ss: each epoch is one batch of %d, "
                        "recorded as --batch-size %d\n",
                s->batch_size, r->train.n, r->source->row, r->train.n, r->train.n);
        s->batch_size = r->train.n;
    }
    if (r->ts.steps > 0) { /* --steps: the epochs that hold them, the last one perhaps cut short */
        const long spe = ((long)r->train.n + s->batch_size - 1) / s->batch_size;
        const long done = r->resuming ? (long)r->ck.p.trainer.epochs_done * spe + r->ck.p.trainer.step : 0;
        if (r->ts.steps < done)
            return vae_cli_usage_error("train", "--steps %d: the run in %s has already done %ld steps", r->ts.steps,
                                       r->dir, done);
        s->epochs = (int)((r->ts.steps + spe - 1) / spe);
    }
    if (set_classes(r))
        return vae_cli_fail();
    if (vae_config_validate(&s->cfg))
        return vae_cli_usage_error("train", "%s", vae_last_error());
    if (r->resuming) { /* the checkpoint against the run it continues, before anything is allocated for it */
        vae_model layout;
        char header[1024];
        if (vae_model_layout(&layout, &s->cfg))
            vae_fatal("model: %s", vae_last_error()); /* the config was validated above */
        vae_run_metrics_header(&layout, r->val.n > 0, header, sizeof header);
        if (vae_train_checkpoint_check(&r->ck, r->ck_path, &layout,
                                       ((long)r->train.n + s->batch_size - 1) / s->batch_size, header))
            return vae_cli_fail();
    }
    return 0;
}

/* The data source's snapshot after a step (the toy's panels, --snapshot-every); a failure is said once and
 * ends the snapshots, not the run. */
static void snapshot(vae_train_run *r, long step, double epoch, int last)
{
    if (!r->source->snapshot || r->snapshot_failed)
        return;
    vae_source_step s = {.m = &r->m, .ts = &r->ts, .test = &r->test, .dir = r->dir, .step = step, .epoch = epoch,
                         .last = last};
    if (r->source->snapshot(&s)) {
        fprintf(stderr, "cuvae train: no more snapshots: %s\n", vae_last_error());
        r->snapshot_failed = 1;
    }
}

static void at_step(void *ctx, long step, double epoch)
{
    snapshot(ctx, step, epoch, 0);
}

/* 3. Backend, model (initialized, or the checkpoint's), the run's header lines, the data on the
 * backend, the trainer. 0, or the exit code. */
static int start_model(vae_train_run *r, const train_args *a)
{
    vae_run_settings *s = &r->ts.s;
    r->be = vae_cli_backend(s, stderr);
    if (!r->be)
        return vae_cli_fail();
    if (r->recorded_threads && strcmp(r->be->name, "cpu") == 0 && vae_cpu_threads() != r->recorded_threads)
        fprintf(stderr, "note: the run was trained with --threads %d and resumes with %d: oneDNN splits its GEMMs "
                        "by the thread count, so the results will differ from an uninterrupted run's\n",
                r->recorded_threads, vae_cpu_threads());
    vae_device_plan plan; /* what the run will allocate, checked against the GPU's free memory first */
    if (vae_device_plan_train(&plan, &s->cfg, s->batch_size, r->train.n + r->val.n, r->test.n, r->train.kind) ||
        vae_device_plan_check(&plan, r->be))
        return vae_cli_fail();
    if (vae_model_init(&r->m, &s->cfg, r->be, s->batch_size))
        vae_fatal("model: %s", vae_last_error()); /* the config was validated above */
    r->model_ready = 1;
    if (!r->resuming)
        vae_model_init_params(&r->m, s->seed);
    else if (vae_train_checkpoint_restore(&r->ck, r->ck_path, &r->m))
        return vae_cli_fail();
    r->source->describe(&r->ts, &r->train, &r->test, r->val.n, stderr);
    print_binarization(&r->ts, r->val.n > 0);
    if (r->val.n)
        fprintf(stderr, "validation: %d images held out of the training set (--val-fraction %g)\n", r->val.n,
                (double)r->ts.val_fraction);
    vae_model_print_summary(&r->m, stderr);

    vae_device_data_init(&r->dtrain, r->be, &r->train);
    vae_device_data_init(&r->dtest, r->be, &r->test);
    if (r->val.n)
        vae_device_data_init(&r->dval, r->be, &r->val);
    vae_train_options topt;
    vae_train_options_default(&topt, s->epochs, s->batch_size, s->lr, s->seed);
    topt.clip_grad_norm = r->ts.clip_grad_norm;
    topt.binarize_dynamic = r->ts.binarize == VAE_BINARIZE_DYNAMIC;
    topt.schedule = r->ts.schedule;
    topt.progress = a->quiet ? -1 : vae_progress_auto_mode(stderr);
    topt.stop = &vae_stop_signal;
    topt.row = r->source->row;
    topt.rate = r->source->rate;
    topt.total_steps = r->ts.steps;
    topt.log_every = r->ts.log_every;
    topt.at_step = at_step;
    topt.at_step_ctx = r;
    r->t = vae_trainer_init(&r->m, &topt);
    if (r->resuming) {
        r->best_val = r->ck.p.best_val;
        r->best_epoch = r->ck.p.best_epoch;
        vae_trainer_set_state(r->t, &r->ck.p.trainer);
    }
    return 0;
}

/* 4. The run directory's files: the old run's go (--force), provenance, metrics. 0, or the exit code. */
static int begin_log(vae_train_run *r, const train_args *a, int argc, char **argv)
{
    if (a->force && vae_run_dir_clear(r->dir))
        return vae_cli_fail();
    vae_run_dir_remove_stale(r->dir);
    if (vae_run_log_begin(r, argc, argv))
        return vae_cli_fail();
    const vae_trainer_state *st = &r->ck.p.trainer;
    if (r->resuming && st->epochs_done >= r->ts.s.epochs)
        fprintf(stderr, "resuming %s: its %d epochs are done; writing its model and pictures again\n", r->dir,
                r->ts.s.epochs);
    else if (r->resuming)
        fprintf(stderr, "resuming %s at epoch %d, step %d, to %d epochs\n", r->dir, st->epochs_done + 1, st->step,
                r->ts.s.epochs);
    return 0;
}

/* " --threads N" for a run on the CPU backend (the count its bits depend on), "" otherwise. */
static const char *threads_hint(const vae_train_run *r, char *buf, size_t cap)
{
    buf[0] = 0;
    if (strcmp(r->be->name, "cpu") == 0)
        snprintf(buf, cap, " --threads %d", vae_cpu_threads());
    return buf;
}

/* 5. The epochs: each evaluated, logged, the best model and the checkpoint saved; a signal ends
 * them with a checkpoint. e gets the last epoch's metrics (epoch 0 when none ran). 0, or the
 * exit code. */
static int train_epochs(vae_train_run *r, vae_epoch_metrics *e, double *total_s)
{
    const vae_run_settings *s = &r->ts.s;
    int done = r->ck.p.trainer.epochs_done; /* 0 for a new run */
    vae_train_checkpoint_free(&r->ck);
    int saved_at = -1; /* epochs done at the last checkpoint */
    if (!r->resuming)
        snapshot(r, 0, 0.0, 0); /* the model before its first step */
    while (done < s->epochs && !vae_stop_signal) {
        redraw_test(r, done + 1);
        int stopped = vae_trainer_epoch(r->t, &r->dtrain, &r->dtest, done + 1, e);
        vae_divergence div;
        if (vae_trainer_diverged(r->t, &div)) {
            /* The parameters are the last good ones, but the noise and the data order have moved past the
             * bad step: nothing of this epoch is saved, and the last checkpoint stays as it is. */
            fprintf(stderr,
                    "cuvae train: training diverged at epoch %d, step %d of the epoch (step %ld of the run): the "
                    "%s became NaN or infinite. That step and later ones were not applied; nothing of this epoch "
                    "was saved (metrics.csv and the last checkpoint hold the epochs before it). Try a lower --lr "
                    "(now %g) or --clip-grad-norm.\n",
                    div.epoch, div.epoch_step, div.step, vae_diverged_quantity_name(div.quantity), (double)s->lr);
            return VAE_EXIT_DIVERGED;
        }
        vae_run_log_steps(r); /* the step rows of the epoch, or of its part before a stop */
        if (stopped)
            break; /* stopped mid-epoch by a signal */
        done++;
        *total_s += e->seconds;
        vae_losses vl;
        if (r->val.n)
            vl = vae_eval_loss(&r->m, &r->dval, s->seed);
        vae_run_log_epoch(r, e, r->val.n ? &vl : NULL);
        if (r->val.n && !(vl.loss >= r->best_val)) { /* first, or better */
            r->best_val = vl.loss;
            r->best_epoch = done;
            if (vae_run_save_model(r, "best.safetensors", e))
                return vae_cli_fail();
        }
        if (done % r->ts.checkpoint_every == 0 || done == s->epochs) {
            if (vae_run_save_checkpoint(r))
                return vae_cli_fail();
            saved_at = done;
        }
        if (vae_run_log_write_metrics(r))
            return vae_cli_fail();
    }
    if (!vae_stop_signal) {
        const long spe = ((long)r->train.n + s->batch_size - 1) / s->batch_size;
        const long last = r->ts.steps > 0 ? r->ts.steps : spe * s->epochs;
        snapshot(r, last, (double)last / (double)spe, 1); /* the finished model, whatever the schedule */
        return 0;
    }
    vae_trainer_state st;
    vae_trainer_get_state(r->t, &st);
    if ((st.step || saved_at != done) && (vae_run_save_checkpoint(r) || vae_run_log_write_metrics(r)))
        return vae_cli_fail();
    char hint[64];
    if (st.epochs_done >= s->epochs)
        fprintf(stderr, "interrupted after the last epoch, before the model and the pictures were written; "
                        "resume with: cuvae train --resume %s%s\n",
                r->dir, threads_hint(r, hint, sizeof hint));
    else
        fprintf(stderr, "interrupted at epoch %d, step %d; resume with: cuvae train --resume %s%s\n",
                st.epochs_done + 1, st.step, r->dir, threads_hint(r, hint, sizeof hint));
    return 128 + vae_stop_signal;
}

/* 6. The pictures of the data source, model.safetensors (with what the pictures measured) and
 * report.html, then the run's last lines. 0, or the exit code. */
static int finish(vae_train_run *r, const train_args *a, vae_epoch_metrics *e, double total_s)
{
    const vae_run_settings *s = &r->ts.s;
    if (e->epoch == 0) { /* a resume with nothing left to train: the checkpoint's model, evaluated again */
        e->epoch = s->epochs;
        e->train.loss = vae_run_log_last_train_loss(r);
        redraw_test(r, s->epochs); /* the last epoch's draw, as its metrics row measured */
        e->test = vae_eval_loss(&r->m, &r->dtest, s->seed);
    }
    vae_source_run_end end = {
        .m = &r->m, .ts = &r->ts, .train = &r->train, .test = &r->test, .dir = r->dir, .scale = a->scale};
    int rc = 0;
    if (!vae_stop_signal && r->source->pictures(&end))
        rc = vae_cli_fail();
    snprintf(r->model_meta_key, sizeof r->model_meta_key, "%s", end.meta_key);
    snprintf(r->model_meta_value, sizeof r->model_meta_value, "%s", end.meta_value);
    if (!rc && !vae_stop_signal && vae_run_save_model(r, "model.safetensors", e))
        rc = vae_cli_fail();
    if (!rc && !vae_stop_signal && vae_report_write(r->dir))
        rc = vae_cli_fail();
    if (rc)
        return rc;
    char hint[64];
    if (vae_stop_signal) {
        /* a signal after the last epoch: the checkpoint of the finished run is whole, and a resume
         * writes the model and the pictures again */
        fprintf(stderr, "interrupted after the last epoch, while writing the model and the pictures; the "
                        "checkpoint holds the finished run: cuvae train --resume %s%s writes them again\n",
                r->dir, threads_hint(r, hint, sizeof hint));
        return 128 + vae_stop_signal;
    }
    char steps[48] = "";
    if (r->ts.steps > 0)
        snprintf(steps, sizeof steps, "%d steps (", r->ts.steps);
    fprintf(stderr, "trained %s%d epoch%s%s in %.1f s; final test loss %.4f nats/%s%s\n%s", steps, s->epochs,
            s->epochs == 1 ? "" : "s", steps[0] ? ")" : "", total_s, e->test.loss, r->source->row, vae_model_reads_label(&r->m) ? " (a bound on -log p(x|y))" : "",
            end.summary);
    vae_metrics_extra extra;
    vae_variant_metrics_extras(&r->m, r->t, &r->dtest, &r->test, &extra);
    vae_variant_advise(&r->m, &e->test, &extra, stderr);
    fprintf(stderr, "wrote %s/{model.safetensors,checkpoint.safetensors,metrics.csv,metrics.jsonl%s,provenance.txt%s,"
                    "report.html%s}%s\n",
            r->dir, r->steps ? ",metrics_steps.csv,metrics_steps.jsonl" : "", end.files,
            r->val.n ? ",best.safetensors" : "", end.tail);
    return 0;
}

int vae_cmd_train(int argc, char **argv)
{
    /* SIGINT and SIGTERM blocked first, before any other thread exists, and taken by a thread of their
     * own (stop_signal.h): no handler may ever run inside a oneDNN GEMM. */
    if (vae_stop_signals_start("cuvae train"))
        return vae_cli_fail();
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    vae_train_run r;
    vae_train_run_init(&r, &a.ts);
    vae_epoch_metrics e = {0};
    double total_s = 0;
    /* 1. The run directory, before anything is loaded. */
    rc = a.resume_dir ? vae_train_run_open_resume(&r, a.resume_dir, &a.ts, a.given, a.device_given, a.no_lock)
                      : vae_train_run_open_new(&r, a.out_dir, a.force, a.no_lock);
    if (!rc)
        rc = load_data(&r);
    if (!rc)
        rc = start_model(&r, &a);
    if (!rc) {
        vae_stop_signals_arm(); /* from here a signal ends the run with a checkpoint */
        rc = begin_log(&r, &a, argc, argv);
    }
    if (!rc)
        rc = train_epochs(&r, &e, &total_s);
    if (!rc)
        rc = finish(&r, &a, &e, total_s);
    vae_train_run_free(&r);
    return vae_stop_signals_finish(rc);
}
