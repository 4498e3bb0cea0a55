/* check_nexmark.c — the Nexmark event generator: determinism, the event
 * mix, ids as Beam's model derives them, splitting over subtasks, and the
 * ranges of every field. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/nexmark.h"
#include "testutil.h"

/* Every field of e that its kind sets, as one line (caller's buffer). */
static void s_fmt(const sl_nexmark_event_t *e, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%llu|%s|%lld|", (unsigned long long)e->n,
                     sl_nexmark_kind_name(e->kind), (long long)e->date_time);
    if (k <= 0)
        ck_abort_msg("format failed");
    char *p = buf + k;
    size_t left = cap - (size_t)k;
    switch (e->kind) {
    case SL_NEXMARK_PERSON:
        k = snprintf(p, left, "%lld|%s|%s|%s|%s|%s", (long long)e->person.id, e->person.name,
                     e->person.email, e->person.credit_card, e->person.city, e->person.state);
        break;
    case SL_NEXMARK_AUCTION:
        k = snprintf(p, left, "%lld|%s|%s|%lld|%lld|%lld|%lld|%lld", (long long)e->auction.id,
                     e->auction.item_name, e->auction.description,
                     (long long)e->auction.initial_bid, (long long)e->auction.reserve,
                     (long long)e->auction.expires, (long long)e->auction.seller,
                     (long long)e->auction.category);
        break;
    case SL_NEXMARK_BID:
        k = snprintf(p, left, "%lld|%lld|%lld|%s|%s", (long long)e->bid.auction,
                     (long long)e->bid.bidder, (long long)e->bid.price, e->bid.channel, e->bid.url);
        break;
    }
    if (k <= 0 || k >= (int)left)
        ck_abort_msg("event %llu does not fit the line", (unsigned long long)e->n);
    p += k;
    left -= (size_t)k;
    k = snprintf(p, left, "|%s", e->extra);
    if (k >= (int)left)
        ck_abort_msg("event %llu does not fit the line", (unsigned long long)e->n);
}

#define S_LINE 2048

/* Cheap checks for the loops over many events (ck_assert_* records its
 * location through a pipe on every call, too slow for 10^6 calls). */
#define S_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s failed at event %llu", __FILE__, __LINE__, #cond,              \
                         (unsigned long long)n);                                                   \
    } while (0)

