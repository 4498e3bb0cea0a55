/* ysb.h — a deterministic event generator for the Yahoo Streaming
 * Benchmark (YSB): ad events (user_id, page_id, ad_id, ad_type,
 * event_type, event_time, ip) over SL_YSB_CAMPAIGNS campaigns of
 * SL_YSB_ADS_PER_CAMPAIGN ads each, event types view / click / purchase in
 * equal shares (docs/ysb.md).
 *
 * As in the original YSB generator, the identifiers are drawn from pools
 * of uuid-like strings made once: 100 users and 100 pages (from the seed),
 * 1000 ads and 100 campaigns (fixed, independent of the seed, so that the
 * ad -> campaign table jobs/data/ysb-campaigns.csv fits every seed). Ad a
 * belongs to campaign a / SL_YSB_ADS_PER_CAMPAIGN. The ip is the user's
 * (one per user).
 *
 * Event n (n = 0, 1, ...) is a pure function of (seed, n): one splitmix64
 * draw seeded by (seed, n) picks the user, page, ad, ad type and event
 * type, and its event time is first_time_ms + n * 1000 / event_rate. So a
 * stream can be split over P generators (generator i makes events i, i+P,
 * ...) without changing the global sequence. Nothing is allocated per
 * event: the strings of an event point into the generator's pools. */
#ifndef SLUICE_YSB_H
#define SLUICE_YSB_H
#include <stddef.h>
#include <stdint.h>

#define SL_YSB_CAMPAIGNS 100
#define SL_YSB_ADS_PER_CAMPAIGN 10
#define SL_YSB_ADS (SL_YSB_CAMPAIGNS * SL_YSB_ADS_PER_CAMPAIGN)
#define SL_YSB_USERS 100
#define SL_YSB_PAGES 100
#define SL_YSB_AD_TYPES 5
#define SL_YSB_EVENT_TYPES 3
/* Length of a uuid-like id ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). */
#define SL_YSB_UUID_LEN 36
#define SL_YSB_IP_CAP 16
/* Default event-time rate (events/s) and first event time
 * (2024-01-01T00:00:00Z, epoch ms). */
#define SL_YSB_DEFAULT_EVENT_RATE 100000
#define SL_YSB_DEFAULT_FIRST_TIME 1704067200000LL

/* The generator's configuration (a plain value; sl_ysb_cfg_default fills
 * it with the defaults). */
typedef struct {
    uint64_t seed;         /* PRNG seed of the events and the user / page pools */
    int64_t first_time_ms; /* event_time of event 0 (epoch ms) */
    int64_t event_rate;    /* events per second of event time (1..10^9) */
} sl_ysb_cfg_t;

/* A generator: the configuration and the id pools (a plain value, about
 * 50 KB; nothing to free). */
typedef struct {
    sl_ysb_cfg_t cfg;
    uint64_t event_seed; /* the seed's half of the events' PRNG (precomputed) */
    char users[SL_YSB_USERS][SL_YSB_UUID_LEN + 1];         /* user ids */
    char pages[SL_YSB_PAGES][SL_YSB_UUID_LEN + 1];         /* page ids */
    char ips[SL_YSB_USERS][SL_YSB_IP_CAP];                 /* ip of each user */
    char ads[SL_YSB_ADS][SL_YSB_UUID_LEN + 1];             /* ad ids */
    char campaigns[SL_YSB_CAMPAIGNS][SL_YSB_UUID_LEN + 1]; /* campaign ids */
} sl_ysb_gen_t;

/* One event; the strings are NUL-terminated and point into the generator
 * (valid while it is). */
typedef struct {
    uint64_t n;             /* event number */
    const char *user_id;    /* uuid-like */
    const char *page_id;    /* uuid-like */
    const char *ad_id;      /* uuid-like */
    const char *ad_type;    /* banner, modal, sponsored-search, mail, mobile */
    const char *event_type; /* view, click, purchase */
    const char *ip;         /* dotted quad */
    int64_t event_time;     /* epoch ms */
    int ad;                 /* ad index 0..SL_YSB_ADS-1 */
    int campaign;           /* campaign index of the ad */
    int event_kind;         /* 0 view, 1 click, 2 purchase */
} sl_ysb_event_t;

/* Fills cfg with seed 0 and the default first time and event rate. */
void sl_ysb_cfg_default(sl_ysb_cfg_t *cfg);
/* SL_OK when every field of cfg is in range, else SL_INVAL with a message
 * in err (cap bytes). */
int sl_ysb_cfg_check(const sl_ysb_cfg_t *cfg, char *err, size_t cap);
/* Makes the generator of cfg (fills the pools). Returns SL_OK, or
 * SL_INVAL for NULL arguments or a cfg failing sl_ysb_cfg_check. */
int sl_ysb_gen_init(sl_ysb_gen_t *g, const sl_ysb_cfg_t *cfg);
/* Event n of the stream into *out (no allocation). g must be initialised. */
void sl_ysb_event(const sl_ysb_gen_t *g, uint64_t n, sl_ysb_event_t *out);
/* event_time of event n: first_time_ms + n * 1000 / event_rate (truncated). */
int64_t sl_ysb_time(const sl_ysb_cfg_t *cfg, uint64_t n);
/* Name of event kind k (0 view, 1 click, 2 purchase). */
const char *sl_ysb_event_type_name(int k);

#endif
