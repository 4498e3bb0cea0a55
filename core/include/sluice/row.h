/* row.h — types, schemas, the binary row format and record batches.
 *
 * Every edge of a plan carries one schema; every record on it is a row in
 * the layout below, and rows travel in batches (one ZeroMQ message each).
 *
 * Row layout (little-endian, no alignment assumed; read with memcpy):
 *   u32   total length of the row in bytes, this header included
 *   u8[]  null bitmap, ceil(nfields / 8) bytes, bit i set = field i is null
 *   u64[] one 8-byte slot per field:
 *           int64 / timestamp: the value; double: its bits; bool: 0 or 1;
 *           string: u32 offset from row start, u32 length
 *   u8[]  variable part: string bytes, not NUL-terminated
 *
 * A batch is rows packed back to back; its count is kept beside it. */
#ifndef SLUICE_ROW_H
#define SLUICE_ROW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    SL_TYPE_NULL = 0, /* only the type of the literal `null` in expressions */
    SL_TYPE_INT64,
    SL_TYPE_DOUBLE,
    SL_TYPE_BOOL,
    SL_TYPE_STRING,
    SL_TYPE_TIMESTAMP, /* int64 milliseconds since the Unix epoch, UTC */
} sl_type_t;

/* "int64", "double", ...; NULL for an out-of-range value. */
const char *sl_type_name(sl_type_t t);
/* Parse a type name (also accepts "int", "long", "float", "boolean", "text"
 * as aliases); returns 0 and sets *out, or SL_NOTFOUND. */
int sl_type_parse(const char *name, sl_type_t *out);

/* A decoded field value. Strings are borrowed: they point into a row, a
 * batch or an arena and are valid only as long as that storage. */
typedef struct {
    sl_type_t type; /* type of the value when !is_null */
    bool is_null;
    uint32_t len; /* string length in bytes */
    union {
        int64_t i; /* int64, timestamp */
        double d;
        bool b;
        const char *s; /* string bytes, not NUL-terminated */
    } u;
} sl_value_t;

/* Schema: a read-only list of named, typed, nullable fields. */
typedef struct {
    char *name;     /* owned */
    sl_type_t type; /* never SL_TYPE_NULL */
} sl_field_t;

typedef struct sl_schema {
    int nfields;        /* read-only */
    sl_field_t *fields; /* read-only, nfields entries */
} sl_schema_t;

sl_schema_t *sl_schema_new(void);
void sl_schema_destroy(sl_schema_t **pp);
/* Appends a field (name copied). SL_EXISTS if the name is taken. */
int sl_schema_add(sl_schema_t *s, const char *name, sl_type_t type);
/* Index of the field called name, or -1. */
int sl_schema_find(const sl_schema_t *s, const char *name);
sl_schema_t *sl_schema_copy(const sl_schema_t *s);
/* Writes "word:string, count:int64" into buf (truncated to cap). */
void sl_schema_format(const sl_schema_t *s, char *buf, size_t cap);

/* Bytes needed to encode vals (nfields values) as a row of schema s. */
size_t sl_row_size(const sl_schema_t *s, const sl_value_t *vals);
/* Encodes vals into dst (at least sl_row_size bytes); returns bytes written.
 * Values must have their field's type or be null. */
size_t sl_row_encode(const sl_schema_t *s, const sl_value_t *vals, uint8_t *dst);
/* Length of an encoded row (its header). */
uint32_t sl_row_len(const uint8_t *row);
/* Decodes all fields of row into out[nfields]; strings point into row. */
void sl_row_decode(const sl_schema_t *s, const uint8_t *row, sl_value_t *out);
/* Decodes field i only. Inline: operators call it per record. */
static inline void sl_row_get(const sl_schema_t *s, const uint8_t *row, int i, sl_value_t *out)
{
    const uint8_t *bitmap = row + 4;
    const uint8_t *slot = bitmap + ((size_t)s->nfields + 7u) / 8u + 8u * (size_t)i;
    sl_type_t t = s->fields[i].type;
    out->type = t;
    out->len = 0;
    out->is_null = false;
    if ((bitmap[i / 8] & (1u << (i % 8))) || t == SL_TYPE_NULL) {
        out->is_null = true;
        out->u.i = 0;
        return;
    }
    if (t == SL_TYPE_STRING) {
        uint32_t off, len;
        memcpy(&off, slot, 4);
        memcpy(&len, slot + 4, 4);
        out->u.s = (const char *)row + off;
        out->len = len;
    } else if (t == SL_TYPE_BOOL) {
        uint64_t b;
        memcpy(&b, slot, 8);
        out->u.b = b != 0;
    } else { /* int64, timestamp, double: the same 8 bytes */
        memcpy(&out->u.i, slot, 8);
    }
}
/* Checks that len bytes at row hold one well-formed row of schema s (used on
 * batches from the network). Returns 0 or SL_DATA. */
