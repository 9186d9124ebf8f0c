/* env.json: the environment a benchmark ran in, beside its CSVs, so that two results can
 * be told comparable or not: CPU and the instruction sets used, cores and SMT, kernel ISA,
 * compiler and flags, commit (and whether the tree was dirty), OS kernel, frequency
 * governor, load and CPU steal when it started, OpenMP and BLAS settings, and the SHA-256
 * of the MNIST files read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/data.h"
#include "scratchnet/gemm.h"
#include "scratchnet/modelfile.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The first line of a small file, trailing newline removed; "unavailable" if none. */
static void first_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    snprintf(out, cap, "unavailable");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = 0;
    else snprintf(out, cap, "unavailable");
    fclose(f);
}

/* The share of CPU time stolen by the hypervisor over ~200 ms, in percent; < 0 if
 * /proc/stat cannot say. */
static double steal_percent(void)
{
    unsigned long long a[8], b[8];
    for (int pass = 0; pass < 2; pass++) {
        unsigned long long *v = pass ? b : a;
        FILE *f = fopen("/proc/stat", "r");
        if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                         &v[6], &v[7]) != 8) {
            if (f) fclose(f);
            return -1;
        }
        fclose(f);
        if (!pass) {
            struct timespec t = { 0, 200000000L };
            nanosleep(&t, NULL);
        }
    }
    unsigned long long total = 0;
    for (int i = 0; i < 8; i++) total += b[i] - a[i];
    return total ? 100.0 * (double)(b[7] - a[7]) / (double)total : 0.0;
}

int bench_write_env_json(const char *dir, const char *data_dir)
{
    char path[4096], tmp[4200], governor[128], smt[64], load[128];
    snprintf(path, sizeof path, "%s/env.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s\n", tmp);
        return 0;
    }
    struct utsname u;
    char kernel[600] = "unavailable";
    if (uname(&u) == 0) snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", governor, sizeof governor);
    first_line("/sys/devices/system/cpu/smt/active", smt, sizeof smt);
    first_line("/proc/loadavg", load, sizeof load);
    double l1 = 0, l5 = 0, l15 = 0;
    const int have_load = sscanf(load, "%lf %lf %lf", &l1, &l5, &l15) == 3;
    const double steal = steal_percent();
    const char *commit = cli_commit();
    int max_threads = 1;
#ifdef _OPENMP
    max_threads = omp_get_max_threads();
#endif
    fprintf(f, "{\n  \"cpu_model\": ");
    cli_json_string(f, cli_cpu_model());
    fprintf(f, ",\n  \"cpu_features\": [");
    int first = 1;
#if defined(__x86_64__) || defined(__i386__)
    static const char *const feats[] = { "sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl" };
    for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
        int has = 0;
        if (!strcmp(feats[i], "sse2")) has = __builtin_cpu_supports("sse2");
        else if (!strcmp(feats[i], "avx")) has = __builtin_cpu_supports("avx");
        else if (!strcmp(feats[i], "avx2")) has = __builtin_cpu_supports("avx2");
        else if (!strcmp(feats[i], "fma")) has = __builtin_cpu_supports("fma");
        else if (!strcmp(feats[i], "avx512f")) has = __builtin_cpu_supports("avx512f");
        else if (!strcmp(feats[i], "avx512bw")) has = __builtin_cpu_supports("avx512bw");
        else if (!strcmp(feats[i], "avx512dq")) has = __builtin_cpu_supports("avx512dq");
        else has = __builtin_cpu_supports("avx512vl");
        if (has) fprintf(f, "%s\"%s\"", first ? "" : ", ", feats[i]), first = 0;
    }
#endif
    fprintf(f, "],\n  \"online_cores\": %ld,\n  \"smt_active\": ", sysconf(_SC_NPROCESSORS_ONLN));
    cli_json_string(f, smt);
    fprintf(f, ",\n  \"kernel_isa\": ");
    cli_json_string(f, sn_isa_name(sn_isa_active()));
    fprintf(f, ",\n  \"SCRATCHNET_ISA\": ");
    cli_json_string(f, getenv("SCRATCHNET_ISA"));
    fprintf(f, ",\n  \"compiler_and_flags\": ");
    cli_json_string(f, cli_build_info());
    fprintf(f, ",\n  \"command\": ");
    cli_json_string(f, bench_command());
    fprintf(f, ",\n  \"commit\": ");
    cli_json_string(f, commit);
    fprintf(f, ",\n  \"dirty\": %s,\n  \"os_kernel\": ", strstr(commit, "-dirty") ? "true" : "false");
    cli_json_string(f, kernel);
    fprintf(f, ",\n  \"governor\": ");
    cli_json_string(f, governor);
    if (have_load) fprintf(f, ",\n  \"loadavg_at_start\": [%.2f, %.2f, %.2f]", l1, l5, l15);
    else fprintf(f, ",\n  \"loadavg_at_start\": null");
    if (steal >= 0) fprintf(f, ",\n  \"steal_percent_at_start\": %.2f", steal);
    else fprintf(f, ",\n  \"steal_percent_at_start\": null");
    fprintf(f, ",\n  \"openmp\": {\"max_threads\": %d", max_threads);
    static const char *const omp_vars[] = { "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY",
                                            "GOMP_SPINCOUNT", "SCRATCHNET_TEAM", NULL };
    for (int i = 0; omp_vars[i]; i++) {
        fprintf(f, ", \"%s\": ", omp_vars[i]);
        cli_json_string(f, getenv(omp_vars[i]));
    }
    fprintf(f, "},\n  \"blas\": {\"OPENBLAS_CORETYPE\": ");
    cli_json_string(f, getenv("OPENBLAS_CORETYPE"));
    fprintf(f, ", \"BLIS_ARCH_TYPE\": ");
    cli_json_string(f, getenv("BLIS_ARCH_TYPE"));
    fprintf(f, "},\n  \"mnist_sha256\": {");
    /* The files actually read (raw or .gz), hashed by coreutils' sha256sum. */
    first = 1;
    for (int split = 0; split < 2; split++)
        for (int labels = 0; labels < 2; labels++) {
            char file[4096], cmd[8300], sum[128] = "";
            if (sn_mnist_path(data_dir, (sn_split)split, labels, file, sizeof file) != SN_OK) continue;
            snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", file);
            FILE *p = popen(cmd, "r");
            if (p) {
                if (fscanf(p, "%64s", sum) != 1) sum[0] = 0;
                pclose(p);
            }
            const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
            fprintf(f, "%s\n    ", first ? "" : ",");
            cli_json_string(f, base);
            fprintf(f, ": ");
            cli_json_string(f, sum[0] ? sum : NULL);
            first = 0;
        }
    fprintf(f, "%s}\n}\n", first ? "" : "\n  ");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        remove(tmp);
        return 0;
    }
    return 1;
}
