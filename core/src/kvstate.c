/* kvstate.c — keyed state in RocksDB and its incremental checkpoints (see
 * sluice/kvstate.h).
 *
 * Layout of a local store directory:
 *   <dir>/db         the RocksDB database
 *   <dir>/STORE-ID   32 hex digits, random per store (a restore makes a new
 *                    one); prefixes the names of shared files in storage
 *   <dir>/ckpt-tmp   a RocksDB checkpoint (hard links) while it is copied
 *
 * Invariants:
 *   1. Every stored key is >= 2 bytes: the big-endian key group, then the
 *      user key. Key group 0xffff is never written, so the exclusive end of
 *      any key-group range is a 2-byte key.
 *   2. A shared file's stored name "<store-id>-<file>" names one content
 *      forever: RocksDB never reuses a file number within a DB, and a store
 *      id is never given to two DBs (restore and fresh stores draw a new one).
 *   3. kv->known lists the shared files of this handle's last checkpoint (or
 *      of the manifest it was restored from): a later checkpoint references
 *      such a file instead of copying it, if it is still in shared_dir with
 *      the same size.
 *   4. A file appears in storage under its final name only after it was
 *      completely written and fsynced (temp name, fsync, rename). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/kvstate.h"

#include <time.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/err.h"

#define S_DEFAULT_CACHE (8u << 20)
#define S_DEFAULT_WBUF (8u << 20)
#define S_COPY_BUF (1u << 20)
#define S_MAGIC "SLKV"
#define S_VERSION 1u

struct sl_kv {
    char *dir;                                  /* local store directory (owned) */
    char *db_path;                              /* dir/db (owned) */
    char id[33];                                /* store id, hex */
    rocksdb_t *db;                              /* the open database */
    rocksdb_options_t *opts;                    /* DB options */
    rocksdb_block_based_table_options_t *topts; /* table options (holds the cache) */
    rocksdb_cache_t *cache;                     /* the LRU block cache */
    rocksdb_readoptions_t *ropts;               /* for gets */
    rocksdb_writeoptions_t *wopts;              /* for every write (WAL on/off) */
    rocksdb_pinnableslice_t *pinned;            /* value of the last get, or NULL */
    rocksdb_column_family_handle_t *cf;         /* the default column family (multi-get) */
    rocksdb_pinnableslice_t **mvals;            /* values of the last multi-get */
    char **merrs;                               /* its per-key errors */
    const char **mkeys;                         /* its stored keys, into mbuf */
    size_t *mklens;                             /* their lengths */
    size_t mn, mcap;                            /* pinned values held / arrays' capacity */
    uint8_t *mbuf;                              /* the stored keys, back to back */
    size_t mbuf_cap;                            /* its capacity */
    uint8_t *kbuf;                              /* scratch for prefixed keys */
    size_t kcap;                                /* its capacity */
    sl_kv_manifest_t known;                     /* shared files already in storage (inv. 3) */
    char msg[512];                              /* last error message */
    rocksdb_compactionfilter_t *ttl_filter;     /* drops expired values, or NULL */
    int64_t ttl_ms;                             /* sl_kv_opts_t.ttl_ms */
    size_t ttl_offset;                          /* sl_kv_opts_t.ttl_offset */
    rocksdb_envoptions_t *envopts;              /* for the sorted writer, or NULL */
    rocksdb_sstfilewriter_t *sst;               /* the open sorted write, or NULL */
    char *sst_path;                             /* its file, dir/ingest.sst (owned) */
    size_t sst_n;                               /* puts in it */
    size_t wbuf;                                /* bytes of one memtable */
};

struct sl_kv_batch {
    rocksdb_writebatch_t *wb; /* the pending operations */
};

struct sl_kv_iter {
    rocksdb_iterator_t *it;    /* the RocksDB iterator */
    rocksdb_readoptions_t *ro; /* its options, holding the bounds */
    char lower[2];             /* first key group, big-endian */
    char upper[2];             /* last key group + 1, big-endian */
    int started;               /* seeked yet */
    char *span;                /* sl_kv_iter_span: lower then upper bound (owned), or NULL */
    size_t span_lo, span_hi;   /* their lengths */
};

/* ---- small helpers --------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void s_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Moves a RocksDB error string into err and frees it. */
static int s_rerr(char *rerr, int code, char *err, size_t cap, const char *what)
{
    s_err(err, cap, "kvstate: %s: %s", what, rerr ? rerr : "unknown error");
    rocksdb_free(rerr);
    return code;
}

static char *s_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

static int s_mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return SL_INVAL;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return SL_IO;
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return SL_IO;
    return 0;
}

/* Removes path and everything below it; a missing path is fine. */
static int s_rmrf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : SL_IO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : SL_IO;
    DIR *d = opendir(path);
    if (!d)
        return SL_IO;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = s_join(path, de->d_name);
        if (!sub) {
            rc = SL_NOMEM;
            break;
        }
        int r = s_rmrf(sub);
        free(sub);
        if (r && !rc)
            rc = r;
    }
    closedir(d);
    if (rmdir(path) != 0 && !rc)
        rc = SL_IO;
    return rc;
}

static int s_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return SL_IO;
    int rc = fsync(fd) == 0 ? 0 : SL_IO;
    close(fd);
    return rc;
}

/* Copies src to dst (created exclusively), hashing the bytes. *size and sha
 * get the size and sha256 of what was read. *src_missing is set when src
 * could not be opened because it does not exist. On error dst is removed. */
static int s_copy(const char *src, const char *dst, int do_fsync, uint64_t *size, uint8_t sha[32],
                  int *src_missing, char *err, size_t cap)
{
    *src_missing = 0;
    int in = open(src, O_RDONLY);
    if (in < 0) {
        *src_missing = errno == ENOENT;
        s_err(err, cap, "cannot open %s: %s", src, strerror(errno));
        return SL_IO;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (out < 0) {
        s_err(err, cap, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return SL_IO;
    }
    uint8_t *buf = malloc(S_COPY_BUF);
    int rc = buf ? 0 : SL_NOMEM;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint64_t total = 0;
    while (!rc) {
        ssize_t r = read(in, buf, S_COPY_BUF);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            s_err(err, cap, "read %s: %s", src, strerror(errno));
            rc = SL_IO;
            break;
        }
        if (r == 0)
            break;
        sha256_update(&ctx, (size_t)r, buf);
        total += (uint64_t)r;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                s_err(err, cap, "write %s: %s", dst, strerror(errno));
                rc = SL_IO;
                break;
            }
            off += w;
        }
    }
    free(buf);
    if (!rc && do_fsync && fsync(out) != 0) {
        s_err(err, cap, "fsync %s: %s", dst, strerror(errno));
        rc = SL_IO;
    }
    if (close(out) != 0 && !rc) {
        s_err(err, cap, "close %s: %s", dst, strerror(errno));
        rc = SL_IO;
    }
    close(in);
    if (rc) {
        unlink(dst);
        return rc;
    }
    sha256_digest(&ctx, 32, sha);
    *size = total;
    return 0;
}

/* File names in manifests become paths: only plain names are accepted. */
static int s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int s_is_shared_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && !strcmp(name + n - 4, ".sst")) || (n > 5 && !strcmp(name + n - 5, ".blob"));
}

static int s_file_dup(sl_kv_file_t *dst, const sl_kv_file_t *src)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->stored = strdup(src->stored);
    if (!dst->name || !dst->stored) {
        free(dst->name);
        free(dst->stored);
        dst->name = dst->stored = NULL;
        return SL_NOMEM;
    }
    return 0;
}

static int s_manifest_push(sl_kv_manifest_t *m, size_t *cap, const sl_kv_file_t *f)
{
    if (m->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        sl_kv_file_t *p = realloc(m->files, nc * sizeof *p);
        if (!p)
            return SL_NOMEM;
        m->files = p;
        *cap = nc;
    }
    int rc = s_file_dup(&m->files[m->n], f);
    if (!rc)
        m->n++;
    return rc;
}

/* Replaces kv->known with the shared files of m. */
static int s_set_known(sl_kv_t *kv, const sl_kv_manifest_t *m)
{
    sl_kv_manifest_t k = {0};
    size_t cap = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->files[i].shared)
            continue;
        int rc = s_manifest_push(&k, &cap, &m->files[i]);
        if (rc) {
            sl_kv_manifest_free(&k);
            return rc;
        }
    }
    sl_kv_manifest_free(&kv->known);
    kv->known = k;
    return 0;
}

