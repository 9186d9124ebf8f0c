/* GEMM: the reference against hand-computed products, and every tuned kernel (each ISA
 * path, forced) against the reference on edge shapes, transposes, leading dimensions,
 * accumulation and epilogues; plus bit-identical results across thread counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratchnet/gemm.h"
#include "scratchnet/train.h" /* sn_now */
#include "test_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* op(A) = [1 2 3; 4 5 6] (2x3), op(B) = [7 8; 9 10; 11 12] (3x2): C = [58 64; 139 154]. */
static const float A_N[] = { 1, 2, 3, 4, 5, 6 }, A_T[] = { 1, 4, 2, 5, 3, 6 };
static const float B_N[] = { 7, 8, 9, 10, 11, 12 }, B_T[] = { 7, 9, 11, 8, 10, 12 };
static const float C_WANT[] = { 58, 64, 139, 154 };

Test(gemm_ref, hand_computed_every_transpose)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float C[4] = { -1, -1, -1, -1 };
            sn_gemm_ref((sn_trans)ta, (sn_trans)tb, 2, 2, 3, ta ? A_T : A_N, ta ? 2 : 3, tb ? B_T : B_N,
                        tb ? 3 : 2, 0.0f, C, 2, NULL);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(C[i], C_WANT[i], "ta=%d tb=%d C[%d]=%g, want %g", ta, tb, i, C[i], C_WANT[i]);
        }
}

Test(gemm_ref, accumulate_and_epilogue)
{
    /* C = 1*C + AB, + bias, ReLU, then mask: small integers are exact in float. */
    float C[4] = { 1, -300, 2, 3 }, bias[2] = { 0.5f, -1 }, mask[4] = { 1, 1, 0, 1 };
    sn_epilogue ep = { .bias = bias, .relu = 1, .mask = mask, .ldmask = 2 };
    sn_gemm_ref(SN_N, SN_N, 2, 2, 3, A_N, 3, B_N, 2, 1.0f, C, 2, &ep);
    cr_assert_eq(C[0], 59.5f);
    cr_assert_eq(C[1], 0.0f, "64 - 300 - 1 < 0 must be cut by ReLU, got %g", C[1]);
    cr_assert_eq(C[2], 0.0f, "masked element must be 0, got %g", C[2]);
    cr_assert_eq(C[3], 156.0f);
}

Test(gemm_ref, tuned_matches_hand_computed)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float C[4] = { -1, -1, -1, -1 };
            cr_assert_eq(sn_gemm((sn_trans)ta, (sn_trans)tb, 2, 2, 3, ta ? A_T : A_N, ta ? 2 : 3,
                                 tb ? B_T : B_N, tb ? 3 : 2, 0.0f, C, 2, NULL), SN_OK);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(C[i], C_WANT[i], "ta=%d tb=%d C[%d]=%g", ta, tb, i, C[i]);
        }
}

/* Tolerance: float summation of k products has error at most ~k*u*sum|a||b| (u = 2^-24,
 * the classic gamma_k bound); we allow 2*k*u*sum|a||b| + 1e-30 per element, which a
 * kernel that drops, repeats or misplaces even one product exceeds by orders of
 * magnitude (each product here is ~0.25 in size). */
