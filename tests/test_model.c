/*
 * test_model.c: the whole model on the CPU backend: every parameter gradient
 * of the full loss against central finite differences of an independent
 * double-precision forward pass; the flat layout; and checkpoint round trips,
 * including corrupted and truncated files.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "model.h"
#include "testutil.h"
#include "vae_util.h"
#include "variant.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static vae_config small_config(vae_act act)
{
    vae_config c = tu_small_config();
    c.act = act;
    c.beta = 0.8f;
    return c;
}

static double act_d(double x, vae_act a)
{
    return a == VAE_ACT_RELU ? (x > 0 ? x : 0) : a == VAE_ACT_TANH ? tanh(x) : x;
}

/* The objective of a term from its batch sum: a controlled-capacity term gamma |sum / B - C|,
 * another weight * sum / B with the weight its gradient uses (the KL's is the model's KL weight
 * scalar, beta after vae_model_init). Scalars read from the CPU backend's memory. */
static double term_objective(const vae_model *m, int t, double sum, int B)
{
    const vae_loss_term *term = &m->term[t];
    if (term->capacity >= 0)
        return term->gamma * fabs(sum / B - m->scalars[term->capacity]);
    return (term->scalar == VAE_SCALAR_KL_WEIGHT ? m->cfg.beta : 1.0) * sum / B;
}

/* The objective over the batch, in double, from parameters p laid out as model.h says,
 * following m's composition with its own arithmetic: a layer's output is act(W @ cat(blocks) + b),
 * the Gaussian latent z = mu + eps * exp(logvar / 2), a deterministic one z = its stats, the
 * categorical one the Gumbel-softmax
 * softmax((alpha + g) / tau) with g = -log(-log(u)) from its fixed uniforms u, the terms
 * combined by term_objective. y: the one-hot labels (B, classes) of a conditional model;
 * noise[k]: latent k's noise (B, dim). */
static double reference_loss(const vae_model *m, const double *p, const float *x, const float *y,
                             float *const *noise, int B)
{
    enum { W = 64 };
    const int D = m->cfg.input_dim;
    double sums[VAE_MAX_TERMS] = {0};
    for (int i = 0; i < B; i++) {
        double out[VAE_MAX_LINEAR][W], z[VAE_MAX_LATENTS][W], xin[W], cat[2 * W];
        for (int d = 0; d < D; d++)
            xin[d] = x[i * D + d];
        for (int l = 0; l < m->n_linear; l++) {
            if (l == m->n_encoder)
                for (int k = 0; k < m->n_latents; k++) {
                    const vae_latent *lt = &m->latent[k];
                    const double *st = out[lt->stats_layer];
                    const float *nz = noise[k] + (size_t)i * lt->dim;
                    if (lt->kind == VAE_LATENT_GAUSSIAN) {
                        for (int j = 0; j < lt->dim; j++)
                            z[k][j] = st[j] + nz[j] * exp(0.5 * st[lt->dim + j]);
                        continue;
                    }
                    if (lt->kind == VAE_LATENT_DETERMINISTIC) {
                        for (int j = 0; j < lt->dim; j++)
                            z[k][j] = st[j];
                        continue;
                    }
                    const double tau = m->scalars[VAE_SCALAR_TEMPERATURE];
                    double mx = -INFINITY, sum = 0;
                    for (int j = 0; j < lt->dim; j++) {
                        z[k][j] = (st[j] - log(-log(nz[j]))) / tau;
                        mx = fmax(mx, z[k][j]);
                    }
                    for (int j = 0; j < lt->dim; j++)
                        sum += z[k][j] = exp(z[k][j] - mx);
                    for (int j = 0; j < lt->dim; j++)
                        z[k][j] /= sum;
                }
            const vae_linear *L = &m->lin[l];
            int c = 0;
            for (int k = 0; k < L->n_blocks; k++) {
                const vae_block *b = &L->block[k];
                if (b->kind == VAE_SOURCE_LABEL) { /* the one-hot label y (B, width) */
                    for (int j = 0; j < b->width; j++)
                        cat[c++] = y[i * b->width + j];
                    continue;
                }
                const double *src = b->kind == VAE_SOURCE_INPUT ? xin : b->kind == VAE_SOURCE_LATENT ? z[b->index]
                                                                                                   : out[b->index];
                for (int j = 0; j < b->width; j++)
                    cat[c++] = src[j];
            }
            for (int r = 0; r < L->out; r++) {
                double s = p[L->b_off + r];
                for (int j = 0; j < L->in; j++)
                    s += p[L->w_off + (size_t)r * L->in + j] * cat[j];
                out[l][r] = act_d(s, L->act);
            }
        }
        for (int t = 0; t < m->n_terms; t++) {
            const vae_loss_term *term = &m->term[t];
            double v = 0;
            if (term->op == VAE_TERM_LIK_BERNOULLI) {
                for (int d = 0; d < D; d++) {
                    double lg = out[term->layer][d];
                    v += fmax(lg, 0) - lg * x[i * D + d] + log1p(exp(-fabs(lg)));
                }
            } else if (term->op == VAE_TERM_LIK_GAUSSIAN) {
                const double sg = m->cfg.sigma;
                for (int d = 0; d < D; d++) {
                    double r = out[term->layer][d] - x[i * D + d];
                    v += r * r / (2 * sg * sg) + log(sg) + 0.5 * log(2 * M_PI);
                }
            } else if (term->op == VAE_TERM_KL_CATEGORICAL) {
                const vae_latent *lt = &m->latent[term->latent];
                const double *al = out[lt->stats_layer];
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < lt->dim; j++)
                    mx = fmax(mx, al[j]);
                for (int j = 0; j < lt->dim; j++)
                    sum += exp(al[j] - mx);
                v = log((double)lt->dim);
                for (int j = 0; j < lt->dim; j++) {
                    double lq = al[j] - mx - log(sum);
                    v += exp(lq) * lq;
                }
            } else {
                const vae_latent *lt = &m->latent[term->latent];
                const double *st = out[lt->stats_layer];
                for (int j = 0; j < lt->dim; j++)
                    v += -0.5 * (1 + st[lt->dim + j] - st[j] * st[j] - exp(st[lt->dim + j]));
            }
            sums[t] += v;
        }
    }
    double total = 0;
    for (int t = 0; t < m->n_terms; t++)
        total += term_objective(m, t, sums[t], B);
    return total;
}

