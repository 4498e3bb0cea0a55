/* check_master_fuzz.c — hostile control traffic against a real master:
 * random frames, mutated envelopes, other protocol versions, oversized
 * frames, raw TCP garbage, and requests that are well-formed but make no
 * sense. Every message the decoder rejects must get exactly one Error reply
 * carrying the code and the text the decoder gives it locally (or, for an
 * oversized frame, cost the sender its connection); every well-formed one
 * gets the answer its kind calls for; every reply is itself a valid
 * envelope; and after each case a fresh client still gets normal answers.
 *
 * The master's rules on who may say what are asserted too: Register and
 * Heartbeat only over the connection whose identity is the worker id, task
 * reports only from the connection of the worker running the task, and no
 * Shutdown on request (this master is not started with allow_shutdown).
 *
 * Attribution: on one DEALER every fuzzed message is followed by a sentinel
 * (a WorkersRequest with a marked request id). The master answers in order,
 * so the replies read before sentinel i are exactly the replies to message
 * i — also for messages that get no reply at all. Everything is seeded, so
 * a failure replays identically. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "master.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/msg.h"
#include "testutil.h"

/* Request ids of sentinels: a marker in the high bits, the sequence below. */
#define S_SENTINEL (UINT64_C(0xC0FFEE) << 40)
#define S_BATCH 100      /* messages in flight at once (well below the HWMs) */
#define S_MAX_REPLIES 4  /* more replies than this to one message is a failure */
#define S_REPLY_MS 10000 /* deadline for any single expected reply */
#define S_FRAME_CAP 4608 /* random frames are at most this long */

static const char *s_good_spec = "name: fuzz-ok\n"
                                 "parallelism: 2\n"
                                 "sources:\n"
                                 "  - { name: src, type: file, format: text, path: '${input}' }\n"
                                 "operators:\n"
                                 "  - { name: tag, type: map, input: src, select: { l: line } }\n"
                                 "sinks:\n"
                                 "  - { name: out, type: stdout, input: tag }\n";

/* Unclosed flow mapping: libyaml stops at line 4, column 6. */
static const char *s_broken_spec = "name: broken\n"
                                   "sources:\n"
                                   "  - { name: src, type: file, format: text, path: x\n"
                                   "sinks: [\n";

/* ---- fixture ------------------------------------------------------------- */

typedef struct {
    void *zctx;     /* the test's own ZeroMQ context */
    sl_master_t *m; /* the master under test */
    char ep[256];   /* its bound tcp endpoint */
    uint64_t seq;   /* next sentinel number */
    int sent;       /* fuzzed messages sent */
    int errors;     /* Error replies to fuzzed messages */
    int answers;    /* other replies to fuzzed messages */
    int silent;     /* fuzzed messages that got no reply */
    int valid;      /* fuzzed messages that decode as valid envelopes */
    int pushes;     /* master-initiated messages (Deploy, ...) to a worker id */
} s_env_t;

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_start(s_env_t *e)
{
    char err[256];
    memset(e, 0, sizeof *e);
    e->zctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(e->zctx);
    e->m = sl_master_start(&(sl_master_opts_t){.zctx = e->zctx,
                                               .endpoint = "tcp://127.0.0.1:*",
                                               .heartbeat_timeout_ms = 5000},
                           err, sizeof err);
    ck_assert_msg(e->m != NULL, "%s", err);
    sl_master_endpoint(e->m, e->ep, sizeof e->ep);
    ck_assert_msg(strncmp(e->ep, "tcp://127.0.0.1:", 16) == 0, "endpoint %s", e->ep);
}

static void s_stop(s_env_t *e)
{
    sl_master_stop(e->m);
    sl_master_join(&e->m);
    zmq_ctx_term(e->zctx);
}

/* ---- deterministic randomness -------------------------------------------- */

typedef struct {
    uint64_t s; /* splitmix64 state */
} s_rng_t;

static uint64_t s_next(s_rng_t *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform-ish in 0 .. n-1 (0 when n == 0). */
static size_t s_below(s_rng_t *r, size_t n)
{
    return n ? (size_t)(s_next(r) % n) : 0;
}

/* ---- sockets --------------------------------------------------------------- */

/* A raw DEALER to the master (no size limit of its own, sends time out). */
static void *s_dealer_unconnected(s_env_t *e)
{
    void *s = zmq_socket(e->zctx, ZMQ_DEALER);
    ck_assert_ptr_nonnull(s);
    int linger = 0, tmo = 5000;
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo), 0);
    return s;
}

static void *s_dealer(s_env_t *e)
{
    void *s = s_dealer_unconnected(e);
    ck_assert_int_eq(zmq_connect(s, e->ep), 0);
    return s;
}

/* A raw DEALER whose identity is id, as a real worker connects. */
static void *s_worker_dealer(s_env_t *e, const char *id)
{
    void *s = s_dealer_unconnected(e);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id)), 0);
    ck_assert_int_eq(zmq_connect(s, e->ep), 0);
    return s;
}

/* Next reply on a DEALER, waiting until deadline (monotonic ms); NULL on
 * timeout. A reply that does not decode and validate fails the test. */
static Sluice__Envelope *s_recv(void *s, uint64_t deadline)
{
    for (;;) {
        Sluice__Envelope *r = NULL;
        char err[256];
        int rc = sl_msg_recv(s, ZMQ_DONTWAIT, NULL, NULL, &r, err, sizeof err);
        if (rc == SL_OK)
            return r;
        if (rc != SL_TIMEOUT)
            ck_abort_msg("the master sent an invalid reply: %s (%s)", sl_strerror(rc), err);
        uint64_t now = s_now_ms();
        if (now >= deadline)
            return NULL;
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, (long)(deadline - now));
    }
}

static void s_send_env(void *s, const Sluice__Envelope *env)
{
    int rc = sl_msg_send(s, NULL, 0, env);
    ck_assert_msg(rc == SL_OK, "sl_msg_send: %s", sl_strerror(rc));
}

static void s_send_sentinel(void *s, uint64_t n)
{
    Sluice__Envelope env;
    sl_msg_init(&env, S_SENTINEL | n);
    Sluice__WorkersRequest wr = SLUICE__WORKERS_REQUEST__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    s_send_env(s, &env);
}

static bool s_is_sentinel(const Sluice__Envelope *r)
{
    return (r->request_id & ~UINT64_C(0xFFFFFFFFFF)) == S_SENTINEL &&
           r->body_case == SLUICE__ENVELOPE__BODY_WORKER_LIST;
}

/* Packs env as it is (the version is NOT forced, unlike sl_msg_encode). */
static uint8_t *s_pack_raw(const Sluice__Envelope *env, size_t *len)
{
    *len = sluice__envelope__get_packed_size(env);
    uint8_t *b = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(sluice__envelope__pack(env, b), *len);
    return b;
}

/* ---- the oracle ------------------------------------------------------------ */

typedef struct {
    bool valid;       /* the payload decodes as a valid envelope */
    int min, max;     /* number of replies allowed */
    uint64_t req;     /* request id a reply must echo */
    bool req_zero_ok; /* ... or 0 (the master could not read it) */
    int body;         /* success body accepted, 0 = none */
    int code;         /* error code accepted, 0 = none */
    bool text_exact;  /* the error text must equal text (else contain it) */
    char text[640];   /* expected error text ("" = any) */
} s_expect_t;

#define S_NOT_MY_ID "worker '%s' must connect with its id as the connection identity"
#define S_NO_SHUTDOWN "this master does not stop on request; send it SIGTERM"

/* What the master must answer to a message of nframes frames whose first
 * frame is p[0..n), sent over a connection whose identity is ident (NULL:
 * one ZeroMQ generated, which no worker id can equal): the master decodes
 * with the same sl_msg_decode rules, so a rejected payload gets exactly the
 * local code and text back. */
static s_expect_t s_oracle(const uint8_t *p, size_t n, int nframes, const char *ident)
{
    s_expect_t x = {.min = 1, .max = 1};
    if (nframes != 1) {
        x.code = SL_PROTO;
        x.req_zero_ok = true;
        x.text_exact = true;
        snprintf(x.text, sizeof x.text, "expected 1 payload frame, got %d", nframes);
        return x;
    }
    Sluice__Envelope *env = NULL;
    int rc = sl_msg_decode(p, n, &env, x.text, sizeof x.text);
    if (rc != SL_OK) {
        x.code = rc;
        x.text_exact = true;
        /* The id is echoed whenever the master could unpack the payload,
         * which it must have for a version mismatch. */
        x.req_zero_ok = rc != SL_VERSION;
        Sluice__Envelope *raw = n ? sluice__envelope__unpack(NULL, n, p) : NULL;
        if (raw) {
            x.req = raw->request_id;
            sluice__envelope__free_unpacked(raw, NULL);
        }
        ck_assert_msg(rc != SL_VERSION || raw, "a version mismatch must have unpacked");
        return x;
    }
    x.text[0] = '\0';
    x.valid = true;
    x.req = env->request_id;
    const char *who = env->body_case == SLUICE__ENVELOPE__BODY_REGISTER ? env->register_->worker_id
                      : env->body_case == SLUICE__ENVELOPE__BODY_HEARTBEAT
                          ? env->heartbeat->worker_id
                          : NULL;
    if (who && (!ident || strcmp(who, ident) != 0)) {
        /* A worker message over a connection that is not that worker's. */
        x.code = SL_INVAL;
        x.text_exact = true;
        snprintf(x.text, sizeof x.text, S_NOT_MY_ID, who);
        sl_msg_free(&env);
        return x;
    }
    switch (env->body_case) {
    case SLUICE__ENVELOPE__BODY_SHUTDOWN: /* not obeyed: no allow_shutdown */
        x.code = SL_PROTO;
        x.text_exact = true;
        snprintf(x.text, sizeof x.text, S_NO_SHUTDOWN);
        break;
    case SLUICE__ENVELOPE__BODY_REGISTER:
        x.body = SLUICE__ENVELOPE__BODY_REGISTER_ACK;
        break;
    case SLUICE__ENVELOPE__BODY_HEARTBEAT: /* silent for a live worker */
        x.min = 0;
        x.code = SL_NOTFOUND;
        x.text_exact = true;
        snprintf(x.text, sizeof x.text, "unknown worker '%s'", who);
        break;
    case SLUICE__ENVELOPE__BODY_TASK_STATE: /* one-way */
        x.min = x.max = 0;
        break;
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK: /* one-way once checkpoints exist */
        x.min = 0;
        x.code = SL_PROTO;
        break;
    case SLUICE__ENVELOPE__BODY_SUBMIT_JOB:
        x.body = SLUICE__ENVELOPE__BODY_SUBMIT_REPLY;
        x.code = SL_SPEC;
        break;
    case SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
        x.body = SLUICE__ENVELOPE__BODY_JOB_STATUS;
        x.code = SL_NOTFOUND;
        break;
    case SLUICE__ENVELOPE__BODY_CANCEL_JOB:
        x.body = SLUICE__ENVELOPE__BODY_OK;
        x.code = SL_NOTFOUND;
        break;
    case SLUICE__ENVELOPE__BODY_LIST_JOBS:
        x.body = SLUICE__ENVELOPE__BODY_JOB_LIST;
        break;
    case SLUICE__ENVELOPE__BODY_WORKERS_REQUEST:
        x.body = SLUICE__ENVELOPE__BODY_WORKER_LIST;
        break;
    default:
        x.code = SL_PROTO;
        snprintf(x.text, sizeof x.text, "the master does not accept '%s'", sl_msg_kind_name(env));
        break;
    }
    sl_msg_free(&env);
    return x;
}

