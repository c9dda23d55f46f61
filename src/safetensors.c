/*
 * safetensors.c: the safetensors reader and writer declared in safetensors.h.
 *
 * Pieces, in order: byte order helpers; strict UTF-8 checks and the lossless
 * escape of byte strings; the JSON parse (jansson, under a memory budget);
 * the schema check that turns the parsed header into tensors and metadata;
 * reading; writing.
 *
 * JSON itself is jansson's job: json_loadb with JSON_REJECT_DUPLICATES
 * rejects duplicate keys, \u0000, malformed UTF-8, integers outside int64
 * and anything after the top-level object, and reports the byte position.
 * Not here: a general JSON layer; only what a safetensors header holds.
 */
#define _GNU_SOURCE
#include "safetensors.h"
#include "vae_util.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- byte order ----------------------------------------------------------- */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void put_u64_le(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64_le(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in[i] << (8 * i);
    return v;
}

/* Reverse the bytes of each elem-sized element of p[0..nbytes). */
static void swap_elements(uint8_t *p, size_t nbytes, size_t elem)
{
    if (elem < 2)
        return;
    for (size_t off = 0; off + elem <= nbytes; off += elem)
        for (size_t a = 0, b = elem - 1; a < b; a++, b--) {
            uint8_t t = p[off + a];
            p[off + a] = p[off + b];
            p[off + b] = t;
        }
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0 if it is
 * malformed: overlong forms, surrogates and code points above U+10FFFF are
 * malformed. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

static int utf8_valid(const char *s)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(u + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

char *vae_safetensors_escape(const char *s)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s);
    char *out = vae_calloc(4 * n + 1, 1); /* each byte becomes at most "\xNN" */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(u + i, n - i);
        if (k == 1 && u[i] == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f)) {
            snprintf(out + o, 5, "\\x%02x", u[i]); /* a control character: one line stays one line */
            o += 4;
        } else if (k) {
            memcpy(out + o, u + i, k);
            o += k;
        } else {
            snprintf(out + o, 5, "\\x%02x", u[i]);
            o += 4;
            k = 1;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* vae_safetensors_escape writes lower-case digits only */
}

char *vae_safetensors_unescape(const char *s)
{
    size_t n = strlen(s);
    char *out = vae_calloc(n + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        if (s[i + 1] == '\\') {
            out[o++] = '\\';
            i += 2;
            continue;
        }
        int hi = s[i + 1] == 'x' ? hex_digit(s[i + 2]) : -1;
        int lo = hi >= 0 ? hex_digit(s[i + 3]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            vae_free(out);
            vae_set_error("\"%.200s\" is not a string written by vae_safetensors_escape (a lone '\\' at byte %zu)", s,
                          i);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 4;
    }
    out[o] = '\0';
    return out;
}

static char *st_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = vae_calloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

/* ---- JSON parse under a memory budget ------------------------------------- */

/* jansson allocates through these. While st_json_budget is non-zero (during
 * one header parse on this thread) every allocation is counted, and one that
 * would take the total past the budget fails, which jansson reports as an
 * out-of-memory error. Outside a parse they are plain malloc and free, so
 * values built elsewhere in the program are unaffected. */
static _Thread_local size_t st_json_budget, st_json_used;
static _Thread_local int st_json_over;

static void *st_json_malloc(size_t n)
{
    if (st_json_budget && (n > st_json_budget || st_json_used > st_json_budget - n)) {
        st_json_over = 1;
        return NULL;
    }
    void *p = malloc(n);
    if (p && st_json_budget)
        st_json_used += malloc_usable_size(p);
    return p;
}

static void st_json_free(void *p)
{
    if (p && st_json_budget) {
        size_t n = malloc_usable_size(p);
        st_json_used = st_json_used > n ? st_json_used - n : 0;
    }
    free(p);
}

static void st_json_install(void)
{
    json_set_alloc_funcs(st_json_malloc, st_json_free);
}

/* The memory the parse of an n-byte header may take. */
static size_t st_json_budget_for(size_t n)
{
    return VAE_ST_JSON_MEMORY_FACTOR * n + ((size_t)1 << 20);
}

/* Parse the header h[0..n): one object, then only whitespace (padding). */
static json_t *parse_header(const char *path, const uint8_t *h, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, st_json_install);
    if (n == 0 || h[0] != '{') {
        vae_set_error("%s: invalid JSON in safetensors header at byte 0: the header must be a JSON object "
                      "starting with '{'", path);
        return NULL;
    }
    json_error_t err;
    st_json_budget = st_json_budget_for(n);
    st_json_used = 0;
    st_json_over = 0;
    json_t *root = json_loadb((const char *)h, n, JSON_REJECT_DUPLICATES, &err);
    int over = st_json_over;
    st_json_budget = 0;
    if (root)
        return root;
    if (over)
        vae_set_error("%s: the safetensors header (%zu bytes) needs more than %zu bytes of memory to parse "
                      "(%zu per header byte); refused as hostile", path, n, st_json_budget_for(n),
                      (size_t)VAE_ST_JSON_MEMORY_FACTOR);
    else
        vae_set_error("%s: invalid JSON in safetensors header at byte %d: %s", path, err.position, err.text);
    return NULL;
}

