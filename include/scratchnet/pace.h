/* When a team should run on one thread. On a busy machine (another process on one of
 * the two cores) a team of two loses time to the scheduler: each of its threads gets a
 * share of a core, the OS deschedules one in the middle of a work item, and the other,
 * having done everything else, waits for it. One thread alone, with a core to itself,
 * is then faster. The pacer measures the time a step takes per row in each mode and
 * picks the faster:
 *  - after PACE_WARMUP team steps (cold caches and page faults slow the first ones), a
 *    short solo stretch measures the solo pace (PACE_GAP_MIN steps, or fewer, but
 *    PACE_MEASURE_MIN at least, when they take PACE_MEASURE_S);
 *  - team -> solo when the team's recent steps are slower than the solo pace;
 *  - solo -> team for a short probe every `gap` steps; the team stays if it beat the
 *    solo pace, else solo resumes and the gap doubles (up to PACE_GAP_MAX). A probe's
 *    win is provisional: a thread that slept through a solo stretch comes back with the
 *    scheduler's credit for sleeping and runs unopposed for a few milliseconds, so a
 *    team that falls behind again within PACE_HOLD steps counts as a lost probe;
 *  - a solo pace older than PACE_STALE team steps is measured again;
 *  - the caller may also say the machine looks busy (other processes' runnable tasks
 *    leave fewer idle CPUs than the team has threads): at an epoch's start that sends a
 *    team solo at once, and a probe due on a busy machine is skipped (counted lost).
 * On a quiet machine that costs one solo stretch per trainer and per PACE_STALE steps
 * (~0.3% of the steps' time) and a clock read per step. Which thread computes what never
 * changes a bit of the results, so neither does the pacer. Pure arithmetic, tested on
 * synthetic step times. */
#ifndef SCRATCHNET_PACE_H
#define SCRATCHNET_PACE_H

enum {
    PACE_GAP_MIN = 16,  /* solo steps in the first stretch, and before the first probe */
    PACE_GAP_MAX = 2048, /* at most this many between probes (<1% of steps probing) */
    PACE_HOLD = 1024,   /* team steps after a won probe before the win is believed */
    PACE_PROBE = 6,     /* team steps in a probe; the first (waking up) is not counted */
    PACE_WARMUP = 64,   /* team steps before the solo pace is first measured */
    PACE_STALE = 4096,  /* team steps after which the solo pace is measured again */
    PACE_MEASURE_MIN = 4, /* solo steps a measurement takes at least ... */
};
/* ... and, with long steps, no more than it takes to spend this long solo (a CNN's steps
 * take ~15 ms alone: 16 of them cost ~3% of a one-epoch run at half speed). */
#define PACE_MEASURE_S 0.05

/* SCRATCHNET_TEAM: auto (default, as above); always (never solo, and one-shot tasks use
 * every thread asked for whatever the load); solo (every step on one thread of the
 * team); alternate (solo and team in turns of PACE_TURN steps: for tests of the hand-
 * overs). */
typedef enum sn_team_mode { SN_TEAM_AUTO, SN_TEAM_ALWAYS, SN_TEAM_SOLO, SN_TEAM_ALTERNATE } sn_team_mode;
enum { PACE_TURN = 7 };

/* The mode SCRATCHNET_TEAM asks for; SN_EINVAL (with err set) for an unknown value. */
struct sn_error;
int sn_team_mode_from_env(sn_team_mode *mode, struct sn_error *err);

typedef struct sn_pace {
    sn_team_mode mode;
    double team_s, solo_s; /* moving averages of seconds per row in each mode; 0: none yet */
    int solo;              /* the mode of the next step: 1 solo, 0 team */
    int steps;             /* steps run in the current mode */
    int gap;               /* solo steps between probes */
    int probe;             /* team steps left in the current probe; 0: not probing */
    double probe_sum;
    int probe_n;
    int provisional; /* the team won its last probe less than PACE_HOLD steps ago */
    int rows;        /* rows per step, set by the caller (0: unknown, no time bounds) */
    int measuring;   /* this solo stretch measures the solo pace (not a load's) */
    double solo_elapsed; /* seconds of the current solo stretch (with rows) */
} sn_pace;

void sn_pace_init(sn_pace *p, sn_team_mode mode);

/* After a step run in mode p->solo that took `seconds_per_row`: sets p->solo for the
 * next step; returns 1 if the mode changed. */
int sn_pace_step(sn_pace *p, double seconds_per_row);

/* 1 if the next sn_pace_step would end a solo stretch with a probe: the caller may look
 * at the machine first and call sn_pace_busy if it is busy. */
int sn_pace_probe_due(const sn_pace *p);

/* 1 in auto mode (the pacer decides), 0 in a forced mode. */
int sn_pace_mode_auto(const sn_pace *p);

/* The machine looks idle: a solo stretch ends with a probe of the team at its next step. */
void sn_pace_idle(sn_pace *p);

/* 1 if the next `steps` steps will all be solo whatever they measure (a solo stretch
 * with no probe due in them, in auto mode): the caller need not keep a team around. */
int sn_pace_solo_for(const sn_pace *p, int steps);

/* Steps of a run of `steps` steps (of p->rows rows) that a busy look at its start should
 * commit to one thread (sn_pace_busy_for): all of them if the run is short at the solo
 * pace (under PACE_COMMIT_S; rows unknown: all), else as many as fit in PACE_COMMIT_S (at
 * least PACE_GAP_MIN), or PACE_GAP_MIN with no solo pace known yet; then probes as usual. A
 * CNN's epoch takes seconds: one look at a machine busy for a moment (a peer's process
 * ending) made a whole epoch solo, at half the speed. */
#define PACE_COMMIT_S 1.0
int sn_pace_commit_steps(const sn_pace *p, int steps);

/* The machine looks busy: a team goes solo; a due probe is skipped and the gap doubles.
 * Returns 1 if the mode changed. No effect in a forced mode. */
int sn_pace_busy(sn_pace *p);

/* The machine looks busy as a run of `steps` steps starts (an epoch): solo, with no
 * probe before the run ends; the run can be given to one thread. */
void sn_pace_busy_for(sn_pace *p, int steps);

#endif
