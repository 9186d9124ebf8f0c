/* Convolution and max-pool layers: against direct loops (odd sizes, both paddings, every
 * ISA), gradients against finite differences, pooling's ties and NaN, and a small CNN
 * on the subset that learns and gives the same bits on 1, 2 and 3 threads. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/data.h"
#include "scratchnet/gemm.h"
#include "scratchnet/layer.h"
#include "scratchnet/model.h"
#include "scratchnet/train.h"
#include "test_util.h"

/* A layer from a one-item spec on an input image h x w x c (W, b point into params). */
static sn_layer make_layer(const char *item, int h, int w, int c, float **params)
{
    char spec[96];
    snprintf(spec, sizeof spec, "%dx%dx%d,%s", h, w, c, item);
    sn_layer l[SN_MAX_LAYERS];
    int n;
    sn_error err;
    cr_assert_eq(sn_net_parse(spec, l, &n, &err), SN_OK, "%s: %s", spec, err.msg);
    cr_assert_eq(n, 1, "%s", spec);
    const size_t np = sn_layer_nparams(&l[0]);
    *params = calloc(np + 1, sizeof(float));
    l[0].W = *params;
    l[0].b = *params + l[0].ops->nweights(&l[0]);
    return l[0];
}

/* y = conv(x) in double, straight from the definition (7 loops). */
static void conv_direct(const sn_layer *l, const float *x, double *y)
{
    const int k = l->k, pad = l->same ? (k - 1) / 2 : 0;
    for (int oy = 0; oy < l->oh; oy++)
        for (int ox = 0; ox < l->ow; ox++)
            for (int o = 0; o < l->oc; o++) {
                double s = l->b[o];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        for (int c = 0; c < l->ic; c++) {
                            const int iy = oy + ky - pad, ix = ox + kx - pad;
                            if (iy < 0 || iy >= l->ih || ix < 0 || ix >= l->iw) continue;
                            s += (double)x[((size_t)iy * l->iw + ix) * l->ic + c] *
                                 l->W[((size_t)(ky * k + kx) * l->ic + c) * l->oc + o];
                        }
                y[((size_t)oy * l->ow + ox) * l->oc + o] = l->relu && s < 0 ? 0 : s;
            }
}

static const struct { const char *item; int h, w, c; } shapes[] = {
    { "conv3x3x4", 7, 5, 3 },      { "conv3x3x4/same", 7, 5, 3 }, { "conv5x5x3/same", 9, 8, 2 },
    { "conv1x1x5", 6, 6, 1 },      { "conv3x3x17", 11, 11, 8 },   { "conv5x5x2", 5, 7, 4 },
    { "conv3x3x32", 28, 28, 1 },   { "conv3x3x64", 13, 13, 32 },
};

/* Float error: each output sums <= 288 products; |error| <= ~k u sum|terms|, and 1e-5
 * of sum|terms| is several times that, far below a wrong index or padding. */
Test(conv, forward_matches_direct_loops_on_every_isa)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            float *params;
            sn_layer l = make_layer(shapes[s].item, shapes[s].h, shapes[s].w, shapes[s].c, &params);
            tu_fill(params, sn_layer_nparams(&l), 3 + s);
            enum { ROWS = 3 };
            float *X = malloc(sizeof(float) * ROWS * l.in), *Y = malloc(sizeof(float) * ROWS * l.out);
            float *ws = aligned_alloc(64, sizeof(float) * ((l.ops->workspace(&l, ROWS) + 15) / 16 * 16));
            double *ref = malloc(sizeof(double) * l.out), *mag = malloc(sizeof(double) * l.out);
            tu_fill(X, (size_t)ROWS * l.in, 30 + s);
            l.ops->forward(&l, Y, X, ROWS, ws);
            for (int r = 0; r < ROWS; r++) {
                conv_direct(&l, X + (size_t)r * l.in, ref);
                /* sum|terms| per output: the same loops on magnitudes */
                sn_layer la = l;
                float *pa = malloc(sizeof(float) * sn_layer_nparams(&l)), *xa = malloc(sizeof(float) * l.in);
                for (size_t i = 0; i < sn_layer_nparams(&l); i++) pa[i] = fabsf(params[i]);
                for (int i = 0; i < l.in; i++) xa[i] = fabsf(X[(size_t)r * l.in + i]);
                la.W = pa, la.b = pa + l.ops->nweights(&l), la.relu = 0;
                conv_direct(&la, xa, mag);
                for (int i = 0; i < l.out; i++)
                    cr_assert(fabs(Y[(size_t)r * l.out + i] - ref[i]) <= 1e-5 * mag[i] + 1e-7,
                              "%s on %dx%dx%d, %s: row %d output %d: %.8g, direct %.8g", shapes[s].item, shapes[s].h,
                              shapes[s].w, shapes[s].c, sn_isa_name((sn_isa)isa), r, i, Y[(size_t)r * l.out + i],
                              ref[i]);
                free(pa), free(xa);
            }
            free(X), free(Y), free(ws), free(ref), free(mag), free(params);
        }
    }
    sn_isa_init(NULL);
}

