/* expr.c — the typed expression language of filters, projections and keys
 * (grammar, typing and null semantics are specified in sluice/expr.h).
 *
 * The spec loader and the planner compile each `where:` / `select:` / `key:`
 * expression once with sl_expr_compile(); task threads then evaluate the
 * immutable compiled form with sl_expr_eval() on every record, concurrently.
 *
 * Pipeline: a hand-written lexer feeds a recursive-descent parser that builds
 * the tree as a flat array of nodes (children are indices: first child, next
 * sibling), then a checking pass gives every node its result type. The
 * compiled form is that array plus a pool holding the unescaped string
 * literals. Evaluation is a recursive walk over the array that only reads it
 * and never mallocs: strings it builds come from the caller's arena.
 *
 * Decisions the header leaves open:
 *  - length() counts BYTES, not code points; substr() is 1-based and counts
 *    bytes (it may split a UTF-8 sequence); lower/upper/trim are ASCII-only
 *    (bytes >= 0x80 are left alone, trim strips ASCII whitespace).
 *  - substr(s, start, len) follows SQL: it covers positions [start,
 *    start+len) clipped to [1, length(s)], so substr('hello', 0, 3) = 'he';
 *    a negative len gives null.
 *  - String comparisons are bytewise (memcmp, shorter prefix first), exactly
 *    like sl_value_cmp. Double comparisons follow sl_value_cmp too: NaN equals
 *    NaN and sorts above every number; -0.0 = 0.0. int64 compares with double
 *    after conversion to double.
 *  - concat() converts non-string arguments as cast(x as string) does; `||`
 *    needs strings. Both propagate null like every function but coalesce.
 *  - Timestamps: ts +/- int64 ms -> timestamp, int64 + ts -> timestamp,
 *    ts - ts -> int64 ms; they compare only with timestamps. cast between
 *    string and timestamp uses ISO-8601 UTC ("2024-05-01T12:00:00.000Z";
 *    parsing also accepts a date alone, a ' ' for 'T', and +hh:mm offsets);
 *    a string of digits casts as milliseconds. cast between bool and
 *    timestamp is a type error; every other pair of types converts.
 *  - cast to int64/timestamp truncates doubles toward zero; NaN, out-of-range
 *    doubles and unparsable strings give null.
 *  - The literal `null` has type SL_TYPE_NULL; an operator with a null
 *    literal operand takes its type from the other operand (int64 for
 *    arithmetic when both are null). A case or coalesce whose branches are
 *    all the literal null also has type SL_TYPE_NULL.
 *  - String results longer than UINT32_MAX bytes make sl_expr_eval return
 *    SL_RANGE (a row could not hold them anyway).
 *  - Unknown fields are SL_TYPE errors (they depend on the schema); unknown
 *    functions and types, wrong argument counts and all syntax are SL_PARSE.
 *  - year/month/day/hour/minute read a timestamp in UTC, proleptic
 *    Gregorian, flooring before the epoch (hour(-1 ms) = 23).
 *  - count_char counts bytes equal to its one-byte literal.
 *  - split_index and regexp_extract return views into their string argument
 *    (no copy). split_index follows Flink's SPLIT_INDEX (Commons Lang's
 *    splitByWholeSeparatorPreserveAllTokens): empty fields are kept, the
 *    separator is matched whole, left to right; an empty string has no
 *    field at all (null), and an empty separator does not split (field 0
 *    is the string).
 *  - regexp_extract compiles its pattern once with regcomp(REG_EXTENDED)
 *    in the C library's current locale; evaluation calls regexec on a
 *    NUL-terminated copy of the string (row strings are not terminated; a
 *    stack buffer when short, else the arena), with REG_STARTEND where the
 *    library has it so that embedded NULs count. (Passing the row's bytes
 *    with REG_STARTEND alone would be enough for glibc, but ASan's regexec
 *    interceptor reads up to a NUL regardless.) A group beyond the
 *    pattern's groups is a compile error for a literal, null otherwise.
 *    glibc's regexec takes a lock inside the regex_t, so threads sharing an
 *    expression serialise on it (correct, but a contended pattern costs).
 *    Fast path: a pattern of the simple shape
 *      [ '^' | '(' a|b|^... ')' ] LITERAL { c | [^set]* | '(' [^set]* ')' }
 *    (one-character alternatives or ^ before a literal, then literal
 *    characters and negated classes with a star, a class followed only by
 *    the end or by a character of its set) has at most one match from
 *    each start, so it is found with memmem for the literal and a scan,
 *    without regexec; the same match and groups as regexec (single-byte
 *    locales only, strings without NUL bytes; anything else, regexec).
 *  - Limits against hostile input: 64 KiB of source, 64 levels of syntactic
 *    nesting (parentheses, calls, unary operators), and a tree at most 256
 *    levels high (long left-associative chains such as a+b+c+...), which
 *    bounds the recursion of checking and evaluation. `and`/`or` chains are
 *    flattened into one node, so long predicate lists are not limited. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/expr.h"

#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/diag.h"
#include "sluice/err.h"

#define S_MAX_SRC (64 * 1024) /* bytes of source */
#define S_MAX_NEST 64         /* parentheses, calls, unary operators */
#define S_MAX_TREE 256        /* height of the tree */
#define S_MAX_GROUPS 32       /* capture groups of a regexp_extract pattern */
#define S_FAST_LIT 64         /* fast regexp: longest literal */
#define S_FAST_ITEMS 16       /* fast regexp: items after the literal */

typedef enum {
    N_LIT,
    N_FIELD,
    N_NEG,
    N_NOT,
    N_AND,
    N_OR,
    N_ADD,
    N_SUB,
    N_MUL,
    N_DIV,
    N_MOD,
    N_CAT,
    N_EQ,
    N_NE,
    N_LT,
    N_LE,
    N_GT,
    N_GE,
    N_ISNULL,
    N_NOTNULL,
    N_CASE,
    N_CAST,
    N_LOWER,
    N_UPPER,
    N_LENGTH,
    N_SUBSTR,
    N_CONCAT,
    N_TRIM,
    N_STARTS,
    N_CONTAINS,
    N_COALESCE,
    N_ABS,
    N_IN,
    N_NOTIN,
    N_YEAR,
    N_MONTH,
    N_DAY,
    N_HOUR,
    N_MINUTE,
    N_COUNTCHAR,
    N_SPLITIDX,
    N_REGEXP,
} s_op_t;

/* One node of the tree. After compilation nodes are only read. */
typedef struct {
    s_op_t op;      /* what the node computes */
    sl_type_t type; /* result type (N_CAST: the target type, set by the parser) */
    int first;      /* first child, -1 if none */
    int next;       /* next sibling in the parent's child list, -1 at the end */
    int tail;       /* last child, -1 if none (used while building) */
    int nkids;      /* number of children */
    int off;        /* byte offset of the node's token (operator, name, literal) */
    int start;      /* byte offset of the first byte of the subexpression */
    int depth;      /* height of the subtree, 1 for a leaf */
    int field;      /* N_FIELD: index in the schema, else -1 */
    bool has_else;  /* N_CASE: the last child is the else branch */
    int aux;        /* N_COUNTCHAR: the byte counted; N_REGEXP: index in regs */
    sl_value_t lit; /* N_LIT: the value; strings point into the pool */
} s_node_t;

/* One item after the literal of a fast regexp. */
typedef struct {
    bool cls;        /* a negated class with a star, else one character */
    unsigned char c; /* !cls: the character */
    int group;       /* cls: its group number, or 0 when not a group */
    uint8_t set[32]; /* cls: bitmap of the excluded characters */
} s_fitem_t;

/* A regexp_extract pattern of the simple shape, matched without regexec
 * (see the file comment). */
typedef struct {
    bool ok;              /* the pattern has the shape */
    bool bol;             /* '^' before the literal (bare or an alternative) */
    bool group1;          /* the alternatives before the literal are group 1 */
    uint8_t alts[32];     /* bitmap of the one-character alternatives */
    bool any_alt;         /* some character alternative */
    char lit[S_FAST_LIT]; /* the literal */
    uint32_t litlen;      /* its length (>= 1) */
    int nitems;           /* items after it */
    s_fitem_t items[S_FAST_ITEMS];
} s_fastre_t;

/* A compiled pattern of regexp_extract. */
typedef struct {
    regex_t re;      /* regcomp's */
    s_fastre_t fast; /* the fast form, when fast.ok */
} s_regex_t;

struct sl_expr {
    s_node_t *nodes; /* owned: the tree, children referenced by index */
    int nnodes;      /* entries in nodes */
    int root;        /* index of the root node */
    char *pool;      /* owned: unescaped string literals and names */
    s_regex_t *regs; /* owned: the compiled patterns of regexp_extract, only read */
    int nregs;       /* entries of regs (all compiled) */
};

/* ---- function table ------------------------------------------------------ */

static const struct {
    const char *name; /* lower-case name */
    s_op_t op;        /* node operation */
    int min, max;     /* argument count; max -1 = unbounded */
} s_funcs[] = {
    {"lower", N_LOWER, 1, 1},
    {"upper", N_UPPER, 1, 1},
    {"length", N_LENGTH, 1, 1},
    {"substr", N_SUBSTR, 2, 3},
    {"concat", N_CONCAT, 1, -1},
    {"trim", N_TRIM, 1, 1},
    {"starts_with", N_STARTS, 2, 2},
    {"contains", N_CONTAINS, 2, 2},
    {"coalesce", N_COALESCE, 1, -1},
    {"abs", N_ABS, 1, 1},
    {"year", N_YEAR, 1, 1},
    {"month", N_MONTH, 1, 1},
    {"day", N_DAY, 1, 1},
    {"hour", N_HOUR, 1, 1},
    {"minute", N_MINUTE, 1, 1},
    {"count_char", N_COUNTCHAR, 2, 2},
    {"split_index", N_SPLITIDX, 3, 3},
    {"regexp_extract", N_REGEXP, 2, 3},
};
#define S_NFUNCS ((int)(sizeof s_funcs / sizeof *s_funcs))

static const char *s_fn_name(s_op_t op)
{
    for (int i = 0; i < S_NFUNCS; i++)
        if (s_funcs[i].op == op)
            return s_funcs[i].name;
    return "?";
}

static const char *const s_keywords[] = {"and",  "or",   "not",  "is",   "null", "true", "false",
                                         "case", "when", "then", "else", "end",  "cast", "as"};

/* ---- lexer ---------------------------------------------------------------- */

enum {
    T_EOF,
    T_INT,
    T_DEC,
    T_STR,
    T_IDENT,
    T_QIDENT,
    T_LP,
    T_RP,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PCT,
    T_CAT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
};

typedef struct {
    int kind;      /* T_* */
    int off, len;  /* bytes of the token in the source */
    uint64_t ival; /* T_INT: the magnitude */
    double dval;   /* T_DEC: the value */
    bool call;     /* T_IDENT directly followed by '(' */
} s_tok_t;

