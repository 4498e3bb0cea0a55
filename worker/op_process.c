/* op_process.c — keyed process functions of a plugin: per-key state and
 * timers (sluice/udf.h, docs/udf.md#process-functions).
 *
 * Per record: decode it, encode its key (the node's key fields) and make
 * that key current in the keyed state, then call the function with its
 * declared inputs, the key, the record's time and the watermark in the
 * context. Its state and timer calls go to the keyed state
 * (keyed_state.h: in memory, or in a RocksDB store when the job has
 * `state: {backend: rocksdb}`); what it emits goes out like a flat_map's.
 *
 * Timers: event-time timers fire when the watermark reaches them (time <=
 * watermark), in (time, key bytes, registration) order, so the sequence of
 * on_timer calls is a function of the timers alone; one already due when
 * set (at or behind the watermark) fires after the current batch. At end
 * of input (watermark SL_WM_MAX) every event-time timer fires, including
 * those set by on_timer meanwhile. Processing-time timers fire on the
 * tick once the wall clock reaches them; at end of input the ones still
 * pending are dropped without firing (the clock has not reached them, and
 * firing them would make the output depend on how fast the job ran).
 *
 * State TTL (`state_ttl:`): a cell expires state_ttl of processing time
 * after its last write; the clock is the wall clock read once per batch,
 * per timer firing and per snapshot. Expired cells are absent to the
 * function and deleted when touched; a snapshot first drops the expired
 * cells held in memory (heap backend), and the store's compaction drops
 * the expired cells nobody touched (rocksdb backend).
 *
 * Records whose event time is null are counted as errors and skipped.
 * Records behind the watermark are passed on: the function sees
 * ctx->time <= ctx->watermark and decides.
 *
 * Checkpoints: the snapshot is the event-time clock (the watermark) and
 * the keyed state with its timers (sl_kstate_snapshot: every key with its
 * key group, so a snapshot of any parallelism restores into any other).
 * With rocksdb the cells are in the store, checkpointed incrementally
 * (rocks_state.h), and the snapshot stream holds the state names, the
 * timers and the store's handle; a restore keeps the owned key groups of
 * both. A heap snapshot restores into a rocksdb job (its cells are written
 * to the store), not the other way round.
 * The restored clock is a floor of the watermark the function sees and
 * fires timers by, until the input's watermark passes it: records after
 * the restore see what they saw in an uninterrupted run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_state.h"
#include "operator.h"
#include "rocks_state.h"
#include "sluice/err.h"

typedef struct {
    sl_udf_ctx_t ctx;     /* handed to the function; first member */
    sl_opctx_t *op;       /* the operator calling it */
    sl_kstate_t *ks;      /* keyed state and timers */
    sl_schema_t *kschema; /* the key fields */
    sl_value_t *row;      /* decoded input row */
    sl_value_t *kvals;    /* the current key's values */
    sl_udf_value_t *in;   /* the function's inputs */
    sl_udf_value_t *out;  /* scratch for the function's outputs */
    char error[256];      /* from host->error or a failed service */
    int emit_rc;          /* first failure of an emit */
    int svc_rc;           /* first failure of a state or timer service */
    int64_t dropped_proc; /* processing-time timers dropped at end of input */
    int64_t wm_floor;     /* restored watermark: the clock is at least this */
    bool restored;        /* restore ran (wm_floor is set) */
    bool rocks;           /* the cells live in kv */
    sl_kv_t *kv;          /* rocksdb: the store (opened at first use unless restored) */
} s_proc_t;

/* rocksdb: the store, opened (empty) at first use unless a restore made it,
 * and handed to the keyed state. */
static int s_kv(sl_opctx_t *c, s_proc_t *p)
{
    if (!p->rocks || p->kv)
        return SL_OK;
    int rc = sl_rstate_open(c, &p->kv);
    if (rc == SL_OK && (rc = sl_kstate_set_store(p->ks, p->kv, c->plan->max_parallelism)) != SL_OK)
        return sl_op_fail(c, rc, "process '%s': %s", c->node->name, sl_kstate_error(p->ks));
    return rc;
}

/* The event-time clock: the input's watermark, at least the restored one. */
static int64_t s_clock(const sl_opctx_t *c)
{
    const s_proc_t *p = c->state;
    return c->watermark > p->wm_floor ? c->watermark : p->wm_floor;
}

/* ---- host services ---------------------------------------------------------- */

