/* op_aggregate.c — running count/sum/min/max/avg per key.
 *
 * Every subtask owns the keys of its key groups (the edge into it is hash
 * partitioned), so its table is complete for those keys. On a bounded
 * input, finish() emits the final value of every key, in first-seen order.
 *
 * Keys are stored once, in a compact encoding (below), back to back in one
 * growing buffer, and listed in first-seen order by an entry array: memory
 * grows per new key, never per record. The lookup table is open addressing
 * (linear probing) over 32-byte slots, two per cache line, each holding the
 * high half of the key's hash, the entry index and, for keys of up to
 * S_INLINE bytes (most words, ids, small tuples), the whole key: a lookup
 * of such a key reads one slot and nothing else. Longer keys are compared
 * against the key buffer after their hash matched.
 *
 * Records are processed in groups of S_GROUP: the keys of a group are
 * hashed and their slots prefetched first, then looked up (prefetching
 * their accumulators), then aggregated, in record order, so cache misses
 * of different records overlap. Only the key and aggregated fields of a
 * row are read.
 *
 * The table hash is private to this operator (and independent of the key
 * groups, which depend on sl_value_hash).
 *
 * With `state: {backend: rocksdb}` the table is a write-back cache in
 * front of a RocksDB store (rocks_state.h), bounded in bytes by the job's
 * `state: {key_cache}`. An input batch is processed in three passes: every
 * record's key is looked up in the table (a key missing from it gets a new
 * entry, and is noted), then the noted keys are read from the store in one
 * batched multi-get (key group, then compact key) and their accumulators
 * loaded, then the records are aggregated. Entries changed since they were
 * last written are dirty: a snapshot writes the dirty entries to the store
 * in one write batch, sorted by key (radix sort; sorted inserts are cheap
 * for RocksDB's memtable), their keys and values first gathered in entry
 * order so that the sorted pass reads one place per entry, and keeps them
 * cached; once the table is over its budget after a
 * batch, the dirty entries are written the same way and the table is
 * emptied. finish() writes them (many: as one SST file ingested into the
 * store, sl_kv_sorted_begin) and emits every key of the store, in (key
 * group, key) order. Memory stays bounded by the cache and RocksDB's block
 * cache and write buffers.
 *
 * Checkpoints (off the hot path): the snapshot lists the entries in
 * first-seen order, each as its key group, its key values and its
 * accumulators (a string min/max by value); restore re-inserts the keys
 * whose key group this subtask owns, so a snapshot of any parallelism
 * restores into any other; the heap restore goes in groups like records
 * (decode, hash and prefetch a group's slots, then insert it). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* mmap(MAP_ANONYMOUS) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "operator.h"
#include "rocks_state.h"
#include "sluice/err.h"

/* Compact key encoding: a null bitmap of the key fields (ceil(nkeys / 8)
 * bytes, bit i set = key field i is null), then each non-null field:
 * int64, timestamp and double as their 8 bytes, bool as one byte 0 or 1,
 * string as a u32 length and its bytes, except a string that is the last
 * key field, whose length is what is left. Equal keys (as the row format
 * tells them apart: doubles by their bits) encode to equal bytes. */

#define S_INLINE 23        /* longest key held in a slot */
#define S_LONG 0xffu       /* slot length byte of a key held out of line */
#define S_GROUP 32         /* records hashed and prefetched ahead */
#define S_HUGE (2u << 20)  /* tables this large go in huge pages */
#define S_LOAD_NUM 3       /* the table grows past this load factor: slots */
#define S_LOAD_DEN 4       /* per key, so 1.33 to 2.67 slots per key */
#define S_DIRTY (1u << 31) /* rocksdb: s_entry_t.kg flag, changed since last written */
#define S_SORTED_MIN 4096  /* rocksdb: a last write-back this large goes in as an SST */

typedef struct {
    int64_t i;    /* int64 sum, int64/timestamp/bool min/max, string offset */
    double d;     /* double sum, min/max; avg sum */
    int64_t n;    /* values seen (count, avg denominator) */
    uint32_t len; /* string min/max length */
} s_acc_t;

typedef struct {
    uint64_t hash;    /* table hash of the key */
    uint64_t key_off; /* into keys */
    uint32_t key_len; /* encoded key length */
    uint32_t kg;      /* rocksdb: the key's key group, | S_DIRTY */
} s_entry_t;

/* rocksdb: an entry to write back, with a sort key. */
typedef struct {
    uint64_t order; /* key group, then the key's first bytes (big-endian) */
    uint64_t off;   /* its key, then its value, at s_agg_t.recs + off */
    uint32_t klen;  /* key bytes */
    uint32_t vlen;  /* value bytes */
} s_wb_t;

/* A table slot: 32 bytes, never straddles a cache line. */
typedef struct {
    uint32_t tag;  /* hash >> 32 */
    uint32_t idx;  /* entry index + 1; 0 = empty */
    uint64_t k[3]; /* byte 0: key length or S_LONG; then the key if inline,
                      zero padded (all zero after byte 0 for S_LONG) */
} s_slot_t;
_Static_assert(sizeof(s_slot_t) == 32, "two slots per cache line");

/* One record of a group in flight. */
typedef struct {
    const uint8_t *row; /* the input row */
    uint64_t hash;      /* table hash of its key */
    uint64_t blk[3];    /* its slot key block (see s_slot_t.k) */
    uint32_t klen;      /* encoded key length */
    uint32_t e;         /* entry index, once looked up */
} s_probe_t;

typedef struct {
    const sl_schema_t *in; /* input schema (borrowed from the context) */
    size_t in_fixed;       /* bytes before the variable part of an input row */
    size_t kbitmap;        /* bytes of the compact key's null bitmap */
    int str_key;           /* input field of a key that is one string, else -1 */
    sl_value_t *out;       /* output row */
    uint8_t *scratch;      /* encoded key of a long key */
    size_t scratch_cap;
    uint8_t *keys; /* all stored keys, back to back */
    size_t keys_len, keys_cap;
    char *strs; /* string min/max values */
    size_t strs_len, strs_cap;
    s_entry_t *entries;       /* insertion order */
    s_acc_t *accs;            /* naggs per entry */
    size_t n, cap;            /* entries used / allocated */
    size_t ecap;              /* entries allocated */
    s_slot_t *table;          /* 2^k slots */
    size_t tmask;             /* table size - 1 */
    s_probe_t group[S_GROUP]; /* records in flight */
    sl_kv_t *kv;              /* rocksdb backend: the store (NULL: heap backend) */
    sl_kv_batch_t *batch;     /* rocksdb: the write-back batch */
    sl_snap_w_t vbuf;         /* rocksdb: an encoded value */
    bool rocks;               /* the rocksdb backend */
    size_t cache_bytes;       /* rocksdb: the table's budget (state key_cache) */
    uint32_t *pend;           /* rocksdb: new entries to load from the store */
    size_t npend, pend_cap;
    const uint8_t **rows; /* rocksdb: the rows of the input batch */
    uint32_t *rowe;       /* and their entries */
    size_t rows_cap, rowe_cap;
    uint16_t *mkg; /* rocksdb multi-get: key groups, keys, lengths, values */
    const void **mkeys;
    size_t *mklen;
    sl_kv_value_t *mvals;
    size_t mkg_cap, mkeys_cap, mklen_cap, mvals_cap;
    s_wb_t *wb; /* rocksdb: entries being written back */
    size_t wb_cap;
    s_wb_t *wb2; /* rocksdb: the radix sort's other buffer */
    size_t wb2_cap;
    uint8_t *recs; /* rocksdb: keys and values being written back (huge pages) */
    size_t recs_len, recs_cap;
} s_agg_t;

/* A zeroed table of size slots. A large one is mapped fresh (the kernel
 * hands out zeroed pages: no memset, which touched every page once more)
 * and asked for in huge pages: its lookups are random, and would otherwise
 * miss the TLB as well. Freed with s_table_free. */
