/*
 * architecture.h: a model's composition as JSON, the `architecture` metadata
 * of model.safetensors, from which another tool (scripts/cuvae_torch.py)
 * rebuilds the network without knowing cuvae's configurations:
 *
 *   {"inputs": {"x": D} or, for a model that reads the one-hot label, {"x": D, "y": classes},
 *    "layers": [{"name": ..., "in": [[source, width], ...], "out": N, "act": "relu" | "tanh" | "none",
 *                "tensors": [[part name, rows], ...]   (only for a layer saved in parts)}, ...],
 *    "latents": [{"name": "z", "kind": "gaussian" | "categorical" | "deterministic", "dim": Z,
 *                 "stats": layer name}],   (deterministic: z is the stats layer's output, width Z)
 *    "likelihood": {"kind": "bernoulli" | "gaussian", "layer": layer name},
 *    "terms": [{"name": ..., "op": "bernoulli" | "gaussian" | "kl_gaussian" | "kl_categorical",
 *               "latent": name (latent terms), "weight": w}, ...]}
 *
 * The names of "act", the kinds and "op" are those of the lists in backend.h (VAE_ACTS), config.h
 * (VAE_LIKELIHOODS) and model.h (VAE_LATENT_KINDS, VAE_TERM_OPS).
 *
 * A layer's input blocks are listed in column order; a source is an input
 * ("x", or "y" for the one-hot label), a latent's name, or an earlier layer's name. The per-example objective
 * is sum_t weight_t * term_t; the ELBO takes every weight as 1.
 *
 * Not here: reading it back (cuvae rebuilds a model from its configuration
 * keys; checkpoint.c) or the tensors themselves.
 */
#ifndef VAE_ARCHITECTURE_H
#define VAE_ARCHITECTURE_H

#include "model.h"

/* The JSON text of m's composition (compact, one line); vae_calloc'd, free with vae_free. */
char *vae_architecture_json(const vae_model *m);

#endif
