/* Microkernels written once, compiled once per ISA (kernel_scalar.c, kernel_sse2.c,
 * kernel_avx2.c, kernel_avx512.c). Adding an ISA: a file like those that defines everything below and
 * includes this one, a value in sn_isa (scratchnet/gemm.h), and a row in the registry
 * of kernels/dispatch.c (plus its compile flags in src/meson.build).
 *
 * The table and its name
 *   KNAME            the sn_kernels table to define (sn_kernels_xxx)
 *   ISA_LABEL        its name as printed ("avx512")
 * Vectors: a type and VL float lanes
 *   vec, VL
 *   VZERO(), VLOAD(p), VSTORE(p, v), VBCAST(x)      unaligned loads and stores
 *   VADD(a, b), VSUB(a, b), VMUL(a, b), VDIV(a, b), VSQRT(a)
 *   VFMA(a, b, c)    a * b + c: one rounding with an FMA unit, else a multiply and an add
 *   VHSUM(v)         the sum of v's lanes, in a fixed order
 *   VMAX(c, x), VMIN(c, x)  x if x is NaN (divergence must stay visible)
 *   VRELU(x)         max(0, x), NaN passes
 *   VKEEP_POS(m, x)  x where m > 0, else 0 (the ReLU mask of a backward pass)
 *   VROUND(x)        to the nearest integer;  VSCALE2(y, n)  y * 2^n (n integral)
 *   VCVT_U8(p)       VL bytes at p as floats
 *   SFMA(a, b, c)    the scalar a * b + c, rounded as VFMA rounds (tails of element-wise
 *                    loops must round like their vector bodies, so results do not depend
 *                    on where a range starts)
 * Compares and selects (max pooling)
 *   vcmp             a lane mask;  VGT(a, b)  a > b (ordered, quiet);  VISNAN(a)
 *   VCMP_OR(m, n), VCMP_ANDNOT(m, n)  m | n, m & ~n;  VCMP_ALL  every lane
 *   VSEL(m, a, b)    a where m, else b
 * Masked lanes
 *   vmask, VMASK(n)  lanes [0, n) of a vector (n may be <= 0 or >= VL)
 *   VLOADM(p, m), VSTOREM(p, m, v)  those lanes only (others read as 0, never touched:
 *                    no fault past the end of a row)
 * Tile sizes (each kernel's accumulators must fit the register file)
 *   OUT_MR, OUT_NV   outer tile: OUT_MR rows x (OUT_NV * VL) columns
 *   DIR_MR, DIR_NV   direct tile: DIR_MR rows x (DIR_NV * VL) columns
 *   DOT_MR, DOT_NR   dot tile;  DOT2_MR  rows of the 2-column dot tile (direct's tail)
 *   NAR_MR, NAR_NV   narrow tile: NAR_MR rows x up to NAR_NV * VL columns
 *   COL_MV, COL_NR   column tile: COL_MV * VL rows x COL_NR columns
 * Optional, faster versions of generic code below
 *   DOT_SUMS(acc, sums, mr, nr)  the dot tile's horizontal sums
 *   COL_STORE(acc, C, ldc, accumulate, ep, mv)  the column tile's transposed write-back
 * The loops over tile rows/vectors have constant trip counts and are fully unrolled,
 * so the accumulators live in registers. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define OUT_NR (OUT_NV * VL)

/* The epilogue on vector r of a tile's row i, columns [col, col + VL): sn_ep_element
 * lane by lane. LOAD(p) reads the lanes r holds (VLOAD; a masked load in a narrow tile). */
#define EP_VECTOR(ep, r, i, col, LOAD)                                                          \
    do {                                                                                       \
        if ((ep)->bias) (r) = VADD((r), LOAD((ep)->bias + (col)));                             \
        if ((ep)->relu) (r) = VRELU(r);                                                        \
        if ((ep)->mask) (r) = VKEEP_POS(LOAD((ep)->mask + (size_t)(i) * (ep)->ldmask + (col)), (r)); \
    } while (0)

/* The two n-vectorised kernels share one body (kernel_rowvec.h), instantiated with their
 * tile sizes and the way they address A: */

/* outer: C (OUT_MR x OUT_NR) (+)= Ap * Bp, Ap packed k-major (Ap[p*lda + i], lda = OUT_MR). */
#define RV_NAME outer_kernel
#define RV_MR OUT_MR
#define RV_NV OUT_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(p) * (lda) + (i)]
/* B's row 24 k steps ahead prefetched: the B panels stream from L2 (gemm_outer_cols),
 * and the hardware's L1 prefetch alone left 3-6% (Sapphire Rapids, 512x1024x784) */
#define RV_PREFETCH_B 24
#include "kernel_rowvec.h"
/* the same reading B in place (rows ldb apart) and packing it as it goes (kernels.h) */
#define RV_NAME outer_pack_kernel
#define RV_MR OUT_MR
#define RV_NV OUT_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(p) * (lda) + (i)]
#define RV_PACK_B
#define RV_PREFETCH_B 24
#include "kernel_rowvec.h"
/* the same for the last rows < OUT_MR of a product (kernels.h): as many rows as there
 * are, where a zero-padded whole tile wasted up to 13 of 14 rows' work (m = 128: 140
 * rows' work for 128) */
#define RV_NAME outer_rows_body
#define RV_MR OUT_MR
#define RV_NV OUT_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(p) * (lda) + (i)]
#define RV_ROWS
#define RV_PREFETCH_B 24
#include "kernel_rowvec.h"
static void outer_rows_kernel(int rows, int kc, const float *restrict Ap, int lda, const float *restrict Bp, int ldb,
                              float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep)
{
#define OUTER_ROWS_CASE(r)                                                                 \
    case r:                                                                                \
        if (r < OUT_MR) outer_rows_body(kc, Ap, lda, Bp, ldb, C, ldc, accumulate, ep, r); \
        break;
    switch (rows) {
        OUTER_ROWS_CASE(1) OUTER_ROWS_CASE(2) OUTER_ROWS_CASE(3) OUTER_ROWS_CASE(4) OUTER_ROWS_CASE(5)
        OUTER_ROWS_CASE(6) OUTER_ROWS_CASE(7) OUTER_ROWS_CASE(8) OUTER_ROWS_CASE(9) OUTER_ROWS_CASE(10)
        OUTER_ROWS_CASE(11) OUTER_ROWS_CASE(12) OUTER_ROWS_CASE(13) OUTER_ROWS_CASE(14) OUTER_ROWS_CASE(15)
    default: break;
    }
#undef OUTER_ROWS_CASE
}

