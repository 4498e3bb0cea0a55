/* check_runtime.c — the embedded mini-cluster end to end: backpressure from
 * a slow sink reaches the sources with bounded records in flight, nothing
 * is lost when the sink catches up, jobs wait for slots with a visible
 * reason, cancel stops a blocked job, and a bad spec is refused with its
 * position. The master, workers and tasks are the real ones. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "minicluster.h"
#include "sluice/err.h"
#include "testutil.h"

#define N_LINES 200000

typedef struct {
    sl_client_t *cl;
    const char *job;
    const char *op;            /* operator whose metrics are watched */
    Sluice__JobStateKind want; /* state waited for */
    uint64_t last;             /* stall detection: last records_out seen */
    struct timespec since;     /* when it last changed */
    uint64_t value;            /* out: records_out of op */
    uint64_t bp_ns;            /* out: backpressure of op */
    uint64_t bp_others;        /* out: backpressure of every other operator */
    uint64_t sink_in;          /* out: records_in of op "out" */
} s_watch_t;

/* Fetches the job status and fills w's outputs; the state or -1. */
static int s_poll(s_watch_t *w)
{
    Sluice__Envelope *rep = NULL;
    char err[512];
    if (sl_client_status(w->cl, w->job, 5000, &rep, err, sizeof err) != SL_OK)
        return -1;
    const Sluice__JobStatus *st = rep->job_status;
    w->bp_others = 0;
    for (size_t i = 0; i < st->n_metrics; i++) {
        if (w->op && strcmp(st->metrics[i]->op, w->op) == 0) {
            w->value = st->metrics[i]->records_out;
            w->bp_ns = st->metrics[i]->backpressure_ns;
        } else {
            w->bp_others += st->metrics[i]->backpressure_ns;
        }
        if (strcmp(st->metrics[i]->op, "out") == 0)
            w->sink_in = st->metrics[i]->records_in;
    }
    int state = (int)st->state;
    sl_msg_free(&rep);
    return state;
}

static bool s_backpressured(void *arg)
{
    s_watch_t *w = arg;
    return s_poll(w) >= 0 && w->bp_ns > 0;
}

/* True once the watched count has not moved for 600 ms. */
static bool s_stalled(void *arg)
{
    s_watch_t *w = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s_poll(w) < 0)
        return false;
    if (w->value != w->last) {
        w->last = w->value;
        w->since = now;
        return false;
    }
    long ms = (now.tv_sec - w->since.tv_sec) * 1000 + (now.tv_nsec - w->since.tv_nsec) / 1000000;
    return ms >= 600;
}

static bool s_in_state(void *arg)
{
    s_watch_t *w = arg;
    return s_poll(w) == (int)w->want;
}

typedef struct {
    int fd;
    long lines;
} s_reader_t;

static void *s_drain(void *arg)
{
    s_reader_t *r = arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            r->lines += buf[i] == '\n';
    return NULL;
}

static char *s_write_input(const char *dir)
{
    char *path = malloc(strlen(dir) + 16);
    sprintf(path, "%s/in.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < N_LINES; i++)
        fprintf(f, "line %07d of the slow sink test, padded to about sixty bytes\n", i);
    fclose(f);
    return path;
}

static const char *s_spec = "name: slow-sink\n"
                            "parallelism: 2\n"
                            "sources:\n"
                            "  - { name: src, type: file, format: text, path: '${input}' }\n"
                            "operators:\n"
                            "  - { name: tag, type: map, input: src, select: { l: line } }\n"
                            "sinks:\n"
                            "  - { name: out, type: stdout, input: tag }\n";

START_TEST(test_slow_sink_backpressure)
{
    char *dir = sl_test_tmpdir();
    char *input = s_write_input(dir);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fds[1], STDOUT_FILENO); /* the sink writes into a pipe nobody reads yet */
    close(fds[1]);

    char err[1024], job[64];
    sl_minicluster_t *mc = sl_minicluster_start(2, 2, err, sizeof err);
    ck_assert_msg(mc != NULL, "%s", err);
    sl_params_t *params = sl_params_new();
    sl_params_set(params, "input", input);
    ck_assert_int_eq(sl_client_submit(sl_minicluster_client(mc), "slow.yaml", s_spec,
                                      strlen(s_spec), params, 0, job, sizeof job, err, sizeof err),
                     SL_OK);
    s_watch_t w = {.cl = sl_minicluster_client(mc), .job = job, .op = "tag"};
    clock_gettime(CLOCK_MONOTONIC, &w.since);

    /* The sink is stuck: the sources feel it and stop. */
    ck_assert_msg(sl_wait_until(s_backpressured, &w, 30000), "no backpressure reported");
    ck_assert_msg(sl_wait_until(s_stalled, &w, 30000), "the sources never stopped");
    /* Bounded: per sender at most its credits (8) plus the batches being
     * filled are in flight; a batch of these rows holds about 450. */
    ck_assert_uint_lt(w.value, N_LINES / 4);
    ck_assert_msg(w.value - w.sink_in <= 2 * 10 * 460, "%llu records in flight",
                  (unsigned long long)(w.value - w.sink_in));

    /* The sink catches up: everything arrives, exactly once. */
    s_reader_t r = {.fd = fds[0]};
    pthread_t t;
    pthread_create(&t, NULL, s_drain, &r);
    w.want = SLUICE__JOB_STATE_KIND__JOB_FINISHED;
    ck_assert_msg(sl_wait_until(s_in_state, &w, 60000), "job did not finish");
    sl_minicluster_stop(&mc);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO); /* closes the pipe's last writer: the reader sees EOF */
    close(saved);
    pthread_join(t, NULL);
    close(fds[0]);
    ck_assert_int_eq(r.lines, N_LINES + 1); /* + the CSV header */
    sl_params_destroy(&params);
    sl_test_rmrf(dir);
    free(input);
    free(dir);
}
END_TEST

