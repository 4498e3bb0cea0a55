/* worker.h — a worker: registers with the master, runs the subtasks it is
 * deployed, reports their states and metrics, and sends heartbeats.
 *
 * One thread runs the control loop (a DEALER to the master's ROUTER); each
 * subtask runs on a thread of its own. The same code serves the embedded
 * mini-cluster (inproc:// endpoints, a thread of `sluice run`) and a
 * worker process. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H
#include <stdbool.h>

typedef struct {
    void *zctx;                 /* ZeroMQ context (shared with the master in-process) */
    const char *master;         /* master's control endpoint */
    const char *id;             /* unique worker id */
    int slots;                  /* task slots offered */
    const char *data_bind;      /* where in-gates bind: "inproc://NAME" (each task
                                 * binds NAME/job/chain/subtask) or "tcp://ADDR"
                                 * (each task binds an ephemeral port on ADDR) */
    const char *advertise_host; /* tcp: the host other workers connect to
                                 * (default: ADDR of data_bind) */
    int heartbeat_ms;           /* heartbeat interval */
    int report_ms;              /* interval of running-task metric reports */
    const char *cache_dir;      /* where shipped plugins are cached by content hash
                                 * (NULL: a temporary directory, removed at the end) */
    bool keep_running;          /* a worker process: the master's Shutdown does not end it
                                 * (it waits for the next master); the embedded
                                 * cluster's workers end with their master */
} sl_worker_opts_t;

typedef struct sl_worker sl_worker_t;

/* Starts the worker's thread. NULL on failure (message on stderr). */
sl_worker_t *sl_worker_start(const sl_worker_opts_t *o);
/* Asks the worker to cancel its tasks and stop (it also stops on the
 * master's Shutdown). */
void sl_worker_stop(sl_worker_t *w);
/* False once the worker's loop has ended. */
bool sl_worker_running(const sl_worker_t *w);
/* Waits for the worker's thread, frees it, sets *pp to NULL. */
void sl_worker_join(sl_worker_t **pp);

#endif
