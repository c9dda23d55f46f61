/*
 * test_cli.c: the cuvae program as a user meets it: every bad flag or value
 * gets one clear message and a non-zero exit; a tiny end-to-end run leaves the
 * run directory, and the saved model works with sample, reconstruct, eval and
 * info.
 */
#define _GNU_SOURCE
#include "backend.h"
#include "cli.h"
#include "safetensors.h"
#include "image.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char out[65536];

/* The cuvae binary with args (a plain string, not a format); its output goes to out. */
#define cuvae(args) tu_cuvae(out, sizeof out, "%s", (args))

#define EXPECT_FAIL(code, args, needle)                                                               \
    do {                                                                                              \
        int rc_ = cuvae(args);                                                                        \
        cr_expect_eq(rc_, code, "cuvae %s: exit %d, expected %d; output:\n%s", args, rc_, code, out); \
        cr_expect(strstr(out, needle) != NULL, "cuvae %s: output lacks '%s':\n%s", args, needle, out); \
    } while (0)

Test(cli, usage_errors_exit_2_with_one_message)
{
    EXPECT_FAIL(2, "", "usage: cuvae <command>");
    EXPECT_FAIL(2, "bogus", "unknown command 'bogus'");
    EXPECT_FAIL(2, "train --epochs 0", "--epochs: 0 is out of range");
    EXPECT_FAIL(2, "train --epochs abc", "--epochs: 'abc' is not an integer");
    EXPECT_FAIL(2, "train --epochs 3x", "--epochs: '3x' is not an integer");
    EXPECT_FAIL(2, "train --batch-size 0", "--batch-size: 0 is out of range");
    EXPECT_FAIL(2, "train --lr -1", "--lr: -1 is out of range");
    EXPECT_FAIL(2, "train --lr nan", "--lr: 'nan' is not a finite number");
    EXPECT_FAIL(2, "train --beta -0.5", "--beta: -0.5 is out of range");
    EXPECT_FAIL(2, "train --seed -3", "--seed: '-3' must not be negative");
    EXPECT_FAIL(2, "train --hidden 400,", "--hidden '400,'");
    EXPECT_FAIL(2, "train --hidden 0", "--hidden '0'");
    EXPECT_FAIL(2, "train --latent 0", "--latent: 0 is out of range");
    EXPECT_FAIL(2, "train --activation sigmoid", "invalid activation 'sigmoid'");
    EXPECT_FAIL(2, "train --device gpu", "invalid --device 'gpu'");
    EXPECT_FAIL(2, "train --bogus", "unknown option '--bogus'");
    EXPECT_FAIL(2, "train --epochs", "option '--epochs' needs a value");
    EXPECT_FAIL(2, "train stray", "unexpected argument 'stray'");
    EXPECT_FAIL(2, "sample", "--model PATH is required");
    EXPECT_FAIL(2, "sample --model m --n 0", "--n: 0 is out of range");
    EXPECT_FAIL(2, "compare --steps 0", "--steps: 0 is out of range");
    EXPECT_FAIL(2, "compare --candidate tpu", "--candidate 'tpu'");
    EXPECT_FAIL(2, "bench --backends gpu", "--backends 'gpu'");
}

Test(cli, option_errors_name_the_option)
{
    /* getopt_long reports these three alike; each gets its own message */
    EXPECT_FAIL(2, "train --quiet=1", "option '--quiet' takes no value (got '--quiet=1')");
    EXPECT_FAIL(2, "train --s 3", "option '--s' is ambiguous: it could be --seed, --sigma, --scale, --samples");
    EXPECT_FAIL(2, "train --bogus=3", "unknown option '--bogus'");
    cr_expect(!strstr(out, "did you mean"), "a suggestion for --bogus: %s", out);
    /* a near miss is named */
    EXPECT_FAIL(2, "train --epochz 3", "unknown option '--epochz'; did you mean --epochs?");
    EXPECT_FAIL(2, "train --laetnt 3", "unknown option '--laetnt'; did you mean --latent?");
    EXPECT_FAIL(2, "eval --modle m", "unknown option '--modle'; did you mean --model?");
    EXPECT_FAIL(2, "train -x", "unknown option '-x'");
    /* an unambiguous abbreviation still works */
    EXPECT_FAIL(2, "train --epo 0", "--epochs: 0 is out of range");
}

Test(cli, numbers_must_start_and_end_with_their_digits)
{
    EXPECT_FAIL(2, "train --seed ' -1'", "--seed: ' -1' must not be negative");
    EXPECT_FAIL(2, "train --seed ' 5'", "--seed: ' 5' is not a non-negative integer");
    EXPECT_FAIL(2, "train --seed +5", "--seed: '+5' is not a non-negative integer");
    EXPECT_FAIL(2, "train --epochs ' 5'", "--epochs: ' 5' is not an integer");
    EXPECT_FAIL(2, "train --epochs '5 '", "--epochs: '5 ' is not an integer");
    EXPECT_FAIL(2, "train --lr ' 0.1'", "--lr: ' 0.1' is not a finite number");
    EXPECT_FAIL(2, "train --hidden ' 400'", "--hidden ' 400'");
    EXPECT_FAIL(2, "train --hidden '400, 200'", "--hidden '400, 200'");
    EXPECT_FAIL(2, "sample --model m --n ' 5'", "--n: ' 5' is not an integer");
}

Test(cli, empty_values_are_usage_errors)
{
    EXPECT_FAIL(2, "train --out ''", "option '--out' needs a value, not an empty string");
    EXPECT_FAIL(2, "train --data ''", "option '--data' needs a value, not an empty string");
    EXPECT_FAIL(2, "sample --model m --out ''", "option '--out' needs a value, not an empty string");
    EXPECT_FAIL(2, "eval --model ''", "option '--model' needs a value, not an empty string");
}

/* cuvae ARGS with stdout on /dev/full; stderr captured into out. */
static int cuvae_to_full_disk(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "(%s %s > /dev/full)", CUVAE_BINARY, args);
    return tu_run(cmd, out, sizeof out);
}

Test(cli, a_failed_write_to_stdout_is_an_error)
{
    const char *cases[] = {"--help", "info", "train --help"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(cuvae_to_full_disk(cases[i]), 1, "cuvae %s > /dev/full:\n%s", cases[i], out);
        cr_expect(strstr(out, "writing the results to standard output failed: No space left on device"),
                  "cuvae %s > /dev/full:\n%s", cases[i], out);
    }
}

Test(cli, every_command_has_help)
{
    const char *cmds[] = {"train", "sample", "reconstruct", "eval", "info", "compare", "bench"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_expect_eq(cuvae(args), 0, "%s", args);
        cr_expect(strstr(out, "usage: cuvae") != NULL, "%s:\n%s", args, out);
    }
    cr_expect_eq(cuvae("--help"), 0);
}

Test(cli, missing_inputs_are_named)
{
    EXPECT_FAIL(1, "train --data /nonexistent/dir --device cpu", "/nonexistent/dir");
    EXPECT_FAIL(1, "sample --model /nonexistent/model.safetensors --device cpu", "/nonexistent/model.safetensors");
    EXPECT_FAIL(1, "info --model /nonexistent/model.safetensors", "/nonexistent/model.safetensors");
}

Test(cli, device_cuda_without_a_gpu_fails_clearly)
{
    if (vae_cuda_device_count() > 0)
        cr_skip_test("a CUDA device is present: this test is for machines without one");
    EXPECT_FAIL(1, "train --device cuda --data /nonexistent", "/nonexistent"); /* data is checked first */
    EXPECT_FAIL(1, "compare", "no CUDA device");
    /* compare and bench have no --device flag: their messages must not point to one. */
    cr_expect(strstr(out, "compare needs a GPU") != NULL, "%s", out);
    cr_expect(strstr(out, "--device") == NULL, "compare's message names a flag it does not have: %s", out);
    EXPECT_FAIL(1, "bench --backends cuda --epochs 1 --data " CUVAE_SOURCE_DIR "/data/mnist",
                "--backends cuda: no CUDA device");
    cr_expect(strstr(out, "--device") == NULL, "bench's message names a flag it does not have: %s", out);
    EXPECT_FAIL(1, "train --device cuda --data " CUVAE_SOURCE_DIR "/data/mnist --epochs 1 --out /tmp/cuvae-no-gpu",
                "--device cuda: no CUDA device");
    cr_expect(strstr(out, "--device cpu") != NULL, "train's message should point to --device cpu: %s", out);
}

