/* nexmark_ceiling.c — the C-loop ceiling of the Nexmark benchmark
 * (bench/nexmark.sh): Nexmark q0, q1 or q2 in one thread with no framework.
 * It generates every event 0 .. EVENTS-1 with sl_nexmark_event (the same
 * generator, configuration and seed as the `nexmark` source), selects the
 * bids (and for q2 the auctions that are multiples of 123), computes the
 * result row of the query as values (ints and string views, as
 * jobs/nexmark/qN.yaml do), and discards it: it only counts the rows and
 * folds them into a checksum so that the work cannot be optimised away.
 *
 *   nexmark_ceiling QUERY EVENTS SEED        (QUERY: q0, q1 or q2)
 *
 * Prints one line on stdout:
 *   query=q0 events=N rows=R checksum=HEX
 * bench/nexmark.sh compares rows with the row count of sluice's sink.
 * Uses the default event model (first event time, 10 000 events/s of
 * event time), like bench/nexmark_ref.c, which writes the rows as CSV. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/nexmark.h"

/* A string value of a result row: a view into the event, as the engine's
 * rows hold strings. */
typedef struct {
    const char *p; /* first byte */
    size_t len;    /* bytes */
} s_view_t;

/* One result row of any of the three queries (q2 uses auction and price). */
typedef struct {
    int64_t auction;   /* the auction bid on */
    int64_t bidder;    /* q0, q1 */
    int64_t price;     /* cents; q1: converted, price * 908 / 1000 */
    s_view_t channel;  /* q0 */
    s_view_t url;      /* q0 */
    int64_t date_time; /* q0, q1: epoch ms */
    s_view_t extra;    /* q0, q1 */
} s_row_t;

static s_view_t s_view(const char *s)
{
    s_view_t v = {s, strlen(s)};
    return v;
}

/* Folds x into the checksum h (a 64-bit multiply-xor mix). */
static uint64_t s_mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

/* Folds a result row into the checksum: its ints, and the length and
 * first byte of its strings. */
static uint64_t s_fold(uint64_t h, const s_row_t *r)
{
    h = s_mix(h, (uint64_t)r->auction);
    h = s_mix(h, (uint64_t)r->bidder);
    h = s_mix(h, (uint64_t)r->price);
    h = s_mix(h, (uint64_t)r->date_time);
    const s_view_t *v[3] = {&r->channel, &r->url, &r->extra};
    for (int i = 0; i < 3; i++)
        if (v[i]->p)
            h = s_mix(h, (uint64_t)v[i]->len << 8 | (unsigned char)v[i]->p[0]);
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: nexmark_ceiling q0|q1|q2 EVENTS SEED\n");
        return 2;
    }
    const char *q = argv[1];
    int query = !strcmp(q, "q0") ? 0 : !strcmp(q, "q1") ? 1 : !strcmp(q, "q2") ? 2 : -1;
    if (query < 0) {
        fprintf(stderr, "nexmark_ceiling: unknown query '%s' (q0, q1 or q2)\n", q);
        return 2;
    }
    char *end;
    long long events = strtoll(argv[2], &end, 10);
    if (!*argv[2] || *end || events < 0) {
        fprintf(stderr, "nexmark_ceiling: bad event count '%s'\n", argv[2]);
        return 2;
    }
    unsigned long long seed = strtoull(argv[3], &end, 10);
    if (!*argv[3] || *end) {
        fprintf(stderr, "nexmark_ceiling: bad seed '%s'\n", argv[3]);
        return 2;
    }
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = seed;
    static sl_nexmark_event_t e;
    uint64_t h = 0;
    long long rows = 0;
    for (long long n = 0; n < events; n++) {
        /* every event is generated, as the `nexmark` source does: the
         * input is not free for the ceiling either */
        if (sl_nexmark_event(&cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ceiling: event %lld failed\n", n);
            return 1;
        }
        if (e.kind != SL_NEXMARK_BID)
            continue;
        const sl_nexmark_bid_t *b = &e.bid;
        s_row_t r = {0};
        if (query == 0) {
            r.auction = b->auction;
            r.bidder = b->bidder;
            r.price = b->price;
            r.channel = s_view(b->channel);
            r.url = s_view(b->url);
            r.date_time = e.date_time;
            r.extra = s_view(e.extra);
        } else if (query == 1) {
            r.auction = b->auction;
            r.bidder = b->bidder;
            r.price = b->price * 908 / 1000;
            r.date_time = e.date_time;
            r.extra = s_view(e.extra);
        } else {
            if (b->auction % 123 != 0)
                continue;
            r.auction = b->auction;
            r.price = b->price;
        }
        h = s_fold(h, &r);
        rows++;
    }
    printf("query=%s events=%lld rows=%lld checksum=%016llx\n", q, events, rows,
           (unsigned long long)h);
    return 0;
}