static int s_host_emit(sl_udf_ctx_t *ctx, const sl_udf_value_t *out)
{
    s_proc_t *p = (s_proc_t *)ctx;
    const sl_schema_t *s = p->op->node->out;
    if (!out) {
        snprintf(p->error, sizeof p->error, "emitted NULL");
        return p->emit_rc = SL_INVAL;
    }
    for (int i = 0; i < s->nfields; i++)
        if (!out[i].is_null && out[i].type != (int)s->fields[i].type) {
            snprintf(p->error, sizeof p->error, "emitted a %s for field '%s' declared %s",
                     sl_type_name((sl_type_t)out[i].type) ? sl_type_name((sl_type_t)out[i].type)
                                                          : "bad value",
                     s->fields[i].name, sl_type_name(s->fields[i].type));
            return p->emit_rc = SL_TYPE;
        }
    int rc = sl_emit(&p->op->out, (const sl_value_t *)out);
    if (rc && !p->emit_rc)
        p->emit_rc = rc;
    return rc;
}

static void *s_host_alloc(sl_udf_ctx_t *ctx, size_t size)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return sl_arena_alloc(p->op->arena, size);
}

static void s_host_error(sl_udf_ctx_t *ctx, const char *message)
{
    s_proc_t *p = (s_proc_t *)ctx;
    snprintf(p->error, sizeof p->error, "%s", message ? message : "(no message)");
}

/* The result of a state or timer service: a failure is remembered with
 * the store's message (and fails the call whatever the function does). */
static int s_svc(s_proc_t *p, int rc)
{
    if (rc < 0 && !p->svc_rc) {
        p->svc_rc = rc;
        snprintf(p->error, sizeof p->error, "%s", sl_kstate_error(p->ks));
    }
    return rc;
}

/* A NULL out-pointer from the function: an error, not a crash. */
static int s_null(s_proc_t *p, const char *what)
{
    if (!p->svc_rc) {
        p->svc_rc = SL_INVAL;
        snprintf(p->error, sizeof p->error, "%s called with a NULL result pointer", what);
    }
    return SL_INVAL;
}

static int s_value_get(sl_udf_ctx_t *ctx, const char *name, const void **data, uint32_t *len)
{
    s_proc_t *p = (s_proc_t *)ctx;
    if (!data || !len)
        return s_null(p, "value_get");
    return s_svc(p, sl_kstate_value_get(p->ks, name, data, len));
}

static int s_value_set(sl_udf_ctx_t *ctx, const char *name, const void *data, uint32_t len)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_value_set(p->ks, name, data, len));
}

static int s_value_clear(sl_udf_ctx_t *ctx, const char *name)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_value_clear(p->ks, name));
}

static int s_list_append(sl_udf_ctx_t *ctx, const char *name, const void *data, uint32_t len)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_list_append(p->ks, name, data, len));
}

static int s_list_len(sl_udf_ctx_t *ctx, const char *name)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_list_len(p->ks, name));
}

static int s_list_get(sl_udf_ctx_t *ctx, const char *name, uint32_t index, const void **data,
                      uint32_t *len)
{
    s_proc_t *p = (s_proc_t *)ctx;
    if (!data || !len)
        return s_null(p, "list_get");
    return s_svc(p, sl_kstate_list_get(p->ks, name, index, data, len));
}

static int s_list_clear(sl_udf_ctx_t *ctx, const char *name)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_list_clear(p->ks, name));
}

static int s_map_put(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen,
                     const void *val, uint32_t vlen)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_map_put(p->ks, name, key, klen, val, vlen));
}

static int s_map_get(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen,
                     const void **val, uint32_t *vlen)
{
    s_proc_t *p = (s_proc_t *)ctx;
    if (!val || !vlen)
        return s_null(p, "map_get");
    return s_svc(p, sl_kstate_map_get(p->ks, name, key, klen, val, vlen));
}

static int s_map_remove(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_map_remove(p->ks, name, key, klen));
}

static int s_map_len(sl_udf_ctx_t *ctx, const char *name)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_map_len(p->ks, name));
}

static int s_map_at(sl_udf_ctx_t *ctx, const char *name, uint32_t index, const void **key,
                    uint32_t *klen, const void **val, uint32_t *vlen)
{
    s_proc_t *p = (s_proc_t *)ctx;
    if (!key || !klen || !val || !vlen)
        return s_null(p, "map_at");
    return s_svc(p, sl_kstate_map_at(p->ks, name, index, key, klen, val, vlen));
}

static int s_map_seek(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_map_seek(p->ks, name, key, klen));
}

static int s_map_clear(sl_udf_ctx_t *ctx, const char *name)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_map_clear(p->ks, name));
}

