/* row.c — schemas, the binary row layout and batches (see sluice/row.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/row.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"

static const char *const s_type_names[] = {"null", "int64",  "double",
                                           "bool", "string", "timestamp"};

const char *sl_type_name(sl_type_t t)
{
    return (unsigned)t < sizeof s_type_names / sizeof *s_type_names ? s_type_names[t] : NULL;
}

int sl_type_parse(const char *name, sl_type_t *out)
{
    static const struct {
        const char *name;
        sl_type_t t;
    } names[] = {
        {"int64", SL_TYPE_INT64},  {"int", SL_TYPE_INT64},           {"long", SL_TYPE_INT64},
        {"bigint", SL_TYPE_INT64}, {"double", SL_TYPE_DOUBLE},       {"float", SL_TYPE_DOUBLE},
        {"bool", SL_TYPE_BOOL},    {"boolean", SL_TYPE_BOOL},        {"string", SL_TYPE_STRING},
        {"text", SL_TYPE_STRING},  {"timestamp", SL_TYPE_TIMESTAMP},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].t;
            return SL_OK;
        }
    return SL_NOTFOUND;
}

/* ---- schemas ----------------------------------------------------------- */

sl_schema_t *sl_schema_new(void)
{
    return calloc(1, sizeof(sl_schema_t));
}

void sl_schema_destroy(sl_schema_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_schema_t *s = *pp;
    for (int i = 0; i < s->nfields; i++)
        free(s->fields[i].name);
    free(s->fields);
    free(s);
    *pp = NULL;
}

int sl_schema_add(sl_schema_t *s, const char *name, sl_type_t type)
{
    if (sl_schema_find(s, name) >= 0)
        return SL_EXISTS;
    sl_field_t *f = realloc(s->fields, (size_t)(s->nfields + 1) * sizeof *f);
    if (!f)
        return SL_NOMEM;
    s->fields = f;
    char *copy = strdup(name);
    if (!copy)
        return SL_NOMEM;
    s->fields[s->nfields++] = (sl_field_t){.name = copy, .type = type};
    return SL_OK;
}

