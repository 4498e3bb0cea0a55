/* follow.c — shared by `sluice run` and `sluice submit`: read and check a
 * spec locally (so its errors read like `sluice validate`), submit it,
 * follow the job with a progress line on a terminal, and print the
 * per-operator summary when it ends. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "sluice/err.h"
#include "sluice/kafka.h"
#include "sluice/plan.h"

volatile sig_atomic_t sl_cli_interrupted;

static void s_on_sigint(int sig)
{
    (void)sig;
    sl_cli_interrupted = 1;
}

void sl_cli_catch_sigint(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = s_on_sigint;
    sigaction(SIGINT, &sa, NULL);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *sl_cli_read_spec(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(SL_SPEC_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, SL_SPEC_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (buf && n > SL_SPEC_MAX_BYTES) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

const char *sl_cli_state_name(Sluice__JobStateKind s)
{
    switch (s) {
    case SLUICE__JOB_STATE_KIND__JOB_CREATED:
        return "CREATED";
    case SLUICE__JOB_STATE_KIND__JOB_SCHEDULED:
        return "SCHEDULED";
    case SLUICE__JOB_STATE_KIND__JOB_RUNNING:
        return "RUNNING";
    case SLUICE__JOB_STATE_KIND__JOB_FINISHED:
        return "FINISHED";
    case SLUICE__JOB_STATE_KIND__JOB_FAILED:
        return "FAILED";
    case SLUICE__JOB_STATE_KIND__JOB_CANCELED:
        return "CANCELED";
    case SLUICE__JOB_STATE_KIND__JOB_STOPPED:
        return "STOPPED";
    case SLUICE__JOB_STATE_KIND__JOB_RESTARTING:
        return "RESTARTING";
    default:
        return "UNKNOWN";
    }
}

void sl_cli_human(double v, char *buf, size_t cap)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fK", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
}

/* Records read by the sources so far. */
static uint64_t s_source_records(const sl_plan_t *plan, const Sluice__JobStatus *st)
{
    uint64_t n = 0;
    for (size_t i = 0; i < st->n_metrics; i++) {
        int id = sl_spec_find(plan->spec, st->metrics[i]->op);
        if (id >= 0 && plan->nodes[id].role == SL_ROLE_SOURCE)
            n += st->metrics[i]->records_out;
    }
    return n;
}

static void s_summary(const sl_plan_t *plan, const Sluice__JobStatus *st, double wall)
{
    fprintf(stderr, "\njob %s (%s) %s in %.2f s\n", st->name, st->job_id,
            sl_cli_state_name(st->state), wall);
    if (st->checkpoints || st->n_failures)
        fprintf(stderr, "%u checkpoint%s completed; %zu restart%s%s\n", (unsigned)st->checkpoints,
                st->checkpoints == 1 ? "" : "s", st->n_failures, st->n_failures == 1 ? "" : "s",
                st->restored_from ? " (the last attempt restored a checkpoint)" : "");
    for (size_t i = 0; i < st->n_failures; i++)
        fprintf(stderr, "  %s\n", st->failures[i]);
    fprintf(stderr, "%-20s %-10s %14s %14s %10s %14s\n", "operator", "type", "records in",
            "records out", "busy s", "records/s");
    for (size_t i = 0; i < st->n_metrics; i++) {
        const Sluice__OperatorMetrics *m = st->metrics[i];
        int id = sl_spec_find(plan->spec, m->op);
        const sl_plan_node_t *nd = id >= 0 ? &plan->nodes[id] : NULL;
        uint64_t work = nd && nd->role == SL_ROLE_SOURCE ? m->records_out : m->records_in;
        double rate = wall > 0 ? (double)work / wall : 0;
        char r[32];
        sl_cli_human(rate, r, sizeof r);
        fprintf(stderr, "%-20s %-10s %14llu %14llu %10.2f %14s", m->op, nd ? nd->type : "?",
                (unsigned long long)m->records_in, (unsigned long long)m->records_out,
                (double)m->busy_ns / 1e9, r);
        if (m->errors && nd && nd->kafka && nd->kafka->dead_letter)
            fprintf(stderr, "  (%llu bad records to dead-letter topic '%s')",
                    (unsigned long long)m->errors, nd->kafka->dead_letter);
        else if (m->errors)
            fprintf(stderr, "  (%llu bad records skipped)", (unsigned long long)m->errors);
        /* only a window takes late: (a join counts its late records and
         * does what docs/time.md says with them) */
        if (m->records_late)
            fprintf(stderr, "  (%llu late records%s)", (unsigned long long)m->records_late,
                    nd && nd->late_name              ? " to the side output"
                    : nd && nd->kind == SL_OP_WINDOW ? " dropped: set late: to keep them"
                                                     : "");
        fputc('\n', stderr);
    }
}

