/* arena.c — chunked bump allocator (see sluice/arena.h). */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include "sluice/arena.h"

#include "sluice/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct s_chunk {
    struct s_chunk *next; /* older chunk */
    size_t size;          /* usable bytes in data */
    size_t used;          /* bytes handed out */
    max_align_t data[];   /* payload */
} s_chunk_t;

struct sl_arena {
    s_chunk_t *head;   /* newest chunk; allocation happens here */
    size_t chunk_size; /* default payload size of a new chunk */
    size_t footprint;  /* bytes malloc'd for all chunks */
};

sl_arena_t *sl_arena_new(size_t chunk_size)
{
    sl_arena_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
    return a;
}

void sl_arena_destroy(sl_arena_t **pp)
{
    if (!pp || !*pp)
        return;
    s_chunk_t *c = (*pp)->head;
    while (c) {
        s_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    free(*pp);
    *pp = NULL;
}

void *sl_arena_alloc(sl_arena_t *a, size_t size)
{
    size = (size + 7u) & ~(size_t)7u;
    s_chunk_t *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = size > a->chunk_size ? size : a->chunk_size;
        c = malloc(sizeof *c + want);
        if (!c)
            return NULL;
        c->size = want;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->footprint += sizeof *c + want;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n)
{
    char *p = sl_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void sl_arena_reset(sl_arena_t *a)
{
    s_chunk_t *c = a->head;
    if (!c)
        return;
    /* Keep the oldest chunk (the usual steady-state size); free the rest. */
    while (c->next) {
        s_chunk_t *next = c->next;
        a->footprint -= sizeof *c + c->size;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
}

size_t sl_arena_footprint(const sl_arena_t *a)
{
    return a->footprint;
}

int sl_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    return sl_grow_ex(p, cap, need, elem, 64, SIZE_MAX / 2 + 1);
}

int sl_grow_ex(void **p, size_t *cap, size_t need, size_t elem, size_t first, size_t max)
{
    if (need <= *cap)
        return SL_OK;
    if (need > max || !first)
        return SL_NOMEM;
    size_t nc = *cap ? *cap : first < max ? first : max;
    while (nc < need)
        nc = nc > max / 2 ? max : nc * 2;
    if (elem && nc > SIZE_MAX / elem)
        return SL_NOMEM;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return SL_NOMEM;
    *p = np;
    *cap = nc;
    sl_mem_huge(np, nc * elem);
    return SL_OK;
}

/* Transparent huge pages are 2 MB on x86-64 and arm64 (4 KB base pages). */
#define S_HUGE_PAGE ((uintptr_t)2 << 20)

void sl_mem_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (!p || bytes < 2 * S_HUGE_PAGE)
        return;
    uintptr_t lo = ((uintptr_t)p + S_HUGE_PAGE - 1) & ~(S_HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(S_HUGE_PAGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* only advice */
#else
    (void)p;
    (void)bytes;
#endif
}
