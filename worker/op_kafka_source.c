/* op_kafka_source.c — the `kafka` source, bounded: reads one topic from the
 * start offsets (earliest, latest or given per partition) up to the high
 * watermarks seen when the task started, and ends when every partition of
 * this subtask got there.
 *
 * Partitions are assigned, never subscribed: subtask i of P takes the
 * partitions p with p % P == i, so a run is deterministic and needs no
 * group coordination. auto.offset.reset=error and an up-front check of the
 * start offsets against the watermarks make a missing offset fail the task
 * naming topic, partition and offset; nothing is ever skipped silently.
 * Record values become rows through sluice/kafka.h (JSON, CSV, raw). */
#define _POSIX_C_SOURCE 200809L
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/kafka.h"

#define S_LOGGED_ERRORS 10 /* malformed records logged per subtask before going quiet */
#define S_POLL_MS 100      /* longest wait in one poll (bounds cancel latency) */

typedef struct {
    int32_t partition;
    int64_t start, end; /* first offset read, high watermark seen at start */
    bool done;          /* position reached end */
} s_part_t;

typedef struct {
    rd_kafka_t *rk;      /* the consumer, or NULL */
    sl_value_t *vals;    /* one record */
    s_part_t *parts;     /* this subtask's partitions (p % P == subtask), by p / P */
    int nparts;          /* entries of parts */
    char last_err[256];  /* the latest client-level error (broker unreachable...) */
    int64_t last_err_ms; /* when it happened, 0 = none */
} s_state_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka's own log lines would flood stderr while a broker is down; the
 * errors that matter reach the task through s_on_error and the poll. */
static void s_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void s_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    s_state_t *s = opaque;
    snprintf(s->last_err, sizeof s->last_err, "%s: %s", rd_kafka_err2str((rd_kafka_resp_err_t)err),
             reason);
    s->last_err_ms = s_now_ms();
}

static int s_open(sl_opctx_t *c)
{
    s_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)sl_plan_source_schema(c->node)->nfields + 1, sizeof *s->vals);
    return s->vals ? SL_OK : SL_NOMEM;
}

static void s_close(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    if (s) {
        if (s->rk) {
            rd_kafka_consumer_close(s->rk);
            rd_kafka_destroy(s->rk);
        }
        free(s->parts);
        free(s->vals);
    }
    free(s);
    c->state = NULL;
}

/* Creates the consumer with the source's settings and the user's. */
static int s_connect(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    char errstr[512], group[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf)
        return SL_NOMEM;
    /* assign() needs a group.id; it is only used for commits (none yet). */
    snprintf(group, sizeof group, "%s", k->group ? k->group : "");
    if (!k->group)
        snprintf(group, sizeof group, "sluice.%s.%s", c->plan->name ? c->plan->name : "job",
                 c->node->name);
    const char *fixed[][2] = {
        {"bootstrap.servers", k->bootstrap}, {"group.id", group},
        {"enable.auto.commit", "false"},     {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "error"},      {"enable.partition.eof", "true"}};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return sl_op_fail(c, SL_INVAL, "source '%s': %s", c->node->name, errstr);
        }
    for (int i = 0; i < k->nprops; i++)
        if (rd_kafka_conf_set(conf, k->prop_names[i], k->prop_values[i], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return sl_op_fail(c, SL_INVAL, "source '%s': property '%s': %s", c->node->name,
                              k->prop_names[i], errstr);
        }
    rd_kafka_conf_set_log_cb(conf, s_on_log);
    rd_kafka_conf_set_error_cb(conf, s_on_error);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return sl_op_fail(c, SL_INVAL, "source '%s': cannot create a Kafka consumer: %s",
                          c->node->name, errstr);
    }
    rd_kafka_poll_set_consumer(s->rk);
    return SL_OK;
}

