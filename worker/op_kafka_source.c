/* op_kafka_source.c — the `kafka` source: reads one or more topics (named,
 * or matching a pattern), unbounded by default (until canceled), or bounded
 * up to the high watermarks seen when the job first started.
 *
 * Partitions are assigned, never subscribed: the partitions of all topics,
 * ordered by (topic, partition), are dealt round-robin to the subtasks
 * (partition number i of that list goes to subtask i mod P), so a run is
 * deterministic and needs no group coordination. A checkpoint holds that
 * list with the next offset of each partition; a restore keeps the list's
 * order (new partitions are appended), so a partition keeps its subtask
 * across restarts, and on a rescale every subtask receives every old
 * subtask's section and takes the offsets of the partitions it owns now.
 * A restored partition is assigned at exactly its checkpointed offset: the
 * checkpoint, not the group's committed offsets, is the source of truth.
 * When a checkpoint completes, its offsets are committed to the consumer
 * group (asynchronously; a failure is logged, never fails the job) so that
 * the usual lag tools see the progress.
 *
 * auto.offset.reset=error and an up-front check of every start offset
 * against the partition's watermarks make a missing offset fail the task
 * naming topic, partition and offset; nothing is skipped silently.
 *
 * Event time: with `timestamp:`/`watermark:`, the source's watermark is the
 * least of its partitions' (each the largest event time read from it minus
 * max_out_of_order), leaving out partitions that got nothing for the idle
 * timeout (operator.h: own_wm). The lag per partition (log end offset minus
 * position, from librdkafka's cached watermarks) goes to the task's metrics.
 * Record values become rows through sluice/kafka.h (JSON, CSV, raw). */
#define _POSIX_C_SOURCE 200809L
#include <librdkafka/rdkafka.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_conf.h"
#include "operator.h"
#include "sluice/err.h"
#include "sluice/expr.h"
#include "sluice/kafka.h"

#define S_LOGGED_ERRORS 10  /* malformed records logged per subtask before going quiet */
#define S_POLL_MS 50        /* longest wait in one poll (bounds cancel and checkpoint latency) */
#define S_LAG_EVERY_MS 500  /* how often the lag is computed and reported */
#define S_PENDING 16        /* snapshots waiting for their checkpoint to complete */
#define S_SNAP_VERSION 1    /* of the snapshot below */
#define S_TOPIC_MAX 249     /* longest Kafka topic name */
#define S_LOGGED_COMMITS 10 /* failed commits logged per subtask before going quiet */
#define S_BATCH 256         /* most messages taken from the consumer queue at once */

typedef struct {
    char *topic;       /* owned */
    int32_t partition; /* in the topic */
    bool owned;        /* this subtask reads it */
    bool gone;         /* named by the checkpoint, not in the metadata any more */
    int64_t next;      /* next offset to read, -1 = not known (not owned, or not restored) */
    int64_t end;       /* bounded: the offset it stops before; -1 = unbounded */
    bool done;         /* bounded: next reached end */
    int64_t hi;        /* the latest log end offset known (for the lag) */
    int64_t max_ts;    /* largest event time read from it (SL_WM_MIN: none) */
    int64_t last_ms;   /* monotonic ms of its last record (or of its assignment) */
    bool eof;          /* at its log end (end of partition seen, no record since) */
} s_part_t;

typedef struct {
    uint64_t id;   /* the checkpoint */
    int n;         /* entries of next */
    int64_t *next; /* per owned partition (in s->own order): next offset */
} s_pending_t;

typedef struct {
    rd_kafka_t *rk;              /* the consumer, or NULL */
    sl_value_t *vals;            /* one record (+1 for an event-time expression) */
    s_part_t *parts;             /* every partition read by the job, in assignment order */
    int nparts, cap;             /* entries / capacity of parts */
    int *own;                    /* indexes into parts of this subtask's partitions */
    int nown;                    /* entries of own */
    int remaining;               /* bounded: owned partitions not done */
    int last;                    /* index into parts of the last record's partition, or -1 */
    bool want_wm;                /* the source generates watermarks (own_wm) */
    s_pending_t pend[S_PENDING]; /* snapshots of checkpoints not yet complete, oldest first */
    int npend;                   /* entries of pend */
    unsigned commit_fails;       /* failed commits so far */
    char last_err[256];          /* the latest client-level error (broker unreachable...) */
    int64_t last_err_ms;         /* when it happened, 0 = none */
    int last_err_code;           /* its code (rd_kafka_resp_err_t) */
    int64_t lag_ms;              /* when the lag was last reported */
    double credit;               /* rate: records that may be read now (at most 50 ms worth) */
    int64_t credit_ms;           /* rate: when credit was last topped up */
    rd_kafka_queue_t *q;         /* the consumer queue the batches come from */
    rd_kafka_message_t *batch[S_BATCH]; /* the messages of one batch */
    rd_kafka_t *dlq;                    /* on_error: {dead_letter:}: its producer, or NULL */
    char dlq_err[256];                  /* the first failed dead-letter delivery, "" = none */
} s_state_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    s_state_t *s = opaque;
    snprintf(s->last_err, sizeof s->last_err, "%s: %s", rd_kafka_err2str((rd_kafka_resp_err_t)err),
             reason);
    s->last_err_ms = s_now_ms();
    s->last_err_code = err;
}

/* The answer to an asynchronous commit of checkpointed offsets: a failure
 * is logged (the first few per subtask), never fatal. */
static void s_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    s_state_t *s = opaque;
    for (int i = 0; !err && offsets && i < offsets->cnt; i++)
        err = offsets->elems[i].err;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET && s->commit_fails++ < S_LOGGED_COMMITS)
        fprintf(stderr,
                "sluice: kafka source: committing checkpointed offsets to the group failed (the "
                "job goes on): %s\n",
                rd_kafka_err2str(err));
}

static void s_pending_clear(s_state_t *s, int upto)
{
    for (int i = 0; i < upto; i++)
        free(s->pend[i].next);
    memmove(s->pend, s->pend + upto, (size_t)(s->npend - upto) * sizeof *s->pend);
    s->npend -= upto;
}

