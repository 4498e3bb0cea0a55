/* cmd_cluster.c — the commands that talk to a running sluice-master:
 * submit, list, status, cancel, workers. Tables for people by default,
 * --json for scripts. Exit status: 0 ok, 1 failure (the job failed, the
 * master is unreachable, the job does not exist), 2 bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "cli.h"
#include "sluice/err.h"
#include "sluice/textfmt.h"

static const char s_submit_usage[] =
    "usage: sluice submit JOB.yaml [--param NAME=VALUE]... [--parallelism N] [--detach]\n"
    "                    [--from-savepoint DIR]\n"
    "                     [--master tcp://HOST:PORT] [--quiet]\n"
    "  without --detach, follows the job to its end; the exit status says how it ended\n";
static const char s_list_usage[] = "usage: sluice list [--master tcp://HOST:PORT] [--json]\n";
static const char s_status_usage[] =
    "usage: sluice status JOB [--master tcp://HOST:PORT] [--json]\n";
static const char s_cancel_usage[] = "usage: sluice cancel JOB [--master tcp://HOST:PORT]\n";
static const char s_workers_usage[] = "usage: sluice workers [--master tcp://HOST:PORT] [--json]\n";

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* Connects and checks the master answers; prints the error and returns
 * NULL when it does not. */
static sl_client_t *s_connect(void *zctx, const sl_cli_opts_t *o)
{
    sl_client_t *c = sl_client_new(zctx, o->master);
    if (!c)
        fprintf(stderr, "sluice: cannot use master endpoint '%s' (expected tcp://HOST:PORT)\n",
                o->master);
    return c;
}

static void s_unreachable(const sl_cli_opts_t *o, int rc, const char *err)
{
    if (rc == SL_TIMEOUT)
        fprintf(stderr,
                "sluice: the master at %s did not answer within %d ms; is sluice-master "
                "running there? (set --master or SLUICE_MASTER)\n",
                o->master, o->timeout_ms);
    else
        fprintf(stderr, "sluice: %s\n", err);
}

static void s_json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static const char *s_task_state(Sluice__TaskStateKind s)
{
    switch (s) {
    case SLUICE__TASK_STATE_KIND__TASK_DEPLOYING:
        return "DEPLOYING";
    case SLUICE__TASK_STATE_KIND__TASK_DEPLOYED:
        return "DEPLOYED";
    case SLUICE__TASK_STATE_KIND__TASK_RUNNING:
        return "RUNNING";
    case SLUICE__TASK_STATE_KIND__TASK_FINISHED:
        return "FINISHED";
    case SLUICE__TASK_STATE_KIND__TASK_FAILED:
        return "FAILED";
    case SLUICE__TASK_STATE_KIND__TASK_CANCELED:
        return "CANCELED";
    default:
        return "UNKNOWN";
    }
}

typedef int (*s_cmd_fn)(sl_client_t *c, const sl_cli_opts_t *o);

/* Parses, connects, runs fn, cleans up. */
static int s_with_client(int argc, char **argv, const char *usage, int npos, s_cmd_fn fn)
{
    sl_cli_opts_t o;
    int rc = sl_cli_parse(argc, argv, usage, npos, &o);
    if (rc) {
        sl_cli_opts_free(&o);
        return rc;
    }
    void *zctx = zmq_ctx_new();
    sl_client_t *c = s_connect(zctx, &o);
    int status = c ? fn(c, &o) : 1;
    sl_client_destroy(&c);
    zmq_ctx_term(zctx);
    sl_cli_opts_free(&o);
    return status;
}

/* ---- submit ----------------------------------------------------------------- */

static int s_submit(sl_client_t *c, const sl_cli_opts_t *o)
{
    sl_cli_job_t jb;
    if (sl_cli_load(o, &jb))
        return 1;
    int status;
    if (o->detach) {
        char err[4096], job[128];
        int rc = sl_client_submit_from(c, o->spec_path, jb.text, jb.len, jb.plugin_bytes,
                                       jb.plugin_len, o->params, o->parallelism, o->from_savepoint,
                                       job, sizeof job, err, sizeof err);
        if (rc) {
            s_unreachable(o, rc, err);
            status = 1;
        } else {
            printf("%s\n", job);
            status = 0;
        }
    } else {
        sl_cli_catch_sigint();
        status = sl_cli_submit_follow(c, o, &jb);
    }
    sl_cli_job_free(&jb);
    return status;
}

