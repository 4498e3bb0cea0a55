/* op_window.c — keyed tumbling, sliding and session windows over event time
 * or processing time (docs/time.md).
 *
 * State: a chained hash table from the encoded key (a row of the key
 * fields) to the key's open windows, a short array per key (a tumbling
 * window has one or two open, a sliding one size/slide plus what lateness
 * keeps, a session a few). Each window holds one accumulator per
 * aggregate, or the top N records. A min-heap of timers says when a window
 * fires (its end - 1 reached by the watermark, or by the wall clock on
 * processing time) and when it is dropped (end - 1 + allowed_lateness).
 * Timers are never removed: a popped timer whose window is gone or has
 * moved (a session that grew) is skipped.
 *
 * Panes (slicing): a sliding window on event time whose size is a multiple
 * of its slide, with aggregates that combine (count, sum, avg, min, max,
 * first, last; not count_distinct or top N), on the heap backend, keeps
 * per key one pane per slide ([p, p + slide), the key's `wins`) instead of
 * size / slide overlapping windows: a record updates one pane, and a
 * window's result is its panes combined when it fires. A pane's first
 * record sets a fire timer (id: the window's end) for each window of the
 * pane that no other pane of the key has timed yet; a pane is dropped with
 * the last window that holds it (start p, at p + size - 1 + lateness: a
 * drop timer, id the pane's start; without lateness the firing of that
 * window drops it). Results, late-but-allowed updates and late records are
 * those of the windows (a window alive holds all its panes); only double
 * sums may differ in their last bits (another order of addition). A
 * snapshot holds the panes (version 3), so a restored instance keeps them
 * and combines the same panes in the same order as one never restored
 * (double sums keep their bits, at any parallelism); restored into
 * windows (the rocksdb backend), they are assembled into the windows
 * alive at the snapshot's clock. A snapshot of windows (version 1) cannot
 * be split into panes: an instance restoring one runs on windows.
 *
 * Determinism: every result is a function of the records of its window
 * only, never of their arrival order: first/last are picked by event time
 * with ties broken by value, top N by the ranking value with ties broken
 * by the row bytes, distinct values by equality. Only double sums depend
 * on the order of addition (in their last bits).
 *
 * Late records (every window of the record already dropped) go to the side
 * output when the node names one (`late:`), and are counted either way.
 * A late-but-allowed record updates its fired window and emits the updated
 * result at once; a session it bridges merges with its neighbours.
 *
 * Checkpoints: the snapshot lists every key (its key group first, then its
 * values) with its windows (bounds, fired flag, accumulators with their
 * distinct sets, or the top rows), and the watermark. Restore rebuilds the
 * windows of the keys whose key group this subtask owns (so a snapshot of
 * any parallelism restores into any other), their timers from the windows
 * (a window not fired yet fires at end - 1, a fired one is dropped at
 * end - 1 + lateness), and keeps the restored watermark as a floor of the
 * clock until the input's watermark passes it, so a record that was late
 * before the checkpoint is late after it.
 *
 * With `state: {backend: rocksdb}` the key table is only a cache of the
 * keys touched by one call (a batch of records, a watermark, a tick): a
 * key is loaded from the RocksDB store (rocks_state.h) when first touched
 * (value: its windows, headers first, then their contents as in the
 * snapshot; the keys of a batch of records are read first, in one batched
 * multi-get), and every key touched is written back (or deleted, once it
 * has no windows) when the call ends. Window ids are stored with the
 * windows. Timers stay in memory and carry the key's bytes (not a table
 * index); after a restore they are rebuilt by one scan of the store's
 * window headers. A snapshot is the store's incremental checkpoint plus
 * the watermark. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "rocks_state.h"
#include "sluice/err.h"
#include "sluice/expr.h"

/* An aggregate's accumulator. */
typedef struct {
    int64_t n;        /* values seen (count, avg denominator) */
    int64_t si;       /* int64 sum */
    double sd;        /* double sum */
    bool has;         /* v holds a value (min/max/first/last) */
    sl_value_t v;     /* min/max/first/last; a string is owned (malloc) */
    int64_t t;        /* first/last: event time of v */
    sl_value_t *set;  /* count_distinct: open-addressing set, strings owned */
    uint32_t set_cap; /* slots (a power of two), 0 = none yet */
    uint32_t set_n;   /* values in the set */
} s_acc_t;

/* One of the top N records of a window. */
typedef struct {
    uint8_t *row;  /* owned copy of the input row */
    uint32_t len;  /* its length */
    sl_value_t by; /* ranking value (a string is owned) */
} s_top_t;

typedef struct {
    uint64_t id;   /* unique: timers name windows by id */
    int64_t start; /* window [start, end) */
    int64_t end;
    bool fired;    /* a result was emitted */
    s_acc_t *accs; /* naggs accumulators */
    s_top_t *top;  /* top_n slots */
    int ntop;      /* filled slots, best first */
} s_win_t;

typedef struct {
    uint64_t hash; /* sl_value_hash of the key */
    uint8_t *key;  /* owned encoded key row */
    uint32_t klen;
    int next;      /* hash chain (index into keys), -1 ends */
    s_win_t *wins; /* open windows */
    int nwins, capwins;
    bool used;
    bool stored;  /* rocksdb: the store holds this key */
    bool inull;   /* ikey: the key is null */
    int64_t ival; /* ikey: the key's value (compared instead of the bytes) */
} s_key_t;

typedef struct {
    int64_t time; /* fire when the clock (watermark) reaches it */
    uint64_t id;  /* the window */
    int key;      /* index into keys (heap backend) */
    bool drop;    /* drop the window instead of firing it */
    uint8_t *kb;  /* rocksdb: the key's encoded bytes (owned) */
    uint32_t klen;
    uint64_t hash; /* rocksdb: sl_value_hash of the key */
} s_timer_t;

typedef struct {
    sl_schema_t *kschema; /* the key fields */
    s_key_t *keys;
    int nkeys, capkeys;
    int *free_keys; /* unused key slots */
    int nfree;
    int *buckets; /* heads of hash chains */
    uint32_t nbuckets;
    int live; /* used keys */
    s_timer_t *heap;
    size_t nheap, capheap;
    uint64_t next_id;
    sl_value_t *vals;  /* scratch: a decoded input row */
    sl_value_t *ovals; /* scratch: an output row */
    sl_value_t *tvals; /* scratch: a decoded top row being emitted (vals stays the record's) */
    sl_value_t *kvals; /* scratch: key values */
    int64_t wm_floor;  /* restored watermark: the event-time clock is at least this */
    bool restored;     /* restore ran (wm_floor is set) */
    int *need;         /* input fields a record is read for */
    int nneed;
    sl_opctx_t *c;        /* the operator (for loading keys) */
    bool rocks;           /* the rocksdb backend: keys is a cache of the store */
    sl_kv_t *kv;          /* rocksdb: the store, once opened or restored */
    sl_kv_batch_t *batch; /* rocksdb: write-back of the touched keys */
    sl_snap_w_t vbuf;     /* rocksdb: an encoded value */
    bool need_timers;     /* rocksdb: restored; timers not rebuilt yet */
    s_timer_t *due;       /* heap backend: the timers due in one s_fire_until, sorted */
    size_t capdue;
    s_acc_t **spare; /* heap backend: accumulator arrays of dropped windows, for reuse */
    int nspare;
    bool panes;    /* keys hold panes of the sliding windows (see the file comment) */
    s_acc_t *comb; /* panes: a window's accumulators combined from its panes (borrowed values) */
    int64_t *ends; /* panes: scratch for a key's window ends (snapshot) */
    size_t capends;
    bool defer; /* rocksdb: new key slots are noted in pend, not loaded */
    int *pend;  /* rocksdb: key slots to load in one multi-get */
    int npend, cappend;
    uint16_t *mkg; /* rocksdb multi-get: key groups, keys, lengths, values */
    const void **mkeys;
    size_t *mklen;
    sl_kv_value_t *mvals;
    int capm;
    bool ikey; /* one int64 / timestamp key: looked up by value, encoded only when new */
} s_win_state_t;

#define S_MAX_SPARE 4096 /* accumulator arrays kept for reuse */

/* ---- values ---------------------------------------------------------------- */

/* Copies v, owning a string copy. */
static int s_own(sl_value_t *dst, const sl_value_t *v)
{
    *dst = *v;
    if (!v->is_null && v->type == SL_TYPE_STRING) {
        char *s = malloc(v->len ? v->len : 1);
        if (!s)
            return SL_NOMEM;
        memcpy(s, v->u.s, v->len);
        dst->u.s = s;
    }
    return SL_OK;
}

static void s_unown(sl_value_t *v)
{
    if (!v->is_null && v->type == SL_TYPE_STRING)
        free((void *)v->u.s);
    v->is_null = true;
}

/* ---- accumulators ---------------------------------------------------------- */

static int s_set_add(s_acc_t *a, const sl_value_t *v);

static int s_set_grow(s_acc_t *a)
{
    uint32_t cap = a->set_cap ? a->set_cap * 2 : 8;
    sl_value_t *ns = malloc(cap * sizeof *ns);
    if (!ns)
        return SL_NOMEM;
    for (uint32_t i = 0; i < cap; i++)
        ns[i].type = SL_TYPE_NULL;
    sl_value_t *old = a->set;
    uint32_t oldcap = a->set_cap;
    a->set = ns;
    a->set_cap = cap;
    a->set_n = 0;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].type != SL_TYPE_NULL) {
            uint64_t h = sl_value_hash(&old[i], 1);
            uint32_t m = cap - 1, s = (uint32_t)h & m;
            while (ns[s].type != SL_TYPE_NULL)
                s = (s + 1) & m;
            ns[s] = old[i]; /* moves the owned string */
            a->set_n++;
        }
    free(old);
    return SL_OK;
}

