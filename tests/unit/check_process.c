/* check_process.c — keyed process functions: the in-memory keyed state
 * (value, list and map state per key, keys freed when empty, timers in
 * (time, key bytes, registration) order with set-once and delete), the
 * process operator driven through its vtable with a test function
 * (event-time timers fire only when the watermark reaches them, ties by
 * key, deleted timers never fire, timers behind the watermark fire after
 * the batch, every event-time timer fires at end of input even when set
 * by on_timer, processing-time timers fire on the tick and are dropped at
 * end of input, state scoped to the key, errors of the function, of a
 * state call and of an emit fail the task with clear messages, records
 * without event time are counted and skipped), and the plan of a
 * `type: process` step with the device_alerts plugin (hash partitioned by
 * its key, the function's outputs, time, refusals). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyed_state.h"
#include "operator.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "sluice/plugin.h"
#include "testutil.h"

#define S_PLUGIN SL_PLUGIN_DIR "/libsluice_device_alerts.so"

/* ---- keyed state --------------------------------------------------------------- */

static void s_sel(sl_kstate_t *s, const char *key)
{
    uint32_t n = (uint32_t)strlen(key);
    ck_assert_int_eq(
        sl_kstate_select(s, (uint64_t)n * 31u + (uint8_t)key[0], (const uint8_t *)key, n), SL_OK);
}

START_TEST(test_state_value_list_map)
{
    sl_kstate_t *s = sl_kstate_new();
    ck_assert_ptr_nonnull(s);
    const void *d, *k;
    uint32_t len, klen;
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), SL_STATE); /* no current key */
    s_sel(s, "alpha");
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), 0);
    ck_assert_int_eq(sl_kstate_value_set(s, "v", "hello", 5), SL_OK);
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), 1);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(d, "hello", 5) == 0);
    ck_assert_int_eq(sl_kstate_value_set(s, "v", d, 3), SL_OK); /* from its own bytes */
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), 1);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(d, "hel", 3) == 0);
    ck_assert_int_eq(sl_kstate_value_set(s, "empty", "", 0), SL_OK);
    ck_assert_int_eq(sl_kstate_value_get(s, "empty", &d, &len), 1); /* set, though empty */
    ck_assert_uint_eq(len, 0);
    /* another key sees none of it */
    sl_kstate_release(s);
    s_sel(s, "beta");
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), 0);
    /* lists */
    ck_assert_int_eq(sl_kstate_list_len(s, "l"), 0);
    for (int i = 0; i < 100; i++) {
        char b[16];
        int n = snprintf(b, sizeof b, "item%d", i);
        ck_assert_int_eq(sl_kstate_list_append(s, "l", b, (uint32_t)n), SL_OK);
    }
    ck_assert_int_eq(sl_kstate_list_len(s, "l"), 100);
    ck_assert_int_eq(sl_kstate_list_get(s, "l", 42, &d, &len), 1);
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(d, "item42", 6) == 0);
    ck_assert_int_eq(sl_kstate_list_get(s, "l", 100, &d, &len), 0);
    ck_assert_int_eq(sl_kstate_list_append(s, "l", d, 0), SL_OK); /* an empty item */
    ck_assert_int_eq(sl_kstate_list_get(s, "l", 0, &d, &len), 1);
    ck_assert_int_eq(sl_kstate_list_append(s, "l", d, len), SL_OK); /* from its own buffer */
    ck_assert_int_eq(sl_kstate_list_get(s, "l", 101, &d, &len), 1);
    ck_assert(len == 5 && memcmp(d, "item0", 5) == 0);
    /* kinds are fixed by the first use of a name */
    ck_assert_int_eq(sl_kstate_value_set(s, "l", "x", 1), SL_TYPE);
    ck_assert_str_eq(sl_kstate_error(s), "state 'l' is a list state, not a value state");
    ck_assert_int_eq(sl_kstate_map_len(s, "v"), SL_TYPE);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(sl_kstate_value_set(s, longname, "x", 1), SL_INVAL);
    ck_assert_int_eq(sl_kstate_value_set(s, "", "x", 1), SL_INVAL);
    /* maps: ordered by bytes, a prefix first */
    const char *keys[] = {"b", "ab", "a", "abc", "", "z", "aa"};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(sl_kstate_map_put(s, "m", keys[i], (uint32_t)strlen(keys[i]), &i, 4),
                         SL_OK);
    ck_assert_int_eq(sl_kstate_map_len(s, "m"), 7);
    const char *order[] = {"", "a", "aa", "ab", "abc", "b", "z"};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(sl_kstate_map_at(s, "m", (uint32_t)i, &k, &klen, &d, &len), 1);
        ck_assert_uint_eq(klen, strlen(order[i]));
        ck_assert(memcmp(k, order[i], klen) == 0);
    }
    ck_assert_int_eq(sl_kstate_map_at(s, "m", 7, &k, &klen, &d, &len), 0);
    ck_assert_int_eq(sl_kstate_map_seek(s, "m", "ab", 2), 3);
    ck_assert_int_eq(sl_kstate_map_seek(s, "m", "abb", 3), 4);
    ck_assert_int_eq(sl_kstate_map_seek(s, "m", "zz", 2), 7);
    ck_assert_int_eq(sl_kstate_map_get(s, "m", "abc", 3, &d, &len), 1);
    int v;
    memcpy(&v, d, 4);
    ck_assert_int_eq(v, 3);
    char big[100];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(sl_kstate_map_put(s, "m", "abc", 3, big, 100), SL_OK); /* grows */
    ck_assert_int_eq(sl_kstate_map_put(s, "m", "abc", 3, "yy", 2), SL_OK);  /* shrinks */
    ck_assert_int_eq(sl_kstate_map_get(s, "m", "abc", 3, &d, &len), 1);
    ck_assert(len == 2 && memcmp(d, "yy", 2) == 0);
    ck_assert_int_eq(sl_kstate_map_len(s, "m"), 7);
    ck_assert_int_eq(sl_kstate_map_remove(s, "m", "aa", 2), 1);
    ck_assert_int_eq(sl_kstate_map_remove(s, "m", "aa", 2), 0);
    ck_assert_int_eq(sl_kstate_map_get(s, "m", "aa", 2, &d, &len), 0);
    ck_assert_int_eq(sl_kstate_map_len(s, "m"), 6);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 2);
    sl_kstate_destroy(&s);
    ck_assert_ptr_null(s);
    sl_kstate_destroy(&s); /* NULL is fine */
}
END_TEST

