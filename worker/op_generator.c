/* op_generator.c — the `generator` source: a deterministic sequence of
 * (seq, ts) records, bounded by `count` or unbounded, as fast as possible or
 * paced to `rate` records/s (shared among the subtasks). The streaming
 * source of tests and demos.
 *
 * Pacing flushes the batch before waiting, so at low rates records do not
 * sit in a half-full batch; waits are short and watch the cancel flag, so a
 * cancel stops the source within one wait. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "operator.h"
#include "sluice/err.h"

#define S_MAX_WAIT_NS (20 * 1000 * 1000) /* longest single wait while pacing */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_open(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static int s_run(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    int64_t p = c->parallelism;
    double rate = nd->gen_rate > 0 ? nd->gen_rate / (double)p : 0; /* this subtask's share */
    double t0 = s_now();
    int64_t emitted = 0;
    for (int64_t seq = c->subtask; nd->gen_count < 0 || seq < nd->gen_count; seq += p) {
        if ((emitted & 255) == 0 && atomic_load(c->cancel))
            return SL_CANCELED;
        if (rate > 0) {
            for (;;) {
                double ahead = t0 + (double)emitted / rate - s_now();
                if (ahead <= 0)
                    break;
                int rc = sl_emit_flush(&c->out);
                if (rc)
                    return rc;
                if (atomic_load(c->cancel))
                    return SL_CANCELED;
                long ns = ahead * 1e9 < S_MAX_WAIT_NS ? (long)(ahead * 1e9) : S_MAX_WAIT_NS;
                struct timespec ts = {0, ns};
                nanosleep(&ts, NULL); /* pacing to the configured rate */
            }
        }
        int64_t ts = nd->gen_rate > 0
                         ? nd->gen_start + (int64_t)((double)seq * 1000.0 / nd->gen_rate)
                         : nd->gen_start + seq;
        sl_value_t vals[2] = {sl_value_int(seq), sl_value_ts(ts)};
        int rc = sl_emit(&c->out, vals);
        if (rc)
            return rc;
        emitted++;
        atomic_fetch_add_explicit(&c->records_in, 1, memory_order_relaxed);
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
