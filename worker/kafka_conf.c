/* kafka_conf.c — see kafka_conf.h. */
#include "kafka_conf.h"

#include "sluice/err.h"

/* librdkafka's own log lines would flood stderr while a broker is down; the
 * errors that matter reach the connectors through their error callbacks,
 * polls and delivery reports. */
static void s_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/* A new configuration with fixed[0..nfixed) and then nprops user
 * properties, or NULL with c->err set and *rc the error. */
static rd_kafka_conf_t *s_conf_new(sl_opctx_t *c, const char *role, const char *(*fixed)[2],
                                   size_t nfixed, char *const *names, char *const *values,
                                   int nprops, int *rc)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        *rc = sl_op_fail(c, SL_NOMEM, "%s '%s': out of memory", role, c->node->name);
        return NULL;
    }
    for (size_t i = 0; i < nfixed; i++)
        if (fixed[i][1] && rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr,
                                             sizeof errstr) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            *rc = sl_op_fail(c, SL_INVAL, "%s '%s': %s", role, c->node->name, errstr);
            return NULL;
        }
    for (int i = 0; i < nprops; i++)
        if (rd_kafka_conf_set(conf, names[i], values[i], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            *rc = sl_op_fail(c, SL_INVAL, "%s '%s': property '%s': %s", role, c->node->name,
                             names[i], errstr);
            return NULL;
        }
    rd_kafka_conf_set_log_cb(conf, s_on_log);
    return conf;
}

rd_kafka_t *sl_kafka_client_new(sl_opctx_t *c, rd_kafka_type_t type, const char *what,
                                const char *(*fixed)[2], size_t nfixed, const sl_kafka_cbs_t *cbs,
                                int *rc)
{
    const sl_kafka_cfg_t *src = c->node->kafka;
    const sl_kafka_sink_cfg_t *snk = c->node->ksink;
    const char *role = src ? "source" : "sink";
    rd_kafka_conf_t *conf =
        s_conf_new(c, role, fixed, nfixed, src ? src->prop_names : snk->prop_names,
                   src ? src->prop_values : snk->prop_values, src ? src->nprops : snk->nprops, rc);
    if (!conf)
        return NULL;
    if (cbs && cbs->error_cb)
        rd_kafka_conf_set_error_cb(conf, cbs->error_cb);
    if (cbs && cbs->dr_msg_cb)
        rd_kafka_conf_set_dr_msg_cb(conf, cbs->dr_msg_cb);
    if (cbs && cbs->offset_commit_cb)
        rd_kafka_conf_set_offset_commit_cb(conf, cbs->offset_commit_cb);
    rd_kafka_conf_set_opaque(conf, c->state);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) { /* librdkafka takes conf only on success */
        rd_kafka_conf_destroy(conf);
        *rc = sl_op_fail(c, SL_INVAL, "%s '%s': cannot create %s: %s", role, c->node->name, what,
                         errstr);
    }
    return rk;
}
