/* check_credit.c — credit-based flow control on the data channels: a
 * sender never has more batches in flight than its credits, waits when it
 * has none, resumes on each group of returned credits, and ends with
 * end-of-input; batches arrive in order; garbage frames are rejected, not
 * trusted; batches sent without a copy (split frames) arrive whole over
 * TCP and inproc and survive being held. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <zmq.h>

#include "channel.h"
#include "sluice/err.h"
#include "testutil.h"

#define N_BATCHES 200
#define CREDITS 4

typedef struct {
    sl_outgate_t *g;
    atomic_int sent; /* batches sl_outgate_send accepted */
    int rc;
} s_sender_t;

static void *s_send_all(void *arg)
{
    s_sender_t *s = arg;
    for (uint32_t i = 0; i < N_BATCHES; i++) {
        uint8_t payload[64];
        memset(payload, (int)(i & 0xff), sizeof payload);
        memcpy(payload, &i, sizeof i);
        s->rc = sl_outgate_send(s->g, 0, payload, sizeof payload, i);
        if (s->rc)
            return NULL;
        atomic_fetch_add(&s->sent, 1);
    }
    s->rc = sl_outgate_finish(s->g);
    return NULL;
}

static bool s_blocked_at(void *arg)
{
    s_sender_t *s = arg;
    return sl_outgate_waiting(s->g);
}

