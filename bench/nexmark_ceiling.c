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
 *       QUERY: q0, q1, q2, q4, q5, q7, q9, q11, q13-q22 but q12; EVENT_RATE:
 *       events per second of event time (default 10 000, the source's
 *       `event_rate`)
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
 * The joins, daily statistics and per-key top-N, also streaming:
 *   q4, q9  a ring of open auctions indexed by id, with the best bid
 *        between date_time and expires so far; an auction counts (q4: into
 *        per-category sums) or is emitted (q9) when its slot is reused or
 *        the input ends
 *   q13  the side table (side-KEY for keys 0..9999) in an array
 *   q15-q17  hash sets of the day's (channel, bidder) and (channel,
 *        auction) with the mask of their price ranges, counters per
 *        channel (q16) or per auction (q17), emitted when the day ends
 *   q18, q19  the last bid / the top 10 of each live (bidder, auction) /
 *        auction, emitted once the auction is over 100 behind the newest
 *        (no bid can name it any more)
 *   q20  the ring of category-10 auctions, and the bids on auctions not
 *        created yet until their auction comes
 *
 * Generation goes through sl_nexmark_gen_event (per-channel caches, as the
 * `nexmark` source) and, for the queries that never read `extra` (all but
 * q0, q1, q7, q9, q14, q18, q19, q20), without the extra
 * (SL_NEXMARK_GEN_NO_EXTRA), as the source leaves out the columns no
 * operator of the job reads.
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

