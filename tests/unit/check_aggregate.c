/* check_aggregate.c — the keyed running aggregate, driven through its
 * operator vtable: count/sum/min/max/avg with nulls, string/bool/timestamp
 * min and max, single and multi-field keys (nulls, empty and long strings,
 * doubles by their bits), a global aggregate, 200k distinct keys (several
 * rehashes), keys colliding in the low bits of their hash, first-seen
 * order, all checked against a brute-force reference computed here. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "testutil.h"

/* An assertion for loops: Check's ck_assert_* talk to the runner on every
 * call, which is slow over hundreds of thousands of records. */
#define S_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* Input schema of every test (field indexes below). */
enum { F_K, F_G, F_I, F_D, F_S, F_B, F_T, F_N };

static const char *s_aggs_all =
    "[{name: n, fn: count}, {name: ni, fn: count, field: i}, {name: si, fn: sum, field: i},"
    " {name: sd, fn: sum, field: d}, {name: mini, fn: min, field: i},"
    " {name: maxi, fn: max, field: i}, {name: mind, fn: min, field: d},"
    " {name: maxd, fn: max, field: d}, {name: mins, fn: min, field: s},"
    " {name: maxs, fn: max, field: s}, {name: ai, fn: avg, field: i},"
    " {name: ad, fn: avg, field: d}, {name: minb, fn: min, field: b},"
    " {name: maxb, fn: max, field: b}, {name: mint, fn: min, field: t},"
    " {name: maxt, fn: max, field: t}]";

/* A loaded plan and the aggregate operator running on it. */
typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
    const sl_plan_node_t *node;
    sl_opctx_t ctx;
    atomic_bool cancel;
    sl_batch_t *in; /* input batch being filled */
    uint8_t *out;   /* every emitted row, back to back */
    size_t out_len, out_cap;
    size_t nout;      /* rows emitted */
    sl_value_t *rows; /* decoded output, nout * out->nfields */
} s_env_t;

static int s_collect(void *target, sl_batch_t *b)
{
    s_env_t *env = target;
    if (env->out_len + b->len > env->out_cap) {
        size_t cap = env->out_cap ? env->out_cap : 4096;
        while (cap < env->out_len + b->len)
            cap *= 2;
        env->out = realloc(env->out, cap);
        ck_assert_ptr_nonnull(env->out);
        env->out_cap = cap;
    }
    memcpy(env->out + env->out_len, b->data, b->len);
    env->out_len += b->len;
    env->nout += b->count;
    return SL_OK;
}

/* Loads a job whose aggregate has key `keys` ("[k]", or NULL for none) and
 * aggregates `aggs`, and opens the operator. */
static void s_setup(s_env_t *env, const char *keys, const char *aggs, uint32_t batch_cap)
{
    memset(env, 0, sizeof *env);
    char text[4096];
    snprintf(text, sizeof text,
             "name: t\n"
             "sources:\n"
             "  - name: src\n"
             "    type: file\n"
             "    format: csv\n"
             "    path: in.csv\n"
             "    schema: { k: string, g: int64, i: int64, d: double, s: string, b: bool, "
             "t: timestamp }\n"
             "operators:\n"
             "  - name: agg\n"
             "    type: aggregate\n"
             "    input: src\n"
             "%s%s%s"
             "    aggregates: %s\n"
             "sinks:\n"
             "  - { name: out, type: file, format: csv, input: agg, path: o.csv }\n",
             keys ? "    key: " : "", keys ? keys : "", keys ? "\n" : "", aggs);
    env->d = sl_diag_new("job.yaml");
    int rc = sl_plan_load("job.yaml", text, strlen(text), NULL, 1, env->d, &env->spec, &env->plan);
    ck_assert_int_eq(rc, SL_OK);
    env->node = &env->plan->nodes[sl_spec_find(env->spec, "agg")];
    ck_assert_int_eq(env->node->kind, SL_OP_AGGREGATE);
    atomic_init(&env->cancel, false);
    sl_opctx_t *c = &env->ctx;
    c->plan = env->plan;
    c->node = env->node;
    c->subtask = 0;
    c->parallelism = 1;
    c->in = env->plan->nodes[env->node->inputs[0]].out;
    ck_assert_int_eq(c->in->nfields, F_N);
    c->out.batch = sl_batch_new(0);
    c->out.schema = env->node->out;
    c->out.flush = s_collect;
    c->out.target = env;
    c->arena = sl_arena_new(0);
    c->cancel = &env->cancel;
    env->in = sl_batch_new(batch_cap);
    ck_assert_ptr_nonnull(env->in);
    ck_assert_int_eq(sl_op_aggregate.open(c), SL_OK);
}

