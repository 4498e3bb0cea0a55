/* plan.h — the logical and execution plan of a job.
 *
 * sl_plan_build() checks every type-specific field of every node of a
 * loaded spec, derives the record schema of every edge, compiles every
 * expression against the schema of its input, picks the partitioning of
 * every edge and chains nodes into tasks. The result is immutable and
 * shared read-only by every subtask of the job (each subtask keeps its own
 * mutable state in the worker).
 *
 * Partitioning of the edge into a node:
 *   - hash: into `aggregate` (by its key) and out of `key_by` (by its key);
 *     the key hashes into one of max_parallelism key groups, and key group
 *     g belongs to subtask g * parallelism / max_parallelism;
 *   - forward: same parallelism (subtask i feeds subtask i; also for each
 *     input of a union);
 *   - rebalance: otherwise (round robin over batches).
 * Chaining: a node joins its upstreams' chain when every input edge is
 * forward, or hash with both ends at parallelism 1 (no exchange: the one
 * subtask owns every key group), carries the upstream's output (not its
 * side output), and every input runs in the same chain; chain heads are
 * everything else. A chain may branch (an operator feeding several chained
 * ones, and others in other tasks) and merge (a join of two branches); its
 * nodes are in topological order, the head first. */
#ifndef SLUICE_PLAN_H
#define SLUICE_PLAN_H
#include <stdbool.h>
#include <stdio.h>

#include "sluice/diag.h"
#include "sluice/expr.h"
#include "sluice/fileio.h"
#include "sluice/kafka.h"
#include "sluice/nexmark.h"
#include "sluice/plugin.h"
#include "sluice/row.h"
#include "sluice/spec.h"
#include "sluice/ysb.h"

typedef enum {
    SL_OP_FILE_SOURCE,
    SL_OP_GENERATOR_SOURCE,
    SL_OP_FILTER,
    SL_OP_MAP,
    SL_OP_FLAT_MAP,
    SL_OP_KEY_BY,
    SL_OP_AGGREGATE,
    SL_OP_UNION,
    SL_OP_FILE_SINK,
    SL_OP_STDOUT_SINK,
    SL_OP_DISCARD_SINK, /* counts and drops: benchmarks, dry runs */
    SL_OP_NEXMARK_SOURCE,
    SL_OP_KAFKA_SOURCE,
    SL_OP_WINDOW,  /* keyed windows over event or processing time (docs/time.md) */
    SL_OP_JOIN,    /* two-input join: window, interval or enrich (docs/job-spec.md) */
    SL_OP_PROCESS, /* keyed process function of a plugin: state and timers (docs/udf.md) */
    /* Yahoo Streaming Benchmark ad events (sluice/ysb.h, docs/ysb.md) */
    SL_OP_YSB_SOURCE,
    SL_OP_KAFKA_SINK, /* a Kafka topic, at-least-once or exactly-once (sluice/kafka.h) */
} sl_opkind_t;

typedef enum { SL_PART_FORWARD, SL_PART_HASH, SL_PART_REBALANCE } sl_part_t;

typedef enum {
    SL_AGG_COUNT,
    SL_AGG_SUM,
    SL_AGG_MIN,
    SL_AGG_MAX,
    SL_AGG_AVG,
    SL_AGG_FIRST,          /* windows only: value at the earliest event time */
    SL_AGG_LAST,           /* windows only: value at the latest event time */
    SL_AGG_COUNT_DISTINCT, /* windows only */
} sl_aggfn_t;

/* Watermark of "no event time yet" and of "end of input". */
#define SL_WM_MIN INT64_MIN
#define SL_WM_MAX INT64_MAX
/* Event times beyond ±this (about 36 million years) are beyond any
 * calendar: windows and joins count such a record as an error and skip it,
 * and a source's watermark leaves it out (else one such record would make
 * every record after it late). */
#define SL_TIME_LIMIT (INT64_C(1) << 60)
/* The event time of a row whose time field holds raw, produced by a node
 * with rowtime_adj adj (a window result's: its window_end - 1 ms); a time
 * beyond any calendar stays as it is (an error to whoever checks). */
static inline int64_t sl_time_adjusted(int64_t raw, int64_t adj)
{
    return raw < -SL_TIME_LIMIT || raw > SL_TIME_LIMIT ? raw : raw + adj;
}

typedef enum { SL_WIN_TUMBLING, SL_WIN_SLIDING, SL_WIN_SESSION } sl_wintype_t;

/* A `window` node: how records map to windows and when windows fire. */
typedef struct {
    sl_wintype_t type;
    int64_t size;      /* tumbling, sliding: window length (ms) */
    int64_t slide;     /* sliding: distance between window starts (ms); = size for tumbling */
    int64_t gap;       /* session: inactivity that closes a session (ms) */
    bool processing;   /* time: processing (wall clock) instead of event time */
    int64_t lateness;  /* allowed_lateness (ms): state kept after firing for late updates */
    int time_field;    /* event time field in the input schema (-1 for processing time) */
    int64_t time_adj;  /* added to its value for the event time (input's rowtime_adj) */
    int top_n;         /* top: N largest records per window by top_by (0 = aggregates) */
    sl_expr_t *top_by; /* top: the ranking expression over the input schema */
} sl_window_cfg_t;

