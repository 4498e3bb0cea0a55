/* check_kafka.c — the `kafka` source's configuration as the planner checks
 * it (every error with its position) and the decoding of record values
 * (JSON, CSV, raw) into rows. No broker: scenario 085 reads real topics. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/kafka.h"
#include "operator.h"
#include "sluice/plan.h"
#include "sluice/snap.h"
#include "testutil.h"

typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
} s_loaded_t;

/* A job with one kafka source whose body lines (6-space indented, starting
 * at line 5) are `body`, feeding a stdout sink. */
static int s_load(s_loaded_t *l, const char *body)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: k\n"
             "sources:\n"
             "  - name: src\n"
             "    type: kafka\n"
             "%s"
             "sinks:\n"
             "  - { name: out, type: stdout, input: src }\n",
             body);
    l->d = sl_diag_new("job.yaml");
    return sl_plan_load("job.yaml", text, strlen(text), NULL, 0, l->d, &l->spec, &l->plan);
}

static void s_unload(s_loaded_t *l)
{
    sl_plan_destroy(&l->plan);
    sl_spec_destroy(&l->spec);
    sl_diag_destroy(&l->d);
}

/* A load that returned rc failed with an error at line:col whose message
 * holds what; unloads l. */
static void s_expect_diag(s_loaded_t *l, int rc, int line, int col, const char *what)
{
    ck_assert_int_eq(rc, SL_SPEC);
    int found = 0;
    for (int i = 0; i < sl_diag_count(l->d); i++)
        if (sl_diag_line(l->d, i) == line && sl_diag_col(l->d, i) == col &&
            strstr(sl_diag_message(l->d, i), what))
            found = 1;
    if (!found) {
        sl_diag_print(l->d, stderr);
        ck_abort_msg("no error '%s' at %d:%d", what, line, col);
    }
    s_unload(l);
}

/* Loading body (s_load) fails with an error at line:col holding what. */
static void s_expect_error(const char *body, int line, int col, const char *what)
{
    s_loaded_t l;
    s_expect_diag(&l, s_load(&l, body), line, col, what);
}

#define S_BOOT "    bootstrap: 127.0.0.1:9092\n"
#define S_JSON                                                                                     \
    "    topic: t\n"                                                                               \
    "    format: json\n"                                                                           \
    "    schema: [{name: word, type: string}, {name: n, type: int64}]\n"

START_TEST(test_valid_config)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, S_BOOT "    topic: orders\n"
                                       "    format: csv\n"
                                       "    schema:\n"
                                       "      - {name: id, type: int64}\n"
                                       "      - {name: partition, type: int64}\n"
                                       "      - {name: key, type: string}\n"
                                       "      - {name: kafka_timestamp, type: timestamp}\n"
                                       "      - {name: name, type: string}\n"
                                       "    key: true\n"
                                       "    bounded: true\n"
                                       "    group: g1\n"
                                       "    on_error: skip\n"
                                       "    timeout_ms: 2500\n"
                                       "    start:\n"
                                       "      offsets: {0: 10, 3: 0}\n"
                                       "    properties:\n"
                                       "      fetch.max.bytes: 1048576\n"
                                       "      client.id: me\n"),
                     SL_OK);
    const sl_plan_node_t *nd = &l.plan->nodes[sl_spec_find(l.spec, "src")];
    ck_assert_int_eq(nd->kind, SL_OP_KAFKA_SOURCE);
    const sl_kafka_cfg_t *k = nd->kafka;
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->bootstrap, "127.0.0.1:9092");
    ck_assert_str_eq(k->topic, "orders");
    ck_assert_str_eq(k->group, "g1");
    ck_assert_int_eq(k->format, SL_KAFKA_CSV);
    ck_assert(k->skip_errors && k->bounded && k->key);
    ck_assert_int_eq(k->timeout_ms, 2500);
    ck_assert_int_eq(k->start, SL_KAFKA_START_OFFSETS);
    ck_assert_int_eq(k->noffsets, 2);
    ck_assert_int_eq(k->offsets[0].partition, 0);
    ck_assert_int_eq(k->offsets[0].offset, 10);
    ck_assert_int_eq(k->offsets[1].partition, 3);
    ck_assert_int_eq(k->nprops, 2);
    ck_assert_str_eq(k->prop_names[0], "fetch.max.bytes");
    ck_assert_str_eq(k->prop_values[0], "1048576");
    /* metadata fields come from the record; the rest from the value, in order */
    ck_assert_int_eq(k->f_partition, 1);
    ck_assert_int_eq(k->f_key, 2);
    ck_assert_int_eq(k->f_timestamp, 3);
    ck_assert_int_eq(k->f_offset, -1);
    ck_assert_int_eq(k->nvalue, 2);
    ck_assert_int_eq(k->value_fields[0], 0);
    ck_assert_int_eq(k->value_fields[1], 4);
    s_unload(&l);

    /* defaults; raw without a schema reads one string field `value` */
    ck_assert_int_eq(s_load(&l, S_BOOT "    topic: t\n    format: raw\n"), SL_OK);
    nd = &l.plan->nodes[sl_spec_find(l.spec, "src")];
    ck_assert_int_eq(nd->kafka->start, SL_KAFKA_START_EARLIEST);
    ck_assert_int_eq(nd->kafka->timeout_ms, 10000);
    ck_assert(!nd->kafka->bounded && !nd->kafka->skip_errors && !nd->kafka->group);
    ck_assert_int_eq(nd->kafka->ntopics, 1);
    ck_assert_str_eq(nd->kafka->topics[0], "t");
    ck_assert_ptr_null(nd->kafka->topic_pattern);
    ck_assert(!nd->kafka->headers && nd->kafka->f_headers == -1 && nd->kafka->rate == 0);
    char buf[128];
    sl_schema_format(nd->out, buf, sizeof buf);
    ck_assert_str_eq(buf, "value:string");
    s_unload(&l);

    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    start: latest\n"), SL_OK);
    ck_assert_int_eq(l.plan->nodes[0].kafka->start, SL_KAFKA_START_LATEST);
    s_unload(&l);
}
END_TEST

