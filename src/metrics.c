/*
 * metrics.c: metrics.csv text as a table, and as JSON lines; see metrics.h.
 */
#include "metrics.h"

#include "vae_util.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dup_range(const char *s, size_t n)
{
    char *d = vae_calloc(n + 1, 1);
    memcpy(d, s, n);
    return d;
}

/* Split line [s, end) at commas into cells (cap of them); the count, or cap + 1 when there are more. */
static int split(const char *s, const char *end, char **cells, int cap)
{
    int n = 0;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        if (n < cap)
            cells[n] = dup_range(s, (size_t)(stop - s));
        n++;
        if (!comma)
            return n > cap ? cap + 1 : n;
        s = comma + 1;
    }
}

static int count_cells(const char *s, const char *end)
{
    int n = 1;
    for (; s < end; s++)
        n += *s == ',';
    return n;
}

void vae_metrics_table_free(vae_metrics_table *t)
{
    for (int j = 0; j < t->n_cols; j++)
        vae_free(t->names ? t->names[j] : NULL);
    for (size_t k = 0; t->cells && k < (size_t)t->n_rows * (size_t)t->n_cols; k++)
        vae_free(t->cells[k]);
    vae_free(t->names);
    vae_free(t->cells);
    vae_free(t->values);
    memset(t, 0, sizeof *t);
}

int vae_metrics_parse(const char *csv, size_t len, const char *what, vae_metrics_table *t)
{
    memset(t, 0, sizeof *t);
    const char *end = csv + len;
    /* lines: the header, then rows; count rows first */
    int lines = 0;
    for (const char *p = csv; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        lines++;
        p = nl ? nl + 1 : end;
    }
    if (lines == 0)
        return vae_set_error("%s: empty (no header line)", what);
    const char *nl = memchr(csv, '\n', len);
    const char *hend = nl ? nl : end;
    t->n_cols = count_cells(csv, hend);
    t->names = vae_calloc((size_t)t->n_cols, sizeof *t->names);
    split(csv, hend, t->names, t->n_cols);
    t->cells = vae_calloc((size_t)(lines - 1) * (size_t)t->n_cols + 1, sizeof *t->cells);
    t->values = vae_calloc((size_t)(lines - 1) * (size_t)t->n_cols + 1, sizeof *t->values);
    int line_no = 1;
    for (const char *p = nl ? nl + 1 : end; p < end; line_no++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *lend = e ? e : end;
        int n = count_cells(p, lend);
        if (n != t->n_cols) {
            int cols = t->n_cols;
            vae_metrics_table_free(t);
            return vae_set_error("%s: line %d has %d values but the header names %d", what, line_no + 1, n, cols);
        }
        char **row = t->cells + (size_t)t->n_rows * (size_t)t->n_cols;
        split(p, lend, row, t->n_cols);
        for (int j = 0; j < t->n_cols; j++) {
            char *stop;
            double v = strtod(row[j], &stop);
            t->values[(size_t)t->n_rows * (size_t)t->n_cols + (size_t)j] =
                (stop != row[j] && *stop == 0) ? v : NAN;
        }
        t->n_rows++;
        p = e ? e + 1 : end;
    }
    return 0;
}

int vae_metrics_column(const vae_metrics_table *t, const char *name)
{
    for (int j = 0; j < t->n_cols; j++)
        if (strcmp(t->names[j], name) == 0)
            return j;
    return -1;
}

char *vae_metrics_jsonl(const vae_metrics_table *t, size_t *len)
{
    size_t cap = 64, n = 0;
    char *out = vae_calloc(cap, 1);
    for (int i = 0; i < t->n_rows; i++) {
        json_t *o = json_object();
        if (!o)
            vae_fatal("json_object: out of memory");
        for (int j = 0; j < t->n_cols; j++) {
            double v = t->values[(size_t)i * (size_t)t->n_cols + (size_t)j];
            json_t *x;
            if (!isfinite(v))
                x = json_null();
            else if ((strcmp(t->names[j], "epoch") == 0 || strcmp(t->names[j], "step") == 0) && v == floor(v) && fabs(v) < 9e15)
                x = json_integer((json_int_t)v);
            else
                x = json_real(v);
            if (!x || json_object_set_new(o, t->names[j], x))
                vae_fatal("metrics.jsonl: cannot add '%s' to a JSON object", t->names[j]);
        }
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        json_decref(o);
        if (!line)
            vae_fatal("metrics.jsonl: json_dumps failed");
        size_t m = strlen(line);
        if (n + m + 2 > cap) {
            size_t c = (n + m + 2) * 2;
            char *b = vae_calloc(c, 1);
            memcpy(b, out, n);
            vae_free(out);
            out = b;
            cap = c;
        }
        memcpy(out + n, line, m);
        out[n + m] = '\n';
        n += m + 1;
        json_free_t jfree;
        json_get_alloc_funcs(NULL, &jfree);
        jfree(line); /* jansson's allocator: safetensors.c may have installed its own */
    }
    *len = n;
    return out;
}
