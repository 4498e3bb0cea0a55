/* task.c — runs one subtask (see task.h). */
#define _POSIX_C_SOURCE 200809L
#include "task.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <zmq.h>

#include <nettle/sha2.h>

#include "ackq.h"
#include "channel.h"
#include "operator.h"
#include "sluice/err.h"
#include "sluice/failpoint.h"
#include "sluice/fileio.h"
#include "sluice/plugin.h"
#include "sluice/snap.h"

/* A frame of a channel blocked by barrier alignment, held until the
 * checkpoint is taken (a held batch keeps its credit: the sender stalls). */
typedef struct s_held {
    struct s_held *next;
    int ch;
    sl_inbatch_t in;
} s_held_t;

#define S_SNAP_MAGIC 0x4b434c53u /* "SLCK" */
/* 2: keys hash into other key groups than in 1 (sl_value_hash) */
#define S_SNAP_VERSION 2u

/* Where the rows leaving the chain go: one consumer edge in another task. */
typedef struct {
    sl_outgate_t *gate;        /* one channel per receiving subtask */
    int from;                  /* the op (chain index) whose rows these are */
    int port;                  /* 0: its output; 1: its side output */
    const sl_schema_t *schema; /* of those rows */
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
    sl_value_t *keyvals; /* scratch for hash keys */
    int opened;          /* ops opened so far */
    char err[600];

    /* Event time (docs/time.md). */
    int nch;                /* in-gate channels: one per (input, sender) */
    int *ch_base;           /* per input of the head: index of its first channel */
    int64_t *ch_wm;         /* per channel: last watermark received */
    uint8_t *ch_state;      /* per channel: S_CH_ACTIVE, S_CH_IDLE or S_CH_ENDED */
    int64_t wm;             /* the task's watermark: never goes backwards */
    bool idle_out;          /* downstream was told this task is idle */
    bool has_tick;          /* an op runs on processing time */
    bool src_wm;            /* source chain generating watermarks */
    int64_t src_max;        /* source: largest event time seen */
    uint64_t src_last_ns;   /* source: when the last record was emitted */
    uint64_t src_wm_ns;     /* source: when the watermark last went out */
    _Atomic int64_t wm_pub; /* the watermark, readable by the reporter */
    sl_batch_t *ts_batch;   /* source with a timestamp expression: its records + event_time */
    sl_value_t *ts_vals;    /* scratch for them */

    /* Checkpoints (docs/fault-tolerance.md). */
    _Atomic uint64_t ctl;         /* 1: a trigger or completion is waiting */
    _Atomic uint64_t trigger_id;  /* source: checkpoint to take (0 = none) */
    atomic_bool trigger_stop;     /* source: it is a stop-with-savepoint */
    uint64_t parked;              /* source: stopped at this savepoint (0 = emitting) */
    _Atomic uint64_t complete_id; /* latest checkpoint notified complete */
    uint64_t completed_seen;      /* latest passed to the operators */
    pthread_mutex_t ack_lock;     /* guards has_lag, lag and lag_detail */
    bool has_lag;                 /* the source reported a lag (sl_op_source_lag) */
    int64_t lag;                  /* its latest: records behind the end of its input */
    char lag_detail[256];         /* per partition */
    sl_ackq_t *acks;              /* acknowledgements not yet taken by the worker */
    uint64_t align_id;            /* barrier being aligned (0 = none) */
    uint64_t align_t0;            /* s_now_ns() when its first barrier came */
    uint64_t align_ms;            /* how long the last alignment took */
    bool *ch_barrier;             /* per channel: delivered align_id */
    s_held_t *held, **held_tail;

    /* The asynchronous phase of a snapshot (s_snap_main): at most one in
     * flight; the buffers are kept from one snapshot to the next. */
    sl_snap_w_t *snap_op;        /* per op: its snapshot bytes */
    sl_snap_w_t *snap_pre;       /* per op: the stream's bytes before them */
    sl_snap_defer_t *snap_defer; /* per op: the part left to the thread */
    uint64_t snap_id;            /* checkpoint being written (0 = none) */
    uint64_t snap_align_ms;      /* its alignment time, for the ack */
    bool snap_thread;            /* snap_th runs (join it) */
    pthread_t snap_th;           /* the thread writing it */
};

enum { S_CH_ACTIVE, S_CH_IDLE, S_CH_ENDED };
#define S_TICK_MS 10 /* processing-time tick */

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- moving batches ------------------------------------------------------- */

/* A hash edge's per-channel buffer holds this many batches' bytes before
 * it is sent (a watermark or a barrier sends it sooner). */
#define S_WIRE_BATCHES 8u

/* Runs op i on batch b (its input `input`), charging it the time not
 * spent downstream; the time is nested in op `caller` (-1: none). */
static int s_process(sl_task_t *t, int i, const sl_batch_t *b, int input, int caller)
{
    sl_opctx_t *c = &t->ops[i];
    uint64_t nested0 = t->nested_ns[i], t0 = s_now_ns();
    atomic_fetch_add_explicit(&c->records_in, b->count, memory_order_relaxed);
    int rc = t->vt[i]->process(c, b, input);
    uint64_t dt = s_now_ns() - t0, nested = t->nested_ns[i] - nested0;
    atomic_fetch_add_explicit(&c->busy_ns, dt > nested ? dt - nested : 0, memory_order_relaxed);
    sl_arena_reset(c->arena);
    if (caller >= 0)
        t->nested_ns[caller] += dt;
    return rc;
}

/* Records the error of a call to op i: its message, or that of the op
 * after it in the chain that failed under it (an error downstream comes
 * back through op i's emit), else the code's. */
static int s_chain_error_at(sl_task_t *t, int i, int rc)
{
    if (t->err[0] || rc == SL_CANCELED)
        return rc;
    while (i < t->nops && !t->ops[i].err[0])
        i++;
    snprintf(t->err, sizeof t->err, "%s", i < t->nops ? t->ops[i].err : sl_strerror(rc));
    return rc;
}

static int s_send(sl_task_t *t, s_output_t *o, int ch, const sl_batch_t *b)
{
    int rc = sl_outgate_send(o->gate, ch, b->data, b->len, b->count);
    if (rc && rc != SL_CANCELED)
        snprintf(t->err, sizeof t->err, "sending to a downstream task failed: %s", sl_strerror(rc));
    return rc;
}

/* Sends a hash edge's buffer for channel ch and empties it (the
 * message takes its bytes). */
static int s_send_buf(sl_task_t *t, s_output_t *o, int ch)
{
    int rc = sl_outgate_send_batch(o->gate, ch, o->bufs[ch]);
    if (rc && rc != SL_CANCELED)
        snprintf(t->err, sizeof t->err, "sending to a downstream task failed: %s", sl_strerror(rc));
    sl_batch_clear(o->bufs[ch]);
    return rc;
}

/* Routes a batch of op `from`'s output (port 0) or side output (port 1)
 * to every consumer edge of it in another task. */
