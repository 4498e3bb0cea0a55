/* nexmark.c — the deterministic Nexmark event generator (see
 * sluice/nexmark.h and docs/nexmark.md).
 *
 * Follows the logic of Beam's Nexmark generator: the kind of event n from
 * n % 50, person and auction ids from n (lastBase0PersonId /
 * lastBase0AuctionId), hot sellers / bidders / auctions, prices
 * 10^(6u) * 100 cents, auction lengths around the time it takes to
 * generate numInFlightAuctions auctions, filler `extra` to reach the
 * average event sizes. Random draws happen in the order Beam makes them,
 * but from a splitmix64 stream seeded by (seed, n) instead of
 * java.util.Random(n), so values are not bit-identical to Beam's.
 *
 * sl_nexmark_gen_t makes the same events with a cache of each channel's
 * name and url (pure functions of the seed and the channel), and can skip
 * the extra, the last draw of every event. */
#include "sluice/nexmark.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"

/* Beam's constants (BidGenerator, AuctionGenerator, PersonGenerator). */
#define S_HOT_AUCTION_RATIO 100 /* hot auction: first of the last 100 auctions */
#define S_HOT_SELLER_RATIO 100  /* hot seller: first of the last 100 people */
#define S_HOT_BIDDER_RATIO 100  /* hot bidder: second of the last 100 people */
#define S_PERSON_ID_LEAD 10     /* ids a little ahead of the last person */
#define S_AUCTION_ID_LEAD 10    /* ids a little ahead of the last auction */
#define S_HOT_CHANNELS_RATIO 2  /* 1 bid in 2 is from one of the hot channels */
#define S_CHANNELS_NUMBER 10000 /* other channels: channel-0 .. channel-9999 */
#define S_MIN_STRING_LENGTH 3

static const char *const s_first_names[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                            "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
static const char *const s_last_names[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                           "Walton", "Smith",  "Jones",   "Noris"};
static const char *const s_cities[] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                       "Portland", "Bend",        "Redmond",       "Seattle",
                                       "Kent",     "Cheyenne"};
static const char *const s_states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const s_hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
#define S_LEN(a) ((int)(sizeof(a) / sizeof *(a)))

/* ---- the PRNG: splitmix64 --------------------------------------------------- */

typedef struct {
    uint64_t s; /* state */
} s_rng_t;

static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The stream of (seed, n, salt): salt separates the per-event streams from
 * the per-channel ones. */
static void s_rng_init(s_rng_t *r, uint64_t seed, uint64_t n, uint64_t salt)
{
    r->s = s_mix(s_mix(seed + 0x9e3779b97f4a7c15ULL) ^ (n + salt * 0x632be59bd9b4e019ULL));
}

static uint64_t s_next(s_rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return s_mix(r->s);
}

/* Uniform in [0, bound) for bound >= 1 (Java's nextInt / Beam's nextLong). */
static int64_t s_below(s_rng_t *r, int64_t bound)
{
    if (bound <= 1)
        return 0;
    return (int64_t)(s_next(r) % (uint64_t)bound);
}

/* Uniform in [0, 1) (Java's nextDouble). */
static double s_unit(s_rng_t *r)
{
    return (double)(s_next(r) >> 11) * 0x1.0p-53;
}

/* ---- Beam's value generators ------------------------------------------------ */

/* Beam's StringsGenerator.nextString(random, maxLength, special): 3 to
 * maxLength-1 characters, each 1 in 13 the special one, else a..z, then
 * trimmed of spaces. cap >= maxLength. */
static void s_string(s_rng_t *r, int max_len, char special, char *out)
{
    int len = S_MIN_STRING_LENGTH + (int)s_below(r, max_len - S_MIN_STRING_LENGTH);
    for (int i = 0; i < len; i++)
        out[i] = s_below(r, 13) == 0 ? special : (char)('a' + s_below(r, 26));
    out[len] = '\0';
    int from = 0;
    while (out[from] == ' ')
        from++;
    while (len > from && out[len - 1] == ' ')
        len--;
    memmove(out, out + from, (size_t)(len - from));
    out[len - from] = '\0';
}

/* The 13 letters of one draw x: base-26 digits 0..12 of x, low first
 * ('a' + x % 26, then x /= 26, as Beam-style digit extraction), computed
 * as two independent 32-bit chains (26^6 < 2^32) instead of one chain of
 * 64-bit divisions. */
