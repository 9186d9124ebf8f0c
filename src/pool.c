/* Max pooling: P x P windows, stride P (non-overlapping; a last partial row or column of
 * the input is dropped, as PyTorch's floor mode does), per channel, NHWC images.
 *   forward:        y = the window's largest x (the first of equals; NaN wins: a
 *                   diverged activation stays visible)
 *   input gradient: dY goes to that element, 0 to the others (and to dropped ones),
 *                   times [X > 0] after a ReLU
 * The winner is found again in the backward pass by the same scan, or, in training,
 * recorded by the forward pass (forward_record: a float code per output, its window
 * position plus P * P if it is > 0) so that the input need not be kept (train.c).
 * Each window is computed alone, so bits do not depend on how rows are split. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "scratchnet/layer.h"

static void pool_reshape(sn_layer *l)
{
    l->oh = l->k > 0 ? l->ih / l->k : 0;
    l->ow = l->k > 0 ? l->iw / l->k : 0;
    l->oc = l->ic;
    l->out = (long)l->oh * l->ow * l->oc <= SN_MAX_WIDTH ? l->oh * l->ow * l->oc : 0; /* 0: refused by check */
}

/* "poolP", P = 2..8. */
static int pool_configure(sn_layer *l, const char *arg, int fuse_relu, sn_error *err)
{
    (void)fuse_relu;
    char *end = NULL;
    errno = 0;
    const long p = arg ? strtol(arg, &end, 10) : 0;
    if (!arg || end == arg || *end || errno || p < 2 || p > 8)
        return sn_fail(err, SN_EINVAL, "pool%s: expected poolP with P x P windows, P = 2..8", arg ? arg : "");
    if (l->ih < p || l->iw < p)
        return sn_fail(err, SN_EINVAL, "pool%ld: a %ldx%ld window does not fit a %dx%dx%d input", p, p, p, l->ih, l->iw,
                       l->ic);
    l->k = (int)p, l->relu = 0, l->arg = 0.0f, l->same = 0;
    pool_reshape(l);
    return SN_OK;
}

static int pool_check(const sn_layer *l, sn_error *err)
{
    sn_layer shaped = *l;
    pool_reshape(&shaped);
    if (l->k < 2 || l->k > 8 || l->oh < 1 || l->ow < 1 || shaped.oh != l->oh || shaped.ow != l->ow ||
        l->oc != l->ic || l->out != (long)l->oh * l->ow * l->oc || l->relu != 0 || l->arg != 0.0f || l->same != 0 ||
        (long)l->ih * l->iw * l->ic != l->in)
        return sn_fail(err, SN_EFORMAT, "pool %dx%dx%d -> %dx%dx%d with %dx%d windows: inconsistent shapes", l->ih,
                       l->iw, l->ic, l->oh, l->ow, l->oc, l->k, l->k);
    return SN_OK;
}

static void pool_spec(const sn_layer *l, int compact, char *out, size_t cap)
{
    (void)compact;
    snprintf(out, cap, "pool%d", l->k);
}

static void pool_save(const sn_layer *l, uint32_t *f)
{
    f[0] = (uint32_t)l->ih, f[1] = (uint32_t)l->iw, f[2] = (uint32_t)l->ic, f[3] = (uint32_t)l->k;
}

static void pool_load(sn_layer *l, const uint32_t *f)
{
    l->ih = f[0] <= SN_MAX_WIDTH ? (int)f[0] : 0, l->iw = f[1] <= SN_MAX_WIDTH ? (int)f[1] : 0;
    l->ic = f[2] <= SN_MAX_WIDTH ? (int)f[2] : 0, l->k = f[3] <= 8 ? (int)f[3] : 0;
    if ((long)l->ih * l->iw * l->ic != l->in) l->ih = l->iw = 0; /* refused by check */
}

static size_t pool_workspace(const sn_layer *l, int rows)
{
    (void)rows;
    return 2 * (size_t)l->ic; /* the backward pass's best[] and at[] */
}

/* Whether x beats the best so far: larger, or NaN (a diverged activation stays
 * visible: no number beats a NaN, and a NaN beats anything); the first of equal numbers
 * stays.
 * Quiet comparisons (isgreater, isunordered) let gcc vectorise the loops over channels
 * that call this. */
static inline int beats(float x, float best)
{
    return isgreater(x, best) | (x != x); /* != is a quiet compare too */
}

/* Y (rows x oh*ow*oc) from X (rows x ih*iw*ic): for each window, channels innermost (each
 * input row of a window is a run of p * ic floats). 2 x 2 windows, the common case, in
 * one pass over the four inputs. */
