/*
 * compose_ae.c: the deterministic autoencoder, the plain VAE's encoder and decoder without
 * the noise and the KL (the baseline whose latent scatter the Theano VAE practical compares
 * with the VAE's):
 *
 *   encoder  x (B, D) -> [Linear + act] x n_hidden -> Linear "encoder.z" -> z (B, Z)
 *   code     z itself (a deterministic latent: no noise, no prior, no op runs for it)
 *   decoder  z -> [Linear + act] x n_hidden (mirrored sizes) -> Linear -> logits or mean (B, D)
 *   terms    recon = -log p(x|z) summed over pixels, the only one.
 *
 * Its objective is the reconstruction alone: not a bound on -log p(x). It has no prior, so
 * what is drawn from one (samples.png, `sample`, the manifold of the prior's quantiles, the
 * per-digit posterior samples, eval's importance-weighted estimate) is refused or skipped with
 * the reason (vae_model_has_prior); what reads the code (reconstructions, the latent scatter,
 * traversals, interpolation, encode) reads z. --beta weighs a KL it does not have: refused.
 *
 * Not here: how a deterministic latent runs (model.c).
 */
#include "variant.h"

#include "vae_util.h"

static int compose_ae(vae_model *m, const vae_config *cfg)
{
    const int D = cfg->input_dim, Z = cfg->latent_dim;
    vae_block src = vae_block_of(VAE_SOURCE_INPUT, 0, D);
    int n_src = 1;
    vae_model_add_mlp(m, "encoder", cfg, &src, &n_src, 0);
    int code = vae_model_add_linear(m, "encoder.z", &src, n_src, Z, VAE_ACT_NONE);
    int z = vae_model_add_latent(m, "z", VAE_LATENT_DETERMINISTIC, Z, code);
    src = vae_block_of(VAE_SOURCE_LATENT, z, Z);
    vae_model_add_mlp(m, "decoder", cfg, &src, &n_src, 1);
    vae_model_add_recon_term(m, vae_model_add_linear(m, "decoder.out", &src, n_src, D, VAE_ACT_NONE));
    return 0;
}

static int validate(const vae_config *c)
{
    if (c->beta != 1.0f)
        return vae_set_error("--beta %g: the ae has no KL term to weigh (its loss is the reconstruction alone)",
                             (double)c->beta);
    return 0;
}

const vae_variant vae_variant_ae = {
    .name = "ae",
    .title = "AE",
    .help = "the deterministic autoencoder: the same encoder and\n"
            "decoder, z the encoder's output, no noise, no KL, no prior\n"
            "(no samples or manifold; its loss is the reconstruction)\n",
    .compose = compose_ae,
    .validate = validate,
};