static int s_open(sl_opctx_t *c)
{
    s_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->last = -1;
    const sl_plan_node_t *nd = c->node;
    s->want_wm = nd->watermarks && nd->rowtime >= 0;
    c->own_wm = s->want_wm;
    s->vals = calloc((size_t)sl_plan_source_schema(nd)->nfields + 1, sizeof *s->vals);
    return s->vals ? SL_OK : SL_NOMEM;
}

static void s_close(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    if (s) {
        if (s->q)
            rd_kafka_queue_destroy(s->q);
        if (s->rk) {
            rd_kafka_consumer_close(s->rk);
            rd_kafka_destroy(s->rk);
        }
        if (s->dlq) /* undelivered dead letters: no checkpoint covers their records */
            rd_kafka_destroy(s->dlq);
        for (int i = 0; i < s->nparts; i++)
            free(s->parts[i].topic);
        free(s->parts);
        free(s->own);
        s_pending_clear(s, s->npend);
        free(s->vals);
    }
    free(s);
    c->state = NULL;
}

/* The entry of (topic, partition) in s->parts, or -1. */
static int s_find(const s_state_t *s, const char *topic, size_t tlen, int32_t partition)
{
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].partition == partition && strlen(s->parts[i].topic) == tlen &&
            memcmp(s->parts[i].topic, topic, tlen) == 0)
            return i;
    return -1;
}

/* Appends (topic, partition), not owned, position unknown; its index or
 * SL_NOMEM. */
static int s_add(s_state_t *s, const char *topic, size_t tlen, int32_t partition)
{
    if (s->nparts == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        s_part_t *p = realloc(s->parts, (size_t)cap * sizeof *p);
        if (!p)
            return SL_NOMEM;
        s->parts = p;
        s->cap = cap;
    }
    s_part_t *pt = &s->parts[s->nparts];
    *pt = (s_part_t){.partition = partition, .next = -1, .end = -1, .max_ts = SL_WM_MIN};
    if (!(pt->topic = strndup(topic, tlen)))
        return SL_NOMEM;
    return s->nparts++;
}

/* A dead letter's delivery report: the first failure is kept, and fails
 * the next checkpoint (or the end of a bounded read). */
static void s_on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    s_state_t *s = opaque;
    if (m->err && !s->dlq_err[0])
        snprintf(s->dlq_err, sizeof s->dlq_err, "%s", rd_kafka_err2str(m->err));
}

/* on_error: {dead_letter: TOPIC}: the producer of dead letters, with the
 * user's properties (security settings apply to it too); idempotent, so a
 * retried produce is not appended twice. */
static int s_dlq_connect(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    char what[300], tmo[32];
    snprintf(what, sizeof what, "the producer of dead-letter topic '%s'", k->dead_letter);
    snprintf(tmo, sizeof tmo, "%d", k->timeout_ms < 1000 ? 1000 : k->timeout_ms);
    const char *fixed[][2] = {{"bootstrap.servers", k->bootstrap},
                              {"enable.idempotence", "true"},
                              {"acks", "all"},
                              {"linger.ms", "5"},
                              {"message.timeout.ms", tmo}};
    sl_kafka_cbs_t cbs = {.error_cb = s_on_error, .dr_msg_cb = s_on_dlq_delivery};
    int rc = SL_OK;
    s->dlq = sl_kafka_client_new(c, RD_KAFKA_PRODUCER, what, fixed, sizeof fixed / sizeof *fixed,
                                 &cbs, &rc);
    return rc;
}

/* Waits until every dead letter produced so far is acknowledged; fails
 * (naming the topic) when one was not, or not within timeout_ms. */
static int s_dlq_flush(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    if (!s->dlq)
        return SL_OK;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rd_kafka_outq_len(s->dlq) > 0)
        err = rd_kafka_flush(s->dlq, k->timeout_ms < 1000 ? 1000 : k->timeout_ms);
    else
        rd_kafka_poll(s->dlq, 0);
    if (s->dlq_err[0] || err)
        return sl_op_fail(c, SL_IO,
                          "source '%s': records sent to dead-letter topic '%s' at %s were not "
                          "acknowledged: %s",
                          c->node->name, k->dead_letter, k->bootstrap,
                          s->dlq_err[0] ? s->dlq_err : rd_kafka_err2str(err));
    return SL_OK;
}

/* Creates the consumer with the source's settings and the user's. */
static int s_connect(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    char group[256];
    /* assign() needs a group.id; it names the group the offsets go to. */
    snprintf(group, sizeof group, "%s", k->group ? k->group : "");
    if (!k->group)
        snprintf(group, sizeof group, "sluice.%s.%s", c->plan->name ? c->plan->name : "job",
                 c->node->name);
    const char *fixed[][2] = {
        {"bootstrap.servers", k->bootstrap}, {"group.id", group},
        {"enable.auto.commit", "false"},     {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "error"},      {"enable.partition.eof", "true"}};
    sl_kafka_cbs_t cbs = {.error_cb = s_on_error, .offset_commit_cb = s_on_commit};
    int rc = SL_OK;
    s->rk = sl_kafka_client_new(c, RD_KAFKA_CONSUMER, "a Kafka consumer", fixed,
                                sizeof fixed / sizeof *fixed, &cbs, &rc);
    if (!s->rk)
        return rc;
    rd_kafka_poll_set_consumer(s->rk);
    if (!(s->q = rd_kafka_queue_get_consumer(s->rk)))
        return sl_op_fail(c, SL_INVAL, "source '%s': the Kafka consumer has no queue",
                          c->node->name);
    return k->dead_letter ? s_dlq_connect(c) : SL_OK;
}

/* Waits up to 50 ms (a quick answer that is not final: retry shortly). */
static void s_pause(void)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* The metadata of one topic (topic != NULL) or of all, retried until the
 * timeout; *md on success (rd_kafka_metadata_destroy it). */
