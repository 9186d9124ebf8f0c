/* SSE2 microkernels: 4 floats a vector, no FMA (a multiply and an add, rounded twice,
 * in the vector bodies and the scalar tails alike). SSE2 is part of x86-64 itself, so
 * this is what any x86-64 CPU without AVX2 runs (before 2013: Sandy Bridge and older,
 * Bulldozer-era and low-power cores), and it needs no compile flags. 16 xmm registers:
 * outer 6 x 8 = 12 accumulators + 2 B + 1 broadcast, as the AVX2 kernels. SSE2 has
 * neither masked loads nor rounding: masked lanes go through a small buffer, and
 * rounding through the int conversion (round-to-nearest-even, the default MXCSR mode;
 * exact for the |x| < 2^31 the exponential passes it). */
#include <emmintrin.h>
#include <math.h>
#include <string.h>

typedef __m128 vec;
#define VL 4
#define VZERO() _mm_setzero_ps()
#define VLOAD(p) _mm_loadu_ps(p)
#define VSTORE(p, v) _mm_storeu_ps((p), (v))
#define VBCAST(x) _mm_set1_ps(x)
#define VFMA(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define VADD(a, b) _mm_add_ps((a), (b))
#define VSUB(a, b) _mm_sub_ps((a), (b))
#define VMAX(c, x) _mm_max_ps((c), (x)) /* returns x if x is NaN */
#define VMIN(c, x) _mm_min_ps((c), (x))
#define VROUND(x) _mm_cvtepi32_ps(_mm_cvtps_epi32(x))
/* y * 2^n for integral n in [-126, 127]: n + 127 in the exponent field of a float. */
#define VSCALE2(y, n)                                                                                  \
    _mm_mul_ps((y), _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23)))
#define VMUL(a, b) _mm_mul_ps((a), (b))
#define VDIV(a, b) _mm_div_ps((a), (b))
#define VSQRT(a) _mm_sqrt_ps(a)
#define VRELU(x) _mm_max_ps(_mm_setzero_ps(), (x)) /* NaN in x passes */
#define VKEEP_POS(m, x) _mm_and_ps(_mm_cmpgt_ps((m), _mm_setzero_ps()), (x))

/* 4 bytes at p as floats. */
static inline __m128 cvt_u8(const unsigned char *p)
{
    int four;
    memcpy(&four, p, 4);
    const __m128i zero = _mm_setzero_si128();
    const __m128i w = _mm_unpacklo_epi8(_mm_cvtsi32_si128(four), zero);
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(w, zero));
}
#define VCVT_U8(p) cvt_u8((const unsigned char *)(p))

/* Lanes 0 + 2 and 1 + 3, then those two: a fixed order. */
static inline float hsum128(__m128 v)
{
    const __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
#define VHSUM(v) hsum128(v)

/* A mask is the lane count, 0..4; lanes past it are never read or written. */
typedef int vmask;
#define VMASK(n) ((n) < 0 ? 0 : (n) > 4 ? 4 : (n))
static inline __m128 loadm(const float *p, int lanes)
{
    if (lanes == 4) return _mm_loadu_ps(p); /* the common case: a whole vector */
    float t[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    for (int i = 0; i < lanes; i++) t[i] = p[i];
    return _mm_loadu_ps(t);
}
static inline void storem(float *p, int lanes, __m128 v)
{
    if (lanes == 4) {
        _mm_storeu_ps(p, v);
        return;
    }
    float t[4];
    _mm_storeu_ps(t, v);
    for (int i = 0; i < lanes; i++) p[i] = t[i];
}
#define VLOADM(p, m) loadm((p), (m))
#define VSTOREM(p, m, v) storem((p), (m), (v))

#define OUT_MR 6
#define OUT_NV 2
#define DOT_MR 2
#define DOT_NR 5
#define DOT2_MR 4
#define NAR_MR 4
#define NAR_NV 2
#define DIR_MR 6
#define DIR_NV 2
#define COL_MV 2
#define COL_NR 6
#define SFMA(a, b, c) ((c) + (a) * (b)) /* two roundings, as VFMA: no FMA unit is assumed */
/* compares and selects (max pooling): all-ones lanes, selected by and/andnot/or */
typedef __m128 vcmp;
#define VGT(a, b) _mm_cmpgt_ps((a), (b))
#define VISNAN(a) _mm_cmpunord_ps((a), (a))
#define VCMP_OR(a, b) _mm_or_ps((a), (b))
#define VCMP_ANDNOT(a, b) _mm_andnot_ps((b), (a))
#define VCMP_ALL _mm_castsi128_ps(_mm_set1_epi32(-1))
#define VSEL(m, a, b) _mm_or_ps(_mm_and_ps((m), (a)), _mm_andnot_ps((m), (b)))
#define KNAME sn_kernels_sse2
#define ISA_LABEL "sse2"
#include "kernel_template.h"
