/* keyed_state.c — keyed state and timers in memory (see keyed_state.h).
 *
 * Keys live in a chained hash table (like the window operator's); each
 * holds a short array of state cells (one per name it uses) and a short
 * array of its set timers. A value cell holds its bytes; a list cell one
 * buffer of the items back to back with their offsets; a map cell a
 * sorted array of entries (binary search, so ordered iteration and seek
 * come for free; inserts move entries, fine for the small maps per key a
 * process function keeps).
 *
 * Timers: one min-heap per kind of (time, key, sequence). Deleting a timer
 * removes it from its key only; the heap entry goes stale and is skipped
 * when popped (its sequence no longer names a timer of the key). A key is
 * not freed while heap entries name it, so the order of the heap, which
 * compares key bytes, never changes under it.
 *
 * Checkpoints write the keys with their key groups and rebuild the heaps
 * on restore with fresh registration numbers: two live timers of one kind
 * never share (time, key), so the pop order does not depend on them. */
#define _POSIX_C_SOURCE 200809L
#include "keyed_state.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/err.h"
#include "sluice/plan.h"

/* A stored cell (rocksdb): kind (u8), last write (i64), then a value's
 * bytes, a list's count and items, or a map's count and (key, value)
 * pairs in key order. */
_Static_assert(SL_KS_TTL_OFFSET == 1, "the write time follows the kind byte");

/* A map entry: key and value bytes in one block (value after the key). */
typedef struct {
    uint8_t *k;    /* owned block; the value follows at k + klen */
    uint32_t klen; /* key bytes */
    uint32_t vlen; /* value bytes */
    uint32_t cap;  /* block capacity */
} s_entry_t;

/* One named state of one key. */
typedef struct {
    int name;         /* index into the store's names */
    uint8_t *buf;     /* value: its bytes; list: the items back to back */
    size_t len, cap;  /* bytes used and allocated in buf */
    size_t *off;      /* list: item i is buf[off[i] .. off[i + 1]) */
    uint32_t n, capn; /* list: items; off has capn + 1 slots */
    s_entry_t *ents;  /* map: entries in key order */
    uint32_t nents, capents;
    bool set;   /* value: has a value */
    int64_t ts; /* last write, on the store's clock (ms): its age for the TTL */
} s_cell_t;

/* rocksdb: a state name of the current key read from the store (present
 * there or not) since the key became current. */
typedef struct {
    int name;   /* index into the store's names */
    bool dirty; /* written since: release writes it back (or deletes it) */
} s_res_t;

/* A timer set on a key. */
typedef struct {
    int kind;     /* sl_ks_timer_t */
    int64_t time; /* when it fires */
    uint64_t seq; /* registration number: names its heap entry */
} s_ktimer_t;

typedef struct {
    uint64_t hash; /* hash of the key */
    uint8_t *key;  /* owned encoded key */
    uint32_t klen;
    int next; /* hash chain (index into keys), -1 ends */
    bool used;
    s_cell_t *cells; /* its states */
    int ncells, capcells;
    s_ktimer_t *timers; /* its set timers */
    int ntimers, captimers;
    uint32_t heaprefs; /* heap entries (live or stale) naming this key */
    s_res_t *res;      /* rocksdb: names read from the store while current */
    int nres, capres;
} s_key_t;

/* A heap entry. */
typedef struct {
    int64_t time;
    uint64_t seq;
    int key; /* index into keys */
} s_hent_t;

typedef struct {
    char *name; /* owned */
    int kind;   /* sl_ks_kind_t */
} s_name_t;

struct sl_kstate {
    s_key_t *keys; /* key slots */
    int nkeys, capkeys;
    int *free_keys; /* unused slots */
    int nfree;
    int *buckets; /* heads of hash chains (power of two) */
    uint32_t nbuckets;
    int live;        /* used slots */
    s_name_t *names; /* state names, each with its kind */
    int nnames, capnames;
    s_hent_t *heap[2]; /* per timer kind (index kind - 1) */
    size_t nheap[2], capheap[2];
    size_t pending[2]; /* timers set, per kind */
    uint64_t next_seq;
    int cur;              /* current key, -1 = none */
    char err[256];        /* message of the last failure */
    bool rocks;           /* cells live in kv (loaded while their key is current) */
    sl_kv_t *kv;          /* rocksdb: the store (borrowed; NULL until attached) */
    int maxp;             /* rocksdb: max parallelism, for key groups */
    sl_kv_batch_t *batch; /* rocksdb: write-back of the current key */
    uint8_t *kbuf;        /* rocksdb: scratch for a store key */
    size_t kcap;
    sl_snap_w_t enc; /* rocksdb: scratch for a stored cell */
    int64_t ttl;     /* time to live of a cell since its last write (ms); 0 = none */
    int64_t now;     /* the clock of the TTL (ms), set by the operator */
};