/* A job whose stdout sink writes into a pipe nobody reads, on a
 * mini-cluster of one worker with `slots` slots: the sink gets stuck and
 * holds its upstreams back. s_stuck_end cancels it, checks it ends
 * CANCELED and undoes the rest. */
typedef struct {
    char *dir, *input;
    int fd, saved;
    sl_minicluster_t *mc;
    sl_params_t *params;
    char job[64];
} s_stuck_t;

static void s_stuck_start(s_stuck_t *st, int slots, const char *name, const char *spec)
{
    st->dir = sl_test_tmpdir();
    st->input = s_write_input(st->dir);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    st->saved = dup(STDOUT_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[1]);
    st->fd = fds[0];
    char err[1024];
    st->mc = sl_minicluster_start(1, slots, err, sizeof err);
    ck_assert_msg(st->mc != NULL, "%s", err);
    st->params = sl_params_new();
    sl_params_set(st->params, "input", st->input);
    ck_assert_int_eq(sl_client_submit(sl_minicluster_client(st->mc), name, spec, strlen(spec),
                                      st->params, 0, st->job, sizeof st->job, err, sizeof err),
                     SL_OK);
}

static void s_stuck_end(s_stuck_t *st)
{
    char err[1024];
    s_watch_t w = {.cl = sl_minicluster_client(st->mc), .job = st->job};
    ck_assert_int_eq(sl_client_cancel(w.cl, st->job, err, sizeof err), SL_OK);
    w.want = SLUICE__JOB_STATE_KIND__JOB_CANCELED;
    ck_assert(sl_wait_until(s_in_state, &w, 10000));
    /* Stopping joins every task thread: a task stuck on a full pipe or
     * waiting for credit must notice the cancel. */
    sl_minicluster_stop(&st->mc);
    dup2(st->saved, STDOUT_FILENO);
    close(st->saved);
    close(st->fd);
    sl_params_destroy(&st->params);
    sl_test_rmrf(st->dir);
    free(st->input);
    free(st->dir);
}

START_TEST(test_cancel_blocked_job)
{
    s_stuck_t st;
    s_stuck_start(&st, 2, "slow.yaml", s_spec);
    s_watch_t w = {.cl = sl_minicluster_client(st.mc), .job = st.job, .op = "tag"};
    ck_assert(sl_wait_until(s_backpressured, &w, 30000));
    s_stuck_end(&st);
}
END_TEST

/* A branching chain: src feeds a chained map→discard branch and, through
 * `tag`, a stdout sink in another task. The chain's last operator is
 * `drop`, but the edge held back by the stuck sink is tag's: the credit
 * wait is tag's backpressure, and no other operator's. */
static const char *s_branch_spec =
    "name: branch-bp\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - { name: src, type: file, format: text, path: '${input}' }\n"
    "operators:\n"
    "  - { name: tag, type: map, input: src, select: { l: line } }\n"
    "  - { name: keep, type: map, input: src, select: { l: line } }\n"
    "sinks:\n"
    "  - { name: out, type: stdout, input: tag }\n"
    "  - { name: drop, type: discard, input: keep }\n";

