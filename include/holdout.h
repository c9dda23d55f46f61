/*
 * holdout.h: the validation split of `train --val-fraction F`: floor(F * n)
 * images of the training set, chosen by a seeded shuffle, are held out; the
 * rest, in their original order, are trained on. The same seed and fraction
 * always choose the same images. Not here: evaluation (train.h).
 */
#ifndef VAE_HOLDOUT_H
#define VAE_HOLDOUT_H

#include "dataset.h"

#include <stdint.h>

/* Split `all` into train and val (new arrays; `all` is untouched); val gets floor(fraction * n)
 * images. 0, or -1 with vae_set_error when either part would be empty. */
int vae_holdout_split(const vae_dataset *all, double fraction, uint64_t seed, vae_dataset *train,
                      vae_dataset *val);

#endif