Test(cli, info_prints_the_default_model)
{
    cr_assert_eq(cuvae("info"), 0, "%s", out);
    cr_expect(strstr(out, "encoder.fc1") && strstr(out, "(400, 784)"), "%s", out);
    cr_expect(strstr(out, "total parameters: 652824"), "%s", out);
}

/* ---- a whole run on a tiny data set in IDX files ------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_idx(const char *dir, const char *name, int n, int images)
{
    size_t hdr = images ? 16 : 8, body = images ? (size_t)n * 64 : (size_t)n;
    unsigned char *b = calloc(hdr + body, 1);
    put_be32(b, images ? 0x803 : 0x801);
    put_be32(b + 4, (uint32_t)n);
    if (images) {
        put_be32(b + 8, 8);
        put_be32(b + 12, 8);
    }
    for (int i = 0; i < n; i++) {
        if (!images) {
            b[hdr + i] = (unsigned char)(i % 3);
            continue;
        }
        for (int p = 0; p < 64; p++) {
            int r = p / 8, c = p % 8, k = i % 3;
            int on = k == 0 ? c == 3 : k == 1 ? r == 4 : r == c;
            b[hdr + (size_t)i * 64 + p] = on ? 250 : (unsigned char)((i * 7 + p * 13) % 20);
        }
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tu_write_file(path, b, hdr + body);
    free(b);
}

Test(cli, train_then_use_the_model)
{
    char data[512], run[600], args[2048];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    write_idx(data, "train-images-idx3-ubyte", 120, 1);
    write_idx(data, "train-labels-idx1-ubyte", 120, 0);
    write_idx(data, "t10k-images-idx3-ubyte", 30, 1);
    write_idx(data, "t10k-labels-idx1-ubyte", 30, 0);
    snprintf(run, sizeof run, "%s/run", data);

    snprintf(args, sizeof args,
             "train --data %s --epochs 3 --batch-size 16 --hidden 24 --latent 2 --lr 3e-3 --out %s --device cpu",
             data, run);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "device: cpu"), "the device used is not announced:\n%s", out);
    cr_expect(strstr(out, "epoch   3/3"), "%s", out);
    const char *files[] = {"model.safetensors", "metrics.csv", "samples.png", "reconstructions.png"};
    for (int i = 0; i < 4; i++)
        cr_expect(tu_nonempty_in(run, files[i]), "%s missing from the run directory", files[i]);

    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_expect(strncmp(line, "epoch,train_loss,train_recon,train_kl,test_loss,test_recon,test_kl,seconds", 74) == 0,
              "header: %s", line);
    int rows = 0;
    while (fgets(line, sizeof line, f))
        rows++;
    fclose(f);
    cr_expect_eq(rows, 3, "metrics.csv has %d rows for 3 epochs", rows);

    snprintf(args, sizeof args, "sample --model %s/model.safetensors --out %s/s.png --n 10 --device cpu", run, run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(tu_nonempty_in(run, "s.png"));
    snprintf(args, sizeof args, "reconstruct --model %s/model.safetensors --data %s --out %s/r.png --n 7 --device cpu",
             run, data, run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(tu_nonempty_in(run, "r.png"));
    /* --model takes the run directory, and the grids take --scale: 10 samples in 4 columns of
     * 8 + 2 pixels (the 8x8 patterns), plus the border, at scale 1 */
    snprintf(args, sizeof args, "sample --model %s --out %s/s1.png --n 10 --scale 1 --device cpu", run, run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    char png[4200];
    snprintf(png, sizeof png, "%s/s1.png", run);
    uint8_t *px = NULL;
    int w = 0, h = 0;
    cr_assert_eq(vae_png_read_gray(png, &px, &w, &h), 0, "%s", vae_last_error());
    cr_expect(w == 4 * 10 + 2 && h == 3 * 10 + 2, "samples at scale 1: %dx%d", w, h);
    vae_free(px);
    snprintf(args, sizeof args, "reconstruct --model %s --data %s --out %s/r.png --n 7 --scale 65 --device cpu", run,
             data, run);
    cr_expect_eq(cuvae(args), 2, "%s", out);
    cr_expect(strstr(out, "--scale: 65 is out of range"), "%s", out);
    snprintf(args, sizeof args, "eval --model %s/model.safetensors --data %s --device cpu", run, data);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "test loss") && strstr(out, "over 30 images"), "%s", out);
    snprintf(args, sizeof args, "info --model %s/model.safetensors", run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "train.epochs") && strstr(out, "decoder.out"), "%s", out);
    /* only the settings that shaped this model (Bernoulli, no categorical latent, IDX data);
     * --all lists every recorded key */
    const char *not_applying[] = {"train.sigma", "train.disc", "train.temperature", "train.capacity_c",
                                  "train.toy_weights", "train.toy_n"};
    for (int i = 0; i < 6; i++)
        cr_expect(!strstr(out, not_applying[i]), "info lists %s of a plain Bernoulli model on IDX data:\n%s",
                  not_applying[i], out);
    cr_expect(strstr(out, "train.binarize") && strstr(out, " recorded settings that do not apply to this model not shown"),
              "%s", out);
    snprintf(args, sizeof args, "info --all --model %s", run);
    cr_expect_eq(cuvae(args), 0, "%s", out);
    for (int i = 0; i < 6; i++)
        cr_expect(strstr(out, not_applying[i]), "info --all does not list %s:\n%s", not_applying[i], out);
    cr_expect(!strstr(out, "not shown"), "%s", out);
    cr_expect_eq(cuvae("info --all"), 2, "%s", out);
    cr_expect(strstr(out, "--all") && strstr(out, "--model"), "%s", out);
    char *report = tu_slurp_in(run, "report.html", NULL);
    cr_assert_not_null(report, "no report.html in %s", run);
    cr_expect(!strstr(report, "train.toy_weights") && !strstr(report, "train.sigma") &&
                  strstr(report, "recorded settings that do not apply"),
              "the report lists settings that do not apply to the model");
    free(report);

    /* the same run again gives the same final line: same seed, same numbers */
    char first[65536];
    snprintf(args, sizeof args, "eval --model %s/model.safetensors --data %s --device cpu", run, data);
    cuvae(args);
    snprintf(first, sizeof first, "%s", out);
    cuvae(args);
    cr_expect_str_eq(out, first);

    /* a test split with 29 images but 30 labels is refused, naming the counts */
    write_idx(data, "t10k-images-idx3-ubyte", 29, 1);
    snprintf(args, sizeof args, "train --data %s --epochs 1 --out %s/run2 --device cpu", data, data);
    cr_expect_eq(cuvae(args), 1, "%s", out);
    cr_expect(strstr(out, "29") != NULL, "the count mismatch is not named:\n%s", out);
}

/* The tiny IDX data set of train_then_use_the_model in a fresh directory. */
static void write_tiny_data(char *dir, size_t len)
{
    snprintf(dir, len, "%s", tu_tmpdir());
    write_idx(dir, "train-images-idx3-ubyte", 120, 1);
    write_idx(dir, "train-labels-idx1-ubyte", 120, 0);
    write_idx(dir, "t10k-images-idx3-ubyte", 30, 1);
    write_idx(dir, "t10k-labels-idx1-ubyte", 30, 0);
}

