/* bench: the benchmark harness (see shared/CLI.md and README). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

const char *bench_set_openblas_coretype(void)
{
    static char account[256];
    const char *want = NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
#endif
    const char *before = getenv("OPENBLAS_CORETYPE");
    if (!want) {
        snprintf(account, sizeof account, "OPENBLAS_CORETYPE=%s (no AVX2/AVX-512 family to force on this CPU)",
                 before ? before : "unset: OpenBLAS autodetects");
        return account;
    }
    char prev[64];
    snprintf(prev, sizeof prev, "%s", before ? before : "");
    setenv("OPENBLAS_CORETYPE", want, 1);
    if (!prev[0])
        snprintf(account, sizeof account, "OPENBLAS_CORETYPE=%s (set by bench: the best kernels for this CPU)", want);
    else if (strcmp(prev, want) != 0)
        snprintf(account, sizeof account,
                 "OPENBLAS_CORETYPE=%s (set by bench: the best kernels for this CPU; the environment's %s overridden)",
                 want, prev);
    else
        snprintf(account, sizeof account, "OPENBLAS_CORETYPE=%s (the best kernels for this CPU)", want);
    return account;
}

const char *bench_set_blis_arch(void)
{
    static char account[256];
    const char *want = NULL, *label = NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "0", label = "skx";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "3", label = "haswell";
#endif
    const char *before = getenv("BLIS_ARCH_TYPE");
    if (!want) {
        snprintf(account, sizeof account, "BLIS_ARCH_TYPE=%s", before ? before : "unset: BLIS autodetects");
        return account;
    }
    char prev[64];
    snprintf(prev, sizeof prev, "%s", before ? before : "");
    setenv("BLIS_ARCH_TYPE", want, 1);
    snprintf(account, sizeof account, "BLIS_ARCH_TYPE=%s (%s kernels, set by bench: the best for this CPU%s%s%s)", want,
             label, prev[0] && strcmp(prev, want) ? "; the environment's " : "", prev[0] && strcmp(prev, want) ? prev : "",
             prev[0] && strcmp(prev, want) ? " overridden" : "");
    return account;
}

int main(int argc, char **argv)
{
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
