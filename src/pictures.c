/*
 * pictures.c: the pictures of a trained model (latent scatter, manifold,
 * traversals, interpolation, per-digit generation, posterior cloud, loss
 * curves); see
 * pictures.h. Images go through the backend in batches; the host only lays
 * out grids and does the PCA. Not here: the plot writer (plot.c), the PNG
 * writer (image.c), the sample and reconstruction grids (render.c).
 */
#define _GNU_SOURCE
#include "pictures.h"

#include "evaluate.h"
#include "image.h"
#include "metrics.h"
#include "plot.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const vae_picture vae_pictures[VAE_PICTURES_N] = {
#define PICTURE_ROW(id, file, caption) [VAE_PICTURE_##id] = {file, caption},
    VAE_PICTURE_KINDS(PICTURE_ROW)
#undef PICTURE_ROW
};

/* ---- numerics -------------------------------------------------------------------------- */

double vae_inv_normal_cdf(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    const double p_low = 0.02425;
    if (!(p >= 0 && p <= 1))
        return NAN;
    if (p == 0)
        return -INFINITY;
    if (p == 1)
        return INFINITY;
    double x;
    if (p < p_low) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - p_low) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        double q = sqrt(-2 * log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    /* One Halley step on Phi(x) - p, Phi through erfc (accurate in both tails). */
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

/* Eigen-decomposition of the symmetric a (d, d) by cyclic Jacobi rotations: eigenvalues on a's
 * diagonal, eigenvectors in the columns of v (d, d). */
static void jacobi_eigen(double *a, double *v, int d)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            v[i * d + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, total = 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                total += a[i * d + j] * a[i * d + j];
                if (i != j)
                    off += a[i * d + j] * a[i * d + j];
            }
        if (off <= 1e-30 * total || off == 0)
            return;
        for (int p = 0; p < d - 1; p++)
            for (int q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (apq == 0)
                    continue;
                double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < d; k++) { /* columns p, q */
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (int k = 0; k < d; k++) { /* rows p, q */
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < d; k++) {
                    double vkp = v[k * d + p], vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
    }
}

void vae_pca2(const double *x, int n, int d, double *proj, double *comp, double *var)
{
    double *mean = vae_calloc((size_t)d, sizeof(double));
    double *cov = vae_calloc((size_t)d * d, sizeof(double));
    double *vec = vae_calloc((size_t)d * d, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            mean[j] += x[(size_t)i * d + j];
    for (int j = 0; j < d; j++)
        mean[j] /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++)
                cov[j * d + k] += (x[(size_t)i * d + j] - mean[j]) * (x[(size_t)i * d + k] - mean[k]);
    for (int j = 0; j < d * d; j++)
        cov[j] /= n > 1 ? n - 1 : 1;
    jacobi_eigen(cov, vec, d);
    /* the two largest eigenvalues (first index on ties) */
    int best[2] = {-1, -1};
    for (int r = 0; r < 2 && r < d; r++)
        for (int j = 0; j < d; j++)
            if (j != best[0] && (best[r] < 0 || cov[j * d + j] > cov[best[r] * d + best[r]]))
                best[r] = j;
    double c2[2][64], *cbuf = d > 64 ? vae_calloc((size_t)2 * d, sizeof(double)) : NULL;
    double *cc[2] = {cbuf ? cbuf : c2[0], cbuf ? cbuf + d : c2[1]};
    for (int r = 0; r < 2; r++) {
        if (best[r] < 0) {
            for (int j = 0; j < d; j++)
                cc[r][j] = 0;
            if (var)
                var[r] = 0;
            continue;
        }
        int big = 0;
        for (int j = 0; j < d; j++) {
            cc[r][j] = vec[j * d + best[r]];
            if (fabs(cc[r][j]) > fabs(cc[r][big]))
                big = j;
        }
        double sign = cc[r][big] < 0 ? -1 : 1;
        for (int j = 0; j < d; j++)
            cc[r][j] = sign * cc[r][j] + 0.0;
        if (var)
            var[r] = cov[best[r] * d + best[r]];
    }
    for (int i = 0; i < n; i++)
        for (int r = 0; r < 2; r++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += (x[(size_t)i * d + j] - mean[j]) * cc[r][j];
            proj[(size_t)i * 2 + r] = s;
        }
    if (comp)
        for (int r = 0; r < 2; r++)
            memcpy(comp + (size_t)r * d, cc[r], (size_t)d * sizeof(double));
    vae_free(cbuf);
    vae_free(mean);
    vae_free(cov);
    vae_free(vec);
}

/* ---- the model, in batches ------------------------------------------------------------------ */

void vae_pictures_encode(vae_model *m, const vae_dataset *data, const int *idx, int n, float *mu, float *logvar,
                         int *cats)
{
    vae_backend *be = m->be;
    const int g = vae_model_code(m), D = m->cfg.input_dim, Z = m->latent[g].dim;
    const int W = m->lin[m->latent[g].stats_layer].out, has_logvar = W == 2 * Z; /* [mu | logvar] or z */
    float *x = vae_calloc((size_t)m->batch_cap * D, sizeof(float));
    float *stats = vae_calloc((size_t)m->batch_cap * W, sizeof(float));
    uint8_t *labels = m->y && data->labels ? vae_calloc((size_t)m->batch_cap, 1) : NULL;
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        for (int i = 0; i < B; i++) {
            vae_dataset_row(data, idx[first + i], x + (size_t)i * D);
            if (labels)
                labels[i] = data->labels[idx[first + i]];
        }
        be->upload(be, m->x, x, (size_t)B * D * sizeof(float));
        vae_model_set_labels(m, labels, B);
        vae_model_encode(m, B);
        be->download(be, stats, vae_model_latent_stats(m, g), (size_t)B * W * sizeof(float));
        if (cats && vae_model_categorical(m) >= 0)
            vae_model_download_categories(m, B, cats + first);
        for (int i = 0; i < B; i++) {
            memcpy(mu + (size_t)(first + i) * Z, stats + (size_t)i * W, Z * sizeof(float));
            for (int j = 0; logvar && j < Z; j++) /* a deterministic code: no variance, log 0 */
                logvar[(size_t)(first + i) * Z + j] = has_logvar ? stats[(size_t)i * W + Z + j] : -INFINITY;
        }
    }
    vae_free(x);
    vae_free(stats);
    vae_free(labels);
}

