/* keyed_state.h — keyed state and timers of a process operator, in
 * memory or in RocksDB.
 *
 * The store holds, per key (the encoded key row), named states of three
 * kinds (a value, a list or a map of byte strings) and timers of two kinds
 * (event and processing time). Every state and timer call acts on the
 * current key, chosen by sl_kstate_select or by popping a timer; the
 * operator ends each call with sl_kstate_release, which frees the key once
 * it holds nothing. Due timers pop in (time, key bytes, registration)
 * order, so the order is a function of the timers only. A state name has
 * one kind for the whole store, fixed by its first use.
 *
 * Backends. By default every cell lives in memory. After
 * sl_kstate_set_store the cells live in a RocksDB store (sluice/kvstate.h)
 * instead: one entry per (key, state name) in the key's key group, whose
 * store key is the name, a zero byte and the key's bytes, and whose value is the
 * kind, the time of the last write and the cell's contents. A cell is read
 * on first use while its key is current and written back (or deleted) by
 * sl_kstate_release, so memory holds the current key's cells, the state
 * names and the timers: timers (and the keys that hold them) stay in
 * memory in both backends and are checkpointed by sl_kstate_snapshot.
 *
 * Time to live (sl_kstate_set_ttl): a cell whose last write is ttl or more
 * before the store's clock (sl_kstate_set_now) is absent for every call:
 * reads do not see it, the first call that touches it deletes it, and
 * sl_kstate_expire drops the ones in memory. Every write (set, append,
 * put, remove, clear) restarts it; reads do not. A list or map expires
 * as a whole.
 *
 * Errors are the negative codes of sluice/err.h, with a message in
 * sl_kstate_error. */
#ifndef SLUICE_KEYED_STATE_H
#define SLUICE_KEYED_STATE_H
#include <stddef.h>
#include <stdint.h>

#include "sluice/kvstate.h"
#include "sluice/snap.h"

typedef struct sl_kstate sl_kstate_t;

/* State kinds. */
typedef enum { SL_KS_VALUE = 1, SL_KS_LIST = 2, SL_KS_MAP = 3 } sl_ks_kind_t;
/* Timer kinds (the numbering of SL_UDF_EVENT_TIME / SL_UDF_PROCESSING_TIME). */
typedef enum { SL_KS_EVENT = 1, SL_KS_PROCESSING = 2 } sl_ks_timer_t;

/* Where a stored cell (rocksdb) keeps its last write time (ms since the
 * epoch, i64 little-endian): for the store's TTL compaction filter. */
#define SL_KS_TTL_OFFSET 1

/* Largest value, list item or map key or value (bytes). */
#define SL_KS_MAX_BYTES (64u * 1024u * 1024u)

sl_kstate_t *sl_kstate_new(void);
void sl_kstate_destroy(sl_kstate_t **pp);
/* Why the last failing call failed. */
const char *sl_kstate_error(const sl_kstate_t *s);

/* Makes key (encoded bytes, with its hash) current, creating it when
 * absent. Returns 0 or SL_NOMEM. */
int sl_kstate_select(sl_kstate_t *s, uint64_t hash, const uint8_t *key, uint32_t len);
/* The current key's bytes, or NULL when none is current. */
const uint8_t *sl_kstate_key(const sl_kstate_t *s, uint32_t *len);
/* Ends work on the current key: it is freed when it holds no state and no
 * timers. No key is current afterwards. With a store, writes the key's
 * changed cells back: 0, or the store's error (with a message). */
int sl_kstate_release(sl_kstate_t *s);
/* Keys held. */
int sl_kstate_nkeys(const sl_kstate_t *s);

/* Value state: get returns 1 and the bytes (valid until the state changes
 * or, with a store, the key is released), 0 when unset. The same holds
 * for the bytes of list_get, map_get and map_at. */
int sl_kstate_value_get(sl_kstate_t *s, const char *name, const void **data, uint32_t *len);
int sl_kstate_value_set(sl_kstate_t *s, const char *name, const void *data, uint32_t len);
int sl_kstate_value_clear(sl_kstate_t *s, const char *name);

/* List state: items in the order appended. */
int sl_kstate_list_append(sl_kstate_t *s, const char *name, const void *data, uint32_t len);
int sl_kstate_list_len(sl_kstate_t *s, const char *name);
/* 1 and item index, or 0 past the end. */
int sl_kstate_list_get(sl_kstate_t *s, const char *name, uint32_t index, const void **data,
                       uint32_t *len);
