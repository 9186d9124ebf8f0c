/* The image pipeline for drawn digits: deskewing, stroke width and its limit, training-
 * time augmentation (identity at probability 0, the same bits on any thread count and
 * ISA), and the synthesised drawn digits. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/augment.h"
#include "scratchnet/drawn.h"
#include "scratchnet/gemm.h"
#include "scratchnet/image.h"
#include "scratchnet/train.h"
#include "test_util.h"

enum { S = 28 };

/* Second moments about the centre of mass: mu11 / mu02 is the slope deskewing removes. */
static double slope_of(const float *px)
{
    double m = 0, sx = 0, sy = 0, mu11 = 0, mu02 = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) m += px[y * S + x], sx += px[y * S + x] * x, sy += px[y * S + x] * y;
    const double cx = sx / m, cy = sy / m;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            mu11 += px[y * S + x] * (x - cx) * (y - cy);
            mu02 += px[y * S + x] * (y - cy) * (y - cy);
        }
    return mu11 / mu02;
}

/* A bar 3 pixels wide from (cx + k (4 - cy)... ) : x = cx + k (y - 14) for y in 4..23. */
static void slanted_bar(float *px, double k)
{
    memset(px, 0, sizeof(float) * S * S);
    for (int y = 4; y < 24; y++) {
        const double c = 14 + k * (y - 14);
        for (int x = 0; x < S; x++) {
            const double d = fabs(x + 0.5 - c);
            px[y * S + x] = d < 1.0 ? 1.0f : d < 2.0 ? (float)(2.0 - d) : 0.0f;
        }
    }
}

Test(augment, deskew_makes_slanted_bars_upright)
{
    float bar[S * S], out[S * S];
    for (double k = -0.5; k <= 0.51; k += 0.25) {
        slanted_bar(bar, k);
        const double before = slope_of(bar), removed = sn_deskew(bar, out, S, S);
        /* The slope removed is the bar's own (moments are exact up to the edges' grey
         * levels); what is left is under 0.02 px per row, i.e. under 0.4 px over the bar. */
        cr_assert(fabs(removed - before) < 1e-9, "k=%g: removed %g, measured %g", k, removed, before);
        cr_assert(fabs(slope_of(out)) < 0.02, "k=%g: slope %g left", k, slope_of(out));
        double mi = 0, mo = 0;
        for (int i = 0; i < S * S; i++) mi += bar[i], mo += out[i];
        cr_assert(fabs(mi - mo) < 1e-3 * mi, "k=%g: ink %g -> %g (a shear keeps it)", k, mi, mo);
    }
}

Test(augment, deskew_of_upright_digit_is_a_no_op)
{
    float bar[S * S], out[S * S];
    slanted_bar(bar, 0.0);
    cr_assert(fabs(sn_deskew(bar, out, S, S)) < 1e-12);
    for (int i = 0; i < S * S; i++) cr_assert(fabsf(out[i] - bar[i]) < 1e-6f, "pixel %d moved", i);
    float empty[S * S] = { 0 };
    cr_assert_eq(sn_deskew(empty, out, S, S), 0.0, "an empty image is copied");
}

Test(augment, stroke_width_of_bars)
{
    /* Bars of full ink w pixels wide, 20 long: 2 wL / (2L + 2w) = w L / (L + w), less 2%:
     * at each of the 4 corners the isotropic gradient counts sqrt(2), not 1 + 1. */
    for (int w = 1; w <= 5; w++) {
        float px[S * S] = { 0 };
        for (int y = 4; y < 24; y++)
            for (int x = 10; x < 10 + w; x++) px[y * S + x] = 1.0f;
        const double want = w * 20.0 / (20.0 + w), got = sn_stroke_width(px, S, S);
        cr_assert(got >= want && got < 1.02 * want, "width %d: %g, expected %g (+2%%)", w, got, want);
    }
    float empty[S * S] = { 0 };
    cr_assert_eq(sn_stroke_width(empty, S, S), 0.0);
}

/* A canvas stroke: a vertical line of the given pen on 280 x 280, soft edges. */
static void canvas_line(float *c, float stroke, float soft)
{
    memset(c, 0, sizeof(float) * SN_DRAWN_SIDE * SN_DRAWN_SIDE);
    const float feather = soft * stroke + 1, radius = stroke / 2 + feather / 2;
    for (float y = 60; y <= 220; y += 1) {
        sn_brush_stamp(c, SN_DRAWN_SIDE, SN_DRAWN_SIDE, 140 - (y - 140) * 0.3f, y, radius, feather, 0);
        sn_brush_stamp(c, SN_DRAWN_SIDE, SN_DRAWN_SIDE, 140 + (y - 140) * 0.3f, y, radius, feather, 0);
    }
}

