/* syscall() for futex: a glibc extension beyond the project-wide _XOPEN_SOURCE. */
#define _DEFAULT_SOURCE
#include "sync.h"

#include <limits.h>
#include <stdlib.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
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

void sn_event_wait(sn_event *e, int target)
{
    if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return;
    const double budget = sn_spin_budget_us();
    if (budget > 0.0) {
        const double until = monotonic_us() + budget;
        for (;;) {
            for (int i = 0; i < 64; i++) {
                if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return;
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
            return;
        }
        kernel_wait(&e->value, seen);
        atomic_fetch_sub(&e->sleepers, 1);
        if (atomic_load_explicit(&e->value, memory_order_acquire) >= target) return;
    }
}

void sn_barrier_init(sn_barrier *b, int size)
{
    sn_event_reset(&b->arrived);
    b->size = size;
}

void sn_barrier_wait(sn_barrier *b, int *round)
{
    *round += 1;
    sn_event_add(&b->arrived, 1);
    sn_event_wait(&b->arrived, *round * b->size);
}
