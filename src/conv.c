/* The 2-D convolution layer: KxK kernels, stride 1, 'valid' (no padding) or 'same' (zero
 * padding (K - 1) / 2 each side, odd K), bias, ReLU fused; NHWC images. Through the
 * project's GEMM on the patch matrix col, a few images at a time; the forward product
 * and the weight gradient read col from the images in place (an implicit GEMM: offset
 * tables, sn_gemm_gathered_local), the input gradient writes dcol and folds it back:
 *   col (P x E), P = oh * ow output pixels, E = K * K * ic patch elements, element
 *       e = (ky * K + kx) * ic + c of pixel (oy, ox) = input (oy + ky - pad, ox + kx - pad, c)
 *   forward:        Y (P x oc) = relu(col W + b)       W: E x oc (as a dense layer's in x out)
 *   input gradient: dcol = dY W^T, then dX = col2im(dcol) (each input gathers its patch
 *                   entries in a fixed order), times [X > 0] after a ReLU
 *   weights:        dW = sum over images, in order, of col^T dY;  db = column sums of dY
 * Row-wise work is per image, so bits do not depend on how a batch is split; each weight
 * gradient element is reduced over the images in order on one thread. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "scratchnet/layer.h"
#include "scratchnet/layers.h"
#include "scratchnet/model.h" /* sn_share_rows */

static int pad_of(const sn_layer *l)
{
    return l->same ? (l->k - 1) / 2 : 0;
}

static int patch(const sn_layer *l) /* E */
{
    return l->k * l->k * l->ic;
}

static int pixels(const sn_layer *l) /* P */
{
    return l->oh * l->ow;
}

static void conv_reshape(sn_layer *l)
{
    const int pad = pad_of(l);
    l->oh = l->ih + 2 * pad - l->k + 1;
    l->ow = l->iw + 2 * pad - l->k + 1;
    /* oc is the type's parameter: set by configure or the record */
    const long out = l->oh > 0 && l->ow > 0 ? (long)l->oh * l->ow * l->oc : 0;
    l->out = out <= SN_MAX_WIDTH ? (int)out : 0; /* 0: refused by configure and check */
}

/* "convKxKxC" or "convKxKxC/same" (and "conv:..." without the ReLU). */
static int conv_configure(sn_layer *l, const char *arg, int fuse_relu, sn_error *err)
{
    int k1 = 0, k2 = 0, c = 0, used = 0;
    const char *what = "expected convKxKxC or convKxKxC/same: K x K kernels (K odd for same, 1..15), C output "
                       "channels (1..1024)";
    if (!arg || sscanf(arg, "%dx%dx%d%n", &k1, &k2, &c, &used) != 3 || k1 != k2 || k1 < 1 || k1 > 15 || c < 1 ||
        c > 1024)
        return sn_fail(err, SN_EINVAL, "conv%s: %s", arg ? arg : "", what);
    const char *rest = arg + used;
    if (*rest && strcmp(rest, "/same") != 0) return sn_fail(err, SN_EINVAL, "conv%s: %s", arg, what);
    l->k = k1, l->oc = c, l->same = *rest != '\0';
    if (l->same && k1 % 2 == 0) return sn_fail(err, SN_EINVAL, "conv%s: 'same' padding needs an odd K", arg);
    conv_reshape(l);
    if (l->oh < 1 || l->ow < 1 || l->out < 1)
        return sn_fail(err, SN_EINVAL, "conv%s: a %dx%d kernel does not fit a %dx%dx%d input (or the output exceeds %d)",
                       arg, k1, k1, l->ih, l->iw, l->ic, SN_MAX_WIDTH);
    l->relu = fuse_relu, l->arg = 0.0f;
    return SN_OK;
}

static int conv_check(const sn_layer *l, sn_error *err)
{
    sn_layer shaped = *l;
    conv_reshape(&shaped);
    if (l->k < 1 || l->k > 15 || l->oc < 1 || l->oc > 1024 || (l->same != 0 && l->same != 1) ||
        (l->same && l->k % 2 == 0) || l->oh < 1 || l->ow < 1 || shaped.oh != l->oh || shaped.ow != l->ow ||
        l->out != (long)l->oh * l->ow * l->oc || (l->relu != 0 && l->relu != 1) || l->arg != 0.0f ||
        (long)l->ih * l->iw * l->ic != l->in)
        return sn_fail(err, SN_EFORMAT, "conv %dx%dx%d -> %dx%dx%d with %dx%d kernels (same=%d): inconsistent shapes",
                       l->ih, l->iw, l->ic, l->oh, l->ow, l->oc, l->k, l->k, l->same);
    return SN_OK;
}

