/* Internal: one table of microkernels per ISA, filled by the kernel_*.c files that
 * are compiled from kernel_template.h with different flags (-mavx512f, -mavx2 -mfma,
 * none). The driver (gemm.c) does the blocking, packing and threading; the
 * microkernels only multiply full, padded panels and never branch on size. */
#ifndef SN_KERNELS_H
#define SN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "scratchnet/gemm.h" /* sn_isa */

/* The GEMM epilogue for one full tile, pointers already offset to the tile's origin:
 * c += bias[j]; c = max(0, c) if relu (NaN passes); c = mask[i][j] > 0 ? c : 0. */
typedef struct sn_tile_ep {
    const float *bias;
    int relu;
    const float *mask;
    int ldmask;
} sn_tile_ep;

/* The epilogue of element (i, j) of a tile: + bias[j], ReLU (NaN passes: divergence must
 * stay visible), 0 where mask[i][j] is not > 0. The scalar definition: the vector kernels
 * do the same lane by lane (EP_VECTOR in kernel_template.h), and the driver's edge tiles
 * call this (gemm.c). */
static inline float sn_ep_element(const sn_tile_ep *ep, int i, int j, float c)
{
    if (ep->bias) c += ep->bias[j];
    if (ep->relu) c = c < 0.0f ? 0.0f : c;
    if (ep->mask && !(ep->mask[(size_t)i * ep->ldmask + j] > 0.0f)) c = 0.0f;
    return c;
}

