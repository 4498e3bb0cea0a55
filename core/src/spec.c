/* spec.c — the job-spec loader: YAML text -> positioned tree -> checked list
 * of named nodes in topological order (see sluice/spec.h).
 *
 * Called by sl_plan_load() behind `validate`, `plan`, `run` and the workers;
 * the planner then checks the type-specific fields left in each node's
 * mapping. The text is hostile until proven otherwise.
 *
 * Passes, each recording every problem it finds into the sl_diag_t:
 *   1. s_parse: libyaml events -> sl_ynode_t tree with 1-based positions.
 *      Stops at the first structural problem (syntax error, alias, nesting
 *      deeper than SL_SPEC_MAX_DEPTH, more than SL_SPEC_MAX_NODES nodes, a
 *      second document); duplicate and non-scalar keys are reported and the
 *      pair dropped. Tags are ignored; anchors are allowed, aliases are not
 *      (no expansion means no billion laughs).
 *   2. s_subst_tree: ${name} / ${name:-default} in every value scalar (keys
 *      and the params: section are left alone). A value comes from --param,
 *      else from the job's params: section, else from the default; ${x:-d}
 *      uses d also when the value is empty (as the shell does). `$${` is a
 *      literal `${`. Total expansion is capped (S_MAX_EXPANSION).
 *   3. job-level checks: top-level fields, every node (name, type, input /
 *      inputs, parallelism), unique names, input resolution, cycles, and the
 *      topological order (Kahn, ties broken by node index = file order).
 * The load fails when any pass recorded an error. Recursion over the tree
 * is bounded by SL_SPEC_MAX_DEPTH. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "sluice/err.h"

#define S_MAX_EXPANSION (16 * 1024 * 1024) /* bytes all ${...} of a file may produce */
#define S_MAX_HINTS 64                     /* did-you-mean searches per load (O(nodes) each) */
#define S_MAX_MSG 512                      /* longest message recorded */
#define S_DEFAULT_MAX_PARALLELISM 128
#define S_MAX_MAX_PARALLELISM 32768

/* ---- diagnostics helpers ------------------------------------------------ */

/* Records a formatted error in d (if any); true when it was recorded, so a
 * hint may be attached to it (sl_diag_hint goes to the last entry). */
static bool s_vrecord(sl_diag_t *d, int line, int col, const char *fmt, va_list ap)
{
    if (!d)
        return false;
    char msg[S_MAX_MSG];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int before = sl_diag_count(d);
    sl_diag_error(d, line, col, "%s", msg);
    return sl_diag_count(d) > before;
}

__attribute__((format(printf, 4, 5))) static bool s_record(sl_diag_t *d, int line, int col,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = s_vrecord(d, line, col, fmt, ap);
    va_end(ap);
    return ok;
}

static const char *s_kind_name(sl_ykind_t k)
{
    return k == SL_Y_MAP ? "a mapping" : k == SL_Y_SEQ ? "a list" : "a scalar";
}

/* ---- parameters ----------------------------------------------------------- */

struct sl_params {
    char **names;  /* owned names, n entries */
    char **values; /* owned values, parallel to names */
    int n, cap;    /* used and allocated entries */
};

sl_params_t *sl_params_new(void)
{
    return calloc(1, sizeof(sl_params_t));
}

void sl_params_destroy(sl_params_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_params_t *p = *pp;
    for (int i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->values[i]);
    }
    free(p->names);
    free(p->values);
    free(p);
    *pp = NULL;
}

/* [A-Za-z_][A-Za-z0-9_.-]* over len bytes (ASCII only, locale-free). */
static bool s_valid_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool rest = (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
        if (!alpha && (i == 0 || !rest))
            return false;
    }
    return true;
}

static int s_params_setn(sl_params_t *p, const char *name, size_t nlen, const char *value)
{
    if (!p || !name || !value || !s_valid_name(name, nlen))
        return SL_INVAL;
    char *v = strdup(value);
    if (!v)
        return SL_NOMEM;
    for (int i = 0; i < p->n; i++) {
        if (strlen(p->names[i]) == nlen && memcmp(p->names[i], name, nlen) == 0) {
            free(p->values[i]);
            p->values[i] = v;
            return 0;
        }
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        char **nn = realloc(p->names, (size_t)cap * sizeof *nn);
        if (!nn) {
            free(v);
            return SL_NOMEM;
        }
        p->names = nn;
        char **nv = realloc(p->values, (size_t)cap * sizeof *nv);
        if (!nv) {
            free(v);
            return SL_NOMEM;
        }
        p->values = nv;
        p->cap = cap;
    }
    char *n = strndup(name, nlen);
    if (!n) {
        free(v);
        return SL_NOMEM;
    }
    p->names[p->n] = n;
    p->values[p->n] = v;
    p->n++;
    return 0;
}

int sl_params_add_kv(sl_params_t *p, const char *kv)
{
    if (!kv)
        return SL_INVAL;
    const char *eq = strchr(kv, '=');
    if (!eq)
        return SL_INVAL;
    return s_params_setn(p, kv, (size_t)(eq - kv), eq + 1);
}

int sl_params_set(sl_params_t *p, const char *name, const char *value)
{
    if (!name)
        return SL_INVAL;
    return s_params_setn(p, name, strlen(name), value);
}

/* Value of the name of nlen bytes, or NULL. */
static const char *s_params_getn(const sl_params_t *p, const char *name, size_t nlen)
{
    if (!p || !name)
        return NULL;
    for (int i = 0; i < p->n; i++)
        if (strncmp(p->names[i], name, nlen) == 0 && p->names[i][nlen] == '\0')
            return p->values[i];
    return NULL;
}

const char *sl_params_get(const sl_params_t *p, const char *name)
{
    return name ? s_params_getn(p, name, strlen(name)) : NULL;
}

int sl_params_count(const sl_params_t *p)
{
    return p ? p->n : 0;
}

const char *sl_params_name(const sl_params_t *p, int i)
{
    return p && i >= 0 && i < p->n ? p->names[i] : NULL;
}

const char *sl_params_value(const sl_params_t *p, int i)
{
    return p && i >= 0 && i < p->n ? p->values[i] : NULL;
}

/* ---- YAML tree helpers ---------------------------------------------------- */

static void s_ynode_free(sl_ynode_t *n)
{
    if (!n)
        return;
    if (n->kind == SL_Y_SCALAR) {
        free(n->str);
    } else {
        for (int i = 0; i < n->n; i++) {
            s_ynode_free(n->items[i]);
            if (n->keys)
                s_ynode_free(n->keys[i]);
        }
        free(n->items);
        free(n->keys);
    }
    free(n);
}

static int s_key_index(const sl_ynode_t *m, const char *key)
{
    if (!m || m->kind != SL_Y_MAP || !key)
        return -1;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i]->str, key) == 0)
            return i;
    return -1;
}

const sl_ynode_t *sl_ynode_get(const sl_ynode_t *m, const char *key)
{
    int i = s_key_index(m, key);
    return i < 0 ? NULL : m->items[i];
}

const sl_ynode_t *sl_ynode_key(const sl_ynode_t *m, const char *key)
{
    int i = s_key_index(m, key);
    return i < 0 ? NULL : m->keys[i];
}

/* A plain (unquoted) scalar that YAML reads as null: empty, ~ or null. */
static bool s_is_null(const sl_ynode_t *n)
{
    return n && n->kind == SL_Y_SCALAR && !n->quoted &&
           (n->str[0] == '\0' || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0);
}

