/* check_spec.c — the job-spec loader: a valid spec read back node by node,
 * parameters, every job-level error at its exact line:col, the broken-spec
 * corpus in tests/data/specs/bad, and hostile input (deep nesting, alias
 * bombs, oversized files, garbage, mutated specs). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/diag.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "sluice/spec.h"
#include "testutil.h"

#ifndef SL_TEST_DATA
#error "compile with -DSL_TEST_DATA=\"<repo>/tests/data\""
#endif

static const char *const s_wordcount = "name: wordcount\n"
                                       "parallelism: 2\n"
                                       "sources:\n"
                                       "  - name: lines\n"
                                       "    type: file\n"
                                       "    format: text\n"
                                       "    path: ${input:-jobs/data/words.txt}\n"
                                       "operators:\n"
                                       "  - name: words\n"
                                       "    type: flat_map\n"
                                       "    input: lines\n"
                                       "    field: line\n"
                                       "    as: word\n"
                                       "  - name: counts\n"
                                       "    type: aggregate\n"
                                       "    input: words\n"
                                       "    parallelism: 4\n"
                                       "    key: [word]\n"
                                       "    label: \"${who}\"\n"
                                       "    aggregates:\n"
                                       "      - { name: count, fn: count }\n"
                                       "sinks:\n"
                                       "  - name: out\n"
                                       "    type: file\n"
                                       "    format: csv\n"
                                       "    input: counts\n"
                                       "    path: ${output:-/tmp/wordcount.csv}\n";

/* Loads text with params (may be NULL); diagnostics in *d (caller frees). */
static int s_load(const char *text, const sl_params_t *p, sl_diag_t **d, sl_spec_t **s)
{
    *d = sl_diag_new("job.yaml");
    ck_assert_ptr_nonnull(*d);
    return sl_spec_load("job.yaml", text, strlen(text), p, *d, s);
}

/* Index of an error at line:col whose message contains sub, or -1. */
static int s_find_error(const sl_diag_t *d, int line, int col, const char *sub)
{
    for (int i = 0; i < sl_diag_count(d); i++)
        if (sl_diag_line(d, i) == line && sl_diag_col(d, i) == col &&
            strstr(sl_diag_message(d, i), sub))
            return i;
    return -1;
}

static void s_dump(const sl_diag_t *d)
{
    sl_diag_print(d, stderr);
}

/* Asserts text fails to load with an error at line:col containing sub. */
static void s_expect_error(const char *text, int line, int col, const char *sub)
{
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_set(p, "who", "me"), 0);
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    int rc = s_load(text, p, &d, &s);
    if (rc != SL_SPEC || s_find_error(d, line, col, sub) < 0)
        s_dump(d);
    ck_assert_int_eq(rc, SL_SPEC);
    ck_assert_ptr_null(s);
    ck_assert_msg(s_find_error(d, line, col, sub) >= 0, "no error %d:%d '%s' for:\n%s", line, col,
                  sub, text);
    sl_diag_destroy(&d);
    sl_params_destroy(&p);
}

/* ---- a valid spec ----------------------------------------------------------- */

START_TEST(test_valid_wordcount)
{
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_add_kv(p, "output=/data/out.csv"), 0);
    ck_assert_int_eq(sl_params_add_kv(p, "who=alice"), 0);
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    int rc = s_load(s_wordcount, p, &d, &s);
    if (rc)
        s_dump(d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(sl_diag_count(d), 0);
    ck_assert_str_eq(s->file, "job.yaml");
    ck_assert_str_eq(s->name, "wordcount");
    ck_assert_int_eq(s->parallelism, 2);
    ck_assert_int_eq(s->max_parallelism, 128);
    ck_assert_int_eq(s->nnodes, 4);

    const char *names[] = {"lines", "words", "counts", "out"};
    const char *types[] = {"file", "flat_map", "aggregate", "file"};
    sl_role_t roles[] = {SL_ROLE_SOURCE, SL_ROLE_OPERATOR, SL_ROLE_OPERATOR, SL_ROLE_SINK};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(s->nodes[i].name, names[i]);
        ck_assert_str_eq(s->nodes[i].type, types[i]);
        ck_assert_int_eq(s->nodes[i].role, roles[i]);
        ck_assert_int_eq(sl_spec_find(s, names[i]), i);
        ck_assert_ptr_nonnull(s->nodes[i].body);
        ck_assert_int_eq(s->nodes[i].body->kind, SL_Y_MAP);
        ck_assert_int_eq(s->topo[i], i);
    }
    ck_assert_int_eq(sl_spec_find(s, "nope"), -1);
    ck_assert_int_eq(s->nodes[0].ninputs, 0);
    ck_assert_int_eq(s->nodes[1].ninputs, 1);
    ck_assert_int_eq(s->nodes[1].inputs[0], 0);
    ck_assert_int_eq(s->nodes[2].inputs[0], 1);
    ck_assert_int_eq(s->nodes[3].inputs[0], 2);
    ck_assert_int_eq(s->nodes[2].parallelism, 4);
    ck_assert_int_eq(s->nodes[1].parallelism, 0);

    /* positions: `input: lines` of words is at 11:12, its type at 10:11 */
    ck_assert_int_eq(s->nodes[1].input_nodes[0]->line, 11);
    ck_assert_int_eq(s->nodes[1].input_nodes[0]->col, 12);
    ck_assert_int_eq(s->nodes[1].type_node->line, 10);
    ck_assert_int_eq(s->nodes[1].type_node->col, 11);
    ck_assert_int_eq(s->nodes[1].body->line, 9);
    ck_assert_int_eq(s->nodes[1].body->col, 5);
    const sl_ynode_t *k = sl_ynode_key(s->nodes[1].body, "field");
    ck_assert_int_eq(k->line, 12);
    ck_assert_int_eq(k->col, 5);
    ck_assert_ptr_null(sl_ynode_key(s->nodes[1].body, "nope"));

    /* parameters: default used, --param wins, quoted flag kept */
    const sl_ynode_t *path = sl_ynode_get(s->nodes[0].body, "path");
    ck_assert_str_eq(path->str, "jobs/data/words.txt");
    ck_assert(!path->quoted);
    ck_assert_str_eq(sl_ynode_get(s->nodes[3].body, "path")->str, "/data/out.csv");
    const sl_ynode_t *label = sl_ynode_get(s->nodes[2].body, "label");
    ck_assert_str_eq(label->str, "alice");
    ck_assert(label->quoted);
    ck_assert_int_eq(label->line, 19);
    ck_assert_int_eq(label->col, 12);

    /* nested structure left for the planner */
    const sl_ynode_t *aggs = sl_ynode_get(s->nodes[2].body, "aggregates");
    ck_assert_int_eq(aggs->kind, SL_Y_SEQ);
    ck_assert_int_eq(aggs->n, 1);
    ck_assert_str_eq(sl_ynode_get(aggs->items[0], "fn")->str, "count");
    ck_assert_int_eq(aggs->items[0]->line, 21);
    ck_assert_int_eq(aggs->items[0]->col, 9);
    ck_assert_str_eq(sl_ynode_get(s->nodes[2].body, "key")->items[0]->str, "word");

    sl_spec_destroy(&s);
    ck_assert_ptr_null(s);
    sl_spec_destroy(&s); /* NULL is fine */
    sl_diag_destroy(&d);
    sl_params_destroy(&p);
}
END_TEST

