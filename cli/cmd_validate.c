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
    sl_diag_t *d = sl_diag_new(o.spec_path);
    sl_spec_t *spec = NULL;
    sl_plan_t *plan = NULL;
    rc =
        d ? sl_plan_load(o.spec_path, NULL, 0, o.params, o.parallelism, d, &spec, &plan) : SL_NOMEM;
    int status = 0;
    if (rc != SL_OK) {
        if (d)
            sl_diag_print(d, stderr);
        int n = d ? sl_diag_count(d) : 0;
        fprintf(stderr, "%s: %d error%s\n", o.spec_path, n ? n : 1, n == 1 ? "" : "s");
        status = 1;
    } else if (print_plan) {
        if (o.dot)
            sl_plan_print_dot(plan, stdout);
        else
            sl_plan_print(plan, stdout);
    } else {
        printf("%s: ok (job '%s', %d operators in %d tasks, %d slots)\n", o.spec_path, plan->name,
               plan->nnodes, plan->nchains, sl_plan_slots(plan));
    }
    sl_plan_destroy(&plan);
    sl_spec_destroy(&spec);
    sl_diag_destroy(&d);
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
