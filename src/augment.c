/* The training-time image pipeline (augment.h): deskewing a dataset, and augmentation
 * of each (epoch, image) from its own seeded draws. */
#include "scratchnet/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/image.h"
#include "scratchnet/rng.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const struct {
    const char *name;
    float max;
} KINDS[SN_AUG_KINDS] = {
    [SN_AUG_ROT] = { "rot", 45.0f },     [SN_AUG_SCALE] = { "scale", 0.5f }, [SN_AUG_SHEAR] = { "shear", 1.0f },
    [SN_AUG_SHIFT] = { "shift", 8.0f },  [SN_AUG_THICK] = { "thick", 1.0f },
};

const char *sn_aug_kind_name(sn_aug_kind k) { return KINDS[k].name; }
float sn_aug_kind_max(sn_aug_kind k) { return KINDS[k].max; }

int sn_augment_active(const sn_augment *a)
{
    for (int k = 0; k < SN_AUG_KINDS; k++)
        if (a->range[k] > 0 && a->prob[k] > 0) return 1;
    return 0;
}

int sn_augment_parse(const char *spec, sn_augment *a, sn_error *err)
{
    memset(a, 0, sizeof *a);
    if (!strcmp(spec, "none")) return SN_OK;
    char buf[256];
    if (strlen(spec) >= sizeof buf || !*spec)
        return sn_fail(err, SN_EINVAL, "augmentation '%s': expected none or KEY=RANGE[@PROB],...", spec);
    strcpy(buf, spec);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        int k = 0;
        if (eq) *eq = '\0';
        while (k < SN_AUG_KINDS && strcmp(item, KINDS[k].name)) k++;
        if (!eq || k == SN_AUG_KINDS)
            return sn_fail(err, SN_EINVAL, "augmentation item '%s': expected KEY=RANGE[@PROB] with KEY one of "
                                           "rot, scale, shear, shift, thick", item);
        char *end;
        const double range = strtod(eq + 1, &end);
        double prob = 1.0;
        if (*end == '@') prob = strtod(end + 1, &end);
        if (*end || eq[1] == '\0' || !(range >= 0 && range <= KINDS[k].max) || !(prob >= 0 && prob <= 1))
            return sn_fail(err, SN_EINVAL, "augmentation item '%s=%s': expected a range 0..%g and an optional "
                                           "@probability 0..1", item, eq + 1, KINDS[k].max);
        a->range[k] = (float)range, a->prob[k] = (float)prob;
    }
    return SN_OK;
}

void sn_augment_format(const sn_augment *a, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < SN_AUG_KINDS; k++) {
        if (!(a->range[k] > 0 && a->prob[k] > 0)) continue;
        int n = a->prob[k] < 1 ? snprintf(out + len, cap - len, "%s%s=%g@%g", len ? "," : "", KINDS[k].name,
                                          a->range[k], a->prob[k])
                               : snprintf(out + len, cap - len, "%s%s=%g", len ? "," : "", KINDS[k].name, a->range[k]);
        if (n < 0 || (size_t)n >= cap - len) break;
        len += (size_t)n;
    }
    if (!len) snprintf(out, cap, "none");
}

enum { MAX_SIDE = 64 };

/* One plus-shaped grey dilation (grow = 1: max of the pixel and its 4 neighbours) or
 * erosion (min), zero outside, blended in by t in [0, 1]. */
static void thicken(float *px, int rows, int cols, int grow, float t)
{
    float tmp[MAX_SIDE * MAX_SIDE];
    memcpy(tmp, px, sizeof(float) * (size_t)rows * cols);
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            const float *c = tmp + y * cols + x;
            const float l = x > 0 ? c[-1] : 0.0f, r = x + 1 < cols ? c[1] : 0.0f;
            const float u = y > 0 ? c[-cols] : 0.0f, d = y + 1 < rows ? c[cols] : 0.0f;
            float m = *c;
            if (grow) m = fmaxf(fmaxf(fmaxf(m, l), fmaxf(r, u)), d);
            else m = fminf(fminf(fminf(m, l), fminf(r, u)), d);
            px[y * cols + x] = *c + t * (m - *c);
        }
}

/* dst = src warped by the inverse map q = A p + o (p an output pixel's centre, q where
 * it samples, pixel centres at +0.5), bilinear, zero outside. src is padded by one ring
 * of zeros so every sample's four taps are in bounds or wholly outside. */
static void warp(const float *src, float *dst, int rows, int cols, const double A[4], const double o[2])
{
    enum { P = MAX_SIDE + 2 };
    float pad[P * P];
    const int pw = cols + 2;
    memset(pad, 0, sizeof(float) * (size_t)(rows + 2) * pw);
    for (int y = 0; y < rows; y++) memcpy(pad + (y + 1) * pw + 1, src + y * cols, sizeof(float) * (size_t)cols);
    for (int y = 0; y < rows; y++) {
        /* Along a row the sample point moves by (A[0], A[2]) per pixel. */
        double qx = A[0] * 0.5 + A[1] * (y + 0.5) + o[0] - 0.5, qy = A[2] * 0.5 + A[3] * (y + 0.5) + o[1] - 0.5;
        for (int x = 0; x < cols; x++, qx += A[0], qy += A[2]) {
            const int x0 = (int)floor(qx), y0 = (int)floor(qy);
            float v = 0.0f;
            if (x0 >= -1 && x0 < cols && y0 >= -1 && y0 < rows) {
                const float fx = (float)(qx - x0), fy = (float)(qy - y0);
                const float *p = pad + (y0 + 1) * pw + x0 + 1;
                const float top = p[0] + fx * (p[1] - p[0]), bottom = p[pw] + fx * (p[pw + 1] - p[pw]);
                v = top + fy * (bottom - top);
            }
            dst[y * cols + x] = v;
        }
    }
}