/* L = sum(G .* layer(X)) in double through conv_direct (or the pool's max). */
static double conv_loss(const sn_layer *l, const float *X, const float *G, int rows)
{
    double *y = malloc(sizeof(double) * l->out), L = 0;
    for (int r = 0; r < rows; r++) {
        conv_direct(l, X + (size_t)r * l->in, y);
        for (int i = 0; i < l->out; i++) L += y[i] * G[(size_t)r * l->out + i];
    }
    free(y);
    return L;
}

/* The analytic gradients of the ops (input gradient; weight and bias gradients cut into
 * items for teams of 1 and 2, and from grad_rows) against central differences of conv_loss. In double, with
 * h = 1e-3 on float inputs (the step actually taken is used), truncation and rounding are
 * ~1e-9 here; the ops compute in float, so 1e-4 of the largest gradient plus 1e-3
 * relative. A ReLU kink within h of an output could break it; none is at these seeds. */
static void check_conv_gradients(const char *item, int h, int w, int c, int relu)
{
    enum { ROWS = 2 };
    float *params;
    sn_layer l = make_layer(item, h, w, c, &params);
    l.relu = relu;
    const size_t np = sn_layer_nparams(&l), nw = l.ops->nweights(&l);
    tu_fill(params, np, 7);
    float *X = malloc(sizeof(float) * ROWS * l.in), *Y = malloc(sizeof(float) * ROWS * l.out);
    float *G = malloc(sizeof(float) * ROWS * l.out), *dY = malloc(sizeof(float) * ROWS * l.out);
    float *dX = malloc(sizeof(float) * ROWS * l.in), *g = malloc(sizeof(float) * np);
    float *ws = aligned_alloc(64, sizeof(float) * ((l.ops->workspace(&l, ROWS) + 15) / 16 * 16));
    tu_fill(X, (size_t)ROWS * l.in, 8);
    tu_fill(G, (size_t)ROWS * l.out, 9);
    l.ops->forward(&l, Y, X, ROWS, ws);
    for (int i = 0; i < ROWS * l.out; i++) dY[i] = relu && !(Y[i] > 0) ? 0.0f : G[i]; /* through the ReLU */
    l.ops->backward_input(&l, dX, dY, X, 0, ROWS, ws);
    double largest = 0;
    float *sets[3] = { X, params, params + nw };
    const int counts[3] = { ROWS * l.in, (int)nw, (int)(np - nw) };
    for (int parts = 1; parts <= 3; parts++) { /* 3: grad_rows, the chunked trainer's form */
        memset(g, 0xff, sizeof(float) * np); /* NaN: an element no item writes fails below */
        if (parts == 3)
            l.ops->grad_rows(&l, X, dY, ROWS, g, g + nw, ws);
        else
            for (int i = 0; i < l.ops->grad_items(&l, ROWS, parts); i++)
                l.ops->grad_item(&l, i, ROWS, parts, X, dY, g, g + nw, NULL, ws);
        const float *ana[3] = { dX, g, g + nw };
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < counts[s]; i++) largest = fmax(largest, fabs(ana[s][i]));
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < counts[s]; i++) {
                float *v = &sets[s][i];
                const float keep = *v;
                *v = keep + 1e-3f;
                const double up = conv_loss(&l, X, G, ROWS), hu = (double)*v - keep;
                *v = keep - 1e-3f;
                const double down = conv_loss(&l, X, G, ROWS), hd = keep - (double)*v;
                *v = keep;
                const double fd = (up - down) / (hu + hd);
                cr_assert(fabs(fd - ana[s][i]) <= 1e-4 * largest + 1e-3 * fabs(fd),
                          "%s relu=%d parts=%d %s[%d]: finite difference %.7g, analytic %.7g", item, relu, parts,
                          s == 0 ? "dX" : s == 1 ? "dW" : "db", i, fd, ana[s][i]);
            }
    }
    free(X), free(Y), free(G), free(dY), free(dX), free(g), free(ws), free(params);
}