#define DIR_NR (DIR_NV * VL)

/* direct: C (DIR_MR x DIR_NR) (+)= A * B, A row-major in place (A[i*lda + p]). */
#define RV_NAME dir_kernel
#define RV_MR DIR_MR
#define RV_NV DIR_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(i) * (lda) + (p)]
#include "kernel_rowvec.h"

#ifdef DIRW_NV
#define DIRW_NR (DIRW_NV * VL)
/* wide direct: C (DIRW_MR x DIRW_NR) (+)= A * B, as dir_kernel. */
#define RV_NAME dirw_kernel
#define RV_MR DIRW_MR
#define RV_NV DIRW_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(i) * (lda) + (p)]
#include "kernel_rowvec.h"
/* the same with op(A) = A^T read in place (A k-major) */
#define RV_NAME dirwt_kernel
#define RV_MR DIRW_MR
#define RV_NV DIRW_NV
#define RV_A(A, lda, i, p) (A)[(size_t)(p) * (lda) + (i)]
#include "kernel_rowvec.h"
#endif

/* gathered: C (GAT_MR x GAT_NR) (+)= op(A) * B, op(A)[i][p] = A[roff[i] + koff[p]]: a
 * convolution's patches read from the image in place (an implicit GEMM), with the tile
 * of the direct kernel that covers 64 columns where there is one. */
#ifdef DIRW_NV
#define GAT_MR DIRW_MR
#define GAT_NV DIRW_NV
#else
#define GAT_MR DIR_MR
#define GAT_NV DIR_NV
#endif
#define GAT_NR (GAT_NV * VL)
#define RV_NAME gathered_kernel
#define RV_MR GAT_MR
#define RV_NV GAT_NV
#define RV_GATHER
#include "kernel_rowvec.h"


/* C[i][j] (+)= sum_k A[i][k] * B[j][k] for an mr x nr tile; kp % VL == 0.
 * Lanes accumulate k mod VL; one fixed horizontal sum per element at the end.
 * Two shapes: DOT_MR x DOT_NR, and DOT2_MR x 2 for the 1-2 columns (the 49th and 50th
 * outputs) that the direct kernel's 48 leave, which DOT_NR would pad to 5. mr and nr are
 * constants in each inlined copy. */
#define DOT_MAX_MR (DOT_MR > DOT2_MR ? DOT_MR : DOT2_MR)
static inline __attribute__((always_inline)) void dot_body(int kp, const float *restrict A, int lda,
                                                           const float *restrict B, int ldb, float *restrict C,
                                                           int ldc, int accumulate, const sn_tile_ep *ep,
                                                           const int mr, const int nr)
{
    vec acc[DOT_MAX_MR][DOT_NR];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 16
        for (int j = 0; j < nr; j++)
            acc[i][j] = VZERO();

    for (int k = 0; k < kp; k += VL) {
        vec b[DOT_NR];
#pragma GCC unroll 16
        for (int j = 0; j < nr; j++)
            b[j] = VLOAD(B + (size_t)j * ldb + k);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            vec a = VLOAD(A + (size_t)i * lda + k);
#pragma GCC unroll 16
            for (int j = 0; j < nr; j++)
                acc[i][j] = VFMA(a, b[j], acc[i][j]);
        }
    }

    float sums[DOT_MAX_MR][DOT_NR];
#ifdef DOT_SUMS
    DOT_SUMS(acc, sums, mr, nr);
#else
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 16
        for (int j = 0; j < nr; j++)
            sums[i][j] = VHSUM(acc[i][j]);
#endif
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + (size_t)i * ldc + j;
            float r = accumulate ? *c + sums[i][j] : sums[i][j];
            *c = ep ? sn_ep_element(ep, i, j, r) : r;
        }
}

static void dot_kernel(int kp, const float *restrict A, int lda, const float *restrict B, int ldb,
                       float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep)
{
    dot_body(kp, A, lda, B, ldb, C, ldc, accumulate, ep, DOT_MR, DOT_NR);
}

static void dot2_kernel(int kp, const float *restrict A, int lda, const float *restrict B, int ldb,
                        float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep)
{
    dot_body(kp, A, lda, B, ldb, C, ldc, accumulate, ep, DOT2_MR, 2);
}
_Static_assert(DOT_NR >= 2, "dot2 shares dot's accumulator array");

#define COL_MR (COL_MV * VL)
_Static_assert(COL_MR <= 32, "gemm.c packs column-kernel panels of at most 32 rows (COL_MR_MAX)");

/* C (mv*VL x COL_NR, ldc) (+)= A (k x mv*VL, lda)^T * B (k x COL_NR, ldb), mv = COL_MV, or
 * COL_MV / 2 for the half-height panel at the end of an m that is an odd number of
 * half panels (784 = 24.5 x 32). The accumulators hold columns of C; the write-back
 * transposes them (COL_STORE, per ISA, or the portable scalar loop). pack != NULL: also
 * copy the A rows it loads to pack (k x mv*VL, contiguous), so the next column panels
 * read A from there: the driver packs A for free with the first tile of a row panel
 * instead of in a separate pass. */
