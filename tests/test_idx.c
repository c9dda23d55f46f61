/*
 * test_idx.c: tests of the IDX reader (idx.h) and the data-set loader
 * (dataset.h). Good raw and gzip files must read back exactly; every kind of
 * bad file must give -1 and a message that names the file and the problem.
 * The real Fashion-MNIST (Debian's dataset-fashion-mnist) and the MNIST that
 * scripts/fetch_mnist.sh puts in data/mnist are loaded when present and the
 * tests are skipped, with the reason, when not.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "dataset.h"
#include "idx.h"
#include "testutil.h"
#include "vae_util.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers --------------------------------------------------------------- */

static char scratch[256]; /* this test's own directory */
static char path_buf[512];

static void scratch_init(void)
{
    snprintf(scratch, sizeof scratch, "%s", tu_tmpdir());
}

static void scratch_fini(void)
{
    char cmd[512], out[256];
    if (scratch[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
        tu_run(cmd, out, sizeof out);
    }
}

TestSuite(idx, .init = scratch_init, .fini = scratch_fini);
TestSuite(dataset, .init = scratch_init, .fini = scratch_fini);
/* No scratch directory: these may be skipped, and a skip does not run .fini. */
TestSuite(real_data);

/* scratch/name, in static storage valid until the next call. */
static const char *in_scratch(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", scratch, name);
    return path_buf;
}

/* An IDX image in memory: magic 00 00 type ndim, the dims big-endian, then
 * data_len bytes of `data`. Returns a malloc'ed buffer of *len bytes. */
static uint8_t *make_idx(int type, int ndim, const uint32_t *dims, const uint8_t *data, size_t data_len,
                         size_t *len)
{
    *len = 4 + 4 * (size_t)ndim + data_len;
    uint8_t *b = malloc(*len ? *len : 1);
    cr_assert_not_null(b);
    b[0] = 0;
    b[1] = 0;
    b[2] = (uint8_t)type;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        b[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (data_len)
        memcpy(b + 4 + 4 * ndim, data, data_len);
    return b;
}

/* Deterministic bytes: a splitmix-like stream from `seed`. */
static void fill_bytes(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        p[i] = (uint8_t)((z ^ (z >> 31)) >> 56);
    }
}

/* Write `n` bytes gzip-compressed to `path` with zlib. */
static void write_gz(const char *path, const void *bytes, size_t n)
{
    gzFile gz = gzopen(path, "wb9");
    cr_assert_not_null(gz, "gzopen(%s) failed", path);
    if (n)
        cr_assert_eq(gzwrite(gz, bytes, (unsigned)n), (int)n, "gzwrite(%s) failed", path);
    cr_assert_eq(gzclose(gz), Z_OK, "gzclose(%s) failed", path);
}

/* Reading `path` must fail with a message holding the path and `want`, and
 * must leave the output zeroed. */
static void expect_idx_error(const char *path, const char *want)
{
    vae_idx a;
    memset(&a, 0xab, sizeof a);
    int rc = vae_idx_read(path, &a);
    const char *msg = vae_last_error();
    cr_assert_eq(rc, -1, "vae_idx_read(%s) should fail (want '%s')", path, want);
    cr_assert(strncmp(msg, path, strlen(path)) == 0, "message does not start with the path %s: '%s'",
              path, msg);
    cr_assert(strstr(msg, want) != NULL, "message lacks '%s': '%s'", want, msg);
    cr_assert(a.data == NULL && a.ndim == 0 && a.count == 0, "output not zeroed after an error");
    vae_idx_free(&a);
}

/* Loading `dir` must fail with a message holding each of the non-NULL wants. */
static void expect_dataset_error(const char *dir, vae_split split, const char *want1, const char *want2,
                                 const char *want3)
{
    vae_dataset d;
    memset(&d, 0xab, sizeof d);
    int rc = vae_dataset_load(dir, split, &d);
    const char *msg = vae_last_error();
    cr_assert_eq(rc, -1, "vae_dataset_load(%s) should fail", dir);
    const char *wants[3] = {want1, want2, want3};
    for (int i = 0; i < 3; i++)
        if (wants[i])
            cr_assert(strstr(msg, wants[i]) != NULL, "message lacks '%s': '%s'", wants[i], msg);
    cr_assert(d.pixels == NULL && d.labels == NULL && d.n == 0, "output not zeroed after an error");
    vae_dataset_free(&d);
}

/* A good rank-3 file: 3 x 4 x 5 bytes. */
static const uint32_t good_dims[3] = {3, 4, 5};
#define GOOD_COUNT 60

static uint8_t *good_idx(size_t *len)
{
    uint8_t data[GOOD_COUNT];
    fill_bytes(data, sizeof data, 1);
    return make_idx(0x08, 3, good_dims, data, sizeof data, len);
}

static void check_good(const char *path)
{
    uint8_t want[GOOD_COUNT];
    fill_bytes(want, sizeof want, 1);
    vae_idx a;
    cr_assert_eq(vae_idx_read(path, &a), 0, "vae_idx_read(%s): %s", path, vae_last_error());
    cr_assert_eq(a.ndim, 3);
    cr_assert_eq(a.dims[0], 3);
    cr_assert_eq(a.dims[1], 4);
    cr_assert_eq(a.dims[2], 5);
    cr_assert_eq(a.dims[3], 0);
    cr_assert_eq(a.count, (size_t)GOOD_COUNT);
    cr_assert_arr_eq(a.data, want, GOOD_COUNT);
    vae_idx_free(&a);
    cr_assert_null(a.data);
    vae_idx_free(&a); /* twice is fine */
    vae_idx_free(NULL);
}

/* ---- good files ------------------------------------------------------------ */

Test(idx, good_raw)
{
    size_t n;
    uint8_t *b = good_idx(&n);
    tu_write_file(in_scratch("good"), b, n);
    check_good(in_scratch("good"));
    free(b);
}

Test(idx, good_gzip)
{
    size_t n;
    uint8_t *b = good_idx(&n);
    write_gz(in_scratch("good.gz"), b, n);
    check_good(in_scratch("good.gz"));
    free(b);
}

Test(idx, good_rank1_and_rank4)
{
    uint8_t data[12];
    fill_bytes(data, sizeof data, 2);
    size_t n;
    uint32_t d1[1] = {12};
    uint8_t *b = make_idx(0x08, 1, d1, data, 12, &n);
    write_gz(in_scratch("r1.gz"), b, n);
    free(b);
    uint32_t d4[4] = {2, 1, 3, 2};
    b = make_idx(0x08, 4, d4, data, 12, &n);
    tu_write_file(in_scratch("r4"), b, n);
    free(b);

    vae_idx a;
    cr_assert_eq(vae_idx_read(in_scratch("r1.gz"), &a), 0, "%s", vae_last_error());
    cr_assert_eq(a.ndim, 1);
    cr_assert_eq(a.dims[0], 12);
    cr_assert_eq(a.count, 12u);
    cr_assert_arr_eq(a.data, data, 12);
    vae_idx_free(&a);
    cr_assert_eq(vae_idx_read(in_scratch("r4"), &a), 0, "%s", vae_last_error());
    cr_assert_eq(a.ndim, 4);
    cr_assert(a.dims[0] == 2 && a.dims[1] == 1 && a.dims[2] == 3 && a.dims[3] == 2);
    cr_assert_eq(a.count, 12u);
    cr_assert_arr_eq(a.data, data, 12);
    vae_idx_free(&a);
}

Test(idx, good_gzip_large)
{
    /* Large enough for several zlib buffers; incompressible data. */
    uint32_t dims[3] = {7, 211, 223};
    size_t count = 7 * 211 * 223, n;
    uint8_t *data = malloc(count);
    fill_bytes(data, count, 3);
    uint8_t *b = make_idx(0x08, 3, dims, data, count, &n);
    write_gz(in_scratch("big.gz"), b, n);
    vae_idx a;
    cr_assert_eq(vae_idx_read(in_scratch("big.gz"), &a), 0, "%s", vae_last_error());
    cr_assert_eq(a.count, count);
    cr_assert(memcmp(a.data, data, count) == 0, "data differs");
    vae_idx_free(&a);
    free(b);
    free(data);
}

Test(idx, good_gzip_past_first_buffer)
{
    /* 80 MB: more than the reader's first 64 MiB buffer for gzip data, so the
     * buffer has to grow once. Mostly zeros, so the file stays small. */
    uint32_t dims[3] = {80, 1000, 1000};
    size_t count = 80u * 1000 * 1000, n;
    uint8_t *data = calloc(count, 1);
    cr_assert_not_null(data);
    for (size_t i = 0; i < count; i += 4099)
        data[i] = (uint8_t)(i / 4099);
    uint8_t *b = make_idx(0x08, 3, dims, data, count, &n);
    write_gz(in_scratch("grow.gz"), b, n);
    free(b);
    vae_idx a;
    cr_assert_eq(vae_idx_read(in_scratch("grow.gz"), &a), 0, "%s", vae_last_error());
    cr_assert_eq(a.count, count);
    cr_assert(memcmp(a.data, data, count) == 0, "data differs");
    vae_idx_free(&a);
    /* Cut after 70 MB of data, past the first buffer. */
    b = make_idx(0x08, 3, dims, data, 70u * 1000 * 1000, &n);
    write_gz(in_scratch("grow-cut.gz"), b, n);
    free(b);
    free(data);
    expect_idx_error(in_scratch("grow-cut.gz"), "truncated: expected 80000000 bytes of data, found 70000000");
}

/* ---- bad files ------------------------------------------------------------- */

Test(idx, missing_file)
{
    expect_idx_error(in_scratch("no-such-file"), "cannot open: No such file or directory");
}

Test(idx, directory_is_not_a_file)
{
    expect_idx_error(scratch, "not a regular file");
}

Test(idx, empty_file)
{
    tu_write_file(in_scratch("empty"), "", 0);
    expect_idx_error(in_scratch("empty"), "empty file");
    write_gz(in_scratch("empty.gz"), "", 0);
    expect_idx_error(in_scratch("empty.gz"), "empty file");
}

Test(idx, bad_magic)
{
    const uint8_t b[12] = {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0, 0, 0, 0};
    tu_write_file(in_scratch("magic"), b, sizeof b);
    expect_idx_error(in_scratch("magic"), "bad magic 0x12345678 (expected 0x0000080N)");
    /* A PNG signature is not IDX either. */
    const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    write_gz(in_scratch("png.gz"), png, sizeof png);
    expect_idx_error(in_scratch("png.gz"), "bad magic 0x89504E47");
}

Test(idx, short_header)
{
    const uint8_t b[3] = {0, 0, 8};
    tu_write_file(in_scratch("short"), b, sizeof b);
    expect_idx_error(in_scratch("short"), "truncated header: expected a 4-byte magic number, found 3 bytes");
    const uint8_t c[10] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0};
    tu_write_file(in_scratch("short-dims"), c, sizeof c);
    expect_idx_error(in_scratch("short-dims"), "truncated header: expected 3 dimension sizes (12 bytes), found 6");
}

