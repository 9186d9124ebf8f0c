/* bench --gemm: every product shape the MLP multiplies at batch 32, 64 and 128, the
 * CNN presets' products, plus one large square, for each of our ISA paths and thread
 * counts, validated against the reference before timing; OpenBLAS and BLIS rows beside
 * ours when the libraries are installed (loaded with dlopen, so the product never links
 * a BLAS). A convolution's product is raced as each side would run it: ours gathered
 * from the images in place (conv.c), the BLAS on the materialised patch matrix (its
 * im2col copy untimed: the libraries' best case). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "stats.h"
#include "cli.h"
#include "scratchnet/gemm.h"
#include "scratchnet/train.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* A convolution's product as the trainer runs it (conv.c): gathered from `images`
 * images h x w x c with K x K kernels ('valid'; a 'same' layer gathers from bordered
 * copies, which is this with h and w grown by K - 1), its patch matrix G (P x E) as
 * op(A), or G^T (E x P) if transposed: a weight gradient. */
typedef struct conv_geom {
    int images, h, w, c, K, transposed;
} conv_geom;

typedef struct gemm_case {
    sn_trans ta, tb;
    int m, n, k;
    const char *what; /* a CSV field as it is: no commas */
    conv_geom conv;   /* images > 0: ours runs sn_gemm_gathered_local on X; the BLAS the stored op(A) */
    const float *X;   /* set while the case runs: the images and the offset tables */
    const int *roff, *koff;
} gemm_case;

/* CBLAS prototype, resolved at run time. */
typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);
typedef struct blas_lib {
    const char *name;
    void *handle;
    cblas_sgemm_fn sgemm;
    void (*set_threads)(int);
} blas_lib;

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static void (*blis_set)(long);
static void blis_set_threads(int n) { if (blis_set) blis_set(n); }

static int load_blas(blas_lib *b, const char *name, const char *const *sonames, const char *threads_sym)
{
    memset(b, 0, sizeof *b);
    b->name = name;
    for (int i = 0; sonames[i] && !b->handle; i++) b->handle = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (!b->handle) return 0;
    *(void **)&b->sgemm = dlsym(b->handle, "cblas_sgemm");
    if (!strcmp(name, "blis")) {
        *(void **)&blis_set = dlsym(b->handle, threads_sym);
        b->set_threads = blis_set_threads;
    } else {
        *(void **)&b->set_threads = dlsym(b->handle, threads_sym);
    }
    return b->sgemm != NULL;
}

/* n floats, 64-byte aligned (NULL if out of memory). */
static float *aligned_floats(size_t n)
{
    return aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
}

static gemm_case plain_case(sn_trans ta, sn_trans tb, int m, int n, int k, const char *what)
{
    gemm_case c = { .ta = ta, .tb = tb, .m = m, .n = n, .k = k, .what = what };
    return c;
}

/* `reps` gathered products split as the trainer splits one: each thread its own rows of
 * C, in a team opened once for all of them with a barrier after each product, as the
 * trainer opens its team once for many steps and waits between layers (train.c). A team
 * opened per product would time OpenMP's fork and join (~2.5 us with two threads), not
 * the product (a one-image weight gradient takes ~2 us). */
static void run_gathered(const gemm_case *c, const float *B, float *C, int reps)
{
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        int tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(), nth = omp_get_num_threads();
#endif
        const int lo = (int)((long)c->m * tid / nth), hi = (int)((long)c->m * (tid + 1) / nth);
        for (int r = 0; r < reps; r++) {
            sn_gemm_gathered_local(hi - lo, c->n, c->k, c->X, c->roff + lo, c->koff, B, c->n, 0.0f,
                                   C + (size_t)lo * c->n, c->n, NULL);
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
    }
}

static double run_ours(const gemm_case *c, const float *A, const float *B, float *C, float *ws, int reps)
{
    int lda = c->ta == SN_N ? c->k : c->m, ldb = c->tb == SN_N ? c->n : c->k;
    double t0 = sn_now();
    if (c->conv.images)
        run_gathered(c, B, C, reps);
    else
        for (int r = 0; r < reps; r++)
            sn_gemm_ws(c->ta, c->tb, c->m, c->n, c->k, A, lda, B, ldb, 0.0f, C, c->n, NULL, ws);
    return sn_now() - t0;
}

/* A conv case's images and tables (as conv.c's gather_tables), and its stored op(A),
 * the materialised patches the BLAS multiply. Returns 0 if out of memory. */
