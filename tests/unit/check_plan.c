/* check_plan.c — from spec to the typed, chained plan: schemas on every
 * edge, partitioning, chaining, parallelism and the printed forms. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/plan.h"
#include "testutil.h"

typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
} s_loaded_t;

static int s_load(s_loaded_t *l, const char *text, int parallelism)
{
    l->d = sl_diag_new("job.yaml");
    return sl_plan_load("job.yaml", text, strlen(text), NULL, parallelism, l->d, &l->spec,
                        &l->plan);
}

static void s_unload(s_loaded_t *l)
{
    sl_plan_destroy(&l->plan);
    sl_spec_destroy(&l->spec);
    sl_diag_destroy(&l->d);
}

static const char *s_wordcount = "name: wc\n"
                                 "parallelism: 3\n"
                                 "sources:\n"
                                 "  - { name: lines, type: file, format: text, path: in.txt }\n"
                                 "operators:\n"
                                 "  - { name: words, type: flat_map, input: lines, field: line, "
                                 "as: word }\n"
                                 "  - name: counts\n"
                                 "    type: aggregate\n"
                                 "    input: words\n"
                                 "    key: [word]\n"
                                 "    aggregates: [{ name: n, fn: count }]\n"
                                 "sinks:\n"
                                 "  - { name: out, type: file, format: csv, input: counts, path: "
                                 "o.csv }\n";

START_TEST(test_wordcount_plan)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, s_wordcount, 0), SL_OK);
    const sl_plan_t *p = l.plan;
    ck_assert_int_eq(p->nnodes, 4);
    /* lines -> words chain (forward, same parallelism); counts (hash); out (p=1). */
    ck_assert_int_eq(p->nchains, 3);
    ck_assert_int_eq(p->chains[0].nnodes, 2);
    ck_assert_int_eq(p->chains[0].parallelism, 3);
    int words = sl_spec_find(l.spec, "words"), counts = sl_spec_find(l.spec, "counts"),
        out = sl_spec_find(l.spec, "out");
    ck_assert_int_eq(p->nodes[words].chain, 0);
    ck_assert_int_eq(p->nodes[words].part[0], SL_PART_FORWARD);
    ck_assert_int_eq(p->nodes[counts].part[0], SL_PART_HASH);
    ck_assert_int_eq(p->nodes[counts].edge_nkeys[0], 1);
    ck_assert_int_eq(p->nodes[out].part[0], SL_PART_REBALANCE);
    ck_assert_int_eq(p->nodes[out].parallelism, 1);
    ck_assert_int_eq(sl_plan_slots(p), 3);
    char buf[256];
    sl_schema_format(p->nodes[words].out, buf, sizeof buf);
    ck_assert_str_eq(buf, "word:string");
    sl_schema_format(p->nodes[counts].out, buf, sizeof buf);
    ck_assert_str_eq(buf, "word:string, n:int64");
    s_unload(&l);
    /* The --parallelism override changes the job default, not sinks. */
    ck_assert_int_eq(s_load(&l, s_wordcount, 5), SL_OK);
    ck_assert_int_eq(l.plan->chains[0].parallelism, 5);
    ck_assert_int_eq(l.plan->nodes[sl_spec_find(l.spec, "out")].parallelism, 1);
    s_unload(&l);
}
END_TEST

START_TEST(test_plan_print)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, s_wordcount, 0), SL_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl_plan_print(l.plan, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "task 0  parallelism 3"));
    ck_assert_ptr_nonnull(strstr(text, "<- hash(word) from words (task 0)"));
    ck_assert_ptr_nonnull(strstr(text, "-> words"));
    free(text);
    f = open_memstream(&text, &len);
    sl_plan_print_dot(l.plan, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "digraph \"wc\""));
    ck_assert_ptr_nonnull(strstr(text, "label=\"hash(word)\""));
    ck_assert_ptr_nonnull(strstr(text, "style=dashed")); /* the chained edge */
    free(text);
    s_unload(&l);
}
END_TEST

/* A filter that is the only consumer of a nexmark source, in its chain,
 * reading only the columns the source generates, is fused into it; not a
 * filter next to another consumer, one at its own parallelism, or one
 * reading the event_time column a `timestamp:` expression adds. */