Test(idx, unsupported_type)
{
    size_t n;
    uint32_t dims[1] = {4};
    const uint8_t data[16] = {0};
    uint8_t *b = make_idx(0x0D, 1, dims, data, 16, &n);
    tu_write_file(in_scratch("float"), b, n);
    free(b);
    expect_idx_error(in_scratch("float"),
                     "unsupported element type 0x0D (float32); cuvae reads unsigned-byte IDX only");
    b = make_idx(0x0C, 1, dims, data, 16, &n);
    write_gz(in_scratch("int.gz"), b, n);
    free(b);
    expect_idx_error(in_scratch("int.gz"), "unsupported element type 0x0C (int32)");
    b = make_idx(0x09, 1, dims, data, 4, &n);
    tu_write_file(in_scratch("sbyte"), b, n);
    free(b);
    expect_idx_error(in_scratch("sbyte"), "unsupported element type 0x09 (int8)");
}

Test(idx, unknown_type)
{
    size_t n;
    uint32_t dims[1] = {4};
    const uint8_t data[4] = {0};
    uint8_t *b = make_idx(0x07, 1, dims, data, 4, &n);
    tu_write_file(in_scratch("t07"), b, n);
    free(b);
    expect_idx_error(in_scratch("t07"), "unknown element type 0x07");
}

