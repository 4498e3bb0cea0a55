/* op_discard.c — the `discard` sink: counts the records it receives and
 * drops them. It runs at the job's parallelism, so it chains into the task
 * that feeds it: what a benchmark measures is the pipeline, not an output
 * format or a final exchange. Its snapshot is the count (a version byte,
 * then the u64), so a restored job goes on counting.
 *
 * With `latency: FIELD` it also measures, per record, the wall clock
 * (CLOCK_REALTIME) minus FIELD, a timestamp: with a `realtime` source whose
 * event time is ingestion time, that is ingestion-to-sink latency for
 * record fields, emission latency for a window's end. Only records whose
 * FIELD lies between `latency_warmup` and `latency_warmup` + `latency_span`
 * after the first one seen count: not the pipeline starting up, and not the
 * windows that the end of a bounded input closes early. A histogram of 1 ms buckets up to 60 s (and
 * one beyond) gives p50 / p99 / max, printed at the end of input as one line on stderr
 * (docs/benchmarks.md#latency). Latency is not in the snapshot: it is a measurement of one run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "operator.h"
#include "sluice/err.h"

#define S_BUCKETS 60000 /* 1 ms each; one more for everything beyond */

typedef struct {
    uint64_t *hist;   /* S_BUCKETS + 1 counts of latency in ms */
    uint64_t n;       /* records measured */
    int64_t max_ms;   /* largest latency seen */
    int64_t first_ts; /* FIELD of the first record, INT64_MIN before */
    int64_t now_ms;   /* wall clock read once per batch */
    uint64_t skipped; /* records outside the warm-up .. span of event time */
} s_lat_t;

static int s_open(sl_opctx_t *c)
{
    if (c->node->latency_field < 0)
        return SL_OK;
    s_lat_t *l = calloc(1, sizeof *l);
    uint64_t *h = calloc(S_BUCKETS + 1, sizeof *h);
    if (!l || !h) {
        free(l);
        free(h);
        return sl_op_fail(c, SL_NOMEM, "out of memory");
    }
    l->hist = h;
    l->first_ts = INT64_MIN;
    c->state = l;
    return SL_OK;
}

static void s_measure(sl_opctx_t *c, s_lat_t *l, const sl_batch_t *in)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    l->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int f = c->node->latency_field;
    const uint8_t *row = in->data;
    for (uint32_t i = 0; i < in->count; i++, row += sl_row_len(row)) {
        sl_value_t v;
        sl_row_get(c->in, row, f, &v);
        if (v.is_null)
            continue;
        if (l->first_ts == INT64_MIN)
            l->first_ts = v.u.i;
        int64_t after = v.u.i - l->first_ts - c->node->latency_warmup_ms;
        if (after < 0 || (c->node->latency_span_ms > 0 && after >= c->node->latency_span_ms)) {
            l->skipped++;
            continue;
        }
        int64_t ms = l->now_ms - v.u.i;
        if (ms < 0)
            ms = 0; /* the clock's millisecond not yet at the record's */
        l->hist[ms < S_BUCKETS ? ms : S_BUCKETS]++;
        l->n++;
        if (ms > l->max_ms)
            l->max_ms = ms;
    }
}

static int s_process(sl_opctx_t *c, const sl_batch_t *in, int input)
{
    (void)input;
    if (c->state)
        s_measure(c, c->state, in);
    atomic_fetch_add_explicit(&c->records_out, in->count, memory_order_relaxed);
    return SL_OK;
}

/* The smallest latency (ms) at or below which fraction q of the measured
 * records fall; S_BUCKETS means "beyond the histogram". */
static int64_t s_quantile(const s_lat_t *l, double q)
{
    uint64_t want = (uint64_t)((double)l->n * q + 0.999999), seen = 0;
    if (want == 0)
        want = 1;
    for (int64_t i = 0; i <= S_BUCKETS; i++)
        if ((seen += l->hist[i]) >= want)
            return i;
    return S_BUCKETS;
}

static int s_finish(sl_opctx_t *c)
{
    const s_lat_t *l = c->state;
    if (!l)
        return SL_OK;
    if (l->n == 0)
        fprintf(stderr, "latency %s[%d]: no records after the warm-up\n", c->node->name,
                c->subtask);
    else
        fprintf(stderr,
                "latency %s[%d]: p50 %lld ms p99 %lld ms max %lld ms over %llu records "
                "(%llu outside the measured span)\n",
                c->node->name, c->subtask, (long long)s_quantile(l, 0.5),
                (long long)s_quantile(l, 0.99), (long long)l->max_ms, (unsigned long long)l->n,
                (unsigned long long)l->skipped);
    return SL_OK;
}

static void s_close(sl_opctx_t *c)
{
    s_lat_t *l = c->state;
    if (l)
        free(l->hist);
    free(l);
    c->state = NULL;
}

#define S_SNAP_VERSION 1

static int s_snapshot(sl_opctx_t *c, sl_snap_w_t *w)
{
    sl_snap_u8(w, S_SNAP_VERSION);
    sl_snap_u64(w, atomic_load_explicit(&c->records_out, memory_order_relaxed));
    return w->err;
}

static int s_restore(sl_opctx_t *c, sl_snap_r_t *r)
{
    uint8_t v = sl_snap_get_u8(r);
    uint64_t n = sl_snap_get_u64(r);
    if (r->err || v != S_SNAP_VERSION || r->left)
        return sl_op_fail(c, SL_DATA, "discard '%s': not a snapshot of this sink (version %u)",
                          c->node->name, v);
    atomic_fetch_add_explicit(&c->records_out, n, memory_order_relaxed);
    return SL_OK;
}

const sl_op_vtable_t sl_op_discard_sink = {.open = s_open,
                                           .process = s_process,
                                           .finish = s_finish,
                                           .close = s_close,
                                           .snapshot = s_snapshot,
                                           .restore = s_restore};