static void s_teardown(s_env_t *env)
{
    sl_op_aggregate.close(&env->ctx);
    ck_assert_ptr_null(env->ctx.state);
    sl_batch_destroy(&env->ctx.out.batch);
    sl_arena_destroy(&env->ctx.arena);
    sl_batch_destroy(&env->in);
    free(env->out);
    free(env->rows);
    sl_plan_destroy(&env->plan);
    sl_spec_destroy(&env->spec);
    sl_diag_destroy(&env->d);
}

static void s_flush_in(s_env_t *env)
{
    if (env->in->count == 0)
        return;
    int rc = sl_op_aggregate.process(&env->ctx, env->in, 0);
    S_CHECK(rc == SL_OK, "process: %d", rc);
    sl_batch_clear(env->in);
}

/* Feeds one input record (F_N values). */
static void s_feed(s_env_t *env, const sl_value_t *vals)
{
    int rc = sl_batch_append(env->in, env->ctx.in, vals);
    if (rc == SL_LIMIT) {
        s_flush_in(env);
        rc = sl_batch_append(env->in, env->ctx.in, vals);
    }
    S_CHECK(rc == SL_OK, "append: %d", rc);
}

/* Ends the input: finish, flush, and decode every output row. */
static void s_finish(s_env_t *env)
{
    s_flush_in(env);
    ck_assert_int_eq(sl_op_aggregate.finish(&env->ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env->ctx.out), SL_OK);
    int nf = env->node->out->nfields;
    env->rows = calloc(env->nout * (size_t)nf + 1, sizeof *env->rows);
    ck_assert_ptr_nonnull(env->rows);
    size_t off = 0;
    for (size_t r = 0; r < env->nout; r++) {
        S_CHECK(off < env->out_len, "output rows overrun");
        sl_row_decode(env->node->out, env->out + off, &env->rows[r * (size_t)nf]);
        off += sl_row_len(env->out + off);
    }
    ck_assert_uint_eq(off, env->out_len);
    ck_assert_uint_eq(env->ctx.out.records, env->nout);
}

static const sl_value_t *s_row(const s_env_t *env, size_t r)
{
    return &env->rows[r * (size_t)env->node->out->nfields];
}

/* ---- the brute-force reference ------------------------------------------ */

#define S_REF_BUCKETS 4096 /* the reference's key lookup (its own hash, not the operator's) */

typedef struct {
    size_t nkeys, cap;          /* keys seen; room for */
    sl_value_t *keys;           /* nkeys * node->nkeys, borrowed from the inputs */
    sl_value_t *vals;           /* nkeys * naggs, current results */
    int64_t *cnt;               /* nkeys * naggs, values seen */
    size_t *next;               /* nkeys: the next key of the same bucket, + 1 (0: none) */
    size_t head[S_REF_BUCKETS]; /* each bucket's first key, + 1 (0: empty) */
} s_ref_t;

/* A bucket for a key: equal keys (sl_value_eq) land in the same one, as it
 * hashes only what equality compares (doubles not at all: their bits are
 * sl_value_eq's business). A poor spread would only be slow. */