int sl_cmd_submit(int argc, char **argv)
{
    return s_with_client(argc, argv, s_submit_usage, 1, s_submit);
}

/* Sends env and returns the reply if it has the body want; else prints why
 * (unreachable master, error, or an unexpected answer) and returns NULL. */
static Sluice__Envelope *s_ask(sl_client_t *c, const sl_cli_opts_t *o, Sluice__Envelope *env,
                               Sluice__Envelope__BodyCase want)
{
    Sluice__Envelope *rep = NULL;
    char err[1024];
    int rc = sl_client_call(c, env, o->timeout_ms, &rep, err, sizeof err);
    if (rc) {
        s_unreachable(o, rc, err);
        return NULL;
    }
    if (rep->body_case != want) {
        fprintf(stderr, "sluice: unexpected answer '%s' from the master at %s\n",
                sl_msg_kind_name(rep), o->master);
        sl_msg_free(&rep);
    }
    return rep;
}

/* ---- list ----------------------------------------------------------------------- */

static int s_list(sl_client_t *c, const sl_cli_opts_t *o)
{
    Sluice__Envelope env;
    sl_msg_init(&env, 0);
    Sluice__ListJobs lj = SLUICE__LIST_JOBS__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_LIST_JOBS;
    env.list_jobs = &lj;
    Sluice__Envelope *rep = s_ask(c, o, &env, SLUICE__ENVELOPE__BODY_JOB_LIST);
    if (!rep)
        return 1;
    const Sluice__JobList *l = rep->job_list;
    if (o->json) {
        printf("[");
        for (size_t i = 0; i < l->n_jobs; i++) {
            const Sluice__JobStatus *j = l->jobs[i];
            printf("%s{\"id\":", i ? "," : "");
            s_json_str(j->job_id);
            printf(",\"name\":");
            s_json_str(j->name);
            printf(",\"state\":\"%s\",\"start_ms\":%llu,\"end_ms\":%llu,\"error\":",
                   sl_cli_state_name(j->state), (unsigned long long)j->start_ms,
                   (unsigned long long)j->end_ms);
            s_json_str(j->error);
            printf("}");
        }
        printf("]\n");
    } else {
        printf("%-12s %-24s %-10s %10s  %s\n", "JOB", "NAME", "STATE", "SECONDS", "DETAIL");
        for (size_t i = 0; i < l->n_jobs; i++) {
            const Sluice__JobStatus *j = l->jobs[i];
            double secs = j->end_ms ? (double)(j->end_ms - j->start_ms) / 1000.0 : -1;
            char s[32] = "-";
            if (secs >= 0)
                snprintf(s, sizeof s, "%.2f", secs);
            printf("%-12s %-24s %-10s %10s  %s\n", j->job_id, j->name, sl_cli_state_name(j->state),
                   s, j->error[0] ? j->error : j->reason);
        }
    }
    sl_msg_free(&rep);
    return 0;
}

int sl_cmd_list(int argc, char **argv)
{
    return s_with_client(argc, argv, s_list_usage, 0, s_list);
}

/* ---- status ---------------------------------------------------------------------- */

/* A task's records in (at its head) and out (at its tail); a source head
 * counts what it read as its input. */
static void s_task_records(const Sluice__TaskStatus *t, uint64_t *in, uint64_t *out)
{
    *in = *out = 0;
    if (t->n_metrics == 0)
        return;
    const Sluice__OperatorMetrics *h = t->metrics[0], *l = t->metrics[t->n_metrics - 1];
    *in = h->records_in ? h->records_in : h->records_out;
    *out = l->records_out;
}

/* The restore of a task's RocksDB stores, over its operators: bytes from
 * the worker's local copy (local recovery), bytes fetched, ms taken. */
static void s_task_restored(const Sluice__TaskStatus *t, uint64_t *local, uint64_t *remote,
                            uint64_t *ms)
{
    *local = *remote = *ms = 0;
    for (size_t k = 0; k < t->n_metrics; k++) {
        *local += t->metrics[k]->restored_bytes_local;
        *remote += t->metrics[k]->restored_bytes_remote;
        *ms += t->metrics[k]->restore_ms;
    }
}