Test(gradcheck, conv_valid) { check_conv_gradients("conv3x3x4", 6, 5, 3, 0); }
Test(gradcheck, conv_same_relu) { check_conv_gradients("conv3x3x4/same", 5, 6, 2, 1); }
Test(gradcheck, conv_5x5_same) { check_conv_gradients("conv5x5x3/same", 7, 7, 2, 0); }
Test(gradcheck, conv_1x1) { check_conv_gradients("conv1x1x6", 4, 3, 5, 1); }
/* One input channel takes its own paths (a strided patch copy forward, the transposed
 * patch matrix for the weight gradient): both paddings. */
Test(gradcheck, conv_one_channel) { check_conv_gradients("conv3x3x5", 7, 6, 1, 1); }
Test(gradcheck, conv_one_channel_same) { check_conv_gradients("conv3x3x4/same", 6, 5, 1, 0); }

/* Max pool: against a direct max, the first of equal values wins, NaN wins, the
 * gradient goes to the winner only, and after a ReLU a window of zeros passes none. */
Test(pool, forward_backward_ties_and_nan)
{
    float *params;
    sn_layer l = make_layer("pool2", 5, 4, 3, &params); /* 5 rows: the last is dropped */
    cr_assert(l.oh == 2 && l.ow == 2 && l.oc == 3 && l.out == 12);
    float X[60], Y[12], dY[12], dX[60], ws[16];
    tu_fill(X, 60, 11);
    /* window (0, 0), channel 0: elements (0,0) (0,1) (1,0) (1,1) at offsets 0, 3, 12, 15 */
    X[0] = 0.5f, X[3] = 0.9f, X[12] = 0.9f, X[15] = -1.0f;     /* a tie: (0,1) wins */
    X[1] = 0.1f, X[4] = __builtin_nanf(""), X[13] = 2.0f, X[16] = 3.0f; /* NaN wins */
    X[2] = 0.0f, X[5] = 0.0f, X[14] = 0.0f, X[17] = 0.0f;     /* zeros: for the ReLU case */
    l.ops->forward(&l, Y, X, 1, ws);
    cr_assert_eq(Y[0], 0.9f);
    cr_assert(isnan(Y[1]), "NaN in a window must give NaN");
    for (int oy = 0; oy < 2; oy++)
        for (int ox = 0; ox < 2; ox++)
            for (int c = (oy || ox) ? 0 : 2; c < 3; c++) {
                float m = -INFINITY;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) m = fmaxf(m, X[((oy * 2 + dy) * 4 + ox * 2 + dx) * 3 + c]);
                cr_assert_eq(Y[(oy * 2 + ox) * 3 + c], m, "window (%d,%d) channel %d", oy, ox, c);
            }
    for (int i = 0; i < 12; i++) dY[i] = (float)(i + 1);
    l.ops->backward_input(&l, dX, dY, X, 0, 1, ws);
    cr_assert(dX[3] == 1.0f && dX[12] == 0.0f && dX[0] == 0.0f && dX[15] == 0.0f, "the first of a tie takes it all");
    cr_assert(dX[4] == 2.0f && dX[16] == 0.0f, "the NaN took the gradient");
    double total = 0;
    for (int i = 0; i < 60; i++) total += dX[i];
    cr_assert_eq(total, 78.0, "each window passes its gradient once (1 + ... + 12)");
    for (int i = 48; i < 60; i++) cr_assert_eq(dX[i], 0.0f, "the dropped row gets none");
    l.ops->backward_input(&l, dX, dY, X, 1, 1, ws); /* X came out of a ReLU */
    cr_assert(dX[2] == 0.0f && dX[5] == 0.0f && dX[14] == 0.0f && dX[17] == 0.0f, "zeros pass no gradient");
    free(params);
}

