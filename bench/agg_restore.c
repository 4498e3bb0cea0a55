/* agg_restore.c — time of the heap aggregate's restore from its snapshot,
 * in-process (the operator driven through its vtable as the task drives
 * it): the `totals` aggregate of bench/checkpoint.sh (int64 key, count and
 * sum) is fed keys 0..KEYS-1 that subtask 0 of PAR owns (k = v = seq, as
 * the benchmark's generator makes them), snapshotted, then restored RUNS
 * times into a fresh instance of subtask 0 of PAR; prints the median and
 * min of the restore's wall and CPU time (the process's: helper threads
 * included).
 *
 *   agg_restore [KEYS] [RUNS] [PAR] [FILE]     (9000000, 5, 2)
 *
 * AGG_RESTORE_SERIAL=1 in the environment: the serial restore (no second
 * thread) for comparison.
 *
 * With FILE, the snapshot is written there, or read from there when it
 * exists (KEYS then ignored): a profile of a second run is the restore's
 * alone.
 *
 * With PAR 2 subtask 0 keeps about half of KEYS, as a task of the
 * benchmark's job at parallelism 2 does. For profiling the restore:
 * `perf record -g agg_restore ...` (the feeding is in the profile too; it
 * is the `s_process` part). */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_clock.h"
#include "operator.h"
#include "sluice/diag.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "sluice/row.h"
#include "sluice/snap.h"

static const char *s_spec = "name: agg-restore\n"
                            "sources:\n"
                            "  - name: src\n"
                            "    type: file\n"
                            "    format: csv\n"
                            "    path: in.csv\n"
                            "    schema: {k: int64, v: int64}\n"
                            "operators:\n"
                            "  - name: totals\n"
                            "    type: aggregate\n"
                            "    input: src\n"
                            "    key: [k]\n"
                            "    aggregates: [{name: n, fn: count}, {name: s, fn: sum, field: v}]\n"
                            "sinks:\n"
                            "  - { name: out, type: discard, input: totals }\n";

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int s_discard(void *target, sl_batch_t *b)
{
    (void)target;
    (void)b;
    return SL_OK;
}

typedef struct {
    const sl_op_vtable_t *vt;
    sl_opctx_t ctx;
    atomic_bool cancel;
} s_inst_t;

static int s_open(s_inst_t *in, const sl_plan_t *plan, int node, int par)
{
    memset(in, 0, sizeof *in);
    atomic_init(&in->cancel, false);
    const sl_plan_node_t *nd = &plan->nodes[node];
    in->vt = sl_op_vtable(nd);
    sl_opctx_t *c = &in->ctx;
    c->plan = plan;
    c->node = nd;
    c->subtask = 0;
    c->parallelism = par;
    c->in = sl_plan_input_schema(plan, nd, 0);
    c->watermark = SL_WM_MIN;
    c->out.batch = sl_batch_new(1 << 16);
    c->out.schema = nd->out;
    c->out.flush = s_discard;
    c->arena = sl_arena_new(0);
    c->cancel = &in->cancel;
    return in->vt->open(c);
}

static void s_close(s_inst_t *in)
{
    in->vt->close(&in->ctx);
    sl_batch_destroy(&in->ctx.out.batch);
    sl_arena_destroy(&in->ctx.arena);
}

