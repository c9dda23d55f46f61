/*
 * test_cuda_ops.c: every op of the CUDA backend (kernels/) against the CPU
 * backend (src/cpu_backend.c), the reference, through the table of op
 * descriptors (op_table.c) and its generic drivers (op_drivers.c): identical
 * seeded inputs with odd shapes that are not multiples of any block size,
 * guard regions after every buffer, written outputs poisoned with NaN,
 * per-op tolerances; every op twice on the GPU, bit for bit; every op
 * captured once and replayed on new inputs and backend scalars, against
 * eager runs. Then what is not one op: the memory calls, `cuvae eval`'s
 * whole computation, a captured training-like sequence, the divergence gate
 * in a replayed graph, and the misuse that must be fatal.
 *
 * Without a GPU (this project's CI), every test that needs one is skipped
 * through Criterion with the reason ("no CUDA device: ..."), never passed;
 * test_ops runs the same drivers with the CPU as the candidate.
 *
 * The no-GPU path itself (init failing with a reason, --device auto taking the
 * CPU) is tested in test_backend.c, which runs everywhere.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backend_ops.h"
#include "cluster.h"
#include "evaluate.h"
#include "train.h"
#include "op_drivers.h"
#include "testutil.h"
#include "vae_util.h"
#include "variant.h"

TestSuite(cuda_init);
TestSuite(cuda_ops);
TestSuite(cuda_determinism);
TestSuite(cuda_graph);

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- backends ---------------------------------------------------------------- */

typedef struct {
    vae_backend *cpu; /* the reference */
    vae_backend *gpu; /* under test */
} pair;

static pair pair_init(void)
{
    pair p;
    p.gpu = tu_cuda_backend();
    p.cpu = vae_backend_cpu_init();
    return p;
}

static void pair_free(pair *p)
{
    vae_backend_free(p->gpu);
    vae_backend_free(p->cpu);
}

/* ---- host buffers ----------------------------------------------------------- */

static float *rand_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = tu_malloc(n * sizeof *x);
    tu_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static float *nan_floats(size_t n)
{
    float *x = tu_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
    return x;
}

/* ---- guarded backend buffers --------------------------------------------------- */

#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5

/* A backend buffer of `bytes` holding `init` (zeros when NULL), followed by
 * GUARD_BYTES bytes of GUARD_BYTE. */
static void *gbuf_new(vae_backend *be, const void *init, size_t bytes)
{
    unsigned char *stage = tu_malloc(bytes + GUARD_BYTES);
    if (init)
        memcpy(stage, init, bytes);
    else
        memset(stage, 0, bytes);
    memset(stage + bytes, GUARD_BYTE, GUARD_BYTES);
    void *p = be->buffer_alloc(be, bytes + GUARD_BYTES);
    be->upload(be, p, stage, bytes + GUARD_BYTES);
    free(stage);
    return p;
}

/* Download the `bytes` of p into out; fail if any guard byte after them changed. */
static void gbuf_get(vae_backend *be, void *out, const void *p, size_t bytes, const char *what)
{
    unsigned char *stage = tu_malloc(bytes + GUARD_BYTES);
    be->download(be, stage, p, bytes + GUARD_BYTES);
    for (size_t i = 0; i < GUARD_BYTES; i++)
        cr_assert(stage[bytes + i] == GUARD_BYTE, "%s on %s: written past the end (guard byte %zu is 0x%02x)",
                  what, be->name, i, stage[bytes + i]);
    memcpy(out, stage, bytes);
    free(stage);
}

/* The same data on both backends. */
typedef struct {
    void *cpu, *gpu;
    size_t bytes;
} twin;

static twin twin_new(const pair *p, const void *init, size_t bytes)
{
    twin t;
    t.cpu = gbuf_new(p->cpu, init, bytes);
    t.gpu = gbuf_new(p->gpu, init, bytes);
    t.bytes = bytes;
    return t;
}

static void twin_free(const pair *p, twin *t)
{
    p->cpu->buffer_free(p->cpu, t->cpu);
    p->gpu->buffer_free(p->gpu, t->gpu);
}

