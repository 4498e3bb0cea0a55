/* pacer.c — see pacer.h. */
#define _POSIX_C_SOURCE 200809L
#include "pacer.h"

#include <time.h>

#include "sluice/err.h"

#define S_MAX_WAIT_NS (20 * 1000 * 1000) /* longest single wait */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sl_pacer_init(sl_pacer_t *p, double total_rate, int parallelism)
{
    p->rate = total_rate > 0 ? total_rate / (double)parallelism : 0;
    p->t0 = s_now();
    p->emitted = 0;
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_pacer_until(sl_opctx_t *c, int64_t due_ms, int64_t *now_ms)
{
    while (due_ms > *now_ms) {
        *now_ms = s_wall_ms();
        if (due_ms <= *now_ms)
            break;
        int rc = sl_op_source_idle(c);
        if (rc)
            return rc;
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        int64_t ms = due_ms - *now_ms < 20 ? due_ms - *now_ms : 20;
        struct timespec ts = {0, (long)ms * 1000000L};
        nanosleep(&ts, NULL); /* until the event is due on the wall clock */
    }
    return SL_OK;
}

int sl_pacer_wait(sl_pacer_t *p, sl_opctx_t *c)
{
    if ((p->emitted & 255) == 0 && atomic_load(c->cancel))
        return SL_CANCELED;
    if (p->rate <= 0)
        return SL_OK;
    for (;;) {
        double ahead = p->t0 + (double)p->emitted / p->rate - s_now();
        if (ahead <= 0)
            return SL_OK;
        int rc = sl_op_source_idle(c);
        if (rc)
            return rc;
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        long ns = ahead * 1e9 < S_MAX_WAIT_NS ? (long)(ahead * 1e9) : S_MAX_WAIT_NS;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL); /* pacing to the configured rate */
    }
}