/* The pool's gradient against finite differences (distinct values, gaps > 2h: exact). */
static void check_pool_gradient(const char *item, int h, int w, int c)
{
    float *params;
    sn_layer l = make_layer(item, h, w, c, &params);
    float *X = malloc(sizeof(float) * l.in), *Y = malloc(sizeof(float) * l.out), *G = malloc(sizeof(float) * l.out);
    float *dX = malloc(sizeof(float) * l.in), *ws = malloc(sizeof(float) * (2 * (size_t)c + 16));
    for (int i = 0; i < l.in; i++) X[i] = (float)((i * 37) % l.in) * 0.01f; /* distinct, 0.01 apart (37 is coprime to both sizes used, 168) */
    tu_fill(G, (size_t)l.out, 5);
    l.ops->backward_input(&l, dX, G, X, 0, 1, ws);
    for (int i = 0; i < l.in; i++) {
        const float keep = X[i];
        double L[2];
        for (int s = 0; s < 2; s++) {
            X[i] = keep + (s ? -1e-3f : 1e-3f);
            l.ops->forward(&l, Y, X, 1, ws);
            L[s] = 0;
            for (int j = 0; j < l.out; j++) L[s] += (double)Y[j] * G[j];
        }
        X[i] = keep;
        const double fd = (L[0] - L[1]) / 2e-3;
        cr_assert(fabs(fd - dX[i]) <= 1e-3 * (1 + fabs(dX[i])), "%s: x[%d]: finite difference %.6g, analytic %.6g", item,
                  i, fd, dX[i]);
    }
    free(X), free(Y), free(G), free(dX), free(ws), free(params);
}

/* The 2x2 kernels and the generic P x P path (3x3 on 7 x 8: a dropped row and two
 * dropped columns), against finite differences: with distinct inputs 0.01 apart and
 * h = 1e-3, max is linear around every input, so the difference is exact up to float
 * rounding (1e-3 relative is generous). */
Test(gradcheck, pool) { check_pool_gradient("pool2", 6, 7, 4); }
Test(gradcheck, pool3_generic_path) { check_pool_gradient("pool3", 7, 8, 3); }

/* A small CNN on the subset (3,000 images): it learns, and the saved bits are the same for
 * 1, 2 and 3 threads (image layers run per row, their weight gradients in fixed order). */
Test(conv, small_cnn_learns_same_bits_1_2_3_threads)
{
    sn_dataset train, test;
    sn_error err;
    cr_assert_eq(sn_mnist_load(&train, TU_SUBSET, SN_SPLIT_TRAIN, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_mnist_load(&test, TU_SUBSET, SN_SPLIT_TEST, &err), SN_OK, "%s", err.msg);
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    cr_assert_eq(sn_net_parse("conv3x3x8,pool2,conv3x3x16/same,pool2,dense32,dense10", layers, &nl, &err), SN_OK,
                 "%s", err.msg);
    sn_net m[3];
    double acc[3];
    for (int k = 0; k < 3; k++) {
        sn_trainer t;
        sn_train_config cfg = sn_train_defaults();
        cfg.threads = k + 1, cfg.epochs = 2, cfg.val = 0, cfg.batch = 64, cfg.opt = SN_OPT_ADAM, cfg.lr = 0.002f;
        cr_assert_eq(sn_net_create(&m[k], layers, nl, NULL), SN_OK);
        cr_assert_eq(sn_trainer_create(&t, &m[k], &cfg, train.count, &err), SN_OK, "%s", err.msg);
        for (int e = 0; e < cfg.epochs; e++) {
            sn_epoch_stats st;
            sn_train_epoch(&t, &train, &st, NULL, NULL);
            cr_assert(!st.diverged);
        }
        double loss;
        cr_assert_eq(sn_evaluate(&m[k], &t.fwd, &test, k + 1, &loss, &acc[k], NULL), SN_OK);
        sn_trainer_free(&t);
    }
    /* chance is 0.10; this net reaches ~0.9 here */
    cr_assert(acc[0] > 0.80, "test accuracy %.4f on the subset after 2 epochs", acc[0]);
    for (int k = 1; k < 3; k++)
        cr_assert(memcmp(m[0].params, m[k].params, m[0].nparams * 4) == 0, "1 vs %d threads differ", k + 1);
    for (int k = 0; k < 3; k++) sn_net_free(&m[k]);
    sn_dataset_free(&train), sn_dataset_free(&test);
}

/* Pooling's kernels (every ISA) against a direct reference on inputs full of ties
 * (values from a few levels) and a few NaNs, with and without the ReLU mask, for 37
 * channels (vectors and a scalar tail on every ISA), 7 x 6 (a dropped column). Reference: the first of
 * the largest wins (a NaN over any number), and takes the gradient. */
Test(pool, vector_path_ties_nan_against_reference_on_every_isa)
{
    float *params;
    enum { H = 7, W = 6, C = 37 };
    sn_layer l = make_layer("pool2", H, W, C, &params);
    float X[H * W * C], Y[3 * 3 * C], G[3 * 3 * C], dX[H * W * C], ref[H * W * C], ws[128];
    tu_fill(X, H * W * C, 17);
    for (int i = 0; i < H * W * C; i++) X[i] = roundf(X[i] * 2.0f); /* a few levels: ties in most windows */
    X[5] = X[40] = X[77] = X[300] = __builtin_nanf("");
    tu_fill(G, 3 * 3 * C, 3);
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
    if (!sn_isa_supported((sn_isa)isa)) continue;
    sn_isa_force((sn_isa)isa, NULL);
    l.ops->forward(&l, Y, X, 1, ws);
    for (int relu_in = 0; relu_in < 2; relu_in++) {
        l.ops->backward_input(&l, dX, G, X, relu_in, 1, ws);
        memset(ref, 0, sizeof ref);
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++)
                for (int c = 0; c < C; c++) {
                    int best = -1;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            const int at = ((oy * 2 + dy) * W + ox * 2 + dx) * C + c;
                            if (best < 0 || X[at] > X[best] || isnan(X[at])) best = at; /* beats: a NaN too */
                        }
                    const float y = Y[(oy * 3 + ox) * C + c];
                    cr_assert(isnan(X[best]) ? isnan(y) : y == X[best], "%s: forward (%d,%d) channel %d",
                              sn_isa_name((sn_isa)isa), oy, ox, c);
                    ref[best] = relu_in && !(X[best] > 0.0f) ? 0.0f : G[(oy * 3 + ox) * C + c];
                }
        for (int i = 0; i < H * W * C; i++)
            cr_assert_eq(dX[i], ref[i], "%s, relu_in=%d: dx[%d] = %g, reference %g (x = %g)", sn_isa_name((sn_isa)isa),
                         relu_in, i, dX[i], ref[i], X[i]);
    }
    }
    sn_isa_init(NULL);
    free(params);
}

