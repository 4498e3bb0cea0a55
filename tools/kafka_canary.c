/* kafka_canary.c — kafka-canary, a probe of the dev broker's known gaps.
 *
 * librdkafka's mock cluster (what sluice-dev-kafka runs) speaks the
 * transaction protocol but keeps none of its semantics. This program measures
 * those gaps with librdkafka's own transactional producer and prints one
 * `name=value` fact per line; tests/scenario/080_dev_kafka.sh asserts them, so
 * a librdkafka upgrade that closes a gap fails the canary and gets noticed
 * (then docs/kafka.md and the exactly-once oracle must be revisited).
 *
 * Usage: kafka-canary BOOTSTRAP TOPIC PARTITION COUNT
 * The partition must be empty. Facts printed:
 *   aborted=N                     records produced in an aborted transaction
 *   committed=1                   one record produced in a committed transaction
 *   read_committed_visible=N      records a read_committed consumer sees
 *                                 (Kafka: 1 committed + 1 after fencing test; mock: all)
 *   second_init_fenced_first=yes|no  whether a second producer with the same
 *                                 transactional.id fences the first
 *   txn_offsets_committed=OFFSET|none  the group offset after
 *                                 send_offsets_to_transaction + commit
 *   offsets_for_times=OFFSET      offset for a timestamp an hour ago (Kafka: 0)
 * Exit 0 when every fact was measured, 1 when a step failed (with why). */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sluice/err.h"

enum { S_TIMEOUT_MS = 10000 };

