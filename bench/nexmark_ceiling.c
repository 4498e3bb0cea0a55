/* nexmark_ceiling.c — the C-loop ceiling of the Nexmark benchmark
 * (bench/nexmark.sh): a Nexmark query of jobs/nexmark/ in one thread with
 * no framework. It generates every event 0 .. EVENTS-1 with
 * sl_nexmark_event (the same generator, configuration and seed as the
 * `nexmark` source), selects the bids (and for q2 the auctions that are
 * multiples of 123), computes the result rows of the query as values (ints
 * and string views, as jobs/nexmark/qN.yaml do), and discards them: it only
 * counts the rows and folds them into a checksum so that the work cannot be
 * optimised away.
 *
 *   nexmark_ceiling QUERY EVENTS SEED [EVENT_RATE]
 *       QUERY: q0, q1, q2, q5, q7, q11, q14, q21 or q22; EVENT_RATE: events
 *       per second of event time (default 10 000, the source's `event_rate`)
 *
 * The windowed queries run as a streaming program would, on the events in
 * event-time order, with state bounded by the open windows:
 *   q5   sliding windows of 10 s every 2 s: bid counts per auction in one
 *        hash table per 2 s pane; when a pane ends, the window ending there
 *        sums its 5 panes and gives the auction with the most bids (the
 *        smallest id on ties, as the job), and the oldest pane is cleared
 *   q7   tumbling windows of 10 s: the bid with the highest price so far
 *        (ties broken by the engine's encoded row, as the job), emitted
 *        when the window ends
 *   q11  sessions with a 10 s gap: per bidder, in a hash table, the first
 *        and last bid time and the count; a bid 10 s or more after the
 *        last closes the session, and every second of event time the table
 *        is swept for sessions the event time has passed
 *
 * The string queries work as hand-written C would, without regular
 * expressions (the results are string views into the event):
 *   q14  the price band test in integers, the UTC hour by division, a loop
 *        counting the 'c's of extra
 *   q21  strcasecmp of the channel with the four big names, else strstr
 *        for "channel_id=" at the url's start or after a '&', the value up
 *        to the next '&'; bids with neither are dropped
 *   q22  strchr over the url for fields 3, 4, 5 split at '/'
 *
 * Prints one line on stdout:
 *   query=q0 events=N rows=R checksum=HEX
 * bench/nexmark.sh compares rows with the row count of sluice's sink.
 * Uses the default event model (first event time, 10 000 events/s of
 * event time), like bench/nexmark_ref.c, which writes the rows as CSV. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/nexmark.h"

/* A string value of a result row: a view into the event, as the engine's
 * rows hold strings. */
typedef struct {
    const char *p; /* first byte */
    size_t len;    /* bytes */
} s_view_t;

/* One result row of any query (each uses some of the fields). */
typedef struct {
    int64_t auction;   /* the auction bid on; q5: the hot auction */
    int64_t bidder;    /* q0, q1, q7, q11 */
    int64_t price;     /* cents; q1: converted, price * 908 / 1000; q5: bid count; q11: count */
    s_view_t channel;  /* q0 */
    s_view_t url;      /* q0 */
    int64_t date_time; /* q0, q1, q7: epoch ms */
    s_view_t extra;    /* q0, q1, q7 */
    int64_t start;     /* q5, q7, q11: window start */
    int64_t end;       /* q5, q7, q11: window end */
    s_view_t tag;      /* q14: bid_time_type; q21: channel_id */
    int64_t count;     /* q14: c_counts */
    s_view_t dir[3];   /* q22: dir1, dir2, dir3 */
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
    h = s_mix(h, (uint64_t)r->start);
    h = s_mix(h, (uint64_t)r->end);
    const s_view_t *v[7] = {&r->channel, &r->url,    &r->extra, &r->tag,
                            &r->dir[0],  &r->dir[1], &r->dir[2]};
    for (int i = 0; i < 7; i++)
        if (v[i]->p)
            h = s_mix(h, (uint64_t)v[i]->len << 8 | (unsigned char)(v[i]->len ? v[i]->p[0] : 0));
    if (r->tag.p)
        h = s_mix(h, (uint64_t)r->count);
    return h;
}

