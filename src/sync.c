/* syscall() for futex and the CPU_* macros: glibc extensions beyond the project-wide
 * _XOPEN_SOURCE. */
#define _GNU_SOURCE
#include "sync.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <dirent.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long a waiter spins before it sleeps. Long enough to cover the waits of a quiet
 * machine (phase imbalance of a training step: 1-10 us; a futex wake-up costs 5-50 us
 * in a VM, more than it would save), short enough that a thread whose partner has been
 * descheduled gives the core back within a fraction of a 60 us step. */
enum { DEFAULT_SPIN_US = 50 };

static double monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

double sn_spin_budget_us(void)
{
    static _Atomic double budget = -1.0;
    double b = atomic_load_explicit(&budget, memory_order_relaxed);
    if (b >= 0.0) return b;
    b = DEFAULT_SPIN_US;
    const char *env = getenv("SCRATCHNET_SPIN_US");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (*end == '\0' && v >= 0.0 && v <= 100000.0) b = v; /* anything else: the default */
    }
    atomic_store_explicit(&budget, b, memory_order_relaxed);
    return b;
}

void sn_event_reset(sn_event *e)
{
    atomic_store(&e->value, 0);
    atomic_store(&e->sleepers, 0);
}

static void kernel_wait(atomic_int *word, int seen)
{
#if defined(__linux__)
    /* Sleeps only if *word still equals seen: a wake between our check and this call
     * is not lost. Spurious returns are fine, the caller loops. */
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    (void)word, (void)seen;
    sched_yield();
#endif
}

static void kernel_wake_all(atomic_int *word)
{
#if defined(__linux__)
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

int sn_event_add(sn_event *e, int delta)
{
    const int now = atomic_fetch_add(&e->value, delta) + delta;
    /* seq_cst on both sides: a waiter that raised `sleepers` before its last check of
     * `value` is seen here, or it saw the new value and does not sleep. */
    if (atomic_load(&e->sleepers) > 0) kernel_wake_all(&e->value);
    return now;
}

int sn_event_wait(sn_event *e, int target)
{
    if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return 0;
    const double budget = sn_spin_budget_us();
    if (budget > 0.0) {
        const double until = monotonic_us() + budget;
        for (;;) {
            for (int i = 0; i < 64; i++) {
                if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return 0;
                CPU_RELAX();
            }
            if (monotonic_us() > until) break;
        }
    }
    for (;;) {
        atomic_fetch_add(&e->sleepers, 1);
        const int seen = atomic_load(&e->value);
        if (seen >= target) {
            atomic_fetch_sub(&e->sleepers, 1);
            return 0;
        }
        kernel_wait(&e->value, seen);
        atomic_fetch_sub(&e->sleepers, 1);
        if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return 1;
    }
}

#if defined(__linux__)
/* Threads of this process that are running or runnable (state R in /proc/self/task):
 * the caller, and OpenMP workers still spinning after the last region. */
static int own_running(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        const size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close = strrchr(buf, ')'); /* "tid (comm) S ...": comm may hold spaces */
        if (close && close[1] == ' ' && close[2] == 'R') n++;
    }
    closedir(d);
    return n > 0 ? n : 1;
}
#endif

/* CPUs not busy with other processes' work, now; -1 if it cannot be told. */
static int look_idle_cpus(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    const int cpus = CPU_COUNT(&set);
    /* The count is an instant's: a kernel thread passing through shows up as a busy CPU,
     * and so does the process reading our output, woken by the line we just printed. A
     * process that keeps a core busy shows in both of two looks ~50 us apart. (Spun,
     * not slept: on a busy machine a sleeping thread waits milliseconds for a core.) */
    int others = cpus;
    for (int look = 0; look < 2 && others > 0; look++) {
        if (look > 0)
            for (const double until = monotonic_us() + 50.0; monotonic_us() < until;) CPU_RELAX();
        FILE *f = fopen("/proc/loadavg", "r");
        if (!f) return -1;
        double a1, a5, a15;
        int running = 0, total = 0;
        const int got = fscanf(f, "%lf %lf %lf %d/%d", &a1, &a5, &a15, &running, &total);
        fclose(f);
        if (got != 5 || running < 1) return -1;
        /* Less our own runnable threads (this one, and OpenMP workers still spinning
         * after the last region); only worth counting when something else runs. */
        const int mine = running > 1 ? own_running() : 1;
        if (running - mine < others) others = running - mine;
    }
    return cpus - (others > 0 ? others : 0);
#else
    return -1;
#endif
}

int sn_idle_cpus(int want, double max_age_s)
{
    static _Atomic double looked_at = -1.0;
    static atomic_int idle_seen = -1, always = -1;
    if (want <= 1) return 1;
    if (atomic_load(&always) < 0) {
        const char *v = getenv("SCRATCHNET_TEAM");
        atomic_store(&always, v && !strcmp(v, "always"));
    }
    if (atomic_load(&always)) return want;
    const double now = 1e-6 * monotonic_us();
    int idle = atomic_load(&idle_seen);
    const double then = atomic_load(&looked_at);
    if (max_age_s <= 0.0 || then < 0.0 || now - then > max_age_s) {
        idle = look_idle_cpus();
        atomic_store(&idle_seen, idle);
        atomic_store(&looked_at, now);
    }
    if (idle < 0) return want;
    return idle < 1 ? 1 : idle < want ? idle : want;
}

void sn_barrier_reset(sn_barrier *b)
{
    sn_event_reset(&b->arrived);
    atomic_store(&b->size, 0);
}

void sn_barrier_join(sn_barrier *b, int size)
{
    int none = 0;
    atomic_compare_exchange_strong(&b->size, &none, size);
}

void sn_barrier_wait(sn_barrier *b)
{
    const int size = atomic_load(&b->size);
    const int ticket = sn_event_add(&b->arrived, 1);
    sn_event_wait(&b->arrived, (ticket + size - 1) / size * size);
}

