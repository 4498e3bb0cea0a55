/* kafka_raw.c — the raw librdkafka baseline of bench/kafka.sh: how fast a
 * plain client produces to and consumes from a Kafka cluster (here the dev
 * broker), with nothing of Sluice in the way.
 *
 *   kafka_raw produce BOOTSTRAP TOPIC PARTITIONS COUNT SIZE [headers]
 *       COUNT JSON records of SIZE bytes, round-robin over partitions
 *       0..PARTITIONS-1, one producer (enable.idempotence=true, acks=all,
 *       linger.ms=5, batch.num.messages=10000: the settings of Sluice's
 *       at-least-once sink), timed from the first produce call to the end
 *       of the flush; every record must be acknowledged. With "headers",
 *       each record also carries the five headers Sluice's sink writes
 *       (job, subtask, epoch, attempt, seq), formatted per record as the
 *       sink does.
 *   kafka_raw consume BOOTSTRAP TOPIC COUNT
 *       reads every partition of TOPIC from its beginning to its end with
 *       rd_kafka_consumer_poll (one record per call, as Sluice's source
 *       does), timed from the assignment to the last end of partition; the
 *       records read must be COUNT.
 *   kafka_raw count BOOTSTRAP TOPIC
 *       prints "low L high H partitions P": the sums of the partitions'
 *       low and high watermarks (L > 0: retention dropped records).
 *
 * produce and consume print one line "records N bytes B seconds S
 * records_per_s R" on stdout; any failure exits 1 with the reason. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"

#define S_TIMEOUT_MS 30000 /* metadata, watermark and no-progress timeout */

static void s_die(const char *what, const char *why)
{
    fprintf(stderr, "kafka_raw: %s: %s\n", what, why);
    exit(1);
}

static void s_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        s_die(name, err);
}

static void s_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static rd_kafka_t *s_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_conf_set_log_cb(conf, s_on_log);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        s_die("rd_kafka_new", err);
    return rk;
}

/* The number of partitions of TOPIC (which must exist). */
static int s_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, S_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e)
        s_die("metadata", rd_kafka_err2str(e));
    int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    if (n <= 0)
        s_die(topic, "no such topic");
    return n;
}

/* ---- produce -------------------------------------------------------------------- */

static uint64_t s_acked, s_failed;
static char s_dr_err[256];

static void s_on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (!s_failed++)
            snprintf(s_dr_err, sizeof s_dr_err, "%s", rd_kafka_err2str(m->err));
    } else
        s_acked++;
}

