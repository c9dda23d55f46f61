/*
 * toy.c: the 1-D Gaussian-mixture toy's parameters, sampler, density and total variation
 * distance; see toy.h. Everything here is host code in double.
 */
#define _GNU_SOURCE /* M_PI, M_SQRT2 */
#include "toy.h"

#include "hostrng.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seeds of the two splits, derived from --seed so they differ from each other and from the noise. */
#define SEED_TOY_TRAIN 0x746f79747261ull /* "toytra" */
#define SEED_TOY_TEST 0x746f79746573ull  /* "toytes" */

void vae_toy_default(vae_toy *t)
{
    memset(t, 0, sizeof *t);
    if (vae_toy_set(t, "--toy-weights", VAE_TOY_DEFAULT_WEIGHTS) || vae_toy_set(t, "--toy-means", VAE_TOY_DEFAULT_MEANS) ||
        vae_toy_set(t, "--toy-stds", VAE_TOY_DEFAULT_STDS) || vae_toy_set(t, "--toy-n", VAE_TOY_DEFAULT_N))
        vae_fatal("the toy's defaults: %s", vae_last_error());
}

/* Comma-separated finite numbers into out (at most VAE_TOY_MAX_COMPONENTS); their count, or -1. */
static int parse_list(const char *flag, const char *text, double *out)
{
    int n = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || (*end != ',' && *end != '\0') || *p == ' ')
            return vae_set_error("%s '%s': expected comma-separated numbers", flag, text);
        if (n == VAE_TOY_MAX_COMPONENTS)
            return vae_set_error("%s '%s': more than %d components", flag, text, VAE_TOY_MAX_COMPONENTS);
        out[n++] = v;
        if (*end == '\0')
            return n;
        p = end + 1;
    }
}

int vae_toy_set(vae_toy *t, const char *flag, const char *text)
{
    double v[VAE_TOY_MAX_COMPONENTS];
    int n = parse_list(flag, text, v);
    if (n < 0)
        return -1;
    if (strcmp(flag, "--toy-n") == 0) {
        if (n != 2 || v[0] != floor(v[0]) || v[1] != floor(v[1]) || v[0] < 1 || v[1] < 1 || v[0] > 10000000 ||
            v[1] > 10000000)
            return vae_set_error("--toy-n '%s': expected TRAIN,TEST: two row counts from 1 to 10000000", text);
        t->n_train = (int)v[0];
        t->n_test = (int)v[1];
        return 0;
    }
    int is_w = strcmp(flag, "--toy-weights") == 0, is_s = strcmp(flag, "--toy-stds") == 0;
    if (!is_w && !is_s && strcmp(flag, "--toy-means") != 0)
        vae_fatal("vae_toy_set: unknown flag %s", flag);
    for (int i = 0; i < n; i++)
        if ((is_w || is_s) && !(v[i] > 0))
            return vae_set_error("%s '%s': component %d is %g; %s must be greater than 0", flag, text, i + 1, v[i],
                                 is_w ? "weights" : "standard deviations");
    double *dst = is_w ? t->weight : is_s ? t->std : t->mean;
    memcpy(dst, v, (size_t)n * sizeof *v);
    *(is_w ? &t->k_weights : is_s ? &t->k_stds : &t->k_means) = n;
    t->k = t->k_weights;
    return 0;
}

/* The shortest decimal text that reads back as the same double. */
static void double_text(double x, char *buf, size_t cap)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

void vae_toy_text(const vae_toy *t, const char *flag, char *buf, size_t cap)
{
    if (strcmp(flag, "--toy-n") == 0) {
        snprintf(buf, cap, "%d,%d", t->n_train, t->n_test);
        return;
    }
    int is_w = strcmp(flag, "--toy-weights") == 0, is_s = strcmp(flag, "--toy-stds") == 0;
    const double *v = is_w ? t->weight : is_s ? t->std : t->mean;
    int n = is_w ? t->k_weights : is_s ? t->k_stds : t->k_means;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        char one[40];
        double_text(v[i], one, sizeof one);
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", i ? "," : "", one);
    }
}

int vae_toy_validate(const vae_toy *t)
{
    if (t->k_weights != t->k_means || t->k_weights != t->k_stds)
        return vae_set_error("--data toy: --toy-weights has %d components, --toy-means %d and --toy-stds %d; "
                             "give each the same number",
                             t->k_weights, t->k_means, t->k_stds);
    return 0;
}

static double weight_sum(const vae_toy *t)
{
    double s = 0;
    for (int i = 0; i < t->k; i++)
        s += t->weight[i];
    return s;
}