Test(cli, divergence_stops_training_with_exit_3_and_writes_no_model)
{
    char data[512], args[2048];
    write_tiny_data(data, sizeof data);
    /* --lr 10 diverges within 5 epochs for seeds 2 to 9 of this data; seeds 1 and 10 happen to survive */
    snprintf(args, sizeof args,
             "train --data %s --epochs 5 --batch-size 16 --hidden 24 --latent 2 --lr 10 --seed 2 --out %s/run "
             "--device cpu",
             data, data);
    EXPECT_FAIL(3, args, "training diverged at epoch ");
    cr_expect(strstr(out, "the loss became NaN or infinite") || strstr(out, "the gradient became NaN or infinite"),
              "the quantity is not named:\n%s", out);
    cr_expect(strstr(out, "--clip-grad-norm"), "%s", out);
    /* the epoch, the step in it and the step of the run agree: 120 images in batches of 16 is 8 steps */
    int epoch = 0, step = 0, run_step = 0;
    const char *at = strstr(out, "training diverged at epoch ");
    cr_assert(at && sscanf(at, "training diverged at epoch %d, step %d of the epoch (step %d of the run)", &epoch,
                           &step, &run_step) == 3, "%s", out);
    cr_expect(epoch >= 1 && step >= 1 && step <= 8, "epoch %d, step %d", epoch, step);
    cr_expect_eq(run_step, (epoch - 1) * 8 + step, "epoch %d step %d is not step %d of the run", epoch, step, run_step);
    cr_expect(strstr(out, "nan") == NULL, "a NaN loss was printed:\n%s", out);
    char run[600];
    snprintf(run, sizeof run, "%s/run", data);
    cr_expect(!tu_nonempty_in(run, "model.safetensors"), "a model was saved from a diverged run");
    cr_expect(!tu_nonempty_in(run, "samples.png"));
}

Test(cli, clip_grad_norm_is_checked_and_used)
{
    EXPECT_FAIL(2, "train --clip-grad-norm -1", "--clip-grad-norm: -1 is out of range");
    EXPECT_FAIL(2, "train --clip-grad-norm inf", "--clip-grad-norm: 'inf' is not a finite number");
    char data[512], args[2048];
    write_tiny_data(data, sizeof data);
    /* clipping changes the run; a threshold no gradient reaches does not */
    const char *clip[] = {"", "--clip-grad-norm 1e9", "--clip-grad-norm 0.5"};
    char last[3][256];
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args,
                 "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s/run%d --device cpu "
                 "--quiet %s",
                 data, data, i, clip[i]);
        cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
        const char *e = strstr(out, "epoch   2/2");
        cr_assert_not_null(e, "%s", out);
        snprintf(last[i], sizeof last[i], "%.60s", e);
    }
    cr_expect_str_eq(last[1], last[0], "a clipping threshold above every gradient norm changed the run");
    cr_expect_str_neq(last[2], last[0], "--clip-grad-norm 0.5 changed nothing");
}

/* --likelihood gaussian --sigma S trains a Gaussian decoder, records it in the model and the
 * checkpoint, and eval names it; bad values are usage errors naming the flag. */
/* The 64 tiles (8 columns of 8x8 patterns, scale 1) of a sample grid into px (64 * 64). */
static void sample_tiles(const char *png, uint8_t *px)
{
    uint8_t *g;
    int w, h;
    cr_assert_eq(vae_png_read_gray(png, &g, &w, &h), 0, "%s", vae_last_error());
    cr_assert(w == 8 * 10 + 2 && h == 8 * 10 + 2, "%s is %dx%d", png, w, h);
    for (int t = 0; t < 64; t++)
        for (int y = 0; y < 8; y++)
            memcpy(px + t * 64 + y * 8, g + (size_t)(2 + (t / 8) * 10 + y) * w + 2 + (t % 8) * 10, 8);
    vae_free(g);
}

/* sample --bernoulli: every pixel 0 or 255, drawn from the means of the same z (their average
 * within 4 standard errors of the means' average), seeded; a Gaussian decoder is refused by flag. */
Test(cli, sample_bernoulli_draws_the_pixels_from_the_means)
{
    char data[512], args[2048], png[700];
    write_tiny_data(data, sizeof data);
    snprintf(args, sizeof args,
             "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s/run --device cpu --quiet",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    static uint8_t means[64 * 64], draws[64 * 64], again[64 * 64], other[64 * 64];
    const char *modes[] = {"", " --bernoulli", " --bernoulli", " --bernoulli --seed 4"};
    uint8_t *into[] = {means, draws, again, other};
    for (int k = 0; k < 4; k++) {
        snprintf(png, sizeof png, "%s/s%d.png", data, k);
        snprintf(args, sizeof args, "sample --model %s/run --n 64 --scale 1 --seed 3%s --out %s --device cpu", data,
                 modes[k], png);
        cr_assert_eq(cuvae(args), 0, "%s", out);
        sample_tiles(png, into[k]);
    }
    double p_sum = 0, var = 0, x_sum = 0;
    int binary = 1;
    for (int i = 0; i < 64 * 64; i++) {
        const double p = means[i] / 255.0;
        p_sum += p;
        var += p * (1 - p);
        x_sum += draws[i] / 255.0;
        binary &= draws[i] == 0 || draws[i] == 255;
    }
    cr_expect(binary, "a --bernoulli pixel is neither 0 nor 255");
    cr_expect(var > 1, "the means are all 0 or 1: the draws would equal them");
    cr_expect(fabs(x_sum - p_sum) < 4 * sqrt(var), "the draws average %.1f lit pixels, the means %.1f (sd %.1f)",
              x_sum, p_sum, sqrt(var));
    cr_expect(memcmp(draws, again, sizeof draws) == 0, "the same seed draws other pixels");
    cr_expect(memcmp(draws, other, sizeof draws) != 0, "--seed 4 draws the same pixels as --seed 3");
    snprintf(args, sizeof args,
             "train --data %s --epochs 1 --batch-size 16 --hidden 24 --latent 2 --out %s/gauss --device cpu --quiet "
             "--likelihood gaussian --sigma 0.25",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args, "sample --model %s/gauss --bernoulli --out %s/g.png --device cpu", data, data);
    EXPECT_FAIL(1, args, "--bernoulli: the model's decoder is Gaussian (sigma 0.25), not Bernoulli");
    snprintf(png, sizeof png, "%s/g.png", data);
    cr_expect_not(tu_exists(png), "a refused sample wrote its grid");
}

Test(cli, the_gaussian_likelihood_trains_and_is_recorded)
{
    EXPECT_FAIL(2, "train --likelihood poisson", "invalid likelihood 'poisson' (expected bernoulli or gaussian)");
    EXPECT_FAIL(2, "train --sigma 0", "--sigma: 0 is out of range");
    char data[512], args[2048];
    write_tiny_data(data, sizeof data);
    snprintf(args, sizeof args,
             "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s/gauss --device cpu --quiet "
             "--likelihood gaussian --sigma 0.25",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
    cr_expect(strstr(out, "Gaussian decoder (sigma 0.25)"), "%s", out);
    snprintf(args, sizeof args, "info --model %s/gauss/model.safetensors", data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "likelihood") && strstr(out, "gaussian") && strstr(out, "sigma"), "%s", out);
    snprintf(args, sizeof args, "eval --model %s/gauss/model.safetensors --data %s --device cpu --json", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "\"likelihood\": \"gaussian\""), "%s", out);
    /* a resume keeps the likelihood: asking for another is refused */
    snprintf(args, sizeof args, "train --resume %s/gauss --epochs 3 --sigma 0.5", data);
    cr_expect_eq(cuvae(args), 2, "%s", out);
    cr_expect(strstr(out, "--sigma 0.5 (the run has 0.25)"), "%s", out);
}

