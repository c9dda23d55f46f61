/*
 * compose_cvae.c: the conditional VAE (Sohn et al. 2015, in its common MLP form),
 * the plain VAE with the one-hot label y (B, K) joining the inputs of both halves:
 *
 *   encoder  [x | y] (B, D + K) -> [Linear + act] x n_hidden -> Linear "head" -> [mu | logvar] (B, 2Z)
 *   sample   z = mu + eps * exp(logvar / 2)
 *   decoder  [z | y] (B, Z + K) -> [Linear + act] x n_hidden (mirrored) -> Linear -> logits or mean (B, D)
 *   terms    recon = -log p(x|z, y), kl = KL(q(z|x, y) || N(0, I)); their sum bounds -log p(x|y).
 *
 * Each first layer is one Linear over two input blocks, saved as one weight (out, D + K)
 * or (out, Z + K): PyTorch's Linear applied to torch.cat([x, y]) or torch.cat([z, y]).
 * Not here: where y comes from (device_data.h gathers it with x, vae_model_set_labels
 * uploads it), checking the labels against the classes (dataset.h).
 */
#include "compose.h"

int vae_compose_cvae(vae_model *m, const vae_config *cfg)
{
    const int D = cfg->input_dim, Z = cfg->latent_dim, K = cfg->classes;
    const vae_block y = vae_block_of(VAE_SOURCE_LABEL, 0, K);
    vae_block src[2] = {vae_block_of(VAE_SOURCE_INPUT, 0, D), y};
    int n_src = 2;
    vae_model_add_mlp(m, "encoder", cfg, src, &n_src, 0);
    int head = vae_model_add_gaussian_head(m, src, n_src, Z);
    int z = vae_model_add_latent(m, "z", VAE_LATENT_GAUSSIAN, Z, head);
    src[0] = vae_block_of(VAE_SOURCE_LATENT, z, Z);
    src[1] = y;
    n_src = 2;
    vae_model_add_mlp(m, "decoder", cfg, src, &n_src, 1);
    vae_model_add_recon_term(m, vae_model_add_linear(m, "decoder.out", src, n_src, D, VAE_ACT_NONE));
    vae_model_add_term(m, "kl", VAE_TERM_KL_GAUSSIAN, z, VAE_SCALAR_KL_WEIGHT, cfg->beta);
    return 0;
}