int sl_schema_find(const sl_schema_t *s, const char *name)
{
    for (int i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return i;
    return -1;
}

sl_schema_t *sl_schema_copy(const sl_schema_t *s)
{
    sl_schema_t *c = sl_schema_new();
    for (int i = 0; c && i < s->nfields; i++)
        if (sl_schema_add(c, s->fields[i].name, s->fields[i].type) != SL_OK)
            sl_schema_destroy(&c);
    return c;
}

void sl_schema_format(const sl_schema_t *s, char *buf, size_t cap)
{
    size_t off = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < s->nfields && off < cap; i++) {
        int n = snprintf(buf + off, cap - off, "%s%s:%s", i ? ", " : "", s->fields[i].name,
                         sl_type_name(s->fields[i].type));
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

/* ---- rows -------------------------------------------------------------- */

static inline size_t s_bitmap_bytes(int n)
{
    return ((size_t)n + 7u) / 8u;
}

static inline size_t s_fixed_bytes(int n)
{
    return 4u + s_bitmap_bytes(n) + 8u * (size_t)n;
}

size_t sl_row_size(const sl_schema_t *s, const sl_value_t *vals)
{
    size_t size = s_fixed_bytes(s->nfields);
    for (int i = 0; i < s->nfields; i++)
        if (s->fields[i].type == SL_TYPE_STRING && !vals[i].is_null)
            size += vals[i].len;
    return size;
}

size_t sl_row_encode(const sl_schema_t *s, const sl_value_t *vals, uint8_t *dst)
{
    int n = s->nfields;
    uint8_t *bitmap = dst + 4;
    uint8_t *slots = bitmap + s_bitmap_bytes(n);
    size_t var = s_fixed_bytes(n);
    memset(bitmap, 0, s_bitmap_bytes(n));
    for (int i = 0; i < n; i++) {
        const sl_value_t *v = &vals[i];
        uint8_t *slot = slots + 8u * (size_t)i;
        if (v->is_null) {
            bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
            memset(slot, 0, 8);
            continue;
        }
        switch (s->fields[i].type) {
        case SL_TYPE_INT64:
        case SL_TYPE_TIMESTAMP:
            memcpy(slot, &v->u.i, 8);
            break;
        case SL_TYPE_DOUBLE:
            memcpy(slot, &v->u.d, 8);
            break;
        case SL_TYPE_BOOL: {
            uint64_t b = v->u.b ? 1 : 0;
            memcpy(slot, &b, 8);
            break;
        }
        case SL_TYPE_STRING: {
            uint32_t off = (uint32_t)var, len = v->len;
            memcpy(slot, &off, 4);
            memcpy(slot + 4, &len, 4);
            if (len)
                memcpy(dst + var, v->u.s, len);
            var += len;
            break;
        }
        case SL_TYPE_NULL:
            break;
        }
    }
    uint32_t total = (uint32_t)var;
    memcpy(dst, &total, 4);
    return var;
}

uint32_t sl_row_len(const uint8_t *row)
{
    uint32_t len;
    memcpy(&len, row, 4);
    return len;
}

void sl_row_decode(const sl_schema_t *s, const uint8_t *row, sl_value_t *out)
{
    for (int i = 0; i < s->nfields; i++)
        sl_row_get(s, row, i, &out[i]);
}

int sl_row_check(const sl_schema_t *s, const uint8_t *row, size_t len)
{
    size_t fixed = s_fixed_bytes(s->nfields);
    if (len < fixed || sl_row_len(row) != len)
        return SL_DATA;
    const uint8_t *slots = row + 4 + s_bitmap_bytes(s->nfields);
    for (int i = 0; i < s->nfields; i++) {
        if (s->fields[i].type == SL_TYPE_STRING) {
            uint32_t off, slen;
            memcpy(&off, slots + 8u * (size_t)i, 4);
            memcpy(&slen, slots + 8u * (size_t)i + 4, 4);
            if (row[4 + i / 8] & (1u << (i % 8)))
                continue;
            if (off < fixed || off > len || slen > len - off)
                return SL_DATA;
        }
    }
    return SL_OK;
}

/* ---- values ------------------------------------------------------------- */

static int s_cmp_num(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b); /* NaN sorts last */
    return (a > b) - (a < b);
}

int sl_value_cmp(const sl_value_t *a, const sl_value_t *b)
{
    if (a->is_null || b->is_null)
        return (int)!a->is_null - (int)!b->is_null;
    if (a->type == SL_TYPE_DOUBLE || b->type == SL_TYPE_DOUBLE) {
        double x = a->type == SL_TYPE_DOUBLE ? a->u.d : (double)a->u.i;
        double y = b->type == SL_TYPE_DOUBLE ? b->u.d : (double)b->u.i;
        return s_cmp_num(x, y);
    }
    if (a->type != b->type)
        return (int)a->type - (int)b->type;
    switch (a->type) {
    case SL_TYPE_INT64:
    case SL_TYPE_TIMESTAMP:
        return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    case SL_TYPE_BOOL:
        return (int)a->u.b - (int)b->u.b;
    case SL_TYPE_STRING: {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        if (c)
            return c;
        return (a->len > b->len) - (a->len < b->len);
    }
    default:
        return 0;
    }
}

bool sl_value_eq(const sl_value_t *a, const sl_value_t *b)
{
    if (a->is_null || b->is_null)
        return a->is_null && b->is_null;
    if (a->type != b->type)
        return false;
    if (a->type == SL_TYPE_DOUBLE)
        return memcmp(&a->u.d, &b->u.d, 8) == 0;
    return sl_value_cmp(a, b) == 0;
}

/* ---- the value hash --------------------------------------------------------
 *
 * Word at a time, after xxHash64's short-input path (one lane): every
 * 8-byte word w goes through s_round, whose rotations and multiplies by
 * odd constants carry every input bit into every bit of the state, and the
 * end is xxHash64's avalanche. Words are read little-endian whatever the
 * host, so the hash is the same on every host and run: it picks the key
 * groups (state placement), so changing it is a checkpoint format change
 * (see the format version in master.c's _metadata and worker/task.c). */

#define S_P1 0x9E3779B185EBCA87ull
#define S_P2 0xC2B2AE3D27D4EB4Full
#define S_P3 0x165667B19E3779F9ull
#define S_P4 0x85EBCA77C2B2AE63ull
#define S_P5 0x27D4EB2F165667C5ull

static inline uint64_t s_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t s_le64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) &&                                    \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static inline uint64_t s_le32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) &&                                    \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    return w;
}

static inline uint64_t s_round(uint64_t h, uint64_t w)
{
    h ^= s_rotl(w * S_P2, 31) * S_P1;
    return s_rotl(h, 27) * S_P1 + S_P4;
}

/* The n bytes at p; the length is hashed before them (by the caller), so
 * the overlapping and zero-padded reads of the tail are unambiguous. */
static uint64_t s_hash_bytes(uint64_t h, const uint8_t *p, uint32_t n)
{
    if (n >= 8) {
        uint32_t i = 0;
        for (; i + 8 <= n; i += 8)
            h = s_round(h, s_le64(p + i));
        if (i < n) /* the last 8 bytes, overlapping the last full word */
            h = s_round(h, s_le64(p + n - 8));
    } else if (n >= 4) {
        h = s_round(h, s_le32(p) | s_le32(p + n - 4) << 32);
    } else if (n > 0) {
        h = s_round(h, (uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1]);
    }
    return h;
}