/* ---- string queries --------------------------------------------------------- */

/* q14: the part of the day of a timestamp, from its UTC hour. */
static s_view_t s_time_type(int64_t ms)
{
    int64_t rest = ms % 86400000;
    int h = (int)((rest < 0 ? rest + 86400000 : rest) / 3600000);
    return s_view(h >= 8 && h <= 18 ? "dayTime" : h <= 6 || h >= 20 ? "nightTime" : "otherTime");
}

/* q21: the channel id of a bid; p NULL when it has none. */
static s_view_t s_channel_id(const char *channel, const char *url)
{
    static const char *const big[] = {"apple", "google", "facebook", "baidu"};
    static const char *const ids[] = {"0", "1", "2", "3"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(channel, big[i]) == 0)
            return s_view(ids[i]);
    for (const char *p = url; (p = strstr(p, "channel_id=")) != NULL; p++)
        if (p == url || p[-1] == '&') {
            s_view_t v = {p + 11, strcspn(p + 11, "&")};
            return v;
        }
    s_view_t none = {NULL, 0};
    return none;
}

/* q22: field i (0-based) of s split at '/'; p NULL when there is none. */
static s_view_t s_field(const char *s, int i)
{
    s_view_t v = {NULL, 0};
    for (; i > 0; i--)
        if (!(s = strchr(s, '/')))
            return v;
        else
            s++;
    v.p = s;
    v.len = strcspn(s, "/");
    return v;
}

/* ---- windowed queries ------------------------------------------------------ */

#define S_Q5_SIZE 10000
#define S_Q5_SLIDE 2000
#define S_Q5_PANES (S_Q5_SIZE / S_Q5_SLIDE)
#define S_Q7_SIZE 10000
#define S_Q11_GAP 10000
#define S_EMPTY INT64_MIN

/* An open-addressing hash table from int64 keys (never S_EMPTY) to a
 * payload of three int64 (q5: count; q11: first time, last time, count). */
typedef struct {
    int64_t key;  /* S_EMPTY when the slot is free */
    int64_t v[3]; /* the payload */
} s_slot_t;

typedef struct {
    s_slot_t *slots; /* cap slots */
    size_t cap;      /* a power of two */
    size_t n;        /* used slots */
} s_map_t;

static uint64_t s_hash(int64_t k)
{
    uint64_t x = (uint64_t)k * 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

static int s_map_init(s_map_t *m, size_t cap)
{
    m->slots = malloc(cap * sizeof *m->slots);
    m->cap = cap;
    m->n = 0;
    if (!m->slots)
        return -1;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = S_EMPTY;
    return 0;
}

static void s_map_clear(s_map_t *m)
{
    for (size_t i = 0; m->n && i < m->cap; i++)
        m->slots[i].key = S_EMPTY;
    m->n = 0;
}

/* The slot of key, created zeroed when absent; NULL when out of memory. */
static s_slot_t *s_map_get(s_map_t *m, int64_t key)
{
    if ((m->n + 1) * 2 > m->cap) {
        s_map_t bigger;
        if (s_map_init(&bigger, m->cap * 2))
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key != S_EMPTY)
                *s_map_get(&bigger, m->slots[i].key) = m->slots[i];
        free(m->slots);
        *m = bigger;
    }
    size_t mask = m->cap - 1, i = s_hash(key) & mask;
    while (m->slots[i].key != S_EMPTY && m->slots[i].key != key)
        i = (i + 1) & mask;
    if (m->slots[i].key == S_EMPTY) {
        m->slots[i] = (s_slot_t){.key = key};
        m->n++;
    }
    return &m->slots[i];
}

static int64_t s_align(int64_t t, int64_t size)
{
    return t - ((t % size) + size) % size;
}

