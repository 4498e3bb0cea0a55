/* worker.c — the worker's control loop (see worker.h).
 *
 * Invariants:
 *  1. Every deployed subtask gets exactly one final TaskState (FINISHED,
 *     FAILED or CANCELED) sent to the master, after its thread has ended.
 *  2. A job's plan lives until the last of its subtasks on this worker has
 *     ended; its tasks only borrow it.
 *  3. Cancel is a flag per job that tasks poll; stopping the worker cancels
 *     every job and joins every task thread before the loop exits. */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/msg.h"
#include "sluice/plan.h"
#include "sluice/plugin.h"
#include "task.h"

typedef struct s_job s_job_t;

/* A state file of the restored checkpoint that a subtask reads when its
 * thread starts: never in the control loop, whose heartbeats must not wait
 * for megabytes to be read and hashed. */
typedef struct {
    char *path;      /* <restore dir>/<file> */
    uint64_t size;   /* recorded by the master */
    char sha256[65]; /* hex, recorded by the master */
} s_state_file_t;

typedef struct {
    s_job_t *job; /* owner */
    int chain, subtask;
    sl_task_t *task;
    pthread_t thread;
    bool started;                /* thread was created */
    atomic_bool done;            /* set by the task thread as its last act */
    int rc;                      /* result of sl_task_run */
    bool reported;               /* final state sent */
    sl_task_restore_t *restores; /* state files to restore: their bytes, once the task's thread
                                    read and verified them (env.restores points here) */
    s_state_file_t *files;       /* where those files are and what they must hold */
    uint8_t **bufs;              /* their bytes (freed by the task's thread when it ends) */
    int nbufs;
    char load_err[1024]; /* why the task's thread could not read its state ("" = it could) */
    char *state_dir;     /* local rocksdb state: <cache>/state/<job>-a<attempt>-<chain>-<subtask> */
    char *restore_dir;   /* the restored checkpoint's directory (a copy), or NULL */
} s_slot_t;

struct s_job {
    char *id;
    uint32_t attempt; /* the master's execution attempt of the job */
    char *ckpt_dir;   /* <root>/<job> where snapshots go, or NULL */
    sl_spec_t *spec;
    sl_plan_t *plan;
    sl_plugin_t *plugin; /* the job's plugin (cached by hash), or NULL */
    char **endpoints;    /* data endpoint of every (chain, subtask), by index */
    int *ep_base;        /* chain -> first index in endpoints */
    char **local_eps;    /* inproc endpoint of each (chain, subtask) run here (tcp
                          * data-bind only), else NULL: local channels skip TCP */
    s_slot_t *tasks;
    int ntasks;
    atomic_bool cancel;
    bool started;    /* StartTasks received, threads created */
    char *local_dir; /* <cache>/local/<job>: local copies of checkpoints, or NULL */
    bool ended;      /* the master said the job ended for good: drop local_dir at the end */
    s_job_t *next;
};

struct sl_worker {
    sl_worker_opts_t o; /* strings below are our copies */
    char *master, *id, *data_bind, *advertise_host;
    char *cache_dir;    /* plugins by content hash */
    bool own_cache_dir; /* a temporary one we made (and remove) */
    pthread_t thread;
    atomic_bool stop;
    atomic_bool ended;    /* the loop has returned */
    void *sock;           /* DEALER to the master */
    uint32_t batch_bytes; /* batch capacity of every task (SLUICE_BATCH_BYTES; 0 = default) */
    s_job_t *jobs;
    uint64_t next_req;
    /* The janitor thread deletes what the loop discards (s_discard): */
    pthread_t janitor;
    bool janitor_started;    /* it runs (else s_discard deletes in place) */
    pthread_mutex_t jlock;   /* guards the two below */
    pthread_cond_t jcond;    /* signalled when either changes */
    bool jpending, jstop;    /* something to delete; the thread must end */
    unsigned long long jseq; /* names of the loop's entries in the trash */
};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static void s_endpoint(void *arg, int chain, int subtask, char *buf, size_t cap)
{
    s_job_t *j = arg;
    int i = j->ep_base[chain] + subtask;
    snprintf(buf, cap, "%s", j->local_eps[i] ? j->local_eps[i] : j->endpoints[i]);
}

static bool s_is_tcp(const sl_worker_t *w)
{
    return strncmp(w->data_bind, "tcp://", 6) == 0;
}

/* Where the in-gate of (chain, subtask) binds. */
static void s_bind_endpoint(const sl_worker_t *w, const s_job_t *j, int chain, int subtask,
                            char *buf, size_t cap)
{
    if (s_is_tcp(w))
        snprintf(buf, cap, "%s:*", w->data_bind);
    else
        snprintf(buf, cap, "%s/%s/%u/%d/%d", w->data_bind, j->id, (unsigned)j->attempt, chain,
                 subtask);
}

/* The endpoint other workers use for a bound one: a tcp wildcard address
 * is replaced by the advertised host, keeping the port. */
static void s_advertised(const sl_worker_t *w, const char *bound, char *buf, size_t cap)
{
    const char *port = s_is_tcp(w) ? strrchr(bound, ':') : NULL;
    if (port && port > bound + 6)
        snprintf(buf, cap, "tcp://%s%s", w->advertise_host, port);
    else
        snprintf(buf, cap, "%s", bound);
}

static void s_discard(sl_worker_t *w, const char *dir);

