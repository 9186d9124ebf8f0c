#include "scratchnet/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "scratchnet/train.h"
#include "util.h"

enum { MAX_FIELDS = 16, MAX_PRE = 16 };
/* Preprocessing record types (modelfile.h). */
enum { PRE_DESKEW = 1, PRE_MAX_WIDTH = 2, PRE_AUGMENT = 3, REC_TRAINING = 4, REC_SHARDS = 5 /* u32 S > 1 */ };
enum { TRAINING_FIXED = 28 }; /* record 4: u64 saved_at, u32 epochs, batch, opt, f32 lr, test_acc; then the commit */

/* What a file's records say beside the network. */
typedef struct file_extras {
    sn_preprocess pre;
    sn_augment aug;
    sn_train_record record;
    int shards;
} file_extras;

static const char MAGIC[8] = { 'S', 'C', 'R', 'N', 'T', 'N', 'E', 'T' };
enum { KIND_MODEL = 1, KIND_CHECKPOINT = 2 };
#define MAX_FILE_BYTES ((size_t)SN_MAX_PARAMS * 4 * 3 + 4096)

/* ---- the file in memory: util.h's byte buffer --------------------------------- */
typedef sn_bytes bytes;
#define put sn_bytes_put
#define put_f32s sn_bytes_put_f32s
static void put_u32(bytes *b, uint32_t v) { sn_bytes_put_le(b, v, 4); }
static void put_u64(bytes *b, uint64_t v) { sn_bytes_put_le(b, v, 8); }

/* ---- a bounds-checked reader ------------------------------------------------ */
typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
} reader;

static int get_u32(reader *r, uint32_t *v)
{
    if (r->len - r->pos < 4) return 0;
    const unsigned char *s = r->p + r->pos;
    *v = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
    r->pos += 4;
    return 1;
}

static int get_u64(reader *r, uint64_t *v)
{
    uint32_t lo, hi;
    if (!get_u32(r, &lo) || !get_u32(r, &hi)) return 0;
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

static int get_f32s(reader *r, float *f, size_t n)
{
    if ((r->len - r->pos) / 4 < n) return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = 0;
        get_u32(r, &u);
        memcpy(&f[i], &u, 4);
    }
    return 1;
}

