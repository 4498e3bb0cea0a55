/* task.c — runs one subtask (see task.h). */
#define _POSIX_C_SOURCE 200809L
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "operator.h"
#include "sluice/err.h"

/* Where the rows leaving the chain go: one consumer edge. */
typedef struct {
    sl_outgate_t *gate; /* one channel per receiving subtask */
    sl_part_t part;
    int nkeys;
    const int *keys;   /* key fields (hash) in the chain's output schema */
    sl_batch_t **bufs; /* hash: rows waiting per channel */
    int rr;            /* rebalance: next channel */
} s_output_t;

struct sl_task {
    sl_task_env_t env;
    const sl_plan_chain_t *chain;
    int nops;
    sl_opctx_t *ops; /* one per chained node */
    const sl_op_vtable_t **vt;
    uint64_t *nested_ns; /* per op: time spent in downstream calls */
    sl_ingate_t *in;
    int nout;
    s_output_t *out;
    const sl_schema_t *out_schema; /* schema of rows leaving the chain */
    sl_value_t *keyvals;           /* scratch for hash keys */
    _Atomic uint64_t blocked_ns;
    int opened; /* ops opened so far */
    char err[600];
};

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- moving batches ------------------------------------------------------- */

/* Runs op i on batch b, charging it the time not spent downstream. */
static int s_process(sl_task_t *t, int i, const sl_batch_t *b, int input)
{
    sl_opctx_t *c = &t->ops[i];
    uint64_t nested0 = t->nested_ns[i], t0 = s_now_ns();
    atomic_fetch_add_explicit(&c->records_in, b->count, memory_order_relaxed);
    int rc = t->vt[i]->process(c, b, input);
    uint64_t dt = s_now_ns() - t0, nested = t->nested_ns[i] - nested0;
    atomic_fetch_add_explicit(&c->busy_ns, dt > nested ? dt - nested : 0, memory_order_relaxed);
    sl_arena_reset(c->arena);
    if (i > 0)
        t->nested_ns[i - 1] += dt;
    return rc;
}

static int s_send(sl_task_t *t, s_output_t *o, int ch, const sl_batch_t *b)
{
    int rc = sl_outgate_send(o->gate, ch, b->data, b->len, b->count);
    if (rc && rc != SL_CANCELED)
        snprintf(t->err, sizeof t->err, "sending to a downstream task failed: %s", sl_strerror(rc));
    return rc;
}

/* Routes a batch leaving the chain to every consumer edge. */
static int s_route(sl_task_t *t, const sl_batch_t *b)
{
    uint64_t t0 = s_now_ns();
    int rc = SL_OK;
    for (int k = 0; k < t->nout && rc == SL_OK; k++) {
        s_output_t *o = &t->out[k];
        int n = sl_outgate_channels(o->gate);
        if (o->part != SL_PART_HASH) {
            rc = s_send(t, o, o->rr, b);
            if (o->part == SL_PART_REBALANCE)
                o->rr = (o->rr + 1) % n;
            continue;
        }
        int maxp = t->env.plan->max_parallelism;
        for (const uint8_t *r = sl_batch_first(b); r && rc == SL_OK; r = sl_batch_next(b, r)) {
            for (int j = 0; j < o->nkeys; j++)
                sl_row_get(t->out_schema, r, o->keys[j], &t->keyvals[j]);
            int kg = sl_key_group(sl_value_hash(t->keyvals, o->nkeys), maxp);
            int ch = sl_key_group_owner(kg, maxp, n);
            uint32_t len = sl_row_len(r);
            rc = sl_batch_append_raw(o->bufs[ch], r, len);
            if (rc == SL_LIMIT) {
                rc = s_send(t, o, ch, o->bufs[ch]);
                sl_batch_clear(o->bufs[ch]);
                if (rc == SL_OK)
                    rc = sl_batch_append_raw(o->bufs[ch], r, len);
            }
        }
    }
    if (t->nops)
        t->nested_ns[t->nops - 1] += s_now_ns() - t0;
    return rc;
}

