/* utf8.h — UTF-8 validation, shared by everything that must refuse or
 * clean invalid text (the protocol module, the daemons' configuration). */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H
#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence at p (n >= 1 bytes available),
 * or 0 if p does not start one: a bad lead byte, a truncated or overlong
 * sequence, a surrogate, or a code point beyond U+10FFFF. NUL is a valid
 * one-byte character here; callers that cannot carry it check for it. */
size_t sl_utf8_seq(const void *p, size_t n);
/* True when all n bytes at p are valid UTF-8. */
bool sl_utf8_valid(const void *p, size_t n);

#endif
