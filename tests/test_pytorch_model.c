/*
 * test_pytorch_model.c: PyTorch rebuilds any model cuvae writes from the file's metadata alone
 * (scripts/cuvae_torch.py, through scripts/pytorch_eval.py): a model trained by the cuvae binary
 * evaluates in PyTorch as in `cuvae eval`, read through the plain VAE's keys and, the same file
 * with its architecture written into the metadata, through the `architecture` JSON; hand-made
 * files whose layers read several input blocks (tests/pytorch_model_fixture.py) evaluate as a
 * forward pass written directly in NumPy; bad files give one plain message and a non-zero exit.
 * Not a test of cuvae's evaluation itself (test_eval.c). Skipped, saying so, where neither
 * python3 nor /usr/bin/python3 imports torch and numpy (scripts/install_deps.sh --torch).
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static char out[1 << 17];

/* Run cmd (stdout only) and parse its one JSON object; the caller owns it. */
/* o[obj][key], a number */
static double num2(const json_t *o, const char *obj, const char *key)
{
    const json_t *v = json_object_get(o, obj);
    cr_assert(v && json_is_object(v), "no object '%s' in the JSON", obj);
    return tu_json_num(v, key);
}

static json_t *pytorch_eval(const char *py, const char *model, const char *data, int k)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples %d", py,
             CUVAE_SOURCE_DIR, model, data, k);
    return tu_run_json(cmd);
}

/* Tolerances, cuvae (float32, its noise) against PyTorch (float64, its own noise), K = 100:
 * - kl has no noise (closed form from the encoder's output). cuvae's encoder is three layers of
 *   float32 dot products of at most 65 terms (64 pixels and the bias), each within
 *   gamma_65 = 65u / (1 - 65u) = 3.9e-6 (u = 2^-24) of the sum of |w_i h_i| whatever the order
 *   of summation (Higham, Accuracy and Stability of Numerical Algorithms, Thm 3.1); with the KL's
 *   own few roundings that is about 1.2e-5 of the scale of the sums. We allow 1e-4 relative, a
 *   factor of 8 for sums of |w h| larger than |sum w h|; per-image sums are in double on both sides.
 * - recon, loss and the objective hold one posterior sample per image, drawn independently on
 *   each side: PyTorch draws twice and reports the standard error se of one draw's mean over the
 *   images, so the difference of the two sides has standard deviation sqrt(2) se; we allow 4 of
 *   those (a false failure about once in 16,000) plus the 1e-4 relative of float32.
 * - iw_nll: the same expectation (the K-sample bound's bias is the same for the same K) and
 *   independent noise: 4 sqrt(2) iw_nll_se plus 1e-4 relative. */
/* cuvae's value cv of `name` against PyTorch's tv, whose estimate has standard error se (0: no
 * noise): |cv - tv| <= 4 sqrt(2) se + 1e-4 |tv| (see expect_agree). */
static void expect_close(const char *name, double cv, double tv, double se)
{
    const double tol = 4.0 * sqrt(2.0) * se + 1e-4 * fabs(tv);
    cr_log_info("%s %.9f vs PyTorch %.9f (tolerance %.3g)", name, cv, tv, tol);
    cr_expect(fabs(cv - tv) <= tol, "%s %.8f vs PyTorch %.8f (se %.4f, tolerance %.3g)", name, cv, tv, se, tol);
}

static void expect_agree(const json_t *c, const json_t *t)
{
    const double se_recon = num2(t, "terms_se", "recon");
    cr_expect_eq(tu_json_num(c, "images"), tu_json_num(t, "images"));
    expect_close("kl", tu_json_num(c, "kl"), tu_json_num(t, "kl"), 0.0);
    expect_close("recon", tu_json_num(c, "recon"), tu_json_num(t, "recon"), se_recon);
    expect_close("loss", tu_json_num(c, "loss"), tu_json_num(t, "loss"), tu_json_num(t, "loss_se"));
    expect_close("objective", tu_json_num(c, "objective"), tu_json_num(t, "objective"), se_recon);
    expect_close("iw_nll", tu_json_num(c, "iw_nll"), tu_json_num(t, "iw_nll"), tu_json_num(t, "iw_nll_se"));
}

