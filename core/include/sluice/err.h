/* err.h — the one error vocabulary of Sluice.
 *
 * Every fallible function returns 0 on success or a negative sl_err_t.
 * The X-macro table below produces the enum, sl_strerror() and sl_errname(),
 * so adding an error is one line here. */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#define SL_ERR_MAP(X)                                                                              \
    X(OK, 0, "ok")                                                                                 \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(IO, -3, "input/output error")                                                                \
    X(PARSE, -4, "parse error")                                                                    \
    X(TYPE, -5, "type error")                                                                      \
    X(NOTFOUND, -6, "not found")                                                                   \
    X(EXISTS, -7, "already exists")                                                                \
    X(LIMIT, -8, "limit exceeded")                                                                 \
    X(PROTO, -9, "malformed protocol message")                                                     \
    X(VERSION, -10, "protocol version mismatch")                                                   \
    X(TIMEOUT, -11, "timed out")                                                                   \
    X(ZMQ, -12, "messaging error")                                                                 \
    X(SPEC, -13, "invalid job spec")                                                               \
    X(RANGE, -14, "value out of range")                                                            \
    X(DATA, -15, "malformed input record")                                                         \
    X(CANCELED, -16, "canceled")                                                                   \
    X(STATE, -17, "invalid state")                                                                 \
    X(NOSLOTS, -18, "not enough free slots")                                                       \
    X(EVAL, -19, "expression evaluation error")

typedef enum {
#define SL__ERR_ENUM(name, code, text) SL_##name = (code),
    SL_ERR_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
} sl_err_t;

/* Human-readable text for an error code; never NULL, static storage. */
const char *sl_strerror(int err);
/* Symbolic name ("SL_PARSE") for an error code; never NULL, static storage. */
const char *sl_errname(int err);

#endif
