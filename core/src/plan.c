/* plan.c — from a loaded spec to the immutable, typed, chained plan.
 *
 * Called by `sluice validate|plan|run` and by every worker on deploy (all
 * build the same plan from the same text, so the master never ships plan
 * structures). Each node type has one s_build_<type> function that checks
 * its fields, records errors with positions, derives its output schema and
 * compiles its expressions against its input's schema. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/plan.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/textfmt.h"

/* ---- node types --------------------------------------------------------- */

typedef struct {
    const char *type; /* the spec's `type:` */
    sl_role_t role;
    sl_opkind_t kind;
    const char *const *keys; /* type-specific keys besides the common ones */
    int nkeys;
    int min_inputs, max_inputs; /* operators and sinks */
} s_type_t;

#define S_KEYS(...)                                                                                \
    (const char *const[]){__VA_ARGS__},                                                            \
        (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static const s_type_t s_types[] = {
    {"file", SL_ROLE_SOURCE, SL_OP_FILE_SOURCE,
     S_KEYS("format", "path", "schema", "on_error", "delimiter", "header"), 0, 0},
    {"generator", SL_ROLE_SOURCE, SL_OP_GENERATOR_SOURCE, S_KEYS("count", "rate", "start", "pause"),
     0, 0},
    {"nexmark", SL_ROLE_SOURCE, SL_OP_NEXMARK_SOURCE,
     S_KEYS("events", "rate", "seed", "first_event_time", "event_rate", "realtime"), 0, 0},
    {"ysb", SL_ROLE_SOURCE, SL_OP_YSB_SOURCE,
     S_KEYS("events", "rate", "seed", "first_event_time", "event_rate", "realtime"), 0, 0},
    {"kafka", SL_ROLE_SOURCE, SL_OP_KAFKA_SOURCE,
     S_KEYS("bootstrap", "topic", "format", "schema", "start", "bounded", "key", "on_error",
            "group", "properties", "timeout_ms", "topics", "topic_pattern", "fallback", "headers",
            "rate", "stop"),
     0, 0},
    {"filter", SL_ROLE_OPERATOR, SL_OP_FILTER, S_KEYS("where", "function"), 1, 1},
    {"map", SL_ROLE_OPERATOR, SL_OP_MAP, S_KEYS("select", "function"), 1, 1},
    {"flat_map", SL_ROLE_OPERATOR, SL_OP_FLAT_MAP, S_KEYS("field", "separator", "as", "function"),
     1, 1},
    {"key_by", SL_ROLE_OPERATOR, SL_OP_KEY_BY, S_KEYS("key"), 1, 1},
    {"aggregate", SL_ROLE_OPERATOR, SL_OP_AGGREGATE, S_KEYS("key", "aggregates"), 1, 1},
    {"union", SL_ROLE_OPERATOR, SL_OP_UNION, S_KEYS("description"), 2, 64},
    {"window", SL_ROLE_OPERATOR, SL_OP_WINDOW,
     S_KEYS("key", "window", "time", "aggregates", "top", "allowed_lateness", "late"), 1, 1},
    {"join", SL_ROLE_OPERATOR, SL_OP_JOIN, S_KEYS("kind", "key", "between", "window", "on_missing"),
     2, 2},
    {"process", SL_ROLE_OPERATOR, SL_OP_PROCESS, S_KEYS("function", "key", "time", "state_ttl"), 1,
     1},
    {"file", SL_ROLE_SINK, SL_OP_FILE_SINK, S_KEYS("format", "path", "publish"), 1, 1},
    {"stdout", SL_ROLE_SINK, SL_OP_STDOUT_SINK, S_KEYS("format"), 1, 1},
    {"discard", SL_ROLE_SINK, SL_OP_DISCARD_SINK,
     S_KEYS("description", "latency", "latency_warmup", "latency_span"), 1, 1},
    {"kafka", SL_ROLE_SINK, SL_OP_KAFKA_SINK,
     S_KEYS("bootstrap", "topic", "format", "key", "partition", "delivery", "commit_proof",
            "journal", "marker_topic", "timeout_ms", "properties"),
     1, 1},
};
#define S_NTYPES ((int)(sizeof s_types / sizeof *s_types))

static const char *const s_common_keys[] = {"name",   "type",        "input",
                                            "inputs", "parallelism", "description"};
#define S_NCOMMON ((int)(sizeof s_common_keys / sizeof *s_common_keys))

/* Every source may declare its event time (docs/time.md). */
static const char *const s_source_keys[] = {"timestamp", "watermark"};
#define S_NSOURCE ((int)(sizeof s_source_keys / sizeof *s_source_keys))

static const char *const s_role_names[] = {"source", "operator", "sink"};

static const s_type_t *s_find_type(sl_role_t role, const char *type)
{
    for (int i = 0; i < S_NTYPES; i++)
        if (s_types[i].role == role && strcmp(s_types[i].type, type) == 0)
            return &s_types[i];
    return NULL;
}

/* Build context of one node. */
typedef struct {
    const sl_plugin_t *plugin; /* the job's plugin, or NULL */
    sl_plan_t *plan;
    sl_plan_node_t *node;
    const sl_spec_node_t *sn;
    sl_diag_t *d;
    const sl_schema_t *in; /* schema of the first input, NULL for sources */
} s_ctx_t;

/* Required field of the node body; records "missing" at the node. */
static const sl_ynode_t *s_req(s_ctx_t *c, const char *key)
{
    const sl_ynode_t *v = sl_ynode_get(c->sn->body, key);
    if (!v)
        sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                      "%s '%s' (type %s) needs a '%s' field", s_role_names[c->sn->role],
                      c->sn->name, c->sn->type, key);
    return v;
}

/* Position of byte offset off within the scalar node n holding src. */
static void s_scalar_pos(const sl_ynode_t *n, const char *src, int off, int *line, int *col)
{
    int l = n->line, cl = n->col + (n->quoted ? 1 : 0);
    int last_nl = -1;
    for (int i = 0; i < off && src[i]; i++)
        if (src[i] == '\n') {
            l++;
            last_nl = i;
        }
    *line = l;
    *col = last_nl >= 0 ? n->col + (off - last_nl - 1) : cl + off;
}

/* Compiles the expression in scalar node n against schema; NULL + error. */
static sl_expr_t *s_expr(s_ctx_t *c, const sl_ynode_t *n, const sl_schema_t *schema,
                         const char *what)
{
    const char *src = sl_ynode_str(n, c->d, what);
    if (!src)
        return NULL;
    sl_expr_t *e = NULL;
    char err[256];
    int off = 0;
    if (sl_expr_compile(src, schema, &e, err, sizeof err, &off) != SL_OK) {
        int line, col;
        s_scalar_pos(n, src, off, &line, &col);
        sl_diag_error(c->d, line, col, "in %s of '%s': %s", what, c->sn->name, err);
        return NULL;
    }
    return e;
}

/* A list of field names (a scalar or a sequence of scalars) resolved in
 * schema; returns the count, or -1 after recording errors. */
static int s_field_list(s_ctx_t *c, const sl_ynode_t *n, const sl_schema_t *schema,
                        const char *what, int **out)
{
    int count = n->kind == SL_Y_SCALAR ? 1 : n->kind == SL_Y_SEQ ? n->n : 0;
    if (n->kind == SL_Y_MAP || (n->kind == SL_Y_SEQ && n->n == 0)) {
        sl_diag_error(c->d, n->line, n->col, "%s of '%s' must be a field name or a list of them",
                      what, c->sn->name);
        return -1;
    }
    int *idx = calloc((size_t)count, sizeof *idx);
    if (!idx)
        return -1;
    int bad = 0;
    for (int i = 0; i < count; i++) {
        const sl_ynode_t *f = n->kind == SL_Y_SCALAR ? n : n->items[i];
        const char *name = sl_ynode_str(f, c->d, what);
        if (!name) {
            bad = 1;
            continue;
        }
        idx[i] = sl_schema_find(schema, name);
        if (idx[i] < 0) {
            const char *names[256];
            int nn = schema->nfields < 256 ? schema->nfields : 256;
            for (int k = 0; k < nn; k++)
                names[k] = schema->fields[k].name;
            sl_diag_error(c->d, f->line, f->col, "%s of '%s': unknown field '%s'", what,
                          c->sn->name, name);
            const char *near = sl_closest(name, names, nn);
            if (near)
                sl_diag_hint(c->d, "did you mean '%s'?", near);
            bad = 1;
        }
    }
    if (bad) {
        free(idx);
        return -1;
    }
    *out = idx;
    return count;
}

/* Parses `schema:` — a sequence of {name, type} or a mapping name: type. */
static sl_schema_t *s_parse_schema(s_ctx_t *c, const sl_ynode_t *n)
{
    sl_schema_t *s = sl_schema_new();
    if (!s)
        return NULL;
    int bad = 0;
    if (n->kind == SL_Y_SCALAR || n->n == 0) {
        sl_diag_error(c->d, n->line, n->col,
                      "schema of '%s' must list fields, e.g. [{name: id, type: int64}]",
                      c->sn->name);
        sl_schema_destroy(&s);
        return NULL;
    }
    for (int i = 0; i < n->n; i++) {
        const sl_ynode_t *name_n, *type_n;
        if (n->kind == SL_Y_MAP) {
            name_n = n->keys[i];
            type_n = n->items[i];
        } else {
            const sl_ynode_t *f = n->items[i];
            if (f->kind != SL_Y_MAP) {
                sl_diag_error(c->d, f->line, f->col,
                              "schema field must be a mapping {name: ..., type: ...}");
                bad = 1;
                continue;
            }
            static const char *const fkeys[] = {"name", "type"};
            if (sl_ynode_check_keys(f, fkeys, 2, c->d, "schema field")) {
                bad = 1;
                continue;
            }
            name_n = sl_ynode_get(f, "name");
            type_n = sl_ynode_get(f, "type");
            if (!name_n || !type_n) {
                sl_diag_error(c->d, f->line, f->col, "schema field needs 'name' and 'type'");
                bad = 1;
                continue;
            }
        }
        const char *fname = sl_ynode_str(name_n, c->d, "field name");
        const char *tname = sl_ynode_str(type_n, c->d, "field type");
        if (!fname || !tname) {
            bad = 1;
            continue;
        }
        sl_type_t t;
        if (sl_type_parse(tname, &t) != SL_OK) {
            static const char *const tn[] = {"int64", "double", "bool", "string", "timestamp"};
            sl_diag_error(c->d, type_n->line, type_n->col, "unknown type '%s'", tname);
            const char *near = sl_closest(tname, tn, 5);
            sl_diag_hint(c->d, near ? "did you mean '%s'?" : "types are %s",
                         near ? near : "int64, double, bool, string, timestamp");
            bad = 1;
            continue;
        }
        if (sl_schema_add(s, fname, t) == SL_EXISTS) {
            sl_diag_error(c->d, name_n->line, name_n->col, "duplicate field '%s' in schema", fname);
            bad = 1;
        }
    }
    if (bad)
        sl_schema_destroy(&s);
    return s;
}

static int s_format(s_ctx_t *c, const sl_ynode_t *n, bool allow_text, sl_format_t *out)
{
    const char *f = sl_ynode_str(n, c->d, "format");
    if (!f)
        return -1;
    if (sl_format_parse(f, out) != SL_OK || (!allow_text && *out == SL_FMT_TEXT)) {
        sl_diag_error(c->d, n->line, n->col, "unknown format '%s' for '%s'", f, c->sn->name);
        sl_diag_hint(c->d, "formats are csv, jsonl%s", allow_text ? ", text" : "");
        return -1;
    }
    return 0;
}

/* ---- per-type builders ---------------------------------------------------- */

