/* Robust statistics for repeated measurements (stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/rng.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void stats_sort(double *x, int n)
{
    qsort(x, (size_t)n, sizeof(double), cmp_double);
}

/* The median of a sorted array. */
static double sorted_median(const double *s, int n)
{
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

double stats_median(const double *x, int n)
{
    double small[64], *s = n <= 64 ? small : malloc(sizeof(double) * (size_t)n);
    if (!s) return x[0];
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    const double m = sorted_median(s, n);
    if (s != small) free(s);
    return m;
}

double stats_mad(const double *x, int n)
{
    const double m = stats_median(x, n);
    double small[64], *d = n <= 64 ? small : malloc(sizeof(double) * (size_t)n);
    if (!d) return 0;
    for (int i = 0; i < n; i++) d[i] = x[i] > m ? x[i] - m : m - x[i];
    const double mad = stats_median(d, n);
    if (d != small) free(d);
    return mad;
}

void stats_median_ci(const double *x, int n, int resamples, uint64_t seed, double *lo, double *hi)
{
    *lo = *hi = x[0];
    if (n < 2 || resamples < 2) return;
    double *meds = malloc(sizeof(double) * (size_t)resamples), *draw = malloc(sizeof(double) * (size_t)n);
    if (!meds || !draw) {
        free(meds), free(draw);
        return;
    }
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    for (int r = 0; r < resamples; r++) {
        for (int i = 0; i < n; i++) draw[i] = x[sn_rng_below(&rng, (uint32_t)n)];
        qsort(draw, (size_t)n, sizeof(double), cmp_double);
        meds[r] = sorted_median(draw, n);
    }
    qsort(meds, (size_t)resamples, sizeof(double), cmp_double);
    *lo = meds[(int)(0.025 * (resamples - 1) + 0.5)];
    *hi = meds[(int)(0.975 * (resamples - 1) + 0.5)];
    free(meds), free(draw);
}

void stats_permutation(int *idx, int n, uint64_t seed)
{
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) idx[i] = i;
    sn_shuffle(&rng, idx, n);
}

/* counts[u] = the number of orderings of n a's and m b's with U = u (U counts pairs with
 * a before b), u = 0..n m; into a caller's array of n m + 1 doubles. */
static void u_counts(int n, int m, double *counts)
{
    /* f[i][j][u] over i <= n, j <= m by f(i, j, u) = f(i - 1, j, u - j) + f(i, j - 1, u). */
    const int max = n * m;
    double *prev = calloc((size_t)(m + 1) * (size_t)(max + 1), sizeof(double));
    double *cur = calloc((size_t)(m + 1) * (size_t)(max + 1), sizeof(double));
    if (!prev || !cur) {
        free(prev), free(cur);
        for (int u = 0; u <= max; u++) counts[u] = 1;
        return;
    }
    for (int j = 0; j <= m; j++) prev[(size_t)j * (max + 1)] = 1; /* i = 0: one ordering, U = 0 */
    for (int i = 1; i <= n; i++) {
        memset(cur, 0, sizeof(double) * (size_t)(m + 1) * (size_t)(max + 1));
        for (int j = 0; j <= m; j++)
            for (int u = 0; u <= i * j; u++) {
                double v = j > 0 ? cur[(size_t)(j - 1) * (max + 1) + u] : 0;
                if (u >= j) v += prev[(size_t)j * (max + 1) + u - j];
                cur[(size_t)j * (max + 1) + u] = v;
            }
        double *t = prev;
        prev = cur, cur = t;
    }
    memcpy(counts, prev + (size_t)m * (max + 1), sizeof(double) * (size_t)(max + 1));
    free(prev), free(cur);
}

double stats_mann_whitney_p(const double *a, int n, const double *b, int m)
{
    /* U: pairs (i, j) with a_i > b_j, ties counting a half. */
    double u = 0;
    int ties = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            if (a[i] > b[j]) u += 1;
            else if (a[i] == b[j]) u += 0.5, ties = 1;
        }
    if (!ties && n <= 50 && m <= 50) {
        double *c = malloc(sizeof(double) * (size_t)(n * m + 1)), total = 0, below = 0, above = 0;
        if (c) {
            u_counts(n, m, c);
            for (int k = 0; k <= n * m; k++) {
                total += c[k];
                if (k <= u) below += c[k];
                if (k >= u) above += c[k];
            }
            free(c);
            const double p = 2 * fmin(below, above) / total;
            return p > 1 ? 1 : p;
        }
    }
    /* Normal approximation: mean n m / 2, variance with the tie correction. */
    const int N = n + m;
    double *all = malloc(sizeof(double) * (size_t)N), tie_term = 0;
    if (all) {
        memcpy(all, a, sizeof(double) * (size_t)n), memcpy(all + n, b, sizeof(double) * (size_t)m);
        qsort(all, (size_t)N, sizeof(double), cmp_double);
        for (int i = 0; i < N;) {
            int j = i;
            while (j < N && all[j] == all[i]) j++;
            const double t = j - i;
            tie_term += t * t * t - t;
            i = j;
        }
        free(all);
    }
    const double mean = n * m / 2.0, var = n * m / 12.0 * ((N + 1) - tie_term / ((double)N * (N - 1)));
    if (!(var > 0)) return 1.0;
    const double z = (fabs(u - mean) - 0.5) / sqrt(var);
    const double p = erfc((z > 0 ? z : 0) / sqrt(2.0));
    return p > 1 ? 1 : p;
}

void stats_hodges_lehmann(const double *a, int n, const double *b, int m, double *shift, double *lo, double *hi)
{
    const int nm = n * m;
    double *d = malloc(sizeof(double) * (size_t)nm), *c = malloc(sizeof(double) * (size_t)(nm + 1));
    *shift = *lo = *hi = 0;
    if (!d || !c || nm < 1) {
        free(d), free(c);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) d[i * m + j] = b[j] - a[i];
    qsort(d, (size_t)nm, sizeof(double), cmp_double);
    *shift = sorted_median(d, nm);
    /* Moses: the interval runs from the k-th smallest difference to the k-th largest,
     * k the largest with P(U < k) <= 0.025 under the exact distribution (at least 1). */
    u_counts(n, m, c);
    double total = 0, cum = 0;
    for (int u = 0; u <= nm; u++) total += c[u];
    int k = 1;
    for (int u = 0; u < nm; u++) {
        cum += c[u];
        if (cum / total <= 0.025) k = u + 2;
        else break;
    }
    if (k > nm) k = nm;
    *lo = d[k - 1], *hi = d[nm - k];
    free(d), free(c);
}

int stats_quiet(const double *x, const int *noisy, int n, double *out)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!noisy[i]) out[m++] = x[i];
    if (m) return m;
    for (int i = 0; i < n; i++) out[i] = x[i];
    return n;
}

int stats_paired_ratios(const double *a, const int *rep_a, const int *noisy_a, int na, const double *b,
                        const int *rep_b, const int *noisy_b, int nb, double *ratio, int cap)
{
    int n = 0;
    for (int pass = 0; pass < 2 && n < 2; pass++) {
        n = 0;
        for (int x = 0; x < na; x++)
            for (int y = 0; y < nb; y++)
                if (rep_a[x] == rep_b[y] && n < cap && (pass || (!noisy_a[x] && !noisy_b[y])))
                    ratio[n++] = a[x] / b[y];
    }
    return n;
}
