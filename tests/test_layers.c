/* Layers: softmax + cross-entropy on extreme logits, and finite-difference gradient
 * checks for the linear layer (with and without ReLU), the loss, and the whole network. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/gemm.h"
#include "scratchnet/layer.h"
#include "scratchnet/layers.h"
#include "scratchnet/train.h"
#include "test_util.h"

Test(softmax, huge_logits_stay_finite)
{
    float Z[3 * 4] = { 1e30f, -1e30f, 0, 5, 88, 89, 90, -1e4f, 3e38f, 3e38f, -3e38f, 0 };
    uint8_t y[3] = { 0, 1, 3 };
    float dZ[12], loss[3], P[12];
    sn_softmax_xent(dZ, loss, NULL, Z, y, 3, 4, 1.0f);
    sn_softmax(P, Z, 3, 4);
    for (int i = 0; i < 12; i++) {
        cr_assert(isfinite(dZ[i]), "dZ[%d] = %g", i, dZ[i]);
        cr_assert(isfinite(P[i]) && P[i] >= 0 && P[i] <= 1, "P[%d] = %g", i, P[i]);
    }
    cr_assert(isfinite(loss[0]) && loss[0] == 0.0f, "the max logit by 1e30 is certain: loss %g", loss[0]);
    cr_assert(fabsf(loss[1] - 1.4076059f) < 1e-5f, "log(1+e^-1+e^1)... got %g", loss[1]);
    /* Row 3: two equal maxima, label on a logit 3e38 below: the loss is huge but finite. */
    cr_assert(isfinite(loss[2]) && loss[2] > 1e38f, "loss[2] = %g", loss[2]);
    cr_assert(fabsf(P[8] - 0.5f) < 1e-6f && fabsf(P[9] - 0.5f) < 1e-6f);
    /* Gradient rows sum to zero (sum p = 1, minus the one-hot). */
    for (int r = 0; r < 3; r++) {
        float s = dZ[4 * r] + dZ[4 * r + 1] + dZ[4 * r + 2] + dZ[4 * r + 3];
        cr_assert(fabsf(s) < 1e-6f, "row %d sums to %g", r, s);
    }
}

/* The loss gradient is (p - y) * scale. */
Test(softmax, gradient_is_p_minus_y)
{
    float Z[3] = { 1, 2, 3 }, dZ[3], loss, P[3];
    uint8_t y = 1;
    sn_softmax_xent(dZ, &loss, NULL, Z, &y, 1, 3, 0.5f);
    sn_softmax(P, Z, 1, 3);
    cr_assert(fabsf(dZ[0] - 0.5f * P[0]) < 1e-7f);
    cr_assert(fabsf(dZ[1] - 0.5f * (P[1] - 1)) < 1e-7f);
    cr_assert(fabsf(loss + logf(P[1])) < 1e-6f);
}

/* Central differences in double around a float forward. Linear maps are exact up to
 * rounding, so the tolerance only has to absorb float rounding of the loss divided by
 * 2h: |num - ana| <= 1e-3 + 1e-2 |ana|. A transposed or missing term is off by O(1). */
static double linear_loss(const float *X, const float *W, const float *b, const float *G, int B, int in,
                          int out, int relu, float *Y)
{
    for (int r = 0; r < B; r++)
        for (int j = 0; j < out; j++) {
            double s = b[j];
            for (int p = 0; p < in; p++) s += (double)X[r * in + p] * W[p * out + j];
            Y[r * out + j] = (float)(relu && s < 0 ? 0 : s);
        }
    double L = 0;
    for (int i = 0; i < B * out; i++) L += (double)Y[i] * G[i];
    return L;
}

static void close_enough(double num, double ana, const char *what, int i)
{
    cr_assert(fabs(num - ana) <= 1e-3 + 1e-2 * fabs(ana), "%s[%d]: numeric %.6g analytic %.6g", what, i, num, ana);
}

enum { LB = 5, LIN = 7, LOUT = 4 };

/* The linear layer's inputs and upstream gradient G, for the finite-difference loss. */
typedef struct linear_case {
    float X[LB * LIN], W[LIN * LOUT], b[LOUT], G[LB * LOUT], Yt[LB * LOUT];
    int relu;
} linear_case;

/* Central differences of the loss over every element of x (one of c's arrays) against
 * the analytic gradient ana. */