START_TEST(test_topo_ties_in_file_order)
{
    /* b and c both depend on a; a union reads both; d is independent. The
     * sinks are listed before the operators in the file. */
    const char *text = "name: diamond\n"
                       "sinks:\n"
                       "  - { name: out, type: stdout, input: u }\n"
                       "  - { name: out2, type: stdout, input: d }\n"
                       "operators:\n"
                       "  - { name: u, type: union, inputs: [c, b] }\n"
                       "  - { name: c, type: filter, input: a }\n"
                       "  - { name: b, type: filter, input: a }\n"
                       "sources:\n"
                       "  - { name: a, type: file }\n"
                       "  - { name: d, type: file }\n";
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    ck_assert_int_eq(s_load(text, NULL, &d, &s), 0);
    /* nodes: a d u c b out out2 */
    const char *order[] = {"a", "d", "u", "c", "b", "out", "out2"};
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq(s->nodes[i].name, order[i]);
    ck_assert_int_eq(s->nodes[2].ninputs, 2);
    ck_assert_int_eq(s->nodes[2].inputs[0], 3);
    ck_assert_int_eq(s->nodes[2].inputs[1], 4);
    /* Kahn, smallest index first: a d c b u out out2 */
    const char *topo[] = {"a", "d", "c", "b", "u", "out", "out2"};
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq(s->nodes[s->topo[i]].name, topo[i]);
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
}
END_TEST

START_TEST(test_params_api)
{
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_add_kv(p, "novalue"), SL_INVAL);
    ck_assert_int_eq(sl_params_add_kv(p, "=x"), SL_INVAL);
    ck_assert_int_eq(sl_params_add_kv(p, "9a=x"), SL_INVAL);
    ck_assert_int_eq(sl_params_add_kv(p, "a b=x"), SL_INVAL);
    ck_assert_int_eq(sl_params_set(p, "", "x"), SL_INVAL);
    ck_assert_int_eq(sl_params_count(p), 0);
    ck_assert_int_eq(sl_params_add_kv(p, "in.path-1=a=b"), 0);
    ck_assert_int_eq(sl_params_add_kv(p, "_x="), 0);
    ck_assert_int_eq(sl_params_count(p), 2);
    ck_assert_str_eq(sl_params_get(p, "in.path-1"), "a=b");
    ck_assert_str_eq(sl_params_get(p, "_x"), "");
    ck_assert_int_eq(sl_params_set(p, "in.path-1", "c"), 0);
    ck_assert_int_eq(sl_params_count(p), 2);
    ck_assert_str_eq(sl_params_get(p, "in.path-1"), "c");
    ck_assert_ptr_null(sl_params_get(p, "in"));
    ck_assert_str_eq(sl_params_name(p, 1), "_x");
    ck_assert_str_eq(sl_params_value(p, 0), "c");
    ck_assert_ptr_null(sl_params_name(p, 2));
    sl_params_destroy(&p);
    ck_assert_ptr_null(p);
    sl_params_destroy(&p);
}
END_TEST