START_TEST(test_errors_with_positions)
{
    /* the node's mapping starts at 3:5 */
    s_expect_error(S_JSON, 3, 5, "needs a 'bootstrap' field");
    s_expect_error(S_BOOT "    format: raw\n", 3, 5,
                   "needs exactly one of 'topic', 'topics' and 'topic_pattern'");
    s_expect_error(S_BOOT "    topic: t\n", 3, 5, "needs a 'format' field");
    s_expect_error(S_BOOT "    topic: t\n    format: avro\n", 7, 13, "unknown format 'avro'");
    s_expect_error(S_BOOT "    topic: t\n    format: json\n", 3, 5, "needs a 'schema'");
    s_expect_error("    bootstrap: ''\n" S_JSON, 5, 16, "bootstrap of 'src' is empty");
    s_expect_error(S_BOOT S_JSON "    start: oldest\n", 9, 12,
                   "must be earliest, latest, committed, offsets");
    s_expect_error(S_BOOT S_JSON "    start: {offsets: 7}\n", 9, 22, "must map partitions");
    s_expect_error(S_BOOT S_JSON "    start: {from: {0: 1}}\n", 9, 12,
                   "must be earliest, latest, committed, offsets");
    s_expect_error(S_BOOT S_JSON "    start:\n      offsets: {x: 5}\n", 10, 17, "partition");
    s_expect_error(S_BOOT S_JSON "    start:\n      offsets: {0: -1}\n", 10, 20, "offset");
    s_expect_error(S_BOOT S_JSON "    start:\n      offsets:\n        1: 5\n        1: 6\n", 12, 9,
                   "duplicate key '1'");
    s_expect_error(S_BOOT S_JSON "    start:\n      offsets: {1: 5, 01: 6}\n", 10, 23,
                   "partition 1 named twice");
    s_expect_error(S_BOOT S_JSON "    bounded: maybe\n", 9, 14, "bounded");
    s_expect_error(
        S_BOOT S_JSON "    on_error: ignore\n", 9, 15,
        "on_error of 'src' must be 'fail', 'skip' or {dead_letter: TOPIC}, not 'ignore'");
    s_expect_error(S_BOOT S_JSON "    timeout_ms: 5\n", 9, 17, "timeout_ms");
    s_expect_error(S_BOOT S_JSON "    properties:\n      group.id: x\n", 10, 7,
                   "property 'group.id' of 'src' is set by the source itself");
    s_expect_error(S_BOOT S_JSON "    properties:\n      test.mock.num.brokers: 3\n", 10, 7,
                   "set by the source itself");
    s_expect_error(S_BOOT S_JSON "    properties: [a]\n", 9, 17, "properties of 'src' must map");
    s_expect_error(S_BOOT S_JSON "    key: true\n", 8, 13, "needs a field 'key'");
    s_expect_error(S_BOOT "    topic: t\n    format: json\n"
                          "    schema: [{name: offset, type: string}, {name: n, type: int64}]\n",
                   8, 13, "field 'offset' holds the record's offset and must be int64");
    s_expect_error(S_BOOT "    topic: t\n    format: raw\n    schema: [{name: v, type: string}]\n",
                   8, 13, "a raw Kafka source has one string field 'value'");
    s_expect_error(S_BOOT "    topic: t\n    format: json\n    topics: [a]\n", 8, 13,
                   "needs exactly one of 'topic', 'topics' and 'topic_pattern'");
}
END_TEST

