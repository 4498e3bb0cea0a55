/* check_fileio.c — file readers and writers: round trips through the
 * writers, malformed input reported with its line while the reader goes
 * on, byte-range splits that read every line exactly once, and crash-safe
 * publishing (nothing visible before commit, no temporary left behind). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/arena.h"
#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/plugin.h"
#include "sluice/row.h"
#include "sluice/textfmt.h"
#include "testutil.h"

static char *g_dir;
static sl_arena_t *g_arena;
static char g_err[512];

static void s_setup(void)
{
    g_dir = sl_test_tmpdir();
    g_arena = sl_arena_new(64 * 1024);
    ck_assert_ptr_nonnull(g_arena);
    g_err[0] = '\0';
}

static void s_teardown(void)
{
    sl_arena_destroy(&g_arena);
    sl_test_rmrf(g_dir);
    free(g_dir);
    g_dir = NULL;
}

/* Path of name inside the test directory (static buffer, one of four). */
static const char *s_path(const char *name)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries in the test directory (without . and ..). */
static int s_dir_entries(void)
{
    DIR *d = opendir(g_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static sl_schema_t *s_schema(const char *spec)
{
    /* "name:type,name:type" */
    sl_schema_t *s = sl_schema_new();
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        ck_assert_ptr_nonnull(colon);
        *colon = '\0';
        sl_type_t t;
        ck_assert_int_eq(sl_type_parse(colon + 1, &t), 0);
        ck_assert_int_eq(sl_schema_add(s, tok, t), 0);
    }
    return s;
}

static sl_reader_t *s_open(const char *path, const sl_schema_t *s, sl_format_t fmt)
{
    sl_reader_opts_t o = {.format = fmt, .delimiter = ',', .header = true, .end = UINT64_MAX};
    sl_reader_t *r = NULL;
    int rc = sl_reader_open(path, s, &o, &r, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "open %s: %s", path, g_err);
    return r;
}

static bool s_str_is(const sl_value_t *v, const char *s)
{
    return !v->is_null && v->type == SL_TYPE_STRING && v->len == strlen(s) &&
           memcmp(v->u.s, s, v->len) == 0;
}

START_TEST(test_format_parse)
{
    sl_format_t f;
    ck_assert_int_eq(sl_format_parse("csv", &f), 0);
    ck_assert_int_eq(f, SL_FMT_CSV);
    ck_assert_int_eq(sl_format_parse("jsonl", &f), 0);
    ck_assert_int_eq(f, SL_FMT_JSONL);
    ck_assert_int_eq(sl_format_parse("json", &f), 0);
    ck_assert_int_eq(f, SL_FMT_JSONL);
    ck_assert_int_eq(sl_format_parse("text", &f), 0);
    ck_assert_int_eq(f, SL_FMT_TEXT);
    ck_assert_int_eq(sl_format_parse("xml", &f), SL_NOTFOUND);
    ck_assert_int_eq(sl_format_parse(NULL, &f), SL_NOTFOUND);
}
END_TEST

/* ---- round trips through the writers ---------------------------------- */

#define NROWS 9

static void s_sample_rows(sl_value_t rows[NROWS][5])
{
    static const char *strs[NROWS] = {
        "plain", "with,comma",           "with \"quotes\"", "line\nbreak",     "crlf\r\nend",
        "",      "tab\tand ctl\x01\x1f", "ünïcødé ☃ 𝄞",     " lead and trail "};
    double ds[NROWS] = {0.1, -0.0, 1e300, 5e-324, 1.0 / 3, 42, -2.5, 123456789.125, 0};
    for (int i = 0; i < NROWS; i++) {
        rows[i][0] = sl_value_int(i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : i * 1000 - 3);
        rows[i][1] = sl_value_double(ds[i]);
        rows[i][2] = sl_value_bool(i % 2);
        rows[i][3] = sl_value_str(strs[i], (uint32_t)strlen(strs[i]));
        rows[i][4] = sl_value_ts(i == 2 ? -1 : i == 3 ? 951825600000LL : 1773480413589LL + i);
    }
    /* a row of nulls */
    for (int f = 0; f < 5; f++)
        rows[NROWS - 1][f] = sl_value_null();
}

static void s_roundtrip(sl_format_t fmt, const char *name)
{
    sl_schema_t *s = s_schema("id:int64,d:double,b:bool,s:string,t:timestamp");
    sl_value_t rows[NROWS][5];
    s_sample_rows(rows);
    const char *path = s_path(name);
    sl_writer_t *w = NULL;
    ck_assert_int_eq(sl_writer_open(path, fmt, s, &w, g_err, sizeof g_err), 0);
    for (int i = 0; i < NROWS; i++)
        ck_assert_int_eq(sl_writer_write(w, rows[i]), 0);
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), 0);
    sl_writer_destroy(&w);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(s_dir_entries(), 1);

    sl_reader_t *r = s_open(path, s, fmt);
    sl_value_t got[5];
    for (int i = 0; i < NROWS; i++) {
        int rc = sl_reader_next(r, got, g_arena, g_err, sizeof g_err);
        ck_assert_msg(rc == 1, "%s row %d: %d %s", name, i, rc, g_err);
        for (int f = 0; f < 5; f++)
            ck_assert_msg(sl_value_eq(&got[f], &rows[i][f]), "%s row %d field %d differs", name, i,
                          f);
    }
    ck_assert_int_eq(sl_reader_next(r, got, g_arena, g_err, sizeof g_err), 0);
    ck_assert_int_eq(sl_reader_next(r, got, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    ck_assert_ptr_null(r);
    sl_schema_destroy(&s);
}

START_TEST(test_csv_roundtrip)
{
    s_roundtrip(SL_FMT_CSV, "out.csv");
    char *text = sl_test_read_file(s_path("out.csv"), NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert(strncmp(text, "id,d,b,s,t\n", 11) == 0);
    ck_assert_ptr_nonnull(strstr(text, ",\"with,comma\","));
    ck_assert_ptr_nonnull(strstr(text, ",\"with \"\"quotes\"\"\","));
    ck_assert_ptr_nonnull(strstr(text, "\"line\nbreak\""));
    ck_assert_ptr_nonnull(strstr(text, ",\"\","));   /* empty string, quoted */
    ck_assert_ptr_nonnull(strstr(text, "\n,,,,\n")); /* the null row */
    ck_assert_ptr_nonnull(strstr(text, ",plain,2026-03-14T09:26:53.589Z\n"));
    free(text);
}
END_TEST

START_TEST(test_jsonl_roundtrip)
{
    s_roundtrip(SL_FMT_JSONL, "out.jsonl");
    char *text = sl_test_read_file(s_path("out.jsonl"), NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "{\"id\":-9223372036854775808,\"d\":0.1,\"b\":false,"
                                       "\"s\":\"plain\",\"t\":\"2026-03-14T09:26:53.589Z\"}\n"));
    ck_assert_ptr_nonnull(strstr(text, "\"with \\\"quotes\\\"\""));
    ck_assert_ptr_nonnull(strstr(text, "\"crlf\\r\\nend\""));
    ck_assert_ptr_nonnull(strstr(text, "\"tab\\tand ctl\\u0001\\u001f\""));
    ck_assert_ptr_nonnull(strstr(text, "\"ünïcødé ☃ 𝄞\""));
    ck_assert_ptr_nonnull(
        strstr(text, "{\"id\":null,\"d\":null,\"b\":null,\"s\":null,\"t\":null}\n"));
    free(text);
}
END_TEST

START_TEST(test_text_roundtrip)
{
    sl_schema_t *s = s_schema("line:string");
    const char *path = s_path("out.txt");
    sl_writer_t *w = NULL;
    ck_assert_int_eq(sl_writer_open(path, SL_FMT_TEXT, s, &w, g_err, sizeof g_err), 0);
    const char *lines[] = {"first", "", "  spaced  ", "ü,\"x\""};
    for (int i = 0; i < 4; i++) {
        sl_value_t v = sl_value_str(lines[i], (uint32_t)strlen(lines[i]));
        ck_assert_int_eq(sl_writer_write(w, &v), 0);
    }
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), 0);
    sl_writer_destroy(&w);
    char *text = sl_test_read_file(path, NULL);
    ck_assert_str_eq(text, "first\n\n  spaced  \nü,\"x\"\n");
    free(text);
    sl_reader_t *r = s_open(path, s, SL_FMT_TEXT);
    sl_value_t v;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 1);
        ck_assert(s_str_is(&v, lines[i]));
        ck_assert_uint_eq(sl_reader_line(r), (uint64_t)i + 1);
    }
    ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

