/* op_kafka_sink.c — the `kafka` sink: rows become records of one topic
 * (value as JSON, CSV or raw bytes; key and partition from expressions),
 * written by librdkafka's producer, at least once or exactly once.
 *
 * Every record carries the headers job, subtask, epoch, attempt and seq
 * (its index within the epoch), so an independent reader can tell which
 * transaction of which execution attempt wrote it (docs/kafka.md).
 *
 * at-least-once: an idempotent producer; a snapshot (the barrier) flushes,
 * so everything before a checkpoint is acknowledged by the broker before
 * the checkpoint can complete. A restart replays what came after it.
 *
 * exactly-once: one transactional producer per subtask, transactional.id
 * sluice.JOB.SINK.SUBTASK (init_transactions on open fences and aborts the
 * transaction a failed attempt left open). An epoch is what arrives
 * between two barriers; it is labelled by the id of the checkpoint before
 * it (0 at the start). Its records go into one transaction as they come;
 * at the next barrier the transaction is pre-committed (flushed, with its
 * commit marker in markers mode) and the epoch's records are kept in the
 * snapshot; complete(id) commits it. librdkafka cannot resume a prepared
 * transaction after a restart, so a restore re-produces, in a fresh
 * transaction, every epoch of the snapshot whose commit is not proven: by
 * a marker record read back with read_committed (commit_proof: markers),
 * or by a line of the commit journal (commit_proof: journal, for brokers
 * without transactions; appended and fsynced after each commit). Records
 * of the epoch after a pre-committed one wait in memory until the earlier
 * transaction is committed (a producer has one transaction at a time). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kafka_conf.h"
#include "operator.h"
#include "sluice/err.h"
#include "sluice/failpoint.h"
#include "sluice/kafka.h"
#include "sluice/textfmt.h"

#define S_SNAP_VERSION 1
#define S_NULL_KEY UINT32_MAX /* key length of a record without key */

/* Records of one epoch, encoded back to back: i32 partition (-1 = the
 * partitioner's choice), u32 key length (S_NULL_KEY: none), key, u32 value
 * length, value. */
typedef struct {
    uint64_t label;     /* id of the checkpoint before the epoch (0 = the start) */
    uint64_t closed_by; /* id of the barrier that ended it, 0 = still open */
    uint64_t n;         /* records */
    uint8_t *buf;       /* the encoded records */
    size_t len, cap;    /* bytes used / allocated */
    uint64_t produced;  /* records handed to the producer in the open transaction */
} s_epoch_t;

typedef struct {
    rd_kafka_t *rk;         /* the producer */
    rd_kafka_topic_t *rkt;  /* the output topic */
    bool exactly;           /* delivery: exactly-once */
    char txn_id[512];       /* transactional.id (exactly-once) */
    uint32_t attempt;       /* written into the headers and the journal */
    sl_value_t *vals;       /* one decoded row */
    sl_textbuf_t text;      /* one encoded value */
    s_epoch_t *ep;          /* epochs not yet committed, oldest first; the last is open */
    int nep, cap_ep;        /* entries / allocated */
    bool txn_open;          /* a transaction holds ep[0] */
    uint64_t completed;     /* the latest checkpoint known durable */
    bool drop;              /* restored after a commit at the end of input: write nothing */
    bool finished;          /* finish committed everything */
    char dr_err[256];       /* the first failed delivery: sticky, the task must fail */
    _Atomic uint64_t acked; /* records the broker acknowledged */
} s_sink_t;

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Delivery reports: the first failure is kept for the next flush. */
static void s_on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    s_sink_t *s = opaque;
    if (m->err) {
        if (!s->dr_err[0])
            snprintf(s->dr_err, sizeof s->dr_err, "%s", rd_kafka_err2str(m->err));
    } else
        atomic_fetch_add_explicit(&s->acked, 1, memory_order_relaxed);
}

/* Client-level errors. Most are transient (librdkafka reconnects); an
 * authentication failure is not: it fails the sink like a failed delivery,
 * naming librdkafka's reason. */
static void s_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    s_sink_t *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && !s->dr_err[0])
        snprintf(s->dr_err, sizeof s->dr_err, "authentication failed: %s", reason);
}

