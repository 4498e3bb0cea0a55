/* op_generator.c — the `generator` source: a deterministic sequence of
 * (seq, ts) records, bounded by `count` or unbounded, as fast as possible or
 * paced to `rate` records/s (shared among the subtasks), optionally pausing
 * (`pause: {after: N, for: D}`) to test idleness. The streaming source of
 * tests and demos.
 *
 * Pacing flushes the batch before waiting, so at low rates records do not
 * sit in a half-full batch; waits are short and watch the cancel flag, so a
 * cancel stops the source within one wait. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "operator.h"
#include "pacer.h"
#include "sluice/err.h"

static int s_open(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

/* Stops emitting for ms of wall clock (`pause:`), idle but watching cancel;
 * the pacer then resumes at its rate from the end of the pause. */
static int s_pause(sl_opctx_t *c, int64_t ms, sl_pacer_t *pace)
{
    struct timespec t0, now, step = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int rc = sl_op_source_idle(c);
        if (rc)
            return rc;
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= ms)
            break;
        nanosleep(&step, NULL); /* the pause asked for */
    }
    pace->t0 += (double)ms / 1000.0;
    return SL_OK;
}

static int s_run(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    int64_t p = c->parallelism;
    sl_pacer_t pace;
    sl_pacer_init(&pace, nd->gen_rate, c->parallelism);
    int64_t mine = 0;
    for (int64_t seq = c->subtask; nd->gen_count < 0 || seq < nd->gen_count; seq += p) {
        if (nd->gen_pause_ms > 0 && mine++ == nd->gen_pause_after) {
            int prc = s_pause(c, nd->gen_pause_ms, &pace);
            if (prc)
                return prc;
        }
        int prc = sl_pacer_wait(&pace, c);
        if (prc)
            return prc;
        int64_t ts = nd->gen_rate > 0
                         ? nd->gen_start + (int64_t)((double)seq * 1000.0 / nd->gen_rate)
                         : nd->gen_start + seq;
        sl_value_t vals[2] = {sl_value_int(seq), sl_value_ts(ts)};
        int rc = sl_emit(&c->out, vals);
        if (rc)
            return rc;
        pace.emitted++;
    }
    return SL_OK;
}

static int s_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    (void)c;
}

const sl_op_vtable_t sl_op_generator = {
    .open = s_open, .run_source = s_run, .finish = s_finish, .close = s_close};
