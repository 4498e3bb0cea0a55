/* textfmt.c — values to and from text (see textfmt.h).
 *
 * Called by the file readers and writers (fileio.c), the CLI and anything
 * else that shows a value to a person, so that one value always has one
 * spelling. Rules decided here:
 *
 *   - int64: optional sign, decimal digits only, nothing else (no spaces, no
 *     "0x", no fraction); overflow is an error, never a wrap.
 *   - double: decimal or exponent notation read with strtod; "inf", "nan",
 *     hexadecimal floats and values that overflow to infinity are REJECTED so
 *     that every value read is finite and survives JSON. Written in the
 *     shortest of %.15g / %.16g / %.17g that reads back to the same bits;
 *     non-finite values (which computations can still produce) are written
 *     as "inf", "-inf" and "nan".
 *   - bool: true/false/1/0/yes/no in any case; written as true/false.
 *   - timestamp: see textfmt.h. Years outside 0000..9999 are written with a
 *     sign ("+12345-01-01T...", "-0001-...") and read back the same way, so
 *     every int64 of milliseconds round-trips. Calendar arithmetic is the
 *     proleptic Gregorian calendar done here (days_from_civil /
 *     civil_from_days), with no dependency on timegm or the TZ variable.
 *   - empty text is null for every type. */
#define _POSIX_C_SOURCE 200809L
#include "sluice/textfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/err.h"

#define S_MS_PER_DAY 86400000LL
/* Largest |days| whose start still fits in int64 milliseconds. */
#define S_MAX_DAYS (INT64_MAX / S_MS_PER_DAY)

/* Writes "'<text>' <what>" into err, quoting at most 60 bytes of text. */
static int s_fail(char *err, size_t cap, const char *s, size_t len, const char *what)
{
    if (err && cap) {
        int n = len > 60 ? 60 : (int)len;
        snprintf(err, cap, "'%.*s%s' %s", n, s, len > 60 ? "..." : "", what);
    }
    return SL_DATA;
}

/* Parses [s, s+len) as a signed decimal int64. Returns 0, or -1 if the text
 * is not an integer, or -2 if it overflows. */
static int s_parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == len)
        return -1;
    /* accumulate as a negative number so INT64_MIN is representable */
    int64_t v = 0;
    bool over = false; /* keep checking the syntax: "999...9x" is not an int64 */
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (over || v < (INT64_MIN + d) / 10)
            over = true;
        else
            v = v * 10 - d;
    }
    if (over)
        return -2;
    if (!neg) {
        if (v == INT64_MIN)
            return -2;
        v = -v;
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (H. Hinnant). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of s_days_from_civil. */
static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int s_days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Reads exactly n digits at s[*i]; returns the number or -1. */
static int s_digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

/* Parses the calendar forms of a timestamp. Returns 0, -1 (bad syntax or
 * field out of range) or -2 (outside the int64 millisecond range). */
static int s_parse_calendar(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i++;
    }
    size_t y0 = i;
    int64_t year = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        year = year * 10 + (s[i] - '0');
        i++;
        if (i - y0 > 9)
            return -1;
    }
    if (i - y0 < 4 || i >= len || s[i] != '-')
        return -1;
    if (neg)
        year = -year;
    i++;
    int mon = s_digits(s, len, &i, 2);
    if (mon < 1 || mon > 12 || i >= len || s[i] != '-')
        return -1;
    i++;
    int day = s_digits(s, len, &i, 2);
    if (day < 1 || day > s_days_in_month(year, mon))
        return -1;
    int hh = 0, mi = 0, ss = 0, ms = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != ' ')
            return -1;
        i++;
        hh = s_digits(s, len, &i, 2);
        if (hh < 0 || hh > 23 || i >= len || s[i] != ':')
            return -1;
        i++;
        mi = s_digits(s, len, &i, 2);
        if (mi < 0 || mi > 59 || i >= len || s[i] != ':')
            return -1;
        i++;
        ss = s_digits(s, len, &i, 2);
        if (ss < 0 || ss > 59) /* no leap seconds: epoch time has none */
            return -1;
        if (i < len && s[i] == '.') {
            i++;
            size_t f0 = i;
            int scale = 100;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                ms += (s[i] - '0') * scale; /* digits past the third are truncated */
                scale /= 10;
                i++;
            }
            if (i == f0 || i - f0 > 9)
                return -1;
        }
        if (i < len && s[i] == 'Z')
            i++;
        if (i != len)
            return -1;
    }
    int64_t days = s_days_from_civil(year, mon, day);
    int64_t tod = ((int64_t)hh * 3600 + mi * 60 + ss) * 1000 + ms;
    if (days > S_MAX_DAYS || days < -S_MAX_DAYS - 1)
        return -2;
    if (days >= 0) {
        int64_t base = days * S_MS_PER_DAY;
        if (base > INT64_MAX - tod)
            return -2;
        *out = base + tod;
    } else {
        /* the day that holds INT64_MIN starts before it: add from the next
         * day's start backwards so nothing overflows on the way */
        int64_t base = (days + 1) * S_MS_PER_DAY;
        int64_t back = tod - S_MS_PER_DAY; /* in [-day, 0) */
        if (base < INT64_MIN - back)
            return -2;
        *out = base + back;
    }
    return 0;
}

