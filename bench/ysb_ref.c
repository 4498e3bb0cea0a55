/* ysb_ref.c — reference results, table and single-thread ceiling of the
 * Yahoo Streaming Benchmark job jobs/ysb.yaml, by straight C loops over
 * sl_ysb_event (sluice/ysb.h), independent of the engine's operators and
 * writers.
 *
 *   ysb_ref campaigns OUTPUT.csv
 *       the ad -> campaign table (jobs/data/ysb-campaigns.csv): ad_id,
 *       campaign_id, valid_from (1970-01-01T00:00:00Z), 1000 rows
 *   ysb_ref ref EVENTS SEED OUTPUT.csv [EVENT_RATE]
 *       what jobs/ysb.yaml writes for events 0 .. EVENTS-1 of seed SEED at
 *       EVENT_RATE events/s of event time (default 100 000): per campaign
 *       and 10 s tumbling window (aligned to epoch 0) with a view, the
 *       campaign_id, window_start, window_end, views (count) and latest
 *       (max event_time); the CSV the file sink writes (a header, no
 *       quoting needed, timestamps as YYYY-MM-DDTHH:MM:SS.mmmZ), rows in
 *       window then campaign order
 *   ysb_ref ceiling EVENTS SEED [EVENT_RATE]
 *       the same computation as a benchmark ceiling: one thread, no
 *       framework, done the way a hand-written YSB does it per event
 *       (compare event_type with "view", look the ad_id string up in a
 *       hash table of the 1000 ads, count per campaign in the open window,
 *       emit a window's counts when an event of a later window arrives);
 *       prints the result rows, events, seconds, events/s and the CPU
 *       seconds to stdout, and discards the rows */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/ysb.h"

#define S_WINDOW 10000 /* ms */
#define S_HASH_SLOTS 4096

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

static int64_t s_align(int64_t t)
{
    return t - ((t % S_WINDOW) + S_WINDOW) % S_WINDOW;
}

static int s_campaigns(const char *path)
{
    static sl_ysb_gen_t g;
    sl_ysb_cfg_t cfg;
    sl_ysb_cfg_default(&cfg);
    sl_ysb_gen_init(&g, &cfg);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "ad_id,campaign_id,valid_from\n");
    for (int a = 0; a < SL_YSB_ADS; a++)
        fprintf(f, "%s,%s,1970-01-01T00:00:00Z\n", g.ads[a],
                g.campaigns[a / SL_YSB_ADS_PER_CAMPAIGN]);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* Counts and latest event time of one window, per campaign. */
typedef struct {
    int64_t count[SL_YSB_CAMPAIGNS];
    int64_t latest[SL_YSB_CAMPAIGNS];
} s_win_t;

