/* client.c — request/reply with the master over a DEALER socket. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/spec.h"

struct sl_client {
    void *sock;        /* DEALER to the master */
    uint64_t next_req; /* request ids */
};

sl_client_t *sl_client_new(void *zctx, const char *endpoint)
{
    sl_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->sock = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        sl_msg_limit_socket(c->sock) || zmq_connect(c->sock, endpoint)) {
        if (c->sock)
            zmq_close(c->sock);
        free(c);
        return NULL;
    }
    return c;
}

void sl_client_destroy(sl_client_t **pp)
{
    if (!pp || !*pp)
        return;
    zmq_close((*pp)->sock);
    free(*pp);
    *pp = NULL;
}

static long s_ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int sl_client_call(sl_client_t *c, Sluice__Envelope *env, int timeout_ms, Sluice__Envelope **reply,
                   char *err, size_t cap)
{
    *reply = NULL;
    env->request_id = ++c->next_req;
    int rc = sl_msg_send(c->sock, NULL, 0, env);
    if (rc) {
        snprintf(err, cap, "cannot send to the master: %s", sl_strerror(rc));
        return rc;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = timeout_ms - s_ms_since(&t0);
        if (left <= 0) {
            snprintf(err, cap, "no answer from the master within %d ms", timeout_ms);
            return SL_TIMEOUT;
        }
        zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, left) <= 0)
            continue;
        Sluice__Envelope *r = NULL;
        rc = sl_msg_recv(c->sock, ZMQ_DONTWAIT, NULL, NULL, &r, err, cap);
        if (rc == SL_TIMEOUT)
            continue;
        if (rc)
            return rc;
        if (r->request_id != env->request_id) {
            sl_msg_free(&r); /* a late answer to an earlier request */
            continue;
        }
        if (r->body_case == SLUICE__ENVELOPE__BODY_ERROR) {
            snprintf(err, cap, "%s", r->error->message);
            rc = r->error->code < 0 ? r->error->code : SL_INVAL;
            sl_msg_free(&r);
            return rc;
        }
        *reply = r;
        return SL_OK;
    }
}

int sl_client_status(sl_client_t *c, const char *job_id, int timeout_ms, Sluice__Envelope **reply,
                     char *err, size_t cap)
{
    Sluice__Envelope env;
    sl_msg_init(&env, 0);
    Sluice__JobStatusRequest sr = SLUICE__JOB_STATUS_REQUEST__INIT;
    sr.job_id = (char *)job_id;
    env.body_case = SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST;
    env.job_status_request = &sr;
    int rc = sl_client_call(c, &env, timeout_ms, reply, err, cap);
    if (rc == SL_OK && (*reply)->body_case != SLUICE__ENVELOPE__BODY_JOB_STATUS) {
        snprintf(err, cap, "unexpected answer '%s' to a status request", sl_msg_kind_name(*reply));
        sl_msg_free(reply);
        return SL_PROTO;
    }
    return rc;
}

int sl_client_submit(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                     const sl_params_t *params, int parallelism, char *job_id, size_t id_cap,
                     char *err, size_t cap)
{
    return sl_client_submit_plugin(c, spec_file, text, len, NULL, 0, params, parallelism, job_id,
                                   id_cap, err, cap);
}

int sl_client_submit_plugin(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                            const void *plugin, size_t plugin_len, const sl_params_t *params,
                            int parallelism, char *job_id, size_t id_cap, char *err, size_t cap)
{
    return sl_client_submit_from(c, spec_file, text, len, plugin, plugin_len, params, parallelism,
                                 NULL, job_id, id_cap, err, cap);
}

int sl_client_savepoint(sl_client_t *c, const char *job_id, const char *dir, bool stop,
                        int timeout_ms, char *path, size_t path_cap, char *err, size_t cap)
{
    Sluice__Envelope env, *rep = NULL;
    sl_msg_init(&env, 0);
    Sluice__SavepointRequest r = SLUICE__SAVEPOINT_REQUEST__INIT;
    r.job_id = (char *)job_id;
    r.dir = (char *)(dir ? dir : "");
    r.stop = stop;
    env.body_case = SLUICE__ENVELOPE__BODY_SAVEPOINT_REQUEST;
    env.savepoint_request = &r;
    int rc = sl_client_call(c, &env, timeout_ms, &rep, err, cap);
    if (rc)
        return rc;
    if (rep->body_case != SLUICE__ENVELOPE__BODY_SAVEPOINT_REPLY) {
        snprintf(err, cap, "unexpected answer '%s' to a savepoint request", sl_msg_kind_name(rep));
        sl_msg_free(&rep);
        return SL_PROTO;
    }
    snprintf(path, path_cap, "%s", rep->savepoint_reply->path);
    sl_msg_free(&rep);
    return SL_OK;
}

int sl_client_submit_from(sl_client_t *c, const char *spec_file, const char *text, size_t len,
                          const void *plugin, size_t plugin_len, const sl_params_t *params,
                          int parallelism, const char *from_savepoint, char *job_id, size_t id_cap,
                          char *err, size_t cap)
{
    Sluice__Envelope env, *rep = NULL;
    sl_msg_init(&env, 0);
    Sluice__SubmitJob sj = SLUICE__SUBMIT_JOB__INIT;
    sj.spec_file = (char *)spec_file;
    sj.spec_text.data = (uint8_t *)text;
    sj.spec_text.len = len;
    int np = params ? sl_params_count(params) : 0;
    Sluice__Param *pv = calloc((size_t)np + 1, sizeof *pv);
    Sluice__Param **pp = calloc((size_t)np + 1, sizeof *pp);
    if (!pv || !pp) {
        free(pv);
        free(pp);
        snprintf(err, cap, "out of memory");
        return SL_NOMEM;
    }
    for (int i = 0; i < np; i++) {
        pv[i] = (Sluice__Param)SLUICE__PARAM__INIT;
        pv[i].name = (char *)sl_params_name(params, i);
        pv[i].value = (char *)sl_params_value(params, i);
        pp[i] = &pv[i];
    }
    sj.n_params = (size_t)np;
    sj.params = pp;
    sj.parallelism = (uint32_t)parallelism;
    sj.plugin.data = (uint8_t *)plugin;
    sj.plugin.len = plugin_len;
    sj.from_savepoint = (char *)(from_savepoint ? from_savepoint : "");
    env.body_case = SLUICE__ENVELOPE__BODY_SUBMIT_JOB;
    env.submit_job = &sj;
    int rc = sl_client_call(c, &env, 10000, &rep, err, cap);
    free(pv);
    free(pp);
    if (rc)
        return rc;
    if (rep->body_case != SLUICE__ENVELOPE__BODY_SUBMIT_REPLY) {
        snprintf(err, cap, "unexpected answer '%s' to a submit", sl_msg_kind_name(rep));
        sl_msg_free(&rep);
        return SL_PROTO;
    }
    snprintf(job_id, id_cap, "%s", rep->submit_reply->job_id);
    sl_msg_free(&rep);
    return SL_OK;
}

int sl_client_cancel(sl_client_t *c, const char *job_id, char *err, size_t cap)
{
    Sluice__Envelope env, *rep = NULL;
    sl_msg_init(&env, 0);
    Sluice__CancelJob cj = SLUICE__CANCEL_JOB__INIT;
    cj.job_id = (char *)job_id;
    env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &cj;
    int rc = sl_client_call(c, &env, 5000, &rep, err, cap);
    sl_msg_free(&rep);
    return rc;
}