START_TEST(test_deterministic)
{
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 42;
    sl_nexmark_event_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    char la[S_LINE], lb[S_LINE];
    /* same (seed, n) -> same event, whatever was generated in between */
    uint64_t ns[] = {0, 1, 3, 4, 49, 50, 12345, 999999, 123456789012ULL};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        ck_assert_int_eq(sl_nexmark_event(&cfg, ns[i], a), SL_OK);
        ck_assert_int_eq(sl_nexmark_event(&cfg, ns[(i + 3) % 9], b), SL_OK);
        ck_assert_int_eq(sl_nexmark_event(&cfg, ns[i], b), SL_OK);
        s_fmt(a, la, sizeof la);
        s_fmt(b, lb, sizeof lb);
        ck_assert_str_eq(la, lb);
    }
    /* another seed: the same kinds, ids and times, but other random values */
    sl_nexmark_cfg_t other = cfg;
    other.seed = 43;
    int differ = 0;
    for (uint64_t n = 0; n < 1000; n++) {
        S_CHECK((sl_nexmark_event(&cfg, n, a)) == (SL_OK));
        S_CHECK((sl_nexmark_event(&other, n, b)) == (SL_OK));
        S_CHECK((a->kind) == (b->kind));
        S_CHECK((a->date_time) == (b->date_time));
        s_fmt(a, la, sizeof la);
        s_fmt(b, lb, sizeof lb);
        differ += strcmp(la, lb) != 0;
    }
    ck_assert_int_gt(differ, 990);
    /* the default seed is 0 and is a stream of its own */
    sl_nexmark_cfg_t zero;
    sl_nexmark_cfg_default(&zero);
    ck_assert_uint_eq(zero.seed, 0);
    ck_assert_int_eq(sl_nexmark_event(&zero, 10, a), SL_OK);
    ck_assert_int_eq(sl_nexmark_event(&cfg, 10, b), SL_OK);
    s_fmt(a, la, sizeof la);
    s_fmt(b, lb, sizeof lb);
    ck_assert_str_ne(la, lb);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_mix_and_ids)
{
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    sl_nexmark_event_t *e = malloc(sizeof *e);
    ck_assert_ptr_nonnull(e);
    int count[3] = {0, 0, 0};
    int64_t next_person = SL_NEXMARK_FIRST_PERSON_ID, next_auction = SL_NEXMARK_FIRST_AUCTION_ID;
    int64_t last_time = 0;
    int hot_auction = 0, hot_bidder = 0, bids = 0;
    for (uint64_t n = 0; n < 50000; n++) {
        S_CHECK((sl_nexmark_event(&cfg, n, e)) == (SL_OK));
        S_CHECK((e->n) == (n));
        count[e->kind]++;
        uint64_t r = n % 50;
        S_CHECK((e->kind) == (r == 0  ? SL_NEXMARK_PERSON
                              : r < 4 ? SL_NEXMARK_AUCTION
                                      : SL_NEXMARK_BID));
        S_CHECK((sl_nexmark_kind(n)) == (e->kind));
        /* event time: 10 000 events/s from the first event time */
        S_CHECK((e->date_time) == (SL_NEXMARK_DEFAULT_FIRST_TIME + (int64_t)(n / 10)));
        S_CHECK((e->date_time) >= (last_time));
        last_time = e->date_time;
        if (e->kind == SL_NEXMARK_PERSON) {
            S_CHECK((e->person.id) == (next_person++)); /* 1000, 1001, ... */
        } else if (e->kind == SL_NEXMARK_AUCTION) {
            S_CHECK((e->auction.id) == (next_auction++)); /* 1000, 1001, ... */
            /* sellers: people generated so far, or a few ahead */
            S_CHECK((e->auction.seller) >= (SL_NEXMARK_FIRST_PERSON_ID));
            S_CHECK((e->auction.seller) < (next_person + 10));
        } else {
            bids++;
            /* bids are for the last ~100 auctions or a few ahead */
            int64_t last = next_auction - 1;
            S_CHECK((e->bid.auction) >= (SL_NEXMARK_FIRST_AUCTION_ID));
            S_CHECK((e->bid.auction) <= (last + 10));
            S_CHECK((e->bid.auction) >= (last - 100 - 100));
            S_CHECK((e->bid.bidder) >= (SL_NEXMARK_FIRST_PERSON_ID));
            S_CHECK((e->bid.bidder) < (next_person + 10));
            int64_t base = (last - SL_NEXMARK_FIRST_AUCTION_ID) / 100 * 100;
            hot_auction += e->bid.auction == base + SL_NEXMARK_FIRST_AUCTION_ID;
            int64_t pbase = (next_person - 1 - SL_NEXMARK_FIRST_PERSON_ID) / 100 * 100 + 1;
            hot_bidder += e->bid.bidder == pbase + SL_NEXMARK_FIRST_PERSON_ID;
        }
        S_CHECK((sl_nexmark_last_person(n)) == (next_person - 1 - SL_NEXMARK_FIRST_PERSON_ID));
        S_CHECK((sl_nexmark_last_auction(n)) == (next_auction - 1 - SL_NEXMARK_FIRST_AUCTION_ID));
    }
    ck_assert_int_eq(count[SL_NEXMARK_PERSON], 1000);
    ck_assert_int_eq(count[SL_NEXMARK_AUCTION], 3000);
    ck_assert_int_eq(count[SL_NEXMARK_BID], 46000);
    /* hot auctions: 1 - 1/2 of the bids (plus chance hits); hot bidders: 1 - 1/4 */
    ck_assert_int_gt(hot_auction, bids * 48 / 100);
    ck_assert_int_lt(hot_auction, bids * 56 / 100);
    ck_assert_int_gt(hot_bidder, bids * 73 / 100);
    ck_assert_int_lt(hot_bidder, bids * 78 / 100);
    free(e);
}
END_TEST

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The events of subtask i of p, formatted, appended to lines. */
static void s_share(const sl_nexmark_cfg_t *cfg, uint64_t total, int i, int p, char **lines,
                    int *nlines)
{
    sl_nexmark_event_t *e = malloc(sizeof *e);
    ck_assert_ptr_nonnull(e);
    char buf[S_LINE];
    for (uint64_t n = (uint64_t)i; n < total; n += (uint64_t)p) {
        S_CHECK(sl_nexmark_event(cfg, n, e) == SL_OK);
        s_fmt(e, buf, sizeof buf);
        lines[(*nlines)++] = strdup(buf);
    }
    free(e);
}

