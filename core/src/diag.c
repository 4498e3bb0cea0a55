/* diag.c — collected user-facing errors (see sluice/diag.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int line, col; /* 1-based position, 0 when unknown */
    char *msg;     /* owned */
    char *hint;    /* owned, may be NULL */
} s_entry_t;

struct sl_diag {
    char *file;         /* owned prefix of every line */
    s_entry_t *entries; /* owned array */
    int n, cap;         /* used and allocated entries */
};

#define S_MAX_ENTRIES 1000 /* a hostile file must not grow this without bound */

sl_diag_t *sl_diag_new(const char *file)
{
    sl_diag_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->file = strdup(file ? file : "<input>");
    if (!d->file) {
        free(d);
        return NULL;
    }
    return d;
}

void sl_diag_destroy(sl_diag_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_diag_t *d = *pp;
    for (int i = 0; i < d->n; i++) {
        free(d->entries[i].msg);
        free(d->entries[i].hint);
    }
    free(d->entries);
    free(d->file);
    free(d);
    *pp = NULL;
}

static char *s_vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void sl_diag_error(sl_diag_t *d, int line, int col, const char *fmt, ...)
{
    if (d->n >= S_MAX_ENTRIES)
        return;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 8;
        s_entry_t *e = realloc(d->entries, (size_t)cap * sizeof *e);
        if (!e)
            return;
        d->entries = e;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = s_vfmt(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    d->entries[d->n++] = (s_entry_t){.line = line, .col = col, .msg = msg, .hint = NULL};
}

void sl_diag_hint(sl_diag_t *d, const char *fmt, ...)
{
    if (d->n == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *h = s_vfmt(fmt, ap);
    va_end(ap);
    free(d->entries[d->n - 1].hint);
    d->entries[d->n - 1].hint = h;
}

int sl_diag_count(const sl_diag_t *d)
{
    return d->n;
}
const char *sl_diag_file(const sl_diag_t *d)
{
    return d->file;
}
int sl_diag_line(const sl_diag_t *d, int i)
{
    return d->entries[i].line;
}
int sl_diag_col(const sl_diag_t *d, int i)
{
    return d->entries[i].col;
}
const char *sl_diag_message(const sl_diag_t *d, int i)
{
    return d->entries[i].msg;
}
const char *sl_diag_hint_of(const sl_diag_t *d, int i)
{
    return d->entries[i].hint;
}

void sl_diag_print(const sl_diag_t *d, FILE *out)
{
    /* Insertion sort on an index: stable, and n is small. */
    int *idx = malloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    if (!idx)
        return;
    for (int i = 0; i < d->n; i++) {
        int j = i;
        while (j > 0) {
            const s_entry_t *a = &d->entries[idx[j - 1]], *b = &d->entries[i];
            if (a->line < b->line || (a->line == b->line && a->col <= b->col))
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    for (int k = 0; k < d->n; k++) {
        const s_entry_t *e = &d->entries[idx[k]];
        fprintf(out, "%s:%d:%d: error: %s", d->file, e->line, e->col, e->msg);
        if (e->hint)
            fprintf(out, " (%s)", e->hint);
        fputc('\n', out);
    }
    free(idx);
}

static int s_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

const char *sl_closest(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < n; i++) {
        int dist = s_edit_distance(word, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    int len = (int)strlen(word);
    int limit = len / 3 > 1 ? len / 3 : 1;
    return best_d <= limit ? best : NULL;
}
