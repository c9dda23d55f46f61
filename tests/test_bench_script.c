/*
 * test_bench_script.c: scripts/bench.sh's reading of its own raw log (scripts/bench_report.py,
 * through `bench.sh --report LOG`): canned logs with known numbers (tests/data/bench/) give the
 * medians, min and max, the ratios and the met / not met verdicts of issue 11's targets, on the
 * CPU, the GPU and the evaluation; a contender that failed or never ran shows as such and sets
 * the exit status; a machine without a GPU is said to have none. Also the script's usage errors
 * and pytorch_vae.py's bench modes that run here (eager on the CPU) or must refuse (a CUDA graph
 * without CUDA). Nothing here trains a real model or times anything: no assertion about speed.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char out[1 << 16];

/* Run `scripts/bench.sh ARGS` from the source tree into out; its exit status. */
static int bench_sh(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/scripts/bench.sh %s", CUVAE_SOURCE_DIR, args);
    return tu_run(cmd, out, sizeof out);
}

static int report(const char *log)
{
    char args[1024];
    snprintf(args, sizeof args, "--report %s", log);
    return bench_sh(args);
}

static void expect(const char *text)
{
    cr_assert(strstr(out, text), "expected\n  %s\nin the output:\n%s", text, out);
}

static void expect_not(const char *text)
{
    cr_assert(!strstr(out, text), "did not expect\n  %s\nin the output:\n%s", text, out);
}

/* Write text to a fresh file in a scratch directory; its path (static storage). */
static const char *write_log(const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/bench.log", tu_tmpdir());
    tu_write_file(path, text, strlen(text));
    return path;
}

Test(bench_report, cpu_and_gpu_medians_ratios_verdicts)
{
    int rc = report(CUVAE_SOURCE_DIR "/tests/data/bench/cpu_gpu.log");
    cr_assert_eq(rc, 0, "exit status %d (only an optional contender failed):\n%s", rc, out);
    expect("load average at start 0.50 0.40 0.30, at end 0.60 0.50 0.40 (2 cores)");
    /* medians, min, max of 3 rounds given in another order */
    expect("| cuvae (whole training step) | 1 | 2.100 | 2.000 | 2.200 | 3/3 |");
    expect("| cuvae bench --gemm-only (the GEMMs alone) | 2 | 0.800 | 0.700 | 0.900 | 3/3 |");
    expect("| PyTorch CPU, data in one tensor | 1 | 3.800 | 3.600 | 4.000 | 3/3 |");
    /* 2.1/1.9 = 1.105 <= 1.2; 1.1/0.8 = 1.375 > 1.2; PyTorch's best is 2.0 s at 2 threads:
     * 2.1/2.0 = 1.05 > 0.6 and 1.1/2.0 = 0.55 <= 0.6 */
    expect("PyTorch's best thread count (2 here)");
    expect("| 1 | 2.100 | 1.900 | 1.11 met | 3.800 | 2.000 (2 threads) | 1.05 not met |");
    expect("| 2 | 1.100 | 0.800 | 1.38 not met | 2.000 | 2.000 (2 threads) | 0.55 met |");
    /* GPU: per contender, then cuvae's speed-ups (PyTorch / cuvae) and the 15 ms target */
    expect("GPU: NVIDIA H200, 570.00;");
    expect("| cuvae | 128 | fp32 | 0.0130 | 13.00 | 12.00-14.00 | 31 | 3/3 |");
    expect("| PyTorch torch.compile reduce-overhead | 128 | fp32 | - | - | - | - | 0/3 |");
    expect("| 128 | fp32 | 13.00 | 500.00 | 25.00 | - | 13.00 ms met | 1.92 not met | 38.46 met |");
    expect("| 128 | tf32 | 11.00 | 450.00 | 24.00 | - | - | 2.18 met | 40.91 met |");
    expect("| 1024 | fp32 | 4.00 | 70.00 | 6.00 | - | - | 1.50 not met | 17.50 met |");
    /* evaluation: whole wall time judged, the eval without --iw-samples beside it */
    expect("| cuvae eval --iw-samples 5000 (whole wall time) | 2.100 | 1.900 | 2.300 | 3/3 |");
    expect("| cuvae eval without --iw-samples (load and ELBO) | 0.600 | 0.500 | 0.700 | 3/3 |");
    expect("about the importance-weighted part alone: 1.500 s");
    expect("verdict on the whole wall time: 2.100 s, target <= 2 s: not met");
    /* torch.compile failed in every round: reported with its reason, not fatal */
    expect("failed (optional): pytorch-compile batch=128 math=fp32, rounds 1,2,3: exit status 3: "
           "BackendCompilerFailed: canned");
    expect_not("FAILED");
    expect_not("no GPU");
}

