/* op_udf.c — map, filter and flat_map by a plugin function (sluice/udf.h).
 *
 * Per batch: decode each row, gather the function's declared inputs, call
 * it, and emit the input row (filter), its output values (map) or each row
 * it emits (flat_map). Strings the function returns live in the task's
 * arena, reset after the batch, which the function reaches through
 * ctx->host->alloc. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "operator.h"
#include "sluice/err.h"

typedef struct {
    sl_udf_ctx_t ctx;    /* handed to the function; first member */
    sl_opctx_t *op;      /* the operator calling it */
    sl_value_t *row;     /* decoded input row */
    sl_udf_value_t *in;  /* the function's inputs */
    sl_udf_value_t *out; /* map: its outputs */
    char error[256];     /* from host->error */
    int emit_rc;         /* first failure of an emit */
} s_udf_t;

static int s_host_emit(sl_udf_ctx_t *ctx, const sl_udf_value_t *out)
{
    s_udf_t *u = (s_udf_t *)ctx;
    const sl_schema_t *s = u->op->node->out;
    /* Check what the function hands us: types must match the declaration. */
    for (int i = 0; i < s->nfields; i++)
        if (!out[i].is_null && out[i].type != (int)s->fields[i].type) {
            snprintf(u->error, sizeof u->error, "emitted a %s for field '%s' declared %s",
                     sl_type_name((sl_type_t)out[i].type) ? sl_type_name((sl_type_t)out[i].type)
                                                          : "bad value",
                     s->fields[i].name, sl_type_name(s->fields[i].type));
            return u->emit_rc = SL_TYPE;
        }
    int rc = sl_emit(&u->op->out, (const sl_value_t *)out);
    if (rc && !u->emit_rc)
        u->emit_rc = rc;
    return rc;
}

static void *s_host_alloc(sl_udf_ctx_t *ctx, size_t size)
{
    s_udf_t *u = (s_udf_t *)ctx;
    return sl_arena_alloc(u->op->arena, size);
}

static void s_host_error(sl_udf_ctx_t *ctx, const char *message)
{
    s_udf_t *u = (s_udf_t *)ctx;
    snprintf(u->error, sizeof u->error, "%s", message ? message : "(no message)");
}

static const sl_udf_host_t s_host = {
    .emit = s_host_emit, .alloc = s_host_alloc, .error = s_host_error};

static int s_open(sl_opctx_t *c)
{
    s_udf_t *u = calloc(1, sizeof *u);
    if (!u)
        return SL_NOMEM;
    c->state = u;
    const sl_udf_function_t *f = c->node->udf;
    u->ctx.host = &s_host;
    u->op = c;
    u->row = calloc((size_t)c->in->nfields + 1, sizeof *u->row);
    u->in = calloc((size_t)f->nin + 1, sizeof *u->in);
    u->out = calloc((size_t)(f->nout > 0 ? f->nout : 1), sizeof *u->out);
    return u->row && u->in && u->out ? SL_OK : SL_NOMEM;
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_udf_t *u = c->state;
    const sl_udf_function_t *f = c->node->udf;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, u->row);
        for (int i = 0; i < f->nin; i++)
            u->in[i] = *(const sl_udf_value_t *)&u->row[c->node->udf_in[i]];
        u->error[0] = '\0';
        u->emit_rc = 0;
        int rc = f->call(&u->ctx, u->in, u->out);
        if (u->emit_rc && u->emit_rc != SL_TYPE)
            return u->emit_rc; /* downstream failed or canceled */
        if (rc < 0 || u->emit_rc)
            return sl_op_fail(c, SL_EVAL, "%s '%s': function '%s' failed: %s", c->node->type,
                              c->node->name, f->name,
                              u->error[0] ? u->error : "it returned an error");
        if (f->kind == SL_UDF_FILTER) {
            if (rc > 0 && (rc = sl_emit_raw(&c->out, r, sl_row_len(r))) != SL_OK)
                return rc;
        } else if (f->kind == SL_UDF_MAP) {
            if ((rc = s_host_emit(&u->ctx, u->out)) != SL_OK)
                return u->emit_rc == SL_TYPE ? sl_op_fail(c, SL_TYPE, "map '%s': function '%s' %s",
                                                          c->node->name, f->name, u->error)
                                             : rc;
        }
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
    s_udf_t *u = c->state;
    if (u) {
        free(u->row);
        free(u->in);
        free(u->out);
        free(u);
    }
    c->state = NULL;
}

const sl_op_vtable_t sl_op_udf = {
    .open = s_open, .process = s_process, .finish = s_finish, .close = s_close};
