/* ackq.h — a subtask's queue of checkpoint acknowledgements.
 *
 * A subtask publishes what it says about each checkpoint (a snapshot
 * written, or declined) from its own thread or from the thread writing a
 * snapshot; the worker's control thread drains the queue and sends each
 * entry to the master, oldest first. Publishing never waits for the
 * worker: the queue holds a few entries (acks are small), and when it is
 * full it makes room by dropping the oldest successful ack of a checkpoint
 * older than one queued after it (the master has one checkpoint pending
 * at a time, so it gave that older one up already). A decline is never dropped: if
 * nothing can be dropped the queue grows. So every decline, and every ack
 * of the newest checkpoint, reaches the master, in the order published. */
#ifndef SLUICE_ACKQ_H
#define SLUICE_ACKQ_H
#include <stdbool.h>
#include <stdint.h>

#include "task.h"

typedef struct sl_ackq sl_ackq_t;

/* A queue holding cap entries before it makes room (cap >= 1; 0 = the
 * default). NULL when out of memory. */
sl_ackq_t *sl_ackq_new(int cap);
void sl_ackq_destroy(sl_ackq_t **pp);
/* Appends a copy of *a. Never waits for the consumer. Returns 0, or
 * SL_NOMEM when the queue had to grow for a decline and could not (the
 * ack is then not queued). Any thread. */
int sl_ackq_push(sl_ackq_t *q, const sl_task_ack_t *a);
/* Takes the oldest entry: true and *out filled, false when empty. Any
 * thread. */
bool sl_ackq_pop(sl_ackq_t *q, sl_task_ack_t *out);
/* Entries queued now. */
int sl_ackq_len(sl_ackq_t *q);
/* Successful acks dropped so far to make room (superseded by a newer
 * checkpoint's ack). */
uint64_t sl_ackq_dropped(sl_ackq_t *q);

#endif