START_TEST(test_params_section_and_escapes)
{
    const char *text = "name: ${job:-j}\n"
                       "params:\n"
                       "  dir: /data\n"
                       "  mode: fast\n"
                       "  user:\n"
                       "sources:\n"
                       "  - name: src\n"
                       "    type: file\n"
                       "    path: ${dir}/in-${mode}.txt\n"
                       "    note: cost ${price} USD and $${literal}\n"
                       "    empty: ${blank:-fallback}\n"
                       "    user: ${user:-nobody}\n"
                       "sinks:\n"
                       "  - name: out\n"
                       "    type: stdout\n"
                       "    input: src\n"
                       "    parallelism: ${p:-3}\n";
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_set(p, "mode", "slow"), 0);
    ck_assert_int_eq(sl_params_set(p, "blank", ""), 0);
    ck_assert_int_eq(sl_params_set(p, "price", "5"), 0);
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    int rc = s_load(text, p, &d, &s);
    if (rc)
        s_dump(d);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(s->name, "j");
    const sl_ynode_t *b = s->nodes[0].body;
    ck_assert_str_eq(sl_ynode_get(b, "path")->str, "/data/in-slow.txt"); /* --param wins */
    ck_assert_str_eq(sl_ynode_get(b, "note")->str, "cost 5 USD and ${literal}");
    ck_assert_str_eq(sl_ynode_get(b, "empty")->str, "fallback"); /* as in the shell */
    ck_assert_str_eq(sl_ynode_get(b, "user")->str, "nobody");
    ck_assert_int_eq(s->nodes[1].parallelism, 3); /* a substituted plain scalar is a number */
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);

    /* declared without a default and not given: an error naming it */
    const char *t2 = "name: j\n"
                     "params: { user: }\n"
                     "sources: [{ name: a, type: file, owner: \"${user}\" }]\n"
                     "sinks: [{ name: b, type: stdout, input: a }]\n";
    s_expect_error(t2, 3, 41, "parameter 'user' has no value");
    s_expect_error("name: j\nparams: [a]\nsources: [{name: a, type: f}]\n"
                   "sinks: [{name: b, type: s, input: a}]\n",
                   2, 9, "params must be a mapping");
    s_expect_error("name: j\nparams: {9x: 1}\nsources: [{name: a, type: f}]\n"
                   "sinks: [{name: b, type: s, input: a}]\n",
                   2, 10, "invalid parameter name '9x'");
    sl_params_destroy(&p);
}
END_TEST

