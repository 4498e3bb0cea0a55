/* check_row.c — schemas, the binary row layout and batches. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/row.h"
#include "testutil.h"

static sl_schema_t *s_all_types(void)
{
    sl_schema_t *s = sl_schema_new();
    ck_assert_int_eq(sl_schema_add(s, "id", SL_TYPE_INT64), SL_OK);
    ck_assert_int_eq(sl_schema_add(s, "price", SL_TYPE_DOUBLE), SL_OK);
    ck_assert_int_eq(sl_schema_add(s, "ok", SL_TYPE_BOOL), SL_OK);
    ck_assert_int_eq(sl_schema_add(s, "name", SL_TYPE_STRING), SL_OK);
    ck_assert_int_eq(sl_schema_add(s, "at", SL_TYPE_TIMESTAMP), SL_OK);
    ck_assert_int_eq(sl_schema_add(s, "note", SL_TYPE_STRING), SL_OK);
    return s;
}

START_TEST(test_schema)
{
    sl_schema_t *s = s_all_types();
    ck_assert_int_eq(s->nfields, 6);
    ck_assert_int_eq(sl_schema_find(s, "name"), 3);
    ck_assert_int_eq(sl_schema_find(s, "nope"), -1);
    ck_assert_int_eq(sl_schema_add(s, "id", SL_TYPE_STRING), SL_EXISTS);
    char buf[256];
    sl_schema_format(s, buf, sizeof buf);
    ck_assert_str_eq(buf, "id:int64, price:double, ok:bool, name:string, at:timestamp, "
                          "note:string");
    sl_schema_t *c = sl_schema_copy(s);
    ck_assert_int_eq(c->nfields, 6);
    ck_assert_str_eq(c->fields[4].name, "at");
    sl_type_t t;
    ck_assert_int_eq(sl_type_parse("boolean", &t), SL_OK);
    ck_assert_int_eq(t, SL_TYPE_BOOL);
    ck_assert_int_eq(sl_type_parse("int46", &t), SL_NOTFOUND);
    sl_schema_destroy(&c);
    sl_schema_destroy(&s);
    ck_assert_ptr_null(s);
    sl_schema_destroy(&s); /* accepts NULL */
}
END_TEST