Test(cli, models_with_non_finite_parameters_are_refused)
{
    char data[512], args[2048], model[700], bad[700];
    write_tiny_data(data, sizeof data);
    snprintf(args, sizeof args,
             "train --data %s --epochs 1 --batch-size 16 --hidden 24 --latent 2 --out %s/run --device cpu --quiet",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(model, sizeof model, "%s/run/model.safetensors", data);
    snprintf(bad, sizeof bad, "%s/run/nan.safetensors", data);
    size_t n;
    unsigned char *bytes = tu_read_file(model, &n);
    cr_assert(n > 8);
    const float nan = NAN;
    memcpy(bytes + n - 4, &nan, 4); /* the last float of the last tensor */
    tu_write_file(bad, bytes, n);
    free(bytes);

    const char *cmds[] = {"eval --model %s --data %s --device cpu", "sample --model %s --out %s/s.png --device cpu",
                          "reconstruct --model %s --data %s --out r.png --device cpu"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, cmds[i], bad, data);
        EXPECT_FAIL(1, args, "holds NaN at element");
        cr_expect(strstr(out, bad) && strstr(out, "tensor '"), "%s:\n%s", args, out);
    }
    /* and the good model's results go to stdout: lost on a full disk, that is an error */
    snprintf(args, sizeof args, "eval --model %s --data %s --device cpu", model, data);
    cr_expect_eq(cuvae_to_full_disk(args), 1, "%s", out);
    cr_expect(strstr(out, "writing the results to standard output failed"), "%s", out);
    /* and so is a lost diagnostic: with stderr on a full disk, the exit code says it */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "(%s eval --model %s --data %s --device cpu 2> /dev/full)", CUVAE_BINARY, model, data);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 1, "eval with stderr on /dev/full:\n%s", out);
    cr_expect(strstr(out, "test loss"), "the result did not reach stdout:\n%s", out);
}

/* ---- conveniences: version, devices, help COMMAND, --device cuda:N, --threads, --indices, encode ---- */

Test(cli, version_names_the_commit_cuda_cublas_architectures_and_blas)
{
    char second[65536];
    cr_assert_eq(cuvae("--version"), 0, "%s", out);
    snprintf(second, sizeof second, "%s", out);
    cr_assert_eq(cuvae("version"), 0, "%s", out);
    cr_expect_str_eq(out, second, "cuvae version and cuvae --version differ");
    const char *lines[] = {"cuvae ", "\ncommit: ", "\nCUDA runtime: ", "\nCUDA driver: ", "\ncuBLAS: ",
                           "\nGPU architectures: ", "\nBLAS: oneDNN"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(out, lines[i]) != NULL, "'%s' missing:\n%s", lines[i] + (lines[i][0] == '\n'), out);
    cr_expect(strstr(out, " threads\n") != NULL, "the BLAS threads are missing:\n%s", out);
    /* the commit is the source tree's, 40 hex digits, as git reports it */
    char cmd[1024], head[128];
    snprintf(cmd, sizeof cmd, "git -C %s rev-parse HEAD", CUVAE_SOURCE_DIR);
    if (tu_run(cmd, head, sizeof head) == 0 && strlen(head) >= 40) {
        head[40] = '\0';
        cr_expect(strstr(out, head) != NULL,
                  "the source tree's commit %s missing (a binary built before the last commit? build, then test):\n%s",
                  head, out);
    }
    if (vae_cuda_device_count() == 0) {
        char why[512];
        vae_cuda_describe_devices(why, sizeof why);
        if (strstr(why, "no NVIDIA driver"))
            cr_expect(strstr(out, "CUDA driver: no NVIDIA driver\n") != NULL, "%s", out);
    }
    EXPECT_FAIL(2, "version --bogus", "unknown option '--bogus'");
    EXPECT_FAIL(2, "--version extra", "unexpected argument 'extra'");
}

Test(cli, devices_lists_the_gpus_or_why_none_and_the_cpu)
{
    cr_assert_eq(cuvae("devices"), 0, "%s", out);
    cr_expect(strstr(out, "CPU backend (--device cpu):\n  cpu  oneDNN") != NULL, "%s", out);
    cr_expect(strstr(out, "processor: ") != NULL, "%s", out);
    if (vae_cuda_device_count() == 0)
        cr_expect(strstr(out, "GPUs (--device cuda:N):\n  none listed: no CUDA device: ") != NULL, "%s", out);
    else
        cr_expect(strstr(out, "\n  cuda:0  ") && strstr(out, "compute capability"), "%s", out);
    EXPECT_FAIL(2, "devices stray", "unexpected argument 'stray'");
}

Test(cli, help_command_is_the_commands_help)
{
    const char *cmds[] = {"train", "sample", "reconstruct", "eval", "info", "compare",
                          "bench", "encode", "devices", "version", "report"};
    static char direct[65536];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_assert_eq(cuvae(args), 0, "%s: %s", args, out);
        snprintf(direct, sizeof direct, "%s", out);
        cr_expect(strstr(direct, "usage: cuvae ") == direct, "%s", direct);
        snprintf(args, sizeof args, "help %s", cmds[i]);
        cr_assert_eq(cuvae(args), 0, "%s: %s", args, out);
        cr_expect_str_eq(out, direct, "'cuvae help %s' differs from 'cuvae %s --help'", cmds[i], cmds[i]);
    }
    cr_assert_eq(cuvae("--help"), 0);
    snprintf(direct, sizeof direct, "%s", out);
    cr_assert_eq(cuvae("help"), 0);
    cr_expect_str_eq(out, direct, "'cuvae help' differs from 'cuvae --help'");
    cr_expect(strstr(out, "  encode ") && strstr(out, "  devices ") && strstr(out, "  version "), "%s", out);
    EXPECT_FAIL(2, "help bogus", "cuvae help: unknown command 'bogus'");
    EXPECT_FAIL(2, "help train eval", "one command at a time");
}

Test(cli, device_ordinals_and_threads_are_checked)
{
    EXPECT_FAIL(2, "train --device cuda:", "invalid --device 'cuda:'");
    EXPECT_FAIL(2, "train --device cuda:-1", "invalid --device 'cuda:-1'");
    EXPECT_FAIL(2, "train --device cuda:x", "invalid --device 'cuda:x'");
    EXPECT_FAIL(2, "eval --model m --device cuda:1x", "invalid --device 'cuda:1x'");
    EXPECT_FAIL(2, "train --threads 0", "--threads: 0 is out of range");
    EXPECT_FAIL(2, "train --threads x", "--threads: 'x' is not an integer");
    EXPECT_FAIL(2, "bench --threads 0", "--threads: 0 is out of range");
    EXPECT_FAIL(2, "compare --threads -2", "--threads: -2 is out of range");
    EXPECT_FAIL(2, "encode --model m --threads 0", "--threads: 0 is out of range");
    EXPECT_FAIL(2, "compare --candidate cuda:x", "--candidate 'cuda:x'");
    EXPECT_FAIL(2, "bench --backends cuda:x", "--backends 'cuda:x'");
    EXPECT_FAIL(2, "bench --backends cpu,cpu", "--backends 'cpu,cpu'");
    EXPECT_FAIL(2, "bench --backends cuda,cuda:1", "--backends 'cuda,cuda:1'");
}

/* `cmake --install` puts a working cuvae in PREFIX/bin: from another directory, with only PATH to
 * find it, it trains (writing where it says) and its hints name `cuvae`. */
Test(cli, cmake_install_puts_a_working_cuvae_on_path, .timeout = 300)
{
    char build[4096], prefix[4096], data[4096], cmd[16384];
    snprintf(build, sizeof build, "%s", CUVAE_BINARY);
    *strrchr(build, '/') = 0;
    snprintf(prefix, sizeof prefix, "%s", tu_tmpdir());
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 60, 20, 5);
    snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s' 2>&1", build, prefix);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PATH='%s/bin':/usr/bin:/bin cuvae train --data '%s' --epochs 1 --hidden 8 --latent 2 "
             "--batch-size 20 --device cpu --quiet --out run 2>&1",
             data, prefix, data);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "wrote run/{model.safetensors"), "%s", out);
    cr_expect(tu_exists_in(data, "run/model.safetensors"), "the run is not where it said");
    /* without --data: $CUVAE_DATA first, then data/mnist under the current directory, the checkout
     * (whose data/mnist scripts/test.sh fetches), the install's share/cuvae */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && CUVAE_DATA='%s' PATH='%s/bin':/usr/bin:/bin cuvae train --epochs 1 --hidden 8 --latent 2 "
             "--batch-size 20 --device cpu --quiet --out run2 2>&1",
             prefix, data, prefix);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    char want[4200];
    snprintf(want, sizeof want, "data: %s (60 training", data);
    cr_expect(strstr(out, want), "$CUVAE_DATA was not used:\n%s", out);
    struct stat st;
    if (stat(CUVAE_SOURCE_DIR "/data/mnist", &st) == 0) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && env -u CUVAE_DATA PATH='%s/bin':/usr/bin:/bin cuvae train --epochs 1 --hidden 8 "
                 "--latent 2 --batch-size 500 --device cpu --quiet --out run3 2>&1",
                 prefix, prefix);
        cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
        cr_expect(strstr(out, "data: " CUVAE_SOURCE_DIR "/data/mnist ("), "the checkout's data was not found:\n%s",
                  out);
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && PATH='%s/bin':/usr/bin:/bin cuvae train --bogus 2>&1", data, prefix);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "Try 'cuvae train --help'"), "%s", out);
}

