/* kafka_group.c — kafka-group, a tiny consumer-group offset tool for tests
 * (kcat cannot commit chosen offsets, nor print a group's committed ones).
 *
 * Usage:
 *   kafka-group BOOTSTRAP GROUP committed TOPIC PARTITIONS
 *       prints "PARTITION OFFSET" per partition 0..PARTITIONS-1 (-1: none)
 *   kafka-group BOOTSTRAP GROUP commit TOPIC PARTITION=OFFSET...
 *       commits those offsets synchronously (a standalone, assigned consumer)
 * Exit 0 on success, 1 with the reason on stderr, 2 for bad arguments. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

enum { S_TIMEOUT_MS = 10000 };

static void s_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[3], "committed") != 0 && strcmp(argv[3], "commit") != 0)) {
        fprintf(stderr, "usage: kafka-group BOOTSTRAP GROUP committed TOPIC PARTITIONS\n"
                        "       kafka-group BOOTSTRAP GROUP commit TOPIC PARTITION=OFFSET...\n");
        return 2;
    }
    bool commit = strcmp(argv[3], "commit") == 0;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *set[][2] = {
        {"bootstrap.servers", argv[1]}, {"group.id", argv[2]}, {"enable.auto.commit", "false"}};
    for (size_t i = 0; i < sizeof set / sizeof *set; i++)
        if (rd_kafka_conf_set(conf, set[i][0], set[i][1], errstr, sizeof errstr)) {
            fprintf(stderr, "kafka-group: %s\n", errstr);
            return 1;
        }
    rd_kafka_conf_set_log_cb(conf, s_quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka-group: %s\n", errstr);
        return 1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    if (commit) {
        for (int i = 5; i < argc; i++) {
            long p;
            long long o;
            if (sscanf(argv[i], "%ld=%lld", &p, &o) != 2 || p < 0 || o < 0) {
                fprintf(stderr, "kafka-group: '%s' is not PARTITION=OFFSET\n", argv[i]);
                return 2;
            }
            rd_kafka_topic_partition_list_add(l, argv[4], (int32_t)p)->offset = o;
        }
    } else {
        long n = strtol(argv[5], NULL, 10);
        for (long p = 0; p < n && p < 100000; p++)
            rd_kafka_topic_partition_list_add(l, argv[4], (int32_t)p);
    }
    rd_kafka_resp_err_t err =
        commit ? rd_kafka_commit(rk, l, 0) : rd_kafka_committed(rk, l, S_TIMEOUT_MS);
    for (int i = 0; !err && i < l->cnt; i++)
        if (l->elems[i].err)
            err = l->elems[i].err;
    if (err)
        fprintf(stderr, "kafka-group: %s: %s\n", argv[3], rd_kafka_err2str(err));
    for (int i = 0; !err && !commit && i < l->cnt; i++)
        printf("%d %lld\n", (int)l->elems[i].partition,
               (long long)(l->elems[i].offset >= 0 ? l->elems[i].offset : -1));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return err ? 1 : 0;
}
