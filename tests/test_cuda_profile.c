/*
 * test_cuda_profile.c: the op-timing wrapper of profile_backend.h over the CUDA
 * backend (which it times with CUDA events on the stream) and `cuvae bench --profile
 * --backends cuda`: the same results as the unwrapped GPU, every op counted as on
 * the CPU with a device time above zero, the table printed under its clock, and the
 * GPU memory in use reported after each epoch. Every case reports as skipped
 * without a GPU.
 */
#include "model.h"
#include "profile_backend.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const vae_adam_config adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};

static void small_model(vae_model *m, vae_backend *be, int B) { tu_small_model(m, be, B, adam.lr); }

Test(cuda_profile, wrapped_gpu_steps_are_bit_identical_and_counted)
{
    vae_backend *gpu = tu_cuda_backend();
    vae_backend *be = vae_backend_profile_wrap(gpu);
    vae_model plain, wrapped;
    const int B = 4;
    small_model(&plain, gpu, B);
    small_model(&wrapped, be, B);
    vae_backend_profile_reset(be);
    for (int s = 0; s < 3; s++) {
        vae_model_train_step(&plain, B, &adam, 0.5f);
        vae_model_train_step(&wrapped, B, &adam, 0.5f);
    }
    const size_t n = plain.n_params;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    cr_assert(a && b);
    gpu->download(gpu, a, plain.params, n * sizeof(float));
    gpu->download(gpu, b, wrapped.params, n * sizeof(float));
    cr_expect_eq(memcmp(a, b, n * sizeof(float)), 0, "parameters differ through the wrapper");
    vae_profile_entry e[VAE_PROFILE_MAX_OPS];
    int k = vae_backend_profile_read(be, e, VAE_PROFILE_MAX_OPS);
    long nt = 0, clip = 0;
    for (int i = 0; i < k; i++) {
        if (strcmp(e[i].name, "gemm NT (forward)") == 0)
            nt = e[i].calls;
        if (strcmp(e[i].name, "grad_clip_scale") == 0)
            clip = e[i].calls;
    }
    cr_expect_eq(nt, 18, "6 forward GEMMs a step for 3 steps: %ld", nt);
    cr_expect_eq(clip, 3, "one grad_clip_scale a step: %ld", clip);
    free(a);
    free(b);
    vae_model_free(&plain);
    vae_model_free(&wrapped);
    vae_backend_free(be);
    vae_backend_free(gpu);
}

/* Three steps of the small model on the wrapped backend be; its table into e. */
static int profile_three_steps(vae_backend *be, vae_profile_entry *e)
{
    vae_model m;
    small_model(&m, be, 4);
    vae_backend_profile_reset(be); /* drop the set-up's uploads */
    for (int s = 0; s < 3; s++)
        vae_model_train_step(&m, 4, &adam, 0.5f);
    int n = vae_backend_profile_read(be, e, VAE_PROFILE_MAX_OPS);
    vae_model_free(&m);
    return n;
}

Test(cuda_profile, event_times_are_positive_and_op_counts_match_the_cpu)
{
    vae_backend *gpu = tu_cuda_backend(), *cpu = vae_backend_cpu_init();
    vae_backend *pg = vae_backend_profile_wrap(gpu), *pc = vae_backend_profile_wrap(cpu);
    cr_expect_str_eq(vae_backend_profile_clock(pg), "each op timed by CUDA events on the stream");
    cr_expect_str_eq(vae_backend_profile_clock(pc), "every op synchronized");
    vae_profile_entry eg[VAE_PROFILE_MAX_OPS], ec[VAE_PROFILE_MAX_OPS];
    int ng = profile_three_steps(pg, eg), nc = profile_three_steps(pc, ec);
    cr_expect_eq(ng, nc, "%d ops on the GPU, %d on the CPU", ng, nc);
    for (int i = 0; i < ng && i < nc; i++) {
        cr_expect_str_eq(eg[i].name, ec[i].name, "op %d", i);
        cr_expect_eq(eg[i].calls, ec[i].calls, "%s: %ld calls on the GPU, %ld on the CPU", eg[i].name, eg[i].calls,
                     ec[i].calls);
        cr_expect_gt(eg[i].seconds, 0.0, "%s: %g s of device time", eg[i].name, eg[i].seconds);
        /* A bound on the time itself means something on a GPU only: the emulated device's
         * events read the host clock around kernels run on the CPU. */
        if (!vae_cuda_is_emulated())
            cr_expect_lt(eg[i].seconds, 10.0, "%s: %g s of device time for 3 small steps", eg[i].name,
                         eg[i].seconds);
    }
    if (vae_cuda_is_emulated())
        cr_log_info("emulated device: the bound on each op's device time (10 s) is left to a real GPU");
    vae_backend_profile_reset(pg);
    cr_expect_eq(vae_backend_profile_read(pg, eg, VAE_PROFILE_MAX_OPS), 0, "reset left ops counted");
    vae_backend_free(pg);
    vae_backend_free(pc);
    vae_backend_free(gpu);
    vae_backend_free(cpu);
}

Test(cuda_profile, bench_profiles_the_gpu_and_reports_its_memory)
{
    tu_need_gpu();
    static char out[1 << 16];
    const char *data = tu_tmpdir();
    tu_write_patterns_idx(data, 300, 20, 3);
    int rc = tu_cuvae(out, sizeof out, "bench --backends cuda --data %s --epochs 2 --batch-size 100 --profile", data);
    cr_assert_eq(rc, 0, "bench --profile failed: %s", out);
    cr_expect(strstr(out, "profile backend=cuda") != NULL, "no profile header: %s", out);
    cr_expect(strstr(out, "(each op timed by CUDA events on the stream; no CUDA graph)") != NULL, "%s", out);
    cr_expect(strstr(out, "gemm NT (forward)") != NULL, "no GEMM row: %s", out);
    for (int ep = 0; ep <= 2; ep++) {
        char want[64];
        snprintf(want, sizeof want, "memory backend=cuda epoch=%d ", ep);
        const char *line = strstr(out, want);
        cr_assert_not_null(line, "no '%s': %s", want, out);
        const char *dev = strstr(line, "device_used_mib=");
        cr_assert_not_null(dev);
        double mib = 0;
        cr_expect_eq(sscanf(dev + strlen("device_used_mib="), "%lf", &mib), 1, "no GPU memory figure: %s", line);
        cr_expect_gt(mib, 0.0, "GPU memory in use: %g MiB", mib);
    }
}