/* Every parameter gradient of m (composed, allocated on the CPU backend, parameters set)
 * against central differences of reference_loss; also the float loss against the double one.
 * Each latent's noise is fixed: normals for a Gaussian one, uniforms for a categorical one. */
static void check_model_gradient(vae_model *m, const char *label, uint64_t seed)
{
    const int B = m->batch_cap, D = m->cfg.input_dim, K = m->cfg.classes;
    float x[8 * 64], noise[VAE_MAX_LATENTS][8 * 64], y[8 * 64] = {0};
    float *np[VAE_MAX_LATENTS];
    cr_assert(B <= 8 && D <= 64 && K <= 64);
    tu_fill_uniform(x, (size_t)B * D, seed + 1, 0, 1);
    for (int k = 0; k < m->n_latents; k++) {
        cr_assert(m->latent[k].dim <= 32);
        if (m->latent[k].kind == VAE_LATENT_GAUSSIAN)
            tu_fill_uniform(noise[k], (size_t)B * m->latent[k].dim, seed + 2 + k, -1.5f, 1.5f);
        else
            tu_fill_uniform(noise[k], (size_t)B * m->latent[k].dim, seed + 2 + k, 0.01f, 0.99f);
        if (m->latent[k].kind == VAE_LATENT_DETERMINISTIC) /* no noise of its own: the reference ignores it */
            cr_assert_null(m->noise[k], "a deterministic latent has no noise buffer");
        else
            memcpy(m->noise[k], noise[k], (size_t)B * m->latent[k].dim * 4);
        np[k] = noise[k];
    }
    memcpy(m->x, x, (size_t)B * D * 4);
    if (m->y) { /* a conditional model: labels cycling through the classes, from the seed on */
        uint8_t labels[8];
        for (int i = 0; i < B; i++)
            labels[i] = (uint8_t)((seed + (uint64_t)i) % (uint64_t)K);
        vae_model_set_labels(m, labels, B);
        memcpy(y, m->y, (size_t)B * K * 4);
        for (int i = 0; i < B; i++)
            cr_assert(y[i * K + labels[i]] == 1.0f, "row %d: y is not the one-hot of label %d", i, labels[i]);
    }

    /* NaN in every gradient first: the backward pass must write each one, not add to it */
    for (size_t k = 0; k < m->n_params; k++)
        m->grads[k] = NAN;
    vae_model_forward(m, B, 1);
    vae_model_backward(m, B);

    double *p = malloc(m->n_params * sizeof(double)), *fd = malloc(m->n_params * sizeof(double));
    double *got = malloc(m->n_params * sizeof(double));
    for (size_t k = 0; k < m->n_params; k++)
        p[k] = m->params[k];

    /* the float forward agrees with the double one */
    double loss_f = 0;
    for (int t = 0; t < m->n_terms; t++) {
        double sum = 0;
        for (int i = 0; i < B; i++)
            sum += m->row_loss[i * m->n_terms + t];
        loss_f += term_objective(m, t, sum, B);
    }
    double loss_d = reference_loss(m, p, x, y, np, B);
    cr_assert(fabs(loss_f - loss_d) < 1e-4 * fabs(loss_d), "%s: loss float %.9g, double %.9g", label, loss_f,
              loss_d);

    const double h = 1e-6;
    for (size_t k = 0; k < m->n_params; k++) {
        double keep = p[k];
        p[k] = keep + h;
        double fp = reference_loss(m, p, x, y, np, B);
        p[k] = keep - h;
        double fm = reference_loss(m, p, x, y, np, B);
        p[k] = keep;
        fd[k] = (fp - fm) / (2 * h);
        got[k] = m->grads[k];
    }
    for (int l = 0; l < m->n_linear; l++) {
        const vae_linear *L = &m->lin[l];
        char what[96];
        snprintf(what, sizeof what, "%s: %s weight gradient", label, L->name);
        cr_assert(tu_allclose_d(what, got + L->w_off, fd + L->w_off, (size_t)L->in * L->out, 1e-5, 1e-3));
        snprintf(what, sizeof what, "%s: %s bias gradient", label, L->name);
        cr_assert(tu_allclose_d(what, got + L->b_off, fd + L->b_off, (size_t)L->out, 1e-5, 1e-3));
    }
    free(p);
    free(fd);
    free(got);
}

/* Parameters from the default init, widened so every layer matters. */
static void wide_params(vae_model *m, uint64_t seed)
{
    vae_model_init_params(m, seed);
    for (size_t k = 0; k < m->n_params; k++)
        m->params[k] *= 3.0f;
}

static void check_whole_loss_gradient(vae_act act, vae_likelihood lik, uint64_t seed)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(act);
    c.likelihood = lik;
    c.sigma = 0.7f;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 5), 0, "%s", vae_last_error());
    wide_params(&m, seed);
    check_model_gradient(&m, vae_act_name(act), seed);
    vae_model_free(&m);
    vae_backend_free(be);
}

Test(model, whole_loss_gradient_tanh) { check_whole_loss_gradient(VAE_ACT_TANH, VAE_LIKELIHOOD_BERNOULLI, 3); }
Test(model, whole_loss_gradient_relu) { check_whole_loss_gradient(VAE_ACT_RELU, VAE_LIKELIHOOD_BERNOULLI, 4); }
Test(model, whole_loss_gradient_gaussian_likelihood)
{
    check_whole_loss_gradient(VAE_ACT_TANH, VAE_LIKELIHOOD_GAUSSIAN, 5);
}

/* The conditional VAE: [x | y] into the encoder, [z | y] into the decoder (compose_cvae.c); the
 * weight columns of y get the gradient of PyTorch's Linear on torch.cat, and the reference reads
 * the one-hot labels the model was given. Both with hidden layers and without (the head and the
 * output then read the two blocks directly). */