static const char *json_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* ---- dtypes --------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
};

size_t vae_safetensors_dtype_size(const char *dtype)
{
    if (!dtype)
        return 0;
    for (size_t k = 0; k < sizeof st_dtypes / sizeof st_dtypes[0]; k++)
        if (strcmp(dtype, st_dtypes[k].name) == 0)
            return st_dtypes[k].size;
    return 0;
}

/* ---- schema --------------------------------------------------------------- */

typedef struct {
    uint64_t begin, end;
    size_t elem;
} tensor_range;

static void format_shape(char *out, size_t cap, const int64_t *shape, int ndim)
{
    size_t len = 0;
    len += (size_t)snprintf(out + len, cap - len, "[");
    for (int d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}

/* Fill one tensor from its header entry; ranges are checked later. */
static int tensor_from_json(const char *path, const char *name, const json_t *val, size_t blob_size,
                            vae_st_tensor *t, tensor_range *r)
{
    if (!json_is_object(val))
        return vae_set_error("%s: tensor \"%.200s\" must be an object, found %s", path, name,
                             json_kind_name(val));
    const json_t *dtype = NULL, *shape = NULL, *offs = NULL;
    const char *f;
    json_t *fv;
    json_object_foreach((json_t *)val, f, fv) {
        if (strcmp(f, "dtype") == 0)
            dtype = fv;
        else if (strcmp(f, "shape") == 0)
            shape = fv;
        else if (strcmp(f, "data_offsets") == 0)
            offs = fv;
        else
            return vae_set_error("%s: tensor \"%.200s\" has unknown field \"%.100s\"", path, name, f);
    }
    if (!dtype || !shape || !offs)
        return vae_set_error("%s: tensor \"%.200s\" lacks \"%s\"", path, name,
                             !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!json_is_string(dtype))
        return vae_set_error("%s: tensor \"%.200s\": dtype must be a string, found %s", path, name,
                             json_kind_name(dtype));
    size_t elem = vae_safetensors_dtype_size(json_string_value(dtype));
    if (!elem)
        return vae_set_error("%s: tensor \"%.200s\": unknown dtype \"%.40s\"; known: "
                             "BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 I64 U64 F64",
                             path, name, json_string_value(dtype));
    snprintf(t->dtype, sizeof t->dtype, "%s", json_string_value(dtype));

    if (!json_is_array(shape))
        return vae_set_error("%s: tensor \"%.200s\": shape must be an array, found %s", path, name,
                             json_kind_name(shape));
    size_t ndim = json_array_size(shape);
    if (ndim > VAE_ST_MAX_DIMS)
        return vae_set_error("%s: tensor \"%.200s\": %zu dimensions, at most %d are supported", path, name, ndim,
                             VAE_ST_MAX_DIMS);
    size_t count = 1;
    int too_big = 0;
    for (size_t d = 0; d < ndim; d++) {
        const json_t *e = json_array_get(shape, d);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return vae_set_error("%s: tensor \"%.200s\": shape entries must be non-negative integers, found %s",
                                 path, name, json_is_integer(e) ? "a negative integer" : json_kind_name(e));
        t->shape[d] = json_integer_value(e);
        if ((uint64_t)t->shape[d] > SIZE_MAX || vae_mul_overflow(count, (size_t)t->shape[d], &count))
            too_big = 1;
    }
    t->ndim = (int)ndim;
    size_t nbytes = 0;
    if (too_big || vae_mul_overflow(count, elem, &nbytes))
        return vae_set_error("%s: tensor \"%.200s\": shape is too large", path, name);

    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return vae_set_error("%s: tensor \"%.200s\": data_offsets must be an array of two integers", path, name);
    for (size_t k = 0; k < 2; k++) {
        const json_t *o = json_array_get(offs, k);
        if (!json_is_integer(o) || json_integer_value(o) < 0)
            return vae_set_error("%s: tensor \"%.200s\": data_offsets must be non-negative integers, found %s",
                                 path, name, json_is_integer(o) ? "a negative integer" : json_kind_name(o));
    }
    uint64_t begin = (uint64_t)json_integer_value(json_array_get(offs, 0));
    uint64_t end = (uint64_t)json_integer_value(json_array_get(offs, 1));
    if (begin > end)
        return vae_set_error("%s: tensor \"%.200s\": data_offsets [%llu, %llu] end before they begin",
                             path, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > (uint64_t)blob_size)
        return vae_set_error("%s: tensor \"%.200s\": data_offsets [%llu, %llu] run past the end of the "
                             "%zu-byte data buffer (offsets out of range, or the file is truncated)",
                             path, name, (unsigned long long)begin, (unsigned long long)end, blob_size);
    if (end - begin != (uint64_t)nbytes) {
        char s[160];
        format_shape(s, sizeof s, t->shape, t->ndim);
        return vae_set_error("%s: tensor \"%.200s\": shape %s of %s needs %zu bytes but data_offsets "
                             "[%llu, %llu] hold %llu", path, name, s, t->dtype, nbytes,
                             (unsigned long long)begin, (unsigned long long)end,
                             (unsigned long long)(end - begin));
    }
    t->nbytes = nbytes;
    r->begin = begin;
    r->end = end;
    r->elem = elem;
    return 0;
}

typedef struct {
    const tensor_range *r;
    int idx;
} range_ref;

static int cmp_range(const void *a, const void *b)
{
    const range_ref *x = a, *y = b;
    if (x->r->begin != y->r->begin)
        return x->r->begin < y->r->begin ? -1 : 1;
    if (x->r->end != y->r->end)
        return x->r->end < y->r->end ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}
/* The tensors must tile [0, blob_size) exactly: no overlaps, holes or tail. */
static int check_coverage(const char *path, const vae_safetensors *st, const tensor_range *r,
                          size_t blob_size)
{
    int n = st->n_tensors;
    range_ref *order = vae_calloc((size_t)n + 1, sizeof *order);
    for (int k = 0; k < n; k++) {
        order[k].r = &r[k];
        order[k].idx = k;
    }
    qsort(order, (size_t)n, sizeof *order, cmp_range);
    uint64_t covered = 0;
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        const tensor_range *x = order[k].r;
        if (x->begin < covered)
            rc = vae_set_error("%s: tensors \"%.200s\" and \"%.200s\" overlap in the data buffer "
                               "(at byte %llu)", path, st->tensors[order[k - 1].idx].name,
                               st->tensors[order[k].idx].name, (unsigned long long)x->begin);
        else if (x->begin > covered)
            rc = vae_set_error("%s: bytes [%llu, %llu) of the data buffer belong to no tensor "
                               "(the format forbids holes)", path, (unsigned long long)covered,
                               (unsigned long long)x->begin);
        covered = x->end;
    }
    if (rc == 0 && covered < (uint64_t)blob_size)
        rc = vae_set_error("%s: %llu trailing bytes after the last tensor's data (the data buffer is "
                           "%zu bytes, tensors cover %llu)", path,
                           (unsigned long long)(blob_size - covered), blob_size,
                           (unsigned long long)covered);
    vae_free(order);
    return rc;
}

