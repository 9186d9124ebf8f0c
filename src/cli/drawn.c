/* scratchnet drawn — a model's accuracy on synthesised drawn digits (drawn.h): MNIST test
 * digits re-inked along their skeletons in random pen widths, sizes, slants and
 * positions on draw's canvas, then read through predict's pipeline with the model's own
 * preprocessing. Prints the accuracy, overall and by pen width, slant and size; writes
 * the per-bin table (--csv, for plots/drawn.gp) and the canvases (--out, as PGM). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "scratchnet/drawn.h"
#include "scratchnet/gemm.h"
#include "scratchnet/image.h"
#include "scratchnet/layers.h"
#include "scratchnet/model.h"
#include "scratchnet/modelfile.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char *PROG = "scratchnet drawn";

/* Bins of the report: by pen width (stroke / height), |slant| and height. */
typedef struct bin {
    const char *group, *name;
    float lo, hi;
    int n, right;
} bin;

static float bin_value(const bin *b, const sn_drawn_style *s)
{
    return !strcmp(b->group, "pen") ? s->pen : !strcmp(b->group, "slant") ? fabsf(s->slant) : s->height;
}

static int write_pgm(const char *dir, int index, int label, const float *canvas, sn_error *err)
{
    /* Dark ink on white paper, as a scan or a paint program would save it. */
    enum { S = SN_DRAWN_SIDE };
    char path[4096], head[32];
    const int hl = snprintf(head, sizeof head, "P5\n%d %d\n255\n", S, S);
    unsigned char *buf = malloc((size_t)hl + S * S);
    if (!buf) return sn_fail(err, SN_ENOMEM, "out of memory");
    memcpy(buf, head, (size_t)hl);
    for (int i = 0; i < S * S; i++) buf[hl + i] = (unsigned char)lrintf(255.0f * (1.0f - canvas[i]));
    snprintf(path, sizeof path, "%s/drawn-%05d-label%d.pgm", dir, index, label);
    const int rc = sn_write_file_atomic(path, buf, (size_t)hl + S * S, err);
    free(buf);
    return rc;
}

int cli_cmd_drawn(int argc, char **argv)
{
    const char *model_path = CLI_DEFAULT_MODEL, *data = NULL, *out = NULL, *csv = NULL;
    int count = 2000, threads = 1, width_limit = -1; /* -1: as the model file says; 2: width_px */
    float width_px = 0;
    uint64_t seed = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--version")) {
            cli_print_version("scratchnet");
            return 0;
        }
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: scratchnet drawn [--model FILE] [--data DIR] [--count 2000] [--seed 1] [--threads N]\n"
                   "                        [--width-limit on|off|PX] [--csv FILE] [--out DIR]\n"
                   "Accuracy on digits drawn the way people draw, synthesised from the first COUNT MNIST test\n"
                   "digits (their skeletons re-inked with draw's brush: pen width 0.06-0.30 of the height,\n"
                   "height 90-250 px, slant, rotation, aspect, off-centre, on a 280x280 canvas), read through\n"
                   "predict's pipeline with the model's preprocessing (--width-limit off: without its stroke\n"
                   "width limit; PX: with this one instead). --csv writes the per-bin table; --out writes the canvases as PGM.\n");
            return 0;
        }
        if (i + 1 >= argc || strncmp(f, "--", 2) != 0 || !strncmp(argv[i + 1], "--", 2)) {
            if (strncmp(f, "--", 2)) fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, f);
            else fprintf(stderr, "%s: %s needs a value\n", PROG, f);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(f, "--model")) model_path = v;
        else if (!strcmp(f, "--data")) data = v;
        else if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--csv")) csv = v;
        else if (!strcmp(f, "--width-limit")) {
            char *end;
            width_px = strtof(v, &end);
            if (!strcmp(v, "on") || !strcmp(v, "off")) width_limit = !strcmp(v, "on");
            else if (end != v && !*end && width_px >= 0.5f && width_px <= 20.0f) width_limit = 2;
            else {
                fprintf(stderr, "%s: --width-limit: '%s' is not allowed; expected on, off or a width in pixels "
                                "0.5..20\n", PROG, v);
                return EXIT_USAGE;
            }
        }
        else if (!strcmp(f, "--count")) { if (!cli_int(PROG, f, v, 1, 10000, &count)) return EXIT_USAGE; }
        else if (!strcmp(f, "--threads")) { if (!cli_int(PROG, f, v, 1, 1024, &threads)) return EXIT_USAGE; }
        else if (!strcmp(f, "--seed")) { if (!cli_u64(PROG, f, v, &seed)) return EXIT_USAGE; }
        else {
            fprintf(stderr, "%s: unknown flag '%s'\n", PROG, f);
            return EXIT_USAGE;
        }
    }
    if (csv && !cli_check_output(PROG, "--csv", csv, 0)) return EXIT_USAGE;
    struct stat st;
    if (out && (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "%s: --out: %s is not an existing directory\n", PROG, out);
        return EXIT_USAGE;
    }
    sn_error err;
    if (sn_isa_init(&err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        return EXIT_USAGE;
    }
    sn_net m;
    if (sn_model_load(&m, model_path, &err)) {
        fprintf(stderr, "%s: %s\n", PROG, err.msg);
        return EXIT_RUNTIME;
    }
    if (m.sizes[0] != 784 || m.sizes[m.nlayers] != 10) {
        fprintf(stderr, "%s: %s: network has %d inputs and %d outputs, digits need 784 and 10\n", PROG, model_path,
                m.sizes[0], m.sizes[m.nlayers]);
        sn_net_free(&m);
        return EXIT_RUNTIME;
    }
    if (width_limit == 1 && !(m.pre.max_width > 0)) {
        fprintf(stderr, "%s: --width-limit on: %s records no stroke width limit (trained before it existed)\n", PROG,
                model_path);
        sn_net_free(&m);
        return EXIT_USAGE;
    }
    if (width_limit == 0) m.pre.max_width = 0;
    if (width_limit == 2) m.pre.max_width = width_px; /* e.g. MNIST's 3.37 on a model that predates the limit */
    sn_dataset test;
    if (!cli_load_mnist(PROG, cli_data_dir(data), NULL, &test)) {
        sn_net_free(&m);
        return EXIT_RUNTIME;
    }
    if (count > test.count) count = test.count;
    int rc = EXIT_RUNTIME;
    float *x = malloc(sizeof(float) * 784 * (size_t)count);
    sn_drawn_style *style = malloc(sizeof *style * (size_t)count);
    int *pred = malloc(sizeof(int) * (size_t)count);
    sn_forward_ctx ctx = { 0 };
    int failed = 0;
    if (!x || !style || !pred || sn_forward_ctx_create(&ctx, &m, 256, 1, &err)) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        goto done;
    }
    /* Render and preprocess in parallel; each image's style comes from (seed, index). */
