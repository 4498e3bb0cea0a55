/* kvstate.h — keyed operator state in RocksDB, and its incremental checkpoints.
 *
 * One sl_kv_t per stateful subtask. Every key belongs to a key group
 * (0..SL_KV_MAX_KEY_GROUP); the stored RocksDB key is the key group as two
 * big-endian bytes followed by the user key, so the store is ordered by key
 * group and a range of key groups can be scanned or dropped in one call
 * (rescaling moves ranges of key groups between subtasks).
 *
 * Memory is bounded by the options (block cache + write buffers + index
 * blocks, which live in the block cache): state larger than memory spills
 * to SST files on local disk.
 *
 * Checkpoints (sl_kv_checkpoint) take a RocksDB checkpoint (hard links in a
 * local temp dir), then copy it into checkpoint storage:
 *   - immutable data files (*.sst, *.blob) go to a shared directory under
 *     "<store-id>-<file name>" (unique: the store id is random per local
 *     store and RocksDB never reuses a file number), and are copied only if
 *     an earlier checkpoint of this store did not already put them there;
 *   - the other files (MANIFEST-*, CURRENT, OPTIONS-*, WAL) go to the
 *     checkpoint's own storage directory.
 * Every copied file is written to a temp name, fsynced and renamed, then its
 * directory is fsynced. The returned manifest lists every file with size,
 * sha256 and where it lives; its byte encoding is embedded in the
 * checkpoint's state handle. sl_kv_restore verifies size and sha256 of every
 * file before the store is opened.
 *
 * Threading: a handle is used by one thread at a time (the subtask's).
 * RocksDB's own background threads flush and compact. */
#ifndef SLUICE_KVSTATE_H
#define SLUICE_KVSTATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Key groups are 0..SL_KV_MAX_KEY_GROUP inclusive (0xffff is reserved so
 * that every range has a finite end key). */
#define SL_KV_MAX_KEY_GROUP 0xfffeu

typedef struct sl_kv sl_kv_t;

typedef struct {
    size_t block_cache_bytes;  /* LRU block cache, also holds index/filter blocks; 0 = 8 MB */
    size_t write_buffer_bytes; /* one memtable; at most two exist; 0 = 8 MB */
    bool create_if_missing;    /* sl_kv_open: create an empty store if dir holds none */
    bool disable_wal;          /* no write-ahead log: writes since the last checkpoint are
                                  lost on a crash, which checkpoint recovery tolerates */
    int64_t ttl_ms;            /* > 0: compactions drop every value whose write time (ms
                                  since the epoch, i64 little-endian at ttl_offset) is
                                  ttl_ms or more before the wall clock; 0 = none */
    size_t ttl_offset;         /* where the write time is in a value */
} sl_kv_opts_t;

/* Defaults: 8 MB cache, 8 MB write buffer, create_if_missing, WAL disabled. */
void sl_kv_opts_default(sl_kv_opts_t *o);

/* Opens (or creates) the store living in dir (the DB is dir/db; dir is
 * created if missing). o may be NULL (defaults). On error returns
 * SL_NOTFOUND (no store and !create_if_missing), SL_IO, SL_INVAL or SL_NOMEM
 * with a message in err. */
int sl_kv_open(const char *dir, const sl_kv_opts_t *o, sl_kv_t **out, char *err, size_t cap);
/* Closes the store (data stays on disk) and NULLs *kv; accepts NULL. */
void sl_kv_close(sl_kv_t **kv);
/* The local directory given to open/restore (borrowed). */
const char *sl_kv_dir(const sl_kv_t *kv);
/* Message of the last failed operation on this handle ("" if none;
 * borrowed, overwritten by the next failure). */
const char *sl_kv_errmsg(const sl_kv_t *kv);

/* Point operations. Keys are any bytes (klen may be 0). A key group above
 * SL_KV_MAX_KEY_GROUP is SL_INVAL. */
int sl_kv_put(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void *val, size_t vlen);
int sl_kv_delete(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen);
/* Looks a key up: 0 with *val and *vlen set when found, SL_NOTFOUND when not.
 * The value is borrowed (pinned inside RocksDB, no copy) and stays valid
 * until the next sl_kv_get on this handle or its close. */
int sl_kv_get(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void **val,
              size_t *vlen);
/* A value found by sl_kv_multi_get. */
typedef struct {
    const void *val; /* the value (borrowed), NULL when not found */
    size_t len;      /* its length */
    bool found;      /* the key is in the store */
} sl_kv_value_t;

