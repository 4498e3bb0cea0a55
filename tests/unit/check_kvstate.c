/* check_kvstate.c — the RocksDB state store: point operations, iteration and
 * range deletes by key group, multi-gets, write batches, sorted writes
 * (ingested SSTs), state larger than the memory
 * budget, checkpoints that copy only new SST files, restores that verify
 * every file (and name the bad one), local copies of checkpoints and the
 * restores from them that fall back when a file does not match, manifest
 * encoding, and the shared-file garbage collection list. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "sluice/err.h"
#include "sluice/kvstate.h"
#include "testutil.h"

static char *g_dir;
static char g_err[1024];

static void s_setup(void)
{
    g_dir = sl_test_tmpdir();
    g_err[0] = '\0';
}

static void s_teardown(void)
{
    sl_test_rmrf(g_dir);
    free(g_dir);
    g_dir = NULL;
}

/* g_dir/<name> in a static buffer (one of four, so a few can be live). */
static const char *s_path(const char *name)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, name);
    return buf[i];
}

static sl_kv_t *s_open(const char *name, size_t cache, size_t wbuf)
{
    sl_kv_opts_t o;
    sl_kv_opts_default(&o);
    if (cache)
        o.block_cache_bytes = cache;
    if (wbuf)
        o.write_buffer_bytes = wbuf;
    sl_kv_t *kv = NULL;
    int rc = sl_kv_open(s_path(name), &o, &kv, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "open: %s", g_err);
    return kv;
}

static void s_put_str(sl_kv_t *kv, uint16_t kg, const char *k, const char *v)
{
    ck_assert_int_eq(sl_kv_put(kv, kg, k, strlen(k), v, strlen(v)), 0);
}

static void s_expect(sl_kv_t *kv, uint16_t kg, const char *k, const char *want)
{
    const void *v;
    size_t n;
    int rc = sl_kv_get(kv, kg, k, strlen(k), &v, &n);
    if (!want) {
        ck_assert_int_eq(rc, SL_NOTFOUND);
        return;
    }
    ck_assert_msg(rc == 0, "get %u/%s: %d", (unsigned)kg, k, rc);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(memcmp(v, want, n) == 0);
}

/* Collects a scan into "kg:key=val;" text. */
typedef struct {
    char buf[4096];
    size_t len;
    size_t count;
} s_collect_t;

static int s_collect_fn(void *arg, const sl_kv_entry_t *e)
{
    s_collect_t *c = arg;
    int n =
        snprintf(c->buf + c->len, sizeof c->buf - c->len, "%u:%.*s=%.*s;", (unsigned)e->key_group,
                 (int)e->key_len, (const char *)e->key, (int)e->val_len, (const char *)e->val);
    if (n > 0 && (size_t)n < sizeof c->buf - c->len)
        c->len += (size_t)n;
    c->count++;
    return 0;
}

static const char *s_scan(sl_kv_t *kv, uint16_t first, uint16_t last)
{
    static s_collect_t c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(sl_kv_scan(kv, first, last, s_collect_fn, &c), 0);
    return c.buf;
}

START_TEST(test_point_ops_and_iteration)
{
    sl_kv_t *kv = s_open("s", 0, 0);
    s_put_str(kv, 2, "b", "2b");
    s_put_str(kv, 1, "z", "1z");
    s_put_str(kv, 1, "a", "1a");
    s_put_str(kv, 300, "k", "300k"); /* 0x012c: ordered after 2 despite the low byte */
    s_put_str(kv, 2, "a", "2a");
    ck_assert_int_eq(sl_kv_put(kv, 0, "", 0, "empty", 5), 0); /* empty key */
    s_expect(kv, 1, "a", "1a");
    s_expect(kv, 2, "a", "2a");
    s_expect(kv, 3, "a", NULL);  /* same key, other group */
    s_expect(kv, 1, "zz", NULL); /* prefix of nothing */
    ck_assert_str_eq(s_scan(kv, 0, 0), "0:=empty;");
    ck_assert_str_eq(s_scan(kv, 1, 1), "1:a=1a;1:z=1z;");
    ck_assert_str_eq(s_scan(kv, 2, 300), "2:a=2a;2:b=2b;300:k=300k;");
    ck_assert_str_eq(s_scan(kv, 0, SL_KV_MAX_KEY_GROUP),
                     "0:=empty;1:a=1a;1:z=1z;2:a=2a;2:b=2b;300:k=300k;");
    ck_assert_str_eq(s_scan(kv, 3, 299), "");

    /* overwrite and delete */
    s_put_str(kv, 1, "a", "1a-v2");
    s_expect(kv, 1, "a", "1a-v2");
    ck_assert_int_eq(sl_kv_delete(kv, 1, "a", 1), 0);
    s_expect(kv, 1, "a", NULL);
    s_expect(kv, 1, "z", "1z");

    /* the reserved group and bad ranges are rejected, not crashed on */
    ck_assert_int_eq(sl_kv_put(kv, 0xffff, "x", 1, "y", 1), SL_INVAL);
    ck_assert_str_ne(sl_kv_errmsg(kv), "");
    sl_kv_iter_t *it = NULL;
    ck_assert_int_eq(sl_kv_iter_new(kv, 5, 4, &it), SL_INVAL);
    ck_assert_ptr_null(it);

    /* iterator struct; a consistent view taken at creation */
    ck_assert_int_eq(sl_kv_iter_new(kv, 2, 2, &it), 0);
    s_put_str(kv, 2, "c", "late");
    sl_kv_entry_t e;
    ck_assert_int_eq(sl_kv_iter_next(it, &e), 1);
    ck_assert_uint_eq(e.key_group, 2);
    ck_assert_uint_eq(e.key_len, 1);
    ck_assert(memcmp(e.key, "a", 1) == 0);
    ck_assert_int_eq(sl_kv_iter_next(it, &e), 1);
    ck_assert(memcmp(e.val, "2b", 2) == 0);
    ck_assert_int_eq(sl_kv_iter_next(it, &e), 0);
    ck_assert_int_eq(sl_kv_iter_next(it, &e), 0);
    sl_kv_iter_destroy(&it);
    ck_assert_ptr_null(it);
    sl_kv_iter_destroy(&it);

    /* batches: applied on commit, reusable */
    sl_kv_batch_t *b = sl_kv_batch_new();
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 100; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        ck_assert_int_eq(sl_kv_batch_put(b, 7, k, strlen(k), v, strlen(v)), 0);
    }
    ck_assert_int_eq(sl_kv_batch_delete(b, 2, "b", 1), 0);
    ck_assert_int_eq(sl_kv_batch_put(b, 0xffff, "k", 1, "v", 1), SL_INVAL);
    ck_assert_uint_eq(sl_kv_batch_count(b), 101);
    s_expect(kv, 7, "k000", NULL);
    ck_assert_int_eq(sl_kv_batch_commit(kv, b), 0);
    ck_assert_uint_eq(sl_kv_batch_count(b), 0);
    s_expect(kv, 7, "k042", "v42");
    s_expect(kv, 2, "b", NULL);
    ck_assert_int_eq(sl_kv_batch_put(b, 8, "x", 1, "y", 1), 0);
    ck_assert_int_eq(sl_kv_batch_commit(kv, b), 0);
    s_expect(kv, 8, "x", "y");
    sl_kv_batch_destroy(&b);
    ck_assert_ptr_null(b);

    /* data survives close and reopen (flushed on close) */
    sl_kv_close(&kv);
    ck_assert_ptr_null(kv);
    sl_kv_close(&kv);
    kv = s_open("s", 0, 0);
    s_expect(kv, 7, "k099", "v99");
    s_expect(kv, 300, "k", "300k");
    sl_kv_close(&kv);

    /* no store and no create: not found */
    sl_kv_opts_t o;
    sl_kv_opts_default(&o);
    o.create_if_missing = false;
    ck_assert_int_eq(sl_kv_open(s_path("none"), &o, &kv, g_err, sizeof g_err), SL_NOTFOUND);
    ck_assert_ptr_null(kv);
}
END_TEST

