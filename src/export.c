/* Model export: ONNX through a protobuf wire-format writer, NPZ through a zip writer
 * (export.h). Both build the file in memory, then write it atomically. */
#include "scratchnet/export.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "scratchnet/modelfile.h"
#include "util.h"

/* ---- the file in memory: util.h's byte buffer ---------------------------------- */
typedef sn_bytes buf;
#define put sn_bytes_put
#define put_le sn_bytes_put_le
#define put_f32s sn_bytes_put_f32s
#define drop sn_bytes_free

/* ---- protobuf wire format: varints, keys, length-delimited fields ----------------- */
enum { WIRE_VARINT = 0, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

static void pb_varint(buf *b, uint64_t v)
{
    unsigned char d[10];
    int n = 0;
    do {
        d[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, d, (size_t)n);
}

static void pb_int(buf *b, int field, int64_t v) { pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT), pb_varint(b, (uint64_t)v); }

static void pb_bytes(buf *b, int field, const void *d, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | WIRE_BYTES);
    pb_varint(b, n);
    put(b, d, n);
}

static void pb_str(buf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* A nested message: sub's bytes as field `field`, then sub is freed. */
static void pb_sub(buf *b, int field, buf *sub)
{
    b->oom |= sub->oom;
    pb_bytes(b, field, sub->p, sub->len);
    drop(sub);
}

static void pb_float(buf *b, int field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    pb_varint(b, (uint64_t)field << 3 | WIRE_FIXED32);
    put_le(b, u, 4);
}

/* ---- ONNX messages (onnx.proto field numbers) -------------------------------------- */
enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7 };

typedef struct attr {
    const char *name;
    int type;
    float f;
    int64_t i;
    int64_t ints[4];
    int nints;
} attr;

/* GraphProto.initializer (5): TensorProto dims (1), data_type (2), name (8), raw_data (9). */
static void initializer(buf *graph, const char *name, int type, const int64_t *dims, int nd, const void *data,
                        size_t count)
{
    buf t = { 0 }, raw = { 0 };
    for (int i = 0; i < nd; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, type);
    pb_str(&t, 8, name);
    if (type == ONNX_FLOAT) put_f32s(&raw, data, count);
    else
        for (size_t i = 0; i < count; i++) put_le(&raw, (uint64_t)((const int64_t *)data)[i], 8);
    t.oom |= raw.oom;
    pb_bytes(&t, 9, raw.p, raw.len);
    drop(&raw);
    pb_sub(graph, 5, &t);
}

/* GraphProto.node (1): NodeProto input (1), output (2), name (3), op_type (4), attribute
 * (5: AttributeProto name (1), f (2), i (3), ints (8), type (20)). */
static void node(buf *graph, const char *op, const char *in0, const char *in1, const char *in2, const char *out,
                 const attr *attrs, int nattr)
{
    buf n = { 0 };
    const char *ins[3] = { in0, in1, in2 };
    for (int i = 0; i < 3; i++)
        if (ins[i]) pb_str(&n, 1, ins[i]);
    pb_str(&n, 2, out);
    pb_str(&n, 3, out);
    pb_str(&n, 4, op);
    for (int k = 0; k < nattr; k++) {
        buf a = { 0 };
        pb_str(&a, 1, attrs[k].name);
        if (attrs[k].type == ATTR_FLOAT) pb_float(&a, 2, attrs[k].f);
        else if (attrs[k].type == ATTR_INT) pb_int(&a, 3, attrs[k].i);
        else
            for (int j = 0; j < attrs[k].nints; j++) pb_int(&a, 8, attrs[k].ints[j]);
        pb_int(&a, 20, attrs[k].type);
        pb_sub(&n, 5, &a);
    }
    pb_sub(graph, 1, &n);
}

/* GraphProto.input (11) / output (12): ValueInfoProto name (1), type (2: TypeProto
 * tensor_type (1: elem_type (1), shape (2: dim (1: dim_value (1) | dim_param (2))))).
 * A dimension < 0 is the batch, "N". */
