/* ysb.c — the deterministic Yahoo Streaming Benchmark event generator (see
 * sluice/ysb.h and docs/ysb.md).
 *
 * The pools of ids are uuid-like strings from splitmix64 streams: users,
 * pages and ips from (seed, salt, index), ads and campaigns from a fixed
 * seed, so the ad -> campaign table does not depend on the events' seed.
 * Each event costs one splitmix64 draw: no formatting, no allocation. */
#include "sluice/ysb.h"

#include <stdio.h>
#include <string.h>

#include "sluice/err.h"

/* Salts of the streams of the pools; the fixed seed of ads and campaigns. */
#define S_SALT_USER 1
#define S_SALT_PAGE 2
#define S_SALT_IP 3
#define S_SALT_AD 4
#define S_SALT_CAMPAIGN 5
#define S_SALT_EVENT 6
#define S_TABLE_SEED 0x5953422d61647321ULL /* "YSB-ads!" */

static const char *const s_ad_types[SL_YSB_AD_TYPES] = {"banner", "modal", "sponsored-search",
                                                        "mail", "mobile"};
static const char *const s_event_types[SL_YSB_EVENT_TYPES] = {"view", "click", "purchase"};

static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Draw k of the stream (seed, salt, i). */
static uint64_t s_draw(uint64_t seed, uint64_t salt, uint64_t i, uint64_t k)
{
    uint64_t s = s_mix(s_mix(seed + 0x9e3779b97f4a7c15ULL) ^ (i + salt * 0x632be59bd9b4e019ULL));
    return s_mix(s + (k + 1) * 0x9e3779b97f4a7c15ULL);
}

/* A version-4-shaped uuid from the stream (seed, salt, i) into out (37 bytes). */
static void s_uuid(uint64_t seed, uint64_t salt, uint64_t i, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = s_draw(seed, salt, i, 0), b = s_draw(seed, salt, i, 1);
    char digits[32];
    for (int k = 0; k < 16; k++) {
        digits[k] = hex[(a >> (4 * k)) & 15];
        digits[16 + k] = hex[(b >> (4 * k)) & 15];
    }
    digits[12] = '4';                      /* version */
    digits[16] = hex[8 + ((b >> 62) & 3)]; /* variant 10xx */
    int o = 0;
    for (int k = 0; k < 32; k++) {
        if (k == 8 || k == 12 || k == 16 || k == 20)
            out[o++] = '-';
        out[o++] = digits[k];
    }
    out[o] = '\0';
}

void sl_ysb_cfg_default(sl_ysb_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 0;
    cfg->first_time_ms = SL_YSB_DEFAULT_FIRST_TIME;
    cfg->event_rate = SL_YSB_DEFAULT_EVENT_RATE;
}

int sl_ysb_cfg_check(const sl_ysb_cfg_t *cfg, char *err, size_t cap)
{
    const char *what = NULL;
    if (!cfg)
        what = "no configuration";
    else if (cfg->event_rate < 1 || cfg->event_rate > 1000000000)
        what = "event_rate must be 1..1000000000 events/s";
    if (!what)
        return SL_OK;
    if (err && cap)
        snprintf(err, cap, "ysb: %s", what);
    return SL_INVAL;
}

int sl_ysb_gen_init(sl_ysb_gen_t *g, const sl_ysb_cfg_t *cfg)
{
    if (!g || sl_ysb_cfg_check(cfg, NULL, 0) != SL_OK)
        return SL_INVAL;
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    g->event_seed = s_mix(cfg->seed + 0x9e3779b97f4a7c15ULL);
    for (int i = 0; i < SL_YSB_USERS; i++) {
        s_uuid(cfg->seed, S_SALT_USER, (uint64_t)i, g->users[i]);
        uint64_t x = s_draw(cfg->seed, S_SALT_IP, (uint64_t)i, 0);
        snprintf(g->ips[i], sizeof g->ips[i], "%u.%u.%u.%u", (unsigned)(1 + x % 223),
                 (unsigned)((x >> 8) & 255), (unsigned)((x >> 16) & 255),
                 (unsigned)(1 + ((x >> 24) % 254)));
    }
    for (int i = 0; i < SL_YSB_PAGES; i++)
        s_uuid(cfg->seed, S_SALT_PAGE, (uint64_t)i, g->pages[i]);
    for (int i = 0; i < SL_YSB_ADS; i++)
        s_uuid(S_TABLE_SEED, S_SALT_AD, (uint64_t)i, g->ads[i]);
    for (int i = 0; i < SL_YSB_CAMPAIGNS; i++)
        s_uuid(S_TABLE_SEED, S_SALT_CAMPAIGN, (uint64_t)i, g->campaigns[i]);
    return SL_OK;
}

int64_t sl_ysb_time(const sl_ysb_cfg_t *cfg, uint64_t n)
{
    /* n * 1000 / rate without overflowing for large n */
    uint64_t rate = (uint64_t)cfg->event_rate;
    uint64_t whole = n / rate, part = n % rate;
    return cfg->first_time_ms + (int64_t)(whole * 1000 + part * 1000 / rate);
}

const char *sl_ysb_event_type_name(int k)
{
    return k >= 0 && k < SL_YSB_EVENT_TYPES ? s_event_types[k] : "?";
}

void sl_ysb_event(const sl_ysb_gen_t *g, uint64_t n, sl_ysb_event_t *out)
{
    /* one draw: 100 * 100 * 1000 * 5 * 3 = 1.5e8 combinations of a 64-bit
     * value (the bias is below 1e-10) */
    uint64_t x = s_mix(s_mix(g->event_seed ^ (n + S_SALT_EVENT * 0x632be59bd9b4e019ULL)) +
                       0x9e3779b97f4a7c15ULL); /* = s_draw(seed, S_SALT_EVENT, n, 0) */
    int user = (int)(x % SL_YSB_USERS);
    x /= SL_YSB_USERS;
    int page = (int)(x % SL_YSB_PAGES);
    x /= SL_YSB_PAGES;
    int ad = (int)(x % SL_YSB_ADS);
    x /= SL_YSB_ADS;
    int ad_type = (int)(x % SL_YSB_AD_TYPES);
    x /= SL_YSB_AD_TYPES;
    int kind = (int)(x % SL_YSB_EVENT_TYPES);
    out->n = n;
    out->user_id = g->users[user];
    out->page_id = g->pages[page];
    out->ad_id = g->ads[ad];
    out->ad_type = s_ad_types[ad_type];
    out->event_type = s_event_types[kind];
    out->ip = g->ips[user];
    out->event_time = sl_ysb_time(&g->cfg, n);
    out->ad = ad;
    out->campaign = ad / SL_YSB_ADS_PER_CAMPAIGN;
    out->event_kind = kind;
}