static int s_build_file_source(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    const sl_ynode_t *fmt = s_req(c, "format"), *path = s_req(c, "path");
    int bad = !fmt || !path;
    nd->src.delimiter = ',';
    nd->src.header = true;
    if (fmt && s_format(c, fmt, true, &nd->src.format))
        bad = 1;
    if (path) {
        const char *p = sl_ynode_str(path, c->d, "path");
        if (!p || !*p) {
            if (p)
                sl_diag_error(c->d, path->line, path->col, "path of '%s' is empty", c->sn->name);
            bad = 1;
        } else
            nd->src.path = strdup(p);
    }
    const sl_ynode_t *on_error = sl_ynode_get(c->sn->body, "on_error");
    if (on_error) {
        const char *v = sl_ynode_str(on_error, c->d, "on_error");
        if (v && strcmp(v, "skip") == 0)
            nd->src.skip_errors = true;
        else if (v && strcmp(v, "fail") != 0) {
            sl_diag_error(c->d, on_error->line, on_error->col,
                          "on_error must be 'fail' or 'skip', not '%s'", v);
            bad = 1;
        }
    }
    const sl_ynode_t *delim = sl_ynode_get(c->sn->body, "delimiter");
    if (delim) {
        const char *v = sl_ynode_str(delim, c->d, "delimiter");
        if (v && strcmp(v, "\\t") == 0)
            nd->src.delimiter = '\t';
        else if (v && strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r')
            nd->src.delimiter = v[0];
        else {
            sl_diag_error(c->d, delim->line, delim->col,
                          "delimiter must be one character (or \\t)");
            bad = 1;
        }
    }
    const sl_ynode_t *header = sl_ynode_get(c->sn->body, "header");
    if (header && sl_ynode_bool(header, c->d, "header", &nd->src.header))
        bad = 1;
    const sl_ynode_t *schema = sl_ynode_get(c->sn->body, "schema");
    if (schema) {
        nd->src.schema = s_parse_schema(c, schema);
        if (!nd->src.schema)
            bad = 1;
        else if (fmt && !bad && nd->src.format == SL_FMT_TEXT &&
                 (nd->src.schema->nfields != 1 ||
                  nd->src.schema->fields[0].type != SL_TYPE_STRING)) {
            sl_diag_error(c->d, schema->line, schema->col,
                          "a text source has exactly one string field");
            bad = 1;
        }
    } else if (fmt && !bad && nd->src.format == SL_FMT_TEXT) {
        nd->src.schema = sl_schema_new();
        if (!nd->src.schema || sl_schema_add(nd->src.schema, "line", SL_TYPE_STRING))
            return SL_NOMEM;
    } else if (!bad) {
        sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                      "source '%s' needs a 'schema' (csv and jsonl records are typed)",
                      c->sn->name);
        bad = 1;
    }
    if (bad)
        return SL_SPEC;
    nd->out = sl_schema_copy(nd->src.schema);
    return nd->out ? SL_OK : SL_NOMEM;
}

/* Optional integer field key in [min, max]: 1 and *out when present and
 * valid, 0 when absent; a bad value is recorded in the diagnostics and
 * counted in *bad. */
static int s_opt_int(s_ctx_t *c, const char *key, long long min, long long max, const char *what,
                     long long *out, int *bad)
{
    const sl_ynode_t *n = sl_ynode_get(c->sn->body, key);
    if (!n)
        return 0;
    if (sl_ynode_int(n, min, max, c->d, what, out) != SL_OK) {
        (*bad)++;
        return 0;
    }
    return 1;
}

/* Optional timestamp field key (ISO-8601 or epoch ms), as s_opt_int. */
static int s_opt_timestamp(s_ctx_t *c, const char *key, int64_t *out, int *bad)
{
    const sl_ynode_t *n = sl_ynode_get(c->sn->body, key);
    if (!n)
        return 0;
    const char *t = sl_ynode_str(n, c->d, key);
    sl_arena_t *a = sl_arena_new(256);
    sl_value_t ts;
    char err[128];
    int ok =
        t && a &&
        sl_value_from_text(SL_TYPE_TIMESTAMP, t, strlen(t), a, &ts, err, sizeof err) == SL_OK &&
        !ts.is_null;
    sl_arena_destroy(&a);
    if (!ok) {
        if (t)
            sl_diag_error(c->d, n->line, n->col,
                          "%s must be a timestamp (2026-01-01T00:00:00Z or epoch ms)", key);
        (*bad)++;
        return 0;
    }
    *out = ts.u.i;
    return 1;
}

/* A deterministic sequence: record n is (seq: n, ts: start + n * 1000 / rate
 * ms, or start + n without a rate); subtask i of P emits n = i, i+P, ... */
static int s_build_generator(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    int bad = 0;
    long long v;
    nd->gen_count = s_opt_int(c, "count", 0, INT64_MAX / 2, "count", &v, &bad) ? v : -1;
    if (s_opt_int(c, "rate", 1, 1000000000, "rate (records/s)", &v, &bad))
        nd->gen_rate = (double)v;
    s_opt_timestamp(c, "start", &nd->gen_start, &bad);
    const sl_ynode_t *pause = sl_ynode_get(c->sn->body, "pause");
    if (pause) {
        /* pause: {after: N, for: D, until: PATH} — each subtask stops for D
         * of wall clock after its N-th record (to test idleness and stalls),
         * or until the file PATH exists if that comes first (empty: none) */
        static const char *const pkeys[] = {"after", "for", "until"};
        const sl_ynode_t *after = sl_ynode_get(pause, "after");
        if (pause->kind != SL_Y_MAP || sl_ynode_check_keys(pause, pkeys, 3, c->d, "pause field") ||
            !after || !sl_ynode_get(pause, "for")) {
            if (pause->kind != SL_Y_MAP || !after || !sl_ynode_get(pause, "for"))
                sl_diag_error(c->d, pause->line, pause->col,
                              "pause must be {after: RECORDS, for: DURATION[, until: PATH]}");
            return SL_SPEC;
        }
        if (sl_ynode_int(after, 0, INT64_MAX / 2, c->d, "pause after", &v) != SL_OK ||
            sl_ynode_duration(sl_ynode_get(pause, "for"), 86400000, c->d, "pause for",
                              (long long *)&nd->gen_pause_ms) != SL_OK)
            return SL_SPEC;
        nd->gen_pause_after = v;
        const sl_ynode_t *until = sl_ynode_get(pause, "until");
        if (until) {
            const char *p = sl_ynode_str(until, c->d, "pause until");
            if (!p)
                return SL_SPEC;
            if (*p && !(nd->gen_pause_until = strdup(p)))
                return SL_NOMEM;
        }
    }
    if (bad)
        return SL_SPEC;
    nd->out = sl_schema_new();
    if (!nd->out || sl_schema_add(nd->out, "seq", SL_TYPE_INT64) ||
        sl_schema_add(nd->out, "ts", SL_TYPE_TIMESTAMP))
        return SL_NOMEM;
    return SL_OK;
}

/* `realtime: true` of a generating source (nexmark, ysb): event n is
 * emitted when the wall clock reaches its event time, so event time is
 * ingestion time and latencies can be measured against it. Needs
 * first_event_time (the wall-clock time of event 0; every worker plans the
 * job itself, so "now" must come as a parameter) and excludes `rate` (the
 * pace is event_rate). */
static int s_opt_realtime(s_ctx_t *c, bool has_first, bool has_rate, bool *out)
{
    const sl_ynode_t *n = sl_ynode_get(c->sn->body, "realtime");
    if (!n)
        return SL_OK;
    if (sl_ynode_bool(n, c->d, "realtime", out) != SL_OK)
        return SL_SPEC;
    if (*out && !has_first) {
        sl_diag_error(c->d, n->line, n->col,
                      "realtime source '%s' needs first_event_time (the wall-clock time of its "
                      "first event)",
                      c->sn->name);
        sl_diag_hint(c->d, "pass it as a parameter, e.g. first_event_time: ${start} with "
                           "--param start=$(date +%%s%%3N)");
        return SL_SPEC;
    }
    if (*out && has_rate) {
        sl_diag_error(c->d, n->line, n->col,
                      "realtime source '%s' is paced by event_rate; remove rate", c->sn->name);
        return SL_SPEC;
    }
    return SL_OK;
}

/* Nexmark events (sluice/nexmark.h), one wide row per event: event_type,
 * the person fields, the auction fields, the bid fields, date_time and
 * extra, null where the kind has no such field (docs/nexmark.md). Subtask
 * i of P generates events i, i+P, ... */
static int s_build_nexmark(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    sl_nexmark_cfg_default(&nd->nex);
    int bad = 0;
    long long v;
    nd->nex_events = s_opt_int(c, "events", 0, INT64_MAX / 2, "events", &v, &bad) ? v : -1;
    if (s_opt_int(c, "rate", 1, 1000000000, "rate (events/s)", &v, &bad))
        nd->nex_rate = (double)v;
    if (s_opt_int(c, "event_rate", 1, 1000000000, "event_rate (events/s of event time)", &v, &bad))
        nd->nex.event_rate = v;
    else if (nd->nex_rate > 0)
        nd->nex.event_rate = (int64_t)nd->nex_rate;
    if (s_opt_int(c, "seed", 0, INT64_MAX, "seed", &v, &bad))
        nd->nex.seed = (uint64_t)v;
    bool first = s_opt_timestamp(c, "first_event_time", &nd->nex.first_time_ms, &bad);
    if (s_opt_realtime(c, first, nd->nex_rate > 0, &nd->gen_realtime))
        bad++;
    if (bad)
        return SL_SPEC;
    static const struct {
        const char *name;
        sl_type_t type;
    } fields[] = {
        {"event_type", SL_TYPE_STRING},   {"person_id", SL_TYPE_INT64},
        {"name", SL_TYPE_STRING},         {"email", SL_TYPE_STRING},
        {"credit_card", SL_TYPE_STRING},  {"city", SL_TYPE_STRING},
        {"state", SL_TYPE_STRING},        {"auction_id", SL_TYPE_INT64},
        {"item_name", SL_TYPE_STRING},    {"description", SL_TYPE_STRING},
        {"initial_bid", SL_TYPE_INT64},   {"reserve", SL_TYPE_INT64},
        {"expires", SL_TYPE_TIMESTAMP},   {"seller", SL_TYPE_INT64},
        {"category", SL_TYPE_INT64},      {"auction", SL_TYPE_INT64},
        {"bidder", SL_TYPE_INT64},        {"price", SL_TYPE_INT64},
        {"channel", SL_TYPE_STRING},      {"url", SL_TYPE_STRING},
        {"date_time", SL_TYPE_TIMESTAMP}, {"extra", SL_TYPE_STRING},
    };
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (sl_schema_add(nd->out, fields[i].name, fields[i].type))
            return SL_NOMEM;
    return SL_OK;
}

/* Yahoo Streaming Benchmark ad events (sluice/ysb.h, docs/ysb.md): user_id,
 * page_id, ad_id, ad_type, event_type, event_time, ip. Subtask i of P
 * generates events i, i+P, ... */
static int s_build_ysb(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    sl_ysb_cfg_default(&nd->ysb);
    int bad = 0;
    long long v;
    nd->ysb_events = s_opt_int(c, "events", 0, INT64_MAX / 2, "events", &v, &bad) ? v : -1;
    if (s_opt_int(c, "rate", 1, 1000000000, "rate (events/s)", &v, &bad))
        nd->ysb_rate = (double)v;
    if (s_opt_int(c, "event_rate", 1, 1000000000, "event_rate (events/s of event time)", &v, &bad))
        nd->ysb.event_rate = v;
    else if (nd->ysb_rate > 0)
        nd->ysb.event_rate = (int64_t)nd->ysb_rate;
    if (s_opt_int(c, "seed", 0, INT64_MAX, "seed", &v, &bad))
        nd->ysb.seed = (uint64_t)v;
    bool first = s_opt_timestamp(c, "first_event_time", &nd->ysb.first_time_ms, &bad);
    if (s_opt_realtime(c, first, nd->ysb_rate > 0, &nd->gen_realtime))
        bad++;
    if (bad)
        return SL_SPEC;
    static const char *const names[] = {"user_id",    "page_id",    "ad_id", "ad_type",
                                        "event_type", "event_time", "ip"};
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (sl_schema_add(nd->out, names[i], i == 5 ? SL_TYPE_TIMESTAMP : SL_TYPE_STRING))
            return SL_NOMEM;
    return SL_OK;
}

/* A Kafka topic (sluice/kafka.h): the fields are checked by kafka_cfg.c,
 * the schema here; raw without a schema reads one string field `value`.
 * Which subtask reads which partition: worker/op_kafka_source.c. */
static int s_build_kafka(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    int rc = sl_kafka_cfg_parse(c->sn->body, c->sn->name, c->d, &nd->kafka);
    if (rc == SL_NOMEM)
        return rc;
    const sl_ynode_t *schema = sl_ynode_get(c->sn->body, "schema");
    if (schema) {
        nd->out = s_parse_schema(c, schema);
        if (!nd->out)
            return SL_SPEC;
    } else if (nd->kafka && nd->kafka->format == SL_KAFKA_RAW) {
        nd->out = sl_schema_new();
        if (!nd->out || sl_schema_add(nd->out, "value", SL_TYPE_STRING))
            return SL_NOMEM;
    } else if (nd->kafka) {
        sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                      "source '%s' needs a 'schema' (json and csv records are typed)", c->sn->name);
        return SL_SPEC;
    }
    if (rc)
        return rc;
    const sl_ynode_t *at = schema ? schema : c->sn->body;
    return sl_kafka_cfg_bind(nd->kafka, nd->out, c->d, at->line, at->col);
}

