/* master.c — the master's control loop (see master.h).
 *
 * Job lifecycle (the transition functions in brackets):
 *
 *   CREATED --[s_try_schedule: enough free slots]--> RUNNING
 *      |  (not enough slots: SCHEDULED, with the reason shown)
 *   RUNNING --[s_on_task_state: every task FINISHED]--> FINISHED
 *   RUNNING --[s_on_task_state: a task FAILED | s_on_worker_lost]--> FAILED
 *   CREATED/SCHEDULED/RUNNING --[CancelJob]--> CANCELED
 *
 * Invariants:
 *  1. A job holds slots only while RUNNING; slots are freed on every
 *     transition to a terminal state.
 *  2. A terminal job never changes state again; late task reports only
 *     update its metrics.
 *  3. With slot sharing, a job needs as many slots as its largest chain
 *     parallelism; subtask i of every chain runs in the job's slot i.
 *  4. Every request from a client gets exactly one reply (a body or Error). */
#define _POSIX_C_SOURCE 200809L
#include "master.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "sluice/err.h"
#include "sluice/msg.h"
#include "sluice/plan.h"
#include "sluice/plugin.h"

typedef struct {
    char *id;            /* worker id (also its routing id) */
    char *data_endpoint; /* prefix of its tasks' in-gates */
    char *host;
    int slots, used;    /* offered / taken by running jobs */
    uint64_t last_seen; /* ms, monotonic */
    bool alive;
} s_worker_t;

typedef struct {
    int chain, subtask;
    int worker; /* index in workers */
    Sluice__TaskStateKind state;
    char *error;
    int nmetrics; /* per chained operator */
    Sluice__OperatorMetrics *metrics;
    Sluice__OperatorMetrics **mptr; /* pointers into metrics, for status replies */
    char **metric_ops;              /* owned copies of operator names */
    char *endpoint;                 /* in-gate endpoint once DEPLOYED ("" for sources) */
    uint64_t end_ms;                /* wall clock when its final state arrived */
} s_task_t;

typedef struct {
    char *id, *name, *spec_file;
    uint8_t *spec_text;
    size_t spec_len;
    int nparams;
    char **pnames, **pvalues;
    int parallelism; /* override from submit */
    sl_spec_t *spec;
    sl_plan_t *plan;
    Sluice__JobStateKind state;
    char *error;
    char *reason;              /* why still SCHEDULED */
    uint64_t start_ms, end_ms; /* wall clock */
    s_task_t *tasks;
    int ntasks;
    int *slot_worker; /* slot i -> worker index */
    int nslots;
    sl_plugin_t *plugin;   /* the job's plugin, loaded for planning, or NULL */
    uint8_t *plugin_bytes; /* shipped with every deploy */
    size_t plugin_len;
    char plugin_sha[65]; /* content hash of plugin_bytes */
    int deployed;        /* tasks that reported their endpoint */
    bool started;        /* StartTasks sent */
} s_job_t;

struct sl_master {
    sl_master_opts_t o;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool ended;  /* the loop has returned */
    char endpoint[256]; /* bound endpoint */
    uint64_t rejected;  /* malformed or unauthorised messages seen */
    char *state_dir;    /* plugins live in state_dir/plugins */
    bool own_state_dir; /* a temporary one we made (and remove) */
    void *sock;
    s_worker_t *workers;
    int nworkers;
    s_job_t **jobs;
    int njobs;
    uint64_t job_seq;
    uint64_t next_req;
};

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static char *s_strdup_printf(const char *fmt, const char *a, const char *b)
{
    size_t n = (size_t)snprintf(NULL, 0, fmt, a, b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, fmt, a, b);
    return s;
}

static bool s_terminal(Sluice__JobStateKind s)
{
    return s == SLUICE__JOB_STATE_KIND__JOB_FINISHED || s == SLUICE__JOB_STATE_KIND__JOB_FAILED ||
           s == SLUICE__JOB_STATE_KIND__JOB_CANCELED;
}

static void s_job_free(s_job_t *j)
{
    for (int i = 0; i < j->ntasks; i++) {
        free(j->tasks[i].error);
        free(j->tasks[i].endpoint);
        for (int k = 0; k < j->tasks[i].nmetrics; k++)
            free(j->tasks[i].metric_ops[k]);
        free(j->tasks[i].metric_ops);
        free(j->tasks[i].metrics);
        free(j->tasks[i].mptr);
    }
    free(j->tasks);
    for (int i = 0; i < j->nparams; i++) {
        free(j->pnames[i]);
        free(j->pvalues[i]);
    }
    free(j->pnames);
    free(j->pvalues);
    sl_plan_destroy(&j->plan);
    sl_spec_destroy(&j->spec);
    sl_plugin_close(&j->plugin);
    free(j->plugin_bytes);
    free(j->id);
    free(j->name);
    free(j->spec_file);
    free(j->spec_text);
    free(j->error);
    free(j->reason);
    free(j->slot_worker);
    free(j);
}

static s_job_t *s_find_job(sl_master_t *m, const char *id)
{
    for (int i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i]->id, id) == 0)
            return m->jobs[i];
    return NULL;
}

static int s_find_worker(sl_master_t *m, const char *id)
{
    for (int i = 0; i < m->nworkers; i++)
        if (strcmp(m->workers[i].id, id) == 0)
            return i;
    return -1;
}