/* ---- readers on hand-written input ------------------------------------ */

START_TEST(test_text_crlf_and_no_final_newline)
{
    sl_schema_t *s = s_schema("line:string");
    sl_test_write_file(s_path("a.txt"), "\xEF\xBB\xBFone\r\ntwo\r\n\r\nthree");
    sl_reader_t *r = s_open(s_path("a.txt"), s, SL_FMT_TEXT);
    const char *want[] = {"one", "two", "", "three"};
    sl_value_t v;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 1);
        ck_assert_msg(s_str_is(&v, want[i]), "line %d: '%.*s'", i, (int)v.len, v.u.s);
    }
    ck_assert_uint_eq(sl_reader_offset(r), strlen("\xEF\xBB\xBFone\r\ntwo\r\n\r\nthree"));
    ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);

    /* a text schema is exactly one string field */
    sl_schema_t *bad = s_schema("n:int64");
    sl_reader_opts_t o = {.format = SL_FMT_TEXT, .end = UINT64_MAX};
    ck_assert_int_eq(sl_reader_open(s_path("a.txt"), bad, &o, &r, g_err, sizeof g_err), SL_INVAL);
    ck_assert_ptr_null(r);
    sl_schema_destroy(&bad);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_csv_header_mapping_and_quoting)
{
    /* columns in another order than the schema, an extra column, CRLF, a BOM,
     * quoted delimiters, doubled quotes and a quoted newline */
    sl_test_write_file(s_path("in.csv"), "\xEF\xBB\xBF"
                                         "extra,name,n\r\n"
                                         "x,\"Smith, J\",1\r\n"
                                         "y,\"say \"\"hi\"\"\",2\r\n"
                                         "z,\"two\nlines\",3\r\n"
                                         "\r\n"
                                         "w,5\" pipe,4\r\n"
                                         "v,,\r\n"
                                         "u,\"\",5");
    sl_schema_t *s = s_schema("n:int64,name:string");
    sl_reader_t *r = s_open(s_path("in.csv"), s, SL_FMT_CSV);
    sl_value_t v[2];
    struct {
        long long n;
        const char *name;
        uint64_t line;
    } want[] = {{1, "Smith, J", 2}, {2, "say \"hi\"", 3}, {3, "two\nlines", 4}, {4, "5\" pipe", 7}};
    for (int i = 0; i < 4; i++) {
        int rc = sl_reader_next(r, v, g_arena, g_err, sizeof g_err);
        ck_assert_msg(rc == 1, "row %d: %s", i, g_err);
        ck_assert(v[0].u.i == want[i].n);
        ck_assert_msg(s_str_is(&v[1], want[i].name), "row %d: '%.*s'", i, (int)v[1].len, v[1].u.s);
        ck_assert_uint_eq(sl_reader_line(r), want[i].line);
    }
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].is_null && v[1].is_null); /* unquoted empty fields are null */
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 5);
    ck_assert(s_str_is(&v[1], "")); /* a quoted empty field is the empty string */
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_csv_delimiter_and_no_header)
{
    sl_test_write_file(s_path("in.tsv"), "1\ta,b\ttrue\n2\t\"q\tq\"\tno\n");
    sl_schema_t *s = s_schema("n:int64,s:string,b:bool");
    sl_reader_opts_t o = {
        .format = SL_FMT_CSV, .delimiter = '\t', .header = false, .end = UINT64_MAX};
    sl_reader_t *r = NULL;
    ck_assert_int_eq(sl_reader_open(s_path("in.tsv"), s, &o, &r, g_err, sizeof g_err), 0);
    sl_value_t v[3];
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 1 && s_str_is(&v[1], "a,b") && v[2].u.b);
    ck_assert_uint_eq(sl_reader_line(r), 1);
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 2 && s_str_is(&v[1], "q\tq") && !v[2].u.b);
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_csv_missing_column)
{
    sl_test_write_file(s_path("in.csv"), "a,b\n1,2\n");
    sl_schema_t *s = s_schema("a:int64,zz:int64");
    sl_reader_opts_t o = {.format = SL_FMT_CSV, .header = true, .end = UINT64_MAX};
    sl_reader_t *r = NULL;
    ck_assert_int_eq(sl_reader_open(s_path("in.csv"), s, &o, &r, g_err, sizeof g_err), SL_DATA);
    ck_assert_ptr_null(r);
    char want[4200];
    snprintf(want, sizeof want, "column 'zz' not in header of %s", s_path("in.csv"));
    ck_assert_str_eq(g_err, want);
    /* a missing file is not found; an empty file has no rows */
    ck_assert_int_eq(sl_reader_open(s_path("nope.csv"), s, &o, &r, g_err, sizeof g_err),
                     SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(g_err, "nope.csv"));
    sl_test_write_file(s_path("empty.csv"), "");
    r = s_open(s_path("empty.csv"), s, SL_FMT_CSV);
    sl_value_t v[2];
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

/* Expects SL_DATA whose message is exactly "<path>:<rest>". */
static void s_expect_data(sl_reader_t *r, sl_value_t *v, const char *file, const char *rest)
{
    int rc = sl_reader_next(r, v, g_arena, g_err, sizeof g_err);
    ck_assert_msg(rc == SL_DATA, "expected SL_DATA (%s), got %d", rest, rc);
    char want[4400];
    snprintf(want, sizeof want, "%s:%s", s_path(file), rest);
    ck_assert_str_eq(g_err, want);
}

START_TEST(test_csv_malformed_rows)
{
    sl_test_write_file(s_path("bad.csv"), "a,b,c\n"
                                          "1,x,2\n"
                                          "2,y\n"
                                          "3,z,4,5\n"
                                          "4,w,5\n"
                                          "5x,v,6\n"
                                          "\"6,u,7\n"
                                          "7,\"t\"t,8\n");
    sl_schema_t *s = s_schema("a:int64,b:string,c:int64");
    sl_reader_t *r = s_open(s_path("bad.csv"), s, SL_FMT_CSV);
    sl_value_t v[3];
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 1);
    s_expect_data(r, v, "bad.csv", "3: expected 3 columns, got 2");
    ck_assert_uint_eq(sl_reader_line(r), 3);
    s_expect_data(r, v, "bad.csv", "4: expected 3 columns, got 4");
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 4 && s_str_is(&v[1], "w") && v[2].u.i == 5);
    ck_assert_uint_eq(sl_reader_line(r), 5);
    s_expect_data(r, v, "bad.csv", "6: column 'a': '5x' is not an int64");
    /* an unclosed quote runs to the end of the file: one malformed record */
    s_expect_data(r, v, "bad.csv", "7: bad quoting in column 1");
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);

    sl_test_write_file(s_path("bad2.csv"), "a,b,c\n7,\"t\"t,8\n8,s,9\n");
    r = s_open(s_path("bad2.csv"), s, SL_FMT_CSV);
    s_expect_data(r, v, "bad2.csv", "2: bad quoting in column 2");
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 8);
    ck_assert_uint_eq(sl_reader_line(r), 3);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_jsonl_reader)
{
    sl_test_write_file(
        s_path("in.jsonl"),
        "{\"s\":\"tab\\t nl\\n q\\\" bs\\\\ sl\\/ \\u00e9 \\u20ac \\ud834\\udd1e \\u0000!\","
        " \"n\": -12, \"d\": 2.5e3, \"b\": true, \"t\": \"2000-02-29T12:00:00Z\"}\n"
        "  { \"n\" : 7 , \"extra\": {\"deep\": [1, {\"x\": null}, \"]\"]}, \"t\": 1000 }  \r\n"
        "\n"
        "{\"n\": \"7\"}\n"
        "{\"d\": 1, \"n\": 3, \"n\": 4, \"b\": null, \"s\": \"\"}\n"
        "{\"s\": \"\\ud834 lone\"}\n"
        "{\"n\": 1.5}\n"
        "{\"n\": 99999999999999999999}\n"
        "{\"b\": 1}\n"
        "{\"s\": [1,2]}\n"
        "[1,2]\n"
        "{\"n\": 1,}\n"
        "{\"n\": 1} x\n"
        "{\"n\": 01}\n"
        "{\"s\": \"bad \\x escape\"}\n"
        "{\"n\": 5}");
    sl_schema_t *s = s_schema("n:int64,d:double,b:bool,s:string,t:timestamp");
    sl_reader_t *r = s_open(s_path("in.jsonl"), s, SL_FMT_JSONL);
    sl_value_t v[5];
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    const char want[] = "tab\t nl\n q\" bs\\ sl/ \xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \0!";
    ck_assert_uint_eq(v[3].len, sizeof want - 1);
    ck_assert(memcmp(v[3].u.s, want, sizeof want - 1) == 0);
    ck_assert(v[0].u.i == -12 && v[1].u.d == 2500.0 && v[2].u.b && v[4].u.i == 951825600000LL);

    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 7 && v[1].is_null && v[2].is_null && v[3].is_null);
    ck_assert(!v[4].is_null && v[4].u.i == 1000); /* epoch milliseconds */
    ck_assert_uint_eq(sl_reader_line(r), 2);

    s_expect_data(r, v, "in.jsonl", "4: field 'n' expects int64, got string");
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 4 && v[1].u.d == 1.0 && v[2].is_null && s_str_is(&v[3], ""));
    ck_assert_uint_eq(sl_reader_line(r), 5);
    s_expect_data(r, v, "in.jsonl", "6: bad JSON at column 7: unpaired high surrogate");
    s_expect_data(r, v, "in.jsonl", "7: field 'n': '1.5' is not an int64");
    s_expect_data(r, v, "in.jsonl",
                  "8: field 'n': '99999999999999999999' is out of range for an int64");
    s_expect_data(r, v, "in.jsonl", "9: field 'b' expects bool, got number");
    s_expect_data(r, v, "in.jsonl", "10: field 's' expects string, got array");
    s_expect_data(r, v, "in.jsonl", "11: bad JSON at column 1: not a JSON object");
    s_expect_data(r, v, "in.jsonl", "12: bad JSON at column 9: expected a key");
    s_expect_data(r, v, "in.jsonl", "13: bad JSON at column 10: text after the object");
    s_expect_data(r, v, "in.jsonl", "14: bad JSON at column 8: expected ',' or '}'");
    s_expect_data(r, v, "in.jsonl", "15: bad JSON at column 7: bad escape in string");
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(v[0].u.i == 5);
    ck_assert_uint_eq(sl_reader_line(r), 16);
    ck_assert_int_eq(sl_reader_next(r, v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_long_line_is_data_error)
{
    const char *path = s_path("long.txt");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("short\n", f);
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    size_t total = SL_ROW_MAX + 100;
    for (size_t done = 0; done < total; done += sizeof chunk)
        fwrite(chunk, 1, total - done < sizeof chunk ? total - done : sizeof chunk, f);
    fputs("\nafter\n", f);
    fclose(f);
    sl_schema_t *s = s_schema("line:string");
    sl_reader_t *r = s_open(path, s, SL_FMT_TEXT);
    sl_value_t v;
    ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 1);
    char want[64];
    snprintf(want, sizeof want, "2: line longer than %u bytes", (unsigned)SL_ROW_MAX);
    s_expect_data(r, &v, "long.txt", want);
    ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 1);
    ck_assert(s_str_is(&v, "after"));
    ck_assert_uint_eq(sl_reader_line(r), 3);
    ck_assert_int_eq(sl_reader_next(r, &v, g_arena, g_err, sizeof g_err), 0);
    sl_reader_close(&r);
    sl_schema_destroy(&s);
}
END_TEST