static void conv_spec(const sn_layer *l, int compact, char *out, size_t cap)
{
    snprintf(out, cap, "conv%s%dx%dx%d%s", compact ? "" : ":", l->k, l->k, l->oc, l->same ? "/same" : "");
}

/* Record: the input image, then k, oc, same. */
static void conv_save(const sn_layer *l, uint32_t *f)
{
    f[0] = (uint32_t)l->ih, f[1] = (uint32_t)l->iw, f[2] = (uint32_t)l->ic;
    f[3] = (uint32_t)l->k, f[4] = (uint32_t)l->oc, f[5] = (uint32_t)l->same;
}

static void conv_load(sn_layer *l, const uint32_t *f)
{
    /* Bounded before any product (a hostile file): check() then refuses what is off. */
    l->ih = f[0] <= SN_MAX_WIDTH ? (int)f[0] : 0, l->iw = f[1] <= SN_MAX_WIDTH ? (int)f[1] : 0;
    l->ic = f[2] <= SN_MAX_WIDTH ? (int)f[2] : 0, l->k = f[3] <= 15 ? (int)f[3] : 0;
    l->oc = f[4] <= 1024 ? (int)f[4] : 0, l->same = f[5] <= 1 ? (int)f[5] : 2;
    if ((long)l->ih * l->iw * l->ic != l->in) l->ih = l->iw = 0; /* refused by check */
}

static size_t conv_nweights(const sn_layer *l)
{
    return (size_t)patch(l) * l->oc;
}

static size_t conv_nbiases(const sn_layer *l)
{
    return (size_t)l->oc;
}

static void conv_init(const sn_layer *l, sn_rng *rng)
{
    const double std = sqrt(2.0 / patch(l)); /* He, fan-in K * K * ic */
    for (size_t i = 0; i < conv_nweights(l); i++) l->W[i] = (float)(std * sn_rng_normal(rng));
    memset(l->b, 0, sizeof(float) * (size_t)l->oc);
}

/* One image's patch matrix (P x E) from x (ih x iw x ic): row (oy, ox) holds the
 * kernel's positions in order q = ky * K + kx. Positions of one kernel row that fall
 * inside the image are one run of the input row (NHWC: channels contiguous); the rest is
 * zero padding. (The forward pass and the weight gradients read patches from the image
 * in place, gathered; this copy is for the one product that wants them as a matrix.) */
static void im2col(const sn_layer *l, const float *restrict x, float *restrict col)
{
    const int k = l->k, ic = l->ic, pad = pad_of(l), E = patch(l);
    if (ic == 1) {
        /* One channel: runs of K floats would cost a memcpy call each; position by
         * position instead, along an output row (a strided copy, no calls). */
        for (int oy = 0; oy < l->oh; oy++)
            for (int q = 0; q < E; q++) {
                const int y = oy + q / k - pad, dx = q % k - pad;
                float *restrict dst = col + (size_t)oy * l->ow * E + q;
                int lo = dx < 0 ? -dx : 0, hi = l->iw - dx < l->ow ? l->iw - dx : l->ow; /* ox inside */
                if (y < 0 || y >= l->ih) lo = hi = 0;
                if (hi < lo) hi = lo;
                const float *restrict row_in = x + (size_t)(y < 0 ? 0 : y) * l->iw;
                for (int ox = 0; ox < lo; ox++) dst[(size_t)ox * E] = 0.0f;
                for (int ox = lo; ox < hi; ox++) dst[(size_t)ox * E] = row_in[ox + dx];
                for (int ox = hi; ox < l->ow; ox++) dst[(size_t)ox * E] = 0.0f;
            }
        return;
    }
    for (int oy = 0; oy < l->oh; oy++)
        for (int ox = 0; ox < l->ow; ox++) {
            float *row = col + ((size_t)oy * l->ow + ox) * E;
            const int x0 = ox - pad, kx_lo = x0 < 0 ? -x0 : 0, kx_hi = x0 + k > l->iw ? l->iw - x0 : k;
            for (int ky = 0; ky < k; ky++) {
                float *dst = row + (size_t)ky * k * ic;
                const int y = oy + ky - pad;
                if (y < 0 || y >= l->ih || kx_hi <= kx_lo) {
                    memset(dst, 0, sizeof(float) * (size_t)k * ic);
                    continue;
                }
                if (kx_lo) memset(dst, 0, sizeof(float) * (size_t)kx_lo * ic);
                memcpy(dst + (size_t)kx_lo * ic, x + ((size_t)y * l->iw + x0 + kx_lo) * ic,
                       sizeof(float) * (size_t)(kx_hi - kx_lo) * ic);
                if (kx_hi < k) memset(dst + (size_t)kx_hi * ic, 0, sizeof(float) * (size_t)(k - kx_hi) * ic);
            }
        }
}

