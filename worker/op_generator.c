/* op_generator.c — the `generator` source: a deterministic sequence of
 * (seq, ts) records, bounded by `count` or unbounded, as fast as possible or
 * paced to `rate` records/s (shared among the subtasks), optionally pausing
 * (`pause: {after: N, for: D, until: PATH}`: for D, or until the file PATH
 * exists) to test idleness and to hold a job at a known point. The
 * streaming source of tests and demos.
 *
 * Pacing flushes the batch before waiting, so at low rates records do not
 * sit in a half-full batch; waits are short and watch the cancel flag, so a
 * cancel stops the source within one wait.
 *
 * Checkpoints: the position is the next sequence number, the records this
 * subtask emitted and what is left of the pause; snapshots are taken
 * between records (sl_op_source_checkpoint every record, and while paced
 * or paused through sl_op_source_idle). A restored pause waits only what
 * was left of it. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include <unistd.h>

#include <stdlib.h>

#include "operator.h"
#include "pacer.h"
#include "sluice/err.h"

#define S_SNAP_VERSION 1

typedef struct {
    int64_t seq;        /* next sequence number to emit */
    int64_t mine;       /* records this subtask emitted */
    int64_t pause_left; /* ms of the pause still to wait (0: none, or done) */
} s_gen_t;

static int s_open(sl_opctx_t *c)
{
    s_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    g->seq = c->subtask;
    g->pause_left = c->node->gen_pause_ms > 0 ? c->node->gen_pause_ms : 0;
    c->state = g;
    return SL_OK;
}

/* Stops emitting for ms of wall clock (`pause:`), or until the `until` file
 * exists, idle but watching cancel; the pacer then resumes at its rate from
 * the end of the pause. */
static int s_pause(sl_opctx_t *c, int64_t ms, sl_pacer_t *pace)
{
    s_gen_t *g = c->state;
    struct timespec t0, now, step = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int rc = sl_op_source_idle(c); /* a snapshot here keeps g->pause_left */
        if (rc)
            return rc;
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= ms)
            break;
        if (c->node->gen_pause_until && access(c->node->gen_pause_until, F_OK) == 0) {
            ms = el; /* ended early: the pacer resumes from now */
            break;
        }
        g->pause_left = ms - el;
        nanosleep(&step, NULL); /* the pause asked for */
    }
    g->pause_left = 0;
    pace->t0 += (double)ms / 1000.0;
    return SL_OK;
}

static int s_run(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    s_gen_t *g = c->state;
    int64_t p = c->parallelism;
    sl_pacer_t pace;
    sl_pacer_init(&pace, nd->gen_rate, c->parallelism);
    for (; nd->gen_count < 0 || g->seq < nd->gen_count; g->seq += p, g->mine++) {
        int prc = sl_op_source_checkpoint(c);
        if (prc)
            return prc;
        if (g->pause_left > 0 && g->mine == nd->gen_pause_after) {
            prc = s_pause(c, g->pause_left, &pace);
            if (prc)
                return prc;
        }
        prc = sl_pacer_wait(&pace, c);
        if (prc)
            return prc;
        int64_t seq = g->seq;
        int64_t ts = nd->gen_rate > 0
                         ? nd->gen_start + (int64_t)((double)seq * 1000.0 / nd->gen_rate)
                         : nd->gen_start + seq;
        sl_value_t vals[2] = {sl_value_int(seq), sl_value_ts(ts)};
        int rc = sl_emit(&c->out, vals);
        if (rc)
            return rc;
        pace.emitted++;
    }
    return sl_op_source_checkpoint(c);
}

static int s_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    free(c->state);
    c->state = NULL;
}

/* Version, next seq, records emitted, pause left (ms). */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    const s_gen_t *g = c->state;
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_i64(w, g->seq);
    sl_snap_i64(w, g->mine);
    sl_snap_i64(w, g->pause_left);
    return w->err;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_gen_t *g = c->state;
    const sl_plan_node_t *nd = c->node;
    uint8_t v = sl_snap_get_u8(r);
    int64_t seq = sl_snap_get_i64(r), mine = sl_snap_get_i64(r), left = sl_snap_get_i64(r);
    if (r->err || v != S_SNAP_VERSION)
        return sl_op_fail(c, SL_DATA, "generator '%s': not a snapshot of this source", nd->name);
    int64_t pause = nd->gen_pause_ms > 0 ? nd->gen_pause_ms : 0;
    /* seq must be this subtask's: subtask + mine * parallelism */
    if (mine < 0 || seq < c->subtask || left < 0 || (seq - c->subtask) / c->parallelism != mine ||
        (seq - c->subtask) % c->parallelism != 0)
        return sl_op_fail(c, SL_DATA,
                          "generator '%s': snapshot position (seq %lld, %lld emitted) is not "
                          "one of subtask %d of %d",
                          nd->name, (long long)seq, (long long)mine, c->subtask, c->parallelism);
    g->seq = seq;
    g->mine = mine;
    g->pause_left = left < pause ? left : pause; /* a job resumed with a shorter pause */
    return SL_OK;
}

const sl_op_vtable_t sl_op_generator = {.open = s_open,
                                        .run_source = s_run,
                                        .finish = s_finish,
                                        .close = s_close,
                                        .snapshot = s_snapshot,
                                        .restore = s_restore};