static void value_info(buf *graph, int field, const char *name, const int64_t *dims, int nd)
{
    buf shape = { 0 }, tensor = { 0 }, type = { 0 }, vi = { 0 };
    for (int i = 0; i < nd; i++) {
        buf d = { 0 };
        if (dims[i] < 0) pb_str(&d, 2, "N");
        else pb_int(&d, 1, dims[i]);
        pb_sub(&shape, 1, &d);
    }
    pb_int(&tensor, 1, ONNX_FLOAT);
    pb_sub(&tensor, 2, &shape);
    pb_sub(&type, 1, &tensor);
    pb_str(&vi, 1, name);
    pb_sub(&vi, 2, &type);
    pb_sub(graph, field, &vi);
}

int sn_export_onnx(const sn_net *m, const char *path, sn_error *err)
{
    buf g = { 0 };
    char cur[32] = "input", next[32], wname[32], bname[32];
    int tensors = 0, params = 0, image = 0; /* image: cur is NCHW */
#define NEXT() (snprintf(next, sizeof next, "t%d", ++tensors), next)
#define ADVANCE() memcpy(cur, next, sizeof cur)
    for (int l = 0; l < m->nlayers; l++) {
        const sn_layer *L = &m->layer[l];
        const char *type = L->ops->type;
        const int is_dense = !strcmp(type, "dense"), is_conv = !strcmp(type, "conv"), is_pool = !strcmp(type, "pool");
        if ((is_conv || is_pool) && !image) { /* flat NHWC rows -> N x H x W x C -> NCHW */
            const int64_t shape[4] = { -1, L->ih, L->iw, L->ic }, four = 4;
            char sname[32];
            snprintf(sname, sizeof sname, "shape%d", l + 1);
            initializer(&g, sname, ONNX_INT64, &four, 1, shape, 4);
            node(&g, "Reshape", cur, sname, NULL, NEXT(), NULL, 0), ADVANCE();
            const attr perm = { "perm", ATTR_INTS, 0, 0, { 0, 3, 1, 2 }, 4 };
            node(&g, "Transpose", cur, NULL, NULL, NEXT(), &perm, 1), ADVANCE();
            image = 1;
        }
        if (is_dense && image) { /* NCHW -> NHWC, flattened as our dense layers read it */
            const attr perm = { "perm", ATTR_INTS, 0, 0, { 0, 2, 3, 1 }, 4 };
            node(&g, "Transpose", cur, NULL, NULL, NEXT(), &perm, 1), ADVANCE();
            const attr axis = { "axis", ATTR_INT, 0, 1, { 0 }, 0 };
            node(&g, "Flatten", cur, NULL, NULL, NEXT(), &axis, 1), ADVANCE();
            image = 0;
        }
        if (is_dense || is_conv) {
            params++;
            snprintf(wname, sizeof wname, "W%d", params), snprintf(bname, sizeof bname, "b%d", params);
            const int64_t nb = is_dense ? L->out : L->oc;
            initializer(&g, bname, ONNX_FLOAT, &nb, 1, L->b, (size_t)nb);
            if (is_dense) {
                const int64_t dims[2] = { L->in, L->out };
                initializer(&g, wname, ONNX_FLOAT, dims, 2, L->W, (size_t)L->in * L->out);
                node(&g, "Gemm", cur, wname, bname, NEXT(), NULL, 0), ADVANCE();
            } else {
                /* Ours: E x oc with e = (ky K + kx) C_in + c (HWIO); ONNX: OIHW. */
                const int k = L->k, ic = L->ic, oc = L->oc, pad = L->same ? (k - 1) / 2 : 0;
                const size_t n = (size_t)k * k * ic * oc;
                float *w = malloc(sizeof(float) * n);
                if (!w) { drop(&g); return sn_fail(err, SN_ENOMEM, "%s: out of memory", path); }
                for (int o = 0; o < oc; o++)
                    for (int c = 0; c < ic; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                                w[(((size_t)o * ic + c) * k + ky) * k + kx] = L->W[((size_t)(ky * k + kx) * ic + c) * oc + o];
                const int64_t dims[4] = { oc, ic, k, k };
                initializer(&g, wname, ONNX_FLOAT, dims, 4, w, n);
                free(w);
                const attr a[3] = { { "kernel_shape", ATTR_INTS, 0, 0, { k, k }, 2 },
                                    { "pads", ATTR_INTS, 0, 0, { pad, pad, pad, pad }, 4 },
                                    { "strides", ATTR_INTS, 0, 0, { 1, 1 }, 2 } };
                node(&g, "Conv", cur, wname, bname, NEXT(), a, 3), ADVANCE();
            }
            if (L->relu) node(&g, "Relu", cur, NULL, NULL, NEXT(), NULL, 0), ADVANCE();
        } else if (is_pool) {
            const attr a[2] = { { "kernel_shape", ATTR_INTS, 0, 0, { L->k, L->k }, 2 },
                                { "strides", ATTR_INTS, 0, 0, { L->k, L->k }, 2 } };
            node(&g, "MaxPool", cur, NULL, NULL, NEXT(), a, 2), ADVANCE();
        } else if (!strcmp(type, "relu")) {
            node(&g, "Relu", cur, NULL, NULL, NEXT(), NULL, 0), ADVANCE();
        } else if (!strcmp(type, "leaky")) {
            const attr alpha = { "alpha", ATTR_FLOAT, L->arg, 0, { 0 }, 0 };
            node(&g, "LeakyRelu", cur, NULL, NULL, NEXT(), &alpha, 1), ADVANCE();
        } else {
            drop(&g);
            return sn_fail(err, SN_EUNSUPPORTED, "%s: layer %d is a '%s' layer, which the ONNX export does not know",
                           path, l + 1, type);
        }
    }
    if (image) {
        drop(&g);
        return sn_fail(err, SN_EUNSUPPORTED, "%s: the network ends in an image layer; expected flat logits", path);
    }
#undef NEXT
#undef ADVANCE
    node(&g, "Identity", cur, NULL, NULL, "logits", NULL, 0);
    const attr axis = { "axis", ATTR_INT, 0, 1, { 0 }, 0 };
    node(&g, "Softmax", "logits", NULL, NULL, "probs", &axis, 1);
    pb_str(&g, 2, "scratchnet");
    const int64_t in_dims[2] = { -1, m->sizes[0] }, out_dims[2] = { -1, m->sizes[m->nlayers] };
    value_info(&g, 11, "input", in_dims, 2);
    value_info(&g, 12, "logits", out_dims, 2);
    value_info(&g, 12, "probs", out_dims, 2);
    buf model = { 0 }, opset = { 0 };
    pb_int(&model, 1, 7); /* IR version 7: opset 13's */
    pb_str(&model, 2, "scratchnet");
    pb_str(&model, 3, "0.1");
    pb_sub(&model, 7, &g);
    pb_str(&opset, 1, "");
    pb_int(&opset, 2, 13);
    pb_sub(&model, 8, &opset);
    int rc = model.oom ? sn_fail(err, SN_ENOMEM, "%s: out of memory", path)
                       : sn_write_file_atomic(path, model.p, model.len, err);
    drop(&model);
    return rc;
}

/* ---- NPZ: a zip (stored, no compression) of .npy arrays ----------------------------- */

/* An .npy file: magic, version 1.0, a header dict padded so the data starts at a
 * multiple of 64 bytes, then the data (little-endian). */
static void npy(buf *b, const char *descr, const char *shape, const void *data, size_t bytes)
{
    char head[256];
    int n = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    const int total = 10 + n + 1, padded = (total + 63) / 64 * 64;
    put(b, "\x93NUMPY\x01\x00", 8);
    put_le(b, (uint64_t)(padded - 10), 2);
    put(b, head, (size_t)n);
    for (int i = total; i < padded; i++) put(b, " ", 1);
    put(b, "\n", 1);
    put(b, data, bytes);
}

typedef struct member {
    char name[32];
    buf data;
} member;

enum { MAX_MEMBERS = 2 * SN_MAX_LAYERS + 3 };

static void zip_all(buf *z, member *mem, int n)
{
    size_t offsets[MAX_MEMBERS];
    uint32_t crcs[MAX_MEMBERS];
    for (int i = 0; i < n; i++) {
        const size_t nl = strlen(mem[i].name);
        crcs[i] = (uint32_t)crc32(0L, mem[i].data.p, (uInt)mem[i].data.len);
        offsets[i] = z->len;
        put_le(z, 0x04034b50, 4), put_le(z, 20, 2), put_le(z, 0, 2), put_le(z, 0, 2); /* signature, version, flags, stored */
        put_le(z, 0, 2), put_le(z, 0x21, 2);                                          /* time, date: 1980-01-01 */
        put_le(z, crcs[i], 4), put_le(z, mem[i].data.len, 4), put_le(z, mem[i].data.len, 4);
        put_le(z, nl, 2), put_le(z, 0, 2);
        put(z, mem[i].name, nl);
        put(z, mem[i].data.p, mem[i].data.len);
    }
    const size_t cd = z->len;
    for (int i = 0; i < n; i++) {
        const size_t nl = strlen(mem[i].name);
        put_le(z, 0x02014b50, 4), put_le(z, 20, 2), put_le(z, 20, 2), put_le(z, 0, 2), put_le(z, 0, 2);
        put_le(z, 0, 2), put_le(z, 0x21, 2);
        put_le(z, crcs[i], 4), put_le(z, mem[i].data.len, 4), put_le(z, mem[i].data.len, 4);
        put_le(z, nl, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 4);
        put_le(z, offsets[i], 4);
        put(z, mem[i].name, nl);
    }
    const size_t cd_size = z->len - cd;
    put_le(z, 0x06054b50, 4), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, (uint64_t)n, 2), put_le(z, (uint64_t)n, 2);
    put_le(z, cd_size, 4), put_le(z, cd, 4), put_le(z, 0, 2);
}

