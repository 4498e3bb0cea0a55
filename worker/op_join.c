/* op_join.c — two-input joins by key over event time: window, interval and
 * enrich (stream-table) joins (docs/job-spec.md, `join`).
 *
 * Input 0 is the left side (the stream of an enrich join), input 1 the
 * right (the table changelog). Both edges are hash-partitioned by their
 * key fields, so records with equal keys meet in one subtask.
 *
 * State: a chained hash table from the encoded key (a row of the key
 * fields, encoded with the left key types; the plan requires the right
 * key types to be equal) to the key's rows. Rows are kept as owned copies
 * packed back to back in per-key buffers (s_rows_t: amortised growth, no
 * malloc per record). A min-heap of timers says when a key needs work:
 *   - window: a window [start, end) of the key fires when the watermark
 *     reaches end - 1: every (left, right) pair of it is emitted, then it
 *     is dropped;
 *   - interval: a left row l is kept until the watermark reaches
 *     l.ts + upper, a right row r until it reaches r.ts - lower (after
 *     that no future partner can arrive); pairs are emitted as soon as
 *     their second row arrives;
 *   - enrich: stream rows wait until the watermark reaches their time t,
 *     then meet the latest table version with ts <= t (table versions
 *     are kept sorted by time; of those at or behind the watermark only
 *     the latest is kept).
 * Timers are never removed: a popped timer of a key sweeps the key at the
 * current watermark (at most once per watermark), so stale or repeated
 * timers cost a lookup. An interval join's key counts one timer, at the
 * earliest expiry of its rows (moved earlier by a row that expires
 * sooner, re-armed by each sweep), not one per row.
 *
 * Determinism: the set of output rows depends on the records only, never
 * on their arrival order or batching, as long as no record is late. Late
 * records are counted in records_late and dropped: a window-join record
 * whose every window has fired; an interval-join or enrich stream record
 * at or behind the watermark (a partner may already be gone, and joining
 * it with only some partners would depend on timing). A late table row of
 * an enrich join is counted and still applied (it can only affect stream
 * records still to come, which it must). Rows with a null key join
 * nothing (an enrich stream row with on_missing: emit_nulls is emitted at
 * once with null table fields); rows with a null time are counted as
 * errors and skipped.
 *
 * Checkpoints: the snapshot is the event-time clock (the watermark) and
 * every key (its key group first, then its values) with its rows: a window
 * join's open windows (start, left rows, right rows), an interval join's
 * kept rows, an enrich join's pending stream rows and table versions.
 * Restore keeps the keys whose key group this subtask owns (a snapshot of
 * any parallelism restores into any other) and rebuilds their timers from
 * the rows (a window fires at end - 1, an interval row expires at
 * l.ts + upper or r.ts - lower, a pending stream row is due at its time);
 * the restored clock is a floor of the watermark until the input's passes
 * it, so a record that was late before the checkpoint is late after it.
 *
 * With `state: {backend: rocksdb}` the rows and timers live in the
 * subtask's RocksDB store instead (layout: "the rocksdb backend" below):
 * a record reads only its key's partners in its time range (interval),
 * nothing (window, enrich); a watermark reads the due timers of the key
 * groups it reached and the rows of each due key. Memory holds the
 * earliest timer per key group and scratch for one key's window or table
 * versions. A snapshot is the clock, the row sequence and the store's
 * incremental checkpoint (rocks_state.h; a rescale restores the owned
 * key groups of every old subtask's store); a heap snapshot restores into
 * a rocksdb job (its keys move into the store), not the other way. The
 * output is the heap backend's (the same rows; within a key the pairs of
 * one window come out in the same order). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "rocks_state.h"
#include "sluice/err.h"

/* Rows packed back to back (each starts with its u32 length). */
typedef struct {
    uint8_t *buf; /* owned */
    uint32_t len; /* bytes used */
    uint32_t cap; /* bytes allocated */
    int n;        /* rows */
} s_rows_t;

/* One open window of a key (window join). */
typedef struct {
    int64_t start;    /* the window is [start, start + size) */
    s_rows_t side[2]; /* its left and right rows */
} s_jwin_t;

typedef struct {
    uint64_t hash; /* sl_value_hash of the key values */
    uint8_t *key;  /* owned encoded key row */
    uint32_t klen;
    int next;         /* hash chain (index into keys), -1 ends */
    bool used;        /* slot holds a key */
    uint64_t swept;   /* watermark generation of the last sweep */
    bool armed;       /* interval: the heap holds the key's timer at `due` */
    int64_t due;      /* interval: the earliest expiry of its rows (when armed) */
    s_rows_t side[2]; /* interval: kept left / right rows; enrich: pending
                         stream rows / table versions (sorted by time) */
    s_jwin_t *wins;   /* window join: open windows */
    int nwins, capwins;
    int64_t ival; /* ikey: the key's value (compared instead of the bytes) */
} s_key_t;

typedef struct {
    int64_t time;  /* due when the watermark reaches it */
    int64_t start; /* window join: the window's start */
    int key;       /* index into keys */
} s_timer_t;

typedef struct {
    const sl_schema_t *sch[2]; /* input schemas: left, right */
    int tf[2];                 /* event-time field of each input schema */
    int64_t tadj[2];           /* added to it for the event time (join.ltime_adj, rtime_adj) */
    sl_schema_t *kschema;      /* the key fields (left types) */
    s_key_t *keys;
    int nkeys, capkeys;
    int *free_keys; /* unused key slots */
    int nfree;
    int *buckets; /* heads of hash chains */
    uint32_t nbuckets;
    int live; /* used keys */
    s_timer_t *heap;
    size_t nheap, capheap;
    uint64_t gen;         /* watermark generation (bumped per watermark call) */
    int64_t wm_floor;     /* restored watermark: the clock is at least this */
    bool restored;        /* restore ran (wm_floor is set) */
    sl_value_t *vals[2];  /* scratch: a decoded left / right row */
    sl_value_t *ovals;    /* scratch: an output row */
    sl_value_t *kvals;    /* scratch: key values */
    bool rocks;           /* the rocksdb backend: rows and timers live in the store */
    sl_opctx_t *c;        /* the operator (for the store's errors) */
    sl_kv_t *kv;          /* rocksdb: the store, once opened or restored */
    sl_kv_batch_t *batch; /* rocksdb: the writes of a commit, in key order */
    uint8_t *pbuf;        /* rocksdb: writes not committed yet, as they came (per write:
                             u16 key group, u32 key length, u32 value length or
                             S_DELETE, key, value) */
    size_t plen, pcap;
    size_t np;            /* rocksdb: writes in pbuf */
    const uint8_t **pops; /* rocksdb scratch: pointers to them, to sort */
    size_t pocap;
    sl_kv_cursor_t *cur;   /* rocksdb: reads the store as of the last commit (made at
                              the first read after it) */
    uint8_t *pend;         /* rocksdb: bit set of the key hashes of the interval rows in
                              the batch (a read of such a key commits first) */
    uint64_t seq;          /* rocksdb: sequence number of the next stored row */
    int64_t *due;          /* rocksdb: per key group, its earliest timer in the store
                              (INT64_MAX: none, SL_WM_MIN: not known after a restore) */
    int kg_first, kg_last; /* rocksdb: the key groups this subtask owns */
    uint8_t *sk;           /* rocksdb scratch: store keys */
    size_t skcap;
    s_rows_t tmp[2]; /* rocksdb scratch: a window's rows; a key's table versions */
    uint8_t *dbuf;   /* rocksdb scratch: the due timers of a key group (u32 len, bytes) */
    size_t dlen, dcap;
    const uint8_t **dptr; /* rocksdb scratch: pointers to them (sorted) */
    size_t dptrcap;
    bool ikey;         /* heap backend, one int64 / timestamp key: keys compare by value */
    uint8_t ikbuf[16]; /* ikey: the encoded key of the record at hand */
} s_join_t;

/* ---- row buffers ------------------------------------------------------------- */

static int s_rows_reserve(s_rows_t *r, uint32_t more)
{
    if (r->len + more <= r->cap)
        return SL_OK;
    uint64_t cap = r->cap ? r->cap : 256;
    while (cap < (uint64_t)r->len + more)
        cap *= 2;
    if (cap > UINT32_MAX)
        return SL_LIMIT;
    uint8_t *b = realloc(r->buf, (size_t)cap);
    if (!b)
        return SL_NOMEM;
    r->buf = b;
    r->cap = (uint32_t)cap;
    return SL_OK;
}

static int s_rows_add(s_rows_t *r, const uint8_t *row)
{
    uint32_t len = sl_row_len(row);
    int rc = s_rows_reserve(r, len);
    if (rc)
        return rc;
    memcpy(r->buf + r->len, row, len);
    r->len += len;
    r->n++;
    return SL_OK;
}

static void s_rows_free(s_rows_t *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Frees every key slot's windows, rows and key bytes (the slots stay, to
 * be reset or freed by the caller). */
static void s_keys_free(s_join_t *st)
{
    for (int k = 0; k < st->nkeys; k++) {
        s_key_t *e = &st->keys[k];
        for (int i = 0; i < e->nwins; i++) {
            s_rows_free(&e->wins[i].side[0]);
            s_rows_free(&e->wins[i].side[1]);
        }
        free(e->wins);
        free(e->key);
        s_rows_free(&e->side[0]);
        s_rows_free(&e->side[1]);
    }
}

/* The event time of a row of side s (its time field, adjusted as the
 * side's producer says); false when null. */
