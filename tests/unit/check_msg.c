/* check_msg.c — the control protocol on real ZeroMQ sockets: every body
 * round-trips over inproc and tcp with routing ids preserved; versions,
 * framing, limits and required fields are enforced; garbage and mutated
 * encodings give SL_PROTO (never a crash or a leak) and leave the socket
 * usable. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "sluice/err.h"
#include "testutil.h"

#define ERRCAP 512
#define WORKER_RID "worker-7"

/* ---- one envelope of every kind ------------------------------------------ */

typedef struct {
    Sluice__Envelope env;
    Sluice__Register reg;
    Sluice__RegisterAck rack;
    Sluice__Heartbeat hb;
    Sluice__Param par[2];
    Sluice__Param *parp[2];
    Sluice__SubtaskRef ref[6];
    Sluice__SubtaskRef *subp[2];
    Sluice__SubtaskLocation loc[2];
    Sluice__SubtaskLocation *locp[2];
    Sluice__Deploy dep;
    Sluice__OperatorMetrics om[2];
    Sluice__OperatorMetrics *omp[2];
    Sluice__TaskState ts;
    Sluice__CancelTasks ct;
    Sluice__SubmitJob sj;
    Sluice__SubmitReply sr;
    Sluice__JobStatusRequest jsr;
    Sluice__TaskStatus tst[2];
    Sluice__TaskStatus *tstp[2];
    Sluice__JobStatus js[2];
    Sluice__JobStatus *jsp[2];
    Sluice__CancelJob cj;
    Sluice__ListJobs lj;
    Sluice__JobList jl;
    Sluice__Ok ok;
    Sluice__Error er;
    Sluice__Shutdown sd;
    Sluice__CheckpointTrigger ctr;
    Sluice__CheckpointAck cka;
    Sluice__CheckpointComplete ckc;
} bag_t;

static const Sluice__Envelope__BodyCase KINDS[] = {
    SLUICE__ENVELOPE__BODY_REGISTER,
    SLUICE__ENVELOPE__BODY_REGISTER_ACK,
    SLUICE__ENVELOPE__BODY_HEARTBEAT,
    SLUICE__ENVELOPE__BODY_DEPLOY,
    SLUICE__ENVELOPE__BODY_TASK_STATE,
    SLUICE__ENVELOPE__BODY_CANCEL_TASKS,
    SLUICE__ENVELOPE__BODY_SUBMIT_JOB,
    SLUICE__ENVELOPE__BODY_SUBMIT_REPLY,
    SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST,
    SLUICE__ENVELOPE__BODY_JOB_STATUS,
    SLUICE__ENVELOPE__BODY_CANCEL_JOB,
    SLUICE__ENVELOPE__BODY_LIST_JOBS,
    SLUICE__ENVELOPE__BODY_JOB_LIST,
    SLUICE__ENVELOPE__BODY_OK,
    SLUICE__ENVELOPE__BODY_ERROR,
    SLUICE__ENVELOPE__BODY_SHUTDOWN,
    SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER,
    SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK,
    SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE,
};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

static const char SPEC[] = "name: wc\n"
                           "sources:\n  - {name: in, type: file, path: /data/in.txt}\n"
                           "operators:\n  - {name: tokenize, type: flat_map}\n";
static const uint8_t HANDLE[] = {'c', 'h', 'k', 0, 0xff, '4', '2'};

static Sluice__SubtaskRef s_ref(uint32_t chain, uint32_t subtask)
{
    Sluice__SubtaskRef r = SLUICE__SUBTASK_REF__INIT;
    r.chain = chain;
    r.subtask = subtask;
    return r;
}

static Sluice__OperatorMetrics s_metric(const char *op, uint64_t base)
{
    Sluice__OperatorMetrics m = SLUICE__OPERATOR_METRICS__INIT;
    m.op = (char *)op;
    m.records_in = base;
    m.records_out = base * 5;
    m.busy_ns = base * 1000 + 7;
    m.errors = base % 3;
    return m;
}