START_TEST(test_ynode_helpers)
{
    const char *text = "name: j\n"
                       "sources:\n"
                       "  - name: a\n"
                       "    type: file\n"
                       "    i1: 12abc\n"
                       "    i2: 99999999999999999999\n"
                       "    i3: 1.5\n"
                       "    i4: -3\n"
                       "    i5: \"7\"\n"
                       "    i6: [1]\n"
                       "    i7: +42\n"
                       "    b1: Yes\n"
                       "    b2: off\n"
                       "    b3: maybe\n"
                       "    b4: 'true'\n"
                       "    s1: { a: 1 }\n"
                       "    s2: hello\n"
                       "sinks: [{ name: b, type: stdout, input: a }]\n";
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    ck_assert_int_eq(s_load(text, NULL, &d, &s), 0);
    const sl_ynode_t *m = s->nodes[0].body;
    long long v = 0;
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i1"), 0, 100, d, "i1", &v), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 5, 9, "i1 must be an integer (got '12abc')"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i2"), LLONG_MIN, LLONG_MAX, d, "i2", &v),
                     SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 6, 9, "i2 must be between"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i3"), 0, 100, d, "i3", &v), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 7, 9, "i3 must be a whole number"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i4"), 0, 100, d, "i4", &v), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 8, 9, "i4 must be between 0 and 100 (got -3)"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i4"), -10, 100, d, "i4", &v), 0);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i5"), 0, 100, d, "i5", &v), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 9, 9, "not the string"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i6"), 0, 100, d, "i6", &v), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 10, 9, "i6 must be an integer, not a list"), 0);
    ck_assert_int_eq(sl_ynode_int(sl_ynode_get(m, "i7"), 0, 100, d, "i7", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(sl_ynode_int(NULL, 0, 100, d, "i8", &v), SL_SPEC);

    bool b = false;
    ck_assert_int_eq(sl_ynode_bool(sl_ynode_get(m, "b1"), d, "b1", &b), 0);
    ck_assert(b);
    ck_assert_int_eq(sl_ynode_bool(sl_ynode_get(m, "b2"), d, "b2", &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(sl_ynode_bool(sl_ynode_get(m, "b3"), d, "b3", &b), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 14, 9, "b3 must be true or false"), 0);
    ck_assert_int_eq(sl_ynode_bool(sl_ynode_get(m, "b4"), d, "b4", &b), SL_SPEC);

    ck_assert_ptr_null(sl_ynode_str(sl_ynode_get(m, "s1"), d, "s1"));
    ck_assert_int_ge(s_find_error(d, 16, 9, "s1 must be a string"), 0);
    ck_assert_str_eq(sl_ynode_str(sl_ynode_get(m, "s2"), d, "s2"), "hello");
    ck_assert_ptr_null(sl_ynode_get(sl_ynode_get(m, "s2"), "x")); /* not a mapping */

    int before = sl_diag_count(d);
    const char *allowed[] = {"name", "type", "path", "format"};
    ck_assert_int_eq(sl_ynode_check_keys(m, allowed, 4, d, "field of a file source"), 13);
    ck_assert_int_eq(sl_diag_count(d), before + 13);
    int i = s_find_error(d, 5, 5, "unknown field of a file source 'i1'");
    ck_assert_int_ge(i, 0);
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);

    /* the did-you-mean hint */
    ck_assert_int_eq(s_load("name: j\nsources: [{name: a, type: file, fromat: csv}]\n"
                            "sinks: [{name: b, type: stdout, input: a}]\n",
                            NULL, &d, &s),
                     0);
    ck_assert_int_eq(sl_ynode_check_keys(s->nodes[0].body, allowed, 4, d, "field"), 1);
    ck_assert_int_eq(sl_diag_line(d, 0), 2);
    ck_assert_int_eq(sl_diag_col(d, 0), 33);
    ck_assert_str_eq(sl_diag_hint_of(d, 0), "did you mean 'format'?");
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
}
END_TEST

/* ---- job-level errors, each at its exact position ------------------------- */

#define S_SRC "sources:\n  - name: a\n    type: file\n" /* lines +0..+2 */
#define S_SINK "sinks:\n  - name: z\n    type: stdout\n    input: a\n"

/* `state:`: the backend and its sizes; defaults heap, 8 MB, 4 MB, 32 MB. */
START_TEST(test_state_backend)
{
    const char *ok =
        "name: j\nstate: {backend: rocksdb, block_cache: 1MB, write_buffer: 512KB, key_cache: "
        "2MB}\n" S_SRC S_SINK;
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    ck_assert_int_eq(s_load(ok, NULL, &d, &s), SL_OK);
    ck_assert(s->state_rocksdb);
    ck_assert_int_eq(s->state_cache, 1 << 20);
    ck_assert_int_eq(s->state_wbuf, 512 << 10);
    ck_assert_int_eq(s->state_key_cache, 2 << 20);
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
    ck_assert_int_eq(s_load("name: j\n" S_SRC S_SINK, NULL, &d, &s), SL_OK);
    ck_assert(!s->state_rocksdb);
    ck_assert_int_eq(s->state_cache, 8 << 20);
    ck_assert_int_eq(s->state_wbuf, 4 << 20);
    ck_assert_int_eq(s->state_key_cache, 32 << 20);
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
    s_expect_error("name: j\nstate: {backend: rocks}\n" S_SRC S_SINK, 2, 18,
                   "unknown state backend 'rocks' (heap or rocksdb)");
    s_expect_error("name: j\nstate: {block_cache: 8 MB}\n" S_SRC S_SINK, 2, 22,
                   "state block_cache must be a size like 8MB");
    s_expect_error("name: j\nstate: {write_buffer: 1KB}\n" S_SRC S_SINK, 2, 23,
                   "state write_buffer must be between 64 KB and 4096 MB");
    s_expect_error("name: j\nstate: {key_cache: 1KB}\n" S_SRC S_SINK, 2, 20,
                   "state key_cache must be between 64 KB and");
    s_expect_error("name: j\nstate: {backend: heap, cache: 1MB}\n" S_SRC S_SINK, 2, 24, "cache");
    s_expect_error("name: j\nstate: rocksdb\n" S_SRC S_SINK, 2, 8, "state must be a mapping");
}
END_TEST

START_TEST(test_job_errors)
{
    s_expect_error("- a\n- b\n", 1, 1, "must be a mapping, not a list");
    s_expect_error("name: j\nparallelism: 2\noperatrs: []\n" S_SRC S_SINK, 3, 1,
                   "unknown top-level field 'operatrs'");
    s_expect_error("parallelism: 2\n" S_SRC S_SINK, 1, 1, "missing required field 'name'");
    s_expect_error("name: {a: 1}\n" S_SRC S_SINK, 1, 7, "name must be a string, not a mapping");
    s_expect_error("name:\n" S_SRC S_SINK, 1, 6, "name must not be empty");
    s_expect_error("name: j\nparallelism: 0\n" S_SRC S_SINK, 2, 14, "between 1 and 1024");
    s_expect_error("name: j\nparallelism: 1025\n" S_SRC S_SINK, 2, 14, "between 1 and 1024");
    s_expect_error("name: j\nparallelism: two\n" S_SRC S_SINK, 2, 14, "must be an integer");
    s_expect_error("name: j\nmax_parallelism: 32769\n" S_SRC S_SINK, 2, 18, "between 1 and 32768");
    s_expect_error("name: j\nparallelism: 8\nmax_parallelism: 4\n" S_SRC S_SINK, 3, 18,
                   "max_parallelism (4) must be at least parallelism (8)");
    s_expect_error("name: j\ndescription: [x]\n" S_SRC S_SINK, 2, 14,
                   "description must be a string");
    s_expect_error("name: j\n" S_SINK, 1, 1, "missing required field 'sources'");
    s_expect_error("name: j\n" S_SRC, 1, 1, "missing required field 'sinks'");
    s_expect_error("name: j\nsources: []\n" S_SINK, 2, 10, "at least one source");
    s_expect_error("name: j\n" S_SRC "sinks:\n", 5, 7, "at least one sink");
    s_expect_error("name: j\nsources: a\n" S_SINK, 2, 10, "sources must be a list of nodes");
    s_expect_error("name: j\n" S_SRC "operators: {x: 1}\n" S_SINK, 5, 12,
                   "operators must be a list");
    s_expect_error("name: j\n" S_SRC "  - just a string\n" S_SINK, 5, 5,
                   "each source must be a mapping");
    s_expect_error("name: j\n" S_SRC "  - type: file\n" S_SINK, 5, 5, "source has no 'name'");
    s_expect_error("name: j\n" S_SRC "  - name: b\n" S_SINK, 5, 5, "source 'b' has no 'type'");
    s_expect_error("name: j\n" S_SRC "  - name: b\n    type: [x]\n" S_SINK, 6, 11,
                   "type must be a string");
    s_expect_error("name: j\n" S_SRC "  - name: a\n    type: file\n" S_SINK, 5, 11,
                   "duplicate node name 'a'");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: a\n    type: stdout\n    input: a\n", 6, 11,
                   "duplicate node name 'a'");
    s_expect_error("name: j\n" S_SRC "    input: x\n" S_SINK, 5, 5,
                   "source 'a' cannot have 'input'");
    s_expect_error("name: j\n" S_SRC "    inputs: [x]\n" S_SINK, 5, 5,
                   "source 'a' cannot have 'inputs'");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n", 6, 5,
                   "sink 'z' has no 'input'");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    input: a\n"
                   "    inputs: [a]\n",
                   9, 5, "has both 'input' and 'inputs'");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    input: [a]\n", 8,
                   12, "must be a node name, not a list");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    inputs: a\n", 8,
                   13, "inputs of sink 'z' must be a list");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    inputs: []\n", 8,
                   13, "must not be empty");
    s_expect_error("name: j\n" S_SRC
                   "sinks:\n  - name: z\n    type: stdout\n    inputs: [a, {b: 1}]\n",
                   8, 17, "must be a node name, not a mapping");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    inputs: [a, a]\n",
                   8, 17, "input 'a' is listed twice");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    input: b\n", 8, 12,
                   "unknown input 'b'");
    s_expect_error("name: j\n" S_SRC "sinks:\n  - name: z\n    type: stdout\n    input: z\n", 8, 12,
                   "input 'z' is a sink");
    s_expect_error("name: j\n" S_SRC "    parallelism: 0\n" S_SINK, 5, 18,
                   "parallelism of source 'a' must be between 1 and 1024");
    s_expect_error("name: j\nmax_parallelism: 8\n" S_SRC "    parallelism: 16\n" S_SINK, 6, 18,
                   "exceeds max_parallelism (8)");
    /* a self-loop and a three-node cycle, reported at the first node's input */
    s_expect_error("name: j\n" S_SRC
                   "operators:\n  - name: m\n    type: map\n    input: m\n" S_SINK,
                   8, 12, "cycle: m -> m");
    s_expect_error("name: j\n" S_SRC "operators:\n"
                   "  - { name: x, type: map, inputs: [a, z2] }\n"   /* 6 */
                   "  - { name: y, type: map, input: x }\n"          /* 7 */
                   "  - { name: z2, type: map, input: y }\n" S_SINK, /* 8 */
                   6, 39, "cycle: x -> y -> z2 -> x");
}
END_TEST

