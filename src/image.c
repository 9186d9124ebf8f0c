/* MNIST-style preprocessing (see image.h). Pure computation: the readers are in
 * imageio.c. */
#include "scratchnet/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sn_image_create(sn_image *img, int w, int h, sn_error *err)
{
    img->w = img->h = 0;
    img->px = NULL;
    if (w < 1 || h < 1 || w > SN_IMAGE_MAX_SIDE || h > SN_IMAGE_MAX_SIDE || (long)w * h > SN_IMAGE_MAX_PIXELS)
        return sn_fail(err, SN_EFORMAT, "image of %dx%d pixels: expected 1..%d a side and at most %d pixels",
                       w, h, SN_IMAGE_MAX_SIDE, SN_IMAGE_MAX_PIXELS);
    img->px = calloc((size_t)w * h, sizeof(float));
    if (!img->px) return sn_fail(err, SN_ENOMEM, "out of memory for a %dx%d image", w, h);
    img->w = w, img->h = h;
    return SN_OK;
}

void sn_image_free(sn_image *img)
{
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int sn_image_normalize_ink(sn_image *img)
{
    const int w = img->w, h = img->h;
    size_t nb = w == 1 || h == 1 ? (size_t)w * h : 2 * (size_t)w + 2 * (size_t)h - 4, k = 0;
    float *border = malloc(nb * sizeof(float));
    float bg = 0.0f;
    if (border) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (y == 0 || y == h - 1 || x == 0 || x == w - 1) border[k++] = img->px[(size_t)y * w + x];
        qsort(border, k, sizeof(float), cmp_float);
        bg = border[k / 2];
        free(border);
    }
    /* Paper is what covers the border: light paper means dark ink. */
    int inverted = bg > 0.5f;
    if (inverted) bg = 1.0f - bg;
    float scale = bg < 0.99f ? 1.0f / (1.0f - bg) : 0.0f;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float v = inverted ? 1.0f - img->px[i] : img->px[i];
        v = (v - bg) * scale;
        img->px[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    return inverted;
}

int sn_ink_bbox(const float *px, int w, int h, float threshold, int *x0, int *y0, int *x1, int *y1)
{
    int minx = w, miny = h, maxx = -1, maxy = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (px[(size_t)y * w + x] > threshold) {
                if (x < minx) minx = x;
                if (x > maxx) maxx = x;
                if (y < miny) miny = y;
                if (y > maxy) maxy = y;
            }
    if (maxx < 0) return 0;
    *x0 = minx, *y0 = miny, *x1 = maxx + 1, *y1 = maxy + 1;
    return 1;
}

/* One axis of the area filter: dst[i] = mean of src over [i*s, (i+1)*s), s = n/m,
 * weighting partially covered source cells by their overlap. */
static void resample_axis(float *dst, int m, size_t dstride, const float *src, int n, size_t sstride)
{
    const double s = (double)n / m;
    for (int i = 0; i < m; i++) {
        double a = i * s, b = (i + 1) * s, acc = 0.0;
        for (int j = (int)floor(a); j < n && j < (int)ceil(b); j++) {
            double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
            if (hi > lo) acc += (hi - lo) * src[(size_t)j * sstride];
        }
        dst[(size_t)i * dstride] = (float)(acc / s);
    }
}

void sn_resample_area(float *dst, int dw, int dh, const float *src, int sw, int sh)
{
    float *tmp = malloc((size_t)dw * sh * sizeof(float)); /* sh x dw after the x pass */
    if (!tmp) { memset(dst, 0, (size_t)dw * dh * sizeof(float)); return; }
    for (int y = 0; y < sh; y++) resample_axis(tmp + (size_t)y * dw, dw, 1, src + (size_t)y * sw, sw, 1);
    for (int x = 0; x < dw; x++) resample_axis(dst + x, dh, (size_t)dw, tmp + x, sh, (size_t)dw);
    free(tmp);
}

int sn_center_of_mass(const float *px, int w, int h, double *cx, double *cy)
{
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = px[(size_t)y * w + x];
            m += v, sx += v * (x + 0.5), sy += v * (y + 0.5);
        }
    if (!(m > 0)) return 0;
    *cx = sx / m, *cy = sy / m;
    return 1;
}

enum { FIELD = 28, BOX = 20 };

