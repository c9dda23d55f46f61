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
    const int D = cfg->input_dim, Z = cfg->latent_dim, K = cfg->disc;
    vae_block src = vae_block_of(VAE_SOURCE_INPUT, 0, D);
    int n_src = 1;
    vae_model_add_mlp(m, "encoder", cfg, &src, &n_src, 0);
    int head = vae_model_add_gaussian_head(m, &src, 1, Z);
    int alpha = vae_model_add_linear(m, "encoder.alpha", &src, 1, K, VAE_ACT_NONE);
    int z = vae_model_add_latent(m, "z", VAE_LATENT_GAUSSIAN, Z, head);
    int c = vae_model_add_latent(m, "c", VAE_LATENT_CATEGORICAL, K, alpha);
    /* the first decoder layer reads both latents: two input blocks of one weight */
    vae_block dec[2] = {vae_block_of(VAE_SOURCE_LATENT, z, Z), vae_block_of(VAE_SOURCE_LATENT, c, K)};
    int n_dec = 2;
    vae_model_add_mlp(m, "decoder", cfg, dec, &n_dec, 1);
    vae_model_add_recon_term(m, vae_model_add_linear(m, "decoder.out", dec, n_dec, D, VAE_ACT_NONE));
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