/* map / filter / flat_map with `function: NAME` from the job's plugin: the
 * function's declared inputs are looked up in the input schema by name and
 * type; its declared outputs make the output schema. */
static int s_build_udf(s_ctx_t *c, const sl_ynode_t *fn_node, sl_udf_kind_t kind)
{
    static const char *const kinds[] = {"?", "map", "filter", "flat_map", "process"};
    sl_plan_node_t *nd = c->node;
    const char *name = sl_ynode_str(fn_node, c->d, "function");
    if (!name)
        return SL_SPEC;
    if (!c->plugin && c->plan->spec->plugin) {
        sl_diag_error(c->d, fn_node->line, fn_node->col,
                      "'%s' calls function '%s' but plugin %s was not loaded", c->sn->name, name,
                      c->plan->spec->plugin);
        return SL_SPEC;
    }
    if (!c->plugin) {
        sl_diag_error(c->d, fn_node->line, fn_node->col,
                      "'%s' calls function '%s' but the job names no plugin", c->sn->name, name);
        sl_diag_hint(c->d, "add a top-level `plugin: path/to/lib.so`");
        return SL_SPEC;
    }
    const sl_udf_function_t *f = sl_plugin_find(c->plugin, name);
    if (!f) {
        const char *names[256];
        int n = sl_plugin_names(c->plugin, names, 256);
        sl_diag_error(c->d, fn_node->line, fn_node->col, "plugin %s has no function '%s'",
                      sl_plugin_path(c->plugin), name);
        const char *near = sl_closest(name, names, n);
        if (near)
            sl_diag_hint(c->d, "did you mean '%s'?", near);
        return SL_SPEC;
    }
    if (f->kind != kind) {
        sl_diag_error(c->d, fn_node->line, fn_node->col,
                      "function '%s' is a %s function; '%s' is a %s", name, kinds[f->kind],
                      c->sn->name, kinds[kind]);
        return SL_SPEC;
    }
    nd->udf = f;
    nd->udf_in = calloc((size_t)f->nin + 1, sizeof(int));
    if (!nd->udf_in)
        return SL_NOMEM;
    for (int i = 0; i < f->nin; i++) {
        int k = sl_schema_find(c->in, f->in[i].name);
        if (k < 0 || (int)c->in->fields[k].type != f->in[i].type) {
            char have[512];
            sl_schema_format(c->in, have, sizeof have);
            sl_diag_error(c->d, fn_node->line, fn_node->col,
                          "function '%s' needs input field '%s' of type %s; the input of '%s' "
                          "is (%s)",
                          name, f->in[i].name, sl_type_name((sl_type_t)f->in[i].type), c->sn->name,
                          have);
            return SL_SPEC;
        }
        nd->udf_in[i] = k;
    }
    if (kind == SL_UDF_FILTER) {
        nd->out = sl_schema_copy(c->in);
        return nd->out ? SL_OK : SL_NOMEM;
    }
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    for (int i = 0; i < f->nout; i++)
        if (sl_schema_add(nd->out, f->out[i].name, (sl_type_t)f->out[i].type) != SL_OK) {
            sl_diag_error(c->d, fn_node->line, fn_node->col,
                          "function '%s' declares output field '%s' twice", name, f->out[i].name);
            return SL_SPEC;
        }
    return SL_OK;
}

/* The node's `function:` if it has one; records an error when it also has
 * the built-in form (key other). */
static const sl_ynode_t *s_function(s_ctx_t *c, const char *other, int *bad)
{
    const sl_ynode_t *fn = sl_ynode_get(c->sn->body, "function");
    if (fn && sl_ynode_get(c->sn->body, other)) {
        const sl_ynode_t *k = sl_ynode_key(c->sn->body, other);
        sl_diag_error(c->d, k->line, k->col, "'%s' has both '%s' and 'function'; pick one",
                      c->sn->name, other);
        *bad = 1;
    }
    return fn;
}

static int s_build_filter(s_ctx_t *c)
{
    int bad = 0;
    const sl_ynode_t *fn = s_function(c, "where", &bad);
    if (bad)
        return SL_SPEC;
    if (fn)
        return s_build_udf(c, fn, SL_UDF_FILTER);
    const sl_ynode_t *w = s_req(c, "where");
    if (!w)
        return SL_SPEC;
    c->node->where = s_expr(c, w, c->in, "where");
    if (!c->node->where)
        return SL_SPEC;
    sl_type_t t = sl_expr_type(c->node->where);
    if (t != SL_TYPE_BOOL && t != SL_TYPE_NULL) {
        sl_diag_error(c->d, w->line, w->col, "where of '%s' must be a bool expression, not %s",
                      c->sn->name, sl_type_name(t));
        return SL_SPEC;
    }
    c->node->out = sl_schema_copy(c->in);
    return c->node->out ? SL_OK : SL_NOMEM;
}

static int s_build_map(s_ctx_t *c)
{
    int bad = 0;
    const sl_ynode_t *fn = s_function(c, "select", &bad);
    if (bad)
        return SL_SPEC;
    if (fn)
        return s_build_udf(c, fn, SL_UDF_MAP);
    const sl_ynode_t *sel = s_req(c, "select");
    if (!sel)
        return SL_SPEC;
    if (sel->kind != SL_Y_MAP || sel->n == 0) {
        sl_diag_error(c->d, sel->line, sel->col,
                      "select of '%s' must map output names to expressions, e.g. "
                      "{total: price * qty}",
                      c->sn->name);
        return SL_SPEC;
    }
    sl_plan_node_t *nd = c->node;
    nd->exprs = calloc((size_t)sel->n, sizeof *nd->exprs);
    nd->out = sl_schema_new();
    if (!nd->exprs || !nd->out)
        return SL_NOMEM;
    nd->nexprs = sel->n;
    for (int i = 0; i < sel->n; i++) {
        const char *name = sl_ynode_str(sel->keys[i], c->d, "select name");
        nd->exprs[i] = s_expr(c, sel->items[i], c->in, "select");
        if (!name || !nd->exprs[i]) {
            bad = 1;
            continue;
        }
        sl_type_t t = sl_expr_type(nd->exprs[i]);
        if (t == SL_TYPE_NULL) {
            sl_diag_error(c->d, sel->items[i]->line, sel->items[i]->col,
                          "the type of '%s' is unknown (a bare null); write cast(null as TYPE)",
                          name);
            bad = 1;
            continue;
        }
        if (sl_schema_add(nd->out, name, t) == SL_EXISTS) {
            sl_diag_error(c->d, sel->keys[i]->line, sel->keys[i]->col,
                          "duplicate output field '%s'", name);
            bad = 1;
        }
    }
    return bad ? SL_SPEC : SL_OK;
}

static int s_build_flat_map(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    int bad = 0;
    const sl_ynode_t *fn = s_function(c, "field", &bad);
    if (bad)
        return SL_SPEC;
    if (fn)
        return s_build_udf(c, fn, SL_UDF_FLAT_MAP);
    const sl_ynode_t *f = s_req(c, "field");
    if (!f)
        return SL_SPEC;
    int *idx = NULL;
    if (s_field_list(c, f, c->in, "field", &idx) != 1) {
        free(idx);
        if (f->kind == SL_Y_SEQ)
            sl_diag_error(c->d, f->line, f->col, "flat_map splits exactly one field");
        return SL_SPEC;
    }
    nd->split_field = idx[0];
    free(idx);
    if (c->in->fields[nd->split_field].type != SL_TYPE_STRING) {
        sl_diag_error(c->d, f->line, f->col, "flat_map field '%s' must be a string, not %s",
                      c->in->fields[nd->split_field].name,
                      sl_type_name(c->in->fields[nd->split_field].type));
        return SL_SPEC;
    }
    const sl_ynode_t *sep = sl_ynode_get(c->sn->body, "separator");
    if (sep) {
        const char *s = sl_ynode_str(sep, c->d, "separator");
        if (!s)
            return SL_SPEC;
        if (!*s) {
            sl_diag_error(c->d, sep->line, sep->col, "separator must not be empty");
            return SL_SPEC;
        }
        nd->separator = strdup(s);
    }
    const char *as = c->in->fields[nd->split_field].name;
    const sl_ynode_t *asn = sl_ynode_get(c->sn->body, "as");
    if (asn && !(as = sl_ynode_str(asn, c->d, "as")))
        return SL_SPEC;
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    for (int i = 0; i < c->in->nfields; i++) {
        const char *name = i == nd->split_field ? as : c->in->fields[i].name;
        if (sl_schema_add(nd->out, name, c->in->fields[i].type) == SL_EXISTS) {
            sl_diag_error(c->d, asn->line, asn->col, "field '%s' already exists", name);
            return SL_SPEC;
        }
    }
    return SL_OK;
}

static int s_build_key_by(s_ctx_t *c)
{
    const sl_ynode_t *k = s_req(c, "key");
    if (!k)
        return SL_SPEC;
    c->node->nkeys = s_field_list(c, k, c->in, "key", &c->node->keys);
    if (c->node->nkeys < 0)
        return SL_SPEC;
    c->node->out = sl_schema_copy(c->in);
    return c->node->out ? SL_OK : SL_NOMEM;
}

/* Keys of an aggregate or window: `key:`, else those of an upstream
 * key_by, else none (one global group). Returns 0 or -1 after errors. */
static int s_group_keys(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    const sl_ynode_t *k = sl_ynode_get(c->sn->body, "key");
    if (k) {
        nd->nkeys = s_field_list(c, k, c->in, "key", &nd->keys);
        if (nd->nkeys < 0) {
            nd->nkeys = 0;
            return -1;
        }
        return 0;
    }
    const sl_plan_node_t *up = &c->plan->nodes[nd->inputs[0]];
    if (up->kind == SL_OP_KEY_BY && up->nkeys && nd->input_ports[0] == 0) {
        nd->keys = malloc((size_t)up->nkeys * sizeof(int));
        if (!nd->keys)
            return -1;
        memcpy(nd->keys, up->keys, (size_t)up->nkeys * sizeof(int));
        nd->nkeys = up->nkeys;
    }
    return 0;
}

/* Adds the key fields to nd->out. Returns 0 or -1 after errors. */
static int s_add_key_fields(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    const sl_ynode_t *k = sl_ynode_get(c->sn->body, "key");
    int bad = 0;
    for (int i = 0; i < nd->nkeys; i++)
        if (sl_schema_add(nd->out, c->in->fields[nd->keys[i]].name,
                          c->in->fields[nd->keys[i]].type) != SL_OK) {
            sl_diag_error(c->d, k ? k->line : c->sn->body->line, k ? k->col : c->sn->body->col,
                          "key field '%s' is listed twice", c->in->fields[nd->keys[i]].name);
            bad = 1;
        }
    return bad ? -1 : 0;
}

/* `aggregates:` into nd->aggs, their results appended to nd->out. first,
 * last and count_distinct only in windows. */
