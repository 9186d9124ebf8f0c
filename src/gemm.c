/* The GEMM driver: picks an algorithm from the transposes and sizes, packs zero-padded
 * panels where a kernel needs them, splits the tiles of C over OpenMP threads, and
 * applies the fused epilogue.
 *
 * The MLP's products are skinny (n = 50, 25, 10; k = 784 or the batch), so the choice
 * (choose()) is about which dimension to vectorise and where padding wastes work:
 *  - direct (nn, n <= 64, long k: the forward pass X * W with W in x out): n-vectorised
 *    8 x 48 tiles reading both operands in place; the 1-2 leftover columns as dot2 tiles;
 *    6 x 64 tiles where they cover n (AVX-512), also for tn (A^T read in place);
 *  - column (tn, n <= 64: the weight gradient X^T * dY): m-vectorised 32 x 10 tiles,
 *    written back through an in-register transpose;
 *  - narrow (the small layers, k < 64 or m, n <= 64): masked tiles, no packing;
 *  - dot (nt with a long k): k-vectorised, one horizontal sum per element;
 *  - outer (everything else): BLIS-style, KC-blocked packed panels.
 * Threads split tiles of C (rows x columns), never k: each element is computed by the
 * same instruction sequence whatever the thread count, hence bit-identical results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "scratchnet/gemm.h"
#include "sync.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum { KC = 256 };            /* k-block of the outer kernel: a 256 x 32 B panel is 32 KiB (L1) */
/* A panels (mr rows each) per block of the outer kernel's row loop: ~240 rows, a
 * 240 x 256 block of packed A is 240 KiB, a share of L2 beside the streaming B panels
 * (1024^3 on one Sapphire Rapids core: 131 -> 150-169 GFLOP/s). */
#define MC_PANELS(mr) ((240 + (mr) - 1) / (mr))
enum { MAX_TILE = 16 * 128 }; /* floats in the largest microkernel tile of any ISA */
/* B panels per column block of gemm_outer_cols: 32 x 32 columns x KC = 1 MiB, in L2 while
 * every A panel passes it */
enum { NC_PANELS = 32 };

/* Narrow outputs (n <= SMALL_N) are what padding to a vector width hurts most. */
enum { SMALL_N = 64 };
/* nn and tn products the wide direct tile takes beyond SMALL_N (choose): n up to 4
 * tiles, k up to a B strip of 512 KiB (L2). */
enum { WIDE_DIRECT_N = 256, WIDE_DIRECT_K = 2048 };

/* How old a look at the machine's idle CPUs sn_gemm_ws may use: a look costs ~50 us, so
 * one per 20 ms is under 0.3% of the caller's time. */
#define IDLE_LOOK_S 0.02

/* Multiply-adds below which sn_gemm_ws does not open a team (see there). */
#define TEAM_MIN_FMAS (1 << 20)

typedef enum gemm_alg { ALG_DOT, ALG_COL, ALG_DIRECT, ALG_NARROW, ALG_OUTER } gemm_alg;

/* Below this k a product is too short to amortise packing or horizontal sums. */
enum { SHORT_K = 64 };

static gemm_alg choose(const sn_kernels *kr, sn_trans ta, sn_trans tb, int m, int n, int k)
{
    /* The small layers' products (forward and input gradient, k = 10..50, n = 10..50;
     * weight gradient, m = 50, 25): masked narrow tiles read in place, no packing (nt
     * transposes its small B once). */
    if (ta == SN_N && n <= SMALL_N && k < SHORT_K) return ALG_NARROW;
    /* tn whose n the wide direct tile covers exactly (a convolution's weight gradient with
     * 64 channels): that tile with A^T read in place beats the column kernel, which pads
     * 64 columns to 70 and packs B to do it; and, up to 4 tiles across, the outer path's
     * packing (a CNN's dense weight gradient, tn 1600x128x128: 0.93x -> 1.03x of OpenBLAS
     * on one thread; 128x128x128 at two threads 0.95x -> 1.90x). But not for a long k
     * with many rows (a wide first layer's weight gradient at batch 512, tn 784x256x512):
     * A^T's rows, 4 m bytes apart, are a new page every few k steps for each tile, and
     * the packed panels win (0.86x -> 1.08x of the best BLAS; 1600x128x512 0.94x ->
     * 1.07x; up to m = 256 the direct tile stays ahead: 256x128x512 1.10x vs 0.99x). */
    if (ta == SN_T && tb == SN_N && kr->dirw_nr && n % kr->dirw_nr == 0 &&
        (n <= SMALL_N || (n <= WIDE_DIRECT_N && k <= WIDE_DIRECT_K && (k <= KC || m <= WIDE_DIRECT_N))))
        return ALG_DIRECT;
    /* (For a weight gradient whose n the column kernel's tile divides, that kernel wastes
     * nothing on n and is faster: 25 x 10 at k = 128 runs at 41 vs 35 GFLOP/s.) */
    if (ta == SN_T && tb == SN_N && n <= SMALL_N && m <= SMALL_N && n % kr->col_nr) return ALG_NARROW;
    /* One narrow vector or less (n = 16: LeNet-5's second weight gradient, 150 x 16 x 100):
     * the broadcasts of a tile's rows come from one row of A^T, and the column kernel
     * would pad 16 columns to 20 and pack B to do it. */
    if (ta == SN_T && tb == SN_N && n % kr->col_nr && 2 * n <= kr->nar_nr) return ALG_NARROW;
    /* nt: the dot kernel when k is long enough to amortise its horizontal sums and n is
     * narrow; a wide n packs B^T's panels for the outer kernel instead (a CNN's 1600 x
     * 128 dense layer's input gradient, 64 rows: 87 -> 94 GFLOP/s on Sapphire Rapids;
     * 121 x 288 x 64: 67 -> 108). */
    if (ta == SN_N && tb == SN_T) return k >= SHORT_K && n <= SMALL_N ? ALG_DOT : ALG_OUTER;
    /* An n narrower than one direct tile would be all dot tail: masked narrow tiles. */
    if (ta == SN_N && tb == SN_N && n < kr->dir_nr && n <= kr->nar_nr) return ALG_NARROW;
    if (ta == SN_N && tb == SN_N && n <= SMALL_N) return ALG_DIRECT; /* direct + dot tail */
    /* nn up to 4 wide tiles across (n = 65..256: a CNN's or a wide MLP's dense layer,
     * forward) on ISAs with a wide tile: the direct tiles (wide where they cover n), A and
     * B read in place, each thread its own column strips of B (k x 64, rows 4 n bytes
     * apart: close enough for the prefetchers and the cache sets; n = 1024 was 2x slower
     * than packing). No packing at all. Only where a narrow tile takes the columns the
     * direct tiles leave (LeNet-5's 120 = 2 x 48 + 24: 1.03x / 0.96x -> 1.19x / 1.56x of
     * the best BLAS at 1 / 2 threads); its 84 = 48 + 36 would need the dot kernel's tail
     * and stays packed (0.85x that way). */
    if (ta == SN_N && tb == SN_N && kr->dirw_nr && n <= WIDE_DIRECT_N && k <= WIDE_DIRECT_K &&
        (n % kr->dirw_nr == 0 || n % kr->dir_nr <= kr->nar_nr))
        return ALG_DIRECT;
    if (ta == SN_T && tb == SN_N && n <= SMALL_N) return ALG_COL;    /* A^T rows are m-vectors */
    /* tn up to 256 wide where the outer tile would pad n (LeNet-5's 84 and 120, an MLP's
     * 100 or 200: 96, 128, 128, 224 columns' work) and the column kernel's 10-wide tiles
     * hardly do, given rows enough or a short k (784x100x128: 0.87x -> 1.22x of the best
     * BLAS at one thread; 300x90x512 1.00x -> 1.12x; 400x120x128 1.01x -> 1.16x; with few
     * rows and a long k the outer path stays ahead: 120x84x512 0.92x vs 0.83x). */
    if (ta == SN_T && tb == SN_N && n <= WIDE_DIRECT_N && n % kr->outer_nr && (m >= WIDE_DIRECT_N || k <= 128))
        return ALG_COL;
    return ALG_OUTER;
}

