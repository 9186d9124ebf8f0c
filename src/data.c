/* IDX reader (raw and gzip through zlib) and batch assembly.
 * Everything in a header is checked before it is trusted: magic, dimensions, the
 * product of the dimensions against overflow, and the payload size against the file. */
#include "scratchnet/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "kernels/kernels.h"

enum { IDX_IMAGES_MAGIC = 2051, IDX_LABELS_MAGIC = 2049 };

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads exactly `want` payload bytes after the header, growing the buffer as data
 * actually arrives (a header that lies about its count cannot force a huge
 * allocation), and refuses trailing bytes. */
static int read_payload(gzFile f, const char *path, uint64_t want, uint8_t **out, sn_error *err)
{
    size_t cap = want < (1u << 20) ? (size_t)want : (1u << 20), have = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return sn_fail(err, SN_ENOMEM, "%s: out of memory", path);
    while (have < want) {
        if (have == cap) {
            size_t ncap = cap * 2 > want ? (size_t)want : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) { free(buf); return sn_fail(err, SN_ENOMEM, "%s: out of memory", path); }
            buf = nb, cap = ncap;
        }
        size_t chunk = cap - have > (1u << 30) ? (1u << 30) : cap - have;
        int got = gzread(f, buf + have, (unsigned)chunk);
        if (got < 0) {
            int zerr;
            const char *zmsg = gzerror(f, &zerr);
            free(buf);
            return sn_fail(err, SN_EFORMAT, "%s: corrupt gzip stream (%s)", path, zmsg);
        }
        if (got == 0) {
            free(buf);
            return sn_fail(err, SN_EFORMAT,
                           "%s: truncated: header promises %llu payload bytes, file has %zu",
                           path, (unsigned long long)want, have);
        }
        have += (size_t)got;
    }
    unsigned char extra;
    int more = gzread(f, &extra, 1);
    if (more != 0) {
        free(buf);
        if (more < 0) return sn_fail(err, SN_EFORMAT, "%s: corrupt gzip stream after the payload", path);
        return sn_fail(err, SN_EFORMAT,
                       "%s: %llu payload bytes expected from the header, but the file is longer",
                       path, (unsigned long long)want);
    }
    *out = buf;
    return SN_OK;
}

