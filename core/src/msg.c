/* msg.c — encoding, decoding and validation of control messages (see
 * sluice/msg.h for the framing, the limits and the invariants).
 *
 * Decoding is three steps, each of which may reject the message:
 *   1. s_scan walks the raw wire bytes by the generated descriptors: it
 *      checks UTF-8 of every string field (protobuf-c does not), bounds the
 *      nesting depth, the number of allocations protobuf-c will make and the
 *      number of unknown fields — before anything is allocated;
 *   2. protobuf-c unpacks; then the version is compared;
 *   3. sl_msg_validate checks the per-body rules and names the bad field.
 * Every unpack is paired with sluice__envelope__free_unpacked, here only. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/msg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "sluice/err.h"
#include "sluice/utf8.h"

#define S_TRY(expr)                                                                                \
    do {                                                                                           \
        int s_rc_ = (expr);                                                                        \
        if (s_rc_ != 0)                                                                            \
            return s_rc_;                                                                          \
    } while (0)

/* Path buffers for error messages ("deploy.locations[12].ref"). */
#define S_PATH_CAP 160

static void s_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Maps a zmq errno to an sl_err_t. EINTR counts as "nothing received yet"
 * so that a loop checking a stop flag on SL_TIMEOUT handles signals. */
static int s_zerr(int e)
{
    switch (e) {
    case EAGAIN:
    case EINTR:
        return SL_TIMEOUT;
    case EHOSTUNREACH:
        return SL_NOTFOUND;
    case ENOMEM:
        return SL_NOMEM;
    default:
        return SL_ZMQ;
    }
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* A valid UTF-8 sequence at p (see sl_utf8_seq), except that NUL counts
 * as invalid: C strings cannot carry it. */
static size_t s_utf8_seq(const uint8_t *p, size_t n)
{
    return p[0] == 0 ? 0 : sl_utf8_seq(p, n);
}

static bool s_utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l = s_utf8_seq(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

void sl_msg_sanitize_utf8(char *s)
{
    if (!s)
        return;
    uint8_t *p = (uint8_t *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        size_t l = s_utf8_seq(p + i, n - i);
        if (l == 0) {
            p[i] = '?';
            l = 1;
        }
        i += l;
    }
}

/* ---- step 1: the wire scan ---------------------------------------------- */

typedef struct {
    size_t nodes;   /* sub-messages, strings, bytes and unknown fields seen */
    size_t unknown; /* unknown fields seen */
} s_scan_t;

static bool s_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return false;
        uint8_t b = *p++;
        r |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = r;
            return true;
        }
    }
    return false;
}

static void s_join(char *buf, const char *path, const char *name)
{
    if (path[0])
        snprintf(buf, S_PATH_CAP, "%s.%s", path, name);
    else
        snprintf(buf, S_PATH_CAP, "%s", name);
}

/* Walks one message's wire bytes (see the file comment). path names the
 * message for errors ("" for the envelope). */
static int s_scan(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth,
                  const char *path, s_scan_t *st, char *err, size_t cap)
{
    const char *where = path[0] ? path : "envelope";
    if (depth > SL_MSG_MAX_DEPTH) {
        s_err(err, cap, "%s: nesting deeper than %d levels", where, SL_MSG_MAX_DEPTH);
        return SL_PROTO;
    }
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t tag, v;
        if (!s_varint(&p, end, &tag)) {
            s_err(err, cap, "%s: truncated field tag", where);
            return SL_PROTO;
        }
        uint64_t num = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (num == 0 || num > 536870911u) {
            s_err(err, cap, "%s: invalid field number %llu", where, (unsigned long long)num);
            return SL_PROTO;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)num);
        if (!f) {
            st->nodes++;
            if (++st->unknown > SL_MSG_MAX_UNKNOWN) {
                s_err(err, cap, "more than %u unknown fields", SL_MSG_MAX_UNKNOWN);
                return SL_PROTO;
            }
        }
        switch (wt) {
        case 0:
            if (!s_varint(&p, end, &v)) {
                s_err(err, cap, "%s: truncated varint in field %u", where, (unsigned)num);
                return SL_PROTO;
            }
            break;
        case 1:
        case 5: {
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < w) {
                s_err(err, cap, "%s: truncated field %u", where, (unsigned)num);
                return SL_PROTO;
            }
            p += w;
            break;
        }
        case 2:
            if (!s_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                s_err(err, cap, "%s: truncated field %u", where, (unsigned)num);
                return SL_PROTO;
            }
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                char sub[S_PATH_CAP];
                s_join(sub, path, f->name);
                st->nodes++;
                S_TRY(s_scan(f->descriptor, p, (size_t)v, depth + 1, sub, st, err, cap));
            } else if (f && f->type == PROTOBUF_C_TYPE_STRING) {
                st->nodes++;
                if (!s_utf8_ok(p, (size_t)v)) {
                    char sub[S_PATH_CAP];
                    s_join(sub, path, f->name);
                    s_err(err, cap, "%s is not valid UTF-8 (or contains NUL)", sub);
                    return SL_PROTO;
                }
            } else if (f && f->type == PROTOBUF_C_TYPE_BYTES) {
                st->nodes++;
            }
            p += v;
            break;
        default:
            s_err(err, cap, "%s: unsupported wire type %u in field %u", where, wt, (unsigned)num);
            return SL_PROTO;
        }
        if (st->nodes > SL_MSG_MAX_NODES) {
            s_err(err, cap, "more than %u elements in one message", SL_MSG_MAX_NODES);
            return SL_PROTO;
        }
    }
    return 0;
}