typedef struct dot_plan {
    int kp, pack_a, pack_b;
} dot_plan;

static dot_plan plan_dot(const sn_kernels *kr, sn_trans tb, int m, int n, int k)
{
    dot_plan p;
    p.kp = (int)sn_round_up((size_t)k, (size_t)kr->dot_kv);
    p.pack_a = k % kr->dot_kv != 0 || m % kr->dot_mr != 0;
    p.pack_b = k % kr->dot_kv != 0 || n % kr->dot_nr != 0 || tb == SN_N;
    return p;
}

/* gemm_outer's: every A panel of a k-block and two k-blocks of B panels (or more A than B
 * panels' worth of both); gemm_outer_cols takes a block of A panels per thread and one
 * k-block of B panels out of it, in as many A panels per block as fit (floats). */
static size_t outer_workspace(const sn_kernels *kr, int m, int n, int k)
{
    const size_t kc = (size_t)(k < KC ? k : KC);
    const size_t a = sn_round_up(sn_round_up((size_t)m, kr->outer_mr) * kc, 16);
    const size_t b = sn_round_up(sn_round_up((size_t)n, kr->outer_nr) * kc, 16);
    return a + b + (a > b ? a : b);
}

static size_t workspace_for(const sn_kernels *kr, sn_trans ta, sn_trans tb, int m, int n, int k)
{
    switch (choose(kr, ta, tb, m, n, k)) {
    case ALG_DOT: {
        dot_plan p = plan_dot(kr, tb, m, n, k);
        return (p.pack_a ? sn_round_up(sn_round_up((size_t)m, kr->dot_mr) * p.kp, 16) : 0) +
               (p.pack_b ? sn_round_up(sn_round_up((size_t)n, kr->dot_nr) * p.kp, 16) : 0);
    }
    case ALG_DIRECT: {
        /* A's ragged last row panel, zero-padded; then the dot workspace of the n tail
         * (an upper bound: both operands packed). */
        const int rem = n % kr->dir_nr;
        const size_t kp = sn_round_up((size_t)k, kr->dot_kv);
        const size_t dot = sn_round_up(sn_round_up((size_t)m, kr->dot_mr) * kp, 16) +
                           sn_round_up(sn_round_up((size_t)rem, kr->dot_nr) * kp, 16);
        const size_t narrow = sn_round_up((size_t)kr->nar_mr * k, 16);
        const size_t mr = (size_t)(kr->dirw_mr > kr->dir_mr ? kr->dirw_mr : kr->dir_mr); /* either tile's */
        return sn_round_up(mr * k, 16) + (rem ? (dot > narrow ? dot : narrow) : 0);
    }
    case ALG_NARROW: /* op(A)'s ragged last row panel; B^T for nt, in column panels of nar_nr */
        return sn_round_up((size_t)kr->nar_mr * k, 16) +
               (tb == SN_T ? sn_round_up((size_t)k * sn_round_up((size_t)n, kr->nar_nr), 16) : 0);
    case ALG_COL: /* the packed A panel lives on each thread's stack */
        return n % kr->col_nr ? sn_round_up((size_t)k * sn_round_up((size_t)n, kr->col_nr), 16) : 0;
    default:
        return outer_workspace(kr, m, n, k);
    }
}

size_t sn_gemm_workspace(sn_trans ta, sn_trans tb, int m, int n, int k)
{
    /* The maximum over every kernel table, so a workspace stays big enough when a
     * test or benchmark switches ISA after allocating it. */
    size_t w = 0;
    for (int isa = 0; isa < SN_ISA_COUNT; isa++) {
        const sn_kernels *kr = sn_kernels_for((sn_isa)isa);
        const size_t need = kr ? workspace_for(kr, ta, tb, m, n, k) : 0;
        if (need > w) w = need;
    }
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
    int serial; /* 1: this thread does all the work (sn_gemm_local), no work-sharing */
    sn_barrier *team; /* the team's barrier; NULL: the caller's OpenMP team (or none) */
} gemm_args;

/* This thread's share [lo, hi) of n work items: a contiguous block of the team's static
 * split (as schedule(static) would give), or all of them in serial mode. */
static int share_bound(const gemm_args *g, int n, int upper)
{
    int tid = 0, nth = 1;
#ifdef _OPENMP
    if (!g->serial) tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    (void)g;
#endif
    return (int)((long)n * (tid + upper) / nth);
}

/* The team's size (1 in serial mode). */
static int team_threads(const gemm_args *g)
{
#ifdef _OPENMP
    if (!g->serial) return omp_get_num_threads();
#else
    (void)g;
#endif
    return 1;
}

/* for (i over this thread's share of [0, n)); follow with team_sync(g). */
#define FOR_SHARE(g, i, n) for (int i##_hi = share_bound(g, n, 1), i = share_bound(g, n, 0); i < i##_hi; i++)

/* The end of a work-shared loop: the team waits (no-op in serial mode or without a team).
 * Our own barrier, not OpenMP's: it sleeps after a bounded spin (sync.h), so a partner
 * descheduled by another process is not waited for with a spinning core. */
static void team_sync(const gemm_args *g)
{
    if (g->serial) return;
    if (g->team) {
        sn_barrier_wait(g->team);
    } else { /* called by every thread of the caller's team: its barrier */
#pragma omp barrier
    }
}