/* The topic's partition count, retried until the timeout. */
static int s_partition_count(sl_opctx_t *c, int *count)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, k->topic, NULL);
    if (!rkt)
        return sl_op_fail(c, SL_NOMEM, "source '%s': cannot open topic '%s'", c->node->name,
                          k->topic);
    int64_t deadline = s_now_ms() + k->timeout_ms;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int rc = SL_OK;
    for (;;) {
        if (atomic_load(c->cancel)) {
            rc = SL_CANCELED;
            break;
        }
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - s_now_ms();
        err = rd_kafka_metadata(s->rk, 0, rkt, &md, left < 500 ? (left > 0 ? (int)left : 1) : 500);
        if (!err && md->topic_cnt == 1) {
            err = md->topics[0].err;
            *count = md->topics[0].partition_cnt;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        if (!err && *count > 0)
            break;
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && s_now_ms() >= deadline) {
            rc = sl_op_fail(c, SL_NOTFOUND, "source '%s': topic '%s' does not exist at %s",
                            c->node->name, k->topic, k->bootstrap);
            break;
        }
        if (s_now_ms() >= deadline) {
            rc = sl_op_fail(c, SL_TIMEOUT,
                            "source '%s': cannot reach Kafka at %s within %d ms (topic '%s'): %s",
                            c->node->name, k->bootstrap, k->timeout_ms, k->topic,
                            s->last_err_ms ? s->last_err : rd_kafka_err2str(err));
            break;
        }
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL); /* a quick answer that is not final: retry shortly */
        }
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* The low and high watermarks of one partition. ListOffsets through
 * rd_kafka_offsets_for_times (timestamps -2 = earliest, -1 = latest), which
 * keeps to its timeout, unlike rd_kafka_query_watermark_offsets (2.0.2),
 * which waits without end for a partition whose leader is down. */
static int s_watermark(sl_opctx_t *c, int32_t partition, int64_t *lo, int64_t *hi)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    int64_t *out[2] = {lo, hi};
    for (int w = 0; w < 2; w++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        if (!l)
            return SL_NOMEM;
        rd_kafka_topic_partition_list_add(l, k->topic, partition)->offset =
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
                              c->node->name, w == 0 ? "first" : "end", k->topic, (int)partition,
                              k->bootstrap, k->timeout_ms,
                              err ? rd_kafka_err2str(err) : "no offset in the answer");
    }
    return SL_OK;
}

/* Looks up this subtask's partitions, their watermarks and start offsets,
 * checks the start offsets, and assigns the partitions not yet done.
 * *remaining = partitions to read. */
static int s_assign(sl_opctx_t *c, int *remaining)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    int nparts = 0, rc = s_partition_count(c, &nparts);
    if (rc)
        return rc;
    for (int i = 0; i < k->noffsets; i++)
        if (k->offsets[i].partition >= nparts)
            return sl_op_fail(c, SL_NOTFOUND,
                              "source '%s': topic '%s' has no partition %d (it has %d)",
                              c->node->name, k->topic, k->offsets[i].partition, nparts);
    int P = c->parallelism;
    s->nparts = nparts > c->subtask ? (nparts - c->subtask + P - 1) / P : 0;
    s->parts = calloc((size_t)s->nparts + 1, sizeof *s->parts);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(s->nparts + 1);
    if (!s->parts || !list) {
        if (list)
            rd_kafka_topic_partition_list_destroy(list);
        return SL_NOMEM;
    }
    *remaining = 0;
    for (int i = 0; i < s->nparts && rc == SL_OK; i++) {
        s_part_t *pt = &s->parts[i];
        pt->partition = (int32_t)(c->subtask + i * P);
        int64_t lo = 0, hi = 0;
        if ((rc = s_watermark(c, pt->partition, &lo, &hi)) != SL_OK)
            break;
        pt->end = hi;
        pt->start = k->start == SL_KAFKA_START_LATEST ? hi : lo;
        for (int j = 0; j < k->noffsets; j++) {
            if (k->offsets[j].partition != pt->partition)
                continue;
            pt->start = k->offsets[j].offset;
            if (pt->start < lo || pt->start > hi)
                rc = sl_op_fail(c, SL_RANGE,
                                "source '%s': topic '%s' partition %d has no offset %lld: it "
                                "holds offsets %lld to %lld",
                                c->node->name, k->topic, pt->partition, (long long)pt->start,
                                (long long)lo, (long long)hi - 1);
        }
        pt->done = pt->start >= pt->end;
        if (!pt->done) {
            rd_kafka_topic_partition_list_add(list, k->topic, pt->partition)->offset = pt->start;
            (*remaining)++;
        }
    }
    if (rc == SL_OK && *remaining > 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(s->rk, list);
        if (err)
            rc = sl_op_fail(c, SL_IO, "source '%s': cannot assign topic '%s': %s", c->node->name,
                            k->topic, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Turns one record into a row and emits it; SL_DATA (after the task's
 * message) for a malformed value under on_error: fail. */
static int s_record(sl_opctx_t *c, const rd_kafka_message_t *m)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    const sl_schema_t *sc = sl_plan_source_schema(c->node);
    char why[300];
    int rc = sl_kafka_decode(k, sc, m->payload ? m->payload : "", m->payload ? m->len : 0, s->vals,
                             c->arena, why, sizeof why);
    if (rc == SL_DATA) {
        if (!k->skip_errors)
            return sl_op_fail(c, rc,
                              "source '%s': topic '%s' partition %d offset %lld: %s (set "
                              "on_error: skip to skip bad records)",
                              c->node->name, k->topic, (int)m->partition, (long long)m->offset,
                              why);
        if (atomic_fetch_add(&c->errors, 1) < S_LOGGED_ERRORS)
            fprintf(stderr,
                    "sluice: skipped bad record in source '%s': topic '%s' partition %d "
                    "offset %lld: %s\n",
                    c->node->name, k->topic, (int)m->partition, (long long)m->offset, why);
        return SL_OK;
    }
    if (rc)
        return sl_op_fail(c, rc, "source '%s': %s", c->node->name, why);
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
    rc = sl_emit(&c->out, s->vals);
    if (rc == SL_RANGE)
        return sl_op_fail(c, rc,
                          "source '%s': topic '%s' partition %d offset %lld: record larger "
                          "than %u bytes",
                          c->node->name, k->topic, (int)m->partition, (long long)m->offset,
                          SL_ROW_MAX);
    return rc;
}

/* One polled message (record, end of partition or error). */
static int s_message(sl_opctx_t *c, const rd_kafka_message_t *m, int *remaining,
                     int64_t *progress_ms)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    s_part_t *pt = NULL;
    if (m->rkt && m->partition >= 0 && m->partition % c->parallelism == c->subtask &&
        m->partition / c->parallelism < s->nparts)
        pt = &s->parts[m->partition / c->parallelism];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        *progress_ms = s_now_ms();
        if (pt && !pt->done && m->offset >= pt->end) {
            pt->done = true;
            (*remaining)--;
        }
        return SL_OK;
    }
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
        return sl_op_fail(c, SL_RANGE,
                          "source '%s': topic '%s' partition %d: offset %lld is not in the log "
                          "(%s)",
                          c->node->name, k->topic, (int)m->partition, (long long)m->offset,
                          rd_kafka_message_errstr(m));
    if (m->err) {
        if (rd_kafka_fatal_error(s->rk, NULL, 0) || (pt && m->err > 0))
            return sl_op_fail(c, SL_IO, "source '%s': topic '%s' partition %d at %s: %s",
                              c->node->name, k->topic, (int)m->partition, k->bootstrap,
                              rd_kafka_message_errstr(m));
        snprintf(s->last_err, sizeof s->last_err, "%s", rd_kafka_message_errstr(m));
        s->last_err_ms = s_now_ms();
        return SL_OK; /* transient (a broker went away): the client retries */
    }
    if (!pt || pt->done || m->offset >= pt->end)
        return SL_OK; /* past the end seen at start: a bounded read stops there */
    *progress_ms = s_now_ms();
    int rc = s_record(c, m);
    if (rc)
        return rc;
    if (m->offset + 1 >= pt->end) {
        pt->done = true;
        (*remaining)--;
    }
    return SL_OK;
}

