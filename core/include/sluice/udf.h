/* udf.h — user functions in C: the one header a plugin is written against.
 *
 * A plugin is a shared object exporting
 *
 *     const sl_udf_plugin_t *sluice_plugin(void);
 *
 * which returns a static descriptor listing its functions. A job names the
 * plugin (`plugin: libmine.so`) and uses its functions in map, filter,
 * flat_map and process steps (`function: name`). The plugin needs nothing
 * from Sluice at link time: everything it may call comes through the
 * context.
 *
 * ABI: SL_UDF_ABI_VERSION changes whenever a struct or rule below changes;
 * a plugin built against a version outside [SL_UDF_ABI_MIN_VERSION,
 * SL_UDF_ABI_VERSION] is refused when the job is submitted. Version 1
 * (still loaded unchanged):
 *  - values are sl_udf_value_t (the same layout as the engine's values);
 *    strings passed in are borrowed for the call; strings returned must
 *    live in memory from ctx->host->alloc (valid until the batch is done)
 *    or in static storage;
 *  - a function may be called from several threads at once (one call per
 *    subtask at a time): keep no unsynchronised global state;
 *  - a function returns 0 (filter: 1 keep, 0 drop) or a negative number to
 *    fail the task, after ctx->host->error(ctx, "why").
 * Version 2 adds, and changes nothing of version 1 but the size of
 * sl_udf_function_t (the engine reads version-1 tables with their own
 * layout):
 *  - process functions (SL_UDF_PROCESS, `type: process`): keyed, called
 *    per record with the key, event time and watermark in the context,
 *    with per-key value, list and map state and event- and processing-time
 *    timers (host services below) and on_timer when a timer fires;
 *  - the members of sl_udf_host_t and sl_udf_ctx after those of version 1.
 * docs/udf.md#process-functions has the rules in full.
 */
#ifndef SLUICE_UDF_H
#define SLUICE_UDF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_UDF_ABI_VERSION 2
/* The oldest version still loaded: plugins built for it work unchanged. */
#define SL_UDF_ABI_MIN_VERSION 1

/* Field types (the numbering of the engine's sl_type_t). */
enum {
    SL_UDF_INT64 = 1,
    SL_UDF_DOUBLE = 2,
    SL_UDF_BOOL = 3,
    SL_UDF_STRING = 4,
    SL_UDF_TIMESTAMP = 5, /* int64 milliseconds since the Unix epoch */
};

/* A value; layout-compatible with the engine's sl_value_t. */
typedef struct {
    int type; /* SL_UDF_* when !is_null */
    bool is_null;
    uint32_t len; /* string length in bytes */
    union {
        int64_t i;
        double d;
        bool b;
        const char *s; /* not NUL-terminated */
    } u;
} sl_udf_value_t;

typedef struct {
    const char *name;
    int type; /* SL_UDF_* */
} sl_udf_field_t;

typedef struct sl_udf_ctx sl_udf_ctx_t;

/* Timer kinds (ABI 2). */
enum {
    SL_UDF_EVENT_TIME = 1,      /* fires when the watermark reaches its time */
    SL_UDF_PROCESSING_TIME = 2, /* fires when the wall clock (ms) reaches its time */
};

/* Times (ABI 2): the watermark before the first one, and at end of input. */
#define SL_UDF_TIME_MIN INT64_MIN
#define SL_UDF_TIME_MAX INT64_MAX