START_TEST(test_unknown_input_hint)
{
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    ck_assert_int_eq(s_load("name: j\nsources: [{name: lines, type: file}]\n"
                            "sinks: [{name: out, type: stdout, input: lnes}]\n",
                            NULL, &d, &s),
                     SL_SPEC);
    ck_assert_int_eq(sl_diag_count(d), 1);
    ck_assert_int_eq(sl_diag_line(d, 0), 3);
    ck_assert_int_eq(sl_diag_col(d, 0), 42);
    ck_assert_str_eq(sl_diag_hint_of(d, 0), "did you mean 'lines'?");
    sl_diag_destroy(&d);
}
END_TEST

START_TEST(test_errors_are_all_collected)
{
    const char *text = "name: j\n"          /* 1 */
                       "parallelism: 0\n"   /* 2 */
                       "colour: red\n"      /* 3 */
                       "sources:\n"         /* 4 */
                       "  - name: a\n"      /* 5 */
                       "    type: file\n"   /* 6 */
                       "    input: q\n"     /* 7 */
                       "    p: ${nope}\n"   /* 8 */
                       "    type: again\n"  /* 9 */
                       "sinks:\n"           /* 10 */
                       "  - name: a\n"      /* 11 */
                       "    type: stdout\n" /* 12 */
                       "    input: b\n";    /* 13 */
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    ck_assert_int_eq(s_load(text, NULL, &d, &s), SL_SPEC);
    ck_assert_int_ge(s_find_error(d, 2, 14, "parallelism"), 0);
    ck_assert_int_ge(s_find_error(d, 3, 1, "unknown top-level field 'colour'"), 0);
    ck_assert_int_ge(s_find_error(d, 7, 5, "cannot have 'input'"), 0);
    ck_assert_int_ge(s_find_error(d, 8, 8, "unknown parameter 'nope'"), 0);
    ck_assert_int_ge(s_find_error(d, 9, 5, "duplicate key 'type'"), 0);
    ck_assert_int_ge(s_find_error(d, 11, 11, "duplicate node name 'a'"), 0);
    ck_assert_int_ge(s_find_error(d, 13, 12, "unknown input 'b'"), 0);
    ck_assert_int_eq(sl_diag_count(d), 7);
    sl_diag_destroy(&d);
}
END_TEST

