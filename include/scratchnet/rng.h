/* scratchnet — the project's own seeded RNG (xoshiro256** seeded by splitmix64), so a
 * run is reproducible from --seed on every platform and libc. */
#ifndef SCRATCHNET_RNG_H
#define SCRATCHNET_RNG_H

#include <stdint.h>

typedef struct sn_rng {
    uint64_t s[4];
} sn_rng;

void sn_rng_seed(sn_rng *r, uint64_t seed);
uint64_t sn_rng_next(sn_rng *r);
uint32_t sn_rng_below(sn_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
double sn_rng_uniform(sn_rng *r);             /* uniform in [0, 1) with 53 random bits */
double sn_rng_normal(sn_rng *r);              /* standard normal (Box-Muller, no caching) */
void sn_shuffle(sn_rng *r, int *idx, int n);  /* Fisher-Yates */

#endif