/* Epilogue on the mi x nj block of C at (i0, j0). */
static void tile_done(const sn_epilogue *ep, float *C, int ldc, int i0, int j0, int mi, int nj)
{
    if (!ep || !ep->done) return;
    if (j0 == 0 && nj == ldc) { /* whole rows: one contiguous piece */
        ep->done(ep->user, C + (size_t)i0 * ldc, mi * nj);
        return;
    }
    for (int i = 0; i < mi; i++) ep->done(ep->user, C + (size_t)(i0 + i) * ldc + j0, nj);
}

static const sn_tile_ep *tile_ep(const sn_epilogue *ep, int i0, int j0, sn_tile_ep *out);

/* The epilogue on the mi x nj block of C at (i0, j0), after an edge tile was copied out. */
static void apply_epilogue(const sn_epilogue *ep, float *C, int ldc, int i0, int j0, int mi, int nj)
{
    sn_tile_ep te;
    if (!tile_ep(ep, i0, j0, &te)) return;
    for (int i = 0; i < mi; i++) {
        float *c = C + (size_t)(i0 + i) * ldc + j0;
        for (int j = 0; j < nj; j++) c[j] = sn_ep_element(&te, i, j, c[j]);
    }
}

/* The epilogue of the full tile at (i0, j0), for the kernel to apply as it stores; NULL
 * when there is none. */
static const sn_tile_ep *tile_ep(const sn_epilogue *ep, int i0, int j0, sn_tile_ep *out)
{
    if (!ep || (!ep->bias && !ep->relu && !ep->mask)) return NULL;
    out->bias = ep->bias ? ep->bias + j0 : NULL;
    out->relu = ep->relu;
    out->mask = ep->mask ? ep->mask + (size_t)i0 * ep->ldmask + j0 : NULL;
    out->ldmask = ep->ldmask;
    return out;
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

/* Where a kernel writes the tile of C at (i0, j0) that holds mi x nj of its mr x nr
 * elements: C itself for a whole tile (the kernel applies the epilogue as it stores, on
 * the last k-block), else a zero-padded buffer the kernel fills whole, copied out by
 * tile_out_end, which then applies the epilogue in C. So no kernel branches on size. */
typedef struct tile_out {
    float *c;               /* for the kernel: C or buf */
    int ldc;
    const sn_tile_ep *ep;   /* the kernel's epilogue: NULL for an edge tile or a k-block not last */
    int i0, j0, mi, nj, nr, edge;
    sn_tile_ep te;
    float buf[MAX_TILE];
} tile_out;

static void tile_out_begin(tile_out *o, const gemm_args *g, int i0, int j0, int mi, int nj, int mr, int nr,
                           int accumulate, int last)
{
    float *c = g->C + (size_t)i0 * g->ldc + j0;
    o->i0 = i0, o->j0 = j0, o->mi = mi, o->nj = nj, o->nr = nr;
    o->edge = mi < mr || nj < nr;
    if (!o->edge) {
        o->c = c, o->ldc = g->ldc;
        o->ep = last ? tile_ep(g->ep, i0, j0, &o->te) : NULL;
        return;
    }
    load_edge(o->buf, nr, c, g->ldc, mi, nj, accumulate);
    o->c = o->buf, o->ldc = nr, o->ep = NULL;
}

static void tile_out_end(const tile_out *o, const gemm_args *g, int last)
{
    if (!o->edge) return;
    store_edge(o->buf, o->nr, g->C + (size_t)o->i0 * g->ldc + o->j0, g->ldc, o->mi, o->nj);
    if (last) apply_epilogue(g->ep, g->C, g->ldc, o->i0, o->j0, o->mi, o->nj);
}

/* ---- nt (and nn with a narrow n): dot kernel ---------------------------------- */

/* Row r of a k-contiguous packed operand, zero-padded from k to kp; rows past `rows` are
 * zero. transposed: the row is column r of a k x rows matrix (B in nn), gathered. */
static void pack_row(float *dst, const float *src, int ld, int r, int rows, int k, int kp, int transposed)
{
    if (r >= rows) {
        memset(dst, 0, sizeof(float) * kp);
        return;
    }
    if (transposed)
        for (int p = 0; p < k; p++) dst[p] = src[(size_t)p * ld + r];
    else
        memcpy(dst, src + (size_t)r * ld, sizeof(float) * k);
    memset(dst + k, 0, sizeof(float) * (size_t)(kp - k));
}

static void gemm_dot(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int mr = kr->dot_mr, nr = kr->dot_nr;
    const int mp = (int)sn_round_up(g->m, mr), np = (int)sn_round_up(g->n, nr);
    const dot_plan plan = plan_dot(kr, g->tb, g->m, g->n, g->k);
    const float *A = g->A, *B = g->B;
    int lda = g->lda, ldb = g->ldb;
    const int kp = plan.kp;

    if (plan.pack_a || plan.pack_b) {
        float *Ap = ws, *Bp = ws + (plan.pack_a ? sn_round_up((size_t)mp * kp, 16) : 0);
        const int rows_a = plan.pack_a ? mp : 0, rows_b = plan.pack_b ? np : 0;
        FOR_SHARE(g, r, rows_a + rows_b)
        {
            if (r < rows_a)
                pack_row(Ap + (size_t)r * kp, g->A, g->lda, r, g->m, g->k, kp, 0);
            else
                pack_row(Bp + (size_t)(r - rows_a) * kp, g->B, g->ldb, r - rows_a, g->n, g->k, kp, g->tb == SN_N);
        }
        team_sync(g);
        if (plan.pack_a) A = Ap, lda = kp;
        if (plan.pack_b) B = Bp, ldb = kp;
    }

    const int tiles_m = mp / mr, tiles = tiles_m * (np / nr);
    /* Column-panel-major order: the B panel (nr rows of k) stays in L1 while the thread
     * streams A panels past it. Streaming the side with fewer rows (mr = 4 < nr = 5)
     * moves the fewest bytes from L2 per FMA. */
    FOR_SHARE(g, t, tiles)
    {
        int i0 = (t % tiles_m) * mr, j0 = (t / tiles_m) * nr;
        int mi = g->m - i0 < mr ? g->m - i0 : mr, nj = g->n - j0 < nr ? g->n - j0 : nr;
        const float *a = A + (size_t)i0 * lda, *b = B + (size_t)j0 * ldb;
        tile_out o;
        tile_out_begin(&o, g, i0, j0, mi, nj, mr, nr, g->accumulate, 1);
        kr->dot(kp, a, lda, b, ldb, o.c, o.ldc, g->accumulate, o.ep);
        tile_out_end(&o, g, 1);
        tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nj);
    }
    team_sync(g);
}

/* ---- tn with a narrow n: column kernel ------------------------------------------ */

