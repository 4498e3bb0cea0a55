/* check_config.c — daemon settings: the value store and its precedence
 * (flag > env > file > default), flags, environment, the YAML file with
 * every error at its position, and hostile files. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/config.h"
#include "sluice/err.h"
#include "testutil.h"

static int s_no_port(const char *v, char *why, size_t cap)
{
    if (strchr(v + 6, ':')) {
        snprintf(why, cap, "must be tcp://ADDR without a port");
        return 1;
    }
    return 0;
}

/* A worker-like table. */
static const sl_config_key_t s_keys[] = {
    {.key = "config",
     .env = "SLUICE_CONFIG",
     .flag = "--config",
     .metavar = "FILE",
     .help = "YAML file of settings",
     .spaces = true,
     .no_file = true},
    {.key = "master",
     .env = "SLUICE_MASTER",
     .flag = "--master",
     .metavar = "ENDPOINT",
     .prefix = "tcp://",
     .dflt = "tcp://127.0.0.1:6123",
     .help = "the master"},
    {.key = "slots",
     .env = "SLUICE_SLOTS",
     .flag = "--slots",
     .metavar = "N",
     .type = SL_CONFIG_INT,
     .min = 1,
     .max = 1024,
     .help = "task slots\nsecond line"},
    {.key = "id", .env = "SLUICE_WORKER_ID", .flag = "--id", .max = 16, .help = "worker id"},
    {.key = "data_bind",
     .env = "SLUICE_DATA_BIND",
     .flag = "--data-bind",
     .prefix = "tcp://",
     .check = s_no_port,
     .dflt = "tcp://0.0.0.0",
     .help = "in-gates"},
    {.key = "heartbeat_timeout_ms",
     .env = "SLUICE_HEARTBEAT_TIMEOUT_MS",
     .flag = "--heartbeat-timeout",
     .type = SL_CONFIG_INT,
     .min = 50,
     .max = 3600000,
     .dflt = "800",
     .help = "heartbeat"},
};
#define S_NKEYS ((int)(sizeof s_keys / sizeof s_keys[0]))

/* ---- helpers ------------------------------------------------------------------ */

typedef struct {
    sl_config_t *c;
    sl_diag_t *d;
    int rc;
} s_cfg_t;

/* Loads text as "w.yaml" into a fresh config. */
static s_cfg_t s_load(const char *text)
{
    s_cfg_t t = {.c = sl_config_new(s_keys, S_NKEYS), .d = sl_diag_new("w.yaml")};
    ck_assert_ptr_nonnull(t.c);
    t.rc = sl_config_load_text(t.c, "w.yaml", text, strlen(text), t.d);
    return t;
}

static void s_free(s_cfg_t *t)
{
    sl_config_destroy(&t->c);
    sl_diag_destroy(&t->d);
}

/* Asserts error i is at line:col and its message contains what. */
static void s_assert_err(const sl_diag_t *d, int i, int line, int col, const char *what)
{
    ck_assert_int_gt(sl_diag_count(d), i);
    ck_assert_msg(sl_diag_line(d, i) == line && sl_diag_col(d, i) == col,
                  "error %d at %d:%d, expected %d:%d (%s)", i, sl_diag_line(d, i),
                  sl_diag_col(d, i), line, col, sl_diag_message(d, i));
    ck_assert_msg(strstr(sl_diag_message(d, i), what), "error '%s' lacks '%s'",
                  sl_diag_message(d, i), what);
}

/* One error, at line:col, mentioning what; nothing applied. */
static void s_expect_one(const char *text, int line, int col, const char *what)
{
    s_cfg_t t = s_load(text);
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 1);
    s_assert_err(t.d, 0, line, col, what);
    ck_assert_int_eq(sl_config_source(t.c, "slots"), SL_CONFIG_UNSET);
    ck_assert_str_eq(sl_config_str(t.c, "master"), "tcp://127.0.0.1:6123");
    s_free(&t);
}

typedef struct {
    const char *const *kv; /* NAME, VALUE, ..., NULL */
} s_env_t;