static void check_case(sn_trans ta, sn_trans tb, int m, int n, int k, int pad, float beta, int with_ep)
{
    int lda = (ta == SN_N ? k : m) + pad, ldb = (tb == SN_N ? n : k) + pad, ldc = n + pad;
    size_t a_rows = ta == SN_N ? (size_t)m : (size_t)k, b_rows = tb == SN_N ? (size_t)k : (size_t)n;
    float *A = malloc(sizeof(float) * a_rows * lda), *B = malloc(sizeof(float) * b_rows * ldb);
    float *C = malloc(sizeof(float) * (size_t)m * ldc), *R = malloc(sizeof(float) * (size_t)m * ldc);
    float *bias = malloc(sizeof(float) * (size_t)n), *mask = malloc(sizeof(float) * (size_t)m * n);
    tu_fill(A, a_rows * lda, (uint64_t)(m * 131 + n * 7 + k));
    tu_fill(B, b_rows * ldb, (uint64_t)(m + n * 17 + k * 3));
    tu_fill(C, (size_t)m * ldc, 99);
    tu_fill(bias, (size_t)n, 5);
    tu_fill(mask, (size_t)m * n, 6);
    memcpy(R, C, sizeof(float) * (size_t)m * ldc);
    sn_epilogue ep = { .bias = bias, .relu = 1, .mask = mask, .ldmask = n };
    cr_assert_eq(sn_gemm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc, with_ep ? &ep : NULL), SN_OK);
    sn_gemm_ref(ta, tb, m, n, k, A, lda, B, ldb, beta, R, ldc, with_ep ? &ep : NULL);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double mag = beta != 0.0f ? fabs(R[(size_t)i * ldc + j]) : 0.0;
            for (int p = 0; p < k; p++) {
                float a = ta == SN_N ? A[(size_t)i * lda + p] : A[(size_t)p * lda + i];
                float b = tb == SN_N ? B[(size_t)p * ldb + j] : B[(size_t)j * ldb + p];
                mag += fabs((double)a * b);
            }
            double tol = 2.0 * (k + 1) * 0x1.0p-24 * mag + 1e-30;
            double got = C[(size_t)i * ldc + j], want = R[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                cr_assert_fail("isa=%s op=%c%c m=%d n=%d k=%d pad=%d beta=%g ep=%d: C[%d][%d]=%.9g ref=%.9g tol=%.3g",
                         sn_isa_name(sn_isa_active()), ta ? 't' : 'n', tb ? 't' : 'n', m, n, k, pad,
                         beta, with_ep, i, j, got, want, tol);
        }
        /* Padding columns of C beyond n must be untouched. */
        for (int j = n; j < ldc; j++)
            cr_assert_eq(C[(size_t)i * ldc + j], R[(size_t)i * ldc + j], "wrote outside C at [%d][%d]", i, j);
    }
    free(A), free(B), free(C), free(R), free(bias), free(mask);
}