/* k-block of the column kernel. Read in place, a row panel of A^T has its k rows lda
 * floats apart: for the weight gradient (lda = 784) a 128-row panel touches ~100 pages,
 * more than the first-level DTLB holds, and the misses cost ~15% at one thread if every
 * column panel re-reads it. So the first tile of a row panel copies the rows it loads
 * into a contiguous COL_KC x col_mr panel on the thread's stack (16 KiB at col_mr = 32,
 * k = 128), and the other tiles read that. A last row panel of at most half height
 * (784 = 24.5 x 32) runs on the half-height kernel; a ragged one is packed up front,
 * zero-padded, so no kernel sees a partial panel. */
enum { COL_KC = 128, COL_MR_MAX = 32 };

static void gemm_col(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int mr = kr->col_mr, nr = kr->col_nr, k = g->k;
    const int np = (int)sn_round_up(g->n, nr);
    const float *B = g->B;
    int ldb = g->ldb;
    if (g->n % nr) { /* B zero-padded to a whole number of column panels */
        float *Bp = ws;
        FOR_SHARE(g, p, k)
        {
            memcpy(Bp + (size_t)p * np, g->B + (size_t)p * g->ldb, sizeof(float) * g->n);
            memset(Bp + (size_t)p * np + g->n, 0, sizeof(float) * (size_t)(np - g->n));
        }
        team_sync(g);
        B = Bp, ldb = np;
    }
    _Alignas(64) float Ap[COL_KC * COL_MR_MAX];
    const int panels_m = (int)(sn_round_up(g->m, mr) / mr), panels_n = np / nr;
    /* This thread's tiles [t_lo, t_hi), row-panel-major: for each row panel it touches,
     * each k-block goes through the thread's column panels with A packed by the first. */
    const int t_lo = share_bound(g, panels_m * panels_n, 0), t_hi = share_bound(g, panels_m * panels_n, 1);
    for (int ip = t_lo / panels_n; ip * panels_n < t_hi; ip++) {
        const int i0 = ip * mr, mi = g->m - i0 < mr ? g->m - i0 : mr;
        const int jp_lo = t_lo > ip * panels_n ? t_lo - ip * panels_n : 0;
        const int jp_hi = t_hi < (ip + 1) * panels_n ? t_hi - ip * panels_n : panels_n;
        for (int p0 = 0; p0 < k; p0 += COL_KC) {
            const int kc = k - p0 < COL_KC ? k - p0 : COL_KC, last = p0 + COL_KC >= k;
            const int accumulate = g->accumulate || p0 > 0;
            /* A last panel of at most half height goes to the half-height kernel; one
             * that is still ragged is packed up front, zero-padded to the kernel's rows. */
            const int half = mi <= mr / 2, rows_p = half ? mr / 2 : mr;
            int packed = mi < rows_p;
            if (packed)
                for (int p = 0; p < kc; p++) {
                    float *dst = Ap + (size_t)p * rows_p;
                    memcpy(dst, g->A + (size_t)(p0 + p) * g->lda + i0, sizeof(float) * mi);
                    memset(dst + mi, 0, sizeof(float) * (size_t)(rows_p - mi));
                }
            for (int jp = jp_lo; jp < jp_hi; jp++) {
                const int j0 = jp * nr, nj = g->n - j0 < nr ? g->n - j0 : nr;
                const float *a = packed ? Ap : g->A + (size_t)p0 * g->lda + i0, *b = B + (size_t)p0 * ldb + j0;
                const int lda = packed ? rows_p : g->lda;
                float *pack = packed ? NULL : Ap;
                void (*kernel)(int, const float *, int, const float *, int, float *, int, int, const sn_tile_ep *,
                               float *) = half ? kr->col_half : kr->col;
                tile_out o;
                tile_out_begin(&o, g, i0, j0, mi, nj, rows_p, nr, accumulate, last);
                kernel(kc, a, lda, b, ldb, o.c, o.ldc, accumulate, o.ep, pack);
                tile_out_end(&o, g, last);
                packed = 1;
                /* A thread that owns the whole row panel hands its finished rows over at
                 * once (contiguous when n == ldc), not in 10-wide pieces. */
                if (last && (jp_lo > 0 || jp_hi < panels_n)) tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nj);
            }
        }
        if (jp_lo == 0 && jp_hi == panels_n) tile_done(g->ep, g->C, g->ldc, i0, 0, mi, g->n);
    }
    team_sync(g);
}

/* ---- nn with a narrow n and a long k: direct kernel + dot tail ------------------- */

/* The last, partial row panel of op(A), rows m - medge .. m - 1, zero-padded to mr rows:
 * dst is mr x k for a row-major A, k x mr for A stored k x m (op(A) = A^T). Work-shared;
 * the caller syncs the team. */
static void pack_a_edge(const gemm_args *g, float *dst, int mr, int medge)
{
    const int k = g->k, i0 = g->m - medge;
    if (g->ta == SN_N) {
        FOR_SHARE(g, r, mr)
        {
            if (r < medge)
                memcpy(dst + (size_t)r * k, g->A + (size_t)(i0 + r) * g->lda, sizeof(float) * k);
            else
                memset(dst + (size_t)r * k, 0, sizeof(float) * k);
        }
    } else {
        FOR_SHARE(g, p, k)
        {
            memcpy(dst + (size_t)p * mr, g->A + (size_t)p * g->lda + i0, sizeof(float) * medge);
            memset(dst + (size_t)p * mr + medge, 0, sizeof(float) * (size_t)(mr - medge));
        }
    }
}

/* The 1-2 columns the direct kernel's tiles leave (n = 50 = 48 + 2), for rows [i0, i0 + mi)
 * of a direct tile: dot2 tiles run right after that direct tile, while its rows of A are
 * in L1. (A separate pass would pad them to the dot kernel's 5 columns and read all of
 * A again.) a: those rows, lda apart; Bt: the tail's columns of B transposed, 2 x k. */
static void direct_tail(const sn_kernels *kr, const gemm_args *g, const float *a, int lda, const float *Bt, int i0,
                        int mi, int j0)
{
    const int mr2 = kr->dot2_mr, rem = g->n - j0;
    for (int s = 0; s < mi; s += mr2) {
        const int rows = mi - s < mr2 ? mi - s : mr2, i = i0 + s;
        tile_out o;
        tile_out_begin(&o, g, i, j0, rows, rem, mr2, 2, g->accumulate, 1);
        kr->dot2(g->k, a + (size_t)s * lda, lda, Bt, g->k, o.c, o.ldc, g->accumulate, o.ep);
        tile_out_end(&o, g, 1);
        tile_done(g->ep, g->C, g->ldc, i, j0, rows, rem);
    }
}

static void gemm_narrow(const sn_kernels *kr, const gemm_args *g, float *ws);

