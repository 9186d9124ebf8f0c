/* scratchnet — training steps and evaluation: shuffle, minibatch steps (gather + forward +
 * loss + backward + update), evaluation. An epoch's steps run in one OpenMP parallel
 * region, as work items any thread may take (train.c); every reduction is split so that
 * its order never depends on who computes what, so a run is bit-identical for 1, 2, 3,
 * 4 ... threads and whatever the machine's load. The epoch loop is sn_fit (fit.h). */
#ifndef SCRATCHNET_TRAIN_H
#define SCRATCHNET_TRAIN_H

#include <stdint.h>

#include "scratchnet/augment.h"
#include "scratchnet/data.h"
#include "scratchnet/model.h"
#include "scratchnet/optim.h"
#include "scratchnet/pace.h"
#include "scratchnet/rng.h"

typedef struct sn_train_config {
    int epochs;      /* >= 1 */
    int batch;       /* >= 1; the last partial batch is trained on */
    float lr;        /* > 0, finite */
    sn_opt_kind opt;
    int threads;     /* >= 1 */
    uint64_t seed;
    int val;         /* last `val` training images held out; 0: none */
    int cosine;      /* 1: lr follows a cosine from lr down to 0 over all steps */
    int keep_denormals; /* 0 (default): training threads flush denormals to zero (FTZ/DAZ) */
    sn_augment aug;  /* on-the-fly augmentation of the training images (augment.h); none */
} sn_train_config;

/* Defaults: 10 epochs, batch 128, momentum, lr 0.05, cosine schedule, 1 thread,
 * seed 42, val 10000. */
sn_train_config sn_train_defaults(void);

typedef struct sn_epoch_stats {
    int epoch;            /* 1-based */
    double train_loss;    /* mean over the epoch's samples */
    double train_s;       /* seconds in training steps only */
    double samples_per_s;
    int diverged;         /* a batch loss was NaN or infinite: training stopped */
    int solo_steps;       /* steps run on one thread because the team was outrun (pace.h) */
    double augment_s;     /* of train_s: augmenting the epoch's images (cfg.aug) */
} sn_epoch_stats;

/* The first layer is split by input pixels into this many fixed blocks (see train.c). */
#define SN_INPUT_BLOCKS 4

typedef struct sn_trainer {
    sn_net *model;          /* not owned */
    sn_train_config cfg;
    sn_optimizer opt;
    sn_rng rng;
    int epoch;              /* epochs completed */
    int ntrain;             /* training rows (dataset count minus val) */
    int *order;             /* ntrain, owned */
    float *grads;           /* parameter-shaped, owned */
    float *gW[SN_MAX_LAYERS], *gb[SN_MAX_LAYERS];
    float *dact[SN_MAX_LAYERS + 1]; /* dLoss/d(activation) of layers 1..L, batch x size (dact[0] unused) */
    int by_rows;            /* the first layer is not dense: phase 1 is empty, rows gather their own inputs */
    float *partial;         /* SN_INPUT_BLOCKS first-layer partial products, batch x sizes[1] */
    float *xblock;          /* the batch's inputs by pixel block: block b is batch x its width */
    int block_thread[SN_INPUT_BLOCKS];  /* this step: the thread that took block b */
    _Atomic int *claims;    /* nclaims work-item claim slots (train.c) */
    int *pref;              /* nclaims preferred threads per item, per thread */
    int nclaims;
    int stamp_base;         /* steps run so far by this trainer: claim stamps never repeat */
    int grad_rows;          /* sn_trainer_gradient's n */
    int *step_base;         /* per step of an epoch: the team's item count before it */
    unsigned char *step_solo; /* per step of an epoch: run by one thread (pace.h) */
    sn_pace pace;           /* team or one thread, by measured step times (pace.h) */
    void (*reduce)(void *user, float *grads, size_t n); /* sn_trainer_set_reduce */
    void *reduce_user;
    void *dblock;
    int loss_rows;          /* sn_trainer_gradient: the loss is the sum over this many rows' mean (0: n) */
    struct sn_shards *shards; /* sn_trainer_set_shards: data-parallel steps (shard.h); not owned */
    uint8_t *aug_images;    /* ntrain images: this epoch's augmented copy (cfg.aug), owned */
    void *aug_work;         /* sn_augment_dataset's workspace, owned */
    sn_forward_ctx fwd;     /* activations, workspace, loss buffer */
    /* A first image layer trained chunk by chunk (train.c, chunked_first): per thread, a
     * chunk's output and its gradient (2 x SN_IMAGE_ROWS x sizes[1]); per chunk of the
     * batch, the layer's gradient from that chunk (chunk_stride floats each). */
    int chunked_first;
    unsigned char chunked[SN_MAX_LAYERS]; /* layer l's gradient is summed from chunks' */
    float *chunk_act, *chunk_grad;
    size_t chunk_off[SN_MAX_LAYERS], chunk_stride[SN_MAX_LAYERS];
    /* With chunked_first, image layers l >= 1 that record what their backward pass needs
     * (forward_record) do so in rec[l] (batch x sizes[l + 1]); NULL for the others. */
    float *rec[SN_MAX_LAYERS];
    float *rec_block;
} sn_trainer;