static int s_fail(sl_kstate_t *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(sl_kstate_t *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Adds state name (of kind) as a new id in *id. */
static int s_name_add(sl_kstate_t *s, const char *name, int kind, int *id)
{
    if (s->nnames == s->capnames) {
        size_t cap = (size_t)s->capnames;
        if (sl_grow_ex((void **)&s->names, &cap, cap + 1, sizeof *s->names, 8, INT_MAX))
            return s_fail(s, SL_NOMEM, "out of memory for keyed state");
        s->capnames = (int)cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    *id = s->nnames++;
    s->names[*id] = (s_name_t){.name = copy, .kind = kind};
    return SL_OK;
}

static int s_rehash(sl_kstate_t *s, uint32_t nb)
{
    int *b = malloc(nb * sizeof *b);
    if (!b)
        return SL_NOMEM;
    for (uint32_t i = 0; i < nb; i++)
        b[i] = -1;
    for (int k = 0; k < s->nkeys; k++)
        if (s->keys[k].used) {
            uint32_t h = (uint32_t)(s->keys[k].hash & (nb - 1));
            s->keys[k].next = b[h];
            b[h] = k;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return SL_OK;
}

sl_kstate_t *sl_kstate_new(void)
{
    sl_kstate_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cur = -1;
    if (s_rehash(s, 256) != SL_OK) {
        free(s);
        return NULL;
    }
    return s;
}

static void s_cell_free(s_cell_t *c)
{
    free(c->buf);
    free(c->off);
    for (uint32_t i = 0; i < c->nents; i++)
        free(c->ents[i].k);
    free(c->ents);
    memset(c, 0, sizeof *c);
}

void sl_kstate_destroy(sl_kstate_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_kstate_t *s = *pp;
    for (int k = 0; k < s->nkeys; k++) {
        s_key_t *e = &s->keys[k];
        for (int i = 0; i < e->ncells; i++)
            s_cell_free(&e->cells[i]);
        free(e->cells);
        free(e->timers);
        free(e->key);
        free(e->res);
    }
    sl_kv_batch_destroy(&s->batch);
    free(s->kbuf);
    sl_snap_w_free(&s->enc);
    for (int i = 0; i < s->nnames; i++)
        free(s->names[i].name);
    free(s->names);
    free(s->keys);
    free(s->free_keys);
    free(s->buckets);
    free(s->heap[0]);
    free(s->heap[1]);
    free(s);
    *pp = NULL;
}

const char *sl_kstate_error(const sl_kstate_t *s)
{
    return s->err;
}

/* ---- keys ------------------------------------------------------------------- */

int sl_kstate_select(sl_kstate_t *s, uint64_t hash, const uint8_t *key, uint32_t len)
{
    for (int k = s->buckets[hash & (s->nbuckets - 1)]; k >= 0; k = s->keys[k].next)
        if (s->keys[k].hash == hash && s->keys[k].klen == len &&
            (len == 0 || !memcmp(s->keys[k].key, key, len))) {
            s->cur = k;
            return SL_OK;
        }
    int k;
    if (s->nfree)
        k = s->free_keys[--s->nfree];
    else {
        if (s->nkeys == s->capkeys) {
            /* keys and free_keys share one capacity */
            size_t cap = (size_t)s->capkeys, fcap = cap;
            if (sl_grow_ex((void **)&s->keys, &cap, cap + 1, sizeof *s->keys, 64, INT_MAX) ||
                sl_grow_ex((void **)&s->free_keys, &fcap, cap, sizeof *s->free_keys, 64, INT_MAX))
                return s_fail(s, SL_NOMEM, "out of memory for keyed state");
            s->capkeys = (int)cap;
        }
        k = s->nkeys++;
    }
    s_key_t *e = &s->keys[k];
    memset(e, 0, sizeof *e);
    e->key = malloc(len ? len : 1);
    if (!e->key) {
        s->free_keys[s->nfree++] = k;
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    }
    if (len)
        memcpy(e->key, key, len);
    e->klen = len;
    e->hash = hash;
    e->used = true;
    uint32_t b = (uint32_t)(hash & (s->nbuckets - 1));
    e->next = s->buckets[b];
    s->buckets[b] = k;
    s->live++;
    s->cur = k;
    if ((uint32_t)s->live > s->nbuckets && s_rehash(s, s->nbuckets * 2) != SL_OK)
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    return SL_OK;
}

const uint8_t *sl_kstate_key(const sl_kstate_t *s, uint32_t *len)
{
    if (s->cur < 0)
        return NULL;
    *len = s->keys[s->cur].klen;
    return s->keys[s->cur].key;
}

int sl_kstate_nkeys(const sl_kstate_t *s)
{
    return s->live;
}

/* Frees key slot k when it holds nothing and no heap entry names it. */
static void s_key_maybe_free(sl_kstate_t *s, int k)
{
    s_key_t *e = &s->keys[k];
    if (!e->used || e->ncells || e->ntimers || e->heaprefs || k == s->cur)
        return;
    int *pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp != k)
        pp = &s->keys[*pp].next;
    *pp = e->next;
    free(e->key);
    free(e->cells);
    free(e->timers);
    free(e->res);
    memset(e, 0, sizeof *e);
    s->free_keys[s->nfree++] = k;
    s->live--;
}

static int s_write_back(sl_kstate_t *s, int k);

int sl_kstate_release(sl_kstate_t *s)
{
    int k = s->cur;
    int rc = k >= 0 && s->rocks ? s_write_back(s, k) : SL_OK;
    s->cur = -1;
    if (k >= 0)
        s_key_maybe_free(s, k);
    return rc;
}

/* ---- cells ------------------------------------------------------------------ */

/* How a call uses a cell: reads it, changes it if present, or creates it. */
enum { S_READ, S_WRITE, S_CREATE };

static int s_resident(sl_kstate_t *s, int id, int *res);
static void s_cell_remove(sl_kstate_t *s, s_cell_t *c);

/* The cell `name` of kind for the current key: *out NULL when the key has
 * none (or its cell expired) and mode is not S_CREATE. With rocksdb the
 * cell is read from the store first. A write (S_WRITE, S_CREATE) marks
 * the cell for write-back and restarts its time to live. */
static int s_cell(sl_kstate_t *s, const char *name, int kind, int mode, s_cell_t **out)
{
    static const char *const kinds[] = {"?", "value", "list", "map"};
    *out = NULL;
    if (s->cur < 0)
        return s_fail(s, SL_STATE, "keyed state used with no current key");
    size_t nlen = name ? strnlen(name, 256) : 0;
    if (nlen == 0 || nlen > 255)
        return s_fail(s, SL_INVAL, "a state name must have 1 to 255 bytes");
    int id = -1;
    for (int i = 0; i < s->nnames && id < 0; i++)
        if (strcmp(s->names[i].name, name) == 0)
            id = i;
    if (id >= 0 && s->names[id].kind != kind)
        return s_fail(s, SL_TYPE, "state '%s' is a %s state, not a %s state", name,
                      kinds[s->names[id].kind], kinds[kind]);
    if (id < 0) {
        if (mode != S_CREATE)
            return SL_OK;
        int rc = s_name_add(s, name, kind, &id);
        if (rc)
            return rc;
    }
    int res = -1;
    if (s->rocks) {
        int rc = s_resident(s, id, &res);
        if (rc)
            return rc;
    }
    s_key_t *e = &s->keys[s->cur];
    s_cell_t *c = NULL;
    for (int i = 0; i < e->ncells && !c; i++)
        if (e->cells[i].name == id)
            c = &e->cells[i];
    if (c && s->ttl > 0 && s->now - c->ts >= s->ttl) {
        s_cell_remove(s, c); /* expired: absent from now on */
        c = NULL;
        if (res >= 0)
            e->res[res].dirty = true;
    }
    if (mode != S_READ && res >= 0)
        e->res[res].dirty = true;
    if (!c && mode == S_CREATE) {
        if (e->ncells == e->capcells) {
            size_t cap = (size_t)e->capcells;
            if (sl_grow_ex((void **)&e->cells, &cap, cap + 1, sizeof *e->cells, 2, INT_MAX))
                return s_fail(s, SL_NOMEM, "out of memory for keyed state");
            e->capcells = (int)cap;
        }
        c = &e->cells[e->ncells++];
        memset(c, 0, sizeof *c);
        c->name = id;
    }
    if (c && mode != S_READ)
        c->ts = s->now;
    *out = c;
    return SL_OK;
}

/* Removes cell c of the current key (it became empty). */
static void s_cell_remove(sl_kstate_t *s, s_cell_t *c)
{
    s_key_t *e = &s->keys[s->cur];
    s_cell_free(c);
    *c = e->cells[--e->ncells];
}

static int s_check_len(sl_kstate_t *s, const void *data, uint32_t len, const char *name)
{
    if (len > SL_KS_MAX_BYTES)
        return s_fail(s, SL_LIMIT, "state '%s': %u bytes is more than the %u allowed", name, len,
                      SL_KS_MAX_BYTES);
    if (len && !data)
        return s_fail(s, SL_INVAL, "state '%s': NULL data of %u bytes", name, len);
    return SL_OK;
}

/* Grows c->buf to hold need bytes. */
static int s_reserve(sl_kstate_t *s, s_cell_t *c, size_t need)
{
    if (need <= c->cap)
        return SL_OK;
    size_t cap = c->cap ? c->cap : 16;
    while (cap < need)
        cap *= 2;
    uint8_t *b = realloc(c->buf, cap);
    if (!b)
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    c->buf = b;
    c->cap = cap;
    return SL_OK;
}

/* ---- value state ------------------------------------------------------------- */

int sl_kstate_value_get(sl_kstate_t *s, const char *name, const void **data, uint32_t *len)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_VALUE, S_READ, &c);
    if (rc || !c)
        return rc;
    *data = c->buf ? c->buf : (const void *)"";
    *len = (uint32_t)c->len;
    return 1;
}

int sl_kstate_value_set(sl_kstate_t *s, const char *name, const void *data, uint32_t len)
{
    s_cell_t *c;
    int rc = s_check_len(s, data, len, name ? name : "");
    if (rc || (rc = s_cell(s, name, SL_KS_VALUE, S_CREATE, &c)) != SL_OK)
        return rc;
    if ((rc = s_reserve(s, c, len ? len : 1)) != SL_OK) {
        if (!c->set)
            s_cell_remove(s, c);
        return rc;
    }
    if (len)
        memmove(c->buf, data, len); /* data may point into the old value */
    c->len = len;
    c->set = true;
    return SL_OK;
}

int sl_kstate_value_clear(sl_kstate_t *s, const char *name)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_VALUE, S_WRITE, &c);
    if (rc == SL_OK && c)
        s_cell_remove(s, c);
    return rc;
}