START_TEST(test_state_keys_freed_when_empty)
{
    sl_kstate_t *s = sl_kstate_new();
    s_sel(s, "a");
    ck_assert_int_eq(sl_kstate_value_set(s, "v", "1", 1), SL_OK);
    sl_kstate_release(s);
    s_sel(s, "b"); /* reads only */
    const void *d;
    uint32_t len;
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &len), 0);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 1);
    s_sel(s, "c");
    ck_assert_int_eq(sl_kstate_list_append(s, "l", "x", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_map_put(s, "m", "k", 1, "v", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, 5), SL_OK);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 2);
    s_sel(s, "c");
    ck_assert_int_eq(sl_kstate_list_clear(s, "l"), SL_OK);
    ck_assert_int_eq(sl_kstate_map_remove(s, "m", "k", 1), 1);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 2); /* its timer keeps it */
    int64_t t;
    ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_EVENT, 100, &t), 1);
    ck_assert_int_eq(t, 5);
    uint32_t klen;
    const uint8_t *k = sl_kstate_key(s, &klen);
    ck_assert(klen == 1 && k[0] == 'c');
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 1);
    s_sel(s, "a");
    ck_assert_int_eq(sl_kstate_value_clear(s, "v"), SL_OK);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 0);
    /* a deleted timer's key goes when its stale heap entry pops */
    s_sel(s, "d");
    ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, 7), SL_OK);
    ck_assert_int_eq(sl_kstate_timer_delete(s, SL_KS_EVENT, 7), 1);
    ck_assert_int_eq(sl_kstate_timer_delete(s, SL_KS_EVENT, 7), 0);
    sl_kstate_release(s);
    ck_assert_int_eq(sl_kstate_nkeys(s), 1);
    ck_assert_uint_eq(sl_kstate_timer_count(s, SL_KS_EVENT), 0);
    ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_EVENT, 100, &t), 0);
    ck_assert_int_eq(sl_kstate_nkeys(s), 0);
    sl_kstate_destroy(&s);
}
END_TEST

START_TEST(test_timer_order)
{
    sl_kstate_t *s = sl_kstate_new();
    const char *ks[] = {"b", "a", "c", "a", "b"};
    int64_t ts[] = {10, 10, 10, 5, 10}; /* b@10 twice: set once */
    for (int i = 0; i < 5; i++) {
        s_sel(s, ks[i]);
        ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, ts[i]), SL_OK);
        sl_kstate_release(s);
    }
    s_sel(s, "z");
    ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_PROCESSING, 1), SL_OK);
    ck_assert_int_eq(sl_kstate_timer_set(s, 7, 1), SL_INVAL);
    sl_kstate_release(s);
    ck_assert_uint_eq(sl_kstate_timer_count(s, SL_KS_EVENT), 4);
    ck_assert_uint_eq(sl_kstate_timer_count(s, SL_KS_PROCESSING), 1);
    int64_t t;
    ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_EVENT, 4, &t), 0);
    const char *want[] = {"a", "a", "b", "c"};
    int64_t wt[] = {5, 10, 10, 10};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_EVENT, 10, &t), 1);
        uint32_t klen;
        const uint8_t *k = sl_kstate_key(s, &klen);
        ck_assert_int_eq(t, wt[i]);
        ck_assert(klen == 1 && k[0] == want[i][0]);
        sl_kstate_release(s);
    }
    ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_EVENT, SL_WM_MAX, &t), 0);
    sl_kstate_timer_drop_all(s, SL_KS_PROCESSING);
    ck_assert_uint_eq(sl_kstate_timer_count(s, SL_KS_PROCESSING), 0);
    ck_assert_int_eq(sl_kstate_timer_next(s, SL_KS_PROCESSING, SL_WM_MAX, &t), 0);
    ck_assert_int_eq(sl_kstate_nkeys(s), 0);

    /* Many keys and times, some deleted: pops come in (time, key) order and
     * only the live timers come out. */
    enum { N = 20000 };
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        int key = (int)(rng >> 33) % 997;
        int64_t tm = (int64_t)((rng >> 20) % 500);
        char kb[16];
        int n = snprintf(kb, sizeof kb, "k%04d", key);
        ck_assert_int_eq(
            sl_kstate_select(s, (uint64_t)key * 2654435761u, (uint8_t *)kb, (uint32_t)n), SL_OK);
        ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, tm), SL_OK);
        if (i % 3 == 0)
            ck_assert_int_eq(sl_kstate_timer_delete(s, SL_KS_EVENT, tm), 1);
        sl_kstate_release(s);
    }
    int64_t prev_t = -1, prev_k = -1;
    size_t popped = 0;
    while (sl_kstate_timer_next(s, SL_KS_EVENT, SL_WM_MAX, &t) == 1) {
        uint32_t klen;
        const uint8_t *k = sl_kstate_key(s, &klen);
        ck_assert_uint_eq(klen, 5);
        int64_t key = (k[1] - 48) * 1000 + (k[2] - 48) * 100 + (k[3] - 48) * 10 + (k[4] - 48);
        ck_assert_msg(t > prev_t || (t == prev_t && key > prev_k), "out of order at %zu", popped);
        prev_t = t;
        prev_k = key;
        sl_kstate_release(s);
        popped++;
    }
    size_t want_n = 0;
    {
        /* the reference: the last operation on each (key, time) was a set */
        static signed char st[997][500]; /* 0 never, 1 set, 2 deleted */
        memset(st, 0, sizeof st);
        rng = 12345;
        for (int i = 0; i < N; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            int key = (int)(rng >> 33) % 997;
            int tm = (int)((rng >> 20) % 500);
            st[key][tm] = i % 3 == 0 ? 2 : 1;
        }
        for (int key = 0; key < 997; key++)
            for (int tm = 0; tm < 500; tm++)
                want_n += st[key][tm] == 1;
    }
    ck_assert_uint_eq(popped, want_n);
    ck_assert_int_eq(sl_kstate_nkeys(s), 0);
    sl_kstate_destroy(&s);
}
END_TEST

/* ---- the operator with a test function ---------------------------------------- */

/* Input (device: string, ts: timestamp, op: int64); output (what: string,
 * key: string, t: int64, kind: int64, n: int64). op says what the record does. */
enum {
    OP_COUNT = 0,      /* value state n += 1; emits ("rec", key, time, wm, n) */
    OP_EVENT = 1,      /* event timer at ts + 10 */
    OP_DELETE = 2,     /* deletes the event timer at ts + 10 */
    OP_PROC = 3,       /* processing timer at ts */
    OP_MISUSE = 4,     /* list_append on the value state n: an error */
    OP_BAD_EMIT = 5,   /* emits an int64 as `what` */
    OP_FAIL = 6,       /* returns an error */
    OP_CHAIN = 7,      /* event timer at ts; on_timer sets the next, 3 in all */
    OP_EVENT_EXACT = 8 /* event timer at ts */
};

static bool s_wall;              /* time: processing (ctx->time is the wall clock) */
static const char *s_extra = ""; /* more fields of the process step (s_setup) */

static int64_t s_get_n(sl_udf_ctx_t *ctx)
{
    const void *d;
    uint32_t len;
    int64_t n = 0;
    if (ctx->host->value_get(ctx, "n", &d, &len) == 1 && len == 8)
        memcpy(&n, d, 8);
    return n;
}

static int s_out(sl_udf_ctx_t *ctx, const char *what, int64_t t, int64_t kind, int64_t n)
{
    sl_udf_value_t o[5] = {
        {.type = SL_UDF_STRING, .len = (uint32_t)strlen(what), .u.s = what},
        ctx->key[0],
        {.type = SL_UDF_INT64, .u.i = t},
        {.type = SL_UDF_INT64, .u.i = kind},
        {.type = SL_UDF_INT64, .u.i = n},
    };
    return ctx->host->emit(ctx, o);
}

