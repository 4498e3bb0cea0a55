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
 * timers cost a lookup.
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
 * (Keyed state moves to RocksDB with checkpoints; this is the in-memory
 * backend.) */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
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
    s_rows_t side[2]; /* interval: kept left / right rows; enrich: pending
                         stream rows / table versions (sorted by time) */
    s_jwin_t *wins;   /* window join: open windows */
    int nwins, capwins;
} s_key_t;

typedef struct {
    int64_t time;  /* due when the watermark reaches it */
    int64_t start; /* window join: the window's start */
    int key;       /* index into keys */
} s_timer_t;

typedef struct {
    const sl_schema_t *sch[2]; /* input schemas: left, right */
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
    uint64_t gen;        /* watermark generation (bumped per watermark call) */
    int64_t wm_floor;    /* restored watermark: the clock is at least this */
    bool restored;       /* restore ran (wm_floor is set) */
    sl_value_t *vals[2]; /* scratch: a decoded left / right row */
    sl_value_t *ovals;   /* scratch: an output row */
    sl_value_t *kvals;   /* scratch: key values */
} s_join_t;

#define S_TIME_LIMIT (INT64_C(1) << 60) /* beyond any calendar */

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

/* Event time of row (field tf of schema s); false when null. */
static bool s_time(const sl_schema_t *s, int tf, const uint8_t *row, int64_t *t)
{
    sl_value_t v;
    sl_row_get(s, row, tf, &v);
    *t = v.u.i;
    return !v.is_null;
}

