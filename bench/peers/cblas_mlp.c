/* The C + OpenBLAS peer: the same MLP and protocol as scratchnet's (and numpy_mlp.py's),
 * written the way one would with a BLAS: a plain loop of cblas_sgemm calls per step.
 * ReLU hidden layers, softmax + cross-entropy, He-normal init, SGD with momentum 0.9 and
 * a cosine learning rate, 50,000 training / 10,000 validation images; only the training
 * passes are timed. The data, the shuffle and the initial weights come from scratchnet's
 * library (sn_mnist_load, sn_rng, sn_net_init_he), so both start from the same point
 * and see the same batches; every product is OpenBLAS's (loaded with dlopen, its kernel
 * family forced by `bench --peers` through OPENBLAS_CORETYPE).
 *
 *   cblas_mlp --data DIR [--layers 784,50,25,10] [--epochs 10] [--batch 128]
 *             [--threads 1] [--lr 0.05] [--seed 42] [--val 10000]
 * prints the peers' result line. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/data.h"
#include "scratchnet/model.h"
#include "scratchnet/rng.h"
#include "scratchnet/train.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);
static sgemm_fn sgemm;

/* C (m x n) = op(A) op(B) (+ C when acc). */
static void gemm(int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb, int acc,
                 float *C, int ldc)
{
    sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, 1.0f, A, lda, B, ldb, acc ? 1.0f : 0.0f,
          C, ldc);
}

typedef struct net {
    int L, size[8];
    float *W[8], *b[8], *vW[8], *vb[8], *gW[8], *gb[8];
    float *act[9], *d[9]; /* act[0]: input; d[l]: dLoss/d(pre-activation of layer l's output) */
} net;

/* Forward over rows [0, n): act[l + 1] = relu(act[l] W_l + b_l) (no ReLU on the last). */
static void forward(net *t, int n)
{
    for (int l = 0; l < t->L; l++) {
        const int in = t->size[l], out = t->size[l + 1];
        float *z = t->act[l + 1];
        gemm(0, 0, n, out, in, t->act[l], in, t->W[l], out, 0, z, out);
        for (int r = 0; r < n; r++)
            for (int j = 0; j < out; j++) {
                float v = z[(size_t)r * out + j] + t->b[l][j];
                z[(size_t)r * out + j] = l + 1 < t->L && v < 0.0f ? 0.0f : v;
            }
    }
}

/* Softmax cross-entropy of the logits against y: returns the summed loss, leaves
 * (p - onehot(y)) * scale in d (n x C) and counts the right answers. */
static double softmax_xent(const float *z, const uint8_t *y, int n, int C, float scale, float *d, long *right)
{
    double loss = 0.0;
    for (int r = 0; r < n; r++) {
        const float *zr = z + (size_t)r * C;
        int best = 0;
        for (int j = 1; j < C; j++)
            if (zr[j] > zr[best]) best = j;
        double s = 0.0;
        for (int j = 0; j < C; j++) s += exp((double)zr[j] - zr[best]);
        loss += log(s) - ((double)zr[y[r]] - zr[best]);
        if (right) *right += best == y[r];
        if (d)
            for (int j = 0; j < C; j++)
                d[(size_t)r * C + j] = (float)((exp((double)zr[j] - zr[best]) / s - (j == y[r])) * scale);
    }
    return loss;
}

