/* Robust statistics for repeated measurements (bench --sweep --repeat): the median, the
 * median absolute deviation, and a seeded percentile-bootstrap confidence interval of the
 * median, so that a speed comes with how sure we are of it. */
#ifndef SN_BENCH_STATS_H
#define SN_BENCH_STATS_H

#include <stdint.h>

/* x[0..n) in ascending order. */
void stats_sort(double *x, int n);
/* The median of x[0..n) (n >= 1; x is not changed). */
double stats_median(const double *x, int n);
/* The median of |x - median(x)|. */
double stats_mad(const double *x, int n);
/* The 95% percentile-bootstrap interval of the median: `resamples` resamples of n drawn
 * with replacement by the RNG seeded with seed; the 2.5th and 97.5th percentiles of their
 * medians. The same seed, the same interval. n == 1: [x0, x0]. */
void stats_median_ci(const double *x, int n, int resamples, uint64_t seed, double *lo, double *hi);
/* The two-sided Mann-Whitney U test of a (n) against b (m): exact (the U distribution by
 * the usual recurrence) when n, m <= 50 and no value is tied, else the normal
 * approximation with the tie correction and a continuity correction. */
double stats_mann_whitney_p(const double *a, int n, const double *b, int m);
/* The Hodges-Lehmann shift of b against a (the median of all b_j - a_i) and its ~95%
 * interval from the exact U distribution (Moses); n, m <= 50. */
void stats_hodges_lehmann(const double *a, int n, const double *b, int m, double *shift, double *lo, double *hi);
/* The values of x[0..n) whose noisy[i] is 0 into out, or all of them when none is (a
 * machine never quiet still reports); returns how many. */
int stats_quiet(const double *x, const int *noisy, int n, double *out);
/* Paired ratios a/b over the blocks both measured (rep_a[i] == rep_b[j]): from the blocks
 * quiet for both (noisy 0) when two or more were, else from every shared block; at most
 * cap into ratio; returns how many. */
int stats_paired_ratios(const double *a, const int *rep_a, const int *noisy_a, int na, const double *b,
                        const int *rep_b, const int *noisy_b, int nb, double *ratio, int cap);
/* A seeded permutation of 0..n-1 (Fisher-Yates). */
void stats_permutation(int *idx, int n, uint64_t seed);

#endif