int main(int argc, char **argv)
{
    long keys = argc > 1 ? atol(argv[1]) : 9000000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    int par = argc > 3 ? atoi(argv[3]) : 2;
    const char *file = argc > 4 ? argv[4] : NULL;
    if (getenv("AGG_RESTORE_SERIAL") && atoi(getenv("AGG_RESTORE_SERIAL")))
        sl__agg_restore_par_min = SIZE_MAX;
    if (keys <= 0 || runs <= 0 || runs > 100 || par <= 0) {
        fprintf(stderr, "usage: agg_restore [KEYS] [RUNS] [PAR]\n");
        return 2;
    }
    sl_diag_t *d = sl_diag_new("agg-restore.yaml");
    sl_spec_t *spec = NULL;
    sl_plan_t *plan = NULL;
    if (sl_plan_load("agg-restore.yaml", s_spec, strlen(s_spec), NULL, 1, d, &spec, &plan)) {
        sl_diag_print(d, stderr);
        return 1;
    }
    int node = sl_spec_find(spec, "totals");
    s_inst_t a;
    if (s_open(&a, plan, node, par)) {
        fprintf(stderr, "agg_restore: open: %s\n", a.ctx.err);
        return 1;
    }
    sl_snap_w_t w;
    sl_snap_w_init(&w);
    FILE *f = file ? fopen(file, "rb") : NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (len <= 0 || !sl_snap_reserve(&w, (size_t)len) ||
            fread(w.data, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "agg_restore: cannot read %s\n", file);
            return 1;
        }
        w.len = (size_t)len;
        fclose(f);
        s_close(&a);
        keys = 0;
    }
    /* feed the keys subtask 0 owns */
    int maxp = plan->max_parallelism;
    sl_batch_t *b = sl_batch_new(1 << 16);
    size_t owned = 0;
    double t0 = bench_now();
    for (long i = 0; !w.len && i <= keys; i++) {
        sl_value_t v[2] = {sl_value_int(i), sl_value_int(i)};
        bool mine =
            i < keys && sl_key_group_owner(sl_key_group(sl_value_hash(v, 1), maxp), maxp, par) == 0;
        int rc = mine ? sl_batch_append(b, a.ctx.in, v) : SL_OK;
        if (rc == SL_LIMIT || (i == keys && b->count)) {
            if (a.vt->process(&a.ctx, b, 0)) {
                fprintf(stderr, "agg_restore: process: %s\n", a.ctx.err);
                return 1;
            }
            sl_batch_clear(b);
            sl_arena_reset(a.ctx.arena);
            if (i < keys)
                rc = sl_batch_append(b, a.ctx.in, v);
        }
        if (rc) {
            fprintf(stderr, "agg_restore: append: %s\n", sl_strerror(rc));
            return 1;
        }
        owned += mine;
    }
    if (keys && (a.vt->snapshot(&a.ctx, &w) || w.err)) {
        fprintf(stderr, "agg_restore: snapshot: %s\n", a.ctx.err);
        return 1;
    }
    if (keys)
        s_close(&a);
    if (keys && file &&
        (!(f = fopen(file, "wb")) || fwrite(w.data, 1, w.len, f) != w.len || fclose(f) != 0)) {
        fprintf(stderr, "agg_restore: cannot write %s\n", file);
        return 1;
    }
    fprintf(stderr, "agg_restore: %zu keys of %ld fed in %.2f s, snapshot %zu bytes\n", owned, keys,
            bench_now() - t0, w.len);
    double wall[100], cpu[100];
    for (int r = 0; r < runs; r++) {
        s_inst_t x;
        if (s_open(&x, plan, node, par))
            return 1;
        sl_snap_r_t rd;
        sl_snap_r_init(&rd, w.data, w.len);
        double w0 = bench_now(), c0 = bench_cpu();
        int rc = x.vt->restore(&x.ctx, &rd);
        wall[r] = bench_now() - w0;
        cpu[r] = bench_cpu() - c0;
        if (rc || rd.err || rd.left) {
            fprintf(stderr, "agg_restore: restore: %d %s\n", rc, x.ctx.err);
            return 1;
        }
        s_close(&x);
        fprintf(stderr, "agg_restore: run %d: %.0f ms wall, %.0f ms CPU\n", r + 1, wall[r] * 1e3,
                cpu[r] * 1e3);
    }
    qsort(wall, (size_t)runs, sizeof *wall, s_cmp);
    qsort(cpu, (size_t)runs, sizeof *cpu, s_cmp);
    char what[64];
    if (owned)
        snprintf(what, sizeof what, "%zu keys", owned);
    else
        snprintf(what, sizeof what, "the snapshot in %s", file);
    printf("restore of %s (%zu bytes): median %.0f ms wall (min %.0f), %.0f ms CPU (min %.0f)\n",
           what, w.len, wall[runs / 2] * 1e3, wall[0] * 1e3, cpu[runs / 2] * 1e3, cpu[0] * 1e3);
    sl_snap_w_free(&w);
    sl_batch_destroy(&b);
    sl_plan_destroy(&plan);
    sl_spec_destroy(&spec);
    sl_diag_destroy(&d);
    return 0;
}