/* Adds v (non-null) to the distinct set; slots with type NULL are empty. */
static int s_set_add(s_acc_t *a, const sl_value_t *v)
{
    if ((a->set_n + 1) * 4 > a->set_cap * 3) {
        int rc = s_set_grow(a);
        if (rc)
            return rc;
    }
    uint32_t m = a->set_cap - 1, s = (uint32_t)sl_value_hash(v, 1) & m;
    while (a->set[s].type != SL_TYPE_NULL) {
        if (sl_value_eq(&a->set[s], v))
            return SL_OK;
        s = (s + 1) & m;
    }
    int rc = s_own(&a->set[s], v);
    if (rc == SL_OK)
        a->set_n++;
    else
        a->set[s].type = SL_TYPE_NULL;
    return rc;
}

static void s_acc_free(s_acc_t *a)
{
    if (a->has)
        s_unown(&a->v);
    for (uint32_t i = 0; i < a->set_cap; i++)
        if (a->set[i].type != SL_TYPE_NULL)
            s_unown(&a->set[i]);
    free(a->set);
    memset(a, 0, sizeof *a);
}

/* Does (t, v) come before (a->t, a->v)? Earlier time; equal times by value. */
static bool s_before(int64_t t, const sl_value_t *v, const s_acc_t *a)
{
    if (t != a->t)
        return t < a->t;
    return sl_value_cmp(v, &a->v) < 0;
}

/* Folds value v (of the aggregate's field; event time t) into a. */
static int s_acc_add(const sl_agg_t *ag, s_acc_t *a, const sl_value_t *v, int64_t t)
{
    if (ag->fn == SL_AGG_COUNT && ag->field < 0) {
        a->n++;
        return SL_OK;
    }
    if (v->is_null)
        return SL_OK; /* aggregates skip nulls, as in SQL */
    bool take = false;
    switch (ag->fn) {
    case SL_AGG_COUNT:
        a->n++;
        return SL_OK;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        a->n++;
        if (v->type == SL_TYPE_DOUBLE)
            a->sd += v->u.d;
        else
            a->si = (int64_t)((uint64_t)a->si + (uint64_t)v->u.i);
        return SL_OK;
    case SL_AGG_COUNT_DISTINCT:
        return s_set_add(a, v);
    case SL_AGG_MIN:
        take = !a->has || sl_value_cmp(v, &a->v) < 0;
        break;
    case SL_AGG_MAX:
        take = !a->has || sl_value_cmp(v, &a->v) > 0;
        break;
    case SL_AGG_FIRST:
        take = !a->has || s_before(t, v, a);
        break;
    case SL_AGG_LAST:
        /* later time wins; equal times: the larger value */
        take = !a->has || t > a->t || (t == a->t && sl_value_cmp(v, &a->v) > 0);
        break;
    }
    if (!take)
        return SL_OK;
    sl_value_t copy;
    int rc = s_own(&copy, v);
    if (rc)
        return rc;
    if (a->has)
        s_unown(&a->v);
    a->v = copy;
    a->t = t;
    a->has = true;
    return SL_OK;
}

/* Folds accumulator b into a (session merges); b keeps its storage. */
static int s_acc_merge(const sl_agg_t *ag, s_acc_t *a, const s_acc_t *b)
{
    switch (ag->fn) {
    case SL_AGG_COUNT:
        a->n += b->n;
        return SL_OK;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        a->n += b->n;
        a->si = (int64_t)((uint64_t)a->si + (uint64_t)b->si);
        a->sd += b->sd;
        return SL_OK;
    case SL_AGG_COUNT_DISTINCT:
        for (uint32_t i = 0; i < b->set_cap; i++)
            if (b->set[i].type != SL_TYPE_NULL) {
                int rc = s_set_add(a, &b->set[i]);
                if (rc)
                    return rc;
            }
        return SL_OK;
    default:
        return b->has ? s_acc_add(ag, a, &b->v, b->t) : SL_OK;
    }
}

/* Folds pane accumulator b into r, the window's being assembled: r's
 * values are borrowed from the panes (never owned or freed). */
static void s_acc_fold(const sl_agg_t *ag, s_acc_t *r, const s_acc_t *b)
{
    bool take = false;
    switch (ag->fn) {
    case SL_AGG_COUNT:
    case SL_AGG_COUNT_DISTINCT: /* not with panes */
        r->n += b->n;
        return;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        r->n += b->n;
        r->si = (int64_t)((uint64_t)r->si + (uint64_t)b->si);
        r->sd += b->sd;
        return;
    case SL_AGG_MIN:
        take = b->has && (!r->has || sl_value_cmp(&b->v, &r->v) < 0);
        break;
    case SL_AGG_MAX:
        take = b->has && (!r->has || sl_value_cmp(&b->v, &r->v) > 0);
        break;
    case SL_AGG_FIRST:
        take = b->has && (!r->has || s_before(b->t, &b->v, r));
        break;
    case SL_AGG_LAST:
        take =
            b->has && (!r->has || b->t > r->t || (b->t == r->t && sl_value_cmp(&b->v, &r->v) > 0));
        break;
    }
    if (take) {
        r->v = b->v;
        r->t = b->t;
        r->has = true;
    }
}

static sl_value_t s_acc_result(const sl_agg_t *ag, const s_acc_t *a)
{
    switch (ag->fn) {
    case SL_AGG_COUNT:
        return sl_value_int(a->n);
    case SL_AGG_COUNT_DISTINCT:
        return sl_value_int(a->set_n);
    case SL_AGG_SUM:
        if (!a->n)
            return sl_value_null();
        return ag->out == SL_TYPE_DOUBLE ? sl_value_double(a->sd) : sl_value_int(a->si);
    case SL_AGG_AVG:
        if (!a->n)
            return sl_value_null();
        return sl_value_double((a->sd + (double)a->si) / (double)a->n);
    default:
        return a->has ? a->v : sl_value_null();
    }
}

/* ---- top N ------------------------------------------------------------------- */

/* Does (by, row) rank before the top entry e? Larger by first; ties by row bytes. */
static bool s_top_before(const sl_value_t *by, const uint8_t *row, uint32_t len, const s_top_t *e)
{
    int c = sl_value_cmp(by, &e->by);
    if (c)
        return c > 0;
    uint32_t m = len < e->len ? len : e->len;
    int r = memcmp(row, e->row, m);
    return r ? r < 0 : len < e->len;
}

static void s_top_free(s_top_t *e)
{
    s_unown(&e->by);
    free(e->row);
    e->row = NULL;
}

/* Offers a record to a window's top N (n slots). */
static int s_top_add(s_win_t *w, int n, const sl_value_t *by, const uint8_t *row, uint32_t len)
{
    if (by->is_null)
        return SL_OK; /* unranked */
    int pos = w->ntop;
    while (pos > 0 && s_top_before(by, row, len, &w->top[pos - 1]))
        pos--;
    if (pos >= n)
        return SL_OK;
    s_top_t e = {.len = len};
    e.row = malloc(len);
    if (!e.row)
        return SL_NOMEM;
    memcpy(e.row, row, len);
    int rc = s_own(&e.by, by);
    if (rc) {
        free(e.row);
        return rc;
    }
    if (w->ntop == n)
        s_top_free(&w->top[--w->ntop]);
    memmove(&w->top[pos + 1], &w->top[pos], (size_t)(w->ntop - pos) * sizeof *w->top);
    w->top[pos] = e;
    w->ntop++;
    return SL_OK;
}

/* ---- windows and keys ------------------------------------------------------- */

static void s_win_free(const sl_plan_node_t *nd, s_win_t *w)
{
    for (int i = 0; w->accs && i < nd->naggs; i++)
        s_acc_free(&w->accs[i]);
    free(w->accs);
    for (int i = 0; i < w->ntop; i++)
        s_top_free(&w->top[i]);
    free(w->top);
    memset(w, 0, sizeof *w);
}

static int s_win_init(const sl_plan_node_t *nd, s_win_state_t *st, s_win_t *w, int64_t start,
                      int64_t end)
{
    memset(w, 0, sizeof *w);
    w->id = ++st->next_id;
    w->start = start;
    w->end = end;
    if (nd->win.top_n) {
        w->top = calloc((size_t)nd->win.top_n, sizeof *w->top);
        return w->top ? SL_OK : SL_NOMEM;
    }
    if (st->nspare) { /* a dropped window's array (heap backend), cleared */
        w->accs = st->spare[--st->nspare];
        memset(w->accs, 0, (size_t)nd->naggs * sizeof *w->accs);
        return SL_OK;
    }
    w->accs = calloc((size_t)nd->naggs, sizeof *w->accs);
    return w->accs ? SL_OK : SL_NOMEM;
}

static int s_heap_push(s_win_state_t *st, s_timer_t tm)
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

static s_timer_t s_heap_pop(s_win_state_t *st)
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

/* A timer of window id of key slot k (with the rocksdb backend it keeps a
 * copy of the key's bytes, as the slot goes when the call ends). */
