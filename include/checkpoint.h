/*
 * checkpoint.h: a model in safetensors: every parameter tensor in PyTorch's
 * Linear layout (weight (out, in), bias (out)) under the names listed in
 * model.h, float32, and the configuration as string metadata:
 *
 *   format "cuvae", format_version "1", input_dim, image_rows, image_cols,
 *   latent_dim, hidden ("400" or "512,256"), activation ("relu" | "tanh"),
 *   beta, likelihood ("bernoulli" | "gaussian"), sigma (Gaussian only),
 *   model (the variant's name, "cvae"; absent for the plain VAE) and the variant's own
 *   keys (variant.h: classes, the cvae's label classes; disc, the joint model's categories),
 *   architecture (the JSON of architecture.h: layers with their input blocks,
 *   latents, likelihood and loss terms, so another tool can rebuild the
 *   network), plus whatever the caller adds (training settings, data set,
 *   final losses). cuvae itself rebuilds a model from the configuration keys;
 *   files from before `architecture` existed load the same way.
 *
 * A file that is not such a model (wrong shapes, a missing tensor, missing or
 * bad metadata, corrupt or truncated bytes) is refused with one message.
 */
#ifndef VAE_CHECKPOINT_H
#define VAE_CHECKPOINT_H

#include "model.h"
#include "safetensors.h"

/* Metadata entries of a model file at most: 12 for the configuration and up to VAE_VARIANT_META_MAX
 * for its variant (variant.h), the rest the caller's. */
#define VAE_CHECKPOINT_META_MAX 64

/* Write the parameters of m (downloaded from its backend) and its config; extra
 * holds n_extra more metadata pairs. Atomic: a failure leaves no broken file. */
int vae_checkpoint_save(const vae_model *m, const char *path, const vae_st_meta *extra, int n_extra);

/* Read a model file: the config from its metadata, then a model on `be` for batches
 * up to batch_cap with the saved parameters. 0, or -1 with vae_set_error. */
int vae_checkpoint_load(const char *path, vae_backend *be, int batch_cap, vae_model *m);

/* For a variant's read_meta: metadata `key` of the file at path as a size (digits only, at most
 * 2^30) into *out: 0, or -1 with vae_set_error when it is missing or not such a number. */
int vae_checkpoint_meta_int(const vae_safetensors *st, const char *path, const char *key, int *out);
/* -1 with vae_set_error: metadata `key` of the file at path is not `need` ("a count of ..."). */
int vae_checkpoint_bad_meta(const vae_safetensors *st, const char *path, const char *key, const char *need);

#endif
