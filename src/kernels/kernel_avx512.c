/* AVX-512F microkernels (compiled with -mavx512f -mfma). 32 zmm registers:
 * outer 14 x 32 = 28 accumulators + 2 B vectors + 1 broadcast: 92% of the FMA ceiling on
 * L1-resident panels (10 x 32: 89%; 8 x 48 and 6 x 64: 86%), the fewest loads per FMA;
 * the last rows of a product go to a tile exactly that tall (outer_rows).
 * dot 4 x 5 = 20 accumulators + 5 B + 1 A; 5 divides 50, 25 and 10, so the
 * forward pass wastes nothing on the output dimension. */
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

typedef __m512 vec;
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMAX(c, x) _mm512_max_ps((c), (x)) /* returns x if x is NaN */
#define VMIN(c, x) _mm512_min_ps((c), (x))
#define VROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VSCALE2(y, n) _mm512_scalef_ps((y), (n))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VSQRT(a) _mm512_sqrt_ps(a)
#define VRELU(x) _mm512_max_ps(_mm512_setzero_ps(), (x)) /* NaN in x passes (max returns its 2nd operand) */
#define VKEEP_POS(m, x) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((m), _mm512_setzero_ps(), _CMP_GT_OQ), (x))
#define VCVT_U8(p) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))
/* Four horizontal sums at once: the 16 lanes of v0..v3 are folded pairwise with
 * cross-lane shuffles, 13 instructions instead of 4 full reductions (~32). The order of
 * additions is fixed, so results stay deterministic. out[0..3] = sum(v0..v3). */
static inline __m128 hsum4(__m512 v0, __m512 v1, __m512 v2, __m512 v3)
{
    /* 512 -> 256: [v0 lo+hi | v1 lo+hi] as 256-bit halves */
    __m512 t0 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xEE));
    __m512 t1 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xEE));
    /* 256 -> 128: 128-bit lane q holds 4 partial sums of v_q */
    __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88), _mm512_shuffle_f32x4(t0, t1, 0xDD));
    /* 4 -> 1 inside each 128-bit lane */
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));
    /* element 0 of lane q is sum(v_q): gather the four */
    const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, u));
}

/* The dot tile's horizontal sums: each group of four rows of column j from one hsum4
 * (mr is a multiple of 4). */
#define DOT_SUMS(acc, sums, mr, nr)                                                                  \
    do {                                                                                             \
        _Pragma("GCC unroll 8") for (int j_ = 0; j_ < (nr); j_++)                                    \
        _Pragma("GCC unroll 4") for (int q_ = 0; q_ < (mr); q_ += 4) {                               \
            float s_[4];                                                                             \
            _mm_storeu_ps(s_, hsum4(acc[q_][j_], acc[q_ + 1][j_], acc[q_ + 2][j_], acc[q_ + 3][j_]));   \
            for (int i_ = 0; i_ < 4; i_++) sums[q_ + i_][j_] = s_[i_];                               \
        }                                                                                            \
    } while (0)

#define OUT_MR 14
#define OUT_NV 2
#define DOT_MR 4
#define DOT_NR 5
#define DOT2_MR 8 /* 8 x 2 = 16 accumulators + 2 B + 1 A */
/* In-register 16 x 16 transpose: unpack, 4x4 shuffles, then 128-bit lane shuffles. */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* The column kernel's write-back: its accumulators are columns of C; transpose each
 * 16-row block in registers and store rows with a COL_NR-lane mask, instead of 320
 * scalar stores. */
#define COL_STORE(acc, C, ldc, accumulate, ep, mv) col_store(acc, C, ldc, accumulate, ep, mv)
static inline __attribute__((always_inline)) void col_store(__m512 acc[][2], float *C, int ldc, int accumulate,
                                                            const sn_tile_ep *ep, const int mv);

/* narrow: 8 rows x 2 masked vectors = 16 accumulators (n = 25 in two vectors). */
typedef __mmask16 vmask;
#define VMASK(n) ((n) >= 16 ? (__mmask16)0xFFFF : (n) <= 0 ? (__mmask16)0 : (__mmask16)((1u << (n)) - 1))
#define VLOADM(p, m) _mm512_maskz_loadu_ps((m), (p))
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define NAR_MR 8
#define NAR_NV 2
#define RUN_MR1 16 /* run tiles (narrow_gathered_kernel): 16 x 1 or 13 x 2 vectors */
#define RUN_MR2 13
/* How many of roff[0..n) are consecutive from roff[0] (roff[j] == roff[0] + j): 16 a
 * compare. A scalar scan cost a third of a k = 9 product's time (a compare per row
 * against 18 FMAs, its counter spilled to the stack). */