#define S_FMT                                                                                      \
    "    format: json\n"                                                                           \
    "    schema: [{name: word, type: string}, {name: n, type: int64}]\n"

START_TEST(test_source_options)
{
    s_loaded_t l;
    /* several topics; start from the committed offsets, else latest */
    ck_assert_int_eq(s_load(&l, S_BOOT "    topics: [b, a]\n" S_FMT "    start: committed\n"
                                       "    fallback: latest\n    rate: 250\n"),
                     SL_OK);
    const sl_kafka_cfg_t *k = l.plan->nodes[0].kafka;
    ck_assert_int_eq(k->ntopics, 2);
    ck_assert_str_eq(k->topics[0], "b");
    ck_assert_str_eq(k->topics[1], "a");
    ck_assert_ptr_null(k->topic);
    ck_assert_int_eq(k->start, SL_KAFKA_START_COMMITTED);
    ck_assert_int_eq(k->fallback, SL_KAFKA_START_LATEST);
    ck_assert_int_eq(k->rate, 250);
    s_unload(&l);
    /* committed falls back to earliest by default */
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    start: committed\n"), SL_OK);
    ck_assert_int_eq(l.plan->nodes[0].kafka->fallback, SL_KAFKA_START_EARLIEST);
    s_unload(&l);
    /* a pattern; a start timestamp as epoch milliseconds or ISO-8601 */
    ck_assert_int_eq(s_load(&l, S_BOOT "    topic_pattern: 'orders-[0-9]+'\n" S_FMT
                                       "    start: {timestamp: 1700000000123}\n"),
                     SL_OK);
    k = l.plan->nodes[0].kafka;
    ck_assert_str_eq(k->topic_pattern, "orders-[0-9]+");
    ck_assert_int_eq(k->ntopics, 0);
    ck_assert_int_eq(k->start, SL_KAFKA_START_TIMESTAMP);
    ck_assert_int_eq(k->start_ts, 1700000000123LL);
    s_unload(&l);
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    start: {timestamp: '2023-11-14T22:13:20Z'}\n"),
                     SL_OK);
    ck_assert_int_eq(l.plan->nodes[0].kafka->start_ts, 1700000000000LL);
    s_unload(&l);
    /* the pattern matches whole names */
    regex_t re;
    ck_assert_int_eq(sl_kafka_pattern_compile("orders-[0-9]+", &re), 0);
    ck_assert_int_eq(regexec(&re, "orders-12", 0, NULL, 0), 0);
    ck_assert_int_ne(regexec(&re, "orders-12x", 0, NULL, 0), 0);
    ck_assert_int_ne(regexec(&re, "xorders-1", 0, NULL, 0), 0);
    regfree(&re);
    /* headers: a string field `headers`, not read from the value */
    ck_assert_int_eq(s_load(&l, S_BOOT "    topic: t\n    format: json\n    headers: true\n"
                                       "    schema: [{name: headers, type: string},"
                                       " {name: n, type: int64}]\n"),
                     SL_OK);
    k = l.plan->nodes[0].kafka;
    ck_assert(k->headers);
    ck_assert_int_eq(k->f_headers, 0);
    ck_assert_int_eq(k->nvalue, 1);
    ck_assert_int_eq(k->value_fields[0], 1);
    s_unload(&l);

    /* errors, with positions (a topic line and S_FMT end at line 8, like S_JSON) */
    s_expect_error(S_BOOT "    topics: []\n" S_FMT, 6, 13, "topics of 'src' must be a list");
    s_expect_error(S_BOOT "    topics: a\n" S_FMT, 6, 13, "topics of 'src' must be a list");
    s_expect_error(S_BOOT "    topics: [a, b, a]\n" S_FMT, 6, 20,
                   "topic 'a' named twice in topics of 'src'");
    s_expect_error(S_BOOT "    topics: [a, '']\n" S_FMT, 6, 17, "topic of 'src' is empty");
    s_expect_error(S_BOOT "    topic_pattern: 'a('\n" S_FMT, 6, 20,
                   "topic_pattern of 'src' is not a regular expression");
    s_expect_error(S_BOOT S_JSON "    topic_pattern: a.*\n", 9, 20,
                   "needs exactly one of 'topic', 'topics' and 'topic_pattern'");
    s_expect_error(S_BOOT "    topics: [a, b]\n" S_FMT "    start: {offsets: {0: 5}}\n", 9, 12,
                   "start: offsets of 'src' names partitions of one topic");
    s_expect_error(S_BOOT S_JSON "    start: {timestamp: yesterday}\n", 9, 24,
                   "timestamp of 'src' must be epoch milliseconds or an ISO-8601 time");
    s_expect_error(S_BOOT S_JSON "    start: {timestamp: -5}\n", 9, 24,
                   "timestamp of 'src' must be epoch milliseconds");
    s_expect_error(S_BOOT S_JSON "    start: {timestamp: [1]}\n", 9, 24,
                   "timestamp of 'src' must be epoch milliseconds");
    s_expect_error(S_BOOT S_JSON "    start: {timestamp: 1, offsets: {0: 1}}\n", 9, 12,
                   "must be earliest, latest, committed, offsets");
    s_expect_error(S_BOOT S_JSON "    fallback: latest\n", 9, 15,
                   "fallback of 'src' only applies to start: committed");
    s_expect_error(S_BOOT S_JSON "    start: committed\n    fallback: oldest\n", 10, 15,
                   "fallback of 'src' must be earliest or latest, not 'oldest'");
    s_expect_error(S_BOOT S_JSON "    headers: true\n", 8, 13,
                   "needs a field 'headers' of type string");
    s_expect_error(S_BOOT S_JSON "    headers: yes please\n", 9, 14, "headers");
    s_expect_error(S_BOOT S_JSON "    rate: -1\n", 9, 11, "rate");
    s_expect_error(S_BOOT
                   "    topic: t\n    format: raw\n    headers: true\n"
                   "    schema: [{name: value, type: string}, {name: headers, type: int64}]\n",
                   9, 13, "needs a field 'headers' of type string");
}
END_TEST

