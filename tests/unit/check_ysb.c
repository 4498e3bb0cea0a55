/* check_ysb.c — the Yahoo Streaming Benchmark generator (sluice/ysb.h):
 * determinism, the id pools and their shapes, the fixed ad -> campaign
 * table, equal shares of event types, event times, configuration checks. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/ysb.h"
#include "testutil.h"

static sl_ysb_gen_t s_g1, s_g2;

/* Is s shaped like "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx"? */
static bool s_is_uuid(const char *s)
{
    if (strlen(s) != SL_YSB_UUID_LEN)
        return false;
    for (int i = 0; i < SL_YSB_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return false;
        if (!dash && !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

START_TEST(test_pools)
{
    sl_ysb_cfg_t cfg;
    sl_ysb_cfg_default(&cfg);
    ck_assert_int_eq(sl_ysb_gen_init(&s_g1, &cfg), SL_OK);
    for (int i = 0; i < SL_YSB_ADS; i++) {
        ck_assert_msg(s_is_uuid(s_g1.ads[i]), "ad %d: '%s'", i, s_g1.ads[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(s_g1.ads[i], s_g1.ads[j]);
    }
    for (int i = 0; i < SL_YSB_CAMPAIGNS; i++)
        ck_assert(s_is_uuid(s_g1.campaigns[i]));
    for (int i = 0; i < SL_YSB_USERS; i++) {
        ck_assert(s_is_uuid(s_g1.users[i]));
        unsigned a, b, c, d;
        char extra;
        ck_assert_int_eq(sscanf(s_g1.ips[i], "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra), 4);
        ck_assert(a >= 1 && a <= 223 && b <= 255 && c <= 255 && d >= 1 && d <= 254);
    }
    for (int i = 0; i < SL_YSB_PAGES; i++)
        ck_assert(s_is_uuid(s_g1.pages[i]));
    /* another seed: other users and pages, the same ads and campaigns */
    cfg.seed = 42;
    ck_assert_int_eq(sl_ysb_gen_init(&s_g2, &cfg), SL_OK);
    ck_assert_str_ne(s_g1.users[0], s_g2.users[0]);
    ck_assert_str_ne(s_g1.pages[0], s_g2.pages[0]);
    ck_assert_int_eq(memcmp(s_g1.ads, s_g2.ads, sizeof s_g1.ads), 0);
    ck_assert_int_eq(memcmp(s_g1.campaigns, s_g2.campaigns, sizeof s_g1.campaigns), 0);
    /* the table is fixed: its first row is in jobs/data/ysb-campaigns.csv */
    ck_assert_str_eq(s_g1.ads[0], "6ef32f95-e471-457e-bbb0-2225133d716e");
    ck_assert_str_eq(s_g1.campaigns[0], "854a6741-4691-4ce0-8278-a3783f18c130");
}
END_TEST

START_TEST(test_events)
{
    sl_ysb_cfg_t cfg;
    sl_ysb_cfg_default(&cfg);
    cfg.seed = 7;
    cfg.event_rate = 1000;
    ck_assert_int_eq(sl_ysb_gen_init(&s_g1, &cfg), SL_OK);
    ck_assert_int_eq(sl_ysb_gen_init(&s_g2, &cfg), SL_OK);
    enum { N = 300000 };
    long kinds[SL_YSB_EVENT_TYPES] = {0};
    static int per_ad[SL_YSB_ADS];
    memset(per_ad, 0, sizeof per_ad);
    int64_t prev = INT64_MIN;
    /* Plain checks in the loop, one assertion after it: Check reports every
     * passing ck_assert to its parent process, and millions of them took
     * minutes on a loaded machine. */
    char bad[256] = "";
    for (uint64_t n = 0; n < N; n++) {
        sl_ysb_event_t a, b;
        sl_ysb_event(&s_g1, n, &a);
        sl_ysb_event(&s_g2, n, &b); /* a pure function of (seed, n) */
        const char *why = NULL;
        if (strcmp(a.user_id, b.user_id) || strcmp(a.page_id, b.page_id) ||
            strcmp(a.ad_id, b.ad_id) || strcmp(a.ad_type, b.ad_type) ||
            strcmp(a.event_type, b.event_type))
            why = "two generators of one seed differ";
        else if (a.n != n)
            why = "wrong event number";
        else if (a.ad < 0 || a.ad >= SL_YSB_ADS || strcmp(a.ad_id, s_g1.ads[a.ad]) != 0)
            why = "ad_id is not the ad's";
        else if (a.campaign != a.ad / SL_YSB_ADS_PER_CAMPAIGN)
            why = "campaign is not the ad's";
        else if (strcmp(a.event_type, sl_ysb_event_type_name(a.event_kind)) != 0)
            why = "event_type is not the kind's name";
        else if (strcmp(a.ad_type, "banner") && strcmp(a.ad_type, "modal") &&
                 strcmp(a.ad_type, "sponsored-search") && strcmp(a.ad_type, "mail") &&
                 strcmp(a.ad_type, "mobile"))
            why = "unknown ad_type";
        /* the ip is the user's */
        else if (a.ip != s_g1.ips[(a.user_id - s_g1.users[0]) / (SL_YSB_UUID_LEN + 1)])
            why = "the ip is not the user's";
        /* event time: first + n * 1000 / rate, never decreasing */
        else if (a.event_time != cfg.first_time_ms + (int64_t)n || a.event_time < prev)
            why = "event time is not first + n * 1000 / rate";
        if (why) {
            snprintf(bad, sizeof bad, "event %llu: %s", (unsigned long long)n, why);
            break;
        }
        prev = a.event_time;
        kinds[a.event_kind]++;
        per_ad[a.ad]++;
    }
    ck_assert_msg(!bad[0], "%s", bad);
    /* equal shares: each kind within 1% of N / 3 */
    for (int k = 0; k < SL_YSB_EVENT_TYPES; k++)
        ck_assert_msg(labs(kinds[k] - N / 3) < N / 100, "kind %d: %ld", k, kinds[k]);
    /* every ad is used, none wildly more than its share (300 on average) */
    for (int a = 0; a < SL_YSB_ADS; a++)
        ck_assert_msg(per_ad[a] > 150 && per_ad[a] < 450, "ad %d: %d", a, per_ad[a]);
    /* another seed makes another stream */
    cfg.seed = 8;
    ck_assert_int_eq(sl_ysb_gen_init(&s_g2, &cfg), SL_OK);
    int same = 0;
    for (uint64_t n = 0; n < 1000; n++) {
        sl_ysb_event_t a, b;
        sl_ysb_event(&s_g1, n, &a);
        sl_ysb_event(&s_g2, n, &b);
        same += a.ad == b.ad;
    }
    ck_assert_int_lt(same, 20);
}
END_TEST

START_TEST(test_time_and_config)
{
    sl_ysb_cfg_t cfg;
    sl_ysb_cfg_default(&cfg);
    ck_assert_int_eq(cfg.event_rate, SL_YSB_DEFAULT_EVENT_RATE);
    ck_assert_int_eq(cfg.first_time_ms, SL_YSB_DEFAULT_FIRST_TIME);
    cfg.event_rate = 3;
    ck_assert_int_eq(sl_ysb_time(&cfg, 0), SL_YSB_DEFAULT_FIRST_TIME);
    ck_assert_int_eq(sl_ysb_time(&cfg, 1), SL_YSB_DEFAULT_FIRST_TIME + 333);
    ck_assert_int_eq(sl_ysb_time(&cfg, 5), SL_YSB_DEFAULT_FIRST_TIME + 1666);
    /* no overflow for huge n */
    cfg.event_rate = 1000000000;
    ck_assert_int_eq(sl_ysb_time(&cfg, 4000000000000000000ULL),
                     SL_YSB_DEFAULT_FIRST_TIME + 4000000000000LL);
    char err[128];
    cfg.event_rate = 0;
    ck_assert_int_eq(sl_ysb_cfg_check(&cfg, err, sizeof err), SL_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "event_rate"));
    ck_assert_int_eq(sl_ysb_gen_init(&s_g1, &cfg), SL_INVAL);
    ck_assert_int_eq(sl_ysb_cfg_check(NULL, err, sizeof err), SL_INVAL);
    ck_assert_int_eq(sl_ysb_gen_init(NULL, NULL), SL_INVAL);
    ck_assert_str_eq(sl_ysb_event_type_name(0), "view");
    ck_assert_str_eq(sl_ysb_event_type_name(2), "purchase");
    ck_assert_str_eq(sl_ysb_event_type_name(3), "?");
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("ysb");
    TCase *tc = tcase_create("generator");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pools);
    tcase_add_test(tc, test_events);
    tcase_add_test(tc, test_time_and_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