static int s_metadata(sl_opctx_t *c, const char *topic, const struct rd_kafka_metadata **out)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    rd_kafka_topic_t *rkt = topic ? rd_kafka_topic_new(s->rk, topic, NULL) : NULL;
    if (topic && !rkt)
        return sl_op_fail(c, SL_NOMEM, "source '%s': cannot open topic '%s'", c->node->name, topic);
    const char *what = topic ? topic : k->topic_pattern;
    int64_t deadline = s_now_ms() + k->timeout_ms;
    int rc = SL_OK;
    *out = NULL;
    for (;;) {
        if (atomic_load(c->cancel)) {
            rc = SL_CANCELED;
            break;
        }
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - s_now_ms();
        rd_kafka_resp_err_t err = rd_kafka_metadata(s->rk, topic ? 0 : 1, rkt, &md,
                                                    left < 500 ? (left > 0 ? (int)left : 1) : 500);
        if (!err && topic && md->topic_cnt == 1) {
            err = md->topics[0].err;
            if (!err && md->topics[0].partition_cnt <= 0)
                err = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE; /* being created */
        }
        if (!err) {
            *out = md;
            break;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        /* serves the error callback: the client's own reason (an
         * authentication failure, say) is better than "transport failure" */
        rd_kafka_message_t *ev = rd_kafka_consumer_poll(s->rk, 0);
        if (ev)
            rd_kafka_message_destroy(ev);
        if (s->last_err_code == RD_KAFKA_RESP_ERR__AUTHENTICATION) { /* not transient */
            rc = sl_op_fail(c, SL_IO, "source '%s': authentication to Kafka at %s failed: %s",
                            c->node->name, k->bootstrap, s->last_err);
            break;
        }
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && s_now_ms() >= deadline) {
            rc = sl_op_fail(c, SL_NOTFOUND, "source '%s': topic '%s' does not exist at %s",
                            c->node->name, what, k->bootstrap);
            break;
        }
        if (s_now_ms() >= deadline) {
            rc = sl_op_fail(c, SL_TIMEOUT,
                            "source '%s': cannot reach Kafka at %s within %d ms (topic '%s'): %s",
                            c->node->name, k->bootstrap, k->timeout_ms, what,
                            s->last_err_ms ? s->last_err : rd_kafka_err2str(err));
            break;
        }
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT)
            s_pause();
    }
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

/* The dead-letter topic must exist: records would otherwise wait in the
 * producer until the next checkpoint fails. */
static int s_dlq_check(sl_opctx_t *c)
{
    const sl_kafka_cfg_t *k = c->node->kafka;
    const struct rd_kafka_metadata *md = NULL;
    int rc = s_metadata(c, k->dead_letter, &md);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rc == SL_NOTFOUND)
        rc = sl_op_fail(c, rc,
                        "source '%s': dead-letter topic '%s' does not exist at %s (on_error: "
                        "records that cannot be parsed go there; create it first)",
                        c->node->name, k->dead_letter, k->bootstrap);
    return rc;
}

static int s_cmp_tp(const void *a, const void *b)
{
    const s_part_t *x = a, *y = b;
    int d = strcmp(x->topic, y->topic);
    return d ? d : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Adds to *cur (nc entries) every partition of the metadata's topics that
 * the source reads. */
static int s_collect(const struct rd_kafka_metadata *md, const regex_t *re, s_part_t **cur, int *nc)
{
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        if (mt->err ||
            (re && (strncmp(mt->topic, "__", 2) == 0 || regexec(re, mt->topic, 0, NULL, 0) != 0)))
            continue;
        s_part_t *p = realloc(*cur, (size_t)(*nc + mt->partition_cnt + 1) * sizeof *p);
        if (!p)
            return SL_NOMEM;
        *cur = p;
        for (int i = 0; i < mt->partition_cnt; i++) {
            p[*nc] = (s_part_t){.partition = mt->partitions[i].id};
            if (!(p[*nc].topic = strdup(mt->topic)))
                return SL_NOMEM;
            (*nc)++;
        }
    }
    return SL_OK;
}

/* The partitions the source reads now, from the metadata, sorted by
 * (topic, partition) into *cur (nc entries; topics owned). */
static int s_current(sl_opctx_t *c, s_part_t **cur, int *nc)
{
    const sl_kafka_cfg_t *k = c->node->kafka;
    *cur = NULL;
    *nc = 0;
    int rc = SL_OK;
    const struct rd_kafka_metadata *md = NULL;
    if (k->topic_pattern) {
        regex_t re;
        if (sl_kafka_pattern_compile(k->topic_pattern, &re))
            return sl_op_fail(c, SL_INVAL, "source '%s': bad topic_pattern", c->node->name);
        if ((rc = s_metadata(c, NULL, &md)) == SL_OK) {
            rc = s_collect(md, &re, cur, nc);
            rd_kafka_metadata_destroy(md);
        }
        regfree(&re);
        if (rc == SL_OK && *nc == 0)
            rc =
                sl_op_fail(c, SL_NOTFOUND, "source '%s': no topic at %s matches topic_pattern '%s'",
                           c->node->name, k->bootstrap, k->topic_pattern);
    }
    for (int t = 0; t < k->ntopics && rc == SL_OK; t++)
        if ((rc = s_metadata(c, k->topics[t], &md)) == SL_OK) {
            rc = s_collect(md, NULL, cur, nc);
            rd_kafka_metadata_destroy(md);
        }
    if (rc == SL_OK && *nc > 1)
        qsort(*cur, (size_t)*nc, sizeof **cur, s_cmp_tp);
    return rc;
}

/* The low and high watermarks of one partition. ListOffsets through
 * rd_kafka_offsets_for_times (timestamps -2 = earliest, -1 = latest), which
 * keeps to its timeout, unlike rd_kafka_query_watermark_offsets (2.0.2),
 * which waits without end for a partition whose leader is down. */
static int s_watermark(sl_opctx_t *c, const s_part_t *pt, int64_t *lo, int64_t *hi)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    int64_t *out[2] = {lo, hi};
    for (int w = 0; w < 2; w++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        if (!l)
            return SL_NOMEM;
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset =
            w == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(s->rk, l, k->timeout_ms);
        if (!err)
            err = l->elems[0].err;
        *out[w] = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        if (err || *out[w] < 0)
            return sl_op_fail(c, err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_TIMEOUT : SL_IO,
                              "source '%s': cannot read the %s offset of topic '%s' partition %d "
                              "from Kafka at %s within %d ms: %s",
                              c->node->name, w == 0 ? "first" : "end", pt->topic,
                              (int)pt->partition, k->bootstrap, k->timeout_ms,
                              err ? rd_kafka_err2str(err) : "no offset in the answer");
    }
    return SL_OK;
}