static void sweep_shapes(void)
{
    static const int ms[] = { 1, 7, 17, 33, 128 };
    static const int ns[] = { 1, 10, 15, 25, 50, 63 };
    static const int ks[] = { 1, 7, 16, 31, 50, 127, 784 };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
                for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
                    for (size_t c = 0; c < sizeof ks / sizeof *ks; c++)
                        check_case((sn_trans)ta, (sn_trans)tb, ms[a], ns[b], ks[c], 0, 0.0f, 0);
    /* The MLP's own products, larger edges, leading dimensions, accumulation, epilogue. */
    check_case(SN_N, SN_T, 128, 50, 784, 0, 0.0f, 1);
    check_case(SN_T, SN_N, 784, 50, 128, 0, 0.0f, 0);
    check_case(SN_T, SN_N, 50, 784, 128, 3, 1.0f, 0);
    check_case(SN_N, SN_N, 128, 784, 50, 5, 0.0f, 1);
    check_case(SN_N, SN_N, 63, 127, 300, 1, 1.0f, 1); /* k > KC: several k-blocks */
    check_case(SN_N, SN_T, 31, 33, 15, 2, 1.0f, 1);
    check_case(SN_T, SN_T, 17, 31, 63, 4, 1.0f, 1);
    check_case(SN_N, SN_T, 127, 25, 784, 7, 1.0f, 1);
    /* The column kernel (tn, narrow n): several k-blocks of its packed A panel (COL_KC =
     * 128), a ragged last row panel, accumulation and the epilogue on the last block. */
    check_case(SN_T, SN_N, 77, 50, 300, 3, 1.0f, 1);
    /* The direct kernel with its 1-2 column tail fused (n = 50, 49) or separate (k = 100
     * is not whole vectors): ragged rows, accumulation, epilogue. */
    check_case(SN_N, SN_N, 37, 50, 784, 3, 1.0f, 1);
    check_case(SN_N, SN_N, 37, 49, 784, 0, 0.0f, 1);
    check_case(SN_N, SN_N, 37, 50, 100, 0, 1.0f, 1);
    /* The wide direct tile (n a multiple of 64 on AVX-512; elsewhere the direct tiles and
     * their tail): ragged rows, accumulation, the epilogue (bias and ReLU). */
    check_case(SN_N, SN_N, 43, 64, 288, 2, 1.0f, 1);
    check_case(SN_N, SN_N, 121, 64, 300, 0, 0.0f, 1);
    check_case(SN_T, SN_N, 43, 64, 121, 3, 1.0f, 1); /* op(A) = A^T read in place, ragged rows */
    check_case(SN_T, SN_N, 160, 64, 300, 0, 0.0f, 0);
    /* ... and nn with 2-4 wide tiles across (WIDE_DIRECT_N): column strip by strip, a
     * ragged row panel, accumulation and the epilogue; k past KC (one chain, no k-blocks) */
    check_case(SN_N, SN_N, 130, 128, 1600, 3, 1.0f, 1);
    check_case(SN_N, SN_N, 29, 256, 300, 0, 0.0f, 1);
    check_case(SN_N, SN_N, 64, 192, 50, 2, 1.0f, 0);
    check_case(SN_N, SN_N, 37, 120, 400, 2, 1.0f, 1); /* 2 x 48 + a narrow 24 */
    check_case(SN_N, SN_N, 50, 98, 512, 0, 0.0f, 1);  /* 2 x 48 + a fused 2-column tail */
    check_case(SN_T, SN_N, 131, 128, 128, 1, 1.0f, 1); /* tn: A^T read in place */
    check_case(SN_T, SN_N, 97, 256, 600, 0, 0.0f, 0);
    /* The narrow kernel (small layers, k < 64): masked columns, ragged rows, epilogue. */
    check_case(SN_N, SN_N, 37, 25, 50, 3, 1.0f, 1);
    check_case(SN_N, SN_T, 37, 50, 25, 1, 0.0f, 1);
    check_case(SN_N, SN_N, 128, 10, 25, 0, 0.0f, 1);
    check_case(SN_T, SN_N, 784, 50, 129, 0, 0.0f, 1);
    /* The outer kernel's blocked path (gemm_outer): sizes up to 1100, primes, every
     * transpose, leading dimensions past the width: several blocks of ~240 rows with a
     * ragged last one, k-blocks (KC = 256) with a ragged last, ragged column panels, and
     * few rows (the tiles split instead of the rows). */
    check_case(SN_N, SN_N, 1031, 331, 263, 3, 0.0f, 1);
    check_case(SN_N, SN_T, 509, 1100, 131, 5, 1.0f, 0);
    check_case(SN_T, SN_N, 1100, 257, 67, 0, 0.0f, 1);
    check_case(SN_T, SN_T, 263, 509, 521, 2, 1.0f, 1);
    check_case(SN_N, SN_N, 97, 1031, 600, 1, 0.0f, 0);
    check_case(SN_T, SN_N, 23, 701, 300, 0, 1.0f, 1);
    /* The outer path by columns (gemm_outer_cols): two column blocks (n past NC_PANELS =
     * 32 panels of 32), B packed by the first row panel's tiles as they read it (and the
     * ragged last panel apart), a last row panel of 1-3 rows split with the one before
     * (m = 128 = 9 x 14 + 2 on AVX-512, 21 x 6 + 2 on AVX2; 127 = 9 x 14 + 1; 15), for tn
     * packed apart from the whole panels; accumulation and the epilogue. */
    check_case(SN_N, SN_N, 128, 1100, 300, 3, 1.0f, 1);
    check_case(SN_N, SN_N, 15, 1031, 263, 0, 0.0f, 1);
    check_case(SN_T, SN_N, 127, 700, 600, 2, 1.0f, 1);
    check_case(SN_N, SN_T, 128, 1057, 300, 1, 0.0f, 1);
    check_case(SN_T, SN_T, 16, 1100, 67, 0, 1.0f, 0);
    /* tn 65..256 wide that the outer tile would pad, on the column kernel: many rows and
     * k-blocks of COL_KC, ragged row panels, accumulation and the epilogue; a short k */
    check_case(SN_T, SN_N, 300, 90, 300, 2, 1.0f, 1);
    check_case(SN_T, SN_N, 257, 200, 129, 0, 0.0f, 1);
    check_case(SN_T, SN_N, 120, 84, 128, 1, 1.0f, 0);
}

static void force(sn_isa isa)
{
    if (!sn_isa_supported(isa)) cr_skip_test("%s not supported on this CPU", sn_isa_name(isa));
    cr_assert_eq(sn_isa_force(isa, NULL), SN_OK);
}