Test(bench_report, missing_and_failed_contenders)
{
    int rc = report(CUVAE_SOURCE_DIR "/tests/data/bench/missing.log");
    cr_assert_eq(rc, 1, "exit status %d, expected 1 (contenders failed):\n%s", rc, out);
    /* the GEMMs alone never ran: said why, and no ratio to them */
    expect("not measured: the GEMMs alone: build/cuvae bench --help has no --gemm-only");
    /* an even number of rounds: the mean of the middle two; a round with no bench line counts
     * as failed; a cuvae line whose own threads= differs from the asked count says so */
    expect("| cuvae (whole training step) | 1 | 2.500 | 2.000 | 3.000 | 2/3 |");
    expect("| cuvae (whole training step) | 2 (ran with 1) | 1.500 | 1.500 | 1.500 | 1/2 |");
    expect("| PyTorch CPU, data in one tensor | 2 | - | - | - | 0/2 |");
    /* PyTorch's best among the thread counts it ran at */
    expect("| 1 | 2.500 | - | n/a | 4.500 | 4.500 (1 thread) | 0.56 met |");
    expect("| 2 | 1.500 | - | n/a | - | 4.500 (1 thread) | 0.33 met |");
    expect("GPU: no GPU is present (nvidia-smi -L lists none): the GPU figures were not measured; "
           "the CPU figures stand alone.");
    expect("FAILED: pytorch-cpu threads=2 batch=128, rounds 1,2: exit status 1: RuntimeError: canned failure");
    expect("FAILED: cuvae-cpu threads=2 batch=128, round 2: no `bench` line");
    expect("FAILED: cuvae-cpu threads=1 batch=128, round 3: no @end line (interrupted)");
}

Test(bench_report, gpu_epoch_over_target_and_no_eager)
{
    const char *log = write_log(
        "@meta date=2026-11-22T12:00:00Z threads=1 rounds=2 gpu=\"Some GPU\"\n"
        "@run round=1 contender=cuvae-cpu threads=1 batch=128\n"
        "bench impl=cuvae backend=cpu images=60000 batch=128 epochs=1 median_s_per_epoch=1.0 images_per_s=60000\n"
        "@end rc=0 wall_s=2\n"
        "@run round=1 contender=cuvae-cuda batch=128 math=fp32\n"
        "bench math=fp32 backend=cuda impl=cuvae median_s_per_epoch=0.016 images=60000\n"
        "@end rc=0 wall_s=2\n"
        "@run round=1 contender=pytorch-graph batch=128 math=fp32\n"
        "bench impl=pytorch backend=cuda median_s_per_epoch=0.05\n"
        "@end rc=0 wall_s=2\n"
        "@run round=2 contender=cuvae-cuda batch=128 math=fp32\n"
        "bench impl=cuvae backend=cuda median_s_per_epoch=0.020\n"
        "@end rc=0 wall_s=2\n"
        "@run round=2 contender=pytorch-graph batch=128 math=fp32\n"
        "bench impl=pytorch backend=cuda median_s_per_epoch=0.03\n"
        "@end rc=0 wall_s=2\n");
    int rc = report(log);
    cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, out);
    /* medians 0.018 s and 0.04 s: 18 ms > 15 ms; 0.04 / 0.018 = 2.22; eager never ran */
    expect("| cuvae | 128 | fp32 | 0.0180 | 18.00 | 16.00-20.00 | - | 2/2 |");
    expect("| 128 | fp32 | 18.00 | - | 40.00 | - | 18.00 ms not met | 2.22 met | n/a |");
    expect_not("Evaluation");
}

