/* nexmark_ref.c — reference results of the Nexmark queries of
 * jobs/nexmark/ by a straight C loop over sl_nexmark_event, independent of
 * the engine's operators and writers: the scenario test compares the
 * engine's output with this, and it is the bare-loop baseline of a
 * benchmark.
 *
 *   nexmark_ref QUERY EVENTS SEED OUTPUT.csv     (QUERY: q0, q1 or q2)
 *
 * Writes the CSV the file sink writes: a header, then one row per result,
 * fields quoted only when empty or holding ',', '"', CR or LF, timestamps
 * as YYYY-MM-DDTHH:MM:SS.mmmZ. Uses the default event model of the
 * `nexmark` source (first event time, 10 000 events/s of event time). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/nexmark.h"

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

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: nexmark_ref q0|q1|q2 EVENTS SEED OUTPUT.csv\n");
        return 2;
    }
    const char *q = argv[1];
    if (strcmp(q, "q0") && strcmp(q, "q1") && strcmp(q, "q2")) {
        fprintf(stderr, "nexmark_ref: unknown query '%s' (q0, q1 or q2)\n", q);
        return 2;
    }
    char *end;
    long long events = strtoll(argv[2], &end, 10);
    if (*end || events < 0) {
        fprintf(stderr, "nexmark_ref: bad event count '%s'\n", argv[2]);
        return 2;
    }
    unsigned long long seed = strtoull(argv[3], &end, 10);
    if (*end) {
        fprintf(stderr, "nexmark_ref: bad seed '%s'\n", argv[3]);
        return 2;
    }
    FILE *f = fopen(argv[4], "w");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    sl_nexmark_cfg_t cfg;
    sl_nexmark_cfg_default(&cfg);
    cfg.seed = seed;
    static sl_nexmark_event_t e;
    if (!strcmp(q, "q0"))
        fputs("auction,bidder,price,channel,url,date_time,extra\n", f);
    else if (!strcmp(q, "q1"))
        fputs("auction,bidder,price,date_time,extra\n", f);
    else
        fputs("auction,price\n", f);
    for (long long n = 0; n < events; n++) {
        if (sl_nexmark_kind((uint64_t)n) != SL_NEXMARK_BID)
            continue;
        if (sl_nexmark_event(&cfg, (uint64_t)n, &e)) {
            fprintf(stderr, "nexmark_ref: event %lld failed\n", n);
            return 1;
        }
        const sl_nexmark_bid_t *b = &e.bid;
        if (!strcmp(q, "q0")) {
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
    if (fclose(f) != 0) {
        perror(argv[4]);
        return 1;
    }
    return 0;
}