Test(gemm_tuned, scalar_matches_reference, .timeout = 300) { force(SN_ISA_SCALAR); sweep_shapes(); }
Test(gemm_tuned, avx2_matches_reference, .timeout = 300) { force(SN_ISA_AVX2); sweep_shapes(); }
Test(gemm_tuned, avx512_matches_reference, .timeout = 300) { force(SN_ISA_AVX512); sweep_shapes(); }

Test(gemm_tuned, env_forces_isa)
{
    setenv("SCRATCHNET_ISA", "scalar", 1);
    cr_assert_eq(sn_isa_init(NULL), SN_OK);
    cr_assert_eq(sn_isa_active(), SN_ISA_SCALAR);
    setenv("SCRATCHNET_ISA", "sse9", 1);
    sn_error err;
    cr_assert_eq(sn_isa_init(&err), SN_EINVAL);
    cr_assert(strstr(err.msg, "sse9") != NULL, "message must name the bad value: %s", err.msg);
}

/* The benchmark's ceiling: a positive, finite rate for every ISA, and the timing loop
 * ends near its budget (it doubles the trial until a fifth of the budget passes, then
 * runs five: under 3x the budget even if the first trial already took a fifth). A speed
 * is not asserted: this machine is shared and noisy. */
Test(gemm_tuned, fma_peak_probe_measures_every_isa)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        double t0 = sn_now();
        double g = sn_isa_peak_gflops(0.02);
        double dt = sn_now() - t0;
        cr_assert(isfinite(g) && g > 0.0, "%s: peak %g GFLOP/s", sn_isa_name((sn_isa)isa), g);
        cr_assert(dt < 0.5, "%s: a 20 ms probe took %.3f s", sn_isa_name((sn_isa)isa), dt);
    }
    sn_isa_init(NULL);
}

/* Every element must be bit-identical whatever the number of threads: the kernels
 * split rows and columns of C, never k. */
static void check_threads_identical(sn_trans ta, sn_trans tb, int m, int n, int k)
{
#ifdef _OPENMP
    size_t a_n = (size_t)m * k, b_n = (size_t)k * n;
    float *A = malloc(a_n * 4), *B = malloc(b_n * 4), *C[3];
    tu_fill(A, a_n, 1);
    tu_fill(B, b_n, 2);
    for (int t = 0; t < 3; t++) {
        C[t] = malloc((size_t)m * n * 4);
        omp_set_num_threads(t + 1);
        sn_gemm(ta, tb, m, n, k, A, ta == SN_N ? k : m, B, tb == SN_N ? n : k, 0.0f, C[t], n, NULL);
    }
    cr_assert(memcmp(C[0], C[1], (size_t)m * n * 4) == 0, "1 vs 2 threads differ: op %d%d %dx%dx%d", ta, tb, m, n, k);
    cr_assert(memcmp(C[0], C[2], (size_t)m * n * 4) == 0, "1 vs 3 threads differ: op %d%d %dx%dx%d", ta, tb, m, n, k);
    /* sn_gemm runs small products on one thread; called from inside a team (work-shared,
     * as the trainer's layers do), every product is split, whatever its size. */
    float *ws = aligned_alloc(64, (sn_gemm_workspace(ta, tb, m, n, k) * 4 + 127) / 64 * 64);
    for (int t = 2; t <= 3; t++) {
        memset(C[1], 0xff, (size_t)m * n * 4);
#pragma omp parallel num_threads(t)
        sn_gemm_ws(ta, tb, m, n, k, A, ta == SN_N ? k : m, B, tb == SN_N ? n : k, 0.0f, C[1], n, NULL, ws);
        cr_assert(memcmp(C[0], C[1], (size_t)m * n * 4) == 0, "1 vs a team of %d differ: op %d%d %dx%dx%d", t, ta, tb,
                  m, n, k);
    }
    free(ws);
    free(A), free(B), free(C[0]), free(C[1]), free(C[2]);
#else
    (void)ta, (void)tb, (void)m, (void)n, (void)k;
    cr_skip_test("serial build");
#endif
}