/* A model trained by the binary (`train --data DIR --out DIR/run --device cpu --quiet` and
 * train_args) on the 8x8 patterns (600 training and 100 test images from seed) in a fresh
 * directory, then evaluated on its test split by `cuvae eval --json` and by PyTorch, both with k
 * importance samples (0: none). dir (512 bytes) and model (700) get the paths. */
static void train_and_evaluate(const char *py, uint64_t seed, const char *train_args, int k, char *dir, char *model,
                               json_t **cuvae, json_t **torch)
{
    char cmd[4096], iw[32] = "";
    snprintf(dir, 512, "%s", tu_tmpdir());
    tu_write_patterns_idx(dir, 600, 100, seed);
    cr_assert_eq(
        tu_cuvae(out, sizeof out, "train --data %s --out %s/run --device cpu --quiet %s", dir, dir, train_args), 0,
        "%s", out);
    snprintf(model, 700, "%s/run/model.safetensors", dir);
    if (k > 0)
        snprintf(iw, sizeof iw, " --iw-samples %d", k);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --json%s", CUVAE_BINARY, model, dir, iw);
    *cuvae = tu_run_json(cmd);
    *torch = pytorch_eval(py, model, dir, k);
}

/* A model with two hidden layers (mirrored in the decoder) and beta 0.5 trained by the binary;
 * `cuvae eval` and PyTorch on the same file and data, PyTorch rebuilding it from the architecture
 * cuvae wrote. Then the same file with its architecture replaced by the one the loader derives
 * from the plain keys: PyTorch's numbers are the same to the last digit. */
Test(pytorch_model, a_trained_model_evaluates_as_in_cuvae_eval)
{
    const char *py = tu_need_torch();
    char dir[512], model[700], cmd[4096];
    json_t *c, *t;
    train_and_evaluate(py, 73, "--epochs 15 --hidden 24,12 --latent 4 --beta 0.5 --batch-size 32 --lr 3e-3", 100, dir,
                       model, &c, &t);
    cr_expect_float_eq(num2(t, "weights", "kl"), 0.5, 1e-12, "the KL's weight is the file's beta");
    cr_expect_float_eq(tu_json_num(c, "beta"), 0.5, 1e-12);
    cr_expect_float_eq(tu_json_num(t, "objective"), tu_json_num(t, "recon") + 0.5 * tu_json_num(t, "kl"),
                       1e-9 * tu_json_num(t, "objective"));
    cr_expect_float_eq(tu_json_num(t, "loss"), tu_json_num(t, "recon") + tu_json_num(t, "kl"),
                       1e-9 * tu_json_num(t, "loss"));
    expect_agree(c, t);

    char with_arch[800];
    snprintf(with_arch, sizeof with_arch, "%s/with_architecture.safetensors", dir);
    snprintf(cmd, sizeof cmd, "%s %s/tests/pytorch_model_fixture.py add-arch %s %s", py, CUVAE_SOURCE_DIR, model,
             with_arch);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
    json_t *a = pytorch_eval(py, with_arch, dir, 100);
    cr_expect(json_equal(a, t), "the architecture JSON and the plain keys give other numbers:\n%s",
              json_dumps(a, JSON_COMPACT));
    json_decref(a);

    /* cuvae_torch.py MODEL says where the architecture came from and counts the rebuilt module's
     * parameters: 64-24-12-(4+4) | 4-12-24-64 is 1560 + 300 + 104 + 60 + 312 + 1600 = 3936. */
    const char *files[] = {model, with_arch}, *sources[] = {"metadata", "metadata"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s %s/scripts/cuvae_torch.py %s", py, CUVAE_SOURCE_DIR, files[i]);
        json_t *d = tu_run_json(cmd);
        cr_expect_str_eq(json_string_value(json_object_get(d, "source")), sources[i], "%s", files[i]);
        cr_expect_eq(tu_json_num(d, "parameters"), 3936, "%s", files[i]);
        json_t *layers = json_object_get(json_object_get(d, "architecture"), "layers");
        cr_expect_eq(json_array_size(layers), 6, "%s: 2 + head + 2 + out layers", files[i]);
        json_decref(d);
    }
    json_decref(c);
    json_decref(t);
}

