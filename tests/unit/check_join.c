/* check_join.c — the join operator driven through its vtable by a small
 * simulated task (two inputs, per-input watermarks of bounded disorder,
 * the least of them handed to the operator), checked against brute-force
 * references computed here: interval joins with positive, negative and
 * one-sided bounds, tumbling and sliding window joins, enrich joins with
 * drop and emit_nulls (tied table versions, a table updated between
 * stream records), null keys and times, late records, and the same output
 * for every batch size and arrival order; all of it again with the rows
 * in rocksdb (`state: {backend: rocksdb}`), plus state far bigger than
 * the block cache. Plan-level tests check the
 * output schema (right_ prefixes, window fields), the hash partitioning of
 * both edges by their own keys, the event time and the spec errors. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "testutil.h"

#define S_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* Left: (k int64, ts timestamp, v string); right: (k int64, ts timestamp,
 * w int64). */
enum { F_K, F_TS, F_X, F_N };
#define S_BOUND 50 /* watermark bound (ms) of both inputs */

static const char *s_job = "name: t\n"
                           "%s"
                           "sources:\n"
                           "  - name: lsrc\n"
                           "    type: file\n"
                           "    format: csv\n"
                           "    path: l.csv\n"
                           "    schema: { k: int64, ts: timestamp, v: string }\n"
                           "    timestamp: ts\n"
                           "    watermark: { max_out_of_order: 50ms }\n"
                           "  - name: rsrc\n"
                           "    type: file\n"
                           "    format: csv\n"
                           "    path: r.csv\n"
                           "    schema: { k: int64, ts: timestamp, w: int64 }\n"
                           "    timestamp: ts\n"
                           "    watermark: { max_out_of_order: 50ms }\n"
                           "operators:\n"
                           "  - name: j\n"
                           "    type: join\n"
                           "    inputs: [lsrc, rsrc]\n"
                           "%s"
                           "sinks:\n"
                           "  - { name: out, type: file, format: csv, input: j, path: o.csv }\n";

/* The state line of the job: "" (the heap), or the rocksdb backend with a
 * tiny cache (the "rocksdb" cases run every functional case again so). */
static const char *s_state = "";
#define S_ROCKS "state: {backend: rocksdb, block_cache: 256KB, write_buffer: 128KB}\n"

/* One input record: the values (v/w and k may be null). */
typedef struct {
    int64_t k, ts, x;
    bool knull, tnull;
} s_rec_t;

typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
    const sl_plan_node_t *node;
    const sl_schema_t *sch[2];
    sl_opctx_t ctx;
    atomic_bool cancel;
    sl_batch_t *in;
    uint8_t *out; /* every emitted row, back to back */
    size_t out_len, out_cap, nout;
} s_env_t;

static int s_collect(void *target, sl_batch_t *b)
{
    s_env_t *env = target;
    if (env->out_len + b->len > env->out_cap) {
        size_t cap = env->out_cap ? env->out_cap : 4096;
        while (cap < env->out_len + b->len)
            cap *= 2;
        env->out = realloc(env->out, cap);
        S_CHECK(env->out, "out of memory");
        env->out_cap = cap;
    }
    memcpy(env->out + env->out_len, b->data, b->len);
    env->out_len += b->len;
    env->nout += b->count;
    return SL_OK;
}

/* Builds the plan with the join body `body` (indented fields); returns the
 * plan's status (errors in env->d). */
static int s_load(s_env_t *env, const char *body)
{
    memset(env, 0, sizeof *env);
    char text[4096];
    snprintf(text, sizeof text, s_job, s_state, body);
    env->d = sl_diag_new("job.yaml");
    return sl_plan_load("job.yaml", text, strlen(text), NULL, 1, env->d, &env->spec, &env->plan);
}

/* With each side's time adjusted by ladj / radj ms, as after a window
 * (whose results' time is their window_end - 1 ms). */
static void s_setup_adj(s_env_t *env, const char *body, uint32_t batch_cap, int64_t ladj,
                        int64_t radj)
{
    int rc = s_load(env, body);
    if (rc != SL_OK)
        sl_diag_print(env->d, stderr);
    ck_assert_int_eq(rc, SL_OK);
    sl_plan_node_t *nd = &env->plan->nodes[sl_spec_find(env->spec, "j")];
    nd->join.ltime_adj = ladj;
    nd->join.rtime_adj = radj;
    env->node = nd;
    ck_assert_int_eq(env->node->kind, SL_OP_JOIN);
    ck_assert_ptr_eq(sl_op_vtable(env->node), &sl_op_join);
    env->sch[0] = sl_plan_input_schema(env->plan, env->node, 0);
    env->sch[1] = sl_plan_input_schema(env->plan, env->node, 1);
    atomic_init(&env->cancel, false);
    sl_opctx_t *c = &env->ctx;
    c->plan = env->plan;
    c->node = env->node;
    c->parallelism = 1;
    c->in = env->sch[0];
    c->watermark = SL_WM_MIN;
    c->out.batch = sl_batch_new(0);
    c->out.schema = env->node->out;
    c->out.flush = s_collect;
    c->out.target = env;
    c->arena = sl_arena_new(0);
    c->cancel = &env->cancel;
    env->in = sl_batch_new(batch_cap);
    ck_assert_ptr_nonnull(env->in);
    ck_assert_int_eq(sl_op_join.open(c), SL_OK);
}