/* The gathered (implicit) form of the patch matrices, for sn_gemm_gathered_local: the
 * element (pixel, e) of image r's patch matrix is src[pix[r * P + pixel] + pos[e]], src
 * being the images themselves ('valid') or copies with their zero border ('same'),
 * `stride` floats apart:
 *   pix[r * P + oy * ow + ox] = r * stride + (oy * sw + ox) * ic   (sw: the source's width)
 *   pos[(ky * K + kx) * ic + c] = (ky * sw + kx) * ic + c
 * The forward product reads G[i][p] = src[pix[i] + pos[p]] (the patch matrix); a weight
 * gradient reads src[pos[i] + pix[p]] (its transpose). */
static int padded_width(const sn_layer *l)
{
    return l->iw + 2 * pad_of(l);
}

static size_t padded_floats(const sn_layer *l) /* one image with its border, 0 if 'valid' */
{
    return pad_of(l) ? (size_t)(l->ih + 2 * pad_of(l)) * padded_width(l) * l->ic : 0;
}

static void gather_tables(const sn_layer *l, int images, int stride, int *pix, int *pos)
{
    const int k = l->k, ic = l->ic, sw = padded_width(l), P = pixels(l);
    for (int r = 0; r < images; r++)
        for (int oy = 0; oy < l->oh; oy++)
            for (int ox = 0; ox < l->ow; ox++) pix[r * P + oy * l->ow + ox] = r * stride + (oy * sw + ox) * ic;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            for (int c = 0; c < ic; c++) pos[(ky * k + kx) * ic + c] = (ky * sw + kx) * ic + c;
}

/* The source of `images` images for the gathered tables: X itself ('valid'; stride
 * l->in), or their copies with a zero border in buf (stride padded_floats). */
static const float *gather_source(const sn_layer *l, const float *X, int images, float *buf)
{
    const int pad = pad_of(l), sw = padded_width(l), ic = l->ic;
    const size_t per = padded_floats(l);
    if (!pad) return X;
    memset(buf, 0, sizeof(float) * per * (size_t)images);
    for (int r = 0; r < images; r++)
        for (int y = 0; y < l->ih; y++)
            memcpy(buf + per * r + ((size_t)(y + pad) * sw + pad) * ic, X + (size_t)r * l->in + (size_t)y * l->iw * ic,
                   sizeof(float) * (size_t)l->iw * ic);
    return buf;
}

static int gather_stride(const sn_layer *l)
{
    return pad_of(l) ? (int)padded_floats(l) : l->in;
}

/* dx (ih x iw x ic) = col2im(dcol), times [x > 0] if x (the layer's input came out of a
 * ReLU): each input pixel sums the patch entries it was copied to, in the fixed order
 * ky, then kx, descending (output pixels ascending), from 0, and is written once
 * (scattering each patch row into dx read and wrote dx K * K times: 5% of a cnn step). */
