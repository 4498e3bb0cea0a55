/* nexmark_ref.c — reference results of the Nexmark queries of
 * jobs/nexmark/ by a straight C loop over sl_nexmark_event, independent of
 * the engine's operators and writers: the scenario test compares the
 * engine's output with this, and it is the bare-loop baseline of a
 * benchmark.
 *
 *   nexmark_ref QUERY EVENTS SEED OUTPUT.csv [EVENT_RATE]
 *       QUERY: any of q0-q22 but q6, q10 and q12; EVENT_RATE: events
 *       per second of event time (default 10 000, the source's `event_rate`)
 *
 * Writes the CSV the file sink writes: a header, then one row per result,
 * fields quoted only when empty or holding ',', '"', CR or LF, timestamps
 * as YYYY-MM-DDTHH:MM:SS.mmmZ. Uses the default event model of the
 * `nexmark` source (first event time 2024-01-01T00:00:00Z).
 *
 * The windowed queries keep every bid in memory and compute each window
 * from scratch over the bids whose date_time falls in it (windows aligned
 * to epoch 0, every window holding a bid gives a row):
 *   q5   for each sliding window of 10 s every 2 s, the auction with the
 *        most bids, ties to the smallest auction id (as jobs/nexmark/q5.yaml
 *        ranks by num * 10^9 - auction)
 *   q7   for each tumbling window of 10 s, the bid with the highest price,
 *        ties to the bid whose row (auction, bidder, price, date_time,
 *        extra) is the smallest in the engine's row encoding (sluice/row.h),
 *        compared bytewise, which is how the window operator ranks ties
 *   q11  per bidder, sessions of bids less than 10 s apart: first bid's
 *        time, last bid's time + 10 s, number of bids
 *
 * The string queries parse by hand, independently of the expression
 * language's functions:
 *   q14  bids with price * 908 in (10^9, 5 * 10^10): price * 908 / 1000,
 *        the part of the day from the UTC hour, the number of 'c' in extra
 *   q21  bids of the four big channels (by lower-case name) or whose url has
 *        "channel_id=" at its start or after a '&': the id is the channel's
 *        number, else the url's text after "channel_id=" up to a '&'
 *   q22  bids with fields 3, 4, 5 (0-based) of the url split at '/'
 *
 * The queries of joins, sessions and day windows follow the SQL with no
 * event-time bound (the jobs' bounds are what the comparison checks):
 *   q4, q9  per auction, the highest bid between its date_time and its
 *        expires (both included), the earliest of equal prices; q4
 *        averages them per category (int64 sum / count), q9 writes them
 *   q13  every bid with side-(auction % 10000), the table of
 *        jobs/nexmark/side_input.csv
 *   q15-q17  the bids sorted by group (day; channel and day; auction and
 *        day), counts per price range, distinct values by sorting
 *   q18, q19  the bids sorted by (bidder, auction, time) / (auction, price
 *        descending, time): the last of each pair / the first 10
 *   q20  every bid whose auction (looked up by id) exists and has
 *        category 10, with the auction */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/nexmark.h"

/* The windows of the windowed queries (ms). */
#define S_Q5_SIZE 10000
#define S_Q5_SLIDE 2000
#define S_Q7_SIZE 10000
#define S_Q11_GAP 10000

