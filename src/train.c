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
    const size_t partial_floats = ((size_t)cap * model->sizes[1] + 15) & ~(size_t)15;
    dfloats += SN_INPUT_BLOCKS * partial_floats + (((size_t)cap * model->sizes[0] + 15) & ~(size_t)15);
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
    t->partial = p;
    t->xblock = p + SN_INPUT_BLOCKS * partial_floats;
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

/* cfg.threads is the most a step may use. Below 16 rows per thread the barriers cost
 * more than the split saves, so small steps use fewer threads (measured with the
 * first layer split by input blocks: batch 32 on 2 threads 600-628k samples/s, on 1
 * thread 500-515k). The result is bit-identical whatever the team size, so this changes
 * speed only. */
enum { MIN_ROWS_PER_THREAD = 16 };

static int step_threads(int threads, int rows)
{
    int useful = rows / MIN_ROWS_PER_THREAD;
    return useful < 1 ? 1 : useful < threads ? useful : threads;
}

/* Weight gradients smaller than this many multiply-adds are not worth splitting: one
 * thread computes the whole of it while the others do other layers. */
#define SPLIT_MIN_FMAS (1L << 20)

/* The first layer, 784 x 50, holds 96% of the arithmetic and of the weights. It is split
 * by input pixels into SN_INPUT_BLOCKS fixed blocks, each owned by one thread for the
 * whole step: the owner converts its pixels of every image, multiplies them by its rows
 * of W1 (a partial product), and later computes those rows of dW1 and updates them. So
 * the pixels, W1 and its optimiser state never move between cores (split by images
 * instead, every weight update would invalidate the other core's copy of W1 and every
 * gather the other core's copy of the pixels: measured, ~30% of a 2-thread step).
 * The blocks do not depend on the thread count, and the partial products are summed in
 * block order, so the bits do not either. Block edges fall on 16 pixels (64 bytes). */
static void input_block(int in, int b, int *k0, int *k1)
{
    *k0 = (int)((long)in * b / SN_INPUT_BLOCKS) & ~15;
    *k1 = b + 1 == SN_INPUT_BLOCKS ? in : (int)((long)in * (b + 1) / SN_INPUT_BLOCKS) & ~15;
}

/* The preferred owner of block b in a team of nth: contiguous blocks per thread, so a
 * thread's pixels are too, and the same thread every step, so its rows of W1 and their
 * optimiser state stay in its caches. */
static int block_owner(int b, int nth)
{
    return (int)((long)b * nth / SN_INPUT_BLOCKS);
}

/* Claims block b for this step; 0 if another thread has it already. */
static int claim_block(sn_trainer *t, int b)
{
    int taken;
#pragma omp atomic capture
    {
        taken = t->block_claimed[b];
        t->block_claimed[b] = 1;
    }
    return !taken;
}

static void unclaim_blocks(sn_trainer *t)
{
    for (int b = 0; b < SN_INPUT_BLOCKS; b++) t->block_claimed[b] = 0;
}

static void team_info(int *tid, int *nth)
{
#ifdef _OPENMP
    *tid = omp_get_thread_num(), *nth = omp_get_num_threads();
#else
    *tid = 0, *nth = 1;
#endif
}

/* Block b of the batch's inputs, X[:, k0:k1], stored on its own (n x (k1 - k0), rows
 * k1 - k0 apart): the weight-gradient product reads it down its columns, and rows 3 KiB
 * apart would touch a new page each (98 for a batch of 128, more than the first-level
 * DTLB holds); rows ~800 bytes apart touch 26. */
static float *xblock(const sn_trainer *t, int k0)
{
    return t->xblock + (size_t)t->fwd.capacity * k0;
}

/* Phase 1, per thread: for each input block it owns, gather those pixels of the n images
 * (ds NULL: copy them from act[0], filled by the caller) and the block's partial product
 * partial[b] (n x out) = X[:, k0:k1] * W1[k0:k1, :]. Also the labels of its rows. */
