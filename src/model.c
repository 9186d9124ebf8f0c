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
        if ((long)layer->ih * layer->iw * layer->ic != layer->in ||
            (long)layer->oh * layer->ow * layer->oc != layer->out)
            return sn_fail(err, SN_EINVAL, "layer %d (%s): %dx%dx%d in and %dx%dx%d out are not %d and %d floats", l + 1,
                           layer->ops->type, layer->ih, layer->iw, layer->ic, layer->oh, layer->ow, layer->oc,
                           layer->in, layer->out);
        /* An image passes on as an image, or is flattened by a layer that takes a row. */
        if (l && layer->ih > 1 && (layer->ih != layers[l - 1].oh || layer->iw != layers[l - 1].ow))
            return sn_fail(err, SN_EINVAL, "layer %d (%s) takes %dx%dx%d images but layer %d gives %dx%dx%d", l + 1,
                           layer->ops->type, layer->ih, layer->iw, layer->ic, l, layers[l - 1].oh, layers[l - 1].ow,
                           layers[l - 1].oc);
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
        layers[l] = (sn_layer){ .ops = &sn_dense_ops, .in = sizes[l], .out = sizes[l + 1], .relu = l + 2 < nsizes,
                                .ih = 1, .iw = 1, .ic = sizes[l], .oh = 1, .ow = 1, .oc = sizes[l + 1] };
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

/* Named networks: --net NAME. */
static const struct { const char *name, *spec; } presets[] = {
    { "mlp", "784,50,25,10" },
    { "cnn", "conv3x3x32,pool2,conv3x3x64,pool2,dense128,dense10" },
    { "lenet5", "conv5x5x6/same,pool2,conv5x5x16,pool2,dense120,dense84,dense10" },
};

const char *sn_net_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(name, presets[i].name)) return presets[i].spec;
    return NULL;
}

static void known_types(char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < sn_layer_type_count(); i++) {
        const size_t k = strlen(out);
        snprintf(out + k, cap - k, "%s%s", i ? ", " : "", sn_layer_type_at(i)->type);
    }
}

/* One item of a net spec appended to layers, its input being the previous layer's output
 * (or the net's input). Forms: a bare width N (a dense layer), "TYPEARG" (compact:
 * "dense50", "conv3x3x32/same", "pool2", "relu"), "TYPE:ARG" (explicit). A compact item
 * that is not the last fuses a ReLU into a type that can take one; an explicit one never
 * does, and a "relu" item straight after a dense or convolution layer without one is
 * fused into it (its epilogue does the same arithmetic). */
static int parse_item(const char *item, size_t len, int last, const char *text, sn_layer *layers, int *n,
                      const sn_layer *input, sn_error *err)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return sn_fail(err, SN_EINVAL, "'%s': empty or overlong item '%.*s'", text, (int)len, item);
    memcpy(buf, item, len);
    buf[len] = '\0';
    const int bare = strspn(buf, "0123456789") == len;
    const size_t name_len = bare ? 0 : strspn(buf, "abcdefghijklmnopqrstuvwxyz_");
    const int explicit_form = buf[name_len] == ':';
    const char *arg = bare ? buf : explicit_form ? buf + name_len + 1 : buf[name_len] ? buf + name_len : NULL;
    const sn_layer_ops *type = bare ? &sn_dense_ops : sn_layer_type_named(buf, name_len);
    if (!type) {
        char known[256];
        known_types(known, sizeof known);
        return sn_fail(err, SN_EINVAL, "'%s': unknown layer type '%s' (known: %s; or a preset: mlp, cnn, lenet5)",
                       text, buf, known);
    }
    sn_layer *prev = *n > 0 ? &layers[*n - 1] : NULL;
    if (type == sn_layer_type_named("relu", 4) && !arg && prev && !prev->relu &&
        (prev->ops == &sn_dense_ops || prev->ops == sn_layer_type_named("conv", 4))) {
        prev->relu = 1;
        return SN_OK;
    }
    if (*n == SN_MAX_LAYERS) return sn_fail(err, SN_EINVAL, "'%s' has more than %d layers", text, SN_MAX_LAYERS);
    sn_layer *l = &layers[*n];
    *l = (sn_layer){ .ops = type };
    l->in = prev ? prev->out : input->out;
    l->ih = prev ? prev->oh : input->oh, l->iw = prev ? prev->ow : input->ow, l->ic = prev ? prev->oc : input->oc;
    sn_error why;
    if (type->configure(l, arg, !explicit_form && !last, &why)) return sn_fail(err, SN_EINVAL, "'%s': %s", text, why.msg);
    *n += 1;
    return SN_OK;
}

/* The net's input from the spec's first item when it is one: a width N (a flat row) or an
 * image HxWxC; else MNIST's 28x28x1 image. Returns the characters it used (0: none). */
