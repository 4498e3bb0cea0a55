/* fileio.c — file readers and writers of the file connectors, and the
 * crash-safe publish helper (see fileio.h).
 *
 * Readers. One read(2) buffer per reader (256 KiB, grown only when a single
 * record is longer, never past SL_ROW_MAX + 1 bytes); records are located in
 * the buffer, parsed in place and only the string values are copied, into
 * the caller's arena. Nothing is malloc'ed per record.
 *
 * Invariants of a reader:
 *   1. buf[pos, len) holds the unconsumed bytes; buf[0] is file offset
 *      buf_off, so the next record starts at buf_off + pos.
 *   2. A record belongs to the range iff its first byte is in [start, end).
 *      A range with start > 0 first discards bytes up to and including the
 *      first '\n' at or after start - 1 (the Hadoop rule), so a record that
 *      begins exactly at start is kept and one that straddles it is left to
 *      the previous range, which reads it to its end.
 *   3. rel_line counts the '\n' consumed since first_off (the first record
 *      start of the range). The file line of a record is base_line +
 *      (rel_line at its start) + 1, where base_line is the number of '\n'
 *      before first_off; it is counted lazily (pread) the first time a line
 *      number is needed, so a split reader does not rescan the file prefix
 *      unless it has something to report.
 *   4. CSV: a record ends at a '\n' outside double quotes (quoted fields may
 *      hold newlines). Splitting a file whose quoted fields hold newlines at
 *      arbitrary offsets is not supported: a range may then begin inside a
 *      record, and that fragment is reported as malformed.
 *   5. A record longer than SL_ROW_MAX bytes is skipped up to its next '\n'
 *      and reported as SL_DATA; the reader stays usable.
 *
 * Conventions: a UTF-8 byte order mark at offset 0 is ignored; a trailing
 * '\r' is stripped from every line (CRLF files); empty lines are skipped in
 * CSV and JSON Lines (in text they are empty strings). CSV: an unquoted
 * empty field is null, a quoted empty field ("") of a string column is the
 * empty string (the writer writes them so, so both round-trip).
 *
 * JSON Lines field rules: a string field takes a JSON string; int64 an
 * integer number (no fraction or exponent); double any number; bool
 * true/false; timestamp an ISO string or an integer of epoch milliseconds.
 * null is null for any field, a field absent from the object is null,
 * fields not in the schema are skipped (any value, nested up to 64 deep),
 * a repeated key keeps its last value, and anything else is SL_DATA naming
 * the field. Strings are decoded in place (\uXXXX and surrogate pairs to
 * UTF-8; lone surrogates are errors).
 *
 * Writers buffer rows (256 KiB) into a temporary file ".<name>.tmp-<pid>-<n>"
 * beside the final path and publish it with sl_fs_publish on commit.
 * Doubles that are not finite are written as null in JSON Lines (JSON has no
 * spelling for them) and as "inf"/"-inf"/"nan" in CSV and text (which the
 * reader then rejects, on purpose: see textfmt.c). Timestamps are written
 * as ISO-8601 text in every format. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sluice/err.h"
#include "sluice/failpoint.h"
#include "sluice/arena.h"  /* sl_mem_huge */
#include "sluice/plugin.h" /* sl_sha256_hex */
#include "sluice/textfmt.h"

#define S_READ_BUF (256u * 1024u)
#define S_WRITE_BUF (256u * 1024u)
#define S_MAX_BUF ((size_t)SL_ROW_MAX + 1) /* a longest record plus its '\n' */
#define S_JSON_DEPTH 64

int sl_format_parse(const char *name, sl_format_t *out)
{
    if (!name)
        return SL_NOTFOUND;
    if (strcmp(name, "csv") == 0)
        *out = SL_FMT_CSV;
    else if (strcmp(name, "jsonl") == 0 || strcmp(name, "json") == 0)
        *out = SL_FMT_JSONL;
    else if (strcmp(name, "text") == 0)
        *out = SL_FMT_TEXT;
    else
        return SL_NOTFOUND;
    return 0;
}

/* ---- reader ----------------------------------------------------------- */

/* CSV record scanner states (see s_scan_csv). */
enum { S_CSV_FIELD_START, S_CSV_UNQUOTED, S_CSV_QUOTED, S_CSV_QUOTE_IN_QUOTED };

struct sl_reader {
    char *path;          /* owned copy, for messages */
    sl_schema_t *schema; /* owned copy of the schema rows are read into */
    sl_format_t fmt;     /* record format */
    char delim;          /* CSV field delimiter */
    int fd;              /* the open file */
    char *buf;           /* read buffer */
    size_t cap;          /* bytes allocated for buf */
    size_t pos;          /* first unconsumed byte of buf */
    size_t len;          /* bytes of buf holding file data */
    uint64_t buf_off;    /* file offset of buf[0] */
    bool eof;            /* read(2) returned 0 */
    bool done;           /* the range is exhausted: next returns 0 */
    uint64_t end;        /* records starting at or after end are not ours */
    uint64_t first_off;  /* file offset of the range's first record */
    bool base_known;     /* base_line is valid */
    uint64_t base_line;  /* '\n' bytes before first_off */
    uint64_t rel_line;   /* '\n' bytes consumed since first_off */
    uint64_t last_rel;   /* rel_line at the start of the last record returned */
    uint64_t offset;     /* file offset just after the last record returned */
    size_t scan;         /* CSV: bytes after pos already scanned for the record end */
    int scan_state;      /* CSV: scanner state at pos + scan */
    uint64_t scan_nl;    /* CSV: '\n' inside quotes seen while scanning */
    int ncols;           /* CSV: columns per row */
    int *field_col;      /* CSV: column of each schema field (nfields entries) */
    char **cell;         /* CSV: start of each column of the current row */
    size_t *cell_len;    /* CSV: length of each column of the current row */
    bool *cell_quoted;   /* CSV: whether each column was quoted */
};