static int s_parse_aggs(s_ctx_t *c, const sl_ynode_t *aggs, bool window)
{
    sl_plan_node_t *nd = c->node;
    int bad = 0;
    if (aggs->kind != SL_Y_SEQ || aggs->n == 0) {
        sl_diag_error(c->d, aggs->line, aggs->col,
                      "aggregates of '%s' must be a list like [{name: total, fn: sum, field: x}]",
                      c->sn->name);
        return SL_SPEC;
    }
    nd->aggs = calloc((size_t)aggs->n, sizeof *nd->aggs);
    if (!nd->aggs)
        return SL_NOMEM;
    nd->naggs = aggs->n;
    static const char *const fns[] = {"count", "sum",   "min",  "max",
                                      "avg",   "first", "last", "count_distinct"};
    const int nfns = window ? 8 : 5;
    static const char *const akeys[] = {"name", "fn", "field"};
    for (int i = 0; i < aggs->n; i++) {
        const sl_ynode_t *a = aggs->items[i];
        sl_agg_t *ag = &nd->aggs[i];
        ag->field = -1;
        if (a->kind != SL_Y_MAP) {
            sl_diag_error(c->d, a->line, a->col,
                          "an aggregate is a mapping {name: ..., fn: ..., field: ...}");
            bad = 1;
            continue;
        }
        if (sl_ynode_check_keys(a, akeys, 3, c->d, "aggregate field")) {
            bad = 1;
            continue;
        }
        const sl_ynode_t *nn = sl_ynode_get(a, "name"), *fn = sl_ynode_get(a, "fn"),
                         *fld = sl_ynode_get(a, "field");
        if (!nn || !fn) {
            sl_diag_error(c->d, a->line, a->col, "an aggregate needs 'name' and 'fn'");
            bad = 1;
            continue;
        }
        const char *name = sl_ynode_str(nn, c->d, "aggregate name");
        const char *fname = sl_ynode_str(fn, c->d, "fn");
        if (!name || !fname) {
            bad = 1;
            continue;
        }
        int f = -1;
        for (int j = 0; j < 8; j++)
            if (strcmp(fname, fns[j]) == 0)
                f = j;
        if (f >= nfns) {
            sl_diag_error(c->d, fn->line, fn->col,
                          "%s is an aggregate of windows only (type: window)", fname);
            bad = 1;
            continue;
        }
        if (f < 0) {
            sl_diag_error(c->d, fn->line, fn->col, "unknown aggregate function '%s'", fname);
            const char *near = sl_closest(fname, fns, nfns);
            sl_diag_hint(c->d, near ? "did you mean '%s'?" : "functions are %s",
                         near     ? near
                         : window ? "count, sum, min, max, avg, first, last, count_distinct"
                                  : "count, sum, min, max, avg");
            bad = 1;
            continue;
        }
        ag->fn = (sl_aggfn_t)f;
        if (fld) {
            int *idx = NULL;
            if (s_field_list(c, fld, c->in, "field", &idx) != 1) {
                free(idx);
                bad = 1;
                continue;
            }
            ag->field = idx[0];
            free(idx);
        } else if (ag->fn != SL_AGG_COUNT) {
            sl_diag_error(c->d, a->line, a->col, "%s needs a 'field'", fname);
            bad = 1;
            continue;
        }
        sl_type_t ft = ag->field >= 0 ? c->in->fields[ag->field].type : SL_TYPE_INT64;
        switch (ag->fn) {
        case SL_AGG_COUNT:
        case SL_AGG_COUNT_DISTINCT:
            ag->out = SL_TYPE_INT64;
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            if (ft != SL_TYPE_INT64 && ft != SL_TYPE_DOUBLE) {
                sl_diag_error(c->d, fld->line, fld->col, "%s needs a number field, '%s' is %s",
                              fname, c->in->fields[ag->field].name, sl_type_name(ft));
                bad = 1;
                continue;
            }
            ag->out = ag->fn == SL_AGG_AVG ? SL_TYPE_DOUBLE : ft;
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            ag->out = ft;
            break;
        }
        if (sl_schema_add(nd->out, name, ag->out) == SL_EXISTS) {
            sl_diag_error(c->d, nn->line, nn->col, "duplicate output field '%s'", name);
            bad = 1;
        }
    }
    return bad ? SL_SPEC : SL_OK;
}

static int s_build_aggregate(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    int bad = s_group_keys(c) ? 1 : 0;
    const sl_ynode_t *aggs = s_req(c, "aggregates");
    if (!aggs)
        return SL_SPEC;
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    if (s_add_key_fields(c))
        bad = 1;
    int rc = s_parse_aggs(c, aggs, false);
    if (rc == SL_NOMEM)
        return rc;
    return bad || rc ? SL_SPEC : SL_OK;
}

/* Optional duration field key of the body (or of mapping m when given). */
static int s_opt_duration(s_ctx_t *c, const sl_ynode_t *m, const char *key, int64_t *out, int *bad)
{
    const sl_ynode_t *n = sl_ynode_get(m ? m : c->sn->body, key);
    if (!n)
        return 0;
    long long v;
    if (sl_ynode_duration(n, 100LL * 365 * 86400000, c->d, key, &v) != SL_OK) {
        (*bad)++;
        return 0;
    }
    *out = v;
    return 1;
}

/* `window: {type: tumbling, size: D}` | `{type: sliding, size: D, slide: D}`
 * | `{type: session, gap: D}`. */
static int s_window_shape(s_ctx_t *c, sl_window_cfg_t *w)
{
    const sl_ynode_t *wn = s_req(c, "window");
    if (!wn)
        return -1;
    static const char *const shape[] = {
        "window of '%s' must be {type: tumbling, size: 10s}, {type: sliding, size: 10s, "
        "slide: 5s} or {type: session, gap: 30s}"};
    if (wn->kind != SL_Y_MAP) {
        sl_diag_error(c->d, wn->line, wn->col, shape[0], c->sn->name);
        return -1;
    }
    static const char *const wkeys[] = {"type", "size", "slide", "gap"};
    if (sl_ynode_check_keys(wn, wkeys, 4, c->d, "window field"))
        return -1;
    const sl_ynode_t *tn = sl_ynode_get(wn, "type");
    const char *t = tn ? sl_ynode_str(tn, c->d, "window type") : NULL;
    if (!t) {
        if (!tn)
            sl_diag_error(c->d, wn->line, wn->col, shape[0], c->sn->name);
        return -1;
    }
    static const char *const types[] = {"tumbling", "sliding", "session"};
    int ti = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(t, types[i]) == 0)
            ti = i;
    if (ti < 0) {
        sl_diag_error(c->d, tn->line, tn->col, "unknown window type '%s'", t);
        const char *near = sl_closest(t, types, 3);
        sl_diag_hint(c->d, near ? "did you mean '%s'?" : "window types are %s",
                     near ? near : "tumbling, sliding, session");
        return -1;
    }
    w->type = (sl_wintype_t)ti;
    int bad = 0;
    const char *need = ti == SL_WIN_SESSION ? "gap" : "size";
    int64_t v = 0;
    if (!s_opt_duration(c, wn, need, &v, &bad) && !bad) {
        sl_diag_error(c->d, wn->line, wn->col, "a %s window needs '%s'", t, need);
        return -1;
    }
    if (bad)
        return -1;
    if (v <= 0) {
        const sl_ynode_t *vn = sl_ynode_get(wn, need);
        sl_diag_error(c->d, vn->line, vn->col, "%s of a %s window must be positive", need, t);
        return -1;
    }
    const sl_ynode_t *extra = NULL;
    if (ti == SL_WIN_SESSION) {
        w->gap = v;
        extra = sl_ynode_get(wn, "size") ? sl_ynode_get(wn, "size") : sl_ynode_get(wn, "slide");
    } else {
        w->size = w->slide = v;
        extra = sl_ynode_get(wn, "gap");
        if (ti == SL_WIN_TUMBLING && !extra)
            extra = sl_ynode_get(wn, "slide");
    }
    if (extra) {
        sl_diag_error(c->d, extra->line, extra->col, "a %s window takes no '%s'", t,
                      extra == sl_ynode_get(wn, "gap")     ? "gap"
                      : extra == sl_ynode_get(wn, "slide") ? "slide"
                                                           : "size");
        if (ti == SL_WIN_TUMBLING)
            sl_diag_hint(c->d, "a tumbling window with a slide is a sliding window");
        return -1;
    }
    if (ti == SL_WIN_SLIDING) {
        if (!s_opt_duration(c, wn, "slide", &w->slide, &bad)) {
            if (!bad)
                sl_diag_error(c->d, wn->line, wn->col, "a sliding window needs 'slide'");
            return -1;
        }
        const sl_ynode_t *sn = sl_ynode_get(wn, "slide");
        if (w->slide <= 0 || w->slide > w->size) {
            sl_diag_error(c->d, sn->line, sn->col,
                          "slide of a sliding window must be positive and at most its size");
            return -1;
        }
        if (w->size / w->slide > 1000) {
            sl_diag_error(c->d, sn->line, sn->col,
                          "a record would be in %lld windows; at most 1000 (raise the slide)",
                          (long long)(w->size / w->slide));
            return -1;
        }
    }
    return 0;
}

/* The event-time field of node nd's input k (-1: none), and in *adj what is
 * added to its value: a side output (`late:`) carries the window's input
 * records, so the window's input time. */
static int s_in_time(const sl_plan_t *p, const sl_plan_node_t *nd, int k, int64_t *adj)
{
    const sl_plan_node_t *up = &p->nodes[nd->inputs[k]];
    *adj = nd->input_ports[k] ? up->win.time_adj : up->rowtime_adj;
    return nd->input_ports[k] ? up->win.time_field : up->rowtime;
}

/* `window`: keyed (or global) windows; output = keys, window_start,
 * window_end, then the aggregates (or rank and the input's other fields
 * with `top:`). */
static int s_build_window(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    sl_window_cfg_t *w = &nd->win;
    int bad = s_group_keys(c) ? 1 : 0;
    if (s_window_shape(c, w))
        bad = 1;
    const sl_ynode_t *tn = sl_ynode_get(c->sn->body, "time");
    if (tn) {
        const char *t = sl_ynode_str(tn, c->d, "time");
        if (!t)
            bad = 1;
        else if (strcmp(t, "processing") == 0)
            w->processing = true;
        else if (strcmp(t, "event") != 0) {
            sl_diag_error(c->d, tn->line, tn->col, "time must be 'event' or 'processing', not '%s'",
                          t);
            bad = 1;
        }
    }
    const sl_plan_node_t *up = &c->plan->nodes[nd->inputs[0]];
    if (!w->processing) {
        w->time_field = nd->input_ports[0] ? -1 : s_in_time(c->plan, nd, 0, &w->time_adj);
        if (w->time_field < 0) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "window '%s' is over event time, but its input '%s' has no event time",
                          c->sn->name, up->name);
            sl_diag_hint(c->d, "name the time field on the source (timestamp: FIELD, "
                               "watermark: {max_out_of_order: 5s}), or set time: processing");
            bad = 1;
        }
    }
    int unused = 0;
    s_opt_duration(c, NULL, "allowed_lateness", &w->lateness, &unused);
    const sl_ynode_t *late = sl_ynode_get(c->sn->body, "late");
    if (late) {
        nd->late_name = sl_ynode_str(late, c->d, "late");
        if (!nd->late_name)
            bad = 1;
        else if (w->processing) {
            sl_diag_error(c->d, late->line, late->col,
                          "a processing-time window has no late records; remove 'late'");
            bad = 1;
        } else if (!(nd->side_out = sl_schema_copy(c->in)))
            return SL_NOMEM;
    }
    if (w->processing && sl_ynode_get(c->sn->body, "allowed_lateness")) {
        const sl_ynode_t *al = sl_ynode_get(c->sn->body, "allowed_lateness");
        sl_diag_error(c->d, al->line, al->col,
                      "a processing-time window has no late records; remove 'allowed_lateness'");
        bad = 1;
    }
    if (unused)
        bad = 1;
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    if (s_add_key_fields(c))
        bad = 1;
    const char *fixed[] = {"window_start", "window_end"};
    for (int i = 0; i < 2; i++)
        if (sl_schema_add(nd->out, fixed[i], SL_TYPE_TIMESTAMP) == SL_EXISTS) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "a key of '%s' is called %s, which the window adds; rename it",
                          c->sn->name, fixed[i]);
            bad = 1;
        }
    const sl_ynode_t *aggs = sl_ynode_get(c->sn->body, "aggregates");
    const sl_ynode_t *top = sl_ynode_get(c->sn->body, "top");
    if (!aggs == !top) {
        sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                      "window '%s' needs either 'aggregates' or 'top' (not both)", c->sn->name);
        return SL_SPEC;
    }
    if (aggs) {
        int rc = s_parse_aggs(c, aggs, true);
        if (rc == SL_NOMEM)
            return rc;
        if (rc)
            bad = 1;
    } else {
        /* top: {n: 3, by: price} */
        static const char *const tkeys[] = {"n", "by"};
        if (top->kind != SL_Y_MAP || sl_ynode_check_keys(top, tkeys, 2, c->d, "top field") ||
            !sl_ynode_get(top, "n") || !sl_ynode_get(top, "by")) {
            if (top->kind != SL_Y_MAP || !sl_ynode_get(top, "n") || !sl_ynode_get(top, "by"))
                sl_diag_error(c->d, top->line, top->col,
                              "top of '%s' must be {n: COUNT, by: EXPRESSION}", c->sn->name);
            return SL_SPEC;
        }
        long long n;
        if (sl_ynode_int(sl_ynode_get(top, "n"), 1, 10000, c->d, "top n", &n) != SL_OK)
            return SL_SPEC;
        w->top_n = (int)n;
        w->top_by = s_expr(c, sl_ynode_get(top, "by"), c->in, "top by");
        if (!w->top_by)
            return SL_SPEC;
        sl_type_t t = sl_expr_type(w->top_by);
        if (t != SL_TYPE_INT64 && t != SL_TYPE_DOUBLE && t != SL_TYPE_TIMESTAMP &&
            t != SL_TYPE_STRING) {
            const sl_ynode_t *by = sl_ynode_get(top, "by");
            sl_diag_error(c->d, by->line, by->col, "top by must be a number, timestamp or string");
            return SL_SPEC;
        }
        if (sl_schema_add(nd->out, "rank", SL_TYPE_INT64) == SL_EXISTS)
            bad = 1;
        for (int i = 0; i < c->in->nfields; i++) {
            bool key = false;
            for (int k = 0; k < nd->nkeys; k++)
                key = key || nd->keys[k] == i;
            if (!key &&
                sl_schema_add(nd->out, c->in->fields[i].name, c->in->fields[i].type) == SL_EXISTS) {
                sl_diag_error(c->d, top->line, top->col,
                              "input field '%s' clashes with a field the window adds; rename it",
                              c->in->fields[i].name);
                bad = 1;
            }
        }
    }
    return bad ? SL_SPEC : SL_OK;
}

