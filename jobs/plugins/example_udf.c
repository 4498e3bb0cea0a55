/* example_udf.c — an example plugin of user functions in C.
 *
 * Build it like any shared object (CMake builds it as
 * libsluice_example_udf.so); it needs only sluice/udf.h:
 *
 *     cc -shared -fPIC -I core/include -o libexample.so example_udf.c
 *
 * and use it from a job (see jobs/udf-wordcount.yaml):
 *
 *     plugin: path/to/libexample.so
 *     operators:
 *       - { name: words, type: flat_map, input: lines, function: split_words }
 *
 * Functions:
 *   split_words  flat_map  line:string -> word:string, one per whitespace-separated word
 *   normalize    map       word:string -> word:string, ASCII lower case, leading and
 *                          trailing ASCII punctuation removed
 *   is_word      filter    word:string, keeps words with an ASCII letter or digit
 */
#include <string.h>

#include "sluice/udf.h"

static int s_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int s_is_punct(unsigned char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

static int s_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int split_words(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)out;
    if (in[0].is_null)
        return 0;
    const char *p = in[0].u.s, *end = p + in[0].len;
    while (p < end) {
        while (p < end && s_is_space((unsigned char)*p))
            p++;
        const char *q = p;
        while (q < end && !s_is_space((unsigned char)*q))
            q++;
        if (q > p) {
            sl_udf_value_t word = {.type = SL_UDF_STRING, .len = (uint32_t)(q - p), .u.s = p};
            int rc = ctx->host->emit(ctx, &word);
            if (rc < 0)
                return rc;
        }
        p = q;
    }
    return 0;
}

static int normalize(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    out[0] = in[0];
    if (in[0].is_null)
        return 0;
    const char *p = in[0].u.s, *end = p + in[0].len;
    while (p < end && s_is_punct((unsigned char)*p))
        p++;
    while (end > p && s_is_punct((unsigned char)end[-1]))
        end--;
    size_t n = (size_t)(end - p);
    char *s = ctx->host->alloc(ctx, n ? n : 1); /* lives until the batch is done */
    if (!s) {
        ctx->host->error(ctx, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        s[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[0].u.s = s;
    out[0].len = (uint32_t)n;
    return 0;
}

static int is_word(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out)
{
    (void)ctx;
    (void)out;
    for (uint32_t i = 0; !in[0].is_null && i < in[0].len; i++)
        if (s_is_alnum((unsigned char)in[0].u.s[i]))
            return 1;
    return 0;
}

static const sl_udf_field_t s_line[] = {{"line", SL_UDF_STRING}};
static const sl_udf_field_t s_word[] = {{"word", SL_UDF_STRING}};

static const sl_udf_function_t s_functions[] = {
    {.name = "split_words",
     .kind = SL_UDF_FLAT_MAP,
     .in = s_line,
     .nin = 1,
     .out = s_word,
     .nout = 1,
     .call = split_words},
    {.name = "normalize",
     .kind = SL_UDF_MAP,
     .in = s_word,
     .nin = 1,
     .out = s_word,
     .nout = 1,
     .call = normalize},
    {.name = "is_word", .kind = SL_UDF_FILTER, .in = s_word, .nin = 1, .call = is_word},
};

static const sl_udf_plugin_t s_plugin = {
    .abi_version = SL_UDF_ABI_VERSION,
    .name = "example",
    .version = "1.0",
    .nfunctions = (int)(sizeof s_functions / sizeof *s_functions),
    .functions = s_functions,
};

/* The one symbol Sluice looks up. */
const sl_udf_plugin_t *sluice_plugin(void);
const sl_udf_plugin_t *sluice_plugin(void)
{
    return &s_plugin;
}
