/* nexmark.h — a deterministic Nexmark event generator (persons, auctions
 * and bids of an online auction site), after the model of the Beam / Flink
 * Nexmark generator (GeneratorConfig, PersonGenerator, AuctionGenerator,
 * BidGenerator), with a seedable PRNG.
 *
 * Event n (n = 0, 1, ...) is a pure function of (cfg, n): its kind comes
 * from n % 50 (1 person, then 3 auctions, then 46 bids), its ids from n as
 * Beam derives them (lastBase0PersonId / lastBase0AuctionId), and every
 * random choice from a PRNG seeded by (seed, n) alone. So a stream can be
 * split over P generators (generator i makes events i, i+P, ...) without
 * changing the global sequence. See docs/nexmark.md for the model and where
 * it differs from Beam's. */
#ifndef SLUICE_NEXMARK_H
#define SLUICE_NEXMARK_H
#include <stddef.h>
#include <stdint.h>

/* Proportions of the kinds in every block of 50 events (Beam defaults). */
#define SL_NEXMARK_PERSON_PROPORTION 1
#define SL_NEXMARK_AUCTION_PROPORTION 3
#define SL_NEXMARK_BID_PROPORTION 46
#define SL_NEXMARK_TOTAL_PROPORTION 50
/* First ids (Beam: GeneratorConfig.FIRST_PERSON_ID etc.). */
#define SL_NEXMARK_FIRST_PERSON_ID 1000
#define SL_NEXMARK_FIRST_AUCTION_ID 1000
#define SL_NEXMARK_FIRST_CATEGORY_ID 10
#define SL_NEXMARK_NUM_CATEGORIES 5
/* Default event-time rate (events/s) and first event time
 * (2024-01-01T00:00:00Z, epoch ms). */
#define SL_NEXMARK_DEFAULT_EVENT_RATE 10000
#define SL_NEXMARK_DEFAULT_FIRST_TIME 1704067200000LL

/* Capacities (with the terminating NUL) of the inline string fields. */
#define SL_NEXMARK_NAME_CAP 32
#define SL_NEXMARK_EMAIL_CAP 32
#define SL_NEXMARK_CARD_CAP 24
#define SL_NEXMARK_CITY_CAP 24
#define SL_NEXMARK_STATE_CAP 4
#define SL_NEXMARK_ITEM_CAP 24
#define SL_NEXMARK_DESC_CAP 104
#define SL_NEXMARK_CHANNEL_CAP 24
#define SL_NEXMARK_URL_CAP 128
#define SL_NEXMARK_EXTRA_CAP 640

typedef enum {
    SL_NEXMARK_PERSON,
    SL_NEXMARK_AUCTION,
    SL_NEXMARK_BID,
} sl_nexmark_kind_t;

/* The generator's configuration (a plain value; sl_nexmark_cfg_default
 * fills it with the defaults). */
typedef struct {
    uint64_t seed;              /* PRNG seed; the same seed gives the same stream */
    int64_t first_time_ms;      /* date_time of event 0 (epoch ms) */
    int64_t event_rate;         /* events per second of event time (>= 1) */
    int hot_auction_ratio;      /* 1 bid in this many is not for a hot auction (Beam: 2) */
    int hot_sellers_ratio;      /* 1 auction in this many is not by a hot seller (Beam: 4) */
    int hot_bidders_ratio;      /* 1 bid in this many is not by a hot bidder (Beam: 4) */
    int num_in_flight_auctions; /* auctions a bid may pick from (Beam: 100) */
    int num_active_people;      /* people a non-hot bidder / seller is drawn from (Beam: 1000) */
    int avg_person_bytes;       /* target average size of a person, sets its extra (Beam: 200) */
    int avg_auction_bytes;      /* same for an auction (Beam: 500) */
    int avg_bid_bytes;          /* same for a bid (Beam: 100) */
} sl_nexmark_cfg_t;

typedef struct {
    int64_t id;                            /* person id (>= FIRST_PERSON_ID) */
    char name[SL_NEXMARK_NAME_CAP];        /* "First Last" */
    char email[SL_NEXMARK_EMAIL_CAP];      /* "xxxx@yyy.com" */
    char credit_card[SL_NEXMARK_CARD_CAP]; /* "dddd dddd dddd dddd" */
    char city[SL_NEXMARK_CITY_CAP];
    char state[SL_NEXMARK_STATE_CAP];
} sl_nexmark_person_t;