START_TEST(test_split)
{
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 5;
    enum { TOTAL = 5000 };
    char **one = calloc(TOTAL, sizeof *one), **many = calloc(TOTAL, sizeof *many);
    ck_assert_ptr_nonnull(one);
    ck_assert_ptr_nonnull(many);
    int n1 = 0;
    s_share(&cfg, TOTAL, 0, 1, one, &n1);
    ck_assert_int_eq(n1, TOTAL);
    int ps[] = {2, 3, 7};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        int np = 0;
        for (int i = ps[k] - 1; i >= 0; i--) /* subtasks in any order */
            s_share(&cfg, TOTAL, i, ps[k], many, &np);
        ck_assert_int_eq(np, TOTAL);
        qsort(many, TOTAL, sizeof *many, s_cmp);
        if (k == 0)
            qsort(one, TOTAL, sizeof *one, s_cmp);
        for (int j = 0; j < TOTAL; j++) {
            if (strcmp(one[j], many[j]) != 0)
                ck_abort_msg("P=%d: %s != %s", ps[k], one[j], many[j]);
            free(many[j]);
        }
    }
    for (int j = 0; j < TOTAL; j++)
        free(one[j]);
    free(one);
    free(many);
}
END_TEST

static int s_in(const char *s, const char *const *set, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return 1;
    return 0;
}

