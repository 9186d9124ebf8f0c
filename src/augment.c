/* The training-time image pipeline (augment.h): deskewing a dataset, and augmentation
 * of each (epoch, image) from its own seeded draws. */
#include "scratchnet/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/image.h"
#include "scratchnet/rng.h"
#include "kernels/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const struct {
    const char *name;
    float max;
} KINDS[SN_AUG_KINDS] = {
    [SN_AUG_ROT] = { "rot", 45.0f },     [SN_AUG_SCALE] = { "scale", 0.5f }, [SN_AUG_SHEAR] = { "shear", 1.0f },
    [SN_AUG_SHIFT] = { "shift", 8.0f },  [SN_AUG_THICK] = { "thick", 2.0f },
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
    if (strlen(spec) >= sizeof buf || !*spec || spec[0] == ',' || spec[strlen(spec) - 1] == ',' || strstr(spec, ",,"))
        return sn_fail(err, SN_EINVAL, "augmentation '%s': expected none or KEY=RANGE[@PROB],...", spec);
    strcpy(buf, spec);
    unsigned seen = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        int k = 0;
        if (eq) *eq = '\0';
        while (k < SN_AUG_KINDS && strcmp(item, KINDS[k].name)) k++;
        if (!eq || k == SN_AUG_KINDS)
            return sn_fail(err, SN_EINVAL, "augmentation item '%s': expected KEY=RANGE[@PROB] with KEY one of "
                                           "rot, scale, shear, shift, thick", item);
        if (seen & (1u << k)) return sn_fail(err, SN_EINVAL, "augmentation item '%s' given twice", item);
        seen |= 1u << k;
        char *end;
        const double range = strtod(eq + 1, &end);
        double prob = 1.0;
        if (*end == '@') {
            const char *p = end + 1;
            prob = strtod(p, &end);
            if (end == p) prob = -1; /* '@' and no number */
        }
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

enum { MAX_SIDE = SN_AUGMENT_MAX_SIDE };

static int check_side(int rows, int cols, sn_error *err)
{
    if (rows < 1 || cols < 1 || rows > MAX_SIDE || cols > MAX_SIDE)
        return sn_fail(err, SN_EINVAL, "images of %dx%d pixels: the image pipeline takes 1..%d a side", rows, cols,
                       MAX_SIDE);
    return SN_OK;
}

/* Images are worked on in a zero-padded frame, PAD pixels on every side, so the loops
 * below read neighbours and bilinear taps without bounds checks (and vectorise). */
enum { PAD = 2, FRAME = MAX_SIDE + 2 * PAD };

/* Whether any of n bytes is nonzero. */
static int memchr_nonzero(const uint8_t *p, int n)
{
    int any = 0;
    for (int i = 0; i < n; i++) any |= p[i];
    return any;
}

/* rows x cols floats into the interior of a frame (fw floats a row) whose border is
 * zero and stays so: nothing ever writes there. */
static void to_frame(const float *img, int rows, int cols, float *frame, int fw)
{
    for (int y = 0; y < rows; y++) memcpy(frame + (y + PAD) * fw + PAD, img + y * cols, sizeof(float) * (size_t)cols);
}

/* A thread's workspace: two frames with zero borders, zeroed once (not per image: 8 KiB
 * of memset an image was 8% of augmenting one). */
typedef struct frames {
    float f[2][FRAME * FRAME];
} frames;

/* Each output pixel's centre less a half (x + 0.5 - 0.5 = x, likewise y) as floats,
 * rows x cols, for the warp's flat loop. */
typedef struct pixel_grid {
    float x[MAX_SIDE * MAX_SIDE], y[MAX_SIDE * MAX_SIDE];
} pixel_grid;

static void grid_init(pixel_grid *g, int rows, int cols)
{
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) g->x[y * cols + x] = (float)x, g->y[y * cols + x] = (float)y;
}

