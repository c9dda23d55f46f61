/*
 * test_cluster.c: the clustering scores of cluster.h against hand-computed cases (NMI,
 * Hungarian-matched accuracy) and the assignment solver against brute force.
 */
#include "cluster.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>

Test(cluster, identical_or_renamed_partitions_score_one)
{
    const int a[] = {0, 0, 1, 1, 2, 2}, same[] = {0, 0, 1, 1, 2, 2}, renamed[] = {2, 2, 0, 0, 1, 1};
    cr_assert_float_eq(vae_cluster_nmi(a, 3, same, 3, 6), 1.0, 1e-12);
    cr_assert_float_eq(vae_cluster_nmi(a, 3, renamed, 3, 6), 1.0, 1e-12);
    cr_assert_float_eq(vae_cluster_accuracy(a, 3, renamed, 3, 6), 1.0, 1e-12);
}

Test(cluster, independent_partitions_score_zero_nmi)
{
    const int a[] = {0, 1, 0, 1}, b[] = {0, 0, 1, 1};
    cr_assert_float_eq(vae_cluster_nmi(a, 2, b, 2, 4), 0.0, 1e-12);
    cr_assert_float_eq(vae_cluster_accuracy(a, 2, b, 2, 4), 0.5, 1e-12);
    const int one[] = {0, 0, 0, 0}; /* a single cluster against two labels */
    cr_assert_float_eq(vae_cluster_nmi(one, 1, b, 2, 4), 0.0, 1e-12);
}

/* a = 0,0,0,1 against b = 0,0,1,1, by hand: p(a) = (3/4, 1/4), p(b) = (1/2, 1/2),
 * I = 1/2 log(4/3) + 1/4 log(2/3) + 1/4 log 2, H(a) = -(3/4 log 3/4 + 1/4 log 1/4), H(b) = log 2. */
Test(cluster, a_hand_computed_case)
{
    const int a[] = {0, 0, 0, 1}, b[] = {0, 0, 1, 1};
    const double mi = 0.5 * log(4.0 / 3) + 0.25 * log(2.0 / 3) + 0.25 * log(2.0);
    const double ha = -(0.75 * log(0.75) + 0.25 * log(0.25)), hb = log(2.0);
    cr_assert_float_eq(vae_cluster_nmi(a, 2, b, 2, 4), mi / ((ha + hb) / 2), 1e-12);
    cr_assert_float_eq(vae_cluster_nmi(a, 2, b, 2, 4), 0.34371, 1e-5);
    cr_assert_float_eq(vae_cluster_accuracy(a, 2, b, 2, 4), 0.75, 1e-12);
}

/* Greedy matching takes cluster 0 -> label 0 (3 rows) and loses: the best one-to-one
 * mapping is 0 -> 1, 1 -> 0, 2 -> 2, with 2 + 3 + 1 of 9 rows right. */
Test(cluster, accuracy_is_the_best_one_to_one_mapping_not_the_greedy_one)
{
    /* contingency rows (clusters) x columns (labels): [[3,2,0],[3,0,0],[0,0,1]] */
    const int a[] = {0, 0, 0, 0, 0, 1, 1, 1, 2}, b[] = {0, 0, 0, 1, 1, 0, 0, 0, 2};
    cr_assert_float_eq(vae_cluster_accuracy(a, 3, b, 3, 9), 6.0 / 9, 1e-12);
    /* more clusters than labels: the unmatched cluster's rows count as wrong */
    const int a4[] = {0, 1, 2, 3}, b2[] = {0, 0, 1, 1};
    cr_assert_float_eq(vae_cluster_accuracy(a4, 4, b2, 2, 4), 0.5, 1e-12);
}

static double best_by_brute_force(const double *w, int n, int *perm, int k)
{
    if (k == n) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += w[i * n + perm[i]];
        return s;
    }
    double best = -INFINITY;
    for (int j = k; j < n; j++) {
        int t = perm[k];
        perm[k] = perm[j], perm[j] = t;
        best = fmax(best, best_by_brute_force(w, n, perm, k + 1));
        t = perm[k];
        perm[k] = perm[j], perm[j] = t;
    }
    return best;
}

Test(cluster, assignment_matches_brute_force)
{
    for (int n = 1; n <= 7; n++)
        for (int rep = 0; rep < 5; rep++) {
            float wf[49];
            double w[49];
            tu_fill_uniform(wf, (size_t)n * n, 100 * n + rep, 0, 10);
            for (int i = 0; i < n * n; i++)
                w[i] = rep % 2 ? (int)wf[i] : wf[i]; /* integer weights: ties */
            int col[7], perm[7], seen[7] = {0};
            vae_cluster_max_assignment(w, n, col);
            double got = 0;
            for (int i = 0; i < n; i++) {
                cr_assert(col[i] >= 0 && col[i] < n && !seen[col[i]], "n=%d: not a permutation", n);
                seen[col[i]] = 1;
                got += w[i * n + col[i]];
                perm[i] = i;
            }
            double want = best_by_brute_force(w, n, perm, 0);
            cr_assert_float_eq(got, want, 1e-9, "n=%d rep %d: %.9g against the best %.9g", n, rep, got, want);
        }
}
