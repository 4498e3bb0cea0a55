/* textfmt.h — values to and from text: the one place that decides how an
 * int64, double, bool or timestamp is written to CSV, JSON Lines or stdout
 * and how it is read back.
 *
 * Timestamps are written as ISO-8601 UTC with milliseconds
 * ("2026-03-14T09:26:53.589Z") and read from that form (with or without
 * fraction / 'Z'), from "YYYY-MM-DD HH:MM:SS", from a date "YYYY-MM-DD", or
 * from an integer of epoch milliseconds. Doubles are written in the shortest
 * form that reads back to the same bits. */
#ifndef SLUICE_TEXTFMT_H
#define SLUICE_TEXTFMT_H
#include <stdbool.h>
#include <stddef.h>

#include "sluice/arena.h"
#include "sluice/row.h"

/* Parses len bytes of text as a value of type t. Empty text is null.
 * Strings are copied into arena. Returns 0 or SL_DATA (with a reason like
 * "'12x' is not an int64" in err). */
int sl_value_from_text(sl_type_t t, const char *s, size_t len, sl_arena_t *arena, sl_value_t *out,
                       char *err, size_t cap);
/* Writes v as text into buf (NUL-terminated, truncated to cap); returns the
 * full length it needed, like snprintf. Null writes "". Strings verbatim. */
size_t sl_value_to_text(const sl_value_t *v, char *buf, size_t cap);
/* Formats epoch milliseconds as ISO-8601 UTC into buf (>= 32 bytes). */
void sl_ts_format(long long ms, char *buf, size_t cap);

/* A growable text buffer for records formatted one at a time (the stdout
 * and Kafka sinks). Zero-initialise it; free p when done. */
typedef struct {
    char *p;    /* the text (not NUL-terminated) */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} sl_textbuf_t;

/* Appends n bytes. Returns 0 or SL_NOMEM. */
int sl_textbuf_put(sl_textbuf_t *b, const char *p, size_t n);
/* Appends v as a CSV field (quoted when it holds a comma, quote or line
 * break; null is empty) or a JSON value (strings and timestamps quoted and
 * escaped; null, inf and nan are null). Returns 0 or SL_NOMEM. */
int sl_textbuf_value(sl_textbuf_t *b, const sl_value_t *v, bool json);
/* Appends a row (vals, fields of s) as a CSV line or a JSON object, without
 * a line end. Returns 0 or SL_NOMEM. */
int sl_textbuf_row(sl_textbuf_t *b, const sl_schema_t *s, const sl_value_t *vals, bool json);

#endif
