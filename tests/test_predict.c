/* predict and draw: the MNIST-style pipeline on drawing-like digits (off-centre, any
 * size, either polarity) against a plain resize; the predict command on PGM and PNG
 * files; the draw canvas driven headless by synthetic mouse events. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/image.h"
#include "scratchnet/layers.h"
#include "scratchnet/modelfile.h"
#include "scratchnet/train.h"
#include "test_util.h"

static sn_net model;
static sn_dataset train_set, test_set;
static char model_path[512];

/* One model for the suite: 5 epochs on the committed subset (~0.9 test accuracy). */
static void setup(void)
{
    int sizes[] = { 784, 50, 25, 10 };
    sn_trainer t;
    sn_train_config cfg = sn_train_defaults();
    cfg.val = 0, cfg.epochs = 5, cfg.batch = 64, cfg.threads = 2;
    cr_assert_eq(sn_mnist_load(&train_set, TU_SUBSET, SN_SPLIT_TRAIN, NULL), SN_OK);
    cr_assert_eq(sn_mnist_load(&test_set, TU_SUBSET, SN_SPLIT_TEST, NULL), SN_OK);
    cr_assert_eq(sn_net_create_mlp(&model, sizes, 4, NULL), SN_OK);
    cr_assert_eq(sn_trainer_create(&t, &model, &cfg, train_set.count, NULL), SN_OK);
    for (int e = 0; e < 5; e++) {
        sn_epoch_stats st;
        sn_train_epoch(&t, &train_set, &st, NULL, NULL);
    }
    sn_trainer_free(&t);
    snprintf(model_path, sizeof model_path, "%s", tu_path(tu_tmpdir(), "m.bin"));
    cr_assert_eq(sn_model_save(&model, model_path, NULL), SN_OK);
}

static void teardown(void)
{
    sn_net_free(&model);
    sn_dataset_free(&train_set);
    sn_dataset_free(&test_set);
}

static int classify(sn_forward_ctx *c, const float *x)
{
    memcpy(c->act[0], x, 784 * sizeof(float));
    const float *z = sn_net_forward(&model, c, 1);
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* MNIST test digit i as a person might hand it over: scaled by 3..9x, placed anywhere
 * on a 400 x 300 sheet, dark ink on light paper for odd i. */
static void drawing_like(int i, sn_image *img, uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    int scale = 3 + (int)((*rng >> 33) % 7), side = 28 * scale;
    int ox = (int)((*rng >> 17) % (unsigned)(400 - side + 1)), oy = (int)((*rng >> 41) % (unsigned)(300 - side + 1));
    float digit[28 * 28], *big = malloc(sizeof(float) * side * side);
    for (int p = 0; p < 784; p++) digit[p] = test_set.images[(size_t)i * 784 + p] / 255.0f;
    sn_resample_area(big, side, side, digit, 28, 28);
    cr_assert_eq(sn_image_create(img, 400, 300, NULL), SN_OK);
    int dark_on_light = i & 1;
    for (int y = 0; y < 300; y++)
        for (int x = 0; x < 400; x++) {
            float v = x >= ox && x < ox + side && y >= oy && y < oy + side ? big[(y - oy) * side + x - ox] : 0.0f;
            img->px[y * 400 + x] = dark_on_light ? 0.92f - 0.85f * v : 0.05f + 0.9f * v;
        }
    free(big);
}

Test(predict, pipeline_recovers_what_a_plain_resize_loses, .init = setup, .fini = teardown, .timeout = 120)
{
    sn_forward_ctx c;
    cr_assert_eq(sn_forward_ctx_create(&c, &model, 1, 1, NULL), SN_OK);
    uint64_t rng = 12345;
    int n = 300, plain_ok = 0, pipe_ok = 0, clean_ok = 0;
    float x[784];
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < 784; p++) x[p] = test_set.images[(size_t)i * 784 + p] / 255.0f;
        clean_ok += classify(&c, x) == test_set.labels[i];
        sn_image img;
        drawing_like(i, &img, &rng);
        sn_resample_area(x, 28, 28, img.px, img.w, img.h);
        plain_ok += classify(&c, x) == test_set.labels[i];
        cr_assert_eq(sn_image_to_mnist(&img, NULL, x, NULL), SN_OK);
        pipe_ok += classify(&c, x) == test_set.labels[i];
        sn_image_free(&img);
    }
    double clean = (double)clean_ok / n, plain = (double)plain_ok / n, pipe = (double)pipe_ok / n;
    cr_log_info("accuracy on %d digits: MNIST as is %.3f, drawing-like plain resize %.3f, MNIST pipeline %.3f", n,
                clean, plain, pipe);
    /* The pipeline must recover most of the clean accuracy; a plain resize must not. */
    cr_assert(pipe >= 0.85 * clean, "pipeline %.3f vs clean %.3f", pipe, clean);
    cr_assert(plain <= 0.35, "a plain resize should be close to useless here, got %.3f", plain);
    sn_forward_ctx_free(&c);
}