Test(idx, bad_rank)
{
    size_t n;
    const uint8_t data[1] = {0};
    uint8_t *b = make_idx(0x08, 0, NULL, data, 1, &n);
    tu_write_file(in_scratch("rank0"), b, n);
    free(b);
    expect_idx_error(in_scratch("rank0"), "rank 0 in magic 0x00000800 is not supported");
    uint32_t dims[5] = {1, 1, 1, 1, 1};
    b = make_idx(0x08, 5, dims, data, 1, &n);
    tu_write_file(in_scratch("rank5"), b, n);
    free(b);
    expect_idx_error(in_scratch("rank5"), "rank 5 in magic 0x00000805 is not supported");
}

Test(idx, zero_dimension)
{
    size_t n;
    uint32_t dims[3] = {3, 0, 5};
    uint8_t *b = make_idx(0x08, 3, dims, NULL, 0, &n);
    tu_write_file(in_scratch("zero"), b, n);
    free(b);
    expect_idx_error(in_scratch("zero"), "dimension 2 of 3 is zero (dimensions 3 x 0 x 5)");
}

Test(idx, oversized_dimensions)
{
    size_t n;
    /* The product overflows 32 and 64 bits. */
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    uint8_t *b = make_idx(0x08, 4, huge, NULL, 0, &n);
    tu_write_file(in_scratch("huge"), b, n);
    free(b);
    expect_idx_error(in_scratch("huge"), "dimensions 4294967295 x 4294967295 x 4294967295 x 4294967295 "
                                         "exceed the limit of 2147483647 bytes");
    /* 2^32 elements: fits size_t but not the cap. */
    uint32_t big[2] = {65536, 65536};
    b = make_idx(0x08, 2, big, NULL, 0, &n);
    write_gz(in_scratch("big.gz"), b, n);
    free(b);
    expect_idx_error(in_scratch("big.gz"), "dimensions 65536 x 65536 exceed the limit");
    /* One past the cap in a single dimension. */
    uint32_t one[1] = {0x80000000u};
    b = make_idx(0x08, 1, one, NULL, 0, &n);
    tu_write_file(in_scratch("one"), b, n);
    free(b);
    expect_idx_error(in_scratch("one"), "dimensions 2147483648 exceed the limit");
}

