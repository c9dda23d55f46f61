/*
 * test_binarize.c: `cuvae train --binarize none|dynamic|static`: the flag's values, which data
 * can be binarized (floats only in [0, 1]), static binarization of float data, and end to end
 * on a small synthetic image set: the setting announced and recorded, dynamic training differs
 * from grey training and is seeded, a resume of a dynamic run continues bit for bit, and the
 * test loss of both modes is the one `cuvae eval --binarize static --seed S` reports.
 * The binarize op itself is in the op table (op_table.c, test_ops and test_cuda_ops).
 */
#include "evaluate.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 17];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

Test(binarize, train_values)
{
    vae_binarize b;
    cr_expect(vae_binarize_parse_train("none", &b) == 0 && b == VAE_BINARIZE_NONE);
    cr_expect(vae_binarize_parse_train("dynamic", &b) == 0 && b == VAE_BINARIZE_DYNAMIC);
    cr_expect(vae_binarize_parse_train("static", &b) == 0 && b == VAE_BINARIZE_STATIC);
    cr_expect_eq(vae_binarize_parse_train("sometimes", &b), -1);
    cr_expect_str_eq(vae_last_error(), "--binarize 'sometimes': expected none, dynamic or static");
    cr_expect_eq(vae_binarize_parse("dynamic", &b), -1, "eval draws the test set once: no dynamic there");
    cr_expect_str_eq(vae_binarize_name(VAE_BINARIZE_DYNAMIC), "dynamic");
}

Test(binarize, floats_only_in_the_unit_interval)
{
    const int n = 20000;
    float *v = vae_calloc(n, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = (float)(i % 5) / 4; /* 0, 0.25, 0.5, 0.75, 1 */
    vae_dataset d;
    cr_assert_eq(vae_dataset_from_floats(&d, n, 1, v, NULL), 0);
    cr_expect_eq(vae_binarize_check(&d, "the set"), 0);
    vae_binarize_static(&d, 3);
    double ones[5] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert(d.values[i] == 0.0f || d.values[i] == 1.0f, "value %d is %g", i, (double)d.values[i]);
        ones[i % 5] += d.values[i];
    }
    /* each value becomes 1 with its own probability: 0 and 1 exactly, the others within 5 errors */
    cr_expect_eq(ones[0], 0);
    cr_expect_eq(ones[4], n / 5);
    for (int k = 1; k < 4; k++) {
        double p = k / 4.0, f = ones[k] / (n / 5);
        cr_expect(fabs(f - p) < 5 * sqrt(p * (1 - p) / (n / 5)), "value %g became 1 %g of the time", p, f);
    }
    vae_dataset_free(&d);
    v[7] = 1.5f;
    cr_assert_eq(vae_dataset_from_floats(&d, n, 1, v, NULL), 0);
    cr_expect_eq(vae_binarize_check(&d, "the set"), -1);
    cr_expect(strstr(vae_last_error(), "--binarize: the set holds value 1.5 (row 7), outside [0, 1]"), "%s",
              vae_last_error());
    vae_dataset_free(&d);
    vae_free(v);
}

static char data[512];

/* 600 training and 100 test images of 8x8 stroke patterns. */
static void setup(void)
{
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 600, 100, 71);
}

#define TRAIN "train --data %s --hidden 32 --latent 4 --batch-size 32 --lr 3e-3 --device cpu --threads 1 --quiet"

/* The final test loss that training printed. */
static double final_test_loss(void)
{
    const char *p = strstr(out, "final test loss ");
    cr_assert(p, "%s", out);
    return strtod(p + strlen("final test loss "), NULL);
}

/* `cuvae eval --binarize static --seed S --json`'s loss. */
static double eval_static_loss(const char *model, int seed)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --binarize static --seed %d --json",
             CUVAE_BINARY, model, data, seed);
    json_t *o = tu_run_json(cmd);
    const double loss = tu_json_num(o, "loss");
    json_decref(o);
    return loss;
}

TestSuite(binarize_cli, .init = setup);