int sl_ynode_int(const sl_ynode_t *n, long long min, long long max, sl_diag_t *d, const char *what,
                 long long *out)
{
    what = what ? what : "value";
    if (!n) {
        s_record(d, 0, 0, "%s is missing", what);
        return SL_SPEC;
    }
    if (n->kind != SL_Y_SCALAR) {
        s_record(d, n->line, n->col, "%s must be an integer, not %s", what, s_kind_name(n->kind));
        return SL_SPEC;
    }
    const char *s = n->str;
    if (n->quoted) {
        if (s_record(d, n->line, n->col, "%s must be an integer, not the string \"%.40s\"", what,
                     s) &&
            d)
            sl_diag_hint(d, "remove the quotes");
        return SL_SPEC;
    }
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    size_t digits = strspn(s + i, "0123456789");
    if (digits == 0 || s[i + digits] != '\0') {
        bool looks_float = strspn(s + i, "0123456789.eE+-") == strlen(s + i) &&
                           strpbrk(s + i, "0123456789") && strpbrk(s + i, ".eE");
        if (looks_float)
            s_record(d, n->line, n->col, "%s must be a whole number (got %.40s)", what, s);
        else
            s_record(d, n->line, n->col, "%s must be an integer (got '%.40s')", what, s);
        return SL_SPEC;
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        s_record(d, n->line, n->col, "%s must be between %lld and %lld (got %.40s)", what, min, max,
                 s);
        return SL_SPEC;
    }
    if (out)
        *out = v;
    return 0;
}

int sl_ynode_duration(const sl_ynode_t *n, long long max_ms, sl_diag_t *d, const char *what,
                      long long *out)
{
    what = what ? what : "duration";
    if (!n || n->kind != SL_Y_SCALAR) {
        s_record(d, n ? n->line : 0, n ? n->col : 0,
                 "%s must be a duration like 500ms, 5s, 2m or 1h", what);
        return SL_SPEC;
    }
    const char *s = n->str;
    size_t digits = strspn(s, "0123456789");
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    long long mult = 0;
    for (size_t k = 0; digits && k < sizeof units / sizeof *units; k++)
        if (strcmp(s + digits, units[k].unit) == 0)
            mult = units[k].ms;
    if (!digits || !mult || digits > 15) {
        if (s_record(d, n->line, n->col,
                     "%s must be a duration like 500ms, 5s, 2m or 1h (got '%.40s')", what, s) &&
            d)
            sl_diag_hint(d, "units are ms, s, m, h and d; a plain integer is milliseconds");
        return SL_SPEC;
    }
    long long v = strtoll(s, NULL, 10);
    if (v > max_ms / mult) {
        s_record(d, n->line, n->col, "%s is too long (at most %lld ms)", what, max_ms);
        return SL_SPEC;
    }
    *out = v * mult;
    return 0;
}

int sl_ynode_bool(const sl_ynode_t *n, sl_diag_t *d, const char *what, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    what = what ? what : "value";
    if (!n) {
        s_record(d, 0, 0, "%s is missing", what);
        return SL_SPEC;
    }
    if (n->kind == SL_Y_SCALAR && !n->quoted) {
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(n->str, yes[i]) == 0 || strcasecmp(n->str, no[i]) == 0) {
                if (out)
                    *out = strcasecmp(n->str, yes[i]) == 0;
                return 0;
            }
        }
    }
    if (n->kind == SL_Y_SCALAR)
        s_record(d, n->line, n->col, "%s must be true or false (got %s%.40s%s)", what,
                 n->quoted ? "\"" : "'", n->str, n->quoted ? "\"" : "'");
    else
        s_record(d, n->line, n->col, "%s must be true or false, not %s", what,
                 s_kind_name(n->kind));
    return SL_SPEC;
}

const char *sl_ynode_str(const sl_ynode_t *n, sl_diag_t *d, const char *what)
{
    what = what ? what : "value";
    if (!n) {
        s_record(d, 0, 0, "%s must be a string (it is missing)", what);
        return NULL;
    }
    if (n->kind != SL_Y_SCALAR) {
        s_record(d, n->line, n->col, "%s must be a string, not %s", what, s_kind_name(n->kind));
        return NULL;
    }
    return n->str;
}

int sl_ynode_check_keys(const sl_ynode_t *m, const char *const *allowed, int n, sl_diag_t *d,
                        const char *what)
{
    if (!m || m->kind != SL_Y_MAP)
        return 0;
    int bad = 0;
    for (int i = 0; i < m->n; i++) {
        const sl_ynode_t *k = m->keys[i];
        bool ok = false;
        for (int j = 0; j < n && !ok; j++)
            ok = strcmp(k->str, allowed[j]) == 0;
        if (ok)
            continue;
        bad++;
        bool rec =
            s_record(d, k->line, k->col, "unknown %s '%.80s'", what ? what : "field", k->str);
        const char *best = sl_closest(k->str, allowed, n);
        if (rec && best)
            sl_diag_hint(d, "did you mean '%s'?", best);
    }
    return bad;
}

/* ---- pass 1: parsing -------------------------------------------------------- */

typedef struct {
    sl_ynode_t *node; /* container being filled (owned until attached) */
    int cap;          /* allocated entries of node->items (and node->keys) */
    sl_ynode_t *key;  /* MAP: key waiting for its value (owned), or NULL */
    bool skip;        /* MAP: the next value belongs to a rejected key */
} s_frame_t;

typedef struct {
    const char *name;  /* parameter name (borrowed from the tree) */
    const char *value; /* its default, or NULL when declared without one */
} s_fparam_t;

typedef struct {
    const char *text;                   /* the whole input */
    size_t len;                         /* its length */
    sl_diag_t *d;                       /* where errors go (may be NULL) */
    int nerr;                           /* errors found by this load, recorded or not */
    int nnodes;                         /* YAML nodes created so far */
    int depth;                          /* frames in use */
    s_frame_t stack[SL_SPEC_MAX_DEPTH]; /* open containers, outermost first */
    sl_ynode_t *root;                   /* the document's root once complete (owned) */
    const sl_params_t *params;          /* --param values (may be NULL) */
    s_fparam_t *fparams;                /* params: section sorted by name (owned array) */
    int nfparams;                       /* entries of fparams */
    size_t expanded;                    /* bytes produced by ${...} so far */
    int hints;                          /* did-you-mean searches done */
} s_ctx_t;

__attribute__((format(printf, 4, 5))) static bool s_err(s_ctx_t *c, int line, int col,
                                                        const char *fmt, ...)
{
    c->nerr++;
    va_list ap;
    va_start(ap, fmt);
    bool ok = s_vrecord(c->d, line, col, fmt, ap);
    va_end(ap);
    return ok;
}

/* Counts the error a public sl_ynode_* helper just recorded. */
static int s_count(s_ctx_t *c, int rc)
{
    if (rc != 0)
        c->nerr++;
    return rc;
}