typedef struct {
    const char *src;           /* the source, NUL-terminated */
    int len;                   /* strlen(src) */
    int pos;                   /* lexer position */
    s_tok_t tok;               /* current token */
    s_node_t *nodes;           /* the tree being built */
    int nnodes, capnodes;      /* used and allocated entries of nodes */
    char *pool;                /* string pool, 2 * len + 2 bytes */
    size_t poolused;           /* bytes of pool used */
    const sl_schema_t *schema; /* fields may be NULL */
    int nest;                  /* current syntactic nesting */
    int rc;                    /* first error, 0 while none */
    s_regex_t *regs;           /* compiled patterns, one per N_REGEXP node */
    int nregs, capregs;        /* compiled and allocated entries of regs */
    char *err;                 /* caller's message buffer, may be NULL */
    size_t cap;                /* its size */
    int err_off;               /* offset of the first error */
} s_parser_t;

/* Records the first error (later ones are consequences); returns -1. */
__attribute__((format(printf, 4, 5))) static int s_fail(s_parser_t *p, int off, int rc,
                                                        const char *fmt, ...)
{
    if (p->rc == 0) {
        p->rc = rc;
        p->err_off = off < 0 ? 0 : (off > p->len ? p->len : off);
        if (p->err && p->cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err, p->cap, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static bool s_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool s_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool s_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool s_ident_char(unsigned char c)
{
    return s_ident_start(c) || s_is_digit(c);
}

static unsigned char s_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive comparison of n bytes at s with the lower-case word w. */
static bool s_word_eq(const char *s, int n, const char *w)
{
    int i = 0;
    for (; i < n; i++)
        if (w[i] == '\0' || s_lower((unsigned char)s[i]) != (unsigned char)w[i])
            return false;
    return w[i] == '\0';
}

/* Is the current token the keyword kw (lower case)? */
static bool s_kw(const s_parser_t *p, const char *kw)
{
    return p->tok.kind == T_IDENT && s_word_eq(p->src + p->tok.off, p->tok.len, kw);
}

static bool s_is_reserved(const s_parser_t *p)
{
    for (size_t i = 0; i < sizeof s_keywords / sizeof *s_keywords; i++)
        if (s_kw(p, s_keywords[i]))
            return true;
    return false;
}

/* Describes the current token for messages: 'text' or "end of expression". */
static const char *s_tok_desc(const s_parser_t *p, char *buf, size_t cap)
{
    if (p->tok.kind == T_EOF)
        return "end of expression";
    int n = p->tok.len > 32 ? 32 : p->tok.len;
    char tmp[40];
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->src[p->tok.off + i];
        tmp[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    tmp[n] = '\0';
    snprintf(buf, cap, "'%s%s'", tmp, p->tok.len > 32 ? "..." : "");
    return buf;
}

/* Copies n bytes of s into the pool, turning each doubled quote q into one,
 * and NUL-terminates. The pool is sized so that it cannot overflow. */
static char *s_pool_put(s_parser_t *p, const char *s, int n, char q)
{
    char *dst = p->pool + p->poolused;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        dst[k++] = s[i];
        if (q && s[i] == q && i + 1 < n && s[i + 1] == q)
            i++;
    }
    dst[k] = '\0';
    p->poolused += k + 1;
    return dst;
}

static int s_lex_number(s_parser_t *p, int i)
{
    const char *s = p->src;
    s_tok_t *t = &p->tok;
    int k = i;
    bool dec = false;
    while (s_is_digit((unsigned char)s[k]))
        k++;
    if (s[k] == '.' && s_is_digit((unsigned char)s[k + 1])) {
        dec = true;
        k++;
        while (s_is_digit((unsigned char)s[k]))
            k++;
    }
    if ((s[k] == 'e' || s[k] == 'E') &&
        (s_is_digit((unsigned char)s[k + 1]) ||
         ((s[k + 1] == '+' || s[k + 1] == '-') && s_is_digit((unsigned char)s[k + 2])))) {
        dec = true;
        k += 2;
        while (s_is_digit((unsigned char)s[k]))
            k++;
    }
    if (s_ident_char((unsigned char)s[k]) || s[k] == '.') {
        int e = k;
        while (e - i < 40 && (s_ident_char((unsigned char)s[e]) || s[e] == '.'))
            e++;
        return s_fail(p, i, SL_PARSE, "invalid number '%.*s'", e - i, s + i);
    }
    t->off = i;
    t->len = k - i;
    if (dec) {
        char *end = NULL;
        double d = strtod(s + i, &end);
        if (end != s + k)
            return s_fail(p, i, SL_PARSE, "invalid number '%.*s'", k - i > 40 ? 40 : k - i, s + i);
        if (isinf(d))
            return s_fail(p, i, SL_PARSE, "number out of range");
        t->kind = T_DEC;
        t->dval = d;
    } else {
        uint64_t v = 0;
        for (int j = i; j < k; j++) {
            unsigned dig = (unsigned)(s[j] - '0');
            if (v > (UINT64_MAX - dig) / 10)
                return s_fail(p, i, SL_PARSE, "integer literal out of range");
            v = v * 10 + dig;
        }
        t->kind = T_INT;
        t->ival = v;
    }
    p->pos = k;
    return 0;
}

/* Scans a quoted token ('string' or `identifier`) starting at i; doubling
 * the quote escapes it. */
static int s_lex_quoted(s_parser_t *p, int i, char q, int kind)
{
    const char *s = p->src;
    int j = i + 1;
    for (;;) {
        if (j >= p->len)
            return s_fail(p, i, SL_PARSE,
                          q == '\'' ? "unterminated string" : "unterminated quoted identifier");
        if (s[j] == q) {
            if (s[j + 1] == q) {
                j += 2;
                continue;
            }
            j++;
            break;
        }
        j++;
    }
    p->tok.kind = kind;
    p->tok.off = i;
    p->tok.len = j - i;
    p->pos = j;
    if (kind == T_QIDENT && j - i == 2)
        return s_fail(p, i, SL_PARSE, "empty quoted identifier");
    return 0;
}

/* Reads the next token into p->tok. Returns 0 or -1 after s_fail. */
static int s_next(s_parser_t *p)
{
    const char *s = p->src;
    int i = p->pos;
    while (i < p->len && s_is_space((unsigned char)s[i]))
        i++;
    s_tok_t *t = &p->tok;
    memset(t, 0, sizeof *t);
    t->off = i;
    if (i >= p->len) {
        t->kind = T_EOF;
        p->pos = i;
        return 0;
    }
    unsigned char c = (unsigned char)s[i];
    int j = i + 1;
    int kind = -1;
    switch (c) {
    case '(':
        kind = T_LP;
        break;
    case ')':
        kind = T_RP;
        break;
    case ',':
        kind = T_COMMA;
        break;
    case '+':
        kind = T_PLUS;
        break;
    case '-':
        kind = T_MINUS;
        break;
    case '*':
        kind = T_STAR;
        break;
    case '/':
        kind = T_SLASH;
        break;
    case '%':
        kind = T_PCT;
        break;
    case '|':
        if (s[j] != '|')
            return s_fail(p, i, SL_PARSE, "unexpected character '|' (did you mean '||'?)");
        kind = T_CAT;
        j++;
        break;
    case '=':
        if (s[j] == '=')
            j++;
        kind = T_EQ;
        break;
    case '!':
        if (s[j] != '=')
            return s_fail(p, i, SL_PARSE, "unexpected character '!' (use 'not' or '!=')");
        kind = T_NE;
        j++;
        break;
    case '<':
        kind = T_LT;
        if (s[j] == '=') {
            kind = T_LE;
            j++;
        } else if (s[j] == '>') {
            kind = T_NE;
            j++;
        }
        break;
    case '>':
        kind = T_GT;
        if (s[j] == '=') {
            kind = T_GE;
            j++;
        }
        break;
    case '\'':
        return s_lex_quoted(p, i, '\'', T_STR);
    case '`':
        return s_lex_quoted(p, i, '`', T_QIDENT);
    default:
        if (s_is_digit(c) || (c == '.' && s_is_digit((unsigned char)s[j])))
            return s_lex_number(p, i);
        if (s_ident_start(c)) {
            while (s_ident_char((unsigned char)s[j]))
                j++;
            t->kind = T_IDENT;
            t->len = j - i;
            p->pos = j;
            int k = j;
            while (k < p->len && s_is_space((unsigned char)s[k]))
                k++;
            t->call = s[k] == '(';
            return 0;
        }
        if (c < 0x20 || c == 0x7f)
            return s_fail(p, i, SL_PARSE, "unexpected character 0x%02x", c);
        return s_fail(p, i, SL_PARSE, "unexpected character '%c'", c);
    }
    t->kind = kind;
    t->len = j - i;
    p->pos = j;
    return 0;
}

/* ---- tree building -------------------------------------------------------- */

static int s_node(s_parser_t *p, s_op_t op, int off, int start)
{
    if (p->nnodes == p->capnodes) {
        int ncap = p->capnodes ? 2 * p->capnodes : 16;
        s_node_t *nn = realloc(p->nodes, (size_t)ncap * sizeof *nn);
        if (!nn)
            return s_fail(p, off, SL_NOMEM, "out of memory");
        p->nodes = nn;
        p->capnodes = ncap;
    }
    s_node_t *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->type = SL_TYPE_NULL;
    n->first = n->next = n->tail = -1;
    n->off = off;
    n->start = start;
    n->depth = 1;
    n->field = -1;
    n->aux = -1;
    n->lit.is_null = true;
    return p->nnodes++;
}

/* Appends kid to parent's children and enforces the tree height limit. */
static int s_add_kid(s_parser_t *p, int parent, int kid)
{
    s_node_t *n = &p->nodes[parent];
    if (n->tail < 0)
        n->first = kid;
    else
        p->nodes[n->tail].next = kid;
    n->tail = kid;
    n->nkids++;
    if (p->nodes[kid].depth + 1 > n->depth)
        n->depth = p->nodes[kid].depth + 1;
    if (n->depth > S_MAX_TREE)
        return s_fail(p, n->off, SL_PARSE,
                      "expression too complex (more than %d levels of operators)", S_MAX_TREE);
    return 0;
}

static int s_binary(s_parser_t *p, s_op_t op, int off, int a, int b)
{
    int n = s_node(p, op, off, p->nodes[a].start);
    if (n < 0 || s_add_kid(p, n, a) < 0 || s_add_kid(p, n, b) < 0)
        return -1;
    return n;
}

static int s_enter(s_parser_t *p)
{
    if (++p->nest > S_MAX_NEST)
        return s_fail(p, p->tok.off, SL_PARSE, "expression nested too deeply (limit %d levels)",
                      S_MAX_NEST);
    return 0;
}

static int s_parse_expr(s_parser_t *p);

static int s_expect(s_parser_t *p, int kind, const char *what)
{
    if (p->tok.kind != kind)
        return s_fail(p, p->tok.off, SL_PARSE, "expected '%s'", what);
    return s_next(p);
}

static int s_expect_kw(s_parser_t *p, const char *kw)
{
    if (!s_kw(p, kw))
        return s_fail(p, p->tok.off, SL_PARSE, "expected '%s'", kw);
    return s_next(p);
}

static int s_parse_field(s_parser_t *p)
{
    int off = p->tok.off;
    const char *name = p->tok.kind == T_QIDENT
                           ? s_pool_put(p, p->src + off + 1, p->tok.len - 2, '`')
                           : s_pool_put(p, p->src + off, p->tok.len, 0);
    int idx = p->schema ? sl_schema_find(p->schema, name) : -1;
    if (idx < 0) {
        const char *hint = NULL;
        int nf = p->schema ? p->schema->nfields : 0;
        const char **cands = nf > 0 ? malloc((size_t)nf * sizeof *cands) : NULL;
        if (cands) {
            for (int i = 0; i < nf; i++)
                cands[i] = p->schema->fields[i].name;
            hint = sl_closest(name, cands, nf);
        }
        if (hint)
            s_fail(p, off, SL_TYPE, "unknown field '%s' (did you mean '%s'?)", name, hint);
        else
            s_fail(p, off, SL_TYPE, "unknown field '%s'", name);
        free(cands);
        return -1;
    }
    int n = s_node(p, N_FIELD, off, off);
    if (n < 0)
        return -1;
    p->nodes[n].field = idx;
    p->nodes[n].type = p->schema->fields[idx].type;
    return s_next(p) < 0 ? -1 : n;
}

static int s_parse_call(s_parser_t *p)
{
    int off = p->tok.off, nlen = p->tok.len;
    const char *name = p->src + off;
    int fi = -1;
    for (int i = 0; i < S_NFUNCS; i++)
        if (s_word_eq(name, nlen, s_funcs[i].name))
            fi = i;
    if (fi < 0) {
        char low[64];
        int n = nlen < 63 ? nlen : 63;
        for (int i = 0; i < n; i++)
            low[i] = (char)s_lower((unsigned char)name[i]);
        low[n] = '\0';
        const char *cands[S_NFUNCS + 1];
        for (int i = 0; i < S_NFUNCS; i++)
            cands[i] = s_funcs[i].name;
        cands[S_NFUNCS] = "cast";
        const char *hint = sl_closest(low, cands, S_NFUNCS + 1);
        if (hint)
            return s_fail(p, off, SL_PARSE, "unknown function '%.*s' (did you mean '%s'?)",
                          nlen > 64 ? 64 : nlen, name, hint);
        return s_fail(p, off, SL_PARSE, "unknown function '%.*s'", nlen > 64 ? 64 : nlen, name);
    }
    int node = s_node(p, s_funcs[fi].op, off, off);
    if (node < 0 || s_next(p) < 0 || s_next(p) < 0) /* name, '(' */
        return -1;
    if (p->tok.kind != T_RP) {
        for (;;) {
            int a = s_parse_expr(p);
            if (a < 0 || s_add_kid(p, node, a) < 0)
                return -1;
            if (p->tok.kind != T_COMMA)
                break;
            if (s_next(p) < 0)
                return -1;
        }
    }
    if (s_expect(p, T_RP, ")") < 0)
        return -1;
    int got = p->nodes[node].nkids, min = s_funcs[fi].min, max = s_funcs[fi].max;
    if (got < min || (max >= 0 && got > max)) {
        if (max < 0)
            return s_fail(p, off, SL_PARSE, "function '%s' takes at least %d argument%s, got %d",
                          s_funcs[fi].name, min, min == 1 ? "" : "s", got);
        if (min == max)
            return s_fail(p, off, SL_PARSE, "function '%s' takes %d argument%s, got %d",
                          s_funcs[fi].name, min, min == 1 ? "" : "s", got);
        return s_fail(p, off, SL_PARSE, "function '%s' takes %d to %d arguments, got %d",
                      s_funcs[fi].name, min, max, got);
    }
    return node;
}

static int s_parse_cast(s_parser_t *p)
{
    int off = p->tok.off;
    if (s_next(p) < 0)
        return -1;
    if (p->tok.kind != T_LP)
        return s_fail(p, p->tok.off, SL_PARSE, "expected '(' after 'cast'");
    if (s_next(p) < 0)
        return -1;
    int node = s_node(p, N_CAST, off, off);
    if (node < 0)
        return -1;
    int a = s_parse_expr(p);
    if (a < 0 || s_add_kid(p, node, a) < 0 || s_expect_kw(p, "as") < 0)
        return -1;
    if (p->tok.kind != T_IDENT)
        return s_fail(p, p->tok.off, SL_PARSE, "expected a type name");
    char low[32];
    int n = p->tok.len < 31 ? p->tok.len : 31;
    for (int i = 0; i < n; i++)
        low[i] = (char)s_lower((unsigned char)p->src[p->tok.off + i]);
    low[n] = '\0';
    sl_type_t t;
    if (p->tok.len > 31 || sl_type_parse(low, &t) != 0 || t == SL_TYPE_NULL) {
        static const char *const types[] = {"int64", "double", "bool", "string", "timestamp"};
        const char *hint = sl_closest(low, types, 5);
        if (hint)
            return s_fail(p, p->tok.off, SL_PARSE, "unknown type '%s' (did you mean '%s'?)", low,
                          hint);
        return s_fail(p, p->tok.off, SL_PARSE,
                      "unknown type '%s' (types: int64, double, bool, string, timestamp)", low);
    }
    p->nodes[node].type = t;
    if (s_next(p) < 0 || s_expect(p, T_RP, ")") < 0)
        return -1;
    return node;
}

static int s_parse_case(s_parser_t *p)
{
    int off = p->tok.off;
    int node = s_node(p, N_CASE, off, off);
    if (node < 0 || s_next(p) < 0)
        return -1;
    if (!s_kw(p, "when"))
        return s_fail(p, p->tok.off, SL_PARSE, "expected 'when'");
    while (s_kw(p, "when")) {
        if (s_next(p) < 0)
            return -1;
        int c = s_parse_expr(p);
        if (c < 0 || s_add_kid(p, node, c) < 0 || s_expect_kw(p, "then") < 0)
            return -1;
        int r = s_parse_expr(p);
        if (r < 0 || s_add_kid(p, node, r) < 0)
            return -1;
    }
    if (s_kw(p, "else")) {
        if (s_next(p) < 0)
            return -1;
        int e = s_parse_expr(p);
        if (e < 0 || s_add_kid(p, node, e) < 0)
            return -1;
        p->nodes[node].has_else = true;
    }
    if (s_expect_kw(p, "end") < 0)
        return -1;
    return node;
}

static int s_literal(s_parser_t *p, sl_value_t v)
{
    int n = s_node(p, N_LIT, p->tok.off, p->tok.off);
    if (n < 0)
        return -1;
    p->nodes[n].lit = v;
    p->nodes[n].type = v.is_null ? SL_TYPE_NULL : v.type;
    return s_next(p) < 0 ? -1 : n;
}

static int s_parse_primary(s_parser_t *p)
{
    char buf[48];
    switch (p->tok.kind) {
    case T_INT:
        if (p->tok.ival > (uint64_t)INT64_MAX)
            return s_fail(p, p->tok.off, SL_PARSE, "integer literal out of range");
        return s_literal(p, sl_value_int((int64_t)p->tok.ival));
    case T_DEC:
        return s_literal(p, sl_value_double(p->tok.dval));
    case T_STR: {
        const char *s = s_pool_put(p, p->src + p->tok.off + 1, p->tok.len - 2, '\'');
        return s_literal(p, sl_value_str(s, (uint32_t)strlen(s)));
    }
    case T_QIDENT:
        return s_parse_field(p);
    case T_LP: {
        int lp = p->tok.off;
        if (s_next(p) < 0)
            return -1;
        int a = s_parse_expr(p);
        if (a < 0 || s_expect(p, T_RP, ")") < 0)
            return -1;
        p->nodes[a].start = lp;
        return a;
    }
    case T_IDENT:
        if (s_kw(p, "null"))
            return s_literal(p, sl_value_null());
        if (s_kw(p, "true"))
            return s_literal(p, sl_value_bool(true));
        if (s_kw(p, "false"))
            return s_literal(p, sl_value_bool(false));
        if (s_kw(p, "case"))
            return s_parse_case(p);
        if (s_kw(p, "cast"))
            return s_parse_cast(p);
        if (s_is_reserved(p))
            return s_fail(p, p->tok.off, SL_PARSE, "expected an expression, got keyword %s",
                          s_tok_desc(p, buf, sizeof buf));
        if (p->tok.call)
            return s_parse_call(p);
        return s_parse_field(p);
    case T_EOF:
        return s_fail(p, p->tok.off, SL_PARSE, "expected an expression, got end of expression");
    default:
        return s_fail(p, p->tok.off, SL_PARSE, "expected an expression, got %s",
                      s_tok_desc(p, buf, sizeof buf));
    }
}

static int s_parse_unary(s_parser_t *p)
{
    if (p->tok.kind != T_MINUS)
        return s_parse_primary(p);
    int off = p->tok.off;
    if (s_enter(p) < 0 || s_next(p) < 0)
        return -1;
    int n;
    if (p->tok.kind == T_INT) { /* fold, so that -9223372036854775808 is a literal */
        if (p->tok.ival > (uint64_t)INT64_MAX + 1u)
            return s_fail(p, p->tok.off, SL_PARSE, "integer literal out of range");
        int64_t v = p->tok.ival == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)p->tok.ival;
        n = s_literal(p, sl_value_int(v));
        if (n >= 0)
            p->nodes[n].off = p->nodes[n].start = off;
    } else if (p->tok.kind == T_DEC) {
        n = s_literal(p, sl_value_double(-p->tok.dval));
        if (n >= 0)
            p->nodes[n].off = p->nodes[n].start = off;
    } else {
        int a = s_parse_unary(p);
        if (a < 0)
            return -1;
        n = s_node(p, N_NEG, off, off);
        if (n < 0 || s_add_kid(p, n, a) < 0)
            return -1;
    }
    p->nest--;
    return n;
}

static int s_parse_mul(s_parser_t *p)
{
    int a = s_parse_unary(p);
    while (a >= 0) {
        s_op_t op;
        if (p->tok.kind == T_STAR)
            op = N_MUL;
        else if (p->tok.kind == T_SLASH)
            op = N_DIV;
        else if (p->tok.kind == T_PCT)
            op = N_MOD;
        else
            break;
        int off = p->tok.off;
        if (s_next(p) < 0)
            return -1;
        int b = s_parse_unary(p);
        if (b < 0)
            return -1;
        a = s_binary(p, op, off, a, b);
    }
    return a;
}

static int s_parse_add(s_parser_t *p)
{
    int a = s_parse_mul(p);
    while (a >= 0) {
        s_op_t op;
        if (p->tok.kind == T_PLUS)
            op = N_ADD;
        else if (p->tok.kind == T_MINUS)
            op = N_SUB;
        else if (p->tok.kind == T_CAT)
            op = N_CAT;
        else
            break;
        int off = p->tok.off;
        if (s_next(p) < 0)
            return -1;
        int b = s_parse_mul(p);
        if (b < 0)
            return -1;
        a = s_binary(p, op, off, a, b);
    }
    return a;
}

static bool s_cmp_op(int kind, s_op_t *op)
{
    switch (kind) {
    case T_EQ:
        *op = N_EQ;
        return true;
    case T_NE:
        *op = N_NE;
        return true;
    case T_LT:
        *op = N_LT;
        return true;
    case T_LE:
        *op = N_LE;
        return true;
    case T_GT:
        *op = N_GT;
        return true;
    case T_GE:
        *op = N_GE;
        return true;
    default:
        return false;
    }
}

/* The list of `x [not] in (a, b, ...)` after the operator: one node whose
 * first child is x and the others the items. */
static int s_parse_in(s_parser_t *p, int a)
{
    int off = p->tok.off;
    bool neg = s_kw(p, "not");
    if (neg) {
        if (s_next(p) < 0)
            return -1;
        if (!s_kw(p, "in"))
            return s_fail(p, p->tok.off, SL_PARSE, "expected 'in' after 'not'");
    }
    if (s_next(p) < 0)
        return -1;
    if (p->tok.kind != T_LP)
        return s_fail(p, p->tok.off, SL_PARSE, "expected '(' after 'in'");
    if (s_next(p) < 0)
        return -1;
    int n = s_node(p, neg ? N_NOTIN : N_IN, off, p->nodes[a].start);
    if (n < 0 || s_add_kid(p, n, a) < 0)
        return -1;
    for (;;) {
        int b = s_parse_expr(p);
        if (b < 0 || s_add_kid(p, n, b) < 0)
            return -1;
        if (p->tok.kind != T_COMMA)
            break;
        if (s_next(p) < 0)
            return -1;
    }
    if (s_expect(p, T_RP, ")") < 0)
        return -1;
    return n;
}

static int s_parse_cmp(s_parser_t *p)
{
    int a = s_parse_add(p);
    if (a < 0)
        return -1;
    s_op_t op;
    int n = a;
    if (s_cmp_op(p->tok.kind, &op)) {
        int off = p->tok.off;
        if (s_next(p) < 0)
            return -1;
        int b = s_parse_add(p);
        if (b < 0)
            return -1;
        n = s_binary(p, op, off, a, b);
    } else if (s_kw(p, "is")) {
        int off = p->tok.off;
        if (s_next(p) < 0)
            return -1;
        bool neg = s_kw(p, "not");
        if (neg && s_next(p) < 0)
            return -1;
        if (!s_kw(p, "null"))
            return s_fail(p, p->tok.off, SL_PARSE, "expected 'null' after 'is'");
        if (s_next(p) < 0)
            return -1;
        n = s_node(p, neg ? N_NOTNULL : N_ISNULL, off, p->nodes[a].start);
        if (n < 0 || s_add_kid(p, n, a) < 0)
            return -1;
    } else if (s_kw(p, "in") || s_kw(p, "not")) {
        n = s_parse_in(p, a);
        if (n < 0)
            return -1;
    } else {
        return a;
    }
    if (n >= 0 && (s_cmp_op(p->tok.kind, &op) || s_kw(p, "is") || s_kw(p, "in")))
        return s_fail(p, p->tok.off, SL_PARSE,
                      "comparisons cannot be chained; combine them with 'and'");
    return n;
}

static int s_parse_not(s_parser_t *p)
{
    if (!s_kw(p, "not"))
        return s_parse_cmp(p);
    int off = p->tok.off;
    if (s_enter(p) < 0 || s_next(p) < 0)
        return -1;
    int a = s_parse_not(p);
    if (a < 0)
        return -1;
    int n = s_node(p, N_NOT, off, off);
    if (n < 0 || s_add_kid(p, n, a) < 0)
        return -1;
    p->nest--;
    return n;
}

/* and/or chains become one node with many children (kept shallow). */
static int s_parse_chain(s_parser_t *p, const char *kw, s_op_t op, int (*sub)(s_parser_t *))
{
    int a = sub(p);
    if (a < 0 || !s_kw(p, kw))
        return a;
    int n = s_node(p, op, p->tok.off, p->nodes[a].start);
    if (n < 0 || s_add_kid(p, n, a) < 0)
        return -1;
    while (s_kw(p, kw)) {
        if (s_next(p) < 0)
            return -1;
        int b = sub(p);
        if (b < 0 || s_add_kid(p, n, b) < 0)
            return -1;
    }
    return n;
}

static int s_parse_and(s_parser_t *p)
{
    return s_parse_chain(p, "and", N_AND, s_parse_not);
}

static int s_parse_expr(s_parser_t *p)
{
    if (s_enter(p) < 0)
        return -1;
    int n = s_parse_chain(p, "or", N_OR, s_parse_and);
    p->nest--;
    return n;
}

/* ---- type checking -------------------------------------------------------- */

static const char *s_tn(sl_type_t t)
{
    const char *n = sl_type_name(t);
    return n ? n : "?";
}

static bool s_is_num(sl_type_t t)
{
    return t == SL_TYPE_INT64 || t == SL_TYPE_DOUBLE || t == SL_TYPE_NULL;
}

static const char *s_op_text(s_op_t op)
{
    switch (op) {
    case N_ADD:
        return "+";
    case N_SUB:
        return "-";
    case N_MUL:
        return "*";
    case N_DIV:
        return "/";
    case N_MOD:
        return "%";
    case N_EQ:
        return "=";
    case N_NE:
        return "!=";
    case N_LT:
        return "<";
    case N_LE:
        return "<=";
    case N_GT:
        return ">";
    case N_GE:
        return ">=";
    case N_AND:
        return "and";
    case N_OR:
        return "or";
    default:
        return "?";
    }
}

/* Common type of two branches (case, coalesce); -1 when incompatible. */
static int s_unify(sl_type_t a, sl_type_t b, sl_type_t *out)
{
    if (a == SL_TYPE_NULL || a == b) {
        *out = b;
        return 0;
    }
    if (b == SL_TYPE_NULL) {
        *out = a;
        return 0;
    }
    if (s_is_num(a) && s_is_num(b)) {
        *out = SL_TYPE_DOUBLE;
        return 0;
    }
    return -1;
}

static int s_check_arith(s_parser_t *p, s_node_t *n, sl_type_t ta, sl_type_t tb)
{
    const char *o = s_op_text(n->op);
    if (s_is_num(ta) && s_is_num(tb)) {
        n->type = ta == SL_TYPE_DOUBLE || tb == SL_TYPE_DOUBLE ? SL_TYPE_DOUBLE : SL_TYPE_INT64;
        return 0;
    }
    bool ia = ta == SL_TYPE_INT64 || ta == SL_TYPE_NULL;
    bool ib = tb == SL_TYPE_INT64 || tb == SL_TYPE_NULL;
    if (n->op == N_ADD && ((ta == SL_TYPE_TIMESTAMP && ib) || (ia && tb == SL_TYPE_TIMESTAMP))) {
        n->type = SL_TYPE_TIMESTAMP;
        return 0;
    }
    if (n->op == N_SUB && ta == SL_TYPE_TIMESTAMP && ib) {
        n->type = SL_TYPE_TIMESTAMP;
        return 0;
    }
    if (n->op == N_SUB && (ta == SL_TYPE_TIMESTAMP || ta == SL_TYPE_NULL) &&
        tb == SL_TYPE_TIMESTAMP) {
        n->type = SL_TYPE_INT64;
        return 0;
    }
    if (n->op == N_ADD && (ta == SL_TYPE_TIMESTAMP || tb == SL_TYPE_TIMESTAMP))
        return s_fail(p, n->off, SL_TYPE,
                      "operator '+' needs numbers or timestamp + int64 (milliseconds), got %s "
                      "and %s",
                      s_tn(ta), s_tn(tb));
    if (n->op == N_SUB && (ta == SL_TYPE_TIMESTAMP || tb == SL_TYPE_TIMESTAMP))
        return s_fail(p, n->off, SL_TYPE,
                      "operator '-' needs numbers, timestamp - int64 or timestamp - timestamp, "
                      "got %s and %s",
                      s_tn(ta), s_tn(tb));
    return s_fail(p, n->off, SL_TYPE, "operator '%s' needs numbers, got %s and %s", o, s_tn(ta),
                  s_tn(tb));
}

static int s_need(s_parser_t *p, const s_node_t *arg, sl_type_t want, const char *what)
{
    if (arg->type == want || arg->type == SL_TYPE_NULL)
        return 0;
    return s_fail(p, arg->start, SL_TYPE, "%s needs %s %s, got %s", what,
                  want == SL_TYPE_INT64 ? "an" : "a", s_tn(want), s_tn(arg->type));
}

/* Is node n a non-null string literal? */
static bool s_str_lit(const s_node_t *n)
{
    return n->op == N_LIT && !n->lit.is_null && n->lit.type == SL_TYPE_STRING;
}

/* Characters that are plain literals in an ERE (printable ASCII but the
 * operators) and inside a bracket ([, ], -, ^ and \\ excluded too). */
static bool s_ere_plain(char c)
{
    return c > ' ' && c < 127 && !strchr(".[]()*+?{}|^$\\", c);
}
static bool s_bracket_plain(char c)
{
    return c >= ' ' && c < 127 && !strchr("[]-^\\", c);
}
static void s_bit_set(uint8_t *m, unsigned char c)
{
    m[c >> 3] |= (uint8_t)(1u << (c & 7));
}
static bool s_bit(const uint8_t *m, unsigned char c)
{
    return (m[c >> 3] >> (c & 7)) & 1u;
}

/* The fast form of pattern pat (regcomp found nsub groups) into f; f->ok
 * false when pat has not the simple shape of the file comment. */
static void s_fast_compile(const char *pat, size_t nsub, s_fastre_t *f)
{
    memset(f, 0, sizeof *f);
    if (MB_CUR_MAX != 1) /* multibyte: classes match characters, not bytes */
        return;
    const char *q = pat;
    int groups = 0;
    if (*q == '^') {
        f->bol = true;
        q++;
    } else if (*q == '(') { /* (x|^|y): one character or ^ per alternative */
        q++;
        for (;;) {
            if (*q == '^')
                f->bol = true;
            else if (s_ere_plain(*q)) {
                s_bit_set(f->alts, (unsigned char)*q);
                f->any_alt = true;
            } else
                return;
            q++;
            if (*q == ')')
                break;
            if (*q != '|')
                return;
            q++;
        }
        q++;
        f->group1 = true;
        groups = 1;
    }
    while (s_ere_plain(*q) && f->litlen < S_FAST_LIT)
        f->lit[f->litlen++] = *q++;
    if (f->litlen == 0 || s_ere_plain(*q))
        return;
    /* one start, one match: an alternative character never begins the literal */
    if (s_bit(f->alts, (unsigned char)f->lit[0]))
        return;
    while (*q) {
        if (f->nitems == S_FAST_ITEMS)
            return;
        s_fitem_t *it = &f->items[f->nitems];
        if (s_ere_plain(*q)) {
            it->c = (unsigned char)*q++;
        } else {
            bool paren = *q == '(';
            q += paren;
            if (q[0] != '[' || q[1] != '^')
                return;
            q += 2;
            if (*q == ']')
                return;
            while (*q != ']') {
                if (!s_bracket_plain(*q))
                    return;
                s_bit_set(it->set, (unsigned char)*q++);
            }
            q++;
            if (*q++ != '*')
                return;
            if (paren && *q++ != ')')
                return;
            it->cls = true;
            it->group = paren ? ++groups : 0;
        }
        /* a class ends where the next item begins: at a character of its set */
        if (f->nitems > 0 && f->items[f->nitems - 1].cls &&
            (it->cls || !s_bit(f->items[f->nitems - 1].set, it->c)))
            return;
        f->nitems++;
    }
    if ((size_t)groups != nsub)
        return;
    f->ok = true;
}

static int64_t s_find(const char *h, uint32_t hn, uint32_t from, const char *nd, uint32_t nn);

/* The match of f in s[0, len) (no NUL in s): true and m[0..nsub] as
 * regexec would set them, or false without a match. */
static bool s_fast_match(const s_fastre_t *f, const char *s, uint32_t len, regmatch_t *m)
{
    uint32_t from = 0;
    while (from + f->litlen <= len) {
        int64_t at = s_find(s, len, from, f->lit, f->litlen);
        if (at < 0)
            return false;
        uint32_t p = (uint32_t)at;
        from = p + 1;
        uint32_t start;
        if (f->bol && p == 0)
            start = 0;
        else if (f->any_alt && p > 0 && s_bit(f->alts, (unsigned char)s[p - 1]))
            start = p - 1;
        else if (!f->bol && !f->any_alt && !f->group1)
            start = p;
        else
            continue;
        if (f->group1) {
            m[1].rm_so = (regoff_t)start;
            m[1].rm_eo = (regoff_t)p;
        }
        uint32_t pos = p + f->litlen;
        bool ok = true;
        for (int k = 0; ok && k < f->nitems; k++) {
            const s_fitem_t *it = &f->items[k];
            if (!it->cls) {
                ok = pos < len && (unsigned char)s[pos] == it->c;
                pos++;
                continue;
            }
            uint32_t b = pos;
            while (pos < len && !s_bit(it->set, (unsigned char)s[pos]))
                pos++;
            if (it->group) {
                m[it->group].rm_so = (regoff_t)b;
                m[it->group].rm_eo = (regoff_t)pos;
            }
        }
        if (!ok)
            continue;
        m[0].rm_so = (regoff_t)start;
        m[0].rm_eo = (regoff_t)pos;
        return true;
    }
    return false;
}

/* regexp_extract(s, 'pattern'[, group]): compiles the pattern into
 * p->regs[n->aux] and checks a literal group against its groups. */
static int s_check_regexp(s_parser_t *p, s_node_t *n, const s_node_t *a, const s_node_t *b)
{
    n->type = SL_TYPE_STRING;
    if (s_need(p, a, SL_TYPE_STRING, "function 'regexp_extract'") < 0)
        return -1;
    if (!s_str_lit(b))
        return s_fail(p, b->start, SL_TYPE,
                      "argument 2 of 'regexp_extract' must be a string literal (the pattern)");
    const s_node_t *g = b->next >= 0 ? &p->nodes[b->next] : NULL;
    if (g && s_need(p, g, SL_TYPE_INT64, "argument 3 of 'regexp_extract'") < 0)
        return -1;
    if (p->nregs == p->capregs)
        return s_fail(p, n->off, SL_NOMEM, "out of memory");
    regex_t *re = &p->regs[p->nregs].re;
    int rc = regcomp(re, b->lit.u.s, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof msg);
        regfree(re);
        return s_fail(p, b->start, SL_PARSE, "invalid regular expression: %s", msg);
    }
    s_fast_compile(b->lit.u.s, re->re_nsub, &p->regs[p->nregs].fast);
    n->aux = p->nregs++;
    if (re->re_nsub > S_MAX_GROUPS)
        return s_fail(p, b->start, SL_PARSE, "regular expression has %zu groups (limit %d)",
                      (size_t)re->re_nsub, S_MAX_GROUPS);
    if (g && g->op == N_LIT && !g->lit.is_null &&
        (g->lit.u.i < 0 || g->lit.u.i > (int64_t)re->re_nsub))
        return s_fail(p, g->start, SL_PARSE,
                      "group %" PRId64 " of a regular expression with %zu group%s", g->lit.u.i,
                      (size_t)re->re_nsub, re->re_nsub == 1 ? "" : "s");
    return 0;
}

static int s_check(s_parser_t *p, int i)
{
    for (int k = p->nodes[i].first; k >= 0; k = p->nodes[k].next)
        if (s_check(p, k) < 0)
            return -1;
    s_node_t *n = &p->nodes[i];
    s_node_t *a = n->first >= 0 ? &p->nodes[n->first] : NULL;
    s_node_t *b = a && a->next >= 0 ? &p->nodes[a->next] : NULL;
    char what[64];
    switch (n->op) {
    case N_LIT:
    case N_FIELD:
        return 0;
    case N_NEG:
        if (!s_is_num(a->type))
            return s_fail(p, a->start, SL_TYPE, "operator '-' needs a number, got %s",
                          s_tn(a->type));
        n->type = a->type == SL_TYPE_NULL ? SL_TYPE_INT64 : a->type;
        return 0;
    case N_ABS:
        if (!s_is_num(a->type))
            return s_fail(p, a->start, SL_TYPE, "function 'abs' needs a number, got %s",
                          s_tn(a->type));
        n->type = a->type == SL_TYPE_NULL ? SL_TYPE_INT64 : a->type;
        return 0;
    case N_NOT:
        n->type = SL_TYPE_BOOL;
        return s_need(p, a, SL_TYPE_BOOL, "operator 'not'");
    case N_AND:
    case N_OR:
        n->type = SL_TYPE_BOOL;
        snprintf(what, sizeof what, "operator '%s'", s_op_text(n->op));
        for (int k = n->first; k >= 0; k = p->nodes[k].next)
            if (s_need(p, &p->nodes[k], SL_TYPE_BOOL, what) < 0)
                return -1;
        return 0;
    case N_ADD:
    case N_SUB:
    case N_MUL:
    case N_DIV:
    case N_MOD:
        return s_check_arith(p, n, a->type, b->type);
    case N_CAT:
        n->type = SL_TYPE_STRING;
        if ((a->type != SL_TYPE_STRING && a->type != SL_TYPE_NULL) ||
            (b->type != SL_TYPE_STRING && b->type != SL_TYPE_NULL))
            return s_fail(p, n->off, SL_TYPE,
                          "operator '||' needs strings, got %s and %s (use concat() or cast)",
                          s_tn(a->type), s_tn(b->type));
        return 0;
    case N_EQ:
    case N_NE:
    case N_LT:
    case N_LE:
    case N_GT:
    case N_GE: {
        n->type = SL_TYPE_BOOL;
        sl_type_t u;
        if (s_unify(a->type, b->type, &u) < 0)
            return s_fail(p, n->off, SL_TYPE, "operator '%s' cannot compare %s with %s",
                          s_op_text(n->op), s_tn(a->type), s_tn(b->type));
        return 0;
    }
    case N_ISNULL:
    case N_NOTNULL:
        n->type = SL_TYPE_BOOL;
        return 0;
    case N_CASE: {
        sl_type_t t = SL_TYPE_NULL;
        int k = n->first;
        for (int pair = 0; pair < n->nkids / 2; pair++) {
            s_node_t *c = &p->nodes[k];
            if (s_need(p, c, SL_TYPE_BOOL, "case 'when' condition") < 0)
                return -1;
            s_node_t *r = &p->nodes[c->next];
            if (s_unify(t, r->type, &t) < 0)
                return s_fail(p, r->start, SL_TYPE, "case branches have different types: %s and %s",
                              s_tn(t), s_tn(r->type));
            k = r->next;
        }
        if (n->has_else) {
            s_node_t *r = &p->nodes[k];
            if (s_unify(t, r->type, &t) < 0)
                return s_fail(p, r->start, SL_TYPE, "case branches have different types: %s and %s",
                              s_tn(t), s_tn(r->type));
        }
        n->type = t;
        return 0;
    }
    case N_CAST:
        if ((a->type == SL_TYPE_BOOL && n->type == SL_TYPE_TIMESTAMP) ||
            (a->type == SL_TYPE_TIMESTAMP && n->type == SL_TYPE_BOOL))
            return s_fail(p, n->off, SL_TYPE, "cannot cast %s to %s", s_tn(a->type), s_tn(n->type));
        return 0;
    case N_LOWER:
    case N_UPPER:
    case N_TRIM:
    case N_LENGTH:
        n->type = n->op == N_LENGTH ? SL_TYPE_INT64 : SL_TYPE_STRING;
        snprintf(what, sizeof what, "function '%s'", s_fn_name(n->op));
        return s_need(p, a, SL_TYPE_STRING, what);
    case N_STARTS:
    case N_CONTAINS:
        n->type = SL_TYPE_BOOL;
        snprintf(what, sizeof what, "function '%s'", s_fn_name(n->op));
        if (s_need(p, a, SL_TYPE_STRING, what) < 0)
            return -1;
        return s_need(p, b, SL_TYPE_STRING, what);
    case N_SUBSTR:
        n->type = SL_TYPE_STRING;
        if (s_need(p, a, SL_TYPE_STRING, "function 'substr'") < 0 ||
            s_need(p, b, SL_TYPE_INT64, "argument 2 of 'substr'") < 0)
            return -1;
        if (b->next >= 0)
            return s_need(p, &p->nodes[b->next], SL_TYPE_INT64, "argument 3 of 'substr'");
        return 0;
    case N_CONCAT:
        n->type = SL_TYPE_STRING;
        return 0;
    case N_IN:
    case N_NOTIN:
        n->type = SL_TYPE_BOOL;
        for (int k = a->next; k >= 0; k = p->nodes[k].next) {
            sl_type_t u;
            if (s_unify(a->type, p->nodes[k].type, &u) < 0)
                return s_fail(p, p->nodes[k].start, SL_TYPE,
                              "operator 'in' cannot compare %s with %s", s_tn(a->type),
                              s_tn(p->nodes[k].type));
        }
        return 0;
    case N_YEAR:
    case N_MONTH:
    case N_DAY:
    case N_HOUR:
    case N_MINUTE:
        n->type = SL_TYPE_INT64;
        snprintf(what, sizeof what, "function '%s'", s_fn_name(n->op));
        return s_need(p, a, SL_TYPE_TIMESTAMP, what);
    case N_COUNTCHAR:
        n->type = SL_TYPE_INT64;
        if (s_need(p, a, SL_TYPE_STRING, "function 'count_char'") < 0)
            return -1;
        if (!s_str_lit(b) || b->lit.len != 1)
            return s_fail(p, b->start, SL_TYPE,
                          "argument 2 of 'count_char' must be a string literal of one character");
        n->aux = (unsigned char)b->lit.u.s[0];
        return 0;
    case N_SPLITIDX:
        n->type = SL_TYPE_STRING;
        if (s_need(p, a, SL_TYPE_STRING, "function 'split_index'") < 0 ||
            s_need(p, b, SL_TYPE_STRING, "argument 2 of 'split_index'") < 0)
            return -1;
        return s_need(p, &p->nodes[b->next], SL_TYPE_INT64, "argument 3 of 'split_index'");
    case N_REGEXP:
        return s_check_regexp(p, n, a, b);
    case N_COALESCE: {
        sl_type_t t = SL_TYPE_NULL;
        for (int k = n->first; k >= 0; k = p->nodes[k].next)
            if (s_unify(t, p->nodes[k].type, &t) < 0)
                return s_fail(p, p->nodes[k].start, SL_TYPE,
                              "coalesce arguments have different types: %s and %s", s_tn(t),
                              s_tn(p->nodes[k].type));
        n->type = t;
        return 0;
    }
    }
    return 0;
}

/* ---- public: compile ------------------------------------------------------ */

int sl_expr_compile(const char *src, const sl_schema_t *schema, sl_expr_t **out, char *err,
                    size_t cap, int *err_off)
{
    s_parser_t p;
    memset(&p, 0, sizeof p);
    p.err = err;
    p.cap = cap;
    if (err && cap)
        err[0] = '\0';
    if (err_off)
        *err_off = 0;
    if (out)
        *out = NULL;
    if (!src || !out) {
        if (err && cap)
            snprintf(err, cap, "no expression given");
        return SL_INVAL;
    }
    size_t len = strlen(src);
    if (len > S_MAX_SRC) {
        if (err && cap)
            snprintf(err, cap, "expression too long (%zu bytes, limit %d)", len, S_MAX_SRC);
        if (err_off)
            *err_off = S_MAX_SRC;
        return SL_PARSE;
    }
    p.src = src;
    p.len = (int)len;
    p.schema = schema;
    p.pool = malloc(2 * len + 2);
    if (!p.pool) {
        s_fail(&p, 0, SL_NOMEM, "out of memory");
        goto fail;
    }
    int root = -1;
    if (s_next(&p) == 0) {
        if (p.tok.kind == T_EOF)
            s_fail(&p, p.tok.off, SL_PARSE, "empty expression");
        else
            root = s_parse_expr(&p);
    }
    if (root >= 0 && p.tok.kind != T_EOF) {
        char buf[48];
        s_fail(&p, p.tok.off, SL_PARSE, "unexpected %s after the end of the expression",
               s_tok_desc(&p, buf, sizeof buf));
    }
    if (p.rc == 0 && root >= 0) {
        for (int i = 0; i < p.nnodes; i++)
            p.capregs += p.nodes[i].op == N_REGEXP;
        if (p.capregs > 0 && !(p.regs = malloc((size_t)p.capregs * sizeof *p.regs)))
            s_fail(&p, 0, SL_NOMEM, "out of memory");
        else
            s_check(&p, root);
    }
    if (p.rc != 0 || root < 0)
        goto fail;
    sl_expr_t *e = malloc(sizeof *e);
    if (!e) {
        s_fail(&p, 0, SL_NOMEM, "out of memory");
        goto fail;
    }
    e->nodes = p.nodes;
    e->nnodes = p.nnodes;
    e->root = root;
    e->pool = p.pool;
    e->regs = p.regs;
    e->nregs = p.nregs;
    *out = e;
    return 0;
fail:
    for (int i = 0; i < p.nregs; i++)
        regfree(&p.regs[i].re);
    free(p.regs);
    free(p.nodes);
    free(p.pool);
    if (err_off)
        *err_off = p.err_off;
    return p.rc ? p.rc : SL_PARSE;
}

void sl_expr_destroy(sl_expr_t **pp)
{
    if (!pp || !*pp)
        return;
    for (int i = 0; i < (*pp)->nregs; i++)
        regfree(&(*pp)->regs[i].re);
    free((*pp)->regs);
    free((*pp)->nodes);
    free((*pp)->pool);
    free(*pp);
    *pp = NULL;
}

sl_type_t sl_expr_type(const sl_expr_t *e)
{
    return e ? e->nodes[e->root].type : SL_TYPE_NULL;
}

int sl_expr_field_index(const sl_expr_t *e)
{
    if (!e || e->nodes[e->root].op != N_FIELD)
        return -1;
    return e->nodes[e->root].field;
}

void sl_expr_fields(const sl_expr_t *e, bool *used, int n)
{
    if (!e || !used)
        return;
    for (int i = 0; i < e->nnodes; i++) /* every node, reachable or not: a superset */
        if (e->nodes[i].op == N_FIELD && e->nodes[i].field >= 0 && e->nodes[i].field < n)
            used[e->nodes[i].field] = true;
}

int sl_expr_is_true(const sl_value_t *v)
{
    return v && !v->is_null && v->type == SL_TYPE_BOOL && v->u.b;
}

/* ---- conversions ---------------------------------------------------------- */

/* uint64 -> int64 by two's complement, without implementation-defined casts. */
static int64_t s_u2i(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(UINT64_MAX - u) - 1;
}

static double s_dbl(const sl_value_t *v)
{
    return v->type == SL_TYPE_DOUBLE ? v->u.d : (double)v->u.i;
}

static void s_null(sl_value_t *o, sl_type_t t)
{
    memset(o, 0, sizeof *o);
    o->is_null = true;
    o->type = t;
}

/* Makes o a value of type t: nulls get the type, int64 widens to double. */
static void s_coerce(sl_value_t *o, sl_type_t t)
{
    if (o->is_null)
        o->type = t;
    else if (t == SL_TYPE_DOUBLE && o->type == SL_TYPE_INT64)
        *o = sl_value_double((double)o->u.i);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t s_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void s_fmt_ts(int64_t ms, char *buf, size_t cap)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    int m, d;
    s_civil_from_days(days, &y, &m, &d);
    int r = (int)rem;
    snprintf(buf, cap, "%s%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y < 0 ? "-" : "",
             y < 0 ? -y : y, m, d, r / 3600000, r / 60000 % 60, r / 1000 % 60, r % 1000);
}

/* Reads exactly n (min..max) digits at s[*i]; returns false otherwise. */
static bool s_digits(const char *s, size_t len, size_t *i, int min, int max, int64_t *out)
{
    int64_t v = 0;
    int k = 0;
    while (*i < len && k < max && s_is_digit((unsigned char)s[*i])) {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    *out = v;
    return k >= min && !(*i < len && s_is_digit((unsigned char)s[*i]));
}

/* ISO-8601: [-]YYYY-MM-DD[(T| )hh:mm[:ss[.fff]]][Z|(+|-)hh[:]mm]. */
static bool s_parse_iso(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    int64_t y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0, tz = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (!s_digits(s, n, &i, 4, 9, &y) || i >= n || s[i++] != '-' ||
        !s_digits(s, n, &i, 2, 2, &mo) || i >= n || s[i++] != '-' || !s_digits(s, n, &i, 2, 2, &d))
        return false;
    if (neg)
        y = -y;
    if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        i++;
        if (!s_digits(s, n, &i, 2, 2, &hh) || i >= n || s[i++] != ':' ||
            !s_digits(s, n, &i, 2, 2, &mi))
            return false;
        if (i < n && s[i] == ':') {
            i++;
            if (!s_digits(s, n, &i, 2, 2, &ss))
                return false;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                i++;
                int k = 0;
                if (i >= n || !s_is_digit((unsigned char)s[i]))
                    return false;
                for (; i < n && s_is_digit((unsigned char)s[i]); i++, k++)
                    if (k < 3)
                        frac = frac * 10 + (s[i] - '0');
                for (; k < 3; k++)
                    frac *= 10;
            }
        }
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int64_t th, tm;
        if (!s_digits(s, n, &i, 2, 2, &th))
            return false;
        if (i < n && s[i] == ':')
            i++;
        if (!s_digits(s, n, &i, 2, 2, &tm) || th > 23 || tm > 59)
            return false;
        tz = sign * (th * 60 + tm);
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || hh > 23 || mi > 59 || ss > 59)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return false;
    int64_t days = s_days_from_civil(y, mo, d);
    if (days > 106751991166 || days < -106751991166)
        return false;
    *out = days * 86400000 + ((hh * 60 + mi) * 60 + ss) * 1000 + frac - tz * 60000;
    return true;
}