static int s_route(sl_task_t *t, int from, int port, const sl_batch_t *b)
{
    uint64_t t0 = s_now_ns();
    int rc = SL_OK;
    for (int k = 0; k < t->nout && rc == SL_OK; k++) {
        s_output_t *o = &t->out[k];
        if (o->from != from || o->port != port)
            continue;
        const sl_schema_t *schema = o->schema;
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
                sl_row_get(schema, r, o->keys[j], &t->keyvals[j]);
            int kg = sl_key_group(sl_value_hash(t->keyvals, o->nkeys), maxp);
            int ch = sl_key_group_owner(kg, maxp, n);
            uint32_t len = sl_row_len(r);
            rc = sl_batch_append_raw(o->bufs[ch], r, len);
            if (rc == SL_LIMIT) {
                rc = s_send_buf(t, o, ch);
                if (rc == SL_OK)
                    rc = sl_batch_append_raw(o->bufs[ch], r, len);
            }
        }
    }
    t->nested_ns[from] += s_now_ns() - t0;
    return rc;
}

/* One chained consumer of an emitter: op `op` of the chain, its input. */
typedef struct {
    int op;
    int input;
} s_dest_t;

/* Flush target of op i's emitter: every chained consumer in chain order
 * (a branch), then the consumer edges to other tasks. */
typedef struct {
    sl_task_t *t;
    int from;       /* the emitting op */
    int port;       /* 0: its output; 1: its side output */
    int ndest;      /* chained consumers */
    s_dest_t *dest; /* them, in chain order */
    bool routed;    /* some consumer runs in another task */
} s_link_t;

static int s_advance(sl_task_t *t, int from, int64_t wm);

/* A source's batch: its largest event time moves the watermark. */
static int s_source_batch(sl_task_t *t, const sl_batch_t *b)
{
    const sl_plan_node_t *nd = t->ops[0].node;
    sl_value_t v;
    int64_t mx = t->src_max;
    for (const uint8_t *r = sl_batch_first(b); r; r = sl_batch_next(b, r)) {
        sl_row_get(nd->out, r, nd->rowtime, &v);
        if (!v.is_null && v.u.i > mx && v.u.i <= SL_TIME_LIMIT)
            mx = v.u.i; /* a time beyond any calendar is an error downstream */
    }
    t->src_max = mx;
    return SL_OK;
}

static int64_t s_source_wm(const sl_task_t *t)
{
    const sl_plan_node_t *nd = t->ops[0].node;
    if (t->ops[0].own_wm) /* the source keeps its own (per partition) */
        return t->ops[0].source_wm;
    if (t->src_max == SL_WM_MIN || t->src_max < SL_WM_MIN + nd->wm_bound + 1)
        return SL_WM_MIN;
    return t->src_max - nd->wm_bound - 1;
}

/* A source whose event time is an expression: each record gets the
 * event_time field (into t->ts_batch). */
static int s_add_event_time(sl_task_t *t, const sl_batch_t *b, sl_batch_t **out)
{
    const sl_plan_node_t *nd = t->ops[0].node;
    const sl_schema_t *src = nd->src_out;
    if (!t->ts_batch && !(t->ts_batch = sl_batch_new(t->env.batch_bytes)))
        return SL_NOMEM;
    if (!t->ts_vals && !(t->ts_vals = calloc((size_t)nd->out->nfields, sizeof *t->ts_vals)))
        return SL_NOMEM;
    sl_batch_clear(t->ts_batch);
    sl_arena_t *a = t->ops[0].arena;
    for (const uint8_t *r = sl_batch_first(b); r; r = sl_batch_next(b, r)) {
        sl_row_decode(src, r, t->ts_vals);
        int rc = sl_expr_eval(nd->ts_expr, t->ts_vals, a, &t->ts_vals[src->nfields]);
        if (rc == SL_OK) {
            t->ts_vals[src->nfields].type = nd->out->fields[src->nfields].type;
            rc = sl_batch_append(t->ts_batch, nd->out, t->ts_vals);
        }
        if (rc == SL_LIMIT) { /* the wider rows did not fit: grow */
            sl_batch_t *big = sl_batch_new(t->ts_batch->cap * 2);
            if (!big)
                return SL_NOMEM;
            for (const uint8_t *q = sl_batch_first(t->ts_batch); q;
                 q = sl_batch_next(t->ts_batch, q))
                sl_batch_append_raw(big, q, sl_row_len(q));
            sl_batch_destroy(&t->ts_batch);
            t->ts_batch = big;
            rc = sl_batch_append(t->ts_batch, nd->out, t->ts_vals);
        }
        if (rc)
            return rc;
    }
    sl_arena_reset(a);
    *out = t->ts_batch;
    return SL_OK;
}

static int s_flush_to(void *target, sl_batch_t *b)
{
    s_link_t *l = target;
    sl_task_t *t = l->t;
    bool from_source = l->from == 0 && l->port == 0 && t->src_wm;
    if (l->from == 0 && l->port == 0 && t->ops[0].node->ts_expr) {
        int rc = s_add_event_time(t, b, &b);
        if (rc)
            return s_chain_error_at(t, 0, rc);
    }
    if (from_source) {
        if (!t->ops[0].own_wm) /* (its rows may be a fused map's) */
            s_source_batch(t, b);
        t->src_last_ns = s_now_ns();
    }
    /* each branch gets the batch in turn (none changes it) */
    int rc = SL_OK;
    for (int d = 0; d < l->ndest && rc == SL_OK; d++)
        rc = s_process(t, l->dest[d].op, b, l->dest[d].input, l->from);
    if (rc == SL_OK && l->routed)
        rc = s_route(t, l->from, l->port, b);
    if (rc == SL_OK && from_source) {
        /* at most one watermark per watermark.interval: each goes on every
         * channel and sends the partial batches with it */
        int64_t wm = s_source_wm(t);
        uint64_t every = (uint64_t)t->ops[0].node->wm_interval * 1000000ull;
        if ((wm > t->wm || t->idle_out) && (!every || t->src_last_ns - t->src_wm_ns >= every)) {
            t->src_wm_ns = t->src_last_ns;
            rc = s_advance(t, 1, wm > t->wm ? wm : t->wm);
        }
    }
    return rc;
}

/* Hands every record held in the chain downstream: the emitters in chain
 * order (each feeds the next op), then the per-channel buffers. */
static int s_flush_chain(sl_task_t *t, int from)
{
    int rc = SL_OK;
    for (int i = from; i < t->nops && rc == SL_OK; i++) {
        if (t->ops[i].out.batch)
            rc = sl_emit_flush(&t->ops[i].out);
        if (rc == SL_OK && t->ops[i].side.batch)
            rc = sl_emit_flush(&t->ops[i].side);
        if (rc) /* an op downstream failed on what op i flushed to it */
            return s_chain_error_at(t, i, rc);
    }
    for (int k = 0; k < t->nout && rc == SL_OK; k++) {
        s_output_t *o = &t->out[k];
        for (int s = 0; o->bufs && s < sl_outgate_channels(o->gate) && rc == SL_OK; s++)
            if (o->bufs[s]->count)
                rc = s_send_buf(t, o, s);
    }
    return rc;
}

/* The watermark moves to wm: each op from `from` on sees it after all it
 * was sent before, what it emits goes downstream first, then the
 * watermark goes out on every channel. */