static void s_check(const s_expect_t *x, Sluice__Envelope *const *r, int n, const char *what)
{
    if (n < x->min || n > x->max)
        ck_abort_msg("%s: %d replies, expected %d..%d (first: '%s' %s)", what, n, x->min, x->max,
                     n ? sl_msg_kind_name(r[0]) : "-",
                     n && r[0]->body_case == SLUICE__ENVELOPE__BODY_ERROR ? r[0]->error->message
                                                                          : "");
    for (int i = 0; i < n; i++) {
        if (r[i]->request_id != x->req && !(x->req_zero_ok && r[i]->request_id == 0))
            ck_abort_msg("%s: reply '%s' has request id %llu, expected %llu", what,
                         sl_msg_kind_name(r[i]), (unsigned long long)r[i]->request_id,
                         (unsigned long long)x->req);
        if (r[i]->body_case == SLUICE__ENVELOPE__BODY_ERROR) {
            const Sluice__Error *er = r[i]->error;
            if (x->code == 0 || er->code != x->code)
                ck_abort_msg("%s: unexpected Error %s '%s' (expected %s)", what,
                             sl_errname(er->code), er->message,
                             x->code ? sl_errname(x->code) : "no error");
            if (x->text[0] && (x->text_exact ? strcmp(er->message, x->text) != 0
                                             : strstr(er->message, x->text) == NULL))
                ck_abort_msg("%s: Error text '%s', expected %s'%s'", what, er->message,
                             x->text_exact ? "" : "to contain ", x->text);
        } else if (x->body == 0 || (int)r[i]->body_case != x->body) {
            ck_abort_msg("%s: unexpected reply '%s'", what, sl_msg_kind_name(r[i]));
        }
    }
}

/* ---- the batch runner --------------------------------------------------------- */

typedef struct {
    uint8_t *frames[4]; /* owned */
    size_t lens[4];
    int nframes;
} s_msg_t;

static void s_msg_clear(s_msg_t *m)
{
    for (int i = 0; i < m->nframes; i++)
        free(m->frames[i]);
    memset(m, 0, sizeof *m);
}

/* True for what the master sends a worker on its own initiative. */
static bool s_is_push(const Sluice__Envelope *r)
{
    return r->body_case == SLUICE__ENVELOPE__BODY_DEPLOY ||
           r->body_case == SLUICE__ENVELOPE__BODY_START_TASKS ||
           r->body_case == SLUICE__ENVELOPE__BODY_CANCEL_TASKS;
}

/* Sends msgs (each followed by a sentinel) on d, whose identity is ident
 * (NULL: generated), then reads every reply and checks it against the
 * oracle; frees the messages. On a worker's connection (ident set) the
 * master's pushes to that worker are counted and set aside. */
static void s_run_batch(s_env_t *e, void *d, const char *ident, s_msg_t *msgs, int n,
                        const char *what)
{
    s_expect_t *x = calloc((size_t)n, sizeof *x);
    uint64_t *sid = calloc((size_t)n, sizeof *sid);
    ck_assert(x && sid);
    for (int i = 0; i < n; i++) {
        x[i] = s_oracle(msgs[i].frames[0], msgs[i].lens[0], msgs[i].nframes, ident);
        if (x[i].valid)
            e->valid++;
        for (int f = 0; f < msgs[i].nframes; f++) {
            int flags = f + 1 < msgs[i].nframes ? ZMQ_SNDMORE : 0;
            static const uint8_t nothing = 0;
            const void *buf = msgs[i].lens[f] ? (const void *)msgs[i].frames[f] : &nothing;
            ck_assert_msg(zmq_send(d, buf, msgs[i].lens[f], flags) >= 0, "zmq_send: %s",
                          zmq_strerror(zmq_errno()));
        }
        sid[i] = e->seq++;
        s_send_sentinel(d, sid[i]);
        e->sent++;
    }
    for (int i = 0; i < n; i++) {
        Sluice__Envelope *r[S_MAX_REPLIES + 1];
        int nr = 0;
        for (;;) {
            Sluice__Envelope *rep = s_recv(d, s_now_ms() + S_REPLY_MS);
            if (!rep)
                ck_abort_msg("%s %d: no sentinel answer within %d ms (master stuck?)", what, i,
                             S_REPLY_MS);
            if (s_is_sentinel(rep)) {
                uint64_t got = rep->request_id & UINT64_C(0xFFFFFFFFFF);
                sl_msg_free(&rep);
                ck_assert_msg(got == sid[i], "%s %d: sentinel %llu out of order, want %llu", what,
                              i, (unsigned long long)got, (unsigned long long)sid[i]);
                break;
            }
            if (ident && s_is_push(rep)) {
                e->pushes++;
                sl_msg_free(&rep);
                continue;
            }
            if (nr == S_MAX_REPLIES)
                ck_abort_msg("%s %d: more than %d replies", what, i, S_MAX_REPLIES);
            r[nr++] = rep;
        }
        char label[96];
        snprintf(label, sizeof label, "%s %d (%d frame(s), %zu bytes)", what, i, msgs[i].nframes,
                 msgs[i].lens[0]);
        s_check(&x[i], r, nr, label);
        for (int k = 0; k < nr; k++) {
            if (r[k]->body_case == SLUICE__ENVELOPE__BODY_ERROR)
                e->errors++;
            else
                e->answers++;
            sl_msg_free(&r[k]);
        }
        if (nr == 0)
            e->silent++;
    }
    for (int i = 0; i < n; i++)
        s_msg_clear(&msgs[i]);
    free(x);
    free(sid);
}

/* ---- "still serving" ---------------------------------------------------------- */

/* A fresh client gets normal answers: ListJobs, WorkersRequest, a submit of
 * a good spec and the status of the job it created, NOTFOUND for another. */
static void s_assert_serving(s_env_t *e)
{
    ck_assert_msg(sl_master_running(e->m), "the master's loop has ended");
    sl_client_t *c = sl_client_new(e->zctx, e->ep);
    ck_assert_ptr_nonnull(c);
    char err[1024], job[64];
    Sluice__Envelope env, *rep = NULL;

    sl_msg_init(&env, 0);
    Sluice__ListJobs lj = SLUICE__LIST_JOBS__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_LIST_JOBS;
    env.list_jobs = &lj;
    ck_assert_msg(sl_client_call(c, &env, S_REPLY_MS, &rep, err, sizeof err) == SL_OK,
                  "ListJobs: %s", err);
    ck_assert_int_eq(rep->body_case, SLUICE__ENVELOPE__BODY_JOB_LIST);
    sl_msg_free(&rep);

    sl_msg_init(&env, 0);
    Sluice__WorkersRequest wr = SLUICE__WORKERS_REQUEST__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    ck_assert_msg(sl_client_call(c, &env, S_REPLY_MS, &rep, err, sizeof err) == SL_OK,
                  "WorkersRequest: %s", err);
    ck_assert_int_eq(rep->body_case, SLUICE__ENVELOPE__BODY_WORKER_LIST);
    sl_msg_free(&rep);

    sl_params_t *params = sl_params_new();
    ck_assert_ptr_nonnull(params);
    sl_params_set(params, "input", "/nonexistent/in.txt");
    int rc = sl_client_submit(c, "ok.yaml", s_good_spec, strlen(s_good_spec), params, 0, job,
                              sizeof job, err, sizeof err);
    sl_params_destroy(&params);
    ck_assert_msg(rc == SL_OK, "submit: %s: %s", sl_strerror(rc), err);
    ck_assert_msg(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err) == SL_OK,
                  "status of %s: %s", job, err);
    ck_assert_int_eq(rep->body_case, SLUICE__ENVELOPE__BODY_JOB_STATUS);
    ck_assert_str_eq(rep->job_status->job_id, job);
    ck_assert_str_eq(rep->job_status->name, "fuzz-ok");
    sl_msg_free(&rep);

    ck_assert_int_eq(sl_client_status(c, "job-none", S_REPLY_MS, &rep, err, sizeof err),
                     SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "job-none"));
    sl_client_destroy(&c);
}

/* sl_client_call on env; returns the code and leaves the text in err. */
static int s_call(sl_client_t *c, Sluice__Envelope *env, Sluice__Envelope **rep, char *err,
                  size_t cap)
{
    *rep = NULL;
    err[0] = '\0';
    return sl_client_call(c, env, S_REPLY_MS, rep, err, cap);
}

static Sluice__Envelope *s_workers(sl_client_t *c)
{
    Sluice__Envelope env, *rep = NULL;
    char err[512];
    sl_msg_init(&env, 0);
    Sluice__WorkersRequest wr = SLUICE__WORKERS_REQUEST__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    ck_assert_msg(s_call(c, &env, &rep, err, sizeof err) == SL_OK, "%s", err);
    ck_assert_int_eq(rep->body_case, SLUICE__ENVELOPE__BODY_WORKER_LIST);
    return rep;
}

/* ---- generators --------------------------------------------------------------- */

static size_t s_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Random protobuf-shaped fields into p (at most cap bytes): mostly known
 * field numbers with plausible wire types, nested messages, and now and
 * then a lying length, an odd wire type or a huge field number. */
