/* check_snapshot.c — operator snapshots (checkpoint state) and their byte
 * format. snap.c: round trips of every type, truncation at every byte,
 * garbage type bytes. Operators, driven through their vtables as the task
 * drives them: each is run once without interruption, then again with a
 * snapshot taken at many points (the very start, the middle, after the
 * end), restored into a fresh instance which runs the rest; the combined
 * output must equal the uninterrupted one. Sources snapshot from their
 * barrier hook (sl_op_source_checkpoint), as in a real checkpoint: the
 * generator (also in the middle of its pause), nexmark, and the file
 * source over several CSV / JSON Lines / text files split between two
 * subtasks. Keyed operators (aggregate, every kind of window) also
 * restore with another parallelism: the snapshot of one subtask restored
 * into two keeps in each only the keys of its key groups, two restored
 * into one merge. Truncated, mutated and random snapshots must fail with
 * SL_DATA and a message, never crash or leak. The keyed cases run again
 * with `state: {backend: rocksdb}` (a tiny cache): the snapshot is then
 * the store's checkpoint in a temporary checkpoint directory, and every
 * result must be the same; so do the joins (rocksdb-joins), which also
 * compare both backends directly and restore a heap snapshot into rocksdb. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/kvstate.h"
#include "sluice/plan.h"
#include "sluice/plugin.h"
#include "sluice/snap.h"
#include "testutil.h"

/* An assertion for loops (Check's own talk to the runner on every call). */
#define S_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* ---- snap.c ------------------------------------------------------------------ */

/* The rocksdb runs: checkpoints go to s_root/chk-<id>, and instances
 * restore from s_rdir (the checkpoint of the last snapshot id drawn). */
static char *s_root;
static char s_rdir[600];
static uint64_t s_ck;

/* A fresh checkpoint id for the snapshots about to be taken. */
static uint64_t s_new_ck(void)
{
    s_ck++;
    if (s_root)
        snprintf(s_rdir, sizeof s_rdir, "%s/chk-%llu", s_root, (unsigned long long)s_ck);
    return s_ck;
}

static void s_write_all_kinds(sl_snap_w_t *w)
{
    sl_snap_u8(w, 0xab);
    sl_snap_u32(w, 0xdeadbeefu);
    sl_snap_u64(w, UINT64_MAX - 5);
    sl_snap_i64(w, INT64_MIN);
    sl_snap_f64(w, -0.0);
    sl_snap_f64(w, INFINITY);
    sl_snap_bytes(w, "a\0b", 3);
    sl_snap_bytes(w, "", 0);
    sl_value_t vals[] = {sl_value_null(),      sl_value_int(-42),        sl_value_ts(1714521600000),
                         sl_value_double(NAN), sl_value_double(1.5),     sl_value_bool(true),
                         sl_value_bool(false), sl_value_str("héllo", 6), sl_value_str("", 0)};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        sl_snap_value(w, &vals[i]);
}

/* Reads back what s_write_all_kinds wrote; returns the reader's error. */
static int s_read_all_kinds(sl_snap_r_t *r, bool check)
{
    uint8_t a = sl_snap_get_u8(r);
    uint32_t b = sl_snap_get_u32(r);
    uint64_t c = sl_snap_get_u64(r);
    int64_t d = sl_snap_get_i64(r);
    double e = sl_snap_get_f64(r), f = sl_snap_get_f64(r);
    size_t n1, n2;
    const uint8_t *s1 = sl_snap_get_bytes(r, &n1);
    const uint8_t *s2 = sl_snap_get_bytes(r, &n2);
    sl_value_t v[9];
    for (int i = 0; i < 9; i++)
        sl_snap_get_value(r, &v[i]);
    if (check) {
        ck_assert_int_eq(r->err, 0);
        ck_assert_uint_eq(r->left, 0);
        ck_assert_uint_eq(a, 0xab);
        ck_assert_uint_eq(b, 0xdeadbeefu);
        ck_assert(c == UINT64_MAX - 5);
        ck_assert(d == INT64_MIN);
        ck_assert(e == 0.0 && signbit(e));
        ck_assert(isinf(f) && f > 0);
        ck_assert_uint_eq(n1, 3);
        ck_assert_int_eq(memcmp(s1, "a\0b", 3), 0);
        ck_assert_uint_eq(n2, 0);
        ck_assert_ptr_nonnull(s2);
        ck_assert(v[0].is_null);
        ck_assert(!v[1].is_null && v[1].type == SL_TYPE_INT64 && v[1].u.i == -42);
        ck_assert(v[2].type == SL_TYPE_TIMESTAMP && v[2].u.i == 1714521600000);
        ck_assert(v[3].type == SL_TYPE_DOUBLE && isnan(v[3].u.d));
        ck_assert(v[4].type == SL_TYPE_DOUBLE && v[4].u.d == 1.5);
        ck_assert(v[5].type == SL_TYPE_BOOL && v[5].u.b);
        ck_assert(v[6].type == SL_TYPE_BOOL && !v[6].u.b);
        ck_assert(v[7].type == SL_TYPE_STRING && v[7].len == 6 && !memcmp(v[7].u.s, "héllo", 6));
        ck_assert(v[8].type == SL_TYPE_STRING && !v[8].is_null && v[8].len == 0);
    } else if (r->err) {
        /* after an error every read is zero / null */
        ck_assert_int_eq(r->err, SL_DATA);
        ck_assert(v[8].is_null);
        ck_assert_uint_eq(sl_snap_get_u64(r), 0);
        size_t n;
        ck_assert_ptr_null(sl_snap_get_bytes(r, &n));
        ck_assert_uint_eq(n, 0);
    }
    return r->err;
}

START_TEST(test_snap_round_trip)
{
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    s_write_all_kinds(&w);
    ck_assert_int_eq(w.err, 0);
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    s_read_all_kinds(&r, true);
    /* little-endian whatever the host */
    ck_assert_uint_eq(w.data[0], 0xab);
    ck_assert_uint_eq(w.data[1], 0xef);
    ck_assert_uint_eq(w.data[4], 0xde);
    /* every truncation fails, none reads past the end (ASan) */
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, w.data, n);
        sl_snap_r_init(&r, copy, n);
        S_CHECK(s_read_all_kinds(&r, false) == SL_DATA, "truncated at %zu of %zu: no error", n,
                w.len);
        free(copy);
    }
    sl_snap_w_free(&w);
    ck_assert_ptr_null(w.data);
}
END_TEST

START_TEST(test_snap_garbage_values)
{
    const uint8_t bad_type[] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t bad_bool[] = {SL_TYPE_BOOL, 2};
    const uint8_t long_str[] = {SL_TYPE_STRING, 0xff, 0xff, 0xff, 0x7f, 'a'};
    const uint8_t *cases[] = {bad_type, bad_bool, long_str};
    size_t lens[] = {sizeof bad_type, sizeof bad_bool, sizeof long_str};
    for (int i = 0; i < 3; i++) {
        sl_snap_r_t r;
        sl_snap_r_init(&r, cases[i], lens[i]);
        sl_value_t v;
        sl_snap_get_value(&r, &v);
        ck_assert_int_eq(r.err, SL_DATA);
        ck_assert(v.is_null);
    }
    /* a growing writer: many small writes */
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    for (uint32_t i = 0; i < 100000; i++)
        sl_snap_u32(&w, i);
    ck_assert_uint_eq(w.len, 400000);
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    for (uint32_t i = 0; i < 100000; i++)
        S_CHECK(sl_snap_get_u32(&r) == i, "u32 %u", i);
    ck_assert_int_eq(r.err, 0);
    sl_snap_w_free(&w);
}
END_TEST

/* ---- operator instances -------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    size_t n; /* rows */
} s_buf_t;

static void s_buf_put(s_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        S_CHECK(b->p, "out of memory");
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

typedef struct {
    sl_diag_t *d;
    sl_spec_t *spec;
    sl_plan_t *plan;
    sl_plugin_t *plugin; /* when the spec names one */
} s_job_t;

static void s_job_load(s_job_t *j, const char *text)
{
    memset(j, 0, sizeof *j);
    j->d = sl_diag_new("job.yaml");
    if (strstr(text, "\nplugin: ")) {
        char err[512];
        S_CHECK(sl_plugin_open(SL_PLUGIN_DIR "/libsluice_device_alerts.so", &j->plugin, err,
                               sizeof err) == SL_OK,
                "%s", err);
    }
    int rc = sl_plan_load_with("job.yaml", text, strlen(text), NULL, 1, j->plugin, j->d, &j->spec,
                               &j->plan);
    if (rc)
        sl_diag_print(j->d, stderr);
    ck_assert_int_eq(rc, SL_OK);
}

static void s_job_free(s_job_t *j)
{
    sl_plan_destroy(&j->plan);
    sl_spec_destroy(&j->spec);
    sl_diag_destroy(&j->d);
    sl_plugin_close(&j->plugin);
}

/* One operator instance with a collecting emitter and a barrier hook that
 * snapshots once at least snap_at rows went out (on the snap_calls-th
 * call of the hook from then on). */
typedef struct {
    const sl_op_vtable_t *vt;
    sl_opctx_t ctx;
    atomic_bool cancel;
    _Atomic uint64_t pending;
    s_buf_t out, side;
    uint64_t snap_at;
    int snap_calls, calls;
    bool snapped;
    sl_snap_w_t snap;
    size_t snap_out_len, snap_out_n; /* output before the snapshot */
    sl_batch_t *in;                  /* input batch being filled */
    sl_batch_t *in1;                 /* the same, of input 1 (joins) */
} s_inst_t;

static int s_collect(void *target, sl_batch_t *b)
{
    s_buf_t *buf = target;
    s_buf_put(buf, b->data, b->len);
    buf->n += b->count;
    return SL_OK;
}

static int s_hook(void *arg)
{
    s_inst_t *in = arg;
    int rc = sl_emit_flush(&in->ctx.out);
    if (rc)
        return rc;
    if (in->snapped || in->out.n < in->snap_at || ++in->calls < in->snap_calls)
        return SL_OK;
    rc = in->vt->snapshot(&in->ctx, &in->snap);
    S_CHECK(rc == SL_OK && in->snap.err == 0, "snapshot: %d %s", rc, in->ctx.err);
    in->snapped = true;
    in->snap_out_len = in->out.len;
    in->snap_out_n = in->out.n;
    atomic_store(&in->pending, 0);
    return SL_OK;
}

static s_inst_t *s_inst_open(s_job_t *j, const char *name, int subtask, int par)
{
    s_inst_t *in = calloc(1, sizeof *in);
    ck_assert_ptr_nonnull(in);
    int id = sl_spec_find(j->spec, name);
    ck_assert_int_ge(id, 0);
    const sl_plan_node_t *nd = &j->plan->nodes[id];
    in->vt = sl_op_vtable(nd);
    ck_assert_ptr_nonnull(in->vt);
    ck_assert_ptr_nonnull(in->vt->snapshot);
    ck_assert_ptr_nonnull(in->vt->restore);
    atomic_init(&in->cancel, false);
    atomic_init(&in->pending, 0);
    sl_snap_w_init(&in->snap);
    sl_opctx_t *c = &in->ctx;
    c->plan = j->plan;
    c->node = nd;
    c->subtask = subtask;
    c->parallelism = par;
    c->in = nd->ninputs > 0 ? sl_plan_input_schema(j->plan, nd, 0) : NULL;
    c->watermark = SL_WM_MIN;
    c->out.batch = sl_batch_new(4096); /* small: many flushes */
    c->out.schema = nd->fused_map >= 0 ? sl_plan_emit_schema(j->plan, nd) : nd->out;
    c->out.flush = s_collect;
    c->out.target = &in->out;
    if (nd->side_out) {
        c->side.batch = sl_batch_new(4096);
        c->side.schema = nd->side_out;
        c->side.flush = s_collect;
        c->side.target = &in->side;
    }
    c->arena = sl_arena_new(0);
    c->cancel = &in->cancel;
    c->barrier_hook = s_hook;
    c->barrier_pending = &in->pending;
    c->idle_arg = in;
    c->ckpt_dir = s_root;
    c->restore_dir = s_rdir;
    in->in = sl_batch_new(2048);
    in->in1 = sl_batch_new(2048);
    ck_assert_int_eq(in->vt->open(c), SL_OK);
    return in;
}

static void s_inst_close(s_inst_t **pp)
{
    s_inst_t *in = *pp;
    in->vt->close(&in->ctx);
    sl_batch_destroy(&in->ctx.out.batch);
    sl_batch_destroy(&in->ctx.side.batch);
    sl_arena_destroy(&in->ctx.arena);
    sl_batch_destroy(&in->in);
    sl_batch_destroy(&in->in1);
    sl_snap_w_free(&in->snap);
    free(in->out.p);
    free(in->side.p);
    free(in);
    *pp = NULL;
}

static int s_restore(s_inst_t *in, const uint8_t *data, size_t len)
{
    sl_snap_r_t r;
    sl_snap_r_init(&r, data, len);
    in->ctx.err[0] = 0;
    int rc = in->vt->restore(&in->ctx, &r);
    if (rc == SL_OK && (r.err || r.left))
        rc = -1000; /* accepted without reading it all */
    return rc;
}

/* Restores a garbage snapshot into a fresh instance: must not crash or
 * leak; a failure is SL_DATA with a message. Returns the code. */
static int s_restore_garbage(s_job_t *j, const char *name, int sub, int par, const uint8_t *data,
                             size_t len)
{
    s_inst_t *in = s_inst_open(j, name, sub, par);
    int rc = s_restore(in, data, len);
    /* -1000: accepted, with bytes left over (the task refuses those) */
    S_CHECK(rc == SL_OK || rc == SL_DATA || rc == -1000, "garbage restore of '%s': %d", name, rc);
    S_CHECK(rc != SL_DATA || in->ctx.err[0], "garbage restore of '%s' failed without a message",
            name);
    s_inst_close(&in);
    return rc;
}

/* Every truncation of a good snapshot fails with SL_DATA, every single
 * byte mutation and random bytes fail cleanly or restore. */
static void s_garbage_suite(s_job_t *j, const char *name, int sub, int par, const sl_snap_w_t *good)
{
    ck_assert_int_eq(s_restore_garbage(j, name, sub, par, good->data, good->len), SL_OK);
    for (size_t n = 0; n < good->len; n++)
        S_CHECK(s_restore_garbage(j, name, sub, par, good->data, n) == SL_DATA,
                "'%s': truncated at %zu of %zu restored", name, n, good->len);
    uint8_t *m = malloc(good->len + 64);
    ck_assert_ptr_nonnull(m);
    /* a wrong version */
    memcpy(m, good->data, good->len);
    m[0] ^= 0x80;
    ck_assert_int_eq(s_restore_garbage(j, name, sub, par, m, good->len), SL_DATA);
    /* mutated bytes (at most ~300 positions, spread) */
    size_t step = good->len / 300 + 1;
    for (size_t i = 0; i < good->len; i += step)
        for (int x = 0; x < 3; x++) {
            memcpy(m, good->data, good->len);
            m[i] ^= (uint8_t)(x == 0 ? 0x01 : x == 1 ? 0x80 : 0xff);
            s_restore_garbage(j, name, sub, par, m, good->len);
        }
    /* random bytes */
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < 200; t++) {
        size_t n = (size_t)(t % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            m[i] = (uint8_t)(seed >> 56);
        }
        if (n && t % 2)
            m[0] = good->data[0]; /* a right version, garbage after */
        s_restore_garbage(j, name, sub, par, m, n);
    }
    /* trailing bytes are not silently ignored by the task either */
    memcpy(m, good->data, good->len);
    m[good->len] = 0;
    s_inst_t *in = s_inst_open(j, name, sub, par);
    int rc = s_restore(in, m, good->len + 1);
    ck_assert(rc != SL_OK);
    s_inst_close(&in);
    free(m);
}

static void s_buf_eq(const s_buf_t *a, const s_buf_t *b, const char *what)
{
    S_CHECK(a->n == b->n && a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len)),
            "%s: %zu rows (%zu bytes) vs %zu rows (%zu bytes)", what, a->n, a->len, b->n, b->len);
}

/* ---- sources ----------------------------------------------------------------- */

/* With s_run_limit_ms set, a source that runs longer than that is
 * canceled and the test fails saying s_run_limit_why, instead of running
 * into Check's timeout. */
