/* scratchnet — the fit loop: epochs of training, validation, and the caller's hooks for
 * progress, per-epoch reports and checkpoints. `scratchnet train`, `bench --sweep` and
 * `bench --peers` all train through it. */
#ifndef SCRATCHNET_FIT_H
#define SCRATCHNET_FIT_H

#include "scratchnet/train.h"

/* One finished epoch, as the epoch_end hook sees it. */
typedef struct sn_fit_epoch {
    sn_epoch_stats stats;     /* the training pass (stats.epoch is 1-based) */
    int evaluated;            /* the validation set was evaluated after it */
    double val_loss, val_acc; /* NAN when not evaluated */
    double eval_s;            /* seconds spent evaluating */
} sn_fit_epoch;

/* Every hook is optional (NULL). */
typedef struct sn_fit_hooks {
    void *user;
    /* Before epoch `epoch` (1-based) of `epochs`. */
    void (*epoch_begin)(void *user, int epoch, int epochs);
    /* Within an epoch, after every step (see sn_progress_fn). */
    sn_progress_fn progress;
    /* After an epoch and its evaluation (not after a diverged epoch): report it, write a
     * checkpoint... A non-zero return stops the fit, which returns it (with err set). */
    int (*epoch_end)(void *user, const sn_trainer *t, const sn_fit_epoch *e, sn_error *err);
    /* Evaluates the validation set in the trainer's place (e.g. sn_shards_evaluate, split
     * over a job's processes); NULL: sn_evaluate on the trainer's threads. */
    int (*evaluate)(void *user, sn_trainer *t, const sn_dataset *ds, double *loss, double *acc, sn_error *err);
} sn_fit_hooks;

/* A run whose accuracy ends below this learned nothing (chance is 0.1 on 10 classes):
 * "collapsed", not a result (train exits 1, sweeps mark it and leave it out of the speed
 * figures). */
#define SN_COLLAPSED_ACC 0.2

typedef struct sn_fit_result {
    int epochs;          /* epochs trained by this call, the diverged one included */
    int diverged;        /* stopped because a batch loss became NaN or infinite */
    int diverged_epoch;  /* 1-based, when diverged */
    double train_s;      /* training passes only */
    double eval_s;       /* validation */
    long samples;        /* rows trained */
    sn_fit_epoch last;   /* the last completed epoch */
} sn_fit_result;

/* Trains t from epoch t->epoch + 1 (so a resumed trainer continues) to t->cfg.epochs on
 * `train`; after every `eval_every`-th epoch and after the last, evaluates `val` (NULL or
 * empty: never) on the trainer's threads. Returns SN_OK (also when training diverged:
 * see res->diverged), an evaluation's error, or the epoch_end hook's. */
int sn_fit(sn_trainer *t, const sn_dataset *train, const sn_dataset *val, int eval_every, const sn_fit_hooks *hooks,
           sn_fit_result *res, sn_error *err);

#endif
