/* op_nexmark.c — the `nexmark` source: Nexmark events (sluice/nexmark.h)
 * as one wide row each, bounded by `events` or unbounded, as fast as
 * possible or paced to `rate` events/s of wall clock (shared among the
 * subtasks). Subtask i of P generates events i, i+P, ..., so the union of
 * the subtasks is the stream of P = 1.
 *
 * Like the generator: pacing flushes the batch before waiting, waits are
 * short and watch the cancel flag. The event is generated into a buffer of
 * the operator's state with inline strings, so nothing is allocated per
 * record.
 *
 * Projection: the columns no downstream operator can read (found by
 * walking the plan through filters to the maps, windows and aggregates
 * that consume them) are left null, and the extra is not generated at all
 * when nothing reads it (SL_NEXMARK_GEN_NO_EXTRA: the extra is every
 * event's last draw, so the other fields do not change).
 *
 * Fused filter (plan.h, fused_filter): the source evaluates the filter's
 * condition on the event's values and emits only the rows that pass, so
 * the others are never encoded; the columns only the condition reads are
 * then nulled. The position still counts every event generated, and the
 * source reports them as its records in. On event time it keeps its own
 * watermark (own_wm) from every event generated, as the task would from
 * every row without the fusion, and offers it downstream every S_QUIET
 * events in a row that fail the condition, so a condition that stops
 * passing does not hold the watermark back until the next row.
 *
 * A condition whose value is the same for every event of a kind (it reads
 * event_type and the columns of the other kinds, null for this one:
 * `event_type = 'bid'`) is evaluated once per kind at open.
 *
 * Fused map (plan.h, fused_map): the source evaluates the map's
 * expressions on the event's values (a plain column is copied) and emits
 * the map's row, in the map's schema (the task's emitter has it), so the
 * wide row is never encoded nor decoded; the map forwards what it gets.
 * The watermark is then always the source's own, from every event's
 * date_time (the plan fuses no map otherwise), as the task would take it
 * from the wide rows.
 *
 * Checkpoints: the position is the index of the next event of this
 * subtask (sl_op_source_checkpoint is called before every event). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "pacer.h"
#include "sluice/err.h"
#include "sluice/nexmark.h"

#define S_NFIELDS 22 /* columns of the output row */

#define S_EXTRA 21 /* the extra's column */

#define S_QUIET 4096 /* events failing the condition between two watermark offers */

typedef struct {
    sl_nexmark_event_t ev;     /* the event being emitted */
    int64_t next;              /* index of the next event to emit */
    sl_nexmark_gen_t *gen;     /* the generator, with its caches */
    bool reads[S_NFIELDS];     /* columns some downstream operator may read */
    const sl_expr_t *where;    /* the fused filter's condition, or NULL */
    int drop[S_NFIELDS];       /* columns only the condition reads: nulled after it */
    int ndrop;                 /* entries of drop */
    int kind_pass[3];          /* per kind: 1 all pass, 0 none, -1 evaluate per event */
    uint64_t generated;        /* events generated since open (records in) */
    uint64_t failed;           /* events in a row that failed the condition */
    const sl_plan_node_t *map; /* the fused map, or NULL */
    int *map_field;            /* per map expression: the column it copies, or -1 */
    sl_value_t *map_vals;      /* the map's row under construction */
} s_nex_t;

static sl_value_t s_str(const char *s)
{
    return sl_value_str(s, (uint32_t)strlen(s));
}

/* True when node nd (a window or an aggregate) emits only its keys, its
 * aggregates and window bounds: then it reads only those fields and the
 * event time, whatever its consumers read. */
static bool s_aggregates_only(const sl_plan_node_t *nd)
{
    if (nd->side_out)
        return false; /* late records go out whole */
    if (nd->kind == SL_OP_WINDOW)
        return nd->win.top_n == 0;
    return nd->kind == SL_OP_AGGREGATE;
}

/* Marks in reads the columns of node id's input that node id or, through
 * filters, its consumers may read: a map reads the fields of its
 * expressions, a filter those of its condition (unless fused into the
 * source) and its consumers', a window or aggregate with aggregates only
 * its keys, the fields it aggregates and its event time; any other
 * operator (or a plugin function) may read every column. */