Test(idx, truncated_data_raw)
{
    size_t n;
    uint8_t *b = good_idx(&n);
    tu_write_file(in_scratch("trunc"), b, n - 10);
    free(b);
    expect_idx_error(in_scratch("trunc"), "truncated: expected 60 bytes of data, found 50");

    /* The largest claim allowed, with 5 bytes behind it. */
    uint32_t dims[1] = {0x7fffffffu};
    const uint8_t five[5] = {1, 2, 3, 4, 5};
    b = make_idx(0x08, 1, dims, five, 5, &n);
    tu_write_file(in_scratch("claim"), b, n);
    expect_idx_error(in_scratch("claim"), "truncated: expected 2147483647 bytes of data, found 5");
    write_gz(in_scratch("claim.gz"), b, n);
    expect_idx_error(in_scratch("claim.gz"), "truncated: expected 2147483647 bytes of data, found 5");
    free(b);
}

Test(idx, truncated_data_gzip)
{
    /* A complete gzip stream of a short IDX file. */
    size_t n;
    uint8_t *b = good_idx(&n);
    write_gz(in_scratch("trunc.gz"), b, n - 10);
    free(b);
    expect_idx_error(in_scratch("trunc.gz"), "truncated: expected 60 bytes of data, found 50");

    /* A gzip stream cut in the middle of the compressed data. */
    uint32_t dims[2] = {100, 300};
    uint8_t *data = malloc(30000);
    fill_bytes(data, 30000, 4);
    b = make_idx(0x08, 2, dims, data, 30000, &n);
    write_gz(in_scratch("full.gz"), b, n);
    free(b);
    free(data);
    size_t gz_len;
    uint8_t *gz = tu_read_file(in_scratch("full.gz"), &gz_len);
    tu_write_file(in_scratch("cut.gz"), gz, gz_len / 2);
    expect_idx_error(in_scratch("cut.gz"), "truncated: expected 30000 bytes of data, found ");
    cr_assert(strstr(vae_last_error(), "(gzip stream ends early)"), "%s", vae_last_error());

    /* Cut inside the 8-byte trailer: all data there, the CRC missing. */
    tu_write_file(in_scratch("cut-trailer.gz"), gz, gz_len - 3);
    expect_idx_error(in_scratch("cut-trailer.gz"), "truncated gzip stream");

    /* Cut inside the 10-byte gzip header. */
    tu_write_file(in_scratch("cut-header.gz"), gz, 5);
    expect_idx_error(in_scratch("cut-header.gz"), "truncated gzip stream: it ends before any data");
    free(gz);
}