int sl_value_from_text(sl_type_t t, const char *s, size_t len, sl_arena_t *arena, sl_value_t *out,
                       char *err, size_t cap)
{
    *out = sl_value_null();
    out->type = t;
    if (len == 0)
        return 0;
    switch (t) {
    case SL_TYPE_INT64: {
        int64_t v;
        int rc = s_parse_i64(s, len, &v);
        if (rc == -2)
            return s_fail(err, cap, s, len, "is out of range for an int64");
        if (rc < 0)
            return s_fail(err, cap, s, len, "is not an int64");
        *out = sl_value_int(v);
        return 0;
    }
    case SL_TYPE_DOUBLE: {
        char buf[512];
        bool digit = false;
        if (len >= sizeof buf)
            return s_fail(err, cap, s, len, "is not a double (too long)");
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (c >= '0' && c <= '9')
                digit = true;
            else if (c != '+' && c != '-' && c != '.' && c != 'e' && c != 'E')
                return s_fail(err, cap, s, len, "is not a double");
        }
        if (!digit)
            return s_fail(err, cap, s, len, "is not a double");
        memcpy(buf, s, len);
        buf[len] = '\0';
        char *end = NULL;
        errno = 0;
        double d = strtod(buf, &end);
        if (end != buf + len)
            return s_fail(err, cap, s, len, "is not a double");
        if (!isfinite(d))
            return s_fail(err, cap, s, len, "is out of range for a double");
        *out = sl_value_double(d); /* underflow to a subnormal or 0 is accepted */
        return 0;
    }
    case SL_TYPE_BOOL: {
        static const char *const yes[] = {"true", "1", "yes"};
        static const char *const no[] = {"false", "0", "no"};
        for (int k = 0; k < 3; k++) {
            if (strlen(yes[k]) == len && strncasecmp(s, yes[k], len) == 0) {
                *out = sl_value_bool(true);
                return 0;
            }
            if (strlen(no[k]) == len && strncasecmp(s, no[k], len) == 0) {
                *out = sl_value_bool(false);
                return 0;
            }
        }
        return s_fail(err, cap, s, len, "is not a bool");
    }
    case SL_TYPE_STRING: {
        if (len > UINT32_MAX)
            return s_fail(err, cap, s, len, "is too long for a string");
        if (!arena) {
            if (err && cap)
                snprintf(err, cap, "no arena for a string value");
            return SL_INVAL;
        }
        char *p = sl_arena_strndup(arena, s, len);
        if (!p) {
            if (err && cap)
                snprintf(err, cap, "out of memory");
            return SL_NOMEM;
        }
        *out = sl_value_str(p, (uint32_t)len);
        return 0;
    }
    case SL_TYPE_TIMESTAMP: {
        int64_t v;
        int rc = s_parse_i64(s, len, &v); /* epoch milliseconds */
        if (rc == -1)
            rc = s_parse_calendar(s, len, &v);
        if (rc == -2)
            return s_fail(err, cap, s, len, "is out of range for a timestamp");
        if (rc < 0)
            return s_fail(err, cap, s, len, "is not a timestamp");
        *out = sl_value_ts(v);
        return 0;
    }
    case SL_TYPE_NULL:
    default:
        break;
    }
    if (err && cap)
        snprintf(err, cap, "cannot read a value of type %d from text", (int)t);
    return SL_TYPE;
}

