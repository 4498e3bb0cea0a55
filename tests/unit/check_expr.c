/* check_expr.c — the expression language: parsing, typing, evaluation,
 * null semantics, diagnostics with offsets, limits, and a garbling fuzz test.
 * Rows are plain sl_value_t arrays of the schema built in s_setup(). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/err.h"
#include "sluice/expr.h"
#include "sluice/row.h"
#include "testutil.h"

/* Field indices of the test schema. */
enum {
    F_PRICE,
    F_QTY,
    F_NAME,
    F_OK,
    F_TS,
    F_MISSING,
    F_NSTR,
    F_WEIRD,
    F_BIG,
    F_SMALL,
    F_ZERO,
    F_N
};

static sl_schema_t *g_schema;
static sl_arena_t *g_arena;
static sl_value_t g_row[F_N];
static const char g_name[] = "Hello World";

static void s_setup(void)
{
    g_schema = sl_schema_new();
    ck_assert_ptr_nonnull(g_schema);
    ck_assert_int_eq(sl_schema_add(g_schema, "price", SL_TYPE_DOUBLE), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "qty", SL_TYPE_INT64), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "name", SL_TYPE_STRING), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "ok", SL_TYPE_BOOL), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "ts", SL_TYPE_TIMESTAMP), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "missing", SL_TYPE_INT64), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "nstr", SL_TYPE_STRING), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "weird name", SL_TYPE_INT64), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "big", SL_TYPE_INT64), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "small", SL_TYPE_INT64), 0);
    ck_assert_int_eq(sl_schema_add(g_schema, "zero", SL_TYPE_INT64), 0);
    g_row[F_PRICE] = sl_value_double(2.5);
    g_row[F_QTY] = sl_value_int(7);
    g_row[F_NAME] = sl_value_str(g_name, (uint32_t)strlen(g_name));
    g_row[F_OK] = sl_value_bool(true);
    g_row[F_TS] = sl_value_ts(1700000000000); /* 2023-11-14T22:13:20.000Z */
    g_row[F_MISSING] = sl_value_null();
    g_row[F_NSTR] = sl_value_null();
    g_row[F_WEIRD] = sl_value_int(99);
    g_row[F_BIG] = sl_value_int(INT64_MAX);
    g_row[F_SMALL] = sl_value_int(INT64_MIN);
    g_row[F_ZERO] = sl_value_int(0);
    g_arena = sl_arena_new(4096);
    ck_assert_ptr_nonnull(g_arena);
}

static void s_teardown(void)
{
    sl_schema_destroy(&g_schema);
    sl_arena_destroy(&g_arena);
}

/* Compiles src (must succeed), evaluates it on g_row and returns the value;
 * strings are copied into g_arena so the expression can be destroyed. */
static sl_value_t s_ev(const char *src, sl_type_t *type)
{
    sl_expr_t *e = NULL;
    char err[256];
    int off = -1;
    int rc = sl_expr_compile(src, g_schema, &e, err, sizeof err, &off);
    ck_assert_msg(rc == 0, "compile '%s' failed: %s at %d", src, err, off);
    ck_assert_ptr_nonnull(e);
    sl_value_t v;
    rc = sl_expr_eval(e, g_row, g_arena, &v);
    ck_assert_msg(rc == 0, "eval '%s' failed: %d", src, rc);
    if (type)
        *type = sl_expr_type(e);
    if (!v.is_null)
        ck_assert_msg(v.type == sl_expr_type(e), "'%s': value type %d, expression type %d", src,
                      v.type, sl_expr_type(e));
    else
        ck_assert_msg(v.type == sl_expr_type(e), "'%s': null of type %d, expression type %d", src,
                      v.type, sl_expr_type(e));
    if (!v.is_null && v.type == SL_TYPE_STRING) {
        char *copy = sl_arena_strndup(g_arena, v.u.s, v.len);
        ck_assert_ptr_nonnull(copy);
        v.u.s = copy;
    }
    sl_expr_destroy(&e);
    ck_assert_ptr_null(e);
    return v;
}

static void s_int(const char *src, int64_t want)
{
    sl_value_t v = s_ev(src, NULL);
    ck_assert_msg(!v.is_null && v.type == SL_TYPE_INT64, "'%s': not a non-null int64", src);
    ck_assert_msg(v.u.i == want, "'%s' = %lld, want %lld", src, (long long)v.u.i, (long long)want);
}

static void s_ts(const char *src, int64_t want)
{
    sl_value_t v = s_ev(src, NULL);
    ck_assert_msg(!v.is_null && v.type == SL_TYPE_TIMESTAMP, "'%s': not a timestamp", src);
    ck_assert_msg(v.u.i == want, "'%s' = %lld, want %lld", src, (long long)v.u.i, (long long)want);
}

static void s_dbl(const char *src, double want)
{
    sl_value_t v = s_ev(src, NULL);
    ck_assert_msg(!v.is_null && v.type == SL_TYPE_DOUBLE, "'%s': not a non-null double", src);
    ck_assert_msg(v.u.d == want, "'%s' = %.17g, want %.17g", src, v.u.d, want);
}

static void s_bool(const char *src, int want)
{
    sl_value_t v = s_ev(src, NULL);
    ck_assert_msg(!v.is_null && v.type == SL_TYPE_BOOL, "'%s': not a non-null bool", src);
    ck_assert_msg(v.u.b == (want != 0), "'%s' = %d, want %d", src, v.u.b, want);
    ck_assert_int_eq(sl_expr_is_true(&v), want != 0);
}

static void s_str(const char *src, const char *want)
{
    sl_value_t v = s_ev(src, NULL);
    ck_assert_msg(!v.is_null && v.type == SL_TYPE_STRING, "'%s': not a non-null string", src);
    ck_assert_msg(v.len == strlen(want) && memcmp(v.u.s, want, v.len) == 0,
                  "'%s' = '%.*s', want '%s'", src, (int)v.len, v.u.s, want);
}

static void s_null(const char *src, sl_type_t type)
{
    sl_type_t t;
    sl_value_t v = s_ev(src, &t);
    ck_assert_msg(v.is_null, "'%s' is not null", src);
    ck_assert_msg(t == type, "'%s' has type %d, want %d", src, t, type);
    ck_assert_int_eq(sl_expr_is_true(&v), 0);
}

/* Compiles src expecting failure rc at offset off with msg in the message. */
static void s_err(const char *src, int rc, int off, const char *msg)
{
    sl_expr_t *e = (sl_expr_t *)&e; /* must be reset to NULL */
    char err[256];
    int got_off = -1;
    int got = sl_expr_compile(src, g_schema, &e, err, sizeof err, &got_off);
    ck_assert_msg(got == rc, "'%s': rc %d (%s), want %d", src, got, err, rc);
    ck_assert_ptr_null(e);
    ck_assert_msg(got_off == off, "'%s': offset %d, want %d (%s)", src, got_off, off, err);
    ck_assert_msg(strstr(err, msg) != NULL, "'%s': message '%s' lacks '%s'", src, err, msg);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_literals)
{
    s_int("42", 42);
    s_int("  0007 ", 7);
    s_int("-9223372036854775808", INT64_MIN);
    s_int("9223372036854775807", INT64_MAX);
    s_dbl("2.5", 2.5);
    s_dbl(".5", 0.5);
    s_dbl("1e3", 1000.0);
    s_dbl("1.5E-2", 0.015);
    s_dbl("-0.25", -0.25);
    s_str("'abc'", "abc");
    s_str("'it''s'", "it's");
    s_str("''", "");
    s_str("'a\tb'", "a\tb");
    s_bool("true", 1);
    s_bool("FALSE", 0);
    s_null("null", SL_TYPE_NULL);
    s_null("NULL", SL_TYPE_NULL);
}
END_TEST

START_TEST(test_fields)
{
    s_dbl("price", 2.5);
    s_int("qty", 7);
    s_str("name", "Hello World");
    s_bool("ok", 1);
    s_ts("ts", 1700000000000);
    s_null("missing", SL_TYPE_INT64);
    s_null("nstr", SL_TYPE_STRING);
    s_int("`weird name`", 99);
    s_int("`qty`", 7);

    /* A bare field is reported as such; anything else is not. */
    sl_expr_t *e = NULL;
    char err[128];
    int off;
    ck_assert_int_eq(sl_expr_compile("name", g_schema, &e, err, sizeof err, &off), 0);
    ck_assert_int_eq(sl_expr_field_index(e), F_NAME);
    ck_assert_int_eq(sl_expr_type(e), SL_TYPE_STRING);
    /* A field value is borrowed from the row, not copied. */
    sl_value_t v;
    ck_assert_int_eq(sl_expr_eval(e, g_row, g_arena, &v), 0);
    ck_assert_ptr_eq(v.u.s, g_name);
    sl_expr_destroy(&e);
    ck_assert_int_eq(sl_expr_compile("(qty)", g_schema, &e, err, sizeof err, &off), 0);
    ck_assert_int_eq(sl_expr_field_index(e), F_QTY);
    sl_expr_destroy(&e);
    ck_assert_int_eq(sl_expr_compile("qty + 0", g_schema, &e, err, sizeof err, &off), 0);
    ck_assert_int_eq(sl_expr_field_index(e), -1);
    sl_expr_destroy(&e);
    sl_expr_destroy(&e); /* NULL is fine */
    sl_expr_destroy(NULL);
    ck_assert_int_eq(sl_expr_field_index(NULL), -1);
}
END_TEST