/* start: committed / {timestamp:}: looks the start offsets of the owned
 * partitions without a restored position (need[i]) up in one request;
 * lo/hi per owned partition. */
static int s_lookup_starts(sl_opctx_t *c, const bool *need, const int64_t *lo, const int64_t *hi)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    bool committed = k->start == SL_KAFKA_START_COMMITTED;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(s->nown + 1);
    if (!l)
        return SL_NOMEM;
    for (int i = 0; i < s->nown; i++)
        if (need[i])
            rd_kafka_topic_partition_list_add(l, s->parts[s->own[i]].topic,
                                              s->parts[s->own[i]].partition)
                ->offset = committed ? RD_KAFKA_OFFSET_INVALID : k->start_ts;
    int rc = SL_OK;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = committed ? rd_kafka_committed(s->rk, l, k->timeout_ms)
                                            : rd_kafka_offsets_for_times(s->rk, l, k->timeout_ms);
        if (err)
            rc = sl_op_fail(c, err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_TIMEOUT : SL_IO,
                            "source '%s': cannot read the %s of %d partition(s) (first: topic "
                            "'%s' partition %d) from Kafka at %s within %d ms: %s",
                            c->node->name,
                            committed ? "committed offsets" : "offsets for the start timestamp",
                            l->cnt, l->elems[0].topic, (int)l->elems[0].partition, k->bootstrap,
                            k->timeout_ms, rd_kafka_err2str(err));
    }
    for (int i = 0, e = 0; i < s->nown && rc == SL_OK; i++) {
        if (!need[i])
            continue;
        const rd_kafka_topic_partition_t *tp = &l->elems[e++];
        s_part_t *pt = &s->parts[s->own[i]];
        if (tp->err && tp->err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            rc =
                sl_op_fail(c, SL_IO, "source '%s': topic '%s' partition %d: cannot read its %s: %s",
                           c->node->name, pt->topic, (int)pt->partition,
                           committed ? "committed offset" : "offset for the start timestamp",
                           rd_kafka_err2str(tp->err));
            break;
        }
        if (committed)
            pt->next = tp->offset >= 0                        ? tp->offset
                       : k->fallback == SL_KAFKA_START_LATEST ? hi[i]
                                                              : lo[i];
        else
            pt->next = tp->offset >= 0 ? tp->offset : hi[i]; /* -1: nothing at or after it */
        if (pt->next < lo[i] || pt->next > hi[i])
            rc = sl_op_fail(c, SL_RANGE,
                            "source '%s': topic '%s' partition %d has no offset %lld (its %s): it "
                            "holds offsets %lld to %lld",
                            c->node->name, pt->topic, (int)pt->partition, (long long)pt->next,
                            committed ? "committed offset" : "offset for the start timestamp",
                            (long long)lo[i], (long long)hi[i] - 1);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* Decides the partitions of this subtask and where each starts (restored
 * position, or the configured start), checks the start offsets against
 * the watermarks and assigns the partitions not yet done. */
static int s_assign(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    s_part_t *cur = NULL;
    int nc = 0, rc = s_current(c, &cur, &nc);
    if (rc == SL_OK && k->dead_letter)
        rc = s_dlq_check(c);
    bool restored = s->nparts > 0;
    /* the checkpoint's order first (a partition keeps its subtask), then
     * the partitions it did not know, in (topic, partition) order */
    for (int i = 0; i < s->nparts; i++)
        s->parts[i].gone = true;
    for (int i = 0; i < nc && rc == SL_OK; i++) {
        int at = s_find(s, cur[i].topic, strlen(cur[i].topic), cur[i].partition);
        if (at < 0 && (at = s_add(s, cur[i].topic, strlen(cur[i].topic), cur[i].partition)) < 0)
            rc = at;
        else
            s->parts[at].gone = false;
    }
    for (int i = 0; i < nc; i++)
        free(cur[i].topic);
    free(cur);
    if (rc)
        return rc;
    for (int i = 0; i < k->noffsets; i++)
        if (s_find(s, k->topic, strlen(k->topic), k->offsets[i].partition) < 0)
            return sl_op_fail(c, SL_NOTFOUND, "source '%s': topic '%s' has no partition %d",
                              c->node->name, k->topic, k->offsets[i].partition);
    for (int i = 0; i < k->nstop; i++)
        if (s_find(s, k->topic, strlen(k->topic), k->stop_offsets[i].partition) < 0)
            return sl_op_fail(c, SL_NOTFOUND,
                              "source '%s': topic '%s' has no partition %d (named by stop: "
                              "offsets)",
                              c->node->name, k->topic, k->stop_offsets[i].partition);
    s->own = calloc((size_t)s->nparts + 1, sizeof *s->own);
    int64_t *lo = calloc((size_t)s->nparts + 1, sizeof *lo);
    int64_t *hi = calloc((size_t)s->nparts + 1, sizeof *hi);
    bool *need = calloc((size_t)s->nparts + 1, sizeof *need);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(s->nparts + 1);
    if (!s->own || !lo || !hi || !need || !list) {
        rc = SL_NOMEM;
        goto out;
    }
    for (int i = 0; i < s->nparts; i++) {
        s_part_t *pt = &s->parts[i];
        pt->owned = !pt->gone && i % c->parallelism == c->subtask;
        if (pt->owned)
            s->own[s->nown++] = i;
        else
            pt->next = pt->end = -1;
    }
    int64_t now = s_now_ms();
    for (int i = 0; i < s->nown && rc == SL_OK; i++) {
        s_part_t *pt = &s->parts[s->own[i]];
        if ((rc = s_watermark(c, pt, &lo[i], &hi[i])) != SL_OK)
            break;
        pt->hi = hi[i];
        pt->last_ms = now;
        if (k->bounded && pt->end < 0) { /* first start: where it ends */
            pt->end = hi[i];
            for (int j = 0; j < k->nstop; j++)
                if (k->stop_offsets[j].partition == pt->partition)
                    pt->end = k->stop_offsets[j].offset; /* may lie ahead: waits for it */
        }
        if (pt->next >= 0) { /* restored: exactly where the checkpoint was */
            if (pt->next < lo[i] || pt->next > hi[i])
                rc = sl_op_fail(c, SL_RANGE,
                                "source '%s': topic '%s' partition %d has no offset %lld (restored "
                                "from the checkpoint): it holds offsets %lld to %lld",
                                c->node->name, pt->topic, (int)pt->partition, (long long)pt->next,
                                (long long)lo[i], (long long)hi[i] - 1);
            else {
                const char *cp = c->restore_dir ? strrchr(c->restore_dir, '/') : NULL;
                fprintf(stderr,
                        "sluice: source '%s' subtask %d: resuming topic '%s' partition %d at "
                        "offset %lld (checkpoint %s)\n",
                        c->node->name, c->subtask, pt->topic, (int)pt->partition,
                        (long long)pt->next,
                        cp               ? cp + 1
                        : c->restore_dir ? c->restore_dir
                                         : "?");
            }
            continue;
        }
        if (restored) { /* a partition the checkpoint did not know: new, read it all */
            pt->next = lo[i];
            continue;
        }
        switch (k->start) {
        case SL_KAFKA_START_LATEST:
            pt->next = hi[i];
            break;
        case SL_KAFKA_START_COMMITTED:
        case SL_KAFKA_START_TIMESTAMP:
            need[i] = true;
            break;
        case SL_KAFKA_START_EARLIEST:
        case SL_KAFKA_START_OFFSETS:
            pt->next = lo[i];
            for (int j = 0; j < k->noffsets; j++)
                if (k->offsets[j].partition == pt->partition) {
                    pt->next = k->offsets[j].offset;
                    if (pt->next < lo[i] || pt->next > hi[i])
                        rc =
                            sl_op_fail(c, SL_RANGE,
                                       "source '%s': topic '%s' partition %d has no offset %lld: "
                                       "it holds offsets %lld to %lld",
                                       c->node->name, pt->topic, (int)pt->partition,
                                       (long long)pt->next, (long long)lo[i], (long long)hi[i] - 1);
                }
            break;
        }
    }
    if (rc == SL_OK)
        rc = s_lookup_starts(c, need, lo, hi);
    for (int i = 0; i < s->nown && rc == SL_OK; i++) {
        s_part_t *pt = &s->parts[s->own[i]];
        if (k->bounded && pt->next > pt->end)
            rc = sl_op_fail(c, SL_RANGE,
                            "source '%s': topic '%s' partition %d would stop at offset %lld, "
                            "before its start offset %lld",
                            c->node->name, pt->topic, (int)pt->partition, (long long)pt->end,
                            (long long)pt->next);
    }
    for (int i = 0; i < s->nown && rc == SL_OK; i++) {
        s_part_t *pt = &s->parts[s->own[i]];
        pt->done = k->bounded && pt->next >= pt->end;
        if (!pt->done) {
            rd_kafka_topic_partition_list_add(list, pt->topic, pt->partition)->offset = pt->next;
            s->remaining++;
        }
    }
    if (rc == SL_OK && list->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(s->rk, list);
        if (err)
            rc = sl_op_fail(c, SL_IO, "source '%s': cannot assign %d partition(s): %s",
                            c->node->name, list->cnt, rd_kafka_err2str(err));
    }
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    free(lo);
    free(hi);
    free(need);
    return rc;
}

/* The record's headers as "k=v,k2=v2" (a header without value: "k") in
 * the arena. */
static int s_headers(sl_opctx_t *c, const rd_kafka_message_t *m, sl_value_t *out)
{
    rd_kafka_headers_t *h = NULL;
    *out = sl_value_str("", 0);
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h)
        return SL_OK;
    size_t n = 0;
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++)
        n += strlen(name) + (val ? size + 1 : 0) + 1;
    char *buf = sl_arena_alloc(c->arena, n + 1), *w = buf;
    if (!buf)
        return SL_NOMEM;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++) {
        if (i)
            *w++ = ',';
        size_t l = strlen(name);
        memcpy(w, name, l);
        w += l;
        if (val) {
            *w++ = '=';
            memcpy(w, val, size);
            w += size;
        }
    }
    *out = sl_value_str(buf, (uint32_t)(w - buf));
    return SL_OK;
}