void vae_pictures_decode(vae_model *m, const float *z, int n, int label, const int *cats, float *probs)
{
    vae_backend *be = m->be;
    const int g = vae_model_code(m), D = m->cfg.input_dim, Z = m->latent[g].dim;
    uint8_t *labels = NULL;
    if (m->y) {
        labels = vae_calloc((size_t)m->batch_cap, 1);
        memset(labels, label, (size_t)m->batch_cap);
    }
    int *first_class = vae_calloc((size_t)m->batch_cap, sizeof(int)); /* cats NULL: class 0 */
    for (int first = 0; first < n; first += m->batch_cap) {
        int B = n - first < m->batch_cap ? n - first : m->batch_cap;
        vae_model_set_labels(m, labels, B);
        vae_model_set_categories(m, B, cats ? cats + first : first_class); /* nothing without a categorical */
        be->upload(be, m->sample[g], z + (size_t)first * Z, (size_t)B * Z * sizeof(float));
        vae_model_decode(m, B);
        vae_model_download_mean(m, B, probs + (size_t)first * D);
    }
    vae_free(first_class);
    vae_free(labels);
}

static int grid(const vae_model *m, const char *dir, vae_picture_kind k, const float *tiles, int n, int cols,
                int scale, const vae_grid_labels *labels)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, vae_pictures[k].file);
    return vae_image_grid_write_labelled(path, tiles, n, m->cfg.image_rows, m->cfg.image_cols, cols, scale, labels);
}

void vae_pictures_dimension_kl(vae_model *m, const vae_dataset *test, double *kl, int *active)
{
    const int Z = m->cfg.latent_dim, n = test->n < VAE_PICTURES_SCATTER_MAX ? test->n : VAE_PICTURES_SCATTER_MAX;
    int *idx = vae_calloc((size_t)n, sizeof(int));
    float *mu = vae_calloc((size_t)n * Z, sizeof(float)), *lv = vae_calloc((size_t)n * Z, sizeof(float));
    for (int i = 0; i < n; i++)
        idx[i] = i;
    vae_pictures_encode(m, test, idx, n, mu, lv, NULL);
    for (int j = 0; j < Z; j++) {
        double sum_kl = 0, s = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            double u = mu[(size_t)i * Z + j], v = lv[(size_t)i * Z + j];
            sum_kl += 0.5 * (u * u + exp(v) - 1 - v);
            s += u;
            s2 += u * u;
        }
        kl[j] = vae_model_has_prior(m) ? sum_kl / n : NAN; /* a deterministic code has no KL */
        active[j] = n > 1 && (s2 - s * s / n) / (n - 1) > VAE_ACTIVE_UNIT_VAR;
    }
    vae_free(idx);
    vae_free(mu);
    vae_free(lv);
}

void vae_pictures_dimension_label(int j, double kl, int active, char *out, size_t cap)
{
    if (isnan(kl)) /* a code without a prior: no KL to give */
        snprintf(out, cap, "z%d%s", j + 1, active ? "" : " inactive");
    else
        snprintf(out, cap, "z%d KL %.2f%s", j + 1, kl, active ? "" : " inactive");
}

/* ---- the pictures ---------------------------------------------------------------------------- */

/* The plane the latent pictures are drawn in: a 1-D or 2-D latent's own axes; a larger one's first
 * two principal components of the posterior means of the scatter's test images, so the scatter and
 * the posterior cloud share their axes. */
typedef struct {
    int Z;
    double *centre, *comp; /* (Z) the means' mean, (2, Z) the unit components; NULL for Z <= 2 */
    char xl[96], yl[96];   /* the axes' labels */
} latent_plane;

/* The plane of the n posterior means mu (n, Z; NULL for a latent of at most 2-D, drawn on its own
 * axes); what names the axes' quantity ("posterior mean", "code"); y1 the label of the y axis of a
 * 1-D latent. */
static void latent_plane_of(latent_plane *p, const float *mu, int n, int Z, const char *what, const char *y1)
{
    memset(p, 0, sizeof *p);
    p->Z = Z;
    if (Z <= 2) {
        snprintf(p->xl, sizeof p->xl, "z1 (%s)", what);
        if (Z == 2)
            snprintf(p->yl, sizeof p->yl, "z2 (%s)", what);
        else
            snprintf(p->yl, sizeof p->yl, "%s", y1);
        return;
    }
    double *md = vae_calloc((size_t)n * Z, sizeof(double)), *proj = vae_calloc((size_t)n * 2, sizeof(double));
    double var[2], total = 0;
    p->centre = vae_calloc((size_t)Z, sizeof(double));
    p->comp = vae_calloc((size_t)2 * Z, sizeof(double));
    for (size_t i = 0; i < (size_t)n * Z; i++)
        md[i] = mu[i];
    vae_pca2(md, n, Z, proj, p->comp, var);
    for (int j = 0; j < Z; j++) { /* the centre, and the total variance: the trace of the covariance */
        double sum = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            sum += md[(size_t)i * Z + j];
            s2 += md[(size_t)i * Z + j] * md[(size_t)i * Z + j];
        }
        p->centre[j] = sum / n;
        total += n > 1 ? (s2 - sum * sum / n) / (n - 1) : 0;
    }
    snprintf(p->xl, sizeof p->xl, "PC1 (%.0f%% of variance)", total > 0 ? 100 * var[0] / total : 0.0);
    snprintf(p->yl, sizeof p->yl, "PC2 (%.0f%% of variance)", total > 0 ? 100 * var[1] / total : 0.0);
    vae_free(md);
    vae_free(proj);
}

