/* master.c — the master's control loop (see master.h).
 *
 * Job lifecycle (the transition functions in brackets):
 *
 *   CREATED --[s_try_schedule: enough free slots]--> RUNNING
 *      |  (not enough slots: SCHEDULED, with the reason shown)
 *   RUNNING --[s_on_task_state: every task FINISHED]--> FINISHED
 *   RUNNING --[s_job_failed (a task FAILED, a worker lost, a deploy timed
 *             out): the restart strategy allows another attempt]--> RESTARTING
 *   RUNNING --[s_job_failed: the restart strategy is exhausted or none]--> FAILED
 *   RESTARTING --[s_tick_jobs at restart_at, the checkpoint chosen (maybe in a
 *                verify thread), s_restart_chosen]--> SCHEDULED/RUNNING (next attempt)
 *   RESTARTING --[s_restart_chosen: no usable checkpoint or savepoint]--> FAILED
 *   RUNNING --[s_savepoint_done of a `stop --savepoint`]--> STOPPED
 *   CREATED/SCHEDULED/RUNNING/RESTARTING --[CancelJob]--> CANCELED
 *   A master restarted on its state directory loads each job record
 *   (s_load_job): a job that was running comes back RESTARTING.
 *
 * Invariants:
 *  1. A job holds slots only while RUNNING; slots are freed on every
 *     transition to a terminal state.
 *  2. A terminal job (FINISHED, FAILED, CANCELED, STOPPED) never changes
 *     state again; late task reports only update its metrics, and reports
 *     of an earlier attempt are ignored (fenced by the attempt number).
 *  3. With slot sharing, a job needs as many slots as its largest chain
 *     parallelism; subtask i of every chain runs in the job's slot i.
 *  4. Every request from a client gets exactly one reply (a body or Error). */
#define _POSIX_C_SOURCE 200809L
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include <zmq.h>

#include "sluice/err.h"
#include "sluice/failpoint.h"
#include "sluice/fileio.h"
#include "sluice/kvstate.h"
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
    char *lag_text;                 /* the head's lag_partitions (a Kafka source), owned */
    char **metric_ops;              /* owned copies of operator names */
    char *endpoint;                 /* in-gate endpoint once DEPLOYED ("" for sources) */
    uint64_t end_ms;                /* wall clock when its final state arrived */
} s_task_t;

/* A subtask's acknowledgement of the checkpoint in flight. */
typedef struct {
    bool acked;    /* snapshot written */
    bool finished; /* the subtask had finished: nothing to restore */
    char file[96];
    uint64_t size;
    char sha[65];
} s_ack_t;

typedef struct s_verify s_verify_t;
typedef struct s_io s_io_t;

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

    /* Attempts and restarts (docs/fault-tolerance.md). */
    uint32_t attempt;  /* current attempt, 1 = the first */
    char **failures;   /* cause of each failed attempt */
    uint64_t *fail_ms; /* when (monotonic), for failure-rate */
    int nfailures;
    uint64_t restart_at;    /* RESTARTING: monotonic ms of the next attempt */
    uint64_t deploy_ms;     /* monotonic ms the current attempt was deployed */
    uint64_t restored_from; /* checkpoint the current attempt restored (0: none) */
    s_verify_t *verify;     /* RESTARTING: the checkpoint being chosen off the loop, or NULL */

    /* Checkpoints. */
    char *ckpt_dir;       /* <root>/<job>, or NULL when the job takes none */
    uint64_t ck_next;     /* last checkpoint id given out */
    uint64_t ck_pending;  /* in flight (0: none) */
    bool ck_writing;      /* every subtask acknowledged it: its _metadata is being written */
    bool ck_gave_up;      /* one was given up since the last completed one */
    uint64_t ck_started;  /* monotonic ms it was triggered */
    uint64_t ck_last_end; /* monotonic ms the last one completed or was given up */
    s_ack_t *ck_acks;     /* per task, for the one in flight */
    uint64_t *ck_done;    /* completed and retained, oldest first */
    int nck_done;
    uint32_t ncompleted; /* completed so far */
    s_io_t *io;          /* work on its checkpoint files off the loop, in order, or NULL */
    Sluice__TaskSnapshot *restore; /* what the next deploy restores (ntasks entries) */
    Sluice__SubtaskRef *restore_refs;
    char **restore_strs; /* owned file/sha strings of restore */
    int nrestore;
    uint64_t restore_id; /* the checkpoint it comes from */
    char *restore_dir;   /* its directory */
    char *origin;        /* the savepoint it was submitted from (restored until a checkpoint
                            of its own completes), or NULL */
    bool rescale;        /* restore lists the old subtasks of another parallelism or chaining */

    /* Checkpoint details, for `sluice checkpoints`. */
    uint64_t ck_trigger_wall;       /* wall ms the one in flight was triggered */
    uint64_t ck_size;               /* its state bytes so far */
    uint64_t ck_align;              /* its longest alignment so far */
    Sluice__CheckpointInfo *ckinfo; /* retained checkpoints and savepoints taken */
    char **ckinfo_paths;
    int nckinfo;
    /* A savepoint asked for: taken as the next checkpoint. */
    bool sp_wanted;                 /* not triggered yet */
    uint64_t sp_id;                 /* the checkpoint that is the savepoint (0: none in flight) */
    uint64_t sp_marked;             /* the checkpoint whose directory was marked a savepoint */
    bool sp_stop;                   /* cancel the job once it is complete */
    char *sp_dir;                   /* where to copy it */
    uint8_t sp_rid[SL_MSG_RID_MAX]; /* who asked, to answer when done */
    size_t sp_rlen;
    uint64_t sp_req;
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
    uint64_t last_check; /* ms of the last heartbeat check (0: none yet) */
    int wake[2];         /* a pipe: threads doing the loop's file work write a byte when done */
    /* The file thread (s_io_main) and its queue. */
    bool io_running; /* started */
    pthread_t io_thread;
    pthread_mutex_t io_mu; /* guards ioq, ioq_tail, io_stop */
    pthread_cond_t io_cv;  /* signaled when a piece is queued or io_stop set */
    s_io_t *ioq, *ioq_tail;
    bool io_stop;   /* end once the queue is empty */
    s_job_t **subs; /* submitted from a savepoint being checked off the loop */
    int nsubs;
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
           s == SLUICE__JOB_STATE_KIND__JOB_CANCELED || s == SLUICE__JOB_STATE_KIND__JOB_STOPPED;
}

static void s_restore_free(s_job_t *j)
{
    for (int i = 0; i < 2 * j->nrestore; i++)
        free(j->restore_strs[i]);
    free(j->restore_strs);
    free(j->restore);
    free(j->restore_refs);
    j->restore_strs = NULL;
    j->restore = NULL;
    j->restore_refs = NULL;
    j->nrestore = 0;
    j->restore_id = 0;
    free(j->restore_dir);
    j->restore_dir = NULL;
    j->rescale = false;
}

/* Frees the tasks of the current attempt. */
static void s_tasks_free(s_job_t *j)
{
    for (int i = 0; i < j->ntasks; i++) {
        free(j->tasks[i].error);
        free(j->tasks[i].endpoint);
        for (int k = 0; k < j->tasks[i].nmetrics; k++)
            free(j->tasks[i].metric_ops[k]);
        free(j->tasks[i].metric_ops);
        free(j->tasks[i].metrics);
        free(j->tasks[i].mptr);
        free(j->tasks[i].lag_text);
    }
    free(j->tasks);
    j->tasks = NULL;
    j->ntasks = 0;
    free(j->slot_worker);
    j->slot_worker = NULL;
    j->nslots = 0;
    free(j->ck_acks);
    j->ck_acks = NULL;
}

static void s_verify_drop(s_job_t *j);
static void s_verify_abandon(s_job_t *j);
static void s_io_drop(s_job_t *j);

static void s_job_free(s_job_t *j)
{
    s_verify_drop(j);
    s_io_drop(j);
    s_restore_free(j);
    for (int i = 0; i < j->nckinfo; i++)
        free(j->ckinfo_paths[i]);
    free(j->ckinfo);
    free(j->ckinfo_paths);
    free(j->sp_dir);
    free(j->origin);
    for (int i = 0; i < j->nfailures; i++)
        free(j->failures[i]);
    free(j->failures);
    free(j->fail_ms);
    free(j->ck_done);
    free(j->ckpt_dir);
    free(j->ck_acks);
    for (int i = 0; i < j->ntasks; i++) {
        free(j->tasks[i].error);
        free(j->tasks[i].endpoint);
        for (int k = 0; k < j->tasks[i].nmetrics; k++)
            free(j->tasks[i].metric_ops[k]);
        free(j->tasks[i].metric_ops);
        free(j->tasks[i].metrics);
        free(j->tasks[i].mptr);
        free(j->tasks[i].lag_text);
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
        c.attempt = j->attempt;
        env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_TASKS;
        env.cancel_tasks = &c;
        const char *rid = m->workers[wi].id;
        sl_msg_send(m->sock, rid, strlen(rid), &env);
    }
    free(sent);
}

/* The job ended for good: every live worker (also those of its earlier
 * attempts) cancels what it still runs of it and drops its local copies of
 * checkpoints. */
static void s_send_job_ended(sl_master_t *m, const s_job_t *j)
{
    for (int wi = 0; wi < m->nworkers; wi++) {
        if (!m->workers[wi].alive)
            continue;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__CancelTasks c = SLUICE__CANCEL_TASKS__INIT;
        c.job_id = j->id;
        c.attempt = 0;
        c.job_ended = true;
        env.body_case = SLUICE__ENVELOPE__BODY_CANCEL_TASKS;
        env.cancel_tasks = &c;
        sl_msg_send(m->sock, m->workers[wi].id, strlen(m->workers[wi].id), &env);
    }
}

static void s_persist(sl_master_t *m, const s_job_t *j);

/* Drops the staging directories of j's file sinks (off the loop). */
static void s_drop_staging(sl_master_t *m, s_job_t *j);

/* Every task of j's attempt has reported its end. */
static bool s_tasks_down(const s_job_t *j)
{
    for (int i = 0; i < j->ntasks; i++)
        if (j->tasks[i].state != SLUICE__TASK_STATE_KIND__TASK_FINISHED &&
            j->tasks[i].state != SLUICE__TASK_STATE_KIND__TASK_FAILED &&
            j->tasks[i].state != SLUICE__TASK_STATE_KIND__TASK_CANCELED)
            return false;
    return true;
}

/* Moves j to a terminal state, frees its slots, cancels its tasks. */
static void s_ck_abort(sl_master_t *m, s_job_t *j, const char *why);