static void gemm_direct(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    /* The wide tile when it covers n exactly: every element is the same chain of FMAs in
     * k order either way, so the bits do not change, only the tail's cost. */
    const int wide = kr->dirw_nr && g->n % kr->dirw_nr == 0, at = g->ta == SN_T; /* at: only with wide (choose) */
    const int mr = wide ? kr->dirw_mr : kr->dir_mr, nr = wide ? kr->dirw_nr : kr->dir_nr, k = g->k;
    void (*const tile_kernel)(int, const float *, int, const float *, int, float *, int, int, const sn_tile_ep *) =
        at ? kr->dirwt : wide ? kr->dirw : kr->dir;
    const int n_main = g->n / nr * nr, medge = g->m % mr;
    const int panels_m = (g->m + mr - 1) / mr, panels_n = n_main / nr;
    /* A 1-2 column tail goes with the direct tiles (dot2 reads A's rows in place, so k
     * must be whole vectors); any other tail is a separate dot product afterwards. */
    const int fuse_tail =
        panels_n && g->n - n_main > 0 && g->n - n_main <= 2 && k % kr->dot_kv == 0 && mr % kr->dot2_mr == 0;
    float *Ae = ws; /* the last, partial row panel of A, zero-padded (mr x k) */
    float *Bt = ws + sn_round_up((size_t)mr * k, 16);
    if (panels_n && medge) pack_a_edge(g, Ae, mr, medge);
    if (fuse_tail) {
        FOR_SHARE(g, j, 2)
        {
            pack_row(Bt + (size_t)j * k, g->B + n_main, g->ldb, j, g->n - n_main, k, k, 1);
        }
    }
    if ((panels_n && medge) || fuse_tail) team_sync(g);
    /* Column strip by column strip: a team of two splits n = 128 into a strip each, each
     * thread streaming its own k x nr of B while its row panels pass it. */
    FOR_SHARE(g, t, panels_m * panels_n)
    {
        int jp = t / panels_m, ip = t % panels_m, i0 = ip * mr, j0 = jp * nr;
        int mi = g->m - i0 < mr ? g->m - i0 : mr;
        const float *a = mi < mr ? Ae : at ? g->A + i0 : g->A + (size_t)i0 * g->lda;
        const int lda = mi < mr ? (at ? mr : k) : g->lda; /* pack_a_edge's layouts */
        tile_out o;
        tile_out_begin(&o, g, i0, j0, mi, nr, mr, nr, g->accumulate, 1);
        tile_kernel(k, a, lda, g->B + j0, g->ldb, o.c, o.ldc, g->accumulate, o.ep);
        tile_out_end(&o, g, 1);
        tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nr);
        if (fuse_tail && jp == panels_n - 1) direct_tail(kr, g, a, lda, Bt, i0, mi, n_main);
    }
    team_sync(g);
    if (n_main < g->n && !fuse_tail) {
        /* The last n % nr columns: C[:, n_main:] = A * B[:, n_main:] with the dot kernel
         * (B's columns transposed while packed). */
        sn_epilogue tail_ep;
        if (g->ep) {
            tail_ep = *g->ep;
            if (tail_ep.bias) tail_ep.bias += n_main;
            if (tail_ep.mask) tail_ep.mask += n_main;
        }
        gemm_args t = *g;
        t.n = g->n - n_main;
        t.B = g->B + n_main;
        t.C = g->C + n_main;
        t.ep = g->ep ? &tail_ep : NULL;
        /* A tail one narrow tile covers runs there, B read in place (n = 64 = 48 + 16:
         * the dot kernel's packing and horizontal sums made its 16 columns cost as much
         * as the other 48); wider tails take the dot kernel. */
        if (t.n <= kr->nar_nr)
            gemm_narrow(kr, &t, ws + sn_round_up((size_t)mr * k, 16));
        else
            gemm_dot(kr, &t, ws + sn_round_up((size_t)mr * k, 16));
    }
}

/* ---- small nn / nt: narrow kernel ------------------------------------------------ */

static void gemm_narrow(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int nb = kr->nar_nr, k = g->k, n = g->n, at = g->ta == SN_T, bt = g->tb == SN_T;
    /* op(B) = B^T, B stored n x k: transposed into column panels of nb (k x nb each, a few
     * KiB) by the kernels' in-register transpose (an element-by-element loop was ~15% of
     * the MLP's nt 128x50x25); otherwise read in place. */
    float *Bt = ws + sn_round_up((size_t)kr->nar_mr * k, 16);
    if (bt) {
        FOR_SHARE(g, jp, (n + nb - 1) / nb)
        {
            const int j0 = jp * nb, nj = n - j0 < nb ? n - j0 : nb;
            kr->pack_t(g->B + (size_t)j0 * g->ldb, g->ldb, nj, k, Bt + (size_t)jp * k * nb, nb);
        }
        team_sync(g);
    }
    /* Row panels of balanced heights, each at most nar_mr and read in place (m = 9: 5 + 4
     * rows, not a full panel and a zero-padded one); an element is the same chain of
     * FMAs whatever its panel's height, so the split never changes a bit. */
    const int panels_m = (g->m + kr->nar_mr - 1) / kr->nar_mr, panels_n = (n + nb - 1) / nb;
    const int base = g->m / panels_m, taller = g->m % panels_m; /* the first `taller` have base + 1 */
    FOR_SHARE(g, t, panels_m * panels_n)
    {
        const int ip = t / panels_n, jp = t % panels_n, j0 = jp * nb;
        const int i0 = ip * base + (ip < taller ? ip : taller), mi = base + (ip < taller);
        const int nj = n - j0 < nb ? n - j0 : nb;
        const float *a = at ? g->A + i0 : g->A + (size_t)i0 * g->lda;
        sn_tile_ep te;
        const float *b = bt ? Bt + (size_t)jp * k * nb : g->B + j0;
        kr->narrow(k, mi, nj, a, g->lda, at, b, bt ? nb : g->ldb, g->C + (size_t)i0 * g->ldc + j0, g->ldc,
                   g->accumulate, tile_ep(g->ep, i0, j0, &te));
        tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nj);
    }
    team_sync(g);
}

/* ---- nn / tn / tt: outer-product kernel with packed panels ------------------- */

/* Row panel ip of op(A) for a tile of mr rows: its first row, its rows, and its width
 * packed (the row stride of its k-major panel). Panels of mr rows; but when the last
 * would have 1-3 rows (m = 128 with mr = 14: 9 x 14 + 2), the last two share the rest
 * evenly (8 + 8), packed as wide as they are: a tile of r rows x 2 vectors is 2r chains
 * of FMAs, and below 8 chains their 4-cycle latency stalls the FMA units (the 2-row tile
 * of m = 128 was ~3% of a 784-1024-1024-10 step for 1.6% of its work). */
typedef struct row_panel {
    int i0, rows, width;
} row_panel;