static void evaluate(net *t, const sn_dataset *ds, int cap, double *loss, double *acc)
{
    double sum = 0.0;
    long right = 0;
    uint8_t y[4096];
    for (int first = 0; first < ds->count; first += cap) {
        const int n = ds->count - first < cap ? ds->count - first : cap;
        sn_batch_gather(ds, NULL, first, n, t->act[0], y);
        forward(t, n);
        sum += softmax_xent(t->act[t->L], y, n, t->size[t->L], 0.0f, NULL, &right);
    }
    *loss = sum / ds->count, *acc = (double)right / ds->count;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *layers = "784,50,25,10";
    int epochs = 10, batch = 128, threads = 1, nval = 10000;
    double lr = 0.05;
    unsigned long long seed = 42;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--layers")) layers = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--val")) nval = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lr")) lr = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "cblas_mlp: unknown flag '%s'\n", argv[i]);
            return 2;
        }
    }
    net t;
    memset(&t, 0, sizeof t);
    for (const char *p = layers; *p && t.L < 7;) {
        t.size[t.L++] = (int)strtol(p, (char **)&p, 10);
        if (*p == ',' || *p == ':') p++;
    }
    t.L--; /* layers = sizes - 1 */
    if (!data || epochs < 1 || batch < 1 || batch > 4096 || threads < 1 || t.L < 1 || t.size[0] != 784 ||
        t.size[t.L] != 10) {
        fprintf(stderr, "cblas_mlp: usage: --data DIR [--layers 784,...,10] [--epochs N] [--batch 1..4096] "
                        "[--threads N] [--lr X] [--seed N] [--val N]\n");
        return 2;
    }
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    void (*set_threads)(int) = NULL;
    if (h) *(void **)&sgemm = dlsym(h, "cblas_sgemm"), *(void **)&set_threads = dlsym(h, "openblas_set_num_threads");
    if (!sgemm) {
        fprintf(stderr, "cblas_mlp: OpenBLAS is not installed (apt-get install libopenblas-dev)\n");
        return 1;
    }
    if (set_threads) set_threads(threads);
    sn_error err;
    sn_dataset all, test;
    if (sn_mnist_load(&all, data, SN_SPLIT_TRAIN, &err) || sn_mnist_load(&test, data, SN_SPLIT_TEST, &err)) {
        fprintf(stderr, "cblas_mlp: %s\n", err.msg);
        return 1;
    }
    const int ntrain = all.count - nval;
    if (nval < 1 || ntrain < 1) {
        fprintf(stderr, "cblas_mlp: --val %d leaves no training images of %d\n", nval, all.count);
        return 2;
    }
    const sn_dataset train = sn_dataset_slice(&all, 0, ntrain), val = sn_dataset_slice(&all, ntrain, nval);
    /* scratchnet's He initialisation of the same sizes, seeded alike: the same start. */
    sn_net init;
    sn_rng rng;
    sn_rng_seed(&rng, seed);
    if (sn_net_create_mlp(&init, t.size, t.L + 1, &err)) {
        fprintf(stderr, "cblas_mlp: %s\n", err.msg);
        return 1;
    }
    sn_net_init_he(&init, &rng);
    const int cap = batch > 1000 ? batch : 1000;
    for (int l = 0; l <= t.L; l++) {
        t.act[l] = malloc(sizeof(float) * (size_t)cap * t.size[l]);
        t.d[l] = malloc(sizeof(float) * (size_t)cap * t.size[l]);
    }
    for (int l = 0; l < t.L; l++) {
        const size_t nw = (size_t)t.size[l] * t.size[l + 1], nb = (size_t)t.size[l + 1];
        t.W[l] = malloc(4 * nw), t.vW[l] = calloc(nw, 4), t.gW[l] = malloc(4 * nw);
        t.b[l] = malloc(4 * nb), t.vb[l] = calloc(nb, 4), t.gb[l] = malloc(4 * nb);
        memcpy(t.W[l], init.W[l], 4 * nw), memcpy(t.b[l], init.b[l], 4 * nb);
    }
    int *order = malloc(sizeof(int) * (size_t)ntrain);
    uint8_t *y = malloc((size_t)batch);
    const long steps_per_epoch = (ntrain + batch - 1) / batch, total = steps_per_epoch * epochs;
    long step = 0;
    double train_s = 0.0, train_loss = 0.0;
    for (int e = 0; e < epochs; e++) {
        for (int i = 0; i < ntrain; i++) order[i] = i;
        sn_shuffle(&rng, order, ntrain);
        double loss_sum = 0.0;
        const double t0 = sn_now();
        for (int first = 0; first < ntrain; first += batch, step++) {
            const int n = ntrain - first < batch ? ntrain - first : batch;
            sn_batch_gather(&train, order, first, n, t.act[0], y);
            forward(&t, n);
            loss_sum += softmax_xent(t.act[t.L], y, n, t.size[t.L], 1.0f / (float)n, t.d[t.L], NULL);
            const float rate = (float)(0.5 * lr * (1.0 + cos(3.14159265358979323846 * (double)step / (double)total)));
            for (int l = t.L - 1; l >= 0; l--) {
                const int in = t.size[l], out = t.size[l + 1];
                float *d = t.d[l + 1];
                gemm(1, 0, in, out, n, t.act[l], in, d, out, 0, t.gW[l], out); /* dW = A^T D */
                for (int j = 0; j < out; j++) t.gb[l][j] = 0.0f;
                for (int r = 0; r < n; r++)
                    for (int j = 0; j < out; j++) t.gb[l][j] += d[(size_t)r * out + j];
                if (l > 0) { /* D_prev = (D W^T) * relu'(A) */
                    gemm(0, 1, n, in, out, d, out, t.W[l], out, 0, t.d[l], in);
                    for (size_t i = 0; i < (size_t)n * in; i++)
                        if (!(t.act[l][i] > 0.0f)) t.d[l][i] = 0.0f;
                }
                const size_t nw = (size_t)in * out;
                for (size_t i = 0; i < nw; i++) {
                    t.vW[l][i] = 0.9f * t.vW[l][i] + t.gW[l][i];
                    t.W[l][i] -= rate * t.vW[l][i];
                }
                for (int j = 0; j < out; j++) {
                    t.vb[l][j] = 0.9f * t.vb[l][j] + t.gb[l][j];
                    t.b[l][j] -= rate * t.vb[l][j];
                }
            }
        }
        train_s += sn_now() - t0;
        train_loss = loss_sum / ntrain;
    }
    double val_loss, val_acc, test_loss, test_acc;
    evaluate(&t, &val, cap, &val_loss, &val_acc);
    evaluate(&t, &test, cap, &test_loss, &test_acc);
    printf("result name=c-openblas epochs=%d batch=%d threads=%d train_loss=%.6f val_loss=%.6f test_acc=%.6f "
           "train_s=%.6f samples_per_s=%.1f\n",
           epochs, batch, threads, train_loss, val_loss, test_acc, train_s, (double)ntrain * epochs / train_s);
    for (int l = 0; l <= t.L; l++) free(t.act[l]), free(t.d[l]);
    for (int l = 0; l < t.L; l++) free(t.W[l]), free(t.vW[l]), free(t.gW[l]), free(t.b[l]), free(t.vb[l]), free(t.gb[l]);
    free(order), free(y);
    sn_net_free(&init);
    sn_dataset_free(&all), sn_dataset_free(&test);
    return 0;
}
