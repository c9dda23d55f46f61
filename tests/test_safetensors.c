/*
 * test_safetensors.c: the safetensors reader and writer (src/safetensors.c).
 *
 * Round trips through our own writer, files built byte by byte the way
 * Python's safetensors writes them, and one test per kind of corrupt file:
 * every corruption must give -1 and a message that starts with the path,
 * never a crash (run these under ASan/UBSan and valgrind too).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "testutil.h"
#include "vae_util.h"

/* ---- helpers -------------------------------------------------------------- */

/* Write a safetensors file by hand: 8-byte little-endian length, the header
 * (padded with spaces to a multiple of 8 bytes when pad is set), the data. */
static void write_raw(const char *path, const char *header, int pad, const void *data, size_t data_len)
{
    size_t hlen = strlen(header);
    size_t padded = pad ? (hlen + 7) / 8 * 8 : hlen;
    size_t total = 8 + padded + data_len;
    uint8_t *buf = malloc(total + 1);
    cr_assert(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    if (data_len)
        memcpy(buf + 8 + padded, data, data_len);
    tu_write_file(path, buf, total);
    free(buf);
}

/* Reading path must fail with a message that starts with the path and
 * contains needle (when given), and leave the struct empty. */
static void expect_read_fails(const char *path, const char *needle)
{
    vae_safetensors st;
    memset(&st, 0xAB, sizeof st);
    int rc = vae_safetensors_read(path, &st);
    const char *msg = vae_last_error();
    cr_assert_eq(rc, -1, "reading %s should fail", path);
    cr_assert_eq(strncmp(msg, path, strlen(path)), 0, "message does not start with the path: %s", msg);
    if (needle)
        cr_assert(strstr(msg, needle), "message lacks \"%s\": %s", needle, msg);
    cr_assert_eq(st.n_tensors, 0);
    cr_assert_null(st.tensors);
    cr_assert_null(st.blob);
    cr_assert_null(st.meta);
}

/* Build header+data by hand and expect the read to fail with needle. */
static void expect_raw_fails(const char *header, const void *data, size_t data_len, const char *needle)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "bad.safetensors");
    write_raw(path, header, 1, data, data_len);
    expect_read_fails(path, needle);
}

static const float data16[4] = {1.0f, -2.5f, 3.25f, 1e-30f};

/* ---- round trips ---------------------------------------------------------- */

Test(safetensors, round_trip)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "model.safetensors");

    float w[3 * 5], b[7], s[1] = {42.0f}, conv[2 * 3 * 4 * 5];
    tu_fill_uniform(w, 15, 1, -1, 1);
    tu_fill_uniform(b, 7, 2, -1, 1);
    tu_fill_uniform(conv, 120, 3, -100, 100);
    b[0] = -0.0f;
    const vae_st_tensor_in t[] = {
        {"enc.w", 2, {3, 5}, w},
        {"enc.b", 1, {7}, b},
        {"scalar", 0, {0}, s},
        {"w\xc3\xa9ights/\xe2\x9c\x93", 4, {2, 3, 4, 5}, conv},
        {"empty", 2, {0, 3}, NULL},
    };
    const vae_st_meta meta[] = {
        {"format", "pt"},
        {"escapes", "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f ctl\x01\x1f end"},
        {"unicode \xe2\x88\x91", "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"},
        {"", "empty key"},
    };
    cr_assert_eq(vae_safetensors_write(path, t, 5, meta, 4), 0, "%s", vae_last_error());

    /* header padded so the buffer starts at a multiple of 8 */
    size_t len;
    uint8_t *raw = tu_read_file(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)raw[i] << (8 * i);
    cr_assert_eq(hlen % 8, 0);
    cr_assert_eq(len, 8 + hlen + (15 + 7 + 1 + 120) * 4);
    cr_assert_eq(raw[8], '{');
    free(raw);

    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(st.n_tensors, 5);
    cr_assert_eq(st.n_meta, 4);
    for (int k = 0; k < 5; k++) {
        const vae_st_tensor *r = &st.tensors[k];
        cr_assert_str_eq(r->name, t[k].name, "tensors keep their order");
        cr_assert_str_eq(r->dtype, "F32");
        cr_assert_eq(r->ndim, t[k].ndim);
        size_t count = 1;
        for (int d = 0; d < r->ndim; d++) {
            cr_assert_eq(r->shape[d], t[k].shape[d]);
            count *= (size_t)t[k].shape[d];
        }
        cr_assert_eq(r->nbytes, count * 4);
        cr_assert_eq((uintptr_t)r->data % 4, 0);
        if (count)
            cr_assert_eq(memcmp(r->data, t[k].data, count * 4), 0, "tensor %s differs", r->name);
        cr_assert_eq(vae_safetensors_find(&st, t[k].name), r);
    }
    cr_assert_eq(((const float *)vae_safetensors_find(&st, "scalar")->data)[0], 42.0f);
    for (int k = 0; k < 4; k++) {
        const char *v = vae_safetensors_meta_get(&st, meta[k].key);
        cr_assert(v, "metadata %s missing", meta[k].key);
        cr_assert_str_eq(v, meta[k].value);
    }
    cr_assert_null(vae_safetensors_find(&st, "absent"));
    cr_assert_null(vae_safetensors_meta_get(&st, "absent"));
    vae_safetensors_free(&st);
    cr_assert_eq(st.n_tensors, 0);
    cr_assert_null(st.blob);
    vae_safetensors_free(&st); /* twice is harmless */
}