/* ---- files ------------------------------------------------------------------ */
int sn_ensure_parent_dir(const char *path, sn_error *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return SN_OK;
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return sn_fail(err, SN_EINVAL, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? SN_OK : sn_fail(err, SN_EIO, "%s: not a directory", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return sn_fail(err, SN_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return SN_OK;
}

int sn_write_file_atomic(const char *path, const void *data, size_t len, sn_error *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        return sn_fail(err, SN_EINVAL, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return sn_fail(err, SN_EIO, "%s: cannot create temporary file: %s", path, strerror(errno));
    const unsigned char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return sn_fail(err, SN_EIO, "%s: write failed: %s", path, strerror(e));
        }
        p += w, left -= (size_t)w;
    }
    /* mkstemp makes the file 0600; a model or CSV is an ordinary user file. */
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return sn_fail(err, SN_EIO, "%s: cannot flush: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sn_fail(err, SN_EIO, "%s: cannot rename temporary file into place: %s", path, strerror(e));
    }
    return SN_OK;
}

static void put_header(bytes *b, int kind, const sn_net *m)
{
    put(b, MAGIC, sizeof MAGIC);
    put_u32(b, SN_MODEL_VERSION);
    put_u32(b, (uint32_t)kind);
    put_u32(b, (uint32_t)(m->nlayers + 1));
    for (int i = 0; i <= m->nlayers; i++) put_u32(b, (uint32_t)m->sizes[i]);
    put_u32(b, (uint32_t)m->nlayers);
    for (int l = 0; l < m->nlayers; l++) {
        const sn_layer *layer = &m->layer[l];
        uint32_t extra[MAX_FIELDS] = { 0 };
        if (layer->ops->nextra) layer->ops->save_extra(layer, extra);
        put_u32(b, layer->ops->file_id);
        put_u32(b, 3 + (uint32_t)layer->ops->nextra);
        put_u32(b, (uint32_t)layer->in);
        put_u32(b, (uint32_t)layer->out);
        put_u32(b, (uint32_t)layer->relu);
        for (int i = 0; i < layer->ops->nextra; i++) put_u32(b, extra[i]);
    }
    /* Preprocessing records: only what differs from none, so a model trained without
     * them is byte-identical to one written before they existed. */
    const uint32_t npre = (uint32_t)(m->pre.deskew != 0) + (uint32_t)(m->pre.max_width > 0) +
                          (uint32_t)sn_augment_active(&m->aug) + (uint32_t)(m->record.present != 0) +
                          (uint32_t)(m->shards > 1);
    put_u32(b, npre);
    if (m->pre.deskew) put_u32(b, PRE_DESKEW), put_u32(b, 0);
    if (m->pre.max_width > 0) put_u32(b, PRE_MAX_WIDTH), put_u32(b, 4), put_f32s(b, &m->pre.max_width, 1);
    if (sn_augment_active(&m->aug)) {
        put_u32(b, PRE_AUGMENT), put_u32(b, 8 * SN_AUG_KINDS);
        put_f32s(b, m->aug.range, SN_AUG_KINDS);
        put_f32s(b, m->aug.prob, SN_AUG_KINDS);
    }
    if (m->record.present) {
        const sn_train_record *r = &m->record;
        const size_t clen = strnlen(r->commit, sizeof r->commit - 1);
        put_u32(b, REC_TRAINING), put_u32(b, TRAINING_FIXED + (uint32_t)clen);
        put_u64(b, (uint64_t)r->saved_at);
        put_u32(b, (uint32_t)r->epochs), put_u32(b, (uint32_t)r->batch), put_u32(b, (uint32_t)r->opt);
        put_f32s(b, &r->lr, 1), put_f32s(b, &r->test_acc, 1);
        put(b, r->commit, clen);
    }
    if (m->shards > 1) put_u32(b, REC_SHARDS), put_u32(b, 4), put_u32(b, (uint32_t)m->shards);
}

/* Version 2's layer and preprocessing records: each layer's type (layer.c's registry),
 * fields (in, out, relu, then the type's own) matching the sizes and valid for the type
 * (ops->check), the whole a valid network; anything else is refused by name. A layer's
 * input image is what its own fields say (a convolution's), else the previous layer's
 * output, else a flat row. */
static int read_records(reader *rd, const char *path, const int *sizes, int ns, sn_layer *layers, file_extras *x,
                        sn_error *err)
{
    sn_preprocess *pre = &x->pre;
    sn_augment *aug = &x->aug;
    uint32_t nl = 0, npre = 0;
    if (!get_u32(rd, &nl) || nl != (uint32_t)(ns - 1))
        return sn_fail(err, SN_EFORMAT, "%s: %u layer records for %d layer sizes", path, nl, ns);
    for (uint32_t l = 0; l < nl; l++) {
        uint32_t type = 0, nf = 0, f[MAX_FIELDS] = { 0 };
        if (!get_u32(rd, &type) || !get_u32(rd, &nf) || nf > MAX_FIELDS)
            return sn_fail(err, SN_EFORMAT, "%s: layer record %u is truncated or has %u fields", path, l + 1, nf);
        for (uint32_t i = 0; i < nf; i++)
            if (!get_u32(rd, &f[i])) return sn_fail(err, SN_EFORMAT, "%s: layer record %u is truncated", path, l + 1);
        const sn_layer_ops *ops = sn_layer_type_with_id(type);
        if (!ops)
            return sn_fail(err, SN_EUNSUPPORTED, "%s: layer %u has type %u, which this program does not know", path,
                           l + 1, type);
        const uint32_t want = 3 + (uint32_t)ops->nextra;
        if (nf != want)
            return sn_fail(err, SN_EFORMAT, "%s: layer %u (%s) has %u fields, expected %u", path, l + 1, ops->type, nf,
                           want);
        if (f[0] != (uint32_t)sizes[l] || f[1] != (uint32_t)sizes[l + 1] || f[2] > 1)
            return sn_fail(err, SN_EFORMAT, "%s: layer %u is %s %u -> %u relu=%u, expected %d -> %d from the layer sizes",
                           path, l + 1, ops->type, f[0], f[1], f[2], sizes[l], sizes[l + 1]);
        sn_layer *layer = &layers[l];
        *layer = (sn_layer){ .ops = ops, .in = (int)f[0], .out = (int)f[1], .relu = (int)f[2] };
        const sn_layer *prev = l ? &layers[l - 1] : NULL;
        if (prev && prev->out == layer->in)
            layer->ih = prev->oh, layer->iw = prev->ow, layer->ic = prev->oc;
        else
            layer->ih = 1, layer->iw = 1, layer->ic = layer->in;
        if (ops->nextra) ops->load_extra(layer, f + 3);
        ops->reshape(layer); /* the output's shape, from the input's and the type's fields */
        sn_error why;
        if (ops->check(layer, &why)) return sn_fail(err, SN_EFORMAT, "%s: layer %u: %s", path, l + 1, why.msg);
    }
    sn_error why;
    if (sn_net_check(layers, (int)nl, &why)) return sn_fail(err, SN_EFORMAT, "%s: %s", path, why.msg);
    if (!get_u32(rd, &npre) || npre > MAX_PRE)
        return sn_fail(err, SN_EFORMAT, "%s: %u preprocessing records, expected 0..%d", path, npre, MAX_PRE);
    uint32_t seen = 0;
    for (uint32_t i = 0; i < npre; i++) {
        uint32_t type = 0, nbytes = 0;
        if (!get_u32(rd, &type) || !get_u32(rd, &nbytes))
            return sn_fail(err, SN_EFORMAT, "%s: preprocessing record %u is truncated", path, i + 1);
        if (type < PRE_DESKEW || type > REC_SHARDS)
            return sn_fail(err, SN_EUNSUPPORTED, "%s: preprocessing record type %u is not known to this program",
                           path, type);
        uint32_t want = type == PRE_DESKEW ? 0 : type == PRE_MAX_WIDTH || type == REC_SHARDS ? 4 : 8 * SN_AUG_KINDS;
        if (type == REC_TRAINING) /* its commit is 0..47 bytes */
            want = nbytes >= TRAINING_FIXED && nbytes < TRAINING_FIXED + sizeof x->record.commit ? nbytes : TRAINING_FIXED;
        if (nbytes != want || (seen & (1u << type)))
            return sn_fail(err, SN_EFORMAT, "%s: preprocessing record %u (type %u) has %u bytes, expected %u once",
                           path, i + 1, type, nbytes, want);
        seen |= 1u << type;
        if (type == PRE_DESKEW) pre->deskew = 1;
        else if (type == REC_SHARDS) {
            uint32_t count = 0;
            if (!get_u32(rd, &count) || count < 2 || count > 4096)
                return sn_fail(err, SN_EFORMAT, "%s: %u shards, expected 2..4096", path, count);
            x->shards = (int)count;
        } else if (type == REC_TRAINING) {
            sn_train_record *r = &x->record;
            uint64_t at = 0;
            uint32_t epochs = 0, batch = 0, opt = 0;
            if (!get_u64(rd, &at) || !get_u32(rd, &epochs) || !get_u32(rd, &batch) || !get_u32(rd, &opt) ||
                !get_f32s(rd, &r->lr, 1) || !get_f32s(rd, &r->test_acc, 1) || rd->len - rd->pos < nbytes - TRAINING_FIXED)
                return sn_fail(err, SN_EFORMAT, "%s: training record is truncated", path);
            memcpy(r->commit, rd->p + rd->pos, nbytes - TRAINING_FIXED);
            r->commit[nbytes - TRAINING_FIXED] = '\0';
            rd->pos += nbytes - TRAINING_FIXED;
            r->present = 1, r->saved_at = (int64_t)at, r->epochs = (int)epochs, r->batch = (int)batch, r->opt = (int)opt;
        } else if (type == PRE_MAX_WIDTH) {
            if (!get_f32s(rd, &pre->max_width, 1) || !(pre->max_width > 0 && pre->max_width < 28))
                return sn_fail(err, SN_EFORMAT, "%s: stroke width limit %g, expected 0..28 pixels", path,
                               pre->max_width);
        } else {
            if (!get_f32s(rd, aug->range, SN_AUG_KINDS) || !get_f32s(rd, aug->prob, SN_AUG_KINDS))
                return sn_fail(err, SN_EFORMAT, "%s: augmentation record is truncated", path);
            for (int k = 0; k < SN_AUG_KINDS; k++)
                if (!(aug->range[k] >= 0 && aug->range[k] <= sn_aug_kind_max((sn_aug_kind)k)) ||
                    !(aug->prob[k] >= 0 && aug->prob[k] <= 1))
                    return sn_fail(err, SN_EFORMAT, "%s: augmentation %s=%g@%g is out of range", path,
                                   sn_aug_kind_name((sn_aug_kind)k), aug->range[k], aug->prob[k]);
        }
    }
    return SN_OK;
}

static int finish_and_write(bytes *b, const char *path, sn_error *err)
{
    if (!b->oom) put_u32(b, (uint32_t)crc32(0L, b->p + sizeof MAGIC, (uInt)(b->len - sizeof MAGIC)));
    if (b->oom) {
        free(b->p);
        return sn_fail(err, SN_ENOMEM, "%s: out of memory while serialising", path);
    }
    int rc = sn_ensure_parent_dir(path, err);
    if (!rc) rc = sn_write_file_atomic(path, b->p, b->len, err);
    free(b->p);
    return rc;
}

int sn_model_save(const sn_net *m, const char *path, sn_error *err)
{
    bytes b = { 0 };
    put_header(&b, KIND_MODEL, m);
    put_f32s(&b, m->params, m->nparams);
    return finish_and_write(&b, path, err);
}

/* Reads the whole file (bounded), checks magic, CRC and the header; on success the
 * reader is positioned after the header's network, which is in layers (version 1: the
 * MLP of its sizes). */
static int read_checked(const char *path, int want_kind, unsigned char **data, reader *r,
                        sn_layer *layers, int *nlayers, file_extras *x, sn_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sn_fail(err, SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sn_fail(err, SN_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size > MAX_FILE_BYTES) {
        fclose(f);
        return sn_fail(err, SN_EFORMAT, "%s: %zu bytes is larger than any valid model file", path, size);
    }
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) { fclose(f); return sn_fail(err, SN_ENOMEM, "%s: out of memory", path); }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    const char *what = want_kind == KIND_MODEL ? "model" : "checkpoint";
    int rc = SN_OK;
    uint32_t version = 0, kind = 0, ns = 0, stored_crc = 0;
    int sizes[SN_MAX_LAYERS + 1];
    reader rd = { buf, got, sizeof MAGIC };
    if (got != size) rc = sn_fail(err, SN_EIO, "%s: short read", path);
    else if (size < sizeof MAGIC + 16 || memcmp(buf, MAGIC, sizeof MAGIC) != 0)
        rc = sn_fail(err, SN_EFORMAT, "%s: not a scratchnet %s file (magic 'SCRNTNET' expected)", path, what);
    else if (!get_u32(&rd, &version) || version < 1 || version > SN_MODEL_VERSION)
        rc = sn_fail(err, SN_EFORMAT, "%s: format version %u, this program reads versions 1..%d", path, version,
                     SN_MODEL_VERSION);
    else if (!get_u32(&rd, &kind) || kind != (uint32_t)want_kind)
        rc = sn_fail(err, SN_EFORMAT, "%s: is a %s file, expected a %s file", path,
                     kind == KIND_MODEL ? "model" : kind == KIND_CHECKPOINT ? "checkpoint" : "unknown", what);
    else if (!get_u32(&rd, &ns) || ns < 2 || ns > SN_MAX_LAYERS + 1)
        rc = sn_fail(err, SN_EFORMAT, "%s: %u layer sizes, expected 2..%d", path, ns, SN_MAX_LAYERS + 1);
    if (!rc) {
        for (uint32_t i = 0; i < ns && !rc; i++) {
            uint32_t v = 0;
            if (!get_u32(&rd, &v) || v < 1 || v > SN_MAX_WIDTH)
                rc = sn_fail(err, SN_EFORMAT, "%s: layer size %u is %u, expected 1..%d", path, i, v, SN_MAX_WIDTH);
            else sizes[i] = (int)v;
        }
    }
    if (!rc && version >= 2) {
        rc = read_records(&rd, path, sizes, (int)ns, layers, x, err);
    } else if (!rc) {
        if (!sn_mlp_count_params(sizes, (int)ns))
            rc = sn_fail(err, SN_EFORMAT, "%s: absurd network shape (more than %d parameters)", path, SN_MAX_PARAMS);
        else
            sn_net_mlp_layers(sizes, (int)ns, layers);
    }
    if (!rc) {
        reader tail = { buf, size, size - 4 };
        get_u32(&tail, &stored_crc);
        uint32_t actual = (uint32_t)crc32(0L, buf + sizeof MAGIC, (uInt)(size - 4 - sizeof MAGIC));
        if (actual != stored_crc)
            rc = sn_fail(err, SN_EFORMAT, "%s: CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt or truncated",
                         path, stored_crc, actual);
    }
    if (rc) { free(buf); return rc; }
    rd.len = size - 4; /* the CRC is not payload */
    *data = buf, *r = rd, *nlayers = (int)ns - 1;
    return SN_OK;
}

int sn_model_file_version(const char *path, int *version, sn_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sn_fail(err, SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[sizeof MAGIC + 4];
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got != sizeof head || memcmp(head, MAGIC, sizeof MAGIC) != 0)
        return sn_fail(err, SN_EFORMAT, "%s: not a scratchnet model file (magic 'SCRNTNET' expected)", path);
    reader r = { head, sizeof head, sizeof MAGIC };
    uint32_t v = 0;
    get_u32(&r, &v);
    if (v < 1 || v > SN_MODEL_VERSION)
        return sn_fail(err, SN_EFORMAT, "%s: format version %u, this program reads versions 1..%d", path, v,
                       SN_MODEL_VERSION);
    *version = (int)v;
    return SN_OK;
}

int sn_model_load(sn_net *m, const char *path, sn_error *err)
{
    unsigned char *buf;
    reader r;
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    file_extras x;
    memset(&x, 0, sizeof x);
    memset(m, 0, sizeof *m);
    int rc = read_checked(path, KIND_MODEL, &buf, &r, layers, &nl, &x, err);
    if (rc) return rc;
    size_t n = 0;
    for (int l = 0; l < nl; l++) n += sn_layer_nparams(&layers[l]);
    if (r.len - r.pos != n * 4) {
        rc = sn_fail(err, SN_EFORMAT, "%s: %zu bytes of weights expected for this shape, found %zu",
                     path, n * 4, r.len - r.pos);
    } else if (!(rc = sn_net_create(m, layers, nl, err))) {
        get_f32s(&r, m->params, n);
        m->pre = x.pre, m->aug = x.aug, m->record = x.record, m->shards = x.shards;
    }
    free(buf);
    return rc;
}

int sn_checkpoint_save(const sn_trainer *t, const char *path, sn_error *err)
{
    const sn_net *m = t->model;
    bytes b = { 0 };
    put_header(&b, KIND_CHECKPOINT, m);
    put_u32(&b, (uint32_t)t->cfg.opt);
    put_f32s(&b, &t->cfg.lr, 1);
    put_u32(&b, (uint32_t)t->cfg.batch);
    put_u32(&b, (uint32_t)t->cfg.val);
    put_u64(&b, t->cfg.seed);
    put_u32(&b, (uint32_t)t->cfg.epochs);
    put_u32(&b, (uint32_t)t->cfg.cosine);
    put_u32(&b, (uint32_t)t->epoch);
    put_u64(&b, (uint64_t)t->opt.step);
    for (int i = 0; i < 4; i++) put_u64(&b, t->rng.s[i]);
    put_f32s(&b, m->params, m->nparams);
    if (t->opt.m) put_f32s(&b, t->opt.m, m->nparams);
    if (t->opt.v) put_f32s(&b, t->opt.v, m->nparams);
    return finish_and_write(&b, path, err);
}

static int same_layers(const sn_layer *a, const sn_layer *b, int na, int nb)
{
    if (na != nb) return 0;
    for (int l = 0; l < na; l++)
        if (a[l].ops != b[l].ops || a[l].in != b[l].in || a[l].out != b[l].out || a[l].relu != b[l].relu ||
            memcmp(&a[l].arg, &b[l].arg, sizeof a[l].arg) != 0)
            return 0;
    return 1;
}

/* The run's record after a checkpoint's network: its arguments, progress and RNG. */
typedef struct run_record {
    uint32_t opt, batch, val, epoch, epochs, cosine;
    uint64_t seed, step, rng[4];
    float lr;
} run_record;

static int get_run_record(reader *r, run_record *c)
{
    return get_u32(r, &c->opt) && get_f32s(r, &c->lr, 1) && get_u32(r, &c->batch) && get_u32(r, &c->val) &&
           get_u64(r, &c->seed) && get_u32(r, &c->epochs) && get_u32(r, &c->cosine) && get_u32(r, &c->epoch) &&
           get_u64(r, &c->step) && get_u64(r, &c->rng[0]) && get_u64(r, &c->rng[1]) && get_u64(r, &c->rng[2]) &&
           get_u64(r, &c->rng[3]);
}

int sn_checkpoint_info_read(const char *path, sn_checkpoint_info *info, sn_error *err)
{
    unsigned char *buf;
    reader r;
    memset(info, 0, sizeof *info);
    file_extras x;
    memset(&x, 0, sizeof x);
    int rc = read_checked(path, KIND_CHECKPOINT, &buf, &r, info->layers, &info->nlayers, &x, err);
    info->pre = x.pre, info->aug = x.aug, info->shards = x.shards;
    if (rc) return rc;
    run_record c;
    if (!get_run_record(&r, &c)) rc = sn_fail(err, SN_EFORMAT, "%s: truncated checkpoint header", path);
    else if (c.opt >= SN_OPT_COUNT) rc = sn_fail(err, SN_EFORMAT, "%s: optimiser %u is not known", path, c.opt);
    else {
        info->cfg = sn_train_defaults();
        info->cfg.opt = (sn_opt_kind)c.opt, info->cfg.lr = c.lr, info->cfg.batch = (int)c.batch;
        info->cfg.val = (int)c.val, info->cfg.seed = c.seed, info->cfg.epochs = (int)c.epochs;
        info->cfg.cosine = (int)c.cosine, info->cfg.aug = info->aug;
        info->epoch = (int)c.epoch, info->step = (long)c.step;
    }
    free(buf);
    return rc;
}

int sn_checkpoint_load(sn_trainer *t, const char *path, sn_error *err)
{
    unsigned char *buf;
    reader r;
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    file_extras x;
    memset(&x, 0, sizeof x);
    int rc = read_checked(path, KIND_CHECKPOINT, &buf, &r, layers, &nl, &x, err);
    if (rc) return rc;
    const sn_preprocess pre = x.pre;
    const sn_augment aug = x.aug;
    const sn_net *m = t->model;
    run_record c;
    const int ok = get_run_record(&r, &c);
    const uint32_t opt = c.opt, batch = c.batch, val = c.val, epoch = c.epoch, epochs = c.epochs, cosine = c.cosine;
    const uint64_t seed = c.seed, step = c.step, *rng = c.rng;
    const float lr = c.lr;
    char have[512], want[512];
    sn_net_format(layers, nl, ',', have, sizeof have);
    sn_net_format(m->layer, m->nlayers, ',', want, sizeof want);
    char aug_have[128], aug_want[128];
    sn_augment_format(&aug, aug_have, sizeof aug_have);
    sn_augment_format(&t->cfg.aug, aug_want, sizeof aug_want);
    if (!ok) rc = sn_fail(err, SN_EFORMAT, "%s: truncated checkpoint header", path);
    else if (!same_layers(layers, m->layer, nl, m->nlayers))
        rc = sn_fail(err, SN_EINVAL, "%s: made with --net %s, this run has --net %s", path, have, want);
    else if (pre.deskew != m->pre.deskew)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --deskew %s, this run has --deskew %s", path,
                     pre.deskew ? "on" : "off", m->pre.deskew ? "on" : "off");
    else if (x.shards != m->shards)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --shards %d, this run has --shards %d", path,
                     x.shards ? x.shards : 1, m->shards ? m->shards : 1);
    else if (memcmp(&aug, &t->cfg.aug, sizeof aug) != 0)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --augment %s, this run has --augment %s", path, aug_have,
                     aug_want);
    else if (opt != (uint32_t)t->cfg.opt)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --opt %s, this run has --opt %s", path,
                     opt < SN_OPT_COUNT ? sn_opt_name((sn_opt_kind)opt) : "?", sn_opt_name(t->cfg.opt));
    else if (lr != t->cfg.lr)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --lr %g, this run has --lr %g", path, lr, t->cfg.lr);
    else if (batch != (uint32_t)t->cfg.batch)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --batch %u, this run has --batch %d", path, batch, t->cfg.batch);
    else if (val != (uint32_t)t->cfg.val)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --val %u, this run has --val %d", path, val, t->cfg.val);
    else if (seed != t->cfg.seed)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --seed %llu, this run has --seed %llu", path,
                     (unsigned long long)seed, (unsigned long long)t->cfg.seed);
    else if (cosine != (uint32_t)t->cfg.cosine)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --schedule %s, this run has --schedule %s", path,
                     cosine ? "cosine" : "constant", t->cfg.cosine ? "cosine" : "constant");
    else if (cosine && epochs != (uint32_t)t->cfg.epochs)
        rc = sn_fail(err, SN_EINVAL, "%s: made with --epochs %u, and the cosine schedule depends on it; this run has --epochs %d",
                     path, epochs, t->cfg.epochs);
    else if (epoch > (uint32_t)t->cfg.epochs)
        rc = sn_fail(err, SN_EINVAL, "%s: already has %u epochs, more than --epochs %d", path, epoch, t->cfg.epochs);
    else {
        size_t n = m->nparams, states = (size_t)sn_opt_state_per_param(t->cfg.opt);
        if (r.len - r.pos != n * 4 * (1 + states))
            rc = sn_fail(err, SN_EFORMAT, "%s: %zu bytes of state expected, found %zu", path,
                         n * 4 * (1 + states), r.len - r.pos);
        else {
            get_f32s(&r, m->params, n);
            if (t->opt.m) get_f32s(&r, t->opt.m, n);
            if (t->opt.v) get_f32s(&r, t->opt.v, n);
            t->epoch = (int)epoch;
            t->opt.step = (long)step;
            memcpy(t->rng.s, rng, sizeof t->rng.s);
        }
    }
    free(buf);
    return rc;
}
