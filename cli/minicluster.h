/* minicluster.h — the embedded mini-cluster: a master and W workers as
 * threads of this process, over inproc://, with a client connected. Used by
 * `sluice run` and by the runtime tests; the components are the real ones. */
#ifndef SLUICE_MINICLUSTER_H
#define SLUICE_MINICLUSTER_H
#include <stddef.h>

#include "sluice/client.h"

typedef struct sl_minicluster sl_minicluster_t;

/* Starts the master and `workers` workers with `slots` slots each. NULL
 * with a message in err on failure. */
sl_minicluster_t *sl_minicluster_start(int workers, int slots, char *err, size_t cap);
/* The client connected to the master (borrowed). */
sl_client_t *sl_minicluster_client(sl_minicluster_t *mc);
/* Shuts the cluster down (master, then workers, then the context), waits
 * for every thread and frees everything; *pp becomes NULL. */
void sl_minicluster_stop(sl_minicluster_t **pp);

#endif
