/* err.c — strings for the error table in sluice/err.h. */
#include "sluice/err.h"

const char *sl_strerror(int err)
{
    switch (err) {
#define SL__ERR_STR(name, code, text)                                                              \
    case code:                                                                                     \
        return text;
        SL_ERR_MAP(SL__ERR_STR)
#undef SL__ERR_STR
    }
    return "unknown error";
}

const char *sl_errname(int err)
{
    switch (err) {
#define SL__ERR_NAME(name, code, text)                                                             \
    case code:                                                                                     \
        return "SL_" #name;
        SL_ERR_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
    }
    return "SL_UNKNOWN";
}