/* ---- byte-range splitting --------------------------------------------- */

#define SPLIT_LINES 100000

static uint64_t g_rand = 0x2545F4914F6CDD1Dull;
static uint64_t s_rand(void)
{
    g_rand ^= g_rand << 13;
    g_rand ^= g_rand >> 7;
    g_rand ^= g_rand << 17;
    return g_rand;
}

/* Payload of line i: deterministic, 0..299 bytes, with characters that need
 * quoting or escaping (never a newline). */
static size_t s_payload(int64_t i, char *buf)
{
    static const char alphabet[] = "abcdefgh ,\"\\\t\x01\xc3\xa9xyz0123456789";
    size_t n = (size_t)((i * 7919) % 300);
    if (i % 97 == 0)
        n = 0;
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < n; k++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        char c = alphabet[(h >> 33) % (sizeof alphabet - 1)];
        if ((unsigned char)c == 0xc3) /* keep é whole */
            c = (k + 1 < n) ? c : 'e';
        buf[k] = c;
        if ((unsigned char)c == 0xc3)
            buf[++k] = (char)0xa9;
    }
    return n;
}

/* Writes the split test file; returns the offsets of the record starts
 * (SPLIT_LINES + 1 entries, the last one being the file size). */
static uint64_t *s_make_split_file(const char *path, sl_format_t fmt, const sl_schema_t *s)
{
    sl_writer_t *w = NULL;
    ck_assert_int_eq(sl_writer_open(path, fmt, s, &w, g_err, sizeof g_err), 0);
    char buf[400];
    for (int64_t i = 0; i < SPLIT_LINES; i++) {
        size_t n = s_payload(i, buf + 32);
        sl_value_t v[2];
        if (fmt == SL_FMT_TEXT) {
            /* text has one field: the id goes in front of the payload */
            int k = snprintf(buf, 32, "%lld:", (long long)i);
            memmove(buf + k, buf + 32, n);
            v[0] = sl_value_str(buf, (uint32_t)(k + n));
        } else {
            v[0] = sl_value_int(i);
            v[1] = i % 13 == 0 ? sl_value_null() : sl_value_str(buf + 32, (uint32_t)n);
        }
        if (sl_writer_write(w, v) != 0)
            ck_abort_msg("write %lld failed", (long long)i);
    }
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), 0);
    sl_writer_destroy(&w);
    size_t len;
    char *text = sl_test_read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    uint64_t *starts = malloc((SPLIT_LINES + 1) * sizeof *starts);
    int k = 0;
    size_t p = 0;
    if (fmt == SL_FMT_CSV)
        p = (size_t)(strchr(text, '\n') - text) + 1; /* the header */
    starts[k++] = p;
    for (; p < len; p++)
        if (text[p] == '\n')
            starts[k++] = p + 1;
    ck_assert_int_eq(k, SPLIT_LINES + 1);
    ck_assert_uint_eq(starts[SPLIT_LINES], len);
    free(text);
    return starts;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void s_split_check(sl_format_t fmt, const char *name)
{
    sl_schema_t *s = fmt == SL_FMT_TEXT ? s_schema("line:string") : s_schema("id:int64,p:string");
    const char *path = s_path(name);
    uint64_t *starts = s_make_split_file(path, fmt, s);
    uint64_t size = starts[SPLIT_LINES];
    uint64_t line0 = fmt == SL_FMT_CSV ? 2 : 1; /* file line of record 0 */
    char want[400];
    for (int trial = 0; trial < 14; trial++) {
        int k = trial % 7 + 1;
        uint64_t cuts[9];
        cuts[0] = 0;
        for (int j = 1; j < k; j++) {
            uint64_t x = s_rand();
            if (trial >= 7) /* exactly at a record start, or one byte either side */
                cuts[j] = starts[x % SPLIT_LINES] + (uint64_t)((int)(x >> 40) % 3) - 1;
            else
                cuts[j] = x % (size + 1);
            if (cuts[j] > size)
                cuts[j] = size;
        }
        if (trial == 9) /* an empty range, and a range inside the header */
            cuts[1] = cuts[2] = 1;
        qsort(cuts + 1, (size_t)(k - 1), sizeof cuts[0], s_cmp_u64);
        cuts[k] = trial % 2 ? UINT64_MAX : size;
        int64_t next = 0; /* the record every range must continue with */
        for (int j = 0; j < k; j++) {
            sl_reader_opts_t o = {.format = fmt,
                                  .delimiter = ',',
                                  .header = true,
                                  .start = cuts[j],
                                  .end = cuts[j + 1]};
            sl_reader_t *r = NULL;
            ck_assert_int_eq(sl_reader_open(path, s, &o, &r, g_err, sizeof g_err), 0);
            sl_value_t v[2];
            int rc;
            /* plain checks in the loop: every passing ck_assert costs Check a
             * write(2), and this loop runs millions of times */
            while ((rc = sl_reader_next(r, v, g_arena, g_err, sizeof g_err)) == 1) {
                if (next >= SPLIT_LINES)
                    ck_abort_msg("%s: extra record", name);
                size_t n = s_payload(next, want);
                bool same;
                if (fmt == SL_FMT_TEXT) {
                    char full[400];
                    int h = snprintf(full, 32, "%lld:", (long long)next);
                    memcpy(full + h, want, n);
                    same = v[0].len == h + n && memcmp(v[0].u.s, full, h + n) == 0;
                } else if (v[0].u.i != next) {
                    same = false;
                } else if (next % 13 == 0) {
                    same = v[1].is_null;
                } else {
                    same = !v[1].is_null && v[1].len == n &&
                           (n == 0 || memcmp(v[1].u.s, want, n) == 0);
                }
                /* the record starts inside this range and ends where the
                 * reader says; its line number is right even when split */
                if (!same || starts[next] < cuts[j] || starts[next] >= cuts[j + 1] ||
                    sl_reader_offset(r) != starts[next + 1] ||
                    sl_reader_line(r) != line0 + (uint64_t)next)
                    ck_abort_msg("%s trial %d range %d [%llu, %llu): record %lld wrong (id "
                                 "%lld, offset %llu, line %llu)",
                                 name, trial, j, (unsigned long long)cuts[j],
                                 (unsigned long long)cuts[j + 1], (long long)next,
                                 (long long)v[0].u.i, (unsigned long long)sl_reader_offset(r),
                                 (unsigned long long)sl_reader_line(r));
                next++;
            }
            ck_assert_msg(rc == 0, "%s: %d %s", name, rc, g_err);
            sl_reader_close(&r);
            sl_arena_reset(g_arena);
        }
        ck_assert_msg(next == SPLIT_LINES, "%s trial %d: read %lld of %d records", name, trial,
                      (long long)next, SPLIT_LINES);
    }
    free(starts);
    sl_schema_destroy(&s);
}