/* Both sides' bytes, equal; the first difference is reported. */
static int twin_expect_equal(const pair *p, const twin *t, const char *what)
{
    size_t n = t->bytes / sizeof(float);
    float *ref = tu_malloc(t->bytes), *got = tu_malloc(t->bytes);
    gbuf_get(p->cpu, ref, t->cpu, t->bytes, what);
    gbuf_get(p->gpu, got, t->gpu, t->bytes, what);
    size_t i = 0;
    while (i < n && memcmp(&ref[i], &got[i], sizeof *ref) == 0)
        i++;
    cr_expect(i == n, "%s: %s differs from cpu at element %zu of %zu: %.9g, cpu %.9g", what, p->gpu->name, i, n,
              i < n ? got[i] : 0.0, i < n ? ref[i] : 0.0);
    free(ref);
    free(got);
    return i == n;
}

/* Every op of backend_ops.h is set, graph ops included. */
Test(cuda_init, table_is_complete)
{
    vae_backend *be = tu_cuda_backend();
    cr_assert_str_eq(be->name, "cuda");
    cr_assert(be->device_name[0] != '\0', "empty device name");
#define HAS_OP(op) cr_expect(be->op != NULL, "the CUDA backend has no " #op);
    VAE_BACKEND_OPS(HAS_OP, HAS_OP, HAS_OP, HAS_OP)
#undef HAS_OP
    cr_log_info("device: %s", be->device_name);
    vae_backend_free(be);
}

/* ---- every op of the table --------------------------------------------------------------
 * OP_TABLE_OPS=name,name,... restricts these three to some ops (the sanitizer's racecheck). */

#define SEED 4321

/* A name in OP_TABLE_OPS that is no op fails the test rather than select nothing. */
static void assert_selection_known(void)
{
    char name[64];
    cr_assert_null(op_selection_unknown(name, sizeof name), "OP_TABLE_OPS names no op \"%s\"", name);
}

Test(cuda_ops, every_op_against_the_cpu)
{
    pair p = pair_init();
    assert_selection_known();
    int cases = 0;
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        if (!op_selected(d))
            continue;
        for (int k = 0; k < d->ncases; k++, cases++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            cr_expect(op_drive_compare(d, &c, p.cpu, p.gpu, NULL), "%s %s: cuda against cpu (printed above)",
                      d->name, c.shape);
            op_case_free(&c);
        }
    }
    cr_log_info("%d cases", cases);
    pair_free(&p);
}

Test(cuda_determinism, every_op_twice_is_bit_identical)
{
    vae_backend *be = tu_cuda_backend();
    assert_selection_known();
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        if (!op_selected(d))
            continue;
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            cr_expect(op_drive_determinism(d, &c, be, NULL), "%s %s: two runs differ", d->name, c.shape);
            op_case_free(&c);
        }
    }
    vae_backend_free(be);
}

Test(cuda_graph, every_op_replays_like_eager)
{
    vae_backend *be = tu_cuda_backend();
    assert_selection_known();
    for (int t = 0; t < op_table_count; t++) {
        const op_desc *d = op_table[t];
        if (!op_selected(d))
            continue;
        if (d->no_graph) {
            cr_log_info("%s: not captured: %s", d->name, d->no_graph);
            continue;
        }
        for (int k = 0; k < d->ncases; k++) {
            op_case c;
            op_case_make(d, &c, k, SEED + (uint64_t)k);
            const int big = c.big; /* the large cases add time, not coverage, to a replay */
            op_case_free(&c);
            if (!big)
                cr_expect(op_drive_graph(d, k, SEED + (uint64_t)k, 3, be, NULL), "%s case %d: replay (printed above)",
                          d->name, k);
        }
    }
    vae_backend_free(be);
}

/* ---- memory ------------------------------------------------------------------ */