/* ---- list state ---------------------------------------------------------------- */

int sl_kstate_list_append(sl_kstate_t *s, const char *name, const void *data, uint32_t len)
{
    s_cell_t *c;
    int rc = s_check_len(s, data, len, name ? name : "");
    if (rc || (rc = s_cell(s, name, SL_KS_LIST, S_CREATE, &c)) != SL_OK)
        return rc;
    if (c->n == UINT32_MAX - 1)
        return s_fail(s, SL_LIMIT, "list state '%s' is full", name);
    if (c->n == c->capn) {
        /* off has capn + 1 slots */
        size_t slots = c->capn ? (size_t)c->capn + 1 : 0;
        if (sl_grow_ex((void **)&c->off, &slots, slots + 1, sizeof *c->off, 4, INT_MAX)) {
            if (!c->n)
                s_cell_remove(s, c);
            return s_fail(s, SL_NOMEM, "out of memory for keyed state");
        }
        c->off[0] = 0;
        c->capn = (uint32_t)slots - 1;
    }
    /* data may point into this list's buffer, which may move */
    size_t at = (const uint8_t *)data >= c->buf && (const uint8_t *)data < c->buf + c->len
                    ? (size_t)((const uint8_t *)data - c->buf)
                    : SIZE_MAX;
    if ((rc = s_reserve(s, c, c->len + len + 1)) != SL_OK) {
        if (!c->n)
            s_cell_remove(s, c);
        return rc;
    }
    if (len)
        memmove(c->buf + c->len, at != SIZE_MAX ? c->buf + at : data, len);
    c->len += len;
    c->off[++c->n] = c->len;
    return SL_OK;
}

int sl_kstate_list_len(sl_kstate_t *s, const char *name)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_LIST, S_READ, &c);
    if (rc)
        return rc;
    if (c && c->n > INT32_MAX)
        return s_fail(s, SL_LIMIT, "list state '%s' has more than %d items", name, INT32_MAX);
    return c ? (int)c->n : 0;
}

int sl_kstate_list_get(sl_kstate_t *s, const char *name, uint32_t index, const void **data,
                       uint32_t *len)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_LIST, S_READ, &c);
    if (rc || !c || index >= c->n)
        return rc;
    *data = c->buf + c->off[index];
    *len = (uint32_t)(c->off[index + 1] - c->off[index]);
    return 1;
}