static size_t s_gen_fields(s_rng_t *r, uint8_t *p, size_t cap, int depth)
{
    static const uint32_t nums[] = {1,  2,  3,  4,  5,  6,  7,  9,  10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 26, 27, 28, 30, 31, 32};
    size_t n = 0;
    size_t nf = 1 + s_below(r, 5);
    for (size_t i = 0; i < nf && cap - n > 40; i++) {
        uint64_t num = s_below(r, 5) ? nums[s_below(r, sizeof nums / sizeof nums[0])]
                                     : s_below(r, UINT64_C(1) << 30);
        unsigned wt = s_below(r, 8) ? (s_below(r, 3) ? 2u : 0u) : (unsigned)s_below(r, 8);
        n += s_put_varint(p + n, (num << 3) | wt);
        switch (wt) {
        case 0:
            n += s_put_varint(p + n, s_below(r, 2) ? s_below(r, 8) : s_next(r));
            break;
        case 1:
        case 5:
            for (size_t k = 0; k < (wt == 1 ? 8u : 4u); k++)
                p[n++] = (uint8_t)s_next(r);
            break;
        case 2: {
            uint8_t sub[1024];
            size_t room = cap - n - 12, sl;
            if (room > sizeof sub)
                room = sizeof sub;
            if (depth < 5 && s_below(r, 2)) {
                sl = s_gen_fields(r, sub, room, depth + 1);
            } else {
                sl = s_below(r, room < 24 ? room : 24);
                for (size_t k = 0; k < sl; k++)
                    sub[k] = (uint8_t)(s_below(r, 4) ? 'a' + s_below(r, 26) : s_next(r));
            }
            uint64_t claimed = s_below(r, 16) ? sl : sl + 1 + s_below(r, 8);
            n += s_put_varint(p + n, claimed);
            memcpy(p + n, sub, sl);
            n += sl;
            break;
        }
        default: /* 3, 4, 6, 7: group markers and invalid types, no payload */
            break;
        }
    }
    return n;
}

/* One random frame: pure noise, a valid header followed by noise, or
 * protobuf-shaped fields (with or without the header). */
static size_t s_gen_frame(s_rng_t *r, uint8_t *p)
{
    size_t n = 0;
    size_t kind = s_below(r, 3);
    if (kind > 0 && s_below(r, 4)) {
        p[n++] = 0x08; /* version */
        p[n++] = s_below(r, 8) ? 0x01 : (uint8_t)s_below(r, 128);
        p[n++] = 0x10; /* request_id */
        n += s_put_varint(p + n, s_next(r) >> s_below(r, 64));
    }
    if (kind == 2)
        return n + s_gen_fields(r, p + n, S_FRAME_CAP - n, 0);
    size_t len = s_below(r, 8) ? s_below(r, 65) : s_below(r, 4097);
    for (size_t i = 0; i < len; i++)
        p[n++] = (uint8_t)s_next(r);
    return n;
}

static void s_gen_random_msg(s_rng_t *r, s_msg_t *m)
{
    m->nframes = s_below(r, 10) ? 1 : 2 + (int)s_below(r, 3);
    for (int f = 0; f < m->nframes; f++) {
        m->frames[f] = malloc(S_FRAME_CAP);
        ck_assert_ptr_nonnull(m->frames[f]);
        m->lens[f] = s_gen_frame(r, m->frames[f]);
    }
}

/* Applies 1..3 random edits to p[0..n) (capacity cap); returns the new length. */
static size_t s_mutate(s_rng_t *r, uint8_t *p, size_t n, size_t cap)
{
    static const uint8_t magic[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0xC0, 0xCA};
    size_t ops = 1 + s_below(r, 3);
    for (size_t k = 0; k < ops; k++) {
        size_t at = s_below(r, n + 1), len = 1 + s_below(r, 8);
        switch (s_below(r, 8)) {
        case 0: /* flip a bit */
            if (n)
                p[s_below(r, n)] ^= (uint8_t)(1u << s_below(r, 8));
            break;
        case 1: /* an interesting byte */
            if (n)
                p[s_below(r, n)] = magic[s_below(r, sizeof magic)];
            break;
        case 2: /* insert random bytes */
            if (n + len <= cap) {
                memmove(p + at + len, p + at, n - at);
                for (size_t i = 0; i < len; i++)
                    p[at + i] = (uint8_t)s_next(r);
                n += len;
            }
            break;
        case 3: /* delete a range */
            if (at < n) {
                if (len > n - at)
                    len = n - at;
                memmove(p + at, p + at + len, n - at - len);
                n -= len;
            }
            break;
        case 4: /* truncate */
            n = s_below(r, n + 1);
            break;
        case 5: { /* duplicate a slice somewhere else */
            size_t from = s_below(r, n + 1);
            len = s_below(r, n - from + 1);
            if (len > 64)
                len = 64;
            if (n + len <= cap) {
                uint8_t tmp[64];
                memcpy(tmp, p + from, len);
                memmove(p + at + len, p + at, n - at);
                memcpy(p + at, tmp, len);
                n += len;
            }
            break;
        }
        case 6: /* an overlong varint */
            for (size_t i = 0; i < len + 3 && at + i < n; i++)
                p[at + i] = 0xFF;
            break;
        default: /* a random byte */
            if (n)
                p[s_below(r, n)] = (uint8_t)s_next(r);
            break;
        }
    }
    return n;
}

/* ---- seeds: real requests of every kind -------------------------------------- */

#define S_NSEEDS 17

/* Encodes seed number i (with sl_msg_encode) into *buf. */
static size_t s_seed(int i, uint8_t **buf)
{
    Sluice__Envelope env;
    sl_msg_init(&env, 1000 + (uint64_t)i);
    Sluice__Param prm = SLUICE__PARAM__INIT, *prms[] = {&prm};
    prm.name = "input";
    prm.value = "/nonexistent/in.txt";
    Sluice__SubtaskRef ref = SLUICE__SUBTASK_REF__INIT, *refs[] = {&ref};
    ref.chain = 0;
    ref.subtask = 1;
    Sluice__OperatorMetrics om = SLUICE__OPERATOR_METRICS__INIT, *oms[] = {&om};
    om.op = "src";
    om.records_in = 10;
    om.records_out = 9;
    om.errors = 1;
    Sluice__SubtaskLocation loc = SLUICE__SUBTASK_LOCATION__INIT, *locs[] = {&loc};
    loc.ref = &ref;
    loc.worker_id = "fuzz-w1";
    loc.data_endpoint = "tcp://127.0.0.1:1";
    Sluice__SubmitJob sj = SLUICE__SUBMIT_JOB__INIT;
    Sluice__JobStatusRequest sr = SLUICE__JOB_STATUS_REQUEST__INIT;
    Sluice__CancelJob cj = SLUICE__CANCEL_JOB__INIT;
    Sluice__Register rg = SLUICE__REGISTER__INIT;
    Sluice__Heartbeat hb = SLUICE__HEARTBEAT__INIT;
    Sluice__TaskState ts = SLUICE__TASK_STATE__INIT;
    ts.attempt = 1; /* the first attempt of the job, as a worker reports it */
    Sluice__ListJobs lj = SLUICE__LIST_JOBS__INIT;
    Sluice__Deploy dp = SLUICE__DEPLOY__INIT;
    Sluice__StartTasks st = SLUICE__START_TASKS__INIT;
    Sluice__CheckpointAck ca = SLUICE__CHECKPOINT_ACK__INIT;
    Sluice__Error er = SLUICE__ERROR__INIT;
    Sluice__Shutdown sd = SLUICE__SHUTDOWN__INIT;
    switch (i) {
    case 0:
    case 1:
        sj.spec_file = "fuzz.yaml";
        sj.spec_text.data = (uint8_t *)s_good_spec;
        sj.spec_text.len = strlen(s_good_spec);
        sj.n_params = 1;
        sj.params = prms;
        sj.parallelism = (uint32_t)i;
        env.body_case = SLUICE__ENVELOPE__BODY_SUBMIT_JOB;
        env.submit_job = &sj;
        break;
    case 2:
        sr.job_id = "job-0001";
        env.body_case = SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST;
        env.job_status_request = &sr;
        break;
    case 3:
        cj.job_id = "job-0002";
        env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_JOB;
        env.cancel_job = &cj;
        break;
    case 4:
        rg.worker_id = "fuzz-w1";
        rg.slots = 4;
        rg.data_endpoint = "tcp://127.0.0.1:1";
        rg.host = "fuzzhost";
        env.body_case = SLUICE__ENVELOPE__BODY_REGISTER;
        env.register_ = &rg;
        break;
    case 5:
        hb.worker_id = "fuzz-w1";
        hb.time_ms = 123456;
        hb.slots_used = 1;
        env.body_case = SLUICE__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        break;
    case 6:
    case 7:
    case 8:
        /* unknown job; the first job (its tasks may exist once a fuzzed
         * Register gave it slots); and a DEPLOYED report */
        ts.job_id = i == 6 ? "job-9999" : "job-0001";
        ts.ref = &ref;
        ts.state =
            i == 8 ? SLUICE__TASK_STATE_KIND__TASK_DEPLOYED : SLUICE__TASK_STATE_KIND__TASK_FAILED;
        ts.error = "boom";
        ts.n_metrics = 1;
        ts.metrics = oms;
        ts.data_endpoint = "tcp://127.0.0.1:2";
        env.body_case = SLUICE__ENVELOPE__BODY_TASK_STATE;
        env.task_state = &ts;
        break;
    case 9:
        env.body_case = SLUICE__ENVELOPE__BODY_LIST_JOBS;
        env.list_jobs = &lj;
        break;
    case 10:
        dp.job_id = "job-0001";
        dp.spec_file = "fuzz.yaml";
        dp.spec_text.data = (uint8_t *)s_good_spec;
        dp.spec_text.len = strlen(s_good_spec);
        dp.n_subtasks = 1;
        dp.subtasks = refs;
        dp.n_locations = 1;
        dp.locations = locs;
        env.body_case = SLUICE__ENVELOPE__BODY_DEPLOY;
        env.deploy = &dp;
        break;
    case 11:
        st.job_id = "job-0001";
        st.n_locations = 1;
        st.locations = locs;
        env.body_case = SLUICE__ENVELOPE__BODY_START_TASKS;
        env.start_tasks = &st;
        break;
    case 12:
        ca.job_id = "job-0001";
        ca.checkpoint_id = 1;
        ca.ref = &ref;
        ca.state_handle.data = (uint8_t *)"handle";
        ca.state_handle.len = 6;
        env.body_case = SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK;
        env.checkpoint_ack = &ca;
        break;
    case 13:
        er.code = SL_PROTO;
        er.message = "an error sent to the master";
        env.body_case = SLUICE__ENVELOPE__BODY_ERROR;
        env.error = &er;
        break;
    case 14:
        cj.job_id = "job-0001";
        env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_JOB;
        env.cancel_job = &cj;
        break;
    case 16: /* refused: the master is not started with allow_shutdown */
        env.body_case = SLUICE__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        break;
    default:
        sr.job_id = "job-0003";
        env.body_case = SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST;
        env.job_status_request = &sr;
        break;
    }
    size_t len = 0;
    ck_assert_int_eq(sl_msg_encode(&env, buf, &len), SL_OK);
    return len;
}

/* ---- case 1: random frames ---------------------------------------------------- */