/* Workers connect with their id as the connection identity; a message that
 * speaks for a worker must come over that worker's connection. */
static bool s_sender_is(const uint8_t *rid, size_t rlen, const char *worker_id)
{
    return rlen == strlen(worker_id) && memcmp(rid, worker_id, rlen) == 0;
}

/* Rejected messages are logged, the first few and then every 1000th, so a
 * flood cannot fill the log. */
static void s_log_rejected(sl_master_t *m, const char *what)
{
    uint64_t n = ++m->rejected;
    if (n <= 10 || n % 1000 == 0)
        fprintf(stderr, "sluice-master: rejected message #%llu: %s\n", (unsigned long long)n, what);
}

/* ---- transitions -------------------------------------------------------- */

static void s_send_cancel(sl_master_t *m, s_job_t *j)
{
    bool *sent = calloc((size_t)m->nworkers + 1, sizeof *sent);
    for (int i = 0; i < j->ntasks; i++) {
        int wi = j->tasks[i].worker;
        if (wi < 0 || (sent && sent[wi]) || !m->workers[wi].alive)
            continue;
        if (sent)
            sent[wi] = true;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__CancelTasks c = SLUICE__CANCEL_TASKS__INIT;
        c.job_id = j->id;
        env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_TASKS;
        env.cancel_tasks = &c;
        const char *rid = m->workers[wi].id;
        sl_msg_send(m->sock, rid, strlen(rid), &env);
    }
    free(sent);
}

/* Moves j to a terminal state, frees its slots, cancels its tasks. */
static void s_end_job(sl_master_t *m, s_job_t *j, Sluice__JobStateKind state, const char *error)
{
    if (s_terminal(j->state))
        return;
    bool was_running = j->state == SLUICE__JOB_STATE_KIND__JOB_RUNNING;
    j->state = state;
    j->end_ms = s_wall_ms();
    if (error && !j->error)
        j->error = strdup(error);
    if (was_running) {
        for (int s = 0; s < j->nslots; s++)
            if (j->slot_worker[s] >= 0)
                m->workers[j->slot_worker[s]].used--;
        if (state != SLUICE__JOB_STATE_KIND__JOB_FINISHED)
            s_send_cancel(m, j);
    }
}

/* Places j on free slots (spread over workers) and deploys it, or leaves
 * it SCHEDULED with the reason. */
static void s_try_schedule(sl_master_t *m, s_job_t *j)
{
    int need = sl_plan_slots(j->plan), free_slots = 0, alive = 0;
    for (int i = 0; i < m->nworkers; i++)
        if (m->workers[i].alive) {
            free_slots += m->workers[i].slots - m->workers[i].used;
            alive++;
        }
    if (free_slots < need) {
        free(j->reason);
        char buf[160];
        snprintf(buf, sizeof buf, "waiting for slots: needs %d, %d free on %d live worker(s)", need,
                 free_slots, alive);
        j->reason = strdup(buf);
        j->state = SLUICE__JOB_STATE_KIND__JOB_SCHEDULED;
        return;
    }
    free(j->reason);
    j->reason = NULL;
    j->nslots = need;
    j->slot_worker = malloc((size_t)need * sizeof(int));
    if (!j->slot_worker) {
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, "out of memory");
        return;
    }
    /* Spread: each slot goes to the live worker with the most free slots. */
    for (int s = 0; s < need; s++) {
        int best = -1;
        for (int i = 0; i < m->nworkers; i++) {
            s_worker_t *w = &m->workers[i];
            if (w->alive && w->used < w->slots &&
                (best < 0 || w->slots - w->used > m->workers[best].slots - m->workers[best].used))
                best = i;
        }
        j->slot_worker[s] = best;
        m->workers[best].used++;
    }
    const sl_plan_t *p = j->plan;
    j->ntasks = 0;
    for (int c = 0; c < p->nchains; c++)
        j->ntasks += p->chains[c].parallelism;
    j->tasks = calloc((size_t)j->ntasks, sizeof *j->tasks);
    Sluice__SubtaskLocation *locs = calloc((size_t)j->ntasks, sizeof *locs);
    Sluice__SubtaskLocation **locp = calloc((size_t)j->ntasks, sizeof *locp);
    Sluice__SubtaskRef *refs = calloc((size_t)j->ntasks, sizeof *refs);
    Sluice__SubtaskRef **mine = calloc((size_t)j->ntasks, sizeof *mine);
    Sluice__Param *params = calloc((size_t)j->nparams + 1, sizeof *params);
    Sluice__Param **pp = calloc((size_t)j->nparams + 1, sizeof *pp);
    j->state = SLUICE__JOB_STATE_KIND__JOB_RUNNING;
    if (!j->tasks || !locs || !locp || !refs || !mine || !params || !pp) {
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, "out of memory");
        goto out;
    }
    int t = 0;
    for (int c = 0; c < p->nchains; c++)
        for (int s = 0; s < p->chains[c].parallelism; s++, t++) {
            j->tasks[t] = (s_task_t){.chain = c,
                                     .subtask = s,
                                     .worker = j->slot_worker[s],
                                     .state = SLUICE__TASK_STATE_KIND__TASK_DEPLOYING};
            refs[t] = (Sluice__SubtaskRef)SLUICE__SUBTASK_REF__INIT;
            refs[t].chain = (uint32_t)c;
            refs[t].subtask = (uint32_t)s;
            locs[t] = (Sluice__SubtaskLocation)SLUICE__SUBTASK_LOCATION__INIT;
            locs[t].ref = &refs[t];
            locs[t].worker_id = m->workers[j->slot_worker[s]].id;
            locs[t].data_endpoint = m->workers[j->slot_worker[s]].data_endpoint;
            locp[t] = &locs[t];
        }
    for (int i = 0; i < j->nparams; i++) {
        params[i] = (Sluice__Param)SLUICE__PARAM__INIT;
        params[i].name = j->pnames[i];
        params[i].value = j->pvalues[i];
        pp[i] = &params[i];
    }
    for (int wi = 0; wi < m->nworkers; wi++) {
        int n = 0;
        for (int k = 0; k < j->ntasks; k++)
            if (j->tasks[k].worker == wi)
                mine[n++] = &refs[k];
        if (n == 0)
            continue;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__Deploy d = SLUICE__DEPLOY__INIT;
        d.job_id = j->id;
        d.spec_file = j->spec_file;
        d.spec_text.data = j->spec_text;
        d.spec_text.len = j->spec_len;
        d.n_params = (size_t)j->nparams;
        d.params = pp;
        d.parallelism = (uint32_t)j->parallelism;
        d.n_subtasks = (size_t)n;
        d.subtasks = mine;
        d.n_locations = (size_t)j->ntasks;
        d.locations = locp;
        d.plugin.data = j->plugin_bytes;
        d.plugin.len = j->plugin_len;
        d.plugin_sha256 = j->plugin_len ? j->plugin_sha : "";
        env.body_case = SLUICE__ENVELOPE__BODY_DEPLOY;
        env.deploy = &d;
        sl_msg_send(m->sock, m->workers[wi].id, strlen(m->workers[wi].id), &env);
    }