/* ---- transactions: one call with the error policy ---------------------------
 * librdkafka classifies every transactional error (rdkafka.h, "Transactional
 * producer API"). Retriable ones (timeouts, transport, coordinator moving)
 * are retried here until timeout_ms (librdkafka already retries most of
 * them inside the call). One that requires an abort aborts the transaction
 * and fails the task: the job restarts from its last checkpoint, whose
 * epochs are re-produced. A fatal one (fenced by a newer producer with the
 * same transactional.id, or an old epoch) leaves the producer unusable: the
 * task fails and the next attempt creates a new producer; an error with
 * none of the flags is treated as fatal, as librdkafka advises. Every
 * message names the sink, the topic, the transactional.id and librdkafka's
 * error. */

typedef enum { S_TX_INIT, S_TX_BEGIN, S_TX_COMMIT, S_TX_ABORT } s_txop_t;

static int s_txn(sl_opctx_t *c, s_txop_t op)
{
    static const char *const names[] = {"init_transactions", "begin_transaction",
                                        "commit_transaction", "abort_transaction"};
    s_sink_t *s = c->state;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    int64_t deadline = s_mono_ms() + k->timeout_ms;
    for (;;) {
        int left = (int)(deadline - s_mono_ms());
        if (left < 100)
            left = 100;
        rd_kafka_error_t *e = NULL;
        switch (op) {
        case S_TX_INIT:
            e = rd_kafka_init_transactions(s->rk, left);
            break;
        case S_TX_BEGIN:
            e = rd_kafka_begin_transaction(s->rk);
            break;
        case S_TX_COMMIT:
            e = rd_kafka_commit_transaction(s->rk, left);
            break;
        case S_TX_ABORT:
            e = rd_kafka_abort_transaction(s->rk, left);
            break;
        }
        if (!e)
            return SL_OK;
        char why[300];
        snprintf(why, sizeof why, "%s", rd_kafka_error_string(e));
        bool fatal = rd_kafka_error_is_fatal(e), retry = rd_kafka_error_is_retriable(e);
        bool abort_needed = rd_kafka_error_txn_requires_abort(e);
        rd_kafka_error_destroy(e);
        if (fatal) {
            char first[256] = "";
            rd_kafka_fatal_error(s->rk, first, sizeof first);
            return sl_op_fail(c, SL_IO,
                              "sink '%s' (topic '%s'): %s failed with a fatal error for "
                              "transactional.id '%s' (fenced by a newer producer, or refused by "
                              "the broker: this producer cannot go on): %s%s%s",
                              c->node->name, k->topic, names[op], s->txn_id, why,
                              first[0] && !strstr(why, first) ? "; first fatal error: " : "",
                              first[0] && !strstr(why, first) ? first : "");
        }
        if (abort_needed && op != S_TX_ABORT) {
            s->txn_open = false;
            rd_kafka_error_t *a = rd_kafka_abort_transaction(s->rk, k->timeout_ms);
            if (a)
                rd_kafka_error_destroy(a);
            return sl_op_fail(c, SL_IO,
                              "sink '%s' (topic '%s'): %s failed; the transaction of '%s' was "
                              "aborted (the job restarts from its last checkpoint): %s",
                              c->node->name, k->topic, names[op], s->txn_id, why);
        }
        if (retry && s_mono_ms() < deadline && !atomic_load(c->cancel)) {
            fprintf(stderr, "sluice: sink '%s' (topic '%s'): %s of '%s' will be retried: %s\n",
                    c->node->name, k->topic, names[op], s->txn_id, why);
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        return sl_op_fail(c, SL_IO, "sink '%s' (topic '%s'): %s of '%s' failed%s: %s",
                          c->node->name, k->topic, names[op], s->txn_id,
                          retry ? " (retried until timeout_ms)" : "", why);
    }
}

/* ---- producing ---------------------------------------------------------------- */

/* Produces one record with its headers, waiting while the queue is full. */
static int s_produce(sl_opctx_t *c, rd_kafka_topic_t *rkt, int32_t part, const void *key,
                     size_t klen, const void *val, size_t vlen, uint64_t label, uint64_t seq)
{
    s_sink_t *s = c->state;
    char sub[16], ep[24], at[16], sq[24];
    snprintf(sub, sizeof sub, "%d", c->subtask);
    snprintf(ep, sizeof ep, "%" PRIu64, label);
    snprintf(at, sizeof at, "%u", (unsigned)s->attempt);
    snprintf(sq, sizeof sq, "%" PRIu64, seq);
    const char *job = c->plan->name ? c->plan->name : "job";
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            s->rk, RD_KAFKA_V_RKT(rkt),
            RD_KAFKA_V_PARTITION(part < 0 ? RD_KAFKA_PARTITION_UA : part),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, vlen),
            RD_KAFKA_V_KEY(key, key ? klen : 0), RD_KAFKA_V_HEADER("job", job, -1),
            RD_KAFKA_V_HEADER("subtask", sub, -1), RD_KAFKA_V_HEADER("epoch", ep, -1),
            RD_KAFKA_V_HEADER("attempt", at, -1), RD_KAFKA_V_HEADER("seq", sq, -1), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return SL_OK;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            char first[256] = "";
            if (err == RD_KAFKA_RESP_ERR__FATAL)
                rd_kafka_fatal_error(s->rk, first, sizeof first);
            return sl_op_fail(c, SL_IO, "sink '%s': cannot produce to '%s' partition %d%s: %s%s%s",
                              c->node->name, rd_kafka_topic_name(rkt), (int)part,
                              s->exactly ? " (the transaction is aborted)" : "",
                              rd_kafka_err2str(err), first[0] ? ": " : "", first);
        }
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        rd_kafka_poll(s->rk, 50);
    }
}

