/* scratchnet — the one matrix-product interface every layer uses.
 *
 *   C (m x n) = beta * C + op(A) (m x k) * op(B) (k x n), then the epilogue.
 *
 * All matrices are row-major with explicit leading dimensions. op(X) is X (SN_N) or
 * X^T (SN_T): with SN_T, A is stored k x m and B is stored n x k. beta is 0 or 1.
 *
 * Determinism: the tuned kernels split work over rows and columns of C only, never
 * over k, so every element of C is bit-identical whatever the thread count.
 * Different ISAs (avx512/avx2/scalar) may differ in the last bits. */
#ifndef SCRATCHNET_GEMM_H
#define SCRATCHNET_GEMM_H

#include <stddef.h>

#include "scratchnet/error.h"

typedef enum sn_trans { SN_N = 0, SN_T = 1 } sn_trans;

/* Applied to each element after the full k-reduction, in this order:
 *   c += bias[j];  c = max(c, 0) if relu;  c = (mask[i*ldmask+j] > 0) ? c : 0 if mask.
 * The mask fuses ReLU's derivative into the backward product dX = dY * W. */
typedef struct sn_epilogue {
    const float *bias; /* n values, or NULL */
    int relu;
    const float *mask; /* m x n (ldmask), or NULL */
    int ldmask;
    /* If set, called by the thread that finished them with each row segment of C's final
     * values (c points into C, n elements): the trainer applies the optimiser to a weight
     * gradient while it is still in that thread's cache. */
    void (*done)(void *user, float *c, int n);
    void *user;
} sn_epilogue;

/* The kernel ISAs, numbered 0 .. SN_ISA_COUNT - 1 (loops over every ISA use the count).
 * Their names, CPU checks and kernel tables are one registry in kernels/dispatch.c. */
typedef enum sn_isa { SN_ISA_SCALAR = 0, SN_ISA_AVX2 = 1, SN_ISA_AVX512 = 2, SN_ISA_SSE2 = 3, SN_ISA_COUNT } sn_isa;

/* Chooses the kernel set: the best the CPU supports, unless the environment variable
 * SCRATCHNET_ISA=avx512|avx2|sse2|scalar forces one. Fails (SN_EINVAL / SN_EUNSUPPORTED)
 * for an unknown name or an ISA this CPU or build lacks. Called implicitly on first
 * use; call it explicitly to report the error. */
int sn_isa_init(sn_error *err);
int sn_isa_force(sn_isa isa, sn_error *err);      /* for tests and benchmarks */
sn_isa sn_isa_active(void);
int sn_isa_supported(sn_isa isa);
const char *sn_isa_name(sn_isa isa);
/* The registry's names, best first, joined: ("|", "|") -> "avx512|avx2|sse2|scalar",
 * (", ", " or ") -> "avx512, avx2, sse2 or scalar". */
void sn_isa_names(char *out, size_t cap, const char *sep, const char *last_sep);

/* For benchmarks: the active ISA's multiply-add ceiling on the calling thread, in
 * GFLOP/s (2 flops per FMA), from a loop of independent FMAs on registers that runs for
 * about min_seconds; the best of five trials. What a kernel's GFLOP/s is a fraction of. */
double sn_isa_peak_gflops(double min_seconds);
/* For the benchmark's noise sentinel: the calling thread's *sustained* multiply-add rate
 * over about `seconds` of wall time, in GFLOP/s: the work done over the time taken, so
 * that time the thread spends descheduled (a busy neighbour on its core, hypervisor
 * steal) lowers it, where the best-of-five peak above would hide it. */
double sn_isa_fma_rate(double seconds);

/* Floats of workspace sn_gemm_ws needs for this problem. */
size_t sn_gemm_workspace(sn_trans ta, sn_trans tb, int m, int n, int k);

/* The tuned product. ws holds sn_gemm_workspace() floats, 64-byte aligned, shared by
 * all threads. Called outside a parallel region it opens one (OpenMP), unless the
 * product is under 2^20 multiply-adds: those run on the calling thread, as opening a
 * team costs more than splitting them saves. Called inside one, every thread of the team
 * must call it with the same arguments (orphaned work-sharing), which lets a whole
 * training step run in a single parallel region. The bits never depend on the team. */
void sn_gemm_ws(sn_trans ta, sn_trans tb, int m, int n, int k,
                const float *A, int lda, const float *B, int ldb,
                float beta, float *C, int ldc, const sn_epilogue *ep, float *ws);

/* The same product computed entirely by the calling thread, without work-sharing:
 * inside a parallel region each thread may call it on its own rows, with its own C and
 * its own ws. Element for element it gives the same bits as sn_gemm_ws. */
void sn_gemm_local(sn_trans ta, sn_trans tb, int m, int n, int k,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const sn_epilogue *ep, float *ws);

/* The gathered product (an implicit GEMM), on the calling thread:
 *   C (m x n) = beta * C + G (m x k) * B (k x n, ldb), then the epilogue,
 * where G[i][p] = A[roff[i] + koff[p]]: two offset tables instead of a stride, so a
 * convolution's patch matrix (and its transpose) is read from the image in place, never
 * copied (roff: m offsets, koff: k). Each element is computed as the direct and narrow
 * kernels of sn_gemm compute it (one chain of multiply-adds in k order), so where
 * sn_gemm takes those for the materialised G, the bits are the same. No workspace. */
void sn_gemm_gathered_local(int m, int n, int k, const float *A, const int *roff, const int *koff,
                            const float *B, int ldb, float beta, float *C, int ldc, const sn_epilogue *ep);
/* Same, allocating its own workspace. Returns SN_OK or SN_ENOMEM / SN_EINVAL. */
int sn_gemm(sn_trans ta, sn_trans tb, int m, int n, int k,
            const float *A, int lda, const float *B, int ldb,
            float beta, float *C, int ldc, const sn_epilogue *ep);

/* The algorithmic reference: three plain loops, double accumulation. The oracle
 * for tests and for bench --gemm validation. */
void sn_gemm_ref(sn_trans ta, sn_trans tb, int m, int n, int k,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const sn_epilogue *ep);

/* The reference of the gathered product (as sn_gemm_ref: double accumulation). */
void sn_gemm_gathered_ref(int m, int n, int k, const float *A, const int *roff, const int *koff,
                          const float *B, int ldb, float beta, float *C, int ldc, const sn_epilogue *ep);
#endif