uint64_t sl_value_hash(const sl_value_t *vals, int n)
{
    uint64_t h = S_P5 + (uint64_t)n;
    for (int i = 0; i < n; i++) {
        const sl_value_t *v = &vals[i];
        if (v->is_null) {
            h = s_round(h, 0);
            continue;
        }
        uint64_t tag = (uint64_t)(uint8_t)v->type;
        switch (v->type) {
        case SL_TYPE_STRING:
            h = s_round(h, tag | (uint64_t)v->len << 8);
            h = s_hash_bytes(h, (const uint8_t *)v->u.s, v->len);
            break;
        case SL_TYPE_BOOL:
            h = s_round(h, tag | (uint64_t)(v->u.b ? 1 : 0) << 8);
            break;
        default: /* int64, timestamp, double (its bits: sl_value_eq compares them) */
            h = s_round(h, tag);
            h = s_round(h, (uint64_t)v->u.i);
            break;
        }
    }
    h ^= h >> 33;
    h *= S_P2;
    h ^= h >> 29;
    h *= S_P3;
    h ^= h >> 32;
    return h;
}

/* ---- batches ---------------------------------------------------------- */

sl_batch_t *sl_batch_new(uint32_t cap)
{
    sl_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cap = cap ? cap : SL_BATCH_DEFAULT_CAP;
    b->data = malloc(b->cap);
    if (!b->data) {
        free(b);
        return NULL;
    }
    return b;
}

void sl_batch_destroy(sl_batch_t **pp)
{
    if (!pp || !*pp)
        return;
    free((*pp)->data);
    free(*pp);
    *pp = NULL;
}

void sl_batch_clear(sl_batch_t *b)
{
    b->len = 0;
    b->count = 0;
}

uint8_t *sl_batch_take(sl_batch_t *b)
{
    uint8_t *fresh = malloc(b->cap);
    if (!fresh)
        return NULL;
    uint8_t *old = b->data;
    b->data = fresh;
    b->len = 0;
    b->count = 0;
    return old;
}

static int s_batch_reserve(sl_batch_t *b, size_t need)
{
    if ((size_t)b->len + need <= b->cap)
        return SL_OK;
    if (b->count)
        return SL_LIMIT;
    if (need > SL_ROW_MAX)
        return SL_RANGE;
    uint8_t *d = realloc(b->data, need);
    if (!d)
        return SL_NOMEM;
    b->data = d;
    b->cap = (uint32_t)need;
    return SL_OK;
}

int sl_batch_append(sl_batch_t *b, const sl_schema_t *s, const sl_value_t *vals)
{
    size_t need = sl_row_size(s, vals);
    if (need > SL_ROW_MAX)
        return SL_RANGE;
    int rc = s_batch_reserve(b, need);
    if (rc)
        return rc;
    b->len += (uint32_t)sl_row_encode(s, vals, b->data + b->len);
    b->count++;
    return SL_OK;
}

int sl_batch_append_raw(sl_batch_t *b, const uint8_t *row, uint32_t len)
{
    if (len > SL_ROW_MAX)
        return SL_RANGE;
    int rc = s_batch_reserve(b, len);
    if (rc)
        return rc;
    memcpy(b->data + b->len, row, len);
    b->len += len;
    b->count++;
    return SL_OK;
}

int sl_batch_check(const sl_schema_t *s, const uint8_t *data, uint32_t len, uint32_t count)
{
    uint32_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 4)
            return SL_DATA;
        uint32_t rl = sl_row_len(data + off);
        if (rl > len - off || sl_row_check(s, data + off, rl) != SL_OK)
            return SL_DATA;
        off += rl;
    }
    return off == len ? SL_OK : SL_DATA;
}

int sl_batch_load(sl_batch_t *b, const sl_schema_t *s, const uint8_t *data, uint32_t len,
                  uint32_t count)
{
    sl_batch_clear(b);
    if (sl_batch_check(s, data, len, count) != SL_OK)
        return SL_DATA;
    if (len > b->cap) {
        uint8_t *d = realloc(b->data, len);
        if (!d)
            return SL_NOMEM;
        b->data = d;
        b->cap = len;
    }
    if (len)
        memcpy(b->data, data, len);
    b->len = len;
    b->count = count;
    return SL_OK;
}

const uint8_t *sl_batch_first(const sl_batch_t *b)
{
    return b->count ? b->data : NULL;
}

const uint8_t *sl_batch_next(const sl_batch_t *b, const uint8_t *row)
{
    const uint8_t *next = row + sl_row_len(row);
    return next < b->data + b->len ? next : NULL;
}
