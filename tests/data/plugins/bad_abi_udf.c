/* bad_abi_udf.c — a plugin built for another UDF ABI version: Sluice must
 * refuse it at submission with a message naming both versions. */
#include "sluice/udf.h"

static int s_keep(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)ctx;
    (void)in;
    (void)out;
    return 1;
}

static const sl_udf_field_t s_line[] = {{"line", SL_UDF_STRING}};
static const sl_udf_function_t s_functions[] = {
    {.name = "keep", .kind = SL_UDF_FILTER, .in = s_line, .nin = 1, .call = s_keep}};
static const sl_udf_plugin_t s_plugin = {.abi_version = 999,
                                         .name = "future",
                                         .version = "9",
                                         .nfunctions = 1,
                                         .functions = s_functions};

const sl_udf_plugin_t *sluice_plugin(void);
const sl_udf_plugin_t *sluice_plugin(void)
{
    return &s_plugin;
}
