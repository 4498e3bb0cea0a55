/* config.c — daemon settings from flags, environment, a YAML file and
 * defaults (see sluice/config.h).
 *
 * Invariants:
 *  1. Every value held passed its key's check; a key's source only ever
 *     rises, so a lower-ranked source never replaces a higher one.
 *  2. A config file is applied all or nothing: its values are collected
 *     and checked first, and only a file without a single error is applied.
 *  3. The YAML is read as events and never built into a tree: nested
 *     values are skipped (one counter), aliases are never expanded, and the
 *     text is capped at SL_CONFIG_MAX_BYTES, so memory stays bounded. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sluice/err.h"
#include "sluice/utf8.h"

#define S_SHOW_MAX 40 /* bytes of a bad value quoted back in a message */

typedef struct {
    char *str;           /* owned text of the value, NULL when unset */
    long num;            /* SL_CONFIG_INT: the parsed value */
    sl_config_src_t src; /* where it came from */
    char *origin;        /* owned: "--slots", "SLUICE_SLOTS", "f.yaml:3:8", "default" */
} s_val_t;

struct sl_config {
    const sl_config_key_t *keys; /* borrowed table */
    int nkeys;                   /* entries in keys and vals */
    s_val_t *vals;               /* owned, one per key */
};

static void s_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int s_find(const sl_config_t *c, const char *key)
{
    for (int i = 0; c && key && i < c->nkeys; i++)
        if (strcmp(c->keys[i].key, key) == 0)
            return i;
    return -1;
}

/* A bad value made safe to quote back: at most S_SHOW_MAX bytes, cut on a
 * character boundary, control characters and invalid bytes as '?'. */
static void s_show(const char *v, size_t n, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t o = 0, i = 0;
    while (i < n && o + 5 < cap && i < S_SHOW_MAX) {
        size_t k = sl_utf8_seq(p + i, n - i);
        if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            buf[o++] = '?';
            i++;
        } else if (i + k > S_SHOW_MAX) {
            break;
        } else {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        }
    }
    if (i < n && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < cap ? o : cap - 1] = '\0';
}

/* Checks value (n bytes, may hold NUL) against key k; origin names it in
 * the message. Sets *num for INT keys. */
static int s_check(const sl_config_key_t *k, const char *origin, const char *value, size_t n,
                   long *num, char *err, size_t cap)
{
    char shown[S_SHOW_MAX * 2 + 8];
    s_show(value, n, shown, sizeof shown);
    if (k->type == SL_CONFIG_INT) {
        size_t i = (value[0] == '-' || value[0] == '+') ? 1 : 0;
        size_t digits = strspn(value + i, "0123456789");
        errno = 0;
        long v = digits && i + digits == n ? strtol(value, NULL, 10) : 0;
        if (!digits || i + digits != n || errno == ERANGE || v < k->min || v > k->max) {
            s_err(err, cap, "%s must be an integer in %ld..%ld, not '%s'", origin, k->min, k->max,
                  shown);
            return digits && i + digits == n ? SL_RANGE : SL_INVAL;
        }
        *num = v;
        return 0;
    }
    size_t max = k->max > 0 ? (size_t)k->max : SL_CONFIG_STR_MAX;
    if (n == 0) {
        s_err(err, cap, "%s must not be empty", origin);
        return SL_INVAL;
    }
    if (n > max) {
        s_err(err, cap, "%s is %zu bytes long, limit %zu ('%s')", origin, n, max, shown);
        return SL_RANGE;
    }
    if (!sl_utf8_valid(value, n)) {
        s_err(err, cap, "%s is not valid UTF-8 ('%s')", origin, shown);
        return SL_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)value[i];
        if (ch < 0x20 || ch == 0x7f || (ch == ' ' && !k->spaces)) {
            s_err(err, cap, "%s must not contain %scontrol characters ('%s')", origin,
                  k->spaces ? "" : "spaces or ", shown);
            return SL_INVAL;
        }
    }
    if (k->prefix && strncmp(value, k->prefix, strlen(k->prefix)) != 0) {
        s_err(err, cap, "%s must start with %s, not '%s'", origin, k->prefix, shown);
        return SL_INVAL;
    }
    char why[256] = "";
    if (k->check && k->check(value, why, sizeof why) != 0) {
        s_err(err, cap, "%s %s, not '%s'", origin, why[0] ? why : "is not valid", shown);
        return SL_INVAL;
    }
    *num = 0;
    return 0;
}

/* ---- the value store ------------------------------------------------------ */

