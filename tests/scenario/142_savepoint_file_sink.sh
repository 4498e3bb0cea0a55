#!/usr/bin/env bash
# Savepoints of exactly-once file sinks are self-contained
# (docs/fault-tolerance.md): the keyed job of 130 (two `publish: end` file
# sinks) runs on a master and two workers. `sluice savepoint` takes a
# savepoint A of the running job, which then goes on; later
# `sluice stop --savepoint` stops it mid-output with a savepoint B. Each
# savepoint holds the sinks' committed parts itself (parts-SINK-S/), and the
# stopped job's staging directories go. B is resumed into the job's own
# output paths twice, one resume after the other (the first publishes and
# removes what it staged, the second still finds everything in B), and
# into other paths; A is resumed into other paths after the original job's
# staged parts are long gone. Every output equals the closed-form result:
# nothing lost, nothing twice. The master drops staging directories in its
# file thread (SLUICE_MASTER_STAGING_DELAY_MS, test builds: a slow disk),
# answering clients meanwhile.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=400000
PAUSE_AFTER=100000 # the first run pauses there (10 min): stopped in the pause, mid-output
RATE=40000
DELAY=6000 # ms the master's file thread waits before it drops a job's staging directories

step "start a master and two workers"
SLUICE_MASTER_STAGING_DELAY_MS=$DELAY "$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 2000 \
    --state-dir "$WORK/state" >"$WORK/master.out" 2>"$WORK/master.err" &
PIDS+=($!)
wait_for 30 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
export SLUICE_MASTER=$(sed -n 's/.*listening on //p' "$WORK/master.out")
for id in w1 w2; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 8 --data-bind tcp://127.0.0.1 2>"$WORK/$id.err" &
    PIDS+=($!)
done
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

# check NAME: NAME-totals.csv and NAME-windows.csv equal the closed form
check() {
    [ -s "$WORK/$1-totals.csv" ] && [ -s "$WORK/$1-windows.csv" ] || fail "$1: no output"
    keyed_exact "$1-"
}
# saved_parts SP: the number of parts SP holds for the two sinks
saved_parts() { find "$1" -path '*/parts-out_*-0/part-*' -type f | wc -l; }
# resume SP NAME: resumes SP writing NAME-totals.csv and NAME-windows.csv;
# its job id in RJOB_NAME; resumed NAME: it ended FINISHED
resume() {
    sluice submit "$DIR/keyed.yaml" --detach --from-savepoint "$1" -p source_parallelism=1 \
        -p count="$COUNT" -p rate="$RATE" -p interval=500ms \
        -p out_totals="$WORK/$2-totals.csv" -p out_windows="$WORK/$2-windows.csv" >"$WORK/rjob" ||
        fail "resume $1 into $2: $(cat "$WORK/stderr")"
    eval "RJOB_$2=$(cat "$WORK/rjob")"
}
resumed() {
    local st
    st=$(sluice status --json "$(eval echo "\$RJOB_$1")" | jget state)
    [ "$st" != FAILED ] || fail "the job resumed into $1 failed: $(sluice status "$(eval echo "\$RJOB_$1")")"
    [ "$st" = FINISHED ] || return 1
    # in its first attempt: a restart would start from scratch (no
    # checkpoint of its own yet), not from the savepoint, and hide a
    # savepoint that cannot be restored behind a correct result
    [ "$(sluice status --json "$(eval echo "\$RJOB_$1")" | jget attempt)" = 1 ] ||
        fail "the job resumed into $1 restarted: $(grep "attempt 1 failed" "$WORK/master.err")"
}

step "run the job; take savepoint A while it runs; stop it with savepoint B mid-output"
submit_keyed "$DIR/keyed.yaml" job- 1 -p source_parallelism=1 -p interval=500ms \
    -p pause_after="$PAUSE_AFTER" -p pause_for=10m
# A savepoint holds a sink's part only once the sink got records: the
# window sink's first come when the first 1 s window fires, which on a
# fast machine is after the first checkpoint (the totals come at the end).
op_in() { sluice status --json "$JOB" | grep -o "\"name\":\"$1\",\"records_in\":[0-9]*" | grep -o '[0-9]*$'; }
sink_fed() { [ "$(op_in out_windows)" -ge 1 ]; }
wait_for 60 sink_fed || fail "the sinks got no records: $(sluice status "$JOB")"
sluice savepoint "$JOB" --dir "$WORK/savepoints" >"$WORK/spa" || fail "savepoint: $(cat "$WORK/stderr")"
SPA=$(tail -n 1 "$WORK/spa")
[ -s "$SPA/_metadata" ] || fail "no savepoint at '$SPA'"
A_PARTS=$(saved_parts "$SPA")
[ "$A_PARTS" -ge 1 ] || fail "savepoint A holds $A_PARTS staged parts: $(find "$SPA" | head -n 20)"
paused() { [ "$(op_in gen)" -ge "$PAUSE_AFTER" ]; }
wait_for 120 paused || fail "the source did not reach its pause: $(sluice status "$JOB")"
sluice stop "$JOB" --savepoint --dir "$WORK/savepoints" >"$WORK/spb" ||
    fail "stop --savepoint: $(cat "$WORK/stderr"): $(sluice status "$JOB")"
