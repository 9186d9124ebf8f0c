/* scratchnet — layer kernels, llm.c style: outputs first, raw float pointers, sizes last.
 * Every function is OpenMP work-shared without a parallel region of its own (the GEMMs
 * open one if called outside), so a whole training step can run in one team. The
 * workspace ws holds sn_linear_workspace() floats. */
#ifndef SCRATCHNET_LAYERS_H
#define SCRATCHNET_LAYERS_H

#include <stddef.h>
#include <stdint.h>

size_t sn_linear_workspace(int B, int in, int out);

/* Y (B x out) = X (B x in) * W^T + b, then ReLU if relu. W is (out x in), b is (out). */
void sn_linear_forward(float *Y, const float *X, const float *W, const float *b,
                       int B, int in, int out, int relu, float *ws);

/* Given dY (B x out) = dLoss/dY:
 *   dW (out x in) = dY^T * X;  db (out) = sum over the batch of dY;
 *   dX (B x in) = dY * W, zeroed where mask (B x in) <= 0 (ReLU' of the previous layer,
 *   fused into the product); dX NULL skips it (the input layer needs no gradient). */
void sn_linear_backward(float *dX, float *dW, float *db, const float *dY, const float *X,
                        const float *W, const float *mask, int B, int in, int out, float *ws);

/* Fused softmax + cross-entropy over logits Z (B x C) with labels y (B):
 *   loss[b] = logsumexp(Z[b]) - Z[b][y[b]]   (stable for any finite logits)
 *   dZ (B x C) = (softmax(Z) - onehot(y)) * grad_scale  (grad_scale = 1/B: batch mean)
 * dZ may be NULL (evaluation); correct (B) receives 1 where argmax == y if non-NULL. */
void sn_softmax_xent(float *dZ, float *loss, uint8_t *correct, const float *Z,
                     const uint8_t *y, int B, int C, float grad_scale);

/* P (B x C) = softmax(Z) row by row, max-subtracted. */
void sn_softmax(float *P, const float *Z, int B, int C);

#endif