START_TEST(test_arithmetic)
{
    s_int("1 + 2", 3);
    s_int("qty - 10", -3);
    s_int("qty * 6", 42);
    s_int("qty / 2", 3); /* integer division truncates */
    s_int("-qty / 2", -3);
    s_int("qty % 4", 3);
    s_int("-7 % 4", -3); /* sign of the dividend, like C */
    s_int("-qty", -7);
    s_int("- -qty", 7);
    s_dbl("price * 2", 5.0);
    s_dbl("price + qty", 9.5); /* any double operand -> double */
    s_dbl("qty / 2.0", 3.5);
    s_dbl("7.5 % 2", 1.5);
    s_dbl("-price", -2.5);
    s_dbl("1 / 4.0", 0.25);
    s_str("'a' || 'b' || name", "abHello World");
    s_str("name || ''", "Hello World");
}
END_TEST

START_TEST(test_precedence)
{
    s_int("1 + 2 * 3", 7);
    s_int("(1 + 2) * 3", 9);
    s_int("2 - 3 - 4", -5); /* left associative */
    s_int("100 / 10 / 5", 2);
    s_int("10 / 3 * 3", 9);
    s_int("7 % 3 + 1", 2);
    s_int("-2 * 3", -6);
    s_int("-(2 + 3) * 2", -10);
    s_int("2 * -3", -6);
    s_bool("1 + 1 = 2", 1);
    s_bool("1 + 1 = 2 and 2 * 2 = 4", 1);
    s_bool("true or false and false", 1); /* and binds tighter */
    s_bool("(true or false) and false", 0);
    s_bool("not 1 = 2", 1);           /* not binds looser than = */
    s_bool("not false and false", 0); /* (not false) and false */
    s_bool("not not true", 1);
    s_bool("qty + 1 > 7 and price * 2 >= 5", 1);
    s_str("'x' || 'y' || 'z'", "xyz");
}
END_TEST

START_TEST(test_comparison)
{
    s_bool("qty = 7", 1);
    s_bool("qty == 7", 1);
    s_bool("qty != 7", 0);
    s_bool("qty <> 8", 1);
    s_bool("qty < 8", 1);
    s_bool("qty <= 7", 1);
    s_bool("qty > 7", 0);
    s_bool("qty >= 8", 0);
    s_bool("price = 2.5", 1);
    s_bool("qty > price", 1); /* int64 with double */
    s_bool("2 = 2.0", 1);
    s_bool("0.0 = -0.0", 1);
    /* Strings compare bytewise. */
    s_bool("'abc' < 'abd'", 1);
    s_bool("'ab' < 'abc'", 1);
    s_bool("'Z' < 'a'", 1);
    s_bool("'z' < '\xc3\xa9'", 1); /* UTF-8 bytes above ASCII */
    s_bool("name = 'Hello World'", 1);
    s_bool("name = 'hello world'", 0);
    s_bool("'' < 'a'", 1);
    s_bool("true > false", 1);
    s_bool("ok = true", 1);
    s_bool("ts = ts", 1);
    s_bool("ts < ts + 1", 1);
}
END_TEST

START_TEST(test_three_valued_logic)
{
    /* and: false dominates, then null. */
    s_bool("true and true", 1);
    s_bool("true and false", 0);
    s_bool("false and null", 0);
    s_bool("null and false", 0);
    s_null("true and null", SL_TYPE_BOOL);
    s_null("null and true", SL_TYPE_BOOL);
    s_null("null and null", SL_TYPE_BOOL);
    /* or: true dominates, then null. */
    s_bool("false or false", 0);
    s_bool("true or null", 1);
    s_bool("null or true", 1);
    s_null("false or null", SL_TYPE_BOOL);
    s_null("null or false", SL_TYPE_BOOL);
    s_null("null or null", SL_TYPE_BOOL);
    /* not */
    s_null("not null", SL_TYPE_BOOL);
    s_bool("(not (missing > 1)) is null", 1);
    s_bool("not (missing > 1) is null", 0); /* = not ((missing > 1) is null) */
    /* With fields and comparisons that are null. */
    s_null("missing > 1 and ok", SL_TYPE_BOOL);
    s_bool("missing > 1 and not ok", 0);
    s_bool("missing > 1 or ok", 1);
    s_null("missing > 1 or not ok", SL_TYPE_BOOL);
    /* Long chains are flattened but keep the semantics. */
    s_bool("false or false or false or qty = 7 or false", 1);
    s_null("true and true and missing = 1 and true", SL_TYPE_BOOL);
    s_bool("true and true and missing = 1 and false", 0);
}
END_TEST

START_TEST(test_is_null)
{
    s_bool("missing is null", 1);
    s_bool("missing is not null", 0);
    s_bool("qty is null", 0);
    s_bool("qty IS NOT NULL", 1);
    s_bool("null is null", 1);
    s_bool("nstr is null", 1);
    s_bool("qty / 0 is null", 1);
    s_bool("missing + 1 is null", 1);
    s_bool("name || nstr is null", 1);
    s_bool("not missing is null", 0);
}
END_TEST

START_TEST(test_null_propagation)
{
    s_null("missing + 1", SL_TYPE_INT64);
    s_null("1 + null", SL_TYPE_INT64);
    s_null("null + null", SL_TYPE_INT64);
    s_null("price * null", SL_TYPE_DOUBLE);
    s_null("-missing", SL_TYPE_INT64);
    s_null("missing = 7", SL_TYPE_BOOL);
    s_null("null = null", SL_TYPE_BOOL);
    s_null("nstr < 'a'", SL_TYPE_BOOL);
    s_null("name || null", SL_TYPE_STRING);
    s_null("lower(nstr)", SL_TYPE_STRING);
    s_null("upper(null)", SL_TYPE_STRING);
    s_null("length(nstr)", SL_TYPE_INT64);
    s_null("substr(name, missing)", SL_TYPE_STRING);
    s_null("substr(name, 1, missing)", SL_TYPE_STRING);
    s_null("concat(name, nstr, 'x')", SL_TYPE_STRING);
    s_null("trim(nstr)", SL_TYPE_STRING);
    s_null("starts_with(name, nstr)", SL_TYPE_BOOL);
    s_null("contains(nstr, 'a')", SL_TYPE_BOOL);
    s_null("abs(missing)", SL_TYPE_INT64);
    s_null("cast(missing as string)", SL_TYPE_STRING);
    s_null("cast(null as double)", SL_TYPE_DOUBLE);
    s_null("ts + missing", SL_TYPE_TIMESTAMP);
    /* A null condition is not true: the else branch is taken. */
    s_int("case when missing > 1 then 1 else 2 end", 2);

    /* A filter keeps a record only when its predicate is true. */
    sl_value_t v = sl_value_null();
    v.type = SL_TYPE_BOOL;
    ck_assert_int_eq(sl_expr_is_true(&v), 0);
    v = sl_value_bool(false);
    ck_assert_int_eq(sl_expr_is_true(&v), 0);
    v = sl_value_bool(true);
    ck_assert_int_eq(sl_expr_is_true(&v), 1);
    v = sl_value_int(1);
    ck_assert_int_eq(sl_expr_is_true(&v), 0);
    ck_assert_int_eq(sl_expr_is_true(NULL), 0);
}
END_TEST

START_TEST(test_case)
{
    s_str("case when qty > 5 then 'big' else 'small' end", "big");
    s_str("case when qty > 50 then 'big' else 'small' end", "small");
    s_str("case when qty = 1 then 'one' when qty = 7 then 'seven' when qty = 7 then 'dup' end",
          "seven");
    s_null("case when qty = 1 then 'one' end", SL_TYPE_STRING);
    s_null("CASE WHEN false THEN 1 END", SL_TYPE_INT64);
    s_int("case when null then 1 when true then 2 end", 2);
    /* int64 and double branches unify to double, whichever is taken. */
    s_dbl("case when ok then 1 else 2.5 end", 1.0);
    s_dbl("case when not ok then 1 else 2.5 end", 2.5);
    s_bool("case when ok then null else 3 end is null", 1);
    s_int("case when ok then case when qty > 3 then 10 else 20 end else 30 end", 10);
    s_null("case when ok then null end", SL_TYPE_NULL);
    s_null("case when ok then null else 3 end", SL_TYPE_INT64);
}
END_TEST

