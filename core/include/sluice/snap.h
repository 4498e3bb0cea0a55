/* snap.h — the byte format of operator snapshots (checkpoint state).
 *
 * A writer appends little-endian fixed-width integers, doubles, length-
 * prefixed byte strings and typed values to a growing buffer; a reader
 * takes them back in the same order. The reader never reads past its
 * buffer: a short or malformed snapshot sets r->err (SL_DATA) and every
 * later read returns zeros, so a restore can read everything and check
 * the error once at the end. Integrity of the whole file (checksums) is
 * the checkpoint layer's job (docs/fault-tolerance.md); this layer only
 * makes sure garbage cannot crash a restore.
 *
 * Values: a type byte (SL_TYPE_*; 0xff = null), then int64/timestamp as
 * i64, double as f64, bool as u8, string as bytes. Strings read back
 * point into the reader's buffer (copy them if they must outlive it). */
#ifndef SLUICE_SNAP_H
#define SLUICE_SNAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/row.h"

typedef struct {
    uint8_t *data; /* owned */
    size_t len, cap;
    int err; /* SL_NOMEM after a failed growth; later writes are dropped */
} sl_snap_w_t;

void sl_snap_w_init(sl_snap_w_t *w);
void sl_snap_w_free(sl_snap_w_t *w);
void sl_snap_u8(sl_snap_w_t *w, uint8_t v);
void sl_snap_u32(sl_snap_w_t *w, uint32_t v);
void sl_snap_u64(sl_snap_w_t *w, uint64_t v);
void sl_snap_i64(sl_snap_w_t *w, int64_t v);
void sl_snap_f64(sl_snap_w_t *w, double v);
/* A u32 length, then the bytes. */
void sl_snap_bytes(sl_snap_w_t *w, const void *p, size_t n);
void sl_snap_value(sl_snap_w_t *w, const sl_value_t *v);
/* Makes room for n more bytes at w->data + w->len (for a writer that
 * encodes in place and then adds to w->len); false (w->err set) without. */
bool sl_snap_reserve(sl_snap_w_t *w, size_t n);

typedef struct {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left */
    int err;          /* SL_DATA once a read ran past the end or met garbage */
} sl_snap_r_t;

void sl_snap_r_init(sl_snap_r_t *r, const void *data, size_t len);
uint8_t sl_snap_get_u8(sl_snap_r_t *r);
uint32_t sl_snap_get_u32(sl_snap_r_t *r);
uint64_t sl_snap_get_u64(sl_snap_r_t *r);
int64_t sl_snap_get_i64(sl_snap_r_t *r);
double sl_snap_get_f64(sl_snap_r_t *r);
/* The bytes of a length-prefixed string (borrowed), *n its length; NULL
 * (and *n 0) on error. */
const uint8_t *sl_snap_get_bytes(sl_snap_r_t *r, size_t *n);
/* A value; a string points into the reader's buffer. Unknown type bytes
 * set the error. */
void sl_snap_get_value(sl_snap_r_t *r, sl_value_t *v);

#endif