Test(cuda_ops, alloc_is_zeroed_and_memset_zero_and_roundtrip)
{
    vae_backend *be = tu_cuda_backend();
    const size_t n = 1000003;
    unsigned char *host = tu_malloc(n);
    float *p = be->buffer_alloc(be, n);
    be->download(be, host, p, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(host[i], 0, "buffer_alloc not zero-filled at byte %zu", i);
    for (size_t i = 0; i < n; i++)
        host[i] = (unsigned char)(i * 131u + 7u);
    be->upload(be, p, host, n);
    unsigned char *back = tu_malloc(n);
    be->download(be, back, p, n);
    cr_assert(memcmp(host, back, n) == 0, "upload/download roundtrip differs");
    be->memset_zero(be, (unsigned char *)p + 13, n - 26);
    be->download(be, back, p, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char want = (i < 13 || i >= n - 13) ? host[i] : 0;
        cr_assert_eq(back[i], want, "memset_zero: byte %zu is %u, want %u", i, back[i], want);
    }
    be->synchronize(be);
    be->buffer_free(be, p);
    free(host);
    free(back);
    vae_backend_free(be);
}

/* onehot_argmax on rows holding a NaN: a NaN ranks above every number (backend.h), so each
 * backend takes the row's first NaN, exactly; K = 70 spans three sweeps of a warp's lanes. Row 4
 * is the case a lane once got wrong on the GPU: its NaN is lane 3's first element and the row's
 * largest number is lane 3's next (column 35), which that lane dropped while the CPU ignored the
 * NaN and took column 35. The op table's onehot_argmax cases hold NaN rows too. */
Test(cuda_ops, onehot_argmax_takes_a_rows_first_nan_on_both_backends)
{
    pair p = pair_init();
    enum { B = 6, K = 70 };
    float *logits = rand_floats((size_t)B * K, 91, -3, 3);
    logits[0] = NAN;                 /* row 0: first column */
    logits[(size_t)K + 41] = NAN;    /* row 1: a middle column, another lane than its maximum */
    for (int k = 0; k < K; k++)      /* row 2: every column */
        logits[(size_t)2 * K + k] = NAN;
    /* row 3: finite, the control: its largest value */
    logits[(size_t)4 * K + 3] = NAN; /* row 4: lane 3's first element, ... */
    logits[(size_t)4 * K + 35] = 9;  /* ... the row's largest number lane 3's next */
    logits[(size_t)5 * K + 60] = NAN; /* row 5: two NaNs; the first wins */
    logits[(size_t)5 * K + 20] = NAN;
    int want[B] = {0, 41, 0, 0, 3, 20};
    for (int k = 1; k < K; k++)
        if (logits[(size_t)3 * K + k] > logits[(size_t)3 * K + want[3]])
            want[3] = k;
    vae_backend *bes[2] = {p.cpu, p.gpu};
    for (int b = 0; b < 2; b++) {
        vae_backend *be = bes[b];
        float *dl = be->buffer_alloc(be, sizeof(float) * B * K), *dy = be->buffer_alloc(be, sizeof(float) * B * K);
        be->upload(be, dl, logits, sizeof(float) * B * K);
        be->onehot_argmax(be, dy, dl, B, K);
        float y[B * K];
        be->download(be, y, dy, sizeof y);
        for (int i = 0; i < B; i++) {
            int ones = 0, others = 0, at = -1;
            for (int k = 0; k < K; k++) {
                ones += y[i * K + k] == 1.0f;
                others += y[i * K + k] != 1.0f && y[i * K + k] != 0.0f;
                if (y[i * K + k] == 1.0f && at < 0)
                    at = k;
            }
            cr_expect(ones == 1 && others == 0 && at == want[i],
                      "%s, row %d: %d ones (the first at column %d, want %d) and %d values neither 0 nor 1",
                      be->name, i, ones, at, want[i], others);
        }
        be->buffer_free(be, dl);
        be->buffer_free(be, dy);
    }
    free(logits);
    pair_free(&p);
}

/* ---- random numbers ------------------------------------------------------------- */

Test(cuda_ops, rng_matches_cpu_and_reset_reproduces)
{
    pair p = pair_init();
    const uint64_t seed = 20240611u;
    vae_rng *rc = p.cpu->rng_init(p.cpu, seed), *rg = p.gpu->rng_init(p.gpu, seed);
    /* Sizes that leave Philox's blocks of four part-used between calls. */
    const struct {
        int normal;
        size_t n;
    } calls[] = {{1, 4096}, {0, 7}, {1, 2}, {0, 1000003}, {1, 130}, {0, 1}, {1, 1000002}};
    float *first = NULL;
    for (int k = 0; k < COUNT(calls); k++) {
        size_t n = calls[k].n;
        float *poison = nan_floats(n);
        twin t = twin_new(&p, poison, n * sizeof(float));
        char what[96];
        snprintf(what, sizeof what, "rng call %d: %s n=%zu", k, calls[k].normal ? "normal" : "uniform", n);
        if (calls[k].normal) {
            p.cpu->rng_normal(p.cpu, rc, t.cpu, n);
            p.gpu->rng_normal(p.gpu, rg, t.gpu, n);
            twin_expect_equal(&p, &t, what);
        } else {
            p.cpu->rng_uniform(p.cpu, rc, t.cpu, n);
            p.gpu->rng_uniform(p.gpu, rg, t.gpu, n);
            twin_expect_equal(&p, &t, what);
            float *u = tu_malloc(n * sizeof *u);
            gbuf_get(p.gpu, u, t.gpu, n * sizeof *u, what);
            for (size_t i = 0; i < n; i++)
                cr_assert(u[i] > 0.0f && u[i] <= 1.0f, "%s: u[%zu] = %g outside (0, 1]", what, i, u[i]);
            free(u);
        }
        if (k == 0) {
            first = tu_malloc(n * sizeof *first);
            gbuf_get(p.gpu, first, t.gpu, n * sizeof *first, what);
        }
        twin_free(&p, &t);
        free(poison);
    }

    /* Back to the seed's first number: the first draw again, bit for bit. */
    p.cpu->rng_reset(p.cpu, rc);
    p.gpu->rng_reset(p.gpu, rg);
    size_t n0 = calls[0].n;
    float *poison = nan_floats(n0);
    twin t = twin_new(&p, poison, n0 * sizeof(float));
    p.cpu->rng_normal(p.cpu, rc, t.cpu, n0);
    p.gpu->rng_normal(p.gpu, rg, t.gpu, n0);
    twin_expect_equal(&p, &t, "rng normal after reset");
    float *again = tu_malloc(n0 * sizeof *again);
    gbuf_get(p.gpu, again, t.gpu, n0 * sizeof *again, "rng after reset");
    cr_expect(memcmp(again, first, n0 * sizeof *again) == 0, "rng_reset did not reproduce the first draw on %s",
              p.gpu->name);

    /* A different seed gives different numbers. */
    vae_rng *other = p.gpu->rng_init(p.gpu, seed + 1);
    p.gpu->rng_normal(p.gpu, other, t.gpu, n0);
    gbuf_get(p.gpu, again, t.gpu, n0 * sizeof *again, "rng other seed");
    cr_expect(memcmp(again, first, n0 * sizeof *again) != 0, "seeds %llu and %llu gave the same numbers",
              (unsigned long long)seed, (unsigned long long)seed + 1);
    p.gpu->rng_free(p.gpu, other);

    twin_free(&p, &t);
    free(poison);
    free(again);
    free(first);
    p.cpu->rng_free(p.cpu, rc);
    p.gpu->rng_free(p.gpu, rg);
    pair_free(&p);
}

Test(cuda_ops, rng_offset_roundtrip_follows_the_cpu)
{
    pair p = pair_init();
    const uint64_t seed = 0xfedcba9876543210ull, o = (1ull << 34) + 3; /* high halves in use, odd offset */
    vae_rng *rc = p.cpu->rng_init(p.cpu, seed), *rg = p.gpu->rng_init(p.gpu, seed);
    p.cpu->rng_set_offset(p.cpu, rc, o);
    p.gpu->rng_set_offset(p.gpu, rg, o);
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), o);
    const size_t n = 1001; /* odd: the normals after it start mid-block */
    float *poison = nan_floats(n + 1);
    twin t = twin_new(&p, poison, (n + 1) * sizeof(float));
    p.cpu->rng_uniform(p.cpu, rc, t.cpu, n);
    p.gpu->rng_uniform(p.gpu, rg, t.gpu, n);
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), o + n);
    p.cpu->rng_normal(p.cpu, rc, t.cpu, n + 1);
    p.gpu->rng_normal(p.gpu, rg, t.gpu, n + 1);
    twin_expect_equal(&p, &t, "rng normal at offset 2^34 + 3 + 1001");
    cr_expect_eq(p.gpu->rng_get_offset(p.gpu, rg), p.cpu->rng_get_offset(p.cpu, rc));
    twin_free(&p, &t);
    free(poison);
    p.cpu->rng_free(p.cpu, rc);
    p.gpu->rng_free(p.gpu, rg);
    pair_free(&p);
}

