/* failpoint.h — crash points for crash-consistency tests.
 *
 * A process started with SLUICE_FAILPOINT=NAME[:N] in its environment kills
 * itself with SIGKILL the N-th time (default: the first) it reaches
 * sl_failpoint("NAME"): a crash at exactly that step of a protocol, with no
 * cleanup, as a power cut or kill -9 would leave it. Without the variable a
 * failpoint costs one load of a cached pointer. Release builds compile them
 * out (SLUICE_FAILPOINTS is defined by CMake in every other build type).
 * NAME:N,M,... fires at each listed hit.
 *
 * sl_failpoint_error("NAME") does not kill: it returns true at the hits
 * SLUICE_FAILPOINT names (else false), and the caller fails the way a real
 * error there would (a task that fails while its worker lives on).
 * The names are listed in docs/fault-tolerance.md. */
#ifndef SLUICE_FAILPOINT_H
#define SLUICE_FAILPOINT_H

#include <stdbool.h>

#ifdef SLUICE_FAILPOINTS
void sl_failpoint(const char *name);
bool sl_failpoint_error(const char *name);
#else
static inline void sl_failpoint(const char *name)
{
    (void)name;
}
static inline bool sl_failpoint_error(const char *name)
{
    (void)name;
    return false;
}
#endif

#endif