out:
    free(locs);
    free(locp);
    free(refs);
    free(mine);
    free(params);
    free(pp);
}

static void s_schedule_waiting(sl_master_t *m)
{
    for (int i = 0; i < m->njobs; i++)
        if (m->jobs[i]->state == SLUICE__JOB_STATE_KIND__JOB_SCHEDULED ||
            m->jobs[i]->state == SLUICE__JOB_STATE_KIND__JOB_CREATED)
            s_try_schedule(m, m->jobs[i]);
}

static void s_on_worker_lost(sl_master_t *m, int wi, const char *why)
{
    s_worker_t *w = &m->workers[wi];
    w->alive = false;
    for (int i = 0; i < m->njobs; i++) {
        s_job_t *j = m->jobs[i];
        if (j->state != SLUICE__JOB_STATE_KIND__JOB_RUNNING)
            continue;
        for (int s = 0; s < j->nslots; s++)
            if (j->slot_worker[s] == wi) {
                char *msg = s_strdup_printf("worker %s lost: %s", w->id, why);
                s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, msg);
                free(msg);
                break;
            }
    }
}

/* ---- requests ------------------------------------------------------------ */

static void s_on_register(sl_master_t *m, const void *rid, size_t rlen, uint64_t req,
                          const Sluice__Register *r)
{
    int wi = s_find_worker(m, r->worker_id);
    if (wi < 0) {
        s_worker_t *nw = realloc(m->workers, (size_t)(m->nworkers + 1) * sizeof *nw);
        if (!nw) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
            return;
        }
        m->workers = nw;
        wi = m->nworkers++;
        m->workers[wi] = (s_worker_t){.id = strdup(r->worker_id)};
    } else {
        free(m->workers[wi].data_endpoint);
        free(m->workers[wi].host);
        if (m->workers[wi].alive)
            s_on_worker_lost(m, wi, "it registered again (restarted)");
    }
    s_worker_t *w = &m->workers[wi];
    w->data_endpoint = strdup(r->data_endpoint);
    w->host = strdup(r->host[0] ? r->host : "?");
    w->slots = (int)r->slots;
    w->used = 0;
    w->alive = true;
    w->last_seen = s_mono_ms();
    Sluice__Envelope env;
    sl_msg_init(&env, req);
    Sluice__RegisterAck ack = SLUICE__REGISTER_ACK__INIT;
    ack.accepted = true;
    ack.heartbeat_interval_ms = 200;
    env.body_case = SLUICE__ENVELOPE__BODY_REGISTER_ACK;
    env.register_ack = &ack;
    sl_msg_send(m->sock, rid, rlen, &env);
    s_schedule_waiting(m);
}