double sn_deskew(const float *src, float *dst, int w, int h)
{
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double v = src[(size_t)y * w + x];
            m += v, sx += v * x, sy += v * y;
        }
    double slope = 0;
    if (m > 0) {
        const double cx = sx / m, cy = sy / m;
        double mu11 = 0, mu02 = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const double v = src[(size_t)y * w + x];
                mu11 += v * (x - cx) * (y - cy), mu02 += v * (y - cy) * (y - cy);
            }
        /* A single row of ink has no vertical extent to measure a slant along. */
        if (mu02 > 1e-3 * m) slope = mu11 / mu02;
        /* Row y samples the source at x + slope (y - cy): the centre of mass stays put
         * and the principal axis becomes vertical. Only x moves, so the interpolation
         * is linear along the row. */
        for (int y = 0; y < h; y++) {
            const double shift = slope * (y - cy);
            const int whole = (int)floor(shift);
            const float frac = (float)(shift - whole);
            const float *row = src + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                const int x0 = x + whole;
                const float a = x0 >= 0 && x0 < w ? row[x0] : 0.0f, b = x0 + 1 >= 0 && x0 + 1 < w ? row[x0 + 1] : 0.0f;
                dst[(size_t)y * w + x] = a + frac * (b - a);
            }
        }
        return slope;
    }
    memcpy(dst, src, (size_t)w * h * sizeof(float));
    return 0;
}

double sn_stroke_width(const float *px, int w, int h)
{
    /* Forward differences over the image padded with one ring of zeros, so a stroke's
     * edges at the border count too. Isotropic, so diagonal strokes measure as wide as
     * upright ones. */
    double mass = 0, tv = 0;
    for (int y = -1; y < h; y++)
        for (int x = -1; x < w; x++) {
            const int in = x >= 0 && y >= 0;
            const double v = in ? px[(size_t)y * w + x] : 0.0;
            const double right = y >= 0 && x + 1 < w ? px[(size_t)y * w + x + 1] : 0.0;
            const double down = x >= 0 && y + 1 < h ? px[(size_t)(y + 1) * w + x] : 0.0;
            mass += v;
            tv += sqrt((right - v) * (right - v) + (down - v) * (down - v));
        }
    return tv > 0 ? 2.0 * mass / tv : 0.0;
}

/* Plus-shaped grey erosion: each pixel the least of itself and its four neighbours
 * (zero outside). */
static void erode_plus(const float *src, float *dst, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = src[(size_t)y * w + x];
            const float l = x > 0 ? src[(size_t)y * w + x - 1] : 0.0f, r = x + 1 < w ? src[(size_t)y * w + x + 1] : 0.0f;
            const float u = y > 0 ? src[(size_t)(y - 1) * w + x] : 0.0f, d = y + 1 < h ? src[(size_t)(y + 1) * w + x] : 0.0f;
            v = l < v ? l : v, v = r < v ? r : v, v = u < v ? u : v, v = d < v ? d : v;
            dst[(size_t)y * w + x] = v;
        }
}

/* In place: the strongest pixel becomes full ink, as in MNIST where every digit reaches
 * 255 (upscaled strokes are flat plateaus below 1 after the area filter). */
static void stretch_to_one(float *px, int n)
{
    float mx = 0;
    for (int i = 0; i < n; i++) mx = px[i] > mx ? px[i] : mx;
    if (mx > 0)
        for (int i = 0; i < n; i++) px[i] /= mx;
}

/* Stroke-width normalisation. The crop is resampled to FINE times the box's size, where
 * one plus-shaped erosion thins a stroke by 2 / FINE box pixels; eroded copies E_0..E_k
 * are blended (E_j + f (E_{j+1} - E_j)), so the thinning is continuous in
 * e = j + f, and e is found by bisection so the box image's width is at most max_width.
 * A digit at or under the width is untouched; thinning stops before a level with no
 * ink left. */
enum { FINE = 4, MAX_EROSIONS = 16, BISECTIONS = 12 };

typedef struct thinning {
    float *level[MAX_EROSIONS + 1]; /* E_0 .. E_nlevels-1, fw x fh each */
    int nlevels, fw, fh;
    float *mix;
} thinning;

static void thinned_box(const thinning *t, double e, float *box, int nw, int nh)
{
    int j = (int)e;
    if (j >= t->nlevels - 1) j = t->nlevels - 1, e = j;
    const float f = (float)(e - j);
    const size_t n = (size_t)t->fw * t->fh;
    const float *a = t->level[j], *b = t->level[j + (j + 1 < t->nlevels)];
    for (size_t i = 0; i < n; i++) t->mix[i] = a[i] + f * (b[i] - a[i]);
    sn_resample_area(box, nw, nh, t->mix, t->fw, t->fh);
    stretch_to_one(box, nw * nh);
}

