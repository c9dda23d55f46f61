/*
 * architecture.c: a model's layers, latents, likelihood and terms as the JSON
 * of the `architecture` metadata; see architecture.h.
 */
#include "architecture.h"

#include "vae_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *checked(json_t *v)
{
    if (!v)
        vae_fatal("jansson: out of memory building the architecture metadata");
    return v;
}

static void put(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, checked(v)))
        vae_fatal("jansson: cannot set '%s' in the architecture metadata", key);
}

static void append(json_t *arr, json_t *v)
{
    if (json_array_append_new(arr, checked(v)))
        vae_fatal("jansson: cannot append to the architecture metadata");
}

static const char *source_name(const vae_model *m, const vae_block *b)
{
    switch (b->kind) {
    case VAE_SOURCE_INPUT: return "x";
    case VAE_SOURCE_LATENT: return m->latent[b->index].name;
    case VAE_SOURCE_LAYER: return m->lin[b->index].name;
    case VAE_SOURCE_LABEL: return "y";
    }
    return "?";
}

/* The names of model.h's VAE_TERM_OPS and VAE_LATENT_KINDS, indexed by value. */
static const char *const term_op_names[] = {
#define TERM_OP_NAME(id, value, name) [VAE_TERM_##id] = name,
    VAE_TERM_OPS(TERM_OP_NAME)
#undef TERM_OP_NAME
};
static const char *const latent_kind_names[] = {
#define LATENT_KIND_NAME(id, value, name) [VAE_LATENT_##id] = name,
    VAE_LATENT_KINDS(LATENT_KIND_NAME)
#undef LATENT_KIND_NAME
};

static const char *term_op_name(vae_term_op op)
{
    return vae_name_of(term_op_names, VAE_NAMES_N(term_op_names), op);
}

static const char *latent_kind_name(vae_latent_kind k)
{
    return vae_name_of(latent_kind_names, VAE_NAMES_N(latent_kind_names), k);
}

static json_t *pair(const char *name, int n)
{
    json_t *p = checked(json_array());
    append(p, json_string(name));
    append(p, json_integer(n));
    return p;
}

static json_t *layer_json(const vae_model *m, const vae_linear *L)
{
    json_t *o = checked(json_object()), *in = checked(json_array());
    put(o, "name", json_string(L->name));
    for (int k = 0; k < L->n_blocks; k++)
        append(in, pair(source_name(m, &L->block[k]), L->block[k].width));
    put(o, "in", in);
    put(o, "out", json_integer(L->out));
    put(o, "act", json_string(vae_act_name(L->act)));
    if (L->n_parts) {
        json_t *parts = checked(json_array());
        for (int p = 0; p < L->n_parts; p++)
            append(parts, pair(L->part[p].name, L->part[p].rows));
        put(o, "tensors", parts);
    }
    return o;
}

char *vae_architecture_json(const vae_model *m)
{
    json_t *root = checked(json_object()), *inputs = checked(json_object());
    put(inputs, "x", json_integer(m->cfg.input_dim));
    if (vae_model_reads_label(m))
        put(inputs, "y", json_integer(m->cfg.classes)); /* the one-hot label */
    put(root, "inputs", inputs);

    json_t *layers = checked(json_array());
    for (int l = 0; l < m->n_linear; l++)
        append(layers, layer_json(m, &m->lin[l]));
    put(root, "layers", layers);

    json_t *latents = checked(json_array());
    for (int k = 0; k < m->n_latents; k++) {
        const vae_latent *lt = &m->latent[k];
        json_t *o = checked(json_object());
        put(o, "name", json_string(lt->name));
        put(o, "kind", json_string(latent_kind_name(lt->kind)));
        put(o, "dim", json_integer(lt->dim));
        put(o, "stats", json_string(m->lin[lt->stats_layer].name));
        append(latents, o);
    }
    put(root, "latents", latents);

    json_t *lik = checked(json_object());
    put(lik, "kind", json_string(vae_likelihood_name(m->cfg.likelihood)));
    put(lik, "layer", json_string(m->lin[m->output].name));
    put(root, "likelihood", lik);

    json_t *terms = checked(json_array());
    for (int t = 0; t < m->n_terms; t++) {
        const vae_loss_term *term = &m->term[t];
        json_t *o = checked(json_object());
        put(o, "name", json_string(term->name));
        put(o, "op", json_string(term_op_name(term->op)));
        if (term->latent >= 0)
            put(o, "latent", json_string(m->latent[term->latent].name));
        put(o, "weight", json_real(term->weight));
        append(terms, o);
    }
    put(root, "terms", terms);

    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text)
        vae_fatal("jansson: cannot print the architecture metadata");
    char *out = vae_calloc(strlen(text) + 1, 1);
    memcpy(out, text, strlen(text) + 1);
    free(text);
    return out;
}