/* A multi-get finds what gets find: keys in memtables and in SST files
 * (the store is larger than its block cache), absent keys, the same key
 * twice, keys of other key groups; a bad key group is refused. */
START_TEST(test_multi_get)
{
    sl_kv_t *kv = s_open("mget", 64u << 10, 64u << 10);
    char key[32], val[256];
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(key, sizeof key, "k%06d", i);
        memset(val, 'a' + i % 26, sizeof val);
        ck_assert_int_eq(sl_kv_put(kv, (uint16_t)(i % 7), key, (size_t)kl, val, 100 + i % 100), 0);
    }
    enum { N = 600 };
    static char keys[N][32];
    const void *kp[N];
    size_t kl[N];
    uint16_t kg[N];
    sl_kv_value_t v[N];
    for (int round = 0; round < 3; round++) {
        for (int j = 0; j < N; j++) {
            int i = (j * 7919 + round * 131) % 30000; /* 20000.. are absent */
            if (j == N - 1)
                i = (0 * 7919 + round * 131) % 30000; /* the first key again */
            kl[j] = (size_t)snprintf(keys[j], sizeof keys[j], "k%06d", i);
            kp[j] = keys[j];
            kg[j] = (uint16_t)(i % 7);
            if (j % 50 == 1)
                kg[j] = (uint16_t)((i + 1) % 7); /* right key, wrong group: absent */
        }
        ck_assert_int_eq(sl_kv_multi_get(kv, N, kg, kp, kl, v), 0);
        for (int j = 0; j < N; j++) {
            int i = atoi(keys[j] + 1);
            bool present = i < 20000 && kg[j] == (uint16_t)(i % 7);
            ck_assert_msg(v[j].found == present, "key %s group %u", keys[j], kg[j]);
            if (!present) {
                ck_assert_ptr_null(v[j].val);
                continue;
            }
            ck_assert_uint_eq(v[j].len, (size_t)(100 + i % 100));
            const char *b = v[j].val;
            ck_assert_int_eq(b[0], 'a' + i % 26);
            ck_assert_int_eq(b[v[j].len - 1], 'a' + i % 26);
            const void *gv;
            size_t gl;
            ck_assert_int_eq(sl_kv_get(kv, kg[j], keys[j], kl[j], &gv, &gl), 0);
            ck_assert_uint_eq(gl, v[j].len);
            ck_assert_int_eq(memcmp(gv, v[j].val, gl), 0);
        }
    }
    ck_assert_int_eq(sl_kv_multi_get(kv, 0, kg, kp, kl, v), 0);
    kg[3] = 0xffff;
    ck_assert_int_eq(sl_kv_multi_get(kv, N, kg, kp, kl, v), SL_INVAL);
    sl_kv_close(&kv);
}
END_TEST

