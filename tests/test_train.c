/* Training on the committed MNIST subset: it must clearly learn, and the weights must be
 * bit-identical for 1, 2 and 3 threads. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/fit.h"
#include "scratchnet/gemm.h"
#include "scratchnet/optim.h"
#include "scratchnet/shard.h"
#include "scratchnet/train.h"
#include "test_util.h"

static sn_dataset train_set, test_set;

static void load(void)
{
    sn_error err;
    cr_assert_eq(sn_mnist_load(&train_set, TU_SUBSET, SN_SPLIT_TRAIN, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_mnist_load(&test_set, TU_SUBSET, SN_SPLIT_TEST, &err), SN_OK, "%s", err.msg);
}

static void unload(void)
{
    sn_dataset_free(&train_set);
    sn_dataset_free(&test_set);
}

/* Trains 784-50-25-10 and returns the test accuracy; the weights land in *m. */
static double train_batch(sn_net *m, int threads, sn_opt_kind opt, float lr, int epochs, int batch)
{
    int sizes[] = { 784, 50, 25, 10 };
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.threads = threads, cfg.opt = opt, cfg.lr = lr, cfg.epochs = epochs, cfg.val = 0, cfg.batch = batch;
    cr_assert_eq(sn_net_create_mlp(m, sizes, 4, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, m, &cfg, train_set.count, NULL), SN_OK);
    for (int e = 0; e < epochs; e++) {
        sn_epoch_stats st;
        sn_train_epoch(&t, &train_set, &st, NULL, NULL);
        cr_assert(!st.diverged, "diverged in epoch %d", e + 1);
    }
    double loss, acc;
    cr_assert_eq(sn_evaluate(m, &t.fwd, &test_set, threads, &loss, &acc, NULL), SN_OK);
    sn_trainer_free(&t);
    return acc;
}

static double train(sn_net *m, int threads, sn_opt_kind opt, float lr, int epochs)
{
    return train_batch(m, threads, opt, lr, epochs, 64);
}

/* 3,000 images, 5 epochs: chance is 0.10; this network reaches ~0.88-0.90 here, so 0.80
 * is "clearly learns" with room for ISA differences. */
Test(train, learns_on_subset, .init = load, .fini = unload, .timeout = 120)
{
    sn_net m;
    double acc = train(&m, 2, SN_OPT_MOMENTUM, 0.05f, 5);
    cr_assert(acc > 0.80, "test accuracy %.4f on the subset", acc);
    sn_net_free(&m);
}

Test(train, every_optimiser_learns, .init = load, .fini = unload, .timeout = 120)
{
    sn_net m;
    double a = train(&m, 2, SN_OPT_SGD, 0.1f, 3);
    sn_net_free(&m);
    double b = train(&m, 2, SN_OPT_ADAM, 0.002f, 3);
    sn_net_free(&m);
    double c = train(&m, 2, SN_OPT_NESTEROV, 0.05f, 3);
    sn_net_free(&m);
    cr_assert(a > 0.70, "sgd: %.4f", a);
    cr_assert(b > 0.70, "adam: %.4f", b);
    cr_assert(c > 0.70, "nesterov: %.4f", c);
}

Test(train, bit_identical_across_1_2_3_threads, .init = load, .fini = unload, .timeout = 120)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        sn_net m[3];
        for (int t = 0; t < 3; t++) train(&m[t], t + 1, SN_OPT_ADAM, 0.002f, 2);
        cr_assert(memcmp(m[0].params, m[1].params, m[0].nparams * 4) == 0, "%s: 1 vs 2 threads differ",
                  sn_isa_name((sn_isa)isa));
        cr_assert(memcmp(m[0].params, m[2].params, m[0].nparams * 4) == 0, "%s: 1 vs 3 threads differ",
                  sn_isa_name((sn_isa)isa));
        for (int t = 0; t < 3; t++) sn_net_free(&m[t]);
    }
}

/* A net with activation layers of its own trains like the MLP (learns, and the same
 * bits on 1, 2 and 3 threads): the trainer walks whatever layers it is given. */
