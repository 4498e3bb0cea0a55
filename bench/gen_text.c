/* gen_text.c — deterministic text generator for the word-count benchmark.
 *
 *   gen_text OUTPUT [BYTES] [SEED]      (BYTES defaults to 500000000, SEED to 42)
 *
 * Writes exactly BYTES bytes of text to OUTPUT (written to OUTPUT.tmp and
 * renamed, so a half-written file is never mistaken for a finished one).
 * The same BYTES and SEED always give the same file, byte for byte.
 *
 * What the text looks like:
 *   - a vocabulary of S_VOCAB (100k) words, generated from the seed; short
 *     words get the frequent ranks, as in natural language; about 4% of the
 *     words hold non-ASCII UTF-8 letters (2-, 3- and a few 4-byte sequences);
 *   - words drawn with a Zipf-like distribution (s = 1.0) over the ranks,
 *     sampled in O(1) with Vose's alias table;
 *   - some tokens carry punctuation as in prose: a trailing ',' or '.', an
 *     apostrophe, or double quotes around them, so the CSV writers' quoting
 *     is exercised by the benchmark too;
 *   - lines of varying length (mostly 1..24 words, some empty lines, a few
 *     lines of hundreds of words), words separated mostly by one space,
 *     sometimes by two spaces, a tab, or '\v' / '\f'; some lines end in
 *     "\r\n";
 *   - the last line is padded with spaces to reach exactly BYTES, then '\n'.
 *
 * Prints the number of bytes written and the seconds it took. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_VOCAB 100000u                /* words in the vocabulary */
#define S_ZIPF_S 1.0                   /* Zipf exponent */
#define S_OUT_BUF (4u * 1024u * 1024u) /* bytes buffered per write(2) */
#define S_MAX_WORD 64u                 /* longest vocabulary word, bytes */
#define S_MAX_LINE (64u * 1024u)       /* longest line generated, bytes */

/* ---- random numbers: splitmix64 seeded xoshiro256** --------------------- */

typedef struct {
    uint64_t s[4]; /* xoshiro256** state */
} s_rng_t;

static uint64_t s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s_rng_seed(s_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = s_splitmix(&seed);
}

static inline uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t s_next(s_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return out;
}

/* A number in [0, n), n > 0 (Lemire's multiply-shift; bias is negligible
 * for the small n used here). */