static int s_status(sl_client_t *c, const sl_cli_opts_t *o)
{
    Sluice__Envelope *rep = NULL;
    char err[1024];
    int rc = sl_client_status(c, o->spec_path, o->timeout_ms, &rep, err, sizeof err);
    if (rc == SL_NOTFOUND) {
        fprintf(stderr, "sluice: %s (see `sluice list`)\n", err);
        return 1;
    }
    if (rc) {
        s_unreachable(o, rc, err);
        return 1;
    }
    const Sluice__JobStatus *j = rep->job_status;
    if (o->json) {
        printf("{\"id\":");
        s_json_str(j->job_id);
        printf(",\"name\":");
        s_json_str(j->name);
        printf(",\"state\":\"%s\",\"start_ms\":%llu,\"end_ms\":%llu,\"error\":",
               sl_cli_state_name(j->state), (unsigned long long)j->start_ms,
               (unsigned long long)j->end_ms);
        s_json_str(j->error);
        printf(",\"reason\":");
        s_json_str(j->reason);
        printf(",\"attempt\":%u,\"checkpoints\":%u,\"checkpoint_id\":%llu,"
               "\"restored_from\":%llu,\"failures\":[",
               (unsigned)j->attempt, (unsigned)j->checkpoints, (unsigned long long)j->checkpoint_id,
               (unsigned long long)j->restored_from);
        for (size_t i = 0; i < j->n_failures; i++) {
            printf("%s", i ? "," : "");
            s_json_str(j->failures[i]);
        }
        printf("],\"tasks\":[");
        for (size_t i = 0; i < j->n_tasks; i++) {
            const Sluice__TaskStatus *t = j->tasks[i];
            uint64_t rin, rout;
            s_task_records(t, &rin, &rout);
            printf("%s{\"task\":\"%u.%u\",\"worker\":", i ? "," : "", t->ref->chain,
                   t->ref->subtask);
            s_json_str(t->worker_id);
            printf(",\"host\":");
            s_json_str(t->host);
            printf(",\"state\":\"%s\",\"records_in\":%llu,\"records_out\":%llu,\"end_ms\":%llu,"
                   "\"error\":",
                   s_task_state(t->state), (unsigned long long)rin, (unsigned long long)rout,
                   (unsigned long long)t->end_ms);
            s_json_str(t->error);
            uint64_t rl, rr, rms;
            s_task_restored(t, &rl, &rr, &rms);
            printf(",\"restored_bytes_local\":%llu,\"restored_bytes_remote\":%llu,"
                   "\"restore_ms\":%llu",
                   (unsigned long long)rl, (unsigned long long)rr, (unsigned long long)rms);
            if (t->n_metrics && t->metrics[0]->has_lag) { /* a source with a backlog (Kafka) */
                printf(",\"lag\":%lld,\"lag_partitions\":", (long long)t->metrics[0]->lag);
                s_json_str(t->metrics[0]->lag_partitions);
            }
            printf(",\"operators\":[");
            for (size_t k = 0; k < t->n_metrics; k++) {
                printf("%s", k ? "," : "");
                s_json_str(t->metrics[k]->op);
            }
            printf("]}");
        }
        printf("],\"operators\":[");
        for (size_t i = 0; i < j->n_metrics; i++) {
            const Sluice__OperatorMetrics *m = j->metrics[i];
            printf("%s{\"name\":", i ? "," : "");
            s_json_str(m->op);
            printf(",\"records_in\":%llu,\"records_out\":%llu,\"busy_ns\":%llu,\"errors\":%llu,"
                   "\"backpressure_ns\":%llu,\"records_late\":%llu",
                   (unsigned long long)m->records_in, (unsigned long long)m->records_out,
                   (unsigned long long)m->busy_ns, (unsigned long long)m->errors,
                   (unsigned long long)m->backpressure_ns, (unsigned long long)m->records_late);
            if (m->has_watermark)
                printf(",\"watermark\":%lld", (long long)m->watermark);
            if (m->has_lag)
                printf(",\"lag\":%lld", (long long)m->lag);
            if (m->restored_bytes_local || m->restored_bytes_remote)
                printf(",\"restored_bytes_local\":%llu,\"restored_bytes_remote\":%llu,"
                       "\"restore_ms\":%llu",
                       (unsigned long long)m->restored_bytes_local,
                       (unsigned long long)m->restored_bytes_remote,
                       (unsigned long long)m->restore_ms);
            printf("}");
        }
        printf("]}\n");
    } else {
        double secs = (double)((j->end_ms ? j->end_ms : j->start_ms) - j->start_ms) / 1000.0;
        printf("job %s (%s): %s", j->job_id, j->name, sl_cli_state_name(j->state));
        if (j->end_ms)
            printf(" after %.2f s", secs);
        printf("\n");
        if (j->reason[0])
            printf("  waiting: %s\n", j->reason);
        if (j->error[0])
            printf("  error: %s\n", j->error);
        if (j->attempt > 1 || j->checkpoints)
            printf("  attempt %u; %u checkpoints completed (latest %llu)%s\n", (unsigned)j->attempt,
                   (unsigned)j->checkpoints, (unsigned long long)j->checkpoint_id,
                   j->restored_from ? "; restored from a checkpoint" : "");
        for (size_t i = 0; i < j->n_failures; i++)
            printf("  failed %s\n", j->failures[i]);
        uint64_t now_ms = j->end_ms ? j->end_ms : s_wall_ms();
        double secs_run = now_ms > j->start_ms ? (double)(now_ms - j->start_ms) / 1000.0 : 0;
        printf("\n%-6s %-26s %-16s %-16s %-9s %12s %12s %10s  %s\n", "TASK", "OPERATORS", "WORKER",
               "HOST", "STATE", "RECORDS IN", "RECORDS OUT", "OUT/S", "ERROR");
        for (size_t i = 0; i < j->n_tasks; i++) {
            const Sluice__TaskStatus *t = j->tasks[i];
            char id[32], ops[27] = "", rate[32];
            snprintf(id, sizeof id, "%u.%u", t->ref->chain, t->ref->subtask);
            for (size_t k = 0; k < t->n_metrics; k++) {
                strncat(ops, k ? ">" : "", sizeof ops - strlen(ops) - 1);
                strncat(ops, t->metrics[k]->op, sizeof ops - strlen(ops) - 1);
            }
            uint64_t rin, rout;
            s_task_records(t, &rin, &rout);
            sl_cli_human(secs_run > 0 ? (double)rout / secs_run : 0, rate, sizeof rate);
            printf("%-6s %-26s %-16s %-16s %-9s %12llu %12llu %10s  %s\n", id, ops, t->worker_id,
                   t->host, s_task_state(t->state), (unsigned long long)rin,
                   (unsigned long long)rout, rate, t->error);
        }
        for (size_t i = 0; i < j->n_tasks; i++) /* sources with a backlog (Kafka) */
            if (j->tasks[i]->n_metrics && j->tasks[i]->metrics[0]->has_lag)
                printf("  task %u.%u lag %lld: %s\n", j->tasks[i]->ref->chain,
                       j->tasks[i]->ref->subtask, (long long)j->tasks[i]->metrics[0]->lag,
                       j->tasks[i]->metrics[0]->lag_partitions);
        for (size_t i = 0; i < j->n_tasks; i++) { /* tasks that restored RocksDB stores */
            uint64_t rl, rr, rms;
            s_task_restored(j->tasks[i], &rl, &rr, &rms);
            if (!rl && !rr)
                continue;
            char lb[32], rb[32];
            sl_cli_human((double)rl, lb, sizeof lb);
            sl_cli_human((double)rr, rb, sizeof rb);
            printf("  task %u.%u restored its state: %sB from the local copy, %sB fetched from "
                   "checkpoint storage, in %.2f s\n",
                   j->tasks[i]->ref->chain, j->tasks[i]->ref->subtask, lb, rb,
                   (double)rms / 1000.0);
        }
        printf("\n%-20s %14s %14s %10s %12s %10s  %s\n", "OPERATOR", "RECORDS IN", "RECORDS OUT",
               "BUSY S", "BACKPRESS S", "LATE", "WATERMARK");
        for (size_t i = 0; i < j->n_metrics; i++) {
            const Sluice__OperatorMetrics *m = j->metrics[i];
            char wm[40] = "-";
            if (m->has_watermark && m->watermark == INT64_MAX)
                snprintf(wm, sizeof wm, "end of input");
            else if (m->has_watermark)
                sl_ts_format(m->watermark, wm, sizeof wm);
            printf("%-20s %14llu %14llu %10.2f %12.2f %10llu  %s\n", m->op,
                   (unsigned long long)m->records_in, (unsigned long long)m->records_out,
                   (double)m->busy_ns / 1e9, (double)m->backpressure_ns / 1e9,
                   (unsigned long long)m->records_late, wm);
        }
    }
    sl_msg_free(&rep);
    return 0;
}

