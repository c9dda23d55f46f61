/*
 * compose_joint.c: the joint continuous and discrete VAE (Dupont 2018, "Learning
 * Disentangled Joint Continuous and Discrete Representations"), as a composition:
 *
 *   encoder  x (B, D) -> [Linear + act] x n_hidden -> h
 *            h -> Linear "encoder.head" -> [mu | logvar] (B, 2Z)    saved as encoder.mu, encoder.logvar
 *            h -> Linear "encoder.alpha" -> alpha (B, K)            logits of q(c|x)
 *   latents  z = mu + eps * exp(logvar / 2)                         (B, Z), eps ~ N(0, I)
 *            c = gumbel_softmax(alpha, u, tau) in training,         (B, K), u ~ U(0, 1]
 *                one-hot argmax alpha without gradients
 *   decoder  [z | c] -> [Linear + act] x n_hidden (mirrored) -> Linear -> logits or mean (B, D)
 *   terms    recon, kl_z = KL(q(z|x) || N(0, I)), kl_c = log K - H(q(c|x)); each KL either
 *            weighted by beta (the plain objective) or, with cfg->cap_*, a controlled-capacity
 *            term gamma |KL - C| (Burgess 2018) whose C the trainer raises step by step.
 *
 * Not here: the schedules of tau and C (schedule.h, train.c), the exact expectation over c of
 * the test bound (model.c, vae_model_forward_eval), clustering metrics (cluster.h).
 */
#include "compose.h"

#include <stdio.h>

int vae_compose_joint(vae_model *m, const vae_config *cfg)
{
    vae_model_compose_begin(m, cfg);
    const int D = cfg->input_dim, Z = cfg->latent_dim, K = cfg->disc;
    vae_block src = vae_block_of(VAE_SOURCE_INPUT, 0, D);
    int n_src = 1;
    vae_model_add_mlp(m, "encoder", cfg, &src, &n_src, 0);
    int head = vae_model_add_linear(m, "encoder.head", &src, 1, 2 * Z, VAE_ACT_NONE);
    static const char *const parts[2] = {"encoder.mu", "encoder.logvar"};
    vae_model_save_in_parts(m, head, parts, (const int[2]){Z, Z}, 2);
    int alpha = vae_model_add_linear(m, "encoder.alpha", &src, 1, K, VAE_ACT_NONE);
    int z = vae_model_add_latent(m, "z", VAE_LATENT_GAUSSIAN, Z, head);
    int c = vae_model_add_latent(m, "c", VAE_LATENT_CATEGORICAL, K, alpha);
    vae_block dec[2] = {vae_block_of(VAE_SOURCE_LATENT, z, Z), vae_block_of(VAE_SOURCE_LATENT, c, K)};
    if (cfg->n_hidden > 0) {
        /* the first decoder layer reads both latents: two input blocks of one weight */
        int l = vae_model_add_linear(m, "decoder.fc1", dec, 2, cfg->hidden[cfg->n_hidden - 1], cfg->act);
        src = vae_block_of(VAE_SOURCE_LAYER, l, cfg->hidden[cfg->n_hidden - 1]);
        for (int i = cfg->n_hidden - 2; i >= 0; i--) { /* the rest mirrored, named from fc2 */
            char name[32];
            snprintf(name, sizeof name, "decoder.fc%d", cfg->n_hidden - i);
            l = vae_model_add_linear(m, name, &src, 1, cfg->hidden[i], cfg->act);
            src = vae_block_of(VAE_SOURCE_LAYER, l, cfg->hidden[i]);
        }
    }
    int out = cfg->n_hidden > 0 ? vae_model_add_linear(m, "decoder.out", &src, 1, D, VAE_ACT_NONE)
                                : vae_model_add_linear(m, "decoder.out", dec, 2, D, VAE_ACT_NONE);
    vae_model_add_term(m, "recon",
                       cfg->likelihood == VAE_LIKELIHOOD_GAUSSIAN ? VAE_TERM_LIK_GAUSSIAN : VAE_TERM_LIK_BERNOULLI,
                       out, -1, 1.0f);
    if (cfg->cap_z.gamma > 0) {
        vae_model_add_term(m, "kl_z", VAE_TERM_KL_GAUSSIAN, z, VAE_SCALAR_CAP_WEIGHT_Z, 1.0f);
        vae_model_term_capacity(m, VAE_SCALAR_CAPACITY_Z, cfg->cap_z.gamma);
    } else {
        vae_model_add_term(m, "kl_z", VAE_TERM_KL_GAUSSIAN, z, VAE_SCALAR_KL_WEIGHT, cfg->beta);
    }
    if (cfg->cap_c.gamma > 0) {
        vae_model_add_term(m, "kl_c", VAE_TERM_KL_CATEGORICAL, c, VAE_SCALAR_CAP_WEIGHT_C, 1.0f);
        vae_model_term_capacity(m, VAE_SCALAR_CAPACITY_C, cfg->cap_c.gamma);
    } else {
        vae_model_add_term(m, "kl_c", VAE_TERM_KL_CATEGORICAL, c, VAE_SCALAR_KL_WEIGHT, cfg->beta);
    }
    return 0;
}