static int s_new_id(char out[33])
{
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0)
        return SL_IO;
    ssize_t r = read(fd, b, sizeof b);
    close(fd);
    if (r != (ssize_t)sizeof b)
        return SL_IO;
    s_hex(b, sizeof b, out);
    return 0;
}

/* Writes dir/STORE-ID (temp, fsync, rename). */
static int s_write_id(const char *dir, const char *id)
{
    char *path = s_join(dir, "STORE-ID"), *tmp = s_join(dir, "STORE-ID.tmp");
    int rc = path && tmp ? 0 : SL_NOMEM;
    if (!rc) {
        FILE *f = fopen(tmp, "w");
        if (!f)
            rc = SL_IO;
        else {
            if (fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
                rc = SL_IO;
            if (fclose(f) != 0)
                rc = SL_IO;
            if (!rc && rename(tmp, path) != 0)
                rc = SL_IO;
        }
    }
    free(path);
    free(tmp);
    return rc;
}

/* Reads dir/STORE-ID, or makes and writes a new one. */
static int s_load_id(const char *dir, char out[33])
{
    char *path = s_join(dir, "STORE-ID");
    if (!path)
        return SL_NOMEM;
    FILE *f = fopen(path, "r");
    free(path);
    if (f) {
        char buf[64] = {0};
        int ok = fgets(buf, sizeof buf, f) != NULL && strlen(buf) >= 32;
        fclose(f);
        for (int i = 0; ok && i < 32; i++)
            ok = (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f');
        if (ok) {
            memcpy(out, buf, 32);
            out[32] = 0;
            return 0;
        }
    }
    int rc = s_new_id(out);
    return rc ? rc : s_write_id(dir, out);
}

/* ---- open / close ------------------------------------------------------------ */

void sl_kv_opts_default(sl_kv_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->block_cache_bytes = S_DEFAULT_CACHE;
    o->write_buffer_bytes = S_DEFAULT_WBUF;
    o->create_if_missing = true;
    o->disable_wal = true;
}

/* Compaction filter of the time to live: 1 (drop) when the value's write
 * time is ttl_ms or more before the wall clock. Runs on RocksDB's
 * background threads: reads only fields fixed at open. */
static unsigned char s_ttl_filter(void *arg, int level, const char *key, size_t klen,
                                  const char *val, size_t vlen, char **nval, size_t *nvlen,
                                  unsigned char *changed)
{
    (void)level;
    (void)key;
    (void)klen;
    (void)nval;
    (void)nvlen;
    *changed = 0;
    const sl_kv_t *kv = arg;
    if (vlen < kv->ttl_offset + 8)
        return 0;
    uint64_t t = 0;
    for (int i = 7; i >= 0; i--) /* little-endian (sluice/snap.h) */
        t = t << 8 | (uint8_t)val[kv->ttl_offset + (size_t)i];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return now - (int64_t)t >= kv->ttl_ms;
}

static void s_ttl_destroy(void *arg)
{
    (void)arg; /* the state is the handle, freed by sl_kv_close */
}

static const char *s_ttl_name(void *arg)
{
    (void)arg;
    return "sluice-ttl";
}

/* Makes the handle (options, paths) without opening the database. */
static int s_kv_new(const char *dir, const sl_kv_opts_t *o, sl_kv_t **out)
{
    sl_kv_opts_t def;
    if (!o) {
        sl_kv_opts_default(&def);
        o = &def;
    }
    sl_kv_t *kv = calloc(1, sizeof *kv);
    if (!kv)
        return SL_NOMEM;
    kv->dir = strdup(dir);
    kv->db_path = s_join(dir, "db");
    if (!kv->dir || !kv->db_path) {
        sl_kv_close(&kv);
        return SL_NOMEM;
    }
    size_t cache = o->block_cache_bytes ? o->block_cache_bytes : S_DEFAULT_CACHE;
    size_t wbuf = o->write_buffer_bytes ? o->write_buffer_bytes : S_DEFAULT_WBUF;
    kv->opts = rocksdb_options_create();
    kv->cache = rocksdb_cache_create_lru(cache);
    kv->topts = rocksdb_block_based_options_create();
    kv->ropts = rocksdb_readoptions_create();
    kv->wopts = rocksdb_writeoptions_create();
    if (!kv->opts || !kv->cache || !kv->topts || !kv->ropts || !kv->wopts) {
        sl_kv_close(&kv);
        return SL_NOMEM;
    }
    rocksdb_block_based_options_set_block_cache(kv->topts, kv->cache);
    /* index and filter blocks count against the cache: memory stays bounded
     * however many SST files the state needs */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(kv->topts, 1);
    /* operators read every key before writing it: a bloom filter per SST
     * answers "not here" for new keys without reading data blocks. The
     * filters and indexes are partitioned (4 KB pieces under a small pinned
     * top level): a lookup then reads one 4 KB filter piece at most, where a
     * whole-file filter (1 MB+ at a million keys) evicted from a small block
     * cache was read back and checksummed on every get. No
     * optimize_filters_for_hits: operators look up new keys all the time. */
    rocksdb_block_based_options_set_filter_policy(kv->topts, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_block_based_options_set_index_type(
        kv->topts, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_partition_filters(kv->topts, 1);
    rocksdb_block_based_options_set_metadata_block_size(kv->topts, 4096);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(kv->topts, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(kv->topts, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(kv->topts, 1);
    /* XXH3 block checksums (format_version 5): cheaper than CRC32c on every
     * block read from a file */
    rocksdb_block_based_options_set_checksum(kv->topts, 4);
    /* LZ4 decompresses faster than snappy; state blocks read from the page
     * cache are decompressed on every block cache miss */
    rocksdb_options_set_compression(kv->opts, rocksdb_lz4_compression);
    rocksdb_options_set_block_based_table_factory(kv->opts, kv->topts);
    rocksdb_options_set_create_if_missing(kv->opts, o->create_if_missing);
    rocksdb_options_set_write_buffer_size(kv->opts, wbuf);
    kv->wbuf = wbuf;
    rocksdb_options_set_max_write_buffer_number(kv->opts, 2);
    rocksdb_options_set_keep_log_file_num(kv->opts, 2);
    rocksdb_options_set_max_log_file_size(kv->opts, 1u << 20);
    /* most keys an operator reads live in SST files, not in the memtables:
     * a whole-key bloom filter per memtable skips their skiplist searches */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(kv->opts, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(kv->opts, 1);
    if (o->disable_wal)
        rocksdb_writeoptions_disable_WAL(kv->wopts, 1);
    if (o->ttl_ms > 0) {
        kv->ttl_ms = o->ttl_ms;
        kv->ttl_offset = o->ttl_offset;
        kv->ttl_filter =
            rocksdb_compactionfilter_create(kv, s_ttl_destroy, s_ttl_filter, s_ttl_name);
        if (!kv->ttl_filter) {
            sl_kv_close(&kv);
            return SL_NOMEM;
        }
        rocksdb_options_set_compaction_filter(kv->opts, kv->ttl_filter);
    }
    *out = kv;
    return 0;
}

static int s_kv_open_db(sl_kv_t *kv, char *err, size_t cap)
{
    char *rerr = NULL;
    /* opened with its one (default) column family named, for the handle
     * that rocksdb_batched_multi_get_cf needs */
    const char *names[1] = {"default"};
    const rocksdb_options_t *cfopts[1] = {kv->opts};
    rocksdb_column_family_handle_t *cfs[1] = {NULL};
    kv->db = rocksdb_open_column_families(kv->opts, kv->db_path, 1, names, cfopts, cfs, &rerr);
    if (rerr || !kv->db) {
        if (kv->db) {
            if (cfs[0])
                rocksdb_column_family_handle_destroy(cfs[0]);
            rocksdb_close(kv->db);
        }
        kv->db = NULL;
        return s_rerr(rerr, SL_IO, err, cap, kv->db_path);
    }
    kv->cf = cfs[0];
    return 0;
}

/* Frees the values pinned by the last multi-get. */
static void s_multi_release(sl_kv_t *kv)
{
    for (size_t i = 0; i < kv->mn; i++) {
        if (kv->mvals[i])
            rocksdb_pinnableslice_destroy(kv->mvals[i]);
        kv->mvals[i] = NULL;
    }
    kv->mn = 0;
}

/* Closes the database (the handle's options stay); accepts a closed one. */
static void s_kv_close_db(sl_kv_t *kv)
{
    s_multi_release(kv);
    if (kv->pinned)
        rocksdb_pinnableslice_destroy(kv->pinned);
    kv->pinned = NULL;
    if (kv->cf)
        rocksdb_column_family_handle_destroy(kv->cf);
    kv->cf = NULL;
    if (kv->db)
        rocksdb_close(kv->db);
    kv->db = NULL;
}

int sl_kv_open(const char *dir, const sl_kv_opts_t *o, sl_kv_t **out, char *err, size_t cap)
{
    *out = NULL;
    if (!dir || !*dir) {
        s_err(err, cap, "kvstate: empty directory name");
        return SL_INVAL;
    }
    if (s_mkdir_p(dir) != 0) {
        s_err(err, cap, "kvstate: cannot create %s: %s", dir, strerror(errno));
        return SL_IO;
    }
    sl_kv_t *kv;
    int rc = s_kv_new(dir, o, &kv);
    if (rc) {
        s_err(err, cap, "kvstate: out of memory");
        return rc;
    }
    struct stat st;
    char *cur = s_join(kv->db_path, "CURRENT");
    int exists = cur && stat(cur, &st) == 0;
    free(cur);
    if (!exists && o && !o->create_if_missing) {
        s_err(err, cap, "kvstate: no store in %s", dir);
        sl_kv_close(&kv);
        return SL_NOTFOUND;
    }
    rc = s_load_id(dir, kv->id);
    if (rc) {
        s_err(err, cap, "kvstate: cannot read or write %s/STORE-ID", dir);
        sl_kv_close(&kv);
        return rc;
    }
    rc = s_kv_open_db(kv, err, cap);
    if (rc) {
        sl_kv_close(&kv);
        return rc;
    }
    *out = kv;
    return 0;
}

void sl_kv_close(sl_kv_t **pkv)
{
    if (!pkv || !*pkv)
        return;
    sl_kv_t *kv = *pkv;
    s_kv_close_db(kv);
    if (kv->ropts)
        rocksdb_readoptions_destroy(kv->ropts);
    if (kv->wopts)
        rocksdb_writeoptions_destroy(kv->wopts);
    sl_kv_sorted_abort(kv);
    if (kv->envopts)
        rocksdb_envoptions_destroy(kv->envopts);
    free(kv->sst_path);
    if (kv->opts)
        rocksdb_options_destroy(kv->opts);
    if (kv->ttl_filter)
        rocksdb_compactionfilter_destroy(kv->ttl_filter);
    if (kv->topts)
        rocksdb_block_based_options_destroy(kv->topts);
    if (kv->cache)
        rocksdb_cache_destroy(kv->cache);
    sl_kv_manifest_free(&kv->known);
    free(kv->kbuf);
    free(kv->mvals);
    free(kv->merrs);
    free(kv->mkeys);
    free(kv->mklens);
    free(kv->mbuf);
    free(kv->dir);
    free(kv->db_path);
    free(kv);
    *pkv = NULL;
}

const char *sl_kv_dir(const sl_kv_t *kv)
{
    return kv->dir;
}

size_t sl_kv_write_buffer_bytes(const sl_kv_t *kv)
{
    return kv->wbuf;
}

const char *sl_kv_errmsg(const sl_kv_t *kv)
{
    return kv->msg;
}

/* ---- point operations ----------------------------------------------------------- */

/* The stored key (key group + key) in kv->kbuf; NULL if out of memory. */
static const char *s_key(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen)
{
    if (klen + 2 > kv->kcap) {
        size_t nc = kv->kcap ? kv->kcap : 64;
        while (nc < klen + 2)
            nc *= 2;
        uint8_t *p = realloc(kv->kbuf, nc);
        if (!p)
            return NULL;
        kv->kbuf = p;
        kv->kcap = nc;
    }
    kv->kbuf[0] = (uint8_t)(kg >> 8);
    kv->kbuf[1] = (uint8_t)kg;
    if (klen)
        memcpy(kv->kbuf + 2, key, klen);
    return (const char *)kv->kbuf;
}

static int s_check_kg(sl_kv_t *kv, uint16_t kg)
{
    if (kg > SL_KV_MAX_KEY_GROUP) {
        snprintf(kv->msg, sizeof kv->msg, "kvstate: key group %u out of range", (unsigned)kg);
        return SL_INVAL;
    }
    return 0;
}

int sl_kv_put(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    int rc = s_check_kg(kv, kg);
    if (rc)
        return rc;
    const char *k = s_key(kv, kg, key, klen);
    if (!k)
        return SL_NOMEM;
    char *rerr = NULL;
    rocksdb_put(kv->db, kv->wopts, k, klen + 2, val, vlen, &rerr);
    return rerr ? s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "put") : 0;
}

int sl_kv_delete(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen)
{
    int rc = s_check_kg(kv, kg);
    if (rc)
        return rc;
    const char *k = s_key(kv, kg, key, klen);
    if (!k)
        return SL_NOMEM;
    char *rerr = NULL;
    rocksdb_delete(kv->db, kv->wopts, k, klen + 2, &rerr);
    return rerr ? s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "delete") : 0;
}

int sl_kv_get(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void **val,
              size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (kv->pinned) {
        rocksdb_pinnableslice_destroy(kv->pinned);
        kv->pinned = NULL;
    }
    int rc = s_check_kg(kv, kg);
    if (rc)
        return rc;
    const char *k = s_key(kv, kg, key, klen);
    if (!k)
        return SL_NOMEM;
    char *rerr = NULL;
    kv->pinned = rocksdb_get_pinned(kv->db, kv->ropts, k, klen + 2, &rerr);
    if (rerr) {
        if (kv->pinned) {
            rocksdb_pinnableslice_destroy(kv->pinned);
            kv->pinned = NULL;
        }
        return s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "get");
    }
    if (!kv->pinned)
        return SL_NOTFOUND;
    *val = rocksdb_pinnableslice_value(kv->pinned, vlen);
    return 0;
}

int sl_kv_multi_get(sl_kv_t *kv, size_t n, const uint16_t *kgs, const void *const *keys,
                    const size_t *klens, sl_kv_value_t *vals)
{
    s_multi_release(kv);
    if (!n)
        return 0;
    if (n > kv->mcap) {
        size_t nc = kv->mcap ? kv->mcap : 64;
        while (nc < n)
            nc *= 2;
        rocksdb_pinnableslice_t **v = realloc(kv->mvals, nc * sizeof *v);
        if (v)
            kv->mvals = v;
        char **e = realloc(kv->merrs, nc * sizeof *e);
        if (e)
            kv->merrs = e;
        const char **k = realloc(kv->mkeys, nc * sizeof *k);
        if (k)
            kv->mkeys = k;
        size_t *l = realloc(kv->mklens, nc * sizeof *l);
        if (l)
            kv->mklens = l;
        if (!v || !e || !k || !l)
            return SL_NOMEM;
        kv->mcap = nc;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_kg(kv, kgs[i]);
        if (rc)
            return rc;
        total += klens[i] + 2;
    }
    if (total > kv->mbuf_cap) {
        size_t nc = kv->mbuf_cap ? kv->mbuf_cap : 1024;
        while (nc < total)
            nc *= 2;
        uint8_t *p = realloc(kv->mbuf, nc);
        if (!p)
            return SL_NOMEM;
        kv->mbuf = p;
        kv->mbuf_cap = nc;
    }
    uint8_t *p = kv->mbuf;
    for (size_t i = 0; i < n; i++) {
        p[0] = (uint8_t)(kgs[i] >> 8);
        p[1] = (uint8_t)kgs[i];
        if (klens[i])
            memcpy(p + 2, keys[i], klens[i]);
        kv->mkeys[i] = (const char *)p;
        kv->mklens[i] = klens[i] + 2;
        kv->mvals[i] = NULL;
        kv->merrs[i] = NULL;
        p += klens[i] + 2;
    }
    rocksdb_batched_multi_get_cf(kv->db, kv->ropts, kv->cf, n, kv->mkeys, kv->mklens, kv->mvals,
                                 kv->merrs, false);
    kv->mn = n;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        vals[i] = (sl_kv_value_t){0};
        if (kv->merrs[i]) {
            if (!rc)
                rc = s_rerr(kv->merrs[i], SL_IO, kv->msg, sizeof kv->msg, "multi-get");
            else
                rocksdb_free(kv->merrs[i]);
            kv->merrs[i] = NULL;
        } else if (kv->mvals[i]) {
            vals[i].val = rocksdb_pinnableslice_value(kv->mvals[i], &vals[i].len);
            vals[i].found = vals[i].val != NULL;
        }
    }
    return rc;
}

int sl_kv_delete_range(sl_kv_t *kv, uint16_t first, uint16_t last)
{
    if (first > last || last > SL_KV_MAX_KEY_GROUP) {
        snprintf(kv->msg, sizeof kv->msg, "kvstate: bad key group range %u..%u", (unsigned)first,
                 (unsigned)last);
        return SL_INVAL;
    }
    unsigned end = (unsigned)last + 1;
    char lo[2] = {(char)(first >> 8), (char)(first & 0xff)};
    char hi[2] = {(char)(end >> 8), (char)(end & 0xff)};
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (!wb)
        return SL_NOMEM;
    rocksdb_writebatch_delete_range(wb, lo, 2, hi, 2);
    char *rerr = NULL;
    rocksdb_write(kv->db, kv->wopts, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    return rerr ? s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "delete_range") : 0;
}

int sl_kv_compact(sl_kv_t *kv)
{
    rocksdb_compact_range(kv->db, NULL, 0, NULL, 0);
    return 0;
}

/* ---- batches ------------------------------------------------------------------ */

sl_kv_batch_t *sl_kv_batch_new(void)
{
    sl_kv_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->wb = rocksdb_writebatch_create();
    if (!b->wb) {
        free(b);
        return NULL;
    }
    return b;
}

void sl_kv_batch_destroy(sl_kv_batch_t **pb)
{
    if (!pb || !*pb)
        return;
    rocksdb_writebatch_destroy((*pb)->wb);
    free(*pb);
    *pb = NULL;
}

int sl_kv_batch_put(sl_kv_batch_t *b, uint16_t kg, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    if (kg > SL_KV_MAX_KEY_GROUP)
        return SL_INVAL;
    char pre[2] = {(char)(kg >> 8), (char)(kg & 0xff)};
    const char *ks[2] = {pre, key};
    size_t kl[2] = {2, klen};
    const char *vs[1] = {val};
    size_t vl[1] = {vlen};
    /* the key is the concatenation of the two parts: no copy here */
    rocksdb_writebatch_putv(b->wb, klen ? 2 : 1, ks, kl, 1, vs, vl);
    return 0;
}

int sl_kv_batch_delete(sl_kv_batch_t *b, uint16_t kg, const void *key, size_t klen)
{
    if (kg > SL_KV_MAX_KEY_GROUP)
        return SL_INVAL;
    char pre[2] = {(char)(kg >> 8), (char)(kg & 0xff)};
    const char *ks[2] = {pre, key};
    size_t kl[2] = {2, klen};
    rocksdb_writebatch_deletev(b->wb, klen ? 2 : 1, ks, kl);
    return 0;
}

size_t sl_kv_batch_count(const sl_kv_batch_t *b)
{
    return (size_t)rocksdb_writebatch_count(b->wb);
}

int sl_kv_batch_commit(sl_kv_t *kv, sl_kv_batch_t *b)
{
    char *rerr = NULL;
    rocksdb_write(kv->db, kv->wopts, b->wb, &rerr);
    rocksdb_writebatch_clear(b->wb);
    return rerr ? s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "batch commit") : 0;
}

/* ---- sorted writes ------------------------------------------------------------- */

int sl_kv_sorted_begin(sl_kv_t *kv)
{
    sl_kv_sorted_abort(kv);
    if (!kv->sst_path && !(kv->sst_path = s_join(kv->dir, "ingest.sst")))
        return SL_NOMEM;
    if (!kv->envopts && !(kv->envopts = rocksdb_envoptions_create()))
        return SL_NOMEM;
    /* the store's options: the file has the table format (filters,
     * partitioned indexes, compression, checksums) of the store's own */
    kv->sst = rocksdb_sstfilewriter_create(kv->envopts, kv->opts);
    if (!kv->sst)
        return SL_NOMEM;
    unlink(kv->sst_path); /* a leftover of a failed write */
    char *rerr = NULL;
    rocksdb_sstfilewriter_open(kv->sst, kv->sst_path, &rerr);
    if (rerr) {
        sl_kv_sorted_abort(kv);
        return s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "sorted write: open");
    }
    kv->sst_n = 0;
    return 0;
}

int sl_kv_sorted_put(sl_kv_t *kv, uint16_t kg, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    if (!kv->sst) {
        snprintf(kv->msg, sizeof kv->msg, "kvstate: sorted put without sl_kv_sorted_begin");
        return SL_INVAL;
    }
    int rc = s_check_kg(kv, kg);
    if (rc)
        return rc;
    const char *k = s_key(kv, kg, key, klen);
    if (!k)
        return SL_NOMEM;
    char *rerr = NULL;
    rocksdb_sstfilewriter_put(kv->sst, k, klen + 2, val, vlen, &rerr);
    if (rerr) /* RocksDB checks the order: keys must strictly increase */
        return s_rerr(rerr, SL_INVAL, kv->msg, sizeof kv->msg, "sorted put");
    kv->sst_n++;
    return 0;
}

int sl_kv_sorted_commit(sl_kv_t *kv)
{
    if (!kv->sst) {
        snprintf(kv->msg, sizeof kv->msg, "kvstate: sorted commit without sl_kv_sorted_begin");
        return SL_INVAL;
    }
    if (!kv->sst_n) { /* RocksDB makes no file without entries */
        sl_kv_sorted_abort(kv);
        return 0;
    }
    char *rerr = NULL;
    rocksdb_sstfilewriter_finish(kv->sst, &rerr);
    rocksdb_sstfilewriter_destroy(kv->sst);
    kv->sst = NULL;
    /* RocksDB's writer drops the file from the page cache as it writes it
     * (SstFileWriter's invalidate_page_cache, not settable from C): ask the
     * kernel to read it back now, without waiting, so the checkpoint's copy
     * and the compactions that read it next find it cached */
    int fd = rerr ? -1 : open(kv->sst_path, O_RDONLY);
    if (fd >= 0) {
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED); /* only advice */
        close(fd);
    }
    if (!rerr) {
        /* hard-linked into the DB as a new file number (invariant 2); keys
         * it shares with the memtable flush it first, so it is newest */
        rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
        if (!io) {
            unlink(kv->sst_path);
            return SL_NOMEM;
        }
        rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
        rocksdb_ingestexternalfileoptions_set_allow_global_seqno(io, 1);
        rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1);
        const char *files[1] = {kv->sst_path};
        rocksdb_ingest_external_file_cf(kv->db, kv->cf, files, 1, io, &rerr);
        rocksdb_ingestexternalfileoptions_destroy(io);
    }
    unlink(kv->sst_path); /* the DB holds its own link */
    kv->sst_n = 0;
    return rerr ? s_rerr(rerr, SL_IO, kv->msg, sizeof kv->msg, "sorted commit") : 0;
}