/* ---- step 3: per-body rules ------------------------------------------------- */

static int s_str(const char *path, const char *field, const char *s, size_t max, bool required,
                 char *err, size_t cap)
{
    size_t n = s ? strlen(s) : 0;
    if (required && n == 0) {
        s_err(err, cap, "%s.%s is required", path, field);
        return SL_PROTO;
    }
    if (n > max) {
        s_err(err, cap, "%s.%s is %zu bytes, limit %zu", path, field, n, max);
        return SL_PROTO;
    }
    if (!s_utf8_ok((const uint8_t *)s, n)) {
        s_err(err, cap, "%s.%s is not valid UTF-8", path, field);
        return SL_PROTO;
    }
    return 0;
}

static int s_bytes(const char *path, const char *field, const ProtobufCBinaryData *b, size_t max,
                   bool required, char *err, size_t cap)
{
    if (b->len > 0 && !b->data) {
        s_err(err, cap, "%s.%s is null", path, field);
        return SL_PROTO;
    }
    if (required && b->len == 0) {
        s_err(err, cap, "%s.%s is required", path, field);
        return SL_PROTO;
    }
    if (b->len > max) {
        s_err(err, cap, "%s.%s is %zu bytes, limit %zu", path, field, b->len, max);
        return SL_PROTO;
    }
    return 0;
}

static int s_count(const char *path, const char *field, size_t n, const void *arr, size_t max,
                   char *err, size_t cap)
{
    if (n > max) {
        s_err(err, cap, "%s.%s has %zu entries, limit %zu", path, field, n, max);
        return SL_PROTO;
    }
    if (n > 0 && !arr) {
        s_err(err, cap, "%s.%s is null", path, field);
        return SL_PROTO;
    }
    return 0;
}

static int s_range(const char *path, const char *field, uint64_t v, uint64_t lo, uint64_t hi,
                   char *err, size_t cap)
{
    if (v < lo || v > hi) {
        s_err(err, cap, "%s.%s is %llu, allowed %llu..%llu", path, field, (unsigned long long)v,
              (unsigned long long)lo, (unsigned long long)hi);
        return SL_PROTO;
    }
    return 0;
}

static int s_ref(const char *path, const char *field, const Sluice__SubtaskRef *r, char *err,
                 size_t cap)
{
    if (!r) {
        s_err(err, cap, "%s.%s is required", path, field);
        return SL_PROTO;
    }
    char sub[S_PATH_CAP];
    snprintf(sub, sizeof sub, "%s.%s", path, field);
    S_TRY(s_range(sub, "chain", r->chain, 0, SL_MSG_CHAIN_MAX - 1, err, cap));
    return s_range(sub, "subtask", r->subtask, 0, SL_MSG_SUBTASK_MAX - 1, err, cap);
}

/* Element i of a repeated field must be present; writes its path to sub. */
static int s_elem(const char *path, const char *field, size_t i, const void *e, char *sub,
                  char *err, size_t cap)
{
    snprintf(sub, S_PATH_CAP, "%s.%s[%zu]", path, field, i);
    if (!e) {
        s_err(err, cap, "%s is null", sub);
        return SL_PROTO;
    }
    return 0;
}

static int s_params(const char *path, size_t n, Sluice__Param *const *ps, char *err, size_t cap)
{
    S_TRY(s_count(path, "params", n, ps, SL_MSG_PARAMS_MAX, err, cap));
    for (size_t i = 0; i < n; i++) {
        char sub[S_PATH_CAP];
        S_TRY(s_elem(path, "params", i, ps[i], sub, err, cap));
        S_TRY(s_str(sub, "name", ps[i]->name, SL_MSG_ID_MAX, true, err, cap));
        S_TRY(s_str(sub, "value", ps[i]->value, SL_MSG_TEXT_MAX, false, err, cap));
    }
    return 0;
}