static int s_run_limit_ms;
static const char *s_run_limit_why;

typedef struct {
    s_inst_t *in;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ended;   /* run_source returned */
    bool overran; /* the limit passed first: the source was canceled */
} s_watchdog_t;

static void *s_watchdog(void *arg)
{
    s_watchdog_t *wd = arg;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += s_run_limit_ms / 1000;
    dl.tv_nsec += (long)(s_run_limit_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wd->lock);
    while (!wd->ended && pthread_cond_timedwait(&wd->cond, &wd->lock, &dl) == 0)
        ;
    if (!wd->ended) {
        wd->overran = true;
        atomic_store(&wd->in->cancel, true);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

static void s_run_source(s_inst_t *in)
{
    s_watchdog_t wd = {.in = in};
    pthread_t th;
    if (s_run_limit_ms > 0) {
        pthread_mutex_init(&wd.lock, NULL);
        pthread_cond_init(&wd.cond, NULL);
        ck_assert_int_eq(pthread_create(&th, NULL, s_watchdog, &wd), 0);
    }
    int rc = in->vt->run_source(&in->ctx);
    if (s_run_limit_ms > 0) {
        pthread_mutex_lock(&wd.lock);
        wd.ended = true;
        pthread_cond_signal(&wd.cond);
        pthread_mutex_unlock(&wd.lock);
        pthread_join(th, NULL);
        pthread_mutex_destroy(&wd.lock);
        pthread_cond_destroy(&wd.cond);
        int limit = s_run_limit_ms;
        if (wd.overran)
            s_run_limit_ms = 0; /* the test ends here */
        S_CHECK(!wd.overran, "source '%s' still running after %d ms: %s", in->ctx.node->name, limit,
                s_run_limit_why);
    }
    S_CHECK(rc == SL_OK, "run_source: %d %s", rc, in->ctx.err);
    ck_assert_int_eq(sl_emit_flush(&in->ctx.out), SL_OK);
}

/* The whole output of subtask sub of par, uninterrupted. */
static void s_source_full(s_job_t *j, const char *name, int sub, int par, s_buf_t *full)
{
    s_inst_t *in = s_inst_open(j, name, sub, par);
    s_run_source(in);
    memset(full, 0, sizeof *full);
    s_buf_put(full, in->out.p, in->out.len);
    full->n = in->out.n;
    s_inst_close(&in);
}

/* Snapshots at `at` rows (the calls-th hook call there), restores into a
 * fresh instance, runs the rest: prefix + rest must equal full. Returns
 * the snapshot (caller frees) if keep. */
static void s_source_case(s_job_t *j, const char *name, int sub, int par, uint64_t at, int calls,
                          const s_buf_t *full, sl_snap_w_t *keep)
{
    s_inst_t *a = s_inst_open(j, name, sub, par);
    a->snap_at = at;
    a->snap_calls = calls;
    atomic_store(&a->pending, 1);
    s_run_source(a);
    S_CHECK(a->snapped, "'%s': no snapshot at %llu rows", name, (unsigned long long)at);
    s_buf_eq(&a->out, full, "a run with a snapshot");
    s_inst_t *b = s_inst_open(j, name, sub, par);
    int rc = s_restore(b, a->snap.data, a->snap.len);
    S_CHECK(rc == SL_OK, "restore at %llu: %d %s", (unsigned long long)at, rc, b->ctx.err);
    s_run_source(b);
    s_buf_t got = {0};
    s_buf_put(&got, a->out.p, a->snap_out_len);
    s_buf_put(&got, b->out.p, b->out.len);
    got.n = a->snap_out_n + b->out.n;
    char what[128];
    snprintf(what, sizeof what, "'%s' %d/%d restored at %llu rows", name, sub, par,
             (unsigned long long)at);
    s_buf_eq(&got, full, what);
    if (keep) {
        *keep = a->snap;
        sl_snap_w_init(&a->snap);
    }
    free(got.p);
    s_inst_close(&a);
    s_inst_close(&b);
}

/* The snapshot after the end restores into an instance that emits nothing. */
static void s_source_after_end(s_job_t *j, const char *name, int sub, int par)
{
    s_inst_t *a = s_inst_open(j, name, sub, par);
    s_run_source(a);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
    s_inst_t *b = s_inst_open(j, name, sub, par);
    ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
    s_run_source(b);
    ck_assert_uint_eq(b->out.n, 0);
    s_inst_close(&a);
    s_inst_close(&b);
    sl_snap_w_free(&w);
}

START_TEST(test_generator)
{
    s_job_t j;
    s_job_load(&j, "name: g\n"
                   "sources:\n"
                   "  - {name: gen, type: generator, count: 3001, start: 1000}\n"
                   "sinks:\n"
                   "  - {name: out, type: discard, input: gen}\n");
    for (int par = 1; par <= 3; par++)
        for (int sub = 0; sub < par; sub++) {
            s_buf_t full;
            s_source_full(&j, "gen", sub, par, &full);
            ck_assert_uint_eq(full.n, (3001 + (size_t)(par - 1 - sub)) / (size_t)par);
            uint64_t pts[] = {0, 1, 2, 17, 500, full.n / 2, full.n - 1, full.n};
            for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
                s_source_case(&j, "gen", sub, par, pts[i], 1, &full, NULL);
            s_source_after_end(&j, "gen", sub, par);
            free(full.p);
        }
    /* a snapshot of subtask 0 of 2 is not one of subtask 1 */
    s_inst_t *a = s_inst_open(&j, "gen", 0, 2);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
    s_inst_t *b = s_inst_open(&j, "gen", 1, 2);
    ck_assert_int_eq(s_restore(b, w.data, w.len), SL_DATA);
    ck_assert_ptr_nonnull(strstr(b->ctx.err, "subtask 1 of 2"));
    s_inst_close(&a);
    s_inst_close(&b);
    /* garbage */
    s_buf_t full;
    s_source_full(&j, "gen", 0, 1, &full);
    sl_snap_w_t mid;
    s_source_case(&j, "gen", 0, 1, 1234, 1, &full, &mid);
    s_garbage_suite(&j, "gen", 0, 1, &mid);
    sl_snap_w_free(&mid);
    sl_snap_w_free(&w);
    free(full.p);
    s_job_free(&j);
}
END_TEST

/* A snapshot taken in the middle of the pause keeps what is left of it. */
START_TEST(test_generator_pause)
{
    s_job_t j;
    s_job_load(&j, "name: g\n"
                   "sources:\n"
                   "  - {name: gen, type: generator, count: 40, pause: {after: 10, for: 200ms}}\n"
                   "sinks:\n"
                   "  - {name: out, type: discard, input: gen}\n");
    s_buf_t full;
    s_source_full(&j, "gen", 0, 1, &full);
    ck_assert_uint_eq(full.n, 40);
    /* hook calls at 10 rows: the top of the loop, then every ~5 ms of the
     * pause; the 4th is inside it */
    sl_snap_w_t w;
    s_source_case(&j, "gen", 0, 1, 10, 4, &full, &w);
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_uint_eq(sl_snap_get_u8(&r), 1);
    ck_assert_int_eq(sl_snap_get_i64(&r), 10); /* next seq */
    ck_assert_int_eq(sl_snap_get_i64(&r), 10); /* emitted */
    int64_t left = sl_snap_get_i64(&r);
    ck_assert_int_gt(left, 0);
    ck_assert_int_lt(left, 200);
    sl_snap_w_free(&w);
    /* before the pause: all of it is left; after: none */
    s_source_case(&j, "gen", 0, 1, 10, 1, &full, &w);
    sl_snap_r_init(&r, w.data, w.len);
    sl_snap_get_u8(&r);
    sl_snap_get_i64(&r);
    sl_snap_get_i64(&r);
    ck_assert_int_eq(sl_snap_get_i64(&r), 200);
    sl_snap_w_free(&w);
    s_source_case(&j, "gen", 0, 1, 11, 1, &full, &w);
    sl_snap_r_init(&r, w.data, w.len);
    sl_snap_get_u8(&r);
    sl_snap_get_i64(&r);
    sl_snap_get_i64(&r);
    ck_assert_int_eq(sl_snap_get_i64(&r), 0);
    sl_snap_w_free(&w);
    free(full.p);
    s_job_free(&j);
}
END_TEST

/* `pause: {until: PATH}`: the pause ends once the file exists, also a
 * pause restored from a snapshot taken inside it; an empty `until` is none. */
START_TEST(test_generator_pause_until)
{
    char dir[] = "/tmp/sluice-pause-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64], text[512];
    snprintf(path, sizeof path, "%s/go", dir);
    snprintf(text, sizeof text,
             "name: g\n"
             "sources:\n"
             "  - {name: gen, type: generator, count: 40,\n"
             "     pause: {after: 10, for: 250ms, until: \"%s\"}}\n"
             "sinks:\n"
             "  - {name: out, type: discard, input: gen}\n",
             path);
    s_job_t j;
    s_job_load(&j, text);
    const sl_plan_node_t *nd = &j.plan->nodes[0];
    ck_assert_str_eq(nd->gen_pause_until, path);
    /* no file yet: a snapshot inside the pause keeps what is left of it */
    s_buf_t full;
    s_source_full(&j, "gen", 0, 1, &full);
    ck_assert_uint_eq(full.n, 40);
    sl_snap_w_t w;
    s_source_case(&j, "gen", 0, 1, 10, 4, &full, &w);
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    sl_snap_get_u8(&r);
    sl_snap_get_i64(&r);
    sl_snap_get_i64(&r);
    int64_t left = sl_snap_get_i64(&r);
    ck_assert_int_gt(left, 0);
    ck_assert_int_lt(left, 250);
    sl_snap_w_free(&w);
    s_job_free(&j);
    /* with the file there, a pause of an hour ends at once, also when it is
     * restored from a snapshot taken inside it (s_source_case restores and
     * runs to the end) */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(text, sizeof text,
             "name: g\n"
             "sources:\n"
             "  - {name: gen, type: generator, count: 40,\n"
             "     pause: {after: 10, for: 1h, until: \"%s\"}}\n"
             "sinks:\n"
             "  - {name: out, type: discard, input: gen}\n",
             path);
    s_job_load(&j, text);
    s_run_limit_ms = 10000; /* the file is polled every 5 ms: ample on a loaded machine */
    s_run_limit_why = "the pause of an hour did not end when its `until` file existed";
    s_buf_t full2;
    s_source_full(&j, "gen", 0, 1, &full2);
    ck_assert_uint_eq(full2.n, 40);
    s_buf_eq(&full2, &full, "the output with the pause ended by its file");
    s_source_case(&j, "gen", 0, 1, 10, 1, &full2, NULL);
    s_run_limit_ms = 0;
    s_job_free(&j);
    free(full.p);
    free(full2.p);
    unlink(path);
    rmdir(dir);
    /* an empty `until` is none */
    s_job_load(
        &j, "name: g\n"
            "sources:\n"
            "  - {name: gen, type: generator, count: 4, pause: {after: 1, for: 1ms, until: \"\"}}\n"
            "sinks:\n"
            "  - {name: out, type: discard, input: gen}\n");
    ck_assert_ptr_null(j.plan->nodes[0].gen_pause_until);
    s_job_free(&j);
}
END_TEST

START_TEST(test_nexmark)
{
    s_job_t j;
    s_job_load(&j, "name: n\n"
                   "sources:\n"
                   "  - {name: ev, type: nexmark, events: 700}\n"
                   "sinks:\n"
                   "  - {name: out, type: discard, input: ev}\n");
    for (int par = 1; par <= 2; par++)
        for (int sub = 0; sub < par; sub++) {
            s_buf_t full;
            s_source_full(&j, "ev", sub, par, &full);
            ck_assert_uint_eq(full.n, 700 / (size_t)par);
            uint64_t pts[] = {0, 1, 49, full.n / 2, full.n - 1, full.n};
            for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
                s_source_case(&j, "ev", sub, par, pts[i], 1, &full, NULL);
            s_source_after_end(&j, "ev", sub, par);
            if (par == 2 && sub == 1) {
                sl_snap_w_t mid;
                s_source_case(&j, "ev", sub, par, 100, 1, &full, &mid);
                s_garbage_suite(&j, "ev", sub, par, &mid);
                sl_snap_w_free(&mid);
            }
            free(full.p);
        }
    s_job_free(&j);
}
END_TEST

/* A filter fused into the nexmark source (plan.h, fused_filter): the
 * source emits exactly the events that pass the condition, in order, each
 * with the columns read downstream and the others null (the condition's
 * event_type too), as a plain loop over sl_nexmark_event computes them;
 * snapshots between events restore exactly, since the position still
 * counts every event. */
START_TEST(test_nexmark_fused_filter)
{
    s_job_t j;
    s_job_load(&j,
               "name: n\n"
               "sources:\n"
               "  - {name: ev, type: nexmark, events: 3000, seed: 5}\n"
               "operators:\n"
               "  - {name: sel, type: filter, input: ev, "
               "where: \"event_type = 'bid' and auction % 7 = 0\"}\n"
               "  - {name: m, type: map, input: sel, select: {auction: auction, price: price}}\n"
               "  - {name: m2, type: map, input: sel, select: {price: price}}\n"
               "sinks:\n"
               "  - {name: out, type: discard, input: m}\n"
               "  - {name: out2, type: discard, input: m2}\n");
    int ev = sl_spec_find(j.spec, "ev"), sel = sl_spec_find(j.spec, "sel");
    ck_assert_int_eq(j.plan->nodes[ev].fused_filter, sel);
    ck_assert(j.plan->nodes[sel].fused);
    ck_assert_int_eq(j.plan->nodes[ev].fused_map, -1); /* two maps read the filter */
    const sl_schema_t *sch = j.plan->nodes[ev].out;
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 5;
    for (int par = 1; par <= 2; par++)
        for (int sub = 0; sub < par; sub++) {
            s_buf_t full;
            s_source_full(&j, "ev", sub, par, &full);
            /* the reference: every event of this subtask that passes */
            size_t n = 0;
            const uint8_t *r = full.p;
            for (uint64_t e = (uint64_t)sub; e < 3000; e += (uint64_t)par) {
                sl_nexmark_event_t x;
                ck_assert_int_eq(sl_nexmark_event(&cfg, e, &x), SL_OK);
                if (x.kind != SL_NEXMARK_BID || x.bid.auction % 7 != 0)
                    continue;
                S_CHECK(n < full.n, "%d/%d: event %llu missing", sub, par, (unsigned long long)e);
                sl_value_t v[22];
                sl_row_decode(sch, r, v);
                S_CHECK(!v[15].is_null && v[15].u.i == x.bid.auction && !v[17].is_null &&
                            v[17].u.i == x.bid.price,
                        "%d/%d: row %zu is not event %llu", sub, par, n, (unsigned long long)e);
                S_CHECK(v[0].is_null && v[16].is_null && v[21].is_null,
                        "%d/%d: row %zu carries columns nobody reads", sub, par, n);
                r += sl_row_len(r);
                n++;
            }
            ck_assert_uint_eq(n, full.n);
            ck_assert_uint_gt(n, 10);
            uint64_t pts[] = {0, 1, full.n / 2, full.n - 1, full.n};
            for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
                s_source_case(&j, "ev", sub, par, pts[i], 1, &full, NULL);
            s_source_after_end(&j, "ev", sub, par);
            free(full.p);
        }
    s_job_free(&j);
}
END_TEST

static void s_flush_in(s_inst_t *in);

/* The rows of map `mname` over the rows in `in` (encoded in the map's input
 * schema), as the unfused map makes them. */
static void s_map_rows(s_job_t *j, const char *mname, const s_buf_t *in, s_buf_t *out)
{
    s_inst_t *m = s_inst_open(j, mname, 0, 1);
    ck_assert(!m->ctx.node->fused);
    const uint8_t *r = in->p;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t len = sl_row_len(r);
        int rc = sl_batch_append_raw(m->in, r, len);
        if (rc == SL_LIMIT) {
            s_flush_in(m);
            rc = sl_batch_append_raw(m->in, r, len);
        }
        S_CHECK(rc == SL_OK, "append: %d", rc);
        r += len;
    }
    s_flush_in(m);
    ck_assert_int_eq(sl_emit_flush(&m->ctx.out), SL_OK);
    memset(out, 0, sizeof *out);
    s_buf_put(out, m->out.p, m->out.len);
    out->n = m->out.n;
    s_inst_close(&m);
}

/* A map fused into the nexmark source (behind a fused filter, or right
 * after the source): the source's rows equal, byte for byte, those the
 * unfused map makes from the source's rows (the same job with a second
 * consumer beside the map, which keeps it unfused), at P=1 and P=2, and a
 * snapshot at any point restores exactly. With event time from date_time
 * the source keeps the watermark itself, from every event generated. */
START_TEST(test_nexmark_fused_map)
{
    const char *maps[][2] = {
        /* after a filter: copies (date_time renamed and moved), arithmetic,
         * string functions (in the arena), a column null for bids */
        {"  - {name: sel, type: filter, input: ev, where: \"event_type = 'bid' and price % 3 = "
         "0\"}\n",
         "{d: date_time, auction: auction, p: \"price * 908 / 1000\", "
         "dir: \"split_index(url, '/', 3)\", up: \"upper(channel)\", "
         "c: \"count_char(extra, 'c')\", who: name, "
         "h: \"case when hour(date_time) >= 8 then 'day' else 'night' end\"}"},
        /* right after the source: every kind */
        {"", "{k: event_type, id: \"coalesce(person_id, auction_id, auction)\", t: date_time, "
             "s: \"coalesce(city, item_name, channel)\", e: expires}"},
    };
    for (size_t q = 0; q < sizeof maps / sizeof *maps; q++) {
        const char *in = maps[q][0][0] ? "sel" : "ev";
        char fused_text[2048], ref_text[2048];
        snprintf(fused_text, sizeof fused_text,
                 "name: n\n"
                 "sources:\n"
                 "  - {name: ev, type: nexmark, events: 3000, seed: 3, event_rate: 7}\n"
                 "operators:\n"
                 "%s"
                 "  - {name: m, type: map, input: %s, select: %s}\n"
                 "sinks:\n"
                 "  - {name: out, type: discard, input: m}\n",
                 maps[q][0], in, maps[q][1]);
        snprintf(ref_text, sizeof ref_text, "%s  - {name: out2, type: discard, input: %s}\n",
                 fused_text, in);
        s_job_t fj, rj;
        s_job_load(&fj, fused_text);
        s_job_load(&rj, ref_text);
        int fev = sl_spec_find(fj.spec, "ev"), rev = sl_spec_find(rj.spec, "ev");
        ck_assert_int_eq(fj.plan->nodes[fev].fused_map, sl_spec_find(fj.spec, "m"));
        ck_assert_int_eq(rj.plan->nodes[rev].fused_map, -1);
        for (int par = 1; par <= 2; par++)
            for (int sub = 0; sub < par; sub++) {
                s_buf_t full, wide, want;
                s_source_full(&fj, "ev", sub, par, &full);
                s_source_full(&rj, "ev", sub, par, &wide);
                s_map_rows(&rj, "m", &wide, &want);
                ck_assert_uint_gt(want.n, 50);
                char what[64];
                snprintf(what, sizeof what, "map %zu, %d/%d: fused vs unfused", q, sub, par);
                s_buf_eq(&full, &want, what);
                uint64_t pts[] = {0, 1, full.n / 3, full.n - 1, full.n};
                for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
                    s_source_case(&fj, "ev", sub, par, pts[i], 1, &full, NULL);
                s_source_after_end(&fj, "ev", sub, par);
                free(full.p);
                free(wide.p);
                free(want.p);
            }
        s_job_free(&fj);
        s_job_free(&rj);
    }
    /* event time from date_time: the source's own watermark, from every
     * event (the last of subtask 0 of 1 is event 2999, at 2999 * 1000 / 7
     * ms after the first, which fails the condition or not) */
    s_job_t j;
    s_job_load(&j, "name: n\n"
                   "sources:\n"
                   "  - {name: ev, type: nexmark, events: 3000, seed: 3, event_rate: 7, "
                   "timestamp: date_time, watermark: {max_out_of_order: 2s}}\n"
                   "operators:\n"
                   "  - {name: m, type: map, input: ev, select: {a: auction}}\n"
                   "sinks:\n"
                   "  - {name: out, type: discard, input: m}\n");
    ck_assert_int_eq(j.plan->nodes[sl_spec_find(j.spec, "ev")].fused_map,
                     sl_spec_find(j.spec, "m"));
    s_inst_t *a = s_inst_open(&j, "ev", 0, 1);
    ck_assert(a->ctx.own_wm);
    a->ctx.source_wm = SL_WM_MIN;
    s_run_source(a);
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 3;
    cfg.event_rate = 7;
    ck_assert_int_eq(a->ctx.source_wm, sl_nexmark_time(&cfg, 2999) - 2000 - 1);
    s_inst_close(&a);
    s_job_free(&j);
}
END_TEST

/* The file source over files in a directory, snapshotted before every
 * record (so across every file boundary). */
static void s_file_case(const char *dir, const char *glob, const char *format, const char *schema,
                        const char *extra, int maxpar, bool garbage)
{
    char text[2048];
    snprintf(text, sizeof text,
             "name: f\n"
             "sources:\n"
             "  - {name: src, type: file, format: %s, path: '%s/%s', schema: %s%s}\n"
             "sinks:\n"
             "  - {name: out, type: discard, input: src}\n",
             format, dir, glob, schema, extra);
    s_job_t j;
    s_job_load(&j, text);
    for (int par = 1; par <= maxpar; par++) {
        size_t total = 0;
        for (int sub = 0; sub < par; sub++) {
            s_buf_t full;
            s_source_full(&j, "src", sub, par, &full);
            total += full.n;
            for (uint64_t at = 0; at <= full.n; at++)
                s_source_case(&j, "src", sub, par, at, 1, &full, NULL);
            /* also on the second hook call at a point: after a bad record
             * was skipped or a file ended */
            for (uint64_t at = 0; at < full.n; at += 3)
                s_source_case(&j, "src", sub, par, at, 2, &full, NULL);
            s_source_after_end(&j, "src", sub, par);
            if (garbage && sub == par - 1) {
                sl_snap_w_t mid;
                s_source_case(&j, "src", sub, par, full.n / 2, 1, &full, &mid);
                s_garbage_suite(&j, "src", sub, par, &mid);
                sl_snap_w_free(&mid);
            }
            free(full.p);
        }
        if (par == 1)
            ck_assert_uint_gt(total, 3);
    }
    s_job_free(&j);
}

START_TEST(test_file_source)
{
    char *dir = sl_test_tmpdir();
    char path[4200];
    /* CSV with a header, several files (one empty, one header only, one
     * without a final newline, CRLF lines, a quoted field) */
    const char *csv[] = {
        "n,word,x\n1,alpha,1.5\n2,beta,2.5\n3,\"gam,ma\",3.5\n4,delta,4.5\n5,eps,5\n",
        "n,word,x\r\n6,zeta,6\r\n7,eta,7\r\n\r\n8,theta,8\r\n",
        "",
        "n,word,x\n",
        "word,n,x\niota,9,9\nkappa,10,10\nlambda,11,11\nmu,12,12",
        "n,word,x\n13,nu,13\n14,xi,14\n15,omicron,15\n16,pi,16\n17,rho,17\n18,sigma,18\n",
    };
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/part-%d.csv", dir, i);
        sl_test_write_file(path, csv[i]);
    }
    s_file_case(dir, "*.csv", "csv", "{n: int64, word: string, x: double}", "", 3, true);
    /* JSON Lines with a bad record skipped */
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    sl_test_write_file(path, "{\"n\": 1, \"s\": \"one\"}\n{\"n\": 2, \"s\": \"two\"}\n"
                             "{\"n\": \"bad\"}\n\n{\"n\": 3}\n{\"n\": 4, \"s\": \"four\"}\n");
    snprintf(path, sizeof path, "%s/b.jsonl", dir);
    sl_test_write_file(path, "{\"n\": 5}\n{\"n\": 6, \"s\": \"six\"}\n{\"n\": 7}\n");
    s_file_case(dir, "*.jsonl", "jsonl", "{n: int64, s: string}", ", on_error: skip", 2, false);
    /* text, one large-ish file split three ways */
    snprintf(path, sizeof path, "%s/t.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 120; i++)
        fprintf(f, "line %d%s\n", i, i % 7 ? "" : " with more words in it");
    fclose(f);
    s_file_case(dir, "t.txt", "text", "{line: string}", "", 3, false);
    /* CSV without a header */
    snprintf(path, sizeof path, "%s/nh.dat", dir);
    sl_test_write_file(path, "1,a\n2,b\n3,c\n4,d\n");
    s_file_case(dir, "nh.dat", "csv", "{n: int64, w: string}", ", header: false", 2, false);

    s_job_t j;
    s_buf_t full;
    sl_snap_w_t mid;
    char moved[4300];
    s_inst_t *b;
    /* the checkpoint's file no longer matches the glob */
    snprintf(path, sizeof path,
             "name: f\nsources:\n  - {name: src, type: file, format: csv, path: '%s/part-*.csv', "
             "schema: {n: int64, word: string, x: double}}\nsinks:\n  - {name: out, type: "
             "discard, input: src}\n",
             dir);
    s_job_load(&j, path);
    s_source_full(&j, "src", 0, 1, &full);
    s_source_case(&j, "src", 0, 1, 8, 1, &full, &mid);
    snprintf(path, sizeof path, "%s/part-1.csv", dir);
    snprintf(moved, sizeof moved, "%s/gone-1.csv", dir);
    ck_assert_int_eq(rename(path, moved), 0);
    b = s_inst_open(&j, "src", 0, 1);
    ck_assert_int_eq(s_restore(b, mid.data, mid.len), SL_OK);
    ck_assert_int_eq(b->vt->run_source(&b->ctx), SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(b->ctx.err, "part-1.csv"));
    s_inst_close(&b);
    /* nor into another subtask or parallelism */
    b = s_inst_open(&j, "src", 0, 2);
    ck_assert_int_eq(s_restore(b, mid.data, mid.len), SL_DATA);
    ck_assert_ptr_nonnull(strstr(b->ctx.err, "subtask 0 of 1"));
    s_inst_close(&b);
    sl_snap_w_free(&mid);
    free(full.p);
    s_job_free(&j);

    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

/* ---- stateless operators and the discard sink ------------------------------------ */

START_TEST(test_stateless)
{
    s_job_t j;
    s_job_load(&j, "name: s\n"
                   "sources:\n"
                   "  - {name: a, type: generator, count: 10}\n"
                   "  - {name: b, type: generator, count: 10}\n"
                   "operators:\n"
                   "  - {name: f, type: filter, input: a, where: 'seq > 3'}\n"
                   "  - {name: m, type: map, input: f, select: {x: seq}}\n"
                   "  - {name: u, type: union, inputs: [m, b2]}\n"
                   "  - {name: b2, type: map, input: b, select: {x: seq}}\n"
                   "  - {name: k, type: key_by, input: u, key: x}\n"
                   "sinks:\n"
                   "  - {name: out, type: discard, input: k}\n");
    const char *names[] = {"f", "m", "u", "k"};
    for (int i = 0; i < 4; i++) {
        s_inst_t *a = s_inst_open(&j, names[i], 0, 1);
        sl_snap_w_t w;
        sl_snap_w_init(&w);
        ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
        ck_assert_uint_eq(w.len, 0);
        ck_assert_int_eq(s_restore(a, w.data, 0), SL_OK);
        s_inst_close(&a);
        uint8_t junk[3] = {1, 2, 3};
        for (size_t n = 1; n <= 3; n++)
            ck_assert_int_eq(s_restore_garbage(&j, names[i], 0, 1, junk, n), SL_DATA);
        sl_snap_w_free(&w);
    }
    /* discard: its count goes on */
    s_inst_t *a = s_inst_open(&j, "out", 0, 1);
    sl_value_t v = sl_value_int(7);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(sl_batch_append(a->in, a->ctx.in, &v), SL_OK);
    ck_assert_int_eq(a->vt->process(&a->ctx, a->in, 0), SL_OK);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
    s_inst_t *b = s_inst_open(&j, "out", 0, 1);
    ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
    ck_assert_uint_eq(atomic_load(&b->ctx.records_out), 5);
    ck_assert_int_eq(b->vt->process(&b->ctx, a->in, 0), SL_OK);
    ck_assert_uint_eq(atomic_load(&b->ctx.records_out), 10);
    s_inst_close(&b);
    s_garbage_suite(&j, "out", 0, 1, &w);
    s_inst_close(&a);
    sl_snap_w_free(&w);
    s_job_free(&j);
}
END_TEST

/* ---- keyed operators ------------------------------------------------------------- */

/* Input records: a deterministic stream (fields of the keyed specs below:
 * k string, g int64, t timestamp, v int64, d double, s string). */
#define S_NIN 4000
#define S_NF 6

typedef struct {
    sl_value_t v[S_NF];
    char s[24];
    char k[24];
} s_rec_t;

static s_rec_t *s_records(void)
{
    s_rec_t *recs = calloc(S_NIN, sizeof *recs);
    ck_assert_ptr_nonnull(recs);
    uint64_t x = 12345;
    for (int i = 0; i < S_NIN; i++) {
        s_rec_t *r = &recs[i];
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t a = (uint32_t)(x >> 33);
        int key = (int)(a % 37);
        snprintf(r->k, sizeof r->k, key == 36 ? "a key longer than the slot" : "k%d", key);
        snprintf(r->s, sizeof r->s, "w%u", (a >> 8) % 50);
        /* event time: mostly in order, some out of order, a few very late */
        int64_t t = (int64_t)i * 10 - (int64_t)((a >> 4) % 300);
        if (a % 97 == 0)
            t -= 5000;
        r->v[0] = key == 5 ? sl_value_null() : sl_value_str(r->k, (uint32_t)strlen(r->k));
        r->v[1] = (a >> 12) % 5 == 0 ? sl_value_null() : sl_value_int((int64_t)((a >> 12) % 3));
        r->v[2] = sl_value_ts(t);
        r->v[3] = a % 11 == 0 ? sl_value_null() : sl_value_int((int64_t)(a % 1000) - 300);
        r->v[4] = sl_value_double((double)(a % 777) / 8.0);
        r->v[5] = a % 13 == 0 ? sl_value_null() : sl_value_str(r->s, (uint32_t)strlen(r->s));
    }
    return recs;
}

static const char *s_keyed_spec =
    "name: keyed\n"
    "sources:\n"
    "  - name: src\n"
    "    type: file\n"
    "    format: csv\n"
    "    path: in.csv\n"
    "    schema: {k: string, g: int64, t: timestamp, v: int64, d: double, s: string}\n"
    "    timestamp: t\n"
    "    watermark: {max_out_of_order: 200ms}\n"
    "operators:\n"
    "  - name: agg\n"
    "    type: aggregate\n"
    "    input: src\n"
    "    key: [k, g]\n"
    "    aggregates: [{name: n, fn: count}, {name: sv, fn: sum, field: v},"
    " {name: sd, fn: sum, field: d}, {name: lo, fn: min, field: s}, {name: hi, fn: max, field: s},"
    " {name: av, fn: avg, field: v}, {name: mt, fn: max, field: t}]\n"
    "  - name: agg1\n"
    "    type: aggregate\n"
    "    input: src\n"
    "    key: k\n"
    "    aggregates: [{name: n, fn: count}, {name: lo, fn: min, field: s}]\n"
    "  - name: tumble\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k]\n"
    "    window: {type: tumbling, size: 1s}\n"
    "    allowed_lateness: 500ms\n"
    "    late: too_late\n"
    "    aggregates: [{name: n, fn: count}, {name: sv, fn: sum, field: v},"
    " {name: sd, fn: sum, field: d}, {name: lo, fn: min, field: s}, {name: hi, fn: max, field: s},"
    " {name: f, fn: first, field: s}, {name: l, fn: last, field: v},"
    " {name: ds, fn: count_distinct, field: s}, {name: av, fn: avg, field: v}]\n"
    "  - name: slide\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k, g]\n"
    "    window: {type: sliding, size: 1s, slide: 250ms}\n"
    "    top: {n: 3, by: v}\n"
    "  - name: sess\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k]\n"
    "    window: {type: session, gap: 300ms}\n"
    "    allowed_lateness: 300ms\n"
    "    aggregates: [{name: n, fn: count}, {name: ds, fn: count_distinct, field: g},"
    " {name: f, fn: first, field: s}, {name: hi, fn: max, field: d}]\n"
    "  - name: panes\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k]\n"
    "    window: {type: sliding, size: 1s, slide: 250ms}\n"
    "    allowed_lateness: 600ms\n"
    "    late: panes_late\n"
    "    aggregates: [ {name: n, fn: count}, {name: nv, fn: count, field: v}, {name: sv, fn: sum, "
    "field: v},"
    " {name: sd, fn: sum, field: d}, {name: lo, fn: min, field: s}, {name: hi, fn: max, field: s},"
    " {name: f, fn: first, field: s}, {name: l, fn: last, field: v}, {name: av, fn: avg, field: v},"
    " {name: tl, fn: last, field: t}]\n"
    "  - name: wins\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k]\n"
    "    window: {type: sliding, size: 1s, slide: 250ms}\n"
    "    allowed_lateness: 600ms\n"
    "    late: wins_late\n"
    "    aggregates: [ {name: n, fn: count}, {name: nv, fn: count, field: v}, {name: sv, fn: sum, "
    "field: v},"
    " {name: sd, fn: sum, field: d}, {name: lo, fn: min, field: s}, {name: hi, fn: max, field: s},"
    " {name: f, fn: first, field: s}, {name: l, fn: last, field: v}, {name: av, fn: avg, field: v},"
    " {name: tl, fn: last, field: t}, {name: ds, fn: count_distinct, field: s}]\n"
    "  - name: panes0\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k, g]\n"
    "    window: {type: sliding, size: 750ms, slide: 250ms}\n"
    "    aggregates: [ {name: n, fn: count}, {name: sv, fn: sum, field: v}, {name: lo, fn: min, "
    "field: d},"
    " {name: l, fn: last, field: s}, {name: f, fn: first, field: g}]\n"
    "  - name: panesd\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k]\n"
    "    window: {type: sliding, size: 1s, slide: 250ms}\n"
    "    allowed_lateness: 300ms\n"
    "    aggregates: [{name: n, fn: count}, {name: sd, fn: sum, field: d},"
    " {name: ad, fn: avg, field: d}]\n"
    "  - name: wins0\n"
    "    type: window\n"
    "    input: src\n"
    "    key: [k, g]\n"
    "    window: {type: sliding, size: 750ms, slide: 250ms}\n"
    "    aggregates: [ {name: n, fn: count}, {name: sv, fn: sum, field: v}, {name: lo, fn: min, "
    "field: d},"
    " {name: l, fn: last, field: s}, {name: f, fn: first, field: g}, {name: ds, fn: "
    "count_distinct, field: s}]\n"
    "sinks:\n"
    "  - {name: o1, type: discard, input: agg}\n"
    "  - {name: o2, type: discard, input: agg1}\n"
    "  - {name: o3, type: discard, input: tumble}\n"
    "  - {name: o4, type: discard, input: slide}\n"
    "  - {name: o5, type: discard, input: sess}\n"
    "  - {name: o6, type: discard, input: too_late}\n"
    "  - {name: o7, type: discard, input: panes}\n"
    "  - {name: o8, type: discard, input: panes_late}\n"
    "  - {name: o9, type: discard, input: wins}\n"
    "  - {name: o10, type: discard, input: wins_late}\n"
    "  - {name: o11, type: discard, input: panes0}\n"
    "  - {name: o12, type: discard, input: wins0}\n"
    "  - {name: o13, type: discard, input: panesd}\n";

/* Joins: record i goes to input 1 (the right side) when i % 3 == 2. */
static int s_input_of(const sl_plan_node_t *nd, int i)
{
    return nd->kind == SL_OP_JOIN && i % 3 == 2 ? 1 : 0;
}

/* Subtask of par that owns record r's key at operator nd (input `input`). */
static int s_owner(const s_job_t *j, const sl_plan_node_t *nd, const s_rec_t *r, int par, int input)
{
    sl_value_t kv[4];
    bool join = nd->kind == SL_OP_JOIN;
    int nkeys = join ? nd->join.nkeys : nd->nkeys;
    const int *keys = !join ? nd->keys : input ? nd->join.rkeys : nd->join.lkeys;
    for (int i = 0; i < nkeys; i++)
        kv[i] = r->v[keys[i]];
    int maxp = j->plan->max_parallelism;
    return sl_key_group_owner(sl_key_group(sl_value_hash(kv, nkeys), maxp), maxp, par);
}

static void s_flush_in(s_inst_t *in)
{
    for (int input = 0; input < 2; input++) {
        sl_batch_t *b = input ? in->in1 : in->in;
        if (!b->count)
            continue;
        int rc = in->vt->process(&in->ctx, b, input);
        S_CHECK(rc == SL_OK, "process: %d %s", rc, in->ctx.err);
        sl_batch_clear(b);
        sl_arena_reset(in->ctx.arena);
    }
}

static void s_watermark(s_inst_t *in, int64_t wm)
{
    s_flush_in(in);
    if (wm <= in->ctx.watermark)
        return;
    in->ctx.watermark = wm;
    if (in->vt->watermark) {
        int rc = in->vt->watermark(&in->ctx, wm);
        S_CHECK(rc == SL_OK, "watermark: %d %s", rc, in->ctx.err);
    }
}

/* Feeds records [from, to) to the instances of a parallelism-par stage
 * (each record to the owner of its key), with a watermark (the largest
 * event time so far - 200 ms) after every 16 records to all of them. */
static void s_feed(s_job_t *j, s_inst_t **ins, int par, const s_rec_t *recs, int from, int to,
                   int64_t *maxt)
{
    const sl_plan_node_t *nd = ins[0]->ctx.node;
    for (int i = from; i < to; i++) {
        int input = s_input_of(nd, i);
        s_inst_t *in = ins[s_owner(j, nd, &recs[i], par, input)];
        sl_batch_t *b = input ? in->in1 : in->in;
        int rc = sl_batch_append(b, in->ctx.in, recs[i].v); /* both inputs alike */
        if (rc == SL_LIMIT) {
            s_flush_in(in);
            rc = sl_batch_append(b, in->ctx.in, recs[i].v);
        }
        S_CHECK(rc == SL_OK, "append: %d", rc);
        if (recs[i].v[2].u.i > *maxt)
            *maxt = recs[i].v[2].u.i;
        if (i % 16 == 15)
            for (int p = 0; p < par; p++)
                s_watermark(ins[p], *maxt - 200);
    }
    for (int p = 0; p < par; p++)
        s_flush_in(ins[p]);
}

static void s_end(s_inst_t *in)
{
    s_watermark(in, SL_WM_MAX);
    ck_assert_int_eq(in->vt->finish(&in->ctx), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&in->ctx.out), SL_OK);
    if (in->ctx.side.batch)
        ck_assert_int_eq(sl_emit_flush(&in->ctx.side), SL_OK);
}

/* Rows of a buffer, sorted by their bytes, appended to list. */
typedef struct {
    const uint8_t *p;
    uint32_t len;
} s_rowref_t;

static int s_rowref_cmp(const void *a, const void *b)
{
    const s_rowref_t *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct {
    s_rowref_t *r;
    size_t n, cap;
} s_rows_t;

static void s_rows_add(s_rows_t *rs, const s_buf_t *b, size_t from_len)
{
    for (size_t off = from_len; off < b->len;) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 256;
            rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
            S_CHECK(rs->r, "out of memory");
        }
        uint32_t len = sl_row_len(b->p + off);
        rs->r[rs->n++] = (s_rowref_t){b->p + off, len};
        off += len;
    }
}

