/* rocks_state.h — the RocksDB backend of keyed operators
 * (`state: {backend: rocksdb}`, docs/fault-tolerance.md).
 *
 * One store (sluice/kvstate.h) per keyed operator of a subtask, in the
 * subtask's local state directory. The operator decides what its keys and
 * values are; this module opens the store, takes its checkpoints and
 * restores them, rescaling included:
 *
 *   - a snapshot is the store's incremental checkpoint: its private files
 *     (MANIFEST, CURRENT, OPTIONS) go to <ckpt>/chk-N/kv-<node>-<subtask>/,
 *     its SST files to the job's <ckpt>/shared/ (each copied once: later
 *     checkpoints reference the files earlier ones stored). The snapshot
 *     stream carries the directory's name and the encoded manifest, which
 *     is also written beside the files (SL_KV_MANIFEST_FILE) so that the master can
 *     check a checkpoint's files and collect unreferenced shared ones;
 *   - a restore copies the files back (verifying size and sha256 of each)
 *     and opens the store: the first section restored becomes the store
 *     (key groups this subtask does not own are dropped), every further
 *     one (a rescale: every old subtask's) is opened aside and the owned
 *     key groups are copied in. */
#ifndef SLUICE_ROCKS_STATE_H
#define SLUICE_ROCKS_STATE_H
#include <stdbool.h>

#include "operator.h"
#include "sluice/kvstate.h"

/* True when the job keeps keyed state in RocksDB. */
bool sl_rstate_enabled(const sl_opctx_t *c);

/* Opens an empty store for the operator of c (anything left in its local
 * directory is removed first). Errors set c->err. */
int sl_rstate_open(sl_opctx_t *c, sl_kv_t **out);

/* Checkpoints kv for checkpoint c->checkpoint_id into c->ckpt_dir and writes
 * the handle to w: the last thing the operator writes. The flush and the
 * RocksDB checkpoint (hard links) happen now; with c->snap_async the copy
 * into storage and the handle are left to c->snap_defer (the task's
 * snapshot thread). Errors set c->err. */
int sl_rstate_snapshot(sl_opctx_t *c, sl_kv_t *kv, sl_snap_w_t *w);

/* Restores one snapshot section (written by sl_rstate_snapshot) from
 * c->restore_dir: into a new store when *kv is NULL, else merging the
 * owned key groups into *kv. A missing or corrupt file is SL_DATA. Errors
 * set c->err. */
int sl_rstate_restore(sl_opctx_t *c, sl_kv_t **kv, sl_snap_r_t *r);

/* The key groups subtask c owns: first..last (inclusive). */
void sl_rstate_owned(const sl_opctx_t *c, int *first, int *last);

/* Closes the store and removes its local directory; accepts NULL. */
void sl_rstate_close(sl_kv_t **kv);

#endif
