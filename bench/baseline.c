/* Baselines for repeated sweeps (bench --sweep --repeat N --save-baseline FILE, then
 * --baseline FILE): the raw repetitions' speeds per configuration and the machine they
 * were measured on; a later sweep compares each configuration's speeds against them with
 * the Mann-Whitney U test and the Hodges-Lehmann shift, and says regressed, improved or
 * same. A baseline from another CPU model or core count is refused: speeds on different
 * machines are not comparable.
 *
 * File (text, one record a line; fields tab-separated):
 *   scratchnet-baseline 1
 *   cpu<TAB>MODEL   cores<TAB>N   isa<TAB>NAME   commit<TAB>ID   grid<TAB>...
 *   config<TAB>COLUMNS<TAB>S1 S2 ... SN        (COLUMNS: summary.csv's configuration) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "scratchnet/gemm.h"
#include "scratchnet/modelfile.h"
#include "stats.h"

static const char *MAGIC = "scratchnet-baseline 1";

void bench_baseline_free(bench_baseline *b)
{
    free(b->conf);
    memset(b, 0, sizeof *b);
}

int bench_baseline_load(const char *path, bench_baseline *b)
{
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench: --baseline: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[8192];
    int n = 0, ok = 1, cap = 0;
    while (ok && fgets(line, sizeof line, f)) {
        n++;
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (n == 1) ok = !strcmp(line, MAGIC);
        else if (!tab) ok = 0;
        else if (!strncmp(line, "cpu\t", 4)) snprintf(b->cpu, sizeof b->cpu, "%s", tab + 1);
        else if (!strncmp(line, "cores\t", 6)) b->cores = atoi(tab + 1);
        else if (!strncmp(line, "isa\t", 4) || !strncmp(line, "commit\t", 7) || !strncmp(line, "grid\t", 5)) {
        } else if (!strncmp(line, "config\t", 7)) {
            char *cols = tab + 1, *speeds = strchr(cols, '\t');
            if (!speeds) { ok = 0; break; }
            *speeds++ = 0;
            if (b->nconf == cap) {
                cap = cap ? 2 * cap : 16;
                void *p = realloc(b->conf, sizeof *b->conf * (size_t)cap);
                if (!p) { ok = 0; break; }
                b->conf = p;
            }
            bench_baseline_conf *c = &b->conf[b->nconf];
            snprintf(c->cols, sizeof c->cols, "%s", cols);
            c->n = 0;
            for (char *p = speeds, *end; *p && c->n < BENCH_BASELINE_MAX_REPS; p = end) {
                const double v = strtod(p, &end);
                if (end == p || !(v >= 0) || !isfinite(v)) { ok = 0; break; }
                c->s[c->n++] = v;
                while (*end == ' ') end++;
            }
            ok = ok && c->n >= 1;
            b->nconf++;
        } else {
            ok = 0;
        }
    }
    fclose(f);
    if (ok && (!b->cpu[0] || b->cores < 1 || !b->nconf)) ok = 0;
    if (!ok) {
        fprintf(stderr, "bench: --baseline: %s: line %d is not a baseline's (expected '%s', then cpu, cores and "
                        "config records, as --save-baseline writes them)\n", path, n, MAGIC);
        bench_baseline_free(b);
    }
    return ok;
}

int bench_baseline_check_machine(const bench_baseline *b, const char *path)
{
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (strcmp(b->cpu, cli_cpu_model())) {
        fprintf(stderr, "bench: --baseline: %s was measured on cpu '%s'; this machine is '%s': not comparable\n", path,
                b->cpu, cli_cpu_model());
        return 0;
    }
    if (b->cores != cores) {
        fprintf(stderr, "bench: --baseline: %s was measured with cores %d; this machine has %ld: not comparable\n", path,
                b->cores, cores);
        return 0;
    }
    return 1;
}

int bench_baseline_save(const char *path, const char *grid, int nconf, const char *const *cols, const double *speeds,
                        int repeat)
{
    size_t cap = 4096 + (size_t)nconf * (800 + 24 * (size_t)repeat), len = 0;
    char *text = malloc(cap);
    if (!text) return 0;
    len += (size_t)snprintf(text + len, cap - len, "%s\ncpu\t%s\ncores\t%ld\nisa\t%s\ncommit\t%s\ngrid\t%s\n", MAGIC,
                            cli_cpu_model(), sysconf(_SC_NPROCESSORS_ONLN), sn_isa_name(sn_isa_active()), cli_commit(),
                            grid);
    for (int i = 0; i < nconf; i++) {
        if (!cols[i]) continue;
        len += (size_t)snprintf(text + len, cap - len, "config\t%s\t", cols[i]);
        int any = 0;
        for (int r = 0; r < repeat; r++)
            if (speeds[(size_t)i * repeat + r] > 0)
                len += (size_t)snprintf(text + len, cap - len, "%s%.0f", any++ ? " " : "", speeds[(size_t)i * repeat + r]);
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    sn_error err;
    const int ok = sn_write_file_atomic(path, text, len, &err) == SN_OK;
    if (!ok) fprintf(stderr, "bench: --save-baseline: %s\n", err.msg);
    free(text);
    return ok;
}

int bench_baseline_compare(const bench_baseline *b, int nconf, const char *const *cols, const char *const *labels,
                           const double *speeds, int repeat, double threshold)
{
    int regressed = 0;
    for (int i = 0; i < nconf; i++) {
        if (!cols[i]) continue;
        const bench_baseline_conf *base = NULL;
        for (int k = 0; k < b->nconf && !base; k++)
            if (!strcmp(b->conf[k].cols, cols[i])) base = &b->conf[k];
        double now[BENCH_BASELINE_MAX_REPS];
        int n = 0;
        for (int r = 0; r < repeat && n < BENCH_BASELINE_MAX_REPS; r++)
            if (speeds[(size_t)i * repeat + r] > 0) now[n++] = speeds[(size_t)i * repeat + r];
        if (!base || base->n < 2 || n < 2) {
            printf("baseline run %d (%s): %s\n", i + 1, labels[i],
                   !base ? "not in the baseline" : "too few repetitions to compare");
            continue;
        }
        /* Relative to the baseline's median: the shift, its interval, the p-value. */
        const double ref = stats_median(base->s, base->n);
        double shift, lo, hi;
        stats_hodges_lehmann(base->s, base->n, now, n, &shift, &lo, &hi);
        const double p = stats_mann_whitney_p(base->s, base->n, now, n);
        const double rel = shift / ref, rlo = lo / ref, rhi = hi / ref;
        const char *verdict = p < 0.01 && rel < -threshold ? "regressed" : p < 0.01 && rel > threshold ? "improved" : "same";
        regressed += !strcmp(verdict, "regressed");
        printf("baseline run %d (%s): %+.1f%% [%+.1f%%, %+.1f%%], p=%.4g (%d vs %d reps): %s\n", i + 1, labels[i],
               100 * rel, 100 * rlo, 100 * rhi, p, base->n, n, verdict);
    }
    return regressed;
}
