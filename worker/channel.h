/* channel.h — data channels between subtasks, with credit-based flow control.
 *
 * Invariants:
 *  1. A receiving subtask binds one ZeroMQ ROUTER (its in-gate); every
 *     upstream subtask that may send to it connects one DEALER (an
 *     out-gate channel) with a routing id naming (input index, sender).
 *  2. A sender starts with `initial_credits` credits per channel (C, told
 *     to the receiver in every batch frame); sending a batch costs one; the
 *     receiver gives each batch's credit back after it has processed it, in
 *     groups of K = C/2 (at least 1): a credit frame wakes the sender's
 *     thread (and, over TCP, two I/O threads), so fewer of them save system
 *     calls. Nothing waits on a group: a sender without credit has all C
 *     batches at the receiver (queued, being processed, held for a barrier
 *     or processed and not yet given back), so the receiver gets to C >= K
 *     ungiven credits and sends them. A sender without credit waits (and so
 *     stops reading its own input): backpressure reaches the sources and at
 *     most initial_credits batches per sender are ever queued at a receiver.
 *  3. Each sender ends each channel with one end-of-input frame, ordered
 *     after its batches; the in-gate reports the end when every expected
 *     sender has ended.
 *  4. Frames are validated on receipt; a malformed frame fails the task with
 *     an error and never crashes the process.
 *  5. Watermark frames (event time, docs/time.md) are control frames: they
 *     cost no credit and are ordered with the batches of their channel, so a
 *     watermark never overtakes a record sent before it. A sender emits them
 *     only when its watermark advances or its idleness changes, which bounds
 *     them by the batches sent and the idle timeouts. Checkpoint barriers
 *     are control frames too, ordered the same way.
 *
 * Frame: a 16-byte header (sl_frame_hdr_t) followed, for batches, by the
 * batch bytes, in the same message part or (SL_FRAME_SPLIT: sent without
 * a copy) in the next one. */
#ifndef SLUICE_CHANNEL_H
#define SLUICE_CHANNEL_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "sluice/row.h"

enum {
    SL_FRAME_BATCH = 1,
    SL_FRAME_EOI = 2,
    SL_FRAME_CREDIT = 3,
    SL_FRAME_WATERMARK = 4,
    SL_FRAME_BARRIER = 5, /* checkpoint barrier: 8 bytes of checkpoint id */
};

/* BATCH flag: the rows are the next message part, not after the header */
#define SL_FRAME_SPLIT 1

typedef struct {
    uint8_t kind;    /* SL_FRAME_* */
    uint8_t flags;   /* WATERMARK: 1 = the sender is idle; BATCH: 0 or SL_FRAME_SPLIT; else zero */
    uint16_t input;  /* input index at the receiver's head operator */
    uint32_t sender; /* sender subtask index */
    uint32_t count;  /* BATCH: rows; CREDIT: credits granted */
    uint32_t window; /* BATCH: the sender's initial credits (0: give each credit back at
                        once); else zero */
} sl_frame_hdr_t;

#define SL_DEFAULT_CREDITS 8

/* ---- sending side ---------------------------------------------------------- */

typedef struct sl_outgate sl_outgate_t;

/* Connects one DEALER per endpoint (n channels). cancel is polled while
 * waiting for credit. Returns NULL with err filled on failure. */
sl_outgate_t *sl_outgate_new(void *zctx, int n, const char *const *endpoints, uint16_t input,
                             uint32_t sender, int initial_credits, const atomic_bool *cancel,
                             char *err, size_t cap);
/* Sends len bytes holding count rows to channel ch, waiting for a credit
 * first. Returns 0, SL_CANCELED or SL_ZMQ. */
int sl_outgate_send(sl_outgate_t *g, int ch, const uint8_t *data, uint32_t len, uint32_t count);
/* Sends b's rows to channel ch like sl_outgate_send but without copying
 * them: the message takes b's buffer, b gets an empty one (sl_batch_take;
 * when out of memory the rows are copied and b is left as it was). The
 * header goes in a part of its own, flagged SL_FRAME_SPLIT. */