static int s_metrics(const char *path, size_t n, Sluice__OperatorMetrics *const *ms, char *err,
                     size_t cap)
{
    S_TRY(s_count(path, "metrics", n, ms, SL_MSG_METRICS_MAX, err, cap));
    for (size_t i = 0; i < n; i++) {
        char sub[S_PATH_CAP];
        S_TRY(s_elem(path, "metrics", i, ms[i], sub, err, cap));
        S_TRY(s_str(sub, "op", ms[i]->op, SL_MSG_ID_MAX, true, err, cap));
    }
    return 0;
}

static int s_job_status(const char *path, const Sluice__JobStatus *j, char *err, size_t cap)
{
    S_TRY(s_str(path, "job_id", j->job_id, SL_MSG_ID_MAX, true, err, cap));
    S_TRY(s_str(path, "name", j->name, SL_MSG_ID_MAX, false, err, cap));
    S_TRY(s_range(path, "state", (uint64_t)(int64_t)j->state, 0,
                  SLUICE__JOB_STATE_KIND__JOB_STOPPED, err, cap));
    S_TRY(s_count(path, "failures", j->n_failures, j->failures, SL_MSG_REPEATED_MAX, err, cap));
    S_TRY(s_count(path, "checkpoint_list", j->n_checkpoint_list, j->checkpoint_list,
                  SL_MSG_REPEATED_MAX, err, cap));
    for (size_t i = 0; i < j->n_checkpoint_list; i++)
        S_TRY(s_str(path, "checkpoint_list[].path", j->checkpoint_list[i]->path, SL_MSG_PATH_MAX,
                    false, err, cap));
    for (size_t i = 0; i < j->n_failures; i++)
        S_TRY(s_str(path, "failures[]", j->failures[i], SL_MSG_TEXT_MAX, false, err, cap));
    S_TRY(s_str(path, "error", j->error, SL_MSG_TEXT_MAX, false, err, cap));
    S_TRY(s_str(path, "reason", j->reason, SL_MSG_TEXT_MAX, false, err, cap));
    S_TRY(s_count(path, "tasks", j->n_tasks, j->tasks, SL_MSG_REPEATED_MAX, err, cap));
    for (size_t i = 0; i < j->n_tasks; i++) {
        char sub[S_PATH_CAP];
        const Sluice__TaskStatus *t = j->tasks[i];
        S_TRY(s_elem(path, "tasks", i, t, sub, err, cap));
        S_TRY(s_ref(sub, "ref", t->ref, err, cap));
        S_TRY(s_str(sub, "worker_id", t->worker_id, SL_MSG_ID_MAX, false, err, cap));
        S_TRY(s_range(sub, "state", (uint64_t)(int64_t)t->state, 0,
                      SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, err, cap));
        S_TRY(s_str(sub, "error", t->error, SL_MSG_TEXT_MAX, false, err, cap));
        S_TRY(s_str(sub, "host", t->host, SL_MSG_ID_MAX, false, err, cap));
        S_TRY(s_metrics(sub, t->n_metrics, t->metrics, err, cap));
    }
    return s_metrics(path, j->n_metrics, j->metrics, err, cap);
}

static int s_locations(const char *p, size_t n, Sluice__SubtaskLocation *const *ls, char *err,
                       size_t cap)
{
    S_TRY(s_count(p, "locations", n, ls, SL_MSG_REPEATED_MAX, err, cap));
    for (size_t i = 0; i < n; i++) {
        char sub[S_PATH_CAP];
        const Sluice__SubtaskLocation *l = ls[i];
        S_TRY(s_elem(p, "locations", i, l, sub, err, cap));
        S_TRY(s_ref(sub, "ref", l->ref, err, cap));
        S_TRY(s_str(sub, "worker_id", l->worker_id, SL_MSG_ID_MAX, true, err, cap));
        S_TRY(s_str(sub, "data_endpoint", l->data_endpoint, SL_MSG_ENDPOINT_MAX, true, err, cap));
    }
    return 0;
}