START_TEST(test_random_frames)
{
    s_env_t e;
    s_start(&e);
    void *d = s_dealer(&e);
    s_rng_t rng = {UINT64_C(0x5EED0001)};
    s_msg_t msgs[S_BATCH];
    for (int b = 0; b < 50; b++) {
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < S_BATCH; i++)
            s_gen_random_msg(&rng, &msgs[i]);
        s_run_batch(&e, d, NULL, msgs, S_BATCH, "random frame");
    }
    /* Random bytes: nearly all rejected, each with its one Error. */
    ck_assert_int_eq(e.sent, 50 * S_BATCH);
    ck_assert_msg(e.errors >= e.sent * 9 / 10, "only %d errors for %d frames", e.errors, e.sent);
    fprintf(stderr, "random frames: %d sent, %d errors, %d answers, %d silent\n", e.sent, e.errors,
            e.answers, e.silent);
    zmq_close(d);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 2: mutated valid envelopes ------------------------------------------ */

/* Sends nbatch batches of mutated seeds on d (identity ident, NULL:
 * generated), every one checked against the oracle. */
static void s_fuzz_seeds(s_env_t *e, void *d, const char *ident, s_rng_t *rng, int nbatch,
                         uint8_t *const *seeds, const size_t *seed_len, const char *what)
{
    s_msg_t msgs[S_BATCH];
    int total = 0;
    for (int b = 0; b < nbatch; b++) {
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < S_BATCH; i++, total++) {
            int k = total % S_NSEEDS;
            size_t cap = seed_len[k] + 256;
            msgs[i].nframes = 1;
            msgs[i].frames[0] = malloc(cap);
            ck_assert_ptr_nonnull(msgs[i].frames[0]);
            memcpy(msgs[i].frames[0], seeds[k], seed_len[k]);
            msgs[i].lens[0] = s_mutate(rng, msgs[i].frames[0], seed_len[k], cap);
        }
        s_run_batch(e, d, ident, msgs, S_BATCH, what);
    }
}

/* The unmutated seeds, once each, on d (identity ident). */
static void s_send_seeds(s_env_t *e, void *d, const char *ident, uint8_t *const *seeds,
                         const size_t *seed_len)
{
    s_msg_t msgs[S_NSEEDS];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < S_NSEEDS; i++) {
        msgs[i].nframes = 1;
        msgs[i].frames[0] = malloc(seed_len[i]);
        ck_assert_ptr_nonnull(msgs[i].frames[0]);
        memcpy(msgs[i].frames[0], seeds[i], seed_len[i]);
        msgs[i].lens[0] = seed_len[i];
    }
    s_run_batch(e, d, ident, msgs, S_NSEEDS, ident ? "seed (as fuzz-w1)" : "seed");
}

START_TEST(test_mutated_envelopes)
{
    s_env_t e;
    s_start(&e);
    /* A real job exists (SCHEDULED: no workers yet), so status, cancel and
     * task reports hit a job as well as unknown ids. */
    sl_client_t *c = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(c);
    char err[1024], job[64];
    sl_params_t *params = sl_params_new();
    sl_params_set(params, "input", "/nonexistent/in.txt");
    ck_assert_int_eq(sl_client_submit(c, "fuzz.yaml", s_good_spec, strlen(s_good_spec), params, 0,
                                      job, sizeof job, err, sizeof err),
                     SL_OK);
    sl_params_destroy(&params);
    ck_assert_str_eq(job, "job-0001");

    uint8_t *seeds[S_NSEEDS];
    size_t seed_len[S_NSEEDS];
    for (int i = 0; i < S_NSEEDS; i++)
        seed_len[i] = s_seed(i, &seeds[i]);
    s_rng_t rng = {UINT64_C(0x5EED0002)};

    /* From a client's connection: a Register or Heartbeat that still
     * decodes is refused whatever worker id it names, and no worker gets
     * registered. */
    void *d = s_dealer(&e);
    s_fuzz_seeds(&e, d, NULL, &rng, 60, seeds, seed_len, "mutated envelope");
    fprintf(stderr,
            "mutated envelopes: %d sent, %d still valid, %d errors, %d answers, %d silent\n",
            e.sent, e.valid, e.errors, e.answers, e.silent);
    /* The mix must exercise both sides: rejections and accepted requests. */
    ck_assert_int_gt(e.errors, 200);
    ck_assert_int_gt(e.valid, 100);
    ck_assert_int_eq(e.pushes, 0);
    Sluice__Envelope *wl = s_workers(c);
    ck_assert_uint_eq(wl->worker_list->n_workers, 0);
    sl_msg_free(&wl);

    /* From the connection of worker "fuzz-w1": its Registers are accepted
     * (jobs get deployed to it, and its task reports count), a Register or
     * Heartbeat naming another id is refused. */
    void *w = s_worker_dealer(&e, "fuzz-w1");
    int valid_before = e.valid;
    s_fuzz_seeds(&e, w, "fuzz-w1", &rng, 20, seeds, seed_len, "mutated envelope as fuzz-w1");
    fprintf(stderr, "mutated envelopes as fuzz-w1: %d still valid, %d pushes from the master\n",
            e.valid - valid_before, e.pushes);
    ck_assert_int_gt(e.valid - valid_before, 30);
    ck_assert_msg(e.pushes > 0, "no Deploy ever reached the worker fuzz-w1");
    wl = s_workers(c);
    ck_assert_uint_eq(wl->worker_list->n_workers, 1);
    ck_assert_str_eq(wl->worker_list->workers[0]->worker_id, "fuzz-w1");
    sl_msg_free(&wl);

    /* The unmutated seeds still get their normal answers afterwards. */
    s_send_seeds(&e, d, NULL, seeds, seed_len);
    s_send_seeds(&e, w, "fuzz-w1", seeds, seed_len);
    for (int i = 0; i < S_NSEEDS; i++)
        free(seeds[i]);
    zmq_close(d);
    zmq_close(w);
    sl_client_destroy(&c);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 3: other protocol versions ------------------------------------------ */

START_TEST(test_wrong_version)
{
    s_env_t e;
    s_start(&e);
    void *d = s_dealer(&e);
    static const uint32_t versions[] = {0, 2, 3, 255, UINT32_MAX};
    static const int bodies[] = {SLUICE__ENVELOPE__BODY_LIST_JOBS, SLUICE__ENVELOPE__BODY_SHUTDOWN,
                                 SLUICE__ENVELOPE__BODY__NOT_SET,
                                 SLUICE__ENVELOPE__BODY_CANCEL_JOB};
    uint64_t req = 4200;
    for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++)
        for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++, req++) {
            /* Built with protobuf-c directly: sl_msg_encode forces version 1. */
            Sluice__Envelope env;
            sl_msg_init(&env, req);
            env.version = versions[v];
            Sluice__ListJobs lj = SLUICE__LIST_JOBS__INIT;
            Sluice__Shutdown sd = SLUICE__SHUTDOWN__INIT;
            Sluice__CancelJob cj = SLUICE__CANCEL_JOB__INIT;
            cj.job_id = ""; /* invalid in v1: the version is checked first */
            env.body_case = (Sluice__Envelope__BodyCase)bodies[b];
            if (bodies[b] == SLUICE__ENVELOPE__BODY_LIST_JOBS)
                env.list_jobs = &lj;
            else if (bodies[b] == SLUICE__ENVELOPE__BODY_SHUTDOWN)
                env.shutdown = &sd;
            else if (bodies[b] == SLUICE__ENVELOPE__BODY_CANCEL_JOB)
                env.cancel_job = &cj;
            size_t len;
            uint8_t *buf = s_pack_raw(&env, &len);
            ck_assert_int_eq(zmq_send(d, buf, len, 0), (int)len);
            free(buf);
            Sluice__Envelope *r = s_recv(d, s_now_ms() + S_REPLY_MS);
            ck_assert_msg(r != NULL, "no reply to version %u", versions[v]);
            ck_assert_int_eq(r->body_case, SLUICE__ENVELOPE__BODY_ERROR);
            ck_assert_int_eq(r->error->code, SL_VERSION);
            ck_assert_uint_eq(r->request_id, req);
            char want[64];
            snprintf(want, sizeof want, "protocol version %u, expected %u", versions[v],
                     SL_PROTO_VERSION);
            ck_assert_str_eq(r->error->message, want);
            sl_msg_free(&r);
            /* A Shutdown in another version did not stop the master. */
            ck_assert(sl_master_running(e.m));
        }
    /* Patching the version byte of a sl_msg_encode'd request. */
    Sluice__Envelope env;
    sl_msg_init(&env, 4299);
    Sluice__JobStatusRequest sr = SLUICE__JOB_STATUS_REQUEST__INIT;
    sr.job_id = "job-0001";
    env.body_case = SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST;
    env.job_status_request = &sr;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sl_msg_encode(&env, &buf, &len), SL_OK);
    ck_assert(len > 2 && buf[0] == 0x08 && buf[1] == SL_PROTO_VERSION);
    buf[1] = SL_PROTO_VERSION + 1;
    ck_assert_int_eq(zmq_send(d, buf, len, 0), (int)len);
    free(buf);
    Sluice__Envelope *r = s_recv(d, s_now_ms() + S_REPLY_MS);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->body_case, SLUICE__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(r->error->code, SL_VERSION);
    ck_assert_uint_eq(r->request_id, 4299);
    sl_msg_free(&r);
    /* Nothing else was sent back. */
    ck_assert_ptr_null(s_recv(d, s_now_ms() + 50));
    zmq_close(d);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 4: oversized frames ------------------------------------------------- */

/* Waits for a monitor event in mask; true if one came before the deadline. */
static bool s_wait_event(void *mon, int mask, uint64_t deadline)
{
    for (;;) {
        uint64_t now = s_now_ms();
        if (now >= deadline)
            return false;
        zmq_pollitem_t it = {.socket = mon, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, (long)(deadline - now)) <= 0)
            continue;
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, mon, 0) < 0) {
            zmq_msg_close(&f);
            continue;
        }
        uint16_t ev = 0;
        if (zmq_msg_size(&f) >= 2)
            memcpy(&ev, zmq_msg_data(&f), sizeof ev);
        int more = zmq_msg_more(&f);
        zmq_msg_close(&f);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&f);
            zmq_msg_recv(&f, mon, 0);
            more = zmq_msg_more(&f);
            zmq_msg_close(&f);
        }
        if (ev & mask)
            return true;
    }
}

/* An envelope of exactly total bytes: version 1, request_id req, and one
 * unknown length-delimited field (100) filling the rest; no body. */
static uint8_t *s_big_envelope(size_t total, uint64_t req)
{
    uint8_t *b = malloc(total);
    ck_assert_ptr_nonnull(b);
    size_t n = 0;
    b[n++] = 0x08;
    b[n++] = SL_PROTO_VERSION;
    b[n++] = 0x10;
    n += s_put_varint(b + n, req);
    n += s_put_varint(b + n, (100u << 3) | 2u);
    size_t payload = total - n - 4; /* the length takes 4 bytes for 2^21..2^28 */
    ck_assert_uint_eq(s_put_varint(b + n, payload), 4);
    n += 4;
    memset(b + n, 'x', payload);
    return b;
}