START_TEST(test_cast)
{
    /* int64 <-> double */
    s_dbl("cast(qty as double)", 7.0);
    s_int("cast(3.9 as int64)", 3);
    s_int("cast(-3.9 as int64)", -3);
    s_null("cast(1e300 as int64)", SL_TYPE_INT64);
    s_null("cast(cast('nan' as double) as int64)", SL_TYPE_INT64);
    /* string -> numbers */
    s_int("cast(' 42 ' as int64)", 42);
    s_int("cast('-17' as INT)", -17);
    s_int("cast('+5' as bigint)", 5);
    s_int("cast('-9223372036854775808' as int64)", INT64_MIN);
    s_null("cast('9223372036854775808' as int64)", SL_TYPE_INT64);
    s_null("cast('12x' as int64)", SL_TYPE_INT64);
    s_null("cast('' as int64)", SL_TYPE_INT64);
    s_null("cast('-' as int64)", SL_TYPE_INT64);
    s_dbl("cast('2.5' as double)", 2.5);
    s_dbl("cast(' 1e2 ' as float)", 100.0);
    s_null("cast('abc' as double)", SL_TYPE_DOUBLE);
    s_null("cast('1.5.2' as double)", SL_TYPE_DOUBLE);
    /* bool */
    s_bool("cast('TRUE' as bool)", 1);
    s_bool("cast('no' as boolean)", 0);
    s_bool("cast('0' as bool)", 0);
    s_null("cast('maybe' as bool)", SL_TYPE_BOOL);
    s_bool("cast(qty as bool)", 1);
    s_bool("cast(zero as bool)", 0);
    s_bool("cast(0.0 as bool)", 0);
    s_int("cast(ok as int64)", 1);
    s_dbl("cast(false as double)", 0.0);
    /* to string */
    s_str("cast(qty as string)", "7");
    s_str("cast(small as text)", "-9223372036854775808");
    s_str("cast(ok as string)", "true");
    s_str("cast(0.1 as string)", "0.1");
    s_str("cast(price as string)", "2.5");
    s_str("cast(1.0 / 3 as string)", "0.3333333333333333");
    s_str("cast(1e20 as string)", "1e+20");
    s_str("cast(-0.0 as string)", "-0");
    s_str("cast(name as string)", "Hello World");
    s_str("cast(ts as string)", "2023-11-14T22:13:20.000Z");
    s_str("cast(cast(-1 as timestamp) as string)", "1969-12-31T23:59:59.999Z");
    /* A double printed as a string reads back as the same double. */
    s_bool("cast(cast(1.0 / 3 as string) as double) = 1.0 / 3", 1);
    s_bool("cast(cast(price * 1.1 as string) as double) = price * 1.1", 1);
    /* timestamps */
    s_ts("cast(1700000000000 as timestamp)", 1700000000000);
    s_int("cast(ts as int64)", 1700000000000);
    s_dbl("cast(ts as double)", 1700000000000.0);
    s_ts("cast(2.9 as timestamp)", 2);
    s_ts("cast('2023-11-14T22:13:20.000Z' as timestamp)", 1700000000000);
    s_ts("cast('2023-11-14 22:13:20' as timestamp)", 1700000000000);
    s_ts("cast('2023-11-14T23:13:20.5+01:00' as timestamp)", 1700000000500);
    s_ts("cast('1970-01-02' as timestamp)", 86400000);
    s_ts("cast('2024-02-29T00:00:00Z' as timestamp)", 1709164800000);
    s_ts("cast('12345' as timestamp)", 12345);
    s_null("cast('2023-02-29' as timestamp)", SL_TYPE_TIMESTAMP);
    s_null("cast('2023-13-01' as timestamp)", SL_TYPE_TIMESTAMP);
    s_null("cast('yesterday' as timestamp)", SL_TYPE_TIMESTAMP);
    s_bool("cast(cast(ts as string) as timestamp) = ts", 1);
    /* Identity casts and keyword case. */
    s_int("CAST(qty AS INT64)", 7);
    s_str("cast(name as TEXT)", "Hello World");
}
END_TEST

START_TEST(test_functions)
{
    s_str("lower(name)", "hello world");
    /* lower(s) = 'literal' compares in place: the same answers */
    s_bool("lower(name) = 'hello world'", 1);
    s_bool("lower(name) = 'Hello World'", 0); /* the literal is not lowered */
    s_bool("lower(name) = 'hello worl'", 0);
    s_bool("lower(name) = 'hello worlds'", 0);
    s_bool("lower(name) <> 'hello world'", 0);
    s_bool("lower(name) <> 'hello'", 1);
    s_bool("lower('A@[Z') = 'a@[z'", 1);
    s_bool("lower('') = ''", 1);
    s_null("lower(nstr) = 'x'", SL_TYPE_BOOL);
    s_null("lower(name) = null", SL_TYPE_BOOL);
    s_bool("lower(name) = lower('HELLO world')", 1);
    s_str("upper(name)", "HELLO WORLD");
    s_str("LOWER('\xc3\x89t\xc3\xa9 ABC')", "\xc3\x89t\xc3\xa9 abc"); /* ASCII only */
    s_int("length(name)", 11);
    s_int("length('')", 0);
    s_int("length('h\xc3\xa9llo')", 6); /* bytes, not code points */
    s_str("substr(name, 1, 5)", "Hello");
    s_str("substr(name, 7)", "World");
    s_str("substr(name, 7, 100)", "World");
    s_str("substr(name, 0, 3)", "He"); /* positions 0..2, of which 1..2 exist */
    s_str("substr(name, -5, 3)", "");
    s_str("substr(name, 12)", "");
    s_str("substr(name, 11, 1)", "d");
    s_str("substr(name, 3, 0)", "");
    s_str("substr(name, -5, 10)", "Hell"); /* positions -5..4 */
    s_str("substr(name, -9223372036854775808, 9223372036854775807)", "");
    s_str("substr(name, -9223372036854775808)", "Hello World");
    s_str("substr(name, 9223372036854775807, 9223372036854775807)", "");
    s_null("substr(name, 1, -1)", SL_TYPE_STRING);
    s_str("concat(name, '!')", "Hello World!");
    s_str("concat('a')", "a");
    s_str("concat('q=', qty, ' p=', price, ' ', ok)", "q=7 p=2.5 true");
    s_str("concat('', '')", "");
    s_str("trim('  a b \t\n')", "a b");
    s_str("trim('   ')", "");
    s_str("trim(name)", "Hello World");
    s_bool("starts_with(name, 'Hello')", 1);
    s_bool("starts_with(name, 'World')", 0);
    s_bool("starts_with(name, '')", 1);
    s_bool("starts_with('ab', 'abc')", 0);
    s_bool("contains(name, 'o W')", 1);
    s_bool("contains(name, 'World')", 1);
    s_bool("contains(name, 'world')", 0);
    s_bool("contains(name, '')", 1);
    s_bool("contains('ab', 'abc')", 0);
    s_int("coalesce(missing, qty)", 7);
    s_int("coalesce(missing, null, 3, qty)", 3);
    s_str("coalesce(nstr, 'default')", "default");
    s_dbl("coalesce(missing, 1, 2.5)", 1.0); /* int64 and double unify to double */
    s_null("coalesce(missing, null)", SL_TYPE_INT64);
    s_null("coalesce(null, null)", SL_TYPE_NULL);
    s_int("abs(-5)", 5);
    s_int("abs(qty)", 7);
    s_dbl("abs(-2.5)", 2.5);
    s_int("abs(small)", INT64_MIN); /* wraps */
    s_int("Length(Upper(name))", 11);
}
END_TEST

START_TEST(test_time_parts)
{
    /* ts is 2023-11-14T22:13:20.000Z */
    s_int("year(ts)", 2023);
    s_int("month(ts)", 11);
    s_int("day(ts)", 14);
    s_int("hour(ts)", 22);
    s_int("minute(ts)", 13);
    s_int("HOUR(ts + 2 * 3600000)", 0); /* the next day */
    s_int("day(ts + 2 * 3600000)", 15);
    s_int("hour(cast('2024-02-29T08:59:59.999Z' as timestamp))", 8);
    s_int("day(cast('2024-02-29T08:59:59.999Z' as timestamp))", 29);
    s_int("month(cast('2024-02-29' as timestamp))", 2);
    /* before the epoch: floor, not truncation */
    s_int("hour(cast(-1 as timestamp))", 23);
    s_int("minute(cast(-1 as timestamp))", 59);
    s_int("year(cast(-1 as timestamp))", 1969);
    s_int("month(cast(-1 as timestamp))", 12);
    s_int("day(cast(-1 as timestamp))", 31);
    s_int("hour(cast(0 as timestamp))", 0);
    s_int("year(cast(-9223372036854775808 as timestamp))", -292275055);
    s_int("year(cast(9223372036854775807 as timestamp))", 292278994);
    s_null("hour(cast(missing as timestamp))", SL_TYPE_INT64);
    s_null("year(null)", SL_TYPE_INT64);
    s_bool("hour(ts) >= 8 and hour(ts) <= 18", 0);
    s_err("hour(qty)", SL_TYPE, 5, "function 'hour' needs a timestamp, got int64");
    s_err("year('2024-01-01')", SL_TYPE, 5, "function 'year' needs a timestamp, got string");
    s_err("minute()", SL_PARSE, 0, "function 'minute' takes 1 argument, got 0");
    s_err("day(ts, ts)", SL_PARSE, 0, "function 'day' takes 1 argument, got 2");
}
END_TEST

START_TEST(test_count_char)
{
    s_int("count_char(name, 'o')", 2);
    s_int("count_char(name, 'l')", 3);
    s_int("count_char(name, 'h')", 0); /* bytes: case-sensitive */
    s_int("count_char(name, ' ')", 1);
    s_int("count_char('', 'a')", 0);
    s_int("count_char('aaaa', 'a')", 4);
    s_int("count_char('it''s ''q''', '''')", 3);
    s_int("count_char('caccbc', 'c') + 1", 5);
    s_null("count_char(nstr, 'a')", SL_TYPE_INT64);
    s_null("count_char(null, 'a')", SL_TYPE_INT64);
    s_err("count_char(name, 'ab')", SL_TYPE, 17,
          "argument 2 of 'count_char' must be a string literal of one character");
    s_err("count_char(name, '')", SL_TYPE, 17, "a string literal of one character");
    s_err("count_char(name, name)", SL_TYPE, 17, "a string literal of one character");
    s_err("count_char(name, null)", SL_TYPE, 17, "a string literal of one character");
    s_err("count_char(name, 1)", SL_TYPE, 17, "a string literal of one character");
    s_err("count_char(qty, 'a')", SL_TYPE, 11, "function 'count_char' needs a string, got int64");
    s_err("count_char(name)", SL_PARSE, 0, "function 'count_char' takes 2 arguments, got 1");
}
END_TEST