/* Collects the cursor's span [lo, hi) of group kg into "key=val;" text. */
static const char *s_span(sl_kv_cursor_t *c, uint16_t kg, const char *lo, const char *hi)
{
    static char buf[4096];
    size_t len = 0;
    buf[0] = 0;
    ck_assert_int_eq(sl_kv_cursor_seek(c, kg, lo, strlen(lo), hi, hi ? strlen(hi) : 0), 0);
    sl_kv_entry_t e;
    int rc;
    while ((rc = sl_kv_cursor_next(c, &e)) == 1) {
        ck_assert_uint_eq(e.key_group, kg);
        int n = snprintf(buf + len, sizeof buf - len, "%.*s=%.*s;", (int)e.key_len,
                         (const char *)e.key, (int)e.val_len, (const char *)e.val);
        ck_assert(n > 0 && (size_t)n < sizeof buf - len);
        len += (size_t)n;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(sl_kv_cursor_next(c, &e), 0); /* stays at the end */
    return buf;
}

START_TEST(test_cursor_reseek)
{
    sl_kv_t *kv = s_open("s", 0, 0);
    /* some entries in SST files, some in the memtable, tombstones in both */
    const char *keys[] = {"a1", "a2", "a3", "b1", "b2", "c1"};
    for (int i = 0; i < 6; i++) {
        s_put_str(kv, 4, keys[i], keys[i]);
        s_put_str(kv, 5, keys[i], "g5");
    }
    s_put_str(kv, 3, "z", "g3");
    ck_assert_int_eq(sl_kv_delete(kv, 4, "a2", 2), 0);
    ck_assert_int_eq(sl_kv_compact(kv), 0);
    s_put_str(kv, 4, "a4", "a4");
    ck_assert_int_eq(sl_kv_delete(kv, 4, "b1", 2), 0);
    ck_assert_int_eq(sl_kv_delete(kv, 4, "b2", 2), 0);

    sl_kv_cursor_t *c = NULL;
    ck_assert_int_eq(sl_kv_cursor_new(kv, &c), 0);
    sl_kv_entry_t e;
    ck_assert_int_eq(sl_kv_cursor_next(c, &e), 0); /* not sought yet */
    /* a view as of creation */
    s_put_str(kv, 4, "a5", "late");
    ck_assert_str_eq(s_span(c, 4, "a", "b"), "a1=a1;a3=a3;a4=a4;");
    /* the bound moves with every seek: narrower, wider, none (end of group) */
    ck_assert_str_eq(s_span(c, 4, "a2", "a4"), "a3=a3;");
    ck_assert_str_eq(s_span(c, 4, "a", "c2"), "a1=a1;a3=a3;a4=a4;c1=c1;");
    ck_assert_str_eq(s_span(c, 4, "b", NULL), "c1=c1;");
    ck_assert_str_eq(s_span(c, 4, "", "a"), "");
    ck_assert_str_eq(s_span(c, 4, "b", "c"), ""); /* only tombstones */
    ck_assert_str_eq(s_span(c, 3, "", NULL), "z=g3;");
    ck_assert_str_eq(s_span(c, 5, "b2", NULL), "b2=g5;c1=g5;");
    ck_assert_str_eq(s_span(c, 6, "", NULL), "");
    ck_assert_int_eq(sl_kv_cursor_seek(c, 0xffff, "", 0, NULL, 0), SL_INVAL);
    ck_assert_int_eq(sl_kv_cursor_next(c, &e), 0);
    sl_kv_cursor_destroy(&c);
    ck_assert_ptr_null(c);
    sl_kv_cursor_destroy(&c);
    /* a new cursor sees the later write */
    ck_assert_int_eq(sl_kv_cursor_new(kv, &c), 0);
    ck_assert_str_eq(s_span(c, 4, "a4", "b"), "a4=a4;a5=late;");
    sl_kv_cursor_destroy(&c);
    sl_kv_close(&kv);
}
END_TEST

START_TEST(test_delete_range)
{
    sl_kv_t *kv = s_open("s", 0, 0);
    for (uint16_t g = 0; g < 10; g++)
        for (int i = 0; i < 3; i++) {
            char k[8];
            snprintf(k, sizeof k, "k%d", i);
            s_put_str(kv, g, k, "v");
        }
    s_put_str(kv, SL_KV_MAX_KEY_GROUP, "top", "v");
    ck_assert_int_eq(sl_kv_delete_range(kv, 3, 6), 0);
    ck_assert_str_eq(s_scan(kv, 3, 6), "");
    ck_assert_str_eq(s_scan(kv, 2, 3), "2:k0=v;2:k1=v;2:k2=v;");
    ck_assert_str_eq(s_scan(kv, 6, 7), "7:k0=v;7:k1=v;7:k2=v;");
    s_expect(kv, 5, "k1", NULL);
    /* the last group can be dropped too */
    ck_assert_int_eq(sl_kv_delete_range(kv, 9, SL_KV_MAX_KEY_GROUP), 0);
    ck_assert_str_eq(s_scan(kv, 8, SL_KV_MAX_KEY_GROUP), "8:k0=v;8:k1=v;8:k2=v;");
    ck_assert_int_eq(sl_kv_delete_range(kv, 5, 4), SL_INVAL);
    /* writes after the range delete are visible; compaction keeps the result */
    s_put_str(kv, 4, "new", "n");
    ck_assert_int_eq(sl_kv_compact(kv), 0);
    ck_assert_str_eq(s_scan(kv, 3, 6), "4:new=n;");
    sl_kv_close(&kv);
}
END_TEST

/* A time to live: compaction drops the values whose write time (at
 * ttl_offset) is ttl_ms or more in the past, keeps the others and the
 * values too short to hold a time. */
START_TEST(test_ttl_compaction)
{
    sl_kv_opts_t o;
    sl_kv_opts_default(&o);
    o.ttl_ms = 60000;
    o.ttl_offset = 1;
    sl_kv_t *kv = NULL;
    ck_assert_msg(sl_kv_open(s_path("ttl"), &o, &kv, g_err, sizeof g_err) == 0, "%s", g_err);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t times[] = {now - 3600000, now, now - 60000, now + 1000};
    for (int i = 0; i < 4; i++) {
        uint8_t v[10] = {7};
        for (int b = 0; b < 8; b++) /* little-endian */
            v[1 + b] = (uint8_t)((uint64_t)times[i] >> (8 * b));
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        ck_assert_int_eq(sl_kv_put(kv, 3, k, strlen(k), v, sizeof v), 0);
    }
    ck_assert_int_eq(sl_kv_put(kv, 3, "short", 5, "ab", 2), 0);
    ck_assert_int_eq(sl_kv_compact(kv), 0);
    const void *v;
    size_t vl;
    ck_assert_int_eq(sl_kv_get(kv, 3, "k0", 2, &v, &vl), SL_NOTFOUND); /* an hour old */
    ck_assert_int_eq(sl_kv_get(kv, 3, "k1", 2, &v, &vl), 0);
    ck_assert_int_eq(sl_kv_get(kv, 3, "k2", 2, &v, &vl), SL_NOTFOUND); /* exactly ttl old */
    ck_assert_int_eq(sl_kv_get(kv, 3, "k3", 2, &v, &vl), 0);
    ck_assert_int_eq(sl_kv_get(kv, 3, "short", 5, &v, &vl), 0);
    sl_kv_close(&kv);
    /* without a ttl nothing is dropped */
    ck_assert_int_eq(sl_kv_open(s_path("nottl"), NULL, &kv, g_err, sizeof g_err), 0);
    uint8_t old[9] = {0};
    ck_assert_int_eq(sl_kv_put(kv, 3, "k", 1, old, sizeof old), 0);
    ck_assert_int_eq(sl_kv_compact(kv), 0);
    ck_assert_int_eq(sl_kv_get(kv, 3, "k", 1, &v, &vl), 0);
    sl_kv_close(&kv);
}
END_TEST

/* Deterministic, incompressible value bytes for key i (n a multiple of 8). */
static void s_fill(uint8_t *v, size_t n, uint32_t i)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
    for (size_t j = 0; j + 8 <= n; j += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(v + j, &x, 8);
    }
}