Test(model, cvae_whole_loss_gradient)
{
    vae_backend *be = vae_backend_cpu_init();
    for (int n_hidden = 2; n_hidden >= 0; n_hidden -= 2) {
        vae_config c = small_config(VAE_ACT_TANH);
        c.variant = vae_variant_find("cvae");
        c.classes = 4;
        c.n_hidden = n_hidden;
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, be, 5), 0, "%s", vae_last_error());
        cr_assert(vae_model_reads_label(&m));
        cr_assert_not_null(m.y);
        cr_assert_eq(m.lin[0].in, c.input_dim + 4, "the encoder's first layer reads [x | y]");
        cr_assert_eq(m.lin[m.n_encoder].in, c.latent_dim + 4, "the decoder's first layer reads [z | y]");
        wide_params(&m, 11);
        check_model_gradient(&m, n_hidden ? "cvae" : "cvae without hidden layers", 11 + (uint64_t)n_hidden);
        vae_model_free(&m);
    }
    vae_backend_free(be);
}

/* The conditional VAE with the decoder alone reading y (--condition decoder): the encoder reads x
 * alone, the decoder [z | y]; every gradient against finite differences. */
Test(model, cvae_conditioned_on_the_decoder_whole_loss_gradient)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("cvae");
    c.classes = 4;
    c.condition = VAE_CONDITION_DECODER;
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 5), 0, "%s", vae_last_error());
    cr_assert_eq(m.lin[0].in, c.input_dim, "the encoder's first layer reads x alone");
    cr_assert_eq(m.lin[m.n_encoder].in, c.latent_dim + 4, "the decoder's first layer reads [z | y]");
    wide_params(&m, 13);
    check_model_gradient(&m, "cvae, --condition decoder", 13);
    vae_model_free(&m);
    c.variant = vae_variant_find("vae");
    c.classes = 0;
    cr_expect_eq(vae_config_validate(&c), -1, "a condition for a model that reads no label");
    cr_expect(strstr(vae_last_error(), "--condition decoder: only for a model that reads the label"), "%s",
              vae_last_error());
    vae_backend_free(be);
}

/* The deterministic autoencoder (compose_ae.c): z is the encoder's output itself (its sample and
 * gradient are the stats layer's own buffers, no op between), the one term the reconstruction;
 * every gradient against central differences, with hidden layers and without, and a model that
 * draws no noise and allocates none for its code. */
Test(model, ae_whole_loss_gradient)
{
    vae_backend *be = vae_backend_cpu_init();
    for (int n_hidden = 2; n_hidden >= 0; n_hidden -= 2) {
        vae_config c = small_config(VAE_ACT_TANH);
        c.variant = vae_variant_find("ae");
        c.beta = 1.0f;
        c.n_hidden = n_hidden;
        vae_model m;
        cr_assert_eq(vae_model_init(&m, &c, be, 5), 0, "%s", vae_last_error());
        cr_assert_eq(m.n_latents, 1);
        cr_assert_eq(m.latent[0].kind, VAE_LATENT_DETERMINISTIC);
        cr_assert_eq(m.n_terms, 1, "the reconstruction alone");
        cr_assert_eq(vae_model_code(&m), 0);
        cr_assert_not(vae_model_has_prior(&m));
        const int s = m.latent[0].stats_layer;
        cr_assert_eq(m.lin[s].out, c.latent_dim, "the code layer gives z itself");
        cr_assert_eq(m.sample[0], m.out[s], "z is the code layer's output");
        cr_assert_eq(m.dsample[0], m.dout[s]);
        wide_params(&m, 21);
        check_model_gradient(&m, n_hidden ? "ae" : "ae without hidden layers", 21 + (uint64_t)n_hidden);
        vae_model_free(&m);
    }
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("ae");
    cr_expect_eq(vae_config_validate(&c), -1, "beta 0.8 for a model without a KL");
    cr_expect(strstr(vae_last_error(), "--beta 0.8: the ae has no KL term"), "%s", vae_last_error());
    vae_backend_free(be);
}

Test(model, cvae_config_needs_classes)
{
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("cvae");
    c.classes = 1;
    cr_expect_eq(vae_config_validate(&c), -1);
    cr_expect(strstr(vae_last_error(), "2..256 label classes"), "%s", vae_last_error());
    c.classes = 10;
    cr_expect_eq(vae_config_validate(&c), 0, "%s", vae_last_error());
    const vae_variant *v = NULL;
    cr_expect_eq(vae_variant_parse("cvae", &v), 0);
    cr_expect_eq(v, vae_variant_find("cvae"));
    cr_expect_eq(vae_variant_parse("cave", &v), -1);
    cr_expect(strstr(vae_last_error(), "invalid --model 'cave'"), "%s", vae_last_error());
}

/* A composition the configurations do not make: the decoder's first layer reads [z | x] and
 * the output layer [decoder.fc1 | z], so layers have two input blocks, z has two readers
 * (its gradient is written by the first and accumulated by the second) and x feeds both
 * halves of the model. Its gradients are exactly those of PyTorch's Linear on torch.cat. */
Test(model, layers_with_several_input_blocks_match_finite_differences)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_TANH);
    c.likelihood = VAE_LIKELIHOOD_GAUSSIAN;
    c.sigma = 0.5f;
    const int D = c.input_dim, Z = c.latent_dim;
    vae_model m;
    vae_model_compose_begin(&m, &c);
    vae_block x = vae_block_of(VAE_SOURCE_INPUT, 0, D);
    int h = vae_model_add_linear(&m, "encoder.fc1", &x, 1, 9, VAE_ACT_TANH);
    vae_block hb = vae_block_of(VAE_SOURCE_LAYER, h, 9);
    int head = vae_model_add_linear(&m, "encoder.head", &hb, 1, 2 * Z, VAE_ACT_NONE);
    int z = vae_model_add_latent(&m, "z", VAE_LATENT_GAUSSIAN, Z, head);
    vae_block zx[2] = {vae_block_of(VAE_SOURCE_LATENT, z, Z), x};
    int d1 = vae_model_add_linear(&m, "decoder.fc1", zx, 2, 6, VAE_ACT_TANH);
    vae_block dz[2] = {vae_block_of(VAE_SOURCE_LAYER, d1, 6), vae_block_of(VAE_SOURCE_LATENT, z, Z)};
    int out = vae_model_add_linear(&m, "decoder.out", dz, 2, D, VAE_ACT_NONE);
    vae_model_add_term(&m, "recon", VAE_TERM_LIK_GAUSSIAN, out, -1, 1.0f);
    vae_model_add_term(&m, "kl", VAE_TERM_KL_GAUSSIAN, z, VAE_SCALAR_KL_WEIGHT, c.beta);
    cr_assert_eq(vae_model_alloc(&m, be, 4), 0, "%s", vae_last_error());
    cr_assert_eq(m.lin[d1].in, Z + D);
    cr_assert_eq(m.lin[d1].block[1].col, Z, "x's block starts after z's columns");
    cr_assert_eq(m.lin[out].in, 6 + Z);
    wide_params(&m, 8);
    check_model_gradient(&m, "[z | x] and [fc1 | z] blocks", 8);
    vae_model_free(&m);
    vae_backend_free(be);
}