static void s_rows_eq(s_rows_t *a, s_rows_t *b, const char *what)
{
    qsort(a->r, a->n, sizeof *a->r, s_rowref_cmp);
    qsort(b->r, b->n, sizeof *b->r, s_rowref_cmp);
    S_CHECK(a->n == b->n, "%s: %zu rows vs %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        S_CHECK(!s_rowref_cmp(&a->r[i], &b->r[i]), "%s: row %zu differs", what, i);
    free(a->r);
    free(b->r);
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
}

/* Runs op over the records with parallelism p1 up to `half`, snapshots
 * every subtask, restores all the snapshots into each subtask of
 * parallelism p2 and runs the rest. Checks the output (and side output)
 * of the p1 run before the snapshot plus the p2 runs after it equals the
 * uninterrupted run's (as multisets; in order when ordered and p1 = p2 =
 * 1). Returns the snapshot of subtask 0 in keep if given. */
/* The uninterrupted run s_keyed_case compares with: the same for every
 * case of one job, operator and records, so run once for them (under
 * ASan each run costs seconds); s_ref_drop closes it. */
static struct {
    s_inst_t *inst;      /* the ended instance, or NULL */
    const s_job_t *job;  /* what it ran: the job, */
    const s_rec_t *recs; /* the records */
    char name[64];       /* and the operator */
} s_ref;

static void s_ref_drop(void)
{
    if (s_ref.inst)
        s_inst_close(&s_ref.inst);
    memset(&s_ref, 0, sizeof s_ref);
}

static s_inst_t *s_ref_run(s_job_t *j, const char *name, const s_rec_t *recs)
{
    if (s_ref.inst && s_ref.job == j && s_ref.recs == recs && !strcmp(s_ref.name, name))
        return s_ref.inst;
    s_ref_drop();
    s_inst_t *ref = s_inst_open(j, name, 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(j, &ref, 1, recs, 0, S_NIN, &maxt);
    s_end(ref);
    ck_assert_uint_gt(ref->out.n, 0);
    s_ref.inst = ref;
    s_ref.job = j;
    s_ref.recs = recs;
    snprintf(s_ref.name, sizeof s_ref.name, "%s", name);
    return ref;
}

static void s_keyed_case(s_job_t *j, const char *name, const s_rec_t *recs, int half, int p1,
                         int p2, bool ordered, sl_snap_w_t *keep)
{
    /* uninterrupted, parallelism 1 */
    s_inst_t *ref = s_ref_run(j, name, recs);
    int64_t maxt = INT64_MIN;

    s_inst_t *a[4], *b[4];
    for (int p = 0; p < p1; p++)
        a[p] = s_inst_open(j, name, p, p1);
    maxt = INT64_MIN;
    s_feed(j, a, p1, recs, 0, half, &maxt);
    sl_snap_w_t snaps[4];
    uint64_t ck = s_new_ck();
    for (int p = 0; p < p1; p++) {
        a[p]->ctx.checkpoint_id = ck;
        sl_snap_w_init(&snaps[p]);
        ck_assert_int_eq(sl_emit_flush(&a[p]->ctx.out), SL_OK);
        if (a[p]->ctx.side.batch)
            ck_assert_int_eq(sl_emit_flush(&a[p]->ctx.side), SL_OK);
        int rc = a[p]->vt->snapshot(&a[p]->ctx, &snaps[p]);
        S_CHECK(rc == SL_OK && !snaps[p].err, "snapshot: %d %s", rc, a[p]->ctx.err);
    }
    int64_t maxt_half = maxt;
    for (int p = 0; p < p2; p++) {
        b[p] = s_inst_open(j, name, p, p2);
        for (int q = 0; q < p1; q++) {
            int rc = s_restore(b[p], snaps[q].data, snaps[q].len);
            S_CHECK(rc == SL_OK, "restore %d into %d/%d: %d %s", q, p, p2, rc, b[p]->ctx.err);
        }
    }
    maxt = maxt_half;
    s_feed(j, b, p2, recs, half, S_NIN, &maxt);
    for (int p = 0; p < p2; p++)
        s_end(b[p]);

    char what[160];
    snprintf(what, sizeof what, "'%s' restored at %d from %d into %d", name, half, p1, p2);
    if (ordered && p1 == 1 && p2 == 1) {
        s_buf_t got = {0};
        s_buf_put(&got, a[0]->out.p, a[0]->out.len);
        s_buf_put(&got, b[0]->out.p, b[0]->out.len);
        got.n = a[0]->out.n + b[0]->out.n;
        s_buf_eq(&got, &ref->out, what);
        free(got.p);
    }
    s_rows_t want = {0}, got = {0};
    s_rows_add(&want, &ref->out, 0);
    for (int p = 0; p < p1; p++)
        s_rows_add(&got, &a[p]->out, 0);
    for (int p = 0; p < p2; p++)
        s_rows_add(&got, &b[p]->out, 0);
    s_rows_eq(&want, &got, what);
    if (ref->ctx.side.batch) {
        s_rows_add(&want, &ref->side, 0);
        for (int p = 0; p < p1; p++)
            s_rows_add(&got, &a[p]->side, 0);
        for (int p = 0; p < p2; p++)
            s_rows_add(&got, &b[p]->side, 0);
        snprintf(what, sizeof what, "'%s' side output restored at %d from %d into %d", name, half,
                 p1, p2);
        s_rows_eq(&want, &got, what);
    }
    if (p2 > 1) /* every new subtask got a share of the restored keys */
        for (int p = 0; p < p2; p++)
            S_CHECK(b[p]->out.n > 0, "'%s': subtask %d of %d has no output", name, p, p2);
    if (keep) {
        *keep = snaps[0];
        sl_snap_w_init(&snaps[0]);
    }
    for (int p = 0; p < p1; p++) {
        sl_snap_w_free(&snaps[p]);
        s_inst_close(&a[p]);
    }
    for (int p = 0; p < p2; p++)
        s_inst_close(&b[p]);
}

/* A restored subtask of two holds only the keys of its key groups: fed
 * nothing after the restore, its final output has exactly those keys. */
static void s_keyed_filter(s_job_t *j, const char *name, const s_rec_t *recs)
{
    s_inst_t *a = s_inst_open(j, name, 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(j, &a, 1, recs, 0, S_NIN / 2, &maxt);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    a->ctx.checkpoint_id = s_new_ck();
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
    s_inst_t *one = s_inst_open(j, name, 0, 1);
    ck_assert_int_eq(s_restore(one, w.data, w.len), SL_OK);
    s_end(one);
    size_t sum = 0;
    const sl_plan_node_t *nd = a->ctx.node;
    for (int p = 0; p < 2; p++) {
        s_inst_t *b = s_inst_open(j, name, p, 2);
        ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
        s_end(b);
        ck_assert_uint_gt(b->out.n, 0);
        sum += b->out.n;
        /* the key fields lead the output row */
        sl_value_t *vals = calloc((size_t)nd->out->nfields, sizeof *vals);
        for (size_t off = 0; off < b->out.len; off += sl_row_len(b->out.p + off)) {
            sl_row_decode(nd->out, b->out.p + off, vals);
            int maxp = j->plan->max_parallelism;
            int nk = nd->kind == SL_OP_JOIN ? nd->join.nkeys : nd->nkeys;
            int kg = sl_key_group(sl_value_hash(vals, nk), maxp);
            S_CHECK(sl_key_group_owner(kg, maxp, 2) == p, "'%s': subtask %d of 2 has a key of %d",
                    name, p, sl_key_group_owner(kg, maxp, 2));
        }
        free(vals);
        s_inst_close(&b);
    }
    ck_assert_uint_eq(sum, one->out.n);
    s_inst_close(&one);
    s_inst_close(&a);
    sl_snap_w_free(&w);
}

/* spec with its keyed state in rocksdb (a small cache and memtable), for
 * the cases that run a job on both backends; malloc'd. */
static char *s_rocks_text(const char *spec)
{
    const char *state = "state: {backend: rocksdb, block_cache: 1MB, write_buffer: 256KB}\n";
    char *text = malloc(strlen(state) + strlen(spec) + 1);
    ck_assert_ptr_nonnull(text);
    strcpy(text, state);
    strcat(text, spec);
    return text;
}

static void s_keyed_all_spec(const char *spec, const char *name, bool ordered, bool filter)
{
    s_job_t j;
    char *text = NULL;
    if (s_root) { /* the same job with its keyed state in rocksdb */
        text = s_rocks_text(spec);
        ordered = false; /* the store emits in key-group order */
    }
    s_job_load(&j, text ? text : spec);
    free(text);
    s_ref_drop(); /* (one a failed test left, without fork) */
    s_rec_t *recs = s_records();
    int pts[] = {0, 1, 777, S_NIN / 2, S_NIN - 1, S_NIN};
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++)
        if (!s_root || i % 2 == 0) /* rocksdb: fewer points (each is a checkpoint on disk) */
            s_keyed_case(&j, name, recs, pts[i], 1, 1, ordered, NULL);
    s_keyed_case(&j, name, recs, S_NIN / 2, 1, 2, ordered, NULL);
    s_keyed_case(&j, name, recs, S_NIN / 3, 1, 3, ordered, NULL);
    s_keyed_case(&j, name, recs, S_NIN / 2, 2, 1, ordered, NULL);
    s_keyed_case(&j, name, recs, S_NIN / 2, 3, 2, ordered, NULL);
    if (filter)
        s_keyed_filter(&j, name, recs);
    /* garbage: a small state (the first records) to keep it quick */
    sl_snap_w_t w;
    s_keyed_case(&j, name, recs, 60, 1, 1, ordered, &w);
    s_ref_drop();
    s_garbage_suite(&j, name, 0, 1, &w);
    sl_snap_w_free(&w);
    free(recs);
    s_job_free(&j);
}

static void s_keyed_all(const char *name, bool ordered)
{
    s_keyed_all_spec(s_keyed_spec, name, ordered, true);
}

/* Joins over two sources of the records' schema (a third of the records
 * on the right), and the device_alerts process function (map state and
 * event-time timers) keyed by the string key. */
static const char *s_join_spec =
    "name: joins\n"
    "plugin: libsluice_device_alerts.so\n"
    "sources:\n"
    "  - name: src\n"
    "    type: file\n"
    "    format: csv\n"
    "    path: in.csv\n"
    "    schema: {k: string, g: int64, t: timestamp, v: int64, d: double, s: string}\n"
    "    timestamp: t\n"
    "    watermark: {max_out_of_order: 200ms}\n"
    "  - name: src2\n"
    "    type: file\n"
    "    format: csv\n"
    "    path: in2.csv\n"
    "    schema: {k: string, g: int64, t: timestamp, v: int64, d: double, s: string}\n"
    "    timestamp: t\n"
    "    watermark: {max_out_of_order: 200ms}\n"
    "  - name: beats\n"
    "    type: file\n"
    "    format: csv\n"
    "    path: in3.csv\n"
    "    schema: {device: string, g: int64, ts: timestamp, v: int64, d: double, s: string}\n"
    "    timestamp: ts\n"
    "    watermark: {max_out_of_order: 200ms}\n"
    "operators:\n"
    "  - {name: wj, type: join, inputs: [src, src2], kind: window, key: k,"
    " window: {type: sliding, size: 1s, slide: 500ms}}\n"
    "  - {name: ij, type: join, inputs: [src, src2], kind: interval, key: [k, g],"
    " between: [-150ms, 250ms]}\n"
    "  - {name: ej, type: join, inputs: [src, src2], kind: enrich, key: k,"
    " on_missing: emit_nulls}\n"
    "  - {name: alerts, type: process, input: beats, key: [device], function: silence}\n"
    "sinks:\n"
    "  - {name: o1, type: discard, input: wj}\n"
    "  - {name: o2, type: discard, input: ij}\n"
    "  - {name: o3, type: discard, input: ej}\n"
    "  - {name: o4, type: discard, input: alerts}\n";

START_TEST(test_join_window)
{
    s_keyed_all_spec(s_join_spec, "wj", false, false); /* the window leads its rows */
}
END_TEST

START_TEST(test_join_interval)
{
    s_keyed_all_spec(s_join_spec, "ij", false, false); /* pairs go out as they meet */
}
END_TEST

START_TEST(test_join_enrich)
{
    s_keyed_all_spec(s_join_spec, "ej", false, true);
}
END_TEST

START_TEST(test_process)
{
    s_keyed_all_spec(s_join_spec, "alerts", true, true);
}
END_TEST

/* A staged file sink whose part cannot be closed durably in a snapshot
 * (here its temporary file vanished) declines the checkpoint, and then
 * fails at its next call: the rows of that part are gone, so going on
 * would lose them; the job must restart from the last checkpoint. */
static void s_sink_rows(s_inst_t *in, int64_t from, int n)
{
    for (int i = 0; i < n; i++) {
        sl_value_t v[2] = {sl_value_int(from + i), sl_value_ts(from + i)};
        ck_assert_int_eq(sl_batch_append(in->in, in->ctx.in, v), SL_OK);
    }
}

/* Rows, process and clear. */
static void s_sink_feed(s_inst_t *in, int64_t from, int n)
{
    s_sink_rows(in, from, n);
    ck_assert_int_eq(in->vt->process(&in->ctx, in->in, 0), SL_OK);
    sl_batch_clear(in->in);
}

/* Loads into j a checkpointed job: a generator of 10 into file sink `out`
 * (csv) at path, with extra keys (", publish: ...") in its mapping. */
static void s_file_sink_job(s_job_t *j, const char *path, const char *extra)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "name: s\ncheckpoint: {interval: 1s}\n"
             "sources:\n  - {name: gen, type: generator, count: 10}\n"
             "sinks:\n  - {name: out, type: file, format: csv, input: gen, path: '%s'%s}\n",
             path, extra);
    s_job_load(j, spec);
}