static s_slot_t *s_table_new(size_t size)
{
    size_t bytes = size * sizeof(s_slot_t);
    if (bytes >= S_HUGE) {
        /* S_HUGE-aligned: map one huge page more, unmap the ends */
        uint8_t *m =
            mmap(NULL, bytes + S_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        size_t head = (S_HUGE - (uintptr_t)m % S_HUGE) % S_HUGE;
        if (head)
            (void)munmap(m, head);
        if (S_HUGE - head)
            (void)munmap(m + head + bytes, S_HUGE - head);
        sl_mem_huge(m + head, bytes);
        return (s_slot_t *)(m + head);
    }
    void *t = aligned_alloc(64, bytes);
    if (t)
        memset(t, 0, bytes);
    return t;
}

static void s_table_free(s_slot_t *t, size_t size)
{
    size_t bytes = size * sizeof(s_slot_t);
    if (t && bytes >= S_HUGE)
        (void)munmap(t, bytes);
    else
        free(t);
}

static int s_open(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    s_agg_t *a = aligned_alloc(64, (sizeof *a + 63) / 64 * 64);
    if (!a)
        return SL_NOMEM;
    memset(a, 0, sizeof *a);
    c->state = a;
    a->in = c->in;
    a->in_fixed = 4 + ((size_t)c->in->nfields + 7) / 8 + 8 * (size_t)c->in->nfields;
    a->kbitmap = ((size_t)nd->nkeys + 7) / 8;
    a->str_key =
        nd->nkeys == 1 && c->in->fields[nd->keys[0]].type == SL_TYPE_STRING ? nd->keys[0] : -1;
    a->out = calloc((size_t)nd->out->nfields + 1, sizeof(sl_value_t));
    a->tmask = 1023;
    a->table = s_table_new(a->tmask + 1);
    if (!a->out || !a->table)
        return SL_NOMEM;
    sl_snap_w_init(&a->vbuf);
    if (sl_rstate_enabled(c)) {
        a->rocks = true;
        a->cache_bytes = (size_t)c->plan->spec->state_key_cache;
        if (!(a->batch = sl_kv_batch_new()))
            return SL_NOMEM;
    }
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    s_agg_t *a = c->state;
    if (!a)
        return;
    free(a->out);
    free(a->scratch);
    free(a->keys);
    free(a->strs);
    free(a->entries);
    free(a->accs);
    s_table_free(a->table, a->tmask + 1);
    sl_snap_w_free(&a->vbuf);
    free(a->pend);
    free(a->rows);
    free(a->rowe);
    free(a->mkg);
    free(a->mkeys);
    free(a->mklen);
    free(a->mvals);
    free(a->wb);
    free(a->wb2);
    free(a->recs);
    sl_kv_batch_destroy(&a->batch);
    sl_rstate_close(&a->kv);
    free(a);
    c->state = NULL;
}

/* ---- reading input rows (layout in sluice/row.h) ------------------------ */

static inline bool s_is_null(const uint8_t *row, int i)
{
    return (row[4 + i / 8] >> (i % 8)) & 1u;
}

static inline const uint8_t *s_slot_of(const s_agg_t *a, const uint8_t *row, int i)
{
    return row + a->in_fixed - 8u * (size_t)(a->in->nfields - i);
}

/* ---- compact keys --------------------------------------------------------- */

/* Length of the compact key of row. */
static size_t s_key_len(const s_agg_t *a, const sl_plan_node_t *nd, const uint8_t *row)
{
    size_t len = a->kbitmap;
    for (int k = 0; k < nd->nkeys; k++) {
        int f = nd->keys[k];
        if (s_is_null(row, f))
            continue;
        switch (a->in->fields[f].type) {
        case SL_TYPE_STRING: {
            uint32_t sl;
            memcpy(&sl, s_slot_of(a, row, f) + 4, 4);
            len += sl + (k + 1 < nd->nkeys ? 4u : 0u);
            break;
        }
        case SL_TYPE_BOOL:
            len += 1;
            break;
        default:
            len += 8;
            break;
        }
    }
    return len;
}

/* Writes the compact key of row into dst (s_key_len bytes; the bitmap
 * bytes are zeroed first). */
static void s_key_write(const s_agg_t *a, const sl_plan_node_t *nd, const uint8_t *row,
                        uint8_t *dst)
{
    uint8_t *p = dst + a->kbitmap;
    for (size_t i = 0; i < a->kbitmap; i++)
        dst[i] = 0;
    for (int k = 0; k < nd->nkeys; k++) {
        int f = nd->keys[k];
        if (s_is_null(row, f)) {
            dst[k / 8] |= (uint8_t)(1u << (k % 8));
            continue;
        }
        const uint8_t *slot = s_slot_of(a, row, f);
        switch (a->in->fields[f].type) {
        case SL_TYPE_STRING: {
            uint32_t off, sl;
            memcpy(&off, slot, 4);
            memcpy(&sl, slot + 4, 4);
            if (k + 1 < nd->nkeys) {
                memcpy(p, &sl, 4);
                p += 4;
            }
            if (sl)
                memcpy(p, row + off, sl);
            p += sl;
            break;
        }
        case SL_TYPE_BOOL: {
            uint64_t b;
            memcpy(&b, slot, 8);
            *p++ = b != 0;
            break;
        }
        default:
            memcpy(p, slot, 8);
            p += 8;
            break;
        }
    }
}

/* Decodes a compact key into vals[nkeys] (as sl_row_decode would have
 * decoded the key's row); strings point into key. */
static void s_key_read(const sl_plan_node_t *nd, const sl_schema_t *in, const uint8_t *key,
                       size_t len, size_t kbitmap, sl_value_t *vals)
{
    const uint8_t *p = key + kbitmap, *end = key + len;
    for (int k = 0; k < nd->nkeys; k++) {
        sl_value_t *v = &vals[k];
        sl_type_t t = in->fields[nd->keys[k]].type;
        v->type = t;
        v->len = 0;
        v->u.i = 0;
        v->is_null = (key[k / 8] >> (k % 8)) & 1u;
        if (v->is_null)
            continue;
        switch (t) {
        case SL_TYPE_STRING: {
            uint32_t sl = (uint32_t)(end - p);
            if (k + 1 < nd->nkeys) {
                memcpy(&sl, p, 4);
                p += 4;
            }
            v->u.s = (const char *)p;
            v->len = sl;
            p += sl;
            break;
        }
        case SL_TYPE_BOOL:
            v->u.b = *p++ != 0;
            break;
        case SL_TYPE_DOUBLE:
            memcpy(&v->u.d, p, 8);
            p += 8;
            break;
        default:
            memcpy(&v->u.i, p, 8);
            p += 8;
            break;
        }
    }
}

/* ---- the table ------------------------------------------------------------ */

static inline uint64_t s_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Hash of an inline key: the words of its slot block that hold it. */
static inline uint64_t s_hash_block(const uint64_t *blk, uint32_t klen)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    size_t nw = (klen + 8) / 8; /* length byte + key */
    for (size_t w = 0; w < nw; w++) {
        h = (h ^ blk[w]) * 0x9fb21c651e98df25ull;
        h ^= h >> 29;
    }
    return s_mix(h);
}

/* Hash of a long key (len bytes). */
static uint64_t s_hash_bytes(const uint8_t *p, size_t len)
{
    uint64_t h = 0x6a09e667f3bcc909ull ^ (len * 0x9e3779b97f4a7c15ull);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x9fb21c651e98df25ull;
    return s_mix(h);
}

static bool s_acc_is_str(const sl_agg_t *ag)
{
    return (ag->fn == SL_AGG_MIN || ag->fn == SL_AGG_MAX) && ag->out == SL_TYPE_STRING;
}

/* ---- the rocksdb backend ---------------------------------------------------- */

/* A store value: per aggregate n, i (a string min/max: its bytes) and d. */
static void s_acc_encode(const sl_plan_node_t *nd, const s_agg_t *a, const s_acc_t *acc,
                         sl_snap_w_t *w)
{
    w->len = 0;
    for (int g = 0; g < nd->naggs; g++) {
        sl_snap_i64(w, acc[g].n);
        if (s_acc_is_str(&nd->aggs[g]))
            sl_snap_bytes(w, acc[g].n ? a->strs + acc[g].i : "", acc[g].n ? acc[g].len : 0);
        else
            sl_snap_i64(w, acc[g].i);
        sl_snap_f64(w, acc[g].d);
    }
}

/* Decodes a store value into acc[naggs] (strings appended to a->strs). */
static int s_acc_decode(sl_opctx_t *c, s_agg_t *a, const void *val, size_t vlen, s_acc_t *acc)
{
    const sl_plan_node_t *nd = c->node;
    sl_snap_r_t r;
    sl_snap_r_init(&r, val, vlen);
    for (int g = 0; g < nd->naggs; g++) {
        acc[g] = (s_acc_t){.n = sl_snap_get_i64(&r)};
        if (s_acc_is_str(&nd->aggs[g])) {
            size_t slen = 0;
            const uint8_t *str = sl_snap_get_bytes(&r, &slen);
            if (r.err)
                break;
            if (sl_grow((void **)&a->strs, &a->strs_cap, a->strs_len + slen + 1, 1))
                return SL_NOMEM;
            if (slen)
                memcpy(a->strs + a->strs_len, str, slen);
            acc[g].i = (int64_t)a->strs_len;
            acc[g].len = (uint32_t)slen;
            a->strs_len += slen;
        } else
            acc[g].i = sl_snap_get_i64(&r);
        acc[g].d = sl_snap_get_f64(&r);
        if (acc[g].n < 0)
            r.err = SL_DATA;
    }
    if (r.err || r.left)
        return sl_op_fail(c, SL_DATA, "aggregate '%s': a value in the state store is corrupt",
                          nd->name);
    return SL_OK;
}

/* rocksdb: the store, opened (empty) at first use unless a restore made it. */
static int s_kv(sl_opctx_t *c, s_agg_t *a)
{
    return a->kv ? SL_OK : sl_rstate_open(c, &a->kv);
}

/* rocksdb: sets the key group of new entry e (its key is in a->keys) and
 * notes it for s_rocks_load (its accumulators are zero until then). */
static int s_rocks_note(sl_opctx_t *c, s_agg_t *a, uint32_t e, const uint8_t *key)
{
    const sl_plan_node_t *nd = c->node;
    s_entry_t *en = &a->entries[e];
    s_key_read(nd, a->in, key, en->key_len, a->kbitmap, a->out);
    en->kg = (uint32_t)sl_key_group(sl_value_hash(a->out, nd->nkeys), c->plan->max_parallelism);
    if (sl_grow((void **)&a->pend, &a->pend_cap, a->npend + 1, sizeof *a->pend))
        return SL_NOMEM;
    a->pend[a->npend++] = e;
    return SL_OK;
}

/* rocksdb: loads the accumulators of the noted entries from the store, in
 * one multi-get (an absent key keeps zero accumulators). */