/* The joint model (compose_joint.c): [z | c] into the decoder, the Gumbel-softmax sample of c with
 * fixed uniforms at a temperature read from its scalar, both KL terms; plain (beta) and with
 * controlled capacities, where the objective is gamma |mean KL - C| per latent (one C below the
 * batch's KL, one above, so both signs of the weight are checked). */
static void check_joint_gradient(int capacity, uint64_t seed)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("joint");
    c.disc = 4;
    if (capacity) {
        c.cap_z = (vae_capacity){.max = 5, .iters = 100, .gamma = 3};
        c.cap_c = (vae_capacity){.max = 5, .iters = 100, .gamma = 2};
    }
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 5), 0, "%s", vae_last_error());
    cr_assert_eq(m.n_latents, 2);
    cr_assert_eq(m.latent[1].kind, VAE_LATENT_CATEGORICAL);
    cr_assert_eq(m.lin[m.n_encoder].in, c.latent_dim + c.disc, "the decoder reads [z | c]");
    cr_assert_eq(m.term[2].op, VAE_TERM_KL_CATEGORICAL);
    vae_model_set_scalar(&m, VAE_SCALAR_TEMPERATURE, 0.8f);
    vae_model_set_scalar(&m, VAE_SCALAR_CAPACITY_Z, 40.0f); /* far above KL_z: weight -gamma */
    vae_model_set_scalar(&m, VAE_SCALAR_CAPACITY_C, 0.0f);  /* below KL_c: weight +gamma */
    wide_params(&m, seed);
    check_model_gradient(&m, capacity ? "joint, controlled capacity" : "joint, plain", seed);
    if (capacity) {
        cr_assert_eq(m.scalars[VAE_SCALAR_CAP_WEIGHT_Z], -3.0f, "gamma * sign(KL_z - C_z)");
        cr_assert_eq(m.scalars[VAE_SCALAR_CAP_WEIGHT_C], 2.0f, "gamma * sign(KL_c - C_c)");
    }
    vae_model_free(&m);
    vae_backend_free(be);
}

Test(model, joint_model_gradient_plain) { check_joint_gradient(0, 11); }
Test(model, joint_model_gradient_with_controlled_capacity) { check_joint_gradient(1, 12); }

/* The test bound sums c out exactly: each likelihood term becomes sum_k q_k term(c = k), and
 * the KL terms stay; checked against K separate decodes by hand. */
Test(model, joint_evaluation_takes_the_exact_expectation_over_c)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("joint");
    c.disc = 3;
    vae_model m;
    const int B = 4, K = 3, D = c.input_dim, T = 3;
    cr_assert_eq(vae_model_init(&m, &c, be, B), 0, "%s", vae_last_error());
    wide_params(&m, 21);
    tu_fill_uniform(m.x, (size_t)B * D, 22, 0, 1);
    tu_fill_uniform(m.noise[vae_model_gaussian(&m)], (size_t)B * c.latent_dim, 23, -1, 1);
    vae_model_forward_eval(&m, B);
    float got[4 * 3];
    memcpy(got, m.row_loss, sizeof got);
    /* by hand: q from the logits, then recon with each one-hot c */
    const float *al = m.out[m.latent[1].stats_layer];
    double want[4] = {0};
    for (int k = 0; k < K; k++) {
        int cats[4] = {k, k, k, k};
        vae_model_set_categories(&m, B, cats);
        vae_model_decode(&m, B);
        const float *lg = m.out[m.output];
        for (int i = 0; i < B; i++) {
            double mx = fmax(fmax(al[i * K], al[i * K + 1]), al[i * K + 2]), s = 0;
            for (int j = 0; j < K; j++)
                s += exp(al[i * K + j] - mx);
            double q = exp(al[i * K + k] - mx) / s, r = 0;
            for (int d = 0; d < D; d++) {
                double l = lg[i * D + d], xv = m.x[i * D + d];
                r += fmax(l, 0) - l * xv + log1p(exp(-fabs(l)));
            }
            want[i] += q * r;
        }
    }
    for (int i = 0; i < B; i++) {
        cr_assert(fabs(got[i * T] - want[i]) < 1e-4 * want[i], "row %d: recon %.9g, expected %.9g", i,
                  (double)got[i * T], want[i]);
        cr_assert(got[i * T + 2] >= 0 && got[i * T + 2] <= log(3.0) + 1e-6, "KL_c within [0, log K]");
    }
    vae_model_free(&m);
    vae_backend_free(be);
}

/* The importance-weighted pass encodes an image once and runs only the decoder per sample:
 * statistics repeated by hand and vae_model_forward_from_stats must give the row losses and
 * outputs of the whole forward pass over the repeated image. A cvae, so that the label reaches
 * the decoder as well; the rows of the statistics not written by hand hold garbage first. */