/* An old attempt that goes on running (its worker was declared lost) never
 * touches the staging directory once a newer attempt claimed it: it cannot
 * commit a part or publish, and the newer attempt's output is exact. */
START_TEST(test_file_sink_fenced)
{
    char *dir = sl_test_tmpdir(), out[4200];
    snprintf(out, sizeof out, "%s/out.csv", dir);
    s_job_t j;
    s_file_sink_job(&j, out, "");
    s_inst_t *old = s_inst_open(&j, "out", 0, 1);
    old->ctx.attempt = 1;
    s_sink_feed(old, 0, 4);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(old->vt->snapshot(&old->ctx, &w), SL_OK); /* part 0 committed */
    s_sink_feed(old, 4, 3);                                    /* rows after it */

    /* the newer attempt restores the checkpoint and takes over */
    s_inst_t *cur = s_inst_open(&j, "out", 0, 1);
    cur->ctx.attempt = 2;
    sl_snap_r_t r;
    sl_snap_r_init(&r, w.data, w.len);
    ck_assert_int_eq(cur->vt->restore(&cur->ctx, &r), SL_OK);

    /* the old one can neither commit a part nor publish */
    sl_snap_w_t w2;
    sl_snap_w_init(&w2);
    ck_assert_int_ne(old->vt->snapshot(&old->ctx, &w2), SL_OK);
    ck_assert_ptr_nonnull(strstr(old->ctx.err, "a newer attempt of the job took over"));
    old->ctx.err[0] = '\0';
    ck_assert_int_ne(old->vt->finish(&old->ctx), SL_OK);
    ck_assert_int_ne(access(out, F_OK), 0);
    s_inst_close(&old);

    s_sink_rows(cur, 4, 6);
    ck_assert_int_eq(cur->vt->process(&cur->ctx, cur->in, 0), SL_OK);
    ck_assert_int_eq(cur->vt->finish(&cur->ctx), SL_OK);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    ck_assert_int_eq(n, 1 + 10); /* the header and rows 0..9, once each */
    sl_snap_w_free(&w);
    sl_snap_w_free(&w2);
    s_inst_close(&cur);
    s_job_free(&j);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_file_sink_lost_part)
{
    char *dir = sl_test_tmpdir(), out[4200];
    snprintf(out, sizeof out, "%s/out.csv", dir);
    s_job_t j;
    s_file_sink_job(&j, out, "");
    s_inst_t *in = s_inst_open(&j, "out", 0, 1);
    s_sink_feed(in, 0, 5);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(in->vt->snapshot(&in->ctx, &w), SL_OK); /* part 0 is committed */
    s_sink_feed(in, 5, 5);
    /* the open part's temporary file goes away before the next snapshot */
    char stage[4200], cmd[4400];
    snprintf(stage, sizeof stage, "%s/.out.csv.sluice-staging", dir);
    snprintf(cmd, sizeof cmd, "rm -f '%s'/.part-*", stage);
    ck_assert_int_eq(system(cmd), 0);
    w.len = 0;
    ck_assert_int_ne(in->vt->snapshot(&in->ctx, &w), SL_OK);
    ck_assert_str_ne(in->ctx.err, "");
    in->ctx.err[0] = '\0';
    s_sink_rows(in, 10, 1);
    ck_assert_int_ne(in->vt->process(&in->ctx, in->in, 0), SL_OK);
    ck_assert_ptr_nonnull(strstr(in->ctx.err, "output since the last checkpoint was lost"));
    ck_assert_int_ne(in->vt->finish(&in->ctx), SL_OK);
    sl_snap_w_free(&w);
    s_inst_close(&in);
    s_job_free(&j);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

/* The checkpoint id's snapshot of the sink into w (reset first). */
static void s_sink_snap(s_inst_t *in, uint64_t id, sl_snap_w_t *w)
{
    w->len = 0;
    in->ctx.checkpoint_id = id;
    ck_assert_int_eq(in->vt->snapshot(&in->ctx, w), SL_OK);
}

/* The published parts of directory dir (part-*), their names joined by
 * spaces into names, and every data row (headers checked and left out)
 * into rows; returns the number of parts. */
static int s_rolling_read(const char *dir, char *names, size_t ncap, char *rows, size_t rcap)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "cd '%s' && ls part-* 2>/dev/null", dir);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    char name[256];
    int n = 0;
    names[0] = rows[0] = '\0';
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        snprintf(names + strlen(names), ncap - strlen(names), "%s%s", n ? " " : "", name);
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len;
        char *text = sl_test_read_file(path, &len);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strncmp(text, "seq,ts\n", 7) == 0, "%s has no header: %s", name, text);
        snprintf(rows + strlen(rows), rcap - strlen(rows), "%s", text + 7);
        free(text);
        n++;
    }
    pclose(ls);
    return n;
}