/* A CSV string field. */
static void s_str(FILE *f, const char *s)
{
    if (*s && !strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void s_civil(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* A timestamp field: ISO-8601 UTC with milliseconds. */
static void s_ts(FILE *f, int64_t ms)
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rest = ms - days * 86400000;
    int64_t y;
    int m, d;
    s_civil(days, &y, &m, &d);
    fprintf(f, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rest / 3600000),
            (int)(rest / 60000 % 60), (int)(rest / 1000 % 60), (int)(rest % 1000));
}

/* Start of the window of size `size` (aligned to epoch 0) holding t. */
static int64_t s_align(int64_t t, int64_t size)
{
    return t - ((t % size) + size) % size;
}

/* One bid of a windowed query, in event order (so in date_time order). */
typedef struct {
    int64_t t;       /* date_time */
    int64_t auction; /* the auction bid on */
    int64_t bidder;  /* a person id */
    int64_t price;   /* cents */
    uint64_t n;      /* event number (q7 regenerates extra from it) */
} s_bid_t;

/* Every bid of events 0 .. events-1, in *out (caller frees). Returns the
 * count, or -1 after a message. */
static long long s_collect(const sl_nexmark_cfg_t *cfg, long long events, s_bid_t **out)
{
    long long cap = events / SL_NEXMARK_TOTAL_PROPORTION * SL_NEXMARK_BID_PROPORTION +
                    SL_NEXMARK_BID_PROPORTION;
    s_bid_t *b = malloc((size_t)cap * sizeof *b);
    if (!b) {
        fprintf(stderr, "nexmark_ref: out of memory\n");
        return -1;
    }
    static sl_nexmark_event_t e;
    long long nb = 0;
    for (long long n = 0; n < events; n++) {
        if (sl_nexmark_kind((uint64_t)n) != SL_NEXMARK_BID)
            continue;
        if (sl_nexmark_event(cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ref: event %lld failed\n", n);
            free(b);
            return -1;
        }
        b[nb++] = (s_bid_t){e.date_time, e.bid.auction, e.bid.bidder, e.bid.price, (uint64_t)n};
    }
    *out = b;
    return nb;
}

/* q5: per sliding window, the auction with the most bids (smallest id on
 * ties). Counts of a window live in an array indexed by auction id. */
static int s_q5(FILE *f, const s_bid_t *b, long long nb)
{
    fputs("auction,num,window_start,window_end\n", f);
    if (!nb)
        return 0;
    int64_t amin = b[0].auction, amax = b[0].auction;
    for (long long i = 1; i < nb; i++) {
        if (b[i].auction < amin)
            amin = b[i].auction;
        if (b[i].auction > amax)
            amax = b[i].auction;
    }
    long long *count = calloc((size_t)(amax - amin + 1), sizeof *count);
    if (!count) {
        fprintf(stderr, "nexmark_ref: out of memory\n");
        return 1;
    }
    int64_t first = s_align(b[0].t, S_Q5_SLIDE) - S_Q5_SIZE + S_Q5_SLIDE;
    int64_t last = s_align(b[nb - 1].t, S_Q5_SLIDE);
    long long lo = 0;                /* first bid with t >= s */
    long long windows = 0, ties = 0; /* windows with a row, those with a tie */
    for (int64_t s = first; s <= last; s += S_Q5_SLIDE) {
        while (lo < nb && b[lo].t < s)
            lo++;
        long long hi = lo;
        long long best = 0, nbest = 0;
        int64_t best_auction = 0;
        for (; hi < nb && b[hi].t < s + S_Q5_SIZE; hi++) {
            long long c = ++count[b[hi].auction - amin];
            if (c > best) {
                best = c;
                best_auction = b[hi].auction;
                nbest = 1;
            } else if (c == best) {
                nbest++;
                if (b[hi].auction < best_auction)
                    best_auction = b[hi].auction;
            }
        }
        for (long long i = lo; i < hi; i++)
            count[b[i].auction - amin] = 0;
        if (!best)
            continue; /* no bid in this window: no row */
        windows++;
        ties += nbest > 1;
        fprintf(f, "%lld,%lld,", (long long)best_auction, best);
        s_ts(f, s);
        fputc(',', f);
        s_ts(f, s + S_Q5_SIZE);
        fputc('\n', f);
    }
    free(count);
    fprintf(stderr,
            "nexmark_ref: q5: %lld of %lld windows have several auctions with the most bids\n",
            ties, windows);
    return 0;
}

/* The row (auction, bidder, price, date_time, extra) of a q7 bid in the
 * engine's row encoding (sluice/row.h: u32 length, a null bitmap byte, an
 * 8-byte little-endian slot per field, a string as u32 offset and u32
 * length, then the string bytes), written byte by byte into buf. Returns
 * its length. */
static size_t s_q7_row(const s_bid_t *b, const char *extra, uint8_t *buf)
{
    size_t xl = strlen(extra), fixed = 4 + 1 + 5 * 8, len = fixed + xl;
    uint64_t slots[5] = {(uint64_t)b->auction, (uint64_t)b->bidder, (uint64_t)b->price,
                         (uint64_t)b->t, (uint64_t)fixed | (uint64_t)xl << 32};
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(len >> (8 * i));
    buf[4] = 0; /* no nulls */
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 8; i++)
            buf[5 + 8 * k + i] = (uint8_t)(slots[k] >> (8 * i));
    memcpy(buf + fixed, extra, xl);
    return len;
}

/* Is bid a's row before bid b's among equal prices: bytewise smaller, or
 * a prefix of it. */
static int s_q7_before(const sl_nexmark_cfg_t *cfg, const s_bid_t *a, const s_bid_t *b)
{
    static sl_nexmark_event_t e;
    static uint8_t ra[1024], rb[1024];
    if (sl_nexmark_event(cfg, a->n, &e))
        return 0;
    size_t la = s_q7_row(a, e.extra, ra);
    if (sl_nexmark_event(cfg, b->n, &e))
        return 0;
    size_t lb = s_q7_row(b, e.extra, rb);
    int r = memcmp(ra, rb, la < lb ? la : lb);
    return r ? r < 0 : la < lb;
}

/* q7: per tumbling window, the bid with the highest price. */
static int s_q7(FILE *f, const sl_nexmark_cfg_t *cfg, const s_bid_t *b, long long nb)
{
    fputs("auction,price,bidder,date_time,extra,window_start,window_end\n", f);
    static sl_nexmark_event_t e;
    for (long long lo = 0; lo < nb;) {
        int64_t s = s_align(b[lo].t, S_Q7_SIZE);
        long long best = lo, i = lo + 1;
        for (; i < nb && b[i].t < s + S_Q7_SIZE; i++)
            if (b[i].price > b[best].price ||
                (b[i].price == b[best].price && s_q7_before(cfg, &b[i], &b[best])))
                best = i;
        if (sl_nexmark_event(cfg, b[best].n, &e)) {
            fprintf(stderr, "nexmark_ref: event %llu failed\n", (unsigned long long)b[best].n);
            return 1;
        }
        fprintf(f, "%lld,%lld,%lld,", (long long)b[best].auction, (long long)b[best].price,
                (long long)b[best].bidder);
        s_ts(f, b[best].t);
        fputc(',', f);
        s_str(f, e.extra);
        fputc(',', f);
        s_ts(f, s);
        fputc(',', f);
        s_ts(f, s + S_Q7_SIZE);
        fputc('\n', f);
        lo = i;
    }
    return 0;
}

/* A q11 row: a session of bidder from its first to its last bid. */
static void s_q11_row(FILE *f, int64_t bidder, int64_t first, int64_t last, long long count)
{
    fprintf(f, "%lld,", (long long)bidder);
    s_ts(f, first);
    fputc(',', f);
    s_ts(f, last + S_Q11_GAP);
    fprintf(f, ",%lld\n", count);
}

/* q11: per bidder, sessions of bids less than the gap apart. The open
 * session of each bidder lives in arrays indexed by bidder id. */
static int s_q11(FILE *f, const s_bid_t *b, long long nb)
{
    fputs("bidder,window_start,window_end,bid_count\n", f);
    if (!nb)
        return 0;
    int64_t pmin = b[0].bidder, pmax = b[0].bidder;
    for (long long i = 1; i < nb; i++) {
        if (b[i].bidder < pmin)
            pmin = b[i].bidder;
        if (b[i].bidder > pmax)
            pmax = b[i].bidder;
    }
    size_t np = (size_t)(pmax - pmin + 1);
    int64_t *start = malloc(np * sizeof *start), *lastt = malloc(np * sizeof *lastt);
    long long *count = calloc(np, sizeof *count);
    if (!start || !lastt || !count) {
        fprintf(stderr, "nexmark_ref: out of memory\n");
        free(start);
        free(lastt);
        free(count);
        return 1;
    }
    for (long long i = 0; i < nb; i++) {
        size_t p = (size_t)(b[i].bidder - pmin);
        if (count[p] && b[i].t >= lastt[p] + S_Q11_GAP) {
            s_q11_row(f, pmin + (int64_t)p, start[p], lastt[p], count[p]); /* closed */
            count[p] = 0;
        }
        if (!count[p])
            start[p] = b[i].t;
        lastt[p] = b[i].t;
        count[p]++;
    }
    for (size_t p = 0; p < np; p++) /* at the end of the input every open session closes */
        if (count[p])
            s_q11_row(f, pmin + (int64_t)p, start[p], lastt[p], count[p]);
    free(start);
    free(lastt);
    free(count);
    return 0;
}

/* The UTC hour (0..23) of a timestamp. */
static int s_hour(int64_t ms)
{
    int64_t rest = ms % 86400000;
    return (int)((rest < 0 ? rest + 86400000 : rest) / 3600000);
}

/* q14's bidTimeType. */
static const char *s_time_type(int64_t ms)
{
    int h = s_hour(ms);
    if (h >= 8 && h <= 18)
        return "dayTime";
    if (h <= 6 || h >= 20)
        return "nightTime";
    return "otherTime";
}

/* q21's channel_id: "0".."3" for apple, google, facebook, baidu (any
 * case), else the value of the first channel_id= parameter of url (at its
 * start or after a '&') in *len bytes; NULL when there is none. */
static const char *s_channel_id(const char *channel, const char *url, size_t *len)
{
    static const char *const big[] = {"apple", "google", "facebook", "baidu"};
    static const char *const ids[] = {"0", "1", "2", "3"};
    for (int i = 0; i < 4; i++) {
        size_t k = 0;
        while (channel[k] && big[i][k] &&
               (channel[k] >= 'A' && channel[k] <= 'Z' ? channel[k] + 32 : channel[k]) == big[i][k])
            k++;
        if (!channel[k] && !big[i][k]) {
            *len = 1;
            return ids[i];
        }
    }
    static const char key[] = "channel_id=";
    for (const char *p = url; (p = strstr(p, key)) != NULL; p++) {
        if (p == url || p[-1] == '&') {
            const char *v = p + sizeof key - 1;
            *len = strcspn(v, "&");
            return v;
        }
    }
    return NULL;
}

/* Field i (0-based) of s split at '/': its start and *len; NULL when s has
 * fewer fields. */
static const char *s_field(const char *s, int i, size_t *len)
{
    for (; i > 0; i--) {
        s = strchr(s, '/');
        if (!s)
            return NULL;
        s++;
    }
    *len = strcspn(s, "/");
    return s;
}

/* A CSV string field of n bytes; NULL is a null (an empty field). */
static void s_strn(FILE *f, const char *s, size_t n)
{
    if (!s)
        return;
    char buf[SL_NEXMARK_URL_CAP + 1];
    if (n > SL_NEXMARK_URL_CAP)
        n = SL_NEXMARK_URL_CAP;
    memcpy(buf, s, n);
    buf[n] = '\0';
    s_str(f, buf);
}

/* q14, q21, q22: one row per selected bid. Returns 1 when it was not
 * selected. */
static int s_string_query(FILE *f, const char *q, const sl_nexmark_event_t *e)
{
    const sl_nexmark_bid_t *b = &e->bid;
    size_t n;
    if (!strcmp(q, "q14")) {
        if (!(b->price * 908 > 1000000000LL && b->price * 908 < 50000000000LL))
            return 1;
        long long c = 0;
        for (const char *p = e->extra; *p; p++)
            c += *p == 'c';
        fprintf(f, "%lld,%lld,%lld,%s,", (long long)b->auction, (long long)b->bidder,
                (long long)(b->price * 908 / 1000), s_time_type(e->date_time));
        s_ts(f, e->date_time);
        fputc(',', f);
        s_str(f, e->extra);
        fprintf(f, ",%lld\n", c);
        return 0;
    }
    if (!strcmp(q, "q21")) {
        const char *id = s_channel_id(b->channel, b->url, &n);
        if (!id)
            return 1;
        fprintf(f, "%lld,%lld,%lld,", (long long)b->auction, (long long)b->bidder,
                (long long)b->price);
        s_str(f, b->channel);
        fputc(',', f);
        s_strn(f, id, n);
        fputc('\n', f);
        return 0;
    }
    fprintf(f, "%lld,%lld,%lld,", (long long)b->auction, (long long)b->bidder, (long long)b->price);
    s_str(f, b->channel);
    for (int i = 3; i <= 5; i++) {
        fputc(',', f);
        const char *d = s_field(b->url, i, &n);
        s_strn(f, d, n);
    }
    fputc('\n', f);
    return 0;
}

/* A (person or seller, 10 s window) pair of q8. */
typedef struct {
    int64_t id, w;
} s_pw_t;

static int s_pw_cmp(const void *a, const void *b)
{
    const s_pw_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->w > y->w) - (x->w < y->w);
}

