/* Robust statistics for repeated measurements (stats.h). */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "scratchnet/rng.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
