#include "scratchnet/schedule.h"

#include <math.h>

float sn_schedule_lr(sn_schedule s, float lr, long step, long total)
{
    if (s == SN_SCHEDULE_CONSTANT || total <= 0) return lr;
    const double frac = (double)step / (double)total;
    return (float)(0.5 * lr * (1.0 + cos(3.141592653589793 * frac)));
}