static void s_setup(s_env_t *env, const char *body, uint32_t batch_cap)
{
    s_setup_adj(env, body, batch_cap, 0, 0);
}

static void s_teardown(s_env_t *env)
{
    if (env->ctx.node) {
        sl_op_join.close(&env->ctx);
        ck_assert_ptr_null(env->ctx.state);
    }
    sl_batch_destroy(&env->ctx.out.batch);
    sl_arena_destroy(&env->ctx.arena);
    sl_batch_destroy(&env->in);
    free(env->out);
    sl_plan_destroy(&env->plan);
    sl_spec_destroy(&env->spec);
    sl_diag_destroy(&env->d);
}

static void s_vals(const s_rec_t *r, sl_value_t *v)
{
    v[F_K] = r->knull ? sl_value_null() : sl_value_int(r->k);
    v[F_TS] = r->tnull ? sl_value_null() : sl_value_ts(r->ts);
    v[F_X] = sl_value_int(r->x);
}

/* Left rows carry v = "v<x>" as a string. */
static void s_left_vals(const s_rec_t *r, sl_value_t *v, char *buf, size_t cap)
{
    s_vals(r, v);
    int n = snprintf(buf, cap, "v%lld", (long long)r->x);
    v[F_X] = sl_value_str(buf, (uint32_t)n);
}

/* Hands the batch of side s to the operator. */
static void s_push(s_env_t *env, int s)
{
    if (env->in->count == 0)
        return;
    int rc = sl_op_join.process(&env->ctx, env->in, s);
    S_CHECK(rc == SL_OK, "process: %d (%s)", rc, env->ctx.err);
    sl_batch_clear(env->in);
    sl_arena_reset(env->ctx.arena);
}

static void s_append(s_env_t *env, int s, const s_rec_t *r)
{
    sl_value_t v[F_N];
    char buf[32];
    if (s == 0)
        s_left_vals(r, v, buf, sizeof buf);
    else
        s_vals(r, v);
    int rc = sl_batch_append(env->in, env->sch[s], v);
    if (rc == SL_LIMIT) {
        s_push(env, s);
        rc = sl_batch_append(env->in, env->sch[s], v);
    }
    S_CHECK(rc == SL_OK, "append: %d", rc);
}

static void s_advance(s_env_t *env, int64_t wm)
{
    if (wm <= env->ctx.watermark)
        return;
    env->ctx.watermark = wm;
    int rc = sl_op_join.watermark(&env->ctx, wm);
    S_CHECK(rc == SL_OK, "watermark: %d (%s)", rc, env->ctx.err);
    sl_arena_reset(env->ctx.arena);
}

/* Small deterministic generator. */
static uint64_t s_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* n records of side s: times step ~20 ms from base, keys in [0, nkeys),
 * some null keys (and one null time); in arrival order (disorder below
 * S_BOUND, so none is late). */
static s_rec_t *s_gen(uint64_t seed, int n, int nkeys, int64_t base)
{
    uint64_t st = seed;
    s_rec_t *r = calloc((size_t)n, sizeof *r);
    int64_t *arrive = calloc((size_t)n, sizeof *arrive);
    S_CHECK(r && arrive, "oom");
    for (int i = 0; i < n; i++) {
        r[i].ts = base + i * 20 + (int64_t)(s_rand(&st) % 20);
        r[i].k = (int64_t)(s_rand(&st) % (uint64_t)nkeys);
        r[i].knull = s_rand(&st) % 37 == 0;
        r[i].tnull = i == n / 2;
        r[i].x = i;
        arrive[i] = r[i].ts + (int64_t)(s_rand(&st) % S_BOUND);
    }
    /* insertion sort by arrival time */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && arrive[j - 1] > arrive[j]; j--) {
            int64_t a = arrive[j];
            arrive[j] = arrive[j - 1];
            arrive[j - 1] = a;
            s_rec_t t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    free(arrive);
    return r;
}

/* Runs the operator over both sides in a random interleaving (seed) with
 * batches of up to maxb rows, watermarks after every batch. */
static void s_run(s_env_t *env, const s_rec_t *const side[2], const int n[2], uint64_t seed,
                  int maxb)
{
    uint64_t st = seed;
    int pos[2] = {0, 0};
    int64_t mx[2] = {SL_WM_MIN, SL_WM_MIN}, wm[2] = {SL_WM_MIN, SL_WM_MIN};
    while (pos[0] < n[0] || pos[1] < n[1]) {
        int s = pos[0] >= n[0] ? 1 : pos[1] >= n[1] ? 0 : (int)(s_rand(&st) % 2);
        int b = 1 + (int)(s_rand(&st) % (uint64_t)maxb);
        for (int i = 0; i < b && pos[s] < n[s]; i++) {
            const s_rec_t *r = &side[s][pos[s]++];
            s_append(env, s, r);
            if (!r->tnull && r->ts > mx[s])
                mx[s] = r->ts;
        }
        s_push(env, s);
        wm[s] = pos[s] == n[s] ? SL_WM_MAX : mx[s] == SL_WM_MIN ? SL_WM_MIN : mx[s] - S_BOUND - 1;
        s_advance(env, wm[0] < wm[1] ? wm[0] : wm[1]);
    }
    s_advance(env, SL_WM_MAX);
    ck_assert_int_eq(sl_op_join.finish(&env->ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env->ctx.out), SL_OK);
}