/* stop: (offsets or a timestamp) makes the source bounded; on_error:
 * {dead_letter: TOPIC}; their errors with positions. */
START_TEST(test_stop_and_dead_letter)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    stop:\n      offsets: {0: 30, 2: 7}\n"
                                              "    on_error: {dead_letter: bad-orders}\n"),
                     SL_OK);
    const sl_kafka_cfg_t *k = l.plan->nodes[0].kafka;
    ck_assert(k->bounded && !k->skip_errors);
    ck_assert_int_eq(k->stop, SL_KAFKA_STOP_OFFSETS);
    ck_assert_int_eq(k->nstop, 2);
    ck_assert_int_eq(k->stop_offsets[0].partition, 0);
    ck_assert_int_eq(k->stop_offsets[0].offset, 30);
    ck_assert_int_eq(k->stop_offsets[1].partition, 2);
    ck_assert_int_eq(k->stop_offsets[1].offset, 7);
    ck_assert_int_eq(k->start, SL_KAFKA_START_EARLIEST); /* start is its own */
    ck_assert_str_eq(k->dead_letter, "bad-orders");
    s_unload(&l);
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    bounded: true\n"
                                              "    stop: {timestamp: '2023-11-14T22:13:20.5Z'}\n"),
                     SL_OK);
    k = l.plan->nodes[0].kafka;
    ck_assert(k->bounded && !k->dead_letter);
    ck_assert_int_eq(k->stop, SL_KAFKA_STOP_TIMESTAMP);
    ck_assert_int_eq(k->stop_ts, 1700000000500LL);
    s_unload(&l);
    ck_assert_int_eq(
        s_load(&l, S_BOOT "    topics: [a, b]\n" S_FMT "    stop: {timestamp: 1700000000123}\n"),
        SL_OK);
    ck_assert_int_eq(l.plan->nodes[0].kafka->stop_ts, 1700000000123LL);
    ck_assert_int_eq(l.plan->nodes[0].kafka->stop, SL_KAFKA_STOP_TIMESTAMP);
    s_unload(&l);
    /* bounded: true alone ends at the end offsets seen at start */
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON "    bounded: true\n"), SL_OK);
    ck_assert_int_eq(l.plan->nodes[0].kafka->stop, SL_KAFKA_STOP_END);
    s_unload(&l);

    s_expect_error(S_BOOT S_JSON "    stop: latest\n", 9, 11,
                   "stop of 'src' must be offsets: {PARTITION: OFFSET, ...} or timestamp: TIME");
    s_expect_error(S_BOOT S_JSON "    stop: {offsets: {0: 1}, timestamp: 5}\n", 9, 11,
                   "stop of 'src' must be offsets");
    s_expect_error(S_BOOT S_JSON "    stop: {offsets: []}\n", 9, 21,
                   "offsets of 'src' must map partitions to offsets");
    s_expect_error(S_BOOT S_JSON "    stop: {offsets: {0: 1, 0: 2}}\n", 9, 28, "duplicate key '0'");
    s_expect_error(S_BOOT S_JSON "    stop: {offsets: {0: -3}}\n", 9, 25, "offset");
    s_expect_error(S_BOOT S_JSON "    stop: {timestamp: soon}\n", 9, 23,
                   "timestamp of 'src' must be epoch milliseconds or an ISO-8601 time");
    s_expect_error(S_BOOT S_JSON "    bounded: false\n    stop: {timestamp: 5}\n", 9, 14,
                   "stop of 'src' makes the source bounded: leave out bounded: false");
    s_expect_error(S_BOOT "    topic_pattern: 'o.*'\n" S_FMT "    stop: {offsets: {0: 5}}\n", 9, 11,
                   "stop: offsets of 'src' names partitions of one topic");
    s_expect_error(S_BOOT S_JSON "    on_error: {dead_letter: ''}\n", 9, 29,
                   "dead_letter of 'src' is empty");
    s_expect_error(S_BOOT S_JSON "    on_error: {skip: dlq}\n", 9, 15,
                   "on_error of 'src' must be 'fail', 'skip' or {dead_letter: TOPIC}");
    s_expect_error(S_BOOT S_JSON "    on_error: {dead_letter: t}\n", 9, 29,
                   "dead-letter topic 't' of 'src' is a topic the source reads");
    s_expect_error(S_BOOT "    topic_pattern: 'o.*'\n" S_FMT
                          "    on_error: {dead_letter: orders.dlq}\n",
                   9, 29, "dead-letter topic 'orders.dlq' of 'src' is a topic the source reads");
    /* stop is a key of the kafka source only */
    s_expect_error(S_BOOT S_JSON "    stop: {timestamp: 5}\n    bogus: 1\n", 10, 5, "bogus");
}
END_TEST

