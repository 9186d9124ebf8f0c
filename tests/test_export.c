/* Export for other tools: the ONNX file passes the onnx checker (full check, with shape
 * inference) and onnxruntime computes our logits from it; the .npz loads in NumPy and the
 * NumPy peer's forward pass computes our logits from it. Each tool's case is skipped,
 * saying so, where the tool is absent; CI installs them (python3-onnx, python3-numpy,
 * onnxruntime-node through tools/onnx).
 *
 * Tolerance: |theirs - ours| <= 1e-5. Both sides compute in float32 with other
 * summation orders: for a dot product of n terms the difference is bounded by about
 * n u sum|a b| (u = 6e-8); with n <= 1,600 and these activations (logits of a few units)
 * the bound is ~1e-5 and the measured worst is 2.6e-6 (the cnn preset; SN_TEST_REPORT=1
 * prints it), while any wrong layout (a transposed kernel, NCHW against NHWC
 * flattening) changes logits by O(1). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/data.h"
#include "scratchnet/export.h"
#include "scratchnet/model.h"
#include "test_util.h"

enum { ROWS = 1000 }; /* the subset's test digits, all of them */
static char out[65536], err[65536];
static const char *const NETS[] = { "mlp", "lenet5", "784,dense:64,leaky:0.1,dense:32,relu,dense10",
                                    "conv3x3x4/same,pool3,conv3x3x8,dense10", "cnn" };
enum { NNETS = sizeof NETS / sizeof NETS[0] };

/* A He-initialised net (biases set too, so they are exercised), ROWS test digits as
 * floats into dir/input.f32, and our logits for them. */
static void make(const char *spec, sn_net *m, float *x, float *logits)
{
    sn_layer layers[SN_MAX_LAYERS];
    int nl;
    cr_assert_eq(sn_net_parse(spec, layers, &nl, NULL), SN_OK, "%s", spec);
    cr_assert_eq(sn_net_create(m, layers, nl, NULL), SN_OK);
    sn_rng rng;
    sn_rng_seed(&rng, 5);
    sn_net_init_he(m, &rng);
    for (int l = 0; l < m->nlayers; l++)
        if (m->layer[l].b)
            for (size_t i = 0; i < m->layer[l].ops->nbiases(&m->layer[l]); i++)
                m->layer[l].b[i] = 0.05f * (float)((int)(i % 7) - 3);
    sn_dataset test;
    cr_assert_eq(sn_mnist_load(&test, TU_SUBSET, SN_SPLIT_TEST, NULL), SN_OK);
    sn_batch_gather(&test, NULL, 0, ROWS, x, NULL);
    sn_dataset_free(&test);
    sn_forward_ctx ctx;
    cr_assert_eq(sn_forward_ctx_create(&ctx, m, ROWS, 1, NULL), SN_OK);
    memcpy(ctx.act[0], x, sizeof(float) * ROWS * 784);
    memcpy(logits, sn_net_forward(m, &ctx, ROWS), sizeof(float) * ROWS * 10);
    sn_forward_ctx_free(&ctx);
}

static void compare(const char *what, const float *ours, const char *path)
{
    size_t len;
    float *theirs = (float *)tu_read(path, &len);
    cr_assert(theirs && len == sizeof(float) * ROWS * 10, "%s: %zu bytes of logits", what, theirs ? len : 0);
    double worst = 0, worst_abs = 0;
    for (int i = 0; i < ROWS * 10; i++) {
        const double a = fabs((double)theirs[i] - ours[i]), d = a / (1.0 + fabs(ours[i]));
        worst = d > worst ? d : worst, worst_abs = a > worst_abs ? a : worst_abs;
    }
    if (getenv("SN_TEST_REPORT")) fprintf(stderr, "%s: %s: worst difference %.3g absolute, %.3g relative\n", what, path, worst_abs, worst);
    cr_assert(worst_abs <= 1e-5, "%s: logits differ by %g (absolute; %g relative)", what, worst_abs, worst);
    free(theirs);
}

static int have(const char *probe) { return tu_run(probe, out, sizeof out, err, sizeof err) == 0; }

/* Net n made as make() does, its input rows in a fresh dir/input.f32 (dir: 512 bytes). */
static void prepare(int n, sn_net *m, float *ours, char *dir)
{
    static float x[ROWS * 784];
    make(NETS[n], m, x, ours);
    snprintf(dir, 512, "%s", tu_tmpdir());
    tu_write(tu_path(dir, "input.f32"), x, sizeof x);
}

