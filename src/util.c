#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double sn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sn_bytes_put(sn_bytes *b, const void *src, size_t n)
{
    if (b->oom || !n) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void sn_bytes_put_le(sn_bytes *b, uint64_t v, int nbytes)
{
    unsigned char d[8];
    for (int i = 0; i < nbytes; i++) d[i] = (unsigned char)(v >> (8 * i));
    sn_bytes_put(b, d, (size_t)nbytes);
}

void sn_bytes_put_f32s(sn_bytes *b, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        sn_bytes_put_le(b, u, 4);
    }
}

void sn_bytes_free(sn_bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
