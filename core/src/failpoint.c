/* failpoint.c — crash points for crash-consistency tests (see
 * sluice/failpoint.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/failpoint.h"

#ifdef SLUICE_FAILPOINTS
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int s_hits;

/* The hit number when name is armed and this is a hit SLUICE_FAILPOINT
 * asks for, else 0: NAME fires at the first hit, NAME:N at the N-th,
 * NAME:N,M,... at each listed one (hits of every armed name in the process
 * count together). */
static int s_fires(const char *name)
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
        return 0;
    int hit = atomic_fetch_add(&s_hits, 1) + 1;
    if (spec[n] != ':')
        return hit == 1 ? hit : 0;
    for (const char *p = spec + n + 1; *p; p++) {
        char *end;
        long want = strtol(p, &end, 10);
        if (end == p)
            return 0;
        if (want == hit)
            return hit;
        p = end;
        if (*p != ',')
            return 0;
    }
    return 0;
}

void sl_failpoint(const char *name)
{
    int hit = s_fires(name);
    if (!hit)
        return;
    fprintf(stderr, "sluice: failpoint %s reached (hit %d): killing this process\n", name, hit);
    fflush(stderr);
    kill(getpid(), SIGKILL);
}

bool sl_failpoint_error(const char *name)
{
    int hit = s_fires(name);
    if (!hit)
        return false;
    fprintf(stderr, "sluice: failpoint %s reached (hit %d): failing\n", name, hit);
    return true;
}
#endif
