#include "scratchnet/pace.h"

#include <stdlib.h>
#include <string.h>

#include "scratchnet/error.h"

/* Weight of a new step in a moving average: about the last eight steps count. */
static const double NEW_WEIGHT = 0.125;

/* The team must be this much slower than solo before it is given up (hysteresis). */
static const double TEAM_SLACK = 1.05;

/* A team step counts as at most this many solo steps' time in the team's average. One
 * step that the OS interrupted for a few milliseconds is 100x a normal one at batch 32
 * (per row), and would tip the average over the solo pace on its own; a team that is
 * really slower than solo is so step after step. (A load that makes only some steps
 * very slow is seen by the caller's look at the machine, sn_pace_busy_for.) */
static const double TEAM_STEP_CAP = 2.0;

static double average(double avg, double x)
{
    return avg > 0.0 ? avg + NEW_WEIGHT * (x - avg) : x;
}

int sn_team_mode_from_env(sn_team_mode *mode, sn_error *err)
{
    static const char *const names[] = { "auto", "always", "solo", "alternate" };
    const char *v = getenv("SCRATCHNET_TEAM");
    *mode = SN_TEAM_AUTO;
    if (!v || !*v) return SN_OK;
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i])) {
            *mode = (sn_team_mode)i;
            return SN_OK;
        }
    return sn_fail(err, SN_EINVAL, "SCRATCHNET_TEAM='%s' is not a team mode; expected auto, always, solo or alternate",
                   v);
}

void sn_pace_init(sn_pace *p, sn_team_mode mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->gap = PACE_GAP_MIN;
    p->solo = mode == SN_TEAM_SOLO;
}

static int go_solo(sn_pace *p)
{
    p->solo = 1, p->steps = 0, p->provisional = 0, p->measuring = 0, p->solo_elapsed = 0.0;
    return 1;
}

/* The team lost a probe (at once, or within PACE_HOLD steps): solo, and a longer gap. */
static int lose(sn_pace *p)
{
    p->gap = 2 * p->gap < PACE_GAP_MAX ? 2 * p->gap : PACE_GAP_MAX;
    return go_solo(p);
}

int sn_pace_probe_due(const sn_pace *p)
{
    return p->mode == SN_TEAM_AUTO && p->solo && p->steps + 1 >= p->gap;
}

int sn_pace_mode_auto(const sn_pace *p)
{
    return p->mode == SN_TEAM_AUTO;
}

void sn_pace_idle(sn_pace *p)
{
    if (p->mode == SN_TEAM_AUTO && p->solo && p->steps + 1 < p->gap) p->steps = p->gap - 1;
}

int sn_pace_solo_for(const sn_pace *p, int steps)
{
    return p->mode == SN_TEAM_AUTO && p->solo && p->steps + steps < p->gap;
}

int sn_pace_commit_steps(const sn_pace *p, int steps)
{
    const double solo_s = p->solo_s, rows = p->rows; /* seconds per row; rows per step */
    if (!(solo_s > 0.0)) return steps < PACE_GAP_MIN ? steps : PACE_GAP_MIN;
    if ((double)steps * rows * solo_s <= PACE_COMMIT_S) return steps;
    const double fit = PACE_COMMIT_S / (rows * solo_s);
    return fit < PACE_GAP_MIN ? PACE_GAP_MIN : (int)fit;
}

int sn_pace_busy(sn_pace *p)
{
    if (p->mode != SN_TEAM_AUTO) return 0;
    if (p->solo) { /* skip the probe: as if it had been lost */
        p->steps = 0;
        p->gap = 2 * p->gap < PACE_GAP_MAX ? 2 * p->gap : PACE_GAP_MAX;
        return 0;
    }
    if (p->probe) p->probe = 0;
    return go_solo(p);
}

void sn_pace_busy_for(sn_pace *p, int steps)
{
    if (p->mode != SN_TEAM_AUTO) return;
    if (!p->solo) go_solo(p);
    if (p->gap < p->steps + steps + 1) p->gap = p->steps + steps + 1 < PACE_GAP_MAX ? p->steps + steps + 1 : PACE_GAP_MAX;
    if (p->gap < p->steps + steps + 1) p->steps = p->gap - steps - 1; /* a run longer than the longest gap */
}

int sn_pace_step(sn_pace *p, double seconds_per_row)
{
    const double x = seconds_per_row;
    p->steps++;
    switch (p->mode) {
    case SN_TEAM_ALWAYS:
    case SN_TEAM_SOLO:
        return 0;
    case SN_TEAM_ALTERNATE:
        if (p->steps < PACE_TURN) return 0;
        p->solo = !p->solo, p->steps = 0;
        return 1;
    case SN_TEAM_AUTO:
        break;
    }
    if (p->solo) {
        p->solo_s = average(p->solo_s, x);
        p->solo_elapsed += x * p->rows;
        const int measured = p->measuring && p->steps >= PACE_MEASURE_MIN && p->solo_elapsed >= PACE_MEASURE_S;
        if (p->steps < p->gap && !measured) return 0;
        p->solo = 0, p->steps = 0, p->probe = PACE_PROBE, p->probe_sum = 0.0, p->probe_n = 0, p->measuring = 0;
        return 1;
    }
    if (p->probe) {
        if (p->steps > 1) p->probe_sum += x, p->probe_n++;
        if (--p->probe > 0) return 0;
        const double mean = p->probe_n ? p->probe_sum / p->probe_n : x;
        if (mean < p->solo_s) { /* the team wins, for now */
            p->team_s = mean, p->provisional = 1, p->steps = 0;
            return 0;
        }
        return lose(p);
    }
    p->team_s = average(p->team_s, p->solo_s > 0.0 && x > TEAM_STEP_CAP * p->solo_s ? TEAM_STEP_CAP * p->solo_s : x);
    if (p->provisional && p->steps >= PACE_HOLD) p->provisional = 0, p->gap = PACE_GAP_MIN;
    if (p->solo_s > 0.0 && p->team_s > TEAM_SLACK * p->solo_s) return p->provisional ? lose(p) : go_solo(p);
    const int measure = p->solo_s > 0.0 ? p->steps > PACE_STALE : p->steps >= PACE_WARMUP;
    if (measure) {
        p->solo_s = 0.0; /* measured under another load (or never): again */
        p->gap = PACE_GAP_MIN;
        go_solo(p);
        p->measuring = 1;
        return 1;
    }
    return 0;
}