static sl_ynode_t *s_node_new(s_ctx_t *c, sl_ykind_t kind, yaml_mark_t m, int *rc)
{
    if (++c->nnodes > SL_SPEC_MAX_NODES) {
        s_err(c, (int)m.line + 1, (int)m.column + 1, "too many YAML nodes (limit %d)",
              SL_SPEC_MAX_NODES);
        *rc = SL_SPEC;
        return NULL;
    }
    sl_ynode_t *n = calloc(1, sizeof *n);
    if (!n) {
        *rc = SL_NOMEM;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

/* Hands n (owned) to the innermost open container, or makes it the root. */
static int s_attach(s_ctx_t *c, sl_ynode_t *n)
{
    if (c->depth == 0) {
        s_ynode_free(c->root); /* cannot happen: one root per document */
        c->root = n;
        return 0;
    }
    s_frame_t *f = &c->stack[c->depth - 1];
    sl_ynode_t *p = f->node;
    if (p->kind == SL_Y_MAP && !f->key && !f->skip) {
        if (n->kind != SL_Y_SCALAR) {
            s_err(c, n->line, n->col, "mapping keys must be plain strings, not %s",
                  s_kind_name(n->kind));
            s_ynode_free(n);
            f->skip = true;
            return 0;
        }
        f->key = n;
        return 0;
    }
    if (f->skip) {
        s_ynode_free(n);
        f->skip = false;
        return 0;
    }
    if (p->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 4;
        sl_ynode_t **items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) {
            s_ynode_free(n);
            return SL_NOMEM;
        }
        p->items = items;
        if (p->kind == SL_Y_MAP) {
            sl_ynode_t **keys = realloc(p->keys, (size_t)cap * sizeof *keys);
            if (!keys) {
                s_ynode_free(n);
                return SL_NOMEM;
            }
            p->keys = keys;
        }
        f->cap = cap;
    }
    p->items[p->n] = n;
    if (p->kind == SL_Y_MAP) {
        p->keys[p->n] = f->key;
        f->key = NULL;
    }
    p->n++;
    return 0;
}

typedef struct {
    const char *k; /* key text */
    int i;         /* index in the mapping (file order) */
} s_kref_t;

static int s_kref_cmp(const void *a, const void *b)
{
    const s_kref_t *x = a, *y = b;
    int r = strcmp(x->k, y->k);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

/* Reports every key of m that repeats an earlier one (at the repeat) and
 * drops those pairs. Sorting keeps a hostile 50000-key mapping fast. */
static int s_map_dedupe(s_ctx_t *c, sl_ynode_t *m)
{
    if (m->n < 2)
        return 0;
    s_kref_t *r = malloc((size_t)m->n * sizeof *r);
    bool *drop = calloc((size_t)m->n, sizeof *drop);
    if (!r || !drop) {
        free(r);
        free(drop);
        return SL_NOMEM;
    }
    for (int i = 0; i < m->n; i++)
        r[i] = (s_kref_t){.k = m->keys[i]->str, .i = i};
    qsort(r, (size_t)m->n, sizeof *r, s_kref_cmp);
    int first = 0;
    for (int k = 1; k < m->n; k++) {
        if (strcmp(r[k].k, r[first].k) != 0) {
            first = k;
            continue;
        }
        const sl_ynode_t *dup = m->keys[r[k].i], *orig = m->keys[r[first].i];
        if (s_err(c, dup->line, dup->col, "duplicate key '%.80s'", dup->str))
            sl_diag_hint(c->d, "first defined at line %d:%d", orig->line, orig->col);
        drop[r[k].i] = true;
    }
    int w = 0;
    for (int i = 0; i < m->n; i++) {
        if (drop[i]) {
            s_ynode_free(m->keys[i]);
            s_ynode_free(m->items[i]);
            continue;
        }
        m->keys[w] = m->keys[i];
        m->items[w] = m->items[i];
        w++;
    }
    m->n = w;
    free(r);
    free(drop);
    return 0;
}

/* Converts a byte offset to a 1-based line and column (in characters). */
static void s_offset_pos(const char *text, size_t len, size_t off, int *line, int *col)
{
    int l = 1, cl = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            cl = 1;
        } else if ((ch & 0xC0) != 0x80) {
            cl++;
        }
    }
    *line = l;
    *col = cl;
}

static int s_yaml_error(s_ctx_t *c, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return SL_NOMEM;
    case YAML_READER_ERROR: {
        int line, col;
        s_offset_pos(c->text, c->len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            s_err(c, line, col, "invalid text: %s (byte 0x%02x)", problem, p->problem_value);
        else
            s_err(c, line, col, "invalid text: %s", problem);
        return SL_SPEC;
    }
    default: {
        bool rec = s_err(c, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                         "YAML syntax error: %s", problem);
        if (rec && p->context)
            sl_diag_hint(c->d, "%s at line %d:%d", p->context, (int)p->context_mark.line + 1,
                         (int)p->context_mark.column + 1);
        return SL_SPEC;
    }
    }
}

/* Handles one event: 0 to go on, 1 at the end of the stream, or an error. */
static int s_event(s_ctx_t *c, const yaml_event_t *ev, int *ndocs)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    int rc = 0;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if ((*ndocs)++ > 0) {
            s_err(c, line, col, "a second YAML document: a job spec is one document");
            return SL_SPEC;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        if (s_err(c, line, col, "YAML aliases are not supported (*%.40s)",
                  (const char *)ev->data.alias.anchor))
            sl_diag_hint(c->d, "repeat the value instead of referring to an anchor");
        return SL_SPEC;
    case YAML_SCALAR_EVENT: {
        sl_ynode_t *n = s_node_new(c, SL_Y_SCALAR, ev->start_mark, &rc);
        if (!n)
            return rc;
        const char *v = (const char *)ev->data.scalar.value;
        size_t vlen = ev->data.scalar.length;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->str = strndup(v, vlen);
        if (!n->str) {
            free(n);
            return SL_NOMEM;
        }
        if (memchr(v, '\0', vlen))
            s_err(c, line, col, "strings must not contain NUL characters");
        return s_attach(c, n);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (c->depth == SL_SPEC_MAX_DEPTH) {
            s_err(c, line, col, "nesting too deep (limit %d levels)", SL_SPEC_MAX_DEPTH);
            return SL_SPEC;
        }
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        sl_ynode_t *n = s_node_new(c, map ? SL_Y_MAP : SL_Y_SEQ, ev->start_mark, &rc);
        if (!n)
            return rc;
        c->stack[c->depth++] = (s_frame_t){.node = n};
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        if (c->depth == 0)
            return SL_SPEC; /* libyaml never does this */
        s_frame_t f = c->stack[--c->depth];
        s_ynode_free(f.key); /* none: libyaml always emits a value */
        if (f.node->kind == SL_Y_MAP && (rc = s_map_dedupe(c, f.node)) != 0) {
            s_ynode_free(f.node);
            return rc;
        }
        return s_attach(c, f.node);
    }
    default:
        return 0;
    }
}

/* Builds c->root from the text. 0, SL_SPEC (stopped at a structural
 * problem, already recorded) or SL_NOMEM; on failure nothing is kept. */
static int s_parse(s_ctx_t *c)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return SL_NOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)c->text, c->len);
    int ndocs = 0, rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = s_yaml_error(c, &p);
            break;
        }
        rc = s_event(c, &ev, &ndocs);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc == 1)
        return 0;
    for (int i = 0; i < c->depth; i++) {
        s_ynode_free(c->stack[i].node);
        s_ynode_free(c->stack[i].key);
    }
    c->depth = 0;
    s_ynode_free(c->root);
    c->root = NULL;
    return rc;
}

/* ---- pass 2: parameters ------------------------------------------------------ */

static int s_fparam_cmp(const void *a, const void *b)
{
    return strcmp(((const s_fparam_t *)a)->name, ((const s_fparam_t *)b)->name);
}

/* Reads the job's params: section (name: default) into c->fparams. */
static int s_load_fparams(s_ctx_t *c, const sl_ynode_t *sec)
{
    if (!sec || s_is_null(sec))
        return 0;
    if (sec->kind != SL_Y_MAP) {
        s_err(c, sec->line, sec->col, "params must be a mapping of name: default value");
        return 0;
    }
    c->fparams = calloc((size_t)(sec->n ? sec->n : 1), sizeof *c->fparams);
    if (!c->fparams)
        return SL_NOMEM;
    for (int i = 0; i < sec->n; i++) {
        const sl_ynode_t *k = sec->keys[i], *v = sec->items[i];
        if (!s_valid_name(k->str, strlen(k->str))) {
            if (s_err(c, k->line, k->col, "invalid parameter name '%.80s'", k->str))
                sl_diag_hint(c->d, "names are letters, digits, '_', '.' and '-'");
            continue;
        }
        if (v->kind != SL_Y_SCALAR) {
            s_err(c, v->line, v->col, "default of parameter '%.80s' must be a string, not %s",
                  k->str, s_kind_name(v->kind));
            continue;
        }
        c->fparams[c->nfparams++] =
            (s_fparam_t){.name = k->str, .value = s_is_null(v) ? NULL : v->str};
    }
    qsort(c->fparams, (size_t)c->nfparams, sizeof *c->fparams, s_fparam_cmp);
    return 0;
}