static int s_rocks_load(sl_opctx_t *c, s_agg_t *a)
{
    const sl_plan_node_t *nd = c->node;
    size_t n = a->npend;
    if (!n)
        return SL_OK;
    int rc = s_kv(c, a);
    if (rc)
        return rc;
    if (sl_grow((void **)&a->mkg, &a->mkg_cap, n, sizeof *a->mkg) ||
        sl_grow((void **)&a->mkeys, &a->mkeys_cap, n, sizeof *a->mkeys) ||
        sl_grow((void **)&a->mklen, &a->mklen_cap, n, sizeof *a->mklen) ||
        sl_grow((void **)&a->mvals, &a->mvals_cap, n, sizeof *a->mvals))
        return SL_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const s_entry_t *en = &a->entries[a->pend[i]];
        a->mkg[i] = (uint16_t)en->kg;
        a->mkeys[i] = a->keys + en->key_off;
        a->mklen[i] = en->key_len;
    }
    a->npend = 0;
    rc = sl_kv_multi_get(a->kv, n, a->mkg, a->mkeys, a->mklen, a->mvals);
    if (rc)
        return sl_op_fail(c, rc, "aggregate '%s': cannot read state: %s", nd->name,
                          sl_kv_errmsg(a->kv));
    for (size_t i = 0; i < n && rc == SL_OK; i++)
        if (a->mvals[i].found)
            rc = s_acc_decode(c, a, a->mvals[i].val, a->mvals[i].len,
                              &a->accs[(size_t)a->pend[i] * (size_t)nd->naggs]);
    return rc;
}

/* rocksdb: bytes the table holds (its budget is a->cache_bytes). */
static size_t s_rocks_bytes(const sl_plan_node_t *nd, const s_agg_t *a)
{
    return a->n * (sizeof(s_entry_t) + (size_t)nd->naggs * sizeof(s_acc_t)) +
           (a->tmask + 1) * sizeof(s_slot_t) + a->keys_len + a->strs_len;
}

/* rocksdb: the stored order (sluice/kvstate.h: key group, then the key's
 * bytes, a key before its extensions) of the records of p and q. */
static int s_wb_cmp(const s_agg_t *a, const s_wb_t *p, const s_wb_t *q)
{
    if (p->order != q->order)
        return p->order < q->order ? -1 : 1;
    size_t n = p->klen < q->klen ? p->klen : q->klen;
    int d = n ? memcmp(a->recs + p->off, a->recs + q->off, n) : 0;
    return d ? d : (p->klen > q->klen) - (p->klen < q->klen);
}

/* rocksdb: the table whose records s_wb_qcmp compares (qsort has no
 * argument for it; each task thread sorts its own). */
static _Thread_local const s_agg_t *s_wb_ctx;

static int s_wb_qcmp(const void *x, const void *y)
{
    return s_wb_cmp(s_wb_ctx, x, y);
}

/* rocksdb: sorts a->wb[0..n) into the stored order: an LSD radix sort of
 * .order (one pass per byte that is not the same in all of them), then
 * runs of equal .order (keys alike in their first 6 bytes) by the whole
 * key. .order agrees with the stored order where it differs. */
static int s_wb_sort(s_agg_t *a, size_t n)
{
    if (sl_grow((void **)&a->wb2, &a->wb2_cap, n, sizeof *a->wb2))
        return SL_NOMEM;
    size_t cnt[8][256] = {{0}}; /* byte histograms, then positions */
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            cnt[b][(a->wb[i].order >> (8 * b)) & 0xff]++;
    s_wb_t *src = a->wb, *dst = a->wb2;
    for (int b = 0; b < 8; b++) {
        if (cnt[b][(src[0].order >> (8 * b)) & 0xff] == n)
            continue; /* the same byte everywhere */
        size_t pos = 0;
        for (int v = 0; v < 256; v++) {
            size_t k = cnt[b][v];
            cnt[b][v] = pos;
            pos += k;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[b][(src[i].order >> (8 * b)) & 0xff]++] = src[i];
        s_wb_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a->wb)
        memcpy(a->wb, src, n * sizeof *a->wb);
    s_wb_ctx = a;
    for (size_t i = 0, j; i < n; i = j) { /* runs of equal .order, by key */
        for (j = i + 1; j < n && a->wb[j].order == a->wb[i].order; j++)
            ;
        if (j - i > 1)
            qsort(a->wb + i, j - i, sizeof *a->wb, s_wb_qcmp);
    }
    s_wb_ctx = NULL;
    return SL_OK;
}

/* rocksdb: makes a->recs hold at least n bytes (its content kept). A
 * large buffer is asked for in huge pages: the sorted writes read it in
 * key order, all over it, and would otherwise miss the TLB as well. */
static int s_recs_grow(s_agg_t *a, size_t n)
{
    size_t cap = a->recs_cap ? a->recs_cap : 1u << 16;
    while (cap < n)
        cap *= 2;
    void *p = NULL;
    if (cap >= S_HUGE) {
        if (posix_memalign(&p, S_HUGE, cap))
            return SL_NOMEM;
        sl_mem_huge(p, cap);
    } else if (!(p = malloc(cap)))
        return SL_NOMEM;
    if (a->recs_len)
        memcpy(p, a->recs, a->recs_len);
    free(a->recs);
    a->recs = p;
    a->recs_cap = cap;
    return SL_OK;
}

/* rocksdb: writes every dirty entry to the store, sorted by key, and
 * marks it clean: in one write batch, or, for the last write-back (last)
 * of S_SORTED_MIN entries or more, in an ingested SST. */
static int s_rocks_sync(sl_opctx_t *c, s_agg_t *a, bool last)
{
    const sl_plan_node_t *nd = c->node;
    size_t nw = 0;
    /* 1. in entry order (sequential reads): each dirty entry's key and
     * encoded value, back to back in a->recs; the sorted writes below then
     * read one place per entry */
    a->recs_len = 0;
    for (size_t e = 0; e < a->n; e++) {
        s_entry_t *en = &a->entries[e];
        if (!(en->kg & S_DIRTY))
            continue;
        if (sl_grow((void **)&a->wb, &a->wb_cap, nw + 1, sizeof *a->wb))
            return SL_NOMEM;
        uint64_t order = (uint64_t)(en->kg & 0xffffu) << 48;
        const uint8_t *k = a->keys + en->key_off;
        for (size_t i = 0; i < 6 && i < en->key_len; i++)
            order |= (uint64_t)k[i] << (40 - 8 * i);
        size_t off = a->recs_len;
        s_acc_encode(nd, a, &a->accs[e * (size_t)nd->naggs], &a->vbuf);
        if (a->vbuf.err)
            return a->vbuf.err;
        if (off + en->key_len + a->vbuf.len > a->recs_cap &&
            s_recs_grow(a, off + en->key_len + a->vbuf.len))
            return SL_NOMEM;
        if (en->key_len)
            memcpy(a->recs + off, k, en->key_len);
        memcpy(a->recs + off + en->key_len, a->vbuf.data, a->vbuf.len);
        a->recs_len += en->key_len + a->vbuf.len;
        a->wb[nw++] = (s_wb_t){
            .order = order, .off = off, .klen = en->key_len, .vlen = (uint32_t)a->vbuf.len};
        en->kg &= ~S_DIRTY;
    }
    if (!nw)
        return SL_OK;
    int rc = s_wb_sort(a, nw);
    if (rc == SL_OK)
        rc = s_kv(c, a);
    /* 2. the last write-back (finish: a full scan follows) is built
     * straight into an SST and ingested: no write batch, memtable inserts
     * or flush. Not the others: RocksDB's SST writer drops the file from
     * the page cache, and the checkpoint's copy, the compactions and the
     * reads that come next would read it back from the disk (measured:
     * more CPU per checkpoint than the memtable path) */
    bool sorted = last && nw >= S_SORTED_MIN;
    if (rc == SL_OK && sorted)
        rc = sl_kv_sorted_begin(a->kv);
    for (size_t i = 0; i < nw && rc == SL_OK; i++) {
        const s_wb_t *w = &a->wb[i];
        if (i + 8 < nw)
            __builtin_prefetch(a->recs + a->wb[i + 8].off);
        const uint8_t *k = a->recs + w->off;
        uint16_t kg = (uint16_t)(w->order >> 48);
        rc = sorted ? sl_kv_sorted_put(a->kv, kg, k, w->klen, k + w->klen, w->vlen)
                    : sl_kv_batch_put(a->batch, kg, k, w->klen, k + w->klen, w->vlen);
    }
    if (rc == SL_OK)
        rc = sorted ? sl_kv_sorted_commit(a->kv) : sl_kv_batch_commit(a->kv, a->batch);
    else if (sorted && a->kv)
        sl_kv_sorted_abort(a->kv);
    if (a->recs_cap >= S_HUGE) { /* memory only while writing back */
        free(a->recs);
        a->recs = NULL;
        a->recs_cap = 0;
    }
    a->recs_len = 0;
    if (rc)
        return sl_op_fail(c, rc, "aggregate '%s': cannot write state: %s", nd->name,
                          a->kv && sl_kv_errmsg(a->kv)[0] ? sl_kv_errmsg(a->kv) : sl_strerror(rc));
    return SL_OK;
}

/* rocksdb: writes the dirty entries to the store and empties the cache. */
static int s_rocks_flush(sl_opctx_t *c, s_agg_t *a, bool last)
{
    if (!a->n)
        return SL_OK;
    int rc = s_rocks_sync(c, a, last);
    if (rc)
        return rc;
    a->n = 0;
    a->npend = 0;
    a->keys_len = 0;
    a->strs_len = 0;
    memset(a->table, 0, (a->tmask + 1) * sizeof *a->table);
    return SL_OK;
}