/* Fails the task when a delivery failed. The failure is sticky: a snapshot
 * that meets it only declines its checkpoint (the task goes on), so the
 * next call (process, tick, finish) must still fail, or the records would
 * be lost behind a later checkpoint (at-least-once) or the doomed
 * transaction kept open (exactly-once: librdkafka refuses to commit it). */
static int s_check_delivery(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    if (!s->dr_err[0])
        return SL_OK;
    char first[256] = "";
    rd_kafka_fatal_error(s->rk, first, sizeof first);
    return sl_op_fail(c, SL_IO,
                      "sink '%s': a record to '%s' was not delivered (the job restarts from its "
                      "last checkpoint%s): %s%s%s",
                      c->node->name, c->node->ksink->topic,
                      s->exactly ? "; the transaction is aborted" : "", s->dr_err,
                      first[0] ? "; fatal error of the producer: " : "", first);
}

/* Waits until every record produced was acknowledged (or failed). */
static int s_flush(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    /* in slices: a failed delivery or a failed authentication ends the wait */
    int64_t deadline = s_mono_ms() + c->node->ksink->timeout_ms;
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_flush(s->rk, 100)) == RD_KAFKA_RESP_ERR__TIMED_OUT && !s->dr_err[0] &&
           s_mono_ms() < deadline && !atomic_load(c->cancel))
        ;
    if (err && !s->dr_err[0])
        return sl_op_fail(c, SL_IO, "sink '%s': records to '%s' not acknowledged within %d ms: %s",
                          c->node->name, c->node->ksink->topic, c->node->ksink->timeout_ms,
                          rd_kafka_err2str(err));
    return s_check_delivery(c);
}

/* Produces the records of epoch e from index e->produced on. */
static int s_produce_epoch(sl_opctx_t *c, s_epoch_t *e)
{
    s_sink_t *s = c->state;
    size_t off = 0;
    for (uint64_t i = 0; i < e->n; i++) {
        int32_t part;
        uint32_t klen, vlen;
        memcpy(&part, e->buf + off, 4);
        memcpy(&klen, e->buf + off + 4, 4);
        const uint8_t *key = klen == S_NULL_KEY ? NULL : e->buf + off + 8;
        size_t kl = klen == S_NULL_KEY ? 0 : klen;
        memcpy(&vlen, e->buf + off + 8 + kl, 4);
        const uint8_t *val = e->buf + off + 12 + kl;
        off += 12 + kl + vlen;
        if (i < e->produced)
            continue;
        int rc = s_produce(c, s->rkt, part, key, kl, val, vlen, e->label, i);
        if (rc)
            return rc;
        e->produced = i + 1;
        if ((i & 1023) == 0)
            rd_kafka_poll(s->rk, 0);
    }
    return SL_OK;
}

/* The marker of epoch e in the open transaction (commit_proof: markers). */
static int s_produce_marker(sl_opctx_t *c, const s_epoch_t *e)
{
    s_sink_t *s = c->state;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    if (k->proof != SL_KAFKA_PROOF_MARKERS)
        return SL_OK;
    rd_kafka_topic_t *mt = rd_kafka_topic_new(s->rk, k->marker_topic, NULL);
    if (!mt)
        return sl_op_fail(c, SL_IO, "sink '%s': marker topic '%s': %s", c->node->name,
                          k->marker_topic, rd_kafka_err2str(rd_kafka_last_error()));
    char key[600], val[96];
    int kl = snprintf(key, sizeof key, "%s/%d", c->plan->name ? c->plan->name : "job", c->subtask);
    int vl =
        snprintf(val, sizeof val, "%" PRIu64 " %u %" PRIu64, e->label, (unsigned)s->attempt, e->n);
    int rc = s_produce(c, mt, -1, key, (size_t)kl, val, (size_t)vl, e->label, e->n);
    rd_kafka_topic_destroy(mt);
    return rc;
}