static int s_deploy(const char *p, const Sluice__Deploy *d, char *err, size_t cap)
{
    S_TRY(s_str(p, "job_id", d->job_id, SL_MSG_ID_MAX, true, err, cap));
    S_TRY(s_str(p, "spec_file", d->spec_file, SL_MSG_PATH_MAX, false, err, cap));
    S_TRY(s_bytes(p, "spec_text", &d->spec_text, SL_MSG_SPEC_MAX, true, err, cap));
    S_TRY(s_params(p, d->n_params, d->params, err, cap));
    S_TRY(s_range(p, "parallelism", d->parallelism, 0, SL_MSG_SUBTASK_MAX, err, cap));
    S_TRY(s_bytes(p, "plugin", &d->plugin, SL_MSG_PLUGIN_MAX, false, err, cap));
    S_TRY(s_str(p, "plugin_sha256", d->plugin_sha256, 64, d->plugin.len > 0, err, cap));
    S_TRY(s_count(p, "subtasks", d->n_subtasks, d->subtasks, SL_MSG_REPEATED_MAX, err, cap));
    for (size_t i = 0; i < d->n_subtasks; i++) {
        char sub[S_PATH_CAP];
        snprintf(sub, sizeof sub, "subtasks[%zu]", i);
        S_TRY(s_ref(p, sub, d->subtasks[i], err, cap));
    }
    S_TRY(s_str(p, "checkpoint_dir", d->checkpoint_dir, SL_MSG_PATH_MAX, false, err, cap));
    S_TRY(s_count(p, "restore", d->n_restore, d->restore, SL_MSG_REPEATED_MAX, err, cap));
    for (size_t i = 0; i < d->n_restore; i++) {
        char sub[S_PATH_CAP];
        const Sluice__TaskSnapshot *t = d->restore[i];
        S_TRY(s_elem(p, "restore", i, t, sub, err, cap));
        S_TRY(s_ref(sub, "ref", t->ref, err, cap));
        S_TRY(s_str(sub, "file", t->file, SL_MSG_PATH_MAX, !t->finished, err, cap));
        S_TRY(s_str(sub, "sha256", t->sha256, 64, !t->finished, err, cap));
    }
    S_TRY(s_str(p, "restore_dir", d->restore_dir, SL_MSG_PATH_MAX, d->n_restore > 0, err, cap));
    return s_locations(p, d->n_locations, d->locations, err, cap);
}