static void augment_one(const sn_augment *a, uint64_t seed, int epoch, int row, const uint8_t *src, uint8_t *dst,
                        int rows, int cols, const pixel_grid *grid, frames *work)
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
    const sn_kernels *kr = sn_kernels_active();
    const int fw = cols + 2 * PAD, n = rows * cols;
    /* Thickness first (a pen's width belongs to the drawing), then the warp. Two frames:
     * each thickening step writes its rows straight into the other frame's interior. */
    float (*const frame)[FRAME * FRAME] = work->f, img[MAX_SIDE * MAX_SIDE];
    int cur = 0;
    kr->u8_to_f32(img, src, n, 1.0f / 255.0f);
    to_frame(img, rows, cols, frame[0], fw);
    /* The rows holding ink, grown by the thickening: the warp computes only output rows
     * that can sample them. */
    int ink0 = 0, ink1 = rows;
    while (ink0 < rows && !memchr_nonzero(src + ink0 * cols, cols)) ink0++;
    while (ink1 > ink0 && !memchr_nonzero(src + (ink1 - 1) * cols, cols)) ink1--;
    const double t = on[SN_AUG_THICK] ? v[SN_AUG_THICK] : 0.0;
    if (t != 0.0) {
        /* |t| > 1: whole steps first, then the fraction. Frame to frame, whole padded
         * rows at once, then the border columns cleared again. */
        for (double left = fabs(t); left > 0.0; left -= 1.0, cur ^= 1) {
            float *to = frame[cur ^ 1];
            kr->img_thicken(frame[cur] + PAD * fw, to + PAD * fw, (long)rows * fw, fw, t > 0,
                            left < 1.0 ? (float)left : 1.0f);
            for (int y = PAD; y < rows + PAD; y++) {
                memset(to + y * fw, 0, sizeof(float) * PAD);
                memset(to + y * fw + PAD + cols, 0, sizeof(float) * (size_t)(fw - PAD - cols));
            }
            if (t > 0) ink0 = ink0 > 0 ? ink0 - 1 : 0, ink1 = ink1 < rows ? ink1 + 1 : rows;
        }
        if (!geometric)
            for (int y = 0; y < rows; y++)
                memcpy(img + y * cols, frame[cur] + (y + PAD) * fw + PAD, sizeof(float) * (size_t)cols);
    }
    if (geometric) {
        /* Forward map M = rotation * zoom * shear about the centre, then the shift; the
         * warp samples through its inverse: q = M^-1 (p - centre - t) + centre, with p
         * and q pixel centres (+0.5); in the grid's coordinates (p - 0.5) the offset is
         * the same expression. */
        const double th = on[SN_AUG_ROT] ? v[SN_AUG_ROT] * (M_PI / 180.0) : 0.0;
        const double s = on[SN_AUG_SCALE] ? 1.0 + v[SN_AUG_SCALE] : 1.0;
        const double k = on[SN_AUG_SHEAR] ? v[SN_AUG_SHEAR] : 0.0;
        const double tx = on[SN_AUG_SHIFT] ? v[SN_AUG_SHIFT] : 0.0, ty = on[SN_AUG_SHIFT] ? v[SN_AUG_KINDS] : 0.0;
        const double c = cos(th), sn = sin(th);
        const double M[4] = { s * c, s * (c * k - sn), s * sn, s * (sn * k + c) };
        const double det = M[0] * M[3] - M[1] * M[2];
        const double A[4] = { M[3] / det, -M[1] / det, -M[2] / det, M[0] / det };
        const double cx = cols / 2.0 - 0.5, cy = rows / 2.0 - 0.5; /* the centre in grid coordinates */
        const float map[6] = { (float)A[0], (float)A[1], (float)(cx - A[0] * (cx + tx) - A[1] * (cy + ty)),
                               (float)A[2], (float)A[3], (float)(cy - A[2] * (cx + tx) - A[3] * (cy + ty)) };
        /* Output row y samples source rows a2 x + a3 y + o1 for x in [0, cols): those in
         * (ink0 - 1, ink1) can be nonzero. The rows outside [y0, y1) are paper. */
        int y0 = rows, y1 = 0;
        for (int y = 0; y < rows; y++) {
            const float va = map[4] * (float)y + map[5], vb = va + map[3] * (float)(cols - 1);
            const float lo = va < vb ? va : vb, hi = va < vb ? vb : va;
            if (hi > (float)ink0 - 1.0f - 0.01f && lo < (float)ink1 + 0.01f) {
                y0 = y < y0 ? y : y0;
                y1 = y + 1;
            }
        }
        memset(img, 0, sizeof(float) * (size_t)n);
        if (y0 < y1)
            kr->img_warp(frame[cur] + (PAD - 1) * fw + PAD - 1, fw, img + y0 * cols, grid->x + y0 * cols,
                         grid->y + y0 * cols, (y1 - y0) * cols, map, (float)cols, (float)rows);
    }
    kr->img_to_u8(dst, img, n);
}

int sn_augment_image(const sn_augment *a, uint64_t seed, int epoch, int row, const uint8_t *src, uint8_t *dst,
                     int rows, int cols, sn_error *err)
{
    const int rc = check_side(rows, cols, err);
    if (rc) return rc;
    pixel_grid grid;
    grid_init(&grid, rows, cols);
    frames work;
    memset(&work, 0, sizeof work);
    augment_one(a, seed, epoch, row, src, dst, rows, cols, &grid, &work);
    return SN_OK;
}

size_t sn_augment_workspace_bytes(int threads)
{
    return sizeof(frames) * (size_t)(threads > 0 ? threads : 1);
}

int sn_augment_dataset(const sn_augment *a, uint64_t seed, int epoch, const sn_dataset *src, int count,
                       uint8_t *dst, int threads, void *workspace, sn_error *err)
{
    const int rc = check_side(src->rows, src->cols, err);
    if (rc) return rc;
    const size_t px = (size_t)src->rows * src->cols;
    pixel_grid grid;
    grid_init(&grid, src->rows, src->cols);
    (void)threads;
    frames *work = workspace;
#pragma omp parallel num_threads(threads)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        memset(&work[tid], 0, sizeof work[tid]); /* borders zero from here on */
#pragma omp for schedule(dynamic, 256) /* dynamic: a descheduled thread takes fewer */
        for (int i = 0; i < count; i++)
            augment_one(a, seed, epoch, i, src->images + (size_t)i * px, dst + (size_t)i * px, src->rows, src->cols,
                        &grid, &work[tid]);
    }
    return SN_OK;
}

int sn_dataset_deskew(sn_dataset *ds, int threads, sn_error *err)
{
    const int rows = ds->rows, cols = ds->cols;
    const int rc = check_side(rows, cols, err);
    if (rc) return rc;
    const size_t px = (size_t)rows * cols;
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < ds->count; i++) {
        float in[MAX_SIDE * MAX_SIDE], out[MAX_SIDE * MAX_SIDE];
        uint8_t *img = ds->images + (size_t)i * px;
        for (size_t p = 0; p < px; p++) in[p] = img[p] * (1.0f / 255.0f);
        sn_deskew(in, out, cols, rows);
        sn_kernels_active()->img_to_u8(img, out, (long)px);
    }
    return SN_OK;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sn_dataset_stroke_width(const sn_dataset *ds, double q, int threads, double *width, sn_error *err)
{
    const int rc = check_side(ds->rows, ds->cols, err);
    if (rc) return rc;
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