/* publish: checkpoint: a part is visible only once the checkpoint that
 * commits it completed; a restore publishes committed parts a crash left
 * staged and drops the uncommitted ones; a restore after the failed
 * attempt had published everything (end of input) writes nothing again; a
 * fresh start replaces an earlier run's parts. */
START_TEST(test_file_sink_rolling)
{
    char *dir = sl_test_tmpdir();
    char out[4200], names[1024], rows[4096], ref[4096] = "";
    snprintf(out, sizeof out, "%s/out", dir);
    for (int i = 0; i < 10; i++)
        snprintf(ref + strlen(ref), sizeof ref - strlen(ref), "%d,1970-01-01T00:00:00.%03dZ\n", i,
                 i);
    s_job_t j;
    s_file_sink_job(&j, out, ", publish: checkpoint, parallelism: 2");
    s_inst_t *a = s_inst_open(&j, "out", 1, 2);
    a->ctx.attempt = 1;
    sl_snap_w_t w1, w2, w3;
    sl_snap_w_init(&w1);
    sl_snap_w_init(&w2);
    sl_snap_w_init(&w3);
    s_sink_feed(a, 0, 4);
    s_sink_snap(a, 1, &w1);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 0);
    ck_assert_int_eq(a->vt->complete(&a->ctx, 1), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 1);
    ck_assert_str_eq(names, "part-001-000000.csv");
    s_sink_feed(a, 4, 3);
    s_sink_snap(a, 2, &w2); /* part 1: committed by 2 */
    s_sink_feed(a, 7, 1);
    s_sink_snap(a, 3, &w3); /* part 2: committed by 3, which never completes */
    s_sink_feed(a, 8, 1);   /* part 3: uncommitted */
    ck_assert_int_eq(a->vt->complete(&a->ctx, 1), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 1);

    /* a crash after 2 completed, before its part was renamed: the next
     * attempt publishes it, and drops parts 2 and 3 */
    s_inst_t *b = s_inst_open(&j, "out", 1, 2);
    b->ctx.attempt = 2;
    sl_snap_r_t r;
    sl_snap_r_init(&r, w2.data, w2.len);
    ck_assert_int_eq(b->vt->restore(&b->ctx, &r), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 2);
    ck_assert_str_eq(names, "part-001-000000.csv part-001-000001.csv");
    /* the old attempt is fenced: it cannot publish what 3 committed */
    ck_assert_int_ne(a->vt->complete(&a->ctx, 3), SL_OK);
    ck_assert_ptr_nonnull(strstr(a->ctx.err, "a newer attempt of the job took over"));
    s_inst_close(&a);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 2);

    s_sink_feed(b, 7, 1);
    s_sink_snap(b, 3, &w3);
    ck_assert_int_eq(b->vt->complete(&b->ctx, 3), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 3);

    /* checkpoint 3 is found damaged: the restart from 2 takes back the
     * part 3 published, and the replay writes its rows again */
    s_inst_t *b2 = s_inst_open(&j, "out", 1, 2);
    b2->ctx.attempt = 3;
    sl_snap_r_init(&r, w2.data, w2.len);
    ck_assert_int_eq(b2->vt->restore(&b2->ctx, &r), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 2);
    s_inst_close(&b);
    s_sink_feed(b2, 7, 2);
    s_sink_snap(b2, 3, &w3);
    s_sink_feed(b2, 9, 1);
    ck_assert_int_eq(b2->vt->finish(&b2->ctx), SL_OK); /* the end of input publishes all */
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 4);
    ck_assert_str_eq(rows, ref);
    s_inst_close(&b2);

    /* the job fails after that subtask ended: a restore from 2 sees the
     * output published past it and writes the replay nowhere */
    s_inst_t *c = s_inst_open(&j, "out", 1, 2);
    c->ctx.attempt = 4;
    sl_snap_r_init(&r, w2.data, w2.len);
    ck_assert_int_eq(c->vt->restore(&c->ctx, &r), SL_OK);
    s_sink_feed(c, 7, 3);
    ck_assert_int_eq(c->vt->finish(&c->ctx), SL_OK);
    snprintf(names, sizeof names, "%s/.sluice-staging-1", out);
    ck_assert_int_ne(access(names, F_OK), 0); /* nothing left staged */
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 4);
    ck_assert_str_eq(rows, ref);
    s_inst_close(&c);

    /* a checkpoint of the other mode does not restore */
    s_inst_t *e = s_inst_open(&j, "out", 0, 2);
    sl_snap_r_init(&r, w2.data, w2.len);
    ck_assert_int_ne(e->vt->restore(&e->ctx, &r), SL_OK); /* another subtask's */
    ck_assert_ptr_nonnull(strstr(e->ctx.err, "subtask 1, not 0"));
    s_inst_close(&e);

    /* a fresh start replaces the earlier run's parts */
    s_inst_t *f = s_inst_open(&j, "out", 1, 2);
    s_sink_feed(f, 0, 2);
    ck_assert_int_eq(f->vt->finish(&f->ctx), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 1);
    ck_assert_str_eq(rows, "0,1970-01-01T00:00:00.000Z\n1,1970-01-01T00:00:00.001Z\n");
    s_inst_close(&f);
    sl_snap_w_free(&w1);
    sl_snap_w_free(&w2);
    sl_snap_w_free(&w3);
    s_job_free(&j);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

/* publish: checkpoint: a crash in the middle of the end of input (the end
 * marker written, part 1 renamed into place, part 2 still staged): the
 * restore from checkpoint 1 completes the publication and drops the replay. */
START_TEST(test_file_sink_rolling_end_crash)
{
    char *dir = sl_test_tmpdir();
    char out[4200], names[1024], rows[4096], path[4400], to[4400];
    snprintf(out, sizeof out, "%s/out", dir);
    s_job_t j;
    s_file_sink_job(&j, out, ", publish: checkpoint");
    s_inst_t *a = s_inst_open(&j, "out", 0, 1);
    sl_snap_w_t w1, w2;
    sl_snap_w_init(&w1);
    sl_snap_w_init(&w2);
    s_sink_feed(a, 0, 3);
    s_sink_snap(a, 1, &w1);
    ck_assert_int_eq(a->vt->complete(&a->ctx, 1), SL_OK);
    s_sink_feed(a, 3, 2);
    s_sink_snap(a, 2, &w2); /* part 1 */
    s_sink_feed(a, 5, 1);
    s_sink_snap(a, 3, &w2); /* part 2 */
    s_inst_close(&a);
    /* what finish had done when it crashed */
    snprintf(path, sizeof path, "%s/.sluice-end-0", out);
    sl_test_write_file(path, "3 \n"); /* (no checkpoint directory in this test) */
    snprintf(path, sizeof path, "%s/.sluice-staging-0/part-000001", out);
    snprintf(to, sizeof to, "%s/part-000-000001.csv", out);
    ck_assert_int_eq(rename(path, to), 0);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 2);

    s_inst_t *b = s_inst_open(&j, "out", 0, 1);
    sl_snap_r_t r;
    sl_snap_r_init(&r, w1.data, w1.len);
    ck_assert_int_eq(b->vt->restore(&b->ctx, &r), SL_OK);
    s_sink_feed(b, 3, 7); /* the replay */
    ck_assert_int_eq(b->vt->finish(&b->ctx), SL_OK);
    ck_assert_int_eq(s_rolling_read(out, names, sizeof names, rows, sizeof rows), 3);
    ck_assert_str_eq(names, "part-000-000000.csv part-000-000001.csv part-000-000002.csv");
    char ref[1024] = "";
    for (int i = 0; i < 6; i++)
        snprintf(ref + strlen(ref), sizeof ref - strlen(ref), "%d,1970-01-01T00:00:00.%03dZ\n", i,
                 i);
    ck_assert_str_eq(rows, ref);
    s_inst_close(&b);
    sl_snap_w_free(&w1);
    sl_snap_w_free(&w2);
    s_job_free(&j);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

