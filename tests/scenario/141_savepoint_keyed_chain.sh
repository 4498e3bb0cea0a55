#!/usr/bin/env bash
# Savepoints across a keyed edge chained at parallelism 1 (docs/architecture.md,
# "Plan rewrites"): at parallelism 1 the planner runs a keyed operator in its
# upstream's task (no exchange); at parallelism 2 the same edge is an
# exchange. A savepoint taken at P=1 (keyed edges chained) resumes at P=2,
# and one taken at P=2 resumes at P=1 (chained): the keyed operators' state
# follows them by name and key group, whatever task they run in. Every
# resumed run's outputs equal the closed-form results of the whole input.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
JOBF=$DIR/keyed_chain.yaml
COUNT=600000
RATE=40000

json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

step "the plan chains the keyed edges at P=1 only"
sluice plan "$JOBF" --parallelism 1 -p count=1 -p rate=1 -p out_totals=x -p out_windows=y \
    > "$WORK/plan1.txt" || fail "plan at P=1: $(cat "$WORK/stderr")"
grep -q "^job chaos-keyed-chain: 3 tasks" "$WORK/plan1.txt" || fail "P=1 plan: $(cat "$WORK/plan1.txt")"
[ "$(grep -c 'chained (parallelism 1)' "$WORK/plan1.txt")" = 2 ] ||
    fail "P=1: the keyed edges are not chained: $(cat "$WORK/plan1.txt")"
sluice plan "$JOBF" --parallelism 2 -p count=1 -p rate=1 -p out_totals=x -p out_windows=y \
    > "$WORK/plan2.txt" || fail "plan at P=2: $(cat "$WORK/stderr")"
! grep -q "chained (parallelism 1)" "$WORK/plan2.txt" || fail "P=2 chains a keyed edge"

step "start a master and two workers"
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 2000 \
    --state-dir "$WORK/state" >"$WORK/master.out" 2>"$WORK/master.err" &
PIDS+=($!)
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
export SLUICE_MASTER=$(sed -n 's/.*listening on //p' "$WORK/master.out")
for id in w1 w2; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 8 --data-bind tcp://127.0.0.1 2>"$WORK/$id.err" &
    PIDS+=($!)
done
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
python3 "$DIR/expected.py" want "$COUNT" "$RATE" "$WORK/want-totals.csv" "$WORK/want-windows.csv"
sort -o "$WORK/want-totals.csv" "$WORK/want-totals.csv"
sort -o "$WORK/want-windows.csv" "$WORK/want-windows.csv"

# savepoint_at P NAME: runs the job at parallelism P, stops it with a
# savepoint after its first checkpoint (before the end of its input); the
# savepoint's directory goes to $WORK/sp-NAME.
savepoint_at() {
    local p=$1 name=$2 job
    sluice submit "$JOBF" --detach --parallelism "$p" -p count="$COUNT" -p rate="$RATE" \
        -p interval=300ms -p out_totals="$WORK/x-$name.csv" -p out_windows="$WORK/y-$name.csv" \
        > "$WORK/job-$name" || fail "submit at P=$p: $(cat "$WORK/stderr")"
    job=$(cat "$WORK/job-$name")
    # (grep, not python: a python start can take seconds on a loaded machine)
    checkpoints_at_least() { [ "$(sluice status --json "$job" | jget checkpoints)" -ge 1 ]; }
    wait_for 60 checkpoints_at_least || fail "no checkpoints at P=$p: $(sluice status "$job")"
    sluice stop "$job" --savepoint --dir "$WORK/savepoints-$name" > "$WORK/sp-$name" ||
        fail "stop --savepoint at P=$p: $(cat "$WORK/stderr"); $(sluice status "$job")"
    [ -s "$(cat "$WORK/sp-$name")/_metadata" ] || fail "no savepoint at P=$p"
    sluice status --json "$job" > "$WORK/stopped-$name.json" || fail "status: $(cat "$WORK/stderr")"
    [ "$(json 'j["state"]' < "$WORK/stopped-$name.json")" = STOPPED ] ||
        fail "not stopped (the input ended first?): $(cat "$WORK/stopped-$name.json")"
    [ ! -e "$WORK/x-$name.csv" ] || fail "a stopped job published its output"
}

# resume_at P NAME: resumes savepoint NAME at parallelism P; its outputs
# must equal the closed-form results.
resume_at() {
    local p=$1 name=$2 out
    sluice submit "$JOBF" --parallelism "$p" --from-savepoint "$(cat "$WORK/sp-$name")" --quiet \
        -p count="$COUNT" -p rate="$RATE" -p interval=300ms \
        -p out_totals="$WORK/totals-$name-$p.csv" -p out_windows="$WORK/windows-$name-$p.csv" ||
        fail "resume $name at P=$p: $(cat "$WORK/stderr")"
    grep -q "FINISHED" "$WORK/stderr" || fail "resumed job did not finish: $(cat "$WORK/stderr")"
    for out in totals windows; do
        tail -n +2 "$WORK/$out-$name-$p.csv" | sort > "$WORK/got.csv"
        counts=$(python3 "$DIR/expected.py" check "$WORK/want-$out.csv" "$WORK/got.csv")
        cmp -s "$WORK/want-$out.csv" "$WORK/got.csv" || {
            diff "$WORK/want-$out.csv" "$WORK/got.csv" | head -n 10 >&2 || true
            fail "$out of savepoint $name resumed at P=$p differ ($counts)"
        }
    done
}

step "savepoint at P=1 (keyed edges chained), resume at P=2"
savepoint_at 1 p1
resume_at 2 p1

step "savepoint at P=2 (keyed edges exchanged), resume at P=1 (chained)"
savepoint_at 2 p2
resume_at 1 p2
grep -q "starts from savepoint .* (at another parallelism)" "$WORK/master.err" ||
    fail "the master did not rescale: $(cat "$WORK/master.err")"
echo "PASS savepoints across a keyed edge chained at P=1"