/* Fills every body with non-default values and selects kind as the body. */
static void s_fill(bag_t *b, Sluice__Envelope__BodyCase kind, uint64_t request_id)
{
    sl_msg_init(&b->env, request_id);

    b->reg = (Sluice__Register)SLUICE__REGISTER__INIT;
    b->reg.worker_id = WORKER_RID;
    b->reg.slots = 8;
    b->reg.data_endpoint = "tcp://10.0.0.7:7100";
    b->reg.host = "node7";

    b->rack = (Sluice__RegisterAck)SLUICE__REGISTER_ACK__INIT;
    b->rack.accepted = 1;
    b->rack.reason = "welcome";
    b->rack.heartbeat_interval_ms = 200;

    b->hb = (Sluice__Heartbeat)SLUICE__HEARTBEAT__INIT;
    b->hb.worker_id = WORKER_RID;
    b->hb.time_ms = 1700000000123u;
    b->hb.slots_used = 3;

    for (int i = 0; i < 2; i++) {
        b->par[i] = (Sluice__Param)SLUICE__PARAM__INIT;
        b->parp[i] = &b->par[i];
    }
    b->par[0].name = "input";
    b->par[0].value = "/data/in.txt";
    b->par[1].name = "window";
    b->par[1].value = "10 s";

    b->ref[0] = s_ref(0, 1);
    b->ref[1] = s_ref(2, 3);
    b->ref[2] = s_ref(0, 1);
    b->ref[3] = s_ref(2, 3);
    b->ref[4] = s_ref(1, 0);
    b->ref[5] = s_ref(SL_MSG_CHAIN_MAX - 1, SL_MSG_SUBTASK_MAX - 1);
    b->subp[0] = &b->ref[0];
    b->subp[1] = &b->ref[1];
    for (int i = 0; i < 2; i++) {
        b->loc[i] = (Sluice__SubtaskLocation)SLUICE__SUBTASK_LOCATION__INIT;
        b->loc[i].ref = &b->ref[2 + i];
        b->locp[i] = &b->loc[i];
    }
    b->loc[0].worker_id = WORKER_RID;
    b->loc[0].data_endpoint = "tcp://10.0.0.7:7100";
    b->loc[1].worker_id = "worker-9";
    b->loc[1].data_endpoint = "inproc://worker-9-data";

    b->dep = (Sluice__Deploy)SLUICE__DEPLOY__INIT;
    b->dep.job_id = "job-0001";
    b->dep.spec_file = "wc.yaml";
    b->dep.spec_text.data = (uint8_t *)SPEC;
    b->dep.spec_text.len = strlen(SPEC);
    b->dep.n_params = 2;
    b->dep.params = b->parp;
    b->dep.parallelism = 4;
    b->dep.n_subtasks = 2;
    b->dep.subtasks = b->subp;
    b->dep.n_locations = 2;
    b->dep.locations = b->locp;

    b->om[0] = s_metric("tokenize", 1000);
    b->om[1] = s_metric("count", UINT64_MAX / 8);
    b->omp[0] = &b->om[0];
    b->omp[1] = &b->om[1];

    b->ts = (Sluice__TaskState)SLUICE__TASK_STATE__INIT;
    b->ts.job_id = "job-0001";
    b->ts.ref = &b->ref[4];
    b->ts.state = SLUICE__TASK_STATE_KIND__TASK_RUNNING;
    b->ts.n_metrics = 2;
    b->ts.metrics = b->omp;

    b->ct = (Sluice__CancelTasks)SLUICE__CANCEL_TASKS__INIT;
    b->ct.job_id = "job-0001";

    b->sj = (Sluice__SubmitJob)SLUICE__SUBMIT_JOB__INIT;
    b->sj.spec_file = "jobs/wc.yaml";
    b->sj.spec_text = b->dep.spec_text;
    b->sj.n_params = 2;
    b->sj.params = b->parp;
    b->sj.parallelism = 2;

    b->sr = (Sluice__SubmitReply)SLUICE__SUBMIT_REPLY__INIT;
    b->sr.job_id = "job-0001";
    b->jsr = (Sluice__JobStatusRequest)SLUICE__JOB_STATUS_REQUEST__INIT;
    b->jsr.job_id = "job-0001";

    for (int i = 0; i < 2; i++) {
        b->tst[i] = (Sluice__TaskStatus)SLUICE__TASK_STATUS__INIT;
        b->tstp[i] = &b->tst[i];
    }
    b->tst[0].ref = &b->ref[5];
    b->tst[0].worker_id = "worker-9";
    b->tst[0].state = SLUICE__TASK_STATE_KIND__TASK_FAILED;
    b->tst[0].error = "boom: ünïcödé ✓";
    b->tst[1].ref = &b->ref[0];
    b->tst[1].state = SLUICE__TASK_STATE_KIND__TASK_RUNNING;

    for (int i = 0; i < 2; i++) {
        b->js[i] = (Sluice__JobStatus)SLUICE__JOB_STATUS__INIT;
        b->jsp[i] = &b->js[i];
    }
    b->js[0].job_id = "job-0001";
    b->js[0].name = "wc";
    b->js[0].state = SLUICE__JOB_STATE_KIND__JOB_RUNNING;
    b->js[0].start_ms = 1700000000000u;
    b->js[0].n_tasks = 2;
    b->js[0].tasks = b->tstp;
    b->js[0].n_metrics = 2;
    b->js[0].metrics = b->omp;
    b->js[0].reason = "waiting for 2 slots";
    b->js[1].job_id = "job-0002";
    b->js[1].name = "other";
    b->js[1].state = SLUICE__JOB_STATE_KIND__JOB_FINISHED;
    b->js[1].start_ms = 5;
    b->js[1].end_ms = 9;

    b->cj = (Sluice__CancelJob)SLUICE__CANCEL_JOB__INIT;
    b->cj.job_id = "job-0002";
    b->lj = (Sluice__ListJobs)SLUICE__LIST_JOBS__INIT;
    b->jl = (Sluice__JobList)SLUICE__JOB_LIST__INIT;
    b->jl.n_jobs = 2;
    b->jl.jobs = b->jsp;
    b->ok = (Sluice__Ok)SLUICE__OK__INIT;
    b->er = (Sluice__Error)SLUICE__ERROR__INIT;
    b->er.code = SL_SPEC;
    b->er.message = "wc.yaml:3:7: unknown operator type 'windw'";
    b->sd = (Sluice__Shutdown)SLUICE__SHUTDOWN__INIT;

    b->ctr = (Sluice__CheckpointTrigger)SLUICE__CHECKPOINT_TRIGGER__INIT;
    b->ctr.job_id = "job-0001";
    b->ctr.checkpoint_id = 42;
    b->ctr.timestamp_ms = 1700000000999u;
    b->cka = (Sluice__CheckpointAck)SLUICE__CHECKPOINT_ACK__INIT;
    b->cka.job_id = "job-0001";
    b->cka.checkpoint_id = 42;
    b->cka.file = "task-0-0.state";
    b->cka.ref = &b->ref[4];
    b->cka.state_handle.data = (uint8_t *)HANDLE;
    b->cka.state_handle.len = sizeof HANDLE;
    b->ckc = (Sluice__CheckpointComplete)SLUICE__CHECKPOINT_COMPLETE__INIT;
    b->ckc.job_id = "job-0001";
    b->ckc.checkpoint_id = 42;

    b->env.body_case = kind;
    switch (kind) {
    case SLUICE__ENVELOPE__BODY_REGISTER:
        b->env.register_ = &b->reg;
        break;
    case SLUICE__ENVELOPE__BODY_REGISTER_ACK:
        b->env.register_ack = &b->rack;
        break;
    case SLUICE__ENVELOPE__BODY_HEARTBEAT:
        b->env.heartbeat = &b->hb;
        break;
    case SLUICE__ENVELOPE__BODY_DEPLOY:
        b->env.deploy = &b->dep;
        break;
    case SLUICE__ENVELOPE__BODY_TASK_STATE:
        b->env.task_state = &b->ts;
        break;
    case SLUICE__ENVELOPE__BODY_CANCEL_TASKS:
        b->env.cancel_tasks = &b->ct;
        break;
    case SLUICE__ENVELOPE__BODY_SUBMIT_JOB:
        b->env.submit_job = &b->sj;
        break;
    case SLUICE__ENVELOPE__BODY_SUBMIT_REPLY:
        b->env.submit_reply = &b->sr;
        break;
    case SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
        b->env.job_status_request = &b->jsr;
        break;
    case SLUICE__ENVELOPE__BODY_JOB_STATUS:
        b->env.job_status = &b->js[0];
        break;
    case SLUICE__ENVELOPE__BODY_CANCEL_JOB:
        b->env.cancel_job = &b->cj;
        break;
    case SLUICE__ENVELOPE__BODY_LIST_JOBS:
        b->env.list_jobs = &b->lj;
        break;
    case SLUICE__ENVELOPE__BODY_JOB_LIST:
        b->env.job_list = &b->jl;
        break;
    case SLUICE__ENVELOPE__BODY_OK:
        b->env.ok = &b->ok;
        break;
    case SLUICE__ENVELOPE__BODY_ERROR:
        b->env.error = &b->er;
        break;
    case SLUICE__ENVELOPE__BODY_SHUTDOWN:
        b->env.shutdown = &b->sd;
        break;
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER:
        b->env.checkpoint_trigger = &b->ctr;
        break;
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK:
        b->env.checkpoint_ack = &b->cka;
        break;
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE:
        b->env.checkpoint_complete = &b->ckc;
        break;
    default:
        ck_abort_msg("unknown kind %d", (int)kind);
    }
}

