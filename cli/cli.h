/* cli.h — the `sluice` command line: shared option parsing and the client
 * side of the control protocol. Each subcommand lives in cmd_<name>.c. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H
#include <stdbool.h>
#include <stdint.h>

#include "sluice/client.h"
#include "sluice/msg.h"
#include "sluice/spec.h"

/* Options common to the job commands. */
typedef struct {
    const char *spec_path;
    sl_params_t *params;
    int parallelism; /* 0 = as in the spec */
    int workers;     /* run: embedded workers */
    int slots;       /* run: slots per worker (0 = enough for the job) */
    bool quiet;
    bool dot; /* plan: Graphviz */
} sl_cli_opts_t;

/* Parses argv[1..] into o (the spec path and the options above); prints a
 * message and returns 2 on bad usage. */
int sl_cli_parse(int argc, char **argv, const char *usage, sl_cli_opts_t *o);
void sl_cli_opts_free(sl_cli_opts_t *o);

int sl_cmd_validate(int argc, char **argv);
int sl_cmd_plan(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);

#endif