static size_t s_ref_bucket(const sl_plan_node_t *nd, const sl_value_t *in)
{
    uint64_t h = 1469598103934665603ull;
    for (int j = 0; j < nd->nkeys; j++) {
        const sl_value_t *v = &in[nd->keys[j]];
        uint64_t x = v->is_null ? 1 : 0;
        if (!v->is_null && v->type == SL_TYPE_STRING)
            for (uint32_t b = 0; b < v->len; b++)
                x = (x ^ (unsigned char)v->u.s[b]) * 1099511628211ull;
        else if (!v->is_null && v->type == SL_TYPE_BOOL)
            x = v->u.b ? 3 : 2;
        else if (!v->is_null && v->type != SL_TYPE_DOUBLE)
            x = (uint64_t)v->u.i;
        h = (h ^ x) * 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29)) % S_REF_BUCKETS;
}

static void s_ref_add(s_ref_t *ref, const sl_plan_node_t *nd, const sl_value_t *in)
{
    size_t nk = (size_t)nd->nkeys, na = (size_t)nd->naggs, bucket = s_ref_bucket(nd, in);
    size_t k = ref->head[bucket];
    for (; k; k = ref->next[k - 1]) {
        size_t j = 0;
        while (j < nk && sl_value_eq(&ref->keys[(k - 1) * nk + j], &in[nd->keys[j]]))
            j++;
        if (j == nk)
            break;
    }
    if (k) {
        k--;
    } else {
        k = ref->nkeys++;
        if (ref->nkeys > ref->cap) { /* doubling: a realloc per key copies O(n^2) bytes */
            ref->cap = ref->cap ? 2 * ref->cap : 64;
            ref->keys = realloc(ref->keys, (ref->cap * nk + 1) * sizeof *ref->keys);
            ref->vals = realloc(ref->vals, ref->cap * na * sizeof *ref->vals);
            ref->cnt = realloc(ref->cnt, ref->cap * na * sizeof *ref->cnt);
            ref->next = realloc(ref->next, ref->cap * sizeof *ref->next);
            S_CHECK(ref->keys && ref->vals && ref->cnt && ref->next, "out of memory");
        }
        ref->next[k] = ref->head[bucket];
        ref->head[bucket] = k + 1;
        for (size_t j = 0; j < nk; j++)
            ref->keys[k * nk + j] = in[nd->keys[j]];
        for (size_t g = 0; g < na; g++) {
            ref->vals[k * na + g] = sl_value_null();
            ref->cnt[k * na + g] = 0;
        }
    }
    for (size_t g = 0; g < na; g++) {
        const sl_agg_t *ag = &nd->aggs[g];
        sl_value_t *acc = &ref->vals[k * na + g];
        int64_t *n = &ref->cnt[k * na + g];
        if (ag->field < 0) {
            ++*n;
            continue;
        }
        const sl_value_t *v = &in[ag->field];
        if (v->is_null)
            continue;
        ++*n;
        switch (ag->fn) {
        case SL_AGG_COUNT:
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            if (acc->is_null)
                *acc = ag->out == SL_TYPE_DOUBLE ? sl_value_double(0) : sl_value_int(0);
            if (v->type == SL_TYPE_DOUBLE)
                acc->u.d += v->u.d;
            else if (ag->fn == SL_AGG_AVG)
                acc->u.d += (double)v->u.i;
            else
                acc->u.i = (int64_t)((uint64_t)acc->u.i + (uint64_t)v->u.i);
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX: {
            int cmp = acc->is_null ? 0 : sl_value_cmp(v, acc);
            if (acc->is_null || (ag->fn == SL_AGG_MIN ? cmp < 0 : cmp > 0))
                *acc = *v;
            break;
        }
        case SL_AGG_FIRST: /* windows only: the planner refuses them here */
        case SL_AGG_LAST:
        case SL_AGG_COUNT_DISTINCT:
            ck_abort_msg("aggregate of windows only in a plain aggregate");
        }
    }
}