/* Point i of z (n, Z) in the plane: (px[i], py[i]); a 1-D latent's y is y1[i]. */
static void latent_plane_project(const latent_plane *p, const float *z, int n, const double *y1, double *px,
                                 double *py)
{
    const int Z = p->Z;
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * Z;
        if (Z <= 2) {
            px[i] = zi[0];
            py[i] = Z == 2 ? zi[1] : y1[i];
            continue;
        }
        double a = 0, b = 0;
        for (int j = 0; j < Z; j++) {
            a += (zi[j] - p->centre[j]) * p->comp[j];
            b += (zi[j] - p->centre[j]) * p->comp[Z + j];
        }
        px[i] = a;
        py[i] = b;
    }
}

static void latent_plane_free(latent_plane *p)
{
    vae_free(p->centre);
    vae_free(p->comp);
}

/* How many test images the latent scatter (and the plane of both latent pictures) reads. */
static int scatter_count(const vae_dataset *test, const vae_pictures_options *o)
{
    int cap = o->scatter_images > 0 ? o->scatter_images : VAE_PICTURES_SCATTER_MAX;
    return test->n < cap ? test->n : cap;
}

/* 0, 1, ..., n - 1: the first n test images (free with vae_free). */
static int *first_images(int n)
{
    int *idx = vae_calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++)
        idx[i] = i;
    return idx;
}

/* The plane of the first n test images, and their posterior means (n, Z) when shown (show_means)
 * or when the plane is made of them (a latent over 2-D); NULL when neither: nothing encoded. */
static float *scatter_plane(vae_model *m, const vae_dataset *test, int n, int show_means, const char *y1,
                            latent_plane *plane)
{
    const int Z = m->cfg.latent_dim;
    float *mu = NULL;
    if (show_means || Z > 2) {
        int *idx = first_images(n);
        mu = vae_calloc((size_t)n * Z, sizeof(float));
        vae_pictures_encode(m, test, idx, n, mu, NULL, NULL);
        vae_free(idx);
    }
    latent_plane_of(plane, mu, n, Z, vae_model_has_prior(m) ? "posterior mean" : "code", y1);
    return mu;
}

static int write_latent_scatter(vae_model *m, const vae_dataset *test, const char *dir, const vae_pictures_options *o)
{
    const int Z = m->cfg.latent_dim, n = scatter_count(test, o), draws = o->scatter_samples;
    int *cls = vae_calloc((size_t)n, sizeof(int)), max_label = -1; /* unlabelled: one colour and no legend */
    double *px = vae_calloc((size_t)n, sizeof(double)), *py = vae_calloc((size_t)n, sizeof(double)),
           *y1 = vae_calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        cls[i] = test->labels ? test->labels[i] : 0;
        y1[i] = cls[i];
        if (test->labels && cls[i] > max_label)
            max_label = cls[i];
    }
    latent_plane plane;
    float *mu = scatter_plane(m, test, n, !draws, test->labels ? "label" : "(no labels)", &plane);
    if (draws) { /* one draw of q(z|x) per image, drawn in the means' plane */
        int *idx = first_images(n);
        float *z = vae_calloc((size_t)n * Z, sizeof(float));
        vae_pictures_posterior_draws(m, test, idx, n, 1, o->seed, z);
        latent_plane_project(&plane, z, n, y1, px, py);
        if (Z <= 2) { /* the axes hold draws, not means */
            snprintf(plane.xl, sizeof plane.xl, "z1 (a draw of q(z|x))");
            if (Z == 2)
                snprintf(plane.yl, sizeof plane.yl, "z2 (a draw of q(z|x))");
        }
        vae_free(z);
        vae_free(idx);
    } else {
        latent_plane_project(&plane, mu, n, y1, px, py);
    }
    const char *what = vae_model_has_prior(m) ? "means" : "codes";
    char title[160];
    if (draws)
        snprintf(title, sizeof title, "One draw of q(z|x) per test image%s (%d images)",
                 Z > 2 ? ", on the means' first two PCs" : "", n);
    else if (Z <= 2)
        snprintf(title, sizeof title, "Latent %s (%d test images)", what, n);
    else
        snprintf(title, sizeof title, "%d-D latent %s on their first two PCs (%d test images)", Z, what, n);
    int n_names = max_label + 1 < VAE_PLOT_N_COLORS ? max_label + 1 : VAE_PLOT_N_COLORS;
    char numbers[VAE_PLOT_N_COLORS][16];
    const char *name_ptr[VAE_PLOT_N_COLORS];
    for (int k = 0; k < n_names; k++) /* Fashion-MNIST's: "T-shirt/top", ...; else the label */
        name_ptr[k] = vae_dataset_class_name(test, k, numbers[k]);
    vae_plot *p = vae_plot_new(title, plane.xl, plane.yl);
    vae_plot_scatter(p, px, py, cls, n, name_ptr, n_names);
    int rc = vae_plot_write(p, dir, vae_pictures[VAE_PICTURE_LATENT_SCATTER].file);
    vae_plot_free(p);
    latent_plane_free(&plane);
    vae_free(mu);
    vae_free(cls);
    vae_free(px);
    vae_free(py);
    vae_free(y1);
    return rc;
}

/* K draws of q(z|x) for each of the first N test images, image i in colour i, in the latent
 * scatter's plane (a 1-D latent: z against the image's number). */