START_TEST(test_split_text)
{
    s_split_check(SL_FMT_TEXT, "split.txt");
}
END_TEST

START_TEST(test_split_csv)
{
    s_split_check(SL_FMT_CSV, "split.csv");
}
END_TEST

START_TEST(test_split_jsonl)
{
    s_split_check(SL_FMT_JSONL, "split.jsonl");
}
END_TEST

/* ---- publishing -------------------------------------------------------- */

START_TEST(test_writer_visible_only_after_commit)
{
    sl_schema_t *s = s_schema("n:int64");
    const char *path = s_path("pub.csv");
    sl_writer_t *w = NULL;
    ck_assert_int_eq(sl_writer_open(path, SL_FMT_CSV, s, &w, g_err, sizeof g_err), 0);
    for (int i = 0; i < 100000; i++) { /* more than one buffer's worth */
        sl_value_t v = sl_value_int(i);
        ck_assert_int_eq(sl_writer_write(w, &v), 0);
    }
    ck_assert(!s_exists(path));
    ck_assert_int_eq(s_dir_entries(), 1); /* only the temporary file */
    DIR *d = opendir(g_dir);
    struct dirent *e;
    bool saw_tmp = false;
    while ((e = readdir(d)) != NULL)
        saw_tmp |= strncmp(e->d_name, ".pub.csv.tmp-", 13) == 0;
    closedir(d);
    ck_assert(saw_tmp);
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), 0);
    ck_assert(s_exists(path));
    ck_assert_int_eq(s_dir_entries(), 1);
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), SL_STATE);
    sl_value_t v = sl_value_int(1);
    ck_assert_int_eq(sl_writer_write(w, &v), SL_STATE);
    sl_writer_destroy(&w);
    ck_assert(s_exists(path)); /* destroy after commit keeps the file */
    size_t len;
    char *text = sl_test_read_file(path, &len);
    ck_assert(strncmp(text, "n\n0\n1\n", 6) == 0);
    ck_assert(strstr(text, "\n99999\n") != NULL && text[len - 1] == '\n');
    free(text);

    /* destroy without commit: nothing published, temporary removed */
    ck_assert_int_eq(sl_writer_open(s_path("gone.csv"), SL_FMT_CSV, s, &w, g_err, sizeof g_err), 0);
    ck_assert_int_eq(sl_writer_write(w, &v), 0);
    ck_assert_int_eq(s_dir_entries(), 2);
    sl_writer_destroy(&w);
    ck_assert_ptr_null(w);
    sl_writer_destroy(&w); /* NULL is fine */
    sl_writer_destroy(NULL);
    ck_assert(!s_exists(s_path("gone.csv")));
    ck_assert_int_eq(s_dir_entries(), 1);

    /* commit replaces an existing file atomically */
    ck_assert_int_eq(sl_writer_open(path, SL_FMT_CSV, s, &w, g_err, sizeof g_err), 0);
    ck_assert_int_eq(sl_writer_write(w, &v), 0);
    ck_assert_int_eq(sl_writer_commit(w, g_err, sizeof g_err), 0);
    sl_writer_destroy(&w);
    text = sl_test_read_file(path, NULL);
    ck_assert_str_eq(text, "n\n1\n");
    free(text);

    /* a directory that does not exist */
    ck_assert_int_eq(
        sl_writer_open(s_path("no/such/dir.csv"), SL_FMT_CSV, s, &w, g_err, sizeof g_err), SL_IO);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(g_err, "no/such"));
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_fs_write_atomic_and_publish)
{
    const char *path = s_path("state.bin");
    ck_assert_int_eq(sl_fs_write_atomic(path, "hello", 5), 0);
    char *text = sl_test_read_file(path, NULL);
    ck_assert_str_eq(text, "hello");
    free(text);
    ck_assert_int_eq(sl_fs_write_atomic(path, "bye", 3), 0);
    text = sl_test_read_file(path, NULL);
    ck_assert_str_eq(text, "bye");
    free(text);
    ck_assert_int_eq(sl_fs_write_atomic(path, "", 0), 0);
    text = sl_test_read_file(path, NULL);
    ck_assert_str_eq(text, "");
    free(text);
    ck_assert_int_eq(s_dir_entries(), 1);

    /* failures: the temporary never survives */
    ck_assert_int_eq(sl_fs_write_atomic(s_path("missing/x"), "a", 1), SL_IO);
    sl_test_write_file(s_path("tmp1"), "data");
    ck_assert_int_eq(sl_fs_publish(s_path("tmp1"), s_path("missing/x")), SL_IO);
    ck_assert(!s_exists(s_path("tmp1")));
    ck_assert_int_eq(sl_fs_publish(s_path("tmp-nope"), s_path("y")), SL_IO);
    ck_assert_int_eq(s_dir_entries(), 1);

    sl_test_write_file(s_path("tmp2"), "data2");
    ck_assert_int_eq(sl_fs_publish(s_path("tmp2"), s_path("final")), 0);
    ck_assert(!s_exists(s_path("tmp2")));
    text = sl_test_read_file(s_path("final"), NULL);
    ck_assert_str_eq(text, "data2");
    free(text);
}
END_TEST

