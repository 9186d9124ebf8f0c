/* Waiting without burning the core a partner needs: monotonic event counters that a
 * thread waits on by spinning for a bounded time (the quiet-machine case: the partner is
 * a few microseconds away) and then sleeping in the kernel (the busy-machine case: the
 * partner has been descheduled, and spinning would hold the very core it needs).
 * libgomp's own barriers spin for ~300,000 pause instructions (7-16 ms) before they
 * sleep; that is what made two threads slower than one beside a single busy process.
 *
 * Also the claim slots with which a team hands out a phase's work items: whoever is
 * running takes what is left, so a descheduled thread's share is done by its partner
 * instead of being waited for. Internal to the library. */
#ifndef SN_SYNC_H
#define SN_SYNC_H

#include <stdatomic.h>

/* A counter that only grows; threads wait for it to reach a target. */
typedef struct sn_event {
    atomic_int value;
    atomic_int sleepers; /* threads inside the kernel wait, or about to be */
} sn_event;

void sn_event_reset(sn_event *e);

/* Adds delta (> 0) and wakes the sleepers; returns the new value. */
int sn_event_add(sn_event *e, int delta);

/* Returns once value >= target: spins for at most the spin budget, then sleeps.
 * Returns 1 if it had to sleep, 0 if it did not. */
int sn_event_wait(sn_event *e, int target);

/* 1 if this thread took the slot for `stamp`; 0 if another thread already has it, or
 * it has moved on to a later stamp. Stamps only grow: a thread still scanning an earlier
 * phase's slots (stamp lower than the slot's) must not take them back. */
static inline int sn_claim(atomic_int *slot, int stamp)
{
    int seen = atomic_load_explicit(slot, memory_order_relaxed);
    while (seen < stamp)
        if (atomic_compare_exchange_weak_explicit(slot, &seen, stamp, memory_order_acq_rel, memory_order_relaxed))
            return 1;
    return 0;
}

/* The spin budget in microseconds: SCRATCHNET_SPIN_US if set (0..100000; for
 * experiments), else the default (see sync.c). Read once. */
double sn_spin_budget_us(void);

/* How many threads a one-shot parallel task should use, at most `want`: the CPUs this
 * process may run on less the other processes' tasks runnable right now (Linux:
 * /proc/loadavg's running count, less this process's own), at least 1. A thread started
 * on a core that another process is using runs at a fraction of its speed and makes its
 * partner wait; for a task too short to adapt as it goes (an evaluation, a GEMM call),
 * starting fewer is the better bet. Looking costs ~50 us; a look up to max_age_s
 * seconds old is reused (0: look now). */
int sn_idle_cpus(int want, double max_age_s);

/* A barrier for a team, on the same spin-then-sleep wait. */
typedef struct sn_barrier {
    sn_event arrived; /* arrivals over all rounds so far */
    atomic_int size;  /* the team's size; 0 until a member says */
} sn_barrier;

void sn_barrier_reset(sn_barrier *b);
/* Every member calls this with the team size before its first wait. */
void sn_barrier_join(sn_barrier *b, int size);
/* Returns when every member has arrived in this round. A member's ticket (its arrival
 * number) tells the round: nobody can arrive for round r + 1 before round r is full. */
void sn_barrier_wait(sn_barrier *b);

#endif