/* Looks up n keys in one RocksDB batched multi-get (keys[i] of klens[i]
 * bytes in key group kgs[i]; any order, duplicates allowed): vals[i] tells
 * whether key i was found and its value, borrowed (pinned inside RocksDB)
 * until the next sl_kv_multi_get on this handle or its close. A read error
 * of any key is SL_IO (message in sl_kv_errmsg); a key group above
 * SL_KV_MAX_KEY_GROUP is SL_INVAL. */
int sl_kv_multi_get(sl_kv_t *kv, size_t n, const uint16_t *kgs, const void *const *keys,
                    const size_t *klens, sl_kv_value_t *vals);
/* Drops every key of key groups first..last inclusive (a range tombstone:
 * O(1) now, space is reclaimed by compaction). */
int sl_kv_delete_range(sl_kv_t *kv, uint16_t first, uint16_t last);

/* Compacts the whole store now (blocking): reclaims the space of deleted
 * keys and dropped key groups, and rewrites all SST files (so the next
 * checkpoint copies them all). */
int sl_kv_compact(sl_kv_t *kv);

/* Write batches: many puts/deletes applied atomically in one write. A batch
 * is reusable: commit applies and clears it. */
typedef struct sl_kv_batch sl_kv_batch_t;
sl_kv_batch_t *sl_kv_batch_new(void);
void sl_kv_batch_destroy(sl_kv_batch_t **b);
int sl_kv_batch_put(sl_kv_batch_t *b, uint16_t kg, const void *key, size_t klen, const void *val,
                    size_t vlen);
int sl_kv_batch_delete(sl_kv_batch_t *b, uint16_t kg, const void *key, size_t klen);
/* Number of operations waiting in the batch. */
size_t sl_kv_batch_count(const sl_kv_batch_t *b);
int sl_kv_batch_commit(sl_kv_t *kv, sl_kv_batch_t *b);

/* Sorted writes: puts of strictly increasing (key group, key), built
 * straight into a new SST file and ingested into the store at commit,
 * past the memtable (no write batch, no skiplist inserts, no flush): for
 * large write-backs that the caller can sort. The puts become visible, all
 * at once, at commit, newer than every earlier write. One sorted write per
 * store at a time; begin drops one left open. sl_kv_sorted_put fails with
 * SL_INVAL (message in sl_kv_errmsg) on a key not above the previous one;
 * after any failure, call sl_kv_sorted_abort (commit ends the write either
 * way). A commit without puts writes nothing. */
int sl_kv_sorted_begin(sl_kv_t *kv);
/* Bytes of one memtable (sl_kv_opts_t.write_buffer_bytes): writes of more
 * fill and flush memtables anyway, a sorted write skips both. */
size_t sl_kv_write_buffer_bytes(const sl_kv_t *kv);
int sl_kv_sorted_put(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void *val,
                     size_t vlen);
int sl_kv_sorted_commit(sl_kv_t *kv);
/* Drops the open sorted write, if any (its puts are lost); accepts NULL. */
void sl_kv_sorted_abort(sl_kv_t *kv);

/* One entry seen by an iterator; all pointers are borrowed and valid until
 * the iterator moves or is destroyed. */
typedef struct {
    uint16_t key_group;
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
} sl_kv_entry_t;

/* Iterator over key groups first..last inclusive, in (key group, key)
 * order, over a consistent view taken at creation. Use
 * (0, SL_KV_MAX_KEY_GROUP) for everything, (g, g) for one group. */
typedef struct sl_kv_iter sl_kv_iter_t;
int sl_kv_iter_new(sl_kv_t *kv, uint16_t first, uint16_t last, sl_kv_iter_t **out);
/* Iterator over the entries of key group kg whose key is at or after
 * lo[0..lolen) and before hi[0..hilen) (hi NULL: to the end of the group),
 * in key order, over a consistent view taken at creation: a prefix or
 * range scan inside one key group. */
int sl_kv_iter_span(sl_kv_t *kv, uint16_t kg, const void *lo, size_t lolen, const void *hi,
                    size_t hilen, sl_kv_iter_t **out);
/* 1 and *e filled for the next entry, 0 at the end, <0 on a read error. */
int sl_kv_iter_next(sl_kv_iter_t *it, sl_kv_entry_t *e);
void sl_kv_iter_destroy(sl_kv_iter_t **it);

/* Calls fn for each entry of key groups first..last; a nonzero return
 * from fn stops the scan and is returned. */
typedef int (*sl_kv_scan_fn)(void *arg, const sl_kv_entry_t *e);
int sl_kv_scan(sl_kv_t *kv, uint16_t first, uint16_t last, sl_kv_scan_fn fn, void *arg);