/* Opens path (raw or gzip) and reads the magic plus `ndims` big-endian dimensions. */
static int open_idx(const char *path, uint32_t magic_want, int ndims, gzFile *out,
                    uint32_t *dims, sn_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return sn_fail(err, SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return sn_fail(err, SN_EIO, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return sn_fail(err, SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char hdr[16];
    size_t hlen = 4 + 4 * (size_t)ndims;
    int got = gzread(f, hdr, (unsigned)hlen);
    if (got < 0) {
        int zerr;
        sn_fail(err, SN_EFORMAT, "%s: corrupt gzip stream (%s)", path, gzerror(f, &zerr));
        gzclose(f);
        return SN_EFORMAT;
    }
    if (got != (int)hlen) {
        gzclose(f);
        return sn_fail(err, SN_EFORMAT, "%s: truncated: %zu-byte IDX header expected, found %d bytes",
                       path, hlen, got < 0 ? 0 : got);
    }
    uint32_t magic = be32(hdr);
    if (magic != magic_want) {
        gzclose(f);
        return sn_fail(err, SN_EFORMAT, "%s: wrong magic number: expected %u (IDX %s), found %u",
                       path, magic_want, magic_want == IDX_IMAGES_MAGIC ? "images" : "labels", magic);
    }
    for (int i = 0; i < ndims; i++) dims[i] = be32(hdr + 4 + 4 * i);
    *out = f;
    return SN_OK;
}

/* For raw files, compare header size to the file size up front (cheap, precise). */
static int check_raw_size(gzFile f, const char *path, uint64_t hdr_bytes, uint64_t payload, sn_error *err)
{
    if (!gzdirect(f)) return SN_OK;
    struct stat st;
    if (stat(path, &st) != 0) return sn_fail(err, SN_EIO, "%s: cannot stat: %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (size < hdr_bytes + payload)
        return sn_fail(err, SN_EFORMAT,
                       "%s: truncated: header promises %llu payload bytes, file has %llu",
                       path, (unsigned long long)payload,
                       (unsigned long long)(size - hdr_bytes));
    if (size > hdr_bytes + payload)
        return sn_fail(err, SN_EFORMAT,
                       "%s: %llu payload bytes expected from the header, but the file is longer (%llu)",
                       path, (unsigned long long)payload, (unsigned long long)(size - hdr_bytes));
    return SN_OK;
}

int sn_idx_read_images(const char *path, uint8_t **pixels, int *count, int *rows, int *cols,
                       sn_error *err)
{
    gzFile f;
    uint32_t d[3];
    int rc = open_idx(path, IDX_IMAGES_MAGIC, 3, &f, d, err);
    if (rc) return rc;
    if (d[0] > SN_IDX_MAX_COUNT || d[1] == 0 || d[2] == 0 || d[1] > 4096 || d[2] > 4096) {
        gzclose(f);
        return sn_fail(err, SN_EFORMAT,
                       "%s: implausible IDX header: %u images of %ux%u (expected at most %d images, "
                       "1..4096 pixels a side)", path, d[0], d[1], d[2], SN_IDX_MAX_COUNT);
    }
    uint64_t payload = (uint64_t)d[0] * d[1] * d[2]; /* <= 1e7 * 2^24: no overflow */
    uint8_t *buf = NULL;
    rc = check_raw_size(f, path, 16, payload, err);
    if (!rc) rc = read_payload(f, path, payload, &buf, err);
    gzclose(f);
    if (rc) return rc;
    *pixels = buf, *count = (int)d[0], *rows = (int)d[1], *cols = (int)d[2];
    return SN_OK;
}

int sn_idx_read_labels(const char *path, uint8_t **labels, int *count, sn_error *err)
{
    gzFile f;
    uint32_t d[1];
    int rc = open_idx(path, IDX_LABELS_MAGIC, 1, &f, d, err);
    if (rc) return rc;
    if (d[0] > SN_IDX_MAX_COUNT) {
        gzclose(f);
        return sn_fail(err, SN_EFORMAT, "%s: implausible IDX header: %u labels (at most %d)",
                       path, d[0], SN_IDX_MAX_COUNT);
    }
    uint8_t *buf = NULL;
    rc = check_raw_size(f, path, 8, d[0], err);
    if (!rc) rc = read_payload(f, path, d[0], &buf, err);
    gzclose(f);
    if (rc) return rc;
    for (uint32_t i = 0; i < d[0]; i++)
        if (buf[i] > 9) {
            int v = buf[i];
            free(buf);
            return sn_fail(err, SN_EFORMAT, "%s: label %u is %d, expected 0..9", path, i, v);
        }
    *labels = buf, *count = (int)d[0];
    return SN_OK;
}

void sn_dataset_free(sn_dataset *ds)
{
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

int sn_dataset_load(sn_dataset *ds, const char *images_path, const char *labels_path, sn_error *err)
{
    memset(ds, 0, sizeof *ds);
    int n_img, n_lab, rows, cols;
    int rc = sn_idx_read_images(images_path, &ds->images, &n_img, &rows, &cols, err);
    if (rc) return rc;
    if (rows != 28 || cols != 28) {
        sn_dataset_free(ds);
        return sn_fail(err, SN_EFORMAT, "%s: images are %dx%d, expected 28x28", images_path, rows, cols);
    }
    rc = sn_idx_read_labels(labels_path, &ds->labels, &n_lab, err);
    if (rc) { sn_dataset_free(ds); return rc; }
    if (n_img != n_lab) {
        sn_dataset_free(ds);
        return sn_fail(err, SN_EFORMAT, "%s has %d images but %s has %d labels", images_path,
                       n_img, labels_path, n_lab);
    }
    ds->count = n_img, ds->rows = rows, ds->cols = cols;
    return SN_OK;
}

static const char *const mnist_names[2][2] = {
    { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" },
    { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" },
};

int sn_mnist_path(const char *dir, sn_split split, int labels, char *out, size_t cap)
{
    const char *name = mnist_names[split == SN_SPLIT_TEST][labels != 0];
    struct stat st;
    if (!out || cap == 0) return SN_EINVAL;
    snprintf(out, cap, "%s/%s.gz", dir, name);
    int gz_ok = stat(out, &st) == 0;
    snprintf(out, cap, "%s/%s", dir, name);
    if (stat(out, &st) == 0) return SN_OK; /* raw preferred: faster to read */
    if (gz_ok) { snprintf(out, cap, "%s/%s.gz", dir, name); return SN_OK; }
    return SN_EIO;
}

int sn_mnist_present(const char *dir)
{
    char p[4096];
    for (int s = 0; s < 2; s++)
        for (int l = 0; l < 2; l++)
            if (sn_mnist_path(dir, (sn_split)s, l, p, sizeof p) != SN_OK) return 0;
    return 1;
}

int sn_mnist_load(sn_dataset *ds, const char *dir, sn_split split, sn_error *err)
{
    char img[4096], lab[4096];
    if (sn_mnist_path(dir, split, 0, img, sizeof img) != SN_OK)
        return sn_fail(err, SN_EIO, "%s: missing (nor is there a .gz copy)", img);
    if (sn_mnist_path(dir, split, 1, lab, sizeof lab) != SN_OK)
        return sn_fail(err, SN_EIO, "%s: missing (nor is there a .gz copy)", lab);
    return sn_dataset_load(ds, img, lab, err);
}

sn_dataset sn_dataset_slice(const sn_dataset *ds, int first, int count)
{
    sn_dataset v = *ds;
    size_t px = (size_t)ds->rows * ds->cols;
    v.images = ds->images + (size_t)first * px;
    v.labels = ds->labels + first;
    v.count = count;
    return v;
}

void sn_batch_gather_pixels(const sn_dataset *ds, const int *idx, int first, int n, int p0, int p1, float *out,
                            int ldo)
{
    const size_t px = (size_t)ds->rows * ds->cols;
    const sn_kernels *kr = sn_kernels_active();
    for (int b = 0; b < n; b++) {
        int r = idx ? idx[first + b] : first + b;
        kr->u8_to_f32(out + (size_t)b * ldo, ds->images + (size_t)r * px + p0, (long)(p1 - p0), 1.0f / 255.0f);
    }
}

void sn_batch_gather(const sn_dataset *ds, const int *idx, int first, int n, float *out, uint8_t *y)
{
    const size_t px = (size_t)ds->rows * ds->cols;
    const float scale = 1.0f / 255.0f;
    const sn_kernels *kr = sn_kernels_active();
    for (int b = 0; b < n; b++) {
        int r = idx ? idx[first + b] : first + b;
        const uint8_t *src = ds->images + (size_t)r * px;
        float *dst = out + (size_t)b * px;
        kr->u8_to_f32(dst, src, (long)px, scale);
        if (y) y[b] = ds->labels[r];
    }
}