/* q8: the persons who also created an auction in the 10 s tumbling window
 * they were created in: id, name, the window's start. */
static int s_q8(FILE *f, const sl_nexmark_cfg_t *cfg, long long events)
{
    static sl_nexmark_event_t e;
    long long np = 0, na = 0;
    s_pw_t *auc = malloc(((size_t)events / 50 * 3 + 4) * sizeof *auc);
    s_pw_t *per = malloc(((size_t)events / 50 + 2) * sizeof *per);
    char(*names)[SL_NEXMARK_NAME_CAP] = malloc(((size_t)events / 50 + 2) * sizeof *names);
    if (!auc || !per || !names) {
        free(auc);
        free(per);
        free(names);
        return 1;
    }
    for (long long n = 0; n < events; n++) {
        sl_nexmark_kind_t k = sl_nexmark_kind((uint64_t)n);
        if (k == SL_NEXMARK_BID)
            continue;
        if (sl_nexmark_event(cfg, (uint64_t)n, &e))
            return 1;
        int64_t w = e.date_time - ((e.date_time % 10000) + 10000) % 10000;
        if (k == SL_NEXMARK_PERSON) {
            per[np] = (s_pw_t){e.person.id, w};
            memcpy(names[np], e.person.name, sizeof names[np]);
            np++;
        } else {
            auc[na++] = (s_pw_t){e.auction.seller, w};
        }
    }
    qsort(auc, (size_t)na, sizeof *auc, s_pw_cmp);
    fputs("id,name,starttime\n", f);
    for (long long i = 0; i < np; i++)
        if (bsearch(&per[i], auc, (size_t)na, sizeof *auc, s_pw_cmp)) {
            fprintf(f, "%lld,", (long long)per[i].id);
            s_str(f, names[i]);
            fputc(',', f);
            s_ts(f, per[i].w);
            fputc('\n', f);
        }
    free(auc);
    free(per);
    free(names);
    return 0;
}