static int s_probe(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)out;
    const sl_udf_host_t *h = ctx->host;
    int64_t ts = in[1].u.i;
    if (!s_wall)
        ck_assert_int_eq(ctx->time, ts);
    ck_assert_int_eq(ctx->nkey, 1);
    ck_assert(ctx->key[0].len == in[0].len && !memcmp(ctx->key[0].u.s, in[0].u.s, in[0].len));
    switch (in[2].u.i) {
    case OP_COUNT: {
        int64_t n = s_get_n(ctx) + 1;
        int rc = h->value_set(ctx, "n", &n, 8);
        return rc < 0 ? rc : s_out(ctx, "rec", ts, ctx->watermark == SL_UDF_TIME_MIN ? -1 : 0, n);
    }
    case OP_EVENT:
        return h->timer_set(ctx, SL_UDF_EVENT_TIME, ts + 10);
    case OP_DELETE:
        return h->timer_delete(ctx, SL_UDF_EVENT_TIME, ts + 10) < 0 ? -1 : 0;
    case OP_PROC:
        return h->timer_set(ctx, SL_UDF_PROCESSING_TIME, ts);
    case OP_MISUSE:
        h->list_append(ctx, "n", "x", 1); /* ignores the error: still fails */
        return 0;
    case OP_BAD_EMIT: {
        sl_udf_value_t o[5] = {{.type = SL_UDF_INT64, .u.i = 1}, ctx->key[0]};
        o[2].is_null = o[3].is_null = o[4].is_null = true;
        return h->emit(ctx, o);
    }
    case OP_FAIL:
        h->error(ctx, "no luck");
        return -1;
    case OP_CHAIN:
    case OP_EVENT_EXACT:
        return h->timer_set(ctx, SL_UDF_EVENT_TIME, ts);
    }
    return 0;
}

static int s_probe_timer(sl_udf_ctx_t *ctx, int64_t time, int kind)
{
    ck_assert_int_eq(ctx->time, time);
    int rc = s_out(ctx, "timer", time, kind, s_get_n(ctx));
    if (rc < 0)
        return rc;
    if (ctx->key[0].len == 5 && !memcmp(ctx->key[0].u.s, "chain", 5) && time % 100 < 2)
        return ctx->host->timer_set(ctx, SL_UDF_EVENT_TIME, time + 1); /* due at once */
    return 0;
}

static const sl_udf_field_t s_probe_in[] = {
    {"device", SL_UDF_STRING}, {"ts", SL_UDF_TIMESTAMP}, {"op", SL_UDF_INT64}};
static const sl_udf_function_t s_probe_fn = {.name = "probe",
                                             .kind = SL_UDF_PROCESS,
                                             .in = s_probe_in,
                                             .nin = 3,
                                             .call = s_probe,
                                             .on_timer = s_probe_timer};

typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
    sl_plugin_t *plugin;
    sl_plan_node_t *node;
    sl_opctx_t ctx;
    atomic_bool cancel;
    sl_batch_t *in;
    char out[64][96]; /* emitted rows as text */
    int nout;
} s_env_t;

static int s_collect(void *target, sl_batch_t *b)
{
    s_env_t *env = target;
    sl_value_t v[5];
    for (const uint8_t *r = sl_batch_first(b); r; r = sl_batch_next(b, r)) {
        sl_row_decode(env->node->out, r, v);
        ck_assert_int_lt(env->nout, 64);
        snprintf(env->out[env->nout++], 96, "%.*s %.*s %lld %lld %lld", (int)v[0].len, v[0].u.s,
                 (int)v[1].len, v[1].u.s, (long long)v[2].u.i, (long long)v[3].u.i,
                 (long long)v[4].u.i);
    }
    return SL_OK;
}

static const char *s_job(const char *key, const char *extra)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "name: t\n"
             "plugin: %s\n"
             "sources:\n"
             "  - name: src\n"
             "    type: file\n"
             "    format: csv\n"
             "    path: in.csv\n"
             "    schema: { device: string, ts: timestamp, op: int64 }\n"
             "    timestamp: ts\n"
             "    watermark: { max_out_of_order: 1s }\n"
             "operators:\n"
             "  - { name: p, type: process, input: src, key: %s, function: silence%s }\n"
             "sinks:\n"
             "  - { name: out, type: file, format: csv, input: p, path: o.csv }\n",
             S_PLUGIN, key, extra);
    return text;
}

/* Plans the job with the device_alerts plugin, then swaps in the probe
 * function (its inputs and outputs) and opens the operator. */
static void s_setup(s_env_t *env, bool processing)
{
    memset(env, 0, sizeof *env);
    char err[512];
    ck_assert_msg(sl_plugin_open(S_PLUGIN, &env->plugin, err, sizeof err) == SL_OK, "%s", err);
    char extra[256];
    snprintf(extra, sizeof extra, "%s%s", processing ? ", time: processing" : "", s_extra);
    const char *text = s_job("[device]", extra);
    s_wall = processing;
    env->d = sl_diag_new("job.yaml");
    int rc = sl_plan_load_with("job.yaml", text, strlen(text), NULL, 1, env->plugin, env->d,
                               &env->spec, &env->plan);
    ck_assert_msg(rc == SL_OK, "%s", sl_diag_count(env->d) ? sl_diag_message(env->d, 0) : "?");
    sl_plan_node_t *nd = env->node = &env->plan->nodes[sl_spec_find(env->spec, "p")];
    ck_assert_int_eq(nd->kind, SL_OP_PROCESS);
    ck_assert_ptr_eq(sl_op_vtable(nd), &sl_op_process);
    nd->udf = &s_probe_fn;
    nd->udf_in[0] = 0;
    nd->udf_in[1] = 1;
    int *in3 = realloc(nd->udf_in, 3 * sizeof *in3);
    ck_assert_ptr_nonnull(in3);
    in3[2] = 2;
    nd->udf_in = in3;
    sl_schema_destroy(&nd->out);
    nd->out = sl_schema_new();
    const char *names[] = {"what", "key", "t", "kind", "n"};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(sl_schema_add(nd->out, names[i], i < 2 ? SL_TYPE_STRING : SL_TYPE_INT64),
                         SL_OK);
    atomic_init(&env->cancel, false);
    sl_opctx_t *c = &env->ctx;
    c->plan = env->plan;
    c->node = nd;
    c->parallelism = 1;
    c->in = env->plan->nodes[nd->inputs[0]].out;
    c->out.batch = sl_batch_new(0);
    c->out.schema = nd->out;
    c->out.flush = s_collect;
    c->out.target = env;
    c->arena = sl_arena_new(0);
    c->cancel = &env->cancel;
    c->watermark = SL_WM_MIN;
    env->in = sl_batch_new(0);
    ck_assert_int_eq(sl_op_process.open(c), SL_OK);
}