START_TEST(test_yaml_level_errors)
{
    s_expect_error("name: j\nsources:\n  - name: a\n\ttype: file\n", 4, 1, "YAML syntax error");
    s_expect_error("name: \"j\n", 2, 1, "YAML syntax error: found unexpected end of stream");
    s_expect_error("name: j\n  bad: indent\n", 2, 6, "YAML syntax error");
    s_expect_error("# only a comment\n", 1, 1, "the file is empty");
    s_expect_error("", 1, 1, "the file is empty");
    s_expect_error("---\n...\n", 1, 1, "the file is empty");
    s_expect_error("name: j\n" S_SRC S_SINK "---\nname: k\n", 9, 1, "a second YAML document");
    s_expect_error("name: &n j\n" S_SRC "    label: *n\n" S_SINK, 5, 12,
                   "YAML aliases are not supported (*n)");
    s_expect_error("name: j\nname: k\n" S_SRC S_SINK, 2, 1, "duplicate key 'name'");
    s_expect_error("name: j\n{x: 1}: y\n" S_SRC S_SINK, 2, 1, "mapping keys must be plain strings");
    s_expect_error("name: j\n" S_SRC "    path: ${in\n" S_SINK, 5, 11, "unterminated '${'");
    s_expect_error("name: j\n" S_SRC "    path: \"${in put}\"\n" S_SINK, 5, 11,
                   "invalid parameter reference '${in put}'");
    s_expect_error("name: j\n" S_SRC "    path: \"a\\0b\"\n" S_SINK, 5, 11, "NUL characters");
    s_expect_error("name: j\xff\n", 1, 8, "invalid text");
}
END_TEST

START_TEST(test_tags_and_anchors)
{
    /* tags are ignored, an anchor alone is fine */
    const char *text = "name: !!str j\n"
                       "parallelism: !!int 3\n"
                       "sources:\n"
                       "  - &src { name: a, type: !custom file }\n"
                       "sinks: [{ name: b, type: stdout, input: a, parallelism: 1000 }]\n";
    sl_diag_t *d = NULL;
    sl_spec_t *s = NULL;
    int rc = s_load(text, NULL, &d, &s);
    if (rc)
        s_dump(d);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(s->name, "j");
    ck_assert_int_eq(s->parallelism, 3);
    ck_assert_str_eq(s->nodes[0].type, "file");
    ck_assert_int_eq(s->nodes[1].parallelism, 1000);
    ck_assert_int_eq(s->max_parallelism, 1024); /* default raised to fit, power of two */
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
}
END_TEST

START_TEST(test_load_file)
{
    char *dir = sl_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    sl_test_write_file(path, s_wordcount);
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_set(p, "who", "me"), 0);
    sl_diag_t *d = sl_diag_new(path);
    sl_spec_t *s = NULL;
    ck_assert_int_eq(sl_spec_load_file(path, p, d, &s), 0);
    ck_assert_str_eq(s->file, path);
    ck_assert_int_eq(s->nnodes, 4);
    sl_spec_destroy(&s);

    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    ck_assert_int_ne(sl_spec_load_file(path, p, d, &s), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(sl_diag_count(d), 1);
    ck_assert_int_eq(sl_diag_line(d, 0), 0);
    ck_assert_int_eq(sl_diag_col(d, 0), 0);
    ck_assert_str_eq(sl_diag_message(d, 0), "cannot read: No such file or directory");
    sl_diag_destroy(&d);
    sl_params_destroy(&p);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

/* ---- the corpus of broken specs ------------------------------------------ */

START_TEST(test_bad_corpus)
{
    const char *dirpath = SL_TEST_DATA "/specs/bad";
    DIR *dir = opendir(dirpath);
    ck_assert_msg(dir != NULL, "cannot open %s", dirpath);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".yaml") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        char *text = sl_test_read_file(path, NULL);
        ck_assert_ptr_nonnull(text);
        int line = 0, col = 0, off = 0;
        int got = sscanf(text, "# expect: %d:%d: %n", &line, &col, &off);
        ck_assert_msg(got == 2 && off > 0, "%s: first line must be '# expect: L:C: text'",
                      e->d_name);
        char *sub = text + off, *nlp = strchr(sub, '\n');
        if (nlp)
            *nlp = '\0';
        ck_assert_msg(*sub != '\0', "%s: empty expected message", e->d_name);

        sl_diag_t *d = sl_diag_new(path);
        sl_spec_t *s = NULL;
        sl_plan_t *plan = NULL;
        /* Job-level and planner-level mistakes alike: the full load. */
        int rc = sl_plan_load(path, NULL, 0, NULL, 0, d, &s, &plan);
        ck_assert_msg(rc != 0 && s == NULL && plan == NULL, "%s: loaded although broken",
                      e->d_name);
        ck_assert_msg(sl_diag_count(d) > 0, "%s: failed without an error", e->d_name);
        /* the first error in sl_diag_print order (smallest position, stable) */
        int first = 0;
        for (int i = 1; i < sl_diag_count(d); i++) {
            int l = sl_diag_line(d, i), c = sl_diag_col(d, i);
            int fl = sl_diag_line(d, first), fc = sl_diag_col(d, first);
            if (l < fl || (l == fl && c < fc))
                first = i;
        }
        if (s_find_error(d, line, col, sub) < 0 || sl_diag_line(d, first) != line ||
            sl_diag_col(d, first) != col || !strstr(sl_diag_message(d, first), sub))
            s_dump(d);
        ck_assert_msg(s_find_error(d, line, col, sub) >= 0, "%s: no error at %d:%d with '%s'",
                      e->d_name, line, col, sub);
        ck_assert_msg(sl_diag_line(d, first) == line && sl_diag_col(d, first) == col &&
                          strstr(sl_diag_message(d, first), sub),
                      "%s: first error is %d:%d '%s'", e->d_name, sl_diag_line(d, first),
                      sl_diag_col(d, first), sl_diag_message(d, first));
        sl_diag_destroy(&d);
        free(text);
        files++;
    }
    closedir(dir);
    ck_assert_int_ge(files, 30);
}
END_TEST