Test(bench_report, gpu_present_but_unusable_fails)
{
    const char *log = write_log("@meta date=2026-11-22T12:00:00Z threads=1 gpu=unusable "
                                "gpu_reason=\"nvidia-smi lists X, but cuvae cannot use it: no CUDA device\"\n"
                                "@run round=1 contender=cuvae-cpu threads=1\n"
                                "bench impl=cuvae backend=cpu median_s_per_epoch=1.0\n"
                                "@end rc=0 wall_s=2\n");
    int rc = report(log);
    cr_assert_eq(rc, 1, "exit status %d, expected 1:\n%s", rc, out);
    expect("GPU: nvidia-smi lists X, but cuvae cannot use it: no CUDA device: the GPU figures were not measured");
    expect("FAILED: a GPU is present but cuvae cannot use it");
}

Test(bench_report, refuses_what_is_not_a_log)
{
    int rc = report(write_log("epoch 1 train 250.0\nnot a bench log\n"));
    cr_assert_eq(rc, 2, "exit status %d, expected 2:\n%s", rc, out);
    expect("not a log of scripts/bench.sh");
    rc = report("/nonexistent/bench.log");
    cr_assert_eq(rc, 2, "exit status %d, expected 2:\n%s", rc, out);
    expect("--report /nonexistent/bench.log: no such readable file");
}

Test(bench_sh, usage_errors_and_an_existing_out_file)
{
    int rc = bench_sh("--rounds 0");
    cr_assert_eq(rc, 2, "exit status %d:\n%s", rc, out);
    expect("--rounds '0': expected a positive whole number");
    rc = bench_sh("--threads 1,x");
    cr_assert_eq(rc, 2, "exit status %d:\n%s", rc, out);
    expect("--threads '1,x'");
    rc = bench_sh("--frobnicate");
    cr_assert_eq(rc, 2, "exit status %d:\n%s", rc, out);
    expect("unknown argument '--frobnicate'");

    char dir[512], data[512], old[600], args[4096], cmd[700];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 64, 16, 7);
    snprintf(args, sizeof args, "--cuvae %s --data %s/nothing --rounds 1", CUVAE_BINARY, dir);
    rc = bench_sh(args);
    cr_assert_eq(rc, 2, "exit status %d:\n%s", rc, out);
    expect("no train-images-idx3-ubyte[.gz] there");
    expect("scripts/install_deps.sh --data");
    /* an existing --out is kept unless --force: refused before anything runs */
    snprintf(old, sizeof old, "%s/old.txt", dir);
    tu_write_file(old, "keep me\n", 8);
    snprintf(args, sizeof args, "--cuvae %s --data %s --rounds 1 --out %s", CUVAE_BINARY, data, old);
    rc = bench_sh(args);
    cr_assert_eq(rc, 2, "exit status %d:\n%s", rc, out);
    expect("exists: pass --force to replace it");
    snprintf(cmd, sizeof cmd, "cat %s", old);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, "keep me\n");
}

/* scripts/bench.sh with a GPU, run here through stand-ins (tests/data/bench/stubs: cuvae, a
 * Python with PyTorch, nvidia-smi; each appends its calls to a log and prints fixed figures):
 * ENV are extra environment settings, ARGS bench.sh's own after --cuvae, --python and --data.
 * The calls' log goes to calls, the output to out; the exit status is returned. */