/* q3: auctions of category 10 joined with their seller as of the
 * auction's time, when the seller is in OR, ID or CA: name, city, state,
 * auction id. Person ids are unique, so "as of" means created no later. */
typedef struct {
    int64_t id, t;
    char name[SL_NEXMARK_NAME_CAP], city[SL_NEXMARK_CITY_CAP], state[SL_NEXMARK_STATE_CAP];
} s_person_t;

static int s_q3(FILE *f, const sl_nexmark_cfg_t *cfg, long long events)
{
    static sl_nexmark_event_t e;
    size_t cap = (size_t)events / 50 + 2;
    s_person_t *per = calloc(cap, sizeof *per);
    int64_t(*auc)[3] = malloc(((size_t)events / 50 * 3 + 4) * sizeof *auc);
    long long np = 0, na = 0;
    if (!per || !auc) {
        free(per);
        free(auc);
        return 1;
    }
    for (long long n = 0; n < events; n++) {
        sl_nexmark_kind_t k = sl_nexmark_kind((uint64_t)n);
        if (k == SL_NEXMARK_BID)
            continue;
        if (sl_nexmark_event(cfg, (uint64_t)n, &e))
            return 1;
        if (k == SL_NEXMARK_PERSON) {
            s_person_t *q = &per[np++];
            q->id = e.person.id;
            q->t = e.date_time;
            memcpy(q->name, e.person.name, sizeof q->name);
            memcpy(q->city, e.person.city, sizeof q->city);
            memcpy(q->state, e.person.state, sizeof q->state);
        } else if (e.auction.category == 10) {
            auc[na][0] = e.auction.id;
            auc[na][1] = e.auction.seller;
            auc[na][2] = e.date_time;
            na++;
        }
    }
    fputs("name,city,state,id\n", f);
    for (long long i = 0; i < na; i++) {
        /* persons are created in id order from the first person id */
        long long k = auc[i][1] - (np ? per[0].id : 0);
        if (k < 0 || k >= np || per[k].id != auc[i][1] || per[k].t > auc[i][2])
            continue;
        const s_person_t *q = &per[k];
        if (strcmp(q->state, "OR") && strcmp(q->state, "ID") && strcmp(q->state, "CA"))
            continue;
        s_str(f, q->name);
        fputc(',', f);
        s_str(f, q->city);
        fputc(',', f);
        s_str(f, q->state);
        fprintf(f, ",%lld\n", (long long)auc[i][0]);
    }
    free(per);
    free(auc);
    return 0;
}

/* ---- q4, q9, q13, q15-q20: the queries added with joins and sessions --------------- */

/* An auction of q4, q9, q20, found by its id: auction id 1000 + k is
 * auctions[k] (the generator numbers them in order). */