static int s_body(const Sluice__Envelope *env, const char *p, char *err, size_t cap)
{
    switch (env->body_case) {
    case SLUICE__ENVELOPE__BODY_REGISTER: {
        const Sluice__Register *r = env->register_;
        S_TRY(s_str(p, "worker_id", r->worker_id, SL_MSG_ID_MAX, true, err, cap));
        S_TRY(s_range(p, "slots", r->slots, 1, SL_MSG_SLOTS_MAX, err, cap));
        S_TRY(s_str(p, "data_endpoint", r->data_endpoint, SL_MSG_ENDPOINT_MAX, true, err, cap));
        return s_str(p, "host", r->host, SL_MSG_ID_MAX, false, err, cap);
    }
    case SLUICE__ENVELOPE__BODY_REGISTER_ACK:
        return s_str(p, "reason", env->register_ack->reason, SL_MSG_TEXT_MAX, false, err, cap);
    case SLUICE__ENVELOPE__BODY_HEARTBEAT:
        S_TRY(s_str(p, "worker_id", env->heartbeat->worker_id, SL_MSG_ID_MAX, true, err, cap));
        return s_range(p, "slots_used", env->heartbeat->slots_used, 0, SL_MSG_SLOTS_MAX, err, cap);
    case SLUICE__ENVELOPE__BODY_DEPLOY:
        return s_deploy(p, env->deploy, err, cap);
    case SLUICE__ENVELOPE__BODY_TASK_STATE: {
        const Sluice__TaskState *t = env->task_state;
        S_TRY(s_str(p, "job_id", t->job_id, SL_MSG_ID_MAX, true, err, cap));
        S_TRY(s_ref(p, "ref", t->ref, err, cap));
        S_TRY(s_range(p, "state", (uint64_t)(int64_t)t->state,
                      SLUICE__TASK_STATE_KIND__TASK_DEPLOYING,
                      SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, err, cap));
        S_TRY(s_str(p, "error", t->error, SL_MSG_TEXT_MAX, false, err, cap));
        S_TRY(s_str(p, "data_endpoint", t->data_endpoint, SL_MSG_ENDPOINT_MAX, false, err, cap));
        return s_metrics(p, t->n_metrics, t->metrics, err, cap);
    }
    case SLUICE__ENVELOPE__BODY_CANCEL_TASKS:
        return s_str(p, "job_id", env->cancel_tasks->job_id, SL_MSG_ID_MAX, true, err, cap);
    case SLUICE__ENVELOPE__BODY_SUBMIT_JOB: {
        const Sluice__SubmitJob *s = env->submit_job;
        S_TRY(s_str(p, "spec_file", s->spec_file, SL_MSG_PATH_MAX, false, err, cap));
        S_TRY(s_bytes(p, "spec_text", &s->spec_text, SL_MSG_SPEC_MAX, true, err, cap));
        S_TRY(s_params(p, s->n_params, s->params, err, cap));
        S_TRY(s_str(p, "from_savepoint", s->from_savepoint, SL_MSG_PATH_MAX, false, err, cap));
        S_TRY(s_bytes(p, "plugin", &s->plugin, SL_MSG_PLUGIN_MAX, false, err, cap));
        return s_range(p, "parallelism", s->parallelism, 0, SL_MSG_SUBTASK_MAX, err, cap);
    }
    case SLUICE__ENVELOPE__BODY_SUBMIT_REPLY:
        return s_str(p, "job_id", env->submit_reply->job_id, SL_MSG_ID_MAX, true, err, cap);
    case SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
        return s_str(p, "job_id", env->job_status_request->job_id, SL_MSG_ID_MAX, true, err, cap);
    case SLUICE__ENVELOPE__BODY_JOB_STATUS:
        return s_job_status(p, env->job_status, err, cap);
    case SLUICE__ENVELOPE__BODY_CANCEL_JOB:
        return s_str(p, "job_id", env->cancel_job->job_id, SL_MSG_ID_MAX, true, err, cap);
    case SLUICE__ENVELOPE__BODY_SAVEPOINT_REQUEST:
        S_TRY(s_str(p, "job_id", env->savepoint_request->job_id, SL_MSG_ID_MAX, true, err, cap));
        return s_str(p, "dir", env->savepoint_request->dir, SL_MSG_PATH_MAX, false, err, cap);
    case SLUICE__ENVELOPE__BODY_SAVEPOINT_REPLY:
        return s_str(p, "path", env->savepoint_reply->path, SL_MSG_PATH_MAX, true, err, cap);
    case SLUICE__ENVELOPE__BODY_JOB_LIST: {
        const Sluice__JobList *l = env->job_list;
        S_TRY(s_count(p, "jobs", l->n_jobs, l->jobs, SL_MSG_REPEATED_MAX, err, cap));
        for (size_t i = 0; i < l->n_jobs; i++) {
            char sub[S_PATH_CAP];
            S_TRY(s_elem(p, "jobs", i, l->jobs[i], sub, err, cap));
            S_TRY(s_job_status(sub, l->jobs[i], err, cap));
        }
        return 0;
    }
    case SLUICE__ENVELOPE__BODY_ERROR:
        if (env->error->code >= 0) {
            s_err(err, cap, "%s.code is %d, must be a negative error code", p,
                  (int)env->error->code);
            return SL_PROTO;
        }
        return s_str(p, "message", env->error->message, SL_MSG_TEXT_MAX, false, err, cap);
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER:
        S_TRY(s_str(p, "job_id", env->checkpoint_trigger->job_id, SL_MSG_ID_MAX, true, err, cap));
        return s_range(p, "checkpoint_id", env->checkpoint_trigger->checkpoint_id, 1, UINT64_MAX,
                       err, cap);
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK: {
        const Sluice__CheckpointAck *a = env->checkpoint_ack;
        S_TRY(s_str(p, "job_id", a->job_id, SL_MSG_ID_MAX, true, err, cap));
        S_TRY(s_range(p, "checkpoint_id", a->checkpoint_id, 1, UINT64_MAX, err, cap));
        S_TRY(s_ref(p, "ref", a->ref, err, cap));
        S_TRY(
            s_str(p, "file", a->file, SL_MSG_PATH_MAX, !a->declined || !a->declined[0], err, cap));
        S_TRY(s_str(p, "sha256", a->sha256, 64, false, err, cap));
        S_TRY(s_str(p, "declined", a->declined, SL_MSG_TEXT_MAX, false, err, cap));
        return s_bytes(p, "state_handle", &a->state_handle, SL_MSG_STATE_HANDLE_MAX, false, err,
                       cap);
    }
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE:
        S_TRY(s_str(p, "job_id", env->checkpoint_complete->job_id, SL_MSG_ID_MAX, true, err, cap));
        return s_range(p, "checkpoint_id", env->checkpoint_complete->checkpoint_id, 1, UINT64_MAX,
                       err, cap);
    case SLUICE__ENVELOPE__BODY_JOB_RECORD: {
        const Sluice__JobRecord *r = env->job_record;
        S_TRY(s_str(p, "job_id", r->job_id, SL_MSG_ID_MAX, true, err, cap));
        if (!r->submit) {
            s_err(err, cap, "%s.submit is required", p);
            return SL_PROTO;
        }
        S_TRY(s_str(p, "spec_file", r->submit->spec_file, SL_MSG_PATH_MAX, false, err, cap));
        S_TRY(s_bytes(p, "spec_text", &r->submit->spec_text, SL_MSG_SPEC_MAX, true, err, cap));
        S_TRY(s_params(p, r->submit->n_params, r->submit->params, err, cap));
        S_TRY(s_str(p, "plugin_sha256", r->plugin_sha256, 64, false, err, cap));
        S_TRY(s_range(p, "state", (uint64_t)(int64_t)r->state, 0,
                      SLUICE__JOB_STATE_KIND__JOB_STOPPED, err, cap));
        S_TRY(s_str(p, "error", r->error, SL_MSG_TEXT_MAX, false, err, cap));
        S_TRY(s_count(p, "failures", r->n_failures, r->failures, SL_MSG_REPEATED_MAX, err, cap));
        for (size_t i = 0; i < r->n_failures; i++)
            S_TRY(s_str(p, "failures[]", r->failures[i], SL_MSG_TEXT_MAX, false, err, cap));
        return 0;
    }
    case SLUICE__ENVELOPE__BODY_START_TASKS: {
        const Sluice__StartTasks *st = env->start_tasks;
        S_TRY(s_str(p, "job_id", st->job_id, SL_MSG_ID_MAX, true, err, cap));
        return s_locations(p, st->n_locations, st->locations, err, cap);
    }
    case SLUICE__ENVELOPE__BODY_WORKER_LIST: {
        const Sluice__WorkerList *l = env->worker_list;
        S_TRY(s_count(p, "workers", l->n_workers, l->workers, SL_MSG_REPEATED_MAX, err, cap));
        for (size_t i = 0; i < l->n_workers; i++) {
            char sub[S_PATH_CAP];
            const Sluice__WorkerInfo *w = l->workers[i];
            S_TRY(s_elem(p, "workers", i, w, sub, err, cap));
            S_TRY(s_str(sub, "worker_id", w->worker_id, SL_MSG_ID_MAX, true, err, cap));
            S_TRY(s_str(sub, "host", w->host, SL_MSG_ID_MAX, false, err, cap));
            S_TRY(s_str(sub, "data_endpoint", w->data_endpoint, SL_MSG_ENDPOINT_MAX, false, err,
                        cap));
        }
        return 0;
    }
    case SLUICE__ENVELOPE__BODY_LIST_JOBS:
    case SLUICE__ENVELOPE__BODY_OK:
    case SLUICE__ENVELOPE__BODY_SHUTDOWN:
    case SLUICE__ENVELOPE__BODY_WORKERS_REQUEST:
        return 0;
    default:
        break;
    }
    s_err(err, cap, "envelope has no (known) body");
    return SL_PROTO;
}

