/* The fully connected layer: Y = X W + b (X rows x in, W in x out, b out), ReLU after
 * every layer but the last. In x out makes the forward product an nn product with a
 * narrow n and the weight gradient X^T dY a tn one: the shapes the kernels are tuned for.
 *   forward:        Y = relu(X W + b)                   (bias and ReLU in the GEMM's epilogue)
 *   input gradient: dX = (dY W^T) * [X > 0]             (the mask fused into the write-back)
 *   weights:        dW = X^T dY, db = column sums of dY (each element over the batch in order) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/layer.h"
#include "scratchnet/layers.h"
#include "scratchnet/model.h" /* sn_share_rows */

/* Weight gradients below this many multiply-adds are one item: one thread computes the
 * whole of it while the others do other layers. */
#define SPLIT_MIN_FMAS (1L << 20)

/* "denseN" or "dense:N": N outputs; an image input is flattened (NHWC order). A ReLU
 * after it is fused (model.c folds "dense:N,relu"). */
static int dense_configure(sn_layer *l, const char *arg, int fuse_relu, sn_error *err)
{
    char *end = NULL;
    errno = 0;
    const long out = arg ? strtol(arg, &end, 10) : 0;
    if (!arg || end == arg || *end || errno || out < 1 || out > SN_MAX_WIDTH)
        return sn_fail(err, SN_EINVAL, "dense%s: expected denseN or dense:N with N outputs in 1..%d", arg ? arg : "",
                       SN_MAX_WIDTH);
    l->out = (int)out;
    sn_layer_flat_output(l);
    l->relu = fuse_relu, l->arg = 0.0f;
    return SN_OK;
}

static int dense_check(const sn_layer *l, sn_error *err)
{
    if (l->in < 1 || l->in > SN_MAX_WIDTH || l->out < 1 || l->out > SN_MAX_WIDTH || (l->relu != 0 && l->relu != 1) ||
        l->arg != 0.0f || l->oh != 1 || l->ow != 1 || l->oc != l->out)
        return sn_fail(err, SN_EFORMAT, "dense %d -> %d relu=%d: expected 1..%d inputs and outputs, relu 0 or 1",
                       l->in, l->out, l->relu, SN_MAX_WIDTH);
    return SN_OK;
}

static void dense_spec(const sn_layer *l, int compact, char *out, size_t cap)
{
    snprintf(out, cap, compact ? "dense%d" : "dense:%d", l->out);
}

static size_t dense_nweights(const sn_layer *l)
{
    return (size_t)l->in * l->out;
}

static size_t dense_nbiases(const sn_layer *l)
{
    return (size_t)l->out;
}

static void dense_init(const sn_layer *l, sn_rng *rng)
{
    const double std = sqrt(2.0 / l->in); /* He: keeps ReLU activations' variance constant */
    for (size_t i = 0; i < (size_t)l->in * l->out; i++) l->W[i] = (float)(std * sn_rng_normal(rng));
    memset(l->b, 0, sizeof(float) * (size_t)l->out);
}

static size_t dense_workspace(const sn_layer *l, int rows)
{
    return sn_linear_workspace(rows, l->in, l->out);
}

static void dense_forward(const sn_layer *l, float *Y, const float *X, int rows, float *ws)
{
    sn_linear_forward(Y, X, l->W, l->b, rows, l->in, l->out, l->relu, ws);
}

static void dense_backward_input(const sn_layer *l, float *dX, const float *dY, const float *X, int relu_in, int rows,
                                 float *ws)
{
    sn_linear_backward_input(dX, dY, l->W, relu_in ? X : NULL, rows, l->in, l->out, ws);
}

static int is_split(const sn_layer *l, int n)
{
    return (long)l->in * l->out * n >= SPLIT_MIN_FMAS;
}

/* A small layer: one item (dW, db, and their update: W and b are adjacent in the block).
 * A large one: `parts` bias shares, then groups of GROUP_ROWS of dW's rows. The groups do
 * not depend on the team: a product's shape picks its kernel, and so its order of
 * additions (shares by team size could give different bits on 1 and 2 threads). */
enum { GROUP_ROWS = 128 };

static int dense_grad_items(const sn_layer *l, int n, int parts)
{
    return is_split(l, n) ? parts + (l->in + GROUP_ROWS - 1) / GROUP_ROWS : 1;
}

