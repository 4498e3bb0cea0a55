/* op_file.c — the file connectors: a source reading CSV / JSON Lines / text
 * files (one file or a glob), and sinks writing CSV / JSON Lines to one file
 * published atomically when the bounded job ends, to a directory of parts
 * each published when the checkpoint that commits it completes
 * (`publish: checkpoint`, for streaming jobs), or to stdout.
 *
 * Source splitting: every file matched is cut into `parallelism` byte
 * ranges and subtask i reads range i of each file (fileio.h's line-split
 * rule reads each line exactly once), so one large file is read in
 * parallel. Malformed records fail the task, or with `on_error: skip` are
 * counted and logged (first few, with file and line) and skipped.
 *
 * Source checkpoints: the position is the file being read (by path; the
 * glob is listed again on restore, in the same sorted order, and the files
 * before it are skipped), whether it was read to the end of its range, and
 * the byte offset of its next record and the end of the range; a restored
 * reader opens at that offset (which is a record start, so a CSV header is
 * read for its column names but never taken for a record). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
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
#include <time.h>
#include <unistd.h>

#include "operator.h"
#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/plugin.h"
#include "sluice/textfmt.h"

#define S_LOGGED_ERRORS 10 /* malformed records logged per subtask before going quiet */

/* ---- source --------------------------------------------------------------- */

#define S_SOURCE_SNAP_VERSION 1

typedef struct {
    sl_value_t *vals; /* one record */
    char *cur;        /* path of the file being read or last read (owned), NULL before any */
    bool cur_done;    /* cur was read to the end of its range */
    uint64_t off;     /* in cur: file offset of the next record */
    uint64_t end;     /* in cur: end of the range */
    bool resume;      /* restored: skip the files before cur, go on at off */
} s_source_t;

static int s_source_open(sl_opctx_t *c)
{
    s_source_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)sl_plan_source_schema(c->node)->nfields, sizeof *s->vals);
    return s->vals ? SL_OK : SL_NOMEM;
}

static void s_source_close(sl_opctx_t *c)
{
    s_source_t *s = c->state;
    if (s) {
        free(s->vals);
        free(s->cur);
    }
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
        s->off = sl_reader_offset(r); /* the position a snapshot here describes */
        if ((rc = sl_op_source_checkpoint(c)) != SL_OK)
            break;
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
    if (rc == SL_OK)
        s->cur_done = true;
    return rc;
}

/* Makes path the file being read, from start to end. */
static int s_source_enter(sl_opctx_t *c, const char *path, uint64_t start, uint64_t end)
{
    s_source_t *s = c->state;
    char *p = strdup(path);
    if (!p)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    free(s->cur);
    s->cur = p;
    s->cur_done = false;
    s->off = start;
    s->end = end;
    return SL_OK;
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
    s_source_t *s = c->state;
    int rc = SL_OK;
    for (size_t i = 0; i < g.gl_pathc && rc == SL_OK; i++) {
        if (s->resume) { /* restored: files before cur were read */
            if (strcmp(g.gl_pathv[i], s->cur) != 0)
                continue;
            s->resume = false;
            if (!s->cur_done && s->off < s->end)
                rc = s_read_range(c, s->cur, s->off, s->end);
            continue;
        }
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
        if (start < end && (rc = s_source_enter(c, g.gl_pathv[i], start, end)) == SL_OK)
            rc = s_read_range(c, g.gl_pathv[i], start, end);
    }
    globfree(&g);
    if (rc == SL_OK && !s->resume)
        rc = sl_op_source_checkpoint(c); /* at the end: every file read */
    if (rc == SL_OK && s->resume)
        return sl_op_fail(
            c, SL_NOTFOUND,
            "source '%s': '%s', where the checkpoint left off, no longer matches '%s'",
            c->node->name, s->cur, c->node->src.path);
    return rc;
}

/* Version, subtask and parallelism; u8 1 and the position (path, done,
 * offset, range end), or u8 0 before the first file. */
static int s_source_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    const s_source_t *s = c->state;
    sl_snap_u8(w, S_SOURCE_SNAP_VERSION);
    sl_snap_u32(w, (uint32_t)c->subtask); /* the split is per subtask of parallelism */
    sl_snap_u32(w, (uint32_t)c->parallelism);
    sl_snap_u8(w, s->cur ? 1 : 0);
    if (s->cur) {
        sl_snap_bytes(w, s->cur, strlen(s->cur));
        sl_snap_u8(w, s->cur_done ? 1 : 0);
        sl_snap_u64(w, s->off);
        sl_snap_u64(w, s->end);
    }
    return w->err;
}