/* `cuvae eval`'s whole computation (evaluate.c) on both backends: the same initial parameters,
 * the same images, the same noise stream; odd latent size, odd row budget, K not a multiple of
 * the samples per launch. The normals are bit-identical (the same Philox code on both
 * backends: cuda_ops::rng_matches_cpu_and_reset_reproduces); the GEMMs and sums differ in
 * order, so the per-image means agree to about 1e-4 relative. */
Test(cuda_ops, eval_matches_cpu)
{
    pair p = pair_init();
    vae_config c;
    vae_config_default(&c);
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 5;
    c.hidden[0] = 13;
    vae_dataset ds;
    tu_make_patterns(&ds, 37, 460);
    vae_eval_result r[2];
    vae_backend *bes[2] = {p.cpu, p.gpu};
    for (int b = 0; b < 2; b++) {
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, bes[b], 29), 0, "%s", vae_last_error());
        vae_model_init_params(&m, 461);
        vae_device_data d;
        vae_device_data_init(&d, bes[b], &ds);
        vae_eval_options opt = {.iw_samples = 11, .seed = 462};
        cr_assert_eq(vae_eval_report(&m, &d, &opt, &r[b]), 0, "%s", vae_last_error());
        vae_device_data_free(&d, bes[b]);
        vae_model_free(&m);
    }
    const double got[] = {r[1].loss, r[1].recon, r[1].kl, r[1].loss_mc, r[1].iw_nll};
    const double ref[] = {r[0].loss, r[0].recon, r[0].kl, r[0].loss_mc, r[0].iw_nll};
    cr_expect(tu_allclose_d("eval: loss, recon, kl, loss_mc, iw_nll", got, ref, 5, 1e-4, 1e-4));
    cr_expect(tu_allclose_d("eval: kl per dimension", r[1].kl_dim, r[0].kl_dim, 5, 1e-5, 1e-4));
    cr_expect(tu_allclose_d("eval: variance of the posterior means", r[1].mu_var, r[0].mu_var, 5, 1e-5, 1e-4));
    vae_eval_result_free(&r[0]);
    vae_eval_result_free(&r[1]);
    vae_dataset_free(&ds);
    pair_free(&p);
}

