/*
 * test_eval.c: `cuvae eval` end to end on a tiny model trained through the CLI on a synthetic
 * data set (8x8 stroke patterns): the importance-weighted bound with K = 1 equals the ELBO with
 * its KL estimated by the same sample, the bound is at or below the negative ELBO and falls as K
 * grows, results are deterministic for a seed and do not depend on the row budget, static
 * binarization, the honest labels, the per-dimension table and a collapsed dimension seen as
 * inactive, and agreement with an independent PyTorch evaluation (scripts/pytorch_eval.py) of
 * the same file.
 */
#include "checkpoint.h"
#include "evaluate.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char out[1 << 17];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)




static char data[512], model[700];

/* A data set (600 train, 100 test images) and a model trained on it for 15 epochs. */
static void setup(void)
{
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 600, 100, 71);
    cr_assert_eq(cuvae("train --data %s --epochs 15 --out %s/run --hidden 32 --latent 4 --batch-size 32 "
                       "--lr 3e-3 --device cpu --quiet",
                       data, data),
                 0, "%s", out);
    snprintf(model, sizeof model, "%s/run/model.safetensors", data);
}

TestSuite(eval, .init = setup);

/* `cuvae eval ARGS --json` (stdout only) parsed; the object is the caller's. */
static json_t *eval_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *eval_json(const char *fmt, ...)
{
    char args[4096], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --json %s", CUVAE_BINARY, model, data,
             args);
    return tu_run_json(cmd);
}

Test(eval, json_has_the_fields_and_labels)
{
    json_t *o = eval_json("--iw-samples 10");
    const char *strs[] = {"binarization", "likelihood", "data", "model", "likelihood_note"};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        cr_expect(json_is_string(json_object_get(o, strs[i])), "no string '%s'", strs[i]);
    cr_expect_str_eq(json_string_value(json_object_get(o, "binarization")), "none");
    cr_expect_str_eq(json_string_value(json_object_get(o, "likelihood")), "bernoulli");
    cr_expect_str_eq(json_string_value(json_object_get(o, "model")), model);
    cr_expect(strstr(json_string_value(json_object_get(o, "likelihood_note")), "not a normalized likelihood"));
    cr_expect_eq(tu_json_num(o, "images"), 100);
    cr_expect_eq(tu_json_num(o, "iw_samples"), 10);
    cr_expect_float_eq(tu_json_num(o, "loss"), tu_json_num(o, "recon") + tu_json_num(o, "kl"), 1e-9);
    cr_expect_float_eq(tu_json_num(o, "objective"), tu_json_num(o, "loss"), 1e-9, "beta 1: the objective is the loss");
    cr_expect(tu_json_num(o, "kl") > 0.1, "a trained model has a KL term: %g", tu_json_num(o, "kl"));
    const json_t *kl = json_object_get(o, "kl_per_dim"), *act = json_object_get(o, "active_per_dim");
    cr_assert(json_array_size(kl) == 4 && json_array_size(act) == 4, "per-dimension arrays of 4");
    double sum = 0;
    int active = 0;
    for (int j = 0; j < 4; j++) {
        sum += json_number_value(json_array_get(kl, j));
        active += json_is_true(json_array_get(act, j));
    }
    cr_expect_float_eq(sum, tu_json_num(o, "kl"), 1e-4, "the dimensions' KL add up to the KL: %g vs %g", sum,
                       tu_json_num(o, "kl"));
    cr_expect_eq(tu_json_num(o, "active_units"), active);
    json_decref(o);
    /* without --iw-samples, no IW fields */
    o = eval_json("%s", "");
    cr_expect(!json_object_get(o, "iw_nll") && !json_object_get(o, "iw_samples"));
    json_decref(o);
}

