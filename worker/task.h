/* task.h — one subtask: a chain of operators between an in-gate and the
 * out-gates to the next tasks.
 *
 * Lifecycle (one thread runs it from start to end):
 *   CREATED --sl_task_run--> RUNNING --end of input / cancel / error--> ENDED
 * sl_task_run opens the operators, binds the in-gate, connects the
 * out-gates, moves every input batch through the chain (a full batch of
 * one operator is processed by the next at once: chaining, no
 * serialization), and at end of input calls each operator's finish in
 * chain order, flushes, and sends end-of-input downstream.
 *
 * Metrics are atomics: other threads (the worker's reporter) may read them
 * while the task runs. */
#ifndef SLUICE_TASK_H
#define SLUICE_TASK_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/plan.h"

/* Resolves the data endpoint of (chain, subtask) into buf. */
typedef void (*sl_endpoint_fn)(void *arg, int chain, int subtask, char *buf, size_t cap);

/* One state file of a restored checkpoint: the chain's operators, each
 * with its snapshot, as an old subtask wrote them. */
typedef struct {
    const uint8_t *data;
    size_t len;
    int subtask; /* the old subtask that wrote it */
} sl_task_restore_t;

typedef struct {
    void *zctx;              /* ZeroMQ context shared by the process */
    const sl_plan_t *plan;   /* immutable, outlives the task */
    int chain, subtask;      /* which subtask this is */
    sl_endpoint_fn endpoint; /* where every subtask's in-gate is */
    void *endpoint_arg;
    const atomic_bool *cancel; /* set to stop the task */
    int credits;               /* initial credits per channel (0 = default) */
    uint32_t batch_bytes;      /* batch capacity (0 = default) */
    /* Checkpoints (docs/fault-tolerance.md). */
    const char *ckpt_dir; /* <root>/<job>: snapshots go to chk-<id>/ in it; NULL = none */
    const sl_task_restore_t *restores; /* state files to restore (verified), or NULL */
    int nrestores;           /* 1 (this subtask's own), or with a rescale every old subtask's */
    bool rescale;            /* the restored checkpoint ran at another parallelism */
    bool restore_finished;   /* the subtask had finished in the restored checkpoint */
    uint32_t attempt;        /* the job's execution attempt (restarts count up), 0 = unknown */
    const char *restore_dir; /* directory of the restored checkpoint (rocksdb state), or NULL */
    const char *state_dir;   /* local directory for the subtask's rocksdb state, or NULL */
    const char *local_dir;   /* the job's local copies of checkpoints (<cache>/local/<job>), or
                                NULL (no local recovery) */
} sl_task_env_t;

/* What a subtask says about a checkpoint (sl_task_poll_ack). */
typedef struct {
    uint64_t id;        /* the checkpoint */
    char file[96];      /* state file written, relative to chk-<id>/ */
    uint64_t size;      /* its bytes */
    char sha256[65];    /* hex of its content */
    char declined[512]; /* non-empty: no snapshot, and why (the job goes on) */
    uint64_t align_ms;  /* from the first barrier to alignment on every input */
} sl_task_ack_t;

typedef struct sl_task sl_task_t;

typedef struct {
    const char *op; /* operator name (borrowed from the plan) */
    uint64_t records_in, records_out, busy_ns, errors;
    uint64_t late;        /* records behind the watermark, sent to the side output */
    bool has_lag;         /* a source reported its lag (Kafka) */
    int64_t lag;          /* records behind the end of its input, over its partitions */
    char lag_detail[256]; /* per partition: "topic/partition=lag ..." */
    /* its RocksDB stores' restore (sl_opctx_t): bytes local, fetched; ns */
    uint64_t restored_local, restored_remote, restore_ns;
    /* ns its sends to other tasks waited for credit (backpressure): only
     * an operator with a consumer in another task has any; in a branching
     * chain, the one whose outgoing edge was blocked */
    uint64_t backpressure_ns;
} sl_op_metrics_t;

sl_task_t *sl_task_new(const sl_task_env_t *env);
/* First phase of a deploy: when the chain has inputs, binds its in-gate at
 * bind_endpoint and writes the endpoint actually bound (a tcp wildcard port
 * resolved) into out; a source chain binds nothing and writes "". Called by
 * the worker's thread before the task's thread starts. Returns 0 or an
 * error (message from sl_task_error). */
int sl_task_bind(sl_task_t *t, const char *bind_endpoint, char *out, size_t cap);
/* After sl_task_bind: binds the in-gate at one more endpoint (an inproc
 * one, for the subtasks of the same worker). A source chain binds
 * nothing. Returns 0 or an error (message from sl_task_error). */
int sl_task_bind_local(sl_task_t *t, const char *endpoint);
/* Runs the task to its end in the calling thread (after sl_task_bind, once
 * env.endpoint can resolve every subtask). Returns 0 when it
 * finished, SL_CANCELED, or an error (message from sl_task_error). */
int sl_task_run(sl_task_t *t);
/* Borrowed message of the error that ended the task ("" if none). */
const char *sl_task_error(const sl_task_t *t);
int sl_task_nops(const sl_task_t *t);
/* Snapshot of operator i's metrics (safe while the task runs). */
void sl_task_metrics(const sl_task_t *t, int i, sl_op_metrics_t *out);
/* Asks a source subtask to take checkpoint id (it injects the barrier at
 * its next record boundary). With stop (a stop-with-savepoint) it emits
 * nothing after that barrier: it waits until it is canceled, or until a
 * later trigger (the savepoint failed) lets it go on. Any thread. */
void sl_task_trigger(sl_task_t *t, uint64_t id, bool stop);
/* Tells the subtask that checkpoint id is complete (durable). Any thread. */
void sl_task_notify_complete(sl_task_t *t, uint64_t id);
/* The oldest acknowledgement (snapshot written, or declined) not yet
 * taken: true and *out filled. Call until false: every one goes to the
 * master, in order (worker/ackq.h). Any thread (one poller). */
bool sl_task_poll_ack(sl_task_t *t, sl_task_ack_t *out);

/* The task's current watermark (SL_WM_MIN before the first; readable from
 * any thread). */
int64_t sl_task_watermark(const sl_task_t *t);
/* Closes the chain's operators: frees their state and removes their local
 * files. Called by the thread that ran the task, once sl_task_run
 * returned, so that the worker's control thread never frees large state;
 * the metrics stay readable. sl_task_destroy closes what is still open. */
void sl_task_close(sl_task_t *t);
void sl_task_destroy(sl_task_t **pp);

#endif
