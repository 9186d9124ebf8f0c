#include "scratchnet/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "scratchnet/gemm.h"
#include "scratchnet/layers.h"

#ifdef _OPENMP
#include <omp.h>
#endif

double sn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sn_train_config sn_train_defaults(void)
{
    return (sn_train_config){ .epochs = 10, .batch = 128, .lr = 0.05f, .opt = SN_OPT_MOMENTUM,
                              .threads = 1, .seed = 42, .val = 10000, .cosine = 1 };
}

int sn_train_config_check(const sn_train_config *c, sn_error *err)
{
    if (c->epochs < 1) return sn_fail(err, SN_EINVAL, "epochs must be >= 1, got %d", c->epochs);
    if (c->batch < 1) return sn_fail(err, SN_EINVAL, "batch must be >= 1, got %d", c->batch);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return sn_fail(err, SN_EINVAL, "learning rate must be a positive finite number, got %g", c->lr);
    if (c->threads < 1) return sn_fail(err, SN_EINVAL, "threads must be >= 1, got %d", c->threads);
    if (c->val < 0) return sn_fail(err, SN_EINVAL, "val must be >= 0, got %d", c->val);
    if (c->opt < SN_OPT_SGD || c->opt > SN_OPT_ADAM) return sn_fail(err, SN_EINVAL, "unknown optimiser");
    return SN_OK;
}

void sn_trainer_free(sn_trainer *t)
{
    if (!t) return;
    sn_opt_free(&t->opt);
    sn_forward_ctx_free(&t->fwd);
    free(t->order);
    free(t->grads);
    free(t->dblock);
    memset(t, 0, sizeof *t);
}

int sn_trainer_create(sn_trainer *t, sn_mlp *model, const sn_train_config *cfg, int ntrain,
                      sn_error *err)
{
    memset(t, 0, sizeof *t);
    int rc = sn_train_config_check(cfg, err);
    if (rc) return rc;
    if (ntrain < 1) return sn_fail(err, SN_EINVAL, "no training rows left (ntrain=%d)", ntrain);
    t->model = model, t->cfg = *cfg, t->ntrain = ntrain;
    int cap = cfg->batch < ntrain ? cfg->batch : ntrain;
    if ((rc = sn_forward_ctx_create(&t->fwd, model, cap, cfg->threads, err))) goto fail;
    if ((rc = sn_opt_create(&t->opt, cfg->opt, cfg->lr, model->nparams, err))) goto fail;
    t->order = malloc(sizeof(int) * (size_t)ntrain);
    t->grads = aligned_alloc(64, ((model->nparams + 15) & ~(size_t)15) * sizeof(float));
    size_t dfloats = 0;
    for (int l = 0; l <= model->nlayers; l++) dfloats += ((size_t)cap * model->sizes[l] + 15) & ~(size_t)15;
    t->dblock = aligned_alloc(64, dfloats * sizeof(float));
    if (!t->order || !t->grads || !t->dblock) {
        rc = sn_fail(err, SN_ENOMEM, "out of memory for training buffers");
        goto fail;
    }
    memset(t->grads, 0, model->nparams * sizeof(float));
    sn_mlp_views(model, t->grads, t->gW, t->gb);
    float *p = t->dblock;
    for (int l = 0; l <= model->nlayers; l++) {
        t->dact[l] = p;
        p += ((size_t)cap * model->sizes[l] + 15) & ~(size_t)15;
    }
    sn_rng_seed(&t->rng, cfg->seed);
    sn_mlp_init_he(model, &t->rng);
    return SN_OK;
fail:
    sn_trainer_free(t);
    return rc;
}

/* MNIST's border pixels are always 0, so their weights get no gradient and their momentum
 * decays geometrically through the denormal range, where every x86 multiply takes a
 * ~100-cycle microcode assist: measured here, 20 us of a 180 us step. Training threads
 * therefore flush denormals to zero (FTZ/DAZ, as TensorFlow does by default) for the
 * duration of a step, unless cfg.keep_denormals. Values below 1.2e-38 become 0; every
 * thread does the same, so runs stay bit-identical across thread counts. */
