/* channel.c — credit-based data channels over ZeroMQ (see channel.h for the
 * invariants). Called by task.c only. */
#define _POSIX_C_SOURCE 200809L
#include "channel.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/err.h"

#define S_POLL_MS 50 /* how often a waiting task looks at its cancel flag */

/* Every batch is a ZeroMQ message of up to a batch's size, allocated by one
 * thread (the sender, or libzmq's I/O thread for TCP) and freed by another.
 * With glibc's default trim threshold (128 KiB) those frees often shrink the
 * allocating thread's arena (madvise) and the next batches fault the pages
 * back in: a few per cent of a worker's CPU. Freed memory up to this much
 * stays in the arenas instead (set once per process, by the first gate). */
#define S_TRIM_THRESHOLD (32 * 1024 * 1024)

#define S_MMAP_THRESHOLD (4 * 1024 * 1024)

static pthread_once_t s_malloc_once = PTHREAD_ONCE_INIT;

static void s_malloc_tune(void)
{
    mallopt(M_TRIM_THRESHOLD, S_TRIM_THRESHOLD);
    /* setting the trim threshold fixes glibc's mmap threshold at 128 KiB:
     * a message above it would be an mmap, page faults and a munmap */
    mallopt(M_MMAP_THRESHOLD, S_MMAP_THRESHOLD);
}

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sl_outgate {
    int n;                       /* channels */
    void **socks;                /* one DEALER per channel */
    int *credits;                /* credits left per channel */
    int window;                  /* initial credits per channel (told to the receivers) */
    uint16_t input;              /* input index at the receivers */
    uint32_t sender;             /* our subtask index */
    const atomic_bool *cancel;   /* set by the worker to stop the task */
    _Atomic uint64_t blocked_ns; /* time spent waiting for credit */
    atomic_bool waiting;         /* blocked in s_take_credits right now */
    _Atomic uint64_t wait_start; /* s_now_ns() when the current wait began */
};