#pragma omp parallel num_threads(threads)
    {
        float *canvas = malloc(sizeof(float) * SN_DRAWN_SIDE * SN_DRAWN_SIDE);
#pragma omp for schedule(dynamic, 8)
        for (int i = 0; i < count; i++) {
            sn_error e;
            sn_drawn_style_random(seed, i, &style[i]);
            int bad = !canvas || sn_drawn_render(test.images + (size_t)i * 784, &style[i], canvas, &e) ||
                      sn_canvas_to_mnist(canvas, SN_DRAWN_SIDE, SN_DRAWN_SIDE, &m.pre, x + (size_t)i * 784, &e);
            if (!bad && out) bad = write_pgm(out, i, test.labels[i], canvas, &e);
            if (bad) {
#pragma omp critical
                {
                    if (!failed) fprintf(stderr, "%s: test digit %d: %s\n", PROG, i, canvas ? e.msg : "out of memory");
                    failed = 1;
                }
            }
        }
        free(canvas);
    }
    if (failed) goto done;
    for (int first = 0; first < count; first += ctx.capacity) {
        const int n = count - first < ctx.capacity ? count - first : ctx.capacity;
        memcpy(ctx.act[0], x + (size_t)first * 784, sizeof(float) * 784 * (size_t)n);
        const float *logits = sn_net_forward(&m, &ctx, n);
        for (int r = 0; r < n; r++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (logits[r * 10 + k] > logits[r * 10 + best]) best = k;
            pred[first + r] = best;
        }
    }
    bin bins[] = {
        { "pen", "thin", 0.06f, 0.12f, 0, 0 },     { "pen", "medium", 0.12f, 0.20f, 0, 0 },
        { "pen", "thick", 0.20f, 0.26f, 0, 0 },    { "pen", "very thick", 0.26f, 0.31f, 0, 0 },
        { "slant", "upright", 0.0f, 0.2f, 0, 0 },  { "slant", "slanted", 0.2f, 0.46f, 0, 0 },
        { "height", "small", 90, 150, 0, 0 },      { "height", "large", 150, 251, 0, 0 },
    };
    const int nbins = (int)(sizeof bins / sizeof bins[0]);
    int right = 0;
    for (int i = 0; i < count; i++) {
        const int ok = pred[i] == test.labels[i];
        right += ok;
        for (int b = 0; b < nbins; b++) {
            const float v = bin_value(&bins[b], &style[i]);
            if (v >= bins[b].lo && v < bins[b].hi) bins[b].n++, bins[b].right += ok;
        }
    }
    printf("drawn_acc=%.4f n=%d model=%s seed=%llu\n", (double)right / count, count, model_path,
           (unsigned long long)seed);
    for (int b = 0; b < nbins; b++)
        printf("  %-6s %-10s [%6.2f, %6.2f)  n=%-5d acc=%.4f\n", bins[b].group, bins[b].name, bins[b].lo, bins[b].hi,
               bins[b].n, bins[b].n ? (double)bins[b].right / bins[b].n : 0.0);
    if (csv) {
        char *text = malloc(4096);
        size_t len = 0;
        if (!text) { fprintf(stderr, "%s: out of memory\n", PROG); goto done; }
        len += (size_t)snprintf(text + len, 4096 - len, "group,bin,lo,hi,n,acc\nall,all,0,0,%d,%.6f\n", count,
                                (double)right / count);
        for (int b = 0; b < nbins; b++)
            len += (size_t)snprintf(text + len, 4096 - len, "%s,%s,%g,%g,%d,%.6f\n", bins[b].group, bins[b].name,
                                    bins[b].lo, bins[b].hi, bins[b].n, bins[b].n ? (double)bins[b].right / bins[b].n : 0.0);
        const int w = sn_write_file_atomic(csv, text, len, &err);
        free(text);
        if (w) { fprintf(stderr, "%s: --csv: %s\n", PROG, err.msg); goto done; }
    }
    rc = 0;
done:
    sn_forward_ctx_free(&ctx);
    free(x);
    free(style);
    free(pred);
    sn_dataset_free(&test);
    sn_net_free(&m);
    return rc;
}
