/*
 * test_steps.c: runs watched and measured in steps (`train --log-every N`, `--steps N`): the step
 * rows of metrics_steps.csv and .jsonl (one per N steps, their steps and fractional epochs, an
 * epoch's rows averaging to its training loss), the curves and the report that show them, a run
 * stopped inside a step row or extended by --steps continuing bit for bit, and each flag's bad
 * values. The runs are the 1-D toy on a small data set (no files needed, 20 steps per epoch).
 */
#include "metrics.h"
#include "testutil.h"
#include "train.h"
#include "train_state.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 16];
#define cuvae(...) tu_cuvae(out, sizeof out, __VA_ARGS__)

/* A small toy run: 400 training values at batch 20 (20 steps per epoch), a 16-16 network. */
#define TOY "--data toy --toy-n 400,100 --batch-size 20 --hidden 16,16 --device cpu --threads 1 --quiet --seed 5"

static void table_in(const char *dir, const char *name, vae_metrics_table *t)
{
    size_t len;
    char *text = tu_slurp_in(dir, name, &len);
    cr_assert_not_null(text, "%s/%s is missing", dir, name);
    cr_assert_eq(vae_metrics_parse(text, len, name, t), 0, "%s", vae_last_error());
    free(text);
}

static double cell(const vae_metrics_table *t, int row, const char *col)
{
    int c = vae_metrics_column(t, col);
    cr_assert_geq(c, 0, "no column %s", col);
    return t->values[(size_t)row * t->n_cols + c];
}

static void run_dir(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "%s/%s", tu_tmpdir(), name);
}

Test(steps, log_every_writes_one_row_per_n_steps_whose_epoch_means_are_the_epoch_losses)
{
    char dir[512];
    run_dir(dir, sizeof dir, "log5");
    cr_assert_eq(cuvae("train " TOY " --epochs 3 --log-every 5 --out %s", dir), 0, "%s", out);
    vae_metrics_table s, e;
    table_in(dir, "metrics_steps.csv", &s);
    table_in(dir, "metrics.csv", &e);
    cr_assert_eq(s.n_rows, 12, "3 epochs of 20 steps every 5 steps: %d rows", s.n_rows);
    cr_assert_eq(e.n_rows, 3);
    static const char *const want[] = {"step", "epoch", "train_loss", "train_recon", "train_kl", "lr", "kl_weight"};
    cr_assert_eq(s.n_cols, 7, "columns: %d", s.n_cols);
    for (int c = 0; c < 7; c++)
        cr_expect_str_eq(s.names[c], want[c]);
    for (int r = 0; r < s.n_rows; r++) {
        cr_expect_eq(cell(&s, r, "step"), 5.0 * (r + 1), "row %d", r);
        cr_expect_float_eq(cell(&s, r, "epoch"), (r + 1) * 5.0 / 20.0, 1e-9, "row %d", r);
        cr_expect_float_eq(cell(&s, r, "lr"), 1e-3, 1e-9);
    }
    /* every batch is whole and 5 divides 20: the mean of an epoch's 4 rows is its training loss */
    static const char *const cols[] = {"train_loss", "train_recon", "train_kl"};
    for (int ep = 0; ep < 3; ep++)
        for (int c = 0; c < 3; c++) {
            double mean = 0;
            for (int r = 4 * ep; r < 4 * ep + 4; r++)
                mean += cell(&s, r, cols[c]) / 4;
            const double want_v = cell(&e, ep, cols[c]);
            cr_expect(fabs(mean - want_v) <= 1e-6 * fabs(want_v) + 1e-6 /* the CSV's 6 decimals */,
                      "epoch %d %s: mean of its step rows %.9f, the epoch's %.9f", ep + 1, cols[c], mean, want_v);
        }
    /* the JSON lines are the same rows */
    size_t len;
    char *jsonl = tu_slurp_in(dir, "metrics_steps.jsonl", &len);
    cr_assert_not_null(jsonl);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += jsonl[i] == '\n';
    cr_expect_eq(lines, 12);
    cr_expect(strstr(jsonl, "{\"step\":5,\"epoch\":0.25,"), "first JSON line: %.120s", jsonl);
    free(jsonl);
    /* the curves draw the rows under the epochs' points, and the report says what the file holds */
    char *svg = tu_slurp_in(dir, "loss_curves.svg", NULL);
    cr_assert_not_null(svg);
    cr_expect(strstr(svg, "train, 5-step"), "loss_curves.svg has no step-row line");
    cr_expect(strstr(svg, "per epoch and step row"), "the panels' titles do not say they hold step rows");
    free(svg);
    char path[600];
    snprintf(path, sizeof path, "%s/report.html", dir);
    cr_expect(tu_file_has(path, "12 step rows, one every 5 training steps, to step 60 (epoch 3.000)"),
              "report.html does not describe metrics_steps.csv");
    vae_metrics_table_free(&s);
    vae_metrics_table_free(&e);
}