/* Validates cfg, allocates everything, seeds the RNG and He-initialises the model. */
int sn_trainer_create(sn_trainer *t, sn_net *model, const sn_train_config *cfg, int ntrain,
                      sn_error *err);
void sn_trainer_free(sn_trainer *t);
int sn_train_config_check(const sn_train_config *cfg, sn_error *err);

/* Called after every step with the rows done so far in this epoch, by whichever thread
 * of the team finished the step, never by two at once; the others wait for it to
 * return. The CLI draws its progress bar from it. */
typedef void (*sn_progress_fn)(void *user, int done, int total);

/* One epoch over rows [0, ntrain) of train, in a fresh seeded shuffle; with cfg.aug,
 * over their augmentation for this epoch (augment.h), made first by the whole team. */
int sn_train_epoch(sn_trainer *t, const sn_dataset *train, sn_epoch_stats *st,
                   sn_progress_fn progress, void *user);

/* Gradients, reduction, update: each training step computes the gradient of the batch's
 * mean loss into t->grads, then (if set) calls `fn` once, on one thread of the team,
 * with the whole gradient (t->model->nparams floats, parameter-shaped) to change in place,
 * e.g. to sum it over the shards of a batch or the processes of a job; then the optimiser
 * updates every parameter. Without a hook the update is fused into the gradient's
 * computation, each piece updated in cache as it is finished: the same bits, faster.
 * fn NULL: back to fused. */
typedef void (*sn_reduce_fn)(void *user, float *grads, size_t n);
void sn_trainer_set_reduce(sn_trainer *t, sn_reduce_fn fn, void *user);

/* The optimiser's step with the gradient in t->grads (e.g. after sn_trainer_gradient and
 * a reduction): the schedule's rate for step t->opt.step, then t->opt.step + 1. */
void sn_trainer_apply(sn_trainer *t);

/* Mean loss over the n rows already in t->fwd.act[0] (labels t->fwd.y) and its
 * gradient into t->grads, without updating anything: the gradient checker's entry (and
 * a shard's, shard.h: with t->loss_rows = B the gradient is that of the n rows' share of
 * a batch of B rows, sum of their losses / B). */
double sn_trainer_gradient(sn_trainer *t, int n);

/* The start of every epoch: a fresh seeded shuffle of t->order and, with cfg.aug, the
 * epoch's augmented images (made by the whole team); *use is what the epoch trains on
 * (ds or the augmented copy in *augmented). SN_EINVAL for images the augmented copy was
 * not sized for. */
int sn_trainer_begin_epoch(sn_trainer *t, const sn_dataset *ds, sn_dataset *augmented, const sn_dataset **use,
                           double *augment_s);

/* Mean cross-entropy and accuracy of the model on ds, with up to `threads` threads, each
 * running chunks of ctx->capacity / threads rows. The same bits for any thread count.
 * Fails only for want of memory (4 bytes + 1 per row). */
int sn_evaluate(const sn_net *m, sn_forward_ctx *ctx, const sn_dataset *ds, int threads,
                double *loss, double *acc, sn_error *err);
/* The same, and each row's predicted class (pred, ds->count bytes) and its softmax
 * probability (prob, ds->count floats), for confusion matrices and error galleries.
 * pred and prob both NULL: sn_evaluate. */
int sn_evaluate_rows(const sn_net *m, sn_forward_ctx *ctx, const sn_dataset *ds, int threads, double *loss,
                     double *acc, uint8_t *pred, float *prob, sn_error *err);

/* The pieces of sn_evaluate, for evaluating a dataset in slices (e.g. over the processes
 * of a job, shard.h): each row's loss and whether it was classified right, rows
 * [0, ds->count) into loss and correct; then their mean and the accuracy, summed in row
 * order, which is what sn_evaluate returns for the whole set, bit for bit. */
void sn_evaluate_losses(const sn_net *m, sn_forward_ctx *ctx, const sn_dataset *ds, int threads, float *loss,
                        uint8_t *correct);
void sn_evaluate_sum(const float *loss, const uint8_t *correct, int n, double *mean_loss, double *acc);

double sn_now(void); /* monotonic seconds */

#endif