static int conv_setup(gemm_case *c, float *A, float **X, int **tables)
{
    const conv_geom *g = &c->conv;
    const int oh = g->h - g->K + 1, ow = g->w - g->K + 1, P = oh * ow, E = g->K * g->K * g->c;
    const int stride = g->h * g->w * g->c;
    const size_t xn = (size_t)g->images * stride;
    *X = aligned_floats(xn), *tables = malloc(sizeof(int) * ((size_t)g->images * P + E));
    if (!*X || !*tables) return 0;
    for (size_t i = 0; i < xn; i++) (*X)[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    int *pix = *tables, *pos = pix + (size_t)g->images * P;
    for (int r = 0; r < g->images; r++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) pix[r * P + y * ow + x] = r * stride + (y * g->w + x) * g->c;
    for (int e = 0; e < E; e++) pos[e] = ((e / g->c) / g->K * g->w + (e / g->c) % g->K) * g->c + e % g->c;
    c->X = *X, c->roff = g->transposed ? pos : pix, c->koff = g->transposed ? pix : pos;
    for (int i = 0; i < c->m; i++)
        for (int p = 0; p < c->k; p++) {
            const float v = c->X[c->roff[i] + c->koff[p]];
            if (c->ta == SN_N)
                A[(size_t)i * c->k + p] = v;
            else
                A[(size_t)p * c->m + i] = v;
        }
    return 1;
}

static double run_blas(const blas_lib *b, const gemm_case *c, const float *A, const float *B, float *C, int reps)
{
    int lda = c->ta == SN_N ? c->k : c->m, ldb = c->tb == SN_N ? c->n : c->k;
    double t0 = sn_now();
    for (int r = 0; r < reps; r++)
        b->sgemm(CBLAS_ROW_MAJOR, c->ta ? CBLAS_TRANS : CBLAS_NO_TRANS, c->tb ? CBLAS_TRANS : CBLAS_NO_TRANS, c->m,
                 c->n, c->k, 1.0f, A, lda, B, ldb, 0.0f, C, c->n);
    return sn_now() - t0;
}

enum { TRIALS = 9, MAX_IMPLS = 8 };

/* One implementation under test: one of our ISAs, or a BLAS. */
typedef struct impl {
    const blas_lib *lib; /* NULL: ours */
    sn_isa isa;
    int reps, valid;
    double res, g[TRIALS];
} impl;

static double run_impl(const impl *p, int threads, const gemm_case *c, const float *A, const float *B, float *C,
                       float *ws, int reps)
{
    if (p->lib) {
        if (p->lib->set_threads) p->lib->set_threads(threads);
        return run_blas(p->lib, c, A, B, C, reps);
    }
    sn_isa_force(p->isa, NULL);
    return run_ours(c, A, B, C, ws, reps);
}

/* Median GFLOP/s of TRIALS trials of >= ~20 ms each, taken in ROUNDS rounds that visit
 * every implementation in turn (3 trials each, after a pause and one untimed call). A
 * burst from a neighbour on this shared machine then hits all implementations alike,
 * while the thread pools of OpenMP, OpenBLAS and BLIS do not interfere with each
 * other's timed calls. */
enum { ROUNDS = 3 };

static void measure_all(impl *im, int n, int threads, const gemm_case *c, const float *A, const float *B, float *C,
                        float *ws)
{
    const double flops = 2.0 * c->m * c->n * c->k;
    for (int i = 0; i < n; i++) {
        if (!im[i].valid) continue;
        im[i].reps = 1;
        while (run_impl(&im[i], threads, c, A, B, C, ws, im[i].reps) < 0.02 && im[i].reps < (1 << 24)) im[i].reps *= 2;
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int j = 0; j < n; j++) {
            /* Each round starts with a different implementation, and every block starts
             * after a pause: OpenBLAS's worker threads busy-wait for a long time after a
             * call (and OpenMP's for a short one), and would otherwise steal cycles from
             * whichever implementation happens to be timed next. */
            const int i = (j + r) % n;
            if (!im[i].valid) continue;
            const struct timespec settle = { 0, 150000000L };
            nanosleep(&settle, NULL);
            run_impl(&im[i], threads, c, A, B, C, ws, 1);
            for (int t = r * (TRIALS / ROUNDS); t < (r + 1) * (TRIALS / ROUNDS); t++)
                im[i].g[t] = flops * im[i].reps / run_impl(&im[i], threads, c, A, B, C, ws, im[i].reps) * 1e-9;
        }
    for (int i = 0; i < n; i++) stats_sort(im[i].g, TRIALS);
}

/* Max |C - R| / (k * u * max|a||b| sum) style normalised residual, as BLIS reports:
 * ~1 means float-rounding level; anything above 10 is a wrong result. */
static double residual(const gemm_case *c, const float *A, const float *B, const float *C, const float *R)
{
    double worst = 0;
    int lda = c->ta == SN_N ? c->k : c->m, ldb = c->tb == SN_N ? c->n : c->k;
    for (int i = 0; i < c->m; i += 1 + c->m / 64)
        for (int j = 0; j < c->n; j++) {
            double mag = 0;
            for (int p = 0; p < c->k; p++) {
                float a = c->ta == SN_N ? A[(size_t)i * lda + p] : A[(size_t)p * lda + i];
                float bb = c->tb == SN_N ? B[(size_t)p * ldb + j] : B[(size_t)j * ldb + p];
                mag += fabs((double)a * bb);
            }
            double r = fabs((double)C[(size_t)i * c->n + j] - R[(size_t)i * c->n + j]) / (c->k * 0x1.0p-24 * mag + 1e-30);
            if (r > worst) worst = r;
        }
    return worst;
}

int bench_gemm_main(int argc, char **argv)
{
    int threads[8], nthreads = 0;
    const char *csv_path = NULL;
    int no_blas = 0, quick = 0, only_batch = 0;
    const char *only_isa = NULL, *shapes = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gemm")) continue;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!(nthreads = bench_int_list("--threads", argv[++i], 1, 256, threads, 8))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv_path = argv[++i];
        } else if (!strcmp(argv[i], "--no-blas")) {
            no_blas = 1;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            only_isa = argv[++i];
        } else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
            shapes = argv[++i];
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (!cli_int("bench", "--batch", argv[++i], 1, 100000, &only_batch)) return EXIT_USAGE;
        } else {
            fprintf(stderr, "bench --gemm: unknown flag or missing value '%s'; expected --threads 1,2 --csv FILE --no-blas "
                    "--isa NAME --batch N --quick --shapes OP:MxNxK,...\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!nthreads) threads[0] = 1, threads[1] = 2, nthreads = 2;
    if (csv_path && !cli_check_output("bench", "--csv", csv_path, 0)) return EXIT_USAGE;
    sn_error err;
    if (sn_isa_init(&err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return EXIT_USAGE;
    }
    sn_isa isas[SN_ISA_COUNT];
    int nisa = 0, named = 0;
    for (int i = SN_ISA_COUNT - 1; i >= 0; i--) {
        const int match = !only_isa || !strcmp(only_isa, sn_isa_name((sn_isa)i));
        named |= match;
        if (match && sn_isa_supported((sn_isa)i)) isas[nisa++] = (sn_isa)i;
    }
    if (only_isa && !nisa) {
        char names[128];
        sn_isa_names(names, sizeof names, ", ", " or ");
        fprintf(stderr, "bench: --isa: '%s' is %s%s\n", only_isa,
                named ? "not supported by this CPU or build" : "not a kernel ISA; expected ", named ? "" : names);
        return EXIT_USAGE;
    }

    const sn_isa best = sn_isa_active();
    FILE *csv = NULL;
    if (csv_path) {
        if (!(csv = fopen(csv_path, "w"))) {
            fprintf(stderr, "bench: --csv: cannot write %s\n", csv_path);
            return EXIT_RUNTIME;
        }
        bench_write_provenance(csv, "bench --gemm");
        fprintf(csv, "case,op,m,n,k,what,isa,threads,gflops,residual,of_peak\n");
    }

    blas_lib libs[2];
    int nlibs = 0;
#ifdef SN_NO_BLAS_COMPARE
    if (!no_blas) printf("# BLAS comparison disabled at build time (-Dblas_compare=disabled)\n");
    no_blas = 1;
#endif
    if (!no_blas) {
        const char *coretype = bench_set_openblas_coretype();   /* before the libraries load */
        const char *blis_arch = bench_set_blis_arch();
        static const char *const ob[] = { "libopenblas.so.0", "libopenblas.so", NULL };
        static const char *const bl[] = { "libblis.so.4", "libblis.so", NULL };
        if (load_blas(&libs[nlibs], "openblas", ob, "openblas_set_num_threads")) {
            printf("# openblas: loaded with %s\n", coretype);
            if (csv) fprintf(csv, "# openblas: loaded with %s\n", coretype);
            nlibs++;
        } else {
            printf("# openblas: not installed (apt-get install libopenblas-dev) - no openblas rows\n");
        }
        if (load_blas(&libs[nlibs], "blis", bl, "bli_thread_set_num_threads")) {
            printf("# blis: loaded with %s\n", blis_arch);
            if (csv) fprintf(csv, "# blis: loaded with %s\n", blis_arch);
            nlibs++;
        } else {
            printf("# blis: not installed (apt-get install libblis-dev) - no blis rows\n");
        }
    }
    printf("# cpu: %s; build: %s; commit %s\n", cli_cpu_model(), cli_build_info(), cli_commit());

    enum { MAX_SHAPES = 64 };
    gemm_case cases[48 + MAX_SHAPES]; /* 7 per batch size, 3 batch sizes, the square, the CNNs' 14; or --shapes */
    int nc = 0;
    /* --shapes nn:1024x1024x1024,nt:512x1024x1024: those products only, in that order. */
    for (const char *p = shapes; p && *p;) {
        char op[3] = { 0 };
        long v[3];
        int used = 0;
        if (nc == MAX_SHAPES || sscanf(p, "%2[nt]:%ldx%ldx%ld%n", op, &v[0], &v[1], &v[2], &used) != 4 ||
            strlen(op) != 2 || (p[used] != ',' && p[used] != '\0') || (p[used] == ',' && !p[used + 1]) || v[0] < 1 || v[1] < 1 || v[2] < 1 ||
            v[0] > 16384 || v[1] > 16384 || v[2] > 16384) {
            fprintf(stderr, "bench --gemm: --shapes: '%.*s' is not allowed; expected OP:MxNxK with OP one of nn, nt, "
                            "tn, tt and each size 1..16384, separated by commas (at most %d), e.g. "
                            "nn:1024x1024x1024,nt:512x1024x1024\n",
                    (int)strcspn(p, ","), p, MAX_SHAPES);
            return EXIT_USAGE;
        }
        cases[nc++] = plain_case(op[0] == 't' ? SN_T : SN_N, op[1] == 't' ? SN_T : SN_N, (int)v[0], (int)v[1],
                                   (int)v[2], "--shapes");
        p += used + (p[used] == ',');
    }
    if (shapes) only_batch = -1, quick = 1; /* the shapes alone */
    static const int batches[] = { 32, 64, 128 };
    for (int b = 0; b < 3 && only_batch >= 0; b++) {
        int B = batches[b];
        if (only_batch && B != only_batch) continue;
        /* The products a training step of 784-50-25-10 runs (W stored in x out) ... */
        cases[nc++] = plain_case(SN_N, SN_N, B, 50, 784, "fwd1 X*W1");
        cases[nc++] = plain_case(SN_T, SN_N, 784, 50, B, "dW1 = X^T*dY1");
        cases[nc++] = plain_case(SN_N, SN_N, B, 25, 50, "fwd2 H1*W2");
        cases[nc++] = plain_case(SN_N, SN_T, B, 50, 25, "dX2 = dY2*W2^T");
        cases[nc++] = plain_case(SN_T, SN_N, 50, 25, B, "dW2 = H1^T*dY2");
        /* ... and the first layer's two with W stored out x in, as nn.Linear keeps it. */
        cases[nc++] = plain_case(SN_N, SN_T, B, 50, 784, "fwd1 X*W1^T (W1 out x in)");
        cases[nc++] = plain_case(SN_T, SN_N, 50, 784, B, "dW1 = dY1^T*X (out x in)");
    }
    if (only_batch >= 0 && (!only_batch || only_batch == 128)) {
        /* The products a training step of --net cnn and --net lenet5 runs (conv.c: a
         * forward product and an input gradient stack 4 images (W read as B^T there), the
         * first layer's weight gradient is a 4-image chunk's (train.c, chunked_first), the
         * second's one image's, accumulated over the chunk's 4;
         * dense.c: dW in groups of 128 rows); batch 128. */
#define PLAIN_CASE(ta_, tb_, m_, n_, k_, what_) { .ta = ta_, .tb = tb_, .m = m_, .n = n_, .k = k_, .what = what_ }
#define CONV_CASE(ta_, tb_, m_, n_, k_, what_, ...)                                                                   \
    { .ta = ta_, .tb = tb_, .m = m_, .n = n_, .k = k_, .what = what_, .conv = { __VA_ARGS__ } }
        static const gemm_case cnn_cases[] = {
            CONV_CASE(SN_N, SN_N, 4 * 676, 32, 9, "cnn conv1 fwd col*W (4 images; ours gathered)", 4, 28, 28, 1, 3, 0),
            CONV_CASE(SN_N, SN_N, 9, 32, 4 * 676, "cnn conv1 dW = col^T*dY (4 images; ours gathered)", 4, 28, 28, 1, 3, 1),
            CONV_CASE(SN_N, SN_N, 4 * 121, 64, 288, "cnn conv2 fwd col*W (4 images; ours gathered)", 4, 13, 13, 32, 3, 0),
            PLAIN_CASE(SN_N, SN_T, 4 * 121, 288, 64, "cnn conv2 dcol = dY*W^T (4 images)"),
            CONV_CASE(SN_T, SN_N, 288, 64, 121, "cnn conv2 dW = col^T*dY (one image; ours gathered)", 1, 13, 13, 32, 3, 1),
            PLAIN_CASE(SN_N, SN_N, 128, 128, 1600, "cnn dense1 fwd"),
            PLAIN_CASE(SN_N, SN_T, 128, 1600, 128, "cnn dense1 dX = dY*W^T"),
            PLAIN_CASE(SN_T, SN_N, 128, 128, 128, "cnn dense1 dW (128 rows)"),
            CONV_CASE(SN_N, SN_N, 4 * 784, 6, 25, "lenet5 conv1 fwd (4 images; ours gathered)", 4, 32, 32, 1, 5, 0),
            PLAIN_CASE(SN_T, SN_N, 6, 25, 4 * 784, "lenet5 conv1 dW^T = dY^T*col (4 images)"),
            CONV_CASE(SN_N, SN_N, 4 * 100, 16, 150, "lenet5 conv2 fwd (4 images; ours gathered)", 4, 14, 14, 6, 5, 0),
            PLAIN_CASE(SN_N, SN_T, 4 * 100, 150, 16, "lenet5 conv2 dcol (4 images)"),
            CONV_CASE(SN_T, SN_N, 150, 16, 100, "lenet5 conv2 dW (one image; ours gathered)", 1, 14, 14, 6, 5, 1),
            PLAIN_CASE(SN_N, SN_N, 128, 120, 400, "lenet5 dense1 fwd"),
        };
#undef PLAIN_CASE
#undef CONV_CASE
        for (size_t i = 0; i < sizeof cnn_cases / sizeof *cnn_cases; i++) cases[nc++] = cnn_cases[i];
    }
    if (!quick) cases[nc++] = plain_case(SN_N, SN_N, 1024, 1024, 1024, "large square");

    /* The ceiling each row is a fraction of, measured in this run, per ISA and team. */
    double peak[SN_ISA_COUNT][8] = { { 0 } };
    int over_ceiling = 0;
    for (int ii = 0; ii < nisa; ii++) {
        /* Not for the portable kernels: the compiler vectorises them with SSE where it
         * can, so no one-float-per-instruction ceiling bounds them. */
        if (isas[ii] == SN_ISA_SCALAR) continue;
        sn_isa_force(isas[ii], NULL);
        char line[512];
        int len = snprintf(line, sizeof line, "# fma peak, register-only loop, GFLOP/s: %s", sn_isa_name(isas[ii]));
        for (int ti = 0; ti < nthreads && len < (int)sizeof line; ti++) {
            double total = 0.0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads[ti]) reduction(+ : total)
#endif
            total += sn_isa_peak_gflops(0.1);
            /* SCRATCHNET_FMA_CEILING=G: the ceiling is G GFLOP/s per thread instead of
             * the measurement (a machine's known peak; the tests' way to a full one). */
            const char *given = getenv("SCRATCHNET_FMA_CEILING");
            if (given && atof(given) > 0) total = atof(given) * threads[ti];
            peak[isas[ii]][ti] = total;
            len += snprintf(line + len, sizeof line - (size_t)len, "%s %.1f at %d thread%s", ti ? "," : "", total,
                            threads[ti], threads[ti] > 1 ? "s" : "");
        }
        printf("%s\n", line);
        if (csv) fprintf(csv, "%s\n", line);
    }
    sn_isa_force(best, NULL);

    int failures = 0;
    for (int ci = 0; ci < nc; ci++) {
        gemm_case *c = &cases[ci];
        size_t an = (size_t)c->m * c->k, bn = (size_t)c->k * c->n, cn = (size_t)c->m * c->n;
        /* 64-byte aligned, as the trainer's buffers are (model.c): a malloc'd C 16 bytes
         * off a line splits every vector store in two (cnn conv1 fwd: 141 -> 123 GFLOP/s). */
        float *A = aligned_floats(an), *B = aligned_floats(bn), *C = aligned_floats(cn), *R = aligned_floats(cn);
        float *X = NULL;
        int *tables = NULL;
        size_t wsn = sn_gemm_workspace(c->ta, c->tb, c->m, c->n, c->k);
        float *ws = aligned_floats(wsn + 16);
        if (!A || !B || !C || !R || !ws || (c->conv.images && !conv_setup(c, A, &X, &tables))) {
            fprintf(stderr, "bench: out of memory\n");
            return EXIT_RUNTIME;
        }
        for (size_t i = 0; i < an && !c->conv.images; i++) A[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        for (size_t i = 0; i < bn; i++) B[i] = (float)((i * 40503u + 7) % 1000) / 500.0f - 1.0f;
        sn_gemm_ref(c->ta, c->tb, c->m, c->n, c->k, A, c->ta == SN_N ? c->k : c->m, B, c->tb == SN_N ? c->n : c->k,
                    0.0f, R, c->n, NULL);
        char opname[3] = { c->ta ? 't' : 'n', c->tb ? 't' : 'n', 0 };
        for (int ti = 0; ti < nthreads; ti++) {
#ifdef _OPENMP
            omp_set_num_threads(threads[ti]);
#endif
            impl im[MAX_IMPLS];
            int nim = 0;
            for (int ii = 0; ii < nisa + nlibs && nim < MAX_IMPLS; ii++) {
                impl *p = &im[nim++];
                memset(p, 0, sizeof *p);
                p->lib = ii < nisa ? NULL : &libs[ii - nisa];
                p->isa = ii < nisa ? isas[ii] : best;
                /* Validate before timing. */
                memset(C, 0xff, cn * 4);
                run_impl(p, threads[ti], c, A, B, C, ws, 1);
                p->res = residual(c, A, B, C, R);
                p->valid = p->res < 10.0;
                if (!p->valid) {
                    printf("op=%s m=%d n=%d k=%d isa=%s threads=%d INVALID residual=%.3g\n", opname, c->m, c->n, c->k,
                           p->lib ? p->lib->name : sn_isa_name(p->isa), threads[ti], p->res);
                    failures++;
                }
            }
            measure_all(im, nim, threads[ti], c, A, B, C, ws);
            for (int i = 0; i < nim; i++) {
                if (!im[i].valid) continue;
                const char *isa = im[i].lib ? im[i].lib->name : sn_isa_name(im[i].isa);
                double g = im[i].g[TRIALS / 2];
                /* A library is measured against the best ISA's ceiling: the one it can use. */
                const double ceiling = peak[im[i].isa][ti];
                char of_peak[32] = "";
                if (ceiling > 0) snprintf(of_peak, sizeof of_peak, "%.3f", g / ceiling);
                printf("op=%s m=%d n=%d k=%d isa=%s threads=%d gflops=%.1f", opname, c->m, c->n, c->k, isa,
                       threads[ti], g);
                if (ceiling > 0) printf(" peak=%.0f%%", 100.0 * g / ceiling);
                /* Over 100%: the ceiling was measured while a core was taken (a neighbour,
                 * a frequency dip), not a kernel beating the FMA units. Say so. */
                if (ceiling > 0 && g > 1.02 * ceiling) {
                    printf("  (over the FMA ceiling: it was measured on a busy or slowed core, or "
                           "SCRATCHNET_FMA_CEILING is too low; rerun on a quiet machine)");
                    over_ceiling++;
                }
                printf("\n");
                if (csv) fprintf(csv, "%d,%s,%d,%d,%d,%s,%s,%d,%.2f,%.3g,%s\n", ci + 1, opname, c->m, c->n, c->k,
                                 c->what, isa, threads[ti], g, im[i].res, of_peak);
            }
            fflush(stdout);
        }
        free(A), free(B), free(C), free(R), free(ws), free(X), free(tables);
    }
    sn_isa_force(best, NULL);
    if (csv) fclose(csv);
    if (over_ceiling)
        fprintf(stderr, "bench: warning: %d row(s) above 100%% of the FMA ceiling: the ceiling was measured under "
                        "load, so every peak=%% figure of this run is unreliable\n", over_ceiling);
    return failures ? EXIT_RUNTIME : 0;
}
