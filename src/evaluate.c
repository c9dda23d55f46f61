/*
 * evaluate.c: `cuvae eval`'s numbers (see evaluate.h): the negative ELBO and its terms, the
 * per-dimension KL and active units, and the importance-weighted estimate of -log p(x), run
 * in row batches through the backend table so that both backends compute them.
 *
 * The importance-weighted pass runs each image through the encoder once and only the
 * decoder for each of its K samples (vae_model_forward_from_stats).
 *
 * The importance weight is assembled on the host from named log-density terms (iw_terms);
 * a conditional model would read log p(x|z,y) into the first, a joint model with a discrete
 * latent would add log p(c) - log q(c|x) as a term of its own.
 *
 * Not here: printing (cmd_model.c), the per-epoch test loss of training (train.c).
 */
#include "evaluate.h"

#include "progress.h"

#include "hostrng.h"
#include "vae_util.h"

#include <math.h>
#include <string.h>

/* The names of evaluate.h's VAE_BINARIZATIONS, indexed by value. */
static const char *const binarize_names[] = {
#define BINARIZE_NAME(id, value, name) [VAE_BINARIZE_##id] = name,
    VAE_BINARIZATIONS(BINARIZE_NAME)
#undef BINARIZE_NAME
};

/* Any but dynamic, which is training's: eval draws the test set once. */
int vae_binarize_parse(const char *s, vae_binarize *out)
{
    const int b = vae_name_find(binarize_names, VAE_NAMES_N(binarize_names), s);
    if (b < 0 || b == VAE_BINARIZE_DYNAMIC)
        return vae_set_error("--binarize '%s': expected none or static", s);
    *out = (vae_binarize)b;
    return 0;
}

int vae_binarize_parse_train(const char *s, vae_binarize *out)
{
    const int b = vae_name_find(binarize_names, VAE_NAMES_N(binarize_names), s);
    if (b < 0)
        return vae_set_error("--binarize '%s': expected none, dynamic or static", s);
    *out = (vae_binarize)b;
    return 0;
}

const char *vae_binarize_name(vae_binarize b) { return vae_name_of(binarize_names, VAE_NAMES_N(binarize_names), b); }

int vae_binarize_check(const vae_dataset *d, const char *what)
{
    if (d->kind == VAE_DATA_BYTES)
        return 0;
    const size_t n = (size_t)d->n * (size_t)d->dim;
    for (size_t i = 0; i < n; i++)
        if (!(d->values[i] >= 0.0f && d->values[i] <= 1.0f))
            return vae_set_error("--binarize: %s holds value %g (row %zu), outside [0, 1]; only data in [0, 1] "
                                 "can be binarized (use --binarize none)",
                                 what, (double)d->values[i], i / (size_t)d->dim);
    return 0;
}

void vae_binarize_static(vae_dataset *d, uint64_t seed)
{
    if (vae_binarize_check(d, "the data set"))
        vae_fatal("vae_binarize_static: %s", vae_last_error());
    vae_hostrng r;
    vae_hostrng_seed(&r, seed);
    const size_t n = (size_t)d->n * (size_t)d->dim;
    if (d->kind == VAE_DATA_FLOATS) {
        for (size_t i = 0; i < n; i++)
            d->values[i] = vae_hostrng_uniform(&r) < d->values[i] ? 1.0f : 0.0f;
        return;
    }
    for (size_t i = 0; i < n; i++)
        d->pixels[i] = vae_hostrng_uniform(&r) < d->pixels[i] / 255.0 ? 255 : 0;
}

uint64_t vae_binarize_epoch_seed(uint64_t seed, int epoch)
{
    return seed ^ ((uint64_t)(epoch - 1) * 0x9e3779b97f4a7c15ull); /* the golden-ratio step; hostrng mixes it */
}

/* The log-density terms of one row's importance weight, in nats. */
typedef struct {
    double log_px_given_z;      /* log p(x|z): minus the Bernoulli loss op's recon */
    double log_pz_minus_log_qz; /* log p(z) - log q(z|x): the gauss_log_ratio op */
} iw_terms;

static double iw_log_weight(const iw_terms *t)
{
    return t->log_px_given_z + t->log_pz_minus_log_qz;
}

