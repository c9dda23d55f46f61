/*
 * model.c: the VAE's layout, forward and backward passes and training step,
 * written once against the backend table. See model.h for the shapes and the
 * flat parameter layout.
 */
#include "model.h"

#include "hostrng.h"
#include "vae_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---------------------------------------------------------- */

void vae_config_default(vae_config *c)
{
    memset(c, 0, sizeof *c);
    c->input_dim = 784;
    c->image_rows = 28;
    c->image_cols = 28;
    c->latent_dim = 20;
    c->n_hidden = 1;
    c->hidden[0] = 400;
    c->act = VAE_ACT_RELU;
    c->beta = 1.0f;
}

int vae_config_validate(const vae_config *c)
{
    if (c->input_dim < 1 || c->input_dim > (1 << 20))
        return vae_set_error("input size %d out of range (1..1048576)", c->input_dim);
    /* 0x0: the input is not an image (no pictures); otherwise rows x cols pixels make the input */
    if (c->image_rows < 0 || c->image_cols < 0 || (c->image_rows == 0) != (c->image_cols == 0))
        return vae_set_error("image shape %dx%d: both sides must be at least 1, or both 0 for an input that "
                             "is not an image", c->image_rows, c->image_cols);
    if (c->image_rows && (int64_t)c->image_rows * c->image_cols != c->input_dim)
        return vae_set_error("image shape %dx%d does not match input size %d", c->image_rows,
                             c->image_cols, c->input_dim);
    if (c->latent_dim < 1 || c->latent_dim > 4096)
        return vae_set_error("--latent %d out of range (1..4096)", c->latent_dim);
    if (c->n_hidden < 0 || c->n_hidden > VAE_MAX_HIDDEN)
        return vae_set_error("%d hidden layers: at most %d are supported", c->n_hidden, VAE_MAX_HIDDEN);
    for (int i = 0; i < c->n_hidden; i++)
        if (c->hidden[i] < 1 || c->hidden[i] > 65536)
            return vae_set_error("hidden layer size %d out of range (1..65536)", c->hidden[i]);
    if (c->act != VAE_ACT_RELU && c->act != VAE_ACT_TANH)
        return vae_set_error("activation must be relu or tanh");
    if (!(c->beta >= 0.0f) || !isfinite(c->beta))
        return vae_set_error("--beta %g must be a finite number >= 0", (double)c->beta);
    return 0;
}

int vae_config_parse_hidden(const char *s, vae_config *c)
{
    int n = 0;
    const char *p = s;
    if (*s == '\0')
        return vae_set_error("--hidden: empty list (expected sizes like 400 or 512,256)");
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        /* strtol would skip white space and take a sign: " 400" is refused like "400 " */
        if (!isdigit((unsigned char)*p) || end == p || errno || v < 1 || v > 65536 || (*end != ',' && *end != '\0'))
            return vae_set_error("--hidden '%s': expected comma-separated sizes in 1..65536, like 400 or 512,256", s);
        if (n == VAE_MAX_HIDDEN)
            return vae_set_error("--hidden '%s': at most %d hidden layers", s, VAE_MAX_HIDDEN);
        c->hidden[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0')
            return vae_set_error("--hidden '%s': trailing comma", s);
    }
    c->n_hidden = n;
    return 0;
}

int vae_act_parse(const char *s, vae_act *out)
{
    if (strcmp(s, "relu") == 0)
        *out = VAE_ACT_RELU;
    else if (strcmp(s, "tanh") == 0)
        *out = VAE_ACT_TANH;
    else
        return vae_set_error("invalid activation '%s' (expected relu or tanh)", s);
    return 0;
}

const char *vae_act_name(vae_act a)
{
    switch (a) {
    case VAE_ACT_RELU: return "relu";
    case VAE_ACT_TANH: return "tanh";
    case VAE_ACT_NONE: return "none";
    }
    return "?";
}

/* ---- life cycle -------------------------------------------------------------- */

static void add_linear(vae_model *m, size_t *off, const char *name, int in, int out, vae_act act)
{
    vae_linear *L = &m->lin[m->n_linear++];
    snprintf(L->name, sizeof L->name, "%s", name);
    L->in = in;
    L->out = out;
    L->act = act;
    L->w_off = *off;
    *off += (size_t)in * out;
    L->b_off = *off;
    *off += (size_t)out;
}