/* A Kafka source's snapshot: the partition list with the owned offsets.
 * A restore takes it (and a second section: a rescale merges them); every
 * truncation, a wrong version and garbage fail with SL_DATA and a message,
 * never crash or leak. No broker: restore runs before the source connects. */
static void s_kafka_snap(sl_snap_w_t *w, int32_t first, int64_t next)
{
    sl_snap_w_init(w);
    sl_snap_u8(w, 1);
    sl_snap_u32(w, 2);
    for (int32_t p = first; p < first + 2; p++) {
        sl_snap_bytes(w, "orders", 6);
        sl_snap_u32(w, (uint32_t)p);
        sl_snap_u8(w, p == first);
        sl_snap_i64(w, p == first ? next : -1);
        sl_snap_i64(w, -1);
    }
}

static int s_kafka_restore(s_loaded_t *l, const uint8_t *p, size_t n, int sections)
{
    sl_opctx_t c;
    memset(&c, 0, sizeof c);
    c.plan = l->plan;
    c.node = &l->plan->nodes[0];
    c.parallelism = 2;
    const sl_op_vtable_t *vt = sl_op_vtable(c.node);
    ck_assert_ptr_eq(vt, &sl_op_kafka_source);
    ck_assert_int_eq(vt->open(&c), SL_OK);
    int rc = SL_OK;
    for (int i = 0; i < sections && rc == SL_OK; i++) {
        sl_snap_r_t r;
        sl_snap_r_init(&r, p, n);
        rc = vt->restore(&c, &r);
        if (rc == SL_OK && (r.err || r.left))
            rc = -1000; /* accepted with bytes left (the task refuses those) */
        ck_assert(rc != SL_DATA || c.err[0]);
    }
    vt->close(&c);
    return rc;
}