START_TEST(test_oversized_frame)
{
    s_env_t e;
    s_start(&e);
    /* A client connected before, to show others are not affected. */
    sl_client_t *bystander = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(bystander);
    char err[512];
    Sluice__Envelope *rep = NULL;
    ck_assert_int_eq(sl_client_status(bystander, "job-x", S_REPLY_MS, &rep, err, sizeof err),
                     SL_NOTFOUND);

    void *d = s_dealer_unconnected(&e);
    ck_assert_int_eq(zmq_socket_monitor(d, "inproc://fuzz-monitor",
                                        ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED),
                     0);
    void *mon = zmq_socket(e.zctx, ZMQ_PAIR);
    ck_assert_ptr_nonnull(mon);
    ck_assert_int_eq(zmq_connect(mon, "inproc://fuzz-monitor"), 0);
    ck_assert_int_eq(zmq_connect(d, e.ep), 0);
    ck_assert(s_wait_event(mon, ZMQ_EVENT_CONNECTED, s_now_ms() + S_REPLY_MS));

    /* Exactly at the limit: delivered, decoded, refused with an Error. */
    uint8_t *big = s_big_envelope(SL_MSG_MAX_BYTES, 77);
    ck_assert_int_eq(zmq_send(d, big, SL_MSG_MAX_BYTES, 0), (int)SL_MSG_MAX_BYTES);
    free(big);
    Sluice__Envelope *r = s_recv(d, s_now_ms() + 20000);
    ck_assert_msg(r != NULL, "no answer to a frame of exactly the limit");
    ck_assert_int_eq(r->body_case, SLUICE__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(r->error->code, SL_PROTO);
    ck_assert_uint_eq(r->request_id, 77);
    ck_assert_str_eq(r->error->message, "envelope has no body");
    sl_msg_free(&r);

    /* One byte over: the master's ZeroMQ drops the connection (without
     * buffering the frame) and nothing is answered. */
    big = s_big_envelope(SL_MSG_MAX_BYTES + 1, 78);
    ck_assert_int_eq(zmq_send(d, big, SL_MSG_MAX_BYTES + 1, 0), (int)SL_MSG_MAX_BYTES + 1);
    free(big);
    ck_assert_msg(s_wait_event(mon, ZMQ_EVENT_DISCONNECTED, s_now_ms() + 20000),
                  "the peer of an oversized frame was not disconnected");
    ck_assert(sl_master_running(e.m));
    /* The DEALER reconnects; the first thing it hears is its next request's
     * answer, not a reply to the oversized frame. */
    s_send_sentinel(d, 5);
    r = s_recv(d, s_now_ms() + S_REPLY_MS);
    ck_assert_msg(r != NULL, "no answer after reconnecting");
    ck_assert_msg(s_is_sentinel(r) && r->request_id == (S_SENTINEL | 5), "got '%s' id %llu",
                  sl_msg_kind_name(r), (unsigned long long)r->request_id);
    sl_msg_free(&r);
    zmq_socket_monitor(d, NULL, 0);
    zmq_close(mon);
    zmq_close(d);

    ck_assert_int_eq(sl_client_status(bystander, "job-y", S_REPLY_MS, &rep, err, sizeof err),
                     SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "job-y"));
    sl_client_destroy(&bystander);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 5: raw TCP ---------------------------------------------------------- */

static int s_tcp_connect(const s_env_t *e)
{
    const char *colon = strrchr(e->ep, ':');
    ck_assert_ptr_nonnull(colon);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

/* Writes all of p (the master may already have hung up: errors ignored). */
static void s_tcp_write(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

/* Reads into buf (cap bytes) until want bytes are there, EOF or deadline;
 * returns the count, -1 after EOF/reset with nothing new. */
static ssize_t s_tcp_read(int fd, uint8_t *buf, size_t cap, size_t have, size_t want,
                          uint64_t deadline)
{
    while (have < want && have < cap) {
        uint64_t now = s_now_ms();
        if (now >= deadline)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(deadline - now)) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, cap - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return (ssize_t)have;
}

/* A minimal ZMTP 3 frame reader over a plain socket. */
typedef struct {
    int fd;
    uint8_t buf[8192]; /* bytes received so far */
    size_t have;       /* valid bytes in buf */
    size_t pos;        /* start of the next frame (after the 64-byte greeting) */
    uint64_t deadline; /* monotonic ms */
} s_zmtp_t;

/* Next frame: its flags and body (pointing into z->buf); false on EOF,
 * timeout or a frame too big for the buffer. */
static bool s_zmtp_frame(s_zmtp_t *z, uint8_t *flags, const uint8_t **body, size_t *len)
{
    ssize_t got = s_tcp_read(z->fd, z->buf, sizeof z->buf, z->have, z->pos + 2, z->deadline);
    if (got < 0 || (size_t)got < z->pos + 2)
        return false;
    z->have = (size_t)got;
    bool lng = z->buf[z->pos] & 0x02;
    size_t hdr = lng ? 9 : 2, flen = 0;
    if (lng) {
        got = s_tcp_read(z->fd, z->buf, sizeof z->buf, z->have, z->pos + 9, z->deadline);
        if (got < 0 || (size_t)got < z->pos + 9)
            return false;
        z->have = (size_t)got;
        for (size_t k = 1; k <= 8; k++)
            flen = flen << 8 | z->buf[z->pos + k];
    } else {
        flen = z->buf[z->pos + 1];
    }
    if (flen > sizeof z->buf - z->pos - hdr)
        return false;
    got = s_tcp_read(z->fd, z->buf, sizeof z->buf, z->have, z->pos + hdr + flen, z->deadline);
    if (got < 0 || (size_t)got < z->pos + hdr + flen)
        return false;
    z->have = (size_t)got;
    *flags = z->buf[z->pos];
    *body = z->buf + z->pos + hdr;
    *len = flen;
    z->pos += hdr + flen;
    return true;
}

/* True if the master closes fd before the deadline (reading and discarding
 * whatever it sends first). */
static bool s_tcp_closed_by_peer(int fd, uint64_t deadline)
{
    uint8_t sink[4096];
    for (;;) {
        uint64_t now = s_now_ms();
        if (now >= deadline)
            return false;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(deadline - now)) <= 0)
            continue;
        if (recv(fd, sink, sizeof sink, 0) <= 0)
            return true;
    }
}

/* A ZMTP 3.0 greeting with the given major version and mechanism. */
static void s_greeting(uint8_t g[64], uint8_t major, const char *mech)
{
    memset(g, 0, 64);
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = major;
    g[11] = 0;
    memcpy(g + 12, mech, strlen(mech));
}

/* The NULL mechanism's READY command for a DEALER; returns its length. */
static size_t s_ready(uint8_t *p)
{
    size_t n = 0;
    p[n++] = 0x04; /* command, short */
    p[n++] = 1 + 5 + 1 + 11 + 4 + 6;
    p[n++] = 5;
    memcpy(p + n, "READY", 5);
    n += 5;
    p[n++] = 11;
    memcpy(p + n, "Socket-Type", 11);
    n += 11;
    p[n++] = 0;
    p[n++] = 0;
    p[n++] = 0;
    p[n++] = 6;
    memcpy(p + n, "DEALER", 6);
    return n + 6;
}

START_TEST(test_raw_tcp_garbage)
{
    s_env_t e;
    s_start(&e);
    s_rng_t rng = {UINT64_C(0x5EED0005)};
    uint8_t buf[8192];

    /* Port-scan style: connect and close; then pure noise of every size. */
    close(s_tcp_connect(&e));
    for (int i = 0; i < 24; i++) {
        int fd = s_tcp_connect(&e);
        size_t n = 1 + s_below(&rng, i < 12 ? 16 : sizeof buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)s_next(&rng);
        if (i % 3 == 0)
            buf[0] = 0xFF; /* looks like a signature start */
        s_tcp_write(fd, buf, n);
        close(fd);
    }
    /* A valid signature and version, then noise in the mechanism and beyond. */
    for (int i = 0; i < 8; i++) {
        int fd = s_tcp_connect(&e);
        s_greeting(buf, (uint8_t)(i < 4 ? 3 : i - 4), "NULL");
        for (size_t k = 12 + (size_t)i; k < 600; k++)
            buf[k] = (uint8_t)s_next(&rng);
        s_tcp_write(fd, buf, 600);
        close(fd);
    }
    /* A mechanism the master does not speak: it hangs up. */
    int fd = s_tcp_connect(&e);
    s_greeting(buf, 3, "CURVE");
    s_tcp_write(fd, buf, 64);
    ck_assert_msg(s_tcp_closed_by_peer(fd, s_now_ms() + S_REPLY_MS),
                  "a CURVE greeting was not refused");
    close(fd);

    /* A stalled peer: half a greeting, left open while others are served. */
    int stalled = s_tcp_connect(&e);
    s_tcp_write(stalled, "\xff\x00\x00\x00\x00", 5);

    /* A hand-made but correct ZMTP peer is served (proves the frames below
     * reach the message decoder), and a declared 1 TiB frame gets it cut off.
     * Like libzmq, it sends messages only after the master's READY. */
    fd = s_tcp_connect(&e);
    s_greeting(buf, 3, "NULL");
    s_tcp_write(fd, buf, 64 + s_ready(buf + 64));
    s_zmtp_t z = {.fd = fd, .pos = 64, .deadline = s_now_ms() + S_REPLY_MS};
    const uint8_t *body;
    size_t blen;
    uint8_t flags;
    do
        ck_assert_msg(s_zmtp_frame(&z, &flags, &body, &blen), "no READY from the master");
    while (!(flags & 0x04) || blen < 6 || memcmp(body, "\x05READY", 6) != 0);
    Sluice__Envelope env;
    sl_msg_init(&env, 99);
    Sluice__ListJobs lj = SLUICE__LIST_JOBS__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_LIST_JOBS;
    env.list_jobs = &lj;
    uint8_t *payload;
    size_t plen;
    ck_assert_int_eq(sl_msg_encode(&env, &payload, &plen), SL_OK);
    ck_assert_uint_lt(plen, 256);
    buf[0] = 0x00; /* message, short, last frame */
    buf[1] = (uint8_t)plen;
    memcpy(buf + 2, payload, plen);
    free(payload);
    s_tcp_write(fd, buf, 2 + plen);
    do
        ck_assert_msg(s_zmtp_frame(&z, &flags, &body, &blen), "no reply over raw ZMTP");
    while (flags & 0x04);
    Sluice__Envelope *r = NULL;
    char derr[256];
    ck_assert_msg(sl_msg_decode(body, blen, &r, derr, sizeof derr) == SL_OK, "%s", derr);
    ck_assert_int_eq(r->body_case, SLUICE__ENVELOPE__BODY_JOB_LIST);
    ck_assert_uint_eq(r->request_id, 99);
    sl_msg_free(&r);
    static const uint8_t huge[9] = {0x02, 0, 0, 0x01, 0, 0, 0, 0, 0}; /* 2^40 bytes */
    s_tcp_write(fd, huge, sizeof huge);
    ck_assert_msg(s_tcp_closed_by_peer(fd, s_now_ms() + S_REPLY_MS),
                  "a declared 1 TiB frame did not cost the peer its connection");
    close(fd);

    s_assert_serving(&e);
    close(stalled);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 6: well-formed nonsense ------------------------------------------- */

/* Sends env on d followed by a sentinel; *rep is the one reply that came
 * before the sentinel's answer (it must echo env's request id) or NULL if
 * there was none. More than one reply fails the test. */
static void s_exchange(s_env_t *e, void *d, const Sluice__Envelope *env, Sluice__Envelope **rep)
{
    uint64_t sid = e->seq++;
    s_send_env(d, env);
    s_send_sentinel(d, sid);
    *rep = NULL;
    for (;;) {
        Sluice__Envelope *r = s_recv(d, s_now_ms() + S_REPLY_MS);
        ck_assert_msg(r != NULL, "no answer to '%s' (master stuck?)", sl_msg_kind_name(env));
        if (s_is_sentinel(r)) {
            ck_assert_uint_eq(r->request_id, S_SENTINEL | sid);
            sl_msg_free(&r);
            return;
        }
        ck_assert_msg(*rep == NULL, "'%s' got two replies: '%s' and '%s'", sl_msg_kind_name(env),
                      sl_msg_kind_name(*rep), sl_msg_kind_name(r));
        ck_assert_uint_eq(r->request_id, env->request_id);
        *rep = r;
    }
}

/* The outcome of an exchange: SL_OK for the reply body ok_body (0: for no
 * reply), else the Error's code with its text in err; anything else fails
 * the test. Frees rep. */
static int s_outcome(Sluice__Envelope **rep, int ok_body, char *err, size_t cap)
{
    err[0] = '\0';
    Sluice__Envelope *r = *rep;
    if (!r) {
        ck_assert_msg(ok_body == 0, "no reply, expected one");
        return SL_OK;
    }
    int rc = SL_OK;
    if (r->body_case == SLUICE__ENVELOPE__BODY_ERROR) {
        snprintf(err, cap, "%s", r->error->message);
        rc = r->error->code;
        ck_assert_int_lt(rc, 0);
    } else {
        ck_assert_msg((int)r->body_case == ok_body, "unexpected reply '%s'", sl_msg_kind_name(r));
        if (r->body_case == SLUICE__ENVELOPE__BODY_REGISTER_ACK)
            ck_assert(r->register_ack->accepted);
    }
    sl_msg_free(rep);
    return rc;
}

/* Register worker id (slots, data endpoint ep, host) over d: SL_OK when
 * accepted, else the Error's code and text. */
static int s_register_on(s_env_t *e, void *d, const char *id, uint32_t slots, const char *ep,
                         const char *host, char *err, size_t cap)
{
    Sluice__Envelope env, *rep = NULL;
    sl_msg_init(&env, 7000 + e->seq);
    Sluice__Register rg = SLUICE__REGISTER__INIT;
    rg.worker_id = (char *)id;
    rg.slots = slots;
    rg.data_endpoint = (char *)ep;
    rg.host = (char *)host;
    env.body_case = SLUICE__ENVELOPE__BODY_REGISTER;
    env.register_ = &rg;
    s_exchange(e, d, &env, &rep);
    return s_outcome(&rep, SLUICE__ENVELOPE__BODY_REGISTER_ACK, err, cap);
}

/* A Heartbeat for id over d: SL_OK when silently taken, else the Error's
 * code and text. */
static int s_heartbeat_on(s_env_t *e, void *d, const char *id, char *err, size_t cap)
{
    Sluice__Envelope env, *rep = NULL;
    sl_msg_init(&env, 8000 + e->seq);
    Sluice__Heartbeat hb = SLUICE__HEARTBEAT__INIT;
    hb.worker_id = (char *)id;
    hb.time_ms = 1;
    env.body_case = SLUICE__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_exchange(e, d, &env, &rep);
    return s_outcome(&rep, 0, err, cap);
}

/* Asserts err is the refusal of a worker message for id over a connection
 * that is not id's. */
static void s_assert_not_my_id(int rc, const char *err, const char *id)
{
    char want[512];
    snprintf(want, sizeof want, S_NOT_MY_ID, id);
    ck_assert_int_eq(rc, SL_INVAL);
    ck_assert_str_eq(err, want);
}

START_TEST(test_semantic_garbage)
{
    s_env_t e;
    s_start(&e);
    sl_client_t *c = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(c);
    char err[4096], job[64];
    Sluice__Envelope env, *rep = NULL;

    /* A job that waits for slots (there are no workers). */
    sl_params_t *params = sl_params_new();
    sl_params_set(params, "input", "/nonexistent/in.txt");
    ck_assert_int_eq(sl_client_submit(c, "ok.yaml", s_good_spec, strlen(s_good_spec), params, 0,
                                      job, sizeof job, err, sizeof err),
                     SL_OK);
    sl_params_destroy(&params);

    /* TaskState for a job that does not exist, and for one without tasks:
     * no answer (one-way), no effect; the sentinel's answer comes first. */
    void *d = s_dealer(&e);
    Sluice__SubtaskRef ref = SLUICE__SUBTASK_REF__INIT;
    Sluice__TaskState ts = SLUICE__TASK_STATE__INIT;
    ts.attempt = 1; /* the first attempt of the job, as a worker reports it */
    ts.ref = &ref;
    ts.state = SLUICE__TASK_STATE_KIND__TASK_FAILED;
    ts.error = "injected failure";
    const char *targets[] = {"job-4242", job};
    for (int i = 0; i < 2; i++) {
        sl_msg_init(&env, 500 + (uint64_t)i);
        ts.job_id = (char *)targets[i];
        env.body_case = SLUICE__ENVELOPE__BODY_TASK_STATE;
        env.task_state = &ts;
        s_send_env(d, &env);
        s_send_sentinel(d, (uint64_t)i);
        Sluice__Envelope *r = s_recv(d, s_now_ms() + S_REPLY_MS);
        ck_assert_ptr_nonnull(r);
        ck_assert_msg(s_is_sentinel(r) && r->request_id == (S_SENTINEL | (uint64_t)i),
                      "TaskState for %s was answered with '%s'", targets[i], sl_msg_kind_name(r));
        sl_msg_free(&r);
    }
    zmq_close(d);
    ck_assert_int_eq(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err), SL_OK);
    ck_assert_int_eq(rep->job_status->state, SLUICE__JOB_STATE_KIND__JOB_SCHEDULED);
    ck_assert_str_eq(rep->job_status->error, "");
    sl_msg_free(&rep);
    ck_assert_int_eq(sl_client_status(c, "job-4242", S_REPLY_MS, &rep, err, sizeof err),
                     SL_NOTFOUND);

    /* Bodies only the master sends: refused by name. */
    static const struct {
        int body;
        const char *name;
    } not_mine[] = {
        {SLUICE__ENVELOPE__BODY_DEPLOY, "deploy"},
        {SLUICE__ENVELOPE__BODY_START_TASKS, "start_tasks"},
        {SLUICE__ENVELOPE__BODY_CANCEL_TASKS, "cancel_tasks"},
        {SLUICE__ENVELOPE__BODY_REGISTER_ACK, "register_ack"},
        {SLUICE__ENVELOPE__BODY_SUBMIT_REPLY, "submit_reply"},
        {SLUICE__ENVELOPE__BODY_JOB_STATUS, "job_status"},
        {SLUICE__ENVELOPE__BODY_JOB_LIST, "job_list"},
        {SLUICE__ENVELOPE__BODY_OK, "ok"},
        {SLUICE__ENVELOPE__BODY_ERROR, "error"},
        {SLUICE__ENVELOPE__BODY_WORKER_LIST, "worker_list"},
        {SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER, "checkpoint_trigger"},
        {SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE, "checkpoint_complete"},
    };
    for (size_t i = 0; i < sizeof not_mine / sizeof not_mine[0]; i++) {
        Sluice__SubtaskRef r0 = SLUICE__SUBTASK_REF__INIT, *refs[] = {&r0};
        Sluice__SubtaskLocation loc = SLUICE__SUBTASK_LOCATION__INIT, *locs[] = {&loc};
        loc.ref = &r0;
        loc.worker_id = "w";
        loc.data_endpoint = "tcp://127.0.0.1:1";
        Sluice__Deploy dp = SLUICE__DEPLOY__INIT;
        dp.job_id = job;
        dp.spec_text.data = (uint8_t *)s_good_spec;
        dp.spec_text.len = strlen(s_good_spec);
        dp.n_subtasks = 1;
        dp.subtasks = refs;
        dp.n_locations = 1;
        dp.locations = locs;
        Sluice__StartTasks st = SLUICE__START_TASKS__INIT;
        st.job_id = job;
        st.n_locations = 1;
        st.locations = locs;
        Sluice__CancelTasks ct = SLUICE__CANCEL_TASKS__INIT;
        ct.job_id = job;
        Sluice__RegisterAck ra = SLUICE__REGISTER_ACK__INIT;
        Sluice__SubmitReply sr = SLUICE__SUBMIT_REPLY__INIT;
        sr.job_id = job;
        Sluice__JobStatus js = SLUICE__JOB_STATUS__INIT;
        js.job_id = job;
        Sluice__JobList jl = SLUICE__JOB_LIST__INIT;
        Sluice__Ok ok = SLUICE__OK__INIT;
        Sluice__Error er = SLUICE__ERROR__INIT;
        er.code = SL_STATE;
        er.message = "not an answer to anything";
        Sluice__WorkerList wl = SLUICE__WORKER_LIST__INIT;
        Sluice__CheckpointTrigger tr = SLUICE__CHECKPOINT_TRIGGER__INIT;
        tr.job_id = job;
        tr.checkpoint_id = 1;
        Sluice__CheckpointComplete cc = SLUICE__CHECKPOINT_COMPLETE__INIT;
        cc.job_id = job;
        cc.checkpoint_id = 1;
        void *bodies[] = {&dp, &st, &ct, &ra, &sr, &js, &jl, &ok, &er, &wl, &tr, &cc};
        sl_msg_init(&env, 0);
        env.body_case = (Sluice__Envelope__BodyCase)not_mine[i].body;
        env.deploy = bodies[i]; /* every body shares the oneof's storage */
        ck_assert_int_eq(sl_msg_validate(&env, err, sizeof err), SL_OK);
        ck_assert_int_eq(s_call(c, &env, &rep, err, sizeof err), SL_PROTO);
        char want[96];
        snprintf(want, sizeof want, "the master does not accept '%s'", not_mine[i].name);
        ck_assert_str_eq(err, want);
    }
    /* The refused Deploy/StartTasks/CancelTasks did not touch the job. */
    ck_assert_int_eq(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err), SL_OK);
    ck_assert_int_eq(rep->job_status->state, SLUICE__JOB_STATE_KIND__JOB_SCHEDULED);
    sl_msg_free(&rep);

    /* Unknown ids. */
    ck_assert_int_eq(sl_client_cancel(c, "job-4242", err, sizeof err), SL_NOTFOUND);
    ck_assert_msg(strstr(err, "job-4242") != NULL, "%s", err);
    /* Worker messages must come over the connection whose identity is the
     * worker id: from a client, or from another worker's connection, they
     * are refused (and nothing is registered); from the right connection a
     * Heartbeat of an unknown worker gets NOTFOUND. */
    sl_msg_init(&env, 0);
    Sluice__Heartbeat hb = SLUICE__HEARTBEAT__INIT;
    hb.worker_id = "ghost";
    env.body_case = SLUICE__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_assert_not_my_id(s_call(c, &env, &rep, err, sizeof err), err, "ghost");
    sl_msg_init(&env, 0);
    Sluice__Register rg = SLUICE__REGISTER__INIT;
    rg.worker_id = "ghost";
    rg.slots = 8;
    rg.data_endpoint = "tcp://127.0.0.1:10";
    env.body_case = SLUICE__ENVELOPE__BODY_REGISTER;
    env.register_ = &rg;
    s_assert_not_my_id(s_call(c, &env, &rep, err, sizeof err), err, "ghost");
    void *ghost = s_worker_dealer(&e, "ghost");
    ck_assert_int_eq(s_heartbeat_on(&e, ghost, "ghost", err, sizeof err), SL_NOTFOUND);
    ck_assert_str_eq(err, "unknown worker 'ghost'");
    void *other = s_worker_dealer(&e, "ghost-2");
    s_assert_not_my_id(s_heartbeat_on(&e, other, "ghost", err, sizeof err), err, "ghost");
    s_assert_not_my_id(
        s_register_on(&e, other, "ghost", 8, "tcp://127.0.0.1:10", "h", err, sizeof err), err,
        "ghost");
    /* An id that is a prefix or an extension of the identity is not it. */
    s_assert_not_my_id(
        s_register_on(&e, other, "ghost-", 8, "tcp://127.0.0.1:10", "h", err, sizeof err), err,
        "ghost-");
    s_assert_not_my_id(
        s_register_on(&e, other, "ghost-22", 8, "tcp://127.0.0.1:10", "h", err, sizeof err), err,
        "ghost-22");
    zmq_close(other);
    zmq_close(ghost);
    Sluice__Envelope *wl = s_workers(c);
    ck_assert_uint_eq(wl->worker_list->n_workers, 0);
    sl_msg_free(&wl);

    /* A duplicate worker id: a second connection under the same identity
     * takes the route over (ZMQ_ROUTER_HANDOVER) and its Register is the
     * worker restarting: one entry, the latest registration's values.
     * (The first connection must not reconnect and take the route back.) */
    void *w1 = s_dealer_unconnected(&e);
    int no_reconnect = -1;
    ck_assert_int_eq(zmq_setsockopt(w1, ZMQ_RECONNECT_IVL, &no_reconnect, sizeof no_reconnect), 0);
    ck_assert_int_eq(zmq_setsockopt(w1, ZMQ_ROUTING_ID, "dup-w", 5), 0);
    ck_assert_int_eq(zmq_connect(w1, e.ep), 0);
    ck_assert_int_eq(
        s_register_on(&e, w1, "dup-w", 1, "tcp://127.0.0.1:11", "host-1", err, sizeof err), SL_OK);
    ck_assert_int_eq(s_heartbeat_on(&e, w1, "dup-w", err, sizeof err), SL_OK);
    /* A live worker's id from a client's connection is still refused. */
    hb.worker_id = "dup-w";
    sl_msg_init(&env, 0);
    env.body_case = SLUICE__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_assert_not_my_id(s_call(c, &env, &rep, err, sizeof err), err, "dup-w");
    void *w2 = s_worker_dealer(&e, "dup-w");
    ck_assert_int_eq(
        s_register_on(&e, w2, "dup-w", 1, "tcp://127.0.0.1:12", "host-2", err, sizeof err), SL_OK);
    ck_assert_int_eq(s_heartbeat_on(&e, w2, "dup-w", err, sizeof err), SL_OK);
    wl = s_workers(c);
    ck_assert_uint_eq(wl->worker_list->n_workers, 1);
    ck_assert_str_eq(wl->worker_list->workers[0]->worker_id, "dup-w");
    ck_assert_uint_eq(wl->worker_list->workers[0]->slots, 1);
    ck_assert_str_eq(wl->worker_list->workers[0]->data_endpoint, "tcp://127.0.0.1:12");
    ck_assert_str_eq(wl->worker_list->workers[0]->host, "host-2");
    ck_assert(wl->worker_list->workers[0]->alive);
    sl_msg_free(&wl);
    zmq_close(w1);
    zmq_close(w2);

    /* Broken specs: refused with SL_SPEC and the position; hostile text
     * (invalid UTF-8, NUL bytes) comes back as valid UTF-8. */
    ck_assert_int_eq(sl_client_submit(c, "broken.yaml", s_broken_spec, strlen(s_broken_spec), NULL,
                                      0, job, sizeof job, err, sizeof err),
                     SL_SPEC);
    ck_assert_msg(strstr(err, "broken.yaml:4:6:") && strstr(err, "YAML syntax error"), "%s", err);
    static const char bad_utf8[] = "name: \xff\xfe\x80 x\nsources: []\n";
    ck_assert_int_eq(sl_client_submit(c, "utf.yaml", bad_utf8, sizeof bad_utf8 - 1, NULL, 0, job,
                                      sizeof job, err, sizeof err),
                     SL_SPEC);
    ck_assert_msg(strstr(err, "utf.yaml:1:"), "%s", err);
    static const char with_nul[] = "name: a\0b\nsources: []\n";
    ck_assert_int_eq(sl_client_submit(c, "nul.yaml", with_nul, sizeof with_nul - 1, NULL, 0, job,
                                      sizeof job, err, sizeof err),
                     SL_SPEC);
    ck_assert_msg(strstr(err, "nul.yaml:"), "%s", err);
    /* The billion-laughs shape is refused quickly, not expanded. */
    const char *bomb = "name: bomb\n"
                       "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    ck_assert_int_eq(sl_client_submit(c, "bomb.yaml", bomb, strlen(bomb), NULL, 0, job, sizeof job,
                                      err, sizeof err),
                     SL_SPEC);
    ck_assert_msg(strstr(err, "bomb.yaml:"), "%s", err);
    /* An empty spec never reaches the planner: the decoder refuses it. */
    ck_assert_int_eq(
        sl_client_submit(c, "empty.yaml", "", 0, NULL, 0, job, sizeof job, err, sizeof err),
        SL_PROTO);
    ck_assert_msg(strstr(err, "spec_text is required"), "%s", err);

    sl_client_destroy(&c);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* A task report whose metrics carry a field this version does not know (a
 * newer worker; the decoder skips such fields by design) must not leave the
 * master holding pointers into the freed report: the status replies that
 * follow must be built from the master's own copy. */