Test(safetensors, empty_file_round_trip)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "empty.safetensors");
    cr_assert_eq(vae_safetensors_write(path, NULL, 0, NULL, 0), 0, "%s", vae_last_error());
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(st.n_tensors, 0);
    cr_assert_eq(st.n_meta, 0);
    cr_assert_eq(st.blob_size, 0);
    vae_safetensors_free(&st);
}

/* A file as Python's safetensors writes it: metadata first, header padded
 * with spaces, little-endian data; names with \u escapes. */
Test(safetensors, python_style_file)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "py.safetensors");
    uint8_t data[8 + 8 + 2 + 4];
    float a[2] = {0.5f, -1.0f};
    int64_t i64 = -3;
    memcpy(data, a, 8);
    memcpy(data + 8, &i64, 8); /* the test host is little-endian, like the format */
    data[16] = 0x80, data[17] = 0x3f; /* BF16 1.0 */
    data[18] = 1, data[19] = 0, data[20] = 1, data[21] = 1; /* BOOL */
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"\\u00e9\\ud83d\\ude00\\/\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\\u00e9\": {\"dtype\": \"I64\", \"shape\": [1, 1], \"data_offsets\": [8, 16]},\n"
        "\t\"c\":{\"shape\":[],\"dtype\":\"BF16\",\"data_offsets\":[16,18]},"
        "\"d\":{\"data_offsets\":[18,22],\"dtype\":\"BOOL\",\"shape\":[2,2]}}";
    cr_assert_neq(strlen(header) % 8, 0, "the test should exercise padding");
    write_raw(path, header, 1, data, sizeof data);

    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(st.n_tensors, 4);
    cr_assert_str_eq(vae_safetensors_meta_get(&st, "format"), "pt");
    cr_assert_str_eq(vae_safetensors_meta_get(&st, "note"), "\xc3\xa9\xf0\x9f\x98\x80/");
    const vae_st_tensor *ta = vae_safetensors_find(&st, "a");
    cr_assert(ta);
    cr_assert_eq(((const float *)ta->data)[0], 0.5f);
    cr_assert_eq(((const float *)ta->data)[1], -1.0f);
    const vae_st_tensor *tb = vae_safetensors_find(&st, "b\xc3\xa9");
    cr_assert(tb);
    cr_assert_str_eq(tb->dtype, "I64");
    cr_assert_eq(tb->ndim, 2);
    cr_assert_eq(tb->nbytes, 8);
    cr_assert_eq(((const int64_t *)tb->data)[0], -3);
    const vae_st_tensor *tc = vae_safetensors_find(&st, "c");
    cr_assert_str_eq(tc->dtype, "BF16");
    cr_assert_eq(tc->ndim, 0);
    cr_assert_eq(tc->nbytes, 2);
    cr_assert_eq(((const uint16_t *)tc->data)[0], 0x3f80);
    const vae_st_tensor *td = vae_safetensors_find(&st, "d");
    cr_assert_str_eq(td->dtype, "BOOL");
    cr_assert_eq(td->nbytes, 4);
    cr_assert_eq(memcmp(td->data, data + 18, 4), 0);
    vae_safetensors_free(&st);
}

