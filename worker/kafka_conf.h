/* kafka_conf.h — the librdkafka clients of the Kafka source and sink (the
 * source's consumer and dead-letter producer, the sink's producer and
 * marker reader): the connector's own settings, then the user's
 * `properties:` (which the spec parser already refused when they would
 * override one of them), then the connector's callbacks. */
#ifndef SLUICE_KAFKA_CONF_H
#define SLUICE_KAFKA_CONF_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "operator.h"

/* The callbacks of one client (NULL: none); their opaque is c->state. */
typedef struct {
    void (*error_cb)(rd_kafka_t *rk, int err, const char *reason, void *opaque);
    void (*dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
    void (*offset_commit_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque);
} sl_kafka_cbs_t;

/* A new client of type (RD_KAFKA_CONSUMER / RD_KAFKA_PRODUCER) for the
 * Kafka source or sink c: fixed[0..nfixed) (name, value; a NULL value is
 * left unset), then the user's properties of c's node, then the callbacks
 * of cbs (NULL: none) with c->state as their opaque; librdkafka's log
 * lines silenced. Returns it (the caller's, for rd_kafka_destroy), or NULL
 * with c->err set ("<source|sink> '<name>': ...", or "... cannot create
 * <what>: <librdkafka's reason>" when librdkafka refuses the client) and
 * *rc the error. */
rd_kafka_t *sl_kafka_client_new(sl_opctx_t *c, rd_kafka_type_t type, const char *what,
                                const char *(*fixed)[2], size_t nfixed, const sl_kafka_cbs_t *cbs,
                                int *rc);

#endif
