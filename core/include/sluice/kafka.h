/* kafka.h — the `kafka` source's configuration and record decoding.
 *
 * Broker-free on purpose: this is what the planner checks (fields of a
 * `type: kafka` source, with positions for every error) and how a record's
 * value becomes a row (JSON object, CSV line in schema order, or the raw
 * bytes). The worker's operator (worker/op_kafka_source.c) does the talking
 * to Kafka with librdkafka; the core library never links it.
 *
 * Metadata fields: when the schema names `partition` (int64), `offset`
 * (int64) or `kafka_timestamp` (timestamp), `key` (string) with
 * `key: true` and `headers` (string) with `headers: true`, those fields
 * come from the record, not from its value. */
#ifndef SLUICE_KAFKA_H
#define SLUICE_KAFKA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/arena.h"
#include "sluice/expr.h"
#include "sluice/diag.h"
#include "sluice/row.h"
#include "sluice/spec.h"

typedef enum { SL_KAFKA_JSON, SL_KAFKA_CSV, SL_KAFKA_RAW } sl_kafka_format_t;

typedef enum {
    SL_KAFKA_START_EARLIEST, /* the low watermark of each partition */
    SL_KAFKA_START_LATEST,   /* the high watermark: only what comes later */
    SL_KAFKA_START_OFFSETS,  /* per-partition offsets; unnamed partitions start earliest */
    /* source only, below */
    SL_KAFKA_START_COMMITTED, /* the group's committed offsets, else `fallback` */
    SL_KAFKA_START_TIMESTAMP, /* the first offset at or after start_ts (offsets_for_times) */
} sl_kafka_start_t;

typedef struct {
    int32_t partition;
    int64_t offset;
} sl_kafka_offset_t;

/* Source only: where a bounded read ends (`bounded: true` or `stop:`). */
typedef enum {
    SL_KAFKA_STOP_END,       /* the end offsets (high watermarks) seen at the first start */
    SL_KAFKA_STOP_OFFSETS,   /* before the given offsets; unnamed partitions as STOP_END */
    SL_KAFKA_STOP_TIMESTAMP, /* before the first record with timestamp >= stop_ts, at the
                                latest at the end seen at the first start */
} sl_kafka_stop_t;

typedef struct sl_kafka_cfg {
    char *bootstrap;            /* bootstrap.servers */
    char *topic;                /* the one topic read */
    char *group;                /* group.id, or NULL (used for commits later) */
    sl_kafka_format_t format;   /* how a value becomes a row */
    bool skip_errors;           /* on_error: skip */
    bool bounded;               /* stop at the high watermarks seen at start */
    bool key;                   /* fill the `key` field with the record key */
    sl_kafka_start_t start;     /* where each partition starts */
    int noffsets;               /* start: offsets: entries */
    sl_kafka_offset_t *offsets; /* noffsets entries, partitions distinct */
    int timeout_ms;             /* connect / metadata timeout */
    int nprops;                 /* properties: passed to librdkafka */
    char **prop_names;          /* nprops entries, owned */
    char **prop_values;         /* nprops entries, owned */
    /* bound to the schema by sl_kafka_cfg_bind: field index or -1 */
    int f_key, f_partition, f_offset, f_timestamp, f_value;
    int nvalue;        /* fields that come from the value, in schema order */
    int *value_fields; /* their indexes (CSV columns, JSON keys) */

    /* ---- source only ---------------------------------------------------- */
    int ntopics;                     /* topics named (topic: or topics:); 0 with topic_pattern */
    char **topics;                   /* ntopics names, owned (topics[0] is topic with `topic:`) */
    char *topic_pattern;             /* topic_pattern: an extended regex a whole name must match */
    sl_kafka_start_t fallback;       /* start: committed, no committed offset: EARLIEST or LATEST */
    int64_t start_ts;                /* start: {timestamp: ...}: epoch milliseconds */
    bool headers;                    /* fill the string field `headers` with "k=v,k2=v2" */
    int f_headers;                   /* bound: the `headers` field, or -1 */
    int64_t rate;                    /* max records per second per subtask, 0 = no limit */
    sl_kafka_stop_t stop;            /* bounded: where each partition ends */
    int nstop;                       /* stop: offsets: entries */
    sl_kafka_offset_t *stop_offsets; /* nstop entries, partitions distinct */
    int64_t stop_ts;                 /* stop: {timestamp: ...}: epoch milliseconds */
    char *dead_letter; /* on_error: {dead_letter: TOPIC}: malformed records go there, or NULL */
} sl_kafka_cfg_t;