/* The generator of the run (main creates it; freed at exit). */
static sl_nexmark_gen_t *s_gen;

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
static int s_windowed(const char *q, int query, long long events)
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
        if (sl_nexmark_gen_event(s_gen, (uint64_t)n, &e)) {
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

/* ---- q4, q9, q13, q15-q20 --------------------------------------------------------- */

/* An open auction of q4, q9, q20 in a ring indexed by id: auctions are
 * created in id order and bid on only while among the last 100 (or up to
 * 10 ahead), so a ring of S_RING slots holds every auction a bid can name. */
#define S_RING 4096
typedef struct {
    int64_t id;                           /* S_EMPTY: free */
    int64_t t;                            /* date_time */
    int64_t expires;                      /* q4, q9 */
    int64_t category;                     /* q4, q20 */
    int64_t best;                         /* q4, q9: the winning price so far, -1 none */
    int64_t best_t;                       /* q9: its time */
    int64_t bidder;                       /* q9: its bidder */
    sl_nexmark_auction_t a;               /* q9, q20: the auction's fields */
    char extra[SL_NEXMARK_EXTRA_CAP];     /* q9, q20: the auction's extra */
    char bid_extra[SL_NEXMARK_EXTRA_CAP]; /* q9: the winning bid's extra */
} s_open_t;

/* The state of q4, q9, q13, q15-q20, and its output. */
typedef struct {
    int query;
    uint64_t h;
    long long rows;
    s_open_t *ring;                             /* q4, q9, q20: S_RING open auctions */
    int64_t oldest;                             /* q4, q9: the oldest auction id not closed yet */
    int64_t newest;                             /* q4, q9: the newest auction id */
    int64_t cat_n[SL_NEXMARK_NUM_CATEGORIES];   /* q4: winning bids per category */
    int64_t cat_sum[SL_NEXMARK_NUM_CATEGORIES]; /* q4: their sum */
    char side[10000][16];                       /* q13: the side table's values */
    int64_t day;                                /* q15-q17: the current day (S_EMPTY: none yet) */
    s_map_t set_b, set_a;  /* q15, q16: distinct bidders / auctions of the day: key -> range mask */
    int64_t *ch;           /* q16: per channel number 15 counters, see s_q16_flush */
    size_t nch;            /* q16: channels */
    int64_t *auc;          /* q17: per auction id - 1000 and day 7 counters + touched flag */
    int64_t *touched;      /* q17: the auctions touched in the day */
    size_t ntouched, nauc; /* q17 */
    s_map_t last;          /* q18: (bidder, auction) -> slot in bids; q19: auction -> slot */
    sl_nexmark_event_t *bids; /* q18: the last bid per pair; q19: 10 per auction */
    size_t nbids, capbids;
    int64_t swept_auction;       /* q18, q19: auctions below this one were emitted */
    sl_nexmark_event_t *pending; /* q20: bids on auctions not created yet */
    size_t npending;             /* q20 */
} s_more_t;

#define S_PENDING 4096

/* q4, q9: closes auction slot o: its winning bid counts. */
static void s_close(s_more_t *m, s_open_t *o)
{
    if (o->best >= 0) {
        if (m->query == 4) {
            m->cat_n[o->category - SL_NEXMARK_FIRST_CATEGORY_ID]++;
            m->cat_sum[o->category - SL_NEXMARK_FIRST_CATEGORY_ID] += o->best;
        } else {
            s_row_t r = {.auction = o->id,
                         .bidder = o->bidder,
                         .price = o->best,
                         .date_time = o->best_t,
                         .start = o->t,
                         .end = o->expires,
                         .channel = s_view(o->a.item_name),
                         .url = s_view(o->a.description),
                         .extra = s_view(o->bid_extra),
                         .tag = s_view(o->extra),
                         .count = o->a.seller * 16 + o->a.category};
            m->h = s_fold(m->h, &r);
            m->rows++;
        }
    }
    o->id = S_EMPTY;
}

/* q4, q9, q20: an auction opens (closing, for q4 and q9, the oldest ones
 * whose expiry the event time passed). */
static int s_open_auction(s_more_t *m, const sl_nexmark_event_t *e)
{
    s_open_t *o = &m->ring[e->auction.id % S_RING];
    if (o->id != S_EMPTY) {
        if (m->query == 20 || o->expires < e->date_time)
            s_close(m, o);
        else {
            fprintf(stderr, "nexmark_ceiling: more than %d auctions open\n", S_RING);
            return -1;
        }
    }
    o->id = e->auction.id;
    o->t = e->date_time;
    o->expires = e->auction.expires;
    o->category = e->auction.category;
    o->best = -1;
    if (m->query != 4) {
        o->a = e->auction;
        memcpy(o->extra, e->extra, strlen(e->extra) + 1);
    }
    m->newest = e->auction.id;
    return 0;
}

/* q20: a bid with its auction. */
static void s_q20_row(s_more_t *m, const sl_nexmark_event_t *e, const s_open_t *o)
{
    s_row_t r = {.auction = e->bid.auction,
                 .bidder = e->bid.bidder,
                 .price = e->bid.price,
                 .channel = s_view(e->bid.channel),
                 .url = s_view(e->bid.url),
                 .date_time = e->date_time,
                 .extra = s_view(e->extra),
                 .start = o->t,
                 .end = o->expires,
                 .tag = s_view(o->extra),
                 .dir = {s_view(o->a.item_name), s_view(o->a.description)},
                 .count = o->a.seller * 16 + o->a.category + o->a.initial_bid + o->a.reserve};
    m->h = s_fold(m->h, &r);
    m->rows++;
}

/* q20: auction id was created (in the ring o when of category 10): the
 * bids that waited for it meet it. */
static void s_q20_pending(s_more_t *m, int64_t id, const s_open_t *o)
{
    size_t keep = 0;
    for (size_t i = 0; i < m->npending; i++) {
        const sl_nexmark_event_t *p = &m->pending[i];
        if (p->bid.auction == id) {
            if (o)
                s_q20_row(m, p, o);
            continue;
        }
        if (keep != i)
            m->pending[keep] = *p;
        keep++;
    }
    m->npending = keep;
}

/* q4, q9: a bid; q20: a bid with its auction. */
static int s_auction_bid(s_more_t *m, const sl_nexmark_event_t *e)
{
    if (m->query == 20 && e->bid.auction > m->newest) {
        if (m->npending == S_PENDING) {
            fprintf(stderr, "nexmark_ceiling: more than %d bids ahead of their auction\n",
                    S_PENDING);
            return -1;
        }
        m->pending[m->npending++] = *e;
        return 0;
    }
    s_open_t *o = &m->ring[e->bid.auction % S_RING];
    if (o->id != e->bid.auction)
        return 0; /* q4, q9: not created yet (or q20: not of category 10) */
    if (m->query == 20) {
        s_q20_row(m, e, o);
        return 0;
    }
    if (e->date_time < o->t || e->date_time > o->expires)
        return 0;
    if (e->bid.price > o->best || (e->bid.price == o->best && e->date_time < o->best_t)) {
        o->best = e->bid.price;
        o->best_t = e->date_time;
        if (m->query == 9) {
            o->bidder = e->bid.bidder;
            memcpy(o->bid_extra, e->extra, strlen(e->extra) + 1);
        }
    }
    return 0;
}

/* q15, q16, q17: the price range of a bid, 1..3. */
static int s_range(int64_t price)
{
    return price < 10000 ? 1 : price < 1000000 ? 2 : 3;
}

/* q16: the number of a channel: 0..3 the big four, 4 + N channel-N. */
static size_t s_channel_no(const char *c)
{
    static const char *const big[] = {"Google", "Facebook", "Baidu", "Apple"};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(c, big[i]))
            return i;
    return 4 + (size_t)strtoul(c + 8, NULL, 10);
}

