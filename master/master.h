/* master.h — the master: worker registry and heartbeats, the slot
 * scheduler, and the job lifecycle, served on one ROUTER control socket
 * that workers and clients (the CLI) talk to with the protocol in
 * proto/sluice.proto.
 *
 * One thread runs the loop; the same code serves the embedded mini-cluster
 * (`sluice run`, inproc://) and the master process. */
#ifndef SLUICE_MASTER_H
#define SLUICE_MASTER_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    void *zctx;               /* ZeroMQ context */
    const char *endpoint;     /* control endpoint to bind */
    int heartbeat_timeout_ms; /* a worker silent this long is dead */
    bool allow_shutdown;      /* obey a Shutdown request (the embedded cluster's
                               * owner); a master process stops on SIGTERM only */
    const char *state_dir;    /* where uploaded plugins are kept (NULL: a fresh
                               * temporary directory, removed at the end) */
} sl_master_opts_t;

typedef struct sl_master sl_master_t;

/* Binds the endpoint and starts the master's thread; NULL with a message in
 * err on failure (e.g. the endpoint is taken). */
sl_master_t *sl_master_start(const sl_master_opts_t *o, char *err, size_t cap);
/* Waits for the thread (which ends on a Shutdown request or sl_master_stop),
 * frees everything, sets *pp to NULL. */
void sl_master_join(sl_master_t **pp);
/* Asks the master to shut down (workers get a Shutdown too). */
void sl_master_stop(sl_master_t *m);
/* False once the master's loop has ended (after a Shutdown request). */
bool sl_master_running(const sl_master_t *m);
/* The endpoint actually bound (a tcp wildcard port resolved) into buf. */
void sl_master_endpoint(const sl_master_t *m, char *buf, size_t cap);

#endif