/* Cursors: one iterator sought many times (no iterator per read). A cursor
 * reads the store as it was when the cursor was made: writes committed
 * later are not seen (make a new cursor after a commit to see them). */
typedef struct sl_kv_cursor sl_kv_cursor_t;
int sl_kv_cursor_new(sl_kv_t *kv, sl_kv_cursor_t **out);
/* Positions the cursor on the entries of key group kg whose key is at or
 * after lo[0..lolen) and before hi[0..hilen) (hi NULL: to the end of the
 * group), in key order; sl_kv_cursor_next then returns them. */
int sl_kv_cursor_seek(sl_kv_cursor_t *c, uint16_t kg, const void *lo, size_t lolen, const void *hi,
                      size_t hilen);
/* 1 and *e filled for the next entry, 0 at the end of the span (or before
 * the first seek), <0 on a read error. *e is valid until the cursor moves. */
int sl_kv_cursor_next(sl_kv_cursor_t *c, sl_kv_entry_t *e);
void sl_kv_cursor_destroy(sl_kv_cursor_t **c);

/* ---- checkpoints --------------------------------------------------------- */

typedef struct {
    char *name;         /* the file's name in the DB directory ("000012.sst", "CURRENT") */
    char *stored;       /* its name in storage: shared_dir/stored or storage_dir/stored */
    uint64_t size;      /* bytes */
    uint8_t sha256[32]; /* of the whole file */
    bool shared;        /* true: in shared_dir (immutable, maybe referenced by others) */
} sl_kv_file_t;

/* The files of one checkpoint of one store. Owns its strings. */
typedef struct {
    sl_kv_file_t *files;
    size_t n;
} sl_kv_manifest_t;

/* Frees the manifest's contents (not m itself) and zeroes it. */
void sl_kv_manifest_free(sl_kv_manifest_t *m);
/* Serializes m to a fresh buffer (*out, caller frees) of *len bytes. The
 * encoding carries its own sha256. */
int sl_kv_manifest_encode(const sl_kv_manifest_t *m, uint8_t **out, size_t *len);
/* Parses bytes made by encode into *m (free with sl_kv_manifest_free).
 * Garbage, truncation or an unsafe file name is SL_DATA with a message. */
int sl_kv_manifest_decode(const void *data, size_t len, sl_kv_manifest_t *m, char *err, size_t cap);

/* What a checkpoint copied (for metrics and tests). */
typedef struct {
    size_t files;          /* files in the manifest */
    size_t files_copied;   /* files copied by this checkpoint (private + new shared) */
    size_t shared_copied;  /* shared files copied by this checkpoint */
    size_t shared_reused;  /* shared files referenced from an earlier checkpoint */
    uint64_t bytes;        /* total size of the checkpoint's files */
    uint64_t bytes_copied; /* bytes written by this checkpoint */
    bool local_kept;       /* sl_kv_checkpoint_keep: the local copy is in keep_dir */
} sl_kv_ckpt_stats_t;

/* Takes a checkpoint: flushes memtables, makes a RocksDB checkpoint in a
 * local temp dir, copies it as described at the top (storage_dir and
 * shared_dir are created if missing) and fills *out (free with
 * sl_kv_manifest_free). stats may be NULL. Shared files named in the
 * previous checkpoint of this handle (or in the manifest it was restored
 * from) and still present in shared_dir are not copied again. */
int sl_kv_checkpoint(sl_kv_t *kv, const char *storage_dir, const char *shared_dir,
                     sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats, char *err, size_t cap);

/* sl_kv_checkpoint, keeping a local copy of the checkpoint: the RocksDB
 * checkpoint (hard links of the SSTs, copies of the small files, named as
 * in the DB directory) is moved to keep_dir (replacing what is there; its
 * parent is created) instead of being removed, for sl_kv_restore_local.
 * Keeping it is best effort: stats->local_kept says whether it was kept
 * (keep_dir must be on the store's file system); the checkpoint in storage
 * does not depend on it. keep_dir NULL is sl_kv_checkpoint. */
int sl_kv_checkpoint_keep(sl_kv_t *kv, const char *storage_dir, const char *shared_dir,
                          const char *keep_dir, sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats,
                          char *err, size_t cap);

/* sl_kv_checkpoint_keep in two phases, for an asynchronous snapshot:
 * begin flushes the memtables and makes the RocksDB checkpoint (hard links)
 * in a local temp dir: a consistent frozen file set, after which the store
 * may be written again. end (on any thread, while the store stays open and
 * no other checkpoint of it begins) copies that file set into storage as
 * sl_kv_checkpoint_keep does; it consumes *s, whatever it returns. abort
 * drops a begun checkpoint (accepts NULL and *s NULL). */