static void s_end_job(sl_master_t *m, s_job_t *j, Sluice__JobStateKind state, const char *error)
{
    if (s_terminal(j->state))
        return;
    if (state != SLUICE__JOB_STATE_KIND__JOB_FINISHED || !j->ck_writing)
        s_ck_abort(m, j, "the job ended"); /* its files go; late ones go with their acks */
    if (state != SLUICE__JOB_STATE_KIND__JOB_FINISHED)
        s_drop_staging(m, j); /* (a savepoint holds its parts itself) */
    bool was_running = j->state == SLUICE__JOB_STATE_KIND__JOB_RUNNING;
    s_verify_abandon(j); /* its result is not wanted; s_tick_jobs reaps the thread */
    j->state = state;
    j->end_ms = s_wall_ms();
    if (error && !j->error)
        j->error = strdup(error);
    s_persist(m, j);
    if (state == SLUICE__JOB_STATE_KIND__JOB_FINISHED)
        s_drop_staging(m, j); /* its end markers: recorded as finished, it never restarts */
    if (was_running) {
        for (int s = 0; s < j->nslots; s++)
            if (j->slot_worker[s] >= 0)
                m->workers[j->slot_worker[s]].used--;
        if (state != SLUICE__JOB_STATE_KIND__JOB_FINISHED)
            s_send_cancel(m, j);
    }
    if (j->ckpt_dir)
        s_send_job_ended(m, j);
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
    /* where each slot ran in the previous attempt (slot s holds subtask s of
     * every chain): a restarted subtask goes back there if it can, to
     * restore from that worker's local copy of its state */
    int *prev = malloc((size_t)need * sizeof *prev);
    for (int s = 0; prev && s < need; s++)
        prev[s] = -1;
    for (int k = 0; prev && k < j->ntasks; k++)
        if (j->tasks[k].subtask < need)
            prev[j->tasks[k].subtask] = j->tasks[k].worker;
    s_tasks_free(j);
    j->attempt++;
    j->deployed = 0;
    j->started = false;
    j->ck_pending = 0;
    j->restored_from = j->restore_id;
    s_persist(m, j); /* the attempt is taken: a restarted master starts the next one */
    j->deploy_ms = s_mono_ms();
    j->nslots = need;
    j->slot_worker = malloc((size_t)need * sizeof(int));
    if (!j->slot_worker) {
        free(prev);
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, "out of memory");
        return;
    }
    /* Back where it ran when that worker is alive and has a free slot; the
     * others spread: each to the live worker with the most free slots. */
    for (int s = 0; s < need; s++) {
        int pw = prev ? prev[s] : -1;
        j->slot_worker[s] = -1;
        if (pw >= 0 && pw < m->nworkers && m->workers[pw].alive &&
            m->workers[pw].used < m->workers[pw].slots) {
            j->slot_worker[s] = pw;
            m->workers[pw].used++;
        }
    }
    free(prev);
    for (int s = 0; s < need; s++) {
        if (j->slot_worker[s] >= 0)
            continue;
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
    Sluice__TaskSnapshot **rsp = calloc((size_t)j->nrestore + 1, sizeof *rsp);
    j->ck_acks = calloc((size_t)j->ntasks + 1, sizeof *j->ck_acks);
    j->state = SLUICE__JOB_STATE_KIND__JOB_RUNNING;
    if (!j->tasks || !locs || !locp || !refs || !mine || !params || !pp || !rsp || !j->ck_acks) {
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
    for (int i = 0; i < j->nrestore; i++)
        rsp[i] = &j->restore[i];
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
        d.attempt = j->attempt;
        d.checkpoint_dir = j->ckpt_dir ? j->ckpt_dir : "";
        d.restore_checkpoint = j->restore_id;
        d.restore_dir = j->restore_dir ? j->restore_dir : "";
        d.rescale = j->rescale;
        d.n_restore = (size_t)j->nrestore;
        d.restore = rsp;
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
    free(rsp);
}

static void s_schedule_waiting(sl_master_t *m)
{
    for (int i = 0; i < m->njobs; i++)
        if (m->jobs[i]->state == SLUICE__JOB_STATE_KIND__JOB_SCHEDULED ||
            m->jobs[i]->state == SLUICE__JOB_STATE_KIND__JOB_CREATED)
            s_try_schedule(m, m->jobs[i]);
}

/* ---- the job store (state_dir/jobs/<id>.job) ------------------------------ */

/* Writes j's record atomically; a master restarted on the same state
 * directory resumes its jobs from these and from their checkpoints. */
static void s_persist(sl_master_t *m, const s_job_t *j)
{
    Sluice__SubmitJob sub = SLUICE__SUBMIT_JOB__INIT;
    sub.spec_file = j->spec_file;
    sub.spec_text.data = j->spec_text;
    sub.spec_text.len = j->spec_len;
    sub.parallelism = (uint32_t)j->parallelism;
    sub.from_savepoint = j->origin ? j->origin : "";
    Sluice__Param *params = calloc((size_t)j->nparams + 1, sizeof *params);
    Sluice__Param **pp = calloc((size_t)j->nparams + 1, sizeof *pp);
    if (!params || !pp) {
        free(params);
        free(pp);
        return;
    }
    for (int i = 0; i < j->nparams; i++) {
        params[i] = (Sluice__Param)SLUICE__PARAM__INIT;
        params[i].name = j->pnames[i];
        params[i].value = j->pvalues[i];
        pp[i] = &params[i];
    }
    sub.n_params = (size_t)j->nparams;
    sub.params = pp;
    Sluice__JobRecord r = SLUICE__JOB_RECORD__INIT;
    r.job_id = j->id;
    r.submit = &sub;
    r.plugin_sha256 = j->plugin_len ? (char *)j->plugin_sha : "";
    r.state = j->state;
    r.attempt = j->attempt;
    r.n_failures = (size_t)j->nfailures;
    r.failures = j->failures;
    r.error = j->error ? j->error : "";
    r.start_ms = j->start_ms;
    r.end_ms = j->end_ms;
    r.checkpoints = j->ncompleted;
    Sluice__Envelope env;
    sl_msg_init(&env, 0);
    env.body_case = SLUICE__ENVELOPE__BODY_JOB_RECORD;
    env.job_record = &r;
    uint8_t *buf = NULL;
    size_t len = 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/jobs/%s.job", m->state_dir, j->id);
    if (sl_msg_encode(&env, &buf, &len) != SL_OK || sl_fs_write_atomic(path, buf, len) != SL_OK)
        fprintf(stderr, "sluice-master: cannot save job %s to %s: %s\n", j->id, path,
                errno ? strerror(errno) : "out of memory");
    free(buf);
    free(params);
    free(pp);
}

/* The checkpoints of j on disk: those with a _metadata, oldest first
 * (retained ones); ck_next passes every id seen, complete or not. */
static void s_scan_checkpoints(s_job_t *j)
{
    DIR *d = opendir(j->ckpt_dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        unsigned long long id;
        char tail;
        if (sscanf(e->d_name, "chk-%llu%c", &id, &tail) != 1 || id == 0)
            continue;
        if (id > j->ck_next)
            j->ck_next = id;
        char meta[4400];
        snprintf(meta, sizeof meta, "%s/%s/_metadata", j->ckpt_dir, e->d_name);
        if (access(meta, R_OK) != 0)
            continue;
        uint64_t *done = realloc(j->ck_done, (size_t)(j->nck_done + 1) * sizeof *done);
        if (!done)
            break;
        j->ck_done = done;
        int k = j->nck_done++;
        while (k > 0 && j->ck_done[k - 1] > id) {
            j->ck_done[k] = j->ck_done[k - 1];
            k--;
        }
        j->ck_done[k] = id;
    }
    closedir(d);
}

/* Loads one job record; a job that was running restarts from its latest
 * checkpoint once workers are back. */
static void s_load_job(sl_master_t *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    uint8_t *buf = malloc(SL_MSG_SPEC_MAX + 65536);
    size_t len = buf ? fread(buf, 1, SL_MSG_SPEC_MAX + 65536, f) : 0;
    fclose(f);
    Sluice__Envelope *env = NULL;
    char err[256];
    if (!buf || sl_msg_decode(buf, len, &env, err, sizeof err) != SL_OK ||
        env->body_case != SLUICE__ENVELOPE__BODY_JOB_RECORD) {
        fprintf(stderr, "sluice-master: ignoring unreadable job record %s: %s\n", path,
                env ? "not a job record" : err);
        sl_msg_free(&env);
        free(buf);
        return;
    }
    free(buf);
    const Sluice__JobRecord *r = env->job_record;
    const Sluice__SubmitJob *sj = r->submit;
    s_job_t *j = calloc(1, sizeof *j);
    sl_params_t *params = sl_params_new();
    sl_diag_t *d = sl_diag_new(sj->spec_file[0] ? sj->spec_file : "job.yaml");
    char why[1024] = "out of memory";
    if (!j || !params || !d)
        goto fail;
    for (size_t i = 0; i < sj->n_params; i++)
        sl_params_set(params, sj->params[i]->name, sj->params[i]->value);
    if (r->plugin_sha256[0]) {
        char ppath[4300];
        snprintf(ppath, sizeof ppath, "%s/plugins/%s.so", m->state_dir, r->plugin_sha256);
        FILE *pf = fopen(ppath, "rb");
        if (!pf) {
            snprintf(why, sizeof why, "its plugin %s is gone", ppath);
            goto fail;
        }
        fseek(pf, 0, SEEK_END);
        long plen = ftell(pf);
        fseek(pf, 0, SEEK_SET);
        j->plugin_bytes = plen > 0 ? malloc((size_t)plen) : NULL;
        j->plugin_len = j->plugin_bytes ? fread(j->plugin_bytes, 1, (size_t)plen, pf) : 0;
        fclose(pf);
        sl_sha256_hex(j->plugin_bytes, j->plugin_len, j->plugin_sha);
        if (strcmp(j->plugin_sha, r->plugin_sha256) != 0 ||
            sl_plugin_open(ppath, &j->plugin, why, sizeof why) != SL_OK) {
            snprintf(why, sizeof why, "its plugin %s does not match its hash", ppath);
            goto fail;
        }
    }
    if (sl_plan_load_with(sl_diag_file(d), (const char *)sj->spec_text.data, sj->spec_text.len,
                          params, (int)sj->parallelism, j->plugin, d, &j->spec,
                          &j->plan) != SL_OK) {
        snprintf(why, sizeof why, "its spec no longer plans: %s",
                 sl_diag_count(d) ? sl_diag_message(d, 0) : "error");
        goto fail;
    }
    j->id = strdup(r->job_id);
    j->name = strdup(j->plan->name);
    j->spec_file = strdup(sl_diag_file(d));
    j->spec_text = malloc(sj->spec_text.len);
    j->spec_len = sj->spec_text.len;
    j->parallelism = (int)sj->parallelism;
    j->nparams = (int)sj->n_params;
    j->pnames = calloc(sj->n_params + 1, sizeof(char *));
    j->pvalues = calloc(sj->n_params + 1, sizeof(char *));
    j->origin = sj->from_savepoint[0] ? strdup(sj->from_savepoint) : NULL;
    s_job_t **nj = realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *nj);
    if (nj)
        m->jobs = nj;
    if (!j->id || !j->name || !j->spec_file || !j->spec_text || !j->pnames || !j->pvalues || !nj ||
        (sj->from_savepoint[0] && !j->origin))
        goto fail;
    memcpy(j->spec_text, sj->spec_text.data, sj->spec_text.len);
    for (size_t i = 0; i < sj->n_params; i++) {
        j->pnames[i] = strdup(sj->params[i]->name);
        j->pvalues[i] = strdup(sj->params[i]->value);
    }
    j->state = r->state;
    j->attempt = r->attempt;
    j->error = r->error[0] ? strdup(r->error) : NULL;
    j->start_ms = r->start_ms;
    j->end_ms = r->end_ms;
    j->ncompleted = r->checkpoints;
    j->failures = calloc(r->n_failures + 1, sizeof *j->failures);
    j->fail_ms = calloc(r->n_failures + 1, sizeof *j->fail_ms);
    for (size_t i = 0; j->failures && j->fail_ms && i < r->n_failures; i++)
        j->failures[j->nfailures++] = strdup(r->failures[i]);
    if (j->plan->spec->ckpt_interval_ms > 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/checkpoints/%s", m->state_dir, j->id);
        j->ckpt_dir = strdup(dir);
        if (j->ckpt_dir)
            s_scan_checkpoints(j);
        if (j->ncompleted < (uint32_t)j->nck_done)
            j->ncompleted = (uint32_t)j->nck_done;
    }
    unsigned long long seq = 0;
    if (sscanf(j->id, "job-%llu", &seq) == 1 && seq > m->job_seq)
        m->job_seq = seq;
    if (j->state == SLUICE__JOB_STATE_KIND__JOB_RUNNING ||
        j->state == SLUICE__JOB_STATE_KIND__JOB_RESTARTING) {
        /* Its tasks died with the old master (or are being canceled by their
         * workers, which it no longer knows): restart from the checkpoint. */
        j->state = SLUICE__JOB_STATE_KIND__JOB_RESTARTING;
        j->restart_at = s_mono_ms() + (uint64_t)m->o.heartbeat_timeout_ms;
        j->reason = strdup("resuming after a master restart");
        fprintf(stderr, "sluice-master: resuming job %s (%s) from %s\n", j->id, j->name,
                j->nck_done ? "its latest checkpoint"
                : j->origin ? "the savepoint it was submitted from"
                            : "the start");
    } else if (!s_terminal(j->state)) {
        j->state = SLUICE__JOB_STATE_KIND__JOB_SCHEDULED;
    }
    m->jobs[m->njobs++] = j;
    sl_params_destroy(&params);
    sl_diag_destroy(&d);
    sl_msg_free(&env);
    return;
fail:
    fprintf(stderr, "sluice-master: cannot resume job %s from %s: %s\n", r->job_id, path, why);
    if (j)
        s_job_free(j);
    sl_params_destroy(&params);
    sl_diag_destroy(&d);
    sl_msg_free(&env);
}

