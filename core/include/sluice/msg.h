/* msg.h — the control protocol on the wire (proto/sluice.proto).
 *
 * This is the only module that encodes, decodes, validates and frees
 * Envelopes; the master, the workers and the CLI build an Envelope on the
 * stack (sl_msg_init + one body), hand it to sl_msg_send, and get decoded,
 * already validated Envelopes from sl_msg_recv.
 *
 * Framing. A control message is exactly one ZeroMQ frame holding one packed
 * Envelope. On a ROUTER socket it is preceded by the routing-id frame (ZeroMQ
 * adds it on receive and consumes it on send). Anything else — an empty
 * frame, extra frames, a missing payload frame — is malformed (SL_PROTO) and
 * is drained completely, so the socket stays usable for the next message.
 *
 * Limits and invariants (checked on every decode, see sl_msg_validate):
 *  1. A packed Envelope is 1 .. SL_MSG_MAX_BYTES bytes; sl_msg_send refuses
 *     bigger ones with SL_LIMIT, receivers reject them with SL_PROTO.
 *  2. version must equal SL_PROTO_VERSION, else SL_VERSION (checked before
 *     anything about the body, so a newer peer gets a clear answer).
 *  3. Exactly one body is set (an Envelope without a body is SL_PROTO).
 *  4. Every string field is valid UTF-8 without NUL bytes (protobuf-c 1.4
 *     checks neither, so msg.c checks the raw bytes before unpacking).
 *  5. Before unpacking, the wire bytes are walked once: nesting depth is at
 *     most SL_MSG_MAX_DEPTH, the number of sub-messages, strings, bytes and
 *     unknown fields together is at most SL_MSG_MAX_NODES, unknown fields
 *     (newer optional fields; they are skipped) at most SL_MSG_MAX_UNKNOWN.
 *     This bounds the memory a hostile 16 MiB message can make us allocate.
 *  6. Identifiers (worker_id, job_id, op, param name, job name, host) are at
 *     most SL_MSG_ID_MAX bytes and non-empty where the body needs them:
 *     Register.worker_id/data_endpoint, Heartbeat.worker_id, *.job_id of
 *     Deploy, TaskState, CancelTasks, SubmitReply, JobStatusRequest, JobStatus,
 *     CancelJob and the Checkpoint* bodies, Param.name, OperatorMetrics.op,
 *     SubtaskLocation.worker_id/data_endpoint.
 *  7. Endpoints <= SL_MSG_ENDPOINT_MAX, spec_file <= SL_MSG_PATH_MAX, free
 *     text (error, reason, param value) <= SL_MSG_TEXT_MAX bytes.
 *  8. spec_text is 1 .. SL_MSG_SPEC_MAX bytes in Deploy and SubmitJob; a
 *     plugin at most SL_MSG_PLUGIN_MAX, and a Deploy with one names its
 *     plugin_sha256;
 *     CheckpointAck.state_handle <= SL_MSG_STATE_HANDLE_MAX bytes.
 *  9. Register.slots in 1 .. SL_MSG_SLOTS_MAX; Heartbeat.slots_used <=
 *     SL_MSG_SLOTS_MAX; parallelism <= SL_MSG_SUBTASK_MAX (0 = as in spec).
 * 10. A SubtaskRef has chain < SL_MSG_CHAIN_MAX and subtask <
 *     SL_MSG_SUBTASK_MAX; it is required in TaskState, SubtaskLocation,
 *     TaskStatus and CheckpointAck.
 * 11. Repeated fields: params <= SL_MSG_PARAMS_MAX, metrics <=
 *     SL_MSG_METRICS_MAX, subtasks/locations/tasks/jobs <= SL_MSG_REPEATED_MAX.
 * 12. Enums are in range; TaskState.state is not TASK_UNKNOWN.
 * 13. Error.code is a negative sl_err_t; checkpoint ids are >= 1.
 *
 * Ownership: an Envelope from sl_msg_recv/sl_msg_decode belongs to the caller
 * and is freed with sl_msg_free. Envelopes the caller builds are the caller's
 * (usually on the stack) and are never passed to sl_msg_free. */
#ifndef SLUICE_MSG_H
#define SLUICE_MSG_H
#include <stddef.h>
#include <stdint.h>

#include "sluice.pb-c.h"

#define SL_PROTO_VERSION 1
#define SL_MSG_MAX_BYTES (16u * 1024u * 1024u)
/* Size of the buffer sl_msg_recv copies a routing id into (ZeroMQ: <= 255). */
#define SL_MSG_RID_MAX 256
#define SL_MSG_ID_MAX 256
#define SL_MSG_ENDPOINT_MAX 1024
#define SL_MSG_PATH_MAX 4096
#define SL_MSG_TEXT_MAX (64u * 1024u)
#define SL_MSG_SPEC_MAX (1024u * 1024u)
#define SL_MSG_PLUGIN_MAX (8u * 1024u * 1024u) /* SubmitJob / Deploy plugin bytes */
#define SL_MSG_STATE_HANDLE_MAX (1024u * 1024u)
#define SL_MSG_SLOTS_MAX 1024u
#define SL_MSG_CHAIN_MAX 4096u
#define SL_MSG_SUBTASK_MAX 1024u
#define SL_MSG_PARAMS_MAX 1024u
#define SL_MSG_METRICS_MAX 4096u
#define SL_MSG_REPEATED_MAX 100000u
#define SL_MSG_MAX_DEPTH 8
#define SL_MSG_MAX_NODES (1u << 20)
#define SL_MSG_MAX_UNKNOWN 1024u