Test(train, net_with_activation_layers_learns_same_bits, .init = load, .fini = unload)
{
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    cr_assert_eq(sn_net_parse("784,dense:64,leaky:0.05,dense:32,relu,dense:10", layers, &nl, NULL), SN_OK);
    sn_net m[3];
    double acc[3];
    for (int k = 0; k < 3; k++) {
        sn_trainer t;
        sn_train_config cfg = sn_train_defaults();
        cfg.threads = k + 1, cfg.epochs = 3, cfg.val = 0, cfg.batch = 64;
        cr_assert_eq(sn_net_create(&m[k], layers, nl, NULL), SN_OK);
        cr_assert_eq(sn_trainer_create(&t, &m[k], &cfg, train_set.count, NULL), SN_OK);
        for (int e = 0; e < cfg.epochs; e++) {
            sn_epoch_stats st;
            sn_train_epoch(&t, &train_set, &st, NULL, NULL);
            cr_assert(!st.diverged);
        }
        double loss;
        cr_assert_eq(sn_evaluate(&m[k], &t.fwd, &test_set, k + 1, &loss, &acc[k], NULL), SN_OK);
        sn_trainer_free(&t);
    }
    cr_assert(acc[0] > 0.80, "test accuracy %.4f on the subset (the MLP reaches ~0.88)", acc[0]);
    for (int k = 1; k < 3; k++)
        cr_assert(memcmp(m[0].params, m[k].params, m[0].nparams * 4) == 0, "1 vs %d threads differ", k + 1);
    for (int k = 0; k < 3; k++) sn_net_free(&m[k]);
}

/* Six threads for four input blocks (batch 128, so all six run): threads 2 and 5 own no
 * block and take over whatever the owners have not started, so blocks change hands
 * from step to step; the trained weights must still equal the single thread's. */
Test(train, bit_identical_when_blocks_change_hands, .init = load, .fini = unload, .timeout = 120)
{
    sn_net m[2];
    train_batch(&m[0], 1, SN_OPT_MOMENTUM, 0.05f, 1, 128);
    train_batch(&m[1], 6, SN_OPT_MOMENTUM, 0.05f, 1, 128);
    cr_assert(memcmp(m[0].params, m[1].params, m[0].nparams * 4) == 0, "1 vs 6 threads differ");
    sn_net_free(&m[0]), sn_net_free(&m[1]);
}

Test(train, divergence_detected, .init = load, .fini = unload)
{
    int sizes[] = { 784, 50, 10 };
    sn_net m;
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.lr = 1e8f, cfg.val = 0, cfg.cosine = 0;
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, train_set.count, NULL), SN_OK);
    sn_epoch_stats st;
    sn_train_epoch(&t, &train_set, &st, NULL, NULL);
    cr_assert(st.diverged, "lr=1e8 must diverge, train_loss=%g", st.train_loss);
    cr_assert_eq(t.epoch, 0, "a diverged epoch does not count as done");
    sn_trainer_free(&t);
    sn_net_free(&m);
}

Test(train, config_validation)
{
    sn_train_config c = sn_train_defaults();
    sn_error err;
    cr_assert_eq(sn_train_config_check(&c, &err), SN_OK);
    c.batch = 0;
    cr_assert_eq(sn_train_config_check(&c, &err), SN_EINVAL);
    c = sn_train_defaults();
    c.lr = -1;
    cr_assert_eq(sn_train_config_check(&c, &err), SN_EINVAL);
    c.lr = __builtin_nanf("");
    cr_assert_eq(sn_train_config_check(&c, &err), SN_EINVAL);
    c = sn_train_defaults();
    c.threads = 0;
    cr_assert_eq(sn_train_config_check(&c, &err), SN_EINVAL);
}

/* The textbook computation in double with plain loops, for any network of the
 * registry's layer types (written from the formulas, not from the library's code):
 *   dense: y = x W + b, then ReLU if flagged;  relu: y = max(x, 0);
 *   leaky: y = x > 0 ? x : slope x;  loss: mean over rows of -log softmax(z)_label.
 * g is laid out like the parameter block (each layer's W, in x out, then b). With
 * g NULL it computes the loss alone (for finite differences). */
static double ref_slope(const sn_layer *l)
{
    return !strcmp(l->ops->type, "leaky") ? l->arg : 0.0;
}

