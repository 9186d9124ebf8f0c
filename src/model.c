#include "scratchnet/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/layers.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif


size_t sn_mlp_count_params(const int *sizes, int nsizes)
{
    if (nsizes < 2 || nsizes > SN_MAX_LAYERS + 1) return 0;
    size_t total = 0;
    for (int i = 0; i < nsizes; i++)
        if (sizes[i] < 1 || sizes[i] > SN_MAX_WIDTH) return 0;
    for (int l = 0; l + 1 < nsizes; l++) total += (size_t)sizes[l + 1] * sizes[l] + sizes[l + 1];
    return total <= SN_MAX_PARAMS ? total : 0;
}

void sn_net_views(const sn_net *m, float *block, float **W, float **b)
{
    float *p = block;
    for (int l = 0; l < m->nlayers; l++) {
        const sn_layer *layer = &m->layer[l];
        W[l] = p;
        p += layer->ops->nweights(layer);
        b[l] = p;
        p += layer->ops->nbiases(layer);
    }
}

int sn_net_check(const sn_layer *layers, int nlayers, sn_error *err)
{
    if (nlayers < 1 || nlayers > SN_MAX_LAYERS)
        return sn_fail(err, SN_EINVAL, "a network has 1..%d layers, this one %d", SN_MAX_LAYERS, nlayers);
    size_t total = 0;
    for (int l = 0; l < nlayers; l++) {
        const sn_layer *layer = &layers[l];
        if (!layer->ops) return sn_fail(err, SN_EINVAL, "layer %d has no type", l + 1);
        sn_error why;
        if (layer->ops->check(layer, &why))
            return sn_fail(err, SN_EINVAL, "layer %d: %s", l + 1, why.msg);
        if (l && layer->in != layers[l - 1].out)
            return sn_fail(err, SN_EINVAL, "layer %d (%s) takes %d inputs but layer %d gives %d", l + 1,
                           layer->ops->type, layer->in, l, layers[l - 1].out);
        total += sn_layer_nparams(layer);
        if (total > SN_MAX_PARAMS)
            return sn_fail(err, SN_EINVAL, "more than %d parameters (at layer %d)", SN_MAX_PARAMS, l + 1);
    }
    return SN_OK;
}

int sn_net_create(sn_net *m, const sn_layer *layers, int nlayers, sn_error *err)
{
    memset(m, 0, sizeof *m);
    int rc = sn_net_check(layers, nlayers, err);
    if (rc) return rc;
    size_t n = 0;
    for (int l = 0; l < nlayers; l++) n += sn_layer_nparams(&layers[l]);
    m->params = aligned_alloc(64, sn_align_floats(n ? n : 1) * sizeof(float));
    if (!m->params) return sn_fail(err, SN_ENOMEM, "out of memory for %zu parameters", n);
    memset(m->params, 0, n * sizeof(float));
    m->nlayers = nlayers;
    m->nparams = n;
    for (int l = 0; l < nlayers; l++) {
        m->layer[l] = layers[l];
        m->sizes[l] = layers[l].in;
    }
    m->sizes[nlayers] = layers[nlayers - 1].out;
    sn_net_views(m, m->params, m->W, m->b);
    for (int l = 0; l < nlayers; l++) {
        const int has = sn_layer_nparams(&m->layer[l]) > 0;
        m->layer[l].W = has ? m->W[l] : NULL;
        m->layer[l].b = has ? m->b[l] : NULL;
    }
    return SN_OK;
}

void sn_net_mlp_layers(const int *sizes, int nsizes, sn_layer *layers)
{
    for (int l = 0; l + 1 < nsizes; l++)
        layers[l] = (sn_layer){ .ops = &sn_dense_ops, .in = sizes[l], .out = sizes[l + 1], .relu = l + 2 < nsizes };
}

int sn_net_create_mlp(sn_net *m, const int *sizes, int nsizes, sn_error *err)
{
    memset(m, 0, sizeof *m);
    if (!sn_mlp_count_params(sizes, nsizes))
        return sn_fail(err, SN_EINVAL,
                       "network shape rejected: expected 2..%d layer sizes of 1..%d units and at "
                       "most %d parameters", SN_MAX_LAYERS + 1, SN_MAX_WIDTH, SN_MAX_PARAMS);
    sn_layer layers[SN_MAX_LAYERS];
    sn_net_mlp_layers(sizes, nsizes, layers);
    return sn_net_create(m, layers, nsizes - 1, err);
}

int sn_net_is_mlp(const sn_layer *layers, int nlayers)
{
    for (int l = 0; l < nlayers; l++)
        if (layers[l].ops != &sn_dense_ops || layers[l].relu != (l + 1 < nlayers)) return 0;
    return 1;
}

void sn_net_free(sn_net *m)
{
    if (!m) return;
    free(m->params);
    memset(m, 0, sizeof *m);
}