static int bench_sh_stubbed(const char *env, const char *args, char *calls, size_t calls_len)
{
    static char dir[512], data[600], stubs[600], log[600], cmd[8192];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(stubs, sizeof stubs, "%s/tests/data/bench/stubs", CUVAE_SOURCE_DIR);
    snprintf(log, sizeof log, "%s/calls.log", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && : > %s/train-images-idx3-ubyte && : > %s", data, data, log);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    snprintf(cmd, sizeof cmd,
             "STUB_LOG=%s STUB_DATA=%s PATH=%s:$PATH %s %s/scripts/bench.sh --cuvae %s/cuvae --python %s/python "
             "--data %s --out %s/out.txt %s",
             log, data, stubs, env, CUVAE_SOURCE_DIR, stubs, stubs, data, dir, args);
    int rc = tu_run(cmd, out, sizeof out);
    static char out_saved[sizeof out];
    memcpy(out_saved, out, sizeof out);
    snprintf(cmd, sizeof cmd, "cat %s", log);
    cr_assert_eq(tu_run(cmd, calls, calls_len), 0);
    memcpy(out, out_saved, sizeof out);
    return rc;
}

/* Append printf-style text to buf (len bytes). */
static void add(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

Test(bench_sh, gpu_contenders_interleaved_and_judged)
{
    static char calls[1 << 14], want[1 << 14];
    int rc = bench_sh_stubbed("", "--rounds 2 --threads 1,2 --torch-compile", calls, sizeof calls);
    cr_assert_eq(rc, 0, "exit status %d (only torch.compile failed, which is optional):\n%s", rc, out);
    /* round r of every contender before round r + 1 of any, in a fixed order; the model for the
     * evaluation trained once, before the first round */
    want[0] = '\0';
    add(want, sizeof want, "cuvae train --data DATA --epochs 1 --device cuda:0 --out RUN\n");
    for (int r = 1; r <= 2; r++) {
        for (int t = 1; t <= 2; t++) {
            add(want, sizeof want, "cuvae bench --backends cpu --threads %d --batch-size 128 --data DATA --epochs 1\n", t);
            add(want, sizeof want,
                "cuvae bench --backends cpu --threads %d --batch-size 128 --gemm-only --data DATA --epochs 1\n", t);
            add(want, sizeof want, "pytorch bench --device cpu --threads %d --batch-size 128 --data DATA --epochs 1\n", t);
        }
        for (int b = 128; b <= 1024; b *= 8) {
            for (int tf = 0; tf < 2; tf++) {
                const char *m = tf ? " --tf32" : "";
                add(want, sizeof want, "cuvae bench --backends cuda:0 --batch-size %d%s --data DATA --epochs 1\n", b, m);
                for (int k = 0; k < 3; k++)
                    add(want, sizeof want, "pytorch bench --device cuda --mode %s --batch-size %d%s --data DATA --epochs 1\n",
                        (const char *[]){"eager", "graph", "compile"}[k], b, m);
            }
        }
        add(want, sizeof want, "cuvae eval --model MODEL --data DATA --device cuda:0\n");
        add(want, sizeof want, "cuvae eval --model MODEL --data DATA --device cuda:0 --iw-samples 5000\n");
    }
    /* then the per-op profiles: each CPU thread count, and the GPU at the first batch size */
    for (int t = 1; t <= 2; t++)
        add(want, sizeof want, "cuvae bench --backends cpu --threads %d --batch-size 128 --profile --data DATA --epochs 1\n",
            t);
    add(want, sizeof want, "cuvae bench --backends cuda:0 --batch-size 128 --profile --data DATA --epochs 1\n");
    cr_assert_str_eq(calls, want, "the calls, in order:\n%s\nexpected:\n%s", calls, want);
    /* the stand-ins' fixed figures, judged */
    expect("| 1 | 2.000 | 1.800 | 1.11 met | 3.000 | 2.500 (2 threads) | 0.80 not met |");
    expect("| 2 | 1.000 | 0.900 | 1.11 met | 2.500 | 2.500 (2 threads) | 0.40 met |");
    expect("| cuvae | 128 | fp32 | 0.0125 | 12.50 | 12.50-12.50 | 27 | 2/2 |");
    expect("| 128 | fp32 | 12.50 | 500.00 | 30.00 | - | 12.50 ms met | 2.40 met | 40.00 met |");
    expect("| 128 | tf32 | 10.00 | 450.00 | 25.00 | - | - | 2.50 met | 45.00 met |");
    expect("| 1024 | fp32 | 4.00 | 80.00 | 6.00 | - | - | 1.50 not met | 20.00 met |");
    expect("| 1024 | tf32 | 3.00 | 70.00 | 5.00 | - | - | 1.67 not met | 23.33 met |");
    expect("| cuvae eval --iw-samples 5000 (whole wall time) |");
    expect("failed (optional): pytorch-compile batch=1024 math=tf32, rounds 1,2: exit status 3: "
           "RuntimeError: stub compile failure");
    expect("bench.sh: 52 runs, 8 failed (8 of them optional)");
    /* the profiles' tables, each from its `profile` line to "other (host)", and nothing after */
    expect("Per-op time per step (cuvae bench --profile");
    expect("profile backend=cpu device=\"Stub\" epochs=1 steps=469 ms_per_step=2.0000");
    expect("profile backend=cuda:0 device=\"Stub\"");
    expect("  gemm NT (forward)              4.00     1.0000   50.0%\n  other (host)");
    expect_not("  other (host)                            1.0000   50.0%\nmemory backend");
    expect_not("FAILED");
}

/* Also --eval-batch-size, passed to both evaluations. */
Test(bench_sh, without_the_new_flags_says_what_it_left_out)
{
    static char calls[1 << 13];
    int rc = bench_sh_stubbed("STUB_OLD=1", "--rounds 1 --threads 1 --gpu-batch-sizes 128 --eval-batch-size 65536", calls,
                              sizeof calls);
    cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, out);
    cr_assert_str_eq(calls,
                     "cuvae train --data DATA --epochs 1 --device cuda:0 --out RUN\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "pytorch bench --device cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cuda:0 --batch-size 128 --data DATA --epochs 1\n"
                     "pytorch bench --device cuda --mode eager --batch-size 128 --data DATA --epochs 1\n"
                     "pytorch bench --device cuda --mode graph --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae eval --model MODEL --data DATA --device cuda:0 --batch-size 65536\n"
                     "cuvae eval --model MODEL --data DATA --device cuda:0 --batch-size 65536 --iw-samples 5000\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --profile --data DATA --epochs 1\n"
                     "cuvae bench --backends cuda:0 --batch-size 128 --profile --data DATA --epochs 1\n",
                     "the calls:\n%s", calls);
    expect("| cuvae eval --iw-samples 5000 --batch-size 65536 (whole wall time) |");
    expect("bench --help has no --gemm-only");
    expect("not measured: the TF32 rows: ");
    expect("bench --help has no --tf32");
    expect("not measured: torch.compile: not asked for (--torch-compile)");
    expect("| 1 | 2.000 | - | n/a | 3.000 | 3.000 (1 thread) | 0.67 not met |");
}

