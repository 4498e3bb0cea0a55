/* pacer.h — paces a source to a rate of records per second.
 *
 * Used by the generator source. Before each record the source
 * calls sl_pacer_wait, which checks the cancel flag every 256 records and,
 * when the source is ahead of its rate, flushes the pending batch (so slow
 * streams do not sit in a half-full batch) and sleeps in short steps that
 * watch the cancel flag. */
#ifndef SLUICE_PACER_H
#define SLUICE_PACER_H
#include <stdbool.h>
#include <stdint.h>

#include "operator.h"

typedef struct {
    double rate;     /* records/s of this subtask; 0 = as fast as possible */
    double t0;       /* monotonic seconds at the start */
    int64_t emitted; /* records emitted so far (the caller counts them) */
} sl_pacer_t;

/* total_rate records/s shared by parallelism subtasks (0 = unpaced). */
void sl_pacer_init(sl_pacer_t *p, double total_rate, int parallelism);
/* Waits until record p->emitted is due. Returns 0, SL_CANCELED or the
 * error of flushing the emitter. */
int sl_pacer_wait(sl_pacer_t *p, sl_opctx_t *c);
/* Realtime pacing (`realtime: true`): waits until the wall clock
 * (CLOCK_REALTIME, ms since the epoch) reaches due_ms, flushing and
 * watching the cancel flag like sl_pacer_wait. *now_ms caches the clock
 * between calls (start it at 0), so events due in the same millisecond cost
 * no clock read. Returns 0, SL_CANCELED or the error of flushing. */
int sl_pacer_until(sl_opctx_t *c, int64_t due_ms, int64_t *now_ms);

/* ---- sequence sources ------------------------------------------------------
 * The generating sources (nexmark, ysb) emit event n of a deterministic
 * sequence as a pure function of n; subtask i of P emits n = i, i+P, ...,
 * so the union of the subtasks is the stream of P = 1. Their position is
 * the index of the next event of the subtask. */
typedef struct {
    int64_t events; /* events in all, -1 = unbounded */
    double rate;    /* events/s of wall clock in all, 0 = as fast as possible */
    bool realtime;  /* emit event n when the wall clock reaches time_of(n) */
    int64_t (*time_of)(const void *model, uint64_t n); /* event time of n (realtime) */
    const void *model;                                 /* time_of's argument */
    /* Generates event n and emits it; returns 0 or an error (c->err set). */
    int (*emit)(sl_opctx_t *c, int64_t n);
} sl_seq_source_t;

/* Runs a sequence source from *next (advanced as events go out) to the end
 * of its share: a checkpoint opportunity before every event, pacing by rate
 * or realtime, then one last checkpoint opportunity. Returns 0, SL_CANCELED
 * or the error of emitting, snapshotting or sending. */
int sl_seq_run(sl_opctx_t *c, const sl_seq_source_t *src, int64_t *next);
/* Snapshot of the position: a version byte, then next. */
int sl_seq_snapshot(int64_t next, sl_snap_w_t *w);
/* Reads it back into *next; SL_DATA (naming the source, kind as in "nexmark
 * source") when it is garbage or not a position of this subtask. */
int sl_seq_restore(sl_opctx_t *c, const char *kind, sl_snap_r_t *r, int64_t *next);

#endif
