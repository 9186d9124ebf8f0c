#include "scratchnet/optim.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float MOMENTUM = 0.9f, BETA1 = 0.9f, BETA2 = 0.999f, EPS = 1e-8f;

const char *sn_opt_name(sn_opt_kind k)
{
    return k == SN_OPT_SGD ? "sgd" : k == SN_OPT_MOMENTUM ? "momentum" : "adam";
}

int sn_opt_parse(const char *text, sn_opt_kind *k)
{
    for (int i = 0; i <= SN_OPT_ADAM; i++)
        if (strcmp(text, sn_opt_name((sn_opt_kind)i)) == 0) { *k = (sn_opt_kind)i; return SN_OK; }
    return SN_EINVAL;
}

int sn_opt_state_per_param(sn_opt_kind k) { return k == SN_OPT_SGD ? 0 : k == SN_OPT_MOMENTUM ? 1 : 2; }

int sn_opt_create(sn_optimizer *o, sn_opt_kind kind, float lr, size_t n, sn_error *err)
{
    memset(o, 0, sizeof *o);
    o->kind = kind, o->lr = lr, o->lr_now = lr, o->step_size = lr, o->n = n;
    int states = sn_opt_state_per_param(kind);
    if (states >= 1 && !(o->m = calloc(n, sizeof(float)))) goto oom;
    if (states >= 2 && !(o->v = calloc(n, sizeof(float)))) goto oom;
    return SN_OK;
oom:
    sn_opt_free(o);
    return sn_fail(err, SN_ENOMEM, "out of memory for optimiser state (%zu parameters)", n);
}

void sn_opt_free(sn_optimizer *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void sn_opt_prepare(sn_optimizer *o)
{
    o->step_size = o->lr_now;
    if (o->kind == SN_OPT_ADAM) {
        double t = (double)(o->step + 1);
        /* Bias correction folded into the step size (Kingma & Ba, sec. 2). */
        o->step_size = (float)(o->lr_now * sqrt(1.0 - pow(BETA2, t)) / (1.0 - pow(BETA1, t)));
    }
}

void sn_opt_apply_range(const sn_optimizer *o, float *params, const float *grads, size_t off, size_t n)
{
    const sn_kernels *kr = sn_kernels_active();
    float *w = params + off;
    const float *g = grads + off;
    switch (o->kind) {
    case SN_OPT_SGD: kr->sgd(w, g, (long)n, o->step_size); break;
    case SN_OPT_MOMENTUM: kr->momentum(w, o->m + off, g, (long)n, o->step_size, MOMENTUM); break;
    case SN_OPT_ADAM: kr->adam(w, o->m + off, o->v + off, g, (long)n, o->step_size, BETA1, BETA2, EPS); break;
    }
}
