/*
 * test_cpu_threads.c: the CPU backend's threaded ops (src/cpu_backend.c) give the
 * same bits on 1 thread as on 2, on shapes large enough to be split among threads
 * and not multiples of the block sizes: lik_bernoulli, bias_act forward and
 * backward, Adam, the gather, the finiteness check, the reparameterization both
 * ways and the Gaussian KL (and the clear, which runs on the calling thread). And the normals drawn
 * from a Philox block boundary (the vectorized, threaded path) equal those drawn pair
 * by pair from an offset in the middle of a block (the general path).
 * The GEMMs are not here: oneDNN's results depend on the thread count (README).
 */
#include "backend.h"
#include "testutil.h"
#include "vae_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

enum { B = 131, N = 777, D = 1001, Z = 23 }; /* B * N, B * D above 32768 elements, B * Z above 2048 */

typedef struct {
    float *loss, *dlogits;                          /* lik_bernoulli: (B), (B, D) */
    float *fwd, *dx, *dbias;                        /* bias_act: (B, N), (B, N), (N) */
    float *p, *m, *v;                               /* Adam: (B * N) each */
    float *x;                                       /* gather: (B, D) */
    float *z, *dstats, *kl;                         /* reparam: (B, Z), (B, 2Z); kl_gaussian: (B) */
    int flag_clean, flag_nan;                       /* check_finite */
} outputs;

/* Every threaded op once, with the CPU backend on `threads` threads, into o. */
static void run_ops(int threads, outputs *o)
{
    vae_cpu_set_threads(threads);
    cr_assert_eq(vae_cpu_threads(), threads);
    vae_backend *be = vae_backend_cpu_init();
    const size_t nbd = (size_t)B * D, nbn = (size_t)B * N;
    float *logits = vae_calloc(nbd, sizeof(float)), *target = vae_calloc(nbd, sizeof(float));
    float *dy = vae_calloc(nbn, sizeof(float)), *y = vae_calloc(nbn, sizeof(float));
    float *bias = vae_calloc(N, sizeof(float)), *g = vae_calloc(nbn, sizeof(float));
    tu_fill_uniform(logits, nbd, 1, -30.0f, 30.0f);
    tu_fill_uniform(target, nbd, 2, 0.0f, 1.0f);
    tu_fill_uniform(dy, nbn, 3, -1.0f, 1.0f);
    tu_fill_uniform(y, nbn, 4, -1.0f, 1.0f);
    tu_fill_uniform(bias, N, 5, -1.0f, 1.0f);
    tu_fill_uniform(g, nbn, 6, -1e-2f, 1e-2f);

    o->loss = vae_calloc(B, sizeof(float));
    o->dlogits = vae_calloc(nbd, sizeof(float));
    const float w = 0.5f;
    be->lik_bernoulli(be, o->loss, 1, o->dlogits, logits, target, B, D, &w, 1.0f);

    o->fwd = vae_calloc(nbn, sizeof(float));
    memcpy(o->fwd, dy, nbn * sizeof(float));
    be->bias_act_forward(be, o->fwd, bias, B, N, VAE_ACT_RELU);
    o->dx = vae_calloc(nbn, sizeof(float));
    o->dbias = vae_calloc(N, sizeof(float));
    tu_fill_uniform(o->dbias, N, 7, -1.0f, 1.0f); /* the op writes over it */
    be->bias_act_backward(be, o->dx, o->dbias, dy, y, B, N, VAE_ACT_RELU);

    o->p = vae_calloc(nbn, sizeof(float));
    o->m = vae_calloc(nbn, sizeof(float));
    o->v = vae_calloc(nbn, sizeof(float));
    tu_fill_uniform(o->p, nbn, 8, -1.0f, 1.0f);
    const vae_adam_config cfg = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    const float lr = 1e-3f;
    int step = 0;
    for (int s = 0; s < 3; s++)
        be->adam_step(be, o->p, g, o->m, o->v, nbn, &cfg, &lr, &step, NULL, NULL);

    uint8_t *data = vae_calloc((size_t)500 * D, 1);
    for (size_t i = 0; i < (size_t)500 * D; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 24);
    int32_t idx[B];
    for (int i = 0; i < B; i++)
        idx[i] = (i * 37 + 11) % 500;
    o->x = vae_calloc(nbd, sizeof(float));
    be->gather_batch(be, o->x, data, idx, B, D);

    float *cleared = vae_calloc(nbd, sizeof(float));
    memcpy(cleared, o->dlogits, nbd * sizeof(float));
    be->memset_zero(be, cleared, nbd * sizeof(float) - 12); /* all but the last 3 */
    size_t wrong = 0;
    for (size_t i = 0; i < nbd; i++)
        wrong += cleared[i] != (i < nbd - 3 ? 0.0f : o->dlogits[i]);
    cr_expect_eq(wrong, 0, "memset_zero on %d threads: %zu elements wrong", threads, wrong);
    vae_free(cleared);

    float *stats = vae_calloc((size_t)B * 2 * Z, sizeof(float)), *eps = vae_calloc((size_t)B * Z, sizeof(float));
    tu_fill_uniform(stats, (size_t)B * 2 * Z, 9, -2.0f, 2.0f);
    tu_fill_uniform(eps, (size_t)B * Z, 10, -2.0f, 2.0f);
    o->z = vae_calloc((size_t)B * Z, sizeof(float));
    o->dstats = vae_calloc((size_t)B * 2 * Z, sizeof(float));
    o->kl = vae_calloc(B, sizeof(float));
    be->reparam_forward(be, o->z, stats, eps, B, Z);
    be->kl_gaussian(be, o->kl, 1, o->dstats, stats, B, Z, &w, 1.0f);
    be->reparam_backward(be, o->dstats, o->z, stats, eps, B, Z); /* accumulates onto the KL's */
    vae_free(stats);
    vae_free(eps);

    o->flag_clean = o->flag_nan = 0;
    be->check_finite(be, &o->flag_clean, g, nbn, 3);
    g[nbn - 5] = NAN; /* in the last block, another thread's part */
    be->check_finite(be, &o->flag_nan, g, nbn, 3);

    vae_free(logits);
    vae_free(target);
    vae_free(dy);
    vae_free(y);
    vae_free(bias);
    vae_free(g);
    vae_free(data);
    vae_backend_free(be);
}

