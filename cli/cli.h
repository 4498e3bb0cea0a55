/* cli.h — the `sluice` command line: shared option parsing and the client
 * side of the control protocol. Each subcommand lives in cmd_<name>.c. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/client.h"
#include "sluice/msg.h"
#include "sluice/plan.h"
#include "sluice/spec.h"

/* Options common to the job commands. */
typedef struct {
    const char *spec_path;
    sl_params_t *params;
    int parallelism; /* 0 = as in the spec */
    int workers;     /* run: embedded workers */
    int slots;       /* run: slots per worker (0 = enough for the job) */
    bool quiet;
    bool dot;                   /* plan: Graphviz */
    const char *master;         /* cluster commands: --master, SLUICE_MASTER */
    bool json;                  /* machine-readable output */
    bool detach;                /* submit: print the job id and return */
    const char *from_savepoint; /* submit: start from this savepoint */
    const char *dir;            /* savepoint, stop: where the savepoint goes */
    bool savepoint;             /* stop: take a savepoint first (required) */
    int timeout_ms;             /* how long to wait for the master's answers */
} sl_cli_opts_t;

/* Parses argv[1..] into o; npos is the number of positional arguments the
 * command takes (0 or 1: the spec file or the job id, in o->spec_path).
 * Prints a message and returns 2 on bad usage. */
int sl_cli_parse(int argc, char **argv, const char *usage, int npos, sl_cli_opts_t *o);
void sl_cli_opts_free(sl_cli_opts_t *o);

/* ---- follow.c ---------------------------------------------------------------- */

/* A job as the CLI reads it: the spec text, its plan, and the plugin it
 * names (loaded here to check it; its bytes are uploaded with a submit). */
typedef struct {
    char *text;
    size_t len;
    sl_spec_t *spec;
    sl_plan_t *plan;
    sl_plugin_t *plugin;
    uint8_t *plugin_bytes;
    size_t plugin_len;
} sl_cli_job_t;

/* Reads o->spec_path, loads the plugin it names (a path relative to the
 * working directory, like data paths), and plans it with o's params and
 * parallelism; on failure prints every error (file:line:col) and returns 1. */
int sl_cli_load(const sl_cli_opts_t *o, sl_cli_job_t *job);
void sl_cli_job_free(sl_cli_job_t *job);
/* Whole file up to SL_SPEC_MAX_BYTES, or NULL; caller frees. */
char *sl_cli_read_spec(const char *path, size_t *len);
/* Submits the job and follows it to its end; returns the exit status
 * (0 finished, 1 failed or canceled). Ctrl-C cancels the job. */
int sl_cli_submit_follow(sl_client_t *cl, const sl_cli_opts_t *o, const sl_cli_job_t *job);
/* Ctrl-C sets sl_cli_interrupted instead of killing the process. */
void sl_cli_catch_sigint(void);
const char *sl_cli_state_name(Sluice__JobStateKind s);
void sl_cli_human(double v, char *buf, size_t cap);

int sl_cmd_validate(int argc, char **argv);
int sl_cmd_plan(int argc, char **argv);
int sl_cmd_run(int argc, char **argv);
int sl_cmd_submit(int argc, char **argv);
int sl_cmd_list(int argc, char **argv);
int sl_cmd_status(int argc, char **argv);
int sl_cmd_cancel(int argc, char **argv);
int sl_cmd_workers(int argc, char **argv);
int sl_cmd_savepoint(int argc, char **argv);
int sl_cmd_stop(int argc, char **argv);
int sl_cmd_checkpoints(int argc, char **argv);

#endif