static void s_job_destroy(sl_worker_t *w, s_job_t *j)
{
    for (int i = 0; i < j->ntasks; i++) {
        sl_task_destroy(&j->tasks[i].task);
        for (int k = 0; k < j->tasks[i].nbufs; k++) {
            free(j->tasks[i].bufs[k]);
            free(j->tasks[i].files[k].path);
        }
        free(j->tasks[i].bufs);
        free(j->tasks[i].files);
        free(j->tasks[i].restores);
        free(j->tasks[i].state_dir);
        free(j->tasks[i].restore_dir);
    }
    free(j->tasks);
    if (j->ended && j->local_dir)
        s_discard(w, j->local_dir); /* what its last tasks wrote after the end was announced */
    free(j->local_dir);
    free(j->ckpt_dir);
    if (j->endpoints && j->plan) {
        int total = j->ep_base[j->plan->nchains];
        for (int i = 0; i < total; i++) {
            free(j->endpoints[i]);
            if (j->local_eps)
                free(j->local_eps[i]);
        }
    }
    free(j->endpoints);
    free(j->local_eps);
    free(j->ep_base);
    sl_plan_destroy(&j->plan);
    sl_spec_destroy(&j->spec);
    sl_plugin_close(&j->plugin); /* after the tasks: they ran its code */
    free(j->id);
    free(j);
}

/* ---- reporting ------------------------------------------------------------ */

/* Sends to the master without ever blocking: a master that is gone (or not
 * there yet) must not hang the worker; what it missed it learns again from
 * the next report or registration. */
static void s_send(sl_worker_t *w, const Sluice__Envelope *env)
{
    int rc = sl_msg_send_flags(w->sock, ZMQ_DONTWAIT, NULL, 0, env);
    if (rc != SL_OK && rc != SL_TIMEOUT)
        fprintf(stderr, "sluice-worker %s: cannot send %s to the master: %s\n", w->id,
                sl_msg_kind_name(env), sl_strerror(rc));
}

static void s_send_state_ep(sl_worker_t *w, s_slot_t *t, Sluice__TaskStateKind state,
                            const char *error, const char *endpoint)
{
    Sluice__Envelope env;
    sl_msg_init(&env, ++w->next_req);
    Sluice__TaskState ts = SLUICE__TASK_STATE__INIT;
    Sluice__SubtaskRef ref = SLUICE__SUBTASK_REF__INIT;
    ref.chain = (uint32_t)t->chain;
    ref.subtask = (uint32_t)t->subtask;
    ts.job_id = t->job->id;
    ts.attempt = t->job->attempt;
    ts.ref = &ref;
    ts.state = state;
    if (endpoint)
        ts.data_endpoint = (char *)endpoint;
    char errbuf[1024] = "";
    if (error) {
        snprintf(errbuf, sizeof errbuf, "%s", error);
        sl_msg_sanitize_utf8(errbuf);
        ts.error = errbuf;
    }
    int nops = t->task ? sl_task_nops(t->task) : 0;
    Sluice__OperatorMetrics m[64], *mp[64];
    sl_op_metrics_t om;
    char lagbuf[256] = ""; /* only the head (a source) reports a lag */
    if (nops > 64)
        nops = 64;
    for (int i = 0; i < nops; i++) {
        sl_task_metrics(t->task, i, &om);
        m[i] = (Sluice__OperatorMetrics)SLUICE__OPERATOR_METRICS__INIT;
        m[i].op = (char *)om.op;
        m[i].records_in = om.records_in;
        m[i].records_out = om.records_out;
        m[i].busy_ns = om.busy_ns;
        m[i].errors = om.errors;
        m[i].records_late = om.late;
        m[i].restored_bytes_local = om.restored_local;
        m[i].restored_bytes_remote = om.restored_remote;
        m[i].restore_ms = om.restore_ns / 1000000;
        int64_t wm = sl_task_watermark(t->task);
        m[i].has_watermark = wm != SL_WM_MIN;
        m[i].watermark = wm;
        m[i].has_lag = om.has_lag;
        m[i].lag = om.lag;
        m[i].lag_partitions = om.has_lag ? lagbuf : (char *)"";
        if (om.has_lag)
            snprintf(lagbuf, sizeof lagbuf, "%s", om.lag_detail);
        m[i].backpressure_ns = om.backpressure_ns;
        mp[i] = &m[i];
    }
    ts.n_metrics = (size_t)nops;
    ts.metrics = mp;
    env.body_case = SLUICE__ENVELOPE__BODY_TASK_STATE;
    env.task_state = &ts;
    s_send(w, &env);
}

static void s_send_state(sl_worker_t *w, s_slot_t *t, Sluice__TaskStateKind state,
                         const char *error)
{
    s_send_state_ep(w, t, state, error, NULL);
}

static void s_report_running(sl_worker_t *w)
{
    for (s_job_t *j = w->jobs; j; j = j->next)
        for (int i = 0; i < j->ntasks; i++)
            if (j->tasks[i].started && !atomic_load(&j->tasks[i].done))
                s_send_state(w, &j->tasks[i], SLUICE__TASK_STATE_KIND__TASK_RUNNING, NULL);
}

static void s_send_ack(sl_worker_t *w, s_job_t *j, s_slot_t *t);