typedef enum { SL_JOIN_WINDOW, SL_JOIN_INTERVAL, SL_JOIN_ENRICH } sl_joinkind_t;

/* A `join` node: input 0 is the left side (the stream for enrich), input 1
 * the right (the table changelog for enrich). Output: window_start and
 * window_end (window kind only), every left field, every right field (a
 * name taken by a left field gets the prefix right_). */
typedef struct {
    sl_joinkind_t kind;
    int nkeys;                    /* key fields per side (same count and types) */
    int *lkeys;                   /* key field indexes in the left input schema */
    int *rkeys;                   /* key field indexes in the right input schema */
    int ltime, rtime;             /* event-time field of each input schema */
    int64_t ltime_adj, rtime_adj; /* added to those fields' values for the event time */
    int64_t lower;                /* interval: right.ts >= left.ts + lower (ms) */
    int64_t upper;                /* interval: right.ts <= left.ts + upper (ms) */
    bool emit_nulls;              /* enrich: on_missing: emit_nulls (else drop) */
    int lfirst;                   /* output index of the first left field (2 for window, else 0) */
} sl_join_cfg_t;

typedef struct {
    sl_aggfn_t fn;
    int field;     /* input field index; -1 for count(*) */
    sl_type_t out; /* result type */
} sl_agg_t;

typedef struct {
    sl_format_t format;
    char *path;          /* file or glob pattern */
    sl_schema_t *schema; /* declared record schema */
    bool skip_errors;    /* on_error: skip (else fail) */
    char delimiter;
    bool header;
} sl_file_source_cfg_t;

typedef struct sl_plan_node {
    int id;           /* index in plan->nodes (== spec node index) */
    const char *name; /* borrowed from the spec */
    const char *type; /* the spec's type string */
    sl_opkind_t kind;
    sl_role_t role;
    int parallelism;
    sl_schema_t *out; /* output schema; NULL for sinks */
    int ninputs;
    int *inputs;      /* upstream node ids */
    int *input_ports; /* per input: 0 = the upstream's output, 1 = its side output */
    sl_part_t *part;  /* partitioning of each input edge */
    int **edge_keys;  /* for hash edges: key field indexes in the upstream's schema */
    int *edge_nkeys;
    int chain; /* chain (task) this node belongs to */
    int nconsumers;
    int *consumers; /* downstream node ids */

    /* per-kind configuration (only the one of `kind` is set) */
    sl_file_source_cfg_t src;
    int64_t gen_count; /* generator: records in all, -1 = unbounded */
    double gen_rate;   /* generator: records/s in all, 0 = as fast as possible */
    int64_t gen_start; /* generator: timestamp of record 0 (ms) */
    int64_t gen_pause_after, gen_pause_ms; /* generator: each subtask pauses after N records */
    char *gen_pause_until; /* generator: the pause ends early once this file exists (NULL: none) */
    sl_expr_t *where;      /* filter */
    int nexprs;            /* map */
    sl_expr_t **exprs;
    int split_field; /* flat_map: index of the string field split */
    char *separator; /* flat_map: NULL = any whitespace */
    int nkeys;       /* key_by / aggregate: key fields in the input schema */
    int *keys;
    int naggs; /* aggregate */
    sl_agg_t *aggs;
    const sl_udf_function_t *udf; /* map / filter / flat_map by a plugin function */
    int *udf_in;                  /* input field index of each of the function's inputs */
    char *sink_path;              /* file sink */
    sl_format_t sink_format;      /* file / stdout sink */
    bool sink_rolling;            /* file sink: `publish: checkpoint` (path is a directory) */

    sl_nexmark_cfg_t nex;  /* nexmark: the event model (seed, first time, event rate) */
    int64_t nex_events;    /* nexmark: events in all, -1 = unbounded */
    double nex_rate;       /* nexmark: events/s of wall clock in all, 0 = as fast as possible */
    sl_kafka_cfg_t *kafka; /* kafka source: connection, topic, start, format (sluice/kafka.h) */
    sl_kafka_sink_cfg_t *ksink; /* kafka sink: topic, format, key, delivery (sluice/kafka.h) */

    /* Event time (docs/time.md). */
    int rowtime;           /* event-time field of `out`, or -1 when records carry none */
    int64_t rowtime_adj;   /* event time = rowtime's value + this: -1 for window results
                            * (rowtime is the exclusive window_end), else 0 or the input's */
    bool watermarks;       /* source: generates watermarks from `timestamp:` */
    int64_t wm_bound;      /* source: watermark.max_out_of_order (ms) */
    int64_t wm_idle;       /* source: watermark.idle_timeout (ms), 0 = never idle */
    int64_t wm_interval;   /* source: watermark.interval (ms): least time between two */
    sl_window_cfg_t win;   /* window */
    sl_schema_t *side_out; /* schema of the side output (`late:`), or NULL */
    const char *late_name; /* name of the side output (borrowed from the spec) */
    sl_expr_t *ts_expr;    /* source: `timestamp:` as an expression over its records, or NULL */
    sl_schema_t *src_out;  /* source with ts_expr: the records it makes (out adds event_time) */
    sl_join_cfg_t join;    /* join (window shape in win) */
    /* process: the function is udf (inputs udf_in), keys in keys/nkeys */
    bool proc_processing;  /* process: time: processing (ctx->time is the wall clock) */
    int proc_time_field;   /* process, time: event: event-time field of the input, else -1 */
    int64_t proc_time_adj; /* process: added to proc_time_field's value (the input's adj) */
    int64_t proc_ttl_ms;   /* process: state_ttl (ms of processing time), 0 = none */
    sl_ysb_cfg_t ysb;      /* ysb: the event model (seed, first time, event rate) */
    int64_t ysb_events;    /* ysb: events in all, -1 = unbounded */
    double ysb_rate;       /* ysb: events/s of wall clock in all, 0 = as fast as possible */
    /* nexmark / ysb, realtime: true: event n is emitted no earlier than its
     * event time on the wall clock (for latency runs) */
    bool gen_realtime;
    /* Plan rewrites (s_fuse_filters, s_fuse_maps): a filter that is the
     * only consumer of a nexmark source, in its chain, is applied by the
     * source to each event before its row is built and encoded; a map
     * that is the only consumer of the source (or of that filter) has its
     * rows built by the source from each event's values, so the source
     * emits rows of the map's schema. The filter and the map then forward
     * what they receive. */
    int fused_filter;          /* nexmark source: id of the filter it applies, or -1 */
    int fused_map;             /* nexmark source: id of the map whose rows it emits, or -1 */
    bool fused;                /* filter: its source applies `where` (every row it gets passes);
                                  map: its source builds its rows (every row it gets is its output) */
    int latency_field;         /* discard sink: timestamp field measured (now - it), or -1 */
    int64_t latency_warmup_ms; /* discard sink: event time skipped at the start */
    int64_t latency_span_ms;   /* discard sink: event time measured after it (0 = all) */
} sl_plan_node_t;