static bool s_time(const s_join_t *st, int s, const uint8_t *row, int64_t *t)
{
    sl_value_t v;
    sl_row_get(st->sch[s], row, st->tf[s], &v);
    *t = sl_time_adjusted(v.u.i, st->tadj[s]);
    return !v.is_null;
}

/* Keeps, in order, the rows of r whose time + off is above limit; returns
 * the least time + off kept (INT64_MAX: none). */
static int64_t s_rows_filter(const s_join_t *st, int s, s_rows_t *r, int64_t limit, int64_t off)
{
    uint32_t w = 0;
    int n = 0;
    int64_t next = INT64_MAX;
    for (uint32_t o = 0; o < r->len;) {
        uint32_t len = sl_row_len(r->buf + o);
        int64_t t = 0;
        s_time(st, s, r->buf + o, &t);
        if (t + off > limit) { /* still needed */
            if (w != o)
                memmove(r->buf + w, r->buf + o, len);
            w += len;
            n++;
            if (t + off < next)
                next = t + off;
        }
        o += len;
    }
    r->len = w;
    r->n = n;
    return next;
}

/* ---- keys and timers ----------------------------------------------------------- */

static int s_heap_push(s_join_t *st, s_timer_t tm)
{
    if (st->nheap == st->capheap) {
        size_t cap = st->capheap ? st->capheap * 2 : 256;
        s_timer_t *h = realloc(st->heap, cap * sizeof *h);
        if (!h)
            return SL_NOMEM;
        st->heap = h;
        st->capheap = cap;
    }
    size_t i = st->nheap++;
    while (i > 0 && st->heap[(i - 1) / 2].time > tm.time) {
        st->heap[i] = st->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    st->heap[i] = tm;
    return SL_OK;
}

static s_timer_t s_heap_pop(s_join_t *st)
{
    s_timer_t top = st->heap[0], v = st->heap[--st->nheap];
    size_t i = 0, n = st->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const s_timer_t *best = &v;
        if (l < n && st->heap[l].time < best->time) {
            m = l;
            best = &st->heap[l];
        }
        if (r < n && st->heap[r].time < best->time)
            m = r;
        if (m == i)
            break;
        st->heap[i] = st->heap[m];
        i = m;
    }
    if (n)
        st->heap[i] = v;
    return top;
}

static int s_rehash(s_join_t *st, uint32_t nb)
{
    int *b = malloc(nb * sizeof *b);
    if (!b)
        return SL_NOMEM;
    for (uint32_t i = 0; i < nb; i++)
        b[i] = -1;
    for (int k = 0; k < st->nkeys; k++)
        if (st->keys[k].used) {
            uint32_t s = (uint32_t)(st->keys[k].hash & (nb - 1));
            st->keys[k].next = b[s];
            b[s] = k;
        }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = nb;
    return SL_OK;
}

/* The key slot of (hash, key bytes): -1 in *out when absent and !create. */
static int s_key_get(s_join_t *st, uint64_t h, const uint8_t *key, uint32_t klen, bool create,
                     int *out)
{
    if (st->ikey) { /* never null: such rows join nothing */
        int64_t v;
        memcpy(&v, key + 5, 8);
        for (int k = st->buckets[h & (st->nbuckets - 1)]; k >= 0; k = st->keys[k].next)
            if (st->keys[k].hash == h && st->keys[k].ival == v) {
                *out = k;
                return SL_OK;
            }
    } else
        for (int k = st->buckets[h & (st->nbuckets - 1)]; k >= 0; k = st->keys[k].next)
            if (st->keys[k].hash == h && st->keys[k].klen == klen &&
                !memcmp(st->keys[k].key, key, klen)) {
                *out = k;
                return SL_OK;
            }
    *out = -1;
    if (!create)
        return SL_OK;
    int k;
    if (st->nfree)
        k = st->free_keys[--st->nfree];
    else {
        if (st->nkeys == st->capkeys) {
            int cap = st->capkeys ? st->capkeys * 2 : 256;
            s_key_t *nk = realloc(st->keys, (size_t)cap * sizeof *nk);
            int *nf = realloc(st->free_keys, (size_t)cap * sizeof *nf);
            if (nk)
                st->keys = nk;
            if (nf)
                st->free_keys = nf;
            if (!nk || !nf)
                return SL_NOMEM;
            st->capkeys = cap;
        }
        k = st->nkeys++;
    }
    s_key_t *e = &st->keys[k];
    memset(e, 0, sizeof *e);
    e->key = malloc(klen ? klen : 1);
    if (!e->key) {
        st->free_keys[st->nfree++] = k;
        return SL_NOMEM;
    }
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->used = true;
    if (st->ikey)
        memcpy(&e->ival, key + 5, 8);
    uint32_t s = (uint32_t)(h & (st->nbuckets - 1));
    e->next = st->buckets[s];
    st->buckets[s] = k;
    st->live++;
    *out = k;
    if ((uint32_t)st->live > st->nbuckets)
        return s_rehash(st, st->nbuckets * 2);
    return SL_OK;
}

/* Frees key slot k once it holds nothing. */
static void s_key_release(s_join_t *st, int k)
{
    s_key_t *e = &st->keys[k];
    if (e->nwins || e->side[0].n || e->side[1].n)
        return;
    int *pp = &st->buckets[e->hash & (st->nbuckets - 1)];
    while (*pp != k)
        pp = &st->keys[*pp].next;
    *pp = e->next;
    free(e->key);
    free(e->wins);
    s_rows_free(&e->side[0]);
    s_rows_free(&e->side[1]);
    memset(e, 0, sizeof *e);
    st->free_keys[st->nfree++] = k;
    st->live--;
}

/* The key of row (side s) encoded in the arena: *kbuf NULL when a key
 * field is null (such rows join nothing). */
static int s_row_key(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row, uint8_t **kbuf,
                     uint32_t *klen, uint64_t *hash)
{
    const sl_join_cfg_t *j = &c->node->join;
    const int *kf = s ? j->rkeys : j->lkeys;
    *kbuf = NULL;
    for (int i = 0; i < j->nkeys; i++) {
        sl_row_get(st->sch[s], row, kf[i], &st->kvals[i]);
        if (st->kvals[i].is_null)
            return SL_OK;
    }
    if (st->ikey) { /* the row layout of one non-null 8-byte field (row.h) */
        uint32_t len = 13;
        memcpy(st->ikbuf, &len, 4);
        st->ikbuf[4] = 0;
        memcpy(st->ikbuf + 5, &st->kvals[0].u.i, 8);
        *kbuf = st->ikbuf;
        *klen = len;
        *hash = sl_value_hash(st->kvals, 1);
        return SL_OK;
    }
    size_t len = sl_row_size(st->kschema, st->kvals);
    uint8_t *b = sl_arena_alloc(c->arena, len);
    if (!b)
        return SL_NOMEM;
    sl_row_encode(st->kschema, st->kvals, b);
    *kbuf = b;
    *klen = (uint32_t)len;
    *hash = sl_value_hash(st->kvals, j->nkeys);
    return SL_OK;
}

/* ---- emitting -------------------------------------------------------------------- */

/* Emits the pair (l, r); r NULL emits null right fields. win_start is the
 * window of a window join. */
static int s_emit_pair(sl_opctx_t *c, s_join_t *st, const uint8_t *l, const uint8_t *r,
                       int64_t win_start)
{
    const sl_join_cfg_t *j = &c->node->join;
    int o = 0;
    if (j->kind == SL_JOIN_WINDOW) {
        st->ovals[o++] = sl_value_ts(win_start);
        st->ovals[o++] = sl_value_ts(win_start + c->node->win.size);
    }
    if (l) {
        sl_row_decode(st->sch[0], l, st->vals[0]);
        memcpy(&st->ovals[o], st->vals[0], (size_t)st->sch[0]->nfields * sizeof *st->ovals);
    }
    o += st->sch[0]->nfields;
    if (r) {
        sl_row_decode(st->sch[1], r, st->vals[1]);
        memcpy(&st->ovals[o], st->vals[1], (size_t)st->sch[1]->nfields * sizeof *st->ovals);
    } else
        for (int i = 0; i < st->sch[1]->nfields; i++)
            st->ovals[o + i] = sl_value_null();
    return sl_emit(&c->out, st->ovals);
}

/* ---- window join ------------------------------------------------------------------ */

static int s_win_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row, int64_t t, int k,
                        int64_t wm)
{
    const sl_window_cfg_t *w = &c->node->win;
    int64_t first = t - (((t % w->slide) + w->slide) % w->slide); /* latest start */
    bool added = false;
    for (int64_t s0 = first; s0 > t - w->size; s0 -= w->slide) {
        if (s0 + w->size - 1 <= wm)
            break; /* this and earlier windows have fired */
        s_key_t *e = &st->keys[k];
        s_jwin_t *win = NULL;
        for (int i = 0; i < e->nwins && !win; i++)
            if (e->wins[i].start == s0)
                win = &e->wins[i];
        if (!win) {
            if (e->nwins == e->capwins) {
                int cap = e->capwins ? e->capwins * 2 : 2;
                s_jwin_t *nw = realloc(e->wins, (size_t)cap * sizeof *nw);
                if (!nw)
                    return SL_NOMEM;
                e->wins = nw;
                e->capwins = cap;
            }
            win = &e->wins[e->nwins++];
            memset(win, 0, sizeof *win);
            win->start = s0;
            int rc = s_heap_push(st, (s_timer_t){.time = s0 + w->size - 1, .start = s0, .key = k});
            if (rc)
                return rc;
        }
        int rc = s_rows_add(&win->side[s], row);
        if (rc)
            return rc;
        added = true;
    }
    if (!added)
        atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
    return SL_OK;
}