double vae_toy_density(const vae_toy *t, double x)
{
    double p = 0;
    for (int i = 0; i < t->k; i++) {
        double u = (x - t->mean[i]) / t->std[i];
        p += t->weight[i] * exp(-0.5 * u * u) / (t->std[i] * sqrt(2 * M_PI));
    }
    return p / weight_sum(t);
}

double vae_toy_cdf(const vae_toy *t, double x)
{
    double p = 0;
    for (int i = 0; i < t->k; i++)
        p += t->weight[i] * 0.5 * erfc(-(x - t->mean[i]) / (t->std[i] * M_SQRT2));
    return p / weight_sum(t);
}

double vae_toy_normal(vae_hostrng *r)
{
    /* 1 - uniform is in (0, 1], so the log is finite */
    double u1 = 1.0 - vae_hostrng_uniform(r), u2 = vae_hostrng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

void vae_toy_sample(const vae_toy *t, int n, uint64_t seed, double *x, uint8_t *comp)
{
    vae_hostrng r;
    vae_hostrng_seed(&r, seed);
    const double total = weight_sum(t);
    for (int j = 0; j < n; j++) {
        double u = vae_hostrng_uniform(&r) * total, acc = 0;
        int c = t->k - 1;
        for (int i = 0; i < t->k - 1; i++) {
            acc += t->weight[i];
            if (u < acc) {
                c = i;
                break;
            }
        }
        x[j] = t->mean[c] + t->std[c] * vae_toy_normal(&r);
        if (comp)
            comp[j] = (uint8_t)c;
    }
}

static int one_split(const vae_toy *t, int n, uint64_t seed, vae_dataset *out)
{
    double *x = vae_calloc((size_t)n, sizeof *x);
    float *xf = vae_calloc((size_t)n, sizeof *xf);
    uint8_t *comp = vae_calloc((size_t)n, 1);
    vae_toy_sample(t, n, seed, x, comp);
    for (int i = 0; i < n; i++)
        xf[i] = (float)x[i];
    int rc = vae_dataset_from_floats(out, n, 1, xf, comp);
    vae_free(x);
    vae_free(xf);
    vae_free(comp);
    return rc;
}

int vae_toy_datasets(const vae_toy *t, uint64_t seed, vae_dataset *train, vae_dataset *test)
{
    if (vae_toy_validate(t) || (train && one_split(t, t->n_train, seed ^ SEED_TOY_TRAIN, train)))
        return -1;
    if (test && one_split(t, t->n_test, seed ^ SEED_TOY_TEST, test)) {
        if (train)
            vae_dataset_free(train);
        return -1;
    }
    return 0;
}

void vae_toy_range(const vae_toy *t, double *lo, double *hi)
{
    double a = INFINITY, b = -INFINITY;
    for (int i = 0; i < t->k; i++) {
        a = fmin(a, t->mean[i] - 4 * t->std[i]);
        b = fmax(b, t->mean[i] + 4 * t->std[i]);
    }
    *lo = floor(a / VAE_TOY_TV_BIN_WIDTH) * VAE_TOY_TV_BIN_WIDTH;
    *hi = ceil(b / VAE_TOY_TV_BIN_WIDTH) * VAE_TOY_TV_BIN_WIDTH;
}

double vae_toy_tv(const vae_toy *t, const double *x, int n)
{
    double lo, hi;
    vae_toy_range(t, &lo, &hi);
    const int bins = (int)lround((hi - lo) / VAE_TOY_TV_BIN_WIDTH);
    /* count[0]: below lo; count[1 + b]: bin b; count[bins + 1]: at or above hi (and NaN) */
    long *count = vae_calloc((size_t)bins + 2, sizeof *count);
    for (int i = 0; i < n; i++) {
        int b;
        if (x[i] < lo)
            b = 0;
        else if (!(x[i] < hi))
            b = bins + 1;
        else {
            b = 1 + (int)floor((x[i] - lo) / VAE_TOY_TV_BIN_WIDTH);
            if (b > bins)
                b = bins;
        }
        count[b]++;
    }
    double tv = 0, prev = 0;
    for (int b = 0; b < bins + 2; b++) {
        double edge = b <= bins ? lo + b * VAE_TOY_TV_BIN_WIDTH : INFINITY; /* the upper edge of bin b */
        double cdf = b <= bins ? vae_toy_cdf(t, edge) : 1.0;
        tv += fabs((double)count[b] / n - (cdf - prev));
        prev = cdf;
    }
    vae_free(count);
    return 0.5 * tv;
}

int vae_toy_snapshot_due(int every, long step)
{
    if (every < 0)
        return 0;
    if (every > 0 || step == 0)
        return step % (every > 0 ? every : 1) == 0;
    for (long p = 10; p > 0 && p <= step; p *= 10)
        if (step == p || step == 2 * p || step == 5 * p)
            return 1;
    return 0;
}
