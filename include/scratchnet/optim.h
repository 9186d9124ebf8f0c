/* scratchnet — optimisers over the flat parameter block.
 *   sgd:      w -= lr * g
 *   momentum: v = 0.9 v + g;  w -= lr * v
 *   nesterov: v = 0.9 v + g;  w -= lr * (g + 0.9 v)   (the look-ahead form PyTorch uses)
 *   adam:     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *             w -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)   (b1 .9, b2 .999, eps 1e-8) */
#ifndef SCRATCHNET_OPTIM_H
#define SCRATCHNET_OPTIM_H

#include <stddef.h>

#include "scratchnet/error.h"

/* Numbered as stored in checkpoints; their names, state sizes and updates are one
 * registry in optim.c. */
typedef enum sn_opt_kind { SN_OPT_SGD = 0, SN_OPT_MOMENTUM = 1, SN_OPT_ADAM = 2, SN_OPT_NESTEROV = 3, SN_OPT_COUNT } sn_opt_kind;

typedef struct sn_optimizer {
    sn_opt_kind kind;
    float lr;      /* base learning rate */
    float lr_now;  /* rate of the next update (the trainer's schedule sets it) */
    float step_size; /* the next update's step: lr_now, bias-corrected for Adam (sn_opt_prepare) */
    long step;     /* updates applied so far */
    size_t n;      /* parameters */
    float *m, *v;  /* state: momentum buffer / Adam moments (NULL when unused), owned */
} sn_optimizer;

int sn_opt_create(sn_optimizer *o, sn_opt_kind kind, float lr, size_t n, sn_error *err);
void sn_opt_free(sn_optimizer *o);
/* Computes the constants of update number o->step + 1 (call outside parallel regions,
 * after setting lr_now; the caller increments o->step after the update). */
void sn_opt_prepare(sn_optimizer *o);
/* Applies the prepared update to params[off .. off + n) on the calling thread. An
 * element's result does not depend on how the parameters are split into ranges, so the
 * trainer can update each weight tile on the thread that just computed its gradient. */
void sn_opt_apply_range(const sn_optimizer *o, float *params, const float *grads, size_t off, size_t n);

const char *sn_opt_name(sn_opt_kind k);
int sn_opt_parse(const char *text, sn_opt_kind *k); /* SN_OK or SN_EINVAL */
/* Floats of state per parameter: 0, 1 or 2. */
int sn_opt_state_per_param(sn_opt_kind k);
/* The learning rate an optimiser runs at when none is given: 0.05, but Adam 0.002 (its
 * steps are normalised: at 0.05 the MLP reached 0.948 after 3 epochs, at 0.002 0.957;
 * the cnn preset 0.9895 after 3 epochs, 0.9875 at 0.001). */
float sn_opt_default_lr(sn_opt_kind k);

#endif