/* Submits and follows the job; returns the exit status. */
int sl_cli_submit_follow(sl_client_t *cl, const sl_cli_opts_t *o, const sl_cli_job_t *job)
{
    const sl_plan_t *plan = job->plan;
    Sluice__Envelope *rep = NULL;
    char err[4096], job_id[128];
    int rc = sl_client_submit_from(cl, o->spec_path, job->text, job->len, job->plugin_bytes,
                                   job->plugin_len, o->params, o->parallelism, o->from_savepoint,
                                   job_id, sizeof job_id, err, sizeof err);
    if (rc) {
        fprintf(stderr, "sluice: submit failed: %s\n", err);
        return 1;
    }

    bool tty = !o->quiet && isatty(STDERR_FILENO);
    double t0 = s_now(), last_print = 0;
    uint64_t last_records = 0;
    double last_t = t0;
    bool canceled = false;
    for (;;) {
        if (sl_cli_interrupted && !canceled) {
            fprintf(stderr, "\nsluice: interrupted, canceling %s\n", job_id);
            if (sl_client_cancel(cl, job_id, err, sizeof err) != SL_OK)
                fprintf(stderr, "sluice: cancel failed: %s\n", err);
            canceled = true;
        }
        rc = sl_client_status(cl, job_id, 10000, &rep, err, sizeof err);
        if (rc) {
            fprintf(stderr, "sluice: lost the master: %s\n", err);
            return 1;
        }
        const Sluice__JobStatus *st = rep->job_status;
        double now = s_now();
        if (st->state == SLUICE__JOB_STATE_KIND__JOB_FINISHED ||
            st->state == SLUICE__JOB_STATE_KIND__JOB_FAILED ||
            st->state == SLUICE__JOB_STATE_KIND__JOB_CANCELED ||
            st->state == SLUICE__JOB_STATE_KIND__JOB_STOPPED) {
            if (tty)
                fprintf(stderr, "\r\033[K");
            s_summary(plan, st, now - t0);
            int status = st->state == SLUICE__JOB_STATE_KIND__JOB_FINISHED ? 0 : 1;
            if (status)
                fprintf(stderr, "sluice: job %s: %s\n", sl_cli_state_name(st->state),
                        st->error[0] ? st->error : "no reason given");
            sl_msg_free(&rep);
            return status;
        }
        if (tty && now - last_print >= 0.25) {
            uint64_t n = s_source_records(plan, st);
            double rate = now > last_t ? (double)(n - last_records) / (now - last_t) : 0;
            char a[32], b[32];
            sl_cli_human((double)n, a, sizeof a);
            sl_cli_human(rate, b, sizeof b);
            fprintf(stderr, "\r\033[K%s %s: %s records read, %s records/s, %.1f s",
                    sl_cli_state_name(st->state), job_id, a, b, now - t0);
            if (st->reason[0])
                fprintf(stderr, " (%s)", st->reason);
            last_print = now;
            last_records = n;
            last_t = now;
        }
        sl_msg_free(&rep);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling interval of the status */
    }
}

int sl_cli_load(const sl_cli_opts_t *o, sl_cli_job_t *job)
{
    memset(job, 0, sizeof *job);
    job->text = sl_cli_read_spec(o->spec_path, &job->len);
    if (!job->text) {
        fprintf(stderr, "sluice: cannot read %s (missing, unreadable or over %d bytes)\n",
                o->spec_path, SL_SPEC_MAX_BYTES);
        return 1;
    }
    sl_diag_t *d = sl_diag_new(o->spec_path);
    int rc =
        d ? sl_spec_load(o->spec_path, job->text, job->len, o->params, d, &job->spec) : SL_NOMEM;
    if (rc == SL_OK && job->spec->plugin) {
        char err[1024];
        const sl_ynode_t *at = job->spec->plugin_node;
        job->plugin_bytes = sl_plugin_read(job->spec->plugin, &job->plugin_len, err, sizeof err);
        rc = job->plugin_bytes ? sl_plugin_open(job->spec->plugin, &job->plugin, err, sizeof err)
                               : SL_IO;
        if (rc != SL_OK)
            sl_diag_error(d, at->line, at->col, "%s", err);
    }
    if (rc == SL_OK)
        rc = sl_plan_build(job->spec, o->parallelism, job->plugin, d, &job->plan);
    if (rc != SL_OK) {
        if (d)
            sl_diag_print(d, stderr);
        int n = d ? sl_diag_count(d) : 0;
        fprintf(stderr, "%s: %d error%s\n", o->spec_path, n ? n : 1, n == 1 ? "" : "s");
        sl_diag_destroy(&d);
        sl_cli_job_free(job);
        return 1;
    }
    sl_diag_destroy(&d);
    return 0;
}

void sl_cli_job_free(sl_cli_job_t *job)
{
    sl_plan_destroy(&job->plan);
    sl_spec_destroy(&job->spec);
    sl_plugin_close(&job->plugin);
    free(job->plugin_bytes);
    free(job->text);
    memset(job, 0, sizeof *job);
}