static void s_on_submit(sl_master_t *m, const void *rid, size_t rlen, uint64_t req,
                        const Sluice__SubmitJob *sj)
{
    s_job_t *j = calloc(1, sizeof *j);
    sl_params_t *params = sl_params_new();
    sl_diag_t *d = sl_diag_new(sj->spec_file[0] ? sj->spec_file : "job.yaml");
    if (!j || !params || !d) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < sj->n_params; i++)
        sl_params_set(params, sj->params[i]->name, sj->params[i]->value);
    if (sj->plugin.len) {
        /* Kept by content; loaded here only to plan (check names and types). */
        char dir[900], path[1000], err[1024];
        snprintf(dir, sizeof dir, "%s/plugins", m->state_dir);
        int prc = sl_plugin_store(dir, sj->plugin.data, sj->plugin.len, path, sizeof path);
        if (prc == SL_OK)
            prc = sl_plugin_open(path, &j->plugin, err, sizeof err);
        else
            snprintf(err, sizeof err, "the master cannot store the plugin in %s", dir);
        if (prc != SL_OK) {
            sl_msg_send_error(m->sock, rid, rlen, req, prc, "%s", err);
            goto out;
        }
        j->plugin_bytes = malloc(sj->plugin.len);
        if (!j->plugin_bytes) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
            goto out;
        }
        memcpy(j->plugin_bytes, sj->plugin.data, sj->plugin.len);
        j->plugin_len = sj->plugin.len;
        sl_sha256_hex(j->plugin_bytes, j->plugin_len, j->plugin_sha);
    }
    if (sl_plan_load_with(sl_diag_file(d), (const char *)sj->spec_text.data, sj->spec_text.len,
                          params, (int)sj->parallelism, j->plugin, d, &j->spec,
                          &j->plan) != SL_OK) {
        char *buf = NULL;
        size_t blen = 0;
        FILE *f = open_memstream(&buf, &blen);
        if (f) {
            sl_diag_print(d, f);
            fclose(f);
        }
        sl_msg_send_error(m->sock, rid, rlen, req, SL_SPEC, "%s", buf ? buf : "invalid spec");
        free(buf);
        goto out;
    }
    char id[32];
    snprintf(id, sizeof id, "job-%04llu", (unsigned long long)++m->job_seq);
    j->id = strdup(id);
    j->name = strdup(j->plan->name);
    j->spec_file = strdup(sl_diag_file(d));
    j->spec_text = malloc(sj->spec_text.len ? sj->spec_text.len : 1);
    j->spec_len = sj->spec_text.len;
    j->parallelism = (int)sj->parallelism;
    j->nparams = (int)sj->n_params;
    j->pnames = calloc(sj->n_params + 1, sizeof(char *));
    j->pvalues = calloc(sj->n_params + 1, sizeof(char *));
    s_job_t **nj = realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *nj);
    if (!j->id || !j->name || !j->spec_file || !j->spec_text || !j->pnames || !j->pvalues || !nj) {
        if (nj)
            m->jobs = nj;
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
        goto out;
    }
    m->jobs = nj;
    memcpy(j->spec_text, sj->spec_text.data, sj->spec_text.len);
    for (size_t i = 0; i < sj->n_params; i++) {
        j->pnames[i] = strdup(sj->params[i]->name);
        j->pvalues[i] = strdup(sj->params[i]->value);
    }
    j->state = SLUICE__JOB_STATE_KIND__JOB_CREATED;
    j->start_ms = s_wall_ms();
    m->jobs[m->njobs++] = j;
    Sluice__Envelope env;
    sl_msg_init(&env, req);
    Sluice__SubmitReply rep = SLUICE__SUBMIT_REPLY__INIT;
    rep.job_id = j->id;
    env.body_case = SLUICE__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &rep;
    sl_msg_send(m->sock, rid, rlen, &env);
    j = NULL;
    s_schedule_waiting(m);
out:
    if (j)
        s_job_free(j);
    sl_params_destroy(&params);
    sl_diag_destroy(&d);
}

/* Every task is bound: tell each worker of the job where all of them are. */
static void s_start_job(sl_master_t *m, s_job_t *j)
{
    Sluice__SubtaskLocation *locs = calloc((size_t)j->ntasks, sizeof *locs);
    Sluice__SubtaskLocation **locp = calloc((size_t)j->ntasks, sizeof *locp);
    Sluice__SubtaskRef *refs = calloc((size_t)j->ntasks, sizeof *refs);
    bool *sent = calloc((size_t)m->nworkers + 1, sizeof *sent);
    if (!locs || !locp || !refs || !sent) {
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, "out of memory");
        goto out;
    }
    for (int t = 0; t < j->ntasks; t++) {
        refs[t] = (Sluice__SubtaskRef)SLUICE__SUBTASK_REF__INIT;
        refs[t].chain = (uint32_t)j->tasks[t].chain;
        refs[t].subtask = (uint32_t)j->tasks[t].subtask;
        locs[t] = (Sluice__SubtaskLocation)SLUICE__SUBTASK_LOCATION__INIT;
        locs[t].ref = &refs[t];
        locs[t].worker_id = m->workers[j->tasks[t].worker].id;
        /* sources have no in-gate; name their worker's data address instead */
        locs[t].data_endpoint = j->tasks[t].endpoint && j->tasks[t].endpoint[0]
                                    ? j->tasks[t].endpoint
                                    : m->workers[j->tasks[t].worker].data_endpoint;
        locp[t] = &locs[t];
    }
    j->started = true;
    for (int t = 0; t < j->ntasks; t++) {
        int wi = j->tasks[t].worker;
        if (sent[wi])
            continue;
        sent[wi] = true;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__StartTasks st = SLUICE__START_TASKS__INIT;
        st.job_id = j->id;
        st.n_locations = (size_t)j->ntasks;
        st.locations = locp;
        env.body_case = SLUICE__ENVELOPE__BODY_START_TASKS;
        env.start_tasks = &st;
        sl_msg_send(m->sock, m->workers[wi].id, strlen(m->workers[wi].id), &env);
    }