sl_config_t *sl_config_new(const sl_config_key_t *keys, int nkeys)
{
    if (!keys || nkeys < 0)
        return NULL;
    sl_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->keys = keys;
    c->nkeys = nkeys;
    c->vals = calloc((size_t)(nkeys ? nkeys : 1), sizeof *c->vals);
    if (!c->vals) {
        free(c);
        return NULL;
    }
    for (int i = 0; i < nkeys; i++) {
        if (!keys[i].dflt)
            continue;
        char err[512];
        int rc = sl_config_set(c, keys[i].key, keys[i].dflt, SL_CONFIG_DEFAULT, "default", err,
                               sizeof err);
        if (rc != 0) {
            if (rc != SL_NOMEM)
                fprintf(stderr, "sluice: bad default of config key '%s': %s\n", keys[i].key, err);
            sl_config_destroy(&c);
            return NULL;
        }
    }
    return c;
}

void sl_config_destroy(sl_config_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_config_t *c = *pp;
    for (int i = 0; i < c->nkeys; i++) {
        free(c->vals[i].str);
        free(c->vals[i].origin);
    }
    free(c->vals);
    free(c);
    *pp = NULL;
}

/* sl_config_set for a value of n bytes (a YAML scalar may hold NUL). */
static int s_set(sl_config_t *c, int i, const char *value, size_t n, sl_config_src_t src,
                 const char *origin, char *err, size_t cap)
{
    const sl_config_key_t *k = &c->keys[i];
    long num = 0;
    int rc = s_check(k, origin ? origin : k->key, value, n, &num, err, cap);
    if (rc != 0)
        return rc;
    s_val_t *v = &c->vals[i];
    if (src < v->src)
        return 0; /* a higher-ranked source already set it */
    char *s = strndup(value, n), *o = strdup(origin ? origin : k->key);
    if (!s || !o) {
        free(s);
        free(o);
        s_err(err, cap, "out of memory");
        return SL_NOMEM;
    }
    free(v->str);
    free(v->origin);
    *v = (s_val_t){.str = s, .num = num, .src = src, .origin = o};
    return 0;
}

int sl_config_set(sl_config_t *c, const char *key, const char *value, sl_config_src_t src,
                  const char *origin, char *err, size_t cap)
{
    int i = s_find(c, key);
    if (i < 0) {
        s_err(err, cap, "unknown config key '%s'", key ? key : "(null)");
        return SL_NOTFOUND;
    }
    if (!value) {
        s_err(err, cap, "%s has no value", origin ? origin : key);
        return SL_INVAL;
    }
    return s_set(c, i, value, strlen(value), src, origin, err, cap);
}

const char *sl_config_str(const sl_config_t *c, const char *key)
{
    int i = s_find(c, key);
    return i < 0 ? NULL : c->vals[i].str;
}

long sl_config_int(const sl_config_t *c, const char *key, long fallback)
{
    int i = s_find(c, key);
    if (i < 0 || !c->vals[i].str || c->keys[i].type != SL_CONFIG_INT)
        return fallback;
    return c->vals[i].num;
}

sl_config_src_t sl_config_source(const sl_config_t *c, const char *key)
{
    int i = s_find(c, key);
    return i < 0 ? SL_CONFIG_UNSET : c->vals[i].src;
}

const char *sl_config_origin(const sl_config_t *c, const char *key)
{
    int i = s_find(c, key);
    return i < 0 || !c->vals[i].origin ? "" : c->vals[i].origin;
}

/* ---- flags and environment -------------------------------------------------- */

int sl_config_parse_args(sl_config_t *c, int argc, char **argv, char *err, size_t cap)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            s_err(err, cap, "unexpected argument '%.80s' (options are --NAME VALUE)", a);
            return SL_INVAL;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        int k = -1;
        for (int j = 0; j < c->nkeys && k < 0; j++)
            if (c->keys[j].flag && strlen(c->keys[j].flag) == nlen &&
                strncmp(c->keys[j].flag, a, nlen) == 0)
                k = j;
        if (k < 0) {
            const char *cand[64];
            int n = 0;
            for (int j = 0; j < c->nkeys && n < 63; j++)
                if (c->keys[j].flag)
                    cand[n++] = c->keys[j].flag;
            cand[n++] = "--help";
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(nlen < 100 ? nlen : 100), a);
            const char *near = sl_closest(name, cand, n);
            if (near)
                s_err(err, cap, "unknown option '%s' (did you mean '%s'?)", name, near);
            else
                s_err(err, cap, "unknown option '%s'", name);
            return SL_INVAL;
        }
        const char *flag = c->keys[k].flag, *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            s_err(err, cap, "%s needs a value (%s %s)", flag, flag,
                  c->keys[k].metavar ? c->keys[k].metavar : "VALUE");
            return SL_INVAL;
        }
        int rc = s_set(c, k, value, strlen(value), SL_CONFIG_FLAG, flag, err, cap);
        if (rc != 0)
            return rc == SL_NOMEM ? rc : SL_INVAL;
    }
    return 0;
}

