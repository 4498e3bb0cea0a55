/* fileio.h — file readers and writers of the file connectors, and the one
 * crash-safe publish helper everything that publishes a file uses.
 *
 * Readers turn CSV (RFC 4180, with a header naming the columns), JSON Lines
 * (one object per line, fields looked up by name) or plain text (one record
 * per line, one string field) into rows of a declared schema. A reader can
 * cover a byte range [start, end) of a file so that several source subtasks
 * split one file: a range that does not begin at 0 skips to the first line
 * start after `start`, and a line that begins before `end` is read to its
 * end (the Hadoop line-split rule), so every line is read exactly once. */
#ifndef SLUICE_FILEIO_H
#define SLUICE_FILEIO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/arena.h"
#include "sluice/row.h"

typedef enum { SL_FMT_CSV, SL_FMT_JSONL, SL_FMT_TEXT } sl_format_t;

/* "csv", "jsonl" (also "json"), "text"; 0 or SL_NOTFOUND. */
int sl_format_parse(const char *name, sl_format_t *out);

typedef struct sl_reader sl_reader_t;

typedef struct {
    sl_format_t format;
    char delimiter; /* CSV only; ',' by default */
    bool header;    /* CSV only: first line names columns (default true) */
    uint64_t start; /* byte range start */
    uint64_t end;   /* byte range end; UINT64_MAX for the whole file */
} sl_reader_opts_t;

/* Opens path for reading rows of schema (a text schema has exactly one
 * string field). For CSV with header, every schema field must name a
 * column of the header (else SL_DATA "column 'x' not in header of F").
 * Returns 0 and *out, or an error with a message in err. */
int sl_reader_open(const char *path, const sl_schema_t *schema, const sl_reader_opts_t *opts,
                   sl_reader_t **out, char *err, size_t cap);
/* Reads the next record into vals[nfields]; strings live in arena (the
 * caller resets it per batch). Returns 1 for a record, 0 at end of range,
 * SL_DATA for a malformed record (err says "F:LINE: why"; the reader has
 * moved past it, so the caller may skip and go on), SL_IO on I/O error. */
int sl_reader_next(sl_reader_t *r, sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap);
/* 1-based line number of the record last returned, and the byte offset
 * just after it (the position to resume from). */
uint64_t sl_reader_line(const sl_reader_t *r);
uint64_t sl_reader_offset(const sl_reader_t *r);
void sl_reader_close(sl_reader_t **pp);

/* Decodes one JSON object (p[0..n), a writable copy: strings are unescaped
 * in place) into vals. fields lists the schema fields taken from the
 * object (NULL: all of them); those missing from the object are null,
 * others are left as they are; unknown keys are skipped. Errors (SL_DATA)
 * say what without where: "field 'n' expects int64, got string", "bad JSON
 * at column 7: ...". The file reader and the Kafka source share it. */
int sl_json_decode(char *p, size_t n, const sl_schema_t *sc, const int *fields, int nfields,
                   sl_value_t *vals, sl_arena_t *arena, char *err, size_t cap);

typedef struct sl_writer sl_writer_t;

/* Opens a writer whose output becomes visible at final_path only on
 * commit: rows go to a temporary file in the same directory. CSV writes a
 * header row; strings are quoted when they need it. */
int sl_writer_open(const char *final_path, sl_format_t fmt, const sl_schema_t *schema,
                   sl_writer_t **out, char *err, size_t cap);
/* sl_writer_open, and without the CSV header row when header is false
 * (the parts of a staged output). */
int sl_writer_open_ex(const char *final_path, sl_format_t fmt, const sl_schema_t *schema,
                      bool header, sl_writer_t **out, char *err, size_t cap);