out:
    free(locs);
    free(locp);
    free(refs);
    free(sent);
}

static void s_on_task_state(sl_master_t *m, const uint8_t *rid, size_t rlen,
                            const Sluice__TaskState *ts)
{
    s_job_t *j = s_find_job(m, ts->job_id);
    if (!j || !j->tasks)
        return;
    s_task_t *t = NULL;
    for (int i = 0; i < j->ntasks; i++)
        if (j->tasks[i].chain == (int)ts->ref->chain &&
            j->tasks[i].subtask == (int)ts->ref->subtask)
            t = &j->tasks[i];
    if (!t)
        return;
    if (t->worker < 0 || !s_sender_is(rid, rlen, m->workers[t->worker].id)) {
        s_log_rejected(m, "a task report from a worker that does not run the task");
        return;
    }
    if (ts->n_metrics) {
        if (t->nmetrics != (int)ts->n_metrics) {
            for (int k = 0; k < t->nmetrics; k++)
                free(t->metric_ops[k]);
            free(t->metric_ops);
            free(t->metrics);
            t->nmetrics = 0;
            free(t->mptr);
            t->metrics = calloc(ts->n_metrics, sizeof *t->metrics);
            t->metric_ops = calloc(ts->n_metrics, sizeof *t->metric_ops);
            t->mptr = calloc(ts->n_metrics, sizeof *t->mptr);
            if (!t->metrics || !t->metric_ops || !t->mptr)
                return;
            t->nmetrics = (int)ts->n_metrics;
            for (int k = 0; k < t->nmetrics; k++) {
                t->metric_ops[k] = strdup(ts->metrics[k]->op);
                t->mptr[k] = &t->metrics[k];
            }
        }
        for (int k = 0; k < t->nmetrics; k++) {
            t->metrics[k] = *ts->metrics[k];
            /* The copy must not point into the message, which is freed after
             * dispatch: drop fields this version does not know. */
            t->metrics[k].base.n_unknown_fields = 0;
            t->metrics[k].base.unknown_fields = NULL;
            t->metrics[k].op = t->metric_ops[k];
        }
    }
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_DEPLOYED) {
        if (t->endpoint || s_terminal(j->state))
            return; /* a duplicate, or too late */
        t->endpoint = strdup(ts->data_endpoint);
        if (t->state == SLUICE__TASK_STATE_KIND__TASK_DEPLOYING)
            t->state = SLUICE__TASK_STATE_KIND__TASK_DEPLOYED;
        if (++j->deployed == j->ntasks && !j->started)
            s_start_job(m, j);
        return;
    }
    bool t_terminal = t->state == SLUICE__TASK_STATE_KIND__TASK_FINISHED ||
                      t->state == SLUICE__TASK_STATE_KIND__TASK_FAILED ||
                      t->state == SLUICE__TASK_STATE_KIND__TASK_CANCELED;
    if (!t_terminal) {
        t->state = ts->state;
        if (ts->state == SLUICE__TASK_STATE_KIND__TASK_FINISHED ||
            ts->state == SLUICE__TASK_STATE_KIND__TASK_FAILED ||
            ts->state == SLUICE__TASK_STATE_KIND__TASK_CANCELED)
            t->end_ms = s_wall_ms();
    }
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_FAILED && ts->error[0] && !t->error)
        t->error = strdup(ts->error);
    if (s_terminal(j->state))
        return;
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_CANCELED) {
        /* Nobody asked (the job is still running): its worker is stopping. */
        char msg[512];
        snprintf(msg, sizeof msg, "task %d.%d was canceled by worker %s (the worker is stopping)",
                 t->chain, t->subtask, t->worker >= 0 ? m->workers[t->worker].id : "?");
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, msg);
        return;
    }
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_FAILED) {
        const sl_plan_chain_t *ch = &j->plan->chains[t->chain];
        char *msg = NULL;
        size_t n = (size_t)snprintf(NULL, 0, "task %d.%d (%s) failed: %s", t->chain, t->subtask,
                                    j->plan->nodes[ch->nodes[0]].name, ts->error) +
                   1;
        msg = malloc(n);
        if (msg)
            snprintf(msg, n, "task %d.%d (%s) failed: %s", t->chain, t->subtask,
                     j->plan->nodes[ch->nodes[0]].name, ts->error);
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, msg ? msg : ts->error);
        free(msg);
        return;
    }
    for (int i = 0; i < j->ntasks; i++)
        if (j->tasks[i].state != SLUICE__TASK_STATE_KIND__TASK_FINISHED)
            return;
    s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FINISHED, NULL);
    s_schedule_waiting(m);
}

/* A JobStatus body and the arrays it points to. */
typedef struct {
    Sluice__JobStatus st;
    Sluice__TaskStatus *ts, **tsp;
    Sluice__SubtaskRef *refs;
    Sluice__OperatorMetrics *om, **omp;
} s_status_t;

/* Fills s from j; operator metrics summed over subtasks, in plan order.
 * Release with s_status_free. Returns 0 or SL_NOMEM. */