Test(cli, threads_one_and_two_both_train_and_are_announced)
{
    char data[512], args[2048];
    write_tiny_data(data, sizeof data);
    for (int t = 1; t <= 2; t++) {
        snprintf(args, sizeof args,
                 "train --data %s --epochs 1 --batch-size 16 --hidden 24 --latent 2 --out %s/run%d --device cpu "
                 "--quiet --threads %d",
                 data, data, t, t);
        cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
        char want[64];
        snprintf(want, sizeof want, "device: cpu (oneDNN, %d thread%s)", t, t == 1 ? "" : "s");
        cr_expect(strstr(out, want) != NULL, "'%s' missing:\n%s", want, out);
    }
    /* a run resumes with another count: threads are not a recorded setting */
    snprintf(args, sizeof args, "train --resume %s/run1 --epochs 2 --device cpu --quiet --threads 2", data);
    cr_expect_eq(cuvae(args), 0, "%s\n%s", args, out);
    cr_expect(strstr(out, "device: cpu (oneDNN, 2 threads)") != NULL, "%s", out);
}

Test(cli, indices_parse)
{
    int *idx, n;
    cr_assert_eq(vae_cli_parse_indices("--indices", "0,5,17", 30, &idx, &n), 0, "%s", vae_last_error());
    cr_assert_eq(n, 3);
    cr_expect(idx[0] == 0 && idx[1] == 5 && idx[2] == 17);
    vae_free(idx);
    cr_assert_eq(vae_cli_parse_indices("--indices", "3-6,1,29-29", 30, &idx, &n), 0, "%s", vae_last_error());
    int want[] = {3, 4, 5, 6, 1, 29};
    cr_assert_eq(n, 6);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(idx[i], want[i], "element %d", i);
    vae_free(idx);
    struct {
        const char *s, *msg;
    } bad[] = {
        {"30", "--indices: index 30 is out of range: the test set has 30 images (0..29)"},
        {"0,99999999999999999999", "index 99999999999999999999 is out of range"},
        {"5-2", "range '5-2' runs backwards"},
        {"a", "'a' is not an index"},
        {"1,", "'' is not an index"},
        {",1", "'' is not an index"},
        {"-3", "'-3' is not an index"},
        {"1-", "'1-' is not an index"},
        {"1-2-3", "'1-2-3' is not an index"},
        {" 1", "' 1' is not an index"},
        {"0-29,0-29", NULL}, /* 60 indices: fine */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = vae_cli_parse_indices("--indices", bad[i].s, 30, &idx, &n);
        if (!bad[i].msg) {
            cr_expect_eq(rc, 0, "'%s': %s", bad[i].s, vae_last_error());
            cr_expect_eq(n, 60);
            vae_free(idx);
            continue;
        }
        cr_expect_eq(rc, -1, "'%s' accepted", bad[i].s);
        cr_expect_null(idx);
        cr_expect(strstr(vae_last_error(), bad[i].msg) != NULL, "'%s': '%s' lacks '%s'", bad[i].s, vae_last_error(),
                  bad[i].msg);
    }
    char many[64];
    snprintf(many, sizeof many, "0-%d,0-%d", 2999, 2999);
    cr_expect_eq(vae_cli_parse_indices("--indices", many, 3000, &idx, &n), -1, "6000 indices accepted");
    cr_expect(strstr(vae_last_error(), "more than 4096 indices") != NULL, "%s", vae_last_error());
}