static void s_letters13(uint64_t x, char *out)
{
    const uint64_t b6 = 308915776u; /* 26^6 */
    uint32_t lo = (uint32_t)(x % b6);
    uint64_t hi = x / b6;
    uint32_t mid = (uint32_t)(hi % b6);
    out[12] = (char)('a' + (hi / b6) % 26);
    for (int k = 0; k < 6; k++) {
        out[k] = (char)('a' + lo % 26);
        out[6 + k] = (char)('a' + mid % 26);
        lo /= 26;
        mid /= 26;
    }
}

/* Beam's nextExtra: letters bringing the event to about avg bytes
 * (uniform within +-20% of what is missing); empty when already larger.
 * Beam draws each letter apart; here one draw makes 13 letters. Returns
 * the length. */
static int s_extra(s_rng_t *r, int current, int avg, char *out)
{
    out[0] = '\0';
    if (current > avg)
        return 0;
    int want = avg - current;
    int delta = (int)lround(want * 0.2);
    int size = want - delta + (delta == 0 ? 0 : (int)s_below(r, 2 * delta));
    if (size > SL_NEXMARK_EXTRA_CAP - 1)
        size = SL_NEXMARK_EXTRA_CAP - 1;
    int i = 0;
    for (; i + 13 <= size; i += 13) /* 26^13 < 2^64: 13 letters per draw */
        s_letters13(s_next(r), out + i);
    if (i < size) {
        char last[13];
        s_letters13(s_next(r), last);
        memcpy(out + i, last, (size_t)(size - i));
    }
    out[size] = '\0';
    return size;
}

/* Beam's PriceGenerator.nextPrice: round(10^(6u) * 100), 100 .. 10^8 cents. */
static int64_t s_price(s_rng_t *r)
{
    return (int64_t)llround(pow(10.0, s_unit(r) * 6.0) * 100.0);
}

/* Base-0 id of a random "active" person, a few possibly ahead of the last
 * one (Beam's nextBase0PersonId). */
static int64_t s_next_person(const sl_nexmark_cfg_t *cfg, uint64_t n, s_rng_t *r)
{
    int64_t people = sl_nexmark_last_person(n) + 1;
    int64_t active = people < cfg->num_active_people ? people : cfg->num_active_people;
    return people - active + s_below(r, active + S_PERSON_ID_LEAD);
}

/* Base-0 id of a random auction among those likely in flight, a few
 * possibly ahead of the last one (Beam's nextBase0AuctionId). */
static int64_t s_next_auction(const sl_nexmark_cfg_t *cfg, uint64_t n, s_rng_t *r)
{
    int64_t max = sl_nexmark_last_auction(n);
    int64_t min = max - cfg->num_in_flight_auctions > 0 ? max - cfg->num_in_flight_auctions : 0;
    return min + s_below(r, max - min + 1 + S_AUCTION_ID_LEAD);
}

/* Java's Math.abs(Integer.reverse(i)). */
static int64_t s_reverse_abs(uint32_t v)
{
    uint32_t x = 0;
    for (int i = 0; i < 32; i++, v >>= 1)
        x = (x << 1) | (v & 1u);
    int64_t s = x >= 0x80000000u ? (int64_t)x - 4294967296LL : (int64_t)x;
    return s < 0 ? -s : s;
}

/* Beam's getBaseUrl, made deterministic: from the stream of (seed, which). */
static uint32_t s_url(uint64_t seed, uint64_t which, bool with_channel_id, uint32_t channel,
                      char *out)
{
    s_rng_t r;
    s_rng_init(&r, seed, which, 2);
    char a[8], b[8], c[8];
    s_string(&r, 5, '_', a);
    s_string(&r, 5, '_', b);
    s_string(&r, 5, '_', c);
    int k = snprintf(out, SL_NEXMARK_URL_CAP, "https://www.nexmark.com/%s/%s/%s/item.htm?query=1",
                     a, b, c);
    if (with_channel_id && k > 0 && k < SL_NEXMARK_URL_CAP)
        snprintf(out + k, (size_t)(SL_NEXMARK_URL_CAP - k), "&channel_id=%lld",
                 (long long)s_reverse_abs(channel));
    return (uint32_t)strlen(out);
}

/* ---- public ------------------------------------------------------------------ */

void sl_nexmark_cfg_default(sl_nexmark_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 0;
    cfg->first_time_ms = SL_NEXMARK_DEFAULT_FIRST_TIME;
    cfg->event_rate = SL_NEXMARK_DEFAULT_EVENT_RATE;
    cfg->hot_auction_ratio = 2;
    cfg->hot_sellers_ratio = 4;
    cfg->hot_bidders_ratio = 4;
    cfg->num_in_flight_auctions = 100;
    cfg->num_active_people = 1000;
    cfg->avg_person_bytes = 200;
    cfg->avg_auction_bytes = 500;
    cfg->avg_bid_bytes = 100;
}