static row_panel panel_of(int m, int mr, int ip)
{
    const int panels = (m + mr - 1) / mr, rest = m % mr;
    row_panel r;
    if (rest && rest < 4 && panels >= 2 && ip >= panels - 2) {
        const int both = mr + rest, first = (both + 1) / 2;
        r.i0 = (panels - 2) * mr + (ip == panels - 2 ? 0 : first);
        r.rows = ip == panels - 2 ? first : both - first;
        r.width = r.rows;
        return r;
    }
    r.i0 = ip * mr;
    r.rows = m - r.i0 < mr ? m - r.i0 : mr;
    r.width = mr;
    return r;
}

/* A panels ip0 .. ip0 + count - 1 (panel_of; each at a stride of kc * mr floats) from
 * op(A) columns p0..; zero rows up to a panel's width. */
static void pack_a(const sn_kernels *kr, float *Ap, const gemm_args *g, int ip0, int count, int p0, int kc, int mr)
{
    if (count <= 0) return;
    int whole = count; /* panels of width mr at the start, packed together for tn */
    while (whole > 0 && panel_of(g->m, mr, ip0 + whole - 1).width != mr) whole--;
    if (g->ta == SN_T && whole > 0) { /* A stored k x m: the panels' rows are pieces of A's rows */
        const int i0 = ip0 * mr, rows = g->m - i0 < whole * mr ? g->m - i0 : whole * mr;
        kr->pack_n(g->A + (size_t)p0 * g->lda + i0, g->lda, rows, kc, Ap, mr);
    }
    for (int q = g->ta == SN_T ? whole : 0; q < count; q++) {
        const row_panel r = panel_of(g->m, mr, ip0 + q);
        float *dst = Ap + (size_t)q * mr * kc;
        if (g->ta == SN_T)
            kr->pack_n(g->A + (size_t)p0 * g->lda + r.i0, g->lda, r.rows, kc, dst, r.width);
        else
            kr->pack_t(g->A + (size_t)r.i0 * g->lda + p0, g->lda, r.rows, kc, dst, r.width);
    }
}

/* B panels jp0 .. jp0 + count - 1 (each kc x nr, k-major, one after another) from
 * op(B) rows p0.., zero past n. */
static void pack_b(const sn_kernels *kr, float *Bp, const gemm_args *g, int jp0, int count, int p0, int kc, int nr)
{
    const int j0 = jp0 * nr, cols = g->n - j0 < count * nr ? g->n - j0 : count * nr;
    if (count <= 0) return;
    if (g->tb == SN_N) {
        kr->pack_n(g->B + (size_t)p0 * g->ldb + j0, g->ldb, cols, kc, Bp, nr);
        return;
    }
    for (int q = 0; q < count; q++) {
        const int nj = cols - q * nr < nr ? cols - q * nr : nr;
        kr->pack_t(g->B + (size_t)(j0 + q * nr) * g->ldb + p0, g->ldb, nj, kc, Bp + (size_t)q * nr * kc, nr);
    }
}

/* One tile of the outer kernel: C rows ip*mr.., columns jp*nr.. from packed panels. On
 * the last k-block (last) the epilogue, and ep->done for the tile unless the caller
 * reports a larger piece itself (last == LAST_NO_DONE). */
enum { LAST_NO_DONE = 2 };
static void outer_tile(const sn_kernels *kr, const gemm_args *g, const float *a, const float *b, int ip, int jp, int kc,
                       int accumulate, int last)
{
    const int mr = kr->outer_mr, nr = kr->outer_nr, j0 = jp * nr, nj = g->n - j0 < nr ? g->n - j0 : nr;
    const row_panel r = panel_of(g->m, mr, ip);
    const int i0 = r.i0, mi = r.rows;
    tile_out o;
    if (mi < mr && nj == nr) { /* the last rows, whole columns: only as many rows as there are */
        sn_tile_ep te;
        kr->outer_rows(mi, kc, a, r.width, b, nr, g->C + (size_t)i0 * g->ldc + j0, g->ldc, accumulate,
                       last ? tile_ep(g->ep, i0, j0, &te) : NULL);
        if (last == 1) tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nj);
        return;
    }
    /* an edge in columns too: the whole tile into a buffer (a panel narrower than mr,
     * zero rows read past its width, are written to the buffer's rows only) */
    if (r.width != mr) {
        tile_out_begin(&o, g, i0, j0, mi, nj, mr, nr, accumulate, last);
        kr->outer_rows(mi, kc, a, r.width, b, nr, o.c, o.ldc, accumulate, o.ep);
    } else {
        tile_out_begin(&o, g, i0, j0, mi, nj, mr, nr, accumulate, last);
        kr->outer(kc, a, mr, b, nr, o.c, o.ldc, accumulate, o.ep);
    }
    tile_out_end(&o, g, last);
    if (last == 1) tile_done(g->ep, g->C, g->ldc, i0, j0, mi, nj);
}

/* The outer path when each thread has B panels enough: the team splits the columns
 * and shares nothing; each thread packs its own B panels and, block by block, all of
 * op(A) for itself (at two threads, twice the A packing of a shared split, but no wait
 * inside the product and no panel read from the other core's cache). Per thread, as
 * BLIS's loops: columns in blocks of NC_PANELS (a k-block of them is 1 MiB: L2); per
 * k-block, op(A) in blocks of MC_PANELS; within one, each A panel (14 KiB: L1) against
 * every B panel of the column block, streamed from L2. That last order walks C along
 * rows, where the hardware prefetchers follow it; B panel by B panel walked C down
 * columns, 14 rows 4 KiB apart per tile, each a miss (1024^3 on one Sapphire Rapids
 * core: +6%; 2048 x 2048 x 512: +17%). */