static void s_trim_bounds(const char *s, uint32_t len, uint32_t *b, uint32_t *e)
{
    uint32_t i = 0, j = len;
    while (i < j && s_is_space((unsigned char)s[i]))
        i++;
    while (j > i && s_is_space((unsigned char)s[j - 1]))
        j--;
    *b = i;
    *e = j;
}

/* Optional sign and decimal digits, nothing else; false on overflow. */
static bool s_parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i >= n)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (!s_is_digit((unsigned char)s[i]))
            return false;
        unsigned dig = (unsigned)(s[i] - '0');
        if (v > (lim - dig) / 10)
            return false;
        v = v * 10 + dig;
    }
    *out = neg ? s_u2i(0u - v) : (int64_t)v;
    return true;
}

/* strtod on a NUL-terminated copy; *ok false when not all of s is a number. */
static int s_parse_double(const char *s, size_t n, sl_arena_t *ar, double *out, bool *ok)
{
    char buf[128];
    char *c = buf;
    *ok = false;
    if (n == 0)
        return 0;
    if (n >= sizeof buf) {
        c = sl_arena_strndup(ar, s, n);
        if (!c)
            return SL_NOMEM;
    } else {
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    char *end = NULL;
    *out = strtod(c, &end);
    *ok = end == c + n;
    return 0;
}

static void s_fmt_double(double d, char *buf, size_t cap)
{
    if (isnan(d)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, cap, "%s", d > 0 ? "inf" : "-inf");
        return;
    }
    /* 15 significant digits always read back to the same decimal, so the
     * first precision that round-trips gives the shortest form. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A copy of n bytes in the arena (a static "" when n == 0). */
static int s_str_out(sl_arena_t *ar, const char *s, size_t n, sl_value_t *o)
{
    if (n > UINT32_MAX)
        return SL_RANGE;
    char *d = (char *)"";
    if (n) {
        d = sl_arena_alloc(ar, n);
        if (!d)
            return SL_NOMEM;
        memcpy(d, s, n);
    }
    *o = sl_value_str(d, (uint32_t)n);
    return 0;
}

/* Any non-null value as a string (cast(x as string)). */
static int s_to_string(const sl_value_t *x, sl_arena_t *ar, sl_value_t *o)
{
    char buf[64];
    switch (x->type) {
    case SL_TYPE_STRING:
        *o = *x;
        return 0;
    case SL_TYPE_BOOL:
        *o = x->u.b ? sl_value_str("true", 4) : sl_value_str("false", 5);
        return 0;
    case SL_TYPE_INT64:
        snprintf(buf, sizeof buf, "%" PRId64, x->u.i);
        break;
    case SL_TYPE_DOUBLE:
        s_fmt_double(x->u.d, buf, sizeof buf);
        break;
    case SL_TYPE_TIMESTAMP:
        s_fmt_ts(x->u.i, buf, sizeof buf);
        break;
    default:
        s_null(o, SL_TYPE_STRING);
        return 0;
    }
    return s_str_out(ar, buf, strlen(buf), o);
}

static bool s_dbl_to_int(double d, int64_t *out)
{
    if (isnan(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return false;
    *out = (int64_t)d;
    return true;
}

static bool s_ieq(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && s_word_eq(s, (int)n, w);
}

/* cast(x as t) of a non-null x; the checker has ruled out bool<->timestamp. */
static int s_cast(const sl_value_t *x, sl_type_t t, sl_arena_t *ar, sl_value_t *o)
{
    if (x->type == t) {
        *o = *x;
        return 0;
    }
    if (t == SL_TYPE_STRING)
        return s_to_string(x, ar, o);
    s_null(o, t);
    int64_t i;
    switch (x->type) {
    case SL_TYPE_INT64:
    case SL_TYPE_TIMESTAMP:
        if (t == SL_TYPE_DOUBLE)
            *o = sl_value_double((double)x->u.i);
        else if (t == SL_TYPE_BOOL)
            *o = sl_value_bool(x->u.i != 0);
        else
            *o = t == SL_TYPE_TIMESTAMP ? sl_value_ts(x->u.i) : sl_value_int(x->u.i);
        return 0;
    case SL_TYPE_DOUBLE:
        if (t == SL_TYPE_BOOL)
            *o = sl_value_bool(x->u.d != 0);
        else if (s_dbl_to_int(x->u.d, &i))
            *o = t == SL_TYPE_TIMESTAMP ? sl_value_ts(i) : sl_value_int(i);
        return 0;
    case SL_TYPE_BOOL:
        if (t == SL_TYPE_DOUBLE)
            *o = sl_value_double(x->u.b ? 1.0 : 0.0);
        else if (t == SL_TYPE_INT64)
            *o = sl_value_int(x->u.b ? 1 : 0);
        return 0;
    case SL_TYPE_STRING: {
        uint32_t b, e;
        s_trim_bounds(x->u.s, x->len, &b, &e);
        const char *s = x->u.s + b;
        size_t n = e - b;
        if (t == SL_TYPE_INT64) {
            if (s_parse_int(s, n, &i))
                *o = sl_value_int(i);
        } else if (t == SL_TYPE_TIMESTAMP) {
            if (s_parse_int(s, n, &i) || s_parse_iso(s, n, &i))
                *o = sl_value_ts(i);
        } else if (t == SL_TYPE_DOUBLE) {
            double d;
            bool ok;
            int rc = s_parse_double(s, n, ar, &d, &ok);
            if (rc)
                return rc;
            if (ok)
                *o = sl_value_double(d);
        } else if (t == SL_TYPE_BOOL) {
            if (s_ieq(s, n, "true") || s_ieq(s, n, "t") || s_ieq(s, n, "yes") || s_ieq(s, n, "1"))
                *o = sl_value_bool(true);
            else if (s_ieq(s, n, "false") || s_ieq(s, n, "f") || s_ieq(s, n, "no") ||
                     s_ieq(s, n, "0"))
                *o = sl_value_bool(false);
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* ---- evaluation ----------------------------------------------------------- */

static int s_eval(const sl_expr_t *e, int i, const sl_value_t *f, sl_arena_t *ar, sl_value_t *o);

static int s_eval_arith(const s_node_t *n, const sl_value_t *x, const sl_value_t *y, sl_value_t *o)
{
    if (n->type == SL_TYPE_DOUBLE) {
        double a = s_dbl(x), b = s_dbl(y), r;
        switch (n->op) {
        case N_ADD:
            r = a + b;
            break;
        case N_SUB:
            r = a - b;
            break;
        case N_MUL:
            r = a * b;
            break;
        case N_DIV:
            if (b == 0) {
                s_null(o, n->type);
                return 0;
            }
            r = a / b;
            break;
        default:
            if (b == 0) {
                s_null(o, n->type);
                return 0;
            }
            r = fmod(a, b);
            break;
        }
        *o = sl_value_double(r);
        return 0;
    }
    /* int64 and timestamp: wrap around in uint64_t, no undefined behaviour. */
    int64_t a = x->u.i, b = y->u.i, r;
    switch (n->op) {
    case N_ADD:
        r = s_u2i((uint64_t)a + (uint64_t)b);
        break;
    case N_SUB:
        r = s_u2i((uint64_t)a - (uint64_t)b);
        break;
    case N_MUL:
        r = s_u2i((uint64_t)a * (uint64_t)b);
        break;
    case N_DIV:
        if (b == 0) {
            s_null(o, n->type);
            return 0;
        }
        r = b == -1 ? s_u2i(0u - (uint64_t)a) : a / b;
        break;
    default:
        if (b == 0) {
            s_null(o, n->type);
            return 0;
        }
        r = b == -1 ? 0 : a % b;
        break;
    }
    *o = n->type == SL_TYPE_TIMESTAMP ? sl_value_ts(r) : sl_value_int(r);
    return 0;
}

static bool s_contains(const char *h, uint32_t hn, const char *nd, uint32_t nn)
{
    if (nn == 0)
        return true;
    for (uint32_t i = 0; nn <= hn && i <= hn - nn; i++)
        if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0)
            return true;
    return false;
}

static int s_cat(const sl_value_t *x, const sl_value_t *y, sl_arena_t *ar, sl_value_t *o)
{
    size_t total = (size_t)x->len + y->len;
    if (total > UINT32_MAX)
        return SL_RANGE;
    if (total == 0)
        return s_str_out(ar, NULL, 0, o);
    char *d = sl_arena_alloc(ar, total);
    if (!d)
        return SL_NOMEM;
    if (x->len)
        memcpy(d, x->u.s, x->len);
    if (y->len)
        memcpy(d + x->len, y->u.s, y->len);
    *o = sl_value_str(d, (uint32_t)total);
    return 0;
}

static int s_eval_concat(const sl_expr_t *e, const s_node_t *n, const sl_value_t *f, sl_arena_t *ar,
                         sl_value_t *o)
{
    sl_value_t *vals = sl_arena_alloc(ar, (size_t)n->nkids * sizeof *vals);
    if (!vals)
        return SL_NOMEM;
    size_t total = 0;
    int j = 0;
    for (int k = n->first; k >= 0; k = e->nodes[k].next, j++) {
        sl_value_t v;
        int rc = s_eval(e, k, f, ar, &v);
        if (rc)
            return rc;
        if (v.is_null) {
            s_null(o, SL_TYPE_STRING);
            return 0;
        }
        if ((rc = s_to_string(&v, ar, &vals[j])) != 0)
            return rc;
        total += vals[j].len;
    }
    if (total > UINT32_MAX)
        return SL_RANGE;
    char *d = (char *)"";
    if (total) {
        d = sl_arena_alloc(ar, total);
        if (!d)
            return SL_NOMEM;
    }
    size_t pos = 0;
    for (int k = 0; k < n->nkids; k++) {
        if (vals[k].len)
            memcpy(d + pos, vals[k].u.s, vals[k].len);
        pos += vals[k].len;
    }
    *o = sl_value_str(d, (uint32_t)total);
    return 0;
}

static int s_eval_substr(const sl_value_t *s, const sl_value_t *st, const sl_value_t *ln,
                         sl_arena_t *ar, sl_value_t *o)
{
    /* Clamping keeps start + len in range and cannot change the result,
     * because strings are shorter than 2^32 bytes. */
    const int64_t big = INT64_C(1) << 40;
    int64_t start = st->u.i < -big ? -big : (st->u.i > big ? big : st->u.i);
    int64_t end = (int64_t)s->len + 1; /* 1-based, exclusive */
    if (ln) {
        if (ln->u.i < 0) {
            s_null(o, SL_TYPE_STRING);
            return 0;
        }
        int64_t len = ln->u.i > big ? big : ln->u.i;
        if (start + len < end)
            end = start + len;
    }
    if (start < 1)
        start = 1;
    if (end <= start)
        return s_str_out(ar, NULL, 0, o);
    return s_str_out(ar, s->u.s + (start - 1), (size_t)(end - start), o);
}

/* year, month, day, hour or minute (UTC) of the timestamp ms. */
static int64_t s_ts_part(s_op_t op, int64_t ms)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    if (op == N_HOUR)
        return rem / 3600000;
    if (op == N_MINUTE)
        return rem / 60000 % 60;
    int64_t y;
    int m, d;
    s_civil_from_days(days, &y, &m, &d);
    return op == N_YEAR ? y : op == N_MONTH ? m : d;
}

/* Position of the first nd (nn >= 1 bytes) in h[from, hn), or -1. */
static int64_t s_find(const char *h, uint32_t hn, uint32_t from, const char *nd, uint32_t nn)
{
    while (from < hn && hn - from >= nn) {
        const char *c = memchr(h + from, nd[0], hn - from - nn + 1);
        if (!c)
            return -1;
        uint32_t at = (uint32_t)(c - h);
        if (nn == 1 || memcmp(c + 1, nd + 1, nn - 1) == 0)
            return at;
        from = at + 1;
    }
    return -1;
}

/* split_index(s, sep, i): field i (0-based) of s split at every sep, a view
 * into s; null when i is out of range or s is empty (as Flink). */
static void s_eval_split(const sl_value_t *s, const sl_value_t *sep, int64_t i, sl_value_t *o)
{
    s_null(o, SL_TYPE_STRING);
    if (i < 0 || s->len == 0)
        return;
    uint32_t start = 0;
    if (sep->len == 0) { /* nothing to split at: s is field 0 */
        if (i == 0)
            *o = *s;
        return;
    }
    for (int64_t k = 0; k < i; k++) {
        int64_t at = s_find(s->u.s, s->len, start, sep->u.s, sep->len);
        if (at < 0)
            return;
        start = (uint32_t)at + sep->len;
    }
    int64_t end = s_find(s->u.s, s->len, start, sep->u.s, sep->len);
    *o = sl_value_str(s->u.s + start, (end < 0 ? s->len : (uint32_t)end) - start);
}

/* regexp_extract: group g of the first match of re in s, a view into s;
 * null without a match, for a group out of range or one that took no part
 * in the match. regexec only reads re, so threads may share it. regexec
 * wants a NUL-terminated string: s is copied (to the stack when short);
 * REG_STARTEND, where the library has it, lets bytes after a NUL in s
 * count too. */
static int s_eval_regexp(const s_regex_t *rx, const sl_value_t *s, int64_t g, sl_arena_t *ar,
                         sl_value_t *o)
{
    const regex_t *re = &rx->re;
    s_null(o, SL_TYPE_STRING);
    if (g < 0 || g > (int64_t)re->re_nsub)
        return 0;
    if (rx->fast.ok && (s->len == 0 || !memchr(s->u.s, '\0', s->len))) {
        regmatch_t fm[S_MAX_GROUPS + 1];
        if (!s_fast_match(&rx->fast, s->len ? s->u.s : "", s->len, fm))
            return 0;
        uint32_t n = (uint32_t)(fm[g].rm_eo - fm[g].rm_so);
        *o = sl_value_str(n ? s->u.s + fm[g].rm_so : "", n);
        return 0;
    }
    char buf[512];
    char *str = buf;
    if (s->len >= sizeof buf && !(str = sl_arena_alloc(ar, (size_t)s->len + 1)))
        return SL_NOMEM;
    if (s->len)
        memcpy(str, s->u.s, s->len);
    str[s->len] = '\0';
    regmatch_t m[S_MAX_GROUPS + 1];
    int flags = 0;
#ifdef REG_STARTEND
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)s->len;
    flags = REG_STARTEND;
#endif
    if (regexec(re, str, (size_t)g + 1, m, flags) != 0 || m[g].rm_so < 0)
        return 0;
    uint32_t n = (uint32_t)(m[g].rm_eo - m[g].rm_so);
    *o = sl_value_str(n ? s->u.s + m[g].rm_so : "", n);
    return 0;
}

static int s_eval_func(const sl_expr_t *e, const s_node_t *n, const sl_value_t *f, sl_arena_t *ar,
                       sl_value_t *o)
{
    sl_value_t args[3];
    int na = 0, rc;
    for (int k = n->first; k >= 0 && na < 3; k = e->nodes[k].next, na++) {
        if ((rc = s_eval(e, k, f, ar, &args[na])) != 0)
            return rc;
        if (args[na].is_null) {
            s_null(o, n->type);
            return 0;
        }
    }
    const sl_value_t *x = &args[0], *y = &args[1];
    switch (n->op) {
    case N_LOWER:
    case N_UPPER: {
        if ((rc = s_str_out(ar, x->u.s, x->len, o)) != 0)
            return rc;
        char *d = (char *)o->u.s;
        for (uint32_t i = 0; i < o->len; i++) {
            unsigned char c = (unsigned char)d[i];
            if (n->op == N_LOWER && c >= 'A' && c <= 'Z')
                d[i] = (char)(c + 32);
            else if (n->op == N_UPPER && c >= 'a' && c <= 'z')
                d[i] = (char)(c - 32);
        }
        return 0;
    }
    case N_TRIM: {
        uint32_t b, en;
        s_trim_bounds(x->u.s, x->len, &b, &en);
        return s_str_out(ar, x->u.s + b, en - b, o);
    }
    case N_LENGTH:
        *o = sl_value_int((int64_t)x->len);
        return 0;
    case N_SUBSTR:
        return s_eval_substr(x, y, na > 2 ? &args[2] : NULL, ar, o);
    case N_STARTS:
        *o =
            sl_value_bool(y->len <= x->len && (y->len == 0 || memcmp(x->u.s, y->u.s, y->len) == 0));
        return 0;
    case N_CONTAINS:
        *o = sl_value_bool(s_contains(x->u.s, x->len, y->u.s, y->len));
        return 0;
    case N_ABS:
        if (x->type == SL_TYPE_DOUBLE)
            *o = sl_value_double(fabs(x->u.d));
        else
            *o = sl_value_int(x->u.i < 0 ? s_u2i(0u - (uint64_t)x->u.i) : x->u.i);
        return 0;
    case N_YEAR:
    case N_MONTH:
    case N_DAY:
    case N_HOUR:
    case N_MINUTE:
        *o = sl_value_int(s_ts_part(n->op, x->u.i));
        return 0;
    case N_COUNTCHAR: {
        int64_t c = 0;
        const char *p = x->u.s, *end = x->u.s + x->len;
        while (p < end && (p = memchr(p, n->aux, (size_t)(end - p))) != NULL) {
            c++;
            p++;
        }
        *o = sl_value_int(c);
        return 0;
    }
    case N_SPLITIDX:
        s_eval_split(x, y, args[2].u.i, o);
        return 0;
    case N_REGEXP:
        return s_eval_regexp(&e->regs[n->aux], x, na > 2 ? args[2].u.i : 0, ar, o);
    default:
        s_null(o, n->type);
        return 0;
    }
}

static int s_eval(const sl_expr_t *e, int i, const sl_value_t *f, sl_arena_t *ar, sl_value_t *o)
{
    const s_node_t *n = &e->nodes[i];
    sl_value_t x, y;
    int rc, k;
    switch (n->op) {
    case N_LIT:
        *o = n->lit;
        return 0;
    case N_FIELD:
        *o = f[n->field];
        if (o->is_null)
            o->type = n->type;
        return 0;
    case N_NEG:
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0)
            return rc;
        if (x.is_null)
            s_null(o, n->type);
        else if (x.type == SL_TYPE_DOUBLE)
            *o = sl_value_double(-x.u.d);
        else
            *o = sl_value_int(s_u2i(0u - (uint64_t)x.u.i));
        return 0;
    case N_NOT:
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0)
            return rc;
        if (x.is_null)
            s_null(o, SL_TYPE_BOOL);
        else
            *o = sl_value_bool(!x.u.b);
        return 0;
    case N_AND:
    case N_OR: {
        /* Three-valued: a false (and) / true (or) decides, else null wins. */
        bool decide = n->op == N_OR, saw_null = false;
        for (k = n->first; k >= 0; k = e->nodes[k].next) {
            if ((rc = s_eval(e, k, f, ar, &x)) != 0)
                return rc;
            if (x.is_null)
                saw_null = true;
            else if (x.u.b == decide) {
                *o = sl_value_bool(decide);
                return 0;
            }
        }
        if (saw_null)
            s_null(o, SL_TYPE_BOOL);
        else
            *o = sl_value_bool(!decide);
        return 0;
    }
    case N_ADD:
    case N_SUB:
    case N_MUL:
    case N_DIV:
    case N_MOD:
    case N_CAT:
    case N_EQ:
    case N_NE:
    case N_LT:
    case N_LE:
    case N_GT:
    case N_GE:
        if ((n->op == N_EQ || n->op == N_NE) && e->nodes[n->first].op == N_LOWER) {
            /* lower(s) = 'literal': compared in place, lower(s) not built */
            const s_node_t *lit = &e->nodes[e->nodes[n->first].next];
            if (lit->op == N_LIT && !lit->lit.is_null && lit->lit.type == SL_TYPE_STRING) {
                if ((rc = s_eval(e, e->nodes[n->first].first, f, ar, &x)) != 0)
                    return rc;
                if (x.is_null) {
                    s_null(o, n->type);
                    return 0;
                }
                bool eq = x.len == lit->lit.len;
                for (uint32_t j = 0; eq && j < x.len; j++) {
                    unsigned char c = (unsigned char)x.u.s[j];
                    eq = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c) == lit->lit.u.s[j];
                }
                *o = sl_value_bool(eq == (n->op == N_EQ));
                return 0;
            }
        }
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0 ||
            (rc = s_eval(e, e->nodes[n->first].next, f, ar, &y)) != 0)
            return rc;
        if (x.is_null || y.is_null) {
            s_null(o, n->type);
            return 0;
        }
        if (n->op == N_CAT)
            return s_cat(&x, &y, ar, o);
        if (n->op >= N_EQ) {
            int c = sl_value_cmp(&x, &y);
            bool r = n->op == N_EQ   ? c == 0
                     : n->op == N_NE ? c != 0
                     : n->op == N_LT ? c < 0
                     : n->op == N_LE ? c <= 0
                     : n->op == N_GT ? c > 0
                                     : c >= 0;
            *o = sl_value_bool(r);
            return 0;
        }
        return s_eval_arith(n, &x, &y, o);
    case N_ISNULL:
    case N_NOTNULL:
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0)
            return rc;
        *o = sl_value_bool(x.is_null == (n->op == N_ISNULL));
        return 0;
    case N_CASE:
        k = n->first;
        for (int pair = 0; pair < n->nkids / 2; pair++) {
            if ((rc = s_eval(e, k, f, ar, &x)) != 0)
                return rc;
            k = e->nodes[k].next;
            if (sl_expr_is_true(&x)) {
                if ((rc = s_eval(e, k, f, ar, o)) != 0)
                    return rc;
                s_coerce(o, n->type);
                return 0;
            }
            k = e->nodes[k].next;
        }
        if (!n->has_else) {
            s_null(o, n->type);
            return 0;
        }
        if ((rc = s_eval(e, k, f, ar, o)) != 0)
            return rc;
        s_coerce(o, n->type);
        return 0;
    case N_CAST:
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0)
            return rc;
        if (x.is_null) {
            s_null(o, n->type);
            return 0;
        }
        return s_cast(&x, n->type, ar, o);
    case N_COALESCE:
        for (k = n->first; k >= 0; k = e->nodes[k].next) {
            if ((rc = s_eval(e, k, f, ar, o)) != 0)
                return rc;
            if (!o->is_null) {
                s_coerce(o, n->type);
                return 0;
            }
        }
        s_null(o, n->type);
        return 0;
    case N_CONCAT:
        return s_eval_concat(e, n, f, ar, o);
    case N_IN:
    case N_NOTIN: {
        /* SQL: true when an item equals x, else null when x or an item is
         * null, else false (negated for not in). */
        if ((rc = s_eval(e, n->first, f, ar, &x)) != 0)
            return rc;
        bool saw_null = x.is_null, found = false;
        for (k = e->nodes[n->first].next; k >= 0 && !x.is_null && !found; k = e->nodes[k].next) {
            if ((rc = s_eval(e, k, f, ar, &y)) != 0)
                return rc;
            if (y.is_null)
                saw_null = true;
            else
                found = sl_value_cmp(&x, &y) == 0;
        }
        if (found)
            *o = sl_value_bool(n->op == N_IN);
        else if (saw_null)
            s_null(o, SL_TYPE_BOOL);
        else
            *o = sl_value_bool(n->op == N_NOTIN);
        return 0;
    }
    default:
        return s_eval_func(e, n, f, ar, o);
    }
}

int sl_expr_eval(const sl_expr_t *e, const sl_value_t *fields, sl_arena_t *arena, sl_value_t *out)
{
    if (!e || !out)
        return SL_INVAL;
    return s_eval(e, e->root, fields, arena, out);
}
