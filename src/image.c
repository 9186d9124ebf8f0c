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

int sn_canvas_to_mnist(const float *ink, int w, int h, float *out, sn_error *err)
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
    sn_resample_area(box, nw, nh, crop, bw, bh);
    free(crop);
    /* Upscaled strokes are flat plateaus; rescale so the strongest pixel is full ink,
     * as in MNIST where every digit reaches 255. */
    float mx = 0;
    for (int i = 0; i < nw * nh; i++) mx = box[i] > mx ? box[i] : mx;
    if (mx > 0)
        for (int i = 0; i < nw * nh; i++) box[i] = box[i] / mx;
    double cx = nw / 2.0, cy = nh / 2.0;
    sn_center_of_mass(box, nw, nh, &cx, &cy);
    int ox = (int)lround(FIELD / 2.0 - cx), oy = (int)lround(FIELD / 2.0 - cy);
    if (ox < 0) ox = 0;
    if (oy < 0) oy = 0;
    if (ox + nw > FIELD) ox = FIELD - nw;
    if (oy + nh > FIELD) oy = FIELD - nh;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) out[(oy + y) * FIELD + ox + x] = box[y * nw + x];
    return SN_OK;
}

int sn_image_to_mnist(const sn_image *img, float *out, sn_error *err)
{
    sn_image work;
    int rc = sn_image_create(&work, img->w, img->h, err);
    if (rc) return rc;
    memcpy(work.px, img->px, (size_t)img->w * img->h * sizeof(float));
    sn_image_normalize_ink(&work);
    rc = sn_canvas_to_mnist(work.px, work.w, work.h, out, err);
    sn_image_free(&work);
    return rc;
}