static int s_advance(sl_task_t *t, int from, int64_t wm)
{
    if (wm < t->wm)
        wm = t->wm;
    t->wm = wm;
    atomic_store_explicit(&t->wm_pub, wm, memory_order_relaxed);
    int rc = SL_OK;
    for (int i = from; i < t->nops && rc == SL_OK; i++) {
        sl_opctx_t *c = &t->ops[i];
        c->watermark = wm; /* op i-1 flushed to it what it emitted before wm */
        if (t->vt[i]->watermark) {
            uint64_t t0 = s_now_ns(), nested0 = t->nested_ns[i];
            rc = t->vt[i]->watermark(c, wm);
            uint64_t dt = s_now_ns() - t0, nested = t->nested_ns[i] - nested0;
            atomic_fetch_add_explicit(&c->busy_ns, dt > nested ? dt - nested : 0,
                                      memory_order_relaxed);
            sl_arena_reset(c->arena);
            if (rc)
                return s_chain_error_at(t, i, rc);
        }
        /* what op i emitted, before wm and at it, reaches op i+1 before wm
         * does (a window firing at wm feeds a window after it) */
        if (c->out.batch)
            rc = sl_emit_flush(&c->out);
        if (rc == SL_OK && c->side.batch)
            rc = sl_emit_flush(&c->side);
        if (rc)
            return s_chain_error_at(t, i, rc);
    }
    if (rc == SL_OK)
        rc = s_flush_chain(t, from);
    for (int k = 0; k < t->nout && rc == SL_OK; k++)
        rc = sl_outgate_watermark(t->out[k].gate, wm, false);
    t->idle_out = false;
    return rc;
}

/* ---- setup -------------------------------------------------------------------- */

sl_task_t *sl_task_new(const sl_task_env_t *env)
{
    sl_task_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->env = *env;
    pthread_mutex_init(&t->ack_lock, NULL);
    t->acks = sl_ackq_new(0);
    t->held_tail = &t->held;
    t->chain = &env->plan->chains[env->chain];
    t->nops = t->chain->nnodes;
    t->ops = calloc((size_t)t->nops, sizeof *t->ops);
    t->vt = calloc((size_t)t->nops, sizeof *t->vt);
    t->nested_ns = calloc((size_t)t->nops, sizeof *t->nested_ns);
    if (!t->ops || !t->vt || !t->nested_ns || !t->acks) {
        sl_task_destroy(&t);
        return NULL;
    }
    return t;
}

/* Output edges: every input slot, in another task, fed by an op of the
 * chain (any op: a chain may branch); each op's links learn whether it
 * has some. */
static int s_open_outputs(sl_task_t *t, s_link_t *links)
{
    const sl_plan_t *p = t->env.plan;
    int n = 0;
    for (int c = 0; c < p->nnodes; c++) {
        const sl_plan_node_t *cn = &p->nodes[c];
        for (int k = 0; cn->chain != t->chain->id && k < cn->ninputs; k++)
            n += p->nodes[cn->inputs[k]].chain == t->chain->id;
    }
    t->out = calloc((size_t)(n ? n : 1), sizeof *t->out);
    t->keyvals = calloc(64, sizeof *t->keyvals);
    if (!t->out || !t->keyvals)
        return SL_NOMEM;
    /* each pair (op i, node c in another task): the edges from i into c */
    for (int e = 0; e < t->nops * p->nnodes; e++) {
        int i = e / p->nnodes;
        const sl_plan_node_t *cn = &p->nodes[e % p->nnodes];
        for (int k = 0; cn->chain != t->chain->id && k < cn->ninputs; k++) {
            if (cn->inputs[k] != t->chain->nodes[i])
                continue;
            s_output_t *o = &t->out[t->nout++];
            const sl_plan_node_t *up = t->ops[i].node;
            o->from = i;
            o->port = cn->input_ports[k];
            o->schema = o->port ? up->side_out : up->out;
            links[2 * i + o->port].routed = true;
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
                /* a hash edge's messages hold up to S_WIRE_BATCHES batches:
                 * each message costs wake-ups and system calls at both
                 * ends (and two I/O threads over TCP), its bytes do not */
                uint32_t bb = t->env.batch_bytes ? t->env.batch_bytes : SL_BATCH_DEFAULT_CAP;
                for (int s = 0; s < nch; s++)
                    if (!(o->bufs[s] = sl_batch_new(bb * S_WIRE_BATCHES)))
                        return SL_NOMEM;
            }
        }
    }
    return SL_OK;
}

/* ---- checkpoints ------------------------------------------------------------- */

/* Queues an acknowledgement for the worker (sl_task_poll_ack): every one
 * reaches the master, in order (worker/ackq.h). */
static void s_publish_ack(sl_task_t *t, const sl_task_ack_t *a)
{
    if (sl_ackq_push(t->acks, a) != SL_OK)
        fprintf(stderr,
                "sluice-worker: task %d.%d: checkpoint %llu: acknowledgement lost: %s (the "
                "master gives the checkpoint up at its timeout)\n",
                t->env.chain, t->env.subtask, (unsigned long long)a->id, sl_strerror(SL_NOMEM));
}

/* Test knob (builds with failpoints, not Release):
 * SLUICE_SNAPSHOT_WRITE_DELAY_MS=MS[:FROM] delays the asynchronous phase
 * of every snapshot of checkpoint FROM (default 1) or later by MS before it
 * writes anything (until the task is canceled). */