Test(eval, iw_with_one_sample_is_the_single_sample_elbo)
{
    json_t *o = eval_json("--iw-samples 1 --seed 5");
    /* same noise: log w = log p(x|z) + log p(z) - log q(z|x) at the ELBO pass's z */
    cr_expect_float_eq(tu_json_num(o, "iw_nll"), tu_json_num(o, "loss_mc"), 1e-9 * tu_json_num(o, "loss"),
                       "iw %.9f vs elbo %.9f",
                       tu_json_num(o, "iw_nll"), tu_json_num(o, "loss_mc"));
    /* and the sampled KL estimates the closed-form one: within a few nats per image */
    cr_expect(fabs(tu_json_num(o, "loss_mc") - tu_json_num(o, "loss")) < 0.1 * tu_json_num(o, "loss"), "%g vs %g",
              tu_json_num(o, "loss_mc"),
              tu_json_num(o, "loss"));
    json_decref(o);
}

Test(eval, iw_bound_is_below_the_elbo_and_falls_with_k)
{
    const int ks[] = {1, 10, 100, 1000};
    double iw[4], loss = 0;
    for (int i = 0; i < 4; i++) {
        json_t *o = eval_json("--iw-samples %d", ks[i]);
        iw[i] = tu_json_num(o, "iw_nll");
        loss = tu_json_num(o, "loss");
        json_decref(o);
    }
    cr_log_info("negative ELBO %.4f, IW K=1 %.4f, 10 %.4f, 100 %.4f, 1000 %.4f", loss, iw[0], iw[1], iw[2], iw[3]);
    for (int i = 1; i < 4; i++) {
        cr_expect(iw[i] <= loss, "IW K=%d %.4f above the negative ELBO %.4f", ks[i], iw[i], loss);
        /* E[IW_K] falls with K; 0.05 nats of slack for the sampling noise over 100 images */
        cr_expect(iw[i] <= iw[i - 1] + 0.05, "IW K=%d %.4f above K=%d %.4f", ks[i], iw[i], ks[i - 1], iw[i - 1]);
    }
    /* On this model K = 1000 lies about 0.06 nats below the negative ELBO (seed 1's draws; the
     * single-sample ELBO itself moves by about 0.05 from seed to seed, K = 1000 by under 0.01). */
    cr_expect(iw[3] < loss - 0.03, "K=1000 gains nothing over the ELBO: %.4f vs %.4f", iw[3], loss);
}

Test(eval, deterministic_for_a_seed_and_independent_of_the_row_budget)
{
    json_t *a = eval_json("--iw-samples 30 --seed 3"), *b = eval_json("--iw-samples 30 --seed 3");
    json_t *c = eval_json("--iw-samples 30 --seed 4");
    /* 7 rows per launch: 1 image per launch, its 30 samples in chunks of 7,7,7,7,2 */
    json_t *d = eval_json("--iw-samples 30 --seed 3 --batch-size 7");
    cr_expect_eq(tu_json_num(a, "iw_nll"), tu_json_num(b, "iw_nll"));
    cr_expect_eq(tu_json_num(a, "loss"), tu_json_num(b, "loss"));
    cr_expect_neq(tu_json_num(a, "iw_nll"), tu_json_num(c, "iw_nll"), "another seed, the same samples");
    /* latent 4 is even, so the noise stream is the same; only GEMM blocking may differ */
    cr_expect_float_eq(tu_json_num(a, "iw_nll"), tu_json_num(d, "iw_nll"), 1e-4, "row budget 4096: %.6f, 7: %.6f",
                       tu_json_num(a, "iw_nll"), tu_json_num(d, "iw_nll"));
    cr_expect_float_eq(tu_json_num(a, "loss"), tu_json_num(d, "loss"), 1e-4);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}