static void reference_gradient(const sn_net *m, const float *X, const uint8_t *y, int n, double *g, double *loss)
{
    const int L = m->nlayers;
    double *act[SN_MAX_LAYERS + 1], *d[SN_MAX_LAYERS + 1];
    for (int l = 0; l <= L; l++) {
        act[l] = calloc((size_t)n * m->sizes[l], sizeof(double));
        d[l] = calloc((size_t)n * m->sizes[l], sizeof(double));
    }
    for (size_t i = 0; i < (size_t)n * m->sizes[0]; i++) act[0][i] = X[i];
    for (int l = 0; l < L; l++) {
        const sn_layer *layer = &m->layer[l];
        const int in = m->sizes[l], out = m->sizes[l + 1];
        const int dense = layer->ops == &sn_dense_ops;
        for (int r = 0; r < n; r++)
            for (int j = 0; j < out; j++) {
                double s;
                if (dense) {
                    s = m->b[l][j];
                    for (int k = 0; k < in; k++) s += act[l][(size_t)r * in + k] * m->W[l][(size_t)k * out + j];
                    if (layer->relu && s < 0) s = 0;
                } else {
                    const double x = act[l][(size_t)r * in + j];
                    s = x > 0 ? x : ref_slope(layer) * x;
                }
                act[l + 1][(size_t)r * out + j] = s;
            }
    }
    const int C = m->sizes[L];
    *loss = 0;
    for (int r = 0; r < n; r++) {
        const double *z = act[L] + (size_t)r * C;
        double mx = z[0], sum = 0;
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < C; c++) sum += exp(z[c] - mx);
        *loss += (log(sum) + mx - z[y[r]]) / n;
        for (int c = 0; c < C; c++) d[L][(size_t)r * C + c] = (exp(z[c] - mx) / sum - (c == y[r])) / n;
    }
    size_t off = 0;
    for (int l = 0; l < L; l++) off += sn_layer_nparams(&m->layer[l]);
    for (int l = L - 1; l >= 0 && g; l--) {
        const sn_layer *layer = &m->layer[l];
        const int in = m->sizes[l], out = m->sizes[l + 1];
        off -= sn_layer_nparams(layer);
        if (layer->ops != &sn_dense_ops) { /* element-wise: d_in = d_out * f'(x) */
            for (size_t i = 0; i < (size_t)n * in; i++) d[l][i] = d[l + 1][i] * (act[l][i] > 0 ? 1.0 : ref_slope(layer));
            continue;
        }
        /* d[l + 1] is dLoss/d(output) after the ReLU; through it: zero where the output is. */
        if (layer->relu)
            for (size_t i = 0; i < (size_t)n * out; i++)
                if (!(act[l + 1][i] > 0)) d[l + 1][i] = 0;
        double *gW = g + off, *gb = gW + (size_t)in * out;
        for (int k = 0; k < in; k++)
            for (int j = 0; j < out; j++) {
                double s = 0;
                for (int r = 0; r < n; r++) s += act[l][(size_t)r * in + k] * d[l + 1][(size_t)r * out + j];
                gW[(size_t)k * out + j] = s;
            }
        for (int j = 0; j < out; j++) {
            double s = 0;
            for (int r = 0; r < n; r++) s += d[l + 1][(size_t)r * out + j];
            gb[j] = s;
        }
        for (int r = 0; r < n; r++)
            for (int k = 0; k < in; k++) {
                double s = 0;
                for (int j = 0; j < out; j++) s += d[l + 1][(size_t)r * out + j] * m->W[l][(size_t)k * out + j];
                d[l][(size_t)r * in + k] = s;
            }
    }
    for (int l = 0; l <= L; l++) free(act[l]), free(d[l]);
}

/* The trainer's gradient of one step of net m (batch of N subset images, 2 threads, the
 * first layer in pixel blocks) against reference_gradient, layer by layer. Float error:
 * each gradient is a sum of <= 784 products whose float rounding is bounded by ~k u
 * sum|terms| (k u ~ 5e-5 for k = 784); the bound used, 1e-4 of the layer's largest
 * gradient plus 1e-4 relative, is a few times the worst case seen here (~1e-6 of the
 * largest) and far below what a wrong index, transpose, block, slope or mask gives (the
 * size of the gradient itself). A ReLU whose input is within float error of 0 could flip
 * its mask; none does on these batches (no exemptions). */