/* Parses the kafka-specific fields of a source's mapping (all but `schema`
 * and the common keys). Every error goes to d with its position; name is
 * the source's name for messages. Returns 0 and *out, SL_SPEC or SL_NOMEM. */
int sl_kafka_cfg_parse(const sl_ynode_t *body, const char *name, sl_diag_t *d,
                       sl_kafka_cfg_t **out);
/* Binds cfg to the source's schema (metadata fields, value fields) and
 * checks the types of the metadata fields; errors at line:col in d.
 * Returns 0 or SL_SPEC / SL_NOMEM. */
int sl_kafka_cfg_bind(sl_kafka_cfg_t *cfg, const sl_schema_t *schema, sl_diag_t *d, int line,
                      int col);
void sl_kafka_cfg_destroy(sl_kafka_cfg_t **pp);
/* Source only: compiles a topic_pattern into *re (a regex_t, anchored so a
 * whole topic name must match); 0 or the regcomp error (regfree it after
 * 0). */
int sl_kafka_pattern_compile(const char *pattern, void *re);

/* Decodes the value p[0..n) into the value fields of vals[schema->nfields]
 * (metadata fields are left to the caller). Strings live in arena. Returns
 * 0, or SL_DATA with the reason in err (no position: the caller names
 * topic, partition and offset), or SL_NOMEM. */
int sl_kafka_decode(const sl_kafka_cfg_t *cfg, const sl_schema_t *schema, const char *p, size_t n,
                    sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap);

/* ---- the `kafka` sink ------------------------------------------------------
 *
 * Its fields as the planner checks them (docs/kafka.md "Kafka sink"). The
 * `key` and `partition` expressions are compiled by the planner against
 * the sink's input schema and kept here; the worker's operator
 * (worker/op_kafka_sink.c) does the producing. */

typedef enum {
    SL_KAFKA_AT_LEAST_ONCE, /* idempotent producer, flushed at every checkpoint */
    SL_KAFKA_EXACTLY_ONCE,  /* one transaction per epoch, committed when it is durable */
} sl_kafka_delivery_t;

typedef enum {
    SL_KAFKA_PROOF_MARKERS, /* a marker record in the epoch's transaction (real Kafka) */
    SL_KAFKA_PROOF_JOURNAL, /* a commit journal file (brokers without transactions) */
} sl_kafka_proof_t;

typedef struct sl_kafka_sink_cfg {
    char *bootstrap;              /* bootstrap.servers */
    char *topic;                  /* the topic written */
    sl_kafka_format_t format;     /* how a row becomes a value */
    sl_kafka_delivery_t delivery; /* at-least-once (default) or exactly-once */
    sl_kafka_proof_t proof;       /* exactly-once: how a commit is proven on recovery */
    char *journal;                /* commit_proof: journal: the journal file (owned) */
    char *marker_topic;           /* commit_proof: markers: their topic (owned) */
    int timeout_ms;               /* delivery / transaction timeout */
    int nprops;                   /* properties: passed to librdkafka */
    char **prop_names;            /* nprops entries, owned */
    char **prop_values;           /* nprops entries, owned */
    /* set by the planner (NULL when not given); owned */
    sl_expr_t *key;       /* the record key (any type; null = no key) */
    sl_expr_t *partition; /* the partition (int64), or NULL for librdkafka's partitioner */
} sl_kafka_sink_cfg_t;

/* Parses the kafka-specific fields of a sink's mapping except the
 * expressions `key` and `partition` (the planner compiles those). Every
 * error goes to d with its position; name is the sink's name. Returns 0
 * and *out, SL_SPEC or SL_NOMEM. */
int sl_kafka_sink_cfg_parse(const sl_ynode_t *body, const char *name, sl_diag_t *d,
                            sl_kafka_sink_cfg_t **out);
void sl_kafka_sink_cfg_destroy(sl_kafka_sink_cfg_t **pp);

#endif