START_TEST(test_split_index)
{
    const char *u = "'https://www.nexmark.com/abc/def/ghi/item.htm?query=1'";
    char src[256];
    static const char *const want[] = {"https:", "",    "www.nexmark.com", "abc",
                                       "def",    "ghi", "item.htm?query=1"};
    for (int i = 0; i < 7; i++) {
        snprintf(src, sizeof src, "split_index(%s, '/', %d)", u, i);
        s_str(src, want[i]);
    }
    snprintf(src, sizeof src, "split_index(%s, '/', 7)", u);
    s_null(src, SL_TYPE_STRING);
    snprintf(src, sizeof src, "split_index(%s, '/', -1)", u);
    s_null(src, SL_TYPE_STRING);
    s_str("split_index(name, ' ', 1)", "World");
    s_str("split_index(name, ' ', 0)", "Hello");
    s_str("split_index(name, 'x', 0)", "Hello World"); /* no separator: one field */
    s_null("split_index(name, 'x', 1)", SL_TYPE_STRING);
    s_str("split_index('a//b/', '/', 1)", ""); /* every field kept, empty ones too */
    s_str("split_index('a//b/', '/', 2)", "b");
    s_str("split_index('a//b/', '/', 3)", "");
    s_null("split_index('a//b/', '/', 4)", SL_TYPE_STRING);
    s_str("split_index('/', '/', 0)", "");
    s_str("split_index('/', '/', 1)", "");
    s_str("split_index('a::b::c', '::', 2)", "c"); /* a whole separator */
    s_str("split_index('a:::b', '::', 1)", ":b");  /* left to right, no overlap */
    s_str("split_index('a:b', 'a:b', 1)", "");
    s_str("split_index('abc', '', 0)", "abc"); /* an empty separator does not split */
    s_null("split_index('abc', '', 1)", SL_TYPE_STRING);
    s_null("split_index('', '/', 0)", SL_TYPE_STRING); /* as Flink: no field at all */
    s_null("split_index(name, ' ', 9223372036854775807)", SL_TYPE_STRING);
    s_null("split_index(name, ' ', -9223372036854775808)", SL_TYPE_STRING);
    s_null("split_index(nstr, '/', 0)", SL_TYPE_STRING);
    s_null("split_index(name, nstr, 0)", SL_TYPE_STRING);
    s_null("split_index(name, ' ', missing)", SL_TYPE_STRING);
    s_str("split_index(name, substr(name, 6, 1), qty - 6)", "World"); /* computed arguments */
    s_err("split_index(name, 1, 0)", SL_TYPE, 18,
          "argument 2 of 'split_index' needs a string, got int64");
    s_err("split_index(name, '/', 'x')", SL_TYPE, 23,
          "argument 3 of 'split_index' needs an int64, got string");
    s_err("split_index(qty, '/', 0)", SL_TYPE, 12,
          "function 'split_index' needs a string, got int64");
    s_err("split_index(name, '/')", SL_PARSE, 0, "function 'split_index' takes 3 arguments, got 2");
}
END_TEST

#define S_CHAN "'(&|^)channel_id=([^&]*)'"

START_TEST(test_regexp_extract)
{
    s_str("regexp_extract('query=1&channel_id=123&x=2', " S_CHAN ", 2)", "123");
    s_str("regexp_extract('query=1&channel_id=123&x=2', " S_CHAN ", 1)", "&");
    s_str("regexp_extract('query=1&channel_id=123&x=2', " S_CHAN ", 0)", "&channel_id=123");
    s_str("regexp_extract('query=1&channel_id=123&x=2', " S_CHAN ")", "&channel_id=123");
    s_str("regexp_extract('channel_id=9', " S_CHAN ", 2)", "9"); /* the ^ branch */
    s_str("regexp_extract('channel_id=9', " S_CHAN ", 1)", "");
    s_str("regexp_extract('a&channel_id=&b=1', " S_CHAN ", 2)", "");    /* an empty group */
    s_null("regexp_extract('query=1', " S_CHAN ", 2)", SL_TYPE_STRING); /* no match */
    s_null("regexp_extract('xchannel_id=1', " S_CHAN ", 2)", SL_TYPE_STRING);
    s_str("regexp_extract('x1y22', '[0-9]+')", "1"); /* the first match */
    s_str("regexp_extract(name, '(l+)o', 1)", "ll");
    s_null("regexp_extract('b', '(a)|b', 1)", SL_TYPE_STRING); /* the group took no part */
    s_str("regexp_extract('b', '(a)|b', 0)", "b");
    s_str("regexp_extract('', '^$')", "");
    s_null("regexp_extract('', 'a')", SL_TYPE_STRING);
    s_str("regexp_extract(name, 'o') || regexp_extract(name, 'W.')", "oWo"); /* two patterns */
    s_null("regexp_extract(nstr, 'a')", SL_TYPE_STRING);
    s_null("regexp_extract(name, 'o', missing)", SL_TYPE_STRING);
    s_null("regexp_extract(name, 'o', null)", SL_TYPE_STRING);
    s_null("regexp_extract(name, 'o', qty)", SL_TYPE_STRING); /* group 7 of 0, at run time */
    s_null("regexp_extract(name, '(o)', qty - 8)", SL_TYPE_STRING);
    s_str("regexp_extract(name, '(o)', qty - 6)", "o");
    s_err("regexp_extract(name, '(')", SL_PARSE, 21, "invalid regular expression");
    s_err("regexp_extract(name, 'a{2,1}')", SL_PARSE, 21, "invalid regular expression");
    s_err("regexp_extract(name, name)", SL_TYPE, 21,
          "argument 2 of 'regexp_extract' must be a string literal (the pattern)");
    s_err("regexp_extract(name, null)", SL_TYPE, 21, "must be a string literal");
    s_err("regexp_extract(name, '(a)', 2)", SL_PARSE, 28,
          "group 2 of a regular expression with 1 group");
    s_err("regexp_extract(name, 'a', -1)", SL_PARSE, 26,
          "group -1 of a regular expression with 0 groups");
    s_err("regexp_extract(qty, 'a')", SL_TYPE, 15,
          "function 'regexp_extract' needs a string, got int64");
    s_err("regexp_extract(name, 'a', 'b')", SL_TYPE, 26,
          "argument 3 of 'regexp_extract' needs an int64, got string");
    s_err("regexp_extract(name)", SL_PARSE, 0,
          "function 'regexp_extract' takes 2 to 3 arguments, got 1");
    /* an error after a pattern was compiled frees it (ASan checks) */
    s_err("regexp_extract(name, 'a') || regexp_extract(name, '(')", SL_PARSE, 50,
          "invalid regular expression");
    s_err("regexp_extract(name, 'a') = qty", SL_TYPE, 26, "cannot compare string with int64");
    char src[256];
    int n = snprintf(src, sizeof src, "regexp_extract(name, '");
    for (int i = 0; i < 33; i++)
        n += snprintf(src + n, sizeof src - (size_t)n, "()");
    snprintf(src + n, sizeof src - (size_t)n, "')");
    s_err(src, SL_PARSE, 21, "regular expression has 33 groups (limit 32)");
}
END_TEST

/* regexp_extract against regcomp / regexec directly, for every group, on
 * patterns of the fast path's shape (literal with anchors or one-character
 * alternatives before it, classes with a star after it) and on patterns
 * that fall back to regexec, over strings made to hit the edges: the
 * literal at the start, after an alternative, after another character,
 * twice, cut short, a class stopping at each of its characters. */