/* Moves the table's keys into a new table of size slots (a power of two,
 * larger than the keys). */
static int s_resize(s_agg_t *a, size_t size)
{
    s_slot_t *t = s_table_new(size);
    if (!t)
        return SL_NOMEM;
    for (size_t i = 0; i <= a->tmask; i++) {
        const s_slot_t *o = &a->table[i];
        if (!o->idx)
            continue;
        size_t s = a->entries[o->idx - 1].hash & (size - 1);
        while (t[s].idx)
            s = (s + 1) & (size - 1);
        t[s] = *o;
    }
    s_table_free(a->table, a->tmask + 1);
    a->table = t;
    a->tmask = size - 1;
    return SL_OK;
}

static int s_rehash(s_agg_t *a)
{
    return s_resize(a, (a->tmask + 1) * 2);
}

/* Sizes the table for want keys at once (best effort: a failure shows at
 * the insert), so a restore neither rehashes nor allocates the tables in
 * between. */
static void s_presize(s_agg_t *a, size_t want)
{
    size_t size = a->tmask + 1;
    while (want * S_LOAD_DEN > size * S_LOAD_NUM && size < SIZE_MAX / 64)
        size *= 2;
    if (size != a->tmask + 1)
        (void)s_resize(a, size);
}

/* Adds the key of p as a new entry in slot s. */
static int s_insert(sl_opctx_t *c, s_agg_t *a, s_probe_t *p, size_t s)
{
    if (a->n >= INT32_MAX)
        return sl_op_fail(c, SL_LIMIT, "aggregate '%s': too many keys", c->node->name);
    size_t naggs = (size_t)c->node->naggs;
    if (sl_grow((void **)&a->entries, &a->ecap, a->n + 1, sizeof *a->entries) ||
        sl_grow((void **)&a->accs, &a->cap, a->n + 1, sizeof(s_acc_t) * naggs) ||
        sl_grow((void **)&a->keys, &a->keys_cap, a->keys_len + p->klen, 1))
        return SL_NOMEM;
    const uint8_t *key = p->klen <= S_INLINE ? (const uint8_t *)p->blk + 1 : a->scratch;
    if (p->klen)
        memcpy(a->keys + a->keys_len, key, p->klen);
    a->entries[a->n] = (s_entry_t){.hash = p->hash, .key_off = a->keys_len, .key_len = p->klen};
    memset(&a->accs[a->n * naggs], 0, sizeof(s_acc_t) * naggs);
    s_slot_t *slot = &a->table[s];
    slot->tag = (uint32_t)(p->hash >> 32);
    slot->idx = (uint32_t)a->n + 1;
    memcpy(slot->k, p->blk, sizeof slot->k);
    p->e = (uint32_t)a->n++;
    if (a->rocks) {
        int rc = s_rocks_note(c, a, p->e, a->keys + a->keys_len);
        if (rc)
            return rc;
    }
    a->keys_len += p->klen;
    if (a->n * S_LOAD_DEN > (a->tmask + 1) * S_LOAD_NUM)
        return s_rehash(a);
    return SL_OK;
}

/* Sets p->e to the entry of p's key, created if new. A long key must be in
 * a->scratch. */
static inline int s_lookup(sl_opctx_t *c, s_agg_t *a, s_probe_t *p)
{
    uint32_t tag = (uint32_t)(p->hash >> 32);
    size_t s = p->hash & a->tmask;
    for (;;) {
        const s_slot_t *t = &a->table[s];
        if (!t->idx)
            return s_insert(c, a, p, s);
        if (t->tag == tag && t->k[0] == p->blk[0] && t->k[1] == p->blk[1] && t->k[2] == p->blk[2]) {
            if (p->klen <= S_INLINE) {
                p->e = t->idx - 1;
                return SL_OK;
            }
            const s_entry_t *e = &a->entries[t->idx - 1];
            if (e->key_len == p->klen && memcmp(a->keys + e->key_off, a->scratch, p->klen) == 0) {
                p->e = t->idx - 1;
                return SL_OK;
            }
        }
        s = (s + 1) & a->tmask;
    }
}

/* Fills p from row: slot block, length and hash (a long key goes to
 * a->scratch). */
static inline int s_prepare(s_agg_t *a, const sl_plan_node_t *nd, const uint8_t *row, s_probe_t *p)
{
    p->row = row;
    p->blk[0] = p->blk[1] = p->blk[2] = 0;
    if (a->str_key >= 0) { /* the common case written out: bitmap byte, bytes */
        const uint8_t *slot = s_slot_of(a, row, a->str_key);
        uint8_t *b = (uint8_t *)p->blk;
        uint32_t off, sl;
        memcpy(&off, slot, 4);
        memcpy(&sl, slot + 4, 4);
        if (s_is_null(row, a->str_key)) {
            p->klen = 1;
            b[0] = 1;
            b[1] = 1;
            p->hash = s_hash_block(p->blk, 1);
            return SL_OK;
        }
        if (sl < S_INLINE) {
            p->klen = sl + 1;
            b[0] = (uint8_t)(sl + 1);
            memcpy(b + 2, row + off, sl);
            p->hash = s_hash_block(p->blk, p->klen);
            return SL_OK;
        }
    }
    size_t klen = s_key_len(a, nd, row);
    if (klen <= S_INLINE) {
        p->klen = (uint32_t)klen;
        uint8_t *b = (uint8_t *)p->blk;
        b[0] = (uint8_t)klen;
        s_key_write(a, nd, row, b + 1);
        p->hash = s_hash_block(p->blk, p->klen);
        return SL_OK;
    }
    if (klen > UINT32_MAX)
        return SL_RANGE;
    if (sl_grow((void **)&a->scratch, &a->scratch_cap, klen, 1))
        return SL_NOMEM;
    s_key_write(a, nd, row, a->scratch);
    p->klen = (uint32_t)klen;
    ((uint8_t *)p->blk)[0] = S_LONG;
    p->hash = s_hash_bytes(a->scratch, klen);
    return SL_OK;
}

static int s_update(s_agg_t *a, const sl_agg_t *ag, s_acc_t *acc, const sl_value_t *v)
{
    if (ag->fn == SL_AGG_COUNT) {
        if (ag->field < 0 || !v->is_null)
            acc->n++;
        return SL_OK;
    }
    if (v->is_null)
        return SL_OK;
    switch (ag->fn) {
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (v->type == SL_TYPE_DOUBLE)
            acc->d += v->u.d;
        else if (ag->fn == SL_AGG_AVG)
            acc->d += (double)v->u.i;
        else
            acc->i = (int64_t)((uint64_t)acc->i + (uint64_t)v->u.i);
        break;
    case SL_AGG_MIN:
    case SL_AGG_MAX: {
        if (acc->n) {
            sl_value_t cur = {.type = v->type};
            if (v->type == SL_TYPE_DOUBLE)
                cur.u.d = acc->d;
            else if (v->type == SL_TYPE_STRING) {
                cur.u.s = a->strs + acc->i;
                cur.len = acc->len;
            } else if (v->type == SL_TYPE_BOOL)
                cur.u.b = acc->i != 0;
            else
                cur.u.i = acc->i;
            int cmp = sl_value_cmp(v, &cur);
            if (ag->fn == SL_AGG_MIN ? cmp >= 0 : cmp <= 0)
                break;
        }
        if (v->type == SL_TYPE_DOUBLE)
            acc->d = v->u.d;
        else if (v->type == SL_TYPE_STRING) {
            if (sl_grow((void **)&a->strs, &a->strs_cap, a->strs_len + v->len + 1, 1))
                return SL_NOMEM;
            memcpy(a->strs + a->strs_len, v->u.s, v->len);
            acc->i = (int64_t)a->strs_len;
            acc->len = v->len;
            a->strs_len += v->len;
        } else if (v->type == SL_TYPE_BOOL)
            acc->i = v->u.b;
        else
            acc->i = v->u.i;
        break;
    }
    default:
        break;
    }
    acc->n++;
    return SL_OK;
}

#if defined(__GNUC__)
#define S_PREFETCH(p) __builtin_prefetch(p)
#else
#define S_PREFETCH(p) ((void)(p))
#endif