/* q16's counters per channel: bids, 3 ranges, distinct bidders (4),
 * distinct auctions (4), last time, used. */
#define S_Q16_W 15

/* q15, q16, q17: the day ended: its rows. */
static void s_day_flush(s_more_t *m)
{
    if (m->day == S_EMPTY)
        return;
    if (m->query == 17) {
        for (size_t i = 0; i < m->ntouched; i++) {
            int64_t *c = &m->auc[m->touched[i] * 8];
            s_row_t r = {.auction = m->touched[i] + SL_NEXMARK_FIRST_AUCTION_ID,
                         .start = m->day,
                         .bidder = c[0] * 1000003 + c[1] * 1009 + c[2] * 31 + c[3],
                         .price = c[6] / c[0],
                         .date_time = c[4],
                         .end = c[5] ^ c[6]};
            m->h = s_fold(m->h, &r);
            m->rows++;
            memset(c, 0, 8 * sizeof *c);
        }
        m->ntouched = 0;
        return;
    }
    /* distinct counts from the sets: per key, the mask of its ranges */
    const s_map_t *sets[2] = {&m->set_b, &m->set_a};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s]->cap; i++) {
            const s_slot_t *x = &sets[s]->slots[i];
            if (x->key == S_EMPTY)
                continue;
            int64_t *c = &m->ch[(size_t)x->v[1] * S_Q16_W + 4 + 4 * (size_t)s];
            c[0]++;
            for (int r = 1; r <= 3; r++)
                c[r] += (x->v[0] >> r) & 1;
        }
    for (size_t k = 0; k < m->nch; k++) {
        int64_t *c = &m->ch[k * S_Q16_W];
        if (!c[14])
            continue;
        s_row_t r = {.auction = (int64_t)k, .start = m->day, .date_time = c[12]};
        for (int j = 0; j < 12; j++)
            r.price = r.price * 31 + c[j];
        m->h = s_fold(m->h, &r);
        m->rows++;
        memset(c, 0, S_Q16_W * sizeof *c);
    }
    s_map_clear(&m->set_b);
    s_map_clear(&m->set_a);
}