static void s_load_jobs(sl_master_t *m)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/jobs", m->state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        fprintf(stderr, "sluice-master: cannot create %s: %s\n", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d)
        return;
    /* in id order, so `list` keeps the submission order */
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".job") != 0)
            continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        if (!nn)
            break;
        names = nn;
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char *t = names[k];
            names[k] = names[k - 1];
            names[k - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        char path[8400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        s_load_job(m, path);
        free(names[i]);
    }
    free(names);
}

#define S_DEPLOY_TIMEOUT_MS 30000 /* a deploy not bound everywhere by then failed */

/* ---- checkpoints (docs/fault-tolerance.md) ------------------------------ */

static void s_ck_dir(const s_job_t *j, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/chk-%llu", j->ckpt_dir, (unsigned long long)id);
}

/* How much nicer than the loop a thread doing its file work runs: hashing
 * a big checkpoint is CPU work, and on a machine with more busy threads
 * than cores the loop, which reads heartbeats and answers clients, must
 * not queue behind it (Linux nice values are per thread, as in the
 * worker's task threads). */
#define S_IO_NICE 5

static void s_nice_thread(void)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0); /* Linux: this thread's */
    if (errno == 0 && nice < 19)
        (void)setpriority(PRIO_PROCESS, 0, nice + S_IO_NICE < 19 ? nice + S_IO_NICE : 19);
}

/* Test builds: waits ms from the environment variable knob (a slow disk),
 * in steps, until abandon is set; logs that it does, naming what. */
static void s_test_delay(const char *knob, const atomic_bool *abandon, const char *what)
{
#ifdef SLUICE_FAILPOINTS
    const char *v = getenv(knob);
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms > 0)
        fprintf(stderr, "sluice-master: %s: %s=%ld, waiting\n", what, knob, ms);
    for (long t = 0; t < ms && !atomic_load(abandon); t += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
#else
    (void)knob;
    (void)abandon;
    (void)what;
#endif
}

/* Work on checkpoint files, in the master's file thread: writing a
 * checkpoint's _metadata (temporary file, fsync, rename, fsync of the
 * directory) and copying a savepoint, deleting given-up and retired
 * checkpoints, and collecting the shared files no retained checkpoint
 * names. A slow or failing disk must not keep the loop from answering
 * clients and reading heartbeats. The thread takes the pieces one at a time
 * in the order they were given (m->ioq), so a given-up checkpoint's
 * directory goes only once its _metadata write has ended; each job also
 * lists its own (j->io) in that order. While any is pending the job
 * triggers no checkpoint, so no shared file judged unreferenced can be one
 * that a checkpoint in flight writes. One long-lived thread, not one per
 * piece: a fault injected into "the first fsync" of a thread (strace's
 * when=1, scenario 170) stays one fault. The thread owns a piece until
 * done is set; the loop takes it then (s_io_take). */
typedef enum { S_IO_METADATA, S_IO_DELETE, S_IO_SP_MARK } s_io_kind_t;

struct s_io {
    s_io_t *next;  /* the job's next piece (the loop's) */
    s_io_t *qnext; /* the next piece for the thread (under m->io_mu) */
    s_io_kind_t kind;
    atomic_bool done;    /* set by the thread last */
    atomic_bool abandon; /* set by the loop: the _metadata is not wanted (given up, shutdown) */
    char *job_id;        /* for log lines */
    /* S_IO_METADATA (and S_IO_SP_MARK: dir, rc, why) */
    uint64_t ck_id; /* the checkpoint */
    char *dir;      /* its directory */
    char *text;     /* _metadata's content */
    size_t len;
    int rc;          /* the write's result */
    char why[4400];  /* what failed */
    char *sp_dst;    /* a savepoint: the directory to copy the checkpoint to, or NULL */
    char **sp_files; /* the state files to copy */
    int nsp_files;
    char sp_why[9000]; /* why the copy failed ("" when it did not) */
    /* S_IO_DELETE */
    char **dirs; /* directories to delete */
    int ndirs;
    bool staging; /* dirs are the staging directories of job dir's (its ckpt_dir) file sinks:
                     each goes unless its .owner names another job */
    char **kept;  /* the retained checkpoints: their manifests name the shared files to keep */
    int nkept;
    char *shared;  /* <ckpt_dir>/shared to collect, or NULL */
    char *partial; /* a job's ckpt_dir whose checkpoint directories without _metadata go, or NULL */
    uint64_t partial_below; /* with partial: only those of ids below it (0: every one) */
};

static void s_io_free(s_io_t *io)
{
    if (!io)
        return;
    for (int i = 0; i < io->ndirs; i++)
        free(io->dirs[i]);
    for (int i = 0; i < io->nkept; i++)
        free(io->kept[i]);
    for (int i = 0; i < io->nsp_files; i++)
        free(io->sp_files[i]);
    free(io->dirs);
    free(io->kept);
    free(io->sp_files);
    free(io->sp_dst);
    free(io->shared);
    free(io->partial);
    free(io->text);
    free(io->dir);
    free(io->job_id);
    free(io);
}

/* A new piece of kind for j; NULL when out of memory. */
static s_io_t *s_io_new(const s_job_t *j, s_io_kind_t kind)
{
    s_io_t *io = calloc(1, sizeof *io);
    if (!io)
        return NULL;
    io->kind = kind;
    atomic_init(&io->done, false);
    atomic_init(&io->abandon, false);
    if (!(io->job_id = strdup(j->id))) {
        s_io_free(io);
        return NULL;
    }
    return io;
}

/* Copies checkpoint io->dir to the savepoint io->sp_dst: the state files,
 * the RocksDB stores, then _metadata (a savepoint exists once it does). */
static void s_io_copy_savepoint(s_io_t *io)
{
    char *why = io->sp_why;
    size_t cap = sizeof io->sp_why;
    const char *slash = strrchr(io->sp_dst, '/');
    if (slash && slash != io->sp_dst) { /* its parent, the savepoints directory */
        char parent[4200];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - io->sp_dst), io->sp_dst);
        if (mkdir(parent, 0755) != 0 && errno != EEXIST)
            snprintf(why, cap, "cannot create %s: %s", parent, strerror(errno));
    }
    if (!why[0] && mkdir(io->sp_dst, 0755) != 0 && errno != EEXIST)
        snprintf(why, cap, "cannot create %s: %s", io->sp_dst, strerror(errno));
    DIR *d = why[0] ? NULL : opendir(io->dir); /* the file sinks' committed parts */
    for (struct dirent *e; d && !why[0] && (e = readdir(d));) {
        char a[4400], b[4600], failed[4400];
        if (strncmp(e->d_name, SL_CKPT_PARTS_PREFIX, strlen(SL_CKPT_PARTS_PREFIX)) != 0)
            continue;
        snprintf(a, sizeof a, "%s/%s", io->dir, e->d_name);
        snprintf(b, sizeof b, "%s/%s", io->sp_dst, e->d_name);
        if (sl_fs_copy_dir(a, b, failed, sizeof failed) != SL_OK)
            snprintf(why, cap, "cannot copy %s to %s: %s", failed, b, strerror(errno));
    }
    if (d)
        closedir(d);
    for (int i = 0; !why[0] && i <= io->nsp_files; i++) {
        const char *name = i < io->nsp_files ? io->sp_files[i] : "_metadata";
        char a[4400], b[4600];
        snprintf(a, sizeof a, "%s/%s", io->dir, name);
        snprintf(b, sizeof b, "%s/%s", io->sp_dst, name);
        if (i == io->nsp_files && sl_kv_ckpt_copy(io->dir, io->sp_dst, why, cap) != SL_OK)
            break; /* the RocksDB stores, before _metadata */
        if (sl_fs_copy_atomic(a, b) != SL_OK)
            snprintf(why, cap, "cannot copy %s to %s: %s", a, b, strerror(errno));
    }
}

static void s_io_run(s_io_t *io)
{
    if (io->kind == S_IO_SP_MARK) { /* the directory of the savepoint's checkpoint, marked */
        char parent[4200], path[4300];
        const char *slash = strrchr(io->dir, '/');
        snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - io->dir) : 0, io->dir);
        snprintf(path, sizeof path, "%s/" SL_CKPT_SAVEPOINT_MARK, io->dir);
        if (parent[0])
            mkdir(parent, 0755); /* (the job's checkpoint directory: there already, usually) */
        errno = 0;
        if ((mkdir(io->dir, 0755) != 0 && errno != EEXIST) ||
            sl_fs_write_atomic(path, "", 0) != SL_OK) {
            io->rc = SL_IO;
            snprintf(io->why, sizeof io->why, "cannot write %s: %s", path,
                     errno ? strerror(errno) : "I/O error");
        }
        return;
    }
    if (io->kind == S_IO_METADATA) {
        char what[200], path[4300];
        snprintf(what, sizeof what, "job %s: _metadata of checkpoint %llu", io->job_id,
                 (unsigned long long)io->ck_id);
        s_test_delay("SLUICE_MASTER_METADATA_DELAY_MS", &io->abandon, what);
        if (atomic_load(&io->abandon)) {
            io->rc = SL_STATE;
            snprintf(io->why, sizeof io->why, "given up before it was written");
            return;
        }
        snprintf(path, sizeof path, "%s/_metadata", io->dir);
        mkdir(io->dir, 0755); /* absent when every subtask had finished */
        errno = 0;
        sl_failpoint("metadata-before-write");
        io->rc = sl_fs_write_atomic_fp(path, io->text, io->len, "metadata");
        if (io->rc)
            snprintf(io->why, sizeof io->why, "cannot write %s: %s", path,
                     errno ? strerror(errno) : "I/O error");
        else if (io->sp_dst && !atomic_load(&io->abandon))
            s_io_copy_savepoint(io);
        return;
    }
    if (io->staging) {
        char what[200];
        snprintf(what, sizeof what, "job %s: its staging directories", io->job_id);
        s_test_delay("SLUICE_MASTER_STAGING_DELAY_MS", &io->abandon, what);
    }
    for (int i = 0; i < io->ndirs; i++) {
        char owner[4400], got[4400];
        snprintf(owner, sizeof owner, "%s/.owner", io->dirs[i]);
        size_t n = 0, k = io->staging ? strlen(io->dir) : 0;
        FILE *f = io->staging ? fopen(owner, "rb") : NULL;
        if (f) {
            n = fread(got, 1, sizeof got - 1, f);
            fclose(f);
        }
        got[n] = '\0';
        if (f && (n <= k || got[n - k - 1] != ' ' || strcmp(got + n - k, io->dir) != 0))
            continue; /* claimed by another job since (one resumed into the same output) */
        sl_rmtree(io->dirs[i]);
    }
    if (io->partial) { /* every checkpoint directory without _metadata */
        DIR *d = opendir(io->partial);
        for (struct dirent *e; d && (e = readdir(d));) {
            unsigned long long id;
            char tail, p[4400], meta[4500];
            if (sscanf(e->d_name, "chk-%llu%c", &id, &tail) != 1 ||
                (io->partial_below && id >= io->partial_below))
                continue;
            snprintf(p, sizeof p, "%s/%s", io->partial, e->d_name);
            snprintf(meta, sizeof meta, "%s/_metadata", p);
            struct stat st;
            if (stat(meta, &st) != 0 && errno == ENOENT)
                sl_rmtree(p);
        }
        if (d)
            closedir(d);
    }
    if (!io->shared)
        return;
    char why[1024] = "";
    size_t removed = 0;
    if (sl_kv_ckpt_gc(io->shared, (const char *const *)io->kept, (size_t)io->nkept, &removed, why,
                      sizeof why))
        fprintf(stderr, "sluice-master: job %s: shared state files not collected: %s\n", io->job_id,
                why);
}

