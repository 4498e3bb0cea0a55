/* arena.h — bump allocator reset per batch, so the hot path never mallocs
 * per record. Memory from an arena lives until the next reset or destroy. */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H
#include <stddef.h>

typedef struct sl_arena sl_arena_t;

/* New arena whose chunks are at least chunk_size bytes; NULL on OOM. */
sl_arena_t *sl_arena_new(size_t chunk_size);
/* Frees everything and sets *pp to NULL; accepts NULL and *pp == NULL. */
void sl_arena_destroy(sl_arena_t **pp);
/* size bytes aligned to 8; NULL on OOM. Never freed individually. */
void *sl_arena_alloc(sl_arena_t *a, size_t size);
/* Copy of n bytes of s plus a NUL terminator, in the arena. */
char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n);
/* Forgets all allocations; keeps the first chunk for reuse. */
void sl_arena_reset(sl_arena_t *a);
/* Bytes currently reserved from the system (for memory bounds tests). */
size_t sl_arena_footprint(const sl_arena_t *a);

/* Makes the heap array *p (of *cap elements of elem bytes) hold at least
 * need elements, doubling from 64: SL_OK, or SL_NOMEM (on overflow too;
 * *p and *cap are then unchanged). */
int sl_grow(void **p, size_t *cap, size_t need, size_t elem);
/* sl_grow with a first capacity (for arrays that are many and mostly small)
 * and a most (for capacities kept in narrower fields): doubles from first,
 * never past max; SL_NOMEM when need > max or memory runs out (*p and *cap
 * then unchanged). */
int sl_grow_ex(void **p, size_t *cap, size_t need, size_t elem, size_t first, size_t max);
/* Advises the kernel to back the heap block [p, p + bytes) with huge pages
 * where it can (its 2 MB-aligned part; nothing for a block under 4 MB).
 * Filling a large fresh block then takes a page fault per 2 MB, not per
 * 4 KB: on virtual machines the faults were most of the cost of reading a
 * 56 MB file into one, or of restoring millions of keys. sl_grow does it
 * for the arrays it grows. Only advice: no error. */
void sl_mem_huge(void *p, size_t bytes);

#endif