/* q15, q16, q17: a bid. */
static int s_stats_bid(s_more_t *m, const sl_nexmark_event_t *e)
{
    int64_t day = s_align(e->date_time, 86400000);
    if (day != m->day) {
        s_day_flush(m);
        m->day = day;
    }
    int r = s_range(e->bid.price);
    if (m->query == 17) {
        size_t k = (size_t)(e->bid.auction - SL_NEXMARK_FIRST_AUCTION_ID);
        if (k >= m->nauc) {
            size_t n = k * 2 + 1024;
            int64_t *a = realloc(m->auc, n * 8 * sizeof *a),
                    *t = realloc(m->touched, n * sizeof *t);
            if (a)
                m->auc = a;
            if (t)
                m->touched = t;
            if (!a || !t)
                return -1;
            memset(a + m->nauc * 8, 0, (n - m->nauc) * 8 * sizeof *a);
            m->nauc = n;
        }
        int64_t *c = &m->auc[k * 8];
        if (!c[0]) {
            m->touched[m->ntouched++] = (int64_t)k;
            c[4] = INT64_MAX;
            c[5] = INT64_MIN;
        }
        c[0]++;
        c[r]++;
        c[4] = e->bid.price < c[4] ? e->bid.price : c[4];
        c[5] = e->bid.price > c[5] ? e->bid.price : c[5];
        c[6] += e->bid.price;
        return 0;
    }
    size_t ch = m->query == 16 ? s_channel_no(e->bid.channel) : 0;
    if (ch >= m->nch) {
        size_t n = ch + 1024;
        int64_t *a = realloc(m->ch, n * S_Q16_W * sizeof *a);
        if (!a)
            return -1;
        memset(a + m->nch * S_Q16_W, 0, (n - m->nch) * S_Q16_W * sizeof *a);
        m->ch = a;
        m->nch = n;
    }
    int64_t *c = &m->ch[ch * S_Q16_W];
    c[0]++;
    c[r]++;
    c[12] = e->date_time;
    c[14] = 1;
    /* the sets are keyed by (channel, id): ids stay below 2^40 */
    s_slot_t *sb = s_map_get(&m->set_b, (int64_t)ch << 40 | e->bid.bidder);
    s_slot_t *sa = s_map_get(&m->set_a, (int64_t)ch << 40 | e->bid.auction);
    if (!sb || !sa)
        return -1;
    sb->v[0] |= 1 << r;
    sb->v[1] = (int64_t)ch;
    sa->v[0] |= 1 << r;
    sa->v[1] = (int64_t)ch;
    return 0;
}

/* q18, q19: emits the kept bids of auctions below `below` (every auction
 * when below is INT64_MAX) and keeps the others. */
static int s_dedup_sweep(s_more_t *m, int64_t below)
{
    size_t keep = 0;
    s_map_clear(&m->last);
    int per = m->query == 19 ? 10 : 1;
    for (size_t i = 0; i < m->nbids; i += (size_t)per) {
        const sl_nexmark_event_t *e = &m->bids[i];
        if (e->bid.auction < below) {
            for (int j = 0; j < per && e[j].kind == SL_NEXMARK_BID; j++) {
                s_row_t r = {.auction = e[j].bid.auction,
                             .bidder = e[j].bid.bidder,
                             .price = e[j].bid.price,
                             .channel = s_view(e[j].bid.channel),
                             .url = s_view(e[j].bid.url),
                             .date_time = e[j].date_time,
                             .extra = s_view(e[j].extra),
                             .start = j + 1};
                m->h = s_fold(m->h, &r);
                m->rows++;
            }
            continue;
        }
        if (keep != i)
            memmove(&m->bids[keep], e, (size_t)per * sizeof *e);
        int64_t key = m->query == 19 ? e->bid.auction : e->bid.bidder << 32 | e->bid.auction;
        s_slot_t *s = s_map_get(&m->last, key);
        if (!s)
            return -1;
        s->v[0] = (int64_t)keep;
        s->v[2] = 1;
        keep += (size_t)per;
    }
    m->nbids = keep;
    m->swept_auction = below;
    return 0;
}

/* q18: the bid replaces its pair's last; q19: it enters its auction's top
 * 10 (price descending, then earliest). Every 1 000 auctions, the
 * auctions no bid can name any more (100 behind the newest) are emitted. */
