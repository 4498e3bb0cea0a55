/* kafka_conf.h — the librdkafka configuration of the Kafka source and sink:
 * the connector's own settings, then the user's `properties:` (which the
 * spec parser already refused when they would override one of them). */
#ifndef SLUICE_KAFKA_CONF_H
#define SLUICE_KAFKA_CONF_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "operator.h"

/* A new configuration with fixed[0..nfixed) (name, value; a NULL value is
 * left unset) and then nprops user properties, librdkafka's log lines
 * silenced. Returns it, or NULL with
 * c->err set ("<role> '<name>': ...") and *rc the error. */
rd_kafka_conf_t *sl_kafka_conf_new(sl_opctx_t *c, const char *role, const char *(*fixed)[2],
                                   size_t nfixed, char *const *names, char *const *values,
                                   int nprops, int *rc);

#endif
