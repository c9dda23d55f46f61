/*
 * test_binarize.c: `cuvae train --binarize none|dynamic|static`: the flag's values, which data
 * can be binarized (floats only in [0, 1]), static binarization of float data, and end to end
 * on a small synthetic image set: the setting announced and recorded, dynamic training differs
 * from grey training and is seeded, a resume of a dynamic run continues bit for bit, and the
 * test loss of both modes is the one `cuvae eval --binarize static --seed S` reports;
 * --binarize-test redraw draws the test set anew each epoch, epoch 1's the fixed draw, each epoch's
 * the one eval draws with that epoch's seed, and a resume draws what the whole run drew.
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

/* `cuvae eval --binarize static --seed S --json`'s loss; with --binarize-epoch E when E > 0. */
static double eval_epoch_loss(const char *model, int seed, int epoch)
{
    char cmd[4096], flag[64] = "";
    if (epoch > 0)
        snprintf(flag, sizeof flag, " --binarize-epoch %d", epoch);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --device cpu --binarize static --seed %d%s --json",
             CUVAE_BINARY, model, data, seed, flag);
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
    double ev = eval_epoch_loss(model, 1, 0);
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
    double ev = eval_epoch_loss(model, 5, 0);
    cr_expect(fabs(ev - trained) < 1e-3, "training's test loss %.4f, eval --binarize static %.4f", trained, ev);
    cr_expect_eq(cuvae(TRAIN " --epochs 1 --binarize sometimes --out %s/x", data, data), 2, "%s", out);
    cr_expect(strstr(out, "--binarize 'sometimes': expected none, dynamic or static"), "%s", out);
}

/* Column `name` of every epoch row of run/metrics.csv into v (at most cap); returns the rows. */
static int metrics_column(const char *run, const char *name, double *v, int cap)
{
    char path[1024], line[8192];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: cannot be read", path);
    cr_assert(fgets(line, sizeof line, f), "%s is empty", path);
    int col = -1, k = 0;
    for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), k++)
        if (strcmp(tok, name) == 0)
            col = k;
    cr_assert_geq(col, 0, "%s has no column %s", path, name);
    int n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        char *p = line;
        for (int c = 0; c < col; c++)
            p = strchr(p, ',') + 1;
        v[n++] = strtod(p, NULL);
    }
    fclose(f);
    return n;
}

Test(binarize_cli, redraw_draws_the_test_set_anew_each_epoch)
{
    cr_assert_eq(cuvae(TRAIN " --epochs 3 --binarize dynamic --out %s/fixed", data, data), 0, "%s", out);
    cr_assert_eq(cuvae(TRAIN " --epochs 3 --binarize dynamic --binarize-test redraw --out %s/redraw", data, data), 0,
                 "%s", out);
    cr_expect(strstr(out, "the test loss on a fresh draw of the test set each epoch (--binarize-test redraw; epoch "
                          "E's is `cuvae eval --binarize static --seed 1 --binarize-epoch E`)"),
              "%s", out);
    const double trained = final_test_loss();
    char fixed[600], redraw[600], model[700];
    snprintf(fixed, sizeof fixed, "%s/fixed", data);
    snprintf(redraw, sizeof redraw, "%s/redraw", data);
    double tf[3], tr[3], lf[3], lr[3];
    cr_assert_eq(metrics_column(fixed, "train_loss", tf, 3), 3);
    cr_assert_eq(metrics_column(redraw, "train_loss", tr, 3), 3);
    cr_assert_eq(metrics_column(fixed, "test_loss", lf, 3), 3);
    cr_assert_eq(metrics_column(redraw, "test_loss", lr, 3), 3);
    for (int e = 0; e < 3; e++)
        cr_expect_eq(tf[e], tr[e], "epoch %d: the redraw changed training (%.6f, %.6f)", e + 1, tf[e], tr[e]);
    cr_expect_eq(lf[0], lr[0], "epoch 1's draw is not the fixed one");
    cr_expect(lf[1] != lr[1] && lf[2] != lr[2], "epochs 2 and 3 tested on the fixed draw: %g %g, %g %g", lf[1], lr[1],
              lf[2], lr[2]);
    snprintf(model, sizeof model, "%s/model.safetensors", redraw);
    cr_expect(tu_file_has(model, "\"train.binarize_test\":\"redraw\""), "the model file records the redraw");
    /* the last epoch's test loss is eval's on that epoch's draw, not on the first */
    const double ev3 = eval_epoch_loss(model, 1, 3), ev1 = eval_epoch_loss(model, 1, 1);
    cr_expect(fabs(ev3 - trained) < 1e-3, "epoch 3's test loss %.4f, eval on its draw %.4f", trained, ev3);
    cr_expect(fabs(ev1 - trained) > 1e-3, "epoch 3's test loss is also eval's on epoch 1's draw (%.4f)", ev1);
    cr_expect_eq(vae_binarize_epoch_seed(7, 1), 7u, "epoch 1's seed is the run's");
    /* 2 epochs and a resume to 3: the same draws as the whole run */
    static char whole[8192], resumed[8192];
    cr_assert_eq(cuvae(TRAIN " --epochs 2 --binarize dynamic --binarize-test redraw --out %s/r2", data, data), 0, "%s",
                 out);
    cr_assert_eq(cuvae("train --resume %s/r2 --epochs 3 --device cpu --threads 1 --quiet", data), 0, "%s", out);
    snprintf(fixed, sizeof fixed, "%s/r2", data);
    tu_metrics_losses(redraw, whole, sizeof whole);
    tu_metrics_losses(fixed, resumed, sizeof resumed);
    cr_expect_str_eq(whole, resumed);
    /* bad values, and the flag without a dynamic binarization */
    cr_expect_eq(cuvae(TRAIN " --epochs 1 --binarize dynamic --binarize-test sometimes --out %s/x", data, data), 2,
                 "%s", out);
    cr_expect(strstr(out, "--binarize-test: 'sometimes' is neither fixed nor redraw"), "%s", out);
    cr_expect_eq(cuvae(TRAIN " --epochs 1 --binarize static --binarize-test redraw --out %s/x", data, data), 2, "%s",
                 out);
    cr_expect(strstr(out, "--binarize-test: only with --binarize dynamic"), "%s", out);
    cr_expect_eq(cuvae(TRAIN " --epochs 1 --binarize-test fixed --out %s/x", data, data), 2, "%s", out);
    cr_expect_eq(cuvae("eval --model %s --data %s --device cpu --binarize-epoch 2", model, data), 2, "%s", out);
    cr_expect(strstr(out, "--binarize-epoch 2: only with --binarize static"), "%s", out);
    cr_expect_eq(cuvae("eval --model %s --data %s --device cpu --binarize static --binarize-epoch 0", model, data), 2,
                 "%s", out);
    cr_expect(strstr(out, "--binarize-epoch: 0 is out of range"), "%s", out);
}