/* Aggregates row into the accumulators acc[naggs]. */
static inline int s_aggregate(s_agg_t *a, const sl_plan_node_t *nd, const uint8_t *row,
                              s_acc_t *acc)
{
    for (size_t g = 0; g < (size_t)nd->naggs; g++) {
        const sl_agg_t *ag = &nd->aggs[g];
        sl_value_t v = sl_value_null();
        if (ag->field >= 0)
            sl_row_get(a->in, row, ag->field, &v);
        int rc = s_update(a, ag, &acc[g], &v);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* Step 1 of a group (both backends): hashes the keys of up to S_GROUP
 * records from *r on into a->group and prefetches their slots; *r moves
 * past them. Returns how many, or an error. */
static inline int s_group_prepare(sl_opctx_t *c, s_agg_t *a, const sl_batch_t *in,
                                  const uint8_t **r)
{
    const sl_plan_node_t *nd = c->node;
    int n = 0;
    for (; *r && n < S_GROUP; *r = sl_batch_next(in, *r), n++) {
        s_probe_t *p = &a->group[n];
        int rc = s_prepare(a, nd, *r, p);
        if (rc)
            return sl_op_fail(c, rc, "aggregate '%s': key too large", nd->name);
        S_PREFETCH(&a->table[p->hash & a->tmask]);
    }
    return n;
}

/* Step 2 (both backends): finds or creates the entry of prepared probe p. */
static inline int s_find(sl_opctx_t *c, s_agg_t *a, s_probe_t *p)
{
    if (p->klen > S_INLINE)
        s_key_write(a, c->node, p->row, a->scratch);
    return s_lookup(c, a, p);
}

/* rocksdb: looks every key of the batch up (noting the new ones), loads
 * the new ones in one multi-get, then aggregates in record order. */
static int s_process_rocks(sl_opctx_t *c, const sl_batch_t *in)
{
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    size_t naggs = (size_t)nd->naggs, nr = 0;
    const uint8_t *r = sl_batch_first(in);
    while (r) {
        int n = s_group_prepare(c, a, in, &r);
        if (n < 0)
            return n;
        if (sl_grow((void **)&a->rows, &a->rows_cap, nr + (size_t)n, sizeof *a->rows) ||
            sl_grow((void **)&a->rowe, &a->rowe_cap, nr + (size_t)n, sizeof *a->rowe))
            return SL_NOMEM;
        for (int i = 0; i < n; i++) {
            s_probe_t *p = &a->group[i];
            int rc = s_find(c, a, p);
            if (rc)
                return rc;
            a->rows[nr] = p->row;
            a->rowe[nr++] = p->e;
        }
    }
    int rc = s_rocks_load(c, a);
    for (size_t i = 0; i < nr && rc == SL_OK; i++) {
        a->entries[a->rowe[i]].kg |= S_DIRTY;
        rc = s_aggregate(a, nd, a->rows[i], &a->accs[a->rowe[i] * naggs]);
    }
    if (rc == SL_OK && s_rocks_bytes(nd, a) > a->cache_bytes)
        rc = s_rocks_flush(c, a, false);
    return rc;
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    size_t naggs = (size_t)nd->naggs;
    if (a->rocks)
        return s_process_rocks(c, in);
    const uint8_t *r = sl_batch_first(in);
    while (r) {
        /* 1: hash the keys of a group, prefetch their slots */
        int n = s_group_prepare(c, a, in, &r);
        if (n < 0)
            return n;
        /* 2: find or create their entries, prefetch the accumulators */
        for (int i = 0; i < n; i++) {
            s_probe_t *p = &a->group[i];
            int rc = s_find(c, a, p);
            if (rc)
                return rc;
            S_PREFETCH(&a->accs[p->e * naggs]);
        }
        /* 3: aggregate, in record order */
        for (int i = 0; i < n; i++) {
            const s_probe_t *p = &a->group[i];
            int rc = s_aggregate(a, nd, p->row, &a->accs[p->e * naggs]);
            if (rc)
                return rc;
        }
    }
    return SL_OK;
}

/* Emits the result of one key: its values are in a->out[0..nkeys), its
 * accumulators in accs[naggs]. */
static int s_emit_key(sl_opctx_t *c, s_agg_t *a, const s_acc_t *accs)
{
    const sl_plan_node_t *nd = c->node;
    for (int g = 0; g < nd->naggs; g++) {
        const sl_agg_t *ag = &nd->aggs[g];
        const s_acc_t *acc = &accs[g];
        sl_value_t *v = &a->out[nd->nkeys + g];
        *v = sl_value_null();
        if (ag->fn == SL_AGG_COUNT) {
            *v = sl_value_int(acc->n);
            continue;
        }
        if (!acc->n)
            continue;
        v->is_null = false;
        v->type = ag->out;
        if (ag->fn == SL_AGG_AVG)
            v->u.d = acc->d / (double)acc->n;
        else if (ag->out == SL_TYPE_DOUBLE)
            v->u.d = acc->d;
        else if (ag->out == SL_TYPE_STRING) {
            v->u.s = a->strs + acc->i;
            v->len = acc->len;
        } else if (ag->out == SL_TYPE_BOOL)
            v->u.b = acc->i != 0;
        else
            v->u.i = acc->i;
    }
    return sl_emit(&c->out, a->out);
}

/* rocksdb: the results of every key in the store, in (key group, key) order. */
static int s_rocks_finish(sl_opctx_t *c, s_agg_t *a)
{
    const sl_plan_node_t *nd = c->node;
    int rc = s_rocks_flush(c, a, true);
    if (rc == SL_OK)
        rc = s_kv(c, a);
    if (rc)
        return rc;
    s_acc_t *accs = calloc((size_t)nd->naggs + 1, sizeof *accs);
    sl_kv_iter_t *it = NULL;
    rc = accs ? sl_kv_iter_new(a->kv, 0, SL_KV_MAX_KEY_GROUP, &it) : SL_NOMEM;
    sl_kv_entry_t e;
    while (rc == SL_OK && (rc = sl_kv_iter_next(it, &e)) == 1) {
        a->strs_len = 0;
        if (e.key_len < a->kbitmap) {
            rc = sl_op_fail(c, SL_DATA, "aggregate '%s': a key in the state store is corrupt",
                            nd->name);
            break;
        }
        if ((rc = s_acc_decode(c, a, e.val, e.val_len, accs)) != SL_OK)
            break;
        s_key_read(nd, a->in, e.key, e.key_len, a->kbitmap, a->out);
        rc = s_emit_key(c, a, accs);
    }
    if (rc < 0 && !c->err[0])
        sl_op_fail(c, rc, "aggregate '%s': cannot read state: %s", nd->name, sl_kv_errmsg(a->kv));
    sl_kv_iter_destroy(&it);
    free(accs);
    return rc;
}

static int s_finish(sl_opctx_t *c)
{
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    if (a->rocks)
        return s_rocks_finish(c, a);
    for (size_t e = 0; e < a->n; e++) {
        const s_entry_t *en = &a->entries[e];
        s_key_read(nd, a->in, a->keys + en->key_off, en->key_len, a->kbitmap, a->out);
        int rc = s_emit_key(c, a, &a->accs[e * (size_t)nd->naggs]);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* ---- checkpoints ------------------------------------------------------------ */

#define S_SNAP_V1 1    /* entries with key group, typed key values, fixed-width accumulators */
#define S_SNAP_ROCKS 2 /* the rocksdb backend: nkeys, naggs, the store's handle */
/* entries as varints (still read; not 3: one flipped bit would make it 2) */
#define S_SNAP_V4 4
/* version 4 and the writer's key groups (written; 1 and 4 are still read;
 * 7: at least two bits from 1, 2 and 4) */
#define S_SNAP_VERSION 7

/* ---- heap snapshots, versions 4 and 7 --------------------------------------
 *
 * Version, nkeys, naggs, entry count, the type of every key field (a byte
 * each) and the function and output type of every aggregate (two bytes
 * each), then per entry, in first-seen order:
 *   its compact key's null bitmap (a->kbitmap bytes), then each non-null
 *   key field: int64/timestamp as a zigzag varint, double as a varint of
 *   its byte-swapped bits, bool as a byte 0 or 1, string as a varint
 *   length and its bytes;
 *   per aggregate: n as a varint, then for a string min/max its value (a
 *   varint length and the bytes; only when n > 0), else i as a zigzag
 *   varint and d as a varint of its byte-swapped bits.
 * Every field of the accumulators is kept, bit for bit. Small counts,
 * sums and integral doubles take a byte or a few instead of 8, so the
 * bytes to write, copy and hash are a fraction of version 1's (about 15
 * instead of 61 per key of a one-integer key counted and summed). The key
 * group is not stored: restore computes it from the key (version 1
 * stored it only to check it), so a snapshot hashes no key.
 *
 * Version 7 is version 4 with, after the aggregates' bytes, the key groups
 * the writer owned (every key it holds is in them: its input is hash
 * partitioned by the key): max_parallelism, then the first and one past
 * the last key group, u32 each. A subtask that owns all of them (the same
 * subtask restoring, or a merge of subtasks at a rescale) keeps every
 * entry without computing its key group. */

/* Appends v as an unsigned LEB128 varint (at most 10 bytes) at p. */
static inline uint8_t *s_uv_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t s_zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t s_unzz(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* The bits of d, byte-swapped: integral and other short-mantissa doubles
 * (and 0) have their zero bytes at the top, so they make short varints. */
static inline uint64_t s_dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return __builtin_bswap64(u);
}

static inline double s_bitsd(uint64_t u)
{
    u = __builtin_bswap64(u);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Reads an unsigned varint; 0 with r->err set when truncated or longer
 * than 64 bits. */
static inline uint64_t s_uv_get(sl_snap_r_t *r)
{
    uint64_t v = 0;
    for (int sh = 0; sh < 64 && r->left; sh += 7) {
        uint8_t b = *r->p++;
        r->left--;
        if (sh == 63 && b > 1)
            break; /* bits past 64 */
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            return v;
    }
    r->err = SL_DATA;
    return 0;
}

/* Writes the version 7 header and entries of the heap table. */
static int s_snapshot_heap(sl_opctx_t *c, s_agg_t *a, sl_snap_w_t *w)
{
    const sl_plan_node_t *nd = c->node;
    size_t naggs = (size_t)nd->naggs;
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u32(w, (uint32_t)nd->nkeys);
    sl_snap_u32(w, (uint32_t)nd->naggs);
    sl_snap_u64(w, a->n);
    for (int k = 0; k < nd->nkeys; k++)
        sl_snap_u8(w, (uint8_t)a->in->fields[nd->keys[k]].type);
    bool any_str = false;
    for (int g = 0; g < nd->naggs; g++) {
        sl_snap_u8(w, (uint8_t)nd->aggs[g].fn);
        sl_snap_u8(w, (uint8_t)nd->aggs[g].out);
        any_str |= s_acc_is_str(&nd->aggs[g]);
    }
    int first, last; /* the key groups this subtask owns, first..last */
    sl_rstate_owned(c, &first, &last);
    bool none = last < first;
    sl_snap_u32(w, (uint32_t)c->plan->max_parallelism);
    sl_snap_u32(w, none ? 0u : (uint32_t)first);
    sl_snap_u32(w, none ? 0u : (uint32_t)last + 1u);
    /* Each entry is encoded in place into room reserved for its largest
     * size (10 bytes a varint, plus the key's and string values' bytes):
     * no call per field. */
    const size_t fixed = 10 * (size_t)nd->nkeys + 30 * naggs;
    const size_t kbitmap = a->kbitmap;
    const int nkeys = nd->nkeys;
    const sl_field_t *fields = a->in->fields;
    for (size_t e = 0; e < a->n && !w->err; e++) {
        const s_entry_t *en = &a->entries[e];
        const s_acc_t *accs = &a->accs[e * naggs];
        /* the three streams read ahead (the hardware prefetcher stops at
         * page boundaries; these loads were half the time) */
        if (e + 16 < a->n) {
            S_PREFETCH(&a->entries[e + 16]);
            S_PREFETCH(&a->accs[(e + 16) * naggs]);
            S_PREFETCH(&a->accs[(e + 16) * naggs + naggs - 1]);
            S_PREFETCH(a->keys + a->entries[e + 16].key_off);
        }
        size_t need = fixed + en->key_len;
        if (any_str)
            for (size_t g = 0; g < naggs; g++)
                if (s_acc_is_str(&nd->aggs[g]) && accs[g].n)
                    need += accs[g].len;
        if (w->cap - w->len < need && !sl_snap_reserve(w, need))
            break;
        uint8_t *p = w->data + w->len;
        const uint8_t *key = a->keys + en->key_off, *kp = key + kbitmap, *kend = key + en->key_len;
        for (size_t i = 0; i < kbitmap; i++)
            *p++ = key[i];
        for (int k = 0; k < nkeys; k++) {
            if ((key[k / 8] >> (k % 8)) & 1u)
                continue;
            uint64_t u;
            switch (fields[nd->keys[k]].type) {
            case SL_TYPE_STRING: {
                uint32_t sl = (uint32_t)(kend - kp);
                if (k + 1 < nkeys) {
                    memcpy(&sl, kp, 4);
                    kp += 4;
                }
                p = s_uv_put(p, sl);
                memcpy(p, kp, sl);
                p += sl;
                kp += sl;
                break;
            }
            case SL_TYPE_BOOL:
                *p++ = *kp++;
                break;
            case SL_TYPE_DOUBLE:
                memcpy(&u, kp, 8);
                kp += 8;
                p = s_uv_put(p, __builtin_bswap64(u));
                break;
            default: /* int64, timestamp */
                memcpy(&u, kp, 8);
                kp += 8;
                p = s_uv_put(p, s_zz((int64_t)u));
                break;
            }
        }
        for (size_t g = 0; g < naggs; g++) {
            const s_acc_t *acc = &accs[g];
            p = s_uv_put(p, (uint64_t)acc->n);
            if (any_str && s_acc_is_str(&nd->aggs[g])) {
                if (acc->n) {
                    p = s_uv_put(p, acc->len);
                    memcpy(p, a->strs + acc->i, acc->len);
                    p += acc->len;
                }
                continue;
            }
            p = s_uv_put(p, s_zz(acc->i));
            p = s_uv_put(p, s_dbits(acc->d));
        }
        w->len = (size_t)(p - w->data);
    }
    return w->err;
}

/* Reads the compact key of a version 4 entry into *buf (grown) at offset
 * at; its length, or 0 with r->err set on a malformed key. Strings in
 * a->out (after s_key_read) point into *buf. */
static size_t s_key_get(s_agg_t *a, const sl_plan_node_t *nd, sl_snap_r_t *r, uint8_t **buf,
                        size_t *cap, size_t at)
{
    size_t kb = a->kbitmap, len = kb;
    /* room for the bitmap and 12 bytes a field (8, or a string's 4-byte
     * length); a string's bytes are made room for once its length is read */
    size_t most = at + kb + 12 * (size_t)nd->nkeys;
    if (r->left < kb || sl_grow((void **)buf, cap, most, 1)) {
        r->err = r->left < kb ? SL_DATA : SL_NOMEM;
        return 0;
    }
    uint8_t *k = *buf + at;
    memcpy(k, r->p, kb);
    r->p += kb;
    r->left -= kb;
    if (nd->nkeys % 8 && (k[kb - 1] >> (nd->nkeys % 8))) {
        r->err = SL_DATA; /* bits past the last key field */
        return 0;
    }
    for (int f = 0; f < nd->nkeys && !r->err; f++) {
        if ((k[f / 8] >> (f % 8)) & 1u)
            continue;
        switch (a->in->fields[nd->keys[f]].type) {
        case SL_TYPE_STRING: {
            uint64_t sl = s_uv_get(r);
            if (r->err || sl > r->left || sl > UINT32_MAX) {
                r->err = SL_DATA;
                break;
            }
            if (sl_grow((void **)buf, cap, most + len + (size_t)sl, 1)) {
                r->err = SL_NOMEM;
                break;
            }
            k = *buf + at;
            if (f + 1 < nd->nkeys) {
                uint32_t s32 = (uint32_t)sl;
                memcpy(k + len, &s32, 4);
                len += 4;
            }
            memcpy(k + len, r->p, sl);
            len += sl;
            r->p += sl;
            r->left -= sl;
            break;
        }
        case SL_TYPE_BOOL:
            if (!r->left || *r->p > 1) {
                r->err = SL_DATA;
                break;
            }
            k[len++] = *r->p++;
            r->left--;
            break;
        case SL_TYPE_DOUBLE: {
            uint64_t u = __builtin_bswap64(s_uv_get(r));
            memcpy(k + len, &u, 8);
            len += 8;
            break;
        }
        default: {
            int64_t v = s_unzz(s_uv_get(r));
            memcpy(k + len, &v, 8);
            len += 8;
            break;
        }
        }
    }
    return r->err ? 0 : len;
}

/* Fills p's slot block, length and hash from a compact key, as s_prepare
 * would from its row (a long key stays where it is). */
static int s_probe_key(const uint8_t *key, size_t klen, s_probe_t *p)
{
    p->row = NULL;
    p->blk[0] = p->blk[1] = p->blk[2] = 0;
    uint8_t *b = (uint8_t *)p->blk;
    if (klen <= S_INLINE) {
        p->klen = (uint32_t)klen;
        b[0] = (uint8_t)klen;
        memcpy(b + 1, key, klen);
        p->hash = s_hash_block(p->blk, p->klen);
        return SL_OK;
    }
    if (klen > UINT32_MAX)
        return SL_RANGE;
    p->klen = (uint32_t)klen;
    b[0] = S_LONG;
    p->hash = s_hash_bytes(key, klen);
    return SL_OK;
}

/* s_probe_key, with a long key copied to a->scratch (for s_lookup). */
static int s_prepare_key(s_agg_t *a, const uint8_t *key, size_t klen, s_probe_t *p)
{
    int rc = s_probe_key(key, klen, p);
    if (rc || klen <= S_INLINE)
        return rc;
    if (sl_grow((void **)&a->scratch, &a->scratch_cap, klen, 1))
        return SL_NOMEM;
    memcpy(a->scratch, key, klen);
    return SL_OK;
}

/* Reads the accumulators of a version 4 entry into acc[naggs] (a string
 * min/max appended to a->strs), or skips them when acc is NULL. SL_DATA
 * when they are malformed. */
static int s_accs_get(const sl_plan_node_t *nd, s_agg_t *a, sl_snap_r_t *r, s_acc_t *acc)
{
    for (int g = 0; g < nd->naggs; g++) {
        bool str = s_acc_is_str(&nd->aggs[g]);
        uint64_t cnt = s_uv_get(r);
        s_acc_t v = {.n = (int64_t)cnt};
        size_t slen = 0;
        const uint8_t *sp = NULL;
        if (str) {
            if (cnt) {
                uint64_t sl = s_uv_get(r);
                if (r->err || sl > r->left || sl > UINT32_MAX)
                    return SL_DATA;
                sp = r->p;
                slen = (size_t)sl;
                r->p += slen;
                r->left -= slen;
            }
        } else {
            v.i = s_unzz(s_uv_get(r));
            v.d = s_bitsd(s_uv_get(r));
        }
        if (r->err || v.n < 0)
            return SL_DATA;
        if (!acc)
            continue;
        if (str) {
            if (sl_grow((void **)&a->strs, &a->strs_cap, a->strs_len + slen + 1, 1))
                return SL_NOMEM;
            if (slen)
                memcpy(a->strs + a->strs_len, sp, slen);
            v.i = (int64_t)a->strs_len;
            v.len = (uint32_t)slen;
            a->strs_len += slen;
        }
        acc[g] = v;
    }
    return SL_OK;
}

/* Heap restore: puts entry e (its key, hash and accumulators in place)
 * into the table. SL_DATA if its key is there already (a snapshot lists a
 * key once). The table must have room (no rehash here). */
static int s_place(s_agg_t *a, size_t e)
{
    const s_entry_t *en = &a->entries[e];
    const uint8_t *key = a->keys + en->key_off;
    uint64_t blk[3] = {0, 0, 0};
    uint8_t *b = (uint8_t *)blk;
    if (en->key_len <= S_INLINE) {
        b[0] = (uint8_t)en->key_len;
        memcpy(b + 1, key, en->key_len);
    } else {
        b[0] = S_LONG;
    }
    uint32_t tag = (uint32_t)(en->hash >> 32);
    size_t s = en->hash & a->tmask;
    for (;; s = (s + 1) & a->tmask) {
        const s_slot_t *t = &a->table[s];
        if (!t->idx)
            break;
        if (t->tag == tag && t->k[0] == blk[0] && t->k[1] == blk[1] && t->k[2] == blk[2]) {
            const s_entry_t *o = &a->entries[t->idx - 1];
            if (en->key_len <= S_INLINE ||
                (o->key_len == en->key_len && memcmp(a->keys + o->key_off, key, en->key_len) == 0))
                return SL_DATA;
        }
    }
    s_slot_t *slot = &a->table[s];
    slot->tag = tag;
    slot->idx = (uint32_t)e + 1;
    memcpy(slot->k, blk, sizeof slot->k);
    return SL_OK;
}

#if defined(__GNUC__)
#define S_PREFETCH_W(p) __builtin_prefetch((p), 1)
#else
#define S_PREFETCH_W(p) ((void)(p))
#endif

size_t sl__agg_restore_par_min = (size_t)1 << 16;

/* Entries decoded between two hand-overs to the table's thread. */
#define S_PAR_CHUNK 2048

/* A parallel heap restore: the task's thread decodes entries into the
 * entry, key and accumulator arrays (sized beforehand: they never move
 * while the table's thread reads them) and hands them over by `ready`;
 * the table's thread (s_placer_main) puts them into the table in the same
 * order, so the table is the one a serial restore builds. The two halves
 * are about equal: decoding (and the kernel zeroing the arrays' pages) vs
 * the table's cache misses (and the zeroing of its pages). */
typedef struct {
    s_agg_t *a;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t from;      /* first entry to place */
    size_t ready;     /* entries decoded (under mu) */
    bool done;        /* no more entries will come (under mu) */
    atomic_bool stop; /* either side failed: stop */
    int rc;           /* the table thread's result */
    uint64_t cpu_ns;  /* its CPU time */
} s_placer_t;

static void *s_placer_main(void *arg)
{
    s_placer_t *pl = arg;
    s_agg_t *a = pl->a;
    size_t e = pl->from;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (pl->ready == e && !pl->done && !atomic_load(&pl->stop))
            pthread_cond_wait(&pl->cv, &pl->mu);
        size_t to = pl->ready;
        bool last = pl->done;
        pthread_mutex_unlock(&pl->mu);
        if (atomic_load(&pl->stop))
            break;
        for (; e < to; e++) {
            if (e + 16 < to)
                S_PREFETCH_W(&a->table[a->entries[e + 16].hash & a->tmask]);
            if ((pl->rc = s_place(a, e)) != SL_OK) {
                atomic_store(&pl->stop, true);
                break;
            }
        }
        if (pl->rc || (last && e == to))
            break;
    }
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    pl->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return NULL;
}

/* Hands the entries decoded so far over (done: all of them). */
static void s_placer_feed(s_placer_t *pl, size_t ready, bool done)
{
    pthread_mutex_lock(&pl->mu);
    pl->ready = ready;
    pl->done = done;
    pthread_cond_signal(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

/* Heap restore of n version 4 entries. Each entry this subtask owns is
 * decoded into place (its key appended to a->keys, its accumulators after
 * the last entry's) and hashed; then it is put into the table: pipelined
 * like s_process (a group of S_GROUP entries decoded, their slots
 * prefetched, then placed: the table's cache misses overlap instead of one
 * stalling each key), or, with at least sl__agg_restore_par_min entries,
 * by a thread of its own while the next ones are decoded (s_placer_t). */
static int s_restore_heap(sl_opctx_t *c, s_agg_t *a, sl_snap_r_t *r, uint64_t n, bool all_mine)
{
    const sl_plan_node_t *nd = c->node;
    int maxp = c->plan->max_parallelism;
    size_t naggs = (size_t)nd->naggs;
    uint8_t *kbuf = NULL;
    size_t kcap = 0;
    int rc = SL_OK;
    /* A compact key is at most 7 bytes a field longer than its encoding
     * (an 8-byte value as a 1-byte varint, a string's 4-byte length as a
     * 1-byte one): the keys of the entries left fit in keys_bound. */
    size_t keys_bound = a->keys_len + r->left + 7 * (size_t)nd->nkeys * (size_t)n;
    s_placer_t pl = {.a = a, .from = a->n, .ready = a->n};
    bool par = false;
    pthread_t th;
    if (n >= sl__agg_restore_par_min && a->entries && a->ecap >= a->n + n && a->cap >= a->n + n &&
        (a->n + n) * S_LOAD_DEN <= (a->tmask + 1) * S_LOAD_NUM &&
        sl_grow((void **)&a->keys, &a->keys_cap, keys_bound, 1) == SL_OK) {
        atomic_init(&pl.stop, false);
        if (pthread_mutex_init(&pl.mu, NULL) == 0) {
            if (pthread_cond_init(&pl.cv, NULL) == 0) {
                par = pthread_create(&th, NULL, s_placer_main, &pl) == 0;
                if (!par)
                    pthread_cond_destroy(&pl.cv);
            }
            if (!par)
                pthread_mutex_destroy(&pl.mu);
        }
    }
    for (uint64_t e = 0; e < n && rc == SL_OK;) {
        if (!par && (sl_grow((void **)&a->accs, &a->cap, a->n + S_GROUP, sizeof(s_acc_t) * naggs) ||
                     sl_grow((void **)&a->entries, &a->ecap, a->n + S_GROUP, sizeof *a->entries))) {
            rc = SL_NOMEM;
            break;
        }
        /* 1: decode a group, hash its keys, prefetch their slots */
        size_t first = a->n;
        for (int m = 0; e < n && m < S_GROUP; e++) {
            size_t klen = s_key_get(a, nd, r, &kbuf, &kcap, 0);
            if (r->err) {
                rc = r->err;
                break;
            }
            if (!all_mine) {
                s_key_read(nd, a->in, kbuf, klen, a->kbitmap, a->out);
                int kg = sl_key_group(sl_value_hash(a->out, nd->nkeys), maxp);
                if (sl_key_group_owner(kg, maxp, c->parallelism) != c->subtask) {
                    if ((rc = s_accs_get(nd, a, r, NULL)) != SL_OK)
                        break;
                    continue;
                }
            }
            s_probe_t p;
            if ((rc = s_probe_key(kbuf, klen, &p)) != SL_OK)
                break;
            if (!par)
                S_PREFETCH_W(&a->table[p.hash & a->tmask]);
            if (a->n >= INT32_MAX) {
                rc = sl_op_fail(c, SL_LIMIT, "aggregate '%s': too many keys", nd->name);
                break;
            }
            if (a->keys_len + klen > a->keys_cap &&
                (par || sl_grow((void **)&a->keys, &a->keys_cap, a->keys_len + klen, 1))) {
                rc = par ? SL_DATA : SL_NOMEM; /* par: beyond keys_bound, cannot be */
                break;
            }
            if ((rc = s_accs_get(nd, a, r, &a->accs[a->n * naggs])) != SL_OK)
                break;
            if (klen)
                memcpy(a->keys + a->keys_len, kbuf, klen);
            a->entries[a->n] =
                (s_entry_t){.hash = p.hash, .key_off = a->keys_len, .key_len = p.klen};
            a->keys_len += klen;
            a->n++;
            m++;
        }
        if (par) {
            if (atomic_load(&pl.stop))
                break;
            if (a->n - pl.ready >= S_PAR_CHUNK)
                s_placer_feed(&pl, a->n, false);
            continue;
        }
        /* 2: place it, in snapshot order */
        for (size_t i = first; i < a->n && rc == SL_OK; i++) {
            rc = s_place(a, i);
            if (rc == SL_OK && (i + 1) * S_LOAD_DEN > (a->tmask + 1) * S_LOAD_NUM)
                rc = s_rehash(a);
        }
    }
    if (par) {
        if (rc)
            atomic_store(&pl.stop, true);
        s_placer_feed(&pl, a->n, true);
        pthread_join(th, NULL);
        pthread_cond_destroy(&pl.cv);
        pthread_mutex_destroy(&pl.mu);
        atomic_fetch_add_explicit(&c->restore_cpu_ns, pl.cpu_ns, memory_order_relaxed);
        if (rc == SL_OK)
            rc = pl.rc;
    }
    free(kbuf);
    return rc;
}

/* The end of a restore that ended with rc (r's error counts as corrupt
 * data): the error named, or a heap snapshot moved into the store. */
static int s_restore_end(sl_opctx_t *c, s_agg_t *a, const sl_snap_r_t *r, int rc)
{
    const char *name = c->node->name;
    if (rc == SL_DATA || r->err)
        return sl_op_fail(c, SL_DATA, "aggregate '%s': snapshot is truncated or corrupt", name);
    if (rc)
        return sl_op_fail(c, rc, "aggregate '%s': cannot restore: %s", name, sl_strerror(rc));
    return a->rocks ? s_rocks_flush(c, a, false) : SL_OK; /* a heap snapshot moves into the store */
}

/* Restores the entries of a version 4 or 7 (v) heap snapshot (after its
 * version, nkeys and naggs): the keys whose key group this subtask owns go
 * into the table directly by their compact key, no row built. */
static int s_restore_v4(sl_opctx_t *c, s_agg_t *a, sl_snap_r_t *r, uint8_t v)
{
    const sl_plan_node_t *nd = c->node;
    int maxp = c->plan->max_parallelism;
    size_t naggs = (size_t)nd->naggs;
    uint64_t n = sl_snap_get_u64(r);
    for (int k = 0; k < nd->nkeys && !r->err; k++)
        if (sl_snap_get_u8(r) != (uint8_t)a->in->fields[nd->keys[k]].type && !r->err)
            r->err = SL_STATE;
    for (int g = 0; g < nd->naggs && !r->err; g++) {
        uint8_t fn = sl_snap_get_u8(r), out = sl_snap_get_u8(r);
        if (!r->err && (fn != (uint8_t)nd->aggs[g].fn || out != (uint8_t)nd->aggs[g].out))
            r->err = SL_STATE;
    }
    if (r->err == SL_STATE)
        return sl_op_fail(c, SL_DATA,
                          "aggregate '%s': not a snapshot of this operator (its key types or "
                          "aggregates differ)",
                          nd->name);
    bool all_mine = false; /* every key group of the writer is this subtask's */
    if (v == S_SNAP_VERSION) {
        uint32_t wmaxp = sl_snap_get_u32(r), lo = sl_snap_get_u32(r), hi = sl_snap_get_u32(r);
        if (!r->err && (wmaxp == 0 || lo > hi || hi > wmaxp))
            r->err = SL_DATA;
        all_mine =
            !r->err && wmaxp == (uint32_t)maxp &&
            (lo == hi || (sl_key_group_owner((int)lo, maxp, c->parallelism) == c->subtask &&
                          sl_key_group_owner((int)hi - 1, maxp, c->parallelism) == c->subtask));
    }
    /* the fewest bytes an entry takes; bounds n before anything is sized */
    size_t least = a->kbitmap;
    for (int g = 0; g < nd->naggs; g++)
        least += s_acc_is_str(&nd->aggs[g]) ? 1 : 3;
    if (r->err || (least ? n > r->left / least : n > 1))
        return sl_op_fail(c, SL_DATA, "aggregate '%s': snapshot is truncated or corrupt", nd->name);
    if (n) {
        size_t want = a->n + (size_t)n;
        s_presize(a, want);
        if (sl_grow((void **)&a->entries, &a->ecap, want, sizeof *a->entries) == SL_OK)
            (void)sl_grow((void **)&a->accs, &a->cap, want, sizeof(s_acc_t) * naggs);
    }
    int rc = SL_OK;
    if (!a->rocks)
        rc = s_restore_heap(c, a, r, n, all_mine);
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    for (uint64_t e = 0; a->rocks && e < n && rc == SL_OK; e++) {
        size_t klen = s_key_get(a, nd, r, &buf, &bufcap, 0);
        if (r->err) {
            rc = r->err;
            break;
        }
        s_key_read(nd, a->in, buf, klen, a->kbitmap, a->out);
        int kg = sl_key_group(sl_value_hash(a->out, nd->nkeys), maxp);
        if (sl_key_group_owner(kg, maxp, c->parallelism) != c->subtask) {
            rc = s_accs_get(nd, a, r, NULL);
            continue;
        }
        s_probe_t p = {0};
        size_t before = a->n;
        if ((rc = s_prepare_key(a, buf, klen, &p)) != SL_OK || (rc = s_lookup(c, a, &p)) != SL_OK ||
            (rc = s_rocks_load(c, a)) != SL_OK)
            break;
        a->entries[p.e].kg |= S_DIRTY;
        if (p.e < before) {
            rc = SL_DATA; /* the same key twice */
            break;
        }
        rc = s_accs_get(nd, a, r, &a->accs[p.e * naggs]);
    }
    free(buf);
    return s_restore_end(c, a, r, rc);
}

/* The heap table as version 7 (above); the rocksdb backend syncs its
 * dirty entries and snapshots the store. */
static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    if (a->rocks) {
        int rc = s_rocks_sync(c, a, false); /* the clean entries stay cached */
        if (rc == SL_OK)
            rc = s_kv(c, a);
        if (rc)
            return rc;
        sl_snap_u8(w, S_SNAP_ROCKS);
        sl_snap_u32(w, (uint32_t)nd->nkeys);
        sl_snap_u32(w, (uint32_t)nd->naggs);
        return sl_rstate_snapshot(c, a->kv, w);
    }
    return s_snapshot_heap(c, a, w);
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    int maxp = c->plan->max_parallelism;
    uint8_t v = sl_snap_get_u8(r);
    uint32_t nkeys = sl_snap_get_u32(r), naggs = sl_snap_get_u32(r);
    if (v == S_SNAP_ROCKS && !r->err && nkeys == (uint32_t)nd->nkeys &&
        naggs == (uint32_t)nd->naggs) {
        if (!a->rocks)
            return sl_op_fail(c, SL_STATE,
                              "aggregate '%s': the checkpoint keeps its state in rocksdb; the "
                              "job must use `state: {backend: rocksdb}` to restore it",
                              nd->name);
        int rc = s_rocks_flush(c, a, false);
        return rc ? rc : sl_rstate_restore(c, &a->kv, r);
    }
    if ((v == S_SNAP_VERSION || v == S_SNAP_V4) && !r->err && nkeys == (uint32_t)nd->nkeys &&
        naggs == (uint32_t)nd->naggs)
        return s_restore_v4(c, a, r, v);
    /* version 1: per entry its key group (u32), its key values (as
     * sl_snap_value), then per aggregate n, i (a string min/max: its
     * bytes) and d, fixed width */
    uint64_t n = sl_snap_get_u64(r);
    if (r->err || v != S_SNAP_V1 || nkeys != (uint32_t)nd->nkeys || naggs != (uint32_t)nd->naggs)
        return sl_op_fail(c, SL_DATA, "aggregate '%s': not a snapshot of this operator", nd->name);
    /* The heap table and arrays sized for the snapshot's keys at once: no
     * rehash and no copy while restoring. Best effort (a failure shows at
     * the insert); n is bounded by the bytes left (an entry has at least
     * its 4-byte key group), so a corrupt count cannot ask for more. */
    if (!a->rocks && n && n <= r->left / 4) {
        size_t want = a->n + (size_t)n;
        s_presize(a, want);
        if (sl_grow((void **)&a->entries, &a->ecap, want, sizeof *a->entries) == SL_OK)
            (void)sl_grow((void **)&a->accs, &a->cap, want, sizeof(s_acc_t) * (size_t)nd->naggs);
    }
    sl_value_t *row = calloc((size_t)a->in->nfields + 1, sizeof *row);
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    int rc = row ? SL_OK : SL_NOMEM;
    for (uint64_t e = 0; e < n && rc == SL_OK; e++) {
        uint32_t kg = sl_snap_get_u32(r);
        for (int f = 0; f < a->in->nfields; f++)
            row[f] = sl_value_null();
        for (int k = 0; k < nd->nkeys; k++) {
            sl_value_t *kv = &row[nd->keys[k]];
            sl_snap_get_value(r, kv);
            if (!kv->is_null && kv->type != a->in->fields[nd->keys[k]].type)
                r->err = SL_DATA;
            a->out[k] = *kv;
        }
        if (r->err || kg >= (uint32_t)maxp ||
            (int)kg != sl_key_group(sl_value_hash(a->out, nd->nkeys), maxp)) {
            rc = SL_DATA;
            break;
        }
        bool mine = sl_key_group_owner((int)kg, maxp, c->parallelism) == c->subtask;
        s_probe_t p = {0};
        if (mine) {
            size_t len = sl_row_size(a->in, row);
            if ((rc = sl_grow((void **)&buf, &bufcap, len, 1)) != SL_OK)
                break;
            sl_row_encode(a->in, row, buf);
            size_t before = a->n;
            if ((rc = s_prepare(a, nd, buf, &p)) != SL_OK || (rc = s_lookup(c, a, &p)) != SL_OK ||
                (a->rocks && (rc = s_rocks_load(c, a)) != SL_OK))
                break;
            if (a->rocks)
                a->entries[p.e].kg |= S_DIRTY;
            if (p.e < before) {
                rc = SL_DATA; /* the same key twice */
                break;
            }
        }
        for (int g = 0; g < nd->naggs; g++) {
            s_acc_t acc = {.n = sl_snap_get_i64(r)};
            size_t slen = 0;
            const uint8_t *str = NULL;
            if (s_acc_is_str(&nd->aggs[g]))
                str = sl_snap_get_bytes(r, &slen);
            else
                acc.i = sl_snap_get_i64(r);
            acc.d = sl_snap_get_f64(r);
            if (r->err || acc.n < 0) {
                rc = SL_DATA;
                break;
            }
            if (!mine)
                continue;
            if (str) {
                if ((rc = sl_grow((void **)&a->strs, &a->strs_cap, a->strs_len + slen + 1, 1)))
                    break;
                if (slen)
                    memcpy(a->strs + a->strs_len, str, slen);
                acc.i = (int64_t)a->strs_len;
                acc.len = (uint32_t)slen;
                a->strs_len += slen;
            }
            a->accs[p.e * (size_t)nd->naggs + (size_t)g] = acc;
        }
    }
    free(row);
    free(buf);
    return s_restore_end(c, a, r, rc);
}

const sl_op_vtable_t sl_op_aggregate = {.open = s_open,
                                        .process = s_process,
                                        .finish = s_finish,
                                        .close = s_close,
                                        .snapshot = s_snapshot,
                                        .restore = s_restore};
