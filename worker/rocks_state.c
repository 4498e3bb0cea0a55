/* rocks_state.c — the RocksDB backend of keyed operators: stores, their
 * checkpoints and restores (see rocks_state.h). */
#define _POSIX_C_SOURCE 200809L
#include "rocks_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyed_state.h"
#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/plugin.h"
#include "sluice/spec.h"

#define S_FORMAT 1           /* version of the handle in the snapshot stream */
#define S_MERGE_BATCH 10000u /* entries per write batch when merging a rescaled store */

bool sl_rstate_enabled(const sl_opctx_t *c)
{
    return c->plan && c->plan->spec && c->plan->spec->state_rocksdb;
}

static void s_opts(const sl_opctx_t *c, sl_kv_opts_t *o)
{
    sl_kv_opts_default(o);
    o->block_cache_bytes = (size_t)c->plan->spec->state_cache;
    o->write_buffer_bytes = (size_t)c->plan->spec->state_wbuf;
    o->disable_wal = true; /* checkpoints are the durability */
    if (c->node->kind == SL_OP_PROCESS && c->node->proc_ttl_ms > 0) {
        o->ttl_ms = c->node->proc_ttl_ms; /* compactions drop expired cells */
        o->ttl_offset = SL_KS_TTL_OFFSET;
    }
}

/* The operator's local store directory: <state_dir>/op-<node>, or a fresh
 * temporary directory when the task gave none (tests). */
static int s_local_dir(sl_opctx_t *c, char *buf, size_t cap)
{
    if (c->state_dir) {
        snprintf(buf, cap, "%s/op-%d", c->state_dir, c->node->id);
        return SL_OK;
    }
    if (sl_fs_mkdtemp("sluice-state", buf, cap) != 0)
        return sl_op_fail(c, SL_IO, "'%s': cannot create a state directory: %s", c->node->name,
                          strerror(errno));
    return SL_OK;
}

int sl_rstate_open(sl_opctx_t *c, sl_kv_t **out)
{
    char dir[4200];
    int rc = s_local_dir(c, dir, sizeof dir);
    if (rc)
        return rc;
    sl_rmtree(dir);
    sl_kv_opts_t o;
    s_opts(c, &o);
    char err[512];
    rc = sl_kv_open(dir, &o, out, err, sizeof err);
    if (rc)
        return sl_op_fail(c, rc, "'%s': %s", c->node->name, err);
    return SL_OK;
}

void sl_rstate_owned(const sl_opctx_t *c, int *first, int *last)
{
    int maxp = c->plan->max_parallelism;
    *first = maxp;
    *last = -1;
    for (int g = 0; g < maxp; g++)
        if (sl_key_group_owner(g, maxp, c->parallelism) == c->subtask) {
            if (g < *first)
                *first = g;
            *last = g;
        }
}

/* Where this worker keeps its local copy of store rel's snapshot for
 * checkpoint id: <local_dir>/chk-<id>/<rel>. False without a local dir. */
static bool s_copy_dir(const sl_opctx_t *c, uint64_t id, const char *rel, char *buf, size_t cap)
{
    if (!c->local_dir || !id)
        return false;
    return (size_t)snprintf(buf, cap, "%s/chk-%llu/%s", c->local_dir, (unsigned long long)id, rel) <
           cap;
}

/* The id of the checkpoint c restores from when it is one of this job's
 * (c->restore_dir is <ckpt_dir>/chk-<id>), else 0 (a savepoint). */
static uint64_t s_restore_id(const sl_opctx_t *c)
{
    size_t n = c->ckpt_dir ? strlen(c->ckpt_dir) : 0;
    const char *r = c->restore_dir;
    if (!n || !r || strncmp(r, c->ckpt_dir, n) != 0 || strncmp(r + n, "/chk-", 5) != 0)
        return 0;
    char *end;
    errno = 0;
    unsigned long long id = strtoull(r + n + 5, &end, 10);
    return errno || *end || end == r + n + 5 ? 0 : (uint64_t)id;
}

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Restores store rel of the checkpoint (manifest m) into dir: from this
 * worker's local copy when there is one and every file of it matches m
 * (sl_kv_restore_local), else from checkpoint storage. Logs which, and why
 * not the local copy; counts the store's bytes in c's restored_local or
 * restored_remote metric and the time taken in restore_ns. */