static void s_teardown(s_env_t *env)
{
    sl_op_process.close(&env->ctx);
    ck_assert_ptr_null(env->ctx.state);
    sl_batch_destroy(&env->ctx.out.batch);
    sl_arena_destroy(&env->ctx.arena);
    sl_batch_destroy(&env->in);
    sl_plan_destroy(&env->plan);
    sl_spec_destroy(&env->spec);
    sl_diag_destroy(&env->d);
    sl_plugin_close(&env->plugin);
}

/* Runs one batch of records "device ts op" and returns process's result. */
static int s_batch(s_env_t *env, int n, const char *const *devs, const int64_t *ts,
                   const int64_t *ops)
{
    sl_batch_clear(env->in);
    for (int i = 0; i < n; i++) {
        sl_value_t v[3] = {devs[i] ? sl_value_str(devs[i], (uint32_t)strlen(devs[i]))
                                   : sl_value_null(),
                           ts[i] >= 0 ? sl_value_ts(ts[i]) : sl_value_null(), sl_value_int(ops[i])};
        ck_assert_int_eq(sl_batch_append(env->in, env->ctx.in, v), SL_OK);
    }
    int rc = sl_op_process.process(&env->ctx, env->in, 0);
    sl_arena_reset(env->ctx.arena);
    ck_assert_int_eq(sl_emit_flush(&env->ctx.out), SL_OK);
    return rc;
}

static void s_one(s_env_t *env, const char *dev, int64_t ts, int64_t op)
{
    ck_assert_int_eq(s_batch(env, 1, &dev, &ts, &op), SL_OK);
}

static void s_wm(s_env_t *env, int64_t wm)
{
    env->ctx.watermark = wm;
    ck_assert_int_eq(sl_op_process.watermark(&env->ctx, wm), SL_OK);
    sl_arena_reset(env->ctx.arena);
    ck_assert_int_eq(sl_emit_flush(&env->ctx.out), SL_OK);
}