/* Looks the name of nlen bytes up: --param first, then params:. *declared
 * tells whether params: names it (even without a default). */
static const char *s_param_lookup(const s_ctx_t *c, const char *name, size_t nlen, bool *declared)
{
    *declared = false;
    const char *v = s_params_getn(c->params, name, nlen);
    if (v)
        return v;
    int lo = 0, hi = c->nfparams - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const char *k = c->fparams[mid].name;
        int r = strncmp(name, k, nlen);
        if (r == 0 && k[nlen] != '\0')
            r = -1; /* name is a proper prefix of k */
        if (r == 0) {
            *declared = true;
            return c->fparams[mid].value;
        }
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

typedef struct {
    char *p;       /* owned text, NUL-terminated */
    size_t n, cap; /* used (without NUL) and allocated bytes */
} s_buf_t;

static int s_buf_add(s_buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return SL_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* Replaces the ${...} references of scalar n. On an error the text is left
 * as written (the load fails anyway). */
static int s_subst(s_ctx_t *c, sl_ynode_t *n)
{
    const char *s = n->str;
    if (!strstr(s, "${"))
        return 0;
    s_buf_t b = {0};
    int rc = 0;
    size_t i = 0, len = strlen(s);
    while (i < len && rc == 0) {
        const char *ref = strstr(s + i, "${");
        if (!ref) {
            rc = s_buf_add(&b, s + i, len - i);
            break;
        }
        size_t at = (size_t)(ref - s);
        if (at > i && s[at - 1] == '$') { /* $${ is a literal ${ */
            rc = s_buf_add(&b, s + i, at - 1 - i);
            if (rc == 0)
                rc = s_buf_add(&b, "${", 2);
            i = at + 2;
            continue;
        }
        rc = s_buf_add(&b, s + i, at - i);
        if (rc)
            break;
        const char *body = ref + 2, *end = strchr(body, '}');
        if (!end) {
            if (s_err(c, n->line, n->col, "unterminated '${' in '%.60s'", s))
                sl_diag_hint(c->d, "write ${name} or ${name:-default}");
            rc = SL_SPEC;
            break;
        }
        size_t nlen = strspn(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789_.-");
        const char *after = body + nlen, *dflt = NULL;
        if (after[0] == ':' && after[1] == '-')
            dflt = after + 2;
        if (!s_valid_name(body, nlen) || (after != end && !dflt)) {
            if (s_err(c, n->line, n->col, "invalid parameter reference '%.*s'",
                      (int)((end - ref + 1) < 60 ? end - ref + 1 : 60), ref))
                sl_diag_hint(c->d, "write ${name} or ${name:-default}");
            rc = SL_SPEC;
            break;
        }
        bool declared;
        const char *v = s_param_lookup(c, body, nlen, &declared);
        if (dflt && (!v || !*v))
            v = dflt;
        size_t vlen = v == dflt ? (size_t)(end - dflt) : v ? strlen(v) : 0;
        if (!v) {
            bool rec = declared ? s_err(c, n->line, n->col, "parameter '%.*s' has no value",
                                        (int)(nlen < 80 ? nlen : 80), body)
                                : s_err(c, n->line, n->col, "unknown parameter '%.*s'",
                                        (int)(nlen < 80 ? nlen : 80), body);
            if (rec)
                sl_diag_hint(c->d, "pass --param %.*s=VALUE or write ${%.*s:-default}",
                             (int)(nlen < 80 ? nlen : 80), body, (int)(nlen < 80 ? nlen : 80),
                             body);
            rc = SL_SPEC;
            break;
        }
        c->expanded += vlen;
        if (c->expanded > S_MAX_EXPANSION) {
            s_err(c, n->line, n->col, "parameters expand to more than %d bytes", S_MAX_EXPANSION);
            rc = SL_SPEC;
            break;
        }
        rc = s_buf_add(&b, v, vlen);
        i = (size_t)(end - s) + 1;
    }
    if (rc == 0 && !b.p)
        rc = s_buf_add(&b, "", 0);
    if (rc == 0) {
        free(n->str);
        n->str = b.p;
        return 0;
    }
    free(b.p);
    return rc == SL_NOMEM ? SL_NOMEM : 0;
}

/* Substitutes every value scalar under n; skip is a subtree left alone. */
static int s_subst_tree(s_ctx_t *c, sl_ynode_t *n, const sl_ynode_t *skip)
{
    if (n == skip)
        return 0;
    if (n->kind == SL_Y_SCALAR)
        return s_subst(c, n);
    for (int i = 0; i < n->n; i++) {
        int rc = s_subst_tree(c, n->items[i], skip);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- pass 3: job-level checks ---------------------------------------------- */

/* The loader's spec: the public part first so sl_spec_t * points here. */
typedef struct {
    sl_spec_t pub; /* what callers see */
    int *by_name;  /* indexes of named nodes sorted by (name, position) */
    int nby_name;  /* entries of by_name */
} s_spec_t;

static const char *const s_sections[3] = {"sources", "operators", "sinks"};
static const char *const s_roles[3] = {"source", "operator", "sink"};

/* A non-empty string scalar, or NULL with an error at n (or at `at` when n
 * is missing: "<role> '<name>' has no '<key>'"). */
static const char *s_need_str(s_ctx_t *c, const sl_ynode_t *n, const sl_ynode_t *at,
                              const char *what, const char *missing)
{
    if (!n) {
        s_err(c, at->line, at->col, "%s", missing);
        return NULL;
    }
    if (n->kind != SL_Y_SCALAR) {
        s_err(c, n->line, n->col, "%s must be a string, not %s", what, s_kind_name(n->kind));
        return NULL;
    }
    if (n->str[0] == '\0' || s_is_null(n)) {
        s_err(c, n->line, n->col, "%s must not be empty", what);
        return NULL;
    }
    return n->str;
}

static int s_check_inputs(s_ctx_t *c, const sl_ynode_t *m, sl_spec_node_t *sn, const char *label)
{
    const sl_ynode_t *in = sl_ynode_get(m, "input"), *ins = sl_ynode_get(m, "inputs");
    if (sn->role == SL_ROLE_SOURCE) {
        const char *keys[2] = {"input", "inputs"};
        for (int k = 0; k < 2; k++) {
            const sl_ynode_t *kn = sl_ynode_key(m, keys[k]);
            if (kn && s_err(c, kn->line, kn->col, "%s cannot have '%s'", label, keys[k]))
                sl_diag_hint(c->d, "sources read from outside the job; make it an operator");
        }
        return 0;
    }
    if (in && ins) {
        const sl_ynode_t *kn = sl_ynode_key(m, "inputs");
        s_err(c, kn->line, kn->col, "%s has both 'input' and 'inputs' (use one)", label);
        return 0;
    }
    if (!in && !ins) {
        if (s_err(c, m->line, m->col, "%s has no 'input'", label))
            sl_diag_hint(c->d, "name the node it reads from with 'input:'");
        return 0;
    }
    const sl_ynode_t *const *list = &in;
    int n = 1;
    if (in && in->kind != SL_Y_SCALAR) {
        if (s_err(c, in->line, in->col, "input of %s must be a node name, not %s", label,
                  s_kind_name(in->kind)) &&
            in->kind == SL_Y_SEQ)
            sl_diag_hint(c->d, "use 'inputs:' for several");
        return 0;
    }
    if (ins) {
        if (ins->kind != SL_Y_SEQ) {
            if (s_err(c, ins->line, ins->col, "inputs of %s must be a list of node names", label))
                sl_diag_hint(c->d, "use 'input:' for one");
            return 0;
        }
        if (ins->n == 0) {
            s_err(c, ins->line, ins->col, "inputs of %s must not be empty", label);
            return 0;
        }
        list = (const sl_ynode_t *const *)ins->items;
        n = ins->n;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const sl_ynode_t *x = list[i];
        if (x->kind != SL_Y_SCALAR) {
            s_err(c, x->line, x->col, "an input of %s must be a node name, not %s", label,
                  s_kind_name(x->kind));
            ok = false;
        } else if (x->str[0] == '\0') {
            s_err(c, x->line, x->col, "an input of %s must name a node", label);
            ok = false;
        }
    }
    if (!ok)
        return 0;
    sn->inputs = malloc((size_t)n * sizeof *sn->inputs);
    sn->input_ports = calloc((size_t)n, sizeof *sn->input_ports);
    sn->input_nodes = malloc((size_t)n * sizeof *sn->input_nodes);
    if (!sn->inputs || !sn->input_ports || !sn->input_nodes)
        return SL_NOMEM;
    for (int i = 0; i < n; i++) {
        sn->inputs[i] = -1;
        sn->input_nodes[i] = list[i];
    }
    sn->ninputs = n;
    return 0;
}

/* Fills sn from mapping m (role r); problems are recorded and skipped. */
static int s_check_node(s_ctx_t *c, const sl_ynode_t *m, sl_role_t r, sl_spec_node_t *sn)
{
    char label[128];
    const sl_ynode_t *nn = sl_ynode_get(m, "name");
    char missing[192];
    snprintf(missing, sizeof missing, "%s has no 'name'", s_roles[r]);
    sn->role = r;
    sn->body = m;
    sn->name = s_need_str(c, nn, m, "the name of a node", missing);
    if (sn->name)
        snprintf(label, sizeof label, "%s '%.80s'", s_roles[r], sn->name);
    else
        snprintf(label, sizeof label, "this %s", s_roles[r]);
    sn->type_node = sl_ynode_get(m, "type");
    snprintf(missing, sizeof missing, "%s has no 'type'", label);
    sn->type = s_need_str(c, sn->type_node, m, "type", missing);
    const sl_ynode_t *par = sl_ynode_get(m, "parallelism");
    long long p = 0;
    if (par) {
        snprintf(missing, sizeof missing, "parallelism of %s", label);
        s_count(c, sl_ynode_int(par, 1, SL_MAX_PARALLELISM, c->d, missing, &p));
    }
    sn->parallelism = (int)p;
    return s_check_inputs(c, m, sn, label);
}

typedef struct {
    const char *name; /* node name */
    int line, col;    /* position of the name */
    int i;            /* node index */
} s_nref_t;

static int s_nref_cmp(const void *a, const void *b)
{
    const s_nref_t *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r)
        return r;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Sorted name index; reports every repeated name at the repeat (the one
 * later in the file). */
static int s_index_names(s_ctx_t *c, s_spec_t *ss)
{
    sl_spec_t *s = &ss->pub;
    size_t cap = (size_t)(s->nnodes ? s->nnodes : 1);
    s_nref_t *r = malloc(cap * sizeof *r);
    ss->by_name = malloc(cap * sizeof *ss->by_name);
    if (!r || !ss->by_name) {
        free(r);
        return SL_NOMEM;
    }
    int n = 0;
    for (int i = 0; i < s->nnodes; i++) {
        const sl_ynode_t *nn = sl_ynode_get(s->nodes[i].body, "name");
        if (s->nodes[i].name)
            r[n++] = (s_nref_t){.name = s->nodes[i].name, .line = nn->line, .col = nn->col, .i = i};
    }
    qsort(r, (size_t)n, sizeof *r, s_nref_cmp);
    for (int k = 0, f = 0; k < n; k++) {
        ss->by_name[k] = r[k].i;
        if (strcmp(r[k].name, r[f].name) != 0)
            f = k;
        else if (k != f) {
            if (s_err(c, r[k].line, r[k].col, "duplicate node name '%.80s'", r[k].name))
                sl_diag_hint(c->d, "first used at line %d:%d", r[f].line, r[f].col);
        }
    }
    ss->nby_name = n;
    free(r);
    return 0;
}

/* Resolves every input scalar to a node index (or -1 after an error). */
static int s_resolve(s_ctx_t *c, s_spec_t *ss)
{
    sl_spec_t *s = &ss->pub;
    const char **cands = malloc((size_t)(s->nnodes ? s->nnodes : 1) * sizeof *cands);
    if (!cands)
        return SL_NOMEM;
    int ncands = 0;
    for (int i = 0; i < s->nnodes; i++)
        if (s->nodes[i].name && s->nodes[i].role != SL_ROLE_SINK)
            cands[ncands++] = s->nodes[i].name;
    for (int i = 0; i < s->nnodes; i++) {
        const sl_ynode_t *late =
            s->nodes[i].role == SL_ROLE_OPERATOR ? sl_ynode_get(s->nodes[i].body, "late") : NULL;
        if (!late || late->kind != SL_Y_SCALAR)
            continue;
        if (sl_spec_find(s, late->str) >= 0)
            s_err(c, late->line, late->col,
                  "side output '%.80s' has the name of a node; pick another name", late->str);
        else if (sl_spec_find_side(s, late->str) != i)
            s_err(c, late->line, late->col, "side output name '%.80s' is used twice", late->str);
    }
    for (int i = 0; i < s->nnodes; i++) {
        sl_spec_node_t *sn = &s->nodes[i];
        for (int k = 0; k < sn->ninputs; k++) {
            const sl_ynode_t *x = sn->input_nodes[k];
            int j = sl_spec_find(s, x->str);
            if (j < 0 && (j = sl_spec_find_side(s, x->str)) >= 0)
                sn->input_ports[k] = 1;
            if (j < 0) {
                bool rec = s_err(c, x->line, x->col, "unknown input '%.80s'", x->str);
                const char *best = NULL;
                if (rec && c->hints++ < S_MAX_HINTS)
                    best = sl_closest(x->str, cands, ncands);
                if (best)
                    sl_diag_hint(c->d, "did you mean '%s'?", best);
            } else if (s->nodes[j].role == SL_ROLE_SINK) {
                if (s_err(c, x->line, x->col, "input '%.80s' is a sink", x->str))
                    sl_diag_hint(c->d, "sinks have no output; read from what feeds it");
            } else {
                for (int q = 0; q < k; q++)
                    if (sn->inputs[q] == j) {
                        s_err(c, x->line, x->col, "input '%.80s' is listed twice", x->str);
                        j = -1;
                        break;
                    }
                sn->inputs[k] = j;
            }
        }
    }
    free(cands);
    return 0;
}

static void s_heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int s_heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--(*n)], i = 0;
    for (;;) {
        int l = 2 * i + 1, m = l + 1 < *n && h[l + 1] < h[l] ? l + 1 : l;
        if (l >= *n || h[m] >= v)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = v;
    return top;
}

/* Reports the cycle found walking back from v over remaining nodes. */
static void s_report_cycle(s_ctx_t *c, const sl_spec_t *s, const int *path, int len)
{
    /* path[i + 1] feeds path[i] and path[len - 1] is fed by path[0], so the
     * data flows path[0] -> path[len-1] -> ... -> path[1] -> path[0]. */
    int *fwd = malloc((size_t)len * sizeof *fwd);
    if (!fwd) {
        s_err(c, 0, 0, "cycle in the job graph");
        return;
    }
    fwd[0] = path[0];
    for (int i = 1; i < len; i++)
        fwd[i] = path[len - i];
    int start = 0;
    for (int i = 1; i < len; i++)
        if (fwd[i] < fwd[start])
            start = i;
    char msg[400];
    size_t off = (size_t)snprintf(msg, sizeof msg, "cycle: ");
    for (int i = 0; i <= len && off < sizeof msg; i++) {
        const char *nm = s->nodes[fwd[(start + i) % len]].name;
        if (off > 200 && i < len) {
            snprintf(msg + off, sizeof msg - off, " -> ... -> %.40s (%d nodes)",
                     s->nodes[fwd[start]].name, len);
            break;
        }
        off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%.40s", i ? " -> " : "", nm);
    }
    const sl_spec_node_t *head = &s->nodes[fwd[start]];
    int prev = fwd[(start + len - 1) % len];
    const sl_ynode_t *at = head->body;
    for (int k = 0; k < head->ninputs; k++)
        if (head->inputs[k] == prev)
            at = head->input_nodes[k];
    s_err(c, at->line, at->col, "%s", msg);
    free(fwd);
}

/* Kahn's algorithm over the resolved edges, ties in node order; reports one
 * cycle per group of nodes left over. */
static int s_topo(s_ctx_t *c, sl_spec_t *s)
{
    int n = s->nnodes, nedges = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->nodes[i].ninputs; k++)
            nedges += s->nodes[i].inputs[k] >= 0;
    int *indeg = calloc((size_t)n + 1, sizeof *indeg);
    int *start = calloc((size_t)n + 2, sizeof *start);
    int *out = malloc((size_t)(nedges ? nedges : 1) * sizeof *out);
    int *heap = malloc((size_t)(n ? n : 1) * sizeof *heap);
    int *state = calloc((size_t)n + 1, sizeof *state);
    int *path = malloc((size_t)(n ? n : 1) * sizeof *path);
    int *pos = malloc((size_t)(n ? n : 1) * sizeof *pos);
    s->topo = malloc((size_t)(n ? n : 1) * sizeof *s->topo);
    int rc = 0;
    if (!indeg || !start || !out || !heap || !state || !path || !pos || !s->topo) {
        rc = SL_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->nodes[i].ninputs; k++)
            if (s->nodes[i].inputs[k] >= 0) {
                start[s->nodes[i].inputs[k] + 2]++;
                indeg[i]++;
            }
    for (int i = 0; i < n; i++)
        start[i + 2] += start[i + 1];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->nodes[i].ninputs; k++)
            if (s->nodes[i].inputs[k] >= 0)
                out[start[s->nodes[i].inputs[k] + 1]++] = i;
    /* now out[start[j] .. start[j + 1]) are the consumers of j */
    int nh = 0, done_n = 0;
    for (int i = 0; i < n; i++)
        if (indeg[i] == 0)
            s_heap_push(heap, &nh, i);
    while (nh > 0) {
        int v = s_heap_pop(heap, &nh);
        s->topo[done_n++] = v;
        for (int e = start[v]; e < start[v + 1]; e++)
            if (--indeg[out[e]] == 0)
                s_heap_push(heap, &nh, out[e]);
    }
    if (done_n == n)
        goto done;
    /* Every node left has an input that is left too: walking back from one
     * must revisit a node. state: 0 new, 1 on this walk, 2 finished. */
    for (int v = 0; v < n; v++) {
        if (indeg[v] == 0 || state[v] != 0)
            continue;
        int len = 0, u = v;
        for (;;) {
            state[u] = 1;
            pos[u] = len;
            path[len++] = u;
            int w = -1;
            for (int k = 0; k < s->nodes[u].ninputs && w < 0; k++) {
                int x = s->nodes[u].inputs[k];
                if (x >= 0 && indeg[x] > 0)
                    w = x;
            }
            if (w < 0 || state[w] == 2)
                break;
            if (state[w] == 1) {
                s_report_cycle(c, s, path + pos[w], len - pos[w]);
                break;
            }
            u = w;
        }
        for (int i = 0; i < len; i++)
            state[path[i]] = 2;
    }
    if (c->nerr == 0)
        s_err(c, 0, 0, "cycle in the job graph"); /* unreachable, but never accept it */
done:
    free(indeg);
    free(start);
    free(out);
    free(heap);
    free(state);
    free(path);
    free(pos);
    return rc;
}

/* Collects the node mappings of one section into s->nodes. */
static int s_section(s_ctx_t *c, sl_spec_t *s, sl_role_t r)
{
    const sl_ynode_t *sec = sl_ynode_get(c->root, s_sections[r]);
    if (!sec || s_is_null(sec))
        return 0; /* missing or empty sources / sinks: reported by s_check_top */
    if (sec->kind != SL_Y_SEQ) {
        if (s_err(c, sec->line, sec->col, "%s must be a list of nodes, not %s", s_sections[r],
                  s_kind_name(sec->kind)))
            sl_diag_hint(c->d, "write each %s as '- name: ...' on its own line", s_roles[r]);
        return 0;
    }
    for (int i = 0; i < sec->n; i++) {
        const sl_ynode_t *m = sec->items[i];
        if (m->kind != SL_Y_MAP) {
            s_err(c, m->line, m->col, "each %s must be a mapping with name: and type:, not %s",
                  s_roles[r], s_kind_name(m->kind));
            continue;
        }
        int rc = s_check_node(c, m, r, &s->nodes[s->nnodes++]);
        if (rc)
            return rc;
    }
    return 0;
}

/* `checkpoint: {interval: 1s, timeout: 1m, min_pause: 0, retain: 3}`. */
static void s_check_checkpoint(s_ctx_t *c, sl_spec_t *s)
{
    s->ckpt_timeout_ms = 60000;
    s->ckpt_retain = 3;
    const sl_ynode_t *n = sl_ynode_get(c->root, "checkpoint");
    if (!n)
        return;
    static const char *const keys[] = {"interval", "timeout", "min_pause", "retain"};
    if (n->kind != SL_Y_MAP) {
        s_err(c, n->line, n->col, "checkpoint must be a mapping like {interval: 1s}");
        return;
    }
    c->nerr += sl_ynode_check_keys(n, keys, 4, c->d, "checkpoint field");
    const sl_ynode_t *iv = sl_ynode_get(n, "interval");
    if (!iv) {
        s_err(c, n->line, n->col, "checkpoint needs an 'interval' (e.g. 1s)");
        return;
    }
    long long v;
    if (s_count(c, sl_ynode_duration(iv, 86400000LL, c->d, "checkpoint interval", &v)) == 0) {
        if (v < 10)
            s_err(c, iv->line, iv->col, "checkpoint interval must be at least 10ms");
        s->ckpt_interval_ms = v;
    }
    const sl_ynode_t *x = sl_ynode_get(n, "timeout");
    if (x && s_count(c, sl_ynode_duration(x, 86400000LL, c->d, "checkpoint timeout", &v)) == 0) {
        if (v < 10)
            s_err(c, x->line, x->col, "checkpoint timeout must be at least 10ms");
        s->ckpt_timeout_ms = v;
    }
    x = sl_ynode_get(n, "min_pause");
    if (x && s_count(c, sl_ynode_duration(x, 86400000LL, c->d, "checkpoint min_pause", &v)) == 0)
        s->ckpt_min_pause_ms = v;
    x = sl_ynode_get(n, "retain");
    if (x && s_count(c, sl_ynode_int(x, 1, 1000, c->d, "checkpoint retain", &v)) == 0)
        s->ckpt_retain = (int)v;
}

/* A byte size: an integer with an optional unit B, KB, MB or GB (powers
 * of 1024, case-insensitive), in [min, max]. */
static int s_size(s_ctx_t *c, const sl_ynode_t *n, long long min, long long max, const char *what,
                  long long *out)
{
    if (n->kind != SL_Y_SCALAR || n->quoted) {
        s_err(c, n->line, n->col, "%s must be a size like 8MB", what);
        return SL_SPEC;
    }
    const char *s = n->str;
    size_t digits = strspn(s, "0123456789");
    static const char *const units[] = {"", "b", "kb", "mb", "gb"};
    static const int shift[] = {0, 0, 10, 20, 30};
    int u = -1;
    for (int i = 0; digits && digits <= 12 && u < 0 && i < 5; i++)
        if (strcasecmp(s + digits, units[i]) == 0)
            u = i;
    if (u < 0) {
        s_err(c, n->line, n->col, "%s must be a size like 8MB (B, KB, MB, GB), not '%.40s'", what,
              s);
        return SL_SPEC;
    }
    long long v = strtoll(s, NULL, 10) << shift[u];
    if (v < min || v > max) {
        s_err(c, n->line, n->col, "%s must be between %lld KB and %lld MB", what, min >> 10,
              max >> 20);
        return SL_SPEC;
    }
    *out = v;
    return 0;
}

/* `state: {backend: heap|rocksdb, block_cache: 8MB, write_buffer: 4MB,
 * key_cache: 32MB}`. */
static void s_check_state(s_ctx_t *c, sl_spec_t *s)
{
    s->state_cache = 8ll << 20;
    s->state_wbuf = 4ll << 20;
    s->state_key_cache = 32ll << 20;
    const sl_ynode_t *n = sl_ynode_get(c->root, "state");
    if (!n)
        return;
    static const char *const keys[] = {"backend", "block_cache", "write_buffer", "key_cache"};
    if (n->kind != SL_Y_MAP) {
        s_err(c, n->line, n->col, "state must be a mapping like {backend: rocksdb}");
        return;
    }
    c->nerr += sl_ynode_check_keys(n, keys, 4, c->d, "state field");
    const sl_ynode_t *b = sl_ynode_get(n, "backend");
    const char *name = b ? sl_ynode_str(b, c->d, "state backend") : NULL;
    if (b && !name)
        c->nerr++;
    else if (name && strcmp(name, "rocksdb") == 0)
        s->state_rocksdb = true;
    else if (name && strcmp(name, "heap") != 0)
        s_err(c, b->line, b->col, "unknown state backend '%.80s' (heap or rocksdb)", name);
    const sl_ynode_t *x = sl_ynode_get(n, "block_cache");
    if (x)
        (void)s_size(c, x, 64ll << 10, 64ll << 30, "state block_cache", &s->state_cache);
    x = sl_ynode_get(n, "write_buffer");
    if (x)
        (void)s_size(c, x, 64ll << 10, 4ll << 30, "state write_buffer", &s->state_wbuf);
    x = sl_ynode_get(n, "key_cache");
    if (x)
        (void)s_size(c, x, 64ll << 10, 64ll << 30, "state key_cache", &s->state_key_cache);
}

/* `restart: {strategy: fixed-delay, attempts: 3, delay: 1s}` and friends. */
static void s_check_restart(s_ctx_t *c, sl_spec_t *s)
{
    s->restart = SL_RESTART_NONE;
    s->restart_attempts = 3;
    s->restart_max_failures = 3;
    s->restart_delay_ms = 1000;
    s->restart_max_delay_ms = 60000;
    s->restart_interval_ms = 60000;
    const sl_ynode_t *n = sl_ynode_get(c->root, "restart");
    if (!n) {
        /* A checkpointed job restarts by default; others fail. */
        if (sl_ynode_get(c->root, "checkpoint"))
            s->restart = SL_RESTART_FIXED_DELAY;
        return;
    }
    static const char *const keys[] = {"strategy",  "attempts",     "delay",
                                       "max_delay", "max_failures", "interval"};
    if (n->kind != SL_Y_MAP) {
        s_err(c, n->line, n->col, "restart must be a mapping like {strategy: fixed-delay}");
        return;
    }
    c->nerr += sl_ynode_check_keys(n, keys, 6, c->d, "restart field");
    const sl_ynode_t *st = sl_ynode_get(n, "strategy");
    const char *name = st ? sl_ynode_str(st, c->d, "strategy") : NULL;
    static const char *const names[] = {"none", "fixed-delay", "exponential-delay", "failure-rate"};
    int k = -1;
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            k = i;
    if (!st)
        s_err(c, n->line, n->col, "restart needs a 'strategy'");
    else if (name && k < 0) {
        bool rec = s_err(c, st->line, st->col, "unknown restart strategy '%.80s'", name);
        const char *near = sl_closest(name, names, 4);
        if (rec)
            sl_diag_hint(c->d, near ? "did you mean '%s'?" : "strategies are %s",
                         near ? near : "none, fixed-delay, exponential-delay, failure-rate");
    } else if (!name)
        c->nerr++;
    if (k >= 0)
        s->restart = (sl_restart_t)k;
    long long v;
    const sl_ynode_t *x = sl_ynode_get(n, "attempts");
    if (x && s_count(c, sl_ynode_int(x, 0, 1000000, c->d, "restart attempts", &v)) == 0) {
        s->restart_attempts = (int)v;
        s->restart_attempts_set = true;
    }
    x = sl_ynode_get(n, "delay");
    if (x && s_count(c, sl_ynode_duration(x, 86400000LL, c->d, "restart delay", &v)) == 0)
        s->restart_delay_ms = v;
    x = sl_ynode_get(n, "max_delay");
    if (x && s_count(c, sl_ynode_duration(x, 86400000LL, c->d, "restart max_delay", &v)) == 0)
        s->restart_max_delay_ms = v;
    x = sl_ynode_get(n, "max_failures");
    if (x && s_count(c, sl_ynode_int(x, 1, 1000000, c->d, "restart max_failures", &v)) == 0)
        s->restart_max_failures = (int)v;
    x = sl_ynode_get(n, "interval");
    if (x && s_count(c, sl_ynode_duration(x, 86400000LL, c->d, "restart interval", &v)) == 0)
        s->restart_interval_ms = v;
}

/* The top-level fields; fills name, parallelism and max_parallelism. */
static void s_check_top(s_ctx_t *c, sl_spec_t *s, bool *maxp_given)
{
    static const char *const allowed[] = {"name",      "parallelism", "max_parallelism", "sources",
                                          "operators", "sinks",       "description",     "params",
                                          "plugin",    "checkpoint",  "restart",         "state"};
    const sl_ynode_t *root = c->root;
    c->nerr += sl_ynode_check_keys(root, allowed, 12, c->d, "top-level field");
    s_check_checkpoint(c, s);
    s_check_state(c, s);
    s_check_restart(c, s);
    s->plugin_node = sl_ynode_get(root, "plugin");
    if (s->plugin_node) {
        s->plugin = sl_ynode_str(s->plugin_node, c->d, "plugin");
        if (!s->plugin)
            c->nerr++;
        else if (!*s->plugin) {
            sl_diag_error(c->d, s->plugin_node->line, s->plugin_node->col,
                          "plugin must name a shared object (.so)");
            c->nerr++;
        }
    }
    s->name =
        s_need_str(c, sl_ynode_get(root, "name"), root, "name", "missing required field 'name'");
    const sl_ynode_t *desc = sl_ynode_get(root, "description");
    if (desc && !sl_ynode_str(desc, c->d, "description"))
        c->nerr++;
    long long p = 1, mp = S_DEFAULT_MAX_PARALLELISM;
    const sl_ynode_t *pn = sl_ynode_get(root, "parallelism");
    bool p_ok =
        !pn || s_count(c, sl_ynode_int(pn, 1, SL_MAX_PARALLELISM, c->d, "parallelism", &p)) == 0;
    const sl_ynode_t *mpn = sl_ynode_get(root, "max_parallelism");
    *maxp_given = mpn != NULL;
    if (mpn &&
        s_count(c, sl_ynode_int(mpn, 1, S_MAX_MAX_PARALLELISM, c->d, "max_parallelism", &mp)) ==
            0 &&
        p_ok && mp < p) {
        if (s_err(c, mpn->line, mpn->col,
                  "max_parallelism (%lld) must be at least parallelism (%lld)", mp, p))
            sl_diag_hint(c->d, "max_parallelism is the number of key groups");
    }
    s->parallelism = (int)p;
    s->max_parallelism = (int)mp;
    for (int r = 0; r < 3; r++) {
        if (r == SL_ROLE_OPERATOR)
            continue;
        const sl_ynode_t *sec = sl_ynode_get(root, s_sections[r]);
        if (!sec)
            s_err(c, root->line, root->col,
                  "missing required field '%s' (a job needs at least "
                  "one %s)",
                  s_sections[r], s_roles[r]);
        else if ((sec->kind == SL_Y_SEQ && sec->n == 0) || s_is_null(sec))
            s_err(c, sec->line, sec->col, "a job needs at least one %s", s_roles[r]);
    }
}

/* Node parallelism against max_parallelism; raises the default to fit. */
static void s_check_maxp(s_ctx_t *c, sl_spec_t *s, bool given)
{
    int need = s->parallelism;
    for (int i = 0; i < s->nnodes; i++) {
        const sl_spec_node_t *sn = &s->nodes[i];
        if (sn->parallelism > need)
            need = sn->parallelism;
        if (given && sn->parallelism > s->max_parallelism) {
            const sl_ynode_t *pn = sl_ynode_get(sn->body, "parallelism");
            s_err(c, pn->line, pn->col,
                  "parallelism of %s '%.80s' (%d) exceeds max_parallelism (%d)", s_roles[sn->role],
                  sn->name ? sn->name : "?", sn->parallelism, s->max_parallelism);
        }
    }
    if (!given)
        while (s->max_parallelism < need)
            s->max_parallelism *= 2;
}

static int s_count_items(const sl_ynode_t *root)
{
    int n = 0;
    for (int r = 0; r < 3; r++) {
        const sl_ynode_t *sec = sl_ynode_get(root, s_sections[r]);
        if (sec && sec->kind == SL_Y_SEQ)
            n += sec->n;
    }
    return n;
}

/* Pass 3 on c->root into ss. 0 or SL_NOMEM; errors counted in c->nerr. */
static int s_build(s_ctx_t *c, s_spec_t *ss)
{
    sl_spec_t *s = &ss->pub;
    if (c->root->kind != SL_Y_MAP) {
        if (s_err(c, c->root->line, c->root->col, "a job spec must be a mapping, not %s",
                  s_kind_name(c->root->kind)))
            sl_diag_hint(c->d, "start with 'name: ...' then 'sources:', 'sinks:'");
        return 0;
    }
    bool maxp_given = false;
    s_check_top(c, s, &maxp_given);
    int total = s_count_items(c->root);
    s->nodes = calloc((size_t)(total ? total : 1), sizeof *s->nodes);
    if (!s->nodes)
        return SL_NOMEM;
    int rc = 0;
    for (int r = 0; r < 3 && rc == 0; r++)
        rc = s_section(c, s, (sl_role_t)r);
    if (rc)
        return rc;
    s_check_maxp(c, s, maxp_given);
    if ((rc = s_index_names(c, ss)) != 0 || (rc = s_resolve(c, ss)) != 0)
        return rc;
    return s_topo(c, s);
}

void sl_spec_destroy(sl_spec_t **pp)
{
    if (!pp || !*pp)
        return;
    s_spec_t *ss = (s_spec_t *)*pp;
    sl_spec_t *s = &ss->pub;
    for (int i = 0; i < s->nnodes; i++) {
        free(s->nodes[i].inputs);
        free((void *)s->nodes[i].input_nodes);
        free(s->nodes[i].input_ports);
    }
    free(s->nodes);
    free(s->topo);
    free(s->file);
    free(ss->by_name);
    s_ynode_free(s->root);
    free(ss);
    *pp = NULL;
}

int sl_spec_find(const sl_spec_t *s, const char *name)
{
    if (!s || !name)
        return -1;
    const s_spec_t *ss = (const s_spec_t *)s;
    int lo = 0, hi = ss->nby_name - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int r = strcmp(name, s->nodes[ss->by_name[mid]].name);
        if (r == 0)
            return ss->by_name[mid];
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

int sl_spec_find_side(const sl_spec_t *s, const char *name)
{
    for (int i = 0; i < s->nnodes; i++) {
        const sl_ynode_t *late =
            s->nodes[i].role == SL_ROLE_OPERATOR ? sl_ynode_get(s->nodes[i].body, "late") : NULL;
        if (late && late->kind == SL_Y_SCALAR && strcmp(late->str, name) == 0)
            return i;
    }
    return -1;
}

int sl_spec_load(const char *file, const char *text, size_t len, const sl_params_t *params,
                 sl_diag_t *d, sl_spec_t **out)
{
    if (!out || (!text && len))
        return SL_INVAL;
    *out = NULL;
    s_ctx_t c = {.text = text ? text : "", .len = len, .d = d, .params = params};
    if (len > SL_SPEC_MAX_BYTES) {
        s_err(&c, 0, 0, "file too large: %zu bytes (limit %d)", len, SL_SPEC_MAX_BYTES);
        return SL_SPEC;
    }
    int rc = s_parse(&c);
    if (rc)
        return rc;
    if (!c.root || s_is_null(c.root)) {
        if (s_err(&c, 1, 1, "the file is empty: expected a job spec"))
            sl_diag_hint(d, "start with 'name: ...' then 'sources:', 'sinks:'");
        s_ynode_free(c.root);
        return SL_SPEC;
    }
    s_spec_t *ss = calloc(1, sizeof *ss);
    if (!ss || !(ss->pub.file = strdup(file ? file : "<input>"))) {
        free(ss);
        s_ynode_free(c.root);
        return SL_NOMEM;
    }
    ss->pub.root = c.root;
    const sl_ynode_t *sec = sl_ynode_get(c.root, "params");
    rc = s_load_fparams(&c, sec);
    if (rc == 0)
        rc = s_subst_tree(&c, c.root, sec);
    if (rc == 0)
        rc = s_build(&c, ss);
    free(c.fparams);
    sl_spec_t *s = &ss->pub;
    if (rc == 0 && c.nerr > 0)
        rc = SL_SPEC;
    if (rc) {
        sl_spec_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int sl_spec_load_file(const char *path, const sl_params_t *params, sl_diag_t *d, sl_spec_t **out)
{
    if (!out || !path)
        return SL_INVAL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char why[128];
    if (!f) {
        if (strerror_r(errno, why, sizeof why) != 0)
            snprintf(why, sizeof why, "error %d", errno);
        s_record(d, 0, 0, "cannot read: %s", why);
        return SL_IO;
    }
    size_t cap = SL_SPEC_MAX_BYTES + 1;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return SL_NOMEM;
    }
    size_t n = fread(buf, 1, cap, f);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        if (strerror_r(err, why, sizeof why) != 0)
            snprintf(why, sizeof why, "error %d", err);
        s_record(d, 0, 0, "cannot read: %s", why);
        free(buf);
        return SL_IO;
    }
    if (n > SL_SPEC_MAX_BYTES) {
        s_record(d, 0, 0, "file too large: more than %d bytes", SL_SPEC_MAX_BYTES);
        free(buf);
        return SL_SPEC;
    }
    int rc = sl_spec_load(path, buf, n, params, d, out);
    free(buf);
    return rc;
}
