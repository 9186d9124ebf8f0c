/* The layer registry: every layer type a net spec may name and a model file may hold.
 * A new type is its ops table (layer.h) in its own file, and one row here. */
#include <string.h>

#include "scratchnet/layer.h"

extern const sn_layer_ops sn_relu_ops, sn_leaky_ops; /* activation.c */
extern const sn_layer_ops sn_conv_ops;               /* conv.c */
extern const sn_layer_ops sn_pool_ops;               /* pool.c */

static const sn_layer_ops *const registry[] = {
    &sn_dense_ops,
    &sn_relu_ops,
    &sn_leaky_ops,
    &sn_conv_ops,
    &sn_pool_ops,
};

enum { NTYPES = (int)(sizeof registry / sizeof registry[0]) };

int sn_layer_type_count(void)
{
    return NTYPES;
}

const sn_layer_ops *sn_layer_type_at(int i)
{
    return i >= 0 && i < NTYPES ? registry[i] : NULL;
}

const sn_layer_ops *sn_layer_type_named(const char *name, size_t len)
{
    for (int i = 0; i < NTYPES; i++)
        if (strlen(registry[i]->type) == len && memcmp(registry[i]->type, name, len) == 0) return registry[i];
    return NULL;
}

const sn_layer_ops *sn_layer_type_with_id(unsigned file_id)
{
    for (int i = 0; i < NTYPES; i++)
        if (registry[i]->file_id == file_id) return registry[i];
    return NULL;
}

void sn_layer_flat_output(sn_layer *l)
{
    l->oh = 1, l->ow = 1, l->oc = l->out;
}

void sn_layer_same_output(sn_layer *l)
{
    l->out = l->in, l->oh = l->ih, l->ow = l->iw, l->oc = l->ic;
}

size_t sn_layer_nparams(const sn_layer *l)
{
    return l->ops->nweights(l) + l->ops->nbiases(l);
}

/* ---- the ops of a layer without parameters -------------------------------------- */

size_t sn_layer_none(const sn_layer *l)
{
    (void)l;
    return 0;
}

size_t sn_layer_no_workspace(const sn_layer *l, int rows)
{
    (void)l, (void)rows;
    return 0;
}

void sn_layer_no_init(const sn_layer *l, sn_rng *rng)
{
    (void)l, (void)rng;
}

int sn_layer_no_grad_items(const sn_layer *l, int n, int parts)
{
    (void)l, (void)n, (void)parts;
    return 0;
}

void sn_layer_no_grad_item(const sn_layer *l, int item, int n, int parts, const float *X, const float *dY, float *gW,
                           float *gb, const sn_epilogue *update, float *ws)
{
    (void)l, (void)item, (void)n, (void)parts, (void)X, (void)dY, (void)gW, (void)gb, (void)update, (void)ws;
}

int sn_layer_any_owner(const sn_layer *l, int item, int n, int parts)
{
    (void)l, (void)item, (void)n, (void)parts;
    return -1;
}