typedef struct sn_kernels {
    const char *name;
    /* Outer-product kernel, vectorised along n: C tile (mr x nr) from
     * Ap (kc x mr, k-major, rows lda apart: Ap[k*lda + i]; packed panels have lda = mr) and
     * Bp (kc x nr, rows ldb apart: Bp[k*ldb + j];
     * packed panels have ldb = nr, full panels of B are read in place). */
    int outer_mr, outer_nr;
    void (*outer)(int kc, const float *Ap, int lda, const float *Bp, int ldb, float *C, int ldc, int accumulate,
                  const sn_tile_ep *ep);
    /* The same for the first `rows` (< outer_mr) rows of a tile only: a product's last rows. */
    void (*outer_rows)(int rows, int kc, const float *Ap, int lda, const float *Bp, int ldb, float *C, int ldc,
                       int accumulate, const sn_tile_ep *ep);
    /* outer, B read in place (rows ldb apart) and copied on the way to Bpack (kc x
     * outer_nr, k-major): a tile's computation and its B panel's packing in one pass. */
    void (*outer_pack)(int kc, const float *Ap, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
                       const sn_tile_ep *ep, float *Bpack);
    /* The outer kernel's packing of a row-major operand read across: dst[p * width + i] =
     * src[i * ld + p] for i < rows (0 for rows <= i < width), p < kc; width <= 32. op(A)
     * of an nn or nt product, B of an nt one. */
    void (*pack_t)(const float *src, int ld, int rows, int kc, float *dst, int width);
    /* The same read along, into as many panels as cols needs: panel q (at dst + q * kc *
     * width) has dst[p * width + j] = src[p * ld + q * width + j] (0 past cols), p < kc.
     * B of an nn product, op(A) of a tn one. */
    void (*pack_n)(const float *src, int ld, int cols, int kc, float *dst, int width);
    /* Dot kernel, vectorised along k: C tile (mr x nr) where C[i][j] = dot(A row i,
     * B row j), A rows (mr x kp, lda) and B rows (nr x kp, ldb) both contiguous in k.
     * kp is a multiple of dot_kv; the caller zero-pads k up to it. */
    int dot_mr, dot_nr, dot_kv;
    void (*dot)(int kp, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, int accumulate, const sn_tile_ep *ep);
    /* The same for a tile only 2 columns wide, dot2_mr rows (the direct kernel's tail). */
    int dot2_mr;
    void (*dot2)(int kp, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc, int accumulate, const sn_tile_ep *ep);
    /* Column kernel, vectorised along m: C tile (col_mr x col_nr) (+)= A^T * B where A is
     * k x col_mr (lda, contiguous in m: op(A) = A^T as stored) and B is k x col_nr (ldb),
     * broadcast element by element. For C = A^T * B with a narrow n (the weight gradient
     * written as in x out): n = 50 needs no padding, unlike an n-vectorised kernel.
     * pack != NULL: A's rows are also copied there (k x col_mr, contiguous) as they are
     * loaded, for the next tiles of the row panel to read. */
    int col_mr, col_nr;
    void (*col)(int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                int accumulate, const sn_tile_ep *ep, float *pack);
    /* The same for a half-height panel, col_mr / 2 rows (m = 784 ends in one). */
    void (*col_half)(int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                     int accumulate, const sn_tile_ep *ep, float *pack);

    /* Direct kernel, vectorised along n like the outer one but reading both operands in
     * place: C tile (dir_mr x dir_nr) (+)= A (dir_mr rows, lda, broadcast element by
     * element) * B (k x dir_nr, ldb). For nn products with a narrow n and a long k (the
     * forward pass with W as in x out): no packing at all, and dir_nr = 48 covers 48 of
     * the 50 outputs; the dot kernel takes the rest. */
    int dir_mr, dir_nr;
    void (*dir)(int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
                const sn_tile_ep *ep);
    /* The same with a wider, shorter tile (dirw_mr x dirw_nr) for an n that is a multiple
     * of dirw_nr (64 on AVX-512: a convolution with 64 channels), which the dir tiles
     * would leave a 16-column tail; dirw_nr = 0 on ISAs without the registers for it. */
    int dirw_mr, dirw_nr;
    void (*dirw)(int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
                 const sn_tile_ep *ep);
    /* The wide tile for tn: op(A) = A^T read in place, A k-major (A[p*lda + i]: a tile's
     * dirw_mr broadcasts come from one row of A). A convolution's weight gradient col^T dY
     * (col: P x E patches, dY: P x 64): 201 GFLOP/s on 160 x 64 x 121, the column
     * kernel 139. */
    void (*dirwt)(int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
                  const sn_tile_ep *ep);

    /* Narrow kernel, vectorised along n for the small layers' products: C tile
     * (rows x nc) (+)= op(A) (rows x k, in place: A[i*lda + p], or A[p*lda + i] if at)
     * * B (k x nc, ldb, in place) for any rows <= nar_mr and nc <= nar_nr, with masked
     * loads and stores: no packing, no padding. */
    int nar_mr, nar_nr;
    void (*narrow)(int k, int rows, int nc, const float *A, int lda, int at, const float *B, int ldb, float *C,
                   int ldc, int accumulate, const sn_tile_ep *ep);

    /* Gathered forms (an implicit GEMM: a convolution's patches read from the image, never
     * copied): op(A)[i][p] = A[roff[i] + koff[p]]. The gathered kernel's tile is gat_mr x
     * gat_nr (the wide direct tile where there is one, else the direct tile) and computes
     * each element as the direct kernels do (one chain of FMAs in k order); the narrow one
     * takes any number of rows m (in nar_mr-row tiles) and nc <= nar_nr columns, masked
     * where nc is not whole vectors, and computes each element as the narrow kernel. */
    int gat_mr, gat_nr;
    void (*gathered)(int k, const float *A, const int *roff, const int *koff, const float *B, int ldb, float *C,
                     int ldc, int accumulate, const sn_tile_ep *ep);
    void (*narrow_gathered)(int k, int m, int nc, const float *A, const int *roff, const int *koff,
                            const float *B, int ldb, float *C, int ldc, int accumulate, const sn_tile_ep *ep);

    /* dst[k] = exp(z[k] - shift), k < n: the softmax's exponentials (see vexp). */
    void (*exp_shifted)(float *dst, const float *z, float shift, int n);

    /* Benchmark only: iters x fma_peak_chains independent multiply-adds on registers. */
    int fma_peak_chains;
    float (*fma_peak_probe)(long iters);

    /* Element-wise work of a training step, vectorised with the same ISA. */
    void (*u8_to_f32)(float *dst, const uint8_t *src, long n, float scale);
    /* dst[c] = src[0][c] + ... + src[nsrc - 1][c] (added in that order, from 0), c < n;
     * 0 where gate[c] is not > 0, if gate. */
    void (*sum_rows)(float *dst, const float *const *src, int nsrc, long n, const float *gate);
    void (*sgd)(float *w, const float *g, long n, float lr);
    void (*momentum)(float *w, float *v, const float *g, long n, float lr, float mu);
    void (*nesterov)(float *w, float *v, const float *g, long n, float lr, float mu);
    /* 2 x 2 max pooling (pool.c), a row of `windows` windows of n channels, window w's
     * inputs at x_i + 2wn, its output at y + wn: y = the first largest of x0..x3 (a NaN
     * beats any number); back: d_i = g where input i won, else 0 (and 0 where the winner
     * is not > 0, with relu_in). */
    /* The image pipeline's pixel loops (kernel_image.h, augment.c). */
    void (*img_thicken)(const float *src, float *dst, long n, long fw, int grow, float t);
    void (*img_warp)(const float *origin, long fw, float *out, const float *gx, const float *gy, int n,
                     const float *map, float umax, float vmax);
    void (*img_to_u8)(uint8_t *dst, const float *src, long n);
    void (*maxpool4)(const float *x0, const float *x1, const float *x2, const float *x3, float *y, long n,
                     long windows);
    void (*maxpool4_back)(const float *x0, const float *x1, const float *x2, const float *x3, const float *g,
                          float *d0, float *d1, float *d2, float *d3, long n, long windows, int relu_in);
    /* The same, the forward pass also writing each output's winner to r (its number 0..3,
     * plus 4 if it is > 0, as a float), and the backward pass reading r, not the inputs. */
    void (*maxpool4_rec)(const float *x0, const float *x1, const float *x2, const float *x3, float *y, float *r, long n,
                         long windows);
    void (*maxpool4_back_rec)(const float *r, const float *g, float *d0, float *d1, float *d2, float *d3, long n,
                              long windows, int relu_in);
    void (*adam)(float *w, float *m, float *v, const float *g, long n, float step, float b1, float b2,
                 float eps);
} sn_kernels;

const sn_kernels *sn_kernels_active(void);
/* The kernel table of an ISA, or NULL if this build has none (dispatch.c's registry). */
const sn_kernels *sn_kernels_for(sn_isa isa);

#endif