/* Joins ended task threads, reports them, frees jobs with nothing left. */
static void s_reap(sl_worker_t *w)
{
    s_job_t **pp = &w->jobs;
    while (*pp) {
        s_job_t *j = *pp;
        if (!j->started && !atomic_load(&j->cancel)) {
            pp = &j->next; /* deployed, waiting for StartTasks */
            continue;
        }
        int live = 0;
        for (int i = 0; i < j->ntasks; i++) {
            s_slot_t *t = &j->tasks[i];
            if (t->reported)
                continue;
            if (t->started && !atomic_load(&t->done)) {
                live++;
                continue;
            }
            if (t->started)
                pthread_join(t->thread, NULL);
            s_send_ack(w, j, t); /* its last acknowledgement before its end */
            if (!t->started && t->rc == SL_OK)
                t->rc = SL_CANCELED; /* canceled before it was started */
            Sluice__TaskStateKind st = t->rc == SL_OK ? SLUICE__TASK_STATE_KIND__TASK_FINISHED
                                       : t->rc == SL_CANCELED
                                           ? SLUICE__TASK_STATE_KIND__TASK_CANCELED
                                           : SLUICE__TASK_STATE_KIND__TASK_FAILED;
            const char *err = NULL;
            if (st == SLUICE__TASK_STATE_KIND__TASK_FAILED)
                err = t->load_err[0]                         ? t->load_err
                      : t->task && sl_task_error(t->task)[0] ? sl_task_error(t->task)
                                                             : sl_strerror(t->rc);
            if (st == SLUICE__TASK_STATE_KIND__TASK_FAILED)
                atomic_store(&j->cancel, true); /* the master cancels the rest too */
            s_send_state(w, t, st, err);
            t->reported = true;
        }
        if (live == 0) {
            *pp = j->next;
            s_job_destroy(w, j);
        } else {
            pp = &j->next;
        }
    }
}

/* ---- deploy ------------------------------------------------------------------ */

/* Reads the task's state files of the restored checkpoint and checks each
 * against the size and hash the master recorded (a corrupt file fails the
 * task before it restores anything; it is never loaded). In the task's
 * thread: 100 MB take seconds to read and hash. */
static int s_read_restores(s_slot_t *t)
{
    for (int i = 0; i < t->nbufs; i++) {
        if (atomic_load(&t->job->cancel))
            return SL_CANCELED;
        char msg[4800];
        int rc = sl_fs_read_checked(t->files[i].path, t->files[i].size, t->files[i].sha256,
                                    &t->bufs[i], msg, sizeof msg);
        if (rc) {
            snprintf(t->load_err, sizeof t->load_err, "checkpoint state %s", msg);
            return rc;
        }
        t->restores[i].data = t->bufs[i];
        t->restores[i].len = t->files[i].size;
    }
    return SL_OK;
}

/* How much nicer than the control thread a task thread runs. The control
 * thread's heartbeats tell the master the worker is alive: on a machine
 * with more busy threads than cores it must not queue behind the worker's
 * own task threads for hundreds of ms (they are as many as the slots, and
 * busy, while it wakes every 20 ms for a few microseconds). Linux nice
 * values are per thread; they weigh threads of one scheduling group
 * (session or cgroup) against each other, not against other groups. */
#define S_TASK_NICE 5

/* The task's thread: it reads its state, runs the task, then frees what
 * the task holds (keyed state, restored bytes, local state files) itself,
 * so that reaping it costs the control loop nothing. */
static void *s_task_main(void *arg)
{
    s_slot_t *t = arg;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0); /* Linux: this thread's */
    if (errno == 0 && nice < 19)
        (void)setpriority(PRIO_PROCESS, 0, nice + S_TASK_NICE < 19 ? nice + S_TASK_NICE : 19);
    struct timespec r0, r1, c0, c1; /* wall and CPU time of the reading */
    clock_gettime(CLOCK_MONOTONIC, &r0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    t->rc = s_read_restores(t);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &r1);
    if (t->nbufs && t->rc == SL_OK) {
        uint64_t bytes = 0;
        for (int i = 0; i < t->nbufs; i++)
            bytes += t->files[i].size;
        fprintf(stderr,
                "sluice-worker: task %d.%d: %llu bytes of state files read and verified in %.0f "
                "ms, %.0f ms CPU\n",
                t->chain, t->subtask, (unsigned long long)bytes,
                (double)(r1.tv_sec - r0.tv_sec) * 1e3 + (double)(r1.tv_nsec - r0.tv_nsec) / 1e6,
                (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6);
    }
    if (t->rc == SL_OK)
        t->rc = sl_task_run(t->task);
    sl_task_close(t->task);
    for (int k = 0; k < t->nbufs; k++) {
        free(t->bufs[k]);
        t->bufs[k] = NULL;
    }
    atomic_store(&t->done, true);
    return NULL;
}

static void s_fail_deploy(sl_worker_t *w, s_job_t *j, const Sluice__Deploy *d, const char *why)
{
    /* Report every subtask of the deploy as failed so the master can act. */
    for (size_t i = 0; i < d->n_subtasks; i++) {
        s_slot_t t = {
            .job = j, .chain = (int)d->subtasks[i]->chain, .subtask = (int)d->subtasks[i]->subtask};
        s_send_state(w, &t, SLUICE__TASK_STATE_KIND__TASK_FAILED, why);
    }
}

/* The state subtask t restores: its own file, or with a rescale every old
 * subtask's (it keeps the key groups it owns). Only names them: the task's
 * thread reads and verifies them (s_read_restores). */