int sl_outgate_send_batch(sl_outgate_t *g, int ch, sl_batch_t *b);
/* Sends a watermark (8 bytes after the header) on every channel; with idle,
 * tells the receivers to leave this sender out of their watermark until it
 * sends records or a watermark again. */
int sl_outgate_watermark(sl_outgate_t *g, int64_t wm, bool idle);
/* Sends checkpoint barrier id on every channel. */
int sl_outgate_barrier(sl_outgate_t *g, uint64_t id);
/* Sends end-of-input on every channel. */
int sl_outgate_finish(sl_outgate_t *g);
int sl_outgate_channels(const sl_outgate_t *g);
/* Nanoseconds spent waiting for credit (backpressure). */
uint64_t sl_outgate_blocked_ns(const sl_outgate_t *g);
/* True while the sender is blocked waiting for credit (readable from any
 * thread; for metrics and tests). */
bool sl_outgate_waiting(const sl_outgate_t *g);
void sl_outgate_destroy(sl_outgate_t **pp);

/* ---- receiving side ---------------------------------------------------- */

typedef struct sl_ingate sl_ingate_t;

/* A received batch (or, from sl_ingate_poll, a watermark or end of a
 * sender); valid until sl_ingate_release. */
typedef struct {
    uint8_t kind;        /* SL_FRAME_BATCH, SL_FRAME_WATERMARK or SL_FRAME_EOI */
    bool idle;           /* WATERMARK: the sender went idle */
    int64_t wm;          /* WATERMARK: the sender's watermark */
    uint64_t barrier;    /* BARRIER: the checkpoint id */
    uint16_t input;      /* input index */
    uint32_t sender;     /* sender subtask */
    const uint8_t *data; /* rows */
    uint32_t len, count;
    uint32_t window; /* private: BATCH: the sender's initial credits */
    zmq_msg_t msg;   /* private */
    uint8_t rid[64]; /* private: routing id of the sender */
    size_t rid_len;  /* private */
} sl_inbatch_t;

/* Binds a ROUTER at endpoint; the gate ends after expected_senders EOIs. */
sl_ingate_t *sl_ingate_new(void *zctx, const char *endpoint, int expected_senders,
                           const atomic_bool *cancel, char *err, size_t cap);
/* Binds the gate at one more endpoint, e.g. an inproc one for senders in
 * the same process (they skip TCP and libzmq's I/O threads; the frames and
 * credits are the same). Returns 0 or SL_ZMQ with err filled. */
int sl_ingate_bind(sl_ingate_t *g, const char *endpoint, char *err, size_t cap);
/* The endpoint the gate is bound to (ZMQ_LAST_ENDPOINT: for a tcp wildcard
 * bind, the port chosen) into buf. Returns 0 or SL_ZMQ. */
int sl_ingate_endpoint(const sl_ingate_t *g, char *buf, size_t cap);
/* Waits for the next batch: 1 and *b filled; 0 when every sender has ended;
 * SL_CANCELED; SL_PROTO for a malformed frame (err says why). */
int sl_ingate_next(sl_ingate_t *g, sl_inbatch_t *b, char *err, size_t cap);
/* Waits up to wait_ms (-1: no limit) for the next event: 1 and *b filled
 * (a batch, a watermark or one sender's end of input; only a batch must be
 * released); 0 when every sender has ended; SL_TIMEOUT; SL_CANCELED;
 * SL_PROTO for a malformed frame. */
int sl_ingate_poll(sl_ingate_t *g, sl_inbatch_t *b, int wait_ms, char *err, size_t cap);
/* Moves an event from src to dst (a batch's message and rows with it: a
 * message must not be copied as a struct); src's batch must not be
 * released after. */
void sl_inbatch_move(sl_inbatch_t *dst, sl_inbatch_t *src);
/* Frees the batch; its credit goes back to the sender with the group it
 * completes (invariant 2). */
void sl_ingate_release(sl_ingate_t *g, sl_inbatch_t *b);
void sl_ingate_destroy(sl_ingate_t **pp);

#endif
