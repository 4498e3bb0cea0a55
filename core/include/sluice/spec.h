/* spec.h — a job spec: YAML text -> positioned tree -> list of named nodes.
 *
 * This layer knows the job-level structure: top-level fields (name,
 * parallelism, max_parallelism, params, sources, operators, sinks), that
 * every node has a unique name and a type, which nodes feed which
 * (input: / inputs:), that references resolve and that the graph has no
 * cycle. Type-specific fields of a node are left in its YAML mapping for
 * the planner (plan.h) to check, with positions for its errors.
 *
 * Parameters: any scalar may contain ${name} or ${name:-default}; values
 * come from sl_params_t (e.g. --param name=value). A reference with neither
 * a value nor a default is an error at the scalar's position.
 *
 * The loader treats the file as hostile: it caps the file size
 * (SL_SPEC_MAX_BYTES), nesting depth (SL_SPEC_MAX_DEPTH), node count and
 * alias expansion (aliases are rejected), and range-checks numbers. */
#ifndef SLUICE_SPEC_H
#define SLUICE_SPEC_H
#include <stdbool.h>

#include "sluice/diag.h"

#define SL_SPEC_MAX_BYTES (1024 * 1024)
#define SL_SPEC_MAX_DEPTH 32
#define SL_SPEC_MAX_NODES 100000
#define SL_MAX_PARALLELISM 1024

/* ---- parameters ------------------------------------------------------- */

typedef struct sl_params sl_params_t;
sl_params_t *sl_params_new(void);
void sl_params_destroy(sl_params_t **pp);
/* Adds "name=value" (as given to --param); SL_INVAL if there is no '=' or
 * the name is not [A-Za-z_][A-Za-z0-9_.-]*. Later values replace earlier. */
int sl_params_add_kv(sl_params_t *p, const char *kv);
int sl_params_set(sl_params_t *p, const char *name, const char *value);
/* Borrowed value or NULL. */
const char *sl_params_get(const sl_params_t *p, const char *name);
int sl_params_count(const sl_params_t *p);
/* Borrowed name / value of entry i. */
const char *sl_params_name(const sl_params_t *p, int i);
const char *sl_params_value(const sl_params_t *p, int i);

/* ---- YAML tree -------------------------------------------------------- */

typedef enum { SL_Y_SCALAR, SL_Y_SEQ, SL_Y_MAP } sl_ykind_t;

typedef struct sl_ynode sl_ynode_t;
struct sl_ynode {
    sl_ykind_t kind;
    int line, col;      /* 1-based position of the node's first character */
    char *str;          /* SL_Y_SCALAR: value after ${param} substitution */
    bool quoted;        /* SL_Y_SCALAR: written in quotes ("123" is a string) */
    int n;              /* SL_Y_SEQ / SL_Y_MAP: number of items */
    sl_ynode_t **items; /* SEQ: the items; MAP: the values */
    sl_ynode_t **keys;  /* MAP: the keys (scalars, with their positions) */
};

/* Value of key in a mapping, or NULL (also when m is not a mapping). */
const sl_ynode_t *sl_ynode_get(const sl_ynode_t *m, const char *key);
/* Key node of key in a mapping (for the position of errors), or NULL. */
const sl_ynode_t *sl_ynode_key(const sl_ynode_t *m, const char *key);
/* Scalar as an integer in [min, max]: 0, or an error recorded in d at the
 * node (wrong kind, not a number, out of range) and SL_SPEC returned. */
int sl_ynode_int(const sl_ynode_t *n, long long min, long long max, sl_diag_t *d, const char *what,
                 long long *out);
/* Scalar duration (500ms, 5s, 2m, 1h, 1d, or integer milliseconds) in
 * [0, max_ms] into *out (ms). Same error rules. */
int sl_ynode_duration(const sl_ynode_t *n, long long max_ms, sl_diag_t *d, const char *what,
                      long long *out);
/* Scalar as a bool (true/false/yes/no/on/off). Same error rules. */
int sl_ynode_bool(const sl_ynode_t *n, sl_diag_t *d, const char *what, bool *out);
/* Scalar text, or NULL with an error "what must be a string" recorded. */
const char *sl_ynode_str(const sl_ynode_t *n, sl_diag_t *d, const char *what);
/* Records an error for every key of mapping m not in allowed[n], with a
 * hint naming the closest allowed key. Returns the number of errors. */
