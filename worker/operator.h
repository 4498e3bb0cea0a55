/* operator.h — the node interface every operator implements.
 *
 * A task runs a chain of operators; each operator instance gets an
 * sl_opctx_t with the immutable plan node, its own mutable state and an
 * emitter that hands full batches to the next operator in the chain (or to
 * the task's out-gates). Records cross operator boundaries in batches; no
 * operator mallocs per record: scratch memory comes from ctx->arena, which
 * the task resets after each input batch.
 *
 * Lifecycle: open -> (run_source | process*) -> finish -> close. finish is
 * called once at end of input and must emit everything still held (final
 * aggregates) or publish output (sinks); close frees, and for a sink that
 * did not finish, discards its output.
 *
 * Time (docs/time.md): the task calls watermark(wm) when the watermark of
 * the operator's input advances (never backwards; SL_WM_MAX at end of
 * input, before finish), after every record sent before that watermark has
 * been processed; what the operator emits there goes downstream before the
 * watermark does. tick(now_ms) is called every few milliseconds of wall
 * clock for operators on processing time. Both are optional. */
#ifndef SLUICE_OPERATOR_H
#define SLUICE_OPERATOR_H
#include <stdatomic.h>
#include <stdint.h>

#include "sluice/arena.h"
#include "sluice/plan.h"
#include "sluice/row.h"
#include "sluice/snap.h"

typedef struct sl_emitter sl_emitter_t;
/* Downstream of an emitter: consumes a full batch (and may clear it). */
typedef int (*sl_flush_fn)(void *target, sl_batch_t *b);

struct sl_emitter {
    sl_batch_t *batch;         /* private: rows waiting to be flushed */
    const sl_schema_t *schema; /* schema of emitted rows */
    sl_flush_fn flush;         /* private */
    void *target;              /* private */
    uint64_t records;          /* public read-only: rows emitted */
};

/* Appends a row (encoded from vals); flushes downstream when full. */
int sl_emit(sl_emitter_t *e, const sl_value_t *vals);
/* Appends an already-encoded row of the emitter's schema. */
int sl_emit_raw(sl_emitter_t *e, const uint8_t *row, uint32_t len);
/* Hands any buffered rows downstream. */
int sl_emit_flush(sl_emitter_t *e);

/* The part of an operator's snapshot left to the task's snapshot thread
 * (copying files into checkpoint storage): run appends the rest of the
 * operator's snapshot bytes to w, or fails with a message in err; free
 * releases arg, run or not. The operator keeps every object run uses
 * (its store) alive until the task's sl_task_close. */
typedef struct {
    int (*run)(void *arg, sl_snap_w_t *w, char *err, size_t cap);
    void (*free)(void *arg);
    void *arg;
} sl_snap_defer_t;

typedef struct sl_opctx {
    const sl_plan_t *plan;
    const sl_plan_node_t *node;
    int subtask, parallelism;
    uint32_t attempt;          /* the job's execution attempt (restarts count up), 0 = unknown */
    uint64_t checkpoint_id;    /* during snapshot: the checkpoint being taken */
    const sl_schema_t *in;     /* input schema (NULL for sources) */
    sl_emitter_t out;          /* where results go (unused by sinks) */
    sl_emitter_t side;         /* the side output (`late:`), when the node has one */
    int64_t watermark;         /* the input's current watermark (SL_WM_MIN at first) */
    sl_arena_t *arena;         /* per-batch scratch, reset by the task */
    const atomic_bool *cancel; /* set when the task must stop */
    void *state;               /* the operator's own */
    _Atomic uint64_t records_in, records_out, errors, busy_ns; /* metrics */
    _Atomic uint64_t records_late; /* metrics: records behind the watermark (to `late:`) */
    /* metrics: RocksDB store bytes restored from this worker's local copy of
     * the checkpoint / fetched from checkpoint storage, and the time taken */
    _Atomic uint64_t restored_local, restored_remote, restore_ns;
    /* CPU time of the threads an operator's restore ran besides the task's
     * own (the task adds it to the restore's CPU time it logs) */
    _Atomic uint64_t restore_cpu_ns;
    /* Sources: called by sl_op_source_idle and sl_op_source_checkpoint
     * (set by the task). */
    int (*idle_hook)(void *arg);
    int (*barrier_hook)(void *arg);
    const _Atomic uint64_t *barrier_pending; /* checkpoint id to take, 0 = none */
    void *idle_arg;
    /* Sources that track event time per split (Kafka partitions) set
     * own_wm in open and keep source_wm (their watermark, SL_WM_MIN at
     * first) up to date on the task's thread: the task then uses it instead
     * of the largest event time emitted minus max_out_of_order. */
    bool own_wm;
    int64_t source_wm;
    /* Sources with a backlog: called by sl_op_source_lag (set by the task). */
    void (*lag_hook)(void *arg, int64_t lag, const char *detail);
    /* Keyed state in RocksDB (`state: {backend: rocksdb}`), set by the task: */
    const char *state_dir;   /* local directory of the subtask's state, or NULL (a temp dir) */
    const char *ckpt_dir;    /* <root>/<job> where checkpoints go, or NULL */
    const char *restore_dir; /* directory of the checkpoint restored from, or NULL */
    const char *local_dir;   /* the job's local copies of checkpoints on this worker, or NULL */
    /* Asynchronous snapshots: the task sets snap_async before snapshot when
     * it finishes the snapshot on its snapshot thread; snapshot may then set
     * snap_defer, whose run (on that thread, while the task processes
     * records) appends the rest of the operator's bytes. */
    bool snap_async;
    sl_snap_defer_t snap_defer;
    char err[512]; /* message when a call fails */
} sl_opctx_t;

