/* wc_baseline.c — the ceiling of the word-count benchmark: a bare,
 * single-threaded C loop doing what jobs/wordcount.yaml does.
 *
 *   wc_baseline INPUT OUTPUT.csv
 *
 * Reads INPUT with large read(2) calls, splits it on C-locale whitespace
 * (" \t\n\v\f\r", the set sluice's flat_map uses), counts every word in an
 * open-addressing hash table and writes OUTPUT.csv as sluice's CSV sink
 * does: the header "word,count", then one "word,count" line per distinct
 * word (in no particular order), a word quoted when it holds ',', '"', CR or
 * LF, with its quotes doubled. Like sluice's text reader it ignores a UTF-8
 * byte order mark at offset 0. So `LC_ALL=C sort` of both outputs must be
 * identical; bench/wordcount.sh checks it.
 *
 * Prints "words=N distinct=D bytes=B seconds=S" (S is its own wall time,
 * from open to the output closed). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_READ_BUF (4u * 1024u * 1024u)  /* bytes per read(2), grown for huge words */
#define S_WRITE_BUF (1u * 1024u * 1024u) /* bytes per write(2) */
#define S_CHUNK (4u * 1024u * 1024u)     /* key storage chunk */
#define S_INITIAL_SLOTS (1u << 16)       /* hash table slots to start with */

/* ---- key storage: words are copied into big chunks, never freed one by one */

typedef struct s_chunk {
    struct s_chunk *next; /* previously filled chunk */
    size_t used;          /* bytes used of data */
    size_t cap;           /* bytes of data */
    char data[];          /* the words */
} s_chunk_t;

/* ---- the hash table ----------------------------------------------------------- */

#define S_INLINE 12u /* words up to this long live in the slot itself */

typedef struct {
    uint64_t hash;  /* full hash of the word; 0 marks an empty slot */
    uint64_t count; /* occurrences */
    uint32_t len;   /* bytes of the word */
    union {
        char bytes[S_INLINE]; /* the word, if len <= S_INLINE */
        const char *ptr;      /* else the word, in a chunk */
    } key;
} s_slot_t;

typedef struct {
    s_slot_t *slots;   /* open addressing, linear probing */
    size_t mask;       /* slots - 1 (a power of two) */
    size_t used;       /* occupied slots */
    s_chunk_t *chunks; /* key storage, newest first */
} s_table_t;

/* A fast 64-bit hash of n bytes, 8 at a time (never 0). */
static inline uint64_t s_hash(const unsigned char *p, size_t n)
{
    const uint64_t m = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0x243f6a8885a308d3ull ^ (n * m);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * m;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h ? h : 1;
}

static char *s_store(s_table_t *t, const unsigned char *p, size_t n)
{
    s_chunk_t *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > S_CHUNK ? n : S_CHUNK;
        s_chunk_t *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        t->chunks = c = nc;
    }
    char *k = c->data + c->used;
    memcpy(k, p, n);
    c->used += n;
    return k;
}

