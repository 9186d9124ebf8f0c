#include "scratchnet/optim.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float MOMENTUM = 0.9f, BETA1 = 0.9f, BETA2 = 0.999f, EPS = 1e-8f;

/* The updates, each over params[off, off + n) with the ISA's element-wise kernel. */
static void apply_sgd(const sn_optimizer *o, const sn_kernels *kr, float *w, const float *g, size_t off, long n)
{
    kr->sgd(w, g, n, o->step_size);
    (void)off;
}

static void apply_momentum(const sn_optimizer *o, const sn_kernels *kr, float *w, const float *g, size_t off, long n)
{
    kr->momentum(w, o->m + off, g, n, o->step_size, MOMENTUM);
}

static void apply_nesterov(const sn_optimizer *o, const sn_kernels *kr, float *w, const float *g, size_t off, long n)
{
    kr->nesterov(w, o->m + off, g, n, o->step_size, MOMENTUM);
}

static void apply_adam(const sn_optimizer *o, const sn_kernels *kr, float *w, const float *g, size_t off, long n)
{
    kr->adam(w, o->m + off, o->v + off, g, n, o->step_size, BETA1, BETA2, EPS);
}

/* The registry, in sn_opt_kind order. Adding an optimiser: its sn_opt_kind value, a row
 * here (name, floats of state per parameter, bias-corrected or not, update), and its
 * element-wise kernel in kernels/kernel_template.h with a field in kernels.h. */
typedef struct opt_entry {
    const char *name;
    float default_lr; /* what --lr is when not given: each optimiser's own good value */
    int states;     /* floats of state per parameter: m, then v */
    int adam_steps; /* the step size carries Adam's bias correction */
    void (*apply)(const sn_optimizer *o, const sn_kernels *kr, float *w, const float *g, size_t off, long n);
} opt_entry;

static const opt_entry registry[] = {
    [SN_OPT_SGD] = { "sgd", 0.05f, 0, 0, apply_sgd },
    [SN_OPT_MOMENTUM] = { "momentum", 0.05f, 1, 0, apply_momentum },
    [SN_OPT_ADAM] = { "adam", 0.002f, 2, 1, apply_adam },
    [SN_OPT_NESTEROV] = { "nesterov", 0.05f, 1, 0, apply_nesterov },
};
_Static_assert(sizeof registry / sizeof registry[0] == SN_OPT_COUNT, "one registry row per sn_opt_kind");

const char *sn_opt_name(sn_opt_kind k)
{
    return k >= 0 && k < SN_OPT_COUNT ? registry[k].name : "?";
}

int sn_opt_parse(const char *text, sn_opt_kind *k)
{
    for (int i = 0; i < SN_OPT_COUNT; i++)
        if (strcmp(text, registry[i].name) == 0) { *k = (sn_opt_kind)i; return SN_OK; }
    return SN_EINVAL;
}

float sn_opt_default_lr(sn_opt_kind k) { return k >= 0 && k < SN_OPT_COUNT ? registry[k].default_lr : 0.05f; }

int sn_opt_state_per_param(sn_opt_kind k) { return k >= 0 && k < SN_OPT_COUNT ? registry[k].states : 0; }

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
    if (registry[o->kind].adam_steps) {
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
    registry[o->kind].apply(o, kr, w, g, off, (long)n);
}