/* ---- expected rows ----------------------------------------------------------- */

typedef struct {
    uint8_t **rows;
    uint32_t *lens;
    size_t n, cap;
} s_set_t;

static void s_set_add(s_set_t *set, const uint8_t *row, uint32_t len)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 256;
        set->rows = realloc(set->rows, set->cap * sizeof *set->rows);
        set->lens = realloc(set->lens, set->cap * sizeof *set->lens);
        S_CHECK(set->rows && set->lens, "oom");
    }
    set->rows[set->n] = malloc(len);
    S_CHECK(set->rows[set->n], "oom");
    memcpy(set->rows[set->n], row, len);
    set->lens[set->n++] = len;
}

/* Adds the output row (window start, l, r or NULL) encoded as the plan's. */
static void s_set_pair(s_set_t *set, const s_env_t *env, int64_t win, const s_rec_t *l,
                       const s_rec_t *r)
{
    sl_value_t v[2 + 2 * F_N];
    int o = 0;
    if (env->node->join.kind == SL_JOIN_WINDOW) {
        v[o++] = sl_value_ts(win);
        v[o++] = sl_value_ts(win + env->node->win.size);
    }
    char buf[32];
    s_left_vals(l, &v[o], buf, sizeof buf);
    o += F_N;
    if (r)
        s_vals(r, &v[o]);
    else
        for (int i = 0; i < F_N; i++)
            v[o + i] = sl_value_null();
    size_t len = sl_row_size(env->node->out, v);
    uint8_t *row = malloc(len);
    S_CHECK(row, "oom");
    sl_row_encode(env->node->out, v, row);
    s_set_add(set, row, (uint32_t)len);
    free(row);
}

static const uint8_t *const *s_sort_rows;
static const uint32_t *s_sort_lens;
static int s_cmp_idx(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint32_t li = s_sort_lens[i], lj = s_sort_lens[j], m = li < lj ? li : lj;
    int r = memcmp(s_sort_rows[i], s_sort_rows[j], m);
    return r ? r : (li > lj) - (li < lj);
}

/* Sorted order of a set (indexes). */
static size_t *s_order(const s_set_t *set)
{
    size_t *idx = calloc(set->n + 1, sizeof *idx);
    S_CHECK(idx, "oom");
    for (size_t i = 0; i < set->n; i++)
        idx[i] = i;
    s_sort_rows = (const uint8_t *const *)set->rows;
    s_sort_lens = set->lens;
    qsort(idx, set->n, sizeof *idx, s_cmp_idx);
    return idx;
}

static void s_set_free(s_set_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->rows[i]);
    free(set->rows);
    free(set->lens);
    memset(set, 0, sizeof *set);
}

/* The operator's output equals want (as multisets of rows). */
static void s_check_output(const s_env_t *env, const s_set_t *want)
{
    s_set_t got = {0};
    for (size_t off = 0; off < env->out_len; off += sl_row_len(env->out + off))
        s_set_add(&got, env->out + off, sl_row_len(env->out + off));
    ck_assert_uint_eq(got.n, env->nout);
    S_CHECK(got.n == want->n, "%zu rows emitted, %zu expected", got.n, want->n);
    size_t *gi = s_order(&got), *wi = s_order(want);
    for (size_t i = 0; i < got.n; i++)
        S_CHECK(got.lens[gi[i]] == want->lens[wi[i]] &&
                    !memcmp(got.rows[gi[i]], want->rows[wi[i]], got.lens[gi[i]]),
                "row %zu of the sorted output differs from the reference", i);
    free(gi);
    free(wi);
    s_set_free(&got);
}

static bool s_same_key(const s_rec_t *a, const s_rec_t *b)
{
    return !a->knull && !b->knull && a->k == b->k && !a->tnull && !b->tnull;
}

/* ---- interval ---------------------------------------------------------------------- */

static void s_interval_case(const char *between, int64_t lower, int64_t upper, size_t min_pairs)
{
    const int n[2] = {1500, 1500};
    s_rec_t *L = s_gen(1, n[0], 10, 1000000), *R = s_gen(2, n[1], 10, 1000000);
    const s_rec_t *const side[2] = {L, R};
    char body[256];
    snprintf(body, sizeof body, "    kind: interval\n    key: k\n    between: %s\n", between);
    s_set_t want = {0};
    for (int run = 0; run < 4; run++) {
        s_env_t env;
        s_setup(&env, body, run == 0 ? 64 : 1 << 16);
        ck_assert_int_eq(env.node->join.lower, lower);
        ck_assert_int_eq(env.node->join.upper, upper);
        if (run == 0) {
            for (int i = 0; i < n[0]; i++)
                for (int k = 0; k < n[1]; k++)
                    if (s_same_key(&L[i], &R[k]) && R[k].ts >= L[i].ts + lower &&
                        R[k].ts <= L[i].ts + upper)
                        s_set_pair(&want, &env, 0, &L[i], &R[k]);
            S_CHECK(want.n >= min_pairs, "the data must join often (%zu pairs)", want.n);
        }
        s_run(&env, side, n, 100 + (uint64_t)run, run == 1 ? 1 : 40);
        s_check_output(&env, &want);
        ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 0);
        ck_assert_uint_eq(atomic_load(&env.ctx.errors), 2); /* the null times */
        s_teardown(&env);
    }
    s_set_free(&want);
    free(L);
    free(R);
}

