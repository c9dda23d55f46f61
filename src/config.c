/*
 * config.c: a model's configuration: defaults, validation, and the parsing and
 * names of its settings; see config.h.
 */
#include "config.h"

#include "vae_util.h"
#include "variant.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    c->likelihood = VAE_LIKELIHOOD_BERNOULLI;
    c->sigma = 1.0f;
    c->variant = vae_variant_at(0);
    c->disc = 10;
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
    if (c->likelihood != VAE_LIKELIHOOD_BERNOULLI && c->likelihood != VAE_LIKELIHOOD_GAUSSIAN)
        return vae_set_error("likelihood must be bernoulli or gaussian");
    if (!(c->sigma > 0.0f) || !isfinite(c->sigma))
        return vae_set_error("--sigma %g must be a finite number > 0", (double)c->sigma);
    return vae_variant_validate(c);
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

/* The names of backend.h's VAE_ACTS and config.h's VAE_LIKELIHOODS, indexed by value. */
static const char *const act_names[] = {
#define ACT_NAME(id, value, name) [VAE_ACT_##id] = name,
    VAE_ACTS(ACT_NAME)
#undef ACT_NAME
};
static const char *const likelihood_names[] = {
#define LIKELIHOOD_NAME(id, value, name) [VAE_LIKELIHOOD_##id] = name,
    VAE_LIKELIHOODS(LIKELIHOOD_NAME)
#undef LIKELIHOOD_NAME
};

/* Any activation but none, which is the output layer's (the likelihood's logits or mean). */
int vae_act_parse(const char *s, vae_act *out)
{
    const int a = vae_name_find(act_names, VAE_NAMES_N(act_names), s);
    if (a < 0 || a == VAE_ACT_NONE)
        return vae_set_error("invalid activation '%s' (expected relu or tanh)", s);
    *out = (vae_act)a;
    return 0;
}

const char *vae_act_name(vae_act a) { return vae_name_of(act_names, VAE_NAMES_N(act_names), a); }

int vae_likelihood_parse(const char *s, vae_likelihood *out)
{
    const int l = vae_name_find(likelihood_names, VAE_NAMES_N(likelihood_names), s);
    if (l < 0)
        return vae_set_error("invalid likelihood '%s' (expected bernoulli or gaussian)", s);
    *out = (vae_likelihood)l;
    return 0;
}

const char *vae_likelihood_name(vae_likelihood l)
{
    return vae_name_of(likelihood_names, VAE_NAMES_N(likelihood_names), l);
}

/* The names of VAE_CONDITIONS, indexed by value. */
static const char *const condition_names[] = {
#define CONDITION_NAME(id, value, name) [VAE_CONDITION_##id] = name,
    VAE_CONDITIONS(CONDITION_NAME)
#undef CONDITION_NAME
};

int vae_condition_parse(const char *s, vae_condition *out)
{
    const int c = vae_name_find(condition_names, VAE_NAMES_N(condition_names), s);
    if (c < 0)
        return vae_set_error("invalid --condition '%s' (expected both or decoder)", s);
    *out = (vae_condition)c;
    return 0;
}

const char *vae_condition_name(vae_condition c)
{
    return vae_name_of(condition_names, VAE_NAMES_N(condition_names), c);
}

int vae_capacity_parse(const char *flag, const char *s, vae_capacity *out)
{
    char *end;
    errno = 0;
    double mx = strtod(s, &end);
    if (end == s || *end != ',' || errno || !(mx >= 0) || mx > 1e6)
        goto bad;
    const char *p = end + 1;
    long it = strtol(p, &end, 10);
    if (end == p || *end != ',' || errno || it < 1 || it > 100000000 || !isdigit((unsigned char)*p))
        goto bad;
    p = end + 1;
    double g = strtod(p, &end);
    if (end == p || *end != '\0' || errno || !(g > 0) || g > 1e6)
        goto bad;
    *out = (vae_capacity){.max = (float)mx, .iters = (int)it, .gamma = (float)g};
    return 0;
bad:
    return vae_set_error("%s '%s': expected MAX,ITERS,GAMMA (MAX >= 0 nats, ITERS >= 1 steps, GAMMA > 0), "
                         "like 5,25000,30", flag, s);
}