static void gemm_outer_cols(const sn_kernels *kr, const gemm_args *g, float *ws, int panels_m, int panels_n,
                            int block)
{
    const int mr = kr->outer_mr, nr = kr->outer_nr, kc_max = g->k < KC ? g->k : KC;
    const int threads = team_threads(g), tid = share_bound(g, threads, 0);
    const size_t a_block = sn_round_up((size_t)block * mr * kc_max, 16);
    const int lo = share_bound(g, panels_n, 0), hi = share_bound(g, panels_n, 1);
    /* this thread's own: a block of A panels, and its B panels from lo * nr * kc_max on
     * (not kc: a thread into the short last k-block must not write where its neighbour,
     * with no wait between k-blocks, still reads) */
    float *Ap = ws + (size_t)tid * a_block, *Bp = ws + (size_t)threads * a_block + (size_t)lo * nr * kc_max;
    for (int jb = lo; jb < hi; jb += NC_PANELS) {
        const int je = jb + NC_PANELS < hi ? jb + NC_PANELS : hi;
        for (int p0 = 0; p0 < g->k; p0 += KC) {
            const int kc = g->k - p0 < KC ? g->k - p0 : KC;
            const int accumulate = g->accumulate || p0 > 0, last = p0 + KC >= g->k;
            /* B stored k x n: the first row panel's tiles read it in place and pack it as
             * they go (outer_pack), so packing's memory latency overlaps their FMAs; the
             * column block's ragged last panel is packed apart */
            const int fused = g->tb == SN_N && panel_of(g->m, mr, 0).rows == mr;
            const int ragged = je * nr > g->n;
            if (!fused)
                pack_b(kr, Bp, g, jb, je - jb, p0, kc, nr);
            else if (ragged)
                pack_b(kr, Bp + (size_t)(je - 1 - jb) * nr * kc, g, je - 1, 1, p0, kc, nr);
            for (int b0 = 0; b0 < panels_m; b0 += block) {
                const int b1 = b0 + block < panels_m ? b0 + block : panels_m;
                pack_a(kr, Ap, g, b0, b1 - b0, p0, kc, mr);
                for (int ip = b0; ip < b1; ip++) {
                    for (int jp = jb; jp < je; jp++) {
                        float *b = Bp + (size_t)(jp - jb) * nr * kc;
                        if (fused && ip == 0 && !(ragged && jp == je - 1)) {
                            sn_tile_ep te;
                            kr->outer_pack(kc, Ap, mr, g->B + (size_t)p0 * g->ldb + (size_t)jp * nr, g->ldb,
                                           g->C + (size_t)jp * nr, g->ldc, accumulate,
                                           last ? tile_ep(g->ep, 0, jp * nr, &te) : NULL, b);
                            continue;
                        }
                        outer_tile(kr, g, Ap + (size_t)(ip - b0) * mr * kc, b, ip, jp, kc, accumulate,
                                   last ? LAST_NO_DONE : 0);
                    }
                    /* the row band's columns at once: whole rows are one piece for the
                     * fused optimiser (a call per 32-float row of a tile cost ~6% of a
                     * 784-1024-1024-10 step) */
                    if (last) {
                        const row_panel r = panel_of(g->m, mr, ip);
                        const int j0 = jb * nr, j1 = je * nr < g->n ? je * nr : g->n;
                        tile_done(g->ep, g->C, g->ldc, r.i0, j0, r.rows, j1 - j0);
                    }
                }
            }
        }
    }
    team_sync(g); /* the product is whole when the team leaves */
}

/* The products the skinny kernels do not take. With 4 or more B panels per thread,
 * gemm_outer_cols (nothing shared). Otherwise (a narrow n over a team: n <= 224 at two
 * threads), BLIS's loops with B shared. Per k-block of KC: every B
 * panel (kc x nr) is packed once into the shared workspace; op(A) in blocks of
 * MC_PANELS panels (~240 rows: a block stays in L2) and, within a block, B panel by B
 * panel (one stays in L1 while the block's A panels pass it). With enough rows the team
 * splits op(A)'s panels, each thread packing and using its own (no A crosses cores, and
 * no wait between packing A and using it); with few, it splits the tiles. Either way an
 * element of C is the same sum in the same order, whoever computes it. */
static void gemm_outer(const sn_kernels *kr, const gemm_args *g, float *ws)
{
    const int mr = kr->outer_mr, nr = kr->outer_nr;
    const int panels_m = (int)(sn_round_up(g->m, mr) / mr), panels_n = (int)(sn_round_up(g->n, nr) / nr);
    const int kc_max = g->k < KC ? g->k : KC, mcp = MC_PANELS(mr), threads = team_threads(g);
    /* By columns with nothing shared (gemm_outer_cols) on one thread, and on a team when
     * each thread has at least 4 B panels (with 2 each, every A panel packed twice cost
     * more than sharing B lost): at two threads 0.75-0.90x of the best BLAS -> 0.95-1.22x
     * on nn/nt/tn 128..1024 x 1024 x 784..1024 (Sapphire Rapids), where packed B read
     * across cores and a wait per k-block lost. Blocks of A as large as MC_PANELS and the
     * workspace allow (one or two threads: always the whole MC_PANELS). */
    if (threads == 1 || panels_n >= 4 * threads) {
        const size_t ws_floats = outer_workspace(kr, g->m, g->n, g->k);
        const size_t b = sn_round_up((size_t)panels_n * nr * kc_max, 16);
        int block = panels_m < mcp ? panels_m : mcp;
        while (block > 0 && (size_t)threads * sn_round_up((size_t)block * mr * kc_max, 16) + b > ws_floats) block--;
        if (block > 0) {
            gemm_outer_cols(kr, g, ws, panels_m, panels_n, block);
            return;
        }
    }
    float *Ap = ws, *B0 = ws + sn_round_up((size_t)panels_m * mr * kc_max, 16);
    float *B1 = B0 + sn_round_up((size_t)panels_n * nr * kc_max, 16);
    const int by_rows = panels_m >= 4 * threads;

    for (int p0 = 0; p0 < g->k; p0 += KC) {
        const int kc = g->k - p0 < KC ? g->k - p0 : KC;
        const int accumulate = g->accumulate || p0 > 0, last = p0 + KC >= g->k;
        float *Bp = (p0 / KC) % 2 ? B1 : B0;
        if (by_rows) {
            /* k-blocks alternate between two B buffers, so one wait per k-block suffices:
             * a thread past this block's wait has finished the previous block's tiles, so
             * nobody still reads the buffer the next block packs into. (A is each
             * thread's own.) Small products with a long k (a CNN's 128 x 128 x 1600) were
             * mostly waits. */
            {
                const int lo = share_bound(g, panels_n, 0), hi = share_bound(g, panels_n, 1);
                pack_b(kr, Bp + (size_t)lo * nr * kc, g, lo, hi - lo, p0, kc, nr);
            }
            team_sync(g);
            const int lo = share_bound(g, panels_m, 0), hi = share_bound(g, panels_m, 1);
            for (int b0 = lo; b0 < hi; b0 += mcp) {
                const int b1 = b0 + mcp < hi ? b0 + mcp : hi;
                pack_a(kr, Ap + (size_t)b0 * mr * kc, g, b0, b1 - b0, p0, kc, mr);
                for (int jp = 0; jp < panels_n; jp++)
                    for (int ip = b0; ip < b1; ip++)
                        outer_tile(kr, g, Ap + (size_t)ip * mr * kc, Bp + (size_t)jp * nr * kc, ip, jp, kc,
                                   accumulate, last);
            }
            if (last) team_sync(g); /* the product is whole when the team leaves */
            continue;
        }
        FOR_SHARE(g, q, panels_m + panels_n)
        {
            if (q < panels_m)
                pack_a(kr, Ap + (size_t)q * mr * kc, g, q, 1, p0, kc, mr);
            else
                pack_b(kr, Bp + (size_t)(q - panels_m) * nr * kc, g, q - panels_m, 1, p0, kc, nr);
        }
        team_sync(g);
        /* Tiles in the same block order: blocks of A panels, B panel by B panel within. */
        const int full = panels_m / mcp, in_full = full * mcp * panels_n;
        FOR_SHARE(g, t, panels_m * panels_n)
        {
            int jp, ip;
            if (t < in_full) {
                const int b = t / (mcp * panels_n), r = t % (mcp * panels_n);
                jp = r / mcp, ip = b * mcp + r % mcp;
            } else {
                const int rest = panels_m - full * mcp, r = t - in_full;
                jp = r / rest, ip = full * mcp + r % rest;
            }
            outer_tile(kr, g, Ap + (size_t)ip * mr * kc, Bp + (size_t)jp * nr * kc, ip, jp, kc, accumulate, last);
        }
        team_sync(g);
    }
}