START_TEST(test_interval_two_sided)
{
    s_interval_case("[-30ms, 70ms]", -30, 70, 500);
}
END_TEST

START_TEST(test_interval_negative)
{
    s_interval_case("[-90ms, -10ms]", -90, -10, 400);
}
END_TEST

START_TEST(test_interval_point)
{
    s_interval_case("[0ms, 0ms]", 0, 0, 3);
}
END_TEST

/* A record at or behind the watermark is late: counted, never joined. */
START_TEST(test_interval_late)
{
    s_env_t env;
    s_setup(&env, "    kind: interval\n    key: k\n    between: [-1s, 1s]\n", 1 << 16);
    s_rec_t l = {.k = 1, .ts = 5000, .x = 1}, r = {.k = 1, .ts = 5100, .x = 2};
    s_append(&env, 0, &l);
    s_push(&env, 0);
    s_advance(&env, 5100); /* r is now behind the watermark */
    s_append(&env, 1, &r);
    s_push(&env, 1);
    ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 1);
    s_rec_t r2 = {.k = 1, .ts = 5101, .x = 3}; /* ahead: joins l */
    s_append(&env, 1, &r2);
    s_push(&env, 1);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 1);
    s_advance(&env, SL_WM_MAX);
    ck_assert_int_eq(sl_op_join.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    s_set_t want = {0};
    s_set_pair(&want, &env, 0, &l, &r2);
    s_check_output(&env, &want);
    s_set_free(&want);
    s_teardown(&env);
}
END_TEST

/* Rows are kept exactly as long as a partner may come: a left row until the
 * watermark reaches l.ts + upper, a right row until it reaches r.ts - lower;
 * both bounds are inclusive. */
START_TEST(test_interval_retention_bounds)
{
    s_env_t env;
    s_setup(&env, "    kind: interval\n    key: k\n    between: [-1s, 1s]\n", 1 << 16);
    s_rec_t l1 = {.k = 1, .ts = 1000, .x = 1}, r1 = {.k = 2, .ts = 1000, .x = 2};
    /* l0 and r0 expire at 1999: their keys are swept then, too */
    s_rec_t l0 = {.k = 1, .ts = 999, .x = 7}, r0 = {.k = 2, .ts = 999, .x = 8};
    s_append(&env, 0, &l0);
    s_append(&env, 0, &l1);
    s_push(&env, 0);
    s_append(&env, 1, &r0);
    s_append(&env, 1, &r1);
    s_push(&env, 1);
    s_advance(&env, 1999);
    s_rec_t r2 = {.k = 1, .ts = 2000, .x = 3}; /* l1.ts + upper: matches l1 */
    s_append(&env, 1, &r2);
    s_push(&env, 1);
    s_rec_t l2 = {.k = 2, .ts = 2000, .x = 4}; /* r1.ts - lower: matches r1 */
    s_append(&env, 0, &l2);
    s_push(&env, 0);
    s_advance(&env, 2000);
    s_rec_t r3 = {.k = 1, .ts = 2001, .x = 5}, l3 = {.k = 2, .ts = 2001, .x = 6};
    s_append(&env, 1, &r3);
    s_push(&env, 1);
    s_append(&env, 0, &l3);
    s_push(&env, 0);
    s_advance(&env, SL_WM_MAX);
    ck_assert_int_eq(sl_op_join.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 0);
    s_set_t want = {0};
    s_set_pair(&want, &env, 0, &l1, &r2);
    s_set_pair(&want, &env, 0, &l2, &r1);
    s_check_output(&env, &want);
    s_set_free(&want);
    s_teardown(&env);
}
END_TEST

/* ---- window ---------------------------------------------------------------------- */

static void s_window_case(const char *window, int64_t size, int64_t slide)
{
    const int n[2] = {1200, 1000};
    s_rec_t *L = s_gen(3, n[0], 25, 2000000), *R = s_gen(4, n[1], 25, 2000000);
    const s_rec_t *const side[2] = {L, R};
    char body[256];
    snprintf(body, sizeof body,
             "    kind: window\n    key: {left: [k], right: k}\n    window: %s\n", window);
    s_set_t want = {0};
    for (int run = 0; run < 3; run++) {
        s_env_t env;
        s_setup(&env, body, run == 0 ? 64 : 1 << 16);
        ck_assert_int_eq(env.node->win.size, size);
        ck_assert_int_eq(env.node->win.slide, slide);
        if (run == 0) {
            for (int i = 0; i < n[0]; i++)
                for (int k = 0; k < n[1]; k++) {
                    if (!s_same_key(&L[i], &R[k]))
                        continue;
                    int64_t lo = L[i].ts > R[k].ts ? L[i].ts : R[k].ts;
                    int64_t hi = L[i].ts < R[k].ts ? L[i].ts : R[k].ts;
                    /* starts s (multiples of slide) with lo - size < s <= hi */
                    int64_t s0 = hi - (((hi % slide) + slide) % slide);
                    for (int64_t s = s0; s > lo - size; s -= slide)
                        s_set_pair(&want, &env, s, &L[i], &R[k]);
                }
            S_CHECK(want.n > 200, "the data must join often (%zu pairs)", want.n);
        }
        s_run(&env, side, n, 200 + (uint64_t)run, run == 1 ? 3 : 50);
        s_check_output(&env, &want);
        ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 0);
        ck_assert_int_eq(env.node->rowtime, 1); /* window_end, less 1 ms */
        ck_assert_int_eq(env.node->rowtime_adj, -1);
        s_teardown(&env);
    }
    s_set_free(&want);
    free(L);
    free(R);
}