/* ---- graphs ------------------------------------------------------------------------------ */

/* The buffers of a short training-like sequence: C = X P, C = tanh(C + bias),
 * then an Adam step on P with C as its gradient (M == K, so C and P have the
 * same size). Each replay reads the P that the previous one updated. */
typedef struct {
    float *X, *P, *bias, *C, *m, *v;
    int *step;
    float *lr; /* (1) Adam's learning rate, read by the op */
} graph_bufs;

enum { GM = 37, GK = 37, GN = 129 };

static void *upload_new(vae_backend *be, const void *host, size_t bytes)
{
    void *p = be->buffer_alloc(be, bytes);
    be->upload(be, p, host, bytes);
    return p;
}

static graph_bufs graph_bufs_new(vae_backend *be)
{
    graph_bufs g;
    float *x = rand_floats((size_t)GM * GK, 11, -1, 1), *p = rand_floats((size_t)GK * GN, 12, -1, 1);
    float *bias = rand_floats(GN, 13, -1, 1);
    g.X = upload_new(be, x, (size_t)GM * GK * 4);
    g.P = upload_new(be, p, (size_t)GK * GN * 4);
    g.bias = upload_new(be, bias, (size_t)GN * 4);
    g.C = be->buffer_alloc(be, (size_t)GM * GN * 4);
    g.m = be->buffer_alloc(be, (size_t)GK * GN * 4);
    g.v = be->buffer_alloc(be, (size_t)GK * GN * 4);
    g.step = be->buffer_alloc(be, sizeof(int));
    const float lr = 1e-3f;
    g.lr = upload_new(be, &lr, sizeof lr);
    free(x);
    free(p);
    free(bias);
    return g;
}

static void graph_bufs_free(vae_backend *be, graph_bufs *g)
{
    void *bufs[] = {g->X, g->P, g->bias, g->C, g->m, g->v, g->step, g->lr};
    for (int i = 0; i < COUNT(bufs); i++)
        be->buffer_free(be, bufs[i]);
}

static void graph_sequence(vae_backend *be, graph_bufs *g)
{
    static const vae_adam_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f};
    be->gemm(be, 0, 0, GM, GN, GK, 1.0f, g->X, GK, g->P, GN, 0.0f, g->C, GN);
    be->bias_act_forward(be, g->C, g->bias, GM, GN, VAE_ACT_TANH);
    be->adam_step(be, g->P, g->C, g->m, g->v, (size_t)GK * GN, &cfg, g->lr, g->step, NULL, NULL);
}