/* The loss curves' step line has one point per row: count the points of the polyline that follows
 * the step rows' legend colour (#7f7f7f, class 7). */
Test(steps, loss_curves_step_line_has_a_point_per_row)
{
    char dir[512];
    run_dir(dir, sizeof dir, "log2");
    cr_assert_eq(cuvae("train " TOY " --epochs 1 --log-every 2 --out %s", dir), 0, "%s", out);
    char *svg = tu_slurp_in(dir, "loss_curves.svg", NULL);
    cr_assert_not_null(svg);
    const char *pl = strstr(svg, "<polyline fill=\"none\" stroke=\"#7f7f7f\"");
    cr_assert_not_null(pl, "no grey step-row line");
    const char *pts = strstr(pl, "points=\"") + 8, *end = strchr(pts, '"');
    int n = 0;
    for (const char *c = pts; c < end; c++)
        n += *c == ',';
    cr_expect_eq(n, 10, "the step line has %d points, the run 10 rows", n);
    free(svg);
}

Test(steps, steps_sets_the_length_and_more_steps_on_resume_continue_bit_for_bit)
{
    char a[512], b[512];
    run_dir(a, sizeof a, "steps45");
    run_dir(b, sizeof b, "steps27");
    cr_assert_eq(cuvae("train " TOY " --steps 45 --log-every 4 --out %s", a), 0, "%s", out);
    cr_expect(strstr(out, "trained 45 steps (3 epochs)"), "%s", out);
    vae_metrics_table e;
    table_in(a, "metrics.csv", &e);
    cr_expect_eq(e.n_rows, 3, "45 steps of 20 a epoch: 3 epochs, the last cut at 5 steps");
    vae_metrics_table_free(&e);
    /* 27 steps: stopped inside epoch 2 and inside the step row of steps 25..28; then to 45 */
    cr_assert_eq(cuvae("train " TOY " --steps 27 --log-every 4 --out %s", b), 0, "%s", out);
    cr_assert_eq(cuvae("train --resume %s --steps 45 --quiet", b), 0, "%s", out);
    cr_expect(strstr(out, "resuming"), "%s", out);
    char *sa = tu_slurp_in(a, "metrics_steps.csv", NULL), *sb = tu_slurp_in(b, "metrics_steps.csv", NULL);
    cr_assert(sa && sb);
    cr_expect_str_eq(sb, sa, "the resumed run's step rows differ from the uninterrupted run's");
    free(sa);
    free(sb);
    char la[4096], lb[4096];
    tu_metrics_losses(a, la, sizeof la);
    tu_metrics_losses(b, lb, sizeof lb);
    cr_expect_str_eq(lb, la, "the resumed run's epoch losses differ");
    /* fewer steps than done, and both lengths at once, are refused in words */
    cr_expect_eq(cuvae("train --resume %s --steps 30 --quiet", b), 2);
    cr_expect(strstr(out, "--steps 30: the run in") && strstr(out, "has already done 45 steps"), "%s", out);
    cr_expect_eq(cuvae("train --resume %s --steps 60 --epochs 4 --quiet", b), 2);
    cr_expect(strstr(out, "give one"), "%s", out);
    /* --log-every is the run's: another one on resume is refused */
    cr_expect_eq(cuvae("train --resume %s --steps 60 --log-every 3 --quiet", b), 2);
    cr_expect(strstr(out, "--log-every 3 (the run has 4)"), "%s", out);
}

Test(steps, bad_values_are_refused_naming_the_flag)
{
    static const struct {
        const char *flags, *says;
    } bad[] = {
        {"--log-every -1", "--log-every"}, {"--log-every x", "--log-every"},  {"--log-every 2.5", "--log-every"},
        {"--steps 0", "--steps"},          {"--steps -4", "--steps"},         {"--steps many", "--steps"},
        {"--steps 99999999999", "--steps"}, {"--steps 10 --epochs 2", "give one"},
    };
    char dir[512];
    run_dir(dir, sizeof dir, "never");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(cuvae("train " TOY " %s --out %s", bad[i].flags, dir), 2, "%s: %s", bad[i].flags, out);
        cr_expect(strstr(out, bad[i].says), "%s: the message does not name %s: %s", bad[i].flags, bad[i].says, out);
        cr_expect(!tu_exists(dir), "%s: a refused run left %s", bad[i].flags, dir);
    }
}

