/* The GEMM driver: picks an algorithm from the transposes, packs zero-padded panels,
 * splits the tiles of C over OpenMP threads, and applies the fused epilogue.
 *
 * Two microkernel shapes, because the MLP's products are skinny:
 *  - op = nt (C = A * B^T, both operands contiguous in k): the forward pass
 *    Y = X * W^T with k = 784. The dot kernel vectorises along k, so the narrow
 *    output dimension (50, 25, 10) is never padded to a vector width.
 *  - everything else (nn: dX = dY * W, tn: dW = dY^T * X): the BLIS-style outer-product
 *    kernel vectorises along n (784 wide here) with KC-blocked, k-major packed panels.
 * Threads split tiles of C (rows x columns), never k: each element is computed by the
 * same instruction sequence whatever the thread count, hence bit-identical results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "scratchnet/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum { KC = 256 };            /* k-block of the outer kernel: a 256 x 32 B panel is 32 KiB (L1) */
enum { MAX_TILE = 16 * 128 }; /* floats in the largest microkernel tile of any ISA */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static int use_dot(sn_trans ta, sn_trans tb) { return ta == SN_N && tb == SN_T; }

static size_t workspace_for(const sn_kernels *kr, sn_trans ta, sn_trans tb, int m, int n, int k)
{
    if (use_dot(ta, tb)) {
        if (k % kr->dot_kv == 0 && m % kr->dot_mr == 0 && n % kr->dot_nr == 0)
            return 0; /* direct: the kernel reads A and B in place */
        size_t kp = round_up((size_t)k, (size_t)kr->dot_kv);
        return round_up(round_up((size_t)m, kr->dot_mr) * kp, 16) +
               round_up(round_up((size_t)n, kr->dot_nr) * kp, 16);
    }
    size_t kc = (size_t)(k < KC ? k : KC);
    return round_up(round_up((size_t)m, kr->outer_mr) * kc, 16) +
           round_up(round_up((size_t)n, kr->outer_nr) * kc, 16);
}

size_t sn_gemm_workspace(sn_trans ta, sn_trans tb, int m, int n, int k)
{
    /* The maximum over every kernel table, so a workspace stays big enough when a
     * test or benchmark switches ISA after allocating it. */
    size_t w = workspace_for(&sn_kernels_scalar, ta, tb, m, n, k);
#if defined(SN_HAVE_X86_KERNELS)
    size_t w2 = workspace_for(&sn_kernels_avx2, ta, tb, m, n, k);
    size_t w5 = workspace_for(&sn_kernels_avx512, ta, tb, m, n, k);
    if (w2 > w) w = w2;
    if (w5 > w) w = w5;
#endif
    return w;
}

typedef struct gemm_args {
    sn_trans ta, tb;
    int m, n, k;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    int accumulate; /* beta == 1 */
    float *C;
    int ldc;
    const sn_epilogue *ep;
} gemm_args;

/* Epilogue on the mi x nj block of C at (i0, j0). */
static void apply_epilogue(const sn_epilogue *ep, float *C, int ldc, int i0, int j0, int mi, int nj)
{
    if (!ep || (!ep->bias && !ep->relu && !ep->mask)) return;
    for (int i = 0; i < mi; i++) {
        float *c = C + (size_t)(i0 + i) * ldc + j0;
        if (ep->bias)
            for (int j = 0; j < nj; j++) c[j] += ep->bias[j0 + j];
        if (ep->relu)
            for (int j = 0; j < nj; j++) c[j] = c[j] < 0.0f ? 0.0f : c[j]; /* NaN passes: divergence must stay visible */
        if (ep->mask) {
            const float *mk = ep->mask + (size_t)(i0 + i) * ep->ldmask + j0;
            for (int j = 0; j < nj; j++) c[j] = mk[j] > 0.0f ? c[j] : 0.0f;
        }
    }
}

/* Edge tiles go through a small zero-padded buffer so the kernel never branches. */
static void load_edge(float *tile, int nr, const float *C, int ldc, int mi, int nj, int accumulate)
{
    if (!accumulate) return;
    for (int i = 0; i < mi; i++) memcpy(tile + (size_t)i * nr, C + (size_t)i * ldc, sizeof(float) * nj);
}

static void store_edge(const float *tile, int nr, float *C, int ldc, int mi, int nj)
{
    for (int i = 0; i < mi; i++) memcpy(C + (size_t)i * ldc, tile + (size_t)i * nr, sizeof(float) * nj);
}

/* ---- nt: dot kernel --------------------------------------------------------- */