static int s_source_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_source_t *s = c->state;
    uint8_t v = sl_snap_get_u8(r);
    uint32_t sub = sl_snap_get_u32(r), par = sl_snap_get_u32(r);
    uint8_t has = sl_snap_get_u8(r);
    size_t plen = 0;
    const uint8_t *path = NULL;
    uint8_t done = 0;
    uint64_t off = 0, end = 0;
    if (has == 1) {
        path = sl_snap_get_bytes(r, &plen);
        done = sl_snap_get_u8(r);
        off = sl_snap_get_u64(r);
        end = sl_snap_get_u64(r);
    }
    if (r->err || v != S_SOURCE_SNAP_VERSION || has > 1 || done > 1 ||
        (has && (plen == 0 || plen >= PATH_MAX || memchr(path, 0, plen))))
        return sl_op_fail(c, SL_DATA, "source '%s': not a snapshot of a file source",
                          c->node->name);
    if (sub != (uint32_t)c->subtask || par != (uint32_t)c->parallelism)
        return sl_op_fail(c, SL_DATA,
                          "source '%s': the snapshot is of subtask %u of %u, not %d of %d (a file "
                          "source cannot change its parallelism on restore)",
                          c->node->name, sub, par, c->subtask, c->parallelism);
    if (!has)
        return SL_OK;
    char *p = strndup((const char *)path, plen);
    if (!p)
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    free(s->cur);
    s->cur = p;
    s->cur_done = done;
    s->off = off;
    s->end = end;
    s->resume = true;
    return SL_OK;
}

static int s_source_finish(sl_opctx_t *c)
{
    (void)c;
    return SL_OK;
}

const sl_op_vtable_t sl_op_file_source = {.open = s_source_open,
                                          .run_source = s_source_run,
                                          .finish = s_source_finish,
                                          .close = s_source_close,
                                          .snapshot = s_source_snapshot,
                                          .restore = s_source_restore};

/* ---- file sink ------------------------------------------------------------------ */

/* Without checkpoints the sink writes a temporary file and publishes it at
 * the end (atomic rename). In a checkpointed job its output must survive a
 * restart exactly: it writes numbered parts into a staging directory
 * beside the output (.NAME.sluice-staging/part-000000, ...); a snapshot
 * closes the current part durably (fsync, rename into place) and records
 * how many parts exist; a restore removes every part after that count (the
 * uncommitted output of the failed attempt); the end of input publishes
 * header + parts as the output file, atomically, then writes the end
 * marker `.end` (the job's checkpoint directory) into the staging
 * directory and removes the parts. The master removes the staging
 * directory once it has recorded the job as finished: until then a
 * restart (the master died in between) restores a checkpoint taken before
 * the end, whose parts are gone; the marker tells the restore that the
 * failed attempt published the whole output, and the replay is dropped. So
 * the output appears once, complete, whatever failed on the way
 * (docs/fault-tolerance.md).
 *
 * Fencing: an attempt that the master gave up (its worker declared lost
 * while still running) may go on writing for a while. Every sink instance
 * claims the staging directory by writing its own token into `.owner`
 * when it opens; before it commits a part and before it publishes, it
 * checks the token is still its own, and stops (failing its task) when a
 * newer attempt has taken over, so an old attempt never renames a part
 * into place, publishes, or removes the staging directory under a newer
 * one.
 *
 * `publish: checkpoint` (rolling, for jobs that never end): `path` is a
 * directory; subtask S stages its parts in PATH/.sluice-staging-S, each a
 * complete file with the format's header. A snapshot for checkpoint N
 * closes the current part and remembers how many parts N commits; when N
 * completes (complete(N)) those parts are renamed into PATH as
 * part-S-SEQ.EXT (SEQ = the part's number, so the names sort in order).
 * Nothing of an epoch whose checkpoint has not completed is visible. A
 * restore from N publishes N's parts not yet published (a crash between
 * the completion and the rename; a part whose target exists was published
 * already) and discards the parts after them. The end of input publishes
 * everything, as the Kafka sink commits its last transaction at finish,
 * after writing PATH/.sluice-end-S (the number of parts): a restore that
 * finds it knows the failed attempt had reached its end: it publishes the
 * rest of that attempt's closed parts and writes nothing of the replay
 * (the output is complete). Parts published past N without it come from
 * checkpoints after N that the restart does not use (damaged): they are
 * removed, and the replay writes them again. A fresh start (no restore)
 * removes the subtask's parts of an earlier run from PATH. */
typedef struct {
    uint64_t id;    /* a checkpoint this subtask snapshotted, not yet complete */
    uint32_t parts; /* parts committed by it */
} s_pend_t;

typedef struct {
    sl_writer_t *w;           /* the output, or the current part */
    sl_value_t *vals;         /* one decoded row */
    char *stage;              /* staging directory (checkpointed jobs), or NULL */
    uint32_t part;            /* index of the current part = parts committed */
    uint64_t *sizes;          /* bytes of each committed part */
    uint32_t cap_sizes;       /* entries allocated */
    char token[4400];         /* this instance's claim on the staging directory (`.owner`) */
    int lost;                 /* a part that failed to close took rows with it */
    char lost_why[512];       /* why (the task fails with it at the next call) */
    char *dir;                /* publish: checkpoint: the output directory, else NULL */
    uint32_t published;       /* publish: checkpoint: parts 0..published-1 are in dir */
    s_pend_t *pend;           /* publish: checkpoint: snapshots whose checkpoint is not complete */
    uint32_t npend, cap_pend; /* entries used / allocated */
    bool fresh;               /* opened, neither restored nor started yet */
    bool drop; /* the failed attempt published its whole output: the replay is dropped */
} s_sink_t;