static void col2im(const sn_layer *l, const float *restrict dcol, float *restrict dx, const float *restrict x)
{
    const sn_kernels *kr = sn_kernels_active();
    const int k = l->k, ic = l->ic, pad = pad_of(l), E = patch(l);
    const float *src[15 * 15]; /* K <= 15 (conv_configure, conv_check) */
    for (int y = 0; y < l->ih; y++) {
        /* kernel rows ky with an output row oy = y + pad - ky inside [0, oh) */
        const int ky_hi = y + pad < k - 1 ? y + pad : k - 1, ky_lo = y + pad - l->oh + 1 > 0 ? y + pad - l->oh + 1 : 0;
        for (int xx = 0; xx < l->iw; xx++) {
            const int kx_hi = xx + pad < k - 1 ? xx + pad : k - 1;
            const int kx_lo = xx + pad - l->ow + 1 > 0 ? xx + pad - l->ow + 1 : 0;
            const size_t at = ((size_t)y * l->iw + xx) * ic;
            int n = 0;
            for (int ky = ky_hi; ky >= ky_lo; ky--)
                for (int kx = kx_hi; kx >= kx_lo; kx--)
                    src[n++] = dcol + ((size_t)(y + pad - ky) * l->ow + (xx + pad - kx)) * E + (size_t)(ky * k + kx) * ic;
            kr->sum_rows(dx + at, src, n, ic, x ? x + at : NULL);
        }
    }
}

/* The weight gradient's items: fixed groups of kernel positions (ky, kx), dW's rows
 * [e0, e1) for those positions, each going through every image: gW[e0:e1, :] (+)=
 * col[:, e0:e1]^T dY_r, the patches gathered from the image. The groups do not depend on
 * the team (nor do the bits on the groups), and each has up to 160 rows: few, since
 * each item streams the batch's inputs and output gradients once (the cnn preset's
 * second layer: 2 groups, not 128-row groups' 3; 1 thread 4.9k -> 5.2k samples/s; one
 * group, 5.6k, left 2 threads unbalanced, 9.9k -> 8.6k). */
enum { GROUP_ROWS = 160 };

static int positions_per_group(const sn_layer *l)
{
    const int p = GROUP_ROWS / l->ic;
    return p < 1 ? 1 : p;
}

enum { FWD_IMAGES = SN_IMAGE_ROWS }; /* images a product stacks (conv_forward, conv_grad_rows) */

/* FWD_IMAGES images' patch matrices: conv_backward_input's dcol, and LeNet-style first
 * layers' weight gradient (conv_grad_rows). */
static size_t col_floats(const sn_layer *l)
{
    return (size_t)FWD_IMAGES * pixels(l) * patch(l);
}

/* The GEMM workspace of the products that do not gather. */
static size_t gemm_floats(const sn_layer *l)
{
    const int P = pixels(l), E = patch(l), kk = l->k * l->k;
    size_t f = 0;
    for (int g = 1; g <= FWD_IMAGES; g++) {
        const size_t x = sn_gemm_workspace(SN_N, SN_T, g * P, E, l->oc); /* conv_backward_input's */
        const size_t t = l->ic == 1 ? sn_gemm_workspace(SN_T, SN_N, l->oc, kk, g * P) : 0; /* grad_rows' */
        if (x > f) f = x;
        if (t > f) f = t;
    }
    return f;
}

static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

/* conv_grad_rows's transposed gradient (oc x K*K), one input channel */
static size_t gt_floats(const sn_layer *l)
{
    return l->ic == 1 ? round16((size_t)l->oc * l->k * l->k) : 0;
}

/* The gathered tables (ints, stored in the float workspace): pix for FWD_IMAGES images,
 * then pos; and FWD_IMAGES images with their border ('same'). */
static size_t gather_floats(const sn_layer *l)
{
    return round16((size_t)FWD_IMAGES * pixels(l) + (size_t)patch(l)) + FWD_IMAGES * padded_floats(l);
}

/* Per thread: [FWD_IMAGES patch matrices][gt][the gathered tables, bordered images][the
 * GEMM's workspace]. */
static size_t conv_workspace(const sn_layer *l, int rows)
{
    (void)rows;
    return round16(col_floats(l)) + gt_floats(l) + gather_floats(l) + gemm_floats(l);
}

typedef struct gather_ws {
    int *pix, *pos;
    float *border; /* FWD_IMAGES bordered images */
} gather_ws;