START_TEST(test_ranges)
{
    static const char *const states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
    static const char *const hot[] = {"Google", "Facebook", "Baidu", "Apple"};
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 9;
    cfg.first_time_ms = 1000;
    cfg.event_rate = 1000; /* 1 ms per event */
    sl_nexmark_event_t *e = malloc(sizeof *e);
    ck_assert_ptr_nonnull(e);
    int categories[SL_NEXMARK_NUM_CATEGORIES] = {0};
    int hot_channels = 0, bids = 0;
    for (uint64_t n = 0; n < 20000; n++) {
        S_CHECK((sl_nexmark_event(&cfg, n, e)) == (SL_OK));
        S_CHECK((e->date_time) == (1000 + (int64_t)n));
        size_t extra = strlen(e->extra);
        for (size_t i = 0; i < extra; i++)
            S_CHECK(e->extra[i] >= 'a' && e->extra[i] <= 'z');
        if (e->kind == SL_NEXMARK_PERSON) {
            const sl_nexmark_person_t *p = &e->person;
            S_CHECK((strchr(p->name, ' ')) != NULL);
            const char *at = strchr(p->email, '@');
            S_CHECK((at) != NULL);
            S_CHECK(strcmp(p->email + strlen(p->email) - 4, ".com") == 0);
            S_CHECK((strlen(p->credit_card)) == (19));
            for (int i = 0; i < 19; i++)
                S_CHECK(i % 5 == 4 ? p->credit_card[i] == ' '
                                   : (p->credit_card[i] >= '0' && p->credit_card[i] <= '9'));
            S_CHECK((strlen(p->city)) > (0));
            S_CHECK(s_in(p->state, states, 6));
            /* average person of 200 bytes: extra fills the rest within +-20% */
            S_CHECK((extra) > (80));
            S_CHECK((extra) < (200));
        } else if (e->kind == SL_NEXMARK_AUCTION) {
            const sl_nexmark_auction_t *a = &e->auction;
            S_CHECK((a->initial_bid) >= (100));
            S_CHECK((a->initial_bid) <= (100000000));
            S_CHECK((a->reserve) > (a->initial_bid));
            S_CHECK((a->reserve) <= (200000000));
            S_CHECK((a->expires) > (e->date_time));
            /* length ~ 2 x the time of 100 auctions (1666 events = 1666 ms) */
            S_CHECK((a->expires) <= (e->date_time + 2 * 1666 + 1));
            S_CHECK((a->category) >= (SL_NEXMARK_FIRST_CATEGORY_ID));
            S_CHECK((a->category) < (SL_NEXMARK_FIRST_CATEGORY_ID + SL_NEXMARK_NUM_CATEGORIES));
            categories[a->category - SL_NEXMARK_FIRST_CATEGORY_ID]++;
            S_CHECK((strlen(a->item_name)) < (20));
            S_CHECK((strlen(a->description)) < (100));
            S_CHECK((extra) < (SL_NEXMARK_EXTRA_CAP));
            S_CHECK((extra) > (200));
        } else {
            const sl_nexmark_bid_t *b = &e->bid;
            bids++;
            S_CHECK((b->price) >= (100));
            S_CHECK((b->price) <= (100000000));
            if (s_in(b->channel, hot, 4)) {
                hot_channels++;
                S_CHECK((strstr(b->url, "channel_id")) == NULL);
            } else {
                S_CHECK((strncmp(b->channel, "channel-", 8)) == (0));
                int ch = atoi(b->channel + 8);
                S_CHECK((ch) >= (0));
                S_CHECK((ch) < (10000));
            }
            S_CHECK((strncmp(b->url, "https://www.nexmark.com/", 24)) == (0));
            S_CHECK((strstr(b->url, "/item.htm?query=1")) != NULL);
            /* 100 - 32 bytes missing: 54 .. 81 letters */
            S_CHECK((extra) >= (54));
            S_CHECK((extra) <= (81));
        }
    }
    for (int i = 0; i < SL_NEXMARK_NUM_CATEGORIES; i++)
        ck_assert_int_gt(categories[i], 1200 / SL_NEXMARK_NUM_CATEGORIES / 2);
    ck_assert_int_gt(hot_channels, bids * 45 / 100);
    ck_assert_int_lt(hot_channels, bids * 55 / 100);
    free(e);
}
END_TEST

START_TEST(test_config)
{
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    char err[128];
    ck_assert_int_eq(sl_nexmark_cfg_check(&cfg, err, sizeof err), SL_OK);
    ck_assert_int_eq(cfg.event_rate, 10000);
    ck_assert_int_eq(cfg.hot_auction_ratio, 2);
    ck_assert_int_eq(cfg.hot_sellers_ratio, 4);
    ck_assert_int_eq(cfg.hot_bidders_ratio, 4);
    ck_assert_int_eq(cfg.num_in_flight_auctions, 100);
    ck_assert_int_eq(cfg.num_active_people, 1000);
    sl_nexmark_cfg_t bad = cfg;
    bad.event_rate = 0;
    ck_assert_int_eq(sl_nexmark_cfg_check(&bad, err, sizeof err), SL_INVAL);
    ck_assert_ptr_nonnull(strstr(err, "event_rate"));
    bad = cfg;
    bad.avg_auction_bytes = 100000;
    ck_assert_int_eq(sl_nexmark_cfg_check(&bad, err, sizeof err), SL_INVAL);
    ck_assert_int_eq(sl_nexmark_cfg_check(NULL, err, sizeof err), SL_INVAL);
    sl_nexmark_event_t *e = malloc(sizeof *e);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(sl_nexmark_event(NULL, 0, e), SL_INVAL);
    ck_assert_int_eq(sl_nexmark_event(&cfg, 0, NULL), SL_INVAL);
    /* huge event numbers: time does not overflow */
    ck_assert_int_eq(sl_nexmark_time(&cfg, 4000000000000000000ULL),
                     cfg.first_time_ms + 400000000000000000LL);
    ck_assert_int_eq(sl_nexmark_event(&cfg, 4000000000000000000ULL + 7, e), SL_OK);
    ck_assert_int_eq(e->kind, SL_NEXMARK_BID);
    ck_assert_str_eq(sl_nexmark_kind_name(SL_NEXMARK_AUCTION), "auction");
    free(e);
}
END_TEST