typedef struct {
    int id;
    int parallelism;
    int nnodes;
    int *nodes; /* node ids in topological order, head first */
} sl_plan_chain_t;

typedef struct sl_plan {
    const sl_spec_t *spec; /* borrowed: must outlive the plan */
    const char *name;
    int max_parallelism;
    int nnodes;
    sl_plan_node_t *nodes;
    int nchains;
    sl_plan_chain_t *chains; /* in topological order of their heads */
} sl_plan_t;

/* Builds the plan of spec. parallelism > 0 overrides the job default (not
 * a node's own). plugin is the loaded plugin the spec names (`plugin:`), or
 * NULL when it names none. All errors go to d with positions. Returns 0
 * and *out, or SL_SPEC / SL_NOMEM. */
int sl_plan_build(const sl_spec_t *spec, int parallelism, const sl_plugin_t *plugin, sl_diag_t *d,
                  sl_plan_t **out);
void sl_plan_destroy(sl_plan_t **pp);
/* Slots the job needs with slot sharing: the largest chain parallelism. */
int sl_plan_slots(const sl_plan_t *p);
/* Human-readable plan: chains, parallelism, schemas and edge partitioning. */
void sl_plan_print(const sl_plan_t *p, FILE *out);
/* Graphviz dot of the chained plan. */
void sl_plan_print_dot(const sl_plan_t *p, FILE *out);
const char *sl_part_name(sl_part_t p);

/* The schema of the records a source makes (its output without the
 * event_time a timestamp expression adds). */
static inline const sl_schema_t *sl_plan_source_schema(const sl_plan_node_t *nd)
{
    return nd->src_out ? nd->src_out : nd->out;
}

/* The schema of the rows a source emits: its records', or those of the map
 * fused into it (fused_map). */
static inline const sl_schema_t *sl_plan_emit_schema(const sl_plan_t *p, const sl_plan_node_t *nd)
{
    return nd->fused_map >= 0 ? p->nodes[nd->fused_map].out : sl_plan_source_schema(nd);
}

/* Schema of the records on input edge k of nd (its upstream's output or
 * side output). */
const sl_schema_t *sl_plan_input_schema(const sl_plan_t *p, const sl_plan_node_t *nd, int k);

/* Key group of a key hash, and the subtask owning a key group. */
int sl_key_group(uint64_t hash, int max_parallelism);
int sl_key_group_owner(int key_group, int max_parallelism, int parallelism);

/* Loads a spec (text, or the file when text is NULL) with params and
 * builds its plan with plugin (or NULL): the one call behind the CLI, the
 * master and the workers. On failure *spec and *plan are NULL and d holds
 * the errors. */
int sl_plan_load_with(const char *file, const char *text, size_t len, const sl_params_t *params,
                      int parallelism, const sl_plugin_t *plugin, sl_diag_t *d, sl_spec_t **spec,
                      sl_plan_t **plan);
/* sl_plan_load_with without a plugin. */
int sl_plan_load(const char *file, const char *text, size_t len, const sl_params_t *params,
                 int parallelism, sl_diag_t *d, sl_spec_t **spec, sl_plan_t **plan);

#endif
