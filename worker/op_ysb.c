/* op_ysb.c — the `ysb` source: Yahoo Streaming Benchmark ad events
 * (sluice/ysb.h) as rows (user_id, page_id, ad_id, ad_type, event_type,
 * event_time, ip), bounded by `events` or unbounded, as fast as possible or
 * paced to `rate` events/s of wall clock (shared among the subtasks).
 * Subtask i of P generates events i, i+P, ..., so the union of the
 * subtasks is the stream of P = 1.
 *
 * The generator's id pools live in the operator's state; an event's
 * strings point into them, so nothing is allocated or formatted per
 * record: the row is encoded straight from the pools into the batch.
 *
 * Checkpoints: the position is the index of the next event of this
 * subtask (sl_op_source_checkpoint is called before every event). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "pacer.h"
#include "sluice/err.h"
#include "sluice/ysb.h"

#define S_NFIELDS 7 /* columns of the output row */

typedef struct {
    sl_ysb_gen_t gen; /* the generator and its id pools */
    int64_t next;     /* index of the next event to emit */
} s_ysb_t;

static int s_open(sl_opctx_t *c)
{
    char err[128];
    if (sl_ysb_cfg_check(&c->node->ysb, err, sizeof err))
        return sl_op_fail(c, SL_INVAL, "%s", err);
    if (!sl_plan_source_schema(c->node) || sl_plan_source_schema(c->node)->nfields != S_NFIELDS)
        return sl_op_fail(c, SL_INVAL, "ysb source '%s': unexpected output schema", c->node->name);
    s_ysb_t *s = malloc(sizeof *s);
    if (!s)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    if (sl_ysb_gen_init(&s->gen, &c->node->ysb) != SL_OK) {
        free(s);
        return sl_op_fail(c, SL_INVAL, "ysb source '%s': bad configuration", c->node->name);
    }
    s->next = c->subtask;
    c->state = s;
    return SL_OK;
}

static int64_t s_time_of(const void *model, uint64_t n)
{
    return sl_ysb_time(model, n);
}

static int s_emit(sl_opctx_t *c, int64_t n)
{
    s_ysb_t *s = c->state;
    sl_value_t v[S_NFIELDS];
    sl_ysb_event_t ev;
    sl_ysb_event(&s->gen, (uint64_t)n, &ev);
    v[0] = sl_value_str(ev.user_id, SL_YSB_UUID_LEN);
    v[1] = sl_value_str(ev.page_id, SL_YSB_UUID_LEN);
    v[2] = sl_value_str(ev.ad_id, SL_YSB_UUID_LEN);
    v[3] = sl_value_str(ev.ad_type, (uint32_t)strlen(ev.ad_type));
    v[4] = sl_value_str(ev.event_type, (uint32_t)strlen(ev.event_type));
    v[5] = sl_value_ts(ev.event_time);
    v[6] = sl_value_str(ev.ip, (uint32_t)strlen(ev.ip));
    return sl_emit(&c->out, v);
}

static int s_run(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    const sl_seq_source_t src = {.events = nd->ysb_events,
                                 .rate = nd->ysb_rate,
                                 .realtime = nd->gen_realtime,
                                 .time_of = s_time_of,
                                 .model = &nd->ysb,
                                 .emit = s_emit};
    return sl_seq_run(c, &src, &((s_ysb_t *)c->state)->next);
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

static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    return sl_seq_snapshot(((const s_ysb_t *)c->state)->next, w);
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    return sl_seq_restore(c, "ysb source", r, &((s_ysb_t *)c->state)->next);
}

const sl_op_vtable_t sl_op_ysb = {.open = s_open,
                                  .run_source = s_run,
                                  .finish = s_finish,
                                  .close = s_close,
                                  .snapshot = s_snapshot,
                                  .restore = s_restore};