/* Fires window `start` of key k: every (left, right) pair, then drops it. */
static int s_win_fire(sl_opctx_t *c, s_join_t *st, int k, int64_t start)
{
    s_key_t *e = &st->keys[k];
    int idx = -1;
    for (int i = 0; i < e->nwins && idx < 0; i++)
        if (e->wins[i].start == start)
            idx = i;
    if (idx < 0)
        return SL_OK; /* fired already (a repeated timer) */
    s_jwin_t *w = &e->wins[idx];
    const s_rows_t *L = &w->side[0], *R = &w->side[1];
    for (uint32_t lo = 0; lo < L->len && R->n; lo += sl_row_len(L->buf + lo))
        for (uint32_t ro = 0; ro < R->len; ro += sl_row_len(R->buf + ro)) {
            int rc = s_emit_pair(c, st, L->buf + lo, R->buf + ro, start);
            if (rc)
                return rc;
        }
    s_rows_free(&w->side[0]);
    s_rows_free(&w->side[1]);
    e->wins[idx] = e->wins[--e->nwins];
    s_key_release(st, k);
    return SL_OK;
}

/* ---- interval join --------------------------------------------------------------- */

/* One timer per key: key k holds a row expiring at `expiry`; its timer
 * moves earlier when needed (the later one goes stale: a popped timer
 * counts only at the key's `due`), and a sweep re-arms it at the earliest
 * expiry left. */
static int s_interval_arm(s_join_t *st, int k, int64_t expiry)
{
    s_key_t *e = &st->keys[k];
    if (e->armed && e->due <= expiry)
        return SL_OK;
    int rc = s_heap_push(st, (s_timer_t){.time = expiry, .key = k});
    if (rc == SL_OK) {
        e->armed = true;
        e->due = expiry;
    }
    return rc;
}

static int s_interval_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row, int64_t t,
                             const uint8_t *kbuf, uint32_t klen, uint64_t h, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    /* Partners on the other side: right.ts in [l.ts + lower, l.ts + upper]. */
    int64_t lo = s ? t - j->upper : t + j->lower, hi = s ? t - j->lower : t + j->upper;
    int k;
    int rc = s_key_get(st, h, kbuf, klen, false, &k);
    if (rc)
        return rc;
    if (k >= 0) {
        const s_rows_t *o = &st->keys[k].side[1 - s];
        for (uint32_t off = 0; off < o->len; off += sl_row_len(o->buf + off)) {
            int64_t ot = 0;
            s_time(st, 1 - s, o->buf + off, &ot);
            if (ot < lo || ot > hi)
                continue;
            rc = s ? s_emit_pair(c, st, o->buf + off, row, 0)
                   : s_emit_pair(c, st, row, o->buf + off, 0);
            if (rc)
                return rc;
        }
    }
    /* Kept while a partner may still come: until the watermark reaches
     * l.ts + upper (left) or r.ts - lower (right). */
    int64_t expiry = s ? t - j->lower : t + j->upper;
    if (expiry <= wm)
        return SL_OK;
    if (k < 0 && (rc = s_key_get(st, h, kbuf, klen, true, &k)) != SL_OK)
        return rc;
    if ((rc = s_rows_add(&st->keys[k].side[s], row)) != SL_OK)
        return rc;
    return s_interval_arm(st, k, expiry);
}

/* Drops the rows of key k no future partner can match at watermark wm,
 * and arms the key's timer at the earliest expiry of the rows left. */
static int s_interval_sweep(sl_opctx_t *c, s_join_t *st, int k, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    s_key_t *e = &st->keys[k];
    int64_t l = s_rows_filter(st, 0, &e->side[0], wm, j->upper);
    int64_t r = s_rows_filter(st, 1, &e->side[1], wm, -j->lower);
    e->armed = false;
    if (e->side[0].n || e->side[1].n)
        return s_interval_arm(st, k, l < r ? l : r);
    s_key_release(st, k);
    return SL_OK;
}

/* ---- enrich join ----------------------------------------------------------------- */

/* Does table row a (time ta) come before b (time tb)? Time, then bytes. */
static bool s_version_before(const uint8_t *a, int64_t ta, const uint8_t *b, int64_t tb)
{
    if (ta != tb)
        return ta < tb;
    uint32_t la = sl_row_len(a), lb = sl_row_len(b), m = la < lb ? la : lb;
    int r = memcmp(a, b, m);
    return r ? r < 0 : la < lb;
}

/* Keeps, of the versions at or behind wm, only the latest. */
static void s_versions_prune(const s_join_t *st, s_rows_t *v, int64_t wm)
{
    uint32_t keep = 0, off = 0; /* offset of the latest version <= wm */
    int skip = 0, idx = 0;
    for (; off < v->len; off += sl_row_len(v->buf + off), idx++) {
        int64_t t = 0;
        s_time(st, 1, v->buf + off, &t);
        if (t > wm)
            break;
        keep = off;
        skip = idx;
    }
    if (keep == 0)
        return;
    memmove(v->buf, v->buf + keep, v->len - keep);
    v->len -= keep;
    v->n -= skip;
}

/* A table row: inserted in (time, bytes) order, then pruned. */
static int s_table_row(s_join_t *st, int k, const uint8_t *row, int64_t t, int64_t wm)
{
    s_rows_t *v = &st->keys[k].side[1];
    uint32_t len = sl_row_len(row);
    int rc = s_rows_reserve(v, len);
    if (rc)
        return rc;
    uint32_t pos = v->len;
    for (uint32_t off = 0; off < v->len; off += sl_row_len(v->buf + off)) {
        int64_t vt = 0;
        s_time(st, 1, v->buf + off, &vt);
        if (s_version_before(row, t, v->buf + off, vt)) {
            pos = off;
            break;
        }
    }
    memmove(v->buf + pos + len, v->buf + pos, v->len - pos);
    memcpy(v->buf + pos, row, len);
    v->len += len;
    v->n++;
    s_versions_prune(st, v, wm);
    return SL_OK;
}

/* Emits the pending stream rows of key k with time <= wm, each with the
 * latest table version at or before its time; keeps the others. */
static int s_enrich_sweep(sl_opctx_t *c, s_join_t *st, int k, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    s_key_t *e = &st->keys[k];
    s_rows_t *p = &e->side[0];
    const s_rows_t *v = &e->side[1];
    uint32_t w = 0;
    int n = 0;
    for (uint32_t o = 0; o < p->len;) {
        uint8_t *row = p->buf + o;
        uint32_t len = sl_row_len(row);
        int64_t t = 0;
        s_time(st, 0, row, &t);
        if (t <= wm) {
            const uint8_t *match = NULL;
            for (uint32_t vo = 0; vo < v->len; vo += sl_row_len(v->buf + vo)) {
                int64_t vt = 0;
                s_time(st, 1, v->buf + vo, &vt);
                if (vt > t)
                    break;
                match = v->buf + vo;
            }
            if (match || j->emit_nulls) {
                int rc = s_emit_pair(c, st, row, match, 0);
                if (rc)
                    return rc;
            }
        } else {
            if (w != o)
                memmove(p->buf + w, row, len);
            w += len;
            n++;
        }
        o += len;
    }
    p->len = w;
    p->n = n;
    s_versions_prune(st, &e->side[1], wm);
    s_key_release(st, k);
    return SL_OK;
}

/* ---- the rocksdb backend ------------------------------------------------------------ */

/* Store layout (user keys; the store prefixes each with its key group, the
 * key's group): the encoded key is self-delimiting (it starts with its
 * length), so 'K' + key is a prefix of exactly that key's entries.
 *   'K' key sub t8 tail -> value
 *     interval: sub = side (0 left, 1 right), t = the row's time,
 *               tail = seq8, value = the row;
 *     window:   sub = S_SUB_WIN, t = the window's start,
 *               tail = side (1 byte) + seq8, value = the row;
 *     enrich:   sub = 0 pending stream row: t = its time, tail = seq8,
 *               value = the row; sub = 1 table version: t = its time,
 *               tail = the row's bytes, value empty (versions sort by
 *               time, then bytes, as the heap backend orders them);
 *   'T' t8 key [start8] -> empty: a timer due when the watermark reaches t
 *     (window joins: the window's start follows the key).
 * t8 is the time as 8 big-endian bytes with the sign bit flipped, so keys
 * sort by time; seq8 a big-endian per-subtask counter, so rows of equal
 * time keep their arrival order (and a window emits pairs in the heap
 * backend's order). A window's rows, a key's partners in a time range,
 * its expired rows or due rows are each one range scan; a watermark scans
 * the timers of the key groups whose earliest timer (due[]) it reached.
 * Table versions at or behind the watermark collapse to the latest at the
 * key's next sweep (each version sets a timer at its time): one entry per
 * key once the table is behind the watermark.
 * Writes gather in a batch, committed at the end of every call (or when it
 * holds S_BATCH_MAX writes). Reads go through one cursor (an iterator
 * sought per read) made after the last commit, so they see the store
 * without the batch: a watermark's sweeps and fires only delete, and never
 * read what they deleted in the same call; a record of an interval join
 * reads its key's rows, so when the batch may hold rows of its key (a bit
 * per key hash, S_PEND_BITS), it commits first. */

