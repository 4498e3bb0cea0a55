/* config.h — a daemon's settings from flags, SLUICE_* environment
 * variables, a YAML file and defaults.
 *
 * A program describes its settings once, as a table of sl_config_key_t
 * (file key, environment variable, flag, type, range, default, help). An
 * sl_config_t holds one value per key and where it came from. Every setter
 * takes a source, and a value replaces the current one only when its source
 * ranks at least as high, so the precedence
 *
 *     flag > environment > file > default
 *
 * holds whatever order the sources are loaded in. (A daemon parses its
 * flags first, to learn --config, then reads the environment and the file.)
 *
 * The file is one YAML mapping of `key: scalar` lines. It is treated as
 * hostile: at most SL_CONFIG_MAX_BYTES, aliases, nested values, duplicate
 * keys and second documents are errors; unknown keys are errors with a
 * did-you-mean hint; values are checked exactly like flag values. Every
 * error goes to an sl_diag_t as FILE:LINE:COL, and a file with any error
 * changes nothing. An unquoted empty value (`key:`, `~`, `null`) leaves the
 * key to its default. An empty environment variable counts as unset.
 *
 * Usage (see master/main.c):
 *
 *     sl_config_t *c = sl_config_new(keys, nkeys);
 *     rc = sl_config_parse_args(c, argc, argv, err, sizeof err);  // 1: --help
 *     rc = sl_config_load_env(c, NULL, NULL, err, sizeof err);
 *     if ((path = sl_config_str(c, "config")))
 *         rc = sl_config_load_file(c, path, diag, err, sizeof err);
 *     long slots = sl_config_int(c, "slots", 4);
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sluice/diag.h"

#define SL_CONFIG_MAX_BYTES (64 * 1024) /* largest config file read */
#define SL_CONFIG_STR_MAX 1024          /* default byte limit of a string value */

typedef enum {
    SL_CONFIG_STR, /* 1..max bytes of UTF-8, no control characters, no spaces (unless
                    * the key says spaces) */
    SL_CONFIG_INT, /* a decimal integer in min..max (unquoted in the file) */
} sl_config_type_t;

/* Where a value came from, lowest rank first. */
typedef enum {
    SL_CONFIG_UNSET = 0,
    SL_CONFIG_DEFAULT,
    SL_CONFIG_FILE,
    SL_CONFIG_ENV,
    SL_CONFIG_FLAG,
} sl_config_src_t;

/* Extra check of a value that passed the type check: 0 when it is fine,
 * else a nonzero result and the reason in why (e.g. "must not name a
 * port"). */
typedef int (*sl_config_check_fn)(const char *value, char *why, size_t cap);

/* One setting. The table is borrowed: it must outlive the sl_config_t. */
typedef struct {
    const char *key;          /* lookup name, and the file key unless no_file */
    const char *env;          /* environment variable, or NULL */
    const char *flag;         /* flag with its dashes ("--data-bind"), or NULL */
    const char *metavar;      /* placeholder of the value in --help ("MS") */
    sl_config_type_t type;    /* how the value is checked */
    long min, max;            /* INT: inclusive range; STR: max = byte limit (0: STR_MAX) */
    const char *prefix;       /* STR: required prefix ("tcp://"), or NULL */
    sl_config_check_fn check; /* further check, or NULL */
    const char *dflt;         /* default value as text, or NULL (none, or computed later) */
    const char *help;         /* --help text; may hold '\n' for more lines */
    bool spaces;              /* STR: may contain spaces (a file path) */
    bool no_file;             /* not settable in the file (--config itself) */
} sl_config_key_t;

typedef struct sl_config sl_config_t;

/* A configuration of the nkeys keys, each at its default (or unset).
 * NULL when out of memory or when a default fails its own key's check
 * (a programming error, reported on stderr). */
sl_config_t *sl_config_new(const sl_config_key_t *keys, int nkeys);
/* Frees c and sets *pp to NULL; accepts NULL. */
void sl_config_destroy(sl_config_t **pp);

/* Sets key to value from src, where origin names the source for messages
 * ("--slots", "SLUICE_SLOTS", "sluice.yaml:3:8"; NULL: the key). Returns 0
 * when the value is valid (also when a higher-ranked source keeps its
 * value), SL_NOTFOUND for an unknown key, SL_INVAL / SL_RANGE for a bad
 * value with "ORIGIN must be ..., not 'VALUE'" in err, SL_NOMEM. */
int sl_config_set(sl_config_t *c, const char *key, const char *value, sl_config_src_t src,
                  const char *origin, char *err, size_t cap);

/* Parses argv[1..argc-1]: `--flag VALUE` and `--flag=VALUE` for every key
 * with a flag, and --help / -h. Returns 0, 1 when help was asked for
 * (nothing else is checked), or SL_INVAL with the reason in err (unknown
 * option with a did-you-mean hint, missing value, bad value, a stray
 * argument). */
int sl_config_parse_args(sl_config_t *c, int argc, char **argv, char *err, size_t cap);

/* Looks up a variable: the value or NULL. */
typedef const char *(*sl_config_getenv_fn)(void *arg, const char *name);
/* Sets every key that has an environment variable, read through get
 * (NULL: getenv). Empty variables are skipped. Returns 0 or the first
 * error, with its message in err. */
int sl_config_load_env(sl_config_t *c, sl_config_getenv_fn get, void *arg, char *err, size_t cap);

/* Parses text (len bytes, at most SL_CONFIG_MAX_BYTES) as a config file
 * named file in messages. Records every error in d and returns SL_PARSE
 * (SL_LIMIT when too large, SL_NOMEM); on any error no value changes. */
int sl_config_load_text(sl_config_t *c, const char *file, const char *text, size_t len,
                        sl_diag_t *d);
/* Reads path and loads it as sl_config_load_text does. A file that cannot
 * be read, or is larger than SL_CONFIG_MAX_BYTES, gives SL_IO / SL_LIMIT
 * with the reason in err and nothing in d; errors in the text give
 * SL_PARSE with the positions in d and a summary in err. */
int sl_config_load_file(sl_config_t *c, const char *path, sl_diag_t *d, char *err, size_t cap);

/* The value of key (borrowed, valid until the key is set again or c is
 * destroyed), or NULL when it is unset or not a key. */
const char *sl_config_str(const sl_config_t *c, const char *key);
/* The value of an INT key, or fallback when it is unset or not a key. */
long sl_config_int(const sl_config_t *c, const char *key, long fallback);
/* Where the value of key came from (SL_CONFIG_UNSET for unknown keys). */
sl_config_src_t sl_config_source(const sl_config_t *c, const char *key);
/* The origin given with the value ("--slots", "SLUICE_SLOTS",
 * "worker.yaml:3:8", "default"); borrowed; "" when unset. */
const char *sl_config_origin(const sl_config_t *c, const char *key);

/* Writes the --help text: head (the usage line and a description, as
 * given), the precedence rule, then for every key its flag, help, and its
 * environment variable, file key, default and range; and --help itself. */
void sl_config_usage(const sl_config_t *c, const char *head, FILE *out);

/* The whole start-up of a daemon: flags, then SLUICE_* variables, then the
 * file named by the "config" key, each not overriding what a stronger source
 * set. With --help prints usage (head first) and returns -1; on an error
 * prints "PROG: why" (and every file error at FILE:LINE:COL) and returns 2;
 * else 0. */
int sl_config_from_cli(sl_config_t *c, int argc, char **argv, const char *prog, const char *head);

#endif