/* Makes a transactional producer; NULL (with a message) on failure. */
static rd_kafka_t *s_txn_producer(const char *bootstrap, const char *txn_id)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "transactional.id", txn_id, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof errstr)) {
        fprintf(stderr, "kafka-canary: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "kafka-canary: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Reports a transactional error (and frees it); returns SL_STATE. */
static int s_txn_fail(const char *what, rd_kafka_error_t *err)
{
    fprintf(stderr, "kafka-canary: %s: %s\n", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return SL_STATE;
}

/* Produces count records "prefix-i" to topic/partition and flushes. */
static int s_produce(rd_kafka_t *rk, const char *topic, int partition, const char *prefix,
                     int count)
{
    for (int i = 0; i < count; i++) {
        char val[64];
        int n = snprintf(val, sizeof val, "%s-%d", prefix, i);
        rd_kafka_resp_err_t e =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_VALUE(val, (size_t)n),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "kafka-canary: produce: %s\n", rd_kafka_err2str(e));
            return SL_IO;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, S_TIMEOUT_MS);
    if (e) {
        fprintf(stderr, "kafka-canary: flush: %s\n", rd_kafka_err2str(e));
        return SL_TIMEOUT;
    }
    return 0;
}

/* Makes a consumer of group (isolation read_committed); NULL on failure. */
static rd_kafka_t *s_consumer(const char *bootstrap, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof errstr)) {
        fprintf(stderr, "kafka-canary: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "kafka-canary: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Reads topic/partition from the beginning with read_committed until the
 * partition's end; stores the number of records seen in *seen. */
static int s_count_committed(rd_kafka_t *c, const char *topic, int partition, int *seen)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(c, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (e) {
        fprintf(stderr, "kafka-canary: assign: %s\n", rd_kafka_err2str(e));
        return SL_STATE;
    }
    *seen = 0;
    int rc = SL_TIMEOUT;
    time_t deadline = time(NULL) + S_TIMEOUT_MS / 1000;
    while (time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            rc = 0;
            break;
        }
        if (m->err == 0)
            (*seen)++;
        rd_kafka_message_destroy(m);
    }
    if (rc != 0)
        fprintf(stderr, "kafka-canary: read_committed consumer did not reach the end\n");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: kafka-canary BOOTSTRAP TOPIC PARTITION COUNT\n");
        return 2;
    }
    const char *boot = argv[1], *topic = argv[2];
    int partition = atoi(argv[3]), count = atoi(argv[4]);
    if (partition < 0 || count < 1 || count > 1000000) {
        fprintf(stderr, "kafka-canary: PARTITION must be >= 0 and COUNT in 1..1000000\n");
        return 2;
    }
    int rc = 1, seen = 0;
    rd_kafka_error_t *err;
    rd_kafka_t *p1 = s_txn_producer(boot, "kafka-canary");
    rd_kafka_t *p2 = NULL, *c = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    if (p1 == NULL)
        goto out;

    /* 1. records of an aborted transaction */
    if ((err = rd_kafka_init_transactions(p1, S_TIMEOUT_MS)) != NULL) {
        s_txn_fail("init_transactions", err);
        goto out;
    }
    if ((err = rd_kafka_begin_transaction(p1)) != NULL) {
        s_txn_fail("begin_transaction", err);
        goto out;
    }
    if (s_produce(p1, topic, partition, "aborted", count) != 0)
        goto out;
    if ((err = rd_kafka_abort_transaction(p1, S_TIMEOUT_MS)) != NULL) {
        s_txn_fail("abort_transaction", err);
        goto out;
    }
    printf("aborted=%d\n", count);

    /* 2. one committed record, with the consumer offset sent in the transaction */
    if ((err = rd_kafka_begin_transaction(p1)) != NULL) {
        s_txn_fail("begin_transaction", err);
        goto out;
    }
    if (s_produce(p1, topic, partition, "committed", 1) != 0)
        goto out;
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, topic, partition)->offset = 42;
    cgmd = rd_kafka_consumer_group_metadata_new("kafka-canary-group");
    err = rd_kafka_send_offsets_to_transaction(p1, offs, cgmd, S_TIMEOUT_MS);
    rd_kafka_topic_partition_list_destroy(offs);
    if (err != NULL) {
        s_txn_fail("send_offsets_to_transaction", err);
        goto out;
    }
    if ((err = rd_kafka_commit_transaction(p1, S_TIMEOUT_MS)) != NULL) {
        s_txn_fail("commit_transaction", err);
        goto out;
    }
    printf("committed=1\n");
    fflush(stdout);

    /* 3. a second producer with the same transactional.id should fence p1 */
    p2 = s_txn_producer(boot, "kafka-canary");
    if (p2 == NULL)
        goto out;
    if ((err = rd_kafka_init_transactions(p2, S_TIMEOUT_MS)) != NULL) {
        s_txn_fail("init_transactions (second producer)", err);
        goto out;
    }
    bool fenced = false;
    if ((err = rd_kafka_begin_transaction(p1)) != NULL) {
        fenced = true;
        rd_kafka_error_destroy(err);
    } else {
        (void)s_produce(p1, topic, partition, "zombie", 1);
        if ((err = rd_kafka_commit_transaction(p1, S_TIMEOUT_MS)) != NULL) {
            fenced = true;
            rd_kafka_error_destroy(err);
        }
    }
    printf("second_init_fenced_first=%s\n", fenced ? "yes" : "no");
    fflush(stdout);

    /* 4. what a read_committed consumer sees, and the group's offset */
    c = s_consumer(boot, "kafka-canary-group");
    if (c == NULL || s_count_committed(c, topic, partition, &seen) != 0)
        goto out;
    printf("read_committed_visible=%d\n", seen);
    rd_kafka_topic_partition_list_t *cp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(cp, topic, partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(c, cp, S_TIMEOUT_MS);
    if (e == 0 && cp->elems[0].offset >= 0)
        printf("txn_offsets_committed=%lld\n", (long long)cp->elems[0].offset);
    else
        printf("txn_offsets_committed=none\n");
    rd_kafka_topic_partition_list_destroy(cp);

    /* 5. timestamp lookup: every record is younger than an hour */
    rd_kafka_topic_partition_list_t *tq = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tq, topic, partition)->offset =
        ((int64_t)time(NULL) - 3600) * 1000;
    e = rd_kafka_offsets_for_times(c, tq, S_TIMEOUT_MS);
    if (e == 0)
        printf("offsets_for_times=%lld\n", (long long)tq->elems[0].offset);
    else
        printf("offsets_for_times=error:%s\n", rd_kafka_err2name(e));
    rd_kafka_topic_partition_list_destroy(tq);
    rc = 0;

out:
    fflush(stdout);
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (c != NULL) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    if (p2 != NULL)
        rd_kafka_destroy(p2);
    if (p1 != NULL)
        rd_kafka_destroy(p1);
    return rc;
}