/* Appends "JOB SUBTASK EPOCH ATTEMPT RECORDS" to the journal and fsyncs:
 * one write(2) of one short line with O_APPEND, so concurrent subtasks'
 * lines never interleave. */
static int s_journal(sl_opctx_t *c, const s_epoch_t *e)
{
    s_sink_t *s = c->state;
    const char *path = c->node->ksink->journal;
    char line[700];
    int n = snprintf(line, sizeof line, "%s %d %" PRIu64 " %u %" PRIu64 "\n",
                     c->plan->name ? c->plan->name : "job", c->subtask, e->label,
                     (unsigned)s->attempt, e->n);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return sl_op_fail(c, SL_IO, "sink '%s': cannot open the commit journal %s: %s",
                          c->node->name, path, strerror(errno));
    ssize_t w = write(fd, line, (size_t)n);
    int rc = w == n && fsync(fd) == 0 ? SL_OK : SL_IO;
    if (rc)
        sl_op_fail(c, rc, "sink '%s': cannot append to the commit journal %s: %s", c->node->name,
                   path, strerror(errno));
    close(fd);
    return rc;
}

/* Commits ep[0] (closed) in its own transaction: begins one and produces
 * it if that did not happen yet, pre-commits, commits, journals. */
static int s_commit_first(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    s_epoch_t *e = &s->ep[0];
    int rc = SL_OK;
    if (e->n == 0 && !s->txn_open)
        goto done; /* nothing to write: no transaction */
    if (!s->txn_open) {
        if ((rc = s_txn(c, S_TX_BEGIN)))
            return rc;
        s->txn_open = true;
    }
    if (e->produced < e->n || !e->closed_by) {
        /* not pre-committed at its barrier (it waited for an earlier one) */
        if ((rc = s_produce_epoch(c, e)) || (rc = s_produce_marker(c, e)) || (rc = s_flush(c)))
            return rc;
    }
    sl_failpoint("kafka-sink-before-commit");
    if ((rc = s_txn(c, S_TX_COMMIT)))
        return rc;
    s->txn_open = false;
    sl_failpoint("kafka-sink-after-commit");
    if (c->node->ksink->proof == SL_KAFKA_PROOF_JOURNAL && (rc = s_journal(c, e)))
        return rc;
done:
    free(e->buf);
    memmove(&s->ep[0], &s->ep[1], (size_t)(s->nep - 1) * sizeof *s->ep);
    s->nep--;
    return SL_OK;
}

/* Commits every closed epoch that a durable checkpoint covers, oldest
 * first, then starts writing the open epoch if it is now the oldest. */
static int s_advance(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    int rc;
    while (s->nep > 1 && s->ep[0].closed_by && s->ep[0].closed_by <= s->completed)
        if ((rc = s_commit_first(c)))
            return rc;
    s_epoch_t *e = &s->ep[0];
    if (s->nep == 1 && e->produced < e->n) {
        if (!s->txn_open) {
            if ((rc = s_txn(c, S_TX_BEGIN)))
                return rc;
            s->txn_open = true;
        }
        return s_produce_epoch(c, e);
    }
    return SL_OK;
}

static s_epoch_t *s_new_epoch(s_sink_t *s, uint64_t label)
{
    if (s->nep == s->cap_ep) {
        int cap = s->cap_ep ? s->cap_ep * 2 : 4;
        s_epoch_t *n = realloc(s->ep, (size_t)cap * sizeof *n);
        if (!n)
            return NULL;
        s->ep = n;
        s->cap_ep = cap;
    }
    s_epoch_t *e = &s->ep[s->nep++];
    memset(e, 0, sizeof *e);
    e->label = label;
    return e;
}