/* The file thread: runs the pieces queued, in order, and wakes the loop
 * after each; ends once asked to and nothing is queued. */
static void *s_io_main(void *arg)
{
    sl_master_t *m = arg;
    s_nice_thread();
    pthread_mutex_lock(&m->io_mu);
    for (;;) {
        while (!m->ioq && !m->io_stop)
            pthread_cond_wait(&m->io_cv, &m->io_mu);
        s_io_t *io = m->ioq;
        if (!io)
            break;
        m->ioq = io->qnext;
        if (!m->ioq)
            m->ioq_tail = NULL;
        pthread_mutex_unlock(&m->io_mu);
        s_io_run(io);
        atomic_store(&io->done, true); /* io is the loop's from here */
        char c = 1;
        ssize_t n = write(m->wake[1], &c, 1); /* a full pipe has a wake-up pending already */
        (void)n;
        pthread_mutex_lock(&m->io_mu);
    }
    pthread_mutex_unlock(&m->io_mu);
    return NULL;
}

/* Appends io to j's file work and gives it to the file thread (run here
 * when there is none). */
static void s_io_push(sl_master_t *m, s_job_t *j, s_io_t *io)
{
    s_io_t **p = &j->io;
    while (*p)
        p = &(*p)->next;
    *p = io;
    if (!m->io_running) {
        s_io_run(io);
        atomic_store(&io->done, true);
        return;
    }
    pthread_mutex_lock(&m->io_mu);
    if (m->ioq_tail)
        m->ioq_tail->qnext = io;
    else
        m->ioq = io;
    m->ioq_tail = io;
    pthread_cond_signal(&m->io_cv);
    pthread_mutex_unlock(&m->io_mu);
}

/* A checkpointed job that ended for good (failed, canceled, or stopped
 * with a savepoint, which holds the committed parts itself): the staged
 * parts of its file sinks will never be published; finished: its end
 * markers are no longer needed. They go in the file thread, after j's
 * earlier file work. */
static void s_drop_staging(sl_master_t *m, s_job_t *j)
{
    if (!j->ckpt_dir)
        return;
    s_io_t *io = s_io_new(j, S_IO_DELETE);
    bool ok = io && (io->dirs = calloc((size_t)j->plan->nnodes + 1, sizeof *io->dirs));
    for (int i = 0; i < j->plan->nnodes; i++)
        if (j->plan->nodes[i].kind == SL_OP_FILE_SINK) {
            char dir[4200];
            sl_fs_staging_dir(j->plan->nodes[i].sink_path, dir, sizeof dir);
            char *d = ok ? strdup(dir) : NULL;
            if (d)
                io->dirs[io->ndirs++] = d;
            else /* out of memory: here, then */
                sl_rmtree(dir);
        }
    if (ok && io->ndirs && (io->dir = strdup(j->ckpt_dir))) {
        io->staging = true;
        s_io_push(m, j, io);
    } else {
        s_io_free(io);
    }
}

/* Takes j's first piece once it has ended; NULL while it waits or runs.
 * The caller frees it. */
static s_io_t *s_io_take(s_job_t *j)
{
    s_io_t *io = j->io;
    if (!io || !atomic_load(&io->done))
        return NULL;
    j->io = io->next;
    io->next = NULL;
    return io;
}

/* Frees j's pieces: the file thread has ended (or never ran them). */
static void s_io_drop(s_job_t *j)
{
    while (j->io) {
        s_io_t *io = j->io;
        j->io = io->next;
        s_io_free(io);
    }
}

/* Starts the file thread; false when it cannot (pieces then run in the
 * loop). */
static bool s_io_begin(sl_master_t *m)
{
    m->io_running = pthread_mutex_init(&m->io_mu, NULL) == 0;
    if (m->io_running && pthread_cond_init(&m->io_cv, NULL) != 0) {
        pthread_mutex_destroy(&m->io_mu);
        m->io_running = false;
    }
    if (m->io_running && pthread_create(&m->io_thread, NULL, s_io_main, m) != 0) {
        pthread_cond_destroy(&m->io_cv);
        pthread_mutex_destroy(&m->io_mu);
        m->io_running = false;
    }
    return m->io_running;
}

/* Abandons every _metadata write still queued or running, lets the file
 * thread finish the rest (deletions) and joins it. */
static void s_io_end(sl_master_t *m)
{
    if (!m->io_running)
        return;
    for (int i = 0; i < m->njobs; i++)
        for (s_io_t *io = m->jobs[i]->io; io; io = io->next)
            atomic_store(&io->abandon, true);
    pthread_mutex_lock(&m->io_mu);
    m->io_stop = true;
    pthread_cond_signal(&m->io_cv);
    pthread_mutex_unlock(&m->io_mu);
    pthread_join(m->io_thread, NULL);
    pthread_cond_destroy(&m->io_cv);
    pthread_mutex_destroy(&m->io_mu);
    m->io_running = false;
}

/* Deletes checkpoint directories off the loop (ids, n of them, of j);
 * with collect, also the shared files that no retained checkpoint
 * (j->ck_done) references any more. */
static void s_ck_delete(sl_master_t *m, s_job_t *j, const uint64_t *ids, int n, bool collect)
{
    s_io_t *io = s_io_new(j, S_IO_DELETE);
    char d[4200];
    bool ok = io && (io->dirs = calloc((size_t)n + 1, sizeof *io->dirs)) &&
              (io->kept = calloc((size_t)j->nck_done + 1, sizeof *io->kept));
    for (int i = 0; ok && i < n; i++) {
        s_ck_dir(j, ids[i], d, sizeof d);
        ok = (io->dirs[io->ndirs++] = strdup(d)) != NULL;
    }
    for (int i = 0; ok && collect && i < j->nck_done; i++) {
        s_ck_dir(j, j->ck_done[i], d, sizeof d);
        ok = (io->kept[io->nkept++] = strdup(d)) != NULL;
    }
    snprintf(d, sizeof d, "%s/shared", j->ckpt_dir);
    if (ok && collect)
        ok = (io->shared = strdup(d)) != NULL;
    if (!ok) { /* out of memory: at least the directories go */
        for (int i = 0; i < n; i++) {
            s_ck_dir(j, ids[i], d, sizeof d);
            sl_rmtree(d);
        }
        s_io_free(io);
        return;
    }
    s_io_push(m, j, io);
}

/* Removes what tasks wrote for checkpoint id after it was given up (its
 * directory, recreated by a late snapshot); a completed one stays. */
static void s_ck_sweep(sl_master_t *m, s_job_t *j, uint64_t id)
{
    for (int i = 0; i < j->nck_done; i++)
        if (j->ck_done[i] == id)
            return;
    char dir[4200], meta[4300];
    struct stat st;
    s_ck_dir(j, id, dir, sizeof dir);
    snprintf(meta, sizeof meta, "%s/_metadata", dir);
    if (stat(dir, &st) == 0 && stat(meta, &st) != 0 && errno == ENOENT)
        s_ck_delete(m, j, &id, 1, false);
}

/* Gives up the checkpoint in flight (its files are removed). */
static void s_ck_abort(sl_master_t *m, s_job_t *j, const char *why)
{
    if (!j->ck_pending)
        return;
    fprintf(stderr, "sluice-master: checkpoint %llu of job %s given up: %s\n",
            (unsigned long long)j->ck_pending, j->id, why);
    if (j->sp_id == j->ck_pending) {
        sl_msg_send_error(m->sock, j->sp_rid, j->sp_rlen, j->sp_req, SL_STATE,
                          "the savepoint of job %s failed: %s", j->id, why);
        j->sp_id = 0;
    }
    /* its files go off the loop, after its _metadata write if one runs */
    for (s_io_t *io = j->io; io; io = io->next)
        if (io->kind == S_IO_METADATA && io->ck_id == j->ck_pending)
            atomic_store(&io->abandon, true);
    s_ck_delete(m, j, &j->ck_pending, 1, false);
    j->ck_pending = 0;
    j->ck_writing = false;
    j->ck_gave_up = true;
    j->ck_last_end = s_mono_ms();
}

/* The savepoint asked for will be the next checkpoint: its directory is
 * marked first (SL_CKPT_SAVEPOINT_MARK, in the file thread), so file sinks
 * put their committed parts into it; the trigger follows once that is
 * done (no checkpoint is triggered while j's file work is pending). */
static void s_sp_mark(sl_master_t *m, s_job_t *j)
{
    char dir[4200];
    s_ck_dir(j, j->ck_next + 1, dir, sizeof dir);
    s_io_t *io = s_io_new(j, S_IO_SP_MARK);
    if (!io || !(io->dir = strdup(dir))) {
        s_io_free(io);
        return; /* (tried again at the next tick) */
    }
    j->sp_marked = j->ck_next + 1;
    s_io_push(m, j, io);
}

static void s_ck_trigger(sl_master_t *m, s_job_t *j)
{
    uint64_t id = ++j->ck_next;
    j->ck_pending = id;
    j->ck_started = s_mono_ms();
    j->ck_trigger_wall = s_wall_ms();
    j->ck_size = 0;
    j->ck_align = 0;
    if (j->sp_wanted) {
        j->sp_wanted = false;
        j->sp_id = id;
    }
    bool *sent = calloc((size_t)m->nworkers + 1, sizeof *sent);
    for (int i = 0; i < j->ntasks; i++) {
        s_task_t *t = &j->tasks[i];
        j->ck_acks[i] = (s_ack_t){0};
        if (t->state == SLUICE__TASK_STATE_KIND__TASK_FINISHED) {
            j->ck_acks[i].finished = true; /* ended before this checkpoint */
            continue;
        }
        const sl_plan_node_t *head = &j->plan->nodes[j->plan->chains[t->chain].nodes[0]];
        if (head->role != SL_ROLE_SOURCE || !sent || sent[t->worker])
            continue;
        sent[t->worker] = true;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__CheckpointTrigger ct = SLUICE__CHECKPOINT_TRIGGER__INIT;
        ct.job_id = j->id;
        ct.checkpoint_id = id;
        ct.timestamp_ms = s_wall_ms();
        ct.attempt = j->attempt;
        ct.stop = j->sp_id == id && j->sp_stop; /* sources stop at its barrier */
        env.body_case = SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER;
        env.checkpoint_trigger = &ct;
        const char *rid = m->workers[t->worker].id;
        sl_msg_send(m->sock, rid, strlen(rid), &env);
    }
    free(sent);
}

/* The format of checkpoints and savepoints (_metadata's first line). 2:
 * keys hash with the word-at-a-time sl_value_hash, which moved them to
 * other key groups than format 1's FNV-1a: format 1 is refused. */
#define S_CK_FORMAT 2

/* _metadata: a text file naming the operators of every chain (task) and
 * every subtask's state file with its size and SHA-256, ending with the
 * SHA-256 of everything before that line. Returns it in *out (malloc'd,
 * *outlen bytes), or SL_NOMEM. */
static int s_ck_metadata_text(const s_job_t *j, uint64_t id, char **out, size_t *outlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return SL_NOMEM;
    fprintf(f, "sluice-checkpoint %d\njob %s\ncheckpoint %llu\nattempt %u\n", S_CK_FORMAT, j->id,
            (unsigned long long)id, (unsigned)j->attempt);
    for (int c = 0; c < j->plan->nchains; c++) {
        fprintf(f, "chain %d", c);
        for (int k = 0; k < j->plan->chains[c].nnodes; k++)
            fprintf(f, "%c%s", k ? ',' : ' ', j->plan->nodes[j->plan->chains[c].nodes[k]].name);
        fputc('\n', f);
    }
    fprintf(f, "tasks %d\n", j->ntasks);
    for (int i = 0; i < j->ntasks; i++) {
        const s_ack_t *a = &j->ck_acks[i];
        if (a->finished && !a->acked)
            fprintf(f, "task %d %d finished\n", j->tasks[i].chain, j->tasks[i].subtask);
        else
            fprintf(f, "task %d %d %llu %s %s\n", j->tasks[i].chain, j->tasks[i].subtask,
                    (unsigned long long)a->size, a->sha, a->file);
    }
    fclose(f);
    char hex[65];
    sl_sha256_hex(buf, len, hex);
    char *full = malloc(len + 80);
    if (full)
        *outlen = (size_t)snprintf(full, len + 80, "%.*ssha256 %s\n", (int)len, buf, hex);
    free(buf);
    *out = full;
    return full ? SL_OK : SL_NOMEM;
}

