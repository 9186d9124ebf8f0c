#include "scratchnet/train.h"
#include "scratchnet/shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "scratchnet/gemm.h"
#include "scratchnet/layers.h"
#include "scratchnet/pace.h"
#include "scratchnet/schedule.h"
#include "sync.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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
    if (c->opt < 0 || c->opt >= SN_OPT_COUNT) return sn_fail(err, SN_EINVAL, "unknown optimiser");
    return SN_OK;
}

static int max_items(const sn_net *m, int threads, int cap);

/* Whether a layer records what its backward pass needs in training (chunked_first): one
 * without parameters (a weight gradient would need the input it does without). */
static int records(const sn_layer *l)
{
    return l->ops->forward_record && sn_layer_nparams(l) == 0;
}

/* Floats of a chunk scratch (chunk_scratch): the largest image layer's output for
 * SN_IMAGE_ROWS rows. */
static size_t chunk_scratch_floats(const sn_net *m)
{
    size_t f = 0;
    for (int l = 0; l < sn_net_first_flat_layer(m); l++)
        if ((size_t)m->sizes[l + 1] > f) f = (size_t)m->sizes[l + 1];
    return sn_align_floats((size_t)SN_IMAGE_ROWS * f);
}

/* A first image layer followed by one without weights (a convolution, then pooling) is
 * trained chunk by chunk of SN_IMAGE_ROWS rows (chunked_first): its output is written to
 * a per-thread scratch, not to the batch's activations, and read back in the backward
 * pass from the next layer's record (forward_record: pooling's winners) or computed
 * again; the next layer's input gradient goes to scratch too. Its weight gradient, and
 * that of every other image layer that can (grad_rows; chunked[l]) while the chunks'
 * gradients fit CHUNK_GRADS_MAX, is taken from each chunk at once, while the chunk is in
 * cache; phase 3 sums the chunks' gradients in chunk order. Chunks start at multiples of
 * SN_IMAGE_ROWS in the batch (row shares do), so the sums do not depend on the team.
 * Why: the cnn preset's first output is 26x26x32, 86 KiB an image, 11 MB a batch,
 * written, read back by pooling's backward pass, its gradient written and read by the
 * weight gradient: four trips to memory of 11 MB a step. The second convolution's
 * gradient, taken in phase 3 by groups of kernel positions, streamed the batch's inputs
 * and output gradients from memory once per group, and its two unequal groups split a
 * team of two unevenly; by chunks, phase 2's even split of rows carries it (2 threads
 * +6.6%, 1 thread the same). */
#define CHUNK_GRADS_MAX ((size_t)4 << 20) /* floats of chunk gradients (16 MiB) beyond which it is not done */
enum { CHUNK_REDUCE_FLOATS = 4096 };        /* parameters a phase-3 item sums over the chunks */

void sn_trainer_free(sn_trainer *t)
{
    if (!t) return;
    sn_opt_free(&t->opt);
    sn_forward_ctx_free(&t->fwd);
    free(t->order);
    free(t->grads);
    free(t->dblock);
    free(t->claims);
    free(t->pref);
    free(t->step_base);
    free(t->step_solo);
    free(t->aug_images);
    free(t->aug_work);
    free(t->chunk_act);
    free(t->chunk_grad);
    free(t->rec_block);
    memset(t, 0, sizeof *t);
}