static const char *s_nexfilter(const char *src_extra, const char *where, const char *filter_extra,
                               bool second, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "name: nx\n"
             "parallelism: 2\n"
             "sources:\n"
             "  - {name: ev, type: nexmark, events: 100%s}\n"
             "operators:\n"
             "  - {name: sel, type: filter, input: ev, where: \"%s\"%s}\n"
             "%s"
             "sinks:\n"
             "  - {name: out, type: discard, input: sel}\n"
             "%s",
             src_extra, where, filter_extra,
             second
                 ? "  - {name: other, type: filter, input: ev, where: \"event_type = 'person'\"}\n"
                 : "",
             second ? "  - {name: out2, type: discard, input: other}\n" : "");
    return buf;
}

START_TEST(test_nexmark_fused_filter)
{
    char text[1024];
    s_loaded_t l;
    for (int par = 1; par <= 2; par++) {
        ck_assert_int_eq(s_load(&l,
                                s_nexfilter("", "event_type = 'bid' and auction % 123 = 0", "",
                                            false, text, sizeof text),
                                par),
                         SL_OK);
        int ev = sl_spec_find(l.spec, "ev"), sel = sl_spec_find(l.spec, "sel");
        ck_assert_int_eq(l.plan->nodes[ev].fused_filter, sel);
        ck_assert(l.plan->nodes[sel].fused);
        ck_assert_int_eq(l.plan->nodes[sel].chain, l.plan->nodes[ev].chain);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        sl_plan_print(l.plan, f);
        fclose(f);
        ck_assert_ptr_nonnull(strstr(out, "applies filter sel to each event (fused)"));
        ck_assert_ptr_nonnull(strstr(out, "fused into source ev"));
        free(out);
        s_unload(&l);
    }
    const char *cases[][3] = {
        /* the source feeds another filter too */
        {"", "", "2"},
        /* the filter at its own parallelism: not in the source's chain */
        {"", ", parallelism: 1", ""},
        /* the condition reads the column the timestamp expression adds */
        {", timestamp: \"coalesce(price, 0) * 1000\", watermark: {max_out_of_order: 0}", "", "t"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *where = cases[k][2][0] == 't' ? "event_time is not null" : "event_type = 'bid'";
        ck_assert_int_eq(s_load(&l,
                                s_nexfilter(cases[k][0], where, cases[k][1], cases[k][2][0] == '2',
                                            text, sizeof text),
                                2),
                         SL_OK);
        int ev = sl_spec_find(l.spec, "ev"), sel = sl_spec_find(l.spec, "sel");
        ck_assert_msg(l.plan->nodes[ev].fused_filter == -1, "case %zu fused", k);
        ck_assert(!l.plan->nodes[sel].fused);
        s_unload(&l);
    }
}
END_TEST

/* A map that is the only consumer of a nexmark source, or of the filter
 * fused into it, in the source's chain, is fused into the source (it
 * builds the map's rows); event time stays where the map puts it. Not a
 * map next to another consumer, one at its own parallelism, or one behind
 * a source whose event time is an expression or another column than
 * date_time (the source keeps the watermark only from date_time). */
static const char *s_nexmap(const char *src_extra, bool filter, const char *select,
                            const char *map_extra, const char *more, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "name: nx\n"
             "parallelism: 2\n"
             "sources:\n"
             "  - {name: ev, type: nexmark, events: 100%s}\n"
             "operators:\n"
             "%s"
             "  - {name: m, type: map, input: %s, select: {%s}%s}\n"
             "sinks:\n"
             "  - {name: out, type: discard, input: m}\n"
             "%s",
             src_extra,
             filter ? "  - {name: sel, type: filter, input: ev, where: \"event_type = 'bid'\"}\n"
                    : "",
             filter ? "sel" : "ev", select, map_extra, more);
    return buf;
}