int sl_kstate_list_clear(sl_kstate_t *s, const char *name)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_LIST, S_WRITE, &c);
    if (rc == SL_OK && c)
        s_cell_remove(s, c);
    return rc;
}

/* ---- map state ------------------------------------------------------------------ */

static int s_keycmp(const void *a, uint32_t alen, const void *b, uint32_t blen)
{
    uint32_t m = alen < blen ? alen : blen;
    int r = m ? memcmp(a, b, m) : 0;
    return r ? r : (alen > blen) - (alen < blen);
}

/* Index of the first entry of c with key >= key; *found when equal. */
static uint32_t s_lower(const s_cell_t *c, const void *key, uint32_t klen, bool *found)
{
    uint32_t lo = 0, hi = c->nents;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_keycmp(c->ents[mid].k, c->ents[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < c->nents && s_keycmp(c->ents[lo].k, c->ents[lo].klen, key, klen) == 0;
    return lo;
}

int sl_kstate_map_put(sl_kstate_t *s, const char *name, const void *key, uint32_t klen,
                      const void *val, uint32_t vlen)
{
    s_cell_t *c;
    const char *nm = name ? name : "";
    int rc = s_check_len(s, key, klen, nm);
    if (rc || (rc = s_check_len(s, val, vlen, nm)) != SL_OK ||
        (rc = s_cell(s, name, SL_KS_MAP, S_CREATE, &c)) != SL_OK)
        return rc;
    bool found;
    uint32_t i = s_lower(c, key, klen, &found);
    size_t need = (size_t)klen + vlen;
    if (found && need <= c->ents[i].cap) {
        memmove(c->ents[i].k + klen, val, vlen); /* val may be this value */
        c->ents[i].vlen = vlen;
        return SL_OK;
    }
    uint8_t *blk = malloc(need ? need : 1);
    if (!blk) {
        if (!c->nents)
            s_cell_remove(s, c);
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    }
    if (klen)
        memcpy(blk, key, klen);
    if (vlen)
        memcpy(blk + klen, val, vlen);
    if (found) {
        free(c->ents[i].k);
        c->ents[i] = (s_entry_t){.k = blk, .klen = klen, .vlen = vlen, .cap = (uint32_t)need};
        return SL_OK;
    }
    if (c->nents == c->capents) {
        size_t cap = c->capents;
        if (sl_grow_ex((void **)&c->ents, &cap, cap + 1, sizeof *c->ents, 4, INT_MAX)) {
            free(blk);
            if (!c->nents)
                s_cell_remove(s, c);
            return s_fail(s, SL_NOMEM, "out of memory for keyed state");
        }
        c->capents = (uint32_t)cap;
    }
    memmove(&c->ents[i + 1], &c->ents[i], (size_t)(c->nents - i) * sizeof *c->ents);
    c->ents[i] = (s_entry_t){.k = blk, .klen = klen, .vlen = vlen, .cap = (uint32_t)need};
    c->nents++;
    return SL_OK;
}

int sl_kstate_map_get(sl_kstate_t *s, const char *name, const void *key, uint32_t klen,
                      const void **val, uint32_t *vlen)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_READ, &c);
    if (rc || !c)
        return rc;
    bool found;
    uint32_t i = s_lower(c, key, klen, &found);
    if (!found)
        return 0;
    *val = c->ents[i].k + c->ents[i].klen;
    *vlen = c->ents[i].vlen;
    return 1;
}

int sl_kstate_map_remove(sl_kstate_t *s, const char *name, const void *key, uint32_t klen)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_WRITE, &c);
    if (rc || !c)
        return rc;
    bool found;
    uint32_t i = s_lower(c, key, klen, &found);
    if (!found)
        return 0;
    free(c->ents[i].k);
    memmove(&c->ents[i], &c->ents[i + 1], (size_t)(c->nents - i - 1) * sizeof *c->ents);
    if (--c->nents == 0)
        s_cell_remove(s, c);
    return 1;
}

int sl_kstate_map_len(sl_kstate_t *s, const char *name)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_READ, &c);
    if (rc)
        return rc;
    if (c && c->nents > INT32_MAX)
        return s_fail(s, SL_LIMIT, "map state '%s' has more than %d entries", name, INT32_MAX);
    return c ? (int)c->nents : 0;
}

int sl_kstate_map_at(sl_kstate_t *s, const char *name, uint32_t index, const void **key,
                     uint32_t *klen, const void **val, uint32_t *vlen)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_READ, &c);
    if (rc || !c || index >= c->nents)
        return rc;
    *key = c->ents[index].k;
    *klen = c->ents[index].klen;
    *val = c->ents[index].k + c->ents[index].klen;
    *vlen = c->ents[index].vlen;
    return 1;
}

int sl_kstate_map_seek(sl_kstate_t *s, const char *name, const void *key, uint32_t klen)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_READ, &c);
    if (rc || !c)
        return rc;
    if (c->nents > INT32_MAX)
        return s_fail(s, SL_LIMIT, "map state '%s' has more than %d entries", name, INT32_MAX);
    bool found;
    return (int)s_lower(c, key, klen, &found);
}

int sl_kstate_map_clear(sl_kstate_t *s, const char *name)
{
    s_cell_t *c;
    int rc = s_cell(s, name, SL_KS_MAP, S_WRITE, &c);
    if (rc == SL_OK && c)
        s_cell_remove(s, c);
    return rc;
}

/* ---- timers --------------------------------------------------------------------- */

/* Does heap entry a fire before b? Time, then key bytes, then registration. */
static bool s_hless(const sl_kstate_t *s, const s_hent_t *a, const s_hent_t *b)
{
    if (a->time != b->time)
        return a->time < b->time;
    if (a->key != b->key) {
        const s_key_t *x = &s->keys[a->key], *y = &s->keys[b->key];
        int c = s_keycmp(x->key, x->klen, y->key, y->klen);
        if (c)
            return c < 0;
    }
    return a->seq < b->seq;
}

