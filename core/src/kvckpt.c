/* kvckpt.c — the RocksDB stores of a checkpoint directory, as the master
 * sees them: checking them before a restore, collecting the shared files
 * no retained checkpoint references, and copying them into a savepoint
 * (see "checkpoint directories" in sluice/kvstate.h). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/kvstate.h"

/* The manifests of the stores in dir: *ms (caller frees each and the
 * array) and *n; *names (may be NULL) gets the kv-* names (caller frees). */
static int s_load(const char *dir, sl_kv_manifest_t **ms, char ***names, size_t *n, char *err,
                  size_t cap)
{
    *ms = NULL;
    *n = 0;
    if (names)
        *names = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, cap, "cannot open %s: %s", dir, strerror(errno));
        return SL_IO;
    }
    int rc = SL_OK;
    size_t capn = 0;
    struct dirent *e;
    while (rc == SL_OK && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "kv-", 3) != 0)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, SL_KV_MANIFEST_FILE);
        FILE *f = fopen(path, "rb");
        if (!f) {
            snprintf(err, cap, "the state manifest %s is missing", path);
            rc = SL_DATA;
            break;
        }
        uint8_t *buf = malloc(16u << 20);
        size_t len = buf ? fread(buf, 1, 16u << 20, f) : 0;
        fclose(f);
        if (!buf) {
            rc = SL_NOMEM;
            break;
        }
        if (*n == capn) {
            capn = capn ? capn * 2 : 8;
            sl_kv_manifest_t *nm = realloc(*ms, capn * sizeof *nm);
            char **nn = names ? realloc(*names, capn * sizeof *nn) : NULL;
            if (nm)
                *ms = nm;
            if (nn)
                *names = nn;
            if (!nm || (names && !nn)) {
                free(buf);
                rc = SL_NOMEM;
                break;
            }
        }
        char msg[512];
        if (sl_kv_manifest_decode(buf, len, &(*ms)[*n], msg, sizeof msg) != 0) {
            snprintf(err, cap, "the state manifest %s is corrupt: %s", path, msg);
            rc = SL_DATA;
        } else if (names && !((*names)[*n] = strdup(e->d_name))) {
            sl_kv_manifest_free(&(*ms)[*n]);
            rc = SL_NOMEM;
        } else
            (*n)++;
        free(buf);
    }
    closedir(d);
    return rc;
}

static void s_free(sl_kv_manifest_t *ms, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_kv_manifest_free(&ms[i]);
        if (names)
            free(names[i]);
    }
    free(ms);
    free(names);
}

int sl_kv_ckpt_verify(const char *dir, char *err, size_t cap)
{
    sl_kv_manifest_t *ms;
    char **names;
    size_t n;
    int rc = s_load(dir, &ms, &names, &n, err, cap);
    char shared[4200];
    sl_kv_shared_of(dir, shared, sizeof shared);
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        char storage[4400];
        snprintf(storage, sizeof storage, "%s/%s", dir, names[i]);
        rc = sl_kv_manifest_verify(&ms[i], storage, shared, err, cap);
    }
    s_free(ms, names, n);
    return rc;
}

int sl_kv_ckpt_gc(const char *shared_dir, const char *const *dirs, size_t n, size_t *removed,
                  char *err, size_t cap)
{
    if (removed)
        *removed = 0;
    struct stat st;
    if (stat(shared_dir, &st) != 0)
        return SL_OK; /* no store ever checkpointed */
    sl_kv_manifest_t *all = NULL;
    size_t nall = 0;
    int rc = SL_OK;
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        sl_kv_manifest_t *ms;
        size_t k;
        if ((rc = s_load(dirs[i], &ms, NULL, &k, err, cap)) != SL_OK) {
            s_free(ms, NULL, k);
            break;
        }
        sl_kv_manifest_t *na = realloc(all, (nall + k + 1) * sizeof *na);
        if (!na) {
            s_free(ms, NULL, k);
            rc = SL_NOMEM;
            break;
        }
        all = na;
        memcpy(all + nall, ms, k * sizeof *ms);
        nall += k;
        free(ms); /* the contents moved to all */
    }
    const sl_kv_manifest_t **ptrs = calloc(nall + 1, sizeof *ptrs);
    if (rc == SL_OK && !ptrs)
        rc = SL_NOMEM;
    char **gone = NULL;
    size_t ngone = 0;
    if (rc == SL_OK) {
        for (size_t i = 0; i < nall; i++)
            ptrs[i] = &all[i];
        rc = sl_kv_gc_list(shared_dir, ptrs, nall, &gone, &ngone, err, cap);
    }
    for (size_t i = 0; rc == SL_OK && i < ngone; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", shared_dir, gone[i]);
        if (unlink(path) == 0 && removed)
            (*removed)++;
    }
    if (gone)
        sl_kv_names_free(gone, ngone);
    free(ptrs);
    s_free(all, NULL, nall);
    return rc;
}

int sl_kv_ckpt_copy(const char *src, const char *dst, char *err, size_t cap)
{
    sl_kv_manifest_t *ms;
    char **names;
    size_t n;
    int rc = s_load(src, &ms, &names, &n, err, cap);
    char shared[4200], dshared[4200];
    sl_kv_shared_of(src, shared, sizeof shared);
    snprintf(dshared, sizeof dshared, "%s/shared", dst);
    if (rc == SL_OK && n && mkdir(dshared, 0755) != 0 && errno != EEXIST) {
        snprintf(err, cap, "cannot create %s: %s", dshared, strerror(errno));
        rc = SL_IO;
    }
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        char sdir[4400], ddir[4400];
        snprintf(sdir, sizeof sdir, "%s/%s", src, names[i]);
        snprintf(ddir, sizeof ddir, "%s/%s", dst, names[i]);
        if (mkdir(ddir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, cap, "cannot create %s: %s", ddir, strerror(errno));
            rc = SL_IO;
            break;
        }
        for (size_t f = 0; rc == SL_OK && f <= ms[i].n; f++) {
            const sl_kv_file_t *kf = f < ms[i].n ? &ms[i].files[f] : NULL;
            const char *name = kf ? kf->stored : SL_KV_MANIFEST_FILE; /* the manifest last */
            char a[4600], b[4600];
            snprintf(a, sizeof a, "%s/%s", kf && kf->shared ? shared : sdir, name);
            snprintf(b, sizeof b, "%s/%s", kf && kf->shared ? dshared : ddir, name);
            if (sl_fs_copy_atomic(a, b) != SL_OK) {
                snprintf(err, cap, "cannot copy %s to %s: %s", a, b, strerror(errno));
                rc = SL_IO;
            }
        }
    }
    s_free(ms, names, n);
    return rc;
}