/* A join bound: a duration with an optional leading '-' (ms into *out). */
static int s_join_bound(s_ctx_t *c, const sl_ynode_t *n, int64_t *out)
{
    if (n->kind == SL_Y_SCALAR && n->str && n->str[0] == '-') {
        sl_ynode_t pos = *n;
        pos.str = n->str + 1;
        long long v;
        if (sl_ynode_duration(&pos, 100LL * 365 * 86400000, c->d, "between bound", &v) != SL_OK)
            return -1;
        *out = -v;
        return 0;
    }
    long long v;
    if (sl_ynode_duration(n, 100LL * 365 * 86400000, c->d, "between bound", &v) != SL_OK)
        return -1;
    *out = v;
    return 0;
}

/* `key:` of a join: one list for both sides, or {left: ..., right: ...};
 * equal counts and types. Returns 0 or -1 after errors. */
static int s_join_keys(s_ctx_t *c, const sl_schema_t *ls, const sl_schema_t *rs)
{
    sl_join_cfg_t *j = &c->node->join;
    const sl_ynode_t *k = s_req(c, "key");
    if (!k)
        return -1;
    const sl_ynode_t *ln = k, *rn = k;
    if (k->kind == SL_Y_MAP) {
        static const char *const sides[] = {"left", "right"};
        if (sl_ynode_check_keys(k, sides, 2, c->d, "join key field"))
            return -1;
        ln = sl_ynode_get(k, "left");
        rn = sl_ynode_get(k, "right");
        if (!ln || !rn) {
            sl_diag_error(c->d, k->line, k->col,
                          "key of '%s' must be a field list, or {left: [...], right: [...]}",
                          c->sn->name);
            return -1;
        }
    }
    int nl = s_field_list(c, ln, ls, "left key", &j->lkeys);
    int nr = s_field_list(c, rn, rs, "right key", &j->rkeys);
    if (nl < 0 || nr < 0)
        return -1;
    if (nl != nr) {
        sl_diag_error(c->d, k->line, k->col, "key of '%s' names %d left field%s and %d right",
                      c->sn->name, nl, nl == 1 ? "" : "s", nr);
        return -1;
    }
    j->nkeys = nl;
    for (int i = 0; i < nl; i++) {
        const sl_field_t *lf = &ls->fields[j->lkeys[i]], *rf = &rs->fields[j->rkeys[i]];
        if (lf->type != rf->type) {
            sl_diag_error(c->d, k->line, k->col,
                          "join key '%s' is %s on the left but '%s' is %s on the right", lf->name,
                          sl_type_name(lf->type), rf->name, sl_type_name(rf->type));
            sl_diag_hint(c->d, "cast one side in a map first");
            return -1;
        }
    }
    return 0;
}

/* `join`: two inputs (left, right) by key over event time; kind window,
 * interval or enrich (see sl_join_cfg_t and docs/job-spec.md). */
static int s_build_join(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    sl_join_cfg_t *j = &nd->join;
    const sl_schema_t *ls = sl_plan_input_schema(c->plan, nd, 0);
    const sl_schema_t *rs = sl_plan_input_schema(c->plan, nd, 1);
    int bad = 0;
    const sl_ynode_t *kn = s_req(c, "kind");
    if (!kn)
        return SL_SPEC;
    const char *kind = sl_ynode_str(kn, c->d, "kind");
    if (!kind)
        return SL_SPEC;
    static const char *const kinds[] = {"window", "interval", "enrich"};
    int ki = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(kind, kinds[i]) == 0)
            ki = i;
    if (ki < 0) {
        sl_diag_error(c->d, kn->line, kn->col, "unknown join kind '%s'", kind);
        const char *near = sl_closest(kind, kinds, 3);
        sl_diag_hint(c->d, near ? "did you mean '%s'?" : "join kinds are %s",
                     near ? near : "window, interval, enrich");
        return SL_SPEC;
    }
    j->kind = (sl_joinkind_t)ki;
    /* Keys only a kind takes. */
    static const char *const own[] = {"window", "between", "on_missing"};
    for (int i = 0; i < 3; i++) {
        const sl_ynode_t *on = sl_ynode_key(c->sn->body, own[i]);
        if (on && i != ki) {
            sl_diag_error(c->d, on->line, on->col, "a%s %s join takes no '%s'",
                          ki == SL_JOIN_WINDOW ? "" : "n", kind, own[i]);
            bad = 1;
        }
    }
    if (s_join_keys(c, ls, rs))
        bad = 1;
    if (ki == SL_JOIN_WINDOW && !bad) {
        if (s_window_shape(c, &nd->win))
            bad = 1;
        else if (nd->win.type == SL_WIN_SESSION) {
            const sl_ynode_t *wn = sl_ynode_get(c->sn->body, "window");
            sl_diag_error(c->d, wn->line, wn->col,
                          "a window join takes tumbling or sliding windows, not session");
            bad = 1;
        }
    }
    if (ki == SL_JOIN_INTERVAL && !bad) {
        const sl_ynode_t *b = s_req(c, "between");
        if (!b)
            return SL_SPEC;
        if (b->kind != SL_Y_SEQ || b->n != 2) {
            sl_diag_error(c->d, b->line, b->col,
                          "between of '%s' must be [LOWER, UPPER], e.g. [-5s, 10s]: right.ts "
                          "from left.ts + LOWER to left.ts + UPPER",
                          c->sn->name);
            return SL_SPEC;
        }
        if (s_join_bound(c, b->items[0], &j->lower) || s_join_bound(c, b->items[1], &j->upper))
            return SL_SPEC;
        if (j->lower > j->upper) {
            sl_diag_error(c->d, b->line, b->col,
                          "between of '%s': the lower bound is above the upper", c->sn->name);
            return SL_SPEC;
        }
    }
    if (ki == SL_JOIN_ENRICH) {
        const sl_ynode_t *om = sl_ynode_get(c->sn->body, "on_missing");
        const char *v = om ? sl_ynode_str(om, c->d, "on_missing") : "drop";
        if (!v)
            bad = 1;
        else if (strcmp(v, "emit_nulls") == 0)
            j->emit_nulls = true;
        else if (strcmp(v, "drop") != 0) {
            sl_diag_error(c->d, om->line, om->col,
                          "on_missing must be 'drop' or 'emit_nulls', not '%s'", v);
            bad = 1;
        }
    }
    /* Both sides on event time. */
    for (int k = 0; k < 2; k++) {
        const sl_plan_node_t *up = &c->plan->nodes[nd->inputs[k]];
        int64_t adj = 0;
        int rt = s_in_time(c->plan, nd, k, &adj);
        if (rt < 0) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "join '%s' is over event time, but its %s input '%s' has no event time",
                          c->sn->name, k ? "right" : "left", up->name);
            sl_diag_hint(c->d, "name the time field on the source (timestamp: FIELD, "
                               "watermark: {max_out_of_order: 5s})");
            bad = 1;
        }
        *(k ? &j->rtime : &j->ltime) = rt;
        *(k ? &j->rtime_adj : &j->ltime_adj) = adj;
    }
    if (bad)
        return SL_SPEC;
    nd->out = sl_schema_new();
    if (!nd->out)
        return SL_NOMEM;
    if (ki == SL_JOIN_WINDOW)
        if (sl_schema_add(nd->out, "window_start", SL_TYPE_TIMESTAMP) ||
            sl_schema_add(nd->out, "window_end", SL_TYPE_TIMESTAMP))
            return SL_NOMEM;
    j->lfirst = nd->out->nfields;
    for (int i = 0; i < ls->nfields; i++)
        if (sl_schema_add(nd->out, ls->fields[i].name, ls->fields[i].type) == SL_EXISTS) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "left field '%s' clashes with a field the join adds; rename it",
                          ls->fields[i].name);
            bad = 1;
        }
    for (int i = 0; !bad && i < rs->nfields; i++) {
        const char *name = rs->fields[i].name;
        if (sl_schema_find(nd->out, name) < 0) {
            if (sl_schema_add(nd->out, name, rs->fields[i].type))
                return SL_NOMEM;
            continue;
        }
        char pref[256];
        snprintf(pref, sizeof pref, "right_%s", name);
        if (strlen(name) + 6 >= sizeof pref ||
            sl_schema_add(nd->out, pref, rs->fields[i].type) == SL_EXISTS) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "right field '%s' of '%s' clashes with a left field, and so does '%s'",
                          name, c->sn->name, pref);
            sl_diag_hint(c->d, "rename a field in a map before the join");
            bad = 1;
        }
    }
    return bad ? SL_SPEC : SL_OK;
}

/* Event time of a node: a source's `timestamp:` and `watermark:`; other
 * nodes carry their input's event-time field through when it survives. */