static void s_write_delay(sl_task_t *t, uint64_t id)
{
#ifdef SLUICE_FAILPOINTS
    const char *v = getenv("SLUICE_SNAPSHOT_WRITE_DELAY_MS");
    char *end = NULL;
    long ms = v ? strtol(v, &end, 10) : 0;
    if (ms > 0 && end && *end == ':' && id < strtoull(end + 1, NULL, 10))
        ms = 0;
    if (ms > 0)
        fprintf(stderr,
                "sluice-worker: task %d.%d: checkpoint %llu: SLUICE_SNAPSHOT_WRITE_DELAY_MS=%ld, "
                "waiting\n",
                t->env.chain, t->env.subtask, (unsigned long long)id, ms);
    for (long n = 0; n < ms && !atomic_load(t->env.cancel); n += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
#else
    (void)t;
    (void)id;
#endif
}

/* The asynchronous phase of snapshot t->snap_id: finishes the operators'
 * deferred parts (copying RocksDB files into storage), writes the state
 * file (temporary file, fsync, rename, fsync of the directory) with its
 * sha256, then publishes the ack: only once every file is durable. Runs on
 * its own thread while the task processes records; touches nothing of the
 * task but the snap_* buffers, its read-only env and the ack. */
static void *s_snap_main(void *arg)
{
    sl_task_t *t = arg;
    uint64_t id = t->snap_id;
    sl_task_ack_t a = {.id = id, .align_ms = t->snap_align_ms};
    s_write_delay(t, id);
    char err[1024];
    for (int i = 0; i < t->nops; i++) {
        sl_snap_defer_t *d = &t->snap_defer[i];
        if (!d->run)
            continue;
        err[0] = 0;
        int rc = a.declined[0] || atomic_load(t->env.cancel)
                     ? SL_CANCELED
                     : d->run(d->arg, &t->snap_op[i], err, sizeof err);
        if (rc && !a.declined[0])
            snprintf(a.declined, sizeof a.declined, "operator '%s' cannot snapshot: %s",
                     t->ops[i].node->name, err[0] ? err : sl_strerror(rc));
        d->free(d->arg);
        *d = (sl_snap_defer_t){0};
    }
    /* the stream: magic, version, nops, then per op its name and bytes */
    struct iovec *iov = calloc((size_t)t->nops * 2, sizeof *iov);
    if (!iov && !a.declined[0])
        snprintf(a.declined, sizeof a.declined, "snapshot: %s", sl_strerror(SL_NOMEM));
    struct sha256_ctx sha;
    sha256_init(&sha);
    size_t size = 0;
    for (int i = 0; i < t->nops && !a.declined[0]; i++) {
        sl_snap_w_t *pre = &t->snap_pre[i];
        pre->len = 0;
        pre->err = 0;
        if (i == 0) {
            sl_snap_u32(pre, S_SNAP_MAGIC);
            sl_snap_u32(pre, S_SNAP_VERSION);
            sl_snap_u32(pre, (uint32_t)t->nops);
        }
        const char *name = t->ops[i].node->name;
        sl_snap_bytes(pre, name, strlen(name));
        sl_snap_u32(pre, (uint32_t)t->snap_op[i].len); /* as sl_snap_bytes frames it */
        if (pre->err || t->snap_op[i].err || t->snap_op[i].len > UINT32_MAX) {
            snprintf(a.declined, sizeof a.declined, "snapshot: %s",
                     sl_strerror(pre->err ? pre->err : SL_NOMEM));
            break;
        }
        iov[2 * i] = (struct iovec){pre->data, pre->len};
        iov[2 * i + 1] = (struct iovec){t->snap_op[i].data, t->snap_op[i].len};
        for (int k = 0; k < 2; k++) {
            sha256_update(&sha, iov[2 * i + k].iov_len, iov[2 * i + k].iov_base);
            size += iov[2 * i + k].iov_len;
        }
    }
    if (!a.declined[0] && atomic_load(t->env.cancel))
        snprintf(a.declined, sizeof a.declined, "snapshot: the task was canceled");
    if (!a.declined[0]) {
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s/chk-%llu", t->env.ckpt_dir, (unsigned long long)id);
        snprintf(a.file, sizeof a.file, "task-%d-%d.state", t->env.chain, t->env.subtask);
        snprintf(path, sizeof path, "%s/%s", dir, a.file);
        sl_failpoint("state-before-write");
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            snprintf(a.declined, sizeof a.declined, "cannot create %s: %s", dir, strerror(errno));
        else if (sl_fs_write_atomic_iov(path, iov, t->nops * 2, "state") != SL_OK)
            snprintf(a.declined, sizeof a.declined, "cannot write %s: %s", path,
                     errno ? strerror(errno) : "I/O error");
        a.size = size;
        uint8_t digest[SHA256_DIGEST_SIZE];
        sha256_digest(&sha, sizeof digest, digest);
        for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
            snprintf(a.sha256 + 2 * i, 3, "%02x", digest[i]);
    }
    free(iov);
    sl_failpoint("task-before-ack");
    s_publish_ack(t, &a);
    return NULL;
}

/* Waits for the asynchronous phase of the snapshot in flight, if any. */
static void s_snap_join(sl_task_t *t)
{
    if (t->snap_thread)
        pthread_join(t->snap_th, NULL);
    t->snap_thread = false;
    t->snap_id = 0;
}

/* Allocates the per-op snapshot buffers at the first snapshot. */
static int s_snap_bufs(sl_task_t *t)
{
    if (t->snap_op)
        return SL_OK;
    t->snap_op = calloc((size_t)t->nops, sizeof *t->snap_op);
    t->snap_pre = calloc((size_t)t->nops, sizeof *t->snap_pre);
    t->snap_defer = calloc((size_t)t->nops, sizeof *t->snap_defer);
    return t->snap_op && t->snap_pre && t->snap_defer ? SL_OK : SL_NOMEM;
}

/* Takes the chain's snapshot for checkpoint id. The synchronous phase,
 * here on the task's thread, is the operators' snapshot calls: each
 * serializes its state (a RocksDB store: writes back, flushes and freezes
 * its file set as hard links). The rest (copying files, writing the state
 * file, fsync, sha256, the ack) runs on a thread of its own (s_snap_main)
 * while the task goes on; the previous one is joined first. A snapshot
 * that cannot be taken or written declines the checkpoint (the master
 * aborts it) and the task goes on. */
static void s_write_snapshot(sl_task_t *t, uint64_t id)
{
    s_snap_join(t);
    sl_task_ack_t a = {.id = id, .align_ms = t->align_ms};
    t->align_ms = 0;
    if (s_snap_bufs(t) != SL_OK)
        snprintf(a.declined, sizeof a.declined, "snapshot: %s", sl_strerror(SL_NOMEM));
    for (int i = 0; i < t->nops && !a.declined[0]; i++) {
        sl_opctx_t *c = &t->ops[i];
        sl_snap_w_t *op = &t->snap_op[i];
        op->len = 0;
        op->err = 0;
        c->checkpoint_id = id;
        c->snap_async = true;
        c->snap_defer = (sl_snap_defer_t){0};
        int rc = t->vt[i]->snapshot ? t->vt[i]->snapshot(c, op) : SL_INVAL;
        c->snap_async = false;
        t->snap_defer[i] = c->snap_defer;
        c->snap_defer = (sl_snap_defer_t){0};
        if (rc || op->err)
            snprintf(a.declined, sizeof a.declined, "operator '%s' cannot snapshot: %s",
                     c->node->name,
                     !t->vt[i]->snapshot ? "its type does not support checkpoints"
                     : c->err[0]         ? c->err
                                         : sl_strerror(rc ? rc : op->err));
    }
    /* a test's decline of this checkpoint, right after the ack of the one
     * before it (its asynchronous phase was joined above) */
    if (!a.declined[0] && sl_failpoint_error("task-decline"))
        snprintf(a.declined, sizeof a.declined, "failpoint task-decline");
    /* an op's buffer far larger than its last snapshot is given back */
    for (int i = 0; t->snap_op && i < t->nops; i++)
        if (t->snap_op[i].cap > (64u << 10) && t->snap_op[i].len < t->snap_op[i].cap / 8)
            sl_snap_w_free(&t->snap_op[i]);
    if (a.declined[0]) {
        for (int i = 0; t->snap_defer && i < t->nops; i++)
            if (t->snap_defer[i].free) {
                t->snap_defer[i].free(t->snap_defer[i].arg);
                t->snap_defer[i] = (sl_snap_defer_t){0};
            }
        sl_failpoint("task-before-ack");
        s_publish_ack(t, &a);
        return;
    }
    t->snap_id = id;
    t->snap_align_ms = a.align_ms;
    if (pthread_create(&t->snap_th, NULL, s_snap_main, t) == 0)
        t->snap_thread = true;
    else
        s_snap_main(t); /* no thread: the task writes it itself */
}

/* Checkpoint id at this point of the stream: everything before it goes
 * downstream, then the barrier, then the snapshot is written. */
static int s_checkpoint(sl_task_t *t, uint64_t id)
{
    int rc = s_flush_chain(t, 0);
    for (int k = 0; k < t->nout && rc == SL_OK; k++)
        rc = sl_outgate_barrier(t->out[k].gate, id);
    if (rc)
        return rc;
    s_write_snapshot(t, id);
    return SL_OK;
}

/* Completions (and, for a source, a trigger) waiting for this task. */
static int s_control(sl_task_t *t)
{
    if (!atomic_exchange(&t->ctl, 0))
        return SL_OK;
    bool stop = atomic_exchange(&t->trigger_stop, false);
    uint64_t id = atomic_exchange(&t->trigger_id, 0);
    int rc = id && t->env.ckpt_dir ? s_checkpoint(t, id) : SL_OK;
    if (rc == SL_OK && id && t->env.ckpt_dir)
        t->parked = stop ? id : 0; /* a later checkpoint (the savepoint failed) resumes */
    uint64_t done = atomic_load(&t->complete_id);
    if (rc == SL_OK && done > t->completed_seen) {
        t->completed_seen = done;
        for (int i = 0; i < t->nops && rc == SL_OK; i++)
            if (t->vt[i]->complete && (rc = t->vt[i]->complete(&t->ops[i], done)) != SL_OK)
                return s_chain_error_at(t, i, rc);
        if (sl_failpoint_error("task-fail-after-complete")) { /* a task failure, worker lives */
            snprintf(t->err, sizeof t->err, "failpoint task-fail-after-complete (checkpoint %llu)",
                     (unsigned long long)done);
            return SL_IO;
        }
    }
    return rc;
}

/* A source's barrier hook. After the barrier of a stop-with-savepoint the
 * source emits nothing more: it waits here (watching cancel, completions
 * and triggers) until the master, the savepoint complete, ends the job, or
 * the savepoint fails and the next checkpoint's trigger lets it go on. */
static int s_source_control(void *arg)
{
    sl_task_t *t = arg;
    int rc = s_control(t);
    while (rc == SL_OK && t->parked) {
        if (atomic_load(t->env.cancel))
            return SL_CANCELED;
        struct timespec step = {0, 5 * 1000 * 1000};
        nanosleep(&step, NULL);
        rc = s_control(t);
    }
    return rc;
}

void sl_task_trigger(sl_task_t *t, uint64_t id, bool stop)
{
    atomic_store(&t->trigger_stop, stop);
    atomic_store(&t->trigger_id, id);
    atomic_store(&t->ctl, 1);
}

void sl_task_notify_complete(sl_task_t *t, uint64_t id)
{
    if (id > atomic_load(&t->complete_id))
        atomic_store(&t->complete_id, id);
    atomic_store(&t->ctl, 1);
}

bool sl_task_poll_ack(sl_task_t *t, sl_task_ack_t *out)
{
    return sl_ackq_pop(t->acks, out);
}

static bool s_keyed(const sl_plan_node_t *nd)
{
    return nd->kind == SL_OP_AGGREGATE || nd->kind == SL_OP_WINDOW || nd->kind == SL_OP_JOIN ||
           nd->kind == SL_OP_PROCESS;
}

/* A source whose position is per split, not per subtask (Kafka: an offset
 * per partition): like a keyed operator it takes every old subtask's
 * section on a rescale and keeps the splits it owns now. */
static bool s_split_source(const sl_plan_node_t *nd)
{
    return nd->kind == SL_OP_KAFKA_SOURCE;
}

/* Restores the chain's operators from the state files given: each section
 * goes to the operator of its name. A keyed operator takes every section of
 * its name (it keeps the key groups it owns: a rescale gives it every old
 * subtask's), and so does a source with a position per split (Kafka: it
 * keeps the partitions it owns); any other operator takes the one of the
 * old subtask with its own index, which must exist unless the operator
 * keeps no state. */
static int s_restore(sl_task_t *t)
{
    bool *done = calloc((size_t)t->nops + 1, sizeof *done);
    int *seen = calloc((size_t)t->nops + 1, sizeof *seen); /* files with a section of op i */
    if (!done || !seen) {
        free(done);
        free(seen);
        return SL_NOMEM;
    }
    int rc = SL_OK;
    for (int f = 0; f < t->env.nrestores && rc == SL_OK; f++) {
        const sl_task_restore_t *rs = &t->env.restores[f];
        sl_snap_r_t r;
        sl_snap_r_init(&r, rs->data, rs->len);
        uint32_t magic = sl_snap_get_u32(&r), version = sl_snap_get_u32(&r),
                 nops = sl_snap_get_u32(&r);
        if (r.err || magic != S_SNAP_MAGIC || version != S_SNAP_VERSION || nops > 4096) {
            snprintf(t->err, sizeof t->err,
                     "state for subtask %d.%d is not a snapshot (magic %08x, version %u)",
                     t->env.chain, t->env.subtask, magic, version);
            rc = SL_DATA;
            break;
        }
        for (uint32_t k = 0; k < nops && rc == SL_OK; k++) {
            size_t nlen, slen;
            const uint8_t *name = sl_snap_get_bytes(&r, &nlen);
            const uint8_t *state = sl_snap_get_bytes(&r, &slen);
            if (r.err) {
                snprintf(t->err, sizeof t->err, "state for subtask %d.%d is truncated",
                         t->env.chain, t->env.subtask);
                rc = SL_DATA;
                break;
            }
            int i = -1;
            for (int q = 0; q < t->nops && i < 0; q++)
                if (strlen(t->ops[q].node->name) == nlen &&
                    memcmp(t->ops[q].node->name, name, nlen) == 0)
                    i = q;
            if (i < 0 && !t->env.rescale) {
                /* the master restores by subtask only when the chains are
                 * the same; never start an operator empty for this */
                snprintf(t->err, sizeof t->err,
                         "state for subtask %d.%d holds operator '%.*s', which this task "
                         "does not run (the checkpoint chained the operators otherwise)",
                         t->env.chain, t->env.subtask, (int)(nlen > 64 ? 64 : nlen), name);
                rc = SL_STATE;
                break;
            }
            if (i < 0)
                continue; /* another chain's operator (a rescale, or the job was rechained) */
            seen[i]++;
            bool keyed = s_keyed(t->ops[i].node) || s_split_source(t->ops[i].node);
            if (!keyed && (rs->subtask != t->env.subtask || slen == 0))
                continue;
            sl_snap_r_t sub;
            sl_snap_r_init(&sub, state, slen);
            int orc = t->vt[i]->restore ? t->vt[i]->restore(&t->ops[i], &sub) : slen ? SL_DATA : 0;
            if (orc == SL_OK && (sub.err || sub.left))
                orc = SL_DATA;
            if (orc) {
                snprintf(t->err, sizeof t->err, "restoring operator '%s': %s", t->ops[i].node->name,
                         t->ops[i].err[0] ? t->ops[i].err : sl_strerror(orc));
                rc = orc;
            }
            done[i] = true;
        }
        if (rc == SL_OK && r.left) {
            snprintf(t->err, sizeof t->err, "state for subtask %d.%d has %zu trailing bytes",
                     t->env.chain, t->env.subtask, r.left);
            rc = SL_DATA;
        }
    }
    /* A stateful operator that is not keyed cannot be split or merged. */
    for (int i = 0; rc == SL_OK && t->env.rescale && i < t->nops; i++)
        if (seen[i] && t->ops[i].node->role == SL_ROLE_SOURCE && !s_split_source(t->ops[i].node) &&
            seen[i] != t->chain->parallelism) {
            snprintf(t->err, sizeof t->err,
                     "operator '%s' keeps a position per subtask: it cannot change its "
                     "parallelism from %d to %d (keep the source's parallelism fixed with "
                     "its own `parallelism:`)",
                     t->ops[i].node->name, seen[i], t->chain->parallelism);
            rc = SL_STATE;
        }
    free(done);
    free(seen);
    return rc;
}

/* A source waits with nothing to emit: past its idle timeout, downstream
 * stops waiting for its watermark (until it emits again). */
static int s_source_idle(void *arg)
{
    sl_task_t *t = arg;
    const sl_plan_node_t *nd = t->ops[0].node;
    int rc = s_flush_chain(t, 1);
    if (rc == SL_OK && t->src_wm && s_source_wm(t) > t->wm) {
        /* a watermark the interval held back goes out while waiting */
        uint64_t now = s_now_ns();
        if (now - t->src_wm_ns >= (uint64_t)nd->wm_interval * 1000000ull) {
            t->src_wm_ns = now;
            rc = s_advance(t, 1, s_source_wm(t));
        }
    }
    if (rc || !t->src_wm || !nd->wm_idle || t->idle_out)
        return rc;
    if (s_now_ns() - t->src_last_ns < (uint64_t)nd->wm_idle * 1000000ull)
        return SL_OK;
    for (int k = 0; k < t->nout && rc == SL_OK; k++)
        rc = sl_outgate_watermark(t->out[k].gate, t->wm, true);
    t->idle_out = true;
    return rc;
}

/* A source's lag report (sl_op_source_lag), read by sl_task_metrics. */
static void s_source_lag(void *arg, int64_t lag, const char *detail)
{
    sl_task_t *t = arg;
    pthread_mutex_lock(&t->ack_lock);
    t->has_lag = true;
    t->lag = lag;
    snprintf(t->lag_detail, sizeof t->lag_detail, "%s", detail ? detail : "");
    pthread_mutex_unlock(&t->ack_lock);
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
        c->attempt = t->env.attempt;
        c->in = nd->ninputs ? sl_plan_input_schema(p, nd, 0) : NULL;
        c->cancel = t->env.cancel;
        c->arena = sl_arena_new(64 * 1024);
        c->watermark = SL_WM_MIN;
        c->state_dir = t->env.state_dir;
        c->ckpt_dir = t->env.ckpt_dir;
        c->restore_dir = t->env.restore_dir;
        c->local_dir = t->env.local_dir;
        for (int port = 0; port < 2; port++) {
            s_link_t *l = &links[2 * i + port];
            *l = (s_link_t){.t = t, .from = i, .port = port};
            /* chained consumers of op i (only of its output: a side output
             * is never chained), in chain order */
            for (int j = i + 1; j < t->nops; j++) {
                const sl_plan_node_t *cn = &p->nodes[t->chain->nodes[j]];
                for (int k = 0; k < cn->ninputs; k++) {
                    if (cn->inputs[k] != nd->id || cn->input_ports[k] != port)
                        continue;
                    s_dest_t *d = realloc(l->dest, (size_t)(l->ndest + 1) * sizeof *d);
                    if (!d)
                        return SL_NOMEM;
                    l->dest = d;
                    l->dest[l->ndest++] = (s_dest_t){.op = j, .input = k};
                }
            }
        }
        if (nd->side_out) {
            c->side.batch = sl_batch_new(t->env.batch_bytes);
            c->side.schema = nd->side_out;
            c->side.flush = s_flush_to;
            c->side.target = &links[2 * i + 1];
            if (!c->side.batch)
                return SL_NOMEM;
        }
        if (i == 0 && nd->role == SL_ROLE_SOURCE) {
            c->idle_hook = s_source_idle;
            c->barrier_hook = s_source_control;
            c->lag_hook = s_source_lag;
            c->source_wm = SL_WM_MIN;
            c->barrier_pending = &t->ctl;
            c->idle_arg = t;
            t->src_wm = nd->watermarks && nd->rowtime >= 0;
            t->src_max = SL_WM_MIN;
            t->src_last_ns = s_now_ns();
        }
        if (nd->out) {
            c->out.batch = sl_batch_new(t->env.batch_bytes);
            c->out.schema = i == 0 && nd->role == SL_ROLE_SOURCE
                                ? sl_plan_emit_schema(t->env.plan, nd)
                                : nd->out;
            c->out.flush = s_flush_to;
            c->out.target = &links[2 * i];
            if (!c->out.batch)
                return SL_NOMEM;
        }
        if (!c->arena)
            return SL_NOMEM;
        t->vt[i] = sl_op_vtable(nd);
        t->has_tick = t->has_tick || t->vt[i]->tick;
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
    t->ch_base = calloc((size_t)head->ninputs + 1, sizeof *t->ch_base);
    if (!t->ch_base)
        return SL_NOMEM;
    for (int k = 0; k < head->ninputs; k++) {
        t->ch_base[k] = expected;
        expected += head->part[k] == SL_PART_FORWARD ? 1 : p->nodes[head->inputs[k]].parallelism;
    }
    t->ch_base[head->ninputs] = expected;
    t->nch = expected;
    t->ch_wm = malloc((size_t)expected * sizeof *t->ch_wm);
    t->ch_state = calloc((size_t)expected, 1);
    t->ch_barrier = calloc((size_t)expected, sizeof *t->ch_barrier);
    if (!t->ch_wm || !t->ch_state || !t->ch_barrier)
        return SL_NOMEM;
    for (int i = 0; i < expected; i++)
        t->ch_wm[i] = SL_WM_MIN;
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

int sl_task_bind_local(sl_task_t *t, const char *endpoint)
{
    return t->in ? sl_ingate_bind(t->in, endpoint, t->err, sizeof t->err) : SL_OK;
}

/* ---- running -------------------------------------------------------------------- */

/* Finds which op failed: the first with an error message, else op 0. */
static int s_chain_error(sl_task_t *t, int rc)
{
    for (int i = 0; i < t->nops; i++)
        if (t->ops[i].err[0])
            return s_chain_error_at(t, i, rc);
    return s_chain_error_at(t, 0, rc);
}

static int s_finish(sl_task_t *t)
{
    for (int i = 0; i < t->nops; i++) {
        uint64_t t0 = s_now_ns();
        int rc = t->vt[i]->finish(&t->ops[i]);
        if (rc == SL_OK && t->ops[i].out.batch)
            rc = sl_emit_flush(&t->ops[i].out);
        if (rc == SL_OK && t->ops[i].side.batch)
            rc = sl_emit_flush(&t->ops[i].side);
        atomic_fetch_add_explicit(&t->ops[i].busy_ns, s_now_ns() - t0, memory_order_relaxed);
        if (rc)
            return s_chain_error(t, rc);
    }
    int frc = s_flush_chain(t, t->nops);
    if (frc)
        return frc;
    for (int k = 0; k < t->nout; k++) {
        s_output_t *o = &t->out[k];
        int rc = sl_outgate_finish(o->gate);
        if (rc) {
            snprintf(t->err, sizeof t->err, "ending a data channel failed: %s", sl_strerror(rc));
            return rc;
        }
    }
    return SL_OK;
}

/* The combined watermark of the in-gate: the least of the active
 * channels'; SL_WM_MAX when all ended; *all_idle when none is active and
 * some is idle. */
static int64_t s_combined(const sl_task_t *t, bool *all_idle)
{
    int64_t m = SL_WM_MAX;
    int active = 0, idle = 0;
    for (int i = 0; i < t->nch; i++) {
        if (t->ch_state[i] == S_CH_ACTIVE) {
            active++;
            if (t->ch_wm[i] < m)
                m = t->ch_wm[i];
        } else if (t->ch_state[i] == S_CH_IDLE)
            idle++;
    }
    *all_idle = active == 0 && idle > 0;
    return m;
}

/* A watermark, idleness or end of input changed channel ch. */
static int s_channel_time(sl_task_t *t, int ch)
{
    (void)ch;
    bool all_idle;
    int64_t m = s_combined(t, &all_idle);
    if (all_idle) {
        if (t->idle_out)
            return SL_OK;
        int rc = s_flush_chain(t, 0);
        for (int k = 0; k < t->nout && rc == SL_OK; k++)
            rc = sl_outgate_watermark(t->out[k].gate, t->wm, true);
        t->idle_out = true;
        return rc;
    }
    if (m > t->wm || t->idle_out)
        return s_advance(t, 0, m);
    return SL_OK;
}

/* Index of the channel of an event, or -1 when it names none. */
static int s_channel(const sl_task_t *t, const sl_inbatch_t *in)
{
    const sl_plan_node_t *head = &t->env.plan->nodes[t->chain->nodes[0]];
    if (in->input >= head->ninputs)
        return -1;
    int base = t->ch_base[in->input], n = t->ch_base[in->input + 1] - base;
    int s = head->part[in->input] == SL_PART_FORWARD ? 0 : (int)in->sender;
    return s < n ? base + s : -1;
}

static int s_tick(sl_task_t *t)
{
    int64_t now = sl_op_now_ms();
    int rc = SL_OK;
    for (int i = 0; i < t->nops && rc == SL_OK; i++)
        if (t->vt[i]->tick) {
            rc = t->vt[i]->tick(&t->ops[i], now);
            sl_arena_reset(t->ops[i].arena);
            if (rc)
                return s_chain_error_at(t, i, rc);
        }
    return rc == SL_OK ? s_flush_chain(t, 0) : rc;
}

static bool s_blocked(const sl_task_t *t, int ch)
{
    return t->align_id && t->ch_barrier[ch];
}

static void s_hold(sl_task_t *t, s_held_t *h)
{
    h->next = NULL;
    *t->held_tail = h;
    t->held_tail = &h->next;
}

/* Keeps an event of a blocked channel (a batch keeps its message). */
static int s_hold_event(sl_task_t *t, sl_inbatch_t *in, int ch)
{
    s_held_t *h = calloc(1, sizeof *h);
    if (!h) {
        if (in->kind == SL_FRAME_BATCH)
            sl_ingate_release(t->in, in);
        return SL_NOMEM;
    }
    h->ch = ch;
    sl_inbatch_move(&h->in, in);
    s_hold(t, h);
    return SL_OK;
}

static void s_drop_held(sl_task_t *t)
{
    while (t->held) {
        s_held_t *h = t->held;
        t->held = h->next;
        if (h->in.kind == SL_FRAME_BATCH)
            sl_ingate_release(t->in, &h->in);
        free(h);
    }
    t->held_tail = &t->held;
}

static int s_event(sl_task_t *t, sl_inbatch_t *in, int ch, bool *pending);

/* After an alignment: the held events, in arrival order (a channel that a
 * later barrier blocks again is held again). */
static int s_replay(sl_task_t *t, bool *pending)
{
    s_held_t *h = t->held;
    t->held = NULL;
    t->held_tail = &t->held;
    int rc = SL_OK;
    while (h) {
        s_held_t *next = h->next;
        if (rc == SL_OK && s_blocked(t, h->ch)) {
            s_hold(t, h);
            h = next;
            continue;
        }
        if (rc == SL_OK)
            rc = s_event(t, &h->in, h->ch, pending);
        else if (h->in.kind == SL_FRAME_BATCH)
            sl_ingate_release(t->in, &h->in);
        free(h);
        h = next;
    }
    return rc;
}

/* Has every channel delivered the barrier being aligned (or ended)? */
static int s_check_aligned(sl_task_t *t, bool *pending)
{
    if (!t->align_id)
        return SL_OK;
    for (int i = 0; i < t->nch; i++)
        if (!t->ch_barrier[i] && t->ch_state[i] != S_CH_ENDED)
            return SL_OK;
    uint64_t id = t->align_id;
    t->align_id = 0;
    t->align_ms = (s_now_ns() - t->align_t0) / 1000000ull;
    memset(t->ch_barrier, 0, (size_t)t->nch * sizeof *t->ch_barrier);
    int rc = t->env.ckpt_dir ? s_checkpoint(t, id) : SL_OK;
    return rc == SL_OK ? s_replay(t, pending) : rc;
}

/* One event of the in-gate, from an unblocked channel. */
static int s_event(sl_task_t *t, sl_inbatch_t *in, int ch, bool *pending)
{
    const sl_plan_node_t *head = &t->env.plan->nodes[t->chain->nodes[0]];
    switch (in->kind) {
    case SL_FRAME_WATERMARK:
        t->ch_state[ch] = in->idle ? S_CH_IDLE : S_CH_ACTIVE;
        if (in->wm > t->ch_wm[ch])
            t->ch_wm[ch] = in->wm;
        return s_channel_time(t, ch);
    case SL_FRAME_EOI: {
        t->ch_state[ch] = S_CH_ENDED;
        t->ch_wm[ch] = SL_WM_MAX;
        int rc = s_check_aligned(t, pending);
        return rc == SL_OK ? s_channel_time(t, ch) : rc;
    }
    case SL_FRAME_BARRIER:
        if (in->barrier < t->align_id)
            return SL_OK; /* of a checkpoint given up */
        if (in->barrier > t->align_id) {
            /* a newer checkpoint: the older one was given up; its held
             * events come first */
            t->align_id = 0;
            memset(t->ch_barrier, 0, (size_t)t->nch * sizeof *t->ch_barrier);
            int rc = s_replay(t, pending);
            if (rc)
                return rc;
            t->align_id = in->barrier;
            t->align_t0 = s_now_ns();
        }
        t->ch_barrier[ch] = true;
        return s_check_aligned(t, pending);
    default:
        break;
    }
    /* Validate before use: a batch is untrusted input. */
    if (sl_batch_check(sl_plan_input_schema(t->env.plan, head, in->input), in->data, in->len,
                       in->count) != SL_OK) {
        sl_ingate_release(t->in, in);
        snprintf(t->err, sizeof t->err, "malformed batch from upstream subtask %u",
                 (unsigned)in->sender);
        return SL_DATA;
    }
    if (t->ch_state[ch] == S_CH_IDLE)
        t->ch_state[ch] = S_CH_ACTIVE; /* holds the watermark back again */
    sl_batch_t view = {.data = (uint8_t *)in->data, .len = in->len, .count = in->count};
    int rc = s_process(t, 0, &view, in->input, -1);
    sl_ingate_release(t->in, in);
    if (rc)
        return s_chain_error(t, rc);
    *pending = true;
    return SL_OK;
}

/* The loop of a chain with inputs. */
static int s_run_inputs(sl_task_t *t)
{
    bool pending = false; /* records may sit in emitters or buffers */
    uint64_t next_tick = s_now_ns();
    for (;;) {
        int rc = s_control(t);
        if (rc)
            return rc;
        sl_inbatch_t in;
        int wait = pending ? 0 : t->has_tick ? S_TICK_MS : 50;
        int got = sl_ingate_poll(t->in, &in, wait, t->err, sizeof t->err);
        if (got == SL_TIMEOUT) {
            rc = pending ? s_flush_chain(t, 0) : SL_OK;
            pending = false;
            if (rc == SL_OK && t->has_tick && s_now_ns() >= next_tick) {
                rc = s_tick(t);
                next_tick = s_now_ns() + S_TICK_MS * 1000000ull;
            }
            if (rc)
                return rc;
            continue;
        }
        if (got <= 0)
            return got; /* 0: every sender ended */
        int ch = s_channel(t, &in);
        if (ch < 0) {
            if (in.kind == SL_FRAME_BATCH)
                sl_ingate_release(t->in, &in);
            snprintf(t->err, sizeof t->err, "data frame for unknown input %u from subtask %u",
                     (unsigned)in.input, (unsigned)in.sender);
            return SL_DATA;
        }
        rc = s_blocked(t, ch) ? s_hold_event(t, &in, ch) : s_event(t, &in, ch, &pending);
        if (rc)
            return rc;
        if (t->has_tick && s_now_ns() >= next_tick) {
            if ((rc = s_tick(t)) != SL_OK)
                return rc;
            next_tick = s_now_ns() + S_TICK_MS * 1000000ull;
        }
    }
}

/* A subtask restored as finished: it had ended before the checkpoint, so
 * it only passes end of input on (its inputs have ended too). */
static int s_run_finished(sl_task_t *t)
{
    if (t->in)
        for (;;) {
            sl_inbatch_t in;
            int got = sl_ingate_poll(t->in, &in, -1, t->err, sizeof t->err);
            if (got <= 0 && got != SL_TIMEOUT) {
                if (got)
                    return got;
                break;
            }
            if (got == 1 && in.kind == SL_FRAME_BATCH)
                sl_ingate_release(t->in, &in); /* cannot happen: they had ended */
        }
    for (int k = 0; k < t->nout; k++) {
        int rc = sl_outgate_finish(t->out[k].gate);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* Ends the emitters' links (they go with this call). */
static void s_unlink(sl_task_t *t, s_link_t *links)
{
    for (int i = 0; i < 2 * t->nops; i++)
        free(links[i].dest);
    free(links);
    for (int i = 0; i < t->nops; i++) {
        t->ops[i].out.target = NULL;
        t->ops[i].side.target = NULL;
    }
}

int sl_task_run(sl_task_t *t)
{
    s_link_t *links = calloc((size_t)t->nops * 2, sizeof *links);
    if (!links)
        return SL_NOMEM;
    atomic_store(&t->wm_pub, SL_WM_MIN);
    t->wm = SL_WM_MIN;
    int rc = s_open(t, links);
    if (rc == SL_OK && t->env.restore_finished) {
        rc = s_run_finished(t);
        s_unlink(t, links);
        return rc;
    }
    if (rc == SL_OK && t->env.nrestores) {
        /* wall and CPU time (this thread's and the operators' restore
         * threads'): on a loaded machine they differ a lot */
        struct timespec c0, c1, now;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        uint64_t r0 = s_now_ns();
        rc = s_restore(t);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        uint64_t helpers = 0; /* the operators' restore threads */
        for (int i = 0; i < t->nops; i++)
            helpers += atomic_load_explicit(&t->ops[i].restore_cpu_ns, memory_order_relaxed);
        clock_gettime(CLOCK_REALTIME, &now);
        if (rc == SL_OK)
            fprintf(stderr,
                    "sluice-worker: task %d.%d: state restored in %.0f ms, %.0f ms CPU (at "
                    "%lld.%03ld)\n",
                    t->env.chain, t->env.subtask, (double)(s_now_ns() - r0) / 1e6,
                    (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                        (double)(c1.tv_nsec - c0.tv_nsec) / 1e6 + (double)helpers / 1e6,
                    (long long)now.tv_sec, now.tv_nsec / 1000000);
    }
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
        else
            rc = s_advance(t, 1, SL_WM_MAX); /* end of input: the final watermark */
    } else if (rc == SL_OK) {
        rc = s_run_inputs(t);
        if (rc == SL_OK && t->wm != SL_WM_MAX)
            rc = s_advance(t, 0, SL_WM_MAX);
    }
    if (rc == SL_OK)
        rc = s_finish(t);
    s_unlink(t, links);
    return rc;
}

int64_t sl_task_watermark(const sl_task_t *t)
{
    return atomic_load_explicit(&t->wm_pub, memory_order_relaxed);
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
     * records it skipped are counted in errors), unless it counts what it
     * read itself (a nexmark source applying a fused filter or map: the
     * events it generated). */
    m->records_in = atomic_load_explicit(&c->records_in, memory_order_relaxed);
    if (nd->role == SL_ROLE_SOURCE && nd->fused_filter < 0 && nd->fused_map < 0)
        m->records_in = m->records_out;
    m->busy_ns = atomic_load_explicit(&c->busy_ns, memory_order_relaxed);
    m->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    m->late = atomic_load_explicit(&c->records_late, memory_order_relaxed);
    m->restored_local = atomic_load_explicit(&c->restored_local, memory_order_relaxed);
    m->restored_remote = atomic_load_explicit(&c->restored_remote, memory_order_relaxed);
    m->restore_ns = atomic_load_explicit(&c->restore_ns, memory_order_relaxed);
    m->backpressure_ns = 0; /* the credit waits of op i's own edges */
    for (int k = 0; k < t->nout; k++)
        if (t->out[k].from == i && t->out[k].gate)
            m->backpressure_ns += sl_outgate_blocked_ns(t->out[k].gate);
    m->has_lag = false;
    m->lag = 0;
    m->lag_detail[0] = 0;
    if (i == 0 && nd->role == SL_ROLE_SOURCE) {
        sl_task_t *mt = (sl_task_t *)t; /* the lock only */
        pthread_mutex_lock(&mt->ack_lock);
        m->has_lag = t->has_lag;
        m->lag = t->lag;
        snprintf(m->lag_detail, sizeof m->lag_detail, "%s", t->lag_detail);
        pthread_mutex_unlock(&mt->ack_lock);
    }
}

void sl_task_close(sl_task_t *t)
{
    if (!t)
        return;
    s_snap_join(t); /* its ack goes out before the task's end; it uses the ops */
    for (int i = 0; i < t->opened; i++)
        t->vt[i]->close(&t->ops[i]);
    t->opened = 0;
}

void sl_task_destroy(sl_task_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_task_t *t = *pp;
    sl_task_close(t);
    for (int i = 0; t->ops && i < t->nops; i++) {
        sl_batch_destroy(&t->ops[i].out.batch);
        sl_batch_destroy(&t->ops[i].side.batch);
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
    free(t->ch_base);
    free(t->ch_wm);
    free(t->ch_state);
    if (t->in)
        s_drop_held(t);
    free(t->ch_barrier);
    sl_batch_destroy(&t->ts_batch);
    free(t->ts_vals);
    for (int i = 0; t->snap_op && i < t->nops; i++) {
        sl_snap_w_free(&t->snap_op[i]);
        sl_snap_w_free(&t->snap_pre[i]);
    }
    free(t->snap_op);
    free(t->snap_pre);
    free(t->snap_defer);
    pthread_mutex_destroy(&t->ack_lock);
    sl_ackq_destroy(&t->acks);
    sl_ingate_destroy(&t->in);
    free(t->ops);
    free(t->vt);
    free(t->nested_ns);
    free(t);
    *pp = NULL;
}