/* k == 0: C = beta * C, then the epilogue. */
static void gemm_empty(const gemm_args *g)
{
    FOR_SHARE(g, i, g->m)
    {
        if (!g->accumulate) memset(g->C + (size_t)i * g->ldc, 0, sizeof(float) * g->n);
        apply_epilogue(g->ep, g->C, g->ldc, i, 0, 1, g->n);
        tile_done(g->ep, g->C, g->ldc, i, 0, 1, g->n);
    }
    team_sync(g);
}

static void gemm_body(const gemm_args *g, float *ws)
{
    const sn_kernels *kr = sn_kernels_active();
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0)
        gemm_empty(g);
    else
        switch (choose(kr, g->ta, g->tb, g->m, g->n, g->k)) {
        case ALG_DOT:
            gemm_dot(kr, g, ws);
            break;
        case ALG_DIRECT:
            gemm_direct(kr, g, ws);
            break;
        case ALG_COL:
            gemm_col(kr, g, ws);
            break;
        case ALG_NARROW:
            gemm_narrow(kr, g, ws);
            break;
        default:
            gemm_outer(kr, g, ws);
            break;
        }
}

void sn_gemm_ws(sn_trans ta, sn_trans tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc, const sn_epilogue *ep, float *ws)
{
    gemm_args g = {ta, tb, m, n, k, A, lda, B, ldb, beta != 0.0f, C, ldc, ep, 0, NULL};
    (void)sn_kernels_active(); /* initialise before any team reads it */
#ifdef _OPENMP
    /* omp_get_level, not omp_in_parallel: a one-thread team is an inactive region, and
     * opening a nested team inside it would oversubscribe the machine. A product below
     * TEAM_MIN_FMAS runs on the calling thread: opening a team costs ~1 us with one
     * thread and ~2.5 us with two (measured), more than splitting such a product saves.
     * The bits are the same either way. */
    if (omp_get_level() == 0 && omp_get_max_threads() > 1 && (double)m * n * k >= TEAM_MIN_FMAS) {
        /* Only as many threads as there are idle CPUs (looked at every IDLE_LOOK_S): on a
         * busy machine a team's partner waits for its descheduled thread at every sync. */
        const int threads = sn_idle_cpus(omp_get_max_threads(), IDLE_LOOK_S);
        sn_barrier team;
        sn_barrier_reset(&team);
        g.team = &team;
#pragma omp parallel num_threads(threads)
        {
            sn_barrier_join(&team, omp_get_num_threads());
            gemm_body(&g, ws);
        }
        return;
    }
#endif
    gemm_body(&g, ws);
}

void sn_gemm_local(sn_trans ta, sn_trans tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const sn_epilogue *ep, float *ws)
{
    gemm_args g = {ta, tb, m, n, k, A, lda, B, ldb, beta != 0.0f, C, ldc, ep, 1, NULL};
    gemm_body(&g, ws);
}

/* The gathered product, on the calling thread: gathered tiles where whole, narrow
 * gathered tiles for the rows and columns they leave (every element one chain of FMAs
 * in k order in either, so the split never changes a bit). Reads A in place: no
 * workspace. Column tiles outermost: one tile's k x gat_nr of B stays in L1 while the row
 * panels pass it (a convolution's input gradient, 484 x 288 x 64 with B = W^T: B is 72
 * KiB, and row panels outermost read all of it from L2 for each). */
void sn_gemm_gathered_local(int m, int n, int k, const float *A, const int *roff, const int *koff, const float *B,
                            int ldb, float beta, float *C, int ldc, const sn_epilogue *ep)
{
    const sn_kernels *kr = sn_kernels_active();
    const int mr = kr->gat_mr, nr = kr->gat_nr, accumulate = beta != 0.0f;
    const int n_main = n / nr * nr, m_main = n_main ? m / mr * mr : 0;
    sn_tile_ep te;
    for (int j0 = 0; j0 < n_main; j0 += nr)
        for (int i0 = 0; i0 < m_main; i0 += mr) {
            kr->gathered(k, A, roff + i0, koff, B + j0, ldb, C + (size_t)i0 * ldc + j0, ldc, accumulate,
                         tile_ep(ep, i0, j0, &te));
            tile_done(ep, C, ldc, i0, j0, mr, nr);
        }
    /* the rest in narrow tiles, one call per column strip: columns [n_main, n) of the
     * whole row panels, then every column of the last, short one */
    for (int part = 0; part < 2; part++) {
        const int r0 = part ? m_main : 0, r1 = part ? m : m_main, c0 = part ? 0 : n_main;
        if (r1 == r0) continue;
        for (int j0 = c0; j0 < n; j0 += kr->nar_nr) {
            const int nj = n - j0 < kr->nar_nr ? n - j0 : kr->nar_nr;
            kr->narrow_gathered(k, r1 - r0, nj, A, roff + r0, koff, B + j0, ldb, C + (size_t)r0 * ldc + j0, ldc,
                                accumulate, tile_ep(ep, r0, j0, &te));
            tile_done(ep, C, ldc, r0, j0, r1 - r0, nj);
        }
    }
}

static int check_args(sn_trans ta, sn_trans tb, int m, int n, int k, int lda, int ldb, float beta, int ldc,
                      sn_error *err)
{
    if (m < 0 || n < 0 || k < 0) return sn_fail(err, SN_EINVAL, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    if (lda < (ta == SN_N ? k : m) || ldb < (tb == SN_N ? n : k) || ldc < n)
        return sn_fail(err, SN_EINVAL, "gemm: leading dimension too small");
    if (beta != 0.0f && beta != 1.0f) return sn_fail(err, SN_EINVAL, "gemm: beta must be 0 or 1");
    return SN_OK;
}

int sn_gemm(sn_trans ta, sn_trans tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb, float beta,
            float *C, int ldc, const sn_epilogue *ep)
{
    int rc = check_args(ta, tb, m, n, k, lda, ldb, beta, ldc, NULL);
    if (rc) return rc;
    size_t floats = sn_gemm_workspace(ta, tb, m, n, k);
    float *ws = NULL;
    if (floats) {
        ws = aligned_alloc(64, sn_round_up(floats * sizeof(float), 64));
        if (!ws) return SN_ENOMEM;
    }
    sn_gemm_ws(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc, ep, ws);
    free(ws);
    return SN_OK;
}
