/* main.c — `sluice`: dispatches to the subcommands. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char s_usage[] =
    "usage: sluice <command> [options]\n"
    "\n"
    "commands:\n"
    "  run JOB.yaml       run a job on an embedded mini-cluster (master + workers in\n"
    "                     this process) and print a per-operator summary\n"
    "  validate JOB.yaml  check a job spec; print every error as file:line:col\n"
    "  plan JOB.yaml      print the chained execution plan (--dot for Graphviz)\n"
    "\n"
    "  submit JOB.yaml    submit to a running sluice-master and follow the job\n"
    "                     (--detach: print the job id and return)\n"
    "  list               jobs of the master\n"
    "  status JOB         a job's state, tasks and per-operator metrics\n"
    "  cancel JOB         cancel a job\n"
    "  workers            the master's workers, their slots and heartbeats\n"
    "  checkpoints JOB    a job's retained checkpoints and savepoints\n"
    "  savepoint JOB      take a savepoint (--dir DIR); prints its directory\n"
    "  stop JOB --savepoint  take a savepoint, then end the job; resume with\n"
    "                     submit JOB.yaml --from-savepoint DIR [--parallelism N]\n"
    "\n"
    "options of run / validate / plan:\n"
    "  --param NAME=VALUE   fill ${NAME} in the spec (repeatable)\n"
    "  --parallelism N      default parallelism of the job's operators\n"
    "  --workers W          run: number of embedded workers (default 2)\n"
    "  --slots S            run: slots per worker (default: enough for the job)\n"
    "  --quiet              run: no progress line\n"
    "  --dot                plan: Graphviz output\n"
    "\n"
    "options of the cluster commands (submit, list, status, cancel, workers,\n"
    "checkpoints, savepoint, stop):\n"
    "  --master tcp://HOST:PORT   the master (SLUICE_MASTER; default tcp://127.0.0.1:6123)\n"
    "  --json                     machine-readable output (list, status, workers, checkpoints)\n"
    "  --timeout MS               how long to wait for the master (default 5000)\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(s_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "run") == 0)
        return sl_cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "validate") == 0)
        return sl_cmd_validate(argc - 1, argv + 1);
    if (strcmp(argv[1], "plan") == 0)
        return sl_cmd_plan(argc - 1, argv + 1);
    if (strcmp(argv[1], "submit") == 0)
        return sl_cmd_submit(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return sl_cmd_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return sl_cmd_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "cancel") == 0)
        return sl_cmd_cancel(argc - 1, argv + 1);
    if (strcmp(argv[1], "workers") == 0)
        return sl_cmd_workers(argc - 1, argv + 1);
    if (strcmp(argv[1], "savepoint") == 0)
        return sl_cmd_savepoint(argc - 1, argv + 1);
    if (strcmp(argv[1], "stop") == 0)
        return sl_cmd_stop(argc - 1, argv + 1);
    if (strcmp(argv[1], "checkpoints") == 0)
        return sl_cmd_checkpoints(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s'\n\n%s", argv[1], s_usage);
    return 2;
}