/* The cached generator makes the events of sl_nexmark_event, byte for
 * byte, whatever order events come in (cache hits and misses alike), with
 * the lengths right; without the extra, everything else is unchanged. */
START_TEST(test_gen_same_events)
{
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = 7;
    sl_nexmark_gen_t *g = NULL, *nx = NULL;
    ck_assert_int_eq(sl_nexmark_gen_new(&cfg, 0, &g), SL_OK);
    ck_assert_int_eq(sl_nexmark_gen_new(&cfg, SL_NEXMARK_GEN_NO_EXTRA, &nx), SL_OK);
    sl_nexmark_event_t *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    char la[S_LINE], lb[S_LINE];
    long extras = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        /* forwards, then a stride that revisits channels out of order */
        uint64_t n = i < 50000 ? i : (i * 7919) % 5000000;
        S_CHECK(sl_nexmark_event(&cfg, n, a) == SL_OK);
        S_CHECK(sl_nexmark_gen_event(g, n, b) == SL_OK);
        S_CHECK(sl_nexmark_gen_event(nx, n, c) == SL_OK);
        s_fmt(a, la, sizeof la);
        s_fmt(b, lb, sizeof lb);
        if (strcmp(la, lb))
            ck_abort_msg("event %llu differs:\n%s\n%s", (unsigned long long)n, la, lb);
        S_CHECK(a->extra_len == strlen(a->extra) && b->extra_len == a->extra_len);
        if (a->kind == SL_NEXMARK_BID) {
            S_CHECK(b->bid.url_len == strlen(a->bid.url) && a->bid.url_len == b->bid.url_len);
            S_CHECK(b->bid.channel_len == strlen(a->bid.channel) &&
                    a->bid.channel_len == b->bid.channel_len);
        }
        extras += a->extra_len > 0;
        /* no extra: empty, and the rest of the line as with it */
        S_CHECK(c->extra_len == 0 && c->extra[0] == '\0');
        memcpy(c->extra, a->extra, (size_t)a->extra_len + 1);
        s_fmt(c, lb, sizeof lb);
        if (strcmp(la, lb))
            ck_abort_msg("event %llu differs without extra:\n%s\n%s", (unsigned long long)n, la,
                         lb);
    }
    ck_assert_int_gt(extras, 95000);
    sl_nexmark_gen_destroy(&g);
    sl_nexmark_gen_destroy(&nx);
    ck_assert_ptr_null(g);
    sl_nexmark_gen_destroy(&g);
    sl_nexmark_gen_destroy(NULL);
    /* bad arguments */
    ck_assert_int_eq(sl_nexmark_gen_new(&cfg, 0x80, &g), SL_INVAL);
    ck_assert_ptr_null(g);
    sl_nexmark_cfg_t bad = cfg;
    bad.event_rate = 0;
    ck_assert_int_eq(sl_nexmark_gen_new(&bad, 0, &g), SL_INVAL);
    ck_assert_int_eq(sl_nexmark_gen_new(NULL, 0, &g), SL_INVAL);
    ck_assert_int_eq(sl_nexmark_gen_event(NULL, 0, a), SL_INVAL);
    free(a);
    free(b);
    free(c);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("nexmark");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_mix_and_ids);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_gen_same_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