/* Remembers a completed checkpoint (or savepoint) for `sluice checkpoints`. */
static void s_info_add(s_job_t *j, uint64_t id, const char *path, bool savepoint)
{
    Sluice__CheckpointInfo *ni = realloc(j->ckinfo, (size_t)(j->nckinfo + 1) * sizeof *ni);
    char **np = realloc(j->ckinfo_paths, (size_t)(j->nckinfo + 1) * sizeof *np);
    if (ni)
        j->ckinfo = ni;
    if (np)
        j->ckinfo_paths = np;
    char *copy = strdup(path);
    if (!ni || !np || !copy) {
        free(copy);
        return;
    }
    Sluice__CheckpointInfo *c = &j->ckinfo[j->nckinfo];
    *c = (Sluice__CheckpointInfo)SLUICE__CHECKPOINT_INFO__INIT;
    c->checkpoint_id = id;
    c->trigger_ms = j->ck_trigger_wall;
    c->duration_ms = s_mono_ms() - j->ck_started;
    c->size = j->ck_size;
    c->align_ms = j->ck_align;
    c->savepoint = savepoint;
    j->ckinfo_paths[j->nckinfo] = copy;
    j->nckinfo++;
}

/* Forgets a checkpoint deleted by retention (savepoints stay). */
static void s_info_drop(s_job_t *j, uint64_t id)
{
    for (int i = 0; i < j->nckinfo; i++)
        if (j->ckinfo[i].checkpoint_id == id && !j->ckinfo[i].savepoint) {
            free(j->ckinfo_paths[i]);
            memmove(&j->ckinfo[i], &j->ckinfo[i + 1],
                    (size_t)(j->nckinfo - i - 1) * sizeof *j->ckinfo);
            memmove(&j->ckinfo_paths[i], &j->ckinfo_paths[i + 1],
                    (size_t)(j->nckinfo - i - 1) * sizeof *j->ckinfo_paths);
            j->nckinfo--;
            return;
        }
}

/* The savepoint's checkpoint is complete and was copied to dst (or not:
 * why says what failed): answer; with stop, the job ends. */
static void s_savepoint_done(sl_master_t *m, s_job_t *j, uint64_t id, const char *dst,
                             const char *why)
{
    j->sp_id = 0;
    if (why[0]) {
        sl_msg_send_error(m->sock, j->sp_rid, j->sp_rlen, j->sp_req, SL_IO,
                          "the savepoint of job %s failed: %s", j->id, why);
        return;
    }
    fprintf(stderr, "sluice-master: job %s: savepoint %s\n", j->id, dst);
    s_info_add(j, id, dst, true);
    Sluice__Envelope env;
    sl_msg_init(&env, j->sp_req);
    Sluice__SavepointReply rep = SLUICE__SAVEPOINT_REPLY__INIT;
    rep.path = (char *)dst;
    rep.checkpoint_id = id;
    env.body_case = SLUICE__ENVELOPE__BODY_SAVEPOINT_REPLY;
    env.savepoint_reply = &rep;
    sl_msg_send(m->sock, j->sp_rid, j->sp_rlen, &env);
    if (j->sp_stop) {
        char msg[4600];
        snprintf(msg, sizeof msg, "stopped with a savepoint: %s", dst);
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_STOPPED, msg);
    }
}

static void s_on_savepoint(sl_master_t *m, const uint8_t *rid, size_t rlen, uint64_t req,
                           const Sluice__SavepointRequest *r)
{
    s_job_t *j = s_find_job(m, r->job_id);
    if (!j) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_NOTFOUND, "no job '%s'", r->job_id);
        return;
    }
    if (!j->ckpt_dir) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_STATE,
                          "job %s takes no checkpoints: add `checkpoint: {interval: ...}` to its "
                          "spec to take savepoints",
                          j->id);
        return;
    }
    if (j->state != SLUICE__JOB_STATE_KIND__JOB_RUNNING || !j->started) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_STATE, "job %s is not running (%s)", j->id,
                          j->state == SLUICE__JOB_STATE_KIND__JOB_RUNNING ? "starting" : "ended");
        return;
    }
    if (j->sp_wanted || j->sp_id) {
        sl_msg_send_error(m->sock, rid, rlen, req, SL_STATE,
                          "a savepoint of job %s is already in progress", j->id);
        return;
    }
    free(j->sp_dir);
    if (r->dir[0])
        j->sp_dir = strdup(r->dir);
    else {
        char d[4200];
        snprintf(d, sizeof d, "%s/savepoints", m->state_dir);
        j->sp_dir = strdup(d);
    }
    memcpy(j->sp_rid, rid, rlen);
    j->sp_rlen = rlen;
    j->sp_req = req;
    j->sp_stop = r->stop;
    j->sp_wanted = true; /* the next checkpoint, as soon as none is in flight */
}

/* Every subtask acknowledged (or had finished): the checkpoint's
 * _metadata is written off the loop (and, for a savepoint, the checkpoint
 * copied); s_ck_written goes on once that has ended. */
static void s_ck_maybe_complete(sl_master_t *m, s_job_t *j)
{
    if (!j->ck_pending || j->ck_writing)
        return;
    bool any = false;
    for (int i = 0; i < j->ntasks; i++) {
        if (!j->ck_acks[i].acked && !j->ck_acks[i].finished)
            return;
        any |= j->ck_acks[i].acked;
    }
    if (!any) { /* nothing to write: the job ended before any task took it */
        s_ck_abort(m, j, "every task finished before taking it");
        return;
    }
    uint64_t id = j->ck_pending;
    s_io_t *io = s_io_new(j, S_IO_METADATA);
    char dir[4200];
    s_ck_dir(j, id, dir, sizeof dir);
    bool ok =
        io && (io->dir = strdup(dir)) && s_ck_metadata_text(j, id, &io->text, &io->len) == SL_OK;
    if (ok && j->sp_id == id) {
        char dst[4400];
        snprintf(dst, sizeof dst, "%s/savepoint-%s-%llu", j->sp_dir, j->id, (unsigned long long)id);
        ok = (io->sp_dst = strdup(dst)) &&
             (io->sp_files = calloc((size_t)j->ntasks + 1, sizeof *io->sp_files));
        for (int i = 0; ok && i < j->ntasks; i++)
            if (j->ck_acks[i].acked && j->ck_acks[i].file[0])
                ok = (io->sp_files[io->nsp_files++] = strdup(j->ck_acks[i].file)) != NULL;
    }
    if (!ok) {
        s_io_free(io);
        s_ck_abort(m, j, "out of memory");
        return;
    }
    io->ck_id = id;
    j->ck_writing = true;
    s_io_push(m, j, io);
}

/* The _metadata write of io has ended (not abandoned): the checkpoint is
 * complete once it is durable; then the tasks hear of it, and checkpoints
 * beyond retain go. A failed write gives it up. */
static void s_ck_written(sl_master_t *m, s_job_t *j, const s_io_t *io)
{
    uint64_t id = io->ck_id;
    bool ended = s_terminal(j->state); /* finished while _metadata was written */
    if (j->ck_pending != id || !j->ck_writing)
        return; /* given up meanwhile (cannot happen: that abandons io) */
    j->ck_writing = false;
    if (io->rc != SL_OK) {
        s_ck_abort(m, j, io->why);
        return;
    }
    j->ck_pending = 0;
    j->ck_last_end = s_mono_ms();
    j->ncompleted++;
    s_persist(m, j);
    s_info_add(j, id, io->dir, false);
    if (j->sp_id == id)
        s_savepoint_done(m, j, id, io->sp_dst ? io->sp_dst : "",
                         io->sp_dst ? io->sp_why : "out of memory");
    sl_failpoint("master-before-notify");
    uint64_t *done = realloc(j->ck_done, (size_t)(j->nck_done + 1) * sizeof *done);
    if (done) {
        j->ck_done = done;
        j->ck_done[j->nck_done++] = id;
    }
    int retain = j->plan->spec->ckpt_retain, nretired = 0;
    uint64_t *retired = j->nck_done > retain ? malloc((size_t)j->nck_done * sizeof *retired) : NULL;
    while (j->nck_done > retain && retired) {
        retired[nretired++] = j->ck_done[0];
        s_info_drop(j, j->ck_done[0]);
        memmove(j->ck_done, j->ck_done + 1, (size_t)(j->nck_done - 1) * sizeof *j->ck_done);
        j->nck_done--;
    }
    if (nretired)
        s_ck_delete(m, j, retired, nretired, true); /* off the loop */
    free(retired);
    /* A task may write into a given-up checkpoint after its directory was
     * deleted (a late asynchronous write: on a full disk, an empty
     * directory). Its acknowledgement sweeps it (s_ck_sweep), but a task
     * keeps only its newest acknowledgement for the worker to send, so a
     * late one can be lost. Every task that acknowledged this checkpoint
     * has ended its writes for the ones before it: what they left without
     * _metadata goes now, off the loop. */
    s_io_t *sweep = j->ck_gave_up ? s_io_new(j, S_IO_DELETE) : NULL;
    if (sweep && (sweep->partial = strdup(j->ckpt_dir))) {
        sweep->partial_below = id;
        s_io_push(m, j, sweep);
        j->ck_gave_up = false;
    } else {
        s_io_free(sweep);
    }
    if (ended)
        return; /* no task to tell */
    bool *sent = calloc((size_t)m->nworkers + 1, sizeof *sent);
    for (int i = 0; sent && i < j->ntasks; i++) {
        int wi = j->tasks[i].worker;
        if (wi < 0 || sent[wi] || !m->workers[wi].alive)
            continue;
        sent[wi] = true;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__CheckpointComplete cc = SLUICE__CHECKPOINT_COMPLETE__INIT;
        cc.job_id = j->id;
        cc.checkpoint_id = id;
        cc.attempt = j->attempt;
        env.body_case = SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE;
        env.checkpoint_complete = &cc;
        sl_msg_send(m->sock, m->workers[wi].id, strlen(m->workers[wi].id), &env);
    }
    free(sent);
}

static void s_on_ack(sl_master_t *m, const uint8_t *rid, size_t rlen,
                     const Sluice__CheckpointAck *a)
{
    s_job_t *j = s_find_job(m, a->job_id);
    if (j && j->ckpt_dir && a->attempt == j->attempt && a->checkpoint_id != j->ck_pending &&
        a->checkpoint_id <= j->ck_next)
        s_ck_sweep(m, j, a->checkpoint_id); /* a task that wrote after it was given up */
    if (!j || !j->tasks || a->attempt != j->attempt || a->checkpoint_id != j->ck_pending)
        return; /* stale: another attempt, or a checkpoint given up */
    for (int i = 0; i < j->ntasks; i++) {
        s_task_t *t = &j->tasks[i];
        if (t->chain != (int)a->ref->chain || t->subtask != (int)a->ref->subtask)
            continue;
        if (t->worker < 0 || !s_sender_is(rid, rlen, m->workers[t->worker].id)) {
            s_log_rejected(m, "a checkpoint ack from a worker that does not run the task");
            return;
        }
        if (a->declined[0]) {
            char why[1200];
            snprintf(why, sizeof why, "task %d.%d declined: %s", t->chain, t->subtask, a->declined);
            s_ck_abort(m, j, why);
            return;
        }
        s_ack_t *k = &j->ck_acks[i];
        k->acked = true;
        snprintf(k->file, sizeof k->file, "%s", a->file);
        snprintf(k->sha, sizeof k->sha, "%s", a->sha256);
        k->size = a->size;
        j->ck_size += a->size;
        if (a->align_ms > j->ck_align)
            j->ck_align = a->align_ms;
        s_ck_maybe_complete(m, j);
        return;
    }
}

/* Whether chain c of plan runs the operators _metadata (text up to end)
 * lists for chain c, in the same order; false when it does not list chain
 * c (a checkpoint written before chains were listed proves nothing). Else
 * the state of an operator may be in another subtask's file than the one
 * of its task now: the restore goes by operator name, as on a rescale. */