/* Two envelopes are equal when they pack to the same bytes (protobuf-c packs
 * fields in number order, so this compares every field). */
static void s_assert_same(const Sluice__Envelope *a, const Sluice__Envelope *b)
{
    uint8_t *pa, *pb;
    size_t la, lb;
    ck_assert_int_eq(sl_msg_encode(a, &pa, &la), 0);
    ck_assert_int_eq(sl_msg_encode(b, &pb, &lb), 0);
    ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "%s differs after the round trip",
                  sl_msg_kind_name(a));
    free(pa);
    free(pb);
}

/* Raw packing that bypasses sl_msg (no forced version), for crafting bad input. */
static uint8_t *s_raw_pack(const Sluice__Envelope *env, size_t *len)
{
    *len = sluice__envelope__get_packed_size(env);
    uint8_t *buf = malloc(*len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(sluice__envelope__pack(env, buf), *len);
    return buf;
}

/* ---- sockets ------------------------------------------------------------------ */

typedef struct {
    void *ctx;
    void *router; /* the "master" */
    void *dealer; /* a "worker" with routing id WORKER_RID */
} pair_t;

static void s_opts(void *sock, int timeout_ms)
{
    int zero = 0;
    ck_assert_int_eq(zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero), 0);
    ck_assert_int_eq(zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms), 0);
    ck_assert_int_eq(zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms), 0);
}

/* endpoint: "inproc://name" or "tcp://127.0.0.1:*" (ephemeral port). */
static void s_pair_open(pair_t *p, const char *endpoint)
{
    p->ctx = zmq_ctx_new();
    ck_assert_ptr_nonnull(p->ctx);
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    ck_assert_ptr_nonnull(p->router);
    ck_assert_ptr_nonnull(p->dealer);
    s_opts(p->router, 10000);
    s_opts(p->dealer, 10000);
    ck_assert_int_eq(sl_msg_limit_socket(p->router), 0);
    ck_assert_int_eq(zmq_bind(p->router, endpoint), 0);
    char ep[256];
    size_t n = sizeof ep;
    ck_assert_int_eq(zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, ep, &n), 0);
    ck_assert_int_eq(zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, WORKER_RID, strlen(WORKER_RID)), 0);
    ck_assert_int_eq(zmq_connect(p->dealer, ep), 0);
}

static void s_pair_close(pair_t *p)
{
    zmq_close(p->dealer);
    zmq_close(p->router);
    zmq_ctx_term(p->ctx);
}

/* Sends a valid heartbeat from the dealer and checks the router gets it:
 * proves the socket is in sync after bad input. */
static void s_expect_good_next(pair_t *p, uint64_t request_id)
{
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, request_id);
    ck_assert_int_eq(sl_msg_send(p->dealer, NULL, 0, &b.env), 0);
    uint8_t rid[SL_MSG_RID_MAX];
    size_t rl = 0;
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    int rc = sl_msg_recv(p->router, 0, rid, &rl, &got, err, sizeof err);
    ck_assert_msg(rc == 0, "good message after bad one: %s (%s)", sl_errname(rc), err);
    ck_assert_uint_eq(got->request_id, request_id);
    ck_assert_int_eq(got->body_case, SLUICE__ENVELOPE__BODY_HEARTBEAT);
    ck_assert_uint_eq(rl, strlen(WORKER_RID));
    sl_msg_free(&got);
}

/* Router receives; expects rc and, if substr, err containing it. */
static void s_expect_router_rc(pair_t *p, int want, const char *substr)
{
    uint8_t rid[SL_MSG_RID_MAX];
    size_t rl = 0;
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    int rc = sl_msg_recv(p->router, 0, rid, &rl, &got, err, sizeof err);
    ck_assert_msg(rc == want, "want %s, got %s (%s)", sl_errname(want), sl_errname(rc), err);
    if (want != 0) {
        ck_assert_ptr_null(got);
        ck_assert_msg(err[0] != '\0', "no error message");
    }
    if (substr)
        ck_assert_msg(strstr(err, substr) != NULL, "'%s' not in '%s'", substr, err);
    sl_msg_free(&got);
}

static void s_roundtrip_all(pair_t *p)
{
    for (size_t i = 0; i < NKINDS; i++) {
        bag_t b;
        s_fill(&b, KINDS[i], 1000 + i);
        ck_assert_int_eq(sl_msg_send(p->dealer, NULL, 0, &b.env), 0);

        uint8_t rid[SL_MSG_RID_MAX];
        size_t rl = 0;
        Sluice__Envelope *got = NULL;
        char err[ERRCAP];
        int rc = sl_msg_recv(p->router, 0, rid, &rl, &got, err, sizeof err);
        ck_assert_msg(rc == 0, "%s: %s (%s)", sl_msg_kind_name(&b.env), sl_errname(rc), err);
        ck_assert_uint_eq(rl, strlen(WORKER_RID));
        ck_assert_mem_eq(rid, WORKER_RID, rl);
        ck_assert_int_eq(got->body_case, KINDS[i]);
        ck_assert_uint_eq(got->version, SL_PROTO_VERSION);
        ck_assert_uint_eq(got->request_id, 1000 + i);
        s_assert_same(&b.env, got);

        /* and back to the same worker by its routing id */
        ck_assert_int_eq(sl_msg_send(p->router, rid, rl, got), 0);
        sl_msg_free(&got);
        ck_assert_ptr_null(got);
        rl = 99;
        rc = sl_msg_recv(p->dealer, 0, rid, &rl, &got, err, sizeof err);
        ck_assert_msg(rc == 0, "%s back: %s (%s)", sl_msg_kind_name(&b.env), sl_errname(rc), err);
        ck_assert_uint_eq(rl, 0);
        ck_assert_uint_eq(got->request_id, 1000 + i);
        s_assert_same(&b.env, got);
        sl_msg_free(&got);
    }
}