static void check_step_gradient(sn_net *m, int N, const char *what)
{
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.batch = N, cfg.threads = 2, cfg.val = 0;
    cr_assert_eq(sn_trainer_create(&t, m, &cfg, N, NULL), SN_OK);
    for (int l = 0; l < m->nlayers; l++) { /* non-zero biases */
        const size_t nb = m->layer[l].ops->nbiases(&m->layer[l]);
        if (!nb) continue;
        tu_fill(m->b[l], nb, 40 + l);
        for (size_t j = 0; j < nb; j++) m->b[l][j] *= 0.1f;
    }
    sn_batch_gather(&train_set, NULL, 0, N, t.fwd.act[0], t.fwd.y);
    float *X = malloc(sizeof(float) * N * 784);
    memcpy(X, t.fwd.act[0], sizeof(float) * N * 784);
    const double loss = sn_trainer_gradient(&t, N);
    double *ref = calloc(m->nparams, sizeof(double)), ref_loss;
    reference_gradient(m, X, t.fwd.y, N, ref, &ref_loss);
    cr_assert(fabs(loss - ref_loss) <= 1e-5 * fabs(ref_loss), "%s: loss %.9g, reference %.9g", what, loss, ref_loss);
    size_t off = 0;
    for (int l = 0; l < m->nlayers; l++) {
        const size_t count = sn_layer_nparams(&m->layer[l]);
        double largest = 0;
        for (size_t i = off; i < off + count; i++) largest = fmax(largest, fabs(ref[i]));
        cr_assert(!count || largest > 0, "%s: layer %d has no gradient", what, l + 1);
        for (size_t i = off; i < off + count; i++) {
            const double tol = 1e-4 * largest + 1e-4 * fabs(ref[i]);
            cr_assert(fabs(t.grads[i] - ref[i]) <= tol, "%s: layer %d parameter %zu: %.9g, reference %.9g", what,
                      l + 1, i - off, t.grads[i], ref[i]);
        }
        off += count;
    }
    free(X), free(ref);
    sn_trainer_free(&t);
}

Test(train, step_gradient_matches_double_reference_on_every_isa, .init = load, .fini = unload, .timeout = 120)
{
    int sizes[] = { 784, 50, 25, 10 };
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        sn_net m;
        cr_assert_eq(sn_net_create_mlp(&m, sizes, 4, NULL), SN_OK);
        check_step_gradient(&m, 128, sn_isa_name((sn_isa)isa));
        sn_net_free(&m);
    }
    sn_isa_init(NULL);
}

/* The same check through activation layers of their own (leaky ReLUs, a standalone
 * ReLU, dense layers without a fused ReLU before them), on every ISA. */
Test(train, step_gradient_through_activation_layers, .init = load, .fini = unload)
{
    static const char *const nets[] = { "784,dense:40,leaky:0.1,dense:20,leaky,dense:10",
                                        "784,dense:30,leaky:0.2,relu,dense:10" };
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        for (int k = 0; k < 2; k++) {
            sn_layer layers[SN_MAX_LAYERS];
            int nl;
            sn_error err;
            cr_assert_eq(sn_net_parse(nets[k], layers, &nl, &err), SN_OK, "%s", err.msg);
            sn_net m;
            cr_assert_eq(sn_net_create(&m, layers, nl, &err), SN_OK, "%s", err.msg);
            char what[160];
            snprintf(what, sizeof what, "%s on %s", nets[k], sn_isa_name((sn_isa)isa));
            check_step_gradient(&m, 96, what);
            sn_net_free(&m);
        }
    }
    sn_isa_init(NULL);
}

/* The double reference itself against central finite differences of its own loss, for
 * a net with every layer type, at 40 parameters spread over the block. With h ~ 1e-4
 * (the float step actually taken) the truncation error is ~h^2 |f'''| ~ 1e-8 and the
 * rounding ~1e-16 / h, so 1e-6 absolute + 1e-4 relative only fails on a wrong
 * derivative, or on a ReLU or leaky kink within h of some input (h = 1e-3 crosses one
 * at this seed: a 3% miss; 1e-4 crosses none). */