static void graph_bufs_get(vae_backend *be, graph_bufs *g, float *p, float *c, float *m, float *v, int *step)
{
    be->download(be, p, g->P, (size_t)GK * GN * 4);
    be->download(be, c, g->C, (size_t)GM * GN * 4);
    be->download(be, m, g->m, (size_t)GK * GN * 4);
    be->download(be, v, g->v, (size_t)GK * GN * 4);
    be->download(be, step, g->step, sizeof(int));
}

/* The joint model's evaluation on both backends: vae_eval_loss sums the categorical latent out
 * exactly (vae_model_forward_eval: K decoder passes weighted by q(c|x)), and vae_cluster_assign
 * takes argmax q(c|x); the losses agree within float summation order, the categories exactly
 * (the logits agree to rounding, far from ties on seeded random parameters). */
Test(cuda_ops, joint_evaluation_and_clustering_match_cpu)
{
    pair p = pair_init();
    vae_config c;
    vae_config_default(&c);
    c.variant = vae_variant_find("joint");
    c.disc = 7;
    c.input_dim = 64;
    c.image_rows = c.image_cols = 8;
    c.latent_dim = 3;
    c.hidden[0] = 13;
    vae_dataset ds;
    tu_make_patterns(&ds, 41, 470);
    vae_losses l[2];
    int cats[2][41];
    vae_backend *bes[2] = {p.cpu, p.gpu};
    for (int b = 0; b < 2; b++) {
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, bes[b], 16), 0, "%s", vae_last_error());
        vae_model_init_params(&m, 471);
        vae_device_data d;
        vae_device_data_init(&d, bes[b], &ds);
        l[b] = vae_eval_loss(&m, &d, 472);
        vae_cluster_assign(&m, &d, cats[b]);
        vae_device_data_free(&d, bes[b]);
        vae_model_free(&m);
    }
    cr_assert_eq(l[1].n_terms, l[0].n_terms);
    cr_expect(tu_allclose_d("joint eval: terms", l[1].term, l[0].term, (size_t)l[0].n_terms, 1e-4, 1e-4));
    cr_expect(tu_allclose_d("joint eval: loss", &l[1].loss, &l[0].loss, 1, 1e-4, 1e-4));
    cr_expect(memcmp(cats[0], cats[1], sizeof cats[0]) == 0, "argmax q(c|x) differs between the backends");
    vae_dataset_free(&ds);
    pair_free(&p);
}

Test(cuda_graph, replay_matches_eager_and_advances_step)
{
    pair pr = pair_init();
    vae_backend *be = pr.gpu;
    const size_t np = (size_t)GK * GN, nc = (size_t)GM * GN;
    float *pe = tu_malloc(np * 4), *ce = tu_malloc(nc * 4), *me = tu_malloc(np * 4), *ve = tu_malloc(np * 4);
    float *pg = tu_malloc(np * 4), *cg = tu_malloc(nc * 4), *mg = tu_malloc(np * 4), *vg = tu_malloc(np * 4);
    float *p0 = tu_malloc(np * 4);
    int step_e, step_g;

    /* Eagerly, three times (this also loads every kernel before the capture). */
    graph_bufs eager = graph_bufs_new(be);
    for (int r = 0; r < 3; r++)
        graph_sequence(be, &eager);
    graph_bufs_get(be, &eager, pe, ce, me, ve, &step_e);
    cr_assert_eq(step_e, 3);

    /* Captured once: recorded, not run. */
    graph_bufs gb = graph_bufs_new(be);
    be->download(be, p0, gb.P, np * 4);
    be->graph_capture_begin(be);
    graph_sequence(be, &gb);
    vae_graph *graph = be->graph_capture_end(be);
    cr_assert_not_null(graph);
    graph_bufs_get(be, &gb, pg, cg, mg, vg, &step_g);
    cr_expect_eq(step_g, 0, "the capture ran the ops (step %d)", step_g);
    cr_expect(memcmp(pg, p0, np * 4) == 0, "the capture changed the parameters");

    /* Replayed three times: the same as eager, the step counter at 3. */
    for (int r = 0; r < 3; r++)
        be->graph_launch(be, graph);
    graph_bufs_get(be, &gb, pg, cg, mg, vg, &step_g);
    cr_expect_eq(step_g, 3, "adam step counter after 3 replays is %d", step_g);
    cr_expect(tu_allclose("graph vs eager: params", pg, pe, np, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: C", cg, ce, nc, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: m", mg, me, np, 1e-6, 1e-6));
    cr_expect(tu_allclose("graph vs eager: v", vg, ve, np, 1e-9, 1e-6));

    /* And the CPU backend, three eager runs: the reference. */
    graph_bufs cpu = graph_bufs_new(pr.cpu);
    for (int r = 0; r < 3; r++)
        graph_sequence(pr.cpu, &cpu);
    int step_c;
    graph_bufs_get(pr.cpu, &cpu, pe, ce, me, ve, &step_c);
    cr_expect_eq(step_c, 3);
    cr_expect(tu_allclose("graph vs cpu: params", pg, pe, np, 1e-4, 1e-4));
    cr_expect(tu_allclose("graph vs cpu: C", cg, ce, nc, 1e-4, 1e-4));

    be->graph_free(be, graph);
    graph_bufs_free(be, &eager);
    graph_bufs_free(be, &gb);
    graph_bufs_free(pr.cpu, &cpu);
    float *hosts[] = {pe, ce, me, ve, pg, cg, mg, vg, p0};
    for (int i = 0; i < COUNT(hosts); i++)
        free(hosts[i]);
    pair_free(&pr);
}