int sl_msg_validate(const Sluice__Envelope *env, char *err, size_t cap)
{
    if (!env) {
        s_err(err, cap, "no envelope");
        return SL_PROTO;
    }
    if (env->body_case == SLUICE__ENVELOPE__BODY__NOT_SET) {
        s_err(err, cap, "envelope has no body");
        return SL_PROTO;
    }
    /* Every member of the oneof is a pointer at the same place. */
    if (env->register_ == NULL) {
        s_err(err, cap, "%s body is null", sl_msg_kind_name(env));
        return SL_PROTO;
    }
    return s_body(env, sl_msg_kind_name(env), err, cap);
}

const char *sl_msg_kind_name(const Sluice__Envelope *env)
{
    if (!env)
        return "none";
    switch (env->body_case) {
    case SLUICE__ENVELOPE__BODY_REGISTER:
        return "register";
    case SLUICE__ENVELOPE__BODY_REGISTER_ACK:
        return "register_ack";
    case SLUICE__ENVELOPE__BODY_HEARTBEAT:
        return "heartbeat";
    case SLUICE__ENVELOPE__BODY_DEPLOY:
        return "deploy";
    case SLUICE__ENVELOPE__BODY_TASK_STATE:
        return "task_state";
    case SLUICE__ENVELOPE__BODY_CANCEL_TASKS:
        return "cancel_tasks";
    case SLUICE__ENVELOPE__BODY_SUBMIT_JOB:
        return "submit_job";
    case SLUICE__ENVELOPE__BODY_SUBMIT_REPLY:
        return "submit_reply";
    case SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
        return "job_status_request";
    case SLUICE__ENVELOPE__BODY_JOB_STATUS:
        return "job_status";
    case SLUICE__ENVELOPE__BODY_CANCEL_JOB:
        return "cancel_job";
    case SLUICE__ENVELOPE__BODY_LIST_JOBS:
        return "list_jobs";
    case SLUICE__ENVELOPE__BODY_JOB_LIST:
        return "job_list";
    case SLUICE__ENVELOPE__BODY_OK:
        return "ok";
    case SLUICE__ENVELOPE__BODY_ERROR:
        return "error";
    case SLUICE__ENVELOPE__BODY_SHUTDOWN:
        return "shutdown";
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER:
        return "checkpoint_trigger";
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK:
        return "checkpoint_ack";
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE:
        return "checkpoint_complete";
    case SLUICE__ENVELOPE__BODY_JOB_RECORD:
        return "job_record";
    case SLUICE__ENVELOPE__BODY_SAVEPOINT_REQUEST:
        return "savepoint_request";
    case SLUICE__ENVELOPE__BODY_SAVEPOINT_REPLY:
        return "savepoint_reply";
    case SLUICE__ENVELOPE__BODY_START_TASKS:
        return "start_tasks";
    case SLUICE__ENVELOPE__BODY_WORKERS_REQUEST:
        return "workers_request";
    case SLUICE__ENVELOPE__BODY_WORKER_LIST:
        return "worker_list";
    default:
        return "none";
    }
}

