/* op_simple.c — the stateless operators: filter, map, flat_map and the
 * pass-through of key_by and union (their work is in the partitioning of
 * the edge after them). Each decodes rows into a scratch value array owned
 * by the instance; strings stay in the input batch or the task's arena. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/expr.h"

typedef struct {
    sl_value_t *in;  /* decoded input row */
    sl_value_t *out; /* output row under construction */
    int *need;       /* filter, map: the input fields the expressions read */
    int nneed;       /* entries of need; -1: decode the whole row */
} s_scratch_t;

/* Decodes into s->in the fields the node's expressions read (filter: where;
 * map: the select list), or the whole row when they read most of it. The
 * other entries of s->in are stale, and no expression reads them. */
static void s_decode(const sl_opctx_t *c, s_scratch_t *s, const uint8_t *row)
{
    if (s->nneed < 0) {
        sl_row_decode(c->in, row, s->in);
        return;
    }
    for (int i = 0; i < s->nneed; i++)
        sl_row_get(c->in, row, s->need[i], &s->in[s->need[i]]);
}

/* Fills s->need from the node's expressions (filter, map). */
static int s_need_fields(sl_opctx_t *c, s_scratch_t *s)
{
    const sl_plan_node_t *nd = c->node;
    int n = c->in ? c->in->nfields : 0;
    s->nneed = -1;
    if (n == 0)
        return SL_OK;
    bool *used = calloc((size_t)n, sizeof *used);
    s->need = calloc((size_t)n, sizeof *s->need);
    if (!used || !s->need) {
        free(used);
        return SL_NOMEM;
    }
    if (nd->kind == SL_OP_FILTER)
        sl_expr_fields(nd->where, used, n);
    else
        for (int i = 0; i < nd->nexprs; i++)
            sl_expr_fields(nd->exprs[i], used, n);
    int k = 0;
    for (int f = 0; f < n; f++)
        if (used[f])
            s->need[k++] = f;
    free(used);
    if (2 * k < n) /* a few fields of a wide row: read those alone */
        s->nneed = k;
    return SL_OK;
}

static int s_open_scratch(sl_opctx_t *c)
{
    s_scratch_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    int nin = c->in ? c->in->nfields : 0;
    int nout = c->node->out ? c->node->out->nfields : 0;
    s->in = calloc((size_t)(nin ? nin : 1), sizeof(sl_value_t));
    s->out = calloc((size_t)(nout ? nout : 1), sizeof(sl_value_t));
    s->nneed = -1;
    c->state = s;
    if (!s->in || !s->out)
        return SL_NOMEM;
    if (c->node->kind == SL_OP_FILTER || c->node->kind == SL_OP_MAP)
        return s_need_fields(c, s);
    return SL_OK;
}

static void s_close_scratch(sl_opctx_t *c)
{
    s_scratch_t *s = c->state;
    if (s) {
        free(s->in);
        free(s->out);
        free(s->need);
        free(s);
    }
    c->state = NULL;
}

static int s_finish_nothing(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

/* Checkpoints: these operators hold nothing between records, so their
 * snapshot is empty and only an empty one restores. */
static int s_snapshot_nothing(sl_opctx_t *c, sl_snap_w_t *w)
{
    (void)c;
    (void)w;
    return SL_OK;
}

static int s_restore_nothing(sl_opctx_t *c, sl_snap_r_t *r)
{
    if (r->err || r->left)
        return sl_op_fail(c, SL_DATA, "'%s' is stateless, but its snapshot holds %zu bytes",
                          c->node->name, r->left);
    return SL_OK;
}

/* ---- filter ---------------------------------------------------------- */

static int s_filter_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    if (c->node->fused) { /* its source applied where (plan.h): hand the batch on */
        if (in->count == 0)
            return SL_OK;
        c->out.records += in->count;
        return c->out.flush(c->out.target, (sl_batch_t *)in);
    }
    s_scratch_t *s = c->state;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        s_decode(c, s, r);
        sl_value_t v;
        if (sl_expr_eval(c->node->where, s->in, c->arena, &v) != SL_OK)
            return sl_op_fail(c, SL_NOMEM, "filter '%s': out of memory", c->node->name);
        if (sl_expr_is_true(&v)) {
            int rc = sl_emit_raw(&c->out, r, sl_row_len(r));
            if (rc)
                return rc;
        }
    }
    return SL_OK;
}