static int s_epoch_append(s_epoch_t *e, int32_t part, const char *key, size_t klen, bool has_key,
                          const char *val, size_t vlen)
{
    size_t need = e->len + 12 + klen + vlen;
    if (need > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *n = realloc(e->buf, cap);
        if (!n)
            return SL_NOMEM;
        e->buf = n;
        e->cap = cap;
    }
    uint32_t kl = has_key ? (uint32_t)klen : S_NULL_KEY, vl = (uint32_t)vlen;
    memcpy(e->buf + e->len, &part, 4);
    memcpy(e->buf + e->len + 4, &kl, 4);
    if (klen)
        memcpy(e->buf + e->len + 8, key, klen);
    memcpy(e->buf + e->len + 8 + klen, &vl, 4);
    memcpy(e->buf + e->len + 12 + klen, val, vlen);
    e->len = need;
    e->n++;
    return SL_OK;
}

/* ---- encoding a row ------------------------------------------------------------ */

/* The value of the row in s->vals into s->text. */
static int s_encode(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    s->text.len = 0;
    if (c->node->ksink->format == SL_KAFKA_RAW) {
        const sl_value_t *v = &s->vals[0];
        return v->is_null ? SL_OK : sl_textbuf_put(&s->text, v->u.s, v->len);
    }
    return sl_textbuf_row(&s->text, c->in, s->vals, c->node->ksink->format == SL_KAFKA_JSON);
}

/* ---- the operator ------------------------------------------------------------- */

static int s_connect(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%d", k->timeout_ms);
    const char *fixed[][2] = {{"bootstrap.servers", k->bootstrap},
                              {"enable.idempotence", "true"},
                              {"message.timeout.ms", tmo},
                              {"transactional.id", s->exactly ? s->txn_id : NULL},
                              {"transaction.timeout.ms", s->exactly ? "60000" : NULL}};
    sl_kafka_cbs_t cbs = {.error_cb = s_on_error, .dr_msg_cb = s_on_dr};
    int rc = SL_OK;
    s->rk = sl_kafka_client_new(c, RD_KAFKA_PRODUCER, "a Kafka producer", fixed,
                                sizeof fixed / sizeof *fixed, &cbs, &rc);
    if (!s->rk)
        return rc;
    s->rkt = rd_kafka_topic_new(s->rk, k->topic, NULL);
    if (!s->rkt)
        return sl_op_fail(c, SL_IO, "sink '%s': topic '%s': %s", c->node->name, k->topic,
                          rd_kafka_err2str(rd_kafka_last_error()));
    if (s->exactly) /* fences the previous attempt's producer, aborts its transaction */
        return s_txn(c, S_TX_INIT);
    return SL_OK;
}

static int s_open(sl_opctx_t *c)
{
    s_sink_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    s->exactly = k->delivery == SL_KAFKA_EXACTLY_ONCE;
    /* a restart counts attempts up; a local run without one takes the clock */
    s->attempt = c->attempt ? c->attempt : (uint32_t)(time(NULL) & 0x7fffffff);
    snprintf(s->txn_id, sizeof s->txn_id, "sluice.%s.%s.%d", c->plan->name ? c->plan->name : "job",
             c->node->name, c->subtask);
    s->vals = calloc((size_t)c->in->nfields + 1, sizeof *s->vals);
    if (!s->vals || !s_new_epoch(s, 0))
        return SL_NOMEM;
    return s_connect(c);
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_sink_t *s = c->state;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    if (s->drop) {
        atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
        return SL_OK;
    }
    s_epoch_t *e = &s->ep[s->nep - 1];
    bool direct = !s->exactly || s->nep == 1; /* else it waits for an earlier commit */
    int rc = s_check_delivery(c);
    if (rc)
        return rc;
    if (s->exactly && direct && !s->txn_open) {
        if ((rc = s_txn(c, S_TX_BEGIN)))
            return rc;
        s->txn_open = true;
    }
    char kbuf[64];
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, s->vals);
        sl_value_t kv = {.is_null = true}, pv = {.is_null = true};
        if (k->key && (rc = sl_expr_eval(k->key, s->vals, c->arena, &kv)))
            return sl_op_fail(c, rc, "sink '%s': out of memory", c->node->name);
        if (k->partition && (rc = sl_expr_eval(k->partition, s->vals, c->arena, &pv)))
            return sl_op_fail(c, rc, "sink '%s': out of memory", c->node->name);
        int32_t part = -1;
        if (!pv.is_null) {
            if (pv.u.i < 0 || pv.u.i > INT32_MAX)
                return sl_op_fail(c, SL_DATA, "sink '%s': partition %lld is out of range",
                                  c->node->name, (long long)pv.u.i);
            part = (int32_t)pv.u.i;
        }
        const char *key = NULL;
        size_t klen = 0;
        if (!kv.is_null) {
            if (kv.type == SL_TYPE_STRING) {
                key = kv.u.s;
                klen = kv.len;
            } else {
                klen = sl_value_to_text(&kv, kbuf, sizeof kbuf);
                if (klen >= sizeof kbuf)
                    klen = sizeof kbuf - 1;
                key = kbuf;
            }
        }
        if ((rc = s_encode(c)))
            return sl_op_fail(c, rc, "sink '%s': out of memory", c->node->name);
        const char *val = s->text.p;
        size_t vlen = s->text.len;
        if (!s->exactly) {
            if ((rc = s_produce(c, s->rkt, part, key, klen, val, vlen, e->label, e->n++)))
                return rc;
            continue;
        }
        /* kept for the snapshot; the key is copied first (scratch is reused) */
        if ((rc = s_epoch_append(e, part, key, klen, key != NULL, val, vlen)))
            return sl_op_fail(c, rc, "sink '%s': out of memory", c->node->name);
        if (direct) {
            const uint8_t *p = e->buf + e->len - vlen;
            if ((rc = s_produce(c, s->rkt, part, key ? p - 4 - klen : NULL, klen, p, vlen, e->label,
                                e->n - 1)))
                return rc;
            e->produced = e->n;
        }
    }
    rd_kafka_poll(s->rk, 0);
    if ((rc = s_check_delivery(c)))
        return rc;
    atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
    return SL_OK;
}

