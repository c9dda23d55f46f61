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
 * Its own settings: --disc K (2..1024, saved as the metadata key "disc") and the capacities;
 * its training defaults are the paper's MNIST specification. Its metrics columns after each
 * epoch are the capacities of the step and how well argmax q(c|x) clusters the labelled test
 * set (nmi, cluster_acc); its own picture, categories.png, decodes each class of c.
 *
 * Not here: the schedules of tau and C (schedule.h, train.c), the exact expectation over c of
 * the test bound (model.c, vae_model_forward_eval), the clustering scores (cluster.h).
 */
#include "checkpoint.h"
#include "cluster.h"
#include "render.h"
#include "vae_util.h"
#include "variant.h"

#include <math.h>
#include <string.h>

/* Below this test kl_c (nats) the code is unused; below this NMI a code near log K means nothing. */
#define VAE_JOINT_UNUSED_KL 0.05
#define VAE_JOINT_COLLAPSED_NMI 0.05
#include <stdio.h>

static int compose_joint(vae_model *m, const vae_config *cfg)
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

static int validate(const vae_config *c)
{
    if (c->disc < 2 || c->disc > 1024)
        return vae_set_error("--disc %d out of range (2..1024 classes)", c->disc);
    return 0;
}

static void save_meta(const vae_config *c, vae_variant_meta *meta)
{
    vae_variant_meta_int(meta, "disc", c->disc);
}

static int read_meta(const vae_safetensors *st, const char *path, vae_config *c)
{
    if (vae_checkpoint_meta_int(st, path, "disc", &c->disc))
        return -1;
    if (c->disc < 2 || c->disc > 1024)
        return vae_checkpoint_bad_meta(st, path, "disc", "a count of categories in 2..1024");
    return 0;
}

static void summary(const vae_config *c, FILE *f)
{
    fprintf(f, "  joint model: categorical latent of %d classes (Gumbel-softmax); objective %s\n", c->disc,
            c->cap_z.gamma > 0 || c->cap_c.gamma > 0 ? "recon + gamma |KL - C| per latent (controlled capacity)"
                                                     : "recon + KL_z + KL_c");
    /* KL(q(c|x) || uniform) is at most log K: the trainer caps C_c there (train.c), said here once */
    const double log_k = log((double)c->disc);
    if (c->cap_c.gamma > 0 && c->cap_c.max > log_k) {
        const long at = (long)ceil(log_k / c->cap_c.max * c->cap_c.iters) + 1; /* C_c of step s (0-based) is MAX s / ITERS */
        fprintf(f, "  note: --capacity-c MAX %g is more than log K = log %d = %.4f nats, the most KL_c can be: "
                   "C_c stops at %.4f from step %ld (of its %d steps to %g); capacity_c in metrics.csv shows it\n",
                (double)c->cap_c.max, c->disc, log_k, log_k, at, c->cap_c.iters, (double)c->cap_c.max);
    }
}

static void describe(const vae_config *c, const vae_schedule *schedule, FILE *f)
{
    fprintf(f, ", a categorical latent of %d classes, temperature %g", c->disc,
            (double)(schedule->temperature > 0.0f ? schedule->temperature : VAE_TEMPERATURE_DEFAULT));
    if (schedule->temperature_end > 0.0f)
        fprintf(f, " to %g", (double)schedule->temperature_end);
    const vae_capacity *cap[2] = {&c->cap_z, &c->cap_c};
    for (int i = 0; i < 2; i++)
        if (cap[i]->gamma > 0.0f)
            fprintf(f, ", capacity-%s %g,%d,%g", i ? "c" : "z", (double)cap[i]->max, cap[i]->iters,
                    (double)cap[i]->gamma);
}