static gather_ws gather_area(const sn_layer *l, float *ws)
{
    float *at = ws + round16(col_floats(l)) + gt_floats(l);
    gather_ws g;
    g.pix = (int *)(void *)at;
    g.pos = g.pix + (size_t)FWD_IMAGES * pixels(l);
    g.border = at + round16((size_t)FWD_IMAGES * pixels(l) + (size_t)patch(l));
    return g;
}

static float *gemm_ws(const sn_layer *l, float *ws)
{
    return ws + round16(col_floats(l)) + gt_floats(l) + gather_floats(l);
}

/* Y (rows x oh*ow*oc) from X (rows x ih*iw*ic), FWD_IMAGES images a product, their
 * patches gathered from the images in place (the copy of im2col and its memcpy calls
 * were 13% of a cnn training step). Each output element is the same chain of
 * multiply-adds whatever the stack, so the bits do not depend on how images are grouped. */
static void conv_forward(const sn_layer *l, float *Y, const float *X, int rows, float *ws)
{
    const int P = pixels(l), E = patch(l);
    const sn_epilogue ep = { .bias = l->b, .relu = l->relu };
    const gather_ws gw = gather_area(l, ws);
    gather_tables(l, FWD_IMAGES, gather_stride(l), gw.pix, gw.pos);
    for (int r0 = 0; r0 < rows; r0 += FWD_IMAGES) {
        const int g = rows - r0 < FWD_IMAGES ? rows - r0 : FWD_IMAGES;
        const float *src = gather_source(l, X + (size_t)r0 * l->in, g, gw.border);
        sn_gemm_gathered_local(g * P, l->oc, E, src, gw.pix, gw.pos, l->W, l->oc, 0.0f, Y + (size_t)r0 * l->out, l->oc,
                               &ep);
    }
}

/* dcol = dY W^T: an nt product (oc wide rows of W read as B^T), which the outer path
 * packs into the same panels as an explicit transpose would give it, so the bits are the
 * same; the transpose (oc x E floats per call, strided writes) was 4% of a cnn step. Up
 * to FWD_IMAGES images in one product (their dY rows are contiguous): W is packed once
 * for them (121 x 288 x 64 one image at a time: 141 GFLOP/s; 484 x 288 x 64: 166). */
static void conv_backward_input(const sn_layer *l, float *dX, const float *dY, const float *X, int relu_in, int rows,
                                float *ws)
{
    const int P = pixels(l), E = patch(l), oc = l->oc;
    for (int r0 = 0; r0 < rows; r0 += FWD_IMAGES) {
        const int g = rows - r0 < FWD_IMAGES ? rows - r0 : FWD_IMAGES;
        sn_gemm_local(SN_N, SN_T, g * P, E, oc, dY + (size_t)r0 * l->out, oc, l->W, oc, 0.0f, ws, E, NULL,
                      gemm_ws(l, ws));
        for (int r = r0; r < r0 + g; r++)
            col2im(l, ws + (size_t)(r - r0) * P * E, dX + (size_t)r * l->in, relu_in ? X + (size_t)r * l->in : NULL);
    }
}

static int conv_grad_items(const sn_layer *l, int n, int parts)
{
    (void)n, (void)parts;
    const int per = positions_per_group(l);
    return (l->k * l->k + per - 1) / per;
}

static void conv_grad_item(const sn_layer *l, int item, int n, int parts, const float *X, const float *dY, float *gW,
                           float *gb, const sn_epilogue *update, float *ws)
{
    (void)parts;
    const int P = pixels(l), oc = l->oc, per = positions_per_group(l), q0 = item * per;
    const int q1 = q0 + per < l->k * l->k ? q0 + per : l->k * l->k;
    const int e0 = q0 * l->ic, width = (q1 - q0) * l->ic;
    const gather_ws gw = gather_area(l, ws);
    gather_tables(l, 1, 0, gw.pix, gw.pos);
    /* The last group (the shortest when they are uneven) also sums the bias gradient,
     * image by image while dY_r is in cache (a separate pass re-read all of dY: 11 MB a
     * batch for the first layer): db[j] = dY[0][j] + dY[1][j] + ... over the batch's
     * n * P rows in order, as sn_bias_grad does. */
    const int with_bias = q1 == l->k * l->k;
    if (with_bias) memset(gb, 0, sizeof(float) * (size_t)oc);
    for (int r = 0; r < n; r++) {
        const float *dy = dY + (size_t)r * l->out;
        const float *src = gather_source(l, X + (size_t)r * l->in, 1, gw.border);
        /* col^T (width x P) dY_r: G[e][pixel] = src[pos[e0 + e] + pix[pixel]] */
        sn_gemm_gathered_local(width, oc, P, src, gw.pos + e0, gw.pix, dy, oc, r ? 1.0f : 0.0f, gW + (size_t)e0 * oc,
                               oc, NULL);
        if (with_bias) sn_bias_grad_add(gb, dy, P, oc);
    }
    if (update) update->done(update->user, gW + (size_t)e0 * oc, width * oc);
    if (update && with_bias) update->done(update->user, gb, oc);
}