/* Version, subtask, the barrier's id, then each epoch not yet committed:
 * label, records, their encoding. At-least-once: flushed, nothing kept. */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_sink_t *s = c->state;
    int rc;
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u8(w, s->exactly ? 1 : 0);
    sl_snap_u32(w, (uint32_t)c->subtask);
    if (!s->exactly) {
        if ((rc = s_flush(c)))
            return rc;
        s->ep[0].label = c->checkpoint_id; /* the epoch in the headers */
        return w->err;
    }
    s_epoch_t *e = &s->ep[s->nep - 1];
    uint64_t id = c->checkpoint_id;
    e->closed_by = id;
    if (s->nep == 1 && s->txn_open) { /* pre-commit: everything acknowledged */
        if ((rc = s_produce_marker(c, e)) || (rc = s_flush(c)))
            return rc;
    }
    sl_failpoint("kafka-sink-after-precommit");
    sl_snap_u64(w, id);
    sl_snap_u32(w, (uint32_t)s->nep);
    for (int i = 0; i < s->nep; i++) {
        sl_snap_u64(w, s->ep[i].label);
        sl_snap_u64(w, s->ep[i].n);
        sl_snap_bytes(w, s->ep[i].buf, s->ep[i].len);
    }
    return s_new_epoch(s, id) ? w->err : sl_op_fail(c, SL_NOMEM, "out of memory");
}

/* ---- recovery: which epochs are proven committed -------------------------- */

typedef struct {
    uint64_t *v; /* epoch labels proven committed for this subtask */
    int n, cap;
} s_set_t;

static int s_set_add(s_set_t *st, uint64_t label)
{
    if (st->n == st->cap) {
        int cap = st->cap ? st->cap * 2 : 64;
        uint64_t *n = realloc(st->v, (size_t)cap * sizeof *n);
        if (!n)
            return SL_NOMEM;
        st->v = n;
        st->cap = cap;
    }
    st->v[st->n++] = label;
    return SL_OK;
}

static bool s_set_has(const s_set_t *st, uint64_t label)
{
    for (int i = 0; i < st->n; i++)
        if (st->v[i] == label)
            return true;
    return false;
}

/* The journal's lines of this job and subtask (a torn last line, from a
 * crash while appending, is no proof). A missing journal proves nothing. */
static int s_read_journal(sl_opctx_t *c, s_set_t *st)
{
    const char *path = c->node->ksink->journal;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? SL_OK
                               : sl_op_fail(c, SL_IO, "sink '%s': cannot read the journal %s: %s",
                                            c->node->name, path, strerror(errno));
    char line[800], job[600];
    const char *me = c->plan->name ? c->plan->name : "job";
    int rc = SL_OK;
    while (rc == SL_OK && fgets(line, sizeof line, f)) {
        int sub;
        unsigned long long ep, at, n;
        if (!strchr(line, '\n') ||
            sscanf(line, "%599s %d %llu %llu %llu", job, &sub, &ep, &at, &n) != 5)
            continue;
        if (strcmp(job, me) == 0 && sub == c->subtask)
            rc = s_set_add(st, ep);
    }
    fclose(f);
    return rc ? sl_op_fail(c, rc, "out of memory") : SL_OK;
}