static int s_dedup_bid(s_more_t *m, uint64_t n, const sl_nexmark_event_t *e)
{
    /* a bid names one of the last 100 auctions or one ahead */
    int64_t gone = sl_nexmark_last_auction(n) + SL_NEXMARK_FIRST_AUCTION_ID - 110;
    if (gone > m->swept_auction + 1000 && s_dedup_sweep(m, gone))
        return -1;
    int per = m->query == 19 ? 10 : 1;
    int64_t key = m->query == 19 ? e->bid.auction : e->bid.bidder << 32 | e->bid.auction;
    s_slot_t *s = s_map_get(&m->last, key);
    if (!s)
        return -1;
    if (!s->v[2]) { /* a new key: its slots at the end */
        if (m->nbids + (size_t)per > m->capbids) {
            size_t cap = m->capbids * 2 + 64 * (size_t)per;
            sl_nexmark_event_t *b = realloc(m->bids, cap * sizeof *b);
            if (!b)
                return -1;
            m->bids = b;
            m->capbids = cap;
        }
        s->v[0] = (int64_t)m->nbids;
        s->v[2] = 1;
        for (int j = 0; j < per; j++)
            m->bids[m->nbids + (size_t)j].kind = SL_NEXMARK_PERSON; /* an empty slot */
        m->nbids += (size_t)per;
    }
    sl_nexmark_event_t *slot = &m->bids[s->v[0]];
    if (m->query == 18) {
        if (slot->kind != SL_NEXMARK_BID || e->date_time >= slot->date_time)
            *slot = *e;
        return 0;
    }
    int j = 0;
    while (j < 10 && slot[j].kind == SL_NEXMARK_BID &&
           (slot[j].bid.price > e->bid.price ||
            (slot[j].bid.price == e->bid.price && slot[j].date_time <= e->date_time)))
        j++;
    if (j == 10)
        return 0;
    memmove(&slot[j + 1], &slot[j], (size_t)(9 - j) * sizeof *slot);
    slot[j] = *e;
    return 0;
}