/* Flush target of op i's emitter: the next op, or the outputs. */
typedef struct {
    sl_task_t *t;
    int next; /* index of the next op, or nops for the outputs */
} s_link_t;

static int s_flush_to(void *target, sl_batch_t *b)
{
    s_link_t *l = target;
    if (l->next < l->t->nops)
        return s_process(l->t, l->next, b, 0);
    return s_route(l->t, b);
}

/* ---- setup -------------------------------------------------------------------- */

sl_task_t *sl_task_new(const sl_task_env_t *env)
{
    sl_task_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->env = *env;
    t->chain = &env->plan->chains[env->chain];
    t->nops = t->chain->nnodes;
    t->ops = calloc((size_t)t->nops, sizeof *t->ops);
    t->vt = calloc((size_t)t->nops, sizeof *t->vt);
    t->nested_ns = calloc((size_t)t->nops, sizeof *t->nested_ns);
    if (!t->ops || !t->vt || !t->nested_ns) {
        sl_task_destroy(&t);
        return NULL;
    }
    return t;
}

/* Output edges: every input slot of every consumer fed by the chain's tail. */
static int s_open_outputs(sl_task_t *t, s_link_t *links)
{
    const sl_plan_t *p = t->env.plan;
    const sl_plan_node_t *tail = &p->nodes[t->chain->nodes[t->nops - 1]];
    (void)links;
    t->out_schema = tail->out;
    int n = 0;
    for (int c = 0; c < tail->nconsumers; c++) {
        const sl_plan_node_t *cn = &p->nodes[tail->consumers[c]];
        for (int k = 0; k < cn->ninputs; k++)
            n += cn->inputs[k] == tail->id;
    }
    t->out = calloc((size_t)(n ? n : 1), sizeof *t->out);
    t->keyvals = calloc(64, sizeof *t->keyvals);
    if (!t->out || !t->keyvals)
        return SL_NOMEM;
    for (int c = 0; c < tail->nconsumers; c++) {
        const sl_plan_node_t *cn = &p->nodes[tail->consumers[c]];
        for (int k = 0; k < cn->ninputs; k++) {
            if (cn->inputs[k] != tail->id)
                continue;
            s_output_t *o = &t->out[t->nout++];
            o->part = cn->part[k];
            o->nkeys = cn->edge_nkeys[k] < 64 ? cn->edge_nkeys[k] : 64;
            o->keys = cn->edge_keys[k];
            int nch = o->part == SL_PART_FORWARD ? 1 : cn->parallelism;
            char **eps = calloc((size_t)nch, sizeof *eps);
            if (!eps)
                return SL_NOMEM;
            int rc = SL_OK;
            for (int s = 0; s < nch && rc == SL_OK; s++) {
                eps[s] = malloc(256);
                if (!eps[s])
                    rc = SL_NOMEM;
                else
                    t->env.endpoint(t->env.endpoint_arg, cn->chain,
                                    o->part == SL_PART_FORWARD ? t->env.subtask : s, eps[s], 256);
            }
            if (rc == SL_OK) {
                o->gate = sl_outgate_new(t->env.zctx, nch, (const char *const *)eps, (uint16_t)k,
                                         (uint32_t)t->env.subtask, t->env.credits, t->env.cancel,
                                         t->err, sizeof t->err);
                if (!o->gate)
                    rc = SL_ZMQ;
            }
            for (int s = 0; s < nch; s++)
                free(eps[s]);
            free(eps);
            if (rc)
                return rc;
            if (o->part == SL_PART_HASH) {
                o->bufs = calloc((size_t)nch, sizeof *o->bufs);
                if (!o->bufs)
                    return SL_NOMEM;
                for (int s = 0; s < nch; s++)
                    if (!(o->bufs[s] = sl_batch_new(t->env.batch_bytes)))
                        return SL_NOMEM;
            }
        }
    }
    return SL_OK;
}

