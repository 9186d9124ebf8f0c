/* The pacer (pace.h) on synthetic step times: pure arithmetic, no threads, no clock. */
#include <criterion/criterion.h>

#include "scratchnet/pace.h"

/* Feeds `steps` steps; each costs team_s or solo_s per row depending on the mode the
 * pacer chose for it. Returns how many ran solo. */
static int feed(sn_pace *p, int steps, double team_s, double solo_s)
{
    int solo = 0;
    for (int i = 0; i < steps; i++) {
        solo += p->solo;
        sn_pace_step(p, p->solo ? solo_s : team_s);
    }
    return solo;
}

/* Quiet machine: the team is 1.9x one thread. After the warm-up it measures the solo
 * pace once (PACE_GAP_MIN steps), probes the team, keeps it, and then stays a team until
 * the solo pace goes stale. */
Test(pace, quiet_machine_stays_a_team)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    cr_assert_eq(p.solo, 0, "a run starts as a team");
    const int solo = feed(&p, 4000, 1.0, 1.9);
    cr_assert_eq(solo, PACE_GAP_MIN, "one solo measurement in 4000 quiet steps, got %d solo steps", solo);
    cr_assert_eq(p.solo, 0);
    cr_assert_float_eq(p.solo_s, 1.9, 1e-12);
}

/* Busy machine: the team runs at 0.6x one thread. The pacer spends most steps solo;
 * probes back off to PACE_GAP_MAX, so at most ~2% of 20,000 steps are team steps. */
Test(pace, busy_machine_goes_solo)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    const int steps = 20000, solo = feed(&p, steps, 1.0 / 0.6, 1.0);
    cr_assert_gt(solo, steps * 98 / 100 - PACE_WARMUP, "only %d of %d steps solo", solo, steps);
    cr_assert_eq(p.gap, PACE_GAP_MAX, "failed probes back off to the longest gap");
}

/* The load goes away: the next probe finds the team faster and it stays. */
Test(pace, returns_to_the_team_when_the_load_ends)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    feed(&p, 5000, 2.0, 1.0); /* busy */
    cr_assert_eq(p.gap, PACE_GAP_MAX);
    feed(&p, PACE_GAP_MAX + 2 * PACE_PROBE, 0.5, 1.0); /* quiet again */
    const int solo = feed(&p, PACE_HOLD + 10, 0.5, 1.0);
    cr_assert_eq(solo, 0, "quiet again, yet %d of %d steps solo", solo, PACE_HOLD + 10);
    cr_assert_eq(p.gap, PACE_GAP_MIN, "a win that held resets the gap");
}

/* The scheduler's credit for a long sleep: the first steps of a team after a solo
 * stretch are fast, then it falls behind. Those wins must not count: the pacer stays
 * solo nearly all the time and backs off to the longest gap. */
Test(pace, a_probe_flattered_by_sleep_credit_does_not_count)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    int solo = 0, team_run = 0;
    const int steps = 40000;
    for (int i = 0; i < steps; i++) {
        solo += p.solo;
        team_run = p.solo ? 0 : team_run + 1;
        sn_pace_step(&p, p.solo ? 1.0 : team_run <= 8 ? 0.5 : 2.0);
    }
    cr_assert_gt(solo, steps * 95 / 100, "only %d of %d steps solo", solo, steps);
    cr_assert_eq(p.gap, PACE_GAP_MAX);
}

/* The load arrives after the solo pace is known: the moving average notices within a
 * few steps and the pacer goes solo. */
Test(pace, leaves_the_team_when_a_load_arrives)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    feed(&p, 200, 0.5, 1.0);
    cr_assert_eq(p.solo, 0);
    int steps = 0;
    while (!p.solo && steps < 100) sn_pace_step(&p, 3.0), steps++;
    cr_assert(p.solo, "still a team after 100 steps at 3x the solo time");
    cr_assert_leq(steps, 8, "took %d steps to notice", steps);
}

/* One outlier step (a preemption of a few ms: 80x a normal step) inside a quiet run
 * does not send the team solo: a team step counts as at most 2 solo steps. */
Test(pace, one_outlier_does_not_end_the_team)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    feed(&p, 200, 0.5, 1.0);
    sn_pace_step(&p, 40.0);
    const int solo = feed(&p, 500, 0.5, 1.0);
    cr_assert_eq(solo, 0, "%d solo steps after one outlier", solo);
    cr_assert_eq(p.solo, 0);
}

Test(pace, forced_modes)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_ALWAYS);
    cr_assert_eq(feed(&p, 1000, 10.0, 1.0), 0, "always: never solo");
    sn_pace_init(&p, SN_TEAM_SOLO);
    cr_assert_eq(feed(&p, 1000, 0.1, 1.0), 1000, "solo: always solo");
    sn_pace_init(&p, SN_TEAM_ALTERNATE);
    const int solo = feed(&p, 70, 1.0, 1.0);
    cr_assert_eq(solo, 35, "alternate: half the steps solo, got %d of 70", solo);
}