Test(model, forward_from_stats_matches_the_whole_forward)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_RELU);
    c.variant = vae_variant_find("cvae");
    c.classes = 3;
    vae_model m;
    const int B = 5;
    cr_assert_eq(vae_model_init(&m, &c, be, B), 0, "%s", vae_last_error());
    const int D = c.input_dim, S = 2 * c.latent_dim, T = m.n_terms;
    wide_params(&m, 31);
    const uint8_t labels[5] = {2, 2, 2, 2, 2};
    tu_fill_uniform(m.x, (size_t)D, 32, 0, 1);
    for (int i = 1; i < B; i++)
        memcpy(m.x + (size_t)i * D, m.x, (size_t)D * sizeof(float));
    vae_model_set_labels(&m, labels, B);
    tu_fill_uniform(m.noise[vae_model_gaussian(&m)], (size_t)B * c.latent_dim, 33, -2, 2);
    vae_model_forward(&m, B, 0);
    float want_loss[5 * 2], *want_out = vae_calloc((size_t)B * D, sizeof(float));
    cr_assert_eq(T, 2);
    memcpy(want_loss, m.row_loss, sizeof want_loss);
    memcpy(want_out, m.out[m.output], (size_t)B * D * sizeof(float));

    float *stats = vae_model_latent_stats(&m, vae_model_gaussian(&m));
    tu_fill_uniform(stats, (size_t)B * S, 34, -50, 50); /* stale statistics */
    for (size_t k = 0; k < (size_t)B * D; k++)
        m.out[m.output][k] = NAN;
    vae_model_encode(&m, 1);
    for (int i = 1; i < B; i++)
        memcpy(stats + (size_t)i * S, stats, (size_t)S * sizeof(float));
    vae_model_forward_from_stats(&m, B);
    /* the encoder ran on one row instead of five: the GEMM may round differently in the last bit */
    for (int k = 0; k < B * T; k++)
        cr_expect(fabsf(m.row_loss[k] - want_loss[k]) <= 1e-5f * fabsf(want_loss[k]) + 1e-6f,
                  "row %d, term %d: %.9g, the whole forward %.9g", k / T, k % T, (double)m.row_loss[k],
                  (double)want_loss[k]);
    double worst = 0;
    for (size_t k = 0; k < (size_t)B * D; k++)
        worst = fmax(worst, isnan(m.out[m.output][k]) ? INFINITY : fabs(m.out[m.output][k] - want_out[k]));
    cr_expect_leq(worst, 1e-4, "decoder output off by %g", worst);
    vae_free(want_out);
    vae_model_free(&m);
    vae_backend_free(be);
}

Test(model, default_layout_matches_the_pytorch_example)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c;
    vae_config_default(&c);
    vae_model m;
    cr_assert_eq(vae_model_init(&m, &c, be, 4), 0);
    /* fc1 784*400+400, fc21+fc22 2*(400*20+20), fc3 20*400+400, fc4 400*784+784 */
    cr_assert_eq(m.n_params, (size_t)(784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784));
    cr_assert_eq(m.n_linear, 4);
    cr_assert_eq(m.lin[1].out, 40);
    for (int l = 1; l < m.n_linear; l++)
        cr_assert_eq(m.lin[l].w_off, m.lin[l - 1].b_off + (size_t)m.lin[l - 1].out, "the buffer must be dense");
    vae_model_free(&m);
    vae_backend_free(be);
}

Test(model, config_parsing_rejects_bad_values)
{
    vae_config c;
    vae_config_default(&c);
    cr_assert_eq(vae_config_parse_hidden("512,256", &c), 0);
    cr_assert_eq(c.n_hidden, 2);
    cr_assert_eq(c.hidden[1], 256);
    const char *bad[] = {"", "0", "12,", ",12", "a", "400x", "-5", "1,2,3,4,5,6,7,8,9", "99999999",
                         " 400", "400, 2", "+5", "400 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(vae_config_parse_hidden(bad[i], &c), -1, "'%s' accepted", bad[i]);
    vae_act a;
    cr_assert_eq(vae_act_parse("sigmoid", &a), -1);
    vae_config_default(&c);
    c.beta = -1;
    cr_assert_eq(vae_config_validate(&c), -1);
    c.beta = NAN;
    cr_assert_eq(vae_config_validate(&c), -1);
}

/* ---- the divergence guard and gradient clipping ------------------------------- */

typedef struct {
    float *p, *m, *v;
    int step;
} model_state;

static model_state state_of(const vae_model *m)
{
    model_state s = {malloc(m->n_params * 4), malloc(m->n_params * 4), malloc(m->n_params * 4), *m->adam_step};
    memcpy(s.p, m->params, m->n_params * 4);
    memcpy(s.m, m->adam_m, m->n_params * 4);
    memcpy(s.v, m->adam_v, m->n_params * 4);
    return s;
}

static int state_equal(const vae_model *m, const model_state *s)
{
    return memcmp(s->p, m->params, m->n_params * 4) == 0 && memcmp(s->m, m->adam_m, m->n_params * 4) == 0 &&
           memcmp(s->v, m->adam_v, m->n_params * 4) == 0 && s->step == *m->adam_step;
}

static void state_free(model_state *s)
{
    free(s->p);
    free(s->m);
    free(s->v);
}

/* A small model on the CPU with a batch of B seeded inputs and noise in place, trained at
 * learning rate lr by vae_model_train_step (the model's backend scalar). */
static void small_model_with_batch(vae_model *m, vae_backend *be, int B, uint64_t seed, float lr)
{
    vae_config c = small_config(VAE_ACT_RELU);
    cr_assert_eq(vae_model_init(m, &c, be, B), 0);
    vae_model_set_scalar(m, VAE_SCALAR_LR, lr);
    vae_model_init_params(m, seed);
    tu_fill_uniform(m->x, (size_t)B * c.input_dim, seed + 1, 0.0f, 1.0f);
    tu_fill_uniform(m->noise[vae_model_gaussian(m)], (size_t)B * c.latent_dim, seed + 2, -1.5f, 1.5f);
}

Test(model, a_non_finite_loss_never_reaches_the_parameters)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model m;
    const int B = 4;
    const vae_adam_config adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    small_model_with_batch(&m, be, B, 61, adam.lr);
    vae_divergence d;
    vae_model_train_step(&m, B, &adam, 0.0f);
    vae_model_train_step(&m, B, &adam, 0.0f);
    cr_assert_eq(vae_model_read_divergence(&m, &d), 0, "two finite steps read as diverged");
    model_state good = state_of(&m);
    cr_assert_eq(good.step, 2);

    float keep = m.x[5];
    m.x[5] = NAN; /* one pixel: its image's loss and every gradient go NaN */
    vae_model_train_step(&m, B, &adam, 0.0f);
    cr_assert_eq(vae_model_read_divergence(&m, &d), 1);
    cr_expect_eq(d.quantity, VAE_DIVERGED_LOSS, "quantity %d", d.quantity);
    cr_expect_eq(d.step, 3, "the third step went bad, read as step %ld", d.step);
    cr_expect_str_eq(vae_diverged_quantity_name(d.quantity), "loss");
    cr_assert(state_equal(&m, &good), "the bad step changed the parameters, the moments or Adam's step");

    /* latched: a finite step after it is skipped as well, and the first step is still reported */
    m.x[5] = keep;
    vae_model_train_step(&m, B, &adam, 0.0f);
    cr_assert_eq(vae_model_read_divergence(&m, &d), 1);
    cr_expect_eq(d.step, 3);
    cr_assert(state_equal(&m, &good), "a step after the divergence was applied");

    /* cleared, training goes on from the last good state */
    vae_model_clear_divergence(&m);
    vae_model_train_step(&m, B, &adam, 0.0f);
    cr_assert_eq(vae_model_read_divergence(&m, &d), 0);
    cr_expect_eq(*m.adam_step, 3);
    cr_expect(memcmp(good.p, m.params, m.n_params * 4) != 0, "the step after clearing did nothing");
    for (size_t i = 0; i < m.n_params; i++)
        cr_assert(isfinite(m.params[i]), "parameter %zu is %g", i, (double)m.params[i]);
    state_free(&good);
    vae_model_free(&m);
    vae_backend_free(be);
}

