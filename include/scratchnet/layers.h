/* scratchnet — layer kernels, llm.c style: outputs first, raw float pointers, sizes last.
 * Row-wise work (forward, loss, input gradients) is computed by the calling thread alone
 * on the rows it is given: a training step gives each thread its own rows of the batch,
 * so the whole forward and backward pass needs no barrier. Work that reduces over the
 * batch (weight and bias gradients) is cut into items by the layer (dense.c). ws holds
 * sn_linear_workspace() floats, per thread. */
#ifndef SCRATCHNET_LAYERS_H
#define SCRATCHNET_LAYERS_H

#include <stddef.h>
#include <stdint.h>

size_t sn_linear_workspace(int B, int in, int out);

/* Y (B x out) = X (B x in) * W + b, then ReLU if relu. W is (in x out), b is (out).
 * Calling thread only. */
void sn_linear_forward(float *Y, const float *X, const float *W, const float *b,
                       int B, int in, int out, int relu, float *ws);

/* dX (B x in) = dY (B x out) * W^T, zeroed where mask (B x in) <= 0 (ReLU' of the previous
 * layer, fused into the product's write-back). Calling thread only. */
void sn_linear_backward_input(float *dX, const float *dY, const float *W, const float *mask,
                              int B, int in, int out, float *ws);

/* db[j0..j1) = sum over the B rows of dY (B x out) of columns j0..j1, each column summed
 * in row order: the same bits however the columns are split among threads. Calling
 * thread only. */
void sn_bias_grad(float *db, const float *dY, int B, int out, int j0, int j1);
/* db (out) += the B rows of dY (B x out), in row order: sn_bias_grad continued over more
 * rows (the same additions in the same order). */
void sn_bias_grad_add(float *db, const float *dY, int B, int out);

/* Fused softmax + cross-entropy over logits Z (B x C) with labels y (B), calling thread only:
 *   loss[b] = logsumexp(Z[b]) - Z[b][y[b]]   (stable for any finite logits)
 *   dZ (B x C) = (softmax(Z) - onehot(y)) * grad_scale  (grad_scale = 1/B: batch mean)
 * dZ may be NULL (evaluation); correct (B) receives 1 where argmax == y if non-NULL. */
void sn_softmax_xent(float *dZ, float *loss, uint8_t *correct, const float *Z,
                     const uint8_t *y, int B, int C, float grad_scale);

/* P (B x C) = softmax(Z) row by row, max-subtracted. */
void sn_softmax(float *P, const float *Z, int B, int C);

#endif
