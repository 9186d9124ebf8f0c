#include "scratchnet/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    if ((rc = sn_forward_ctx_create(&t->fwd, model, cap, err))) goto fail;
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

/* Forward, loss and backward for the n rows in act[0] / y; gradients into t->grads.
 * Runs inside the caller's parallel region (or serially). */
static void loss_and_gradient(sn_trainer *t, int n)
{
    const sn_mlp *m = t->model;
    sn_forward_ctx *c = &t->fwd;
    const int L = m->nlayers;
    sn_mlp_forward(m, c, n);
    sn_softmax_xent(t->dact[L], c->loss, NULL, c->act[L], c->y, n, m->sizes[L], 1.0f / (float)n);
    for (int l = L - 1; l >= 0; l--)
        sn_linear_backward(l > 0 ? t->dact[l] : NULL, t->gW[l], t->gb[l], t->dact[l + 1],
                           c->act[l], m->W[l], l > 0 ? c->act[l] : NULL, n, m->sizes[l],
                           m->sizes[l + 1], c->ws);
}

double sn_trainer_gradient(sn_trainer *t, int n)
{
#pragma omp parallel num_threads(t->cfg.threads)
    loss_and_gradient(t, n);
    double sum = 0.0;
    for (int r = 0; r < n; r++) sum += t->fwd.loss[r];
    return sum / n;
}

/* One minibatch: rows order[first .. first+n). Runs inside the caller's parallel region. */
static void train_step(sn_trainer *t, const sn_dataset *ds, int first, int n)
{
    sn_forward_ctx *c = &t->fwd;
    const int in = t->model->sizes[0];
#pragma omp for schedule(static)
    for (int r = 0; r < n; r++)
        sn_batch_gather(ds, t->order, first + r, 1, c->act[0] + (size_t)r * in, c->y + r);
    loss_and_gradient(t, n);
    sn_opt_apply(&t->opt, t->model->params, t->grads);
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
        double t0 = sn_now();
#pragma omp parallel num_threads(t->cfg.threads)
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
    const int L = m->nlayers, in = m->sizes[0];
    for (int first = 0; first < ds->count; first += c->capacity) {
        int n = ds->count - first < c->capacity ? ds->count - first : c->capacity;
#pragma omp parallel num_threads(threads)
        {
#pragma omp for schedule(static)
            for (int r = 0; r < n; r++)
                sn_batch_gather(ds, NULL, first + r, 1, c->act[0] + (size_t)r * in, c->y + r);
            sn_mlp_forward(m, c, n);
            sn_softmax_xent(NULL, c->loss, c->correct, c->act[L], c->y, n, m->sizes[L], 0.0f);
        }
        for (int r = 0; r < n; r++) loss_sum += c->loss[r], correct += c->correct[r];
    }
    *loss = ds->count ? loss_sum / ds->count : NAN;
    *acc = ds->count ? (double)correct / ds->count : NAN;
}