int sl_cmd_status(int argc, char **argv)
{
    return s_with_client(argc, argv, s_status_usage, 1, s_status);
}

/* ---- savepoints and checkpoints ---------------------------------------------------- */

static const char s_savepoint_usage[] =
    "usage: sluice savepoint JOB [--dir DIR] [--master tcp://HOST:PORT] [--timeout MS]\n"
    "  takes a savepoint of a running job (its checkpoint, copied to DIR; default the\n"
    "  master's state directory) and prints its directory\n";
static const char s_stop_usage[] =
    "usage: sluice stop JOB --savepoint [--dir DIR] [--master tcp://HOST:PORT] [--timeout MS]\n"
    "  takes a savepoint, then ends the job; resume it with\n"
    "  `sluice submit JOB.yaml --from-savepoint DIR [--parallelism N]`\n";
static const char s_checkpoints_usage[] =
    "usage: sluice checkpoints JOB [--master tcp://HOST:PORT] [--json]\n"
    "  the job's retained checkpoints and the savepoints taken of it\n";

static int s_take_savepoint(sl_client_t *c, const sl_cli_opts_t *o, bool stop)
{
    char err[1024], path[4200];
    int rc = sl_client_savepoint(c, o->spec_path, o->dir, stop,
                                 o->timeout_ms > 5000 ? o->timeout_ms : 120000, path, sizeof path,
                                 err, sizeof err);
    if (rc == SL_NOTFOUND || rc == SL_STATE || rc == SL_IO || rc == SL_DATA) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    if (rc) {
        s_unreachable(o, rc, err);
        return 1;
    }
    printf("%s\n", path);
    if (stop)
        fprintf(stderr, "stopped %s after a savepoint\n", o->spec_path);
    return 0;
}