#define S_SUB_WIN 2
#define S_BATCH_MAX 16384              /* pending writes that force a commit within a call */
#define S_DELETE UINT32_MAX            /* the value length of a pending delete */
#define S_PEND_BITS 65536              /* st->pend: bits for the key hashes of pending rows */
#define S_KEY_LIMIT (INT64_C(1) << 61) /* store times are clamped to +-this */

static int64_t s_clamp(int64_t t)
{
    return t < -S_KEY_LIMIT ? -S_KEY_LIMIT : t > S_KEY_LIMIT ? S_KEY_LIMIT : t;
}

/* a + b, clamped (a may be SL_WM_MAX or SL_WM_MIN). */
static int64_t s_shift(int64_t a, int64_t b)
{
    if (a > S_KEY_LIMIT || a < -S_KEY_LIMIT)
        return s_clamp(a);
    return s_clamp(a + b);
}

static void s_be64(uint8_t *p, uint64_t u)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return u;
}

static void s_tput(uint8_t *p, int64_t t)
{
    s_be64(p, (uint64_t)t ^ (UINT64_C(1) << 63));
}

static int64_t s_tget(const uint8_t *p)
{
    return (int64_t)(s_get_be64(p) ^ (UINT64_C(1) << 63));
}

/* Does the time a store key holds fit its row of side s, whose time is t?
 * Stores restored from before a window result's time became its
 * window_end - 1 ms hold the row's field unadjusted. */
static bool s_stored_time_ok(const s_join_t *st, int s, int64_t t, int64_t stored)
{
    return stored == t ||
           (st->tadj[s] && t >= -SL_TIME_LIMIT && t <= SL_TIME_LIMIT && stored == t - st->tadj[s]);
}

/* Room for n bytes of store keys in st->sk. */
static int s_sk(s_join_t *st, size_t n)
{
    return sl_grow((void **)&st->sk, &st->skcap, n, 1);
}

/* Writes 'K' key sub t8 at p; returns its length. */
static size_t s_dkey(uint8_t *p, const uint8_t *key, uint32_t klen, uint8_t sub, int64_t t)
{
    p[0] = 'K';
    memcpy(p + 1, key, klen);
    p[1 + klen] = sub;
    s_tput(p + 2 + klen, s_clamp(t));
    return (size_t)klen + 10;
}

/* The store, opened (empty) at first use unless a restore made it. */
static int s_kv(s_join_t *st)
{
    return st->kv ? SL_OK : sl_rstate_open(st->c, &st->kv);
}

static int s_kv_fail(s_join_t *st, int rc, const char *what)
{
    return sl_op_fail(st->c, rc, "join '%s': %s: %s", st->c->node->name, what,
                      st->kv && sl_kv_errmsg(st->kv)[0] ? sl_kv_errmsg(st->kv) : sl_strerror(rc));
}

static int s_kgroup(const s_join_t *st, uint64_t h)
{
    return sl_key_group(h, st->c->plan->max_parallelism);
}

/* Adds a write (val NULL: a delete) to the pending ones. */
static int s_pwrite(s_join_t *st, int g, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t need = st->plen + 10 + klen + (val ? vlen : 0);
    if (klen > UINT32_MAX || vlen >= S_DELETE || need > SIZE_MAX / 2)
        return SL_INVAL;
    int rc = sl_grow((void **)&st->pbuf, &st->pcap, need, 1);
    if (rc)
        return s_kv_fail(st, rc, "cannot write state");
    uint8_t *p = st->pbuf + st->plen;
    uint16_t g16 = (uint16_t)g;
    uint32_t kl = (uint32_t)klen, vl = val ? (uint32_t)vlen : S_DELETE;
    memcpy(p, &g16, 2);
    memcpy(p + 2, &kl, 4);
    memcpy(p + 6, &vl, 4);
    memcpy(p + 10, key, klen);
    if (val && vlen)
        memcpy(p + 10 + klen, val, vlen);
    st->np++;
    st->plen = need;
    return SL_OK;
}

static int s_put(s_join_t *st, int g, const void *key, size_t klen, const void *val, size_t vlen)
{
    return s_pwrite(st, g, key, klen, val, vlen);
}

static int s_del(s_join_t *st, int g, const void *key, size_t klen)
{
    return s_pwrite(st, g, key, klen, NULL, 0);
}

/* Orders pending writes by (key group, key), then as they came. */
static int s_pcmp(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    uint16_t gx, gy;
    uint32_t lx, ly;
    memcpy(&gx, x, 2);
    memcpy(&gy, y, 2);
    if (gx != gy)
        return gx < gy ? -1 : 1;
    memcpy(&lx, x + 2, 4);
    memcpy(&ly, y + 2, 4);
    int r = memcmp(x + 10, y + 10, lx < ly ? lx : ly);
    if (r)
        return r;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return (x > y) - (x < y); /* later in pbuf: came later */
}

/* Commits the pending writes (dropping the cursor, which would not see
 * them). They go to the store in key order: RocksDB inserts a run of
 * nearby keys into its memtable far faster than scattered ones. */
static int s_rk_commit(s_join_t *st)
{
    sl_kv_cursor_destroy(&st->cur);
    if (!st->rocks || !st->np)
        return SL_OK;
    int rc = s_kv(st);
    if (rc)
        return rc;
    if ((rc = sl_grow((void **)&st->pops, &st->pocap, st->np, sizeof *st->pops)) != SL_OK)
        return rc;
    size_t o = 0;
    for (size_t i = 0; i < st->np; i++) {
        uint32_t kl, vl;
        memcpy(&kl, st->pbuf + o + 2, 4);
        memcpy(&vl, st->pbuf + o + 6, 4);
        st->pops[i] = st->pbuf + o;
        o += 10 + (size_t)kl + (vl == S_DELETE ? 0 : vl);
    }
    qsort(st->pops, st->np, sizeof *st->pops, s_pcmp);
    for (size_t i = 0; i < st->np && rc == SL_OK; i++) {
        const uint8_t *p = st->pops[i];
        uint16_t g;
        uint32_t kl, vl;
        memcpy(&g, p, 2);
        memcpy(&kl, p + 2, 4);
        memcpy(&vl, p + 6, 4);
        rc = vl == S_DELETE ? sl_kv_batch_delete(st->batch, g, p + 10, kl)
                            : sl_kv_batch_put(st->batch, g, p + 10, kl, p + 10 + kl, vl);
    }
    st->np = st->plen = 0;
    memset(st->pend, 0, S_PEND_BITS / 8);
    if (st->pcap > (8u << 20)) { /* a scratch, not a cache */
        free(st->pbuf);
        st->pbuf = NULL;
        st->pcap = 0;
    }
    if (rc == SL_OK)
        rc = sl_kv_batch_commit(st->kv, st->batch);
    return rc ? s_kv_fail(st, rc, "cannot write state") : SL_OK;
}

/* The cursor on [lo, hi) of key group g: the store as of the last commit
 * (one cursor, sought per read: no commit and no iterator per read). */
static int s_rk_iter(s_join_t *st, int g, const uint8_t *lo, size_t nlo, const uint8_t *hi,
                     size_t nhi, sl_kv_cursor_t **it)
{
    *it = NULL;
    int rc = s_kv(st);
    if (rc)
        return rc;
    if (!st->cur && (rc = sl_kv_cursor_new(st->kv, &st->cur)) != SL_OK)
        return s_kv_fail(st, rc, "cannot read state");
    if ((rc = sl_kv_cursor_seek(st->cur, (uint16_t)g, lo, nlo, hi, nhi)) != SL_OK)
        return s_kv_fail(st, rc, "cannot read state");
    *it = st->cur;
    return SL_OK;
}

/* Ends an iteration: rc as returned by sl_kv_cursor_next (0 at the end). */
static int s_rk_end(s_join_t *st, sl_kv_cursor_t **it, int rc)
{
    *it = NULL;
    if (rc == SL_DATA)
        return s_kv_fail(st, SL_DATA, "the state store is corrupt");
    if (rc < 0)
        return st->c->err[0] ? rc : s_kv_fail(st, rc, "cannot read state");
    return SL_OK;
}

/* Is v[0..n) a well-formed row of schema s? */
static bool s_row_ok(const sl_schema_t *s, const void *v, size_t n)
{
    return n >= 4 && n <= SL_ROW_MAX && sl_row_len(v) == n && sl_row_check(s, v, n) == SL_OK;
}

/* Stores row (of side `side` when >= 0, a window's row) under
 * 'K' key sub t [side] seq. */
static int s_rk_put_row(s_join_t *st, int g, const uint8_t *key, uint32_t klen, uint8_t sub,
                        int64_t t, int side, const uint8_t *row)
{
    int rc = s_sk(st, (size_t)klen + 19);
    if (rc)
        return rc;
    size_t n = s_dkey(st->sk, key, klen, sub, t);
    if (side >= 0)
        st->sk[n++] = (uint8_t)side;
    s_be64(st->sk + n, st->seq++);
    n += 8;
    rc = s_put(st, (uint16_t)g, st->sk, n, row, sl_row_len(row));
    return rc ? s_kv_fail(st, rc, "cannot write state") : SL_OK;
}

/* Stores table version row (time t) of key. */
static int s_rk_put_version(s_join_t *st, int g, const uint8_t *key, uint32_t klen, int64_t t,
                            const uint8_t *row)
{
    uint32_t len = sl_row_len(row);
    int rc = s_sk(st, (size_t)klen + 10 + len);
    if (rc)
        return rc;
    size_t n = s_dkey(st->sk, key, klen, 1, t);
    memcpy(st->sk + n, row, len);
    rc = s_put(st, (uint16_t)g, st->sk, n + len, "", 0);
    return rc ? s_kv_fail(st, rc, "cannot write state") : SL_OK;
}

