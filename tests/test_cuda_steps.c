/*
 * test_cuda_steps.c: the step rows (train --log-every) on the GPU, where the training step is a
 * captured graph and the rows' sums are added after it: the rows of a CUDA run match the CPU's
 * within the CPU-vs-CUDA tolerance, step for step (a full batch's graph and the last, smaller
 * batch's), and a CUDA run stopped inside a row, checkpointed and resumed writes the rows of the
 * uninterrupted CUDA run bit for bit. Every case reports as skipped without a GPU (and runs on
 * the emulated device).
 */
#include "testutil.h"
#include "train.h"
#include "train_state.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* testutil's small session on the CPU or the GPU, trained 2 epochs with a step row every 3 steps
 * (19 steps an epoch, the last of 12 rows: rows straddle the epochs). */
static void session_open(tu_session *s, int cuda, const vae_dataset *train, const vae_dataset *test)
{
    vae_backend *be = cuda ? tu_cuda_backend() : vae_backend_cpu_init();
    cr_assert_not_null(be, "%s", vae_last_error());
    vae_train_options o;
    vae_train_options_default(&o, 2, 16, 3e-3f, 9);
    o.log_every = 3;
    tu_session_open_with(s, be, train, test, &o);
}

static int take_rows(tu_session *s, vae_step_row *all, int n)
{
    const vae_step_row *rows;
    int k = vae_trainer_step_rows(s->t, &rows);
    memcpy(all + n, rows, (size_t)k * sizeof *rows);
    return n + k;
}

/* The rows of 2 epochs on the CPU (cuda 0) or the GPU. */
static int run_rows(int cuda, const vae_dataset *train, const vae_dataset *test, vae_step_row *rows)
{
    tu_session s;
    session_open(&s, cuda, train, test);
    vae_epoch_metrics e;
    int n = 0;
    for (int ep = 1; ep <= 2; ep++) {
        cr_assert_eq(vae_trainer_epoch(s.t, &s.dtr, &s.dte, ep, &e), 0);
        n = take_rows(&s, rows, n);
    }
    tu_session_close(&s);
    return n;
}

Test(cuda_steps, step_rows_match_the_cpu)
{
    tu_need_gpu();
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    vae_step_row cpu[32], gpu[32];
    const int nc = run_rows(0, &train, &test, cpu), ng = run_rows(1, &train, &test, gpu);
    cr_assert_eq(nc, 12, "38 steps every 3: %d rows", nc);
    cr_assert_eq(ng, nc);
    for (int r = 0; r < nc; r++) {
        cr_expect_eq(gpu[r].step, cpu[r].step);
        cr_expect_eq(gpu[r].epoch, cpu[r].epoch);
        for (int k = 0; k < cpu[r].train.n_terms; k++)
            cr_expect(fabs(gpu[r].train.term[k] - cpu[r].train.term[k]) <= 1e-3 + 1e-3 * fabs(cpu[r].train.term[k]),
                      "row %d term %d: GPU %.9g, CPU %.9g", r, k, gpu[r].train.term[k], cpu[r].train.term[k]);
        cr_expect_eq(gpu[r].scalar[VAE_SCALAR_LR], cpu[r].scalar[VAE_SCALAR_LR]);
    }
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

Test(cuda_steps, a_stop_inside_a_row_resumes_to_the_same_rows)
{
    tu_need_gpu();
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    vae_step_row ref[32], got[32];
    const int n_ref = run_rows(1, &train, &test, ref);
    tu_session b;
    session_open(&b, 1, &train, &test);
    vae_epoch_metrics e;
    b.stop = 1;
    for (int k = 0; k < 8; k++) /* to step 8: inside the row of steps 7..9 */
        cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, 1, &e), 1);
    int n = take_rows(&b, got, 0);
    cr_expect_eq(n, 2);
    vae_trainer_state st;
    vae_trainer_get_state(b.t, &st);
    cr_expect_eq(st.win_images, 32);
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tu_tmpdir());
    vae_train_progress p = {.best_val = NAN, .metrics = "epoch\n", .metrics_steps = ""};
    p.trainer = st;
    vae_st_meta settings[] = {{"train.note", "test"}};
    cr_assert_eq(vae_train_state_save(path, &b.m, &p, settings, 1), 0, "%s", vae_last_error());
    tu_session_close(&b);
    tu_session c;
    session_open(&c, 1, &train, &test);
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    cr_assert_eq(vae_train_checkpoint_restore(&ck, path, &c.m), 0, "%s", vae_last_error());
    vae_trainer_set_state(c.t, &ck.p.trainer);
    vae_train_checkpoint_free(&ck);
    for (int ep = 1; ep <= 2; ep++) {
        cr_assert_eq(vae_trainer_epoch(c.t, &c.dtr, &c.dte, ep, &e), 0);
        n = take_rows(&c, got, n);
    }
    tu_session_close(&c);
    cr_assert_eq(n, n_ref);
    for (int r = 0; r < n; r++)
        cr_expect(got[r].step == ref[r].step && got[r].train.loss == ref[r].train.loss &&
                      memcmp(got[r].train.term, ref[r].train.term, sizeof got[r].train.term) == 0,
                  "row %d (step %ld): %.17g vs %.17g", r, ref[r].step, got[r].train.loss, ref[r].train.loss);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}