static void fd_check(linear_case *c, float *x, int n, const float *ana, const char *what)
{
    const double h = 1e-3;
    for (int i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + (float)h;
        double lp = linear_loss(c->X, c->W, c->b, c->G, LB, LIN, LOUT, c->relu, c->Yt);
        x[i] = keep - (float)h;
        double lm = linear_loss(c->X, c->W, c->b, c->G, LB, LIN, LOUT, c->relu, c->Yt);
        x[i] = keep;
        close_enough((lp - lm) / (2 * h), ana[i], what, i);
    }
}

/* The dense layer as training runs it (its ops: forward, input gradient, and the weight
 * gradient's items for a team of 1 and of 2) against finite differences. */
static void check_linear(int relu)
{
    linear_case c = { .relu = relu };
    float Y[LB * LOUT], g[LIN * LOUT + LOUT], dX[LB * LIN], dY[LB * LOUT], ws[4096];
    tu_fill(c.X, LB * LIN, 1);
    tu_fill(c.W, LIN * LOUT, 2);
    tu_fill(c.b, LOUT, 3);
    tu_fill(c.G, LB * LOUT, 4);
    const sn_layer l = { .ops = &sn_dense_ops, .in = LIN, .out = LOUT, .relu = relu, .W = c.W, .b = c.b };
    cr_assert(l.ops->workspace(&l, LB) <= 4096);
    l.ops->forward(&l, Y, c.X, LB, ws);
    /* dL/dY = G, and through the ReLU: zero where the output was cut. */
    for (int i = 0; i < LB * LOUT; i++) dY[i] = relu && Y[i] <= 0 ? 0 : c.G[i];
    l.ops->backward_input(&l, dX, dY, c.X, 0, LB, ws);
    fd_check(&c, c.X, LB * LIN, dX, "dX");
    for (int parts = 1; parts <= 2; parts++) {
        memset(g, 0xff, sizeof g); /* NaN: an element no item writes fails below */
        for (int i = 0; i < l.ops->grad_items(&l, LB, parts); i++)
            l.ops->grad_item(&l, i, LB, parts, c.X, dY, g, g + LIN * LOUT, NULL, ws);
        fd_check(&c, c.W, LIN * LOUT, g, "dW");
        fd_check(&c, c.b, LOUT, g + LIN * LOUT, "db");
    }
}

Test(gradcheck, linear) { check_linear(0); }
Test(gradcheck, linear_relu) { check_linear(1); }

Test(gradcheck, softmax_xent)
{
    enum { B = 4, C = 6 };
    float Z[B * C], dZ[B * C], loss[B];
    uint8_t y[B] = { 0, 5, 2, 2 };
    tu_fill(Z, B * C, 8);
    for (int i = 0; i < B * C; i++) Z[i] *= 3;
    sn_softmax_xent(dZ, loss, NULL, Z, y, B, C, 1.0f / B);
    const float h = 1e-2f;
    for (int i = 0; i < B * C; i++) {
        float keep = Z[i];
        double lp = 0, lm = 0;
        Z[i] = keep + h;
        sn_softmax_xent(NULL, loss, NULL, Z, y, B, C, 0);
        for (int r = 0; r < B; r++) lp += loss[r];
        Z[i] = keep - h;
        sn_softmax_xent(NULL, loss, NULL, Z, y, B, C, 0);
        for (int r = 0; r < B; r++) lm += loss[r];
        Z[i] = keep;
        close_enough((lp - lm) / (2.0 * h) / B, dZ[i], "dZ", i);
    }
}

/* The whole network, through the trainer's own forward/backward (tuned kernels,
 * fused epilogues). Loss is a mean over the batch in float, so h is larger (1e-2)
 * and parameters whose perturbation flips a ReLU are rare; the tolerance is
 * |num - ana| <= 2e-3 + 5e-2 |ana|, and at least 97% of parameters must be within it
 * (all that straddle no ReLU kink), with none off by more than 10x the tolerance. */
