/* check_ackq.c — a subtask's queue of checkpoint acknowledgements
 * (worker/ackq.h): every ack and decline published reaches the consumer in
 * order, even when published faster than drained; when full, only a
 * successful ack superseded by a newer checkpoint's is dropped, never a
 * decline. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ackq.h"
#include "sluice/err.h"
#include "testutil.h"

/* The ack a subtask would publish for checkpoint id, a decline or not. */
static sl_task_ack_t s_ack(uint64_t id, bool decline)
{
    sl_task_ack_t a = {.id = id, .size = id * 10, .align_ms = id % 7};
    if (decline)
        snprintf(a.declined, sizeof a.declined, "cannot write chk-%llu: No space left on device",
                 (unsigned long long)id);
    else {
        snprintf(a.file, sizeof a.file, "task-0-%llu.state", (unsigned long long)id);
        snprintf(a.sha256, sizeof a.sha256, "%064llu", (unsigned long long)id);
    }
    return a;
}

/* Asserts that *got is exactly what s_ack(id, decline) published. */
static void s_check(const sl_task_ack_t *got, uint64_t id, bool decline)
{
    sl_task_ack_t want = s_ack(id, decline);
    ck_assert_uint_eq(got->id, id);
    ck_assert_str_eq(got->declined, want.declined);
    ck_assert_str_eq(got->file, want.file);
    ck_assert_str_eq(got->sha256, want.sha256);
    ck_assert_uint_eq(got->size, want.size);
    ck_assert_uint_eq(got->align_ms, want.align_ms);
}

/* The failure the queue fixes: a checkpoint's ack, then the next one's
 * decline, both published before the worker looks. */
START_TEST(test_ack_then_decline_both_arrive)
{
    sl_ackq_t *q = sl_ackq_new(0);
    ck_assert_ptr_nonnull(q);
    sl_task_ack_t a = s_ack(5, false), d = s_ack(6, true), got;
    ck_assert_int_eq(sl_ackq_push(q, &a), SL_OK);
    ck_assert_int_eq(sl_ackq_push(q, &d), SL_OK);
    ck_assert_int_eq(sl_ackq_len(q), 2);
    ck_assert(sl_ackq_pop(q, &got));
    s_check(&got, 5, false);
    ck_assert(sl_ackq_pop(q, &got));
    s_check(&got, 6, true);
    ck_assert(!sl_ackq_pop(q, &got));
    ck_assert_uint_eq(sl_ackq_dropped(q), 0);
    sl_ackq_destroy(&q);
    ck_assert_ptr_null(q);
    sl_ackq_destroy(&q); /* NULL is fine */
}
END_TEST

/* A full queue drops the oldest superseded successful ack, keeps every
 * decline (growing when only declines are left), and keeps the order. */
START_TEST(test_full_queue_drops_only_superseded_acks)
{
    sl_ackq_t *q = sl_ackq_new(4);
    ck_assert_ptr_nonnull(q);
    /* 1 ok, 2 declined, 3 ok, 4 declined fill it; 5 ok drops 1; 6 declined
     * drops 3; 7 declined drops 5; 8 and 9 declined: nothing to drop */
    for (uint64_t id = 1; id <= 9; id++) {
        sl_task_ack_t a = s_ack(id, id % 2 == 0 || id >= 6);
        ck_assert_int_eq(sl_ackq_push(q, &a), SL_OK);
    }
    ck_assert_uint_eq(sl_ackq_dropped(q), 3);
    ck_assert_int_eq(sl_ackq_len(q), 6);
    const uint64_t want[] = {2, 4, 6, 7, 8, 9};
    sl_task_ack_t got;
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        ck_assert(sl_ackq_pop(q, &got));
        s_check(&got, want[k], true);
    }
    ck_assert(!sl_ackq_pop(q, &got));
    /* emptied after growing and wrapping, it still keeps order */
    for (uint64_t id = 10; id <= 30; id++) {
        sl_task_ack_t a = s_ack(id, true);
        ck_assert_int_eq(sl_ackq_push(q, &a), SL_OK);
        if (id % 3 == 0) {
            ck_assert(sl_ackq_pop(q, &got));
            ck_assert_uint_le(got.id, id);
        }
    }
    sl_ackq_destroy(&q);
}
END_TEST