START_TEST(test_state_larger_than_memory)
{
    enum { VLEN = 4096, NKEYS = 16384 }; /* 64 MB of values */
    sl_kv_t *kv = s_open("big", 1u << 20, 1u << 20);
    sl_kv_batch_t *b = sl_kv_batch_new();
    uint8_t *v = malloc(VLEN), *w = malloc(VLEN);
    for (uint32_t i = 0; i < NKEYS; i++) {
        uint32_t k = i * 2654435761u; /* keys arrive out of order */
        s_fill(v, VLEN, k);
        ck_assert_int_eq(sl_kv_batch_put(b, (uint16_t)(k % 128), &k, sizeof k, v, VLEN), 0);
        if (sl_kv_batch_count(b) == 64)
            ck_assert_int_eq(sl_kv_batch_commit(kv, b), 0);
    }
    ck_assert_int_eq(sl_kv_batch_commit(kv, b), 0);
    sl_kv_batch_destroy(&b);
    /* every value reads back (most from disk: the cache holds 1 MB) */
    for (uint32_t i = 0; i < NKEYS; i++) {
        uint32_t k = i * 2654435761u;
        const void *got;
        size_t n;
        ck_assert_int_eq(sl_kv_get(kv, (uint16_t)(k % 128), &k, sizeof k, &got, &n), 0);
        ck_assert_uint_eq(n, VLEN);
        s_fill(w, VLEN, k);
        ck_assert_msg(memcmp(got, w, VLEN) == 0, "value of key %u differs", k);
    }
    /* a full scan sees every key once, in key-group order */
    sl_kv_iter_t *it;
    ck_assert_int_eq(sl_kv_iter_new(kv, 0, SL_KV_MAX_KEY_GROUP, &it), 0);
    sl_kv_entry_t e;
    size_t count = 0;
    unsigned last_kg = 0;
    int rc;
    while ((rc = sl_kv_iter_next(it, &e)) == 1) {
        ck_assert_uint_ge(e.key_group, last_kg);
        last_kg = e.key_group;
        ck_assert_uint_eq(e.key_len, 4);
        uint32_t k;
        memcpy(&k, e.key, 4);
        ck_assert_uint_eq(k % 128, e.key_group);
        count++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(count, NKEYS);
    sl_kv_iter_destroy(&it);
    free(v);
    free(w);
    sl_kv_close(&kv);
}
END_TEST

/* Writes n keys "<tag>NNNN" with 1 KB values into key groups 0..15. */
static void s_write_some(sl_kv_t *kv, const char *tag, int n)
{
    char val[1024];
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s%04d", tag, i);
        memset(val, 'a' + i % 26, sizeof val);
        snprintf(val, 32, "%s", k);
        ck_assert_int_eq(sl_kv_put(kv, (uint16_t)(i % 16), k, strlen(k), val, sizeof val), 0);
    }
}

/* Asserts both stores hold exactly the same entries. */
static void s_assert_same(sl_kv_t *a, sl_kv_t *b)
{
    sl_kv_iter_t *ia, *ib;
    ck_assert_int_eq(sl_kv_iter_new(a, 0, SL_KV_MAX_KEY_GROUP, &ia), 0);
    ck_assert_int_eq(sl_kv_iter_new(b, 0, SL_KV_MAX_KEY_GROUP, &ib), 0);
    sl_kv_entry_t ea, eb;
    size_t n = 0;
    for (;;) {
        int ra = sl_kv_iter_next(ia, &ea), rb = sl_kv_iter_next(ib, &eb);
        ck_assert_int_eq(ra, rb);
        if (ra != 1)
            break;
        ck_assert_uint_eq(ea.key_group, eb.key_group);
        ck_assert_uint_eq(ea.key_len, eb.key_len);
        ck_assert(memcmp(ea.key, eb.key, ea.key_len) == 0);
        ck_assert_uint_eq(ea.val_len, eb.val_len);
        ck_assert(memcmp(ea.val, eb.val, ea.val_len) == 0);
        n++;
    }
    ck_assert_uint_gt(n, 0);
    sl_kv_iter_destroy(&ia);
    sl_kv_iter_destroy(&ib);
}

static size_t s_count_shared(const sl_kv_manifest_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->files[i].shared;
    return n;
}

static size_t s_count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int s_in(const sl_kv_manifest_t *m, const char *stored)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->files[i].shared && !strcmp(m->files[i].stored, stored))
            return 1;
    return 0;
}

/* Sorted writes: ingested as one SST, newer than the memtable's writes
 * they overlap, in order or refused; checkpointed and restored like any
 * other SST. */
START_TEST(test_sorted_write)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    s_put_str(kv, 3, "b", "old");  /* in the memtable */
    s_put_str(kv, 3, "z", "keep"); /* untouched by the sorted write */
    /* a put without begin, and keys out of order, are refused */
    ck_assert_int_eq(sl_kv_sorted_put(kv, 1, "a", 1, "v", 1), SL_INVAL);
    ck_assert_int_eq(sl_kv_sorted_begin(kv), 0);
    ck_assert_int_eq(sl_kv_sorted_put(kv, 3, "b", 1, "v", 1), 0);
    ck_assert_int_eq(sl_kv_sorted_put(kv, 3, "a", 1, "v", 1), SL_INVAL);
    ck_assert_ptr_nonnull(strstr(sl_kv_errmsg(kv), "sorted put"));
    ck_assert_int_eq(sl_kv_sorted_put(kv, 0xffff, "a", 1, "v", 1), SL_INVAL);
    sl_kv_sorted_abort(kv);
    s_expect(kv, 3, "b", "old"); /* nothing of the aborted write */
    struct stat sb;
    ck_assert_int_ne(stat(s_path("src/ingest.sst"), &sb), 0);
    /* a commit without puts writes nothing */
    ck_assert_int_eq(sl_kv_sorted_begin(kv), 0);
    ck_assert_int_eq(sl_kv_sorted_commit(kv), 0);
    ck_assert_str_eq(s_scan(kv, 0, 10), "3:b=old;3:z=keep;");
    /* (key group, key) order: a key before its extensions, the empty key
     * first */
    ck_assert_int_eq(sl_kv_sorted_begin(kv), 0);
    const char *keys[] = {"a", "", "b", "ba", "c"};
    const uint16_t kgs[] = {1, 3, 3, 3, 3};
    for (int i = 0; i < 5; i++) {
        char v[8];
        snprintf(v, sizeof v, "s%d", i);
        ck_assert_int_eq(sl_kv_sorted_put(kv, kgs[i], keys[i], strlen(keys[i]), v, strlen(v)), 0);
    }
    s_expect(kv, 1, "a", NULL); /* visible at commit */
    ck_assert_int_eq(sl_kv_sorted_commit(kv), 0);
    ck_assert_int_ne(stat(s_path("src/ingest.sst"), &sb), 0);
    ck_assert_str_eq(s_scan(kv, 0, 10), "1:a=s0;3:=s1;3:b=s2;3:ba=s3;3:c=s4;3:z=keep;");
    /* later writes win over the ingested ones */
    s_put_str(kv, 3, "ba", "later");
    s_expect(kv, 3, "ba", "later");

    /* checkpointed (the ingested file is a shared SST) and restored */
    sl_kv_manifest_t m;
    sl_kv_ckpt_stats_t st;
    int rc = sl_kv_checkpoint(kv, s_path("storage/chk-1"), s_path("storage/shared"), &m, &st, g_err,
                              sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint: %s", g_err);
    ck_assert_uint_ge(s_count_shared(&m), 2);
    ck_assert_int_eq(sl_kv_manifest_verify(&m, s_path("storage/chk-1"), s_path("storage/shared"),
                                           g_err, sizeof g_err),
                     0);
    sl_kv_t *r = NULL;
    rc = sl_kv_restore(&m, s_path("storage/chk-1"), s_path("storage/shared"), s_path("restored"),
                       NULL, &r, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "restore: %s", g_err);
    s_assert_same(kv, r);
    ck_assert_str_eq(s_scan(r, 0, 10), "1:a=s0;3:=s1;3:b=s2;3:ba=later;3:c=s4;3:z=keep;");
    /* a restored store takes sorted writes too */
    ck_assert_int_eq(sl_kv_sorted_begin(r), 0);
    ck_assert_int_eq(sl_kv_sorted_put(r, 3, "b", 1, "r", 1), 0);
    ck_assert_int_eq(sl_kv_sorted_commit(r), 0);
    s_expect(r, 3, "b", "r");
    s_expect(kv, 3, "b", "s2");
    sl_kv_manifest_free(&m);
    sl_kv_close(&r);
    /* closing with a sorted write open drops it */
    ck_assert_int_eq(sl_kv_sorted_begin(kv), 0);
    ck_assert_int_eq(sl_kv_sorted_put(kv, 9, "x", 1, "y", 1), 0);
    sl_kv_close(&kv);
    ck_assert_int_ne(stat(s_path("src/ingest.sst"), &sb), 0);
}
END_TEST