static int s_build_time(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    if (nd->role == SL_ROLE_SOURCE) {
        const sl_ynode_t *ts = sl_ynode_get(c->sn->body, "timestamp");
        const sl_ynode_t *wm = sl_ynode_get(c->sn->body, "watermark");
        if (!ts) {
            if (wm) {
                sl_diag_error(c->d, wm->line, wm->col,
                              "a watermark needs the event time: add 'timestamp: FIELD'");
                return SL_SPEC;
            }
            return SL_OK;
        }
        const char *f = sl_ynode_str(ts, c->d, "timestamp");
        if (!f)
            return SL_SPEC;
        if (sl_schema_find(nd->out, f) < 0 && strcspn(f, " ()+-*/%|'") < strlen(f)) {
            /* an expression: its value becomes the field event_time, added
             * to the source's records (docs/time.md) */
            nd->ts_expr = s_expr(c, ts, nd->out, "timestamp");
            if (!nd->ts_expr)
                return SL_SPEC;
            sl_type_t et = sl_expr_type(nd->ts_expr);
            if (et != SL_TYPE_TIMESTAMP && et != SL_TYPE_INT64) {
                sl_diag_error(c->d, ts->line, ts->col,
                              "the timestamp expression must be a timestamp or int64 (ms), not %s",
                              sl_type_name(et));
                return SL_SPEC;
            }
            nd->src_out = nd->out;
            nd->out = sl_schema_copy(nd->src_out);
            if (!nd->out)
                return SL_NOMEM;
            if (sl_schema_add(nd->out, "event_time", et) == SL_EXISTS) {
                sl_diag_error(c->d, ts->line, ts->col,
                              "the source has a field event_time already: name it in timestamp");
                return SL_SPEC;
            }
            f = "event_time";
        }
        nd->rowtime = sl_schema_find(nd->out, f);
        if (nd->rowtime < 0) {
            int *idx = NULL;
            s_field_list(c, ts, nd->out, "timestamp", &idx); /* says which, with a hint */
            free(idx);
            return SL_SPEC;
        }
        sl_type_t t = nd->out->fields[nd->rowtime].type;
        if (t != SL_TYPE_TIMESTAMP && t != SL_TYPE_INT64) {
            sl_diag_error(c->d, ts->line, ts->col,
                          "timestamp field '%s' must be a timestamp or int64 (ms), not %s", f,
                          sl_type_name(t));
            nd->rowtime = -1;
            return SL_SPEC;
        }
        nd->watermarks = true;
        nd->wm_interval = 10; /* ms; 0 = after every batch */
        if (!wm)
            return SL_OK;
        if (wm->kind != SL_Y_MAP) {
            sl_diag_error(c->d, wm->line, wm->col,
                          "watermark must be a mapping like {max_out_of_order: 5s, "
                          "idle_timeout: 1m}");
            return SL_SPEC;
        }
        static const char *const wkeys[] = {"max_out_of_order", "idle_timeout", "interval"};
        if (sl_ynode_check_keys(wm, wkeys, 3, c->d, "watermark field"))
            return SL_SPEC;
        int bad = 0;
        s_opt_duration(c, wm, "max_out_of_order", &nd->wm_bound, &bad);
        s_opt_duration(c, wm, "idle_timeout", &nd->wm_idle, &bad);
        s_opt_duration(c, wm, "interval", &nd->wm_interval, &bad);
        return bad ? SL_SPEC : SL_OK;
    }
    if (!nd->ninputs || !nd->out)
        return SL_OK;
    int64_t in_adj = 0;
    int in_rt = s_in_time(c->plan, nd, 0, &in_adj);
    nd->rowtime_adj = in_adj; /* a field copied unchanged keeps its adjustment */
    switch (nd->kind) {
    case SL_OP_FILTER:
    case SL_OP_KEY_BY:
        nd->rowtime = in_rt; /* records pass unchanged */
        break;
    case SL_OP_UNION: /* all inputs agree on the field and its adjustment, or no event time */
        nd->rowtime = in_rt;
        for (int k = 1; k < nd->ninputs; k++) {
            int64_t adj = 0;
            if (s_in_time(c->plan, nd, k, &adj) != in_rt || adj != in_adj)
                nd->rowtime = -1;
        }
        break;
    case SL_OP_MAP:
        for (int i = 0; !nd->udf && in_rt >= 0 && i < nd->nexprs; i++)
            if (sl_expr_field_index(nd->exprs[i]) == in_rt)
                nd->rowtime = i;
        break;
    case SL_OP_FLAT_MAP:
        nd->rowtime = nd->udf || in_rt == nd->split_field ? -1 : in_rt;
        break;
    case SL_OP_WINDOW: /* the exclusive window_end, less 1 ms: the window's last instant */
        nd->rowtime = nd->win.processing ? -1 : nd->nkeys + 1;
        nd->rowtime_adj = nd->win.processing ? 0 : -1;
        break;
    case SL_OP_JOIN: /* window: window_end - 1 ms; interval, enrich: the left time */
        nd->rowtime = nd->join.kind == SL_JOIN_WINDOW ? 1 : nd->join.lfirst + nd->join.ltime;
        nd->rowtime_adj = nd->join.kind == SL_JOIN_WINDOW ? -1 : nd->join.ltime_adj;
        break;
    case SL_OP_PROCESS: /* an output field named and typed as the input's event time */
        nd->rowtime = -1;
        for (int i = 0; in_rt >= 0 && !nd->proc_processing && i < nd->out->nfields; i++)
            if (strcmp(nd->out->fields[i].name, c->in->fields[in_rt].name) == 0 &&
                nd->out->fields[i].type == c->in->fields[in_rt].type)
                nd->rowtime = i;
        break;
    default:
        break;
    }
    return SL_OK;
}

static int s_build_union(s_ctx_t *c)
{
    for (int i = 1; i < c->node->ninputs; i++) {
        const sl_schema_t *o = sl_plan_input_schema(c->plan, c->node, i); /* maybe a side output */
        int same = o && o->nfields == c->in->nfields;
        for (int k = 0; same && k < o->nfields; k++)
            same = strcmp(o->fields[k].name, c->in->fields[k].name) == 0 &&
                   o->fields[k].type == c->in->fields[k].type;
        if (!same) {
            char a[256], b[256];
            sl_schema_format(c->in, a, sizeof a);
            if (o)
                sl_schema_format(o, b, sizeof b);
            const sl_ynode_t *at = c->sn->input_nodes[i];
            sl_diag_error(c->d, at->line, at->col,
                          "union '%s': input '%s' has schema (%s), but '%s' has (%s)", c->sn->name,
                          at->str, o ? b : "?", c->sn->input_nodes[0]->str, a);
            return SL_SPEC;
        }
    }
    c->node->out = sl_schema_copy(c->in);
    return c->node->out ? SL_OK : SL_NOMEM;
}

static int s_build_file_sink(s_ctx_t *c)
{
    const sl_ynode_t *fmt = s_req(c, "format"), *path = s_req(c, "path");
    int bad = !fmt || !path;
    if (fmt && s_format(c, fmt, false, &c->node->sink_format))
        bad = 1;
    if (path) {
        const char *p = sl_ynode_str(path, c->d, "path");
        if (p && *p)
            c->node->sink_path = strdup(p);
        else {
            if (p)
                sl_diag_error(c->d, path->line, path->col, "path of '%s' is empty", c->sn->name);
            bad = 1;
        }
    }
    /* publish: end (one file at the end of input) | checkpoint (a directory
     * of parts, each published when the checkpoint that commits it completes) */
    const sl_ynode_t *pub = sl_ynode_get(c->sn->body, "publish");
    const char *pv = pub ? sl_ynode_str(pub, c->d, "publish") : NULL;
    if (pub && (!pv || (strcmp(pv, "end") != 0 && strcmp(pv, "checkpoint") != 0))) {
        if (pv)
            sl_diag_error(c->d, pub->line, pub->col,
                          "publish of '%s' is '%s'; expected end or checkpoint", c->sn->name, pv);
        bad = 1;
    } else if (pv && strcmp(pv, "checkpoint") == 0) {
        c->node->sink_rolling = true;
        if (c->plan->spec->ckpt_interval_ms <= 0) {
            sl_diag_error(c->d, pub->line, pub->col,
                          "sink '%s': publish: checkpoint publishes at checkpoints; the job needs "
                          "checkpoint: {interval: ...}",
                          c->sn->name);
            bad = 1;
        }
    }
    return bad ? SL_SPEC : SL_OK;
}

/* `discard`: counts and drops. `latency: FIELD` (a timestamp of its input)
 * also measures now - FIELD per record whose FIELD lies between
 * `latency_warmup` and `latency_warmup` + `latency_span` after the first
 * record's (docs/benchmarks.md#latency). */
static int s_build_discard(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    nd->latency_field = -1;
    const sl_ynode_t *f = sl_ynode_get(c->sn->body, "latency");
    int bad = 0;
    if (f) {
        int *idx = NULL;
        if (s_field_list(c, f, c->in, "latency", &idx) != 1) {
            if (idx)
                sl_diag_error(c->d, f->line, f->col, "latency of '%s' names one field",
                              c->sn->name);
            bad = 1;
        } else if (c->in->fields[idx[0]].type != SL_TYPE_TIMESTAMP) {
            sl_diag_error(c->d, f->line, f->col,
                          "latency of '%s': field '%s' has type %s, not timestamp", c->sn->name,
                          c->in->fields[idx[0]].name, sl_type_name(c->in->fields[idx[0]].type));
            bad = 1;
        } else
            nd->latency_field = idx[0];
        free(idx);
    }
    s_opt_duration(c, NULL, "latency_warmup", &nd->latency_warmup_ms, &bad);
    s_opt_duration(c, NULL, "latency_span", &nd->latency_span_ms, &bad);
    return bad ? SL_SPEC : SL_OK;
}

static int s_build_stdout_sink(s_ctx_t *c)
{
    c->node->sink_format = SL_FMT_CSV;
    const sl_ynode_t *fmt = sl_ynode_get(c->sn->body, "format");
    if (fmt && s_format(c, fmt, false, &c->node->sink_format))
        return SL_SPEC;
    return SL_OK;
}

/* A Kafka sink (sluice/kafka.h): kafka_cfg.c checks its fields; the key
 * and partition expressions are compiled here against the input. */
static int s_build_kafka_sink(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    int rc = sl_kafka_sink_cfg_parse(c->sn->body, c->sn->name, c->d, &nd->ksink);
    if (rc)
        return rc;
    sl_kafka_sink_cfg_t *k = nd->ksink;
    int bad = 0;
    const sl_ynode_t *n;
    if ((n = sl_ynode_get(c->sn->body, "key")) && !(k->key = s_expr(c, n, c->in, "key")))
        bad = 1;
    if ((n = sl_ynode_get(c->sn->body, "partition"))) {
        k->partition = s_expr(c, n, c->in, "partition");
        if (!k->partition)
            bad = 1;
        else if (sl_expr_type(k->partition) != SL_TYPE_INT64) {
            sl_diag_error(c->d, n->line, n->col, "partition of '%s' must be an int64, not %s",
                          c->sn->name, sl_type_name(sl_expr_type(k->partition)));
            bad = 1;
        }
    }
    if (k->format == SL_KAFKA_RAW &&
        (c->in->nfields != 1 || c->in->fields[0].type != SL_TYPE_STRING)) {
        sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                      "sink '%s' with format raw needs an input of one string field (its "
                      "bytes are the value)",
                      c->sn->name);
        bad = 1;
    }
    if (k->delivery == SL_KAFKA_EXACTLY_ONCE && c->plan->spec->ckpt_interval_ms <= 0) {
        const sl_ynode_t *dn = sl_ynode_get(c->sn->body, "delivery");
        sl_diag_error(c->d, dn->line, dn->col,
                      "sink '%s': delivery: exactly-once commits at checkpoints; the job needs "
                      "checkpoint: {interval: ...}",
                      c->sn->name);
        bad = 1;
    }
    return bad ? SL_SPEC : SL_OK;
}

/* `process`: a keyed process function of the job's plugin, with state and
 * timers (docs/udf.md#process-functions). Keys: `key:`, else an upstream
 * key_by's, else one key for all. Output = the function's declared outputs. */
static int s_build_process(s_ctx_t *c)
{
    sl_plan_node_t *nd = c->node;
    nd->proc_time_field = -1;
    int bad = s_group_keys(c) ? 1 : 0;
    const sl_ynode_t *tn = sl_ynode_get(c->sn->body, "time");
    if (tn) {
        const char *t = sl_ynode_str(tn, c->d, "time");
        if (!t)
            bad = 1;
        else if (strcmp(t, "processing") == 0)
            nd->proc_processing = true;
        else if (strcmp(t, "event") != 0) {
            sl_diag_error(c->d, tn->line, tn->col, "time must be 'event' or 'processing', not '%s'",
                          t);
            bad = 1;
        }
    }
    if (s_opt_duration(c, NULL, "state_ttl", &nd->proc_ttl_ms, &bad) && nd->proc_ttl_ms < 1) {
        const sl_ynode_t *n = sl_ynode_get(c->sn->body, "state_ttl");
        sl_diag_error(c->d, n->line, n->col, "state_ttl of process '%s' must be at least 1ms",
                      c->sn->name);
        sl_diag_hint(c->d, "leave state_ttl out for state that never expires");
        bad = 1;
    }
    const sl_plan_node_t *up = &c->plan->nodes[nd->inputs[0]];
    if (!nd->proc_processing) {
        nd->proc_time_field = s_in_time(c->plan, nd, 0, &nd->proc_time_adj);
        if (nd->proc_time_field < 0) {
            sl_diag_error(c->d, c->sn->body->line, c->sn->body->col,
                          "process '%s' is on event time, but its input '%s' has no event time",
                          c->sn->name, up->name);
            sl_diag_hint(c->d, "name the time field on the source (timestamp: FIELD, "
                               "watermark: {max_out_of_order: 5s}), or set time: processing");
            bad = 1;
        }
    }
    const sl_ynode_t *fn = s_req(c, "function");
    if (!fn)
        return SL_SPEC;
    int rc = s_build_udf(c, fn, SL_UDF_PROCESS);
    if (rc)
        return rc;
    return bad ? SL_SPEC : SL_OK;
}

static int s_build_node(s_ctx_t *c)
{
    switch (c->node->kind) {
    case SL_OP_FILE_SOURCE:
        return s_build_file_source(c);
    case SL_OP_GENERATOR_SOURCE:
        return s_build_generator(c);
    case SL_OP_NEXMARK_SOURCE:
        return s_build_nexmark(c);
    case SL_OP_YSB_SOURCE:
        return s_build_ysb(c);
    case SL_OP_KAFKA_SOURCE:
        return s_build_kafka(c);
    case SL_OP_FILTER:
        return s_build_filter(c);
    case SL_OP_MAP:
        return s_build_map(c);
    case SL_OP_FLAT_MAP:
        return s_build_flat_map(c);
    case SL_OP_KEY_BY:
        return s_build_key_by(c);
    case SL_OP_AGGREGATE:
        return s_build_aggregate(c);
    case SL_OP_WINDOW:
        return s_build_window(c);
    case SL_OP_JOIN:
        return s_build_join(c);
    case SL_OP_PROCESS:
        return s_build_process(c);
    case SL_OP_UNION:
        return s_build_union(c);
    case SL_OP_FILE_SINK:
        return s_build_file_sink(c);
    case SL_OP_STDOUT_SINK:
        return s_build_stdout_sink(c);
    case SL_OP_DISCARD_SINK:
        return s_build_discard(c); /* runs at the job's parallelism, chained */
    case SL_OP_KAFKA_SINK:
        return s_build_kafka_sink(c);
    }
    return SL_INVAL;
}