/* The rows emitted since *seen, joined by '|'. */
static const char *s_since(s_env_t *env, int *seen)
{
    static char buf[4096];
    buf[0] = '\0';
    for (; *seen < env->nout; (*seen)++) {
        if (buf[0])
            strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        strncat(buf, env->out[*seen], sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

START_TEST(test_event_timers_follow_the_watermark)
{
    s_env_t env;
    s_setup(&env, false);
    int seen = 0;
    const char *devs[] = {"b", "a", "c", "a", "a", "b", "b"};
    const int64_t ts[] = {100, 100, 50, 100, 7, 7, 7};
    const int64_t ops[] = {OP_EVENT, OP_EVENT, OP_EVENT, OP_EVENT, OP_COUNT, OP_COUNT, OP_COUNT};
    ck_assert_int_eq(s_batch(&env, 7, devs, ts, ops), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "rec a 7 -1 1|rec b 7 -1 1|rec b 7 -1 2");
    s_wm(&env, 59);
    ck_assert_str_eq(s_since(&env, &seen), "");
    s_wm(&env, 60);
    ck_assert_str_eq(s_since(&env, &seen), "timer c 60 1 0");
    /* a deleted timer never fires; one set again after deleting does */
    s_one(&env, "d", 100, OP_EVENT);
    s_one(&env, "d", 100, OP_DELETE);
    s_one(&env, "e", 100, OP_EVENT);
    s_one(&env, "e", 100, OP_DELETE);
    s_one(&env, "e", 100, OP_EVENT);
    s_wm(&env, 109);
    ck_assert_str_eq(s_since(&env, &seen), "");
    s_wm(&env, 110); /* ties by key; a once although set twice */
    ck_assert_str_eq(s_since(&env, &seen), "timer a 110 1 1|timer b 110 1 2|timer e 110 1 0");
    /* a timer at or behind the watermark fires after its batch */
    const char *d2[] = {"z", "y"};
    const int64_t t2[] = {105, 110};
    const int64_t o2[] = {OP_EVENT_EXACT, OP_EVENT_EXACT};
    ck_assert_int_eq(s_batch(&env, 2, d2, t2, o2), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "timer z 105 1 0|timer y 110 1 0");
    s_one(&env, "a", 120, OP_COUNT); /* the watermark in the context */
    ck_assert_str_eq(s_since(&env, &seen), "rec a 120 0 2");
    /* end of input: every event-time timer, also those on_timer sets */
    s_one(&env, "q", 5000, OP_EVENT_EXACT);
    s_one(&env, "chain", 1000, OP_CHAIN);
    s_wm(&env, SL_WM_MAX);
    ck_assert_str_eq(s_since(&env, &seen),
                     "timer chain 1000 1 0|timer chain 1001 1 0|timer chain 1002 1 0|"
                     "timer q 5000 1 0");
    ck_assert_int_eq(sl_op_process.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "");
    s_teardown(&env);
}
END_TEST

START_TEST(test_processing_timers_tick_and_drop_at_end)
{
    s_env_t env;
    s_setup(&env, true);
    int seen = 0;
    s_one(&env, "p", 1000, OP_PROC);
    s_one(&env, "p", 3000, OP_PROC);
    s_one(&env, "o", 1000, OP_EVENT); /* event time: ts is the wall clock here */
    ck_assert_int_eq(sl_op_process.tick(&env.ctx, 999), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "");
    ck_assert_int_eq(sl_op_process.tick(&env.ctx, 1000), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "timer p 1000 2 0");
    s_wm(&env, SL_WM_MAX); /* the event timer fires; the processing one is dropped */
    ck_assert_str_eq(s_since(&env, &seen), "timer o 1010 1 0");
    ck_assert_int_eq(sl_op_process.tick(&env.ctx, 10000), SL_OK);
    ck_assert_int_eq(sl_op_process.finish(&env.ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&env.ctx.out), SL_OK);
    ck_assert_str_eq(s_since(&env, &seen), "");
    s_teardown(&env);
}
END_TEST

START_TEST(test_errors_fail_the_task)
{
    static const struct {
        int64_t op;
        const char *msg;
    } cases[] = {
        {OP_MISUSE, "process 'p': function 'probe' failed in a record: state 'n' is a value "
                    "state, not a list state"},
        {OP_BAD_EMIT, "process 'p': function 'probe' failed in a record: emitted a int64 for "
                      "field 'what' declared string"},
        {OP_FAIL, "process 'p': function 'probe' failed in a record: no luck"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s_env_t env;
        s_setup(&env, false);
        s_one(&env, "k", 10, OP_COUNT); /* makes n a value state */
        const char *dev = "k";
        int64_t ts = 11;
        ck_assert_int_eq(s_batch(&env, 1, &dev, &ts, &cases[i].op), SL_EVAL);
        ck_assert_str_eq(env.ctx.err, cases[i].msg);
        s_teardown(&env);
    }
    /* records without event time are counted and skipped */
    s_env_t env;
    s_setup(&env, false);
    const char *devs[] = {"k", "k"};
    const int64_t ts[] = {-1, 5};
    const int64_t ops[] = {OP_COUNT, OP_COUNT};
    ck_assert_int_eq(s_batch(&env, 2, devs, ts, ops), SL_OK);
    ck_assert_int_eq(env.nout, 1);
    ck_assert_uint_eq(atomic_load(&env.ctx.errors), 1);
    s_teardown(&env);
}
END_TEST

/* ---- the plan ------------------------------------------------------------------ */

/* state_ttl on the operator, on the wall clock: a value read again
 * soon after its write is there; once state_ttl has passed since the
 * last write it is gone (the count starts over). */
START_TEST(test_state_ttl_operator)
{
    s_env_t env;
    s_extra = ", state_ttl: 300ms";
    s_setup(&env, false);
    s_extra = "";
    ck_assert_int_eq(env.node->proc_ttl_ms, 300);
    int seen = 0;
    int64_t t0 = sl_op_now_ms();
    s_one(&env, "a", 10, OP_COUNT);
    ck_assert_str_eq(s_since(&env, &seen), "rec a 10 -1 1");
    s_one(&env, "a", 11, OP_COUNT);
    int64_t t1 = sl_op_now_ms();
    const char *got = s_since(&env, &seen);
    if (t1 - t0 < 300) /* else the machine was too slow to tell */
        ck_assert_str_eq(got, "rec a 11 -1 2");
    while (sl_op_now_ms() < t1 + 300) /* the last write was at t1 or before */
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    s_one(&env, "a", 12, OP_COUNT);
    ck_assert_str_eq(s_since(&env, &seen), "rec a 12 -1 1");
    /* a snapshot drops the expired cell: it is shorter than one taken
     * while the cell lived, and restores to a count starting over */
    sl_snap_w_t live, w;
    sl_snap_w_init(&live);
    sl_snap_w_init(&w);
    int64_t t2 = sl_op_now_ms();
    s_one(&env, "b", 13, OP_COUNT);
    ck_assert_str_eq(s_since(&env, &seen), "rec b 13 -1 1");
    ck_assert_int_eq(sl_op_process.snapshot(&env.ctx, &live), SL_OK);
    while (sl_op_now_ms() < t2 + 600) /* both cells expired */
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    ck_assert_int_eq(sl_op_process.snapshot(&env.ctx, &w), SL_OK);
    ck_assert_uint_lt(w.len, live.len);
    s_teardown(&env);
    s_extra = ", state_ttl: 300ms";
    s_setup(&env, false);
    s_extra = "";
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_int_eq(sl_op_process.restore(&env.ctx, &r), SL_OK);
    s_one(&env, "b", 14, OP_COUNT);
    seen = 0;
    ck_assert_str_eq(s_since(&env, &seen), "rec b 14 -1 1");
    sl_snap_w_free(&live);
    sl_snap_w_free(&w);
    s_teardown(&env);
}
END_TEST

/* Plans s_job(extra) with the plugin; returns the first error or "". */
static const char *s_plan(const char *key, const char *extra, sl_plan_t **plan, sl_spec_t **spec,
                          sl_plugin_t *plugin, sl_diag_t **d)
{
    static char msg[512];
    const char *text = s_job(key, extra);
    *d = sl_diag_new("job.yaml");
    int rc = sl_plan_load_with("job.yaml", text, strlen(text), NULL, 3, plugin, *d, spec, plan);
    snprintf(msg, sizeof msg, "%s", rc == SL_OK ? "" : sl_diag_message(*d, 0));
    return msg;
}

START_TEST(test_plan)
{
    sl_plugin_t *plugin;
    char err[512];
    ck_assert_msg(sl_plugin_open(S_PLUGIN, &plugin, err, sizeof err) == SL_OK, "%s", err);
    const sl_udf_function_t *f = sl_plugin_find(plugin, "silence");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->kind, SL_UDF_PROCESS);
    ck_assert_ptr_nonnull(f->on_timer);
    sl_plan_t *plan;
    sl_spec_t *spec;
    sl_diag_t *d;
    ck_assert_str_eq(s_plan("[device]", "", &plan, &spec, plugin, &d), "");
    const sl_plan_node_t *nd = &plan->nodes[sl_spec_find(spec, "p")];
    ck_assert_int_eq(nd->kind, SL_OP_PROCESS);
    ck_assert_ptr_eq(nd->udf, f);
    ck_assert_int_eq(nd->part[0], SL_PART_HASH);
    ck_assert_int_eq(nd->edge_nkeys[0], 1);
    ck_assert_int_eq(nd->edge_keys[0][0], 0);
    ck_assert_int_eq(nd->nkeys, 1);
    ck_assert_int_eq(nd->proc_time_field, 1);
    ck_assert(!nd->proc_processing);
    ck_assert_int_eq(nd->out->nfields, 3);
    ck_assert_str_eq(nd->out->fields[2].name, "alert_at");
    ck_assert_int_eq(nd->rowtime, -1);
    ck_assert_int_eq(nd->parallelism, 3);
    sl_plan_destroy(&plan);
    sl_spec_destroy(&spec);
    sl_diag_destroy(&d);

    ck_assert_str_eq(s_plan("[device]", ", time: processing", &plan, &spec, plugin, &d), "");
    nd = &plan->nodes[sl_spec_find(spec, "p")];
    ck_assert(nd->proc_processing);
    ck_assert_int_eq(nd->proc_time_field, -1);
    ck_assert_int_eq(nd->proc_ttl_ms, 0);
    sl_plan_destroy(&plan);
    sl_spec_destroy(&spec);
    sl_diag_destroy(&d);

    ck_assert_str_eq(s_plan("[device]", ", state_ttl: 30s", &plan, &spec, plugin, &d), "");
    nd = &plan->nodes[sl_spec_find(spec, "p")];
    ck_assert_int_eq(nd->proc_ttl_ms, 30000);
    sl_plan_destroy(&plan);
    sl_spec_destroy(&spec);
    sl_diag_destroy(&d);

    static const struct {
        const char *key, *extra, *msg;
    } bad[] = {
        {"[device]", ", time: wall", "time must be 'event' or 'processing', not 'wall'"},
        {"[nope]", "", "key of 'p': unknown field 'nope'"},
        {"[device]", ", when: now", "unknown process field 'when'"},
        {"[device]", ", state_ttl: 0ms", "state_ttl of process 'p' must be at least 1ms"},
        {"[device]", ", state_ttl: soon", "state_ttl must be a duration like"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *m = s_plan(bad[i].key, bad[i].extra, &plan, &spec, plugin, &d);
        ck_assert_ptr_null(plan);
        ck_assert_msg(strstr(m, bad[i].msg), "'%s' does not say '%s'", m, bad[i].msg);
        sl_diag_destroy(&d);
    }
    sl_plugin_close(&plugin);
}
END_TEST

/* ---- keyed state checkpoints ------------------------------------------------- */

static uint64_t s_fnv(const uint8_t *p, uint32_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int s_ks_check(void *arg, const uint8_t *key, uint32_t len, uint64_t *hash)
{
    (void)arg;
    if (len == 0 || len > 32)
        return SL_DATA;
    *hash = s_fnv(key, len);
    return SL_OK;
}

enum { KS_KEYS = 200, KS_MAXP = 128 };

static void s_ks_sel(sl_kstate_t *s, int key)
{
    char b[16];
    int n = snprintf(b, sizeof b, "key%d", key);
    ck_assert_int_eq(
        sl_kstate_select(s, s_fnv((uint8_t *)b, (uint32_t)n), (uint8_t *)b, (uint32_t)n), SL_OK);
}

/* Values, lists, maps and timers of both kinds over KS_KEYS keys. */
static void s_ks_fill(sl_kstate_t *s)
{
    for (int key = 0; key < KS_KEYS; key++) {
        s_ks_sel(s, key);
        char b[32];
        int n = snprintf(b, sizeof b, "val%d", key);
        if (key % 2)
            ck_assert_int_eq(sl_kstate_value_set(s, "v", b, (uint32_t)n), SL_OK);
        if (key % 9 == 4)
            ck_assert_int_eq(sl_kstate_value_set(s, "empty", "", 0), SL_OK);
        for (int i = 0; key % 3 && i < key % 5 + 1; i++)
            ck_assert_int_eq(sl_kstate_list_append(s, "l", b, (uint32_t)(n - i % 2)), SL_OK);
        for (int i = 0; key % 5 && i < key % 4 + 1; i++) {
            char k[8] = {(char)('z' - i), (char)i};
            ck_assert_int_eq(sl_kstate_map_put(s, "m", k, (uint32_t)(i % 2 + 1), b, (uint32_t)n),
                             SL_OK);
        }
        if (key % 7 == 0)
            ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, key * 10), SL_OK);
        if (key % 4 == 1) {
            ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, 5000 + key % 3), SL_OK);
            ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_EVENT, 7000), SL_OK);
            ck_assert_int_eq(sl_kstate_timer_delete(s, SL_KS_EVENT, 7000), 1); /* stale */
        }
        if (key % 11 == 0)
            ck_assert_int_eq(sl_kstate_timer_set(s, SL_KS_PROCESSING, key), SL_OK);
        sl_kstate_release(s);
    }
}

