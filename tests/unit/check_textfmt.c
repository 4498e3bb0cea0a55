/* check_textfmt.c — values to and from text: every type round-trips, bad
 * text is rejected with a message naming it, timestamps land on known
 * instants. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sluice/arena.h"
#include "sluice/err.h"
#include "sluice/row.h"
#include "sluice/textfmt.h"
#include "testutil.h"

static sl_arena_t *g_arena;

static void s_setup(void)
{
    g_arena = sl_arena_new(4096);
    ck_assert_ptr_nonnull(g_arena);
}

static void s_teardown(void)
{
    sl_arena_destroy(&g_arena);
}

/* Parses text as type t; asserts success. */
static sl_value_t s_parse_ok(sl_type_t t, const char *text)
{
    sl_value_t v;
    char err[200] = "";
    int rc = sl_value_from_text(t, text, strlen(text), g_arena, &v, err, sizeof err);
    ck_assert_msg(rc == 0, "parsing '%s' as %s: %d %s", text, sl_type_name(t), rc, err);
    return v;
}

/* Parses text as type t; asserts SL_DATA and returns the message. */
static const char *s_parse_bad(sl_type_t t, const char *text)
{
    static char err[200];
    sl_value_t v;
    err[0] = '\0';
    int rc = sl_value_from_text(t, text, strlen(text), g_arena, &v, err, sizeof err);
    ck_assert_msg(rc == SL_DATA, "'%s' as %s should fail, got %d", text, sl_type_name(t), rc);
    ck_assert_msg(strstr(err, text) != NULL || strlen(text) > 60, "message '%s' names no text",
                  err);
    return err;
}

static int64_t s_ts(const char *text)
{
    sl_value_t v = s_parse_ok(SL_TYPE_TIMESTAMP, text);
    ck_assert(!v.is_null);
    ck_assert_int_eq(v.type, SL_TYPE_TIMESTAMP);
    return v.u.i;
}

START_TEST(test_empty_is_null)
{
    sl_type_t types[] = {SL_TYPE_INT64, SL_TYPE_DOUBLE, SL_TYPE_BOOL, SL_TYPE_STRING,
                         SL_TYPE_TIMESTAMP};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        sl_value_t v = s_parse_ok(types[i], "");
        ck_assert(v.is_null);
        char buf[8] = "x";
        ck_assert_uint_eq(sl_value_to_text(&v, buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "");
    }
}
END_TEST

START_TEST(test_int64)
{
    ck_assert_int_eq(s_parse_ok(SL_TYPE_INT64, "0").u.i, 0);
    ck_assert_int_eq(s_parse_ok(SL_TYPE_INT64, "-17").u.i, -17);
    ck_assert_int_eq(s_parse_ok(SL_TYPE_INT64, "+42").u.i, 42);
    ck_assert(s_parse_ok(SL_TYPE_INT64, "9223372036854775807").u.i == INT64_MAX);
    ck_assert(s_parse_ok(SL_TYPE_INT64, "-9223372036854775808").u.i == INT64_MIN);
    ck_assert_str_eq(s_parse_bad(SL_TYPE_INT64, "12x"), "'12x' is not an int64");
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_INT64, "9223372036854775808"), "range"));
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_INT64, "-9223372036854775809"), "range"));
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_INT64, "99999999999999999999999"), "range"));
    const char *bad[] = {"-", "+", " 1", "1 ", "1.0", "1e3", "0x10", "--1", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_parse_bad(SL_TYPE_INT64, bad[i]);

    int64_t samples[] = {0, 1, -1, 1000000007, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        sl_value_t v = sl_value_int(samples[i]);
        char buf[32];
        size_t n = sl_value_to_text(&v, buf, sizeof buf);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert(s_parse_ok(SL_TYPE_INT64, buf).u.i == samples[i]);
    }
}
END_TEST

static uint64_t s_rand_state = 0x9E3779B97F4A7C15ull;
static uint64_t s_rand(void)
{
    s_rand_state ^= s_rand_state << 13;
    s_rand_state ^= s_rand_state >> 7;
    s_rand_state ^= s_rand_state << 17;
    return s_rand_state;
}

/* to_text then from_text must give back the same bits. */
static void s_double_roundtrip(double d)
{
    sl_value_t v = sl_value_double(d);
    char buf[64];
    size_t n = sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    sl_value_t back = s_parse_ok(SL_TYPE_DOUBLE, buf);
    ck_assert_msg(memcmp(&back.u.d, &d, sizeof d) == 0, "%.17g -> '%s' -> %.17g", d, buf, back.u.d);
}