/* ---- hostile input ------------------------------------------------------- */

static void s_expect_rejected(const char *text, size_t len, const char *sub)
{
    sl_diag_t *d = sl_diag_new("x.yaml");
    sl_spec_t *s = NULL;
    ck_assert_int_eq(sl_spec_load("x.yaml", text, len, NULL, d, &s), SL_SPEC);
    ck_assert_ptr_null(s);
    bool found = false;
    for (int i = 0; i < sl_diag_count(d); i++)
        found = found || strstr(sl_diag_message(d, i), sub);
    if (!found)
        s_dump(d);
    ck_assert_msg(found, "no error containing '%s'", sub);
    sl_diag_destroy(&d);
}

START_TEST(test_deep_nesting)
{
    enum { DEPTH = 10000 };
    char *buf = malloc(5 * DEPTH + 64);
    ck_assert_ptr_nonnull(buf);
    /* flow sequences */
    size_t n = 0;
    for (int i = 0; i < DEPTH; i++)
        buf[n++] = '[';
    for (int i = 0; i < DEPTH; i++)
        buf[n++] = ']';
    s_expect_rejected(buf, n, "nesting too deep");
    /* flow mappings inside a valid-looking job */
    n = (size_t)sprintf(buf, "name: j\nx: ");
    for (int i = 0; i < DEPTH; i++)
        n += (size_t)sprintf(buf + n, "{a: ");
    for (int i = 0; i < DEPTH; i++)
        buf[n++] = '}';
    s_expect_rejected(buf, n, "nesting too deep");
    /* block sequences: "- - - - x" */
    n = 0;
    for (int i = 0; i < DEPTH; i++) {
        buf[n++] = '-';
        buf[n++] = ' ';
    }
    buf[n++] = 'x';
    s_expect_rejected(buf, n, "nesting too deep");
    free(buf);

    /* exactly the limit is fine as a tree; the spec is then checked */
    char ok[256];
    n = (size_t)sprintf(ok, "x: ");
    for (int i = 1; i < SL_SPEC_MAX_DEPTH; i++)
        ok[n++] = '[';
    for (int i = 1; i < SL_SPEC_MAX_DEPTH; i++)
        ok[n++] = ']';
    s_expect_rejected(ok, n, "missing required field 'name'");
}
END_TEST

