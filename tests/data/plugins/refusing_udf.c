/* refusing_udf.c — a plugin whose map function `refuse` fails on every
 * record with a message naming it, so that a test can make an operator
 * fail wherever its input comes from (tests/scenario/045_chain_errors.sh). */
#include <stdio.h>

#include "sluice/udf.h"

static int refuse(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)out;
    char why[96];
    snprintf(why, sizeof why, "refused a count of %lld",
             in[0].is_null ? -1LL : (long long)in[0].u.i);
    ctx->host->error(ctx, why);
    return -1;
}

static const sl_udf_field_t s_n[] = {{"n", SL_UDF_INT64}};

static const sl_udf_function_t s_functions[] = {
    {.name = "refuse",
     .kind = SL_UDF_MAP,
     .in = s_n,
     .nin = 1,
     .out = s_n,
     .nout = 1,
     .call = refuse},
};

static const sl_udf_plugin_t s_plugin = {
    .abi_version = SL_UDF_ABI_VERSION,
    .name = "refusing",
    .version = "1.0",
    .nfunctions = 1,
    .functions = s_functions,
};

const sl_udf_plugin_t *sluice_plugin(void);
const sl_udf_plugin_t *sluice_plugin(void)
{
    return &s_plugin;
}
