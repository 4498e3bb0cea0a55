/* op_file.c — the file connectors: a source reading CSV / JSON Lines / text
 * files (one file or a glob), and sinks writing CSV / JSON Lines to one file
 * published atomically when the bounded job ends, or to stdout.
 *
 * Source splitting: every file matched is cut into `parallelism` byte
 * ranges and subtask i reads range i of each file (fileio.h's line-split
 * rule reads each line exactly once), so one large file is read in
 * parallel. Malformed records fail the task, or with `on_error: skip` are
 * counted and logged (first few, with file and line) and skipped. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/textfmt.h"

#define S_LOGGED_ERRORS 10 /* malformed records logged per subtask before going quiet */

/* ---- source --------------------------------------------------------------- */

typedef struct {
    sl_value_t *vals; /* one record */
} s_source_t;

static int s_source_open(sl_opctx_t *c)
{
    s_source_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)c->node->out->nfields, sizeof *s->vals);
    return s->vals ? SL_OK : SL_NOMEM;
}

static void s_source_close(sl_opctx_t *c)
{
    s_source_t *s = c->state;
    if (s)
        free(s->vals);
    free(s);
    c->state = NULL;
}

static int s_read_range(sl_opctx_t *c, const char *path, uint64_t start, uint64_t end)
{
    s_source_t *s = c->state;
    const sl_file_source_cfg_t *cfg = &c->node->src;
    sl_reader_opts_t o = {.format = cfg->format,
                          .delimiter = cfg->delimiter,
                          .header = cfg->header,
                          .start = start,
                          .end = end};
    sl_reader_t *r = NULL;
    char err[400];
    int rc = sl_reader_open(path, cfg->schema, &o, &r, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "source '%s': %s", c->node->name, err);
    unsigned n = 0;
    for (;;) {
        rc = sl_reader_next(r, s->vals, c->arena, err, sizeof err);
        if (rc == 0)
            break;
        if (rc == SL_DATA) {
            if (!cfg->skip_errors) {
                sl_op_fail(c, rc, "source '%s': %s (set on_error: skip to skip bad records)",
                           c->node->name, err);
                break;
            }
            if (atomic_fetch_add(&c->errors, 1) < S_LOGGED_ERRORS)
                fprintf(stderr, "sluice: skipped bad record in source '%s': %s\n", c->node->name,
                        err);
            continue;
        }
        if (rc < 0) {
            sl_op_fail(c, rc, "source '%s': %s", c->node->name, err);
            break;
        }
        rc = sl_emit(&c->out, s->vals);
        if (rc == SL_RANGE) {
            sl_op_fail(c, rc, "source '%s': %s:%llu: record larger than %u bytes", c->node->name,
                       path, (unsigned long long)sl_reader_line(r), SL_ROW_MAX);
            break;
        }
        if (rc)
            break;
        if (++n % 256 == 0) {
            sl_arena_reset(c->arena);
            if (atomic_load(c->cancel)) {
                rc = SL_CANCELED;
                break;
            }
        }
    }
    sl_arena_reset(c->arena);
    sl_reader_close(&r);
    return rc;
}

static int s_source_run(sl_opctx_t *c)
{
    glob_t g;
    int grc = glob(c->node->src.path, GLOB_ERR, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return sl_op_fail(c, SL_NOTFOUND, "source '%s': no file matches '%s'", c->node->name,
                          c->node->src.path);
    if (grc != 0)
        return sl_op_fail(c, SL_IO, "source '%s': cannot list '%s'", c->node->name,
                          c->node->src.path);
    int rc = SL_OK;
    for (size_t i = 0; i < g.gl_pathc && rc == SL_OK; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode)) {
            if (g.gl_pathc == 1)
                rc = sl_op_fail(c, SL_IO, "source '%s': '%s' is not a readable file", c->node->name,
                                g.gl_pathv[i]);
            continue;
        }
        uint64_t size = (uint64_t)st.st_size, p = (uint64_t)c->parallelism;
        uint64_t start = size * (uint64_t)c->subtask / p;
        uint64_t end = size * (uint64_t)(c->subtask + 1) / p;
        if (c->subtask == c->parallelism - 1)
            end = UINT64_MAX; /* the last range takes whatever the file grew by */
        if (start < end)
            rc = s_read_range(c, g.gl_pathv[i], start, end);
    }
    globfree(&g);
    return rc;
}