static char out[65536], err[65536];

Test(predict, command_reads_pgm_and_png_and_reports_bad_files, .init = setup, .fini = teardown, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    /* Test digit 0 (a 7) as a dark-on-light binary PGM, 3x larger. */
    sn_image img;
    uint64_t rng = 1;
    drawing_like(1, &img, &rng); /* test digit 1 is a 2, odd: dark on light */
    FILE *f = fopen(tu_path(dir, "two.pgm"), "wb");
    fprintf(f, "P5\n%d %d\n255\n", img.w, img.h);
    for (int i = 0; i < img.w * img.h; i++) fputc((int)(img.px[i] * 255.0f + 0.5f), f);
    fclose(f);
    sn_image_free(&img);
    tu_write(tu_path(dir, "junk.pgm"), "P5 3 3 255\nxx", 13);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s predict --model %s --probs %s/two.pgm %s/junk.pgm %s/two.pgm", TU_SCRATCHNET,
             model_path, dir, dir, dir);
    int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 1, "an unreadable image means exit 1; got %d: %s", rc, err);
    cr_assert(strstr(err, "junk.pgm"), "message names the file: %s", err);
    int lines = 0;
    for (char *p = out; (p = strstr(p, "two.pgm digit=2 p=")); p++) lines++;
    cr_assert_eq(lines, 2, "both good images are still reported: %s", out);
    cr_assert(strstr(out, " p9="), "--probs prints all ten: %s", out);
}

Test(draw, canvas_reads_synthetic_strokes_headless, .init = setup, .fini = teardown, .timeout = 60)
{
    if (!tu_exists(SN_TEST_BUILD_DIR "/draw")) cr_skip_test("draw not built (SDL2 missing)");
    static const struct { const char *file; int digit; } cases[] = {
        { "one.events", 1 }, { "seven.events", 7 }, { "zero.events", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[4096];
        const char *shot = tu_path(tu_tmpdir(), "shot.png");
        snprintf(cmd, sizeof cmd, "SDL_VIDEODRIVER=dummy %s/draw --model %s --replay %s/tests/draw/%s --screenshot %s",
                 SN_TEST_BUILD_DIR, model_path, SN_TEST_SOURCE_DIR, cases[i].file, shot);
        int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
        cr_assert_eq(rc, 0, "draw exited %d: %s", rc, err);
        int digit = -1;
        float p = 0;
        cr_assert_eq(sscanf(out, "digit=%d p=%f", &digit, &p), 2, "%s", out);
        cr_assert_eq(digit, cases[i].digit, "%s read as %d (p=%.3f)", cases[i].file, digit, p);
        size_t len;
        unsigned char *png = tu_read(shot, &len);
        cr_assert(png && len > 8 && !memcmp(png, "\x89PNG", 4), "no screenshot");
        free(png);
    }
    /* Without a model it says how to make one. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "SDL_VIDEODRIVER=dummy %s/draw --model %s/none.bin", SN_TEST_BUILD_DIR, tu_tmpdir());
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "scratchnet train"), "%s", err);
}

/* draw with a convolutional model: the canvas's image goes through every layer type
 * (a small CNN trained here on the subset; the test checks the program runs it and
 * prints a reading, not the reading, which a 3-epoch net on 3,000 images may miss). */
Test(draw, canvas_runs_a_cnn_model)
{
    if (!tu_exists(SN_TEST_BUILD_DIR "/draw")) cr_skip_test("draw not built (SDL2 missing)");
    const char *dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train --quiet --epochs 3 --batch 64 --val 0 --net conv3x3x8,pool2,dense10 --data %s "
             "--save %s/cnn.bin", TU_SCRATCHNET, TU_SUBSET, dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    snprintf(cmd, sizeof cmd, "SDL_VIDEODRIVER=dummy %s/draw --model %s/cnn.bin --replay %s/tests/draw/seven.events",
             SN_TEST_BUILD_DIR, dir, SN_TEST_SOURCE_DIR);
    cr_assert_eq(tu_run(cmd, out, sizeof out, err, sizeof err), 0, "%s", err);
    int digit = -1;
    float p = 0;
    cr_assert_eq(sscanf(out, "digit=%d p=%f", &digit, &p), 2, "%s", out);
    cr_assert(digit >= 0 && digit <= 9 && p > 0.0f && p <= 1.0f, "%s", out);
}