static int s_status_fill(sl_master_t *m, const s_job_t *j, s_status_t *s)
{
    memset(s, 0, sizeof *s);
    Sluice__JobStatus *st = &s->st;
    *st = (Sluice__JobStatus)SLUICE__JOB_STATUS__INIT;
    st->job_id = j->id;
    st->name = j->name;
    st->state = j->state;
    st->error = j->error ? j->error : "";
    st->reason = j->reason ? j->reason : "";
    st->start_ms = j->start_ms;
    st->end_ms = j->end_ms;
    size_t nt = (size_t)j->ntasks + 1, nn = (size_t)j->plan->nnodes + 1;
    s->ts = calloc(nt, sizeof *s->ts);
    s->tsp = calloc(nt, sizeof *s->tsp);
    s->refs = calloc(nt, sizeof *s->refs);
    s->om = calloc(nn, sizeof *s->om);
    s->omp = calloc(nn, sizeof *s->omp);
    if (!s->ts || !s->tsp || !s->refs || !s->om || !s->omp)
        return SL_NOMEM;
    for (int i = 0; i < j->ntasks; i++) {
        const s_task_t *t = &j->tasks[i];
        s->ts[i] = (Sluice__TaskStatus)SLUICE__TASK_STATUS__INIT;
        s->refs[i] = (Sluice__SubtaskRef)SLUICE__SUBTASK_REF__INIT;
        s->refs[i].chain = (uint32_t)t->chain;
        s->refs[i].subtask = (uint32_t)t->subtask;
        s->ts[i].ref = &s->refs[i];
        s->ts[i].worker_id = t->worker >= 0 ? m->workers[t->worker].id : "";
        s->ts[i].state = t->state;
        s->ts[i].error = t->error ? t->error : "";
        s->ts[i].host = t->worker >= 0 ? m->workers[t->worker].host : "";
        s->ts[i].end_ms = t->end_ms;
        s->ts[i].n_metrics = (size_t)t->nmetrics;
        s->ts[i].metrics = t->mptr;
        s->tsp[i] = &s->ts[i];
    }
    st->n_tasks = (size_t)j->ntasks;
    st->tasks = s->tsp;
    for (int n = 0; n < j->plan->nnodes; n++) {
        Sluice__OperatorMetrics *o = &s->om[n];
        *o = (Sluice__OperatorMetrics)SLUICE__OPERATOR_METRICS__INIT;
        o->op = (char *)j->plan->nodes[n].name;
        int reports = 0, marked = 0;
        for (int i = 0; i < j->ntasks; i++)
            for (int k = 0; k < j->tasks[i].nmetrics; k++)
                if (strcmp(j->tasks[i].metrics[k].op, o->op) == 0) {
                    /* the watermark of an operator is the least of its subtasks' */
                    reports++;
                    if (j->tasks[i].metrics[k].has_watermark) {
                        int64_t wm = j->tasks[i].metrics[k].watermark;
                        o->watermark = marked++ == 0 || wm < o->watermark ? wm : o->watermark;
                    }
                    o->records_late += j->tasks[i].metrics[k].records_late;
                    o->records_in += j->tasks[i].metrics[k].records_in;
                    o->records_out += j->tasks[i].metrics[k].records_out;
                    o->busy_ns += j->tasks[i].metrics[k].busy_ns;
                    o->errors += j->tasks[i].metrics[k].errors;
                    o->backpressure_ns += j->tasks[i].metrics[k].backpressure_ns;
                }
        o->has_watermark = reports > 0 && marked == reports;
        if (!o->has_watermark)
            o->watermark = 0;
        s->omp[n] = o;
    }
    st->n_metrics = (size_t)j->plan->nnodes;
    st->metrics = s->omp;
    return SL_OK;
}

static void s_status_free(s_status_t *s)
{
    free(s->ts);
    free(s->tsp);
    free(s->refs);
    free(s->om);
    free(s->omp);
}

static void s_on_status(sl_master_t *m, const void *rid, size_t rlen, uint64_t req,
                        const char *job_id)
{
    s_job_t *j = s_find_job(m, job_id);
    if (!j) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOTFOUND, "job '%s' not found", job_id);
        return;
    }
    s_status_t s;
    if (s_status_fill(m, j, &s) != SL_OK) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
    } else {
        Sluice__Envelope env;
        sl_msg_init(&env, req);
        env.body_case = SLUICE__ENVELOPE__BODY_JOB_STATUS;
        env.job_status = &s.st;
        sl_msg_send(m->sock, rid, rlen, &env);
    }
    s_status_free(&s);
}

static void s_on_list(sl_master_t *m, const void *rid, size_t rlen, uint64_t req)
{
    s_status_t *all = calloc((size_t)m->njobs + 1, sizeof *all);
    Sluice__JobStatus **stp = calloc((size_t)m->njobs + 1, sizeof *stp);
    int rc = all && stp ? SL_OK : SL_NOMEM, n = 0;
    for (; rc == SL_OK && n < m->njobs; n++) {
        rc = s_status_fill(m, m->jobs[n], &all[n]);
        stp[n] = &all[n].st;
    }
    if (rc != SL_OK) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
    } else {
        Sluice__Envelope env;
        sl_msg_init(&env, req);
        Sluice__JobList jl = SLUICE__JOB_LIST__INIT;
        jl.n_jobs = (size_t)m->njobs;
        jl.jobs = stp;
        env.body_case = SLUICE__ENVELOPE__BODY_JOB_LIST;
        env.job_list = &jl;
        sl_msg_send(m->sock, rid, rlen, &env);
    }
    for (int i = 0; all && i < n; i++)
        s_status_free(&all[i]);
    free(all);
    free(stp);
}