/* Pooling's recording pair (forward_record, backward_recorded: the trainer's, train.c)
 * against the scanning pair, bit for bit, on inputs full of ties and a few NaNs, with and
 * without the ReLU mask: 2 x 2 windows on every ISA (vectors and a scalar tail: 37
 * channels) and 3 x 3 (the generic path), dropped rows and columns. The record's codes
 * must also say which input won: a wrong code moves a gradient, and dX differs. */
static void check_pool_record(const char *item, int h, int w, int c)
{
    float *params;
    sn_layer l = make_layer(item, h, w, c, &params);
    const int rows = 2;
    float *X = malloc(sizeof(float) * rows * l.in), *G = malloc(sizeof(float) * rows * l.out);
    float *Y = malloc(sizeof(float) * rows * l.out), *Yr = malloc(sizeof(float) * rows * l.out);
    float *R = malloc(sizeof(float) * rows * l.out), *dX = malloc(sizeof(float) * rows * l.in);
    float *dXr = malloc(sizeof(float) * rows * l.in), ws[256];
    tu_fill(X, (size_t)rows * l.in, 23);
    for (int i = 0; i < rows * l.in; i++) X[i] = roundf(X[i] * 2.0f); /* ties in most windows, zeros too */
    X[3] = X[61] = X[l.in + 7] = __builtin_nanf("");
    tu_fill(G, (size_t)rows * l.out, 5);
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        l.ops->forward(&l, Y, X, rows, ws);
        memset(Yr, 0x7f, sizeof(float) * rows * l.out);
        l.ops->forward_record(&l, Yr, R, X, rows, ws);
        cr_assert(memcmp(Y, Yr, sizeof(float) * rows * l.out) == 0, "%s %s: forward_record's outputs differ", item,
                  sn_isa_name((sn_isa)isa));
        for (int relu_in = 0; relu_in < 2; relu_in++) {
            l.ops->backward_input(&l, dX, G, X, relu_in, rows, ws);
            memset(dXr, 0x7f, sizeof(float) * rows * l.in); /* every element must be written */
            l.ops->backward_recorded(&l, dXr, G, R, relu_in, rows, ws);
            for (int i = 0; i < rows * l.in; i++)
                cr_assert(memcmp(&dX[i], &dXr[i], sizeof(float)) == 0, "%s %s relu_in=%d: dx[%d] = %g, recorded %g",
                          item, sn_isa_name((sn_isa)isa), relu_in, i, dX[i], dXr[i]);
        }
    }
    sn_isa_init(NULL);
    free(X), free(G), free(Y), free(Yr), free(R), free(dX), free(dXr), free(params);
}

Test(pool, recorded_winners_match_the_scan_on_every_isa)
{
    check_pool_record("pool2", 7, 6, 37);
    check_pool_record("pool2", 26, 26, 32);
    check_pool_record("pool3", 8, 7, 5);
}