/* A conditional VAE (--model cvae) trained by the binary: PyTorch rebuilds it from the architecture
 * (inputs x and the one-hot label y, [x | y] into the encoder, [z | y] into the decoder) and its
 * evaluation on the test labels agrees with `cuvae eval` within the tolerances of expect_agree
 * (the encoder's first dot products have 64 + 3 + 1 terms: gamma_68 is still within the 1e-4
 * relative allowed for the kl). Beta 0.2, so that the latent holds something beyond the label
 * (with beta 1 this easy data's KL is near 0 and the kl check would check little). A test set
 * with a label beyond the model's classes is refused. */
Test(pytorch_model, a_cvae_evaluates_as_in_cuvae_eval)
{
    const char *py = tu_need_torch();
    char dir[512], model[700], cmd[4096];
    json_t *c, *t;
    train_and_evaluate(py, 74, "--model cvae --epochs 15 --hidden 24 --latent 3 --beta 0.2 --batch-size 32 --lr 3e-3",
                       100, dir, model, &c, &t);
    cr_expect_str_eq(json_string_value(json_object_get(c, "bound_of")), "-log p(x|y)");
    expect_agree(c, t);
    /* 64+3-24-(3+3) | 3+3-24-64: 1632 + 150 + 168 + 1600 = 3550 parameters, inputs x and y */
    snprintf(cmd, sizeof cmd, "%s %s/scripts/cuvae_torch.py %s", py, CUVAE_SOURCE_DIR, model);
    json_t *d = tu_run_json(cmd);
    cr_expect_eq(tu_json_num(d, "parameters"), 3550);
    cr_expect_eq(num2(json_object_get(d, "architecture"), "inputs", "y"), 3, "the one-hot label of 3 classes");
    json_decref(d);
    json_decref(c);
    json_decref(t);

    /* a label beyond the model's 3 classes: one plain message naming the labels, exit 1 */
    char lab[800];
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", dir);
    FILE *f = fopen(lab, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 8 + 5, SEEK_SET), 0);
    cr_assert_eq(fputc(9, f), 9);
    cr_assert_eq(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples 0", py,
             CUVAE_SOURCE_DIR, model, dir);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "label 9 of row 5 is out of range") && !strstr(out, "Traceback"), "%s", out);
}

/* Hand-made files whose layers read several blocks ([x | encoder.fc1], [encoder.fc2 | encoder.fc1],
 * [z | decoder.fc1]), Bernoulli and Gaussian (sigma 0.5, KL weight 0.5): the loader's terms and
 * importance weights equal a direct NumPy forward pass at the same noise (the fixture's check,
 * float64 both: 1e-10 relative), and pytorch_eval.py's kl (no noise) equals NumPy's. */
Test(pytorch_model, layers_with_input_blocks_follow_the_architecture)
{
    const char *py = tu_need_torch();
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s/tests/pytorch_model_fixture.py write %s && %s %s/tests/pytorch_model_fixture.py "
             "check %s", py, CUVAE_SOURCE_DIR, dir, py, CUVAE_SOURCE_DIR, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
    cr_log_info("%s", out);
    char path[700];
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json_error_t err;
    json_t *want = json_load_file(path, 0, &err);
    cr_assert(want, "%s: %s", path, err.text);
    const char *name;
    json_t *w;
    int n = 0;
    json_object_foreach(want, name, w) {
        char model[800];
        snprintf(model, sizeof model, "%s/%s", dir, name);
        json_t *t = pytorch_eval(py, model, dir, 10);
        cr_expect_eq(tu_json_num(t, "images"), 20);
        cr_expect_float_eq(tu_json_num(t, "kl"), tu_json_num(w, "kl"), 1e-10 * tu_json_num(w, "kl"),
                           "%s: kl %.12f vs NumPy %.12f", name,
                           tu_json_num(t, "kl"), tu_json_num(w, "kl"));
        cr_expect_float_eq(num2(t, "weights", "kl"), tu_json_num(w, "kl_weight"), 1e-12, "%s", name);
        cr_expect_float_eq(tu_json_num(t, "objective"),
                           tu_json_num(t, "recon") + tu_json_num(w, "kl_weight") * tu_json_num(t, "kl"),
                           1e-9 * fabs(tu_json_num(t, "objective")), "%s", name);
        cr_expect(isfinite(tu_json_num(t, "iw_nll")), "%s", name);
        json_decref(t);
        n++;
    }
    cr_expect_eq(n, 2, "the fixture writes a Bernoulli and a Gaussian model");
    json_decref(want);
}