static inline __attribute__((always_inline)) void col_body(int k, const float *restrict A, int lda,
                                                           const float *restrict B, int ldb, float *restrict C,
                                                           int ldc, int accumulate, const sn_tile_ep *ep,
                                                           float *restrict pack, const int mv)
{
    vec acc[COL_NR][COL_MV];
#pragma GCC unroll 16
    for (int j = 0; j < COL_NR; j++)
#pragma GCC unroll 8
        for (int v = 0; v < mv; v++)
            acc[j][v] = VZERO();

    for (int p = 0; p < k; p++) {
        vec a[COL_MV];
#pragma GCC unroll 8
        for (int v = 0; v < mv; v++) {
            a[v] = VLOAD(A + (size_t)p * lda + v * VL);
            if (pack) VSTORE(pack + (size_t)p * mv * VL + v * VL, a[v]);
        }
#pragma GCC unroll 16
        for (int j = 0; j < COL_NR; j++) {
            vec b = VBCAST(B[(size_t)p * ldb + j]);
#pragma GCC unroll 8
            for (int v = 0; v < mv; v++)
                acc[j][v] = VFMA(a[v], b, acc[j][v]);
        }
    }
#ifdef COL_STORE
    COL_STORE(acc, C, ldc, accumulate, ep, mv);
#else
    float tmp[COL_NR][COL_MR];
#pragma GCC unroll 16
    for (int j = 0; j < COL_NR; j++)
#pragma GCC unroll 8
        for (int v = 0; v < mv; v++)
            VSTORE(&tmp[j][v * VL], acc[j][v]);
    for (int i = 0; i < mv * VL; i++)
        for (int j = 0; j < COL_NR; j++) {
            float *c = C + (size_t)i * ldc + j;
            float r = accumulate ? *c + tmp[j][i] : tmp[j][i];
            *c = ep ? sn_ep_element(ep, i, j, r) : r;
        }
#endif
}

static void col_kernel(int k, const float *restrict A, int lda, const float *restrict B, int ldb,
                       float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep, float *restrict pack)
{
    if (pack) col_body(k, A, lda, B, ldb, C, ldc, accumulate, ep, pack, COL_MV);
    else col_body(k, A, lda, B, ldb, C, ldc, accumulate, ep, NULL, COL_MV);
}

static void col_half_kernel(int k, const float *restrict A, int lda, const float *restrict B, int ldb,
                            float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep, float *restrict pack)
{
    if (pack) col_body(k, A, lda, B, ldb, C, ldc, accumulate, ep, pack, COL_MV / 2);
    else col_body(k, A, lda, B, ldb, C, ldc, accumulate, ep, NULL, COL_MV / 2);
}
_Static_assert(COL_MV % 2 == 0, "the half-height column panel is COL_MV / 2 vectors");

#define NAR_NR (NAR_NV * VL)
/* Run tiles (narrow_gathered_kernel): up to RUN_MR1 rows of one vector or RUN_MR2 rows of
 * two, on ISAs with the registers for them (16 + 1 + 1 and 26 + 2 + 1 of 32 zmm). */
#ifdef RUN_MR1
#define NAR_ROWS RUN_MR1
_Static_assert(RUN_MR1 >= RUN_MR2 && RUN_MR2 > NAR_MR && NAR_NV >= 2, "run tiles are taller than narrow ones");
#else
#define NAR_ROWS NAR_MR
#endif

/* C (mr x nc, ldc) (+)= op(A) (mr x k, in place) * B (k x nc, ldb), mr <= NAR_MR,
 * nc <= NAR_NR, op(A)[i][p] = A[i*lda + p], or A[p*lda + i] if at == 1, or
 * A[roff[i] + koff[p]] if at == 2 (gathered, as gathered_kernel), or, at == 3, the same
 * with roff[i] = roff[0] + i (a run tile, mr <= NAR_ROWS): the products of a small layer
 * (n = 25, 10; k = 50, 25, 10; or its weight gradient, k = the batch), where packing and
 * padding to a 32-wide panel cost more than the arithmetic. The last vectors are masked
 * unless whole (nc = nv vectors); mr (rows), nv (vectors in use), at and whole are
 * constants in each inlined copy, so no FMA is spent on a row or vector wholly outside
 * the tile (a short tile is computed as short, not padded: m = 9 as 5 + 4 rows, not 8 + 8). */
