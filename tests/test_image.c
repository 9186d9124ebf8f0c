/* MNIST-style preprocessing, step by step, on synthetic images whose right answer is
 * known; and the PGM reader on good and bad files. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "scratchnet/image.h"
#include "test_util.h"

Test(image, area_resampling_is_exact_average)
{
    float src[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }, dst[4];
    sn_resample_area(dst, 2, 2, src, 4, 4);
    cr_assert_float_eq(dst[0], 2.5f, 1e-6); /* (0+1+4+5)/4 */
    cr_assert_float_eq(dst[3], 12.5f, 1e-6);
    /* 3 -> 2: each output covers 1.5 input pixels: (a + b/2) / 1.5. */
    float row[3] = { 3, 6, 9 }, out[2];
    sn_resample_area(out, 2, 1, row, 3, 1);
    cr_assert_float_eq(out[0], (3 + 3) / 1.5f, 1e-5);
    cr_assert_float_eq(out[1], (3 + 9) / 1.5f, 1e-5);
    /* Mass is conserved up to the area ratio. */
    float big[100 * 60], small[20 * 12];
    tu_fill(big, 6000, 3);
    double sb = 0, ss = 0;
    sn_resample_area(small, 20, 12, big, 100, 60);
    for (int i = 0; i < 6000; i++) sb += big[i];
    for (int i = 0; i < 240; i++) ss += small[i];
    cr_assert(fabs(sb / 25.0 - ss) < 1e-2, "mass %g vs %g", sb / 25.0, ss);
}

Test(image, centre_of_mass_and_bbox)
{
    float px[5 * 4] = { 0 };
    px[2 * 5 + 3] = 1; /* x=3, y=2 */
    double cx, cy;
    cr_assert(sn_center_of_mass(px, 5, 4, &cx, &cy));
    cr_assert_float_eq(cx, 3.5, 1e-9);
    cr_assert_float_eq(cy, 2.5, 1e-9);
    px[0] = 1; /* (0.5, 0.5) with equal mass: midpoint */
    sn_center_of_mass(px, 5, 4, &cx, &cy);
    cr_assert_float_eq(cx, 2.0, 1e-9);
    cr_assert_float_eq(cy, 1.5, 1e-9);
    int x0, y0, x1, y1;
    cr_assert(sn_ink_bbox(px, 5, 4, 0.5f, &x0, &y0, &x1, &y1));
    cr_assert(x0 == 0 && y0 == 0 && x1 == 4 && y1 == 3, "%d %d %d %d", x0, y0, x1, y1);
    float empty[4] = { 0 };
    cr_assert_not(sn_ink_bbox(empty, 2, 2, 0.1f, &x0, &y0, &x1, &y1));
    cr_assert_not(sn_center_of_mass(empty, 2, 2, &cx, &cy));
}