static int s_timer_set(sl_udf_ctx_t *ctx, int kind, int64_t time)
{
    s_proc_t *p = (s_proc_t *)ctx;
    if (!p->op->node->udf->on_timer && !p->svc_rc) {
        p->svc_rc = SL_INVAL;
        snprintf(p->error, sizeof p->error, "it sets a timer but has no on_timer");
        return SL_INVAL;
    }
    return s_svc(p, sl_kstate_timer_set(p->ks, (sl_ks_timer_t)kind, time));
}

static int s_timer_delete(sl_udf_ctx_t *ctx, int kind, int64_t time)
{
    s_proc_t *p = (s_proc_t *)ctx;
    return s_svc(p, sl_kstate_timer_delete(p->ks, (sl_ks_timer_t)kind, time));
}

static const sl_udf_host_t s_host = {
    .emit = s_host_emit,
    .alloc = s_host_alloc,
    .error = s_host_error,
    .value_get = s_value_get,
    .value_set = s_value_set,
    .value_clear = s_value_clear,
    .list_append = s_list_append,
    .list_len = s_list_len,
    .list_get = s_list_get,
    .list_clear = s_list_clear,
    .map_put = s_map_put,
    .map_get = s_map_get,
    .map_remove = s_map_remove,
    .map_len = s_map_len,
    .map_at = s_map_at,
    .map_seek = s_map_seek,
    .map_clear = s_map_clear,
    .timer_set = s_timer_set,
    .timer_delete = s_timer_delete,
};

_Static_assert((int)SL_KS_EVENT == (int)SL_UDF_EVENT_TIME, "timer kind numbering");
_Static_assert((int)SL_KS_PROCESSING == (int)SL_UDF_PROCESSING_TIME, "timer kind numbering");

/* ---- calls -------------------------------------------------------------------- */

/* After a call of the function (rc its result): fails the task on an
 * error of the function, of an emit or of a service. */
static int s_after_call(sl_opctx_t *c, s_proc_t *p, int rc, const char *what)
{
    int wrc = sl_kstate_release(p->ks);
    if (wrc && !p->svc_rc) {
        p->svc_rc = wrc;
        snprintf(p->error, sizeof p->error, "%s", sl_kstate_error(p->ks));
    }
    if (p->emit_rc && p->emit_rc != SL_TYPE && p->emit_rc != SL_INVAL)
        return p->emit_rc; /* downstream failed or canceled */
    if (rc < 0 || p->emit_rc || p->svc_rc)
        return sl_op_fail(c, SL_EVAL, "process '%s': function '%s' failed in %s: %s", c->node->name,
                          c->node->udf->name, what,
                          p->error[0] ? p->error : "it returned an error");
    return SL_OK;
}

static void s_begin_call(s_proc_t *p)
{
    p->error[0] = '\0';
    p->emit_rc = 0;
    p->svc_rc = 0;
}

/* Fires the timers of kind due at `until` (may be SL_WM_MAX). */
static int s_fire(sl_opctx_t *c, sl_ks_timer_t kind, int64_t until)
{
    s_proc_t *p = c->state;
    const sl_plan_node_t *nd = c->node;
    int64_t t;
    int r = s_kv(c, p);
    if (r)
        return r;
    if (nd->proc_ttl_ms)
        sl_kstate_set_now(p->ks, sl_op_now_ms());
    while ((r = sl_kstate_timer_next(p->ks, kind, until, &t)) == 1) {
        if (c->cancel && atomic_load_explicit(c->cancel, memory_order_relaxed)) {
            sl_kstate_release(p->ks);
            return SL_CANCELED; /* an on_timer that keeps setting due timers */
        }
        uint32_t klen;
        const uint8_t *key = sl_kstate_key(p->ks, &klen);
        sl_row_decode(p->kschema, key, p->kvals);
        p->ctx.key = (const sl_udf_value_t *)p->kvals;
        p->ctx.nkey = nd->nkeys;
        p->ctx.time = t;
        p->ctx.watermark = s_clock(c);
        s_begin_call(p);
        int rc = nd->udf->on_timer(&p->ctx, t, (int)kind);
        if ((rc = s_after_call(c, p, rc, "on_timer")) != SL_OK)
            return rc;
        sl_arena_reset(c->arena); /* what on_timer allocated is emitted already */
    }
    if (r < 0)
        return sl_op_fail(c, r, "process '%s': %s", nd->name, sl_kstate_error(p->ks));
    return SL_OK;
}