Test(export, onnx_passes_the_checker)
{
    if (!have("/usr/bin/python3 -c 'import onnx'")) cr_skip_test("python3-onnx not installed (apt-get install python3-onnx)");
    for (int n = 0; n < NNETS; n++) {
        sn_net m;
        static float x[ROWS * 784], ours[ROWS * 10];
        make(NETS[n], &m, x, ours);
        const char *path = tu_path(tu_tmpdir(), "m.onnx");
        sn_error e;
        cr_assert_eq(sn_export_onnx(&m, path, &e), SN_OK, "%s", e.msg);
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import onnx; m = onnx.load(\"%s\"); onnx.checker.check_model(m, full_check=True); "
                 "print(m.opset_import[0].version, [o.name for o in m.graph.output])'", path);
        cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s: %s", NETS[n], err);
        cr_assert(strstr(out, "13 ['logits', 'probs']"), "%s: %s", NETS[n], out);
        sn_net_free(&m);
    }
}

Test(export, onnxruntime_computes_our_logits)
{
    if (!have("node --version")) cr_skip_test("node not installed");
    if (!tu_exists(SN_TEST_SOURCE_DIR "/tools/onnx/node_modules/onnxruntime-node"))
        cr_skip_test("onnxruntime-node not installed (npm ci --ignore-scripts --prefix tools/onnx)");
    for (int n = 0; n < NNETS; n++) {
        sn_net m;
        static float ours[ROWS * 10];
        char dir[512], cmd[4096];
        prepare(n, &m, ours, dir);
        sn_error e;
        cr_assert_eq(sn_export_onnx(&m, tu_path(dir, "m.onnx"), &e), SN_OK, "%s", e.msg);
        snprintf(cmd, sizeof cmd, "node %s/tools/onnx/run.mjs %s/m.onnx %s/input.f32 %d %s/ort.f32", SN_TEST_SOURCE_DIR,
                 dir, dir, ROWS, dir);
        cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s: %s", NETS[n], err);
        compare(NETS[n], ours, tu_path(dir, "ort.f32"));
        sn_net_free(&m);
    }
}

Test(export, npz_in_the_numpy_peer_computes_our_logits)
{
    if (!have("/usr/bin/python3 -c 'import numpy'")) cr_skip_test("python3-numpy not installed");
    for (int n = 0; n < NNETS; n++) {
        sn_net m;
        static float ours[ROWS * 10];
        char dir[512], cmd[4096];
        prepare(n, &m, ours, dir);
        sn_error e;
        cr_assert_eq(sn_export_npz(&m, tu_path(dir, "m.npz"), &e), SN_OK, "%s", e.msg);
        /* Every net loads, with its arrays in the documented shapes. */
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import numpy as np; z = np.load(\"%s/m.npz\"); "
                 "print(str(z[\"spec\"]), z[\"W1\"].shape, int(z[\"deskew\"]), float(z[\"max_width\"]))'", dir);
        cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s: %s", NETS[n], err);
        char spec[512];
        sn_net_format(m.layer, m.nlayers, ',', spec, sizeof spec);
        cr_assert(!strncmp(out, spec, strlen(spec)), "%s: %s", spec, out);
        const int conv = !strcmp(m.layer[0].ops->type, "conv");
        cr_assert(strstr(out, conv ? "(3, 3, 1, 4)" : "(784, ") || strstr(out, "(5, 5, 1, 6)") || strstr(out, "(3, 3, 1, 32)"),
                  "%s", out);
        /* The NumPy peer runs the dense ones. */
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bench/peers/npz_forward.py %s/m.npz %s/input.f32 %d %s/np.f32",
                 SN_TEST_SOURCE_DIR, dir, dir, ROWS, dir);
        const int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
        if (sn_net_is_mlp(m.layer, m.nlayers) || !conv) {
            cr_assert_eq(rc, 0, "%s: %s", NETS[n], err);
            compare(NETS[n], ours, tu_path(dir, "np.f32"));
        } else {
            cr_assert_eq(rc, 3, "%s: a convolutional net is refused by the MLP peer: %s", NETS[n], err);
        }
        sn_net_free(&m);
    }
}

Test(export, command_line)
{
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 1 --val 0 --augment none --data %s --save %s/m.bin",
             TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "%s export --format onnx %s/m.bin %s/m.onnx", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "wrote") && tu_exists(tu_path(dir, "m.onnx")), "%s", out);
    snprintf(cmd, sizeof cmd, "%s export --format npz %s/m.bin %s/m.npz", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    size_t len;
    unsigned char *z = tu_read(tu_path(dir, "m.npz"), &len);
    cr_assert(z && len > 4 && !memcmp(z, "PK\x03\x04", 4), "a zip");
    free(z);
    snprintf(cmd, sizeof cmd, "%s export --format tflite %s/m.bin %s/m.x", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "onnx|npz"), "%s", err);
    snprintf(cmd, sizeof cmd, "%s export --format onnx %s/none.bin %s/m2.onnx", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
    cr_assert(!tu_exists(tu_path(dir, "m2.onnx")));
    snprintf(cmd, sizeof cmd, "%s export --format onnx %s/m.bin %s/no/dir/m.onnx", TU_SCRATCHNET, dir, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 2, "%s", err);
}