/* The state of a windowed query, and its output. */
typedef struct {
    int query;                 /* 5, 7 or 11 */
    uint64_t h;                /* checksum */
    long long rows;            /* result rows */
    s_map_t panes[S_Q5_PANES]; /* q5: counts of pane k (start pane_start[k]) */
    int64_t pane_start[S_Q5_PANES];
    s_map_t sum;           /* q5: scratch, counts of one window */
    int64_t cur;           /* q5: start of the newest pane; q7: of the window; S_EMPTY: none */
    sl_nexmark_bid_t best; /* q7: the best bid of the window */
    int64_t best_time;     /* q7: its date_time */
    char best_extra[SL_NEXMARK_EXTRA_CAP]; /* q7: its extra */
    s_map_t sessions;                      /* q11: bidder -> first, last, count */
    int64_t swept;                         /* q11: event time of the last sweep */
} s_win_t;

static void s_out(s_win_t *w, const s_row_t *r)
{
    w->h = s_fold(w->h, r);
    w->rows++;
}

/* q5: the window [end - size, end) is complete: its hottest auction. */
static int s_q5_window(s_win_t *w, int64_t end)
{
    s_map_clear(&w->sum);
    int64_t best = 0, auction = 0;
    for (int k = 0; k < S_Q5_PANES; k++) {
        if (w->pane_start[k] < end - S_Q5_SIZE || w->pane_start[k] >= end)
            continue;
        const s_map_t *p = &w->panes[k];
        for (size_t i = 0; p->n && i < p->cap; i++) {
            if (p->slots[i].key == S_EMPTY)
                continue;
            s_slot_t *s = s_map_get(&w->sum, p->slots[i].key);
            if (!s)
                return -1;
            s->v[0] += p->slots[i].v[0];
            if (s->v[0] > best || (s->v[0] == best && s->key < auction)) {
                best = s->v[0];
                auction = s->key;
            }
        }
    }
    if (best) {
        s_row_t r = {.auction = auction, .price = best, .start = end - S_Q5_SIZE, .end = end};
        s_out(w, &r);
    }
    return 0;
}

/* Slot of the pane starting at `start` in the ring of panes. */
static int s_q5_slot(int64_t start)
{
    int64_t k = start / S_Q5_SLIDE % S_Q5_PANES;
    return (int)(k < 0 ? k + S_Q5_PANES : k);
}

/* q5: the newest pane becomes the one starting at `start` (or the input
 * ends, start = S_EMPTY): every window ending at a pane boundary up to it
 * fires, and each new pane takes the slot of the one no window needs any
 * more. */
static int s_q5_advance(s_win_t *w, int64_t start)
{
    if (w->cur == S_EMPTY) {
        w->cur = start;
        s_map_clear(&w->panes[s_q5_slot(start)]);
        w->pane_start[s_q5_slot(start)] = start;
        return 0;
    }
    /* at the end, the last window holding the newest pane starts with it */
    int64_t until = start == S_EMPTY ? w->cur + S_Q5_SIZE : start;
    while (w->cur < until) {
        if (s_q5_window(w, w->cur + S_Q5_SLIDE))
            return -1;
        w->cur += S_Q5_SLIDE;
        int k = s_q5_slot(w->cur);
        s_map_clear(&w->panes[k]);
        w->pane_start[k] = w->cur;
    }
    return 0;
}

static int s_q5_bid(s_win_t *w, const sl_nexmark_event_t *e)
{
    int64_t ps = s_align(e->date_time, S_Q5_SLIDE);
    if ((w->cur == S_EMPTY || ps > w->cur) && s_q5_advance(w, ps))
        return -1;
    s_slot_t *s = s_map_get(&w->panes[s_q5_slot(ps)], e->bid.auction);
    if (!s)
        return -1;
    s->v[0]++;
    return 0;
}

/* The row (auction, bidder, price, date_time, extra) of a q7 bid in the
 * engine's row encoding (sluice/row.h), as the window operator compares
 * the rows of equal prices. Returns its length. */