static bool s_chain_same(const sl_plan_t *plan, int c, const char *text, const char *end)
{
    char want[32];
    int n = snprintf(want, sizeof want, "\nchain %d ", c);
    const char *l = strstr(text, want);
    if (!l || l >= end)
        return false;
    l += n;
    const sl_plan_chain_t *ch = &plan->chains[c];
    for (int k = 0; k < ch->nnodes; k++) {
        const char *name = plan->nodes[ch->nodes[k]].name;
        size_t len = strlen(name);
        if (strncmp(l, name, len) != 0)
            return false;
        l += len;
        if (*l != (k + 1 < ch->nnodes ? ',' : '\n'))
            return false;
        l++;
    }
    return true;
}

/* Reads and checks the _metadata in dir and every file it names; on
 * success fills j->restore (and restore_dir, restore_id). With
 * allow_rescale the checkpoint may come from another parallelism or
 * chaining of the operators (a savepoint): then restore lists the old
 * subtasks and rescale is set. */
static int s_restore_load(s_job_t *j, const char *dir, bool allow_rescale, char *why, size_t cap)
{
    char path[4300];
    uint64_t id = 0;
    snprintf(path, sizeof path, "%s/_metadata", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return SL_IO;
    }
    char *buf = malloc(1 << 20);
    size_t len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf)
        return SL_NOMEM;
    buf[len] = '\0';
    int rc = SL_DATA;
    char *tail = len ? strstr(buf, "sha256 ") : NULL;
    while (tail && tail != buf && tail[-1] != '\n')
        tail = strstr(tail + 1, "sha256 ");
    char hex[65], want[65] = "";
    if (!tail || sscanf(tail, "sha256 %64s", want) != 1) {
        snprintf(why, cap, "%s is truncated (no checksum line)", path);
        goto out;
    }
    sl_sha256_hex(buf, (size_t)(tail - buf), hex);
    if (strcmp(hex, want) != 0) {
        snprintf(why, cap, "%s does not match its checksum", path);
        goto out;
    }
    int fmt = 0;
    if (sscanf(buf, "sluice-checkpoint %d", &fmt) != 1 || fmt != S_CK_FORMAT) {
        snprintf(why, cap, "%s is checkpoint format %d, this Sluice reads format %d only%s", path,
                 fmt, S_CK_FORMAT,
                 fmt == 1 ? " (format 1 placed keys into key groups with an older hash: its "
                            "state would restore into the wrong subtasks; rerun the job from "
                            "its sources instead)"
                          : "");
        goto out;
    }
    int ntasks = 0;
    char *line = strstr(buf, "\ntasks ");
    int nsub = 0; /* the subtasks the next attempt deploys */
    for (int c = 0; c < j->plan->nchains; c++)
        nsub += j->plan->chains[c].parallelism;
    char *idl = strstr(buf, "\ncheckpoint ");
    unsigned long long idv = 0;
    if (idl && sscanf(idl, "\ncheckpoint %llu", &idv) == 1)
        id = idv;
    if (!line || sscanf(line, "\ntasks %d", &ntasks) != 1 || ntasks <= 0 || ntasks > 100000 ||
        (!allow_rescale && ntasks != nsub)) {
        snprintf(why, cap, "%s is for %d subtasks, the job has %d", path, ntasks, nsub);
        goto out;
    }
    s_restore_free(j);
    j->restore = calloc((size_t)ntasks + 1, sizeof *j->restore);
    j->restore_refs = calloc((size_t)ntasks + 1, sizeof *j->restore_refs);
    j->restore_strs = calloc(2 * (size_t)ntasks + 2, sizeof *j->restore_strs);
    if (!j->restore || !j->restore_refs || !j->restore_strs) {
        rc = SL_NOMEM;
        goto out;
    }
    char *p = strchr(line + 1, '\n');
    for (int i = 0; i < ntasks; i++) {
        int c, st, n = 0;
        unsigned long long size;
        char sha[65], file[97];
        if (!p || sscanf(p + 1, "task %d %d finished\n%n", &c, &st, &n) == 2) {
            if (!p)
                break;
        }
        Sluice__TaskSnapshot *ts = &j->restore[i];
        *ts = (Sluice__TaskSnapshot)SLUICE__TASK_SNAPSHOT__INIT;
        j->restore_refs[i] = (Sluice__SubtaskRef)SLUICE__SUBTASK_REF__INIT;
        ts->ref = &j->restore_refs[i];
        if (n > 0) {
            ts->finished = true;
            ts->file = ts->sha256 = "";
        } else if (sscanf(p + 1, "task %d %d %llu %64s %96s", &c, &st, &size, sha, file) == 5) {
            char fpath[4400];
            snprintf(fpath, sizeof fpath, "%s/%s", dir, file);
            if (sl_fs_read_checked(fpath, size, sha, NULL, why, cap) != SL_OK)
                goto out;
            j->restore_strs[2 * i] = strdup(file);
            j->restore_strs[2 * i + 1] = strdup(sha);
            ts->file = j->restore_strs[2 * i];
            ts->sha256 = j->restore_strs[2 * i + 1];
            ts->size = size;
            if (!ts->file || !ts->sha256) {
                rc = SL_NOMEM;
                goto out;
            }
        } else {
            snprintf(why, cap, "%s: malformed task line %d", path, i + 1);
            goto out;
        }
        j->restore_refs[i].chain = (uint32_t)c;
        j->restore_refs[i].subtask = (uint32_t)st;
        j->nrestore = i + 1;
        p = strchr(p + 1, '\n');
    }
    if (j->nrestore != ntasks) {
        snprintf(why, cap, "%s lists fewer than %d subtasks", path, ntasks);
        goto out;
    }
    /* the RocksDB stores' files (shared SSTs included) */
    if ((rc = sl_kv_ckpt_verify(dir, why, cap)) != SL_OK)
        goto out;
    rc = SL_DATA;
    /* A checkpoint written before _metadata listed the chains' operators
     * does not say which task ran which operator: at the same subtask
     * counts the job may chain them otherwise now. */
    const char *cl = strstr(buf, "\nchain ");
    bool listed = cl && cl < tail;
    if (allow_rescale || !listed) {
        /* the same chains at the same parallelism restore subtask by
         * subtask; anything else (or chains not listed) by operator name */
        int *par = calloc((size_t)j->plan->nchains + 1, sizeof *par);
        bool counts = par != NULL, finished = false;
        for (int i = 0; i < ntasks; i++) {
            int c = (int)j->restore_refs[i].chain;
            finished = finished || j->restore[i].finished;
            if (c < 0 || c >= j->plan->nchains)
                counts = false;
            else if (par)
                par[c]++;
        }
        for (int c = 0; counts && c < j->plan->nchains; c++)
            counts = par[c] == j->plan->chains[c].parallelism;
        bool same = counts;
        for (int c = 0; same && c < j->plan->nchains; c++)
            same = s_chain_same(j->plan, c, buf, tail);
        free(par);
        if (!allow_rescale && !counts)
            j->rescale = false; /* a restart's own checkpoint, as before */
        else if (!listed && counts && finished)
            /* finished subtasks restore by subtask only (below); a task
             * given a file holding an operator it does not run refuses
             * it, naming the operator */
            j->rescale = false;
        else
            j->rescale = !same;
        if (j->rescale && finished) {
            snprintf(why, cap,
                     "%s has finished subtasks; it cannot be restored at another "
                     "parallelism",
                     path);
            goto out;
        }
    }
    j->restore_dir = strdup(dir);
    if (!j->restore_dir) {
        rc = SL_NOMEM;
        goto out;
    }
    j->restore_id = id;
    rc = SL_OK;
out:
    if (rc)
        s_restore_free(j);
    free(buf);
    return rc;
}

static int s_ck_load(s_job_t *j, uint64_t id, char *why, size_t cap)
{
    char dir[4200];
    s_ck_dir(j, id, dir, sizeof dir);
    return s_restore_load(j, dir, false, why, cap);
}

/* Picks the newest completed checkpoint that is intact; falls back to older
 * ones, saying why. With none completed a job submitted from a savepoint
 * starts from that savepoint again, any other job from scratch; with all
 * corrupt (or its savepoint unusable) it fails (never from scratch by
 * accident). */
static int s_ck_choose(s_job_t *j, char *why, size_t cap)
{
    s_restore_free(j);
    if (!j->nck_done && j->origin) {
        char bad[4600];
        if (s_restore_load(j, j->origin, true, bad, sizeof bad) == SL_OK)
            return SL_OK;
        fprintf(stderr,
                "sluice-master: job %s: the savepoint it was submitted from is unusable (%s)\n",
                j->id, bad);
        snprintf(why, cap, "no usable checkpoint: savepoint %s: %s", j->origin, bad);
        return SL_DATA;
    }
    if (!j->nck_done)
        return SL_OK;
    for (int k = j->nck_done - 1; k >= 0; k--) {
        char bad[4600];
        if (s_ck_load(j, j->ck_done[k], bad, sizeof bad) == SL_OK)
            return SL_OK;
        fprintf(stderr, "sluice-master: job %s: checkpoint %llu is unusable (%s)%s\n", j->id,
                (unsigned long long)j->ck_done[k], bad,
                k ? "; falling back to the previous one" : "");
        snprintf(why, cap, "no usable checkpoint: %s", bad);
    }
    return SL_DATA;
}

/* ---- choosing the checkpoint off the loop ------------------------------------ */

/* A restart's choice of checkpoint, or the check of the savepoint a job is
 * submitted from, made in a thread of its own: reading and hashing every
 * state file of a checkpoint takes seconds for big state, and the loop
 * must keep answering clients and reading heartbeats meanwhile. The thread
 * owns shadow and rc/why until done is set; the loop reads them only after
 * that (and joins the thread). */
struct s_verify {
    pthread_t thread;            /* the verifier */
    atomic_bool done;            /* set by the thread last: the rest is the loop's again */
    atomic_bool abandon;         /* set by the loop: the result is not wanted (cancel, shutdown) */
    s_job_t shadow;              /* the thread's job: id, ckpt_dir, ck_done copied, plan borrowed
                                    (it lives as long as the job); it fills the restore fields */
    char *from;                  /* the savepoint to check, or NULL: choose among shadow.ck_done */
    int wake_fd;                 /* a byte written here when done wakes the loop */
    int rc;                      /* s_ck_choose's (s_restore_load's) result */
    char why[4800];              /* and why it failed */
    uint8_t rid[SL_MSG_RID_MAX]; /* from: who submitted the job, to answer once checked */
    size_t rlen;
    uint64_t req;
};

static void s_verify_free(s_verify_t *v)
{
    if (!v)
        return;
    s_restore_free(&v->shadow);
    free(v->shadow.id);
    free(v->shadow.ckpt_dir);
    free(v->shadow.origin);
    free(v->shadow.ck_done);
    free(v->from);
    free(v);
}

static void *s_verify_main(void *arg)
{
    s_verify_t *v = arg;
    v->rc = SL_STATE;
    s_nice_thread();
    /* test builds: a slow disk, to show the loop does not wait for it */
    char what[200];
    snprintf(what, sizeof what, "job %s: %s", v->shadow.id,
             v->from ? "checking its savepoint" : "verifying checkpoints");
    s_test_delay(v->from ? "SLUICE_MASTER_SAVEPOINT_DELAY_MS" : "SLUICE_MASTER_VERIFY_DELAY_MS",
                 &v->abandon, what);
    if (atomic_load(&v->abandon))
        snprintf(v->why, sizeof v->why, "abandoned");
    else if (v->from)
        v->rc = s_restore_load(&v->shadow, v->from, true, v->why, sizeof v->why);
    else
        v->rc = s_ck_choose(&v->shadow, v->why, sizeof v->why);
    int fd = v->wake_fd; /* v is the loop's once done is set */
    atomic_store(&v->done, true);
    char c = 1;
    ssize_t n = write(fd, &c, 1); /* a full pipe has a wake-up pending already */
    (void)n;
    return NULL;
}