/* The step's capacities, then the test set's clustering by argmax q(c|x) (NAN for an unlabelled set). */
static void metrics_extras(vae_model *m, const vae_trainer *t, vae_device_data *test_dev, const vae_dataset *test,
                           vae_metrics_extra *x)
{
    vae_metrics_extra_add(x, "capacity_z", t ? vae_trainer_scalar_now(t, VAE_SCALAR_CAPACITY_Z) : NAN);
    vae_metrics_extra_add(x, "capacity_c", t ? vae_trainer_scalar_now(t, VAE_SCALAR_CAPACITY_C) : NAN);
    double nmi = NAN, acc = NAN;
    if (test)
        vae_cluster_scores(m, test_dev, test, &nmi, &acc);
    vae_metrics_extra_add(x, "nmi", nmi);
    vae_metrics_extra_add(x, "cluster_acc", acc);
}

/* The final numbers of a discrete code that carries nothing: unused (kl_c near 0, q(c|x) near uniform)
 * or used without meaning (kl_c near log K, every image confidently assigned, but the classes
 * tell the labels apart no better than chance: NMI near 0). */
static void advise(const vae_model *m, const vae_losses *test, const vae_metrics_extra *x, FILE *f)
{
    const int c = vae_model_categorical(m);
    double kl_c = NAN, nmi = NAN, log_k = log((double)m->latent[c].dim);
    for (int t = 0; t < m->n_terms; t++)
        if (m->term[t].latent == c && !vae_term_is_likelihood(m->term[t].op))
            kl_c = test->term[t];
    for (int k = 0; k < x->n; k++)
        if (!strcmp(x->name[k], "nmi"))
            nmi = x->value[k];
    if (!isfinite(kl_c))
        return;
    char scores[64] = "";
    if (isfinite(nmi))
        snprintf(scores, sizeof scores, ", NMI with the test labels %.3f", nmi);
    if (kl_c < VAE_JOINT_UNUSED_KL)
        fprintf(f,
                "cuvae train: warning: the categorical code is unused (test kl_c %.4f nats of at most log K = %.3f%s): "
                "q(c|x) stays near uniform and the Gaussian latent carries everything. Train with a discrete "
                "capacity, --capacity-c MAX,ITERS,GAMMA (docs/models.md, \"Scaling the iterations\").\n",
                kl_c, log_k, scores);
    else if (kl_c > 0.9 * log_k && isfinite(nmi) && nmi < VAE_JOINT_COLLAPSED_NMI)
        fprintf(f,
                "cuvae train: warning: the categorical code is used but means nothing (test kl_c %.4f nats, near "
                "log K = %.3f%s): each image is assigned confidently, but the classes do not follow the labels. "
                "Raise the capacity more slowly (a larger ITERS in --capacity-c) or lower its GAMMA.\n",
                kl_c, log_k, scores);
}

static int pictures(vae_model *m, const char *dir, uint64_t seed, int scale)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/categories.png", dir);
    return vae_render_categories(m, path, 10, seed, scale, VAE_RENDER_MEANS);
}

/* The paper's MNIST specification. */
static const vae_variant_defaults defaults = {
    .n_hidden = 2, .hidden = {512, 256}, .latent_dim = 10, .batch_size = 64, .lr = 5e-4f};

const vae_variant vae_variant_joint = {
    .name = "joint",
    .title = "VAE",
    .help = "also a categorical latent (Dupont 2018); defaults --hidden\n"
            "512,256 --latent 10 --batch-size 64 --lr 5e-4\n",
    .flags_help = "  --disc K            joint: classes of the categorical latent (default 10)\n",
    .capacities = 1,
    .defaults = &defaults,
    .compose = compose_joint,
    .validate = validate,
    .save_meta = save_meta,
    .read_meta = read_meta,
    .summary = summary,
    .describe = describe,
    .metrics_extras = metrics_extras,
    .advise = advise,
    .pictures = pictures,
    .picture_files = "categories.png",
    .picture_caption = "Categories: one row per class k of the categorical latent, each column one z ~ N(0, I) "
                       "decoded with c = k in every row, so a column shows what the class changes",
    .samples_caption = "Samples: images decoded from z ~ N(0, I) with the categorical code cycling through its "
                       "classes (image i has class i mod K)",
};