Test(gradcheck, whole_network)
{
    int sizes[] = { 12, 9, 7, 5 };
    sn_net m;
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.batch = 6, cfg.threads = 1, cfg.seed = 3, cfg.val = 0;
    cr_assert_eq(sn_net_create_mlp(&m, sizes, 4, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &m, &cfg, 6, NULL), SN_OK);
    tu_fill(t.fwd.act[0], 6 * 12, 11);
    for (int r = 0; r < 6; r++) t.fwd.y[r] = (uint8_t)(r % 5);
    for (int l = 0; l < 3; l++) tu_fill(m.b[l], (size_t)sizes[l + 1], 20 + l); /* non-zero biases */
    float X[6 * 12];
    memcpy(X, t.fwd.act[0], sizeof X);
    sn_trainer_gradient(&t, 6);
    float *ana = malloc(m.nparams * sizeof(float));
    memcpy(ana, t.grads, m.nparams * sizeof(float));
    const float h = 1e-2f;
    int bad = 0;
    for (size_t i = 0; i < m.nparams; i++) {
        float keep = m.params[i];
        m.params[i] = keep + h;
        memcpy(t.fwd.act[0], X, sizeof X);
        double lp = sn_trainer_gradient(&t, 6);
        m.params[i] = keep - h;
        memcpy(t.fwd.act[0], X, sizeof X);
        double lm = sn_trainer_gradient(&t, 6);
        m.params[i] = keep;
        double num = (lp - lm) / (2.0 * h), tol = 2e-3 + 5e-2 * fabs(ana[i]);
        if (fabs(num - ana[i]) > tol) bad++;
        cr_assert(fabs(num - ana[i]) <= 10 * tol, "param %zu: numeric %.6g analytic %.6g", i, num, ana[i]);
    }
    cr_assert(bad <= (int)(0.03 * m.nparams), "%d of %zu parameters off", bad, m.nparams);
    free(ana);
    sn_trainer_free(&t);
    sn_net_free(&m);
}

/* CNNs through the trainer, whose first layer (a convolution before a layer without
 * parameters) is trained chunk by chunk (train.c, chunked_first): its gradient summed from
 * chunks of 4 images, here a whole one and a partial one (6 rows), on teams of 1 and 2.
 * The nets: pooling that records its winners after the first layer (whose output is kept
 * in scratch only); a second convolution, its gradient from chunks too; two pools in a row (scratch to scratch); a second layer that does not
 * record (the first layer's output computed again); and one whose second layer has
 * weights (not chunked: its gradient needs the first layer's output for the batch).
 * Same tolerances as whole_network, with h = 1e-3: at 1e-2 a perturbed first-layer weight
 * moves its outputs enough to change a pooling window's winner (a kink), seen on this seed. */
static const struct {
    const char *spec;
    int chunked; /* the layers whose gradients are summed from chunks' (bit l), 0: none */
} CHUNKED_NETS[] = { { "7x7x1,conv3x3x3,pool2,conv:2x2x2,dense5", 1 },
                     { "10x10x1,conv3x3x3,pool2,conv3x3x2/same,pool2,dense5", 1 | 4 },
                     { "11x11x1,conv3x3x3,pool2,pool2,dense5", 1 },
                     { "8x8x1,conv:3x3x3,leaky:0.1,pool2,dense5", 1 },
                     { "8x8x1,conv3x3x2,conv3x3x3/same,pool2,dense5", 0 } };