static void s_part_path(const s_sink_t *s, uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/part-%06u", s->stage, (unsigned)i);
}

/* PATH/part-SUBTASK-SEQ.EXT: where part i of subtask sub is published. */
static void s_target_path(const sl_opctx_t *c, const char *dir, uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/part-%03d-%06u.%s", dir, c->subtask, (unsigned)i,
             c->node->sink_format == SL_FMT_JSONL ? "jsonl" : "csv");
}

/* Size of the file at path, or -1 when there is none. */
static int64_t s_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int s_keep_size(sl_opctx_t *c, s_sink_t *s, uint32_t i, uint64_t size)
{
    if (i >= s->cap_sizes) {
        uint32_t cap = s->cap_sizes ? s->cap_sizes * 2 : 16;
        while (cap <= i)
            cap *= 2;
        uint64_t *n = realloc(s->sizes, cap * sizeof *n);
        if (!n)
            return sl_op_fail(c, SL_NOMEM, "sink '%s': out of memory", c->node->name);
        s->sizes = n;
        s->cap_sizes = cap;
    }
    s->sizes[i] = size;
    return SL_OK;
}

#define S_OWNER ".owner" /* the staging directory's claim file */
#define S_END ".end"     /* publish: end: the whole output is published */

/* Reads at most cap - 1 bytes of the file at path into buf, NUL-terminated;
 * false when it cannot be opened. */
static bool s_read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return f != NULL;
}

/* Claims the staging directory for this instance (a newer attempt's claim
 * replaces an older one's). */
static int s_claim(sl_opctx_t *c, s_sink_t *s)
{
    static _Atomic uint64_t seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* (ending in " CKPT_DIR": the master drops a staging directory of a job
     * that ended only while it is still that job's) */
    snprintf(s->token, sizeof s->token, "%ld-%lld.%09ld-%llu-a%u %s", (long)getpid(),
             (long long)ts.tv_sec, ts.tv_nsec, (unsigned long long)atomic_fetch_add(&seq, 1),
             (unsigned)c->attempt, c->ckpt_dir ? c->ckpt_dir : "");
    char path[4200];
    snprintf(path, sizeof path, "%s/" S_OWNER, s->stage);
    if (sl_fs_write_atomic(path, s->token, strlen(s->token)) != SL_OK)
        return sl_op_fail(c, SL_IO, "sink '%s': cannot claim %s: %s", c->node->name, s->stage,
                          strerror(errno));
    return SL_OK;
}

/* SL_OK while the staging directory is still this instance's; else fails
 * the task (a newer attempt took over: this one must not touch it). */
static int s_check_owner(sl_opctx_t *c, const s_sink_t *s)
{
    char path[4200], got[sizeof s->token];
    snprintf(path, sizeof path, "%s/" S_OWNER, s->stage);
    if (s_read_small(path, got, sizeof got) && strcmp(got, s->token) == 0)
        return SL_OK;
    return sl_op_fail(c, SL_STATE,
                      "sink '%s': a newer attempt of the job took over %s; this one stops writing",
                      c->node->name, s->stage);
}

/* publish: checkpoint: renames parts published..n-1 into the output
 * directory, in order (a part whose staged file is gone and whose target
 * exists was published before: a restore after a crash in between). */
static int s_publish_upto(sl_opctx_t *c, s_sink_t *s, uint32_t n)
{
    if (s->published >= n)
        return SL_OK;
    int rc = s_check_owner(c, s);
    if (rc)
        return rc;
    for (; s->published < n; s->published++) {
        char part[4200], to[4200];
        s_part_path(s, s->published, part, sizeof part);
        s_target_path(c, s->dir, s->published, to, sizeof to);
        if (s_size(part) < 0 && s_size(to) >= 0)
            continue;
        if (sl_fs_publish(part, to) != SL_OK)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot publish %s as %s: %s", c->node->name,
                              part, to, strerror(errno));
    }
    return SL_OK;
}

/* Removes the files of the directory d for which drop(name, arg) holds. */
static void s_remove_if(const char *d, bool (*drop)(const char *name, const void *arg),
                        const void *arg)
{
    DIR *dh = opendir(d);
    if (!dh)
        return;
    for (struct dirent *e; (e = readdir(dh));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (strcmp(e->d_name, S_OWNER) != 0 && drop(e->d_name, arg)) {
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", d, e->d_name);
            unlink(path);
        }
    }
    closedir(dh);
}

static bool s_any(const char *name, const void *arg)
{
    (void)name;
    (void)arg;
    return true;
}

/* A staged part (publish: end). */
static bool s_part_name(const char *name, const void *arg)
{
    (void)arg;
    return strncmp(name, "part-", 5) == 0;
}

/* publish: end: the staging directory holds this job's end marker (the
 * whole output was published by an earlier attempt). */