Test(idx, trailing_bytes)
{
    size_t n;
    uint8_t *b = good_idx(&n);
    uint8_t *longer = calloc(n + 3, 1);
    memcpy(longer, b, n);
    tu_write_file(in_scratch("trail"), longer, n + 3);
    expect_idx_error(in_scratch("trail"), "3 trailing bytes after the data");
    write_gz(in_scratch("trail.gz"), longer, n + 3);
    expect_idx_error(in_scratch("trail.gz"), "3 trailing bytes after the data");
    free(longer);
    free(b);
}

Test(idx, corrupt_gzip)
{
    size_t n;
    uint8_t *b = good_idx(&n);
    write_gz(in_scratch("ok.gz"), b, n);
    free(b);
    size_t gz_len;
    uint8_t *gz = tu_read_file(in_scratch("ok.gz"), &gz_len);
    cr_assert_gt(gz_len, 18u);
    cr_assert(gz[0] == 0x1f && gz[1] == 0x8b && gz[3] == 0, "zlib wrote an unexpected gzip header");

    /* Deflate data starts after the 10-byte header: make its first block type 3 (invalid). */
    uint8_t *bad = malloc(gz_len);
    memcpy(bad, gz, gz_len);
    bad[10] |= 0x06;
    tu_write_file(in_scratch("blocktype.gz"), bad, gz_len);
    expect_idx_error(in_scratch("blocktype.gz"), "corrupt gzip stream: invalid block type");

    /* A wrong CRC in the trailer is only seen at the end. */
    memcpy(bad, gz, gz_len);
    bad[gz_len - 8] ^= 0xff;
    tu_write_file(in_scratch("crc.gz"), bad, gz_len);
    expect_idx_error(in_scratch("crc.gz"), "corrupt gzip stream: incorrect data check");

    /* An unknown compression method in the gzip header. */
    memcpy(bad, gz, gz_len);
    bad[2] = 7;
    tu_write_file(in_scratch("method.gz"), bad, gz_len);
    expect_idx_error(in_scratch("method.gz"), "corrupt gzip stream");
    cr_assert(strstr(vae_last_error(), "unknown compression method"), "%s", vae_last_error());
    free(bad);
    free(gz);
}

/* ---- data sets --------------------------------------------------------------- */

/* Write a split of `n` 2x3 images and `nlabels` labels into scratch: images
 * raw or .gz, labels raw or .gz. */