START_TEST(test_task_report_with_unknown_fields)
{
    s_env_t e;
    s_start(&e);
    /* A fake worker: a DEALER whose routing id is its worker id. */
    void *w = s_dealer_unconnected(&e);
    ck_assert_int_eq(zmq_setsockopt(w, ZMQ_ROUTING_ID, "fw-1", 4), 0);
    ck_assert_int_eq(zmq_connect(w, e.ep), 0);
    Sluice__Envelope env;
    sl_msg_init(&env, 1);
    Sluice__Register rg = SLUICE__REGISTER__INIT;
    rg.worker_id = "fw-1";
    rg.slots = 2;
    rg.data_endpoint = "tcp://127.0.0.1:1";
    env.body_case = SLUICE__ENVELOPE__BODY_REGISTER;
    env.register_ = &rg;
    s_send_env(w, &env);
    Sluice__Envelope *r = s_recv(w, s_now_ms() + S_REPLY_MS);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->body_case, SLUICE__ENVELOPE__BODY_REGISTER_ACK);
    sl_msg_free(&r);

    sl_client_t *c = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(c);
    char err[1024], job[64];
    sl_params_t *params = sl_params_new();
    sl_params_set(params, "input", "/nonexistent/in.txt");
    ck_assert_int_eq(sl_client_submit(c, "ok.yaml", s_good_spec, strlen(s_good_spec), params, 0,
                                      job, sizeof job, err, sizeof err),
                     SL_OK);
    sl_params_destroy(&params);
    r = s_recv(w, s_now_ms() + S_REPLY_MS);
    ck_assert_msg(r && r->body_case == SLUICE__ENVELOPE__BODY_DEPLOY, "no Deploy for %s", job);
    ck_assert_str_eq(r->deploy->job_id, job);
    sl_msg_free(&r);

    /* The report: operator metrics with an unknown field 99. */
    ProtobufCMessageUnknownField uf = {.tag = 99,
                                       .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                       .len = 6, /* protobuf-c keeps the length prefix */
                                       .data = (uint8_t *)"\x05newer"};
    Sluice__OperatorMetrics om = SLUICE__OPERATOR_METRICS__INIT, *oms[] = {&om};
    om.base.n_unknown_fields = 1;
    om.base.unknown_fields = &uf;
    om.op = "src";
    om.records_out = 5;
    Sluice__SubtaskRef ref = SLUICE__SUBTASK_REF__INIT;
    Sluice__TaskState ts = SLUICE__TASK_STATE__INIT;
    ts.attempt = 1; /* the first attempt of the job, as a worker reports it */
    ts.job_id = job;
    ts.ref = &ref;
    ts.state = SLUICE__TASK_STATE_KIND__TASK_RUNNING;
    ts.n_metrics = 1;
    ts.metrics = oms;
    sl_msg_init(&env, 2);
    env.body_case = SLUICE__ENVELOPE__BODY_TASK_STATE;
    env.task_state = &ts;
    s_send_env(w, &env);
    s_send_sentinel(w, 1); /* answered once the report is processed */
    r = s_recv(w, s_now_ms() + S_REPLY_MS);
    ck_assert_msg(r && s_is_sentinel(r), "a task report was answered with '%s' %s",
                  r ? sl_msg_kind_name(r) : "nothing",
                  r && r->body_case == SLUICE__ENVELOPE__BODY_ERROR ? r->error->message : "");
    sl_msg_free(&r);

    for (int round = 0; round < 3; round++) {
        Sluice__Envelope *rep = NULL;
        ck_assert_int_eq(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err), SL_OK);
        const Sluice__JobStatus *st = rep->job_status;
        uint64_t src_out = 0;
        for (size_t i = 0; i < st->n_metrics; i++)
            if (strcmp(st->metrics[i]->op, "src") == 0)
                src_out = st->metrics[i]->records_out;
        ck_assert_uint_eq(src_out, 5);
        sl_msg_free(&rep);
    }
    sl_client_destroy(&c);
    zmq_close(w);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* ---- case 7: who may say what ---------------------------------------------- */