static int s_heap_push(sl_kstate_t *s, int h, s_hent_t v)
{
    if (s->nheap[h] == s->capheap[h]) {
        if (sl_grow((void **)&s->heap[h], &s->capheap[h], s->nheap[h] + 1, sizeof *s->heap[h]))
            return s_fail(s, SL_NOMEM, "out of memory for timers");
    }
    s_hent_t *a = s->heap[h];
    size_t i = s->nheap[h]++;
    while (i > 0 && s_hless(s, &v, &a[(i - 1) / 2])) {
        a[i] = a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a[i] = v;
    s->keys[v.key].heaprefs++;
    return SL_OK;
}

static s_hent_t s_heap_pop(sl_kstate_t *s, int h)
{
    s_hent_t *a = s->heap[h];
    s_hent_t top = a[0], v = a[--s->nheap[h]];
    size_t i = 0, n = s->nheap[h];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const s_hent_t *best = &v;
        if (l < n && s_hless(s, &a[l], best)) {
            m = l;
            best = &a[l];
        }
        if (r < n && s_hless(s, &a[r], best))
            m = r;
        if (m == i)
            break;
        a[i] = a[m];
        i = m;
    }
    if (n)
        a[i] = v;
    s->keys[top.key].heaprefs--;
    return top;
}

static int s_timer_kind(sl_kstate_t *s, int kind)
{
    if (kind != SL_KS_EVENT && kind != SL_KS_PROCESSING)
        return s_fail(s, SL_INVAL, "unknown timer kind %d (1 = event time, 2 = processing time)",
                      kind);
    if (s->cur < 0)
        return s_fail(s, SL_STATE, "timer used with no current key");
    return SL_OK;
}

int sl_kstate_timer_set(sl_kstate_t *s, sl_ks_timer_t kind, int64_t time)
{
    int rc = s_timer_kind(s, (int)kind);
    if (rc)
        return rc;
    s_key_t *e = &s->keys[s->cur];
    for (int i = 0; i < e->ntimers; i++)
        if (e->timers[i].kind == (int)kind && e->timers[i].time == time)
            return SL_OK;
    if (e->ntimers == e->captimers) {
        size_t cap = (size_t)e->captimers;
        if (sl_grow_ex((void **)&e->timers, &cap, cap + 1, sizeof *e->timers, 2, INT_MAX))
            return s_fail(s, SL_NOMEM, "out of memory for timers");
        e->captimers = (int)cap;
    }
    uint64_t seq = ++s->next_seq;
    if ((rc = s_heap_push(s, (int)kind - 1, (s_hent_t){.time = time, .seq = seq, .key = s->cur})))
        return rc;
    e = &s->keys[s->cur];
    e->timers[e->ntimers++] = (s_ktimer_t){.kind = (int)kind, .time = time, .seq = seq};
    s->pending[kind - 1]++;
    return SL_OK;
}

int sl_kstate_timer_delete(sl_kstate_t *s, sl_ks_timer_t kind, int64_t time)
{
    int rc = s_timer_kind(s, (int)kind);
    if (rc)
        return rc;
    s_key_t *e = &s->keys[s->cur];
    for (int i = 0; i < e->ntimers; i++)
        if (e->timers[i].kind == (int)kind && e->timers[i].time == time) {
            e->timers[i] = e->timers[--e->ntimers];
            s->pending[kind - 1]--;
            return 1; /* its heap entry is now stale */
        }
    return 0;
}

int sl_kstate_timer_next(sl_kstate_t *s, sl_ks_timer_t kind, int64_t until, int64_t *time)
{
    int h = (int)kind - 1;
    if (h < 0 || h > 1)
        return s_fail(s, SL_INVAL, "unknown timer kind %d", (int)kind);
    while (s->nheap[h] && s->heap[h][0].time <= until) {
        s_hent_t top = s_heap_pop(s, h);
        s_key_t *e = &s->keys[top.key];
        for (int i = 0; i < e->ntimers; i++)
            if (e->timers[i].seq == top.seq) {
                e->timers[i] = e->timers[--e->ntimers];
                s->pending[h]--;
                int rc = s->cur >= 0 && s->cur != top.key ? sl_kstate_release(s) : SL_OK;
                s->cur = top.key;
                if (rc)
                    return rc;
                *time = top.time;
                return 1;
            }
        s_key_maybe_free(s, top.key); /* a deleted timer */
    }
    return 0;
}

size_t sl_kstate_timer_count(const sl_kstate_t *s, sl_ks_timer_t kind)
{
    return kind == SL_KS_EVENT || kind == SL_KS_PROCESSING ? s->pending[kind - 1] : 0;
}

void sl_kstate_timer_drop_all(sl_kstate_t *s, sl_ks_timer_t kind)
{
    int h = (int)kind - 1;
    if (h < 0 || h > 1)
        return;
    for (size_t i = 0; i < s->nheap[h]; i++)
        s->keys[s->heap[h][i].key].heaprefs--;
    s->nheap[h] = 0;
    s->pending[h] = 0;
    for (int k = 0; k < s->nkeys; k++) {
        s_key_t *e = &s->keys[k];
        for (int i = 0; e->used && i < e->ntimers;)
            if (e->timers[i].kind == (int)kind)
                e->timers[i] = e->timers[--e->ntimers];
            else
                i++;
        if (e->used)
            s_key_maybe_free(s, k);
    }
}

/* ---- rocksdb backend ------------------------------------------------------------ */

int sl_kstate_set_store(sl_kstate_t *s, sl_kv_t *kv, int max_parallelism)
{
    if (!s->batch && !(s->batch = sl_kv_batch_new()))
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    s->rocks = true;
    s->kv = kv;
    s->maxp = max_parallelism;
    return SL_OK;
}

/* The store key of name id of key e in s->kbuf: the name, a zero byte,
 * then the key's bytes (a name holds no zero byte, so the split is
 * unique). Sets *len and *kg. */