Test(model, clipping_matches_a_hand_computed_norm)
{
    vae_backend *be = vae_backend_cpu_init();
    const int B = 5;
    const vae_adam_config adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    vae_model a, b, c;
    small_model_with_batch(&a, be, B, 71, adam.lr);
    small_model_with_batch(&b, be, B, 71, adam.lr);
    small_model_with_batch(&c, be, B, 71, adam.lr);

    /* b by hand: gradients, their norm in double, scaled on the host, plain Adam */
    memset(b.grads, 0, b.n_params * 4);
    vae_model_forward(&b, B, 1);
    vae_model_backward(&b, B);
    double ss = 0;
    for (size_t i = 0; i < b.n_params; i++)
        ss += (double)b.grads[i] * b.grads[i];
    const float max_norm = 0.1f;
    double coef = max_norm / (sqrt(ss) + 1e-6);
    cr_assert(coef < 1.0, "the gradient norm %g is below the clipping threshold: nothing is tested", sqrt(ss));
    const float scale = (float)coef;
    for (size_t i = 0; i < b.n_params; i++)
        b.grads[i] *= scale;
    be->adam_step(be, b.params, b.grads, b.adam_m, b.adam_v, b.n_params, &adam, &adam.lr, b.adam_step, NULL, NULL);

    vae_model_train_step(&a, B, &adam, max_norm);
    cr_expect_eq(*a.grad_scale, scale, "clipping factor %.9g, by hand %.9g", (double)*a.grad_scale, (double)scale);
    cr_expect(memcmp(a.params, b.params, a.n_params * 4) == 0, "clipped step differs from the hand computation");
    cr_expect(memcmp(a.adam_v, b.adam_v, a.n_params * 4) == 0);

    /* a threshold above the norm changes nothing, bit for bit */
    vae_model d;
    small_model_with_batch(&d, be, B, 71, adam.lr);
    vae_model_train_step(&c, B, &adam, 1e12f);
    vae_model_train_step(&d, B, &adam, 0.0f);
    cr_expect(memcmp(c.params, d.params, c.n_params * 4) == 0, "a clipping threshold above the norm changed the step");
    vae_model_free(&a);
    vae_model_free(&b);
    vae_model_free(&c);
    vae_model_free(&d);
    vae_backend_free(be);
}

/* ---- checkpoints ------------------------------------------------------------- */

static char ckpt_path[512];

static void save_small(vae_model *m, vae_backend *be)
{
    vae_config c = small_config(VAE_ACT_TANH);
    cr_assert_eq(vae_model_init(m, &c, be, 3), 0);
    vae_model_init_params(m, 99);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/model.safetensors", tu_tmpdir());
    vae_st_meta extra[] = {{"train.note", "round \"trip\" \xc3\xa9"}};
    cr_assert_eq(vae_checkpoint_save(m, ckpt_path, extra, 1), 0, "%s", vae_last_error());
}

Test(checkpoint, round_trip_is_bit_exact)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model a, b;
    save_small(&a, be);
    cr_assert_eq(vae_checkpoint_load(ckpt_path, be, 5, &b), 0, "%s", vae_last_error());
    cr_assert_eq(b.n_params, a.n_params);
    cr_assert(memcmp(a.params, b.params, a.n_params * 4) == 0, "parameters changed in the round trip");
    cr_assert_eq(b.cfg.latent_dim, 3);
    cr_assert_eq(b.cfg.n_hidden, 2);
    cr_assert_eq(b.cfg.hidden[1], 7);
    cr_assert_eq(b.cfg.act, VAE_ACT_TANH);
    cr_assert_float_eq(b.cfg.beta, 0.8f, 0);
    /* tensors are in PyTorch Linear layout under their documented names */
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(ckpt_path, &st), 0);
    const vae_st_tensor *w = vae_safetensors_find(&st, "encoder.logvar.weight");
    cr_assert_not_null(w);
    cr_assert_eq(w->ndim, 2);
    cr_assert_eq(w->shape[0], 3);
    cr_assert_eq(w->shape[1], 7);
    const vae_linear *head = &a.lin[a.latent[vae_model_gaussian(&a)].stats_layer];
    cr_assert(memcmp(w->data, a.params + head->w_off + 3 * 7, 3 * 7 * 4) == 0);
    cr_assert_not_null(vae_safetensors_find(&st, "decoder.out.bias"));
    cr_assert_str_eq(vae_safetensors_meta_get(&st, "train.note"), "round \"trip\" \xc3\xa9");
    vae_safetensors_free(&st);
    vae_model_free(&a);
    vae_model_free(&b);
    vae_backend_free(be);
}