START_TEST(test_nexmark_fused_map)
{
    char text[2048];
    s_loaded_t l;
    const char *wm = ", timestamp: date_time, watermark: {max_out_of_order: 0}";
    struct {
        const char *src_extra;
        bool filter;
        const char *select;
        int rowtime; /* of the map */
    } fused[] = {
        {"", true, "a: auction, p: \"price * 2\", d: date_time", -1},
        {"", false, "k: event_type, n: \"coalesce(name, item_name)\", x: extra", -1},
        /* event time: date_time moved to another name and position */
        {wm, true, "a: auction, t: date_time, p: price", 1},
        /* dropped: the map's rows carry none, the watermark still flows */
        {wm, true, "a: auction, p: price", -1},
        {wm, false, "k: event_type, t: date_time", 1},
    };
    for (size_t k = 0; k < sizeof fused / sizeof *fused; k++)
        for (int par = 1; par <= 2; par++) {
            ck_assert_int_eq(s_load(&l,
                                    s_nexmap(fused[k].src_extra, fused[k].filter, fused[k].select,
                                             "", "", text, sizeof text),
                                    par),
                             SL_OK);
            int ev = sl_spec_find(l.spec, "ev"), m = sl_spec_find(l.spec, "m");
            const sl_plan_node_t *src = &l.plan->nodes[ev];
            ck_assert_msg(src->fused_map == m, "case %zu at P=%d not fused", k, par);
            ck_assert(l.plan->nodes[m].fused);
            ck_assert_int_eq(src->fused_filter, fused[k].filter ? sl_spec_find(l.spec, "sel") : -1);
            ck_assert_int_eq(l.plan->nodes[m].rowtime, fused[k].rowtime);
            ck_assert_ptr_eq(sl_plan_emit_schema(l.plan, src), l.plan->nodes[m].out);
            char *out = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&out, &len);
            sl_plan_print(l.plan, f);
            fclose(f);
            ck_assert_ptr_nonnull(strstr(out, "builds the rows of map m from each event (fused)"));
            const char *mline = strstr(out, "-> m ");
            ck_assert_ptr_nonnull(mline);
            ck_assert_ptr_nonnull(strstr(mline, "fused into source ev: forwards its rows"));
            free(out);
            s_unload(&l);
        }
    struct {
        const char *src_extra;
        bool filter;
        const char *map_extra, *more;
    } not_fused[] = {
        /* the filter feeds another consumer too */
        {"", true, "", "  - {name: out2, type: discard, input: sel}\n"},
        /* the source feeds another consumer too */
        {"", false, "", "  - {name: out2, type: discard, input: ev}\n"},
        /* the map at its own parallelism: not in the source's chain */
        {"", true, ", parallelism: 1", ""},
        {"", false, ", parallelism: 1", ""},
        /* event time from an expression, or from another column */
        {", timestamp: \"coalesce(price, 0) * 1000\", watermark: {max_out_of_order: 0}", true, "",
         ""},
        {", timestamp: expires, watermark: {max_out_of_order: 0}", false, "", ""},
    };
    for (size_t k = 0; k < sizeof not_fused / sizeof *not_fused; k++) {
        ck_assert_int_eq(
            s_load(&l,
                   s_nexmap(not_fused[k].src_extra, not_fused[k].filter, "a: auction, t: date_time",
                            not_fused[k].map_extra, not_fused[k].more, text, sizeof text),
                   2),
            SL_OK);
        int ev = sl_spec_find(l.spec, "ev"), m = sl_spec_find(l.spec, "m");
        ck_assert_msg(l.plan->nodes[ev].fused_map == -1, "case %zu fused", k);
        ck_assert(!l.plan->nodes[m].fused);
        ck_assert_ptr_eq(sl_plan_emit_schema(l.plan, &l.plan->nodes[ev]),
                         sl_plan_source_schema(&l.plan->nodes[ev]));
        s_unload(&l);
    }
}
END_TEST

/* A keyed (hash) edge with both ends at parallelism 1 is chained: the one
 * subtask owns every key group, so no exchange is needed. Not when either
 * end runs wider, or the node has two inputs in different tasks (a join of
 * two sources). */