static unsigned denormals_off(const sn_trainer *t)
{
#if defined(__SSE2__)
    unsigned csr = _mm_getcsr();
    if (!t->cfg.keep_denormals) _mm_setcsr(csr | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
    return csr;
#else
    (void)t;
    return 0;
#endif
}

static void denormals_restore(unsigned csr)
{
#if defined(__SSE2__)
    _mm_setcsr(csr);
#else
    (void)csr;
#endif
}

/* cfg.threads is the most a step may use. Below 32 rows per thread the barriers and the
 * per-step parameter update cost more than the split saves (measured: batch 32 ran at
 * 358k samples/s on 1 thread, 297k on 2), so small steps use fewer threads. The result
 * is bit-identical whatever the team size, so this changes speed only. */
enum { MIN_ROWS_PER_THREAD = 32 };

static int step_threads(int threads, int rows)
{
    int useful = rows / MIN_ROWS_PER_THREAD;
    return useful < 1 ? 1 : useful < threads ? useful : threads;
}

/* Weight gradients smaller than this many multiply-adds are not worth splitting: one
 * thread computes the whole of it while the others do other layers. */
#define SPLIT_MIN_FMAS (1L << 20)

/* Phase 1, per thread, no barriers: this thread's rows of the batch through the network,
 * the loss, and back to dLoss/dH1. Rows are gathered (uint8 -> float) by the thread
 * that uses them. */
static void rows_forward_backward(sn_trainer *t, const sn_dataset *ds, int first, int n)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers, in = m->sizes[0];
    int r0, rows;
    sn_team_rows(n, &r0, &rows);
    if (ds && rows > 0) {
        sn_batch_gather(ds, t->order, first + r0, rows, c->act[0] + (size_t)r0 * in, c->y + r0);
        /* The next batch's rows are random pieces of a 47 MB array: ask for them now so
         * they arrive from DRAM while this step computes. */
        const size_t bytes = (size_t)ds->rows * ds->cols;
        for (int r = first + n + r0; r < first + n + r0 + rows && r < t->ntrain; r++)
            for (size_t off = 0; off < bytes; off += 64)
                __builtin_prefetch((const char *)ds->images + (size_t)t->order[r] * bytes + off, 0, 3);
    }
    if (rows <= 0) return;
    float *ws = sn_forward_ctx_local_ws(c);
    sn_mlp_forward_rows(m, c, r0, rows, ws);
    const int C = m->sizes[L];
    sn_softmax_xent(t->dact[L] + (size_t)r0 * C, c->loss + r0, NULL, c->act[L] + (size_t)r0 * C, c->y + r0, rows,
                    C, 1.0f / (float)n);
    for (int l = L - 1; l >= 1; l--)
        sn_linear_backward_input(t->dact[l] + (size_t)r0 * m->sizes[l], t->dact[l + 1] + (size_t)r0 * m->sizes[l + 1],
                                 m->W[l], c->act[l] + (size_t)r0 * m->sizes[l], rows, m->sizes[l], m->sizes[l + 1],
                                 ws);
}

/* The optimiser step for gradients just finished by this thread (apply_update set). */
static void update_now(void *user, float *g, int n)
{
    sn_trainer *t = user;
    sn_opt_apply_range(&t->opt, t->model->params, t->grads, (size_t)(g - t->grads), (size_t)n);
}

/* Phase 2, the team, last thing in its parallel region: weight and bias gradients,
 * reduced over the whole batch. Small layers are whole tasks for single threads
 * (nowait). A large layer's dW (in x out) is split by rows: each thread computes its
 * block of input units over the whole batch with its own product, without a barrier
 * (a shared product would need two). Every element is computed by the same instructions
 * whatever the split, so the result does not depend on the thread count. With
 * apply_update, each finished piece is consumed by the optimiser on the thread that
 * computed it, in its cache; safe because phase 1 has read every weight already. */
static void weight_gradients(sn_trainer *t, int n, int apply_update)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers;
    float *ws = sn_forward_ctx_local_ws(c);
#pragma omp for schedule(static) nowait
    for (int l = 0; l < L; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        if ((long)in * out * n >= SPLIT_MIN_FMAS) continue;
        sn_gemm_local(SN_T, SN_N, in, out, n, c->act[l], in, t->dact[l + 1], out, 0.0f, t->gW[l], out, NULL, ws);
        sn_bias_grad(t->gb[l], t->dact[l + 1], n, out, 0, out);
        /* W_l and b_l are adjacent in the parameter block: one range. */
        if (apply_update) update_now(t, t->gW[l], in * out + out);
    }
    for (int l = 0; l < L; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        if ((long)in * out * n < SPLIT_MIN_FMAS) continue;
        int i0, rows;
        sn_team_rows_granule(in, 32, &i0, &rows);
        sn_epilogue ep = { .done = update_now, .user = t };
        if (rows > 0)
            sn_gemm_local(SN_T, SN_N, rows, out, n, c->act[l] + i0, in, t->dact[l + 1], out, 0.0f,
                          t->gW[l] + (size_t)i0 * out, out, apply_update ? &ep : NULL, ws);
        /* The bias: a block of columns per thread, each summed over the batch in order. */
        int j0, cols;
        sn_team_rows_granule(out, 16, &j0, &cols);
        if (cols > 0) {
            sn_bias_grad(t->gb[l], t->dact[l + 1], n, out, j0, j0 + cols);
            if (apply_update) update_now(t, t->gb[l] + j0, cols);
        }
    }
    /* No barrier here: callers end their parallel region right after, and its implicit
     * barrier waits for everything above. */
}