/* Recomputes the source's watermark: the least over its partitions that
 * are neither done nor idle (nothing for the idle timeout) of the largest
 * event time read minus max_out_of_order; never backwards. */
static void s_update_wm(sl_opctx_t *c, int64_t now)
{
    s_state_t *s = c->state;
    if (!s->want_wm)
        return;
    const sl_plan_node_t *nd = c->node;
    int64_t m = INT64_MAX;
    bool any = false;
    for (int i = 0; i < s->nown; i++) {
        const s_part_t *pt = &s->parts[s->own[i]];
        if (pt->done || (nd->wm_idle > 0 && now - pt->last_ms >= nd->wm_idle))
            continue;
        any = true;
        int64_t w = pt->max_ts == SL_WM_MIN || pt->max_ts < SL_WM_MIN + nd->wm_bound + 1
                        ? SL_WM_MIN
                        : pt->max_ts - nd->wm_bound - 1;
        if (w < m)
            m = w;
    }
    if (any && m > c->source_wm)
        c->source_wm = m;
}

/* Reports the lag of every owned partition: log end (librdkafka's cached
 * high watermark, refreshed by every fetch) minus the next offset. */
static void s_report_lag(sl_opctx_t *c, int64_t now)
{
    s_state_t *s = c->state;
    if (now - s->lag_ms < S_LAG_EVERY_MS && s->lag_ms)
        return;
    s->lag_ms = now;
    char detail[256] = "";
    size_t len = 0;
    int64_t total = 0;
    for (int i = 0; i < s->nown; i++) {
        s_part_t *pt = &s->parts[s->own[i]];
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(s->rk, pt->topic, pt->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi > pt->hi)
            pt->hi = hi;
        int64_t lag = pt->hi > pt->next && pt->next >= 0 ? pt->hi - pt->next : 0;
        if (pt->end >= 0 && pt->hi > pt->end) /* bounded: what it will read */
            lag = pt->end > pt->next ? pt->end - pt->next : 0;
        total += lag;
        if (len < sizeof detail)
            len += (size_t)snprintf(detail + len, sizeof detail - len, "%s%s/%d=%lld", i ? " " : "",
                                    pt->topic, (int)pt->partition, (long long)lag);
    }
    sl_op_source_lag(c, total, detail);
}