START_TEST(test_roundtrip_inproc)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-rt");
    s_roundtrip_all(&p);
    s_pair_close(&p);
}
END_TEST

START_TEST(test_roundtrip_tcp)
{
    pair_t p;
    s_pair_open(&p, "tcp://127.0.0.1:*");
    s_roundtrip_all(&p);
    s_pair_close(&p);
}
END_TEST

START_TEST(test_decoded_fields)
{
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 5);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sl_msg_encode(&b.env, &buf, &len), 0);
    Sluice__Envelope *e = NULL;
    char err[ERRCAP];
    ck_assert_int_eq(sl_msg_decode(buf, len, &e, err, sizeof err), 0);
    free(buf);
    ck_assert_str_eq(sl_msg_kind_name(e), "deploy");
    const Sluice__Deploy *d = e->deploy;
    ck_assert_str_eq(d->job_id, "job-0001");
    ck_assert_uint_eq(d->spec_text.len, strlen(SPEC));
    ck_assert_mem_eq(d->spec_text.data, SPEC, strlen(SPEC));
    ck_assert_uint_eq(d->n_params, 2);
    ck_assert_str_eq(d->params[1]->value, "10 s");
    ck_assert_uint_eq(d->n_subtasks, 2);
    ck_assert_uint_eq(d->subtasks[1]->chain, 2);
    ck_assert_uint_eq(d->subtasks[1]->subtask, 3);
    ck_assert_str_eq(d->locations[1]->data_endpoint, "inproc://worker-9-data");
    sl_msg_free(&e);
    ck_assert_ptr_null(e);

    /* binary-safe bytes and unicode text survive */
    s_fill(&b, SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK, 6);
    ck_assert_int_eq(sl_msg_encode(&b.env, &buf, &len), 0);
    ck_assert_int_eq(sl_msg_decode(buf, len, &e, err, sizeof err), 0);
    free(buf);
    ck_assert_uint_eq(e->checkpoint_ack->state_handle.len, sizeof HANDLE);
    ck_assert_mem_eq(e->checkpoint_ack->state_handle.data, HANDLE, sizeof HANDLE);
    sl_msg_free(&e);
    s_fill(&b, SLUICE__ENVELOPE__BODY_JOB_STATUS, 7);
    ck_assert_int_eq(sl_msg_encode(&b.env, &buf, &len), 0);
    ck_assert_int_eq(sl_msg_decode(buf, len, &e, err, sizeof err), 0);
    free(buf);
    ck_assert_str_eq(e->job_status->tasks[0]->error, "boom: ünïcödé ✓");
    ck_assert_uint_eq(e->job_status->tasks[0]->ref->chain, SL_MSG_CHAIN_MAX - 1);
    sl_msg_free(&e);

    sl_msg_free(NULL);
    sl_msg_free(&e);
}
END_TEST

START_TEST(test_kind_names)
{
    for (size_t i = 0; i < NKINDS; i++) {
        bag_t b;
        s_fill(&b, KINDS[i], 1);
        const char *n = sl_msg_kind_name(&b.env);
        ck_assert_str_ne(n, "none");
        for (size_t j = 0; j < i; j++) {
            bag_t c;
            s_fill(&c, KINDS[j], 1);
            ck_assert_str_ne(n, sl_msg_kind_name(&c.env));
        }
    }
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    ck_assert_str_eq(sl_msg_kind_name(&b.env), "heartbeat");
    s_fill(&b, SLUICE__ENVELOPE__BODY_REGISTER_ACK, 1);
    ck_assert_str_eq(sl_msg_kind_name(&b.env), "register_ack");
    ck_assert_str_eq(sl_msg_kind_name(NULL), "none");
    Sluice__Envelope empty;
    sl_msg_init(&empty, 3);
    ck_assert_str_eq(sl_msg_kind_name(&empty), "none");
}
END_TEST

/* ---- versions ---------------------------------------------------------------------- */

START_TEST(test_version_mismatch)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-version");
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 77);
    b.env.version = SL_PROTO_VERSION + 1;
    size_t len;
    uint8_t *buf = s_raw_pack(&b.env, &len);
    ck_assert_int_eq(zmq_send(p.dealer, buf, len, 0), (int)len);
    free(buf);

    uint8_t rid[SL_MSG_RID_MAX];
    size_t rl = 0;
    uint64_t req = 0;
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    int rc = sl_msg_recv_ex(p.router, 0, rid, &rl, &got, &req, err, sizeof err);
    ck_assert_int_eq(rc, SL_VERSION);
    ck_assert_ptr_null(got);
    ck_assert_uint_eq(req, 77);
    ck_assert_msg(strstr(err, "version 2") != NULL, "%s", err);
    ck_assert_uint_eq(rl, strlen(WORKER_RID));

    /* the master answers with an Error echoing the request id */
    ck_assert_int_eq(sl_msg_send_error(p.router, rid, rl, req, rc, "%s", err), 0);
    rc = sl_msg_recv(p.dealer, 0, NULL, NULL, &got, err, sizeof err);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(got->body_case, SLUICE__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(got->error->code, SL_VERSION);
    ck_assert_uint_eq(got->request_id, 77);
    ck_assert_ptr_nonnull(strstr(got->error->message, "version 2"));
    sl_msg_free(&got);

    /* sl_msg_send forces the current version whatever the caller set */
    b.env.version = 9;
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &b.env), 0);
    s_expect_router_rc(&p, 0, NULL);

    /* a peer that sets no version at all */
    b.env.version = 0;
    buf = s_raw_pack(&b.env, &len);
    ck_assert_int_eq(sl_msg_decode(buf, len, &got, err, sizeof err), SL_VERSION);
    ck_assert_ptr_null(got);
    ck_assert_ptr_nonnull(strstr(err, "version 0"));
    free(buf);
    s_pair_close(&p);
}
END_TEST

/* ---- framing ------------------------------------------------------------------- */

