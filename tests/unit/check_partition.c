/* check_partition.c — key groups and their owners: every key group has
 * exactly one owner, ranges are contiguous and balanced, and the mapping
 * only moves whole key groups when parallelism changes. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "sluice/plan.h"
#include "testutil.h"

START_TEST(test_owner_ranges_are_contiguous_and_balanced)
{
    int maxps[] = {1, 7, 128, 1000};
    for (size_t m = 0; m < sizeof maxps / sizeof *maxps; m++) {
        int maxp = maxps[m];
        for (int p = 1; p <= maxp && p <= 64; p++) {
            int count[64] = {0}, prev = 0;
            for (int kg = 0; kg < maxp; kg++) {
                int o = sl_key_group_owner(kg, maxp, p);
                ck_assert_int_ge(o, 0);
                ck_assert_int_lt(o, p);
                ck_assert_int_ge(o, prev); /* contiguous ranges, in order */
                prev = o;
                count[o]++;
            }
            for (int i = 0; i < p; i++) {
                ck_assert_int_ge(count[i], maxp / p);
                ck_assert_int_le(count[i], maxp / p + 1);
            }
        }
    }
}
END_TEST

START_TEST(test_keys_spread_over_key_groups)
{
    int hits[128] = {0};
    char key[32];
    for (int i = 0; i < 128000; i++) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        sl_value_t v = sl_value_str(key, (uint32_t)n);
        int kg = sl_key_group(sl_value_hash(&v, 1), 128);
        ck_assert_int_ge(kg, 0);
        ck_assert_int_lt(kg, 128);
        hits[kg]++;
    }
    for (int g = 0; g < 128; g++) /* expected 1000 each; allow wide noise */
        ck_assert_msg(hits[g] > 800 && hits[g] < 1200, "key group %d got %d keys", g, hits[g]);
}
END_TEST

START_TEST(test_same_key_same_subtask_any_parallelism)
{
    /* The owner is a function of the key group only, so a key never splits
     * between subtasks, at any parallelism. */
    for (int i = 0; i < 1000; i++) {
        sl_value_t v = sl_value_int(i * 7919);
        int kg = sl_key_group(sl_value_hash(&v, 1), 128);
        for (int p = 1; p <= 8; p++) {
            int o1 = sl_key_group_owner(kg, 128, p);
            sl_value_t again = sl_value_int(i * 7919);
            int o2 = sl_key_group_owner(sl_key_group(sl_value_hash(&again, 1), 128), 128, p);
            ck_assert_int_eq(o1, o2);
        }
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("partition");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_owner_ranges_are_contiguous_and_balanced);
    tcase_add_test(tc, test_keys_spread_over_key_groups);
    tcase_add_test(tc, test_same_key_same_subtask_any_parallelism);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