static int s_load_restore(const Sluice__Deploy *d, s_slot_t *t, sl_task_env_t *env, char *why,
                          size_t cap)
{
    if (!d->n_restore)
        return SL_OK;
    t->restores = calloc(d->n_restore, sizeof *t->restores);
    t->files = calloc(d->n_restore, sizeof *t->files);
    t->bufs = calloc(d->n_restore, sizeof *t->bufs);
    if (!t->restores || !t->files || !t->bufs) {
        snprintf(why, cap, "out of memory");
        return SL_NOMEM;
    }
    for (size_t i = 0; i < d->n_restore; i++) {
        const Sluice__TaskSnapshot *ts = d->restore[i];
        if (!d->rescale && ((int)ts->ref->chain != t->chain || (int)ts->ref->subtask != t->subtask))
            continue;
        if (d->rescale && (int)ts->ref->chain >= 0 && ts->finished)
            continue;
        if (ts->finished) {
            env->restore_finished = true;
            return SL_OK;
        }
        char path[4600];
        snprintf(path, sizeof path, "%s/%s", d->restore_dir, ts->file);
        s_state_file_t *f = &t->files[t->nbufs];
        if (!(f->path = strdup(path))) {
            snprintf(why, cap, "out of memory");
            return SL_NOMEM;
        }
        f->size = ts->size;
        snprintf(f->sha256, sizeof f->sha256, "%s", ts->sha256 ? ts->sha256 : "");
        t->restores[t->nbufs] = (sl_task_restore_t){.subtask = (int)ts->ref->subtask};
        t->nbufs++;
    }
    env->restores = t->restores;
    env->nrestores = t->nbufs;
    env->rescale = d->rescale;
    return SL_OK;
}

/* ---- local copies of checkpoints (local recovery) -------------------------------
 *
 * Stores of a job with checkpoints keep a local copy of each snapshot
 * (rocks_state.c) in <cache>/local/<job>/chk-<id>/, so that a task that
 * restarts here restores from it instead of fetching its files. This loop
 * bounds them: when checkpoint N completes, the copies of earlier ones go
 * (a restart restores N or later; should those be damaged in storage, an
 * earlier one is fetched from storage); when the job ends for good, all of
 * them go; a worker that starts or stops drops every job's. */

/* Deleting a copy (it can be gigabytes of files) is the janitor thread's
 * work, never the loop's, which must go on sending heartbeats: the loop
 * moves the directory into <cache>/local/.trash (a rename: the copy is gone
 * from where anyone looks at once) and wakes the janitor, which deletes
 * whatever is in the trash. No job id starts with a dot, so the trash is
 * no job's; dropping local/ drops it too. */
#define S_TRASH ".trash"

static void *s_janitor_main(void *arg)
{
    sl_worker_t *w = arg;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0); /* Linux: this thread's */
    if (errno == 0 && nice < 19)
        (void)setpriority(PRIO_PROCESS, 0, nice + S_TASK_NICE < 19 ? nice + S_TASK_NICE : 19);
    char trash[4600];
    snprintf(trash, sizeof trash, "%s/local/" S_TRASH, w->cache_dir);
    pthread_mutex_lock(&w->jlock);
    while (!w->jstop) {
        if (!w->jpending) {
            pthread_cond_wait(&w->jcond, &w->jlock);
            continue;
        }
        w->jpending = false;
        pthread_mutex_unlock(&w->jlock);
#ifdef SLUICE_FAILPOINTS
        /* test builds: a slow disk (scenario 177) */
        const char *v = getenv("SLUICE_WORKER_DISCARD_DELAY_MS");
        long ms = v ? strtol(v, NULL, 10) : 0;
        if (ms > 0)
            fprintf(stderr,
                    "sluice-worker %s: deleting local copies; SLUICE_WORKER_DISCARD_DELAY_MS=%ld\n",
                    w->id, ms);
        for (long t = 0; t < ms && !atomic_load(&w->stop); t += 10)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
#endif
        DIR *d = opendir(trash);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[4900];
            snprintf(path, sizeof path, "%s/%s", trash, e->d_name);
            sl_rmtree(path);
        }
        if (d)
            closedir(d);
        pthread_mutex_lock(&w->jlock);
    }
    pthread_mutex_unlock(&w->jlock);
    return NULL;
}

/* Makes dir disappear from where it is now and has the janitor delete it;
 * deletes it here only when it cannot be moved (or there is no janitor). */
static void s_discard(sl_worker_t *w, const char *dir)
{
    if (w->janitor_started) {
        char trash[4600], to[4700];
        snprintf(trash, sizeof trash, "%s/local/" S_TRASH, w->cache_dir);
        snprintf(to, sizeof to, "%s/%llu", trash, ++w->jseq);
        if ((mkdir(trash, 0700) == 0 || errno == EEXIST) && rename(dir, to) == 0) {
            pthread_mutex_lock(&w->jlock);
            w->jpending = true;
            pthread_cond_signal(&w->jcond);
            pthread_mutex_unlock(&w->jlock);
            return;
        }
        if (errno == ENOENT && access(dir, F_OK) != 0)
            return; /* nothing to delete */
    }
    sl_rmtree(dir);
}

/* <cache>/local/<job> (caller frees), or NULL for a job id that is no safe
 * directory name. */
static char *s_local_dir(const sl_worker_t *w, const char *job_id)
{
    if (!job_id[0] || job_id[0] == '.' || strchr(job_id, '/') || strlen(job_id) > 200)
        return NULL;
    char buf[4600];
    snprintf(buf, sizeof buf, "%s/local/%s", w->cache_dir, job_id);
    return strdup(buf);
}

