/*
 * test_cuda_resume.c: checkpoints on the GPU. The generator's offset lives in
 * device memory: set_offset on a fresh device generator continues the sequence
 * exactly, and at the same offset the device and host generators give the same
 * uniforms and normals, bit for bit. A run on the
 * GPU stopped at an epoch boundary or mid-epoch, checkpointed and resumed
 * equals the uninterrupted GPU run bit for bit; a CPU checkpoint resumed on
 * the GPU ends within the CPU-vs-CUDA tolerances. Every case reports as
 * skipped without a GPU.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "train.h"
#include "train_state.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vae_backend *backend(int cuda)
{
    vae_backend *be = cuda ? vae_backend_cuda_init(0) : vae_backend_cpu_init();
    cr_assert_not_null(be, "%s", vae_last_error());
    return be;
}

Test(cuda_resume, rng_offset_continues_on_the_device_and_matches_the_host)
{
    tu_need_gpu();
    vae_backend *gpu = backend(1), *cpu = backend(0);
    const size_t sizes[][2] = {{2, 2}, {6, 10}, {14, 6}, {2560, 800}, {18, 4}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int uniform = 0; uniform < 2; uniform++) {
            size_t n1 = sizes[i][0], n2 = sizes[i][1];
            float *d = gpu->buffer_alloc(gpu, (n1 + n2) * sizeof(float));
            float *h = calloc(n1 + n2, sizeof *h), *h2 = calloc(n2, sizeof *h2), *c = calloc(n2, sizeof *c);
            vae_rng *r = gpu->rng_init(gpu, 31), *q = gpu->rng_init(gpu, 31), *rc = cpu->rng_init(cpu, 31);
            if (uniform) {
                gpu->rng_uniform(gpu, r, d, n1);
                gpu->rng_uniform(gpu, r, d + n1, n2);
            } else {
                gpu->rng_normal(gpu, r, d, n1);
                gpu->rng_normal(gpu, r, d + n1, n2);
            }
            cr_expect_eq(gpu->rng_get_offset(gpu, r), n1 + n2);
            gpu->download(gpu, h, d, (n1 + n2) * sizeof(float));
            gpu->rng_set_offset(gpu, q, n1);
            cpu->rng_set_offset(cpu, rc, n1);
            if (uniform) {
                gpu->rng_uniform(gpu, q, d, n2);
                cpu->rng_uniform(cpu, rc, c, n2);
            } else {
                gpu->rng_normal(gpu, q, d, n2);
                cpu->rng_normal(cpu, rc, c, n2);
            }
            gpu->download(gpu, h2, d, n2 * sizeof(float));
            cr_expect(memcmp(h + n1, h2, n2 * sizeof *h2) == 0, "device %s %zu then %zu: set_offset(%zu) differs",
                      uniform ? "uniform" : "normal", n1, n2, n1);
            cr_expect(memcmp(h2, c, n2 * sizeof *c) == 0, "device and host %s differ at offset %zu",
                      uniform ? "uniforms" : "normals", n1);
            gpu->rng_free(gpu, r);
            gpu->rng_free(gpu, q);
            cpu->rng_free(cpu, rc);
            gpu->buffer_free(gpu, d);
            free(h);
            free(h2);
            free(c);
        }
    }
    vae_backend_free(gpu);
    vae_backend_free(cpu);
}


static float *params_of(tu_session *s)
{
    float *p = calloc(s->m.n_params, sizeof *p);
    s->be->download(s->be, p, s->m.params, s->m.n_params * sizeof *p);
    return p;
}

/* 4 epochs; `stop_epochs` + `stop_steps` on backend `first`, checkpoint, the rest on `second`
 * (stop_epochs < 0: no checkpoint). Returns the parameters; final test loss in *test_loss. */
static float *run_split(int first, int second, int stop_epochs, int stop_steps, double *test_loss, size_t *n)
{
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    tu_session s;
    tu_session_open(&s, backend(first), &train, &test);
    vae_epoch_metrics e;
    int ep = 0;
    if (stop_epochs >= 0) {
        for (; ep < stop_epochs; ep++)
            cr_assert_eq(vae_trainer_epoch(s.t, &s.dtr, &s.dte, ep + 1, &e), 0);
        s.stop = 1;
        for (int k = 0; k < stop_steps; k++)
            cr_assert_eq(vae_trainer_epoch(s.t, &s.dtr, &s.dte, ep + 1, &e), 1);
        char path[512];
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", tu_tmpdir());
        vae_train_progress p = {.best_val = NAN, .metrics = ""};
        vae_trainer_get_state(s.t, &p.trainer);
        cr_assert_eq(vae_train_state_save(path, &s.m, &p, NULL, 0), 0, "%s", vae_last_error());
        tu_session_close(&s);
        tu_session_open(&s, backend(second), &train, &test);
        vae_train_checkpoint ck;
        cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
        cr_assert_eq(vae_train_checkpoint_restore(&ck, path, &s.m), 0, "%s", vae_last_error());
        vae_trainer_set_state(s.t, &ck.p.trainer);
        vae_train_checkpoint_free(&ck);
    }
    for (; ep < 4; ep++)
        cr_assert_eq(vae_trainer_epoch(s.t, &s.dtr, &s.dte, ep + 1, &e), 0);
    *test_loss = e.test.loss;
    *n = s.m.n_params;
    float *p = params_of(&s);
    tu_session_close(&s);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
    return p;
}

Test(cuda_resume, gpu_resume_is_bit_identical)
{
    tu_need_gpu();
    double ref_loss, loss;
    size_t n;
    float *ref = run_split(1, 1, -1, 0, &ref_loss, &n);
    const int stops[][2] = {{2, 0}, {1, 7}, {0, 1}};
    for (int i = 0; i < 3; i++) {
        float *p = run_split(1, 1, stops[i][0], stops[i][1], &loss, &n);
        cr_expect(loss == ref_loss, "stop after %d epochs + %d steps: test loss %.17g vs %.17g", stops[i][0],
                  stops[i][1], loss, ref_loss);
        cr_expect(memcmp(p, ref, n * sizeof *p) == 0, "stop after %d epochs + %d steps: parameters differ",
                  stops[i][0], stops[i][1]);
        free(p);
    }
    free(ref);
}

Test(cuda_resume, cpu_checkpoint_resumed_on_the_gpu_stays_within_tolerance)
{
    tu_need_gpu();
    double ref_loss, loss;
    size_t n;
    float *ref = run_split(0, 0, -1, 0, &ref_loss, &n);
    float *p = run_split(0, 1, 1, 5, &loss, &n);
    cr_expect(fabs(loss - ref_loss) <= 1e-2 * fabs(ref_loss), "test loss %.6f on the GPU vs %.6f on the CPU", loss,
              ref_loss);
    free(p);
    free(ref);
}