static const char *s_fake_getenv(void *arg, const char *name)
{
    const s_env_t *e = arg;
    for (int i = 0; e->kv[i]; i += 2)
        if (strcmp(e->kv[i], name) == 0)
            return e->kv[i + 1];
    return NULL;
}

/* ---- the store and precedence ------------------------------------------------- */

START_TEST(test_defaults)
{
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(sl_config_str(c, "master"), "tcp://127.0.0.1:6123");
    ck_assert_int_eq(sl_config_source(c, "master"), SL_CONFIG_DEFAULT);
    ck_assert_str_eq(sl_config_origin(c, "master"), "default");
    ck_assert_int_eq(sl_config_int(c, "heartbeat_timeout_ms", -1), 800);
    /* No default: unset, and the fallback is returned. */
    ck_assert_ptr_null(sl_config_str(c, "slots"));
    ck_assert_int_eq(sl_config_int(c, "slots", 7), 7);
    ck_assert_int_eq(sl_config_source(c, "slots"), SL_CONFIG_UNSET);
    ck_assert_str_eq(sl_config_origin(c, "slots"), "");
    /* Not a key. */
    ck_assert_ptr_null(sl_config_str(c, "nope"));
    ck_assert_int_eq(sl_config_int(c, "nope", 3), 3);
    ck_assert_int_eq(sl_config_source(c, "nope"), SL_CONFIG_UNSET);
    /* int of a string key is the fallback */
    ck_assert_int_eq(sl_config_int(c, "master", 9), 9);
    sl_config_destroy(&c);
    ck_assert_ptr_null(c);
    sl_config_destroy(&c);
    sl_config_destroy(NULL);
}
END_TEST

START_TEST(test_bad_default_is_refused)
{
    static const sl_config_key_t bad[] = {
        {.key = "n", .type = SL_CONFIG_INT, .min = 1, .max = 5, .dflt = "9"}};
    ck_assert_ptr_null(sl_config_new(bad, 1));
}
END_TEST

