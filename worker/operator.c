/* operator.c — the emitter and the table of operator kinds. */
#define _POSIX_C_SOURCE 200809L
#include "operator.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "sluice/err.h"

int sl_emit_flush(sl_emitter_t *e)
{
    if (!e->batch || e->batch->count == 0)
        return SL_OK;
    int rc = e->flush(e->target, e->batch);
    sl_batch_clear(e->batch);
    return rc;
}

int sl_emit(sl_emitter_t *e, const sl_value_t *vals)
{
    int rc = sl_batch_append(e->batch, e->schema, vals);
    if (rc == SL_LIMIT) {
        if ((rc = sl_emit_flush(e)) != SL_OK)
            return rc;
        rc = sl_batch_append(e->batch, e->schema, vals);
    }
    if (rc == SL_OK)
        e->records++;
    return rc;
}

int sl_emit_raw(sl_emitter_t *e, const uint8_t *row, uint32_t len)
{
    int rc = sl_batch_append_raw(e->batch, row, len);
    if (rc == SL_LIMIT) {
        if ((rc = sl_emit_flush(e)) != SL_OK)
            return rc;
        rc = sl_batch_append_raw(e->batch, row, len);
    }
    if (rc == SL_OK)
        e->records++;
    return rc;
}

const sl_op_vtable_t *sl_op_vtable(const sl_plan_node_t *node)
{
    if (node->udf && node->kind != SL_OP_PROCESS)
        return &sl_op_udf;
    switch (node->kind) {
    case SL_OP_FILE_SOURCE:
        return &sl_op_file_source;
    case SL_OP_GENERATOR_SOURCE:
        return &sl_op_generator;
    case SL_OP_NEXMARK_SOURCE:
        return &sl_op_nexmark;
    case SL_OP_YSB_SOURCE:
        return &sl_op_ysb;
    case SL_OP_KAFKA_SOURCE:
        return &sl_op_kafka_source;
    case SL_OP_FILTER:
        return &sl_op_filter;
    case SL_OP_MAP:
        return &sl_op_map;
    case SL_OP_FLAT_MAP:
        return &sl_op_flat_map;
    case SL_OP_KEY_BY:
    case SL_OP_UNION:
        return &sl_op_passthrough;
    case SL_OP_AGGREGATE:
        return &sl_op_aggregate;
    case SL_OP_WINDOW:
        return &sl_op_window;
    case SL_OP_JOIN:
        return &sl_op_join;
    case SL_OP_PROCESS:
        return &sl_op_process;
    case SL_OP_FILE_SINK:
        return &sl_op_file_sink;
    case SL_OP_STDOUT_SINK:
        return &sl_op_stdout_sink;
    case SL_OP_DISCARD_SINK:
        return &sl_op_discard_sink;
    case SL_OP_KAFKA_SINK:
        return &sl_op_kafka_sink;
    }
    return NULL;
}

int sl_op_source_checkpoint(sl_opctx_t *c)
{
    if (!c->barrier_pending || !atomic_load_explicit(c->barrier_pending, memory_order_relaxed))
        return SL_OK;
    return c->barrier_hook ? c->barrier_hook(c->idle_arg) : SL_OK;
}

int sl_op_source_idle(sl_opctx_t *c)
{
    int rc = sl_emit_flush(&c->out);
    if (rc == SL_OK && c->idle_hook)
        rc = c->idle_hook(c->idle_arg);
    if (rc == SL_OK)
        rc = sl_op_source_checkpoint(c);
    return rc;
}

void sl_op_source_lag(sl_opctx_t *c, int64_t lag, const char *detail)
{
    if (c->lag_hook)
        c->lag_hook(c->idle_arg, lag, detail);
}

int64_t sl_op_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_op_fail(sl_opctx_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}