int sn_trainer_create(sn_trainer *t, sn_net *model, const sn_train_config *cfg, int ntrain,
                      sn_error *err)
{
    memset(t, 0, sizeof *t);
    int rc = sn_train_config_check(cfg, err);
    if (rc) return rc;
    if (ntrain < 1) return sn_fail(err, SN_EINVAL, "no training rows left (ntrain=%d)", ntrain);
    t->model = model, t->cfg = *cfg, t->ntrain = ntrain;
    /* A dense first layer is fed block by block of input pixels (phase 1, input_block);
     * any other first layer takes whole rows, gathered by the rows' own phase-2 items. */
    t->by_rows = model->layer[0].ops != &sn_dense_ops;
    int cap = cfg->batch < ntrain ? cfg->batch : ntrain;
    const size_t chunks = (size_t)(cap + SN_IMAGE_ROWS - 1) / SN_IMAGE_ROWS;
    /* (The second layer must have no parameters: its weight gradient, in phase 3, would
     * need the first layer's output for the whole batch.) */
    t->chunked_first = t->by_rows && model->layer[0].ops->grad_rows && sn_net_first_flat_layer(model) >= 2 &&
                       sn_layer_nparams(&model->layer[1]) == 0 &&
                       sn_align_floats(sn_layer_nparams(&model->layer[0])) * chunks <= CHUNK_GRADS_MAX;
    size_t chunk_floats = 0;
    for (int l = 0; t->chunked_first && l < sn_net_first_flat_layer(model); l++) {
        const size_t stride = sn_align_floats(sn_layer_nparams(&model->layer[l]));
        if (!model->layer[l].ops->grad_rows || !stride || chunk_floats + stride * chunks > CHUNK_GRADS_MAX) continue;
        t->chunked[l] = 1, t->chunk_off[l] = chunk_floats, t->chunk_stride[l] = stride;
        chunk_floats += stride * chunks;
    }
    if ((rc = sn_forward_ctx_create(&t->fwd, model, cap, cfg->threads, err))) goto fail;
    if ((rc = sn_opt_create(&t->opt, cfg->opt, cfg->lr, model->nparams, err))) goto fail;
    t->order = malloc(sizeof(int) * (size_t)ntrain);
    t->grads = aligned_alloc(64, sn_align_floats(model->nparams) * sizeof(float));
    size_t dfloats = 0;
    /* dLoss/d(activation) of layers 1..L: nothing needs the input's. */
    for (int l = 1; l <= model->nlayers; l++) dfloats += sn_align_floats((size_t)cap * model->sizes[l]);
    const size_t partial_floats = sn_align_floats((size_t)cap * model->sizes[1]);
    dfloats += SN_INPUT_BLOCKS * partial_floats + sn_align_floats((size_t)cap * model->sizes[0]);
    t->dblock = aligned_alloc(64, dfloats * sizeof(float));
    t->nclaims = max_items(model, cfg->threads, cap);
    t->claims = calloc((size_t)t->nclaims, sizeof *t->claims);
    t->pref = malloc(sizeof(int) * (size_t)t->nclaims * (size_t)cfg->threads);
    const size_t steps = (size_t)(ntrain + cap - 1) / (size_t)cap;
    t->step_base = malloc(sizeof(int) * steps);
    t->step_solo = malloc(steps);
    if (t->chunked_first) {
        const size_t f = chunk_scratch_floats(model);
        t->chunk_act = aligned_alloc(64, 2 * f * (size_t)cfg->threads * sizeof(float));
        t->chunk_grad = aligned_alloc(64, chunk_floats * sizeof(float));
        size_t rec_floats = 0;
        for (int l = 1; l < sn_net_first_flat_layer(model); l++)
            if (records(&model->layer[l])) rec_floats += sn_align_floats((size_t)cap * model->sizes[l + 1]);
        t->rec_block = rec_floats ? aligned_alloc(64, rec_floats * sizeof(float)) : NULL;
        if (!t->chunk_act || !t->chunk_grad || (rec_floats && !t->rec_block)) {
            rc = sn_fail(err, SN_ENOMEM, "out of memory for training buffers");
            goto fail;
        }
        float *r = t->rec_block;
        for (int l = 1; l < sn_net_first_flat_layer(model); l++)
            if (records(&model->layer[l])) {
                t->rec[l] = r;
                r += sn_align_floats((size_t)cap * model->sizes[l + 1]);
            }
    }
    const int augment = sn_augment_active(&cfg->aug);
    if (augment) {
        t->aug_images = malloc((size_t)ntrain * (size_t)model->sizes[0]);
        t->aug_work = malloc(sn_augment_workspace_bytes(cfg->threads));
    }
    model->aug = cfg->aug; /* the model records how it was trained */
    if (!t->order || !t->grads || !t->dblock || !t->claims || !t->pref || !t->step_base || !t->step_solo ||
        (augment && (!t->aug_images || !t->aug_work))) {
        rc = sn_fail(err, SN_ENOMEM, "out of memory for training buffers");
        goto fail;
    }
    memset(t->grads, 0, model->nparams * sizeof(float));
    sn_net_views(model, t->grads, t->gW, t->gb);
    float *p = t->dblock;
    for (int l = 1; l <= model->nlayers; l++) {
        t->dact[l] = p;
        p += sn_align_floats((size_t)cap * model->sizes[l]);
    }
    t->partial = p;
    t->xblock = p + SN_INPUT_BLOCKS * partial_floats;
    sn_team_mode mode;
    if ((rc = sn_team_mode_from_env(&mode, err))) goto fail;
    sn_pace_init(&t->pace, mode);
    t->pace.rows = cap;
    sn_rng_seed(&t->rng, cfg->seed);
    sn_net_init_he(model, &t->rng);
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

/* The learning rate of the step about to run (t->opt.step; schedule.h over all the
 * run's steps), and the optimiser's per-step constants. */
static void set_learning_rate(sn_trainer *t)
{
    const long B = t->fwd.capacity, per_epoch = (t->ntrain + B - 1) / B;
    t->opt.lr_now = sn_schedule_lr(t->cfg.cosine ? SN_SCHEDULE_COSINE : SN_SCHEDULE_CONSTANT, t->cfg.lr,
                                   (long)t->opt.step, per_epoch * t->cfg.epochs);
    sn_opt_prepare(&t->opt);
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

/* A step's work, cut into items that any thread of the team may compute: whoever is
 * running takes what is left, so a thread whose partner the OS has descheduled (another
 * process took its core) does the partner's share instead of waiting for it. Each item
 * is computed the same way whoever computes it, so this changes speed, never bits. The
 * items of a phase are visited preferred-first: a thread takes the items it would own
 * in a static split (its pixel blocks, its rows), in order, then any item still
 * unclaimed, from the last. Phases are separated by waiting for the items of the
 * previous one to be done (sn_event_wait: spin briefly, then sleep), not for threads.
 *
 * Phase 1: SN_INPUT_BLOCKS items, the first layer's partial products by pixel block.
 * Phase 2: `parts` items, the batch's rows in contiguous shares.
 * Phase 3: the weight gradients (and, training, the update): the first layer's by pixel
 * block and its bias by column shares, then each other layer's items (layer.h).
 * With a reduce hook (sn_trainer_set_reduce) the update is not fused: the thread that
 * completes phase 3 calls the hook (one more item), then phase 4 updates the parameters
 * in chunks of UPDATE_CHUNK. Element by element the update is the same arithmetic either
 * way, so the bits are too (tested). */
typedef struct step_plan {
    int n, parts;          /* rows in the batch; row and column shares */
    int n1, n2, n3, n4;    /* items per phase (n4: the update's, when not fused) */
    int item0[SN_MAX_LAYERS + 1]; /* phase 3: layer l >= 1's items are [item0[l], item0[l + 1]) */
} step_plan;

enum { UPDATE_CHUNK = 16384 }; /* floats a phase-4 item updates: 64 KiB, an L2's share */

static int update_chunks(const sn_net *m)
{
    return (int)((m->nparams + UPDATE_CHUNK - 1) / UPDATE_CHUNK);
}

/* Phase-3 items of layer l (a first layer that takes whole rows, or l > 0): the sums of
 * its chunks' gradients, or its own items (layer.h). */
static int layer_items(const sn_trainer *t, int l, int n, int parts)
{
    const sn_layer *layer = &t->model->layer[l];
    if (t->chunked[l]) return (int)((sn_layer_nparams(layer) + CHUNK_REDUCE_FLOATS - 1) / CHUNK_REDUCE_FLOATS);
    return layer->ops->grad_items(layer, n, parts);
}

static step_plan plan_step(const sn_trainer *t, int n, int nth, int unfused)
{
    const sn_net *m = t->model;
    step_plan p = { .n = n };
    p.parts = step_threads(nth, n);
    p.n1 = t->by_rows ? 0 : SN_INPUT_BLOCKS;
    p.n2 = p.parts;
    /* A dense first layer: its input blocks' dW, then its bias by column shares. Else
     * every layer's items as it cuts them (layer.h). */
    p.item0[0] = 0;
    p.item0[1] = t->by_rows ? layer_items(t, 0, n, p.parts) : SN_INPUT_BLOCKS + p.parts;
    for (int l = 1; l < m->nlayers; l++) p.item0[l + 1] = p.item0[l] + layer_items(t, l, n, p.parts);
    p.n3 = p.item0[m->nlayers];
    p.n4 = unfused ? update_chunks(m) : 0;
    return p;
}

/* The most items a phase can have for this trainer (claim slots to allocate): phase 3's
 * blocks and bias shares of a dense first layer and every layer's items as it cuts them
 * for a full batch of `cap` rows on the whole team (the most: a layer's items grow with
 * the batch and the team), or phase 4's update chunks. */
static int max_items(const sn_net *m, int threads, int cap)
{
    int n3 = SN_INPUT_BLOCKS + threads;
    for (int l = 0; l < m->nlayers; l++) /* cut either way (chunked or not) */
        n3 += m->layer[l].ops->grad_items(&m->layer[l], cap, threads) +
              (int)((sn_layer_nparams(&m->layer[l]) + CHUNK_REDUCE_FLOATS - 1) / CHUNK_REDUCE_FLOATS);
    const int n4 = update_chunks(m);
    return n3 > n4 ? n3 : n4;
}

/* The team's shared state for a run of steps inside one parallel region. */
typedef struct step_team {
    sn_trainer *t;
    const sn_dataset *ds; /* NULL: one step on rows already in act[0] */
    int steps, apply_update;
    int fused;            /* the update rides on the gradient items (no reduce hook) */
    int threads;          /* the trainer's team for this run; > 1: paced (pace.h) */
    int team;             /* threads in the region: 1 for a run that is solo throughout */
    sn_event done;        /* items completed, all phases, all steps */
    sn_event ready;       /* steps whose serial end (loss, schedule) is done */
    atomic_int stop;      /* a batch diverged */
    /* Solo stretches (pace.h): while `solo`, only thread solo_tid works; the others sleep
     * until `resume` reaches solo_period. Each step's mode and first item number are in
     * t->step_solo and t->step_base, so a thread that wakes late knows every step. */
    atomic_int solo, solo_tid, solo_period;
    sn_event resume;
    /* Written by the thread that ends a step, one at a time: */
    int solo_steps;
    double last_end;      /* when the previous step ended */
    double loss_sum, progress_s;
    int rows_done, diverged;
    sn_progress_fn progress;
    void *user;
} step_team;

/* Next item of a phase for this thread: cursor runs over 2 * nitems positions, its
 * preferred items first (in order), then the others (from the last). -1 when none is left. */
static int next_item(int *cursor, int nitems, const int *pref, int tid, atomic_int *claims, int stamp)
{
    while (*cursor < 2 * nitems) {
        const int i = *cursor, item = i < nitems ? i : 2 * nitems - 1 - i;
        *cursor += 1;
        if ((i < nitems) != (pref[item] == tid)) continue;
        if (sn_claim(&claims[item], stamp)) return item;
    }
    return -1;
}

/* Phase 1, one input block b: gather those pixels of the n images (ds NULL: copy them
 * from act[0], filled by the caller) and the block's partial product
 * partial[b] (n x out) = X[:, k0:k1] * W1[k0:k1, :]. */
static void input_block_forward(sn_trainer *t, const sn_dataset *ds, int first, int n, int b)
{
    const sn_net *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int in = m->sizes[0], out = m->sizes[1];
    const size_t partial_floats = sn_align_floats((size_t)c->capacity * out);
    int k0, k1;
    input_block(in, b, &k0, &k1);
    float *xb = xblock(t, k0);
    if (ds)
        sn_batch_gather_pixels(ds, t->order, first, n, k0, k1, xb, k1 - k0);
    else
        for (int r = 0; r < n; r++)
            memcpy(xb + (size_t)r * (k1 - k0), c->act[0] + (size_t)r * in + k0, sizeof(float) * (size_t)(k1 - k0));
    sn_dense_block_forward(&m->layer[0], t->partial + b * partial_floats, xb, k0, k1, n, sn_forward_ctx_local_ws(c));
}

/* Layers l1 - 1 down to l0, input gradients, SN_IMAGE_ROWS rows at a time when
 * `chunked` (image layers, as sn_net_forward_from runs them forward). */
static void backward_layers(const sn_trainer *t, int l0, int l1, int r0, int rows, int chunked, float *ws)
{
    const sn_net *m = t->model;
    const int step = chunked ? SN_IMAGE_ROWS : rows;
    for (int done = 0; done < rows; done += step) {
        const int r = r0 + done, k = rows - done < step ? rows - done : step;
        for (int l = l1 - 1; l >= l0; l--)
            m->layer[l].ops->backward_input(&m->layer[l], t->dact[l] + (size_t)r * m->sizes[l],
                                            t->dact[l + 1] + (size_t)r * m->sizes[l + 1],
                                            t->fwd.act[l] + (size_t)r * m->sizes[l], m->layer[l - 1].relu, k, ws);
    }
}

/* This thread's chunk scratch (chunked_first): an image layer's output for SN_IMAGE_ROWS
 * rows (the first layer's, and any other whose only reader is a layer that records),
 * then the first layer's gradient. */
static float *chunk_scratch(const sn_trainer *t, float **grad)
{
    int tid, nth;
    team_info(&tid, &nth);
    const size_t f = chunk_scratch_floats(t->model);
    float *a = t->chunk_act + (size_t)(tid < t->cfg.threads ? tid : 0) * 2 * f;
    *grad = a + f;
    return a;
}

/* chunked_first, forward: layers 0 .. flat - 1 chunk by chunk, layer 0's output in the
 * thread's scratch; layers that can record what their backward pass needs do (rec). */
static void first_layers_forward(const sn_trainer *t, int flat, int r0, int rows, float *ws)
{
    const sn_net *m = t->model;
    const sn_forward_ctx *c = &t->fwd;
    float *scratch[2];
    scratch[0] = chunk_scratch(t, &scratch[1]); /* both free in the forward pass */
    for (int done = 0; done < rows; done += SN_IMAGE_ROWS) {
        const int r = r0 + done, k = rows - done < SN_IMAGE_ROWS ? rows - done : SN_IMAGE_ROWS;
        int cur = 0; /* the scratch that holds the last output put there */
        m->layer[0].ops->forward(&m->layer[0], scratch[0], c->act[0] + (size_t)r * m->sizes[0], k, ws);
        for (int l = 1; l < flat; l++) {
            /* An output only a recording layer reads (the second pool's input) is not kept
             * either: scratch, the other one if the input is in one. */
            const sn_layer *layer = &m->layer[l];
            const int in_scratch = l == 1 || t->rec[l], out_scratch = l + 1 < flat && t->rec[l + 1];
            const float *x = in_scratch ? scratch[cur] : c->act[l] + (size_t)r * m->sizes[l];
            if (out_scratch && in_scratch) cur = 1 - cur;
            float *y = out_scratch ? scratch[cur] : c->act[l + 1] + (size_t)r * m->sizes[l + 1];
            if (t->rec[l])
                layer->ops->forward_record(layer, y, t->rec[l] + (size_t)r * m->sizes[l + 1], x, k, ws);
            else
                layer->ops->forward(layer, y, x, k, ws);
        }
    }
}

/* Layer l's gradient from the chunk of rows [r, r + k) (chunked[l]): X its input, dY its
 * output's gradient for those rows, into the chunk's slot. */
static void chunk_gradient(const sn_trainer *t, int l, int r, int k, const float *X, const float *dY, float *ws)
{
    const sn_layer *layer = &t->model->layer[l];
    float *g = t->chunk_grad + t->chunk_off[l] + (size_t)(r / SN_IMAGE_ROWS) * t->chunk_stride[l];
    layer->ops->grad_rows(layer, X, dY, k, g, g + layer->ops->nweights(layer), ws);
}

/* chunked_first, backward: per chunk, layers flat - 1 .. 2 as backward_layers does (from
 * their records where they kept them; with their gradients from the chunk where chunked),
 * then layer 1's input gradient (scratch) from its record or from layer 0's output
 * computed again, and layer 0's gradient from the chunk into its slot of chunk_grad. */
static void first_layers_backward(const sn_trainer *t, int flat, int r0, int rows, float *ws)
{
    const sn_net *m = t->model;
    const sn_layer *first = &m->layer[0], *second = &m->layer[1];
    const float *const *act = (const float *const *)t->fwd.act;
    float *d1, *a1 = chunk_scratch(t, &d1);
    for (int done = 0; done < rows; done += SN_IMAGE_ROWS) {
        const int r = r0 + done, k = rows - done < SN_IMAGE_ROWS ? rows - done : SN_IMAGE_ROWS;
        for (int l = flat - 1; l >= 2; l--) {
            const sn_layer *layer = &m->layer[l];
            float *dx = t->dact[l] + (size_t)r * m->sizes[l];
            const float *dy = t->dact[l + 1] + (size_t)r * m->sizes[l + 1];
            if (t->chunked[l]) chunk_gradient(t, l, r, k, act[l] + (size_t)r * m->sizes[l], dy, ws);
            if (t->rec[l])
                layer->ops->backward_recorded(layer, dx, dy, t->rec[l] + (size_t)r * m->sizes[l + 1],
                                              m->layer[l - 1].relu, k, ws);
            else
                layer->ops->backward_input(layer, dx, dy, act[l] + (size_t)r * m->sizes[l], m->layer[l - 1].relu, k,
                                           ws);
        }
        const float *x = act[0] + (size_t)r * m->sizes[0], *dy2 = t->dact[2] + (size_t)r * m->sizes[2];
        if (t->rec[1]) {
            second->ops->backward_recorded(second, d1, dy2, t->rec[1] + (size_t)r * m->sizes[2], first->relu, k, ws);
        } else {
            first->ops->forward(first, a1, x, k, ws);
            second->ops->backward_input(second, d1, dy2, a1, first->relu, k, ws);
        }
        chunk_gradient(t, 0, r, k, x, d1, ws);
    }
}

/* The optimiser step for gradients just finished by this thread (the fused update). */
static void update_now(void *user, float *g, int n)
{
    sn_trainer *t = user;
    sn_opt_apply_range(&t->opt, t->model->params, t->grads, (size_t)(g - t->grads), (size_t)n);
}

/* Phase 3, chunked[l]: parameters [item * CHUNK_REDUCE_FLOATS, ...) of layer l's
 * gradient, the chunks' gradients summed in chunk order. */
static void chunk_reduce_item(sn_trainer *t, int l, int item, int n, int fused)
{
    const size_t np = sn_layer_nparams(&t->model->layer[l]), e0 = (size_t)item * CHUNK_REDUCE_FLOATS;
    const size_t e1 = e0 + CHUNK_REDUCE_FLOATS < np ? e0 + CHUNK_REDUCE_FLOATS : np;
    const int chunks = (n + SN_IMAGE_ROWS - 1) / SN_IMAGE_ROWS;
    const float *parts = t->chunk_grad + t->chunk_off[l];
    float *restrict g = t->gW[l]; /* W then b, contiguous (sn_net_views) */
    memcpy(g + e0, parts + e0, sizeof(float) * (e1 - e0));
    for (int c = 1; c < chunks; c++) {
        const float *restrict part = parts + (size_t)c * t->chunk_stride[l];
        for (size_t e = e0; e < e1; e++) g[e] += part[e];
    }
    if (fused) update_now(t, g + e0, (int)(e1 - e0));
}

/* Phase 2, rows [r0, r0 + rows) of the batch: their labels, the first layer's output
 * from the partial products (summed in block order, then the bias, then ReLU), or, for a
 * first layer that is not dense, the rows' inputs and the first layer; the other layers,
 * the loss, and back to dLoss/dH1. */
static void rows_forward_backward(sn_trainer *t, const sn_dataset *ds, int first, int n, int r0, int rows)
{
    const sn_net *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers, out1 = m->sizes[1];
    const size_t partial_floats = sn_align_floats((size_t)c->capacity * out1);
    if (rows <= 0) return;
    float *ws = sn_forward_ctx_local_ws(c);
    int from = 1; /* the first layer still to run forward */
    if (t->by_rows) {
        if (ds) sn_batch_gather(ds, t->order, first + r0, rows, c->act[0] + (size_t)r0 * m->sizes[0], c->y + r0);
        from = 0;
    } else {
        if (ds)
            for (int r = r0; r < r0 + rows; r++) c->y[r] = ds->labels[t->order[first + r]];
        sn_dense_block_output(&m->layer[0], c->act[1] + (size_t)r0 * out1, t->partial + (size_t)r0 * out1,
                              partial_floats, SN_INPUT_BLOCKS, rows);
    }
    const int flat = sn_net_first_flat_layer(m) > from ? sn_net_first_flat_layer(m) : from;
    if (t->chunked_first) first_layers_forward(t, flat, r0, rows, ws);
    sn_net_forward_from(m, c, t->chunked_first ? flat : from, r0, rows, ws);
    const int C = m->sizes[L];
    sn_softmax_xent(t->dact[L] + (size_t)r0 * C, c->loss + r0, NULL, c->act[L] + (size_t)r0 * C, c->y + r0, rows,
                    C, 1.0f / (float)(t->loss_rows ? t->loss_rows : n));
    backward_layers(t, flat > 1 ? flat : 1, L, r0, rows, 0, ws);
    if (t->chunked_first)
        first_layers_backward(t, flat, r0, rows, ws);
    else if (flat > 1)
        backward_layers(t, 1, flat, r0, rows, 1, ws);
}

/* Phase 3, one item: weight and bias gradients, each element reduced over the whole
 * batch in batch order on one thread. With `fused`, each finished piece is consumed by
 * the optimiser on the thread that computed it, in its cache: safe, because phases 1
 * and 2 have read every weight already. Items: [0, SN_INPUT_BLOCKS) the first layer's dW
 * rows of pixel block `item` (from the block's own copy of the inputs); then `parts`
 * shares of its bias gradient; then each other layer's items (layer.h). */
static void weight_gradient_item(sn_trainer *t, const step_plan *p, int item, int fused)
{
    const sn_net *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    float *ws = sn_forward_ctx_local_ws(c);
    const sn_epilogue ep = { .done = update_now, .user = t }, *update = fused ? &ep : NULL;
    if (t->by_rows) {
        int l = 0;
        while (item >= p->item0[l + 1]) l++;
        if (t->chunked[l]) {
            chunk_reduce_item(t, l, item - p->item0[l], p->n, fused);
            return;
        }
        const sn_layer *layer = &m->layer[l];
        layer->ops->grad_item(layer, item - p->item0[l], p->n, p->parts, c->act[l], t->dact[l + 1], t->gW[l],
                              t->gb[l], update, ws);
        return;
    }
    if (item < SN_INPUT_BLOCKS) {
        int k0, k1;
        input_block(m->sizes[0], item, &k0, &k1);
        sn_dense_block_grad(&m->layer[0], t->gW[0], xblock(t, k0), k0, k1, t->dact[1], p->n, update, ws);
        return;
    }
    if (item < p->item0[1]) {
        sn_dense_bias_share(&m->layer[0], t->gb[0], t->dact[1], p->n, item - SN_INPUT_BLOCKS, p->parts, update);
        return;
    }
    int l = 1;
    while (item >= p->item0[l + 1]) l++;
    const sn_layer *layer = &m->layer[l];
    layer->ops->grad_item(layer, item - p->item0[l], p->n, p->parts, c->act[l], t->dact[l + 1], t->gW[l], t->gb[l],
                          update, ws);
}

/* Layer l's preferred thread for phase-3 item i (of the step), -1 for any. */
static int item_owner(const sn_trainer *t, const step_plan *p, int l, int i)
{
    const sn_layer *layer = &t->model->layer[l];
    if (t->chunked[l]) return -1; /* sums over every thread's chunks */
    return layer->ops->grad_item_owner(layer, i - p->item0[l], p->n, p->parts);
}

/* The thread each phase-3 item prefers: the one that has the block's pixels, the owner
 * of a share, and whole small layers spread over the team. */
static void phase3_preferences(const sn_trainer *t, const step_plan *p, int nth, int *pref)
{
    const sn_net *m = t->model;
    const int l0 = t->by_rows ? 0 : 1; /* the first layer whose items the layer cuts */
    if (!t->by_rows) {
        for (int b = 0; b < SN_INPUT_BLOCKS; b++) pref[b] = t->block_thread[b];
        for (int i = SN_INPUT_BLOCKS; i < p->item0[1]; i++) pref[i] = (i - SN_INPUT_BLOCKS) % p->parts;
    }
    int whole = 0, spread = 0;
    for (int l = l0; l < m->nlayers; l++)
        for (int i = p->item0[l]; i < p->item0[l + 1]; i++) whole += item_owner(t, p, l, i) < 0;
    for (int l = l0; l < m->nlayers; l++)
        for (int i = p->item0[l]; i < p->item0[l + 1]; i++) {
            const int owner = item_owner(t, p, l, i);
            pref[i] = owner >= 0 ? owner : (int)((long)spread++ * nth / whole);
        }
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
static void prefetch_next_batch(const sn_trainer *t, const sn_dataset *ds, int first, int solo)
{
    const int n = t->ntrain - first < t->fwd.capacity ? t->ntrain - first : t->fwd.capacity;
    const size_t px = (size_t)ds->rows * ds->cols;
    int tid, nth;
    team_info(&tid, &nth);
    for (int b = 0; b < SN_INPUT_BLOCKS; b++) {
        if (!solo && block_owner(b, nth) != tid) continue;
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

/* Starts or ends a solo stretch after the current step (by the thread ending it). */
static void set_solo(step_team *st, int solo)
{
    int tid, nth;
    team_info(&tid, &nth);
    if (solo) {
        atomic_store(&st->solo_period, atomic_load(&st->resume.value) + 1);
        atomic_store(&st->solo_tid, tid);
        atomic_store(&st->solo, 1);
    } else {
        atomic_store(&st->solo, 0);
        sn_event_add(&st->resume, 1);
    }
}

/* The end of step s, by the thread that completed its last item while the others wait
 * for `ready`: the batch loss summed in row order (independent of the team), divergence,
 * progress, the pace of the next step, and its learning rate. */
static void step_end(step_team *st, int s, int n, int end)
{
    sn_trainer *t = st->t;
    double batch_loss = 0.0;
    for (int r = 0; r < n; r++) batch_loss += t->fwd.loss[r];
    st->rows_done += n;
    if (st->apply_update) t->opt.step++;
    const int last = s + 1 == st->steps;
    if (!isfinite(batch_loss)) {
        st->diverged = 1;
        st->loss_sum = batch_loss;
        atomic_store(&st->stop, 1);
    } else {
        st->loss_sum += batch_loss;
        if (st->progress) {
            const double t0 = sn_now();
            st->progress(st->user, st->rows_done, t->ntrain);
            st->progress_s += sn_now() - t0;
        }
        if (!last) set_learning_rate(t);
    }
    const double now = sn_now();
    if (st->apply_update && st->threads > 1) { /* a team of one has nothing to pace */
        st->solo_steps += t->pace.solo;
        /* Probe the team only if the machine has the idle CPUs for it (a ~50 us look,
         * once per solo stretch). */
        if (sn_pace_probe_due(&t->pace) && sn_idle_cpus(st->threads, 0.0) < st->threads) sn_pace_busy(&t->pace);
        if (sn_pace_step(&t->pace, (now - st->last_end) / n) && !last && !st->diverged && st->team > 1)
            set_solo(st, t->pace.solo);
    }
    st->last_end = now;
    /* The run is over: whoever sleeps through a solo stretch must wake to leave. */
    if ((last || st->diverged) && atomic_load(&st->solo)) set_solo(st, 0);
    if (!last) t->step_base[s + 1] = end, t->step_solo[s + 1] = (unsigned char)atomic_load(&st->solo);
    sn_event_add(&st->ready, 1);
}

/* The team's run of st->steps steps, inside its parallel region: each thread takes
 * items phase by phase; nobody waits for a thread, only for work. */
static void run_steps(step_team *st)
{
    sn_trainer *t = st->t;
    const sn_dataset *ds = st->ds;
    const int B = t->fwd.capacity;
    int tid, nth;
    team_info(&tid, &nth);
    /* Training flushes denormals (see denormals_off); the gradient checker does not. */
    const unsigned csr = st->apply_update || t->loss_rows ? denormals_off(t) : 0;
    int *pref = t->pref + (size_t)tid * t->nclaims;
    atomic_int *claims = t->claims;
    for (int s = 0; s < st->steps; s++) {
        if (s > 0) sn_event_wait(&st->ready, s);
        if (atomic_load(&st->stop)) break;
        /* A thread the OS kept away while its partner finished step s catches up. */
        if (atomic_load(&st->ready.value) > s) continue;
        /* Written before `ready` reached s, by whoever ended step s - 1: */
        const int base = t->step_base[s], solo = t->step_solo[s];
        if (solo && atomic_load(&st->solo_tid) != tid) {
            /* Sleep through the solo stretch, then look at the step it has reached. */
            sn_event_wait(&st->resume, atomic_load(&st->solo_period));
            s--;
            continue;
        }
        const int first = s * B, n = ds ? (t->ntrain - first < B ? t->ntrain - first : B) : st->t->grad_rows;
        /* A solo step is planned for one thread: whole row and column ranges, as with
         * --threads 1 (halves would cost small batches ~4% in GEMM call overheads). */
        const int unfused = st->apply_update && !st->fused;
        const step_plan p = plan_step(t, n, solo ? 1 : nth, unfused);
        /* Claim stamps never repeat: 4 per step of the trainer's life. */
        const int stamp = 4 * (t->stamp_base + s) + 1;
        int cursor = 0, item;

        for (int b = 0; b < SN_INPUT_BLOCKS; b++) pref[b] = block_owner(b, nth);
        while ((item = next_item(&cursor, p.n1, pref, tid, claims, stamp)) >= 0) {
            t->block_thread[item] = tid; /* phase 3 prefers the thread that has its pixels */
            input_block_forward(t, ds, first, n, item);
            sn_event_add(&st->done, 1);
        }
        sn_event_wait(&st->done, base + p.n1);

        for (int i = 0; i < p.n2; i++) pref[i] = i;
        cursor = 0;
        while ((item = next_item(&cursor, p.n2, pref, tid, claims, stamp + 1)) >= 0) {
            int r0, rows;
            sn_share_rows(n, 4, item, p.parts, &r0, &rows);
            rows_forward_backward(t, ds, first, n, r0, rows);
            sn_event_add(&st->done, 1);
        }
        sn_event_wait(&st->done, base + p.n1 + p.n2);

        if (ds && first + n < t->ntrain && !t->by_rows) prefetch_next_batch(t, ds, first + n, solo);
        phase3_preferences(t, &p, nth, pref);
        cursor = 0;
        const int end3 = base + p.n1 + p.n2 + p.n3, end = unfused ? end3 + 1 + p.n4 : end3;
        while ((item = next_item(&cursor, p.n3, pref, tid, claims, stamp + 2)) >= 0) {
            weight_gradient_item(t, &p, item, st->fused);
            if (sn_event_add(&st->done, 1) != end3) continue;
            if (!unfused) {
                step_end(st, s, n, end);
            } else { /* the step's gradient is whole: reduce it, then let the update start */
                t->reduce(t->reduce_user, t->grads, t->model->nparams);
                sn_event_add(&st->done, 1);
            }
        }
        if (!unfused) continue;
        sn_event_wait(&st->done, end3 + 1);
        for (int i = 0; i < p.n4; i++) pref[i] = i % nth;
        cursor = 0;
        while ((item = next_item(&cursor, p.n4, pref, tid, claims, stamp + 3)) >= 0) {
            const size_t off = (size_t)item * UPDATE_CHUNK, left = t->model->nparams - off;
            sn_opt_apply_range(&t->opt, t->model->params, t->grads, off, left < UPDATE_CHUNK ? left : UPDATE_CHUNK);
            if (sn_event_add(&st->done, 1) == end) step_end(st, s, n, end);
        }
    }
    if (st->apply_update || t->loss_rows) denormals_restore(csr);
}

/* Runs the team: one parallel region for all the steps. Between steps nobody spins in
 * OpenMP's barriers (which spin for milliseconds before they sleep): the waits are
 * sn_event_wait's, bounded. */
static void run_team(step_team *st, int threads)
{
    sn_event_reset(&st->done);
    sn_event_reset(&st->ready);
    sn_event_reset(&st->resume);
    atomic_store(&st->stop, 0);
    /* A machine busy at the start (a ~50 us look) makes the run solo (a long run for
     * about a second: sn_pace_commit_steps); a solo
     * stretch carries over from the previous epoch, on thread 0. A run that will be solo
     * throughout (no probe due in it) runs on one thread: a partner would only sleep,
     * and waking it at the region's end costs milliseconds on a busy machine. */
    sn_pace *pace = &st->t->pace;
    const int paced = st->apply_update && threads > 1;
    if (paced && sn_pace_mode_auto(pace)) {
        if (sn_idle_cpus(threads, 0.0) < threads) {
            /* Believed only with the pacer's own evidence (or none yet): a quiet
             * machine's look can catch a passing task, such as the reader of the line
             * the program just printed, and a whole epoch on one thread would cost. */
            if (pace->solo || pace->solo_s <= 0.0 || pace->team_s > pace->solo_s)
                sn_pace_busy_for(pace, sn_pace_commit_steps(pace, st->steps));
        } else if (pace->solo) {
            sn_pace_idle(pace); /* the load may have gone: probe the team soon */
        }
    }
    const int team = paced && sn_pace_solo_for(pace, st->steps) ? 1 : threads;
    const int solo = paced && pace->solo && team > 1;
    atomic_store(&st->solo, solo);
    atomic_store(&st->solo_tid, 0);
    atomic_store(&st->solo_period, 1);
    st->t->step_base[0] = 0, st->t->step_solo[0] = (unsigned char)solo;
    st->last_end = sn_now();
    st->threads = threads, st->team = team;
#pragma omp parallel num_threads(team)
    run_steps(st);
    st->t->stamp_base += st->steps;
}

void sn_trainer_set_reduce(sn_trainer *t, sn_reduce_fn fn, void *user)
{
    t->reduce = fn, t->reduce_user = user;
}

void sn_trainer_apply(sn_trainer *t)
{
    set_learning_rate(t);
    const unsigned csr = denormals_off(t);
    sn_opt_apply_range(&t->opt, t->model->params, t->grads, 0, t->model->nparams);
    denormals_restore(csr);
    t->opt.step++;
}

double sn_trainer_gradient(sn_trainer *t, int n)
{
    step_team st = { .t = t, .ds = NULL, .steps = 1, .apply_update = 0 };
    t->grad_rows = n;
    run_team(&st, t->cfg.threads);
    double sum = 0.0;
    for (int r = 0; r < n; r++) sum += t->fwd.loss[r];
    return sum / n;
}

int sn_trainer_begin_epoch(sn_trainer *t, const sn_dataset *ds, sn_dataset *augmented, const sn_dataset **use,
                           double *augment_s)
{
    for (int i = 0; i < t->ntrain; i++) t->order[i] = i;
    sn_shuffle(&t->rng, t->order, t->ntrain);
    *use = ds, *augment_s = 0.0;
    if (!sn_augment_active(&t->cfg.aug)) return SN_OK;
    const double t0 = sn_now();
    /* The augmented copy was sized for rows of the network's input width. */
    if (ds->rows * ds->cols != t->model->sizes[0] || ds->count < t->ntrain) return SN_EINVAL;
    const int rc = sn_augment_dataset(&t->cfg.aug, t->cfg.seed, t->epoch, ds, t->ntrain, t->aug_images,
                                      t->cfg.threads, t->aug_work, NULL);
    if (rc) return rc; /* images too large to augment: sn_fit says so first */
    *augmented = (sn_dataset){ .count = t->ntrain, .rows = ds->rows, .cols = ds->cols, .images = t->aug_images,
                               .labels = ds->labels };
    *use = augmented;
    *augment_s = sn_now() - t0;
    return SN_OK;
}

int sn_train_epoch(sn_trainer *t, const sn_dataset *ds, sn_epoch_stats *st,
                   sn_progress_fn progress, void *user)
{
    if (t->shards) return sn_shards_epoch(t, ds, st, progress, user);
    memset(st, 0, sizeof *st);
    st->epoch = t->epoch + 1;
    const double t0 = sn_now();
    sn_dataset augmented;
    const int rc = sn_trainer_begin_epoch(t, ds, &augmented, &ds, &st->augment_s);
    if (rc) return rc;
    const int B = t->fwd.capacity;
    step_team team = { .t = t, .ds = ds, .steps = (t->ntrain + B - 1) / B, .apply_update = 1,
                       .fused = t->reduce == NULL, .progress = progress, .user = user };
    set_learning_rate(t);
    run_team(&team, step_threads(t->cfg.threads, B));
    const double seconds = sn_now() - t0 - team.progress_s;
    st->diverged = team.diverged;
    st->solo_steps = team.solo_steps;
    st->train_loss = team.diverged ? NAN : team.loss_sum / team.rows_done;
    st->train_s = seconds;
    st->samples_per_s = seconds > 0 ? team.rows_done / seconds : 0.0;
    if (!team.diverged) t->epoch++;
    return SN_OK;
}

/* Evaluation: the rows are independent, so each thread of the team runs chunks of rows
 * through its own slice of the context's buffers, taking the next chunk from a shared
 * counter: no thread ever waits for another until the region ends, and a thread the OS
 * has descheduled simply takes fewer chunks. Each row's loss lands in its own slot and
 * they are summed in row order afterwards: the result does not depend on the team. */
typedef struct eval_team {
    const sn_net *m;
    sn_forward_ctx *c;
    const sn_dataset *ds;
    float *loss;      /* ds->count */
    uint8_t *correct; /* ds->count */
    uint8_t *pred;    /* ds->count or NULL: each row's predicted class */
    float *prob;      /* ds->count or NULL: its softmax probability */
    int chunk;        /* rows per chunk: the context's capacity over the team */
    atomic_int next;  /* chunks handed out */
} eval_team;

static void eval_chunks(eval_team *et)
{
    const sn_net *m = et->m;
    sn_forward_ctx *c = et->c;
    const sn_dataset *ds = et->ds;
    const int L = m->nlayers, in = m->sizes[0], C = m->sizes[L];
    int tid, nth;
    team_info(&tid, &nth);
    (void)nth;
    float *ws = sn_forward_ctx_local_ws(c);
    const int r0 = tid * et->chunk; /* this thread's slice of the context */
    for (;;) {
        const int first = atomic_fetch_add(&et->next, 1) * et->chunk;
        if (first >= ds->count) break;
        const int rows = ds->count - first < et->chunk ? ds->count - first : et->chunk;
        sn_batch_gather(ds, NULL, first, rows, c->act[0] + (size_t)r0 * in, c->y + r0);
        sn_net_forward_rows(m, c, r0, rows, ws);
        const float *logits = c->act[L] + (size_t)r0 * C;
        if (et->pred) /* argmax (the first of equals) and its probability, from the logits */
            for (int r = 0; r < rows; r++) {
                const float *z = logits + (size_t)r * C;
                int best = 0;
                for (int k = 1; k < C; k++)
                    if (z[k] > z[best]) best = k;
                double s = 0;
                for (int k = 0; k < C; k++) s += exp((double)z[k] - z[best]);
                et->pred[first + r] = (uint8_t)best, et->prob[first + r] = (float)(1.0 / s);
            }
        sn_softmax_xent(NULL, et->loss + first, et->correct + first, logits, c->y + r0, rows, C, 0.0f);
    }
}

int sn_evaluate(const sn_net *m, sn_forward_ctx *c, const sn_dataset *ds, int threads,
                double *loss, double *acc, sn_error *err)
{
    return sn_evaluate_rows(m, c, ds, threads, loss, acc, NULL, NULL, err);
}

/* Every row's loss and correctness (and, if asked, prediction and its probability) into
 * the caller's arrays, rows [0, ds->count). */
static void evaluate_into(const sn_net *m, sn_forward_ctx *c, const sn_dataset *ds, int threads, float *loss,
                          uint8_t *correct, uint8_t *pred, float *prob)
{
    if (threads > c->threads) threads = c->threads;
    if (threads > c->capacity) threads = c->capacity;
    threads = sn_idle_cpus(threads, 0.0); /* over in milliseconds: no time to adapt as it runs */
    eval_team et = { .m = m, .c = c, .ds = ds, .chunk = c->capacity / threads, .pred = pred, .prob = prob,
                     .loss = loss, .correct = correct };
    atomic_store(&et.next, 0);
#pragma omp parallel num_threads(threads)
    eval_chunks(&et);
}

void sn_evaluate_sum(const float *loss, const uint8_t *correct, int n, double *mean_loss, double *acc)
{
    double loss_sum = 0.0;
    long right = 0;
    for (int r = 0; r < n; r++) loss_sum += loss[r], right += correct[r];
    *mean_loss = n ? loss_sum / n : NAN;
    *acc = n ? (double)right / n : NAN;
}

void sn_evaluate_losses(const sn_net *m, sn_forward_ctx *c, const sn_dataset *ds, int threads, float *loss,
                        uint8_t *correct)
{
    evaluate_into(m, c, ds, threads, loss, correct, NULL, NULL);
}

int sn_evaluate_rows(const sn_net *m, sn_forward_ctx *c, const sn_dataset *ds, int threads, double *loss, double *acc,
                     uint8_t *pred, float *prob, sn_error *err)
{
    float *losses = malloc(sizeof(float) * (size_t)(ds->count > 0 ? ds->count : 1));
    uint8_t *correct = malloc((size_t)(ds->count > 0 ? ds->count : 1));
    if (!losses || !correct) {
        free(losses), free(correct);
        return sn_fail(err, SN_ENOMEM, "out of memory for the losses of %d rows", ds->count);
    }
    evaluate_into(m, c, ds, threads, losses, correct, pred, prob);
    sn_evaluate_sum(losses, correct, ds->count, loss, acc);
    free(losses), free(correct);
    return SN_OK;
}