static void write_split(const char *prefix, int n, int nlabels, int images_gz, int labels_gz)
{
    char name[128];
    size_t len;
    uint8_t pixels[64 * 6], labels[64];
    cr_assert(n <= 64 && nlabels <= 64);
    fill_bytes(pixels, sizeof pixels, 5);
    for (int i = 0; i < 64; i++)
        labels[i] = (uint8_t)(i % 10);

    uint32_t idims[3] = {(uint32_t)n, 2, 3};
    uint8_t *b = make_idx(0x08, 3, idims, pixels, (size_t)n * 6, &len);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, images_gz ? ".gz" : "");
    if (images_gz)
        write_gz(in_scratch(name), b, len);
    else
        tu_write_file(in_scratch(name), b, len);
    free(b);

    uint32_t ldims[1] = {(uint32_t)nlabels};
    b = make_idx(0x08, 1, ldims, labels, (size_t)nlabels, &len);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, labels_gz ? ".gz" : "");
    if (labels_gz)
        write_gz(in_scratch(name), b, len);
    else
        tu_write_file(in_scratch(name), b, len);
    free(b);
}

Test(dataset, good_synthetic)
{
    write_split("train", 5, 5, 0, 1);
    write_split("t10k", 7, 7, 1, 0);
    uint8_t pixels[64 * 6];
    fill_bytes(pixels, sizeof pixels, 5);

    vae_dataset d;
    cr_assert_eq(vae_dataset_load(scratch, VAE_SPLIT_TRAIN, &d), 0, "%s", vae_last_error());
    cr_assert(d.n == 5 && d.rows == 2 && d.cols == 3 && d.dim == 6);
    cr_assert_arr_eq(d.pixels, pixels, 5 * 6);
    for (int i = 0; i < d.n; i++)
        cr_assert_eq(d.labels[i], i % 10);
    vae_dataset_free(&d);
    cr_assert_null(d.pixels);
    vae_dataset_free(&d);
    vae_dataset_free(NULL);

    cr_assert_eq(vae_dataset_load(scratch, VAE_SPLIT_TEST, &d), 0, "%s", vae_last_error());
    cr_assert(d.n == 7 && d.rows == 2 && d.cols == 3 && d.dim == 6);
    cr_assert_arr_eq(d.pixels, pixels, 7 * 6);
    vae_dataset_free(&d);
}

Test(dataset, raw_preferred_over_gz)
{
    write_split("train", 5, 5, 0, 0);
    /* A broken .gz next to a good raw file is never opened. */
    tu_write_file(in_scratch("train-images-idx3-ubyte.gz"), "garbage", 7);
    tu_write_file(in_scratch("train-labels-idx1-ubyte.gz"), "garbage", 7);
    vae_dataset d;
    cr_assert_eq(vae_dataset_load(scratch, VAE_SPLIT_TRAIN, &d), 0, "%s", vae_last_error());
    cr_assert_eq(d.n, 5);
    vae_dataset_free(&d);
}

Test(dataset, label_count_mismatch)
{
    write_split("t10k", 9, 10, 0, 0);
    char labels[512], images[512];
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", scratch);
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", scratch);
    expect_dataset_error(scratch, VAE_SPLIT_TEST, labels, "10 labels for 9 images in ", images);
}