static int s_savepoint(sl_client_t *c, const sl_cli_opts_t *o)
{
    return s_take_savepoint(c, o, false);
}

static int s_stop(sl_client_t *c, const sl_cli_opts_t *o)
{
    if (!o->savepoint) {
        fprintf(stderr,
                "sluice: stop needs --savepoint (to end a job without one: `sluice "
                "cancel`)\n%s",
                s_stop_usage);
        return 2;
    }
    return s_take_savepoint(c, o, true);
}

int sl_cmd_savepoint(int argc, char **argv)
{
    return s_with_client(argc, argv, s_savepoint_usage, 1, s_savepoint);
}

int sl_cmd_stop(int argc, char **argv)
{
    return s_with_client(argc, argv, s_stop_usage, 1, s_stop);
}

static int s_checkpoints(sl_client_t *c, const sl_cli_opts_t *o)
{
    Sluice__Envelope *rep = NULL;
    char err[1024];
    int rc = sl_client_status(c, o->spec_path, o->timeout_ms, &rep, err, sizeof err);
    if (rc == SL_NOTFOUND) {
        fprintf(stderr, "sluice: %s (see `sluice list`)\n", err);
        return 1;
    }
    if (rc) {
        s_unreachable(o, rc, err);
        return 1;
    }
    const Sluice__JobStatus *j = rep->job_status;
    if (o->json) {
        printf("[");
        for (size_t i = 0; i < j->n_checkpoint_list; i++) {
            const Sluice__CheckpointInfo *k = j->checkpoint_list[i];
            printf("%s{\"id\":%llu,\"kind\":\"%s\",\"trigger_ms\":%llu,\"duration_ms\":%llu,"
                   "\"size\":%llu,\"align_ms\":%llu,\"path\":",
                   i ? "," : "", (unsigned long long)k->checkpoint_id,
                   k->savepoint ? "savepoint" : "checkpoint", (unsigned long long)k->trigger_ms,
                   (unsigned long long)k->duration_ms, (unsigned long long)k->size,
                   (unsigned long long)k->align_ms);
            s_json_str(k->path);
            printf("}");
        }
        printf("]\n");
    } else {
        printf("%-8s %-10s %-24s %10s %12s %9s  %s\n", "ID", "KIND", "TRIGGERED", "DURATION",
               "SIZE", "ALIGN", "PATH");
        for (size_t i = 0; i < j->n_checkpoint_list; i++) {
            const Sluice__CheckpointInfo *k = j->checkpoint_list[i];
            char when[40], size[32];
            sl_ts_format((long long)k->trigger_ms, when, sizeof when);
            sl_cli_human((double)k->size, size, sizeof size);
            printf("%-8llu %-10s %-24s %8llums %11sB %7llums  %s\n",
                   (unsigned long long)k->checkpoint_id, k->savepoint ? "savepoint" : "checkpoint",
                   when, (unsigned long long)k->duration_ms, size, (unsigned long long)k->align_ms,
                   k->path);
        }
        if (!j->n_checkpoint_list)
            printf("(none%s)\n", j->checkpoints ? " retained" : " yet");
    }
    sl_msg_free(&rep);
    return 0;
}