Test(cuda_graph, the_divergence_gate_works_in_a_replayed_graph)
{
    vae_backend *be = tu_cuda_backend();
    const size_t n = 4099;
    const vae_adam_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f};
    float *params = rand_floats(n, 970, -1, 1), *g = rand_floats(n, 971, -1, 1);
    float *P = upload_new(be, params, n * 4), *G = upload_new(be, g, n * 4);
    float *Mm = be->buffer_alloc(be, n * 4), *V = be->buffer_alloc(be, n * 4), *SC = be->buffer_alloc(be, 4);
    int *STEP = be->buffer_alloc(be, sizeof(int)), *FLAG = be->buffer_alloc(be, sizeof(int));
    float *LR = upload_new(be, &cfg.lr, sizeof cfg.lr);
    be->graph_capture_begin(be);
    be->check_finite(be, FLAG, G, n, 2);
    be->grad_clip_scale(be, SC, G, n, 1.0f);
    be->adam_step(be, P, G, Mm, V, n, &cfg, LR, STEP, FLAG, SC);
    vae_graph *graph = be->graph_capture_end(be);
    be->graph_launch(be, graph);
    be->graph_launch(be, graph);
    int step, flag;
    be->download(be, &step, STEP, sizeof step);
    be->download(be, &flag, FLAG, sizeof flag);
    cr_expect_eq(step, 2);
    cr_expect_eq(flag, 0);
    float *before = tu_malloc(n * 4), *after = tu_malloc(n * 4);
    be->download(be, before, P, n * 4);
    g[n - 1] = INFINITY;
    be->upload(be, G, g, n * 4);
    be->graph_launch(be, graph);
    g[n - 1] = 0.5f; /* a good gradient again: still skipped, the flag is latched */
    be->upload(be, G, g, n * 4);
    be->graph_launch(be, graph);
    be->download(be, after, P, n * 4);
    be->download(be, &step, STEP, sizeof step);
    be->download(be, &flag, FLAG, sizeof flag);
    cr_expect_eq(flag, 2, "flag %d after an infinite gradient", flag);
    cr_expect_eq(step, 2, "Adam's counter moved to %d", step);
    cr_expect(memcmp(before, after, n * 4) == 0, "a replay after the infinite gradient changed the parameters");
    be->graph_free(be, graph);
    void *bufs[] = {P, G, Mm, V, SC, STEP, FLAG, LR};
    for (int i = 0; i < COUNT(bufs); i++)
        be->buffer_free(be, bufs[i]);
    free(params);
    free(g);
    free(before);
    free(after);
    vae_backend_free(be);
}

/* A graph holding draws draws new numbers at every replay (the offset is read and advanced on
 * the device), the same numbers as eager draws on the CPU. */