/* Sets a timer of key at time (start: the window of a window join). */
static int s_rk_timer(s_join_t *st, int g, int64_t time, const uint8_t *key, uint32_t klen,
                      const int64_t *start)
{
    int rc = s_sk(st, (size_t)klen + 17);
    if (rc)
        return rc;
    st->sk[0] = 'T';
    s_tput(st->sk + 1, s_clamp(time));
    memcpy(st->sk + 9, key, klen);
    size_t n = 9 + (size_t)klen;
    if (start) {
        s_tput(st->sk + n, *start);
        n += 8;
    }
    rc = s_put(st, (uint16_t)g, st->sk, n, "", 0);
    if (rc)
        return s_kv_fail(st, rc, "cannot write state");
    if (time < st->due[g])
        st->due[g] = time;
    return SL_OK;
}

/* Frees scratch rows that grew past what a usual key needs. */
static void s_rk_trim(s_join_t *st)
{
    for (int s = 0; s < 2; s++) {
        if (st->tmp[s].cap > (1u << 20))
            s_rows_free(&st->tmp[s]);
        st->tmp[s].len = 0;
        st->tmp[s].n = 0;
    }
}

/* A record of a window join: stored in each of its windows not fired yet. */
static int s_rk_win_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row, int64_t t,
                           const uint8_t *key, uint32_t klen, uint64_t h, int64_t wm)
{
    const sl_window_cfg_t *w = &c->node->win;
    int g = s_kgroup(st, h);
    int64_t first = t - (((t % w->slide) + w->slide) % w->slide); /* latest start */
    bool added = false;
    for (int64_t s0 = first; s0 > t - w->size; s0 -= w->slide) {
        if (s0 + w->size - 1 <= wm)
            break; /* this and earlier windows have fired */
        int rc = s_rk_put_row(st, g, key, klen, S_SUB_WIN, s0, s, row);
        if (rc == SL_OK)
            rc = s_rk_timer(st, g, s0 + w->size - 1, key, klen, &s0);
        if (rc)
            return rc;
        added = true;
    }
    if (!added)
        atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
    return SL_OK;
}

/* Fires window `start` of key: every (left, right) pair, then drops it. */
static int s_rk_win_fire(sl_opctx_t *c, s_join_t *st, int g, const uint8_t *key, uint32_t klen,
                         int64_t start)
{
    int rc = s_sk(st, 2 * ((size_t)klen + 10));
    if (rc)
        return rc;
    size_t n = s_dkey(st->sk, key, klen, S_SUB_WIN, start);
    size_t n2 = s_dkey(st->sk + n, key, klen, S_SUB_WIN, start + 1);
    sl_kv_cursor_t *it = NULL;
    if ((rc = s_rk_iter(st, g, st->sk, n, st->sk + n, n2, &it)) != SL_OK)
        return rc;
    sl_kv_entry_t e;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        int side = e.key_len == n + 9 ? ((const uint8_t *)e.key)[n] : 2;
        if (side > 1 || !s_row_ok(st->sch[side], e.val, e.val_len)) {
            rc = SL_DATA;
            break;
        }
        if ((rc = s_rows_add(&st->tmp[side], e.val)) != SL_OK ||
            (rc = s_del(st, (uint16_t)g, e.key, e.key_len)) != SL_OK)
            break;
    }
    if ((rc = s_rk_end(st, &it, rc)) != SL_OK)
        return rc;
    const s_rows_t *L = &st->tmp[0], *R = &st->tmp[1];
    for (uint32_t lo = 0; lo < L->len && R->n && rc == SL_OK; lo += sl_row_len(L->buf + lo))
        for (uint32_t ro = 0; ro < R->len && rc == SL_OK; ro += sl_row_len(R->buf + ro))
            rc = s_emit_pair(c, st, L->buf + lo, R->buf + ro, start);
    s_rk_trim(st);
    return rc;
}

/* A record of an interval join: joined with the stored partners in its
 * time range, then stored while a partner may still come. */
static int s_rk_interval_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row, int64_t t,
                                const uint8_t *key, uint32_t klen, uint64_t h, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    int g = s_kgroup(st, h);
    int64_t lo = s ? t - j->upper : t + j->lower, hi = s ? t - j->lower : t + j->upper;
    int rc = s_sk(st, 2 * ((size_t)klen + 10));
    if (rc)
        return rc;
    uint32_t bit = (uint32_t)(h % S_PEND_BITS);
    if ((st->pend[bit / 8] >> (bit % 8) & 1) && (rc = s_rk_commit(st)) != SL_OK)
        return rc; /* the batch may hold partners: the cursor must see them */
    size_t n = s_dkey(st->sk, key, klen, (uint8_t)(1 - s), lo);
    size_t n2 = s_dkey(st->sk + n, key, klen, (uint8_t)(1 - s), hi + 1);
    sl_kv_cursor_t *it = NULL;
    if ((rc = s_rk_iter(st, g, st->sk, n, st->sk + n, n2, &it)) != SL_OK)
        return rc;
    sl_kv_entry_t e;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        if (e.key_len != n + 8 || !s_row_ok(st->sch[1 - s], e.val, e.val_len)) {
            rc = SL_DATA;
            break;
        }
        rc = s ? s_emit_pair(c, st, e.val, row, 0) : s_emit_pair(c, st, row, e.val, 0);
        if (rc)
            break;
    }
    if ((rc = s_rk_end(st, &it, rc)) != SL_OK)
        return rc;
    int64_t expiry = s ? t - j->lower : t + j->upper;
    if (expiry <= wm)
        return SL_OK;
    if ((rc = s_rk_put_row(st, g, key, klen, (uint8_t)s, t, -1, row)) != SL_OK)
        return rc;
    st->pend[bit / 8] |= (uint8_t)(1u << (bit % 8));
    return s_rk_timer(st, g, expiry, key, klen, NULL);
}

/* Drops the rows of key no future partner can match at watermark wm: left
 * rows with ts + upper <= wm, right rows with ts - lower <= wm. */
static int s_rk_interval_sweep(sl_opctx_t *c, s_join_t *st, int g, const uint8_t *key,
                               uint32_t klen, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    int64_t limit[2] = {s_shift(wm, -j->upper), s_shift(wm, j->lower)};
    int rc = s_sk(st, 2 * ((size_t)klen + 10));
    if (rc)
        return rc;
    /* one scan over both sides: the left rows after limit[0] (a key keeps
     * few) are passed over */
    size_t n = s_dkey(st->sk, key, klen, 0, -S_KEY_LIMIT);
    size_t n2 = s_dkey(st->sk + n, key, klen, 1, limit[1] + 1);
    sl_kv_cursor_t *it = NULL;
    if ((rc = s_rk_iter(st, g, st->sk, n, st->sk + n, n2, &it)) != SL_OK)
        return rc;
    sl_kv_entry_t e;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        const uint8_t *k = e.key;
        if (e.key_len != n + 8 || k[1 + klen] > 1) {
            rc = SL_DATA;
            break;
        }
        if (s_tget(k + 2 + klen) <= limit[k[1 + klen]] &&
            (rc = s_del(st, (uint16_t)g, e.key, e.key_len)) != SL_OK)
            break;
    }
    return s_rk_end(st, &it, rc);
}

/* Emits the pending stream rows of key with time <= wm, each with the
 * latest table version at or before its time, and drops them; of the
 * versions at or behind wm keeps only the latest. */
static int s_rk_enrich_sweep(sl_opctx_t *c, s_join_t *st, int g, const uint8_t *key, uint32_t klen,
                             int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    int64_t w = s_clamp(wm);
    int rc = s_sk(st, 2 * ((size_t)klen + 10));
    if (rc)
        return rc;
    /* the versions at or behind wm, in (time, bytes) order */
    size_t n = s_dkey(st->sk, key, klen, 1, -S_KEY_LIMIT);
    size_t n2 = s_dkey(st->sk + n, key, klen, 1, w + 1);
    sl_kv_cursor_t *it = NULL;
    if ((rc = s_rk_iter(st, g, st->sk, n, st->sk + n, n2, &it)) != SL_OK)
        return rc;
    sl_kv_entry_t e;
    const uint8_t *prev = NULL;
    size_t prevlen = 0;
    uint8_t *pk = NULL; /* a copy of the previous version's store key */
    size_t pkcap = 0;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        const uint8_t *k = e.key;
        int64_t vt = 0;
        if (e.key_len <= n || !s_row_ok(st->sch[1], k + n, e.key_len - n) ||
            !s_time(st, 1, k + n, &vt) || !s_stored_time_ok(st, 1, vt, s_tget(k + n - 8))) {
            rc = SL_DATA;
            break;
        }
        if ((rc = s_rows_add(&st->tmp[1], k + n)) != SL_OK)
            break;
        /* the previous one is no longer the latest: dropped */
        if (prev && (rc = s_del(st, (uint16_t)g, pk, prevlen)) != SL_OK)
            break;
        if ((rc = sl_grow((void **)&pk, &pkcap, e.key_len, 1)) != SL_OK)
            break;
        memcpy(pk, e.key, e.key_len);
        prev = pk;
        prevlen = e.key_len;
    }
    free(pk);
    if ((rc = s_rk_end(st, &it, rc)) != SL_OK) {
        s_rk_trim(st);
        return rc;
    }
    /* the due stream rows, in (time, arrival) order */
    n = s_dkey(st->sk, key, klen, 0, -S_KEY_LIMIT);
    n2 = s_dkey(st->sk + n, key, klen, 0, w + 1);
    if ((rc = s_rk_iter(st, g, st->sk, n, st->sk + n, n2, &it)) != SL_OK) {
        s_rk_trim(st);
        return rc;
    }
    const s_rows_t *v = &st->tmp[1];
    uint32_t vo = 0;
    const uint8_t *match = NULL;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        int64_t t = 0;
        if (e.key_len != n + 8 || !s_row_ok(st->sch[0], e.val, e.val_len) ||
            !s_time(st, 0, e.val, &t) ||
            !s_stored_time_ok(st, 0, t, s_tget((const uint8_t *)e.key + n - 8))) {
            rc = SL_DATA;
            break;
        }
        for (; vo < v->len; vo += sl_row_len(v->buf + vo)) {
            int64_t vt = 0;
            s_time(st, 1, v->buf + vo, &vt);
            if (vt > t)
                break;
            match = v->buf + vo;
        }
        if ((match || j->emit_nulls) && (rc = s_emit_pair(c, st, e.val, match, 0)) != SL_OK)
            break;
        if ((rc = s_del(st, (uint16_t)g, e.key, e.key_len)) != SL_OK)
            break;
    }
    rc = s_rk_end(st, &it, rc);
    s_rk_trim(st);
    return rc;
}