START_TEST(test_regexp_fast_path)
{
    static const char *const pats[] = {
        "(&|^)channel_id=([^&]*)", /* q21 */
        "^channel_id=([^&]*)",
        "channel_id=([^&]*)",
        "(&|\\?)id=([^&]*)&",
        "(^|/|&)id=([^&/]*)(/)([^/]*)",
        "id=[^&]*&x=([^=&]*)",
        "(&|^)id=",
        "id",
        "(x|^)x=([^&]*)",         /* an alternative begins the literal: regexec */
        "(&|^)id=([^&]*)([^/]*)", /* two classes in a row: regexec */
        "id=([^&]*)x",            /* a class followed by a character outside its set: regexec */
        "(&|^)id=([a-z]*)",       /* not a negated class: regexec */
        "i+d=([^&]*)",            /* an operator in the literal: regexec */
        "(&|ab)id=([^&]*)",       /* a longer alternative: regexec */
    };
    static const char *const strs[] = {
        "",
        "id",
        "id=",
        "id=1",
        "channel_id=9",
        "channel_id=",
        "x&channel_id=12&y=3",
        "a=1&channel_id=&b=1",
        "xchannel_id=1",
        "https://www.nexmark.com/abc/de_f/gh/item.htm?query=1&channel_id=1234567",
        "https://www.nexmark.com/abc/de_f/gh/item.htm?query=1",
        "id=1&id=2&x=3",
        "aid=1&id=2&",
        "?id=a/b&",
        "/id=7/q/r",
        "&id=7/q",
        "id=ab&x=cd=e",
        "x=1",
        "xx=1&x=2",
        "&&id=&",
        "id=abc",
        "id=abcx",
        "id=a/bx&x",
        "abid=1",
        "&abid=2",
    };
    sl_schema_t *sc = sl_schema_new();
    ck_assert_ptr_nonnull(sc);
    ck_assert_int_eq(sl_schema_add(sc, "s", SL_TYPE_STRING), 0);
    int compared = 0;
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
        regex_t re;
        ck_assert_int_eq(regcomp(&re, pats[i], REG_EXTENDED), 0);
        for (size_t g = 0; g <= re.re_nsub; g++) {
            char src[128];
            snprintf(src, sizeof src, "regexp_extract(s, '%s', %zu)", pats[i], g);
            sl_expr_t *e = NULL;
            char err[256];
            ck_assert_msg(sl_expr_compile(src, sc, &e, err, sizeof err, NULL) == 0, "%s: %s", src,
                          err);
            for (size_t k = 0; k < sizeof strs / sizeof *strs; k++) {
                sl_value_t row[1] = {sl_value_str(strs[k], (uint32_t)strlen(strs[k]))};
                sl_value_t v;
                ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
                regmatch_t m[8];
                bool want = regexec(&re, strs[k], g + 1, m, 0) == 0 && m[g].rm_so >= 0;
                ck_assert_msg(v.is_null == !want, "%s on '%s': null %d, regexec %d", src, strs[k],
                              v.is_null, want);
                if (want) {
                    uint32_t n = (uint32_t)(m[g].rm_eo - m[g].rm_so);
                    ck_assert_msg(v.len == n && (n == 0 || v.u.s == strs[k] + m[g].rm_so),
                                  "%s on '%s': got '%.*s', regexec '%.*s'", src, strs[k],
                                  (int)v.len, v.u.s, (int)n, strs[k] + m[g].rm_so);
                }
                compared++;
            }
            sl_expr_destroy(&e);
        }
        regfree(&re);
    }
    ck_assert_int_gt(compared, 500);
    /* a NUL inside the string: regexec (REG_STARTEND) decides, as before */
    sl_expr_t *e = NULL;
    ck_assert_int_eq(
        sl_expr_compile("regexp_extract(s, '(&|^)id=([^&]*)', 2)", sc, &e, NULL, 0, NULL), 0);
    static const char nul[] = "&id=a\0b&c";
    sl_value_t row[1] = {sl_value_str(nul, sizeof nul - 1)};
    sl_value_t v;
    ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
#ifdef REG_STARTEND
    ck_assert(!v.is_null);
    ck_assert_int_eq(v.len, 3);
    ck_assert(v.u.s == nul + 4);
#endif
    sl_expr_destroy(&e);
    sl_schema_destroy(&sc);
}
END_TEST

/* Strings that are not NUL-terminated; a field named `in`. */
START_TEST(test_string_views)
{
    sl_schema_t *sc = sl_schema_new();
    ck_assert_int_eq(sl_schema_add(sc, "s", SL_TYPE_STRING), 0);
    ck_assert_int_eq(sl_schema_add(sc, "in", SL_TYPE_INT64), 0);
    static const char bytes[] = "a/bc/cXYZ/c";
    sl_value_t row[2] = {sl_value_str(bytes, 4), sl_value_int(3)}; /* "a/bc" */
    struct {
        const char *src;
        const char *want; /* NULL: null */
    } cases[] = {
        {"regexp_extract(s, 'c.*')", "c"},
        {"regexp_extract(s, 'c$')", "c"},
        {"regexp_extract(s, 'X')", NULL},
        {"split_index(s, '/', 1)", "bc"},
        {"split_index(s, '/', 2)", NULL},
        {"split_index(s, 'c/', 1)", NULL},
        {"cast(count_char(s, 'c') as string)", "1"},
        {"cast(in in (1, 3) as string)", "true"},
        {"cast(in not in (in) as string)", "false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sl_expr_t *e = NULL;
        char err[256];
        int off;
        ck_assert_msg(sl_expr_compile(cases[i].src, sc, &e, err, sizeof err, &off) == 0, "'%s': %s",
                      cases[i].src, err);
        sl_value_t v;
        ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
        if (!cases[i].want)
            ck_assert_msg(v.is_null, "'%s' is not null", cases[i].src);
        else
            ck_assert_msg(!v.is_null && v.len == strlen(cases[i].want) &&
                              memcmp(v.u.s, cases[i].want, v.len) == 0,
                          "'%s' = '%.*s', want '%s'", cases[i].src, v.is_null ? 4 : (int)v.len,
                          v.is_null ? "null" : v.u.s, cases[i].want);
        sl_expr_destroy(&e);
    }
    /* a string ending exactly where its heap block ends (ASan catches any
     * read past it), and one with a NUL inside */
    char *heap = malloc(4);
    ck_assert_ptr_nonnull(heap);
    memcpy(heap, "ab/d", 4);
    sl_expr_t *e = NULL;
    char err[256];
    int off;
    ck_assert_int_eq(sl_expr_compile("regexp_extract(s, '[bd]$') || split_index(s, '/', 1)", sc, &e,
                                     err, sizeof err, &off),
                     0);
    sl_value_t v, r2[2] = {sl_value_str(heap, 4), sl_value_int(0)};
    ck_assert_int_eq(sl_expr_eval(e, r2, g_arena, &v), 0);
    ck_assert(!v.is_null && v.len == 2 && memcmp(v.u.s, "dd", 2) == 0);
    sl_expr_destroy(&e);
    ck_assert_int_eq(sl_expr_compile("regexp_extract(s, 'b.')", sc, &e, err, sizeof err, &off), 0);
    r2[0] = sl_value_str("a\0bc", 4);
    ck_assert_int_eq(sl_expr_eval(e, r2, g_arena, &v), 0);
    ck_assert(!v.is_null && v.len == 2 && memcmp(v.u.s, "bc", 2) == 0);
    sl_expr_destroy(&e);
    free(heap);
    sl_schema_destroy(&sc);
}
END_TEST

/* One compiled pattern evaluated by several threads at once. */
typedef struct {
    const sl_expr_t *e; /* shared */
    int id;             /* thread number */
    int bad;            /* wrong results */
} s_thr_t;

static void *s_regexp_thread(void *arg)
{
    s_thr_t *t = arg;
    sl_arena_t *ar = sl_arena_new(4096);
    if (!ar) {
        t->bad = -1;
        return NULL;
    }
    char url[64], want[32];
    for (int i = 0; i < 20000; i++) {
        int k = t->id * 100000 + i;
        snprintf(want, sizeof want, "%d", k);
        int n = snprintf(url, sizeof url, "https://x/%d/y?q=1&channel_id=%d&z", i, k);
        sl_value_t row[1] = {sl_value_str(url, (uint32_t)n)}, v;
        if (sl_expr_eval(t->e, row, ar, &v) != 0 || v.is_null || v.len != strlen(want) ||
            memcmp(v.u.s, want, v.len) != 0)
            t->bad++;
        sl_arena_reset(ar);
    }
    sl_arena_destroy(&ar);
    return NULL;
}

START_TEST(test_regexp_threads)
{
    sl_schema_t *sc = sl_schema_new();
    ck_assert_int_eq(sl_schema_add(sc, "url", SL_TYPE_STRING), 0);
    sl_expr_t *e = NULL;
    char err[256];
    int off;
    ck_assert_int_eq(
        sl_expr_compile("regexp_extract(url, " S_CHAN ", 2)", sc, &e, err, sizeof err, &off), 0);
    pthread_t th[4];
    s_thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thr_t){e, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_regexp_thread, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(t[i].bad, 0);
    }
    sl_expr_destroy(&e);
    sl_schema_destroy(&sc);
}
END_TEST

START_TEST(test_in)
{
    s_bool("qty in (1, 7, 9)", 1);
    s_bool("qty IN (1, 2)", 0);
    s_bool("qty not in (1, 2)", 1);
    s_bool("qty NOT IN (7)", 0);
    s_bool("name in ('a', 'Hello World')", 1);
    s_bool("lower(name) in ('hello', 'hello world')", 1);
    s_bool("qty in (7.0)", 1); /* int64 with double, as = */
    s_bool("price in (qty, 2.5)", 1);
    s_bool("ts in (ts + 1, ts)", 1);
    s_bool("ok in (false)", 0);
    s_bool("qty in (qty - 1, qty + 1) or qty in (7)", 1);
    s_bool("not qty in (1)", 1); /* not applies to the whole comparison */
    s_bool("qty + 1 in (8)", 1); /* arithmetic binds tighter */
    s_bool("qty in (7, null)", 1);
    s_bool("qty not in (7, null)", 0);
    s_null("qty in (1, null)", SL_TYPE_BOOL); /* SQL: unknown */
    s_null("qty not in (1, null)", SL_TYPE_BOOL);
    s_null("missing in (1, 2)", SL_TYPE_BOOL);
    s_null("missing not in (1, 2)", SL_TYPE_BOOL);
    s_null("null in (1)", SL_TYPE_BOOL);
    s_bool("(qty in (1)) is null", 0);
    s_str("case when qty in (1, 2) then 'a' when qty in (7) then 'b' end", "b");
    s_err("qty in ('a')", SL_TYPE, 8, "operator 'in' cannot compare int64 with string");
    s_err("qty in (1, 2, ts)", SL_TYPE, 14, "operator 'in' cannot compare int64 with timestamp");
    s_err("qty in ()", SL_PARSE, 8, "expected an expression, got ')'");
    s_err("qty in 1", SL_PARSE, 7, "expected '(' after 'in'");
    s_err("qty not 1", SL_PARSE, 8, "expected 'in' after 'not'");
    s_err("qty in (1, 2", SL_PARSE, 12, "expected ')'");
    s_err("qty in (1) = true", SL_PARSE, 11, "comparisons cannot be chained");
    s_err("qty = 1 in (true)", SL_PARSE, 8, "comparisons cannot be chained");
    s_err("qty in (1) in (true)", SL_PARSE, 11, "comparisons cannot be chained");
}
END_TEST

