/* MNIST-style preprocessing (see image.h). Pure computation: the readers are in
 * imageio.c. */
#include "scratchnet/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sn_image_check_size(long w, long h, sn_error *err)
{
    if (w < 1 || h < 1) return sn_fail(err, SN_EFORMAT, "image of %ldx%ld pixels: expected at least 1x1", w, h);
    if (w > SN_IMAGE_MAX_SIDE || h > SN_IMAGE_MAX_SIDE || w * h > SN_IMAGE_MAX_PIXELS)
        return sn_fail(err, SN_EFORMAT, "image of %ldx%ld = %lld pixels: too large; this program reads up to %d "
                                        "pixels in all (64 Mi) and %d a side",
                       w, h, (long long)w * h, SN_IMAGE_MAX_PIXELS, SN_IMAGE_MAX_SIDE);
    return SN_OK;
}

int sn_image_create(sn_image *img, int w, int h, sn_error *err)
{
    img->w = img->h = 0;
    img->px = NULL;
    const int rc = sn_image_check_size(w, h, err);
    if (rc) return rc;
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

/* In place: the strongest pixel becomes full ink, as in MNIST where every digit reaches
 * 255 (upscaled strokes are flat plateaus below 1 after the area filter). */
static void stretch_to_one(float *px, int n)
{
    float mx = 0;
    for (int i = 0; i < n; i++) mx = px[i] > mx ? px[i] : mx;
    if (mx > 0)
        for (int i = 0; i < n; i++) px[i] /= mx;
}

/* The box (nh x nw) placed in out (28 x 28) so that its centre of mass is at the centre,
 * then deskewed if pre says so: what the network sees. */
static void place(const float *box, int nw, int nh, const sn_preprocess *pre, float *out)
{
    memset(out, 0, FIELD * FIELD * sizeof(float));
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
}

/* The longer side of a bw x bh ink box -> 20 pixels, aspect ratio kept. */
static void box_size(int bw, int bh, int *nw, int *nh)
{
    if (bw >= bh) *nw = BOX, *nh = (int)lround((double)BOX * bh / bw);
    else *nh = BOX, *nw = (int)lround((double)BOX * bw / bh);
    if (*nw < 1) *nw = 1;
    if (*nh < 1) *nh = 1;
}

/* The ink of [x0, x0 + bw) x [y0, y0 + bh) of an image w wide, resampled to fit the box,
 * its strongest pixel made full ink, and placed. SN_ENOMEM only. */
static int fit_and_place(const float *ink, int w, int x0, int y0, int bw, int bh, const sn_preprocess *pre,
                         float *out, sn_error *err)
{
    float *crop = malloc((size_t)bw * bh * sizeof(float));
    if (!crop) return sn_fail(err, SN_ENOMEM, "out of memory");
    for (int y = 0; y < bh; y++) memcpy(crop + (size_t)y * bw, ink + (size_t)(y0 + y) * w + x0, (size_t)bw * sizeof(float));
    int nw, nh;
    box_size(bw, bh, &nw, &nh);
    float box[BOX * BOX];
    sn_resample_area(box, nw, nh, crop, bw, bh);
    free(crop);
    stretch_to_one(box, nw * nh);
    place(box, nw, nh, pre, out);
    return SN_OK;
}

/* Stroke-width normalisation by a soft threshold: the ink is resampled to FINE times
 * the box's size, its grey levels v become (v - t) / (1 - t) (0 below t), the result is
 * fitted to the box again (the faint fringe that goes was part of the ink box) and
 * placed, and t in [0, MAX_THRESHOLD] is found by bisection so that the stroke width
 * of what the network sees (after deskewing, whose interpolation widens a slanted
 * stroke) is at most max_width. A thick stroke's soft edges, and the half-filled holes
 * where a wide pen's edges overlap inside a loop, are what goes first; a full-ink core
 * wider than the limit stays (thinning it would erase thin parts of the same digit).
 * Only digits over the limit come here. */
enum { FINE = 4, BISECTIONS = 12 };
#define MAX_THRESHOLD 0.95

/* What the network sees with threshold t, and its stroke width; < 0 for want of memory. */
static double thresholded(const float *fine, float *work, int fw, int fh, double t, const sn_preprocess *pre,
                          float *out, sn_error *err)
{
    const float lo = (float)t, scale = 1.0f / (1.0f - (float)t);
    for (size_t i = 0; i < (size_t)fw * fh; i++) {
        const float v = (fine[i] - lo) * scale;
        work[i] = v < 0.0f ? 0.0f : v;
    }
    int x0, y0, x1, y1;
    if (!sn_ink_bbox(work, fw, fh, 0.1f, &x0, &y0, &x1, &y1)) x0 = y0 = 0, x1 = fw, y1 = fh;
    if (fit_and_place(work, fw, x0, y0, x1 - x0, y1 - y0, pre, out, err)) return -1.0;
    return sn_stroke_width(out, FIELD, FIELD);
}

/* out (28 x 28) from the ink box [x0, x0 + bw) x [y0, y0 + bh) of an image w wide, its
 * strokes no wider than pre->max_width. SN_ENOMEM only. */
static int fit_width_limited(const float *ink, int w, int x0, int y0, int bw, int bh, const sn_preprocess *pre,
                             float *out, sn_error *err)
{
    int nw, nh;
    box_size(bw, bh, &nw, &nh);
    const int fw = nw * FINE, fh = nh * FINE;
    const size_t n = (size_t)fw * fh;
    float *fine = malloc(2 * n * sizeof(float)), *crop = malloc((size_t)bw * bh * sizeof(float));
    if (!fine || !crop) {
        free(fine), free(crop);
        return sn_fail(err, SN_ENOMEM, "out of memory");
    }
    for (int y = 0; y < bh; y++) memcpy(crop + (size_t)y * bw, ink + (size_t)(y0 + y) * w + x0, (size_t)bw * sizeof(float));
    sn_resample_area(fine, fw, fh, crop, bw, bh);
    free(crop);
    stretch_to_one(fine, (int)n);
    const double max_width = pre->max_width;
    double width = 0.0;
    {
        double lo = 0.0, hi = MAX_THRESHOLD;
        for (int it = 0; it < BISECTIONS && width >= 0; it++) {
            const double mid = 0.5 * (lo + hi);
            if ((width = thresholded(fine, fine + n, fw, fh, mid, pre, out, err)) <= max_width) hi = mid;
            else lo = mid;
        }
        /* hi: the smallest threshold found that is thin enough (or the largest tried). */
        if (width >= 0) width = thresholded(fine, fine + n, fw, fh, hi, pre, out, err);
    }
    free(fine);
    return width < 0 ? SN_ENOMEM : SN_OK;
}

int sn_canvas_to_mnist(const float *ink, int w, int h, const sn_preprocess *pre, float *out, sn_error *err)
{
    memset(out, 0, FIELD * FIELD * sizeof(float));
    int x0, y0, x1, y1;
    /* Ink is what is > 0.1. Nothing to read: no ink at all, ink too faint to be a stroke
     * (none reaches 0.2: a speck of dust, a grain of a scan), or fewer than 3 pixels at
     * half the strongest (one speck). Not the amount of ink against the canvas's size:
     * a small digit on a large canvas is still a digit. */
    float strongest = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) strongest = ink[i] > strongest ? ink[i] : strongest;
    size_t strong = 0;
    for (size_t i = 0; i < (size_t)w * h && strong < 3; i++) strong += ink[i] >= 0.5f * strongest;
    if (!sn_ink_bbox(ink, w, h, 0.1f, &x0, &y0, &x1, &y1) || strongest < 0.2f || strong < 3)
        return sn_fail(err, SN_EINVAL, "empty image: no ink to read");
    const int rc = fit_and_place(ink, w, x0, y0, x1 - x0, y1 - y0, pre, out, err);
    /* A digit within the width limit is exactly what it would be without one. */
    if (rc || !pre || !(pre->max_width > 0) || sn_stroke_width(out, FIELD, FIELD) <= pre->max_width) return rc;
    return fit_width_limited(ink, w, x0, y0, x1 - x0, y1 - y0, pre, out, err);
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