Test(safetensors, all_dtypes_sizes)
{
    static const struct { const char *name; size_t size; } dt[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
        {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
    };
    for (size_t k = 0; k < sizeof dt / sizeof dt[0]; k++) {
        cr_assert_eq(vae_safetensors_dtype_size(dt[k].name), dt[k].size, "%s", dt[k].name);
        char header[256], path[512];
        snprintf(header, sizeof header, "{\"x\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}",
                 dt[k].name, 3 * dt[k].size);
        tu_join(path, sizeof path, tu_tmpdir(), "dt.safetensors");
        uint8_t data[24] = {0};
        write_raw(path, header, 1, data, 3 * dt[k].size);
        vae_safetensors st;
        cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s: %s", dt[k].name, vae_last_error());
        cr_assert_str_eq(st.tensors[0].dtype, dt[k].name);
        cr_assert_eq(st.tensors[0].nbytes, 3 * dt[k].size);
        cr_assert_eq((uintptr_t)st.tensors[0].data % dt[k].size, 0);
        vae_safetensors_free(&st);
    }
    cr_assert_eq(vae_safetensors_dtype_size("F128"), 0);
    cr_assert_eq(vae_safetensors_dtype_size("f32"), 0);
}

/* An F32 tensor at an odd offset is handed out aligned, with the right values. */
Test(safetensors, unaligned_tensor_is_realigned)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "odd.safetensors");
    uint8_t data[1 + 8];
    float v[2] = {3.5f, -7.25f};
    data[0] = 9;
    memcpy(data + 1, v, 8);
    write_raw(path,
              "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}",
              1, data, sizeof data);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    const vae_st_tensor *f = vae_safetensors_find(&st, "f");
    cr_assert_eq((uintptr_t)f->data % 4, 0);
    cr_assert_eq(((const float *)f->data)[0], 3.5f);
    cr_assert_eq(((const float *)f->data)[1], -7.25f);
    cr_assert_eq(((const uint8_t *)vae_safetensors_find(&st, "u")->data)[0], 9);
    cr_assert_eq(st.blob_size, 9);
    vae_safetensors_free(&st);
}

/* Zero-size tensors may sit anywhere in the buffer, also between others. */
Test(safetensors, zero_size_tensors)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "zero.safetensors");
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              1, data16, 8);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(vae_safetensors_find(&st, "z")->nbytes, 0);
    vae_safetensors_free(&st);
}

/* ---- corrupt files -------------------------------------------------------- */

Test(safetensors, every_prefix_fails)
{
    const char *dir = tu_tmpdir();
    char good[512], cut[512];
    tu_join(good, sizeof good, dir, "good.safetensors");
    tu_join(cut, sizeof cut, dir, "cut.safetensors");
    float x[6] = {1, 2, 3, 4, 5, 6};
    const vae_st_tensor_in t[] = {{"x", 2, {2, 3}, x}, {"y", 1, {2}, x}};
    const vae_st_meta meta[] = {{"k", "v\xc3\xa9"}};
    cr_assert_eq(vae_safetensors_write(good, t, 2, meta, 1), 0, "%s", vae_last_error());
    size_t len;
    uint8_t *raw = tu_read_file(good, &len);
    for (size_t n = 0; n < len; n++) {
        tu_write_file(cut, raw, n);
        expect_read_fails(cut, NULL);
    }
    tu_write_file(cut, raw, len);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(cut, &st), 0, "%s", vae_last_error());
    vae_safetensors_free(&st);
    free(raw);
}

/* Seeded random byte changes in a valid file: each read either fails with a
 * message naming the path or succeeds with tensors that lie inside the
 * buffer. Meant to be run under ASan/UBSan and valgrind as well. */
Test(safetensors, random_corruptions_never_crash)
{
    const char *dir = tu_tmpdir();
    char good[512], bad[512];
    tu_join(good, sizeof good, dir, "good.safetensors");
    tu_join(bad, sizeof bad, dir, "bad.safetensors");
    float x[6] = {1, 2, 3, 4, 5, 6};
    const vae_st_tensor_in t[] = {{"x", 2, {2, 3}, x}, {"y", 1, {2}, x}, {"z", 0, {0}, x}};
    const vae_st_meta meta[] = {{"k", "v\xc3\xa9"}, {"n", "12"}};
    cr_assert_eq(vae_safetensors_write(good, t, 3, meta, 2), 0, "%s", vae_last_error());
    size_t len;
    uint8_t *raw = tu_read_file(good, &len);
    uint8_t *mut = malloc(len);
    cr_assert(mut);
    static const uint8_t interesting[] = {'{', '}', '[', ']', '"', ':', ',', '\\', '-', '0', '9', 'e',
                                          '.', ' ', 0, 0x80, 0xff, 'u'};
    uint64_t s = 0x5eed;
    int ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(mut, raw, len);
        float r;
        tu_fill_uniform(&r, 1, s++, 0, 3);
        int changes = 1 + (int)r;
        for (int c = 0; c < changes; c++) {
            float u[2];
            tu_fill_uniform(u, 2, s++, 0, 1);
            size_t at = (size_t)(u[0] * (float)len) % len;
            size_t pick = (size_t)(u[1] * (float)(sizeof interesting + 1));
            mut[at] = pick < sizeof interesting ? interesting[pick] : (uint8_t)(mut[at] ^ (1u << (at % 8)));
        }
        tu_write_file(bad, mut, len);
        vae_safetensors st;
        if (vae_safetensors_read(bad, &st) != 0) {
            cr_assert_eq(strncmp(vae_last_error(), bad, strlen(bad)), 0, "%s", vae_last_error());
            continue;
        }
        ok++;
        size_t sum = 0;
        for (int k = 0; k < st.n_tensors; k++) {
            const vae_st_tensor *e = &st.tensors[k];
            cr_assert((const uint8_t *)e->data >= (const uint8_t *)st.blob);
            cr_assert_eq((uintptr_t)e->data % vae_safetensors_dtype_size(e->dtype), 0);
            sum += e->nbytes;
        }
        cr_assert_eq(sum, st.blob_size, "tensors cover the buffer exactly");
        vae_safetensors_free(&st);
    }
    cr_assert(ok > 0 && ok < 3000, "%d of 3000 changed files were accepted", ok);
    free(mut);
    free(raw);
}

