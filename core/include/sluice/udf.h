/* udf.h — user functions in C: the one header a plugin is written against.
 *
 * A plugin is a shared object exporting
 *
 *     const sl_udf_plugin_t *sluice_plugin(void);
 *
 * which returns a static descriptor listing its functions. A job names the
 * plugin (`plugin: libmine.so`) and uses its functions in map, filter and
 * flat_map steps (`function: name`). The plugin needs nothing from Sluice
 * at link time: everything it may call comes through the context.
 *
 * ABI: SL_UDF_ABI_VERSION changes whenever a struct or rule below changes;
 * a plugin built against another version is refused when the job is
 * submitted. Version 1:
 *  - values are sl_udf_value_t (the same layout as the engine's values);
 *    strings passed in are borrowed for the call; strings returned must
 *    live in memory from ctx->host->alloc (valid until the batch is done)
 *    or in static storage;
 *  - a function may be called from several threads at once (one call per
 *    subtask at a time): keep no unsynchronised global state;
 *  - a function returns 0 (filter: 1 keep, 0 drop) or a negative number to
 *    fail the task, after ctx->host->error(ctx, "why").
 */
#ifndef SLUICE_UDF_H
#define SLUICE_UDF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_UDF_ABI_VERSION 1

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

/* What the engine offers a function during a call. */
typedef struct {
    /* flat_map: emits one output row (nout values); returns 0 or < 0. */
    int (*emit)(sl_udf_ctx_t *ctx, const sl_udf_value_t *out);
    /* Scratch memory valid until the current batch is done; NULL on OOM. */
    void *(*alloc)(sl_udf_ctx_t *ctx, size_t size);
    /* Records why the function is about to return an error. */
    void (*error)(sl_udf_ctx_t *ctx, const char *message);
} sl_udf_host_t;

struct sl_udf_ctx {
    const sl_udf_host_t *host;
    void *user; /* per-subtask pointer from open(), or NULL */
};

typedef enum { SL_UDF_MAP = 1, SL_UDF_FILTER = 2, SL_UDF_FLAT_MAP = 3 } sl_udf_kind_t;

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
     * flat_map: call ctx->host->emit for each output row, return 0. */
    int (*call)(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out);
} sl_udf_function_t;

typedef struct {
    uint32_t abi_version; /* SL_UDF_ABI_VERSION */
    const char *name;
    const char *version;
    int nfunctions;
    const sl_udf_function_t *functions;
} sl_udf_plugin_t;

#endif