static int s_ref(long long events, const sl_ysb_cfg_t *cfg, const char *path)
{
    static sl_ysb_gen_t g;
    sl_ysb_gen_init(&g, cfg);
    int64_t first = s_align(sl_ysb_time(cfg, 0));
    int64_t last = events > 0 ? s_align(sl_ysb_time(cfg, (uint64_t)events - 1)) : first;
    size_t nwin = (size_t)((last - first) / S_WINDOW + 1);
    s_win_t *w = calloc(nwin, sizeof *w);
    if (!w) {
        fprintf(stderr, "ysb_ref: out of memory\n");
        return 1;
    }
    sl_ysb_event_t e;
    for (long long n = 0; n < events; n++) {
        sl_ysb_event(&g, (uint64_t)n, &e);
        if (strcmp(e.event_type, "view") != 0)
            continue;
        s_win_t *x = &w[(s_align(e.event_time) - first) / S_WINDOW];
        x->count[e.campaign]++;
        if (x->count[e.campaign] == 1 || e.event_time > x->latest[e.campaign])
            x->latest[e.campaign] = e.event_time;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        free(w);
        return 1;
    }
    fprintf(f, "campaign_id,window_start,window_end,views,latest\n");
    for (size_t i = 0; i < nwin; i++)
        for (int c = 0; c < SL_YSB_CAMPAIGNS; c++) {
            if (!w[i].count[c])
                continue;
            int64_t start = first + (int64_t)i * S_WINDOW;
            fprintf(f, "%s,", g.campaigns[c]);
            s_ts(f, start);
            fputc(',', f);
            s_ts(f, start + S_WINDOW);
            fprintf(f, ",%lld,", (long long)w[i].count[c]);
            s_ts(f, w[i].latest[c]);
            fputc('\n', f);
        }
    free(w);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* ---- the ceiling ------------------------------------------------------------------ */

static uint64_t s_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

typedef struct {
    const char *key; /* ad id (NULL: empty slot) */
    int campaign;
} s_slot_t;

static double s_now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_ceiling(long long events, const sl_ysb_cfg_t *cfg)
{
    static sl_ysb_gen_t g;
    sl_ysb_gen_init(&g, cfg);
    /* the table, as a hash-join build side: ad id string -> campaign */
    static s_slot_t slots[S_HASH_SLOTS];
    for (int a = 0; a < SL_YSB_ADS; a++) {
        uint64_t h = s_hash(g.ads[a], SL_YSB_UUID_LEN) & (S_HASH_SLOTS - 1);
        while (slots[h].key)
            h = (h + 1) & (S_HASH_SLOTS - 1);
        slots[h].key = g.ads[a];
        slots[h].campaign = a / SL_YSB_ADS_PER_CAMPAIGN;
    }
    double t0 = s_now(CLOCK_MONOTONIC), c0 = s_now(CLOCK_PROCESS_CPUTIME_ID);
    static s_win_t w;
    int64_t open = INT64_MIN; /* start of the open window */
    long long rows = 0, views = 0;
    volatile int64_t sink = 0;
    sl_ysb_event_t e;
    for (long long n = 0; n < events; n++) {
        sl_ysb_event(&g, (uint64_t)n, &e);
        if (strcmp(e.event_type, "view") != 0)
            continue;
        views++;
        uint64_t h = s_hash(e.ad_id, SL_YSB_UUID_LEN) & (S_HASH_SLOTS - 1);
        while (slots[h].key && memcmp(slots[h].key, e.ad_id, SL_YSB_UUID_LEN) != 0)
            h = (h + 1) & (S_HASH_SLOTS - 1);
        if (!slots[h].key)
            continue; /* unknown ad */
        int c = slots[h].campaign;
        int64_t start = s_align(e.event_time);
        if (start != open) { /* events come in time order: the open window is complete */
            for (int k = 0; k < SL_YSB_CAMPAIGNS; k++)
                if (w.count[k]) {
                    rows++;
                    sink += w.count[k] + w.latest[k];
                }
            memset(&w, 0, sizeof w);
            open = start;
        }
        w.count[c]++;
        if (e.event_time > w.latest[c])
            w.latest[c] = e.event_time;
    }
    for (int k = 0; k < SL_YSB_CAMPAIGNS; k++)
        if (w.count[k]) {
            rows++;
            sink += w.count[k] + w.latest[k];
        }
    double secs = s_now(CLOCK_MONOTONIC) - t0, cpu = s_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("rows %lld views %lld events %lld seconds %.3f events/s %.0f cpu %.3f\n", rows, views,
           events, secs, secs > 0 ? (double)events / secs : 0.0, cpu);
    return 0;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: ysb_ref campaigns OUTPUT.csv\n"
                    "       ysb_ref ref EVENTS SEED OUTPUT.csv [EVENT_RATE]\n"
                    "       ysb_ref ceiling EVENTS SEED [EVENT_RATE]\n");
    return 2;
}

/* Parses a number in [min, max] or says what is wrong. */
static int s_num(const char *s, long long min, long long max, const char *what, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "ysb_ref: bad %s '%s' (%lld..%lld)\n", what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage();
    const char *mode = argv[1];
    if (strcmp(mode, "campaigns") == 0)
        return argc == 3 ? s_campaigns(argv[2]) : s_usage();
    int is_ref = strcmp(mode, "ref") == 0;
    if (!is_ref && strcmp(mode, "ceiling") != 0)
        return s_usage();
    int nargs = is_ref ? 5 : 4; /* without the optional event rate */
    if (argc != nargs && argc != nargs + 1)
        return s_usage();
    long long events, seed, rate = SL_YSB_DEFAULT_EVENT_RATE;
    if (s_num(argv[2], 0, INT64_MAX / 2, "event count", &events) ||
        s_num(argv[3], 0, INT64_MAX, "seed", &seed) ||
        (argc == nargs + 1 && s_num(argv[nargs], 1, 1000000000, "event rate", &rate)))
        return 2;
    sl_ysb_cfg_t cfg;
    sl_ysb_cfg_default(&cfg);
    cfg.seed = (uint64_t)seed;
    cfg.event_rate = rate;
    return is_ref ? s_ref(events, &cfg, argv[4]) : s_ceiling(events, &cfg);
}
