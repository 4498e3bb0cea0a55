/* failpoint.c — crash points for crash-consistency tests (see
 * sluice/failpoint.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/failpoint.h"

#ifdef SLUICE_FAILPOINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int s_hits;

void sl_failpoint(const char *name)
{
    static const char *spec; /* SLUICE_FAILPOINT, read once ("" when unset) */
    static atomic_int ready;
    if (!atomic_load(&ready)) {
        const char *e = getenv("SLUICE_FAILPOINT");
        spec = e ? e : "";
        atomic_store(&ready, 1);
    }
    size_t n = strlen(name);
    if (!spec[0] || strncmp(spec, name, n) != 0 || (spec[n] != '\0' && spec[n] != ':'))
        return;
    int want = spec[n] == ':' ? atoi(spec + n + 1) : 1;
    if (atomic_fetch_add(&s_hits, 1) + 1 != want)
        return;
    fprintf(stderr, "sluice: failpoint %s reached (hit %d): killing this process\n", name, want);
    fflush(stderr);
    kill(getpid(), SIGKILL);
}
#endif