START_TEST(test_window_tumbling)
{
    s_window_case("{type: tumbling, size: 200ms}", 200, 200);
}
END_TEST

START_TEST(test_window_sliding)
{
    s_window_case("{type: sliding, size: 300ms, slide: 100ms}", 300, 100);
}
END_TEST

/* A window-join record whose every window has fired is late. */
START_TEST(test_window_late)
{
    s_env_t env;
    s_setup(&env, "    kind: window\n    key: k\n    window: {type: tumbling, size: 1s}\n",
            1 << 16);
    s_rec_t l = {.k = 1, .ts = 500, .x = 1}, r = {.k = 1, .ts = 900, .x = 2};
    s_append(&env, 0, &l);
    s_push(&env, 0);
    s_advance(&env, 998); /* window [0, 1000) still open */
    s_append(&env, 1, &r);
    s_push(&env, 1);
    s_advance(&env, 999); /* fires */
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 1);
    s_rec_t r2 = {.k = 1, .ts = 800, .x = 3};
    s_append(&env, 1, &r2);
    s_push(&env, 1);
    ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 1);
    s_advance(&env, SL_WM_MAX);
    ck_assert_int_eq(sl_op_join.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 1);
    s_teardown(&env);
}
END_TEST

/* ---- enrich ---------------------------------------------------------------------- */

/* Does table record a win over b (later time; equal times: larger bytes)? */
static bool s_newer(const s_env_t *env, const s_rec_t *a, const s_rec_t *b)
{
    if (a->ts != b->ts)
        return a->ts > b->ts;
    sl_value_t va[F_N], vb[F_N];
    s_vals(a, va);
    s_vals(b, vb);
    uint8_t ra[256], rb[256];
    size_t la = sl_row_encode(env->sch[1], va, ra), lb = sl_row_encode(env->sch[1], vb, rb);
    size_t m = la < lb ? la : lb;
    int c = memcmp(ra, rb, m);
    return c ? c > 0 : la > lb;
}

static void s_enrich_case(bool nulls)
{
    const int n[2] = {1500, 600};
    s_rec_t *L = s_gen(5, n[0], 30, 3000000), *R = s_gen(6, n[1], 30, 3000000);
    /* Ties: a table version arriving after a later one of its key takes
     * that one's time (raising a time to one already seen keeps every
     * record on time). */
    int ties = 0;
    for (int i = 1; i < n[1]; i++)
        if (!R[i].tnull && !R[i - 1].tnull && R[i - 1].ts >= R[i].ts) {
            R[i].ts = R[i - 1].ts;
            R[i].k = R[i - 1].k;
            R[i].knull = R[i - 1].knull;
            ties++;
        }
    S_CHECK(ties > 50, "only %d tied versions", ties);
    const s_rec_t *const side[2] = {L, R};
    s_set_t want = {0};
    for (int run = 0; run < 3; run++) {
        s_env_t env;
        s_setup(&env,
                nulls ? "    kind: enrich\n    key: [k]\n    on_missing: emit_nulls\n"
                      : "    kind: enrich\n    key: [k]\n",
                run == 0 ? 64 : 1 << 16);
        ck_assert_int_eq(env.node->join.emit_nulls, nulls);
        if (run == 0) {
            int found = 0, missing = 0;
            for (int i = 0; i < n[0]; i++) {
                if (L[i].tnull)
                    continue;
                const s_rec_t *best = NULL;
                for (int k = 0; !L[i].knull && k < n[1]; k++)
                    if (s_same_key(&L[i], &R[k]) && R[k].ts <= L[i].ts &&
                        (!best || s_newer(&env, &R[k], best)))
                        best = &R[k];
                if (best || nulls)
                    s_set_pair(&want, &env, 0, &L[i], best);
                found += best != NULL;
                missing += best == NULL;
            }
            S_CHECK(found > 500 && missing > 20, "found %d, missing %d", found, missing);
        }
        s_run(&env, side, n, 300 + (uint64_t)run, run == 1 ? 2 : 60);
        s_check_output(&env, &want);
        ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 0);
        s_teardown(&env);
    }
    s_set_free(&want);
    free(L);
    free(R);
}

START_TEST(test_enrich_drop)
{
    s_enrich_case(false);
}
END_TEST

START_TEST(test_enrich_emit_nulls)
{
    s_enrich_case(true);
}
END_TEST

/* A stream record waits for the watermark and sees the version of its time,
 * not a later one that arrived first. */