sl_outgate_t *sl_outgate_new(void *zctx, int n, const char *const *endpoints, uint16_t input,
                             uint32_t sender, int initial_credits, const atomic_bool *cancel,
                             char *err, size_t cap)
{
    pthread_once(&s_malloc_once, s_malloc_tune);
    sl_outgate_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->n = n;
    g->input = input;
    g->sender = sender;
    g->cancel = cancel;
    g->window = initial_credits > 0 ? initial_credits : SL_DEFAULT_CREDITS;
    g->socks = calloc((size_t)n, sizeof *g->socks);
    g->credits = calloc((size_t)n, sizeof *g->credits);
    if (!g->socks || !g->credits)
        goto fail;
    char rid[32];
    int rlen = snprintf(rid, sizeof rid, "i%u:s%u", (unsigned)input, (unsigned)sender);
    for (int i = 0; i < n; i++) {
        g->credits[i] = g->window;
        g->socks[i] = zmq_socket(zctx, ZMQ_DEALER);
        if (!g->socks[i])
            goto zfail;
        int linger = 2000, hwm = 0; /* credits bound the queue, not the HWM; linger lets
                                     * the end-of-input frame reach the receiver */
        zmq_setsockopt(g->socks[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(g->socks[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(g->socks[i], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(g->socks[i], ZMQ_ROUTING_ID, rid, (size_t)rlen);
        if (zmq_connect(g->socks[i], endpoints[i]) != 0)
            goto zfail;
    }
    return g;
zfail:
    snprintf(err, cap, "data channel to %s: %s", endpoints[0], zmq_strerror(zmq_errno()));
fail:
    sl_outgate_destroy(&g);
    return NULL;
}

void sl_outgate_destroy(sl_outgate_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_outgate_t *g = *pp;
    for (int i = 0; g->socks && i < g->n; i++)
        if (g->socks[i])
            zmq_close(g->socks[i]);
    free(g->socks);
    free(g->credits);
    free(g);
    *pp = NULL;
}

int sl_outgate_channels(const sl_outgate_t *g)
{
    return g->n;
}

uint64_t sl_outgate_blocked_ns(const sl_outgate_t *g)
{
    uint64_t ns = atomic_load_explicit(&g->blocked_ns, memory_order_relaxed);
    if (atomic_load(&g->waiting)) /* a wait in progress counts too */
        ns += s_now_ns() - atomic_load_explicit(&g->wait_start, memory_order_relaxed);
    return ns;
}

bool sl_outgate_waiting(const sl_outgate_t *g)
{
    return atomic_load(&g->waiting);
}

/* Reads credit frames waiting on channel ch; with wait, blocks (in
 * S_POLL_MS steps, watching cancel) until at least one credit arrived. */
static int s_take_credits(sl_outgate_t *g, int ch, bool wait)
{
    uint64_t start = wait ? s_now_ns() : 0;
    for (;;) {
        sl_frame_hdr_t h;
        int rc = zmq_recv(g->socks[ch], &h, sizeof h, ZMQ_DONTWAIT);
        if (rc == (int)sizeof h && h.kind == SL_FRAME_CREDIT) {
            g->credits[ch] += (int)h.count;
            continue;
        }
        if (rc >= 0)
            continue; /* not a credit frame: ignore */
        if (zmq_errno() != EAGAIN)
            return SL_ZMQ;
        if (!wait || g->credits[ch] > 0)
            break;
        if (g->cancel && atomic_load(g->cancel)) {
            atomic_store(&g->waiting, false);
            return SL_CANCELED;
        }
        if (!atomic_load(&g->waiting)) {
            atomic_store_explicit(&g->wait_start, start, memory_order_relaxed);
            atomic_store(&g->waiting, true);
        }
        zmq_pollitem_t item = {.socket = g->socks[ch], .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, S_POLL_MS) < 0 && zmq_errno() != EINTR) {
            atomic_store(&g->waiting, false);
            return SL_ZMQ;
        }
    }
    if (wait) {
        atomic_store(&g->waiting, false);
        atomic_fetch_add_explicit(&g->blocked_ns, s_now_ns() - start, memory_order_relaxed);
    }
    return SL_OK;
}

static int s_send_frame(void *sock, const sl_frame_hdr_t *h, const uint8_t *data, uint32_t len)
{
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, sizeof *h + len) != 0)
        return SL_NOMEM;
    memcpy(zmq_msg_data(&m), h, sizeof *h);
    if (len)
        memcpy((uint8_t *)zmq_msg_data(&m) + sizeof *h, data, len);
    if (zmq_msg_send(&m, sock, 0) < 0) {
        zmq_msg_close(&m);
        return SL_ZMQ;
    }
    return SL_OK;
}

/* Takes the credit a batch on channel ch costs, waiting for one if none
 * is left. Returns 0, SL_CANCELED or SL_ZMQ. */
static int s_spend_credit(sl_outgate_t *g, int ch)
{
    /* Credit frames are read only once the credits run out: a read that
     * finds none costs libzmq a system call or two (its mailbox), and
     * reading them earlier changes nothing (they wait in the socket,
     * at most initial_credits of them). */
    if (g->credits[ch] <= 0) {
        int rc = s_take_credits(g, ch, true);
        if (rc)
            return rc;
    }
    g->credits[ch]--;
    return SL_OK;
}

int sl_outgate_send(sl_outgate_t *g, int ch, const uint8_t *data, uint32_t len, uint32_t count)
{
    int rc = s_spend_credit(g, ch);
    if (rc)
        return rc;
    sl_frame_hdr_t h = {.kind = SL_FRAME_BATCH,
                        .input = g->input,
                        .sender = g->sender,
                        .count = count,
                        .window = (uint32_t)g->window};
    return s_send_frame(g->socks[ch], &h, data, len);
}

static void s_free_rows(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int sl_outgate_send_batch(sl_outgate_t *g, int ch, sl_batch_t *b)
{
    uint32_t len = b->len, count = b->count;
    uint8_t *data = len ? sl_batch_take(b) : NULL;
    if (!data)
        return sl_outgate_send(g, ch, b->data, len, count);
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, data, len, s_free_rows, NULL) != 0) {
        free(data);
        return SL_NOMEM;
    }
    int rc = s_spend_credit(g, ch);
    if (rc) {
        zmq_msg_close(&m);
        return rc;
    }
    sl_frame_hdr_t h = {.kind = SL_FRAME_BATCH,
                        .flags = SL_FRAME_SPLIT,
                        .input = g->input,
                        .sender = g->sender,
                        .count = count,
                        .window = (uint32_t)g->window};
    /* the parts of a message are delivered together or not at all */
    if (zmq_send(g->socks[ch], &h, sizeof h, ZMQ_SNDMORE) != (int)sizeof h ||
        zmq_msg_send(&m, g->socks[ch], 0) < 0) {
        zmq_msg_close(&m);
        return SL_ZMQ;
    }
    return SL_OK;
}

int sl_outgate_watermark(sl_outgate_t *g, int64_t wm, bool idle)
{
    sl_frame_hdr_t h = {
        .kind = SL_FRAME_WATERMARK, .flags = idle ? 1 : 0, .input = g->input, .sender = g->sender};
    uint8_t v[8];
    memcpy(v, &wm, sizeof v);
    for (int i = 0; i < g->n; i++) {
        int rc = s_send_frame(g->socks[i], &h, v, sizeof v);
        if (rc)
            return rc;
    }
    return SL_OK;
}

int sl_outgate_barrier(sl_outgate_t *g, uint64_t id)
{
    sl_frame_hdr_t h = {.kind = SL_FRAME_BARRIER, .input = g->input, .sender = g->sender};
    uint8_t v[8];
    memcpy(v, &id, sizeof v);
    for (int i = 0; i < g->n; i++) {
        int rc = s_send_frame(g->socks[i], &h, v, sizeof v);
        if (rc)
            return rc;
    }
    return SL_OK;
}

int sl_outgate_finish(sl_outgate_t *g)
{
    sl_frame_hdr_t h = {.kind = SL_FRAME_EOI, .input = g->input, .sender = g->sender};
    for (int i = 0; i < g->n; i++) {
        int rc = s_send_frame(g->socks[i], &h, NULL, 0);
        if (rc)
            return rc;
    }
    return SL_OK;
}

/* ---- receiving side ------------------------------------------------------ */

/* Credits of one sender processed and not given back yet. */
typedef struct {
    uint8_t rid[64]; /* the sender's routing id */
    size_t rid_len;
    uint32_t owed; /* credits not given back yet */
} s_owed_t;

struct sl_ingate {
    void *sock;                /* ROUTER bound at the task's endpoint */
    int fd;                    /* its ZMQ_FD: readable when libzmq has news for it */
    s_owed_t *owed;            /* credits owed, per sender seen */
    int nowed, owed_cap;       /* entries used and allocated */
    int expected;              /* senders that must end */
    int ended;                 /* senders that have ended */
    const atomic_bool *cancel; /* set by the worker to stop the task */
};

sl_ingate_t *sl_ingate_new(void *zctx, const char *endpoint, int expected_senders,
                           const atomic_bool *cancel, char *err, size_t cap)
{
    pthread_once(&s_malloc_once, s_malloc_tune);
    sl_ingate_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->expected = expected_senders;
    g->cancel = cancel;
    g->sock = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0, hwm = 0;
    if (!g->sock || zmq_setsockopt(g->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(g->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(g->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) || zmq_bind(g->sock, endpoint)) {
        snprintf(err, cap, "cannot bind data endpoint %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sl_ingate_destroy(&g);
        return NULL;
    }
    size_t fl = sizeof g->fd;
    if (zmq_getsockopt(g->sock, ZMQ_FD, &g->fd, &fl) != 0) {
        snprintf(err, cap, "data endpoint %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sl_ingate_destroy(&g);
        return NULL;
    }
    return g;
}

int sl_ingate_bind(sl_ingate_t *g, const char *endpoint, char *err, size_t cap)
{
    if (zmq_bind(g->sock, endpoint) != 0) {
        snprintf(err, cap, "cannot bind data endpoint %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return SL_ZMQ;
    }
    return SL_OK;
}

int sl_ingate_endpoint(const sl_ingate_t *g, char *buf, size_t cap)
{
    size_t len = cap;
    if (zmq_getsockopt(g->sock, ZMQ_LAST_ENDPOINT, buf, &len) != 0)
        return SL_ZMQ;
    return SL_OK;
}

void sl_ingate_destroy(sl_ingate_t **pp)
{
    if (!pp || !*pp)
        return;
    if ((*pp)->sock)
        zmq_close((*pp)->sock);
    free((*pp)->owed);
    free(*pp);
    *pp = NULL;
}

/* Reads and drops the rest of a malformed message (more: parts follow), so
 * that the next read starts at a routing id. */
static void s_drain_parts(void *sock, int more)
{
    size_t ml = sizeof more;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        if (rc < 0 || zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml) != 0)
            break;
    }
}

/* Reads the next frame if one is there (never blocks): 1 and *b filled,
 * 0 when none is waiting, SL_ZMQ, SL_PROTO. A non-blocking read that finds
 * a frame costs no system call, where a zmq_poll costs at least one. */
static int s_ingate_read(sl_ingate_t *g, sl_inbatch_t *b, char *err, size_t cap)
{
    int n = zmq_recv(g->sock, b->rid, sizeof b->rid, ZMQ_DONTWAIT);
    if (n < 0)
        return zmq_errno() == EAGAIN || zmq_errno() == EINTR ? 0 : SL_ZMQ;
    b->rid_len = (size_t)n < sizeof b->rid ? (size_t)n : sizeof b->rid;
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(g->sock, ZMQ_RCVMORE, &more, &ml);
    if (!more) {
        snprintf(err, cap, "data frame without payload");
        return SL_PROTO;
    }
    zmq_msg_init(&b->msg);
    /* the parts of a message arrive together: the payload is there */
    if (zmq_msg_recv(&b->msg, g->sock, 0) < 0) {
        zmq_msg_close(&b->msg);
        return SL_ZMQ;
    }
    zmq_getsockopt(g->sock, ZMQ_RCVMORE, &more, &ml);
    size_t size = zmq_msg_size(&b->msg);
    sl_frame_hdr_t h = {0};
    if (size >= sizeof h)
        memcpy(&h, zmq_msg_data(&b->msg), sizeof h);
    bool split = more && size == sizeof h && h.kind == SL_FRAME_BATCH && h.flags == SL_FRAME_SPLIT;
    if (split) { /* the rows are the next part: it replaces the header's */
        zmq_msg_close(&b->msg);
        zmq_msg_init(&b->msg);
        if (zmq_msg_recv(&b->msg, g->sock, 0) < 0) {
            zmq_msg_close(&b->msg);
            return SL_ZMQ;
        }
        zmq_getsockopt(g->sock, ZMQ_RCVMORE, &more, &ml);
    }
    if (more || size < sizeof h || (split && !zmq_msg_size(&b->msg)) ||
        (h.kind == SL_FRAME_BATCH && h.flags != (split ? SL_FRAME_SPLIT : 0))) {
        zmq_msg_close(&b->msg);
        s_drain_parts(g->sock, more);
        snprintf(err, cap, "malformed data frame (%zu bytes)", size);
        return SL_PROTO;
    }
    b->kind = h.kind;
    b->input = h.input;
    b->sender = h.sender;
    if (h.kind == SL_FRAME_EOI) {
        zmq_msg_close(&b->msg);
        g->ended++;
        return 1;
    }
    if (h.kind == SL_FRAME_WATERMARK) {
        bool ok = size == sizeof h + 8 && h.flags <= 1;
        if (ok) {
            memcpy(&b->wm, (const uint8_t *)zmq_msg_data(&b->msg) + sizeof h, 8);
            b->idle = h.flags == 1;
        }
        zmq_msg_close(&b->msg);
        if (!ok) {
            snprintf(err, cap, "malformed watermark frame (%zu bytes)", size);
            return SL_PROTO;
        }
        return 1;
    }
    if (h.kind == SL_FRAME_BARRIER) {
        bool ok = size == sizeof h + 8;
        if (ok)
            memcpy(&b->barrier, (const uint8_t *)zmq_msg_data(&b->msg) + sizeof h, 8);
        zmq_msg_close(&b->msg);
        if (!ok || b->barrier == 0) {
            snprintf(err, cap, "malformed barrier frame (%zu bytes)", size);
            return SL_PROTO;
        }
        return 1;
    }
    if (h.kind != SL_FRAME_BATCH || size - sizeof h > UINT32_MAX) {
        zmq_msg_close(&b->msg);
        snprintf(err, cap, "unexpected data frame kind %u", (unsigned)h.kind);
        return SL_PROTO;
    }
    size_t off = split ? 0 : sizeof h;
    size = zmq_msg_size(&b->msg);
    if (size - off > UINT32_MAX) {
        zmq_msg_close(&b->msg);
        snprintf(err, cap, "data frame of %zu bytes", size);
        return SL_PROTO;
    }
    b->count = h.count;
    b->window = h.window;
    b->data = (const uint8_t *)zmq_msg_data(&b->msg) + off;
    b->len = (uint32_t)(size - off);
    return 1;
}

int sl_ingate_poll(sl_ingate_t *g, sl_inbatch_t *b, int wait_ms, char *err, size_t cap)
{
    uint64_t deadline = 0;
    for (;;) {
        if (g->ended >= g->expected)
            return 0;
        if (g->cancel && atomic_load(g->cancel))
            return SL_CANCELED;
        /* a frame already waiting is taken without polling */
        int rc = s_ingate_read(g, b, err, cap);
        if (rc != 0)
            return rc;
        if (wait_ms == 0)
            return SL_TIMEOUT; /* the read processed libzmq's pending commands */
        int step = S_POLL_MS;
        if (wait_ms > 0) {
            uint64_t now = s_now_ns();
            if (!deadline)
                deadline = now + (uint64_t)wait_ms * 1000000ull;
            if (now >= deadline)
                return SL_TIMEOUT;
            uint64_t left_ms = (deadline - now + 999999ull) / 1000000ull;
            step = left_ms < (uint64_t)S_POLL_MS ? (int)left_ms : S_POLL_MS;
        }
        /* The read that found nothing has processed every command libzmq
         * had for the socket: its FD becomes readable with the next one (a
         * frame arriving, a peer connecting), so poll(2) on it is enough —
         * what zmq_poll does too, after a first pass and two reads of the
         * socket's state that the read above made already. */
        struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
        if (poll(&pfd, 1, step) < 0 && errno != EINTR)
            return SL_ZMQ;
    }
}

int sl_ingate_next(sl_ingate_t *g, sl_inbatch_t *b, char *err, size_t cap)
{
    for (;;) {
        int rc = sl_ingate_poll(g, b, -1, err, cap);
        if (rc != 1 || b->kind == SL_FRAME_BATCH)
            return rc;
    }
}

/* The owed credits of the sender with routing id rid (added when new), or
 * NULL when out of memory. */
static s_owed_t *s_owed_of(sl_ingate_t *g, const uint8_t *rid, size_t len)
{
    for (int i = 0; i < g->nowed; i++)
        if (g->owed[i].rid_len == len && memcmp(g->owed[i].rid, rid, len) == 0)
            return &g->owed[i];
    if (g->nowed == g->owed_cap) {
        int cap = g->owed_cap ? 2 * g->owed_cap : 8;
        s_owed_t *o = realloc(g->owed, (size_t)cap * sizeof *o);
        if (!o)
            return NULL;
        g->owed = o;
        g->owed_cap = cap;
    }
    s_owed_t *o = &g->owed[g->nowed++];
    memcpy(o->rid, rid, len);
    o->rid_len = len;
    o->owed = 0;
    return o;
}

void sl_inbatch_move(sl_inbatch_t *dst, sl_inbatch_t *src)
{
    *dst = *src;
    if (src->kind != SL_FRAME_BATCH)
        return;
    /* the rows start after the header, or at 0 for a split frame; a small
     * message keeps its bytes inside the zmq_msg_t itself */
    size_t off = (size_t)(src->data - (const uint8_t *)zmq_msg_data(&src->msg));
    zmq_msg_init(&dst->msg);
    zmq_msg_move(&dst->msg, &src->msg);
    dst->data = (const uint8_t *)zmq_msg_data(&dst->msg) + off;
}

void sl_ingate_release(sl_ingate_t *g, sl_inbatch_t *b)
{
    zmq_msg_close(&b->msg);
    uint32_t group = b->window / 2 ? b->window / 2 : 1, n = 1;
    if (group > 1) {
        s_owed_t *o = s_owed_of(g, b->rid, b->rid_len);
        if (o && ++o->owed < group)
            return;
        if (o) {
            n = o->owed;
            o->owed = 0;
        }
    }
    sl_frame_hdr_t h = {.kind = SL_FRAME_CREDIT, .count = n};
    zmq_send(g->sock, b->rid, b->rid_len, ZMQ_SNDMORE);
    zmq_send(g->sock, &h, sizeof h, 0);
}