/* box (nh x nw) from crop (bh x bw), thinned to max_width. SN_ENOMEM only. */
static int fit_thinned(const float *crop, int bw, int bh, float max_width, float *box, int nw, int nh, sn_error *err)
{
    thinning t = { .fw = nw * FINE, .fh = nh * FINE };
    const size_t n = (size_t)t.fw * t.fh;
    float *mem = malloc((MAX_EROSIONS + 2) * n * sizeof(float));
    if (!mem) return sn_fail(err, SN_ENOMEM, "out of memory");
    t.mix = mem;
    t.level[0] = mem + n;
    sn_resample_area(t.level[0], t.fw, t.fh, crop, bw, bh);
    stretch_to_one(t.level[0], (int)n);
    t.nlevels = 1;
    thinned_box(&t, 0, box, nw, nh);
    double hi = 0;
    if (sn_stroke_width(box, nw, nh) > max_width) {
        /* The first whole level thin enough, keeping only levels that still hold ink. */
        while (t.nlevels <= MAX_EROSIONS) {
            float *next = mem + (size_t)(t.nlevels + 1) * n;
            erode_plus(t.level[t.nlevels - 1], next, t.fw, t.fh);
            double ink = 0;
            for (size_t i = 0; i < n; i++) ink += next[i];
            if (!(ink > 0.5 * FINE * FINE)) break;
            t.level[t.nlevels++] = next;
            thinned_box(&t, t.nlevels - 1, box, nw, nh);
            if (sn_stroke_width(box, nw, nh) <= max_width) break;
        }
        hi = t.nlevels - 1;
        double lo = hi > 0 ? hi - 1 : 0;
        for (int it = 0; it < BISECTIONS && hi > lo; it++) {
            const double mid = 0.5 * (lo + hi);
            thinned_box(&t, mid, box, nw, nh);
            if (sn_stroke_width(box, nw, nh) <= max_width) hi = mid;
            else lo = mid;
        }
        thinned_box(&t, hi, box, nw, nh);
    }
    free(mem);
    return SN_OK;
}

int sn_canvas_to_mnist(const float *ink, int w, int h, const sn_preprocess *pre, float *out, sn_error *err)
{
    memset(out, 0, FIELD * FIELD * sizeof(float));
    int x0, y0, x1, y1;
    /* Faint specks (< 0.1) don't count as ink; under 0.5 pixel-equivalents in total is
     * "nearly empty" and is not classified. */
    double total = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) total += ink[i];
    if (!sn_ink_bbox(ink, w, h, 0.1f, &x0, &y0, &x1, &y1) || total < 0.5 * (w * h) / (FIELD * FIELD) + 0.5)
        return sn_fail(err, SN_EINVAL, "empty image: no ink to read");
    int bw = x1 - x0, bh = y1 - y0;
    float *crop = malloc((size_t)bw * bh * sizeof(float));
    if (!crop) return sn_fail(err, SN_ENOMEM, "out of memory");
    for (int y = 0; y < bh; y++) memcpy(crop + (size_t)y * bw, ink + (size_t)(y0 + y) * w + x0, (size_t)bw * sizeof(float));
    /* Longer side -> 20 pixels, aspect ratio kept. */
    int nw, nh;
    if (bw >= bh) nw = BOX, nh = (int)lround((double)BOX * bh / bw);
    else nh = BOX, nw = (int)lround((double)BOX * bw / bh);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    float box[BOX * BOX];
    if (pre && pre->max_width > 0) {
        const int rc = fit_thinned(crop, bw, bh, pre->max_width, box, nw, nh, err);
        if (rc) { free(crop); return rc; }
    } else {
        sn_resample_area(box, nw, nh, crop, bw, bh);
        stretch_to_one(box, nw * nh);
    }
    free(crop);
    double cx = nw / 2.0, cy = nh / 2.0;
    sn_center_of_mass(box, nw, nh, &cx, &cy);
    int ox = (int)lround(FIELD / 2.0 - cx), oy = (int)lround(FIELD / 2.0 - cy);
    if (ox < 0) ox = 0;
    if (oy < 0) oy = 0;
    if (ox + nw > FIELD) ox = FIELD - nw;
    if (oy + nh > FIELD) oy = FIELD - nh;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) out[(oy + y) * FIELD + ox + x] = box[y * nw + x];
    if (pre && pre->deskew) {
        float placed[FIELD * FIELD];
        memcpy(placed, out, sizeof placed);
        sn_deskew(placed, out, FIELD, FIELD);
    }
    return SN_OK;
}

int sn_image_to_mnist(const sn_image *img, const sn_preprocess *pre, float *out, sn_error *err)
{
    sn_image work;
    int rc = sn_image_create(&work, img->w, img->h, err);
    if (rc) return rc;
    memcpy(work.px, img->px, (size_t)img->w * img->h * sizeof(float));
    sn_image_normalize_ink(&work);
    rc = sn_canvas_to_mnist(work.px, work.w, work.h, pre, out, err);
    sn_image_free(&work);
    return rc;
}