void sl_ts_format(long long ms, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    /* floor division so that negative instants land in the right day */
    int64_t days = ms / S_MS_PER_DAY;
    int64_t rem = ms % S_MS_PER_DAY;
    if (rem < 0) {
        rem += S_MS_PER_DAY;
        days--;
    }
    int64_t y;
    int mo, d;
    s_civil_from_days(days, &y, &mo, &d);
    int hh = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), ss = (int)(rem / 1000 % 60);
    int frac = (int)(rem % 1000);
    const char *sign = y < 0 ? "-" : y > 9999 ? "+" : "";
    long long ay = y < 0 ? -(long long)y : (long long)y;
    snprintf(buf, cap, "%s%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", sign, ay, mo, d, hh, mi, ss,
             frac);
}

/* Shortest of %.15g / %.16g / %.17g that strtod reads back bit for bit. */
static void s_format_double(double d, char *tmp, size_t cap)
{
    if (isnan(d)) {
        snprintf(tmp, cap, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(tmp, cap, "%s", d < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, cap, "%.*g", prec, d);
        double back = strtod(tmp, NULL);
        if (memcmp(&back, &d, sizeof d) == 0)
            return;
    }
}

size_t sl_value_to_text(const sl_value_t *v, char *buf, size_t cap)
{
    char tmp[64];
    const char *src = tmp;
    size_t n;
    if (v->is_null) {
        tmp[0] = '\0';
        n = 0;
    } else {
        switch (v->type) {
        case SL_TYPE_INT64:
            snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i);
            break;
        case SL_TYPE_DOUBLE:
            s_format_double(v->u.d, tmp, sizeof tmp);
            break;
        case SL_TYPE_BOOL:
            snprintf(tmp, sizeof tmp, "%s", v->u.b ? "true" : "false");
            break;
        case SL_TYPE_TIMESTAMP:
            sl_ts_format(v->u.i, tmp, sizeof tmp);
            break;
        case SL_TYPE_STRING:
            src = v->u.s;
            break;
        case SL_TYPE_NULL:
        default:
            tmp[0] = '\0';
            break;
        }
        n = v->type == SL_TYPE_STRING ? v->len : strlen(tmp);
    }
    if (buf && cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        if (k)
            memcpy(buf, src, k);
        buf[k] = '\0';
    }
    return n;
}

/* ---- text buffers ------------------------------------------------------- */

int sl_textbuf_put(sl_textbuf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return SL_NOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return SL_OK;
}

int sl_textbuf_value(sl_textbuf_t *b, const sl_value_t *v, bool json)
{
    char num[64];
    if (v->is_null || (json && v->type == SL_TYPE_DOUBLE && !isfinite(v->u.d)))
        return json ? sl_textbuf_put(b, "null", 4) : SL_OK; /* JSON has no inf or nan */
    if (v->type != SL_TYPE_STRING && v->type != SL_TYPE_TIMESTAMP) {
        size_t n = sl_value_to_text(v, num, sizeof num);
        return sl_textbuf_put(b, num, n < sizeof num ? n : sizeof num - 1);
    }
    const char *p = v->u.s;
    size_t n = v->len;
    if (v->type == SL_TYPE_TIMESTAMP) {
        n = sl_value_to_text(v, num, sizeof num);
        p = num;
    }
    bool quote = json;
    for (size_t i = 0; !quote && i < n; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\n' || p[i] == '\r';
    int rc = quote ? sl_textbuf_put(b, "\"", 1) : SL_OK;
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"')
            rc = sl_textbuf_put(b, json ? "\\\"" : "\"\"", 2);
        else if (json && ch == '\\')
            rc = sl_textbuf_put(b, "\\\\", 2);
        else if (json && ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            rc = sl_textbuf_put(b, esc, 6);
        } else
            rc = sl_textbuf_put(b, (const char *)&p[i], 1);
    }
    return rc == SL_OK && quote ? sl_textbuf_put(b, "\"", 1) : rc;
}

int sl_textbuf_row(sl_textbuf_t *b, const sl_schema_t *s, const sl_value_t *vals, bool json)
{
    int rc = json ? sl_textbuf_put(b, "{", 1) : SL_OK;
    for (int i = 0; rc == SL_OK && i < s->nfields; i++) {
        if (i)
            rc = sl_textbuf_put(b, ",", 1);
        if (json && rc == SL_OK) {
            rc = sl_textbuf_put(b, "\"", 1);
            if (rc == SL_OK)
                rc = sl_textbuf_put(b, s->fields[i].name, strlen(s->fields[i].name));
            if (rc == SL_OK)
                rc = sl_textbuf_put(b, "\":", 2);
        }
        if (rc == SL_OK)
            rc = sl_textbuf_value(b, &vals[i], json);
    }
    return json && rc == SL_OK ? sl_textbuf_put(b, "}", 1) : rc;
}