START_TEST(test_timestamps)
{
    s_ts("ts + 1000", 1700000001000);
    s_ts("1000 + ts", 1700000001000);
    s_ts("ts - 1000", 1699999999000);
    s_int("ts - cast(0 as timestamp)", 1700000000000);
    s_int("(ts + 5) - ts", 5);
    s_bool("ts > cast('2023-01-01' as timestamp)", 1);
    s_bool("ts <= cast('2023-01-01' as timestamp)", 0);
    s_err("ts * 2", SL_TYPE, 3, "operator '*' needs numbers, got timestamp and int64");
    s_err("ts + 'x'", SL_TYPE, 3, "got timestamp and string");
    s_err("ts + ts", SL_TYPE, 3, "got timestamp and timestamp");
    s_err("1 - ts", SL_TYPE, 2, "got int64 and timestamp");
    s_err("ts < 5", SL_TYPE, 3, "cannot compare timestamp with int64");
    s_err("ts + 1.5", SL_TYPE, 3, "got timestamp and double");
}
END_TEST

START_TEST(test_division_by_zero)
{
    s_null("qty / 0", SL_TYPE_INT64);
    s_null("qty % 0", SL_TYPE_INT64);
    s_null("qty / zero", SL_TYPE_INT64);
    s_null("price / 0", SL_TYPE_DOUBLE);
    s_null("price / 0.0", SL_TYPE_DOUBLE);
    s_null("price % 0.0", SL_TYPE_DOUBLE);
    s_null("1 / -0.0", SL_TYPE_DOUBLE);
    /* INT64_MIN / -1 must not trap: it wraps. */
    s_int("small / -1", INT64_MIN);
    s_int("small % -1", 0);
    s_int("-9223372036854775808 / -1", INT64_MIN);
    s_int("7 % -1", 0);
}
END_TEST

START_TEST(test_overflow_wraps)
{
    s_int("big + 1", INT64_MIN);
    s_int("9223372036854775807 + 1", INT64_MIN);
    s_int("small - 1", INT64_MAX);
    s_int("big * 2", -2);
    s_int("big * big", 1);
    s_int("small * -1", INT64_MIN);
    s_int("-small", INT64_MIN);
    s_int("small + small", 0);
    s_ts("cast(small as timestamp) - 1", INT64_MAX);
    s_int("4294967296 * 4294967296", 0);
}
END_TEST

START_TEST(test_type_errors)
{
    s_err("name + 1", SL_TYPE, 5, "operator '+' needs numbers, got string and int64");
    s_err("1 * ok", SL_TYPE, 2, "operator '*' needs numbers, got int64 and bool");
    s_err("qty - name", SL_TYPE, 4, "got int64 and string");
    s_err("price % 'a'", SL_TYPE, 6, "operator '%' needs numbers");
    s_err("-name", SL_TYPE, 1, "operator '-' needs a number, got string");
    s_err("'a' || 1", SL_TYPE, 4, "operator '||' needs strings, got string and int64");
    s_err("qty = 'a'", SL_TYPE, 4, "cannot compare int64 with string");
    s_err("ok < 1", SL_TYPE, 3, "cannot compare bool with int64");
    s_err("qty and ok", SL_TYPE, 0, "operator 'and' needs a bool, got int64");
    s_err("ok or (qty + 1)", SL_TYPE, 6, "operator 'or' needs a bool, got int64");
    s_err("not qty", SL_TYPE, 4, "operator 'not' needs a bool, got int64");
    s_err("lower(qty)", SL_TYPE, 6, "function 'lower' needs a string, got int64");
    s_err("length(1.5)", SL_TYPE, 7, "function 'length' needs a string, got double");
    s_err("substr(name, 'a')", SL_TYPE, 13, "argument 2 of 'substr' needs an int64, got string");
    s_err("substr(name, 1, 2.5)", SL_TYPE, 16, "argument 3 of 'substr' needs an int64");
    s_err("contains(name, 5)", SL_TYPE, 15, "function 'contains' needs a string");
    s_err("abs('x')", SL_TYPE, 4, "function 'abs' needs a number, got string");
    s_err("case when qty then 1 end", SL_TYPE, 10, "case 'when' condition needs a bool");
    s_err("case when ok then 1 else 'x' end", SL_TYPE, 25,
          "case branches have different types: int64 and string");
    s_err("case when ok then 'a' when ok then true end", SL_TYPE, 35,
          "case branches have different types: string and bool");
    s_err("coalesce(qty, name)", SL_TYPE, 14,
          "coalesce arguments have different types: int64 and string");
    s_err("cast(ok as timestamp)", SL_TYPE, 0, "cannot cast bool to timestamp");
    s_err("cast(ts as bool)", SL_TYPE, 0, "cannot cast timestamp to bool");
    /* The first error in the tree is reported, even when nested. */
    s_err("ok and (1 + (2 * 'x')) > 3", SL_TYPE, 15, "operator '*' needs numbers");
}
END_TEST

START_TEST(test_parse_errors)
{
    s_err("(qty + 1", SL_PARSE, 8, "expected ')'");
    s_err("lower(name", SL_PARSE, 10, "expected ')'");
    s_err("lower(name x", SL_PARSE, 11, "expected ')'");
    s_err("'abc", SL_PARSE, 0, "unterminated string");
    s_err("name = 'it''s", SL_PARSE, 7, "unterminated string");
    s_err("`abc", SL_PARSE, 0, "unterminated quoted identifier");
    s_err("``", SL_PARSE, 0, "empty quoted identifier");
    s_err("qty +", SL_PARSE, 5, "expected an expression, got end of expression");
    s_err("qty + )", SL_PARSE, 6, "expected an expression, got ')'");
    s_err("qty 1", SL_PARSE, 4, "unexpected '1' after the end of the expression");
    s_err("(qty))", SL_PARSE, 5, "unexpected ')'");
    s_err("", SL_PARSE, 0, "empty expression");
    s_err("   ", SL_PARSE, 3, "empty expression");
    s_err("1 < qty < 3", SL_PARSE, 8, "comparisons cannot be chained");
    s_err("qty is null = true", SL_PARSE, 12, "comparisons cannot be chained");
    s_err("qty is 5", SL_PARSE, 7, "expected 'null' after 'is'");
    s_err("case when ok then 1", SL_PARSE, 19, "expected 'end'");
    s_err("case ok then 1 end", SL_PARSE, 5, "expected 'when'");
    s_err("case when ok 1 end", SL_PARSE, 13, "expected 'then'");
    s_err("cast(qty int64)", SL_PARSE, 9, "expected 'as'");
    s_err("cast(qty as 5)", SL_PARSE, 12, "expected a type name");
    s_err("cast(qty as strng)", SL_PARSE, 12, "unknown type 'strng' (did you mean 'string'?)");
    s_err("cast(qty as int64", SL_PARSE, 17, "expected ')'");
    s_err("cast qty", SL_PARSE, 5, "expected '(' after 'cast'");
    s_err("1 | 2", SL_PARSE, 2, "did you mean '||'?");
    s_err("qty # 2", SL_PARSE, 4, "unexpected character '#'");
    s_err("qty ! 2", SL_PARSE, 4, "unexpected character '!'");
    s_err("qty = \x01", SL_PARSE, 6, "unexpected character 0x01");
    s_err("12abc", SL_PARSE, 0, "invalid number '12abc'");
    s_err("1.2.3", SL_PARSE, 0, "invalid number");
    s_err("1e999", SL_PARSE, 0, "number out of range");
    s_err("9223372036854775808", SL_PARSE, 0, "integer literal out of range");
    s_err("-9223372036854775809", SL_PARSE, 1, "integer literal out of range");
    s_err("99999999999999999999999", SL_PARSE, 0, "integer literal out of range");
    s_err("qty = then", SL_PARSE, 6, "expected an expression, got keyword 'then'");
    s_err("lower()", SL_PARSE, 0, "function 'lower' takes 1 argument, got 0");
    s_err("substr(name)", SL_PARSE, 0, "function 'substr' takes 2 to 3 arguments, got 1");
    s_err("contains('a', 'b', 'c')", SL_PARSE, 0, "function 'contains' takes 2 arguments, got 3");
    s_err("coalesce()", SL_PARSE, 0, "function 'coalesce' takes at least 1 argument, got 0");
    s_err("lower(name,)", SL_PARSE, 11, "expected an expression");
    s_err("- not ok", SL_PARSE, 2, "expected an expression, got keyword 'not'");
}
END_TEST