int sn_export_npz(const sn_net *m, const char *path, sn_error *err)
{
    member mem[MAX_MEMBERS];
    int n = 0, params = 0;
    memset(mem, 0, sizeof mem);
    char shape[64];
    for (int l = 0; l < m->nlayers; l++) {
        const sn_layer *L = &m->layer[l];
        if (!L->ops->nweights(L)) continue;
        const int conv = !strcmp(L->ops->type, "conv");
        params++;
        buf w = { 0 };
        if (conv) snprintf(shape, sizeof shape, "(%d, %d, %d, %d)", L->k, L->k, L->ic, L->oc);
        else snprintf(shape, sizeof shape, "(%d, %d)", L->in, L->out);
        const size_t nw = L->ops->nweights(L), nb = L->ops->nbiases(L);
        buf raw = { 0 };
        put_f32s(&raw, L->W, nw);
        npy(&w, "<f4", shape, raw.p, raw.len);
        w.oom |= raw.oom, drop(&raw);
        snprintf(mem[n].name, sizeof mem[n].name, "W%d.npy", params), mem[n++].data = w;
        buf b = { 0 };
        put_f32s(&raw, L->b, nb);
        snprintf(shape, sizeof shape, "(%zu,)", nb);
        npy(&b, "<f4", shape, raw.p, raw.len);
        b.oom |= raw.oom, drop(&raw);
        snprintf(mem[n].name, sizeof mem[n].name, "b%d.npy", params), mem[n++].data = b;
    }
    /* The spec as a 0-d unicode string (UTF-32LE), the preprocessing as scalars. */
    char spec[512], descr[16];
    sn_net_format(m->layer, m->nlayers, ',', spec, sizeof spec);
    const size_t chars = strlen(spec) ? strlen(spec) : 1;
    buf s = { 0 }, raw = { 0 };
    for (size_t i = 0; i < chars; i++) put_le(&raw, (unsigned char)spec[i], 4);
    snprintf(descr, sizeof descr, "<U%zu", chars);
    npy(&s, descr, "()", raw.p, raw.len);
    s.oom |= raw.oom, drop(&raw);
    snprintf(mem[n].name, sizeof mem[n].name, "spec.npy"), mem[n++].data = s;
    buf d = { 0 }, w = { 0 };
    const unsigned char deskew = (unsigned char)(m->pre.deskew != 0);
    npy(&d, "|u1", "()", &deskew, 1);
    snprintf(mem[n].name, sizeof mem[n].name, "deskew.npy"), mem[n++].data = d;
    put_f32s(&raw, &m->pre.max_width, 1);
    npy(&w, "<f4", "()", raw.p, raw.len);
    drop(&raw);
    snprintf(mem[n].name, sizeof mem[n].name, "max_width.npy"), mem[n++].data = w;
    buf z = { 0 };
    int oom = 0;
    for (int i = 0; i < n; i++) oom |= mem[i].data.oom;
    if (!oom) zip_all(&z, mem, n);
    for (int i = 0; i < n; i++) drop(&mem[i].data);
    const int rc = oom || z.oom ? sn_fail(err, SN_ENOMEM, "%s: out of memory", path)
                                : sn_write_file_atomic(path, z.p, z.len, err);
    drop(&z);
    return rc;
}