/* The markers of this job and subtask in the marker topic, read with
 * isolation.level=read_committed up to the end of every partition. */
static int s_read_markers(sl_opctx_t *c, s_set_t *st)
{
    s_sink_t *s = c->state;
    const sl_kafka_sink_cfg_t *k = c->node->ksink;
    char group[600], want[600];
    snprintf(group, sizeof group, "%s.markers", s->txn_id);
    int wl =
        snprintf(want, sizeof want, "%s/%d", c->plan->name ? c->plan->name : "job", c->subtask);
    const char *set[][2] = {
        {"bootstrap.servers", k->bootstrap},   {"group.id", group},
        {"isolation.level", "read_committed"}, {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},      {"auto.offset.reset", "earliest"}};
    /* the user's properties too: a secured cluster needs them for reading */
    int rc = SL_OK;
    rd_kafka_t *rk = sl_kafka_client_new(c, RD_KAFKA_CONSUMER, "a consumer of markers", set,
                                         sizeof set / sizeof *set, NULL, &rc);
    if (!rk)
        return rc;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, k->marker_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, k->timeout_ms);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (err || md->topic_cnt != 1) {
        rc = sl_op_fail(c, SL_IO, "sink '%s': cannot read the metadata of marker topic '%s': %s",
                        c->node->name, k->marker_topic, rd_kafka_err2str(err));
        goto out;
    }
    if (md->topics[0].err) /* no such topic: nothing was ever committed */
        goto out;
    int np = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(parts, k->marker_topic, md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    if ((err = rd_kafka_assign(rk, parts))) {
        rc = sl_op_fail(c, SL_IO, "sink '%s': cannot read marker topic '%s': %s", c->node->name,
                        k->marker_topic, rd_kafka_err2str(err));
        goto out;
    }
    int eofs = 0;
    int64_t deadline = s_mono_ms() + k->timeout_ms;
    while (eofs < np && rc == SL_OK) {
        if (s_mono_ms() > deadline) {
            rc = sl_op_fail(c, SL_TIMEOUT,
                            "sink '%s': marker topic '%s' not read to its end within %d ms",
                            c->node->name, k->marker_topic, k->timeout_ms);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (!m->err && m->key_len == (size_t)wl && memcmp(m->key, want, (size_t)wl) == 0) {
            char v[96];
            size_t n = m->len < sizeof v - 1 ? m->len : sizeof v - 1;
            memcpy(v, m->payload, n);
            v[n] = '\0';
            unsigned long long ep;
            if (sscanf(v, "%llu", &ep) == 1 && s_set_add(st, ep))
                rc = sl_op_fail(c, SL_NOMEM, "out of memory");
        }
        rd_kafka_message_destroy(m);
    }
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* Restores the epochs of checkpoint id that were not yet committed and
 * commits them now, re-producing those whose commit is not proven (the
 * checkpoint is durable: its output must be in the topic). When the epoch
 * after the checkpoint is proven too, the failed attempt had committed
 * everything up to the end of input (finish): the replay is dropped. */
static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_sink_t *s = c->state;
    uint8_t v = sl_snap_get_u8(r), ex = sl_snap_get_u8(r);
    uint32_t sub = sl_snap_get_u32(r);
    if (r->err || v != S_SNAP_VERSION || ex > 1)
        return sl_op_fail(c, SL_DATA, "sink '%s': not a snapshot of a Kafka sink", c->node->name);
    if (sub != (uint32_t)c->subtask)
        return sl_op_fail(c, SL_DATA, "sink '%s': the snapshot is of subtask %u, not %d",
                          c->node->name, sub, c->subtask);
    if (!ex) /* at-least-once: the replay writes again what came after it */
        return s->exactly ? sl_op_fail(c, SL_DATA,
                                       "sink '%s': the checkpoint was taken with delivery: "
                                       "at-least-once; it cannot resume exactly-once",
                                       c->node->name)
                          : SL_OK;
    uint64_t id = sl_snap_get_u64(r);
    uint32_t nep = sl_snap_get_u32(r);
    if (r->err || nep > r->left / 20)
        return sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
    if (!s->exactly)
        return sl_op_fail(c, SL_DATA,
                          "sink '%s': the checkpoint holds exactly-once transactions; delivery "
                          "must stay exactly-once",
                          c->node->name);
    s_set_t proven = {0};
    int rc = c->node->ksink->proof == SL_KAFKA_PROOF_JOURNAL ? s_read_journal(c, &proven)
                                                             : s_read_markers(c, &proven);
    /* the list holds the empty open epoch 0 of open(): replace it */
    s->nep = 0;
    int redo = 0;
    for (uint32_t i = 0; rc == SL_OK && i < nep; i++) {
        uint64_t label = sl_snap_get_u64(r), n = sl_snap_get_u64(r);
        size_t len;
        const uint8_t *buf = sl_snap_get_bytes(r, &len);
        if (r->err || (len < n * 12)) {
            rc = sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
            break;
        }
        if (n == 0 || s_set_has(&proven, label))
            continue;
        s_epoch_t *e = s_new_epoch(s, label);
        if (!e || !(e->buf = malloc(len ? len : 1))) {
            rc = sl_op_fail(c, SL_NOMEM, "out of memory");
            break;
        }
        memcpy(e->buf, buf, len);
        e->len = e->cap = len;
        e->n = n;
        e->closed_by = id;
        redo++;
        /* the records must parse: garbage fails here, not while producing */
        size_t off = 0;
        for (uint64_t j = 0; j < n && off + 12 <= len; j++) {
            uint32_t kl, vl;
            memcpy(&kl, buf + off + 4, 4);
            size_t kk = kl == S_NULL_KEY ? 0 : kl;
            if (off + 12 + kk > len)
                break;
            memcpy(&vl, buf + off + 8 + kk, 4);
            off += 12 + kk + vl;
        }
        if (off != len)
            rc = sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot (records of epoch %llu)",
                            c->node->name, (unsigned long long)label);
    }
    bool finished = rc == SL_OK && s_set_has(&proven, id);
    free(proven.v);
    if (rc == SL_OK && !s_new_epoch(s, id))
        rc = sl_op_fail(c, SL_NOMEM, "out of memory");
    if (rc)
        return rc;
    if (redo)
        fprintf(stderr,
                "sluice: sink '%s' subtask %d: re-producing %d epoch(s) of checkpoint %llu whose "
                "commit is not proven\n",
                c->node->name, c->subtask, redo, (unsigned long long)id);
    s->completed = id;
    if (finished) {
        fprintf(stderr,
                "sluice: sink '%s' subtask %d: the output after checkpoint %llu was committed "
                "at the end of input; the replay is not written again\n",
                c->node->name, c->subtask, (unsigned long long)id);
        s->drop = true;
    }
    return s_advance(c);
}