/* A running log(sum_k exp(a_k)) in double: max and the sum scaled by exp(-max). */
typedef struct {
    double max, sum;
} logsumexp;

static void logsumexp_add(logsumexp *s, double a)
{
    if (a > s->max) {
        s->sum = s->sum * exp(s->max - a) + 1.0;
        s->max = a;
    } else {
        s->sum += exp(a - s->max);
    }
}

/* Buffers of one evaluation: host copies of a chunk's per-row results and the backend's
 * per-row log ratio and gather indices. */
typedef struct {
    float *row_loss;  /* (cap, T) host */
    float *log_ratio; /* (cap) host */
    float *stats;     /* (cap, W) host: the code latent's statistics, W = 2Z ([mu | logvar]) or Z (z) */
    int32_t *idx;     /* (cap) host */
    float *d_log_ratio; /* (cap) backend */
    int32_t *d_idx;     /* (cap) backend */
    /* the IW pass only (NULL otherwise): */
    float *d_stats;     /* (cap, 2Z) backend: the statistics of the images being sampled */
    int32_t *d_image;   /* (cap) backend: row r of a launch -> its image's row of d_stats */
    int32_t *d_iota;    /* (cap) backend: 0, 1, 2, ... (gather_rows as a copy) */
} eval_bufs;

/* The width of the code latent's statistics: 2Z for a Gaussian one, Z for a deterministic one. */
static int code_stats_width(const vae_model *m)
{
    return m->lin[m->latent[vae_model_code(m)].stats_layer].out;
}

/* One launch of rows already gathered into m->x: noise, forward (from statistics already in
 * place when from_stats), the Gaussian latent's log ratio (none for a code without a prior), and
 * one download of the per-row losses and ratios (and the code's statistics when asked). */
static void eval_chunk(vae_model *m, vae_rng *rng, eval_bufs *b, int rows, int from_stats, int want_stats)
{
    vae_backend *be = m->be;
    const int g = vae_model_code(m), Z = m->latent[g].dim;
    vae_model_draw_noise(m, rng, rows, 0);
    if (from_stats)
        vae_model_forward_from_stats(m, rows);
    else
        vae_model_forward_eval(m, rows); /* a categorical latent summed out exactly */
    be->download(be, b->row_loss, m->row_loss, (size_t)rows * m->n_terms * sizeof(float));
    if (vae_model_has_prior(m)) {
        be->gauss_log_ratio(be, b->d_log_ratio, m->sample[g], vae_model_latent_stats(m, g), m->noise[g], rows, Z);
        be->download(be, b->log_ratio, b->d_log_ratio, (size_t)rows * sizeof(float));
    }
    if (want_stats)
        be->download(be, b->stats, vae_model_latent_stats(m, g), (size_t)rows * code_stats_width(m) * sizeof(float));
}

/* Row i's likelihood terms (-log p(x|z)) and latent terms (KL), summed in double. */
static double row_likelihood(const vae_model *m, const float *row_loss, int i)
{
    double s = 0;
    for (int t = 0; t < m->n_terms; t++)
        if (vae_term_is_likelihood(m->term[t].op))
            s += row_loss[(size_t)i * m->n_terms + t];
    return s;
}

static double row_kl(const vae_model *m, const float *row_loss, int i)
{
    double s = 0;
    for (int t = 0; t < m->n_terms; t++)
        if (!vae_term_is_likelihood(m->term[t].op))
            s += row_loss[(size_t)i * m->n_terms + t];
    return s;
}

/* The ELBO pass: one sample per image, per-dimension KL and the posterior means' variance
 * (Welford's update, in double). */