/* A trained tiny model in data/run; data gets the tiny data set. */
static void train_tiny(char *data, size_t len)
{
    char args[2048];
    write_tiny_data(data, len);
    snprintf(args, sizeof args,
             "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s/run --device cpu --quiet",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
}

Test(cli, reconstruct_indices_choose_the_images)
{
    char data[512], args[2048], a[700], b[700];
    train_tiny(data, sizeof data);
    snprintf(args, sizeof args, "reconstruct --model %s/run/model.safetensors --data %s --out %s/n.png --n 7", data,
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args,
             "reconstruct --model %s/run/model.safetensors --data %s --out %s/i.png --indices 0-2,3,4-6", data, data,
             data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 7 test images"), "%s", out);
    snprintf(a, sizeof a, "%s/n.png", data);
    snprintf(b, sizeof b, "%s/i.png", data);
    size_t nx, ny;
    unsigned char *x = tu_slurp(a, &nx), *y = tu_slurp(b, &ny);
    cr_assert(x && y && nx > 0 && nx == ny && memcmp(x, y, nx) == 0, "--indices 0-6 and --n 7 differ");
    free(y);
    /* other images, another picture */
    snprintf(args, sizeof args,
             "reconstruct --model %s/run/model.safetensors --data %s --out %s/i.png --indices 1,2,3,4,5,6,0", data,
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    y = tu_slurp(b, &ny);
    cr_expect(y && ny > 0 && (nx != ny || memcmp(x, y, nx) != 0), "--indices did not change the images");
    free(x);
    free(y);

    snprintf(args, sizeof args, "reconstruct --model %s/run/model.safetensors --data %s --out %s/i.png --indices 30",
             data, data, data);
    EXPECT_FAIL(2, args, "--indices: index 30 is out of range: the test set has 30 images (0..29)");
    snprintf(args, sizeof args, "reconstruct --model %s/run/model.safetensors --data %s --indices 4-1", data, data);
    EXPECT_FAIL(2, args, "range '4-1' runs backwards");
    snprintf(args, sizeof args, "reconstruct --model %s/run/model.safetensors --data %s --indices 1 --n 3", data,
             data);
    EXPECT_FAIL(2, args, "--n and --indices both choose the images");
}

/* The float32 tensor `name` of st, checked for its shape. */
static const float *st_f32(const vae_safetensors *st, const char *name, int64_t d0, int64_t d1)
{
    for (int i = 0; i < st->n_tensors; i++) {
        const vae_st_tensor *t = &st->tensors[i];
        if (strcmp(t->name, name) != 0)
            continue;
        cr_assert_str_eq(t->dtype, "F32", "%s", name);
        cr_assert_eq(t->ndim, d1 ? 2 : 1, "%s", name);
        cr_assert_eq(t->shape[0], d0, "%s", name);
        if (d1)
            cr_assert_eq(t->shape[1], d1, "%s", name);
        return t->data;
    }
    cr_assert_fail("tensor %s missing", name);
    return NULL;
}

Test(cli, encode_writes_mu_logvar_and_labels)
{
    char data[512], args[2048], path[700];
    train_tiny(data, sizeof data);
    for (int pass = 0; pass < 2; pass++) {
        /* batches of 7 and of 128 (all 30 at once) must give the same numbers */
        snprintf(args, sizeof args,
                 "encode --model %s/run/model.safetensors --data %s --out %s/z%d.safetensors --batch-size %d "
                 "--device cpu",
                 data, data, data, pass, pass ? 128 : 7);
        cr_assert_eq(cuvae(args), 0, "%s", out);
        cr_expect(strstr(out, "wrote mu and logvar (30 x 2) and labels of the 30 test images"), "%s", out);
    }
    vae_safetensors st[2];
    for (int pass = 0; pass < 2; pass++) {
        snprintf(path, sizeof path, "%s/z%d.safetensors", data, pass);
        cr_assert_eq(vae_safetensors_read(path, &st[pass]), 0, "%s", vae_last_error());
    }
    const float *mu = st_f32(&st[0], "mu", 30, 2), *lv = st_f32(&st[0], "logvar", 30, 2);
    const float *lab = st_f32(&st[0], "labels", 30, 0);
    /* the GEMMs' blocking depends on the batch, so the last bits may differ; a row out of place would not */
    cr_expect(tu_allclose("mu, batches of 128 vs 7", st_f32(&st[1], "mu", 30, 2), mu, 60, 1e-5, 1e-5));
    cr_expect(tu_allclose("logvar, batches of 128 vs 7", st_f32(&st[1], "logvar", 30, 2), lv, 60, 1e-5, 1e-5));
    int distinct = 0;
    for (int i = 0; i < 30; i++) {
        cr_expect_eq(lab[i], (float)(i % 3), "label %d", i);
        cr_expect(isfinite(mu[2 * i]) && isfinite(lv[2 * i]), "image %d", i);
        distinct += i > 0 && mu[2 * i] != mu[0];
    }
    cr_expect_gt(distinct, 0, "every image got the same mean");
    cr_expect_str_eq(vae_safetensors_meta_get(&st[0], "encode.split"), "test");
    for (int pass = 0; pass < 2; pass++)
        vae_safetensors_free(&st[pass]);

    snprintf(args, sizeof args,
             "encode --model %s/run/model.safetensors --data %s --out %s/train.safetensors --split train", data, data,
             data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "labels of the 120 train images"), "%s", out);
    /* without --data: the data set the model records, as eval does */
    snprintf(args, sizeof args, "encode --model %s/run/model.safetensors --out %s/rec.safetensors", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "(recorded in the model; SHA-256 checked)"), "%s", out);

    EXPECT_FAIL(2, "encode --out x", "--model PATH is required");
    EXPECT_FAIL(2, "encode --model m", "--out FILE is required");
    EXPECT_FAIL(2, "encode --model m --out x --split val", "--split 'val': expected test or train");
}

/* NumPy reads the file with nothing but the safetensors layout: an 8-byte header length,
 * the JSON header, the raw little-endian floats. */
Test(cli, encode_output_reads_in_numpy)
{
    /* the python3 on PATH (a pyenv, say) may lack numpy where Debian's has it */
    const char *pythons[] = {"python3", "/usr/bin/python3"}, *py = NULL;
    char probe[512];
    for (int i = 0; i < 2 && !py; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy'", pythons[i]);
        if (tu_run(cmd, probe, sizeof probe) == 0)
            py = pythons[i];
    }
    if (!py)
        cr_skip_test("neither python3 nor /usr/bin/python3 has numpy (apt-get install python3-numpy): %s", probe);
    char data[512], args[2048], cmd[4096];
    train_tiny(data, sizeof data);
    snprintf(args, sizeof args,
             "encode --model %s/run/model.safetensors --data %s --out %s/z.safetensors --device cpu", data, data,
             data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    vae_safetensors st;
    snprintf(cmd, sizeof cmd, "%s/z.safetensors", data);
    cr_assert_eq(vae_safetensors_read(cmd, &st), 0, "%s", vae_last_error());
    const float *mu = st_f32(&st, "mu", 30, 2);
    snprintf(cmd, sizeof cmd,
             "%s -c 'import json, struct, numpy as np, sys\n"
             "b = open(sys.argv[1], \"rb\").read(); n = struct.unpack(\"<Q\", b[:8])[0]; h = json.loads(b[8:8 + n])\n"
             "t = {k: np.frombuffer(b[8 + n + v[\"data_offsets\"][0]:8 + n + v[\"data_offsets\"][1]], \"<f4\")"
             ".reshape(v[\"shape\"]) for k, v in h.items() if k != \"__metadata__\"}\n"
             "print(t[\"mu\"].shape, t[\"logvar\"].shape, t[\"labels\"].shape, t[\"labels\"].astype(int).tolist()[:6],"
             " \"%%.9g\" %% t[\"mu\"][29, 1])' %s/z.safetensors",
             py, data);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "(30, 2) (30, 2) (30,) [0, 1, 2, 0, 1, 2] %.9g\n", (double)mu[59]);
    cr_expect_str_eq(out, want);
    vae_safetensors_free(&st);
}

/* Tile (row, col) of an 8x8 grid PNG (border VAE_GRID_BORDER, scale 1) into to (64). */
/* Tile (row, col) of a grid of 8x8 images at scale 1, labelled or not (tu_grid_origin). */
static void grid8_tile(const uint8_t *px, int width, int height, int row, int col, uint8_t *to)
{
    int gx, gy;
    tu_grid_origin(px, width, height, &gx, &gy);
    const int x0 = gx + VAE_GRID_BORDER + col * (8 + VAE_GRID_BORDER),
              y0 = gy + VAE_GRID_BORDER + row * (8 + VAE_GRID_BORDER);
    for (int y = 0; y < 8; y++)
        memcpy(to + y * 8, px + (size_t)(y0 + y) * width + x0, 8);
}

/* A saved joint model from the CLI: `sample --categories` is train's categories.png byte for byte
 * (10 columns, the run's seed and scale); `sample --category K` draws category K from the z's
 * the grid's columns use, so its samples are row K's cells; `eval` scores argmax q(c|x) as a
 * clustering of the chosen split (the test split's NMI and accuracy are training's last metrics);
 * every new flag's bad values are refused by name. */
Test(cli, a_joint_models_categories_are_sampled_and_scored_from_its_file)
{
    char data[512], args[2048], run[700], png[800];
    write_tiny_data(data, sizeof data);
    snprintf(run, sizeof run, "%s/joint", data);
    snprintf(args, sizeof args,
             "train --model joint --data %s --epochs 3 --batch-size 16 --hidden 24 --latent 2 --disc 3 --out %s "
             "--device cpu --quiet",
             data, run);
    cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
    /* the bad values, each by its flag */
    snprintf(args, sizeof args, "sample --model %s --category x --out %s/x.png", run, run);
    EXPECT_FAIL(2, args, "--category: 'x' is not an integer");
    snprintf(args, sizeof args, "sample --model %s --category 3 --out %s/x.png --device cpu", run, run);
    EXPECT_FAIL(1, args, "--category 3 is out of range: the model has 3 categories (0..2)");
    snprintf(args, sizeof args, "sample --model %s --category 1 --categories --out %s/x.png", run, run);
    EXPECT_FAIL(2, args, "--category K and --categories both choose what is drawn: give one");
    snprintf(args, sizeof args, "eval --model %s --split val", run);
    EXPECT_FAIL(2, args, "--split 'val': expected test or train");
    snprintf(args, sizeof args, "train --data %s --epochs 1 --batch-size 16 --hidden 8 --latent 2 --out %s/plain "
             "--device cpu --quiet", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args, "sample --model %s/plain --category 1 --out %s/x.png --device cpu", data, data);
    EXPECT_FAIL(1, args, "the model has no categorical latent (--model joint): --category applies only to one");
    snprintf(args, sizeof args, "sample --model %s/plain --categories --out %s/x.png --device cpu", data, data);
    EXPECT_FAIL(1, args, "--categories applies only to one");

    /* the category grid of the file is train's categories.png */
    snprintf(png, sizeof png, "%s/grid.png", run);
    snprintf(args, sizeof args, "sample --model %s --categories --n 100 --out %s --device cpu", run, png);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 10 samples of each of the 3 categories (one row per category"), "%s", out);
    char train_png[800];
    snprintf(train_png, sizeof train_png, "%s/categories.png", run);
    size_t la, lb;
    void *ga = tu_read_file(png, &la), *gb = tu_read_file(train_png, &lb);
    cr_expect(la == lb && memcmp(ga, gb, la) == 0, "sample --categories is not train's categories.png");
    free(ga);
    free(gb);
    /* --category 1 --n 3: the z's of a 3-column grid, all decoded with category 1: its row 1 */
    char one[800];
    snprintf(png, sizeof png, "%s/grid3.png", run);
    snprintf(one, sizeof one, "%s/one.png", run);
    snprintf(args, sizeof args, "sample --model %s --categories --n 9 --scale 1 --out %s --device cpu", run, png);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args, "sample --model %s --category 1 --n 3 --scale 1 --out %s --device cpu", run, one);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 3 samples of category 1"), "%s", out);
    uint8_t *gpx, *opx;
    int gw, gh, ow, oh;
    cr_assert_eq(vae_png_read_gray(png, &gpx, &gw, &gh), 0, "%s", vae_last_error());
    cr_assert_eq(vae_png_read_gray(one, &opx, &ow, &oh), 0, "%s", vae_last_error());
    for (int j = 0; j < 3; j++) {
        uint8_t want[64], got[64];
        grid8_tile(gpx, gw, gh, 1, j, want);
        grid8_tile(opx, ow, oh, j / 2, j % 2, got); /* 3 samples: a 2-column grid */
        cr_expect(memcmp(want, got, 64) == 0, "sample %d of category 1 is not the grid's cell (1, %d)", j, j);
    }
    vae_free(gpx);
    vae_free(opx);

    /* eval scores the clustering of the split it evaluates */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --json", CUVAE_BINARY, run, data);
    json_t *t = tu_run_json(cmd);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --json --split train", CUVAE_BINARY, run,
             data);
    json_t *tr = tu_run_json(cmd);
    cr_expect_str_eq(json_string_value(json_object_get(t, "split")), "test");
    cr_expect_str_eq(json_string_value(json_object_get(tr, "split")), "train");
    cr_expect_eq(tu_json_num(t, "images"), 30);
    cr_expect_eq(tu_json_num(tr, "images"), 120);
    const double nmi = tu_json_num(t, "nmi"), acc = tu_json_num(t, "cluster_acc");
    cr_expect(nmi >= 0 && nmi <= 1 && acc >= 1.0 / 3 - 1e-9 && acc <= 1, "nmi %g, accuracy %g", nmi, acc);
    cr_expect(isfinite(tu_json_num(tr, "nmi")) && isfinite(tu_json_num(tr, "cluster_acc")));
    /* the test split's: training's last epoch (metrics.jsonl) */
    char jsonl[800];
    snprintf(jsonl, sizeof jsonl, "%s/metrics.jsonl", run);
    size_t len;
    char *text = tu_read_file(jsonl, &len), *last = text;
    for (char *p = strchr(text, '\n'); p && p[1]; p = strchr(p + 1, '\n'))
        last = p + 1;
    json_t *row = json_loads(last, 0, NULL);
    cr_assert_not_null(row, "%s", last);
    cr_expect(fabs(tu_json_num(row, "nmi") - nmi) < 1e-6, "eval's nmi %.9g, training's %.9g", nmi,
              tu_json_num(row, "nmi"));
    cr_expect(fabs(tu_json_num(row, "cluster_acc") - acc) < 1e-6, "eval's accuracy %.9g, training's %.9g", acc,
              tu_json_num(row, "cluster_acc"));
    json_decref(row);
    free(text);
    snprintf(args, sizeof args, "eval --model %s --data %s --device cpu --split train", run, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "data: ") && strstr(out, " train split, 120 images") &&
                  strstr(out, "clustering of the train split by argmax q(c|x) against its labels: NMI "),
              "%s", out);
    json_decref(t);
    json_decref(tr);
}