typedef struct {
    int (*open)(sl_opctx_t *c);
    /* Sources: produce every record of this subtask's share, then return 0. */
    int (*run_source)(sl_opctx_t *c);
    /* Others: one input batch from input index `input`. */
    int (*process)(sl_opctx_t *c, const sl_batch_t *in, int input);
    int (*finish)(sl_opctx_t *c);
    void (*close)(sl_opctx_t *c);
    int (*watermark)(sl_opctx_t *c, int64_t wm); /* optional */
    int (*tick)(sl_opctx_t *c, int64_t now_ms);  /* optional: processing time */
    /* Checkpoints (docs/fault-tolerance.md). snapshot writes everything the
     * operator needs to go on exactly from this point (a source: its
     * position; a window: its windows; a sink: what it must publish), called
     * between records, after everything emitted so far went downstream.
     * restore reads it back, after open and before any record; garbage
     * must fail with SL_DATA, never crash. complete(id) says checkpoint id
     * is durable (sinks publish what it covers). All optional: an operator
     * without snapshot cannot run in a checkpointed job (the planner says
     * so). */
    int (*snapshot)(sl_opctx_t *c, sl_snap_w_t *w);
    int (*restore)(sl_opctx_t *c, sl_snap_r_t *r);
    int (*complete)(sl_opctx_t *c, uint64_t checkpoint_id);
} sl_op_vtable_t;

/* The implementation of a plan node. */
const sl_op_vtable_t *sl_op_vtable(const sl_plan_node_t *node);

/* Emits map's row of the input values in: each of its expressions
 * evaluated into out[] (nexprs values; with copy, an expression whose
 * copy[k] >= 0 copies in[copy[k]] instead), typed as the map's output
 * fields. The map operator's step, shared with a source the map is fused
 * into. Errors are the map's, named. */
int sl_op_map_row(sl_opctx_t *c, const sl_plan_node_t *map, const sl_value_t *in, sl_value_t *out,
                  const int *copy);

/* Implementations, one file each (op_<kind>.c). */
/* A heap aggregate's restore of this many entries or more puts them into
 * its table on a second thread (SIZE_MAX: never; tests set it). */
extern size_t sl__agg_restore_par_min;

extern const sl_op_vtable_t sl_op_file_source;
extern const sl_op_vtable_t sl_op_generator;
extern const sl_op_vtable_t sl_op_nexmark; /* the nexmark source */
/* the ysb source (Yahoo Streaming Benchmark) */
extern const sl_op_vtable_t sl_op_ysb;
extern const sl_op_vtable_t sl_op_kafka_source;
extern const sl_op_vtable_t sl_op_filter;
extern const sl_op_vtable_t sl_op_map;
extern const sl_op_vtable_t sl_op_flat_map;
extern const sl_op_vtable_t sl_op_passthrough; /* key_by, union */
extern const sl_op_vtable_t sl_op_aggregate;
extern const sl_op_vtable_t sl_op_window;
extern const sl_op_vtable_t sl_op_join; /* window, interval and enrich joins */
extern const sl_op_vtable_t sl_op_file_sink;
extern const sl_op_vtable_t sl_op_stdout_sink;
extern const sl_op_vtable_t sl_op_discard_sink;
extern const sl_op_vtable_t sl_op_kafka_sink; /* a Kafka topic (op_kafka_sink.c) */
extern const sl_op_vtable_t sl_op_udf;        /* map / filter / flat_map by a plugin function */
extern const sl_op_vtable_t sl_op_process;    /* keyed process function: state and timers */

/* Sources call this while they wait with nothing to emit (paced, polling
 * an empty partition): it flushes pending records and lets the task tell
 * downstream that this source is idle once its idle timeout has passed.
 * Returns 0 or the error of sending. */
int sl_op_source_idle(sl_opctx_t *c);

/* Sources call this between records, at least every few milliseconds
 * while they run (sl_op_source_idle does too): when a checkpoint is due it
 * flushes, snapshots the chain (the source's snapshot must describe its
 * position after every record emitted so far), sends the barrier
 * downstream and acknowledges. Cheap when none is due (one atomic load).
 * Returns 0 or the error of snapshotting or sending. */
int sl_op_source_checkpoint(sl_opctx_t *c);

/* Sources reading a log with an end (Kafka) report how far behind it they
 * are: lag records in total over their partitions, detail per partition
 * ("topic/partition=lag ...", truncated). Shown by `sluice status`. */
void sl_op_source_lag(sl_opctx_t *c, int64_t lag, const char *detail);

/* Wall-clock milliseconds since the epoch (processing time). */
int64_t sl_op_now_ms(void);

/* Sets c->err printf-style and returns rc (for `return sl_op_fail(...)`). */
int sl_op_fail(sl_opctx_t *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