int sl_cmd_checkpoints(int argc, char **argv)
{
    return s_with_client(argc, argv, s_checkpoints_usage, 1, s_checkpoints);
}

/* ---- cancel ---------------------------------------------------------------------- */

static int s_cancel(sl_client_t *c, const sl_cli_opts_t *o)
{
    char err[1024];
    int rc = sl_client_cancel(c, o->spec_path, err, sizeof err);
    if (rc == SL_NOTFOUND) {
        fprintf(stderr, "sluice: %s (see `sluice list`)\n", err);
        return 1;
    }
    if (rc) {
        s_unreachable(o, rc, err);
        return 1;
    }
    printf("canceled %s\n", o->spec_path);
    return 0;
}

int sl_cmd_cancel(int argc, char **argv)
{
    return s_with_client(argc, argv, s_cancel_usage, 1, s_cancel);
}

/* ---- workers ------------------------------------------------------------------------- */

static int s_workers(sl_client_t *c, const sl_cli_opts_t *o)
{
    Sluice__Envelope env;
    sl_msg_init(&env, 0);
    Sluice__WorkersRequest wr = SLUICE__WORKERS_REQUEST__INIT;
    env.body_case = SLUICE__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    Sluice__Envelope *rep = s_ask(c, o, &env, SLUICE__ENVELOPE__BODY_WORKER_LIST);
    if (!rep)
        return 1;
    const Sluice__WorkerList *l = rep->worker_list;
    if (o->json) {
        printf("[");
        for (size_t i = 0; i < l->n_workers; i++) {
            const Sluice__WorkerInfo *w = l->workers[i];
            printf("%s{\"id\":", i ? "," : "");
            s_json_str(w->worker_id);
            printf(",\"host\":");
            s_json_str(w->host);
            printf(",\"slots\":%u,\"slots_used\":%u,\"heartbeat_age_ms\":%llu,\"alive\":%s}",
                   w->slots, w->slots_used, (unsigned long long)w->heartbeat_age_ms,
                   w->alive ? "true" : "false");
        }
        printf("]\n");
    } else {
        printf("%-24s %-20s %6s %6s %14s  %s\n", "WORKER", "HOST", "USED", "SLOTS", "HEARTBEAT",
               "STATE");
        for (size_t i = 0; i < l->n_workers; i++) {
            const Sluice__WorkerInfo *w = l->workers[i];
            char age[32];
            snprintf(age, sizeof age, "%.1f s ago", (double)w->heartbeat_age_ms / 1000.0);
            printf("%-24s %-20s %6u %6u %14s  %s\n", w->worker_id, w->host, w->slots_used, w->slots,
                   age, w->alive ? "alive" : "dead");
        }
    }
    sl_msg_free(&rep);
    return 0;
}

int sl_cmd_workers(int argc, char **argv)
{
    return s_with_client(argc, argv, s_workers_usage, 0, s_workers);
}
