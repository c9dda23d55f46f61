/*
 * test_resume.c: what a checkpoint must give back, in the library: the noise
 * generator's offset continues its sequence on the CPU backend; SHA-256 and the
 * path escaping of provenance; 4 epochs in one go equal 2 epochs, a checkpoint
 * and 2 more, bit for bit, and so does a checkpoint written mid-epoch; the
 * validation split is seeded and disjoint. The command-line side (run
 * directories, --force, --resume, signals, kill -9) is in test_runs.c.
 */
#define _GNU_SOURCE
#include "holdout.h"
#include "run_dir.h"
#include "sha256.h"
#include "testutil.h"
#include "train.h"
#include "train_state.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(rng, offset_continues_the_sequence_cpu)
{
    vae_backend *be = vae_backend_cpu_init();
    /* pairs (n1, n2) of even counts, some not multiples of 4; normals then uniforms */
    const size_t sizes[][2] = {{2, 2}, {6, 10}, {14, 6}, {2560, 800}, {18, 4}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int uniform = 0; uniform < 2; uniform++) {
            size_t n1 = sizes[i][0], n2 = sizes[i][1];
            float *a = calloc(n1 + n2, sizeof *a), *b = calloc(n2, sizeof *b);
            vae_rng *r = be->rng_init(be, 77), *q = be->rng_init(be, 77);
            void (*gen)(vae_backend *, vae_rng *, float *, size_t) = uniform ? be->rng_uniform : be->rng_normal;
            gen(be, r, a, n1);
            uint64_t off = be->rng_get_offset(be, r);
            cr_expect_eq(off, n1, "offset after %zu values is %llu", n1, (unsigned long long)off);
            gen(be, r, a + n1, n2);
            be->rng_set_offset(be, q, off);
            gen(be, q, b, n2);
            cr_expect(memcmp(a + n1, b, n2 * sizeof *b) == 0, "%s %zu then %zu: set_offset(%llu) does not continue",
                      uniform ? "uniform" : "normal", n1, n2, (unsigned long long)off);
            cr_expect_eq(be->rng_get_offset(be, q), n1 + n2);
            be->rng_reset(be, q);
            cr_expect_eq(be->rng_get_offset(be, q), 0);
            be->rng_free(be, r);
            be->rng_free(be, q);
            free(a);
            free(b);
        }
    }
    vae_backend_free(be);
}