void sl_kv_sorted_abort(sl_kv_t *kv)
{
    if (!kv || !kv->sst)
        return;
    rocksdb_sstfilewriter_destroy(kv->sst);
    kv->sst = NULL;
    kv->sst_n = 0;
    if (kv->sst_path)
        unlink(kv->sst_path);
}

/* ---- iteration ------------------------------------------------------------------ */

int sl_kv_iter_new(sl_kv_t *kv, uint16_t first, uint16_t last, sl_kv_iter_t **out)
{
    *out = NULL;
    if (first > last || last > SL_KV_MAX_KEY_GROUP) {
        snprintf(kv->msg, sizeof kv->msg, "kvstate: bad key group range %u..%u", (unsigned)first,
                 (unsigned)last);
        return SL_INVAL;
    }
    sl_kv_iter_t *it = calloc(1, sizeof *it);
    if (!it)
        return SL_NOMEM;
    unsigned end = (unsigned)last + 1;
    it->lower[0] = (char)(first >> 8);
    it->lower[1] = (char)(first & 0xff);
    it->upper[0] = (char)(end >> 8);
    it->upper[1] = (char)(end & 0xff);
    it->ro = rocksdb_readoptions_create();
    if (!it->ro) {
        free(it);
        return SL_NOMEM;
    }
    /* bounds let RocksDB skip files outside the range; the slices must
     * outlive the iterator, so they live in *it */
    rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, 2);
    rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, 2);
    rocksdb_readoptions_set_fill_cache(it->ro, 1);
    it->it = rocksdb_create_iterator(kv->db, it->ro);
    if (!it->it) {
        rocksdb_readoptions_destroy(it->ro);
        free(it);
        return SL_NOMEM;
    }
    *out = it;
    return 0;
}