START_TEST(test_keyed_chain_at_p1)
{
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, s_wordcount, 1), SL_OK);
    const sl_plan_t *p = l.plan;
    int words = sl_spec_find(l.spec, "words"), counts = sl_spec_find(l.spec, "counts");
    ck_assert_int_eq(p->nchains, 1); /* lines -> words -> counts -> out */
    ck_assert_int_eq(p->chains[0].nnodes, 4);
    ck_assert_int_eq(p->nodes[counts].part[0], SL_PART_HASH); /* still keyed: the key is kept */
    ck_assert_int_eq(p->nodes[counts].edge_nkeys[0], 1);
    ck_assert_int_eq(p->nodes[counts].chain, p->nodes[words].chain);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl_plan_print(p, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "-> counts"));
    ck_assert_ptr_nonnull(strstr(text, "<- hash(word), chained (parallelism 1)"));
    free(text);
    s_unload(&l);
    /* P=2: the keyed edge is an exchange. */
    ck_assert_int_eq(s_load(&l, s_wordcount, 2), SL_OK);
    ck_assert_int_ne(l.plan->nodes[sl_spec_find(l.spec, "counts")].chain,
                     l.plan->nodes[sl_spec_find(l.spec, "words")].chain);
    s_unload(&l);
    /* Job at P=1 but the aggregate at its own parallelism 2: not chained. */
    const char *wide = "name: w\n"
                       "parallelism: 1\n"
                       "sources:\n"
                       "  - { name: lines, type: file, format: text, path: in.txt }\n"
                       "operators:\n"
                       "  - { name: words, type: flat_map, input: lines, field: line, as: word }\n"
                       "  - name: counts\n"
                       "    type: aggregate\n"
                       "    parallelism: 2\n"
                       "    input: words\n"
                       "    key: [word]\n"
                       "    aggregates: [{ name: n, fn: count }]\n"
                       "  - name: again\n"
                       "    type: aggregate\n"
                       "    input: words\n"
                       "    key: [word]\n"
                       "    aggregates: [{ name: n, fn: count }]\n"
                       "sinks:\n"
                       "  - { name: o1, type: discard, input: counts }\n"
                       "  - { name: o2, type: discard, input: again }\n";
    ck_assert_int_eq(s_load(&l, wide, 0), SL_OK);
    p = l.plan;
    int w = sl_spec_find(l.spec, "words"), c = sl_spec_find(l.spec, "counts"),
        a = sl_spec_find(l.spec, "again");
    ck_assert_int_ne(p->nodes[c].chain, p->nodes[w].chain); /* P=2 downstream */
    /* words feeds two: again (P=1) chains, counts (P=2) gets an exchange */
    ck_assert_int_eq(p->nodes[a].chain, p->nodes[w].chain);
    ck_assert_int_ne(p->nodes[c].chain, p->nodes[a].chain);
    /* again (P=1) chains its P=1 sink; counts (P=2) sends to its P=1 sink. */
    ck_assert_int_eq(p->nodes[sl_spec_find(l.spec, "o2")].chain, p->nodes[a].chain);
    ck_assert_int_ne(p->nodes[sl_spec_find(l.spec, "o1")].chain, p->nodes[c].chain);
    s_unload(&l);
    /* A join's two keyed inputs are never chained, even at P=1; the keyed
     * edge after it is. */
    const char *join = "name: j\n"
                       "parallelism: 1\n"
                       "sources:\n"
                       "  - name: s\n"
                       "    type: file\n"
                       "    format: csv\n"
                       "    path: s.csv\n"
                       "    schema: { id: int64, at: timestamp }\n"
                       "    timestamp: at\n"
                       "  - name: t\n"
                       "    type: file\n"
                       "    format: csv\n"
                       "    path: t.csv\n"
                       "    schema: { ref: int64, at: timestamp }\n"
                       "    timestamp: at\n"
                       "operators:\n"
                       "  - name: j\n"
                       "    type: join\n"
                       "    kind: interval\n"
                       "    inputs: [s, t]\n"
                       "    key: { left: [id], right: [ref] }\n"
                       "    between: [0s, 1s]\n"
                       "  - name: per\n"
                       "    type: aggregate\n"
                       "    input: j\n"
                       "    key: [id]\n"
                       "    aggregates: [{ name: n, fn: count }]\n"
                       "sinks:\n"
                       "  - { name: o, type: discard, input: per }\n";
    ck_assert_int_eq(s_load(&l, join, 0), SL_OK);
    p = l.plan;
    int j = sl_spec_find(l.spec, "j"), per = sl_spec_find(l.spec, "per");
    ck_assert_int_ne(p->nodes[j].chain, p->nodes[sl_spec_find(l.spec, "s")].chain);
    ck_assert_int_ne(p->nodes[j].chain, p->nodes[sl_spec_find(l.spec, "t")].chain);
    ck_assert_int_eq(p->nodes[per].chain, p->nodes[j].chain);
    ck_assert_int_eq(p->nchains, 3);
    s_unload(&l);
}
END_TEST

/* The q4 / q9 shape: one source feeding two filters, each through a map
 * into one input of a join (%s: more attributes of map b). */
static const char *s_branch_fmt =
    "name: br\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: s\n"
    "    type: file\n"
    "    format: csv\n"
    "    path: s.csv\n"
    "    schema: { kind: string, id: int64, at: timestamp }\n"
    "    timestamp: at\n"
    "operators:\n"
    "  - { name: fa, type: filter, input: s, where: kind = 'a' }\n"
    "  - { name: a, type: map, input: fa, select: { id: id, at: at } }\n"
    "  - { name: fb, type: filter, input: s, where: kind = 'b' }\n"
    "  - { name: b, type: map, input: fb%s, select: { ref: id, bt: at } }\n"
    "  - name: j\n"
    "    type: join\n"
    "    kind: interval\n"
    "    inputs: [a, b]\n"
    "    key: { left: [id], right: [ref] }\n"
    "    between: [0s, 1s]\n"
    "sinks:\n"
    "  - { name: o, type: discard, input: j }\n";

