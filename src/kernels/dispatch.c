/* Run-time choice of the microkernel table: the best the CPU supports, or the one
 * SCRATCHNET_ISA forces (so tests can cover every path on one machine). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "scratchnet/gemm.h"
#include "scratchnet/train.h" /* sn_now */

static const sn_kernels *active; /* read and written with __atomic builtins */

static const sn_kernels *table_for(sn_isa isa)
{
    switch (isa) {
#if defined(SN_HAVE_X86_KERNELS)
    case SN_ISA_AVX512: return &sn_kernels_avx512;
    case SN_ISA_AVX2: return &sn_kernels_avx2;
#endif
    case SN_ISA_SCALAR: return &sn_kernels_scalar;
    default: return NULL;
    }
}

int sn_isa_supported(sn_isa isa)
{
    switch (isa) {
    case SN_ISA_SCALAR: return 1;
#if defined(SN_HAVE_X86_KERNELS)
    case SN_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

const char *sn_isa_name(sn_isa isa)
{
    switch (isa) {
    case SN_ISA_AVX512: return "avx512";
    case SN_ISA_AVX2: return "avx2";
    case SN_ISA_SCALAR: return "scalar";
    default: return "?";
    }
}

int sn_isa_force(sn_isa isa, sn_error *err)
{
    if (!sn_isa_supported(isa))
        return sn_fail(err, SN_EUNSUPPORTED,
                       "kernel ISA '%s' is not supported by this CPU or build", sn_isa_name(isa));
    __atomic_store_n(&active, table_for(isa), __ATOMIC_RELEASE);
    return SN_OK;
}

int sn_isa_init(sn_error *err)
{
    const char *forced = getenv("SCRATCHNET_ISA");
    if (forced && *forced) {
        static const sn_isa all[] = { SN_ISA_AVX512, SN_ISA_AVX2, SN_ISA_SCALAR };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (strcmp(forced, sn_isa_name(all[i])) == 0)
                return sn_isa_force(all[i], err);
        return sn_fail(err, SN_EINVAL,
                       "SCRATCHNET_ISA='%s' is not a kernel ISA; expected avx512, avx2 or scalar",
                       forced);
    }
    sn_isa best = sn_isa_supported(SN_ISA_AVX512) ? SN_ISA_AVX512
                  : sn_isa_supported(SN_ISA_AVX2) ? SN_ISA_AVX2
                                                  : SN_ISA_SCALAR;
    return sn_isa_force(best, err);
}

const sn_kernels *sn_kernels_active(void)
{
    const sn_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        /* A bad SCRATCHNET_ISA falls back to the best ISA here; programs call
         * sn_isa_init() first to report it. */
        if (sn_isa_init(NULL) != SN_OK)
            sn_isa_force(sn_isa_supported(SN_ISA_AVX512) ? SN_ISA_AVX512
                         : sn_isa_supported(SN_ISA_AVX2) ? SN_ISA_AVX2
                                                         : SN_ISA_SCALAR, NULL);
        k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    }
    return k;
}

sn_isa sn_isa_active(void)
{
    const sn_kernels *k = sn_kernels_active();
#if defined(SN_HAVE_X86_KERNELS)
    if (k == &sn_kernels_avx512) return SN_ISA_AVX512;
    if (k == &sn_kernels_avx2) return SN_ISA_AVX2;
#endif
    (void)k;
    return SN_ISA_SCALAR;
}

double sn_isa_peak_gflops(double min_seconds)
{
    const sn_kernels *k = sn_kernels_active();
    volatile float sink = 0.0f; /* the probe's result must be used */
    long iters = 1 << 14;
    /* Grow the trial until it lasts a fifth of the budget (and the core's clock has
     * settled), then take the best of five such trials: a peak, so the best is the
     * honest figure on a shared machine. */
    for (;;) {
        double t0 = sn_now();
        sink += k->fma_peak_probe(iters);
        if (sn_now() - t0 >= min_seconds / 5 || iters > (1L << 40)) break;
        iters *= 2;
    }
    double best = 0.0;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = sn_now();
        sink += k->fma_peak_probe(iters);
        double dt = sn_now() - t0;
        double gflops = 2.0 * (double)iters * k->fma_peak_chains / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    (void)sink;
    return best;
}