static const char *s_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

int sl_config_load_env(sl_config_t *c, sl_config_getenv_fn get, void *arg, char *err, size_t cap)
{
    if (!get)
        get = s_getenv;
    for (int i = 0; i < c->nkeys; i++) {
        const char *name = c->keys[i].env;
        const char *v = name ? get(arg, name) : NULL;
        if (!v || !*v)
            continue;
        int rc = s_set(c, i, v, strlen(v), SL_CONFIG_ENV, name, err, cap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the file ------------------------------------------------------------------ */

typedef struct {
    sl_config_t *c;
    sl_diag_t *d;
    const char *file;  /* name in origins */
    const char *text;  /* the whole text, for reader-error positions */
    size_t len;        /* bytes of text */
    int nerr;          /* errors recorded (the diag may cap its list) */
    char **pending;    /* per key: the file's value, owned, or NULL */
    int *line, *col;   /* per key: where the file set it (0: not seen) */
    int *vline, *vcol; /* per key: position of the pending value */
} s_load_t;

static void s_lerr(s_load_t *l, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_lerr(s_load_t *l, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l->nerr++;
    if (l->d)
        sl_diag_error(l->d, line, col, "%s", msg);
}

static void s_lhint(s_load_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_lhint(s_load_t *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->d)
        sl_diag_hint(l->d, "%s", msg);
}

/* A byte offset as a 1-based line and column (in characters). */
static void s_offset_pos(const char *text, size_t len, size_t off, int *line, int *col)
{
    int ln = 1, cl = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            ln++;
            cl = 1;
        } else if ((ch & 0xC0) != 0x80) {
            cl++;
        }
    }
    *line = ln;
    *col = cl;
}

static int s_yaml_error(s_load_t *l, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return SL_NOMEM;
    if (p->error == YAML_READER_ERROR) {
        int line, col;
        s_offset_pos(l->text, l->len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            s_lerr(l, line, col, "invalid text: %s (byte 0x%02x)", problem, p->problem_value);
        else
            s_lerr(l, line, col, "invalid text: %s", problem);
        return SL_PARSE;
    }
    s_lerr(l, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
           "YAML syntax error: %s", problem);
    if (p->context)
        s_lhint(l, "%s at line %d:%d", p->context, (int)p->context_mark.line + 1,
                (int)p->context_mark.column + 1);
    return SL_PARSE;
}

static bool s_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
            strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* A key scalar: the index of the file key it names, or -1 (error recorded). */
static int s_on_key(s_load_t *l, const yaml_event_t *ev, int line, int col)
{
    const char *k = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    char shown[S_SHOW_MAX * 2 + 8];
    s_show(k, n, shown, sizeof shown);
    int i = memchr(k, '\0', n) ? -1 : s_find(l->c, k);
    if (i >= 0 && l->c->keys[i].no_file) {
        s_lerr(l, line, col, "'%s' cannot be set in a config file", shown);
        if (l->c->keys[i].flag)
            s_lhint(l, "use %s%s%s", l->c->keys[i].flag, l->c->keys[i].env ? " or " : "",
                    l->c->keys[i].env ? l->c->keys[i].env : "");
        return -1;
    }
    if (i < 0) {
        const char *cand[64];
        int nc = 0;
        for (int j = 0; j < l->c->nkeys && nc < 64; j++)
            if (!l->c->keys[j].no_file)
                cand[nc++] = l->c->keys[j].key;
        s_lerr(l, line, col, "unknown key '%s'", shown);
        const char *near = n <= 64 && !memchr(k, '\0', n) ? sl_closest(k, cand, nc) : NULL;
        if (near) {
            s_lhint(l, "did you mean '%s'?", near);
        } else {
            char list[512] = "";
            size_t o = 0;
            for (int j = 0; j < nc && o < sizeof list; j++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "", cand[j]);
            s_lhint(l, "the keys are: %s", list);
        }
        return -1;
    }
    if (l->line[i]) {
        s_lerr(l, line, col, "'%s' is set twice (first at line %d)", l->c->keys[i].key, l->line[i]);
        return -1;
    }
    l->line[i] = line;
    l->col[i] = col;
    return i;
}

/* The value scalar of key i (i < 0: of a key already reported). */
static int s_on_value(s_load_t *l, int i, const yaml_event_t *ev, int line, int col)
{
    if (i < 0 || s_is_null(ev))
        return 0;
    const sl_config_key_t *k = &l->c->keys[i];
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (k->type == SL_CONFIG_INT && ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        char shown[S_SHOW_MAX * 2 + 8];
        s_show(v, n, shown, sizeof shown);
        s_lerr(l, line, col, "%s must be an integer, not the string \"%s\"", k->key, shown);
        s_lhint(l, "remove the quotes");
        return 0;
    }
    char msg[512];
    long num;
    if (s_check(k, k->key, v, n, &num, msg, sizeof msg) != 0) {
        s_lerr(l, line, col, "%s", msg);
        return 0;
    }
    l->pending[i] = strndup(v, n);
    l->vline[i] = line;
    l->vcol[i] = col;
    return l->pending[i] ? 0 : SL_NOMEM;
}

/* Reads every event; records errors; fills l->pending. Returns 0 when the
 * text was read to its end (errors may have been recorded), SL_PARSE when
 * it stopped early, SL_NOMEM. */
static int s_parse(s_load_t *l, yaml_parser_t *p)
{
    int ndocs = 0, depth = 0, skip = 0, key = -1, rc = 0;
    bool expect_key = true, skip_was_key = false;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev))
            return s_yaml_error(l, p);
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        yaml_event_type_t t = ev.type;
        bool opens = t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT;
        bool closes = t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT;
        if (skip > 0) { /* inside a nested value already reported */
            skip += opens ? 1 : closes ? -1 : 0;
            if (skip == 0 && depth == 1) { /* the nested node is complete */
                if (skip_was_key)
                    key = -1;
                expect_key = !skip_was_key;
            }
            yaml_event_delete(&ev);
            continue;
        }
        switch (t) {
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            if (ndocs++ > 0) {
                s_lerr(l, line, col, "a second YAML document: a config file is one mapping");
                rc = SL_PARSE;
            }
            break;
        case YAML_ALIAS_EVENT:
            s_lerr(l, line, col, "YAML aliases are not supported (*%.40s)",
                   (const char *)ev.data.alias.anchor);
            s_lhint(l, "write the value itself");
            if (depth == 1) {
                if (expect_key)
                    key = -1;
                expect_key = !expect_key;
            }
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == 0 && t == YAML_MAPPING_START_EVENT) {
                depth = 1;
                expect_key = true;
            } else if (depth == 0) {
                s_lerr(l, line, col, "a config file is a mapping of key: value lines, not a list");
                skip = 1;
            } else if (expect_key) {
                s_lerr(l, line, col, "a key must be a plain word, not a %s",
                       t == YAML_MAPPING_START_EVENT ? "mapping" : "list");
                skip = 1;
                skip_was_key = true;
            } else {
                if (key >= 0)
                    s_lerr(l, line, col, "%s takes one value, not a %s", l->c->keys[key].key,
                           t == YAML_MAPPING_START_EVENT ? "mapping" : "list");
                skip = 1;
                skip_was_key = false;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth = 0;
            break;
        case YAML_SCALAR_EVENT:
            if (depth == 0) {
                if (!s_is_null(&ev))
                    s_lerr(l, line, col, "a config file is a mapping of key: value lines");
            } else if (expect_key) {
                key = s_on_key(l, &ev, line, col);
                expect_key = false;
            } else {
                rc = s_on_value(l, key, &ev, line, col);
                expect_key = true;
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc != 0)
            return rc;
    }
}

int sl_config_load_text(sl_config_t *c, const char *file, const char *text, size_t len,
                        sl_diag_t *d)
{
    file = file ? file : "<config>";
    if (len > SL_CONFIG_MAX_BYTES) {
        if (d)
            sl_diag_error(d, 0, 0, "the config file is %zu bytes, limit %d", len,
                          SL_CONFIG_MAX_BYTES);
        return SL_LIMIT;
    }
    int n = c->nkeys ? c->nkeys : 1;
    s_load_t l = {.c = c,
                  .d = d,
                  .file = file,
                  .text = text ? text : "",
                  .len = text ? len : 0,
                  .pending = calloc((size_t)n, sizeof(char *)),
                  .line = calloc((size_t)n, sizeof(int)),
                  .col = calloc((size_t)n, sizeof(int)),
                  .vline = calloc((size_t)n, sizeof(int)),
                  .vcol = calloc((size_t)n, sizeof(int))};
    int rc = SL_NOMEM;
    yaml_parser_t p;
    if (l.pending && l.line && l.col && l.vline && l.vcol && yaml_parser_initialize(&p)) {
        yaml_parser_set_input_string(&p, (const unsigned char *)l.text, l.len);
        rc = s_parse(&l, &p);
        yaml_parser_delete(&p);
    }
    if (rc == 0 && l.nerr > 0)
        rc = SL_PARSE;
    for (int i = 0; rc == 0 && i < c->nkeys; i++) {
        if (!l.pending[i])
            continue;
        char origin[600], err[64];
        snprintf(origin, sizeof origin, "%s:%d:%d", file, l.vline[i], l.vcol[i]);
        rc = s_set(c, i, l.pending[i], strlen(l.pending[i]), SL_CONFIG_FILE, origin, err,
                   sizeof err);
    }
    for (int i = 0; l.pending && i < c->nkeys; i++)
        free(l.pending[i]);
    free(l.pending);
    free(l.line);
    free(l.col);
    free(l.vline);
    free(l.vcol);
    return rc;
}

int sl_config_load_file(sl_config_t *c, const char *path, sl_diag_t *d, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err(err, cap, "cannot read config file %s: %s", path, strerror(errno));
        return SL_IO;
    }
    char *buf = malloc(SL_CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        s_err(err, cap, "out of memory");
        return SL_NOMEM;
    }
    size_t len = fread(buf, 1, SL_CONFIG_MAX_BYTES + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        s_err(err, cap, "cannot read config file %s: %s", path, strerror(rerr));
        free(buf);
        return SL_IO;
    }
    if (len > SL_CONFIG_MAX_BYTES) {
        s_err(err, cap, "config file %s is larger than %d bytes", path, SL_CONFIG_MAX_BYTES);
        free(buf);
        return SL_LIMIT;
    }
    int rc = sl_config_load_text(c, path, buf, len, d);
    free(buf);
    if (rc == SL_NOMEM)
        s_err(err, cap, "out of memory");
    else if (rc != 0)
        s_err(err, cap, "config file %s has errors; nothing in it was applied", path);
    return rc;
}

