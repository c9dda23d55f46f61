/*
 * test_hostile_files.c: what cuvae does with files an unlucky or hostile user
 * hands it (issue 19, findings 3 to 12): outputs that are FIFOs, devices or
 * the command's own inputs; checkpoints whose state cannot be; FIFOs and
 * oversized files as inputs; metadata that asks for huge allocations, holds
 * terminal escapes or contradicts itself; non-finite results; a batch larger
 * than the data set. Each case runs the cuvae binary on a tiny model trained
 * on 8x8 patterns and checks one plain message, the exit code, and that no
 * input was harmed.
 */
#define _GNU_SOURCE
#include "safetensors.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[65536];

/* A fresh directory holding the 8x8 patterns as IDX files (data/) and a tiny run trained on
 * them (run/, 2 epochs; model its model.safetensors). */
typedef struct {
    char dir[512], data[600], run[600], model[700];
} tiny;

static void tiny_run(tiny *t)
{
    snprintf(t->dir, sizeof t->dir, "%s", tu_tmpdir());
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    snprintf(t->run, sizeof t->run, "%s/run", t->dir);
    snprintf(t->model, sizeof t->model, "%s/model.safetensors", t->run);
    mkdir(t->data, 0755);
    tu_write_patterns_idx(t->data, 120, 30, 3);
    int rc = tu_cuvae(out, sizeof out,
                      "train --data %s --epochs 2 --batch-size 16 --hidden 24 --latent 2 --out %s --device cpu "
                      "--quiet 2>&1",
                      t->data, t->run);
    cr_assert_eq(rc, 0, "the tiny run failed:\n%s", out);
}

/* What stands at path, lstat's file type bits; 0 when nothing does. */
static unsigned file_type(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (unsigned)(st.st_mode & S_IFMT) : 0u;
}

/* ---- finding 3: an --out that is a FIFO or a device node is refused, not replaced ---- */