/* A chain branches where an operator feeds several chainable ones, and a
 * join whose two inputs are both in the chain (keyed edges at P=1) merges
 * it again: q4's shape runs as one task at P=1. At P=2 the join's keyed
 * inputs are exchanges: the branches end in two tails. */
START_TEST(test_branching_chain)
{
    char s_branch[2048];
    snprintf(s_branch, sizeof s_branch, s_branch_fmt, "");
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, s_branch, 1), SL_OK);
    const sl_plan_t *p = l.plan;
    ck_assert_int_eq(p->nchains, 1);
    ck_assert_int_eq(p->chains[0].nnodes, 7);
    /* topological: each node after its inputs, the source first */
    int pos[16];
    for (int k = 0; k < p->chains[0].nnodes; k++)
        pos[p->chains[0].nodes[k]] = k;
    ck_assert_int_eq(pos[sl_spec_find(l.spec, "s")], 0);
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].ninputs; k++)
            ck_assert_int_lt(pos[p->nodes[i].inputs[k]], pos[i]);
    const sl_plan_node_t *j = &p->nodes[sl_spec_find(l.spec, "j")];
    ck_assert_int_eq(j->part[0], SL_PART_HASH);
    ck_assert_int_eq(j->part[1], SL_PART_HASH);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl_plan_print(p, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "job br: 1 task,"));
    ck_assert_ptr_nonnull(strstr(text, "<- forward from s, chained\n"));
    ck_assert_ptr_nonnull(strstr(text, "<- hash(id) from a, chained (parallelism 1)"));
    ck_assert_ptr_nonnull(strstr(text, "<- hash(ref) from b, chained (parallelism 1)"));
    free(text);
    s_unload(&l);

    ck_assert_int_eq(s_load(&l, s_branch, 2), SL_OK);
    p = l.plan;
    int s = sl_spec_find(l.spec, "s");
    const char *branch[] = {"fa", "a", "fb", "b"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(p->nodes[sl_spec_find(l.spec, branch[i])].chain, p->nodes[s].chain);
    j = &p->nodes[sl_spec_find(l.spec, "j")];
    ck_assert_int_ne(j->chain, p->nodes[s].chain);
    ck_assert_int_eq(p->chains[j->chain].nodes[0], j->id); /* heads its task */
    ck_assert_int_eq(p->nchains, 2);                       /* s..b; j and its discard sink */
    s_unload(&l);
}
END_TEST

/* What must not chain into a branch: a side output's consumer (its
 * sibling on the main output does), a consumer at another parallelism (its
 * sibling does), and a join whose other input comes from another task. */
START_TEST(test_branching_chain_limits)
{
    const char *late = "name: late\n"
                       "parallelism: 1\n"
                       "sources:\n"
                       "  - name: s\n"
                       "    type: file\n"
                       "    format: csv\n"
                       "    path: s.csv\n"
                       "    schema: { u: string, at: timestamp }\n"
                       "    timestamp: at\n"
                       "operators:\n"
                       "  - name: w\n"
                       "    type: window\n"
                       "    input: s\n"
                       "    key: [u]\n"
                       "    window: { type: tumbling, size: 1s }\n"
                       "    late: late_rows\n"
                       "    aggregates: [{ name: n, fn: count }]\n"
                       "  - { name: m, type: map, input: w, select: { u: u, n: n } }\n"
                       "  - { name: wide, type: map, input: s, parallelism: 2, select: { u: u } }\n"
                       "sinks:\n"
                       "  - { name: o, type: discard, input: m }\n"
                       "  - { name: lo, type: discard, input: late_rows }\n"
                       "  - { name: wo, type: discard, input: wide }\n";
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, late, 0), SL_OK);
    const sl_plan_t *p = l.plan;
    int s = sl_spec_find(l.spec, "s"), w = sl_spec_find(l.spec, "w");
    ck_assert_int_eq(p->nodes[w].chain, p->nodes[s].chain);
    ck_assert_int_eq(p->nodes[sl_spec_find(l.spec, "m")].chain, p->nodes[w].chain);
    ck_assert_int_ne(p->nodes[sl_spec_find(l.spec, "lo")].chain, p->nodes[w].chain);
    ck_assert_int_ne(p->nodes[sl_spec_find(l.spec, "wide")].chain, p->nodes[s].chain);
    s_unload(&l);

    /* b at its own parallelism 2: the join's inputs are in two tasks. */
    char text[2048];
    snprintf(text, sizeof text, s_branch_fmt, ", parallelism: 2");
    ck_assert_int_eq(s_load(&l, text, 1), SL_OK);
    p = l.plan;
    s = sl_spec_find(l.spec, "s");
    ck_assert_int_eq(p->nodes[sl_spec_find(l.spec, "a")].chain, p->nodes[s].chain);
    ck_assert_int_ne(p->nodes[sl_spec_find(l.spec, "b")].chain, p->nodes[s].chain);
    ck_assert_int_ne(p->nodes[sl_spec_find(l.spec, "j")].chain, p->nodes[s].chain);
    s_unload(&l);
}
END_TEST

