/* `scratchnet eval` reports a user can look at: the confusion matrix with per-class
 * accuracy, a PNG gallery of the misclassified digits, and JSON for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SN_HAVE_PNG
#include <png.h>
#endif

#include "cli.h"
#include "scratchnet/modelfile.h"

enum { CLASSES = 10 };

static void confusion_of(const sn_dataset *test, const uint8_t *pred, long m[CLASSES][CLASSES])
{
    memset(m, 0, sizeof(long) * CLASSES * CLASSES);
    for (int i = 0; i < test->count; i++) m[test->labels[i]][pred[i]]++;
}

static void print_confusion(FILE *f, long m[CLASSES][CLASSES])
{
    fprintf(f, "confusion (rows: true digit, columns: predicted; acc: the row's share on the diagonal)\n      ");
    for (int p = 0; p < CLASSES; p++) fprintf(f, "%6d", p);
    fprintf(f, "     acc\n");
    for (int t = 0; t < CLASSES; t++) {
        long row = 0;
        fprintf(f, "%6d", t);
        for (int p = 0; p < CLASSES; p++) fprintf(f, "%6ld", m[t][p]), row += m[t][p];
        fprintf(f, "  %.4f\n", row ? (double)m[t][t] / row : 0.0);
    }
}

static void print_json(FILE *f, const char *model, const sn_dataset *test, double loss, double acc,
                       long m[CLASSES][CLASSES], long errors)
{
    fprintf(f, "{\"model\": ");
    cli_json_string(f, model);
    fprintf(f, ", \"n\": %d, \"test_loss\": %.6f, \"test_acc\": %.6f, \"errors\": %ld,\n \"per_class_acc\": [",
            test->count, loss, acc, errors);
    for (int t = 0; t < CLASSES; t++) {
        long row = 0;
        for (int p = 0; p < CLASSES; p++) row += m[t][p];
        fprintf(f, "%s%.6f", t ? ", " : "", row ? (double)m[t][t] / row : 0.0);
    }
    fprintf(f, "],\n \"confusion\": [");
    for (int t = 0; t < CLASSES; t++) {
        fprintf(f, "%s[", t ? ",\n               " : "");
        for (int p = 0; p < CLASSES; p++) fprintf(f, "%s%ld", p ? ", " : "", m[t][p]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
}

/* A 3 x 5 pixel font for the gallery's captions: digits, '>', '%', '.', ' '. Each glyph
 * is 5 rows of 3 bits, the top row first, the left pixel the high bit. */