static void eval_elbo(vae_model *m, const vae_device_data *data, vae_rng *rng, eval_bufs *b, vae_eval_result *r,
                      const vae_eval_options *opt)
{
    vae_progress p;
    vae_progress_begin(&p, opt->log, opt->progress, "eval: the ELBO", data->n);
    const int Z = m->latent[vae_model_code(m)].dim, cap = m->batch_cap, W = code_stats_width(m),
              prior = vae_model_has_prior(m);
    double recon = 0, kl = 0, mc = 0;
    double *mean = vae_calloc((size_t)Z, sizeof(double)), *m2 = vae_calloc((size_t)Z, sizeof(double));
    long seen = 0;
    for (int first = 0; first < data->n; first += cap) {
        const int B = data->n - first < cap ? data->n - first : cap;
        vae_device_data_gather_model(m, data, data->order + first, B);
        eval_chunk(m, rng, b, B, 0, 1);
        for (int i = 0; i < B; i++) {
            const double rec = row_likelihood(m, b->row_loss, i);
            recon += rec;
            kl += row_kl(m, b->row_loss, i);
            mc += prior ? rec - b->log_ratio[i] : NAN;
            const float *mu = b->stats + (size_t)i * W, *lv = mu + Z;
            seen++;
            for (int j = 0; j < Z; j++) {
                const double u = mu[j], v = prior ? lv[j] : 0.0;
                r->kl_dim[j] += prior ? -0.5 * (1.0 + v - u * u - exp(v)) : 0.0; /* no posterior, no KL */
                const double delta = u - mean[j];
                mean[j] += delta / (double)seen;
                m2[j] += delta * (u - mean[j]);
            }
        }
        if (vae_progress_due(&p))
            vae_progress_update(&p, first + B, NAN);
    }
    vae_progress_end(&p);
    const double n = data->n;
    r->recon = recon / n;
    r->kl = kl / n;
    r->loss = r->recon + r->kl;
    r->loss_mc = mc / n;
    r->active_units = 0;
    for (int j = 0; j < Z; j++) {
        r->kl_dim[j] /= n;
        r->mu_var[j] = m2[j] / n;
        r->active[j] = r->mu_var[j] > VAE_ACTIVE_UNIT_VAR;
        r->active_units += r->active[j];
    }
    vae_free(mean);
    vae_free(m2);
}

/* The IW pass. Samples per image per launch s = min(K, cap); images per launch
 * G = cap / s; rows are image-major (row r: image r / s, sample r % s). Each group of G
 * images runs through the encoder once; its statistics are kept in d_stats and repeated
 * over the samples of every launch (gather_rows), so only the decoder runs K times. */
static int eval_iw(vae_model *m, const vae_device_data *data, int K, vae_rng *rng, eval_bufs *b,
                   vae_eval_result *r, const vae_eval_options *opt)
{
    vae_progress p;
    char label[64];
    snprintf(label, sizeof label, "eval: the importance-weighted bound, K = %d", K);
    vae_progress_begin(&p, opt->log, opt->progress, label, data->n);
    vae_backend *be = m->be;
    const int g = vae_model_gaussian(m), cap = m->batch_cap, S = 2 * m->latent[g].dim;
    const int s = K < cap ? K : cap, G = cap / s;
    logsumexp *acc = vae_calloc((size_t)G, sizeof *acc);
    double total = 0;
    int rc = 0;
    for (int i = 0; i < G; i++)
        b->idx[i] = i;
    be->upload(be, b->d_iota, b->idx, (size_t)G * sizeof(int32_t));
    /* Row r of a launch samples image r / s of its group, in every launch: with K < cap each
     * launch has sc = s = K; with K >= cap a group is one image and r / s is 0 for r < sc <= s.
     * So the row -> image maps are built once (d_image) and once per group (d_idx). */
    for (int row = 0; row < G * s; row++)
        b->idx[row] = row / s;
    be->upload(be, b->d_image, b->idx, (size_t)G * s * sizeof(int32_t));
    for (int first = 0; first < data->n && !rc; first += G) {
        const int nimg = data->n - first < G ? data->n - first : G;
        for (int i = 0; i < nimg; i++) {
            acc[i] = (logsumexp){-INFINITY, 0.0};
            b->idx[i] = first + i;
        }
        be->upload(be, b->d_idx, b->idx, (size_t)nimg * sizeof(int32_t));
        vae_device_data_gather_model(m, data, b->d_idx, nimg);
        vae_model_encode(m, nimg);
        be->gather_rows(be, b->d_stats, vae_model_latent_stats(m, g), b->d_iota, nimg, S); /* a copy */
        for (int row = 0; row < nimg * s; row++) /* each launch's rows' images, as d_image's */
            b->idx[row] = first + row / s;
        be->upload(be, b->d_idx, b->idx, (size_t)nimg * s * sizeof(int32_t));
        for (int done = 0; done < K && !rc; done += s) {
            const int sc = K - done < s ? K - done : s, rows = nimg * sc;
            vae_device_data_gather_model(m, data, b->d_idx, rows); /* the images the likelihood reads */
            be->gather_rows(be, vae_model_latent_stats(m, g), b->d_stats, b->d_image, rows, S);
            eval_chunk(m, rng, b, rows, 1, 0);
            for (int row = 0; row < rows; row++) {
                const iw_terms t = {.log_px_given_z = -row_likelihood(m, b->row_loss, row),
                                    .log_pz_minus_log_qz = b->log_ratio[row]};
                const double lw = iw_log_weight(&t);
                if (!isfinite(lw)) {
                    rc = vae_set_error("test image %d: a log importance weight is not finite (%g): the model or "
                                       "the data holds extreme values",
                                       first + row / sc, lw);
                    break;
                }
                logsumexp_add(&acc[row / sc], lw);
            }
        }
        for (int i = 0; i < nimg && !rc; i++)
            total += -(acc[i].max + log(acc[i].sum) - log((double)K));
        if (vae_progress_due(&p))
            vae_progress_update(&p, first + nimg, NAN);
    }
    vae_progress_end(&p);
    vae_free(acc);
    r->iw_nll = total / data->n;
    return rc;
}