int sl_nexmark_cfg_check(const sl_nexmark_cfg_t *cfg, char *err, size_t cap)
{
    const char *what = NULL;
    if (!cfg)
        what = "no configuration";
    else if (cfg->event_rate < 1 || cfg->event_rate > 1000000000)
        what = "event_rate must be 1..1000000000 events/s";
    else if (cfg->hot_auction_ratio < 1 || cfg->hot_sellers_ratio < 1 || cfg->hot_bidders_ratio < 1)
        what = "hot ratios must be >= 1";
    else if (cfg->num_in_flight_auctions < 1 || cfg->num_active_people < 1)
        what = "num_in_flight_auctions and num_active_people must be >= 1";
    else if (cfg->avg_person_bytes < 0 || cfg->avg_auction_bytes < 0 || cfg->avg_bid_bytes < 0 ||
             cfg->avg_person_bytes > 500 || cfg->avg_auction_bytes > 500 ||
             cfg->avg_bid_bytes > 500)
        what = "average event sizes must be 0..500 bytes";
    if (!what)
        return SL_OK;
    if (err && cap)
        snprintf(err, cap, "nexmark: %s", what);
    return SL_INVAL;
}

sl_nexmark_kind_t sl_nexmark_kind(uint64_t n)
{
    uint64_t rem = n % SL_NEXMARK_TOTAL_PROPORTION;
    if (rem < SL_NEXMARK_PERSON_PROPORTION)
        return SL_NEXMARK_PERSON;
    if (rem < SL_NEXMARK_PERSON_PROPORTION + SL_NEXMARK_AUCTION_PROPORTION)
        return SL_NEXMARK_AUCTION;
    return SL_NEXMARK_BID;
}

const char *sl_nexmark_kind_name(sl_nexmark_kind_t k)
{
    switch (k) {
    case SL_NEXMARK_PERSON:
        return "person";
    case SL_NEXMARK_AUCTION:
        return "auction";
    case SL_NEXMARK_BID:
        return "bid";
    }
    return "?";
}

int64_t sl_nexmark_time(const sl_nexmark_cfg_t *cfg, uint64_t n)
{
    /* n * 1000 / rate without overflowing for large n */
    uint64_t rate = (uint64_t)cfg->event_rate;
    uint64_t whole = n / rate, part = n % rate;
    return cfg->first_time_ms + (int64_t)(whole * 1000 + part * 1000 / rate);
}

int64_t sl_nexmark_last_person(uint64_t n)
{
    int64_t epoch = (int64_t)(n / SL_NEXMARK_TOTAL_PROPORTION);
    int64_t offset = (int64_t)(n % SL_NEXMARK_TOTAL_PROPORTION);
    if (offset >= SL_NEXMARK_PERSON_PROPORTION)
        offset = SL_NEXMARK_PERSON_PROPORTION - 1; /* the last person of this epoch */
    return epoch * SL_NEXMARK_PERSON_PROPORTION + offset;
}

int64_t sl_nexmark_last_auction(uint64_t n)
{
    int64_t epoch = (int64_t)(n / SL_NEXMARK_TOTAL_PROPORTION);
    int64_t offset = (int64_t)(n % SL_NEXMARK_TOTAL_PROPORTION);
    if (offset < SL_NEXMARK_PERSON_PROPORTION) {
        epoch--; /* a person: the last auction of the previous epoch */
        offset = SL_NEXMARK_AUCTION_PROPORTION - 1;
    } else if (offset >= SL_NEXMARK_PERSON_PROPORTION + SL_NEXMARK_AUCTION_PROPORTION) {
        offset = SL_NEXMARK_AUCTION_PROPORTION - 1; /* a bid: the last auction of this epoch */
    } else {
        offset -= SL_NEXMARK_PERSON_PROPORTION;
    }
    return epoch * SL_NEXMARK_AUCTION_PROPORTION + offset;
}

/* The person fields of event n; returns its size before the extra. */
static int s_person(uint64_t n, s_rng_t *r, sl_nexmark_event_t *e)
{
    sl_nexmark_person_t *p = &e->person;
    p->id = sl_nexmark_last_person(n) + SL_NEXMARK_FIRST_PERSON_ID;
    const char *first = s_first_names[s_below(r, S_LEN(s_first_names))];
    const char *last = s_last_names[s_below(r, S_LEN(s_last_names))];
    snprintf(p->name, sizeof p->name, "%s %s", first, last);
    char user[8], domain[8];
    s_string(r, 7, ' ', user);
    s_string(r, 5, ' ', domain);
    snprintf(p->email, sizeof p->email, "%s@%s.com", user, domain);
    int d[4];
    for (int i = 0; i < 4; i++)
        d[i] = (int)s_below(r, 10000);
    snprintf(p->credit_card, sizeof p->credit_card, "%04d %04d %04d %04d", d[0], d[1], d[2], d[3]);
    snprintf(p->city, sizeof p->city, "%s", s_cities[s_below(r, S_LEN(s_cities))]);
    snprintf(p->state, sizeof p->state, "%s", s_states[s_below(r, S_LEN(s_states))]);
    return 8 + (int)(strlen(p->name) + strlen(p->email) + strlen(p->credit_card) + strlen(p->city) +
                     strlen(p->state));
}