Test(sha256, known_vectors)
{
    const char *msgs[] = {"", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"};
    const char *want[] = {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"};
    for (int i = 0; i < 3; i++) {
        vae_sha256 c;
        char hex[65];
        vae_sha256_init(&c);
        vae_sha256_update(&c, msgs[i], strlen(msgs[i]));
        vae_sha256_final_hex(&c, hex);
        cr_expect_str_eq(hex, want[i], "SHA-256(\"%s\")", msgs[i]);
    }
    /* a million 'a', written to a file and hashed in chunks */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    char path[512], hex[65];
    snprintf(path, sizeof path, "%s/a", tu_tmpdir());
    tu_write_file(path, a, n);
    free(a);
    cr_assert_eq(vae_sha256_file(path, hex), 0, "%s", vae_last_error());
    cr_expect_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    cr_expect_eq(vae_sha256_file("/nonexistent/file", hex), -1);
    cr_expect(strstr(vae_last_error(), "/nonexistent/file"), "%s", vae_last_error());
}

Test(run_dir, escape_is_lossless_and_utf8)
{
    const char *in = "/data/\xff\xfe-caf\xc3\xa9\\x\x01";
    char esc[256], back[256];
    cr_assert_eq(vae_run_escape(in, esc, sizeof esc), 0);
    cr_expect_str_eq(esc, "/data/\\xff\\xfe-caf\xc3\xa9\\\\x\\x01");
    cr_assert_eq(vae_run_unescape(esc, back, sizeof back), 0);
    cr_expect_str_eq(back, in);
    cr_expect_eq(vae_run_escape(in, esc, 8), -1, "a short buffer is reported");
    cr_expect_eq(vae_run_unescape("\\xz1", back, sizeof back), -1);
}

/* ---- training: one run against a run stopped and resumed from a checkpoint ---- */
/* (tu_session: batch 16 over 300 images, 18 full batches and a tail of 12) */

/* Checkpoint s to path, close it, and open a new session from the file. */
static void session_reopen(tu_session *s, const char *path, const vae_dataset *train, const vae_dataset *test)
{
    vae_train_progress p = {.best_val = NAN, .metrics = "epoch\n"};
    vae_trainer_get_state(s->t, &p.trainer);
    vae_st_meta settings[] = {{"train.note", "test"}};
    cr_assert_eq(vae_train_state_save(path, &s->m, &p, settings, 1), 0, "%s", vae_last_error());
    tu_session_close(s);
    tu_session_open(s, vae_backend_cpu_init(), train, test);
    vae_model_init_params(&s->m, 12345); /* other parameters: the checkpoint must replace them */
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_train_checkpoint_setting(&ck, "train.note"), "test");
    cr_expect_str_eq(ck.p.metrics, "epoch\n");
    cr_expect(isnan(ck.p.best_val));
    cr_assert_eq(vae_train_checkpoint_restore(&ck, path, &s->m), 0, "%s", vae_last_error());
    vae_trainer_set_state(s->t, &ck.p.trainer);
    vae_train_checkpoint_free(&ck);
}

static void expect_same_epoch(const vae_epoch_metrics *a, const vae_epoch_metrics *b)
{
    cr_expect(a->epoch == b->epoch, "epoch %d vs %d", a->epoch, b->epoch);
    cr_expect(a->train.loss == b->train.loss && a->train.n_terms == b->train.n_terms &&
                  memcmp(a->train.term, b->train.term, sizeof a->train.term) == 0,
              "epoch %d: train loss %.17g vs %.17g", a->epoch, a->train.loss, b->train.loss);
    cr_expect(a->test.loss == b->test.loss, "epoch %d: test loss %.17g vs %.17g", a->epoch, a->test.loss,
              b->test.loss);
}

/* Resume after `stop_after_epochs` whole epochs and `extra_steps` steps of the next. */
static void check_resume(int stop_after_epochs, int extra_steps)
{
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    vae_epoch_metrics ref[4], got[4];

    tu_session a;
    tu_session_open(&a, vae_backend_cpu_init(), &train, &test);
    for (int ep = 0; ep < 4; ep++)
        cr_assert_eq(vae_trainer_epoch(a.t, &a.dtr, &a.dte, ep + 1, &ref[ep]), 0);
    float *ref_params = calloc(a.m.n_params, sizeof(float)), *ref_v = calloc(a.m.n_params, sizeof(float));
    memcpy(ref_params, a.m.params, a.m.n_params * sizeof(float));
    memcpy(ref_v, a.m.adam_v, a.m.n_params * sizeof(float));
    tu_session_close(&a);

    tu_session b;
    tu_session_open(&b, vae_backend_cpu_init(), &train, &test);
    for (int ep = 0; ep < stop_after_epochs; ep++)
        cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, ep + 1, &got[ep]), 0);
    b.stop = 1; /* each call now runs one step and stops */
    for (int k = 0; k < extra_steps; k++)
        cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, stop_after_epochs + 1, &got[stop_after_epochs]), 1);
    vae_trainer_state st;
    vae_trainer_get_state(b.t, &st);
    cr_expect_eq(st.epochs_done, stop_after_epochs);
    cr_expect_eq(st.step, extra_steps);
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tu_tmpdir());
    session_reopen(&b, path, &train, &test);
    for (int ep = stop_after_epochs; ep < 4; ep++)
        cr_assert_eq(vae_trainer_epoch(b.t, &b.dtr, &b.dte, ep + 1, &got[ep]), 0);
    for (int ep = 0; ep < 4; ep++)
        expect_same_epoch(&ref[ep], &got[ep]);
    cr_expect(memcmp(ref_params, b.m.params, b.m.n_params * sizeof(float)) == 0, "parameters differ");
    cr_expect(memcmp(ref_v, b.m.adam_v, b.m.n_params * sizeof(float)) == 0, "Adam moments differ");
    int step;
    memcpy(&step, b.m.adam_step, sizeof step);
    cr_expect_eq(step, 4 * 19, "Adam step %d after 4 epochs of 19 steps", step);
    tu_session_close(&b);
    free(ref_params);
    free(ref_v);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

