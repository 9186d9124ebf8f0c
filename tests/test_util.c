#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

const char *tu_tmpdir(void)
{
    static char dirs[8][256];
    static int next;
    char *d = dirs[next++ % 8];
    const char *base = getenv("TMPDIR");
    snprintf(d, 256, "%s/sntest.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(d)) abort();
    return d;
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[8][512];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) abort();
    fclose(f);
}

void tu_write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, data, (unsigned)len) != (int)len) abort();
    gzclose(f);
}

unsigned char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void slurp(const char *path, char *buf, size_t cap)
{
    if (!buf || !cap) return;
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

int tu_run(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap)
{
    const char *d = tu_tmpdir();
    char full[8192], o[512], e[512];
    snprintf(o, sizeof o, "%s/stdout", d);
    snprintf(e, sizeof e, "%s/stderr", d);
    snprintf(full, sizeof full, "%s >%s 2>%s </dev/null", cmd, o, e);
    int st = system(full);
    slurp(o, out, out_cap);
    slurp(e, err, err_cap);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_fill(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) * 0x1.0p-52 - 1.0);
    }
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

unsigned char *tu_idx_images(int count, int rows, int cols, size_t *len)
{
    *len = 16 + (size_t)count * rows * cols;
    unsigned char *b = malloc(*len);
    be32(b, 2051), be32(b + 4, (uint32_t)count), be32(b + 8, (uint32_t)rows), be32(b + 12, (uint32_t)cols);
    for (size_t i = 16; i < *len; i++) b[i] = (unsigned char)(i * 7);
    return b;
}

unsigned char *tu_idx_labels(int count, size_t *len)
{
    *len = 8 + (size_t)count;
    unsigned char *b = malloc(*len);
    be32(b, 2049), be32(b + 4, (uint32_t)count);
    for (int i = 0; i < count; i++) b[8 + i] = (unsigned char)(i % 10);
    return b;
}
