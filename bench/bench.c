/* bench: the benchmark harness (see docs/cli.md and README). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

/* The widest x86 kernel family a BLAS may use here: 2 AVX-512 (F, BW, DQ, VL, as
 * OpenBLAS's SkylakeX and BLIS's skx kernels need), 1 AVX2 + FMA, 0 neither. */
static int x86_kernel_family(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* Sets var to want (NULL: leaves it) and writes what was done into account. */
static const char *force_env(char *account, size_t cap, const char *var, const char *want, const char *label)
{
    const char *before = getenv(var);
    char prev[64];
    snprintf(prev, sizeof prev, "%s", before ? before : "");
    if (!want) {
        snprintf(account, cap, "%s=%s (no AVX2/AVX-512 kernels to force on this CPU)", var,
                 prev[0] ? prev : "unset: the library autodetects");
        return account;
    }
    setenv(var, want, 1);
    const int overridden = prev[0] && strcmp(prev, want) != 0;
    snprintf(account, cap, "%s=%s (%s kernels, set by bench: the best for this CPU%s%s%s)", var, want, label,
             overridden ? "; the environment's " : "", overridden ? prev : "", overridden ? " overridden" : "");
    return account;
}

const char *bench_set_openblas_coretype(void)
{
    static char account[256];
    static const char *const names[] = { NULL, "Haswell", "SkylakeX" };
    const int f = x86_kernel_family();
    return force_env(account, sizeof account, "OPENBLAS_CORETYPE", names[f], names[f]);
}

const char *bench_set_blis_arch(void)
{
    static char account[256];
    static const char *const ids[] = { NULL, "3", "0" }, *const labels[] = { NULL, "haswell", "skx" };
    const int f = x86_kernel_family();
    return force_env(account, sizeof account, "BLIS_ARCH_TYPE", ids[f], labels[f]);
}

int main(int argc, char **argv)
{
    cli_openmp_defaults(argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sweep")) return bench_sweep_main(argc, argv);
        if (!strcmp(argv[i], "--gemm")) return bench_gemm_main(argc, argv);
        if (!strcmp(argv[i], "--peers")) return bench_peers_main(argc, argv);
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench --sweep KEY=V1,V2,... [KEY=...] [--epochs N] [--out DIR] [--data DIR] [--no-plot]\n"
                   "                   [--val N] [--resume] [--quiet]\n"
                   "       bench --gemm [--threads 1,2] [--csv FILE] [--no-blas] [--isa NAME] [--batch N] [--quick]\n"
                   "       bench --peers [--epochs N] [--batch N] [--threads N] [--out DIR]\n"
                   "sweep keys: batch, lr, threads, epochs, opt, seed, layers (784:50:25:10,784:100:10)\n");
            return 0;
        }
    }
    fprintf(stderr, "bench: expected --sweep, --gemm or --peers (see bench --help)\n");
    return EXIT_USAGE;
}