Test(resume, two_epochs_then_two_more_is_bit_identical) { check_resume(2, 0); }
Test(resume, from_mid_epoch_is_bit_identical) { check_resume(1, 7); }
Test(resume, from_the_first_step_is_bit_identical) { check_resume(0, 1); }

/* The checkpoint at path rewritten with its metadata key `key` set to value, or dropped (NULL). */
static void rewrite_meta(const char *path, const char *key, const char *value)
{
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    vae_st_tensor_in t[8];
    vae_st_meta meta[96];
    cr_assert(st.n_tensors <= 8 && st.n_meta <= 96);
    for (int i = 0; i < st.n_tensors; i++) {
        t[i] = (vae_st_tensor_in){.name = st.tensors[i].name, .ndim = st.tensors[i].ndim, .data = st.tensors[i].data};
        memcpy(t[i].shape, st.tensors[i].shape, sizeof t[i].shape); /* every dimension, not the first alone */
    }
    int n = 0;
    for (int i = 0; i < st.n_meta; i++) {
        if (strcmp(st.meta[i].key, key) != 0)
            meta[n++] = st.meta[i];
        else if (value)
            meta[n++] = (vae_st_meta){key, value};
    }
    cr_assert_eq(vae_safetensors_write(path, t, st.n_tensors, meta, n), 0, "%s", vae_last_error());
    vae_safetensors_free(&st);
}

/* A checkpoint's noise offset counts one generator's draws: one without the key (written when the
 * noise came from cuRAND) or naming another generator is refused in words, never resumed with
 * other noise. */
Test(resume, a_checkpoint_of_another_noise_generator_is_refused)
{
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    tu_session s;
    tu_session_open(&s, vae_backend_cpu_init(), &train, &test);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tu_tmpdir());
    vae_train_progress p = {.best_val = NAN, .metrics = "epoch\n"};
    vae_trainer_get_state(s.t, &p.trainer);
    cr_assert_eq(vae_train_state_save(path, &s.m, &p, NULL, 0), 0, "%s", vae_last_error());
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_train_checkpoint_setting(&ck, "state.noise_generator"), VAE_NOISE_GENERATOR);
    vae_train_checkpoint_free(&ck);

    rewrite_meta(path, "state.noise_generator", "xorwow");
    cr_expect_eq(vae_train_checkpoint_read(path, &ck), -1);
    cr_expect(strstr(vae_last_error(), path) && strstr(vae_last_error(), "'xorwow', not philox4x32-10") &&
                  strstr(vae_last_error(), "start a new run"),
              "%s", vae_last_error());
    rewrite_meta(path, "state.noise_generator", NULL);
    cr_expect_eq(vae_train_checkpoint_read(path, &ck), -1);
    cr_expect(strstr(vae_last_error(), "came from cuRAND"), "%s", vae_last_error());
    tu_session_close(&s);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

Test(resume, truncated_checkpoint_is_refused)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    tu_write_file(path, "\x10\0\0\0\0\0\0\0{\"a\":", 13);
    vae_train_checkpoint ck;
    cr_expect_eq(vae_train_checkpoint_read(path, &ck), -1);
    cr_expect(strstr(vae_last_error(), path), "%s", vae_last_error());
}