int sl_writer_write(sl_writer_t *w, const sl_value_t *vals);
/* Appends bytes already in the writer's format (a staged part). */
int sl_writer_write_raw(sl_writer_t *w, const void *p, size_t n);
/* Flushes, fsyncs and publishes the file with sl_fs_publish. */
int sl_writer_commit(sl_writer_t *w, char *err, size_t cap);
/* Closes; an uncommitted temporary file is removed. Accepts NULL. */
void sl_writer_destroy(sl_writer_t **pp);

/* Crash-safe publish: fsync tmp_path, rename it to final_path, fsync the
 * directory. On error tmp_path is unlinked. Returns 0 or SL_IO. */
int sl_fs_publish(const char *tmp_path, const char *final_path);
/* Writes len bytes to path crash-safely (temp file, fsync, rename, fsync
 * dir). Returns 0 or SL_IO. */
int sl_fs_write_atomic(const char *path, const void *data, size_t len);
/* Copies the file from to to crash-safely (as sl_fs_write_atomic). Returns
 * 0, SL_NOTFOUND when from cannot be opened (errno says why), or SL_IO. */
int sl_fs_copy_atomic(const char *from, const char *to);
/* Reads the whole file at path and checks it is exactly size bytes with
 * the SHA-256 sha256_hex (64 lowercase hex digits), as recorded when it was
 * written (checkpoint state files). Returns 0 and, when out is not NULL,
 * the bytes in *out (the caller frees them); SL_NOTFOUND when it cannot be
 * opened ("PATH is missing (why)"), SL_DATA when it has another size or
 * hash ("PATH is truncated or has the wrong size (N bytes, expected M)",
 * "PATH is corrupt (its SHA-256 differs)"), SL_IO or SL_NOMEM, with the
 * message in why. */
int sl_fs_read_checked(const char *path, uint64_t size, const char *sha256_hex, uint8_t **out,
                       char *why, size_t cap);
/* Creates a fresh private directory named "<tmp>/<prefix>-XXXXXX" into
 * buf (cap bytes), where <tmp> is $TMPDIR when that is an absolute path,
 * else /tmp. Returns 0, or SL_IO (errno says why; buf too small: ENAMETOOLONG). */
int sl_fs_mkdtemp(const char *prefix, char *buf, size_t cap);
/* The staging directory of an output file written in parts
 * (.NAME.sluice-staging beside it; docs/fault-tolerance.md). */
void sl_fs_staging_dir(const char *path, char *buf, size_t cap);
/* Makes to a hard link of the file from (replacing a file at to), or a
 * crash-safe copy where a link cannot be made (another file system, or one
 * without hard links); the directory of to is synced. Returns 0,
 * SL_NOTFOUND when from does not exist, or SL_IO (errno says why). */
int sl_fs_link_or_copy(const char *from, const char *to);
/* Copies every regular file of the directory from into the directory to
 * (created if needed), each crash-safely. Returns 0 or SL_IO (errno says
 * why; *failed, when not NULL, names the file, cap bytes). */
int sl_fs_copy_dir(const char *from, const char *to, char *failed, size_t cap);
/* A checkpoint directory holding a file of this name (the master makes it
 * before it triggers the checkpoint) is taken for a savepoint: file sinks
 * put their committed parts into it, under SL_CKPT_PARTS_PREFIX
 * NODE-SUBTASK/, and the savepoint copied from it holds them too
 * (docs/fault-tolerance.md). */
#define SL_CKPT_SAVEPOINT_MARK "_savepoint"
#define SL_CKPT_PARTS_PREFIX "parts-"
/* sl_fs_write_atomic with the failpoints (sluice/failpoint.h)
 * fp-tmp-written (the temporary file written, not synced), fp-before-rename
 * (synced, not renamed) and fp-before-dirsync (renamed, directory not
 * synced). */
int sl_fs_write_atomic_fp(const char *path, const void *data, size_t len, const char *fp);
/* sl_fs_write_atomic_fp of the bytes of iov[0..n) one after the other. */
struct iovec;
int sl_fs_write_atomic_iov(const char *path, const struct iovec *iov, int n, const char *fp);

#endif
