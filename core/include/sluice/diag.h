/* diag.h — user-facing diagnostics with file:line:col.
 *
 * The spec loader, the expression compiler and the planner all report into
 * one sl_diag_t so that `sluice validate` prints every error of a file, in
 * order, as `job.yaml:14:7: unknown operator type 'windw' (did you mean
 * 'window'?)`. */
#ifndef SLUICE_DIAG_H
#define SLUICE_DIAG_H
#include <stdio.h>

typedef struct sl_diag sl_diag_t;

/* New empty list for diagnostics about file (copied; used as the prefix). */
sl_diag_t *sl_diag_new(const char *file);
void sl_diag_destroy(sl_diag_t **pp);
/* Records an error at line:col (1-based; 0 = unknown). Printf-style. */
void sl_diag_error(sl_diag_t *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a hint ("did you mean 'window'?") to the last error recorded. */
void sl_diag_hint(sl_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sl_diag_count(const sl_diag_t *d);
/* Borrowed accessors for error i (0-based). hint may be NULL. */
const char *sl_diag_file(const sl_diag_t *d);
int sl_diag_line(const sl_diag_t *d, int i);
int sl_diag_col(const sl_diag_t *d, int i);
const char *sl_diag_message(const sl_diag_t *d, int i);
const char *sl_diag_hint_of(const sl_diag_t *d, int i);
/* Prints every error as "file:line:col: error: message (hint)" lines,
 * sorted by position (stable). */
void sl_diag_print(const sl_diag_t *d, FILE *out);

/* The candidate closest to word by edit distance, if it is close enough
 * to be a plausible misspelling (distance <= max(1, len/3)); else NULL.
 * Returns a borrowed pointer into candidates. */
const char *sl_closest(const char *word, const char *const *candidates, int n);

#endif