Test(bench_sh, pytorch_without_cuda_leaves_its_gpu_rows_out)
{
    static char calls[1 << 12];
    int rc = bench_sh_stubbed("STUB_TORCH_NO_CUDA=1", "--rounds 1 --threads 1 --gpu-batch-sizes 128", calls,
                              sizeof calls);
    cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, out);
    cr_assert_str_eq(calls,
                     "cuvae train --data DATA --epochs 1 --device cuda:0 --out RUN\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --gemm-only --data DATA --epochs 1\n"
                     "pytorch bench --device cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cuda:0 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cuda:0 --batch-size 128 --tf32 --data DATA --epochs 1\n"
                     "cuvae eval --model MODEL --data DATA --device cuda:0\n"
                     "cuvae eval --model MODEL --data DATA --device cuda:0 --iw-samples 5000\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --profile --data DATA --epochs 1\n"
                     "cuvae bench --backends cuda:0 --batch-size 128 --profile --data DATA --epochs 1\n",
                     "the calls:\n%s", calls);
    expect("not measured: PyTorch on CUDA: ");
    expect("python has no usable CUDA (torch.cuda.is_available() is False)");
    expect("| 128 | fp32 | 12.50 | - | - | - | 12.50 ms met | n/a | n/a |");
}

Test(bench_sh, a_gpu_cuvae_cannot_use_fails)
{
    static char calls[1 << 12];
    int rc = bench_sh_stubbed("STUB_NO_GPU=1", "--rounds 1 --threads 1", calls, sizeof calls);
    cr_assert_eq(rc, 1, "exit status %d, expected 1:\n%s", rc, out);
    expect("GPU: nvidia-smi lists Stub H200, 1.0, but ");
    expect("cannot use it: none listed: no CUDA device: stub: the GPU figures were not measured");
    expect("FAILED: a GPU is present but cuvae cannot use it");
    cr_assert_str_eq(calls,
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --gemm-only --data DATA --epochs 1\n"
                     "pytorch bench --device cpu --threads 1 --batch-size 128 --data DATA --epochs 1\n"
                     "cuvae bench --backends cpu --threads 1 --batch-size 128 --profile --data DATA --epochs 1\n",
                     "the calls:\n%s", calls);
}