/* conv_grad_rows: the weight gradient of up to FWD_IMAGES images on their own. One input
 * channel: one product over the images' patches side by side (k = rows * P; the cnn
 * preset's first layer: 9 x 32 x 2704, gathered); more: image by image, each image's
 * product added to the sum (k = P). */
static void conv_grad_rows(const sn_layer *l, const float *X, const float *dY, int rows, float *gW, float *gb,
                           float *ws)
{
    const int P = pixels(l), E = patch(l), kk = l->k * l->k, oc = l->oc, R = rows * P;
    if (l->ic == 1 && oc < kk) {
        /* Fewer channels than kernel positions (LeNet-5's first layer: 6 of 25): gW^T (oc
         * x kk) = dY^T col, the positions in the vector lanes (25 of 32, where nn 25 x 6
         * filled 6 of 16: tn 6x25x3136 105 GFLOP/s, nn 44), then transposed. The same
         * products in the same order as col^T dY: the same bits. */
        float *gt = ws + round16(col_floats(l));
        for (int r = 0; r < rows; r++) im2col(l, X + (size_t)r * l->in, ws + (size_t)r * P * kk);
        sn_gemm_local(SN_T, SN_N, oc, kk, R, dY, oc, ws, kk, 0.0f, gt, kk, NULL, gemm_ws(l, ws));
        for (int e = 0; e < kk; e++)
            for (int j = 0; j < oc; j++) gW[(size_t)e * oc + j] = gt[(size_t)j * kk + e];
    } else {
        const gather_ws gw = gather_area(l, ws);
        if (l->ic == 1) { /* col^T (kk x R) dY (R x oc): G[q][p] = src[pos[q] + pix[p]], p over the images */
            gather_tables(l, rows, gather_stride(l), gw.pix, gw.pos);
            const float *src = gather_source(l, X, rows, gw.border);
            sn_gemm_gathered_local(kk, oc, R, src, gw.pos, gw.pix, dY, oc, 0.0f, gW, oc, NULL);
        } else { /* image by image (k = P) */
            gather_tables(l, 1, 0, gw.pix, gw.pos);
            for (int r = 0; r < rows; r++) {
                const float *src = gather_source(l, X + (size_t)r * l->in, 1, gw.border);
                sn_gemm_gathered_local(E, oc, P, src, gw.pos, gw.pix, dY + (size_t)r * l->out, oc, r ? 1.0f : 0.0f,
                                       gW, oc, NULL);
            }
        }
    }
    memset(gb, 0, sizeof(float) * (size_t)oc);
    sn_bias_grad_add(gb, dY, R, oc);
}

static int conv_grad_item_owner(const sn_layer *l, int item, int n, int parts)
{
    (void)l, (void)n;
    return item % parts;
}

const sn_layer_ops sn_conv_ops = {
    .type = "conv",
    .file_id = 4,
    .nextra = 6,
    .save_extra = conv_save,
    .load_extra = conv_load,
    .configure = conv_configure,
    .reshape = conv_reshape,
    .check = conv_check,
    .spec = conv_spec,
    .nweights = conv_nweights,
    .nbiases = conv_nbiases,
    .init = conv_init,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .backward_input = conv_backward_input,
    .grad_items = conv_grad_items,
    .grad_item = conv_grad_item,
    .grad_item_owner = conv_grad_item_owner,
    .grad_rows = conv_grad_rows,
};