Test(safetensors, file_too_small)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "small.safetensors");
    tu_write_file(path, "\x02\0\0\0", 4);
    expect_read_fails(path, "too small");
}

Test(safetensors, header_length_huge)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "huge.safetensors");
    uint8_t buf[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    tu_write_file(path, buf, sizeof buf);
    expect_read_fails(path, "limit");
    /* 200 MB: over the limit, whatever the file size */
    uint64_t n = 200ull * 1000 * 1000;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    tu_write_file(path, buf, sizeof buf);
    expect_read_fails(path, "limit");
    /* under the limit but larger than the file */
    n = 9;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    tu_write_file(path, buf, sizeof buf);
    expect_read_fails(path, "larger than the rest of the file");
}

Test(safetensors, invalid_json)
{
    static const struct { const char *header; const char *needle; } cases[] = {
        {"", "must be a JSON object"},
        {"[1,2]", "must be a JSON object"},
        {" {}", "must be a JSON object"},
        {"{", "string or '}' expected"},
        {"{\"a\"", "':' expected"},
        {"{\"a\" 1}", "':' expected"},
        {"{\"a\":}", "unexpected token"},
        {"{\"a\":{\"dtype\":\"F32\"", "'}' expected"},
        {"{\"a\":[1 2]}", "']' expected"},
        {"{\"a\":[1,]}", "unexpected token"},
        {"{,}", "string or '}' expected"},
        {"{a:1}", "string or '}' expected"},
        {"{\"a\":01}", "invalid token near '0'"},
        {"{\"a\":-}", "invalid token"},
        {"{\"a\":1.}", "invalid token"},
        {"{\"a\":1e}", "invalid token"},
        {"{\"a\":99999999999999999999}", "too big integer"},
        {"{\"a\":tru}", "invalid token"},
        {"{\"a\":nul}", "invalid token"},
        {"{\"a\":'x'}", "invalid token"},
        {"{\"a\":\"x}", "premature end of input"},
        {"{\"a\":\"\\x\"}", "invalid escape"},
        {"{\"a\":\"\\u12\"}", "invalid escape"},
        {"{\"a\":\"\\u12G4\"}", "invalid escape"},
        {"{\"a\":\"\\ud800\"}", "invalid Unicode '\\uD800"},
        {"{\"a\":\"\\ud800\\u0041\"}", "invalid Unicode '\\uD800"},
        {"{\"a\":\"\\udc00\"}", "invalid Unicode '\\uDC00'"},
        {"{\"a\":\"\\u0000\"}", "\\u0000 is not allowed"},
        {"{\"a\":\"tab\there\"}", "control character"},
        {"{\"a\":\"\xc3\"}", "unable to decode byte"},
        {"{\"a\":\"\xc0\xaf\"}", "unable to decode byte"},         /* overlong '/' */
        {"{\"a\":\"\xed\xa0\x80\"}", "unable to decode byte"},     /* encoded surrogate */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", "unable to decode byte"}, /* above U+10FFFF */
        {"{\"a\":\"\xff\"}", "unable to decode byte"},
        {"{} x", "end of file expected"},
        {"{}{}", "end of file expected"},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", "']' expected"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[512];
        tu_join(path, sizeof path, tu_tmpdir(), "json.safetensors");
        write_raw(path, cases[k].header, 1, NULL, 0);
        vae_safetensors st;
        cr_assert_eq(vae_safetensors_read(path, &st), -1, "case %zu should fail: %s", k, cases[k].header);
        const char *msg = vae_last_error();
        cr_assert_eq(strncmp(msg, path, strlen(path)), 0, "case %zu: %s", k, msg);
        cr_assert(strstr(msg, "at byte"), "case %zu: no byte offset: %s", k, msg);
        cr_assert(strstr(msg, cases[k].needle), "case %zu (%s): wanted \"%s\", got: %s", k,
                  cases[k].header, cases[k].needle, msg);
    }
}

