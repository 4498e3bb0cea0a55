/* op_discard.c — the `discard` sink: counts the records it receives and
 * drops them. It runs at the job's parallelism, so it chains into the task
 * that feeds it: what a benchmark measures is the pipeline, not an output
 * format or a final exchange. Its snapshot is the count (a version byte,
 * then the u64), so a restored job goes on counting. */
#include "operator.h"
#include "sluice/err.h"

static int s_open(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
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

#define S_SNAP_VERSION 1

static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u64(w, atomic_load_explicit(&c->records_out, memory_order_relaxed));
    return w->err;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    uint8_t v = sl_snap_get_u8(r);
    uint64_t n = sl_snap_get_u64(r);
    if (r->err || v != S_SNAP_VERSION || r->left)
        return sl_op_fail(c, SL_DATA, "discard '%s': not a snapshot of this sink (version %u)",
                          c->node->name, v);
    atomic_fetch_add_explicit(&c->records_out, n, memory_order_relaxed);
    return SL_OK;
}

const sl_op_vtable_t sl_op_discard_sink = {.open = s_open,
                                           .process = s_process,
                                           .finish = s_finish,
                                           .close = s_close,
                                           .snapshot = s_snapshot,
                                           .restore = s_restore};