static void s_produce(const char *boot, const char *topic, int parts, uint64_t count, int size,
                      bool headers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    s_set(conf, "bootstrap.servers", boot);
    s_set(conf, "enable.idempotence", "true");
    s_set(conf, "acks", "all");
    s_set(conf, "linger.ms", "5");
    s_set(conf, "batch.num.messages", "10000");
    s_set(conf, "queue.buffering.max.messages", "1000000");
    s_set(conf, "message.timeout.ms", "60000");
    rd_kafka_conf_set_dr_msg_cb(conf, s_on_dr);
    rd_kafka_t *rk = s_client(RD_KAFKA_PRODUCER, conf);
    int have = s_partitions(rk, topic);
    if (have < parts)
        s_die(topic, "has fewer partitions than asked for");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *buf = malloc((size_t)size + 64);
    if (!buf)
        s_die("malloc", "out of memory");
    uint64_t bytes = 0;
    double t0 = bench_now();
    for (uint64_t i = 0; i < count; i++) {
        /* a JSON object padded to exactly size bytes */
        int n = snprintf(buf, (size_t)size + 64,
                         "{\"id\":%" PRIu64 ",\"user\":\"u%05" PRIu64 "\",\"amount\":%" PRIu64
                         ",\"ts\":%" PRIu64 ",\"pad\":\"",
                         i, i % 10000, i * 7 % 100000, 1700000000000 + i);
        int pad = size - n - 2;
        if (pad < 0)
            s_die("SIZE", "too small for the record (at least 90 bytes)");
        memset(buf + n, 'x', (size_t)pad);
        memcpy(buf + n + pad, "\"}", 2);
        char sub[16], ep[24], at[16], sq[24];
        if (headers) {
            snprintf(sub, sizeof sub, "%d", (int)(i % 2));
            snprintf(ep, sizeof ep, "%d", 0);
            snprintf(at, sizeof at, "%u", 1u);
            snprintf(sq, sizeof sq, "%" PRIu64, i / 2);
        }
        for (;;) {
            rd_kafka_resp_err_t e;
            if (headers)
                e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION((int32_t)(i % (uint64_t)parts)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(buf, (size_t)size),
                    RD_KAFKA_V_HEADER("job", "kafka-bench", -1),
                    RD_KAFKA_V_HEADER("subtask", sub, -1), RD_KAFKA_V_HEADER("epoch", ep, -1),
                    RD_KAFKA_V_HEADER("attempt", at, -1), RD_KAFKA_V_HEADER("seq", sq, -1),
                    RD_KAFKA_V_END);
            else
                e = rd_kafka_produce(rkt, (int32_t)(i % (uint64_t)parts), RD_KAFKA_MSG_F_COPY, buf,
                                     (size_t)size, NULL, 0, NULL) == 0
                        ? RD_KAFKA_RESP_ERR_NO_ERROR
                        : rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                s_die("produce", rd_kafka_err2str(e));
            rd_kafka_poll(rk, 10);
        }
        bytes += (uint64_t)size;
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, 120000);
    double t1 = bench_now();
    if (e)
        s_die("flush", rd_kafka_err2str(e));
    if (s_failed)
        s_die("delivery", s_dr_err);
    if (s_acked != count) {
        fprintf(stderr, "kafka_raw: %" PRIu64 " of %" PRIu64 " records acknowledged\n", s_acked,
                count);
        exit(1);
    }
    printf("records %" PRIu64 " bytes %" PRIu64 " seconds %.3f records_per_s %.0f\n", count, bytes,
           t1 - t0, (double)count / (t1 - t0));
    free(buf);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

/* ---- consume -------------------------------------------------------------------- */

static void s_consume(const char *boot, const char *topic, uint64_t want)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    s_set(conf, "bootstrap.servers", boot);
    s_set(conf, "group.id", "kafka-raw-bench");
    s_set(conf, "enable.auto.commit", "false");
    s_set(conf, "enable.auto.offset.store", "false");
    s_set(conf, "auto.offset.reset", "error");
    s_set(conf, "enable.partition.eof", "true");
    rd_kafka_t *rk = s_client(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    int parts = s_partitions(rk, topic);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    bool *eof = calloc((size_t)parts, sizeof *eof);
    if (!eof)
        s_die("calloc", "out of memory");
    int left = parts;
    uint64_t n = 0, bytes = 0;
    double t0 = bench_now(), last = t0;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, tl);
    if (e)
        s_die("assign", rd_kafka_err2str(e));
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (bench_now() - last > S_TIMEOUT_MS / 1000.0)
                s_die(topic, "no progress for 30 s");
            continue;
        }
        last = bench_now();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* an end is reported again after every later fetch: count each once */
            if (m->partition >= 0 && m->partition < parts && !eof[m->partition]) {
                eof[m->partition] = true;
                left--;
            }
        } else if (m->err)
            s_die("consume", rd_kafka_message_errstr(m));
        else {
            n++;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    double t1 = bench_now();
    if (n != want) {
        fprintf(stderr, "kafka_raw: read %" PRIu64 " records of topic %s, expected %" PRIu64 "\n",
                n, topic, want);
        exit(1);
    }
    printf("records %" PRIu64 " bytes %" PRIu64 " seconds %.3f records_per_s %.0f\n", n, bytes,
           t1 - t0, (double)n / (t1 - t0));
    free(eof);
    rd_kafka_topic_partition_list_destroy(tl);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* ---- count ---------------------------------------------------------------------- */

static void s_count(const char *boot, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    s_set(conf, "bootstrap.servers", boot);
    rd_kafka_t *rk = s_client(RD_KAFKA_PRODUCER, conf);
    int parts = s_partitions(rk, topic);
    int64_t lo_sum = 0, hi_sum = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, S_TIMEOUT_MS);
        if (e)
            s_die("watermarks", rd_kafka_err2str(e));
        lo_sum += lo;
        hi_sum += hi;
    }
    printf("low %" PRId64 " high %" PRId64 " partitions %d\n", lo_sum, hi_sum, parts);
    rd_kafka_destroy(rk);
}

static uint64_t s_num(const char *what, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        s_die(what, "not a number in range");
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    if ((argc == 7 || (argc == 8 && !strcmp(argv[7], "headers"))) && !strcmp(argv[1], "produce"))
        s_produce(argv[2], argv[3], (int)s_num("PARTITIONS", argv[4], 1, 1000),
                  s_num("COUNT", argv[5], 1, UINT64_MAX / 2),
                  (int)s_num("SIZE", argv[6], 1, 1 << 20), argc == 8);
    else if (argc == 5 && !strcmp(argv[1], "consume"))
        s_consume(argv[2], argv[3], s_num("COUNT", argv[4], 0, UINT64_MAX / 2));
    else if (argc == 4 && !strcmp(argv[1], "count"))
        s_count(argv[2], argv[3]);
    else {
        fprintf(stderr, "usage: kafka_raw produce BOOTSTRAP TOPIC PARTITIONS COUNT SIZE [headers]\n"
                        "       kafka_raw consume BOOTSTRAP TOPIC COUNT\n"
                        "       kafka_raw count BOOTSTRAP TOPIC\n");
        return 2;
    }
    return 0;
}