static void s_on_cancel(sl_master_t *m, const void *rid, size_t rlen, uint64_t req,
                        const char *job_id)
{
    s_job_t *j = s_find_job(m, job_id);
    if (!j) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOTFOUND, "job '%s' not found", job_id);
        return;
    }
    s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_CANCELED, "canceled by request");
    sl_msg_send_ok(m->sock, rid, rlen, req);
    s_schedule_waiting(m);
}

static void s_on_workers(sl_master_t *m, const void *rid, size_t rlen, uint64_t req)
{
    Sluice__WorkerInfo *wi = calloc((size_t)m->nworkers + 1, sizeof *wi);
    Sluice__WorkerInfo **wp = calloc((size_t)m->nworkers + 1, sizeof *wp);
    if (!wi || !wp) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOMEM, "out of memory");
    } else {
        uint64_t now = s_mono_ms();
        for (int i = 0; i < m->nworkers; i++) {
            const s_worker_t *w = &m->workers[i];
            wi[i] = (Sluice__WorkerInfo)SLUICE__WORKER_INFO__INIT;
            wi[i].worker_id = w->id;
            wi[i].host = w->host;
            wi[i].slots = (uint32_t)w->slots;
            wi[i].slots_used = (uint32_t)w->used;
            wi[i].heartbeat_age_ms = now - w->last_seen;
            wi[i].alive = w->alive;
            wi[i].data_endpoint = w->data_endpoint;
            wp[i] = &wi[i];
        }
        Sluice__Envelope env;
        sl_msg_init(&env, req);
        Sluice__WorkerList wl = SLUICE__WORKER_LIST__INIT;
        wl.n_workers = (size_t)m->nworkers;
        wl.workers = wp;
        env.body_case = SLUICE__ENVELOPE__BODY_WORKER_LIST;
        env.worker_list = &wl;
        sl_msg_send(m->sock, rid, rlen, &env);
    }
    free(wi);
    free(wp);
}

static void s_broadcast_shutdown(sl_master_t *m)
{
    for (int i = 0; i < m->nworkers; i++) {
        if (!m->workers[i].alive)
            continue;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__Shutdown sd = SLUICE__SHUTDOWN__INIT;
        env.body_case = SLUICE__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        sl_msg_send(m->sock, m->workers[i].id, strlen(m->workers[i].id), &env);
    }
}

/* ---- the loop ------------------------------------------------------------ */

static void s_dispatch(sl_master_t *m, const uint8_t *rid, size_t rlen, Sluice__Envelope *env)
{
    uint64_t req = env->request_id;
    const char *who = NULL;
    if (env->body_case == SLUICE__ENVELOPE__BODY_REGISTER)
        who = env->register_->worker_id;
    else if (env->body_case == SLUICE__ENVELOPE__BODY_HEARTBEAT)
        who = env->heartbeat->worker_id;
    if (who && !s_sender_is(rid, rlen, who)) {
        s_log_rejected(m, "a worker message over another connection");
        sl_msg_send_error(m->sock, rid, rlen, req, SL_INVAL,
                          "worker '%s' must connect with its id as the connection identity", who);
        return;
    }
    switch (env->body_case) {
    case SLUICE__ENVELOPE__BODY_REGISTER:
        s_on_register(m, rid, rlen, req, env->register_);
        break;
    case SLUICE__ENVELOPE__BODY_HEARTBEAT: {
        int wi = s_find_worker(m, env->heartbeat->worker_id);
        if (wi >= 0 && m->workers[wi].alive)
            m->workers[wi].last_seen = s_mono_ms();
        else /* restarted master, or a worker declared dead: it must register again */
            sl_msg_send_error(m->sock, rid, rlen, req, SL_NOTFOUND, "unknown worker '%s'",
                              env->heartbeat->worker_id);
        break;
    }
    case SLUICE__ENVELOPE__BODY_WORKERS_REQUEST:
        s_on_workers(m, rid, rlen, req);
        break;
    case SLUICE__ENVELOPE__BODY_TASK_STATE:
        s_on_task_state(m, rid, rlen, env->task_state);
        break;
    case SLUICE__ENVELOPE__BODY_SUBMIT_JOB:
        s_on_submit(m, rid, rlen, req, env->submit_job);
        break;
    case SLUICE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
        s_on_status(m, rid, rlen, req, env->job_status_request->job_id);
        break;
    case SLUICE__ENVELOPE__BODY_LIST_JOBS:
        s_on_list(m, rid, rlen, req);
        break;
    case SLUICE__ENVELOPE__BODY_CANCEL_JOB:
        s_on_cancel(m, rid, rlen, req, env->cancel_job->job_id);
        break;
    case SLUICE__ENVELOPE__BODY_SHUTDOWN:
        if (!m->o.allow_shutdown) {
            s_log_rejected(m, "a shutdown request");
            sl_msg_send_error(m->sock, rid, rlen, req, SL_PROTO,
                              "this master does not stop on request; send it SIGTERM");
            break;
        }
        sl_msg_send_ok(m->sock, rid, rlen, req);
        atomic_store(&m->stop, true);
        break;
    default:
        sl_msg_send_error(m->sock, rid, rlen, req, SL_PROTO, "the master does not accept '%s'",
                          sl_msg_kind_name(env));
        break;
    }
}