Test(gradcheck, reference_through_every_layer_type, .init = load, .fini = unload)
{
    enum { N = 8 };
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    cr_assert_eq(sn_net_parse("784,dense:12,leaky:0.1,dense:8,relu,dense:6,leaky:0.3,relu,dense:10", layers, &nl,
                              NULL), SN_OK);
    sn_net m;
    cr_assert_eq(sn_net_create(&m, layers, nl, NULL), SN_OK);
    sn_rng rng;
    sn_rng_seed(&rng, 7);
    sn_net_init_he(&m, &rng);
    for (int l = 0; l < nl; l++)
        for (size_t j = 0; j < m.layer[l].ops->nbiases(&m.layer[l]); j++) m.b[l][j] = 0.05f * (float)((int)j % 5 - 2);
    float *X = malloc(sizeof(float) * N * 784);
    uint8_t y[N];
    sn_batch_gather(&train_set, NULL, 0, N, X, y);
    double *g = calloc(m.nparams, sizeof(double)), loss;
    reference_gradient(&m, X, y, N, g, &loss);
    for (int k = 0; k < 40; k++) {
        const size_t i = (size_t)k * (m.nparams / 40) + (size_t)k % 7;
        const float keep = m.params[i];
        double up, down;
        m.params[i] = (float)(keep + 1e-4); /* float parameters: divide by the steps actually taken */
        const double hu = (double)m.params[i] - keep;
        reference_gradient(&m, X, y, N, NULL, &up);
        m.params[i] = (float)(keep - 1e-4);
        const double hd = keep - (double)m.params[i];
        reference_gradient(&m, X, y, N, NULL, &down);
        m.params[i] = keep;
        const double fd = (up - down) / (hu + hd);
        cr_assert(fabs(fd - g[i]) <= 1e-6 + 1e-4 * fabs(g[i]), "parameter %zu: finite difference %.9g, gradient %.9g",
                  i, fd, g[i]);
    }
    free(X), free(g);
    sn_net_free(&m);
}

/* The team policies (pace.h) change who computes what, never a bit: every forced mode,
 * on 2 and 3 threads, against 1 thread. `alternate` hands the work between one thread
 * and the team every 7 steps (94 steps an epoch at batch 32), so a sleeping partner
 * rejoins mid-epoch ~13 times an epoch, and the next epoch starts in either mode. A hang
 * here is caught by meson's suite timeout (no Criterion .timeout: Criterion 2.4.1 leaks
 * 48 bytes with one, which fails the LeakSanitizer run). */
Test(train, team_modes_same_bits, .init = load, .fini = unload)
{
    sn_net ref, m;
    train_batch(&ref, 1, SN_OPT_MOMENTUM, 0.05f, 2, 32);
    static const char *const modes[] = { "solo", "alternate", "always", "auto" };
    for (int i = 0; i < 4; i++)
        for (int threads = 2; threads <= 3; threads++) {
            setenv("SCRATCHNET_TEAM", modes[i], 1);
            train_batch(&m, threads, SN_OPT_MOMENTUM, 0.05f, 2, 32);
            cr_assert(memcmp(ref.params, m.params, ref.nparams * 4) == 0, "SCRATCHNET_TEAM=%s, %d threads: bits differ",
                      modes[i], threads);
            sn_net_free(&m);
        }
    sn_net_free(&ref);
    unsetenv("SCRATCHNET_TEAM");
}

/* A run that diverges while the partner sleeps through a solo stretch must still end
 * (the partner is woken to leave), and report the divergence. */
Test(train, divergence_in_solo_stretch_ends, .init = load, .fini = unload)
{
    static const char *const modes[] = { "solo", "alternate" };
    for (int i = 0; i < 2; i++) {
        setenv("SCRATCHNET_TEAM", modes[i], 1);
        int sizes[] = { 784, 50, 10 };
        sn_net m;
        sn_trainer t;
        sn_train_config cfg = sn_train_defaults();
        cfg.lr = 1e8f, cfg.val = 0, cfg.cosine = 0, cfg.threads = 2; /* diverges in step 4 */
        cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
        cr_assert_eq(sn_trainer_create(&t, &m, &cfg, train_set.count, NULL), SN_OK);
        sn_epoch_stats st;
        sn_train_epoch(&t, &train_set, &st, NULL, NULL);
        cr_assert(st.diverged, "SCRATCHNET_TEAM=%s: lr=1e8 must diverge", modes[i]);
        if (i == 0) cr_assert_gt(st.solo_steps, 0, "solo mode ran no solo step");
        sn_trainer_free(&t);
        sn_net_free(&m);
    }
    unsetenv("SCRATCHNET_TEAM");
}