void sn_dense_bias_share(const sn_layer *l, float *gb, const float *dY, int n, int part, int parts,
                         const sn_epilogue *update)
{
    int j0, cols;
    sn_share_rows(l->out, 16, part, parts, &j0, &cols);
    if (cols <= 0) return;
    sn_bias_grad(gb, dY, n, l->out, j0, j0 + cols);
    if (update) update->done(update->user, gb + j0, cols);
}

static void dense_grad_item(const sn_layer *l, int item, int n, int parts, const float *X, const float *dY, float *gW,
                            float *gb, const sn_epilogue *update, float *ws)
{
    const int in = l->in, out = l->out;
    if (!is_split(l, n)) {
        sn_gemm_local(SN_T, SN_N, in, out, n, X, in, dY, out, 0.0f, gW, out, NULL, ws);
        sn_bias_grad(gb, dY, n, out, 0, out);
        if (update) update->done(update->user, gW, in * out + out);
        return;
    }
    if (item < parts) {
        sn_dense_bias_share(l, gb, dY, n, item, parts, update);
        return;
    }
    const int i0 = (item - parts) * GROUP_ROWS, rows = in - i0 < GROUP_ROWS ? in - i0 : GROUP_ROWS;
    sn_gemm_local(SN_T, SN_N, rows, out, n, X + i0, in, dY, out, 0.0f, gW + (size_t)i0 * out, out, update, ws);
}

static int dense_grad_item_owner(const sn_layer *l, int item, int n, int parts)
{
    return is_split(l, n) ? item % parts : -1; /* a whole small layer: any thread */
}

const sn_layer_ops sn_dense_ops = {
    .type = "dense",
    .file_id = 1,
    .configure = dense_configure,
    .check = dense_check,
    .spec = dense_spec,
    .reshape = sn_layer_flat_output,
    .nweights = dense_nweights,
    .nbiases = dense_nbiases,
    .init = dense_init,
    .workspace = dense_workspace,
    .forward = dense_forward,
    .backward_input = dense_backward_input,
    .grad_items = dense_grad_items,
    .grad_item = dense_grad_item,
    .grad_item_owner = dense_grad_item_owner,
};

void sn_dense_block_forward(const sn_layer *l, float *P, const float *Xb, int k0, int k1, int n, float *ws)
{
    sn_gemm_local(SN_N, SN_N, n, l->out, k1 - k0, Xb, k1 - k0, l->W + (size_t)k0 * l->out, l->out, 0.0f, P, l->out,
                  NULL, ws);
}

/* One row: y = relu(((P0 + P1) + P2) + ... + bias), the partials summed in block order
 * (the same bits whoever computed them). Block by block over the whole row, so every
 * loop runs across the outputs and vectorises (a loop over the blocks inside the one over
 * outputs did not: 18% of a training step); each element still sees the same additions
 * in the same order. */
static void block_output_row(float *restrict y, const float *restrict p, size_t pstride, int nblocks,
                             const float *restrict bias, int out, int relu)
{
    for (int j = 0; j < out; j++) y[j] = p[j];
    for (int b = 1; b < nblocks; b++) {
        const float *restrict pb = p + b * pstride;
        for (int j = 0; j < out; j++) y[j] += pb[j];
    }
    for (int j = 0; j < out; j++) {
        const float s = y[j] + bias[j];
        y[j] = relu && s < 0.0f ? 0.0f : s; /* NaN passes: divergence stays visible */
    }
}

void sn_dense_block_output(const sn_layer *l, float *Y, const float *P, size_t pstride, int nblocks, int rows)
{
    for (int r = 0; r < rows; r++)
        block_output_row(Y + (size_t)r * l->out, P + (size_t)r * l->out, pstride, nblocks, l->b, l->out, l->relu);
}

void sn_dense_block_grad(const sn_layer *l, float *gW, const float *Xb, int k0, int k1, const float *dY, int n,
                         const sn_epilogue *update, float *ws)
{
    if (k1 > k0)
        sn_gemm_local(SN_T, SN_N, k1 - k0, l->out, n, Xb, k1 - k0, dY, l->out, 0.0f, gW + (size_t)k0 * l->out, l->out,
                      update, ws);
}