/* Turn the parsed header into st's tensors and metadata; ranges go to *ranges. */
static int header_to_tensors(const char *path, const json_t *root, size_t blob_size, vae_safetensors *st,
                             tensor_range **ranges)
{
    const json_t *meta = json_object_get(root, "__metadata__");
    size_t n_tensors = json_object_size(root) - (meta ? 1 : 0);
    const char *key;
    json_t *val;
    if (meta) {
        if (!json_is_object(meta))
            return vae_set_error("%s: __metadata__ must be an object of strings, found %s", path,
                                 json_kind_name(meta));
        json_object_foreach((json_t *)meta, key, val)
            if (!json_is_string(val))
                return vae_set_error("%s: __metadata__ value for \"%.200s\" must be a string, found %s", path,
                                     key, json_kind_name(val));
        st->meta = vae_calloc(json_object_size(meta) + 1, sizeof *st->meta);
        json_object_foreach((json_t *)meta, key, val) {
            st->meta[st->n_meta].key = st_strdup(key);
            st->meta[st->n_meta].value = st_strdup(json_string_value(val));
            st->n_meta++;
        }
    }
    st->tensors = vae_calloc(n_tensors + 1, sizeof *st->tensors);
    tensor_range *r = vae_calloc(n_tensors + 1, sizeof *r);
    *ranges = r;
    json_object_foreach((json_t *)root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        vae_st_tensor *t = &st->tensors[st->n_tensors];
        if (tensor_from_json(path, key, val, blob_size, t, &r[st->n_tensors]))
            return -1;
        t->name = st_strdup(key);
        st->n_tensors++;
    }
    return check_coverage(path, st, r, blob_size);
}