int sl_kv_iter_span(sl_kv_t *kv, uint16_t kg, const void *lo, size_t lolen, const void *hi,
                    size_t hilen, sl_kv_iter_t **out)
{
    *out = NULL;
    int rc = s_check_kg(kv, kg);
    if (rc)
        return rc;
    sl_kv_iter_t *it = calloc(1, sizeof *it);
    if (!it)
        return SL_NOMEM;
    unsigned end = (unsigned)kg + 1;
    it->span_lo = 2 + lolen;
    it->span_hi = hi ? 2 + hilen : 2;
    it->span = malloc(it->span_lo + it->span_hi);
    it->ro = it->span ? rocksdb_readoptions_create() : NULL;
    if (!it->ro) {
        free(it->span);
        free(it);
        return SL_NOMEM;
    }
    char *l = it->span, *u = it->span + it->span_lo;
    l[0] = (char)(kg >> 8);
    l[1] = (char)(kg & 0xff);
    if (lolen)
        memcpy(l + 2, lo, lolen);
    if (hi) {
        u[0] = l[0];
        u[1] = l[1];
        if (hilen)
            memcpy(u + 2, hi, hilen);
    } else {
        u[0] = (char)(end >> 8);
        u[1] = (char)(end & 0xff);
    }
    rocksdb_readoptions_set_iterate_upper_bound(it->ro, u, it->span_hi);
    rocksdb_readoptions_set_iterate_lower_bound(it->ro, l, it->span_lo);
    rocksdb_readoptions_set_fill_cache(it->ro, 1);
    it->it = rocksdb_create_iterator(kv->db, it->ro);
    if (!it->it) {
        rocksdb_readoptions_destroy(it->ro);
        free(it->span);
        free(it);
        return SL_NOMEM;
    }
    *out = it;
    return 0;
}