Test(gradcheck, whole_cnn_first_layer_by_chunks)
{
    for (size_t net = 0; net < sizeof CHUNKED_NETS / sizeof *CHUNKED_NETS; net++) {
        sn_layer layers[SN_MAX_LAYERS];
        int nl;
        sn_error err;
        cr_assert_eq(sn_net_parse(CHUNKED_NETS[net].spec, layers, &nl, &err), SN_OK, "%s", err.msg);
        const int in = layers[0].in;
        for (int threads = 1; threads <= 2; threads++) {
            sn_net m;
            sn_trainer t;
            sn_train_config cfg = sn_train_defaults();
            cfg.batch = 6, cfg.threads = threads, cfg.seed = 3, cfg.val = 0;
            cr_assert_eq(sn_net_create(&m, layers, nl, NULL), SN_OK);
            cr_assert_eq(sn_trainer_create(&t, &m, &cfg, 6, &err), SN_OK, "%s", err.msg);
            cr_assert_eq(t.chunked_first, CHUNKED_NETS[net].chunked != 0, "%s: chunked_first %d",
                         CHUNKED_NETS[net].spec, t.chunked_first);
            for (int l = 0; l < nl; l++)
                cr_assert_eq(t.chunked[l], (CHUNKED_NETS[net].chunked >> l) & 1, "%s: chunked[%d] = %d",
                             CHUNKED_NETS[net].spec, l, t.chunked[l]);
            float X[6 * 121];
            tu_fill(X, (size_t)6 * in, 11);
            for (int k = 0; k < 6 * in; k++) X[k] = 0.5f + 0.5f * X[k]; /* like pixels: [0, 1) */
            for (int r = 0; r < 6; r++) t.fwd.y[r] = (uint8_t)(r % 5);
            for (int l = 0; l < nl; l++)
                if (m.layer[l].ops->nbiases(&m.layer[l])) { /* small, mostly positive: few dead units */
                    tu_fill(m.b[l], m.layer[l].ops->nbiases(&m.layer[l]), 20 + l);
                    for (size_t k = 0; k < m.layer[l].ops->nbiases(&m.layer[l]); k++) m.b[l][k] = 0.1f + 0.1f * m.b[l][k];
                }
            memcpy(t.fwd.act[0], X, sizeof(float) * 6 * in);
            sn_trainer_gradient(&t, 6);
            float *ana = malloc(m.nparams * sizeof(float));
            memcpy(ana, t.grads, m.nparams * sizeof(float));
            for (int l = 0; l < nl; l++) /* every chunk of a chunked layer adds something */
                for (int c = 0; c < 2 && t.chunked[l]; c++) {
                    double sum = 0;
                    for (size_t i = 0; i < sn_layer_nparams(&m.layer[l]); i++)
                        sum += fabs(t.chunk_grad[t.chunk_off[l] + c * t.chunk_stride[l] + i]);
                    cr_assert_gt(sum, 0.0, "%s: layer %d's chunk %d gradient is 0", CHUNKED_NETS[net].spec, l, c);
                }
            /* The same gradient the ordinary way (the trainer told not to chunk): equal to
             * float rounding, a far tighter check than finite differences. */
            sn_trainer plain;
            float *params = malloc(m.nparams * sizeof(float));
            memcpy(params, m.params, m.nparams * sizeof(float));
            cr_assert_eq(sn_trainer_create(&plain, &m, &cfg, 6, &err), SN_OK, "%s", err.msg);
            memcpy(m.params, params, m.nparams * sizeof(float)); /* create initialised them again */
            free(params);
            plain.chunked_first = 0;
            memset(plain.chunked, 0, sizeof plain.chunked);
            memset(plain.rec, 0, sizeof plain.rec);
            memcpy(plain.fwd.act[0], X, sizeof(float) * 6 * in);
            memcpy(plain.fwd.y, t.fwd.y, 6);
            sn_trainer_gradient(&plain, 6);
            double big = 0;
            for (size_t i = 0; i < m.nparams; i++) big = fmax(big, fabs(ana[i]));
            for (size_t i = 0; i < m.nparams; i++)
                cr_assert(fabs(plain.grads[i] - ana[i]) <= 1e-5 * big, "%s, %d threads, param %zu: chunked %.8g, plain %.8g",
                          CHUNKED_NETS[net].spec, threads, i, ana[i], plain.grads[i]);
            sn_trainer_free(&plain);
            const float h = 1e-3f;
            int bad = 0;
            for (size_t i = 0; i < m.nparams; i++) {
                float keep = m.params[i];
                m.params[i] = keep + h;
                memcpy(t.fwd.act[0], X, sizeof(float) * 6 * in);
                double lp = sn_trainer_gradient(&t, 6);
                m.params[i] = keep - h;
                memcpy(t.fwd.act[0], X, sizeof(float) * 6 * in);
                double lm = sn_trainer_gradient(&t, 6);
                m.params[i] = keep;
                double num = (lp - lm) / (2.0 * h), tol = 2e-3 + 5e-2 * fabs(ana[i]);
                if (fabs(num - ana[i]) > tol) bad++;
                cr_assert(fabs(num - ana[i]) <= 10 * tol, "%s, %d threads, param %zu: numeric %.6g analytic %.6g",
                          CHUNKED_NETS[net].spec, threads, i, num, ana[i]);
            }
            cr_assert(bad <= (int)(0.03 * m.nparams), "%d of %zu parameters off", bad, m.nparams);
            free(ana);
            sn_trainer_free(&t);
            sn_net_free(&m);
        }
    }
}