static size_t s_q7_row(const sl_nexmark_bid_t *b, int64_t t, const char *extra, uint8_t *buf)
{
    size_t xl = strlen(extra), fixed = 4 + 1 + 5 * 8, len = fixed + xl;
    uint64_t slots[5] = {(uint64_t)b->auction, (uint64_t)b->bidder, (uint64_t)b->price, (uint64_t)t,
                         (uint64_t)fixed | (uint64_t)xl << 32};
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(len >> (8 * i));
    buf[4] = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 8; i++)
            buf[5 + 8 * k + i] = (uint8_t)(slots[k] >> (8 * i));
    memcpy(buf + fixed, extra, xl);
    return len;
}

static void s_q7_emit(s_win_t *w)
{
    s_row_t r = {.auction = w->best.auction,
                 .bidder = w->best.bidder,
                 .price = w->best.price,
                 .date_time = w->best_time,
                 .extra = s_view(w->best_extra),
                 .start = w->cur,
                 .end = w->cur + S_Q7_SIZE};
    s_out(w, &r);
}

static void s_q7_bid(s_win_t *w, const sl_nexmark_event_t *e)
{
    int64_t ws = s_align(e->date_time, S_Q7_SIZE);
    if (ws != w->cur) {
        if (w->cur != S_EMPTY)
            s_q7_emit(w);
        w->cur = ws;
        w->best_time = S_EMPTY;
    }
    bool take = w->best_time == S_EMPTY || e->bid.price > w->best.price;
    if (!take && e->bid.price == w->best.price) {
        static uint8_t ra[1024], rb[1024];
        size_t la = s_q7_row(&e->bid, e->date_time, e->extra, ra);
        size_t lb = s_q7_row(&w->best, w->best_time, w->best_extra, rb);
        int c = memcmp(ra, rb, la < lb ? la : lb);
        take = c ? c < 0 : la < lb;
    }
    if (take) {
        w->best = e->bid;
        w->best_time = e->date_time;
        memcpy(w->best_extra, e->extra, strlen(e->extra) + 1);
    }
}

static void s_q11_emit(s_win_t *w, const s_slot_t *s)
{
    s_row_t r = {.bidder = s->key, .price = s->v[2], .start = s->v[0], .end = s->v[1] + S_Q11_GAP};
    s_out(w, &r);
}

/* q11: emits the sessions no bid at time `now` or later can extend (all of
 * them when now is INT64_MAX) and keeps the others. */
static int s_q11_sweep(s_win_t *w, int64_t now)
{
    s_map_t keep;
    if (s_map_init(&keep, w->sessions.cap))
        return -1;
    for (size_t i = 0; i < w->sessions.cap; i++) {
        const s_slot_t *s = &w->sessions.slots[i];
        if (s->key == S_EMPTY)
            continue;
        if (now == INT64_MAX || s->v[1] + S_Q11_GAP <= now)
            s_q11_emit(w, s);
        else
            *s_map_get(&keep, s->key) = *s;
    }
    free(w->sessions.slots);
    w->sessions = keep;
    w->swept = now;
    return 0;
}

static int s_q11_bid(s_win_t *w, const sl_nexmark_event_t *e)
{
    int64_t t = e->date_time;
    if (t - w->swept >= 1000 && s_q11_sweep(w, t))
        return -1;
    s_slot_t *s = s_map_get(&w->sessions, e->bid.bidder);
    if (!s)
        return -1;
    if (s->v[2] && t >= s->v[1] + S_Q11_GAP) {
        s_q11_emit(w, s); /* the gap closed the session */
        s->v[2] = 0;
    }
    if (!s->v[2])
        s->v[0] = t;
    s->v[1] = t;
    s->v[2]++;
    return 0;
}