static const unsigned char *glyph(char c)
{
    static const unsigned char digits[10][5] = {
        { 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 3, 1, 7 }, { 5, 5, 7, 1, 1 },
        { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 2, 2 }, { 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
    };
    static const unsigned char gt[5] = { 4, 2, 1, 2, 4 }, pct[5] = { 5, 1, 2, 4, 5 }, dot[5] = { 0, 0, 0, 0, 2 },
                               blank[5] = { 0 };
    if (c >= '0' && c <= '9') return digits[c - '0'];
    return c == '>' ? gt : c == '%' ? pct : c == '.' ? dot : blank;
}

enum { ZOOM = 2, CELL_W = 62, CELL_H = 74, TEXT_Y = 61, GALLERY_MAX = 400 };

typedef struct canvas {
    int w, h;
    unsigned char *rgb;
} canvas;

static void put_text(canvas *cv, int x, int y, const char *s, const unsigned char colour[3])
{
    for (; *s; s++, x += 4 * ZOOM) {
        const unsigned char *g = glyph(*s);
        for (int gy = 0; gy < 5; gy++)
            for (int gx = 0; gx < 3; gx++)
                if (g[gy] & (4 >> gx))
                    for (int dy = 0; dy < ZOOM; dy++)
                        for (int dx = 0; dx < ZOOM; dx++) {
                            const int px = x + gx * ZOOM + dx, py = y + gy * ZOOM + dy;
                            if (px < cv->w && py < cv->h) memcpy(cv->rgb + ((size_t)py * cv->w + px) * 3, colour, 3);
                        }
    }
}

/* Most confident mistakes first. */
static const float *sort_prob;
static int by_confidence(const void *a, const void *b)
{
    const float x = sort_prob[*(const int *)a], y = sort_prob[*(const int *)b];
    return (x < y) - (x > y);
}

static int write_gallery(const char *path, const sn_dataset *test, const uint8_t *pred, const float *prob, long *shown)
{
#ifdef SN_HAVE_PNG
    int *idx = malloc(sizeof(int) * (size_t)(test->count ? test->count : 1)), n = 0;
    if (!idx) return 0;
    for (int i = 0; i < test->count; i++)
        if (pred[i] != test->labels[i]) idx[n++] = i;
    sort_prob = prob;
    qsort(idx, (size_t)n, sizeof(int), by_confidence);
    if (n > GALLERY_MAX) n = GALLERY_MAX;
    const int cols = n < 16 ? (n ? n : 1) : 16, rows = n ? (n + cols - 1) / cols : 1;
    canvas cv = { cols * CELL_W, rows * CELL_H, NULL };
    cv.rgb = malloc((size_t)cv.w * cv.h * 3);
    if (!cv.rgb) { free(idx); return 0; }
    memset(cv.rgb, 40, (size_t)cv.w * cv.h * 3);
    static const unsigned char truth[3] = { 90, 210, 120 }, wrong[3] = { 240, 100, 100 }, grey[3] = { 170, 170, 180 };
    for (int k = 0; k < n; k++) {
        const int i = idx[k], x0 = (k % cols) * CELL_W + 3, y0 = (k / cols) * CELL_H + 3;
        const uint8_t *img = test->images + (size_t)i * test->rows * test->cols;
        for (int y = 0; y < test->rows * ZOOM; y++)
            for (int x = 0; x < test->cols * ZOOM; x++)
                memset(cv.rgb + ((size_t)(y0 + y) * cv.w + x0 + x) * 3, img[(y / ZOOM) * test->cols + x / ZOOM], 3);
        char t[16], p[16], pc[16];
        int percent = (int)(prob[i] * 100.0f + 0.5f);
        percent = percent > 99 ? 99 : percent < 0 ? 0 : percent; /* two characters fit */
        snprintf(t, sizeof t, "%d", test->labels[i] % 10);
        snprintf(p, sizeof p, "%d", pred[i] % 10);
        snprintf(pc, sizeof pc, "%d%%", percent);
        const int ty = (k / cols) * CELL_H + TEXT_Y;
        put_text(&cv, x0, ty, t, truth);
        put_text(&cv, x0 + 4 * ZOOM, ty, ">", grey);
        put_text(&cv, x0 + 8 * ZOOM, ty, p, wrong);
        put_text(&cv, x0 + 14 * ZOOM, ty, pc, grey);
    }
    /* Through a temporary file and a rename, like every file the programs write. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION, im.width = (png_uint_32)cv.w, im.height = (png_uint_32)cv.h;
    im.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&im, tmp, 0, cv.rgb, cv.w * 3, NULL) && rename(tmp, path) == 0;
    if (!ok) remove(tmp);
    free(cv.rgb), free(idx);
    *shown = n;
    return ok;
#else
    (void)path, (void)test, (void)pred, (void)prob, (void)shown;
    return 0;
#endif
}

int cli_eval_report(const char *prog, const char *model, const sn_dataset *test, const uint8_t *pred,
                    const float *prob, double loss, double acc, int confusion, const char *errors_png, int json)
{
    long m[CLASSES][CLASSES], errors = 0;
    confusion_of(test, pred, m);
    for (int i = 0; i < test->count; i++) errors += pred[i] != test->labels[i];
    if (json) print_json(stdout, model, test, loss, acc, m, errors);
    else if (confusion) print_confusion(stdout, m);
    if (errors_png) {
        long shown = 0;
        if (!write_gallery(errors_png, test, pred, prob, &shown)) {
            fprintf(stderr, "%s: --errors: cannot write %s\n", prog, errors_png);
            return 0;
        }
        fprintf(stderr, "%s: wrote %s: %ld of the %ld misclassified test digits, most confident first "
                        "(caption: true > predicted, its probability)\n", prog, errors_png, shown, errors);
    }
    return 1;
}

int cli_png_supported(void)
{
#ifdef SN_HAVE_PNG
    return 1;
#else
    return 0;
#endif
}
