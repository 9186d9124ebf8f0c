/* Run-time choice of the microkernel table: the best the CPU supports, or the one
 * SCRATCHNET_ISA forces (so tests can cover every path on one machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "scratchnet/gemm.h"
#include "util.h"

static const sn_kernels *active; /* read and written with __atomic builtins */

static int always(void) { return 1; }
#if defined(SN_HAVE_X86_KERNELS)
static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"); }
static int cpu_has_sse2(void) { return __builtin_cpu_supports("sse2"); }
#endif

/* The registry: every ISA of the sn_isa enum, best first (sn_isa_init takes the first the
 * CPU supports). Adding an ISA: its kernel file (kernel_template.h lists what it defines),
 * its enum value, and a row here. Rows of ISAs this build lacks have no table. */
typedef struct isa_entry {
    sn_isa isa;
    const char *name;
    int (*supported)(void);   /* by this CPU */
    const sn_kernels *kernels; /* NULL: not in this build */
} isa_entry;

/* Each kernel file's table (KNAME in kernel_template.h). */
extern const sn_kernels sn_kernels_scalar;
#if defined(SN_HAVE_X86_KERNELS)
extern const sn_kernels sn_kernels_avx512, sn_kernels_avx2, sn_kernels_sse2;
#endif

static const isa_entry registry[] = {
#if defined(SN_HAVE_X86_KERNELS)
    { SN_ISA_AVX512, "avx512", cpu_has_avx512, &sn_kernels_avx512 },
    { SN_ISA_AVX2, "avx2", cpu_has_avx2, &sn_kernels_avx2 },
    { SN_ISA_SSE2, "sse2", cpu_has_sse2, &sn_kernels_sse2 },
#else
    { SN_ISA_AVX512, "avx512", always, NULL },
    { SN_ISA_AVX2, "avx2", always, NULL },
    { SN_ISA_SSE2, "sse2", always, NULL },
#endif
    { SN_ISA_SCALAR, "scalar", always, &sn_kernels_scalar },
};
enum { NREGISTRY = sizeof registry / sizeof registry[0] };
_Static_assert((int)NREGISTRY == (int)SN_ISA_COUNT, "one registry row per sn_isa");

static const isa_entry *entry(sn_isa isa)
{
    for (int i = 0; i < NREGISTRY; i++)
        if (registry[i].isa == isa) return &registry[i];
    return NULL;
}

const sn_kernels *sn_kernels_for(sn_isa isa)
{
    const isa_entry *e = entry(isa);
    return e ? e->kernels : NULL;
}

int sn_isa_supported(sn_isa isa)
{
    const isa_entry *e = entry(isa);
    return e && e->kernels && e->supported();
}

const char *sn_isa_name(sn_isa isa)
{
    const isa_entry *e = entry(isa);
    return e ? e->name : "?";
}

/* The best ISA this CPU and build support (the registry's first). */
static sn_isa best_isa(void)
{
    for (int i = 0; i < NREGISTRY; i++)
        if (sn_isa_supported(registry[i].isa)) return registry[i].isa;
    return SN_ISA_SCALAR;
}

int sn_isa_force(sn_isa isa, sn_error *err)
{
    if (!sn_isa_supported(isa))
        return sn_fail(err, SN_EUNSUPPORTED,
                       "kernel ISA '%s' is not supported by this CPU or build", sn_isa_name(isa));
    __atomic_store_n(&active, sn_kernels_for(isa), __ATOMIC_RELEASE);
    return SN_OK;
}

void sn_isa_names(char *out, size_t cap, const char *sep, const char *last_sep)
{
    if (!cap) return;
    out[0] = '\0';
    for (int i = 0; i < NREGISTRY; i++) {
        const size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i == 0 ? "" : i + 1 == NREGISTRY ? last_sep : sep, registry[i].name);
    }
}

int sn_isa_init(sn_error *err)
{
    const char *forced = getenv("SCRATCHNET_ISA");
    if (forced && *forced) {
        for (int i = 0; i < NREGISTRY; i++)
            if (strcmp(forced, registry[i].name) == 0) return sn_isa_force(registry[i].isa, err);
        char names[128];
        sn_isa_names(names, sizeof names, ", ", " or ");
        return sn_fail(err, SN_EINVAL, "SCRATCHNET_ISA='%s' is not a kernel ISA; expected %s", forced, names);
    }
    return sn_isa_force(best_isa(), err);
}

const sn_kernels *sn_kernels_active(void)
{
    const sn_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        /* A bad SCRATCHNET_ISA falls back to the best ISA here; programs call
         * sn_isa_init() first to report it. */
        if (sn_isa_init(NULL) != SN_OK) sn_isa_force(best_isa(), NULL);
        k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    }
    return k;
}

sn_isa sn_isa_active(void)
{
    const sn_kernels *k = sn_kernels_active();
    for (int i = 0; i < NREGISTRY; i++)
        if (registry[i].kernels == k) return registry[i].isa;
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

double sn_isa_fma_rate(double seconds)
{
    const sn_kernels *k = sn_kernels_active();
    volatile float sink = 0.0f;
    /* Chunks of ~0.25 ms (sized once): short enough to stop near the budget, long enough
     * that reading the clock costs nothing. */
    static long chunk;
    long iters = __atomic_load_n(&chunk, __ATOMIC_RELAXED);
    if (!iters) {
        iters = 1 << 10;
        for (;;) {
            double t0 = sn_now();
            sink += k->fma_peak_probe(iters);
            if (sn_now() - t0 >= 2.5e-4 || iters > (1L << 30)) break;
            iters *= 2;
        }
        __atomic_store_n(&chunk, iters, __ATOMIC_RELAXED);
    }
    long done = 0;
    const double t0 = sn_now();
    double dt;
    do {
        sink += k->fma_peak_probe(iters);
        done += iters;
    } while ((dt = sn_now() - t0) < seconds);
    (void)sink;
    return 2.0 * (double)done * k->fma_peak_chains / dt * 1e-9;
}