int vae_eval_report(vae_model *m, const vae_device_data *data, const vae_eval_options *opt, vae_eval_result *out)
{
    vae_backend *be = m->be;
    const int Z = m->latent[vae_model_code(m)].dim, cap = m->batch_cap;
    memset(out, 0, sizeof *out);
    if (opt->iw_samples > 0 && !vae_model_has_prior(m))
        return vae_set_error("--iw-samples: the model has no prior and no posterior noise (a --model ae file): "
                             "there is no density p(x) to estimate");
    if (opt->iw_samples > 0 && vae_model_categorical(m) >= 0)
        return vae_set_error("--iw-samples: the importance-weighted estimate does not cover a categorical latent "
                             "(a --model joint file); its ELBO, without --iw-samples, sums c out exactly");
    out->images = data->n;
    out->latent_dim = Z;
    out->kl_dim = vae_calloc((size_t)Z, sizeof(double));
    out->mu_var = vae_calloc((size_t)Z, sizeof(double));
    out->active = vae_calloc((size_t)Z, sizeof(int));
    out->iw_samples = opt->iw_samples;
    out->iw_nll = NAN;

    eval_bufs b = {
        .row_loss = vae_calloc((size_t)cap * m->n_terms, sizeof(float)),
        .log_ratio = vae_calloc((size_t)cap, sizeof(float)),
        .stats = vae_calloc((size_t)cap * code_stats_width(m), sizeof(float)),
        .idx = vae_calloc((size_t)cap, sizeof(int32_t)),
        .d_log_ratio = be->buffer_alloc(be, (size_t)cap * sizeof(float)),
        .d_idx = be->buffer_alloc(be, (size_t)cap * sizeof(int32_t)),
    };
    vae_rng *rng = be->rng_init(be, opt->seed);
    eval_elbo(m, data, rng, &b, out, opt);
    int rc = 0;
    if (opt->iw_samples > 0) {
        b.d_stats = be->buffer_alloc(be, (size_t)cap * 2 * Z * sizeof(float));
        b.d_image = be->buffer_alloc(be, (size_t)cap * sizeof(int32_t));
        b.d_iota = be->buffer_alloc(be, (size_t)cap * sizeof(int32_t));
        be->rng_reset(be, rng); /* K = 1 then draws the ELBO pass's noise again */
        rc = eval_iw(m, data, opt->iw_samples, rng, &b, out, opt);
        be->buffer_free(be, b.d_stats);
        be->buffer_free(be, b.d_image);
        be->buffer_free(be, b.d_iota);
    }
    be->rng_free(be, rng);
    be->buffer_free(be, b.d_log_ratio);
    be->buffer_free(be, b.d_idx);
    vae_free(b.row_loss);
    vae_free(b.log_ratio);
    vae_free(b.stats);
    vae_free(b.idx);
    if (rc)
        vae_eval_result_free(out);
    return rc;
}

void vae_eval_result_free(vae_eval_result *r)
{
    vae_free(r->kl_dim);
    vae_free(r->mu_var);
    vae_free(r->active);
    r->kl_dim = r->mu_var = NULL;
    r->active = NULL;
}