/* ---- reading -------------------------------------------------------------- */

static size_t round_up16(size_t x)
{
    return (x + 15) & ~(size_t)15;
}

static int read_exact(FILE *f, void *p, size_t n, const char *path, const char *what)
{
    if (n == 0)
        return 0;
    size_t got = fread(p, 1, n, f);
    if (got == n)
        return 0;
    if (ferror(f))
        return vae_set_error("%s: reading the %s: %s", path, what, strerror(errno));
    return vae_set_error("%s: file truncated while reading the %s (%zu of %zu bytes)", path, what,
                         got, n);
}

int vae_safetensors_read(const char *path, vae_safetensors *out)
{
    if (!out)
        return vae_set_error("vae_safetensors_read: output struct is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !*path)
        return vae_set_error("vae_safetensors_read: empty path");

    FILE *f = vae_fopen_regular(path); /* a FIFO or a device is refused, not waited on */
    if (!f)
        return -1;
    uint8_t *header = NULL;
    tensor_range *ranges = NULL;
    json_t *root = NULL;
    int rc = -1;

    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        vae_set_error("%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        vae_set_error("%s: not a regular file", path);
        goto out;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    if (file_size < 8) {
        vae_set_error("%s: file too small for safetensors (%llu bytes; the header length alone is 8)",
                      path, (unsigned long long)file_size);
        goto out;
    }
    uint8_t len8[8];
    if (read_exact(f, len8, 8, path, "header length"))
        goto out;
    uint64_t hlen = get_u64_le(len8);
    if (hlen > VAE_ST_MAX_HEADER) {
        vae_set_error("%s: header length %llu is over the %llu-byte limit (not a safetensors file?)",
                      path, (unsigned long long)hlen, (unsigned long long)VAE_ST_MAX_HEADER);
        goto out;
    }
    if (hlen > file_size - 8) {
        vae_set_error("%s: header length %llu is larger than the rest of the file (%llu bytes; "
                      "truncated, or not a safetensors file)", path, (unsigned long long)hlen,
                      (unsigned long long)(file_size - 8));
        goto out;
    }
    if ((uint64_t)SIZE_MAX < file_size) {
        vae_set_error("%s: file too large for this machine", path);
        goto out;
    }
    header = vae_calloc((size_t)hlen + 1, 1);
    if (read_exact(f, header, (size_t)hlen, path, "header"))
        goto out;
    root = parse_header(path, header, (size_t)hlen);
    if (!root)
        goto out;
    size_t blob_size = (size_t)(file_size - 8 - hlen);
    if (header_to_tensors(path, root, blob_size, out, &ranges))
        goto out;

    /* One allocation: the buffer, then aligned copies of unaligned tensors. */
    size_t total = round_up16(blob_size), extra = 0;
    for (int k = 0; k < out->n_tensors; k++)
        if (ranges[k].begin % ranges[k].elem != 0)
            extra += round_up16(out->tensors[k].nbytes);
    if (total < blob_size || total + extra < total) {
        vae_set_error("%s: file too large for this machine", path);
        goto out;
    }
    uint8_t *blob = vae_calloc(total + extra + 1, 1);
    out->blob = blob;
    out->blob_size = blob_size;
    if (read_exact(f, blob, blob_size, path, "tensor data"))
        goto out;
    if (fgetc(f) != EOF) {
        vae_set_error("%s: the file grew while it was being read", path);
        goto out;
    }
    size_t tail = total;
    int swap = !host_is_little_endian();
    for (int k = 0; k < out->n_tensors; k++) {
        vae_st_tensor *t = &out->tensors[k];
        uint8_t *p = blob + ranges[k].begin;
        if (ranges[k].begin % ranges[k].elem != 0) {
            memcpy(blob + tail, p, t->nbytes);
            p = blob + tail;
            tail += round_up16(t->nbytes);
        }
        if (swap)
            swap_elements(p, t->nbytes, ranges[k].elem);
        t->data = p;
    }
    rc = 0;
out:
    if (fclose(f) != 0 && rc == 0)
        rc = vae_set_error("%s: closing: %s", path, strerror(errno));
    json_decref(root);
    vae_free(header);
    vae_free(ranges);
    if (rc)
        vae_safetensors_free(out);
    return rc;
}

const vae_st_tensor *vae_safetensors_find(const vae_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    for (int k = 0; k < st->n_tensors; k++)
        if (strcmp(st->tensors[k].name, name) == 0)
            return &st->tensors[k];
    return NULL;
}

const char *vae_safetensors_meta_get(const vae_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (int k = 0; k < st->n_meta; k++)
        if (strcmp(st->meta[k].key, key) == 0)
            return st->meta[k].value;
    return NULL;
}

void vae_safetensors_free(vae_safetensors *st)
{
    if (!st)
        return;
    for (int k = 0; k < st->n_tensors; k++)
        vae_free(st->tensors[k].name);
    for (int k = 0; k < st->n_meta; k++) {
        vae_free((void *)st->meta[k].key);
        vae_free((void *)st->meta[k].value);
    }
    vae_free(st->tensors);
    vae_free(st->meta);
    vae_free(st->blob);
    memset(st, 0, sizeof *st);
}

/* ---- writing -------------------------------------------------------------- */

static int cmp_cstr_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string that occurs twice in names[0..n), or NULL. */
static const char *find_duplicate(const char **names, int n)
{
    if (n < 2)
        return NULL;
    const char **sorted = vae_calloc((size_t)n, sizeof *sorted);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_cstr_ptr);
    const char *dup = NULL;
    for (int k = 1; k < n && !dup; k++)
        if (strcmp(sorted[k], sorted[k - 1]) == 0)
            dup = sorted[k];
    vae_free(sorted);
    return dup;
}

/* Check the writer's arguments and compute each tensor's byte count. */
static int check_write_args(const char *path, const vae_st_tensor_in *tensors, int n_tensors,
                            const vae_st_meta *meta, int n_meta, size_t *nbytes)
{
    if (n_tensors < 0 || n_meta < 0)
        return vae_set_error("%s: negative tensor or metadata count (%d, %d)", path, n_tensors, n_meta);
    if (n_tensors > 0 && !tensors)
        return vae_set_error("%s: %d tensors but the tensor array is NULL", path, n_tensors);
    if (n_meta > 0 && !meta)
        return vae_set_error("%s: %d metadata entries but the metadata array is NULL", path, n_meta);
    uint64_t total = 0;
    for (int k = 0; k < n_tensors; k++) {
        const vae_st_tensor_in *t = &tensors[k];
        if (!t->name)
            return vae_set_error("%s: tensor %d has no name", path, k);
        if (!utf8_valid(t->name))
            return vae_set_error("%s: tensor %d: name is not valid UTF-8", path, k);
        if (strcmp(t->name, "__metadata__") == 0)
            return vae_set_error("%s: tensor %d: \"__metadata__\" is reserved and cannot name a tensor",
                                 path, k);
        if (t->ndim < 0 || t->ndim > 4)
            return vae_set_error("%s: tensor \"%.200s\": ndim %d is outside 0..4", path, t->name, t->ndim);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                return vae_set_error("%s: tensor \"%.200s\": dimension %d is negative (%lld)", path,
                                     t->name, d, (long long)t->shape[d]);
            if ((uint64_t)t->shape[d] > SIZE_MAX || vae_mul_overflow(count, (size_t)t->shape[d], &count))
                return vae_set_error("%s: tensor \"%.200s\": shape is too large", path, t->name);
        }
        if (vae_mul_overflow(count, sizeof(float), &nbytes[k]) || total + nbytes[k] < total)
            return vae_set_error("%s: tensor \"%.200s\": shape is too large", path, t->name);
        total += nbytes[k];
        if (count > 0 && !t->data)
            return vae_set_error("%s: tensor \"%.200s\": data is NULL", path, t->name);
    }
    for (int k = 0; k < n_meta; k++) {
        if (!meta[k].key || !meta[k].value)
            return vae_set_error("%s: metadata entry %d has a NULL key or value", path, k);
        if (!utf8_valid(meta[k].key))
            return vae_set_error("%s: metadata key \"%.200s\" is not valid UTF-8", path, meta[k].key);
    }
    const char **names = vae_calloc((size_t)(n_tensors > n_meta ? n_tensors : n_meta) + 1, sizeof *names);
    for (int k = 0; k < n_tensors; k++)
        names[k] = tensors[k].name;
    const char *dup = find_duplicate(names, n_tensors);
    if (dup) {
        vae_free(names);
        return vae_set_error("%s: two tensors are named \"%.200s\"", path, dup);
    }
    for (int k = 0; k < n_meta; k++)
        names[k] = meta[k].key;
    dup = find_duplicate(names, n_meta);
    vae_free(names);
    if (dup)
        return vae_set_error("%s: metadata key \"%.200s\" appears twice", path, dup);
    return 0;
}

