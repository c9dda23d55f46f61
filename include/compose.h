/*
 * compose.h: the compositions of the model family besides the plain VAE (model.c), one
 * function per variant in its own file, each called by vae_model_layout for its
 * vae_model_kind with a validated configuration. Each returns 0 (its layout in m).
 */
#ifndef VAE_COMPOSE_H
#define VAE_COMPOSE_H

#include "model.h"

int vae_compose_joint(vae_model *m, const vae_config *cfg); /* compose_joint.c: --model joint */

#endif