Test(train, team_mode_env_validated)
{
    sn_team_mode mode;
    sn_error err;
    setenv("SCRATCHNET_TEAM", "sometimes", 1);
    cr_assert_eq(sn_team_mode_from_env(&mode, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "sometimes") && strstr(err.msg, "alternate"), "message: %s", err.msg);
    setenv("SCRATCHNET_TEAM", "alternate", 1);
    cr_assert_eq(sn_team_mode_from_env(&mode, &err), SN_OK);
    cr_assert_eq(mode, SN_TEAM_ALTERNATE);
    unsetenv("SCRATCHNET_TEAM");
    cr_assert_eq(sn_team_mode_from_env(&mode, &err), SN_OK);
    cr_assert_eq(mode, SN_TEAM_AUTO);
}

/* Gradients, then a reduction, then the update: with a hook the update is a separate
 * phase, element by element the same arithmetic as the fused one, so the bits must not
 * move; the hook runs once per step, between the two (a hook that zeroes the gradient
 * leaves SGD's weights untouched). */
static int reduce_calls;
static void count_reduce(void *user, float *grads, size_t n)
{
    (void)user, (void)grads, (void)n;
    reduce_calls++;
}
static void zero_reduce(void *user, float *grads, size_t n)
{
    (void)user;
    for (size_t i = 0; i < n; i++) grads[i] = 0.0f;
}

Test(train, reduce_hook_same_bits, .init = load, .fini = unload)
{
    static const sn_opt_kind opts[] = { SN_OPT_MOMENTUM, SN_OPT_ADAM };
    for (int o = 0; o < 2; o++)
        for (int threads = 1; threads <= 3; threads += 2) {
            int sizes[] = { 784, 50, 25, 10 };
            sn_net fused, split;
            sn_trainer a, b;
            sn_train_config cfg = sn_train_defaults();
            cfg.threads = threads, cfg.opt = opts[o], cfg.lr = o ? 0.002f : 0.05f, cfg.epochs = 1, cfg.val = 0;
            cfg.batch = 32;
            cr_assert_eq(sn_net_create_mlp(&fused, sizes, 4, NULL), SN_OK);
            cr_assert_eq(sn_net_create_mlp(&split, sizes, 4, NULL), SN_OK);
            cr_assert_eq(sn_trainer_create(&a, &fused, &cfg, train_set.count, NULL), SN_OK);
            cr_assert_eq(sn_trainer_create(&b, &split, &cfg, train_set.count, NULL), SN_OK);
            sn_trainer_set_reduce(&b, count_reduce, NULL);
            reduce_calls = 0;
            sn_epoch_stats sa, sb;
            sn_train_epoch(&a, &train_set, &sa, NULL, NULL);
            sn_train_epoch(&b, &train_set, &sb, NULL, NULL);
            const int steps = (train_set.count + 31) / 32;
            cr_assert_eq(reduce_calls, steps, "the hook ran %d times in %d steps", reduce_calls, steps);
            cr_assert(memcmp(fused.params, split.params, fused.nparams * 4) == 0,
                      "%s, %d threads: gradients-reduce-update differs from the fused update",
                      sn_opt_name(opts[o]), threads);
            cr_assert_eq(sa.train_loss, sb.train_loss);
            sn_trainer_free(&a), sn_trainer_free(&b);
            sn_net_free(&fused), sn_net_free(&split);
        }

    int sizes[] = { 784, 50, 10 };
    sn_net m;
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.opt = SN_OPT_SGD, cfg.val = 0, cfg.threads = 2;
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, train_set.count, NULL), SN_OK);
    float *before = malloc(m.nparams * sizeof(float));
    memcpy(before, m.params, m.nparams * sizeof(float));
    sn_trainer_set_reduce(&t, zero_reduce, NULL);
    sn_epoch_stats st;
    sn_train_epoch(&t, &train_set, &st, NULL, NULL);
    cr_assert(memcmp(before, m.params, m.nparams * 4) == 0, "a zeroed gradient moved the weights: the update "
                                                           "did not wait for the hook");
    free(before);
    sn_trainer_free(&t);
    sn_net_free(&m);
}

/* The fit loop: hooks in order, evaluation every eval_every epochs and after the last,
 * a hook's error stops it and comes back, and a trainer past epoch 1 continues. */