START_TEST(test_checkpoint_restore_incremental)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    char shared[1024];
    snprintf(shared, sizeof shared, "%s", s_path("storage/shared"));
    s_write_some(kv, "a", 500);
    sl_kv_manifest_t m1, m2, m3;
    sl_kv_ckpt_stats_t st;
    int rc = sl_kv_checkpoint(kv, s_path("storage/chk-1"), shared, &m1, &st, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint: %s", g_err);
    ck_assert_uint_eq(s_count_shared(&m1), 1); /* one flush, one SST */
    ck_assert_uint_eq(st.shared_copied, 1);
    ck_assert_uint_eq(st.shared_reused, 0);
    ck_assert_uint_eq(st.files, m1.n);
    ck_assert_uint_eq(st.files_copied, m1.n);
    uint64_t total = 0;
    for (size_t i = 0; i < m1.n; i++)
        total += m1.files[i].size;
    ck_assert_uint_eq(st.bytes, total);
    ck_assert_uint_eq(st.bytes_copied, total);
    int has_current = 0;
    for (size_t i = 0; i < m1.n; i++)
        has_current |= !strcmp(m1.files[i].name, "CURRENT") && !m1.files[i].shared;
    ck_assert(has_current);
    /* the temp checkpoint is gone */
    struct stat sb;
    ck_assert_int_ne(stat(s_path("src/ckpt-tmp"), &sb), 0);

    /* more writes: the second checkpoint copies only the new SST */
    s_write_some(kv, "b", 300);
    rc = sl_kv_checkpoint(kv, s_path("storage/chk-2"), shared, &m2, &st, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint 2: %s", g_err);
    ck_assert_uint_eq(s_count_shared(&m2), 2);
    ck_assert_uint_eq(st.shared_copied, 1);
    ck_assert_uint_eq(st.shared_reused, 1);
    ck_assert_uint_eq(s_count_dir(shared), 2);
    for (size_t i = 0; i < m1.n; i++)
        if (m1.files[i].shared)
            ck_assert(s_in(&m2, m1.files[i].stored));
    /* a checkpoint without writes copies no SST at all */
    sl_kv_manifest_t m2b;
    rc = sl_kv_checkpoint(kv, s_path("storage/chk-2b"), shared, &m2b, &st, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint 2b: %s", g_err);
    ck_assert_uint_eq(st.shared_copied, 0);
    ck_assert_uint_eq(st.shared_reused, 2);
    sl_kv_manifest_free(&m2b);

    /* the manifest survives encoding */
    uint8_t *enc;
    size_t enc_len;
    ck_assert_int_eq(sl_kv_manifest_encode(&m2, &enc, &enc_len), 0);
    sl_kv_manifest_t d;
    ck_assert_int_eq(sl_kv_manifest_decode(enc, enc_len, &d, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(d.n, m2.n);
    for (size_t i = 0; i < d.n; i++) {
        ck_assert_str_eq(d.files[i].name, m2.files[i].name);
        ck_assert_str_eq(d.files[i].stored, m2.files[i].stored);
        ck_assert_uint_eq(d.files[i].size, m2.files[i].size);
        ck_assert_int_eq(d.files[i].shared, m2.files[i].shared);
        ck_assert(memcmp(d.files[i].sha256, m2.files[i].sha256, 32) == 0);
    }
    free(enc);

    /* restore from the decoded manifest: identical contents */
    sl_kv_t *r = NULL;
    rc = sl_kv_restore(&d, s_path("storage/chk-2"), shared, s_path("restored"), NULL, &r, g_err,
                       sizeof g_err);
    ck_assert_msg(rc == 0, "restore: %s", g_err);
    sl_kv_manifest_free(&d);
    s_assert_same(kv, r);
    const void *v;
    size_t vn;
    ck_assert_int_eq(sl_kv_get(r, 4, "b0004", 5, &v, &vn), 0);
    ck_assert_uint_eq(vn, 1024);
    ck_assert(memcmp(v, "b0004", 5) == 0);

    /* a restored store lives on independently */
    s_put_str(r, 1, "only-in-restored", "x");
    s_expect(kv, 1, "only-in-restored", NULL);
    /* restoring over an existing store is refused */
    sl_kv_t *r2 = NULL;
    ck_assert_int_eq(sl_kv_restore(&m2, s_path("storage/chk-2"), shared, s_path("restored"), NULL,
                                   &r2, g_err, sizeof g_err),
                     SL_EXISTS);
    ck_assert_ptr_null(r2);

    /* the restored store's checkpoint references the SSTs it came from */
    rc = sl_kv_checkpoint(r, s_path("storage/chk-3"), shared, &m3, &st, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint 3: %s", g_err);
    ck_assert_uint_eq(st.shared_reused, 2);
    ck_assert_uint_eq(st.shared_copied, 1);
    ck_assert_uint_eq(s_count_dir(shared), 3);

    sl_kv_manifest_free(&m1);
    sl_kv_manifest_free(&m2);
    sl_kv_manifest_free(&m3);
    sl_kv_close(&r);
    sl_kv_close(&kv);
}
END_TEST

/* Takes one checkpoint of a small store into storage/chk-1 and shared/. */
static void s_one_checkpoint(sl_kv_manifest_t *m)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    s_write_some(kv, "a", 200);
    int rc = sl_kv_checkpoint(kv, s_path("storage/chk-1"), s_path("storage/shared"), m, NULL, g_err,
                              sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint: %s", g_err);
    sl_kv_close(&kv);
}

static const sl_kv_file_t *s_first(const sl_kv_manifest_t *m, int shared)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->files[i].shared == shared && (shared || !strncmp(m->files[i].name, "MANIFEST", 8)))
            return &m->files[i];
    ck_abort_msg("no such file in the manifest");
    return NULL;
}

/* Restore must fail with SL_DATA naming stored, and leave no store behind. */
static void s_restore_fails(const sl_kv_manifest_t *m, const char *stored)
{
    sl_kv_t *r = NULL;
    g_err[0] = 0;
    int rc = sl_kv_restore(m, s_path("storage/chk-1"), s_path("storage/shared"), s_path("dst"),
                           NULL, &r, g_err, sizeof g_err);
    ck_assert_int_eq(rc, SL_DATA);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(g_err, stored) != NULL, "error '%s' does not name %s", g_err, stored);
    struct stat sb;
    ck_assert_int_ne(stat(s_path("dst/db"), &sb), 0);
}

static void s_copy_file(const char *from, const char *to)
{
    size_t n;
    char *data = sl_test_read_file(from, &n);
    ck_assert_ptr_nonnull(data);
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    free(data);
}

START_TEST(test_restore_detects_damage)
{
    sl_kv_manifest_t m;
    s_one_checkpoint(&m);
    const sl_kv_file_t *sst = s_first(&m, 1), *man = s_first(&m, 0);
    char path[1024], keep[1024], mpath[1024];
    snprintf(path, sizeof path, "%s/%s", s_path("storage/shared"), sst->stored);
    snprintf(keep, sizeof keep, "%s/keep", g_dir);
    snprintf(mpath, sizeof mpath, "%s/%s", s_path("storage/chk-1"), man->stored);
    s_copy_file(path, keep);

    /* a flipped byte in the middle of the SST */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, (long)(sst->size / 2), SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)(sst->size / 2), SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    s_restore_fails(&m, sst->stored);
    ck_assert(strstr(g_err, "corrupt") != NULL);

    /* truncated */
    s_copy_file(keep, path);
    ck_assert_int_eq(truncate(path, (off_t)(sst->size - 100)), 0);
    s_restore_fails(&m, sst->stored);
    ck_assert(strstr(g_err, "bytes") != NULL);

    /* missing */
    ck_assert_int_eq(unlink(path), 0);
    s_restore_fails(&m, sst->stored);
    ck_assert(strstr(g_err, "missing") != NULL);

    /* a damaged private file (MANIFEST-*) is caught the same way */
    s_copy_file(keep, path);
    f = fopen(mpath, "ab");
    ck_assert_ptr_nonnull(f);
    fputc('x', f);
    fclose(f);
    s_restore_fails(&m, man->stored);

    /* a manifest without CURRENT is refused before anything is copied */
    sl_kv_manifest_t empty = {0};
    sl_kv_t *r = NULL;
    ck_assert_int_eq(sl_kv_restore(&empty, s_path("storage/chk-1"), s_path("storage/shared"),
                                   s_path("dst"), NULL, &r, g_err, sizeof g_err),
                     SL_DATA);
    sl_kv_manifest_free(&m);
}
END_TEST

/* Replaces path by a copy of itself (a new inode: the hard links of the
 * live store keep the original) that fn damages. */
static void s_damage_copy(const char *path, void (*fn)(const char *))
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.x", path);
    s_copy_file(path, tmp);
    fn(tmp);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void s_flip_middle(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, (long)(sb.st_size / 2), SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)(sb.st_size / 2), SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void s_truncate_some(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size - 10), 0);
}

