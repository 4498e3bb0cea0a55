/* cmd_validate.c — `sluice validate` and `sluice plan`: load, check and
 * plan a spec without running it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "cli.h"
#include "sluice/err.h"
#include "sluice/plan.h"

static const char s_validate_usage[] =
    "usage: sluice validate JOB.yaml [--param NAME=VALUE]... [--parallelism N]\n";
static const char s_plan_usage[] =
    "usage: sluice plan JOB.yaml [--param NAME=VALUE]... [--parallelism N] [--dot]\n";

static int s_load(int argc, char **argv, const char *usage, bool print_plan)
{
    sl_cli_opts_t o;
    int rc = sl_cli_parse(argc, argv, usage, 1, &o);
    if (rc) {
        sl_cli_opts_free(&o);
        return rc;
    }
    sl_cli_job_t job;
    int status = 0;
    if (sl_cli_load(&o, &job)) {
        status = 1;
    } else if (print_plan) {
        if (o.dot)
            sl_plan_print_dot(job.plan, stdout);
        else
            sl_plan_print(job.plan, stdout);
    } else {
        printf("%s: ok (job '%s', %d operators in %d tasks, %d slots)\n", o.spec_path,
               job.plan->name, job.plan->nnodes, job.plan->nchains, sl_plan_slots(job.plan));
    }
    sl_cli_job_free(&job);
    sl_cli_opts_free(&o);
    return status;
}

int sl_cmd_validate(int argc, char **argv)
{
    return s_load(argc, argv, s_validate_usage, false);
}

int sl_cmd_plan(int argc, char **argv)
{
    return s_load(argc, argv, s_plan_usage, true);
}
