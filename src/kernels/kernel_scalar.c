/* Portable C microkernels: one float per "vector", plain multiply-add (no fmaf: it
 * is a slow library call on CPUs without FMA). Builds on any architecture. */
typedef float vec;
#define VL 1
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VBCAST(x) (x)
#define VFMA(a, b, c) ((c) + (a) * (b))
#include <math.h>
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMAX(c, x) ((c) > (x) ? (c) : (x)) /* x if x is NaN */
#define VMIN(c, x) ((c) < (x) ? (c) : (x))
#define VROUND(x) rintf(x)
/* y * 2^n; n is NaN only when y is (a NaN logit), and converting NaN to int is undefined. */
static inline float scale2(float y, float n)
{
    return isnan(n) ? y : ldexpf(y, (int)n);
}
#define VSCALE2(y, n) scale2((y), (n))
#define VHSUM(v) (v)
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VSQRT(a) sqrtf(a)
#define VRELU(x) ((x) < 0.0f ? 0.0f : (x))
#define VKEEP_POS(m, x) ((m) > 0.0f ? (x) : 0.0f)
#define VCVT_U8(p) ((float)*(p))
#define OUT_MR 4
#define OUT_NV 8
#define DOT_MR 2
#define DOT_NR 5
#define DOT2_MR 2
typedef int vmask;
#define VMASK(n) ((n) > 0)
#define VLOADM(p, m) ((m) ? *(p) : 0.0f)
#define VSTOREM(p, m, v) ((m) ? (void)(*(p) = (v)) : (void)0)
#define NAR_MR 4
#define NAR_NV 4
#define DIR_MR 4
#define DIR_NV 4
#define COL_MV 8
#define COL_NR 4
#define SFMA(a, b, c) ((c) + (a) * (b))
/* compares and selects (max pooling) */
typedef int vcmp;
#define VGT(a, b) ((a) > (b))
#define VISNAN(a) ((a) != (a))
#define VCMP_OR(a, b) ((a) | (b))
#define VCMP_ANDNOT(a, b) ((a) & !(b))
#define VCMP_ALL 1
#define VSEL(m, a, b) ((m) ? (a) : (b))
#define KNAME sn_kernels_scalar
#define ISA_LABEL "scalar"
#include "kernel_template.h"
