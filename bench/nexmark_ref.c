/* nexmark_ref.c — reference results of the Nexmark queries of
 * jobs/nexmark/ by a straight C loop over sl_nexmark_event, independent of
 * the engine's operators and writers: the scenario test compares the
 * engine's output with this, and it is the bare-loop baseline of a
 * benchmark.
 *
 *   nexmark_ref QUERY EVENTS SEED OUTPUT.csv [EVENT_RATE]
 *       QUERY: q0, q1, q2, q3, q5, q7, q8, q11, q14, q21 or q22; EVENT_RATE: events
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
 *   q22  bids with fields 3, 4, 5 (0-based) of the url split at '/' */
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
    if (argc != 5 && argc != 6) {
        fprintf(stderr,
                "usage: nexmark_ref q0|q1|q2|q3|q5|q7|q8|q11|q14|q21|q22 EVENTS SEED OUTPUT.csv "
                "[EVENT_RATE]\n");
        return 2;
    }
    const char *q = argv[1];
    static const char *const queries[] = {"q0",  "q1",  "q2",  "q5", "q7", "q11",
                                          "q14", "q21", "q22", "q8", "q3"};
    int query = -1;
    for (int i = 0; i < 11; i++)
        if (!strcmp(q, queries[i]))
            query = i;
    if (query < 0) {
        fprintf(
            stderr,
            "nexmark_ref: unknown query '%s' (q0, q1, q2, q3, q5, q7, q8, q11, q14, q21 or q22)\n",
            q);
        return 2;
    }
    char *end;
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
    if (query == 9)
        rc = s_q8(f, &cfg, events);
    else if (query == 10)
        rc = s_q3(f, &cfg, events);
    else if (query <= 2 || query >= 6)
        rc = s_rowwise(f, q, &cfg, events);
    else {
        s_bid_t *bids = NULL;
        long long nb = s_collect(&cfg, events, &bids);
        if (nb < 0)
            rc = 1;
        else if (query == 3)
            rc = s_q5(f, bids, nb);
        else if (query == 4)
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
