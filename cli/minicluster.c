/* minicluster.c — see minicluster.h. */
#define _POSIX_C_SOURCE 200809L
#include "minicluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "master.h"
#include "sluice/err.h"
#include "worker.h"

#define S_MASTER_ENDPOINT "inproc://sluice-master"

struct sl_minicluster {
    void *zctx;
    sl_master_t *master;
    sl_worker_t **workers;
    int nworkers;
    sl_client_t *client;
};

sl_minicluster_t *sl_minicluster_start(int workers, int slots, char *err, size_t cap)
{
    sl_minicluster_t *mc = calloc(1, sizeof *mc);
    if (!mc)
        return NULL;
    mc->zctx = zmq_ctx_new();
    mc->workers = calloc((size_t)workers, sizeof *mc->workers);
    if (!mc->zctx || !mc->workers) {
        snprintf(err, cap, "out of memory");
        sl_minicluster_stop(&mc);
        return NULL;
    }
    sl_master_opts_t mo = {.zctx = mc->zctx,
                           .endpoint = S_MASTER_ENDPOINT,
                           .heartbeat_timeout_ms = 5000,
                           .allow_shutdown = true};
    mc->master = sl_master_start(&mo, err, cap);
    if (!mc->master) {
        sl_minicluster_stop(&mc);
        return NULL;
    }
    for (int i = 0; i < workers; i++) {
        char id[32], ep[64];
        snprintf(id, sizeof id, "worker-%d", i);
        snprintf(ep, sizeof ep, "inproc://sluice-data-%d", i);
        sl_worker_opts_t wo = {.zctx = mc->zctx,
                               .master = S_MASTER_ENDPOINT,
                               .id = id,
                               .slots = slots,
                               .data_bind = ep};
        mc->workers[i] = sl_worker_start(&wo);
        if (!mc->workers[i]) {
            snprintf(err, cap, "cannot start worker %d", i);
            sl_minicluster_stop(&mc);
            return NULL;
        }
        mc->nworkers++;
    }
    mc->client = sl_client_new(mc->zctx, S_MASTER_ENDPOINT);
    if (!mc->client) {
        snprintf(err, cap, "cannot connect to the embedded master");
        sl_minicluster_stop(&mc);
        return NULL;
    }
    return mc;
}

sl_client_t *sl_minicluster_client(sl_minicluster_t *mc)
{
    return mc->client;
}

void sl_minicluster_stop(sl_minicluster_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_minicluster_t *mc = *pp;
    if (mc->client) {
        Sluice__Envelope env, *rep = NULL;
        char err[256];
        sl_msg_init(&env, 0);
        Sluice__Shutdown sd = SLUICE__SHUTDOWN__INIT;
        env.body_case = SLUICE__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        if (sl_client_call(mc->client, &env, 5000, &rep, err, sizeof err) == SL_OK)
            sl_msg_free(&rep);
        sl_client_destroy(&mc->client);
    }
    if (mc->master)
        sl_master_stop(mc->master);
    sl_master_join(&mc->master);
    for (int i = 0; i < mc->nworkers; i++) {
        sl_worker_stop(mc->workers[i]);
        sl_worker_join(&mc->workers[i]);
    }
    free(mc->workers);
    if (mc->zctx)
        zmq_ctx_term(mc->zctx);
    free(mc);
    *pp = NULL;
}
