/* device_alerts.c — a process function: alert when a device goes silent.
 *
 * Build it like any plugin (CMake builds it as libsluice_device_alerts.so):
 *
 *     cc -shared -fPIC -I core/include -o libdevice_alerts.so device_alerts.c
 *
 * and use it keyed by device on a heartbeat stream with event time (see
 * jobs/device-alerts.yaml):
 *
 *     - { name: alerts, type: process, input: beats, key: [device], function: silence }
 *
 * Function:
 *   silence  process  device:string, ts:timestamp -> device:string, last_seen:timestamp,
 *                      alert_at:timestamp
 *
 * A device is silent after a heartbeat at s when no heartbeat follows in
 * (s, s + 30 s]: then one alert (device, s, s + 30 s) is emitted when the
 * watermark passes s + 30 s (so at end of input, the last heartbeat of
 * every device alerts too). A gap of exactly 30 s is not silence.
 *
 * How: every heartbeat sets an event-time timer at ts + 30 s and deletes
 * the timer of the heartbeat before it when it covers that one's 30 s. In
 * order, that is all. Heartbeats may arrive out of order (within the
 * watermark bound), so the function keeps the heartbeat times of the key it
 * may still need in a map state, ordered by time: a heartbeat arriving
 * late, between two others, deletes its predecessor's timer and sets none
 * of its own when its successor covers it. When the timer of s fires, the
 * watermark has passed s + 30 s, so every heartbeat up to there has been
 * seen: on_timer checks the successor of s once more and alerts. Times
 * that can no longer matter (30 s or more behind the watermark) are
 * removed, so the state stays small.
 */
#include <string.h>

#include "sluice/udf.h"

#define SILENCE_MS 30000

/* Map keys: an int64 as 8 big-endian bytes with the sign bit flipped, so
 * that the byte order of keys (the map's order) is the numeric order. */
static void s_put_time(uint8_t b[8], int64_t t)
{
    uint64_t u = (uint64_t)t ^ (UINT64_C(1) << 63);
    for (int i = 7; i >= 0; i--, u >>= 8)
        b[i] = (uint8_t)u;
}

static int64_t s_get_time(const uint8_t b[8])
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | b[i];
    return (int64_t)(u ^ (UINT64_C(1) << 63));
}

/* The time at index i of the key's heartbeats: 1 and *t, 0 past the end, < 0 error. */
static int s_beat_at(sl_udf_ctx_t *ctx, int i, int64_t *t)
{
    const void *k, *v;
    uint32_t klen, vlen;
    int rc = i < 0 ? 0 : ctx->host->map_at(ctx, "beats", (uint32_t)i, &k, &klen, &v, &vlen);
    if (rc == 1) {
        if (klen != 8) {
            ctx->host->error(ctx, "corrupt heartbeat state");
            return -1;
        }
        *t = s_get_time(k);
    }
    return rc;
}

/* Removes the heartbeats before `before` (they can no longer matter). */
static int s_prune(sl_udf_ctx_t *ctx, int64_t before)
{
    int64_t t;
    int rc;
    while ((rc = s_beat_at(ctx, 0, &t)) == 1 && t < before) {
        uint8_t k[8];
        s_put_time(k, t);
        if ((rc = ctx->host->map_remove(ctx, "beats", k, 8)) < 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

static int silence(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)in;
    (void)out;
    const sl_udf_host_t *h = ctx->host;
    int64_t ts = ctx->time; /* the event time: the `ts` field */
    int rc;
    /* Times whose timer fired or was deleted, and older, are not needed. */
    if (ctx->watermark != SL_UDF_TIME_MIN && ctx->watermark > INT64_MIN + SILENCE_MS &&
        (rc = s_prune(ctx, ctx->watermark - SILENCE_MS + 1)) < 0)
        return rc;
    uint8_t k[8];
    s_put_time(k, ts);
    const void *v;
    uint32_t vlen;
    if ((rc = h->map_get(ctx, "beats", k, 8, &v, &vlen)) != 0)
        return rc < 0 ? rc : 0; /* a duplicate heartbeat changes nothing */
    if ((rc = h->map_put(ctx, "beats", k, 8, "", 0)) < 0)
        return rc;
    int i = h->map_seek(ctx, "beats", k, 8); /* ts is at i */
    if (i < 0)
        return i;
    int64_t prev, next;
    int has_prev = s_beat_at(ctx, i - 1, &prev), has_next = s_beat_at(ctx, i + 1, &next);
    if (has_prev < 0 || has_next < 0)
        return -1;
    /* This heartbeat ends the silence after the previous one. */
    if (has_prev && ts - prev <= SILENCE_MS &&
        (rc = h->timer_delete(ctx, SL_UDF_EVENT_TIME, prev + SILENCE_MS)) < 0)
        return rc;
    /* Its own silence is ended already by a later one, or it may alert. */
    if (has_next && next - ts <= SILENCE_MS)
        return 0;
    return h->timer_set(ctx, SL_UDF_EVENT_TIME, ts + SILENCE_MS);
}

static int silence_timer(sl_udf_ctx_t *ctx, int64_t time, int kind)
{
    if (kind != SL_UDF_EVENT_TIME)
        return 0;
    int64_t s = time - SILENCE_MS, next;
    uint8_t k[8];
    s_put_time(k, s);
    int i = ctx->host->map_seek(ctx, "beats", k, 8);
    if (i < 0)
        return i;
    /* Every heartbeat up to `time` has been seen: one in (s, time] means no silence. */
    int rc = s_beat_at(ctx, i, &next);
    while (rc == 1 && next <= s)
        rc = s_beat_at(ctx, ++i, &next);
    if (rc < 0)
        return rc;
    if (rc == 1 && next <= time)
        return 0;
    sl_udf_value_t alert[3] = {
        ctx->key[0],
        {.type = SL_UDF_TIMESTAMP, .u.i = s},
        {.type = SL_UDF_TIMESTAMP, .u.i = time},
    };
    if ((rc = ctx->host->emit(ctx, alert)) < 0)
        return rc;
    return s_prune(ctx, s);
}

static const sl_udf_field_t s_in[] = {{"device", SL_UDF_STRING}, {"ts", SL_UDF_TIMESTAMP}};
static const sl_udf_field_t s_out[] = {
    {"device", SL_UDF_STRING}, {"last_seen", SL_UDF_TIMESTAMP}, {"alert_at", SL_UDF_TIMESTAMP}};

static const sl_udf_function_t s_functions[] = {
    {.name = "silence",
     .kind = SL_UDF_PROCESS,
     .in = s_in,
     .nin = 2,
     .out = s_out,
     .nout = 3,
     .call = silence,
     .on_timer = silence_timer},
};

static const sl_udf_plugin_t s_plugin = {
    .abi_version = SL_UDF_ABI_VERSION,
    .name = "device_alerts",
    .version = "1.0",
    .nfunctions = (int)(sizeof s_functions / sizeof *s_functions),
    .functions = s_functions,
};

/* The one symbol Sluice looks up. */
const sl_udf_plugin_t *sluice_plugin(void);
const sl_udf_plugin_t *sluice_plugin(void)
{
    return &s_plugin;
}