/* sl_kv_restore_local into dst must fail with rc, say why (want) and name
 * the file (name, or NULL), and leave no store; a restore from storage
 * (checkpoint chk) into the same directory then works. */
static void s_local_fails(const sl_kv_manifest_t *m, const char *chk, const char *copy,
                          const char *dst, int rc, const char *want, const char *name)
{
    sl_kv_t *r = NULL;
    g_err[0] = 0;
    ck_assert_int_eq(sl_kv_restore_local(m, copy, s_path(dst), NULL, &r, g_err, sizeof g_err), rc);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(g_err, want) != NULL, "error '%s' does not say %s", g_err, want);
    if (name)
        ck_assert_msg(strstr(g_err, name) != NULL, "error '%s' does not name %s", g_err, name);
    char db[1100];
    snprintf(db, sizeof db, "%s/db", s_path(dst));
    struct stat sb;
    ck_assert_int_ne(stat(db, &sb), 0);
    char storage[1100];
    snprintf(storage, sizeof storage, "storage/%s", chk);
    int frc = sl_kv_restore(m, s_path(storage), s_path("storage/shared"), s_path(dst), NULL, &r,
                            g_err, sizeof g_err);
    ck_assert_msg(frc == 0, "fallback restore: %s", g_err);
    sl_kv_close(&r);
}

