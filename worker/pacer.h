/* pacer.h — paces a source to a rate of records per second.
 *
 * Used by the generator and Nexmark sources. Before each record the source
 * calls sl_pacer_wait, which checks the cancel flag every 256 records and,
 * when the source is ahead of its rate, flushes the pending batch (so slow
 * streams do not sit in a half-full batch) and sleeps in short steps that
 * watch the cancel flag. */
#ifndef SLUICE_PACER_H
#define SLUICE_PACER_H
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

#endif
