/* AVX-512F microkernels (compiled with -mavx512f -mfma). 32 zmm registers:
 * outer 10 x 32 = 20 accumulators + 2 B vectors + 1 broadcast. Ten rows divide the
 * MLP's 50-wide layer and most batches exactly; 32 columns pad 784 to 800 (2%).
 * dot 4 x 5 = 20 accumulators + 5 B + 1 A; 5 divides 50, 25 and 10, so the
 * forward pass wastes nothing on the output dimension. */
#include <immintrin.h>
#include <math.h>

typedef __m512 vec;
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
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

/* The dot tile's horizontal sums: each group of four rows of column j from one hsum4. */
#define DOT_SUMS(acc, sums)                                                                          \
    do {                                                                                             \
        _Pragma("GCC unroll 8") for (int j_ = 0; j_ < DOT_NR; j_++)                                  \
        _Pragma("GCC unroll 4") for (int q_ = 0; q_ < DOT_MR; q_ += 4) {                             \
            float s_[4];                                                                             \
            _mm_storeu_ps(s_, hsum4(acc[q_][j_], acc[q_ + 1][j_], acc[q_ + 2][j_], acc[q_ + 3][j_]));   \
            for (int i_ = 0; i_ < 4; i_++) sums[q_ + i_][j_] = s_[i_];                               \
        }                                                                                            \
    } while (0)

#define OUT_MR 10
#define OUT_NV 2
#define DOT_MR 4
#define DOT_NR 5
#define DIR_MR 8
#define DIR_NV 3
#define COL_MV 2
#define COL_NR 10
#define SFMA(a, b, c) fmaf((a), (b), (c)) /* compiles to one FMA instruction with -mfma */
#define KNAME sn_kernels_avx512
#define ISA_LABEL "avx512"
#include "kernel_template.h"