/* A cvae's file says what it is (model, classes) and loads back as the same composition. */
Test(checkpoint, cvae_round_trip_keeps_the_kind_and_classes)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_config c = small_config(VAE_ACT_TANH);
    c.variant = vae_variant_find("cvae");
    c.classes = 7;
    vae_model a, b;
    cr_assert_eq(vae_model_init(&a, &c, be, 3), 0, "%s", vae_last_error());
    vae_model_init_params(&a, 5);
    char path[600];
    snprintf(path, sizeof path, "%s/cvae.safetensors", tu_tmpdir());
    cr_assert_eq(vae_checkpoint_save(&a, path, NULL, 0), 0, "%s", vae_last_error());
    cr_assert_eq(vae_checkpoint_load(path, be, 4, &b), 0, "%s", vae_last_error());
    cr_expect_str_eq(vae_variant_of(&b.cfg)->name, "cvae");
    cr_expect_eq(b.cfg.classes, 7);
    cr_assert_eq(b.n_params, a.n_params);
    cr_expect(memcmp(a.params, b.params, a.n_params * 4) == 0);
    cr_expect_not_null(b.y);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(path, &st), 0);
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "model"), "cvae");
    cr_expect_str_eq(vae_safetensors_meta_get(&st, "classes"), "7");
    cr_expect(strstr(vae_safetensors_meta_get(&st, "architecture"), "\"y\": 7") ||
                  strstr(vae_safetensors_meta_get(&st, "architecture"), "\"y\":7"),
              "%s", vae_safetensors_meta_get(&st, "architecture"));
    vae_safetensors_free(&st);
    /* a plain VAE's file has neither key (absent means vae) */
    vae_model_free(&a);
    vae_model_free(&b);
    save_small(&a, be);
    cr_assert_eq(vae_safetensors_read(ckpt_path, &st), 0);
    cr_expect_null(vae_safetensors_meta_get(&st, "model"));
    cr_expect_null(vae_safetensors_meta_get(&st, "classes"));
    vae_safetensors_free(&st);
    vae_model_free(&a);
    vae_backend_free(be);
}

Test(checkpoint, truncated_files_are_refused_with_a_message)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model a, b;
    save_small(&a, be);
    size_t n;
    unsigned char *bytes = tu_read_file(ckpt_path, &n);
    char bad[600];
    snprintf(bad, sizeof bad, "%s.cut", ckpt_path);
    size_t cuts[] = {0, 4, 8, 9, 100, n / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tu_write_file(bad, bytes, cuts[i]);
        cr_assert_eq(vae_checkpoint_load(bad, be, 2, &b), -1, "a file cut at %zu bytes loaded", cuts[i]);
        cr_assert(strstr(vae_last_error(), bad), "message does not name the file: %s", vae_last_error());
    }
    free(bytes);
    vae_model_free(&a);
    vae_backend_free(be);
}

Test(checkpoint, corrupted_or_foreign_files_are_refused)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model a, b;
    save_small(&a, be);
    size_t n;
    unsigned char *bytes = tu_read_file(ckpt_path, &n);
    char bad[600];
    snprintf(bad, sizeof bad, "%s.bad", ckpt_path);

    /* a flipped byte in the JSON header */
    unsigned char *c = malloc(n);
    memcpy(c, bytes, n);
    c[8 + 1] = '!';
    tu_write_file(bad, c, n);
    cr_assert_eq(vae_checkpoint_load(bad, be, 2, &b), -1);

    /* a header length pointing past the end */
    memcpy(c, bytes, n);
    c[5] = 0x7f;
    tu_write_file(bad, c, n);
    cr_assert_eq(vae_checkpoint_load(bad, be, 2, &b), -1);

    /* the config says latent 4 but the tensors are latent 3 */
    char *hdr = (char *)c + 8;
    memcpy(c, bytes, n);
    char *lat = memmem(hdr, n - 8, "\"latent_dim\":\"3\"", 16);
    cr_assert_not_null(lat, "latent_dim metadata not found in the header");
    lat[14] = '4';
    tu_write_file(bad, c, n);
    cr_assert_eq(vae_checkpoint_load(bad, be, 2, &b), -1);
    cr_assert(strstr(vae_last_error(), "tensor"), "%s", vae_last_error());

    /* a safetensors file that is not a cuvae model */
    vae_st_tensor_in t = {.name = "w", .ndim = 1, .shape = {2}, .data = (const float[]){1, 2}};
    cr_assert_eq(vae_safetensors_write(bad, &t, 1, NULL, 0), 0);
    cr_assert_eq(vae_checkpoint_load(bad, be, 2, &b), -1);
    cr_assert(strstr(vae_last_error(), "not a cuvae model"), "%s", vae_last_error());

    /* a missing file */
    cr_assert_eq(vae_checkpoint_load("/nonexistent/model.safetensors", be, 2, &b), -1);
    free(c);
    free(bytes);
    vae_model_free(&a);
    vae_backend_free(be);
}

Test(checkpoint, non_finite_parameters_are_never_saved_nor_loaded)
{
    vae_backend *be = vae_backend_cpu_init();
    vae_model a, b;
    save_small(&a, be);

    /* save: refused, naming the tensor, and no file appears */
    char path[600];
    snprintf(path, sizeof path, "%s.nan", ckpt_path);
    const vae_linear *out = &a.lin[a.n_linear - 1];
    a.params[out->b_off + 2] = NAN;
    cr_assert_eq(vae_checkpoint_save(&a, path, NULL, 0), -1, "a model holding NaN was saved");
    cr_expect(strstr(vae_last_error(), "decoder.out.bias") && strstr(vae_last_error(), "NaN at element 2"), "%s",
              vae_last_error());
    FILE *f = fopen(path, "rb");
    cr_expect_null(f, "a file was written for a model holding NaN");
    if (f)
        fclose(f);

    /* load: a file whose last float is +inf is refused, naming the file and the tensor */
    size_t n;
    unsigned char *bytes = tu_read_file(ckpt_path, &n);
    const float inf = INFINITY;
    memcpy(bytes + n - 4, &inf, 4);
    tu_write_file(path, bytes, n);
    cr_assert_eq(vae_checkpoint_load(path, be, 2, &b), -1, "a model holding inf loaded");
    cr_expect(strstr(vae_last_error(), path) && strstr(vae_last_error(), "tensor '") &&
                  strstr(vae_last_error(), "holds inf"),
              "%s", vae_last_error());
    free(bytes);
    vae_model_free(&a);
    vae_backend_free(be);
}