/* ---- the trainer: a stop inside a step row, through a checkpoint ---------------------------- */

/* testutil's small session, trained 3 epochs with a step row every 3 steps (19 steps an epoch:
 * rows straddle the epochs). */
static void session_open(tu_session *s, const vae_dataset *train, const vae_dataset *test)
{
    vae_train_options o;
    vae_train_options_default(&o, 3, 16, 3e-3f, 9);
    o.log_every = 3;
    tu_session_open_with(s, vae_backend_cpu_init(), train, test, &o);
}

static int take_rows(tu_session *s, vae_step_row *all, int n)
{
    const vae_step_row *rows;
    int k = vae_trainer_step_rows(s->t, &rows);
    memcpy(all + n, rows, (size_t)k * sizeof *rows);
    return n + k;
}

Test(steps, a_stop_inside_a_step_row_resumes_to_the_same_rows)
{
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1); /* 19 steps of 16 (the last of 12) */
    tu_make_patterns(&test, 60, 2);
    vae_step_row ref[64], got[64];
    vae_epoch_metrics e;
    tu_session a;
    session_open(&a, &train, &test);
    int n_ref = 0;
    for (int ep = 1; ep <= 3; ep++) {
        cr_assert_eq(vae_trainer_epoch(a.t, &a.dtr, &a.dte, ep, &e), 0);
        n_ref = take_rows(&a, ref, n_ref);
    }
    tu_session_close(&a);
    cr_assert_eq(n_ref, 19, "57 steps every 3: %d rows", n_ref);

    tu_session b;
    session_open(&b, &train, &test);
    int n = 0;
    cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, 1, &e), 0); /* 19 steps: row 7 has step 19 of 3 */
    n = take_rows(&b, got, n);
    b.stop = 1;
    for (int k = 0; k < 4; k++) /* to step 23: inside the row of steps 22..24 */
        cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, 2, &e), 1);
    n = take_rows(&b, got, n);
    cr_expect_eq(n, 7, "23 steps every 3: %d rows", n);
    vae_trainer_state st;
    vae_trainer_get_state(b.t, &st);
    cr_expect_eq(st.win_images, 16 * 2, "the row in progress holds steps 22 and 23");
    char path[512];
    snprintf(path, sizeof path, "%s/steps_checkpoint.safetensors", tu_tmpdir());
    vae_train_progress p = {.best_val = NAN, .metrics = "epoch\n", .metrics_steps = "step\n"};
    p.trainer = st;
    vae_st_meta settings[] = {{"train.note", "test"}};
    cr_assert_eq(vae_train_state_save(path, &b.m, &p, settings, 1), 0, "%s", vae_last_error());
    tu_session_close(&b);

    tu_session c;
    session_open(&c, &train, &test);
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    cr_expect_str_eq(ck.p.metrics_steps, "step\n");
    cr_expect_eq(ck.p.trainer.win_images, 32);
    cr_assert_eq(vae_train_checkpoint_restore(&ck, path, &c.m), 0, "%s", vae_last_error());
    vae_trainer_set_state(c.t, &ck.p.trainer);
    vae_train_checkpoint_free(&ck);
    for (int ep = 2; ep <= 3; ep++) {
        cr_assert_eq(vae_trainer_epoch(c.t, &c.dtr, &c.dte, ep, &e), 0);
        n = take_rows(&c, got, n);
    }
    tu_session_close(&c);
    cr_assert_eq(n, n_ref);
    for (int r = 0; r < n; r++) {
        cr_expect_eq(got[r].step, ref[r].step);
        cr_expect(got[r].train.loss == ref[r].train.loss &&
                      memcmp(got[r].train.term, ref[r].train.term, sizeof got[r].train.term) == 0,
                  "row %d (step %ld): %.17g vs %.17g", r, ref[r].step, got[r].train.loss, ref[r].train.loss);
    }
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

/* ---- the joint model's curves ---------------------------------------------------------------- */

/* The points of the first line drawn after `title` in svg (its first polyline), or -1. */
static int points_after(const char *svg, const char *title)
{
    const char *t = strstr(svg, title);
    if (!t)
        return -1;
    const char *pl = strstr(t, "<polyline");
    if (!pl)
        return -1;
    const char *pts = strstr(pl, "points=\"") + 8, *end = strchr(pts, '"');
    int n = 0;
    for (const char *c = pts; c < end; c++)
        n += *c == ',';
    return n;
}