/* Removes the local copies of dir's checkpoints before id. */
static void s_local_prune(sl_worker_t *w, const char *dir, uint64_t id)
{
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "chk-", 4) != 0)
            continue;
        unsigned long long n = strtoull(e->d_name + 4, &end, 10);
        if (*end || end == e->d_name + 4 || n >= id)
            continue;
        char path[4800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s_discard(w, path);
    }
    closedir(d);
}

/* The master says job_id ended for good: its local copies go now, and
 * again when its last task here has ended (one may still be writing). */
static void s_local_job_ended(sl_worker_t *w, const char *job_id)
{
    for (s_job_t *j = w->jobs; j; j = j->next)
        if (strcmp(j->id, job_id) == 0)
            j->ended = true;
    char *dir = s_local_dir(w, job_id);
    if (dir)
        s_discard(w, dir);
    free(dir);
}

static void s_local_drop_all(const sl_worker_t *w)
{
    char buf[4600];
    snprintf(buf, sizeof buf, "%s/local", w->cache_dir);
    sl_rmtree(buf);
}

static void s_deploy(sl_worker_t *w, const Sluice__Deploy *d)
{
    s_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->id = strdup(d->job_id);
    j->attempt = d->attempt;
    if (d->checkpoint_dir && d->checkpoint_dir[0]) {
        j->ckpt_dir = strdup(d->checkpoint_dir);
        j->local_dir = s_local_dir(w, d->job_id);
    }
    sl_params_t *params = sl_params_new();
    sl_diag_t *diag = sl_diag_new(d->spec_file);
    char why[1024] = "";
    if (!j->id || !params || !diag) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < d->n_params; i++)
        sl_params_set(params, d->params[i]->name, d->params[i]->value);
    if (d->plugin.len) {
        /* Never the path the job names: the bytes the master shipped, checked
         * against their hash and cached by it. */
        char hex[65], path[4200], err[600] = "cannot cache the job's plugin";
        sl_sha256_hex(d->plugin.data, d->plugin.len, hex);
        if (strcmp(hex, d->plugin_sha256) != 0) {
            snprintf(why, sizeof why, "worker %s: plugin bytes do not match their hash %s", w->id,
                     d->plugin_sha256);
            goto fail;
        }
        if (sl_plugin_store(w->cache_dir, d->plugin.data, d->plugin.len, path, sizeof path) ||
            sl_plugin_open(path, &j->plugin, err, sizeof err)) {
            snprintf(why, sizeof why, "worker %s: %s", w->id, err);
            goto fail;
        }
    }
    if (sl_plan_load_with(d->spec_file, (const char *)d->spec_text.data, d->spec_text.len, params,
                          (int)d->parallelism, j->plugin, diag, &j->spec, &j->plan) != SL_OK) {
        snprintf(why, sizeof why, "worker %s cannot plan the job: %s", w->id,
                 sl_diag_count(diag) ? sl_diag_message(diag, 0) : "error");
        goto fail;
    }
    /* Endpoints of every subtask: ours now, the others' with StartTasks. */
    const sl_plan_t *p = j->plan;
    j->ep_base = calloc((size_t)p->nchains + 1, sizeof *j->ep_base);
    if (!j->ep_base)
        goto fail;
    for (int c = 0; c < p->nchains; c++)
        j->ep_base[c + 1] = j->ep_base[c] + p->chains[c].parallelism;
    j->endpoints = calloc((size_t)j->ep_base[p->nchains], sizeof *j->endpoints);
    j->local_eps = calloc((size_t)j->ep_base[p->nchains], sizeof *j->local_eps);
    j->tasks = calloc(d->n_subtasks ? d->n_subtasks : 1, sizeof *j->tasks);
    char **bound = calloc(d->n_subtasks ? d->n_subtasks : 1, sizeof *bound);
    if (!j->endpoints || !j->local_eps || !j->tasks || !bound) {
        free(bound);
        goto fail;
    }
    for (size_t i = 0; i < d->n_subtasks; i++) {
        s_slot_t *t = &j->tasks[j->ntasks];
        t->job = j;
        t->chain = (int)d->subtasks[i]->chain;
        t->subtask = (int)d->subtasks[i]->subtask;
        if (t->chain >= p->nchains || t->subtask >= p->chains[t->chain].parallelism) {
            snprintf(why, sizeof why, "deploy names subtask %d/%d outside the plan", t->chain,
                     t->subtask);
            break;
        }
        sl_task_env_t env = {.zctx = w->o.zctx,
                             .plan = p,
                             .chain = t->chain,
                             .subtask = t->subtask,
                             .endpoint = s_endpoint,
                             .endpoint_arg = j,
                             .cancel = &j->cancel,
                             .batch_bytes = w->batch_bytes,
                             .ckpt_dir = j->ckpt_dir,
                             .attempt = j->attempt};
        if (s_load_restore(d, t, &env, why, sizeof why) != SL_OK)
            break;
        char sdir[4600];
        snprintf(sdir, sizeof sdir, "%s/state/%s-a%u-%d-%d", w->cache_dir, j->id,
                 (unsigned)j->attempt, t->chain, t->subtask);
        t->state_dir = strdup(sdir);
        if (d->n_restore && d->restore_dir[0])
            t->restore_dir = strdup(d->restore_dir);
        env.state_dir = t->state_dir;
        env.restore_dir = t->restore_dir;
        env.local_dir = j->local_dir;
        t->task = t->state_dir ? sl_task_new(&env) : NULL;
        if (!t->task) {
            free(t->state_dir);
            free(t->restore_dir);
            t->state_dir = t->restore_dir = NULL;
            break;
        }
        j->ntasks++;
        /* Phase one: bind the in-gate now, so the endpoint can be announced. */
        char at[512], got[512], adv[512];
        s_bind_endpoint(w, j, t->chain, t->subtask, at, sizeof at);
        if (sl_task_bind(t->task, at, got, sizeof got) != SL_OK) {
            snprintf(why, sizeof why, "worker %s: %s", w->id, sl_task_error(t->task));
            break;
        }
        if (got[0] && s_is_tcp(w)) {
            /* senders of this worker reach the gate in-process: the same
             * frames and credits without a TCP round trip through two I/O
             * threads (the context is the worker's, shared by its tasks) */
            char lep[600];
            snprintf(lep, sizeof lep, "inproc://sluice-local/%s/%s/%u/%d/%d", w->id, j->id,
                     (unsigned)j->attempt, t->chain, t->subtask);
            int li = j->ep_base[t->chain] + t->subtask;
            if (sl_task_bind_local(t->task, lep) != SL_OK) {
                snprintf(why, sizeof why, "worker %s: %s", w->id, sl_task_error(t->task));
                break;
            }
            free(j->local_eps[li]);
            if (!(j->local_eps[li] = strdup(lep)))
                break;
        }
        s_advertised(w, got, adv, sizeof adv);
        bound[i] = strdup(got[0] ? adv : "");
        if (!bound[i])
            break;
        free(j->endpoints[j->ep_base[t->chain] + t->subtask]);
        j->endpoints[j->ep_base[t->chain] + t->subtask] = strdup(adv);
    }
    if (j->ntasks != (int)d->n_subtasks || why[0]) {
        for (size_t i = 0; i < d->n_subtasks; i++)
            free(bound[i]);
        free(bound);
        goto fail;
    }
    sl_params_destroy(&params);
    sl_diag_destroy(&diag);
    j->next = w->jobs;
    w->jobs = j;
    for (int i = 0; i < j->ntasks; i++) {
        s_send_state_ep(w, &j->tasks[i], SLUICE__TASK_STATE_KIND__TASK_DEPLOYED, NULL, bound[i]);
        free(bound[i]);
    }
    free(bound);
    return;
