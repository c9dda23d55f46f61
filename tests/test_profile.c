/*
 * test_profile.c: the op-timing wrapper of profile_backend.h and `cuvae bench
 * --profile`: the wrapper times every op of backend_ops.h's list but the setup ones,
 * counts each op of a training step exactly, leaves the results bit-identical to the
 * unwrapped backend, times the CPU with the host clock, and bench prints the table and
 * the per-epoch memory lines (and no CUDA keys on the CPU's line). The GEMM recorder of
 * gemm_record.h (`bench --gemm-only`): it sees every GEMM of a step, and a replay is
 * those GEMMs, in order.
 */
#include "backend_ops.h"
#include "gemm_record.h"
#include "model.h"
#include "profile_backend.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const vae_adam_config adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};

static void small_model(vae_model *m, vae_backend *be, int B) { tu_small_model(m, be, B, adam.lr); }

static long calls_of(const vae_profile_entry *e, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0)
            return e[i].calls;
    return 0;
}

Test(profile, counts_every_op_of_a_training_step)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend *be = vae_backend_profile_wrap(cpu);
    cr_assert_null(be->graph_capture_begin, "the wrapper must run the step eagerly");
    vae_model m;
    const int B = 4;
    small_model(&m, be, B);
    vae_backend_profile_reset(be); /* drop the uploads of the set-up */
    vae_model_train_step(&m, B, &adam, 0.0f);
    vae_model_train_step(&m, B, &adam, 0.0f);
    vae_profile_entry e[VAE_PROFILE_MAX_OPS];
    int n = vae_backend_profile_read(be, e, VAE_PROFILE_MAX_OPS);
    /* per step: 6 layers forward (x W^T), 6 weight gradients, 5 input gradients (not the
     * first layer's: x has none); 6 bias/activation passes each way. No clear: every
     * parameter gradient is written, not accumulated. */
    const struct {
        const char *name;
        long per_step;
    } want[] = {
        {"gemm NT (forward)", 6}, {"gemm TN (weight grad)", 6}, {"gemm NN (input grad)", 5},
        {"bias_act_forward", 6}, {"bias_act_backward", 6},      {"reparam_forward", 1},
        {"reparam_backward", 1}, {"lik_bernoulli", 1},          {"kl_gaussian", 1},
        {"check_finite", 2},     {"adam_step", 1},
    };
    const int n_want = (int)(sizeof want / sizeof want[0]);
    for (int i = 0; i < n_want; i++)
        cr_expect_eq(calls_of(e, n, want[i].name), 2 * want[i].per_step, "%s: %ld calls in two steps, expected %ld",
                     want[i].name, calls_of(e, n, want[i].name), 2 * want[i].per_step);
    cr_expect_eq(n, n_want, "%d ops called, expected %d", n, n_want);
    for (int i = 0; i < n; i++)
        cr_expect(e[i].seconds >= 0.0, "%s: %g s", e[i].name, e[i].seconds);
    vae_backend_profile_reset(be);
    cr_expect_eq(vae_backend_profile_read(be, e, VAE_PROFILE_MAX_OPS), 0, "reset left ops counted");
    vae_model_free(&m);
    vae_backend_free(be);
    vae_backend_free(cpu);
}

/* The wrapper's table follows backend_ops.h: every STREAM and COMPUTE op its own timed one,
 * every SETUP op the inner backend's (but destroy, the wrapper's), no graph op. */
Test(profile, times_every_op_of_the_list)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend *be = vae_backend_profile_wrap(cpu);
#define KEPT(op) cr_expect(be->op == cpu->op || strcmp(#op, "destroy") == 0, "the wrapper replaced " #op);
#define TIMED(op) cr_expect(be->op && be->op != cpu->op, "the wrapper does not time " #op);
#define EAGER(op) cr_expect_null(be->op, "the wrapper has " #op ": it must run every op eagerly");
    VAE_BACKEND_OPS(KEPT, TIMED, TIMED, EAGER)
#undef KEPT
#undef TIMED
#undef EAGER
    cr_expect(be->destroy != cpu->destroy, "the wrapper's destroy would free the inner backend");
    vae_backend_free(be);
    vae_backend_free(cpu);
}

Test(profile, the_cpu_keeps_the_host_clock)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend *be = vae_backend_profile_wrap(cpu);
    cr_expect_str_eq(vae_backend_profile_clock(be), "every op synchronized");
    vae_backend_free(be);
    vae_backend_free(cpu);
}