/* The state of one key as text (empty when it holds none). */
static void s_ks_dump(sl_kstate_t *s, int key, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    s_ks_sel(s, key);
    const void *d, *k;
    uint32_t len, klen;
    if (sl_kstate_value_get(s, "v", &d, &len) == 1)
        o += (size_t)snprintf(out + o, cap - o, "v=%.*s;", (int)len, (const char *)d);
    if (sl_kstate_value_get(s, "empty", &d, &len) == 1)
        o += (size_t)snprintf(out + o, cap - o, "empty=%u;", len);
    for (uint32_t i = 0; sl_kstate_list_get(s, "l", i, &d, &len) == 1; i++)
        o += (size_t)snprintf(out + o, cap - o, "l%u=%.*s;", i, (int)len, (const char *)d);
    for (uint32_t i = 0; sl_kstate_map_at(s, "m", i, &k, &klen, &d, &len) == 1; i++)
        o += (size_t)snprintf(out + o, cap - o, "m%u=%.*s:%u:%.*s;", i, (int)klen, (const char *)k,
                              klen, (int)len, (const char *)d);
    sl_kstate_release(s);
}

/* Pops every timer of kind: "time@key;" in pop order. */
static void s_ks_timers(sl_kstate_t *s, sl_ks_timer_t kind, char *out, size_t cap)
{
    size_t o = 0;
    int64_t t;
    out[0] = '\0';
    while (sl_kstate_timer_next(s, kind, SL_WM_MAX, &t) == 1) {
        uint32_t klen;
        const uint8_t *k = sl_kstate_key(s, &klen);
        o += (size_t)snprintf(out + o, cap - o, "%lld@%.*s;", (long long)t, (int)klen,
                              (const char *)k);
        ck_assert_uint_lt(o, cap);
        sl_kstate_release(s);
    }
}

START_TEST(test_state_snapshot_restore)
{
    sl_kstate_t *a = sl_kstate_new();
    s_ks_fill(a);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(sl_kstate_snapshot(a, &w, KS_MAXP), SL_OK);
    /* into one store: the same state, the same timer order */
    sl_kstate_t *b = sl_kstate_new();
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_int_eq(sl_kstate_restore(b, &r, KS_MAXP, 1, 0, s_ks_check, NULL), SL_OK);
    ck_assert_uint_eq(r.left, 0);
    ck_assert_int_eq(r.err, 0);
    /* into two: each keeps the keys of its key groups */
    sl_kstate_t *half[2];
    for (int p = 0; p < 2; p++) {
        half[p] = sl_kstate_new();
        sl_snap_r_init(&r, w.data, w.len);
        ck_assert_int_eq(sl_kstate_restore(half[p], &r, KS_MAXP, 2, p, s_ks_check, NULL), SL_OK);
    }
    int kept[2] = {0, 0};
    for (int key = 0; key < KS_KEYS; key++) {
        char da[512], db[512], dh[2][512];
        s_ks_dump(a, key, da, sizeof da);
        s_ks_dump(b, key, db, sizeof db);
        ck_assert_str_eq(da, db);
        char kb[16];
        int n = snprintf(kb, sizeof kb, "key%d", key);
        int own = sl_key_group_owner(sl_key_group(s_fnv((uint8_t *)kb, (uint32_t)n), KS_MAXP),
                                     KS_MAXP, 2);
        for (int p = 0; p < 2; p++)
            s_ks_dump(half[p], key, dh[p], sizeof dh[p]);
        ck_assert_str_eq(dh[own], da);
        ck_assert_str_eq(dh[1 - own], "");
        kept[own] += da[0] != '\0';
    }
    ck_assert_int_gt(kept[0], 0);
    ck_assert_int_gt(kept[1], 0);
    static char ta[8192], tb[8192], th[8192];
    for (int kind = SL_KS_EVENT; kind <= SL_KS_PROCESSING; kind++) {
        ck_assert_uint_eq(sl_kstate_timer_count(b, (sl_ks_timer_t)kind),
                          sl_kstate_timer_count(a, (sl_ks_timer_t)kind));
        ck_assert_uint_eq(sl_kstate_timer_count(half[0], (sl_ks_timer_t)kind) +
                              sl_kstate_timer_count(half[1], (sl_ks_timer_t)kind),
                          sl_kstate_timer_count(a, (sl_ks_timer_t)kind));
        s_ks_timers(a, (sl_ks_timer_t)kind, ta, sizeof ta);
        s_ks_timers(b, (sl_ks_timer_t)kind, tb, sizeof tb);
        ck_assert_str_ne(ta, "");
        ck_assert_str_eq(ta, tb);
        s_ks_timers(half[0], (sl_ks_timer_t)kind, th, sizeof th);
        s_ks_timers(half[1], (sl_ks_timer_t)kind, th, sizeof th);
    }
    /* the same key twice (a snapshot restored twice) */
    sl_kstate_t *twice = sl_kstate_new();
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_int_eq(sl_kstate_restore(twice, &r, KS_MAXP, 1, 0, s_ks_check, NULL), SL_OK);
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_int_eq(sl_kstate_restore(twice, &r, KS_MAXP, 1, 0, s_ks_check, NULL), SL_DATA);
    ck_assert_str_ne(sl_kstate_error(twice), "");
    sl_kstate_destroy(&twice);
    /* garbage: every truncation fails with SL_DATA; flipped bytes fail
     * cleanly or restore */
    for (size_t n = 0; n < w.len; n += (n < 64 ? 1 : 7)) {
        sl_kstate_t *g = sl_kstate_new();
        sl_snap_r_init(&r, w.data, n);
        int rc = sl_kstate_restore(g, &r, KS_MAXP, 1, 0, s_ks_check, NULL);
        ck_assert_msg(rc == SL_DATA || r.err, "truncated at %zu of %zu restored", n, w.len);
        ck_assert_msg(rc != SL_DATA || sl_kstate_error(g)[0], "no message at %zu", n);
        sl_kstate_destroy(&g);
    }
    uint8_t *m = malloc(w.len);
    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; i < w.len; i += w.len / 400 + 1)
        for (int x = 0; x < 3; x++) {
            memcpy(m, w.data, w.len);
            m[i] ^= (uint8_t)(x == 0 ? 0x01 : x == 1 ? 0x80 : 0xff);
            sl_kstate_t *g = sl_kstate_new();
            sl_snap_r_init(&r, m, w.len);
            int rc = sl_kstate_restore(g, &r, KS_MAXP, 1, 0, s_ks_check, NULL);
            ck_assert_msg(rc == SL_OK || rc == SL_DATA, "byte %zu: %d", i, rc);
            sl_kstate_destroy(&g);
        }
    free(m);
    sl_snap_w_free(&w);
    sl_kstate_destroy(&a);
    sl_kstate_destroy(&b);
    sl_kstate_destroy(&half[0]);
    sl_kstate_destroy(&half[1]);
}
END_TEST