/* Joins and process: the same key restored twice is refused. */
START_TEST(test_join_process_duplicate)
{
    s_job_t j;
    s_job_load(&j, s_join_spec);
    s_rec_t *recs = s_records();
    const char *names[] = {"wj", "ij", "ej", "alerts"};
    for (int i = 0; i < 4; i++) {
        s_inst_t *a = s_inst_open(&j, names[i], 0, 1);
        int64_t maxt = INT64_MIN;
        s_feed(&j, &a, 1, recs, 0, 100, &maxt);
        sl_snap_w_t w;
        sl_snap_w_init(&w);
        ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
        s_inst_t *b = s_inst_open(&j, names[i], 0, 1);
        ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
        S_CHECK(s_restore(b, w.data, w.len) == SL_DATA, "'%s' took the same keys twice", names[i]);
        ck_assert_str_ne(b->ctx.err, "");
        s_inst_close(&b);
        s_inst_close(&a);
        sl_snap_w_free(&w);
    }
    free(recs);
    s_job_free(&j);
}
END_TEST

/* The keyed cases with the rocksdb backend. */
static void s_rocks_all(const char *name)
{
    s_root = sl_test_tmpdir();
    s_keyed_all(name, false);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}

START_TEST(test_rocks_aggregate)
{
    s_rocks_all("agg");
    s_rocks_all("agg1");
}
END_TEST

START_TEST(test_rocks_window_tumbling)
{
    s_rocks_all("tumble");
}
END_TEST

START_TEST(test_rocks_window_sliding_top)
{
    s_rocks_all("slide");
}
END_TEST

START_TEST(test_rocks_window_session)
{
    s_rocks_all("sess");
}
END_TEST

/* The process function (map state, event-time timers) with its keyed
 * state in rocksdb: the same output as the heap backend, row for row and
 * in order; then restores and rescales as the heap one does. */
START_TEST(test_rocks_process)
{
    s_root = sl_test_tmpdir();
    char *text = s_rocks_text(s_join_spec);
    s_job_t jh, jr;
    s_job_load(&jh, s_join_spec);
    s_job_load(&jr, text);
    free(text);
    s_rec_t *recs = s_records();
    s_inst_t *h = s_inst_open(&jh, "alerts", 0, 1), *r = s_inst_open(&jr, "alerts", 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(&jh, &h, 1, recs, 0, S_NIN, &maxt);
    s_end(h);
    maxt = INT64_MIN;
    s_feed(&jr, &r, 1, recs, 0, S_NIN, &maxt);
    s_end(r);
    ck_assert_uint_gt(h->out.n, 10);
    s_buf_eq(&r->out, &h->out, "'alerts' with rocksdb against the heap");
    s_inst_close(&h);
    s_inst_close(&r);
    /* a heap snapshot restores into the rocksdb job, not the other way */
    h = s_inst_open(&jh, "alerts", 0, 1);
    r = s_inst_open(&jr, "alerts", 0, 1);
    maxt = INT64_MIN;
    s_feed(&jh, &h, 1, recs, 0, S_NIN / 2, &maxt);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(h->vt->snapshot(&h->ctx, &w), SL_OK);
    ck_assert_int_eq(s_restore(r, w.data, w.len), SL_OK);
    sl_snap_w_free(&w);
    sl_snap_w_init(&w);
    r->ctx.checkpoint_id = s_new_ck();
    ck_assert_int_eq(r->vt->snapshot(&r->ctx, &w), SL_OK);
    s_inst_close(&h);
    h = s_inst_open(&jh, "alerts", 0, 1);
    ck_assert_int_eq(s_restore(h, w.data, w.len), SL_STATE);
    ck_assert_ptr_nonnull(strstr(h->ctx.err, "backend: rocksdb"));
    sl_snap_w_free(&w);
    s_inst_close(&h);
    s_inst_close(&r);
    free(recs);
    s_job_free(&jh);
    s_job_free(&jr);
    s_keyed_all_spec(s_join_spec, "alerts", true, true);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

/* A join with its rows in rocksdb: the same output as the heap backend
 * (as multisets: the store emits in key-group order); a heap snapshot
 * restores into the rocksdb job and the run goes on to the same output,
 * not the other way; then restores and rescales as the heap one does. */
static void s_rocks_join(const char *name, bool filter)
{
    s_root = sl_test_tmpdir();
    char *text = s_rocks_text(s_join_spec);
    s_job_t jh, jr;
    s_job_load(&jh, s_join_spec);
    s_job_load(&jr, text);
    free(text);
    s_rec_t *recs = s_records();
    s_inst_t *h = s_inst_open(&jh, name, 0, 1), *r = s_inst_open(&jr, name, 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(&jh, &h, 1, recs, 0, S_NIN, &maxt);
    s_end(h);
    maxt = INT64_MIN;
    s_feed(&jr, &r, 1, recs, 0, S_NIN, &maxt);
    s_end(r);
    ck_assert_uint_gt(h->out.n, 10);
    char what[128];
    snprintf(what, sizeof what, "'%s' with rocksdb against the heap", name);
    s_rows_t want = {0}, got = {0};
    s_rows_add(&want, &h->out, 0);
    s_rows_add(&got, &r->out, 0);
    s_rows_eq(&want, &got, what);
    s_inst_close(&r);
    /* a heap snapshot restores into the rocksdb job, not the other way */
    s_inst_t *h2 = s_inst_open(&jh, name, 0, 1);
    r = s_inst_open(&jr, name, 0, 1);
    maxt = INT64_MIN;
    s_feed(&jh, &h2, 1, recs, 0, S_NIN / 2, &maxt);
    ck_assert_int_eq(sl_emit_flush(&h2->ctx.out), SL_OK);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(h2->vt->snapshot(&h2->ctx, &w), SL_OK);
    ck_assert_int_eq(s_restore(r, w.data, w.len), SL_OK);
    sl_snap_w_free(&w);
    int64_t maxt2 = maxt;
    s_feed(&jr, &r, 1, recs, S_NIN / 2, S_NIN, &maxt2);
    s_end(r);
    s_rows_add(&want, &h->out, 0);
    s_rows_add(&got, &h2->out, 0);
    s_rows_add(&got, &r->out, 0);
    snprintf(what, sizeof what, "'%s' heap snapshot restored into rocksdb", name);
    s_rows_eq(&want, &got, what);
    sl_snap_w_init(&w);
    r->ctx.checkpoint_id = s_new_ck();
    ck_assert_int_eq(r->vt->snapshot(&r->ctx, &w), SL_OK);
    s_inst_close(&h2);
    h2 = s_inst_open(&jh, name, 0, 1);
    ck_assert_int_eq(s_restore(h2, w.data, w.len), SL_STATE);
    ck_assert_ptr_nonnull(strstr(h2->ctx.err, "backend: rocksdb"));
    sl_snap_w_free(&w);
    s_inst_close(&h2);
    s_inst_close(&h);
    s_inst_close(&r);
    free(recs);
    s_job_free(&jh);
    s_job_free(&jr);
    s_keyed_all_spec(s_join_spec, name, false, filter);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}

/* The rocksdb join cases, one per join kind; each is a test case of its own
 * (a CTest entry, SLUICE_UNIT_CASES_snapshot): each restores many times. */
static const struct {
    const char *tcase; /* the test case's name (CK_RUN_CASE) */
    const char *node;  /* the join of s_join_spec */
    bool filter;       /* as s_rocks_join's */
} s_rocks_joins[] = {
    {"rocksdb-join-window", "wj", false},
    {"rocksdb-join-interval", "ij", false},
    {"rocksdb-join-enrich", "ej", true},
};

START_TEST(test_rocks_join)
{
    s_rocks_join(s_rocks_joins[_i].node, s_rocks_joins[_i].filter);
}
END_TEST

/* A window result's event time is its window_end - 1 ms; an enrich join's
 * store from before that holds such rows under their field's value. A job
 * whose join inputs now carry the adjustment (both sides after a window)
 * restores that store and runs on: every store key's time is checked
 * against its row's, and the old ones pass. */
START_TEST(test_rocks_join_adjusted)
{
    s_root = sl_test_tmpdir();
    char *text = s_rocks_text(s_join_spec);
    s_job_t jr, ja;
    s_job_load(&jr, text);
    s_job_load(&ja, text);
    free(text);
    sl_plan_node_t *nd = &ja.plan->nodes[sl_spec_find(ja.spec, "ej")];
    nd->join.ltime_adj = nd->join.rtime_adj = -1;
    s_rec_t *recs = s_records();
    s_inst_t *r = s_inst_open(&jr, "ej", 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(&jr, &r, 1, recs, 0, S_NIN / 2, &maxt);
    ck_assert_int_eq(sl_emit_flush(&r->ctx.out), SL_OK);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    r->ctx.checkpoint_id = s_new_ck();
    ck_assert_int_eq(r->vt->snapshot(&r->ctx, &w), SL_OK);
    s_inst_t *a = s_inst_open(&ja, "ej", 0, 1);
    ck_assert_int_eq(s_restore(a, w.data, w.len), SL_OK);
    sl_snap_w_free(&w);
    s_feed(&ja, &a, 1, recs, S_NIN / 2, S_NIN, &maxt);
    s_end(a);
    ck_assert_uint_gt(a->out.n, 10);
    s_inst_close(&a);
    s_inst_close(&r);
    free(recs);
    s_job_free(&jr);
    s_job_free(&ja);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

/* ---- rocksdb: incremental checkpoints, state bigger than memory ------------- */

static const char *s_big_spec =
    "name: big\n"
    "state: {backend: rocksdb, block_cache: %s, write_buffer: %s}\n"
    "checkpoint: {interval: 1s}\n"
    "sources:\n"
    "  - {name: src, type: file, format: csv, path: in.csv, schema: {k: string, s: string}}\n"
    "operators:\n"
    "  - name: agg\n"
    "    type: aggregate\n"
    "    input: src\n"
    "    key: k\n"
    "    aggregates: [{name: n, fn: count}, {name: hi, fn: max, field: s}]\n"
    "sinks:\n"
    "  - {name: o, type: discard, input: agg}\n";

/* Record i of the big job: key i % nkeys, a 100-byte value. */
static void s_big_rec(uint64_t i, uint64_t nkeys, char k[32], char v[128], sl_value_t vals[2])
{
    int kl = snprintf(k, 32, "key-%llu", (unsigned long long)(i % nkeys));
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    int vl = snprintf(v, 128, "%016llx", (unsigned long long)x);
    memset(v + vl, 'a' + (int)(i % 26), 100 - (size_t)vl);
    vals[0] = sl_value_str(k, (uint32_t)kl);
    vals[1] = sl_value_str(v, 100);
}

static void s_big_feed(s_inst_t *in, uint64_t from, uint64_t to, uint64_t nkeys)
{
    char k[32], v[128];
    sl_value_t vals[2];
    for (uint64_t i = from; i < to; i++) {
        s_big_rec(i, nkeys, k, v, vals);
        int rc = sl_batch_append(in->in, in->ctx.in, vals);
        if (rc == SL_LIMIT) {
            s_flush_in(in);
            rc = sl_batch_append(in->in, in->ctx.in, vals);
        }
        S_CHECK(rc == SL_OK, "append: %d", rc);
    }
    s_flush_in(in);
}

/* The shared files of the manifest of store dir (chk-N/kv-...). */
static void s_manifest_of(const char *dir, sl_kv_manifest_t *m)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, SL_KV_MANIFEST_FILE);
    size_t len;
    char *data = sl_test_read_file(path, &len);
    S_CHECK(data, "no manifest %s", path);
    char err[256];
    ck_assert_int_eq(sl_kv_manifest_decode(data, len, m, err, sizeof err), SL_OK);
    free(data);
}

/* A checkpoint after a few changes copies only the new SST files: the
 * earlier ones are referenced, not copied again. */
START_TEST(test_rocks_incremental)
{
    s_root = sl_test_tmpdir();
    char text[1200];
    snprintf(text, sizeof text, s_big_spec, "8MB", "16MB");
    s_job_t j;
    s_job_load(&j, text);
    s_inst_t *a = s_inst_open(&j, "agg", 0, 1);
    s_big_feed(a, 0, 30000, 30000);
    sl_snap_w_t w1, w2;
    sl_snap_w_init(&w1);
    sl_snap_w_init(&w2);
    uint64_t c1 = s_new_ck();
    a->ctx.checkpoint_id = c1;
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w1), SL_OK);
    s_big_feed(a, 30000, 30010, 30000); /* ten keys change */
    uint64_t c2 = s_new_ck();
    a->ctx.checkpoint_id = c2;
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w2), SL_OK);
    char d1[700], d2[700];
    snprintf(d1, sizeof d1, "%s/chk-%llu/kv-%d-0", s_root, (unsigned long long)c1, a->ctx.node->id);
    snprintf(d2, sizeof d2, "%s/chk-%llu/kv-%d-0", s_root, (unsigned long long)c2, a->ctx.node->id);
    sl_kv_manifest_t m1 = {0}, m2 = {0};
    s_manifest_of(d1, &m1);
    s_manifest_of(d2, &m2);
    uint64_t b1 = 0, reused = 0, fresh = 0, nfresh = 0;
    for (size_t i = 0; i < m1.n; i++)
        b1 += m1.files[i].shared ? m1.files[i].size : 0;
    for (size_t i = 0; i < m2.n; i++) {
        if (!m2.files[i].shared)
            continue;
        bool old = false;
        for (size_t k = 0; k < m1.n && !old; k++)
            old = m1.files[k].shared && !strcmp(m1.files[k].stored, m2.files[i].stored);
        if (old)
            reused += m2.files[i].size;
        else {
            fresh += m2.files[i].size;
            nfresh++;
        }
    }
    ck_assert_uint_gt(b1, 1000000); /* the first checkpoint holds the whole state */
    ck_assert_uint_eq(reused, b1);  /* the second references all of it */
    S_CHECK(nfresh == 1 && fresh < b1 / 20, "the second checkpoint copied %llu files, %llu bytes",
            (unsigned long long)nfresh, (unsigned long long)fresh);
    /* and restores to the same continuation */
    s_inst_t *b = s_inst_open(&j, "agg", 0, 1);
    ck_assert_int_eq(s_restore(b, w2.data, w2.len), SL_OK);
    s_big_feed(a, 30010, 30100, 30000);
    s_big_feed(b, 30010, 30100, 30000);
    s_end(a);
    s_end(b);
    s_rows_t ra = {0}, rb = {0};
    s_rows_add(&ra, &a->out, 0);
    s_rows_add(&rb, &b->out, 0);
    ck_assert_uint_eq(ra.n, 30000);
    s_rows_eq(&ra, &rb, "restored from the incremental checkpoint");
    sl_kv_manifest_free(&m1);
    sl_kv_manifest_free(&m2);
    sl_snap_w_free(&w1);
    sl_snap_w_free(&w2);
    s_inst_close(&a);
    s_inst_close(&b);
    s_job_free(&j);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

/* Keyed state far bigger than the store's memory (a 1 MB block cache, a
 * 256 KB write buffer; 120 000 keys with 100-byte values, about 17 MB),
 * checkpointed and restored half way: every key's result equals the one
 * computed here. */