int vae_model_layout(vae_model *m, const vae_config *cfg)
{
    memset(m, 0, sizeof *m);
    if (vae_config_validate(cfg))
        return -1;
    m->cfg = *cfg;

    const int D = cfg->input_dim, Z = cfg->latent_dim, H = cfg->n_hidden;
    size_t off = 0;
    char name[32];
    int width = D;
    for (int i = 0; i < H; i++) {
        snprintf(name, sizeof name, "encoder.fc%d", i + 1);
        add_linear(m, &off, name, width, cfg->hidden[i], cfg->act);
        width = cfg->hidden[i];
    }
    m->head = m->n_linear;
    add_linear(m, &off, "encoder.head", width, 2 * Z, VAE_ACT_NONE);
    width = Z;
    for (int i = 0; i < H; i++) {
        snprintf(name, sizeof name, "decoder.fc%d", i + 1);
        add_linear(m, &off, name, width, cfg->hidden[H - 1 - i], cfg->act);
        width = cfg->hidden[H - 1 - i];
    }
    add_linear(m, &off, "decoder.out", width, D, VAE_ACT_NONE);
    m->n_params = off;
    return 0;
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
    const size_t D = (size_t)m->cfg.input_dim, Z = (size_t)m->cfg.latent_dim;
    m->params = model_buffer(m, pbytes, total);
    m->grads = model_buffer(m, pbytes, total);
    m->adam_m = model_buffer(m, pbytes, total);
    m->adam_v = model_buffer(m, pbytes, total);
    m->adam_step = model_buffer(m, sizeof(int), total);
    m->diverged = model_buffer(m, sizeof(int), total);
    m->grad_scale = model_buffer(m, sizeof(float), total);

    m->x = model_buffer(m, Bc * D * sizeof(float), total);
    for (int l = 0; l < m->n_linear; l++) {
        m->out[l] = model_buffer(m, Bc * m->lin[l].out * sizeof(float), total);
        m->dout[l] = model_buffer(m, Bc * m->lin[l].out * sizeof(float), total);
    }
    m->eps = model_buffer(m, vae_rng_normal_count(Bc * Z) * sizeof(float), total);
    m->z = model_buffer(m, vae_rng_normal_count(Bc * Z) * sizeof(float), total); /* prior samples are drawn into it */
    m->dz = model_buffer(m, Bc * Z * sizeof(float), total);
    m->row_loss = model_buffer(m, Bc * 2 * sizeof(float), total);
}

