/*
 * test_tf32.c: the parts of --tf32 that need no GPU: the flag of train, bench and
 * compare, refused with one message when the CPU is the only backend asked for; a
 * training run records it (train.math), a run without it reads as fp32, and a resume
 * that asks for another value is refused; on the CPU it changes no number; and
 * compare's TF32 tolerances follow their derivation (compare.c). The GPU side
 * (cuBLAS's math mode, compare --tf32 passing, the bench line) is test_cuda_tf32.c.
 */
#define _GNU_SOURCE
#include "backend.h"
#include "compare.h"
#include "safetensors.h"
#include "testutil.h"
#include "train_settings.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static char out[65536];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

#define SMALL "--hidden 16 --latent 3 --batch-size 16 --lr 3e-3 --quiet"

Test(tf32, cpu_only_runs_refuse_it_with_one_message)
{
    static const char *const cases[][2] = {
        {"train --device cpu --tf32", "--device cpu asks for the CPU alone"},
        {"bench --backends cpu --tf32", "--backends cpu asks for the CPU alone"},
        {"compare --candidate cpu --tf32", "--candidate cpu asks for the CPU alone"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cuvae("%s", cases[i][0]);
        cr_expect_eq(rc, 2, "%s: exit %d:\n%s", cases[i][0], rc, out);
        cr_expect(strstr(out, cases[i][1]) && strstr(out, "--tf32 changes only the CUDA backend's GEMMs"),
                  "%s:\n%s", cases[i][0], out);
        cr_expect(strstr(out, "\nTry 'cuvae ") != NULL, "%s: no hint to --help:\n%s", cases[i][0], out);
    }
    cr_expect_eq(cuvae("train --tf32=1"), 2, "%s", out);
    cr_expect(strstr(out, "option '--tf32' takes no value"), "%s", out);
}

Test(tf32, help_of_train_bench_and_compare_explains_it)
{
    static const char *const cmds[] = {"train", "bench", "compare"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(cuvae("%s --help", cmds[i]), 0, "%s", out);
        cr_expect(strstr(out, "--tf32") && strstr(out, "TF32"), "%s --help:\n%s", cmds[i], out);
    }
    cr_assert_eq(cuvae("train --help"), 0, "%s", out);
    cr_expect(strstr(out, "No effect on the CPU"), "%s", out);
    cr_assert_eq(cuvae("compare --help"), 0, "%s", out);
    cr_expect(strstr(out, "loss 3.9e-03, gradients, parameters\n                      6.2e-02"), "%s", out);
}

Test(tf32, the_setting_reads_fp32_when_absent_and_parses_both_values)
{
    const vae_train_setting_key *k = &vae_train_setting_keys[VAE_TS_MATH];
    cr_assert_str_eq(k->key, "train.math");
    cr_assert_str_eq(k->flag, "--tf32");
    cr_assert_not_null(k->absent, "an older checkpoint has no train.math: it must still resume");
    vae_train_settings t;
    memset(&t, 0, sizeof t);
    vae_run_settings_default(&t.s);
    char text[VAE_SETTING_MAX];
    vae_train_setting_text(&t, VAE_TS_MATH, text);
    cr_expect_str_eq(text, "fp32", "the default");
    cr_assert_eq(vae_train_setting_apply(&t, VAE_OPT_TF32, NULL), 1, "the flag itself");
    vae_train_setting_text(&t, VAE_TS_MATH, text);
    cr_expect_str_eq(text, "tf32");
    /* a checkpoint without the key is applied its `absent` value, as vae_train_settings_recorded does */
    cr_assert_eq(vae_train_setting_apply(&t, VAE_OPT_TF32, k->absent), 1, "%s", vae_last_error());
    cr_expect_eq(t.s.tf32, 0, "a run without train.math must read as fp32");
    cr_assert_eq(vae_train_setting_apply(&t, VAE_OPT_TF32, "tf32"), 1);
    cr_expect_eq(t.s.tf32, 1);
    cr_expect_eq(vae_train_setting_apply(&t, VAE_OPT_TF32, "bf16"), -1);
    cr_expect(strstr(vae_last_error(), "'bf16' is neither fp32 nor tf32"), "%s", vae_last_error());
}

/* The recorded value of `key` in dir/name (static storage), or "" without one. */
static const char *recorded(const char *dir, const char *name, const char *key)
{
    static char val[256];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    const char *v = vae_safetensors_meta_get(&st, key);
    snprintf(val, sizeof val, "%s", v ? v : "");
    vae_safetensors_free(&st);
    return val;
}

Test(tf32, a_run_records_it_and_a_resume_keeps_it)
{
    char data[512], fp[700], tf[700];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_stroke_idx(data, 120, 30, 8);
    snprintf(fp, sizeof fp, "%s/fp32", data);
    snprintf(tf, sizeof tf, "%s/tf32", data);
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s --device cpu " SMALL, data, fp), 0, "%s", out);
    cr_expect_str_eq(recorded(fp, "model.safetensors", "train.math"), "fp32");
    cr_expect_str_eq(recorded(fp, "checkpoint.safetensors", "train.math"), "fp32");
    /* --device auto: the GPU when there is one (never the emulated device), else the CPU, where
     * --tf32 is said to do nothing */
    const int gpu = vae_cuda_device_count() > 0 && !vae_cuda_is_emulated();
    cr_assert_eq(cuvae("train --data %s --epochs 1 --out %s --tf32 " SMALL, data, tf), 0, "%s", out);
    cr_expect(strstr(out, gpu ? ", GEMMs in TF32 (--tf32)" : ", --tf32 has no effect on the CPU (FP32)"), "%s",
              out);
    cr_expect_str_eq(recorded(tf, "model.safetensors", "train.math"), "tf32");
    cr_expect_str_eq(recorded(tf, "checkpoint.safetensors", "train.math"), "tf32");

    /* a resume asking for another value is refused; the same value, or none, continues */
    cr_expect_eq(cuvae("train --resume %s --epochs 2 --tf32", fp), 2, "%s", out);
    cr_expect(strstr(out, "--tf32 (the run has fp32)"), "%s", out);
    cr_expect_eq(cuvae("train --resume %s --epochs 2 --tf32", tf), 0, "%s", out);
    cr_expect_eq(cuvae("train --resume %s --epochs 3", tf), 0, "%s", out);
    cr_expect_str_eq(recorded(tf, "model.safetensors", "train.math"), "tf32", "the resume dropped the setting");
    /* on the CPU it changes no number: the same metrics as the fp32 run's first epoch */
    if (!gpu) {
        char ra[4096], rb[4096];
        tu_metrics_losses(fp, ra, sizeof ra);
        tu_metrics_losses(tf, rb, sizeof rb);
        char *la = strchr(ra, '\n'), *lb = strchr(rb, '\n'); /* after the header: epoch 1's line */
        cr_assert(la && lb, "no epoch in metrics.csv");
        la[1 + strcspn(la + 1, "\n")] = '\0';
        lb[1 + strcspn(lb + 1, "\n")] = '\0';
        cr_expect_str_eq(lb, la, "--tf32 changed the CPU's numbers");
    }
}

Test(tf32, compare_tolerances_follow_the_derivation)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    const double fp_loss = o.tol_loss, fp_grad = o.tol_grad;
    cr_expect_eq(o.tf32, 0, "FP32 is the default");
    vae_compare_options_tf32(&o);
    const double u = ldexp(1.0, -11);
    cr_expect_eq(VAE_COMPARE_TF32_UNIT_ROUNDOFF, u);
    cr_expect_eq(o.tf32, 1);
    /* default model: one hidden layer, L = 4 GEMM layers forward; gradients and parameters
     * 4uL times the cancellation allowance 8 */
    cr_expect(fabs(o.tol_loss - 8 * u) < 1e-15, "loss %g", o.tol_loss);
    cr_expect(fabs(o.tol_grad - 16 * 8 * u) < 1e-15, "grad %g", o.tol_grad);
    cr_expect(fabs(o.tol_param - 16 * 8 * u) < 1e-15, "param %g", o.tol_param);
    cr_expect_gt(o.tol_loss, fp_loss);
    cr_expect_gt(o.tol_grad, fp_grad);
    /* two hidden layers: L = 6 */
    vae_compare_options_default(&o);
    cr_assert_eq(vae_config_parse_hidden("32,16", &o.cfg), 0);
    vae_compare_options_tf32(&o);
    cr_expect(fabs(o.tol_loss - 12 * u) < 1e-15, "loss %g", o.tol_loss);
    cr_expect(fabs(o.tol_grad - 24 * 8 * u) < 1e-15, "grad %g", o.tol_grad);
}

Test(tf32, compare_refuses_a_cpu_candidate_in_tf32)
{
    vae_compare_options o;
    vae_compare_options_default(&o);
    o.steps = 1;
    vae_compare_options_tf32(&o);
    vae_backend *a = vae_backend_cpu_init(), *b = vae_backend_cpu_init();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_expect_eq(vae_compare_run(&o, a, b, f), -1);
    fclose(f);
    cr_expect(strstr(vae_last_error(), "TF32 is a mode of the CUDA backend's GEMMs"), "%s", vae_last_error());
    free(text);
    vae_backend_free(a);
    vae_backend_free(b);
}
