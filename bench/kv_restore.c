/* kv_restore.c — restore time of a RocksDB store (sluice/kvstate.h) from
 * checkpoint storage vs from the worker's local copy (local recovery,
 * docs/fault-tolerance.md): fills a store with MB megabytes of values,
 * takes one checkpoint keeping a local copy, then restores it RUNS times
 * each way and prints the median and min of each, wall time and CPU time
 * (user + sys of the process, RocksDB's threads included: the figure to
 * compare on a loaded machine).
 *
 *   kv_restore DIR [MB] [RUNS]     (DIR: a scratch directory; 64, 5)
 *
 * When DIR already holds the checkpoint of an earlier run (its manifest and
 * local copy), that checkpoint is restored again and MB is ignored (for
 * profiling the restore alone).
 *
 * Both ways verify every file against the manifest (size and sha256): from
 * storage while copying it, from the local copy by hashing the hard link.
 * Files are in the page cache in both cases (written just before). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_clock.h"
#include "sluice/kvstate.h"

/* Loads the manifest of an earlier run's checkpoint (DIR/manifest) into
 * *m: 0, or -1 when there is none. */
static int s_load(const char *dir, sl_kv_manifest_t *m)
{
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/manifest", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (sl_kv_manifest_decode(buf, len, m, err, sizeof err) != 0) {
        fprintf(stderr, "kv_restore: %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void s_rm(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kv_restore DIR [MB] [RUNS]\n");
        return 2;
    }
    const char *dir = argv[1];
    int mb = argc > 2 ? atoi(argv[2]) : 64, runs = argc > 3 ? atoi(argv[3]) : 5;
    if (mb < 1 || runs < 1 || runs > 100) {
        fprintf(stderr, "kv_restore: MB >= 1, RUNS 1..100\n");
        return 2;
    }
    char src[4096], storage[4096], shared[4096], keep[4096], dst[4096], err[1024];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(storage, sizeof storage, "%s/storage/chk-1/kv-1-0", dir);
    snprintf(shared, sizeof shared, "%s/storage/shared", dir);
    snprintf(keep, sizeof keep, "%s/local/chk-1/kv-1-0", dir);
    sl_kv_t *kv = NULL;
    sl_kv_manifest_t m;
    sl_kv_ckpt_stats_t st = {0};
    if (s_load(dir, &m) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            st.bytes += m.files[i].size;
            st.shared_copied += m.files[i].shared;
        }
        goto restore;
    }
    if (sl_kv_open(src, NULL, &kv, err, sizeof err)) {
        fprintf(stderr, "kv_restore: %s\n", err);
        return 1;
    }
    /* 1 KB values of pseudo-random bytes (incompressible), keys in 128 groups */
    uint8_t val[1024];
    uint64_t x = 88172645463325252ull;
    sl_kv_batch_t *b = sl_kv_batch_new();
    long n = (long)mb * 1024;
    for (long i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof val; k += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(val + k, &x, 8);
        }
        char key[32];
        int kl = snprintf(key, sizeof key, "key-%ld", i);
        sl_kv_batch_put(b, (uint16_t)(i % 128), key, (size_t)kl, val, sizeof val);
        if (sl_kv_batch_count(b) >= 1000 && sl_kv_batch_commit(kv, b)) {
            fprintf(stderr, "kv_restore: write failed\n");
            return 1;
        }
    }
    sl_kv_batch_commit(kv, b);
    sl_kv_batch_destroy(&b);
    if (sl_kv_checkpoint_keep(kv, storage, shared, keep, &m, &st, err, sizeof err) ||
        !st.local_kept) {
        fprintf(stderr, "kv_restore: checkpoint: %s\n", err);
        return 1;
    }
    sl_kv_close(&kv);
    uint8_t *enc;
    size_t elen;
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/manifest", dir);
    FILE *mf = sl_kv_manifest_encode(&m, &enc, &elen) == 0 ? fopen(mpath, "wb") : NULL;
    if (!mf || fwrite(enc, 1, elen, mf) != elen || fclose(mf) != 0) {
        fprintf(stderr, "kv_restore: cannot write %s\n", mpath);
        return 1;
    }
    free(enc);
restore:;
    double t_storage[100], t_local[100], c_storage[100], c_local[100];
    for (int r = 0; r < runs; r++) {
        for (int way = 0; way < 2; way++) {
            snprintf(dst, sizeof dst, "%s/dst-%d-%d", dir, r, way);
            sl_kv_t *out = NULL;
            double t0 = bench_now(), c0 = bench_cpu();
            int rc = way ? sl_kv_restore_local(&m, keep, dst, NULL, &out, err, sizeof err)
                         : sl_kv_restore(&m, storage, shared, dst, NULL, &out, err, sizeof err);
            double t = bench_now() - t0, c = bench_cpu() - c0;
            if (rc) {
                fprintf(stderr, "kv_restore: restore: %s\n", err);
                return 1;
            }
            sl_kv_close(&out);
            s_rm(dst);
            (way ? t_local : t_storage)[r] = t;
            (way ? c_local : c_storage)[r] = c;
        }
    }
    qsort(t_storage, (size_t)runs, sizeof(double), s_cmp);
    qsort(t_local, (size_t)runs, sizeof(double), s_cmp);
    qsort(c_storage, (size_t)runs, sizeof(double), s_cmp);
    qsort(c_local, (size_t)runs, sizeof(double), s_cmp);
    printf("state: %llu bytes in %zu files (%zu SSTs)\n", (unsigned long long)st.bytes, m.n,
           st.shared_copied);
    printf("| restore from | wall, median | wall, min | CPU, median | CPU, min |\n"
           "|---|---|---|---|---|\n");
    printf("| checkpoint storage (copy + sha256) | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n",
           t_storage[runs / 2] * 1e3, t_storage[0] * 1e3, c_storage[runs / 2] * 1e3,
           c_storage[0] * 1e3);
    printf("| local copy (hard links + sha256) | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n",
           t_local[runs / 2] * 1e3, t_local[0] * 1e3, c_local[runs / 2] * 1e3, c_local[0] * 1e3);
    sl_kv_manifest_free(&m);
    sl_kv_close(&kv);
    return 0;
}
