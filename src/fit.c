#include "scratchnet/fit.h"

#include <math.h>
#include <string.h>

int sn_fit(sn_trainer *t, const sn_dataset *train, const sn_dataset *val, int eval_every, const sn_fit_hooks *hooks,
           sn_fit_result *res, sn_error *err)
{
    static const sn_fit_hooks none = { 0 };
    if (!hooks) hooks = &none;
    memset(res, 0, sizeof *res);
    res->last.val_loss = res->last.val_acc = NAN;
    const int epochs = t->cfg.epochs;
    if (sn_augment_active(&t->cfg.aug) && (train->rows > SN_AUGMENT_MAX_SIDE || train->cols > SN_AUGMENT_MAX_SIDE))
        return sn_fail(err, SN_EINVAL, "training images are %dx%d pixels; augmentation takes at most %d a side",
                       train->rows, train->cols, SN_AUGMENT_MAX_SIDE);
    while (t->epoch < epochs) {
        sn_fit_epoch e = { .val_loss = NAN, .val_acc = NAN };
        if (hooks->epoch_begin) hooks->epoch_begin(hooks->user, t->epoch + 1, epochs);
        const int ran = sn_train_epoch(t, train, &e.stats, hooks->progress, hooks->user);
        if (ran) return sn_fail(err, ran, "epoch %d could not run (error %d)", t->epoch + 1, ran);
        res->epochs++;
        res->train_s += e.stats.train_s;
        res->samples += t->ntrain;
        if (e.stats.diverged) {
            res->diverged = 1, res->diverged_epoch = e.stats.epoch;
            return SN_OK;
        }
        e.evaluated = val && val->count > 0 && eval_every > 0 && (t->epoch % eval_every == 0 || t->epoch == epochs);
        if (e.evaluated) {
            const double t0 = sn_now();
            const int rc = hooks->evaluate ? hooks->evaluate(hooks->user, t, val, &e.val_loss, &e.val_acc, err)
                                           : sn_evaluate(t->model, &t->fwd, val, t->cfg.threads, &e.val_loss,
                                                         &e.val_acc, err);
            if (rc) return rc;
            e.eval_s = sn_now() - t0;
            res->eval_s += e.eval_s;
        }
        res->last = e;
        if (hooks->epoch_end) {
            const int rc = hooks->epoch_end(hooks->user, t, &e, err);
            if (rc) return rc;
        }
    }
    return SN_OK;
}