static int s_restore_store(sl_opctx_t *c, const sl_kv_manifest_t *m, const char *rel,
                           const char *storage, const char *shared, const char *dir,
                           const sl_kv_opts_t *o, sl_kv_t **out, char *err, size_t cap)
{
    uint64_t t0 = s_now_ns(), id = s_restore_id(c), bytes = 0;
    for (size_t i = 0; i < m->n; i++)
        bytes += m->files[i].size;
    char copy[4400];
    if (s_copy_dir(c, id, rel, copy, sizeof copy)) {
        int rc = sl_kv_restore_local(m, copy, dir, o, out, err, cap);
        if (rc == SL_OK) {
            fprintf(stderr,
                    "sluice-worker: task %d.%d (%s): state of chk-%llu restored from local copy "
                    "(%zu files, %llu bytes not fetched)\n",
                    c->node->chain, c->subtask, c->node->name, (unsigned long long)id, m->n,
                    (unsigned long long)bytes);
            atomic_fetch_add_explicit(&c->restored_local, bytes, memory_order_relaxed);
            atomic_fetch_add_explicit(&c->restore_ns, s_now_ns() - t0, memory_order_relaxed);
            return SL_OK;
        }
        fprintf(stderr,
                "sluice-worker: task %d.%d (%s): state of chk-%llu fetched from checkpoint "
                "storage: %s\n",
                c->node->chain, c->subtask, c->node->name, (unsigned long long)id,
                rc == SL_NOTFOUND ? "no local copy" : err);
        sl_rmtree(dir); /* what the local attempt left */
    }
    int rc = sl_kv_restore(m, storage, shared, dir, o, out, err, cap);
    if (rc == SL_OK)
        atomic_fetch_add_explicit(&c->restored_remote, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->restore_ns, s_now_ns() - t0, memory_order_relaxed);
    return rc;
}

/* The copying part of a store's snapshot (sl_kv_checkpoint_end), run on
 * the task's snapshot thread when the task takes snapshots asynchronously
 * (sl_op_snapshot_defer), else at once. */
typedef struct {
    sl_kv_snap_t *snap; /* the frozen file set */
    char rel[64];       /* kv-<node>-<subtask> */
    char storage[4400]; /* <ckpt_dir>/chk-<id>/<rel> */
    char shared[4400];  /* <ckpt_dir>/shared */
    char keep[4400];    /* the local copy, or "" */
} s_rsnap_t;

static void s_rsnap_free(void *arg)
{
    s_rsnap_t *s = arg;
    if (s)
        sl_kv_checkpoint_abort(&s->snap);
    free(s);
}

static int s_rsnap_run(void *arg, sl_snap_w_t *w, char *err, size_t cap)
{
    s_rsnap_t *s = arg;
    sl_kv_manifest_t m = {0};
    sl_kv_ckpt_stats_t st;
    int rc = sl_kv_checkpoint_end(&s->snap, s->storage, s->shared, s->keep[0] ? s->keep : NULL, &m,
                                  &st, err, cap);
    if (rc)
        return rc;
    uint8_t *enc = NULL;
    size_t len = 0;
    rc = sl_kv_manifest_encode(&m, &enc, &len);
    sl_kv_manifest_free(&m);
    if (rc) {
        snprintf(err, cap, "cannot encode the state manifest");
        return rc;
    }
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", s->storage, SL_KV_MANIFEST_FILE);
    if (sl_fs_write_atomic(path, enc, len) != SL_OK) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        free(enc);
        return SL_IO;
    }
    sl_snap_u8(w, S_FORMAT);
    sl_snap_bytes(w, s->rel, strlen(s->rel));
    sl_snap_bytes(w, enc, len);
    free(enc);
    return w->err;
}

int sl_rstate_snapshot(sl_opctx_t *c, sl_kv_t *kv, sl_snap_w_t *w)
{
    if (!c->ckpt_dir)
        return sl_op_fail(c, SL_STATE, "'%s': no checkpoint directory", c->node->name);
    s_rsnap_t *s = calloc(1, sizeof *s);
    if (!s)
        return SL_NOMEM;
    snprintf(s->rel, sizeof s->rel, "kv-%d-%d", c->node->id, c->subtask);
    snprintf(s->storage, sizeof s->storage, "%s/chk-%llu/%s", c->ckpt_dir,
             (unsigned long long)c->checkpoint_id, s->rel);
    snprintf(s->shared, sizeof s->shared, "%s/shared", c->ckpt_dir);
    if (!(c->local_dir && s_copy_dir(c, c->checkpoint_id, s->rel, s->keep, sizeof s->keep)))
        s->keep[0] = 0;
    char err[1024];
    int rc = sl_kv_checkpoint_begin(kv, &s->snap, err, sizeof err);
    if (rc) {
        free(s);
        return sl_op_fail(c, rc, "'%s': %s", c->node->name, err);
    }
    if (c->snap_async) { /* the task copies the files on its snapshot thread */
        c->snap_defer = (sl_snap_defer_t){.run = s_rsnap_run, .free = s_rsnap_free, .arg = s};
        return SL_OK;
    }
    rc = s_rsnap_run(s, w, err, sizeof err);
    s_rsnap_free(s);
    if (rc)
        return sl_op_fail(c, rc, "'%s': %s", c->node->name, err);
    return SL_OK;
}