/* A Shutdown with the right version, from a client and from a registered
 * worker's own connection: refused (the master is not started with
 * allow_shutdown), and the master keeps serving. */
START_TEST(test_shutdown_refused)
{
    s_env_t e;
    s_start(&e);
    sl_client_t *c = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(c);
    char err[512];
    Sluice__Envelope env, *rep = NULL;
    Sluice__Shutdown sd = SLUICE__SHUTDOWN__INIT;
    sl_msg_init(&env, 0);
    env.body_case = SLUICE__ENVELOPE__BODY_SHUTDOWN;
    env.shutdown = &sd;
    ck_assert_int_eq(s_call(c, &env, &rep, err, sizeof err), SL_PROTO);
    ck_assert_str_eq(err, S_NO_SHUTDOWN);
    ck_assert(sl_master_running(e.m));

    void *w = s_worker_dealer(&e, "sd-w");
    ck_assert_int_eq(s_register_on(&e, w, "sd-w", 1, "tcp://127.0.0.1:13", "h", err, sizeof err),
                     SL_OK);
    for (int i = 0; i < 3; i++) {
        sl_msg_init(&env, 900 + (uint64_t)i);
        env.body_case = SLUICE__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        s_exchange(&e, w, &env, &rep);
        ck_assert_int_eq(s_outcome(&rep, 0, err, sizeof err), SL_PROTO);
        ck_assert_str_eq(err, S_NO_SHUTDOWN);
    }
    ck_assert(sl_master_running(e.m));
    /* The worker is still registered and live. */
    ck_assert_int_eq(s_heartbeat_on(&e, w, "sd-w", err, sizeof err), SL_OK);
    Sluice__Envelope *wl = s_workers(c);
    ck_assert_uint_eq(wl->worker_list->n_workers, 1);
    ck_assert(wl->worker_list->workers[0]->alive);
    sl_msg_free(&wl);
    zmq_close(w);
    sl_client_destroy(&c);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

/* Sends a TaskState (job, ref, state, error) on d, then a sentinel: a task
 * report is one-way, so only the sentinel's answer may come back, unless
 * push_body is set: then exactly one master push of that kind comes first
 * (the master acting on the report). */
static void s_report(s_env_t *e, void *d, const char *job, const Sluice__SubtaskRef *ref,
                     Sluice__TaskStateKind state, const char *error, int push_body)
{
    Sluice__Envelope env;
    sl_msg_init(&env, 6000 + e->seq);
    Sluice__TaskState ts = SLUICE__TASK_STATE__INIT;
    ts.attempt = 1; /* the first attempt of the job, as a worker reports it */
    Sluice__SubtaskRef r = *ref;
    ts.job_id = (char *)job;
    ts.ref = &r;
    ts.state = state;
    ts.error = (char *)error;
    ts.data_endpoint = "tcp://127.0.0.1:14";
    env.body_case = SLUICE__ENVELOPE__BODY_TASK_STATE;
    env.task_state = &ts;
    uint64_t sid = e->seq++;
    s_send_env(d, &env);
    s_send_sentinel(d, sid);
    Sluice__Envelope *rp = s_recv(d, s_now_ms() + S_REPLY_MS);
    ck_assert_ptr_nonnull(rp);
    if (push_body) {
        ck_assert_msg((int)rp->body_case == push_body, "expected a push, got '%s'",
                      sl_msg_kind_name(rp));
        ck_assert_str_eq(push_body == SLUICE__ENVELOPE__BODY_START_TASKS ? rp->start_tasks->job_id
                                                                         : rp->cancel_tasks->job_id,
                         job);
        sl_msg_free(&rp);
        rp = s_recv(d, s_now_ms() + S_REPLY_MS);
        ck_assert_ptr_nonnull(rp);
    }
    ck_assert_msg(s_is_sentinel(rp) && rp->request_id == (S_SENTINEL | sid),
                  "a task report was answered with '%s' %s", sl_msg_kind_name(rp),
                  rp->body_case == SLUICE__ENVELOPE__BODY_ERROR ? rp->error->message : "");
    sl_msg_free(&rp);
}

/* Asserts job is in state, with error "" and every task in task_state on
 * worker "tw-1" without a task error. */
static void s_assert_job(sl_client_t *c, const char *job, Sluice__JobStateKind state,
                         Sluice__TaskStateKind task_state, size_t ntasks)
{
    char err[512];
    Sluice__Envelope *rep = NULL;
    ck_assert_int_eq(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err), SL_OK);
    const Sluice__JobStatus *st = rep->job_status;
    ck_assert_int_eq(st->state, state);
    ck_assert_str_eq(st->error, "");
    ck_assert_uint_eq(st->n_tasks, ntasks);
    for (size_t i = 0; i < st->n_tasks; i++) {
        ck_assert_int_eq(st->tasks[i]->state, task_state);
        ck_assert_str_eq(st->tasks[i]->worker_id, "tw-1");
        ck_assert_str_eq(st->tasks[i]->error, "");
    }
    sl_msg_free(&rep);
}

