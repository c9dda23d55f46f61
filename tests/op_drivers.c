/*
 * op_drivers.c: the generic drivers of the table-driven op tests (see
 * op_drivers.h): guarded and poisoned backend buffers, the comparisons that
 * name the worst element, and the five drivers (closed form, finite
 * differences, backend against backend, determinism, graph replay).
 *
 * Not here: any op's signature or shapes (op_table.c).
 */
#include "op_drivers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae_util.h"

#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5
#define FD_H 1e-6
/* Finite differences evaluate the objective 2 n times for n inputs: cases whose (inputs
 * differentiated) x (elements the objective reads) exceed this are left to the other drivers. */
#define FD_MAX_WORK 2e7

/* ---- the start contents of a buffer ------------------------------------------------------ */

static size_t buf_bytes(const op_buf *b) { return b->n * op_type_size(b->type); }

static void poison(const op_buf *b, void *dst)
{
    for (size_t i = 0; i < b->n; i++)
        switch (b->type) {
        case OP_F32: ((float *)dst)[i] = NAN; break;
        case OP_F64: ((double *)dst)[i] = NAN; break;
        case OP_I32: ((int32_t *)dst)[i] = 0x5A5A5A5A; break;
        default: ((uint8_t *)dst)[i] = 0x5A; break;
        }
}

/* What the backend's buffer holds before the op: poison where the op must write (or must not
 * write at all), the case's values otherwise. */
static void fill_start(const op_buf *b, void *dst)
{
    if (b->role == OP_WRITE || b->role == OP_UNTOUCHED)
        poison(b, dst);
    else
        memcpy(dst, b->host, buf_bytes(b));
}