static void input_blocks_forward(sn_trainer *t, const sn_dataset *ds, int first, int n)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int in = m->sizes[0], out = m->sizes[1];
    const size_t partial_floats = ((size_t)c->capacity * out + 15) & ~(size_t)15;
    float *ws = sn_forward_ctx_local_ws(c);
    int tid, nth;
    team_info(&tid, &nth);
    if (ds) {
        int r0, rows;
        sn_team_rows(n, &r0, &rows);
        for (int r = r0; r < r0 + rows; r++) c->y[r] = ds->labels[t->order[first + r]];
    }
    /* Its own blocks first, in order; then, having finished, any block of another
     * thread not yet started, from the last (the owner takes its blocks in order). On
     * this shared machine a neighbour on a core's other hyperthread can slow one thread
     * for seconds; the other then takes over a block instead of waiting at the barrier.
     * Who computes a block never changes its bits. */
    for (int i = 0; i < 2 * SN_INPUT_BLOCKS; i++) {
        const int b = i < SN_INPUT_BLOCKS ? i : 2 * SN_INPUT_BLOCKS - 1 - i;
        if ((i < SN_INPUT_BLOCKS) != (block_owner(b, nth) == tid) || !claim_block(t, b)) continue;
        t->block_thread[b] = tid;
        int k0, k1;
        input_block(in, b, &k0, &k1);
        float *xb = xblock(t, k0);
        if (ds)
            sn_batch_gather_pixels(ds, t->order, first, n, k0, k1, xb, k1 - k0);
        else
            for (int r = 0; r < n; r++)
                memcpy(xb + (size_t)r * (k1 - k0), c->act[0] + (size_t)r * in + k0, sizeof(float) * (size_t)(k1 - k0));
        sn_gemm_local(SN_N, SN_N, n, out, k1 - k0, xb, k1 - k0, m->W[0] + (size_t)k0 * out, out, 0.0f,
                      t->partial + b * partial_floats, out, NULL, ws);
    }
}

/* One row of the first layer's output: z = relu(((P0 + P1) + P2) + P3 + bias), partial
 * products summed in block order (the same bits for any thread count). Separate
 * restrict pointers let the compiler vectorise across the 50 outputs. */
static void first_layer_output(float *restrict z, const float *restrict p, size_t pstride,
                               const float *restrict bias, int out, int relu)
{
    for (int j = 0; j < out; j++) {
        float s = p[j];
        for (int b = 1; b < SN_INPUT_BLOCKS; b++) s += p[b * pstride + j];
        s += bias[j];
        z[j] = relu && s < 0.0f ? 0.0f : s; /* NaN passes: divergence stays visible */
    }
}

/* Phase 2, per thread, its rows of the batch: the first layer's output from the partial
 * products (summed in block order, then the bias, then ReLU), the other layers, the
 * loss, and back to dLoss/dH1. */
static void rows_forward_backward(sn_trainer *t, int n)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers, out1 = m->sizes[1];
    const size_t partial_floats = ((size_t)c->capacity * out1 + 15) & ~(size_t)15;
    int r0, rows;
    sn_team_rows(n, &r0, &rows);
    if (rows <= 0) return;
    for (int r = r0; r < r0 + rows; r++)
        first_layer_output(c->act[1] + (size_t)r * out1, t->partial + (size_t)r * out1, partial_floats, m->b[0], out1,
                           L > 1);
    float *ws = sn_forward_ctx_local_ws(c);
    for (int l = 1; l < L; l++)
        sn_linear_forward(c->act[l + 1] + (size_t)r0 * m->sizes[l + 1], c->act[l] + (size_t)r0 * m->sizes[l], m->W[l],
                          m->b[l], rows, m->sizes[l], m->sizes[l + 1], l + 1 < L, ws);
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

/* Phase 3, the team, last thing in its parallel region: weight and bias gradients,
 * reduced over the whole batch, each element on one thread in batch order. The first
 * layer's dW by input blocks, on their owners; small layers as whole tasks for single
 * threads (nowait); other large layers split by rows of dW, each thread running its own
 * product without a barrier. With apply_update, each finished piece is consumed by the
 * optimiser on the thread that computed it, in its cache: safe, because phases 1 and 2
 * have read every weight already. */
static void weight_gradients(sn_trainer *t, int n, int apply_update)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers;
    float *ws = sn_forward_ctx_local_ws(c);
    sn_epilogue ep = { .done = update_now, .user = t };
    int tid, nth;
    team_info(&tid, &nth);
    for (int b = 0; b < SN_INPUT_BLOCKS; b++) {
        if (t->block_thread[b] != tid) continue; /* the thread that has its pixels */
        const int in = m->sizes[0], out = m->sizes[1];
        int k0, k1;
        input_block(in, b, &k0, &k1);
        if (k1 > k0)
            sn_gemm_local(SN_T, SN_N, k1 - k0, out, n, xblock(t, k0), k1 - k0, t->dact[1], out, 0.0f,
                          t->gW[0] + (size_t)k0 * out, out, apply_update ? &ep : NULL, ws);
    }