/* ---- the rocksdb backend and the time to live -------------------------------- */

/* A keyed state in a fresh RocksDB store (tiny cache) under *dir. */
static sl_kstate_t *s_rocks_ks(char **dir, sl_kv_t **kv)
{
    *dir = sl_test_tmpdir();
    sl_kv_opts_t o;
    sl_kv_opts_default(&o);
    o.block_cache_bytes = 256 << 10;
    o.write_buffer_bytes = 64 << 10;
    char err[256];
    ck_assert_msg(sl_kv_open(*dir, &o, kv, err, sizeof err) == SL_OK, "%s", err);
    sl_kstate_t *s = sl_kstate_new();
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(sl_kstate_set_store(s, *kv, KS_MAXP), SL_OK);
    return s;
}

static void s_rocks_ks_free(sl_kstate_t **s, char **dir, sl_kv_t **kv)
{
    sl_kstate_destroy(s);
    sl_kv_close(kv);
    sl_test_rmrf(*dir);
    free(*dir);
    *dir = NULL;
}

static int s_count_fn(void *arg, const sl_kv_entry_t *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

/* Entries in the store. */
static size_t s_kv_count(sl_kv_t *kv)
{
    size_t n = 0;
    ck_assert_int_eq(sl_kv_scan(kv, 0, SL_KV_MAX_KEY_GROUP, s_count_fn, &n), SL_OK);
    return n;
}

static uint64_t s_rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static bool s_bytes_eq(const void *a, const void *b, uint32_t n)
{
    return n == 0 || (a && b && memcmp(a, b, n) == 0);
}

/* Both results equal: the return code and, when 1, the bytes. */
#define S_SAME(call_h, call_r, dh, lh, dr, lr)                                                     \
    do {                                                                                           \
        int rh_ = (call_h), rr_ = (call_r);                                                        \
        ck_assert_msg(rh_ == rr_, "op %d: heap %d, rocksdb %d (%s)", op, rh_, rr_,                 \
                      sl_kstate_error(r));                                                         \
        if (rh_ == 1 && (dh) != NULL) {                                                            \
            ck_assert_uint_eq(lh, lr);                                                             \
            ck_assert(s_bytes_eq(dh, dr, lh));                                                     \
        }                                                                                          \
    } while (0)

/* The same random calls on the heap and the rocksdb backend (a store
 * holding more than its cache, the keys coming back many times) give the
 * same results; with rocksdb only the current key is in memory. */
START_TEST(test_rocks_same_as_heap)
{
    char *dir;
    sl_kv_t *kv;
    sl_kstate_t *h = sl_kstate_new(), *r = s_rocks_ks(&dir, &kv);
    ck_assert_ptr_nonnull(h);
    uint64_t x = 0x2545f4914f6cdd1dull;
    uint8_t buf[600];
    for (int op = 0; op < 20000; op++) {
        int key = (int)(s_rnd(&x) % 300);
        s_ks_sel(h, key);
        s_ks_sel(r, key);
        for (int n = 1 + (int)(s_rnd(&x) % 4); n > 0; n--) {
            uint32_t len = (uint32_t)(s_rnd(&x) % (s_rnd(&x) % 8 ? 40 : 600));
            for (uint32_t i = 0; i < len; i++)
                buf[i] = (uint8_t)s_rnd(&x);
            char mk[16];
            uint32_t mkl = (uint32_t)snprintf(mk, sizeof mk, "k%d", (int)(s_rnd(&x) % 20));
            uint32_t idx = (uint32_t)(s_rnd(&x) % 12);
            const void *dh = NULL, *dr = NULL, *kh = NULL, *kr = NULL;
            uint32_t lh = 0, lr = 0, klh = 0, klr = 0;
            switch (s_rnd(&x) % 15) {
            case 0:
                S_SAME(sl_kstate_value_get(h, "v", &dh, &lh), sl_kstate_value_get(r, "v", &dr, &lr),
                       dh, lh, dr, lr);
                break;
            case 1:
                S_SAME(sl_kstate_value_set(h, "v", buf, len), sl_kstate_value_set(r, "v", buf, len),
                       dh, lh, dr, lr);
                break;
            case 2:
                S_SAME(sl_kstate_value_clear(h, "v"), sl_kstate_value_clear(r, "v"), dh, lh, dr,
                       lr);
                break;
            case 3:
                S_SAME(sl_kstate_list_append(h, "l", buf, len),
                       sl_kstate_list_append(r, "l", buf, len), dh, lh, dr, lr);
                break;
            case 4:
                S_SAME(sl_kstate_list_len(h, "l"), sl_kstate_list_len(r, "l"), dh, lh, dr, lr);
                break;
            case 5:
                S_SAME(sl_kstate_list_get(h, "l", idx, &dh, &lh),
                       sl_kstate_list_get(r, "l", idx, &dr, &lr), dh, lh, dr, lr);
                break;
            case 6:
                if (s_rnd(&x) % 4 == 0)
                    S_SAME(sl_kstate_list_clear(h, "l"), sl_kstate_list_clear(r, "l"), dh, lh, dr,
                           lr);
                break;
            case 7:
                S_SAME(sl_kstate_map_put(h, "m", mk, mkl, buf, len),
                       sl_kstate_map_put(r, "m", mk, mkl, buf, len), dh, lh, dr, lr);
                break;
            case 8:
                S_SAME(sl_kstate_map_get(h, "m", mk, mkl, &dh, &lh),
                       sl_kstate_map_get(r, "m", mk, mkl, &dr, &lr), dh, lh, dr, lr);
                break;
            case 9:
                S_SAME(sl_kstate_map_remove(h, "m", mk, mkl), sl_kstate_map_remove(r, "m", mk, mkl),
                       dh, lh, dr, lr);
                break;
            case 10:
                S_SAME(sl_kstate_map_len(h, "m"), sl_kstate_map_len(r, "m"), dh, lh, dr, lr);
                break;
            case 11:
                S_SAME(sl_kstate_map_at(h, "m", idx, &kh, &klh, &dh, &lh),
                       sl_kstate_map_at(r, "m", idx, &kr, &klr, &dr, &lr), dh, lh, dr, lr);
                S_SAME(klh == klr && (!klh || memcmp(kh, kr, klh) == 0), 1, NULL, 0, NULL, 0);
                break;
            case 12:
                S_SAME(sl_kstate_map_seek(h, "m", mk, mkl), sl_kstate_map_seek(r, "m", mk, mkl), dh,
                       lh, dr, lr);
                break;
            case 13:
                if (s_rnd(&x) % 4 == 0)
                    S_SAME(sl_kstate_map_clear(h, "m"), sl_kstate_map_clear(r, "m"), dh, lh, dr,
                           lr);
                break;
            default: /* a name used as another kind */
                S_SAME(sl_kstate_list_len(h, "v"), sl_kstate_list_len(r, "v"), dh, lh, dr, lr);
                break;
            }
        }
        sl_kstate_release(h);
        ck_assert_int_eq(sl_kstate_release(r), SL_OK);
        ck_assert_int_eq(sl_kstate_nkeys(r), 0); /* nothing stays in memory */
    }
    /* every cell of the heap is one entry of the store */
    size_t cells = 0;
    for (int key = 0; key < 300; key++) {
        s_ks_sel(h, key);
        const void *d;
        uint32_t l;
        cells += sl_kstate_value_get(h, "v", &d, &l) == 1;
        cells += sl_kstate_list_len(h, "l") > 0;
        cells += sl_kstate_map_len(h, "m") > 0;
        sl_kstate_release(h);
    }
    ck_assert_uint_gt(cells, 300);
    ck_assert_uint_eq(s_kv_count(kv), cells);
    sl_kstate_destroy(&h);
    s_rocks_ks_free(&r, &dir, &kv);
}
END_TEST

/* Time to live, on a clock the test sets: a cell expires ttl after its
 * last write (reads do not refresh it), is absent once expired, and is
 * deleted from memory or the store; a restore keeps the write times. */
static void s_ttl_case(bool rocks)
{
    char *dir = NULL;
    sl_kv_t *kv = NULL;
    sl_kstate_t *s = rocks ? s_rocks_ks(&dir, &kv) : sl_kstate_new();
    sl_kstate_set_ttl(s, 100);
    const void *d;
    uint32_t l;
    sl_kstate_set_now(s, 1000);
    s_ks_sel(s, 1);
    ck_assert_int_eq(sl_kstate_value_set(s, "v", "a", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_list_append(s, "l", "x", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_map_put(s, "m", "k", 1, "y", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    sl_kstate_set_now(s, 1050);
    s_ks_sel(s, 1);
    ck_assert_int_eq(sl_kstate_list_append(s, "l", "z", 1), SL_OK); /* a write: refreshed */
    ck_assert_int_eq(sl_kstate_map_get(s, "m", "k", 1, &d, &l), 1); /* a read: not */
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    s_ks_sel(s, 2);
    ck_assert_int_eq(sl_kstate_value_set(s, "v", "b", 1), SL_OK);
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(sl_kstate_snapshot(s, &w, KS_MAXP), SL_OK);
    sl_kstate_set_now(s, 1099);
    s_ks_sel(s, 1);
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &l), 1); /* 99 ms old */
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    sl_kstate_set_now(s, 1100);
    s_ks_sel(s, 1);
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &l), 0); /* 100 ms: expired */
    ck_assert_int_eq(sl_kstate_map_len(s, "m"), 0);
    ck_assert_int_eq(sl_kstate_map_seek(s, "m", "k", 1), 0);
    ck_assert_int_eq(sl_kstate_list_len(s, "l"), 2);
    ck_assert_int_eq(sl_kstate_list_get(s, "l", 1, &d, &l), 1);
    ck_assert_int_eq(l, 1);
    ck_assert_int_eq(memcmp(d, "z", 1), 0);
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    if (rocks) /* the expired value and map are gone from the store */
        ck_assert_uint_eq(s_kv_count(kv), 2);
    else
        ck_assert_int_eq(sl_kstate_nkeys(s), 2);
    sl_kstate_set_now(s, 1150);
    size_t dropped = sl_kstate_expire(s);
    if (!rocks) { /* key 2's value and key 1's list: nothing left */
        ck_assert_uint_eq(dropped, 2);
        ck_assert_int_eq(sl_kstate_nkeys(s), 0);
    }
    s_ks_sel(s, 2);
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &l), 0);
    ck_assert_int_eq(sl_kstate_value_set(s, "v", "c", 1), SL_OK); /* written anew */
    ck_assert_int_eq(sl_kstate_value_get(s, "v", &d, &l), 1);
    ck_assert_int_eq(sl_kstate_release(s), SL_OK);
    if (!rocks) {
        /* the snapshot of 1050 restored at 1100: the write times stay */
        sl_kstate_t *b = sl_kstate_new();
        sl_kstate_set_ttl(b, 100);
        sl_kstate_set_now(b, 1100);
        sl_snap_r_t r;
        sl_snap_r_init(&r, w.data, w.len);
        ck_assert_int_eq(sl_kstate_restore(b, &r, KS_MAXP, 1, 0, s_ks_check, NULL), SL_OK);
        s_ks_sel(b, 1);
        ck_assert_int_eq(sl_kstate_value_get(b, "v", &d, &l), 0);
        ck_assert_int_eq(sl_kstate_list_len(b, "l"), 2);
        sl_kstate_release(b);
        s_ks_sel(b, 2);
        ck_assert_int_eq(sl_kstate_value_get(b, "v", &d, &l), 1); /* written at 1050 */
        sl_kstate_release(b);
        sl_kstate_destroy(&b);
    }
    sl_snap_w_free(&w);
    if (rocks)
        s_rocks_ks_free(&s, &dir, &kv);
    else
        sl_kstate_destroy(&s);
}

START_TEST(test_ttl_heap)
{
    s_ttl_case(false);
}
END_TEST

START_TEST(test_ttl_rocks)
{
    s_ttl_case(true);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_state_value_list_map);
    tcase_add_test(tc, test_state_keys_freed_when_empty);
    tcase_add_test(tc, test_timer_order);
    tcase_add_test(tc, test_event_timers_follow_the_watermark);
    tcase_add_test(tc, test_processing_timers_tick_and_drop_at_end);
    tcase_add_test(tc, test_errors_fail_the_task);
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_state_snapshot_restore);
    tcase_add_test(tc, test_rocks_same_as_heap);
    tcase_add_test(tc, test_ttl_heap);
    tcase_add_test(tc, test_ttl_rocks);
    tcase_add_test(tc, test_state_ttl_operator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
