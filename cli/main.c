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
    "options of run / validate / plan:\n"
    "  --param NAME=VALUE   fill ${NAME} in the spec (repeatable)\n"
    "  --parallelism N      default parallelism of the job's operators\n"
    "  --workers W          run: number of embedded workers (default 2)\n"
    "  --slots S            run: slots per worker (default: enough for the job)\n"
    "  --quiet              run: no progress line\n"
    "  --dot                plan: Graphviz output\n";

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
    fprintf(stderr, "sluice: unknown command '%s'\n\n%s", argv[1], s_usage);
    return 2;
}