Test(eval, static_binarization_is_seeded_and_labelled)
{
    json_t *a = eval_json("--binarize static"), *b = eval_json("--binarize static"), *n = eval_json("%s", "");
    cr_expect_str_eq(json_string_value(json_object_get(a, "binarization")), "static");
    cr_expect(strstr(json_string_value(json_object_get(a, "likelihood_note")), "binarized"));
    cr_expect_eq(tu_json_num(a, "loss"), tu_json_num(b, "loss"));
    cr_expect_neq(tu_json_num(a, "loss"), tu_json_num(n, "loss"));
    json_decref(a);
    json_decref(b);
    json_decref(n);

    /* the draw: 0 stays 0, 255 stays 255, 128 becomes 0 or 255 about half the time */
    uint8_t px[3000];
    for (int i = 0; i < 3000; i++)
        px[i] = i < 1000 ? 0 : i < 2000 ? 255 : 128;
    vae_dataset d = {.n = 3000, .rows = 1, .cols = 1, .dim = 1, .pixels = px};
    vae_binarize_static(&d, 9);
    int ones = 0;
    for (int i = 0; i < 3000; i++) {
        cr_assert(px[i] == 0 || px[i] == 255);
        if (i < 1000)
            cr_assert_eq(px[i], 0);
        else if (i < 2000)
            cr_assert_eq(px[i], 255);
        else
            ones += px[i] == 255;
    }
    cr_expect(ones > 440 && ones < 560, "%d of 1000 grey 128 pixels drawn as 1", ones);
}

Test(eval, text_report_names_data_binarization_likelihood_and_dimensions)
{
    cr_assert_eq(cuvae("eval --model %s --data %s --device cpu --iw-samples 5", model, data), 0, "%s", out);
    const char *want[] = {"binarization none", "not a normalized likelihood", "--binarize static", "test loss",
                          "over 100 images", "importance-weighted -log p(x)", "K = 5", "active latent units",
                          "var(mu)", data};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(out, want[i]), "'%s' missing:\n%s", want[i], out);
    cr_expect_eq(cuvae("eval --model %s --data %s --device cpu --binarize sometimes", model, data), 2, "%s", out);
    cr_expect(strstr(out, "--binarize 'sometimes'"), "%s", out);
    cr_expect_eq(cuvae("eval --model %s --data %s --device cpu --iw-samples 0", model, data), 2, "%s", out);
    cr_expect(strstr(out, "--iw-samples"), "%s", out);
}

/* beta != 1: the loss stays the negative ELBO (recon + kl), the training objective is shown apart */
/* A long evaluation is not silent: on a terminal (script(1) gives it one) eval draws a progress
 * bar for each pass, naming K; the numbers on stdout are the same as without one. */
Test(eval, a_long_evaluation_shows_its_progress)
{
    if (tu_run("script -qec true /dev/null", out, sizeof out) != 0)
        cr_skip_test("script(1) of util-linux cannot make a terminal here: %s", out);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "script -qec \"%s eval --model %s --data %s --device cpu --threads 1 --batch-size 64 "
             "--iw-samples 20000\" /dev/null",
             CUVAE_BINARY, model, data);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "eval: the importance-weighted bound, K = 20000 [") && strstr(out, "%") &&
                  strstr(out, "ETA"),
              "no progress bar:\n%s", out);
    cr_expect(strstr(out, "importance-weighted -log p(x)"), "%s", out);
}

Test(eval, a_beta_model_reports_the_elbo_and_its_objective_apart)
{
    cr_assert_eq(cuvae("train --data %s --epochs 2 --out %s/beta --hidden 16 --latent 3 --beta 4 --device cpu --quiet",
                       data, data),
                 0, "%s", out);
    snprintf(model, sizeof model, "%s/beta/model.safetensors", data);
    json_t *o = eval_json("%s", "");
    cr_expect_float_eq(tu_json_num(o, "beta"), 4.0, 1e-12);
    cr_expect_float_eq(tu_json_num(o, "loss"), tu_json_num(o, "recon") + tu_json_num(o, "kl"), 1e-9);
    cr_expect_float_eq(tu_json_num(o, "objective"), tu_json_num(o, "recon") + 4.0 * tu_json_num(o, "kl"), 1e-9);
    json_decref(o);
    cr_assert_eq(cuvae("eval --model %s --data %s --device cpu", model, data), 0, "%s", out);
    cr_expect(strstr(out, "beta 4)") && strstr(out, "the training objective recon + beta * kl is"), "%s", out);
}