START_TEST(test_multipart_drained)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-frames");
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    uint8_t *good;
    size_t len;
    ck_assert_int_eq(sl_msg_encode(&b.env, &good, &len), 0);

    /* [good][junk][junk] */
    ck_assert_int_eq(zmq_send(p.dealer, good, len, ZMQ_SNDMORE), (int)len);
    ck_assert_int_eq(zmq_send(p.dealer, "junk", 4, ZMQ_SNDMORE), 4);
    ck_assert_int_eq(zmq_send(p.dealer, "more junk", 9, 0), 9);
    s_expect_router_rc(&p, SL_PROTO, "got 3");
    s_expect_good_next(&p, 2);

    /* REQ-style empty delimiter before the payload */
    ck_assert_int_eq(zmq_send(p.dealer, "", 0, ZMQ_SNDMORE), 0);
    ck_assert_int_eq(zmq_send(p.dealer, good, len, 0), (int)len);
    s_expect_router_rc(&p, SL_PROTO, "got 2");
    s_expect_good_next(&p, 3);

    /* an empty frame */
    ck_assert_int_eq(zmq_send(p.dealer, "", 0, 0), 0);
    s_expect_router_rc(&p, SL_PROTO, "empty");
    s_expect_good_next(&p, 4);

    /* and on the dealer side: [good][junk] from the router */
    ck_assert_int_eq(zmq_send(p.router, WORKER_RID, strlen(WORKER_RID), ZMQ_SNDMORE),
                     (int)strlen(WORKER_RID));
    ck_assert_int_eq(zmq_send(p.router, good, len, ZMQ_SNDMORE), (int)len);
    ck_assert_int_eq(zmq_send(p.router, "junk", 4, 0), 4);
    ck_assert_int_eq(sl_msg_send_ok(p.router, WORKER_RID, strlen(WORKER_RID), 5), 0);
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    ck_assert_int_eq(sl_msg_recv(p.dealer, 0, NULL, NULL, &got, err, sizeof err), SL_PROTO);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(sl_msg_recv(p.dealer, 0, NULL, NULL, &got, err, sizeof err), 0);
    ck_assert_int_eq(got->body_case, SLUICE__ENVELOPE__BODY_OK);
    ck_assert_uint_eq(got->request_id, 5);
    sl_msg_free(&got);
    free(good);
    s_pair_close(&p);
}
END_TEST

START_TEST(test_timeouts_and_send_errors)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-timeout");
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    uint8_t rid[SL_MSG_RID_MAX];
    size_t rl = 5;
    ck_assert_int_eq(sl_msg_recv(p.router, ZMQ_DONTWAIT, rid, &rl, &got, err, sizeof err),
                     SL_TIMEOUT);
    ck_assert_ptr_null(got);
    ck_assert_uint_eq(rl, 0);
    int ms = 20;
    ck_assert_int_eq(zmq_setsockopt(p.dealer, ZMQ_RCVTIMEO, &ms, sizeof ms), 0);
    ck_assert_int_eq(sl_msg_recv(p.dealer, 0, NULL, NULL, &got, err, sizeof err), SL_TIMEOUT);

    /* a dealer with no peer cannot queue: nonblocking send reports SL_TIMEOUT */
    void *lonely = zmq_socket(p.ctx, ZMQ_DEALER);
    s_opts(lonely, 100);
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    ck_assert_int_eq(sl_msg_send_flags(lonely, ZMQ_DONTWAIT, NULL, 0, &b.env), SL_TIMEOUT);
    zmq_close(lonely);

    /* unroutable with ROUTER_MANDATORY */
    int one = 1;
    ck_assert_int_eq(zmq_setsockopt(p.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one), 0);
    ck_assert_int_eq(sl_msg_send(p.router, "nobody", 6, &b.env), SL_NOTFOUND);

    /* misuse */
    Sluice__Envelope empty;
    sl_msg_init(&empty, 1);
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &empty), SL_INVAL);
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, NULL), SL_INVAL);
    ck_assert_int_eq(sl_msg_send(p.router, NULL, 3, &b.env), SL_INVAL);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sl_msg_encode(&empty, &buf, &len), SL_INVAL);
    ck_assert_int_eq(sl_msg_send_error(p.dealer, NULL, 0, 1, 0, "not an error"), SL_INVAL);
    s_pair_close(&p);
}
END_TEST

START_TEST(test_send_error_text)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-errtext");
    /* bytes from a bad input record end up in the message: made valid UTF-8 */
    ck_assert_int_eq(
        sl_msg_send_error(p.dealer, NULL, 0, 9, SL_DATA, "bad record '%s'", "\xff\xfe ok \xc3"), 0);
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    uint8_t rid[SL_MSG_RID_MAX];
    size_t rl;
    int rc = sl_msg_recv(p.router, 0, rid, &rl, &got, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(got->error->message, "bad record '?? ok ?'");
    ck_assert_int_eq(got->error->code, SL_DATA);
    sl_msg_free(&got);

    /* over-long text is cut to the limit, even in the middle of a character */
    size_t n = SL_MSG_TEXT_MAX + 100;
    char *big = malloc(n + 1);
    big[0] = 'x';
    for (size_t i = 1; i + 1 < n; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[n - 1] = '\0';
    ck_assert_int_eq(sl_msg_send_error(p.dealer, NULL, 0, 10, SL_LIMIT, "%s", big), 0);
    free(big);
    rc = sl_msg_recv(p.router, 0, rid, &rl, &got, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(strlen(got->error->message), SL_MSG_TEXT_MAX);
    ck_assert_int_eq(got->error->message[SL_MSG_TEXT_MAX - 1], '?');
    sl_msg_free(&got);
    s_pair_close(&p);
}
END_TEST

/* ---- size limits ------------------------------------------------------------------- */

START_TEST(test_oversize)
{
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-big");
    size_t n = SL_MSG_MAX_BYTES + 1;
    uint8_t *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(zmq_send(p.dealer, big, n, 0), (int)n);
    s_expect_router_rc(&p, SL_PROTO, "exceeds");
    s_expect_good_next(&p, 1);
    ck_assert_int_eq(sl_msg_decode(big, n, &(Sluice__Envelope *){NULL}, NULL, 0), SL_PROTO);

    /* the sender refuses to pack more than the limit */
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_SUBMIT_JOB, 2);
    b.sj.spec_text.data = big;
    b.sj.spec_text.len = SL_MSG_MAX_BYTES;
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &b.env), SL_LIMIT);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sl_msg_encode(&b.env, &buf, &len), SL_LIMIT);

    /* under the message limit but over the spec limit: the field is named */
    memset(big, 'a', SL_MSG_SPEC_MAX + 1);
    b.sj.spec_text.len = SL_MSG_SPEC_MAX + 1;
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &b.env), 0);
    s_expect_router_rc(&p, SL_PROTO, "submit_job.spec_text");
    b.sj.spec_text.len = SL_MSG_SPEC_MAX;
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &b.env), 0);
    s_expect_router_rc(&p, 0, NULL);
    free(big);
    s_pair_close(&p);
}
END_TEST