static inline int run_length(const int *roff, int n)
{
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i from = _mm512_add_epi32(_mm512_set1_epi32(roff[0]), iota);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 in = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512i want = _mm512_add_epi32(from, _mm512_set1_epi32(j));
        const __mmask16 off = _mm512_mask_cmpneq_epi32_mask(in, _mm512_maskz_loadu_epi32(in, roff + j), want);
        if (off) return j + __builtin_ctz(off);
    }
    return n;
}
#define RUN_LENGTH(roff, n) run_length((roff), (n))
#define DIR_MR 8
#define DIR_NV 3
#define DIRW_MR 6 /* 6 x 4 vectors: 24 accumulators, 4 of B, 1 broadcast of 32 registers */
#define DIRW_NV 4
#define COL_MV 2
#define COL_NR 10
#define SFMA(a, b, c) fmaf((a), (b), (c)) /* compiles to one FMA instruction with -mfma */
/* compares and selects (max pooling): a mask register per compare */
typedef __mmask16 vcmp;
#define VGT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define VISNAN(a) _mm512_cmp_ps_mask((a), (a), _CMP_UNORD_Q)
#define VCMP_OR(a, b) ((vcmp)((a) | (b)))
#define VCMP_ANDNOT(a, b) ((vcmp)((a) & ~(b)))
#define VCMP_ALL ((vcmp)0xFFFF)
#define VSEL(m, a, b) _mm512_mask_blend_ps((m), (b), (a))
/* The outer kernel's packing across rows (kernels.h): 16 rows x 16 k at a time,
 * transposed in registers, instead of one scalar load per element from rows ld apart
 * (13% of a 1024^3 product's time before). */
static void pack_t_avx512(const float *src, int ld, int rows, int kc, float *dst, int width);
#define PACK_T pack_t_avx512
#define KNAME sn_kernels_avx512
#define ISA_LABEL "avx512"
#include "kernel_template.h"

static void pack_t_avx512(const float *src, int ld, int rows, int kc, float *dst, int width)
{
    for (int g = 0; g < width; g += 16) { /* rows g..g+15 of the panel */
        const int lanes = width - g < 16 ? width - g : 16;
        const __mmask16 store = (__mmask16)((1u << lanes) - 1);
        for (int p0 = 0; p0 < kc; p0 += 16) {
            const int np = kc - p0 < 16 ? kc - p0 : 16;
            const __mmask16 load = (__mmask16)((1u << np) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = g + i < rows ? _mm512_maskz_loadu_ps(load, src + (size_t)(g + i) * ld + p0) : _mm512_setzero_ps();
            transpose16(r);
            for (int p = 0; p < np; p++) _mm512_mask_storeu_ps(dst + (size_t)(p0 + p) * width + g, store, r[p]);
        }
    }
}

static inline __attribute__((always_inline)) void col_store(__m512 acc[][2], float *C, int ldc, int accumulate,
                                                            const sn_tile_ep *ep, const int mv)
{
    const __mmask16 m = (__mmask16)((1u << COL_NR) - 1);
    if (!accumulate && !ep) { /* the weight gradient's case: straight-line stores, no branches */
#pragma GCC unroll 2
        for (int v = 0; v < mv; v++) {
            __m512 r[16];
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) r[j] = j < COL_NR ? acc[j][v] : _mm512_setzero_ps();
            transpose16(r);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(C + (size_t)(v * 16 + i) * ldc, m, r[i]);
        }
        return;
    }
    for (int v = 0; v < mv; v++) {
        __m512 r[16];
        for (int j = 0; j < 16; j++) r[j] = j < COL_NR ? acc[j][v] : _mm512_setzero_ps();
        transpose16(r);
        for (int i = 0; i < 16; i++) {
            const size_t row = (size_t)(v * 16 + i);
            float *c = C + row * ldc;
            __m512 x = r[i];
            if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, c));
            if (ep) {
                if (ep->bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ep->bias));
                if (ep->relu) x = VRELU(x);
                if (ep->mask) x = VKEEP_POS(_mm512_maskz_loadu_ps(m, ep->mask + row * ep->ldmask), x);
            }
            _mm512_mask_storeu_ps(c, m, x);
        }
    }
}