static int s_open(sl_task_t *t, s_link_t *links)
{
    const sl_plan_t *p = t->env.plan;
    for (int i = 0; i < t->nops; i++) {
        const sl_plan_node_t *nd = &p->nodes[t->chain->nodes[i]];
        sl_opctx_t *c = &t->ops[i];
        c->plan = p;
        c->node = nd;
        c->subtask = t->env.subtask;
        c->parallelism = t->chain->parallelism;
        c->in = nd->ninputs ? p->nodes[nd->inputs[0]].out : NULL;
        c->cancel = t->env.cancel;
        c->arena = sl_arena_new(64 * 1024);
        links[i] = (s_link_t){.t = t, .next = i + 1};
        if (nd->out) {
            c->out.batch = sl_batch_new(t->env.batch_bytes);
            c->out.schema = nd->out;
            c->out.flush = s_flush_to;
            c->out.target = &links[i];
            if (!c->out.batch)
                return SL_NOMEM;
        }
        if (!c->arena)
            return SL_NOMEM;
        t->vt[i] = sl_op_vtable(nd);
        int rc = t->vt[i]->open(c);
        t->opened = i + 1;
        if (rc) {
            snprintf(t->err, sizeof t->err, "%s", c->err[0] ? c->err : sl_strerror(rc));
            return rc;
        }
    }
    return s_open_outputs(t, links);
}

int sl_task_bind(sl_task_t *t, const char *bind_endpoint, char *out, size_t cap)
{
    const sl_plan_t *p = t->env.plan;
    const sl_plan_node_t *head = &p->nodes[t->chain->nodes[0]];
    if (cap)
        out[0] = '\0';
    if (!head->ninputs)
        return SL_OK;
    int expected = 0;
    for (int k = 0; k < head->ninputs; k++)
        expected += head->part[k] == SL_PART_FORWARD ? 1 : p->nodes[head->inputs[k]].parallelism;
    t->in =
        sl_ingate_new(t->env.zctx, bind_endpoint, expected, t->env.cancel, t->err, sizeof t->err);
    if (!t->in)
        return SL_ZMQ;
    if (sl_ingate_endpoint(t->in, out, cap) != SL_OK) {
        snprintf(t->err, sizeof t->err, "cannot read the endpoint bound at %s", bind_endpoint);
        return SL_ZMQ;
    }
    return SL_OK;
}

/* ---- running -------------------------------------------------------------------- */

static int s_op_error(sl_task_t *t, int i, int rc)
{
    if (!t->err[0] && rc != SL_CANCELED)
        snprintf(t->err, sizeof t->err, "%s", t->ops[i].err[0] ? t->ops[i].err : sl_strerror(rc));
    return rc;
}

/* Finds which op failed: the first with an error message, else op 0. */
static int s_chain_error(sl_task_t *t, int rc)
{
    for (int i = 0; i < t->nops; i++)
        if (t->ops[i].err[0])
            return s_op_error(t, i, rc);
    return s_op_error(t, 0, rc);
}

static int s_finish(sl_task_t *t)
{
    for (int i = 0; i < t->nops; i++) {
        uint64_t t0 = s_now_ns();
        int rc = t->vt[i]->finish(&t->ops[i]);
        if (rc == SL_OK && t->ops[i].out.batch)
            rc = sl_emit_flush(&t->ops[i].out);
        atomic_fetch_add_explicit(&t->ops[i].busy_ns, s_now_ns() - t0, memory_order_relaxed);
        if (rc)
            return s_chain_error(t, rc);
    }
    for (int k = 0; k < t->nout; k++) {
        s_output_t *o = &t->out[k];
        for (int s = 0; o->bufs && s < sl_outgate_channels(o->gate); s++)
            if (o->bufs[s]->count) {
                int rc = s_send(t, o, s, o->bufs[s]);
                sl_batch_clear(o->bufs[s]);
                if (rc)
                    return rc;
            }
        int rc = sl_outgate_finish(o->gate);
        if (rc) {
            snprintf(t->err, sizeof t->err, "ending a data channel failed: %s", sl_strerror(rc));
            return rc;
        }
    }
    return SL_OK;
}