START_TEST(test_credits_bound_in_flight_batches)
{
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "inproc://credit-test", 1, &cancel, err, sizeof err);
    ck_assert_ptr_nonnull(in);
    const char *ep = "inproc://credit-test";
    s_sender_t s = {0};
    s.g = sl_outgate_new(ctx, 1, &ep, 0, 3, CREDITS, &cancel, err, sizeof err);
    ck_assert_ptr_nonnull(s.g);
    pthread_t t;
    pthread_create(&t, NULL, s_send_all, &s);

    /* The receiver does not read: the sender spends its credits and waits. */
    ck_assert(sl_wait_until(s_blocked_at, &s, 10000));
    ck_assert_int_eq(atomic_load(&s.sent), CREDITS);

    /* Credits go back in groups of CREDITS / 2: each group of batches
     * consumed lets exactly that many more batches go. */
    enum { GROUP = CREDITS / 2 };
    uint32_t expect = 0;
    for (int round = 0; round < 3; round++) {
        int before = atomic_load(&s.sent);
        for (int k = 0; k < GROUP; k++) {
            sl_inbatch_t b;
            ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), 1);
            ck_assert_uint_eq(b.count, expect); /* in order */
            ck_assert_uint_eq(b.sender, 3);
            ck_assert_uint_eq(b.len, 64);
            expect++;
            sl_ingate_release(in, &b);
            if (k < GROUP - 1) /* the group is not complete: no credit went back */
                ck_assert_int_eq(atomic_load(&s.sent), before);
        }
        /* Wait for the sender to take the credits, send, and block again. */
        while (atomic_load(&s.sent) < before + GROUP)
            ck_assert(sl_wait_until(s_blocked_at, &s, 10000));
        ck_assert(sl_wait_until(s_blocked_at, &s, 10000));
        ck_assert_int_eq(atomic_load(&s.sent), CREDITS + GROUP * (round + 1));
        ck_assert_int_le(atomic_load(&s.sent) - (int)expect, CREDITS);
    }
    /* Drain the rest: every batch arrives once, in order, then the end. */
    for (;;) {
        sl_inbatch_t b;
        int rc = sl_ingate_next(in, &b, err, sizeof err);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, 1);
        ck_assert_uint_eq(b.count, expect);
        uint32_t first;
        memcpy(&first, b.data, sizeof first);
        ck_assert_uint_eq(first, expect);
        ck_assert_int_le(atomic_load(&s.sent) - (int)expect, CREDITS);
        expect++;
        sl_ingate_release(in, &b);
    }
    ck_assert_uint_eq(expect, N_BATCHES);
    pthread_join(t, NULL);
    ck_assert_int_eq(s.rc, SL_OK);
    ck_assert_uint_gt(sl_outgate_blocked_ns(s.g), 0);
    sl_outgate_destroy(&s.g);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(test_cancel_unblocks_a_waiting_sender)
{
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "inproc://cancel-test", 1, &cancel, err, sizeof err);
    const char *ep = "inproc://cancel-test";
    s_sender_t s = {0};
    s.g = sl_outgate_new(ctx, 1, &ep, 0, 0, 2, &cancel, err, sizeof err);
    pthread_t t;
    pthread_create(&t, NULL, s_send_all, &s);
    ck_assert(sl_wait_until(s_blocked_at, &s, 10000));
    atomic_store(&cancel, true);
    pthread_join(t, NULL);
    ck_assert_int_eq(s.rc, SL_CANCELED);
    sl_inbatch_t b;
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_CANCELED);
    sl_outgate_destroy(&s.g);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(test_end_needs_every_sender)
{
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "inproc://eoi-test", 3, &cancel, err, sizeof err);
    const char *ep = "inproc://eoi-test";
    sl_outgate_t *g[3];
    for (uint32_t i = 0; i < 3; i++) {
        g[i] = sl_outgate_new(ctx, 1, &ep, 0, i, 2, &cancel, err, sizeof err);
        uint8_t p[8] = {0};
        ck_assert_int_eq(sl_outgate_send(g[i], 0, p, sizeof p, 1), SL_OK);
    }
    ck_assert_int_eq(sl_outgate_finish(g[0]), SL_OK);
    ck_assert_int_eq(sl_outgate_finish(g[2]), SL_OK);
    bool seen[3] = {false};
    for (int k = 0; k < 3; k++) {
        sl_inbatch_t b;
        ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), 1);
        ck_assert_uint_lt(b.sender, 3);
        seen[b.sender] = true;
        sl_ingate_release(in, &b);
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
    ck_assert_int_eq(sl_outgate_finish(g[1]), SL_OK);
    sl_inbatch_t b;
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), 0); /* all three ended */
    for (int i = 0; i < 3; i++)
        sl_outgate_destroy(&g[i]);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(test_garbage_frames_are_rejected)
{
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "inproc://garbage-test", 1, &cancel, err, sizeof err);
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(raw, "inproc://garbage-test");
    zmq_send(raw, "abc", 3, 0); /* shorter than a header */
    sl_inbatch_t b;
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_PROTO);
    ck_assert_ptr_nonnull(strstr(err, "malformed"));
    sl_frame_hdr_t h = {.kind = 99};
    zmq_send(raw, &h, sizeof h, 0); /* unknown kind */
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_PROTO);
    zmq_close(raw);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