static int write_posterior_cloud(vae_model *m, const vae_dataset *test, const char *dir, const vae_pictures_options *o)
{
    const int Z = m->cfg.latent_dim;
    int want = o->cloud_images > 0 ? o->cloud_images : VAE_PICTURES_CLOUD_IMAGES;
    if (want > VAE_PLOT_N_COLORS) /* one colour per image */
        want = VAE_PLOT_N_COLORS;
    const int N = test->n < want ? test->n : want;
    const int K = o->cloud_samples > 0 ? o->cloud_samples : VAE_PICTURES_CLOUD_SAMPLES;
    const size_t pts = (size_t)N * K;
    float *z = vae_calloc(pts * Z, sizeof(float));
    latent_plane plane;
    float *mu = scatter_plane(m, test, scatter_count(test, o), 0, "test image", &plane);
    int idx[VAE_PLOT_N_COLORS], *cls = vae_calloc(pts, sizeof(int));
    double *px = vae_calloc(pts, sizeof(double)), *py = vae_calloc(pts, sizeof(double)),
           *y1 = vae_calloc(pts, sizeof(double));
    char names[VAE_PLOT_N_COLORS][48];
    const char *name_ptr[VAE_PLOT_N_COLORS];
    for (int i = 0; i < N; i++) {
        char label[16];
        idx[i] = i;
        if (test->labels)
            snprintf(names[i], sizeof names[i], "image %d (%s)", i + 1,
                     vae_dataset_class_name(test, test->labels[i], label));
        else
            snprintf(names[i], sizeof names[i], "image %d", i + 1);
        name_ptr[i] = names[i];
    }
    for (size_t r = 0; r < pts; r++) {
        cls[r] = (int)(r / K);
        y1[r] = cls[r] + 1;
    }
    vae_pictures_posterior_draws(m, test, idx, N, K, o->seed, z);
    latent_plane_project(&plane, z, (int)pts, y1, px, py);
    if (Z <= 2) {
        snprintf(plane.xl, sizeof plane.xl, "z1");
        if (Z == 2)
            snprintf(plane.yl, sizeof plane.yl, "z2");
    }
    char title[160];
    snprintf(title, sizeof title, "Posterior clouds: %d draws of q(z|x) for each of %d test images%s", K, N,
             Z > 2 ? " (the means' first two PCs)" : "");
    vae_plot *p = vae_plot_new(title, plane.xl, plane.yl);
    vae_plot_scatter(p, px, py, cls, (int)pts, name_ptr, N);
    int rc = vae_plot_write(p, dir, vae_pictures[VAE_PICTURE_POSTERIOR_CLOUD].file);
    vae_plot_free(p);
    latent_plane_free(&plane);
    vae_free(mu);
    vae_free(z);
    vae_free(cls);
    vae_free(px);
    vae_free(py);
    vae_free(y1);
    return rc;
}

/* Rows from top to bottom: z2 from high to low; columns: z1 from low to high. The points are the
 * prior's quantiles (i + 0.5) / S, or with a range R > 0 the linear grid -R + 2R i / (S - 1),
 * corners included. */
static int write_manifold(vae_model *m, const char *dir, const vae_pictures_options *o)
{
    const int S = o->manifold_side > 0 ? o->manifold_side : VAE_PICTURES_MANIFOLD_SIDE, D = m->cfg.input_dim;
    const double R = o->manifold_range;
    double *at = vae_calloc((size_t)S, sizeof(double)); /* the values from low to high */
    for (int i = 0; i < S; i++)
        at[i] = R > 0 ? -R + 2 * R * i / (S - 1) : vae_inv_normal_cdf((i + 0.5) / S);
    float *z = vae_calloc((size_t)S * S * 2, sizeof(float)), *img = vae_calloc((size_t)S * S * D, sizeof(float));
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) {
            z[((size_t)r * S + c) * 2] = (float)at[c];
            z[((size_t)r * S + c) * 2 + 1] = (float)at[S - 1 - r];
        }
    vae_pictures_decode(m, z, S * S, -1, NULL, img); /* a joint model: category 0 */
    char(*text)[2][16] = vae_calloc((size_t)S, sizeof *text);
    const char **cols = vae_calloc((size_t)S, sizeof(char *)), **rows = vae_calloc((size_t)S, sizeof(char *));
    for (int i = 0; i < S; i++) {
        snprintf(text[i][0], sizeof text[i][0], "%.2f", at[i]);         /* z1 of column i */
        snprintf(text[i][1], sizeof text[i][1], "%.2f", at[S - 1 - i]); /* z2 of row i */
        cols[i] = text[i][0];
        rows[i] = text[i][1];
    }
    char title[128];
    if (R > 0)
        snprintf(title, sizeof title, "z1 across, z2 down: the decoded means on a linear grid over [-%g, %g]^2", R, R);
    else
        snprintf(title, sizeof title, "z1 across, z2 down: the decoded means at the prior's quantiles");
    vae_grid_labels labels = {.title = title, .col_labels = cols, .row_labels = rows};
    int rc = grid(m, dir, VAE_PICTURE_MANIFOLD, img, S * S, S, o->scale, &labels);
    vae_free(text);
    vae_free(cols);
    vae_free(rows);
    vae_free(at);
    vae_free(z);
    vae_free(img);
    return rc;
}