static void pool_forward(const sn_layer *l, float *Y, const float *X, int rows, float *ws)
{
    (void)ws;
    const int p = l->k, ic = l->ic;
    const size_t down = (size_t)l->iw * ic; /* one input row */
    const sn_kernels *kr = sn_kernels_active();
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * l->in;
        float *y = Y + (size_t)r * l->out;
        for (int oy = 0; oy < l->oh; oy++) {
            if (p == 2) { /* a row of windows by the ISA's kernel (kernels.h) */
                const float *x0 = x + (size_t)oy * 2 * down;
                kr->maxpool4(x0, x0 + ic, x0 + down, x0 + down + ic, y + (size_t)oy * l->ow * ic, ic, l->ow);
                continue;
            }
            for (int ox = 0; ox < l->ow; ox++) {
                float *restrict yo = y + ((size_t)oy * l->ow + ox) * ic;
                const float *restrict x0 = x + ((size_t)oy * p * l->iw + (size_t)ox * p) * ic;
                memcpy(yo, x0, sizeof(float) * (size_t)ic);
                for (int dy = 0; dy < p; dy++)
                    for (int dx = 0; dx < p; dx++) {
                        const float *restrict xs = x0 + (size_t)dy * down + (size_t)dx * ic;
                        for (int c = 0; c < ic; c++) yo[c] = beats(xs[c], yo[c]) ? xs[c] : yo[c];
                    }
            }
        }
    }
}


/* 2 x 2 windows: each of the four inputs gets the gradient if it won, else 0, written
 * directly (the windows tile the input but for a dropped last row or column, zeroed
 * apart): no clearing pass, no scatter. */
static void pool2_backward_row(const sn_layer *l, float *dx, const float *dy, const float *x, int relu_in)
{
    const sn_kernels *kr = sn_kernels_active();
    const int ic = l->ic;
    const size_t down = (size_t)l->iw * ic;
    if (l->ih > 2 * l->oh) memset(dx + (size_t)2 * l->oh * down, 0, sizeof(float) * down);
    for (int oy = 0; oy < l->oh; oy++) {
        if (l->iw > 2 * l->ow) memset(dx + (size_t)2 * oy * down + (size_t)2 * l->ow * ic, 0, sizeof(float) * ic);
        if (l->iw > 2 * l->ow) memset(dx + (size_t)(2 * oy + 1) * down + (size_t)2 * l->ow * ic, 0, sizeof(float) * ic);
        const size_t at = (size_t)2 * oy * down;
        const float *x0 = x + at;
        float *d0 = dx + at;
        kr->maxpool4_back(x0, x0 + ic, x0 + down, x0 + down + ic, dy + (size_t)oy * l->ow * ic, d0, d0 + ic, d0 + down,
                          d0 + down + ic, ic, l->ow, relu_in);
    }
}

/* The winners are found again by the forward pass's scan, channels innermost: best[c]
 * and at[c] (the window element it came from), then one write per channel. */
static void pool_backward_input(const sn_layer *l, float *dX, const float *dY, const float *X, int relu_in, int rows,
                                float *ws)
{
    const int p = l->k, ic = l->ic;
    float *restrict best = ws;
    int *restrict at = (int *)(ws + ic);
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * l->in, *dy = dY + (size_t)r * l->out;
        float *dx = dX + (size_t)r * l->in;
        if (p == 2) {
            pool2_backward_row(l, dx, dy, x, relu_in);
            continue;
        }
        memset(dx, 0, sizeof(float) * (size_t)l->in);
        for (int oy = 0; oy < l->oh; oy++)
            for (int ox = 0; ox < l->ow; ox++) {
                const size_t base = ((size_t)oy * p * l->iw + (size_t)ox * p) * ic;
                memcpy(best, x + base, sizeof(float) * (size_t)ic);
                for (int c = 0; c < ic; c++) at[c] = 0;
                for (int dy_ = 0; dy_ < p; dy_++)
                    for (int dx_ = 0; dx_ < p; dx_++) {
                        const int off = (dy_ * l->iw + dx_) * ic;
                        const float *restrict xs = x + base + off;
                        for (int c = 0; c < ic; c++) {
                            const int take = beats(xs[c], best[c]);
                            best[c] = take ? xs[c] : best[c];
                            at[c] = take ? off : at[c];
                        }
                    }
                const float *g = dy + ((size_t)oy * l->ow + ox) * ic;
                /* After a ReLU, a window of zeros passes no gradient (ReLU'(0) = 0). */
                for (int c = 0; c < ic; c++)
                    dx[base + (size_t)at[c] + c] = relu_in && !isgreater(best[c], 0.0f) ? 0.0f : g[c];
            }
    }
}

