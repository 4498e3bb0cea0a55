/* expr.h — the typed expression language of filters, projections and keys.
 *
 * Grammar (case-insensitive keywords, SQL-like precedence, lowest first):
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | cmp
 *   cmp     := add (("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") add)?
 *              | add "is" ["not"] "null"
 *              | add ["not"] "in" "(" expr ("," expr)* ")"
 *   add     := mul (("+" | "-" | "||") mul)*        ("||" concatenates strings)
 *   mul     := unary (("*" | "/" | "%") unary)*
 *   unary   := "-" unary | primary
 *   primary := literal | field | call | "(" expr ")"
 *              | "case" ("when" expr "then" expr)+ ["else" expr] "end"
 *              | "cast" "(" expr "as" type ")"
 *   literal := integer | decimal | 'string' ('' escapes a quote) | true | false | null
 *   field   := identifier | `quoted identifier`
 *   call    := lower | upper | length | substr(s, start[, len]) (1-based) |
 *              concat(a, b, ...) | trim | starts_with(s, p) | contains(s, p) |
 *              coalesce(a, b, ...) | abs |
 *              year(ts) | month(ts) | day(ts) | hour(ts) | minute(ts) (UTC) |
 *              count_char(s, 'c') | split_index(s, sep, i) (0-based) |
 *              regexp_extract(s, 'pattern'[, group])
 *
 * Typing: int64 op int64 -> int64; any double operand -> double; `/` on
 * int64 is integer division; comparison needs comparable types (numbers with
 * numbers, strings, bools, timestamps); and/or/not need bool. Null
 * propagates through operators and functions (SQL three-valued logic for
 * and/or); a filter keeps a record only when its predicate is true.
 * Division or modulo by zero yields null. Integer overflow wraps.
 * `x in (a, b)` is SQL's: true when an item equals x (items need types
 * comparable with x), else null when x or an item is null, else false;
 * `not in` negates it. count_char's character and regexp_extract's pattern
 * (POSIX extended, compiled once by sl_expr_compile) must be string
 * literals; a bad pattern is a compile error. split_index (separator a
 * whole string, as Flink's SPLIT_INDEX) and regexp_extract (group 0 = the
 * whole match, the default) give null when there is no such field, match
 * or group.
 *
 * A compiled expression is immutable: many task threads may evaluate it at
 * once. Evaluation allocates only from the arena it is given. */
#ifndef SLUICE_EXPR_H
#define SLUICE_EXPR_H
#include <stdbool.h>
#include <stddef.h>

#include "sluice/arena.h"
#include "sluice/row.h"

typedef struct sl_expr sl_expr_t;

/* Parses src and type-checks it against schema. On success returns 0 and
 * *out (caller destroys). On failure returns SL_PARSE or SL_TYPE, writes a
 * message without position into err (cap bytes) and the 0-based byte offset
 * in src where the problem is into *err_off. */
int sl_expr_compile(const char *src, const sl_schema_t *schema, sl_expr_t **out, char *err,
                    size_t cap, int *err_off);
void sl_expr_destroy(sl_expr_t **pp);
/* Result type (SL_TYPE_NULL only for the bare literal `null`). */
sl_type_t sl_expr_type(const sl_expr_t *e);
/* Field index when the expression is a bare field reference, else -1. */
int sl_expr_field_index(const sl_expr_t *e);
/* Sets used[i] for every field i (0 <= i < n) of the compiled-for schema
 * that evaluating e may read; leaves the other entries as they are. An
 * evaluation reads no other field of its row. */
void sl_expr_fields(const sl_expr_t *e, bool *used, int n);
/* Evaluates against fields[] (a decoded row of the schema it was compiled
 * for). Strings produced by functions live in arena. Returns 0, or SL_NOMEM
 * when the arena cannot grow. */
int sl_expr_eval(const sl_expr_t *e, const sl_value_t *fields, sl_arena_t *arena, sl_value_t *out);
/* Convenience for predicates: 1 when the value is a non-null true, else 0. */
int sl_expr_is_true(const sl_value_t *v);

#endif
