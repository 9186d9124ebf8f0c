/* Layer kernels: linear (+ fused bias/ReLU), bias gradients, and softmax + cross-entropy
 * (the loss). The dense layer (dense.c) is built from them.
 * The gradient of cross-entropy through softmax is p - y: with L = -log p_y and
 * p_k = e^{z_k} / sum e^{z}, dL/dz_k = p_k - [k == y]. Fusing both avoids the
 * unstable division by p that a separate softmax backward would need. */
#include "scratchnet/layers.h"

#include <math.h>

#include "kernels/kernels.h"
#include "scratchnet/gemm.h"

size_t sn_linear_workspace(int B, int in, int out)
{
    size_t f = sn_gemm_workspace(SN_N, SN_N, B, out, in);
    size_t w = sn_gemm_workspace(SN_T, SN_N, in, out, B);
    size_t x = sn_gemm_workspace(SN_N, SN_T, B, in, out);
    if (w > f) f = w;
    if (x > f) f = x;
    return f;
}

void sn_linear_forward(float *Y, const float *X, const float *W, const float *b,
                       int B, int in, int out, int relu, float *ws)
{
    sn_epilogue ep = { .bias = b, .relu = relu };
    sn_gemm_local(SN_N, SN_N, B, out, in, X, in, W, out, 0.0f, Y, out, &ep, ws);
}

void sn_linear_backward_input(float *dX, const float *dY, const float *W, const float *mask,
                              int B, int in, int out, float *ws)
{
    sn_epilogue ep = { .mask = mask, .ldmask = in };
    sn_gemm_local(SN_N, SN_T, B, in, out, dY, out, W, out, 0.0f, dX, in, mask ? &ep : NULL, ws);
}

void sn_bias_grad_add(float *restrict db, const float *restrict dY, int B, int out)
{
    for (int r = 0; r < B; r++) {
        const float *restrict y = dY + (size_t)r * out;
        for (int j = 0; j < out; j++) db[j] += y[j];
    }
}

void sn_bias_grad(float *db, const float *dY, int B, int out, int j0, int j1)
{
    /* Rows outer, columns inner: the inner loop vectorises across columns, and each
     * column still adds its rows in order 0..B-1 (a column-at-a-time loop would be one
     * long chain of dependent adds: 4 cycles a row). */
    for (int j = j0; j < j1; j++) db[j] = 0.0f;
    for (int r = 0; r < B; r++) {
        const float *y = dY + (size_t)r * out;
        for (int j = j0; j < j1; j++) db[j] += y[j];
    }
}

enum { SOFTMAX_SCRATCH = 64 }; /* exponentials per chunk when there is no dZ to keep them in */

void sn_softmax_xent(float *dZ, float *loss, uint8_t *correct, const float *Z,
                     const uint8_t *y, int B, int C, float grad_scale)
{
    const sn_kernels *kr = sn_kernels_active();
    float scratch[SOFTMAX_SCRATCH];
    for (int r = 0; r < B; r++) {
        const float *z = Z + (size_t)r * C;
        int arg = 0;
        float mx = z[0];
        for (int k = 1; k < C; k++)
            if (z[k] > mx) mx = z[k], arg = k;
        /* Subtracting the max makes every exponent <= 0: no overflow for any finite
         * logits, and the largest term is exactly 1, so the sum is never 0. */
        float sum = 0.0f;
        float *d = dZ ? dZ + (size_t)r * C : NULL;
        if (d) { /* kept for the gradient: one exp per logit */
            kr->exp_shifted(d, z, mx, C);
            for (int k = 0; k < C; k++) sum += d[k];
        } else {
            for (int k0 = 0; k0 < C; k0 += SOFTMAX_SCRATCH) {
                const int kn = C - k0 < SOFTMAX_SCRATCH ? C - k0 : SOFTMAX_SCRATCH;
                kr->exp_shifted(scratch, z + k0, mx, kn);
                for (int k = 0; k < kn; k++) sum += scratch[k];
            }
        }
        loss[r] = logf(sum) - (z[y[r]] - mx);
        if (correct) correct[r] = (uint8_t)(arg == y[r]);
        if (d) {
            float inv = 1.0f / sum;
            for (int k = 0; k < C; k++) d[k] = (d[k] * inv - (k == y[r] ? 1.0f : 0.0f)) * grad_scale;
        }
    }
}

void sn_softmax(float *P, const float *Z, int B, int C)
{
    for (int r = 0; r < B; r++) {
        const float *z = Z + (size_t)r * C;
        float mx = z[0];
        for (int k = 1; k < C; k++)
            if (z[k] > mx) mx = z[k];
        double sum = 0.0;
        for (int k = 0; k < C; k++) sum += exp((double)z[k] - mx);
        for (int k = 0; k < C; k++) P[(size_t)r * C + k] = (float)(exp((double)z[k] - mx) / sum);
    }
}