/* The softmax's vectorised exp, every ISA, through the public API: with logits {x, 0},
 * label 1 and x <= -17, the sum of exponentials is exactly 1 in float, so dZ[0] is the
 * kernel's exp(x) itself; for -17 < x <= 0 it is e^x / (1 + e^x). Compared with double:
 * Cephes' polynomial with Cody-Waite reduction: 2.0e-7 worst measured on each ISA;
 * the bound, 4e-7 relative, is ~3 ulp. A wrong coefficient or a lost 2^n is off by
 * far more. Also: exp of a NaN logit stays NaN, so divergence shows in the loss. */
Test(softmax, vectorised_exp_is_accurate_on_every_isa)
{
    enum { N = 87001 };
    float *Z = malloc(sizeof(float) * 2 * N), *dZ = malloc(sizeof(float) * 2 * N), *loss = malloc(sizeof(float) * N);
    uint8_t *y = malloc(N);
    for (int i = 0; i < N; i++) Z[2 * i] = -87.0f + 0.001f * (float)i, Z[2 * i + 1] = 0.0f, y[i] = 1;
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        sn_softmax_xent(dZ, loss, NULL, Z, y, N, 2, 1.0f);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double e = exp((double)Z[2 * i]), want = Z[2 * i] <= -17.0f ? e : e / (1.0 + e);
            double rel = fabs(dZ[2 * i] - want) / want;
            if (rel > worst) worst = rel;
        }
        cr_log_info("isa %s: worst exp relative error %.3g", sn_isa_name((sn_isa)isa), worst);
        cr_assert(worst < 4e-7, "isa %s: exp relative error %.3g", sn_isa_name((sn_isa)isa), worst);
        float zn[2] = { NAN, 0.0f }, dn[2], ln;
        uint8_t yn = 1;
        sn_softmax_xent(dn, &ln, NULL, zn, &yn, 1, 2, 1.0f);
        cr_assert(isnan(ln), "isa %s: a NaN logit must give a NaN loss, got %g", sn_isa_name((sn_isa)isa), ln);
    }
    free(Z), free(dZ), free(loss), free(y);
}

/* The layer interface (layer.h) for the dense layer: forward and input gradient are the
 * linear kernels' (same bits), and the weight-gradient items, for any team size, cover
 * the whole gradient once with the same bits as the plain computation, both for a small
 * layer (one item) and a large one (bias and row shares). The finite-difference checks
 * above and the whole-network one run through this interface too (the trainer walks it). */
static void check_dense_ops(int in, int out, int n)
{
    const size_t np = (size_t)in * out + out;
    float *params = calloc(np, sizeof(float)), *X = malloc(sizeof(float) * n * in), *dY = malloc(sizeof(float) * n * out);
    float *Y = malloc(sizeof(float) * n * out), *Yref = malloc(sizeof(float) * n * out);
    float *dX = malloc(sizeof(float) * n * in), *dXref = malloc(sizeof(float) * n * in);
    float *g = calloc(np, sizeof(float)), *gref = calloc(np, sizeof(float));
    const sn_layer l = { .ops = &sn_dense_ops, .in = in, .out = out, .relu = 1, .W = params, .b = params + in * out };
    cr_assert_eq(sn_layer_nparams(&l), np);
    sn_rng rng;
    sn_rng_seed(&rng, 7);
    l.ops->init(&l, &rng);
    for (int i = 0; i < out; i++) l.b[i] = 0.01f * (float)(i % 7) - 0.03f;
    tu_fill(X, (size_t)n * in, 1);
    tu_fill(dY, (size_t)n * out, 2);
    float *ws = malloc(sizeof(float) * (l.ops->workspace(&l, n) + 16));
    l.ops->forward(&l, Y, X, n, ws);
    sn_linear_forward(Yref, X, l.W, l.b, n, in, out, 1, ws);
    cr_assert(memcmp(Y, Yref, sizeof(float) * n * out) == 0, "forward differs from sn_linear_forward");
    l.ops->backward_input(&l, dX, dY, X, 1, n, ws);
    sn_linear_backward_input(dXref, dY, l.W, X, n, in, out, ws);
    cr_assert(memcmp(dX, dXref, sizeof(float) * n * in) == 0, "backward_input differs");
    sn_gemm_local(SN_T, SN_N, in, out, n, X, in, dY, out, 0.0f, gref, out, NULL, ws);
    sn_bias_grad(gref + in * out, dY, n, out, 0, out);
    for (int parts = 1; parts <= 3; parts++) {
        memset(g, 0xff, np * sizeof(float)); /* NaN: an element no item writes would show */
        const int items = l.ops->grad_items(&l, n, parts);
        for (int i = 0; i < items; i++) l.ops->grad_item(&l, i, n, parts, X, dY, g, g + in * out, NULL, ws);
        cr_assert(memcmp(g, gref, np * sizeof(float)) == 0, "%dx%d, n=%d, %d parts (%d items): gradient differs", in,
                  out, n, parts, items);
    }
    free(params), free(X), free(dY), free(Y), free(Yref), free(dX), free(dXref), free(g), free(gref), free(ws);
}