/* A joint run with both capacities, an annealed temperature and step rows: the curves have an NMI,
 * a cluster-accuracy, a capacity and a temperature panel (one point per epoch, one per step row), the
 * report shows them, and a discrete capacity above log K is said once, at the start. */
Test(curves, the_joint_model_draws_nmi_accuracy_capacities_and_says_when_c_is_capped)
{
    char data[512], dir[600];
    snprintf(data, sizeof data, "%s/patterns", tu_tmpdir());
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", data);
    cr_assert_eq(system(cmd), 0);
    tu_write_patterns_idx(data, 160, 60, 3);
    snprintf(dir, sizeof dir, "%s/joint", tu_tmpdir());
    cr_assert_eq(cuvae("train --model joint --data %s --epochs 3 --batch-size 16 --hidden 24 --latent 2 --disc 3 "
                       "--capacity-z 2,40,30 --capacity-c 5,40,30 --temperature 1 --temperature-anneal 0.5 "
                       "--log-every 5 --device cpu --threads 1 --quiet --out %s",
                       data, dir),
                 0, "%s", out);
    const char *note = strstr(out, "note: --capacity-c MAX 5 is more than log K = log 3 = 1.0986 nats, the most KL_c "
                                   "can be: C_c stops at 1.0986 from step 10");
    cr_expect(note, "no notice of the capped capacity: %s", out);
    cr_expect(note && !strstr(note + 1, "note: --capacity-c"), "the notice is said more than once: %s", out);
    vae_metrics_table s;
    table_in(dir, "metrics_steps.csv", &s);
    cr_assert_eq(s.n_rows, 6, "30 steps every 5: %d rows", s.n_rows);
    /* a row has the values of its last step, step 5 (index 4) for the first: C_c = MAX * 4 / ITERS */
    cr_expect_float_eq(cell(&s, 0, "capacity_c"), 5.0 * 4 / 40, 1e-6, "C_c at step 5 rises as scheduled");
    for (int r = 1; r < s.n_rows; r++)
        cr_expect_float_eq(cell(&s, r, "capacity_c"), log(3.0), 1e-5, "row %d: C_c capped at log 3", r);
    cr_expect_float_eq(cell(&s, 5, "capacity_z"), 2.0 * 29 / 40, 1e-6);
    cr_expect(cell(&s, 5, "temperature") < cell(&s, 0, "temperature"), "the temperature anneals");
    vae_metrics_table_free(&s);
    char *svg = tu_slurp_in(dir, "loss_curves.svg", NULL);
    cr_assert_not_null(svg);
    /* per epoch: one point each; the capacity and temperature panels also the 6 step rows */
    cr_expect_eq(points_after(svg, "NMI of argmax q(c|x) with the test labels"), 3);
    cr_expect_eq(points_after(svg, "Cluster accuracy of argmax q(c|x)"), 3);
    cr_expect_eq(points_after(svg, "Capacity C_c of the discrete KL (at most log K)"), 6);
    cr_expect_eq(points_after(svg, "Gumbel-softmax temperature"), 6);
    cr_expect(!strstr(svg, ">Learning rate<"), "a constant learning rate got a panel");
    free(svg);
    char path[700];
    snprintf(path, sizeof path, "%s/report.html", dir);
    cr_expect(tu_file_has(path, "<img src=\"loss_curves.svg\""), "the report does not show the curves");
    cr_expect(tu_file_has(path, "a joint model&#39;s NMI, cluster accuracy") ||
                  tu_file_has(path, "a joint model's NMI, cluster accuracy"),
              "the report's caption does not name the NMI curve");
}

/* A checkpoint whose step row in progress holds a non-finite sum is damaged: refused, not resumed. */
Test(steps, a_non_finite_step_row_sum_in_a_checkpoint_is_refused)
{
    char dir[512], ck[600];
    snprintf(dir, sizeof dir, "%s/nan", tu_tmpdir());
    cr_assert_eq(cuvae("train " TOY " --steps 27 --log-every 4 --out %s", dir), 0, "%s", out);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    char *win = tu_st_meta(ck, "state.win_images");
    cr_expect_str_eq(win, "60", "steps 25..27 of batch 20 in the row in progress");
    free(win);
    tu_st_rewrite_meta(ck, "state.win_acc", "7ff8000000000000,0000000000000000");
    cr_expect_eq(cuvae("train --resume %s --steps 45 --quiet", dir), 1, "%s", out);
    cr_expect(strstr(out, "state.win_acc holds NaN for the loss term 'recon'"), "%s", out);
}