START_TEST(test_billion_laughs)
{
    char buf[4096];
    size_t n = (size_t)sprintf(buf, "name: lol\na: &a [lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (char c = 'b'; c <= 'z'; c++)
        n += (size_t)sprintf(buf + n, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c,
                             c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    n += (size_t)sprintf(buf + n, "sources: [{name: s, type: file, path: *z}]\n");
    s_expect_rejected(buf, n, "YAML aliases are not supported (*a)");
}
END_TEST

START_TEST(test_size_and_node_caps)
{
    /* 2 MiB: rejected before parsing, from memory and from a file */
    size_t big = 2 * 1024 * 1024;
    char *buf = malloc(big + 1);
    ck_assert_ptr_nonnull(buf);
    memset(buf, '#', big);
    buf[big] = '\0';
    s_expect_rejected(buf, big, "file too large");
    char *dir = sl_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    sl_test_write_file(path, buf);
    sl_diag_t *d = sl_diag_new(path);
    sl_spec_t *s = NULL;
    ck_assert_int_eq(sl_spec_load_file(path, NULL, d, &s), SL_SPEC);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(sl_diag_message(d, 0), "file too large"));
    sl_diag_destroy(&d);
    sl_test_rmrf(dir);
    free(dir);

    /* more nodes than SL_SPEC_MAX_NODES within the size cap */
    size_t n = (size_t)sprintf(buf, "x: [");
    for (int i = 0; i < SL_SPEC_MAX_NODES + 10; i++) {
        buf[n++] = '1';
        buf[n++] = ',';
    }
    buf[n++] = ']';
    ck_assert_uint_le(n, SL_SPEC_MAX_BYTES);
    s_expect_rejected(buf, n, "too many YAML nodes");

    /* a mapping with 40000 keys, all duplicates of one: fast, capped errors */
    n = 0;
    for (int i = 0; i < 40000; i++)
        n += (size_t)sprintf(buf + n, "k: %d\n", i);
    s_expect_rejected(buf, n, "duplicate key 'k'");

    /* parameter expansion cannot blow up */
    sl_params_t *p = sl_params_new();
    char *val = malloc(1024 * 1024 + 1);
    ck_assert_ptr_nonnull(val);
    memset(val, 'v', 1024 * 1024);
    val[1024 * 1024] = '\0';
    ck_assert_int_eq(sl_params_set(p, "v", val), 0);
    n = (size_t)sprintf(buf, "name: j\nx:\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "  - ${v}\n");
    d = sl_diag_new("x");
    ck_assert_int_eq(sl_spec_load("x", buf, n, p, d, &s), SL_SPEC);
    ck_assert_ptr_nonnull(strstr(sl_diag_message(d, 0), "parameters expand to more than"));
    sl_diag_destroy(&d);
    sl_params_destroy(&p);
    free(val);
    free(buf);
}
END_TEST

static uint32_t s_rand(uint64_t *st)
{
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*st >> 33);
}

/* Loads text of len bytes; on success the result must be consistent.
 * Returns whether it loaded. */
static bool s_load_any(const char *text, size_t len, const sl_params_t *p)
{
    sl_diag_t *d = sl_diag_new("fuzz.yaml");
    sl_spec_t *s = NULL;
    int rc = sl_spec_load("fuzz.yaml", text, len, p, d, &s);
    if (rc == 0) {
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(sl_diag_count(d), 0);
        ck_assert_int_gt(s->nnodes, 1);
        char seen[256] = {0};
        ck_assert_int_le(s->nnodes, 256);
        for (int i = 0; i < s->nnodes; i++) {
            int t = s->topo[i];
            ck_assert(t >= 0 && t < s->nnodes && !seen[t]);
            seen[t] = 1;
            for (int k = 0; k < s->nodes[t].ninputs; k++) /* inputs come earlier */
                ck_assert(seen[s->nodes[t].inputs[k]]);
        }
    } else {
        ck_assert_ptr_null(s);
        ck_assert_int_gt(sl_diag_count(d), 0);
    }
    sl_spec_destroy(&s);
    sl_diag_destroy(&d);
    return rc == 0;
}

START_TEST(test_garbage_bytes)
{
    uint64_t st = 12345;
    char buf[600];
    for (int it = 0; it < 1000; it++) {
        size_t n = s_rand(&st) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(s_rand(&st) & 0xff);
        sl_diag_t *d = sl_diag_new("g");
        sl_spec_t *s = NULL;
        ck_assert_int_ne(sl_spec_load("g", buf, n, NULL, d, &s), 0);
        ck_assert_ptr_null(s);
        sl_diag_destroy(&d);
    }
}
END_TEST

START_TEST(test_fuzz_mutations)
{
    static const char special[] = ":-[]{}&*!|>'\"#\n \t$%,?@`~\\0123456789";
    sl_params_t *p = sl_params_new();
    ck_assert_int_eq(sl_params_set(p, "who", "fuzz"), 0);
    size_t base = strlen(s_wordcount);
    char *buf = malloc(base * 4 + 64);
    ck_assert_ptr_nonnull(buf);
    uint64_t st = 42;
    int ok = 0;
    for (int it = 0; it < 4000; it++) {
        memcpy(buf, s_wordcount, base);
        size_t n = base;
        int muts = 1 + (int)(s_rand(&st) % 6);
        for (int m = 0; m < muts && n > 0; m++) {
            size_t at = s_rand(&st) % n;
            switch (s_rand(&st) % 5) {
            case 0: /* replace with a YAML-significant character */
                buf[at] = special[s_rand(&st) % (sizeof special - 1)];
                break;
            case 1: /* replace with any byte */
                buf[at] = (char)(s_rand(&st) & 0xff);
                break;
            case 2: { /* delete a run */
                size_t len = 1 + s_rand(&st) % 16;
                if (len > n - at)
                    len = n - at;
                memmove(buf + at, buf + at + len, n - at - len);
                n -= len;
                break;
            }
            case 3: { /* duplicate a run (keeps lines and names repeating) */
                size_t len = 1 + s_rand(&st) % 40;
                if (len > n - at)
                    len = n - at;
                if (n + len > base * 4)
                    break;
                memmove(buf + at + len, buf + at, n - at);
                n += len;
                break;
            }
            default: /* swap two bytes */
            {
                size_t b = s_rand(&st) % n;
                char t = buf[at];
                buf[at] = buf[b];
                buf[b] = t;
            }
            }
        }
        if (s_load_any(buf, n, p))
            ok++;
    }
    /* the loop must exercise both outcomes */
    ck_assert_int_gt(ok, 0);
    ck_assert_int_lt(ok, 4000);
    free(buf);
    sl_params_destroy(&p);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, test_valid_wordcount);
    tcase_add_test(tc, test_topo_ties_in_file_order);
    tcase_add_test(tc, test_params_api);
    tcase_add_test(tc, test_params_section_and_escapes);
    tcase_add_test(tc, test_ynode_helpers);
    tcase_add_test(tc, test_job_errors);
    tcase_add_test(tc, test_unknown_input_hint);
    tcase_add_test(tc, test_errors_are_all_collected);
    tcase_add_test(tc, test_yaml_level_errors);
    tcase_add_test(tc, test_tags_and_anchors);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_bad_corpus);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("hostile");
    tcase_set_timeout(th, 120);
    tcase_add_test(th, test_deep_nesting);
    tcase_add_test(th, test_billion_laughs);
    tcase_add_test(th, test_size_and_node_caps);
    tcase_add_test(th, test_garbage_bytes);
    tcase_add_test(th, test_state_backend);
    tcase_add_test(th, test_fuzz_mutations);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