Test(layer, dense_ops_small_layer) { check_dense_ops(50, 25, 64); }
Test(layer, dense_ops_large_layer_in_shares) { check_dense_ops(300, 100, 64); }

/* The registry: names and model-file numbers unique, each type found both ways, and
 * every type's ops complete (a missing function would crash the trainer, not a test). */
Test(layer, registry_is_consistent)
{
    const int n = sn_layer_type_count();
    cr_assert_geq(n, 3, "dense, relu and leaky at least");
    for (int i = 0; i < n; i++) {
        const sn_layer_ops *t = sn_layer_type_at(i);
        cr_assert(t->type && t->file_id > 0, "type %d", i);
        cr_assert(t->configure && t->check && t->nweights && t->nbiases && t->init && t->workspace && t->forward &&
                  t->backward_input && t->grad_items && t->grad_item && t->grad_item_owner, "%s: ops missing", t->type);
        cr_assert_eq(sn_layer_type_named(t->type, strlen(t->type)), t);
        cr_assert_eq(sn_layer_type_with_id(t->file_id), t);
        for (int j = 0; j < i; j++) {
            cr_assert(strcmp(t->type, sn_layer_type_at(j)->type) != 0, "name %s twice", t->type);
            cr_assert_neq(t->file_id, sn_layer_type_at(j)->file_id, "file id %u twice", t->file_id);
        }
    }
    cr_assert_null(sn_layer_type_named("dens", 4));
    cr_assert_null(sn_layer_type_with_id(0));
    cr_assert_null(sn_layer_type_at(n));
}

/* Net specs: every form parses to the layers it names and formats back to a spec that
 * parses to the same layers; a ReLU after a dense layer is fused into it. */