static void s_ref_free(s_ref_t *ref)
{
    free(ref->keys);
    free(ref->vals);
    free(ref->cnt);
    free(ref->next);
}

/* Checks the operator's output equals the reference, row by row. */
static void s_check_ref(const s_env_t *env, const s_ref_t *ref)
{
    const sl_plan_node_t *nd = env->node;
    size_t nk = (size_t)nd->nkeys, na = (size_t)nd->naggs;
    ck_assert_uint_eq(env->nout, ref->nkeys);
    for (size_t r = 0; r < ref->nkeys; r++) {
        const sl_value_t *row = s_row(env, r);
        for (size_t j = 0; j < nk; j++)
            S_CHECK(sl_value_eq(&row[j], &ref->keys[r * nk + j]), "row %zu: key field %zu differs",
                    r, j);
        for (size_t g = 0; g < na; g++) {
            const sl_agg_t *ag = &nd->aggs[g];
            const sl_value_t *got = &row[nk + g];
            sl_value_t want = ref->vals[r * na + g];
            int64_t n = ref->cnt[r * na + g];
            if (ag->fn == SL_AGG_COUNT)
                want = sl_value_int(n);
            else if (ag->fn == SL_AGG_AVG && n)
                want = sl_value_double(want.u.d / (double)n);
            S_CHECK(want.is_null || got->type == ag->out, "row %zu: aggregate %zu has type %d", r,
                    g, (int)got->type);
            S_CHECK(sl_value_eq(got, &want), "row %zu: aggregate %s differs", r,
                    nd->out->fields[nk + g].name);
        }
    }
}

/* ---- generated input --------------------------------------------------------- */

static uint64_t s_rand(uint64_t *st)
{
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return *st >> 33;
}

/* Key strings: short, empty, 20..30 bytes around the inline limit sharing
 * a long prefix, and long ones. */
#define S_K(lit)                                                                                   \
    {                                                                                              \
        lit, sizeof lit - 1                                                                        \
    }
static const struct {
    const char *s;
    uint32_t len;
} s_keys[] = {S_K("a"),
              S_K("b"),
              S_K("ab"),
              S_K(""),
              S_K("the"),
              S_K("of"),
              S_K("zebra"),
              S_K("a\0b"),
              S_K("aaaaaaaaaaaaaaaaaaaaa"),    /* 21 */
              S_K("aaaaaaaaaaaaaaaaaaaaaa"),   /* 22: the longest held inline */
              S_K("aaaaaaaaaaaaaaaaaaaaaaa"),  /* 23 */
              S_K("aaaaaaaaaaaaaaaaaaaaaaaa"), /* 24 */
              S_K("aaaaaaaaaaaaaaaaaaaaaaab"),
              S_K("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"),
              S_K("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2"),
              S_K("\xc3\xa9t\xc3\xa9")};
#define S_NKEYS (sizeof s_keys / sizeof *s_keys)

/* Random record i into vals (strings point into static storage or buf). */
static void s_gen(uint64_t *st, sl_value_t *vals, char *buf)
{
    uint64_t r = s_rand(st);
    size_t k = r % (S_NKEYS + 1);
    vals[F_K] = k == S_NKEYS ? sl_value_null() : sl_value_str(s_keys[k].s, s_keys[k].len);
    vals[F_G] = s_rand(st) % 5 == 0 ? sl_value_null() : sl_value_int((int64_t)(s_rand(st) % 3) - 1);
    vals[F_I] =
        s_rand(st) % 4 == 0 ? sl_value_null() : sl_value_int((int64_t)(s_rand(st) % 2001) - 1000);
    static const double ds[] = {0.5, -0.0, 0.0, 1e300, -2.25, 3.0, 7.125};
    vals[F_D] = s_rand(st) % 4 == 0 ? sl_value_null() : sl_value_double(ds[s_rand(st) % 7]);
    size_t sl = s_rand(st) % 6;
    for (size_t j = 0; j < sl; j++)
        buf[j] = (char)('a' + s_rand(st) % 3);
    vals[F_S] = s_rand(st) % 4 == 0 ? sl_value_null() : sl_value_str(buf, (uint32_t)sl);
    vals[F_B] = s_rand(st) % 3 == 0 ? sl_value_null() : sl_value_bool(s_rand(st) % 2);
    vals[F_T] = s_rand(st) % 3 == 0 ? sl_value_null()
                                    : sl_value_ts(1700000000000 + (int64_t)(s_rand(st) % 100000));
}