/* A state file read back against its recorded size and SHA-256. */
START_TEST(test_fs_read_checked)
{
    const char *path = s_path("chk.state");
    const char *body = "some checkpoint state";
    size_t n = strlen(body);
    ck_assert_int_eq(sl_fs_write_atomic(path, body, n), 0);
    char sha[65], why[512];
    sl_sha256_hex(body, n, sha);
    uint8_t *data = NULL;
    ck_assert_int_eq(sl_fs_read_checked(path, n, sha, &data, why, sizeof why), SL_OK);
    ck_assert_ptr_nonnull(data);
    ck_assert(memcmp(data, body, n) == 0);
    free(data);
    ck_assert_int_eq(sl_fs_read_checked(path, n, sha, NULL, why, sizeof why), SL_OK);
    /* another size, another hash, no file */
    ck_assert_int_eq(sl_fs_read_checked(path, n - 1, sha, &data, why, sizeof why), SL_DATA);
    ck_assert_ptr_null(data);
    ck_assert_ptr_nonnull(strstr(why, "truncated or has the wrong size"));
    char other[65];
    sl_sha256_hex(body, n - 1, other);
    ck_assert_int_eq(sl_fs_read_checked(path, n, other, &data, why, sizeof why), SL_DATA);
    ck_assert_ptr_nonnull(strstr(why, "is corrupt (its SHA-256 differs)"));
    ck_assert_int_eq(sl_fs_read_checked(path, n, "", &data, why, sizeof why), SL_DATA);
    ck_assert_int_eq(sl_fs_read_checked(s_path("nope.state"), n, sha, &data, why, sizeof why),
                     SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(why, "nope.state is missing"));
    /* only checked (out NULL: read in pieces): the same verdicts */
    ck_assert_int_eq(sl_fs_read_checked(path, n, other, NULL, why, sizeof why), SL_DATA);
    ck_assert_ptr_nonnull(strstr(why, "is corrupt (its SHA-256 differs)"));
    ck_assert_int_eq(sl_fs_read_checked(path, n, "", NULL, why, sizeof why), SL_DATA);
    ck_assert_int_eq(sl_fs_read_checked(path, n - 1, sha, NULL, why, sizeof why), SL_DATA);
    ck_assert_ptr_nonnull(strstr(why, "truncated or has the wrong size"));
    /* grown after it was recorded */
    ck_assert_int_eq(sl_fs_write_atomic(path, "some checkpoint state+", n + 1), 0);
    ck_assert_int_eq(sl_fs_read_checked(path, n, sha, &data, why, sizeof why), SL_DATA);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(sl_fs_read_checked(path, n, sha, NULL, why, sizeof why), SL_DATA);
    /* larger than one piece of the check: every byte counts, the last too */
    size_t big = 3 * 256 * 1024 + 7;
    uint8_t *b = malloc(big);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < big; i++)
        b[i] = (uint8_t)(i * 131 + (i >> 11));
    ck_assert_int_eq(sl_fs_write_atomic(path, b, big), 0);
    sl_sha256_hex(b, big, sha);
    ck_assert_int_eq(sl_fs_read_checked(path, big, sha, NULL, why, sizeof why), SL_OK);
    ck_assert_int_eq(sl_fs_read_checked(path, big, sha, &data, why, sizeof why), SL_OK);
    ck_assert(memcmp(data, b, big) == 0);
    free(data);
    b[big - 1] ^= 1;
    ck_assert_int_eq(sl_fs_write_atomic(path, b, big), 0);
    ck_assert_int_eq(sl_fs_read_checked(path, big, sha, NULL, why, sizeof why), SL_DATA);
    ck_assert_ptr_nonnull(strstr(why, "is corrupt (its SHA-256 differs)"));
    free(b);
}
END_TEST