START_TEST(test_map_types_and_key_by)
{
    const char *text = "name: m\n"
                       "sources:\n"
                       "  - name: s\n"
                       "    type: file\n"
                       "    format: csv\n"
                       "    path: s.csv\n"
                       "    schema: { id: int64, price: double, name: string, at: timestamp }\n"
                       "operators:\n"
                       "  - name: m\n"
                       "    type: map\n"
                       "    input: s\n"
                       "    select:\n"
                       "      total: price * 2\n"
                       "      up: upper(name)\n"
                       "      big: id > 10\n"
                       "      day: substr(cast(at as string), 1, 10)\n"
                       "  - { name: k, type: key_by, input: m, key: up }\n"
                       "  - name: a\n"
                       "    type: aggregate\n"
                       "    input: k\n"
                       "    aggregates:\n"
                       "      - { name: avg, fn: avg, field: total }\n"
                       "      - { name: lo, fn: min, field: day }\n"
                       "      - { name: hi, fn: max, field: total }\n"
                       "sinks:\n"
                       "  - { name: o, type: stdout, input: a }\n";
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, text, 2), SL_OK);
    char buf[256];
    sl_schema_format(l.plan->nodes[sl_spec_find(l.spec, "m")].out, buf, sizeof buf);
    ck_assert_str_eq(buf, "total:double, up:string, big:bool, day:string");
    const sl_plan_node_t *a = &l.plan->nodes[sl_spec_find(l.spec, "a")];
    sl_schema_format(a->out, buf, sizeof buf);
    /* The aggregate is keyed by its upstream key_by. */
    ck_assert_str_eq(buf, "up:string, avg:double, lo:string, hi:double");
    ck_assert_int_eq(a->part[0], SL_PART_HASH);
    s_unload(&l);
}
END_TEST

START_TEST(test_all_errors_reported)
{
    /* Three independent mistakes in three operators: all three reported. */
    const char *text = "name: e\n"
                       "sources:\n"
                       "  - { name: s, type: file, format: csv, path: s.csv, schema: {n: int64} }\n"
                       "operators:\n"
                       "  - { name: a, type: filter, input: s, where: n + 1 }\n"
                       "  - { name: b, type: map, input: s, select: { x: nn } }\n"
                       "  - { name: c, type: aggregat, input: s }\n"
                       "sinks:\n"
                       "  - { name: o, type: stdout, input: a }\n"
                       "  - { name: o2, type: stdout, input: b }\n"
                       "  - { name: o3, type: stdout, input: c }\n";
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, text, 0), SL_SPEC);
    ck_assert_ptr_null(l.plan);
    ck_assert_int_ge(sl_diag_count(l.d), 3);
    int lines[3] = {5, 6, 7}, found = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < sl_diag_count(l.d); i++)
            if (sl_diag_line(l.d, i) == lines[k]) {
                found++;
                break;
            }
    ck_assert_int_eq(found, 3);
    s_unload(&l);
}
END_TEST