/* A busy machine seen from outside: sn_pace_busy sends a team solo at once, and a probe
 * due while it is busy is skipped (the gap doubles); forced modes ignore it. */
Test(pace, busy_machine_seen_from_outside)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    cr_assert_eq(sn_pace_busy(&p), 1, "a team goes solo");
    cr_assert(p.solo);
    int steps = 0;
    while (!sn_pace_probe_due(&p)) sn_pace_step(&p, 1.0), steps++;
    cr_assert_eq(steps, PACE_GAP_MIN - 1);
    sn_pace_busy(&p);
    cr_assert(p.solo && p.gap == 2 * PACE_GAP_MIN, "a skipped probe doubles the gap (gap %d)", p.gap);
    cr_assert_eq(feed(&p, 2 * PACE_GAP_MIN - 1, 0.5, 1.0), 2 * PACE_GAP_MIN - 1, "still solo until the next probe");
    sn_pace_init(&p, SN_TEAM_ALWAYS);
    cr_assert_eq(sn_pace_busy(&p), 0);
    cr_assert_eq(p.solo, 0);
}

/* Busy as an epoch starts: solo for the whole epoch, long or short, then probes resume. */
Test(pace, busy_for_a_whole_run)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    sn_pace_busy_for(&p, 391);
    cr_assert(sn_pace_solo_for(&p, 391), "solo for the 391 steps of the epoch");
    cr_assert_eq(feed(&p, 391, 0.5, 1.0), 391);
    sn_pace_busy_for(&p, 100000); /* longer than the longest gap */
    cr_assert(p.solo && p.gap == PACE_GAP_MAX);
    cr_assert_eq(feed(&p, PACE_GAP_MAX - 1, 0.5, 1.0), PACE_GAP_MAX - 1);
}

/* The machine looks idle again during a long solo stretch: the team is probed at the
 * next step instead of up to PACE_GAP_MAX steps later. */
Test(pace, idle_machine_probes_soon)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    sn_pace_busy_for(&p, 100000);
    sn_pace_step(&p, 1.0);
    cr_assert(p.solo && !sn_pace_probe_due(&p));
    sn_pace_idle(&p);
    cr_assert(sn_pace_probe_due(&p));
    sn_pace_step(&p, 1.0);
    cr_assert_eq(p.solo, 0, "probing the team");
    cr_assert_eq(p.probe, PACE_PROBE);
}

/* How long a busy look at a run's start commits it to one thread: the whole of a short
 * run (the MLP's epoch, 0.1 s), about PACE_COMMIT_S of a long one (a CNN's epoch, 8 s),
 * and PACE_GAP_MIN steps before any solo pace is known. */
Test(pace, a_busy_start_commits_a_bounded_time)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    p.rows = 128;
    cr_assert_eq(sn_pace_commit_steps(&p, 469), PACE_GAP_MIN);
    cr_assert_eq(sn_pace_commit_steps(&p, 7), 7);
    p.solo_s = 2e-6; /* the MLP: 469 steps x 128 rows = 0.12 s */
    cr_assert_eq(sn_pace_commit_steps(&p, 469), 469);
    p.solo_s = 1.4e-4; /* a CNN: 18 ms a step, 8.4 s an epoch */
    const int n = sn_pace_commit_steps(&p, 469);
    cr_assert(n >= 50 && n <= 60, "%d steps: expected PACE_COMMIT_S / 18 ms = 55", n);
    p.solo_s = 1e-2; /* 1.3 s a step: at least PACE_GAP_MIN */
    cr_assert_eq(sn_pace_commit_steps(&p, 469), PACE_GAP_MIN);
}

/* With long steps (rows known: 128 rows at 100 us a row solo, 12.8 ms a step), the quiet
 * machine's one measurement takes PACE_MEASURE_MIN steps (51 ms >= PACE_MEASURE_S), not
 * PACE_GAP_MIN; with short ones (the MLP's 0.26 ms), PACE_GAP_MIN as before. */
Test(pace, a_measurement_of_long_steps_is_short)
{
    sn_pace p;
    sn_pace_init(&p, SN_TEAM_AUTO);
    p.rows = 128;
    int solo = feed(&p, 2000, 55e-6, 100e-6);
    cr_assert_eq(solo, PACE_MEASURE_MIN, "%d solo steps in a quiet run of long steps", solo);
    cr_assert_eq(p.solo, 0);
    sn_pace_init(&p, SN_TEAM_AUTO);
    p.rows = 128;
    solo = feed(&p, 2000, 1.1e-6, 2e-6);
    cr_assert_eq(solo, PACE_GAP_MIN, "%d solo steps in a quiet run of short steps", solo);
}