START_TEST(test_enrich_versions)
{
    s_env_t env;
    s_setup(&env, "    kind: enrich\n    key: k\n", 1 << 16);
    s_rec_t v1 = {.k = 7, .ts = 100, .x = 1}, v2 = {.k = 7, .ts = 300, .x = 2};
    s_rec_t a = {.k = 7, .ts = 250, .x = 10}, b = {.k = 7, .ts = 300, .x = 11};
    s_rec_t none = {.k = 8, .ts = 260, .x = 12};
    s_append(&env, 1, &v2);
    s_append(&env, 1, &v1);
    s_push(&env, 1);
    s_append(&env, 0, &a);
    s_append(&env, 0, &b);
    s_append(&env, 0, &none);
    s_push(&env, 0);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 0); /* held until the watermark passes */
    s_advance(&env, 299);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 1);             /* a, with v1 */
    s_rec_t late = {.k = 7, .ts = 200, .x = 3}; /* a late table row: applied */
    s_append(&env, 1, &late);
    s_push(&env, 1);
    ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 1);
    s_advance(&env, SL_WM_MAX);
    ck_assert_int_eq(sl_op_join.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    s_set_t want = {0};
    s_set_pair(&want, &env, 0, &a, &v1);
    s_set_pair(&want, &env, 0, &b, &v2);
    s_check_output(&env, &want);
    s_set_free(&want);
    s_teardown(&env);
}
END_TEST

/* A stream after a window: its records' time is their field less 1 ms
 * (the right side's, unadjusted, is its field): they wait for the
 * watermark to reach that time, and take the version at or before it. */
START_TEST(test_enrich_adjusted_time)
{
    s_env_t env;
    s_setup_adj(&env, "    kind: enrich\n    key: k\n", 1 << 16, -1, 0);
    s_rec_t v1 = {.k = 7, .ts = 100, .x = 1}, v2 = {.k = 7, .ts = 250, .x = 2};
    s_rec_t a = {.k = 7, .ts = 251, .x = 10}, b = {.k = 7, .ts = 250, .x = 11};
    s_append(&env, 1, &v1);
    s_append(&env, 1, &v2);
    s_push(&env, 1);
    s_append(&env, 0, &a);
    s_append(&env, 0, &b);
    s_push(&env, 0);
    s_advance(&env, 249);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 1); /* b, at 249, with v1; a, at 250, waits */
    s_advance(&env, 250);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_uint_eq(env.nout, 2);
    ck_assert_int_eq(sl_op_join.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    s_set_t want = {0};
    s_set_pair(&want, &env, 0, &a, &v2);
    s_set_pair(&want, &env, 0, &b, &v1);
    s_check_output(&env, &want);
    s_set_free(&want);
    s_teardown(&env);
}
END_TEST

/* ---- the rocksdb backend ---------------------------------------------------------- */

/* Every functional case again with the rows in rocksdb (a store in a
 * temporary directory, a tiny cache): the same reference, so the same
 * output as the heap backend for every batch size and interleaving. */
START_TEST(test_rocks_interval)
{
    s_state = S_ROCKS;
    s_interval_case("[-30ms, 70ms]", -30, 70, 500);
    s_interval_case("[-90ms, -10ms]", -90, -10, 400);
    s_interval_case("[0ms, 0ms]", 0, 0, 3);
    s_state = "";
}
END_TEST

START_TEST(test_rocks_timing)
{
    s_state = S_ROCKS;
    test_interval_late_fn(_i);
    test_interval_retention_bounds_fn(_i);
    test_window_late_fn(_i);
    test_enrich_versions_fn(_i);
    test_enrich_adjusted_time_fn(_i);
    s_state = "";
}
END_TEST

START_TEST(test_rocks_window)
{
    s_state = S_ROCKS;
    s_window_case("{type: tumbling, size: 200ms}", 200, 200);
    s_window_case("{type: sliding, size: 300ms, slide: 100ms}", 300, 100);
    s_state = "";
}
END_TEST

START_TEST(test_rocks_enrich)
{
    s_state = S_ROCKS;
    s_enrich_case(false);
    s_enrich_case(true);
    s_state = "";
}
END_TEST

static int s_cmp_key(const void *a, const void *b)
{
    const s_rec_t *x = a, *y = b;
    return (x->k > y->k) - (x->k < y->k);
}

/* State far bigger than the block cache: an interval join whose bounds
 * keep every row until the end (tens of thousands of keys, megabytes of
 * rows against a 256 KB cache), checked against a reference by key. */