/* ---- encode / decode ------------------------------------------------------- */

void sl_msg_init(Sluice__Envelope *env, uint64_t request_id)
{
    sluice__envelope__init(env);
    env->version = SL_PROTO_VERSION;
    env->request_id = request_id;
}

void sl_msg_free(Sluice__Envelope **pp)
{
    if (!pp || !*pp)
        return;
    sluice__envelope__free_unpacked(*pp, NULL);
    *pp = NULL;
}

/* Copies env with the version forced and computes its packed size. */
static int s_prepare(const Sluice__Envelope *env, Sluice__Envelope *tmp, size_t *n)
{
    if (!env || env->body_case == SLUICE__ENVELOPE__BODY__NOT_SET || env->register_ == NULL)
        return SL_INVAL;
    *tmp = *env;
    tmp->version = SL_PROTO_VERSION;
    *n = sluice__envelope__get_packed_size(tmp);
    if (*n > SL_MSG_MAX_BYTES)
        return SL_LIMIT;
    return 0;
}

int sl_msg_encode(const Sluice__Envelope *env, uint8_t **buf, size_t *len)
{
    if (!buf || !len)
        return SL_INVAL;
    *buf = NULL;
    *len = 0;
    Sluice__Envelope tmp;
    size_t n;
    S_TRY(s_prepare(env, &tmp, &n));
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return SL_NOMEM;
    *len = sluice__envelope__pack(&tmp, b);
    *buf = b;
    return 0;
}

static int s_decode(const uint8_t *data, size_t len, Sluice__Envelope **out, uint64_t *request_id,
                    char *err, size_t cap)
{
    if (len == 0) {
        s_err(err, cap, "empty message");
        return SL_PROTO;
    }
    if (!data) {
        s_err(err, cap, "no data");
        return SL_PROTO;
    }
    if (len > SL_MSG_MAX_BYTES) {
        s_err(err, cap, "message of %zu bytes exceeds the limit of %u bytes", len,
              SL_MSG_MAX_BYTES);
        return SL_PROTO;
    }
    s_scan_t st = {0, 0};
    S_TRY(s_scan(&sluice__envelope__descriptor, data, len, 0, "", &st, err, cap));
    Sluice__Envelope *env = sluice__envelope__unpack(NULL, len, data);
    if (!env) {
        s_err(err, cap, "undecodable envelope (%zu bytes)", len);
        return SL_PROTO;
    }
    if (request_id)
        *request_id = env->request_id;
    if (env->version != SL_PROTO_VERSION) {
        s_err(err, cap, "protocol version %u, expected %u", (unsigned)env->version,
              (unsigned)SL_PROTO_VERSION);
        sl_msg_free(&env);
        return SL_VERSION;
    }
    int rc = sl_msg_validate(env, err, cap);
    if (rc != 0) {
        sl_msg_free(&env);
        return rc;
    }
    *out = env;
    return 0;
}

int sl_msg_decode(const uint8_t *data, size_t len, Sluice__Envelope **out, char *err, size_t cap)
{
    if (err && cap)
        err[0] = '\0';
    if (!out)
        return SL_INVAL;
    *out = NULL;
    return s_decode(data, len, out, NULL, err, cap);
}

/* ---- sockets ----------------------------------------------------------------- */

int sl_msg_send_flags(void *zsock, int flags, const void *rid, size_t rid_len,
                      const Sluice__Envelope *env)
{
    if (!zsock || (rid_len > 0 && !rid) || rid_len >= SL_MSG_RID_MAX)
        return SL_INVAL;
    Sluice__Envelope tmp;
    size_t n;
    S_TRY(s_prepare(env, &tmp, &n));
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, n) != 0)
        return SL_NOMEM;
    sluice__envelope__pack(&tmp, zmq_msg_data(&m));
    if (rid_len > 0 && zmq_send(zsock, rid, rid_len, flags | ZMQ_SNDMORE) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&m);
        return s_zerr(e);
    }
    /* Once the first frame is queued the rest of the message must follow,
     * so an interrupted payload send is retried. */
    int rc;
    while ((rc = zmq_msg_send(&m, zsock, flags)) < 0 && rid_len > 0 && zmq_errno() == EINTR)
        ;
    if (rc < 0) {
        int e = zmq_errno();
        zmq_msg_close(&m);
        return s_zerr(e);
    }
    return 0;
}