static int s_store_key(sl_kstate_t *s, const s_key_t *e, int id, size_t *len, uint16_t *kg)
{
    const char *name = s->names[id].name;
    size_t nlen = strlen(name), need = nlen + 1 + (size_t)e->klen;
    if (need > s->kcap) {
        uint8_t *b = realloc(s->kbuf, need);
        if (!b)
            return s_fail(s, SL_NOMEM, "out of memory for keyed state");
        s->kbuf = b;
        s->kcap = need;
    }
    memcpy(s->kbuf, name, nlen + 1);
    if (e->klen)
        memcpy(s->kbuf + nlen + 1, e->key, e->klen);
    *len = need;
    *kg = (uint16_t)sl_key_group(e->hash, s->maxp);
    return SL_OK;
}

static s_cell_t *s_find(s_key_t *e, int id)
{
    for (int i = 0; i < e->ncells; i++)
        if (e->cells[i].name == id)
            return &e->cells[i];
    return NULL;
}

/* Parses stored cell bytes v into the current key's cell id (absent). */
static int s_parse(sl_kstate_t *s, int id, const void *v, size_t vlen)
{
    const char *name = s->names[id].name;
    int kind = s->names[id].kind, rc = SL_OK;
    sl_snap_r_t r;
    sl_snap_r_init(&r, v, vlen);
    uint8_t k = sl_snap_get_u8(&r);
    int64_t ts = sl_snap_get_i64(&r);
    if (r.err || k != kind)
        return s_fail(s, SL_DATA, "state '%s' in the store is corrupt or of another kind", name);
    size_t n, vn;
    const uint8_t *p, *q;
    if (kind == SL_KS_VALUE) {
        p = sl_snap_get_bytes(&r, &n);
        rc = r.err ? SL_DATA : sl_kstate_value_set(s, name, p, (uint32_t)n);
    } else {
        uint32_t cnt = sl_snap_get_u32(&r);
        if (cnt == 0 || cnt > r.left / 4)
            r.err = SL_DATA;
        for (uint32_t j = 0; j < cnt && !r.err && rc == SL_OK; j++) {
            p = sl_snap_get_bytes(&r, &n);
            if (kind == SL_KS_LIST) {
                rc = r.err ? SL_DATA : sl_kstate_list_append(s, name, p, (uint32_t)n);
                continue;
            }
            q = sl_snap_get_bytes(&r, &vn);
            rc = r.err ? SL_DATA : sl_kstate_map_put(s, name, p, (uint32_t)n, q, (uint32_t)vn);
        }
    }
    s_cell_t *c = s_find(&s->keys[s->cur], id);
    if (rc == SL_OK && (r.err || r.left))
        rc = SL_DATA;
    if (rc) {
        if (c)
            s_cell_remove(s, c);
        return rc == SL_NOMEM ? rc : s_fail(s, SL_DATA, "state '%s' in the store is corrupt", name);
    }
    if (c)
        c->ts = ts;
    return SL_OK;
}

/* Makes name id of the current key resident: reads its cell from the
 * store unless it was read since the key became current. *res is its
 * index in the key's resident names. */
static int s_resident(sl_kstate_t *s, int id, int *res)
{
    s_key_t *e = &s->keys[s->cur];
    for (int i = 0; i < e->nres; i++)
        if (e->res[i].name == id) {
            *res = i;
            return SL_OK;
        }
    if (!s->kv)
        return s_fail(s, SL_STATE, "keyed state store is not open");
    if (e->nres == e->capres) {
        size_t cap = (size_t)e->capres;
        if (sl_grow_ex((void **)&e->res, &cap, cap + 1, sizeof *e->res, 4, INT_MAX))
            return s_fail(s, SL_NOMEM, "out of memory for keyed state");
        e->capres = (int)cap;
    }
    *res = e->nres;
    e->res[e->nres++] = (s_res_t){.name = id, .dirty = false};
    size_t klen;
    uint16_t kg;
    int rc = s_store_key(s, e, id, &klen, &kg);
    const void *v;
    size_t vlen;
    if (rc == SL_OK)
        rc = sl_kv_get(s->kv, kg, s->kbuf, klen, &v, &vlen);
    if (rc == SL_NOTFOUND)
        return SL_OK;
    if (rc == SL_OK)
        rc = s_parse(s, id, v, vlen);
    else
        s_fail(s, rc, "cannot read keyed state: %s", sl_kv_errmsg(s->kv));
    e = &s->keys[s->cur];
    e->res[*res].dirty = false; /* as stored */
    if (rc)
        e->nres--; /* read it again next time */
    return rc;
}

/* Writes the changed cells of key k to the store and frees all its
 * cells (its timers stay). */
static int s_write_back(sl_kstate_t *s, int k)
{
    s_key_t *e = &s->keys[k];
    int rc = SL_OK;
    for (int i = 0; i < e->nres && rc == SL_OK; i++) {
        if (!e->res[i].dirty)
            continue;
        int id = e->res[i].name;
        size_t klen;
        uint16_t kg;
        if ((rc = s_store_key(s, e, id, &klen, &kg)) != SL_OK)
            break;
        const s_cell_t *c = s_find(e, id);
        if (!c) {
            rc = sl_kv_batch_delete(s->batch, kg, s->kbuf, klen);
            continue;
        }
        sl_snap_w_t *w = &s->enc;
        w->len = 0;
        w->err = 0;
        sl_snap_u8(w, (uint8_t)s->names[id].kind);
        sl_snap_i64(w, c->ts);
        if (s->names[id].kind == SL_KS_VALUE)
            sl_snap_bytes(w, c->buf, c->len);
        else if (s->names[id].kind == SL_KS_LIST) {
            sl_snap_u32(w, c->n);
            for (uint32_t j = 0; j < c->n; j++)
                sl_snap_bytes(w, c->buf + c->off[j], c->off[j + 1] - c->off[j]);
        } else {
            sl_snap_u32(w, c->nents);
            for (uint32_t j = 0; j < c->nents; j++) {
                sl_snap_bytes(w, c->ents[j].k, c->ents[j].klen);
                sl_snap_bytes(w, c->ents[j].k + c->ents[j].klen, c->ents[j].vlen);
            }
        }
        rc = w->err ? w->err : sl_kv_batch_put(s->batch, kg, s->kbuf, klen, w->data, w->len);
    }
    if (rc == SL_OK && sl_kv_batch_count(s->batch))
        rc = s->kv ? sl_kv_batch_commit(s->kv, s->batch) : SL_STATE;
    if (rc && sl_kv_batch_count(s->batch)) { /* a batch cannot be emptied: make a new one */
        sl_kv_batch_destroy(&s->batch);
        s->batch = sl_kv_batch_new();
    }
    for (int i = 0; i < e->ncells; i++)
        s_cell_free(&e->cells[i]);
    e->ncells = 0;
    e->nres = 0;
    if (rc)
        return s_fail(s, rc, "cannot write keyed state: %s",
                      s->kv && sl_kv_errmsg(s->kv)[0] ? sl_kv_errmsg(s->kv) : sl_strerror(rc));
    return SL_OK;
}