/* Orders due timers (u32 length, then bytes) by bytes. */
static int s_due_cmp(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    uint32_t lx, ly;
    memcpy(&lx, x, 4);
    memcpy(&ly, y, 4);
    int r = memcmp(x + 4, y + 4, lx < ly ? lx : ly);
    return r ? r : (lx > ly) - (lx < ly);
}

/* Runs the timers of key group g due at watermark wm: each due key is
 * swept once (interval, enrich), each due window fires (window). */
static int s_rk_group(sl_opctx_t *c, s_join_t *st, int g, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    sl_kv_cursor_t *it = NULL;
    /* from the earliest live timer: the deleted ones before it are not
     * scanned again (their tombstones stay until compaction) */
    uint8_t lo[9] = {'T'};
    s_tput(lo + 1, s_clamp(st->due[g]));
    int rc = s_rk_iter(st, g, lo, sizeof lo, (const uint8_t *)"U", 1, &it);
    if (rc)
        return rc;
    int64_t next = INT64_MAX;
    size_t cnt = 0;
    st->dlen = 0;
    sl_kv_entry_t e;
    while ((rc = sl_kv_cursor_next(it, &e)) == 1) {
        if (e.key_len < 9 || e.key_len > UINT32_MAX) {
            rc = SL_DATA;
            break;
        }
        int64_t t = s_tget((const uint8_t *)e.key + 1);
        if (t > wm) {
            next = t;
            rc = 0;
            break;
        }
        uint32_t len = (uint32_t)e.key_len - 9;
        if ((rc = sl_grow((void **)&st->dbuf, &st->dcap, st->dlen + 4 + len, 1)) != SL_OK)
            break;
        memcpy(st->dbuf + st->dlen, &len, 4);
        memcpy(st->dbuf + st->dlen + 4, (const uint8_t *)e.key + 9, len);
        st->dlen += 4 + (size_t)len;
        cnt++;
        if ((rc = s_del(st, (uint16_t)g, e.key, e.key_len)) != SL_OK)
            break;
    }
    if ((rc = s_rk_end(st, &it, rc)) != SL_OK)
        return rc;
    st->due[g] = next; /* sweeps and fires add no timers */
    if ((rc = sl_grow((void **)&st->dptr, &st->dptrcap, cnt, sizeof *st->dptr)) != SL_OK)
        return rc;
    size_t m = 0;
    for (size_t o = 0; o < st->dlen; m++) {
        uint32_t len;
        memcpy(&len, st->dbuf + o, 4);
        st->dptr[m] = st->dbuf + o;
        o += 4 + (size_t)len;
    }
    if (j->kind != SL_JOIN_WINDOW && m > 1) /* a key once, whatever its due timers */
        qsort(st->dptr, m, sizeof *st->dptr, s_due_cmp);
    for (size_t i = 0; i < m && rc == SL_OK; i++) {
        if (i && j->kind != SL_JOIN_WINDOW && !s_due_cmp(&st->dptr[i - 1], &st->dptr[i]))
            continue;
        uint32_t len;
        memcpy(&len, st->dptr[i], 4);
        const uint8_t *key = st->dptr[i] + 4;
        int64_t start = 0;
        if (j->kind == SL_JOIN_WINDOW) {
            if (len < 8)
                return s_kv_fail(st, SL_DATA, "the state store is corrupt");
            len -= 8;
            start = s_tget(key + len);
        }
        if (len < 4 || sl_row_len(key) != len || sl_row_check(st->kschema, key, len) != SL_OK)
            return s_kv_fail(st, SL_DATA, "the state store is corrupt");
        switch (j->kind) {
        case SL_JOIN_WINDOW:
            rc = s_rk_win_fire(c, st, g, key, len, start);
            break;
        case SL_JOIN_INTERVAL:
            rc = s_rk_interval_sweep(c, st, g, key, len, wm);
            break;
        case SL_JOIN_ENRICH:
            rc = s_rk_enrich_sweep(c, st, g, key, len, wm);
            break;
        }
    }
    if (st->dcap > (1u << 20)) { /* a scratch, not a cache */
        free(st->dbuf);
        st->dbuf = NULL;
        st->dcap = 0;
    }
    return rc;
}

/* Runs every timer due at watermark wm, then commits. */
static int s_rk_fire_until(sl_opctx_t *c, s_join_t *st, int64_t wm)
{
    int rc = SL_OK;
    for (int g = st->kg_first; g <= st->kg_last && rc == SL_OK; g++)
        if (st->due[g] <= wm)
            rc = s_rk_group(c, st, g, wm);
    return rc ? rc : s_rk_commit(st);
}

/* Moves the keys of the heap table (a restored heap snapshot) into the
 * store, with their timers, and empties the table. */
static int s_rk_import(sl_opctx_t *c, s_join_t *st)
{
    const sl_join_cfg_t *j = &c->node->join;
    int rc = SL_OK;
    for (int k = 0; k < st->nkeys && rc == SL_OK; k++) {
        s_key_t *e = &st->keys[k];
        if (!e->used)
            continue;
        int g = s_kgroup(st, e->hash);
        for (int i = 0; i < e->nwins && rc == SL_OK; i++) {
            int64_t start = e->wins[i].start;
            for (int s = 0; s < 2 && rc == SL_OK; s++) {
                const s_rows_t *r = &e->wins[i].side[s];
                for (uint32_t o = 0; o < r->len && rc == SL_OK; o += sl_row_len(r->buf + o))
                    rc = s_rk_put_row(st, g, e->key, e->klen, S_SUB_WIN, start, s, r->buf + o);
            }
            if (rc == SL_OK)
                rc = s_rk_timer(st, g, start + c->node->win.size - 1, e->key, e->klen, &start);
        }
        for (int s = 0; s < 2 && rc == SL_OK && j->kind != SL_JOIN_WINDOW; s++) {
            const s_rows_t *r = &e->side[s];
            for (uint32_t o = 0; o < r->len && rc == SL_OK; o += sl_row_len(r->buf + o)) {
                int64_t t = 0;
                s_time(st, s, r->buf + o, &t);
                int64_t due = j->kind == SL_JOIN_ENRICH ? t : s ? t - j->lower : t + j->upper;
                if (j->kind == SL_JOIN_ENRICH && s == 1)
                    rc = s_rk_put_version(st, g, e->key, e->klen, t, r->buf + o);
                else
                    rc = s_rk_put_row(st, g, e->key, e->klen, (uint8_t)s, t, -1, r->buf + o);
                if (rc == SL_OK)
                    rc = s_rk_timer(st, g, due, e->key, e->klen, NULL);
            }
        }
        if (rc == SL_OK && st->np >= 10000)
            rc = s_rk_commit(st);
    }
    if (rc == SL_OK)
        rc = s_rk_commit(st);
    s_keys_free(st);
    st->nkeys = st->nfree = st->live = 0;
    st->nheap = 0;
    for (uint32_t i = 0; i < st->nbuckets; i++)
        st->buckets[i] = -1;
    return rc;
}

/* ---- records and time ------------------------------------------------------------ */