typedef struct {
    int64_t id; /* auction id (>= FIRST_AUCTION_ID) */
    char item_name[SL_NEXMARK_ITEM_CAP];
    char description[SL_NEXMARK_DESC_CAP];
    int64_t initial_bid; /* cents, >= 100 */
    int64_t reserve;     /* cents, > initial_bid */
    int64_t expires;     /* epoch ms, > date_time */
    int64_t seller;      /* a person id */
    int64_t category;    /* FIRST_CATEGORY_ID + 0..NUM_CATEGORIES-1 */
} sl_nexmark_auction_t;

typedef struct {
    int64_t auction;                      /* an auction id */
    int64_t bidder;                       /* a person id */
    int64_t price;                        /* cents, >= 100 */
    char channel[SL_NEXMARK_CHANNEL_CAP]; /* "Google", ..., or "channel-N" */
    char url[SL_NEXMARK_URL_CAP];
    uint32_t channel_len; /* strlen(channel) */
    uint32_t url_len;     /* strlen(url) */
} sl_nexmark_bid_t;

/* One event: kind selects which of person / auction / bid is set. */
typedef struct {
    uint64_t n; /* event number */
    sl_nexmark_kind_t kind;
    int64_t date_time;                /* event time, epoch ms */
    sl_nexmark_person_t person;       /* kind == PERSON */
    sl_nexmark_auction_t auction;     /* kind == AUCTION */
    sl_nexmark_bid_t bid;             /* kind == BID */
    char extra[SL_NEXMARK_EXTRA_CAP]; /* filler letters, sized by avg_*_bytes */
    uint32_t extra_len;               /* strlen(extra) */
} sl_nexmark_event_t;

/* A generator with per-channel caches (opaque): the same events as
 * sl_nexmark_event, cheaper; one per thread. */
typedef struct sl_nexmark_gen sl_nexmark_gen_t;

/* sl_nexmark_gen_new flag: leave every event's extra empty (for consumers
 * that never read it); every other field is as without the flag. */
#define SL_NEXMARK_GEN_NO_EXTRA 1u

/* Fills cfg with Beam's NexmarkConfiguration defaults, seed 0 and the
 * default first time and event rate. */
void sl_nexmark_cfg_default(sl_nexmark_cfg_t *cfg);
/* SL_OK when every field of cfg is in range, else SL_INVAL with a message
 * in err (cap bytes). */
int sl_nexmark_cfg_check(const sl_nexmark_cfg_t *cfg, char *err, size_t cap);
/* Event n of the stream cfg describes, into *out (no allocation). cfg must
 * pass sl_nexmark_cfg_check. Returns SL_OK, or SL_INVAL for a NULL
 * argument. */
int sl_nexmark_event(const sl_nexmark_cfg_t *cfg, uint64_t n, sl_nexmark_event_t *out);
/* A generator of the stream cfg describes (copied; must pass
 * sl_nexmark_cfg_check), flags a mask of SL_NEXMARK_GEN_*, into *out.
 * Returns SL_OK, SL_INVAL or SL_NOMEM. */
int sl_nexmark_gen_new(const sl_nexmark_cfg_t *cfg, unsigned flags, sl_nexmark_gen_t **out);
/* Event n of g's stream into *out: the same event as sl_nexmark_event
 * (extra empty under SL_NEXMARK_GEN_NO_EXTRA). Returns SL_OK, or SL_INVAL
 * for a NULL argument. */
int sl_nexmark_gen_event(sl_nexmark_gen_t *g, uint64_t n, sl_nexmark_event_t *out);
/* Frees *g and sets it to NULL; accepts NULL. */
void sl_nexmark_gen_destroy(sl_nexmark_gen_t **g);
/* Kind of event n (n % 50 against the proportions). */
sl_nexmark_kind_t sl_nexmark_kind(uint64_t n);
/* Name of a kind: "person", "auction", "bid". */
const char *sl_nexmark_kind_name(sl_nexmark_kind_t k);
/* date_time of event n: first_time_ms + n * 1000 / event_rate (truncated). */
int64_t sl_nexmark_time(const sl_nexmark_cfg_t *cfg, uint64_t n);
/* Base-0 id of the last person / auction generated at or before event n
 * (Beam's lastBase0PersonId / lastBase0AuctionId; the auction one is -1
 * before the first auction). */
int64_t sl_nexmark_last_person(uint64_t n);
int64_t sl_nexmark_last_auction(uint64_t n);

#endif