static int s_record(sl_opctx_t *c, s_proc_t *p, const uint8_t *r, int64_t now)
{
    const sl_plan_node_t *nd = c->node;
    const sl_udf_function_t *f = nd->udf;
    sl_row_decode(c->in, r, p->row);
    int64_t t = now;
    if (!nd->proc_processing) {
        const sl_value_t *tv = &p->row[nd->proc_time_field];
        if (tv->is_null) {
            atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
            return SL_OK; /* no event time: counted as an error, skipped */
        }
        t = sl_time_adjusted(tv->u.i, nd->proc_time_adj);
    }
    for (int i = 0; i < nd->nkeys; i++)
        p->kvals[i] = p->row[nd->keys[i]];
    size_t klen = sl_row_size(p->kschema, p->kvals);
    uint8_t *kbuf = sl_arena_alloc(c->arena, klen ? klen : 1);
    if (!kbuf)
        return SL_NOMEM;
    sl_row_encode(p->kschema, p->kvals, kbuf);
    int rc = sl_kstate_select(p->ks, sl_value_hash(p->kvals, nd->nkeys), kbuf, (uint32_t)klen);
    if (rc)
        return sl_op_fail(c, rc, "process '%s': %s", nd->name, sl_kstate_error(p->ks));
    for (int i = 0; i < f->nin; i++)
        p->in[i] = *(const sl_udf_value_t *)&p->row[nd->udf_in[i]];
    p->ctx.key = (const sl_udf_value_t *)p->kvals;
    p->ctx.nkey = nd->nkeys;
    p->ctx.time = t;
    p->ctx.watermark = s_clock(c);
    s_begin_call(p);
    rc = f->call(&p->ctx, p->in, p->out);
    return s_after_call(c, p, rc, "a record");
}

/* ---- the operator ---------------------------------------------------------------- */

static int s_open(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    s_proc_t *p = calloc(1, sizeof *p);
    if (!p)
        return SL_NOMEM;
    c->state = p;
    p->op = c;
    p->ctx.host = &s_host;
    p->wm_floor = SL_WM_MIN;
    p->ks = sl_kstate_new();
    p->kschema = sl_schema_new();
    p->rocks = sl_rstate_enabled(c);
    if (p->ks && p->rocks && sl_kstate_set_store(p->ks, NULL, c->plan->max_parallelism) != SL_OK)
        return SL_NOMEM;
    if (p->ks)
        sl_kstate_set_ttl(p->ks, nd->proc_ttl_ms);
    p->row = calloc((size_t)c->in->nfields + 1, sizeof *p->row);
    p->kvals = calloc((size_t)nd->nkeys + 1, sizeof *p->kvals);
    p->in = calloc((size_t)nd->udf->nin + 1, sizeof *p->in);
    p->out = calloc((size_t)nd->udf->nout + 1, sizeof *p->out);
    if (!p->ks || !p->kschema || !p->row || !p->kvals || !p->in || !p->out)
        return SL_NOMEM;
    for (int i = 0; i < nd->nkeys; i++)
        if (sl_schema_add(p->kschema, c->in->fields[nd->keys[i]].name,
                          c->in->fields[nd->keys[i]].type) != SL_OK)
            return SL_NOMEM;
    return SL_OK;
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_proc_t *p = c->state;
    int64_t now = c->node->proc_processing || c->node->proc_ttl_ms ? sl_op_now_ms() : 0;
    sl_kstate_set_now(p->ks, now);
    int rc0 = s_kv(c, p);
    if (rc0)
        return rc0;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        int rc = s_record(c, p, r, now);
        if (rc)
            return rc;
    }
    /* Timers set at or behind the watermark are due now. */
    int64_t wm = s_clock(c);
    return wm == SL_WM_MIN ? SL_OK : s_fire(c, SL_KS_EVENT, wm);
}

static int s_watermark(sl_opctx_t *c, int64_t wm)
{
    s_proc_t *p = c->state;
    int rc = s_fire(c, SL_KS_EVENT, wm);
    if (rc == SL_OK && wm == SL_WM_MAX) {
        p->dropped_proc += (int64_t)sl_kstate_timer_count(p->ks, SL_KS_PROCESSING);
        sl_kstate_timer_drop_all(p->ks, SL_KS_PROCESSING);
    }
    return rc;
}

static int s_tick(sl_opctx_t *c, int64_t now_ms)
{
    if (c->watermark == SL_WM_MAX)
        return SL_OK; /* end of input: processing-time timers no longer fire */
    return s_fire(c, SL_KS_PROCESSING, now_ms);
}

static int s_finish(sl_opctx_t *c)
{
    return s_watermark(c, SL_WM_MAX); /* done already by the final watermark */
}