/* ---- the whole plan --------------------------------------------------------- */

static int s_check_type(const sl_spec_node_t *sn, sl_diag_t *d, const s_type_t **out)
{
    const s_type_t *t = s_find_type(sn->role, sn->type);
    const sl_ynode_t *at = sn->type_node ? sn->type_node : sn->body;
    if (!t) {
        const char *names[S_NTYPES];
        int n = 0;
        for (int i = 0; i < S_NTYPES; i++)
            if (s_types[i].role == sn->role)
                names[n++] = s_types[i].type;
        sl_diag_error(d, at->line, at->col, "unknown %s type '%s'", s_role_names[sn->role],
                      sn->type);
        const char *near = sl_closest(sn->type, names, n);
        if (near)
            sl_diag_hint(d, "did you mean '%s'?", near);
        else {
            char list[256] = "";
            for (int i = 0; i < n; i++) {
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, names[i], sizeof list - strlen(list) - 1);
            }
            sl_diag_hint(d, "%s types are %s", s_role_names[sn->role], list);
        }
        return SL_SPEC;
    }
    *out = t;
    /* Unknown keys: common ones plus the type's own. */
    const char *allowed[32];
    int n = 0;
    for (int i = 0; i < S_NCOMMON; i++)
        allowed[n++] = s_common_keys[i];
    for (int i = 0; i < t->nkeys && n < 32; i++)
        allowed[n++] = t->keys[i];
    for (int i = 0; sn->role == SL_ROLE_SOURCE && i < S_NSOURCE && n < 32; i++)
        allowed[n++] = s_source_keys[i];
    char what[64];
    snprintf(what, sizeof what, "%s field", sn->type);
    int bad = sl_ynode_check_keys(sn->body, allowed, n, d, what) ? 1 : 0;
    if (sn->role != SL_ROLE_SOURCE &&
        (sn->ninputs < t->min_inputs || sn->ninputs > t->max_inputs)) {
        if (t->min_inputs == t->max_inputs)
            sl_diag_error(d, sn->body->line, sn->body->col, "'%s' (%s) takes %d input, not %d",
                          sn->name, sn->type, t->min_inputs, sn->ninputs);
        else
            sl_diag_error(d, sn->body->line, sn->body->col,
                          "'%s' (%s) takes at least %d inputs, not %d", sn->name, sn->type,
                          t->min_inputs, sn->ninputs);
        bad = 1;
    }
    return bad ? SL_SPEC : SL_OK;
}

static void s_assign_partitioning(sl_plan_t *p)
{
    for (int i = 0; i < p->nnodes; i++) {
        sl_plan_node_t *nd = &p->nodes[i];
        for (int k = 0; k < nd->ninputs; k++) {
            const sl_plan_node_t *up = &p->nodes[nd->inputs[k]];
            const int *keys = NULL;
            int nkeys = 0;
            bool keyed = nd->kind == SL_OP_AGGREGATE || nd->kind == SL_OP_WINDOW ||
                         nd->kind == SL_OP_JOIN || nd->kind == SL_OP_PROCESS;
            if (nd->kind == SL_OP_JOIN) { /* each side by its own key fields */
                keys = k == 0 ? nd->join.lkeys : nd->join.rkeys;
                nkeys = nd->join.nkeys;
            } else if (keyed) {
                keys = nd->keys;
                nkeys = nd->nkeys;
            } else if (up->kind == SL_OP_KEY_BY && nd->input_ports[k] == 0) {
                keys = up->keys;
                nkeys = up->nkeys;
            }
            if (keyed || (up->kind == SL_OP_KEY_BY && nd->input_ports[k] == 0)) {
                nd->part[k] = SL_PART_HASH;
                nd->edge_nkeys[k] = nkeys;
                if (nkeys) {
                    nd->edge_keys[k] = malloc((size_t)nkeys * sizeof(int));
                    if (nd->edge_keys[k])
                        memcpy(nd->edge_keys[k], keys, (size_t)nkeys * sizeof(int));
                    else
                        nd->edge_nkeys[k] = 0;
                }
            } else if (up->parallelism == nd->parallelism) {
                nd->part[k] = SL_PART_FORWARD;
            } else {
                nd->part[k] = SL_PART_REBALANCE;
            }
        }
    }
}

/* Whether input edge k of nd may be chained: it carries the upstream's
 * output (not its side output) and is forward, or hash with both ends at
 * parallelism 1 (every key group belongs to the one subtask, so the
 * exchange would send every row to it: nd is called directly instead). A
 * keyed operator restores by its name whatever chain it ran in, so a
 * savepoint taken with such a chained edge resumes at another parallelism
 * (and the other way). */
static bool s_edge_chainable(const sl_plan_t *p, const sl_plan_node_t *nd, int k)
{
    const sl_plan_node_t *up = &p->nodes[nd->inputs[k]];
    if (nd->input_ports[k] != 0)
        return false;
    return nd->part[k] == SL_PART_FORWARD ||
           (nd->part[k] == SL_PART_HASH && up->parallelism == 1 && nd->parallelism == 1);
}

/* The chain nd joins, or -1 when it heads one: every input edge is
 * chainable and every input runs in the same chain. A chain may branch (an
 * operator feeding several chained ones) and merge again (a join whose two
 * inputs are in the chain); it keeps one head. */
static int s_chain_of(const sl_plan_t *p, const sl_plan_node_t *nd)
{
    int chain = -1;
    for (int k = 0; k < nd->ninputs; k++) {
        int c = p->nodes[nd->inputs[k]].chain;
        if (!s_edge_chainable(p, nd, k) || (k > 0 && c != chain))
            return -1;
        chain = c;
    }
    return chain;
}

/* Fuses into each nexmark source the filter that is its only consumer,
 * when the filter runs in the source's chain on the source's own output
 * (not a side output, not a plugin function) and its condition reads only
 * the columns the source generates (not the event_time column the task adds
 * for a `timestamp:` expression). The source evaluates the condition on the
 * event's values before the row is encoded, so a row that fails it is never
 * built; it still counts the event in its position. */
static int s_fuse_filters(sl_plan_t *p)
{
    for (int i = 0; i < p->nnodes; i++) {
        sl_plan_node_t *src = &p->nodes[i];
        if (src->kind != SL_OP_NEXMARK_SOURCE || src->nconsumers != 1 || src->side_out || !src->out)
            continue;
        sl_plan_node_t *f = &p->nodes[src->consumers[0]];
        if (f->kind != SL_OP_FILTER || f->udf || !f->where || f->ninputs != 1 ||
            f->input_ports[0] != 0 || f->part[0] != SL_PART_FORWARD || f->chain != src->chain ||
            f->parallelism != src->parallelism)
            continue;
        int n = src->out->nfields, nsrc = sl_plan_source_schema(src)->nfields;
        bool *used = calloc((size_t)n, sizeof *used);
        if (!used)
            return SL_NOMEM;
        sl_expr_fields(f->where, used, n);
        bool own = true;
        for (int k = nsrc; k < n; k++)
            own = own && !used[k];
        free(used);
        if (own) {
            src->fused_filter = f->id;
            f->fused = true;
        }
    }
    return SL_OK;
}

/* Fuses into each nexmark source the map that is the only consumer of the
 * source or of the filter fused into it, when the map runs in the source's
 * chain on that operator's output (forward edge, same parallelism) and is
 * not a plugin function. The source then builds each row in the map's
 * schema from the event's values (the map's expressions evaluated on
 * them), so the wide row is never encoded nor decoded; it still counts
 * every event in its position. Not when the source has a `timestamp:`
 * expression (the task adds event_time to the source's own records, and
 * the map may read it) or takes its event time from another column than
 * date_time: the source then keeps its watermark from each event's
 * date_time, as the task does from the rows of the source without the
 * fusion (the map's rows may not hold date_time, or hold it elsewhere). */
static void s_fuse_maps(sl_plan_t *p)
{
    for (int i = 0; i < p->nnodes; i++) {
        sl_plan_node_t *src = &p->nodes[i];
        if (src->kind != SL_OP_NEXMARK_SOURCE || src->side_out || !src->out || src->ts_expr ||
            (src->watermarks && src->rowtime != sl_schema_find(src->out, "date_time")))
            continue;
        const sl_plan_node_t *up = src->fused_filter >= 0 ? &p->nodes[src->fused_filter] : src;
        if (up->nconsumers != 1 || up->side_out)
            continue;
        sl_plan_node_t *m = &p->nodes[up->consumers[0]];
        if (m->kind != SL_OP_MAP || m->udf || !m->out || m->ninputs != 1 ||
            m->input_ports[0] != 0 || m->part[0] != SL_PART_FORWARD || m->chain != src->chain ||
            m->parallelism != src->parallelism)
            continue;
        src->fused_map = m->id;
        m->fused = true;
    }
}

static int s_build_chains(sl_plan_t *p, const sl_spec_t *spec)
{
    p->chains = calloc((size_t)p->nnodes, sizeof *p->chains);
    if (!p->chains)
        return SL_NOMEM;
    for (int t = 0; t < spec->nnodes; t++) {
        sl_plan_node_t *nd = &p->nodes[spec->topo[t]];
        int c = s_chain_of(p, nd);
        if (c >= 0) { /* chain order stays topological: inputs come first */
            sl_plan_chain_t *ch = &p->chains[c];
            int *nodes = realloc(ch->nodes, (size_t)(ch->nnodes + 1) * sizeof(int));
            if (!nodes)
                return SL_NOMEM;
            ch->nodes = nodes;
            ch->nodes[ch->nnodes++] = nd->id;
            nd->chain = c;
        } else {
            sl_plan_chain_t *ch = &p->chains[p->nchains];
            ch->id = p->nchains;
            ch->parallelism = nd->parallelism;
            ch->nodes = malloc(sizeof(int));
            if (!ch->nodes)
                return SL_NOMEM;
            ch->nodes[0] = nd->id;
            ch->nnodes = 1;
            nd->chain = p->nchains++;
        }
    }
    return SL_OK;
}