Test(augment, width_limit_thins_wide_strokes_only)
{
    float *canvas = malloc(sizeof(float) * SN_DRAWN_SIDE * SN_DRAWN_SIDE);
    float plain[S * S], limited[S * S];
    const sn_preprocess limit = { 0, 3.0f };
    /* A thick soft pen (~4.5 px in the 20-pixel box, a 2-pixel full-ink core) comes out
     * at most the limit wide, and not much less (the bisection ends within 0.95 / 2^12
     * of the threshold that meets it). */
    canvas_line(canvas, 40, 0.5f);
    cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, NULL, plain, NULL), SN_OK);
    cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, &limit, limited, NULL), SN_OK);
    cr_assert(sn_stroke_width(plain, S, S) > 3.5, "the test stroke is wide: %g", sn_stroke_width(plain, S, S));
    cr_assert(sn_stroke_width(limited, S, S) <= 3.0 + 1e-6, "limited to %g", sn_stroke_width(limited, S, S));
    cr_assert(sn_stroke_width(limited, S, S) > 2.5, "thinned no more than needed: %g", sn_stroke_width(limited, S, S));
    /* A pen already under the limit is left exactly as it was. */
    canvas_line(canvas, 14, 0.2f);
    cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, NULL, plain, NULL), SN_OK);
    cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, &limit, limited, NULL), SN_OK);
    cr_assert(sn_stroke_width(plain, S, S) < 3.0, "the test stroke is thin: %g", sn_stroke_width(plain, S, S));
    cr_assert(memcmp(plain, limited, sizeof plain) == 0, "a thin stroke changed");
    /* No preprocessing and a zeroed one are the same pipeline, bit for bit. */
    const sn_preprocess none = { 0, 0.0f };
    cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, &none, limited, NULL), SN_OK);
    cr_assert(memcmp(plain, limited, sizeof plain) == 0);
    free(canvas);
}

Test(augment, spec_parses_formats_and_refuses)
{
    sn_augment a;
    char text[128];
    cr_assert_eq(sn_augment_parse("thick=0.5,rot=10,scale=0.1,shift=2", &a, NULL), SN_OK);
    cr_assert(sn_augment_active(&a));
    cr_assert_float_eq(a.range[SN_AUG_ROT], 10.0f, 0.0f);
    cr_assert_float_eq(a.prob[SN_AUG_THICK], 1.0f, 0.0f);
    sn_augment_format(&a, text, sizeof text);
    cr_assert_str_eq(text, "rot=10,scale=0.1,shift=2,thick=0.5");
    cr_assert_eq(sn_augment_parse("thick=0.8@0.25", &a, NULL), SN_OK);
    cr_assert_float_eq(a.prob[SN_AUG_THICK], 0.25f, 0.0f);
    sn_augment_format(&a, text, sizeof text);
    cr_assert_str_eq(text, "thick=0.8@0.25");
    cr_assert_eq(sn_augment_parse("none", &a, NULL), SN_OK);
    cr_assert(!sn_augment_active(&a));
    sn_augment_format(&a, text, sizeof text);
    cr_assert_str_eq(text, "none");
    const char *bad[] = { "",       "rot",       "rot=",      "spin=3",    "rot=90",          "rot=5@2",
                          "rot=-1", "rot=5x",    "thick=1,,", ",thick=1",  "rot=5,rot=6",     "rot=5@",
                          NULL };
    for (int i = 0; bad[i]; i++) {
        sn_error err;
        cr_assert_eq(sn_augment_parse(bad[i], &a, &err), SN_EINVAL, "'%s' accepted", bad[i]);
    }
}

static sn_dataset subset;

static void load(void)
{
    sn_error err;
    cr_assert_eq(sn_mnist_load(&subset, TU_SUBSET, SN_SPLIT_TRAIN, &err), SN_OK, "%s", err.msg);
}

static void unload(void) { sn_dataset_free(&subset); }