void sn_augment_image(const sn_augment *a, uint64_t seed, int epoch, int row, const uint8_t *src, uint8_t *dst,
                      int rows, int cols)
{
    /* Every kind draws its coin and its value whether it is on or not, so turning one
     * kind on or off leaves the others' draws unchanged. */
    sn_rng rng;
    sn_rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)) ^ (0xc2b2ae3d27d4eb4full * (uint64_t)(row + 1)));
    double v[SN_AUG_KINDS + 1];
    int on[SN_AUG_KINDS];
    for (int k = 0; k < SN_AUG_KINDS; k++) {
        const double coin = sn_rng_uniform(&rng);
        v[k] = (2.0 * sn_rng_uniform(&rng) - 1.0) * a->range[k];
        on[k] = a->range[k] > 0 && coin < a->prob[k];
    }
    v[SN_AUG_KINDS] = (2.0 * sn_rng_uniform(&rng) - 1.0) * a->range[SN_AUG_SHIFT]; /* the shift's y */
    const int geometric = on[SN_AUG_ROT] || on[SN_AUG_SCALE] || on[SN_AUG_SHEAR] || on[SN_AUG_SHIFT];
    if (!geometric && !on[SN_AUG_THICK]) {
        memcpy(dst, src, (size_t)rows * cols);
        return;
    }
    float img[MAX_SIDE * MAX_SIDE], out[MAX_SIDE * MAX_SIDE];
    const int n = rows * cols;
    for (int i = 0; i < n; i++) img[i] = src[i] * (1.0f / 255.0f);
    float *cur = img;
    if (geometric) {
        /* Forward map M = rotation * zoom * shear about the centre, then the shift; the
         * warp samples through its inverse. */
        const double th = on[SN_AUG_ROT] ? v[SN_AUG_ROT] * (M_PI / 180.0) : 0.0;
        const double s = on[SN_AUG_SCALE] ? 1.0 + v[SN_AUG_SCALE] : 1.0;
        const double k = on[SN_AUG_SHEAR] ? v[SN_AUG_SHEAR] : 0.0;
        const double tx = on[SN_AUG_SHIFT] ? v[SN_AUG_SHIFT] : 0.0, ty = on[SN_AUG_SHIFT] ? v[SN_AUG_KINDS] : 0.0;
        const double c = cos(th), sn = sin(th);
        const double M[4] = { s * c, s * (c * k - sn), s * sn, s * (sn * k + c) };
        const double det = M[0] * M[3] - M[1] * M[2];
        const double A[4] = { M[3] / det, -M[1] / det, -M[2] / det, M[0] / det };
        const double cx = cols / 2.0, cy = rows / 2.0;
        /* q = A (p - centre - t) + centre */
        const double o[2] = { cx - A[0] * (cx + tx) - A[1] * (cy + ty), cy - A[2] * (cx + tx) - A[3] * (cy + ty) };
        warp(img, out, rows, cols, A, o);
        cur = out;
    }
    if (on[SN_AUG_THICK]) thicken(cur, rows, cols, v[SN_AUG_THICK] > 0, (float)fabs(v[SN_AUG_THICK]));
    for (int i = 0; i < n; i++) {
        const float g = cur[i] * 255.0f + 0.5f;
        dst[i] = (uint8_t)(g <= 0.0f ? 0 : g >= 255.0f ? 255 : (int)g);
    }
}

void sn_augment_dataset(const sn_augment *a, uint64_t seed, int epoch, const sn_dataset *src, int count,
                        uint8_t *dst, int threads)
{
    const size_t px = (size_t)src->rows * src->cols;
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256) /* dynamic: a descheduled thread takes fewer */
    for (int i = 0; i < count; i++)
        sn_augment_image(a, seed, epoch, i, src->images + (size_t)i * px, dst + (size_t)i * px, src->rows, src->cols);
}

void sn_dataset_deskew(sn_dataset *ds, int threads)
{
    const int rows = ds->rows, cols = ds->cols;
    const size_t px = (size_t)rows * cols;
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < ds->count; i++) {
        float in[MAX_SIDE * MAX_SIDE], out[MAX_SIDE * MAX_SIDE];
        uint8_t *img = ds->images + (size_t)i * px;
        for (size_t p = 0; p < px; p++) in[p] = img[p] * (1.0f / 255.0f);
        sn_deskew(in, out, cols, rows);
        for (size_t p = 0; p < px; p++) {
            const float g = out[p] * 255.0f + 0.5f;
            img[p] = (uint8_t)(g <= 0.0f ? 0 : g >= 255.0f ? 255 : (int)g);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sn_dataset_stroke_width(const sn_dataset *ds, double q, int threads, double *width, sn_error *err)
{
    const size_t px = (size_t)ds->rows * ds->cols;
    double *w = malloc(sizeof(double) * (size_t)(ds->count ? ds->count : 1));
    if (!w) return sn_fail(err, SN_ENOMEM, "out of memory for %d stroke widths", ds->count);
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < ds->count; i++) {
        float img[MAX_SIDE * MAX_SIDE];
        for (size_t p = 0; p < px; p++) img[p] = ds->images[(size_t)i * px + p] * (1.0f / 255.0f);
        w[i] = sn_stroke_width(img, ds->cols, ds->rows);
    }
    qsort(w, (size_t)ds->count, sizeof(double), cmp_double);
    *width = ds->count ? w[(size_t)(q * (ds->count - 1) + 0.5)] : 0.0;
    free(w);
    return SN_OK;
}