Test(gemm_tuned, bit_identical_for_1_2_3_threads)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        check_threads_identical(SN_N, SN_T, 128, 50, 784);
        check_threads_identical(SN_T, SN_N, 50, 784, 128);
        check_threads_identical(SN_N, SN_N, 128, 784, 50);
        check_threads_identical(SN_N, SN_T, 33, 25, 50);
        check_threads_identical(SN_T, SN_N, 63, 33, 300);
        check_threads_identical(SN_T, SN_N, 784, 50, 128); /* column kernel: row panels split mid-way */
        check_threads_identical(SN_T, SN_N, 77, 50, 300);
        check_threads_identical(SN_N, SN_T, 37, 50, 25); /* narrow kernel */
        check_threads_identical(SN_N, SN_N, 37, 50, 784); /* direct kernel + fused tail */
        check_threads_identical(SN_N, SN_N, 1031, 331, 263); /* outer: by columns; 3 threads: rows split (B shared) */
        check_threads_identical(SN_N, SN_T, 509, 1100, 131);
        check_threads_identical(SN_T, SN_N, 23, 701, 300); /* outer by columns, few rows */
        check_threads_identical(SN_N, SN_N, 20, 701, 300);
        /* the wide direct tile (128 x 128); outer by columns with B^T packed; tn 200 wide:
         * by columns on one thread, rows split with B shared on 2, tiles split on 3 */
        check_threads_identical(SN_N, SN_N, 128, 128, 1600);
        check_threads_identical(SN_N, SN_T, 128, 1100, 300);
        check_threads_identical(SN_T, SN_N, 130, 200, 600);
        check_threads_identical(SN_T, SN_N, 1600, 128, 128); /* tn through the wide direct tile */
        check_threads_identical(SN_N, SN_N, 128, 120, 400);  /* direct tiles and a narrow tail */
        /* outer by columns: two column blocks, B packed on the way, the last rows split */
        check_threads_identical(SN_N, SN_N, 130, 1100, 300);
        check_threads_identical(SN_T, SN_N, 127, 700, 600);
        check_threads_identical(SN_T, SN_N, 784, 100, 300); /* tn 100 wide: the column kernel */
    }
}

/* The `done` hook (the trainer fuses its optimiser there) must see every element of C
 * exactly once, with its final value, whatever the algorithm and the thread count. */
typedef struct done_log {
    const float *C;
    int *seen;
    float *value;
} done_log;

static void log_done(void *user, float *c, int n)
{
    done_log *log = user;
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)(c + i - log->C);
#pragma omp atomic
        log->seen[at]++;
        log->value[at] = c[i];
    }
}

static void check_done_hook(sn_trans ta, sn_trans tb, int m, int n, int k, int threads)
{
    size_t a_n = (size_t)m * k, b_n = (size_t)k * n, c_n = (size_t)m * n;
    float *A = malloc(a_n * 4), *B = malloc(b_n * 4), *C = malloc(c_n * 4), *value = malloc(c_n * 4);
    int *seen = calloc(c_n, sizeof(int));
    tu_fill(A, a_n, 3);
    tu_fill(B, b_n, 4);
    done_log log = { C, seen, value };
    sn_epilogue ep = { .done = log_done, .user = &log };
#ifndef _OPENMP
    (void)threads;
#endif
    float *ws = aligned_alloc(64, (sn_gemm_workspace(ta, tb, m, n, k) * 4 + 127) / 64 * 64);
    /* Inside a team (work-shared), so that small products are split too. */
#pragma omp parallel num_threads(threads)
    sn_gemm_ws(ta, tb, m, n, k, A, ta == SN_N ? k : m, B, tb == SN_N ? n : k, 0.0f, C, n, &ep, ws);
    free(ws);
    for (size_t i = 0; i < c_n; i++) {
        cr_assert_eq(seen[i], 1, "op %d%d %dx%dx%d threads=%d: element %zu handed over %d times", ta, tb, m, n, k,
                     threads, i, seen[i]);
        cr_assert_eq(value[i], C[i], "op %d%d %dx%dx%d threads=%d: element %zu handed over before it was final",
                     ta, tb, m, n, k, threads, i);
    }
    free(A), free(B), free(C), free(value), free(seen);
}