int vae_model_init(vae_model *m, const vae_config *cfg, vae_backend *be, int batch_cap)
{
    if (model_layout(m, cfg, batch_cap))
        return -1;
    m->be = be;
    vae_buffer_total total = {0, 0};
    model_buffers(m, &total);
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
                    m->x, m->eps, m->z, m->dz, m->row_loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            be->buffer_free(be, bufs[i]);
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

const float *vae_model_layer_input(const vae_model *m, int l)
{
    if (l == 0)
        return m->x;
    if (l == m->head + 1)
        return m->z;
    return m->out[l - 1];
}

/* ---- compute ------------------------------------------------------------------ */

/* out = act(in @ W^T + b): in (B, L->in), out (B, L->out). */
static void linear_forward(vae_model *m, int l, int B)
{
    vae_backend *be = m->be;
    const vae_linear *L = &m->lin[l];
    be->gemm(be, 0, 1, B, L->out, L->in, 1.0f, vae_model_layer_input(m, l), L->in,
             m->params + L->w_off, L->in, 0.0f, m->out[l], L->out);
    be->bias_act_forward(be, m->out[l], m->params + L->b_off, B, L->out, L->act);
}

/* From dout[l] (gradient w.r.t. the layer's output): dW += dpre^T @ in, db += sum dpre,
 * and, when din is not NULL, din = dpre @ W. dout[l] is overwritten with dpre. */
static void linear_backward(vae_model *m, int l, int B, float *din)
{
    vae_backend *be = m->be;
    const vae_linear *L = &m->lin[l];
    float *dpre = m->dout[l];
    be->bias_act_backward(be, dpre, m->grads + L->b_off, m->dout[l], m->out[l], B, L->out, L->act);
    be->gemm(be, 1, 0, L->out, L->in, B, 1.0f, dpre, L->out, vae_model_layer_input(m, l), L->in, 1.0f,
             m->grads + L->w_off, L->in);
    if (din)
        be->gemm(be, 0, 0, B, L->in, L->out, 1.0f, dpre, L->out, m->params + L->w_off, L->in, 0.0f, din,
                 L->in);
}

void vae_model_forward(vae_model *m, int B, int with_grad)
{
    vae_backend *be = m->be;
    const int Z = m->cfg.latent_dim, last = m->n_linear - 1;
    for (int l = 0; l <= m->head; l++)
        linear_forward(m, l, B);
    be->reparam_forward(be, m->z, m->out[m->head], m->eps, B, Z);
    for (int l = m->head + 1; l <= last; l++)
        linear_forward(m, l, B);
    be->loss_bce_kl(be, m->row_loss, with_grad ? m->dout[last] : NULL, with_grad ? m->dout[m->head] : NULL,
                    m->out[last], m->x, m->out[m->head], B, m->cfg.input_dim, Z, m->cfg.beta, 1.0f / (float)B);
}

void vae_model_backward(vae_model *m, int B)
{
    vae_backend *be = m->be;
    const int last = m->n_linear - 1;
    for (int l = last; l > m->head; l--)
        linear_backward(m, l, B, l == m->head + 1 ? m->dz : m->dout[l - 1]);
    be->reparam_backward(be, m->dout[m->head], m->dz, m->out[m->head], m->eps, B, m->cfg.latent_dim);
    for (int l = m->head; l >= 0; l--)
        linear_backward(m, l, B, l > 0 ? m->dout[l - 1] : NULL);
}

void vae_model_train_step(vae_model *m, int B, const vae_adam_config *adam, float clip_grad_norm)
{
    vae_backend *be = m->be;
    be->memset_zero(be, m->grads, m->n_params * sizeof(float));
    vae_model_forward(m, B, 1);
    be->check_finite(be, m->diverged, m->row_loss, (size_t)B * 2, VAE_DIVERGED_LOSS);
    vae_model_backward(m, B);
    be->check_finite(be, m->diverged, m->grads, m->n_params, VAE_DIVERGED_GRADIENT);
    if (clip_grad_norm > 0.0f)
        be->grad_clip_scale(be, m->grad_scale, m->grads, m->n_params, clip_grad_norm);
    be->adam_step(be, m->params, m->grads, m->adam_m, m->adam_v, m->n_params, adam, m->adam_step, m->diverged,
                  clip_grad_norm > 0.0f ? m->grad_scale : NULL);
}

const char *vae_diverged_quantity_name(vae_diverged_quantity q)
{
    switch (q) {
    case VAE_DIVERGED_LOSS: return "loss";
    case VAE_DIVERGED_GRADIENT: return "gradient";
    case VAE_DIVERGED_NONE: return "nothing";
    }
    return "?";
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

void vae_model_decode(vae_model *m, int B)
{
    for (int l = m->head + 1; l < m->n_linear; l++)
        linear_forward(m, l, B);
}

void vae_model_download_probs(vae_model *m, int B, float *host_probs)
{
    const int D = m->cfg.input_dim;
    m->be->download(m->be, host_probs, m->out[m->n_linear - 1], (size_t)B * D * sizeof(float));
    for (size_t i = 0; i < (size_t)B * D; i++)
        host_probs[i] = 1.0f / (1.0f + expf(-host_probs[i]));
}

/* ---- description --------------------------------------------------------------- */

void vae_model_print_summary(const vae_model *m, FILE *f)
{
    const vae_config *c = &m->cfg;
    char shape[48] = "not an image";
    if (c->image_rows)
        snprintf(shape, sizeof shape, "%dx%d", c->image_rows, c->image_cols);
    fprintf(f, "VAE: input %d (%s), latent %d, activation %s, beta %g, Bernoulli decoder on logits\n",
            c->input_dim, shape, c->latent_dim, vae_act_name(c->act), (double)c->beta);
    fprintf(f, "  %-16s %-12s %-22s %12s\n", "layer", "weight", "output", "parameters");
    for (int l = 0; l < m->n_linear; l++) {
        const vae_linear *L = &m->lin[l];
        char w[32], o[48];
        snprintf(w, sizeof w, "(%d, %d)", L->out, L->in);
        if (l == m->head)
            snprintf(o, sizeof o, "mu, logvar (%d each)", L->out / 2);
        else
            snprintf(o, sizeof o, "%d %s", L->out, vae_act_name(L->act));
        fprintf(f, "  %-16s %-12s %-22s %12zu\n", L->name, w, o, (size_t)L->in * L->out + L->out);
    }
    fprintf(f, "  total parameters: %zu (%.2f MB as float32)\n", m->n_params, m->n_params * 4.0 / 1e6);
}