static int s_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row)
{
    const sl_join_cfg_t *j = &c->node->join;
    int64_t wm = c->watermark > st->wm_floor ? c->watermark : st->wm_floor, t;
    if (!s_time(st, s, row, &t) || t < -SL_TIME_LIMIT || t > SL_TIME_LIMIT) {
        atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
        return SL_OK; /* no usable event time: counted as an error, skipped */
    }
    uint8_t *kbuf;
    uint32_t klen = 0;
    uint64_t h = 0;
    int rc = s_row_key(c, st, s, row, &kbuf, &klen, &h);
    if (rc)
        return rc;
    bool late = t <= wm;
    switch (j->kind) {
    case SL_JOIN_WINDOW: {
        if (!kbuf)
            return SL_OK;
        if (st->rocks)
            return s_rk_win_record(c, st, s, row, t, kbuf, klen, h, wm);
        int k;
        if ((rc = s_key_get(st, h, kbuf, klen, true, &k)) != SL_OK)
            return rc;
        rc = s_win_record(c, st, s, row, t, k, wm);
        s_key_release(st, k); /* when every window had fired */
        return rc;
    }
    case SL_JOIN_INTERVAL:
        if (late) {
            atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
            return SL_OK;
        }
        if (!kbuf)
            return SL_OK;
        return st->rocks ? s_rk_interval_record(c, st, s, row, t, kbuf, klen, h, wm)
                         : s_interval_record(c, st, s, row, t, kbuf, klen, h, wm);
    case SL_JOIN_ENRICH:
        if (late) {
            atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
            if (s == 0)
                return SL_OK;
        }
        if (!kbuf) /* a null key joins nothing */
            return s == 0 && j->emit_nulls ? s_emit_pair(c, st, row, NULL, 0) : SL_OK;
        if (st->rocks) { /* a table version or a pending row, due (swept) at its time */
            int g = s_kgroup(st, h);
            rc = s ? s_rk_put_version(st, g, kbuf, klen, t, row)
                   : s_rk_put_row(st, g, kbuf, klen, 0, t, -1, row);
            return rc ? rc : s_rk_timer(st, g, t, kbuf, klen, NULL);
        }
        int k;
        if ((rc = s_key_get(st, h, kbuf, klen, true, &k)) != SL_OK)
            return rc;
        if (s == 1)
            return s_table_row(st, k, row, t, wm);
        if ((rc = s_rows_add(&st->keys[k].side[0], row)) != SL_OK)
            return rc;
        return s_heap_push(st, (s_timer_t){.time = t, .key = k});
    }
    return SL_OK;
}