/* ---- validation ------------------------------------------------------------------ */

/* Encodes b's envelope raw (no checks), decodes it, expects want and, when
 * substr is given, err containing it. */
static void s_expect_decode(const Sluice__Envelope *env, int want, const char *substr)
{
    size_t len;
    uint8_t *buf = s_raw_pack(env, &len);
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    int rc = sl_msg_decode(buf, len, &got, err, sizeof err);
    free(buf);
    ck_assert_msg(rc == want, "%s: want %s, got %s (%s)", sl_msg_kind_name(env), sl_errname(want),
                  sl_errname(rc), err);
    if (want != 0)
        ck_assert_ptr_null(got);
    else
        ck_assert_ptr_nonnull(got);
    if (substr)
        ck_assert_msg(strstr(err, substr) != NULL, "'%s' not in '%s'", substr, err);
    /* the same rules hold for caller-built envelopes */
    char err2[ERRCAP];
    int vrc = sl_msg_validate(env, err2, sizeof err2);
    if (want == SL_PROTO)
        ck_assert_int_eq(vrc, SL_PROTO);
    sl_msg_free(&got);
}

START_TEST(test_missing_required)
{
    /* over the socket: the receiver names the field */
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-required");
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_REGISTER, 1);
    b.reg.worker_id = "";
    ck_assert_int_eq(sl_msg_send(p.dealer, NULL, 0, &b.env), 0);
    s_expect_router_rc(&p, SL_PROTO, "register.worker_id is required");
    s_expect_good_next(&p, 2);
    s_pair_close(&p);

    s_fill(&b, SLUICE__ENVELOPE__BODY_REGISTER, 1);
    b.reg.data_endpoint = "";
    s_expect_decode(&b.env, SL_PROTO, "register.data_endpoint is required");

    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.loc[1].ref = NULL;
    s_expect_decode(&b.env, SL_PROTO, "deploy.locations[1].ref is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.loc[0].worker_id = "";
    s_expect_decode(&b.env, SL_PROTO, "deploy.locations[0].worker_id is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.dep.spec_text.len = 0;
    s_expect_decode(&b.env, SL_PROTO, "deploy.spec_text is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.par[1].name = "";
    s_expect_decode(&b.env, SL_PROTO, "deploy.params[1].name is required");

    s_fill(&b, SLUICE__ENVELOPE__BODY_TASK_STATE, 1);
    b.ts.ref = NULL;
    s_expect_decode(&b.env, SL_PROTO, "task_state.ref is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_TASK_STATE, 1);
    b.ts.state = SLUICE__TASK_STATE_KIND__TASK_UNKNOWN;
    s_expect_decode(&b.env, SL_PROTO, "task_state.state");
    s_fill(&b, SLUICE__ENVELOPE__BODY_TASK_STATE, 1);
    b.ts.state = (Sluice__TaskStateKind)99;
    s_expect_decode(&b.env, SL_PROTO, "task_state.state is 99");
    s_fill(&b, SLUICE__ENVELOPE__BODY_TASK_STATE, 1);
    b.om[1].op = "";
    s_expect_decode(&b.env, SL_PROTO, "task_state.metrics[1].op is required");

    s_fill(&b, SLUICE__ENVELOPE__BODY_JOB_LIST, 1);
    b.tst[1].ref = NULL;
    s_expect_decode(&b.env, SL_PROTO, "job_list.jobs[0].tasks[1].ref is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_JOB_STATUS, 1);
    b.js[0].state = (Sluice__JobStateKind)-1;
    s_expect_decode(&b.env, SL_PROTO, "job_status.state");

    static const struct {
        Sluice__Envelope__BodyCase kind;
        const char *field;
    } job_ids[] = {
        {SLUICE__ENVELOPE__BODY_CANCEL_TASKS, "cancel_tasks.job_id"},
        {SLUICE__ENVELOPE__BODY_SUBMIT_REPLY, "submit_reply.job_id"},
        {SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST, "job_status_request.job_id"},
        {SLUICE__ENVELOPE__BODY_CANCEL_JOB, "cancel_job.job_id"},
        {SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER, "checkpoint_trigger.job_id"},
        {SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE, "checkpoint_complete.job_id"},
    };
    for (size_t i = 0; i < sizeof job_ids / sizeof job_ids[0]; i++) {
        s_fill(&b, job_ids[i].kind, 1);
        b.ct.job_id = b.sr.job_id = b.jsr.job_id = b.cj.job_id = "";
        b.ctr.job_id = b.ckc.job_id = "";
        s_expect_decode(&b.env, SL_PROTO, job_ids[i].field);
    }
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    b.hb.worker_id = "";
    s_expect_decode(&b.env, SL_PROTO, "heartbeat.worker_id is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK, 1);
    b.cka.ref = NULL;
    s_expect_decode(&b.env, SL_PROTO, "checkpoint_ack.ref is required");
    s_fill(&b, SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK, 1);
    b.cka.checkpoint_id = 0;
    s_expect_decode(&b.env, SL_PROTO, "checkpoint_ack.checkpoint_id");
    s_fill(&b, SLUICE__ENVELOPE__BODY_ERROR, 1);
    b.er.code = 0;
    s_expect_decode(&b.env, SL_PROTO, "error.code");

    /* an envelope without a body */
    Sluice__Envelope empty;
    sl_msg_init(&empty, 1);
    s_expect_decode(&empty, SL_PROTO, "no body");
}
END_TEST

START_TEST(test_limits)
{
    bag_t b;
    static const struct {
        uint32_t slots;
        int want;
    } slots[] = {{0, SL_PROTO}, {1, 0}, {SL_MSG_SLOTS_MAX, 0}, {SL_MSG_SLOTS_MAX + 1, SL_PROTO}};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        s_fill(&b, SLUICE__ENVELOPE__BODY_REGISTER, 1);
        b.reg.slots = slots[i].slots;
        s_expect_decode(&b.env, slots[i].want, slots[i].want ? "register.slots" : NULL);
    }

    char id[SL_MSG_ID_MAX + 2];
    memset(id, 'w', sizeof id);
    id[SL_MSG_ID_MAX] = '\0';
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    b.hb.worker_id = id;
    s_expect_decode(&b.env, 0, NULL);
    id[SL_MSG_ID_MAX] = 'w';
    id[SL_MSG_ID_MAX + 1] = '\0';
    s_expect_decode(&b.env, SL_PROTO, "heartbeat.worker_id is 257 bytes");

    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.ref[0].chain = SL_MSG_CHAIN_MAX;
    s_expect_decode(&b.env, SL_PROTO, "deploy.subtasks[0].chain is 4096");
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.ref[3].subtask = SL_MSG_SUBTASK_MAX;
    s_expect_decode(&b.env, SL_PROTO, "deploy.locations[1].ref.subtask is 1024");
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.dep.parallelism = SL_MSG_SUBTASK_MAX + 1;
    s_expect_decode(&b.env, SL_PROTO, "deploy.parallelism");

    /* repeated fields */
    size_t n = SL_MSG_REPEATED_MAX + 1;
    Sluice__SubtaskRef *refs = malloc(n * sizeof *refs);
    Sluice__SubtaskRef **ptrs = malloc(n * sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        refs[i] = s_ref((uint32_t)(i / SL_MSG_SUBTASK_MAX), (uint32_t)(i % SL_MSG_SUBTASK_MAX));
        ptrs[i] = &refs[i];
    }
    s_fill(&b, SLUICE__ENVELOPE__BODY_DEPLOY, 1);
    b.dep.subtasks = ptrs;
    b.dep.n_subtasks = n - 1;
    s_expect_decode(&b.env, 0, NULL);
    b.dep.n_subtasks = n;
    s_expect_decode(&b.env, SL_PROTO, "deploy.subtasks has 100001 entries");
    free(refs);
    free(ptrs);
}
END_TEST

START_TEST(test_utf8)
{
    /* Envelope{version=1, register{worker_id=<3 bytes>, slots=1, data_endpoint="e"}} */
    static const struct {
        uint8_t id[3];
        int want;
    } cases[] = {
        {{'a', 'b', 'c'}, 0},           {{0xc3, 0xa9, 'x'}, 0},        {{0xff, 'a', 'b'}, SL_PROTO},
        {{'a', 0x00, 'b'}, SL_PROTO},   {{0xc0, 0xaf, 'x'}, SL_PROTO}, /* overlong '/' */
        {{'x', 0xe2, 0x82}, SL_PROTO},                                 /* truncated */
        {{0xed, 0xa0, 0x80}, SL_PROTO},                                /* surrogate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[] = {0x08, 0x01, 0x52, 0x0a, 0x0a, 0x03, 0, 0, 0, 0x10, 0x01, 0x1a, 0x01, 'e'};
        memcpy(buf + 6, cases[i].id, 3);
        Sluice__Envelope *got = NULL;
        char err[ERRCAP];
        int rc = sl_msg_decode(buf, sizeof buf, &got, err, sizeof err);
        ck_assert_msg(rc == cases[i].want, "case %zu: %s (%s)", i, sl_errname(rc), err);
        if (rc != 0)
            ck_assert_ptr_nonnull(strstr(err, "register.worker_id is not valid UTF-8"));
        sl_msg_free(&got);
    }
    /* caller-built envelopes are checked by sl_msg_validate as well */
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_ERROR, 1);
    b.er.message = "bad \xfe";
    char err[ERRCAP];
    ck_assert_int_eq(sl_msg_validate(&b.env, err, sizeof err), SL_PROTO);
    ck_assert_ptr_nonnull(strstr(err, "error.message"));

    char s[] = "ok \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 bad \xff\xc3 \xed\xa0\x80!";
    sl_msg_sanitize_utf8(s);
    ck_assert_str_eq(s, "ok \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 bad ?? ??"
                        "?!"); /* split: no trigraph */
}
END_TEST

/* Appends a varint. */
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

START_TEST(test_unknown_fields_and_budget)
{
    /* a newer peer's extra fields are skipped, within limits */
    bag_t b;
    s_fill(&b, SLUICE__ENVELOPE__BODY_HEARTBEAT, 1);
    size_t len;
    uint8_t *base = s_raw_pack(&b.env, &len);
    size_t cap = len + 4 * (SL_MSG_MAX_UNKNOWN + 1);
    uint8_t *buf = malloc(cap);
    memcpy(buf, base, len);
    free(base);
    size_t n = len;
    for (unsigned i = 0; i < 3; i++) {
        n += s_put_varint(buf + n, (100u << 3) | 0);
        buf[n++] = 7;
    }
    Sluice__Envelope *got = NULL;
    char err[ERRCAP];
    ck_assert_int_eq(sl_msg_decode(buf, n, &got, err, sizeof err), 0);
    ck_assert_str_eq(got->heartbeat->worker_id, WORKER_RID);
    sl_msg_free(&got);
    for (unsigned i = 3; i < SL_MSG_MAX_UNKNOWN + 1; i++) {
        n += s_put_varint(buf + n, (100u << 3) | 0);
        buf[n++] = 7;
    }
    ck_assert_int_eq(sl_msg_decode(buf, n, &got, err, sizeof err), SL_PROTO);
    ck_assert_ptr_nonnull(strstr(err, "unknown fields"));
    free(buf);

    /* a small message that would make protobuf-c allocate a million
     * sub-messages is refused before unpacking */
    size_t jobs = SL_MSG_MAX_NODES + 1;
    size_t body = 2 * jobs;
    buf = malloc(body + 32);
    n = 0;
    buf[n++] = 0x08;
    buf[n++] = 0x01;
    n += s_put_varint(buf + n, (22u << 3) | 2); /* job_list */
    n += s_put_varint(buf + n, body);
    for (size_t i = 0; i < jobs; i++) {
        buf[n++] = 0x0a; /* jobs, empty */
        buf[n++] = 0x00;
    }
    ck_assert_int_eq(sl_msg_decode(buf, n, &got, err, sizeof err), SL_PROTO);
    ck_assert_ptr_nonnull(strstr(err, "elements"));
    free(buf);
}
END_TEST

/* ---- garbage and fuzzing --------------------------------------------------------- */

static uint64_t s_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Decodes data and asserts the outcome is one of the documented ones. */
static int s_decode_any(const uint8_t *data, size_t len)
{
    Sluice__Envelope *got = (Sluice__Envelope *)&got; /* must be reset */
    char err[ERRCAP];
    int rc = sl_msg_decode(data, len, &got, err, sizeof err);
    ck_assert_msg(rc == 0 || rc == SL_PROTO || rc == SL_VERSION, "unexpected %s", sl_errname(rc));
    if (rc == 0) {
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got->version, SL_PROTO_VERSION);
        ck_assert_int_eq(sl_msg_validate(got, NULL, 0), 0);
        uint8_t *again;
        size_t alen;
        ck_assert_int_eq(sl_msg_encode(got, &again, &alen), 0);
        free(again);
    } else {
        ck_assert_ptr_null(got);
        ck_assert_msg(err[0] != '\0', "%s without a message", sl_errname(rc));
    }
    sl_msg_free(&got);
    return rc;
}

START_TEST(test_garbage)
{
    ck_assert_int_eq(s_decode_any(NULL, 0), SL_PROTO);
    ck_assert_int_eq(s_decode_any((const uint8_t *)"\xff\xff\xff", 3), SL_PROTO);
    ck_assert_int_eq(s_decode_any((const uint8_t *)"\x08", 1), SL_PROTO);
    ck_assert_int_eq(s_decode_any((const uint8_t *)"\x0b\x0c", 2), SL_PROTO); /* group */

    uint64_t rng = 0x5eed5eed1234ull;
    uint8_t buf[256];
    for (int i = 0; i < 3000; i++) {
        size_t len = s_rand(&rng) % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)s_rand(&rng);
        s_decode_any(buf, len);
    }

    /* every prefix of every valid encoding */
    for (size_t k = 0; k < NKINDS; k++) {
        bag_t b;
        s_fill(&b, KINDS[k], 1);
        uint8_t *enc;
        size_t len;
        ck_assert_int_eq(sl_msg_encode(&b.env, &enc, &len), 0);
        ck_assert_int_eq(s_decode_any(enc, len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *copy = malloc(cut + 1); /* exact size so ASan sees over-reads */
            memcpy(copy, enc, cut);
            s_decode_any(copy, cut);
            free(copy);
        }
        free(enc);
    }
}
END_TEST

/* Applies 1..4 random mutations to buf (len bytes, cap capacity). */
static size_t s_mutate(uint64_t *rng, uint8_t *buf, size_t len, size_t cap)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08};
    int muts = 1 + (int)(s_rand(rng) % 4);
    for (int m = 0; m < muts; m++) {
        size_t pos = len ? s_rand(rng) % len : 0;
        switch (s_rand(rng) % 7) {
        case 0:
            if (len)
                buf[pos] ^= (uint8_t)(1u << (s_rand(rng) % 8));
            break;
        case 1:
            if (len)
                buf[pos] = (uint8_t)s_rand(rng);
            break;
        case 2:
            if (len < cap) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = (uint8_t)s_rand(rng);
                len++;
            }
            break;
        case 3:
            if (len) {
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            }
            break;
        case 4:
            len = len ? s_rand(rng) % (len + 1) : 0;
            break;
        case 5:
            if (len)
                buf[pos] = interesting[s_rand(rng) % sizeof interesting];
            break;
        default: {
            size_t chunk = len ? 1 + s_rand(rng) % len : 0;
            if (pos + chunk > len)
                chunk = len - pos;
            if (len + chunk <= cap) {
                memcpy(buf + len, buf + pos, chunk);
                len += chunk;
            }
            break;
        }
        }
    }
    return len;
}