START_TEST(test_rocks_bigger_than_memory)
{
    const uint64_t nkeys = 120000, n = 2 * nkeys;
    s_root = sl_test_tmpdir();
    char text[1200];
    snprintf(text, sizeof text, s_big_spec, "1MB", "256KB");
    s_job_t j;
    s_job_load(&j, text);
    s_inst_t *a = s_inst_open(&j, "agg", 0, 1);
    s_big_feed(a, 0, n / 2 + 777, nkeys);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    a->ctx.checkpoint_id = s_new_ck();
    ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
    s_inst_close(&a);
    s_inst_t *b = s_inst_open(&j, "agg", 0, 1);
    ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
    s_big_feed(b, n / 2 + 777, n, nkeys);
    s_end(b);
    ck_assert_uint_eq(b->out.n, nkeys);
    /* the reference: every key seen twice, max of its two values */
    bool *seen = calloc(nkeys, sizeof *seen);
    ck_assert_ptr_nonnull(seen);
    sl_value_t vals[3];
    const sl_schema_t *out = b->ctx.node->out;
    for (size_t off = 0; off < b->out.len; off += sl_row_len(b->out.p + off)) {
        sl_row_decode(out, b->out.p + off, vals);
        S_CHECK(vals[0].len > 4 && vals[0].len < 30 && !memcmp(vals[0].u.s, "key-", 4), "bad key");
        char ks[32];
        memcpy(ks, vals[0].u.s, vals[0].len);
        ks[vals[0].len] = 0;
        uint64_t key = strtoull(ks + 4, NULL, 10);
        S_CHECK(key < nkeys && !seen[key], "key %llu twice or unknown", (unsigned long long)key);
        seen[key] = true;
        char k[32], v1[128], v2[128];
        sl_value_t r1[2], r2[2];
        s_big_rec(key, nkeys, k, v1, r1);
        s_big_rec(key + nkeys, nkeys, k, v2, r2);
        const char *hi = memcmp(v1, v2, 100) > 0 ? v1 : v2;
        S_CHECK(vals[1].u.i == 2 && vals[2].len == 100 && !memcmp(vals[2].u.s, hi, 100),
                "key %llu: count %lld, max differs", (unsigned long long)key,
                (long long)vals[1].u.i);
    }
    free(seen);
    sl_snap_w_free(&w);
    s_inst_close(&b);
    s_job_free(&j);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

/* The aggregate's accumulators of one key, as op_aggregate.c keeps them
 * (the model of a version 1 snapshot entry). */
typedef struct {
    sl_value_t k[2]; /* the key: k, g */
    int64_t n[7], i[7];
    double d[7];
    sl_value_t str[7]; /* min/max s */
} s_v1_ent_t;

/* A version 1 snapshot (the format before the varint one) of the `agg`
 * operator of s_keyed_spec after records [0, to), built from a model of
 * its accumulators: version, nkeys, naggs, entry count, then per key in
 * first-seen order its key group (u32), its key values and per aggregate
 * n, i (a string min/max: its bytes) and d. */
static void s_agg_v1(const s_job_t *j, const s_rec_t *recs, int to, sl_snap_w_t *w)
{
    s_v1_ent_t *e = calloc(S_NIN, sizeof *e);
    ck_assert_ptr_nonnull(e);
    size_t n = 0;
    for (int r = 0; r < to; r++) {
        const sl_value_t *v = recs[r].v;
        size_t x = 0;
        while (x < n && !(sl_value_eq(&e[x].k[0], &v[0]) && sl_value_eq(&e[x].k[1], &v[1])))
            x++;
        if (x == n) {
            e[n].k[0] = v[0];
            e[n].k[1] = v[1];
            n++;
        }
        s_v1_ent_t *t = &e[x];
        t->n[0]++;           /* count */
        if (!v[3].is_null) { /* sum v, avg v */
            t->n[1]++;
            t->i[1] = (int64_t)((uint64_t)t->i[1] + (uint64_t)v[3].u.i);
            t->n[5]++;
            t->d[5] += (double)v[3].u.i;
        }
        t->n[2]++; /* sum d (never null) */
        t->d[2] += v[4].u.d;
        for (int g = 3; g <= 4 && !v[5].is_null; g++) { /* min s, max s */
            int cmp = t->n[g] ? sl_value_cmp(&v[5], &t->str[g]) : 0;
            if (!t->n[g] || (g == 3 ? cmp < 0 : cmp > 0))
                t->str[g] = v[5];
            t->n[g]++;
        }
        if (!t->n[6] || v[2].u.i > t->i[6]) /* max t */
            t->i[6] = v[2].u.i;
        t->n[6]++;
    }
    sl_snap_w_init(w);
    sl_snap_u8(w, 1);
    sl_snap_u32(w, 2);
    sl_snap_u32(w, 7);
    sl_snap_u64(w, n);
    int maxp = j->plan->max_parallelism;
    for (size_t x = 0; x < n; x++) {
        sl_snap_u32(w, (uint32_t)sl_key_group(sl_value_hash(e[x].k, 2), maxp));
        sl_snap_value(w, &e[x].k[0]);
        sl_snap_value(w, &e[x].k[1]);
        for (int g = 0; g < 7; g++) {
            sl_snap_i64(w, e[x].n[g]);
            if (g == 3 || g == 4)
                sl_snap_bytes(w, e[x].n[g] ? e[x].str[g].u.s : "", e[x].n[g] ? e[x].str[g].len : 0);
            else
                sl_snap_i64(w, e[x].i[g]);
            sl_snap_f64(w, e[x].d[g]);
        }
    }
    ck_assert_int_eq(w->err, 0);
    free(e);
}

/* A version 1 heap aggregate snapshot (written before the varint format)
 * still restores, at parallelism 1 and 2: the rest of the records then
 * give what an uninterrupted run gives; its snapshot (now version 4)
 * restores to the same state again; a version 4 snapshot is a fraction
 * of the version 1 size; a cut or mangled version 1 snapshot fails
 * cleanly. */
START_TEST(test_aggregate_v1)
{
    s_job_t j;
    s_job_load(&j, s_keyed_spec);
    s_rec_t *recs = s_records();
    int half = S_NIN / 2;
    int64_t maxt = INT64_MIN;
    /* the uninterrupted run */
    s_inst_t *full = s_inst_open(&j, "agg", 0, 1);
    s_feed(&j, &full, 1, recs, 0, S_NIN, &maxt);
    s_end(full);
    sl_snap_w_t v1;
    s_agg_v1(&j, recs, half, &v1);
    for (int par = 1; par <= 2; par++) {
        s_rows_t want = {0}, got = {0};
        s_rows_add(&want, &full->out, 0);
        s_inst_t *ins[2];
        for (int p = 0; p < par; p++) {
            ins[p] = s_inst_open(&j, "agg", p, par);
            ck_assert_int_eq(s_restore(ins[p], v1.data, v1.len), SL_OK);
        }
        if (par == 1) { /* through a version 4 snapshot and back */
            sl_snap_w_t v4;
            sl_snap_w_init(&v4);
            ck_assert_int_eq(ins[0]->vt->snapshot(&ins[0]->ctx, &v4), SL_OK);
            ck_assert_uint_eq(v4.data[0], 7); /* version 4 and the key groups */
            S_CHECK(v4.len * 2 < v1.len, "version 4: %zu bytes, version 1: %zu", v4.len, v1.len);
            s_inst_close(&ins[0]);
            ins[0] = s_inst_open(&j, "agg", 0, 1);
            ck_assert_int_eq(s_restore(ins[0], v4.data, v4.len), SL_OK);
            sl_snap_w_free(&v4);
        }
        maxt = INT64_MIN;
        for (int r = 0; r < half; r++)
            if (recs[r].v[2].u.i > maxt)
                maxt = recs[r].v[2].u.i;
        s_feed(&j, ins, par, recs, half, S_NIN, &maxt);
        for (int p = 0; p < par; p++) {
            s_end(ins[p]);
            s_rows_add(&got, &ins[p]->out, 0);
        }
        s_rows_eq(&want, &got, par == 1 ? "v1 -> v4 -> restore" : "v1 at parallelism 2");
        for (int p = 0; p < par; p++)
            s_inst_close(&ins[p]);
    }
    s_inst_close(&full);
    sl_snap_w_free(&v1);
    /* truncations fail with SL_DATA, mangled bytes fail cleanly (a small
     * state, the first records, to keep it quick) */
    s_agg_v1(&j, recs, 60, &v1);
    s_garbage_suite(&j, "agg", 0, 1, &v1);
    sl_snap_w_free(&v1);
    free(recs);
    s_job_free(&j);
}
END_TEST

/* Restores the p1 snapshots into subtask p of p2, feeds records
 * [half, S_NIN) and ends it; its output is appended to out. par: the
 * restore puts the keys into the table on a second thread. */
static void s_agg_restored_run(s_job_t *j, const char *name, const s_rec_t *recs, int half,
                               sl_snap_w_t *snaps, int p1, int p, int p2, bool par, s_buf_t *out)
{
    sl__agg_restore_par_min = par ? 0 : SIZE_MAX;
    s_inst_t *b = s_inst_open(j, name, p, p2);
    for (int q = 0; q < p1; q++) {
        int rc = s_restore(b, snaps[q].data, snaps[q].len);
        S_CHECK(rc == SL_OK, "restore %d into %d/%d: %d %s", q, p, p2, rc, b->ctx.err);
    }
    /* the second thread ran (and counted its CPU time), or none did */
    S_CHECK(par == (atomic_load(&b->ctx.restore_cpu_ns) > 0), "'%s' %d/%d: restore thread: %s",
            name, p, p2, par ? "none ran" : "one ran");
    sl__agg_restore_par_min = (size_t)1 << 16;
    for (int i = half; i < S_NIN; i++) { /* the records of subtask p */
        if (s_owner(j, b->ctx.node, &recs[i], p2, 0) != p)
            continue;
        int rc = sl_batch_append(b->in, b->ctx.in, recs[i].v);
        if (rc == SL_LIMIT) {
            s_flush_in(b);
            rc = sl_batch_append(b->in, b->ctx.in, recs[i].v);
        }
        S_CHECK(rc == SL_OK, "append: %d", rc);
    }
    s_end(b);
    s_buf_put(out, b->out.p, b->out.len);
    out->n += b->out.n;
    s_inst_close(&b);
}

/* The heap aggregate's restore with its table filled on a second thread
 * gives exactly what the serial restore gives (the same rows in the same
 * order after the rest of the records, per subtask), also at a rescale
 * (1 snapshot into 2 subtasks, 2 into 1), and so does the snapshot as
 * version 4 (no key groups of the writer: each key's computed); a
 * snapshot listing a key twice fails it with SL_DATA, and cut or mangled
 * snapshots fail it cleanly. */
START_TEST(test_aggregate_parallel_restore)
{
    s_job_t j;
    s_job_load(&j, s_keyed_spec);
    s_rec_t *recs = s_records();
    int half = S_NIN / 2;
    const char *names[] = {"agg", "agg1"};
    const size_t heads[] = {2 + 7 * 2, 1 + 2 * 2}; /* their key types and aggregates */
    const int shapes[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}};
    for (int k = 0; k < 2; k++)
        for (int sh = 0; sh < 4; sh++) {
            int p1 = shapes[sh][0], p2 = shapes[sh][1];
            s_inst_t *a[2];
            sl_snap_w_t snaps[2];
            for (int p = 0; p < p1; p++)
                a[p] = s_inst_open(&j, names[k], p, p1);
            int64_t maxt = INT64_MIN;
            s_feed(&j, a, p1, recs, 0, half, &maxt);
            for (int p = 0; p < p1; p++) {
                sl_snap_w_init(&snaps[p]);
                ck_assert_int_eq(a[p]->vt->snapshot(&a[p]->ctx, &snaps[p]), SL_OK);
                s_inst_close(&a[p]);
            }
            /* the same as version 4 (without the writer's key groups,
             * so every key's is computed) */
            sl_snap_w_t old[2];
            size_t head = 1 + 4 + 4 + 8 + heads[k];
            for (int p = 0; p < p1; p++) {
                ck_assert_uint_eq(snaps[p].data[0], 7);
                sl_snap_w_init(&old[p]);
                sl_snap_u8(&old[p], 4);
                s_buf_t tmp = {0};
                s_buf_put(&tmp, snaps[p].data + 1, head - 1);
                s_buf_put(&tmp, snaps[p].data + head + 12, snaps[p].len - head - 12);
                ck_assert(sl_snap_reserve(&old[p], tmp.len));
                memcpy(old[p].data + old[p].len, tmp.p, tmp.len);
                old[p].len += tmp.len;
                free(tmp.p);
            }
            for (int p = 0; p < p2; p++) {
                s_buf_t ser = {0}, par = {0}, v4 = {0};
                s_agg_restored_run(&j, names[k], recs, half, snaps, p1, p, p2, false, &ser);
                s_agg_restored_run(&j, names[k], recs, half, snaps, p1, p, p2, true, &par);
                s_agg_restored_run(&j, names[k], recs, half, old, p1, p, p2, true, &v4);
                char what[128];
                snprintf(what, sizeof what, "'%s' %d -> %d/%d: parallel vs serial restore",
                         names[k], p1, p, p2);
                ck_assert_uint_gt(ser.n, 0);
                s_buf_eq(&par, &ser, what);
                snprintf(what, sizeof what, "'%s' %d -> %d/%d: version 4 vs 7", names[k], p1, p,
                         p2);
                s_buf_eq(&v4, &ser, what);
                free(ser.p);
                free(par.p);
                free(v4.p);
            }
            for (int p = 0; p < p1; p++) {
                sl_snap_w_free(&snaps[p]);
                sl_snap_w_free(&old[p]);
            }
        }
    /* a key twice: the snapshot of one key, its entry repeated */
    s_inst_t *one = s_inst_open(&j, "agg1", 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(&j, &one, 1, recs, 0, 1, &maxt);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(one->vt->snapshot(&one->ctx, &w), SL_OK);
    s_inst_close(&one);
    /* version, nkeys, naggs, n, types, the writer's key groups */
    const size_t head = 1 + 4 + 4 + 8 + 1 + 2 * 2 + 3 * 4;
    ck_assert_uint_eq(w.data[9], 1);
    size_t ent = w.len - head;
    uint8_t *dup = malloc(w.len + ent);
    ck_assert_ptr_nonnull(dup);
    memcpy(dup, w.data, w.len);
    memcpy(dup + w.len, w.data + head, ent);
    dup[9] = 2;
    for (int par = 0; par < 2; par++) {
        sl__agg_restore_par_min = par ? 0 : SIZE_MAX;
        ck_assert_int_eq(s_restore_garbage(&j, "agg1", 0, 1, w.data, w.len), SL_OK);
        ck_assert_int_eq(s_restore_garbage(&j, "agg1", 0, 1, dup, w.len + ent), SL_DATA);
    }
    free(dup);
    sl_snap_w_free(&w);
    /* cut and mangled snapshots, on the second thread */
    sl__agg_restore_par_min = 0;
    s_inst_t *small = s_inst_open(&j, "agg", 0, 1);
    maxt = INT64_MIN;
    s_feed(&j, &small, 1, recs, 0, 60, &maxt);
    sl_snap_w_init(&w);
    ck_assert_int_eq(small->vt->snapshot(&small->ctx, &w), SL_OK);
    s_inst_close(&small);
    s_garbage_suite(&j, "agg", 0, 1, &w);
    sl__agg_restore_par_min = (size_t)1 << 16;
    sl_snap_w_free(&w);
    free(recs);
    s_job_free(&j);
}
END_TEST

START_TEST(test_aggregate)
{
    s_keyed_all("agg", true);
    s_keyed_all("agg1", true);
}
END_TEST

START_TEST(test_window_tumbling)
{
    s_keyed_all("tumble", false);
}
END_TEST

START_TEST(test_window_sliding_top)
{
    s_keyed_all("slide", false);
}
END_TEST

START_TEST(test_window_session)
{
    s_keyed_all("sess", false);
}
END_TEST

/* A sliding window kept as panes (`pname`: combinable aggregates) gives
 * the rows, in the same order, and the late side output of the same window
 * kept as windows (`wname`: the same plus a count_distinct, which keeps it
 * on windows; its last column is dropped before comparing), over the
 * records (out of order, late within and beyond the allowed lateness). */
static void s_panes_as_windows(s_job_t *j, const char *pname, const char *wname,
                               const s_rec_t *recs)
{
    s_inst_t *p = s_inst_open(j, pname, 0, 1), *w = s_inst_open(j, wname, 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(j, &p, 1, recs, 0, S_NIN, &maxt);
    s_end(p);
    maxt = INT64_MIN;
    s_feed(j, &w, 1, recs, 0, S_NIN, &maxt);
    s_end(w);
    const sl_schema_t *ps = p->ctx.node->out, *ws = w->ctx.node->out;
    ck_assert_int_eq(ws->nfields, ps->nfields + 1);
    S_CHECK(p->out.n == w->out.n && p->out.n > 1000, "'%s': %zu rows, '%s': %zu", pname, p->out.n,
            wname, w->out.n);
    sl_value_t vals[32];
    uint8_t buf[4096];
    size_t po = 0, wo = 0;
    for (size_t i = 0; i < w->out.n; i++) {
        const uint8_t *wr = w->out.p + wo, *pr = p->out.p + po;
        sl_row_decode(ws, wr, vals);
        size_t len = sl_row_size(ps, vals);
        ck_assert_uint_le(len, sizeof buf);
        sl_row_encode(ps, vals, buf);
        S_CHECK(len == sl_row_len(pr) && !memcmp(buf, pr, len), "'%s' row %zu differs from '%s'",
                pname, i, wname);
        wo += sl_row_len(wr);
        po += len;
    }
    ck_assert_uint_eq(p->side.n, w->side.n);
    ck_assert_uint_eq(p->side.len, w->side.len);
    ck_assert(!p->side.len || !memcmp(p->side.p, w->side.p, p->side.len));
    s_inst_close(&p);
    s_inst_close(&w);
}

/* Panes: the same results as windows; snapshots (which hold windows)
 * restore at every point and into other parallelisms. */
START_TEST(test_window_sliding_panes)
{
    s_job_t j;
    s_job_load(&j, s_keyed_spec);
    s_rec_t *recs = s_records();
    s_panes_as_windows(&j, "panes", "wins", recs);
    s_panes_as_windows(&j, "panes0", "wins0", recs);
    /* times 1 ms before multiples of 50 ms: records and watermarks at the
     * last instant of a window (end - 1) */
    s_rec_t *edge = calloc(S_NIN, sizeof *edge);
    ck_assert_ptr_nonnull(edge);
    for (int i = 0; i < S_NIN; i++) {
        edge[i] = recs[i];
        edge[i].v[0] =
            recs[i].v[0].is_null ? recs[i].v[0] : sl_value_str(edge[i].k, recs[i].v[0].len);
        edge[i].v[5] =
            recs[i].v[5].is_null ? recs[i].v[5] : sl_value_str(edge[i].s, recs[i].v[5].len);
        int64_t t = recs[i].v[2].u.i, q = t >= 0 ? t / 50 : -((-t + 49) / 50);
        edge[i].v[2] = sl_value_ts(q * 50 - 1);
    }
    s_panes_as_windows(&j, "panes", "wins", edge);
    s_panes_as_windows(&j, "panes0", "wins0", edge);
    free(edge);
    /* fewer points than s_keyed_all: restore runs on windows (test_window_*) */
    s_keyed_case(&j, "panes", recs, 777, 1, 1, false, NULL);
    s_keyed_case(&j, "panes", recs, S_NIN / 2, 1, 2, false, NULL);
    s_keyed_case(&j, "panes", recs, S_NIN / 2, 2, 1, false, NULL);
    s_keyed_case(&j, "panes0", recs, S_NIN / 3, 1, 1, false, NULL);
    s_keyed_case(&j, "panes0", recs, S_NIN / 2, 1, 3, false, NULL);
    s_ref_drop();
    free(recs);
    s_job_free(&j);
}
END_TEST

/* Panes after a restore: a sliding window with double sums whose value
 * depends on the order of addition (tenths, thousandths) gives
 * byte-identical rows with and without a restore in the middle, at the
 * same and at other parallelisms (the restored instance keeps panes; a
 * restore into windows would add each window's records one by one). */
START_TEST(test_window_panes_restore_doubles)
{
    s_job_t j;
    s_job_load(&j, s_keyed_spec);
    s_rec_t *recs = s_records();
    for (int i = 0; i < S_NIN; i++)
        recs[i].v[4] = sl_value_double(0.1 * (double)(i % 97) + 1e-3 * (double)(i % 13) + 1e7);
    s_keyed_case(&j, "panesd", recs, 777, 1, 1, false, NULL);
    s_keyed_case(&j, "panesd", recs, S_NIN / 2, 1, 1, false, NULL);
    s_keyed_case(&j, "panesd", recs, S_NIN / 2, 1, 2, false, NULL);
    s_keyed_case(&j, "panesd", recs, S_NIN / 3, 2, 1, false, NULL);
    s_keyed_case(&j, "panesd", recs, S_NIN / 2, 2, 3, false, NULL);
    free(recs);
    s_job_free(&j);
}
END_TEST

/* A snapshot of panes restores into the same window with its state in
 * rocksdb (which keeps windows): the windows alive are assembled from the
 * panes, and the run goes on to the uninterrupted run's rows and late
 * records. */
START_TEST(test_window_panes_into_rocksdb)
{
    s_root = sl_test_tmpdir();
    char *text = s_rocks_text(s_keyed_spec);
    s_job_t jh, jr;
    s_job_load(&jh, s_keyed_spec);
    s_job_load(&jr, text);
    free(text);
    s_rec_t *recs = s_records();
    s_inst_t *ref = s_inst_open(&jh, "panes", 0, 1), *h = s_inst_open(&jh, "panes", 0, 1);
    int64_t maxt = INT64_MIN;
    s_feed(&jh, &ref, 1, recs, 0, S_NIN, &maxt);
    s_end(ref);
    maxt = INT64_MIN;
    s_feed(&jh, &h, 1, recs, 0, S_NIN / 2, &maxt);
    ck_assert_int_eq(sl_emit_flush(&h->ctx.out), SL_OK);
    ck_assert_int_eq(sl_emit_flush(&h->ctx.side), SL_OK);
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    ck_assert_int_eq(h->vt->snapshot(&h->ctx, &w), SL_OK);
    s_inst_t *r = s_inst_open(&jr, "panes", 0, 1);
    ck_assert_int_eq(s_restore(r, w.data, w.len), SL_OK);
    sl_snap_w_free(&w);
    s_feed(&jr, &r, 1, recs, S_NIN / 2, S_NIN, &maxt);
    s_end(r);
    s_rows_t want = {0}, got = {0};
    s_rows_add(&want, &ref->out, 0);
    s_rows_add(&got, &h->out, 0);
    s_rows_add(&got, &r->out, 0);
    s_rows_eq(&want, &got, "'panes' restored into rocksdb");
    s_rows_add(&want, &ref->side, 0);
    s_rows_add(&got, &h->side, 0);
    s_rows_add(&got, &r->side, 0);
    s_rows_eq(&want, &got, "'panes' late records restored into rocksdb");
    s_inst_close(&ref);
    s_inst_close(&h);
    s_inst_close(&r);
    free(recs);
    s_job_free(&jh);
    s_job_free(&jr);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

static const char *s_grown_spec = "name: grown\n"
                                  "sources:\n"
                                  "  - name: src\n"
                                  "    type: file\n"
                                  "    format: csv\n"
                                  "    path: in.csv\n"
                                  "    schema: {k: string, t: timestamp}\n"
                                  "    timestamp: t\n"
                                  "operators:\n"
                                  "  - name: sess\n"
                                  "    type: window\n"
                                  "    input: src\n"
                                  "    key: k\n"
                                  "    window: {type: session, gap: 3s}\n"
                                  "    allowed_lateness: 10s\n"
                                  "    aggregates: [{name: n, fn: count}]\n"
                                  "sinks:\n"
                                  "  - {name: o, type: discard, input: sess}\n";

/* Feeds key k's records at times ts (ms) to instance in as one batch. */
static void s_grown_feed(s_inst_t *in, const int64_t *ts, int n)
{
    for (int i = 0; i < n; i++) {
        sl_value_t v[2] = {sl_value_str("k", 1), sl_value_ts(ts[i])};
        ck_assert_int_eq(sl_batch_append(in->in, in->ctx.in, v), SL_OK);
    }
    s_flush_in(in);
}

/* A fired session that a late record grows past the watermark fires again
 * at its new end, also after a restore: the snapshot must not present it as
 * fired (kept only for lateness), or the restored instance drops it without
 * emitting it. Session [0, 4 s) fires at 4.999 s; 3.5 s grows it to
 * [0, 6.5 s), due at 6.499 s; a snapshot; end of input. */
static void s_grown_case(const char *spec)
{
    s_job_t j;
    s_job_load(&j, spec);
    for (int restore = 0; restore <= 1; restore++) {
        s_inst_t *a = s_inst_open(&j, "sess", 0, 1);
        const int64_t first[] = {0, 1000}, late[] = {3500};
        s_grown_feed(a, first, 2);
        s_watermark(a, 4999);
        s_grown_feed(a, late, 1);
        ck_assert_int_eq(sl_emit_flush(&a->ctx.out), SL_OK);
        ck_assert_uint_eq(a->out.n, 1); /* [0, 4 s): 2 */
        s_inst_t *b = a;
        if (restore) {
            sl_snap_w_t w;
            sl_snap_w_init(&w);
            a->ctx.checkpoint_id = s_new_ck();
            ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
            b = s_inst_open(&j, "sess", 0, 1);
            ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
            sl_snap_w_free(&w);
        }
        s_end(b);
        S_CHECK(b->out.n == (restore ? 1u : 2u), "%s: %zu results after the late record",
                restore ? "restored" : "uninterrupted", b->out.n);
        sl_value_t v[4];
        const uint8_t *last = b->out.p;
        for (size_t r = 1; r < b->out.n; r++)
            last += sl_row_len(last);
        sl_row_decode(b->ctx.out.schema, last, v);
        S_CHECK(v[1].u.i == 0 && v[2].u.i == 6500 && v[3].u.i == 3, "%s: [%lld, %lld) %lld",
                restore ? "restored" : "uninterrupted", (long long)v[1].u.i, (long long)v[2].u.i,
                (long long)v[3].u.i);
        if (b != a)
            s_inst_close(&b);
        s_inst_close(&a);
    }
    s_job_free(&j);
}

START_TEST(test_window_session_grown)
{
    s_grown_case(s_grown_spec);
    s_root = sl_test_tmpdir();
    const char *state = "state: {backend: rocksdb}\n";
    char text[2048];
    snprintf(text, sizeof text, "%s%s", state, s_grown_spec);
    s_grown_case(text);
    sl_test_rmrf(s_root);
    free(s_root);
    s_root = NULL;
}
END_TEST

/* The same key restored twice (two snapshots of one subtask) is refused. */
START_TEST(test_keyed_duplicate)
{
    s_job_t j;
    s_job_load(&j, s_keyed_spec);
    s_rec_t *recs = s_records();
    const char *names[] = {"agg", "tumble", "sess"};
    for (int i = 0; i < 3; i++) {
        s_inst_t *a = s_inst_open(&j, names[i], 0, 1);
        int64_t maxt = INT64_MIN;
        s_feed(&j, &a, 1, recs, 0, 100, &maxt);
        sl_snap_w_t w;
        sl_snap_w_init(&w);
        ck_assert_int_eq(a->vt->snapshot(&a->ctx, &w), SL_OK);
        s_inst_t *b = s_inst_open(&j, names[i], 0, 1);
        ck_assert_int_eq(s_restore(b, w.data, w.len), SL_OK);
        ck_assert_int_eq(s_restore(b, w.data, w.len), SL_DATA);
        ck_assert_str_ne(b->ctx.err, "");
        s_inst_close(&b);
        s_inst_close(&a);
        sl_snap_w_free(&w);
    }
    free(recs);
    s_job_free(&j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_snap_round_trip);
    tcase_add_test(tc, test_snap_garbage_values);
    tcase_add_test(tc, test_generator);
    tcase_add_test(tc, test_generator_pause);
    tcase_add_test(tc, test_generator_pause_until);
    tcase_add_test(tc, test_stateless);
    tcase_add_test(tc, test_keyed_duplicate);
    suite_add_tcase(s, tc);
    /* (the sources snapshotted at every record: a test case of their own) */
    TCase *src = tcase_create("sources");
    tcase_set_timeout(src, 300);
    tcase_add_test(src, test_nexmark);
    tcase_add_test(src, test_nexmark_fused_filter);
    tcase_add_test(src, test_nexmark_fused_map);
    tcase_add_test(src, test_file_source);
    suite_add_tcase(s, src);
    /* (the heap aggregate, both snapshot versions: a test case of its own) */
    TCase *agg = tcase_create("aggregate");
    tcase_set_timeout(agg, 300);
    tcase_add_test(agg, test_aggregate);
    tcase_add_test(agg, test_aggregate_v1);
    tcase_add_test(agg, test_aggregate_parallel_restore);
    suite_add_tcase(s, agg);
    /* (the heap windows: test cases of their own, each some 5-10 CPU s under ASan) */
    TCase *win = tcase_create("windows");
    tcase_set_timeout(win, 300);
    tcase_add_test(win, test_window_tumbling);
    tcase_add_test(win, test_window_session);
    tcase_add_test(win, test_window_session_grown);
    suite_add_tcase(s, win);
    TCase *slide = tcase_create("window-sliding");
    tcase_set_timeout(slide, 300);
    tcase_add_test(slide, test_window_sliding_top);
    suite_add_tcase(s, slide);
    TCase *panes = tcase_create("window-panes");
    tcase_set_timeout(panes, 300);
    tcase_add_test(panes, test_window_sliding_panes);
    tcase_add_test(panes, test_window_panes_restore_doubles);
    tcase_add_test(panes, test_window_panes_into_rocksdb);
    suite_add_tcase(s, panes);
    TCase *rocks = tcase_create("rocksdb");
    tcase_set_timeout(rocks, 300);
    tcase_add_test(rocks, test_rocks_aggregate);
    tcase_add_test(rocks, test_rocks_window_tumbling);
    suite_add_tcase(s, rocks);
    /* (the rocksdb windows take about as long each as the heap cases all
     * together: each kind in a test case of its own) */
    TCase *rwin = tcase_create("rocksdb-windows");
    tcase_set_timeout(rwin, 300);
    tcase_add_test(rwin, test_rocks_window_sliding_top);
    suite_add_tcase(s, rwin);
    TCase *rsess = tcase_create("rocksdb-session");
    tcase_set_timeout(rsess, 300);
    tcase_add_test(rsess, test_rocks_window_session);
    tcase_add_test(rsess, test_rocks_incremental);
    suite_add_tcase(s, rsess);
    TCase *big = tcase_create("rocksdb-big");
    tcase_set_timeout(big, 300);
    tcase_add_test(big, test_rocks_bigger_than_memory);
    suite_add_tcase(s, big);
    TCase *rp = tcase_create("rocksdb-process");
    tcase_set_timeout(rp, 300);
    tcase_add_test(rp, test_rocks_process);
    suite_add_tcase(s, rp);
    for (int i = 0; i < (int)(sizeof s_rocks_joins / sizeof *s_rocks_joins); i++) {
        TCase *rj = tcase_create(s_rocks_joins[i].tcase);
        tcase_set_timeout(rj, 280);
        tcase_add_loop_test(rj, test_rocks_join, i, i + 1);
        if (strcmp(s_rocks_joins[i].node, "ej") == 0)
            tcase_add_test(rj, test_rocks_join_adjusted);
        suite_add_tcase(s, rj);
    }
    TCase *tj = tcase_create("joins-process");
    tcase_set_timeout(tj, 300);
    tcase_add_test(tj, test_join_window);
    tcase_add_test(tj, test_join_interval);
    tcase_add_test(tj, test_join_enrich);
    tcase_add_test(tj, test_process);
    tcase_add_test(tj, test_join_process_duplicate);
    tcase_add_test(tj, test_file_sink_lost_part);
    tcase_add_test(tj, test_file_sink_fenced);
    tcase_add_test(tj, test_file_sink_rolling);
    tcase_add_test(tj, test_file_sink_rolling_end_crash);
    suite_add_tcase(s, tj);
    return sl_test_run(s);
}