START_TEST(test_rocks_bigger_than_cache)
{
    s_state = S_ROCKS;
    const int n[2] = {40000, 40000};
    s_rec_t *L = s_gen(7, n[0], 15000, 1000000), *R = s_gen(8, n[1], 15000, 1000000);
    const s_rec_t *const side[2] = {L, R};
    s_env_t env;
    s_setup(&env, "    kind: interval\n    key: k\n    between: [-2h, 2h]\n", 1 << 16);
    /* the reference: every left row with each right row of its key */
    s_rec_t *byk = malloc((size_t)n[1] * sizeof *byk);
    ck_assert_ptr_nonnull(byk);
    memcpy(byk, R, (size_t)n[1] * sizeof *byk);
    qsort(byk, (size_t)n[1], sizeof *byk, s_cmp_key);
    s_set_t want = {0};
    for (int i = 0; i < n[0]; i++) {
        int lo = 0, hi = n[1];
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (byk[mid].k < L[i].k)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (int k = lo; k < n[1] && byk[k].k == L[i].k; k++)
            if (s_same_key(&L[i], &byk[k]))
                s_set_pair(&want, &env, 0, &L[i], &byk[k]);
    }
    S_CHECK(want.n > 50000, "the data must join often (%zu pairs)", want.n);
    s_run(&env, side, n, 400, 200);
    s_check_output(&env, &want);
    ck_assert_uint_eq(atomic_load(&env.ctx.records_late), 0);
    s_teardown(&env);
    s_set_free(&want);
    free(byk);
    free(L);
    free(R);
    s_state = "";
}
END_TEST

/* ---- plan ------------------------------------------------------------------------- */

START_TEST(test_plan_schema)
{
    s_env_t env;
    ck_assert_int_eq(s_load(&env, "    kind: interval\n    key: {left: k, right: [k]}\n"
                                  "    between: [-5s, 10s]\n"),
                     SL_OK);
    const sl_plan_node_t *j = &env.plan->nodes[sl_spec_find(env.spec, "j")];
    char buf[512];
    sl_schema_format(j->out, buf, sizeof buf);
    ck_assert_str_eq(buf, "k:int64, ts:timestamp, v:string, right_k:int64, right_ts:timestamp, "
                          "w:int64");
    ck_assert_int_eq(j->join.lower, -5000);
    ck_assert_int_eq(j->join.upper, 10000);
    ck_assert_int_eq(j->rowtime, 1); /* the left ts */
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(j->part[k], SL_PART_HASH);
        ck_assert_int_eq(j->edge_nkeys[k], 1);
        ck_assert_int_eq(j->edge_keys[k][0], F_K);
    }
    ck_assert_int_ne(j->chain, env.plan->nodes[j->inputs[0]].chain);
    ck_assert_int_ne(j->chain, env.plan->nodes[j->inputs[1]].chain);
    s_teardown(&env);

    ck_assert_int_eq(s_load(&env,
                            "    kind: window\n    key: k\n    window: {type: sliding, size: 10s, "
                            "slide: 5s}\n"),
                     SL_OK);
    j = &env.plan->nodes[sl_spec_find(env.spec, "j")];
    sl_schema_format(j->out, buf, sizeof buf);
    ck_assert_str_eq(buf, "window_start:timestamp, window_end:timestamp, k:int64, ts:timestamp, "
                          "v:string, right_k:int64, right_ts:timestamp, w:int64");
    ck_assert_int_eq(j->rowtime, 1);
    s_teardown(&env);
}
END_TEST

/* Keys of different names on each side hash the right field. */
START_TEST(test_plan_keys_by_side)
{
    s_env_t env;
    memset(&env, 0, sizeof env);
    const char *text = "name: t\n"
                       "sources:\n"
                       "  - {name: a, type: file, format: csv, path: a.csv, timestamp: at, "
                       "schema: {id: int64, at: timestamp}}\n"
                       "  - {name: b, type: file, format: csv, path: b.csv, timestamp: bt, "
                       "schema: {x: string, bt: timestamp, ref: int64}}\n"
                       "operators:\n"
                       "  - {name: j, type: join, inputs: [a, b], kind: enrich, "
                       "key: {left: id, right: ref}}\n"
                       "sinks:\n"
                       "  - {name: out, type: stdout, input: j}\n";
    env.d = sl_diag_new("job.yaml");
    int rc = sl_plan_load("job.yaml", text, strlen(text), NULL, 3, env.d, &env.spec, &env.plan);
    if (rc)
        sl_diag_print(env.d, stderr);
    ck_assert_int_eq(rc, SL_OK);
    const sl_plan_node_t *j = &env.plan->nodes[sl_spec_find(env.spec, "j")];
    ck_assert_int_eq(j->edge_keys[0][0], 0);
    ck_assert_int_eq(j->edge_keys[1][0], 2);
    ck_assert_int_eq(j->join.ltime, 1);
    ck_assert_int_eq(j->join.rtime, 1);
    ck_assert_int_eq(j->rowtime, 1);
    char buf[256];
    sl_schema_format(j->out, buf, sizeof buf);
    ck_assert_str_eq(buf, "id:int64, at:timestamp, x:string, bt:timestamp, ref:int64");
    s_teardown(&env);
}
END_TEST

/* Spec errors: body, expected message fragment. */
static void s_expect_error(const char *body, const char *msg)
{
    s_env_t env;
    int rc = s_load(&env, body);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl_diag_print(env.d, f);
    fclose(f);
    S_CHECK(rc == SL_SPEC, "no error for:\n%s", body);
    S_CHECK(strstr(text, msg), "wanted '%s', got:\n%s", msg, text);
    free(text);
    s_teardown(&env);
}