/* Task reports count only from the connection of the worker that runs the
 * task: a client, another registered worker, and an unregistered worker
 * identity all report every task DEPLOYED, then FAILED, then FINISHED; the
 * job does not move. The real worker's reports then do move it. */
START_TEST(test_impostor_task_state)
{
    s_env_t e;
    s_start(&e);
    char err[1024], job[64];
    void *w = s_worker_dealer(&e, "tw-1");
    ck_assert_int_eq(s_register_on(&e, w, "tw-1", 4, "tcp://127.0.0.1:15", "h1", err, sizeof err),
                     SL_OK);
    sl_client_t *c = sl_client_new(e.zctx, e.ep);
    ck_assert_ptr_nonnull(c);
    sl_params_t *params = sl_params_new();
    sl_params_set(params, "input", "/nonexistent/in.txt");
    ck_assert_int_eq(sl_client_submit(c, "ok.yaml", s_good_spec, strlen(s_good_spec), params, 0,
                                      job, sizeof job, err, sizeof err),
                     SL_OK);
    sl_params_destroy(&params);
    Sluice__Envelope *dp = s_recv(w, s_now_ms() + S_REPLY_MS);
    ck_assert_msg(dp && dp->body_case == SLUICE__ENVELOPE__BODY_DEPLOY, "no Deploy for %s", job);
    ck_assert_str_eq(dp->deploy->job_id, job);
    size_t n = dp->deploy->n_subtasks;
    ck_assert_uint_ge(n, 2);
    Sluice__SubtaskRef refs[16];
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++)
        refs[i] = *dp->deploy->subtasks[i];
    sl_msg_free(&dp);
    /* Registered after the deploy: it runs nothing of the job. */
    void *w2 = s_worker_dealer(&e, "tw-2");
    ck_assert_int_eq(s_register_on(&e, w2, "tw-2", 4, "tcp://127.0.0.1:16", "h2", err, sizeof err),
                     SL_OK);
    void *impostors[] = {s_dealer(&e), w2, s_worker_dealer(&e, "tw-9")};
    const int nimp = (int)(sizeof impostors / sizeof impostors[0]);
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING,
                 SLUICE__TASK_STATE_KIND__TASK_DEPLOYING, n);

    /* DEPLOYED for every task from impostors: no StartTasks, no change. */
    for (int k = 0; k < nimp; k++)
        for (size_t i = 0; i < n; i++)
            s_report(&e, impostors[k], job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, "",
                     0);
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING,
                 SLUICE__TASK_STATE_KIND__TASK_DEPLOYING, n);
    /* FAILED from impostors: the job does not fail. */
    for (int k = 0; k < nimp; k++)
        for (size_t i = 0; i < n; i++)
            s_report(&e, impostors[k], job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_FAILED,
                     "impostor", 0);
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING,
                 SLUICE__TASK_STATE_KIND__TASK_DEPLOYING, n);

    /* The real worker: DEPLOYED for every task starts the job (StartTasks
     * comes with the last one). */
    for (size_t i = 0; i < n; i++)
        s_report(&e, w, job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, "",
                 i + 1 == n ? SLUICE__ENVELOPE__BODY_START_TASKS : 0);
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING,
                 SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, n);
    for (size_t i = 0; i < n; i++)
        s_report(&e, w, job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_RUNNING, "", 0);
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING, SLUICE__TASK_STATE_KIND__TASK_RUNNING,
                 n);

    /* FINISHED and FAILED from impostors while it runs: nothing changes. */
    for (int k = 0; k < nimp; k++)
        for (size_t i = 0; i < n; i++) {
            s_report(&e, impostors[k], job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_FINISHED, "",
                     0);
            s_report(&e, impostors[k], job, &refs[i], SLUICE__TASK_STATE_KIND__TASK_FAILED,
                     "impostor", 0);
        }
    s_assert_job(c, job, SLUICE__JOB_STATE_KIND__JOB_RUNNING, SLUICE__TASK_STATE_KIND__TASK_RUNNING,
                 n);

    /* The real worker's failure report fails the job (and its tasks are
     * canceled on that worker). */
    s_report(&e, w, job, &refs[0], SLUICE__TASK_STATE_KIND__TASK_FAILED, "real failure",
             SLUICE__ENVELOPE__BODY_CANCEL_TASKS);
    Sluice__Envelope *rep = NULL;
    ck_assert_int_eq(sl_client_status(c, job, S_REPLY_MS, &rep, err, sizeof err), SL_OK);
    ck_assert_int_eq(rep->job_status->state, SLUICE__JOB_STATE_KIND__JOB_FAILED);
    ck_assert_msg(strstr(rep->job_status->error, "failed: real failure") != NULL, "%s",
                  rep->job_status->error);
    ck_assert_ptr_null(strstr(rep->job_status->error, "impostor"));
    sl_msg_free(&rep);

    for (int k = 0; k < nimp; k++)
        zmq_close(impostors[k]);
    zmq_close(w);
    sl_client_destroy(&c);
    s_assert_serving(&e);
    s_stop(&e);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("master_fuzz");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_frames);
    tcase_add_test(tc, test_mutated_envelopes);
    tcase_add_test(tc, test_wrong_version);
    tcase_add_test(tc, test_oversized_frame);
    tcase_add_test(tc, test_raw_tcp_garbage);
    tcase_add_test(tc, test_semantic_garbage);
    tcase_add_test(tc, test_task_report_with_unknown_fields);
    tcase_add_test(tc, test_shutdown_refused);
    tcase_add_test(tc, test_impostor_task_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