Test(layer, net_spec_round_trip)
{
    static const struct { const char *spec, *formatted; int nlayers; } cases[] = {
        { "784,50,25,10", "784,50,25,10", 3 },
        { "784:50:10", "784,50,10", 2 },
        { "784,dense:50,relu,dense:25,relu,dense:10", "784,50,25,10", 3 },
        { "784,dense:100,leaky:0.05,dense:10", "784,dense:100,leaky:0.05,dense10", 3 },
        { "784,dense:100,leaky,dense:10", "784,dense:100,leaky:0.01,dense10", 3 },
        { "784,dense:30,leaky:0.2,relu,dense:10", "784,dense:30,leaky:0.2,relu,dense10", 4 },
        { "784,dense100,leaky,dense10", "784,dense100,leaky:0.01,dense10", 3 },
        { "784,64,dense:10", "784,64,10", 2 },
        { "784,dense:10,relu", "784,dense:10,relu", 1 },
        { "mlp", "784,50,25,10", 3 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sn_layer a[SN_MAX_LAYERS], b[SN_MAX_LAYERS];
        int na, nb;
        sn_error err;
        char text[256];
        cr_assert_eq(sn_net_parse(cases[c].spec, a, &na, &err), SN_OK, "%s: %s", cases[c].spec, err.msg);
        cr_assert_eq(na, cases[c].nlayers, "%s: %d layers", cases[c].spec, na);
        sn_net_format(a, na, ',', text, sizeof text);
        cr_assert_str_eq(text, cases[c].formatted);
        cr_assert_eq(sn_net_parse(text, b, &nb, &err), SN_OK, "%s: %s", text, err.msg);
        cr_assert_eq(nb, na);
        for (int l = 0; l < na; l++)
            cr_assert(a[l].ops == b[l].ops && a[l].in == b[l].in && a[l].out == b[l].out && a[l].relu == b[l].relu &&
                      a[l].arg == b[l].arg, "%s: layer %d differs after a round trip", cases[c].spec, l + 1);
    }
    sn_layer l[SN_MAX_LAYERS];
    int n;
    cr_assert_eq(sn_net_parse("784,dense:50,relu,dense:10", l, &n, NULL), SN_OK);
    cr_assert(n == 2 && l[0].relu == 1 && l[1].relu == 0 && l[0].out == 50 && l[1].in == 50);
}

/* Bad specs: refused with a message naming what is wrong. */
Test(layer, net_spec_refusals)
{
    static const struct { const char *spec, *needle; } cases[] = {
        { "", "empty" },
        { "784,dense:50,tanh,dense:10", "unknown layer type 'tanh' (known: dense, relu, leaky" },
        { "784,dense:0,dense:10", "dense:0" },
        { "784,dense:x", "dense:x" },
        { "784,dense", "dense:N" },
        { "784,dense:50,leaky:1.5,dense:10", "0 < SLOPE < 1" },
        { "784,dense:50,leaky:0,dense:10", "0 < SLOPE < 1" },
        { "784,dense:50,relu:2,dense:10", "takes no argument" },
        { "x,dense:10", "unknown layer type 'x'" },
        { "7x,dense:10", "input as a width N or an image HxWxC" },
        { "784", "at least" },
        { "784x", "input as a width" },
        { "784,,dense:10", "empty" },
        { "784,dense:10,", "empty" },
        { "784,dense:70000", "dense:70000" },
        { "conv3x3x1024", "exceeds 65536" },
        { "conv31x31x8", "conv31x31x8" },
        { "conv4x4x8/same", "odd K" },
        { "conv3x3x8,pool9", "P = 2..8" },
        { "conv3x3x8,pool2,pool2,pool2,pool2,pool2", "does not fit" },
        { "conv3x3x8/valid", "convKxKxC or convKxKxC/same" },
        { "4x4x1,conv5x5x2", "does not fit" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sn_layer l[SN_MAX_LAYERS];
        int n;
        sn_error err = { 0 };
        cr_assert_eq(sn_net_parse(cases[c].spec, l, &n, &err), SN_EINVAL, "'%s' accepted", cases[c].spec);
        cr_assert(strstr(err.msg, cases[c].needle), "'%s': message '%s' lacks '%s'", cases[c].spec, err.msg,
                  cases[c].needle);
    }
    char many[512] = "784";
    for (int i = 0; i <= SN_MAX_LAYERS; i++) strcat(many, ",dense:8,leaky");
    sn_layer l[SN_MAX_LAYERS];
    int n;
    sn_error err;
    cr_assert_eq(sn_net_parse(many, l, &n, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "more than 16 layers"), "%s", err.msg);
}

/* The activation layers against their formulas, element by element (exact: each is one
 * comparison and at most one multiply), NaN kept, and split-invariant by construction. */
Test(layer, activation_ops_match_their_formulas)
{
    enum { ROWS = 3, IN = 37 };
    float X[ROWS * IN], dY[ROWS * IN], Y[ROWS * IN], dX[ROWS * IN];
    tu_fill(X, ROWS * IN, 5);
    tu_fill(dY, ROWS * IN, 6);
    X[4] = -0.0f, X[5] = 0.0f, X[6] = __builtin_nanf("");
    sn_layer leaky = { .ops = sn_layer_type_named("leaky", 5), .in = IN, .out = IN, .arg = 0.125f };
    sn_layer relu = { .ops = sn_layer_type_named("relu", 4), .in = IN, .out = IN };
    for (int k = 0; k < 2; k++) {
        const sn_layer *l = k ? &relu : &leaky;
        const float slope = k ? 0.0f : 0.125f;
        l->ops->forward(l, Y, X, ROWS, NULL);
        l->ops->backward_input(l, dX, dY, X, 0, ROWS, NULL);
        for (int i = 0; i < ROWS * IN; i++) {
            const float want = X[i] > 0.0f ? X[i] : slope * X[i];
            if (isnan(X[i])) {
                cr_assert(isnan(Y[i]), "%s passes NaN", l->ops->type);
                continue;
            }
            cr_assert(Y[i] == want, "%s: y[%d] = %g, want %g", l->ops->type, i, Y[i], want);
            cr_assert_eq(dX[i], X[i] > 0.0f ? dY[i] : slope * dY[i], "%s: dx[%d]", l->ops->type, i);
        }
        cr_assert_eq(l->ops->grad_items(l, ROWS, 2), 0);
        cr_assert_eq(sn_layer_nparams(l), 0u);
    }
}