/* Runs n random records through an aggregate keyed by keys and compares
 * with the reference. */
static void s_random_run(const char *keys, size_t n, uint32_t batch_cap, uint64_t seed)
{
    s_env_t env;
    s_setup(&env, keys, s_aggs_all, batch_cap);
    sl_value_t *recs = calloc(n * F_N, sizeof *recs);
    char *bufs = calloc(n, 8);
    ck_assert(recs && bufs);
    s_ref_t ref = {0};
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) {
        s_gen(&st, &recs[i * F_N], &bufs[i * 8]);
        s_feed(&env, &recs[i * F_N]);
        s_ref_add(&ref, env.node, &recs[i * F_N]);
    }
    s_finish(&env);
    s_check_ref(&env, &ref);
    s_ref_free(&ref);
    free(recs);
    free(bufs);
    s_teardown(&env);
}

/* ---- tests ------------------------------------------------------------------- */

static sl_value_t s_rec_vals[F_N];

/* Record with key k, value i (null if is_null) and all else null. */
static const sl_value_t *s_rec(const char *k, int64_t i, bool inull)
{
    for (int f = 0; f < F_N; f++)
        s_rec_vals[f] = sl_value_null();
    if (k)
        s_rec_vals[F_K] = sl_value_str(k, (uint32_t)strlen(k));
    if (!inull)
        s_rec_vals[F_I] = sl_value_int(i);
    return s_rec_vals;
}

START_TEST(test_basic_values)
{
    s_env_t env;
    s_setup(&env, "[k]",
            "[{name: n, fn: count}, {name: ni, fn: count, field: i}, {name: si, fn: sum, field: i},"
            " {name: mn, fn: min, field: i}, {name: mx, fn: max, field: i},"
            " {name: av, fn: avg, field: i}]",
            0);
    s_feed(&env, s_rec("x", 5, false));
    s_feed(&env, s_rec("y", 0, true));
    s_feed(&env, s_rec("x", -3, false));
    s_feed(&env, s_rec(NULL, 7, false));
    s_feed(&env, s_rec("x", 0, true));
    s_feed(&env, s_rec("x", 10, false));
    s_feed(&env, s_rec(NULL, 1, false));
    s_finish(&env);
    ck_assert_uint_eq(env.nout, 3);
    /* x: first seen, 4 records, 3 values */
    const sl_value_t *r = s_row(&env, 0);
    ck_assert(!r[0].is_null);
    ck_assert_uint_eq(r[0].len, 1);
    ck_assert_int_eq(r[0].u.s[0], 'x');
    ck_assert_int_eq(r[1].u.i, 4);
    ck_assert_int_eq(r[2].u.i, 3);
    ck_assert_int_eq(r[3].u.i, 12);
    ck_assert_int_eq(r[4].u.i, -3);
    ck_assert_int_eq(r[5].u.i, 10);
    ck_assert_int_eq(r[6].type, SL_TYPE_DOUBLE);
    ck_assert_double_eq(r[6].u.d, 4.0);
    /* y: only a null value: count(*) 1, count(i) 0, the rest null */
    r = s_row(&env, 1);
    ck_assert_uint_eq(r[0].len, 1);
    ck_assert_int_eq(r[0].u.s[0], 'y');
    ck_assert_int_eq(r[1].u.i, 1);
    ck_assert(!r[2].is_null);
    ck_assert_int_eq(r[2].u.i, 0);
    for (int f = 3; f < 7; f++)
        ck_assert(r[f].is_null);
    /* the null key is a key of its own */
    r = s_row(&env, 2);
    ck_assert(r[0].is_null);
    ck_assert_int_eq(r[1].u.i, 2);
    ck_assert_int_eq(r[3].u.i, 8);
    ck_assert_int_eq(r[4].u.i, 1);
    ck_assert_int_eq(r[5].u.i, 7);
    ck_assert_double_eq(r[6].u.d, 4.0);
    s_teardown(&env);
}
END_TEST