static void s_close(sl_opctx_t *c)
{
    s_proc_t *p = c->state;
    if (!p)
        return;
    sl_kstate_destroy(&p->ks);
    sl_rstate_close(&p->kv);
    sl_schema_destroy(&p->kschema);
    free(p->row);
    free(p->kvals);
    free(p->in);
    free(p->out);
    free(p);
    c->state = NULL;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define S_SNAP_VERSION 2 /* heap: the cells are in the stream */
#define S_SNAP_ROCKS 4   /* rocksdb: then the store's handle (not a one-bit flip of 2) */

/* Version, key field count, the event-time clock, then the keyed state
 * (and with rocksdb the store's handle). */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_proc_t *p = c->state;
    int rc = s_kv(c, p);
    if (rc)
        return rc;
    if (c->node->proc_ttl_ms) { /* expired cells do not go into the checkpoint */
        sl_kstate_set_now(p->ks, sl_op_now_ms());
        sl_kstate_expire(p->ks);
    }
    sl_snap_u8(w, p->rocks ? S_SNAP_ROCKS : S_SNAP_VERSION);
    sl_snap_u32(w, (uint32_t)c->node->nkeys);
    sl_snap_i64(w, s_clock(c));
    rc = sl_kstate_snapshot(p->ks, w, c->plan->max_parallelism);
    if (rc)
        return sl_op_fail(c, rc, "process '%s': snapshot: %s", c->node->name, sl_strerror(rc));
    return p->rocks ? sl_rstate_snapshot(c, p->kv, w) : SL_OK;
}

/* A restored key must be a row of the key fields; its hash is theirs. */
static int s_key_check(void *arg, const uint8_t *key, uint32_t len, uint64_t *hash)
{
    sl_opctx_t *c = arg;
    s_proc_t *p = c->state;
    if (len < 4 || len > SL_ROW_MAX || sl_row_check(p->kschema, key, len) != SL_OK ||
        sl_row_len(key) != len)
        return SL_DATA;
    sl_row_decode(p->kschema, key, p->kvals);
    *hash = sl_value_hash(p->kvals, c->node->nkeys);
    return SL_OK;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_proc_t *p = c->state;
    const sl_plan_node_t *nd = c->node;
    uint8_t v = sl_snap_get_u8(r);
    uint32_t nkeys = sl_snap_get_u32(r);
    int64_t wm = sl_snap_get_i64(r);
    if (r->err || (v != S_SNAP_VERSION && v != S_SNAP_ROCKS) || nkeys != (uint32_t)nd->nkeys)
        return sl_op_fail(c, SL_DATA, "process '%s': not a snapshot of this operator", nd->name);
    if (v == S_SNAP_ROCKS && !p->rocks)
        return sl_op_fail(c, SL_STATE,
                          "process '%s': the checkpoint keeps its state in rocksdb; the job must "
                          "use `state: {backend: rocksdb}` to restore it",
                          nd->name);
    /* a heap snapshot into rocksdb: its cells go to the store */
    int rc = v == S_SNAP_VERSION ? s_kv(c, p) : SL_OK;
    if (rc)
        return rc;
    rc = sl_kstate_restore(p->ks, r, c->plan->max_parallelism, c->parallelism, c->subtask,
                           s_key_check, c);
    if (rc == SL_OK && r->err)
        rc = SL_DATA;
    if (rc)
        return sl_op_fail(c, rc, "process '%s': cannot restore: %s", nd->name,
                          sl_kstate_error(p->ks)[0] ? sl_kstate_error(p->ks) : sl_strerror(rc));
    if (v == S_SNAP_ROCKS) {
        if ((rc = sl_rstate_restore(c, &p->kv, r)) != SL_OK)
            return rc;
        if ((rc = sl_kstate_set_store(p->ks, p->kv, c->plan->max_parallelism)) != SL_OK)
            return sl_op_fail(c, rc, "process '%s': %s", nd->name, sl_kstate_error(p->ks));
    }
    /* Several snapshots (a rescale): the input has seen at least the least
     * of their watermarks. */
    if (!p->restored || wm < p->wm_floor)
        p->wm_floor = wm;
    p->restored = true;
    return SL_OK;
}

const sl_op_vtable_t sl_op_process = {.open = s_open,
                                      .process = s_process,
                                      .finish = s_finish,
                                      .close = s_close,
                                      .watermark = s_watermark,
                                      .tick = s_tick,
                                      .snapshot = s_snapshot,
                                      .restore = s_restore};