/* Runs q4, q9, q13, q15-q20 over the events; prints its line. */
static int s_more(const char *q, int query, long long events)
{
    static s_more_t m;
    m.query = query;
    m.day = S_EMPTY;
    m.swept_auction = INT64_MIN / 2;
    int bad = 0;
    if (query == 4 || query == 9 || query == 20) {
        m.ring = malloc(S_RING * sizeof *m.ring);
        m.pending = query == 20 ? malloc(S_PENDING * sizeof *m.pending) : NULL;
        m.newest = SL_NEXMARK_FIRST_AUCTION_ID - 1;
        bad = !m.ring || (query == 20 && !m.pending);
        for (int i = 0; !bad && i < S_RING; i++)
            m.ring[i].id = S_EMPTY;
    }
    if (query == 13) /* the bounded side input, as jobs/nexmark/side_input.csv */
        for (int k = 0; k < 10000; k++)
            snprintf(m.side[k], sizeof m.side[k], "side-%d", k);
    if (query == 15 || query == 16)
        bad = s_map_init(&m.set_b, 4096) || s_map_init(&m.set_a, 4096);
    if (query == 18 || query == 19)
        bad = s_map_init(&m.last, 4096);
    static sl_nexmark_event_t e;
    for (long long n = 0; !bad && n < events; n++) {
        if (sl_nexmark_gen_event(s_gen, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ceiling: event %lld failed\n", n);
            return 1;
        }
        if (e.kind == SL_NEXMARK_AUCTION && m.ring) {
            if (query == 20 && e.auction.category != 10) {
                m.newest = e.auction.id;
                s_q20_pending(&m, e.auction.id, NULL);
                continue;
            }
            bad = s_open_auction(&m, &e);
            if (query == 20)
                s_q20_pending(&m, e.auction.id, &m.ring[e.auction.id % S_RING]);
        }
        if (e.kind != SL_NEXMARK_BID)
            continue;
        if (m.ring)
            bad = s_auction_bid(&m, &e);
        else if (query == 13) {
            s_row_t r = {.auction = e.bid.auction,
                         .bidder = e.bid.bidder,
                         .price = e.bid.price,
                         .date_time = e.date_time,
                         .tag = s_view(m.side[e.bid.auction % 10000])};
            m.h = s_fold(m.h, &r);
            m.rows++;
        } else if (query >= 15 && query <= 17)
            bad = s_stats_bid(&m, &e);
        else
            bad = s_dedup_bid(&m, (uint64_t)n, &e);
    }
    /* the end of the input */
    if (!bad && (query == 4 || query == 9))
        for (int i = 0; i < S_RING; i++)
            if (m.ring[i].id != S_EMPTY)
                s_close(&m, &m.ring[i]);
    if (!bad && query == 4)
        for (int c = 0; c < SL_NEXMARK_NUM_CATEGORIES; c++)
            if (m.cat_n[c]) {
                s_row_t r = {
                    .auction = c, .price = m.cat_sum[c] / m.cat_n[c], .bidder = m.cat_n[c]};
                m.h = s_fold(m.h, &r);
                m.rows++;
            }
    if (!bad && query >= 15 && query <= 17)
        s_day_flush(&m);
    if (!bad && (query == 18 || query == 19))
        bad = s_dedup_sweep(&m, INT64_MAX);
    free(m.ring);
    free(m.set_b.slots);
    free(m.set_a.slots);
    free(m.ch);
    free(m.auc);
    free(m.touched);
    free(m.last.slots);
    free(m.bids);
    free(m.pending);
    if (bad) {
        fprintf(stderr, "nexmark_ceiling: out of memory\n");
        return 1;
    }
    printf("query=%s events=%lld rows=%lld checksum=%016llx\n", q, events, m.rows,
           (unsigned long long)m.h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: nexmark_ceiling QUERY EVENTS SEED [EVENT_RATE]\n"
                        "  QUERY: q0, q1, q2, q4, q5, q7, q9, q11, q13, q14, q15, q16, q17, "
                        "q18, q19, q20, q21 or q22\n");
        return 2;
    }
    const char *q = argv[1];
    static const char *const queries[] = {"q0",  "q1",  "q2",  "q5",  "q7",  "q11",
                                          "q14", "q21", "q22", "q4",  "q9",  "q13",
                                          "q15", "q16", "q17", "q18", "q19", "q20"};
    static const int numbers[] = {0, 1, 2, 5, 7, 11, 14, 21, 22, 4, 9, 13, 15, 16, 17, 18, 19, 20};
    int query = -1;
    for (int i = 0; i < 18; i++)
        if (!strcmp(q, queries[i]))
            query = numbers[i];
    if (query < 0) {
        fprintf(stderr,
                "nexmark_ceiling: unknown query '%s' (q0, q1, q2, q4, q5, q7, q9, q11, q13, q14, "
                "q15, q16, q17, q18, q19, q20, q21 or q22)\n",
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
    bool extra = query == 0 || query == 1 || query == 7 || query == 9 || query == 14 ||
                 query == 18 || query == 19 || query == 20;
    if (sl_nexmark_gen_new(&cfg, extra ? 0 : SL_NEXMARK_GEN_NO_EXTRA, &s_gen)) {
        fprintf(stderr, "nexmark_ceiling: cannot create the generator\n");
        return 1;
    }
    if (query == 4 || query == 9 || query == 13 || (query >= 15 && query <= 20))
        return s_more(q, query, events);
    if (query > 2 && query < 14)
        return s_windowed(q, query, events);
    static sl_nexmark_event_t e;
    uint64_t h = 0;
    long long rows = 0;
    for (long long n = 0; n < events; n++) {
        /* every event is generated, as the `nexmark` source does: the
         * input is not free for the ceiling either */
        if (sl_nexmark_gen_event(s_gen, (uint64_t)n, &e)) {
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