Test(profile, results_are_bit_identical_to_the_unwrapped_backend)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend *be = vae_backend_profile_wrap(cpu);
    vae_model plain, wrapped;
    const int B = 4;
    small_model(&plain, cpu, B);
    small_model(&wrapped, be, B);
    for (int s = 0; s < 3; s++) {
        vae_model_train_step(&plain, B, &adam, 0.5f);
        vae_model_train_step(&wrapped, B, &adam, 0.5f);
    }
    cr_assert_eq(plain.n_params, wrapped.n_params);
    cr_expect_eq(memcmp(plain.params, wrapped.params, plain.n_params * sizeof(float)), 0, "parameters differ");
    cr_expect_eq(memcmp(plain.adam_v, wrapped.adam_v, plain.n_params * sizeof(float)), 0, "Adam's v differs");
    cr_expect_eq(memcmp(plain.row_loss, wrapped.row_loss, (size_t)B * plain.n_terms * sizeof(float)), 0,
                 "losses differ");
    vae_profile_entry e[VAE_PROFILE_MAX_OPS];
    int n = vae_backend_profile_read(be, e, VAE_PROFILE_MAX_OPS);
    cr_expect_eq(calls_of(e, n, "grad_clip_scale"), 3, "clipping on: one grad_clip_scale per step");
    vae_model_free(&plain);
    vae_model_free(&wrapped);
    vae_backend_free(be);
    vae_backend_free(cpu);
}

Test(profile, bench_prints_the_op_table_and_memory_per_epoch)
{
    static char out[1 << 16];
    char data[512];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 300, 20, 3);
    int rc = tu_cuvae(out, sizeof out, "bench --backends cpu --data %s --epochs 2 --batch-size 100 --threads 1 --profile",
                      data);
    cr_assert_eq(rc, 0, "bench --profile failed: %s", out);
    cr_expect(strstr(out, "bench impl=cuvae backend=cpu") != NULL, "no headline line: %s", out);
    for (int ep = 0; ep <= 2; ep++) {
        char want[64];
        snprintf(want, sizeof want, "memory backend=cpu epoch=%d host_rss_mib=", ep);
        const char *line = strstr(out, want);
        cr_expect(line != NULL, "no '%s': %s", want, out);
        double rss = -1, peak = -1; /* the peak is never below what is resident (ru_maxrss once was) */
        if (line)
            sscanf(line + strlen(want), "%lf host_peak_mib=%lf", &rss, &peak);
        cr_expect(rss > 0 && peak >= rss, "epoch %d: resident %.1f MiB, peak %.1f MiB", ep, rss, peak);
    }
    cr_expect(strstr(out, "profile backend=cpu") != NULL, "no profile header: %s", out);
    cr_expect(strstr(out, "(every op synchronized; no CUDA graph)") != NULL, "the CPU's clock: %s", out);
    /* the CUDA keys (math=, kernels_per_step=, graph_nodes=) are for CUDA lines only */
    cr_expect(!strstr(out, " math=") && !strstr(out, "kernels_per_step=") && !strstr(out, "graph_nodes="),
              "CUDA keys on the CPU line: %s", out);
    cr_expect(strstr(out, "steps=6 ") != NULL, "2 epochs of 3 steps: %s", out);
    /* the default model (one hidden layer): 4 forward GEMMs a step */
    const char *row = strstr(out, "gemm NT (forward)");
    cr_assert_not_null(row, "no forward GEMM row: %s", out);
    double calls = 0;
    cr_expect_eq(sscanf(row + strlen("gemm NT (forward)"), "%lf", &calls), 1);
    cr_expect_eq(calls, 4.0, "forward GEMMs per step: %g", calls);
    cr_expect(strstr(out, "other (host)") != NULL, "no host row: %s", out);

    cr_assert_eq(tu_cuvae(out, sizeof out, "bench --backends cpu --data %s --epochs 1 --threads 1", data), 0, "%s", out);
    cr_expect(strstr(out, "profile backend=") == NULL, "a profile without --profile: %s", out);
}