START_TEST(test_fuzz_mutations)
{
    uint8_t *enc[NKINDS];
    size_t enc_len[NKINDS];
    for (size_t k = 0; k < NKINDS; k++) {
        bag_t b;
        s_fill(&b, KINDS[k], 1234567);
        ck_assert_int_eq(sl_msg_encode(&b.env, &enc[k], &enc_len[k]), 0);
    }
    uint64_t rng = 0xfeedface12345678ull;
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 8000; i++) {
        size_t k = s_rand(&rng) % NKINDS;
        size_t cap = enc_len[k] * 2 + 16;
        uint8_t *buf = malloc(cap);
        memcpy(buf, enc[k], enc_len[k]);
        size_t len = s_mutate(&rng, buf, enc_len[k], cap);
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        int rc = s_decode_any(exact, len);
        counts[rc == 0 ? 0 : rc == SL_PROTO ? 1 : 2]++;
        free(exact);
        free(buf);
    }
    /* the loop really reaches both sides of the decoder */
    ck_assert_int_gt(counts[0], 100);
    ck_assert_int_gt(counts[1], 1000);

    /* and over a socket: after each mutated message (sometimes split into
     * frames), the next good one still arrives */
    pair_t p;
    s_pair_open(&p, "inproc://check-msg-fuzz");
    for (int i = 0; i < 400; i++) {
        size_t k = s_rand(&rng) % NKINDS;
        size_t cap = enc_len[k] * 2 + 16;
        uint8_t *buf = malloc(cap);
        memcpy(buf, enc[k], enc_len[k]);
        size_t len = s_mutate(&rng, buf, enc_len[k], cap);
        size_t split = s_rand(&rng) % 4 == 0 && len > 1 ? 1 + s_rand(&rng) % (len - 1) : len;
        if (split < len) {
            ck_assert_int_eq(zmq_send(p.dealer, buf, split, ZMQ_SNDMORE), (int)split);
            ck_assert_int_eq(zmq_send(p.dealer, buf + split, len - split, 0), (int)(len - split));
        } else {
            ck_assert_int_eq(zmq_send(p.dealer, buf, len, 0), (int)len);
        }
        free(buf);
        uint8_t rid[SL_MSG_RID_MAX];
        size_t rl;
        Sluice__Envelope *got = NULL;
        char err[ERRCAP];
        int rc = sl_msg_recv(p.router, 0, rid, &rl, &got, err, sizeof err);
        ck_assert_msg(rc == 0 || rc == SL_PROTO || rc == SL_VERSION, "%s", sl_errname(rc));
        ck_assert_uint_eq(rl, strlen(WORKER_RID));
        if (split < len)
            ck_assert_int_eq(rc, SL_PROTO);
        sl_msg_free(&got);
        s_expect_good_next(&p, 50000 + (uint64_t)i);
    }
    s_pair_close(&p);
    for (size_t k = 0; k < NKINDS; k++)
        free(enc[k]);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("msg");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_roundtrip_inproc);
    tcase_add_test(tc, test_roundtrip_tcp);
    tcase_add_test(tc, test_decoded_fields);
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_version_mismatch);
    tcase_add_test(tc, test_multipart_drained);
    tcase_add_test(tc, test_timeouts_and_send_errors);
    tcase_add_test(tc, test_send_error_text);
    tcase_add_test(tc, test_oversize);
    tcase_add_test(tc, test_missing_required);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_unknown_fields_and_budget);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_fuzz_mutations);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