START_TEST(test_branch_backpressure_on_sender)
{
    s_stuck_t st;
    s_stuck_start(&st, 4, "branch.yaml", s_branch_spec);
    s_watch_t w = {.cl = sl_minicluster_client(st.mc), .job = st.job, .op = "tag"};
    clock_gettime(CLOCK_MONOTONIC, &w.since);
    ck_assert_msg(sl_wait_until(s_backpressured, &w, 30000), "no backpressure reported on 'tag'");
    ck_assert_msg(sl_wait_until(s_stalled, &w, 30000), "the source never stopped");
    ck_assert_int_ge(s_poll(&w), 0);
    ck_assert_msg(w.bp_ns > 0 && w.bp_others == 0,
                  "backpressure: 'tag' %llu ns, the other operators %llu ns (only 'tag' sends "
                  "to the stuck sink)",
                  (unsigned long long)w.bp_ns, (unsigned long long)w.bp_others);
    s_stuck_end(&st);
}
END_TEST

typedef struct {
    sl_client_t *cl;
    const char *job, *text;
    char last[256]; /* the last reason seen, for the failure message */
} s_reason_t;

static bool s_scheduled_because(void *arg)
{
    s_reason_t *r = arg;
    Sluice__Envelope *rep = NULL;
    char err[256];
    if (sl_client_status(r->cl, r->job, 5000, &rep, err, sizeof err) != SL_OK)
        return false;
    snprintf(r->last, sizeof r->last, "%s", rep->job_status->reason);
    bool ok = rep->job_status->state == SLUICE__JOB_STATE_KIND__JOB_SCHEDULED &&
              strstr(rep->job_status->reason, r->text) != NULL;
    sl_msg_free(&rep);
    return ok;
}

START_TEST(test_waits_for_slots_with_reason)
{
    char err[1024], job[64];
    sl_minicluster_t *mc = sl_minicluster_start(1, 2, err, sizeof err);
    const char *spec = "name: wide\n"
                       "parallelism: 4\n"
                       "sources:\n"
                       "  - { name: src, type: file, format: text, path: /nonexistent }\n"
                       "sinks:\n"
                       "  - { name: out, type: stdout, input: src }\n";
    ck_assert_int_eq(sl_client_submit(sl_minicluster_client(mc), "wide.yaml", spec, strlen(spec),
                                      NULL, 0, job, sizeof job, err, sizeof err),
                     SL_OK);
    /* Once the worker has registered, the job still waits, and says why. */
    s_reason_t why = {.cl = sl_minicluster_client(mc), .job = job, .text = "needs 4, 2 free"};
    ck_assert_msg(sl_wait_until(s_scheduled_because, &why, 10000), "last reason: %s", why.last);
    Sluice__Envelope *rep = NULL;
    ck_assert_int_eq(sl_client_cancel(sl_minicluster_client(mc), job, err, sizeof err), SL_OK);
    s_watch_t w = {
        .cl = sl_minicluster_client(mc), .job = job, .want = SLUICE__JOB_STATE_KIND__JOB_CANCELED};
    ck_assert(sl_wait_until(s_in_state, &w, 5000));
    ck_assert_int_eq(
        sl_client_status(sl_minicluster_client(mc), "job-9999", 5000, &rep, err, sizeof err),
        SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "job-9999"));
    sl_minicluster_stop(&mc);
}
END_TEST

START_TEST(test_bad_spec_refused_with_position)
{
    char err[2048], job[64];
    sl_minicluster_t *mc = sl_minicluster_start(1, 1, err, sizeof err);
    const char *spec = "name: bad\n"
                       "sources:\n"
                       "  - { name: src, type: file, format: text, path: x }\n"
                       "operators:\n"
                       "  - { name: f, type: filter, input: src, where: lenght(line) > 3 }\n"
                       "sinks:\n"
                       "  - { name: out, type: stdout, input: f }\n";
    ck_assert_int_eq(sl_client_submit(sl_minicluster_client(mc), "bad.yaml", spec, strlen(spec),
                                      NULL, 0, job, sizeof job, err, sizeof err),
                     SL_SPEC);
    ck_assert_msg(strstr(err, "bad.yaml:5:49:") && strstr(err, "did you mean 'length'"), "%s", err);
    sl_minicluster_stop(&mc);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("minicluster");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slow_sink_backpressure);
    tcase_add_test(tc, test_cancel_blocked_job);
    tcase_add_test(tc, test_branch_backpressure_on_sender);
    tcase_add_test(tc, test_waits_for_slots_with_reason);
    tcase_add_test(tc, test_bad_spec_refused_with_position);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