static int s_timer_add(s_win_state_t *st, int64_t time, uint64_t id, int k, bool drop)
{
    s_timer_t tm = {.time = time, .id = id, .key = k, .drop = drop, .hash = st->keys[k].hash};
    if (st->rocks) {
        const s_key_t *e = &st->keys[k];
        if (!(tm.kb = malloc(e->klen ? e->klen : 1)))
            return SL_NOMEM;
        memcpy(tm.kb, e->key, e->klen);
        tm.klen = e->klen;
    }
    int rc = s_heap_push(st, tm);
    if (rc)
        free(tm.kb);
    return rc;
}

static int s_rocks_load(s_win_state_t *st, int k);
static int s_rocks_prefetch(sl_opctx_t *c, s_win_state_t *st, const sl_batch_t *in);
static int s_rocks_flush(s_win_state_t *st);
static int s_rocks_timers(s_win_state_t *st);
static int s_kv(s_win_state_t *st);

static int s_rehash(s_win_state_t *st, uint32_t nb)
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

/* The key slot of (hash, key bytes), created when absent. */
static int s_key_get(s_win_state_t *st, uint64_t h, const uint8_t *key, uint32_t klen, int *out)
{
    for (int k = st->buckets[h & (st->nbuckets - 1)]; k >= 0; k = st->keys[k].next)
        if (st->keys[k].hash == h && st->keys[k].klen == klen &&
            !memcmp(st->keys[k].key, key, klen)) {
            *out = k;
            return SL_OK;
        }
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
    e->key = malloc(klen);
    if (!e->key)
        return SL_NOMEM;
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->used = true;
    if (st->ikey) {
        sl_value_t v;
        sl_row_get(st->kschema, key, 0, &v);
        e->inull = v.is_null;
        e->ival = v.u.i;
    }
    uint32_t s = (uint32_t)(h & (st->nbuckets - 1));
    e->next = st->buckets[s];
    st->buckets[s] = k;
    st->live++;
    *out = k;
    if (st->rocks) {
        int rc = s_rocks_load(st, k);
        if (rc)
            return rc;
    }
    if ((uint32_t)st->live > st->nbuckets)
        return s_rehash(st, st->nbuckets * 2);
    return SL_OK;
}

/* ikey: the slot of the key of value v (hash h), -1 when absent. */
static inline int s_key_find_int(const s_win_state_t *st, uint64_t h, const sl_value_t *v)
{
    for (int k = st->buckets[h & (st->nbuckets - 1)]; k >= 0; k = st->keys[k].next) {
        const s_key_t *e = &st->keys[k];
        if (e->hash == h && e->inull == v->is_null && (v->is_null || e->ival == v->u.i))
            return k;
    }
    return -1;
}

/* Frees key slot k once it has no windows. */
static void s_key_release(s_win_state_t *st, int k)
{
    s_key_t *e = &st->keys[k];
    if (e->nwins || st->rocks)
        return; /* rocksdb: the write-back deletes it */
    int *pp = &st->buckets[e->hash & (st->nbuckets - 1)];
    while (*pp != k)
        pp = &st->keys[*pp].next;
    *pp = e->next;
    free(e->key);
    free(e->wins);
    memset(e, 0, sizeof *e);
    st->free_keys[st->nfree++] = k;
    st->live--;
}

static s_win_t *s_win_find(s_key_t *e, uint64_t id, int *idx)
{
    for (int i = 0; i < e->nwins; i++)
        if (e->wins[i].id == id) {
            *idx = i;
            return &e->wins[i];
        }
    return NULL;
}

/* A new window of key k; its fire timer is set by the caller. */
static int s_win_add(const sl_plan_node_t *nd, s_win_state_t *st, int k, int64_t start, int64_t end,
                     s_win_t **out)
{
    s_key_t *e = &st->keys[k];
    if (e->nwins == e->capwins) {
        int cap = e->capwins ? e->capwins * 2 : 2;
        s_win_t *w = realloc(e->wins, (size_t)cap * sizeof *w);
        if (!w)
            return SL_NOMEM;
        e->wins = w;
        e->capwins = cap;
    }
    int rc = s_win_init(nd, st, &e->wins[e->nwins], start, end);
    if (rc)
        return rc;
    *out = &e->wins[e->nwins++];
    return SL_OK;
}

static void s_win_remove(const sl_plan_node_t *nd, s_key_t *e, int i)
{
    s_win_free(nd, &e->wins[i]);
    e->wins[i] = e->wins[--e->nwins];
}

/* ---- emitting ------------------------------------------------------------------ */