static int write_traversals(vae_model *m, const vae_dataset *test, const char *dir, int scale)
{
    const int Z = m->cfg.latent_dim, D = m->cfg.input_dim, C = VAE_PICTURES_TRAVERSAL_STEPS;
    int rows = Z < VAE_PICTURES_TRAVERSAL_ROWS ? Z : VAE_PICTURES_TRAVERSAL_ROWS, first = 0;
    float *mu = vae_calloc((size_t)Z, sizeof(float)), *lv = vae_calloc((size_t)Z, sizeof(float));
    float *z = vae_calloc((size_t)rows * C * Z, sizeof(float)), *img = vae_calloc((size_t)rows * C * D, sizeof(float));
    int cat = 0, *cats = vae_calloc((size_t)rows * C, sizeof(int));
    vae_pictures_encode(m, test, &first, 1, mu, lv, &cat);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            float *zz = z + ((size_t)r * C + c) * Z;
            memcpy(zz, mu, Z * sizeof(float));
            zz[r] += (float)(-3.0 + 6.0 * c / (C - 1));
            cats[(size_t)r * C + c] = cat; /* a joint model: the image's own argmax q(c|x) */
        }
    vae_pictures_decode(m, z, rows * C, test->labels ? test->labels[first] : -1, cats, img);
    vae_free(cats);
    /* rows: the dimension, its KL over the test images, inactive ones grayed; columns: the offset */
    double *kl = vae_calloc((size_t)Z, sizeof(double));
    int *active = vae_calloc((size_t)Z, sizeof(int));
    vae_pictures_dimension_kl(m, test, kl, active);
    char row_text[VAE_PICTURES_TRAVERSAL_ROWS][48], col_text[VAE_PICTURES_TRAVERSAL_STEPS][16], title[160], num[16];
    const char *row_labels[VAE_PICTURES_TRAVERSAL_ROWS], *col_labels[VAE_PICTURES_TRAVERSAL_STEPS];
    uint8_t muted[VAE_PICTURES_TRAVERSAL_ROWS];
    for (int r = 0; r < rows; r++) {
        vae_pictures_dimension_label(r, kl[r], active[r], row_text[r], sizeof row_text[r]);
        row_labels[r] = row_text[r];
        muted[r] = !active[r];
    }
    for (int c = 0; c < C; c++) {
        double offset = -3.0 + 6.0 * c / (C - 1);
        snprintf(col_text[c], sizeof col_text[c], offset == 0 ? "0" : "%+g", offset);
        col_labels[c] = col_text[c];
    }
    int n_title = snprintf(title, sizeof title, "z_j from -3 to +3 around test image 0's %s",
                           vae_model_has_prior(m) ? "posterior mean" : "code");
    if (test->labels)
        n_title += snprintf(title + n_title, sizeof title - n_title, " (label %s)",
                            vae_dataset_class_name(test, test->labels[first], num));
    if (vae_model_categorical(m) >= 0)
        snprintf(title + n_title, sizeof title - n_title, ", category %d", cat);
    vae_grid_labels labels = {.title = title, .col_labels = col_labels, .row_labels = row_labels, .row_muted = muted};
    int rc = grid(m, dir, VAE_PICTURE_TRAVERSALS, img, rows * C, C, scale, &labels);
    vae_free(kl);
    vae_free(active);
    vae_free(mu);
    vae_free(lv);
    vae_free(z);
    vae_free(img);
    return rc;
}

static int write_interpolation(vae_model *m, const vae_dataset *test, const char *dir, int scale)
{
    const int Z = m->cfg.latent_dim, D = m->cfg.input_dim, S = VAE_PICTURES_INTERP_STEPS;
    int ends[2] = {0, 0}; /* the first test image and the first with another label (unlabelled: the second) */
    for (int i = 1; test->labels && i < test->n && !ends[1]; i++)
        if (test->labels[i] != test->labels[0])
            ends[1] = i;
    if (!ends[1] && test->n > 1)
        ends[1] = 1;
    float *mu = vae_calloc((size_t)2 * Z, sizeof(float)), *lv = vae_calloc((size_t)2 * Z, sizeof(float));
    float *z = vae_calloc((size_t)S * Z, sizeof(float)), *tiles = vae_calloc((size_t)(S + 2) * D, sizeof(float));
    int end_cats[2] = {0, 0}, cats[VAE_PICTURES_INTERP_STEPS];
    vae_pictures_encode(m, test, ends, 2, mu, lv, end_cats);
    for (int s = 0; s < S; s++) {
        float t = (float)s / (float)(S - 1);
        for (int j = 0; j < Z; j++)
            z[(size_t)s * Z + j] = (1 - t) * mu[j] + t * mu[Z + j];
        cats[s] = end_cats[t < 0.5f ? 0 : 1]; /* a joint model: the nearer end's argmax q(c|x) */
    }
    /* a cvae: the first's label */
    vae_pictures_decode(m, z, S, test->labels ? test->labels[ends[0]] : -1, cats, tiles + D);
    vae_dataset_row(test, ends[0], tiles);
    vae_dataset_row(test, ends[1], tiles + (size_t)(S + 1) * D);
    char col_text[VAE_PICTURES_INTERP_STEPS + 2][16];
    const char *col_labels[VAE_PICTURES_INTERP_STEPS + 2];
    for (int c = 0; c < S + 2; c++) { /* the two images, and t of each decoded step between them */
        if (c == 0 || c == S + 1)
            snprintf(col_text[c], sizeof col_text[c], "%s", c ? "x_b" : "x_a");
        else
            snprintf(col_text[c], sizeof col_text[c], "%.2g", (double)(c - 1) / (S - 1));
        col_labels[c] = col_text[c];
    }
    vae_grid_labels labels = {.col_labels = col_labels};
    int rc = grid(m, dir, VAE_PICTURE_INTERPOLATION, tiles, S + 2, S + 2, scale, &labels);
    vae_free(mu);
    vae_free(lv);
    vae_free(z);
    vae_free(tiles);
    return rc;
}

/* The model's forward pass over S copies of each of images idx[0..n) (eps from the backend's
 * generator seeded with seed; a conditional model reads each image's label): the decoded means into
 * probs (n * S, D) and the latent draws into z (n * S, Z), either NULL when not wanted. */
static void posterior_forward(vae_model *m, const vae_dataset *data, const int *idx, int n, int S, uint64_t seed,
                              float *probs, float *z)
{
    vae_backend *be = m->be;
    const int D = m->cfg.input_dim, rows = n * S, g = vae_model_code(m), Z = m->latent[g].dim;
    float *x = vae_calloc((size_t)m->batch_cap * D, sizeof(float));
    uint8_t *labels = vae_calloc((size_t)m->batch_cap, 1); /* a conditional model's: each image's own */
    vae_rng *rng = be->rng_init(be, seed);
    for (int first = 0; first < rows; first += m->batch_cap) {
        int B = rows - first < m->batch_cap ? rows - first : m->batch_cap;
        for (int i = 0; i < B; i++) { /* row first + i is a copy of image (first + i) / S */
            int img = idx[(first + i) / S];
            vae_dataset_row(data, img, x + (size_t)i * D);
            labels[i] = data->labels ? data->labels[img] : 0;
        }
        be->upload(be, m->x, x, (size_t)B * D * sizeof(float));
        vae_model_set_labels(m, labels, B);
        vae_model_draw_noise(m, rng, B, 0);
        vae_model_forward(m, B, 0);
        if (probs)
            vae_model_download_mean(m, B, probs + (size_t)first * D);
        if (z)
            be->download(be, z + (size_t)first * Z, m->sample[g], (size_t)B * Z * sizeof(float));
    }
    be->rng_free(be, rng);
    vae_free(labels);
    vae_free(x);
}