static inline uint32_t s_below(s_rng_t *r, uint32_t n)
{
    return (uint32_t)(((s_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- vocabulary ------------------------------------------------------------ */

typedef struct {
    char *pool;       /* all words, back to back */
    uint32_t *off;    /* word i starts at pool + off[i] */
    uint8_t *len;     /* and is len[i] bytes long */
    uint32_t *alias;  /* alias table: the other word of slot i */
    uint32_t *thresh; /* slot i keeps word i when the low 32 bits < thresh[i] */
} s_vocab_t;

/* Non-ASCII letters: some Latin-1 supplement (2 bytes), Greek and Cyrillic
 * (2 bytes), CJK (3 bytes) and a few 4-byte sequences. */
static const char *const s_utf8_letters[] = {
    "\xc3\xa9",     "\xc3\xa8",         "\xc3\xbc",         "\xc3\xb6",        "\xc3\xa4",
    "\xc3\x9f",     "\xc3\xb1",         "\xc3\xb8",         "\xc3\xa5",        "\xc3\xa7",
    "\xce\xb1",     "\xce\xb2",         "\xce\xb3",         "\xce\xbb",        "\xcf\x80",
    "\xd0\xb4",     "\xd0\xb6",         "\xd1\x8f",         "\xd0\xbb",        "\xd1\x8b",
    "\xe6\xb0\xb4", "\xe9\x97\xb8",     "\xe6\xb5\x81",     "\xe5\xb7\x9d",    "\xe3\x81\x82",
    "\xe3\x82\xab", "\xf0\x9f\x8c\x8a", "\xf0\x9f\x90\x9f", "\xf0\x90\x8c\xb0"};
#define S_NUTF8 (sizeof s_utf8_letters / sizeof s_utf8_letters[0])

/* Builds the vocabulary words: rank r (0 = most frequent) gets a length that
 * grows with log(r), so frequent words are short. */
static int s_vocab_words(s_vocab_t *v, s_rng_t *r)
{
    static const char cons[] = "bcdfghjklmnprstvwz";
    static const char vow[] = "aeiouy";
    v->pool = malloc((size_t)S_VOCAB * S_MAX_WORD);
    v->off = malloc(S_VOCAB * sizeof *v->off);
    v->len = malloc(S_VOCAB * sizeof *v->len);
    if (!v->pool || !v->off || !v->len)
        return -1;
    size_t used = 0;
    for (uint32_t i = 0; i < S_VOCAB; i++) {
        unsigned target = 1 + s_below(r, 3) + (unsigned)(log2((double)i + 2.0) / 2.0);
        bool utf8 = i > 30 && s_below(r, 100) < 4;
        char *w = v->pool + used;
        size_t n = 0;
        for (unsigned k = 0; k < target && n + 4 <= S_MAX_WORD - 1; k++) {
            if (utf8 && s_below(r, 3) == 0) {
                const char *u = s_utf8_letters[s_below(r, (uint32_t)S_NUTF8)];
                size_t ul = strlen(u);
                memcpy(w + n, u, ul);
                n += ul;
            } else if (k % 2 == 0) {
                w[n++] = cons[s_below(r, (uint32_t)(sizeof cons - 1))];
            } else {
                w[n++] = vow[s_below(r, (uint32_t)(sizeof vow - 1))];
            }
        }
        if (!utf8 && n > 2 && i % 97 == 13) /* some with an apostrophe: don't */
            w[n - 2] = '\'';
        v->off[i] = (uint32_t)used;
        v->len[i] = (uint8_t)n;
        used += n;
    }
    return 0;
}

/* Builds Vose's alias table for the Zipf weights 1 / (rank + 1)^s. */
static int s_vocab_alias(s_vocab_t *v)
{
    double *p = malloc(S_VOCAB * sizeof *p);
    uint32_t *small = malloc(S_VOCAB * sizeof *small);
    uint32_t *large = malloc(S_VOCAB * sizeof *large);
    v->alias = malloc(S_VOCAB * sizeof *v->alias);
    v->thresh = malloc(S_VOCAB * sizeof *v->thresh);
    int rc = -1;
    if (!p || !small || !large || !v->alias || !v->thresh)
        goto out;
    double sum = 0;
    for (uint32_t i = 0; i < S_VOCAB; i++) {
        p[i] = 1.0 / pow((double)i + 1.0, S_ZIPF_S);
        sum += p[i];
    }
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < S_VOCAB; i++) {
        p[i] = p[i] * S_VOCAB / sum;
        v->alias[i] = i;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];
        v->thresh[s] = (uint32_t)(p[s] * 4294967295.0);
        v->alias[s] = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl)
        v->thresh[large[--nl]] = UINT32_MAX;
    while (ns)
        v->thresh[small[--ns]] = UINT32_MAX; /* rounding leftovers */
    rc = 0;
out:
    free(p);
    free(small);
    free(large);
    return rc;
}

static void s_vocab_free(s_vocab_t *v)
{
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->alias);
    free(v->thresh);
}

/* A word index drawn from the Zipf distribution. */
static inline uint32_t s_draw(const s_vocab_t *v, s_rng_t *r)
{
    uint64_t x = s_next(r);
    uint32_t slot = (uint32_t)(((x >> 32) * (uint64_t)S_VOCAB) >> 32);
    return (uint32_t)x < v->thresh[slot] ? slot : v->alias[slot];
}

/* ---- output -------------------------------------------------------------------- */

typedef struct {
    int fd;         /* output file */
    char *buf;      /* pending bytes */
    size_t len;     /* bytes pending in buf */
    uint64_t total; /* bytes handed to write(2) so far */
} s_out_t;

static int s_flush(s_out_t *o)
{
    size_t done = 0;
    while (done < o->len) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    o->total += o->len;
    o->len = 0;
    return 0;
}

/* Writes one line of text into line[]; returns its length (with '\n'). */
static size_t s_make_line(const s_vocab_t *v, s_rng_t *r, char *line)
{
    uint32_t shape = s_below(r, 1000);
    uint32_t words;
    if (shape < 25)
        words = 0; /* an empty line */
    else if (shape < 28)
        words = 100 + s_below(r, 400); /* a long paragraph on one line */
    else
        words = 1 + s_below(r, 24);
    size_t n = 0;
    for (uint32_t k = 0; k < words && n + 2 * S_MAX_WORD + 8 < S_MAX_LINE; k++) {
        if (k) {
            uint32_t sep = s_below(r, 256);
            if (sep < 240)
                line[n++] = ' ';
            else if (sep < 246) {
                line[n++] = ' ';
                line[n++] = ' ';
            } else if (sep < 252)
                line[n++] = '\t';
            else if (sep < 254)
                line[n++] = '\v';
            else
                line[n++] = '\f';
        }
        uint32_t w = s_draw(v, r);
        uint32_t punct = s_below(r, 1024);
        bool quoted = punct < 4;
        if (quoted)
            line[n++] = '"';
        memcpy(line + n, v->pool + v->off[w], v->len[w]);
        n += v->len[w];
        if (quoted)
            line[n++] = '"';
        else if (punct < 64)
            line[n++] = ',';
        else if (punct < 96)
            line[n++] = '.';
    }
    if (s_below(r, 16) == 0)
        line[n++] = '\r';
    line[n++] = '\n';
    return n;
}

static int s_generate(const char *path, uint64_t bytes, uint64_t seed)
{
    s_rng_t r;
    s_rng_seed(&r, seed);
    s_vocab_t v = {0};
    int rc = 1;
    char *line = malloc(S_MAX_LINE);
    s_out_t o = {.fd = -1, .buf = malloc(S_OUT_BUF)};
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!line || !o.buf || !tmp || s_vocab_words(&v, &r) || s_vocab_alias(&v)) {
        fprintf(stderr, "gen_text: out of memory\n");
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o.fd < 0) {
        fprintf(stderr, "gen_text: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    for (;;) {
        uint64_t at = o.total + o.len;
        size_t n = s_make_line(&v, &r, line);
        if (at + n > bytes) {
            /* pad the last line to land exactly on the size */
            uint64_t rest = bytes - at;
            if (rest > 0) {
                memset(line, ' ', (size_t)rest);
                line[rest - 1] = '\n';
            }
            n = (size_t)rest;
        }
        if (o.len + n > S_OUT_BUF && s_flush(&o))
            goto io;
        memcpy(o.buf + o.len, line, n);
        o.len += n;
        if (at + n == bytes)
            break;
    }
    if (s_flush(&o))
        goto io;
    if (close(o.fd) != 0) {
        o.fd = -1;
        goto io;
    }
    o.fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "gen_text: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
io:
    fprintf(stderr, "gen_text: cannot write %s: %s\n", tmp, strerror(errno));
    unlink(tmp);
out:
    if (o.fd >= 0)
        close(o.fd);
    s_vocab_free(&v);
    free(line);
    free(o.buf);
    free(tmp);
    return rc;
}

/* Parses a whole decimal number, or fails. */
static int s_u64_arg(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (uint64_t)n;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t bytes = 500000000ull, seed = 42;
    if (argc < 2 || argc > 4 || (argc > 2 && s_u64_arg(argv[2], &bytes)) ||
        (argc > 3 && s_u64_arg(argv[3], &seed))) {
        fprintf(stderr, "usage: gen_text OUTPUT [BYTES (default 500000000)] [SEED (default 42)]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = s_generate(argv[1], bytes, seed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        printf("bytes=%llu seconds=%.3f\n", (unsigned long long)bytes,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return rc;
}