Test(dataset, missing_directory)
{
    const char *dir = in_scratch("nowhere");
    expect_dataset_error(dir, VAE_SPLIT_TRAIN, dir, "train-images-idx3-ubyte", "scripts/fetch_mnist.sh");
    cr_assert(strstr(vae_last_error(), "train-labels-idx1-ubyte"), "%s", vae_last_error());
    cr_assert(strstr(vae_last_error(), "No such file or directory"), "%s", vae_last_error());
    expect_dataset_error(dir, VAE_SPLIT_TEST, dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
}

Test(dataset, missing_files)
{
    expect_dataset_error(scratch, VAE_SPLIT_TRAIN, scratch, "missing train-images-idx3-ubyte and train-labels-idx1-ubyte",
                         "scripts/fetch_mnist.sh");
    write_split("train", 5, 5, 1, 1);
    cr_assert_eq(remove(in_scratch("train-labels-idx1-ubyte.gz")), 0);
    expect_dataset_error(scratch, VAE_SPLIT_TRAIN, scratch, "missing train-labels-idx1-ubyte;",
                         "scripts/fetch_mnist.sh");
    /* A file in place of the directory. */
    expect_dataset_error(in_scratch("train-images-idx3-ubyte.gz"), VAE_SPLIT_TRAIN, "not a directory",
                         "scripts/fetch_mnist.sh", NULL);
}

Test(dataset, wrong_ranks)
{
    size_t len;
    uint8_t data[6] = {0};
    uint32_t d1[1] = {6}, d2[2] = {1, 1};
    uint8_t *b = make_idx(0x08, 1, d1, data, 6, &len);
    tu_write_file(in_scratch("train-images-idx3-ubyte"), b, len);
    free(b);
    b = make_idx(0x08, 1, d1, data, 6, &len);
    tu_write_file(in_scratch("train-labels-idx1-ubyte"), b, len);
    free(b);
    expect_dataset_error(scratch, VAE_SPLIT_TRAIN, "train-images-idx3-ubyte: images must have rank 3",
                         "found rank 1", NULL);

    write_split("t10k", 1, 1, 0, 0);
    b = make_idx(0x08, 2, d2, data, 1, &len);
    tu_write_file(in_scratch("t10k-labels-idx1-ubyte"), b, len);
    free(b);
    expect_dataset_error(scratch, VAE_SPLIT_TEST, "t10k-labels-idx1-ubyte: labels must have rank 1",
                         "found rank 2", NULL);
}

Test(dataset, bad_file_inside)
{
    write_split("train", 5, 5, 0, 1);
    size_t len;
    uint8_t *gz = tu_read_file(in_scratch("train-labels-idx1-ubyte.gz"), &len);
    tu_write_file(in_scratch("train-labels-idx1-ubyte.gz"), gz, len - 12);
    free(gz);
    char labels[512];
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz: ", scratch);
    expect_dataset_error(scratch, VAE_SPLIT_TRAIN, labels, "truncated", NULL);
}

/* ---- real data ----------------------------------------------------------------- */

/* Checks every real 28x28 ten-class split must pass. */
static void check_real(const vae_dataset *d, const char *what)
{
    cr_assert(d->rows == 28 && d->cols == 28 && d->dim == 784, "%s: %dx%d images", what, d->rows, d->cols);
    int per_class[10] = {0};
    for (int i = 0; i < d->n; i++) {
        cr_assert_lt(d->labels[i], 10, "%s: label %d of image %d", what, d->labels[i], i);
        per_class[d->labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        cr_assert_gt(per_class[c], d->n / 20, "%s: only %d images of class %d", what, per_class[c], c);
    double sum = 0;
    int max = 0;
    for (size_t i = 0; i < (size_t)d->n * 784; i++) {
        sum += d->pixels[i];
        if (d->pixels[i] > max)
            max = d->pixels[i];
    }
    double mean = sum / ((double)d->n * 784);
    cr_assert(max == 255 && mean > 20 && mean < 110, "%s: implausible pixels (max %d, mean %.1f)", what, max, mean);
}

Test(real_data, fashion_mnist)
{
    struct stat st;
    if (stat(FASHION_DIR "/t10k-images-idx3-ubyte.gz", &st) != 0)
        cr_skip_test("Fashion-MNIST not installed in " FASHION_DIR " (apt-get install dataset-fashion-mnist)");
    vae_dataset d;
    cr_assert_eq(vae_dataset_load(FASHION_DIR, VAE_SPLIT_TEST, &d), 0, "%s", vae_last_error());
    cr_assert_eq(d.n, 10000);
    check_real(&d, "fashion-mnist test");
    int per_class[10] = {0};
    for (int i = 0; i < d.n; i++)
        per_class[d.labels[i]]++;
    for (int c = 0; c < 10; c++)
        cr_assert_eq(per_class[c], 1000, "fashion-mnist test: class %d has %d images", c, per_class[c]);
    vae_dataset_free(&d);

    cr_assert_eq(vae_dataset_load(FASHION_DIR, VAE_SPLIT_TRAIN, &d), 0, "%s", vae_last_error());
    cr_assert_eq(d.n, 60000);
    check_real(&d, "fashion-mnist train");
    vae_dataset_free(&d);
}

Test(real_data, mnist_from_fetch_script)
{
    const char *dir = CUVAE_SOURCE_DIR "/data/mnist";
    struct stat st;
    if (stat(dir, &st) != 0)
        cr_skip_test("%s absent; run scripts/fetch_mnist.sh to fetch MNIST", dir);

    /* SOURCE.txt says which data set the script fetched. */
    int want_train = 0, want_test = 0;
    FILE *f = fopen(CUVAE_SOURCE_DIR "/data/mnist/SOURCE.txt", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strstr(line, "npm-subset"))
                want_train = 9000, want_test = 1000;
            if (strstr(line, "full-mnist"))
                want_train = 60000, want_test = 10000;
        }
        fclose(f);
    }
    vae_dataset d;
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TRAIN, &d), 0, "%s", vae_last_error());
    if (want_train)
        cr_assert_eq(d.n, want_train);
    check_real(&d, "mnist train");
    vae_dataset_free(&d);
    cr_assert_eq(vae_dataset_load(dir, VAE_SPLIT_TEST, &d), 0, "%s", vae_last_error());
    if (want_test)
        cr_assert_eq(d.n, want_test);
    check_real(&d, "mnist test");
    vae_dataset_free(&d);
}