/* Starts choosing j's checkpoint (from: checking that savepoint) in a
 * thread (j->verify) that writes a byte to wake_fd when done; SL_OK, or an
 * error when no thread could be started (nothing changed then). */
static int s_verify_start(s_job_t *j, const char *from, int wake_fd)
{
    s_verify_t *v = calloc(1, sizeof *v);
    if (!v)
        return SL_NOMEM;
    atomic_init(&v->done, false);
    atomic_init(&v->abandon, false);
    v->wake_fd = wake_fd;
    if (from && !(v->from = strdup(from))) {
        s_verify_free(v);
        return SL_NOMEM;
    }
    v->shadow.id = strdup(j->id);
    v->shadow.plan = j->plan;
    v->shadow.ckpt_dir = strdup(j->ckpt_dir);
    v->shadow.origin = j->origin ? strdup(j->origin) : NULL;
    v->shadow.ck_done = malloc(((size_t)j->nck_done + 1) * sizeof *j->ck_done);
    v->shadow.nck_done = j->nck_done;
    if (!v->shadow.id || !v->shadow.ckpt_dir || !v->shadow.ck_done ||
        (j->origin && !v->shadow.origin)) {
        s_verify_free(v);
        return SL_NOMEM;
    }
    if (j->nck_done)
        memcpy(v->shadow.ck_done, j->ck_done, (size_t)j->nck_done * sizeof *j->ck_done);
    if (pthread_create(&v->thread, NULL, s_verify_main, v) != 0) {
        s_verify_free(v);
        return SL_LIMIT;
    }
    j->verify = v;
    return SL_OK;
}

/* Tells j's verifier, if any, that its result is not wanted (it may end
 * sooner); the loop still reaps it. */
static void s_verify_abandon(s_job_t *j)
{
    if (j->verify)
        atomic_store(&j->verify->abandon, true);
}

/* Stops waiting for j's verifier: joins it (it ends within one
 * checkpoint's reading) and frees its result. */
static void s_verify_drop(s_job_t *j)
{
    if (!j->verify)
        return;
    atomic_store(&j->verify->abandon, true);
    pthread_join(j->verify->thread, NULL);
    s_verify_free(j->verify);
    j->verify = NULL;
}

/* Moves the verifier's choice into j (the thread has ended). */
static void s_verify_adopt(s_job_t *j, s_verify_t *v)
{
    s_restore_free(j);
    s_job_t *w = &v->shadow;
    j->restore = w->restore;
    j->restore_refs = w->restore_refs;
    j->restore_strs = w->restore_strs;
    j->nrestore = w->nrestore;
    j->restore_id = w->restore_id;
    j->restore_dir = w->restore_dir;
    j->rescale = w->rescale;
    w->restore = NULL;
    w->restore_refs = NULL;
    w->restore_strs = NULL;
    w->nrestore = 0;
    w->restore_dir = NULL;
}

/* ---- failures and restarts ---------------------------------------------------- */

/* The job's current attempt failed: restart it per its strategy, or fail it. */
static void s_job_failed(sl_master_t *m, s_job_t *j, const char *cause)
{
    if (j->state != SLUICE__JOB_STATE_KIND__JOB_RUNNING)
        return;
    const sl_spec_t *sp = j->plan->spec;
    uint64_t now = s_mono_ms();
    char **nf = realloc(j->failures, (size_t)(j->nfailures + 1) * sizeof *nf);
    uint64_t *nt = realloc(j->fail_ms, (size_t)(j->nfailures + 1) * sizeof *nt);
    if (nf)
        j->failures = nf;
    if (nt)
        j->fail_ms = nt;
    if (nf && nt) {
        char buf[1400];
        snprintf(buf, sizeof buf, "attempt %u: %s", (unsigned)j->attempt, cause);
        j->failures[j->nfailures] = strdup(buf);
        j->fail_ms[j->nfailures++] = now;
    }
    int64_t delay = sp->restart_delay_ms;
    const char *exhausted = NULL;
    char ex[200];
    switch (sp->restart) {
    case SL_RESTART_NONE:
        exhausted = "no restart strategy";
        break;
    case SL_RESTART_FIXED_DELAY:
        if (j->nfailures > sp->restart_attempts) {
            snprintf(ex, sizeof ex, "restart strategy exhausted after %d restarts",
                     sp->restart_attempts);
            exhausted = ex;
        }
        break;
    case SL_RESTART_EXPONENTIAL_DELAY:
        for (int i = 1; i < j->nfailures && delay < sp->restart_max_delay_ms; i++)
            delay *= 2;
        if (delay > sp->restart_max_delay_ms)
            delay = sp->restart_max_delay_ms;
        if (sp->restart_attempts_set && j->nfailures > sp->restart_attempts) {
            snprintf(ex, sizeof ex, "restart strategy exhausted after %d restarts",
                     sp->restart_attempts);
            exhausted = ex;
        }
        break;
    case SL_RESTART_FAILURE_RATE: {
        int recent = 0;
        for (int i = 0; i < j->nfailures; i++)
            recent += now - j->fail_ms[i] <= (uint64_t)sp->restart_interval_ms;
        if (recent > sp->restart_max_failures) {
            snprintf(ex, sizeof ex, "failure rate exceeded: %d failures within %lld ms", recent,
                     sp->restart_interval_ms);
            exhausted = ex;
        }
        break;
    }
    }
    if (exhausted) {
        char msg[1600];
        if (sp->restart == SL_RESTART_NONE)
            snprintf(msg, sizeof msg, "%s", cause);
        else
            snprintf(msg, sizeof msg, "%s; last failure: %s", exhausted, cause);
        s_ck_abort(m, j, "the job failed");
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, msg);
        return;
    }
    fprintf(stderr, "sluice-master: job %s attempt %u failed (%s); restarting in %lld ms\n", j->id,
            (unsigned)j->attempt, cause, (long long)delay);
    s_ck_abort(m, j, "the attempt failed");
    for (int s = 0; s < j->nslots; s++)
        if (j->slot_worker[s] >= 0)
            m->workers[j->slot_worker[s]].used--;
    j->nslots = 0;
    s_send_cancel(m, j); /* fences the old attempt: its reports are ignored from now on */
    j->state = SLUICE__JOB_STATE_KIND__JOB_RESTARTING;
    j->restart_at = now + (uint64_t)delay;
    s_persist(m, j);
    free(j->reason);
    j->reason = strdup("restarting after a failure");
}

/* A restart's checkpoint is chosen (rc from s_ck_choose, j->restore
 * filled): deploy the next attempt, or fail the job when none is usable. */
static void s_restart_chosen(sl_master_t *m, s_job_t *j, int rc, const char *why)
{
    if (rc != SL_OK) {
        j->state = SLUICE__JOB_STATE_KIND__JOB_RUNNING; /* so s_end_job frees nothing twice */
        j->nslots = 0;
        s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FAILED, why);
        return;
    }
    if (j->restore_id && !j->nck_done && j->origin)
        fprintf(stderr,
                "sluice-master: job %s restarts from savepoint %s (no checkpoint of its own "
                "completed yet)\n",
                j->id, j->origin);
    else if (j->restore_id)
        fprintf(stderr, "sluice-master: job %s restarts from checkpoint %llu\n", j->id,
                (unsigned long long)j->restore_id);
    s_try_schedule(m, j);
}

/* Periodic work: restarts that are due, checkpoints to trigger or give up. */
static void s_tick_jobs(sl_master_t *m)
{
    uint64_t now = s_mono_ms();
    for (int i = 0; i < m->njobs; i++) {
        s_job_t *j = m->jobs[i];
        for (s_io_t *io; (io = s_io_take(j));) {
            if (io->kind == S_IO_METADATA && !atomic_load(&io->abandon))
                s_ck_written(m, j, io);
            if (io->kind == S_IO_SP_MARK && io->rc != SL_OK && j->sp_wanted) {
                sl_msg_send_error(m->sock, j->sp_rid, j->sp_rlen, j->sp_req, SL_IO,
                                  "the savepoint of job %s failed: %s", j->id, io->why);
                j->sp_wanted = false;
                j->sp_marked = 0;
            }
            s_io_free(io);
        }
        if (j->verify) {
            /* a restart's checkpoint being chosen: the job waits, RESTARTING */
            if (!atomic_load(&j->verify->done))
                continue;
            s_verify_t *v = j->verify;
            pthread_join(v->thread, NULL);
            j->verify = NULL;
            if (j->state != SLUICE__JOB_STATE_KIND__JOB_RESTARTING) { /* canceled meanwhile */
                s_verify_free(v);
                continue;
            }
            int rc = v->rc;
            char why[4800];
            snprintf(why, sizeof why, "%s", v->why);
            if (rc == SL_OK)
                s_verify_adopt(j, v);
            s_verify_free(v);
            s_restart_chosen(m, j, rc, why);
            continue;
        }
        if (j->state == SLUICE__JOB_STATE_KIND__JOB_RESTARTING && now >= j->restart_at) {
            if (j->nck_done && s_verify_start(j, NULL, m->wake[1]) == SL_OK) {
                fprintf(stderr, "sluice-master: job %s: verifying checkpoints to restart from\n",
                        j->id);
                continue; /* polled above */
            }
            char why[4800] = "";
            s_restart_chosen(m, j, s_ck_choose(j, why, sizeof why), why);
            continue;
        }
        if (j->state == SLUICE__JOB_STATE_KIND__JOB_RUNNING && !j->started && j->deploy_ms &&
            now - j->deploy_ms > S_DEPLOY_TIMEOUT_MS) {
            char why[160];
            snprintf(why, sizeof why,
                     "deploy timed out: %d of %d subtasks reported within %d ms (see the workers' "
                     "logs)",
                     j->deployed, j->ntasks, S_DEPLOY_TIMEOUT_MS);
            s_job_failed(m, j, why);
            continue;
        }
        if (j->state != SLUICE__JOB_STATE_KIND__JOB_RUNNING || !j->started || !j->ckpt_dir)
            continue;
        const sl_spec_t *sp = j->plan->spec;
        if (j->ck_pending && !j->ck_writing &&
            now - j->ck_started > (uint64_t)sp->ckpt_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "not acknowledged within %lld ms", sp->ckpt_timeout_ms);
            s_ck_abort(m, j, why);
        }
        uint64_t since = j->ck_last_end ? j->ck_last_end : j->ck_started;
        if (!j->ck_pending && !j->io && /* no checkpoint while its files are worked on */
            (j->sp_wanted || (now - since >= (uint64_t)sp->ckpt_min_pause_ms &&
                              now - j->ck_started >= (uint64_t)sp->ckpt_interval_ms))) {
            if (j->sp_wanted && j->sp_marked != j->ck_next + 1)
                s_sp_mark(m, j); /* first the checkpoint's directory says it is a savepoint */
            else
                s_ck_trigger(m, j);
        }
    }
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
                s_job_failed(m, j, msg ? msg : "worker lost");
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

/* j is planned (and its savepoint, if any, checked): it joins the jobs,
 * and the client hears its id. */
static void s_submit_accept(sl_master_t *m, s_job_t *j, const void *rid, size_t rlen, uint64_t req)
{
    if (j->restore_dir)
        fprintf(stderr, "sluice-master: job %s starts from savepoint %s%s\n", j->id, j->restore_dir,
                j->rescale ? " (at another parallelism or chaining)" : "");
    j->state = SLUICE__JOB_STATE_KIND__JOB_CREATED;
    j->start_ms = s_wall_ms();
    m->jobs[m->njobs++] = j;
    s_persist(m, j);
    Sluice__Envelope env;
    sl_msg_init(&env, req);
    Sluice__SubmitReply rep = SLUICE__SUBMIT_REPLY__INIT;
    rep.job_id = j->id;
    env.body_case = SLUICE__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &rep;
    sl_msg_send(m->sock, rid, rlen, &env);
    s_schedule_waiting(m);
}

/* Jobs submitted from a savepoint whose check has ended: accepted, or the
 * client hears why not. */