/* A dimension whose posterior is the prior for every image: KL 0, mean constant, inactive. */
Test(eval, a_collapsed_dimension_is_inactive_with_zero_kl)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(model, be, 64, &m), 0, "%s", vae_last_error());
    const vae_linear *H = &m.lin[m.latent[vae_model_gaussian(&m)].stats_layer];
    const int Z = m.cfg.latent_dim;
    for (int row = 0; row < 2; row++) { /* mu_0 and logvar_0: weight rows 0 and Z, biases 0 and Z */
        const int r = row * Z;
        memset(m.params + H->w_off + (size_t)r * H->in, 0, (size_t)H->in * sizeof(float));
        m.params[H->b_off + r] = 0.0f;
    }
    vae_dataset ds;
    cr_assert_eq(vae_dataset_load(data, VAE_SPLIT_TEST, &ds), 0, "%s", vae_last_error());
    vae_device_data d;
    vae_device_data_init(&d, be, &ds);
    vae_eval_options opt = {.iw_samples = 3, .seed = 1};
    vae_eval_result r;
    cr_assert_eq(vae_eval_report(&m, &d, &opt, &r), 0, "%s", vae_last_error());
    cr_expect_eq(r.active[0], 0);
    cr_expect_eq(r.mu_var[0], 0.0);
    cr_expect_eq(r.kl_dim[0], 0.0);
    cr_expect(r.active_units < Z);
    int others = 0;
    for (int j = 1; j < Z; j++)
        others += r.active[j];
    cr_expect_eq(r.active_units, others);
    cr_expect(r.iw_nll <= r.loss + 1.0 && isfinite(r.iw_nll));
    vae_eval_result_free(&r);
    vae_device_data_free(&d, be);
    vae_dataset_free(&ds);
    vae_model_free(&m);
    vae_backend_free(be);
}


/* The same file and data evaluated by PyTorch (float64, its own noise, its own densities).
 * Tolerances: kl has no noise (closed form from the encoder's output): float32 against float64,
 * 1e-4 relative. iw_nll with K = 100 on both sides has the same expectation (the same bias of
 * the K-sample bound) and independent noise: the script's two runs give the standard error se
 * of one run's mean over the images, so the difference of two runs has standard deviation
 * sqrt(2) se; we allow 4 of those (a false failure about once in 16,000), plus 1e-3 for
 * float32 arithmetic. recon (one sample per image) gets the same treatment with a fixed
 * 3% allowance, its noise being that of a single sample. */
Test(eval, agrees_with_an_independent_pytorch_evaluation)
{
    const char *py = tu_need_torch();
    json_t *o = eval_json("--iw-samples 100");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_eval.py --model %s --data %s --iw-samples 100", py,
             CUVAE_SOURCE_DIR, model, data);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
    json_error_t err;
    json_t *t = json_loads(out, 0, &err);
    cr_assert(t, "pytorch_eval.py printed no JSON (%s):\n%s", err.text, out);
    const double se = tu_json_num(t, "iw_nll_se"), tol = 4.0 * sqrt(2.0) * se + 1e-3;
    cr_log_info("cuvae iw_nll %.4f, PyTorch %.4f (se %.4f, tolerance %.4f); kl %.6f vs %.6f", tu_json_num(o, "iw_nll"),
                tu_json_num(t, "iw_nll"), se, tol, tu_json_num(o, "kl"), tu_json_num(t, "kl"));
    cr_expect_eq(tu_json_num(t, "images"), tu_json_num(o, "images"));
    cr_expect_float_eq(tu_json_num(o, "kl"), tu_json_num(t, "kl"), 1e-4 * tu_json_num(t, "kl"),
                       "kl %.6f vs PyTorch %.6f", tu_json_num(o, "kl"),
                       tu_json_num(t, "kl"));
    cr_expect(fabs(tu_json_num(o, "iw_nll") - tu_json_num(t, "iw_nll")) <= tol,
              "iw_nll %.4f vs PyTorch %.4f: beyond %.4f",
              tu_json_num(o, "iw_nll"), tu_json_num(t, "iw_nll"), tol);
    cr_expect(fabs(tu_json_num(o, "recon") - tu_json_num(t, "recon")) <= 0.03 * tu_json_num(t, "recon"),
              "recon %.4f vs PyTorch %.4f",
              tu_json_num(o, "recon"), tu_json_num(t, "recon"));
    json_decref(o);
    json_decref(t);
}
