/* cmd_run.c — `sluice run`: the embedded mini-cluster.
 *
 * Starts a master and W workers as threads of this process, talking over
 * inproc:// with the real control protocol (nothing is special-cased for
 * the embedded mode), submits the job as a client would, follows it with a
 * progress line, prints a per-operator summary and shuts the cluster down.
 * The exit status says how the job ended: 0 finished, 1 failed or
 * canceled, 2 bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "minicluster.h"
#include "sluice/err.h"
#include "sluice/plan.h"

static const char s_usage[] =
    "usage: sluice run JOB.yaml [--param NAME=VALUE]... [--parallelism N] [--workers W]\n"
    "                  [--slots S] [--quiet]\n";

int sl_cmd_run(int argc, char **argv)
{
    sl_cli_opts_t o;
    int rc = sl_cli_parse(argc, argv, s_usage, 1, &o);
    if (rc) {
        sl_cli_opts_free(&o);
        return rc;
    }
    sl_cli_job_t job;
    if (sl_cli_load(&o, &job)) {
        sl_cli_opts_free(&o);
        return 1;
    }
    int need = sl_plan_slots(job.plan);
    int slots = o.slots ? o.slots : (need + o.workers - 1) / o.workers;
    if (slots < 1)
        slots = 1;

    char err[512];
    int status = 1;
    sl_minicluster_t *mc = sl_minicluster_start(o.workers, slots, err, sizeof err);
    if (!mc) {
        fprintf(stderr, "sluice: cannot start the embedded cluster: %s\n", err);
    } else {
        sl_cli_catch_sigint();
        status = sl_cli_submit_follow(sl_minicluster_client(mc), &o, &job);
        sl_minicluster_stop(&mc);
    }
    sl_cli_job_free(&job);
    sl_cli_opts_free(&o);
    return status;
}