Test(cuda_graph, rng_replay_draws_the_next_numbers)
{
    pair p = pair_init();
    vae_backend *be = p.gpu;
    const uint64_t seed = 31337;
    const size_t nu = 1281, nz = 2560; /* an odd uniform count: the normals start mid-block */
    vae_rng *rg = be->rng_init(be, seed), *rc = p.cpu->rng_init(p.cpu, seed);
    float *u = be->buffer_alloc(be, nu * sizeof(float)), *z = be->buffer_alloc(be, nz * sizeof(float));
    be->graph_capture_begin(be);
    be->rng_uniform(be, rg, u, nu);
    be->rng_normal(be, rg, z, nz);
    vae_graph *graph = be->graph_capture_end(be);
    cr_assert_not_null(graph);
    cr_expect_eq(be->rng_get_offset(be, rg), 0, "the capture drew numbers");
    float *gu[2], *gz[2], *cu = tu_malloc(nu * sizeof *cu), *cz = tu_malloc(nz * sizeof *cz);
    for (int r = 0; r < 2; r++) {
        be->graph_launch(be, graph);
        gu[r] = tu_malloc(nu * sizeof *gu[r]);
        gz[r] = tu_malloc(nz * sizeof *gz[r]);
        be->download(be, gu[r], u, nu * sizeof *gu[r]);
        be->download(be, gz[r], z, nz * sizeof *gz[r]);
        p.cpu->rng_uniform(p.cpu, rc, cu, nu);
        p.cpu->rng_normal(p.cpu, rc, cz, nz);
        cr_expect(memcmp(gu[r], cu, nu * sizeof *cu) == 0, "replay %d: uniforms differ from the CPU's", r + 1);
        cr_expect(memcmp(gz[r], cz, nz * sizeof *cz) == 0, "replay %d: normals differ from the CPU's", r + 1);
        cr_expect_eq(be->rng_get_offset(be, rg), (uint64_t)(r + 1) * (nu + nz), "offset after replay %d", r + 1);
    }
    cr_expect(memcmp(gz[0], gz[1], nz * sizeof *cz) != 0, "two replays drew the same normals");
    cr_expect(memcmp(gu[0], gu[1], nu * sizeof *cu) != 0, "two replays drew the same uniforms");
    for (int r = 0; r < 2; r++) {
        free(gu[r]);
        free(gz[r]);
    }
    free(cu);
    free(cz);
    be->graph_free(be, graph);
    be->buffer_free(be, u);
    be->buffer_free(be, z);
    be->rng_free(be, rg);
    p.cpu->rng_free(p.cpu, rc);
    pair_free(&p);
}

/* ---- misuse that must be fatal ------------------------------------------------------------ */

/* Runs `body` in a child process (which alone touches CUDA, so the fork is
 * safe) with its stderr captured into err. Returns the child's exit status:
 * 77 when it found no GPU, 1 when vae_fatal ended it. */
static int run_child(void (*body)(vae_backend *), char *err, size_t errlen)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        if (vae_cuda_device_count() == 0) {
            fprintf(stderr, "%s", vae_backend_cuda_init(0) ? "" : vae_last_error());
            _exit(77);
        }
        vae_backend *be = vae_backend_cuda_init(0);
        if (!be)
            _exit(78);
        body(be);
        _exit(0); /* body returned: the misuse was not caught */
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < errlen && (got = read(fd[0], err + len, errlen - 1 - len)) > 0)
        len += (size_t)got;
    err[len] = '\0';
    char sink[256];
    while (read(fd[0], sink, sizeof sink) > 0) {
    }
    close(fd[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void download_during_capture(vae_backend *be)
{
    float *x = be->buffer_alloc(be, 64), host[16];
    be->graph_capture_begin(be);
    be->memset_zero(be, x, 64);
    be->download(be, host, x, sizeof host);
}

static void rng_set_offset_during_capture(vae_backend *be)
{
    float *x = be->buffer_alloc(be, 64);
    vae_rng *r = be->rng_init(be, 1);
    be->graph_capture_begin(be);
    be->rng_normal(be, r, x, 16); /* may be captured */
    be->rng_set_offset(be, r, 16); /* an upload: may not */
}

static void expect_fatal_child(void (*body)(vae_backend *), const char *what)
{
    char err[2048];
    int st = run_child(body, err, sizeof err);
    if (st == 77)
        cr_skip_test("%s", err); /* "no CUDA device: ..." */
    cr_assert_eq(st, 1, "%s: the child exited with %d, not through vae_fatal; stderr: %s", what, st, err);
    cr_assert(strstr(err, "graph capture") != NULL, "%s: message does not mention the capture: %s", what, err);
}

Test(cuda_graph, download_during_capture_is_fatal)
{
    expect_fatal_child(download_during_capture, "download during capture");
}

Test(cuda_graph, rng_set_offset_during_capture_is_fatal)
{
    expect_fatal_child(rng_set_offset_during_capture, "rng_set_offset during capture");
}
