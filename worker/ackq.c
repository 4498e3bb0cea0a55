/* ackq.c — see ackq.h. A ring of entries under a mutex held only to copy
 * one entry in or out. */
#define _POSIX_C_SOURCE 200809L
#include "ackq.h"

#include <pthread.h>
#include <stdlib.h>

#include "sluice/err.h"

#define S_DEFAULT_CAP 8 /* entries before the queue makes room */

struct sl_ackq {
    pthread_mutex_t lock; /* guards every field below */
    sl_task_ack_t *ring;  /* cap entries; the queue is n of them from head on */
    int cap;              /* entries the ring holds */
    int head;             /* index of the oldest entry */
    int n;                /* entries queued */
    uint64_t dropped;     /* successful acks dropped to make room */
};

sl_ackq_t *sl_ackq_new(int cap)
{
    sl_ackq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->cap = cap > 0 ? cap : S_DEFAULT_CAP;
    q->ring = calloc((size_t)q->cap, sizeof *q->ring);
    if (!q->ring) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    return q;
}

void sl_ackq_destroy(sl_ackq_t **pp)
{
    if (!pp || !*pp)
        return;
    sl_ackq_t *q = *pp;
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
    *pp = NULL;
}

/* Entry k (0 = oldest) of the queue. */
static sl_task_ack_t *s_at(sl_ackq_t *q, int k)
{
    return &q->ring[(q->head + k) % q->cap];
}

/* Makes room in a full queue for an entry of checkpoint next_id: drops the
 * oldest successful ack whose checkpoint is older than that of an entry
 * after it (next_id included). False when there is none. */
static bool s_drop_superseded(sl_ackq_t *q, uint64_t next_id)
{
    int victim = -1;
    uint64_t newer = next_id; /* largest id after entry k */
    for (int k = q->n - 1; k >= 0; k--) {
        const sl_task_ack_t *e = s_at(q, k);
        if (!e->declined[0] && e->id < newer)
            victim = k;
        if (e->id > newer)
            newer = e->id;
    }
    if (victim < 0)
        return false;
    for (int k = victim; k < q->n - 1; k++)
        *s_at(q, k) = *s_at(q, k + 1);
    q->n--;
    q->dropped++;
    return true;
}

/* Doubles the ring, the entries moved to its start. */
static int s_grow(sl_ackq_t *q)
{
    if (q->cap > (1 << 20))
        return SL_NOMEM;
    sl_task_ack_t *r = calloc((size_t)q->cap * 2, sizeof *r);
    if (!r)
        return SL_NOMEM;
    for (int k = 0; k < q->n; k++)
        r[k] = *s_at(q, k);
    free(q->ring);
    q->ring = r;
    q->cap *= 2;
    q->head = 0;
    return SL_OK;
}

int sl_ackq_push(sl_ackq_t *q, const sl_task_ack_t *a)
{
    int rc = SL_OK;
    pthread_mutex_lock(&q->lock);
    if (q->n == q->cap && !s_drop_superseded(q, a->id))
        rc = s_grow(q);
    if (rc == SL_OK) {
        *s_at(q, q->n) = *a;
        q->n++;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

bool sl_ackq_pop(sl_ackq_t *q, sl_task_ack_t *out)
{
    pthread_mutex_lock(&q->lock);
    bool got = q->n > 0;
    if (got) {
        *out = *s_at(q, 0);
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    pthread_mutex_unlock(&q->lock);
    return got;
}

int sl_ackq_len(sl_ackq_t *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->n;
    pthread_mutex_unlock(&q->lock);
    return n;
}

uint64_t sl_ackq_dropped(sl_ackq_t *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->lock);
    return d;
}
