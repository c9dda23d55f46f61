/*
 * test_recipes.c: every script of recipes/ (one per course practical, docs/practicals.md) run in
 * its shortened form, `--steps 20`, into a scratch directory, so none rots: it exits 0, leaves
 * each file its docs row and header name (PNGs that open and close as PNGs, SVGs that close their
 * <svg>, the other files non-empty), and prints its summary lines (the Keras parameter counts
 * against the practical's, the joint models' NMI). Also that a recipe never overwrites a run (a
 * second call into the same directory stops at cuvae's refusal, the first run's files untouched)
 * and refuses a bad --steps. The numbers of a full run are in docs/practicals.md, not here: 20
 * steps train nothing worth judging.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 18];

#define MNIST_DIR CUVAE_SOURCE_DIR "/data/mnist"

/* Run recipes/NAME.sh ARGS with this build's cuvae and the checkout's MNIST into out; its exit
 * status. Skips the test where MNIST has not been fetched. */
static int recipe(const char *name, const char *args)
{
    if (!tu_exists(MNIST_DIR "/train-images-idx3-ubyte.gz") && !tu_exists(MNIST_DIR "/train-images-idx3-ubyte"))
        cr_skip_test("MNIST is not in %s (scripts/fetch_mnist.sh puts it there)", MNIST_DIR);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "CUVAE='%s' CUVAE_DATA='%s' '%s/recipes/%s.sh' %s", CUVAE_BINARY, MNIST_DIR,
             CUVAE_SOURCE_DIR, name, args);
    return tu_run(cmd, out, sizeof out);
}

/* The shortened run of recipe NAME into a fresh directory; that directory (static storage). */
static const char *run_short(const char *name)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/out", tu_tmpdir());
    char args[1200];
    snprintf(args, sizeof args, "--steps 20 '%s'", dir);
    int rc = recipe(name, args);
    cr_assert_eq(rc, 0, "recipes/%s.sh --steps 20 exited %d:\n%s", name, rc, out);
    return dir;
}

static void expect(const char *text)
{
    cr_assert(strstr(out, text), "expected\n  %s\nin the output:\n%s", text, out);
}

/* dir/name is there and whole for its kind: a PNG from its signature to its IEND chunk, an SVG
 * closing its <svg> element, anything else at least one byte. */
static void expect_file(const char *dir, const char *name)
{
    char path[2048];
    tu_join(path, sizeof path, dir, name);
    size_t n = 0;
    char *bytes = tu_slurp(path, &n);
    cr_assert(bytes, "%s: missing", path);
    cr_assert_gt(n, 0, "%s: empty", path);
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".png")) {
        cr_expect(n > 20 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8), "%s: no PNG signature", path);
        cr_expect(n > 20 && !memcmp(bytes + n - 8, "IEND", 4), "%s: does not end with an IEND chunk", path);
    } else if (dot && !strcmp(dot, ".svg")) {
        cr_expect(strstr(bytes, "<svg") && strstr(bytes, "</svg>"), "%s: not a whole SVG", path);
    }
    free(bytes);
}

static void expect_files(const char *dir, const char *const *names)
{
    for (; *names; names++)
        expect_file(dir, *names);
}

/* The pictures and files every image run leaves. */
#define IMAGE_RUN_FILES                                                                                \
    "model.safetensors", "metrics.csv", "report.html", "reconstructions.png", "loss_curves.svg",      \
        "latent_scatter.svg", "traversals.png", "interpolation.png"

Test(recipes, toy_1d, .timeout = 120)
{
    const char *dir = run_short("toy_1d");
    static const char *const files[] = {"model.safetensors", "metrics.csv", "metrics_steps.csv", "report.html",
                                        "toy_density.svg", "toy_latent.svg", "toy_decoded.svg", "toy_generated.svg",
                                        "toy_snapshot_00000000.svg", "toy_snapshot_00000020.svg", "loss_curves.svg",
                                        NULL};
    expect_files(dir, files);
    expect("[toy_1d] final test loss ");
    expect("total variation to the true mixture: 0.");
}

Test(recipes, mnist_from_scratch, .timeout = 120)
{
    const char *dir = run_short("mnist_from_scratch");
    static const char *const files[] = {IMAGE_RUN_FILES, "samples.png", "per_digit.png", NULL};
    expect_files(dir, files);
    expect("encoder.fc1      (200, 784)");
    expect("[mnist_from_scratch] final train loss ");
}

