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

/* ---- sequence sources --------------------------------------------------- */

#define S_SEQ_SNAP_VERSION 1

int sl_seq_run(sl_opctx_t *c, const sl_seq_source_t *src, int64_t *next)
{
    sl_pacer_t pace;
    sl_pacer_init(&pace, src->rate, c->parallelism);
    int64_t p = c->parallelism, wall = 0;
    for (; src->events < 0 || *next < src->events; *next += p) {
        int rc = sl_op_source_checkpoint(c);
        if (rc)
            return rc;
        rc = src->realtime ? sl_pacer_until(c, src->time_of(src->model, (uint64_t)*next), &wall)
                           : sl_pacer_wait(&pace, c); /* also watches the cancel flag */
        if (rc)
            return rc;
        if ((rc = src->emit(c, *next)) != SL_OK)
            return rc;
        pace.emitted++;
    }
    return sl_op_source_checkpoint(c);
}

int sl_seq_snapshot(int64_t next, sl_snap_w_t *w)
{
    sl_snap_u8(w, S_SEQ_SNAP_VERSION);
    sl_snap_i64(w, next);
    return w->err;
}

int sl_seq_restore(sl_opctx_t *c, const char *kind, sl_snap_r_t *r, int64_t *next)
{
    uint8_t v = sl_snap_get_u8(r);
    int64_t n = sl_snap_get_i64(r);
    if (r->err || v != S_SEQ_SNAP_VERSION)
        return sl_op_fail(c, SL_DATA, "%s '%s': not a snapshot of this source", kind,
                          c->node->name);
    if (n < c->subtask || (n - c->subtask) % c->parallelism != 0)
        return sl_op_fail(c, SL_DATA,
                          "%s '%s': snapshot position %lld is not one of subtask %d of %d", kind,
                          c->node->name, (long long)n, c->subtask, c->parallelism);
    *next = n;
    return SL_OK;
}
