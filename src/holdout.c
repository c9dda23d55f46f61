/*
 * holdout.c: the seeded validation split; see holdout.h.
 */
#include "holdout.h"

#include "hostrng.h"
#include "vae_util.h"

#include <math.h>

#define SEED_HOLDOUT 0x686f6c646f7574ull /* "holdout" */

int vae_holdout_split(const vae_dataset *all, double fraction, uint64_t seed, vae_dataset *train,
                      vae_dataset *val)
{
    /* F arrives as a float (0.7f is 0.69999999): a hair of slack keeps floor(0.7 * 10) at 7 */
    int n_val = (int)floor(fraction * all->n + 1e-6);
    if (n_val < 1 || n_val >= all->n)
        return vae_set_error("--val-fraction %g of %d training images leaves %d for validation and %d for "
                             "training; both must be at least 1",
                             fraction, all->n, n_val, all->n - n_val);
    int32_t *idx = vae_calloc((size_t)all->n, sizeof *idx);
    uint8_t *held = vae_calloc((size_t)all->n, 1);
    for (int i = 0; i < all->n; i++)
        idx[i] = i;
    vae_hostrng r;
    vae_hostrng_seed(&r, seed ^ SEED_HOLDOUT);
    vae_hostrng_shuffle(&r, idx, (size_t)all->n);
    for (int i = 0; i < n_val; i++)
        held[idx[i]] = 1;
    /* each part's rows in their original order: the kept ones first, then the held-out ones */
    int it = 0, iv = all->n - n_val;
    for (int i = 0; i < all->n; i++)
        idx[held[i] ? iv++ : it++] = i;
    vae_dataset_subset(all, idx, all->n - n_val, train);
    vae_dataset_subset(all, idx + (all->n - n_val), n_val, val);
    vae_free(idx);
    vae_free(held);
    return 0;
}