static int s_emit_window(sl_opctx_t *c, s_win_state_t *st, const s_key_t *e, s_win_t *w)
{
    const sl_plan_node_t *nd = c->node;
    int nk = nd->nkeys, o = 0;
    sl_row_decode(st->kschema, e->key, st->kvals);
    for (int i = 0; i < nk; i++)
        st->ovals[o++] = st->kvals[i];
    st->ovals[o++] = sl_value_ts(w->start);
    st->ovals[o++] = sl_value_ts(w->end);
    w->fired = true;
    if (!nd->win.top_n) {
        for (int i = 0; i < nd->naggs; i++)
            st->ovals[o + i] = s_acc_result(&nd->aggs[i], &w->accs[i]);
        return sl_emit(&c->out, st->ovals);
    }
    for (int r = 0; r < w->ntop; r++) {
        sl_row_decode(c->in, w->top[r].row, st->tvals);
        int q = o;
        st->ovals[q++] = sl_value_int(r + 1);
        for (int f = 0; f < c->in->nfields; f++) {
            bool key = false;
            for (int j = 0; j < nk; j++)
                key = key || nd->keys[j] == f;
            if (!key)
                st->ovals[q++] = st->tvals[f];
        }
        int rc = sl_emit(&c->out, st->ovals);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* Heap backend: removes window idx of key slot k, keeping its accumulator
 * array for the next window (s_win_init), and the slot once it is empty. */
static void s_win_drop(const sl_plan_node_t *nd, s_win_state_t *st, int k, int idx)
{
    s_key_t *e = &st->keys[k];
    s_win_t *w = &e->wins[idx];
    if (w->accs && st->nspare < S_MAX_SPARE) {
        for (int i = 0; i < nd->naggs; i++)
            s_acc_free(&w->accs[i]);
        st->spare[st->nspare++] = w->accs;
        w->accs = NULL;
    }
    s_win_remove(nd, e, idx);
    s_key_release(st, k);
}

/* ---- panes ------------------------------------------------------------------------ */

static int s_add_to(sl_opctx_t *c, s_win_state_t *st, s_win_t *w, const uint8_t *row, int64_t t);

/* Assembles window [end - size, end) of key e from its panes into st->comb;
 * false when no pane of the key is in it. */
static bool s_pane_window(const sl_plan_node_t *nd, s_win_state_t *st, const s_key_t *e,
                          int64_t end)
{
    memset(st->comb, 0, (size_t)nd->naggs * sizeof *st->comb);
    bool any = false;
    for (int i = 0; i < e->nwins; i++) {
        const s_win_t *w = &e->wins[i];
        if (w->start < end - nd->win.size || w->start >= end)
            continue;
        any = true;
        for (int g = 0; g < nd->naggs; g++)
            s_acc_fold(&nd->aggs[g], &st->comb[g], &w->accs[g]);
    }
    return any;
}

/* Emits window [end - size, end) of key slot k, assembled from its panes. */
static int s_pane_emit(sl_opctx_t *c, s_win_state_t *st, int k, int64_t end)
{
    const s_key_t *e = &st->keys[k];
    if (!s_pane_window(c->node, st, e, end))
        return SL_OK;
    s_win_t w = {.start = end - c->node->win.size, .end = end, .accs = st->comb};
    return s_emit_window(c, st, e, &w);
}

/* Adds a record (event time t, not late) of key slot k to its pane. A new
 * pane times each of its windows that no other pane of the key has timed
 * (one not fired yet), and its own drop when lateness keeps it past the
 * firing of its last window; then every window of the pane fired already
 * but kept for lateness emits its update at once, latest first (as the
 * windows do). */
static int s_pane_record(sl_opctx_t *c, s_win_state_t *st, int k, const uint8_t *row, int64_t t,
                         int64_t clock)
{
    const sl_plan_node_t *nd = c->node;
    const sl_window_cfg_t *wc = &nd->win;
    int64_t p = t - (((t % wc->slide) + wc->slide) % wc->slide);
    s_key_t *e = &st->keys[k];
    s_win_t *w = NULL;
    for (int i = 0; i < e->nwins && !w; i++)
        if (e->wins[i].start == p)
            w = &e->wins[i];
    int rc;
    if (!w) {
        for (int64_t end = p + wc->slide; end <= p + wc->size; end += wc->slide) {
            if (end - 1 <= clock)
                continue; /* fired: emitted below */
            bool timed = false;
            for (int i = 0; i < e->nwins && !timed; i++)
                timed = e->wins[i].start >= end - wc->size && e->wins[i].start < end;
            if (!timed && (rc = s_timer_add(st, end - 1, (uint64_t)end, k, false)) != SL_OK)
                return rc;
        }
        if ((wc->lateness || p + wc->size - 1 <= clock) &&
            (rc = s_timer_add(st, p + wc->size - 1 + wc->lateness, (uint64_t)p, k, true)) != SL_OK)
            return rc;
        if ((rc = s_win_add(nd, st, k, p, p + wc->slide, &w)) != SL_OK)
            return rc;
    }
    if ((rc = s_add_to(c, st, w, row, t)) != SL_OK)
        return rc;
    for (int64_t end = p + wc->size; end > p; end -= wc->slide) {
        if (end - 1 + wc->lateness <= clock)
            break; /* this and earlier windows were dropped */
        if (end - 1 <= clock && (rc = s_pane_emit(c, st, k, end)) != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* A due timer of the panes of key slot tm->key: fires the window ending at
 * tm->id (and without lateness drops its first pane, which no later
 * window holds), or drops the pane starting at tm->id. */
static int s_pane_timer(sl_opctx_t *c, s_win_state_t *st, const s_timer_t *tm)
{
    const sl_plan_node_t *nd = c->node;
    s_key_t *e = &st->keys[tm->key];
    if (!e->used || e->hash != tm->hash)
        return SL_OK; /* not expected: a key's panes outlive their timers */
    int64_t at = (int64_t)tm->id;
    if (!tm->drop) {
        int rc = s_pane_emit(c, st, tm->key, at);
        if (rc || nd->win.lateness)
            return rc;
        at -= nd->win.size;
    }
    for (int i = 0; i < e->nwins; i++)
        if (e->wins[i].start == at) {
            s_win_drop(nd, st, tm->key, i);
            break;
        }
    return SL_OK;
}

static int s_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The ends of the windows of key e alive at clock wm (a pane in them, not
 * dropped), ascending and distinct, in st->ends; their count, or -1 when
 * out of memory. */
static long s_pane_ends(const sl_plan_node_t *nd, s_win_state_t *st, const s_key_t *e, int64_t wm)
{
    const sl_window_cfg_t *wc = &nd->win;
    size_t n = 0, need = (size_t)e->nwins * (size_t)(wc->size / wc->slide);
    if (need > st->capends) {
        int64_t *p = realloc(st->ends, need * sizeof *p);
        if (!p)
            return -1;
        st->ends = p;
        st->capends = need;
    }
    for (int i = 0; i < e->nwins; i++)
        for (int64_t end = e->wins[i].start + wc->slide; end <= e->wins[i].start + wc->size;
             end += wc->slide)
            if (end - 1 + wc->lateness > wm)
                st->ends[n++] = end;
    qsort(st->ends, n, sizeof *st->ends, s_i64_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || st->ends[u - 1] != st->ends[i])
            st->ends[u++] = st->ends[i];
    return (long)u;
}

/* Due timers in time order; equal times by key slot, then window, so that
 * the windows of one instant are visited in the order of their keys in
 * memory rather than in the heap's. */
static int s_due_cmp(const void *a, const void *b)
{
    const s_timer_t *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* s_fire_until for the heap backend: takes every due timer off the heap
 * first (firing adds only timers after `now`), sorts them, then fires or
 * drops their windows. */
static int s_fire_heap(sl_opctx_t *c, s_win_state_t *st, int64_t now)
{
    const sl_plan_node_t *nd = c->node;
    size_t n = 0;
    while (st->nheap && st->heap[0].time <= now) {
        if (n == st->capdue) {
            size_t cap = st->capdue ? st->capdue * 2 : 1024;
            s_timer_t *d = realloc(st->due, cap * sizeof *d);
            if (!d)
                return SL_NOMEM;
            st->due = d;
            st->capdue = cap;
        }
        st->due[n++] = s_heap_pop(st);
    }
    if (!st->spare && !nd->win.top_n && !(st->spare = malloc(S_MAX_SPARE * sizeof *st->spare)))
        return SL_NOMEM;
    if (n > 1)
        qsort(st->due, n, sizeof *st->due, s_due_cmp);
    for (size_t i = 0; i < n; i++) {
        const s_timer_t *tm = &st->due[i];
        if (st->panes) {
            int rc = s_pane_timer(c, st, tm);
            if (rc)
                return rc;
            continue;
        }
        s_key_t *e = &st->keys[tm->key];
        int idx;
        s_win_t *w = e->used ? s_win_find(e, tm->id, &idx) : NULL;
        if (!w)
            continue; /* gone, merged away */
        int64_t fire_at = w->end - 1, drop_at = w->end - 1 + nd->win.lateness;
        if (tm->time != (tm->drop ? drop_at : fire_at))
            continue; /* a session that grew: a newer timer exists */
        if (!tm->drop) {
            int rc = s_emit_window(c, st, e, w);
            if (rc)
                return rc;
            if (drop_at > fire_at && drop_at > now) {
                if ((rc = s_timer_add(st, drop_at, w->id, tm->key, true)) != SL_OK)
                    return rc;
                continue;
            }
        }
        if (st->spare)
            s_win_drop(nd, st, tm->key, idx);
        else {
            s_win_remove(nd, e, idx);
            s_key_release(st, tm->key);
        }
    }
    return SL_OK;
}

/* Fires or drops windows whose timers are due at `now` (the watermark, or
 * the wall clock - 1). */
static int s_fire_until(sl_opctx_t *c, int64_t now)
{
    s_win_state_t *st = c->state;
    const sl_plan_node_t *nd = c->node;
    if (!st->rocks)
        return s_fire_heap(c, st, now);
    int rc = s_rocks_timers(st);
    while (rc == SL_OK && st->nheap && st->heap[0].time <= now) {
        s_timer_t tm = s_heap_pop(st);
        if (st->rocks) {
            rc = s_key_get(st, tm.hash, tm.kb, tm.klen, &tm.key);
            free(tm.kb);
            if (rc)
                break;
        }
        s_key_t *e = &st->keys[tm.key];
        int idx;
        s_win_t *w = e->used ? s_win_find(e, tm.id, &idx) : NULL;
        if (!w)
            continue; /* gone, merged away */
        int64_t fire_at = w->end - 1, drop_at = w->end - 1 + nd->win.lateness;
        if (!tm.drop && tm.time != fire_at)
            continue; /* a session that grew: a newer timer exists */
        if (tm.drop && tm.time != drop_at)
            continue;
        if (!tm.drop) {
            if ((rc = s_emit_window(c, st, e, w)) != SL_OK)
                break;
            if (drop_at > fire_at && drop_at > now) {
                rc = s_timer_add(st, drop_at, w->id, tm.key, true);
                continue;
            }
        }
        s_win_remove(nd, e, idx);
        s_key_release(st, tm.key);
    }
    return rc ? rc : s_rocks_flush(st);
}

/* ---- records ----------------------------------------------------------------------- */

static int s_add_to(sl_opctx_t *c, s_win_state_t *st, s_win_t *w, const uint8_t *row, int64_t t)
{
    const sl_plan_node_t *nd = c->node;
    if (nd->win.top_n) {
        sl_value_t by;
        int rc = sl_expr_eval(nd->win.top_by, st->vals, c->arena, &by);
        if (rc)
            return rc;
        return s_top_add(w, nd->win.top_n, &by, row, sl_row_len(row));
    }
    for (int i = 0; i < nd->naggs; i++) {
        const sl_agg_t *ag = &nd->aggs[i];
        sl_value_t none = sl_value_null();
        int rc = s_acc_add(ag, &w->accs[i], ag->field >= 0 ? &st->vals[ag->field] : &none, t);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* Merges window b into a (same key; sessions). */
static int s_win_merge(const sl_plan_node_t *nd, s_win_t *a, s_win_t *b)
{
    if (b->start < a->start)
        a->start = b->start;
    if (b->end > a->end)
        a->end = b->end;
    a->fired = a->fired || b->fired;
    if (nd->win.top_n) {
        for (int i = 0; i < b->ntop; i++) {
            int rc = s_top_add(a, nd->win.top_n, &b->top[i].by, b->top[i].row, b->top[i].len);
            if (rc)
                return rc;
        }
        return SL_OK;
    }
    for (int i = 0; i < nd->naggs; i++) {
        int rc = s_acc_merge(&nd->aggs[i], &a->accs[i], &b->accs[i]);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* After a window w (of key k) got a record: a fired window emits its update
 * now; a new or grown one gets its fire timer. */
static int s_after_add(sl_opctx_t *c, s_win_state_t *st, int k, s_win_t *w, bool changed_end,
                       int64_t clock)
{
    if (w->end - 1 <= clock) {
        /* A late-but-allowed update: emit at once; a window that is new or
         * grew needs the timer that drops it. */
        int rc = s_emit_window(c, st, &st->keys[k], w);
        if (rc || !changed_end)
            return rc;
        return s_timer_add(st, w->end - 1 + c->node->win.lateness, w->id, k, true);
    }
    if (!changed_end)
        return SL_OK;
    return s_timer_add(st, w->end - 1, w->id, k, false);
}

/* A late record: counted, and to the side output when there is one. */
static int s_late(sl_opctx_t *c, const uint8_t *row)
{
    atomic_fetch_add_explicit(&c->records_late, 1, memory_order_relaxed);
    return c->side.batch ? sl_emit_raw(&c->side, row, sl_row_len(row)) : SL_OK;
}

static int s_record(sl_opctx_t *c, s_win_state_t *st, const uint8_t *row, int64_t clock)
{
    const sl_plan_node_t *nd = c->node;
    const sl_window_cfg_t *wc = &nd->win;
    for (int i = 0; i < st->nneed; i++) /* only the time, the keys, the aggregated or ranking */
        sl_row_get(c->in, row, st->need[i], &st->vals[st->need[i]]);
    int64_t t;
    if (wc->processing)
        t = clock + 1;
    else {
        const sl_value_t *tv = &st->vals[wc->time_field];
        if (tv->is_null) {
            atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
            return SL_OK; /* no event time: counted as an error, skipped */
        }
        if (tv->u.i < -SL_TIME_LIMIT || tv->u.i > SL_TIME_LIMIT) {
            atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
            return SL_OK; /* beyond any calendar: counted as an error, skipped */
        }
        t = sl_time_adjusted(tv->u.i, wc->time_adj);
    }
    /* Late: every window of the record was dropped already. A session
     * record whose own window [t, t + gap) was is late only when no window
     * of its key alive overlaps that one: otherwise it merges into it, as
     * a record inside a session still open does. */
    int64_t last_end = wc->type == SL_WIN_SESSION
                           ? t + wc->gap
                           : t - (((t % wc->slide) + wc->slide) % wc->slide) + wc->size;
    bool late = !wc->processing && last_end - 1 + wc->lateness <= clock;
    if (late && wc->type != SL_WIN_SESSION)
        return s_late(c, row);
    for (int i = 0; i < nd->nkeys; i++)
        st->kvals[i] = st->vals[nd->keys[i]];
    uint64_t h = sl_value_hash(st->kvals, nd->nkeys);
    int k = st->ikey ? s_key_find_int(st, h, &st->kvals[0]) : -1, rc;
    if (k < 0 && late && st->ikey)
        return s_late(c, row); /* no window of the key */
    if (k < 0) {
        size_t klen = sl_row_size(st->kschema, st->kvals);
        uint8_t *kbuf = sl_arena_alloc(c->arena, klen);
        if (!kbuf)
            return SL_NOMEM;
        sl_row_encode(st->kschema, st->kvals, kbuf);
        if ((rc = s_key_get(st, h, kbuf, (uint32_t)klen, &k)) != SL_OK)
            return rc;
    }
    if (late) { /* a session record: does it join a window alive? */
        const s_key_t *e = &st->keys[k];
        bool joins = false;
        for (int i = 0; i < e->nwins && !joins; i++)
            joins = e->wins[i].start < last_end && t < e->wins[i].end;
        if (!joins) {
            s_key_release(st, k);
            return s_late(c, row);
        }
    }
    if (st->panes)
        return s_pane_record(c, st, k, row, t, clock);
    if (wc->type != SL_WIN_SESSION) {
        int64_t first = t - (((t % wc->slide) + wc->slide) % wc->slide); /* latest start */
        for (int64_t s = first; s > t - wc->size; s -= wc->slide) {
            if (s + wc->size - 1 + wc->lateness <= clock)
                break; /* this and earlier windows were dropped */
            s_key_t *e = &st->keys[k];
            s_win_t *w = NULL;
            for (int i = 0; i < e->nwins && !w; i++)
                if (e->wins[i].start == s)
                    w = &e->wins[i];
            bool fresh = !w;
            if (fresh && (rc = s_win_add(nd, st, k, s, s + wc->size, &w)) != SL_OK)
                return rc;
            if ((rc = s_add_to(c, st, w, row, t)) != SL_OK ||
                (rc = s_after_add(c, st, k, w, fresh, clock)) != SL_OK)
                return rc;
        }
        return SL_OK;
    }
    /* Session: [t, t + gap) merges with every window of the key it overlaps. */
    s_key_t *e = &st->keys[k];
    int64_t ns = t, ne = t + wc->gap, old_end = 0;
    int into = -1;
    for (int i = 0; i < e->nwins; i++) {
        s_win_t *w = &e->wins[i];
        if (w->start < ne && ns < w->end) {
            if (into < 0) {
                into = i;
                old_end = w->end;
                if (ns < w->start)
                    w->start = ns;
                if (ne > w->end)
                    w->end = ne;
                /* the grown window may now overlap others: rescan */
                ns = w->start;
                ne = w->end;
                i = -1;
            } else if (i != into) {
                if ((rc = s_win_merge(nd, &e->wins[into], w)) != SL_OK)
                    return rc;
                ns = e->wins[into].start;
                ne = e->wins[into].end;
                s_win_free(nd, w);
                e->wins[i] = e->wins[--e->nwins];
                if (into == e->nwins)
                    into = i;
                i = -1;
            }
        }
    }
    s_win_t *w;
    if (into < 0) {
        if ((rc = s_win_add(nd, st, k, ns, ne, &w)) != SL_OK)
            return rc;
    } else
        w = &st->keys[k].wins[into];
    if ((rc = s_add_to(c, st, w, row, t)) != SL_OK)
        return rc;
    /* A fired session grown past the clock (a late record extends it) is
     * due again at its new end: not fired, so that a restore times it to
     * fire rather than to be dropped. */
    if (w->end - 1 > clock)
        w->fired = false;
    return s_after_add(c, st, k, w, into < 0 || w->end != old_end, clock);
}

/* ---- the operator -------------------------------------------------------------------- */

static int s_open(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    s_win_state_t *st = calloc(1, sizeof *st);
    if (!st)
        return SL_NOMEM;
    c->state = st;
    st->kschema = sl_schema_new();
    st->vals = calloc((size_t)c->in->nfields + 1, sizeof *st->vals);
    st->tvals = calloc((size_t)c->in->nfields + 1, sizeof *st->tvals);
    st->ovals = calloc((size_t)nd->out->nfields + 1, sizeof *st->ovals);
    st->kvals = calloc((size_t)nd->nkeys + 1, sizeof *st->kvals);
    st->wm_floor = SL_WM_MIN;
    st->c = c;
    sl_snap_w_init(&st->vbuf);
    if (!st->kschema || !st->vals || !st->tvals || !st->ovals || !st->kvals)
        return SL_NOMEM;
    if (sl_rstate_enabled(c)) {
        st->rocks = true;
        if (!(st->batch = sl_kv_batch_new()))
            return SL_NOMEM;
    }
    for (int i = 0; i < nd->nkeys; i++)
        if (sl_schema_add(st->kschema, c->in->fields[nd->keys[i]].name,
                          c->in->fields[nd->keys[i]].type) != SL_OK)
            return SL_NOMEM;
    st->need = calloc((size_t)c->in->nfields + 1, sizeof *st->need);
    bool *ranked = calloc((size_t)c->in->nfields + 1, sizeof *ranked);
    if (!st->need || !ranked) {
        free(ranked);
        return SL_NOMEM;
    }
    if (nd->win.top_n) /* the fields the ranking expression reads */
        sl_expr_fields(nd->win.top_by, ranked, c->in->nfields);
    for (int f = 0; f < c->in->nfields; f++) {
        bool used = f == nd->win.time_field || ranked[f];
        for (int i = 0; i < nd->nkeys; i++)
            used = used || nd->keys[i] == f;
        for (int i = 0; i < nd->naggs; i++)
            used = used || nd->aggs[i].field == f;
        if (used)
            st->need[st->nneed++] = f;
    }
    free(ranked);
    const sl_window_cfg_t *wc = &nd->win;
    st->ikey = !st->rocks && nd->nkeys == 1 &&
               (st->kschema->fields[0].type == SL_TYPE_INT64 ||
                st->kschema->fields[0].type == SL_TYPE_TIMESTAMP);
    st->panes = !st->rocks && !wc->top_n && !wc->processing && wc->type == SL_WIN_SLIDING &&
                wc->slide > 0 && wc->size > wc->slide && wc->size % wc->slide == 0;
    for (int i = 0; i < nd->naggs; i++)
        st->panes = st->panes && nd->aggs[i].fn != SL_AGG_COUNT_DISTINCT;
    if (st->panes && !(st->comb = calloc((size_t)nd->naggs + 1, sizeof *st->comb)))
        return SL_NOMEM;
    return s_rehash(st, 1024);
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_win_state_t *st = c->state;
    int64_t clock = c->node->win.processing ? sl_op_now_ms() - 1 : c->watermark;
    if (clock < st->wm_floor)
        clock = st->wm_floor;
    int rc = s_rocks_timers(st);
    if (rc == SL_OK && st->rocks)
        rc = s_rocks_prefetch(c, st, in);
    if (rc)
        return rc;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        rc = s_record(c, st, r, clock);
        if (rc)
            return c->err[0] && st->rocks
                       ? rc
                       : sl_op_fail(c, rc, "window '%s': %s", c->node->name, sl_strerror(rc));
    }
    return s_rocks_flush(st);
}

static int s_watermark(sl_opctx_t *c, int64_t wm)
{
    if (c->node->win.processing && wm != SL_WM_MAX)
        return SL_OK; /* processing time runs on the clock (tick) */
    return s_fire_until(c, wm == SL_WM_MAX ? SL_WM_MAX : wm);
}

static int s_tick(sl_opctx_t *c, int64_t now_ms)
{
    return c->node->win.processing ? s_fire_until(c, now_ms - 1) : SL_OK;
}

static int s_finish(sl_opctx_t *c)
{
    return s_fire_until(c, SL_WM_MAX); /* already done by the final watermark */
}

static void s_close(sl_opctx_t *c)
{
    s_win_state_t *st = c->state;
    if (!st)
        return;
    for (int k = 0; k < st->nkeys; k++) {
        s_key_t *e = &st->keys[k];
        for (int i = 0; i < e->nwins; i++)
            s_win_free(c->node, &e->wins[i]);
        free(e->wins);
        free(e->key);
    }
    free(st->keys);
    free(st->free_keys);
    free(st->buckets);
    for (size_t i = 0; i < st->nheap; i++)
        free(st->heap[i].kb);
    free(st->heap);
    free(st->due);
    for (int i = 0; i < st->nspare; i++)
        free(st->spare[i]);
    free(st->spare);
    free(st->comb);
    free(st->ends);
    sl_snap_w_free(&st->vbuf);
    sl_kv_batch_destroy(&st->batch);
    free(st->pend);
    free(st->mkg);
    free(st->mkeys);
    free(st->mklen);
    free(st->mvals);
    sl_rstate_close(&st->kv);
    free(st->vals);
    free(st->tvals);
    free(st->ovals);
    free(st->kvals);
    free(st->need);
    sl_schema_destroy(&st->kschema);
    free(st);
    c->state = NULL;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define S_SNAP_VERSION 1
#define S_SNAP_ROCKS 2            /* the rocksdb backend: shape, watermark, the store's handle */
#define S_SNAP_PANES 3            /* the heap backend with panes: keys with their panes */
#define S_SNAP_MAX_WINS (1 << 24) /* sanity bound on windows of one key */
#define S_TIME_BOUND (INT64_C(1) << 60) /* restored pane starts: beyond any calendar */

/* A window's content: the top rows (count; row bytes, ranking value) or
 * per aggregate: n, si, sd, has, v, t, distinct count and values. */
static void s_win_write(const sl_plan_node_t *nd, const s_win_t *win, sl_snap_w_t *w)
{
    if (nd->win.top_n) {
        sl_snap_u32(w, (uint32_t)win->ntop);
        for (int t = 0; t < win->ntop; t++) {
            sl_snap_bytes(w, win->top[t].row, win->top[t].len);
            sl_snap_value(w, &win->top[t].by);
        }
        return;
    }
    for (int g = 0; g < nd->naggs; g++) {
        const s_acc_t *a = &win->accs[g];
        sl_snap_i64(w, a->n);
        sl_snap_i64(w, a->si);
        sl_snap_f64(w, a->sd);
        sl_snap_u8(w, a->has ? 1 : 0);
        if (a->has) {
            sl_snap_value(w, &a->v);
            sl_snap_i64(w, a->t);
        }
        sl_snap_u32(w, a->set_n);
        for (uint32_t j = 0; j < a->set_cap; j++)
            if (a->set[j].type != SL_TYPE_NULL)
                sl_snap_value(w, &a->set[j]);
    }
}

static int s_pane_snapshot(sl_opctx_t *c, s_win_state_t *st, sl_snap_w_t *w);

/* Version, shape (nkeys, naggs, top_n), watermark, key count; per key: key
 * group (u32), key values, window count; per window: start, end, fired,
 * then the top rows (count; row bytes, ranking value) or per aggregate: n,
 * si, sd, has, v, t, distinct count and values. */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_win_state_t *st = c->state;
    const sl_plan_node_t *nd = c->node;
    sl_snap_u8(w, st->rocks ? S_SNAP_ROCKS : st->panes ? S_SNAP_PANES : S_SNAP_VERSION);
    sl_snap_u32(w, (uint32_t)nd->nkeys);
    sl_snap_u32(w, (uint32_t)nd->naggs);
    sl_snap_u32(w, (uint32_t)nd->win.top_n);
    /* the event-time clock (processing time needs none) */
    int64_t wm = c->watermark > st->wm_floor ? c->watermark : st->wm_floor;
    sl_snap_i64(w, nd->win.processing ? SL_WM_MIN : wm);
    if (st->rocks) {
        int rc = s_rocks_flush(st);
        if (rc == SL_OK)
            rc = s_kv(st);
        return rc ? rc : sl_rstate_snapshot(c, st->kv, w);
    }
    if (st->panes)
        return s_pane_snapshot(c, st, w);
    sl_snap_u64(w, (uint64_t)st->live);
    for (int k = 0; k < st->nkeys && !w->err; k++) {
        const s_key_t *e = &st->keys[k];
        if (!e->used)
            continue;
        sl_snap_u32(w, (uint32_t)sl_key_group(e->hash, c->plan->max_parallelism));
        sl_row_decode(st->kschema, e->key, st->kvals);
        for (int i = 0; i < nd->nkeys; i++)
            sl_snap_value(w, &st->kvals[i]);
        sl_snap_u32(w, (uint32_t)e->nwins);
        for (int i = 0; i < e->nwins; i++) {
            const s_win_t *win = &e->wins[i];
            sl_snap_i64(w, win->start);
            sl_snap_i64(w, win->end);
            sl_snap_u8(w, win->fired ? 1 : 0);
            s_win_write(nd, win, w);
        }
    }
    return w->err;
}

/* s_snapshot's keys with panes (version S_SNAP_PANES): key count; per
 * key: key group (u32), key values, pane count; per pane: its start, then
 * its accumulators as s_win_write writes them. Panes, not the windows
 * assembled from them, so that a restored instance combines the same
 * panes in the same order (double sums keep their bits). */
static int s_pane_snapshot(sl_opctx_t *c, s_win_state_t *st, sl_snap_w_t *w)
{
    const sl_plan_node_t *nd = c->node;
    sl_snap_u64(w, (uint64_t)st->live);
    for (int k = 0; k < st->nkeys && !w->err; k++) {
        const s_key_t *e = &st->keys[k];
        if (!e->used)
            continue;
        sl_snap_u32(w, (uint32_t)sl_key_group(e->hash, c->plan->max_parallelism));
        sl_row_decode(st->kschema, e->key, st->kvals);
        for (int i = 0; i < nd->nkeys; i++)
            sl_snap_value(w, &st->kvals[i]);
        sl_snap_u32(w, (uint32_t)e->nwins);
        for (int i = 0; i < e->nwins; i++) {
            sl_snap_i64(w, e->wins[i].start);
            s_win_write(nd, &e->wins[i], w);
        }
    }
    return w->err;
}

/* A value of a restored accumulator: non-null, of the type of the
 * aggregate's input field. */
static bool s_value_fits(const sl_opctx_t *c, const sl_agg_t *ag, const sl_value_t *v)
{
    return !v->is_null && ag->field >= 0 && v->type == c->in->fields[ag->field].type;
}

/* Reads one window's content into w (initialized by s_win_init). */
static int s_restore_win(sl_opctx_t *c, s_win_t *w, sl_snap_r_t *r)
{
    const sl_plan_node_t *nd = c->node;
    if (nd->win.top_n) {
        uint32_t ntop = sl_snap_get_u32(r);
        if (r->err || ntop > (uint32_t)nd->win.top_n)
            return SL_DATA;
        for (uint32_t t = 0; t < ntop; t++) {
            size_t len;
            const uint8_t *row = sl_snap_get_bytes(r, &len);
            sl_value_t by;
            sl_snap_get_value(r, &by);
            if (r->err || by.is_null || len < 4 || len > SL_ROW_MAX ||
                sl_row_check(c->in, row, len) != SL_OK || sl_row_len(row) != len)
                return SL_DATA;
            int rc = s_top_add(w, nd->win.top_n, &by, row, (uint32_t)len);
            if (rc)
                return rc;
        }
        return w->ntop == (int)ntop ? SL_OK : SL_DATA;
    }
    for (int g = 0; g < nd->naggs; g++) {
        const sl_agg_t *ag = &nd->aggs[g];
        s_acc_t *a = &w->accs[g];
        a->n = sl_snap_get_i64(r);
        a->si = sl_snap_get_i64(r);
        a->sd = sl_snap_get_f64(r);
        uint8_t has = sl_snap_get_u8(r);
        if (has == 1) {
            sl_value_t v;
            sl_snap_get_value(r, &v);
            int64_t t = sl_snap_get_i64(r);
            if (r->err || !s_value_fits(c, ag, &v))
                return SL_DATA;
            int rc = s_own(&a->v, &v);
            if (rc)
                return rc;
            a->has = true;
            a->t = t;
        }
        uint32_t nset = sl_snap_get_u32(r);
        if (r->err || has > 1 || a->n < 0 || (nset && ag->fn != SL_AGG_COUNT_DISTINCT) ||
            nset > r->left)
            return SL_DATA;
        for (uint32_t j = 0; j < nset; j++) {
            sl_value_t v;
            sl_snap_get_value(r, &v);
            if (r->err || !s_value_fits(c, ag, &v))
                return SL_DATA;
            int rc = s_set_add(a, &v);
            if (rc)
                return rc;
        }
        if (a->set_n != nset)
            return SL_DATA; /* a value twice */
    }
    return SL_OK;
}

/* The timer a restored window needs: a window not fired yet fires at
 * end - 1, a fired one (kept for lateness) is dropped at end - 1 + lateness. */
static int s_restore_timer(sl_opctx_t *c, s_win_state_t *st, int k, const s_win_t *w)
{
    int64_t t = w->end - 1 + (w->fired ? c->node->win.lateness : 0);
    return s_timer_add(st, t, w->id, k, w->fired);
}

/* ---- the rocksdb backend ---------------------------------------------------------- */

/* The store, opened (empty) at first use unless a restore made it. */
static int s_kv(s_win_state_t *st)
{
    return st->kv ? SL_OK : sl_rstate_open(st->c, &st->kv);
}

static int s_kv_fail(s_win_state_t *st, int rc, const char *what)
{
    return sl_op_fail(st->c, rc, "window '%s': %s: %s", st->c->node->name, what,
                      st->kv && sl_kv_errmsg(st->kv)[0] ? sl_kv_errmsg(st->kv) : sl_strerror(rc));
}

/* Decodes the stored value of key slot k: its windows. A value: window
 * count, then per window id, start, end, fired, then per window its
 * content (s_win_write). */
static int s_rocks_decode(s_win_state_t *st, int k, const void *val, size_t vlen)
{
    sl_opctx_t *c = st->c;
    const sl_plan_node_t *nd = c->node;
    int rc = SL_OK;
    st->keys[k].stored = true;
    sl_snap_r_t r;
    sl_snap_r_init(&r, val, vlen);
    uint32_t n = sl_snap_get_u32(&r);
    if (r.err || n > r.left / 25)
        return s_kv_fail(st, SL_DATA, "a value in the state store is corrupt");
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        uint64_t id = sl_snap_get_u64(&r);
        int64_t start = sl_snap_get_i64(&r), end = sl_snap_get_i64(&r);
        uint8_t fired = sl_snap_get_u8(&r);
        s_win_t *w;
        if (r.err || fired > 1 || start >= end)
            rc = SL_DATA;
        else if ((rc = s_win_add(nd, st, k, start, end, &w)) == SL_OK) {
            w->id = id;
            w->fired = fired;
        }
    }
    for (int i = 0; i < st->keys[k].nwins && rc == SL_OK; i++)
        rc = s_restore_win(c, &st->keys[k].wins[i], &r);
    if (rc == SL_OK && (r.err || r.left))
        rc = SL_DATA;
    if (rc)
        return s_kv_fail(st, rc, "a value in the state store is corrupt");
    return SL_OK;
}

/* Loads the windows of new key slot k from the store (none when absent);
 * while st->defer is set, notes k for s_rocks_prefetch instead. */
static int s_rocks_load(s_win_state_t *st, int k)
{
    if (st->defer) {
        if (st->npend == st->cappend) {
            int cap = st->cappend ? st->cappend * 2 : 256;
            int *p = realloc(st->pend, (size_t)cap * sizeof *p);
            if (!p)
                return SL_NOMEM;
            st->pend = p;
            st->cappend = cap;
        }
        st->pend[st->npend++] = k;
        return SL_OK;
    }
    int rc = s_kv(st);
    if (rc)
        return rc;
    s_key_t *e = &st->keys[k];
    const void *val;
    size_t vlen;
    uint16_t kg = (uint16_t)sl_key_group(e->hash, st->c->plan->max_parallelism);
    rc = sl_kv_get(st->kv, kg, e->key, e->klen, &val, &vlen);
    if (rc == SL_NOTFOUND)
        return SL_OK;
    if (rc)
        return s_kv_fail(st, rc, "cannot read state");
    return s_rocks_decode(st, k, val, vlen);
}

/* Makes the key slots of every record of in (of its key; loaded in one
 * multi-get), so that processing the records reads nothing more. A record
 * that turns out late or without a time only costs a slot, which the
 * write-back drops (no windows, not stored). */
static int s_rocks_prefetch(sl_opctx_t *c, s_win_state_t *st, const sl_batch_t *in)
{
    const sl_plan_node_t *nd = c->node;
    int rc = s_kv(st);
    st->defer = true;
    st->npend = 0;
    for (const uint8_t *r = sl_batch_first(in); r && rc == SL_OK; r = sl_batch_next(in, r)) {
        for (int i = 0; i < nd->nkeys; i++)
            sl_row_get(c->in, r, nd->keys[i], &st->kvals[i]);
        size_t klen = sl_row_size(st->kschema, st->kvals);
        uint8_t *kbuf = sl_arena_alloc(c->arena, klen);
        if (!kbuf) {
            rc = SL_NOMEM;
            break;
        }
        sl_row_encode(st->kschema, st->kvals, kbuf);
        int k;
        rc = s_key_get(st, sl_value_hash(st->kvals, nd->nkeys), kbuf, (uint32_t)klen, &k);
    }
    st->defer = false;
    int n = st->npend;
    if (rc || !n)
        return rc;
    if (n > st->capm) {
        int cap = st->capm ? st->capm : 256;
        while (cap < n)
            cap *= 2;
        uint16_t *g = realloc(st->mkg, (size_t)cap * sizeof *g);
        if (g)
            st->mkg = g;
        const void **ks = realloc(st->mkeys, (size_t)cap * sizeof *ks);
        if (ks)
            st->mkeys = ks;
        size_t *l = realloc(st->mklen, (size_t)cap * sizeof *l);
        if (l)
            st->mklen = l;
        sl_kv_value_t *v = realloc(st->mvals, (size_t)cap * sizeof *v);
        if (v)
            st->mvals = v;
        if (!g || !ks || !l || !v)
            return SL_NOMEM;
        st->capm = cap;
    }
    for (int i = 0; i < n; i++) {
        const s_key_t *e = &st->keys[st->pend[i]];
        st->mkg[i] = (uint16_t)sl_key_group(e->hash, c->plan->max_parallelism);
        st->mkeys[i] = e->key;
        st->mklen[i] = e->klen;
    }
    rc = sl_kv_multi_get(st->kv, (size_t)n, st->mkg, st->mkeys, st->mklen, st->mvals);
    if (rc)
        return s_kv_fail(st, rc, "cannot read state");
    for (int i = 0; i < n && rc == SL_OK; i++)
        if (st->mvals[i].found)
            rc = s_rocks_decode(st, st->pend[i], st->mvals[i].val, st->mvals[i].len);
    return rc;
}

/* Writes every key slot back to the store (a key without windows is
 * deleted) and empties the table. */
static int s_rocks_flush(s_win_state_t *st)
{
    if (!st->rocks)
        return SL_OK;
    const sl_plan_node_t *nd = st->c->node;
    int rc = SL_OK;
    for (int k = 0; k < st->nkeys && rc == SL_OK; k++) {
        s_key_t *e = &st->keys[k];
        if (!e->used)
            continue;
        uint16_t kg = (uint16_t)sl_key_group(e->hash, st->c->plan->max_parallelism);
        if (!e->nwins) {
            if (e->stored)
                rc = sl_kv_batch_delete(st->batch, kg, e->key, e->klen);
            continue;
        }
        sl_snap_w_t *w = &st->vbuf;
        w->len = 0;
        sl_snap_u32(w, (uint32_t)e->nwins);
        for (int i = 0; i < e->nwins; i++) {
            sl_snap_u64(w, e->wins[i].id);
            sl_snap_i64(w, e->wins[i].start);
            sl_snap_i64(w, e->wins[i].end);
            sl_snap_u8(w, e->wins[i].fired ? 1 : 0);
        }
        for (int i = 0; i < e->nwins; i++)
            s_win_write(nd, &e->wins[i], w);
        rc = w->err ? w->err : sl_kv_batch_put(st->batch, kg, e->key, e->klen, w->data, w->len);
    }
    if (rc == SL_OK && sl_kv_batch_count(st->batch) && (rc = s_kv(st)) == SL_OK)
        rc = sl_kv_batch_commit(st->kv, st->batch);
    if (rc)
        return s_kv_fail(st, rc, "cannot write state");
    for (int k = 0; k < st->nkeys; k++) {
        s_key_t *e = &st->keys[k];
        for (int i = 0; i < e->nwins; i++)
            s_win_free(nd, &e->wins[i]);
        free(e->wins);
        free(e->key);
    }
    st->nkeys = st->nfree = st->live = 0;
    for (uint32_t i = 0; i < st->nbuckets; i++)
        st->buckets[i] = -1;
    return SL_OK;
}

/* After a restore: the timers of every window in the store (a window not
 * fired yet fires at end - 1, a fired one is dropped at end - 1 +
 * lateness), and window ids above every stored one. */
static int s_rocks_timers(s_win_state_t *st)
{
    if (!st->need_timers)
        return SL_OK;
    st->need_timers = false;
    sl_opctx_t *c = st->c;
    const sl_plan_node_t *nd = c->node;
    sl_kv_iter_t *it = NULL;
    int rc = s_kv(st);
    if (rc == SL_OK)
        rc = sl_kv_iter_new(st->kv, 0, SL_KV_MAX_KEY_GROUP, &it);
    sl_kv_entry_t e;
    while (rc == SL_OK && (rc = sl_kv_iter_next(it, &e)) == 1) {
        rc = SL_OK;
        if (e.key_len < 4 || e.key_len > UINT32_MAX ||
            sl_row_check(st->kschema, e.key, e.key_len) != SL_OK) {
            rc = SL_DATA;
            break;
        }
        sl_row_decode(st->kschema, e.key, st->kvals);
        uint64_t h = sl_value_hash(st->kvals, nd->nkeys);
        sl_snap_r_t r;
        sl_snap_r_init(&r, e.val, e.val_len);
        uint32_t n = sl_snap_get_u32(&r);
        for (uint32_t i = 0; i < n && rc == SL_OK && !r.err; i++) {
            uint64_t id = sl_snap_get_u64(&r);
            (void)sl_snap_get_i64(&r); /* start */
            int64_t end = sl_snap_get_i64(&r);
            bool fired = sl_snap_get_u8(&r) != 0;
            if (id > st->next_id)
                st->next_id = id;
            s_timer_t tm = {.time = end - 1 + (fired ? nd->win.lateness : 0),
                            .id = id,
                            .drop = fired,
                            .klen = (uint32_t)e.key_len,
                            .hash = h};
            if (!(tm.kb = malloc(e.key_len)))
                rc = SL_NOMEM;
            else {
                memcpy(tm.kb, e.key, e.key_len);
                if ((rc = s_heap_push(st, tm)) != SL_OK)
                    free(tm.kb);
            }
        }
        if (rc == SL_OK && r.err)
            rc = SL_DATA;
    }
    sl_kv_iter_destroy(&it);
    if (rc)
        return s_kv_fail(st, rc,
                         rc == SL_DATA ? "the state store is corrupt" : "cannot read state");
    return SL_OK;
}

/* After a restore of the panes of key slot k from a snapshot taken at
 * clock wm: with panes, the timers they need (each window alive not fired
 * yet fires at end - 1; with lateness each pane is dropped at its last
 * window's end - 1 + lateness, without, by that window's firing); without
 * panes (another backend), the windows alive at wm assembled from them
 * (s_pane_window's order of combination) with their timers. */
static int s_pane_restored(sl_opctx_t *c, s_win_state_t *st, int k, int64_t wm)
{
    const sl_plan_node_t *nd = c->node;
    const sl_window_cfg_t *wc = &nd->win;
    s_key_t *e = &st->keys[k];
    long n = s_pane_ends(nd, st, e, wm);
    if (n < 0)
        return SL_NOMEM;
    int rc = SL_OK;
    if (st->panes) {
        for (long i = 0; i < n && rc == SL_OK; i++)
            if (st->ends[i] - 1 > wm)
                rc = s_timer_add(st, st->ends[i] - 1, (uint64_t)st->ends[i], k, false);
        for (int i = 0; i < e->nwins && rc == SL_OK && wc->lateness; i++)
            rc = s_timer_add(st, e->wins[i].start + wc->size - 1 + wc->lateness,
                             (uint64_t)e->wins[i].start, k, true);
        return rc;
    }
    s_win_t *wins = calloc((size_t)n + 1, sizeof *wins);
    if (!wins)
        return SL_NOMEM;
    long made = 0;
    for (; made < n && rc == SL_OK; made++) {
        int64_t end = st->ends[made];
        s_win_t *w = &wins[made];
        if ((rc = s_win_init(nd, st, w, end - wc->size, end)) != SL_OK)
            break;
        w->fired = end - 1 <= wm;
        for (int i = 0; i < e->nwins && rc == SL_OK; i++)
            if (e->wins[i].start >= end - wc->size && e->wins[i].start < end)
                for (int g = 0; g < nd->naggs && rc == SL_OK; g++)
                    rc = s_acc_merge(&nd->aggs[g], &w->accs[g], &e->wins[i].accs[g]);
    }
    for (int i = 0; i < e->nwins; i++)
        s_win_free(nd, &e->wins[i]);
    free(e->wins);
    e->wins = wins;
    e->nwins = (int)made;
    e->capwins = (int)n + 1;
    for (int i = 0; i < e->nwins && rc == SL_OK; i++)
        rc = s_restore_timer(c, st, k, &e->wins[i]);
    return rc;
}

/* Reads nkeys keys of a snapshot (taken at clock wm) with their windows,
 * or with their panes when psnap (version S_SNAP_PANES). */
static int s_restore_keys(sl_opctx_t *c, s_win_state_t *st, sl_snap_r_t *r, uint64_t nkeys,
                          bool psnap, int64_t wm)
{
    const int64_t slide = c->node->win.slide;
    const sl_plan_node_t *nd = c->node;
    int maxp = c->plan->max_parallelism;
    uint8_t *kbuf = NULL;
    size_t kcap = 0;
    int rc = SL_OK;
    for (uint64_t n = 0; n < nkeys && rc == SL_OK; n++) {
        uint32_t kg = sl_snap_get_u32(r);
        for (int i = 0; i < nd->nkeys; i++) {
            sl_snap_get_value(r, &st->kvals[i]);
            if (!st->kvals[i].is_null && st->kvals[i].type != st->kschema->fields[i].type)
                r->err = SL_DATA;
        }
        uint32_t nwins = sl_snap_get_u32(r);
        uint64_t h = sl_value_hash(st->kvals, nd->nkeys);
        if (r->err || kg >= (uint32_t)maxp || (int)kg != sl_key_group(h, maxp) || nwins == 0 ||
            nwins > S_SNAP_MAX_WINS) {
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
            if ((rc = s_key_get(st, h, kbuf, (uint32_t)klen, &k)) != SL_OK)
                break;
            if (st->keys[k].nwins) {
                rc = SL_DATA; /* the same key twice */
                break;
            }
        }
        for (uint32_t i = 0; i < nwins && rc == SL_OK; i++) {
            int64_t start = sl_snap_get_i64(r), end;
            uint8_t fired = 0;
            if (psnap) { /* a pane: aligned to the slide, one per start */
                end = start + slide;
                bool dup = start % slide != 0 || start < -S_TIME_BOUND || start > S_TIME_BOUND;
                for (int q = 0; k >= 0 && q < st->keys[k].nwins && !dup; q++)
                    dup = st->keys[k].wins[q].start == start;
                if (dup) {
                    rc = SL_DATA;
                    break;
                }
            } else {
                end = sl_snap_get_i64(r);
                fired = sl_snap_get_u8(r);
            }
            if (r->err || fired > 1 || start >= end) {
                rc = SL_DATA;
                break;
            }
            s_win_t tmp, *w = &tmp;
            if (k >= 0)
                rc = s_win_add(nd, st, k, start, end, &w);
            else
                rc = s_win_init(nd, st, &tmp, start, end);
            if (rc == SL_OK) {
                w->fired = fired;
                rc = s_restore_win(c, w, r);
            }
            if (rc == SL_OK && k >= 0 && !psnap)
                rc = s_restore_timer(c, st, k, w);
            if (k < 0)
                s_win_free(nd, &tmp);
        }
        if (rc == SL_OK && k >= 0 && psnap)
            rc = s_pane_restored(c, st, k, wm);
        if (k >= 0 && st->keys[k].nwins == 0)
            s_key_release(st, k); /* its first window failed */
    }
    free(kbuf);
    return rc;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_win_state_t *st = c->state;
    const sl_plan_node_t *nd = c->node;
    uint8_t v = sl_snap_get_u8(r);
    uint32_t nkeys = sl_snap_get_u32(r), naggs = sl_snap_get_u32(r), top_n = sl_snap_get_u32(r);
    int64_t wm = sl_snap_get_i64(r);
    bool shape = nkeys == (uint32_t)nd->nkeys && naggs == (uint32_t)nd->naggs &&
                 top_n == (uint32_t)nd->win.top_n;
    int rc;
    if (v == S_SNAP_ROCKS && !r->err && shape) {
        if (!st->rocks)
            return sl_op_fail(c, SL_STATE,
                              "window '%s': the checkpoint keeps its state in rocksdb; the job "
                              "must use `state: {backend: rocksdb}` to restore it",
                              nd->name);
        if ((rc = sl_rstate_restore(c, &st->kv, r)) != SL_OK)
            return rc;
        st->need_timers = true;
        if (!st->restored || wm < st->wm_floor)
            st->wm_floor = wm;
        st->restored = true;
        return SL_OK;
    }
    /* panes: a sliding window of combinable aggregates (their slide) */
    const sl_window_cfg_t *wc = &nd->win;
    bool psnap = v == S_SNAP_PANES;
    if (psnap && (wc->type != SL_WIN_SLIDING || wc->top_n || wc->processing || wc->slide <= 0 ||
                  wc->size <= wc->slide || wc->size % wc->slide))
        shape = false;
    uint64_t n = sl_snap_get_u64(r);
    if (r->err || (v != S_SNAP_VERSION && !psnap) || !shape)
        return sl_op_fail(c, SL_DATA, "window '%s': not a snapshot of this operator", nd->name);
    if (v == S_SNAP_VERSION && st->panes) {
        /* windows cannot be split into panes: this instance runs on windows */
        if (st->live)
            return sl_op_fail(c, SL_DATA,
                              "window '%s': snapshots of panes and of windows mixed in one restore",
                              nd->name);
        st->panes = false;
    }
    rc = s_restore_keys(c, st, r, n, psnap, wm);
    if (rc == SL_OK && !r->err)
        rc = s_rocks_flush(st); /* a heap snapshot moves into the store */
    if (rc == SL_DATA || (rc == SL_OK && r->err))
        return sl_op_fail(c, SL_DATA, "window '%s': snapshot is truncated or corrupt", nd->name);
    if (rc)
        return sl_op_fail(c, rc, "window '%s': cannot restore: %s", nd->name, sl_strerror(rc));
    /* Several snapshots (a rescale): the input has seen at least the least
     * of their watermarks. */
    if (!st->restored || wm < st->wm_floor)
        st->wm_floor = wm;
    st->restored = true;
    return SL_OK;
}

const sl_op_vtable_t sl_op_window = {.open = s_open,
                                     .process = s_process,
                                     .finish = s_finish,
                                     .close = s_close,
                                     .watermark = s_watermark,
                                     .tick = s_tick,
                                     .snapshot = s_snapshot,
                                     .restore = s_restore};