/* zlib's gzread ignores whatever follows the last gzip member when it is not
 * another member; the reader refuses it. Concatenated members are one file. */
Test(idx, bytes_after_the_gzip_member)
{
    size_t n, gz_len;
    uint8_t *b = good_idx(&n);
    write_gz(in_scratch("one.gz"), b, n);
    uint8_t *gz = tu_read_file(in_scratch("one.gz"), &gz_len);
    uint8_t *longer = malloc(gz_len + 2 * n + 8192);
    cr_assert_not_null(longer);

    memcpy(longer, gz, gz_len);
    memcpy(longer + gz_len, "hello", 5);
    tu_write_file(in_scratch("garbage.gz"), longer, gz_len + 5);
    expect_idx_error(in_scratch("garbage.gz"), "5 trailing bytes after the end of the gzip stream");

    longer[gz_len] = 0x1f; /* a lone first byte of a gzip magic */
    tu_write_file(in_scratch("half-magic.gz"), longer, gz_len + 1);
    expect_idx_error(in_scratch("half-magic.gz"), "ends inside a member");

    memset(longer + gz_len, 0, 4096); /* zero padding, as some tools leave */
    tu_write_file(in_scratch("zeros.gz"), longer, gz_len + 4096);
    expect_idx_error(in_scratch("zeros.gz"), "4096 trailing bytes after the end of the gzip stream");

    /* The same bytes split over two members read back whole. */
    write_gz(in_scratch("part1.gz"), b, 7);
    write_gz(in_scratch("part2.gz"), b + 7, n - 7);
    size_t l1, l2;
    uint8_t *p1 = tu_read_file(in_scratch("part1.gz"), &l1), *p2 = tu_read_file(in_scratch("part2.gz"), &l2);
    memcpy(longer, p1, l1);
    memcpy(longer + l1, p2, l2);
    tu_write_file(in_scratch("two-members.gz"), longer, l1 + l2);
    check_good(in_scratch("two-members.gz"));
    free(p1);
    free(p2);
    free(longer);
    free(gz);
    free(b);
}