Test(profile, gemm_recorder_sees_every_gemm_and_replays_them)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend *rec = vae_backend_gemm_record_wrap(cpu);
    cr_assert_null(rec->graph_capture_begin, "the recorder must run the step eagerly");
    vae_model m;
    const int B = 4;
    small_model(&m, rec, B);
    vae_model_train_step(&m, B, &adam, 0.0f);
    vae_model_train_step(&m, B, &adam, 0.0f);
    /* per step 6 forward, 6 weight-gradient and 5 input-gradient GEMMs (test above) */
    cr_expect_eq(vae_gemm_record_count(rec), 2 * 17, "%ld GEMMs recorded in two steps", vae_gemm_record_count(rec));
    /* 2 M N K per call: forward B x out x in, weight grad out x in x B, input grad B x in x out */
    const int outs[6] = {11, 7, 6, 7, 11, 13}; /* layer 2 is the 7 -> 6 head (mean | log-variance) */
    const int ins[6] = {13, 11, 7, 3, 7, 11};
    double want = 0;
    for (int l = 0; l < 6; l++)
        want += 2.0 * 2.0 * B * outs[l] * ins[l] + (l == 0 ? 0.0 : 2.0 * B * outs[l] * ins[l]);
    cr_expect_float_eq(vae_gemm_record_flops(rec), 2 * want, 1e-9, "%g flops, expected %g",
                       vae_gemm_record_flops(rec), 2 * want);

    /* A replay recomputes the last step's forward pass from its input: the logits come back. */
    vae_gemm_record_set(rec, 1);
    vae_model_train_step(&m, B, &adam, 0.0f);
    vae_gemm_record_set(rec, 0);
    cr_expect_eq(vae_gemm_record_count(rec), 17, "restarting drops the old calls");
    const size_t n_x = (size_t)B * 13;
    float *logits = m.out[m.output];
    memset(logits, 0, n_x * sizeof(float));
    cr_expect_geq(vae_gemm_record_replay(rec), 0.0);
    cr_expect_eq(vae_gemm_record_count(rec), 17, "a replay records nothing");
    /* the output layer's GEMM (before its bias) was written again */
    int nonzero = 0;
    for (size_t i = 0; i < n_x; i++)
        nonzero += logits[i] != 0.0f;
    cr_expect_eq(nonzero, (int)n_x, "the replay wrote %d of the output layer's %zu values", nonzero, n_x);
    vae_model_free(&m);
    vae_backend_free(rec);
    vae_backend_free(cpu);
}

Test(profile, bench_gemm_only_prints_the_epochs_gemms)
{
    static char out[1 << 16];
    char data[512];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 300, 20, 3);
    int rc = tu_cuvae(out, sizeof out, "bench --backends cpu --data %s --epochs 2 --batch-size 128 --threads 1 "
                      "--gemm-only", data);
    cr_assert_eq(rc, 0, "bench --gemm-only failed: %s", out);
    const char *line = strstr(out, "bench impl=gemms backend=cpu");
    cr_assert_not_null(line, "no impl=gemms line: %s", out);
    cr_expect(strstr(line, " threads=1 ") != NULL, "no threads key: %s", line);
    /* 300 images at 128: 3 steps (128, 128, 44), 11 GEMMs each for 64-400-20-400-64 (8x8 images) */
    cr_expect(strstr(line, " gemm_calls_per_epoch=33 ") != NULL, "%s", line);
    double gflop = 0;
    const char *g = strstr(line, "gflop_per_epoch=");
    cr_assert_not_null(g, "%s", line);
    cr_expect_eq(sscanf(g, "gflop_per_epoch=%lf", &gflop), 1);
    /* per image and layer 2 in out flops each for forward, weight and input gradient, less the
     * first layer's input gradient */
    const double per_image = 6.0 * (64 * 400 + 400 * 40 + 20 * 400 + 400 * 64) - 2.0 * 64 * 400;
    cr_expect_float_eq(gflop, 300 * per_image / 1e9, 0.006, "%g GFLOP, expected %g", gflop, 300 * per_image / 1e9);
    cr_expect(strstr(out, "bench impl=cuvae") == NULL, "--gemm-only also trained: %s", out);

    rc = tu_cuvae(out, sizeof out, "bench --backends cpu --data %s --epochs 1 --gemm-only --profile", data);
    cr_expect_eq(rc, 2, "--gemm-only with --profile: rc %d: %s", rc, out);
    cr_expect(strstr(out, "choose one") != NULL, "%s", out);
}