/* ---- time to live ----------------------------------------------------------------- */

void sl_kstate_set_ttl(sl_kstate_t *s, int64_t ttl_ms)
{
    s->ttl = ttl_ms > 0 ? ttl_ms : 0;
}

void sl_kstate_set_now(sl_kstate_t *s, int64_t now_ms)
{
    s->now = now_ms;
}

size_t sl_kstate_expire(sl_kstate_t *s)
{
    size_t n = 0;
    if (!s->ttl)
        return 0;
    for (int k = 0; k < s->nkeys; k++) {
        s_key_t *e = &s->keys[k];
        if (!e->used || k == s->cur)
            continue;
        for (int i = 0; i < e->ncells;)
            if (s->now - e->cells[i].ts >= s->ttl) {
                s_cell_free(&e->cells[i]);
                e->cells[i] = e->cells[--e->ncells];
                n++;
            } else
                i++;
        s_key_maybe_free(s, k);
    }
    return n;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define S_SNAP_MAX_NAMES 65536

int sl_kstate_snapshot(const sl_kstate_t *s, sl_snap_w_t *w, int max_parallelism)
{
    sl_snap_u32(w, (uint32_t)s->nnames);
    for (int i = 0; i < s->nnames; i++) {
        sl_snap_bytes(w, s->names[i].name, strlen(s->names[i].name));
        sl_snap_u8(w, (uint8_t)s->names[i].kind);
    }
    uint64_t n = 0;
    for (int k = 0; k < s->nkeys; k++)
        n += s->keys[k].used && (s->keys[k].ncells || s->keys[k].ntimers);
    sl_snap_u64(w, n);
    for (int k = 0; k < s->nkeys && !w->err; k++) {
        const s_key_t *e = &s->keys[k];
        if (!e->used || (!e->ncells && !e->ntimers))
            continue; /* held only by stale timers */
        sl_snap_u32(w, (uint32_t)sl_key_group(e->hash, max_parallelism));
        sl_snap_bytes(w, e->key, e->klen);
        sl_snap_u32(w, (uint32_t)e->ncells);
        for (int i = 0; i < e->ncells; i++) {
            const s_cell_t *c = &e->cells[i];
            sl_snap_u32(w, (uint32_t)c->name);
            sl_snap_i64(w, c->ts);
            switch (s->names[c->name].kind) {
            case SL_KS_VALUE:
                sl_snap_bytes(w, c->buf, c->len);
                break;
            case SL_KS_LIST:
                sl_snap_u32(w, c->n);
                for (uint32_t j = 0; j < c->n; j++)
                    sl_snap_bytes(w, c->buf + c->off[j], c->off[j + 1] - c->off[j]);
                break;
            default:
                sl_snap_u32(w, c->nents);
                for (uint32_t j = 0; j < c->nents; j++) {
                    sl_snap_bytes(w, c->ents[j].k, c->ents[j].klen);
                    sl_snap_bytes(w, c->ents[j].k + c->ents[j].klen, c->ents[j].vlen);
                }
                break;
            }
        }
        sl_snap_u32(w, (uint32_t)e->ntimers);
        for (int i = 0; i < e->ntimers; i++) {
            sl_snap_u8(w, (uint8_t)e->timers[i].kind);
            sl_snap_i64(w, e->timers[i].time);
        }
    }
    return w->err;
}

/* Garbage in a snapshot: SL_DATA with what was wrong. */
static int s_bad(sl_kstate_t *s, const char *what)
{
    return s_fail(s, SL_DATA, "keyed state snapshot is truncated or corrupt (%s)", what);
}

/* A store rc of a restored cell: SL_NOMEM stays, anything else is garbage. */
static int s_cell_rc(sl_kstate_t *s, int rc)
{
    if (rc == SL_NOMEM)
        return rc;
    char why[sizeof s->err];
    snprintf(why, sizeof why, "%s", s->err);
    return s_bad(s, why);
}

/* Reads one cell (kind of the snapshot's name table) into the current key,
 * or past it when apply is false. */
static int s_restore_cell(sl_kstate_t *s, sl_snap_r_t *r, const char *name, int kind, bool apply)
{
    size_t n;
    const uint8_t *p;
    if (kind == SL_KS_VALUE) {
        p = sl_snap_get_bytes(r, &n);
        if (r->err)
            return s_bad(s, "value");
        int rc = apply ? sl_kstate_value_set(s, name, p, (uint32_t)n) : SL_OK;
        return rc ? s_cell_rc(s, rc) : SL_OK;
    }
    uint32_t cnt = sl_snap_get_u32(r);
    if (r->err || cnt == 0 || cnt > r->left / 4)
        return s_bad(s, kind == SL_KS_LIST ? "list length" : "map length");
    const uint8_t *pk = NULL;
    size_t pkn = 0;
    for (uint32_t j = 0; j < cnt; j++) {
        p = sl_snap_get_bytes(r, &n);
        if (kind == SL_KS_LIST) {
            if (r->err)
                return s_bad(s, "list item");
            int rc = apply ? sl_kstate_list_append(s, name, p, (uint32_t)n) : SL_OK;
            if (rc)
                return s_cell_rc(s, rc);
            continue;
        }
        size_t vn;
        const uint8_t *v = sl_snap_get_bytes(r, &vn);
        if (r->err || (j > 0 && s_keycmp(pk, (uint32_t)pkn, p, (uint32_t)n) >= 0))
            return s_bad(s, "map entry");
        pk = p;
        pkn = n;
        int rc = apply ? sl_kstate_map_put(s, name, p, (uint32_t)n, v, (uint32_t)vn) : SL_OK;
        if (rc)
            return s_cell_rc(s, rc);
    }
    return SL_OK;
}

/* Reads one key; names maps the snapshot's name indices to ours. */
static int s_restore_key(sl_kstate_t *s, sl_snap_r_t *r, const int *names, uint32_t nnames,
                         int maxp, int par, int subtask, sl_kstate_key_fn check, void *arg)
{
    uint32_t kg = sl_snap_get_u32(r);
    size_t klen;
    const uint8_t *key = sl_snap_get_bytes(r, &klen);
    uint64_t h = 0;
    if (r->err)
        return s_bad(s, "key");
    if (check(arg, key, (uint32_t)klen, &h) != SL_OK)
        return s_bad(s, "a key that is not a key of this operator");
    if (kg >= (uint32_t)maxp || (int)kg != sl_key_group(h, maxp))
        return s_bad(s, "a key in the wrong key group");
    bool mine = sl_key_group_owner((int)kg, maxp, par) == subtask;
    int rc;
    if (mine) {
        if ((rc = sl_kstate_select(s, h, key, (uint32_t)klen)) != SL_OK)
            return rc;
        const s_key_t *e = &s->keys[s->cur];
        if (e->ncells || e->ntimers)
            return s_bad(s, "the same key twice");
    }
    uint32_t ncells = sl_snap_get_u32(r);
    if (r->err || ncells > nnames)
        return s_bad(s, "cell count");
    for (uint32_t i = 0; i < ncells; i++) {
        uint32_t id = sl_snap_get_u32(r);
        int64_t ts = sl_snap_get_i64(r);
        if (r->err || id >= nnames)
            return s_bad(s, "state name");
        int before = mine ? s->keys[s->cur].ncells : 0;
        if ((rc = s_restore_cell(s, r, s->names[names[id]].name, s->names[names[id]].kind, mine)) !=
            SL_OK)
            return rc;
        if (mine && s->keys[s->cur].ncells != before + 1)
            return s_bad(s, "a state twice in one key");
        if (mine)
            s_find(&s->keys[s->cur], names[id])->ts = ts;
    }
    uint32_t ntimers = sl_snap_get_u32(r);
    if (r->err || ntimers > r->left / 9 || (ncells == 0 && ntimers == 0))
        return s_bad(s, "timer count");
    for (uint32_t i = 0; i < ntimers; i++) {
        uint8_t kind = sl_snap_get_u8(r);
        int64_t t = sl_snap_get_i64(r);
        if (r->err || (kind != SL_KS_EVENT && kind != SL_KS_PROCESSING))
            return s_bad(s, "timer");
        if (!mine)
            continue;
        int nt = s->keys[s->cur].ntimers;
        if ((rc = sl_kstate_timer_set(s, (sl_ks_timer_t)kind, t)) != SL_OK)
            return rc;
        if (s->keys[s->cur].ntimers != nt + 1)
            return s_bad(s, "the same timer twice");
    }
    if (mine && (rc = sl_kstate_release(s)) != SL_OK)
        return rc;
    return SL_OK;
}

int sl_kstate_restore(sl_kstate_t *s, sl_snap_r_t *r, int max_parallelism, int parallelism,
                      int subtask, sl_kstate_key_fn check, void *arg)
{
    s->err[0] = '\0';
    if (s->cur >= 0)
        sl_kstate_release(s);
    uint32_t nnames = sl_snap_get_u32(r);
    if (r->err || nnames > S_SNAP_MAX_NAMES || nnames > r->left / 5)
        return s_bad(s, "name count");
    int *names = malloc(((size_t)nnames + 1) * sizeof *names);
    if (!names)
        return s_fail(s, SL_NOMEM, "out of memory for keyed state");
    int rc = SL_OK;
    for (uint32_t i = 0; i < nnames && rc == SL_OK; i++) {
        size_t n;
        const uint8_t *p = sl_snap_get_bytes(r, &n);
        uint8_t kind = sl_snap_get_u8(r);
        if (r->err || n == 0 || n > 255 || memchr(p, 0, n) || kind < SL_KS_VALUE ||
            kind > SL_KS_MAP) {
            rc = s_bad(s, "state name");
            break;
        }
        char name[256];
        memcpy(name, p, n);
        name[n] = '\0';
        int id = -1;
        for (int q = 0; q < s->nnames && id < 0; q++)
            if (strcmp(s->names[q].name, name) == 0)
                id = q;
        for (uint32_t q = 0; q < i && id >= 0; q++)
            if (names[q] == id)
                rc = s_bad(s, "a state name twice");
        if (rc)
            break;
        if (id >= 0 && s->names[id].kind != kind) {
            rc = s_bad(s, "a state name of two kinds");
            break;
        }
        if (id < 0 && (rc = s_name_add(s, name, kind, &id)) != SL_OK)
            break;
        names[i] = id;
    }
    uint64_t nkeys = rc == SL_OK ? sl_snap_get_u64(r) : 0;
    if (rc == SL_OK && (r->err || nkeys > r->left / 12))
        rc = s_bad(s, "key count");
    for (uint64_t k = 0; k < nkeys && rc == SL_OK; k++)
        rc = s_restore_key(s, r, names, nnames, max_parallelism, parallelism, subtask, check, arg);
    if (s->cur >= 0)
        sl_kstate_release(s);
    free(names);
    return rc;
}
