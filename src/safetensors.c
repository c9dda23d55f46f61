/*
 * safetensors.c: the safetensors reader and writer declared in safetensors.h.
 *
 * Pieces, in order: byte order helpers; a growable byte buffer; strict UTF-8
 * checks; a small strict JSON parser that builds a tree (objects, arrays,
 * strings, integers; fractions, exponents, true, false and null are parsed
 * only so that the schema check can name them in its message); the schema
 * check that turns the tree into tensors and metadata; reading; writing.
 *
 * Not here: a general JSON library. The parser rejects anything a safetensors
 * header does not need (\u0000 in strings, nesting deeper than
 * JSON_MAX_DEPTH, integers outside int64, duplicate keys).
 */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"
#include "vae_util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_MAX_DEPTH 16

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

/* ---- growable byte buffer ------------------------------------------------- */

typedef struct {
    char *p;      /* (cap), NUL-terminated at len */
    size_t len;
    size_t cap;
} strbuf;

static void sb_reserve(strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = vae_calloc(cap, 1);
    if (b->len)
        memcpy(p, b->p, b->len);
    vae_free(b->p);
    b->p = p;
    b->cap = cap;
}

static void sb_put(strbuf *b, const void *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_putc(strbuf *b, char c)
{
    sb_put(b, &c, 1);
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

/* 1 if s[0..n) is well-formed UTF-8, else 0. */
static int utf8_valid(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(u + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static void sb_put_utf8(strbuf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sb_put(b, out, n);
}

/* ---- JSON tree ------------------------------------------------------------ */

typedef enum {
    JV_OBJECT,
    JV_ARRAY,
    JV_STRING,
    JV_INT,
    JV_FLOAT, /* a number with a fraction or exponent: never valid in a header */
    JV_BOOL,
    JV_NULL,
} jv_kind;

typedef struct jv {
    jv_kind kind;
    size_t pos;        /* byte offset of the value in the header */
    char *s;           /* JV_STRING: owned, NUL-terminated (no NUL inside) */
    size_t slen;
    int64_t i;         /* JV_INT */
    int n;             /* JV_OBJECT, JV_ARRAY: number of members */
    struct jv *keys;   /* JV_OBJECT: (n) JV_STRING keys */
    struct jv *vals;   /* JV_OBJECT, JV_ARRAY: (n) values */
} jv;

static const char *jv_kind_name(jv_kind k)
{
    switch (k) {
    case JV_OBJECT: return "an object";
    case JV_ARRAY: return "an array";
    case JV_STRING: return "a string";
    case JV_INT: return "an integer";
    case JV_FLOAT: return "a number with a fraction or exponent";
    case JV_BOOL: return "a boolean";
    case JV_NULL: return "null";
    }
    return "?";
}

static void jv_free(jv *v)
{
    if (!v)
        return;
    vae_free(v->s);
    for (int k = 0; k < v->n; k++) {
        if (v->keys)
            jv_free(&v->keys[k]);
        if (v->vals)
            jv_free(&v->vals[k]);
    }
    vae_free(v->keys);
    vae_free(v->vals);
    memset(v, 0, sizeof *v);
}

/* Grow a jv array to hold at least need elements. */
static void jv_grow(jv **arr, int *cap, int need)
{
    if (need <= *cap)
        return;
    int cap2 = *cap ? *cap : 4;
    while (cap2 < need) {
        if (cap2 > INT_MAX / 2)
            vae_fatal("JSON array too large");
        cap2 *= 2;
    }
    jv *p = vae_calloc((size_t)cap2, sizeof *p);
    if (*cap)
        memcpy(p, *arr, (size_t)*cap * sizeof *p);
    vae_free(*arr);
    *arr = p;
    *cap = cap2;
}

typedef struct {
    const char *path;   /* for messages */
    const uint8_t *p;   /* (n) header bytes */
    size_t n;
    size_t i;           /* next byte */
    int depth;
} jparser;

static int jerr(const jparser *ps, size_t pos, const char *fmt, ...) VAE_PRINTF(3, 4);
static int jerr(const jparser *ps, size_t pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vae_set_error("%s: invalid JSON in safetensors header at byte %zu: %s", ps->path, pos, msg);
}

/* A printable description of the byte at pos for messages. */
static void describe_byte(const jparser *ps, size_t pos, char out[16])
{
    if (pos >= ps->n)
        snprintf(out, 16, "end of header");
    else if (ps->p[pos] >= 0x21 && ps->p[pos] < 0x7F)
        snprintf(out, 16, "'%c'", ps->p[pos]);
    else
        snprintf(out, 16, "byte 0x%02x", ps->p[pos]);
}

static void skip_ws(jparser *ps)
{
    while (ps->i < ps->n) {
        uint8_t c = ps->p[ps->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->i++;
    }
}

static int hex4(const jparser *ps, size_t at, uint32_t *out)
{
    if (at + 4 > ps->n)
        return jerr(ps, at, "\\u escape needs four hex digits");
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        uint8_t c = ps->p[at + k];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return jerr(ps, at + k, "\\u escape needs four hex digits");
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Parse the string starting at the '"' at ps->i into out (JV_STRING). */
static int parse_string(jparser *ps, jv *out)
{
    size_t start = ps->i;
    strbuf b = {0};
    sb_reserve(&b, 0);
    ps->i++; /* the opening quote */
    for (;;) {
        if (ps->i >= ps->n) {
            vae_free(b.p);
            return jerr(ps, start, "string not terminated");
        }
        uint8_t c = ps->p[ps->i];
        if (c == '"') {
            ps->i++;
            break;
        }
        if (c < 0x20) {
            vae_free(b.p);
            return jerr(ps, ps->i, "control character 0x%02x in string (must be escaped)", c);
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(ps->p + ps->i, ps->n - ps->i);
            if (!k) {
                vae_free(b.p);
                return jerr(ps, ps->i, "invalid UTF-8 in string");
            }
            sb_put(&b, ps->p + ps->i, k);
            ps->i += k;
            continue;
        }
        if (c != '\\') {
            sb_putc(&b, (char)c);
            ps->i++;
            continue;
        }
        size_t esc = ps->i;
        if (esc + 1 >= ps->n) {
            vae_free(b.p);
            return jerr(ps, start, "string not terminated");
        }
        uint8_t e = ps->p[esc + 1];
        ps->i += 2;
        switch (e) {
        case '"': sb_putc(&b, '"'); break;
        case '\\': sb_putc(&b, '\\'); break;
        case '/': sb_putc(&b, '/'); break;
        case 'b': sb_putc(&b, '\b'); break;
        case 'f': sb_putc(&b, '\f'); break;
        case 'n': sb_putc(&b, '\n'); break;
        case 'r': sb_putc(&b, '\r'); break;
        case 't': sb_putc(&b, '\t'); break;
        case 'u': {
            uint32_t cp;
            if (hex4(ps, ps->i, &cp)) {
                vae_free(b.p);
                return -1;
            }
            ps->i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                vae_free(b.p);
                return jerr(ps, esc, "unpaired low surrogate \\u%04X", (unsigned)cp);
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (ps->i + 2 > ps->n || ps->p[ps->i] != '\\' || ps->p[ps->i + 1] != 'u') {
                    vae_free(b.p);
                    return jerr(ps, esc, "high surrogate \\u%04X not followed by a low surrogate",
                                (unsigned)cp);
                }
                if (hex4(ps, ps->i + 2, &lo)) {
                    vae_free(b.p);
                    return -1;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    vae_free(b.p);
                    return jerr(ps, esc, "high surrogate \\u%04X not followed by a low surrogate",
                                (unsigned)cp);
                }
                ps->i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) {
                vae_free(b.p);
                return jerr(ps, esc, "\\u0000 is not allowed in names or metadata");
            }
            sb_put_utf8(&b, cp);
            break;
        }
        default: {
            char d[16];
            describe_byte(ps, esc + 1, d);
            vae_free(b.p);
            return jerr(ps, esc, "invalid escape \\ followed by %s", d);
        }
        }
    }
    memset(out, 0, sizeof *out);
    out->kind = JV_STRING;
    out->pos = start;
    out->s = b.p;
    out->slen = b.len;
    return 0;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(jparser *ps, jv *out)
{
    size_t start = ps->i;
    int neg = 0;
    if (ps->p[ps->i] == '-') {
        neg = 1;
        ps->i++;
    }
    if (ps->i >= ps->n || !is_digit(ps->p[ps->i]))
        return jerr(ps, start, "'-' not followed by a digit");
    uint64_t mag = 0;
    int overflow = 0;
    if (ps->p[ps->i] == '0') {
        ps->i++;
        if (ps->i < ps->n && is_digit(ps->p[ps->i]))
            return jerr(ps, start, "number with a leading zero");
    } else {
        while (ps->i < ps->n && is_digit(ps->p[ps->i])) {
            uint64_t d = ps->p[ps->i] - '0';
            if (mag > (UINT64_MAX - d) / 10)
                overflow = 1;
            else
                mag = mag * 10 + d;
            ps->i++;
        }
    }
    int is_float = 0;
    if (ps->i < ps->n && ps->p[ps->i] == '.') {
        is_float = 1;
        ps->i++;
        if (ps->i >= ps->n || !is_digit(ps->p[ps->i]))
            return jerr(ps, start, "'.' not followed by a digit");
        while (ps->i < ps->n && is_digit(ps->p[ps->i]))
            ps->i++;
    }
    if (ps->i < ps->n && (ps->p[ps->i] == 'e' || ps->p[ps->i] == 'E')) {
        is_float = 1;
        ps->i++;
        if (ps->i < ps->n && (ps->p[ps->i] == '+' || ps->p[ps->i] == '-'))
            ps->i++;
        if (ps->i >= ps->n || !is_digit(ps->p[ps->i]))
            return jerr(ps, start, "exponent without digits");
        while (ps->i < ps->n && is_digit(ps->p[ps->i]))
            ps->i++;
    }
    memset(out, 0, sizeof *out);
    out->pos = start;
    if (is_float) {
        out->kind = JV_FLOAT;
        return 0;
    }
    if (overflow || (!neg && mag > (uint64_t)INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1))
        return jerr(ps, start, "integer out of the 64-bit range");
    out->kind = JV_INT;
    out->i = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return 0;
}

static int parse_value(jparser *ps, jv *out);

/* Order jv string pointers by content, for the duplicate key check. */
static int cmp_jv_str(const void *a, const void *b)
{
    const jv *x = *(const jv *const *)a, *y = *(const jv *const *)b;
    size_t m = x->slen < y->slen ? x->slen : y->slen;
    int c = memcmp(x->s, y->s, m);
    if (c)
        return c;
    if (x->slen != y->slen)
        return x->slen < y->slen ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

static int check_duplicate_keys(const jparser *ps, const jv *keys, int n)
{
    if (n < 2)
        return 0;
    const jv **order = vae_calloc((size_t)n, sizeof *order);
    for (int k = 0; k < n; k++)
        order[k] = &keys[k];
    qsort(order, (size_t)n, sizeof *order, cmp_jv_str);
    for (int k = 1; k < n; k++)
        if (order[k]->slen == order[k - 1]->slen &&
            memcmp(order[k]->s, order[k - 1]->s, order[k]->slen) == 0) {
            const jv *dup = order[k];
            vae_free(order);
            return jerr(ps, dup->pos, "duplicate key \"%.200s\"", dup->s);
        }
    vae_free(order);
    return 0;
}

/* Parse an object (at '{') or an array (at '['). */
static int parse_container(jparser *ps, jv *out, int is_object)
{
    size_t start = ps->i;
    char close = is_object ? '}' : ']';
    if (++ps->depth > JSON_MAX_DEPTH)
        return jerr(ps, start, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    ps->i++;
    jv *keys = NULL, *vals = NULL;
    int n = 0, kcap = 0, vcap = 0;
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == (uint8_t)close) {
        ps->i++;
        goto done;
    }
    for (;;) {
        skip_ws(ps);
        if (is_object) {
            if (ps->i >= ps->n || ps->p[ps->i] != '"') {
                char d[16];
                describe_byte(ps, ps->i, d);
                jerr(ps, ps->i, "expected a string key, found %s", d);
                goto fail;
            }
            jv_grow(&keys, &kcap, n + 1);
            if (parse_string(ps, &keys[n]))
                goto fail;
            skip_ws(ps);
            if (ps->i >= ps->n || ps->p[ps->i] != ':') {
                char d[16];
                describe_byte(ps, ps->i, d);
                jerr(ps, ps->i, "expected ':' after key, found %s", d);
                jv_free(&keys[n]);
                goto fail;
            }
            ps->i++;
        }
        jv_grow(&vals, &vcap, n + 1);
        if (parse_value(ps, &vals[n])) {
            if (is_object)
                jv_free(&keys[n]);
            goto fail;
        }
        n++;
        skip_ws(ps);
        if (ps->i < ps->n && ps->p[ps->i] == ',') {
            ps->i++;
            continue;
        }
        if (ps->i < ps->n && ps->p[ps->i] == (uint8_t)close) {
            ps->i++;
            break;
        }
        char d[16];
        describe_byte(ps, ps->i, d);
        jerr(ps, ps->i, "expected ',' or '%c', found %s", close, d);
        goto fail;
    }
    if (is_object && check_duplicate_keys(ps, keys, n))
        goto fail;
done:
    ps->depth--;
    memset(out, 0, sizeof *out);
    out->kind = is_object ? JV_OBJECT : JV_ARRAY;
    out->pos = start;
    out->n = n;
    out->keys = keys;
    out->vals = vals;
    return 0;
fail:
    for (int k = 0; k < n; k++) {
        if (keys)
            jv_free(&keys[k]);
        jv_free(&vals[k]);
    }
    vae_free(keys);
    vae_free(vals);
    return -1;
}

static int parse_literal(jparser *ps, jv *out, const char *word, jv_kind kind)
{
    size_t len = strlen(word);
    if (ps->n - ps->i < len || memcmp(ps->p + ps->i, word, len) != 0)
        return jerr(ps, ps->i, "invalid literal (expected %s)", word);
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->pos = ps->i;
    ps->i += len;
    return 0;
}

static int parse_value(jparser *ps, jv *out)
{
    skip_ws(ps);
    if (ps->i >= ps->n)
        return jerr(ps, ps->i, "unexpected end of header, expected a value");
    uint8_t c = ps->p[ps->i];
    switch (c) {
    case '{': return parse_container(ps, out, 1);
    case '[': return parse_container(ps, out, 0);
    case '"': return parse_string(ps, out);
    case 't': return parse_literal(ps, out, "true", JV_BOOL);
    case 'f': return parse_literal(ps, out, "false", JV_BOOL);
    case 'n': return parse_literal(ps, out, "null", JV_NULL);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(ps, out);
        char d[16];
        describe_byte(ps, ps->i, d);
        return jerr(ps, ps->i, "unexpected %s, expected a value", d);
    }
}

/* Parse the whole header: one object, then only whitespace (padding). */
static int parse_header(const char *path, const uint8_t *p, size_t n, jv *root)
{
    jparser ps = {path, p, n, 0, 0};
    if (n == 0 || p[0] != '{')
        return jerr(&ps, 0, "the header must be a JSON object starting with '{'");
    if (parse_value(&ps, root))
        return -1;
    skip_ws(&ps);
    if (ps.i != n) {
        char d[16];
        describe_byte(&ps, ps.i, d);
        jv_free(root);
        return jerr(&ps, ps.i, "unexpected %s after the header object (only space padding may follow)", d);
    }
    return 0;
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
static int tensor_from_jv(const char *path, const jv *key, const jv *val, size_t blob_size,
                          vae_st_tensor *t, tensor_range *r)
{
    const char *name = key->s;
    if (val->kind != JV_OBJECT)
        return vae_set_error("%s: tensor \"%.200s\" (header byte %zu) must be an object, found %s",
                             path, name, val->pos, jv_kind_name(val->kind));
    const jv *dtype = NULL, *shape = NULL, *offs = NULL;
    for (int k = 0; k < val->n; k++) {
        const char *f = val->keys[k].s;
        if (strcmp(f, "dtype") == 0)
            dtype = &val->vals[k];
        else if (strcmp(f, "shape") == 0)
            shape = &val->vals[k];
        else if (strcmp(f, "data_offsets") == 0)
            offs = &val->vals[k];
        else
            return vae_set_error("%s: tensor \"%.200s\" has unknown field \"%.100s\" (header byte %zu)",
                                 path, name, f, val->keys[k].pos);
    }
    if (!dtype || !shape || !offs)
        return vae_set_error("%s: tensor \"%.200s\" (header byte %zu) lacks \"%s\"", path, name,
                             val->pos, !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (dtype->kind != JV_STRING)
        return vae_set_error("%s: tensor \"%.200s\": dtype must be a string, found %s (header byte %zu)",
                             path, name, jv_kind_name(dtype->kind), dtype->pos);
    size_t elem = vae_safetensors_dtype_size(dtype->s);
    if (!elem)
        return vae_set_error("%s: tensor \"%.200s\": unknown dtype \"%.40s\" (header byte %zu); known: "
                             "BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 I64 U64 F64",
                             path, name, dtype->s, dtype->pos);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->s);

    if (shape->kind != JV_ARRAY)
        return vae_set_error("%s: tensor \"%.200s\": shape must be an array, found %s (header byte %zu)",
                             path, name, jv_kind_name(shape->kind), shape->pos);
    if (shape->n > VAE_ST_MAX_DIMS)
        return vae_set_error("%s: tensor \"%.200s\": %d dimensions, at most %d are supported",
                             path, name, shape->n, VAE_ST_MAX_DIMS);
    size_t count = 1;
    int too_big = 0;
    for (int d = 0; d < shape->n; d++) {
        const jv *e = &shape->vals[d];
        if (e->kind != JV_INT || e->i < 0)
            return vae_set_error("%s: tensor \"%.200s\": shape entries must be non-negative integers, "
                                 "found %s (header byte %zu)", path, name,
                                 e->kind == JV_INT ? "a negative integer" : jv_kind_name(e->kind), e->pos);
        t->shape[d] = e->i;
        if ((uint64_t)e->i > SIZE_MAX || vae_mul_overflow(count, (size_t)e->i, &count))
            too_big = 1;
    }
    t->ndim = shape->n;
    size_t nbytes = 0;
    if (too_big || vae_mul_overflow(count, elem, &nbytes))
        return vae_set_error("%s: tensor \"%.200s\": shape is too large", path, name);

    if (offs->kind != JV_ARRAY || offs->n != 2)
        return vae_set_error("%s: tensor \"%.200s\": data_offsets must be an array of two integers "
                             "(header byte %zu)", path, name, offs->pos);
    for (int k = 0; k < 2; k++)
        if (offs->vals[k].kind != JV_INT || offs->vals[k].i < 0)
            return vae_set_error("%s: tensor \"%.200s\": data_offsets must be non-negative integers, "
                                 "found %s (header byte %zu)", path, name,
                                 offs->vals[k].kind == JV_INT ? "a negative integer"
                                                              : jv_kind_name(offs->vals[k].kind),
                                 offs->vals[k].pos);
    uint64_t begin = (uint64_t)offs->vals[0].i, end = (uint64_t)offs->vals[1].i;
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
static int header_to_tensors(const char *path, jv *root, size_t blob_size, vae_safetensors *st,
                             tensor_range **ranges)
{
    const jv *meta = NULL;
    int n_tensors = 0;
    for (int k = 0; k < root->n; k++) {
        if (strcmp(root->keys[k].s, "__metadata__") == 0)
            meta = &root->vals[k];
        else
            n_tensors++;
    }
    if (meta) {
        if (meta->kind != JV_OBJECT)
            return vae_set_error("%s: __metadata__ must be an object of strings, found %s "
                                 "(header byte %zu)", path, jv_kind_name(meta->kind), meta->pos);
        for (int k = 0; k < meta->n; k++)
            if (meta->vals[k].kind != JV_STRING)
                return vae_set_error("%s: __metadata__ value for \"%.200s\" must be a string, found %s "
                                     "(header byte %zu)", path, meta->keys[k].s,
                                     jv_kind_name(meta->vals[k].kind), meta->vals[k].pos);
        st->meta = vae_calloc((size_t)meta->n + 1, sizeof *st->meta);
        for (int k = 0; k < meta->n; k++) {
            st->meta[k].key = meta->keys[k].s;
            st->meta[k].value = meta->vals[k].s;
            meta->keys[k].s = NULL;   /* ownership moves to st */
            meta->vals[k].s = NULL;
            st->n_meta++;
        }
    }
    st->tensors = vae_calloc((size_t)n_tensors + 1, sizeof *st->tensors);
    tensor_range *r = vae_calloc((size_t)n_tensors + 1, sizeof *r);
    *ranges = r;
    for (int k = 0; k < root->n; k++) {
        if (strcmp(root->keys[k].s, "__metadata__") == 0)
            continue;
        vae_st_tensor *t = &st->tensors[st->n_tensors];
        if (tensor_from_jv(path, &root->keys[k], &root->vals[k], blob_size, t, &r[st->n_tensors]))
            return -1;
        t->name = root->keys[k].s;
        root->keys[k].s = NULL;
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

    FILE *f = fopen(path, "rb");
    if (!f)
        return vae_set_error("%s: cannot open: %s", path, strerror(errno));
    uint8_t *header = NULL;
    tensor_range *ranges = NULL;
    jv root = {0};
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
    if (parse_header(path, header, (size_t)hlen, &root))
        goto out;
    size_t blob_size = (size_t)(file_size - 8 - hlen);
    if (header_to_tensors(path, &root, blob_size, out, &ranges))
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
    jv_free(&root);
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

static void json_put_string(strbuf *b, const char *s)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                char u[8];
                snprintf(u, sizeof u, "\\u%04x", *p);
                sb_puts(b, u);
            } else
                sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, '"');
}

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
        if (!utf8_valid(t->name, strlen(t->name)))
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
        if (!utf8_valid(meta[k].key, strlen(meta[k].key)) ||
            !utf8_valid(meta[k].value, strlen(meta[k].value)))
            return vae_set_error("%s: metadata entry \"%.200s\" is not valid UTF-8", path, meta[k].key);
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

/* Build the header, padded with spaces to a multiple of 8 bytes. */
static void build_header(strbuf *b, const vae_st_tensor_in *tensors, int n_tensors,
                         const vae_st_meta *meta, int n_meta, const size_t *nbytes)
{
    char num[64];
    sb_putc(b, '{');
    int first = 1;
    if (n_meta > 0) {
        sb_puts(b, "\"__metadata__\":{");
        for (int k = 0; k < n_meta; k++) {
            if (k)
                sb_putc(b, ',');
            json_put_string(b, meta[k].key);
            sb_putc(b, ':');
            json_put_string(b, meta[k].value);
        }
        sb_putc(b, '}');
        first = 0;
    }
    uint64_t offset = 0;
    for (int k = 0; k < n_tensors; k++) {
        const vae_st_tensor_in *t = &tensors[k];
        if (!first)
            sb_putc(b, ',');
        first = 0;
        json_put_string(b, t->name);
        sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_puts(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + nbytes[k]));
        sb_puts(b, num);
        offset += nbytes[k];
    }
    sb_putc(b, '}');
    while (b->len % 8 != 0)
        sb_putc(b, ' ');
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
    strbuf header = {0};
    build_header(&header, tensors, n_tensors, meta, n_meta, nbytes);

    size_t plen = strlen(path);
    char *tmp = vae_calloc(plen + 5, 1);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        vae_set_error("%s: cannot create \"%s\": %s", path, tmp, strerror(errno));
        goto out;
    }
    uint8_t len8[8];
    put_u64_le(len8, header.len);
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header.p, 1, header.len, f) != header.len) {
        vae_set_error("%s: writing \"%s\" failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    for (int k = 0; k < n_tensors; k++)
        if (write_f32_le(f, tensors[k].data, nbytes[k] / sizeof(float), path, tmp))
            goto fail;
    if (fflush(f) != 0) {
        vae_set_error("%s: writing \"%s\" failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fileno(f)) != 0) {
        vae_set_error("%s: fsync of \"%s\" failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    FILE *closing = f;
    f = NULL;
    if (fclose(closing) != 0) {
        vae_set_error("%s: closing \"%s\" failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        vae_set_error("%s: cannot rename \"%s\" onto it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    rc = vae_sync_parent_dir(path);
    goto out;
fail:
    if (f)
        fclose(f); /* already failing; the first error is the one reported */
    remove(tmp);
out:
    vae_free(tmp);
    vae_free(header.p);
    vae_free(nbytes);
    return rc;
}