/* A savepoint's parts: linked (a link is the same file), a link over an
 * existing file replaces it; directories copied file by file. */
START_TEST(test_fs_mkdtemp_honours_tmpdir)
{
    char dir[4096], want[4096];
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    ck_assert_int_eq(mkdir(s_path("tmp"), 0755), 0);
    setenv("TMPDIR", s_path("tmp"), 1);
    ck_assert_int_eq(sl_fs_mkdtemp("sluice-x", dir, sizeof dir), 0);
    snprintf(want, sizeof want, "%s/sluice-x-", s_path("tmp"));
    ck_assert_int_eq(strncmp(dir, want, strlen(want)), 0);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(rmdir(dir), 0);
    setenv("TMPDIR", "relative", 1); /* not absolute: ignored */
    ck_assert_int_eq(sl_fs_mkdtemp("sluice-x", dir, sizeof dir), 0);
    ck_assert_int_eq(strncmp(dir, "/tmp/sluice-x-", 14), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    char small[8];
    ck_assert_int_eq(sl_fs_mkdtemp("sluice-x", small, sizeof small), SL_IO);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
}
END_TEST

START_TEST(test_fs_link_or_copy_and_copy_dir)
{
    ck_assert_int_eq(mkdir(s_path("a"), 0755), 0);
    sl_test_write_file(s_path("a/part-000000"), "first");
    sl_test_write_file(s_path("a/part-000001"), "second");
    ck_assert_int_eq(mkdir(s_path("a/sub"), 0755), 0);
    ck_assert_int_eq(mkdir(s_path("b"), 0755), 0);
    sl_test_write_file(s_path("b/part-000000"), "stale");
    ck_assert_int_eq(sl_fs_link_or_copy(s_path("a/part-000000"), s_path("b/part-000000")), SL_OK);
    ck_assert_int_eq(sl_fs_link_or_copy(s_path("a/part-000001"), s_path("b/part-000001")), SL_OK);
    char *text = sl_test_read_file(s_path("b/part-000000"), NULL);
    ck_assert_str_eq(text, "first");
    free(text);
    struct stat x, y;
    ck_assert_int_eq(stat(s_path("a/part-000001"), &x), 0);
    ck_assert_int_eq(stat(s_path("b/part-000001"), &y), 0);
    ck_assert(x.st_ino == y.st_ino); /* the same file system: a hard link */
    ck_assert_int_eq(sl_fs_link_or_copy(s_path("a/nope"), s_path("b/nope")), SL_NOTFOUND);
    ck_assert_int_eq(sl_fs_link_or_copy(s_path("a/part-000000"), s_path("missing/x")), SL_IO);

    char failed[4400];
    ck_assert_int_eq(sl_fs_copy_dir(s_path("a"), s_path("c"), failed, sizeof failed), SL_OK);
    text = sl_test_read_file(s_path("c/part-000001"), NULL);
    ck_assert_str_eq(text, "second");
    free(text);
    ck_assert_int_eq(stat(s_path("c/part-000001"), &y), 0);
    ck_assert(x.st_ino != y.st_ino);       /* a copy */
    ck_assert(!s_exists(s_path("c/sub"))); /* regular files only */
    ck_assert_int_eq(sl_fs_copy_dir(s_path("nope"), s_path("d"), failed, sizeof failed), SL_IO);
    ck_assert_ptr_nonnull(strstr(failed, "nope"));
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("fileio");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_format_parse);
    tcase_add_test(tc, test_csv_roundtrip);
    tcase_add_test(tc, test_jsonl_roundtrip);
    tcase_add_test(tc, test_text_roundtrip);
    tcase_add_test(tc, test_text_crlf_and_no_final_newline);
    tcase_add_test(tc, test_csv_header_mapping_and_quoting);
    tcase_add_test(tc, test_csv_delimiter_and_no_header);
    tcase_add_test(tc, test_csv_missing_column);
    tcase_add_test(tc, test_csv_malformed_rows);
    tcase_add_test(tc, test_jsonl_reader);
    tcase_add_test(tc, test_long_line_is_data_error);
    tcase_add_test(tc, test_writer_visible_only_after_commit);
    tcase_add_test(tc, test_fs_write_atomic_and_publish);
    tcase_add_test(tc, test_fs_read_checked);
    tcase_add_test(tc, test_fs_link_or_copy_and_copy_dir);
    tcase_add_test(tc, test_fs_mkdtemp_honours_tmpdir);
    suite_add_tcase(s, tc);
    TCase *split = tcase_create("split");
    tcase_add_checked_fixture(split, s_setup, s_teardown);
    tcase_set_timeout(split, 300);
    tcase_add_test(split, test_split_text);
    tcase_add_test(split, test_split_csv);
    tcase_add_test(split, test_split_jsonl);
    suite_add_tcase(s, split);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