int sl_ynode_check_keys(const sl_ynode_t *m, const char *const *allowed, int n, sl_diag_t *d,
                        const char *what);

/* ---- the spec ------------------------------------------------------------ */

typedef enum { SL_ROLE_SOURCE, SL_ROLE_OPERATOR, SL_ROLE_SINK } sl_role_t;

typedef struct {
    sl_role_t role;
    const char *name;            /* borrowed from the tree */
    const char *type;            /* borrowed; the node's `type:` */
    const sl_ynode_t *body;      /* the node's mapping (type-specific fields) */
    const sl_ynode_t *type_node; /* for positions of type errors */
    int ninputs;
    int *inputs;      /* indexes into sl_spec_t.nodes, ninputs entries */
    int *input_ports; /* per input: 0 = the node's output, 1 = its side output (`late:`) */
    const sl_ynode_t **input_nodes; /* the scalars naming each input */
    int parallelism;                /* the node's own, or 0 = job default */
} sl_spec_node_t;

typedef enum {
    SL_RESTART_NONE,              /* a failure fails the job */
    SL_RESTART_FIXED_DELAY,       /* up to `attempts` restarts, `delay` apart */
    SL_RESTART_EXPONENTIAL_DELAY, /* delays double from `delay` up to `max_delay`, unbounded */
    SL_RESTART_FAILURE_RATE,      /* restarts while failures per `interval` <= `max_failures` */
} sl_restart_t;

typedef struct sl_spec {
    char *file;          /* owned: the name used in diagnostics */
    const char *name;    /* job name (borrowed from tree) */
    int parallelism;     /* default parallelism, >= 1 (default 1) */
    int max_parallelism; /* key groups, default 128 */
    int nnodes;
    sl_spec_node_t *nodes;         /* sources, then operators, then sinks, in file order */
    int *topo;                     /* node indexes in topological order */
    const char *plugin;            /* `plugin:` (path of the .so, as written), or NULL */
    const sl_ynode_t *plugin_node; /* its position, or NULL */
    /* checkpoint: (docs/fault-tolerance.md); interval 0 = no checkpoints */
    long long ckpt_interval_ms, ckpt_timeout_ms, ckpt_min_pause_ms;
    int ckpt_retain; /* completed checkpoints kept */
    /* state: (docs/fault-tolerance.md): where keyed operators keep state */
    bool state_rocksdb;        /* backend rocksdb (default heap) */
    long long state_cache;     /* rocksdb block cache bytes (default 8 MB) */
    long long state_wbuf;      /* rocksdb write buffer bytes (default 4 MB) */
    long long state_key_cache; /* rocksdb: an operator's write-back cache of keys in front
                                  of its store, bytes (default 32 MB) */
    /* restart: */
    sl_restart_t restart;
    int restart_attempts;      /* fixed-delay (and exponential-delay when set): restarts */
    bool restart_attempts_set; /* `attempts:` was given */
    int restart_max_failures;  /* failure-rate: failures allowed per interval */
    long long restart_delay_ms, restart_max_delay_ms, restart_interval_ms;
    sl_ynode_t *root; /* owned: the whole tree */
} sl_spec_t;

/* Loads a spec from text (file is the name used in diagnostics). Every
 * error found is recorded in d. Returns 0 and *out, or SL_SPEC (or
 * SL_NOMEM) with *out NULL. Job-level checks only; see the header comment. */
int sl_spec_load(const char *file, const char *text, size_t len, const sl_params_t *params,
                 sl_diag_t *d, sl_spec_t **out);
/* Reads path (capped at SL_SPEC_MAX_BYTES) and loads it. An unreadable file
 * is recorded in d as "cannot read: <reason>" at 0:0. */
int sl_spec_load_file(const char *path, const sl_params_t *params, sl_diag_t *d, sl_spec_t **out);
void sl_spec_destroy(sl_spec_t **pp);
/* Index of the node called name, or -1. */
int sl_spec_find(const sl_spec_t *s, const char *name);
/* Index of the operator whose side output (`late: name`) is called name, or -1. */
int sl_spec_find_side(const sl_spec_t *s, const char *name);

#endif
