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
 * With --condition decoder (cfg->condition) only the decoder reads y: the encoder is the plain
 * VAE's, q(z|x), as the practicals' CVAE has it; the bound is still on -log p(x|y).
 * Its classes are the training data's (reads_labels: 1 + the largest training label, set by
 * `train` and `compare` before the model is built) and saved as the metadata key "classes";
 * the condition as "condition" ("both" or "decoder"; absent in files before it: both).
 * Not here: where y comes from (device_data.h gathers it with x, vae_model_set_labels
 * uploads it), checking the labels against the classes (dataset.h).
 */
#include "checkpoint.h"
#include "variant.h"

#include <stdio.h>

static int compose_cvae(vae_model *m, const vae_config *cfg)
{
    const int D = cfg->input_dim, Z = cfg->latent_dim, K = cfg->classes;
    const vae_block y = vae_block_of(VAE_SOURCE_LABEL, 0, K);
    vae_block src[2] = {vae_block_of(VAE_SOURCE_INPUT, 0, D), y};
    int n_src = cfg->condition == VAE_CONDITION_DECODER ? 1 : 2; /* the encoder reads [x | y] or x */
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

static void save_meta(const vae_config *c, vae_variant_meta *meta)
{
    vae_variant_meta_int(meta, "classes", c->classes);
    vae_variant_meta_text(meta, "condition", vae_condition_name(c->condition));
}

static int read_meta(const vae_safetensors *st, const char *path, vae_config *c)
{
    if (vae_checkpoint_meta_int(st, path, "classes", &c->classes))
        return -1;
    const char *cond = vae_safetensors_meta_get(st, "condition");
    c->condition = VAE_CONDITION_BOTH; /* a file written before the setting: both halves read y */
    if (cond && vae_condition_parse(cond, &c->condition))
        return vae_checkpoint_bad_meta(st, path, "condition", "both or decoder");
    return 0;
}

static void summary(const vae_config *c, FILE *f)
{
    fprintf(f, "  conditioned: %s\n",
            c->condition == VAE_CONDITION_DECODER ? "the decoder alone reads y (q(z|x), p(x|z, y))"
                                                  : "the encoder and the decoder read y (q(z|x, y), p(x|z, y))");
}

const vae_variant vae_variant_cvae = {
    .name = "cvae",
    .title = "CVAE",
    .help = "the conditional VAE: its encoder and decoder also read the\n"
            "one-hot label (classes: 1 + the largest training label; its\n"
            "test loss bounds -log p(x|y)); --condition decoder: the\n"
            "decoder alone\n",
    .reads_labels = 1,
    .compose = compose_cvae,
    .save_meta = save_meta,
    .read_meta = read_meta,
    .summary = summary,
    .samples_caption = "Samples: one row per class y, each column one z ~ N(0, I) decoded with every y, so a "
                       "column shows one style across the classes",
};