Test(safetensors, invalid_json_byte_offset)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "off.safetensors");
    write_raw(path, "{\"a\":  @}", 1, NULL, 0);
    /* jansson's position: the byte just past the offending token '@' (at 7) */
    expect_read_fails(path, "at byte 8:");
}

Test(safetensors, unknown_dtype)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", data16, 16,
                     "unknown dtype \"F128\"");
    expect_raw_fails("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data16, 4,
                     "unknown dtype");
}

Test(safetensors, wrong_dtype_size)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data16, 8,
                     "needs 12 bytes");
    expect_raw_fails("{\"a\":{\"dtype\":\"F64\",\"shape\":[2,1],\"data_offsets\":[0,8]}}", data16, 8,
                     "needs 16 bytes");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                     "\"data_offsets\":[0,8]}}", data16, 8, "too large");
}

Test(safetensors, offsets_out_of_range)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}", data16, 16,
                     "run past the end");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", data16, 8,
                     "end before they begin");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", data16, 4,
                     "non-negative");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", data16, 4,
                     "two integers");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", data16, 4,
                     "two integers");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                     "\"data_offsets\":[9223372036854775804,9223372036854775807]}}", data16, 4,
                     "run past the end");
}

Test(safetensors, overlapping_tensors)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data16, 12,
                     "overlap");
    /* the same range twice */
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data16, 8,
                     "overlap");
}

Test(safetensors, hole_in_buffer)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", data16, 12,
                     "belong to no tensor");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data16, 8,
                     "bytes [0, 4)");
}

Test(safetensors, trailing_bytes)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data16, 8,
                     "4 trailing bytes");
    expect_raw_fails("{}", data16, 1, "1 trailing bytes");
}

Test(safetensors, metadata_must_be_strings)
{
    expect_raw_fails("{\"__metadata__\":{\"k\":1}}", NULL, 0, "must be a string, found an integer");
    expect_raw_fails("{\"__metadata__\":{\"k\":true}}", NULL, 0, "must be a string, found a boolean");
    expect_raw_fails("{\"__metadata__\":{\"k\":null}}", NULL, 0, "must be a string, found null");
    expect_raw_fails("{\"__metadata__\":{\"k\":[\"v\"]}}", NULL, 0, "must be a string, found an array");
    expect_raw_fails("{\"__metadata__\":{\"k\":{}}}", NULL, 0, "must be a string, found an object");
    expect_raw_fails("{\"__metadata__\":{\"k\":1.5}}", NULL, 0, "must be a string, found a number");
    expect_raw_fails("{\"__metadata__\":\"x\"}", NULL, 0, "__metadata__ must be an object");
}

Test(safetensors, duplicate_keys)
{
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data16, 8,
                     "duplicate object key near '\"a\"'");
    /* \u escapes decode before the comparison */
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data16, 8,
                     "duplicate object key");
    expect_raw_fails("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0, "duplicate object key near '\"k\"'");
    expect_raw_fails("{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0, "duplicate object key");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                     data16, 4, "duplicate object key near '\"dtype\"'");
}

Test(safetensors, bad_tensor_entries)
{
    expect_raw_fails("{\"a\":1}", NULL, 0, "must be an object, found an integer");
    expect_raw_fails("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", data16, 4, "lacks \"dtype\"");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", data16, 4, "lacks \"shape\"");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", data16, 4, "lacks \"data_offsets\"");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", data16, 4,
                     "unknown field \"x\"");
    expect_raw_fails("{\"a\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}}", data16, 4,
                     "dtype must be a string, found null");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", data16, 4,
                     "shape must be an array");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data16, 4,
                     "negative integer");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", data16, 4,
                     "found a number with a fraction");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]}}", data16, 4,
                     "found a boolean");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                     data16, 4, "9 dimensions");
    expect_raw_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4e0]}}", data16, 4,
                     "non-negative integers, found a number");
}

Test(safetensors, missing_or_odd_paths)
{
    const char *dir = tu_tmpdir();
    char path[512];
    tu_join(path, sizeof path, dir, "nope.safetensors");
    expect_read_fails(path, "cannot open");
    expect_read_fails(dir, "not a regular file");
}

/* ---- writing -------------------------------------------------------------- */