/* A w x h image of `paper` with a rectangle of `ink` at (rx, ry, rw, rh). */
static void rect_image(sn_image *img, int w, int h, float paper, float ink, int rx, int ry, int rw, int rh)
{
    cr_assert_eq(sn_image_create(img, w, h, NULL), SN_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            img->px[y * w + x] = x >= rx && x < rx + rw && y >= ry && y < ry + rh ? ink : paper;
}

Test(image, polarity_detected_both_ways)
{
    sn_image a, b;
    rect_image(&a, 30, 30, 1.0f, 0.0f, 10, 10, 5, 5); /* black ink on white paper */
    rect_image(&b, 30, 30, 0.0f, 1.0f, 10, 10, 5, 5); /* white ink on black */
    cr_assert_eq(sn_image_normalize_ink(&a), 1);
    cr_assert_eq(sn_image_normalize_ink(&b), 0);
    cr_assert(memcmp(a.px, b.px, 900 * sizeof(float)) == 0, "both polarities must normalise alike");
    cr_assert_eq(a.px[12 * 30 + 12], 1.0f);
    cr_assert_eq(a.px[0], 0.0f);
    sn_image_free(&a);
    /* Grey paper (0.8) with dark ink (0.2): inverted, the paper level (0.2) becomes 0
     * and the ink (0.8) maps to (0.8 - 0.2) / (1 - 0.2) = 0.75. */
    rect_image(&a, 30, 30, 0.8f, 0.2f, 3, 3, 4, 4);
    sn_image_normalize_ink(&a);
    cr_assert_float_eq(a.px[0], 0.0f, 1e-6);
    cr_assert_float_eq(a.px[4 * 30 + 4], 0.75f, 1e-6);
    sn_image_free(&a);
    sn_image_free(&b);
}

Test(image, mnist_pipeline_fits_20x20_and_centres_mass)
{
    /* A tall off-centre bar, dark on light, in a big image: like a drawn "1". */
    sn_image img;
    float out[784];
    rect_image(&img, 200, 150, 0.95f, 0.05f, 20, 10, 12, 120);
    cr_assert_eq(sn_image_to_mnist(&img, NULL, out, NULL), SN_OK);
    int x0, y0, x1, y1;
    cr_assert(sn_ink_bbox(out, 28, 28, 0.05f, &x0, &y0, &x1, &y1));
    cr_assert_eq(y1 - y0, 20, "longer side must be 20, got %d", y1 - y0);
    cr_assert_eq(x1 - x0, 2, "aspect ratio kept: 12/120*20 = 2 wide, got %d", x1 - x0);
    double cx, cy;
    sn_center_of_mass(out, 28, 28, &cx, &cy);
    cr_assert(fabs(cx - 14) <= 0.5 && fabs(cy - 14) <= 0.5, "centre of mass at (%g, %g)", cx, cy);
    float mx = 0;
    for (int i = 0; i < 784; i++) mx = out[i] > mx ? out[i] : mx;
    cr_assert_float_eq(mx, 1.0f, 1e-6, "strongest ink is full intensity");
    sn_image_free(&img);

    /* Wide and small: a 6x3 block becomes 20x10, upscaled. */
    rect_image(&img, 28, 28, 0.0f, 1.0f, 0, 0, 6, 3);
    cr_assert_eq(sn_image_to_mnist(&img, NULL, out, NULL), SN_OK);
    cr_assert(sn_ink_bbox(out, 28, 28, 0.05f, &x0, &y0, &x1, &y1));
    cr_assert(x1 - x0 == 20 && y1 - y0 == 10, "%dx%d", x1 - x0, y1 - y0);
    sn_image_free(&img);
}

Test(image, empty_input_is_reported_not_classified)
{
    sn_image img;
    float out[784];
    sn_error err;
    rect_image(&img, 50, 50, 1.0f, 1.0f, 0, 0, 0, 0);
    cr_assert_eq(sn_image_to_mnist(&img, NULL, out, &err), SN_EINVAL);
    cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
    img.px[10 * 50 + 10] = 0.9f; /* one faint-ish speck of dust on white paper */
    cr_assert_eq(sn_image_to_mnist(&img, NULL, out, &err), SN_EINVAL, "a single speck is not a digit");
    sn_image_free(&img);
}

Test(image, pgm_ascii_and_binary_read)
{
    const char *dir = tu_tmpdir();
    const char *p2 = tu_path(dir, "a.pgm"), *p5 = tu_path(dir, "b.pgm");
    FILE *f = fopen(p2, "w");
    fprintf(f, "P2\n# a comment\n3 2\n255\n0 128 255\n255 0 51\n");
    fclose(f);
    unsigned char bin[] = "P5 3 2 255\n\x00\x80\xff\xff\x00\x33";
    tu_write(p5, bin, sizeof bin - 1);
    sn_image a, b;
    sn_error err;
    cr_assert_eq(sn_image_read(&a, p2, &err), SN_OK, "%s", err.msg);
    cr_assert_eq(sn_image_read(&b, p5, &err), SN_OK, "%s", err.msg);
    cr_assert(a.w == 3 && a.h == 2 && b.w == 3 && b.h == 2);
    cr_assert(memcmp(a.px, b.px, 6 * sizeof(float)) == 0);
    cr_assert_float_eq(a.px[5], 0.2f, 1e-6);
    sn_image_free(&a);
    sn_image_free(&b);
}

Test(image, bad_images_refused_with_file_name)
{
    const char *dir = tu_tmpdir();
    struct { const char *name, *data, *needle; } cases[] = {
        { "trunc.pgm", "P5 10 10 255\nabc", "truncated" },
        { "huge.pgm", "P5 99999999 99999999 255\n", "PGM" },
        { "maxval.pgm", "P2 1 1 0\n0\n", "maxval" },
        { "over.pgm", "P2 1 1 10\n11\n", "above maxval" },
        { "text.txt", "hello", "not a PGM" },
        { "badpng.png", "\x89PNG\r\n\x1a\n\x00\x00junk", "PNG" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p = tu_path(dir, cases[i].name);
        tu_write(p, cases[i].data, strlen(cases[i].data) + (cases[i].name[0] == 'b' ? 4 : 0));
        sn_image img;
        sn_error err = { 0 };
        cr_assert_neq(sn_image_read(&img, p, &err), SN_OK, "%s accepted", cases[i].name);
        cr_assert(strstr(err.msg, cases[i].name) && strstr(err.msg, cases[i].needle), "%s: %s", cases[i].name, err.msg);
    }
}