static void s_reads(const sl_plan_t *p, int id, bool *reads, int depth)
{
    const sl_plan_node_t *nd = &p->nodes[id];
    bool all = depth > 16 || nd->udf || nd->ninputs != 1 || nd->input_ports[0] != 0 ||
               (nd->kind != SL_OP_FILTER && nd->kind != SL_OP_MAP && !s_aggregates_only(nd));
    if (all) {
        for (int i = 0; i < S_NFIELDS; i++)
            reads[i] = true;
        return;
    }
    if (nd->kind == SL_OP_MAP) {
        for (int k = 0; k < nd->nexprs; k++)
            sl_expr_fields(nd->exprs[k], reads, S_NFIELDS);
        return;
    }
    if (nd->kind != SL_OP_FILTER) { /* aggregates only */
        for (int k = 0; k < nd->nkeys; k++)
            if (nd->keys[k] >= 0 && nd->keys[k] < S_NFIELDS)
                reads[nd->keys[k]] = true;
        for (int k = 0; k < nd->naggs; k++)
            if (nd->aggs[k].field >= 0 && nd->aggs[k].field < S_NFIELDS)
                reads[nd->aggs[k].field] = true;
        for (int k = 0; k < nd->edge_nkeys[0]; k++)
            if (nd->edge_keys[0][k] >= 0 && nd->edge_keys[0][k] < S_NFIELDS)
                reads[nd->edge_keys[0][k]] = true;
        if (nd->win.time_field >= 0 && nd->win.time_field < S_NFIELDS)
            reads[nd->win.time_field] = true;
        return;
    }
    if (!nd->fused)
        sl_expr_fields(nd->where, reads, S_NFIELDS);
    for (int k = 0; k < nd->nconsumers; k++)
        s_reads(p, nd->consumers[k], reads, depth + 1);
}

/* Columns set for events of kind k (docs/nexmark.md); the others are null. */
static bool s_kind_column(sl_nexmark_kind_t k, int i)
{
    if (i == 0 || i == 20 || i == S_EXTRA)
        return true;
    switch (k) {
    case SL_NEXMARK_PERSON:
        return i >= 1 && i <= 6;
    case SL_NEXMARK_AUCTION:
        return i >= 7 && i <= 14;
    case SL_NEXMARK_BID:
        return i >= 15 && i <= 19;
    }
    return true;
}

/* Every column null: the start of each row (copied, not built per record). */
#define S_N                                                                                        \
    {                                                                                              \
        .type = SL_TYPE_NULL, .is_null = true                                                      \
    }
static const sl_value_t s_nulls[S_NFIELDS] = {S_N, S_N, S_N, S_N, S_N, S_N, S_N, S_N,
                                              S_N, S_N, S_N, S_N, S_N, S_N, S_N, S_N,
                                              S_N, S_N, S_N, S_N, S_N, S_N};
#undef S_N
/* Column 0 (event_type) of each kind. */
static const sl_value_t s_kinds[] = {
    [SL_NEXMARK_PERSON] = {.type = SL_TYPE_STRING, .len = 6, .u.s = "person"},
    [SL_NEXMARK_AUCTION] = {.type = SL_TYPE_STRING, .len = 7, .u.s = "auction"},
    [SL_NEXMARK_BID] = {.type = SL_TYPE_STRING, .len = 3, .u.s = "bid"},
};

/* The row of event e in the order of the plan's schema (docs/nexmark.md),
 * the columns not in reads null. */