typedef struct fit_log {
    int begins, ends, evaluated[8], stop_after;
} fit_log;
static void log_begin(void *user, int epoch, int epochs)
{
    fit_log *l = user;
    cr_assert_eq(epoch, l->begins + 1, "epoch %d began out of order", epoch);
    cr_assert_eq(epochs, 3);
    l->begins++;
}
static int log_end(void *user, const sn_trainer *t, const sn_fit_epoch *e, sn_error *err)
{
    fit_log *l = user;
    cr_assert_eq(t->epoch, e->stats.epoch, "epoch_end sees the trainer after its epoch");
    l->evaluated[e->stats.epoch] = e->evaluated;
    cr_assert(e->evaluated ? isfinite(e->val_acc) : isnan(e->val_acc));
    if (++l->ends == l->stop_after) return sn_fail(err, SN_EIO, "stop here");
    return SN_OK;
}

Test(train, fit_loop_hooks_and_cadence, .init = load, .fini = unload)
{
    int sizes[] = { 784, 50, 10 };
    sn_net m;
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.epochs = 3, cfg.val = 0, cfg.threads = 2;
    sn_dataset train = sn_dataset_slice(&train_set, 0, 2500), val = sn_dataset_slice(&train_set, 2500, 500);
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, train.count, NULL), SN_OK);
    fit_log log = { 0 };
    const sn_fit_hooks hooks = { .user = &log, .epoch_begin = log_begin, .epoch_end = log_end };
    sn_fit_result res;
    sn_error err;
    cr_assert_eq(sn_fit(&t, &train, &val, 2, &hooks, &res, &err), SN_OK);
    cr_assert_eq(log.begins, 3);
    cr_assert_eq(log.ends, 3);
    cr_assert(!log.evaluated[1] && log.evaluated[2] && log.evaluated[3], "eval_every 2 of 3: epochs 2 and 3");
    cr_assert_eq(res.epochs, 3);
    cr_assert_eq(res.samples, 3L * train.count);
    cr_assert(!res.diverged && res.train_s > 0.0 && isfinite(res.last.val_acc));
    cr_assert_eq(sn_fit(&t, &train, &val, 1, &hooks, &res, &err), SN_OK);
    cr_assert_eq(res.epochs, 0, "a finished trainer has nothing left to fit");
    sn_trainer_free(&t);
    sn_net_free(&m);

    /* A hook's error stops the loop after that epoch. */
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 3, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, train.count, NULL), SN_OK);
    fit_log stop = { .stop_after = 1 };
    const sn_fit_hooks stop_hooks = { .user = &stop, .epoch_begin = log_begin, .epoch_end = log_end };
    cr_assert_eq(sn_fit(&t, &train, &val, 1, &stop_hooks, &res, &err), SN_EIO);
    cr_assert_str_eq(err.msg, "stop here");
    cr_assert_eq(t.epoch, 1);
    /* ... and a later call continues with epoch 2. */
    fit_log rest = { 0 };
    const sn_fit_hooks rest_hooks = { .user = &rest, .epoch_end = log_end };
    cr_assert_eq(sn_fit(&t, &train, NULL, 1, &rest_hooks, &res, &err), SN_OK);
    cr_assert_eq(rest.ends, 2, "epochs 2 and 3 remained");
    cr_assert_eq(t.epoch, 3);
    sn_trainer_free(&t);
    sn_net_free(&m);
}

/* Nesterov's update against its formula in double, on every ISA, over a range whose
 * length is not a multiple of any vector width (the scalar tail must round like the
 * body): v = mu v + g, w -= lr (g + mu v). Tolerance: three roundings of values of
 * order 1, 4 ulp relative. */