typedef struct sl_kv_snap sl_kv_snap_t;
int sl_kv_checkpoint_begin(sl_kv_t *kv, sl_kv_snap_t **s, char *err, size_t cap);
int sl_kv_checkpoint_end(sl_kv_snap_t **s, const char *storage_dir, const char *shared_dir,
                         const char *keep_dir, sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats,
                         char *err, size_t cap);
void sl_kv_checkpoint_abort(sl_kv_snap_t **s);

/* Restores a checkpoint into local_dir (created if missing; it must not
 * already hold a store): copies every file of m, verifying its size and
 * sha256, then opens the store. A missing, truncated or corrupt file is
 * SL_DATA with a message naming the file; nothing is opened and the
 * partial copy is removed. o may be NULL (defaults). The restored handle
 * knows m's shared files, so its next checkpoint references them. */
int sl_kv_restore(const sl_kv_manifest_t *m, const char *storage_dir, const char *shared_dir,
                  const char *local_dir, const sl_kv_opts_t *o, sl_kv_t **out, char *err,
                  size_t cap);

/* Restores a checkpoint from its local copy in copy_dir (made by
 * sl_kv_checkpoint_keep) into local_dir, fetching nothing from storage:
 * every file of m is hard-linked (SSTs, which RocksDB never changes) or
 * copied (the others) from copy_dir and must have m's size and sha256 (the
 * linked file is hashed where it is: a local copy that does not match the
 * manifest is never opened). SL_NOTFOUND when copy_dir does not exist,
 * SL_DATA naming the file that is missing, short or corrupt; in either
 * case nothing is opened and local_dir holds no store, so the caller can
 * fall back to sl_kv_restore. Otherwise as sl_kv_restore. */
int sl_kv_restore_local(const sl_kv_manifest_t *m, const char *copy_dir, const char *local_dir,
                        const sl_kv_opts_t *o, sl_kv_t **out, char *err, size_t cap);

/* Garbage collection of shared files: lists the entries of shared_dir that
 * no manifest in retained[0..n) references (including leftover temp files
 * of interrupted copies). The caller deletes them. Precondition: retained
 * covers every checkpoint that is kept or still in progress, for every
 * store sharing shared_dir. *names (caller frees with sl_kv_names_free)
 * holds *count file names, sorted. */
int sl_kv_gc_list(const char *shared_dir, const sl_kv_manifest_t *const *retained, size_t n,
                  char ***names, size_t *count, char *err, size_t cap);
void sl_kv_names_free(char **names, size_t count);

/* Checks that every file of m is in storage with its size and sha256,
 * without restoring anything (the master checks a checkpoint before it
 * picks it). A missing, truncated or corrupt file is SL_DATA with a
 * message naming it; SL_IO when a file cannot be read. */
int sl_kv_manifest_verify(const sl_kv_manifest_t *m, const char *storage_dir,
                          const char *shared_dir, char *err, size_t cap);

/* The shared directory of the checkpoint (or savepoint) in ckpt_dir:
 * ckpt_dir/shared when that directory exists (a savepoint carries its own
 * copy), else the job's ckpt_dir/../shared. */
void sl_kv_shared_of(const char *ckpt_dir, char *buf, size_t cap);

/* ---- checkpoint directories (kvckpt.c) ----------------------------------- */

/* A checkpoint directory (chk-N, or a savepoint) holds one subdirectory
 * kv-<node>-<subtask> per store, with the store's private files and its
 * encoded manifest in SL_KV_MANIFEST_FILE; the shared files are in
 * sl_kv_shared_of(dir). */
#define SL_KV_MANIFEST_FILE "_manifest"

/* Checks every store of checkpoint directory dir (sl_kv_manifest_verify);
 * a directory without stores is fine. SL_DATA with a message naming the
 * bad file when one is missing or corrupt. */
int sl_kv_ckpt_verify(const char *dir, char *err, size_t cap);

/* Deletes the files of shared_dir that no store of the checkpoint
 * directories dirs[0..n) references. When a manifest cannot be read,
 * nothing is deleted and the error is returned. *removed (may be NULL)
 * gets the number of files deleted. */
int sl_kv_ckpt_gc(const char *shared_dir, const char *const *dirs, size_t n, size_t *removed,
                  char *err, size_t cap);

/* Copies the stores of checkpoint directory src into dst (an existing
 * directory): every kv-* directory, and the shared files they reference
 * into dst/shared, so that dst is self-contained (a savepoint). */
int sl_kv_ckpt_copy(const char *src, const char *dst, char *err, size_t cap);

#endif
