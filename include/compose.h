/*
 * compose.h: the compositions of the model family beyond the plain VAE, one
 * function per variant in its own file (src/compose_<variant>.c), called by
 * vae_model_layout for its vae_model_kind after vae_model_compose_begin. Each
 * builds its model from the composing calls of model.h and nothing else; the
 * forward and backward passes never branch on the kind.
 */
#ifndef VAE_COMPOSE_H
#define VAE_COMPOSE_H

#include "model.h"

/* The conditional VAE (src/compose_cvae.c); 0. */
int vae_compose_cvae(vae_model *m, const vae_config *cfg);
/* The joint continuous + discrete VAE (src/compose_joint.c); 0. */
int vae_compose_joint(vae_model *m, const vae_config *cfg);

#endif /* VAE_COMPOSE_H */
