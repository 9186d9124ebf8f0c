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

void sn_mlp_views(const sn_mlp *m, float *block, float **W, float **b)
{
    float *p = block;
    for (int l = 0; l < m->nlayers; l++) {
        W[l] = p;
        p += (size_t)m->sizes[l + 1] * m->sizes[l];
        b[l] = p;
        p += m->sizes[l + 1];
    }
}

int sn_mlp_create(sn_mlp *m, const int *sizes, int nsizes, sn_error *err)
{
    memset(m, 0, sizeof *m);
    size_t n = sn_mlp_count_params(sizes, nsizes);
    if (!n)
        return sn_fail(err, SN_EINVAL,
                       "network shape rejected: expected 2..%d layer sizes of 1..%d units and at "
                       "most %d parameters", SN_MAX_LAYERS + 1, SN_MAX_WIDTH, SN_MAX_PARAMS);
    m->params = aligned_alloc(64, sn_align_floats(n) * sizeof(float));
    if (!m->params) return sn_fail(err, SN_ENOMEM, "out of memory for %zu parameters", n);
    memset(m->params, 0, n * sizeof(float));
    m->nlayers = nsizes - 1;
    memcpy(m->sizes, sizes, sizeof(int) * nsizes);
    m->nparams = n;
    sn_mlp_views(m, m->params, m->W, m->b);
    for (int l = 0; l < m->nlayers; l++)
        m->layer[l] = (sn_layer){ .ops = &sn_dense_ops, .in = sizes[l], .out = sizes[l + 1],
                                  .relu = l + 1 < m->nlayers, .W = m->W[l], .b = m->b[l] };
    return SN_OK;
}

void sn_mlp_free(sn_mlp *m)
{
    if (!m) return;
    free(m->params);
    memset(m, 0, sizeof *m);
}

void sn_mlp_init_he(sn_mlp *m, sn_rng *rng)
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

int sn_forward_ctx_create(sn_forward_ctx *c, const sn_mlp *m, int capacity, int threads, sn_error *err)
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


void sn_mlp_forward_rows(const sn_mlp *m, sn_forward_ctx *c, int r0, int rows, float *ws)
{
    if (rows <= 0) return;
    for (int l = 0; l < m->nlayers; l++)
        m->layer[l].ops->forward(&m->layer[l], c->act[l + 1] + (size_t)r0 * m->sizes[l + 1],
                                 c->act[l] + (size_t)r0 * m->sizes[l], rows, ws);
}

const float *sn_mlp_forward(const sn_mlp *m, sn_forward_ctx *c, int n)
{
    sn_mlp_forward_rows(m, c, 0, n, c->ws_local);
    return c->act[m->nlayers];
}
