/* op_discard.c — the `discard` sink: counts the records it receives and
 * drops them. It runs at the job's parallelism, so it chains into the task
 * that feeds it: what a benchmark measures is the pipeline, not an output
 * format or a final exchange. */
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

const sl_op_vtable_t sl_op_discard_sink = {
    .open = s_open, .process = s_process, .finish = s_finish, .close = s_close};