const sl_op_vtable_t sl_op_filter = {.open = s_open_scratch,
                                     .process = s_filter_process,
                                     .finish = s_finish_nothing,
                                     .close = s_close_scratch,
                                     .snapshot = s_snapshot_nothing,
                                     .restore = s_restore_nothing};

/* ---- map ------------------------------------------------------------------ */

int sl_op_map_row(sl_opctx_t *c, const sl_plan_node_t *map, const sl_value_t *in, sl_value_t *out,
                  const int *copy)
{
    for (int i = 0; i < map->nexprs; i++) {
        if (copy && copy[i] >= 0)
            out[i] = in[copy[i]];
        else if (sl_expr_eval(map->exprs[i], in, c->arena, &out[i]) != SL_OK)
            return sl_op_fail(c, SL_NOMEM, "map '%s': out of memory", map->name);
        if (!out[i].is_null)
            out[i].type = map->out->fields[i].type;
    }
    int rc = sl_emit(&c->out, out);
    if (rc == SL_RANGE)
        return sl_op_fail(c, rc, "map '%s': a result row exceeds %u bytes", map->name, SL_ROW_MAX);
    return rc;
}

static int s_map_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    if (c->node->fused) { /* its source built its rows (plan.h): hand the batch on */
        if (in->count == 0)
            return SL_OK;
        c->out.records += in->count;
        return c->out.flush(c->out.target, (sl_batch_t *)in);
    }
    s_scratch_t *s = c->state;
    const sl_plan_node_t *nd = c->node;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        s_decode(c, s, r);
        int rc = sl_op_map_row(c, nd, s->in, s->out, NULL);
        if (rc)
            return rc;
    }
    return SL_OK;
}

const sl_op_vtable_t sl_op_map = {.open = s_open_scratch,
                                  .process = s_map_process,
                                  .finish = s_finish_nothing,
                                  .close = s_close_scratch,
                                  .snapshot = s_snapshot_nothing,
                                  .restore = s_restore_nothing};

/* ---- flat_map --------------------------------------------------------------- */

/* C-locale whitespace, the same set as `tr '[:space:]'`. */
static inline int s_is_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static int s_flat_map_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_scratch_t *s = c->state;
    const sl_plan_node_t *nd = c->node;
    int f = nd->split_field;
    const char *sep = nd->separator;
    size_t seplen = sep ? strlen(sep) : 0;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, s->in);
        if (s->in[f].is_null)
            continue;
        const char *p = s->in[f].u.s, *end = p + s->in[f].len;
        while (p < end) {
            const char *q;
            if (!sep) {
                while (p < end && s_is_space((unsigned char)*p))
                    p++;
                if (p == end)
                    break;
                q = p;
                while (q < end && !s_is_space((unsigned char)*q))
                    q++;
            } else {
                q = p;
                while (q < end && !((size_t)(end - q) >= seplen && memcmp(q, sep, seplen) == 0))
                    q++;
            }
            s->in[f].u.s = p;
            s->in[f].len = (uint32_t)(q - p);
            int rc = sl_emit(&c->out, s->in);
            if (rc)
                return rc;
            p = sep && q < end ? q + seplen : q;
        }
    }
    return SL_OK;
}

const sl_op_vtable_t sl_op_flat_map = {.open = s_open_scratch,
                                       .process = s_flat_map_process,
                                       .finish = s_finish_nothing,
                                       .close = s_close_scratch,
                                       .snapshot = s_snapshot_nothing,
                                       .restore = s_restore_nothing};

/* ---- key_by / union ------------------------------------------------------------ */

static int s_pass_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        int rc = sl_emit_raw(&c->out, r, sl_row_len(r));
        if (rc)
            return rc;
    }
    return SL_OK;
}

static int s_pass_open(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static void s_pass_close(sl_opctx_t *c)
{
    (void)c;
}

const sl_op_vtable_t sl_op_passthrough = {.open = s_pass_open,
                                          .process = s_pass_process,
                                          .finish = s_finish_nothing,
                                          .close = s_pass_close,
                                          .snapshot = s_snapshot_nothing,
                                          .restore = s_restore_nothing};