START_TEST(test_string_min_max)
{
    s_env_t env;
    s_setup(&env, "[g]",
            "[{name: mn, fn: min, field: s}, {name: mx, fn: max, field: s},"
            " {name: mb, fn: min, field: b}, {name: xb, fn: max, field: b}]",
            0);
    static const char *const words[] = {"pear", "apple", "", "zz", "apples", "b", "app"};
    sl_value_t v[F_N];
    for (int f = 0; f < F_N; f++)
        v[f] = sl_value_null();
    v[F_G] = sl_value_int(1);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        v[F_S] = sl_value_str(words[i], (uint32_t)strlen(words[i]));
        v[F_B] = sl_value_bool(i == 3);
        s_feed(&env, v);
    }
    v[F_S] = sl_value_null();
    v[F_B] = sl_value_null();
    s_feed(&env, v);
    s_finish(&env);
    ck_assert_uint_eq(env.nout, 1);
    const sl_value_t *r = s_row(&env, 0);
    ck_assert_int_eq(r[0].u.i, 1);
    ck_assert(!r[1].is_null);
    ck_assert_uint_eq(r[1].len, 0); /* "" is the smallest */
    ck_assert_uint_eq(r[2].len, 2);
    ck_assert_mem_eq(r[2].u.s, "zz", 2);
    ck_assert_int_eq(r[3].type, SL_TYPE_BOOL);
    ck_assert(!r[3].u.b);
    ck_assert(r[4].u.b);
    s_teardown(&env);
}
END_TEST

START_TEST(test_random_single_key)
{
    s_random_run("[k]", 5000, 0, 1);
    s_random_run("[k]", 3000, 300, 2); /* many small batches */
}
END_TEST

START_TEST(test_random_multi_key)
{
    s_random_run("[g, k, b]", 5000, 0, 3); /* string key not last */
    s_random_run("[k, s]", 5000, 0, 4);    /* two strings */
    s_random_run("[d, t]", 3000, 0, 5);    /* doubles by their bits: -0.0 != 0.0 */
    s_random_run("[s, g, k]", 4000, 0, 6);
}
END_TEST

START_TEST(test_global)
{
    s_random_run(NULL, 2000, 0, 7);
    /* no input, no output */
    s_env_t env;
    s_setup(&env, NULL, s_aggs_all, 0);
    s_finish(&env);
    ck_assert_uint_eq(env.nout, 0);
    s_teardown(&env);
}
END_TEST

START_TEST(test_two_strings_not_confused)
{
    s_env_t env;
    s_setup(&env, "[k, s]", "[{name: n, fn: count}]", 0);
    static const char *const pairs[][2] = {{"ab", "c"}, {"a", "bc"}, {"", "abc"},  {"abc", ""},
                                           {"a", "bc"}, {"ab", "c"}, {"abc", NULL}};
    sl_value_t v[F_N];
    for (int f = 0; f < F_N; f++)
        v[f] = sl_value_null();
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        v[F_K] = sl_value_str(pairs[i][0], (uint32_t)strlen(pairs[i][0]));
        v[F_S] = pairs[i][1] ? sl_value_str(pairs[i][1], (uint32_t)strlen(pairs[i][1]))
                             : sl_value_null();
        s_feed(&env, v);
    }
    s_finish(&env);
    ck_assert_uint_eq(env.nout, 5);
    static const int64_t counts[] = {2, 2, 1, 1, 1};
    static const size_t first[] = {0, 1, 2, 3, 6}; /* record of each key's first sight */
    for (size_t r = 0; r < 5; r++) {
        const sl_value_t *row = s_row(&env, r);
        ck_assert_uint_eq(row[0].len, strlen(pairs[first[r]][0]));
        ck_assert_mem_eq(row[0].u.s, pairs[first[r]][0], row[0].len);
        ck_assert_int_eq(row[2].u.i, counts[r]);
    }
    ck_assert(!s_row(&env, 3)[1].is_null);
    ck_assert_uint_eq(s_row(&env, 3)[1].len, 0);
    ck_assert(s_row(&env, 4)[1].is_null);
    s_teardown(&env);
}
END_TEST