int sl_kv_iter_next(sl_kv_iter_t *it, sl_kv_entry_t *e)
{
    if (!it->started) {
        if (it->span)
            rocksdb_iter_seek(it->it, it->span, it->span_lo);
        else
            rocksdb_iter_seek(it->it, it->lower, 2);
        it->started = 1;
    } else if (rocksdb_iter_valid(it->it)) {
        rocksdb_iter_next(it->it);
    }
    if (!rocksdb_iter_valid(it->it)) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it->it, &rerr);
        if (rerr) {
            rocksdb_free(rerr);
            return SL_IO;
        }
        return 0;
    }
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it->it, &kl);
    const char *v = rocksdb_iter_value(it->it, &vl);
    if (kl < 2)
        return SL_DATA; /* not written by this module (invariant 1) */
    e->key_group = (uint16_t)(((unsigned)(uint8_t)k[0] << 8) | (uint8_t)k[1]);
    e->key = k + 2;
    e->key_len = kl - 2;
    e->val = v;
    e->val_len = vl;
    return 1;
}

void sl_kv_iter_destroy(sl_kv_iter_t **pit)
{
    if (!pit || !*pit)
        return;
    rocksdb_iter_destroy((*pit)->it);
    rocksdb_readoptions_destroy((*pit)->ro);
    free((*pit)->span);
    free(*pit);
    *pit = NULL;
}

int sl_kv_scan(sl_kv_t *kv, uint16_t first, uint16_t last, sl_kv_scan_fn fn, void *arg)
{
    sl_kv_iter_t *it;
    int rc = sl_kv_iter_new(kv, first, last, &it);
    if (rc)
        return rc;
    sl_kv_entry_t e;
    while ((rc = sl_kv_iter_next(it, &e)) == 1) {
        rc = fn(arg, &e);
        if (rc)
            break;
    }
    sl_kv_iter_destroy(&it);
    return rc;
}

/* ---- cursors ---------------------------------------------------------------- */

struct sl_kv_cursor {
    sl_kv_t *kv;               /* the store (for error messages) */
    rocksdb_readoptions_t *ro; /* the iterator's options: its upper bound is set before
                                  each seek (RocksDB rechecks the bound at a seek) */
    rocksdb_iterator_t *it;    /* the store as of creation */
    char *hi;                  /* the upper bound: key group + hi */
    size_t hilen, hicap;       /* its length and capacity */
    int state;                 /* 0 not sought, 1 sought (next returns the first), 2 moving */
};

/* Room for n bytes in *p (capacity *cap). */
static int s_room(char **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < n)
        nc *= 2;
    char *np = realloc(*p, nc);
    if (!np)
        return SL_NOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

int sl_kv_cursor_new(sl_kv_t *kv, sl_kv_cursor_t **out)
{
    *out = NULL;
    sl_kv_cursor_t *c = calloc(1, sizeof *c);
    if (!c)
        return SL_NOMEM;
    c->kv = kv;
    c->ro = rocksdb_readoptions_create();
    if (!c->ro || s_room(&c->hi, &c->hicap, 64)) {
        sl_kv_cursor_destroy(&c);
        return SL_NOMEM;
    }
    /* a bound must exist when the iterator is made for later ones to count */
    c->hi[0] = c->hi[1] = (char)0xff;
    c->hilen = 2;
    rocksdb_readoptions_set_iterate_upper_bound(c->ro, c->hi, c->hilen);
    rocksdb_readoptions_set_fill_cache(c->ro, 1);
    c->it = rocksdb_create_iterator(kv->db, c->ro);
    if (!c->it) {
        sl_kv_cursor_destroy(&c);
        return SL_NOMEM;
    }
    *out = c;
    return 0;
}

int sl_kv_cursor_seek(sl_kv_cursor_t *c, uint16_t kg, const void *lo, size_t lolen, const void *hi,
                      size_t hilen)
{
    c->state = 0;
    int rc = s_check_kg(c->kv, kg);
    if (rc)
        return rc;
    const char *k = s_key(c->kv, kg, lo, lolen);
    if (!k || s_room(&c->hi, &c->hicap, (hi ? hilen : 0) + 2))
        return SL_NOMEM;
    unsigned g = hi ? kg : (unsigned)kg + 1;
    c->hi[0] = (char)(g >> 8);
    c->hi[1] = (char)(g & 0xff);
    if (hi && hilen)
        memcpy(c->hi + 2, hi, hilen);
    c->hilen = (hi ? hilen : 0) + 2;
    /* the iterator holds the options' slice: this moves its bound */
    rocksdb_readoptions_set_iterate_upper_bound(c->ro, c->hi, c->hilen);
    rocksdb_iter_seek(c->it, k, lolen + 2);
    c->state = 1;
    return 0;
}

int sl_kv_cursor_next(sl_kv_cursor_t *c, sl_kv_entry_t *e)
{
    if (c->state == 0)
        return 0;
    if (c->state == 2)
        rocksdb_iter_next(c->it);
    c->state = 2;
    if (!rocksdb_iter_valid(c->it)) {
        char *rerr = NULL;
        rocksdb_iter_get_error(c->it, &rerr);
        c->state = 0;
        return rerr ? s_rerr(rerr, SL_IO, c->kv->msg, sizeof c->kv->msg, "iterate") : 0;
    }
    size_t kl, vl;
    const char *k = rocksdb_iter_key(c->it, &kl);
    size_t m = kl < c->hilen ? kl : c->hilen;
    int cmp = memcmp(k, c->hi, m);
    if (cmp > 0 || (cmp == 0 && kl >= c->hilen)) { /* past the bound (checked by RocksDB too) */
        c->state = 0;
        return 0;
    }
    if (kl < 2)
        return SL_DATA; /* not written by this module (invariant 1) */
    e->key_group = (uint16_t)(((unsigned)(uint8_t)k[0] << 8) | (uint8_t)k[1]);
    e->key = k + 2;
    e->key_len = kl - 2;
    e->val = rocksdb_iter_value(c->it, &vl);
    e->val_len = vl;
    return 1;
}

void sl_kv_cursor_destroy(sl_kv_cursor_t **pc)
{
    if (!pc || !*pc)
        return;
    sl_kv_cursor_t *c = *pc;
    if (c->it)
        rocksdb_iter_destroy(c->it);
    if (c->ro)
        rocksdb_readoptions_destroy(c->ro);
    free(c->hi);
    free(c);
    *pc = NULL;
}

/* ---- manifests ------------------------------------------------------------------ */

void sl_kv_manifest_free(sl_kv_manifest_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->files[i].name);
        free(m->files[i].stored);
    }
    free(m->files);
    m->files = NULL;
    m->n = 0;
}

static void s_put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Encoding: "SLKV", u32 version, u32 count, per file {u8 flags (1 = shared),
 * u64 size, sha256[32], u16 name length, name, u16 stored length, stored},
 * then the sha256 of everything before it. Integers little-endian. */
