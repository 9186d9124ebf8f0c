/* Data-parallel training with fixed shards: see shard.h for the tree and why the bits do
 * not depend on the number of processes. */
#include "scratchnet/shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/gemm.h"
#include "util.h"

int sn_shards_init(sn_shards *s, int count, int rank, int ranks, sn_exchange_fn exchange, void *user, size_t nparams,
                   sn_error *err)
{
    memset(s, 0, sizeof *s);
    if (count < 1 || count > 4096)
        return sn_fail(err, SN_EINVAL, "--shards: %d is not allowed; expected 1..4096 shards per batch", count);
    if (ranks < 1 || (ranks & (ranks - 1)))
        return sn_fail(err, SN_EINVAL,
                       "%d processes: sharded training needs a power of two (1, 2, 4, ...) so that each one's shards "
                       "are a whole subtree of the fixed summation tree",
                       ranks);
    if (count % ranks)
        return sn_fail(err, SN_EINVAL,
                       "--shards %d over %d processes: the processes must divide the shards (each computes %d / %d of "
                       "them); use --shards %d or a multiple",
                       count, ranks, count, ranks, ranks);
    if (ranks > 1 && !exchange) return sn_fail(err, SN_EINVAL, "%d processes but no exchange function", ranks);
    const int local = count / ranks;
    const size_t stride = sn_align_floats(nparams + 2); /* a gradient, then its loss as a double */
    s->count = count, s->rank = rank, s->ranks = ranks, s->exchange = exchange, s->user = user, s->nparams = nparams;
    s->bufs = aligned_alloc(64, (size_t)local * stride * sizeof(float));
    s->recv = aligned_alloc(64, stride * sizeof(float));
    if (!s->bufs || !s->recv) {
        sn_shards_free(s);
        return sn_fail(err, SN_ENOMEM, "out of memory for %d shard gradients of %zu parameters", local, nparams);
    }
    return SN_OK;
}

void sn_shards_free(sn_shards *s)
{
    free(s->bufs), free(s->recv);
    memset(s, 0, sizeof *s);
}

void sn_trainer_set_shards(sn_trainer *t, sn_shards *s)
{
    t->shards = s;
    t->model->shards = s && s->count > 1 ? s->count : 0; /* recorded in its files: the bits depend on it */
}

static size_t stride_of(const sn_shards *s)
{
    return sn_align_floats(s->nparams + 2);
}

/* A buffer's loss sum lives after its gradient, as a double (8-byte aligned: the stride
 * is a multiple of 16 floats and nparams + 2 floats hold the double at an even offset). */
static double *loss_of(float *buf, size_t nparams)
{
    return (double *)(void *)(buf + ((nparams + 1) & ~(size_t)1));
}

/* a += b, gradient and loss: one node of the tree. */
static void add_into(float *a, const float *b, size_t nparams)
{
    for (size_t i = 0; i < nparams; i++) a[i] += b[i];
    *loss_of(a, nparams) += *loss_of((float *)b, nparams);
}

/* The subtree over shards [lo, hi) of this process's buffers (local index 0 = shard
 * first), summed into the buffer of shard lo. */
static void tree_sum(const sn_shards *s, int first, int lo, int hi)
{
    if (hi - lo < 2) return;
    const int mid = lo + (hi - lo) / 2;
    tree_sum(s, first, lo, mid);
    tree_sum(s, first, mid, hi);
    const size_t stride = stride_of(s);
    add_into(s->bufs + (size_t)(lo - first) * stride, s->bufs + (size_t)(mid - first) * stride, s->nparams);
}