Test(gemm_tuned, done_hook_sees_each_element_once)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        for (int t = 1; t <= 3; t++) {
            check_done_hook(SN_T, SN_N, 784, 50, 128, t); /* column kernel */
            check_done_hook(SN_T, SN_N, 77, 50, 300, t);  /* column kernel, k-blocks, ragged panel */
            check_done_hook(SN_N, SN_T, 128, 50, 784, t); /* dot kernel */
            check_done_hook(SN_N, SN_N, 37, 50, 784, t);  /* direct kernel + fused dot2 tail */
            check_done_hook(SN_N, SN_N, 37, 50, 100, t);  /* direct kernel + separate dot tail */
            check_done_hook(SN_N, SN_N, 63, 127, 300, t); /* outer kernel, k-blocks */
            check_done_hook(SN_N, SN_T, 37, 50, 25, t);   /* narrow kernel, B transposed */
            check_done_hook(SN_N, SN_N, 128, 1100, 300, t); /* outer by columns: row bands, two column blocks */
            check_done_hook(SN_T, SN_N, 127, 700, 300, t);  /* ... the last rows split, packed apart */
            check_done_hook(SN_T, SN_N, 300, 90, 300, t);   /* column kernel, 90 wide, k-blocks */
        }
    }
}

/* The gathered product (implicit GEMM) on a convolution's patches: an image h x w x c,
 * K x K kernels. G[i][p] = img[roff[i] + koff[p]]: rows the output pixels (forward), or,
 * transposed, rows the patch elements and k the pixels (a weight gradient). Against the
 * reference within the tolerance of check_case (same bound: k products of ~0.25), and,
 * where sn_gemm computes the materialised G with the same chains of FMAs (nn on the
 * direct and narrow paths), bit for bit. with_ep: 1 bias and ReLU, 2 a mask too. */
static void check_gathered(int h, int w, int c, int K, int n, int transposed, float beta, int with_ep, int bitwise)
{
    const int oh = h - K + 1, ow = w - K + 1, P = oh * ow, E = K * K * c;
    const int m = transposed ? E : P, k = transposed ? P : E, ldc = n + 3;
    int *pix = malloc(sizeof(int) * (size_t)P), *pos = malloc(sizeof(int) * (size_t)E);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) pix[y * ow + x] = (y * w + x) * c;
    for (int e = 0; e < E; e++) pos[e] = ((e / c) / K * w + (e / c) % K) * c + e % c;
    const int *roff = transposed ? pos : pix, *koff = transposed ? pix : pos;
    float *img = malloc(sizeof(float) * (size_t)h * w * c), *B = malloc(sizeof(float) * (size_t)k * n);
    float *G = malloc(sizeof(float) * (size_t)m * k), *C = malloc(sizeof(float) * (size_t)m * ldc);
    float *R = malloc(sizeof(float) * (size_t)m * ldc), *S = malloc(sizeof(float) * (size_t)m * ldc);
    float *bias = malloc(sizeof(float) * (size_t)n), *mask = malloc(sizeof(float) * (size_t)m * n);
    tu_fill(mask, (size_t)m * n, 13); /* about half > 0 */
    tu_fill(img, (size_t)h * w * c, (uint64_t)(h * 31 + c));
    tu_fill(B, (size_t)k * n, (uint64_t)(n * 7 + K));
    tu_fill(C, (size_t)m * ldc, 11);
    tu_fill(bias, (size_t)n, 12);
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++) G[(size_t)i * k + p] = img[roff[i] + koff[p]];
    memcpy(R, C, sizeof(float) * (size_t)m * ldc);
    memcpy(S, C, sizeof(float) * (size_t)m * ldc);
    sn_epilogue ep = { .bias = bias, .relu = 1, .mask = with_ep == 2 ? mask : NULL, .ldmask = n };
    sn_gemm_gathered_local(m, n, k, img, roff, koff, B, n, beta, C, ldc, with_ep ? &ep : NULL);
    sn_gemm_gathered_ref(m, n, k, img, roff, koff, B, n, beta, R, ldc, with_ep ? &ep : NULL);
    cr_assert_eq(sn_gemm(SN_N, SN_N, m, n, k, G, k, B, n, beta, S, ldc, with_ep ? &ep : NULL), SN_OK);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double mag = beta != 0.0f ? fabs(R[(size_t)i * ldc + j]) : 0.0;
            for (int p = 0; p < k; p++) mag += fabs((double)G[(size_t)i * k + p] * B[(size_t)p * n + j]);
            const double tol = 2.0 * (k + 1) * 0x1.0p-24 * mag + 1e-30;
            const float got = C[(size_t)i * ldc + j], want = R[(size_t)i * ldc + j], direct = S[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                cr_assert_fail("isa=%s %dx%dx%d K=%d n=%d transposed=%d: C[%d][%d]=%.9g ref=%.9g tol=%.3g",
                               sn_isa_name(sn_isa_active()), h, w, c, K, n, transposed, i, j, got, want, tol);
            if (bitwise && memcmp(&got, &direct, sizeof got) != 0)
                cr_assert_fail("isa=%s %dx%dx%d K=%d n=%d: gathered C[%d][%d]=%.9g, sn_gemm on the copy %.9g",
                               sn_isa_name(sn_isa_active()), h, w, c, K, n, i, j, got, direct);
        }
        for (int j = n; j < ldc; j++)
            cr_assert_eq(C[(size_t)i * ldc + j], R[(size_t)i * ldc + j], "wrote outside C at [%d][%d]", i, j);
    }
    free(pix), free(pos), free(img), free(B), free(G), free(C), free(R), free(S), free(bias), free(mask);
}

