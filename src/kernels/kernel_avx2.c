/* AVX2 + FMA microkernels. 16 ymm registers:
 * outer 6 x 16 = 12 accumulators + 2 B + 1 broadcast; dot 2 x 5 = 10 accumulators
 * + 5 B (A comes from memory as the FMA operand). */
#include <immintrin.h>
#include <math.h>

typedef __m256 vec;
#define VL 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMAX(c, x) _mm256_max_ps((c), (x)) /* returns x if x is NaN */
#define VMIN(c, x) _mm256_min_ps((c), (x))
#define VROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* y * 2^n for integral n in [-126, 127]: n + 127 in the exponent field of a float. */
#define VSCALE2(y, n)                                                                                  \
    _mm256_mul_ps((y), _mm256_castsi256_ps(_mm256_slli_epi32(                                        \
                           _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VSQRT(a) _mm256_sqrt_ps(a)
#define VRELU(x) _mm256_max_ps(_mm256_setzero_ps(), (x)) /* NaN in x passes */
#define VKEEP_POS(m, x) _mm256_and_ps(_mm256_cmp_ps((m), _mm256_setzero_ps(), _CMP_GT_OQ), (x))
#define VCVT_U8(p) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define VHSUM(v) hsum256(v)
#define OUT_MR 6
#define OUT_NV 2
#define DOT_MR 2
#define DOT_NR 5
#define DOT2_MR 4
/* narrow: 4 rows x 2 masked vectors (maskload/maskstore take an int mask per lane). */
typedef __m256i vmask;
#define VMASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VLOADM(p, m) _mm256_maskload_ps((p), (m))
#define VSTOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define NAR_MR 4
#define NAR_NV 2
#define DIR_MR 6
#define DIR_NV 2
#define COL_MV 2
#define COL_NR 6
#define SFMA(a, b, c) fmaf((a), (b), (c)) /* compiles to one FMA instruction with -mfma */
/* compares and selects (max pooling): all-ones lanes */
typedef __m256 vcmp;
#define VGT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define VISNAN(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define VCMP_OR(a, b) _mm256_or_ps((a), (b))
#define VCMP_ANDNOT(a, b) _mm256_andnot_ps((b), (a))
#define VCMP_ALL _mm256_castsi256_ps(_mm256_set1_epi32(-1))
#define VSEL(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define KNAME sn_kernels_avx2
#define ISA_LABEL "avx2"
#include "kernel_template.h"