Test(hostile, out_refuses_a_fifo_or_a_device_node)
{
    tiny t;
    char fifo[700], dev[700], tmp[800];
    tiny_run(&t);
    snprintf(fifo, sizeof fifo, "%s/fifo", t.dir);
    snprintf(dev, sizeof dev, "%s/null", t.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", fifo);
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    cr_assert_eq(symlink("/dev/null", dev), 0); /* a device node without root: through a link */

    int rc = tu_cuvae(out, sizeof out, "sample --model %s --out %s --n 4 --device cpu 2>&1", t.model, fifo);
    cr_expect_eq(rc, 1, "sample --out FIFO: exit %d\n%s", rc, out);
    cr_expect(strstr(out, fifo) && strstr(out, "is a FIFO; refusing to replace it"), "%s", out);
    cr_expect_eq(file_type(fifo), (unsigned)S_IFIFO, "the FIFO was replaced");

    rc = tu_cuvae(out, sizeof out, "sample --model %s --out %s --n 4 --device cpu 2>&1", t.model, dev);
    cr_expect_eq(rc, 1, "sample --out link-to-/dev/null: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "is a character device; refusing to replace it"), "%s", out);
    cr_expect_eq(file_type(dev), (unsigned)S_IFLNK, "the link to /dev/null was replaced");

    rc = tu_cuvae(out, sizeof out, "encode --model %s --data %s --out %s --device cpu 2>&1", t.model, t.data, fifo);
    cr_expect_eq(rc, 1, "encode --out FIFO: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "is a FIFO; refusing to replace it"), "%s", out);
    cr_expect_eq(file_type(fifo), (unsigned)S_IFIFO, "the FIFO was replaced");
    cr_expect(!tu_exists(tmp), "a temporary file was left behind");
}

/* ---- finding 4: an --out that is an input, or that holds a model, is refused ---- */

Test(hostile, out_refuses_an_input_or_a_model)
{
    tiny t;
    tiny_run(&t);
    size_t len0, len;
    char *model0 = tu_read_file(t.model, &len0);
    char hard[700], copy[700], images[700];
    snprintf(hard, sizeof hard, "%s/other-name.safetensors", t.dir);
    snprintf(copy, sizeof copy, "%s/copy.safetensors", t.dir);
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", t.data);
    cr_assert_eq(link(t.model, hard), 0);
    tu_write_file(copy, model0, len0);

    /* the model itself, by its name and by another (a hard link): refused even with --force */
    int rc = tu_cuvae(out, sizeof out, "encode --model %s --data %s --out %s --device cpu --force 2>&1", t.model,
                      t.data, t.model);
    cr_expect_eq(rc, 2, "encode --out MODEL: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "is the input") && strstr(out, "writing it would destroy it"), "%s", out);
    rc = tu_cuvae(out, sizeof out, "sample --model %s --out %s --device cpu --force 2>&1", t.model, hard);
    cr_expect_eq(rc, 2, "sample --out LINK-TO-MODEL: exit %d\n%s", rc, out);
    cr_expect(strstr(out, t.model), "the input is not named:\n%s", out);
    /* a data file the command reads */
    rc = tu_cuvae(out, sizeof out, "reconstruct --model %s --data %s --out %s --n 4 --device cpu 2>&1", t.model,
                  t.data, images);
    cr_expect_eq(rc, 2, "reconstruct --out DATA: exit %d\n%s", rc, out);
    cr_expect(strstr(out, images), "%s", out);
    /* another model: refused without --force, replaced with it */
    rc = tu_cuvae(out, sizeof out, "sample --model %s --out %s --n 4 --device cpu 2>&1", t.model, copy);
    cr_expect_eq(rc, 2, "sample --out OTHER-MODEL: exit %d\n%s", rc, out);
    cr_expect(strstr(out, "holds a cuvae model; give another --out, or --force"), "%s", out);

    char *model1 = tu_read_file(t.model, &len);
    cr_expect(len == len0 && memcmp(model0, model1, len) == 0, "the model changed");
    free(model1);
    model1 = tu_read_file(copy, &len);
    cr_expect(len == len0 && memcmp(model0, model1, len) == 0, "the copy was replaced without --force");
    free(model1);
    free(model0);
    rc = tu_cuvae(out, sizeof out, "sample --model %s --out %s --n 4 --device cpu --force 2>&1", t.model, copy);
    cr_expect_eq(rc, 0, "sample --out OTHER-MODEL --force: exit %d\n%s", rc, out);
}

/* ---- finding 5: a checkpoint whose state cannot be is refused before anything trains ---- */

/* Resume t's run to 3 epochs from its checkpoint rewritten with key = value: exit 1, a message
 * naming the checkpoint and holding `needle`, and metrics.csv as it was (nothing trained). */
static void expect_resume_refused(const tiny *t, const char *ck, const void *ck0, size_t ck0_len, const char *key,
                                  const char *value, const char *needle)
{
    tu_write_file(ck, ck0, ck0_len);
    tu_st_rewrite_meta(ck, key, value);
    char *metrics0 = tu_slurp_in(t->run, "metrics.csv", NULL);
    int rc = tu_cuvae(out, sizeof out, "train --resume %s --epochs 3 --quiet 2>&1", t->run);
    cr_expect_eq(rc, 1, "%s = '%.60s': exit %d\n%s", key, value, rc, out);
    cr_expect(strstr(out, ck) && strstr(out, needle), "%s = '%.60s': the message lacks '%s':\n%s", key, value,
              needle, out);
    cr_expect(!strstr(out, "epoch   3/3"), "%s = '%.60s': it trained:\n%s", key, value, out);
    char *metrics1 = tu_slurp_in(t->run, "metrics.csv", NULL);
    cr_expect_str_eq(metrics1, metrics0, "%s = '%.60s': metrics.csv changed", key, value);
    free(metrics0);
    free(metrics1);
}

Test(hostile, impossible_checkpoint_states_are_refused_before_training)
{
    tiny t;
    tiny_run(&t); /* 120 images in batches of 16: 8 steps an epoch; 2 epochs done */
    char ck[700];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", t.run);
    size_t len;
    char *ck0 = tu_read_file(ck, &len);
    char *metrics = tu_st_meta(ck, "metrics");

    expect_resume_refused(&t, ck, ck0, len, "state.step", "16777217", "state.step 16777217 is not a step of an "
                                                                       "epoch of 8 batches (0 to 7)");
    expect_resume_refused(&t, ck, ck0, len, "state.step", "1073741824", "state.step 1073741824 is not a step");
    expect_resume_refused(&t, ck, ck0, len, "state.step", "8", "state.step 8 is not a step");
    expect_resume_refused(&t, ck, ck0, len, "state.acc", "7ff8000000000000,0000000000000000",
                          "state.acc holds NaN for the loss term 'recon'");
    expect_resume_refused(&t, ck, ck0, len, "state.acc", "0000000000000000,7ff0000000000000",
                          "state.acc holds an infinity for the loss term 'kl'");
    expect_resume_refused(&t, ck, ck0, len, "state.epochs_done", "0", "its metrics hold 2 rows, but "
                                                                      "state.epochs_done is 0");
    expect_resume_refused(&t, ck, ck0, len, "state.epochs_done", "1", "its metrics hold 2 rows");
    expect_resume_refused(&t, ck, ck0, len, "state.best_epoch", "7", "state.best_epoch 7 is after the 2 epochs");
    expect_resume_refused(&t, ck, ck0, len, "state.seconds", "soon", "state.seconds = 'soon'");
    expect_resume_refused(&t, ck, ck0, len, "metrics", "garbage", "its metrics header 'garbage' is not the one");
    /* a header of another model (a validation split), then a damaged row */
    char *val = strdup(metrics), *comma = strstr(val, ",seconds");
    cr_assert_not_null(comma);
    char other[8192];
    snprintf(other, sizeof other, "%.*s,val_loss%s", (int)(comma - val), val, comma);
    expect_resume_refused(&t, ck, ck0, len, "metrics", other, "is not the one of the model its settings describe");
    char *row2 = strstr(val, "\n2,");
    cr_assert_not_null(row2);
    memcpy(row2 + 3, "x.", 2);
    expect_resume_refused(&t, ck, ck0, len, "metrics", val, "its metrics row 2 has the value 'x.");
    memcpy(row2 + 1, "7", 1);
    expect_resume_refused(&t, ck, ck0, len, "metrics", val, "its metrics row 2 has epoch '7'");

    /* the checkpoint as written still resumes */
    tu_write_file(ck, ck0, len);
    int rc = tu_cuvae(out, sizeof out, "train --resume %s --epochs 3 --quiet 2>&1", t.run);
    cr_expect_eq(rc, 0, "%s", out);
    free(val);
    free(metrics);
    free(ck0);
}

/* ---- finding 6: a FIFO or a device as an input is refused at once, not waited on ---- */

/* cuvae with args under `timeout`, so that a command waiting on a FIFO fails the test (137), not hangs it. */
static int cuvae_timed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cuvae_timed(const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout -s KILL 10 %s %s 2>&1", CUVAE_BINARY, args);
    return tu_run(cmd, out, sizeof out);
}

/* dir/name replaced by a FIFO (fifo) or a link to /dev/zero; the original is kept as dir/name.orig. */
static void replace_with(const char *dir, const char *name, int fifo, char *path, size_t cap)
{
    char orig[1200];
    snprintf(path, cap, "%s/%s", dir, name);
    snprintf(orig, sizeof orig, "%s.orig", path);
    cr_assert_eq(rename(path, orig), 0, "%s", path);
    cr_assert_eq(fifo ? mkfifo(path, 0644) : symlink("/dev/zero", path), 0, "%s", path);
}

static void restore(const char *path)
{
    char orig[1200];
    snprintf(orig, sizeof orig, "%s.orig", path);
    cr_assert_eq(unlink(path), 0, "%s", path);
    cr_assert_eq(rename(orig, path), 0, "%s", path);
}

#define EXPECT_REFUSED(what, rc, path, kind)                                                                    \
    do {                                                                                                        \
        cr_expect((rc) == 1 || (rc) == 2, "%s: exit %d (137: it waited on the FIFO)\n%s", what, rc, out);      \
        cr_expect(strstr(out, path) && strstr(out, kind), "%s: the message does not name %s as %s:\n%s", what, \
                  path, kind, out);                                                                             \
    } while (0)

Test(hostile, fifos_and_devices_as_inputs_are_refused_not_waited_on)
{
    tiny t;
    tiny_run(&t);
    char p[1200];
    int rc;

    replace_with(t.run, "checkpoint.safetensors", 1, p, sizeof p);
    rc = cuvae_timed("train --resume %s --epochs 3 --quiet", t.run);
    EXPECT_REFUSED("train --resume, checkpoint FIFO", rc, p, "is a FIFO, not a regular file");
    restore(p);

    replace_with(t.run, "provenance.txt", 1, p, sizeof p);
    rc = cuvae_timed("train --resume %s --epochs 3 --quiet", t.run);
    EXPECT_REFUSED("train --resume, provenance.txt FIFO", rc, p, "is a FIFO, not a regular file");
    rc = cuvae_timed("report %s", t.run);
    EXPECT_REFUSED("report, provenance.txt FIFO", rc, p, "is a FIFO, not a regular file");
    restore(p);

    replace_with(t.run, "metrics.csv", 1, p, sizeof p);
    rc = cuvae_timed("report %s", t.run);
    EXPECT_REFUSED("report, metrics.csv FIFO", rc, p, "is a FIFO, not a regular file");
    rc = cuvae_timed("plot --model %s --data %s --out %s --device cpu", t.model, t.data, t.dir);
    EXPECT_REFUSED("plot, metrics.csv FIFO", rc, p, "is a FIFO, not a regular file");
    restore(p);
    replace_with(t.run, "metrics.csv", 0, p, sizeof p);
    rc = cuvae_timed("report %s", t.run);
    EXPECT_REFUSED("report, metrics.csv -> /dev/zero", rc, p, "is a character device, not a regular file");
    restore(p);

    replace_with(t.run, "model.safetensors", 1, p, sizeof p);
    rc = cuvae_timed("info --model %s", p);
    EXPECT_REFUSED("info, model FIFO", rc, p, "is a FIFO, not a regular file");
    rc = cuvae_timed("eval --model %s --data %s --device cpu", p, t.data);
    EXPECT_REFUSED("eval, model FIFO", rc, p, "is a FIFO, not a regular file");
    restore(p);

    replace_with(t.data, "t10k-images-idx3-ubyte", 1, p, sizeof p);
    rc = cuvae_timed("eval --model %s --data %s --device cpu", t.model, t.data);
    EXPECT_REFUSED("eval, data FIFO", rc, p, "is a FIFO, not a regular file");
    rc = cuvae_timed("train --data %s --epochs 1 --out %s/new --device cpu --quiet", t.data, t.dir);
    EXPECT_REFUSED("train, data FIFO", rc, p, "is a FIFO, not a regular file");
    restore(p);

    /* everything as it was: the run resumes */
    rc = cuvae_timed("train --resume %s --epochs 3 --quiet", t.run);
    cr_expect_eq(rc, 0, "%s", out);
}

/* ---- finding 7: small files that ask for huge allocations are refused first ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

Test(hostile, huge_allocations_from_small_files_are_refused_first)
{
    tiny t;
    tiny_run(&t);
    /* a checkpoint whose settings ask for three hidden layers of 12000: refused by the tensors'
     * sizes before the model is built, under a 1.5 GB address-space limit (the model takes 9.5 GB;
     * no limit under ASan, whose shadow needs the address space) */
    char ck[700];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", t.run);
    tu_st_rewrite_meta(ck, "train.hidden", "12000,12000,12000");
    char cmd[2048];
#if defined(__SANITIZE_ADDRESS__)
    const char *limit = ""; /* AddressSanitizer reserves terabytes of address space for its shadow */
#else
    const char *limit = "ulimit -v 1500000; ";
#endif
    snprintf(cmd, sizeof cmd, "%s%s train --resume %s --epochs 3 --quiet 2>&1", limit, CUVAE_BINARY, t.run);
    int rc = tu_run(cmd, out, sizeof out);
    cr_expect_eq(rc, 1, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, ck) && strstr(out, "tensor 'params' holds") &&
                  strstr(out, "but the model its settings describe has"),
              "%s", out);

    /* a gzip'd test split whose images header says 2,000,000 images of 28x28 (1.5 GB inflated)
     * and whose labels say 1: the headers disagree, and that is said before anything is inflated
     * (this stream is even cut short, which reading the images first would report instead) */
    char data[700], path[800];
    snprintf(data, sizeof data, "%s/big", t.dir);
    mkdir(data, 0755);
    tu_write_patterns_idx(data, 120, 30, 3);
    const size_t body = 1 << 20;
    unsigned char *b = calloc(16 + body, 1);
    put_be32(b, 0x803);
    put_be32(b + 4, 2000000);
    put_be32(b + 8, 28);
    put_be32(b + 12, 28);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", data);
    tu_write_file(path, b, 16 + body);
    free(b);
    snprintf(cmd, sizeof cmd, "gzip -n %s && truncate -s -100 %s.gz 2>&1", path, path);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    unsigned char l[9] = {0};
    put_be32(l, 0x801);
    put_be32(l + 4, 1);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", data);
    tu_write_file(path, l, sizeof l);
    rc = tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu 2>&1", t.model, data);
    cr_expect_eq(rc, 1, "exit %d\n%s", rc, out);
    cr_expect(strstr(out, "1 labels for 2000000 images"), "%s", out);
}

/* ---- finding 8: info prints metadata with its control characters escaped ---- */

Test(hostile, info_escapes_control_characters_in_metadata)
{
    tiny t;
    tiny_run(&t);
    tu_st_rewrite_meta(t.model, "train.note", "\x1b]0;pwned\x07\x1b[2J\rforged: line\nsecond \\ x \xc2\x9b" "2J");
    tu_st_rewrite_meta(t.model, "key\x1b[31m", "red");
    int rc = tu_cuvae(out, sizeof out, "info --model %s 2>&1", t.model);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(!strchr(out, '\x1b') && !strchr(out, '\x07') && !strchr(out, '\r'),
              "a control character reached the terminal:\n%s", out);
    cr_expect(!strstr(out, "\xc2\x9b"), "a C1 control (CSI) reached the terminal:\n%s", out);
    cr_expect(strstr(out, "\\x1b]0;pwned\\x07\\x1b[2J\\x0dforged: line\\x0asecond \\ x \\xc2\\x9b2J"), "%s", out);
    cr_expect(strstr(out, "key\\x1b[31m") && strstr(out, "red"), "%s", out);
}

/* ---- finding 9: eval on a non-finite result names the model and fails, in both modes ---- */

Test(hostile, eval_refuses_a_non_finite_result_in_both_modes)
{
    tiny t;
    snprintf(t.dir, sizeof t.dir, "%s", tu_tmpdir());
    snprintf(t.data, sizeof t.data, "%s/data", t.dir);
    snprintf(t.model, sizeof t.model, "%s/run/model.safetensors", t.dir);
    mkdir(t.data, 0755);
    tu_write_patterns_idx(t.data, 120, 30, 3);
    int rc = tu_cuvae(out, sizeof out,
                      "train --data %s --epochs 1 --batch-size 16 --hidden 24 --latent 2 --likelihood gaussian "
                      "--sigma 0.5 --out %s/run --device cpu --quiet 2>&1",
                      t.data, t.dir);
    cr_assert_eq(rc, 0, "%s", out);
    /* sigma 1e-30: sigma^2 underflows to 0 in float, so the Gaussian's recon term is not finite */
    tu_st_rewrite_meta(t.model, "sigma", "1e-30");
    for (int json = 0; json < 2; json++) {
        rc = tu_cuvae(out, sizeof out, "eval --model %s --data %s --device cpu%s 2>&1", t.model, t.data,
                      json ? " --json" : "");
        cr_expect_eq(rc, 1, "eval%s: exit %d\n%s", json ? " --json" : "", rc, out);
        cr_expect(strstr(out, t.model) && (strstr(out, "is inf, not a number eval can report") ||
                                             strstr(out, "is NaN, not a number eval can report")),
                  "eval%s:\n%s", json ? " --json" : "", out);
        cr_expect(!strstr(out, "test loss -nan") && !strstr(out, "test loss inf") && !strstr(out, "\"loss\""),
                  "eval%s printed the result:\n%s", json ? " --json" : "", out);
    }
}

/* ---- finding 10: contradictory or sloppy metadata is refused ---- */

Test(hostile, contradictory_or_sloppy_metadata_is_refused)
{
    tiny t;
    tiny_run(&t);
    size_t len;
    char *model0 = tu_read_file(t.model, &len);
    static const struct {
        const char *key, *value, *needle;
    } cases[] = {
        {"activation", "tanh", "metadata 'architecture' describes another network"},
        {"likelihood", "gaussian", "metadata 'architecture' describes another network"},
        {"train.activation", "tanh", "metadata train.activation = 'tanh' contradicts activation = 'relu'"},
        {"train.hidden", "400", "metadata train.hidden = '400' contradicts hidden = '24'"},
        {"latent_dim", " 2", "metadata latent_dim = ' 2' is not a valid size (digits only)"},
        {"latent_dim", "+2", "metadata latent_dim = '+2' is not a valid size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_write_file(t.model, model0, len);
        if (strcmp(cases[i].key, "likelihood") == 0)
            tu_st_rewrite_meta(t.model, "sigma", "1");
        tu_st_rewrite_meta(t.model, cases[i].key, cases[i].value);
        int rc = tu_cuvae(out, sizeof out, "info --model %s 2>&1", t.model);
        cr_expect_eq(rc, 1, "%s = '%s': exit %d\n%s", cases[i].key, cases[i].value, rc, out);
        cr_expect(strstr(out, t.model) && strstr(out, cases[i].needle), "%s = '%s':\n%s", cases[i].key,
                  cases[i].value, out);
    }
    tu_write_file(t.model, model0, len);
    free(model0);

    /* an 8x8 model given 4x16 images: the same 64 pixels in another shape */
    char data[700], path[800];
    snprintf(data, sizeof data, "%s/wide", t.dir);
    mkdir(data, 0755);
    unsigned char b[16 + 30 * 64] = {0}, l[8 + 30] = {0};
    put_be32(b, 0x803);
    put_be32(b + 4, 30);
    put_be32(b + 8, 4);
    put_be32(b + 12, 16);
    put_be32(l, 0x801);
    put_be32(l + 4, 30);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", data);
    tu_write_file(path, b, sizeof b);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", data);
    tu_write_file(path, l, sizeof l);
    const char *cmds[] = {"eval", "encode --out %s/z.safetensors", "reconstruct --out %s/r.png"};
    for (int i = 0; i < 3; i++) {
        char c[900];
        snprintf(c, sizeof c, cmds[i], t.dir);
        int rc = tu_cuvae(out, sizeof out, "%s --model %s --data %s --device cpu 2>&1", c, t.model, data);
        cr_expect_eq(rc, 1, "%s: exit %d\n%s", c, rc, out);
        cr_expect(strstr(out, "the images are 4x16, but the model") && strstr(out, "was trained on 8x8 images") &&
                      strstr(out, data),
                  "%s:\n%s", c, out);
    }
}

/* ---- finding 11: a value from a model file is reported as the file's, not as a flag's ---- */

Test(hostile, model_metadata_values_are_named_by_file_and_key_not_by_flag)
{
    tiny t;
    tiny_run(&t);
    size_t len;
    char *model0 = tu_read_file(t.model, &len);
    static const struct {
        const char *key, *value, *needle;
    } cases[] = {
        {"beta", "1e39", "metadata beta = '1e39' is not a finite number >= 0"},
        {"beta", "-1", "metadata beta = '-1' is not a finite number >= 0"},
        {"latent_dim", "5000", "metadata latent_dim = '5000' is not a latent size in 1..4096"},
        {"hidden", "24x", "metadata hidden = '24x' is not a list of layer sizes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_write_file(t.model, model0, len);
        tu_st_rewrite_meta(t.model, cases[i].key, cases[i].value);
        int rc = tu_cuvae(out, sizeof out, "info --model %s 2>&1", t.model);
        cr_expect_eq(rc, 1, "%s = '%s': exit %d\n%s", cases[i].key, cases[i].value, rc, out);
        cr_expect(strstr(out, t.model) && strstr(out, cases[i].needle), "%s = '%s':\n%s", cases[i].key,
                  cases[i].value, out);
        cr_expect(!strstr(out, "--beta") && !strstr(out, "--latent") && !strstr(out, "--hidden"),
                  "%s = '%s': a file's value reported as a flag's:\n%s", cases[i].key, cases[i].value, out);
    }
    free(model0);
}

/* ---- finding 12: a batch larger than the data set is clamped to it, said once, recorded ---- */

Test(hostile, batch_larger_than_the_data_set_is_clamped_and_recorded)
{
    tiny t;
    snprintf(t.dir, sizeof t.dir, "%s", tu_tmpdir());
    snprintf(t.data, sizeof t.data, "%s/data", t.dir);
    snprintf(t.run, sizeof t.run, "%s/run", t.dir);
    snprintf(t.model, sizeof t.model, "%s/model.safetensors", t.run);
    mkdir(t.data, 0755);
    tu_write_patterns_idx(t.data, 120, 30, 3);
    /* 60000 rows of 64 pixels would be allocated for 120 images without the clamp */
    int rc = tu_cuvae(out, sizeof out,
                      "train --data %s --epochs 1 --batch-size 60000 --hidden 24 --latent 2 --out %s --device cpu "
                      "2>&1",
                      t.data, t.run);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "note: --batch-size 60000 is larger than the 120 training images: each epoch is one "
                          "batch of 120, recorded as --batch-size 120"),
              "no note on the clamp:\n%s", out);
    char *b = tu_st_meta(t.model, "train.batch_size");
    cr_expect(b && strcmp(b, "120") == 0, "train.batch_size recorded as '%s', not the 120 used", b ? b : "(none)");
    free(b);
    /* the resume takes the recorded batch (no second note); the original flag is a change it names */
    rc = tu_cuvae(out, sizeof out, "train --resume %s --epochs 2 2>&1", t.run);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(!strstr(out, "note: --batch-size"), "the resume clamped again:\n%s", out);
    rc = tu_cuvae(out, sizeof out, "train --resume %s --epochs 3 --batch-size 60000 2>&1", t.run);
    cr_expect_eq(rc, 2, "%s", out);
    cr_expect(strstr(out, "--batch-size 60000 (the run has 120)"), "%s", out);
}