START_TEST(test_row_round_trip)
{
    sl_schema_t *s = s_all_types();
    sl_value_t in[6] = {sl_value_int(-42),        sl_value_double(3.25),      sl_value_bool(true),
                        sl_value_str("héllo", 6), sl_value_ts(1700000000123), sl_value_null()};
    size_t n = sl_row_size(s, in);
    ck_assert_uint_eq(n, 4 + 1 + 6 * 8 + 6);
    uint8_t *buf = malloc(n);
    ck_assert_uint_eq(sl_row_encode(s, in, buf), n);
    ck_assert_uint_eq(sl_row_len(buf), n);
    ck_assert_int_eq(sl_row_check(s, buf, n), SL_OK);
    sl_value_t out[6];
    sl_row_decode(s, buf, out);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(sl_value_eq(&in[i], &out[i]), "field %d differs", i);
    ck_assert(out[5].is_null);
    ck_assert_int_eq(out[4].type, SL_TYPE_TIMESTAMP);
    sl_value_t one;
    sl_row_get(s, buf, 3, &one);
    ck_assert_uint_eq(one.len, 6);
    ck_assert(memcmp(one.u.s, "héllo", 6) == 0);
    /* Equal values encode to equal bytes (aggregate keys rely on it). */
    uint8_t *buf2 = malloc(n);
    sl_row_encode(s, in, buf2);
    ck_assert(memcmp(buf, buf2, n) == 0);
    free(buf2);
    free(buf);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_row_check_rejects_garbage)
{
    sl_schema_t *s = s_all_types();
    sl_value_t in[6] = {sl_value_int(1),        sl_value_double(1), sl_value_bool(false),
                        sl_value_str("abc", 3), sl_value_ts(0),     sl_value_str("", 0)};
    size_t n = sl_row_size(s, in);
    uint8_t *buf = malloc(n);
    sl_row_encode(s, in, buf);
    ck_assert_int_eq(sl_row_check(s, buf, n - 1), SL_DATA); /* length mismatch */
    ck_assert_int_eq(sl_row_check(s, buf, 3), SL_DATA);     /* shorter than the header */
    /* A string slot pointing outside the row. */
    uint8_t *bad = malloc(n);
    memcpy(bad, buf, n);
    uint32_t off = 9999;
    memcpy(bad + 4 + 1 + 3 * 8, &off, 4);
    ck_assert_int_eq(sl_row_check(s, bad, n), SL_DATA);
    /* Random bytes never pass as a row of another length or crash the check. */
    srand(7);
    for (int k = 0; k < 5000; k++) {
        for (size_t i = 0; i < n; i++)
            bad[i] = (uint8_t)rand();
        (void)sl_row_check(s, bad, n);
    }
    free(bad);
    free(buf);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_batch_fill_and_iterate)
{
    sl_schema_t *s = sl_schema_new();
    sl_schema_add(s, "n", SL_TYPE_INT64);
    sl_schema_add(s, "w", SL_TYPE_STRING);
    sl_batch_t *b = sl_batch_new(1024);
    int appended = 0, rc;
    char word[32];
    for (;;) {
        int len = snprintf(word, sizeof word, "word%d", appended);
        sl_value_t v[2] = {sl_value_int(appended), sl_value_str(word, (uint32_t)len)};
        rc = sl_batch_append(b, s, v);
        if (rc != SL_OK)
            break;
        appended++;
    }
    ck_assert_int_eq(rc, SL_LIMIT); /* full: the caller flushes */
    ck_assert_int_gt(appended, 10);
    ck_assert_uint_eq(b->count, (unsigned)appended);
    ck_assert_uint_le(b->len, 1024);
    int seen = 0;
    for (const uint8_t *r = sl_batch_first(b); r; r = sl_batch_next(b, r)) {
        sl_value_t v[2];
        sl_row_decode(s, r, v);
        ck_assert_int_eq(v[0].u.i, seen);
        snprintf(word, sizeof word, "word%d", seen);
        ck_assert_uint_eq(v[1].len, strlen(word));
        ck_assert(memcmp(v[1].u.s, word, v[1].len) == 0);
        seen++;
    }
    ck_assert_int_eq(seen, appended);
    /* Loading the bytes elsewhere (as from the network) validates them. */
    sl_batch_t *c = sl_batch_new(0);
    ck_assert_int_eq(sl_batch_load(c, s, b->data, b->len, b->count), SL_OK);
    ck_assert_uint_eq(c->count, b->count);
    ck_assert_int_eq(sl_batch_load(c, s, b->data, b->len, b->count + 1), SL_DATA);
    ck_assert_int_eq(sl_batch_load(c, s, b->data, b->len - 1, b->count), SL_DATA);
    sl_batch_clear(b);
    ck_assert_ptr_null(sl_batch_first(b));
    sl_batch_destroy(&b);
    sl_batch_destroy(&c);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_batch_large_row)
{
    sl_schema_t *s = sl_schema_new();
    sl_schema_add(s, "blob", SL_TYPE_STRING);
    sl_batch_t *b = sl_batch_new(256);
    size_t big = 100000;
    char *p = malloc(big);
    memset(p, 'x', big);
    sl_value_t v = sl_value_str(p, (uint32_t)big);
    ck_assert_int_eq(sl_batch_append(b, s, &v), SL_OK); /* an empty batch grows for one row */
    ck_assert_int_eq(sl_batch_append(b, s, &v), SL_LIMIT);
    sl_batch_clear(b);
    char *huge = malloc(SL_ROW_MAX + 1);
    memset(huge, 'y', SL_ROW_MAX + 1);
    sl_value_t h = sl_value_str(huge, SL_ROW_MAX + 1);
    ck_assert_int_eq(sl_batch_append(b, s, &h), SL_RANGE);
    free(huge);
    free(p);
    sl_batch_destroy(&b);
    sl_schema_destroy(&s);
}
END_TEST

START_TEST(test_value_order_and_hash)
{
    sl_value_t a = sl_value_int(1), b = sl_value_double(1.5), n = sl_value_null();
    ck_assert_int_lt(sl_value_cmp(&a, &b), 0);
    ck_assert_int_lt(sl_value_cmp(&n, &a), 0); /* nulls first */
    sl_value_t s1 = sl_value_str("abc", 3), s2 = sl_value_str("abd", 3), s3 = sl_value_str("ab", 2);
    ck_assert_int_lt(sl_value_cmp(&s1, &s2), 0);
    ck_assert_int_gt(sl_value_cmp(&s1, &s3), 0);
    sl_value_t nan = sl_value_double(NAN);
    ck_assert_int_gt(sl_value_cmp(&nan, &b), 0);
    /* The hash is a function of the values only, stable across calls. */
    sl_value_t k1[2] = {sl_value_str("x", 1), sl_value_int(5)};
    char copy[1] = {'x'};
    sl_value_t k2[2] = {sl_value_str(copy, 1), sl_value_int(5)};
    ck_assert_uint_eq(sl_value_hash(k1, 2), sl_value_hash(k2, 2));
    sl_value_t k3[2] = {sl_value_str("x", 1), sl_value_int(6)};
    ck_assert_uint_ne(sl_value_hash(k1, 2), sl_value_hash(k3, 2));
    /* ("ab","c") and ("a","bc") must not collide by construction. */
    sl_value_t p1[2] = {sl_value_str("ab", 2), sl_value_str("c", 1)};
    sl_value_t p2[2] = {sl_value_str("a", 1), sl_value_str("bc", 2)};
    ck_assert_uint_ne(sl_value_hash(p1, 2), sl_value_hash(p2, 2));
}
END_TEST

