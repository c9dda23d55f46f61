/*
 * compose_vae.c: the plain VAE (Kingma and Welling 2014), the registry's first variant (the
 * default, and the variant of a model file that names none):
 *
 *   encoder  x (B, D) -> [Linear + act] x n_hidden -> Linear "head" -> [mu | logvar] (B, 2Z),
 *            saved as encoder.mu and encoder.logvar
 *   sample   z = mu + eps * exp(logvar / 2),  eps ~ N(0, I)               z (B, Z)
 *   decoder  z -> [Linear + act] x n_hidden (mirrored sizes) -> Linear -> logits or mean (B, D)
 *   terms    recon = -log p(x|z) summed over pixels, kl = KL(q(z|x) || N(0, I)), weighted by beta.
 *
 * It has no settings, metadata, metrics or pictures beyond the common ones.
 */
#include "variant.h"

static int compose_vae(vae_model *m, const vae_config *cfg)
{
    const int D = cfg->input_dim, Z = cfg->latent_dim;
    vae_block src = vae_block_of(VAE_SOURCE_INPUT, 0, D);
    int n_src = 1;
    vae_model_add_mlp(m, "encoder", cfg, &src, &n_src, 0);
    int head = vae_model_add_gaussian_head(m, &src, n_src, Z);
    int z = vae_model_add_latent(m, "z", VAE_LATENT_GAUSSIAN, Z, head);
    src = vae_block_of(VAE_SOURCE_LATENT, z, Z);
    vae_model_add_mlp(m, "decoder", cfg, &src, &n_src, 1);
    vae_model_add_recon_term(m, vae_model_add_linear(m, "decoder.out", &src, n_src, D, VAE_ACT_NONE));
    vae_model_add_term(m, "kl", VAE_TERM_KL_GAUSSIAN, z, VAE_SCALAR_KL_WEIGHT, cfg->beta);
    return 0;
}

const vae_variant vae_variant_vae = {
    .name = "vae",
    .title = "VAE",
    .help = "the plain VAE\n",
    .compose = compose_vae,
};