int sl_task_run(sl_task_t *t)
{
    s_link_t *links = calloc((size_t)t->nops, sizeof *links);
    if (!links)
        return SL_NOMEM;
    int rc = s_open(t, links);
    if (rc == SL_OK && !t->in) {
        /* A source chain: the head produces everything. */
        sl_opctx_t *c = &t->ops[0];
        uint64_t t0 = s_now_ns();
        rc = t->vt[0]->run_source(c);
        if (rc == SL_OK)
            rc = sl_emit_flush(&c->out);
        uint64_t dt = s_now_ns() - t0;
        atomic_fetch_add_explicit(&c->busy_ns, dt > t->nested_ns[0] ? dt - t->nested_ns[0] : 0,
                                  memory_order_relaxed);
        if (rc)
            s_chain_error(t, rc);
    } else if (rc == SL_OK) {
        sl_batch_t view = {0};
        for (;;) {
            sl_inbatch_t in;
            int got = sl_ingate_next(t->in, &in, t->err, sizeof t->err);
            if (got <= 0) {
                rc = got;
                break;
            }
            view.data = (uint8_t *)in.data;
            view.len = in.len;
            view.count = in.count;
            /* Validate before use: a batch is untrusted input. */
            const sl_plan_node_t *head = &t->env.plan->nodes[t->chain->nodes[0]];
            if (in.input >= head->ninputs ||
                sl_batch_check(t->env.plan->nodes[head->inputs[in.input]].out, in.data, in.len,
                               in.count) != SL_OK) {
                sl_ingate_release(t->in, &in);
                snprintf(t->err, sizeof t->err, "malformed batch from upstream subtask %u",
                         (unsigned)in.sender);
                rc = SL_DATA;
                break;
            }
            rc = s_process(t, 0, &view, in.input);
            sl_ingate_release(t->in, &in);
            if (rc) {
                s_chain_error(t, rc);
                break;
            }
        }
    }
    if (rc == SL_OK)
        rc = s_finish(t);
    free(links);
    for (int i = 0; i < t->nops; i++)
        t->ops[i].out.target = NULL;
    return rc;
}

const char *sl_task_error(const sl_task_t *t)
{
    return t->err;
}

int sl_task_nops(const sl_task_t *t)
{
    return t->nops;
}

void sl_task_metrics(const sl_task_t *t, int i, sl_op_metrics_t *m)
{
    const sl_opctx_t *c = &t->ops[i];
    const sl_plan_node_t *nd = &t->env.plan->nodes[t->chain->nodes[i]];
    m->op = nd->name;
    m->records_out = nd->role == SL_ROLE_SINK
                         ? atomic_load_explicit(&c->records_out, memory_order_relaxed)
                         : c->out.records;
    /* A source's input is what it read, which is what it emitted (bad
     * records it skipped are counted in errors). */
    m->records_in = nd->role == SL_ROLE_SOURCE
                        ? m->records_out
                        : atomic_load_explicit(&c->records_in, memory_order_relaxed);
    m->busy_ns = atomic_load_explicit(&c->busy_ns, memory_order_relaxed);
    m->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
}

uint64_t sl_task_blocked_ns(const sl_task_t *t)
{
    uint64_t ns = 0;
    for (int k = 0; k < t->nout; k++)
        if (t->out[k].gate)
            ns += sl_outgate_blocked_ns(t->out[k].gate);
    return ns;
}

void sl_task_destroy(sl_task_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_task_t *t = *pp;
    for (int i = 0; i < t->opened; i++)
        t->vt[i]->close(&t->ops[i]);
    for (int i = 0; t->ops && i < t->nops; i++) {
        sl_batch_destroy(&t->ops[i].out.batch);
        sl_arena_destroy(&t->ops[i].arena);
    }
    for (int k = 0; k < t->nout; k++) {
        s_output_t *o = &t->out[k];
        if (o->bufs)
            for (int s = 0; s < sl_outgate_channels(o->gate); s++)
                sl_batch_destroy(&o->bufs[s]);
        free(o->bufs);
        sl_outgate_destroy(&o->gate);
    }
    free(t->out);
    free(t->keyvals);
    sl_ingate_destroy(&t->in);
    free(t->ops);
    free(t->vt);
    free(t->nested_ns);
    free(t);
    *pp = NULL;
}