typedef Sluice__Envelope sl_envelope_t;

/* Initialises env (all fields empty, no body) with the current protocol
 * version and request_id; the caller then sets body_case and one body. */
void sl_msg_init(Sluice__Envelope *env, uint64_t request_id);

/* Packs env (version forced to SL_PROTO_VERSION) into one fresh zmq_msg_t
 * and sends it, preceded by the routing-id frame when rid_len > 0 (ROUTER
 * sockets). Blocks as zmq_send does. Does not check the rules above beyond
 * size: receivers do, and answer with an Error naming the field.
 * Returns 0, SL_INVAL (no body, rid_len > 255), SL_LIMIT (packed size over
 * SL_MSG_MAX_BYTES), SL_NOMEM, SL_TIMEOUT (EAGAIN, EINTR), SL_NOTFOUND (unroutable
 * with ZMQ_ROUTER_MANDATORY) or SL_ZMQ. */
int sl_msg_send(void *zsock, const void *rid, size_t rid_len, const Sluice__Envelope *env);
/* Same with zmq_send flags (ZMQ_DONTWAIT: SL_TIMEOUT instead of blocking). */
int sl_msg_send_flags(void *zsock, int flags, const void *rid, size_t rid_len,
                      const Sluice__Envelope *env);

/* Receives one control message. flags are zmq_recv flags (ZMQ_DONTWAIT).
 * On a ROUTER socket the routing id is copied into rid (a buffer of at least
 * SL_MSG_RID_MAX bytes; may be NULL) and its length into *rid_len (may be
 * NULL; set to 0 on other sockets). The rid is filled even when the message
 * is rejected, so the caller can answer with sl_msg_send_error.
 * Returns 0 with *out set (free with sl_msg_free), or *out = NULL and
 *   SL_PROTO    malformed (see the rules above; the rest is drained),
 *   SL_VERSION  another protocol version,
 *   SL_TIMEOUT  nothing to receive (ZMQ_DONTWAIT, ZMQ_RCVTIMEO or EINTR),
 *   SL_NOMEM / SL_ZMQ,
 * with a one-line reason in err (cap bytes, may be NULL/0). */
int sl_msg_recv(void *zsock, int flags, void *rid, size_t *rid_len, Sluice__Envelope **out,
                char *err, size_t cap);
/* Same, and stores the envelope's request_id into *request_id (may be NULL)
 * whenever the payload could be unpacked — also on SL_VERSION and on
 * validation failures — else 0, so an Error reply can echo it. */
int sl_msg_recv_ex(void *zsock, int flags, void *rid, size_t *rid_len, Sluice__Envelope **out,
                   uint64_t *request_id, char *err, size_t cap);

/* Decodes and validates one packed Envelope (same results as sl_msg_recv
 * minus the socket ones). data is not retained. */
int sl_msg_decode(const uint8_t *data, size_t len, Sluice__Envelope **out, char *err, size_t cap);
/* Packs env (version forced) into a fresh malloc'd buffer the caller frees.
 * Returns 0, SL_INVAL, SL_LIMIT or SL_NOMEM. */
int sl_msg_encode(const Sluice__Envelope *env, uint8_t **buf, size_t *len);
/* Checks rules 3, 4 and 6..13 on an unpacked or caller-built envelope (the
 * version is not checked). Returns 0 or SL_PROTO with the offending field's
 * path in err ("deploy.locations[3].worker_id is required"). */
int sl_msg_validate(const Sluice__Envelope *env, char *err, size_t cap);
/* Frees an envelope returned by sl_msg_recv/sl_msg_decode and sets *pp to
 * NULL; accepts NULL and *pp == NULL. */
void sl_msg_free(Sluice__Envelope **pp);

/* The body's name as in the .proto ("deploy", "heartbeat", "register_ack"),
 * "none" without a body or for NULL; static storage. */
const char *sl_msg_kind_name(const Sluice__Envelope *env);

/* Sends an Error body (code: a negative sl_err_t) echoing request_id, the
 * message printf-formatted, truncated to SL_MSG_TEXT_MAX bytes and made
 * valid UTF-8 (bad bytes become '?'), so any text can be reported. Returns
 * as sl_msg_send; SL_INVAL when code >= 0. */
int sl_msg_send_error(void *zsock, const void *rid, size_t rid_len, uint64_t request_id, int code,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Sends an Ok body echoing request_id. Returns as sl_msg_send. */
int sl_msg_send_ok(void *zsock, const void *rid, size_t rid_len, uint64_t request_id);

/* Replaces every byte of s that is not part of valid UTF-8 with '?', in
 * place, so that s can go into a string field (e.g. a TaskState error built
 * from input data). */
void sl_msg_sanitize_utf8(char *s);

/* Sets ZMQ_MAXMSGSIZE on a control socket so that a peer sending a frame
 * bigger than SL_MSG_MAX_BYTES over tcp is disconnected before the frame is
 * buffered. Returns 0 or SL_ZMQ. */
int sl_msg_limit_socket(void *zsock);

#endif