#pragma omp for schedule(static) nowait
    for (int l = 1; l < L; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        if ((long)in * out * n >= SPLIT_MIN_FMAS) continue;
        sn_gemm_local(SN_T, SN_N, in, out, n, c->act[l], in, t->dact[l + 1], out, 0.0f, t->gW[l], out, NULL, ws);
        sn_bias_grad(t->gb[l], t->dact[l + 1], n, out, 0, out);
        /* W_l and b_l are adjacent in the parameter block: one range. */
        if (apply_update) update_now(t, t->gW[l], in * out + out);
    }
    for (int l = 0; l < L; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        const int split = (long)in * out * n >= SPLIT_MIN_FMAS;
        if (l > 0 && split) {
            int i0, rows;
            sn_team_rows_granule(in, 32, &i0, &rows);
            if (rows > 0)
                sn_gemm_local(SN_T, SN_N, rows, out, n, c->act[l] + i0, in, t->dact[l + 1], out, 0.0f,
                              t->gW[l] + (size_t)i0 * out, out, apply_update ? &ep : NULL, ws);
        }
        if (l == 0 || split) {
            /* The bias: a block of columns per thread, each summed over the batch in order. */
            int j0, cols;
            sn_team_rows_granule(out, 16, &j0, &cols);
            if (cols > 0) {
                sn_bias_grad(t->gb[l], t->dact[l + 1], n, out, j0, j0 + cols);
                if (apply_update) update_now(t, t->gb[l] + j0, cols);
            }
        }
    }
    /* No barrier here: callers end their parallel region right after, and its implicit
     * barrier waits for everything above. */
}

/* Asks for the pixels this thread's blocks will need in the next step (rows
 * order[first, first + B) of the epoch) to be brought towards its L2, so they arrive while
 * it computes the weight gradients. The batch is 128 images at random offsets in a 47 MB
 * array: fetched on demand, each costs a page walk and a DRAM miss in turn, ~20 us a step
 * on one thread. Measured on the AMD EPYC (Zen 5) machine, batch 128: the fetch falls
 * from 21-24 us to 6-13 (1 thread) and from 11 to 2-7 (2 threads), the prefetch loop
 * costs 2-8 us of the weight phase (its own page walks), net +3-9% samples/s. On the
 * Sapphire Rapids machine the same idea was neutral (gather 19 us alone, 15 + 5 with
 * the prefetch). Only a hint: it never changes a result. */
static void prefetch_next_batch(const sn_trainer *t, const sn_dataset *ds, int first)
{
    const int n = t->ntrain - first < t->fwd.capacity ? t->ntrain - first : t->fwd.capacity;
    const size_t px = (size_t)ds->rows * ds->cols;
    int tid, nth;
    team_info(&tid, &nth);
    for (int b = 0; b < SN_INPUT_BLOCKS; b++) {
        if (block_owner(b, nth) != tid) continue;
        int k0, k1;
        input_block(t->model->sizes[0], b, &k0, &k1);
        for (int r = 0; r < n; r++) {
            /* Every 64-byte line that pixels [k0, k1) of the image touch (images are
             * 784 bytes apart, so lines do not start at pixel 0). */
            const uint8_t *image = ds->images + (size_t)t->order[first + r] * px;
            const uintptr_t line0 = (uintptr_t)(image + k0) & ~(uintptr_t)63, end = (uintptr_t)(image + k1);
            for (uintptr_t line = line0; line < end; line += 64)
                __builtin_prefetch((const void *)line, 0, 2); /* read, keep in L2 */
        }
    }
}

/* One step's three phases, inside the caller's parallel region; two barriers, and the
 * region's end. ds NULL: act[0] and y hold the batch already (and there is no next
 * batch to prefetch). */
static void step_phases(sn_trainer *t, const sn_dataset *ds, int first, int n, int apply_update)
{
    input_blocks_forward(t, ds, first, n);
#pragma omp barrier
    rows_forward_backward(t, n);
#pragma omp barrier
    if (ds) prefetch_next_batch(t, ds, first + n);
    weight_gradients(t, n, apply_update);
}

double sn_trainer_gradient(sn_trainer *t, int n)
{
    unclaim_blocks(t);
#pragma omp parallel num_threads(t->cfg.threads)
    step_phases(t, NULL, 0, n, 0);
    double sum = 0.0;
    for (int r = 0; r < n; r++) sum += t->fwd.loss[r];
    return sum / n;
}

/* One minibatch, rows order[first .. first+n), inside the caller's parallel region. */
static void train_step(sn_trainer *t, const sn_dataset *ds, int first, int n)
{
    const unsigned csr = denormals_off(t);
    step_phases(t, ds, first, n, 1);
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
        unclaim_blocks(t);
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