START_TEST(test_snapshot_restore)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, S_BOOT S_JSON), SL_OK);
    sl_snap_w_t a, b;
    s_kafka_snap(&a, 0, 42);
    s_kafka_snap(&b, 2, 7);
    ck_assert_int_eq(s_kafka_restore(&l, a.data, a.len, 1), SL_OK);
    ck_assert_int_eq(s_kafka_restore(&l, a.data, a.len, 2), SL_OK); /* the same twice */
    for (size_t n = 0; n < a.len; n++)
        ck_assert_int_eq(s_kafka_restore(&l, a.data, n, 1), SL_DATA);
    uint8_t m[256];
    ck_assert(a.len < sizeof m);
    memcpy(m, a.data, a.len);
    m[0] = 9; /* another version */
    ck_assert_int_eq(s_kafka_restore(&l, m, a.len, 1), SL_DATA);
    for (size_t i = 0; i < a.len; i++)
        for (int x = 0; x < 3; x++) {
            memcpy(m, a.data, a.len);
            m[i] ^= (uint8_t)(x == 0 ? 0x01 : x == 1 ? 0x80 : 0xff);
            int rc = s_kafka_restore(&l, m, a.len, 1);
            ck_assert(rc == SL_OK || rc == SL_DATA || rc == -1000);
        }
    uint64_t seed = 7;
    for (int t = 0; t < 300; t++) {
        size_t n = (size_t)(t % 80);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            m[i] = (uint8_t)(seed >> 56);
        }
        if (n)
            m[0] = 1;
        int rc = s_kafka_restore(&l, m, n, 1);
        ck_assert(rc == SL_OK || rc == SL_DATA || rc == -1000);
    }
    /* two sections (a rescale): both restore into one instance */
    sl_opctx_t c;
    memset(&c, 0, sizeof c);
    c.plan = l.plan;
    c.node = &l.plan->nodes[0];
    c.parallelism = 1;
    ck_assert_int_eq(sl_op_kafka_source.open(&c), SL_OK);
    sl_snap_r_t r;
    sl_snap_r_init(&r, a.data, a.len);
    ck_assert_int_eq(sl_op_kafka_source.restore(&c, &r), SL_OK);
    sl_snap_r_init(&r, b.data, b.len);
    ck_assert_int_eq(sl_op_kafka_source.restore(&c, &r), SL_OK);
    ck_assert_int_eq((int)r.left, 0);
    sl_op_kafka_source.close(&c);
    sl_snap_w_free(&a);
    sl_snap_w_free(&b);
    s_unload(&l);
}
END_TEST

/* Decodes value with the plan of body into vals; returns the code. */
static int s_decode(const char *body, const char *value, sl_value_t *vals, sl_arena_t *a, char *err,
                    size_t cap)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, body), SL_OK);
    const sl_plan_node_t *nd = &l.plan->nodes[0];
    int rc = sl_kafka_decode(nd->kafka, nd->out, value, strlen(value), vals, a, err, cap);
    s_unload(&l);
    return rc;
}