static bool s_end_mark_is_ours(const sl_opctx_t *c, const s_sink_t *s)
{
    char path[4200], got[4200];
    snprintf(path, sizeof path, "%s/" S_END, s->stage);
    return s_read_small(path, got, sizeof got) && c->ckpt_dir && strcmp(got, c->ckpt_dir) == 0;
}

/* A published part of subtask *(const int *)arg. */
static bool s_own_target(const char *name, const void *arg)
{
    int sub;
    unsigned seq;
    char dot;
    return sscanf(name, "part-%d-%u%c", &sub, &seq, &dot) == 3 && dot == '.' &&
           sub == *(const int *)arg;
}

/* PATH/.sluice-end-S: written at the end of input, before the last parts
 * are published: how many parts the subtask's whole output has, and the
 * job's checkpoint directory (a marker of another job, e.g. an earlier run
 * of the one resumed from a savepoint, does not count). */
static void s_end_path(const sl_opctx_t *c, const s_sink_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/.sluice-end-%d", s->dir, c->subtask);
}

/* The part count of this job's end marker, or -1 when there is none. */
static int64_t s_read_end(const sl_opctx_t *c, const s_sink_t *s)
{
    char path[4200], job[4200] = "";
    s_end_path(c, s, path, sizeof path);
    FILE *f = fopen(path, "r");
    unsigned n;
    int got = f ? fscanf(f, "%u ", &n) : 0;
    if (got == 1 && !fgets(job, sizeof job, f))
        job[0] = '\0';
    if (f)
        fclose(f);
    job[strcspn(job, "\n")] = '\0';
    return got == 1 && strcmp(job, c->ckpt_dir ? c->ckpt_dir : "") == 0 ? (int64_t)n : -1;
}

/* publish: checkpoint, at the first record or snapshot of an attempt that
 * did not restore: the job starts from scratch, so the subtask's output of
 * an earlier run (published or staged) goes. */
static void s_start_fresh(sl_opctx_t *c, s_sink_t *s)
{
    if (!s->fresh)
        return;
    s->fresh = false;
    char end[4200];
    s_end_path(c, s, end, sizeof end);
    unlink(end);
    s_remove_if(s->stage, s_any, NULL);
    s_remove_if(s->dir, s_own_target, &c->subtask);
}

static int s_sink_open(sl_opctx_t *c)
{
    s_sink_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    c->state = s;
    s->vals = calloc((size_t)c->in->nfields + 1, sizeof *s->vals);
    if (!s->vals)
        return SL_NOMEM;
    const char *path = c->node->sink_path;
    if (c->node->sink_rolling) {
        size_t n = strlen(path) + 48;
        s->dir = strdup(path);
        s->stage = malloc(n);
        if (!s->dir || !s->stage)
            return SL_NOMEM;
        snprintf(s->stage, n, "%s/.sluice-staging-%d", path, c->subtask);
        if ((mkdir(s->dir, 0755) != 0 && errno != EEXIST) ||
            (mkdir(s->stage, 0755) != 0 && errno != EEXIST))
            return sl_op_fail(c, SL_IO, "sink '%s': cannot create %s: %s", c->node->name, s->stage,
                              strerror(errno));
        s->fresh = true;
        return s_claim(c, s);
    }
    if (c->plan->spec->ckpt_interval_ms > 0) {
        size_t n = strlen(path) + 32;
        s->stage = malloc(n);
        if (!s->stage)
            return SL_NOMEM;
        sl_fs_staging_dir(path, s->stage, n);
        if (mkdir(s->stage, 0755) != 0 && errno != EEXIST)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot create %s: %s", c->node->name, s->stage,
                              strerror(errno));
        return s_claim(c, s); /* parts open on the first record */
    }
    char err[400];
    int rc = sl_writer_open(path, c->node->sink_format, c->in, &s->w, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    return SL_OK;
}

/* After a part that could not be closed durably (its rows are gone: its
 * temporary file was removed, and a failed fsync is never retried on the
 * same data) the sink cannot go on: the task fails and the job restarts
 * from the last completed checkpoint, which replays those rows. */
static int s_sink_lost(sl_opctx_t *c, const s_sink_t *s)
{
    return sl_op_fail(c, s->lost, "sink '%s': output since the last checkpoint was lost: %s",
                      c->node->name, s->lost_why);
}

static int s_sink_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_sink_t *s = c->state;
    if (s->lost)
        return s_sink_lost(c, s);
    if (s->drop) /* the failed attempt's output is complete and published */
        return SL_OK;
    s_start_fresh(c, s);
    if (!s->w) {
        char part[4200], err[400];
        s_part_path(s, s->part, part, sizeof part);
        int rc = sl_writer_open_ex(part, c->node->sink_format, c->in, s->dir != NULL, &s->w, err,
                                   sizeof err);
        if (rc)
            return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    }
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

