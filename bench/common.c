/* What the three benchmarks share: the provenance lines at the top of every CSV, running
 * the BLAS opponents at their best, and comma-separated number lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static char command_line[4096] = "bench";

void bench_set_command(int argc, char **argv)
{
    size_t len = strlen(command_line);
    for (int i = 1; i < argc && len < sizeof command_line - 1; i++) {
        /* Quoted when a shell would split or expand it. */
        const int quote = argv[i][0] == 0 || strpbrk(argv[i], " \t;&|<>()$`\\\"'*?[]#~=%!{}") != NULL;
        const int plain_assign = strchr(argv[i], '=') && !strpbrk(argv[i], " \t;&|<>()$`\\\"'*?[]#~!{}");
        len += (size_t)snprintf(command_line + len, sizeof command_line - len, quote && !plain_assign ? " '%s'" : " %s",
                                argv[i]);
    }
}

const char *bench_command(void)
{
    return command_line;
}

void bench_write_provenance(FILE *f, const char *what)
{
    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    const char *omp = getenv("OMP_NUM_THREADS");
    int max_threads = 1;
#ifdef _OPENMP
    max_threads = omp_get_max_threads();
#endif
    fprintf(f, "# %s; date %s; commit %s\n", what, date, cli_commit());
    fprintf(f, "# command: %s\n", command_line);
    fprintf(f, "# compiler and flags: %s\n", cli_build_info());
    fprintf(f, "# cpu: %s; online cores %ld\n", cli_cpu_model(), sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "# kernel isa: %s (SCRATCHNET_ISA=%s)\n", sn_isa_name(sn_isa_active()),
            getenv("SCRATCHNET_ISA") ? getenv("SCRATCHNET_ISA") : "unset: best for this CPU");
    fprintf(f, "# threads: OMP_NUM_THREADS=%s, OpenMP max %d, OMP_PROC_BIND=%s\n", omp ? omp : "unset", max_threads,
            getenv("OMP_PROC_BIND") ? getenv("OMP_PROC_BIND") : "unset");
}

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

void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: bench --sweep KEY=V1,V2,... [KEY=...] [--epochs N] [--out DIR] [--data DIR] [--no-plot]\n"
            "                    [--val N] [--resume|--force] [--quiet] [--load N] [--part K/N] [--target-acc A]\n"
            "                    [--repeat N] [--precision P%%] [--max-repeat N] [--include-noisy] [--no-sentinel]\n"
            "                    [--save-baseline FILE] [--baseline FILE [--threshold 3%%] [--fail-on-regression]]\n"
            "       bench --merge DIR... [--out DIR] [--force] [--no-plot] [--quiet]   (the parts of a --part sweep)\n"
            "       bench --gemm [--threads 1,2] [--csv FILE] [--no-blas] [--isa NAME] [--batch N] [--quick]\n"
            "       bench --peers [--net mlp|cnn|SIZES] [--epochs N] [--batch N] [--threads 1,2] [--lr X] [--out DIR]\n"
            "                     [--load N] [--repeat N]\n"
            "       bench --report DIR [--out FILE]   (DIR/report.md from the CSVs and env.json in DIR)\n"
            "sweep keys: batch, lr, threads, epochs, opt, seed, layers (784:50:25:10,784:100:10),\n"
            "            net (mlp,cnn or specs separated by ';'), deskew (on,off),\n"
            "            augment (specs separated by ';': 'none;thick=1,rot=8')\n"
            "--resume continues the sweep in --out, --force replaces it (one of them when --out has one)\n"
            "--load N: N busy processes beside the runs (a busy machine, reproducibly)\n"
            "under mpiexec -n R (a build with MPI): --sweep splits the runs over the R processes, rank 0 merges\n"
            "            them into --out (docs/cluster.md)\n");
}

int bench_int_list(const char *flag, const char *text, long min, long max, int *vals, int cap)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        const long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v < min || v > max || n == cap) {
            fprintf(stderr, "bench: %s: '%s' is not allowed; expected a list like 1,2 of at most %d numbers in %ld..%ld\n",
                    flag, text, cap, min, max);
            return 0;
        }
        vals[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0) fprintf(stderr, "bench: %s: '%s' is not allowed; expected a list like 1,2\n", flag, text);
    return n;
}