/* Key number j -> its string: short ("w<j>"), or every 7th padded to 40
 * bytes (held out of line). */
static uint32_t s_many_key(size_t j, char *buf)
{
    int n = snprintf(buf, 64, "w%zu", j);
    if (j % 7 == 0)
        n = snprintf(buf, 64, "w%zu-----------------------------------------", j);
    return (uint32_t)(n > 40 ? 40 : n);
}

START_TEST(test_many_keys)
{
    enum { NK = 200000, STEP = 7919 };
    s_env_t env;
    s_setup(&env, "[k]", "[{name: n, fn: count}, {name: si, fn: sum, field: i}]", 0);
    char buf[64];
    sl_value_t v[F_N];
    for (int f = 0; f < F_N; f++)
        v[f] = sl_value_null();
    /* first pass: every key once, in a scrambled order; second and third:
     * again in another order, values by key */
    for (int pass = 0; pass < 3; pass++) {
        for (size_t r = 0; r < NK; r++) {
            size_t j = pass == 1 ? NK - 1 - r : (r * STEP) % NK;
            v[F_K] = sl_value_str(buf, s_many_key(j, buf));
            v[F_I] = sl_value_int((int64_t)j * (pass + 1));
            s_feed(&env, v);
        }
    }
    s_finish(&env);
    ck_assert_uint_eq(env.nout, NK);
    char want[64];
    for (size_t r = 0; r < NK; r++) {
        size_t j = (r * STEP) % NK;
        const sl_value_t *row = s_row(&env, r);
        uint32_t len = s_many_key(j, want);
        S_CHECK(row[0].len == len && memcmp(row[0].u.s, want, len) == 0,
                "row %zu: key %.*s, want %.*s", r, (int)row[0].len, row[0].u.s, (int)len, want);
        S_CHECK(row[1].u.i == 3, "row %zu: count %lld", r, (long long)row[1].u.i);
        S_CHECK(row[2].u.i == (int64_t)j * 6, "row %zu: sum %lld", r, (long long)row[2].u.i);
    }
    s_teardown(&env);
}
END_TEST

START_TEST(test_colliding_hashes)
{
    /* 64 keys whose sl_value_hash agrees in the low 14 bits, and 64 whose
     * key group is the same (what one subtask of a partitioned edge sees). */
    enum { NC = 64 };
    static char keys[2 * NC][16];
    size_t nk = 0;
    uint64_t want = 0;
    bool have = false;
    for (size_t x = 0; nk < NC; x++) {
        char b[16];
        int n = snprintf(b, sizeof b, "c%zu", x);
        sl_value_t v = sl_value_str(b, (uint32_t)n);
        uint64_t h = sl_value_hash(&v, 1) & 0x3fff;
        if (!have) {
            want = h;
            have = true;
        }
        if (h == want)
            memcpy(keys[nk++], b, (size_t)n + 1);
    }
    for (size_t x = 0; nk < 2 * NC; x++) {
        char b[16];
        int n = snprintf(b, sizeof b, "g%zu", x);
        sl_value_t v = sl_value_str(b, (uint32_t)n);
        if (sl_key_group(sl_value_hash(&v, 1), 128) == 5)
            memcpy(keys[nk++], b, (size_t)n + 1);
    }
    s_env_t env;
    s_setup(&env, "[k]", "[{name: n, fn: count}, {name: si, fn: sum, field: i}]", 0);
    for (size_t round = 0; round < 5; round++)
        for (size_t i = 0; i < nk; i++) {
            size_t j = (i * 37 + round) % nk;
            s_feed(&env, s_rec(keys[j], (int64_t)j, false));
        }
    s_finish(&env);
    ck_assert_uint_eq(env.nout, nk);
    for (size_t r = 0; r < nk; r++) {
        size_t j = (r * 37) % nk;
        const sl_value_t *row = s_row(&env, r);
        ck_assert_uint_eq(row[0].len, strlen(keys[j]));
        ck_assert_mem_eq(row[0].u.s, keys[j], row[0].len);
        ck_assert_int_eq(row[1].u.i, 5);
        ck_assert_int_eq(row[2].u.i, (int64_t)j * 5);
    }
    s_teardown(&env);
}
END_TEST