/* Closes the current part durably: it is committed output from now on. */
static int s_close_part(sl_opctx_t *c, s_sink_t *s)
{
    if (!s->w)
        return SL_OK;
    char err[400], path[4200];
    int rc = s_check_owner(c, s);
    if (rc) {
        sl_writer_destroy(&s->w); /* removes its temporary file */
        return rc;
    }
    rc = sl_writer_commit(s->w, err, sizeof err);
    sl_writer_destroy(&s->w);
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    s_part_path(s, s->part, path, sizeof path);
    int64_t size = s_size(path);
    if ((rc = s_keep_size(c, s, s->part, size > 0 ? (uint64_t)size : 0)) != SL_OK)
        return rc;
    s->part++;
    return SL_OK;
}

/* DIR/parts-NODE-SUBTASK: where a savepoint (or the checkpoint it was
 * copied from) holds this subtask's committed parts. */
static void s_saved_dir(const sl_opctx_t *c, const char *dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/" SL_CKPT_PARTS_PREFIX "%s-%d", dir, c->node->name, c->subtask);
}

/* When the checkpoint being taken is a savepoint (the master marked its
 * directory), the committed parts still staged (from..part-1; those before
 * are published) are linked (or copied) into it, so the savepoint the
 * master copies from it holds everything a resume needs, however often
 * and wherever it is resumed. A checkpoint refers to the staged parts. */
static int s_save_parts(sl_opctx_t *c, s_sink_t *s, uint32_t from)
{
    if (!c->ckpt_dir)
        return SL_OK;
    char chk[4200], mark[4300], dir[4400];
    snprintf(chk, sizeof chk, "%s/chk-%llu", c->ckpt_dir, (unsigned long long)c->checkpoint_id);
    snprintf(mark, sizeof mark, "%s/" SL_CKPT_SAVEPOINT_MARK, chk);
    if (access(mark, F_OK) != 0 && errno == ENOENT)
        return SL_OK;
    s_saved_dir(c, chk, dir, sizeof dir);
    if (access(mark, F_OK) != 0 || (mkdir(dir, 0755) != 0 && errno != EEXIST))
        return sl_op_fail(c, SL_IO, "sink '%s': cannot create %s for the savepoint: %s",
                          c->node->name, dir, strerror(errno));
    for (uint32_t i = from; i < s->part; i++) {
        char part[4200], to[4600];
        s_part_path(s, i, part, sizeof part);
        snprintf(to, sizeof to, "%s/part-%06u", dir, (unsigned)i);
        if (sl_fs_link_or_copy(part, to) != SL_OK)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot put committed part %s into %s: %s",
                              c->node->name, part, dir, strerror(errno));
    }
    return SL_OK;
}

static int s_sink_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    s_sink_t *s = c->state;
    if (!s->stage)
        return sl_op_fail(c, SL_STATE, "sink '%s' is not staged", c->node->name);
    if (s->lost)
        return s_sink_lost(c, s);
    if (s->dir)
        s_start_fresh(c, s);
    int rc = s_close_part(c, s);
    if (rc) {
        /* the checkpoint is declined; the rows of that part are gone */
        s->lost = rc;
        snprintf(s->lost_why, sizeof s->lost_why, "%s", c->err);
        return rc;
    }
    if ((rc = s_save_parts(c, s, s->dir ? s->published : 0)) != SL_OK)
        return rc;                 /* (declined; the parts stay staged) */
    sl_snap_u8(w, s->dir ? 3 : 2); /* version: 3 = publish: checkpoint */
    sl_snap_bytes(w, s->stage, strlen(s->stage));
    if (s->dir) {
        sl_snap_bytes(w, s->dir, strlen(s->dir));
        sl_snap_u32(w, (uint32_t)c->subtask);
        /* published when checkpoint_id completes */
        if (s->npend == s->cap_pend) {
            uint32_t cap = s->cap_pend ? s->cap_pend * 2 : 8;
            s_pend_t *n = realloc(s->pend, cap * sizeof *n);
            if (!n)
                return sl_op_fail(c, SL_NOMEM, "sink '%s': out of memory", c->node->name);
            s->pend = n;
            s->cap_pend = cap;
        }
        s->pend[s->npend++] = (s_pend_t){c->checkpoint_id, s->part};
    }
    sl_snap_u32(w, s->part);
    for (uint32_t i = 0; i < s->part; i++)
        sl_snap_u64(w, s->sizes[i]);
    return SL_OK;
}

/* publish: checkpoint: checkpoint id is durable, so are the parts that it
 * and the snapshots before it committed: they are published. */
static int s_sink_complete(sl_opctx_t *c, uint64_t id)
{
    s_sink_t *s = c->state;
    if (!s->dir || s->lost)
        return SL_OK;
    uint32_t upto = 0, k = 0;
    for (uint32_t i = 0; i < s->npend; i++)
        if (s->pend[i].id <= id)
            upto = s->pend[i].parts > upto ? s->pend[i].parts : upto;
        else
            s->pend[k++] = s->pend[i];
    s->npend = k;
    return s_publish_upto(c, s, upto);
}

/* Copies part i of another staging directory (the output the snapshot was
 * taken for; a job resumed from a savepoint may write elsewhere). */
