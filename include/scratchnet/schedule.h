/* scratchnet — learning-rate schedules: the rate of step `step` (0-based) of a run of
 * `total` steps. Pure functions, no state. */
#ifndef SCRATCHNET_SCHEDULE_H
#define SCRATCHNET_SCHEDULE_H

/* constant: lr. cosine: lr * (1 + cos(pi * step / total)) / 2, from lr down towards 0
 * (large steps early, a smooth landing at the end instead of a last epoch that jitters). */
typedef enum sn_schedule { SN_SCHEDULE_CONSTANT, SN_SCHEDULE_COSINE } sn_schedule;

float sn_schedule_lr(sn_schedule s, float lr, long step, long total);

#endif