Test(augment, probability_zero_is_the_identity, .init = load, .fini = unload)
{
    sn_augment a;
    cr_assert_eq(sn_augment_parse("thick=1@0,rot=10@0,scale=0.1@0,shear=0.3@0,shift=2@0", &a, NULL), SN_OK);
    uint8_t *out = malloc((size_t)subset.count * 784);
    void *ws = malloc(sn_augment_workspace_bytes(2));
    sn_augment_dataset(&a, 42, 0, &subset, subset.count, out, 2, ws, NULL);
    cr_assert(memcmp(out, subset.images, (size_t)subset.count * 784) == 0);
    free(out), free(ws);
}

/* Augmented epochs: the same bytes on 1 and 3 threads and on every ISA; different epochs
 * and seeds differ; the warp keeps a digit's ink roughly (a small zoom and the clip at
 * the border change it a little). */
Test(augment, same_bytes_on_any_thread_count_and_isa, .init = load, .fini = unload)
{
    sn_augment a;
    cr_assert_eq(sn_augment_parse("thick=1,rot=10,scale=0.1,shear=0.2,shift=2", &a, NULL), SN_OK);
    const size_t bytes = (size_t)subset.count * 784;
    uint8_t *ref = malloc(bytes), *out = malloc(bytes);
    void *ws = malloc(sn_augment_workspace_bytes(3));
    sn_isa_force(SN_ISA_SCALAR, NULL);
    sn_augment_dataset(&a, 42, 3, &subset, subset.count, ref, 1, ws, NULL);
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        for (int threads = 1; threads <= 3; threads += 2) {
            memset(out, 0xa5, bytes);
            sn_augment_dataset(&a, 42, 3, &subset, subset.count, out, threads, ws, NULL);
            cr_assert(memcmp(out, ref, bytes) == 0, "%s, %d threads: different bytes", sn_isa_name((sn_isa)isa),
                      threads);
        }
    }
    sn_isa_init(NULL);
    sn_augment_dataset(&a, 42, 4, &subset, subset.count, out, 2, ws, NULL);
    cr_assert(memcmp(out, ref, bytes) != 0, "epoch 4 repeats epoch 3");
    sn_augment_dataset(&a, 43, 3, &subset, subset.count, out, 2, ws, NULL);
    cr_assert(memcmp(out, ref, bytes) != 0, "seed 43 repeats seed 42");
    int changed = 0;
    for (int i = 0; i < subset.count; i++) changed += memcmp(ref + (size_t)i * 784, subset.images + (size_t)i * 784, 784) != 0;
    cr_assert(changed > subset.count * 9 / 10, "only %d of %d images changed", changed, subset.count);
    /* One image alone is what the dataset pass made of it. */
    uint8_t one[784];
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(sn_augment_image(&a, 42, 3, i, subset.images + (size_t)i * 784, one, 28, 28, NULL), SN_OK);
        cr_assert(memcmp(one, ref + (size_t)i * 784, 784) == 0, "image %d differs alone", i);
    }
    /* Images larger than the pipeline's buffers are refused, not overrun. */
    sn_error err;
    static uint8_t big[65 * 65], bigout[65 * 65];
    cr_assert_eq(sn_augment_image(&a, 42, 3, 0, big, bigout, 65, 65, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "65x65"), "%s", err.msg);
    sn_dataset wide = { .count = 1, .rows = 10, .cols = 100, .images = big, .labels = bigout };
    cr_assert_eq(sn_dataset_deskew(&wide, 1, &err), SN_EINVAL);
    free(ref), free(out), free(ws);
}

Test(augment, training_with_augmentation_same_bits_on_1_and_3_threads, .init = load, .fini = unload)
{
    sn_net m[2];
    for (int r = 0; r < 2; r++) {
        sn_train_config cfg = sn_train_defaults();
        cfg.threads = r ? 3 : 1, cfg.epochs = 2, cfg.val = 0, cfg.batch = 64;
        cr_assert_eq(sn_augment_parse("thick=1,rot=10,scale=0.1,shift=2", &cfg.aug, NULL), SN_OK);
        sn_trainer t;
        int sizes[] = { 784, 50, 25, 10 };
        cr_assert_eq(sn_net_create_mlp(&m[r], sizes, 4, NULL), SN_OK);
        cr_assert_eq(sn_trainer_create(&t, &m[r], &cfg, subset.count, NULL), SN_OK);
        for (int e = 0; e < cfg.epochs; e++) {
            sn_epoch_stats st;
            cr_assert_eq(sn_train_epoch(&t, &subset, &st, NULL, NULL), SN_OK);
            cr_assert(st.augment_s > 0 && st.augment_s < st.train_s, "augmenting is part of the epoch's time");
        }
        cr_assert(sn_augment_active(&m[r].aug), "the model records its augmentation");
        sn_trainer_free(&t);
    }
    cr_assert(memcmp(m[0].params, m[1].params, m[0].nparams * 4) == 0, "1 vs 3 threads differ");
    sn_net_free(&m[0]), sn_net_free(&m[1]);
}