Test(recipes, keras_vae_2d, .timeout = 120)
{
    const char *dir = run_short("keras_vae_2d");
    static const char *const files[] = {IMAGE_RUN_FILES,      "samples.png", "manifold.png", "per_digit.png",
                                        "posterior_cloud.svg", NULL};
    static const char *const linear[] = {"latent_scatter.svg", "manifold.png", "posterior_cloud.svg", NULL};
    expect_files(dir, files);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/linear", dir);
    expect_files(sub, linear);
    expect("[keras_vae_2d] parameters, encoder: cuvae 403972, the Keras practical 403972 (same)");
    expect("[keras_vae_2d] parameters, decoder: cuvae 403728, the Keras practical 403728 (same)");
    expect("[keras_vae_2d] parameters, total: cuvae 807700, the Keras practical 807700 (same)");
    /* 20 steps are one epoch: no row 24 to set beside the practical's 145.8 */
    expect("[keras_vae_2d] training loss at epoch 24: cuvae -, the practical about 145.8");
}

Test(recipes, theano_binarized, .timeout = 120)
{
    const char *dir = run_short("theano_binarized");
    char run[1100];
    static const char *const vae[] = {IMAGE_RUN_FILES,        "samples.png",         "manifold.png",
                                      "posterior_3.png",      "posterior_cloud.svg", "samples_bernoulli.png",
                                      NULL};
    static const char *const draws[] = {"latent_scatter.svg", NULL};
    static const char *const ae[] = {IMAGE_RUN_FILES, NULL};
    snprintf(run, sizeof run, "%s/vae", dir);
    expect_files(run, vae);
    snprintf(run, sizeof run, "%s/vae-draws", dir);
    expect_files(run, draws);
    cr_expect(tu_file_has(strcat(run, "/latent_scatter.svg"), "One draw of q(z|x) per test image"),
              "vae-draws/latent_scatter.svg is not of posterior draws");
    snprintf(run, sizeof run, "%s/ae", dir);
    expect_files(run, ae);
    cr_expect(!tu_exists_in(run, "samples.png"), "the autoencoder has no prior to sample");
    expect("binarization: dynamic");
    expect("the test loss on a fresh draw of the test set each epoch (--binarize-test redraw");
    expect("[theano_binarized] VAE ELBO per image, epoch 1: train -");
}

Test(recipes, joint_nmi, .timeout = 180)
{
    const char *dir = run_short("joint_nmi");
    char run[1100];
    static const char *const vae[] = {IMAGE_RUN_FILES, "samples.png", NULL};
    static const char *const cvae[] = {IMAGE_RUN_FILES, "samples.png", "label_7.png", NULL};
    static const char *const joint[] = {IMAGE_RUN_FILES, "samples.png", "categories.png", "category_0.png", NULL};
    snprintf(run, sizeof run, "%s/vae", dir);
    expect_files(run, vae);
    snprintf(run, sizeof run, "%s/cvae", dir);
    expect_files(run, cvae);
    snprintf(run, sizeof run, "%s/joint", dir);
    expect_files(run, joint);
    snprintf(run, sizeof run, "%s/joint-capacity", dir);
    expect_files(run, joint);
    /* the capacities rise at the practical's rate, over its 37,520 steps, in the shortened run too */
    char meta[1200];
    snprintf(meta, sizeof meta, "%s/model.safetensors", run);
    cr_expect(tu_file_has(meta, "100,37520,20"), "the capacities are not 100 over 37,520 steps with gamma 20");
    expect("[joint_nmi] joint: NMI after epoch 1 ");
    expect("[joint_nmi] joint-capacity: NMI after epoch 1 ");
    expect("cuvae eval on the test set: NMI 0.");
}

Test(recipes, never_overwrites_a_run, .timeout = 120)
{
    const char *dir = run_short("mnist_from_scratch");
    char model[1100];
    tu_join(model, sizeof model, dir, "model.safetensors");
    size_t n0 = 0, n1 = 0;
    char *before = tu_read_file(model, &n0);
    char args[1200];
    snprintf(args, sizeof args, "--steps 20 '%s'", dir);
    int rc = recipe("mnist_from_scratch", args);
    cr_expect_neq(rc, 0, "a second run into %s was not refused:\n%s", dir, out);
    expect("holds a previous run");
    char *after = tu_read_file(model, &n1);
    cr_expect(n0 == n1 && !memcmp(before, after, n0), "the first run's model was changed");
    free(before);
    free(after);
}

Test(recipes, usage_errors)
{
    cr_expect_eq(recipe("toy_1d", "--steps 0"), 2, "--steps 0 was not refused:\n%s", out);
    expect("toy_1d: --steps 0: not a positive whole number");
    cr_expect_eq(recipe("toy_1d", "--bogus"), 2, "--bogus was not refused:\n%s", out);
    expect("toy_1d: unknown option --bogus");
}