START_TEST(test_double)
{
    double fixed[] = {0.0,     -0.0,   0.1,     1.0 / 3, 1e300,
                      -1e-300, 5e-324, DBL_MAX, DBL_MIN, 123456789012345678.0,
                      2.5,     1e21,   1e-7};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        s_double_roundtrip(fixed[i]);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = s_rand();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isfinite(d))
            s_double_roundtrip(d);
    }
    /* shortest form */
    char buf[64];
    sl_value_t v = sl_value_double(0.1);
    sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.1");
    v = sl_value_double(3.0);
    sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_str_eq(buf, "3");
    v = sl_value_double(0.1 + 0.2);
    sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.30000000000000004");
    /* non-finite values are written, but never read */
    v = sl_value_double(-INFINITY);
    sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_str_eq(buf, "-inf");

    ck_assert(s_parse_ok(SL_TYPE_DOUBLE, "1e3").u.d == 1000.0);
    ck_assert(s_parse_ok(SL_TYPE_DOUBLE, "-2.5E-1").u.d == -0.25);
    ck_assert(s_parse_ok(SL_TYPE_DOUBLE, "7").u.d == 7.0);
    ck_assert(s_parse_ok(SL_TYPE_DOUBLE, ".5").u.d == 0.5);
    ck_assert_str_eq(s_parse_bad(SL_TYPE_DOUBLE, "1.5x"), "'1.5x' is not a double");
    const char *bad[] = {"inf", "-inf", "nan",  "NaN", "infinity", "0x1p3", ".",
                         "e5",  "1e",   "1..2", " 1",  "1 ",       "+-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_parse_bad(SL_TYPE_DOUBLE, bad[i]);
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_DOUBLE, "1e999"), "range"));
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_DOUBLE, "-1e999"), "range"));
}
END_TEST