static int s_source_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

const sl_op_vtable_t sl_op_file_source = {.open = s_source_open,
                                          .run_source = s_source_run,
                                          .finish = s_source_finish,
                                          .close = s_source_close};

/* ---- file sink ------------------------------------------------------------------ */

typedef struct {
    sl_writer_t *w;   /* writes to a temporary file until commit */
    sl_value_t *vals; /* one decoded row */
} s_sink_t;

static int s_sink_open(sl_opctx_t *c)
{
    s_sink_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)c->in->nfields + 1, sizeof *s->vals);
    if (!s->vals)
        return SL_NOMEM;
    char err[400];
    int rc =
        sl_writer_open(c->node->sink_path, c->node->sink_format, c->in, &s->w, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    return SL_OK;
}

static int s_sink_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_sink_t *s = c->state;
    for (const uint8_t *r = sl_batch_first(in); r; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, s->vals);
        int rc = sl_writer_write(s->w, s->vals);
        if (rc)
            return sl_op_fail(c, rc, "sink '%s': cannot write %s: %s", c->node->name,
                              c->node->sink_path, sl_strerror(rc));
    }
    atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
    return SL_OK;
}

static int s_sink_finish(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    char err[400];
    int rc = sl_writer_commit(s->w, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    return SL_OK;
}

static void s_sink_close(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    if (s) {
        sl_writer_destroy(&s->w); /* removes the temporary file unless committed */
        free(s->vals);
    }
    free(s);
    c->state = NULL;
}

const sl_op_vtable_t sl_op_file_sink = {
    .open = s_sink_open, .process = s_sink_process, .finish = s_sink_finish, .close = s_sink_close};

/* ---- stdout sink ------------------------------------------------------------ */

/* Several jobs' sinks may share stdout in one process: one line at a time. */
static pthread_mutex_t s_stdout_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    sl_value_t *vals;
    char *line; /* one formatted record */
    size_t cap;
} s_stdout_t;

static int s_put(s_stdout_t *s, size_t *len, const char *p, size_t n)
{
    if (*len + n + 2 > s->cap) {
        size_t nc = (*len + n + 2) * 2;
        char *nl = realloc(s->line, nc);
        if (!nl)
            return SL_NOMEM;
        s->line = nl;
        s->cap = nc;
    }
    memcpy(s->line + *len, p, n);
    *len += n;
    return SL_OK;
}

/* Writes len bytes to fd 1 without ever blocking for long: it waits for the
 * descriptor with poll() and writes at most PIPE_BUF bytes at a time (which
 * a writable pipe always takes), so a reader that stops reading stalls the
 * sink (backpressure) but never keeps a canceled task from ending. */
static int s_write_stdout(sl_opctx_t *c, const char *p, size_t len)
{
    while (len > 0) {
        if (atomic_load(c->cancel))
            return SL_CANCELED;
        struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
        int prc = poll(&pfd, 1, 50);
        if (prc < 0 && errno != EINTR)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot wait for stdout: %s", c->node->name,
                              strerror(errno));
        if (prc <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLNVAL))
            return sl_op_fail(c, SL_IO, "sink '%s': stdout is closed", c->node->name);
        ssize_t n = write(STDOUT_FILENO, p, len < PIPE_BUF ? len : PIPE_BUF);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot write stdout: %s", c->node->name,
                              strerror(errno));
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    return SL_OK;
}