/* sl_grow (the operators' array growth): doubles to the need, keeps the
 * contents, and refuses a size that overflows without touching the array. */
START_TEST(test_grow)
{
    int *v = NULL;
    size_t cap = 0;
    ck_assert_int_eq(sl_grow((void **)&v, &cap, 1, sizeof *v), SL_OK);
    ck_assert_uint_eq(cap, 64);
    for (int i = 0; i < 64; i++)
        v[i] = i;
    ck_assert_int_eq(sl_grow((void **)&v, &cap, 65, sizeof *v), SL_OK);
    ck_assert_uint_eq(cap, 128);
    ck_assert_int_eq(sl_grow((void **)&v, &cap, 1000, sizeof *v), SL_OK);
    ck_assert_uint_eq(cap, 1024);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(v[i], i);
    int *before = v;
    ck_assert_int_eq(sl_grow((void **)&v, &cap, SIZE_MAX / 2, sizeof *v), SL_NOMEM);
    ck_assert_int_eq(sl_grow((void **)&v, &cap, SIZE_MAX, 1), SL_NOMEM);
    ck_assert_ptr_eq(v, before);
    ck_assert_uint_eq(cap, 1024);
    free(v);
}
END_TEST

/* sl_grow_ex (keyed state's arrays): starts at first, never grows past max
 * (a narrower capacity field), refuses a need past max untouched. */
START_TEST(test_grow_ex)
{
    int *v = NULL;
    size_t cap = 0;
    ck_assert_int_eq(sl_grow_ex((void **)&v, &cap, 1, sizeof *v, 2, 100), SL_OK);
    ck_assert_uint_eq(cap, 2);
    v[0] = 7;
    ck_assert_int_eq(sl_grow_ex((void **)&v, &cap, 3, sizeof *v, 2, 100), SL_OK);
    ck_assert_uint_eq(cap, 4);
    ck_assert_int_eq(sl_grow_ex((void **)&v, &cap, 65, sizeof *v, 2, 100), SL_OK);
    ck_assert_uint_eq(cap, 100); /* 128 would pass max */
    ck_assert_int_eq(v[0], 7);
    int *before = v;
    ck_assert_int_eq(sl_grow_ex((void **)&v, &cap, 101, sizeof *v, 2, 100), SL_NOMEM);
    ck_assert_ptr_eq(v, before);
    ck_assert_uint_eq(cap, 100);
    free(v);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("aggregate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_basic_values);
    tcase_add_test(tc, test_grow);
    tcase_add_test(tc, test_grow_ex);
    tcase_add_test(tc, test_string_min_max);
    tcase_add_test(tc, test_random_single_key);
    tcase_add_test(tc, test_random_multi_key);
    tcase_add_test(tc, test_global);
    tcase_add_test(tc, test_two_strings_not_confused);
    tcase_add_test(tc, test_many_keys);
    tcase_add_test(tc, test_colliding_hashes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
