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