START_TEST(test_unknown_names)
{
    s_err("prize > 1", SL_TYPE, 0, "unknown field 'prize' (did you mean 'price'?)");
    s_err("qty + Qty", SL_TYPE, 6, "unknown field 'Qty' (did you mean 'qty'?)");
    s_err("qty + xyzzy", SL_TYPE, 6, "unknown field 'xyzzy'");
    s_err("`weird nam` = 1", SL_TYPE, 0, "unknown field 'weird nam' (did you mean 'weird name'?)");
    s_err("lowr(name)", SL_PARSE, 0, "unknown function 'lowr' (did you mean 'lower'?)");
    s_err("ok and startswith(name, 'a')", SL_PARSE, 7,
          "unknown function 'startswith' (did you mean 'starts_with'?)");
    s_err("frobnicate(1)", SL_PARSE, 0, "unknown function 'frobnicate'");

    /* The hint appears only when something is close. */
    char err[256];
    int off;
    sl_expr_t *e = NULL;
    ck_assert_int_eq(sl_expr_compile("qty + xyzzy", g_schema, &e, err, sizeof err, &off), SL_TYPE);
    ck_assert_ptr_null(strstr(err, "did you mean"));
    /* Without a schema every field is unknown, constants still compile. */
    ck_assert_int_eq(sl_expr_compile("qty", NULL, &e, err, sizeof err, &off), SL_TYPE);
    ck_assert_str_eq(err, "unknown field 'qty'");
    ck_assert_int_eq(sl_expr_compile("1 + 2", NULL, &e, err, sizeof err, &off), 0);
    sl_value_t v;
    ck_assert_int_eq(sl_expr_eval(e, NULL, g_arena, &v), 0);
    ck_assert_int_eq(v.u.i, 3);
    sl_expr_destroy(&e);
    /* A field named like a function is a field unless called. */
    sl_schema_t *s = sl_schema_new();
    ck_assert_int_eq(sl_schema_add(s, "lower", SL_TYPE_STRING), 0);
    ck_assert_int_eq(sl_expr_compile("lower(lower)", s, &e, err, sizeof err, &off), 0);
    sl_value_t row[1] = {sl_value_str("AB", 2)};
    ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
    ck_assert_int_eq(v.len, 2);
    ck_assert_int_eq(memcmp(v.u.s, "ab", 2), 0);
    sl_expr_destroy(&e);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_limits)
{
    char err[256];
    int off;
    sl_expr_t *e = NULL;
    size_t cap = 80000;
    char *src = malloc(cap);
    ck_assert_ptr_nonnull(src);

    /* 60 nested parentheses are fine; 100 are refused clearly. */
    int n = 0;
    for (int i = 0; i < 60; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 60; i++)
        src[n++] = ')';
    src[n] = '\0';
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), 0);
    sl_expr_destroy(&e);
    n = 0;
    for (int i = 0; i < 100; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 100; i++)
        src[n++] = ')';
    src[n] = '\0';
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
    ck_assert_int_ge(off, 60);
    ck_assert_int_le(off, 64);

    /* Unary operators and calls count too. */
    n = 0;
    for (int i = 0; i < 5000; i++)
        src[n++] = '-';
    src[n++] = '1';
    src[n] = '\0';
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
    n = 0;
    for (int i = 0; i < 5000; i++)
        n += snprintf(src + n, cap - (size_t)n, "not ");
    n += snprintf(src + n, cap - (size_t)n, "ok");
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
    n = 0;
    for (int i = 0; i < 200; i++)
        n += snprintf(src + n, cap - (size_t)n, "abs(");
    src[n++] = '1';
    for (int i = 0; i < 200; i++)
        src[n++] = ')';
    src[n] = '\0';
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));

    /* A long left-associative chain: 200 terms evaluate, 2000 are too many. */
    n = snprintf(src, cap, "1");
    for (int i = 1; i < 200; i++)
        n += snprintf(src + n, cap - (size_t)n, "+1");
    s_int(src, 200);
    n = snprintf(src, cap, "1");
    for (int i = 1; i < 2000; i++)
        n += snprintf(src + n, cap - (size_t)n, "+1");
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "too complex"));
    ck_assert_int_gt(off, 0);
    ck_assert_int_lt(off, n);

    /* A long or-chain of predicates is flattened and stays fine. */
    n = snprintf(src, cap, "qty = 0");
    for (int i = 1; i < 3000; i++)
        n += snprintf(src + n, cap - (size_t)n, " or qty = %d", i);
    s_bool(src, 1);

    /* Source length is capped. */
    memset(src, ' ', cap - 1);
    src[0] = '1';
    src[cap - 1] = '\0';
    ck_assert_int_eq(sl_expr_compile(src, g_schema, &e, err, sizeof err, &off), SL_PARSE);
    ck_assert_ptr_nonnull(strstr(err, "expression too long"));
    ck_assert_int_le(off, (int)strlen(src));
    ck_assert_ptr_null(e);
    free(src);

    /* A tiny or absent message buffer is respected. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    ck_assert_int_eq(sl_expr_compile("prize", g_schema, &e, tiny, sizeof tiny, &off), SL_TYPE);
    ck_assert_int_eq(tiny[7], '\0');
    ck_assert_int_eq(sl_expr_compile("prize", g_schema, &e, NULL, 0, NULL), SL_TYPE);
    ck_assert_int_eq(sl_expr_compile(NULL, g_schema, &e, err, sizeof err, &off), SL_INVAL);
}
END_TEST

START_TEST(test_types_and_reuse)
{
    struct {
        const char *src;
        sl_type_t t;
    } cases[] = {
        {"qty + 1", SL_TYPE_INT64},
        {"qty + 1.0", SL_TYPE_DOUBLE},
        {"qty > 1", SL_TYPE_BOOL},
        {"name || 'x'", SL_TYPE_STRING},
        {"ts + 1", SL_TYPE_TIMESTAMP},
        {"ts - ts", SL_TYPE_INT64},
        {"null", SL_TYPE_NULL},
        {"cast(qty as string)", SL_TYPE_STRING},
        {"length(name)", SL_TYPE_INT64},
        {"coalesce(missing, 1.5)", SL_TYPE_DOUBLE},
        {"missing is null", SL_TYPE_BOOL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sl_expr_t *e = NULL;
        char err[128];
        int off;
        ck_assert_int_eq(sl_expr_compile(cases[i].src, g_schema, &e, err, sizeof err, &off), 0);
        ck_assert_msg(sl_expr_type(e) == cases[i].t, "%s", cases[i].src);
        sl_expr_destroy(&e);
    }
    /* One compiled expression evaluates many rows, each with its own values. */
    sl_expr_t *e = NULL;
    char err[128];
    int off;
    ck_assert_int_eq(sl_expr_compile("case when qty % 2 = 0 then upper(name) else lower(name) end",
                                     g_schema, &e, err, sizeof err, &off),
                     0);
    for (int i = 0; i < 100; i++) {
        sl_value_t row[F_N];
        memcpy(row, g_row, sizeof row);
        row[F_QTY] = sl_value_int(i);
        sl_value_t v;
        ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
        ck_assert_int_eq(v.len, 11);
        ck_assert_int_eq(memcmp(v.u.s, i % 2 ? "hello world" : "HELLO WORLD", 11), 0);
        ck_assert_ptr_ne(v.u.s, g_name); /* built in the arena */
        sl_arena_reset(g_arena);
    }
    sl_expr_destroy(&e);
}
END_TEST

/* ---- fuzz ------------------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t s_rand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static const char *const s_frags[] = {
    "qty",
    "price",
    "name",
    "ok",
    "ts",
    "missing",
    "nstr",
    "`weird name`",
    "big",
    "small",
    "zero",
    "1",
    "0",
    "-1",
    "2.5",
    "'x'",
    "''",
    "'a''b'",
    "null",
    "true",
    "false",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    "is",
    "is not",
    "(",
    ")",
    ",",
    "case",
    "when",
    "then",
    "else",
    "end",
    "cast(",
    "as",
    "int64",
    "string",
    "double",
    "timestamp",
    "bool",
    "lower(",
    "upper(",
    "length(",
    "substr(",
    "concat(",
    "trim(",
    "starts_with(",
    "contains(",
    "coalesce(",
    "abs(",
    "in",
    "not in",
    "hour(",
    "year(",
    "count_char(",
    "split_index(",
    "regexp_extract(",
    "'(a|^)b([^&]*)'",
    "'['",
    "'/'",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "'2023-01-01'",
    "`",
    "'",
    "|",
    "!",
    "#",
    "\x01",
    "\xff",
    ".",
    "1.",
    "..",
    "e5",
};

/* Appends a random well-typed expression of type t (0 int64, 1 double,
 * 2 string, 3 bool, 4 timestamp) to buf, so evaluation is fuzzed too. */