/* The auction fields of event n; returns its size before the extra. */
static int s_auction(const sl_nexmark_cfg_t *cfg, uint64_t n, s_rng_t *r, sl_nexmark_event_t *e)
{
    sl_nexmark_auction_t *a = &e->auction;
    a->id = sl_nexmark_last_auction(n) + SL_NEXMARK_FIRST_AUCTION_ID;
    int64_t seller;
    if (s_below(r, cfg->hot_sellers_ratio) > 0) /* hot: the first of the last 100 people */
        seller = sl_nexmark_last_person(n) / S_HOT_SELLER_RATIO * S_HOT_SELLER_RATIO;
    else
        seller = s_next_person(cfg, n, r);
    a->seller = seller + SL_NEXMARK_FIRST_PERSON_ID;
    a->category = SL_NEXMARK_FIRST_CATEGORY_ID + s_below(r, SL_NEXMARK_NUM_CATEGORIES);
    a->initial_bid = s_price(r);
    /* length: on average the time it takes to generate num_in_flight_auctions auctions */
    uint64_t ahead = (uint64_t)cfg->num_in_flight_auctions * SL_NEXMARK_TOTAL_PROPORTION /
                     SL_NEXMARK_AUCTION_PROPORTION;
    int64_t horizon = sl_nexmark_time(cfg, n + ahead) - e->date_time;
    a->expires = e->date_time + 1 + s_below(r, horizon * 2 > 1 ? horizon * 2 : 1);
    s_string(r, 20, ' ', a->item_name);
    s_string(r, 100, ' ', a->description);
    a->reserve = a->initial_bid + s_price(r);
    return 8 + (int)(strlen(a->item_name) + strlen(a->description)) + 8 * 5;
}

/* The channel and url of channel slot `slot` (0..9999: channel-N, then the
 * hot channels) into b: a pure function of (seed, slot). */
static void s_channel_url(const sl_nexmark_cfg_t *cfg, uint32_t slot, sl_nexmark_bid_t *b)
{
    if (slot >= S_CHANNELS_NUMBER) {
        uint32_t i = slot - S_CHANNELS_NUMBER;
        snprintf(b->channel, sizeof b->channel, "%s", s_hot_channels[i]);
        b->url_len = s_url(cfg->seed, (uint64_t)slot, false, 0, b->url);
    } else {
        snprintf(b->channel, sizeof b->channel, "channel-%u", slot);
        /* Beam: 9 channels in 10 carry their number in the url */
        s_rng_t cr;
        s_rng_init(&cr, cfg->seed, slot, 3);
        b->url_len = s_url(cfg->seed, slot, s_below(&cr, 10) > 0, slot, b->url);
    }
    b->channel_len = (uint32_t)strlen(b->channel);
}

/* A cached channel slot (sl_nexmark_gen_t). */
#define S_SLOT_URL 96 /* longer urls are not cached (none is: at most 77 bytes) */
typedef struct {
    uint8_t filled;       /* 1 once channel and url are set */
    uint8_t channel_len;  /* strlen(channel) */
    uint8_t url_len;      /* strlen(url) */
    char channel[13];     /* NUL-terminated */
    char url[S_SLOT_URL]; /* NUL-terminated */
} s_slot_t;

struct sl_nexmark_gen {
    sl_nexmark_cfg_t cfg; /* the stream */
    unsigned flags;       /* SL_NEXMARK_GEN_* */
    s_slot_t *slots;      /* per channel slot, S_CHANNELS_NUMBER + hot channels */
};