fail:
    s_fail_deploy(w, j, d, why[0] ? why : "out of memory");
    sl_params_destroy(&params);
    sl_diag_destroy(&diag);
    s_job_destroy(w, j);
}

/* Phase two: every subtask of the job is bound somewhere; learn where,
 * then start the task threads. */
static void s_start(sl_worker_t *w, const Sluice__StartTasks *st)
{
    s_job_t *j = w->jobs;
    while (j && (strcmp(j->id, st->job_id) != 0 || j->attempt != st->attempt))
        j = j->next;
    if (!j || j->started)
        return;
    const sl_plan_t *p = j->plan;
    const char *why = NULL;
    for (size_t i = 0; i < st->n_locations && !why; i++) {
        const Sluice__SubtaskLocation *l = st->locations[i];
        if ((int)l->ref->chain >= p->nchains ||
            (int)l->ref->subtask >= p->chains[l->ref->chain].parallelism) {
            why = "start names a subtask outside the plan";
            break;
        }
        int idx = j->ep_base[l->ref->chain] + (int)l->ref->subtask;
        free(j->endpoints[idx]);
        j->endpoints[idx] = strdup(l->data_endpoint);
    }
    for (int i = 0; !why && i < j->ep_base[p->nchains]; i++)
        if (!j->endpoints[i])
            why = "start lacks the endpoint of a subtask";
    j->started = true;
    for (int i = 0; i < j->ntasks; i++) {
        s_slot_t *t = &j->tasks[i];
        if (why) {
            t->rc = SL_PROTO;
            s_send_state(w, t, SLUICE__TASK_STATE_KIND__TASK_FAILED, why);
            t->reported = true;
        } else if (pthread_create(&t->thread, NULL, s_task_main, t) == 0) {
            t->started = true;
        } else {
            t->rc = SL_NOMEM;
        }
    }
}

/* ---- control loop ------------------------------------------------------------ */

static void s_register(sl_worker_t *w)
{
    Sluice__Envelope env;
    sl_msg_init(&env, ++w->next_req);
    Sluice__Register r = SLUICE__REGISTER__INIT;
    r.worker_id = w->id;
    r.slots = (uint32_t)w->o.slots;
    char ep[512];
    if (s_is_tcp(w))
        snprintf(ep, sizeof ep, "tcp://%s", w->advertise_host);
    else
        snprintf(ep, sizeof ep, "%s", w->data_bind);
    r.data_endpoint = ep;
    r.host = w->advertise_host;
    env.body_case = SLUICE__ENVELOPE__BODY_REGISTER;
    env.register_ = &r;
    s_send(w, &env);
}

static void s_heartbeat(sl_worker_t *w)
{
    Sluice__Envelope env;
    sl_msg_init(&env, ++w->next_req);
    Sluice__Heartbeat h = SLUICE__HEARTBEAT__INIT;
    h.worker_id = w->id;
    h.time_ms = s_now_ms();
    env.body_case = SLUICE__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &h;
    s_send(w, &env);
}

