/* The noise sentinel: which core was slow, and when.
 *
 * Before and after each run (outside its timed region) a short sustained FMA probe runs
 * on every CPU the process may use, the probing thread pinned to one CPU at a time. A
 * neighbour sharing that core, or the hypervisor stealing it, shows as a lower rate. The
 * slowest core's rate over the best any probe reached this session is the run's
 * core_frac_min; with it, the run's involuntary context switches and the steal time the
 * kernel counted (all CPUs, /proc/stat). Runs are not pinned (OpenMP places its threads
 * where the OS lets it), so every allowed CPU is probed: a 1-thread run can land on any. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "scratchnet/gemm.h"

enum { PROBE_BUDGET_US = 10000 }; /* per CPU, per probe: ~10 ms */

/* Steal time of all CPUs so far, in seconds; 0 where /proc/stat is missing. */
static double steal_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0.0;
    unsigned long long v[8] = { 0 };
    const int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                         &v[6], &v[7]);
    fclose(f);
    const long hz = sysconf(_SC_CLK_TCK);
    return n == 8 && hz > 0 ? (double)v[7] / (double)hz : 0.0;
}

static long involuntary_switches(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nivcsw : 0;
}

int bench_noise_init(bench_noise *nz)
{
    memset(nz, 0, sizeof *nz);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    for (int c = 0; c < CPU_SETSIZE && nz->ncpus < BENCH_NOISE_MAX_CPUS; c++)
        if (CPU_ISSET(c, &set)) nz->cpu[nz->ncpus++] = c;
    /* The session's best to start from: three rounds on every CPU. */
    double rate[BENCH_NOISE_MAX_CPUS];
    for (int round = 0; round < 3; round++) bench_noise_probe(nz, rate);
    return nz->ncpus > 0;
}

void bench_noise_probe(bench_noise *nz, double *rate)
{
    cpu_set_t saved, one;
    const int pinned = sched_getaffinity(0, sizeof saved, &saved) == 0;
    for (int i = 0; i < nz->ncpus; i++) {
        CPU_ZERO(&one);
        CPU_SET(nz->cpu[i], &one);
        /* A CPU we cannot pin to (offlined since) is probed wherever we run. */
        if (pinned) (void)sched_setaffinity(0, sizeof one, &one);
        rate[i] = sn_isa_fma_rate(PROBE_BUDGET_US * 1e-6);
        if (rate[i] > nz->best) nz->best = rate[i];
    }
    if (pinned) (void)sched_setaffinity(0, sizeof saved, &saved);
}

void bench_noise_begin(bench_noise *nz, bench_noise_run *r)
{
    memset(r, 0, sizeof *r);
    bench_noise_probe(nz, r->before);
    r->nivcsw = involuntary_switches();
    r->steal_s = steal_seconds();
}

void bench_noise_end(bench_noise *nz, bench_noise_run *r)
{
    r->nivcsw = involuntary_switches() - r->nivcsw;
    r->steal_s = steal_seconds() - r->steal_s;
    /* Let the run's OpenMP workers finish spinning and sleep (GOMP_SPINCOUNT, our own
     * spin budget: well under 2 ms) so that the probe measures the machine, not them. */
    usleep(3000);
    double after[BENCH_NOISE_MAX_CPUS];
    bench_noise_probe(nz, after);
    /* Each CPU at the mean of its two probes (a neighbour there for the whole run shows
     * in both; a blip at one end, half as much); the run at its worst CPU. */
    r->core_frac_min = 1.0;
    r->slow_cpu = nz->ncpus ? nz->cpu[0] : 0;
    for (int i = 0; i < nz->ncpus; i++) {
        const double mean = 0.5 * (r->before[i] + after[i]);
        const double frac = nz->best > 0 ? mean / nz->best : 1.0;
        if (frac < r->core_frac_min) r->core_frac_min = frac, r->slow_cpu = nz->cpu[i];
    }
    r->noisy = r->core_frac_min < BENCH_NOISE_QUIET_FRAC;
}
