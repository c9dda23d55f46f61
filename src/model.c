/*
 * model.c: the model's composition, buffers, forward and backward passes and training step,
 * written once against the backend table. See model.h for the shapes and the
 * flat parameter layout.
 */
#include "model.h"

#include "hostrng.h"
#include "vae_util.h"
#include "variant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- life cycle -------------------------------------------------------------- */

void vae_model_compose_begin(vae_model *m, const vae_config *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->output = -1;
}

int vae_model_add_linear(vae_model *m, const char *name, const vae_block *blocks, int n_blocks, int out, vae_act act)
{
    if (m->n_linear == VAE_MAX_LINEAR || n_blocks < 1 || n_blocks > VAE_MAX_BLOCKS)
        vae_fatal("model composition: layer %s: %d layers so far (at most %d), %d input blocks (1..%d)", name,
                  m->n_linear, VAE_MAX_LINEAR, n_blocks, VAE_MAX_BLOCKS);
    int l = m->n_linear++;
    vae_linear *L = &m->lin[l];
    snprintf(L->name, sizeof L->name, "%s", name);
    L->n_blocks = n_blocks;
    L->in = 0;
    for (int k = 0; k < n_blocks; k++) {
        L->block[k] = blocks[k];
        L->block[k].col = L->in;
        L->in += blocks[k].width;
    }
    L->out = out;
    L->act = act;
    L->w_off = m->n_params;
    L->b_off = L->w_off + (size_t)L->in * out;
    m->n_params = L->b_off + (size_t)out;
    return l;
}

void vae_model_save_in_parts(vae_model *m, int l, const char *const *names, const int *rows, int n_parts)
{
    vae_linear *L = &m->lin[l];
    int total = 0;
    if (n_parts < 1 || n_parts > VAE_MAX_PARTS)
        vae_fatal("model composition: layer %s in %d parts (1..%d)", L->name, n_parts, VAE_MAX_PARTS);
    L->n_parts = n_parts;
    for (int k = 0; k < n_parts; k++) {
        snprintf(L->part[k].name, sizeof L->part[k].name, "%s", names[k]);
        L->part[k].rows = rows[k];
        total += rows[k];
    }
    if (total != L->out)
        vae_fatal("model composition: layer %s: parts of %d rows for %d outputs", L->name, total, L->out);
}

int vae_model_add_latent(vae_model *m, const char *name, vae_latent_kind kind, int dim, int stats_layer)
{
    if (m->n_latents == VAE_MAX_LATENTS || stats_layer < 0 || stats_layer >= m->n_linear)
        vae_fatal("model composition: latent %s: %d latents so far (at most %d), stats layer %d of %d", name,
                  m->n_latents, VAE_MAX_LATENTS, stats_layer, m->n_linear);
    if (kind == VAE_LATENT_DETERMINISTIC && m->lin[stats_layer].out != dim)
        vae_fatal("model composition: deterministic latent %s of %d from layer %s of %d outputs", name, dim,
                  m->lin[stats_layer].name, m->lin[stats_layer].out);
    if (m->n_latents == 0)
        m->n_encoder = m->n_linear; /* the layers so far run before the latents */
    int k = m->n_latents++;
    m->latent[k] = (vae_latent){.kind = kind, .dim = dim, .stats_layer = stats_layer};
    snprintf(m->latent[k].name, sizeof m->latent[k].name, "%s", name);
    return k;
}