static void s_tick_subs(sl_master_t *m)
{
    for (int i = 0; i < m->nsubs;) {
        s_job_t *j = m->subs[i];
        s_verify_t *v = j->verify;
        if (!atomic_load(&v->done)) {
            i++;
            continue;
        }
        pthread_join(v->thread, NULL);
        j->verify = NULL;
        memmove(&m->subs[i], &m->subs[i + 1], (size_t)(m->nsubs - i - 1) * sizeof *m->subs);
        m->nsubs--;
        s_job_t **nj =
            v->rc == SL_OK ? realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *nj) : NULL;
        if (nj)
            m->jobs = nj;
        if (v->rc != SL_OK || !nj) {
            sl_msg_send_error(m->sock, v->rid, v->rlen, v->req, v->rc ? SL_DATA : SL_NOMEM,
                              "cannot start from savepoint: %s", v->rc ? v->why : "out of memory");
            s_verify_free(v);
            s_job_free(j);
            continue;
        }
        s_verify_adopt(j, v);
        s_submit_accept(m, j, v->rid, v->rlen, v->req);
        s_verify_free(v);
    }
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
    j->origin = sj->from_savepoint[0] ? strdup(sj->from_savepoint) : NULL;
    s_job_t **nj = realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *nj);
    if (!j->id || !j->name || !j->spec_file || !j->spec_text || !j->pnames || !j->pvalues || !nj ||
        (sj->from_savepoint[0] && !j->origin)) {
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
    if (j->plan->spec->ckpt_interval_ms > 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/checkpoints", m->state_dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_IO, "cannot create %s: %s", dir,
                              strerror(errno));
            goto out;
        }
        snprintf(dir, sizeof dir, "%s/checkpoints/%s", m->state_dir, j->id);
        sl_rmtree(dir); /* a job id is new: anything there is from an earlier master */
        if (mkdir(dir, 0755) != 0 || !(j->ckpt_dir = strdup(dir))) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_IO, "cannot create %s: %s", dir,
                              strerror(errno));
            goto out;
        }
    }
    if (sj->from_savepoint[0]) {
        char why[4800];
        if (!j->ckpt_dir) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_STATE,
                              "a job started from a savepoint must take checkpoints: add "
                              "`checkpoint: {interval: ...}` to its spec");
            goto out;
        }
        /* the savepoint is read and hashed off the loop; s_tick_subs answers */
        s_job_t **ns = realloc(m->subs, (size_t)(m->nsubs + 1) * sizeof *ns);
        if (ns)
            m->subs = ns;
        if (ns && s_verify_start(j, sj->from_savepoint, m->wake[1]) == SL_OK) {
            memcpy(j->verify->rid, rid, rlen);
            j->verify->rlen = rlen;
            j->verify->req = req;
            m->subs[m->nsubs++] = j;
            j = NULL;
            goto out;
        }
        if (s_restore_load(j, sj->from_savepoint, true, why, sizeof why) != SL_OK) {
            sl_msg_send_error(m->sock, rid, rlen, req, SL_DATA, "cannot start from savepoint: %s",
                              why);
            goto out;
        }
    }
    s_submit_accept(m, j, rid, rlen, req);
    j = NULL;
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
    j->ck_started = s_mono_ms(); /* the first checkpoint comes an interval after the start */
    j->ck_last_end = 0;
    for (int t = 0; t < j->ntasks; t++) {
        int wi = j->tasks[t].worker;
        if (sent[wi])
            continue;
        sent[wi] = true;
        Sluice__Envelope env;
        sl_msg_init(&env, ++m->next_req);
        Sluice__StartTasks st = SLUICE__START_TASKS__INIT;
        st.job_id = j->id;
        st.attempt = j->attempt;
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
    if (ts->attempt != j->attempt)
        return; /* an earlier attempt, fenced off */
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
            t->metrics[k].lag_partitions = (char *)"";
        }
        /* a source's lag per partition (the only string that changes) */
        const char *lag = ts->metrics[0]->lag_partitions;
        if (lag && (!t->lag_text || strcmp(lag, t->lag_text) != 0)) {
            free(t->lag_text);
            t->lag_text = *lag ? strdup(lag) : NULL;
        }
        if (t->lag_text)
            t->metrics[0].lag_partitions = t->lag_text;
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
    if (s_terminal(j->state)) {
        /* A sink task that was still opening when its job failed for good may
         * have made its staging directory again after the job dropped it:
         * dropped again once the job's last task is down. */
        if (!t_terminal && j->state != SLUICE__JOB_STATE_KIND__JOB_FINISHED && s_tasks_down(j))
            s_drop_staging(m, j);
        /* Likewise a task may have written into a given-up checkpoint after
         * its deletion and its acknowledgement's sweep: once every task is
         * down, no checkpoint directory without _metadata stays. */
        s_io_t *io =
            !t_terminal && j->ckpt_dir && s_tasks_down(j) ? s_io_new(j, S_IO_DELETE) : NULL;
        if (io && !(io->partial = strdup(j->ckpt_dir)))
            s_io_free(io);
        else if (io)
            s_io_push(m, j, io);
        return;
    }
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_CANCELED) {
        /* Nobody asked (the job is still running): its worker is stopping. */
        char msg[512];
        snprintf(msg, sizeof msg, "task %d.%d was canceled by worker %s (the worker is stopping)",
                 t->chain, t->subtask, t->worker >= 0 ? m->workers[t->worker].id : "?");
        s_job_failed(m, j, msg);
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
        s_job_failed(m, j, msg ? msg : ts->error);
        free(msg);
        return;
    }
    if (ts->state == SLUICE__TASK_STATE_KIND__TASK_FINISHED && j->ck_pending) {
        /* ended without acknowledging the checkpoint in flight: it had
         * ended before its barrier, so it restores as finished */
        s_ack_t *k = &j->ck_acks[t - j->tasks];
        if (!k->acked)
            k->finished = true;
        s_ck_maybe_complete(m, j);
    }
    for (int i = 0; i < j->ntasks; i++)
        if (j->tasks[i].state != SLUICE__TASK_STATE_KIND__TASK_FINISHED)
            return;
    sl_failpoint("master-before-finished");
    s_end_job(m, j, SLUICE__JOB_STATE_KIND__JOB_FINISHED, NULL);
    s_schedule_waiting(m);
}

/* A JobStatus body and the arrays it points to. */
typedef struct {
    Sluice__JobStatus st;
    Sluice__TaskStatus *ts, **tsp;
    Sluice__SubtaskRef *refs;
    Sluice__OperatorMetrics *om, **omp;
    Sluice__CheckpointInfo **cki;
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
    st->attempt = j->attempt;
    st->n_failures = (size_t)j->nfailures;
    st->failures = j->failures;
    st->checkpoint_id = j->nck_done ? j->ck_done[j->nck_done - 1] : 0;
    st->checkpoints = j->ncompleted;
    st->restored_from = j->restored_from;
    s->cki = calloc((size_t)j->nckinfo + 1, sizeof *s->cki);
    if (!s->cki)
        return SL_NOMEM;
    for (int i = 0; i < j->nckinfo; i++) {
        j->ckinfo[i].path = j->ckinfo_paths[i];
        s->cki[i] = &j->ckinfo[i];
    }
    st->n_checkpoint_list = (size_t)j->nckinfo;
    st->checkpoint_list = s->cki;
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
                    o->restored_bytes_local += j->tasks[i].metrics[k].restored_bytes_local;
                    o->restored_bytes_remote += j->tasks[i].metrics[k].restored_bytes_remote;
                    o->restore_ms += j->tasks[i].metrics[k].restore_ms;
                    if (j->tasks[i].metrics[k].has_lag) {
                        o->has_lag = true;
                        o->lag += j->tasks[i].metrics[k].lag;
                    }
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
    free(s->cki);
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
    case SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK:
        s_on_ack(m, rid, rlen, env->checkpoint_ack);
        break;
    case SLUICE__ENVELOPE__BODY_SAVEPOINT_REQUEST:
        s_on_savepoint(m, rid, rlen, req, env->savepoint_request);
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

/* A gap between two checks longer than this means the master itself did
 * not run (stopped, starved, blocked in a slow disk call). */
#define S_STALL_MS 250

static void s_check_heartbeats(sl_master_t *m)
{
    uint64_t now = s_mono_ms();
    uint64_t gap = m->last_check ? now - m->last_check : 0;
    m->last_check = now;
    if (gap > S_STALL_MS) {
        /* Time the master did not run says nothing about the workers: their
         * heartbeats of that time may still be queued, unread. It is credited
         * to every worker, so a worker is lost only after the timeout passed
         * while the master was listening. */
        for (int i = 0; i < m->nworkers; i++) {
            uint64_t seen = m->workers[i].last_seen + gap;
            m->workers[i].last_seen = seen < now ? seen : now;
        }
        if (gap >= (uint64_t)m->o.heartbeat_timeout_ms)
            fprintf(stderr,
                    "sluice-master: the master did not run for %llu ms; "
                    "it is not counted against the workers' heartbeats\n",
                    (unsigned long long)gap);
    }
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
        zmq_pollitem_t items[2] = {{.socket = m->sock, .events = ZMQ_POLLIN},
                                   {.fd = m->wake[0], .events = ZMQ_POLLIN}};
        zmq_poll(items, 2, 50);
        char drain[64];
        while (read(m->wake[0], drain, sizeof drain) > 0)
            ; /* a thread finished its file work: looked at below */
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
        s_tick_jobs(m);
        s_tick_subs(m);
    }
    for (int i = 0; i < m->nsubs; i++) { /* savepoints still being checked */
        s_verify_t *v = m->subs[i]->verify;
        atomic_store(&v->abandon, true);
        sl_msg_send_error(m->sock, v->rid, v->rlen, v->req, SL_STATE,
                          "the master is stopping: job %s was not started", m->subs[i]->id);
    }
    s_broadcast_shutdown(m);
    atomic_store(&m->ended, true);
    return NULL;
}

/* Ends the file thread, then closes the wake-up pipe it writes to. */
static void s_close_wake(sl_master_t *m)
{
    s_io_end(m);
    close(m->wake[0]);
    close(m->wake[1]);
}

/* Removes a temporary state directory we made (its plugins, then it). */
static void s_remove_state_dir(sl_master_t *m)
{
    if (m->own_state_dir)
        sl_rmtree(m->state_dir); /* plugins, checkpoints */
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
        char tmpl[4096];
        if (sl_fs_mkdtemp("sluice-master", tmpl, sizeof tmpl) == 0) {
            m->state_dir = strdup(tmpl);
            m->own_state_dir = true;
        }
    }
    if (!m->state_dir) {
        snprintf(err, cap, "cannot create a state directory");
        free(m);
        return NULL;
    }
    if (pipe(m->wake) != 0 || fcntl(m->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(m->wake[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(m->wake[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(m->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, cap, "cannot create the master's wake-up pipe: %s", strerror(errno));
        s_remove_state_dir(m);
        free(m);
        return NULL;
    }
    if (!s_io_begin(m))
        fprintf(stderr, "sluice-master: cannot start the file thread: checkpoint files are "
                        "written in the control loop\n");
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
        s_close_wake(m);
        s_remove_state_dir(m);
        free(m);
        return NULL;
    }
    s_load_jobs(m);
    size_t elen = sizeof m->endpoint;
    if (zmq_getsockopt(m->sock, ZMQ_LAST_ENDPOINT, m->endpoint, &elen) != 0)
        snprintf(m->endpoint, sizeof m->endpoint, "%s", o->endpoint);
    if (pthread_create(&m->thread, NULL, s_main, m) != 0) {
        snprintf(err, cap, "cannot start the master thread");
        zmq_close(m->sock);
        s_io_end(m);
        for (int i = 0; i < m->njobs; i++)
            s_job_free(m->jobs[i]);
        free(m->jobs);
        m->njobs = 0;
        s_close_wake(m);
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
    s_io_end(m); /* the jobs' file work ends before they are freed */
    zmq_close(m->sock);
    for (int i = 0; i < m->njobs; i++)
        s_job_free(m->jobs[i]);
    free(m->jobs);
    for (int i = 0; i < m->nsubs; i++)
        s_job_free(m->subs[i]); /* joins its abandoned check */
    free(m->subs);
    s_close_wake(m); /* every thread that writes to it is joined */
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