Test(gemm_gathered, matches_reference_on_every_isa, .timeout = 120)
{
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        if (!sn_isa_supported((sn_isa)isa)) continue;
        sn_isa_force((sn_isa)isa, NULL);
        /* forward: the cnn preset's layers (28x28x1 -> 32; 13x13x32 -> 64), odd sizes,
         * ragged rows (P % tile), columns past the whole tiles (n = 50, 70, 5) */
        check_gathered(28, 28, 1, 3, 32, 0, 0.0f, 1, 0);
        check_gathered(13, 13, 32, 3, 64, 0, 0.0f, 1, 0);
        check_gathered(11, 9, 3, 5, 50, 0, 1.0f, 1, 0);
        check_gathered(7, 8, 5, 3, 70, 0, 1.0f, 0, 0);
        check_gathered(6, 6, 2, 1, 5, 0, 0.0f, 1, 0);
        /* weight gradients: rows the patch elements, k the pixels */
        check_gathered(13, 13, 32, 3, 64, 1, 1.0f, 0, 0);
        check_gathered(28, 28, 1, 3, 32, 1, 0.0f, 0, 0);
        check_gathered(9, 11, 4, 3, 17, 1, 1.0f, 0, 0);
        /* the narrow gathered kernel's run tiles (rows at consecutive floats: one channel
         * forward, a kernel row's patch elements transposed), split evenly (28 = 14 + 14,
         * 21 = 11 + 10, 30 = 15 + 15), whole and masked vectors, with a mask epilogue,
         * and a short last row panel split in two (m = 9: 5 + 4; m = 12: 6 + 6) */
        check_gathered(32, 32, 1, 5, 16, 0, 0.0f, 2, 0);
        check_gathered(32, 32, 1, 5, 6, 0, 1.0f, 1, 0);
        check_gathered(20, 23, 1, 3, 20, 0, 0.0f, 2, 0);
        check_gathered(14, 14, 6, 5, 16, 1, 1.0f, 2, 0);
        check_gathered(12, 12, 3, 5, 32, 1, 0.0f, 0, 0);
        check_gathered(30, 30, 1, 3, 9, 1, 1.0f, 2, 0);
        check_gathered(6, 9, 4, 3, 12, 0, 0.0f, 2, 0);
    }
}

Test(gemm_gathered, same_bits_as_the_direct_and_narrow_kernels)
{
    if (!sn_isa_supported(SN_ISA_AVX512)) cr_skip_test("avx512 not supported on this CPU");
    sn_isa_force(SN_ISA_AVX512, NULL);
    /* nn with n = 64 (the wide direct tile) and n = 32 (narrow): the materialised patch
     * matrix through sn_gemm gives the same bits, which is what keeps a convolution's
     * training unchanged by gathering. */
    check_gathered(13, 13, 32, 3, 64, 0, 0.0f, 1, 1);
    check_gathered(28, 28, 1, 3, 32, 0, 0.0f, 1, 1);
    check_gathered(12, 10, 6, 5, 64, 0, 1.0f, 0, 1);
    /* run tiles: n = 16 (one whole vector), 6 and 20 (masked) */
    check_gathered(32, 32, 1, 5, 16, 0, 0.0f, 1, 1);
    check_gathered(32, 32, 1, 5, 6, 0, 0.0f, 2, 1);
    check_gathered(20, 23, 1, 3, 20, 0, 1.0f, 1, 1);
}