/* Row r of the packed operand: A row (op N, m x k) or B row (op T, n x k), zero-padded
 * from k to kp; rows past the matrix are all zero. */
static void pack_row(float *dst, const float *src, int ld, int r, int rows, int k, int kp)
{
    if (r < rows) {
        memcpy(dst, src + (size_t)r * ld, sizeof(float) * k);
        memset(dst + k, 0, sizeof(float) * (size_t)(kp - k));
    } else {
        memset(dst, 0, sizeof(float) * kp);
    }
}

static void gemm_dot(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int mr = kr->dot_mr, nr = kr->dot_nr;
    const int mp = (int)round_up(g->m, mr), np = (int)round_up(g->n, nr);
    const float *A = g->A, *B = g->B;
    int lda = g->lda, ldb = g->ldb, kp = g->k;

    if (workspace_for(kr, g->ta, g->tb, g->m, g->n, g->k) != 0) {
        kp = (int)round_up(g->k, kr->dot_kv);
        float *Ap = ws, *Bp = ws + round_up((size_t)mp * kp, 16);
#pragma omp for schedule(static)
        for (int r = 0; r < mp + np; r++) {
            if (r < mp) pack_row(Ap + (size_t)r * kp, g->A, g->lda, r, g->m, g->k, kp);
            else pack_row(Bp + (size_t)(r - mp) * kp, g->B, g->ldb, r - mp, g->n, g->k, kp);
        }
        A = Ap, B = Bp, lda = kp, ldb = kp;
    }

    const int tiles_n = np / nr, tiles = (mp / mr) * tiles_n;
    /* Row-panel-major order: a thread's A rows stay in L1 across its column tiles. */
#pragma omp for schedule(static)
    for (int t = 0; t < tiles; t++) {
        int i0 = (t / tiles_n) * mr, j0 = (t % tiles_n) * nr;
        int mi = g->m - i0 < mr ? g->m - i0 : mr, nj = g->n - j0 < nr ? g->n - j0 : nr;
        float *c = g->C + (size_t)i0 * g->ldc + j0;
        const float *a = A + (size_t)i0 * lda, *b = B + (size_t)j0 * ldb;
        if (mi == mr && nj == nr) {
            kr->dot(kp, a, lda, b, ldb, c, g->ldc, g->accumulate);
        } else {
            float tile[MAX_TILE];
            load_edge(tile, nr, c, g->ldc, mi, nj, g->accumulate);
            kr->dot(kp, a, lda, b, ldb, tile, nr, g->accumulate);
            store_edge(tile, nr, c, g->ldc, mi, nj);
        }
        apply_epilogue(g->ep, g->C, g->ldc, i0, j0, mi, nj);
    }
}

/* ---- nn / tn / tt: outer-product kernel with packed panels ------------------- */

/* Ap panel (kc x mr, k-major) from op(A) rows i0.., columns p0..; zero past m. */
static void pack_a(float *Ap, const gemm_args *g, int i0, int p0, int kc, int mr)
{
    int mi = g->m - i0 < mr ? g->m - i0 : mr;
    for (int p = 0; p < kc; p++) {
        float *dst = Ap + (size_t)p * mr;
        if (g->ta == SN_T) { /* A stored k x m: a row of the panel is contiguous */
            memcpy(dst, g->A + (size_t)(p0 + p) * g->lda + i0, sizeof(float) * mi);
        } else {
            const float *src = g->A + (size_t)i0 * g->lda + p0 + p;
            for (int i = 0; i < mi; i++) dst[i] = src[(size_t)i * g->lda];
        }
        for (int i = mi; i < mr; i++) dst[i] = 0.0f;
    }
}

/* Bp panel (kc x nr, k-major) from op(B) rows p0.., columns j0..; zero past n. */
static void pack_b(float *Bp, const gemm_args *g, int j0, int p0, int kc, int nr)
{
    int nj = g->n - j0 < nr ? g->n - j0 : nr;
    for (int p = 0; p < kc; p++) {
        float *dst = Bp + (size_t)p * nr;
        if (g->tb == SN_N) {
            memcpy(dst, g->B + (size_t)(p0 + p) * g->ldb + j0, sizeof(float) * nj);
        } else {
            const float *src = g->B + (size_t)j0 * g->ldb + p0 + p;
            for (int j = 0; j < nj; j++) dst[j] = src[(size_t)j * g->ldb];
        }
        for (int j = nj; j < nr; j++) dst[j] = 0.0f;
    }
}

