/* Small helpers every layer of the library may use; depends on nothing of its own.
 * Internal to the library. */
#ifndef SN_UTIL_H
#define SN_UTIL_H

#include <stddef.h>

/* Monotonic seconds (util.c; declared in scratchnet/train.h for the programs too). */
double sn_now(void);

/* x rounded up to a multiple of `to` (> 0). */
static inline size_t sn_round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

/* Floats rounded up to a 64-byte multiple: buffers carved from one block stay aligned. */
static inline size_t sn_align_floats(size_t n)
{
    return sn_round_up(n, 16);
}

#endif