static void s_bid(const sl_nexmark_cfg_t *cfg, uint64_t n, s_rng_t *r, s_slot_t *slots,
                  sl_nexmark_event_t *e)
{
    sl_nexmark_bid_t *b = &e->bid;
    int64_t auction;
    if (s_below(r, cfg->hot_auction_ratio) > 0) /* hot: the first of the last 100 auctions */
        auction = sl_nexmark_last_auction(n) / S_HOT_AUCTION_RATIO * S_HOT_AUCTION_RATIO;
    else
        auction = s_next_auction(cfg, n, r);
    b->auction = auction + SL_NEXMARK_FIRST_AUCTION_ID;
    int64_t bidder;
    if (s_below(r, cfg->hot_bidders_ratio) > 0) /* hot: the second of the last 100 people */
        bidder = sl_nexmark_last_person(n) / S_HOT_BIDDER_RATIO * S_HOT_BIDDER_RATIO + 1;
    else
        bidder = s_next_person(cfg, n, r);
    b->bidder = bidder + SL_NEXMARK_FIRST_PERSON_ID;
    b->price = s_price(r);
    uint32_t slot;
    if (s_below(r, S_HOT_CHANNELS_RATIO) > 0)
        slot = S_CHANNELS_NUMBER + (uint32_t)s_below(r, S_LEN(s_hot_channels));
    else
        slot = (uint32_t)s_below(r, S_CHANNELS_NUMBER);
    s_slot_t *c = slots ? &slots[slot] : NULL;
    if (c && c->filled) {
        memcpy(b->channel, c->channel, (size_t)c->channel_len + 1);
        memcpy(b->url, c->url, (size_t)c->url_len + 1);
        b->channel_len = c->channel_len;
        b->url_len = c->url_len;
    } else {
        s_channel_url(cfg, slot, b);
        if (c && b->channel_len < sizeof c->channel && b->url_len < sizeof c->url) {
            memcpy(c->channel, b->channel, (size_t)b->channel_len + 1);
            memcpy(c->url, b->url, (size_t)b->url_len + 1);
            c->channel_len = (uint8_t)b->channel_len;
            c->url_len = (uint8_t)b->url_len;
            c->filled = 1;
        }
    }
}

/* Event n into out; slots NULL or the generator's cache; the extra
 * unless no_extra. */
static void s_event(const sl_nexmark_cfg_t *cfg, uint64_t n, s_slot_t *slots, bool no_extra,
                    sl_nexmark_event_t *out)
{
    out->n = n;
    out->kind = sl_nexmark_kind(n);
    out->date_time = sl_nexmark_time(cfg, n);
    out->extra[0] = '\0';
    out->extra_len = 0;
    s_rng_t r;
    s_rng_init(&r, cfg->seed, n, 1);
    int size = 0, avg = 0;
    switch (out->kind) {
    case SL_NEXMARK_PERSON:
        size = s_person(n, &r, out);
        avg = cfg->avg_person_bytes;
        break;
    case SL_NEXMARK_AUCTION:
        size = s_auction(cfg, n, &r, out);
        avg = cfg->avg_auction_bytes;
        break;
    case SL_NEXMARK_BID:
        s_bid(cfg, n, &r, slots, out);
        size = 8 * 4;
        avg = cfg->avg_bid_bytes;
        break;
    }
    /* the extra is the last draw of every event: skipping it changes nothing else */
    if (!no_extra)
        out->extra_len = (uint32_t)s_extra(&r, size, avg, out->extra);
}

int sl_nexmark_event(const sl_nexmark_cfg_t *cfg, uint64_t n, sl_nexmark_event_t *out)
{
    if (!cfg || !out || cfg->event_rate < 1)
        return SL_INVAL;
    s_event(cfg, n, NULL, false, out);
    return SL_OK;
}

int sl_nexmark_gen_new(const sl_nexmark_cfg_t *cfg, unsigned flags, sl_nexmark_gen_t **out)
{
    if (!out)
        return SL_INVAL;
    *out = NULL;
    if (sl_nexmark_cfg_check(cfg, NULL, 0) || (flags & ~SL_NEXMARK_GEN_NO_EXTRA))
        return SL_INVAL;
    sl_nexmark_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        return SL_NOMEM;
    g->slots = calloc(S_CHANNELS_NUMBER + S_LEN(s_hot_channels), sizeof *g->slots);
    if (!g->slots) {
        free(g);
        return SL_NOMEM;
    }
    g->cfg = *cfg;
    g->flags = flags;
    *out = g;
    return SL_OK;
}

int sl_nexmark_gen_event(sl_nexmark_gen_t *g, uint64_t n, sl_nexmark_event_t *out)
{
    if (!g || !out)
        return SL_INVAL;
    s_event(&g->cfg, n, g->slots, (g->flags & SL_NEXMARK_GEN_NO_EXTRA) != 0, out);
    return SL_OK;
}

void sl_nexmark_gen_destroy(sl_nexmark_gen_t **g)
{
    if (!g || !*g)
        return;
    free((*g)->slots);
    free(*g);
    *g = NULL;
}