static void s_cancel_job(sl_worker_t *w, const char *job_id, uint32_t attempt)
{
    for (s_job_t *j = w->jobs; j; j = j->next)
        if (!job_id || (strcmp(j->id, job_id) == 0 && (!attempt || attempt == j->attempt)))
            atomic_store(&j->cancel, true);
}

static s_job_t *s_find(sl_worker_t *w, const char *job_id, uint32_t attempt)
{
    for (s_job_t *j = w->jobs; j; j = j->next)
        if (strcmp(j->id, job_id) == 0 && j->attempt == attempt)
            return j;
    return NULL;
}

/* CheckpointTrigger: the job's source subtasks here inject the barrier. */
static void s_trigger(sl_worker_t *w, const Sluice__CheckpointTrigger *ct)
{
    s_job_t *j = s_find(w, ct->job_id, ct->attempt);
    for (int i = 0; j && i < j->ntasks; i++) {
        s_slot_t *t = &j->tasks[i];
        const sl_plan_node_t *head = &j->plan->nodes[j->plan->chains[t->chain].nodes[0]];
        if (head->role == SL_ROLE_SOURCE && t->task && t->started && !atomic_load(&t->done))
            sl_task_trigger(t->task, ct->checkpoint_id, ct->stop);
    }
}

static void s_complete(sl_worker_t *w, const Sluice__CheckpointComplete *cc)
{
    s_job_t *j = s_find(w, cc->job_id, cc->attempt);
    for (int i = 0; j && i < j->ntasks; i++)
        if (j->tasks[i].task && j->tasks[i].started && !atomic_load(&j->tasks[i].done))
            sl_task_notify_complete(j->tasks[i].task, cc->checkpoint_id);
    if (j)
        s_local_prune(w, j->local_dir, cc->checkpoint_id);
}

/* Sends acknowledgement *a of task t to the master. */
static void s_send_ack1(sl_worker_t *w, s_job_t *j, s_slot_t *t, sl_task_ack_t *a)
{
    Sluice__Envelope env;
    sl_msg_init(&env, ++w->next_req);
    Sluice__CheckpointAck ack = SLUICE__CHECKPOINT_ACK__INIT;
    Sluice__SubtaskRef ref = SLUICE__SUBTASK_REF__INIT;
    ref.chain = (uint32_t)t->chain;
    ref.subtask = (uint32_t)t->subtask;
    ack.job_id = j->id;
    ack.attempt = j->attempt;
    ack.checkpoint_id = a->id;
    ack.ref = &ref;
    ack.file = a->file;
    ack.size = a->size;
    ack.sha256 = a->sha256;
    ack.align_ms = a->align_ms;
    sl_msg_sanitize_utf8(a->declined);
    ack.declined = a->declined;
    env.body_case = SLUICE__ENVELOPE__BODY_CHECKPOINT_ACK;
    env.checkpoint_ack = &ack;
    s_send(w, &env);
}

/* Sends the acknowledgements task t queued since the last look, oldest
 * first. */
static void s_send_ack(sl_worker_t *w, s_job_t *j, s_slot_t *t)
{
    sl_task_ack_t a;
    while (t->task && sl_task_poll_ack(t->task, &a))
        s_send_ack1(w, j, t, &a);
}

static void s_send_acks(sl_worker_t *w)
{
    for (s_job_t *j = w->jobs; j; j = j->next)
        for (int i = 0; i < j->ntasks; i++)
            s_send_ack(w, j, &j->tasks[i]);
}

static void *s_main(void *arg)
{
    sl_worker_t *w = arg;
    uint64_t last_hb = 0, last_report = s_now_ms();
    w->janitor_started = pthread_create(&w->janitor, NULL, s_janitor_main, w) == 0;
    s_register(w);
    while (!atomic_load(&w->stop)) {
        zmq_pollitem_t item = {.socket = w->sock, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 20);
        Sluice__Envelope *env = NULL;
        char err[256];
        while (sl_msg_recv(w->sock, ZMQ_DONTWAIT, NULL, NULL, &env, err, sizeof err) !=
               SL_TIMEOUT) {
            if (!env) {
                fprintf(stderr, "sluice-worker %s: bad message from master: %s\n", w->id, err);
                continue;
            }
            switch (env->body_case) {
            case SLUICE__ENVELOPE__BODY_DEPLOY:
                s_deploy(w, env->deploy);
                break;
            case SLUICE__ENVELOPE__BODY_START_TASKS:
                s_start(w, env->start_tasks);
                break;
            case SLUICE__ENVELOPE__BODY_ERROR:
                if (env->error->code == SL_NOTFOUND) {
                    /* The master does not know us (it restarted, or declared us dead):
                     * whatever we run is orphaned. Stop it and register again. */
                    fprintf(stderr,
                            "sluice-worker %s: master forgot this worker (%s); "
                            "registering again\n",
                            w->id, env->error->message);
                    s_cancel_job(w, NULL, 0);
                    s_register(w);
                }
                break;
            case SLUICE__ENVELOPE__BODY_CANCEL_TASKS:
                s_cancel_job(w, env->cancel_tasks->job_id, env->cancel_tasks->attempt);
                if (env->cancel_tasks->job_ended)
                    s_local_job_ended(w, env->cancel_tasks->job_id);
                break;
            case SLUICE__ENVELOPE__BODY_CHECKPOINT_TRIGGER:
                s_trigger(w, env->checkpoint_trigger);
                break;
            case SLUICE__ENVELOPE__BODY_CHECKPOINT_COMPLETE:
                s_complete(w, env->checkpoint_complete);
                break;
            case SLUICE__ENVELOPE__BODY_SHUTDOWN:
                if (w->o.keep_running)
                    s_cancel_job(w, NULL, 0); /* the master is going: its jobs are over */
                else
                    atomic_store(&w->stop, true);
                break;
            case SLUICE__ENVELOPE__BODY_REGISTER_ACK:
                if (!env->register_ack->accepted)
                    fprintf(stderr, "sluice-worker %s: master refused registration: %s\n", w->id,
                            env->register_ack->reason);
                break;
            default:
                break;
            }
            sl_msg_free(&env);
        }
        s_send_acks(w); /* before reaping: a task's last ack goes before its end */
        s_reap(w);
        uint64_t now = s_now_ms();
        if (now - last_hb >= (uint64_t)w->o.heartbeat_ms) {
            s_heartbeat(w);
            last_hb = now;
        }
        if (now - last_report >= (uint64_t)w->o.report_ms) {
            s_report_running(w);
            last_report = now;
        }
    }
    s_cancel_job(w, NULL, 0);
    while (w->jobs) {
        s_reap(w);
        if (w->jobs) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL); /* task threads poll their cancel flag every 50 ms */
        }
    }
    if (w->janitor_started) { /* what it has not deleted goes with local/ (s_remove_cache) */
        pthread_mutex_lock(&w->jlock);
        w->jstop = true;
        pthread_cond_signal(&w->jcond);
        pthread_mutex_unlock(&w->jlock);
        pthread_join(w->janitor, NULL);
        w->janitor_started = false;
    }
    atomic_store(&w->ended, true);
    return NULL;
}