/* Adds header name = printf(fmt, ...) to h. */
static void s_header(rd_kafka_headers_t *h, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_header(rd_kafka_headers_t *h, const char *name, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    rd_kafka_header_add(h, name, -1, v, n < 0 ? 0 : n >= (int)sizeof v ? (int)sizeof v - 1 : n);
}

/* on_error: {dead_letter:}: produces the malformed record as it is (key,
 * value, headers, timestamp) to the dead-letter topic with the headers
 * sluice.error, sluice.topic, sluice.partition, sluice.offset added;
 * counted in the source's errors. Delivery is checked at the next
 * checkpoint and at the end (s_dlq_flush), so the checkpoint that moves
 * past the record is not taken before the broker has it. */
static int s_dead_letter(sl_opctx_t *c, const s_part_t *pt, const rd_kafka_message_t *m,
                         const char *why)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    rd_kafka_headers_t *src = NULL, *h;
    if (rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR && src)
        h = rd_kafka_headers_copy(src);
    else
        h = rd_kafka_headers_new(4);
    if (!h)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    s_header(h, "sluice.error", "%s", why);
    s_header(h, "sluice.topic", "%s", pt->topic);
    s_header(h, "sluice.partition", "%d", (int)m->partition);
    s_header(h, "sluice.offset", "%lld", (long long)m->offset);
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(
            s->dlq, RD_KAFKA_V_TOPIC(k->dead_letter), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(c->cancel))
            break;
        rd_kafka_poll(s->dlq, 10); /* the local queue is full: let deliveries drain it */
    }
    if (err) {
        rd_kafka_headers_destroy(h); /* not taken over on failure */
        return sl_op_fail(c, SL_IO,
                          "source '%s': cannot send topic '%s' partition %d offset %lld to "
                          "dead-letter topic '%s': %s",
                          c->node->name, pt->topic, (int)m->partition, (long long)m->offset,
                          k->dead_letter, rd_kafka_err2str(err));
    }
    if (atomic_fetch_add(&c->errors, 1) < S_LOGGED_ERRORS)
        fprintf(stderr,
                "sluice: source '%s': bad record topic '%s' partition %d offset %lld sent to "
                "dead-letter topic '%s': %s\n",
                c->node->name, pt->topic, (int)m->partition, (long long)m->offset, k->dead_letter,
                why);
    return SL_OK;
}

/* Turns one record into a row and emits it; SL_DATA (after the task's
 * message) for a malformed value under on_error: fail. */
static int s_record(sl_opctx_t *c, s_part_t *pt, const rd_kafka_message_t *m)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    const sl_plan_node_t *nd = c->node;
    const sl_schema_t *sc = sl_plan_source_schema(nd);
    char why[300];
    int rc = sl_kafka_decode(k, sc, m->payload ? m->payload : "", m->payload ? m->len : 0, s->vals,
                             c->arena, why, sizeof why);
    if (rc == SL_DATA && s->dlq)
        return s_dead_letter(c, pt, m, why);
    if (rc == SL_DATA) {
        if (!k->skip_errors)
            return sl_op_fail(c, rc,
                              "source '%s': topic '%s' partition %d offset %lld: %s (set "
                              "on_error: skip to skip bad records)",
                              nd->name, pt->topic, (int)m->partition, (long long)m->offset, why);
        if (atomic_fetch_add(&c->errors, 1) < S_LOGGED_ERRORS)
            fprintf(stderr,
                    "sluice: skipped bad record in source '%s': topic '%s' partition %d "
                    "offset %lld: %s\n",
                    nd->name, pt->topic, (int)m->partition, (long long)m->offset, why);
        return SL_OK;
    }
    if (rc)
        return sl_op_fail(c, rc, "source '%s': %s", nd->name, why);
    if (k->f_partition >= 0)
        s->vals[k->f_partition] = sl_value_int(m->partition);
    if (k->f_offset >= 0)
        s->vals[k->f_offset] = sl_value_int(m->offset);
    if (k->f_timestamp >= 0) {
        int64_t ts = rd_kafka_message_timestamp(m, NULL);
        s->vals[k->f_timestamp] = ts >= 0 ? sl_value_ts(ts) : sl_value_null();
        s->vals[k->f_timestamp].type = SL_TYPE_TIMESTAMP;
    }
    if (k->f_key >= 0) {
        if (m->key) {
            char *key = sl_arena_alloc(c->arena, m->key_len ? m->key_len : 1);
            if (!key)
                return SL_NOMEM;
            memcpy(key, m->key, m->key_len);
            s->vals[k->f_key] = sl_value_str(key, (uint32_t)m->key_len);
        } else {
            s->vals[k->f_key] = sl_value_null();
            s->vals[k->f_key].type = SL_TYPE_STRING;
        }
    }
    if (k->f_headers >= 0 && (rc = s_headers(c, m, &s->vals[k->f_headers])) != SL_OK)
        return rc;
    rc = sl_emit(&c->out, s->vals);
    if (rc == SL_RANGE)
        return sl_op_fail(c, rc,
                          "source '%s': topic '%s' partition %d offset %lld: record larger "
                          "than %u bytes",
                          nd->name, pt->topic, (int)m->partition, (long long)m->offset, SL_ROW_MAX);
    if (rc == SL_OK && s->want_wm) { /* the partition's event time, after the record went */
        sl_value_t tv = s->vals[nd->rowtime];
        if (nd->ts_expr && sl_expr_eval(nd->ts_expr, s->vals, c->arena, &tv) != SL_OK)
            tv.is_null = true;
        if (!tv.is_null && tv.u.i > pt->max_ts && tv.u.i <= SL_TIME_LIMIT)
            pt->max_ts = tv.u.i; /* a time beyond any calendar is an error downstream */
    }
    return rc;
}

