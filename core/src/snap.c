/* snap.c — the byte format of operator snapshots (see sluice/snap.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/snap.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"

void sl_snap_w_init(sl_snap_w_t *w)
{
    memset(w, 0, sizeof *w);
}

void sl_snap_w_free(sl_snap_w_t *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

bool sl_snap_reserve(sl_snap_w_t *w, size_t n)
{
    if (w->err)
        return false;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *d = realloc(w->data, cap);
        if (!d) {
            w->err = SL_NOMEM;
            return false;
        }
        w->data = d;
        w->cap = cap;
    }
    return true;
}

static void s_put(sl_snap_w_t *w, const void *p, size_t n)
{
    if (!sl_snap_reserve(w, n))
        return;
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

/* Little-endian encodings, whatever the host. */
static void s_put_le(sl_snap_w_t *w, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    s_put(w, b, (size_t)bytes);
}

void sl_snap_u8(sl_snap_w_t *w, uint8_t v)
{
    s_put(w, &v, 1);
}

void sl_snap_u32(sl_snap_w_t *w, uint32_t v)
{
    s_put_le(w, v, 4);
}

void sl_snap_u64(sl_snap_w_t *w, uint64_t v)
{
    s_put_le(w, v, 8);
}

void sl_snap_i64(sl_snap_w_t *w, int64_t v)
{
    s_put_le(w, (uint64_t)v, 8);
}

void sl_snap_f64(sl_snap_w_t *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    s_put_le(w, u, 8);
}

void sl_snap_bytes(sl_snap_w_t *w, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        w->err = SL_RANGE;
        return;
    }
    sl_snap_u32(w, (uint32_t)n);
    s_put(w, p, n);
}

void sl_snap_value(sl_snap_w_t *w, const sl_value_t *v)
{
    if (v->is_null) {
        sl_snap_u8(w, 0xff);
        return;
    }
    sl_snap_u8(w, (uint8_t)v->type);
    switch (v->type) {
    case SL_TYPE_DOUBLE:
        sl_snap_f64(w, v->u.d);
        break;
    case SL_TYPE_BOOL:
        sl_snap_u8(w, v->u.b ? 1 : 0);
        break;
    case SL_TYPE_STRING:
        sl_snap_bytes(w, v->u.s, v->len);
        break;
    default: /* int64, timestamp */
        sl_snap_i64(w, v->u.i);
        break;
    }
}

void sl_snap_r_init(sl_snap_r_t *r, const void *data, size_t len)
{
    r->p = data;
    r->left = len;
    r->err = 0;
}

static const uint8_t *s_take(sl_snap_r_t *r, size_t n)
{
    if (r->err || n > r->left) {
        r->err = SL_DATA;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t s_get_le(sl_snap_r_t *r, int bytes)
{
    const uint8_t *b = s_take(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; b && i < bytes; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

uint8_t sl_snap_get_u8(sl_snap_r_t *r)
{
    return (uint8_t)s_get_le(r, 1);
}

uint32_t sl_snap_get_u32(sl_snap_r_t *r)
{
    return (uint32_t)s_get_le(r, 4);
}

uint64_t sl_snap_get_u64(sl_snap_r_t *r)
{
    return s_get_le(r, 8);
}

int64_t sl_snap_get_i64(sl_snap_r_t *r)
{
    return (int64_t)s_get_le(r, 8);
}

double sl_snap_get_f64(sl_snap_r_t *r)
{
    uint64_t u = s_get_le(r, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

const uint8_t *sl_snap_get_bytes(sl_snap_r_t *r, size_t *n)
{
    uint32_t len = sl_snap_get_u32(r);
    const uint8_t *p = s_take(r, len);
    *n = p ? len : 0;
    return p;
}

void sl_snap_get_value(sl_snap_r_t *r, sl_value_t *v)
{
    uint8_t t = sl_snap_get_u8(r);
    *v = sl_value_null();
    if (r->err || t == 0xff)
        return;
    size_t n;
    const uint8_t *p;
    switch (t) {
    case SL_TYPE_INT64:
        *v = sl_value_int(sl_snap_get_i64(r));
        break;
    case SL_TYPE_TIMESTAMP:
        *v = sl_value_ts(sl_snap_get_i64(r));
        break;
    case SL_TYPE_DOUBLE:
        *v = sl_value_double(sl_snap_get_f64(r));
        break;
    case SL_TYPE_BOOL: {
        uint8_t b = sl_snap_get_u8(r);
        if (b > 1)
            r->err = SL_DATA;
        *v = sl_value_bool(b == 1);
        break;
    }
    case SL_TYPE_STRING:
        p = sl_snap_get_bytes(r, &n);
        *v = sl_value_str(p ? (const char *)p : "", (uint32_t)n);
        break;
    default:
        r->err = SL_DATA;
        break;
    }
    if (r->err)
        *v = sl_value_null();
}