START_TEST(test_decode)
{
    sl_arena_t *a = sl_arena_new(4096);
    sl_value_t v[4];
    char err[256];
    const char *json = S_BOOT "    topic: t\n    format: json\n"
                              "    schema: [{name: word, type: string}, {name: n, type: int64}, "
                              "{name: x, type: double}, {name: partition, type: int64}]\n";
    ck_assert_int_eq(
        s_decode(json,
                 "{\"other\": {\"a\": [1, 2, {\"b\": null}]}, \"word\": \"h\\u00e9\\n\", "
                 "\"n\": -42}",
                 v, a, err, sizeof err),
        SL_OK);
    ck_assert_int_eq(v[0].len, 4);
    ck_assert_int_eq(memcmp(v[0].u.s, "h\xc3\xa9\n", 4), 0);
    ck_assert_int_eq(v[1].u.i, -42);
    ck_assert(v[2].is_null); /* missing field */
    ck_assert_int_eq(s_decode(json, "{\"word\": \"a\", \"n\": 1.5}", v, a, err, sizeof err),
                     SL_DATA);
    ck_assert_str_eq(err, "field 'n': '1.5' is not an int64");
    ck_assert_int_eq(s_decode(json, "{\"word\": 7}", v, a, err, sizeof err), SL_DATA);
    ck_assert_str_eq(err, "field 'word' expects string, got number");
    ck_assert_int_eq(s_decode(json, "{\"word\": \"a\",", v, a, err, sizeof err), SL_DATA);
    ck_assert_ptr_nonnull(strstr(err, "bad JSON at column"));
    ck_assert_int_eq(s_decode(json, "[1]", v, a, err, sizeof err), SL_DATA);
    ck_assert_ptr_nonnull(strstr(err, "not a JSON object"));
    ck_assert_int_eq(s_decode(json, "{} x", v, a, err, sizeof err), SL_DATA);
    ck_assert_ptr_nonnull(strstr(err, "text after the object"));

    const char *csv =
        S_BOOT "    topic: t\n    format: csv\n"
               "    schema: [{name: word, type: string}, {name: offset, type: int64}, "
               "{name: n, type: int64}]\n";
    ck_assert_int_eq(s_decode(csv, "\"a,\"\"b\",7\n", v, a, err, sizeof err), SL_OK);
    ck_assert_int_eq(v[0].len, 4);
    ck_assert_int_eq(memcmp(v[0].u.s, "a,\"b", 4), 0);
    ck_assert_int_eq(v[2].u.i, 7);
    ck_assert_int_eq(s_decode(csv, "\"\",", v, a, err, sizeof err), SL_OK);
    ck_assert(!v[0].is_null && v[0].len == 0); /* "" is the empty string */
    ck_assert(v[2].is_null);                   /* an empty cell is null */
    ck_assert_int_eq(s_decode(csv, "a,1,2", v, a, err, sizeof err), SL_DATA);
    ck_assert_str_eq(err, "expected 2 columns, got 3");
    ck_assert_int_eq(s_decode(csv, "a,zz", v, a, err, sizeof err), SL_DATA);
    ck_assert_ptr_nonnull(strstr(err, "column 'n'"));
    ck_assert_int_eq(s_decode(csv, "\"a,1", v, a, err, sizeof err), SL_DATA);
    ck_assert_str_eq(err, "bad quoting in column 1");

    ck_assert_int_eq(
        s_decode(S_BOOT "    topic: t\n    format: raw\n", "any {thing", v, a, err, sizeof err),
        SL_OK);
    ck_assert_int_eq(v[0].len, 10);
    ck_assert_int_eq(memcmp(v[0].u.s, "any {thing", 10), 0);
    sl_arena_destroy(&a);
}
END_TEST

/* ---- the kafka sink's fields ----------------------------------------------- */

/* A checkpointed (or not) job: a generator (seq, ts) into a kafka sink
 * whose body lines (4-space indented, from line 8, 9 with checkpoint) are `body`. */
static int s_load_sink(s_loaded_t *l, const char *body, bool ckpt)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: k\n"
             "%s"
             "sources:\n"
             "  - { name: gen, type: generator, count: 10 }\n"
             "sinks:\n"
             "  - name: out\n"
             "    type: kafka\n"
             "    input: gen\n"
             "%s",
             ckpt ? "checkpoint: { interval: 1s }\n" : "", body);
    l->d = sl_diag_new("job.yaml");
    return sl_plan_load("job.yaml", text, strlen(text), NULL, 0, l->d, &l->spec, &l->plan);
}

/* Loading body (s_load_sink) fails with an error at line:col holding what. */
static void s_expect_sink_error(const char *body, bool ckpt, int line, int col, const char *what)
{
    s_loaded_t l;
    s_expect_diag(&l, s_load_sink(&l, body, ckpt), line, col, what);
}

#define S_SINK "    bootstrap: 127.0.0.1:9092\n    topic: t\n    format: json\n"

START_TEST(test_sink_valid)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load_sink(&l,
                                 S_SINK "    key: seq % 7\n    partition: seq % 3\n"
                                        "    delivery: exactly-once\n    commit_proof: journal\n"
                                        "    journal: /tmp/j\n    timeout_ms: 5000\n"
                                        "    properties: { linger.ms: 5 }\n",
                                 true),
                     SL_OK);
    const sl_plan_node_t *n = &l.plan->nodes[sl_spec_find(l.spec, "out")];
    ck_assert_int_eq(n->kind, SL_OP_KAFKA_SINK);
    const sl_kafka_sink_cfg_t *k = n->ksink;
    ck_assert_str_eq(k->bootstrap, "127.0.0.1:9092");
    ck_assert_str_eq(k->topic, "t");
    ck_assert_int_eq(k->format, SL_KAFKA_JSON);
    ck_assert_int_eq(k->delivery, SL_KAFKA_EXACTLY_ONCE);
    ck_assert_int_eq(k->proof, SL_KAFKA_PROOF_JOURNAL);
    ck_assert_str_eq(k->journal, "/tmp/j");
    ck_assert_int_eq(k->timeout_ms, 5000);
    ck_assert_int_eq(k->nprops, 1);
    ck_assert_str_eq(k->prop_names[0], "linger.ms");
    ck_assert_ptr_nonnull(k->key);
    ck_assert_ptr_nonnull(k->partition);
    ck_assert_ptr_null(k->marker_topic);
    s_unload(&l);
    /* defaults: at-least-once, no key; markers get a topic of their own */
    ck_assert_int_eq(s_load_sink(&l, S_SINK, false), SL_OK);
    k = l.plan->nodes[sl_spec_find(l.spec, "out")].ksink;
    ck_assert_int_eq(k->delivery, SL_KAFKA_AT_LEAST_ONCE);
    ck_assert_ptr_null(k->key);
    ck_assert_int_eq(k->timeout_ms, 30000);
    s_unload(&l);
    ck_assert_int_eq(s_load_sink(&l, S_SINK "    delivery: exactly-once\n", true), SL_OK);
    k = l.plan->nodes[sl_spec_find(l.spec, "out")].ksink;
    ck_assert_int_eq(k->proof, SL_KAFKA_PROOF_MARKERS);
    ck_assert_str_eq(k->marker_topic, "t.sluice-commits");
    s_unload(&l);
}
END_TEST