/* The owned partition a message is of, or NULL. */
static s_part_t *s_part_of(s_state_t *s, const rd_kafka_message_t *m)
{
    if (!m->rkt || m->partition < 0)
        return NULL;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (s->last >= 0 && s->parts[s->last].partition == m->partition &&
        strcmp(s->parts[s->last].topic, topic) == 0)
        return &s->parts[s->last];
    for (int i = 0; i < s->nown; i++) {
        s_part_t *pt = &s->parts[s->own[i]];
        if (pt->partition == m->partition && strcmp(pt->topic, topic) == 0) {
            s->last = s->own[i];
            return pt;
        }
    }
    return NULL;
}

/* A bounded partition reached its end: counted, and paused so that the
 * client stops fetching what lies past it. */
static void s_done(s_state_t *s, s_part_t *pt)
{
    pt->done = true;
    s->remaining--;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (l) {
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition);
        rd_kafka_pause_partitions(s->rk, l); /* best effort: what comes is ignored anyway */
        rd_kafka_topic_partition_list_destroy(l);
    }
}

/* One message of a batch (record, end of partition or error), taken at
 * monotonic time now. */
static int s_message(sl_opctx_t *c, const rd_kafka_message_t *m, int64_t now, int64_t *progress_ms)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    s_part_t *pt = s_part_of(s, m);
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        *progress_ms = now;
        if (pt)
            pt->eof = true;
        if (pt && !pt->done && pt->end >= 0 && m->offset >= pt->end)
            s_done(s, pt);
        return SL_OK;
    }
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
        return sl_op_fail(c, SL_RANGE,
                          "source '%s': topic '%s' partition %d: offset %lld is not in the log "
                          "(%s)",
                          c->node->name, topic, (int)m->partition,
                          (long long)(pt && m->offset < 0 ? pt->next : m->offset),
                          rd_kafka_message_errstr(m));
    if (m->err) {
        if (rd_kafka_fatal_error(s->rk, NULL, 0) || (pt && m->err > 0))
            return sl_op_fail(c, SL_IO, "source '%s': topic '%s' partition %d at %s: %s",
                              c->node->name, topic, (int)m->partition, k->bootstrap,
                              rd_kafka_message_errstr(m));
        snprintf(s->last_err, sizeof s->last_err, "%s", rd_kafka_message_errstr(m));
        s->last_err_ms = now;
        return SL_OK; /* transient (a broker went away): the client retries */
    }
    if (!pt || pt->done || (pt->end >= 0 && m->offset >= pt->end))
        return SL_OK; /* past the end: a bounded read stops there */
    *progress_ms = now;
    pt->last_ms = now;
    pt->eof = false;
    if (k->stop == SL_KAFKA_STOP_TIMESTAMP && rd_kafka_message_timestamp(m, NULL) >= k->stop_ts) {
        pt->end = m->offset; /* checkpointed: a restore stops here too */
        s_done(s, pt);
        return SL_OK;
    }
    int rc = s_record(c, pt, m);
    if (rc)
        return rc;
    pt->next = m->offset + 1; /* the snapshot's position: after this record */
    if (pt->end >= 0 && pt->next >= pt->end)
        s_done(s, pt);
    return SL_OK;
}

/* Bounded: fails when nothing moved for timeout_ms while unfinished,
 * unless every unfinished partition waits at its log end for records to
 * come (a stop offset past the end) and the client reports no error. */
static int s_check_progress(sl_opctx_t *c, int64_t now, int64_t progress_ms)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    if (!k->bounded || now - progress_ms <= (int64_t)k->timeout_ms)
        return SL_OK;
    const s_part_t *first = NULL;
    bool waiting = s->last_err_ms <= progress_ms;
    for (int i = 0; i < s->nown; i++) {
        const s_part_t *pt = &s->parts[s->own[i]];
        if (!pt->done && !first)
            first = pt;
        if (!pt->done && !pt->eof)
            waiting = false;
    }
    if (waiting)
        return SL_OK;
    return sl_op_fail(c, SL_TIMEOUT,
                      "source '%s': no progress reading topic '%s' partition %d (%d "
                      "partition(s) unfinished) from Kafka at %s for %d ms%s%s",
                      c->node->name, first ? first->topic : "?", first ? (int)first->partition : -1,
                      s->remaining, k->bootstrap, k->timeout_ms,
                      s->last_err_ms > progress_ms ? ": " : "",
                      s->last_err_ms > progress_ms ? s->last_err : "");
}

/* Takes a checkpoint when one is due, with the watermark brought up to
 * date first (cheap when none is: one atomic load). */
static int s_checkpoint(sl_opctx_t *c, int64_t now)
{
    if (!c->barrier_pending || !atomic_load_explicit(c->barrier_pending, memory_order_relaxed))
        return SL_OK;
    s_update_wm(c, now);
    return sl_op_source_checkpoint(c);
}

/* At most want messages from the consumer queue into s->batch: what is
 * there now, else waits up to S_POLL_MS for the first one (so a trickle of
 * records is not held back to fill a batch). */
static ssize_t s_poll(s_state_t *s, size_t want)
{
    ssize_t got = rd_kafka_consume_batch_queue(s->q, 0, s->batch, want);
    if (got == 0)
        got = rd_kafka_consume_batch_queue(s->q, S_POLL_MS, s->batch, 1);
    return got;
}

