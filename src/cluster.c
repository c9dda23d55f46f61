/*
 * cluster.c: cluster assignments of a categorical latent and their scores against labels
 * (NMI, Hungarian-matched accuracy); see cluster.h.
 */
#include "cluster.h"

#include "vae_util.h"

#include <math.h>
#include <string.h>

void vae_cluster_assign(vae_model *m, vae_device_data *data, int *cats)
{
    if (vae_model_categorical(m) < 0)
        vae_fatal("cluster: the model has no categorical latent");
    const int bs = m->batch_cap;
    for (int first = 0; first < data->n; first += bs) {
        int B = data->n - first < bs ? data->n - first : bs;
        vae_device_data_gather_model(m, data, data->order + first, B);
        vae_model_encode(m, B); /* q(c|x) is the encoder's: no noise, no decoder */
        vae_model_download_categories(m, B, cats + first);
    }
}

void vae_cluster_scores(vae_model *m, vae_device_data *data, const vae_dataset *labelled, double *nmi, double *acc)
{
    *nmi = *acc = NAN;
    if (!labelled->labels)
        return;
    const int n = labelled->n;
    int *cats = vae_calloc((size_t)n, sizeof *cats), *labels = vae_calloc((size_t)n, sizeof *labels);
    vae_cluster_assign(m, data, cats); /* checks that m has a categorical latent */
    const int K = m->latent[vae_model_categorical(m)].dim;
    for (int i = 0; i < n; i++)
        labels[i] = labelled->labels[i];
    *nmi = vae_cluster_nmi(cats, K, labels, labelled->classes, n);
    *acc = vae_cluster_accuracy(cats, K, labels, labelled->classes, n);
    vae_free(cats);
    vae_free(labels);
}

/* Contingency counts (ka, kb) and the entropy of a labeling's counts, in nats. */
static double *contingency(const int *a, int ka, const int *b, int kb, int n)
{
    double *c = vae_calloc((size_t)ka * kb, sizeof *c);
    for (int i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] >= ka || b[i] < 0 || b[i] >= kb)
            vae_fatal("cluster: row %d has cluster %d of %d, label %d of %d", i, a[i], ka, b[i], kb);
        c[(size_t)a[i] * kb + b[i]] += 1;
    }
    return c;
}

static double entropy(const double *counts, int k, int n)
{
    double h = 0;
    for (int i = 0; i < k; i++)
        if (counts[i] > 0)
            h -= counts[i] / n * log(counts[i] / n);
    return h;
}

double vae_cluster_nmi(const int *a, int ka, const int *b, int kb, int n)
{
    double *c = contingency(a, ka, b, kb, n), *ra = vae_calloc((size_t)ka, sizeof *ra),
           *rb = vae_calloc((size_t)kb, sizeof *rb);
    for (int i = 0; i < ka; i++)
        for (int j = 0; j < kb; j++) {
            ra[i] += c[(size_t)i * kb + j];
            rb[j] += c[(size_t)i * kb + j];
        }
    double mi = 0;
    for (int i = 0; i < ka; i++)
        for (int j = 0; j < kb; j++) {
            double nij = c[(size_t)i * kb + j];
            if (nij > 0)
                mi += nij / n * log(nij * n / (ra[i] * rb[j]));
        }
    const double ha = entropy(ra, ka, n), hb = entropy(rb, kb, n);
    vae_free(c);
    vae_free(ra);
    vae_free(rb);
    if (ha == 0 && hb == 0)
        return 1.0; /* both a single value: the same partition */
    double nmi = mi / ((ha + hb) / 2);
    return nmi < 0 ? 0 : nmi > 1 ? 1 : nmi; /* rounding only */
}

/* Kuhn-Munkres with potentials (the O(n^3) shortest-augmenting-path form), minimizing cost;
 * rows and columns 1-based inside. */
void vae_cluster_max_assignment(const double *w, int n, int *col_of_row)
{
    if (n < 1 || n > VAE_CLUSTER_MAX_K)
        vae_fatal("cluster: assignment of %d x %d (1..%d)", n, n, VAE_CLUSTER_MAX_K);
    double *u = vae_calloc((size_t)n + 1, sizeof *u), *v = vae_calloc((size_t)n + 1, sizeof *v),
           *minv = vae_calloc((size_t)n + 1, sizeof *minv);
    int *p = vae_calloc((size_t)n + 1, sizeof *p), *way = vae_calloc((size_t)n + 1, sizeof *way);
    unsigned char *used = vae_calloc((size_t)n + 1, 1);
#define COST(i, j) (-w[(size_t)((i) - 1) * n + ((j) - 1)])
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= n; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = COST(i0, j) - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
#undef COST
    for (int j = 1; j <= n; j++)
        col_of_row[p[j] - 1] = j - 1;
    vae_free(u);
    vae_free(v);
    vae_free(minv);
    vae_free(p);
    vae_free(way);
    vae_free(used);
}

double vae_cluster_accuracy(const int *a, int ka, const int *b, int kb, int n)
{
    const int k = ka > kb ? ka : kb;
    double *c = contingency(a, ka, b, kb, n), *w = vae_calloc((size_t)k * k, sizeof *w);
    for (int i = 0; i < ka; i++) /* padded square: extra rows or columns weigh 0 */
        for (int j = 0; j < kb; j++)
            w[(size_t)i * k + j] = c[(size_t)i * kb + j];
    int *col = vae_calloc((size_t)k, sizeof *col);
    vae_cluster_max_assignment(w, k, col);
    double right = 0;
    for (int i = 0; i < k; i++)
        right += w[(size_t)i * k + col[i]];
    vae_free(c);
    vae_free(w);
    vae_free(col);
    return n ? right / n : 0;
}