/* ---- --help ------------------------------------------------------------------------ */

/* Writes text indented, one line per '\n'. */
static void s_indented(FILE *out, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(out, "      %.*s\n", n, text);
        text += n + (nl ? 1 : 0);
    }
}

void sl_config_usage(const sl_config_t *c, const char *head, FILE *out)
{
    if (head)
        fputs(head, out);
    fputs("Each setting is taken from its flag, else its environment variable, else the\n"
          "config file, else its default. An empty environment variable counts as unset;\n"
          "in the file, an empty value (`key:`) leaves the default.\n\n",
          out);
    for (int i = 0; i < c->nkeys; i++) {
        const sl_config_key_t *k = &c->keys[i];
        const char *mv = k->metavar ? k->metavar : "VALUE";
        if (k->flag)
            fprintf(out, "  %s %s\n", k->flag, mv);
        else
            fprintf(out, "  (file key %s) %s\n", k->key, mv);
        s_indented(out, k->help);
        fputs("      [", out);
        const char *sep = "";
        if (k->env) {
            fprintf(out, "env %s", k->env);
            sep = "; ";
        }
        if (!k->no_file) {
            fprintf(out, "%sfile key %s", sep, k->key);
            sep = "; ";
        }
        if (k->dflt) {
            fprintf(out, "%sdefault %s", sep, k->dflt);
            sep = "; ";
        }
        if (k->type == SL_CONFIG_INT)
            fprintf(out, "%s%ld..%ld", sep, k->min, k->max);
        fputs("]\n", out);
    }
    fputs("  --help, -h\n      this text\n", out);
}

int sl_config_from_cli(sl_config_t *c, int argc, char **argv, const char *prog, const char *head)
{
    char err[1024];
    int rc = sl_config_parse_args(c, argc, argv, err, sizeof err);
    if (rc == 1) {
        sl_config_usage(c, head, stdout);
        return -1;
    }
    if (rc == 0)
        rc = sl_config_load_env(c, NULL, NULL, err, sizeof err);
    const char *file = sl_config_str(c, "config");
    if (rc == 0 && file) {
        sl_diag_t *d = sl_diag_new(file);
        rc = d ? sl_config_load_file(c, file, d, err, sizeof err) : SL_NOMEM;
        if (d)
            sl_diag_print(d, stderr);
        sl_diag_destroy(&d);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n(see %s --help)\n", prog, rc == SL_NOMEM ? "out of memory" : err,
                prog);
        return 2;
    }
    return 0;
}