START_TEST(test_union_and_fan_out)
{
    const char *text = "name: u\n"
                       "parallelism: 2\n"
                       "sources:\n"
                       "  - { name: a, type: file, format: text, path: a.txt }\n"
                       "  - { name: b, type: file, format: text, path: b.txt, parallelism: 3 }\n"
                       "operators:\n"
                       "  - { name: both, type: union, inputs: [a, b] }\n"
                       "sinks:\n"
                       "  - { name: o1, type: stdout, input: both }\n"
                       "  - { name: o2, type: stdout, input: a }\n";
    s_loaded_t l;
    ck_assert_int_eq(s_load(&l, text, 0), SL_OK);
    const sl_plan_node_t *u = &l.plan->nodes[sl_spec_find(l.spec, "both")];
    ck_assert_int_eq(u->part[0], SL_PART_FORWARD);   /* a: same parallelism */
    ck_assert_int_eq(u->part[1], SL_PART_REBALANCE); /* b: 3 -> 2 */
    /* a feeds two consumers: the union's other input comes rebalanced from
     * another task, and o2 runs at parallelism 1: neither chains. */
    ck_assert_int_ne(u->chain, l.plan->nodes[sl_spec_find(l.spec, "a")].chain);
    ck_assert_int_eq(sl_plan_slots(l.plan), 3);
    s_unload(&l);

    /* A window's late side output has the window's input schema: a union
     * of it with that input (either first) keeps the schema and the event
     * time, so a window can follow; a union of it with another schema
     * names it and its schema. */
    const char *late_fmt =
        "name: u\n"
        "sources:\n"
        "  - { name: s, type: file, format: csv, path: s.csv,"
        " schema: { k: string, at: timestamp }, timestamp: at }\n"
        "  - { name: t, type: file, format: csv, path: t.csv,"
        " schema: { k: string, at: int64 }, timestamp: at }\n"
        "operators:\n"
        "  - { name: w, type: window, input: s, key: [k], late: too_late,"
        " window: { type: tumbling, size: 1s }, aggregates: [{ name: n, fn: count }] }\n"
        "  - { name: both, type: union, inputs: [%s, %s] }\n"
        "  - { name: w2, type: window, input: both, key: [k],"
        " window: { type: tumbling, size: 1m }, aggregates: [{ name: n, fn: count }] }\n"
        "sinks:\n"
        "  - { name: o, type: discard, input: w2 }\n"
        "  - { name: o2, type: discard, input: t }\n";
    const char *pairs[][2] = {{"s", "too_late"}, {"too_late", "s"}};
    char spec[2048];
    for (int i = 0; i < 2; i++) {
        snprintf(spec, sizeof spec, late_fmt, pairs[i][0], pairs[i][1]);
        int rc = s_load(&l, spec, 1);
        if (rc)
            sl_diag_print(l.d, stderr);
        ck_assert_int_eq(rc, SL_OK);
        u = &l.plan->nodes[sl_spec_find(l.spec, "both")];
        ck_assert_int_eq(u->out->nfields, 2);
        ck_assert_str_eq(u->out->fields[1].name, "at");
        ck_assert_int_eq(u->rowtime, 1);
        s_unload(&l);
    }
    snprintf(spec, sizeof spec, late_fmt, "t", "too_late");
    ck_assert_int_eq(s_load(&l, spec, 1), SL_SPEC);
    ck_assert_int_eq(sl_diag_count(l.d), 1);
    ck_assert_str_eq(sl_diag_message(l.d, 0), "union 'both': input 'too_late' has schema "
                                              "(k:string, at:timestamp), but 't' has (k:string, "
                                              "at:int64)");
    s_unload(&l);
}
END_TEST

/* A window result's event time is its window_end less 1 ms (its window's
 * last instant): rowtime names window_end, rowtime_adj is -1, and both
 * follow the field through maps, filters and joins, into the next window;
 * a late side output carries its input's time unadjusted. */