static int s_grow(s_table_t *t)
{
    size_t nslots = (t->mask + 1) * 2;
    s_slot_t *ns = calloc(nslots, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        if (!t->slots[i].hash)
            continue;
        size_t j = t->slots[i].hash & (nslots - 1);
        while (ns[j].hash)
            j = (j + 1) & (nslots - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->mask = nslots - 1;
    return 0;
}

static inline const char *s_key(const s_slot_t *s)
{
    return s->len <= S_INLINE ? s->key.bytes : s->key.ptr;
}

/* Counts one occurrence of the word [p, p + n). */
static inline int s_count(s_table_t *t, const unsigned char *p, size_t n)
{
    uint64_t h = s_hash(p, n);
    size_t i = h & t->mask;
    for (;;) {
        s_slot_t *s = &t->slots[i];
        if (s->hash == h && s->len == n && memcmp(s_key(s), p, n) == 0) {
            s->count++;
            return 0;
        }
        if (!s->hash)
            break;
        i = (i + 1) & t->mask;
    }
    if (n > UINT32_MAX)
        return -1;
    s_slot_t *s = &t->slots[i];
    if (n <= S_INLINE) {
        memcpy(s->key.bytes, p, n);
    } else {
        char *k = s_store(t, p, n);
        if (!k)
            return -1;
        s->key.ptr = k;
    }
    s->hash = h;
    s->count = 1;
    s->len = (uint32_t)n;
    if (++t->used * 2 > t->mask + 1)
        return s_grow(t);
    return 0;
}

static void s_table_free(s_table_t *t)
{
    free(t->slots);
    while (t->chunks) {
        s_chunk_t *next = t->chunks->next;
        free(t->chunks);
        t->chunks = next;
    }
}

/* ---- reading and splitting ------------------------------------------------------- */

/* C-locale whitespace, the same set as sluice's flat_map and `tr '[:space:]'`. */
static bool s_space[256];

/* Counts the words of fd into t. Returns 0 or -1 (errno set, or out of memory). */
static int s_count_file(int fd, s_table_t *t, uint64_t *words, uint64_t *bytes)
{
    size_t cap = S_READ_BUF, have = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -1;
    bool first = true, eof = false;
    int rc = 0;
    while (!eof) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        eof = n == 0;
        *bytes += (uint64_t)n;
        have += (size_t)n;
        const unsigned char *p = buf, *end = buf + have;
        if (first) {
            if (have < 3 && !eof)
                continue; /* look at the first 3 bytes together */
            if (have >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
                p += 3; /* a byte order mark, ignored as sluice's reader does */
            first = false;
        }
        for (;;) {
            while (p < end && s_space[*p])
                p++;
            if (p == end) {
                have = 0;
                break;
            }
            const unsigned char *q = p;
            while (q < end && !s_space[*q])
                q++;
            if (q == end && !eof) {
                /* the word may go on in the next read: keep it */
                have = (size_t)(end - p);
                memmove(buf, p, have);
                if (have == cap) {
                    unsigned char *nb = realloc(buf, cap * 2);
                    if (!nb) {
                        rc = -1;
                        goto out;
                    }
                    buf = nb;
                    cap *= 2;
                }
                break;
            }
            if (s_count(t, p, (size_t)(q - p))) {
                rc = -1;
                goto out;
            }
            (*words)++;
            p = q;
        }
    }
out:
    free(buf);
    return rc;
}

/* ---- writing the CSV ------------------------------------------------------------- */

typedef struct {
    int fd;     /* output file */
    char *buf;  /* pending bytes */
    size_t len; /* pending byte count */
    int err;    /* errno of the first failed write, or 0 */
} s_out_t;

static void s_flush(s_out_t *o)
{
    size_t done = 0;
    while (!o->err && done < o->len) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            o->err = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    o->len = 0;
}

static void s_put(s_out_t *o, const char *p, size_t n)
{
    while (n) {
        if (o->len == S_WRITE_BUF)
            s_flush(o);
        size_t k = S_WRITE_BUF - o->len < n ? S_WRITE_BUF - o->len : n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
    }
}

/* One CSV line "word,count", quoting the word as sluice's CSV writer does. */
static void s_put_row(s_out_t *o, const s_slot_t *s)
{
    const char *key = s_key(s);
    bool quote = false;
    for (uint32_t i = 0; i < s->len && !quote; i++) {
        char c = key[i];
        quote = c == ',' || c == '"' || c == '\r' || c == '\n';
    }
    if (!quote) {
        s_put(o, key, s->len);
    } else {
        s_put(o, "\"", 1);
        size_t from = 0;
        for (size_t i = 0; i < s->len; i++) {
            if (key[i] == '"') {
                s_put(o, key + from, i + 1 - from); /* the quote, then its double */
                from = i;
            }
        }
        s_put(o, key + from, s->len - from);
        s_put(o, "\"", 1);
    }
    char num[32];
    int n = snprintf(num, sizeof num, ",%llu\n", (unsigned long long)s->count);
    s_put(o, num, (size_t)n);
}

static int s_write_csv(const char *path, const s_table_t *t)
{
    s_out_t o = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), .buf = malloc(S_WRITE_BUF)};
    if (o.fd < 0 || !o.buf) {
        fprintf(stderr, "wc_baseline: cannot create %s: %s\n", path,
                o.fd < 0 ? strerror(errno) : "out of memory");
        if (o.fd >= 0)
            close(o.fd);
        free(o.buf);
        return -1;
    }
    s_put(&o, "word,count\n", 11);
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i].hash)
            s_put_row(&o, &t->slots[i]);
    s_flush(&o);
    if (close(o.fd) != 0 && !o.err)
        o.err = errno;
    free(o.buf);
    if (o.err) {
        fprintf(stderr, "wc_baseline: cannot write %s: %s\n", path, strerror(o.err));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: wc_baseline INPUT OUTPUT.csv\n");
        return 2;
    }
    static const char spaces[] = " \t\n\v\f\r";
    for (const char *c = spaces; *c; c++)
        s_space[(unsigned char)*c] = true;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "wc_baseline: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    s_table_t t = {.slots = calloc(S_INITIAL_SLOTS, sizeof(s_slot_t)), .mask = S_INITIAL_SLOTS - 1};
    uint64_t words = 0, bytes = 0;
    errno = 0;
    int rc = t.slots ? s_count_file(fd, &t, &words, &bytes) : -1;
    close(fd);
    if (rc) {
        fprintf(stderr, "wc_baseline: cannot read %s: %s\n", argv[1],
                errno ? strerror(errno) : "out of memory");
        s_table_free(&t);
        return 1;
    }
    rc = s_write_csv(argv[2], &t);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        printf("words=%llu distinct=%zu bytes=%llu seconds=%.3f\n", (unsigned long long)words,
               t.used, (unsigned long long)bytes,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    s_table_free(&t);
    return rc ? 1 : 0;
}