static void expect_same(const char *what, const float *a, const float *b, size_t n)
{
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            first = i;
    cr_expect_eq(first, n, "%s: 1 and 2 threads differ first at %zu (%a against %a)", what, first,
                 first < n ? (double)a[first] : 0.0, first < n ? (double)b[first] : 0.0);
}

Test(cpu_threads, ops_give_the_same_bits_on_one_and_two_threads)
{
    outputs one, two;
    run_ops(1, &one);
    run_ops(2, &two);
    const size_t nbd = (size_t)B * D, nbn = (size_t)B * N;
    expect_same("lik_bernoulli loss", one.loss, two.loss, B);
    expect_same("lik_bernoulli gradient", one.dlogits, two.dlogits, nbd);
    expect_same("bias_act_forward", one.fwd, two.fwd, nbn);
    expect_same("bias_act_backward dx", one.dx, two.dx, nbn);
    expect_same("bias_act_backward dbias", one.dbias, two.dbias, N);
    expect_same("adam params", one.p, two.p, nbn);
    expect_same("adam m", one.m, two.m, nbn);
    expect_same("adam v", one.v, two.v, nbn);
    expect_same("gather_batch", one.x, two.x, nbd);
    expect_same("reparam_forward", one.z, two.z, (size_t)B * Z);
    expect_same("kl_gaussian loss", one.kl, two.kl, B);
    expect_same("kl_gaussian + reparam_backward gradient", one.dstats, two.dstats, (size_t)B * 2 * Z);
    cr_expect_eq(one.flag_clean, 0);
    cr_expect_eq(two.flag_clean, 0);
    cr_expect_eq(one.flag_nan, 3, "1 thread missed the NaN");
    cr_expect_eq(two.flag_nan, 3, "2 threads missed the NaN");
    float *bufs1[] = {one.loss, one.dlogits, one.fwd, one.dx, one.dbias, one.p, one.m, one.v, one.x, one.z, one.dstats,
                      one.kl};
    float *bufs2[] = {two.loss, two.dlogits, two.fwd, two.dx, two.dbias, two.p, two.m, two.v, two.x, two.z, two.dstats,
                      two.kl};
    for (size_t i = 0; i < sizeof bufs1 / sizeof bufs1[0]; i++) {
        vae_free(bufs1[i]);
        vae_free(bufs2[i]);
    }
}

/* The bias gradient is each column's sum in row order, whichever block of columns a
 * thread takes: the same bits as the plain loop. */
Test(cpu_threads, bias_gradient_is_the_column_sum_in_row_order)
{
    outputs o;
    run_ops(2, &o);
    float *dy = vae_calloc((size_t)B * N, sizeof(float)), *y = vae_calloc((size_t)B * N, sizeof(float));
    float *dbias = vae_calloc(N, sizeof(float));
    tu_fill_uniform(dy, (size_t)B * N, 3, -1.0f, 1.0f);
    tu_fill_uniform(y, (size_t)B * N, 4, -1.0f, 1.0f);
    for (int j = 0; j < N; j++) {
        float s = 0.0f;
        for (int i = 0; i < B; i++)
            s += y[(size_t)i * N + j] > 0.0f ? dy[(size_t)i * N + j] : 0.0f;
        dbias[j] = s;
    }
    expect_same("dbias against the plain loop", o.dbias, dbias, N);
    vae_free(dy);
    vae_free(y);
    vae_free(dbias);
    float *bufs[] = {o.loss, o.dlogits, o.fwd, o.dx, o.dbias, o.p, o.m, o.v, o.x, o.z, o.dstats, o.kl};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vae_free(bufs[i]);
}

Test(cpu_threads, normals_from_a_block_boundary_equal_those_from_mid_block)
{
    vae_cpu_set_threads(2); /* 2,000 blocks: split among the threads */
    vae_backend *be = vae_backend_cpu_init();
    vae_rng *a = be->rng_init(be, 42), *b = be->rng_init(be, 42);
    enum { N_NORMALS = 8002 };
    static float whole[N_NORMALS], parts[N_NORMALS];
    be->rng_normal(be, a, whole, N_NORMALS);         /* offset 0: whole blocks, then one pair */
    be->rng_normal(be, b, parts, 2);                 /* offset 0: one pair */
    be->rng_normal(be, b, parts + 2, N_NORMALS - 2); /* offset 2: mid-block, pair by pair */
    expect_same("normals", whole, parts, N_NORMALS);
    cr_expect_eq(be->rng_get_offset(be, a), N_NORMALS);
    cr_expect_eq(be->rng_get_offset(be, b), N_NORMALS);
    float again[8];
    be->rng_normal(be, a, again, 8);
    be->rng_normal(be, b, parts, 8);
    expect_same("the next normals", again, parts, 8);
    be->rng_free(be, a);
    be->rng_free(be, b);
    vae_backend_free(be);
}