/* reconstruct --digit K --split train|test --n N --posterior-samples S: the first N images of label K
 * of the chosen split, each (left, its exact pixels) followed by S decodes of z ~ q(z|x) that differ
 * from one another; the same seed the same file, another seed another; each new flag's bad values
 * refused by name; an autoencoder (no posterior noise) refused. */
Test(cli, reconstruct_draws_one_digit_with_its_posterior_samples)
{
    char data[512], args[8192], run[700], png[800];
    write_tiny_data(data, sizeof data);
    snprintf(run, sizeof run, "%s/vae", data);
    snprintf(args, sizeof args,
             "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s --device cpu --quiet", data,
             run);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(png, sizeof png, "%s/post.png", run);
    const char *bad[][2] = {
        {"--digit x", "--digit: 'x' is not an integer"},
        {"--digit 300", "--digit: 300 is out of range"},
        {"--posterior-samples 0", "--posterior-samples: 0 is out of range"},
        {"--posterior-samples 65", "--posterior-samples: 65 is out of range"},
        {"--split val", "--split 'val': expected test or train"},
        {"--digit 1 --indices 0", "--digit and --indices both choose the images: give one"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "reconstruct --model %s --data %s %s --out %s --device cpu", run, data, bad[i][0],
                 png);
        EXPECT_FAIL(2, args, bad[i][1]);
    }
    snprintf(args, sizeof args, "reconstruct --model %s --data %s --digit 7 --out %s --device cpu", run, data, png);
    EXPECT_FAIL(1, args, "--digit 7: the test split of");
    cr_expect(strstr(out, "has no image of label 7"), "%s", out);

    snprintf(args, sizeof args,
             "reconstruct --model %s --data %s --digit 1 --split train --n 4 --posterior-samples 3 --scale 1 --out %s "
             "--device cpu",
             run, data, png);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote 4 train images, each with 3 decodes of z ~ q(z|x), to"), "%s", out);
    uint8_t *px;
    int w, h;
    cr_assert_eq(vae_png_read_gray(png, &px, &w, &h), 0, "%s", vae_last_error());
    int gx, gy;
    tu_grid_origin(px, w, h, &gx, &gy);
    cr_assert_eq(h - gy, VAE_GRID_BORDER + 4 * (8 + VAE_GRID_BORDER), "one row per image");
    cr_assert_geq(w - gx, VAE_GRID_BORDER + 4 * (8 + VAE_GRID_BORDER), "the image and 3 samples per row");
    cr_assert_neq(gy, 0, "the columns are not labelled");
    for (int r = 0; r < 4; r++) {
        const int i = 1 + 3 * r; /* the training images of label 1 (labels i % 3) */
        uint8_t tile[64], want[64], s1[64], s2[64];
        grid8_tile(px, w, h, r, 0, tile);
        for (int p = 0; p < 64; p++) /* write_idx's pixels of a label-1 image: its row 4 on */
            want[p] = p / 8 == 4 ? 250 : (uint8_t)((i * 7 + p * 13) % 20);
        cr_expect(memcmp(tile, want, 64) == 0, "row %d does not start with training image %d", r, i);
        grid8_tile(px, w, h, r, 1, s1);
        grid8_tile(px, w, h, r, 2, s2);
        cr_expect(memcmp(s1, s2, 64) != 0, "row %d: two posterior samples decode to the same pixels", r);
    }
    vae_free(px);
    size_t la, lb, lc;
    char again[800];
    snprintf(again, sizeof again, "%s/again.png", run);
    snprintf(args, sizeof args,
             "reconstruct --model %s --data %s --digit 1 --split train --n 4 --posterior-samples 3 --scale 1 --out %s "
             "--device cpu",
             run, data, again);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    void *fa = tu_read_file(png, &la), *fb = tu_read_file(again, &lb);
    cr_expect(la == lb && memcmp(fa, fb, la) == 0, "the same seed gave another picture");
    snprintf(args, sizeof args,
             "reconstruct --model %s --data %s --digit 1 --split train --n 4 --posterior-samples 3 --scale 1 "
             "--seed 2 --out %s --force --device cpu",
             run, data, again);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    void *fc = tu_read_file(again, &lc);
    cr_expect(!(la == lc && memcmp(fa, fc, la) == 0), "another seed gave the same picture");
    free(fa);
    free(fb);
    free(fc);
    /* an autoencoder has no posterior to sample */
    snprintf(args, sizeof args,
             "train --model ae --data %s --epochs 1 --batch-size 16 --hidden 8 --latent 2 --out %s/ae1 --device cpu "
             "--quiet",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args, "reconstruct --model %s/ae1 --data %s --posterior-samples 2 --out %s --device cpu",
             data, data, png);
    EXPECT_FAIL(1, args, "--posterior-samples: ");
    cr_expect(strstr(out, "has no posterior noise (a --model ae file)"), "%s", out);
}