int sl_kstate_list_clear(sl_kstate_t *s, const char *name);

/* Map state, ordered by key bytes (memcmp; a prefix first). */
int sl_kstate_map_put(sl_kstate_t *s, const char *name, const void *key, uint32_t klen,
                      const void *val, uint32_t vlen);
/* 1 and the value, or 0 when absent. */
int sl_kstate_map_get(sl_kstate_t *s, const char *name, const void *key, uint32_t klen,
                      const void **val, uint32_t *vlen);
/* 1 removed, 0 absent. */
int sl_kstate_map_remove(sl_kstate_t *s, const char *name, const void *key, uint32_t klen);
int sl_kstate_map_len(sl_kstate_t *s, const char *name);
/* 1 and entry index in key order, or 0 past the end. */
int sl_kstate_map_at(sl_kstate_t *s, const char *name, uint32_t index, const void **key,
                     uint32_t *klen, const void **val, uint32_t *vlen);
/* Index of the first entry whose key is >= key (the length when none). */
int sl_kstate_map_seek(sl_kstate_t *s, const char *name, const void *key, uint32_t klen);
int sl_kstate_map_clear(sl_kstate_t *s, const char *name);

/* Timers of the current key. Setting one already set does nothing;
 * delete returns 1 when it was set, 0 when not. */
int sl_kstate_timer_set(sl_kstate_t *s, sl_ks_timer_t kind, int64_t time);
int sl_kstate_timer_delete(sl_kstate_t *s, sl_ks_timer_t kind, int64_t time);
/* The next timer of kind with time <= until, in (time, key bytes,
 * registration) order: removes it, makes its key current and returns 1
 * with *time; returns 0 when none is due. */
int sl_kstate_timer_next(sl_kstate_t *s, sl_ks_timer_t kind, int64_t until, int64_t *time);
/* Timers of kind set and not yet fired or deleted. */
size_t sl_kstate_timer_count(const sl_kstate_t *s, sl_ks_timer_t kind);
/* Drops every timer of kind (keys left empty are freed). */
void sl_kstate_timer_drop_all(sl_kstate_t *s, sl_ks_timer_t kind);

/* Keeps the cells in kv (borrowed, may be NULL until the first state call;
 * call again to replace it) with key groups of max_parallelism. Call it
 * before any state is set; 0 or SL_NOMEM. */
int sl_kstate_set_store(sl_kstate_t *s, sl_kv_t *kv, int max_parallelism);

/* Time to live of a cell after its last write, in ms (0 or less: none). */
void sl_kstate_set_ttl(sl_kstate_t *s, int64_t ttl_ms);
/* The clock of the time to live, in ms (the operator sets the wall clock
 * before each batch or timer; tests set their own). */
void sl_kstate_set_now(sl_kstate_t *s, int64_t now_ms);
/* Drops the expired cells held in memory (no key may be current); keys
 * left empty are freed. Returns how many cells it dropped. */
size_t sl_kstate_expire(sl_kstate_t *s);

/* Checkpoints. sl_kstate_snapshot writes the state names with their kinds,
 * then every key that holds state or timers: its key group (of
 * max_parallelism), its bytes, its cells (name, time of the last write,
 * then values, list items in order, map entries in key order) and its
 * timers (kind, time). With a store the cells are in the store (the
 * operator checkpoints it, sl_rstate_snapshot): the snapshot holds the
 * names and the keys with timers only. Due timers pop in
 * (time, key bytes) order whatever their registration, so the order of
 * timers survives a restore. Returns 0 or the writer's error. */
int sl_kstate_snapshot(const sl_kstate_t *s, sl_snap_w_t *w, int max_parallelism);

/* Checks the bytes of a restored key (an encoded key row) and gives its
 * hash (the one sl_kstate_select and the partitioner use); 0 or SL_DATA. */
typedef int (*sl_kstate_key_fn)(void *arg, const uint8_t *key, uint32_t len, uint64_t *hash);

/* Reads a snapshot of sl_kstate_snapshot into s (which may hold the keys
 * of other snapshots already: a rescale restores several), keeping the
 * keys whose key group subtask owns of parallelism. A key held already, a
 * key in the wrong key group, a name of two kinds or any other garbage
 * fails with SL_DATA and a message (sl_kstate_error); never crashes. No key
 * is current afterwards. */
int sl_kstate_restore(sl_kstate_t *s, sl_snap_r_t *r, int max_parallelism, int parallelism,
                      int subtask, sl_kstate_key_fn check, void *arg);

#endif