/* What the engine offers a function during a call. */
typedef struct {
    /* flat_map, process: emits one output row (nout values); returns 0 or < 0. */
    int (*emit)(sl_udf_ctx_t *ctx, const sl_udf_value_t *out);
    /* Scratch memory valid until the current batch is done; NULL on OOM. */
    void *(*alloc)(sl_udf_ctx_t *ctx, size_t size);
    /* Records why the function is about to return an error. */
    void (*error)(sl_udf_ctx_t *ctx, const char *message);

    /* ABI 2: keyed state and timers, in process functions only (NULL in
     * map, filter and flat_map calls). Everything is scoped to the current
     * key (ctx->key). A state is named (1..255 bytes, NUL-terminated) and
     * has one kind, fixed by its first use; values and map keys are byte
     * strings (at most 64 MiB). Pointers handed out stay valid until that
     * state changes or the call returns. Getters return 1 found, 0 absent;
     * setters 0; remove/delete 1 removed, 0 absent; lengths a count; all
     * return < 0 on an error (a message is recorded already: just return
     * the number). */
    int (*value_get)(sl_udf_ctx_t *ctx, const char *name, const void **data, uint32_t *len);
    int (*value_set)(sl_udf_ctx_t *ctx, const char *name, const void *data, uint32_t len);
    int (*value_clear)(sl_udf_ctx_t *ctx, const char *name);
    /* List state: append, length, item by index (0 = first appended), clear. */
    int (*list_append)(sl_udf_ctx_t *ctx, const char *name, const void *data, uint32_t len);
    int (*list_len)(sl_udf_ctx_t *ctx, const char *name);
    int (*list_get)(sl_udf_ctx_t *ctx, const char *name, uint32_t index, const void **data,
                    uint32_t *len);
    int (*list_clear)(sl_udf_ctx_t *ctx, const char *name);
    /* Map state, ordered by key bytes (memcmp, a prefix first): put
     * (replaces), get, remove, length, entry by index in key order, index
     * of the first key >= key (seek; = length when none), clear. */
    int (*map_put)(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen,
                   const void *val, uint32_t vlen);
    int (*map_get)(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen,
                   const void **val, uint32_t *vlen);
    int (*map_remove)(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen);
    int (*map_len)(sl_udf_ctx_t *ctx, const char *name);
    int (*map_at)(sl_udf_ctx_t *ctx, const char *name, uint32_t index, const void **key,
                  uint32_t *klen, const void **val, uint32_t *vlen);
    int (*map_seek)(sl_udf_ctx_t *ctx, const char *name, const void *key, uint32_t klen);
    int (*map_clear)(sl_udf_ctx_t *ctx, const char *name);
    /* Timers of the current key: kind SL_UDF_EVENT_TIME or
     * SL_UDF_PROCESSING_TIME, time in ms. Setting a timer that is already
     * set does nothing (one timer per key, kind and time). */
    int (*timer_set)(sl_udf_ctx_t *ctx, int kind, int64_t time);
    int (*timer_delete)(sl_udf_ctx_t *ctx, int kind, int64_t time);
} sl_udf_host_t;

struct sl_udf_ctx {
    const sl_udf_host_t *host;
    void *user; /* reserved: always NULL in this ABI version */
    /* ABI 2, process functions only (zero in other calls): */
    const sl_udf_value_t *key; /* the current key: the values of the node's `key:` fields */
    int nkey;
    int64_t time;      /* the record's event time (wall clock with time: processing);
                        * in on_timer, the timer's time */
    int64_t watermark; /* the operator's watermark: SL_UDF_TIME_MIN before the first,
                        * SL_UDF_TIME_MAX at end of input */
};

typedef enum {
    SL_UDF_MAP = 1,
    SL_UDF_FILTER = 2,
    SL_UDF_FLAT_MAP = 3,
    SL_UDF_PROCESS = 4, /* ABI 2: keyed, with state and timers */
} sl_udf_kind_t;

typedef struct {
    const char *name; /* what `function:` names */
    sl_udf_kind_t kind;
    /* The input fields the function needs, by name (the engine checks them
     * against the input schema and passes them in this order). */
    const sl_udf_field_t *in;
    int nin;
    /* map / flat_map: the output fields (filter: output = input). */
    const sl_udf_field_t *out;
    int nout;
    /* map: fill out[nout], return 0. filter: return 1 keep, 0 drop.
     * flat_map and process: call ctx->host->emit for each output row
     * (process: out is nout values of scratch for that), return 0. */
    int (*call)(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out);
    /* ABI 2, process only (NULL otherwise, and when it sets no timers): a
     * timer of the current key (ctx->key) fired; may use state, timers and
     * emit; returns 0 or < 0. */
    int (*on_timer)(sl_udf_ctx_t *ctx, int64_t time, int kind);
} sl_udf_function_t;

typedef struct {
    uint32_t abi_version; /* SL_UDF_ABI_VERSION */
    const char *name;
    const char *version;
    int nfunctions;
    const sl_udf_function_t *functions;
} sl_udf_plugin_t;

#endif
