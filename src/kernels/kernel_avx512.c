/* AVX-512F microkernels (compiled with -mavx512f -mfma). 32 zmm registers:
 * outer 10 x 32 = 20 accumulators + 2 B vectors + 1 broadcast. Ten rows divide the
 * MLP's 50-wide layer and most batches exactly; 32 columns pad 784 to 800 (2%).
 * dot 4 x 5 = 20 accumulators + 5 B + 1 A; 5 divides 50, 25 and 10, so the
 * forward pass wastes nothing on the output dimension. */
#include <immintrin.h>

typedef __m512 vec;
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define OUT_MR 10
#define OUT_NV 2
#define DOT_MR 4
#define DOT_NR 5
#define KNAME sn_kernels_avx512
#define ISA_LABEL "avx512"
#include "kernel_template.h"
