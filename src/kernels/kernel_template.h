/* Microkernels written once, compiled once per ISA. The including file defines:
 *   KNAME          table name (sn_kernels_xxx)      ISA_LABEL  "avx512" ...
 *   vec, VL        vector type and its float lanes
 *   VZERO(), VLOAD(p), VSTORE(p, v), VBCAST(x), VFMA(a, b, c) = a*b + c, VHSUM(v)
 *   OUT_MR, OUT_NV outer tile: OUT_MR rows x (OUT_NV * VL) columns
 *   DOT_MR, DOT_NR dot tile
 * The loops over tile rows/vectors have constant trip counts and are fully unrolled,
 * so the accumulators live in registers. */
#include <stddef.h>

#include "kernels.h"

#define OUT_NR (OUT_NV * VL)

/* C (OUT_MR x OUT_NR, ldc) (+)= Ap (kc x OUT_MR)^T-packed * Bp (kc x OUT_NR). */
static void outer_kernel(int kc, const float *restrict Ap, const float *restrict Bp,
                         float *restrict C, int ldc, int accumulate)
{
    vec acc[OUT_MR][OUT_NV];
#pragma GCC unroll 16
    for (int i = 0; i < OUT_MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < OUT_NV; v++)
            acc[i][v] = VZERO();

    for (int k = 0; k < kc; k++) {
        vec b[OUT_NV];
#pragma GCC unroll 8
        for (int v = 0; v < OUT_NV; v++)
            b[v] = VLOAD(Bp + (size_t)k * OUT_NR + v * VL);
#pragma GCC unroll 16
        for (int i = 0; i < OUT_MR; i++) {
            vec a = VBCAST(Ap[(size_t)k * OUT_MR + i]);
#pragma GCC unroll 8
            for (int v = 0; v < OUT_NV; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
    }

#pragma GCC unroll 16
    for (int i = 0; i < OUT_MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < OUT_NV; v++) {
            float *c = C + (size_t)i * ldc + v * VL;
            VSTORE(c, accumulate ? VADD(acc[i][v], VLOAD(c)) : acc[i][v]);
        }
}

/* C[i][j] (+)= sum_k A[i][k] * B[j][k] for a DOT_MR x DOT_NR tile; kp % VL == 0.
 * Lanes accumulate k mod VL; one fixed horizontal sum per element at the end. */
static void dot_kernel(int kp, const float *restrict A, int lda, const float *restrict B,
                       int ldb, float *restrict C, int ldc, int accumulate)
{
    vec acc[DOT_MR][DOT_NR];
#pragma GCC unroll 16
    for (int i = 0; i < DOT_MR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < DOT_NR; j++)
            acc[i][j] = VZERO();

    for (int k = 0; k < kp; k += VL) {
        vec b[DOT_NR];
#pragma GCC unroll 16
        for (int j = 0; j < DOT_NR; j++)
            b[j] = VLOAD(B + (size_t)j * ldb + k);
#pragma GCC unroll 16
        for (int i = 0; i < DOT_MR; i++) {
            vec a = VLOAD(A + (size_t)i * lda + k);
#pragma GCC unroll 16
            for (int j = 0; j < DOT_NR; j++)
                acc[i][j] = VFMA(a, b[j], acc[i][j]);
        }
    }

#ifdef DOT_STORE
    DOT_STORE(acc, C, ldc, accumulate);
#else
#pragma GCC unroll 16
    for (int i = 0; i < DOT_MR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < DOT_NR; j++) {
            float s = VHSUM(acc[i][j]);
            float *c = C + (size_t)i * ldc + j;
            *c = accumulate ? *c + s : s;
        }
#endif
}

#define COL_MR (COL_MV * VL)

/* C (COL_MR x COL_NR, ldc) (+)= A (k x COL_MR, lda)^T * B (k x COL_NR, ldb). The
 * accumulators hold columns of C; the write-back transposes them (COL_STORE, per ISA,
 * or the portable scalar loop). */
static void col_kernel(int k, const float *restrict A, int lda, const float *restrict B, int ldb,
                       float *restrict C, int ldc, int accumulate)
{
    vec acc[COL_NR][COL_MV];
#pragma GCC unroll 16
    for (int j = 0; j < COL_NR; j++)
#pragma GCC unroll 8
        for (int v = 0; v < COL_MV; v++)
            acc[j][v] = VZERO();

    for (int p = 0; p < k; p++) {
        vec a[COL_MV];
#pragma GCC unroll 8
        for (int v = 0; v < COL_MV; v++)
            a[v] = VLOAD(A + (size_t)p * lda + v * VL);
#pragma GCC unroll 16
        for (int j = 0; j < COL_NR; j++) {
            vec b = VBCAST(B[(size_t)p * ldb + j]);
#pragma GCC unroll 8
            for (int v = 0; v < COL_MV; v++)
                acc[j][v] = VFMA(a[v], b, acc[j][v]);
        }
    }
#ifdef COL_STORE
    COL_STORE(acc, C, ldc, accumulate);
#else
    float tmp[COL_NR][COL_MR];
#pragma GCC unroll 16
    for (int j = 0; j < COL_NR; j++)
#pragma GCC unroll 8
        for (int v = 0; v < COL_MV; v++)
            VSTORE(&tmp[j][v * VL], acc[j][v]);
    for (int i = 0; i < COL_MR; i++)
        for (int j = 0; j < COL_NR; j++) {
            float *c = C + (size_t)i * ldc + j;
            *c = accumulate ? *c + tmp[j][i] : tmp[j][i];
        }
#endif
}

const sn_kernels KNAME = {
    .name = ISA_LABEL,
    .outer_mr = OUT_MR,
    .outer_nr = OUT_NR,
    .outer = outer_kernel,
    .dot_mr = DOT_MR,
    .dot_nr = DOT_NR,
    .dot_kv = VL,
    .dot = dot_kernel,
    .col_mr = COL_MR,
    .col_nr = COL_NR,
    .col = col_kernel,
};