/* A joint model (--model joint, 3 classes, controlled capacity) trained by the binary: PyTorch
 * rebuilds the categorical latent from the architecture and sums it out exactly, as `cuvae eval`
 * does, so the ELBO's terms agree within the Gaussian latent's sampling noise (tolerances as in
 * expect_agree); KL_c has no noise. Importance weights over c are refused by both, by name. */
Test(pytorch_model, a_joint_model_evaluates_as_in_cuvae_eval)
{
    const char *py = tu_need_torch();
    char dir[512], model[700], cmd[4096];
    json_t *c, *t;
    train_and_evaluate(py, 73,
                       "--model joint --disc 3 --epochs 15 --hidden 24,12 --latent 4 --batch-size 32 --lr 3e-3 "
                       "--capacity-z 2,200,30 --capacity-c 1,200,30",
                       0, dir, model, &c, &t);
    cr_expect(num2(t, "terms_se", "kl_c") == 0, "KL_c is noiseless");
    expect_close("kl", tu_json_num(c, "kl"), tu_json_num(t, "kl_z") + tu_json_num(t, "kl_c"), 0.0);
    expect_close("recon", tu_json_num(c, "recon"), tu_json_num(t, "recon"), num2(t, "terms_se", "recon"));
    expect_close("loss", tu_json_num(c, "loss"), tu_json_num(t, "loss"), tu_json_num(t, "loss_se"));
    json_decref(c);
    json_decref(t);
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples 5", py,
             CUVAE_SOURCE_DIR, model, dir);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "a categorical latent (--model joint)") && !strstr(out, "Traceback"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu --iw-samples 5", model, dir), 1,
                 "%s", out);
    cr_expect(strstr(out, "--iw-samples: the importance-weighted estimate does not cover a categorical latent"), "%s",
              out);
}

/* A conditional VAE whose decoder alone reads the label (--condition decoder): PyTorch rebuilds it
 * from the architecture alone (the encoder reads [x], the decoder [z | y]) and agrees with `cuvae
 * eval` within expect_agree's tolerances. */
Test(pytorch_model, a_cvae_conditioned_on_the_decoder_evaluates_as_in_cuvae_eval)
{
    const char *py = tu_need_torch();
    char dir[512], model[700], cmd[4096];
    json_t *c, *t;
    train_and_evaluate(py, 76,
                       "--model cvae --condition decoder --epochs 15 --hidden 24 --latent 3 --beta 0.2 "
                       "--batch-size 32 --lr 3e-3",
                       100, dir, model, &c, &t);
    cr_expect_str_eq(json_string_value(json_object_get(c, "bound_of")), "-log p(x|y)");
    expect_agree(c, t);
    /* 64-24-(3+3) | 3+3-24-64: 1560 + 150 + 168 + 1600 = 3478 parameters */
    snprintf(cmd, sizeof cmd, "%s %s/scripts/cuvae_torch.py %s", py, CUVAE_SOURCE_DIR, model);
    json_t *d = tu_run_json(cmd);
    cr_expect_eq(tu_json_num(d, "parameters"), 3478);
    json_t *first = json_array_get(json_object_get(json_object_get(d, "architecture"), "layers"), 0);
    cr_expect_eq(json_array_size(json_object_get(first, "in")), 1, "the encoder reads x alone");
    json_decref(d);
    json_decref(c);
    json_decref(t);
}

/* The deterministic autoencoder (--model ae) trained by the binary: PyTorch rebuilds it from its
 * file alone (the latent kind "deterministic": z is the encoder.z layer's output, no noise) and its
 * one term, the reconstruction, has no noise on either side, so it agrees with `cuvae eval` within
 * the 1e-4 relative of float32 (the KL-free loss is recon itself on both sides); `cuvae eval --json`
 * reports no bound and no kl. Importance weights are refused by both, by name. */