/* Pinned values: the hash places keys into key groups, so a change of it
 * moves state between subtasks and must come with a new checkpoint format
 * (S_CK_FORMAT in master.c, S_SNAP_VERSION in worker/task.c). The same on
 * every host: words are read little-endian. */
START_TEST(test_hash_pinned)
{
    sl_value_t w = sl_value_str("sluice", 6);
    ck_assert_uint_eq(sl_value_hash(&w, 1), 0xa438a50ef2e9149bull);
    sl_value_t k[2] = {sl_value_str("0f9fa83c-a0d8-4c4e-9a55-0b2fc9d0ee40", 36), sl_value_int(42)};
    ck_assert_uint_eq(sl_value_hash(k, 2), 0xe057b6dd566fafb0ull);
    sl_value_t i = sl_value_int(7), n = sl_value_null();
    ck_assert_uint_eq(sl_value_hash(&i, 1), 0xde1f5f13d9266b95ull);
    ck_assert_uint_eq(sl_value_hash(&n, 1), 0x67fd16694fa93afeull);
}
END_TEST

static int s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every byte counts, wherever it is (the word reads, the overlapping tail):
 * each one-bit change of a string of any length 1..40 gives another hash,
 * and so does every length of the same zero-padded bytes. */
START_TEST(test_hash_every_bit_counts)
{
    for (uint32_t len = 1; len <= 40; len++) {
        char buf[40];
        for (uint32_t j = 0; j < len; j++)
            buf[j] = (char)('a' + (j * 7) % 26);
        uint64_t hs[40 * 8 + 1];
        int nh = 0;
        sl_value_t v = sl_value_str(buf, len);
        hs[nh++] = sl_value_hash(&v, 1);
        for (uint32_t j = 0; j < len; j++)
            for (int bit = 0; bit < 8; bit++) {
                buf[j] ^= (char)(1 << bit);
                hs[nh++] = sl_value_hash(&v, 1);
                buf[j] ^= (char)(1 << bit);
            }
        qsort(hs, (size_t)nh, sizeof *hs, s_u64_cmp);
        for (int j = 1; j < nh; j++)
            ck_assert_msg(hs[j] != hs[j - 1], "two strings of %u bytes one bit apart collide", len);
    }
    char zeros[41] = {0};
    uint64_t hl[41];
    for (uint32_t len = 0; len <= 40; len++) {
        sl_value_t v = sl_value_str(zeros, len);
        hl[len] = sl_value_hash(&v, 1);
    }
    qsort(hl, 41, sizeof *hl, s_u64_cmp);
    for (int j = 1; j < 41; j++)
        ck_assert_msg(hl[j] != hl[j - 1], "zero strings of two lengths collide");
    /* a value's type is part of it */
    sl_value_t a = sl_value_int(5), t = sl_value_ts(5), n = sl_value_null();
    ck_assert_uint_ne(sl_value_hash(&a, 1), sl_value_hash(&t, 1));
    sl_value_t z = sl_value_int(0);
    ck_assert_uint_ne(sl_value_hash(&z, 1), sl_value_hash(&n, 1));
}
END_TEST

/* Uuid-like keys (as the YSB ad ids) spread evenly over 128 key groups:
 * chi-square of 1000 keys well under what a skewed hash gives, and sequential
 * integers too. */
START_TEST(test_hash_spreads_keys)
{
    enum { GROUPS = 128, KEYS = 1000 };
    for (int kind = 0; kind < 2; kind++) {
        int cnt[GROUPS] = {0};
        for (int k = 0; k < KEYS; k++) {
            char b[64];
            snprintf(b, sizeof b, "%08x-0000-4000-8000-%012x", (unsigned)k * 2654435761u,
                     (unsigned)k);
            sl_value_t v = kind ? sl_value_int(k) : sl_value_str(b, 36);
            uint64_t h = sl_value_hash(&v, 1);
            cnt[h % GROUPS]++;
        }
        double mean = (double)KEYS / GROUPS, chi = 0;
        for (int g = 0; g < GROUPS; g++)
            chi += (cnt[g] - mean) * (cnt[g] - mean) / mean;
        /* 127 degrees of freedom: the 99.9th percentile is about 181 */
        ck_assert_msg(chi < 181, "kind %d: chi-square %.1f over %d groups", kind, chi, GROUPS);
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("row");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_schema);
    tcase_add_test(tc, test_hash_pinned);
    tcase_add_test(tc, test_hash_every_bit_counts);
    tcase_add_test(tc, test_hash_spreads_keys);
    tcase_add_test(tc, test_row_round_trip);
    tcase_add_test(tc, test_row_check_rejects_garbage);
    tcase_add_test(tc, test_batch_fill_and_iterate);
    tcase_add_test(tc, test_batch_large_row);
    tcase_add_test(tc, test_value_order_and_hash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