/* Keeps, in order, the rows of r whose time + off is above limit. */
static void s_rows_filter(s_rows_t *r, const sl_schema_t *s, int tf, int64_t limit, int64_t off)
{
    uint32_t w = 0;
    int n = 0;
    for (uint32_t o = 0; o < r->len;) {
        uint32_t len = sl_row_len(r->buf + o);
        int64_t t = 0;
        s_time(s, tf, r->buf + o, &t);
        if (t + off > limit) { /* still needed */
            if (w != o)
                memmove(r->buf + w, r->buf + o, len);
            w += len;
            n++;
        }
        o += len;
    }
    r->len = w;
    r->n = n;
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
        int otf = s ? j->ltime : j->rtime;
        for (uint32_t off = 0; off < o->len; off += sl_row_len(o->buf + off)) {
            int64_t ot = 0;
            s_time(st->sch[1 - s], otf, o->buf + off, &ot);
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
    return s_heap_push(st, (s_timer_t){.time = expiry, .key = k});
}

/* Drops the rows of key k no future partner can match at watermark wm. */
static void s_interval_sweep(sl_opctx_t *c, s_join_t *st, int k, int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    s_key_t *e = &st->keys[k];
    s_rows_filter(&e->side[0], st->sch[0], j->ltime, wm, j->upper);
    s_rows_filter(&e->side[1], st->sch[1], j->rtime, wm, -j->lower);
    s_key_release(st, k);
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
static void s_versions_prune(s_rows_t *v, const sl_schema_t *s, int tf, int64_t wm)
{
    uint32_t keep = 0, off = 0; /* offset of the latest version <= wm */
    int skip = 0, idx = 0;
    for (; off < v->len; off += sl_row_len(v->buf + off), idx++) {
        int64_t t = 0;
        s_time(s, tf, v->buf + off, &t);
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
static int s_table_row(sl_opctx_t *c, s_join_t *st, int k, const uint8_t *row, int64_t t,
                       int64_t wm)
{
    const sl_join_cfg_t *j = &c->node->join;
    s_rows_t *v = &st->keys[k].side[1];
    uint32_t len = sl_row_len(row);
    int rc = s_rows_reserve(v, len);
    if (rc)
        return rc;
    uint32_t pos = v->len;
    for (uint32_t off = 0; off < v->len; off += sl_row_len(v->buf + off)) {
        int64_t vt = 0;
        s_time(st->sch[1], j->rtime, v->buf + off, &vt);
        if (s_version_before(row, t, v->buf + off, vt)) {
            pos = off;
            break;
        }
    }
    memmove(v->buf + pos + len, v->buf + pos, v->len - pos);
    memcpy(v->buf + pos, row, len);
    v->len += len;
    v->n++;
    s_versions_prune(v, st->sch[1], j->rtime, wm);
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
        s_time(st->sch[0], j->ltime, row, &t);
        if (t <= wm) {
            const uint8_t *match = NULL;
            for (uint32_t vo = 0; vo < v->len; vo += sl_row_len(v->buf + vo)) {
                int64_t vt = 0;
                s_time(st->sch[1], j->rtime, v->buf + vo, &vt);
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
    s_versions_prune(&e->side[1], st->sch[1], j->rtime, wm);
    s_key_release(st, k);
    return SL_OK;
}

/* ---- records and time ------------------------------------------------------------ */

static int s_record(sl_opctx_t *c, s_join_t *st, int s, const uint8_t *row)
{
    const sl_join_cfg_t *j = &c->node->join;
    int64_t wm = c->watermark > st->wm_floor ? c->watermark : st->wm_floor, t;
    if (!s_time(st->sch[s], s ? j->rtime : j->ltime, row, &t) || t < -S_TIME_LIMIT ||
        t > S_TIME_LIMIT) {
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
        return kbuf ? s_interval_record(c, st, s, row, t, kbuf, klen, h, wm) : SL_OK;
    case SL_JOIN_ENRICH:
        if (late) {
            atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
            if (s == 0)
                return SL_OK;
        }
        if (!kbuf) /* a null key joins nothing */
            return s == 0 && j->emit_nulls ? s_emit_pair(c, st, row, NULL, 0) : SL_OK;
        int k;
        if ((rc = s_key_get(st, h, kbuf, klen, true, &k)) != SL_OK)
            return rc;
        if (s == 1)
            return s_table_row(c, st, k, row, t, wm);
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
            if (e->swept != st->gen) {
                e->swept = st->gen;
                s_interval_sweep(c, st, tm.key, wm);
            }
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
    st->sch[0] = c->in;
    st->sch[1] = sl_plan_input_schema(c->plan, nd, 1);
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
    return s_rehash(st, 1024);
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    s_join_t *st = c->state;
    int s = input ? 1 : 0;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        int rc = s_record(c, st, s, r);
        if (rc)
            return sl_op_fail(c, rc, "join '%s': %s", c->node->name, sl_strerror(rc));
    }
    return SL_OK;
}

static int s_watermark(sl_opctx_t *c, int64_t wm)
{
    int rc = s_fire_until(c, wm);
    if (rc)
        return sl_op_fail(c, rc, "join '%s': %s", c->node->name, sl_strerror(rc));
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
    free(st->keys);
    free(st->free_keys);
    free(st->buckets);
    free(st->heap);
    free(st->vals[0]);
    free(st->vals[1]);
    free(st->ovals);
    free(st->kvals);
    sl_schema_destroy(&st->kschema);
    free(st);
    c->state = NULL;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define S_SNAP_VERSION 1
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
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u8(w, (uint8_t)j->kind);
    sl_snap_u32(w, (uint32_t)j->nkeys);
    sl_snap_i64(w, c->watermark > st->wm_floor ? c->watermark : st->wm_floor);
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
static int s_restore_rows(s_join_t *st, const sl_join_cfg_t *j, int s, sl_snap_r_t *r,
                          s_rows_t *into, int *n)
{
    uint32_t cnt = sl_snap_get_u32(r);
    if (r->err || cnt > r->left / 8)
        return SL_DATA;
    for (uint32_t i = 0; i < cnt; i++) {
        size_t len;
        const uint8_t *row = sl_snap_get_bytes(r, &len);
        int64_t t;
        if (r->err || len < 4 || len > SL_ROW_MAX || sl_row_check(st->sch[s], row, len) != SL_OK ||
            sl_row_len(row) != len || !s_time(st->sch[s], s ? j->rtime : j->ltime, row, &t) ||
            t < -S_TIME_LIMIT || t > S_TIME_LIMIT)
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
            s_time(st->sch[s], s ? j->rtime : j->ltime, r->buf + o, &t);
            int64_t due = j->kind == SL_JOIN_ENRICH ? t : s ? t - j->lower : t + j->upper;
            rc = s_heap_push(st, (s_timer_t){.time = due, .key = k});
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
        if ((rc = s_restore_rows(st, j, 0, r, e ? &e->side[0] : NULL, &n0)) != SL_OK ||
            (rc = s_restore_rows(st, j, 1, r, e ? &e->side[1] : NULL, &n1)) != SL_OK)
            return rc;
        return n0 + n1 > 0 ? SL_OK : SL_DATA; /* an empty key is never kept */
    }
    uint32_t nwins = sl_snap_get_u32(r);
    if (r->err || nwins == 0 || nwins > S_SNAP_MAX_WINS)
        return SL_DATA;
    for (uint32_t i = 0; i < nwins; i++) {
        int64_t start = sl_snap_get_i64(r);
        if (r->err || start < -S_TIME_LIMIT || start > S_TIME_LIMIT ||
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
        rc = s_restore_rows(st, j, 0, r, k >= 0 ? &win->side[0] : NULL, &n0);
        if (rc == SL_OK)
            rc = s_restore_rows(st, j, 1, r, k >= 0 ? &win->side[1] : NULL, &n1);
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
    uint64_t n = sl_snap_get_u64(r);
    if (r->err || v != S_SNAP_VERSION || kind != (uint8_t)nd->join.kind ||
        nkeys != (uint32_t)nd->join.nkeys)
        return sl_op_fail(c, SL_DATA, "join '%s': not a snapshot of this operator", nd->name);
    int rc = s_restore_keys(c, st, r, n);
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
