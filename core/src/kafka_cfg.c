/* kafka_cfg.c — the `kafka` source's fields as the planner checks them, and
 * the decoding of a record value (JSON object, CSV line, raw bytes) into a
 * row. No librdkafka here: see sluice/kafka.h. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/kafka.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/textfmt.h"

#define S_JSON_DEPTH 64 /* deepest nesting skipped inside a value */

/* Settings the source controls itself; `properties:` may not set them. */
static const char *const s_denied[] = {
    "bootstrap.servers",    "metadata.broker.list",    "group.id",
    "auto.offset.reset",    "enable.auto.commit",      "enable.auto.offset.store",
    "enable.partition.eof", "allow.auto.create.topics"};
#define S_NDENIED ((int)(sizeof s_denied / sizeof *s_denied))

static int s_err(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_err(char *err, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return code;
}

/* Non-empty string field: a copy in *out, or an error recorded. */
static int s_str(const sl_ynode_t *n, const char *what, const char *name, sl_diag_t *d, char **out)
{
    const char *v = sl_ynode_str(n, d, what);
    if (!v)
        return SL_SPEC;
    if (!*v) {
        sl_diag_error(d, n->line, n->col, "%s of '%s' is empty", what, name);
        return SL_SPEC;
    }
    *out = strdup(v);
    return *out ? SL_OK : SL_NOMEM;
}

/* ---- source only: start: {timestamp: }, topics:, topic_pattern: ----------- */

/* start: / stop: {timestamp: T}: epoch milliseconds or an ISO-8601 time,
 * into *out. */
static int s_parse_ts(const sl_ynode_t *n, const char *name, sl_diag_t *d, int64_t *out)
{
    sl_value_t v;
    char why[160];
    if (n->kind != SL_Y_SCALAR || !*n->str ||
        sl_value_from_text(SL_TYPE_TIMESTAMP, n->str, strlen(n->str), NULL, &v, why, sizeof why) !=
            SL_OK ||
        v.is_null || v.u.i < 0) {
        sl_diag_error(d, n->line, n->col,
                      "timestamp of '%s' must be epoch milliseconds or an ISO-8601 time like "
                      "2026-03-14T09:26:53Z%s%s",
                      name, n->kind == SL_Y_SCALAR ? ", not " : "",
                      n->kind == SL_Y_SCALAR ? n->str : "");
        return SL_SPEC;
    }
    *out = v.u.i;
    return SL_OK;
}

/* start: / stop: {offsets: {PARTITION: OFFSET, ...}} (node offs) into *out
 * (*nout entries, partitions distinct). */
static int s_parse_offsets(const sl_ynode_t *offs, const char *name, sl_diag_t *d,
                           sl_kafka_offset_t **out, int *nout)
{
    if (offs->kind != SL_Y_MAP || offs->n == 0) {
        sl_diag_error(d, offs->line, offs->col,
                      "offsets of '%s' must map partitions to offsets, e.g. {0: 100, 3: 7}", name);
        return SL_SPEC;
    }
    *out = calloc((size_t)offs->n, sizeof **out);
    if (!*out)
        return SL_NOMEM;
    int bad = 0;
    for (int i = 0; i < offs->n; i++) {
        long long p, o;
        if (sl_ynode_int(offs->keys[i], 0, INT32_MAX, d, "partition", &p) ||
            sl_ynode_int(offs->items[i], 0, INT64_MAX, d, "offset", &o)) {
            bad = 1;
            continue;
        }
        for (int k = 0; k < *nout; k++)
            if ((*out)[k].partition == p) {
                sl_diag_error(d, offs->keys[i]->line, offs->keys[i]->col,
                              "partition %lld named twice in offsets of '%s'", p, name);
                bad = 1;
            }
        (*out)[*nout].partition = (int32_t)p;
        (*out)[*nout].offset = (int64_t)o;
        (*nout)++;
    }
    return bad ? SL_SPEC : SL_OK;
}

/* stop: {offsets: {...}} or {timestamp: T}: a bounded read's end. */
static int s_parse_stop(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    const sl_ynode_t *ts = sl_ynode_get(n, "timestamp"), *offs = sl_ynode_get(n, "offsets");
    if (n->kind != SL_Y_MAP || n->n != 1 || (!ts && !offs)) {
        sl_diag_error(d, n->line, n->col,
                      "stop of '%s' must be offsets: {PARTITION: OFFSET, ...} or timestamp: TIME",
                      name);
        return SL_SPEC;
    }
    if (ts) {
        c->stop = SL_KAFKA_STOP_TIMESTAMP;
        return s_parse_ts(ts, name, d, &c->stop_ts);
    }
    c->stop = SL_KAFKA_STOP_OFFSETS;
    return s_parse_offsets(offs, name, d, &c->stop_offsets, &c->nstop);
}

/* on_error: fail | skip | {dead_letter: TOPIC}. */
static int s_parse_on_error(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    if (n->kind == SL_Y_SCALAR && strcmp(n->str, "skip") == 0) {
        c->skip_errors = true;
        return SL_OK;
    }
    if (n->kind == SL_Y_SCALAR && strcmp(n->str, "fail") == 0)
        return SL_OK;
    const sl_ynode_t *dl = sl_ynode_get(n, "dead_letter");
    if (n->kind == SL_Y_MAP && n->n == 1 && dl)
        return s_str(dl, "dead_letter", name, d, &c->dead_letter);
    sl_diag_error(d, n->line, n->col,
                  "on_error of '%s' must be 'fail', 'skip' or {dead_letter: TOPIC}%s%s%s", name,
                  n->kind == SL_Y_SCALAR ? ", not '" : "", n->kind == SL_Y_SCALAR ? n->str : "",
                  n->kind == SL_Y_SCALAR ? "'" : "");
    return SL_SPEC;
}

/* topics: [a, b]: distinct non-empty names. */
static int s_parse_topics(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    if (n->kind != SL_Y_SEQ || n->n == 0) {
        sl_diag_error(d, n->line, n->col,
                      "topics of '%s' must be a list of topic names, e.g. [a, b]", name);
        return SL_SPEC;
    }
    c->topics = calloc((size_t)n->n, sizeof *c->topics);
    if (!c->topics)
        return SL_NOMEM;
    int bad = 0;
    for (int i = 0; i < n->n; i++) {
        char *t = NULL;
        int rc = s_str(n->items[i], "topic", name, d, &t);
        if (rc == SL_NOMEM)
            return rc;
        if (rc) {
            bad = 1;
            continue;
        }
        for (int k = 0; k < c->ntopics && t; k++)
            if (strcmp(c->topics[k], t) == 0) {
                sl_diag_error(d, n->items[i]->line, n->items[i]->col,
                              "topic '%s' named twice in topics of '%s'", t, name);
                bad = 1;
                free(t);
                t = NULL;
            }
        if (t)
            c->topics[c->ntopics++] = t;
    }
    return bad ? SL_SPEC : SL_OK;
}

/* topic_pattern: an extended regular expression, checked here. */
static int s_parse_pattern(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    int rc = s_str(n, "topic_pattern", name, d, &c->topic_pattern);
    if (rc)
        return rc;
    regex_t re;
    int e = sl_kafka_pattern_compile(c->topic_pattern, &re);
    if (e) {
        char why[160];
        regerror(e, &re, why, sizeof why);
        sl_diag_error(d, n->line, n->col, "topic_pattern of '%s' is not a regular expression: %s",
                      name, why);
        return SL_SPEC;
    }
    regfree(&re);
    return SL_OK;
}

int sl_kafka_pattern_compile(const char *pattern, void *re)
{
    size_t n = strlen(pattern);
    char *full = malloc(n + 5);
    if (!full)
        return REG_ESPACE;
    snprintf(full, n + 5, "^(%s)$", pattern); /* a whole name matches, as in Kafka */
    int e = regcomp(re, full, REG_EXTENDED | REG_NOSUB);
    free(full);
    return e;
}

static int s_parse_start(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    if (n->kind == SL_Y_SCALAR) {
        if (strcmp(n->str, "earliest") == 0)
            c->start = SL_KAFKA_START_EARLIEST;
        else if (strcmp(n->str, "latest") == 0)
            c->start = SL_KAFKA_START_LATEST;
        else if (strcmp(n->str, "committed") == 0)
            c->start = SL_KAFKA_START_COMMITTED;
        else {
            sl_diag_error(d, n->line, n->col,
                          "start of '%s' must be earliest, latest, committed, offsets: "
                          "{PARTITION: OFFSET, ...} or timestamp: TIME, not '%s'",
                          name, n->str);
            return SL_SPEC;
        }
        return SL_OK;
    }
    const sl_ynode_t *ts = sl_ynode_get(n, "timestamp");
    if (n->kind == SL_Y_MAP && n->n == 1 && ts) {
        c->start = SL_KAFKA_START_TIMESTAMP;
        return s_parse_ts(ts, name, d, &c->start_ts);
    }
    const sl_ynode_t *offs = sl_ynode_get(n, "offsets");
    if (n->kind != SL_Y_MAP || n->n != 1 || !offs) {
        sl_diag_error(d, n->line, n->col,
                      "start of '%s' must be earliest, latest, committed, offsets: {PARTITION: "
                      "OFFSET, ...} or timestamp: TIME",
                      name);
        return SL_SPEC;
    }
    if (offs->kind == SL_Y_MAP && offs->n > 0)
        c->start = SL_KAFKA_START_OFFSETS;
    return s_parse_offsets(offs, name, d, &c->offsets, &c->noffsets);
}

/* Frees what s_props made. */
static void s_props_free(char **names, char **values, int n)
{
    for (int i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
}

/* `properties:`, librdkafka settings passed through, into names/values
 * (*n of them); settings in denied (ndenied) and test.mock.* are refused,
 * naming who sets them (`who`: "source" or "sink"). */
static int s_props(const sl_ynode_t *n, const char *name, const char *who,
                   const char *const *denied_list, int ndenied, char ***names, char ***values,
                   int *count, sl_diag_t *d)
{
    if (n->kind != SL_Y_MAP) {
        sl_diag_error(d, n->line, n->col,
                      "properties of '%s' must map librdkafka settings to values", name);
        return SL_SPEC;
    }
    *names = calloc((size_t)n->n + 1, sizeof(char *));
    *values = calloc((size_t)n->n + 1, sizeof(char *));
    if (!*names || !*values)
        return SL_NOMEM;
    int bad = 0;
    for (int i = 0; i < n->n; i++) {
        const char *k = sl_ynode_str(n->keys[i], d, "property name");
        const char *v = sl_ynode_str(n->items[i], d, "property value");
        if (!k || !v) {
            bad = 1;
            continue;
        }
        bool denied = strncmp(k, "test.mock.", 10) == 0;
        for (int j = 0; j < ndenied; j++)
            denied = denied || strcmp(k, denied_list[j]) == 0;
        if (denied) {
            sl_diag_error(d, n->keys[i]->line, n->keys[i]->col,
                          "property '%s' of '%s' is set by the %s itself", k, name, who);
            bad = 1;
            continue;
        }
        (*names)[*count] = strdup(k);
        (*values)[*count] = strdup(v);
        ++*count;
        if (!(*names)[*count - 1] || !(*values)[*count - 1])
            return SL_NOMEM;
    }
    return bad ? SL_SPEC : SL_OK;
}

static int s_parse_props(sl_kafka_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    return s_props(n, name, "source", s_denied, S_NDENIED, &c->prop_names, &c->prop_values,
                   &c->nprops, d);
}

/* Whether the source reads topic (named, or matching its pattern). */
static bool s_reads_topic(const sl_kafka_cfg_t *c, const char *topic)
{
    for (int i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i], topic) == 0)
            return true;
    regex_t re;
    if (!c->topic_pattern || sl_kafka_pattern_compile(c->topic_pattern, &re))
        return false;
    bool m = strncmp(topic, "__", 2) != 0 && regexec(&re, topic, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

int sl_kafka_cfg_parse(const sl_ynode_t *body, const char *name, sl_diag_t *d, sl_kafka_cfg_t **out)
{
    *out = NULL;
    sl_kafka_cfg_t *c = calloc(1, sizeof *c);
    if (!c)
        return SL_NOMEM;
    c->bounded = false; /* unbounded unless `bounded: true` */
    c->timeout_ms = 10000;
    c->fallback = SL_KAFKA_START_EARLIEST;
    c->f_key = c->f_partition = c->f_offset = c->f_timestamp = c->f_value = c->f_headers = -1;
    int rc = SL_OK, bad = 0;
    const sl_ynode_t *n;
#define S_CHECK(expr)                                                                              \
    do {                                                                                           \
        int r_ = (expr);                                                                           \
        if (r_ == SL_NOMEM) {                                                                      \
            rc = SL_NOMEM;                                                                         \
            goto done;                                                                             \
        }                                                                                          \
        if (r_)                                                                                    \
            bad = 1;                                                                               \
    } while (0)
    if (!(n = sl_ynode_get(body, "bootstrap"))) {
        sl_diag_error(d, body->line, body->col,
                      "source '%s' (type kafka) needs a 'bootstrap' field", name);
        bad = 1;
    } else
        S_CHECK(s_str(n, "bootstrap", name, d, &c->bootstrap));
    /* source only: the topics read, exactly one of topic, topics, topic_pattern */
    const sl_ynode_t *nt = sl_ynode_get(body, "topic"), *nts = sl_ynode_get(body, "topics"),
                     *ntp = sl_ynode_get(body, "topic_pattern");
    if (!!nt + !!nts + !!ntp != 1) {
        const sl_ynode_t *at = !nt + !nts + !ntp == 3 ? body : nts && (nt || ntp) ? nts : ntp;
        sl_diag_error(d, at->line, at->col,
                      "source '%s' (type kafka) needs exactly one of 'topic', 'topics' and "
                      "'topic_pattern'",
                      name);
        bad = 1;
    } else if (nt) {
        S_CHECK(s_str(nt, "topic", name, d, &c->topic));
        if (c->topic && !(c->topics = calloc(1, sizeof *c->topics))) {
            rc = SL_NOMEM;
            goto done;
        }
        if (c->topic && !(c->topics[c->ntopics++] = strdup(c->topic))) {
            rc = SL_NOMEM;
            goto done;
        }
    } else if (nts)
        S_CHECK(s_parse_topics(c, nts, name, d));
    else
        S_CHECK(s_parse_pattern(c, ntp, name, d));
    if ((n = sl_ynode_get(body, "format"))) {
        const char *f = sl_ynode_str(n, d, "format");
        if (f && (strcmp(f, "json") == 0 || strcmp(f, "jsonl") == 0))
            c->format = SL_KAFKA_JSON;
        else if (f && strcmp(f, "csv") == 0)
            c->format = SL_KAFKA_CSV;
        else if (f && strcmp(f, "raw") == 0)
            c->format = SL_KAFKA_RAW;
        else {
            if (f) {
                sl_diag_error(d, n->line, n->col, "unknown format '%s' for '%s'", f, name);
                sl_diag_hint(d, "formats are json, csv, raw");
            }
            bad = 1;
        }
    } else {
        sl_diag_error(d, body->line, body->col, "source '%s' (type kafka) needs a 'format' field",
                      name);
        bad = 1;
    }
    if ((n = sl_ynode_get(body, "start")))
        S_CHECK(s_parse_start(c, n, name, d));
    const sl_ynode_t *nb = sl_ynode_get(body, "bounded");
    if (nb && sl_ynode_bool(nb, d, "bounded", &c->bounded))
        bad = 1;
    const sl_ynode_t *nstop = sl_ynode_get(body, "stop");
    if (nstop) {
        S_CHECK(s_parse_stop(c, nstop, name, d));
        if (nb && !c->bounded) {
            sl_diag_error(d, nb->line, nb->col,
                          "stop of '%s' makes the source bounded: leave out bounded: false", name);
            bad = 1;
        }
        c->bounded = true;
        if (c->stop == SL_KAFKA_STOP_OFFSETS && (nts || ntp)) {
            sl_diag_error(d, nstop->line, nstop->col,
                          "stop: offsets of '%s' names partitions of one topic: use it with "
                          "'topic', not with several topics",
                          name);
            bad = 1;
        }
    }
    if (c->start == SL_KAFKA_START_OFFSETS && (nts || ntp)) {
        n = sl_ynode_get(body, "start");
        sl_diag_error(d, n->line, n->col,
                      "start: offsets of '%s' names partitions of one topic: use it with "
                      "'topic', not with several topics",
                      name);
        bad = 1;
    }
    if ((n = sl_ynode_get(body, "fallback"))) {
        const char *v = sl_ynode_str(n, d, "fallback");
        if (v && c->start != SL_KAFKA_START_COMMITTED) {
            sl_diag_error(d, n->line, n->col, "fallback of '%s' only applies to start: committed",
                          name);
            bad = 1;
        } else if (v && strcmp(v, "latest") == 0)
            c->fallback = SL_KAFKA_START_LATEST;
        else if (v && strcmp(v, "earliest") != 0) {
            sl_diag_error(d, n->line, n->col,
                          "fallback of '%s' must be earliest or latest, not '%s'", name, v);
            bad = 1;
        } else if (!v)
            bad = 1;
    }
    if ((n = sl_ynode_get(body, "headers")) && sl_ynode_bool(n, d, "headers", &c->headers))
        bad = 1;
    if ((n = sl_ynode_get(body, "rate"))) {
        long long v;
        if (sl_ynode_int(n, 0, 1000000000, d, "rate", &v))
            bad = 1;
        else
            c->rate = v;
    }
    if ((n = sl_ynode_get(body, "key")) && sl_ynode_bool(n, d, "key", &c->key))
        bad = 1;
    if ((n = sl_ynode_get(body, "on_error")))
        S_CHECK(s_parse_on_error(c, n, name, d));
    if ((n = sl_ynode_get(body, "group")))
        S_CHECK(s_str(n, "group", name, d, &c->group));
    if ((n = sl_ynode_get(body, "timeout_ms"))) {
        long long v;
        if (sl_ynode_int(n, 100, 3600000, d, "timeout_ms", &v))
            bad = 1;
        else
            c->timeout_ms = (int)v;
    }
    if ((n = sl_ynode_get(body, "properties")))
        S_CHECK(s_parse_props(c, n, name, d));
    if (c->dead_letter && s_reads_topic(c, c->dead_letter)) {
        n = sl_ynode_get(sl_ynode_get(body, "on_error"), "dead_letter");
        sl_diag_error(d, n->line, n->col,
                      "dead-letter topic '%s' of '%s' is a topic the source reads: it would read "
                      "its own dead letters",
                      c->dead_letter, name);
        bad = 1;
    }
#undef S_CHECK
done:
    if (rc == SL_OK && bad)
        rc = SL_SPEC;
    if (rc)
        sl_kafka_cfg_destroy(&c);
    *out = c;
    return rc;
}

int sl_kafka_cfg_bind(sl_kafka_cfg_t *cfg, const sl_schema_t *schema, sl_diag_t *d, int line,
                      int col)
{
    static const struct {
        const char *name;
        sl_type_t type;
    } meta[] = {{"partition", SL_TYPE_INT64},
                {"offset", SL_TYPE_INT64},
                {"kafka_timestamp", SL_TYPE_TIMESTAMP},
                {"key", SL_TYPE_STRING}};
    int *slot[] = {&cfg->f_partition, &cfg->f_offset, &cfg->f_timestamp, &cfg->f_key};
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        *slot[i] = -1;
        if (i == 3 && !cfg->key)
            continue;
        int f = sl_schema_find(schema, meta[i].name);
        if (f < 0) {
            if (i == 3) {
                sl_diag_error(d, line, col,
                              "with key: true the schema needs a field 'key' of type string");
                bad = 1;
            }
            continue;
        }
        if (schema->fields[f].type != meta[i].type) {
            sl_diag_error(d, line, col, "field '%s' holds the record's %s and must be %s",
                          meta[i].name, meta[i].name, sl_type_name(meta[i].type));
            bad = 1;
        }
        *slot[i] = f;
    }
    cfg->f_headers = -1; /* source only: `headers: true` */
    if (cfg->headers) {
        int f = sl_schema_find(schema, "headers");
        if (f < 0 || schema->fields[f].type != SL_TYPE_STRING) {
            sl_diag_error(d, line, col,
                          "with headers: true the schema needs a field 'headers' of type string");
            bad = 1;
        } else
            cfg->f_headers = f;
    }
    free(cfg->value_fields);
    cfg->value_fields = calloc((size_t)schema->nfields + 1, sizeof(int));
    if (!cfg->value_fields)
        return SL_NOMEM;
    cfg->nvalue = 0;
    for (int f = 0; f < schema->nfields; f++)
        if (f != cfg->f_partition && f != cfg->f_offset && f != cfg->f_timestamp &&
            f != cfg->f_key && f != cfg->f_headers)
            cfg->value_fields[cfg->nvalue++] = f;
    cfg->f_value = -1;
    if (cfg->format == SL_KAFKA_RAW) {
        cfg->f_value = sl_schema_find(schema, "value");
        if (cfg->f_value < 0 || schema->fields[cfg->f_value].type != SL_TYPE_STRING ||
            cfg->nvalue != 1) {
            sl_diag_error(d, line, col,
                          "a raw Kafka source has one string field 'value' (besides partition, "
                          "offset, kafka_timestamp, key, headers)");
            bad = 1;
        }
    } else if (cfg->nvalue == 0) {
        sl_diag_error(d, line, col, "the schema names no field to read from the record value");
        bad = 1;
    }
    return bad ? SL_SPEC : SL_OK;
}

void sl_kafka_cfg_destroy(sl_kafka_cfg_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_kafka_cfg_t *c = *pp;
    free(c->bootstrap);
    free(c->topic);
    free(c->group);
    free(c->offsets);
    s_props_free(c->prop_names, c->prop_values, c->nprops);
    free(c->value_fields);
    for (int i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->topic_pattern);
    free(c->stop_offsets);
    free(c->dead_letter);
    free(c);
    *pp = NULL;
}

/* ---- decoding: CSV (one record, columns in schema order) ------------------ */

static int s_decode_csv(const sl_kafka_cfg_t *cfg, const sl_schema_t *sc, char *p, size_t n,
                        sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap)
{
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    size_t i = 0;
    int col = 0;
    for (;;) {
        char *cell = p + i, *w = cell;
        bool quoted = false;
        if (i < n && p[i] == '"') {
            quoted = true;
            i++;
            for (;;) {
                if (i >= n)
                    return s_err(err, cap, SL_DATA, "bad quoting in column %d", col + 1);
                if (p[i] == '"') {
                    if (i + 1 < n && p[i + 1] == '"') {
                        *w++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *w++ = p[i++];
            }
            if (i < n && p[i] != ',')
                return s_err(err, cap, SL_DATA, "bad quoting in column %d", col + 1);
        } else {
            while (i < n && p[i] != ',') {
                if (p[i] == '"')
                    return s_err(err, cap, SL_DATA, "bad quoting in column %d", col + 1);
                i++;
            }
            w = p + i;
        }
        if (col < cfg->nvalue) {
            int f = cfg->value_fields[col];
            sl_type_t t = sc->fields[f].type;
            size_t len = (size_t)(w - cell);
            char why[160];
            if (t == SL_TYPE_STRING && len == 0 && quoted) {
                vals[f] = sl_value_str("", 0);
            } else {
                int rc = sl_value_from_text(t, cell, len, arena, &vals[f], why, sizeof why);
                if (rc == SL_DATA)
                    return s_err(err, cap, SL_DATA, "column '%s': %s", sc->fields[f].name, why);
                if (rc < 0)
                    return s_err(err, cap, rc, "%s", why);
            }
        }
        col++;
        if (i >= n)
            break;
        i++; /* the comma */
    }
    if (col != cfg->nvalue)
        return s_err(err, cap, SL_DATA, "expected %d columns, got %d", cfg->nvalue, col);
    return 0;
}

int sl_kafka_decode(const sl_kafka_cfg_t *cfg, const sl_schema_t *schema, const char *p, size_t n,
                    sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap)
{
    for (int k = 0; k < cfg->nvalue; k++) {
        int f = cfg->value_fields[k];
        vals[f] = sl_value_null(); /* a missing field is null */
        vals[f].type = schema->fields[f].type;
    }
    if (n > UINT32_MAX)
        return s_err(err, cap, SL_DATA, "value of %zu bytes is too large", n);
    char *copy = sl_arena_alloc(arena, n ? n : 1);
    if (!copy)
        return s_err(err, cap, SL_NOMEM, "out of memory");
    if (n)
        memcpy(copy, p, n);
    switch (cfg->format) {
    case SL_KAFKA_RAW:
        vals[cfg->f_value] = sl_value_str(copy, (uint32_t)n);
        return 0;
    case SL_KAFKA_CSV:
        return s_decode_csv(cfg, schema, copy, n, vals, arena, err, cap);
    case SL_KAFKA_JSON:
        break;
    }
    return sl_json_decode(copy, n, schema, cfg->value_fields, cfg->nvalue, vals, arena, err, cap);
}

/* ---- the `kafka` sink's fields ---------------------------------------------
 *
 * Separate from the source's on purpose: its own required fields, its own
 * denied properties (what the producer controls itself). */

/* Settings the sink controls itself; `properties:` may not set them. */
static const char *const s_sink_denied[] = {"bootstrap.servers",      "metadata.broker.list",
                                            "transactional.id",       "enable.idempotence",
                                            "transaction.timeout.ms", "isolation.level"};
#define S_NSINK_DENIED ((int)(sizeof s_sink_denied / sizeof *s_sink_denied))

static int s_sink_props(sl_kafka_sink_cfg_t *c, const sl_ynode_t *n, const char *name, sl_diag_t *d)
{
    return s_props(n, name, "sink", s_sink_denied, S_NSINK_DENIED, &c->prop_names, &c->prop_values,
                   &c->nprops, d);
}

/* One of the words names[0..n) in scalar node v: its index, or -1 after
 * an error naming what and the choices. */
static int s_choice(const sl_ynode_t *v, const char *what, const char *name,
                    const char *const *names, int n, sl_diag_t *d)
{
    const char *s = sl_ynode_str(v, d, what);
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    sl_diag_error(d, v->line, v->col, "%s of '%s' must be %s or %s, not '%s'", what, name, names[0],
                  names[1], s);
    return -1;
}

int sl_kafka_sink_cfg_parse(const sl_ynode_t *body, const char *name, sl_diag_t *d,
                            sl_kafka_sink_cfg_t **out)
{
    *out = NULL;
    sl_kafka_sink_cfg_t *c = calloc(1, sizeof *c);
    if (!c)
        return SL_NOMEM;
    c->timeout_ms = 30000;
    int rc = SL_OK, bad = 0;
    const sl_ynode_t *n;
#define S_CHECK(expr)                                                                              \
    do {                                                                                           \
        int r_ = (expr);                                                                           \
        if (r_ == SL_NOMEM) {                                                                      \
            rc = SL_NOMEM;                                                                         \
            goto done;                                                                             \
        }                                                                                          \
        if (r_)                                                                                    \
            bad = 1;                                                                               \
    } while (0)
    static const char *const req[] = {"bootstrap", "topic", "format"};
    for (int i = 0; i < 3; i++)
        if (!sl_ynode_get(body, req[i])) {
            sl_diag_error(d, body->line, body->col, "sink '%s' (type kafka) needs a '%s' field",
                          name, req[i]);
            bad = 1;
        }
    if ((n = sl_ynode_get(body, "bootstrap")))
        S_CHECK(s_str(n, "bootstrap", name, d, &c->bootstrap));
    if ((n = sl_ynode_get(body, "topic")))
        S_CHECK(s_str(n, "topic", name, d, &c->topic));
    if ((n = sl_ynode_get(body, "format"))) {
        const char *f = sl_ynode_str(n, d, "format");
        if (f && (strcmp(f, "json") == 0 || strcmp(f, "jsonl") == 0))
            c->format = SL_KAFKA_JSON;
        else if (f && strcmp(f, "csv") == 0)
            c->format = SL_KAFKA_CSV;
        else if (f && strcmp(f, "raw") == 0)
            c->format = SL_KAFKA_RAW;
        else {
            if (f) {
                sl_diag_error(d, n->line, n->col, "unknown format '%s' for '%s'", f, name);
                sl_diag_hint(d, "formats are json, csv, raw");
            }
            bad = 1;
        }
    }
    static const char *const deliveries[] = {"at-least-once", "exactly-once"};
    static const char *const proofs[] = {"markers", "journal"};
    const sl_ynode_t *dn = sl_ynode_get(body, "delivery");
    bool dn_bad = false; /* delivery given but wrong: said once */
    if (dn) {
        int v = s_choice(dn, "delivery", name, deliveries, 2, d);
        if (v < 0)
            bad = 1, dn_bad = true;
        else
            c->delivery = (sl_kafka_delivery_t)v;
    }
    const sl_ynode_t *pn = sl_ynode_get(body, "commit_proof");
    if (pn) {
        int v = s_choice(pn, "commit_proof", name, proofs, 2, d);
        if (v < 0)
            bad = 1;
        else if (c->delivery != SL_KAFKA_EXACTLY_ONCE) {
            if (!dn_bad)
                sl_diag_error(d, pn->line, pn->col,
                              "commit_proof of '%s' needs delivery: exactly-once", name);
            bad = 1;
        } else
            c->proof = (sl_kafka_proof_t)v;
    }
    const sl_ynode_t *jn = sl_ynode_get(body, "journal");
    if (jn) {
        S_CHECK(s_str(jn, "journal", name, d, &c->journal));
        if (c->journal && (!pn || c->proof != SL_KAFKA_PROOF_JOURNAL)) {
            sl_diag_error(d, jn->line, jn->col, "journal of '%s' needs commit_proof: journal",
                          name);
            bad = 1;
        }
    } else if (pn && c->proof == SL_KAFKA_PROOF_JOURNAL) {
        sl_diag_error(d, pn->line, pn->col,
                      "commit_proof: journal of '%s' needs a 'journal' field (a file path)", name);
        bad = 1;
    }
    const sl_ynode_t *mn = sl_ynode_get(body, "marker_topic");
    if (mn) {
        S_CHECK(s_str(mn, "marker_topic", name, d, &c->marker_topic));
        if (c->marker_topic &&
            (c->delivery != SL_KAFKA_EXACTLY_ONCE || c->proof != SL_KAFKA_PROOF_MARKERS)) {
            sl_diag_error(d, mn->line, mn->col,
                          "marker_topic of '%s' needs delivery: exactly-once with "
                          "commit_proof: markers",
                          name);
            bad = 1;
        }
    }
    if ((n = sl_ynode_get(body, "timeout_ms"))) {
        long long v;
        if (sl_ynode_int(n, 1000, 3600000, d, "timeout_ms", &v))
            bad = 1;
        else
            c->timeout_ms = (int)v;
    }
    if ((n = sl_ynode_get(body, "properties")))
        S_CHECK(s_sink_props(c, n, name, d));
    if (!bad && c->delivery == SL_KAFKA_EXACTLY_ONCE && c->proof == SL_KAFKA_PROOF_MARKERS &&
        !c->marker_topic && c->topic) {
        size_t len = strlen(c->topic) + 32;
        c->marker_topic = malloc(len);
        if (!c->marker_topic) {
            rc = SL_NOMEM;
            goto done;
        }
        snprintf(c->marker_topic, len, "%s.sluice-commits", c->topic);
    }
#undef S_CHECK
done:
    if (rc == SL_OK && bad)
        rc = SL_SPEC;
    if (rc)
        sl_kafka_sink_cfg_destroy(&c);
    *out = c;
    return rc;
}

void sl_kafka_sink_cfg_destroy(sl_kafka_sink_cfg_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_kafka_sink_cfg_t *c = *pp;
    free(c->bootstrap);
    free(c->topic);
    free(c->journal);
    free(c->marker_topic);
    s_props_free(c->prop_names, c->prop_values, c->nprops);
    sl_expr_destroy(&c->key);
    sl_expr_destroy(&c->partition);
    free(c);
    *pp = NULL;
}