int sl_kv_manifest_encode(const sl_kv_manifest_t *m, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t n = 12 + 32;
    for (size_t i = 0; i < m->n; i++) {
        size_t a = strlen(m->files[i].name), b = strlen(m->files[i].stored);
        if (a > 0xffff || b > 0xffff)
            return SL_INVAL;
        n += 1 + 8 + 32 + 2 + a + 2 + b;
    }
    if (m->n > 0xffffffffu)
        return SL_INVAL;
    uint8_t *buf = malloc(n), *p = buf;
    if (!buf)
        return SL_NOMEM;
    memcpy(p, S_MAGIC, 4);
    s_put_le(p + 4, S_VERSION, 4);
    s_put_le(p + 8, m->n, 4);
    p += 12;
    for (size_t i = 0; i < m->n; i++) {
        const sl_kv_file_t *f = &m->files[i];
        size_t a = strlen(f->name), b = strlen(f->stored);
        *p++ = f->shared ? 1 : 0;
        s_put_le(p, f->size, 8);
        p += 8;
        memcpy(p, f->sha256, 32);
        p += 32;
        s_put_le(p, a, 2);
        memcpy(p + 2, f->name, a);
        p += 2 + a;
        s_put_le(p, b, 2);
        memcpy(p + 2, f->stored, b);
        p += 2 + b;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, (size_t)(p - buf), buf);
    sha256_digest(&ctx, 32, p);
    *out = buf;
    *len = n;
    return 0;
}

static char *s_take_str(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2)
        return NULL;
    size_t n = (size_t)s_get_le(*p, 2);
    if ((size_t)(end - *p) < 2 + n)
        return NULL;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, *p + 2, n);
    s[n] = 0;
    *p += 2 + n;
    if (strlen(s) != n || !s_name_ok(s)) {
        free(s);
        return NULL;
    }
    return s;
}

int sl_kv_manifest_decode(const void *data, size_t len, sl_kv_manifest_t *m, char *err, size_t cap)
{
    memset(m, 0, sizeof *m);
    const uint8_t *buf = data;
    if (len < 12 + 32 || memcmp(buf, S_MAGIC, 4) != 0) {
        s_err(err, cap, "kvstate manifest: not a manifest (%zu bytes)", len);
        return SL_DATA;
    }
    uint8_t sha[32];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len - 32, buf);
    sha256_digest(&ctx, 32, sha);
    if (memcmp(sha, buf + len - 32, 32) != 0) {
        s_err(err, cap, "kvstate manifest: checksum mismatch (corrupt)");
        return SL_DATA;
    }
    uint32_t ver = (uint32_t)s_get_le(buf + 4, 4);
    if (ver != S_VERSION) {
        s_err(err, cap, "kvstate manifest: unsupported version %u", (unsigned)ver);
        return SL_DATA;
    }
    size_t n = (size_t)s_get_le(buf + 8, 4);
    const uint8_t *p = buf + 12, *end = buf + len - 32;
    if (n > (size_t)(end - p) / (1 + 8 + 32 + 2 + 2)) {
        s_err(err, cap, "kvstate manifest: %zu files do not fit in %zu bytes", n, len);
        return SL_DATA;
    }
    m->files = calloc(n ? n : 1, sizeof *m->files);
    if (!m->files)
        return SL_NOMEM;
    for (size_t i = 0; i < n; i++) {
        sl_kv_file_t *f = &m->files[i];
        if (end - p < 1 + 8 + 32) {
            s_err(err, cap, "kvstate manifest: truncated at file %zu", i);
            sl_kv_manifest_free(m);
            return SL_DATA;
        }
        if (*p > 1) {
            s_err(err, cap, "kvstate manifest: bad flags at file %zu", i);
            sl_kv_manifest_free(m);
            return SL_DATA;
        }
        f->shared = *p == 1;
        f->size = s_get_le(p + 1, 8);
        memcpy(f->sha256, p + 9, 32);
        p += 41;
        f->name = s_take_str(&p, end);
        f->stored = f->name ? s_take_str(&p, end) : NULL;
        m->n = i + 1;
        if (!f->name || !f->stored) {
            s_err(err, cap, "kvstate manifest: bad or unsafe file name at file %zu", i);
            sl_kv_manifest_free(m);
            return SL_DATA;
        }
    }
    if (p != end) {
        s_err(err, cap, "kvstate manifest: %zu trailing bytes", (size_t)(end - p));
        sl_kv_manifest_free(m);
        return SL_DATA;
    }
    return 0;
}

/* ---- checkpoint ------------------------------------------------------------------ */

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir (no "." or ".."). */
static int s_list_dir(const char *dir, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return SL_IO;
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **p = realloc(v, nc * sizeof *p);
            if (!p) {
                rc = SL_NOMEM;
                break;
            }
            v = p;
            cap = nc;
        }
        if (!(v[n] = strdup(de->d_name))) {
            rc = SL_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        sl_kv_names_free(v, n);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof *v, s_cmp_str);
    *names = v;
    *count = n;
    return 0;
}

void sl_kv_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Copies src into dir/stored via dir/stored.tmp (fsync, rename); f gets
 * size and sha256. */