Test(binarize_cli, dynamic_is_announced_recorded_seeded_and_tested_on_a_static_draw)
{
    static char none[8192], dyn[8192], dyn2[8192], dyn3[8192];
    cr_assert_eq(cuvae(TRAIN " --epochs 3 --out %s/none", data, data), 0, "%s", out);
    cr_expect(strstr(out, "binarization: none"), "%s", out);
    char run[600];
    snprintf(run, sizeof run, "%s/none", data);
    tu_metrics_losses(run, none, sizeof none);
    cr_assert_eq(cuvae(TRAIN " --epochs 3 --binarize dynamic --out %s/dyn", data, data), 0, "%s", out);
    cr_expect(strstr(out, "binarization: dynamic (the training loss on a fresh Bernoulli draw of every image at "
                          "every step; the test loss on one fixed draw, as `cuvae eval --binarize static --seed 1`)"),
              "%s", out);
    double trained = final_test_loss();
    snprintf(run, sizeof run, "%s/dyn", data);
    tu_metrics_losses(run, dyn, sizeof dyn);
    cr_expect_neq(strcmp(none, dyn), 0, "dynamic binarization changed no loss");
    char model[700];
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    cr_expect(tu_file_has(model, "\"train.binarize\":\"dynamic\""), "the model file records the binarization");
    snprintf(model, sizeof model, "%s/checkpoint.safetensors", run);
    cr_expect(tu_file_has(model, "\"train.binarize\":\"dynamic\""), "the checkpoint records the binarization");
    /* the same seed: the same draws */
    cr_assert_eq(cuvae(TRAIN " --epochs 3 --binarize dynamic --out %s/dyn2", data, data), 0, "%s", out);
    snprintf(run, sizeof run, "%s/dyn2", data);
    tu_metrics_losses(run, dyn2, sizeof dyn2);
    cr_expect_str_eq(dyn, dyn2);
    /* 2 epochs and a resume to 3: the uniforms continue where they stood */
    cr_assert_eq(cuvae(TRAIN " --epochs 2 --binarize dynamic --out %s/dyn3", data, data), 0, "%s", out);
    cr_assert_eq(cuvae("train --resume %s/dyn3 --epochs 3 --device cpu --threads 1 --quiet", data), 0, "%s", out);
    cr_expect(strstr(out, "binarization: dynamic"), "%s", out);
    snprintf(run, sizeof run, "%s/dyn3", data);
    tu_metrics_losses(run, dyn3, sizeof dyn3);
    cr_expect_str_eq(dyn, dyn3);
    cr_expect_eq(cuvae("train --resume %s/dyn3 --epochs 4 --binarize static --device cpu --quiet", data), 2, "%s",
                 out);
    cr_expect(strstr(out, "--binarize static (the run has dynamic)"), "%s", out);
    /* the test loss is eval's on the static draw with the run's seed */
    snprintf(model, sizeof model, "%s/dyn/model.safetensors", data);
    double ev = eval_static_loss(model, 1);
    cr_expect(fabs(ev - trained) < 1e-3, "training's test loss %.4f, eval --binarize static %.4f", trained, ev);
}

Test(binarize_cli, static_trains_and_tests_on_fixed_draws)
{
    static char none[8192], st[8192];
    cr_assert_eq(cuvae(TRAIN " --epochs 2 --seed 5 --out %s/none", data, data), 0, "%s", out);
    char run[600];
    snprintf(run, sizeof run, "%s/none", data);
    tu_metrics_losses(run, none, sizeof none);
    cr_assert_eq(cuvae(TRAIN " --epochs 2 --seed 5 --binarize static --out %s/st", data, data), 0, "%s", out);
    cr_expect(strstr(out, "binarization: static (training and test losses on one fixed Bernoulli draw of each "
                          "set; the test set's is `cuvae eval --binarize static --seed 5`)"),
              "%s", out);
    double trained = final_test_loss();
    snprintf(run, sizeof run, "%s/st", data);
    tu_metrics_losses(run, st, sizeof st);
    cr_expect_neq(strcmp(none, st), 0, "static binarization changed no loss");
    char model[700];
    snprintf(model, sizeof model, "%s/model.safetensors", run);
    cr_expect(tu_file_has(model, "\"train.binarize\":\"static\""));
    double ev = eval_static_loss(model, 5);
    cr_expect(fabs(ev - trained) < 1e-3, "training's test loss %.4f, eval --binarize static %.4f", trained, ev);
    cr_expect_eq(cuvae(TRAIN " --epochs 1 --binarize sometimes --out %s/x", data, data), 2, "%s", out);
    cr_expect(strstr(out, "--binarize 'sometimes': expected none, dynamic or static"), "%s", out);
}