static void gemm_outer(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int mr = kr->outer_mr, nr = kr->outer_nr;
    const int panels_m = (int)(round_up(g->m, mr) / mr), panels_n = (int)(round_up(g->n, nr) / nr);
    const int kc_max = g->k < KC ? g->k : KC;
    float *Ap = ws, *Bp = ws + round_up((size_t)panels_m * mr * kc_max, 16);

    for (int p0 = 0; p0 < g->k; p0 += KC) {
        const int kc = g->k - p0 < KC ? g->k - p0 : KC;
        const int accumulate = g->accumulate || p0 > 0, last = p0 + KC >= g->k;
#pragma omp for schedule(static)
        for (int q = 0; q < panels_m + panels_n; q++) {
            if (q < panels_m) pack_a(Ap + (size_t)q * mr * kc, g, q * mr, p0, kc, mr);
            else pack_b(Bp + (size_t)(q - panels_m) * nr * kc, g, (q - panels_m) * nr, p0, kc, nr);
        }
        const int tiles = panels_m * panels_n;
        /* Column-panel-major order: a thread's B panel (kc x nr) stays in L1 while it
         * sweeps the A panels, as in BLIS's jr/ir loops. */
#pragma omp for schedule(static)
        for (int t = 0; t < tiles; t++) {
            int jp = t / panels_m, ip = t % panels_m;
            int i0 = ip * mr, j0 = jp * nr;
            int mi = g->m - i0 < mr ? g->m - i0 : mr, nj = g->n - j0 < nr ? g->n - j0 : nr;
            float *c = g->C + (size_t)i0 * g->ldc + j0;
            const float *a = Ap + (size_t)ip * mr * kc, *b = Bp + (size_t)jp * nr * kc;
            if (mi == mr && nj == nr) {
                kr->outer(kc, a, b, c, g->ldc, accumulate);
            } else {
                float tile[MAX_TILE];
                load_edge(tile, nr, c, g->ldc, mi, nj, accumulate);
                kr->outer(kc, a, b, tile, nr, accumulate);
                store_edge(tile, nr, c, g->ldc, mi, nj);
            }
            if (last) apply_epilogue(g->ep, g->C, g->ldc, i0, j0, mi, nj);
        }
    }
}

/* k == 0: C = beta * C, then the epilogue. */
static void gemm_empty(const gemm_args *g)
{
#pragma omp for schedule(static)
    for (int i = 0; i < g->m; i++) {
        if (!g->accumulate) memset(g->C + (size_t)i * g->ldc, 0, sizeof(float) * g->n);
        apply_epilogue(g->ep, g->C, g->ldc, i, 0, 1, g->n);
    }
}

static void gemm_body(const gemm_args *g, float *ws)
{
    const sn_kernels *kr = sn_kernels_active();
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) gemm_empty(g);
    else if (use_dot(g->ta, g->tb)) gemm_dot(kr, g, ws);
    else gemm_outer(kr, g, ws);
}

void sn_gemm_ws(sn_trans ta, sn_trans tb, int m, int n, int k,
                const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc, const sn_epilogue *ep, float *ws)
{
    gemm_args g = { ta, tb, m, n, k, A, lda, B, ldb, beta != 0.0f, C, ldc, ep };
    (void)sn_kernels_active(); /* initialise before any team reads it */
#ifdef _OPENMP
    if (!omp_in_parallel()) {
#pragma omp parallel
        gemm_body(&g, ws);
        return;
    }
#endif
    gemm_body(&g, ws);
}

static int check_args(sn_trans ta, sn_trans tb, int m, int n, int k, int lda, int ldb,
                      float beta, int ldc, sn_error *err)
{
    if (m < 0 || n < 0 || k < 0) return sn_fail(err, SN_EINVAL, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    if (lda < (ta == SN_N ? k : m) || ldb < (tb == SN_N ? n : k) || ldc < n)
        return sn_fail(err, SN_EINVAL, "gemm: leading dimension too small");
    if (beta != 0.0f && beta != 1.0f) return sn_fail(err, SN_EINVAL, "gemm: beta must be 0 or 1");
    return SN_OK;
}

int sn_gemm(sn_trans ta, sn_trans tb, int m, int n, int k,
            const float *A, int lda, const float *B, int ldb,
            float beta, float *C, int ldc, const sn_epilogue *ep)
{
    int rc = check_args(ta, tb, m, n, k, lda, ldb, beta, ldc, NULL);
    if (rc) return rc;
    size_t floats = sn_gemm_workspace(ta, tb, m, n, k);
    float *ws = NULL;
    if (floats) {
        ws = aligned_alloc(64, round_up(floats * sizeof(float), 64));
        if (!ws) return SN_ENOMEM;
    }
    sn_gemm_ws(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc, ep, ws);
    free(ws);
    return SN_OK;
}
