/*
 * config.h: what a model is made of, as a user configures it: the member of
 * the family, the sizes, the activation, the likelihood, the KL's weight and
 * the joint model's capacities, with their defaults, their validation and the
 * text of each setting (the flags' values and the model file's metadata).
 *
 * Not here: what each member of the family is (variant.h), how a configuration
 * becomes layers, latents and terms (model.h, vae_model_layout).
 */
#ifndef VAE_CONFIG_H
#define VAE_CONFIG_H

#include "backend.h"

#define VAE_MAX_HIDDEN 8

/* The likelihoods, listed once: X(ID, value, name). The enum (VAE_LIKELIHOOD_BERNOULLI = 0, ...)
 * and the names (config.c: vae_likelihood_name, vae_likelihood_parse) come from it. */
#define VAE_LIKELIHOODS(X)                                                                 \
    X(BERNOULLI, 0, "bernoulli") /* p(x|z) = Bernoulli(sigmoid(logits)), x in [0, 1] */ \
    X(GAUSSIAN, 1, "gaussian")   /* p(x|z) = N(mean, sigma^2 I), sigma fixed */

typedef enum {
#define VAE_LIKELIHOOD_ENUM(id, value, name) VAE_LIKELIHOOD_##id = value,
    VAE_LIKELIHOODS(VAE_LIKELIHOOD_ENUM)
#undef VAE_LIKELIHOOD_ENUM
} vae_likelihood;

/* Which halves of a model that reads the label read it, listed once: X(ID, value, name). The enum
 * (VAE_CONDITION_BOTH = 0, ...) and the names (config.c: vae_condition_name, vae_condition_parse)
 * come from it. */
#define VAE_CONDITIONS(X)                                                              \
    X(BOTH, 0, "both")       /* q(z|x, y) and p(x|z, y): the encoder and the decoder */ \
    X(DECODER, 1, "decoder") /* q(z|x) and p(x|z, y): the decoder alone */

typedef enum {
#define VAE_CONDITION_ENUM(id, value, name) VAE_CONDITION_##id = value,
    VAE_CONDITIONS(VAE_CONDITION_ENUM)
#undef VAE_CONDITION_ENUM
} vae_condition;

struct vae_variant; /* a member of the model family (variant.h) */

/* A controlled-capacity objective gamma * |KL - C| for one KL term (Burgess 2018), C rising
 * linearly from 0 to max over `iters` training steps; gamma 0: the plain KL term. */
typedef struct {
    float max;   /* C's final value in nats */
    int iters;   /* steps over which C rises */
    float gamma; /* the term's weight; 0: off */
} vae_capacity;

/* The Gumbel-softmax temperature of the joint model's training, unless --temperature says otherwise. */
#define VAE_TEMPERATURE_DEFAULT 0.67f

typedef struct {
    const struct vae_variant *variant; /* the member of the family, an entry of the registry (variant.h,
                                        * vae_variant_of); NULL: the registry's first, the plain VAE */
    int classes;                /* K: label classes of a model that reads a label (cvae; 2..256, labels are
                                 * bytes), 0 for one that does not */
    vae_condition condition;    /* which halves read the label (cvae); BOTH for every other model */
    int input_dim;              /* D: values per example (784 for MNIST) */
    int image_rows, image_cols; /* how D is drawn in grids (28 x 28); both 0: not an image, no pictures */
    int latent_dim;             /* Z */
    int n_hidden;               /* hidden layers in the encoder; the decoder mirrors them */
    int hidden[VAE_MAX_HIDDEN]; /* encoder widths from the input side */
    vae_act act;                /* activation of every hidden layer */
    float beta;                 /* weight of the KL term (1 = the plain VAE) */
    vae_likelihood likelihood;  /* the decoder's distribution */
    float sigma;                /* its standard deviation, for the Gaussian likelihood */
    int disc;                   /* joint: K, classes of the categorical latent */
    vae_capacity cap_z, cap_c;  /* joint: capacities of the Gaussian and the categorical KL (training only) */
} vae_config;

void vae_config_default(vae_config *c); /* the plain VAE 784-400-20-400-784, relu, beta 1, Bernoulli (sigma 1) */
/* The general settings, then those of the variant (vae_variant_validate); -1 with vae_set_error. */
int vae_config_validate(const vae_config *c);
int vae_config_parse_hidden(const char *s, vae_config *c);   /* "400" or "512,256" */
int vae_act_parse(const char *s, vae_act *out);               /* "relu" | "tanh" */
const char *vae_act_name(vae_act a);
int vae_likelihood_parse(const char *s, vae_likelihood *out); /* "bernoulli" | "gaussian" */
/* "MAX,ITERS,GAMMA" (MAX >= 0 nats, ITERS >= 1, GAMMA > 0) for `flag`; -1 with vae_set_error. */
int vae_capacity_parse(const char *flag, const char *s, vae_capacity *out);
const char *vae_likelihood_name(vae_likelihood l);
int vae_condition_parse(const char *s, vae_condition *out); /* "both" | "decoder"; -1 naming --condition */
const char *vae_condition_name(vae_condition c);

#endif /* VAE_CONFIG_H */