static void s_row(const sl_nexmark_event_t *e, const bool *reads, sl_value_t *v)
{
    memcpy(v, s_nulls, sizeof s_nulls);
#define S_SET(i, val)                                                                              \
    do {                                                                                           \
        if (reads[i])                                                                              \
            v[i] = (val);                                                                          \
    } while (0)
    S_SET(0, s_kinds[e->kind]);
    switch (e->kind) {
    case SL_NEXMARK_PERSON:
        S_SET(1, sl_value_int(e->person.id));
        S_SET(2, s_str(e->person.name));
        S_SET(3, s_str(e->person.email));
        S_SET(4, s_str(e->person.credit_card));
        S_SET(5, s_str(e->person.city));
        S_SET(6, s_str(e->person.state));
        break;
    case SL_NEXMARK_AUCTION:
        S_SET(7, sl_value_int(e->auction.id));
        S_SET(8, s_str(e->auction.item_name));
        S_SET(9, s_str(e->auction.description));
        S_SET(10, sl_value_int(e->auction.initial_bid));
        S_SET(11, sl_value_int(e->auction.reserve));
        S_SET(12, sl_value_ts(e->auction.expires));
        S_SET(13, sl_value_int(e->auction.seller));
        S_SET(14, sl_value_int(e->auction.category));
        break;
    case SL_NEXMARK_BID:
        S_SET(15, sl_value_int(e->bid.auction));
        S_SET(16, sl_value_int(e->bid.bidder));
        S_SET(17, sl_value_int(e->bid.price));
        S_SET(18, sl_value_str(e->bid.channel, e->bid.channel_len));
        S_SET(19, sl_value_str(e->bid.url, e->bid.url_len));
        break;
    }
    S_SET(20, sl_value_ts(e->date_time));
    S_SET(S_EXTRA, sl_value_str(e->extra, e->extra_len));
#undef S_SET
}

static int s_open(sl_opctx_t *c)
{
    char err[128];
    if (sl_nexmark_cfg_check(&c->node->nex, err, sizeof err))
        return sl_op_fail(c, SL_INVAL, "%s", err);
    if (!sl_plan_source_schema(c->node) || sl_plan_source_schema(c->node)->nfields != S_NFIELDS)
        return sl_op_fail(c, SL_INVAL, "nexmark source '%s': unexpected output schema",
                          c->node->name);
    s_nex_t *s = calloc(1, sizeof *s);
    if (!s)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    s->next = c->subtask;
    c->state = s;
    const sl_plan_node_t *nd = c->node;
    for (int k = 0; k < nd->nconsumers; k++)
        if (c->plan)
            s_reads(c->plan, nd->consumers[k], s->reads, 0);
    if (!c->plan || nd->nconsumers == 0)
        for (int i = 0; i < S_NFIELDS; i++)
            s->reads[i] = true;
    sl_expr_fields(nd->ts_expr, s->reads, S_NFIELDS); /* the event time and watermarks */
    if (nd->rowtime >= 0 && nd->rowtime < S_NFIELDS)
        s->reads[nd->rowtime] = true;
    if (c->plan && nd->fused_filter >= 0 && nd->fused_filter < c->plan->nnodes) {
        s->where = c->plan->nodes[nd->fused_filter].where;
        bool cond[S_NFIELDS] = {false};
        sl_expr_fields(s->where, cond, S_NFIELDS);
        for (int i = 0; i < S_NFIELDS; i++)
            if (cond[i] && !s->reads[i]) {
                s->drop[s->ndrop++] = i;
                s->reads[i] = true;
            }
        for (int k = SL_NEXMARK_PERSON; k <= SL_NEXMARK_BID; k++) {
            bool fixed = true; /* reads event_type and other kinds' (null) columns only */
            for (int i = 1; i < S_NFIELDS; i++)
                fixed = fixed && !(cond[i] && s_kind_column((sl_nexmark_kind_t)k, i));
            s->kind_pass[k] = -1;
            if (fixed) {
                sl_value_t vals[S_NFIELDS], v;
                memcpy(vals, s_nulls, sizeof s_nulls);
                vals[0] = s_kinds[k];
                if (sl_expr_eval(s->where, vals, c->arena, &v) != SL_OK)
                    return sl_op_fail(c, SL_NOMEM, "out of memory");
                s->kind_pass[k] = sl_expr_is_true(&v);
                sl_arena_reset(c->arena);
            }
        }
    }
    if (c->plan && nd->fused_map >= 0 && nd->fused_map < c->plan->nnodes) {
        s->map = &c->plan->nodes[nd->fused_map];
        int n = s->map->nexprs;
        s->map_field = calloc((size_t)(n ? n : 1), sizeof *s->map_field);
        s->map_vals = calloc((size_t)(n ? n : 1), sizeof *s->map_vals);
        if (!s->map_field || !s->map_vals)
            return sl_op_fail(c, SL_NOMEM, "out of memory");
        for (int k = 0; k < n; k++) {
            int f = sl_expr_field_index(s->map->exprs[k]);
            s->map_field[k] = f >= 0 && f < S_NFIELDS ? f : -1;
        }
    }
    if (s->where || s->map) /* the task cannot take it from the rows: keep it */
        c->own_wm = nd->watermarks && !nd->ts_expr && nd->rowtime == 20;
    int rc = sl_nexmark_gen_new(&nd->nex, s->reads[S_EXTRA] ? 0 : SL_NEXMARK_GEN_NO_EXTRA, &s->gen);
    if (rc)
        return sl_op_fail(c, rc, "nexmark source '%s': cannot create the generator", nd->name);
    return SL_OK;
}