double sn_trainer_gradient(sn_trainer *t, int n)
{
#pragma omp parallel num_threads(t->cfg.threads)
    {
        rows_forward_backward(t, NULL, 0, n);
#pragma omp barrier
        weight_gradients(t, n, 0);
    }
    double sum = 0.0;
    for (int r = 0; r < n; r++) sum += t->fwd.loss[r];
    return sum / n;
}

/* One minibatch, rows order[first .. first+n), inside the caller's parallel region:
 * two barriers plus those of the shared weight-gradient product, which also updates. */
static void train_step(sn_trainer *t, const sn_dataset *ds, int first, int n)
{
    const unsigned csr = denormals_off(t);
    rows_forward_backward(t, ds, first, n);
#pragma omp barrier
    weight_gradients(t, n, 1);
    denormals_restore(csr);
}

int sn_train_epoch(sn_trainer *t, const sn_dataset *ds, sn_epoch_stats *st,
                   sn_progress_fn progress, void *user)
{
    memset(st, 0, sizeof *st);
    st->epoch = t->epoch + 1;
    for (int i = 0; i < t->ntrain; i++) t->order[i] = i;
    sn_shuffle(&t->rng, t->order, t->ntrain);

    double loss_sum = 0.0, seconds = 0.0;
    int done = 0;
    const int B = t->fwd.capacity;
    for (int first = 0; first < t->ntrain; first += B) {
        int n = t->ntrain - first < B ? t->ntrain - first : B;
        if (t->cfg.cosine) {
            /* Cosine annealing over the whole run: large steps early, a smooth
             * landing at the end instead of a last epoch that jitters. */
            long per_epoch = (t->ntrain + B - 1) / B, total = per_epoch * t->cfg.epochs;
            double frac = (double)t->opt.step / (double)total;
            t->opt.lr_now = (float)(0.5 * t->cfg.lr * (1.0 + cos(3.141592653589793 * frac)));
        }
        sn_opt_prepare(&t->opt);
        const int team = step_threads(t->cfg.threads, n);
        (void)team; /* unused in a serial build */
        double t0 = sn_now();
#pragma omp parallel num_threads(team)
        train_step(t, ds, first, n);
        seconds += sn_now() - t0;
        t->opt.step++;
        /* Summed in row order on one thread: independent of the thread count. */
        double batch_loss = 0.0;
        for (int r = 0; r < n; r++) batch_loss += t->fwd.loss[r];
        done += n;
        if (!isfinite(batch_loss)) {
            st->diverged = 1;
            loss_sum = batch_loss;
            break;
        }
        loss_sum += batch_loss;
        if (progress) progress(user, done, t->ntrain);
    }
    st->train_loss = st->diverged ? NAN : loss_sum / done;
    st->train_s = seconds;
    st->samples_per_s = seconds > 0 ? done / seconds : 0.0;
    if (!st->diverged) t->epoch++;
    return SN_OK;
}

void sn_evaluate(const sn_mlp *m, sn_forward_ctx *c, const sn_dataset *ds, int threads,
                 double *loss, double *acc)
{
    double loss_sum = 0.0;
    long correct = 0;
    const int L = m->nlayers, in = m->sizes[0], C = m->sizes[L];
    if (threads > c->threads) threads = c->threads;
    for (int first = 0; first < ds->count; first += c->capacity) {
        int n = ds->count - first < c->capacity ? ds->count - first : c->capacity;
        /* Rows are independent: each thread runs its own, no barrier until the end. */
#pragma omp parallel num_threads(threads)
        {
            int r0, rows;
            sn_team_rows(n, &r0, &rows);
            if (rows > 0) {
                sn_batch_gather(ds, NULL, first + r0, rows, c->act[0] + (size_t)r0 * in, c->y + r0);
                sn_mlp_forward_rows(m, c, r0, rows, sn_forward_ctx_local_ws(c));
                sn_softmax_xent(NULL, c->loss + r0, c->correct + r0, c->act[L] + (size_t)r0 * C, c->y + r0, rows, C,
                                0.0f);
            }
        }
        for (int r = 0; r < n; r++) loss_sum += c->loss[r], correct += c->correct[r];
    }
    *loss = ds->count ? loss_sum / ds->count : NAN;
    *acc = ds->count ? (double)correct / ds->count : NAN;
}