static int s_run(sl_opctx_t *c)
{
    s_state_t *s = c->state;
    const sl_kafka_cfg_t *k = c->node->kafka;
    int rc = s_connect(c);
    int remaining = 0;
    if (rc == SL_OK)
        rc = s_assign(c, &remaining);
    int64_t progress_ms = s_now_ms(); /* the last record or end of partition */
    unsigned n = 0;
    while (rc == SL_OK && remaining > 0) {
        if (atomic_load(c->cancel)) {
            rc = SL_CANCELED;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, S_POLL_MS);
        if (m) {
            rc = s_message(c, m, &remaining, &progress_ms);
            rd_kafka_message_destroy(m);
            if (++n % 256 == 0)
                sl_arena_reset(c->arena);
        } else {
            rc = sl_op_source_idle(c); /* nothing to read: send what is pending */
        }
        if (rc == SL_OK && s_now_ms() - progress_ms > (int64_t)k->timeout_ms) {
            int first = -1;
            for (int i = 0; i < s->nparts && first < 0; i++)
                if (!s->parts[i].done)
                    first = s->parts[i].partition;
            rc = sl_op_fail(c, SL_TIMEOUT,
                            "source '%s': no progress reading topic '%s' partition %d (%d "
                            "partition(s) unfinished) from Kafka at %s for %d ms%s%s",
                            c->node->name, k->topic, first, remaining, k->bootstrap, k->timeout_ms,
                            s->last_err_ms > progress_ms ? ": " : "",
                            s->last_err_ms > progress_ms ? s->last_err : "");
        }
    }
    sl_arena_reset(c->arena);
    return rc;
}

static int s_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

const sl_op_vtable_t sl_op_kafka_source = {
    .open = s_open, .run_source = s_run, .finish = s_finish, .close = s_close};