static size_t parse_input(const char *text, sn_layer *input, sn_error *err, int *rc)
{
    const size_t len = strcspn(text, ",");
    long d[3] = { 0, 1, 1 };
    int nd = 0;
    const char *p = text;
    *rc = SN_OK;
    if (!(*p >= '0' && *p <= '9')) {
        *input = (sn_layer){ .out = 784, .oh = 28, .ow = 28, .oc = 1 };
        return 0;
    }
    while (nd < 3) {
        char *end;
        errno = 0;
        d[nd++] = strtol(p, &end, 10);
        if (end == p || errno || d[nd - 1] < 1 || d[nd - 1] > SN_MAX_WIDTH) break;
        p = end;
        if (*p != 'x') break;
        p++;
    }
    if ((size_t)(p - text) != len || (nd != 1 && nd != 3) || d[0] < 1 || d[0] * d[1] * d[2] > SN_MAX_WIDTH || !text[len]) {
        *rc = sn_fail(err, SN_EINVAL, "'%s': a spec starts with layers (the input is then 28x28x1), or with the input "
                      "as a width N or an image HxWxC (at most %d floats) and a ',': e.g. 784,dense:100,leaky,dense10",
                      text, SN_MAX_WIDTH);
        return 0;
    }
    if (nd == 1)
        *input = (sn_layer){ .out = (int)d[0], .oh = 1, .ow = 1, .oc = (int)d[0] };
    else
        *input = (sn_layer){ .out = (int)(d[0] * d[1] * d[2]), .oh = (int)d[0], .ow = (int)d[1], .oc = (int)d[2] };
    return len + 1;
}

int sn_net_parse(const char *text, sn_layer *layers, int *nlayers, sn_error *err)
{
    if (!text || !*text) return sn_fail(err, SN_EINVAL, "empty network spec; expected e.g. 784,50,25,10 or cnn");
    const char *preset = sn_net_preset(text);
    if (preset) text = preset;
    /* Digits and separators only: the layer-sizes form, where ':' separates too. */
    if (strspn(text, "0123456789,:") == strlen(text)) {
        int sizes[SN_MAX_LAYERS + 1], ns;
        int rc = sn_parse_layers(text, sizes, &ns, err);
        if (rc) return rc;
        sn_net_mlp_layers(sizes, ns, layers);
        *nlayers = ns - 1;
        return SN_OK;
    }
    sn_layer input = { 0 };
    int rc;
    const size_t used = parse_input(text, &input, err, &rc);
    if (rc) return rc;
    int n = 0;
    for (const char *p = text + used;;) {
        const size_t len = strcspn(p, ",");
        if ((rc = parse_item(p, len, p[len] == '\0', text, layers, &n, &input, err))) return rc;
        if (!p[len]) break;
        p += len + 1;
    }
    if ((rc = sn_net_check(layers, n, err))) return rc;
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
    const sn_layer *first = &layers[0];
    size_t len = 0;
    if (first->ih == 1 && first->iw == 1)
        len = (size_t)snprintf(out, cap, "%d%c", first->in, sep);
    else if (!(first->ih == 28 && first->iw == 28 && first->ic == 1))
        len = (size_t)snprintf(out, cap, "%dx%dx%d%c", first->ih, first->iw, first->ic, sep);
    for (int l = 0; l < nlayers && len < cap; l++) {
        const sn_layer *layer = &layers[l];
        const int last = l + 1 == nlayers;
        /* The compact item when its implied ReLU is what the layer has (a type that
         * cannot fuse one formats the same either way). */
        char item[64];
        const int compact = layer->relu == !last;
        layer->ops->spec(layer, compact, item, sizeof item);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", l ? (char[]){ sep, 0 } : "", item);
        if (!compact && layer->relu && len < cap) len += (size_t)snprintf(out + len, cap - len, "%crelu", sep);
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


int sn_net_first_flat_layer(const sn_net *m)
{
    int l = 0;
    while (l < m->nlayers && (m->layer[l].oh > 1 || m->layer[l].ow > 1)) l++;
    return l;
}

void sn_net_forward_from(const sn_net *m, sn_forward_ctx *c, int l0, int r0, int rows, float *ws)
{
    if (rows <= 0) return;
    const int flat = sn_net_first_flat_layer(m) > l0 ? sn_net_first_flat_layer(m) : l0;
    for (int done = 0; done < rows; done += SN_IMAGE_ROWS) {
        const int r = r0 + done, k = rows - done < SN_IMAGE_ROWS ? rows - done : SN_IMAGE_ROWS;
        for (int l = l0; l < flat; l++)
            m->layer[l].ops->forward(&m->layer[l], c->act[l + 1] + (size_t)r * m->sizes[l + 1],
                                     c->act[l] + (size_t)r * m->sizes[l], k, ws);
    }
    for (int l = flat; l < m->nlayers; l++)
        m->layer[l].ops->forward(&m->layer[l], c->act[l + 1] + (size_t)r0 * m->sizes[l + 1],
                                 c->act[l] + (size_t)r0 * m->sizes[l], rows, ws);
}

void sn_net_forward_rows(const sn_net *m, sn_forward_ctx *c, int r0, int rows, float *ws)
{
    sn_net_forward_from(m, c, 0, r0, rows, ws);
}

const float *sn_net_forward(const sn_net *m, sn_forward_ctx *c, int n)
{
    sn_net_forward_rows(m, c, 0, n, c->ws_local);
    return c->act[m->nlayers];
}