/* A state with a NaN is never written, and a file holding one (damaged, or written by hand) is not resumed. */
Test(resume, non_finite_state_is_neither_saved_nor_resumed)
{
    vae_dataset train, test;
    tu_make_patterns(&train, 300, 1);
    tu_make_patterns(&test, 60, 2);
    tu_session s;
    tu_session_open(&s, vae_backend_cpu_init(), &train, &test);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", tu_tmpdir());
    vae_train_progress p = {.best_val = NAN, .metrics = "epoch\n"};
    vae_trainer_get_state(s.t, &p.trainer);
    vae_st_meta settings[] = {{"train.note", "test"}};

    s.m.adam_v[5] = NAN; /* CPU backend: host memory */
    cr_assert_eq(vae_train_state_save(path, &s.m, &p, settings, 1), -1, "a NaN state was saved");
    cr_expect(strstr(vae_last_error(), "'adam.v' holds NaN at element 5"), "%s", vae_last_error());
    cr_expect(access(path, F_OK) != 0, "a file was left at %s", path);

    /* A good file whose first parameter is then overwritten with an infinity. */
    s.m.adam_v[5] = 0.0f;
    cr_assert_eq(vae_train_state_save(path, &s.m, &p, settings, 1), 0, "%s", vae_last_error());
    vae_train_checkpoint ck;
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    const vae_st_tensor *t = vae_safetensors_find(&ck.st, "params");
    cr_assert_not_null(t);
    size_t in_blob = (size_t)((const uint8_t *)t->data - (const uint8_t *)ck.st.blob);
    vae_train_checkpoint_free(&ck);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    uint8_t len_le[8]; /* the data starts after the 8-byte header length and the header */
    cr_assert_eq(fread(len_le, 1, 8, f), 8);
    uint64_t header = 0;
    for (int k = 7; k >= 0; k--)
        header = header << 8 | len_le[k];
    size_t off = 8 + (size_t)header + in_blob;
    const float inf = INFINITY;
    cr_assert_eq(fseek(f, (long)off, SEEK_SET), 0);
    cr_assert_eq(fwrite(&inf, sizeof inf, 1, f), 1);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(vae_train_checkpoint_read(path, &ck), 0, "%s", vae_last_error());
    cr_expect_eq(vae_train_checkpoint_restore(&ck, path, &s.m), -1, "a checkpoint holding inf was resumed");
    cr_expect(strstr(vae_last_error(), "'params' holds inf at element 0") && strstr(vae_last_error(), path),
              "%s", vae_last_error());
    vae_train_checkpoint_free(&ck);
    tu_session_close(&s);
    vae_dataset_free(&train);
    vae_dataset_free(&test);
}

Test(holdout, seeded_disjoint_and_complete)
{
    vae_dataset all, t1, v1, t2, v2, t3, v3;
    tu_make_patterns(&all, 100, 3);
    for (int i = 0; i < 100; i++)
        all.pixels[i * 64] = (uint8_t)i; /* a tag to find each image */
    cr_assert_eq(vae_holdout_split(&all, 0.25, 5, &t1, &v1), 0);
    cr_assert_eq(vae_holdout_split(&all, 0.25, 5, &t2, &v2), 0);
    cr_assert_eq(vae_holdout_split(&all, 0.25, 6, &t3, &v3), 0);
    cr_expect_eq(v1.n, 25);
    cr_expect_eq(t1.n, 75);
    cr_expect(memcmp(v1.pixels, v2.pixels, 25 * 64) == 0, "same seed, other split");
    cr_expect(memcmp(v1.pixels, v3.pixels, 25 * 64) != 0, "other seed, same split");
    int seen[100] = {0};
    for (int i = 0; i < 75; i++)
        seen[t1.pixels[i * 64]]++;
    for (int i = 0; i < 25; i++)
        seen[v1.pixels[i * 64]]++;
    for (int i = 0; i < 100; i++)
        cr_expect_eq(seen[i], 1, "image %d appears %d times", i, seen[i]);
    vae_dataset e1, e2;
    cr_expect_eq(vae_holdout_split(&all, 0.001, 5, &e1, &e2), -1, "an empty validation set is refused");
    vae_dataset ten = all;
    ten.n = 10;
    cr_assert_eq(vae_holdout_split(&ten, 0.7f, 5, &e1, &e2), 0);
    cr_expect_eq(e2.n, 7, "0.7 of 10 images held out as %d", e2.n);
    vae_dataset_free(&e1);
    vae_dataset_free(&e2);
    vae_dataset *ds[] = {&all, &t1, &v1, &t2, &v2, &t3, &v3};
    for (int i = 0; i < 7; i++)
        vae_dataset_free(ds[i]);
}