/* The newest ack is never the one dropped, even when every older entry is
 * a decline: the queue grows instead. */
START_TEST(test_newest_ack_is_kept)
{
    sl_ackq_t *q = sl_ackq_new(2);
    sl_task_ack_t d1 = s_ack(1, true), d2 = s_ack(2, true), a3 = s_ack(3, false),
                  a4 = s_ack(4, false), got;
    ck_assert_int_eq(sl_ackq_push(q, &d1), SL_OK);
    ck_assert_int_eq(sl_ackq_push(q, &d2), SL_OK);
    ck_assert_int_eq(sl_ackq_push(q, &a3), SL_OK); /* full of declines: grows */
    ck_assert_uint_eq(sl_ackq_dropped(q), 0);
    ck_assert_int_eq(sl_ackq_push(q, &a4), SL_OK); /* room left after growing */
    ck_assert_int_eq(sl_ackq_len(q), 4);
    for (uint64_t id = 1; id <= 4; id++) {
        ck_assert(sl_ackq_pop(q, &got));
        s_check(&got, id, id <= 2);
    }
    sl_ackq_destroy(&q);
}
END_TEST

/* ---- a task thread publishing faster than the worker drains ------------ */

#define S_N 3000 /* checkpoints published */

typedef struct {
    sl_ackq_t *q;
    int pushed;         /* checkpoints published so far */
    pthread_mutex_t mu; /* guards pushed */
} s_prod_t;

static bool s_decline(uint64_t id)
{
    return id % 3 == 0 || id % 11 == 0 || id == S_N;
}

static void *s_producer(void *arg)
{
    s_prod_t *p = arg;
    for (uint64_t id = 1; id <= S_N; id++) {
        sl_task_ack_t a = s_ack(id, s_decline(id));
        ck_assert_int_eq(sl_ackq_push(p->q, &a), SL_OK);
        pthread_mutex_lock(&p->mu);
        p->pushed = (int)id;
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static bool s_all_pushed(void *arg)
{
    s_prod_t *p = arg;
    pthread_mutex_lock(&p->mu);
    bool done = p->pushed == S_N;
    pthread_mutex_unlock(&p->mu);
    return done;
}

START_TEST(test_fast_producer_slow_consumer)
{
    s_prod_t p = {.q = sl_ackq_new(0)};
    ck_assert_ptr_nonnull(p.q);
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, s_producer, &p), 0);
    /* the consumer takes one entry now and then, as the worker's 20 ms loop
     * would, until the producer is done; then it drains the rest */
    uint64_t last = 0;
    int received = 0, declines = 0;
    sl_task_ack_t got;
    bool producing = true;
    while (producing || sl_ackq_len(p.q) > 0) {
        producing = !s_all_pushed(&p);
        if (producing)
            nanosleep(&(struct timespec){.tv_nsec = 200 * 1000}, NULL);
        while (sl_ackq_pop(p.q, &got)) {
            ck_assert_uint_gt(got.id, last); /* in the order published */
            /* every decline between the last one received and this one
             * arrived: only successful acks may be missing */
            for (uint64_t id = last + 1; id < got.id; id++)
                ck_assert_msg(!s_decline(id), "decline of checkpoint %llu lost",
                              (unsigned long long)id);
            s_check(&got, got.id, s_decline(got.id));
            last = got.id;
            received++;
            declines += got.declined[0] != 0;
            if (producing)
                break; /* slower than the producer */
        }
    }
    ck_assert(sl_wait_until(s_all_pushed, &p, 60000));
    pthread_join(th, NULL);
    ck_assert_uint_eq(last, S_N); /* the newest arrived */
    int want_declines = 0;
    for (uint64_t id = 1; id <= S_N; id++)
        want_declines += s_decline(id);
    ck_assert_int_eq(declines, want_declines);
    ck_assert_uint_eq((uint64_t)received + sl_ackq_dropped(p.q), S_N);
    pthread_mutex_destroy(&p.mu);
    sl_ackq_destroy(&p.q);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("ackq");
    TCase *tc = tcase_create("ackq");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ack_then_decline_both_arrive);
    tcase_add_test(tc, test_full_queue_drops_only_superseded_acks);
    tcase_add_test(tc, test_newest_ack_is_kept);
    tcase_add_test(tc, test_fast_producer_slow_consumer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