/* ---- a file is checked against itself before anything is allocated -------------- */

/* Metadata of a cuvae model with the given sizes, as vae_checkpoint_save writes it. */
static void write_meta_only(const char *path, const char *hidden, const char *latent,
                            const vae_st_tensor_in *t, int nt)
{
    const vae_st_meta meta[] = {
        {"format", "cuvae"},  {"format_version", "1"}, {"input_dim", "784"}, {"image_rows", "28"},
        {"image_cols", "28"}, {"latent_dim", latent},  {"hidden", hidden},   {"activation", "relu"},
        {"beta", "1"},        {"likelihood", "bernoulli"},
    };
    cr_assert_eq(vae_safetensors_write(path, t, nt, meta, 10), 0, "%s", vae_last_error());
}

/* The fuzz finding: a ~200-byte file with only metadata (hidden 65536, latent 4096)
 * made the loader allocate and zero about 14 GB before it looked at a tensor. */
Test(checkpoint, metadata_only_file_allocates_nothing)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend be = tu_counting_backend(cpu);
    char path[512];
    snprintf(path, sizeof path, "%s/meta-only.safetensors", tu_tmpdir());
    write_meta_only(path, "65536", "4096", NULL, 0);
    size_t n;
    free(tu_read_file(path, &n));
    cr_assert_lt(n, 400, "the crafted file should be tiny, is %zu bytes", n);
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(path, &be, 128, &m), -1);
    const char *msg = vae_last_error();
    cr_assert(strstr(msg, path), "message does not name the file: %s", msg);
    cr_assert(strstr(msg, "describes a model of 908206864 parameters in 10 tensors, but the file holds 0 tensors"),
              "%s", msg);
    cr_assert_eq(tu_alloc_bytes, 0, "the load allocated %zu bytes of model buffers", tu_alloc_bytes);
    vae_backend_free(cpu);
}

/* Tensors of a small model under metadata that describes a larger one; and a file
 * with one tensor too many. Refused, naming the mismatch, with nothing allocated. */
Test(checkpoint, tensors_must_match_the_metadata_before_allocation)
{
    vae_backend *cpu = vae_backend_cpu_init();
    vae_backend be = tu_counting_backend(cpu);
    vae_model small;
    save_small(&small, cpu);
    vae_safetensors st;
    cr_assert_eq(vae_safetensors_read(ckpt_path, &st), 0, "%s", vae_last_error());
    vae_st_tensor_in t[2 * VAE_MAX_LINEAR + 3];
    for (int i = 0; i < st.n_tensors; i++)
        t[i] = (vae_st_tensor_in){st.tensors[i].name, st.tensors[i].ndim,
                                  {st.tensors[i].shape[0], st.tensors[i].shape[1]}, st.tensors[i].data};
    char path[600];
    snprintf(path, sizeof path, "%s.big", ckpt_path);
    write_meta_only(path, "65536,65536", "4096", t, st.n_tensors);
    vae_model m;
    cr_assert_eq(vae_checkpoint_load(path, &be, 128, &m), -1);
    cr_assert(strstr(vae_last_error(), "describes a model of 9498272528 parameters in 14 tensors, but the file "
                                       "holds 14 tensors of 558 values"), "%s", vae_last_error());
    cr_assert_eq(tu_alloc_bytes, 0);

    /* the right tensors plus one more */
    float extra[2] = {0};
    t[st.n_tensors] = (vae_st_tensor_in){"extra", 1, {2}, extra};
    vae_st_meta meta[16];
    for (int i = 0; i < st.n_meta; i++)
        meta[i] = st.meta[i];
    snprintf(path, sizeof path, "%s.extra", ckpt_path);
    cr_assert_eq(vae_safetensors_write(path, t, st.n_tensors + 1, meta, st.n_meta), 0, "%s", vae_last_error());
    cr_assert_eq(vae_checkpoint_load(path, &be, 128, &m), -1);
    cr_assert(strstr(vae_last_error(), "but the file holds 15 tensors"), "%s", vae_last_error());
    cr_assert_eq(tu_alloc_bytes, 0);

    /* the right file loads through the counting backend */
    cr_assert_eq(vae_checkpoint_load(ckpt_path, &be, 2, &m), 0, "%s", vae_last_error());
    cr_assert_gt(tu_alloc_bytes, 4 * small.n_params * sizeof(float) - 1);
    vae_model_free(&m);
    vae_safetensors_free(&st);
    vae_model_free(&small);
    vae_backend_free(cpu);
}

/* image_rows * image_cols is computed in 64 bits: 65536 x 65537 wraps to 65536 in int. */
Test(model, image_shape_product_does_not_wrap)
{
    vae_config c;
    vae_config_default(&c);
    c.image_rows = 65536;
    c.image_cols = 65537;
    c.input_dim = 65536;
    cr_assert_eq(vae_config_validate(&c), -1, "a wrapped image shape was accepted");
    cr_assert(strstr(vae_last_error(), "65536x65537"), "%s", vae_last_error());
}

/* `info` with flags only counts from the layout: a 9.5-billion-parameter model is
 * described at once and within 4 GB of address space (it used to allocate 152 GB;
 * under 1 GB, OpenBLAS hangs at exit). */
Test(model, info_from_flags_allocates_nothing)
{
    char cmd[1024], out[8192];
#if defined(__SANITIZE_ADDRESS__)
    const char *limit = ""; /* AddressSanitizer reserves terabytes of address space */
#else
    const char *limit = "ulimit -v 4000000; ";
#endif
    snprintf(cmd, sizeof cmd, "%s%s info --hidden 65536,65536 --latent 4096", limit, CUVAE_BINARY);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "total parameters: 9498272528 "), "%s", out);
    cr_assert(strstr(out, "encoder.fc2      (65536, 65536)"), "%s", out);
}