void vae_model_add_term(vae_model *m, const char *name, vae_term_op op, int target, int scalar, float weight)
{
    if (m->n_terms == VAE_MAX_TERMS)
        vae_fatal("model composition: term %s: at most %d terms", name, VAE_MAX_TERMS);
    if (!vae_term_is_likelihood(op) && (target < 0 || target >= m->n_latents ||
                                        m->latent[target].kind == VAE_LATENT_DETERMINISTIC))
        vae_fatal("model composition: term %s: a KL term needs a latent with a posterior (%d)", name, target);
    vae_loss_term *t = &m->term[m->n_terms++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->op = op;
    t->layer = vae_term_is_likelihood(op) ? target : -1;
    t->latent = vae_term_is_likelihood(op) ? -1 : target;
    t->scalar = scalar;
    t->weight = weight;
    t->capacity = -1;
    if (vae_term_is_likelihood(op) && m->output < 0)
        m->output = target;
}

int vae_model_add_gaussian_head(vae_model *m, const vae_block *src, int n_src, int Z)
{
    int head = vae_model_add_linear(m, "encoder.head", src, n_src, 2 * Z, VAE_ACT_NONE);
    static const char *const parts[2] = {"encoder.mu", "encoder.logvar"};
    vae_model_save_in_parts(m, head, parts, (const int[2]){Z, Z}, 2);
    return head;
}

void vae_model_add_recon_term(vae_model *m, int out)
{
    vae_model_add_term(m, "recon",
                       m->cfg.likelihood == VAE_LIKELIHOOD_GAUSSIAN ? VAE_TERM_LIK_GAUSSIAN : VAE_TERM_LIK_BERNOULLI,
                       out, -1, 1.0f);
}

void vae_model_term_capacity(vae_model *m, int capacity, float gamma)
{
    if (m->n_terms < 1 || vae_term_is_likelihood(m->term[m->n_terms - 1].op) || m->term[m->n_terms - 1].scalar < 0 ||
        capacity < 0 || capacity >= VAE_SCALAR_COUNT)
        vae_fatal("model composition: capacity %d for a term that is no weighted KL term", capacity);
    vae_loss_term *t = &m->term[m->n_terms - 1];
    t->capacity = capacity;
    t->gamma = gamma;
}

void vae_model_add_mlp(vae_model *m, const char *prefix, const vae_config *cfg, vae_block *blocks, int *n_blocks,
                       int reverse)
{
    const int H = cfg->n_hidden;
    char name[32];
    for (int i = 0; i < H; i++) {
        snprintf(name, sizeof name, "%s.fc%d", prefix, i + 1);
        int width = cfg->hidden[reverse ? H - 1 - i : i];
        int l = vae_model_add_linear(m, name, blocks, *n_blocks, width, cfg->act);
        blocks[0] = vae_block_of(VAE_SOURCE_LAYER, l, width);
        *n_blocks = 1;
    }
}

int vae_model_layout(vae_model *m, const vae_config *cfg)
{
    memset(m, 0, sizeof *m);
    if (vae_config_validate(cfg))
        return -1;
    vae_model_compose_begin(m, cfg);
    return vae_variant_of(cfg)->compose(m, cfg);
}

/* The layout of cfg for batches of up to batch_cap rows, into m (nothing allocated). */
static int model_layout(vae_model *m, const vae_config *cfg, int batch_cap)
{
    if (vae_model_layout(m, cfg))
        return -1;
    if (batch_cap < 1) {
        memset(m, 0, sizeof *m);
        return vae_set_error("batch size %d must be at least 1", batch_cap);
    }
    m->batch_cap = batch_cap;
    return 0;
}

/* One buffer of the model: counted into *total, and allocated when m has a backend. */
static void *model_buffer(vae_model *m, size_t bytes, vae_buffer_total *total)
{
    total->bytes += bytes;
    total->count++;
    return m->be ? m->be->buffer_alloc(m->be, bytes) : NULL;
}

/* Every buffer of a laid-out model, in one place, so that what is allocated and what
 * vae_model_buffer_total counts cannot drift apart. */
static void model_buffers(vae_model *m, vae_buffer_total *total)
{
    const size_t pbytes = m->n_params * sizeof(float), Bc = (size_t)m->batch_cap;
    const size_t D = (size_t)m->cfg.input_dim;
    m->params = model_buffer(m, pbytes, total);
    m->grads = model_buffer(m, pbytes, total);
    m->adam_m = model_buffer(m, pbytes, total);
    m->adam_v = model_buffer(m, pbytes, total);
    m->adam_step = model_buffer(m, sizeof(int), total);
    m->diverged = model_buffer(m, sizeof(int), total);
    m->grad_scale = model_buffer(m, sizeof(float), total);
    m->scalars = model_buffer(m, VAE_SCALAR_COUNT * sizeof(float), total);

    m->x = model_buffer(m, Bc * D * sizeof(float), total);
    if (vae_model_reads_label(m))
        m->y = model_buffer(m, Bc * (size_t)m->cfg.classes * sizeof(float), total);
    for (int l = 0; l < m->n_linear; l++) {
        m->out[l] = model_buffer(m, Bc * m->lin[l].out * sizeof(float), total);
        m->dout[l] = model_buffer(m, Bc * m->lin[l].out * sizeof(float), total);
    }
    for (int k = 0; k < m->n_latents; k++) {
        const size_t n = Bc * (size_t)m->latent[k].dim;
        if (m->latent[k].kind == VAE_LATENT_DETERMINISTIC) { /* z is its stats: no buffer of its own */
            m->noise[k] = NULL;
            m->sample[k] = m->out[m->latent[k].stats_layer];
            m->dsample[k] = m->dout[m->latent[k].stats_layer];
            continue;
        }
        m->noise[k] = model_buffer(m, vae_rng_normal_count(n) * sizeof(float), total);
        m->sample[k] = model_buffer(m, vae_rng_normal_count(n) * sizeof(float), total); /* prior draws land here */
        m->dsample[k] = model_buffer(m, n * sizeof(float), total);
    }
    m->row_loss = model_buffer(m, Bc * (size_t)m->n_terms * sizeof(float), total);
}

int vae_model_alloc(vae_model *m, vae_backend *be, int batch_cap)
{
    if (batch_cap < 1)
        return vae_set_error("batch size %d must be at least 1", batch_cap);
    if (m->n_latents < 1 || m->output < 0 || m->n_terms < 1)
        vae_fatal("model composition: %d latents, output layer %d, %d terms", m->n_latents, m->output, m->n_terms);
    m->batch_cap = batch_cap;
    m->be = be;
    vae_buffer_total total = {0, 0};
    model_buffers(m, &total);
    const float scalars[VAE_SCALAR_COUNT] = {
        [VAE_SCALAR_LR] = 0.0f,
        [VAE_SCALAR_KL_WEIGHT] = m->cfg.beta,
        [VAE_SCALAR_TEMPERATURE] = VAE_TEMPERATURE_DEFAULT,
        [VAE_SCALAR_CAPACITY_Z] = 0.0f,
        [VAE_SCALAR_CAPACITY_C] = 0.0f,
        [VAE_SCALAR_CAP_WEIGHT_Z] = m->cfg.cap_z.gamma,
        [VAE_SCALAR_CAP_WEIGHT_C] = m->cfg.cap_c.gamma,
    };
    vae_model_set_scalars(m, 0, VAE_SCALAR_COUNT, scalars);
    return 0;
}

int vae_model_init(vae_model *m, const vae_config *cfg, vae_backend *be, int batch_cap)
{
    if (vae_model_layout(m, cfg))
        return -1;
    if (vae_model_alloc(m, be, batch_cap)) {
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

int vae_model_buffer_total(const vae_config *cfg, int batch_cap, vae_buffer_total *total)
{
    vae_model m;
    if (model_layout(&m, cfg, batch_cap))
        return -1;
    *total = (vae_buffer_total){0, 0};
    model_buffers(&m, total);
    return 0;
}

void vae_model_free(vae_model *m)
{
    vae_backend *be = m->be;
    if (!be)
        return;
    void *bufs[] = {m->params, m->grads, m->adam_m, m->adam_v, m->adam_step, m->diverged, m->grad_scale,
                    m->scalars, m->x, m->y, m->row_loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            be->buffer_free(be, bufs[i]);
    for (int k = 0; k < m->n_latents; k++) {
        if (m->latent[k].kind == VAE_LATENT_DETERMINISTIC)
            continue; /* its sample and gradient are its stats layer's, freed below */
        be->buffer_free(be, m->noise[k]);
        be->buffer_free(be, m->sample[k]);
        be->buffer_free(be, m->dsample[k]);
    }
    for (int l = 0; l < m->n_linear; l++) {
        be->buffer_free(be, m->out[l]);
        be->buffer_free(be, m->dout[l]);
    }
    memset(m, 0, sizeof *m);
}

void vae_model_init_params(vae_model *m, uint64_t seed)
{
    vae_backend *be = m->be;
    float *host = vae_calloc(m->n_params, sizeof(float));
    vae_hostrng r;
    vae_hostrng_seed(&r, seed);
    for (int l = 0; l < m->n_linear; l++) {
        const vae_linear *L = &m->lin[l];
        double bound = 1.0 / sqrt((double)L->in);
        size_t n = (size_t)L->in * L->out + (size_t)L->out; /* weight then bias, contiguous */
        for (size_t i = 0; i < n; i++)
            host[L->w_off + i] = (float)(bound * (2.0 * vae_hostrng_uniform(&r) - 1.0));
    }
    be->upload(be, m->params, host, m->n_params * sizeof(float));
    vae_free(host);
    be->memset_zero(be, m->grads, m->n_params * sizeof(float));
    be->memset_zero(be, m->adam_m, m->n_params * sizeof(float));
    be->memset_zero(be, m->adam_v, m->n_params * sizeof(float));
    be->memset_zero(be, m->adam_step, sizeof(int));
    be->memset_zero(be, m->diverged, sizeof(int));
}

void vae_model_set_scalar(vae_model *m, vae_scalar which, float value)
{
    vae_model_set_scalars(m, which, 1, &value);
}

void vae_model_set_scalars(vae_model *m, vae_scalar first, int n, const float *values)
{
    m->be->upload(m->be, m->scalars + first, values, (size_t)n * sizeof *values);
}

int vae_model_reads_label(const vae_model *m)
{
    for (int l = 0; l < m->n_linear; l++)
        for (int k = 0; k < m->lin[l].n_blocks; k++)
            if (m->lin[l].block[k].kind == VAE_SOURCE_LABEL)
                return 1;
    return 0;
}

void vae_model_set_labels(vae_model *m, const uint8_t *labels, int B)
{
    if (!m->y)
        return;
    const int K = m->cfg.classes;
    if (!labels)
        vae_fatal("model reads a label: no labels given for its batch");
    float *y = vae_calloc((size_t)B * K, sizeof(float));
    for (int i = 0; i < B; i++) {
        if (labels[i] >= K)
            vae_fatal("label %d of row %d out of range for %d classes (labels are checked when loaded)", labels[i],
                      i, K);
        y[(size_t)i * K + labels[i]] = 1.0f;
    }
    m->be->upload(m->be, m->y, y, (size_t)B * K * sizeof(float));
    vae_free(y);
}

const char *vae_model_nll_name(const vae_model *m)
{
    return vae_model_reads_label(m) ? "-log p(x|y)" : "-log p(x)";
}

int vae_model_term_index(const vae_model *m, const char *name)
{
    for (int t = 0; t < m->n_terms; t++)
        if (strcmp(m->term[t].name, name) == 0)
            return t;
    return -1;
}

/* ---- compute ------------------------------------------------------------------ */

/* A deterministic latent's block reads its stats layer: z is that layer's output. */
static vae_block resolve_block(const vae_model *m, const vae_block *b)
{
    if (b->kind == VAE_SOURCE_LATENT && m->latent[b->index].kind == VAE_LATENT_DETERMINISTIC)
        return (vae_block){.kind = VAE_SOURCE_LAYER, .index = m->latent[b->index].stats_layer, .col = b->col,
                           .width = b->width};
    return *b;
}

/* The value of a block's source (B, width). */
static float *source_value(const vae_model *m, const vae_block *block)
{
    const vae_block r = resolve_block(m, block), *b = &r;
    switch (b->kind) {
    case VAE_SOURCE_INPUT: return m->x;
    case VAE_SOURCE_LATENT: return m->sample[b->index];
    case VAE_SOURCE_LAYER: return m->out[b->index];
    case VAE_SOURCE_LABEL: return m->y;
    }
    return NULL;
}

/* The gradient buffer of a block's source, or NULL for data (no gradient), and its
 * "written" flag: the first backward writer of a tensor writes, later ones accumulate. */
static float *source_grad(vae_model *m, const vae_block *block, unsigned char **written)
{
    const vae_block r = resolve_block(m, block), *b = &r;
    switch (b->kind) {
    case VAE_SOURCE_INPUT:
    case VAE_SOURCE_LABEL: return NULL;
    case VAE_SOURCE_LATENT: *written = &m->grad_written_latent[b->index]; return m->dsample[b->index];
    case VAE_SOURCE_LAYER: *written = &m->grad_written_layer[b->index]; return m->dout[b->index];
    }
    return NULL;
}

/* out = act(sum_k in_k @ W[:, block k]^T + b): in_k (B, width_k), out (B, L->out). */
static void linear_forward(vae_model *m, int l, int B)
{
    vae_backend *be = m->be;
    const vae_linear *L = &m->lin[l];
    for (int k = 0; k < L->n_blocks; k++) {
        const vae_block *b = &L->block[k];
        be->gemm(be, 0, 1, B, L->out, b->width, 1.0f, source_value(m, b), b->width, m->params + L->w_off + b->col,
                 L->in, k ? 1.0f : 0.0f, m->out[l], L->out);
    }
    be->bias_act_forward(be, m->out[l], m->params + L->b_off, B, L->out, L->act);
}

/* From dout[l] (gradient w.r.t. the layer's output): per block, dW_k = dpre^T @ in_k (the
 * blocks partition W's columns: each is written once) and, for a source with a gradient,
 * din_k (=, or += after another writer) dpre @ W_k; db = sum dpre. dout[l] is overwritten
 * with dpre. The parameters' gradients are written, not accumulated (bias_act_backward
 * writes db): a step needs no pass clearing them, and the weight-gradient GEMMs no read of
 * their output. */
static void linear_backward(vae_model *m, int l, int B)
{
    vae_backend *be = m->be;
    const vae_linear *L = &m->lin[l];
    float *dpre = m->dout[l];
    if (!m->grad_written_layer[l]) /* nothing downstream read this layer: its gradient is zero */
        be->memset_zero(be, dpre, (size_t)B * L->out * sizeof(float));
    be->bias_act_backward(be, dpre, m->grads + L->b_off, m->dout[l], m->out[l], B, L->out, L->act);
    for (int k = 0; k < L->n_blocks; k++) {
        const vae_block *b = &L->block[k];
        be->gemm(be, 1, 0, L->out, b->width, B, 1.0f, dpre, L->out, source_value(m, b), b->width, 0.0f,
                 m->grads + L->w_off + b->col, L->in);
        unsigned char *written = NULL;
        float *din = source_grad(m, b, &written);
        if (!din)
            continue;
        be->gemm(be, 0, 0, B, b->width, L->out, 1.0f, dpre, L->out, m->params + L->w_off + b->col, L->in,
                 *written ? 1.0f : 0.0f, din, b->width);
        *written = 1;
    }
}

static void latent_forward(vae_model *m, int k, int B, int with_grad)
{
    const vae_latent *lt = &m->latent[k];
    switch (lt->kind) {
    case VAE_LATENT_GAUSSIAN:
        m->be->reparam_forward(m->be, m->sample[k], m->out[lt->stats_layer], m->noise[k], B, lt->dim);
        break;
    case VAE_LATENT_CATEGORICAL:
        if (with_grad)
            m->be->gumbel_softmax_forward(m->be, m->sample[k], m->out[lt->stats_layer], m->noise[k], B, lt->dim,
                                          m->scalars + VAE_SCALAR_TEMPERATURE);
        else
            m->be->onehot_argmax(m->be, m->sample[k], m->out[lt->stats_layer], B, lt->dim);
        break;
    case VAE_LATENT_DETERMINISTIC: break; /* its sample is its stats layer's output */
    }
}

/* From the sample's gradient into the stats layer's (accumulated onto what the KL wrote). */
static void latent_backward(vae_model *m, int k, int B)
{
    vae_backend *be = m->be;
    const vae_latent *lt = &m->latent[k];
    const int s = lt->stats_layer;
    if (!m->grad_written_latent[k])
        return; /* nothing read the sample */
    if (!m->grad_written_layer[s])
        be->memset_zero(be, m->dout[s], (size_t)B * m->lin[s].out * sizeof(float));
    switch (lt->kind) {
    case VAE_LATENT_GAUSSIAN:
        be->reparam_backward(be, m->dout[s], m->dsample[k], m->out[s], m->noise[k], B, lt->dim);
        break;
    case VAE_LATENT_CATEGORICAL:
        be->gumbel_softmax_backward(be, m->dout[s], m->dsample[k], m->sample[k], B, lt->dim,
                                    m->scalars + VAE_SCALAR_TEMPERATURE);
        break;
    case VAE_LATENT_DETERMINISTIC: break; /* never written: its readers write its stats layer's dout */
    }
    m->grad_written_layer[s] = 1;
}

/* Term t's column of row_loss and, with grad, the gradient of its weighted batch mean. */
static void term_forward(vae_model *m, int t, int B, int with_grad)
{
    vae_backend *be = m->be;
    const vae_loss_term *term = &m->term[t];
    const int T = m->n_terms;
    float *loss = m->row_loss + t;
    const float *weight = term->scalar >= 0 ? m->scalars + term->scalar : NULL;
    const float gs = 1.0f / (float)B;
    switch (term->op) {
    case VAE_TERM_LIK_BERNOULLI:
    case VAE_TERM_LIK_GAUSSIAN: {
        const int l = term->layer;
        float *grad = with_grad ? m->dout[l] : NULL;
        if (term->op == VAE_TERM_LIK_BERNOULLI)
            be->lik_bernoulli(be, loss, T, grad, m->out[l], m->x, B, m->lin[l].out, weight, gs);
        else
            be->lik_gaussian(be, loss, T, grad, m->out[l], m->x, B, m->lin[l].out, m->cfg.sigma, weight, gs);
        if (with_grad)
            m->grad_written_layer[l] = 1;
        break;
    }
    case VAE_TERM_KL_GAUSSIAN:
    case VAE_TERM_KL_CATEGORICAL: {
        const int s = m->latent[term->latent].stats_layer, dim = m->latent[term->latent].dim;
        /* A capacity term's weight depends on the batch's mean KL: the loss column first. */
        const int two_pass = with_grad && term->capacity >= 0;
        for (int pass = two_pass ? 0 : 1; pass < 2; pass++) {
            float *grad = with_grad && pass == 1 ? m->dout[s] : NULL;
            if (term->op == VAE_TERM_KL_GAUSSIAN)
                be->kl_gaussian(be, loss, T, grad, m->out[s], B, dim, weight, gs);
            else
                be->kl_categorical(be, loss, T, grad, m->out[s], B, dim, weight, gs);
            if (pass == 0)
                be->capacity_weight(be, m->scalars + term->scalar, loss, T, B, m->scalars + term->capacity,
                                    term->gamma);
        }
        if (with_grad)
            m->grad_written_layer[s] = 1;
        break;
    }
    }
}

void vae_model_draw_noise(vae_model *m, vae_rng *rng, int B, int training)
{
    vae_backend *be = m->be;
    for (int k = 0; k < m->n_latents; k++) {
        const size_t n = (size_t)B * m->latent[k].dim;
        switch (m->latent[k].kind) {
        case VAE_LATENT_GAUSSIAN: be->rng_normal(be, rng, m->noise[k], vae_rng_normal_count(n)); break;
        case VAE_LATENT_CATEGORICAL:
            if (training)
                be->rng_uniform(be, rng, m->noise[k], n);
            break;
        case VAE_LATENT_DETERMINISTIC: break; /* no noise */
        }
    }
}

void vae_model_encode(vae_model *m, int B)
{
    for (int l = 0; l < m->n_encoder; l++)
        linear_forward(m, l, B);
}

/* The forward pass after the encoder: the latents from their statistics, the decoder, the terms. */
static void forward_from_stats(vae_model *m, int B, int with_grad)
{
    memset(m->grad_written_layer, 0, sizeof m->grad_written_layer);
    memset(m->grad_written_latent, 0, sizeof m->grad_written_latent);
    for (int k = 0; k < m->n_latents; k++)
        latent_forward(m, k, B, with_grad);
    for (int l = m->n_encoder; l < m->n_linear; l++)
        linear_forward(m, l, B);
    for (int t = 0; t < m->n_terms; t++)
        term_forward(m, t, B, with_grad);
}

void vae_model_forward(vae_model *m, int B, int with_grad)
{
    vae_model_encode(m, B);
    forward_from_stats(m, B, with_grad);
}

void vae_model_forward_from_stats(vae_model *m, int B)
{
    for (int l = m->n_encoder; l < m->n_linear; l++)
        for (int b = 0; b < m->lin[l].n_blocks; b++)
            if (m->lin[l].block[b].kind == VAE_SOURCE_INPUT ||
                (m->lin[l].block[b].kind == VAE_SOURCE_LAYER && m->lin[l].block[b].index < m->n_encoder))
                vae_fatal("vae_model_forward_from_stats: decoder layer %s reads the input or an encoder layer, "
                          "not only the latents",
                          m->lin[l].name);
    forward_from_stats(m, B, 0);
}

void vae_model_backward(vae_model *m, int B)
{
    for (int l = m->n_linear - 1; l >= m->n_encoder; l--)
        linear_backward(m, l, B);
    for (int k = m->n_latents - 1; k >= 0; k--)
        latent_backward(m, k, B);
    for (int l = m->n_encoder - 1; l >= 0; l--)
        linear_backward(m, l, B);
}

void vae_model_train_step(vae_model *m, int B, const vae_adam_config *adam, float clip_grad_norm)
{
    vae_backend *be = m->be;
    vae_model_forward(m, B, 1); /* the backward pass writes every parameter's gradient: no clear */
    be->check_finite(be, m->diverged, m->row_loss, (size_t)B * m->n_terms, VAE_DIVERGED_LOSS);
    vae_model_backward(m, B);
    be->check_finite(be, m->diverged, m->grads, m->n_params, VAE_DIVERGED_GRADIENT);
    if (clip_grad_norm > 0.0f)
        be->grad_clip_scale(be, m->grad_scale, m->grads, m->n_params, clip_grad_norm);
    be->adam_step(be, m->params, m->grads, m->adam_m, m->adam_v, m->n_params, adam, m->scalars + VAE_SCALAR_LR,
                  m->adam_step, m->diverged, clip_grad_norm > 0.0f ? m->grad_scale : NULL);
}

/* The names of model.h's VAE_DIVERGED_QUANTITIES, indexed by value. */
static const char *const diverged_names[] = {
#define DIVERGED_NAME(id, value, name) [VAE_DIVERGED_##id] = name,
    VAE_DIVERGED_QUANTITIES(DIVERGED_NAME)
#undef DIVERGED_NAME
};

const char *vae_diverged_quantity_name(vae_diverged_quantity q)
{
    return vae_name_of(diverged_names, VAE_NAMES_N(diverged_names), q);
}

int vae_model_read_divergence(vae_model *m, vae_divergence *d)
{
    int flag = 0, step = 0;
    m->be->download(m->be, &flag, m->diverged, sizeof flag);
    if (!flag)
        return 0;
    m->be->download(m->be, &step, m->adam_step, sizeof step);
    /* Adam has skipped every step since the flag was set: its t is the last good step. */
    *d = (vae_divergence){.quantity = (vae_diverged_quantity)flag, .step = (long)step + 1};
    return 1;
}

void vae_model_clear_divergence(vae_model *m)
{
    m->be->memset_zero(m->be, m->diverged, sizeof(int));
}

/* The index of the first latent of `kind`, or -1. */
static int latent_of_kind(const vae_model *m, vae_latent_kind kind)
{
    for (int k = 0; k < m->n_latents; k++)
        if (m->latent[k].kind == kind)
            return k;
    return -1;
}

int vae_model_gaussian(const vae_model *m)
{
    const int k = latent_of_kind(m, VAE_LATENT_GAUSSIAN);
    if (k < 0)
        vae_fatal("model: no Gaussian latent (its mu, logvar, eps and z are read here)");
    return k;
}

int vae_model_categorical(const vae_model *m)
{
    return latent_of_kind(m, VAE_LATENT_CATEGORICAL);
}

int vae_model_code(const vae_model *m)
{
    int k = latent_of_kind(m, VAE_LATENT_GAUSSIAN);
    if (k < 0)
        k = latent_of_kind(m, VAE_LATENT_DETERMINISTIC);
    if (k < 0)
        vae_fatal("model: no Gaussian or deterministic latent (its code is read here)");
    return k;
}

int vae_model_has_prior(const vae_model *m)
{
    return m->latent[vae_model_code(m)].kind == VAE_LATENT_GAUSSIAN;
}

void vae_model_set_categories(vae_model *m, int B, const int *cats)
{
    const int c = vae_model_categorical(m);
    if (c < 0)
        return;
    const int K = m->latent[c].dim;
    float *h = vae_calloc((size_t)B * K, sizeof *h);
    for (int i = 0; i < B; i++)
        h[(size_t)i * K + (cats ? cats[i] : i % K)] = 1.0f;
    m->be->upload(m->be, m->sample[c], h, (size_t)B * K * sizeof *h);
    vae_free(h);
}

void vae_model_download_categories(vae_model *m, int B, int *cats)
{
    const int c = vae_model_categorical(m);
    if (c < 0)
        vae_fatal("model: no categorical latent to read categories from");
    const int K = m->latent[c].dim;
    float *h = vae_calloc((size_t)B * K, sizeof *h);
    m->be->download(m->be, h, m->out[m->latent[c].stats_layer], (size_t)B * K * sizeof *h);
    for (int i = 0; i < B; i++) {
        const float *l = h + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (l[k] > l[best])
                best = k;
        cats[i] = best;
    }
    vae_free(h);
}

void vae_model_forward_eval(vae_model *m, int B)
{
    const int c = vae_model_categorical(m);
    if (c < 0) {
        vae_model_forward(m, B, 0);
        return;
    }
    /* the encoder, the latents and the KL columns; the decoder runs once per class below */
    vae_model_encode(m, B);
    for (int k = 0; k < m->n_latents; k++)
        latent_forward(m, k, B, 0);
    for (int t = 0; t < m->n_terms; t++)
        if (!vae_term_is_likelihood(m->term[t].op))
            term_forward(m, t, B, 0);
    vae_backend *be = m->be;
    const int K = m->latent[c].dim, T = m->n_terms;
    float *logits = vae_calloc((size_t)B * K, sizeof *logits), *rows = vae_calloc((size_t)B * T, sizeof *rows);
    double *q = vae_calloc((size_t)B * K, sizeof *q), *expect = vae_calloc((size_t)B * T, sizeof *expect);
    int *cats = vae_calloc((size_t)B, sizeof *cats);
    be->download(be, logits, m->out[m->latent[c].stats_layer], (size_t)B * K * sizeof *logits);
    for (int i = 0; i < B; i++) { /* q(c|x) = softmax(logits), in double */
        const float *l = logits + (size_t)i * K;
        double mx = l[0], sum = 0;
        for (int k = 1; k < K; k++)
            mx = fmax(mx, l[k]);
        for (int k = 0; k < K; k++)
            sum += q[(size_t)i * K + k] = exp(l[k] - mx);
        for (int k = 0; k < K; k++)
            q[(size_t)i * K + k] /= sum;
    }
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < B; i++)
            cats[i] = k;
        vae_model_set_categories(m, B, cats);
        vae_model_decode(m, B);
        for (int t = 0; t < T; t++)
            if (vae_term_is_likelihood(m->term[t].op))
                term_forward(m, t, B, 0);
        be->download(be, rows, m->row_loss, (size_t)B * T * sizeof *rows);
        for (int i = 0; i < B; i++)
            for (int t = 0; t < T; t++)
                expect[(size_t)i * T + t] += q[(size_t)i * K + k] * rows[(size_t)i * T + t];
    }
    for (int i = 0; i < B; i++) /* the likelihood columns become their expectations; the KL columns stay */
        for (int t = 0; t < T; t++)
            if (vae_term_is_likelihood(m->term[t].op))
                rows[(size_t)i * T + t] = (float)expect[(size_t)i * T + t];
    be->upload(be, m->row_loss, rows, (size_t)B * T * sizeof *rows);
    be->onehot_argmax(be, m->sample[c], m->out[m->latent[c].stats_layer], B, K);
    vae_model_decode(m, B); /* leave the decoder's output at argmax q(c|x), as vae_model_forward does */
    vae_free(logits);
    vae_free(rows);
    vae_free(q);
    vae_free(expect);
    vae_free(cats);
}

void vae_model_decode(vae_model *m, int B)
{
    for (int l = m->n_encoder; l < m->n_linear; l++)
        linear_forward(m, l, B);
}

void vae_model_download_mean(vae_model *m, int B, float *host_mean)
{
    const int D = m->cfg.input_dim;
    m->be->download(m->be, host_mean, m->out[m->output], (size_t)B * D * sizeof(float));
    if (m->cfg.likelihood == VAE_LIKELIHOOD_BERNOULLI)
        for (size_t i = 0; i < (size_t)B * D; i++)
            host_mean[i] = 1.0f / (1.0f + expf(-host_mean[i]));
}

/* ---- description --------------------------------------------------------------- */

void vae_model_print_summary(const vae_model *m, FILE *f)
{
    const vae_config *c = &m->cfg;
    char shape[48] = "not an image";
    if (c->image_rows)
        snprintf(shape, sizeof shape, "%dx%d", c->image_rows, c->image_cols);
    char lik[64];
    if (c->likelihood == VAE_LIKELIHOOD_GAUSSIAN)
        snprintf(lik, sizeof lik, "Gaussian decoder (sigma %g)", (double)c->sigma);
    else
        snprintf(lik, sizeof lik, "Bernoulli decoder on logits");
    char label[48] = "";
    if (vae_model_reads_label(m))
        snprintf(label, sizeof label, " + one-hot label (%d classes)", c->classes);
    fprintf(f, "%s: input %d (%s)%s, latent %d, activation %s, beta %g, %s\n", vae_variant_of(c)->title,
            c->input_dim, shape, label, c->latent_dim, vae_act_name(c->act), (double)c->beta, lik);
    vae_variant_summary(c, f);
    fprintf(f, "  %-16s %-12s %-22s %12s\n", "layer", "weight", "output", "parameters");
    for (int l = 0; l < m->n_linear; l++) {
        const vae_linear *L = &m->lin[l];
        char w[32], o[48];
        snprintf(w, sizeof w, "(%d, %d)", L->out, L->in);
        snprintf(o, sizeof o, "%d %s", L->out, vae_act_name(L->act));
        for (int k = 0; k < m->n_latents; k++) { /* a latent's statistics say what they are */
            if (l != m->latent[k].stats_layer)
                continue;
            switch (m->latent[k].kind) {
            case VAE_LATENT_GAUSSIAN: snprintf(o, sizeof o, "mu, logvar (%d each)", L->out / 2); break;
            case VAE_LATENT_CATEGORICAL: snprintf(o, sizeof o, "logits of q(c|x)"); break;
            case VAE_LATENT_DETERMINISTIC: snprintf(o, sizeof o, "code z (%d)", L->out); break;
            }
        }
        fprintf(f, "  %-16s %-12s %-22s %12zu\n", L->name, w, o, (size_t)L->in * L->out + L->out);
    }
    fprintf(f, "  total parameters: %zu (%.2f MB as float32)\n", m->n_params, m->n_params * 4.0 / 1e6);
}