static inline __attribute__((always_inline)) void narrow_body(int k, int nc, const float *restrict A, int lda,
                                                              const int *restrict roff, const int *restrict koff,
                                                              const float *restrict B, int ldb, float *restrict C,
                                                              int ldc, int accumulate, const sn_tile_ep *ep,
                                                              const int mr, const int nv, const int at, const int whole)
{
    const float *arow[NAR_ROWS]; /* at == 2: each row's origin */
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) arow[i] = at == 2 ? A + roff[i] : A;
    vmask msk[NAR_NV];
    vec acc[NAR_ROWS][NAR_NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) msk[v] = VMASK(nc - v * VL);
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = VZERO();
    for (int p = 0; p < k; p++) {
        const int kat = at >= 2 ? koff[p] : 0;
        /* at == 3: row i at arun + i, a constant displacement (one register for all rows) */
        const float *arun = at == 3 ? A + roff[0] + kat : A;
        vec b[NAR_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            b[v] = whole ? VLOAD(B + (size_t)p * ldb + v * VL) : VLOADM(B + (size_t)p * ldb + v * VL, msk[v]);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            vec a = VBCAST(at == 3   ? arun[i]
                           : at == 2 ? arow[i][kat]
                           : at      ? A[(size_t)p * lda + i]
                                     : A[(size_t)i * lda + p]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                acc[i][v] = VFMA(a, b[v], acc[i][v]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            float *c = C + (size_t)i * ldc + v * VL;
            vec r = accumulate ? VADD(acc[i][v], whole ? VLOAD(c) : VLOADM(c, msk[v])) : acc[i][v];
#define LOAD_LANES(p) (whole ? VLOAD(p) : VLOADM((p), msk[v]))
            if (ep) EP_VECTOR(ep, r, i, v * VL, LOAD_LANES);
#undef LOAD_LANES
            if (whole)
                VSTORE(c, r);
            else
                VSTOREM(c, msk[v], r);
        }
}

/* One copy per vector count in use (1 .. NAR_NV), chosen once per tile. */
#define NARROW_BY_NV(mr, at)                                                                 \
    switch ((nc + VL - 1) / VL) {                                                            \
    NARROW_CASES_4(mr, at)                                                                   \
    NARROW_CASES_2(mr, at)                                                                   \
    default: narrow_body(k, nc, A, lda, roff, koff, B, ldb, C, ldc, accumulate, ep, mr, 1, at, 0); break;   \
    }
#if NAR_NV >= 4
#define NARROW_CASES_4(mr, at)                                                               \
    case 4: narrow_body(k, nc, A, lda, roff, koff, B, ldb, C, ldc, accumulate, ep, mr, 4, at, 0); break;    \
    case 3: narrow_body(k, nc, A, lda, roff, koff, B, ldb, C, ldc, accumulate, ep, mr, 3, at, 0); break;
#else
#define NARROW_CASES_4(mr, at)
#endif
#if NAR_NV >= 2
#define NARROW_CASES_2(mr, at) case 2: narrow_body(k, nc, A, lda, roff, koff, B, ldb, C, ldc, accumulate, ep, mr, 2, at, 0); break;
#else
#define NARROW_CASES_2(mr, at)
#endif
/* ... and per row count (1 .. NAR_MR, at most 8) and form of A. */
#define NARROW_ROWS(mr)                                                                      \
    case mr:                                                                                 \
        if (at) {                                                                            \
            NARROW_BY_NV(mr, 1)                                                              \
        } else {                                                                             \
            NARROW_BY_NV(mr, 0)                                                              \
        }                                                                                    \
        break;

static void narrow_kernel(int k, int rows, int nc, const float *restrict A, int lda, int at, const float *restrict B,
                          int ldb, float *restrict C, int ldc, int accumulate, const sn_tile_ep *ep)
{
    const int *roff = NULL, *koff = NULL; /* gathered tiles only (narrow_gathered_kernel) */
    switch (rows) {
        NARROW_ROWS(1)
        NARROW_ROWS(2)
        NARROW_ROWS(3)
        NARROW_ROWS(4)
#if NAR_MR >= 8
        NARROW_ROWS(5)
        NARROW_ROWS(6)
        NARROW_ROWS(7)
        NARROW_ROWS(8)
#endif
    default: break;
    }
}
_Static_assert(NAR_MR == 4 || NAR_MR == 8, "narrow_kernel has copies for 1..4 or 1..8 rows");

/* The narrow tiles gathered, op(A)[i][p] = A[roff[i] + koff[p]], for any number of rows
 * m (the rows and columns the gathered kernel's tiles leave, or all of a product too
 * narrow for them: n = 32, 16 or 6 in the CNN presets), in one call per column strip:
 * with k = 9 (a 3 x 3 one-channel convolution) a tile is ~70 cycles of FMAs, and a
 * call, its dispatch and its register saves cost ~20 more. Whole vectors (nc a multiple
 * of VL) load and store without masks.
 *
 * The rows go in tiles of NAR_MR, except that
 * - a run of rows whose patches start at consecutive floats (roff[i + 1] = roff[i] + 1:
 *   a one-channel image's output pixels along a row, a weight gradient's patch elements
 *   along a kernel row) goes in run tiles of up to RUN_MR1 / RUN_MR2 rows, as even as
 *   the run allows (28 = 14 + 14): one base pointer addresses all their rows, at
 *   constant displacements, where a tile of scattered rows needs a register for each;
 * - the last 9..15 rows go in two tiles of about half, not 8 and a few: a tile of a few
 *   rows has too few independent FMA chains to hide the FMA latency (m = 9, a 3 x 3
 *   kernel's weight gradient: 5 + 4 rows, not 8 + 1).
 * Every element is one chain of FMAs in k order in any tile: the split never changes a bit. */
#define NG_TILE(mr, nv, whole, at)                                                                    \
    narrow_body(k, nc, A, 0, roff + i0, koff, B, ldb, C + (size_t)i0 * ldc, ldc, accumulate,         \
                ep_rows_from(ep, i0, &te), mr, nv, at, whole)
#define NG_BY_NV(mr, at)                                                                              \
    if (nvec == 1 && whole) NG_TILE(mr, 1, 1, at);                                                    \
    else if (nvec == 1) NG_TILE(mr, 1, 0, at);                                                        \
    NG_BY_NV_2(mr, at)                                                                                \
    NG_BY_NV_4(mr, at)
#if NAR_NV >= 2
#define NG_BY_NV_2(mr, at)                                                                            \
    else if (nvec == 2 && whole) NG_TILE(mr, 2, 1, at);                                               \
    else if (nvec == 2) NG_TILE(mr, 2, 0, at);
#else
#define NG_BY_NV_2(mr, at)
#endif
#if NAR_NV >= 4
#define NG_BY_NV_4(mr, at)                                                                            \
    else if (nvec == 3) NG_TILE(mr, 3, 0, at);                                                        \
    else NG_TILE(mr, 4, 0, at);
#else
#define NG_BY_NV_4(mr, at)
#endif
#define NG_ROWS(mr)                                                                                   \
    case mr: NG_BY_NV(mr, 2) break;

/* the tile epilogue of the rows from i0 on */
static inline const sn_tile_ep *ep_rows_from(const sn_tile_ep *ep, int i0, sn_tile_ep *out)
{
    if (!ep) return NULL;
    *out = *ep;
    if (out->mask) out->mask += (size_t)i0 * out->ldmask;
    return out;
}

#ifdef RUN_MR1
#define NG_RUN(mr, nv)                                                                                \
    case mr:                                                                                          \
        if (whole) NG_TILE(mr, nv, 1, 3);                                                             \
        else NG_TILE(mr, nv, 0, 3);                                                                   \
        break;
/* A run tile of `rows` (NAR_MR < rows <= RUN_MR1 or RUN_MR2) at row i0. Not inlined: in
 * the dispatch loop below, its register allocation and the loop's spoiled each other
 * (cnn conv1 forward 2704x32x9: 155 -> 148 GFLOP/s, and -25% with a prefetch added). */
static __attribute__((noinline)) void narrow_run_tile(int k, int rows, int nc, int nvec, int whole,
                                                      const float *restrict A, const int *restrict roff,
                                                      const int *restrict koff, const float *restrict B, int ldb,
                                                      float *restrict C, int ldc, int accumulate,
                                                      const sn_tile_ep *ep, int i0)
{
    sn_tile_ep te;
    if (nvec == 1) {
        switch (rows) {
            NG_RUN(9, 1) NG_RUN(10, 1) NG_RUN(11, 1) NG_RUN(12, 1) NG_RUN(13, 1) NG_RUN(14, 1) NG_RUN(15, 1)
            NG_RUN(16, 1)
        default: break;
        }
    } else {
        switch (rows) {
            NG_RUN(9, 2) NG_RUN(10, 2) NG_RUN(11, 2) NG_RUN(12, 2) NG_RUN(13, 2)
        default: break;
        }
    }
}
_Static_assert(RUN_MR1 == 16 && RUN_MR2 == 13 && NAR_MR == 8, "narrow_run_tile has copies for 9..16 and 9..13 rows");
#endif

static void narrow_gathered_kernel(int k, int m, int nc, const float *restrict A, const int *restrict roff,
                                   const int *restrict koff, const float *restrict B, int ldb, float *restrict C,
                                   int ldc, int accumulate, const sn_tile_ep *ep)
{
    const int nvec = (nc + VL - 1) / VL, whole = nc == nvec * VL;
    sn_tile_ep te;
#ifdef RUN_MR1
    const int run_max = nvec == 1 ? RUN_MR1 : nvec == 2 ? RUN_MR2 : 0;
    int run = 0, run_tile = 0; /* rows left of the current run, from i0 on; its tiles' height */
#endif
    for (int i0 = 0; i0 < m;) {
        const int left = m - i0;
        int rows = left <= NAR_MR ? left : left >= 2 * NAR_MR ? NAR_MR : (left + 1) / 2;
#ifdef RUN_MR1
        if (run_max && run == 0 && left > NAR_MR) { /* a run from here? (once per run) */
            run = RUN_LENGTH(roff + i0, left);
            const int tiles = (run + run_max - 1) / run_max;
            run_tile = (run + tiles - 1) / tiles; /* as even as the run allows: 26 = 13 + 13 */
            if (run <= NAR_MR) run = 0;
        }
        if (run) {
            const int here = run < run_tile ? run : run_tile;
            run -= here;
            if (here > NAR_MR) {
                narrow_run_tile(k, here, nc, nvec, whole, A, roff, koff, B, ldb, C, ldc, accumulate, ep, i0);
                i0 += here;
                continue;
            }
            rows = here; /* 15 rows of two vectors: 8 + 7 narrow tiles, not 13 + 2 */
        }
#endif
        switch (rows) {
            NG_ROWS(1)
            NG_ROWS(2)
            NG_ROWS(3)
            NG_ROWS(4)
#if NAR_MR >= 8
            NG_ROWS(5)
            NG_ROWS(6)
            NG_ROWS(7)
            NG_ROWS(8)
#endif
        default: break;
        }
        i0 += rows;
    }
}
_Static_assert(NAR_NV == 1 || NAR_NV == 2 || NAR_NV == 4, "narrow_kernel has copies for 1, 2 and 4 vectors");

/* exp(x), vectorised: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite: ln2 in two parts),
 * exp(r) by Cephes' degree-6 polynomial, times 2^n. Relative error below 2^-22 (the
 * tests measure it against double exp); x is clamped to [-87.3, 88.3] so that 2^n stays
 * a normal float: exp(-1e30) gives ~1e-38, not 0. NaN stays NaN (a diverged logit must
 * show in the loss). glibc's expf is a call per element: the softmax of a batch spent
 * more time in it than in the two small layers' products together. */
static inline vec vexp(vec x)
{
    x = VMAX(VBCAST(-87.3f), x);
    x = VMIN(VBCAST(88.3f), x);
    const vec n = VROUND(VMUL(x, VBCAST(1.44269504088896341f)));
    vec r = VFMA(n, VBCAST(-0.693359375f), x);
    r = VFMA(n, VBCAST(2.12194440e-4f), r);
    vec y = VBCAST(1.9875691500e-4f);
    y = VFMA(y, r, VBCAST(1.3981999507e-3f));
    y = VFMA(y, r, VBCAST(8.3334519073e-3f));
    y = VFMA(y, r, VBCAST(4.1665795894e-2f));
    y = VFMA(y, r, VBCAST(1.6666665459e-1f));
    y = VFMA(y, r, VBCAST(5.0000001201e-1f));
    y = VFMA(y, VMUL(r, r), VADD(r, VBCAST(1.0f)));
    return VSCALE2(y, n);
}

/* dst[k] = exp(z[k] - shift) for k < n (dst may be z). */
static void exp_shifted(float *dst, const float *z, float shift, int n)
{
    const vec s = VBCAST(shift);
    int k = 0;
    for (; k + VL <= n; k += VL) VSTORE(dst + k, vexp(VSUB(VLOAD(z + k), s)));
    if (k < n) {
        const vmask m = VMASK(n - k);
        VSTOREM(dst + k, m, vexp(VSUB(VLOADM(z + k, m), s)));
    }
}

/* ---- element-wise --------------------------------------------------------------- */
/* The scalar tails use the same fused multiply-add as the vector bodies (SFMA), so an
 * element's result does not depend on whether it falls in a body or a tail: updates can
 * be applied on any split of the parameters with identical bits. */

static void u8_to_f32(float *restrict dst, const uint8_t *restrict src, long n, float scale)
{
    const vec s = VBCAST(scale);
    long i = 0;
    for (; i + VL <= n; i += VL) VSTORE(dst + i, VMUL(VCVT_U8(src + i), s));
    for (; i < n; i++) dst[i] = (float)src[i] * scale;
}

/* dst[c] = ((0 + src[0][c]) + src[1][c]) + ... + src[nsrc - 1][c], times [gate[c] > 0]
 * (1 or 0: a NaN or an infinity stays visible as NaN) if gate, a ReLU's derivative:
 * col2im's fold of patch entries back into an image (conv.c), one input pixel's channels
 * at a time. Lanes add and multiply as the scalar tail does. */
static void sum_rows(float *restrict dst, const float *const *src, int nsrc, long n, const float *restrict gate)
{
    const vec zero = VZERO(), one = VBCAST(1.0f);
#define GATE01(at) VSEL(VGT(VLOAD(gate + (at)), zero), one, zero)
    long c = 0;
    for (; c + 2 * VL <= n; c += 2 * VL) {
        vec a0 = zero, a1 = zero;
        for (int i = 0; i < nsrc; i++) a0 = VADD(a0, VLOAD(src[i] + c)), a1 = VADD(a1, VLOAD(src[i] + c + VL));
        if (gate) a0 = VMUL(a0, GATE01(c)), a1 = VMUL(a1, GATE01(c + VL));
        VSTORE(dst + c, a0), VSTORE(dst + c + VL, a1);
    }
    for (; c + VL <= n; c += VL) {
        vec a = zero;
        for (int i = 0; i < nsrc; i++) a = VADD(a, VLOAD(src[i] + c));
        if (gate) a = VMUL(a, GATE01(c));
        VSTORE(dst + c, a);
    }
#undef GATE01
    for (; c < n; c++) {
        float a = 0.0f;
        for (int i = 0; i < nsrc; i++) a += src[i][c];
        dst[c] = gate ? a * (gate[c] > 0.0f ? 1.0f : 0.0f) : a;
    }
}

static void sgd_update(float *restrict w, const float *restrict g, long n, float lr)
{
    const vec nlr = VBCAST(-lr);
    long i = 0;
    for (; i + VL <= n; i += VL) VSTORE(w + i, VFMA(nlr, VLOAD(g + i), VLOAD(w + i)));
    for (; i < n; i++) w[i] = SFMA(-lr, g[i], w[i]);
}

static void momentum_update(float *restrict w, float *restrict v, const float *restrict g, long n, float lr,
                            float mu)
{
    const vec nlr = VBCAST(-lr), vmu = VBCAST(mu);
    long i = 0;
    for (; i + VL <= n; i += VL) {
        /* 1 KiB ahead: w and v come from memory, each 4 KiB page a new start for the
         * hardware's streamer, where g is usually in cache (the fused update) */
        __builtin_prefetch(v + i + 256, 1, 3);
        __builtin_prefetch(w + i + 256, 1, 3);
        vec vv = VFMA(vmu, VLOAD(v + i), VLOAD(g + i));
        VSTORE(v + i, vv);
        VSTORE(w + i, VFMA(nlr, vv, VLOAD(w + i)));
    }
    for (; i < n; i++) {
        v[i] = SFMA(mu, v[i], g[i]);
        w[i] = SFMA(-lr, v[i], w[i]);
    }
}

/* Nesterov (look-ahead) momentum: v = mu v + g; w -= lr (g + mu v). */
static void nesterov_update(float *restrict w, float *restrict v, const float *restrict g, long n, float lr,
                            float mu)
{
    const vec nlr = VBCAST(-lr), vmu = VBCAST(mu);
    long i = 0;
    for (; i + VL <= n; i += VL) {
        const vec gi = VLOAD(g + i), vv = VFMA(vmu, VLOAD(v + i), gi);
        VSTORE(v + i, vv);
        VSTORE(w + i, VFMA(nlr, VFMA(vmu, vv, gi), VLOAD(w + i)));
    }
    for (; i < n; i++) {
        v[i] = SFMA(mu, v[i], g[i]);
        w[i] = SFMA(-lr, SFMA(mu, v[i], g[i]), w[i]);
    }
}

static void adam_update(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, long n,
                        float step, float b1, float b2, float eps)
{
    const vec vb1 = VBCAST(b1), vb2 = VBCAST(b2), c1 = VBCAST(1.0f - b1), c2 = VBCAST(1.0f - b2);
    const vec nstep = VBCAST(-step), veps = VBCAST(eps);
    long i = 0;
    for (; i + VL <= n; i += VL) {
        vec gi = VLOAD(g + i);
        vec mi = VFMA(vb1, VLOAD(m + i), VMUL(c1, gi));
        vec vi = VFMA(vb2, VLOAD(v + i), VMUL(c2, VMUL(gi, gi)));
        VSTORE(m + i, mi);
        VSTORE(v + i, vi);
        VSTORE(w + i, VFMA(nstep, VDIV(mi, VADD(VSQRT(vi), veps)), VLOAD(w + i)));
    }
    for (; i < n; i++) {
        m[i] = SFMA(b1, m[i], (1.0f - b1) * g[i]);
        v[i] = SFMA(b2, v[i], (1.0f - b2) * (g[i] * g[i]));
        w[i] = SFMA(-step, m[i] / (sqrtf(v[i]) + eps), w[i]);
    }
}

/* The machine's arithmetic ceiling for this ISA: 12 independent accumulator chains (more
 * than FMA latency x FMA ports on any current core), operands in registers, no memory
 * traffic. iters x 12 x VL multiply-adds; the result only keeps the loop alive. */
#define PEAK_CHAINS 12
static float fma_peak_probe(long iters)
{
    vec acc[PEAK_CHAINS];
    const vec x = VBCAST(0.999999f), y = VBCAST(1e-7f);
    for (int a = 0; a < PEAK_CHAINS; a++) acc[a] = VBCAST((float)a);
    for (long it = 0; it < iters; it++) {
        _Pragma("GCC unroll 12") for (int a = 0; a < PEAK_CHAINS; a++) acc[a] = VFMA(acc[a], x, y);
    }
    vec s = acc[0];
    for (int a = 1; a < PEAK_CHAINS; a++) s = VADD(s, acc[a]);
    return VHSUM(s);
}

/* Max pooling over 2 x 2 windows, n channels: the four inputs' rows x0..x3 (channels
 * contiguous, NHWC). The winner is the first largest, and a NaN beats any number (a
 * diverged activation stays visible): x beats the best so far if x > best or x is NaN. */
static inline vcmp vbeats(vec x, vec best)
{
    return VCMP_OR(VGT(x, best), VISNAN(x));
}

static inline int sbeats(float x, float best)
{
    return x > best || x != x;
}

/* A row of `windows` 2 x 2 windows of n channels each: window w's inputs at x0..x3 +
 * w * 2n (the first's row x0, x1 = x0 + n, x2 and x3 a row down), its output at y + w * n.
 * y[c] = the winner's value. */
static void maxpool4(const float *x0, const float *x1, const float *x2, const float *x3, float *y, long n, long windows)
{
    for (long w = 0; w < windows; w++, x0 += 2 * n, x1 += 2 * n, x2 += 2 * n, x3 += 2 * n, y += n) {
        long c = 0;
        for (; c + VL <= n; c += VL) {
            const vec a1 = VLOAD(x1 + c), a2 = VLOAD(x2 + c), a3 = VLOAD(x3 + c);
            vec m = VLOAD(x0 + c);
            m = VSEL(vbeats(a1, m), a1, m);
            m = VSEL(vbeats(a2, m), a2, m);
            m = VSEL(vbeats(a3, m), a3, m);
            VSTORE(y + c, m);
        }
        for (; c < n; c++) {
            float m = x0[c];
            m = sbeats(x1[c], m) ? x1[c] : m;
            m = sbeats(x2[c], m) ? x2[c] : m;
            y[c] = sbeats(x3[c], m) ? x3[c] : m;
        }
    }
}

/* The same row of windows backward: the gradient g (+ w * n) to the winner (d_i = g if
 * input i won, else 0; d0..d3 laid out as x0..x3); with relu_in (the inputs came out of
 * a ReLU), nothing where the winner is not > 0. */
static void maxpool4_back(const float *x0, const float *x1, const float *x2, const float *x3, const float *g, float *d0,
                          float *d1, float *d2, float *d3, long n, long windows, int relu_in)
{
    const vec zero = VZERO();
    for (long w = 0; w < windows; w++) {
        const long at = w * 2 * n, gat = w * n;
        long c = 0;
        for (; c + VL <= n; c += VL) {
            const vec a1 = VLOAD(x1 + at + c), a2 = VLOAD(x2 + at + c), a3 = VLOAD(x3 + at + c), gv = VLOAD(g + gat + c);
            vec m = VLOAD(x0 + at + c);
            const vcmp b1 = vbeats(a1, m);
            m = VSEL(b1, a1, m);
            const vcmp b2 = vbeats(a2, m);
            m = VSEL(b2, a2, m);
            const vcmp b3 = vbeats(a3, m);
            m = VSEL(b3, a3, m);
            const vec v = relu_in ? VSEL(VGT(m, zero), gv, zero) : gv;
            const vcmp w2 = VCMP_ANDNOT(b2, b3), w1 = VCMP_ANDNOT(VCMP_ANDNOT(b1, b2), b3);
            const vcmp w0 = VCMP_ANDNOT(VCMP_ANDNOT(VCMP_ANDNOT(VCMP_ALL, b1), b2), b3);
            VSTORE(d0 + at + c, VSEL(w0, v, zero));
            VSTORE(d1 + at + c, VSEL(w1, v, zero));
            VSTORE(d2 + at + c, VSEL(w2, v, zero));
            VSTORE(d3 + at + c, VSEL(b3, v, zero));
        }
        for (; c < n; c++) {
            const long i = at + c;
            float m = x0[i];
            int win = 0;
            if (sbeats(x1[i], m)) m = x1[i], win = 1;
            if (sbeats(x2[i], m)) m = x2[i], win = 2;
            if (sbeats(x3[i], m)) m = x3[i], win = 3;
            const float v = relu_in && !(m > 0.0f) ? 0.0f : g[gat + c];
            d0[i] = win == 0 ? v : 0.0f;
            d1[i] = win == 1 ? v : 0.0f;
            d2[i] = win == 2 ? v : 0.0f;
            d3[i] = win == 3 ? v : 0.0f;
        }
    }
}

/* maxpool4, also recording each output's winner for maxpool4_back_rec: r = the winning
 * input's number (0..3, the first of equals; a NaN wins), plus 4 if the winner is > 0
 * (a float code: the ISAs' compares and selects make and read it). */
static void maxpool4_rec(const float *x0, const float *x1, const float *x2, const float *x3, float *y, float *r,
                         long n, long windows)
{
    const vec zero = VZERO(), one = VBCAST(1.0f), two = VBCAST(2.0f), three = VBCAST(3.0f), four = VBCAST(4.0f);
    for (long w = 0; w < windows; w++, x0 += 2 * n, x1 += 2 * n, x2 += 2 * n, x3 += 2 * n, y += n, r += n) {
        long c = 0;
        for (; c + VL <= n; c += VL) {
            const vec a1 = VLOAD(x1 + c), a2 = VLOAD(x2 + c), a3 = VLOAD(x3 + c);
            vec m = VLOAD(x0 + c), code = zero;
            const vcmp b1 = vbeats(a1, m);
            m = VSEL(b1, a1, m), code = VSEL(b1, one, code);
            const vcmp b2 = vbeats(a2, m);
            m = VSEL(b2, a2, m), code = VSEL(b2, two, code);
            const vcmp b3 = vbeats(a3, m);
            m = VSEL(b3, a3, m), code = VSEL(b3, three, code);
            VSTORE(y + c, m);
            VSTORE(r + c, VSEL(VGT(m, zero), VADD(code, four), code));
        }
        for (; c < n; c++) {
            float m = x0[c];
            int win = 0;
            if (sbeats(x1[c], m)) m = x1[c], win = 1;
            if (sbeats(x2[c], m)) m = x2[c], win = 2;
            if (sbeats(x3[c], m)) m = x3[c], win = 3;
            y[c] = m;
            r[c] = (float)(win + (m > 0.0f ? 4 : 0));
        }
    }
}

/* maxpool4_back from the recorded winners r (maxpool4_rec) instead of the inputs. */
static void maxpool4_back_rec(const float *r, const float *g, float *d0, float *d1, float *d2, float *d3, long n,
                              long windows, int relu_in)
{
    const vec zero = VZERO(), half = VBCAST(0.5f), one_half = VBCAST(1.5f), two_half = VBCAST(2.5f);
    const vec three_half = VBCAST(3.5f), minus_four = VBCAST(-4.0f);
    for (long w = 0; w < windows; w++) {
        const long at = w * 2 * n, gat = w * n;
        long c = 0;
        for (; c + VL <= n; c += VL) {
            const vec code = VLOAD(r + gat + c), gv = VLOAD(g + gat + c);
            const vcmp positive = VGT(code, three_half);
            const vec v = relu_in ? VSEL(positive, gv, zero) : gv;
            const vec win = VSEL(positive, VADD(code, minus_four), code);
            const vcmp above0 = VGT(win, half), above1 = VGT(win, one_half), above2 = VGT(win, two_half);
            VSTORE(d0 + at + c, VSEL(VCMP_ANDNOT(VCMP_ALL, above0), v, zero));
            VSTORE(d1 + at + c, VSEL(VCMP_ANDNOT(above0, above1), v, zero));
            VSTORE(d2 + at + c, VSEL(VCMP_ANDNOT(above1, above2), v, zero));
            VSTORE(d3 + at + c, VSEL(above2, v, zero));
        }
        for (; c < n; c++) {
            const int code = (int)r[gat + c], win = code & 3;
            const float v = relu_in && code < 4 ? 0.0f : g[gat + c];
            d0[at + c] = win == 0 ? v : 0.0f;
            d1[at + c] = win == 1 ? v : 0.0f;
            d2[at + c] = win == 2 ? v : 0.0f;
            d3[at + c] = win == 3 ? v : 0.0f;
        }
    }
}

#include "kernel_image.h"

/* Row p of src (p < kc, rows ld apart) into panels of width columns (kernels.h): its
 * columns [q * width, (q + 1) * width) to row p of panel q, which starts at
 * dst + q * kc * width; 0 past cols. The outer kernel's B panels of an nn product and A
 * panels of a tn one. Eight rows at a time across all panels: the reads run along src's
 * rows (which the hardware prefetchers follow), and the writes to a panel are 8 rows
 * contiguous (a row at a time across panels kc * width floats apart wrote to one L1 set;
 * a panel at a time, each 128-byte piece of a row was a miss of its own). */
static void pack_n(const float *src, int ld, int cols, int kc, float *dst, int width)
{
    const size_t panel = (size_t)kc * width;
    for (int p0 = 0; p0 < kc; p0 += 8) {
        const int p1 = p0 + 8 < kc ? p0 + 8 : kc;
        for (int q = 0; q * width < cols; q++)
            for (int p = p0; p < p1; p++) {
                const float *s = src + (size_t)p * ld + q * width;
                float *d = dst + q * panel + (size_t)p * width;
                for (int j = 0; j < width; j += VL) {
                    /* the row 8 ahead: a weight matrix's rows are 4 KiB pages each, where
                     * the hardware's streamer starts over */
                    if (p + 8 < kc) __builtin_prefetch(s + (size_t)8 * ld + j, 0, 3);
                    VSTOREM(d + j, VMASK(width - j), VLOADM(s + j, VMASK(cols - q * width - j)));
                }
            }
    }
}

#ifndef PACK_T
/* dst[p * width + i] = src[i * ld + p] (kernels.h): the portable version. */
static void pack_t(const float *src, int ld, int rows, int kc, float *dst, int width)
{
    for (int p = 0; p < kc; p++) {
        float *d = dst + (size_t)p * width;
        for (int i = 0; i < rows; i++) d[i] = src[(size_t)i * ld + p];
        for (int i = rows; i < width; i++) d[i] = 0.0f;
    }
}
#define PACK_T pack_t
#endif

const sn_kernels KNAME = {
    .name = ISA_LABEL,
    .outer_mr = OUT_MR,
    .outer_nr = OUT_NR,
    .outer = outer_kernel,
    .outer_rows = outer_rows_kernel,
    .outer_pack = outer_pack_kernel,
    .pack_t = PACK_T,
    .pack_n = pack_n,
    .dot_mr = DOT_MR,
    .dot_nr = DOT_NR,
    .dot_kv = VL,
    .dot = dot_kernel,
    .dot2_mr = DOT2_MR,
    .dot2 = dot2_kernel,
    .col_mr = COL_MR,
    .col_nr = COL_NR,
    .col = col_kernel,
    .col_half = col_half_kernel,
    .dir_mr = DIR_MR,
    .dir_nr = DIR_NR,
    .dir = dir_kernel,
#ifdef DIRW_NV
    .dirw_mr = DIRW_MR,
    .dirw_nr = DIRW_NR,
    .dirw = dirw_kernel,
    .dirwt = dirwt_kernel,
#endif
    .nar_mr = NAR_MR,
    .nar_nr = NAR_NR,
    .narrow = narrow_kernel,
    .gat_mr = GAT_MR,
    .gat_nr = GAT_NR,
    .gathered = gathered_kernel,
    .narrow_gathered = narrow_gathered_kernel,
    .exp_shifted = exp_shifted,
    .fma_peak_chains = PEAK_CHAINS * VL,
    .fma_peak_probe = fma_peak_probe,
    .u8_to_f32 = u8_to_f32,
    .sum_rows = sum_rows,
    .sgd = sgd_update,
    .momentum = momentum_update,
    .nesterov = nesterov_update,
    .adam = adam_update,
    .img_thicken = img_thicken,
    .img_warp = img_warp,
    .img_to_u8 = img_to_u8,
    .maxpool4 = maxpool4,
    .maxpool4_back = maxpool4_back,
    .maxpool4_rec = maxpool4_rec,
    .maxpool4_back_rec = maxpool4_back_rec,
};