int sl_msg_send(void *zsock, const void *rid, size_t rid_len, const Sluice__Envelope *env)
{
    return sl_msg_send_flags(zsock, 0, rid, rid_len, env);
}

/* Receives the next frame of a message whose first frame has arrived (ZeroMQ
 * delivers multipart messages atomically, so this does not block). */
static int s_recv_more(void *zsock, zmq_msg_t *part)
{
    int rc;
    while ((rc = zmq_msg_recv(part, zsock, 0)) < 0 && zmq_errno() == EINTR)
        ;
    return rc < 0 ? -1 : 0;
}

/* Reads and discards the remaining frames of the current message; returns
 * how many there were. */
static size_t s_drain(void *zsock)
{
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (s_recv_more(zsock, &part) != 0) {
            zmq_msg_close(&part);
            break;
        }
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        n++;
    }
    return n;
}

int sl_msg_recv_ex(void *zsock, int flags, void *rid, size_t *rid_len, Sluice__Envelope **out,
                   uint64_t *request_id, char *err, size_t cap)
{
    if (rid_len)
        *rid_len = 0;
    if (request_id)
        *request_id = 0;
    if (err && cap)
        err[0] = '\0';
    if (!out || !zsock) {
        s_err(err, cap, "no socket or output");
        return SL_INVAL;
    }
    *out = NULL;
    int type = 0;
    size_t tl = sizeof type;
    if (zmq_getsockopt(zsock, ZMQ_TYPE, &type, &tl) != 0) {
        s_err(err, cap, "zmq_getsockopt: %s", zmq_strerror(zmq_errno()));
        return SL_ZMQ;
    }
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, zsock, flags) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        int rc = s_zerr(e);
        s_err(err, cap, "%s", rc == SL_TIMEOUT ? "no message" : zmq_strerror(e));
        return rc;
    }
    if (type == ZMQ_ROUTER) {
        size_t n = zmq_msg_size(&part);
        if (rid && n <= SL_MSG_RID_MAX) {
            memcpy(rid, zmq_msg_data(&part), n);
            if (rid_len)
                *rid_len = n;
        }
        int more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more) {
            s_err(err, cap, "routing id without a payload frame");
            return SL_PROTO;
        }
        zmq_msg_init(&part);
        if (s_recv_more(zsock, &part) != 0) {
            int e = zmq_errno();
            zmq_msg_close(&part);
            s_err(err, cap, "zmq_msg_recv: %s", zmq_strerror(e));
            return SL_ZMQ;
        }
    }
    if (zmq_msg_more(&part)) {
        size_t extra = s_drain(zsock);
        zmq_msg_close(&part);
        s_err(err, cap, "expected 1 payload frame, got %zu", extra + 1);
        return SL_PROTO;
    }
    int rc = s_decode(zmq_msg_data(&part), zmq_msg_size(&part), out, request_id, err, cap);
    zmq_msg_close(&part);
    return rc;
}

int sl_msg_recv(void *zsock, int flags, void *rid, size_t *rid_len, Sluice__Envelope **out,
                char *err, size_t cap)
{
    return sl_msg_recv_ex(zsock, flags, rid, rid_len, out, NULL, err, cap);
}

/* ---- convenience builders ------------------------------------------------- */

int sl_msg_send_error(void *zsock, const void *rid, size_t rid_len, uint64_t request_id, int code,
                      const char *fmt, ...)
{
    if (code >= 0 || !fmt)
        return SL_INVAL;
    char *text = malloc(SL_MSG_TEXT_MAX + 1);
    if (!text)
        return SL_NOMEM;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(text, SL_MSG_TEXT_MAX + 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        text[0] = '\0';
    sl_msg_sanitize_utf8(text);
    Sluice__Envelope env;
    sl_msg_init(&env, request_id);
    Sluice__Error e = SLUICE__ERROR__INIT;
    e.code = code;
    e.message = text;
    env.body_case = SLUICE__ENVELOPE__BODY_ERROR;
    env.error = &e;
    int rc = sl_msg_send(zsock, rid, rid_len, &env);
    free(text);
    return rc;
}

int sl_msg_send_ok(void *zsock, const void *rid, size_t rid_len, uint64_t request_id)
{
    Sluice__Envelope env;
    sl_msg_init(&env, request_id);
    Sluice__Ok ok = SLUICE__OK__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_OK;
    env.ok = &ok;
    return sl_msg_send(zsock, rid, rid_len, &env);
}

int sl_msg_limit_socket(void *zsock)
{
    int64_t max = SL_MSG_MAX_BYTES;
    if (!zsock || zmq_setsockopt(zsock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0)
        return SL_ZMQ;
    return 0;
}