static int s_run(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    int rc = s_connect(c);
    if (rc == SL_OK)
        rc = s_assign(c);
    int64_t progress_ms = s_now_ms(); /* the last record or end of partition */
    s->credit_ms = progress_ms;
    while (rc == SL_OK && (!k->bounded || s->remaining > 0)) {
        if (atomic_load(c->cancel)) {
            rc = SL_CANCELED;
            break;
        }
        int64_t now = s_now_ms(); /* once per batch: the records of a batch share it */
        s_report_lag(c, now);
        size_t want = S_BATCH;
        if (k->rate > 0) { /* a token bucket: `rate` per second, bursts of 50 ms */
            double cap = (double)k->rate / 20 + 1;
            s->credit += (double)(now - s->credit_ms) * (double)k->rate / 1000;
            s->credit_ms = now;
            if (s->credit > cap)
                s->credit = cap;
            if (s->credit < 1) {
                /* ahead of `rate`: wait, still taking checkpoints */
                s_update_wm(c, now);
                rc = sl_op_source_idle(c);
                struct timespec ts = {0, 5 * 1000 * 1000};
                nanosleep(&ts, NULL);
                progress_ms = s_now_ms();
                continue;
            }
            if (s->credit < (double)want)
                want = (size_t)s->credit;
        }
        ssize_t got = s_poll(s, want);
        if (got < 0) {
            rc = sl_op_fail(c, SL_IO, "source '%s': reading from Kafka at %s: %s", c->node->name,
                            k->bootstrap, rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        if (got == 0) {
            s_update_wm(c, now);
            rc = sl_op_source_idle(c); /* nothing to read: send what is pending */
        } else {
            now = s_now_ms();
            for (ssize_t i = 0; i < got; i++) {
                rd_kafka_message_t *m = s->batch[i];
                if (rc == SL_OK) {
                    rc = s_message(c, m, now, &progress_ms);
                    s->credit -= m->err ? 0 : 1;
                }
                if (rc == SL_OK)
                    rc = s_checkpoint(c, now);
                rd_kafka_message_destroy(m);
            }
            sl_arena_reset(c->arena);
            s_update_wm(c, now);
            if (s->dlq) {
                rd_kafka_poll(s->dlq, 0); /* delivery reports */
                if (rc == SL_OK && s->dlq_err[0])
                    rc = s_dlq_flush(c); /* a dead letter was refused: fail now */
            }
        }
        if (rc == SL_OK)
            rc = s_check_progress(c, now, progress_ms);
    }
    if (rc == SL_OK)
        rc = s_dlq_flush(c); /* a bounded read ends with its dead letters delivered */
    if (s->rk && rc == SL_OK)
        s_report_lag(c, s_now_ms() + S_LAG_EVERY_MS);
    sl_arena_reset(c->arena);
    return rc;
}

static int s_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

/* ---- checkpoints ------------------------------------------------------------ */

/* Every partition in assignment order, with the position and end of the
 * ones this subtask owns (-1 for the others); remembers the owned
 * positions to commit when the checkpoint completes. Dead letters sent so
 * far are flushed first: a checkpoint never moves past a record whose dead
 * letter the broker has not acknowledged. */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_state_t *s = c->state;
    int rc = s_dlq_flush(c); /* the dead letters of the records it moves past */
    if (rc)
        return rc;
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u32(w, (uint32_t)s->nparts);
    for (int i = 0; i < s->nparts; i++) {
        const s_part_t *pt = &s->parts[i];
        sl_snap_bytes(w, pt->topic, strlen(pt->topic));
        sl_snap_u32(w, (uint32_t)pt->partition);
        sl_snap_u8(w, pt->owned ? 1 : 0);
        sl_snap_i64(w, pt->owned ? pt->next : -1);
        sl_snap_i64(w, pt->owned ? pt->end : -1);
    }
    if (s->npend == S_PENDING)
        s_pending_clear(s, 1); /* the oldest never completed */
    s_pending_t *p = &s->pend[s->npend];
    *p = (s_pending_t){.id = c->checkpoint_id, .n = s->nown};
    if (!(p->next = calloc((size_t)s->nown + 1, sizeof *p->next)))
        return SL_NOMEM;
    for (int i = 0; i < s->nown; i++)
        p->next[i] = s->parts[s->own[i]].next;
    s->npend++;
    return w->err;
}

/* Takes one old subtask's section (all of them on a rescale): the
 * partition order, and the positions of the partitions that subtask
 * owned. Called before run, so ownership is decided there. */
static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_state_t *s = c->state;
    uint8_t v = sl_snap_get_u8(r);
    uint32_t n = sl_snap_get_u32(r);
    if (r->err || v != S_SNAP_VERSION || n > 1000000)
        return sl_op_fail(c, SL_DATA, "source '%s': not a snapshot of a Kafka source",
                          c->node->name);
    for (uint32_t i = 0; i < n; i++) {
        size_t tlen;
        const uint8_t *topic = sl_snap_get_bytes(r, &tlen);
        uint32_t partition = sl_snap_get_u32(r);
        uint8_t owned = sl_snap_get_u8(r);
        int64_t next = sl_snap_get_i64(r), end = sl_snap_get_i64(r);
        if (r->err || tlen == 0 || tlen > S_TOPIC_MAX || memchr(topic, 0, tlen) ||
            partition > INT32_MAX || owned > 1 || next < -1 || end < -1)
            return sl_op_fail(c, SL_DATA, "source '%s': not a snapshot of a Kafka source",
                              c->node->name);
        int at = s_find(s, (const char *)topic, tlen, (int32_t)partition);
        if (at < 0 && (at = s_add(s, (const char *)topic, tlen, (int32_t)partition)) < 0)
            return sl_op_fail(c, SL_NOMEM, "out of memory");
        if (owned) {
            s->parts[at].next = next;
            s->parts[at].end = end;
        }
    }
    return SL_OK;
}

/* Checkpoint id is durable: commits the positions of the latest snapshot
 * it covers to the group (asynchronously; s_on_commit logs failures). */
static int s_complete(sl_opctx_t *c, uint64_t id)
{
    s_state_t *s = c->state;
    int upto = 0;
    while (upto < s->npend && s->pend[upto].id <= id)
        upto++;
    if (upto == 0 || !s->rk)
        return SL_OK;
    const s_pending_t *p = &s->pend[upto - 1];
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(p->n + 1);
    if (!l)
        return SL_NOMEM;
    for (int i = 0; i < p->n && i < s->nown; i++)
        if (p->next[i] >= 0)
            rd_kafka_topic_partition_list_add(l, s->parts[s->own[i]].topic,
                                              s->parts[s->own[i]].partition)
                ->offset = p->next[i];
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(s->rk, l, 1);
        if (err && s->commit_fails++ < S_LOGGED_COMMITS)
            fprintf(stderr,
                    "sluice: source '%s': committing the offsets of checkpoint %llu failed (the "
                    "job goes on): %s\n",
                    c->node->name, (unsigned long long)p->id, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
    s_pending_clear(s, upto);
    return SL_OK;
}

const sl_op_vtable_t sl_op_kafka_source = {.open = s_open,
                                           .run_source = s_run,
                                           .finish = s_finish,
                                           .close = s_close,
                                           .snapshot = s_snapshot,
                                           .restore = s_restore,
                                           .complete = s_complete};
