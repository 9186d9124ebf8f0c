/* Small helpers every layer of the library may use; depends on nothing of its own.
 * Internal to the library. */
#ifndef SN_UTIL_H
#define SN_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* A growable byte buffer for files built in memory (model files, exports). A failed
 * allocation sets oom and later puts do nothing: check it once, at the end. */
typedef struct sn_bytes {
    unsigned char *p;
    size_t len, cap;
    int oom;
} sn_bytes;

void sn_bytes_put(sn_bytes *b, const void *src, size_t n);
void sn_bytes_put_le(sn_bytes *b, uint64_t v, int nbytes); /* v's low nbytes, little-endian */
void sn_bytes_put_f32s(sn_bytes *b, const float *f, size_t n); /* little-endian IEEE floats */
void sn_bytes_free(sn_bytes *b);                            /* and zeroes it */

#endif
