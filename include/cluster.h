/*
 * cluster.h: how well a model's categorical latent clusters labelled data: the
 * assignment argmax q(c|x) of every row, and two scores of an assignment against
 * the labels (both in [0, 1], 1 for a perfect clustering up to renaming):
 *
 *   nmi          normalized mutual information, I(c; y) / ((H(c) + H(y)) / 2)
 *                (the arithmetic-mean normalization, scikit-learn's default); 1 when both
 *                labelings have a single value, 0 when only one of them has
 *   cluster_acc  the best one-to-one mapping of clusters to labels (the Hungarian
 *                algorithm on the contingency table), the fraction of rows it maps right
 *
 * Not here: the model's forward pass (model.h) or the metrics file (the joint model's columns:
 * compose_joint.c).
 */
#ifndef VAE_CLUSTER_H
#define VAE_CLUSTER_H

#include "device_data.h"
#include "model.h"

/* argmax q(c|x) of every row of `data` in its order (identity for a test set) into cats (data->n).
 * The model must have a categorical latent (vae_model_categorical). */
void vae_cluster_assign(vae_model *m, vae_device_data *data, int *cats);

/* The scores of argmax q(c|x) of every row of `data` against the labels of `labelled`, the same
 * rows on the host: *nmi and *acc (vae_cluster_nmi, vae_cluster_accuracy), both NAN when
 * `labelled` has no labels. */
void vae_cluster_scores(vae_model *m, vae_device_data *data, const vae_dataset *labelled, double *nmi, double *acc);

/* NMI of two labelings of n rows, a[i] in 0..ka-1, b[i] in 0..kb-1. */
double vae_cluster_nmi(const int *a, int ka, const int *b, int kb, int n);
/* Accuracy of the best one-to-one mapping of the ka clusters of a to the kb labels of b
 * (clusters left unmapped when ka > kb count as wrong). */
double vae_cluster_accuracy(const int *a, int ka, const int *b, int kb, int n);

/* Largest assignment problem vae_cluster_max_assignment solves. */
#define VAE_CLUSTER_MAX_K 1024
/* The Hungarian algorithm: a permutation col_of_row (n) of 0..n-1 maximizing
 * sum_i w[i * n + col_of_row[i]] over an n x n matrix of weights w (n <= VAE_CLUSTER_MAX_K). */
void vae_cluster_max_assignment(const double *w, int n, int *col_of_row);

#endif