START_TEST(test_window_result_time)
{
    const char *text =
        "name: t\n"
        "sources:\n"
        "  - { name: s, type: file, format: csv, path: s.csv,"
        " schema: { k: string, at: timestamp }, timestamp: at }\n"
        "operators:\n"
        "  - { name: w, type: window, input: s, key: [k], late: too_late,"
        " window: { type: tumbling, size: 10s }, aggregates: [{ name: n, fn: count }] }\n"
        "  - { name: m, type: map, input: w, select: { k: k, e: window_end, n: n } }\n"
        "  - { name: f, type: filter, input: m, where: n > 1 }\n"
        "  - { name: w2, type: window, input: f, key: [k],"
        " window: { type: tumbling, size: 1m }, aggregates: [{ name: c, fn: count }] }\n"
        "  - { name: u, type: union, inputs: [too_late, s] }\n"
        "  - name: j\n"
        "    type: join\n"
        "    kind: interval\n"
        "    inputs: [f, s]\n"
        "    key: { left: [k], right: [k] }\n"
        "    between: [0s, 1s]\n"
        "sinks:\n"
        "  - { name: o1, type: discard, input: w2 }\n"
        "  - { name: o2, type: discard, input: u }\n"
        "  - { name: o3, type: discard, input: j }\n";
    s_loaded_t l;
    int rc = s_load(&l, text, 1);
    if (rc)
        sl_diag_print(l.d, stderr);
    ck_assert_int_eq(rc, SL_OK);
#define S_NODE(name) (&l.plan->nodes[sl_spec_find(l.spec, name)])
    ck_assert_int_eq(S_NODE("s")->rowtime_adj, 0);
    ck_assert_int_eq(S_NODE("w")->win.time_adj, 0);
    ck_assert_int_eq(S_NODE("w")->rowtime, 2); /* window_end */
    ck_assert_int_eq(S_NODE("w")->rowtime_adj, -1);
    ck_assert_int_eq(S_NODE("m")->rowtime, 1);
    ck_assert_int_eq(S_NODE("m")->rowtime_adj, -1);
    ck_assert_int_eq(S_NODE("f")->rowtime, 1);
    ck_assert_int_eq(S_NODE("f")->rowtime_adj, -1);
    ck_assert_int_eq(S_NODE("w2")->win.time_field, 1);
    ck_assert_int_eq(S_NODE("w2")->win.time_adj, -1);
    ck_assert_int_eq(S_NODE("w2")->rowtime_adj, -1);
    ck_assert_int_eq(S_NODE("u")->rowtime, 1); /* the side output's and the source's: at */
    ck_assert_int_eq(S_NODE("u")->rowtime_adj, 0);
    const sl_plan_node_t *j = S_NODE("j");
    ck_assert_int_eq(j->join.ltime, 1);
    ck_assert_int_eq(j->join.ltime_adj, -1);
    ck_assert_int_eq(j->join.rtime_adj, 0);
    ck_assert_int_eq(j->rowtime, 1); /* the left time */
    ck_assert_int_eq(j->rowtime_adj, -1);
#undef S_NODE
    s_unload(&l);
}
END_TEST

/* A file sink's `publish:`: checkpoint makes it a directory of parts that
 * runs at the job's parallelism; it needs checkpoints; other values fail. */
START_TEST(test_file_sink_publish)
{
    char text[600];
    const char *fmt = "name: r\n"
                      "parallelism: 2\n"
                      "%s"
                      "sources:\n"
                      "  - { name: g, type: generator }\n"
                      "sinks:\n"
                      "  - { name: o, type: file, format: csv, path: out, input: g%s }\n";
    s_loaded_t l;
    snprintf(text, sizeof text, fmt, "checkpoint: { interval: 1s }\n", ", publish: checkpoint");
    ck_assert_int_eq(s_load(&l, text, 0), SL_OK);
    const sl_plan_node_t *o = &l.plan->nodes[sl_spec_find(l.spec, "o")];
    ck_assert(o->sink_rolling);
    ck_assert_int_eq(o->parallelism, 2);
    s_unload(&l);
    snprintf(text, sizeof text, fmt, "checkpoint: { interval: 1s }\n", ", publish: end");
    ck_assert_int_eq(s_load(&l, text, 0), SL_OK);
    o = &l.plan->nodes[sl_spec_find(l.spec, "o")];
    ck_assert(!o->sink_rolling);
    ck_assert_int_eq(o->parallelism, 1);
    s_unload(&l);
    const char *bad[][3] = {
        {"", ", publish: checkpoint", "the job needs checkpoint:"},
        {"checkpoint: { interval: 1s }\n", ", publish: often", "expected end or checkpoint"},
        {"checkpoint: { interval: 1s }\n", ", publish: end, parallelism: 2",
         "its parallelism must be 1"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(text, sizeof text, fmt, bad[k][0], bad[k][1]);
        ck_assert_int_eq(s_load(&l, text, 0), SL_SPEC);
        bool found = false;
        for (int i = 0; i < sl_diag_count(l.d); i++)
            found = found || strstr(sl_diag_message(l.d, i), bad[k][2]) != NULL;
        ck_assert_msg(found, "case %zu: no error saying '%s'", k, bad[k][2]);
        s_unload(&l);
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_wordcount_plan);
    tcase_add_test(tc, test_plan_print);
    tcase_add_test(tc, test_keyed_chain_at_p1);
    tcase_add_test(tc, test_nexmark_fused_map);
    tcase_add_test(tc, test_branching_chain);
    tcase_add_test(tc, test_branching_chain_limits);
    tcase_add_test(tc, test_nexmark_fused_filter);
    tcase_add_test(tc, test_map_types_and_key_by);
    tcase_add_test(tc, test_all_errors_reported);
    tcase_add_test(tc, test_union_and_fan_out);
    tcase_add_test(tc, test_file_sink_publish);
    tcase_add_test(tc, test_window_result_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