int sn_shards_epoch(sn_trainer *t, const sn_dataset *ds, sn_epoch_stats *st, sn_progress_fn progress, void *user)
{
    sn_shards *s = t->shards;
    memset(st, 0, sizeof *st);
    st->epoch = t->epoch + 1;
    const double t0 = sn_now();
    sn_dataset augmented;
    int rc = sn_trainer_begin_epoch(t, ds, &augmented, &ds, &st->augment_s);
    if (rc) return rc;
    const int S = s->count, local = S / s->ranks, first_shard = s->rank * local, B = t->fwd.capacity;
    const size_t stride = stride_of(s), n_params = s->nparams;
    const int steps = (t->ntrain + B - 1) / B;
    double loss_sum = 0.0, progress_s = 0.0;
    long rows_done = 0;
    for (int step = 0; step < steps && !st->diverged; step++) {
        const int first = step * B, n = t->ntrain - first < B ? t->ntrain - first : B;
        double c0 = sn_now();
        /* This process's shards of the batch, each gradient with its loss sum. */
        for (int j = first_shard; j < first_shard + local; j++) {
            const int r0 = (int)((long)j * n / S), r1 = (int)((long)(j + 1) * n / S);
            float *buf = s->bufs + (size_t)(j - first_shard) * stride;
            double sum = 0.0;
            if (r1 > r0) {
                sn_batch_gather(ds, t->order, first + r0, r1 - r0, t->fwd.act[0], t->fwd.y);
                t->loss_rows = n;
                (void)sn_trainer_gradient(t, r1 - r0);
                t->loss_rows = 0;
                for (int r = 0; r < r1 - r0; r++) sum += t->fwd.loss[r];
                memcpy(buf, t->grads, n_params * sizeof(float));
            } else { /* a last batch smaller than S: this shard is empty */
                memset(buf, 0, n_params * sizeof(float));
            }
            *loss_of(buf, n_params) = sum;
        }
        double c1 = sn_now();
        tree_sum(s, first_shard, first_shard, first_shard + local);
        double c2 = sn_now();
        /* Across processes: level by level of the same tree. */
        for (int level = 1; level < s->ranks; level <<= 1) {
            if (s->exchange(s->user, s->rank ^ level, s->bufs, s->recv, stride * sizeof(float))) {
                s->failed = 1;
                return SN_EIO;
            }
            add_into(s->bufs, s->recv, n_params);
        }
        const double batch_loss = *loss_of(s->bufs, n_params);
        double c3 = sn_now();
        memcpy(t->grads, s->bufs, n_params * sizeof(float));
        sn_trainer_apply(t);
        const double c4 = sn_now();
        s->compute_s += c1 - c0, s->sum_s += c2 - c1, s->exchange_s += c3 - c2, s->update_s += c4 - c3, s->steps++;
        rows_done += n;
        if (!isfinite(batch_loss)) {
            st->diverged = 1;
            loss_sum = batch_loss;
            break;
        }
        loss_sum += batch_loss;
        if (progress) {
            const double p0 = sn_now();
            progress(user, (int)rows_done, t->ntrain);
            progress_s += sn_now() - p0;
        }
    }
    const double seconds = sn_now() - t0 - progress_s;
    st->train_loss = st->diverged ? NAN : loss_sum / (double)rows_done;
    st->train_s = seconds;
    st->samples_per_s = seconds > 0 ? rows_done / seconds : 0.0;
    if (!st->diverged) t->epoch++;
    return SN_OK;
}

/* Rows [row(q), row(q + 1)) are process q's, of n. */
static int first_row(int q, int ranks, int n)
{
    return (int)((long)q * n / ranks);
}

int sn_shards_evaluate(sn_shards *s, sn_trainer *t, const sn_dataset *ds, double *loss, double *acc, sn_error *err)
{
    const int n = ds->count, R = s->ranks, r = s->rank;
    float *losses = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    uint8_t *correct = malloc((size_t)(n > 0 ? n : 1));
    if (!losses || !correct) {
        free(losses), free(correct);
        return sn_fail(err, SN_ENOMEM, "out of memory for the losses of %d rows", n);
    }
    const int r0 = first_row(r, R, n), r1 = first_row(r + 1, R, n);
    const sn_dataset mine = sn_dataset_slice(ds, r0, r1 - r0);
    sn_evaluate_losses(t->model, &t->fwd, &mine, t->cfg.threads, losses + r0, correct + r0);
    /* Level l: this process holds the rows of its group of l processes; the partner
     * group's rows come in exchange. */
    int rc = SN_OK;
    for (int level = 1; level < R && rc == SN_OK; level <<= 1) {
        const int group = r & ~(level - 1), partner = group ^ level;
        const int g0 = first_row(group, R, n), g1 = first_row(group + level, R, n);
        const int p0 = first_row(partner, R, n), p1 = first_row(partner + level, R, n);
        /* Both sides send and receive the larger count's bytes (the exchange is symmetric);
         * the rows beyond a group's own are padding. */
        const int most = g1 - g0 > p1 - p0 ? g1 - g0 : p1 - p0;
        float *lsend = malloc(sizeof(float) * (size_t)(most + 1)), *lrecv = malloc(sizeof(float) * (size_t)(most + 1));
        uint8_t *csend = malloc((size_t)most + 1), *crecv = malloc((size_t)most + 1);
        if (!lsend || !lrecv || !csend || !crecv) {
            rc = sn_fail(err, SN_ENOMEM, "out of memory exchanging %d rows' losses", most);
        } else {
            memset(lsend, 0, sizeof(float) * (size_t)most), memset(csend, 0, (size_t)most);
            memcpy(lsend, losses + g0, sizeof(float) * (size_t)(g1 - g0));
            memcpy(csend, correct + g0, (size_t)(g1 - g0));
            if (s->exchange(s->user, r ^ level, lsend, lrecv, sizeof(float) * (size_t)most) ||
                s->exchange(s->user, r ^ level, csend, crecv, (size_t)most)) {
                s->failed = 1;
                rc = sn_fail(err, SN_EIO, "exchanging the evaluation's losses with process %d failed", r ^ level);
            } else {
                memcpy(losses + p0, lrecv, sizeof(float) * (size_t)(p1 - p0));
                memcpy(correct + p0, crecv, (size_t)(p1 - p0));
            }
        }
        free(lsend), free(lrecv), free(csend), free(crecv);
    }
    if (rc == SN_OK) sn_evaluate_sum(losses, correct, n, loss, acc);
    free(losses), free(correct);
    return rc;
}