SPB=$(tail -n 1 "$WORK/spb")
[ -s "$SPB/_metadata" ] || fail "no savepoint at '$SPB'"
[ "$(job_field state)" = STOPPED ] || fail "not stopped: $(sluice status "$JOB")"
B_PARTS=$(saved_parts "$SPB")
[ "$B_PARTS" -ge "$A_PARTS" ] || fail "savepoint B holds $B_PARTS staged parts, A $A_PARTS"
[ ! -e "$WORK/job-totals.csv" ] || fail "the stopped job published its output"
# the savepoint's copies are its own files, not links to the checkpoint's
# or the staging directory's
[ "$(find "$SPB" -path '*/parts-*' -type f -links +1 | wc -l)" = 0 ] ||
    fail "savepoint B's parts are hard links shared with other files"
# the stopped job's staged parts are not needed: its staging directories
# go, off the master's loop (while the file thread waits, the loop answers)
wait_for 30 grep -q "job $JOB: its staging directories: SLUICE_MASTER_STAGING_DELAY_MS" \
    "$WORK/master.err" || fail "the master does not drop the stopped job's staging directories"
sluice status "$JOB" >/dev/null || fail "status: $(cat "$WORK/stderr")"
[ -e "$WORK/.job-windows.csv.sluice-staging" ] ||
    fail "the staging directory went before the status answered: was it deleted on the loop?"
for out in totals windows; do
    wait_for 60 test ! -e "$WORK/.job-$out.csv.sluice-staging" ||
        fail "the stopped job's staging directory for $out is still there"
done
echo "   savepoint A: $A_PARTS parts, savepoint B: $B_PARTS parts"

step "resume B into the job's own output paths, twice, one after the other"
resume "$SPB" job
wait_for 120 resumed job || fail "the first resume did not finish: $(sluice status "$RJOB_job")"
check job
mv "$WORK/job-totals.csv" "$WORK/first-totals.csv"
mv "$WORK/job-windows.csv" "$WORK/first-windows.csv"
check first
[ "$(saved_parts "$SPB")" = "$B_PARTS" ] || fail "the first resume changed savepoint B"
step "meanwhile resume B into other paths, and A (its job's staging long gone) into others"
resume "$SPB" job
resume "$SPB" other
resume "$SPA" froma
for f in job other froma; do
    wait_for 120 resumed $f || fail "the resume into $f did not finish: $(sluice status "$(eval echo "\$RJOB_$f")")"
    check $f
done
for f in job other froma; do
    for out in totals windows; do
        [ ! -e "$WORK/.$f-$out.csv.sluice-staging" ] ||
            wait_for 60 test ! -e "$WORK/.$f-$out.csv.sluice-staging" ||
            fail "the staging directory of $f-$out.csv was left behind"
    done
done
step "a job resumed from B that fails before a checkpoint of its own restarts from B, not from scratch"
# its checkpoints are an hour apart: none completes; it pauses 20 s at
# record 200000 (past B's position), and a worker running its tasks is
# killed (-9) in that pause
sluice submit "$DIR/keyed.yaml" --detach --from-savepoint "$SPB" -p source_parallelism=1 \
    -p pause_after=200000 -p pause_for=20s \
    -p count="$COUNT" -p rate="$RATE" -p interval=1h \
    -p out_totals="$WORK/again-totals.csv" -p out_windows="$WORK/again-windows.csv" >"$WORK/rjob" ||
    fail "resume $SPB into again: $(cat "$WORK/stderr")"
RJOB_again=$(cat "$WORK/rjob")
again_paused() {
    sluice status --json "$RJOB_again" >"$WORK/again.json" || return 1
    [ "$(grep -o '"name":"gen","records_in":[0-9]*' "$WORK/again.json" | grep -o '[0-9]*$')" -ge 200000 ]
}
wait_for 120 again_paused || fail "the resumed job did not reach its pause: $(sluice status "$RJOB_again")"
VICTIM=$(running_workers "$WORK/again.json" | head -n 1)
[ -n "$VICTIM" ] || fail "no worker runs the resumed job: $(cat "$WORK/again.json")"
VPID=$(pgrep -f -- "--id $VICTIM --slots" | head -n 1)
kill -9 "$VPID"
wait "$VPID" 2>/dev/null || true
"$SLUICE_WORKER_BIN" --id "$VICTIM" --slots 8 --data-bind tcp://127.0.0.1 2>>"$WORK/$VICTIM.err" &
PIDS+=($!)
wait_for 60 grep -q "job $RJOB_again restarts from savepoint $SPB" "$WORK/master.err" ||
    fail "the resumed job did not restart from its savepoint: $(grep "$RJOB_again" "$WORK/master.err")"
finished_again() {
    local st
    st=$(sluice status --json "$RJOB_again" | jget state)
    [ "$st" != FAILED ] || fail "the job resumed into again failed: $(sluice status "$RJOB_again")"
    [ "$st" = FINISHED ]
}
wait_for 180 finished_again || fail "the restarted job did not finish: $(sluice status "$RJOB_again")"
[ "$(sluice status --json "$RJOB_again" | jget attempt)" -ge 2 ] || fail "the resumed job did not restart"
check again
for f in "$WORK"/w*.err "$WORK/master.err"; do
    grep -q Sanitizer "$f" && fail "sanitizer report in $f: $(head -n 30 "$f")"
done
echo "PASS self-contained savepoints of file sinks, resumed five times (once through a restart)"
