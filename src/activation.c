/* Activation layers: element-wise, no parameters, out = in. Each is its own layer in a
 * net spec ("relu", "leaky:0.1"); a ReLU straight after a dense layer is folded into that
 * layer's epilogue instead (model.c), which is how the default MLP runs.
 *   relu:   y = max(x, 0)                       dX = dY * [x > 0]
 *   leaky:  y = x > 0 ? x : slope * x           dX = dY * (x > 0 ? 1 : slope)
 * NaN passes through both (divergence stays visible). Every element is computed alone,
 * so the bits do not depend on how rows are split. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/layer.h"

/* ---- shared by every activation ---------------------------------------------- */

static int no_arg(sn_layer *l, const char *arg, int fuse_relu, sn_error *err)
{
    (void)fuse_relu;
    if (arg) return sn_fail(err, SN_EINVAL, "%s:%s: %s takes no argument", l->ops->type, arg, l->ops->type);
    sn_layer_same_output(l);
    l->relu = 0, l->arg = 0.0f;
    return SN_OK;
}

static int same_width(const sn_layer *l, sn_error *err)
{
    if (l->in < 1 || l->in > SN_MAX_WIDTH || l->out != l->in || l->relu != 0 || l->oh != l->ih || l->ow != l->iw ||
        l->oc != l->ic)
        return sn_fail(err, SN_EFORMAT, "%s %d -> %d relu=%d: an activation keeps its shape (1..%d) and has no relu flag",
                       l->ops->type, l->in, l->out, l->relu, SN_MAX_WIDTH);
    return SN_OK;
}

static void name_only(const sn_layer *l, int compact, char *out, size_t cap)
{
    (void)compact;
    snprintf(out, cap, "%s", l->ops->type);
}

/* ---- relu ------------------------------------------------------------------------ */

/* Y, X: rows x in. */
static void relu_forward(const sn_layer *l, float *restrict Y, const float *restrict X, int rows, float *ws)
{
    (void)ws;
    const size_t n = (size_t)rows * l->in;
    for (size_t i = 0; i < n; i++) Y[i] = X[i] < 0.0f ? 0.0f : X[i]; /* maxps-like: vectorises */
}

/* dX, dY, X: rows x in. relu_in: X came out of a fused ReLU, so [X > 0] masks too. */
static void relu_backward_input(const sn_layer *l, float *restrict dX, const float *restrict dY,
                                const float *restrict X, int relu_in, int rows, float *ws)
{
    (void)ws, (void)relu_in; /* [X > 0] is this layer's own mask already */
    const size_t n = (size_t)rows * l->in;
    for (size_t i = 0; i < n; i++) dX[i] = dY[i] * (float)isgreater(X[i], 0.0f); /* see factor() */
}

const sn_layer_ops sn_relu_ops = {
    .type = "relu",
    .file_id = 2,
    .configure = no_arg,
    .check = same_width,
    .spec = name_only,
    .reshape = sn_layer_same_output,
    .nweights = sn_layer_none,
    .nbiases = sn_layer_none,
    .init = sn_layer_no_init,
    .workspace = sn_layer_no_workspace,
    .forward = relu_forward,
    .backward_input = relu_backward_input,
    .grad_items = sn_layer_no_grad_items,
    .grad_item = sn_layer_no_grad_item,
    .grad_item_owner = sn_layer_any_owner,
};

/* ---- leaky ReLU -------------------------------------------------------------------- */

#define LEAKY_DEFAULT_SLOPE 0.01f

/* "leaky" or "leaky:SLOPE", 0 < SLOPE < 1. */
static int leaky_configure(sn_layer *l, const char *arg, int fuse_relu, sn_error *err)
{
    (void)fuse_relu;
    char *end = NULL;
    errno = 0;
    const float slope = arg ? strtof(arg, &end) : LEAKY_DEFAULT_SLOPE;
    if (arg && (end == arg || *end || errno || !(slope > 0.0f && slope < 1.0f)))
        return sn_fail(err, SN_EINVAL, "leaky:%s: expected leaky or leaky:SLOPE with 0 < SLOPE < 1", arg);
    sn_layer_same_output(l);
    l->relu = 0, l->arg = slope;
    return SN_OK;
}

/* The record's one extra field: the slope's bits. */
static void leaky_save(const sn_layer *l, uint32_t *f)
{
    memcpy(&f[0], &l->arg, 4);
}

static void leaky_load(sn_layer *l, const uint32_t *f)
{
    memcpy(&l->arg, &f[0], 4);
}

static int leaky_check(const sn_layer *l, sn_error *err)
{
    int rc = same_width(l, err);
    if (!rc && !(l->arg > 0.0f && l->arg < 1.0f))
        rc = sn_fail(err, SN_EFORMAT, "leaky slope %g: expected 0 < slope < 1", l->arg);
    return rc;
}

/* 1 for x > 0, else below; exactly (pos + (1 - pos) * below is 1 or below), so y = x *
 * factor is the formula's bits. Arithmetic on the quiet comparison isgreater instead of
 * `x > 0 ? x : below * x` because gcc keeps a branch on a trapping float compare unless
 * -fno-trapping-math: that loop ran scalar with a mispredicted branch per element, 20%
 * of a 784-100-10 training step; this one vectorises. */
static inline float factor(float x, float below)
{
    const float pos = (float)isgreater(x, 0.0f);
    return pos + (1.0f - pos) * below;
}

static void leaky_spec(const sn_layer *l, int compact, char *out, size_t cap)
{
    (void)compact;
    snprintf(out, cap, "leaky:%g", l->arg);
}

static void leaky_forward(const sn_layer *l, float *restrict Y, const float *restrict X, int rows, float *ws)
{
    (void)ws;
    const float slope = l->arg;
    const size_t n = (size_t)rows * l->in;
    for (size_t i = 0; i < n; i++) Y[i] = X[i] * factor(X[i], slope);
}

static void leaky_backward_input(const sn_layer *l, float *restrict dX, const float *restrict dY,
                                 const float *restrict X, int relu_in, int rows, float *ws)
{
    (void)ws;
    const float slope = l->arg, below = relu_in ? 0.0f : slope;
    const size_t n = (size_t)rows * l->in;
    for (size_t i = 0; i < n; i++) dX[i] = dY[i] * factor(X[i], below);
}

const sn_layer_ops sn_leaky_ops = {
    .type = "leaky",
    .file_id = 3,
    .nextra = 1,
    .save_extra = leaky_save,
    .load_extra = leaky_load,
    .configure = leaky_configure,
    .check = leaky_check,
    .spec = leaky_spec,
    .reshape = sn_layer_same_output,
    .nweights = sn_layer_none,
    .nbiases = sn_layer_none,
    .init = sn_layer_no_init,
    .workspace = sn_layer_no_workspace,
    .forward = leaky_forward,
    .backward_input = leaky_backward_input,
    .grad_items = sn_layer_no_grad_items,
    .grad_item = sn_layer_no_grad_item,
    .grad_item_owner = sn_layer_any_owner,
};