static int dir_entries(const char *dir, char names[][64], int cap)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n < cap)
            snprintf(names[n], 64, "%.63s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

Test(safetensors, atomic_write_leaves_no_tmp)
{
    const char *dir = tu_tmpdir();
    char path[512], names[4][64];
    tu_join(path, sizeof path, dir, "ckpt.safetensors");
    float x[3] = {1, 2, 3}, y[3] = {4, 5, 6};
    vae_st_tensor_in t = {"x", 1, {3}, x};
    cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), 0, "%s", vae_last_error());
    cr_assert_eq(dir_entries(dir, names, 4), 1);
    cr_assert_str_eq(names[0], "ckpt.safetensors");
    /* overwriting replaces the file */
    t.data = y;
    cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), 0, "%s", vae_last_error());
    cr_assert_eq(dir_entries(dir, names, 4), 1);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(((const float *)st.tensors[0].data)[2], 6.0f);
    vae_safetensors_free(&st);
    /* relative path in the current directory */
    char here[512];
    tu_join(here, sizeof here, dir, "sub");
    cr_assert_eq(vae_mkdir_p(here), 0);
    char old[4096];
    cr_assert(getcwd(old, sizeof old));
    cr_assert_eq(chdir(here), 0);
    int rc = vae_safetensors_write("rel.safetensors", &t, 1, NULL, 0);
    cr_assert_eq(chdir(old), 0);
    cr_assert_eq(rc, 0, "%s", vae_last_error());
    cr_assert_eq(dir_entries(here, names, 4), 1);
}

Test(safetensors, unwritable_destination)
{
    const char *dir = tu_tmpdir();
    char path[512], names[4][64];
    float x[1] = {1};
    vae_st_tensor_in t = {"x", 1, {1}, x};

    tu_join(path, sizeof path, dir, "no/such/dir/x.safetensors");
    cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), -1);
    cr_assert_eq(strncmp(vae_last_error(), path, strlen(path)), 0, "%s", vae_last_error());
    cr_assert(strstr(vae_last_error(), "No such file"), "%s", vae_last_error());

    /* parent is a regular file */
    char file[512];
    tu_join(file, sizeof file, dir, "plain");
    tu_write_file(file, "x", 1);
    tu_join(path, sizeof path, file, "x.safetensors");
    cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), -1);
    cr_assert(strstr(vae_last_error(), "Not a directory"), "%s", vae_last_error());

    /* the destination is a directory: the rename fails, the .tmp is removed */
    tu_join(path, sizeof path, dir, "isdir");
    cr_assert_eq(vae_mkdir_p(path), 0);
    cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), -1);
    cr_assert(strstr(vae_last_error(), "rename"), "%s", vae_last_error());
    cr_assert_eq(dir_entries(dir, names, 4), 2, "only plain and isdir remain");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!tu_exists(tmp));
}

/* A full disk: "<path>.tmp" is a symlink to /dev/full, so writes fail with
 * ENOSPC, inside fwrite for a large file and at the flush for a small one.
 * Both must be reported, leave nothing at path and remove the .tmp. */
Test(safetensors, write_error_full_disk)
{
    struct stat sb;
    if (stat("/dev/full", &sb) != 0)
        cr_skip_test("/dev/full is not available");
    char path[512], tmp[600];
    tu_join(path, sizeof path, tu_tmpdir(), "full.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    float *big = vae_calloc(1 << 18, sizeof(float));
    for (int large = 1; large >= 0; large--) {
        cr_assert_eq(symlink("/dev/full", tmp), 0);
        vae_st_tensor_in t = {"x", 1, {large ? 1 << 18 : 2}, big};
        cr_assert_eq(vae_safetensors_write(path, &t, 1, NULL, 0), -1, "writing to a full disk must fail");
        const char *msg = vae_last_error();
        cr_assert_eq(strncmp(msg, path, strlen(path)), 0, "%s", msg);
        cr_assert(strstr(msg, "No space left"), "%s", msg);
        cr_assert_eq(lstat(tmp, &sb), -1, "the .tmp link must be removed");
        cr_assert(!tu_exists(path));
    }
    vae_free(big);
}

Test(safetensors, bad_write_arguments)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "args.safetensors");
    float x[4] = {0};
    const vae_st_tensor_in z = {"z", 1, {1}, x};
    const struct { vae_st_tensor_in t[2]; const char *needle; } cases[] = {
        {{{NULL, 1, {1}, x}, z}, "has no name"},
        {{{"a", 1, {1}, x}, {"a", 1, {2}, x}}, "two tensors are named \"a\""},
        {{{"a", 5, {1}, x}, z}, "ndim 5"},
        {{{"a", -1, {1}, x}, z}, "ndim -1"},
        {{{"a", 2, {2, -1}, x}, z}, "dimension 1 is negative"},
        {{{"a", 1, {2}, NULL}, z}, "data is NULL"},
        {{{"__metadata__", 1, {1}, x}, z}, "reserved"},
        {{{"bad\xff", 1, {1}, x}, z}, "not valid UTF-8"},
        {{{"a", 4, {INT64_MAX, INT64_MAX, 2, 2}, x}, z}, "too large"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cr_assert_eq(vae_safetensors_write(path, cases[k].t, 2, NULL, 0), -1, "case %zu", k);
        cr_assert_eq(strncmp(vae_last_error(), path, strlen(path)), 0, "%s", vae_last_error());
        cr_assert(strstr(vae_last_error(), cases[k].needle), "case %zu: wanted \"%s\", got: %s", k,
                  cases[k].needle, vae_last_error());
        cr_assert(!tu_exists(path));
    }
    vae_st_tensor_in ok = {"a", 1, {1}, x};
    const vae_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    cr_assert_eq(vae_safetensors_write(path, &ok, 1, dup, 2), -1);
    cr_assert(strstr(vae_last_error(), "appears twice"), "%s", vae_last_error());
    const vae_st_meta null_value[] = {{"k", NULL}};
    cr_assert_eq(vae_safetensors_write(path, &ok, 1, null_value, 1), -1);
    cr_assert(strstr(vae_last_error(), "NULL"), "%s", vae_last_error());
    cr_assert_eq(vae_safetensors_write(path, &ok, 1, NULL, 1), -1);
    cr_assert_eq(vae_safetensors_write(path, NULL, 1, NULL, 0), -1);
    cr_assert_eq(vae_safetensors_write(path, &ok, -1, NULL, 0), -1);
    cr_assert_eq(vae_safetensors_write("", &ok, 1, NULL, 0), -1);
    cr_assert_eq(vae_safetensors_write(NULL, &ok, 1, NULL, 0), -1);
    cr_assert(!tu_exists(path));
}