bool sl_worker_running(const sl_worker_t *w)
{
    return !atomic_load(&w->ended);
}

static void s_remove_cache(sl_worker_t *w)
{
    if (!w->own_cache_dir && w->cache_dir)
        s_local_drop_all(w); /* the rest stays (plugins) */
    if (w->own_cache_dir && w->cache_dir)
        sl_rmtree(w->cache_dir);
    free(w->cache_dir);
    w->cache_dir = NULL;
}

sl_worker_t *sl_worker_start(const sl_worker_opts_t *o)
{
    sl_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->jlock, NULL);
    pthread_cond_init(&w->jcond, NULL);
    w->o = *o;
    w->master = strdup(o->master);
    w->id = strdup(o->id);
    w->data_bind = strdup(o->data_bind);
    if (o->cache_dir) {
        w->cache_dir = strdup(o->cache_dir);
        if (w->cache_dir)
            s_local_drop_all(w); /* an earlier process's: no job it knew of is ours */
    } else {
        char tmpl[4096];
        if (sl_fs_mkdtemp("sluice-worker", tmpl, sizeof tmpl) == 0) {
            w->cache_dir = strdup(tmpl);
            w->own_cache_dir = true;
        }
    }
    if (o->advertise_host && *o->advertise_host) {
        w->advertise_host = strdup(o->advertise_host);
    } else if (strncmp(o->data_bind, "tcp://", 6) == 0) {
        const char *h = o->data_bind + 6;
        w->advertise_host =
            strdup(strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 ? "127.0.0.1" : h);
    } else {
        w->advertise_host = strdup("localhost");
    }
    const char *bb = getenv("SLUICE_BATCH_BYTES"); /* a tuning and testing knob */
    if (bb && *bb) {
        char *end;
        unsigned long v = strtoul(bb, &end, 10);
        if (*end || v < 64 || v > (64ul << 20))
            fprintf(stderr, "worker %s: ignoring SLUICE_BATCH_BYTES=%s (64..67108864)\n", o->id,
                    bb);
        else
            w->batch_bytes = (uint32_t)v;
    }
    if (w->o.heartbeat_ms <= 0)
        w->o.heartbeat_ms = 200;
    if (w->o.report_ms <= 0)
        w->o.report_ms = 250;
    w->sock = zmq_socket(o->zctx, ZMQ_DEALER);
    int linger = 1000;
    if (!w->master || !w->id || !w->data_bind || !w->advertise_host || !w->cache_dir || !w->sock ||
        zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, w->id, strlen(w->id)) ||
        sl_msg_limit_socket(w->sock) || zmq_connect(w->sock, w->master) ||
        pthread_create(&w->thread, NULL, s_main, w) != 0) {
        fprintf(stderr, "sluice-worker: cannot start worker %s: %s\n", o->id,
                zmq_strerror(zmq_errno()));
        if (w->sock)
            zmq_close(w->sock);
        free(w->master);
        free(w->id);
        free(w->data_bind);
        free(w->advertise_host);
        s_remove_cache(w);
        pthread_mutex_destroy(&w->jlock);
        pthread_cond_destroy(&w->jcond);
        free(w);
        return NULL;
    }
    return w;
}

void sl_worker_stop(sl_worker_t *w)
{
    atomic_store(&w->stop, true);
}

void sl_worker_join(sl_worker_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_worker_t *w = *pp;
    pthread_join(w->thread, NULL);
    zmq_close(w->sock);
    free(w->master);
    free(w->id);
    free(w->data_bind);
    free(w->advertise_host);
    s_remove_cache(w);
    pthread_mutex_destroy(&w->jlock);
    pthread_cond_destroy(&w->jcond);
    free(w);
    *pp = NULL;
}