/* forward, also writing R (rows x out): each output's winner, its position in the window
 * (dy * P + dx) plus P * P if it is > 0. */
static void pool_forward_record(const sn_layer *l, float *Y, float *R, const float *X, int rows, float *ws)
{
    (void)ws;
    const int p = l->k, ic = l->ic, pp = p * p;
    const size_t down = (size_t)l->iw * ic;
    const sn_kernels *kr = sn_kernels_active();
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * l->in;
        float *y = Y + (size_t)r * l->out, *rec = R + (size_t)r * l->out;
        for (int oy = 0; oy < l->oh; oy++) {
            if (p == 2) {
                const float *x0 = x + (size_t)oy * 2 * down;
                const size_t at = (size_t)oy * l->ow * ic;
                kr->maxpool4_rec(x0, x0 + ic, x0 + down, x0 + down + ic, y + at, rec + at, ic, l->ow);
                continue;
            }
            for (int ox = 0; ox < l->ow; ox++)
                for (int c = 0; c < ic; c++) {
                    const float *x0 = x + ((size_t)oy * p * l->iw + (size_t)ox * p) * ic + c;
                    float best = x0[0];
                    int win = 0;
                    for (int w = 1; w < pp; w++) {
                        const float v = x0[(size_t)(w / p) * down + (size_t)(w % p) * ic];
                        if (beats(v, best)) best = v, win = w;
                    }
                    const size_t o = ((size_t)oy * l->ow + ox) * ic + c;
                    y[o] = best;
                    rec[o] = (float)(win + (isgreater(best, 0.0f) ? pp : 0));
                }
        }
    }
}

/* backward_input from R (pool_forward_record) instead of X. */
static void pool_backward_recorded(const sn_layer *l, float *dX, const float *dY, const float *R, int relu_in,
                                   int rows, float *ws)
{
    (void)ws;
    const int p = l->k, ic = l->ic, pp = p * p;
    const size_t down = (size_t)l->iw * ic;
    const sn_kernels *kr = sn_kernels_active();
    for (int r = 0; r < rows; r++) {
        const float *dy = dY + (size_t)r * l->out, *rec = R + (size_t)r * l->out;
        float *dx = dX + (size_t)r * l->in;
        if (p != 2) {
            memset(dx, 0, sizeof(float) * (size_t)l->in);
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++)
                    for (int c = 0; c < ic; c++) {
                        const size_t o = ((size_t)oy * l->ow + ox) * ic + c;
                        const int code = (int)rec[o], w = code % pp;
                        if (relu_in && code < pp) continue; /* the winner is not > 0: ReLU'(0) = 0 */
                        dx[((size_t)oy * p * l->iw + (size_t)ox * p) * ic + (size_t)(w / p) * down +
                           (size_t)(w % p) * ic + c] = dy[o];
                    }
            continue;
        }
        /* 2 x 2: as pool2_backward_row, every input written once (zeros for the dropped) */
        if (l->ih > 2 * l->oh) memset(dx + (size_t)2 * l->oh * down, 0, sizeof(float) * down);
        for (int oy = 0; oy < l->oh; oy++) {
            if (l->iw > 2 * l->ow) {
                memset(dx + (size_t)2 * oy * down + (size_t)2 * l->ow * ic, 0, sizeof(float) * ic);
                memset(dx + (size_t)(2 * oy + 1) * down + (size_t)2 * l->ow * ic, 0, sizeof(float) * ic);
            }
            float *d0 = dx + (size_t)2 * oy * down;
            const size_t at = (size_t)oy * l->ow * ic;
            kr->maxpool4_back_rec(rec + at, dy + at, d0, d0 + ic, d0 + down, d0 + down + ic, ic, l->ow, relu_in);
        }
    }
}

const sn_layer_ops sn_pool_ops = {
    .type = "pool",
    .file_id = 5,
    .nextra = 4,
    .save_extra = pool_save,
    .load_extra = pool_load,
    .configure = pool_configure,
    .reshape = pool_reshape,
    .check = pool_check,
    .spec = pool_spec,
    .nweights = sn_layer_none,
    .nbiases = sn_layer_none,
    .init = sn_layer_no_init,
    .workspace = pool_workspace,
    .forward = pool_forward,
    .backward_input = pool_backward_input,
    .grad_items = sn_layer_no_grad_items,
    .grad_item = sn_layer_no_grad_item,
    .grad_item_owner = sn_layer_any_owner,
    .forward_record = pool_forward_record,
    .backward_recorded = pool_backward_recorded,
};
