#!/usr/bin/env bash
# Recovery of a branching chain (docs/architecture.md, "Plan rewrites"): at
# parallelism 1, chaos/keyed.yaml's map feeds two keyed operators (an
# aggregate and an event-time window) over keyed edges, and the whole job
# runs as one task whose chain branches after the map. The source pauses
# half way (so that on a slow machine the job still runs when the kill
# lands); there, after two checkpoints, the worker running the task is
# killed with SIGKILL and started again: the job restarts from its latest
# checkpoint, both branches' state restored by operator name, and its
# outputs equal the closed-form results exactly.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
JOBF=$SRC/tests/scenario/chaos/keyed.yaml
COUNT=200000
RATE=40000
PAUSE_AFTER=100000

step "the plan runs the branching job as one task at P=1"
sluice plan "$JOBF" --parallelism 1 -p source_parallelism=1 -p count=1 -p rate=1 \
    -p out_totals=x -p out_windows=y >"$WORK/plan.txt" || fail "plan: $(cat "$WORK/stderr")"
grep -q "^job chaos-keyed: 1 task," "$WORK/plan.txt" || fail "not one task: $(cat "$WORK/plan.txt")"
grep -q "<- hash(k) from keyed, chained (parallelism 1)" "$WORK/plan.txt" ||
    fail "the second branch is not chained: $(cat "$WORK/plan.txt")"

step "start a master and two workers"
HB=1000 start_local_master
start_worker w1
start_worker w2
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

step "submit at P=1: $COUNT records at $RATE/s, checkpoints every 300 ms"
submit_keyed "$JOBF" "" 2 --parallelism 1 -p source_parallelism=1 -p interval=300ms \
    -p pause_after="$PAUSE_AFTER" -p pause_for=15s
[ "$(job_status | grep -o '"task":"[0-9.]*"' | sort -u)" = '"task":"0.0"' ] ||
    fail "not one task: $(job_status)"

step "kill -9 the worker running the job in the source's pause, start it again"
# in_pause: the source is at (or near: its last batch may not be counted
# yet) its pause, and a checkpoint completed after that point
in_pause() {
    job_status >"$WORK/pause.json"
    [ "$(jget state <"$WORK/pause.json")" = RUNNING ] ||
        fail "the job no longer runs: $(cat "$WORK/pause.json")"
    local out
    out=$(grep -o '"name":"gen","records_in":[0-9]*,"records_out":[0-9]*' "$WORK/pause.json" |
        sed 's/.*://')
    [ "${out:-0}" -ge $((PAUSE_AFTER * 9 / 10)) ] || return 1
    [ -n "${at:-}" ] || at=$(jget checkpoints <"$WORK/pause.json")
    [ "$(jget checkpoints <"$WORK/pause.json")" -gt "$at" ]
}
at=
wait_for 90 in_pause || fail "the source did not reach its pause: $(sluice status "$JOB")"
job_status >"$WORK/before.json"
mapfile -t busy < <(running_workers "$WORK/before.json")
[ ${#busy[@]} -eq 1 ] || fail "expected one worker running the job: $(cat "$WORK/before.json")"
victim=${busy[0]}
before=$(jget checkpoints <"$WORK/before.json")
kill -9 "$(worker_pid "$victim")"
start_worker "$victim"
restarted() {
    local st
    st=$(job_status)
    echo "$st" | grep -q '"state":"\(RUNNING\|FINISHED\)"' &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | head -n 1 | cut -d: -f2)" -ge 2 ]
}
wait_for 60 restarted || fail "the job did not restart after killing $victim: $(sluice status "$JOB")"
echo "   killed $victim after $before checkpoints; attempt 2 runs"

step "wait for the end"
wait_for 120 job_finished || fail "the job did not finish: $(sluice status "$JOB")"
job_status >"$WORK/final.json"
[ "$(jget restored_from <"$WORK/final.json")" -ge 1 ] ||
    fail "the last attempt did not restore a checkpoint: $(cat "$WORK/final.json")"
keyed_exact
no_sanitizer_reports
echo "PASS a branching chain recovers exactly from kill -9"
