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