void vae_pictures_posterior_draws(vae_model *m, const vae_dataset *data, const int *idx, int n, int S, uint64_t seed,
                                  float *z)
{
    posterior_forward(m, data, idx, n, S, seed, NULL, z);
}

void vae_pictures_posterior_tiles(vae_model *m, const vae_dataset *data, const int *idx, int n, int S, uint64_t seed,
                                  float *tiles)
{
    const int D = m->cfg.input_dim;
    float *probs = vae_calloc((size_t)n * S * D, sizeof(float));
    posterior_forward(m, data, idx, n, S, seed, probs, NULL);
    for (int i = 0; i < n; i++) {
        vae_dataset_row(data, idx[i], tiles + (size_t)i * (S + 1) * D);
        memcpy(tiles + ((size_t)i * (S + 1) + 1) * D, probs + (size_t)i * S * D, (size_t)S * D * sizeof(float));
    }
    vae_free(probs);
}

/* One row per label present among 0..9: the first test image of that label, then samples of its
 * posterior, drawn by the model's own forward pass (z = mu + sigma * eps, eps from the backend's
 * generator seeded with seed). */
static int write_per_digit(vae_model *m, const vae_dataset *test, const char *dir, int scale, uint64_t seed)
{
    const int D = m->cfg.input_dim, K = VAE_PICTURES_PER_DIGIT;
    int first_of[10], n_digits = 0;
    for (int d = 0; test->labels && d < 10; d++) {
        first_of[n_digits] = -1;
        for (int i = 0; i < test->n; i++)
            if (test->labels[i] == d) {
                first_of[n_digits++] = i;
                break;
            }
    }
    if (!n_digits)
        first_of[n_digits++] = 0; /* no label 0..9, or no labels: the first image */
    float *tiles = vae_calloc((size_t)n_digits * (K + 1) * D, sizeof(float));
    vae_pictures_posterior_tiles(m, test, first_of, n_digits, K, seed, tiles);
    char row_text[10][16];
    const char *row_labels[10];
    for (int r = 0; r < n_digits; r++)
        row_labels[r] = test->labels ? vae_dataset_class_name(test, test->labels[first_of[r]], row_text[r]) : NULL;
    vae_grid_labels class_rows = {.row_labels = row_labels};
    int rc = grid(m, dir, VAE_PICTURE_PER_DIGIT, tiles, n_digits * (K + 1), K + 1, scale, &class_rows);
    vae_free(tiles);
    return rc;
}

/* metrics_steps.csv beside the metrics.csv at csv, parsed into t: 1 read, 0 none there, -1 with
 * vae_set_error. */
static int read_steps_table(const char *csv, vae_metrics_table *t)
{
    char path[4200];
    const char *slash = strrchr(csv, '/');
    snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - csv + 1) : 0, csv, "metrics_steps.csv");
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return 0;
    size_t len;
    char *text = vae_read_text(path, VAE_TEXT_FILE_MAX, &len);
    if (!text)
        return -1;
    int rc = vae_metrics_parse(text, len, path, t);
    vae_free(text);
    return rc ? -1 : 1;
}

/* The step rows' column `name` as a line in colour class `color` under the epochs' curves: 1 drawn,
 * 0 when there is no such column. */
static int step_series(vae_plot *pl, const vae_metrics_table *steps, int n, const char *name, const double *sx,
                       double *sy, const char *label, int color)
{
    const int c = n ? vae_metrics_column(steps, name) : -1;
    if (c < 0)
        return 0;
    for (int r = 0; r < n; r++)
        sy[r] = steps->values[(size_t)r * steps->n_cols + c];
    vae_plot_line(pl, label, sx, sy, n, color);
    return 1;
}

/* The epochs' training values as points (colour 0) over the step rows' line. */
static void epoch_points(vae_plot *pl, const double *x, const double *y, int n)
{
    int *cls = vae_calloc((size_t)n + 1, sizeof(int));
    vae_plot_scatter(pl, x, y, cls, n, NULL, 0);
    vae_free(cls);
}

/* Titles of the curves of columns beyond the loss terms (the model's own metrics, the schedules);
 * a column not listed is titled by its name. */
typedef struct {
    const char *column, *title, *ylabel;
} curve_title;

static const curve_title *curve_title_of(const char *column)
{
    static const curve_title known[] = {
        {"nmi", "NMI of argmax q(c|x) with the test labels", "normalized mutual information"},
        {"cluster_acc", "Cluster accuracy of argmax q(c|x) (best one-to-one map to the labels)", "accuracy"},
        {"capacity_z", "Capacity C_z of the continuous KL", "nats"},
        {"capacity_c", "Capacity C_c of the discrete KL (at most log K)", "nats"},
        {"temperature", "Gumbel-softmax temperature", "tau"},
        {"lr", "Learning rate", "rate"},
        {"kl_weight", "KL weight (beta x warm-up)", "weight"},
    };
    static curve_title other;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].column, column) == 0)
            return &known[i];
    other = (curve_title){column, column, column};
    return &other;
}