int sl_plan_build(const sl_spec_t *spec, int parallelism, const sl_plugin_t *plugin, sl_diag_t *d,
                  sl_plan_t **out)
{
    *out = NULL;
    sl_plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return SL_NOMEM;
    p->spec = spec;
    p->name = spec->name;
    p->max_parallelism = spec->max_parallelism;
    p->nnodes = spec->nnodes;
    p->nodes = calloc((size_t)spec->nnodes, sizeof *p->nodes);
    if (!p->nodes) {
        free(p);
        return SL_NOMEM;
    }
    int job_par = parallelism > 0 ? parallelism : spec->parallelism;
    int rc = SL_OK;
    if (job_par > p->max_parallelism) {
        /* Key groups cannot be split further: say so rather than cap. */
        sl_diag_error(d, spec->root ? spec->root->line : 1, spec->root ? spec->root->col : 1,
                      "parallelism %d exceeds max_parallelism %d", job_par, p->max_parallelism);
        sl_diag_hint(d, "raise max_parallelism in the spec");
        rc = SL_SPEC;
    }
    /* Static part first: identity, type, inputs, parallelism, consumers. */
    for (int i = 0; i < spec->nnodes; i++) {
        const sl_spec_node_t *sn = &spec->nodes[i];
        sl_plan_node_t *nd = &p->nodes[i];
        nd->id = i;
        nd->name = sn->name;
        nd->type = sn->type;
        nd->role = sn->role;
        nd->ninputs = sn->ninputs;
        nd->inputs = calloc((size_t)(sn->ninputs ? sn->ninputs : 1), sizeof(int));
        nd->input_ports = calloc((size_t)(sn->ninputs ? sn->ninputs : 1), sizeof(int));
        nd->rowtime = -1;
        nd->win.time_field = -1;
        nd->fused_filter = -1;
        nd->fused_map = -1;
        nd->part = calloc((size_t)(sn->ninputs ? sn->ninputs : 1), sizeof(sl_part_t));
        nd->edge_keys = calloc((size_t)(sn->ninputs ? sn->ninputs : 1), sizeof(int *));
        nd->edge_nkeys = calloc((size_t)(sn->ninputs ? sn->ninputs : 1), sizeof(int));
        if (!nd->inputs || !nd->input_ports || !nd->part || !nd->edge_keys || !nd->edge_nkeys) {
            rc = SL_NOMEM;
            goto done;
        }
        if (sn->ninputs) {
            memcpy(nd->inputs, sn->inputs, (size_t)sn->ninputs * sizeof(int));
            memcpy(nd->input_ports, sn->input_ports, (size_t)sn->ninputs * sizeof(int));
        }
        const s_type_t *t = NULL;
        if (s_check_type(sn, d, &t) != SL_OK) {
            rc = SL_SPEC;
            nd->kind = (sl_opkind_t)-1;
            continue;
        }
        nd->kind = t->kind;
        /* (a file sink publishing per checkpoint writes one file per subtask) */
        const sl_ynode_t *pub = sl_ynode_get(sn->body, "publish");
        bool rolling = nd->kind == SL_OP_FILE_SINK && pub && pub->kind == SL_Y_SCALAR &&
                       strcmp(pub->str, "checkpoint") == 0;
        bool sink1 = (nd->kind == SL_OP_FILE_SINK && !rolling) || nd->kind == SL_OP_STDOUT_SINK;
        nd->parallelism = sn->parallelism ? sn->parallelism : sink1 ? 1 : job_par;
        if (sink1 && nd->parallelism != 1) {
            sl_diag_error(d, sn->body->line, sn->body->col,
                          "sink '%s' writes one %s; its parallelism must be 1", sn->name,
                          nd->kind == SL_OP_FILE_SINK ? "file" : "stream");
            rc = SL_SPEC;
        }
        if (sn->parallelism && nd->parallelism > p->max_parallelism) {
            sl_diag_error(d, sn->body->line, sn->body->col,
                          "parallelism %d of '%s' exceeds max_parallelism %d", nd->parallelism,
                          sn->name, p->max_parallelism);
            rc = SL_SPEC;
        }
    }
    for (int i = 0; i < spec->nnodes; i++)
        for (int k = 0; k < p->nodes[i].ninputs; k++)
            p->nodes[p->nodes[i].inputs[k]].nconsumers++;
    for (int i = 0; i < spec->nnodes; i++) {
        sl_plan_node_t *nd = &p->nodes[i];
        nd->consumers = calloc((size_t)(nd->nconsumers ? nd->nconsumers : 1), sizeof(int));
        if (!nd->consumers) {
            rc = SL_NOMEM;
            goto done;
        }
        nd->nconsumers = 0;
    }
    for (int i = 0; i < spec->nnodes; i++)
        for (int k = 0; k < p->nodes[i].ninputs; k++) {
            sl_plan_node_t *up = &p->nodes[p->nodes[i].inputs[k]];
            up->consumers[up->nconsumers++] = i;
        }
    /* Typed part, in topological order so inputs have schemas. */
    for (int t = 0; t < spec->nnodes; t++) {
        int i = spec->topo[t];
        sl_plan_node_t *nd = &p->nodes[i];
        if ((int)nd->kind < 0)
            continue;
        s_ctx_t c = {.plugin = plugin, .plan = p, .node = nd, .sn = &spec->nodes[i], .d = d};
        bool inputs_ok = true;
        for (int k = 0; k < nd->ninputs; k++)
            if (!sl_plan_input_schema(p, nd, k))
                inputs_ok = false;
        if (!inputs_ok) {
            rc = SL_SPEC; /* an input failed; its error is already recorded */
            continue;
        }
        if (nd->ninputs)
            c.in = sl_plan_input_schema(p, nd, 0);
        int r = s_build_node(&c);
        if (r == SL_OK)
            r = s_build_time(&c);
        if (r == SL_NOMEM) {
            rc = r;
            goto done;
        }
        if (r != SL_OK) {
            rc = SL_SPEC;
            sl_schema_destroy(&nd->out);
        }
    }
    if (rc == SL_OK) {
        s_assign_partitioning(p);
        rc = s_build_chains(p, spec);
        if (rc == SL_OK)
            rc = s_fuse_filters(p);
        if (rc == SL_OK)
            s_fuse_maps(p);
    }
done:
    if (rc != SL_OK) {
        sl_plan_destroy(&p);
        return rc;
    }
    *out = p;
    return SL_OK;
}

void sl_plan_destroy(sl_plan_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_plan_t *p = *pp;
    for (int i = 0; i < p->nnodes; i++) {
        sl_plan_node_t *nd = &p->nodes[i];
        sl_schema_destroy(&nd->out);
        sl_schema_destroy(&nd->side_out);
        sl_schema_destroy(&nd->src_out);
        sl_expr_destroy(&nd->ts_expr);
        sl_expr_destroy(&nd->win.top_by);
        free(nd->join.lkeys);
        free(nd->join.rkeys);
        free(nd->inputs);
        free(nd->input_ports);
        free(nd->part);
        if (nd->edge_keys)
            for (int k = 0; k < nd->ninputs; k++)
                free(nd->edge_keys[k]);
        free(nd->edge_keys);
        free(nd->edge_nkeys);
        free(nd->consumers);
        free(nd->src.path);
        free(nd->gen_pause_until);
        sl_schema_destroy(&nd->src.schema);
        sl_expr_destroy(&nd->where);
        for (int k = 0; k < nd->nexprs; k++)
            sl_expr_destroy(&nd->exprs[k]);
        free(nd->exprs);
        free(nd->separator);
        free(nd->keys);
        free(nd->aggs);
        free(nd->sink_path);
        free(nd->udf_in);
        sl_kafka_cfg_destroy(&nd->kafka);
        sl_kafka_sink_cfg_destroy(&nd->ksink);
    }
    free(p->nodes);
    if (p->chains)
        for (int i = 0; i < p->nchains; i++)
            free(p->chains[i].nodes);
    free(p->chains);
    free(p);
    *pp = NULL;
}

int sl_plan_slots(const sl_plan_t *p)
{
    int m = 0;
    for (int i = 0; i < p->nchains; i++)
        if (p->chains[i].parallelism > m)
            m = p->chains[i].parallelism;
    return m;
}

const char *sl_part_name(sl_part_t part)
{
    switch (part) {
    case SL_PART_FORWARD:
        return "forward";
    case SL_PART_HASH:
        return "hash";
    case SL_PART_REBALANCE:
        return "rebalance";
    }
    return "?";
}

const sl_schema_t *sl_plan_input_schema(const sl_plan_t *p, const sl_plan_node_t *nd, int k)
{
    const sl_plan_node_t *up = &p->nodes[nd->inputs[k]];
    return nd->input_ports && nd->input_ports[k] ? up->side_out : up->out;
}

int sl_key_group(uint64_t hash, int max_parallelism)
{
    return (int)(hash % (uint64_t)max_parallelism);
}

int sl_key_group_owner(int key_group, int max_parallelism, int parallelism)
{
    return (int)((int64_t)key_group * parallelism / max_parallelism);
}

static void s_edge_label(const sl_plan_t *p, const sl_plan_node_t *nd, int k, char *buf, size_t cap)
{
    const sl_schema_t *up = sl_plan_input_schema(p, nd, k);
    int off = snprintf(buf, cap, "%s", sl_part_name(nd->part[k]));
    if (nd->part[k] == SL_PART_HASH && off > 0 && (size_t)off < cap) {
        off += snprintf(buf + off, cap - (size_t)off, "(");
        for (int j = 0; j < nd->edge_nkeys[k] && (size_t)off < cap; j++)
            off += snprintf(buf + off, cap - (size_t)off, "%s%s", j ? ", " : "",
                            up->fields[nd->edge_keys[k][j]].name);
        if ((size_t)off < cap)
            snprintf(buf + off, cap - (size_t)off, ")");
    }
}

void sl_plan_print(const sl_plan_t *p, FILE *out)
{
    fprintf(out, "job %s: %d task%s, max_parallelism %d, slots needed %d\n", p->name, p->nchains,
            p->nchains == 1 ? "" : "s", p->max_parallelism, sl_plan_slots(p));
    for (int c = 0; c < p->nchains; c++) {
        const sl_plan_chain_t *ch = &p->chains[c];
        fprintf(out, "\ntask %d  parallelism %d\n", c, ch->parallelism);
        for (int k = 0; k < ch->nnodes; k++) {
            const sl_plan_node_t *nd = &p->nodes[ch->nodes[k]];
            char schema[512] = "";
            if (nd->out)
                sl_schema_format(nd->out, schema, sizeof schema);
            fprintf(out, "  %s %-16s %-10s", k ? "->" : "  ", nd->name, nd->type);
            if (nd->out)
                fprintf(out, " (%s)", schema);
            fputc('\n', out);
            /* chained edges: the one from the line above is implied when
             * forward; a branch or a merge names its upstream */
            for (int e = 0; k > 0 && e < nd->ninputs; e++) {
                bool prev = nd->ninputs == 1 && nd->inputs[0] == ch->nodes[k - 1];
                if (prev && nd->part[0] != SL_PART_HASH)
                    continue;
                char label[256];
                s_edge_label(p, nd, e, label, sizeof label);
                fprintf(out, "       <- %s%s%s, chained%s\n", label, prev ? "" : " from ",
                        prev ? "" : p->nodes[nd->inputs[e]].name,
                        nd->part[e] == SL_PART_HASH ? " (parallelism 1)" : "");
            }
            if (nd->fused_filter >= 0)
                fprintf(out, "       applies filter %s to each event (fused)\n",
                        p->nodes[nd->fused_filter].name);
            if (nd->fused_map >= 0)
                fprintf(out, "       builds the rows of map %s from each event (fused)\n",
                        p->nodes[nd->fused_map].name);
            if (nd->fused) {
                const sl_plan_node_t *src = &p->nodes[nd->inputs[0]];
                if (src->kind != SL_OP_NEXMARK_SOURCE) /* a map after a fused filter */
                    src = &p->nodes[src->inputs[0]];
                fprintf(out, "       fused into source %s: forwards its rows\n", src->name);
            }
            if (k == 0)
                for (int e = 0; e < nd->ninputs; e++) {
                    char label[256];
                    s_edge_label(p, nd, e, label, sizeof label);
                    fprintf(out, "       <- %s from %s (task %d)\n", label,
                            p->nodes[nd->inputs[e]].name, p->nodes[nd->inputs[e]].chain);
                }
        }
    }
}

void sl_plan_print_dot(const sl_plan_t *p, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
            p->name);
    for (int c = 0; c < p->nchains; c++) {
        const sl_plan_chain_t *ch = &p->chains[c];
        fprintf(out, "  subgraph cluster_%d {\n    label=\"task %d (x%d)\";\n", c, c,
                ch->parallelism);
        for (int k = 0; k < ch->nnodes; k++) {
            const sl_plan_node_t *nd = &p->nodes[ch->nodes[k]];
            fprintf(out, "    n%d [label=\"%s\\n%s\"];\n", nd->id, nd->name, nd->type);
        }
        fprintf(out, "  }\n");
    }
    for (int i = 0; i < p->nnodes; i++) {
        const sl_plan_node_t *nd = &p->nodes[i];
        for (int k = 0; k < nd->ninputs; k++) {
            char label[256];
            s_edge_label(p, nd, k, label, sizeof label);
            bool chained = nd->chain == p->nodes[nd->inputs[k]].chain;
            fprintf(out, "  n%d -> n%d [label=\"%s\"%s];\n", nd->inputs[k], i,
                    chained ? "chained" : label, chained ? ", style=dashed" : "");
        }
    }
    fprintf(out, "}\n");
}

int sl_plan_load(const char *file, const char *text, size_t len, const sl_params_t *params,
                 int parallelism, sl_diag_t *d, sl_spec_t **spec, sl_plan_t **plan)
{
    return sl_plan_load_with(file, text, len, params, parallelism, NULL, d, spec, plan);
}

int sl_plan_load_with(const char *file, const char *text, size_t len, const sl_params_t *params,
                      int parallelism, const sl_plugin_t *plugin, sl_diag_t *d, sl_spec_t **spec,
                      sl_plan_t **plan)
{
    *spec = NULL;
    *plan = NULL;
    int rc = text ? sl_spec_load(file, text, len, params, d, spec)
                  : sl_spec_load_file(file, params, d, spec);
    if (rc != SL_OK)
        return rc;
    rc = sl_plan_build(*spec, parallelism, plugin, d, plan);
    if (rc != SL_OK)
        sl_spec_destroy(spec);
    return rc;
}