static double elem(const op_buf *b, const void *p, size_t i)
{
    switch (b->type) {
    case OP_F32: return ((const float *)p)[i];
    case OP_F64: return ((const double *)p)[i];
    case OP_I32: return ((const int32_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

static double *to_double(const op_buf *b, const void *p)
{
    double *x = vae_calloc(b->n ? b->n : 1, sizeof *x);
    for (size_t i = 0; i < b->n; i++)
        x[i] = elem(b, p, i);
    return x;
}

static double *start_double(const op_buf *b)
{
    void *tmp = vae_calloc(b->n ? b->n : 1, op_type_size(b->type));
    fill_start(b, tmp);
    double *x = to_double(b, tmp);
    vae_free(tmp);
    return x;
}

/* ---- a case's buffers on one backend --------------------------------------------------------- */

typedef struct {
    vae_backend *be;
    int nbuf;
    void *d[OP_MAX_BUFS];
} dev_set;

static void dev_alloc(dev_set *s, vae_backend *be, const op_case *c)
{
    s->be = be;
    s->nbuf = c->nbuf;
    for (int b = 0; b < c->nbuf; b++)
        s->d[b] = be->buffer_alloc(be, buf_bytes(&c->buf[b]) + GUARD_BYTES);
}

/* The start contents of every buffer, each followed by its guard region. */
static void dev_upload(dev_set *s, const op_case *c)
{
    for (int b = 0; b < c->nbuf; b++) {
        size_t bytes = buf_bytes(&c->buf[b]);
        unsigned char *stage = vae_calloc(bytes + GUARD_BYTES, 1);
        fill_start(&c->buf[b], stage);
        memset(stage + bytes, GUARD_BYTE, GUARD_BYTES);
        s->be->upload(s->be, s->d[b], stage, bytes + GUARD_BYTES);
        vae_free(stage);
    }
}

static void dev_free(dev_set *s)
{
    for (int b = 0; b < s->nbuf; b++)
        s->be->buffer_free(s->be, s->d[b]);
    s->nbuf = 0;
}

static void **outs_new(const op_case *c)
{
    void **o = vae_calloc(OP_MAX_BUFS, sizeof *o);
    for (int b = 0; b < c->nbuf; b++)
        o[b] = vae_calloc(c->buf[b].n ? c->buf[b].n : 1, op_type_size(c->buf[b].type));
    return o;
}

static void outs_free(void **o)
{
    for (int b = 0; b < OP_MAX_BUFS; b++)
        vae_free(o[b]);
    vae_free(o);
}

/* The first element at which p and q differ bit for bit, or b->n. */
static size_t first_diff(const op_buf *b, const void *p, const void *q)
{
    const size_t es = op_type_size(b->type);
    for (size_t i = 0; i < b->n; i++)
        if (memcmp((const char *)p + i * es, (const char *)q + i * es, es) != 0)
            return i;
    return b->n;
}

/* Every buffer into out[b]. Fails when a guard byte changed (a write past the end) or a buffer
 * that must come back bit for bit (inputs, untouched outputs) did not. */
static int dev_download(dev_set *s, const op_case *c, void *const *out, const char *where)
{
    int ok = 1;
    for (int b = 0; b < c->nbuf; b++) {
        const op_buf *ob = &c->buf[b];
        size_t bytes = buf_bytes(ob);
        unsigned char *stage = vae_calloc(bytes + GUARD_BYTES, 1);
        s->be->download(s->be, stage, s->d[b], bytes + GUARD_BYTES);
        for (size_t i = 0; i < GUARD_BYTES; i++)
            if (stage[bytes + i] != GUARD_BYTE) {
                fprintf(stderr, "%s: %s on %s: written past its %zu elements (guard byte %zu is 0x%02x)\n", where,
                        ob->name, s->be->name, ob->n, i, stage[bytes + i]);
                ok = 0;
                break;
            }
        memcpy(out[b], stage, bytes);
        if (ob->role == OP_IN || ob->role == OP_UNTOUCHED) {
            fill_start(ob, stage);
            size_t i = first_diff(ob, out[b], stage);
            if (i < ob->n) {
                fprintf(stderr, "%s: %s on %s: %s, yet changed at [%zu]: %.9g, was %.9g\n", where, ob->name,
                        s->be->name, ob->role == OP_IN ? "an input" : "must not be written", i, elem(ob, out[b], i),
                        elem(ob, stage, i));
                ok = 0;
            }
        }
        vae_free(stage);
    }
    return ok;
}

/* ---- comparisons -------------------------------------------------------------------------------- */

/* got against ref, |got - ref| <= atol + rtol |ref| elementwise (NaN against NaN and equal
 * infinities pass: both sides left a poisoned element alone, or agree), and over the whole
 * buffer sum (got - ref)^2 <= nmse sum ref^2 + n atol^2: the normalised error at most nmse,
 * unless the errors are within atol anyway (a buffer of values near 0). nmse < 0: not checked. */
static int compare(const char *where, const char *name, size_t n, const double *got, const double *ref, double atol,
                   double rtol, double nmse)
{
    size_t worst = 0, bad = 0;
    double worst_excess = -INFINITY, max_abs = 0, num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        /* with no tolerance at all, -0 against +0 fails too: exact means bit for bit */
        const int zero_sign_differs = atol == 0 && rtol == 0 && g == 0 && signbit(g) != signbit(r);
        if (((isnan(g) && isnan(r)) || g == r) && !zero_sign_differs)
            continue;
        double excess = INFINITY;
        if (isfinite(g) && isfinite(r) && !zero_sign_differs) {
            double d = fabs(g - r);
            excess = d - (atol + rtol * fabs(r));
            max_abs = fmax(max_abs, d);
            num += d * d;
        }
        if (excess > 0)
            bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (isfinite(ref[i]))
            den += ref[i] * ref[i];
    const double e = den > 0 ? num / den : num;
    const int nmse_ok = nmse < 0 || num <= nmse * den + (double)n * atol * atol;
    if (bad == 0 && nmse_ok)
        return 1;
    fprintf(stderr,
            "%s: %s: %zu of %zu elements outside atol %g + rtol %g |ref|; worst at [%zu]: got %.9g, ref %.9g; "
            "max |diff| %.3g, nmse %.3g (bound %g%s)\n",
            where, name, bad, n, atol, rtol, worst, n ? got[worst] : 0.0, n ? ref[worst] : 0.0, max_abs, e, nmse,
            nmse_ok ? "" : ", exceeded");
    return 0;
}

static int compare_raw(const char *where, const op_buf *b, const void *got, const void *ref, double atol, double rtol,
                       double nmse)
{
    double *g = to_double(b, got), *r = to_double(b, ref);
    int ok = compare(where, b->name, b->n, g, r, atol, rtol, nmse);
    vae_free(g);
    vae_free(r);
    return ok;
}

static int bit_identical(const char *where, const op_case *c, void *const *got, void *const *want)
{
    int ok = 1;
    for (int b = 0; b < c->nbuf; b++) {
        const op_buf *ob = &c->buf[b];
        size_t i = first_diff(ob, got[b], want[b]);
        if (i < ob->n) {
            fprintf(stderr, "%s: %s differs first at [%zu] of %zu: %.9g against %.9g\n", where, ob->name, i, ob->n,
                    elem(ob, got[b], i), elem(ob, want[b], i));
            ok = 0;
        }
    }
    return ok;
}

static int is_output(const op_buf *b) { return b->role == OP_WRITE || b->role == OP_ACC; }

/* ---- drivers -------------------------------------------------------------------------------------- */

/* Run the op on fresh guarded buffers of be; outputs into out. */
static int run_once(const op_case *c, vae_backend *be, op_run_fn run, void *const *out, const char *where)
{
    dev_set s;
    dev_alloc(&s, be, c);
    dev_upload(&s, c);
    run(be, c, s.d);
    int ok = dev_download(&s, c, out, where);
    dev_free(&s);
    return ok;
}

int op_drive_fd_applies(const op_desc *d, const op_case *c)
{
    if (!d->objective || c->nfd == 0 || c->big)
        return 0;
    double wrt = 0, reads = 0;
    for (int p = 0; p < c->nfd; p++)
        wrt += (double)c->buf[c->fd[p].wrt].n;
    for (int b = 0; b < c->nbuf; b++)
        if (c->buf[b].role == OP_IN || c->buf[b].role == OP_ACC)
            reads += (double)c->buf[b].n;
    return wrt * reads <= FD_MAX_WORK;
}

int op_drive_reference(const op_desc *d, const op_case *c, vae_backend *be)
{
    char where[256];
    snprintf(where, sizeof where, "%s %s (closed form, %s)", d->name, c->shape, be->name);
    void **out = outs_new(c);
    int ok = run_once(c, be, d->run, out, where);
    if (d->reference) {
        double *in[OP_MAX_BUFS] = {0}, *ref[OP_MAX_BUFS] = {0};
        for (int b = 0; b < c->nbuf; b++) {
            in[b] = to_double(&c->buf[b], c->buf[b].host);
            ref[b] = start_double(&c->buf[b]);
        }
        unsigned mask = d->reference(c, in, ref);
        for (int b = 0; b < c->nbuf; b++) {
            if (!(mask & (1u << b)))
                continue;
            double *got = to_double(&c->buf[b], out[b]);
            ok &= compare(where, c->buf[b].name, c->buf[b].n, got, ref[b], d->ref_atol * c->ref_scale,
                          d->ref_rtol * c->ref_scale, -1);
            vae_free(got);
        }
        for (int b = 0; b < c->nbuf; b++) {
            vae_free(in[b]);
            vae_free(ref[b]);
        }
    }
    if (d->check)
        ok &= d->check(c, out, where);
    outs_free(out);
    return ok;
}

int op_drive_fd(const op_desc *d, const op_case *c, vae_backend *be, op_run_fn run)
{
    if (!d->objective || c->nfd == 0)
        return 1;
    char where[256];
    snprintf(where, sizeof where, "%s %s (finite differences, %s)", d->name, c->shape, be->name);
    void **out = outs_new(c);
    int ok = run_once(c, be, run ? run : d->run, out, where);
    double *x[OP_MAX_BUFS] = {0};
    for (int b = 0; b < c->nbuf; b++)
        x[b] = to_double(&c->buf[b], c->buf[b].host);
    for (int p = 0; p < c->nfd; p++) {
        const int g = c->fd[p].grad, w = c->fd[p].wrt;
        const size_t n = c->buf[w].n;
        double *want = vae_calloc(n ? n : 1, sizeof *want);
        for (size_t e = 0; e < n; e++) {
            double keep = x[w][e];
            x[w][e] = keep + FD_H;
            double fp = d->objective(c, x);
            x[w][e] = keep - FD_H;
            double fm = d->objective(c, x);
            x[w][e] = keep;
            want[e] = (fp - fm) / (2 * FD_H) + (c->fd[p].acc ? x[g][e] : 0.0);
        }
        char name[128];
        snprintf(name, sizeof name, "%s against d objective / d %s%s", c->buf[g].name, c->buf[w].name,
                 c->fd[p].acc ? " + its start" : "");
        double *got = to_double(&c->buf[g], out[g]);
        ok &= compare(where, name, n, got, want, d->fd_atol, d->fd_rtol, -1);
        vae_free(got);
        vae_free(want);
    }
    for (int b = 0; b < c->nbuf; b++)
        vae_free(x[b]);
    outs_free(out);
    return ok;
}

int op_drive_compare(const op_desc *d, const op_case *c, vae_backend *ref, vae_backend *cand, op_run_fn cand_run)
{
    char where[256];
    snprintf(where, sizeof where, "%s %s (%s against %s)", d->name, c->shape, cand->name, ref->name);
    void **want = outs_new(c), **got = outs_new(c);
    int ok = run_once(c, ref, d->run, want, where);
    ok &= run_once(c, cand, cand_run ? cand_run : d->run, got, where);
    for (int b = 0; b < c->nbuf; b++) {
        const op_buf *ob = &c->buf[b];
        if (!is_output(ob))
            continue; /* inputs and untouched buffers: checked bit for bit on download */
        const int exact = ob->type == OP_I32 || ob->type == OP_U8;
        double atol = exact ? 0 : ob->own_tol ? ob->atol : d->atol;
        double rtol = exact ? 0 : ob->own_tol ? ob->rtol : d->rtol;
        ok &= compare_raw(where, ob, got[b], want[b], atol, rtol, d->nmse);
    }
    if (d->check)
        ok &= d->check(c, got, where);
    outs_free(want);
    outs_free(got);
    return ok;
}

int op_drive_determinism(const op_desc *d, const op_case *c, vae_backend *be, op_run_fn run)
{
    char where[256];
    snprintf(where, sizeof where, "%s %s (twice on %s)", d->name, c->shape, be->name);
    void **a = outs_new(c), **b = outs_new(c);
    run = run ? run : d->run;
    int ok = run_once(c, be, run, a, where);
    ok &= run_once(c, be, run, b, where);
    ok &= bit_identical(where, c, b, a);
    outs_free(a);
    outs_free(b);
    return ok;
}

/* Same buffers, types, roles and plain arguments: a replay may change contents only. */
static int same_layout(const op_case *a, const op_case *b)
{
    if (a->nbuf != b->nbuf || memcmp(a->i, b->i, sizeof a->i) != 0 || memcmp(a->f, b->f, sizeof a->f) != 0)
        return 0;
    for (int k = 0; k < a->nbuf; k++)
        if (a->buf[k].n != b->buf[k].n || a->buf[k].type != b->buf[k].type || a->buf[k].role != b->buf[k].role)
            return 0;
    return 1;
}

int op_drive_graph(const op_desc *d, int k, uint64_t seed, int replays, vae_backend *be, op_run_fn run)
{
    if (d->no_graph)
        return 1;
    run = run ? run : d->run;
    op_case c0;
    op_case_make(d, &c0, k, seed);
    char where[256];
    snprintf(where, sizeof where, "%s %s (graph replay on %s)", d->name, c0.shape, be->name);
    void **got = outs_new(&c0), **want = outs_new(&c0), **start = outs_new(&c0);
    dev_set g;
    dev_alloc(&g, be, &c0);
    dev_upload(&g, &c0);
    vae_graph *graph = NULL;
    int ok = 1;
    if (be->graph_capture_begin) {
        be->graph_capture_begin(be);
        run(be, &c0, g.d);
        graph = be->graph_capture_end(be);
        /* Recorded, not run: every buffer as uploaded. */
        ok &= dev_download(&g, &c0, got, where);
        for (int b = 0; b < c0.nbuf; b++)
            fill_start(&c0.buf[b], start[b]);
        if (!bit_identical(where, &c0, got, start)) {
            fprintf(stderr, "%s: the capture ran the op\n", where);
            ok = 0;
        }
    }
    for (int r = 1; r <= replays; r++) {
        op_case cr;
        op_case_make(d, &cr, k, seed + (uint64_t)r);
        if (!same_layout(&c0, &cr)) {
            fprintf(stderr, "%s: seed %llu changes the case's shapes or plain arguments\n", where,
                    (unsigned long long)(seed + (uint64_t)r));
            op_case_free(&cr);
            ok = 0;
            break;
        }
        char where_r[300];
        snprintf(where_r, sizeof where_r, "%s, replay %d", where, r);
        dev_upload(&g, &cr); /* new inputs and backend scalars into the captured buffers */
        if (graph)
            be->graph_launch(be, graph);
        else
            run(be, &cr, g.d);
        ok &= dev_download(&g, &cr, got, where_r);
        ok &= run_once(&cr, be, run, want, where_r);
        ok &= bit_identical(where_r, &cr, got, want);
        op_case_free(&cr);
    }
    if (graph)
        be->graph_free(be, graph);
    dev_free(&g);
    outs_free(got);
    outs_free(want);
    outs_free(start);
    op_case_free(&c0);
    return ok;
}

int op_selected(const op_desc *d)
{
    const char *list = getenv("OP_TABLE_OPS");
    if (!list || !*list)
        return 1;
    size_t n = strlen(d->name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, d->name, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

const char *op_selection_unknown(char *buf, size_t len)
{
    const char *list = getenv("OP_TABLE_OPS");
    for (const char *p = list ? list : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int known = 0;
        for (int t = 0; t < op_table_count; t++)
            known |= strlen(op_table[t]->name) == n && strncmp(p, op_table[t]->name, n) == 0;
        if (!known) {
            snprintf(buf, len, "%.*s", (int)n, p);
            return buf;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}