static int64_t s_time_of(const void *model, uint64_t n)
{
    return sl_nexmark_time(model, n);
}

/* Emits the fused map's row of the event whose values are vals (a plain
 * column copied, not evaluated). */
static int s_emit_map(sl_opctx_t *c, s_nex_t *s, const sl_value_t *vals)
{
    int rc = sl_op_map_row(c, s->map, vals, s->map_vals, s->map_field);
    sl_arena_reset(c->arena); /* the row is encoded: nothing of the arena is kept */
    return rc;
}

static int s_emit(sl_opctx_t *c, int64_t n)
{
    s_nex_t *s = c->state;
    int rc = sl_nexmark_gen_event(s->gen, (uint64_t)n, &s->ev);
    if (rc)
        return sl_op_fail(c, rc, "nexmark source '%s': cannot generate event %lld", c->node->name,
                          (long long)n);
    atomic_store_explicit(&c->records_in, ++s->generated, memory_order_relaxed);
    sl_value_t vals[S_NFIELDS];
    if (c->own_wm) {
        const sl_plan_node_t *nd = c->node;
        int64_t t = s->ev.date_time; /* as s_source_wm in task.c: max - bound - 1 */
        if (t >= SL_WM_MIN + nd->wm_bound + 1 && t - nd->wm_bound - 1 > c->source_wm)
            c->source_wm = t - nd->wm_bound - 1;
    }
    int pass = s->where ? s->kind_pass[s->ev.kind] : 1;
    if (pass == 0)
        goto failed;
    s_row(&s->ev, s->reads, vals);
    if (pass < 0) {
        sl_value_t v;
        if (sl_expr_eval(s->where, vals, c->arena, &v) != SL_OK)
            return sl_op_fail(c, SL_NOMEM, "nexmark source '%s': out of memory evaluating '%s'",
                              c->node->name, c->plan->nodes[c->node->fused_filter].name);
        pass = sl_expr_is_true(&v);
        sl_arena_reset(c->arena); /* v is read: nothing of the arena is kept */
        if (!pass)
            goto failed;
    }
    s->failed = 0;
    if (s->map)
        return s_emit_map(c, s, vals);
    for (int i = 0; i < s->ndrop; i++)
        vals[s->drop[i]] = s_nulls[0];
    return sl_emit(&c->out, vals);
failed:
    if (c->own_wm && ++s->failed % S_QUIET == 0)
        return sl_op_source_idle(c); /* offers the watermark (and flushes nothing) */
    return SL_OK;
}

static int s_run(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    const sl_seq_source_t src = {.events = nd->nex_events,
                                 .rate = nd->nex_rate,
                                 .realtime = nd->gen_realtime,
                                 .time_of = s_time_of,
                                 .model = &nd->nex,
                                 .emit = s_emit};
    return sl_seq_run(c, &src, &((s_nex_t *)c->state)->next);
}

static int s_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    s_nex_t *s = c->state;
    if (s) {
        sl_nexmark_gen_destroy(&s->gen);
        free(s->map_field);
        free(s->map_vals);
    }
    free(c->state);
    c->state = NULL;
}

static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    return sl_seq_snapshot(((const s_nex_t *)c->state)->next, w);
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    return sl_seq_restore(c, "nexmark source", r, &((s_nex_t *)c->state)->next);
}

const sl_op_vtable_t sl_op_nexmark = {.open = s_open,
                                      .run_source = s_run,
                                      .finish = s_finish,
                                      .close = s_close,
                                      .snapshot = s_snapshot,
                                      .restore = s_restore};
