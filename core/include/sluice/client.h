/* client.h — the client side of the control protocol: request/reply with
 * the master over a DEALER socket. Used by the CLI and by tests. */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "sluice/msg.h"
#include "sluice/spec.h"

typedef struct sl_client sl_client_t;

/* A DEALER connected to the master's control endpoint; NULL on failure. */
sl_client_t *sl_client_new(void *zctx, const char *endpoint);
void sl_client_destroy(sl_client_t **pp);
/* Sends env (its request id is assigned here) and waits up to timeout_ms
 * for the reply with the same request id. Returns 0 and *reply (free it
 * with sl_msg_free), SL_TIMEOUT, or the code of an Error reply with its
 * text in err. */
int sl_client_call(sl_client_t *c, Sluice__Envelope *env, int timeout_ms, Sluice__Envelope **reply,
                   char *err, size_t cap);
/* Asks for the status of job_id; same results as sl_client_call, and
 * SL_PROTO when the answer is not a JobStatus (so *reply->job_status is
 * always set on success). */
int sl_client_status(sl_client_t *c, const char *job_id, int timeout_ms, Sluice__Envelope **reply,
                     char *err, size_t cap);

/* Submits a job (spec text with the name used in diagnostics, parameters,
 * parallelism override or 0). Returns 0 with the job id in job_id (cap
 * bytes), or an error with the master's message (for a bad spec: every
 * diagnostic, one per line) in err. */
int sl_client_submit(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                     const sl_params_t *params, int parallelism, char *job_id, size_t id_cap,
                     char *err, size_t cap);
/* Same, uploading the plugin the spec names (plugin_len bytes; 0 = none). */
/* sl_client_submit_plugin that starts the job from a savepoint (a
 * directory; NULL or "" = from scratch). */
int sl_client_submit_from(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                          const void *plugin, size_t plugin_len, const sl_params_t *params,
                          int parallelism, const char *from_savepoint, char *job_id, size_t id_cap,
                          char *err, size_t cap);
/* Takes a savepoint of job_id into dir (NULL: the master's default), and
 * with stop ends the job after it; waits up to timeout_ms for it to be
 * durable and writes its directory into path. */
int sl_client_savepoint(sl_client_t *c, const char *job_id, const char *dir, bool stop,
                        int timeout_ms, char *path, size_t path_cap, char *err, size_t cap);
int sl_client_submit_plugin(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                            const void *plugin, size_t plugin_len, const sl_params_t *params,
                            int parallelism, char *job_id, size_t id_cap, char *err, size_t cap);
/* Asks the master to cancel job_id; 0 or an error. */
int sl_client_cancel(sl_client_t *c, const char *job_id, char *err, size_t cap);

#endif