START_TEST(test_local_copy_restore)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    char shared[1024], keep1[1024], keep2[1024];
    snprintf(shared, sizeof shared, "%s", s_path("storage/shared"));
    snprintf(keep1, sizeof keep1, "%s", s_path("local/chk-1/kv-3-0"));
    snprintf(keep2, sizeof keep2, "%s", s_path("local/chk-2/kv-3-0"));
    s_write_some(kv, "a", 500);
    sl_kv_manifest_t m1, m2, m3;
    sl_kv_ckpt_stats_t st;
    int rc = sl_kv_checkpoint_keep(kv, s_path("storage/chk-1"), shared, keep1, &m1, &st, g_err,
                                   sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint: %s", g_err);
    ck_assert(st.local_kept);
    /* the local copy holds every file of the manifest, the temp dir is gone */
    ck_assert_uint_eq(s_count_dir(keep1), m1.n);
    struct stat sb;
    ck_assert_int_ne(stat(s_path("src/ckpt-tmp"), &sb), 0);
    /* a stale directory in the way is replaced */
    ck_assert_int_eq(mkdir(s_path("local/chk-2"), 0755), 0);
    ck_assert_int_eq(mkdir(keep2, 0755), 0);
    char junk[1100];
    snprintf(junk, sizeof junk, "%s/junk", keep2);
    s_copy_file(s_path("src/STORE-ID"), junk);
    s_write_some(kv, "b", 300);
    rc = sl_kv_checkpoint_keep(kv, s_path("storage/chk-2"), shared, keep2, &m2, &st, g_err,
                               sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint 2: %s", g_err);
    ck_assert(st.local_kept);
    ck_assert_uint_eq(st.shared_reused, 1); /* still incremental in storage */
    ck_assert_uint_eq(s_count_dir(keep2), m2.n);
    ck_assert_int_ne(stat(junk, &sb), 0);

    /* restored from the local copy: the same contents, the SSTs hard links */
    sl_kv_t *r = NULL;
    rc = sl_kv_restore_local(&m2, keep2, s_path("r1"), NULL, &r, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "local restore: %s", g_err);
    s_assert_same(kv, r);
    const sl_kv_file_t *sst = s_first(&m2, 1);
    char linked[1100];
    snprintf(linked, sizeof linked, "%s/%s", s_path("r1/db"), sst->name);
    ck_assert_int_eq(stat(linked, &sb), 0);
    ck_assert_uint_ge(sb.st_nlink, 3); /* the live store, the local copy, the restored one */
    /* it lives on and checkpoints incrementally, referencing chk-2's SSTs */
    s_put_str(r, 1, "only-in-restored", "x");
    s_expect(kv, 1, "only-in-restored", NULL);
    rc = sl_kv_checkpoint(r, s_path("storage/chk-3"), shared, &m3, &st, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint 3: %s", g_err);
    ck_assert_uint_eq(st.shared_reused, 2);
    sl_kv_close(&r);
    sl_kv_close(&kv);
    /* the copy is untouched by the store that was built from it */
    rc = sl_kv_restore_local(&m2, keep2, s_path("r1b"), NULL, &r, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "second local restore: %s", g_err);
    sl_kv_close(&r);

    /* never a copy that does not match the manifest */
    char path[1100];
    s_local_fails(&m2, "chk-2", s_path("local/chk-9/kv-3-0"), "r2", SL_NOTFOUND, "no local copy",
                  NULL);
    /* the copy of another checkpoint (chk-1 for chk-2's manifest) */
    s_local_fails(&m2, "chk-2", keep1, "r3", SL_DATA, "local copy", NULL);
    snprintf(path, sizeof path, "%s/%s", keep2, sst->name);
    s_damage_copy(path, s_flip_middle);
    s_local_fails(&m2, "chk-2", keep2, "r4", SL_DATA, "is corrupt", sst->name);
    s_damage_copy(path, s_truncate_some);
    s_local_fails(&m2, "chk-2", keep2, "r5", SL_DATA, "bytes, the manifest says", sst->name);
    ck_assert_int_eq(unlink(path), 0);
    s_local_fails(&m2, "chk-2", keep2, "r6", SL_DATA, "is missing", sst->name);
    const sl_kv_file_t *man = s_first(&m2, 0);
    snprintf(path, sizeof path, "%s/%s", keep1, man->name);
    ck_assert_int_eq(unlink(path), 0);
    s_local_fails(&m1, "chk-1", keep1, "r7", SL_DATA, "is missing", man->name);

    sl_kv_manifest_free(&m1);
    sl_kv_manifest_free(&m2);
    sl_kv_manifest_free(&m3);
}
END_TEST

START_TEST(test_manifest_decode_rejects_garbage)
{
    sl_kv_manifest_t m;
    s_one_checkpoint(&m);
    uint8_t *enc;
    size_t n;
    ck_assert_int_eq(sl_kv_manifest_encode(&m, &enc, &n), 0);
    sl_kv_manifest_t d;
    /* every truncation and every single-bit flip is caught */
    for (size_t len = 0; len < n; len++)
        ck_assert_int_eq(sl_kv_manifest_decode(enc, len, &d, g_err, sizeof g_err), SL_DATA);
    for (size_t i = 0; i < n; i++) {
        enc[i] ^= 1;
        ck_assert_int_eq(sl_kv_manifest_decode(enc, n, &d, g_err, sizeof g_err), SL_DATA);
        enc[i] ^= 1;
    }
    ck_assert_int_eq(sl_kv_manifest_decode(enc, n, &d, g_err, sizeof g_err), 0);
    sl_kv_manifest_free(&d);
    free(enc);
    /* a well-formed manifest with a path-escaping name is refused */
    char *saved = m.files[0].stored;
    m.files[0].stored = (char *)"../../etc/passwd";
    ck_assert_int_eq(sl_kv_manifest_encode(&m, &enc, &n), 0);
    m.files[0].stored = saved;
    ck_assert_int_eq(sl_kv_manifest_decode(enc, n, &d, g_err, sizeof g_err), SL_DATA);
    ck_assert(strstr(g_err, "unsafe") != NULL);
    free(enc);
    sl_kv_manifest_free(&m);
}
END_TEST

static int s_listed(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

START_TEST(test_gc_lists_unreferenced)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    char shared[1024];
    snprintf(shared, sizeof shared, "%s", s_path("storage/shared"));
    sl_kv_manifest_t m1, m2, m3;
    s_write_some(kv, "a", 200);
    ck_assert_int_eq(
        sl_kv_checkpoint(kv, s_path("storage/chk-1"), shared, &m1, NULL, g_err, sizeof g_err), 0);
    s_write_some(kv, "b", 200);
    ck_assert_int_eq(
        sl_kv_checkpoint(kv, s_path("storage/chk-2"), shared, &m2, NULL, g_err, sizeof g_err), 0);
    /* compaction rewrites both SSTs into a new one */
    ck_assert_int_eq(sl_kv_compact(kv), 0);
    ck_assert_int_eq(
        sl_kv_checkpoint(kv, s_path("storage/chk-3"), shared, &m3, NULL, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(s_count_shared(&m3), 1);
    ck_assert(!s_in(&m2, s_first(&m3, 1)->stored));
    sl_test_write_file(s_path("storage/shared/leftover.sst.tmp"), "partial");

    char **names;
    size_t n;
    /* all three retained: only the leftover temp file */
    const sl_kv_manifest_t *all[] = {&m1, &m2, &m3};
    ck_assert_int_eq(sl_kv_gc_list(shared, all, 3, &names, &n, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(names[0], "leftover.sst.tmp");
    sl_kv_names_free(names, n);
    /* chk-1 dropped: its SST is still in chk-2 */
    const sl_kv_manifest_t *two[] = {&m2, &m3};
    ck_assert_int_eq(sl_kv_gc_list(shared, two, 2, &names, &n, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(n, 1);
    sl_kv_names_free(names, n);
    /* only chk-3 retained: both older SSTs and the temp file */
    const sl_kv_manifest_t *last[] = {&m3};
    ck_assert_int_eq(sl_kv_gc_list(shared, last, 1, &names, &n, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < m2.n; i++)
        if (m2.files[i].shared)
            ck_assert(s_listed(names, n, m2.files[i].stored));
    ck_assert(s_listed(names, n, "leftover.sst.tmp"));
    for (size_t i = 0; i < n; i++)
        ck_assert(!s_in(&m3, names[i]));
    /* deleting them leaves chk-3 restorable */
    for (size_t i = 0; i < n; i++) {
        char p[2100];
        snprintf(p, sizeof p, "%s/%s", shared, names[i]);
        ck_assert_int_eq(unlink(p), 0);
    }
    sl_kv_names_free(names, n);
    sl_kv_t *r = NULL;
    int rc = sl_kv_restore(&m3, s_path("storage/chk-3"), shared, s_path("restored"), NULL, &r,
                           g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "restore: %s", g_err);
    s_assert_same(kv, r);
    sl_kv_close(&r);
    /* nothing retained: everything is garbage */
    ck_assert_int_eq(sl_kv_gc_list(shared, NULL, 0, &names, &n, g_err, sizeof g_err), 0);
    ck_assert_uint_eq(n, 1);
    sl_kv_names_free(names, n);
    sl_kv_manifest_free(&m1);
    sl_kv_manifest_free(&m2);
    sl_kv_manifest_free(&m3);
    sl_kv_close(&kv);
}
END_TEST

/* Checkpoint directories as the master sees them (kvckpt.c): a store of
 * chk-1 checks out until an SST is damaged or missing; GC deletes only
 * shared files no retained checkpoint names; a savepoint copy is
 * self-contained and checks out on its own. */
START_TEST(test_ckpt_dirs)
{
    sl_kv_t *kv = s_open("src", 0, 0);
    s_write_some(kv, "a", 200);
    sl_kv_manifest_t m;
    const char *store = s_path("job/chk-1/kv-3-0");
    int rc = sl_kv_checkpoint(kv, store, s_path("job/shared"), &m, NULL, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "checkpoint: %s", g_err);
    sl_kv_close(&kv);
    uint8_t *enc;
    size_t len;
    ck_assert_int_eq(sl_kv_manifest_encode(&m, &enc, &len), 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", store, SL_KV_MANIFEST_FILE);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(enc, 1, len, f), len);
    fclose(f);
    free(enc);
    char shared[1200];
    sl_kv_shared_of(s_path("job/chk-1"), shared, sizeof shared);
    ck_assert_str_eq(shared, s_path("job/chk-1/../shared"));
    ck_assert_msg(sl_kv_ckpt_verify(s_path("job/chk-1"), g_err, sizeof g_err) == 0, "%s", g_err);
    ck_assert_int_eq(sl_kv_ckpt_verify(s_path("job/empty-dir-missing"), g_err, sizeof g_err),
                     SL_IO);

    /* a savepoint: its own copy of the store and of the shared files */
    ck_assert_int_eq(mkdir(s_path("sp"), 0755), 0);
    ck_assert_msg(sl_kv_ckpt_copy(s_path("job/chk-1"), s_path("sp"), g_err, sizeof g_err) == 0,
                  "%s", g_err);
    sl_kv_shared_of(s_path("sp"), shared, sizeof shared);
    ck_assert_str_eq(shared, s_path("sp/shared"));
    ck_assert_uint_eq(s_count_dir(s_path("sp/shared")), s_count_shared(&m));

    /* GC: a stray file goes, the referenced ones stay */
    s_copy_file(path, s_path("job/shared/stray.sst"));
    const char *dirs[] = {s_path("job/chk-1")};
    size_t removed = 0;
    ck_assert_int_eq(sl_kv_ckpt_gc(s_path("job/shared"), dirs, 1, &removed, g_err, sizeof g_err),
                     0);
    ck_assert_uint_eq(removed, 1);
    ck_assert_uint_eq(s_count_dir(s_path("job/shared")), s_count_shared(&m));
    /* an unreadable manifest: nothing is deleted */
    snprintf(path, sizeof path, "%s/%s", s_path("job/chk-2/kv-3-0"), SL_KV_MANIFEST_FILE);
    ck_assert_int_eq(mkdir(s_path("job/chk-2"), 0755), 0);
    ck_assert_int_eq(mkdir(s_path("job/chk-2/kv-3-0"), 0755), 0);
    sl_test_write_file(path, "garbage");
    const char *dirs2[] = {s_path("job/chk-2")};
    ck_assert_int_eq(sl_kv_ckpt_gc(s_path("job/shared"), dirs2, 1, &removed, g_err, sizeof g_err),
                     SL_DATA);
    ck_assert_uint_eq(s_count_dir(s_path("job/shared")), s_count_shared(&m));

    /* damage: a flipped byte, then a missing file */
    const sl_kv_file_t *sst = s_first(&m, 1);
    snprintf(path, sizeof path, "%s/%s", s_path("job/shared"), sst->stored);
    FILE *g = fopen(path, "r+b");
    ck_assert_ptr_nonnull(g);
    int c = fgetc(g);
    fseek(g, 0, SEEK_SET);
    fputc(c ^ 0x5a, g);
    fclose(g);
    ck_assert_int_eq(sl_kv_ckpt_verify(s_path("job/chk-1"), g_err, sizeof g_err), SL_DATA);
    ck_assert_msg(strstr(g_err, sst->stored) && strstr(g_err, "corrupt"), "%s", g_err);
    ck_assert_msg(sl_kv_ckpt_verify(s_path("sp"), g_err, sizeof g_err) == 0, "%s", g_err);
    unlink(path);
    ck_assert_int_eq(sl_kv_ckpt_verify(s_path("job/chk-1"), g_err, sizeof g_err), SL_DATA);
    ck_assert_msg(strstr(g_err, "missing"), "%s", g_err);
    sl_kv_manifest_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvstate");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_point_ops_and_iteration);
    tcase_add_test(tc, test_multi_get);
    tcase_add_test(tc, test_cursor_reseek);
    tcase_add_test(tc, test_delete_range);
    tcase_add_test(tc, test_ttl_compaction);
    tcase_add_test(tc, test_state_larger_than_memory);
    tcase_add_test(tc, test_checkpoint_restore_incremental);
    tcase_add_test(tc, test_sorted_write);
    tcase_add_test(tc, test_restore_detects_damage);
    tcase_add_test(tc, test_local_copy_restore);
    tcase_add_test(tc, test_manifest_decode_rejects_garbage);
    tcase_add_test(tc, test_gc_lists_unreferenced);
    tcase_add_test(tc, test_ckpt_dirs);
    suite_add_tcase(s, tc);
    return sl_test_run(s);
}