static int s_stdout_open(sl_opctx_t *c)
{
    s_stdout_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)c->in->nfields + 1, sizeof *s->vals);
    if (!s->vals)
        return SL_NOMEM;
    if (c->node->sink_format == SL_FMT_CSV) {
        size_t len = 0;
        int rc = SL_OK;
        for (int i = 0; rc == SL_OK && i < c->in->nfields; i++) {
            if (i)
                rc = s_put(s, &len, ",", 1);
            if (rc == SL_OK)
                rc = s_put(s, &len, c->in->fields[i].name, strlen(c->in->fields[i].name));
        }
        if (rc == SL_OK)
            rc = s_put(s, &len, "\n", 1);
        if (rc == SL_OK)
            rc = s_write_stdout(c, s->line, len);
        return rc;
    }
    return SL_OK;
}

/* Appends v as a CSV field or a JSON value. */
static int s_put_value(s_stdout_t *s, size_t *len, const sl_value_t *v, bool json)
{
    char num[64];
    if (v->is_null || (json && v->type == SL_TYPE_DOUBLE && !isfinite(v->u.d)))
        return json ? s_put(s, len, "null", 4) : SL_OK; /* JSON has no inf or nan */
    if (v->type != SL_TYPE_STRING && v->type != SL_TYPE_TIMESTAMP) {
        size_t n = sl_value_to_text(v, num, sizeof num);
        return s_put(s, len, num, n < sizeof num ? n : sizeof num - 1);
    }
    const char *p = v->u.s;
    size_t n = v->len;
    if (v->type == SL_TYPE_TIMESTAMP) {
        n = sl_value_to_text(v, num, sizeof num);
        p = num;
    }
    bool quote = json;
    for (size_t i = 0; !quote && i < n; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\n' || p[i] == '\r';
    int rc = quote ? s_put(s, len, "\"", 1) : SL_OK;
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"')
            rc = s_put(s, len, json ? "\\\"" : "\"\"", 2);
        else if (json && ch == '\\')
            rc = s_put(s, len, "\\\\", 2);
        else if (json && ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            rc = s_put(s, len, esc, 6);
        } else
            rc = s_put(s, len, (const char *)&p[i], 1);
    }
    return rc == SL_OK && quote ? s_put(s, len, "\"", 1) : rc;
}

static int s_stdout_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_stdout_t *s = c->state;
    bool json = c->node->sink_format == SL_FMT_JSONL;
    size_t len = 0;
    int rc = SL_OK;
    for (const uint8_t *r = sl_batch_first(in); r && rc == SL_OK; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, s->vals);
        if (json)
            rc = s_put(s, &len, "{", 1);
        for (int i = 0; rc == SL_OK && i < c->in->nfields; i++) {
            if (i)
                rc = s_put(s, &len, ",", 1);
            if (json && rc == SL_OK) {
                rc = s_put(s, &len, "\"", 1);
                if (rc == SL_OK)
                    rc = s_put(s, &len, c->in->fields[i].name, strlen(c->in->fields[i].name));
                if (rc == SL_OK)
                    rc = s_put(s, &len, "\":", 2);
            }
            if (rc == SL_OK)
                rc = s_put_value(s, &len, &s->vals[i], json);
        }
        if (json && rc == SL_OK)
            rc = s_put(s, &len, "}", 1);
        if (rc == SL_OK)
            rc = s_put(s, &len, "\n", 1);
    }
    if (rc == SL_OK) {
        /* One batch at a time, so the lines of concurrent sinks never mix. */
        pthread_mutex_lock(&s_stdout_lock);
        rc = s_write_stdout(c, s->line, len);
        pthread_mutex_unlock(&s_stdout_lock);
    }
    if (rc == SL_OK)
        atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
    return rc;
}

static int s_stdout_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

static void s_stdout_close(sl_opctx_t *c)
{
    s_stdout_t *s = c->state;
    if (s) {
        free(s->vals);
        free(s->line);
    }
    free(s);
    c->state = NULL;
}

const sl_op_vtable_t sl_op_stdout_sink = {.open = s_stdout_open,
                                          .process = s_stdout_process,
                                          .finish = s_stdout_finish,
                                          .close = s_stdout_close};