static void s_gen(char *buf, size_t cap, size_t *n, int t, int depth)
{
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        if (*n < cap)                                                                              \
            *n += (size_t)snprintf(buf + *n, cap - *n, __VA_ARGS__);                               \
        if (*n > cap)                                                                              \
            *n = cap;                                                                              \
    } while (0)
    static const char *const leaves[5][6] = {
        {"qty", "big", "small", "zero", "missing", "-9223372036854775808"},
        {"price", "0.1", "-0.0", "1e300", "cast(missing as double)", "2.5"},
        {"name", "nstr", "''", "'It''s'", "' pad '", "'2023-11-14T22:13:20Z'"},
        {"ok", "true", "false", "null", "(missing = 1)", "(not ok)"},
        {"ts", "cast(0 as timestamp)", "cast(small as timestamp)", "cast(nstr as timestamp)",
         "cast(-1 as timestamp)", "ts"},
    };
    uint64_t r = s_rand();
    if (depth <= 0 || r % 3 == 0) {
        if (t == 0 && r % 7 == 1)
            EMIT("%lld", (long long)(int64_t)(s_rand() % 2000) - 1000);
        else
            EMIT("%s", leaves[t][(r >> 8) % 6]);
        return;
    }
    static const char *const arith[] = {"+", "-", "*", "/", "%"};
    static const char *const cmp[] = {"=", "!=", "<", "<=", ">", ">="};
    static const char *const types[] = {"int64", "double", "string", "bool", "timestamp"};
    int k = (int)((r >> 8) % 6);
    int u = (int)((r >> 16) % 5); /* some other type */
    if (k == 0) {                 /* case */
        EMIT("case when ");
        s_gen(buf, cap, n, 3, depth - 1);
        EMIT(" then ");
        s_gen(buf, cap, n, t, depth - 1);
        if (r & (1u << 30)) {
            EMIT(" else ");
            s_gen(buf, cap, n, t, depth - 1);
        }
        EMIT(" end");
        return;
    }
    if (k == 1) { /* coalesce */
        EMIT("coalesce(");
        s_gen(buf, cap, n, t, depth - 1);
        EMIT(", ");
        s_gen(buf, cap, n, t, depth - 1);
        EMIT(")");
        return;
    }
    if (k == 2 && !((u == 3 && t == 4) || (u == 4 && t == 3))) { /* cast */
        EMIT("cast(");
        s_gen(buf, cap, n, u, depth - 1);
        EMIT(" as %s)", types[t]);
        return;
    }
    switch (t) {
    case 0:
    case 1:
        if (k == 3 && t == 0) {
            EMIT("length(");
            s_gen(buf, cap, n, 2, depth - 1);
        } else if (k == 3) {
            EMIT("abs(");
            s_gen(buf, cap, n, 1, depth - 1);
        } else if (k == 4 && t == 0) {
            EMIT("(");
            s_gen(buf, cap, n, 4, depth - 1);
            EMIT(" - ");
            s_gen(buf, cap, n, 4, depth - 1);
        } else {
            EMIT("(");
            s_gen(buf, cap, n, t, depth - 1);
            EMIT(" %s ", arith[(r >> 24) % 5]);
            s_gen(buf, cap, n, (r >> 28) % 2 ? t : 0, depth - 1);
        }
        EMIT(")");
        return;
    case 2:
        if (k == 3) {
            EMIT("substr(");
            s_gen(buf, cap, n, 2, depth - 1);
            EMIT(", ");
            s_gen(buf, cap, n, 0, depth - 1);
            if (r & (1u << 29)) {
                EMIT(", ");
                s_gen(buf, cap, n, 0, depth - 1);
            }
        } else if (k == 4) {
            EMIT("concat(");
            s_gen(buf, cap, n, u, depth - 1);
            EMIT(", ");
            s_gen(buf, cap, n, 2, depth - 1);
        } else {
            static const char *const fn[] = {"lower(", "upper(", "trim(", "("};
            EMIT("%s", fn[(r >> 24) % 4]);
            s_gen(buf, cap, n, 2, depth - 1);
            if ((r >> 24) % 4 == 3) {
                EMIT(" || ");
                s_gen(buf, cap, n, 2, depth - 1);
            }
        }
        EMIT(")");
        return;
    case 3:
        if (k == 3) {
            EMIT("(");
            s_gen(buf, cap, n, 3, depth - 1);
            EMIT(r & (1u << 29) ? " and " : " or ");
            s_gen(buf, cap, n, 3, depth - 1);
            EMIT(")");
        } else if (k == 4) {
            EMIT("(");
            s_gen(buf, cap, n, u, depth - 1);
            EMIT(r & (1u << 29) ? " is null)" : " is not null)");
        } else if (r & (1u << 31)) {
            EMIT("%s(", r & (1u << 29) ? "starts_with" : "contains");
            s_gen(buf, cap, n, 2, depth - 1);
            EMIT(", ");
            s_gen(buf, cap, n, 2, depth - 1);
            EMIT(")");
        } else {
            int ct = u == 1 ? 0 : u; /* int64 also compares with double */
            EMIT("(");
            s_gen(buf, cap, n, ct, depth - 1);
            EMIT(" %s ", cmp[(r >> 24) % 6]);
            s_gen(buf, cap, n, u == 1 ? 1 : u, depth - 1);
            EMIT(")");
        }
        return;
    default:
        EMIT("(");
        s_gen(buf, cap, n, 4, depth - 1);
        EMIT(r & (1u << 29) ? " + " : " - ");
        s_gen(buf, cap, n, 0, depth - 1);
        EMIT(")");
        return;
    }
#undef EMIT
}

static int s_fuzz_one(const char *src)
{
    sl_expr_t *e = NULL;
    char err[128];
    int off = -12345;
    int rc = sl_expr_compile(src, g_schema, &e, err, sizeof err, &off);
    if (getenv("EXPR_FUZZ_VERBOSE") && rc)
        fprintf(stderr, "%s\n  -> %s at %d\n", src, err, off);
    if (rc == 0) {
        ck_assert_ptr_nonnull(e);
        sl_value_t row[F_N];
        memcpy(row, g_row, sizeof row);
        for (int i = 0; i < F_N; i++)
            if (s_rand() % 4 == 0) {
                row[i] = sl_value_null();
                row[i].type = g_schema->fields[i].type;
            }
        sl_value_t v;
        ck_assert_int_eq(sl_expr_eval(e, row, g_arena, &v), 0);
        if (!v.is_null)
            ck_assert_int_eq(v.type, sl_expr_type(e));
        sl_expr_destroy(&e);
    } else {
        ck_assert_msg(rc == SL_PARSE || rc == SL_TYPE, "'%s': rc %d", src, rc);
        ck_assert_ptr_null(e);
        ck_assert_msg(off >= 0 && (size_t)off <= strlen(src), "'%s': offset %d", src, off);
        ck_assert_msg(err[0] != '\0', "'%s': empty message", src);
    }
    return rc;
}

START_TEST(test_fuzz)
{
    static const char *const seeds[] = {
        "case when qty > 5 and not (name is null) then upper(name) else 'x' end",
        "coalesce(missing, qty * 2, 3) + abs(-4) % 3",
        "cast(cast(ts as string) as timestamp) - ts >= 0 or price / 0 is null",
        "substr(concat(name, '!', qty), 2, length(name) - 1) || trim('  y ')",
        "starts_with(lower(name), 'he') and contains(name, 'o') and big + 1 < small",
        "regexp_extract(name, '(l+)o', 1) || split_index(name, ' ', 1) in ('llWorld', nstr) "
        "and count_char(name, 'l') > hour(ts) % 3 and year(ts) not in (1, day(ts))",
    };
    char buf[512];
    int nfrag = (int)(sizeof s_frags / sizeof *s_frags);
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = 0;
        int mode = (int)(s_rand() % 3);
        if (mode == 0) { /* random token soup */
            int k = 1 + (int)(s_rand() % 16);
            for (int i = 0; i < k && n < sizeof buf - 40; i++) {
                const char *f = s_frags[s_rand() % (uint64_t)nfrag];
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", f, s_rand() % 3 ? " " : "");
            }
        } else if (mode == 1) { /* garbled valid expression */
            const char *seed = seeds[s_rand() % (sizeof seeds / sizeof *seeds)];
            n = strlen(seed);
            memcpy(buf, seed, n + 1);
            int edits = 1 + (int)(s_rand() % 4);
            for (int i = 0; i < edits && n > 0; i++) {
                size_t at = (size_t)(s_rand() % n);
                switch (s_rand() % 3) {
                case 0: /* replace a byte */
                    buf[at] = (char)(1 + s_rand() % 255);
                    break;
                case 1: /* delete a byte */
                    memmove(buf + at, buf + at + 1, n - at);
                    n--;
                    break;
                default: /* truncate */
                    buf[at] = '\0';
                    n = at;
                    break;
                }
            }
        } else { /* random bytes */
            n = (size_t)(s_rand() % 40);
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)(1 + s_rand() % 255);
        }
        buf[n] = '\0';
        s_fuzz_one(buf);
        if (iter % 64 == 0)
            sl_arena_reset(g_arena);
    }
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        ck_assert_int_eq(s_fuzz_one(seeds[i]), 0);

    /* Well-typed random expressions must compile and evaluate; garbled
     * copies of them must compile or fail cleanly. */
    char big[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        s_gen(big, sizeof big - 1, &n, (int)(s_rand() % 5), 1 + (int)(s_rand() % 5));
        big[n] = '\0';
        if (n < sizeof big - 2)
            ck_assert_msg(s_fuzz_one(big) == 0, "generated '%s' failed", big);
        for (int i = 0; i < 2 && n > 0; i++)
            big[s_rand() % n] = (char)(1 + s_rand() % 255);
        s_fuzz_one(big);
        if (iter % 64 == 0)
            sl_arena_reset(g_arena);
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("expr");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_literals);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_arithmetic);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_comparison);
    tcase_add_test(tc, test_three_valued_logic);
    tcase_add_test(tc, test_is_null);
    tcase_add_test(tc, test_null_propagation);
    tcase_add_test(tc, test_case);
    tcase_add_test(tc, test_cast);
    tcase_add_test(tc, test_functions);
    tcase_add_test(tc, test_time_parts);
    tcase_add_test(tc, test_count_char);
    tcase_add_test(tc, test_split_index);
    tcase_add_test(tc, test_regexp_extract);
    tcase_add_test(tc, test_regexp_fast_path);
    tcase_add_test(tc, test_string_views);
    tcase_add_test(tc, test_regexp_threads);
    tcase_add_test(tc, test_in);
    tcase_add_test(tc, test_timestamps);
    tcase_add_test(tc, test_division_by_zero);
    tcase_add_test(tc, test_overflow_wraps);
    tcase_add_test(tc, test_type_errors);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_unknown_names);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_types_and_reuse);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