/* Whether the n bytes at p are all v (one check, not one per byte). */
static bool s_all(const uint8_t *p, uint32_t n, uint8_t v)
{
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* Receives the next batch and checks it holds n bytes of value v and
 * count rows. */
static void s_expect_batch(sl_ingate_t *in, sl_inbatch_t *b, uint32_t n, uint8_t v, uint32_t count)
{
    char err[256];
    ck_assert_int_eq(sl_ingate_next(in, b, err, sizeof err), 1);
    ck_assert_uint_eq(b->len, n);
    ck_assert_uint_eq(b->count, count);
    ck_assert(s_all(b->data, n, v));
}

START_TEST(test_batches_sent_without_a_copy)
{
    /* one gate bound over TCP and inproc: a sender on each, small payloads
     * (kept inside the message struct by libzmq) and large ones */
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256], tcp[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "tcp://127.0.0.1:*", 2, &cancel, err, sizeof err);
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(sl_ingate_endpoint(in, tcp, sizeof tcp), SL_OK);
    ck_assert_int_eq(sl_ingate_bind(in, "inproc://zc-test", err, sizeof err), SL_OK);
    const char *eps[2] = {tcp, "inproc://zc-test"};
    sl_batch_t *b = sl_batch_new(256 * 1024);
    for (int k = 0; k < 2; k++) {
        sl_outgate_t *g =
            sl_outgate_new(ctx, 1, &eps[k], 0, (uint32_t)k, 2, &cancel, err, sizeof err);
        ck_assert_ptr_nonnull(g);
        const uint32_t sizes[] = {8, 200 * 1024, 1, 3000};
        for (int i = 0; i < 4; i++) {
            uint8_t row[200 * 1024];
            memset(row, 'a' + i, sizes[i]);
            ck_assert_int_eq(sl_batch_append_raw(b, row, sizes[i]), SL_OK);
            uint8_t *before = b->data;
            ck_assert_int_eq(sl_outgate_send_batch(g, 0, b), SL_OK);
            ck_assert_uint_eq(b->len, 0); /* the message took the rows */
            ck_assert_uint_eq(b->count, 0);
            ck_assert_ptr_ne(b->data, before);
            sl_inbatch_t got, held;
            s_expect_batch(in, &got, sizes[i], (uint8_t)('a' + i), 1);
            /* held for a barrier: the rows move with the message */
            sl_inbatch_move(&held, &got);
            memset(&got, 0xee, sizeof got);
            ck_assert(s_all(held.data, sizes[i], (uint8_t)('a' + i)));
            sl_ingate_release(in, &held);
        }
        ck_assert_int_eq(sl_outgate_finish(g), SL_OK);
        sl_outgate_destroy(&g);
    }
    sl_inbatch_t e;
    ck_assert_int_eq(sl_ingate_next(in, &e, err, sizeof err), 0);
    sl_batch_destroy(&b);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(test_malformed_split_frames_are_rejected)
{
    void *ctx = zmq_ctx_new();
    atomic_bool cancel = false;
    char err[256];
    sl_ingate_t *in = sl_ingate_new(ctx, "inproc://split-test", 1, &cancel, err, sizeof err);
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(raw, "inproc://split-test");
    sl_frame_hdr_t h = {.kind = SL_FRAME_BATCH, .flags = SL_FRAME_SPLIT, .count = 1, .window = 2};
    sl_inbatch_t b;
    zmq_send(raw, &h, sizeof h, 0); /* split, but no rows part */
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_PROTO);
    zmq_send(raw, &h, sizeof h, ZMQ_SNDMORE); /* a part too many */
    zmq_send(raw, "rows", 4, ZMQ_SNDMORE);
    zmq_send(raw, "more", 4, 0);
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_PROTO);
    h.flags = 7; /* unknown flag */
    zmq_send(raw, &h, sizeof h, ZMQ_SNDMORE);
    zmq_send(raw, "rows", 4, 0);
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), SL_PROTO);
    /* the gate reads on from the next frame */
    h.flags = SL_FRAME_SPLIT;
    zmq_send(raw, &h, sizeof h, ZMQ_SNDMORE);
    zmq_send(raw, "rows", 4, 0);
    ck_assert_int_eq(sl_ingate_next(in, &b, err, sizeof err), 1);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_int_eq(memcmp(b.data, "rows", 4), 0);
    sl_ingate_release(in, &b);
    zmq_close(raw);
    sl_ingate_destroy(&in);
    zmq_ctx_term(ctx);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("credit");
    TCase *tc = tcase_create("channel");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_credits_bound_in_flight_batches);
    tcase_add_test(tc, test_cancel_unblocks_a_waiting_sender);
    tcase_add_test(tc, test_end_needs_every_sender);
    tcase_add_test(tc, test_garbage_frames_are_rejected);
    tcase_add_test(tc, test_batches_sent_without_a_copy);
    tcase_add_test(tc, test_malformed_split_frames_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