/* Copies key groups first..last of src into dst. */
static int s_merge(sl_opctx_t *c, sl_kv_t *src, sl_kv_t *dst, int first, int last)
{
    sl_kv_iter_t *it = NULL;
    sl_kv_batch_t *b = sl_kv_batch_new();
    int rc = b ? sl_kv_iter_new(src, (uint16_t)first, (uint16_t)last, &it) : SL_NOMEM;
    sl_kv_entry_t e;
    while (rc == SL_OK && (rc = sl_kv_iter_next(it, &e)) == 1) {
        rc = sl_kv_batch_put(b, e.key_group, e.key, e.key_len, e.val, e.val_len);
        if (rc == SL_OK && sl_kv_batch_count(b) >= S_MERGE_BATCH)
            rc = sl_kv_batch_commit(dst, b);
    }
    if (rc == SL_OK && sl_kv_batch_count(b))
        rc = sl_kv_batch_commit(dst, b);
    sl_kv_iter_destroy(&it);
    sl_kv_batch_destroy(&b);
    if (rc)
        return sl_op_fail(c, rc, "'%s': cannot merge restored state: %s", c->node->name,
                          sl_kv_errmsg(dst)[0] ? sl_kv_errmsg(dst) : sl_strerror(rc));
    return SL_OK;
}

int sl_rstate_restore(sl_opctx_t *c, sl_kv_t **kv, sl_snap_r_t *r)
{
    const char *name = c->node->name;
    uint8_t fmt = sl_snap_get_u8(r);
    size_t rlen, mlen;
    const uint8_t *rel = sl_snap_get_bytes(r, &rlen);
    const uint8_t *menc = sl_snap_get_bytes(r, &mlen);
    if (r->err || fmt != S_FORMAT || rlen == 0 || rlen >= 64 || memchr(rel, '/', rlen) ||
        memchr(rel, 0, rlen) || rel[0] == '.')
        return sl_op_fail(c, SL_DATA, "'%s': not a rocksdb state handle", name);
    if (!c->restore_dir)
        return sl_op_fail(c, SL_STATE, "'%s': no checkpoint directory to restore from", name);
    char err[1024];
    sl_kv_manifest_t m = {0};
    int rc = sl_kv_manifest_decode(menc, mlen, &m, err, sizeof err);
    if (rc)
        return sl_op_fail(c, SL_DATA, "'%s': %s", name, err);
    char storage[4400], shared[4400], local[4200], dir[4300];
    snprintf(storage, sizeof storage, "%s/%.*s", c->restore_dir, (int)rlen, (const char *)rel);
    sl_kv_shared_of(c->restore_dir, shared, sizeof shared);
    sl_kv_opts_t o;
    s_opts(c, &o);
    int first, last;
    sl_rstate_owned(c, &first, &last);
    if (*kv) {
        /* a further section (rescale): open it aside, copy the owned groups */
        snprintf(dir, sizeof dir, "%s.in", sl_kv_dir(*kv));
        sl_rmtree(dir);
        sl_kv_t *src = NULL;
        char rname[64];
        snprintf(rname, sizeof rname, "%.*s", (int)rlen, (const char *)rel);
        rc = s_restore_store(c, &m, rname, storage, shared, dir, &o, &src, err, sizeof err);
        sl_kv_manifest_free(&m);
        if (rc) {
            sl_rmtree(dir);
            return sl_op_fail(c, rc, "'%s': %s", name, err);
        }
        rc = last >= first ? s_merge(c, src, *kv, first, last) : SL_OK;
        sl_rstate_close(&src);
        return rc;
    }
    if ((rc = s_local_dir(c, local, sizeof local)) != SL_OK) {
        sl_kv_manifest_free(&m);
        return rc;
    }
    sl_rmtree(local);
    char rname[64];
    snprintf(rname, sizeof rname, "%.*s", (int)rlen, (const char *)rel);
    rc = s_restore_store(c, &m, rname, storage, shared, local, &o, kv, err, sizeof err);
    sl_kv_manifest_free(&m);
    if (rc) {
        sl_rmtree(local);
        return sl_op_fail(c, rc, "'%s': %s", name, err);
    }
    /* keep only the key groups this subtask owns now */
    if (last < first)
        rc = sl_kv_delete_range(*kv, 0, SL_KV_MAX_KEY_GROUP);
    else {
        if (first > 0)
            rc = sl_kv_delete_range(*kv, 0, (uint16_t)(first - 1));
        if (rc == SL_OK && last < (int)SL_KV_MAX_KEY_GROUP)
            rc = sl_kv_delete_range(*kv, (uint16_t)(last + 1), SL_KV_MAX_KEY_GROUP);
    }
    if (rc)
        return sl_op_fail(c, rc, "'%s': %s", name, sl_kv_errmsg(*kv));
    return SL_OK;
}

void sl_rstate_close(sl_kv_t **kv)
{
    if (!kv || !*kv)
        return;
    char *dir = strdup(sl_kv_dir(*kv));
    sl_kv_close(kv);
    if (dir)
        sl_rmtree(dir);
    free(dir);
}