static int s_copy_part(sl_opctx_t *c, s_sink_t *s, const char *from_dir, uint32_t i)
{
    char from[4600], to[4200];
    snprintf(from, sizeof from, "%s/part-%06u", from_dir, (unsigned)i);
    s_part_path(s, i, to, sizeof to);
    int rc = sl_fs_copy_atomic(from, to);
    if (rc == SL_NOTFOUND)
        return sl_op_fail(c, SL_DATA, "sink '%s': committed part %s is missing: %s", c->node->name,
                          from, strerror(errno));
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': cannot copy %s to %s", c->node->name, from, to);
    return SL_OK;
}

/* publish: checkpoint: the parts checkpoint N committed are published
 * (those not published yet, the others are checked), the parts after them
 * are discarded, unless the failed attempt had published past them (it
 * reached the end of input): then its closed parts are published too and
 * the replay is dropped. */
static int s_rolling_restore(sl_opctx_t *c, s_sink_t *s, sl_snap_r_t *r, const char *from_stage)
{
    size_t dlen = 0;
    const uint8_t *d = sl_snap_get_bytes(r, &dlen);
    uint32_t sub = sl_snap_get_u32(r), parts = sl_snap_get_u32(r);
    if (r->err || dlen >= 4096 || parts > r->left / 8)
        return sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
    if (sub != (uint32_t)c->subtask)
        return sl_op_fail(c, SL_DATA, "sink '%s': the snapshot is of subtask %u, not %d",
                          c->node->name, sub, c->subtask);
    char from_dir[4096];
    memcpy(from_dir, d, dlen);
    from_dir[dlen] = '\0';
    bool elsewhere = strcmp(from_dir, s->dir) != 0;
    char saved[4400] = "";
    if (c->restore_dir)
        s_saved_dir(c, c->restore_dir, saved, sizeof saved);
    s->fresh = false;
    s->npend = 0;
    int rc = s_check_owner(c, s);
    for (uint32_t i = 0; rc == SL_OK && i < parts; i++) {
        uint64_t size = sl_snap_get_u64(r);
        char part[4200], to[4200], old[4200];
        s_part_path(s, i, part, sizeof part);
        s_target_path(c, s->dir, i, to, sizeof to);
        char sv[4600];
        snprintf(sv, sizeof sv, "%s/part-%06u", saved, (unsigned)i);
        if (saved[0] && s_size(sv) >= 0) { /* the savepoint's copy */
            if ((rc = s_copy_part(c, s, saved, i)) != SL_OK)
                break;
        } else {
            snprintf(old, sizeof old, "%s/part-%06u", from_stage, (unsigned)i);
            if (elsewhere && s_size(old) >= 0 && (rc = s_copy_part(c, s, from_stage, i)) != SL_OK)
                break;
        }
        int64_t staged = s_size(part);
        if (staged >= 0 && (uint64_t)staged != size)
            rc = sl_op_fail(c, SL_DATA,
                            "sink '%s': committed part %s is truncated (expected %llu "
                            "bytes)",
                            c->node->name, part, (unsigned long long)size);
        else if (staged >= 0 && sl_fs_publish(part, to) != SL_OK)
            rc = sl_op_fail(c, SL_IO, "sink '%s': cannot publish %s as %s: %s", c->node->name, part,
                            to, strerror(errno));
        else if (staged < 0 && (uint64_t)s_size(to) != size) {
            s_target_path(c, from_dir, i, old, sizeof old); /* (published where it was taken) */
            if (!elsewhere || (uint64_t)s_size(old) != size)
                rc = sl_op_fail(c, SL_DATA,
                                "sink '%s': committed part %u is neither staged nor published "
                                "(%s, %llu bytes)",
                                c->node->name, (unsigned)i, to, (unsigned long long)size);
        }
        if (rc == SL_OK)
            rc = s_keep_size(c, s, i, size);
    }
    if (rc)
        return rc;
    s->part = s->published = parts;
    char to[4200];
    int64_t end = s_read_end(c, s);
    s_target_path(c, s->dir, parts, to, sizeof to);
    if (end >= (int64_t)parts) { /* the failed attempt reached its end of input */
        for (; s->part < end; s->published = ++s->part) {
            char part[4200];
            s_part_path(s, s->part, part, sizeof part);
            s_target_path(c, s->dir, s->part, to, sizeof to);
            int64_t staged = s_size(part), size = staged >= 0 ? staged : s_size(to);
            if (size < 0)
                return sl_op_fail(c, SL_DATA,
                                  "sink '%s': part %u of the output finished by the failed attempt "
                                  "is neither staged nor published (%s)",
                                  c->node->name, (unsigned)s->part, to);
            if (staged >= 0 && sl_fs_publish(part, to) != SL_OK)
                return sl_op_fail(c, SL_IO, "sink '%s': cannot publish %s as %s: %s", c->node->name,
                                  part, to, strerror(errno));
            if ((rc = s_keep_size(c, s, s->part, (uint64_t)size)) != SL_OK)
                return rc;
        }
        s->drop = true;
        fprintf(stderr,
                "sluice: sink '%s' subtask %d: the failed attempt had published its whole output "
                "(%u parts); the replay is not written again\n",
                c->node->name, c->subtask, (unsigned)s->part);
    } else if (s_size(to) >= 0) {
        /* published by checkpoints after this one, which the restart does not
         * use (they were found damaged): the replay writes those rows again */
        uint32_t i = parts;
        for (; s_size(to) >= 0; s_target_path(c, s->dir, ++i, to, sizeof to))
            unlink(to);
        fprintf(stderr,
                "sluice: sink '%s' subtask %d: removed %u part(s) published by checkpoints after "
                "the one restored, which the restart does not use\n",
                c->node->name, c->subtask, (unsigned)(i - parts));
    }
    /* what is left staged is output of the failed attempt after the checkpoint */
    s_remove_if(s->stage, s_any, NULL);
    return SL_OK;
}