void sn_net_init_he(sn_net *m, sn_rng *rng)
{
    for (int l = 0; l < m->nlayers; l++) m->layer[l].ops->init(&m->layer[l], rng);
}

int sn_parse_layers(const char *text, int *sizes, int *nsizes, sn_error *err)
{
    int n = 0;
    const char *p = text;
    if (!text || !*text) return sn_fail(err, SN_EINVAL, "empty layer list; expected e.g. 784,50,25,10");
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > SN_MAX_WIDTH)
            return sn_fail(err, SN_EINVAL,
                           "layer size '%.*s' in '%s' is not an integer in 1..%d",
                           (int)strcspn(p, ",:"), p, text, SN_MAX_WIDTH);
        if (n == SN_MAX_LAYERS + 1)
            return sn_fail(err, SN_EINVAL, "'%s' has more than %d layer sizes", text, SN_MAX_LAYERS + 1);
        sizes[n++] = (int)v;
        if (*end == '\0') break;
        if (*end != ',' && *end != ':')
            return sn_fail(err, SN_EINVAL, "unexpected '%c' in layer list '%s'; separate sizes with ','", *end, text);
        p = end + 1;
    }
    if (n < 2) return sn_fail(err, SN_EINVAL, "'%s' needs at least an input and an output size", text);
    if (!sn_mlp_count_params(sizes, n))
        return sn_fail(err, SN_EINVAL, "'%s' has more than %d parameters", text, SN_MAX_PARAMS);
    *nsizes = n;
    return SN_OK;
}

void sn_format_layers(const int *sizes, int nsizes, char sep, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < nsizes && len < cap; i++)
        len += i ? (size_t)snprintf(out + len, cap - len, "%c%d", sep, sizes[i])
                 : (size_t)snprintf(out + len, cap - len, "%d", sizes[i]);
}

/* One item of a net spec, "TYPE[:ARG]" or a bare width N (a dense layer, with a ReLU
 * unless it is the last item), appended to layers for an input of `in` floats. A "relu"
 * straight after a dense layer is folded into it (its epilogue does the same arithmetic). */
static int parse_item(const char *item, size_t len, int last, const char *text, sn_layer *layers, int *n, int in,
                      sn_error *err)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return sn_fail(err, SN_EINVAL, "'%s': empty or overlong item '%.*s'", text, (int)len, item);
    memcpy(buf, item, len);
    buf[len] = '\0';
    const int bare = strspn(buf, "0123456789") == len;
    const char *colon = strchr(buf, ':');
    const sn_layer_ops *type = bare ? &sn_dense_ops : sn_layer_type_named(buf, colon ? (size_t)(colon - buf) : len);
    if (!type) {
        char known[256] = "";
        for (int i = 0; i < sn_layer_type_count(); i++) {
            const size_t k = strlen(known);
            snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", sn_layer_type_at(i)->type);
        }
        return sn_fail(err, SN_EINVAL, "'%s': unknown layer type '%.*s' (known: %s)", text,
                       (int)(colon ? (size_t)(colon - buf) : len), buf, known);
    }
    if (type == sn_layer_type_named("relu", 4) && *n > 0 && layers[*n - 1].ops == &sn_dense_ops && !layers[*n - 1].relu && !colon) {
        layers[*n - 1].relu = 1;
        return SN_OK;
    }
    if (*n == SN_MAX_LAYERS) return sn_fail(err, SN_EINVAL, "'%s' has more than %d layers", text, SN_MAX_LAYERS);
    sn_layer *l = &layers[*n];
    *l = (sn_layer){ .ops = type, .in = in };
    sn_error why;
    if (type->configure(l, bare ? buf : colon ? colon + 1 : NULL, &why))
        return sn_fail(err, SN_EINVAL, "'%s': %s", text, why.msg);
    if (bare) l->relu = !last;
    *n += 1;
    return SN_OK;
}

int sn_net_parse(const char *text, sn_layer *layers, int *nlayers, sn_error *err)
{
    if (!text || !*text) return sn_fail(err, SN_EINVAL, "empty network spec; expected e.g. 784,50,25,10");
    /* Digits and separators only: the layer-sizes form, where ':' separates too. */
    if (strspn(text, "0123456789,:") == strlen(text)) {
        int sizes[SN_MAX_LAYERS + 1], ns;
        int rc = sn_parse_layers(text, sizes, &ns, err);
        if (rc) return rc;
        sn_net_mlp_layers(sizes, ns, layers);
        *nlayers = ns - 1;
        return SN_OK;
    }
    char *end;
    errno = 0;
    const long in = strtol(text, &end, 10);
    if (end == text || errno || in < 1 || in > SN_MAX_WIDTH || *end != ',')
        return sn_fail(err, SN_EINVAL, "'%s': a spec starts with the input width (1..%d) and a ',', e.g. "
                       "784,dense:100,leaky,dense:10", text, SN_MAX_WIDTH);
    int n = 0, width = (int)in;
    for (const char *p = end + 1;;) {
        const size_t len = strcspn(p, ",");
        int rc = parse_item(p, len, p[len] == '\0', text, layers, &n, width, err);
        if (rc) return rc;
        width = layers[n - 1].out;
        if (!p[len]) break;
        p += len + 1;
    }
    int rc = sn_net_check(layers, n, err);
    if (rc) return rc;
    *nlayers = n;
    return SN_OK;
}