typedef struct {
    int64_t t, expires, category; /* date_time, expires, category */
    uint64_t n;                   /* its event number */
    int64_t best, best_t;         /* q4, q9: the winning price and its bid's time; best < 0: none */
    uint64_t best_n;              /* q9: the winning bid's event number */
} s_auc_t;

/* Every auction of events 0 .. events-1 in *out, indexed by id - 1000
 * (caller frees). Returns the count, or -1 after a message. */
static long long s_auctions(const sl_nexmark_cfg_t *cfg, long long events, s_auc_t **out)
{
    s_auc_t *a = calloc((size_t)events / 50 * 3 + 4, sizeof *a);
    if (!a) {
        fprintf(stderr, "nexmark_ref: out of memory\n");
        return -1;
    }
    static sl_nexmark_event_t e;
    long long na = 0;
    for (long long n = 0; n < events; n++) {
        if (sl_nexmark_kind((uint64_t)n) != SL_NEXMARK_AUCTION)
            continue;
        if (sl_nexmark_event(cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ref: event %lld failed\n", n);
            free(a);
            return -1;
        }
        if (e.auction.id - SL_NEXMARK_FIRST_AUCTION_ID != na) {
            fprintf(stderr, "nexmark_ref: auction %lld out of order\n", (long long)e.auction.id);
            free(a);
            return -1;
        }
        a[na++] =
            (s_auc_t){e.date_time, e.auction.expires, e.auction.category, (uint64_t)n, -1, 0, 0};
    }
    *out = a;
    return na;
}

/* q4, q9: each auction's highest bid from its date_time to its expiry
 * (both included), the earliest of equal prices. */
static void s_winning(s_auc_t *a, long long na, const s_bid_t *b, long long nb)
{
    for (long long i = 0; i < nb; i++) {
        long long k = b[i].auction - SL_NEXMARK_FIRST_AUCTION_ID;
        if (k < 0 || k >= na || b[i].t < a[k].t || b[i].t > a[k].expires)
            continue;
        if (b[i].price > a[k].best || (b[i].price == a[k].best && b[i].t < a[k].best_t)) {
            a[k].best = b[i].price;
            a[k].best_t = b[i].t;
            a[k].best_n = b[i].n;
        }
    }
}

/* q4: per category, the number of auctions with a winning bid and the
 * average winning price (int64, truncated). */
static int s_q4(FILE *f, s_auc_t *a, long long na, const s_bid_t *b, long long nb)
{
    s_winning(a, na, b, nb);
    long long cnt[SL_NEXMARK_NUM_CATEGORIES] = {0}, sum[SL_NEXMARK_NUM_CATEGORIES] = {0};
    for (long long k = 0; k < na; k++) {
        if (a[k].best < 0)
            continue;
        int c = (int)(a[k].category - SL_NEXMARK_FIRST_CATEGORY_ID);
        cnt[c]++;
        sum[c] += a[k].best;
    }
    fputs("category,avg_price,auctions\n", f);
    for (int c = 0; c < SL_NEXMARK_NUM_CATEGORIES; c++)
        if (cnt[c])
            fprintf(f, "%d,%lld,%lld\n", SL_NEXMARK_FIRST_CATEGORY_ID + c, sum[c] / cnt[c], cnt[c]);
    return 0;
}

/* q9: every auction with a winning bid, with it. */
static int s_q9(FILE *f, const sl_nexmark_cfg_t *cfg, s_auc_t *a, long long na, const s_bid_t *b,
                long long nb)
{
    static sl_nexmark_event_t e, w;
    s_winning(a, na, b, nb);
    fputs("id,item_name,description,initial_bid,reserve,date_time,expires,seller,category,extra,"
          "auction,bidder,price,bid_date_time,bid_extra\n",
          f);
    for (long long k = 0; k < na; k++) {
        if (a[k].best < 0)
            continue;
        if (sl_nexmark_event(cfg, a[k].n, &e) || sl_nexmark_event(cfg, a[k].best_n, &w))
            return 1;
        const sl_nexmark_auction_t *x = &e.auction;
        fprintf(f, "%lld,", (long long)x->id);
        s_str(f, x->item_name);
        fputc(',', f);
        s_str(f, x->description);
        fprintf(f, ",%lld,%lld,", (long long)x->initial_bid, (long long)x->reserve);
        s_ts(f, e.date_time);
        fputc(',', f);
        s_ts(f, x->expires);
        fprintf(f, ",%lld,%lld,", (long long)x->seller, (long long)x->category);
        s_str(f, e.extra);
        fprintf(f, ",%lld,%lld,%lld,", (long long)w.bid.auction, (long long)w.bid.bidder,
                (long long)w.bid.price);
        s_ts(f, w.date_time);
        fputc(',', f);
        s_str(f, w.extra);
        fputc('\n', f);
    }
    return 0;
}

/* q13: every bid with the side table's value of auction % 10000; the
 * table (jobs/nexmark/side_input.csv) holds keys 0..9999 with the values
 * side-KEY. */
static int s_q13(FILE *f, const sl_nexmark_cfg_t *cfg, const s_bid_t *b, long long nb)
{
    (void)cfg;
    fputs("auction,bidder,price,date_time,value\n", f);
    for (long long i = 0; i < nb; i++) {
        int64_t key = b[i].auction % 10000;
        if (key < 0)
            continue; /* not in the table */
        fprintf(f, "%lld,%lld,%lld,", (long long)b[i].auction, (long long)b[i].bidder,
                (long long)b[i].price);
        s_ts(f, b[i].t);
        fprintf(f, ",side-%lld\n", (long long)key);
    }
    return 0;
}

/* A bid of q15-q17 with its group (g0, g1) and price range 1..3. */
typedef struct {
    int64_t g0, g1; /* the group: q15 (day, 0), q16 (channel, day), q17 (auction, day) */
    int64_t v;      /* scratch: a value to count distinct */
    const s_bid_t *b;
    int range; /* 1: price < 10^4, 2: < 10^6, 3: more */
} s_gbid_t;

static int s_gbid_cmp(const void *x, const void *y)
{
    const s_gbid_t *a = x, *b = y;
    if (a->g0 != b->g0)
        return a->g0 < b->g0 ? -1 : 1;
    if (a->g1 != b->g1)
        return a->g1 < b->g1 ? -1 : 1;
    return (a->v > b->v) - (a->v < b->v);
}

static int s_i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* How many distinct values of field (0 bidder, 1 auction) the bids g[0..n)
 * of range r (0: any) have; tmp has room for n. */
static long long s_distinct(const s_gbid_t *g, long long n, int field, int r, int64_t *tmp)
{
    long long m = 0, d = 0;
    for (long long i = 0; i < n; i++)
        if (!r || g[i].range == r)
            tmp[m++] = field ? g[i].b->auction : g[i].b->bidder;
    qsort(tmp, (size_t)m, sizeof *tmp, s_i64_cmp);
    for (long long i = 0; i < m; i++)
        d += !i || tmp[i] != tmp[i - 1];
    return d;
}

/* Days since the epoch of a timestamp (UTC). */
static int64_t s_day(int64_t ms)
{
    return ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
}

/* The channels of q16 as numbers: 0..3 the big four, 4 + N channel-N. */
static int64_t s_channel_no(const char *c)
{
    static const char *const big[] = {"Google", "Facebook", "Baidu", "Apple"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(c, big[i]))
            return i;
    if (strncmp(c, "channel-", 8) != 0)
        return -1;
    return 4 + strtoll(c + 8, NULL, 10);
}

/* q15, q16, q17: statistics per group of bids. */
static int s_stats(FILE *f, int query, const sl_nexmark_cfg_t *cfg, const s_bid_t *b, long long nb)
{
    static sl_nexmark_event_t e;
    static const char *const big[] = {"Google", "Facebook", "Baidu", "Apple"};
    s_gbid_t *g = malloc(((size_t)nb + 1) * sizeof *g);
    int64_t *tmp = malloc(((size_t)nb + 1) * sizeof *tmp);
    if (!g || !tmp) {
        free(g);
        free(tmp);
        return 1;
    }
    for (long long i = 0; i < nb; i++) {
        int64_t day = s_day(b[i].t);
        g[i] = (s_gbid_t){day, 0, 0, &b[i], b[i].price < 10000 ? 1 : b[i].price < 1000000 ? 2 : 3};
        if (query == 16) {
            if (sl_nexmark_event(cfg, b[i].n, &e))
                return 1;
            g[i].g0 = s_channel_no(e.bid.channel);
            g[i].g1 = day;
            g[i].v = b[i].t; /* the last bid of the group sorts last */
        } else if (query == 17) {
            g[i].g0 = b[i].auction;
            g[i].g1 = day;
        }
    }
    qsort(g, (size_t)nb, sizeof *g, s_gbid_cmp);
    if (query == 15)
        fputs("day,", f);
    else if (query == 16)
        fputs("channel,day,minute,", f);
    else
        fputs("auction,day,", f);
    fputs(query == 17 ? "total_bids,rank1_bids,rank2_bids,rank3_bids,min_price,max_price,avg_"
                        "price,sum_price\n"
                      : "total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,rank1_"
                        "bidders,rank2_bidders,rank3_bidders,total_auctions,rank1_auctions,"
                        "rank2_auctions,rank3_auctions\n",
          f);
    for (long long lo = 0, hi; lo < nb; lo = hi) {
        for (hi = lo + 1; hi < nb && g[hi].g0 == g[lo].g0 && g[hi].g1 == g[lo].g1; hi++)
            ;
        long long n = hi - lo, rc[4] = {0};
        int64_t mn = INT64_MAX, mx = INT64_MIN, sum = 0;
        for (long long i = lo; i < hi; i++) {
            rc[g[i].range]++;
            int64_t p = g[i].b->price;
            mn = p < mn ? p : mn;
            mx = p > mx ? p : mx;
            sum += p;
        }
        int64_t day = query == 15 ? g[lo].g0 : g[lo].g1;
        if (query == 17)
            fprintf(f, "%lld,", (long long)g[lo].g0);
        if (query == 16) {
            if (g[lo].g0 < 4)
                fputs(big[g[lo].g0], f);
            else
                fprintf(f, "channel-%lld", (long long)(g[lo].g0 - 4));
            fputc(',', f);
        }
        char buf[32];
        FILE *m = fmemopen(buf, sizeof buf, "w");
        if (!m)
            return 1;
        s_ts(m, day * 86400000);
        fclose(m);
        fprintf(f, "%.10s,", buf);
        if (query == 16) {
            int64_t last = g[hi - 1].b->t, rest = last - s_day(last) * 86400000;
            fprintf(f, "%02d:%02d,", (int)(rest / 3600000), (int)(rest / 60000 % 60));
        }
        fprintf(f, "%lld,%lld,%lld,%lld", n, rc[1], rc[2], rc[3]);
        if (query == 17) {
            fprintf(f, ",%lld,%lld,%lld,%lld\n", (long long)mn, (long long)mx, (long long)(sum / n),
                    (long long)sum);
            continue;
        }
        for (int field = 0; field < 2; field++)
            for (int r = 0; r <= 3; r++)
                fprintf(f, ",%lld", s_distinct(g + lo, n, field, r, tmp));
        fputc('\n', f);
    }
    free(g);
    free(tmp);
    return 0;
}

/* A full bid row of q18, q19, q20 from its event. */
static void s_bid_row(FILE *f, const sl_nexmark_event_t *e)
{
    const sl_nexmark_bid_t *b = &e->bid;
    fprintf(f, "%lld,%lld,%lld,", (long long)b->auction, (long long)b->bidder, (long long)b->price);
    s_str(f, b->channel);
    fputc(',', f);
    s_str(f, b->url);
    fputc(',', f);
    s_ts(f, e->date_time);
    fputc(',', f);
    s_str(f, e->extra);
}

/* q18 orders by (bidder, auction, date_time), q19 by (auction, price
 * descending, date_time). */
static int s_q18_cmp(const void *x, const void *y)
{
    const s_bid_t *a = x, *b = y;
    if (a->bidder != b->bidder)
        return a->bidder < b->bidder ? -1 : 1;
    if (a->auction != b->auction)
        return a->auction < b->auction ? -1 : 1;
    return (a->t > b->t) - (a->t < b->t);
}

static int s_q19_cmp(const void *x, const void *y)
{
    const s_bid_t *a = x, *b = y;
    if (a->auction != b->auction)
        return a->auction < b->auction ? -1 : 1;
    if (a->price != b->price)
        return a->price > b->price ? -1 : 1;
    return (a->t > b->t) - (a->t < b->t);
}

/* q18: the last bid of each (bidder, auction); q19: the 10 highest bids
 * of each auction with their rank. Sorts b. */
static int s_q18_19(FILE *f, int query, const sl_nexmark_cfg_t *cfg, s_bid_t *b, long long nb)
{
    static sl_nexmark_event_t e;
    qsort(b, (size_t)nb, sizeof *b, query == 18 ? s_q18_cmp : s_q19_cmp);
    fputs(query == 18 ? "auction,bidder,price,channel,url,date_time,extra\n"
                      : "auction,bidder,price,channel,url,date_time,extra,rank_number\n",
          f);
    int rank = 0;
    for (long long i = 0; i < nb; i++) {
        bool first = !i || b[i].auction != b[i - 1].auction ||
                     (query == 18 && b[i].bidder != b[i - 1].bidder);
        rank = first ? 1 : rank + 1;
        if (query == 18
                ? (i + 1 < nb && b[i + 1].auction == b[i].auction && b[i + 1].bidder == b[i].bidder)
                : rank > 10)
            continue;
        if (sl_nexmark_event(cfg, b[i].n, &e))
            return 1;
        s_bid_row(f, &e);
        if (query == 19)
            fprintf(f, ",%d", rank);
        fputc('\n', f);
    }
    return 0;
}

/* q20: every bid on an auction of category 10, with the auction. */
static int s_q20(FILE *f, const sl_nexmark_cfg_t *cfg, const s_auc_t *a, long long na,
                 const s_bid_t *b, long long nb)
{
    static sl_nexmark_event_t e, x;
    fputs("auction,bidder,price,channel,url,date_time,extra,item_name,description,initial_bid,"
          "reserve,a_date_time,expires,seller,category,a_extra\n",
          f);
    for (long long i = 0; i < nb; i++) {
        long long k = b[i].auction - SL_NEXMARK_FIRST_AUCTION_ID;
        if (k < 0 || k >= na || a[k].category != 10)
            continue;
        if (sl_nexmark_event(cfg, b[i].n, &e) || sl_nexmark_event(cfg, a[k].n, &x))
            return 1;
        s_bid_row(f, &e);
        fputc(',', f);
        s_str(f, x.auction.item_name);
        fputc(',', f);
        s_str(f, x.auction.description);
        fprintf(f, ",%lld,%lld,", (long long)x.auction.initial_bid, (long long)x.auction.reserve);
        s_ts(f, x.date_time);
        fputc(',', f);
        s_ts(f, x.auction.expires);
        fprintf(f, ",%lld,%lld,", (long long)x.auction.seller, (long long)x.auction.category);
        s_str(f, x.extra);
        fputc('\n', f);
    }
    return 0;
}

/* Runs q4, q9, q13, q15-q20 (number query). */
static int s_more(FILE *f, int query, const sl_nexmark_cfg_t *cfg, long long events)
{
    s_bid_t *bids = NULL;
    s_auc_t *auc = NULL;
    long long nb = s_collect(cfg, events, &bids), na = 0;
    if (nb < 0)
        return 1;
    if ((query == 4 || query == 9 || query == 20) && (na = s_auctions(cfg, events, &auc)) < 0) {
        free(bids);
        return 1;
    }
    int rc;
    switch (query) {
    case 4:
        rc = s_q4(f, auc, na, bids, nb);
        break;
    case 9:
        rc = s_q9(f, cfg, auc, na, bids, nb);
        break;
    case 13:
        rc = s_q13(f, cfg, bids, nb);
        break;
    case 18:
    case 19:
        rc = s_q18_19(f, query, cfg, bids, nb);
        break;
    case 20:
        rc = s_q20(f, cfg, auc, na, bids, nb);
        break;
    default:
        rc = s_stats(f, query, cfg, bids, nb);
        break;
    }
    free(bids);
    free(auc);
    return rc;
}

/* q0, q1, q2, q14, q21, q22: one row per selected bid. */
static int s_rowwise(FILE *f, const char *q, const sl_nexmark_cfg_t *cfg, long long events)
{
    static sl_nexmark_event_t e;
    if (!strcmp(q, "q0"))
        fputs("auction,bidder,price,channel,url,date_time,extra\n", f);
    else if (!strcmp(q, "q1"))
        fputs("auction,bidder,price,date_time,extra\n", f);
    else if (!strcmp(q, "q14"))
        fputs("auction,bidder,price,bid_time_type,date_time,extra,c_counts\n", f);
    else if (!strcmp(q, "q21"))
        fputs("auction,bidder,price,channel,channel_id\n", f);
    else if (!strcmp(q, "q22"))
        fputs("auction,bidder,price,channel,dir1,dir2,dir3\n", f);
    else
        fputs("auction,price\n", f);
    bool strq = !strcmp(q, "q14") || !strcmp(q, "q21") || !strcmp(q, "q22");
    for (long long n = 0; n < events; n++) {
        if (sl_nexmark_kind((uint64_t)n) != SL_NEXMARK_BID)
            continue;
        if (sl_nexmark_event(cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ref: event %lld failed\n", n);
            return 1;
        }
        const sl_nexmark_bid_t *b = &e.bid;
        if (strq) {
            s_string_query(f, q, &e);
        } else if (!strcmp(q, "q0")) {
            fprintf(f, "%lld,%lld,%lld,", (long long)b->auction, (long long)b->bidder,
                    (long long)b->price);
            s_str(f, b->channel);
            fputc(',', f);
            s_str(f, b->url);
            fputc(',', f);
            s_ts(f, e.date_time);
            fputc(',', f);
            s_str(f, e.extra);
            fputc('\n', f);
        } else if (!strcmp(q, "q1")) {
            fprintf(f, "%lld,%lld,%lld,", (long long)b->auction, (long long)b->bidder,
                    (long long)(b->price * 908 / 1000));
            s_ts(f, e.date_time);
            fputc(',', f);
            s_str(f, e.extra);
            fputc('\n', f);
        } else if (b->auction % 123 == 0) {
            fprintf(f, "%lld,%lld\n", (long long)b->auction, (long long)b->price);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char usage[] = "q0, q1, q2, q3, q4, q5, q7, q8, q9, q11, q13, q14, q15, q16, q17, "
                                "q18, q19, q20, q21 or q22";
    if (argc != 5 && argc != 6) {
        fprintf(stderr,
                "usage: nexmark_ref QUERY EVENTS SEED OUTPUT.csv [EVENT_RATE]\n"
                "  QUERY: %s\n",
                usage);
        return 2;
    }
    const char *q = argv[1];
    static const int known[] = {0,  1,  2,  3,  4,  5,  7,  8,  9,  11,
                                13, 14, 15, 16, 17, 18, 19, 20, 21, 22};
    int query = -1;
    char *end;
    if (q[0] == 'q' && q[1] >= '0' && q[1] <= '9') {
        long v = strtol(q + 1, &end, 10);
        for (size_t i = 0; !*end && i < sizeof known / sizeof known[0]; i++)
            if (v == known[i] && !(q[1] == '0' && q[2]))
                query = (int)v;
    }
    if (query < 0) {
        fprintf(stderr, "nexmark_ref: unknown query '%s' (%s)\n", q, usage);
        return 2;
    }
    long long events = strtoll(argv[2], &end, 10);
    if (!*argv[2] || *end || events < 0) {
        fprintf(stderr, "nexmark_ref: bad event count '%s'\n", argv[2]);
        return 2;
    }
    unsigned long long seed = strtoull(argv[3], &end, 10);
    if (!*argv[3] || *end) {
        fprintf(stderr, "nexmark_ref: bad seed '%s'\n", argv[3]);
        return 2;
    }
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = seed;
    if (argc == 6) {
        long long rate = strtoll(argv[5], &end, 10);
        if (!*argv[5] || *end || rate < 1 || rate > 1000000000) {
            fprintf(stderr, "nexmark_ref: bad event rate '%s' (1..1000000000)\n", argv[5]);
            return 2;
        }
        cfg.event_rate = rate;
    }
    FILE *f = fopen(argv[4], "w");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    int rc;
    if (query == 8)
        rc = s_q8(f, &cfg, events);
    else if (query == 3)
        rc = s_q3(f, &cfg, events);
    else if (query == 4 || query == 9 || query == 13 || (query >= 15 && query <= 20))
        rc = s_more(f, query, &cfg, events);
    else if (query <= 2 || query >= 14)
        rc = s_rowwise(f, q, &cfg, events);
    else {
        s_bid_t *bids = NULL;
        long long nb = s_collect(&cfg, events, &bids);
        if (nb < 0)
            rc = 1;
        else if (query == 5)
            rc = s_q5(f, bids, nb);
        else if (query == 7)
            rc = s_q7(f, &cfg, bids, nb);
        else
            rc = s_q11(f, bids, nb);
        free(bids);
    }
    if (fclose(f) != 0) {
        perror(argv[4]);
        return 1;
    }
    return rc;
}
