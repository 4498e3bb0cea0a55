/* op_aggregate.c — running count/sum/min/max/avg per key.
 *
 * Every subtask owns the keys of its key groups (the edge into it is hash
 * partitioned), so its table is complete for those keys. On a bounded
 * input, finish() emits the final value of every key, in first-seen order.
 *
 * The table is open addressing over an insertion-ordered entry array; keys
 * are stored once, encoded as rows of the key schema (equal keys encode to
 * equal bytes), in one growing buffer: memory grows per new key, never per
 * record. (Keyed state moves to RocksDB with checkpoints; this is the
 * in-memory backend.) */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "operator.h"
#include "sluice/err.h"

typedef struct {
    int64_t i;    /* int64 sum, int64/timestamp/bool min/max, string offset */
    double d;     /* double sum, min/max; avg sum */
    int64_t n;    /* values seen (count, avg denominator) */
    uint32_t len; /* string min/max length */
} s_acc_t;

typedef struct {
    uint64_t hash;
    uint64_t key_off; /* into keys */
    uint32_t key_len;
} s_entry_t;

typedef struct {
    sl_schema_t *key_schema;
    sl_value_t *in;   /* decoded input row */
    sl_value_t *key;  /* key values of the current row */
    sl_value_t *out;  /* output row */
    uint8_t *scratch; /* encoded key of the current row */
    size_t scratch_cap;
    uint8_t *keys; /* all stored keys, back to back */
    size_t keys_len, keys_cap;
    char *strs; /* string min/max values */
    size_t strs_len, strs_cap;
    s_entry_t *entries; /* insertion order */
    s_acc_t *accs;      /* naggs per entry */
    size_t n, cap;      /* entries used / allocated */
    int32_t *table;     /* slots -> entry index, -1 empty */
    size_t tmask;       /* table size - 1 */
} s_agg_t;

static int s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return SL_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return SL_NOMEM;
    *p = np;
    *cap = nc;
    return SL_OK;
}

static int s_open(sl_opctx_t *c)
{
    const sl_plan_node_t *nd = c->node;
    s_agg_t *a = calloc(1, sizeof *a);
    if (!a)
        return SL_NOMEM;
    c->state = a;
    a->key_schema = sl_schema_new();
    a->in = calloc((size_t)c->in->nfields + 1, sizeof(sl_value_t));
    a->key = calloc((size_t)nd->nkeys + 1, sizeof(sl_value_t));
    a->out = calloc((size_t)nd->out->nfields + 1, sizeof(sl_value_t));
    a->tmask = 1023;
    a->table = malloc((a->tmask + 1) * sizeof *a->table);
    if (!a->key_schema || !a->in || !a->key || !a->out || !a->table)
        return SL_NOMEM;
    memset(a->table, 0xff, (a->tmask + 1) * sizeof *a->table);
    for (int i = 0; i < nd->nkeys; i++)
        if (sl_schema_add(a->key_schema, c->in->fields[nd->keys[i]].name,
                          c->in->fields[nd->keys[i]].type) != SL_OK)
            return SL_NOMEM;
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    s_agg_t *a = c->state;
    if (!a)
        return;
    sl_schema_destroy(&a->key_schema);
    free(a->in);
    free(a->key);
    free(a->out);
    free(a->scratch);
    free(a->keys);
    free(a->strs);
    free(a->entries);
    free(a->accs);
    free(a->table);
    free(a);
    c->state = NULL;
}

static int s_rehash(s_agg_t *a)
{
    size_t size = (a->tmask + 1) * 2;
    int32_t *t = malloc(size * sizeof *t);
    if (!t)
        return SL_NOMEM;
    memset(t, 0xff, size * sizeof *t);
    for (size_t e = 0; e < a->n; e++) {
        size_t s = a->entries[e].hash & (size - 1);
        while (t[s] >= 0)
            s = (s + 1) & (size - 1);
        t[s] = (int32_t)e;
    }
    free(a->table);
    a->table = t;
    a->tmask = size - 1;
    return SL_OK;
}

/* Entry index of the current key (a->scratch, klen bytes), created if new. */
static int s_lookup(sl_opctx_t *c, s_agg_t *a, uint64_t h, uint32_t klen, size_t *out)
{
    size_t s = h & a->tmask;
    while (a->table[s] >= 0) {
        s_entry_t *e = &a->entries[a->table[s]];
        if (e->hash == h && e->key_len == klen &&
            memcmp(a->keys + e->key_off, a->scratch, klen) == 0) {
            *out = (size_t)a->table[s];
            return SL_OK;
        }
        s = (s + 1) & a->tmask;
    }
    if (a->n >= INT32_MAX)
        return sl_op_fail(c, SL_LIMIT, "aggregate '%s': too many keys", c->node->name);
    int naggs = c->node->naggs;
    size_t ecap = a->cap;
    if (s_grow((void **)&a->entries, &ecap, a->n + 1, sizeof *a->entries) ||
        s_grow((void **)&a->accs, &a->cap, a->n + 1, sizeof(s_acc_t) * (size_t)naggs) ||
        s_grow((void **)&a->keys, &a->keys_cap, a->keys_len + klen, 1))
        return SL_NOMEM;
    memcpy(a->keys + a->keys_len, a->scratch, klen);
    a->entries[a->n] = (s_entry_t){.hash = h, .key_off = a->keys_len, .key_len = klen};
    memset(&a->accs[a->n * (size_t)naggs], 0, sizeof(s_acc_t) * (size_t)naggs);
    a->keys_len += klen;
    a->table[s] = (int32_t)a->n;
    *out = a->n++;
    if (a->n * 2 > a->tmask + 1)
        return s_rehash(a);
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
            if (s_grow((void **)&a->strs, &a->strs_cap, a->strs_len + v->len + 1, 1))
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

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, a->in);
        for (int k = 0; k < nd->nkeys; k++)
            a->key[k] = a->in[nd->keys[k]];
        size_t klen = sl_row_size(a->key_schema, a->key);
        if (s_grow((void **)&a->scratch, &a->scratch_cap, klen, 1))
            return SL_NOMEM;
        sl_row_encode(a->key_schema, a->key, a->scratch);
        size_t e = 0;
        int rc = s_lookup(c, a, sl_value_hash(a->key, nd->nkeys), (uint32_t)klen, &e);
        if (rc)
            return rc;
        for (int g = 0; g < nd->naggs; g++) {
            const sl_agg_t *ag = &nd->aggs[g];
            sl_value_t none = sl_value_null();
            rc = s_update(a, ag, &a->accs[e * (size_t)nd->naggs + (size_t)g],
                          ag->field >= 0 ? &a->in[ag->field] : &none);
            if (rc)
                return rc;
        }
    }
    return SL_OK;
}

static int s_finish(sl_opctx_t *c)
{
    s_agg_t *a = c->state;
    const sl_plan_node_t *nd = c->node;
    for (size_t e = 0; e < a->n; e++) {
        sl_row_decode(a->key_schema, a->keys + a->entries[e].key_off, a->out);
        for (int g = 0; g < nd->naggs; g++) {
            const sl_agg_t *ag = &nd->aggs[g];
            const s_acc_t *acc = &a->accs[e * (size_t)nd->naggs + (size_t)g];
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
        int rc = sl_emit(&c->out, a->out);
        if (rc)
            return rc;
    }
    return SL_OK;
}

const sl_op_vtable_t sl_op_aggregate = {
    .open = s_open, .process = s_process, .finish = s_finish, .close = s_close};