static int s_sink_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    s_sink_t *s = c->state;
    uint8_t version = sl_snap_get_u8(r);
    size_t dlen = 0;
    const uint8_t *dir = sl_snap_get_bytes(r, &dlen);
    if (!r->err && s->stage && (version == 3) != (s->dir != NULL))
        return sl_op_fail(c, SL_DATA,
                          "sink '%s': the checkpoint was taken with publish: %s; it cannot resume "
                          "with publish: %s",
                          c->node->name, version == 3 ? "checkpoint" : "end",
                          s->dir ? "checkpoint" : "end");
    if (r->err || (version != 2 && version != 3) || !s->stage || dlen >= 4096)
        return sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
    char from[4096];
    memcpy(from, dir, dlen);
    from[dlen] = '\0';
    if (s->dir)
        return s_rolling_restore(c, s, r, from);
    uint32_t parts = sl_snap_get_u32(r);
    if (r->err || parts > r->left / 8)
        return sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
    bool elsewhere = strcmp(from, s->stage) != 0;
    s->part = 0;
    if (!elsewhere && s_end_mark_is_ours(c, s)) {
        for (uint32_t i = 0; i < parts; i++)
            (void)sl_snap_get_u64(r); /* (their sizes: the parts are published) */
        if (r->err)
            return sl_op_fail(c, SL_DATA, "sink '%s': bad snapshot", c->node->name);
        s->drop = true;
        fprintf(stderr,
                "sluice: sink '%s': the failed attempt had published the whole output (%s); the "
                "replay is not written again\n",
                c->node->name, c->node->sink_path);
        return SL_OK;
    }
    char saved[4400] = "", have[4600];
    if (c->restore_dir)
        s_saved_dir(c, c->restore_dir, saved, sizeof saved);
    for (uint32_t i = 0; i < parts; i++) {
        uint64_t size = sl_snap_get_u64(r);
        char part[4200];
        struct stat st;
        /* a savepoint holds its parts; else they are staged where it was taken */
        snprintf(have, sizeof have, "%s/part-%06u", saved, (unsigned)i);
        bool in_saved = saved[0] && s_size(have) >= 0;
        if (in_saved || elsewhere) {
            int rc = s_copy_part(c, s, in_saved ? saved : from, i);
            if (rc)
                return rc;
        }
        s_part_path(s, i, part, sizeof part);
        if (stat(part, &st) != 0 || (uint64_t)st.st_size != size)
            return sl_op_fail(c, SL_DATA,
                              "sink '%s': committed part %s is %s (expected %llu bytes)",
                              c->node->name, part, stat(part, &st) != 0 ? "missing" : "truncated",
                              (unsigned long long)size);
        int rc = s_keep_size(c, s, s->part, size);
        if (rc)
            return rc;
        s->part++;
    }
    /* Everything after them is output of a failed attempt. */
    DIR *d = opendir(s->stage);
    if (!d)
        return sl_op_fail(c, SL_IO, "sink '%s': %s: %s", c->node->name, s->stage, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        unsigned idx;
        char tail;
        bool keep = sscanf(e->d_name, "part-%u%c", &idx, &tail) == 1 && idx < parts;
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (strcmp(e->d_name, S_OWNER) == 0)
            continue; /* (an end marker here is another job's, or this one's from a fresh start) */
        if (!keep) {
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", s->stage, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    s->part = parts;
    return SL_OK;
}

static int s_sink_finish(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    char err[400];
    int rc;
    if (s->dir) { /* every part, at once (as the Kafka sink commits at finish) */
        if (s->lost)
            return s_sink_lost(c, s);
        if (s->drop) /* (all published already) */
            goto done;
        s_start_fresh(c, s);
        if ((rc = s_close_part(c, s)) != SL_OK || (rc = s_check_owner(c, s)) != SL_OK)
            return rc;
        /* the marker first: a restore after a crash in between completes this */
        char end[4200], n[4200];
        s_end_path(c, s, end, sizeof end);
        snprintf(n, sizeof n, "%u %s\n", (unsigned)s->part, c->ckpt_dir ? c->ckpt_dir : "");
        if (sl_fs_write_atomic(end, n, strlen(n)) != SL_OK)
            return sl_op_fail(c, SL_IO, "sink '%s': cannot write %s: %s", c->node->name, end,
                              strerror(errno));
        if ((rc = s_publish_upto(c, s, s->part)) != SL_OK)
            return rc;
        s->npend = 0;
    done:
        if ((rc = s_check_owner(c, s)) == SL_OK)
            sl_rmtree(s->stage);
        return rc;
    }
    if (s->stage) {
        if (s->lost)
            return s_sink_lost(c, s);
        if (s->drop) /* (published by the failed attempt) */
            return SL_OK;
        /* header + every part, published at once */
        if ((rc = s_close_part(c, s)) != SL_OK || (rc = s_check_owner(c, s)) != SL_OK)
            return rc;
        rc =
            sl_writer_open(c->node->sink_path, c->node->sink_format, c->in, &s->w, err, sizeof err);
        for (uint32_t i = 0; rc == SL_OK && i < s->part; i++) {
            char part[4200], buf[65536];
            s_part_path(s, i, part, sizeof part);
            FILE *f = fopen(part, "rb");
            if (!f) {
                snprintf(err, sizeof err, "%s: %s", part, strerror(errno));
                rc = SL_IO;
                break;
            }
            size_t n;
            while (rc == SL_OK && (n = fread(buf, 1, sizeof buf, f)) > 0)
                rc = sl_writer_write_raw(s->w, buf, n);
            if (ferror(f))
                rc = SL_IO;
            fclose(f);
            if (rc)
                snprintf(err, sizeof err, "copying %s: %s", part, sl_strerror(rc));
        }
        if (rc)
            return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    }
    if (s->stage && (rc = s_check_owner(c, s)) != SL_OK)
        return rc; /* (the copy took a while: check again right before) */
    rc = sl_writer_commit(s->w, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "sink '%s': %s", c->node->name, err);
    if (!s->stage)
        return SL_OK;
    if (!c->ckpt_dir) { /* (nobody restores it: nothing to mark) */
        sl_rmtree(s->stage);
        return SL_OK;
    }
    /* published: the marker, then the parts go (the master removes the
     * directory once the job is recorded as finished) */
    char end[4200];
    snprintf(end, sizeof end, "%s/" S_END, s->stage);
    if (sl_fs_write_atomic(end, c->ckpt_dir, strlen(c->ckpt_dir)) != SL_OK)
        return sl_op_fail(c, SL_IO, "sink '%s': cannot write %s: %s", c->node->name, end,
                          strerror(errno));
    s_remove_if(s->stage, s_part_name, NULL);
    return SL_OK;
}

static void s_sink_close(sl_opctx_t *c)
{
    s_sink_t *s = c->state;
    if (s) {
        sl_writer_destroy(&s->w); /* removes the temporary file unless committed */
        free(s->vals);
        free(s->stage);
        free(s->sizes);
        free(s->dir);
        free(s->pend);
    }
    free(s);
    c->state = NULL;
}

const sl_op_vtable_t sl_op_file_sink = {.open = s_sink_open,
                                        .process = s_sink_process,
                                        .finish = s_sink_finish,
                                        .close = s_sink_close,
                                        .snapshot = s_sink_snapshot,
                                        .restore = s_sink_restore,
                                        .complete = s_sink_complete};

/* ---- stdout sink ------------------------------------------------------------ */

/* Several jobs' sinks may share stdout in one process: one line at a time. */
static pthread_mutex_t s_stdout_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    sl_value_t *vals;
    sl_textbuf_t text; /* the lines of one batch */
} s_stdout_t;

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
        int rc = SL_OK;
        for (int i = 0; rc == SL_OK && i < c->in->nfields; i++) {
            if (i)
                rc = sl_textbuf_put(&s->text, ",", 1);
            if (rc == SL_OK)
                rc = sl_textbuf_put(&s->text, c->in->fields[i].name, strlen(c->in->fields[i].name));
        }
        if (rc == SL_OK)
            rc = sl_textbuf_put(&s->text, "\n", 1);
        if (rc == SL_OK)
            rc = s_write_stdout(c, s->text.p, s->text.len);
        return rc;
    }
    return SL_OK;
}

static int s_stdout_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    s_stdout_t *s = c->state;
    bool json = c->node->sink_format == SL_FMT_JSONL;
    s->text.len = 0;
    int rc = SL_OK;
    for (const uint8_t *r = sl_batch_first(in); r && rc == SL_OK; r = sl_batch_next(in, r)) {
        sl_row_decode(c->in, r, s->vals);
        rc = sl_textbuf_row(&s->text, c->in, s->vals, json);
        if (rc == SL_OK)
            rc = sl_textbuf_put(&s->text, "\n", 1);
    }
    if (rc == SL_OK) {
        /* One batch at a time, so the lines of concurrent sinks never mix. */
        pthread_mutex_lock(&s_stdout_lock);
        rc = s_write_stdout(c, s->text.p, s->text.len);
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
        free(s->text.p);
    }
    free(s);
    c->state = NULL;
}

const sl_op_vtable_t sl_op_stdout_sink = {.open = s_stdout_open,
                                          .process = s_stdout_process,
                                          .finish = s_stdout_finish,
                                          .close = s_stdout_close};