START_TEST(test_plan_errors)
{
    s_expect_error("    key: k\n", "needs a 'kind' field");
    s_expect_error("    kind: intervall\n    key: k\n    between: [0s, 1s]\n",
                   "did you mean 'interval'?");
    s_expect_error("    kind: interval\n    key: k\n", "needs a 'between' field");
    s_expect_error("    kind: interval\n    key: k\n    between: 5s\n", "must be [LOWER, UPPER]");
    s_expect_error("    kind: interval\n    key: k\n    between: [5s, -5s]\n",
                   "lower bound is above the upper");
    s_expect_error("    kind: interval\n    key: k\n    between: [-5x, 1s]\n",
                   "must be a duration");
    s_expect_error("    kind: enrich\n    key: k\n    between: [0s, 1s]\n",
                   "an enrich join takes no 'between'");
    s_expect_error("    kind: window\n    key: k\n", "needs a 'window' field");
    s_expect_error("    kind: window\n    key: k\n    window: {type: session, gap: 1s}\n",
                   "tumbling or sliding windows, not session");
    s_expect_error("    kind: enrich\n    key: {left: [k, ts], right: [k]}\n",
                   "names 2 left fields and 1 right");
    s_expect_error("    kind: enrich\n    key: {left: [ts], right: [k]}\n",
                   "is timestamp on the left but 'k' is int64 on the right");
    s_expect_error("    kind: enrich\n    key: {left: k}\n", "{left: [...], right: [...]}");
    s_expect_error("    kind: enrich\n    key: v\n", "right key of 'j': unknown field 'v'");
    s_expect_error("    kind: enrich\n    key: k\n    on_missing: null\n",
                   "on_missing must be 'drop' or 'emit_nulls'");
}
END_TEST

START_TEST(test_plan_no_event_time)
{
    s_env_t env;
    memset(&env, 0, sizeof env);
    const char *text = "name: t\n"
                       "sources:\n"
                       "  - {name: a, type: generator, count: 3}\n"
                       "  - {name: b, type: generator, count: 3}\n"
                       "operators:\n"
                       "  - {name: j, type: join, inputs: [a, b], kind: enrich, key: seq}\n"
                       "  - {name: k, type: join, inputs: [a], kind: enrich, key: seq}\n"
                       "sinks:\n"
                       "  - {name: out, type: stdout, input: j}\n"
                       "  - {name: out2, type: stdout, input: k}\n";
    env.d = sl_diag_new("job.yaml");
    ck_assert_int_eq(
        sl_plan_load("job.yaml", text, strlen(text), NULL, 1, env.d, &env.spec, &env.plan),
        SL_SPEC);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    sl_diag_print(env.d, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(out, "its left input 'a' has no event time"));
    ck_assert_ptr_nonnull(strstr(out, "'k' (join) takes 2 input, not 1"));
    free(out);
    s_teardown(&env);
}
END_TEST

/* A right field whose right_ name is taken too is an error. */
START_TEST(test_plan_prefix_clash)
{
    s_env_t env;
    memset(&env, 0, sizeof env);
    const char *text = "name: t\n"
                       "sources:\n"
                       "  - {name: a, type: file, format: csv, path: a.csv, timestamp: t, "
                       "schema: {k: int64, t: timestamp, right_k: int64}}\n"
                       "  - {name: b, type: file, format: csv, path: b.csv, timestamp: t, "
                       "schema: {k: int64, t: timestamp}}\n"
                       "operators:\n"
                       "  - {name: j, type: join, inputs: [a, b], kind: enrich, key: k}\n"
                       "sinks:\n"
                       "  - {name: out, type: stdout, input: j}\n";
    env.d = sl_diag_new("job.yaml");
    ck_assert_int_eq(
        sl_plan_load("job.yaml", text, strlen(text), NULL, 1, env.d, &env.spec, &env.plan),
        SL_SPEC);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    sl_diag_print(env.d, f);
    fclose(f);
    ck_assert_ptr_nonnull(
        strstr(out, "right field 'k' of 'j' clashes with a left field, and so does 'right_k'"));
    free(out);
    s_teardown(&env);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("join");
    TCase *tc = tcase_create("interval");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_interval_two_sided);
    tcase_add_test(tc, test_interval_negative);
    tcase_add_test(tc, test_interval_point);
    tcase_add_test(tc, test_interval_late);
    tcase_add_test(tc, test_interval_retention_bounds);
    suite_add_tcase(s, tc);
    tc = tcase_create("window");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_window_tumbling);
    tcase_add_test(tc, test_window_sliding);
    tcase_add_test(tc, test_window_late);
    suite_add_tcase(s, tc);
    tc = tcase_create("enrich");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_enrich_drop);
    tcase_add_test(tc, test_enrich_emit_nulls);
    tcase_add_test(tc, test_enrich_versions);
    tcase_add_test(tc, test_enrich_adjusted_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("rocksdb");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_rocks_interval);
    tcase_add_test(tc, test_rocks_timing);
    tcase_add_test(tc, test_rocks_window);
    tcase_add_test(tc, test_rocks_enrich);
    suite_add_tcase(s, tc);
    tc = tcase_create("rocksdb-big");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_rocks_bigger_than_cache);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, test_plan_schema);
    tcase_add_test(tc, test_plan_keys_by_side);
    tcase_add_test(tc, test_plan_errors);
    tcase_add_test(tc, test_plan_no_event_time);
    tcase_add_test(tc, test_plan_prefix_clash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