static void s_check_heartbeats(sl_master_t *m)
{
    uint64_t now = s_mono_ms();
    for (int i = 0; i < m->nworkers; i++)
        if (m->workers[i].alive &&
            now - m->workers[i].last_seen > (uint64_t)m->o.heartbeat_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %d ms", m->o.heartbeat_timeout_ms);
            s_on_worker_lost(m, i, why);
        }
}

static void *s_main(void *arg)
{
    sl_master_t *m = arg;
    while (!atomic_load(&m->stop)) {
        zmq_pollitem_t item = {.socket = m->sock, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 50);
        for (;;) {
            uint8_t rid[SL_MSG_RID_MAX];
            size_t rlen = 0;
            uint64_t req = 0;
            Sluice__Envelope *env = NULL;
            char err[256];
            int rc = sl_msg_recv_ex(m->sock, ZMQ_DONTWAIT, rid, &rlen, &env, &req, err, sizeof err);
            if (rc == SL_TIMEOUT)
                break;
            if (rc != SL_OK) {
                s_log_rejected(m, err);
                if (rlen)
                    sl_msg_send_error(m->sock, rid, rlen, req, rc, "%s", err);
                continue;
            }
            if (rlen < sizeof rid)
                rid[rlen] = 0;
            s_dispatch(m, rid, rlen, env);
            sl_msg_free(&env);
        }
        s_check_heartbeats(m);
    }
    s_broadcast_shutdown(m);
    atomic_store(&m->ended, true);
    return NULL;
}

/* Removes a temporary state directory we made (its plugins, then it). */
static void s_remove_state_dir(sl_master_t *m)
{
    if (m->own_state_dir) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/plugins", m->state_dir);
        sl_rmtree(dir);
        rmdir(m->state_dir);
    }
    free(m->state_dir);
    m->state_dir = NULL;
}

sl_master_t *sl_master_start(const sl_master_opts_t *o, char *err, size_t cap)
{
    sl_master_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->o = *o;
    if (m->o.heartbeat_timeout_ms <= 0)
        m->o.heartbeat_timeout_ms = 3000;
    if (o->state_dir) {
        m->state_dir = strdup(o->state_dir);
        if (m->state_dir && mkdir(m->state_dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, cap, "cannot create state directory %s: %s", o->state_dir,
                     strerror(errno));
            free(m->state_dir);
            free(m);
            return NULL;
        }
    } else {
        char tmpl[] = "/tmp/sluice-master-XXXXXX";
        if (mkdtemp(tmpl)) {
            m->state_dir = strdup(tmpl);
            m->own_state_dir = true;
        }
    }
    if (!m->state_dir) {
        snprintf(err, cap, "cannot create a state directory");
        free(m);
        return NULL;
    }
    m->sock = zmq_socket(o->zctx, ZMQ_ROUTER);
    /* handover: a worker that reconnects under its id (a restart) takes the
     * route over instead of being dropped silently. */
    int linger = 1000, mandatory = 0, handover = 1;
    if (!m->sock || zmq_setsockopt(m->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(m->sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory) ||
        zmq_setsockopt(m->sock, ZMQ_ROUTER_HANDOVER, &handover, sizeof handover) ||
        sl_msg_limit_socket(m->sock) || zmq_bind(m->sock, o->endpoint)) {
        snprintf(err, cap, "cannot bind master endpoint %s: %s", o->endpoint,
                 zmq_strerror(zmq_errno()));
        if (m->sock)
            zmq_close(m->sock);
        s_remove_state_dir(m);
        free(m);
        return NULL;
    }
    size_t elen = sizeof m->endpoint;
    if (zmq_getsockopt(m->sock, ZMQ_LAST_ENDPOINT, m->endpoint, &elen) != 0)
        snprintf(m->endpoint, sizeof m->endpoint, "%s", o->endpoint);
    if (pthread_create(&m->thread, NULL, s_main, m) != 0) {
        snprintf(err, cap, "cannot start the master thread");
        zmq_close(m->sock);
        s_remove_state_dir(m);
        free(m);
        return NULL;
    }
    return m;
}

void sl_master_stop(sl_master_t *m)
{
    atomic_store(&m->stop, true);
}

bool sl_master_running(const sl_master_t *m)
{
    return !atomic_load(&m->ended);
}

void sl_master_endpoint(const sl_master_t *m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", m->endpoint);
}

void sl_master_join(sl_master_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_master_t *m = *pp;
    pthread_join(m->thread, NULL);
    zmq_close(m->sock);
    for (int i = 0; i < m->njobs; i++)
        s_job_free(m->jobs[i]);
    free(m->jobs);
    for (int i = 0; i < m->nworkers; i++) {
        free(m->workers[i].id);
        free(m->workers[i].data_endpoint);
        free(m->workers[i].host);
    }
    free(m->workers);
    s_remove_state_dir(m);
    free(m);
    *pp = NULL;
}