Test(train, nesterov_update_matches_its_formula)
{
    enum { N = 203 };
    float w[N], v[N], g[N];
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (sn_isa_force((sn_isa)isa, NULL) != SN_OK) continue;
        sn_optimizer o;
        cr_assert_eq(sn_opt_create(&o, SN_OPT_NESTEROV, 0.05f, N, NULL), SN_OK);
        tu_fill(w, N, 1);
        tu_fill(g, N, 2);
        tu_fill(o.m, N, 3);
        memcpy(v, o.m, sizeof v);
        float w0[N];
        memcpy(w0, w, sizeof w);
        sn_opt_prepare(&o);
        sn_opt_apply_range(&o, w, g, 0, N);
        for (int i = 0; i < N; i++) {
            const double vv = 0.9 * (double)v[i] + g[i], want = w0[i] - 0.05 * (g[i] + 0.9 * vv);
            cr_assert(fabs(o.m[i] - vv) <= 4 * 0x1p-24 * (fabs(vv) + 1), "%s: v[%d] %g vs %g", sn_isa_name(isa), i,
                      o.m[i], vv);
            cr_assert(fabs(w[i] - want) <= 4 * 0x1p-24 * (fabs(want) + 1), "%s: w[%d] %g vs %g", sn_isa_name(isa), i,
                      w[i], want);
        }
        sn_opt_free(&o);
    }
    sn_isa_init(NULL);
    cr_assert_str_eq(sn_opt_name(SN_OPT_NESTEROV), "nesterov");
    sn_opt_kind k;
    cr_assert_eq(sn_opt_parse("nesterov", &k), SN_OK);
    cr_assert_eq(k, SN_OPT_NESTEROV);
    cr_assert_eq(sn_opt_parse("nadam", &k), SN_EINVAL);
}

/* --shards S (shard.h): a sharded step is the batch's step, summed in another order (one
 * step of 96 rows in 4 shards against the ordinary step: equal within float rounding, a
 * few ulps of a ~0.05 weight); the bits do not depend on the thread count; a last batch
 * smaller than S (empty shards) trains; bad shard counts are refused with the reason. */
static void train_sharded(sn_net *m, int threads, int shards, int ntrain, int epochs, int batch)
{
    int sizes[] = { 784, 50, 25, 10 };
    sn_trainer t;
    sn_shards s;
    sn_train_config cfg = sn_train_defaults();
    cfg.threads = threads, cfg.epochs = epochs, cfg.val = 0, cfg.batch = batch;
    cr_assert_eq(sn_net_create_mlp(m, sizes, 4, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, m, &cfg, ntrain, NULL), SN_OK);
    if (shards) {
        cr_assert_eq(sn_shards_init(&s, shards, 0, 1, NULL, NULL, m->nparams, NULL), SN_OK);
        sn_trainer_set_shards(&t, &s);
    }
    sn_fit_result fit;
    cr_assert_eq(sn_fit(&t, &train_set, NULL, 0, NULL, &fit, NULL), SN_OK);
    cr_assert(!fit.diverged && isfinite(fit.last.stats.train_loss));
    if (shards) sn_shards_free(&s);
    sn_trainer_free(&t);
}

Test(train, shards_are_the_batch_step_with_the_same_bits_on_any_team, .init = load, .fini = unload)
{
    sn_net plain, one, sharded[3];
    train_sharded(&plain, 2, 0, 96, 1, 96);
    train_sharded(&one, 1, 4, 96, 1, 96);
    double worst = 0;
    for (size_t i = 0; i < plain.nparams; i++) worst = fmax(worst, fabs((double)plain.params[i] - one.params[i]));
    cr_assert(worst > 0 && worst < 1e-6, "one step, 4 shards against 1: max |dw| %g", worst);
    for (int k = 0; k < 3; k++) train_sharded(&sharded[k], k + 1, 4, 1000, 2, 64);
    cr_assert(!memcmp(sharded[0].params, sharded[1].params, sharded[0].nparams * sizeof(float)), "1 vs 2 threads");
    cr_assert(!memcmp(sharded[0].params, sharded[2].params, sharded[0].nparams * sizeof(float)), "1 vs 3 threads");
    sn_net tail;
    train_sharded(&tail, 2, 8, 1003, 1, 64); /* the last batch has 43 rows: 8 shards of 5-6 */
    sn_net tiny;
    train_sharded(&tiny, 2, 8, 1027, 1, 64); /* the last batch has 3 rows: 5 empty shards */
    sn_shards s;
    sn_error err;
    cr_assert_eq(sn_shards_init(&s, 4, 0, 3, NULL, NULL, 10, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "power of two"), "%s", err.msg);
    cr_assert_eq(sn_shards_init(&s, 6, 0, 4, NULL, NULL, 10, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "must divide"), "%s", err.msg);
    cr_assert_eq(sn_shards_init(&s, 0, 0, 1, NULL, NULL, 10, &err), SN_EINVAL);
    sn_net_free(&plain), sn_net_free(&one), sn_net_free(&tail), sn_net_free(&tiny);
    for (int k = 0; k < 3; k++) sn_net_free(&sharded[k]);
}