START_TEST(test_sink_errors)
{
    /* the sink's mapping is at 5:5; its body lines start at 8 (9 with checkpoint) */
    s_expect_sink_error("    topic: t\n    format: json\n", false, 5, 5, "needs a 'bootstrap'");
    s_expect_sink_error("    bootstrap: b\n    topic: t\n", false, 5, 5, "needs a 'format'");
    s_expect_sink_error("    bootstrap: b\n    topic: \"\"\n    format: json\n", false, 9, 12,
                        "topic of 'out' is empty");
    s_expect_sink_error("    bootstrap: b\n    topic: t\n    format: avro\n", false, 10, 13,
                        "unknown format 'avro'");
    s_expect_sink_error(S_SINK "    delivery: twice\n", false, 11, 15,
                        "delivery of 'out' must be at-least-once or exactly-once, not 'twice'");
    s_expect_sink_error(S_SINK "    delivery: exactly-once\n", false, 11, 15,
                        "the job needs checkpoint");
    s_expect_sink_error(S_SINK "    commit_proof: journal\n    journal: j\n", true, 12, 19,
                        "commit_proof of 'out' needs delivery: exactly-once");
    s_expect_sink_error(S_SINK "    delivery: exactly-once\n    commit_proof: journal\n", true, 13,
                        19, "needs a 'journal' field");
    s_expect_sink_error(S_SINK "    delivery: exactly-once\n    commit_proof: paper\n", true, 13,
                        19, "commit_proof of 'out' must be markers or journal");
    s_expect_sink_error(S_SINK "    delivery: exactly-once\n    journal: j\n", true, 13, 14,
                        "journal of 'out' needs commit_proof: journal");
    s_expect_sink_error(S_SINK "    marker_topic: m\n", false, 11, 19,
                        "marker_topic of 'out' needs delivery: exactly-once");
    s_expect_sink_error(S_SINK "    timeout_ms: 5\n", false, 11, 17, "timeout_ms");
    s_expect_sink_error(S_SINK "    properties: { transactional.id: x }\n", false, 11, 19,
                        "property 'transactional.id' of 'out' is set by the sink itself");
    s_expect_sink_error(S_SINK "    properties: { test.mock.num.brokers: 3 }\n", false, 11, 19,
                        "is set by the sink itself");
    s_expect_sink_error(S_SINK "    key: nope + 1\n", false, 11, 10, "in key of 'out'");
    s_expect_sink_error(S_SINK "    partition: \"'a'\"\n", false, 11, 16,
                        "partition of 'out' must be an int64");
    s_expect_sink_error("    bootstrap: b\n    topic: t\n    format: raw\n", false, 5, 5,
                        "format raw needs an input of one string field");
    s_expect_sink_error(S_SINK "    acks: all\n", false, 11, 5, "unknown");
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_valid_config);
    tcase_add_test(tc, test_errors_with_positions);
    tcase_add_test(tc, test_source_options);
    tcase_add_test(tc, test_stop_and_dead_letter);
    tcase_add_test(tc, test_snapshot_restore);
    tcase_add_test(tc, test_decode);
    suite_add_tcase(s, tc);
    TCase *sink = tcase_create("sink");
    tcase_add_test(sink, test_sink_valid);
    tcase_add_test(sink, test_sink_errors);
    suite_add_tcase(s, sink);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
