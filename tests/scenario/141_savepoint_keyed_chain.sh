#!/usr/bin/env bash
# Savepoints across a keyed edge chained at parallelism 1 (docs/architecture.md,
# "Plan rewrites"): at parallelism 1 the planner runs a keyed operator in its
# upstream's task (no exchange); at parallelism 2 the same edge is an
# exchange. A savepoint taken at P=1 (keyed edges chained) resumes at P=2,
# and one taken at P=2 resumes at P=1 (chained): the keyed operators' state
# follows them by name and key group, whatever task they run in (at P=1
# the whole job is one task, its chain branching after the source). Every
# resumed run's outputs equal the closed-form results of the whole input.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
JOBF=$SRC/tests/scenario/chaos/keyed_chain.yaml
COUNT=600000
RATE=40000

step "the plan chains the keyed edges at P=1 only"
sluice plan "$JOBF" --parallelism 1 -p count=1 -p rate=1 -p out_totals=x -p out_windows=y \
    > "$WORK/plan1.txt" || fail "plan at P=1: $(cat "$WORK/stderr")"
# one task: the chain branches after the source (gen feeds both maps)
grep -q "^job chaos-keyed-chain: 1 task," "$WORK/plan1.txt" || fail "P=1 plan: $(cat "$WORK/plan1.txt")"
[ "$(grep -c 'chained (parallelism 1)' "$WORK/plan1.txt")" = 2 ] ||
    fail "P=1: the keyed edges are not chained: $(cat "$WORK/plan1.txt")"
sluice plan "$JOBF" --parallelism 2 -p count=1 -p rate=1 -p out_totals=x -p out_windows=y \
    > "$WORK/plan2.txt" || fail "plan at P=2: $(cat "$WORK/stderr")"
! grep -q "chained (parallelism 1)" "$WORK/plan2.txt" || fail "P=2 chains a keyed edge"

step "start a master and two workers"
HB=2000 start_local_master
start_worker w1 "" --slots 8
start_worker w2 "" --slots 8
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

# savepoint_at P NAME: runs the job at parallelism P, stops it with a
# savepoint after its first checkpoint (before the end of its input); the
# savepoint's directory goes to $WORK/sp-NAME.
savepoint_at() {
    local p=$1 name=$2
    sluice submit "$JOBF" --detach --parallelism "$p" -p count="$COUNT" -p rate="$RATE" \
        -p interval=300ms -p out_totals="$WORK/x-$name.csv" -p out_windows="$WORK/y-$name.csv" \
        > "$WORK/job-$name" || fail "submit at P=$p: $(cat "$WORK/stderr")"
    JOB=$(cat "$WORK/job-$name")
    wait_for 60 checkpoints_at_least 1 || fail "no checkpoints at P=$p: $(sluice status "$JOB")"
    sluice stop "$JOB" --savepoint --dir "$WORK/savepoints-$name" > "$WORK/sp-$name" ||
        fail "stop --savepoint at P=$p: $(cat "$WORK/stderr"); $(sluice status "$JOB")"
    [ -s "$(cat "$WORK/sp-$name")/_metadata" ] || fail "no savepoint at P=$p"
    job_state_is STOPPED || fail "not stopped (the input ended first?): $(job_status)"
    [ ! -e "$WORK/x-$name.csv" ] || fail "a stopped job published its output"
}

# resume_at P NAME: resumes savepoint NAME at parallelism P; its outputs
# must equal the closed-form results.
resume_at() {
    local p=$1 name=$2
    sluice submit "$JOBF" --parallelism "$p" --from-savepoint "$(cat "$WORK/sp-$name")" --quiet \
        -p count="$COUNT" -p rate="$RATE" -p interval=300ms \
        -p out_totals="$WORK/$name-$p-totals.csv" -p out_windows="$WORK/$name-$p-windows.csv" ||
        fail "resume $name at P=$p: $(cat "$WORK/stderr")"
    grep -q "FINISHED" "$WORK/stderr" || fail "resumed job did not finish: $(cat "$WORK/stderr")"
    echo "   savepoint $name resumed at P=$p:"
    keyed_exact "$name-$p-"
}

step "savepoint at P=1 (keyed edges chained), resume at P=2"
savepoint_at 1 p1
resume_at 2 p1

step "savepoint at P=2 (keyed edges exchanged), resume at P=1 (chained)"
savepoint_at 2 p2
resume_at 1 p2
grep -q "starts from savepoint .* (at another parallelism or chaining)" "$WORK/master.err" ||
    fail "the master did not rescale: $(cat "$WORK/master.err")"
echo "PASS savepoints across a keyed edge chained at P=1"