Test(pytorch_model, an_autoencoder_evaluates_as_in_cuvae_eval)
{
    const char *py = tu_need_torch();
    char dir[512], model[700], cmd[4096];
    json_t *c, *t;
    train_and_evaluate(py, 75, "--model ae --epochs 15 --hidden 24,12 --latent 4 --batch-size 32 --lr 3e-3", 0, dir,
                       model, &c, &t);
    cr_expect(num2(t, "terms_se", "recon") == 0, "an autoencoder's reconstruction is noiseless");
    cr_expect_eq(json_object_size(json_object_get(t, "terms")), 1, "the reconstruction is its only term");
    expect_close("recon", tu_json_num(c, "recon"), tu_json_num(t, "recon"), 0.0);
    expect_close("loss", tu_json_num(c, "loss"), tu_json_num(t, "loss"), 0.0);
    cr_expect_eq(tu_json_num(c, "kl"), 0.0);
    cr_expect_null(json_object_get(c, "bound_of"), "an autoencoder's loss bounds nothing");
    cr_expect_null(json_object_get(c, "loss_mc"));
    cr_expect_str_eq(json_string_value(json_object_get(c, "model_kind")), "ae");
    json_decref(c);
    json_decref(t);
    /* 64-24-12-4 | 4-12-24-64: 1560 + 300 + 52 + 60 + 312 + 1600 = 3884 parameters, one deterministic latent */
    snprintf(cmd, sizeof cmd, "%s %s/scripts/cuvae_torch.py %s", py, CUVAE_SOURCE_DIR, model);
    json_t *d = tu_run_json(cmd);
    cr_expect_eq(tu_json_num(d, "parameters"), 3884);
    json_t *lat = json_array_get(json_object_get(json_object_get(d, "architecture"), "latents"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(lat, "kind")), "deterministic");
    cr_expect_str_eq(json_string_value(json_object_get(lat, "stats")), "encoder.z");
    json_decref(d);
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples 5", py,
             CUVAE_SOURCE_DIR, model, dir);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "a deterministic latent (--model ae) has neither") && !strstr(out, "Traceback"), "%s", out);
    cr_expect_eq(tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu --iw-samples 5", model, dir), 1,
                 "%s", out);
    cr_expect(strstr(out, "--iw-samples: the model has no prior and no posterior noise"), "%s", out);
}

/* Each bad file of the fixture (missing tensor, wrong shape, unknown source, a source used before
 * it exists, unknown op, a block of the wrong width, a tensor the architecture does not name,
 * broken JSON, a Gaussian without sigma, a truncated file), and a missing data set: one line
 * naming the file and the cause, exit 1, no traceback; and mutated architectures. */
Test(pytorch_model, bad_files_get_a_plain_message)
{
    const char *py = tu_need_torch();
    char dir[512], cmd[4096], path[700];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s/tests/pytorch_model_fixture.py write %s", py, CUVAE_SOURCE_DIR, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        cr_assert(tab, "%s: '%s' has no tab", path, line);
        *tab = '\0';
        char model[1600], want[2400];
        snprintf(model, sizeof model, "%s/%s", dir, line);
        snprintf(want, sizeof want, "pytorch_eval: %s: %s", model, tab + 1);
        snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples 5", py,
                 CUVAE_SOURCE_DIR, model, dir);
        int rc = tu_run(cmd, out, sizeof out);
        cr_expect_eq(rc, 1, "%s: exit %d:\n%s", line, rc, out);
        cr_expect(strstr(out, want), "%s: the message should say '%s':\n%s", line, want, out);
        cr_expect(!strstr(out, "Traceback"), "%s: a traceback:\n%s", line, out);
        n++;
    }
    fclose(f);
    cr_expect_eq(n, 10, "the fixture's ten bad files");

    /* 2000 seeded mutations of the architecture (values of other types, names, sizes): each loads
     * and evaluates or is refused with the loader's message, never a traceback */
    snprintf(cmd, sizeof cmd, "%s %s/tests/pytorch_model_fixture.py mutate %s 2000", py, CUVAE_SOURCE_DIR, dir);
    cr_expect_eq(tu_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
    cr_expect(strstr(out, "refused with a message") && !strstr(out, "Traceback"), "%s", out);
    cr_log_info("%s", out);

    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s/blocks_bernoulli.safetensors --data %s/none",
             py, CUVAE_SOURCE_DIR, dir, dir);
    int rc = tu_run(cmd, out, sizeof out);
    cr_expect_eq(rc, 1, "a missing data set: exit %d:\n%s", rc, out);
    cr_expect(strstr(out, "/none/t10k-images-idx3-ubyte.gz: cannot be read") && !strstr(out, "Traceback"), "%s", out);
}