/* An independent parser (Python's json and struct, standard library only)
 * reads what we write. Skipped where python3 is missing. */
Test(safetensors, python_stdlib_reads_our_file)
{
    char out[4096];
    if (tu_run("python3 -c 'import json, struct'", out, sizeof out) != 0)
        cr_skip_test("python3 is not available: %s", out);
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "py.safetensors");
    float w[6] = {1.5f, -2.0f, 0.25f, 1e-7f, -3e8f, 0.0f}, b[2] = {7.0f, -7.0f};
    const vae_st_tensor_in t[] = {{"w", 2, {2, 3}, w}, {"b\xc3\xa9", 1, {2}, b}};
    const vae_st_meta meta[] = {{"note", "a \"q\" \\ \n \xe2\x9c\x93"}};
    cr_assert_eq(vae_safetensors_write(path, t, 2, meta, 1), 0, "%s", vae_last_error());
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 -c '\n"
             "import json, struct, sys\n"
             "d = open(sys.argv[1], \"rb\").read()\n"
             "n = struct.unpack(\"<Q\", d[:8])[0]\n"
             "assert (8 + n) %% 8 == 0\n"
             "h = json.loads(d[8:8+n].decode(\"utf-8\"))\n"
             "buf = d[8+n:]\n"
             "assert h[\"__metadata__\"] == {\"note\": \"a \\\"q\\\" \\\\ \\n \\u2713\"}, h\n"
             "for name, e in h.items():\n"
             "    if name == \"__metadata__\": continue\n"
             "    b, e2 = e[\"data_offsets\"]\n"
             "    v = struct.unpack(\"<%%df\" %% ((e2 - b) // 4), buf[b:e2])\n"
             "    print(name.encode(\"unicode_escape\").decode(), e[\"dtype\"], e[\"shape\"], list(v))\n"
             "' %s",
             path);
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "python failed: %s", out);
    cr_assert_str_eq(out, "w F32 [2, 3] [1.5, -2.0, 0.25, 1.0000000116860974e-07, -300000000.0, 0.0]\n"
                          "b\\xe9 F32 [2] [7.0, -7.0]\n");
}

/* ---- limits and escapes ----------------------------------------------------- */

/* A header just over VAE_ST_MAX_HEADER is refused before it is read, even
 * when the file is long enough to hold it. */
Test(safetensors, header_over_the_limit)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "limit.safetensors");
    size_t n = (size_t)VAE_ST_MAX_HEADER + 8;
    char *h = malloc(n + 1);
    cr_assert(h);
    memset(h, ' ', n);
    memcpy(h, "{}", 2);
    h[n] = '\0';
    write_raw(path, h, 1, NULL, 0);
    expect_read_fails(path, "limit");
    h[n - 16] = '\0'; /* under the limit: spaces after the object are padding */
    write_raw(path, h, 1, NULL, 0);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    vae_safetensors_free(&st);
    free(h);
}

/* A header of a million empty arrays would take over 100 MB as a jansson
 * tree; the parse stops at its budget with a message. */