/* jansson's value, or a fatal error: it fails only when out of memory. */
static json_t *json_checked(json_t *v)
{
    if (!v)
        vae_fatal("jansson: out of memory building a safetensors header");
    return v;
}

static void json_set_checked(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, json_checked(v)) != 0)
        vae_fatal("jansson: cannot set \"%.200s\" in a safetensors header", key);
}

/* The header as compact JSON in the order given (metadata first), padded with
 * spaces so that 8 + its length is a multiple of 8; *len is that length. A
 * metadata value that is not valid UTF-8 is stored as vae_safetensors_escape
 * writes it. */
static char *build_header(const vae_st_tensor_in *tensors, int n_tensors, const vae_st_meta *meta, int n_meta,
                          const size_t *nbytes, size_t *len)
{
    json_t *root = json_checked(json_object());
    if (n_meta > 0) {
        json_t *m = json_checked(json_object());
        for (int k = 0; k < n_meta; k++) {
            if (utf8_valid(meta[k].value)) {
                json_set_checked(m, meta[k].key, json_string(meta[k].value));
            } else {
                char *esc = vae_safetensors_escape(meta[k].value);
                json_set_checked(m, meta[k].key, json_string(esc));
                vae_free(esc);
            }
        }
        json_set_checked(root, "__metadata__", m);
    }
    uint64_t offset = 0;
    for (int k = 0; k < n_tensors; k++) {
        const vae_st_tensor_in *t = &tensors[k];
        json_t *e = json_checked(json_object()), *shape = json_checked(json_array());
        json_t *offs = json_checked(json_array());
        for (int d = 0; d < t->ndim; d++)
            if (json_array_append_new(shape, json_checked(json_integer(t->shape[d]))))
                vae_fatal("jansson: cannot append to an array");
        if (json_array_append_new(offs, json_checked(json_integer((json_int_t)offset))) ||
            json_array_append_new(offs, json_checked(json_integer((json_int_t)(offset + nbytes[k])))))
            vae_fatal("jansson: cannot append to an array");
        json_set_checked(e, "dtype", json_string("F32"));
        json_set_checked(e, "shape", shape);
        json_set_checked(e, "data_offsets", offs);
        json_set_checked(root, t->name, e);
        offset += nbytes[k];
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        vae_fatal("jansson: out of memory writing a safetensors header");
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = vae_calloc(padded + 1, 1);
    memcpy(out, text, n);
    memset(out + n, ' ', padded - n);
    free(text);
    *len = padded;
    return out;
}

/* Write count floats little-endian. */
static int write_f32_le(FILE *f, const float *x, size_t count, const char *path, const char *tmp)
{
    if (count == 0)
        return 0;
    if (host_is_little_endian()) {
        if (fwrite(x, sizeof(float), count, f) != count)
            return vae_set_error("%s: writing \"%s\" failed: %s", path, tmp, strerror(errno));
        return 0;
    }
    uint8_t chunk[4096];
    size_t per = sizeof chunk / 4;
    for (size_t at = 0; at < count; at += per) {
        size_t m = count - at < per ? count - at : per;
        memcpy(chunk, x + at, m * 4);
        swap_elements(chunk, m * 4, 4);
        if (fwrite(chunk, 4, m, f) != m)
            return vae_set_error("%s: writing \"%s\" failed: %s", path, tmp, strerror(errno));
    }
    return 0;
}

int vae_safetensors_write(const char *path, const vae_st_tensor_in *tensors, int n_tensors,
                          const vae_st_meta *meta, int n_meta)
{
    if (!path || !*path)
        return vae_set_error("vae_safetensors_write: empty path");
    size_t *nbytes = vae_calloc((size_t)(n_tensors > 0 ? n_tensors : 0) + 1, sizeof *nbytes);
    if (check_write_args(path, tensors, n_tensors, meta, n_meta, nbytes)) {
        vae_free(nbytes);
        return -1;
    }
    size_t header_len;
    char *header = build_header(tensors, n_tensors, meta, n_meta, nbytes, &header_len);

    int rc = -1;
    vae_atomic_file out;
    if (vae_atomic_open(&out, path))
        goto done;
    uint8_t len8[8];
    put_u64_le(len8, header_len);
    if (fwrite(len8, 1, 8, out.f) != 8 || fwrite(header, 1, header_len, out.f) != header_len) {
        vae_set_error("%s: writing \"%s\" failed: %s", path, out.tmp, strerror(errno));
        vae_atomic_abort(&out);
        goto done;
    }
    for (int k = 0; k < n_tensors; k++)
        if (write_f32_le(out.f, tensors[k].data, nbytes[k] / sizeof(float), path, out.tmp)) {
            vae_atomic_abort(&out);
            goto done;
        }
    rc = vae_atomic_commit(&out);
done:
    vae_free(header);
    vae_free(nbytes);
    return rc;
}