static int s_publish(const char *src, const char *dir, const char *stored, sl_kv_file_t *f,
                     char *err, size_t cap)
{
    char *dst = s_join(dir, stored);
    size_t dl = dst ? strlen(dst) : 0;
    char *tmp = dst ? malloc(dl + 5) : NULL;
    if (!tmp) {
        free(dst);
        return SL_NOMEM;
    }
    memcpy(tmp, dst, dl);
    memcpy(tmp + dl, ".tmp", 5);
    unlink(tmp); /* a leftover of an interrupted copy */
    int missing;
    int rc = s_copy(src, tmp, 1, &f->size, f->sha256, &missing, err, cap);
    if (!rc && rename(tmp, dst) != 0) {
        s_err(err, cap, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        rc = SL_IO;
    }
    free(tmp);
    free(dst);
    return rc;
}

static const sl_kv_file_t *s_known_find(const sl_kv_t *kv, const char *name)
{
    for (size_t i = 0; i < kv->known.n; i++)
        if (!strcmp(kv->known.files[i].name, name))
            return &kv->known.files[i];
    return NULL;
}

int sl_kv_checkpoint(sl_kv_t *kv, const char *storage_dir, const char *shared_dir,
                     sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats, char *err, size_t cap)
{
    return sl_kv_checkpoint_keep(kv, storage_dir, shared_dir, NULL, out, stats, err, cap);
}

/* Moves the RocksDB checkpoint in tmpdir to keep_dir (replacing what is
 * there): the local copy. Best effort: false when it could not be kept
 * (tmpdir is then removed by the caller). */
static bool s_keep_local(const char *tmpdir, const char *keep_dir)
{
    s_rmrf(keep_dir);
    char *parent = strdup(keep_dir);
    char *slash = parent ? strrchr(parent, '/') : NULL;
    if (slash && slash != parent)
        *slash = '\0';
    bool ok = parent && s_mkdir_p(parent) == 0 && rename(tmpdir, keep_dir) == 0;
    free(parent);
    return ok;
}

struct sl_kv_snap {
    sl_kv_t *kv;  /* the store (outlives the snapshot) */
    char *tmpdir; /* the RocksDB checkpoint: hard links of the SSTs (owned) */
};

int sl_kv_checkpoint_begin(sl_kv_t *kv, sl_kv_snap_t **out, char *err, size_t cap)
{
    *out = NULL;
    char *tmpdir = s_join(kv->dir, "ckpt-tmp");
    sl_kv_snap_t *s = calloc(1, sizeof *s);
    if (!tmpdir || !s) {
        free(tmpdir);
        free(s);
        return SL_NOMEM;
    }
    s_rmrf(tmpdir); /* a leftover of a failed checkpoint */

    /* 1. flush memtables so the WAL holds nothing the SSTs do not */
    char *rerr = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(kv->db, fo, &rerr);
    rocksdb_flushoptions_destroy(fo);
    if (rerr) {
        free(tmpdir);
        free(s);
        return s_rerr(rerr, SL_IO, err, cap, "flush");
    }
    /* 2. a consistent file set as hard links */
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(kv->db, &rerr);
    if (!rerr)
        rocksdb_checkpoint_create(cp, tmpdir, 0, &rerr);
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    if (rerr) {
        s_rmrf(tmpdir);
        free(tmpdir);
        free(s);
        return s_rerr(rerr, SL_IO, err, cap, "create checkpoint");
    }
    s->kv = kv;
    s->tmpdir = tmpdir;
    *out = s;
    return 0;
}

void sl_kv_checkpoint_abort(sl_kv_snap_t **sp)
{
    if (!sp || !*sp)
        return;
    s_rmrf((*sp)->tmpdir);
    free((*sp)->tmpdir);
    free(*sp);
    *sp = NULL;
}

int sl_kv_checkpoint_keep(sl_kv_t *kv, const char *storage_dir, const char *shared_dir,
                          const char *keep_dir, sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats,
                          char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    sl_kv_snap_t *s = NULL;
    int rc = sl_kv_checkpoint_begin(kv, &s, err, cap);
    return rc ? rc
              : sl_kv_checkpoint_end(&s, storage_dir, shared_dir, keep_dir, out, stats, err, cap);
}

int sl_kv_checkpoint_end(sl_kv_snap_t **sp, const char *storage_dir, const char *shared_dir,
                         const char *keep_dir, sl_kv_manifest_t *out, sl_kv_ckpt_stats_t *stats,
                         char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    sl_kv_snap_t *snap = *sp;
    sl_kv_t *kv = snap->kv;
    char *tmpdir = snap->tmpdir;
    free(snap);
    *sp = NULL;
    sl_kv_ckpt_stats_t st = {0};
    if (s_mkdir_p(storage_dir) || s_mkdir_p(shared_dir)) {
        s_err(err, cap, "kvstate checkpoint: cannot create %s or %s: %s", storage_dir, shared_dir,
              strerror(errno));
        s_rmrf(tmpdir);
        free(tmpdir);
        return SL_IO;
    }
    /* 3. copy into storage */
    char **names = NULL;
    size_t nnames = 0, mcap = 0;
    int rc = s_list_dir(tmpdir, &names, &nnames);
    if (rc)
        s_err(err, cap, "kvstate checkpoint: cannot list %s", tmpdir);
    for (size_t i = 0; !rc && i < nnames; i++) {
        const char *name = names[i];
        char *src = s_join(tmpdir, name);
        struct stat sb;
        if (!src) {
            rc = SL_NOMEM;
            break;
        }
        if (stat(src, &sb) != 0 || !S_ISREG(sb.st_mode) || !s_name_ok(name)) {
            s_err(err, cap, "kvstate checkpoint: unexpected entry %s", src);
            free(src);
            rc = SL_IO;
            break;
        }
        sl_kv_file_t f = {0};
        char stored[300];
        f.name = (char *)name;
        f.shared = s_is_shared_name(name);
        const sl_kv_file_t *k = f.shared ? s_known_find(kv, name) : NULL;
        int reuse = 0;
        if (k && k->size == (uint64_t)sb.st_size) {
            char *path = s_join(shared_dir, k->stored);
            struct stat ss;
            reuse = path && stat(path, &ss) == 0 && (uint64_t)ss.st_size == k->size;
            free(path);
        }
        if (reuse) {
            f = *k;
            st.shared_reused++;
        } else {
            if (f.shared)
                snprintf(stored, sizeof stored, "%s-%s", kv->id, name);
            else
                snprintf(stored, sizeof stored, "%s", name);
            f.stored = stored;
            rc = s_publish(src, f.shared ? shared_dir : storage_dir, stored, &f, err, cap);
            if (!rc) {
                st.files_copied++;
                st.bytes_copied += f.size;
                if (f.shared)
                    st.shared_copied++;
            }
        }
        free(src);
        if (!rc) {
            st.files++;
            st.bytes += f.size;
            rc = s_manifest_push(out, &mcap, &f);
        }
    }
    sl_kv_names_free(names, nnames);
    if (!rc && (s_fsync_dir(storage_dir) || s_fsync_dir(shared_dir))) {
        s_err(err, cap, "kvstate checkpoint: fsync %s: %s", storage_dir, strerror(errno));
        rc = SL_IO;
    }
    if (!rc && keep_dir)
        st.local_kept = s_keep_local(tmpdir, keep_dir);
    s_rmrf(tmpdir);
    free(tmpdir);
    if (!rc)
        rc = s_set_known(kv, out);
    if (rc) {
        sl_kv_manifest_free(out);
        return rc;
    }
    if (stats)
        *stats = st;
    return 0;
}

/* ---- restore -------------------------------------------------------------------- */

static int s_hash_file(const char *path, uint64_t *size, uint8_t sha[32], int *missing);

/* Puts file f of a manifest into the DB directory as dst and checks it
 * against f's size and sha256: copied from storage (src in storage_dir or
 * shared_dir), or, from a local copy (local), hard-linked when the file is
 * immutable (an SST) and copied otherwise. SL_DATA names a missing, short
 * or corrupt file; what says where it came from. */
static int s_restore_file(const sl_kv_file_t *f, const char *src, const char *dst, bool local,
                          char *err, size_t cap)
{
    const char *what = local ? "kvstate restore: local copy" : "kvstate restore: file";
    uint64_t size = 0;
    uint8_t sha[32];
    int missing = 0, rc;
    char msg[512] = "";
    if (local && s_is_shared_name(f->name)) {
        rc = link(src, dst) == 0 ? s_hash_file(dst, &size, sha, &missing) : SL_IO;
        if (rc) {
            missing = missing || errno == ENOENT;
            snprintf(msg, sizeof msg, "%s", strerror(errno));
        }
    } else {
        rc = s_copy(src, dst, 0, &size, sha, &missing, msg, sizeof msg);
    }
    if (rc && missing) {
        s_err(err, cap, "%s %s (for %s) is missing", what, src, f->name);
        return SL_DATA;
    }
    if (rc) {
        s_err(err, cap, "%s %s: %s", what, src, msg);
        return rc;
    }
    if (size != f->size) {
        s_err(err, cap,
              "%s %s (for %s) has %llu bytes, the manifest says %llu (truncated or replaced)", what,
              src, f->name, (unsigned long long)size, (unsigned long long)f->size);
        return SL_DATA;
    }
    if (memcmp(sha, f->sha256, 32) != 0) {
        char want[65], got[65];
        s_hex(f->sha256, 32, want);
        s_hex(sha, 32, got);
        s_err(err, cap, "%s %s (for %s) is corrupt: sha256 %s, expected %s", what, src, f->name,
              got, want);
        return SL_DATA;
    }
    return 0;
}

/* Threads that put a manifest's files into place: hashing (SHA-256, about
 * 1 GB/s per core with SHA-NI) is most of a restore's CPU time, and the
 * files are independent, so two cores restore 100 MB in about half the wall
 * time of one. */
#define S_RESTORE_THREADS 2

/* The files of one restore, shared by the threads that put them into place. */
typedef struct {
    const sl_kv_manifest_t *m; /* the manifest restored */
    const char *from_storage;  /* storage_dir (copy_dir NULL) */
    const char *from_shared;   /* shared_dir (copy_dir NULL) */
    const char *copy_dir;      /* the local copy, or NULL */
    const char *db_path;       /* the DB directory the files go to */
    const size_t *order;       /* file indexes, largest first */
    pthread_mutex_t mu;        /* guards the fields below */
    size_t next;               /* the next position in order to take */
    size_t failed;             /* the smallest index of a file that failed (m->n: none) */
    int rc;                    /* the error of file failed */
    char err[1024];            /* its message */
} s_rjob_t;

/* Takes files from j until none is left or one failed. */
static void *s_restore_files(void *arg)
{
    s_rjob_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next < j->m->n && j->failed == j->m->n ? j->order[j->next++] : j->m->n;
        pthread_mutex_unlock(&j->mu);
        if (i == j->m->n)
            return NULL;
        const sl_kv_file_t *f = &j->m->files[i];
        const char *from = j->copy_dir ? j->copy_dir : f->shared ? j->from_shared : j->from_storage;
        char *src = s_join(from, j->copy_dir ? f->name : f->stored);
        char *dst = s_join(j->db_path, f->name);
        char msg[1024] = "";
        int rc = src && dst ? s_restore_file(f, src, dst, j->copy_dir != NULL, msg, sizeof msg)
                            : SL_NOMEM;
        free(src);
        free(dst);
        if (rc) {
            pthread_mutex_lock(&j->mu);
            if (i < j->failed) {
                j->failed = i;
                j->rc = rc;
                snprintf(j->err, sizeof j->err, "%s",
                         msg[0] ? msg : "kvstate restore: out of memory");
            }
            pthread_mutex_unlock(&j->mu);
        }
    }
}

/* Puts every file of m into db_path (see s_restore_file) with up to
 * S_RESTORE_THREADS threads, the calling one included. On error, the
 * message of the failed file with the smallest index (one file of several
 * bad ones: the others stop at their current file). */
