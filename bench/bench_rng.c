/*
 * bench_rng.c: the CPU's cost of the noise, the old generator against the new:
 * cuRAND's host generator (Philox4x32-10, what the CPU backend used before)
 * and the CPU backend's own Philox (include/philox.h, what it uses now), on
 * the draws the model family needs per training step at batch 128 and per
 * 10^6 values. One thread; each figure is the best of 5 timed rounds of at
 * least 0.2 s, the two generators' rounds interleaved. README "Random numbers" quotes its output (bench/results/).
 *
 * Not a test (it checks nothing but that each generator ran) and not a GPU
 * benchmark: the GPU's cost is measured nowhere yet.
 *
 * usage: bench_rng   (build target bench_rng; prints a table to stdout)
 */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "vae_util.h"

#include <curand.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CURAND_HOST_CHECK(call)                                                                  \
    do {                                                                                         \
        curandStatus_t st_ = (call);                                                             \
        if (st_ != CURAND_STATUS_SUCCESS)                                                        \
            vae_fatal("%s failed: cuRAND status %d", #call, (int)st_);                          \
    } while (0)

typedef struct {
    const char *what;
    int normal; /* else uniform */
    size_t n;
} bench_case;

typedef struct {
    curandGenerator_t curand;
    vae_backend *cpu;
    vae_rng *philox;
} generators;

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        vae_fatal("clock_gettime failed");
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw(generators *g, int use_curand, const bench_case *c, float *out)
{
    if (use_curand) {
        if (c->normal)
            CURAND_HOST_CHECK(curandGenerateNormal(g->curand, out, c->n, 0.0f, 1.0f));
        else
            CURAND_HOST_CHECK(curandGenerateUniform(g->curand, out, c->n));
    } else if (c->normal) {
        g->cpu->rng_normal(g->cpu, g->philox, out, c->n);
    } else {
        g->cpu->rng_uniform(g->cpu, g->philox, out, c->n);
    }
}

/* Seconds per call of one round: calls for at least 0.2 s. */
static double time_round(generators *g, int use_curand, const bench_case *c, float *out)
{
    long calls = 0;
    const double t0 = now_s();
    double t;
    do {
        draw(g, use_curand, c, out);
        calls++;
        t = now_s() - t0;
    } while (t < 0.2);
    return t / (double)calls;
}

/* Seconds per call of each generator: the best of 5 rounds, the two generators' rounds
 * interleaved so that both see the same load on a shared machine. */
static void time_case(generators *g, const bench_case *c, float *out, double *t_curand, double *t_philox)
{
    draw(g, 1, c, out); /* warm */
    draw(g, 0, c, out);
    *t_curand = *t_philox = 1e30;
    for (int round = 0; round < 5; round++) {
        const double tc = time_round(g, 1, c, out), tp = time_round(g, 0, c, out);
        if (tc < *t_curand)
            *t_curand = tc;
        if (tp < *t_philox)
            *t_philox = tp;
    }
}

int main(void)
{
    const bench_case cases[] = {
        {"normals, B x Z = 128 x 20 (reparameterization)", 1, 2560},
        {"uniforms, 128 x 784 (dynamic binarization)", 0, 100352},
        {"uniforms, 128 x 10 (Gumbel-softmax)", 0, 1280},
        {"normals, 10^6", 1, 1000000},
        {"uniforms, 10^6", 0, 1000000},
    };
    generators g;
    CURAND_HOST_CHECK(curandCreateGeneratorHost(&g.curand, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CURAND_HOST_CHECK(curandSetPseudoRandomGeneratorSeed(g.curand, 1));
    g.cpu = vae_backend_cpu_init();
    g.philox = g.cpu->rng_init(g.cpu, 1);
    float *out = vae_calloc(1000000, sizeof *out);

    printf("CPU cost of the noise, one thread: cuRAND's host generator vs our Philox (include/philox.h)\n");
    printf("%-48s %10s %14s %14s %12s %12s %8s\n", "draw", "n", "curand us", "philox us", "curand ns/v",
           "philox ns/v", "ratio");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bench_case *c = &cases[i];
        double tc, tp;
        time_case(&g, c, out, &tc, &tp);
        printf("%-48s %10zu %14.2f %14.2f %12.2f %12.2f %8.2f\n", c->what, c->n, tc * 1e6, tp * 1e6,
               tc * 1e9 / (double)c->n, tp * 1e9 / (double)c->n, tp / tc);
        fflush(stdout);
    }
    vae_free(out);
    g.cpu->rng_free(g.cpu, g.philox);
    vae_backend_free(g.cpu);
    CURAND_HOST_CHECK(curandDestroyGenerator(g.curand));
    return 0;
}