static int s_err(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_err(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Number of '\n' in [p, p+n). */
static uint64_t s_count_nl(const char *p, size_t n)
{
    uint64_t c = 0;
    const char *e = p + n;
    while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

/* Counts the newlines before first_off once (invariant 3). On an I/O error
 * the count stays relative to the range, which only degrades messages. */
static uint64_t s_base_line(sl_reader_t *r)
{
    if (r->base_known)
        return r->base_line;
    char tmp[16384];
    uint64_t off = 0, nl = 0;
    while (off < r->first_off) {
        size_t want = r->first_off - off < sizeof tmp ? (size_t)(r->first_off - off) : sizeof tmp;
        ssize_t got = pread(r->fd, tmp, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        nl += s_count_nl(tmp, (size_t)got);
        off += (uint64_t)got;
    }
    r->base_line = nl;
    r->base_known = true;
    return nl;
}

/* File line number of a record that started at relative line rel. */
static unsigned long long s_line_of(sl_reader_t *r, uint64_t rel)
{
    return (unsigned long long)(s_base_line(r) + rel + 1);
}

/* Makes room and reads more bytes. Returns 1 if bytes were added, 0 at end
 * of file, SL_IO or SL_NOMEM. Never grows buf past S_MAX_BUF. */
static int s_fill(sl_reader_t *r)
{
    if (r->eof)
        return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->buf_off += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == r->cap) {
        size_t ncap = r->cap * 2 > S_MAX_BUF ? S_MAX_BUF : r->cap * 2;
        if (ncap <= r->cap)
            return SL_LIMIT; /* caller checks the record length first */
        char *nb = realloc(r->buf, ncap);
        if (!nb)
            return SL_NOMEM;
        r->buf = nb;
        r->cap = ncap;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SL_IO;
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        r->len += (size_t)n;
        return 1;
    }
}

/* Discards bytes up to and including the next '\n'. Returns 1 if a '\n'
 * was found, 0 at end of file, or an error. Adds the '\n' to rel_line. */
static int s_skip_line(sl_reader_t *r)
{
    for (;;) {
        char *q = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (q) {
            r->pos = (size_t)(q - r->buf) + 1;
            r->rel_line++;
            return 1;
        }
        r->pos = r->len;
        int rc = s_fill(r);
        if (rc <= 0)
            return rc;
    }
}

/* Advances the CSV scanner over buf[pos+scan, len); returns the index of the
 * terminating '\n' or (size_t)-1 if it is not in the buffer yet. */
static size_t s_scan_csv(sl_reader_t *r)
{
    const char *b = r->buf;
    const char d = r->delim;
    int st = r->scan_state;
    size_t i = r->pos + r->scan;
    for (; i < r->len; i++) {
        char c = b[i];
        switch (st) {
        case S_CSV_QUOTED:
            if (c == '"')
                st = S_CSV_QUOTE_IN_QUOTED;
            else if (c == '\n')
                r->scan_nl++;
            continue;
        case S_CSV_QUOTE_IN_QUOTED:
            if (c == '"') {
                st = S_CSV_QUOTED; /* doubled quote */
                continue;
            }
            break;
        case S_CSV_FIELD_START:
            if (c == '"') {
                st = S_CSV_QUOTED;
                continue;
            }
            break;
        default:
            break;
        }
        if (c == '\n') {
            r->scan_state = S_CSV_FIELD_START;
            return i;
        }
        st = c == d ? S_CSV_FIELD_START : S_CSV_UNQUOTED;
    }
    r->scan_state = st;
    r->scan = i - r->pos;
    return (size_t)-1;
}

/* Finds the next record: *p, *n are its bytes without the '\n' (valid until
 * the next call). Returns 1, 0 at end of file, SL_DATA for a record longer
 * than SL_ROW_MAX (skipped), SL_IO or SL_NOMEM. Advances pos and rel_line. */
static int s_next_record(sl_reader_t *r, char **p, size_t *n)
{
    r->scan = 0;
    r->scan_state = S_CSV_FIELD_START;
    r->scan_nl = 0;
    for (;;) {
        size_t e;
        if (r->fmt == SL_FMT_CSV) {
            e = s_scan_csv(r);
        } else {
            char *q = memchr(r->buf + r->pos + r->scan, '\n', r->len - r->pos - r->scan);
            e = q ? (size_t)(q - r->buf) : (size_t)-1;
            if (!q)
                r->scan = r->len - r->pos;
        }
        if (e != (size_t)-1) {
            *p = r->buf + r->pos;
            *n = e - r->pos;
            r->pos = e + 1;
            r->rel_line += r->scan_nl + 1;
            return 1;
        }
        if (r->len - r->pos > SL_ROW_MAX) {
            /* too long: drop it through its next newline (not quote-aware:
             * the record is garbage to us anyway) */
            r->rel_line += r->scan_nl;
            int rc = s_skip_line(r);
            return rc < 0 ? rc : SL_DATA;
        }
        int rc = s_fill(r);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (r->pos == r->len)
                return 0;
            *p = r->buf + r->pos;
            *n = r->len - r->pos;
            r->pos = r->len;
            r->rel_line += r->scan_nl;
            return 1;
        }
    }
}

/* Splits a CSV record in place (quoted fields are unescaped where they lie)
 * into r->cell[0..max). Returns the number of columns, or -1 - column for a
 * quoting error in that (0-based) column. */
static int s_csv_split(sl_reader_t *r, char *p, size_t n, int max)
{
    int col = 0;
    size_t i = 0;
    for (;;) {
        char *start;
        size_t flen;
        bool quoted = false;
        if (i < n && p[i] == '"') {
            quoted = true;
            i++;
            char *w = p + i;
            start = w;
            for (;;) {
                if (i >= n)
                    return -1 - col; /* unterminated quote */
                if (p[i] == '"') {
                    if (i + 1 < n && p[i + 1] == '"') {
                        *w++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *w++ = p[i++];
            }
            flen = (size_t)(w - start);
            if (i < n && p[i] != r->delim)
                return -1 - col; /* text after the closing quote */
        } else {
            start = p + i;
            char *q = memchr(p + i, r->delim, n - i);
            size_t e = q ? (size_t)(q - p) : n;
            flen = e - i;
            i = e;
        }
        if (col < max) {
            r->cell[col] = start;
            r->cell_len[col] = flen;
            r->cell_quoted[col] = quoted;
        }
        col++;
        if (i >= n)
            return col;
        i++; /* the delimiter */
    }
}

/* Strips a BOM at file offset 0 and one trailing '\r'. */
static void s_trim_record(uint64_t off, char **p, size_t *n)
{
    if (off == 0 && *n >= 3 && memcmp(*p, "\xEF\xBB\xBF", 3) == 0) {
        *p += 3;
        *n -= 3;
    }
    if (*n > 0 && (*p)[*n - 1] == '\r')
        (*n)--;
}

/* Reads the CSV header at offset 0 and maps the schema onto its columns.
 * Leaves the reader positioned after the header. */
static int s_csv_header(sl_reader_t *r, char *err, size_t cap)
{
    char *p;
    size_t n;
    int rc = s_next_record(r, &p, &n);
    if (rc == SL_DATA)
        return s_err(err, cap, SL_DATA, "%s:1: header longer than %u bytes", r->path,
                     (unsigned)SL_ROW_MAX);
    if (rc < 0)
        return s_err(err, cap, rc, "%s: %s", r->path, rc == SL_IO ? strerror(errno) : "error");
    if (rc == 0) {
        r->done = true; /* an empty file has no header and no rows */
        return 0;
    }
    s_trim_record(0, &p, &n);
    int upper = 1; /* columns are at most delimiters + 1 */
    for (size_t i = 0; i < n; i++)
        upper += p[i] == r->delim;
    r->cell = calloc((size_t)upper, sizeof *r->cell);
    r->cell_len = calloc((size_t)upper, sizeof *r->cell_len);
    r->cell_quoted = calloc((size_t)upper, sizeof *r->cell_quoted);
    if (!r->cell || !r->cell_len || !r->cell_quoted)
        return s_err(err, cap, SL_NOMEM, "out of memory");
    int ncols = s_csv_split(r, p, n, upper);
    if (ncols < 0)
        return s_err(err, cap, SL_DATA, "%s:1: bad quoting in header column %d", r->path, -ncols);
    r->ncols = ncols;
    const sl_schema_t *s = r->schema;
    for (int f = 0; f < s->nfields; f++) {
        size_t flen = strlen(s->fields[f].name);
        r->field_col[f] = -1;
        for (int c = 0; c < ncols; c++) {
            if (r->cell_len[c] == flen && memcmp(r->cell[c], s->fields[f].name, flen) == 0) {
                r->field_col[f] = c;
                break;
            }
        }
        if (r->field_col[f] < 0)
            return s_err(err, cap, SL_DATA, "column '%s' not in header of %s", s->fields[f].name,
                         r->path);
    }
    return 0;
}

/* Positions the reader at the first record start >= start (invariant 2). */
static int s_seek_range(sl_reader_t *r, uint64_t start)
{
    r->pos = r->len = 0;
    r->eof = false;
    r->buf_off = start - 1;
    if (lseek(r->fd, (off_t)(start - 1), SEEK_SET) < 0)
        return SL_IO;
    int rc = s_skip_line(r);
    if (rc < 0)
        return rc;
    r->rel_line = 0;
    r->first_off = r->buf_off + r->pos;
    r->base_known = false;
    return 0;
}

int sl_reader_open(const char *path, const sl_schema_t *schema, const sl_reader_opts_t *opts,
                   sl_reader_t **out, char *err, size_t cap)
{
    *out = NULL;
    sl_reader_opts_t def = {
        .format = SL_FMT_CSV, .delimiter = ',', .header = true, .start = 0, .end = UINT64_MAX};
    if (!opts)
        opts = &def;
    if (!path || !schema)
        return s_err(err, cap, SL_INVAL, "reader needs a path and a schema");
    char delim = opts->delimiter ? opts->delimiter : ',';
    if (opts->format == SL_FMT_CSV && (delim == '"' || delim == '\n' || delim == '\r'))
        return s_err(err, cap, SL_INVAL, "invalid CSV delimiter for %s", path);
    if (opts->format == SL_FMT_TEXT &&
        (schema->nfields != 1 || schema->fields[0].type != SL_TYPE_STRING))
        return s_err(err, cap, SL_INVAL, "text format of %s needs exactly one string field", path);
    sl_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return s_err(err, cap, SL_NOMEM, "out of memory");
    r->fd = -1;
    r->fmt = opts->format;
    r->delim = delim;
    r->end = opts->end;
    r->base_known = true; /* base_line 0 until a range seek says otherwise */
    r->path = strdup(path);
    r->schema = sl_schema_copy(schema);
    r->buf = malloc(S_READ_BUF);
    r->cap = S_READ_BUF;
    r->field_col = calloc((size_t)schema->nfields + 1, sizeof *r->field_col);
    int rc = 0;
    if (!r->path || !r->schema || !r->buf || !r->field_col) {
        rc = s_err(err, cap, SL_NOMEM, "out of memory");
        goto fail;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc =
            s_err(err, cap, errno == ENOENT ? SL_NOTFOUND : SL_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (r->fmt == SL_FMT_CSV) {
        if (opts->header) {
            rc = s_csv_header(r, err, cap);
            if (rc < 0)
                goto fail;
        } else {
            int nf = schema->nfields;
            r->ncols = nf;
            r->cell = calloc((size_t)nf + 1, sizeof *r->cell);
            r->cell_len = calloc((size_t)nf + 1, sizeof *r->cell_len);
            r->cell_quoted = calloc((size_t)nf + 1, sizeof *r->cell_quoted);
            if (!r->cell || !r->cell_len || !r->cell_quoted) {
                rc = s_err(err, cap, SL_NOMEM, "out of memory");
                goto fail;
            }
            for (int f = 0; f < nf; f++)
                r->field_col[f] = f;
        }
    }
    if (opts->start > 0 && !r->done) {
        rc = s_seek_range(r, opts->start);
        if (rc < 0) {
            rc = s_err(err, cap, rc, "%s: %s", path, strerror(errno));
            goto fail;
        }
    }
    r->offset = r->buf_off + r->pos;
    *out = r;
    return 0;
fail:
    sl_reader_close(&r);
    return rc;
}

/* Converts the CSV record p[0..n) into vals. */
static int s_parse_csv(sl_reader_t *r, char *p, size_t n, sl_value_t *vals, sl_arena_t *arena,
                       char *err, size_t cap)
{
    int got = s_csv_split(r, p, n, r->ncols);
    if (got < 0)
        return s_err(err, cap, SL_DATA, "%s:%llu: bad quoting in column %d", r->path,
                     s_line_of(r, r->last_rel), -got);
    if (got != r->ncols)
        return s_err(err, cap, SL_DATA, "%s:%llu: expected %d columns, got %d", r->path,
                     s_line_of(r, r->last_rel), r->ncols, got);
    const sl_schema_t *s = r->schema;
    for (int f = 0; f < s->nfields; f++) {
        int c = r->field_col[f];
        sl_type_t t = s->fields[f].type;
        if (t == SL_TYPE_STRING && r->cell_len[c] == 0 && r->cell_quoted[c]) {
            vals[f] = sl_value_str("", 0); /* "" is the empty string, not null */
            continue;
        }
        char why[160];
        int rc =
            sl_value_from_text(t, r->cell[c], r->cell_len[c], arena, &vals[f], why, sizeof why);
        if (rc == SL_DATA)
            return s_err(err, cap, SL_DATA, "%s:%llu: column '%s': %s", r->path,
                         s_line_of(r, r->last_rel), s->fields[f].name, why);
        if (rc < 0)
            return s_err(err, cap, rc, "%s", why);
    }
    return 0;
}

/* ---- a small JSON reader for one object per line ---------------------- */

typedef struct {
    char *p;         /* the line (decoded in place) */
    size_t n;        /* its length */
    size_t i;        /* cursor */
    const char *why; /* reason of the first syntax error */
} s_json_t;

static void s_json_ws(s_json_t *j)
{
    while (j->i < j->n &&
           (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\r' || j->p[j->i] == '\n'))
        j->i++;
}

static int s_json_fail(s_json_t *j, const char *why)
{
    if (!j->why)
        j->why = why;
    return -1;
}

static int s_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *s_utf8_put(char *w, unsigned cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/* Parses the string at j->i (a '"') and decodes it in place: *s, *len are
 * the decoded bytes. Returns 0 or -1. */
static int s_json_string(s_json_t *j, char **s, size_t *len)
{
    char *p = j->p;
    size_t i = j->i + 1;
    char *w = p + i;
    *s = w;
    for (;;) {
        if (i >= j->n)
            return s_json_fail(j, "unterminated string");
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            i++;
            break;
        }
        if (c < 0x20)
            return s_json_fail(j, "control character in string");
        if (c != '\\') {
            *w++ = (char)c;
            i++;
            continue;
        }
        if (i + 1 >= j->n)
            return s_json_fail(j, "unterminated string");
        char e = p[i + 1];
        i += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *w++ = e;
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (i + 4 > j->n || s_hex4(p + i, &cp) < 0)
                return s_json_fail(j, "bad \\u escape");
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return s_json_fail(j, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 > j->n || p[i] != '\\' || p[i + 1] != 'u' || s_hex4(p + i + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return s_json_fail(j, "unpaired high surrogate");
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            w = s_utf8_put(w, cp); /* never outruns i: 6 or 12 bytes in, <= 4 out */
            break;
        }
        default:
            return s_json_fail(j, "bad escape in string");
        }
    }
    *len = (size_t)(w - *s);
    j->i = i;
    return 0;
}

/* Validates the number at j->i (JSON grammar); *is_int when it has neither
 * fraction nor exponent. */
static int s_json_number(s_json_t *j, size_t *start, size_t *len, bool *is_int)
{
    const char *p = j->p;
    size_t i = j->i, n = j->n;
    *start = i;
    *is_int = true;
    if (i < n && p[i] == '-')
        i++;
    if (i >= n || p[i] < '0' || p[i] > '9')
        return s_json_fail(j, "bad number");
    if (p[i] == '0')
        i++;
    else
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    if (i < n && p[i] == '.') {
        *is_int = false;
        i++;
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return s_json_fail(j, "bad number");
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        *is_int = false;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return s_json_fail(j, "bad number");
    }
    *len = i - *start;
    j->i = i;
    return 0;
}

static int s_json_literal(s_json_t *j, const char *word)
{
    size_t k = strlen(word);
    if (j->n - j->i < k || memcmp(j->p + j->i, word, k) != 0)
        return s_json_fail(j, "unexpected token");
    j->i += k;
    return 0;
}

/* Skips any value (validating it), nesting at most S_JSON_DEPTH deep. */
static int s_json_skip(s_json_t *j, int depth)
{
    if (depth > S_JSON_DEPTH)
        return s_json_fail(j, "nested too deep");
    s_json_ws(j);
    if (j->i >= j->n)
        return s_json_fail(j, "missing value");
    char c = j->p[j->i];
    char *s;
    size_t len, st;
    bool isint;
    switch (c) {
    case '"':
        return s_json_string(j, &s, &len);
    case 't':
        return s_json_literal(j, "true");
    case 'f':
        return s_json_literal(j, "false");
    case 'n':
        return s_json_literal(j, "null");
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        j->i++;
        s_json_ws(j);
        if (j->i < j->n && j->p[j->i] == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                s_json_ws(j);
                if (j->i >= j->n || j->p[j->i] != '"')
                    return s_json_fail(j, "expected a key");
                if (s_json_string(j, &s, &len) < 0)
                    return -1;
                s_json_ws(j);
                if (j->i >= j->n || j->p[j->i] != ':')
                    return s_json_fail(j, "expected ':'");
                j->i++;
            }
            if (s_json_skip(j, depth + 1) < 0)
                return -1;
            s_json_ws(j);
            if (j->i < j->n && j->p[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->i < j->n && j->p[j->i] == close) {
                j->i++;
                return 0;
            }
            return s_json_fail(j, "expected ',' or a closing bracket");
        }
    }
    default:
        return s_json_number(j, &st, &len, &isint);
    }
}

static const char *s_json_kind(char c)
{
    switch (c) {
    case '"':
        return "string";
    case 't':
    case 'f':
        return "bool";
    case '{':
        return "object";
    case '[':
        return "array";
    default:
        return "number";
    }
}

int sl_json_decode(char *p, size_t n, const sl_schema_t *sc, const int *fields, int nfields,
                   sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap)
{
    s_json_t j = {.p = p, .n = n, .i = 0, .why = NULL};
    int nwant = fields ? nfields : sc->nfields;
    for (int k = 0; k < nwant; k++) {
        int f = fields ? fields[k] : k;
        vals[f] = sl_value_null(); /* a missing field is null */
        vals[f].type = sc->fields[f].type;
    }
    s_json_ws(&j);
    if (j.i >= n || p[j.i] != '{') {
        s_json_fail(&j, "not a JSON object");
        goto syntax;
    }
    j.i++;
    s_json_ws(&j);
    if (j.i < n && p[j.i] == '}') {
        j.i++;
    } else {
        for (;;) {
            char *key;
            size_t klen;
            s_json_ws(&j);
            if (j.i >= n || p[j.i] != '"') {
                s_json_fail(&j, "expected a key");
                goto syntax;
            }
            if (s_json_string(&j, &key, &klen) < 0)
                goto syntax;
            s_json_ws(&j);
            if (j.i >= n || p[j.i] != ':') {
                s_json_fail(&j, "expected ':'");
                goto syntax;
            }
            j.i++;
            s_json_ws(&j);
            if (j.i >= n) {
                s_json_fail(&j, "missing value");
                goto syntax;
            }
            int f = -1;
            for (int k = 0; k < nwant; k++) {
                int fk = fields ? fields[k] : k;
                if (strlen(sc->fields[fk].name) == klen &&
                    memcmp(sc->fields[fk].name, key, klen) == 0) {
                    f = fk;
                    break;
                }
            }
            char c = p[j.i];
            if (f < 0) {
                if (s_json_skip(&j, 1) < 0)
                    goto syntax;
            } else {
                sl_type_t t = sc->fields[f].type;
                const char *fname = sc->fields[f].name;
                char why[160];
                int rc = 0;
                bool wrong = false;
                if (c == 'n') {
                    if (s_json_literal(&j, "null") < 0)
                        goto syntax;
                    vals[f] = sl_value_null();
                    vals[f].type = t;
                } else if (c == 't' || c == 'f') {
                    if (s_json_literal(&j, c == 't' ? "true" : "false") < 0)
                        goto syntax;
                    if (t == SL_TYPE_BOOL)
                        vals[f] = sl_value_bool(c == 't');
                    else
                        wrong = true;
                } else if (c == '"') {
                    char *s;
                    size_t slen;
                    if (s_json_string(&j, &s, &slen) < 0)
                        goto syntax;
                    if (t == SL_TYPE_STRING) {
                        char *copy = sl_arena_alloc(arena, slen ? slen : 1);
                        if (!copy)
                            return s_err(err, cap, SL_NOMEM, "out of memory");
                        memcpy(copy, s, slen);
                        vals[f] = sl_value_str(copy, (uint32_t)slen);
                    } else if (t == SL_TYPE_TIMESTAMP) {
                        rc = sl_value_from_text(t, s, slen, arena, &vals[f], why, sizeof why);
                    } else {
                        wrong = true;
                    }
                } else if (c == '{' || c == '[') {
                    if (s_json_skip(&j, 1) < 0)
                        goto syntax;
                    wrong = true;
                } else {
                    size_t st, nlen;
                    bool isint;
                    if (s_json_number(&j, &st, &nlen, &isint) < 0)
                        goto syntax;
                    if (t == SL_TYPE_DOUBLE ||
                        ((t == SL_TYPE_INT64 || t == SL_TYPE_TIMESTAMP) && isint))
                        rc = sl_value_from_text(t, p + st, nlen, arena, &vals[f], why, sizeof why);
                    else if (t == SL_TYPE_INT64 || t == SL_TYPE_TIMESTAMP)
                        rc = s_err(why, sizeof why, SL_DATA, "'%.*s' is not an int64",
                                   (int)(nlen > 60 ? 60 : nlen), p + st);
                    else
                        wrong = true;
                }
                if (wrong)
                    return s_err(err, cap, SL_DATA, "field '%s' expects %s, got %s", fname,
                                 sl_type_name(t), s_json_kind(c));
                if (rc == SL_DATA)
                    return s_err(err, cap, SL_DATA, "field '%s': %s", fname, why);
                if (rc < 0)
                    return s_err(err, cap, rc, "%s", why);
            }
            s_json_ws(&j);
            if (j.i < n && p[j.i] == ',') {
                j.i++;
                continue;
            }
            if (j.i < n && p[j.i] == '}') {
                j.i++;
                break;
            }
            s_json_fail(&j, "expected ',' or '}'");
            goto syntax;
        }
    }
    s_json_ws(&j);
    if (j.i != n) {
        s_json_fail(&j, "text after the object");
        goto syntax;
    }
    return 0;
syntax:
    return s_err(err, cap, SL_DATA, "bad JSON at column %zu: %s", j.i + 1,
                 j.why ? j.why : "syntax error");
}

/* Converts the JSON object line p[0..n) into vals; errors say file:line. */
static int s_parse_jsonl(sl_reader_t *r, char *p, size_t n, sl_value_t *vals, sl_arena_t *arena,
                         char *err, size_t cap)
{
    char why[512];
    int rc = sl_json_decode(p, n, r->schema, NULL, 0, vals, arena, why, sizeof why);
    if (rc == SL_DATA)
        return s_err(err, cap, rc, "%s:%llu: %s", r->path, s_line_of(r, r->last_rel), why);
    if (rc)
        return s_err(err, cap, rc, "%s", why);
    return 0;
}

int sl_reader_next(sl_reader_t *r, sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap)
{
    if (!r || r->done)
        return 0;
    for (;;) {
        uint64_t off = r->buf_off + r->pos;
        if (off >= r->end) {
            r->done = true;
            return 0;
        }
        uint64_t rel = r->rel_line;
        char *p;
        size_t n;
        int rc = s_next_record(r, &p, &n);
        if (rc == 0) {
            r->done = true;
            return 0;
        }
        r->last_rel = rel;
        r->offset = r->buf_off + r->pos;
        if (rc == SL_DATA)
            return s_err(err, cap, SL_DATA, "%s:%llu: line longer than %u bytes", r->path,
                         s_line_of(r, rel), (unsigned)SL_ROW_MAX);
        if (rc < 0)
            return s_err(err, cap, rc, "%s: %s", r->path,
                         rc == SL_IO ? strerror(errno) : sl_strerror(rc));
        s_trim_record(off, &p, &n);
        switch (r->fmt) {
        case SL_FMT_TEXT: {
            char *copy = sl_arena_alloc(arena, n ? n : 1);
            if (!copy)
                return s_err(err, cap, SL_NOMEM, "out of memory");
            memcpy(copy, p, n);
            vals[0] = sl_value_str(copy, (uint32_t)n);
            return 1;
        }
        case SL_FMT_CSV:
            if (n == 0)
                continue;
            rc = s_parse_csv(r, p, n, vals, arena, err, cap);
            return rc < 0 ? rc : 1;
        case SL_FMT_JSONL: {
            size_t k = 0;
            while (k < n && (p[k] == ' ' || p[k] == '\t'))
                k++;
            if (k == n)
                continue;
            rc = s_parse_jsonl(r, p, n, vals, arena, err, cap);
            return rc < 0 ? rc : 1;
        }
        }
        return s_err(err, cap, SL_INVAL, "unknown format");
    }
}

uint64_t sl_reader_line(const sl_reader_t *r)
{
    /* logically const: the lazily counted base line is a cache */
    return r ? s_base_line((sl_reader_t *)r) + r->last_rel + 1 : 0;
}

uint64_t sl_reader_offset(const sl_reader_t *r)
{
    return r ? r->offset : 0;
}

void sl_reader_close(sl_reader_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_reader_t *r = *pp;
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    sl_schema_destroy(&r->schema);
    free(r->buf);
    free(r->field_col);
    free(r->cell);
    free(r->cell_len);
    free(r->cell_quoted);
    free(r);
    *pp = NULL;
}

/* ---- crash-safe publish ----------------------------------------------- */

/* Temporary path ".<base>.tmp-<pid>-<n>" in the directory of path; the
 * caller frees it. NULL on OOM. */
static char *s_tmp_path(const char *path)
{
    static atomic_ulong counter;
    unsigned long n = atomic_fetch_add(&counter, 1);
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    const char *base = slash ? slash + 1 : path;
    size_t need = strlen(path) + 64;
    char *t = malloc(need);
    if (t)
        snprintf(t, need, "%.*s.%s.tmp-%ld-%lu", dirlen, path, base, (long)getpid(), n);
    return t;
}

/* fsyncs the directory holding path. File systems that cannot sync a
 * directory (EINVAL) are tolerated, as Redis does. */
static int s_fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0 && e != EINVAL) {
        errno = e;
        return -1;
    }
    return 0;
}

/* Unlinks path keeping errno, so the caller still sees the first cause. */
static int s_unlink_keep_errno(const char *path)
{
    int e = errno;
    unlink(path);
    errno = e;
    return SL_IO;
}

static int s_publish(const char *tmp_path, const char *final_path, const char *fp)
{
    char name[96];
    if (fp) {
        snprintf(name, sizeof name, "%s-tmp-written", fp);
        sl_failpoint(name);
    }
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_unlink_keep_errno(tmp_path);
    if (fsync(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return s_unlink_keep_errno(tmp_path);
    }
    if (fp) {
        snprintf(name, sizeof name, "%s-before-rename", fp);
        sl_failpoint(name);
    }
    if (close(fd) < 0 || rename(tmp_path, final_path) < 0)
        return s_unlink_keep_errno(tmp_path);
    if (fp) {
        snprintf(name, sizeof name, "%s-before-dirsync", fp);
        sl_failpoint(name);
    }
    if (s_fsync_dir(final_path) < 0)
        return SL_IO; /* renamed already: nothing left to unlink */
    return 0;
}

int sl_fs_publish(const char *tmp_path, const char *final_path)
{
    return s_publish(tmp_path, final_path, NULL);
}

static int s_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sl_fs_copy_atomic(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return SL_NOTFOUND;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf && n >= 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    int rc = buf && (long)got == n ? sl_fs_write_atomic(to, buf, got) : SL_IO;
    free(buf);
    return rc;
}

int sl_fs_link_or_copy(const char *from, const char *to)
{
    int rc = link(from, to);
    if (rc != 0 && errno == EEXIST && unlink(to) == 0)
        rc = link(from, to);
    if (rc != 0) {
        if (errno == ENOENT && access(from, F_OK) != 0)
            return SL_NOTFOUND;
        if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP ||
            errno == ENOSYS)
            return sl_fs_copy_atomic(from, to); /* (syncs the directory itself) */
        return SL_IO;
    }
    return s_fsync_dir(to) < 0 ? SL_IO : SL_OK;
}

int sl_fs_copy_dir(const char *from, const char *to, char *failed, size_t cap)
{
    if (failed && cap)
        snprintf(failed, cap, "%s", to);
    if (mkdir(to, 0755) != 0 && errno != EEXIST)
        return SL_IO;
    DIR *d = opendir(from);
    if (!d) {
        if (failed && cap)
            snprintf(failed, cap, "%s", from);
        return SL_IO;
    }
    int rc = SL_OK;
    for (struct dirent *e; rc == SL_OK && (e = readdir(d));) {
        char a[4400], b[4400];
        struct stat st;
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (stat(a, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if ((rc = sl_fs_copy_atomic(a, b)) != SL_OK) {
            int err = errno;
            if (failed && cap)
                snprintf(failed, cap, "%s", a);
            errno = err;
            rc = SL_IO;
        }
    }
    closedir(d);
    return rc;
}

int sl_fs_mkdtemp(const char *prefix, char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    int n = snprintf(buf, cap, "%s/%s-XXXXXX", tmp, prefix);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return SL_IO;
    }
    return mkdtemp(buf) ? 0 : SL_IO;
}

void sl_fs_staging_dir(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    snprintf(buf, cap, "%.*s.%s.sluice-staging", dirlen, path, slash ? slash + 1 : path);
}

int sl_fs_write_atomic(const char *path, const void *data, size_t len)
{
    return sl_fs_write_atomic_fp(path, data, len, NULL);
}

int sl_fs_write_atomic_fp(const char *path, const void *data, size_t len, const char *fp)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return sl_fs_write_atomic_iov(path, &iov, 1, fp);
}

int sl_fs_write_atomic_iov(const char *path, const struct iovec *iov, int n, const char *fp)
{
    char *tmp = s_tmp_path(path);
    if (!tmp)
        return SL_IO; /* the contract is 0 or SL_IO */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(tmp);
        return SL_IO;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = s_write_all(fd, iov[i].iov_base, iov[i].iov_len);
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        free(tmp);
        errno = e;
        return SL_IO;
    }
    rc = s_publish(tmp, path, fp);
    free(tmp);
    return rc;
}

/* ---- writer ----------------------------------------------------------- */

struct sl_writer {
    char *final_path;    /* owned: where the file appears on commit */
    char *tmp_path;      /* owned: the temporary file being written */
    sl_schema_t *schema; /* owned copy */
    sl_format_t fmt;     /* output format */
    int fd;              /* the temporary file, -1 once closed */
    char *buf;           /* output buffer */
    size_t len;          /* bytes of buf in use */
    int error;           /* first errno of a failed write, 0 if none (sticky) */
    bool committed;      /* published: destroy leaves the file alone */
};

static int s_wflush(sl_writer_t *w)
{
    if (w->error)
        return SL_IO;
    if (w->len && s_write_all(w->fd, w->buf, w->len) < 0) {
        w->error = errno ? errno : EIO;
        return SL_IO;
    }
    w->len = 0;
    return 0;
}

static int s_put(sl_writer_t *w, const char *p, size_t n)
{
    if (w->len + n > S_WRITE_BUF) {
        if (s_wflush(w) < 0)
            return SL_IO;
        if (n > S_WRITE_BUF) {
            if (s_write_all(w->fd, p, n) < 0) {
                w->error = errno ? errno : EIO;
                return SL_IO;
            }
            return 0;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int s_putc(sl_writer_t *w, char c)
{
    if (w->len == S_WRITE_BUF && s_wflush(w) < 0)
        return SL_IO;
    w->buf[w->len++] = c;
    return 0;
}

/* A CSV field: quoted when empty (to tell "" from null) or when it holds
 * the delimiter, a quote, CR or LF. */
static int s_put_csv(sl_writer_t *w, const char *s, size_t n)
{
    bool quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote)
        return s_put(w, s, n);
    int rc = s_putc(w, '"');
    size_t from = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (s[i] == '"') {
            rc = s_put(w, s + from, i + 1 - from); /* the quote, then its double */
            from = i;
        }
    }
    if (rc == 0)
        rc = s_put(w, s + from, n - from);
    if (rc == 0)
        rc = s_putc(w, '"');
    return rc;
}

/* A JSON string with escapes; control characters as \u00XX. */
static int s_put_json_str(sl_writer_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = s_putc(w, '"');
    size_t from = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        rc = s_put(w, s + from, i - from);
        if (rc == 0)
            rc = s_put(w, esc, elen);
        from = i + 1;
    }
    if (rc == 0)
        rc = s_put(w, s + from, n - from);
    if (rc == 0)
        rc = s_putc(w, '"');
    return rc;
}

int sl_writer_open(const char *final_path, sl_format_t fmt, const sl_schema_t *schema,
                   sl_writer_t **out, char *err, size_t cap)
{
    return sl_writer_open_ex(final_path, fmt, schema, true, out, err, cap);
}

int sl_writer_write_raw(sl_writer_t *w, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        if (w->len == S_WRITE_BUF && s_wflush(w) != 0)
            return SL_IO;
        size_t k = S_WRITE_BUF - w->len < n ? S_WRITE_BUF - w->len : n;
        memcpy(w->buf + w->len, c, k);
        w->len += k;
        c += k;
        n -= k;
    }
    return w->error ? SL_IO : SL_OK;
}

int sl_writer_open_ex(const char *final_path, sl_format_t fmt, const sl_schema_t *schema,
                      bool header, sl_writer_t **out, char *err, size_t cap)
{
    *out = NULL;
    if (!final_path || !schema || schema->nfields < 1)
        return s_err(err, cap, SL_INVAL, "writer needs a path and a non-empty schema");
    if (fmt == SL_FMT_TEXT && schema->nfields != 1)
        return s_err(err, cap, SL_INVAL, "text format of %s needs exactly one field", final_path);
    sl_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return s_err(err, cap, SL_NOMEM, "out of memory");
    w->fd = -1;
    w->fmt = fmt;
    w->final_path = strdup(final_path);
    w->tmp_path = s_tmp_path(final_path);
    w->schema = sl_schema_copy(schema);
    w->buf = malloc(S_WRITE_BUF);
    int rc = 0;
    if (!w->final_path || !w->tmp_path || !w->schema || !w->buf) {
        rc = s_err(err, cap, SL_NOMEM, "out of memory");
        goto fail;
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = s_err(err, cap, SL_IO, "%s: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    if (fmt == SL_FMT_CSV && header) {
        for (int f = 0; f < schema->nfields && rc == 0; f++) {
            if (f)
                rc = s_putc(w, ',');
            if (rc == 0)
                rc = s_put_csv(w, schema->fields[f].name, strlen(schema->fields[f].name));
        }
        if (rc == 0)
            rc = s_putc(w, '\n');
    }
    *out = w;
    return 0;
fail:
    sl_writer_destroy(&w);
    return rc;
}

int sl_writer_write(sl_writer_t *w, const sl_value_t *vals)
{
    if (!w || w->fd < 0 || w->committed)
        return SL_STATE;
    if (w->error)
        return SL_IO;
    int rc = 0;
    const sl_schema_t *s = w->schema;
    if (w->fmt == SL_FMT_JSONL)
        rc = s_putc(w, '{');
    for (int f = 0; f < s->nfields && rc == 0; f++) {
        const sl_value_t *v = &vals[f];
        char tmp[64];
        if (w->fmt == SL_FMT_JSONL) {
            if (f)
                rc = s_putc(w, ',');
            if (rc == 0)
                rc = s_put_json_str(w, s->fields[f].name, strlen(s->fields[f].name));
            if (rc == 0)
                rc = s_putc(w, ':');
            if (rc)
                break;
            if (v->is_null || (v->type == SL_TYPE_DOUBLE && !isfinite(v->u.d)))
                rc = s_put(w, "null", 4);
            else if (v->type == SL_TYPE_STRING)
                rc = s_put_json_str(w, v->u.s, v->len);
            else if (v->type == SL_TYPE_TIMESTAMP)
                rc = s_put_json_str(w, tmp, sl_value_to_text(v, tmp, sizeof tmp));
            else
                rc = s_put(w, tmp, sl_value_to_text(v, tmp, sizeof tmp));
        } else {
            if (f && w->fmt == SL_FMT_CSV)
                rc = s_putc(w, ',');
            if (rc || v->is_null)
                continue; /* null is an empty field / empty line */
            if (v->type == SL_TYPE_STRING)
                rc = w->fmt == SL_FMT_CSV ? s_put_csv(w, v->u.s, v->len) : s_put(w, v->u.s, v->len);
            else
                rc = s_put(w, tmp, sl_value_to_text(v, tmp, sizeof tmp));
        }
    }
    if (rc == 0 && w->fmt == SL_FMT_JSONL)
        rc = s_putc(w, '}');
    if (rc == 0)
        rc = s_putc(w, '\n');
    return rc;
}

int sl_writer_commit(sl_writer_t *w, char *err, size_t cap)
{
    if (!w || w->fd < 0 || w->committed)
        return s_err(err, cap, SL_STATE, "writer is not open");
    int rc = s_wflush(w);
    if (rc == 0 && fsync(w->fd) < 0)
        w->error = errno;
    if (close(w->fd) < 0 && !w->error)
        w->error = errno;
    w->fd = -1;
    if (w->error) {
        unlink(w->tmp_path);
        return s_err(err, cap, SL_IO, "%s: %s", w->tmp_path, strerror(w->error));
    }
    if (sl_fs_publish(w->tmp_path, w->final_path) < 0)
        return s_err(err, cap, SL_IO, "publishing %s: %s", w->final_path, strerror(errno));
    w->committed = true;
    return 0;
}

void sl_writer_destroy(sl_writer_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_writer_t *w = *pp;
    if (w->fd >= 0) {
        /* still open: never committed, so the temporary file goes */
        close(w->fd);
        unlink(w->tmp_path);
    }
    free(w->final_path);
    free(w->tmp_path);
    sl_schema_destroy(&w->schema);
    free(w->buf);
    free(w);
    *pp = NULL;
}

/* sl_fs_read_checked without out: f (open, size bytes by fstat) read
 * through one small buffer and hashed as it goes, so checking a big file
 * costs the hash and a copy, not the page faults of a buffer as large as
 * the file (~4x the CPU time of the hash for a fresh 56 MB buffer). */
static int s_check_stream(FILE *f, const char *path, uint64_t size, const char *sha256_hex,
                          char *why, size_t cap)
{
    enum { S_CHUNK = 256 * 1024 };
    uint8_t *buf = malloc(S_CHUNK);
    if (!buf) {
        fclose(f);
        snprintf(why, cap, "%s: out of memory", path);
        return SL_NOMEM;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint64_t got = 0;
    size_t n;
    while ((n = fread(buf, 1, S_CHUNK, f)) > 0) {
        sha256_update(&ctx, n, buf);
        got += n;
    }
    int rerr = ferror(f);
    fclose(f);
    free(buf);
    if (rerr) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
        return SL_IO;
    }
    if (got != size) {
        snprintf(why, cap, "%s is truncated or has the wrong size (%llu bytes, expected %llu)",
                 path, (unsigned long long)got, (unsigned long long)size);
        return SL_DATA;
    }
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[65];
    sha256_digest(&ctx, sizeof digest, digest);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (!sha256_hex || strcmp(hex, sha256_hex) != 0) {
        snprintf(why, cap, "%s is corrupt (its SHA-256 differs)", path);
        return SL_DATA;
    }
    return SL_OK;
}

int sl_fs_read_checked(const char *path, uint64_t size, const char *sha256_hex, uint8_t **out,
                       char *why, size_t cap)
{
    if (out)
        *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "%s is missing (%s)", path, strerror(errno));
        return SL_NOTFOUND;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || (uint64_t)sb.st_size != size || size > SIZE_MAX - 1) {
        snprintf(why, cap, "%s is truncated or has the wrong size (%lld bytes, expected %llu)",
                 path, (long long)sb.st_size, (unsigned long long)size);
        fclose(f);
        return SL_DATA;
    }
    if (!out)
        return s_check_stream(f, path, size, sha256_hex, why, cap);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        snprintf(why, cap, "%s: out of memory for %llu bytes", path, (unsigned long long)size);
        return SL_NOMEM;
    }
    sl_mem_huge(buf, (size_t)size); /* a fault per 2 MB, not per 4 KB */
    size_t got = fread(buf, 1, (size_t)size, f);
    int rerr = ferror(f), extra = fgetc(f);
    fclose(f);
    if (rerr) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        return SL_IO;
    }
    if (got != size || extra != EOF) {
        snprintf(why, cap, "%s is truncated or has the wrong size (%zu%s bytes, expected %llu)",
                 path, got, extra != EOF ? "+" : "", (unsigned long long)size);
        free(buf);
        return SL_DATA;
    }
    char hex[65];
    sl_sha256_hex(buf, (size_t)size, hex);
    if (!sha256_hex || strcmp(hex, sha256_hex) != 0) {
        snprintf(why, cap, "%s is corrupt (its SHA-256 differs)", path);
        free(buf);
        return SL_DATA;
    }
    if (out)
        *out = buf;
    else
        free(buf);
    return SL_OK;
}