Test(pytorch_vae_bench, eager_on_the_cpu_prints_its_line)
{
    const char *py = tu_need_torch();
    char data[1024], cmd[4096];
    snprintf(data, sizeof data, "%s", tu_tmpdir());
    tu_write_patterns_idx(data, 96, 16, 7);
    snprintf(cmd, sizeof cmd,
             "%s %s/scripts/pytorch_vae.py bench --device cpu --mode eager --threads 1 --epochs 2 --batch-size 64 "
             "--data %s",
             py, CUVAE_SOURCE_DIR, data);
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "exit status %d:\n%s", rc, out);
    expect("bench impl=pytorch backend=cpu device=\"CPU (1 threads)\" threads=1 mode=eager math=fp32 images=96 "
           "batch=64 epochs=2 median_s_per_epoch=");
}

Test(pytorch_vae_bench, graph_and_tf32_need_cuda)
{
    const char *py = tu_need_torch();
    char cmd[4096];
    /* the data is never read: the device is checked first */
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_vae.py bench --mode graph --data /nonexistent", py,
             CUVAE_SOURCE_DIR);
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_neq(rc, 0, "--mode graph on the CPU exited 0:\n%s", out);
    expect("pytorch_vae.py: --mode graph captures the training step in a CUDA graph: it needs --device cuda, not cpu\n");
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_vae.py bench --tf32 --data /nonexistent", py, CUVAE_SOURCE_DIR);
    rc = tu_run(cmd, out, sizeof out);
    cr_assert_neq(rc, 0, "--tf32 on the CPU exited 0:\n%s", out);
    expect("--tf32 selects TF32 matrix products on the GPU: it needs --device cuda");

    snprintf(cmd, sizeof cmd, "%s -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'", py);
    if (tu_run(cmd, out, sizeof out) == 0)
        return; /* CUDA is there: the next message is for machines without it */
    snprintf(cmd, sizeof cmd, "%s %s/scripts/pytorch_vae.py bench --mode graph --device cuda --data /nonexistent", py,
             CUVAE_SOURCE_DIR);
    rc = tu_run(cmd, out, sizeof out);
    cr_assert_neq(rc, 0, "--mode graph --device cuda without CUDA exited 0:\n%s", out);
    cr_assert(strncmp(out, "pytorch_vae.py: --device cuda: CUDA is not available to PyTorch ", 64) == 0 &&
                  strchr(out, '\n') == out + strlen(out) - 1,
              "expected one line saying CUDA is not available, got:\n%s", out);
}
