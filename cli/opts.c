/* opts.c — option parsing shared by the job commands. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sluice/err.h"

static int s_int_arg(const char *opt, const char *v, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || n < min || n > max) {
        fprintf(stderr, "sluice: %s needs a number in %d..%d, got '%s'\n", opt, min, max,
                v ? v : "");
        return -1;
    }
    *out = (int)n;
    return 0;
}

int sl_cli_parse(int argc, char **argv, const char *usage, int npos, sl_cli_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 2;
    o->timeout_ms = 5000;
    o->master = getenv("SLUICE_MASTER") && *getenv("SLUICE_MASTER") ? getenv("SLUICE_MASTER")
                                                                    : "tcp://127.0.0.1:6123";
    o->params = sl_params_new();
    if (!o->params)
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--param") == 0 || strcmp(a, "-p") == 0) {
            if (!v || sl_params_add_kv(o->params, v) != SL_OK) {
                fprintf(stderr, "sluice: --param needs NAME=VALUE, got '%s'\n", v ? v : "");
                return 2;
            }
            i++;
        } else if (strncmp(a, "--param=", 8) == 0) {
            if (sl_params_add_kv(o->params, a + 8) != SL_OK) {
                fprintf(stderr, "sluice: --param needs NAME=VALUE, got '%s'\n", a + 8);
                return 2;
            }
        } else if (strcmp(a, "--parallelism") == 0 || strcmp(a, "-P") == 0) {
            if (s_int_arg(a, v, 1, SL_MAX_PARALLELISM, &o->parallelism))
                return 2;
            i++;
        } else if (strcmp(a, "--workers") == 0 || strcmp(a, "-w") == 0) {
            if (s_int_arg(a, v, 1, 256, &o->workers))
                return 2;
            i++;
        } else if (strcmp(a, "--slots") == 0) {
            if (s_int_arg(a, v, 1, 1024, &o->slots))
                return 2;
            i++;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = true;
        } else if (strcmp(a, "--dot") == 0) {
            o->dot = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--detach") == 0 || strcmp(a, "-d") == 0) {
            o->detach = true;
        } else if (strcmp(a, "--savepoint") == 0) {
            o->savepoint = true;
        } else if (strcmp(a, "--from-savepoint") == 0 || strcmp(a, "--dir") == 0) {
            if (!v || !*v) {
                fprintf(stderr, "sluice: %s needs a directory\n", a);
                return 2;
            }
            if (a[2] == 'f')
                o->from_savepoint = v;
            else
                o->dir = v;
            i++;
        } else if (strcmp(a, "--master") == 0 || strcmp(a, "-m") == 0) {
            if (!v) {
                fprintf(stderr, "sluice: --master needs an endpoint (tcp://HOST:PORT)\n");
                return 2;
            }
            o->master = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            if (s_int_arg(a, v, 100, 600000, &o->timeout_ms))
                return 2;
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sluice: unknown option '%s'\n%s", a, usage);
            return 2;
        } else if (!o->spec_path && npos > 0) {
            o->spec_path = a;
        } else {
            fprintf(stderr, "sluice: unexpected argument '%s'\n%s", a, usage);
            return 2;
        }
    }
    if (!o->spec_path && npos > 0) {
        fprintf(stderr, "sluice: missing argument\n%s", usage);
        return 2;
    }
    return 0;
}

void sl_cli_opts_free(sl_cli_opts_t *o)
{
    sl_params_destroy(&o->params);
}