int sl_row_check(const sl_schema_t *s, const uint8_t *row, size_t len);

/* Value helpers. Inline: every operator builds values per record, and an
 * out-of-line call returning the struct through memory costs a store-forwarding
 * stall when the caller copies the result. */
static inline sl_value_t sl_value_null(void)
{
    return (sl_value_t){.type = SL_TYPE_NULL, .is_null = true};
}
static inline sl_value_t sl_value_int(int64_t i)
{
    return (sl_value_t){.type = SL_TYPE_INT64, .u.i = i};
}
static inline sl_value_t sl_value_double(double d)
{
    return (sl_value_t){.type = SL_TYPE_DOUBLE, .u.d = d};
}
static inline sl_value_t sl_value_bool(bool b)
{
    return (sl_value_t){.type = SL_TYPE_BOOL, .u.b = b};
}
static inline sl_value_t sl_value_str(const char *s, uint32_t len)
{
    return (sl_value_t){.type = SL_TYPE_STRING, .len = len, .u.s = s};
}
static inline sl_value_t sl_value_ts(int64_t ms)
{
    return (sl_value_t){.type = SL_TYPE_TIMESTAMP, .u.i = ms};
}
/* Total order used by sorting, min/max and comparisons of equal types;
 * nulls sort first. Returns <0, 0, >0. */
int sl_value_cmp(const sl_value_t *a, const sl_value_t *b);
bool sl_value_eq(const sl_value_t *a, const sl_value_t *b);
/* Stable 64-bit hash (same on every host and run) of n values. */
uint64_t sl_value_hash(const sl_value_t *vals, int n);

/* ---- batches ---------------------------------------------------------- */

#define SL_BATCH_DEFAULT_CAP (32u * 1024u)
#define SL_ROW_MAX (16u * 1024u * 1024u) /* largest single row */

/* A batch of rows. Hot-path struct: fields are public. */
typedef struct sl_batch {
    uint8_t *data;  /* public read-only: rows back to back */
    uint32_t len;   /* public read-only: bytes used */
    uint32_t cap;   /* private: bytes allocated */
    uint32_t count; /* public read-only: number of rows */
} sl_batch_t;

sl_batch_t *sl_batch_new(uint32_t cap);
void sl_batch_destroy(sl_batch_t **pp);
void sl_batch_clear(sl_batch_t *b);
/* Hands b's bytes to the caller (to free with free()) and gives b a new,
 * empty buffer of the same capacity; NULL, and b unchanged, when out of
 * memory. For sending a batch without copying it. */
uint8_t *sl_batch_take(sl_batch_t *b);
/* Appends a row. Returns 0; SL_LIMIT when the batch is non-empty and the row
 * does not fit (flush, then retry); SL_RANGE when the row exceeds SL_ROW_MAX.
 * An empty batch grows to hold one large row. */
int sl_batch_append(sl_batch_t *b, const sl_schema_t *s, const sl_value_t *vals);
/* Appends an already-encoded row (same rules as sl_batch_append). */
int sl_batch_append_raw(sl_batch_t *b, const uint8_t *row, uint32_t len);
/* Checks that len bytes hold exactly count well-formed rows of schema s
 * (a batch from the network). Returns 0 or SL_DATA. */
int sl_batch_check(const sl_schema_t *s, const uint8_t *data, uint32_t len, uint32_t count);
/* Replaces the content with len bytes holding count rows (from the network);
 * validates every row against s. Returns 0, SL_DATA or SL_NOMEM. */
int sl_batch_load(sl_batch_t *b, const sl_schema_t *s, const uint8_t *data, uint32_t len,
                  uint32_t count);

/* Iterate: for (const uint8_t *r = sl_batch_first(b); r; r = sl_batch_next(b, r)) */
const uint8_t *sl_batch_first(const sl_batch_t *b);
const uint8_t *sl_batch_next(const sl_batch_t *b, const uint8_t *row);

#endif