START_TEST(test_bool)
{
    const char *yes[] = {"true", "TRUE", "True", "1", "yes", "YES"};
    const char *no[] = {"false", "FaLsE", "0", "no", "No"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert(s_parse_ok(SL_TYPE_BOOL, yes[i]).u.b == true);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert(s_parse_ok(SL_TYPE_BOOL, no[i]).u.b == false);
    ck_assert_str_eq(s_parse_bad(SL_TYPE_BOOL, "maybe"), "'maybe' is not a bool");
    s_parse_bad(SL_TYPE_BOOL, "tru");
    s_parse_bad(SL_TYPE_BOOL, "truee");
    s_parse_bad(SL_TYPE_BOOL, "2");
    char buf[8];
    sl_value_t v = sl_value_bool(true);
    ck_assert_uint_eq(sl_value_to_text(&v, buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "true");
    v = sl_value_bool(false);
    sl_value_to_text(&v, buf, sizeof buf);
    ck_assert_str_eq(buf, "false");
}
END_TEST

START_TEST(test_string)
{
    char src[] = "hello, wörld";
    sl_value_t v = s_parse_ok(SL_TYPE_STRING, src);
    ck_assert_int_eq(v.type, SL_TYPE_STRING);
    ck_assert_uint_eq(v.len, strlen(src));
    ck_assert(v.u.s != src); /* copied into the arena */
    src[0] = 'X';
    ck_assert(memcmp(v.u.s, "hello", 5) == 0);
    /* embedded NUL survives: lengths, not terminators */
    sl_value_t z;
    ck_assert_int_eq(sl_value_from_text(SL_TYPE_STRING, "a\0b", 3, g_arena, &z, NULL, 0), 0);
    ck_assert_uint_eq(z.len, 3);
    ck_assert(memcmp(z.u.s, "a\0b", 3) == 0);
    /* to_text truncates like snprintf and reports the full length */
    char buf[6];
    ck_assert_uint_eq(sl_value_to_text(&v, buf, sizeof buf), strlen("hello, wörld"));
    ck_assert_str_eq(buf, "hello");
    ck_assert_uint_eq(sl_value_to_text(&v, NULL, 0), strlen("hello, wörld"));
}
END_TEST

START_TEST(test_ts_known_instants)
{
    ck_assert(s_ts("1970-01-01T00:00:00.000Z") == 0);
    ck_assert(s_ts("1970-01-01T00:00:00Z") == 0);
    ck_assert(s_ts("1970-01-01T00:00:00") == 0);
    ck_assert(s_ts("1970-01-01 00:00:00") == 0);
    ck_assert(s_ts("1970-01-01") == 0);
    ck_assert(s_ts("1970-01-02") == 86400000);
    ck_assert(s_ts("2000-02-29T12:00:00Z") == 951825600000LL);
    ck_assert(s_ts("2038-01-19T03:14:08.000Z") == 2147483648000LL);
    ck_assert(s_ts("1900-01-01") == -2208988800000LL);
    ck_assert(s_ts("2026-03-14T09:26:53.589Z") == 1773480413589LL);
    ck_assert(s_ts("2026-03-14 09:26:53.589") == 1773480413589LL);
    ck_assert(s_ts("0001-01-01T00:00:00Z") == -62135596800000LL);
    ck_assert(s_ts("9999-12-31T23:59:59.999Z") == 253402300799999LL);
    ck_assert(s_ts("2400-02-29") == 13574563200000LL);
    ck_assert(s_ts("1600-03-01") == -11670912000000LL);
    ck_assert(s_ts("1969-12-31T23:59:59.999Z") == -1);
    /* fraction: 1..9 digits, beyond milliseconds truncated */
    ck_assert(s_ts("1970-01-01T00:00:01.5Z") == 1500);
    ck_assert(s_ts("1970-01-01T00:00:01.25") == 1250);
    ck_assert(s_ts("1970-01-01T00:00:01.123456789Z") == 1123);
    /* epoch milliseconds as an integer */
    ck_assert(s_ts("1773480413589") == 1773480413589LL);
    ck_assert(s_ts("-1") == -1);
    ck_assert(s_ts("0") == 0);
}
END_TEST

START_TEST(test_ts_format)
{
    struct {
        long long ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400000, "1969-12-31T00:00:00.000Z"},
        {951825600000LL, "2000-02-29T12:00:00.000Z"},
        {951868800000LL, "2000-03-01T00:00:00.000Z"},
        {2147483648000LL, "2038-01-19T03:14:08.000Z"},
        {1773480413589LL, "2026-03-14T09:26:53.589Z"},
        {-2208988800000LL, "1900-01-01T00:00:00.000Z"},
        {4102444800000LL, "2100-01-01T00:00:00.000Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {253402300800000LL, "+10000-01-01T00:00:00.000Z"},
        {-62135596800001LL, "0000-12-31T23:59:59.999Z"},
        {-62167219200001LL, "-0001-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        sl_ts_format(cases[i].ms, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].text);
        ck_assert(s_ts(cases[i].text) == cases[i].ms);
        sl_value_t v = sl_value_ts(cases[i].ms);
        char buf2[40];
        ck_assert_uint_eq(sl_value_to_text(&v, buf2, sizeof buf2), strlen(cases[i].text));
        ck_assert_str_eq(buf2, cases[i].text);
    }
}
END_TEST

START_TEST(test_ts_roundtrip)
{
    int64_t edge[] = {INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1, 0, -1, 1};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        char buf[40];
        sl_ts_format(edge[i], buf, sizeof buf);
        ck_assert_msg(s_ts(buf) == edge[i], "%s", buf);
    }
    for (int i = 0; i < 20000; i++) {
        /* mostly within +-100000 years, sometimes anywhere */
        int64_t ms = (int64_t)s_rand();
        if (i % 4)
            ms %= 3155760000000000LL;
        char buf[40];
        sl_ts_format(ms, buf, sizeof buf);
        ck_assert_msg(s_ts(buf) == ms, "%lld -> %s", (long long)ms, buf);
    }
}
END_TEST

START_TEST(test_ts_invalid)
{
    const char *bad[] = {
        "2001-02-29",
        "1900-02-29",
        "2023-04-31",
        "2023-13-01",
        "2023-00-10",
        "2023-01-00",
        "2023-01-32",
        "2023-01-01T24:00:00",
        "2023-01-01T23:60:00",
        "2023-01-01T23:59:60",
        "2023-01-01T00:00",
        "2023-1-01",
        "23-01-01",
        "2023-01-01T00:00:00.",
        "2023-01-01T00:00:00.1234567890",
        "2023-01-01X00:00:00",
        "2023-01-01T00:00:00ZZ",
        "2023-01-01T00:00:00+01:00",
        "yesterday",
        "12x",
        "2023-01-01 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *msg = s_parse_bad(SL_TYPE_TIMESTAMP, bad[i]);
        ck_assert_ptr_nonnull(strstr(msg, "is not a timestamp"));
    }
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_TIMESTAMP, "+999999999-01-01"), "range"));
    ck_assert_ptr_nonnull(strstr(s_parse_bad(SL_TYPE_TIMESTAMP, "99999999999999999999"), "range"));
}
END_TEST

START_TEST(test_long_text_in_message)
{
    char text[300];
    memset(text, '7', sizeof text);
    text[299] = 'x';
    sl_value_t v;
    char err[120];
    ck_assert_int_eq(
        sl_value_from_text(SL_TYPE_INT64, text, sizeof text, g_arena, &v, err, sizeof err),
        SL_DATA);
    ck_assert_ptr_nonnull(strstr(err, "...' is not an int64"));
    ck_assert_int_eq(
        sl_value_from_text(SL_TYPE_DOUBLE, text, sizeof text, g_arena, &v, err, sizeof err),
        SL_DATA);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("textfmt");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_empty_is_null);
    tcase_add_test(tc, test_int64);
    tcase_add_test(tc, test_double);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_string);
    tcase_add_test(tc, test_ts_known_instants);
    tcase_add_test(tc, test_ts_format);
    tcase_add_test(tc, test_ts_roundtrip);
    tcase_add_test(tc, test_ts_invalid);
    tcase_add_test(tc, test_long_text_in_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