int vae_pictures_loss_curves(const char *csv, const char *dir, double beta, const char *row)
{
    enum { MAX_COLS = 32, MAX_ROWS = 100000 };
    struct stat st;
    if (stat(csv, &st) != 0 && errno == ENOENT)
        return 0;
    /* a regular file of at most VAE_TEXT_FILE_MAX bytes (not a FIFO, not a link to /dev/zero) */
    size_t text_len;
    char *text = vae_read_text(csv, VAE_TEXT_FILE_MAX, &text_len);
    if (!text)
        return -1;
    FILE *f = fmemopen(text, text_len + 1, "r");
    if (!f)
        vae_fatal("fmemopen: %s", strerror(errno));
    char *line = NULL, names[MAX_COLS][32];
    size_t cap = 0;
    int ncol = 0, nrow = 0, rows_cap = 64;
    double *v = vae_calloc((size_t)rows_cap * MAX_COLS, sizeof(double));
    if (getline(&line, &cap, f) > 0) {
        for (char *tok = strtok(line, ",\r\n"); tok && ncol < MAX_COLS; tok = strtok(NULL, ",\r\n"))
            snprintf(names[ncol++], sizeof names[0], "%s", tok);
    }
    while (getline(&line, &cap, f) > 0 && nrow < MAX_ROWS) {
        if (line[0] == '\n' || line[0] == 0)
            continue;
        if (nrow == rows_cap) {
            double *w = vae_calloc((size_t)rows_cap * 2 * MAX_COLS, sizeof(double));
            memcpy(w, v, (size_t)rows_cap * MAX_COLS * sizeof(double));
            vae_free(v);
            v = w;
            rows_cap *= 2;
        }
        char *s = line;
        for (int c = 0; c < ncol; c++) {
            char *end;
            double x = strtod(s, &end);
            v[(size_t)nrow * MAX_COLS + c] = end == s ? NAN : x;
            s = strchr(end, ',');
            if (!s) {
                for (int k = c + 1; k < ncol; k++)
                    v[(size_t)nrow * MAX_COLS + k] = NAN;
                break;
            }
            s++;
        }
        nrow++;
    }
    free(line);
    fclose(f);
    vae_free(text);
    int epoch_col = -1;
    for (int c = 0; c < ncol; c++)
        if (strcmp(names[c], "epoch") == 0)
            epoch_col = c;
    double *x = vae_calloc((size_t)nrow + 1, sizeof(double)), *y = vae_calloc((size_t)nrow + 1, sizeof(double));
    for (int r = 0; r < nrow; r++)
        x[r] = epoch_col >= 0 ? v[(size_t)r * MAX_COLS + epoch_col] : r + 1;
    /* the step rows beside the epochs' (--log-every), when the run has them */
    vae_metrics_table steps = {0};
    int have_steps = read_steps_table(csv, &steps);
    if (have_steps < 0) {
        vae_free(v), vae_free(x), vae_free(y);
        return -1;
    }
    const int step_epoch = have_steps ? vae_metrics_column(&steps, "epoch") : -1;
    const int step_n = step_epoch >= 0 ? steps.n_rows : 0;
    double *sx = vae_calloc((size_t)step_n + 1, sizeof(double)), *sy = vae_calloc((size_t)step_n + 1, sizeof(double));
    for (int r = 0; r < step_n; r++)
        sx[r] = steps.values[(size_t)r * steps.n_cols + step_epoch];
    char step_name[64] = "train, each step row";
    if (step_n > 0) {
        const int sc = vae_metrics_column(&steps, "step");
        if (sc >= 0)
            snprintf(step_name, sizeof step_name, "train, %.0f-step", steps.values[sc]);
    }
    /* one panel for the loss, then one per term (the columns train_<term> name them), then one per column of
     * the model's own (NMI, cluster accuracy, capacities), then the step rows' schedules that move */
    enum { MAX_PANELS = 24 };
    const char *terms[MAX_PANELS] = {"loss"}, *const splits[3] = {"train", "test", "val"};
    int n_terms = 1;
    for (int c = 0; c < ncol && n_terms < 1 + 8; c++)
        if (strncmp(names[c], "train_", 6) == 0 && strcmp(names[c], "train_loss") != 0)
            terms[n_terms++] = names[c] + 6;
    vae_plot *p[MAX_PANELS];
    int n_panels = 0;
    for (int t = 0; t < n_terms; t++) {
        char title[128], ylabel[48];
        const char *per = step_n ? "per epoch and step row" : "per epoch";
        if (t == 0 && n_terms == 2 && strcmp(terms[1], "recon") == 0) /* no KL column: an autoencoder */
            snprintf(title, sizeof title, "Loss (the reconstruction alone: no KL, not an ELBO) %s", per);
        else if (t == 0 && beta == 1.0)
            snprintf(title, sizeof title, "Loss (negative ELBO) %s", per);
        else if (t == 0) /* the reported loss weighs the KL by beta: the ELBO only at beta 1 */
            snprintf(title, sizeof title, "Loss (recon + %g kl: beta-weighted, not the ELBO) %s", beta, per);
        else if (strcmp(terms[t], "recon") == 0)
            snprintf(title, sizeof title, "Reconstruction term %s", per);
        else if (strcmp(terms[t], "kl") == 0)
            snprintf(title, sizeof title, "KL term %s", per);
        else
            snprintf(title, sizeof title, "Term %s %s", terms[t], per);
        snprintf(ylabel, sizeof ylabel, "nats per %s", row);
        vae_plot *pl = p[n_panels++] = vae_plot_new(title, "epoch", ylabel);
        char want[48];
        snprintf(want, sizeof want, "train_%s", terms[t]);
        if (!step_series(pl, &steps, step_n, want, sx, sy, step_name, 7)) /* the step rows, under the epochs' */
            vae_plot_x_integer(pl);
        for (int sp = 0; sp < 3; sp++) {
            snprintf(want, sizeof want, "%s_%s", splits[sp], terms[t]);
            for (int c = 0; c < ncol; c++)
                if (strcmp(names[c], want) == 0) {
                    for (int r = 0; r < nrow; r++)
                        y[r] = v[(size_t)r * MAX_COLS + c];
                    vae_plot_line(pl, splits[sp], x, y, nrow, sp);
                    if (step_n && sp == 0) /* the epochs' points on top of the step rows, however many */
                        epoch_points(pl, x, y, nrow);
                }
        }
    }
    for (int c = 0; c < ncol && n_panels < MAX_PANELS; c++) {
        if (c == epoch_col || strncmp(names[c], "train_", 6) == 0 || strncmp(names[c], "test_", 5) == 0 ||
            strncmp(names[c], "val_", 4) == 0 || strcmp(names[c], "seconds") == 0 ||
            strcmp(names[c], "images_per_second") == 0)
            continue;
        const curve_title *ct = curve_title_of(names[c]);
        vae_plot *pl = p[n_panels++] = vae_plot_new(ct->title, "epoch", ct->ylabel);
        if (!step_series(pl, &steps, step_n, names[c], sx, sy, step_name, 7))
            vae_plot_x_integer(pl);
        for (int r = 0; r < nrow; r++)
            y[r] = v[(size_t)r * MAX_COLS + c];
        vae_plot_line(pl, "per epoch", x, y, nrow, 0);
        if (step_n)
            epoch_points(pl, x, y, nrow);
    }
    for (int c = 0; step_n && c < steps.n_cols && n_panels < MAX_PANELS; c++) {
        const char *name = steps.names[c];
        int in_epochs = 0;
        for (int k = 0; k < ncol; k++)
            in_epochs |= strcmp(names[k], name) == 0;
        if (in_epochs || strcmp(name, "step") == 0 || strcmp(name, "epoch") == 0 || strncmp(name, "train_", 6) == 0)
            continue;
        double lo = INFINITY, hi = -INFINITY;
        for (int r = 0; r < step_n; r++) {
            const double s = steps.values[(size_t)r * steps.n_cols + c];
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
        if (!(hi > lo)) /* a schedule that stays put (a constant rate) draws nothing */
            continue;
        const curve_title *ct = curve_title_of(name);
        vae_plot *pl = p[n_panels++] = vae_plot_new(ct->title, "epoch", ct->ylabel);
        step_series(pl, &steps, step_n, name, sx, sy, "each step row", 0);
    }
    int rc = vae_plot_write_stack((const vae_plot *const *)p, n_panels, dir, vae_pictures[VAE_PICTURE_LOSS_CURVES].file);
    for (int t = 0; t < n_panels; t++)
        vae_plot_free(p[t]);
    vae_metrics_table_free(&steps);
    vae_free(v);
    vae_free(x);
    vae_free(y);
    vae_free(sx);
    vae_free(sy);
    return rc ? -1 : 1;
}

int vae_picture_applies(const vae_model *m, vae_picture_kind k, const vae_pictures_options *o)
{
    if (k == VAE_PICTURE_MANIFOLD) /* the prior's quantiles need a prior; a linear grid does not */
        return m->cfg.latent_dim == 2 && !vae_model_reads_label(m) &&
               (vae_model_has_prior(m) || (o && o->manifold_range > 0));
    if (k == VAE_PICTURE_PER_DIGIT || k == VAE_PICTURE_POSTERIOR_CLOUD) /* draws of q(z|x): posterior noise */
        return vae_model_has_prior(m);
    return 1;
}

const char *vae_picture_skip_reason(const vae_model *m, vae_picture_kind k)
{
    if ((k == VAE_PICTURE_MANIFOLD && m->cfg.latent_dim == 2 && !vae_model_reads_label(m)) ||
        k == VAE_PICTURE_PER_DIGIT || k == VAE_PICTURE_POSTERIOR_CLOUD)
        return vae_model_has_prior(m) ? NULL : VAE_PICTURE_NO_PRIOR;
    return NULL;
}

int vae_pictures_need_image(const vae_config *c, const char *model_path)
{
    if (c->image_rows > 0 && c->image_cols > 0)
        return 0;
    return vae_set_error("%s%sis not an image model (image_rows and image_cols are 0; its input is %d values "
                         "per row): it has no pictures to draw",
                         model_path ? model_path : "the model", model_path ? ": " : " ", c->input_dim);
}

int vae_pictures_write_all(vae_model *m, const vae_dataset *test, const char *dir, const vae_pictures_options *o)
{
    if (vae_pictures_need_image(&m->cfg, NULL))
        return -1;
    if (test->dim != m->cfg.input_dim)
        return vae_set_error("data has %d pixels per image, the model expects %d", test->dim, m->cfg.input_dim);
    if (test->n < 1)
        return vae_set_error("no test images to draw pictures from");
    int written = 0;
    for (int k = 0; k < VAE_PICTURES_N; k++) {
        if (!vae_picture_applies(m, (vae_picture_kind)k, o)) {
            const char *why = vae_picture_skip_reason(m, (vae_picture_kind)k);
            if (why && o->log)
                fprintf(o->log, "skipped %s: %s\n", vae_pictures[k].file, why);
            continue;
        }
        int rc = 0;
        switch ((vae_picture_kind)k) {
        case VAE_PICTURE_LATENT_SCATTER: rc = write_latent_scatter(m, test, dir, o); break;
        case VAE_PICTURE_MANIFOLD: rc = write_manifold(m, dir, o); break;
        case VAE_PICTURE_TRAVERSALS: rc = write_traversals(m, test, dir, o->scale); break;
        case VAE_PICTURE_INTERPOLATION: rc = write_interpolation(m, test, dir, o->scale); break;
        case VAE_PICTURE_PER_DIGIT: rc = write_per_digit(m, test, dir, o->scale, o->seed); break;
        case VAE_PICTURE_POSTERIOR_CLOUD: rc = write_posterior_cloud(m, test, dir, o); break;
        case VAE_PICTURE_LOSS_CURVES:
            rc = o->metrics_csv ? vae_pictures_loss_curves(o->metrics_csv, dir, m->cfg.beta, "image") : 0;
            if (rc == 0) {
                if (o->log)
                    fprintf(o->log, "no metrics.csv%s%s: no %s\n", o->metrics_csv ? " at " : "",
                            o->metrics_csv ? o->metrics_csv : "", vae_pictures[k].file);
                continue;
            }
            rc = rc < 0 ? -1 : 0;
            break;
        default: vae_fatal("picture %d has no writer", k);
        }
        if (rc)
            return -1;
        if (o->log)
            fprintf(o->log, "wrote %s/%s\n", dir, vae_pictures[k].file);
        written++;
    }
    return written;
}