/* Runs every timer due at watermark wm. */
static int s_fire_until(sl_opctx_t *c, int64_t wm)
{
    s_join_t *st = c->state;
    if (st->rocks)
        return s_rk_fire_until(c, st, wm);
    st->gen++;
    while (st->nheap && st->heap[0].time <= wm) {
        s_timer_t tm = s_heap_pop(st);
        s_key_t *e = &st->keys[tm.key];
        if (!e->used)
            continue; /* released since */
        int rc = SL_OK;
        switch (c->node->join.kind) {
        case SL_JOIN_WINDOW:
            rc = s_win_fire(c, st, tm.key, tm.start);
            break;
        case SL_JOIN_INTERVAL:
            if (e->armed && e->due == tm.time) /* else stale */
                rc = s_interval_sweep(c, st, tm.key, wm);
            break;
        case SL_JOIN_ENRICH:
            if (e->swept != st->gen) {
                e->swept = st->gen;
                rc = s_enrich_sweep(c, st, tm.key, wm);
            }
            break;
        }
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* ---- the operator ------------------------------------------------------------------ */

static int s_open(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    const sl_join_cfg_t *j = &nd->join;
    s_join_t *st = calloc(1, sizeof *st);
    if (!st)
        return SL_NOMEM;
    c->state = st;
    st->wm_floor = SL_WM_MIN;
    st->c = c;
    st->sch[0] = c->in;
    st->sch[1] = sl_plan_input_schema(c->plan, nd, 1);
    st->tf[0] = j->ltime;
    st->tf[1] = j->rtime;
    st->tadj[0] = j->ltime_adj;
    st->tadj[1] = j->rtime_adj;
    if (!st->sch[0] || !st->sch[1])
        return sl_op_fail(c, SL_INVAL, "join '%s': an input has no schema", nd->name);
    st->kschema = sl_schema_new();
    st->vals[0] = calloc((size_t)st->sch[0]->nfields + 1, sizeof *st->vals[0]);
    st->vals[1] = calloc((size_t)st->sch[1]->nfields + 1, sizeof *st->vals[1]);
    st->ovals = calloc((size_t)nd->out->nfields + 1, sizeof *st->ovals);
    st->kvals = calloc((size_t)j->nkeys + 1, sizeof *st->kvals);
    if (!st->kschema || !st->vals[0] || !st->vals[1] || !st->ovals || !st->kvals)
        return SL_NOMEM;
    for (int i = 0; i < j->nkeys; i++) {
        const sl_field_t *f = &st->sch[0]->fields[j->lkeys[i]];
        char name[32];
        snprintf(name, sizeof name, "k%d", i); /* left names may repeat a field */
        if (sl_schema_add(st->kschema, name, f->type) != SL_OK)
            return SL_NOMEM;
    }
    if (sl_rstate_enabled(c)) {
        int maxp = c->plan->max_parallelism;
        st->rocks = true;
        st->batch = sl_kv_batch_new();
        st->pend = calloc(S_PEND_BITS / 8, 1);
        st->due = malloc((size_t)maxp * sizeof *st->due);
        if (!st->batch || !st->due || !st->pend)
            return SL_NOMEM;
        for (int g = 0; g < maxp; g++)
            st->due[g] = INT64_MAX;
        sl_rstate_owned(c, &st->kg_first, &st->kg_last);
    }
    sl_type_t kt = j->nkeys == 1 ? st->kschema->fields[0].type : SL_TYPE_NULL;
    st->ikey = !st->rocks && j->nkeys == 1 && (kt == SL_TYPE_INT64 || kt == SL_TYPE_TIMESTAMP);
    if (st->ikey) { /* the hand-made key of s_row_key is the encoder's */
        sl_value_t v = sl_value_int(-2);
        v.type = kt;
        uint8_t b[16];
        st->ikey = sl_row_size(st->kschema, &v) == 13 && sl_row_encode(st->kschema, &v, b) == 13 &&
                   b[4] == 0 && !memcmp(b + 5, &v.u.i, 8);
    }
    return s_rehash(st, 1024);
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    s_join_t *st = c->state;
    int s = input ? 1 : 0;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        int rc = s_record(c, st, s, r);
        if (rc == SL_OK && st->rocks && st->np >= S_BATCH_MAX)
            rc = s_rk_commit(st);
        if (rc)
            return c->err[0] && st->rocks
                       ? rc
                       : sl_op_fail(c, rc, "join '%s': %s", c->node->name, sl_strerror(rc));
    }
    return s_rk_commit(st);
}

static int s_watermark(sl_opctx_t *c, int64_t wm)
{
    int rc = s_fire_until(c, wm);
    if (rc)
        return c->err[0] && ((s_join_t *)c->state)->rocks
                   ? rc
                   : sl_op_fail(c, rc, "join '%s': %s", c->node->name, sl_strerror(rc));
    return SL_OK;
}

static int s_finish(sl_opctx_t *c)
{
    return s_watermark(c, SL_WM_MAX); /* already done by the final watermark */
}

static void s_close(sl_opctx_t *c)
{
    s_join_t *st = c->state;
    if (!st)
        return;
    s_keys_free(st);
    free(st->keys);
    free(st->free_keys);
    free(st->buckets);
    free(st->heap);
    free(st->vals[0]);
    free(st->vals[1]);
    free(st->ovals);
    free(st->kvals);
    sl_kv_cursor_destroy(&st->cur);
    sl_kv_batch_destroy(&st->batch);
    free(st->pbuf);
    free(st->pops);
    free(st->pend);
    sl_rstate_close(&st->kv);
    free(st->due);
    free(st->sk);
    s_rows_free(&st->tmp[0]);
    s_rows_free(&st->tmp[1]);
    free(st->dbuf);
    free(st->dptr);
    sl_schema_destroy(&st->kschema);
    free(st);
    c->state = NULL;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define S_SNAP_VERSION 1
#define S_SNAP_ROCKS 2 /* the rocksdb backend: shape, clock, row sequence, the store's handle */
#define S_SNAP_MAX_WINS (1 << 24) /* sanity bound on windows of one key */

static void s_snap_rows(sl_snap_w_t *w, const s_rows_t *r)
{
    sl_snap_u32(w, (uint32_t)r->n);
    for (uint32_t o = 0; o < r->len; o += sl_row_len(r->buf + o))
        sl_snap_bytes(w, r->buf + o, sl_row_len(r->buf + o));
}

/* Version, kind, key count, the clock, key count; per key: key group,
 * key values, then (window) window count and per window its start, left
 * rows and right rows, or (interval, enrich) its left and right rows; rows
 * as a count, then each row's bytes. */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_join_t *st = c->state;
    const sl_join_cfg_t *j = &c->node->join;
    sl_snap_u8(w, st->rocks ? S_SNAP_ROCKS : S_SNAP_VERSION);
    sl_snap_u8(w, (uint8_t)j->kind);
    sl_snap_u32(w, (uint32_t)j->nkeys);
    sl_snap_i64(w, c->watermark > st->wm_floor ? c->watermark : st->wm_floor);
    if (st->rocks) {
        int rc = s_rk_commit(st);
        if (rc == SL_OK)
            rc = s_kv(st);
        sl_snap_u64(w, st->seq);
        return rc ? rc : sl_rstate_snapshot(c, st->kv, w);
    }
    sl_snap_u64(w, (uint64_t)st->live);
    for (int k = 0; k < st->nkeys && !w->err; k++) {
        const s_key_t *e = &st->keys[k];
        if (!e->used)
            continue;
        sl_snap_u32(w, (uint32_t)sl_key_group(e->hash, c->plan->max_parallelism));
        sl_row_decode(st->kschema, e->key, st->kvals);
        for (int i = 0; i < j->nkeys; i++)
            sl_snap_value(w, &st->kvals[i]);
        if (j->kind == SL_JOIN_WINDOW) {
            sl_snap_u32(w, (uint32_t)e->nwins);
            for (int i = 0; i < e->nwins; i++) {
                sl_snap_i64(w, e->wins[i].start);
                s_snap_rows(w, &e->wins[i].side[0]);
                s_snap_rows(w, &e->wins[i].side[1]);
            }
        } else {
            s_snap_rows(w, &e->side[0]);
            s_snap_rows(w, &e->side[1]);
        }
    }
    return w->err;
}

/* Reads rows of side s into r (or past them when r is NULL); each row's
 * time must be usable. */
static int s_restore_rows(s_join_t *st, int s, sl_snap_r_t *r, s_rows_t *into, int *n)
{
    uint32_t cnt = sl_snap_get_u32(r);
    if (r->err || cnt > r->left / 8)
        return SL_DATA;
    for (uint32_t i = 0; i < cnt; i++) {
        size_t len;
        const uint8_t *row = sl_snap_get_bytes(r, &len);
        int64_t t;
        if (r->err || len < 4 || len > SL_ROW_MAX || sl_row_check(st->sch[s], row, len) != SL_OK ||
            sl_row_len(row) != len || !s_time(st, s, row, &t) || t < -SL_TIME_LIMIT ||
            t > SL_TIME_LIMIT)
            return SL_DATA;
        int rc = into ? s_rows_add(into, row) : SL_OK;
        if (rc)
            return rc;
    }
    *n = (int)cnt;
    return SL_OK;
}

/* The timers of restored key k: its windows fire, its rows expire or
 * become due (as when they were added). */
static int s_restore_timers(sl_opctx_t *c, s_join_t *st, int k)
{
    const sl_join_cfg_t *j = &c->node->join;
    s_key_t *e = &st->keys[k];
    int rc = SL_OK;
    if (j->kind == SL_JOIN_WINDOW) {
        for (int i = 0; i < e->nwins && rc == SL_OK; i++)
            rc = s_heap_push(st, (s_timer_t){.time = e->wins[i].start + c->node->win.size - 1,
                                             .start = e->wins[i].start,
                                             .key = k});
        return rc;
    }
    int sides = j->kind == SL_JOIN_INTERVAL ? 2 : 1; /* table versions need none */
    for (int s = 0; s < sides && rc == SL_OK; s++) {
        const s_rows_t *r = &e->side[s];
        for (uint32_t o = 0; o < r->len && rc == SL_OK; o += sl_row_len(r->buf + o)) {
            int64_t t = 0;
            s_time(st, s, r->buf + o, &t);
            int64_t due = j->kind == SL_JOIN_ENRICH ? t : s ? t - j->lower : t + j->upper;
            rc = j->kind == SL_JOIN_INTERVAL ? s_interval_arm(st, k, due)
                                             : s_heap_push(st, (s_timer_t){.time = due, .key = k});
        }
    }
    return rc;
}

/* Reads one key's content into key k (or past it when k < 0). */
static int s_restore_content(sl_opctx_t *c, s_join_t *st, sl_snap_r_t *r, int k)
{
    const sl_join_cfg_t *j = &c->node->join;
    const sl_window_cfg_t *wc = &c->node->win;
    int rc, n0 = 0, n1 = 0;
    if (j->kind != SL_JOIN_WINDOW) {
        s_key_t *e = k >= 0 ? &st->keys[k] : NULL;
        if ((rc = s_restore_rows(st, 0, r, e ? &e->side[0] : NULL, &n0)) != SL_OK ||
            (rc = s_restore_rows(st, 1, r, e ? &e->side[1] : NULL, &n1)) != SL_OK)
            return rc;
        return n0 + n1 > 0 ? SL_OK : SL_DATA; /* an empty key is never kept */
    }
    uint32_t nwins = sl_snap_get_u32(r);
    if (r->err || nwins == 0 || nwins > S_SNAP_MAX_WINS)
        return SL_DATA;
    for (uint32_t i = 0; i < nwins; i++) {
        int64_t start = sl_snap_get_i64(r);
        if (r->err || start < -SL_TIME_LIMIT || start > SL_TIME_LIMIT ||
            ((start % wc->slide) + wc->slide) % wc->slide != 0)
            return SL_DATA;
        s_jwin_t tmp, *win = &tmp;
        memset(&tmp, 0, sizeof tmp);
        if (k >= 0) {
            s_key_t *e = &st->keys[k];
            for (int q = 0; q < e->nwins; q++)
                if (e->wins[q].start == start)
                    return SL_DATA; /* a window twice */
            if (e->nwins == e->capwins) {
                int cap = e->capwins ? e->capwins * 2 : 2;
                s_jwin_t *nw = realloc(e->wins, (size_t)cap * sizeof *nw);
                if (!nw)
                    return SL_NOMEM;
                e->wins = nw;
                e->capwins = cap;
            }
            win = &e->wins[e->nwins++];
            memset(win, 0, sizeof *win);
            win->start = start;
        }
        rc = s_restore_rows(st, 0, r, k >= 0 ? &win->side[0] : NULL, &n0);
        if (rc == SL_OK)
            rc = s_restore_rows(st, 1, r, k >= 0 ? &win->side[1] : NULL, &n1);
        if (rc == SL_OK && n0 + n1 == 0)
            rc = SL_DATA;
        if (rc)
            return rc;
    }
    return SL_OK;
}

static int s_restore_keys(sl_opctx_t *c, s_join_t *st, sl_snap_r_t *r, uint64_t nkeys)
{
    const sl_join_cfg_t *j = &c->node->join;
    int maxp = c->plan->max_parallelism;
    uint8_t *kbuf = NULL;
    size_t kcap = 0;
    int rc = SL_OK;
    for (uint64_t n = 0; n < nkeys && rc == SL_OK; n++) {
        uint32_t kg = sl_snap_get_u32(r);
        for (int i = 0; i < j->nkeys; i++) {
            sl_snap_get_value(r, &st->kvals[i]);
            if (st->kvals[i].is_null || st->kvals[i].type != st->kschema->fields[i].type)
                r->err = SL_DATA; /* a null key joins nothing, so is never kept */
        }
        uint64_t h = sl_value_hash(st->kvals, j->nkeys);
        if (r->err || kg >= (uint32_t)maxp || (int)kg != sl_key_group(h, maxp)) {
            rc = SL_DATA;
            break;
        }
        int k = -1;
        if (sl_key_group_owner((int)kg, maxp, c->parallelism) == c->subtask) {
            size_t klen = sl_row_size(st->kschema, st->kvals);
            if (klen > kcap) {
                uint8_t *nb = realloc(kbuf, klen);
                if (!nb) {
                    rc = SL_NOMEM;
                    break;
                }
                kbuf = nb;
                kcap = klen;
            }
            sl_row_encode(st->kschema, st->kvals, kbuf);
            int had = st->live;
            if ((rc = s_key_get(st, h, kbuf, (uint32_t)klen, true, &k)) != SL_OK)
                break;
            if (st->live == had) {
                rc = SL_DATA; /* the same key twice */
                break;
            }
        }
        rc = s_restore_content(c, st, r, k);
        if (rc == SL_OK && k >= 0)
            rc = s_restore_timers(c, st, k);
    }
    free(kbuf);
    return rc;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_join_t *st = c->state;
    const sl_plan_node_t *nd = c->node;
    uint8_t v = sl_snap_get_u8(r), kind = sl_snap_get_u8(r);
    uint32_t nkeys = sl_snap_get_u32(r);
    int64_t wm = sl_snap_get_i64(r);
    uint64_t n = sl_snap_get_u64(r); /* keys, or (rocksdb) the row sequence */
    bool shape = kind == (uint8_t)nd->join.kind && nkeys == (uint32_t)nd->join.nkeys;
    if (r->err || (v != S_SNAP_VERSION && v != S_SNAP_ROCKS) || !shape)
        return sl_op_fail(c, SL_DATA, "join '%s': not a snapshot of this operator", nd->name);
    int rc;
    if (v == S_SNAP_ROCKS) {
        if (!st->rocks)
            return sl_op_fail(c, SL_STATE,
                              "join '%s': the checkpoint keeps its state in rocksdb; the job "
                              "must use `state: {backend: rocksdb}` to restore it",
                              nd->name);
        sl_kv_cursor_destroy(&st->cur); /* of the store being replaced */
        if ((rc = sl_rstate_restore(c, &st->kv, r)) != SL_OK)
            return rc;
        if (n > st->seq)
            st->seq = n; /* rows of other key groups may reuse numbers: no clash */
        for (int g = st->kg_first; g <= st->kg_last; g++)
            st->due[g] = SL_WM_MIN; /* learnt at the next watermark */
        if (!st->restored || wm < st->wm_floor)
            st->wm_floor = wm;
        st->restored = true;
        return SL_OK;
    }
    rc = s_restore_keys(c, st, r, n);
    if (rc == SL_OK && !r->err && st->rocks)
        rc = s_rk_import(c, st); /* a heap snapshot moves into the store */
    if (rc == SL_DATA || (rc == SL_OK && r->err))
        return sl_op_fail(c, SL_DATA, "join '%s': snapshot is truncated or corrupt", nd->name);
    if (rc)
        return sl_op_fail(c, rc, "join '%s': cannot restore: %s", nd->name, sl_strerror(rc));
    /* Several snapshots (a rescale): the input has seen at least the least
     * of their watermarks. */
    if (!st->restored || wm < st->wm_floor)
        st->wm_floor = wm;
    st->restored = true;
    return SL_OK;
}

const sl_op_vtable_t sl_op_join = {.open = s_open,
                                   .process = s_process,
                                   .finish = s_finish,
                                   .close = s_close,
                                   .watermark = s_watermark,
                                   .snapshot = s_snapshot,
                                   .restore = s_restore};