void sn_net_format(const sn_layer *layers, int nlayers, char sep, char *out, size_t cap)
{
    if (!cap) return;
    out[0] = '\0';
    if (nlayers < 1) return;
    if (sn_net_is_mlp(layers, nlayers)) {
        int sizes[SN_MAX_LAYERS + 1];
        for (int l = 0; l < nlayers; l++) sizes[l] = layers[l].in;
        sizes[nlayers] = layers[nlayers - 1].out;
        sn_format_layers(sizes, nlayers + 1, sep, out, cap);
        return;
    }
    size_t len = (size_t)snprintf(out, cap, "%d", layers[0].in);
    for (int l = 0; l < nlayers && len < cap; l++) {
        const sn_layer *layer = &layers[l];
        if (layer->ops == &sn_dense_ops)
            len += (size_t)snprintf(out + len, cap - len, "%cdense:%d", sep, layer->out);
        else if (layer->ops->has_arg)
            len += (size_t)snprintf(out + len, cap - len, "%c%s:%g", sep, layer->ops->type, layer->arg);
        else
            len += (size_t)snprintf(out + len, cap - len, "%c%s", sep, layer->ops->type);
        if (layer->relu && len < cap) len += (size_t)snprintf(out + len, cap - len, "%crelu", sep);
    }
}

int sn_forward_ctx_create(sn_forward_ctx *c, const sn_net *m, int capacity, int threads, sn_error *err)
{
    memset(c, 0, sizeof *c);
    if (capacity < 1 || threads < 1) return sn_fail(err, SN_EINVAL, "forward context: capacity and threads must be >= 1");
    size_t floats = 0, ws = 0;
    for (int l = 0; l <= m->nlayers; l++) floats += sn_align_floats((size_t)capacity * m->sizes[l]);
    for (int l = 0; l < m->nlayers; l++) {
        size_t w = m->layer[l].ops->workspace(&m->layer[l], capacity);
        if (w > ws) ws = w;
    }
    ws = sn_align_floats(ws);
    floats += ws * (size_t)threads + sn_align_floats((size_t)capacity);
    size_t bytes = floats * sizeof(float) + 2 * ((size_t)capacity + 64);
    c->block = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!c->block) return sn_fail(err, SN_ENOMEM, "out of memory for a batch of %d", capacity);
    float *p = c->block;
    for (int l = 0; l <= m->nlayers; l++) {
        c->act[l] = p;
        p += sn_align_floats((size_t)capacity * m->sizes[l]);
    }
    c->ws_local = p;
    c->ws_stride = ws;
    p += ws * (size_t)threads;
    c->loss = p;
    p += sn_align_floats((size_t)capacity);
    c->y = (uint8_t *)p;
    c->correct = c->y + capacity + 64;
    c->capacity = capacity;
    c->threads = threads;
    return SN_OK;
}

void sn_forward_ctx_free(sn_forward_ctx *c)
{
    if (!c) return;
    free(c->block);
    memset(c, 0, sizeof *c);
}

float *sn_forward_ctx_local_ws(const sn_forward_ctx *c)
{
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    return c->ws_local + (size_t)(tid < c->threads ? tid : 0) * c->ws_stride;
}

void sn_share_rows(int n, int granule, int part, int parts, int *r0, int *rows)
{
    int chunk = ((n + parts - 1) / parts + granule - 1) / granule * granule;
    int start = part * chunk < n ? part * chunk : n;
    *r0 = start;
    *rows = n - start < chunk ? n - start : chunk;
}


void sn_net_forward_rows(const sn_net *m, sn_forward_ctx *c, int r0, int rows, float *ws)
{
    if (rows <= 0) return;
    for (int l = 0; l < m->nlayers; l++)
        m->layer[l].ops->forward(&m->layer[l], c->act[l + 1] + (size_t)r0 * m->sizes[l + 1],
                                 c->act[l] + (size_t)r0 * m->sizes[l], rows, ws);
}

const float *sn_net_forward(const sn_net *m, sn_forward_ctx *c, int n)
{
    sn_net_forward_rows(m, c, 0, n, c->ws_local);
    return c->act[m->nlayers];
}