/* Between batches: serves delivery reports, so a failed delivery fails
 * the task even when no more input comes. */
static int s_tick(sl_opctx_t *c, int64_t now_ms)
{
    (void)now_ms;
    s_sink_t *s = c->state;
    if (s->rk)
        rd_kafka_poll(s->rk, 0);
    return s_check_delivery(c);
}

static int s_complete(sl_opctx_t *c, uint64_t id)
{
    s_sink_t *s = c->state;
    if (!s->exactly || id <= s->completed)
        return SL_OK;
    s->completed = id;
    return s_advance(c);
}

/* End of input: at-least-once flushes; exactly-once commits every epoch
 * in order, the last one (after the last checkpoint) too. */
static int s_finish(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    if (!s->exactly)
        return s_flush(c);
    if (s->drop)
        return SL_OK;
    int rc;
    while (s->nep > 0)
        if ((rc = s_commit_first(c)))
            return rc;
    s->finished = true;
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    if (s) {
        if (s->rk) {
            if (s->txn_open) { /* a failed or canceled task: the next attempt fences it anyway */
                rd_kafka_error_t *e = rd_kafka_abort_transaction(s->rk, 2000);
                if (e)
                    rd_kafka_error_destroy(e);
            }
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(s->rk, 0);
        }
        if (s->rkt)
            rd_kafka_topic_destroy(s->rkt);
        if (s->rk)
            rd_kafka_destroy(s->rk);
        for (int i = 0; i < s->nep; i++)
            free(s->ep[i].buf);
        free(s->ep);
        free(s->vals);
        free(s->text.p);
    }
    free(s);
    c->state = NULL;
}

const sl_op_vtable_t sl_op_kafka_sink = {.open = s_open,
                                         .process = s_process,
                                         .finish = s_finish,
                                         .close = s_close,
                                         .tick = s_tick,
                                         .snapshot = s_snapshot,
                                         .restore = s_restore,
                                         .complete = s_complete};