START_TEST(test_precedence_any_order)
{
    char err[256];
    /* Highest first: later, lower-ranked sources change nothing. */
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    ck_assert_int_eq(sl_config_set(c, "slots", "3", SL_CONFIG_FLAG, "--slots", err, sizeof err), 0);
    ck_assert_int_eq(sl_config_set(c, "slots", "2", SL_CONFIG_ENV, "SLUICE_SLOTS", err, sizeof err),
                     0);
    ck_assert_int_eq(sl_config_set(c, "slots", "1", SL_CONFIG_FILE, NULL, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 3);
    ck_assert_int_eq(sl_config_source(c, "slots"), SL_CONFIG_FLAG);
    ck_assert_str_eq(sl_config_origin(c, "slots"), "--slots");
    /* The same rank replaces (the last --slots wins). */
    ck_assert_int_eq(sl_config_set(c, "slots", "4", SL_CONFIG_FLAG, "--slots", err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 4);
    sl_config_destroy(&c);

    /* Lowest first: each higher source replaces. */
    c = sl_config_new(s_keys, S_NKEYS);
    ck_assert_int_eq(sl_config_set(c, "slots", "1", SL_CONFIG_FILE, "f:1:8", err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 1);
    ck_assert_str_eq(sl_config_origin(c, "slots"), "f:1:8");
    ck_assert_int_eq(sl_config_set(c, "slots", "2", SL_CONFIG_ENV, "SLUICE_SLOTS", err, sizeof err),
                     0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 2);
    ck_assert_int_eq(sl_config_set(c, "slots", "3", SL_CONFIG_FLAG, "--slots", err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 3);
    /* A file value replaces the default. */
    ck_assert_int_eq(sl_config_set(c, "master", "tcp://m:1", SL_CONFIG_FILE, NULL, err, sizeof err),
                     0);
    ck_assert_str_eq(sl_config_str(c, "master"), "tcp://m:1");
    ck_assert_str_eq(sl_config_origin(c, "master"), "master");
    /* An outranked value is still checked. */
    ck_assert_int_eq(sl_config_set(c, "slots", "0", SL_CONFIG_FILE, "f:2:8", err, sizeof err),
                     SL_RANGE);
    ck_assert_str_eq(err, "f:2:8 must be an integer in 1..1024, not '0'");
    ck_assert_int_eq(sl_config_set(c, "sluts", "1", SL_CONFIG_FLAG, NULL, err, sizeof err),
                     SL_NOTFOUND);
    ck_assert_int_eq(sl_config_set(c, "slots", NULL, SL_CONFIG_FLAG, NULL, err, sizeof err),
                     SL_INVAL);
    sl_config_destroy(&c);
}
END_TEST

START_TEST(test_value_checks)
{
    char err[256];
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    struct {
        const char *key, *value;
        int rc;
        const char *msg;
    } cases[] = {
        {"slots", "many", SL_INVAL, "slots must be an integer in 1..1024, not 'many'"},
        {"slots", "", SL_INVAL, "slots must be an integer in 1..1024, not ''"},
        {"slots", "4.5", SL_INVAL, "not '4.5'"},
        {"slots", " 4", SL_INVAL, "not ' 4'"},
        {"slots", "0x10", SL_INVAL, "not '0x10'"},
        {"slots", "1025", SL_RANGE, "not '1025'"},
        {"slots", "-1", SL_RANGE, "not '-1'"},
        {"slots", "99999999999999999999999", SL_RANGE, "not '99999999999999999999999'"},
        {"master", "", SL_INVAL, "master must not be empty"},
        {"master", "127.0.0.1:6123", SL_INVAL,
         "master must start with tcp://, not '127.0.0.1:6123'"},
        {"master", "tcp://a b", SL_INVAL, "must not contain spaces or control characters"},
        {"master", "tcp://a\tb", SL_INVAL, "('tcp://a?b')"},
        {"master", "tcp://\xff\xfe", SL_INVAL,
         "not valid UTF-8 ('tcp://?"
         "?')"},
        {"master", "tcp://\xed\xa0\x80", SL_INVAL, "not valid UTF-8"}, /* a surrogate */
        {"master", "tcp://\xc0\xaf", SL_INVAL, "not valid UTF-8"},     /* overlong */
        {"id", "abcdefghijklmnopq", SL_RANGE, "id is 17 bytes long, limit 16"},
        {"data_bind", "tcp://0.0.0.0:7000", SL_INVAL,
         "data_bind must be tcp://ADDR without a port, not 'tcp://0.0.0.0:7000'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc =
            sl_config_set(c, cases[i].key, cases[i].value, SL_CONFIG_FLAG, NULL, err, sizeof err);
        ck_assert_msg(rc == cases[i].rc, "%s=%s: rc %d", cases[i].key, cases[i].value, rc);
        ck_assert_msg(strstr(err, cases[i].msg), "%s=%s: '%s' lacks '%s'", cases[i].key,
                      cases[i].value, err, cases[i].msg);
    }
    /* Nothing bad was stored. */
    ck_assert_ptr_null(sl_config_str(c, "slots"));
    ck_assert_str_eq(sl_config_str(c, "master"), "tcp://127.0.0.1:6123");
    /* Good values, including UTF-8 and the limits. */
    ck_assert_int_eq(sl_config_set(c, "id", "wörker-ü", SL_CONFIG_FLAG, NULL, err, sizeof err), 0);
    ck_assert_str_eq(sl_config_str(c, "id"), "wörker-ü");
    ck_assert_int_eq(
        sl_config_set(c, "id", "abcdefghijklmnop", SL_CONFIG_FLAG, NULL, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_set(c, "slots", "+1024", SL_CONFIG_FLAG, NULL, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 1024);
    /* A long bad value is quoted back cut short. */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(sl_config_set(c, "slots", big, SL_CONFIG_FLAG, NULL, err, sizeof err),
                     SL_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "xxx...'"));
    ck_assert_uint_lt(strlen(err), 120);
    sl_config_destroy(&c);
}
END_TEST

/* ---- flags ------------------------------------------------------------------------ */

START_TEST(test_args)
{
    char err[256];
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    char *argv[] = {"w", "--slots", "4", "--master=tcp://h:1", "--id", "a=b", "--slots=5", NULL};
    ck_assert_int_eq(sl_config_parse_args(c, 7, argv, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 5);
    ck_assert_str_eq(sl_config_str(c, "master"), "tcp://h:1");
    ck_assert_str_eq(sl_config_str(c, "id"), "a=b");
    ck_assert_int_eq(sl_config_source(c, "id"), SL_CONFIG_FLAG);
    ck_assert_str_eq(sl_config_origin(c, "master"), "--master");
    /* --config is an ordinary key for flags. */
    char *a2[] = {"w", "--config", "/etc/my sluice/worker.yaml", NULL};
    ck_assert_int_eq(sl_config_parse_args(c, 3, a2, err, sizeof err), 0);
    ck_assert_str_eq(sl_config_str(c, "config"), "/etc/my sluice/worker.yaml");
    /* Spaces only where the key allows them; control characters nowhere. */
    char *a3[] = {"w", "--id", "my worker", NULL};
    ck_assert_int_eq(sl_config_parse_args(c, 3, a3, err, sizeof err), SL_INVAL);
    ck_assert_str_eq(err, "--id must not contain spaces or control characters ('my worker')");
    char *a4[] = {"w", "--config", "a\nb", NULL};
    ck_assert_int_eq(sl_config_parse_args(c, 3, a4, err, sizeof err), SL_INVAL);
    ck_assert_str_eq(err, "--config must not contain control characters ('a?b')");
    sl_config_destroy(&c);
}
END_TEST

START_TEST(test_args_errors)
{
    char err[256];
    struct {
        int argc;
        char *argv[4];
        int rc;
        const char *msg;
    } cases[] = {
        {2, {"w", "--help"}, 1, ""},
        {3, {"w", "--bogus", "-h"}, 1, ""}, /* help wins over everything */
        {3, {"w", "--slot", "4"}, SL_INVAL, "unknown option '--slot' (did you mean '--slots'?)"},
        {2, {"w", "--data_bind=tcp://x"}, SL_INVAL, "(did you mean '--data-bind'?)"},
        {2, {"w", "--zzzzzzzzzz"}, SL_INVAL, "unknown option '--zzzzzzzzzz'"},
        {2, {"w", "--slots"}, SL_INVAL, "--slots needs a value (--slots N)"},
        {3,
         {"w", "--slots", "lots"},
         SL_INVAL,
         "--slots must be an integer in 1..1024, not 'lots'"},
        {2, {"w", "--slots="}, SL_INVAL, "--slots must be an integer"},
        {2, {"w", "stray"}, SL_INVAL, "unexpected argument 'stray'"},
        {2, {"w", "-s"}, SL_INVAL, "unexpected argument '-s'"},
        {2, {"w", "--"}, SL_INVAL, "unexpected argument '--'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
        err[0] = '\0';
        int rc = sl_config_parse_args(c, cases[i].argc, cases[i].argv, err, sizeof err);
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].msg), "case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
        sl_config_destroy(&c);
    }
    /* With no close match, no hint. */
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    char *argv[] = {"w", "--zzzzzzzzzz", NULL};
    sl_config_parse_args(c, 2, argv, err, sizeof err);
    ck_assert_ptr_null(strstr(err, "did you mean"));
    sl_config_destroy(&c);
}
END_TEST

/* ---- environment ------------------------------------------------------------------ */

START_TEST(test_env)
{
    char err[256];
    static const char *const kv[] = {
        "SLUICE_SLOTS", "6", "SLUICE_MASTER", "tcp://env:1", "SLUICE_WORKER_ID", "", NULL};
    s_env_t env = {kv};
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    char *argv[] = {"w", "--master", "tcp://flag:1", NULL};
    ck_assert_int_eq(sl_config_parse_args(c, 3, argv, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_load_env(c, s_fake_getenv, &env, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 6);
    ck_assert_str_eq(sl_config_origin(c, "slots"), "SLUICE_SLOTS");
    ck_assert_str_eq(sl_config_str(c, "master"), "tcp://flag:1"); /* the flag wins */
    ck_assert_ptr_null(sl_config_str(c, "id"));                   /* empty is unset */
    /* The environment beats the file, loaded later. */
    const char *text = "slots: 2\nid: from-file\n";
    sl_diag_t *d = sl_diag_new("w.yaml");
    ck_assert_int_eq(sl_config_load_text(c, "w.yaml", text, strlen(text), d), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 6);
    ck_assert_str_eq(sl_config_str(c, "id"), "from-file");
    ck_assert_int_eq(sl_config_source(c, "id"), SL_CONFIG_FILE);
    sl_diag_destroy(&d);
    sl_config_destroy(&c);

    static const char *const bad[] = {"SLUICE_HEARTBEAT_TIMEOUT_MS", "10", NULL};
    env.kv = bad;
    c = sl_config_new(s_keys, S_NKEYS);
    ck_assert_int_eq(sl_config_load_env(c, s_fake_getenv, &env, err, sizeof err), SL_RANGE);
    ck_assert_str_eq(err,
                     "SLUICE_HEARTBEAT_TIMEOUT_MS must be an integer in 50..3600000, not '10'");
    ck_assert_int_eq(sl_config_int(c, "heartbeat_timeout_ms", 0), 800);
    sl_config_destroy(&c);

    /* The real getenv. */
    setenv("SLUICE_WORKER_ID", "real-env", 1);
    c = sl_config_new(s_keys, S_NKEYS);
    ck_assert_int_eq(sl_config_load_env(c, NULL, NULL, err, sizeof err), 0);
    ck_assert_str_eq(sl_config_str(c, "id"), "real-env");
    unsetenv("SLUICE_WORKER_ID");
    sl_config_destroy(&c);
}
END_TEST

/* ---- the file --------------------------------------------------------------------- */

START_TEST(test_file_good)
{
    s_cfg_t t = s_load("# a worker\n"
                       "---\n"
                       "master: tcp://m.example:6123   # the master\n"
                       "slots: 8\n"
                       "\"id\": 'w-1'\n"
                       "data_bind:\n"
                       "heartbeat_timeout_ms: ~\n"
                       "...\n");
    ck_assert_int_eq(t.rc, 0);
    ck_assert_int_eq(sl_diag_count(t.d), 0);
    ck_assert_str_eq(sl_config_str(t.c, "master"), "tcp://m.example:6123");
    ck_assert_str_eq(sl_config_origin(t.c, "master"), "w.yaml:3:9");
    ck_assert_int_eq(sl_config_int(t.c, "slots", 0), 8);
    ck_assert_int_eq(sl_config_source(t.c, "slots"), SL_CONFIG_FILE);
    ck_assert_str_eq(sl_config_str(t.c, "id"), "w-1");
    /* Empty values leave the defaults. */
    ck_assert_str_eq(sl_config_str(t.c, "data_bind"), "tcp://0.0.0.0");
    ck_assert_int_eq(sl_config_source(t.c, "data_bind"), SL_CONFIG_DEFAULT);
    ck_assert_int_eq(sl_config_int(t.c, "heartbeat_timeout_ms", 0), 800);
    s_free(&t);

    /* Empty, blank, comment-only files and an explicit null document set nothing. */
    const char *empties[] = {"", "\n\n", "# nothing here\n", "---\n", "~\n", "{}\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        t = s_load(empties[i]);
        ck_assert_msg(t.rc == 0, "'%s' rc %d", empties[i], t.rc);
        ck_assert_int_eq(sl_config_source(t.c, "master"), SL_CONFIG_DEFAULT);
        s_free(&t);
    }
    /* Flow style is a mapping too. */
    t = s_load("{ slots: 3, id: x }");
    ck_assert_int_eq(t.rc, 0);
    ck_assert_int_eq(sl_config_int(t.c, "slots", 0), 3);
    s_free(&t);
}
END_TEST

START_TEST(test_file_unknown_keys)
{
    s_cfg_t t = s_load("master: tcp://m:1\n"
                       "slot: 4\n"
                       "data-bind: tcp://10.0.0.1\n"
                       "qqqqqqq: 1\n"
                       "config: other.yaml\n");
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 4);
    s_assert_err(t.d, 0, 2, 1, "unknown key 'slot'");
    ck_assert_str_eq(sl_diag_hint_of(t.d, 0), "did you mean 'slots'?");
    s_assert_err(t.d, 1, 3, 1, "unknown key 'data-bind'");
    ck_assert_str_eq(sl_diag_hint_of(t.d, 1), "did you mean 'data_bind'?");
    s_assert_err(t.d, 2, 4, 1, "unknown key 'qqqqqqq'");
    ck_assert_str_eq(sl_diag_hint_of(t.d, 2),
                     "the keys are: master, slots, id, data_bind, heartbeat_timeout_ms");
    s_assert_err(t.d, 3, 5, 1, "'config' cannot be set in a config file");
    ck_assert_str_eq(sl_diag_hint_of(t.d, 3), "use --config or SLUICE_CONFIG");
    /* All or nothing: the good master line was not applied. */
    ck_assert_str_eq(sl_config_str(t.c, "master"), "tcp://127.0.0.1:6123");
    /* The printed form is FILE:LINE:COL. */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    sl_diag_print(t.d, f);
    fclose(f);
    ck_assert_ptr_nonnull(
        strstr(out, "w.yaml:2:1: error: unknown key 'slot' (did you mean 'slots'?)\n"));
    free(out);
    s_free(&t);
}
END_TEST

START_TEST(test_file_value_errors)
{
    s_expect_one("slots: many\n", 1, 8, "slots must be an integer in 1..1024, not 'many'");
    s_expect_one("slots: 0\n", 1, 8, "not '0'");
    s_expect_one("slots: 4.0\n", 1, 8, "not '4.0'");
    s_expect_one("slots: \"4\"\n", 1, 8, "slots must be an integer, not the string \"4\"");
    s_expect_one("\n  master: 'udp://x'\n", 2, 11, "master must start with tcp://");
    s_expect_one("master: \"tcp://a\\0b\"\n", 1, 9, "spaces or control characters ('tcp://a?b')");
    s_expect_one("master: \"tcp://a\\tb\"\n", 1, 9, "spaces or control characters");
    s_expect_one("master: ''\n", 1, 9, "master must not be empty");
    s_expect_one("id: abcdefghijklmnopqrstuvwxyz\n", 1, 5, "id is 26 bytes long, limit 16");
    s_expect_one("data_bind: tcp://1.2.3.4:99\n", 1, 12, "must be tcp://ADDR without a port");
    s_expect_one("slots: 2\nslots: 3\n", 2, 1, "'slots' is set twice (first at line 1)");

    /* Every error of a file is reported, in order. */
    s_cfg_t t = s_load("slots: x\nmaster: y\nid: z\nheartbeat_timeout_ms: 1\n");
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 3);
    s_assert_err(t.d, 0, 1, 8, "slots");
    s_assert_err(t.d, 1, 2, 9, "master");
    s_assert_err(t.d, 2, 4, 23, "heartbeat_timeout_ms");
    ck_assert_ptr_null(sl_config_str(t.c, "id")); /* the good one was not applied */
    s_free(&t);
}
END_TEST

START_TEST(test_file_structure_errors)
{
    s_expect_one("slots:\n  - 1\n  - 2\n", 2, 3, "slots takes one value, not a list");
    s_expect_one("master: { host: a, port: 1 }\n", 1, 9, "master takes one value, not a mapping");
    s_expect_one("? [a, b]\n: 1\n", 1, 3, "a key must be a plain word, not a list");
    s_expect_one("- master: tcp://x:1\n", 1, 1, "not a list");
    s_expect_one("just words\n", 1, 1, "a config file is a mapping of key: value lines");
    s_expect_one("slots: 1\n---\nslots: 2\n", 2, 1, "a second YAML document");
    s_expect_one("master: &m tcp://x:1\nid: *m\n", 2, 5, "YAML aliases are not supported (*m)");
    s_expect_one("slots: 1\n\tid: x\n", 2, 1, "YAML syntax error");
    s_expect_one("master: \"tcp://x:1\nslots: 2\n", 3, 1, "YAML syntax error");
    s_expect_one("id: w\xff\n", 1, 6, "invalid text");
    /* After a skipped nested value, parsing goes on with the next key. */
    s_cfg_t t = s_load("slots: [1, 2]\nbogus: {a: [1]}\nid: ok\nmaster: [x]\n");
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 3);
    s_assert_err(t.d, 0, 1, 8, "slots takes one value");
    s_assert_err(t.d, 1, 2, 1, "unknown key 'bogus'");
    s_assert_err(t.d, 2, 4, 9, "master takes one value");
    s_free(&t);
}
END_TEST

/* ---- hostile input ------------------------------------------------------------------ */

START_TEST(test_hostile)
{
    /* Too large: refused before parsing. */
    size_t big = SL_CONFIG_MAX_BYTES + 1;
    char *text = malloc(big + 1);
    memset(text, '#', big);
    text[big] = '\0';
    s_cfg_t t = s_load(text);
    ck_assert_int_eq(t.rc, SL_LIMIT);
    s_free(&t);
    free(text);

    /* Deep nesting in a value: one error, no recursion, no leak. */
    int depth = 20000;
    text = malloc((size_t)depth * 2 + 16);
    size_t o = 0;
    o += (size_t)sprintf(text, "id: ");
    for (int i = 0; i < depth; i++)
        text[o++] = '[';
    for (int i = 0; i < depth; i++)
        text[o++] = ']';
    text[o++] = '\n';
    text[o] = '\0';
    t = s_load(text);
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 1);
    s_assert_err(t.d, 0, 1, 5, "id takes one value, not a list");
    s_free(&t);
    free(text);

    /* An alias bomb is refused at the first alias, never expanded. */
    t = s_load("a: &a [x, x, x, x, x, x, x, x]\n"
               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
               "id: *c\n");
    ck_assert_int_eq(t.rc, SL_PARSE);
    int n = sl_diag_count(t.d);
    ck_assert_int_ge(n, 4);
    s_assert_err(t.d, n - 1, 4, 5, "aliases are not supported");
    s_free(&t);

    /* Thousands of unknown keys: bounded diagnostics, no crash. */
    size_t cap = SL_CONFIG_MAX_BYTES;
    text = malloc(cap + 1);
    o = 0;
    for (int i = 0; o + 20 < cap; i++)
        o += (size_t)snprintf(text + o, cap - o, "k%d: %d\n", i, i);
    text[o] = '\0';
    t = s_load(text);
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_le(sl_diag_count(t.d), 1000);
    ck_assert_int_gt(sl_diag_count(t.d), 100);
    s_free(&t);
    free(text);

    /* A huge key and a huge value are quoted back cut short. */
    text = malloc(40000);
    o = 0;
    for (int i = 0; i < 1000; i++) /* libyaml caps a simple key at 1024 characters */
        text[o++] = 'k';
    memcpy(text + o, ": 1\nid: ", 8);
    o += 8;
    for (int i = 0; i < 20000; i++)
        text[o++] = 'v';
    text[o++] = '\n';
    text[o] = '\0';
    t = s_load(text);
    ck_assert_int_eq(t.rc, SL_PARSE);
    ck_assert_int_eq(sl_diag_count(t.d), 2);
    ck_assert_uint_lt(strlen(sl_diag_message(t.d, 0)), 100);
    s_assert_err(t.d, 1, 2, 5, "id is 20000 bytes long, limit 16");
    ck_assert_uint_lt(strlen(sl_diag_message(t.d, 1)), 120);
    s_free(&t);
    free(text);

    /* NUL bytes in the text itself (not an escape). */
    static const char nul[] = "slots: 4\nid: a\0b\n";
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    sl_diag_t *d = sl_diag_new("w.yaml");
    ck_assert_int_eq(sl_config_load_text(c, "w.yaml", nul, sizeof nul - 1, d), SL_PARSE);
    ck_assert_int_ge(sl_diag_count(d), 1);
    ck_assert_ptr_null(sl_config_str(c, "slots"));
    sl_diag_destroy(&d);
    /* No diag at all: still safe. */
    ck_assert_int_eq(sl_config_load_text(c, "w.yaml", "slot: 1", 7, NULL), SL_PARSE);
    ck_assert_int_eq(sl_config_load_text(c, "w.yaml", NULL, 0, NULL), 0);
    sl_config_destroy(&c);
}
END_TEST

START_TEST(test_load_file)
{
    char *dir = sl_test_tmpdir(), path[4096], err[512];
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    sl_diag_t *d = sl_diag_new("x");

    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    ck_assert_int_eq(sl_config_load_file(c, path, d, err, sizeof err), SL_IO);
    ck_assert_ptr_nonnull(strstr(err, "cannot read config file"));
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
    ck_assert_int_eq(sl_diag_count(d), 0);

    ck_assert_int_eq(sl_config_load_file(c, dir, d, err, sizeof err), SL_IO); /* a directory */

    snprintf(path, sizeof path, "%s/big.yaml", dir);
    char *big = malloc(SL_CONFIG_MAX_BYTES + 2);
    memset(big, '#', SL_CONFIG_MAX_BYTES + 1);
    big[SL_CONFIG_MAX_BYTES + 1] = '\0';
    sl_test_write_file(path, big);
    free(big);
    ck_assert_int_eq(sl_config_load_file(c, path, d, err, sizeof err), SL_LIMIT);
    ck_assert_ptr_nonnull(strstr(err, "larger than 65536 bytes"));

    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    sl_test_write_file(path, "slots: 2\nslotz: 3\n");
    sl_diag_t *d2 = sl_diag_new(path);
    ck_assert_int_eq(sl_config_load_file(c, path, d2, err, sizeof err), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "has errors; nothing in it was applied"));
    s_assert_err(d2, 0, 2, 1, "unknown key 'slotz'");
    ck_assert_ptr_null(sl_config_str(c, "slots"));
    sl_diag_destroy(&d2);

    snprintf(path, sizeof path, "%s/good.yaml", dir);
    sl_test_write_file(path, "slots: 2\n");
    ck_assert_int_eq(sl_config_load_file(c, path, d, err, sizeof err), 0);
    ck_assert_int_eq(sl_config_int(c, "slots", 0), 2);
    char want[4200];
    snprintf(want, sizeof want, "%s:1:8", path);
    ck_assert_str_eq(sl_config_origin(c, "slots"), want);

    sl_diag_destroy(&d);
    sl_config_destroy(&c);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_usage)
{
    sl_config_t *c = sl_config_new(s_keys, S_NKEYS);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    sl_config_usage(c, "usage: w [options]\n\n", f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(out, "usage: w [options]\n"));
    for (int i = 0; i < S_NKEYS; i++) {
        ck_assert_msg(strstr(out, s_keys[i].flag), "no %s", s_keys[i].flag);
        ck_assert_msg(strstr(out, s_keys[i].env), "no %s", s_keys[i].env);
        if (!s_keys[i].no_file) {
            char k[128];
            snprintf(k, sizeof k, "file key %s", s_keys[i].key);
            ck_assert_msg(strstr(out, k), "no %s", k);
        }
    }
    ck_assert_ptr_null(strstr(out, "file key config"));
    ck_assert_ptr_nonnull(strstr(out, "  --slots N\n      task slots\n      second line\n"));
    ck_assert_ptr_nonnull(strstr(out, "default 800; 50..3600000]"));
    ck_assert_ptr_nonnull(strstr(out, "default tcp://127.0.0.1:6123"));
    ck_assert_ptr_nonnull(strstr(out, "--help"));
    free(out);
    sl_config_destroy(&c);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_bad_default_is_refused);
    tcase_add_test(tc, test_precedence_any_order);
    tcase_add_test(tc, test_value_checks);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_args_errors);
    tcase_add_test(tc, test_env);
    tcase_add_test(tc, test_file_good);
    tcase_add_test(tc, test_file_unknown_keys);
    tcase_add_test(tc, test_file_value_errors);
    tcase_add_test(tc, test_file_structure_errors);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_usage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