static int s_restore_all(const sl_kv_manifest_t *m, const char *storage_dir, const char *shared_dir,
                         const char *copy_dir, const char *db_path, char *err, size_t cap)
{
    size_t *order = malloc((m->n ? m->n : 1) * sizeof *order);
    if (!order) {
        s_err(err, cap, "kvstate restore: out of memory");
        return SL_NOMEM;
    }
    /* largest first, so that the threads finish together (insertion sort: tens of files) */
    for (size_t i = 0; i < m->n; i++) {
        size_t k = i;
        for (; k > 0 && m->files[order[k - 1]].size < m->files[i].size; k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
    s_rjob_t j = {.m = m,
                  .from_storage = storage_dir,
                  .from_shared = shared_dir,
                  .copy_dir = copy_dir,
                  .db_path = db_path,
                  .order = order,
                  .failed = m->n};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th[S_RESTORE_THREADS];
    size_t nth = 0;
    while (nth + 1 < S_RESTORE_THREADS && nth + 1 < m->n &&
           pthread_create(&th[nth], NULL, s_restore_files, &j) == 0)
        nth++; /* without a thread, the calling one does it all */
    s_restore_files(&j);
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.mu);
    free(order);
    if (j.failed < m->n) {
        s_err(err, cap, "%s", j.err);
        return j.rc;
    }
    return 0;
}

/* sl_kv_restore (copy_dir NULL) and sl_kv_restore_local (copy_dir set). */
static int s_restore(const sl_kv_manifest_t *m, const char *storage_dir, const char *shared_dir,
                     const char *copy_dir, const char *local_dir, const sl_kv_opts_t *o,
                     sl_kv_t **out, char *err, size_t cap)
{
    *out = NULL;
    int has_current = 0;
    for (size_t i = 0; i < m->n; i++) {
        const sl_kv_file_t *f = &m->files[i];
        if (!s_name_ok(f->name) || !s_name_ok(f->stored)) {
            s_err(err, cap, "kvstate restore: unsafe file name in manifest");
            return SL_DATA;
        }
        has_current |= !strcmp(f->name, "CURRENT");
    }
    if (!has_current) {
        s_err(err, cap, "kvstate restore: manifest has no CURRENT file (%zu files)", m->n);
        return SL_DATA;
    }
    if (s_mkdir_p(local_dir) != 0) {
        s_err(err, cap, "kvstate restore: cannot create %s: %s", local_dir, strerror(errno));
        return SL_IO;
    }
    sl_kv_t *kv;
    int rc = s_kv_new(local_dir, o, &kv);
    if (rc) {
        s_err(err, cap, "kvstate restore: out of memory");
        return rc;
    }
    rocksdb_options_set_create_if_missing(kv->opts, 0);
    if (mkdir(kv->db_path, 0755) != 0) {
        s_err(err, cap, "kvstate restore: cannot create %s: %s", kv->db_path,
              errno == EEXIST ? "a store already exists there" : strerror(errno));
        rc = errno == EEXIST ? SL_EXISTS : SL_IO;
        sl_kv_close(&kv);
        return rc;
    }
    rc = s_restore_all(m, storage_dir, shared_dir, copy_dir, kv->db_path, err, cap);
    if (!rc) {
        rc = s_new_id(kv->id);
        if (!rc)
            rc = s_write_id(local_dir, kv->id);
        if (rc)
            s_err(err, cap, "kvstate restore: cannot write %s/STORE-ID", local_dir);
    }
    if (!rc)
        rc = s_kv_open_db(kv, err, cap);
    if (!rc)
        rc = s_set_known(kv, m);
    if (rc) {
        s_kv_close_db(kv);
        s_rmrf(kv->db_path);
        sl_kv_close(&kv);
        return rc;
    }
    *out = kv;
    return 0;
}

int sl_kv_restore(const sl_kv_manifest_t *m, const char *storage_dir, const char *shared_dir,
                  const char *local_dir, const sl_kv_opts_t *o, sl_kv_t **out, char *err,
                  size_t cap)
{
    return s_restore(m, storage_dir, shared_dir, NULL, local_dir, o, out, err, cap);
}

int sl_kv_restore_local(const sl_kv_manifest_t *m, const char *copy_dir, const char *local_dir,
                        const sl_kv_opts_t *o, sl_kv_t **out, char *err, size_t cap)
{
    *out = NULL;
    struct stat sb;
    if (stat(copy_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        s_err(err, cap, "no local copy in %s", copy_dir);
        return SL_NOTFOUND;
    }
    return s_restore(m, NULL, NULL, copy_dir, local_dir, o, out, err, cap);
}

/* ---- garbage collection ------------------------------------------------------------ */

int sl_kv_gc_list(const char *shared_dir, const sl_kv_manifest_t *const *retained, size_t n,
                  char ***names, size_t *count, char *err, size_t cap)
{
    *names = NULL;
    *count = 0;
    size_t nref = 0;
    for (size_t i = 0; i < n; i++)
        nref += retained[i]->n;
    const char **refs = malloc((nref ? nref : 1) * sizeof *refs);
    if (!refs)
        return SL_NOMEM;
    nref = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < retained[i]->n; j++)
            if (retained[i]->files[j].shared)
                refs[nref++] = retained[i]->files[j].stored;
    if (nref)
        qsort(refs, nref, sizeof *refs, s_cmp_str);
    char **all;
    size_t nall;
    int rc = s_list_dir(shared_dir, &all, &nall);
    if (rc) {
        s_err(err, cap, "kvstate gc: cannot list %s", shared_dir);
        free(refs);
        return rc;
    }
    size_t keep = 0;
    for (size_t i = 0; i < nall; i++) {
        const char *key = all[i];
        if (nref && bsearch(&key, refs, nref, sizeof *refs, s_cmp_str)) {
            free(all[i]);
            continue;
        }
        all[keep++] = all[i];
    }
    free(refs);
    *names = all;
    *count = keep;
    return 0;
}

/* ---- checks ------------------------------------------------------------------------- */

/* Size and sha256 of the file at path. */
static int s_hash_file(const char *path, uint64_t *size, uint8_t sha[32], int *missing)
{
    *missing = 0;
    int in = open(path, O_RDONLY);
    if (in < 0) {
        *missing = errno == ENOENT;
        return SL_IO;
    }
    uint8_t *buf = malloc(S_COPY_BUF);
    int rc = buf ? 0 : SL_NOMEM;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint64_t total = 0;
    while (!rc) {
        ssize_t r = read(in, buf, S_COPY_BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = SL_IO;
        if (r <= 0)
            break;
        sha256_update(&ctx, (size_t)r, buf);
        total += (uint64_t)r;
    }
    free(buf);
    close(in);
    if (!rc) {
        sha256_digest(&ctx, 32, sha);
        *size = total;
    }
    return rc;
}

int sl_kv_manifest_verify(const sl_kv_manifest_t *m, const char *storage_dir,
                          const char *shared_dir, char *err, size_t cap)
{
    for (size_t i = 0; i < m->n; i++) {
        const sl_kv_file_t *f = &m->files[i];
        if (!s_name_ok(f->stored)) {
            s_err(err, cap, "kvstate: unsafe file name in manifest");
            return SL_DATA;
        }
        char *path = s_join(f->shared ? shared_dir : storage_dir, f->stored);
        if (!path)
            return SL_NOMEM;
        uint64_t size = 0;
        uint8_t sha[32];
        int missing = 0;
        int rc = s_hash_file(path, &size, sha, &missing);
        if (rc && missing) {
            s_err(err, cap, "state file %s is missing", path);
            rc = SL_DATA;
        } else if (rc) {
            s_err(err, cap, "cannot read state file %s: %s", path, strerror(errno));
        } else if (size != f->size) {
            s_err(err, cap, "state file %s has %llu bytes, the manifest says %llu", path,
                  (unsigned long long)size, (unsigned long long)f->size);
            rc = SL_DATA;
        } else if (memcmp(sha, f->sha256, 32) != 0) {
            s_err(err, cap, "state file %s is corrupt (sha256 differs)", path);
            rc = SL_DATA;
        }
        free(path);
        if (rc)
            return rc;
    }
    return 0;
}

void sl_kv_shared_of(const char *ckpt_dir, char *buf, size_t cap)
{
    struct stat st;
    snprintf(buf, cap, "%s/shared", ckpt_dir);
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return;
    snprintf(buf, cap, "%s/../shared", ckpt_dir);
}