Test(augment, dataset_deskew_and_width_quantile, .init = load, .fini = unload)
{
    sn_dataset copy = subset;
    copy.images = malloc((size_t)subset.count * 784);
    memcpy(copy.images, subset.images, (size_t)subset.count * 784);
    cr_assert_eq(sn_dataset_deskew(&copy, 2, NULL), SN_OK);
    /* Deskewed digits have (nearly) no slope left: the mean |slope| drops several-fold.
     * Rounding back to bytes leaves a little. */
    double before = 0, after = 0;
    for (int i = 0; i < subset.count; i++) {
        float a[S * S], b[S * S];
        for (int p = 0; p < S * S; p++)
            a[p] = subset.images[(size_t)i * 784 + p] / 255.0f, b[p] = copy.images[(size_t)i * 784 + p] / 255.0f;
        before += fabs(slope_of(a)), after += fabs(slope_of(b));
    }
    cr_assert(after < 0.25 * before, "mean |slope| %g -> %g", before / subset.count, after / subset.count);
    double p10, p50, p90;
    cr_assert_eq(sn_dataset_stroke_width(&copy, 0.1, 2, &p10, NULL), SN_OK);
    cr_assert_eq(sn_dataset_stroke_width(&copy, 0.5, 2, &p50, NULL), SN_OK);
    cr_assert_eq(sn_dataset_stroke_width(&copy, 0.9, 2, &p90, NULL), SN_OK);
    /* MNIST's pen: a median of ~2.4 pixels, 90% under ~3.4. */
    cr_assert(p10 < p50 && p50 < p90, "%g %g %g", p10, p50, p90);
    cr_assert(p50 > 1.8 && p50 < 3.0 && p90 > 2.6 && p90 < 4.0, "median %g, 90th percentile %g", p50, p90);
    free(copy.images);
}

Test(augment, drawn_digits_render_inside_the_canvas, .init = load, .fini = unload)
{
    float *canvas = malloc(sizeof(float) * SN_DRAWN_SIDE * SN_DRAWN_SIDE);
    for (int i = 0; i < 50; i++) {
        sn_drawn_style s, again;
        sn_drawn_style_random(7, i, &s);
        sn_drawn_style_random(7, i, &again);
        cr_assert(memcmp(&s, &again, sizeof s) == 0, "a style is a function of (seed, index)");
        cr_assert(s.pen >= 0.06f && s.pen <= 0.30f && s.height >= 90 && s.height <= 250);
        cr_assert_eq(sn_drawn_render(subset.images + (size_t)i * 784, &s, canvas, NULL), SN_OK);
        /* Nothing within 4 pixels of the border (the renderer keeps an 8-pixel margin
         * and shrinks a digit that would not fit), and real ink inside. */
        double ink = 0, border = 0;
        for (int y = 0; y < SN_DRAWN_SIDE; y++)
            for (int x = 0; x < SN_DRAWN_SIDE; x++) {
                const float v = canvas[y * SN_DRAWN_SIDE + x];
                ink += v;
                if (x < 4 || y < 4 || x >= SN_DRAWN_SIDE - 4 || y >= SN_DRAWN_SIDE - 4) border += v;
            }
        cr_assert(border == 0, "digit %d touches the border", i);
        cr_assert(ink > 200, "digit %d has %g ink", i, ink);
        float seen[S * S];
        cr_assert_eq(sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, NULL, seen, NULL), SN_OK);
    }
    const uint8_t blank[784] = { 0 };
    sn_drawn_style s;
    sn_drawn_style_random(7, 0, &s);
    sn_error err;
    cr_assert_eq(sn_drawn_render(blank, &s, canvas, &err), SN_EINVAL, "a blank digit has no skeleton");
    free(canvas);
}
