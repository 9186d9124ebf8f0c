/* The n-vectorised microkernel body, included by kernel_template.h once per variant.
 * The includer defines RV_NAME, RV_MR (rows), RV_NV (vectors of VL columns) and
 * RV_A(A, lda, i, p), the address of op(A)[i][p]; or RV_GATHER, for op(A)[i][p] =
 * A[roff[i] + koff[p]] (an implicit GEMM's operand: offset tables, not a stride).
 *   C (RV_MR x RV_NV*VL, ldc) (+)= op(A) (RV_MR x k) * B (k x RV_NV*VL, rows ldb apart)
 * then the tile epilogue. Loops over the tile have constant trip counts and are fully
 * unrolled: the accumulators live in registers. RV_ROWS: an inline body for the first
 * `rows` rows only, a constant where it is inlined; RV_PACK_B: B read in place and
 * copied to a packed panel on the way. No include guard: included more than once. */
#ifdef RV_GATHER
static void RV_NAME(int k, const float *restrict A, const int *restrict roff, const int *restrict koff,
                    const float *restrict B, int ldb, float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep)
#elif defined RV_ROWS
/* the first `rows` (a constant where it is inlined, <= RV_MR) rows of the tile only */
static inline __attribute__((always_inline)) void RV_NAME(int k, const float *restrict A, int lda,
                                                          const float *restrict B, int ldb, float *restrict C,
                                                          int ldc, int accumulate, const sn_tile_ep *ep,
                                                          const int rows)
#elif defined RV_PACK_B
/* also copies B, as it reads it, into a packed panel Bp (k x RV_NV*VL, k-major) */
static void RV_NAME(int k, const float *restrict A, int lda, const float *restrict B, int ldb, float *restrict C,
                    int ldc, int accumulate, const sn_tile_ep *ep, float *restrict Bp)
#else
static void RV_NAME(int k, const float *restrict A, int lda, const float *restrict B, int ldb, float *restrict C,
                    int ldc, int accumulate, const sn_tile_ep *ep)
#endif
{
#ifdef RV_ROWS
#define RV_ROWS_N rows
#else
#define RV_ROWS_N RV_MR
#endif
#ifdef RV_GATHER
    const float *arow[RV_MR]; /* each row's origin: its broadcasts are arow[i][koff[p]] */
#pragma GCC unroll 16
    for (int i = 0; i < RV_MR; i++) arow[i] = A + roff[i];
#define RV_A(A, lda, i, p) arow[i][kat]
#endif
    vec acc[RV_MR][RV_NV];
#pragma GCC unroll 16
    for (int i = 0; i < RV_ROWS_N; i++)
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++)
            acc[i][v] = VZERO();

    for (int p = 0; p < k; p++) {
#ifdef RV_GATHER
        const int kat = koff[p];
#endif
#ifdef RV_PREFETCH_B
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++) __builtin_prefetch(B + (size_t)(p + RV_PREFETCH_B) * ldb + v * VL, 0, 3);
#endif
        vec b[RV_NV];
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++)
            b[v] = VLOAD(B + (size_t)p * ldb + v * VL);
#ifdef RV_PACK_B
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++) VSTORE(Bp + (size_t)p * (RV_NV * VL) + v * VL, b[v]);
#endif
#pragma GCC unroll 16
        for (int i = 0; i < RV_ROWS_N; i++) {
            vec a = VBCAST(RV_A(A, lda, i, p));
#pragma GCC unroll 8
            for (int v = 0; v < RV_NV; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
    }

#pragma GCC unroll 16
    for (int i = 0; i < RV_ROWS_N; i++)
#pragma GCC unroll 8
        for (int v = 0; v < RV_NV; v++) {
            float *c = C + (size_t)i * ldc + v * VL;
            vec r = accumulate ? VADD(acc[i][v], VLOAD(c)) : acc[i][v];
            if (ep) EP_VECTOR(ep, r, i, v * VL, VLOAD);
            VSTORE(c, r);
        }
}

#undef RV_GATHER
#undef RV_PACK_B
#undef RV_PREFETCH_B
#undef RV_ROWS
#undef RV_ROWS_N
#undef RV_NAME
#undef RV_MR
#undef RV_NV
#undef RV_A