/* Runs windowed query 5, 7 or 11 over the events; prints its line. */
static int s_windowed(const char *q, int query, const sl_nexmark_cfg_t *cfg, long long events)
{
    static s_win_t w;
    w.query = query;
    w.cur = S_EMPTY;
    w.swept = INT64_MIN / 2;
    int bad = s_map_init(&w.sum, 1024) || s_map_init(&w.sessions, 4096);
    for (int k = 0; k < S_Q5_PANES; k++) {
        bad = bad || s_map_init(&w.panes[k], 1024);
        w.pane_start[k] = S_EMPTY;
    }
    static sl_nexmark_event_t e;
    for (long long n = 0; !bad && n < events; n++) {
        if (sl_nexmark_event(cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ceiling: event %lld failed\n", n);
            return 1;
        }
        if (e.kind != SL_NEXMARK_BID)
            continue;
        if (query == 5)
            bad = s_q5_bid(&w, &e);
        else if (query == 7)
            s_q7_bid(&w, &e);
        else
            bad = s_q11_bid(&w, &e);
    }
    /* the end of the input: every open window fires */
    if (!bad && query == 5 && w.cur != S_EMPTY)
        bad = s_q5_advance(&w, S_EMPTY);
    else if (!bad && query == 7 && w.cur != S_EMPTY)
        s_q7_emit(&w);
    else if (!bad && query == 11)
        bad = s_q11_sweep(&w, INT64_MAX);
    free(w.sum.slots);
    free(w.sessions.slots);
    for (int k = 0; k < S_Q5_PANES; k++)
        free(w.panes[k].slots);
    if (bad) {
        fprintf(stderr, "nexmark_ceiling: out of memory\n");
        return 1;
    }
    printf("query=%s events=%lld rows=%lld checksum=%016llx\n", q, events, w.rows,
           (unsigned long long)w.h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr,
                "usage: nexmark_ceiling q0|q1|q2|q5|q7|q11|q14|q21|q22 EVENTS SEED [EVENT_RATE]\n");
        return 2;
    }
    const char *q = argv[1];
    static const char *const queries[] = {"q0", "q1", "q2", "q5", "q7", "q11", "q14", "q21", "q22"};
    static const int numbers[] = {0, 1, 2, 5, 7, 11, 14, 21, 22};
    int query = -1;
    for (int i = 0; i < 9; i++)
        if (!strcmp(q, queries[i]))
            query = numbers[i];
    if (query < 0) {
        fprintf(stderr,
                "nexmark_ceiling: unknown query '%s' (q0, q1, q2, q5, q7, q11, q14, q21 or q22)\n",
                q);
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
    if (argc == 5) {
        long long rate = strtoll(argv[4], &end, 10);
        if (!*argv[4] || *end || rate < 1 || rate > 1000000000) {
            fprintf(stderr, "nexmark_ceiling: bad event rate '%s' (1..1000000000)\n", argv[4]);
            return 2;
        }
        cfg.event_rate = rate;
    }
    if (query > 2 && query < 14)
        return s_windowed(q, query, &cfg, events);
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
        } else if (query == 14) {
            if (!(b->price * 908 > 1000000000LL && b->price * 908 < 50000000000LL))
                continue;
            r.auction = b->auction;
            r.bidder = b->bidder;
            r.price = b->price * 908 / 1000;
            r.tag = s_time_type(e.date_time);
            r.date_time = e.date_time;
            r.extra = s_view(e.extra);
            for (const char *p = e.extra; *p; p++)
                r.count += *p == 'c';
        } else if (query == 21) {
            r.tag = s_channel_id(b->channel, b->url);
            if (!r.tag.p)
                continue;
            r.auction = b->auction;
            r.bidder = b->bidder;
            r.price = b->price;
            r.channel = s_view(b->channel);
        } else if (query == 22) {
            r.auction = b->auction;
            r.bidder = b->bidder;
            r.price = b->price;
            r.channel = s_view(b->channel);
            for (int i = 0; i < 3; i++)
                r.dir[i] = s_field(b->url, 3 + i);
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