/* --model ae trains from the CLI (tiny data, a 2-D code): its metrics hold the reconstruction alone;
 * the run says which pictures of the prior it does not draw and why, and draws the rest; eval says
 * its loss bounds nothing and refuses --iw-samples; sample is refused; encode writes the codes
 * without a logvar; plot skips the prior's pictures by name; --beta is refused; a resume keeps the
 * model. */
Test(cli, the_autoencoder_trains_and_refuses_what_needs_a_prior)
{
    char data[512], args[2048], path[1024];
    write_tiny_data(data, sizeof data);
    snprintf(args, sizeof args, "train --model ae --beta 2 --data %s --out %s/aeb --device cpu", data, data);
    EXPECT_FAIL(2, args, "--beta 2: the ae has no KL term to weigh");
    snprintf(args, sizeof args,
             "train --model ae --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s/ae --device cpu",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
    cr_expect(strstr(out, "AE: input 64") && strstr(out, "code z (2)"), "%s", out);
    cr_expect(strstr(out, "not drawn: samples.png, manifold.png, per_digit.png, posterior_cloud.svg: the model has "
                          "no prior"),
              "%s", out);
    snprintf(path, sizeof path, "%s/ae", data);
    cr_expect(tu_nonempty_in(path, "reconstructions.png") && tu_nonempty_in(path, "latent_scatter.svg") &&
              tu_nonempty_in(path, "traversals.png") && tu_nonempty_in(path, "interpolation.png"));
    cr_expect(!tu_exists_in(path, "samples.png") && !tu_exists_in(path, "manifold.png") &&
              !tu_exists_in(path, "per_digit.png"));
    snprintf(path, sizeof path, "%s/ae/metrics.csv", data);
    cr_expect(tu_file_has(path, "train_recon") && !tu_file_has(path, "train_kl"), "one term: recon");
    snprintf(args, sizeof args, "eval --model %s/ae --data %s --device cpu", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "recon alone: -log p(x|z) at the code z; the model has no prior and no KL") &&
              strstr(out, "variance of the code over the test set"),
              "%s", out);
    snprintf(args, sizeof args, "eval --model %s/ae --data %s --device cpu --iw-samples 4", data, data);
    EXPECT_FAIL(1, args, "--iw-samples: the model has no prior and no posterior noise (a --model ae file)");
    snprintf(args, sizeof args, "sample --model %s/ae --out %s/ae/s.png --device cpu", data, data);
    EXPECT_FAIL(1, args, "the model has no prior to draw z from (a --model ae file");
    snprintf(path, sizeof path, "%s/ae/s.png", data);
    cr_expect_not(tu_exists(path));
    snprintf(args, sizeof args, "encode --model %s/ae --data %s --out %s/ae/codes.safetensors --device cpu", data,
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "wrote mu (the codes z; the model has no logvar) (30 x 2)"), "%s", out);
    vae_safetensors st;
    snprintf(path, sizeof path, "%s/ae/codes.safetensors", data);
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_expect_eq(st.n_tensors, 2, "mu and labels");
    vae_safetensors_free(&st);
    snprintf(args, sizeof args, "plot --model %s/ae --data %s --out %s/aeplot --device cpu", data, data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "skipped manifold.png: the model has no prior") &&
                  strstr(out, "skipped per_digit.png: the model has no prior"),
              "%s", out);
    /* no posterior to draw from, no quantile grid: refused by flag; a linear grid of its code plane is drawn */
    snprintf(args, sizeof args, "plot --model %s/ae --out %s/aeplot --scatter samples --device cpu", data, data);
    EXPECT_FAIL(2, args, "--scatter samples: ");
    cr_expect(strstr(out, "is an autoencoder: its code is deterministic"), "%s", out);
    snprintf(args, sizeof args, "plot --model %s/ae --out %s/aeplot --cloud-samples 9 --device cpu", data, data);
    EXPECT_FAIL(2, args, "--cloud-samples: ");
    snprintf(args, sizeof args, "plot --model %s/ae --out %s/aeplot --manifold-size 9 --device cpu", data, data);
    EXPECT_FAIL(2, args, "--manifold-size: ");
    cr_expect(strstr(out, "give --manifold-range R"), "%s", out);
    snprintf(args, sizeof args, "plot --model %s/ae --out %s/aeplot --manifold-range 3 --device cpu", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(path, sizeof path, "%s/aeplot", data);
    cr_expect(tu_nonempty_in(path, "manifold.png"), "the ae's linear manifold: %s", out);
    snprintf(args, sizeof args, "train --resume %s/ae --epochs 3 --quiet", data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "epoch   3/3") && strstr(out, "recon"), "%s", out);
}

/* --model joint trains from the CLI (tiny data, 3 classes): the metrics hold both KL terms, both
 * capacities, nmi and cluster_acc; categories.png is written; the file says `model` and `disc`,
 * and eval, sample and a resume read it; bad values are refused by flag. */
Test(cli, the_joint_model_trains_with_capacities_and_clustering_metrics)
{
    EXPECT_FAIL(2, "train --model jointvae", "invalid --model 'jointvae' (expected vae, cvae, joint or ae)");
    EXPECT_FAIL(2, "train --model joint --disc 1", "--disc: 1 is out of range");
    EXPECT_FAIL(2, "train --model joint --capacity-z 5,0,30", "--capacity-z '5,0,30': expected MAX,ITERS,GAMMA");
    EXPECT_FAIL(2, "train --model joint --capacity-c 5,100", "--capacity-c '5,100': expected MAX,ITERS,GAMMA");
    EXPECT_FAIL(2, "train --model joint --temperature 0", "--temperature");
    char data[512], args[2048];
    write_tiny_data(data, sizeof data);
    snprintf(args, sizeof args, "train --data %s --capacity-z 5,100,30 --out %s/plain --device cpu", data, data);
    EXPECT_FAIL(2, args, "--capacity-z: only for --model joint");
    snprintf(args, sizeof args,
             "train --model joint --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --disc 3 --out %s/joint "
             "--device cpu "
             "--quiet --capacity-z 2,10,30 --capacity-c 1,10,30 --temperature 1 --temperature-anneal 0.5",
             data, data);
    cr_assert_eq(cuvae(args), 0, "%s\n%s", args, out);
    cr_expect(strstr(out, "categorical latent of 3 classes") && strstr(out, "controlled capacity"), "%s", out);
    cr_expect(strstr(out, "capacity_z 2.0000  capacity_c 1.0000  nmi "), "%s", out);
    char path[1024];
    snprintf(path, sizeof path, "%s/joint/metrics.csv", data);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[4096];
    cr_assert(fgets(line, sizeof line, f));
    fclose(f);
    cr_expect(strstr(line, "train_kl_z,train_kl_c,") && strstr(line, ",capacity_z,capacity_c,nmi,cluster_acc,"),
              "%s", line);
    snprintf(path, sizeof path, "%s/joint", data);
    cr_expect(tu_nonempty_in(path, "categories.png"));
    snprintf(args, sizeof args, "eval --model %s/joint/model.safetensors --data %s --device cpu --json", data, data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    snprintf(args, sizeof args, "sample --model %s/joint/model.safetensors --out %s/joint/s.png --device cpu", data,
             data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    /* a resume keeps the objective */
    snprintf(args, sizeof args, "train --resume %s/joint --epochs 3 --capacity-c 2,10,30", data);
    cr_expect_eq(cuvae(args), 2, "%s", out);
    cr_expect(strstr(out, "--capacity-c 2,10,30 (the run has 1,10,30)"), "%s", out);
    snprintf(args, sizeof args, "train --resume %s/joint --epochs 3 --quiet", data);
    cr_assert_eq(cuvae(args), 0, "%s", out);
    cr_expect(strstr(out, "epoch   3/3"), "%s", out);
}