Test(safetensors, parse_memory_is_bounded)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "arrays.safetensors");
    size_t n_arr = 1000000;
    char *h = malloc(3 * n_arr + 16);
    cr_assert(h);
    size_t len = (size_t)sprintf(h, "{\"a\":[");
    for (size_t k = 0; k < n_arr; k++)
        len += (size_t)sprintf(h + len, "%s[]", k ? "," : "");
    sprintf(h + len, "]}");
    write_raw(path, h, 1, NULL, 0);
    expect_read_fails(path, "memory");
    free(h);
}

/* Headers as large as real files get (20,000 tensors, about 2 MB; 50,000
 * one-character names) stay within the budget. */
Test(safetensors, many_tensors_within_budget)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "many.safetensors");
    enum { N = 20000 };
    vae_st_tensor_in *t = calloc(N, sizeof *t);
    char (*names)[48] = calloc(N, sizeof *names);
    cr_assert(t && names);
    for (int k = 0; k < N; k++) {
        snprintf(names[k], sizeof names[k], "model.layers.%d.self_attn.q_proj.weight", k);
        t[k] = (vae_st_tensor_in){names[k], 3, {0, 4096 + k, 11008}, NULL};
    }
    cr_assert_eq(vae_safetensors_write(path, t, N, NULL, 0), 0, "%s", vae_last_error());
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(st.n_tensors, N);
    cr_assert_str_eq(st.tensors[N - 1].name, names[N - 1]);
    cr_assert_eq(st.tensors[N - 1].shape[1], 4096 + N - 1);
    vae_safetensors_free(&st);
    /* short names and empty tensors: the most tree per header byte a real file takes */
    enum { N2 = 50000 };
    vae_st_tensor_in *t2 = calloc(N2, sizeof *t2);
    char (*short_names)[8] = calloc(N2, sizeof *short_names);
    cr_assert(t2 && short_names);
    for (int k = 0; k < N2; k++) {
        snprintf(short_names[k], sizeof short_names[k], "%d", k);
        t2[k] = (vae_st_tensor_in){short_names[k], 1, {0}, NULL};
    }
    cr_assert_eq(vae_safetensors_write(path, t2, N2, NULL, 0), 0, "%s", vae_last_error());
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_eq(st.n_tensors, N2);
    vae_safetensors_free(&st);
    free(short_names);
    free(t2);
    free(names);
    free(t);
}

Test(safetensors, escape_round_trip)
{
    static const char *cases[][2] = {
        {"plain/path", "plain/path"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"a\\b", "a\\\\b"},
        {"raw\xff\xfe/x", "raw\\xff\\xfe/x"},
        {"\xc3", "\\xc3"},                 /* a cut sequence */
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"}, /* an encoded surrogate */
        {"lit\\xff", "lit\\\\xff"},        /* the text \xff is not the byte */
        {"two\nlines\x7f", "two\\x0alines\\x7f"}, /* control characters */
        {"", ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *e = vae_safetensors_escape(cases[k][0]);
        cr_assert_str_eq(e, cases[k][1], "case %zu", k);
        char *u = vae_safetensors_unescape(e);
        cr_assert(u, "case %zu: %s", k, vae_last_error());
        cr_assert_str_eq(u, cases[k][0], "case %zu", k);
        vae_free(u);
        vae_free(e);
    }
    cr_assert_null(vae_safetensors_unescape("a\\qb"));
    cr_assert_null(vae_safetensors_unescape("a\\x0"));
    cr_assert_null(vae_safetensors_unescape("a\\x00b"));
    cr_assert_null(vae_safetensors_unescape("end\\"));
}

/* A metadata value that is not UTF-8 (a raw-byte path) is written escaped
 * instead of failing the save, and reads back losslessly. */
Test(safetensors, non_utf8_metadata_is_escaped)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "meta.safetensors");
    float x[1] = {1.0f};
    const vae_st_tensor_in t = {"x", 1, {1}, x};
    const vae_st_meta meta[] = {{"data", "/tmp/d\xff\xfe"}, {"ok", "fine"}};
    cr_assert_eq(vae_safetensors_write(path, &t, 1, meta, 2), 0, "%s", vae_last_error());
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0, "%s", vae_last_error());
    cr_assert_str_eq(vae_safetensors_meta_get(&st, "data"), "/tmp/d\\xff\\xfe");
    cr_assert_str_eq(vae_safetensors_meta_get(&st, "ok"), "fine");
    char *u = vae_safetensors_unescape(vae_safetensors_meta_get(&st, "data"));
    cr_assert_str_eq(u, meta[0].value);
    vae_free(u);
    vae_safetensors_free(&st);
    const vae_st_meta bad_key[] = {{"k\xff", "v"}};
    cr_assert_eq(vae_safetensors_write(path, &t, 1, bad_key, 1), -1);
    cr_assert(strstr(vae_last_error(), "not valid UTF-8"), "%s", vae_last_error());
}
