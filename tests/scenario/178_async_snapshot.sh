#!/usr/bin/env bash
# The asynchronous phase of a checkpoint (docs/fault-tolerance.md): a task
# serializes its state on its own thread, then writes the state file (fsync,
# sha256, ack) on another while it goes on processing records. A worker
# started with SLUICE_SNAPSHOT_WRITE_DELAY_MS (builds with failpoints) holds
# the asynchronous phase of every snapshot from checkpoint 2 on back
# before it writes anything (checkpoint 1 completes at once):
#   1. while the aggregate's state file of checkpoint N is not written yet,
#      records keep flowing through the aggregate (with a synchronous
#      snapshot its thread would sit in the delay);
#   2. kill -9 of the worker in the middle of such a write: the job restarts
#      from the previous completed checkpoint, and its outputs equal the
#      closed-form results exactly.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=${ASYNC_COUNT:-1500000}
RATE=${ASYNC_RATE:-50000}
DELAY_MS=${ASYNC_DELAY_MS:-20000}
HB=1000

step "start a master and a worker whose snapshot writes wait ${DELAY_MS} ms from chk-2 on"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 20 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
SLUICE_SNAPSHOT_WRITE_DELAY_MS=$DELAY_MS:2 start_worker w1 "" --slots 4
wait_for 20 alive_workers 1 || fail "the worker did not register: $(sluice workers)"

keyed_want "$COUNT" "$RATE"

step "submit: $COUNT records at $RATE/s, checkpoints every second"
submit_keyed "$DIR/keyed.yaml" "" 1
# task_in C.S: records_in of subtask C.S
task_in() { job_status | grep -o "{\"task\":\"$1\"[^{}]*" | grep -o '"records_in":[0-9]*' | cut -d: -f2; }
# the highest checkpoint id whose write subtask $1 (C.S) is holding back, or 0
delayed_id() {
    sed -n "s/.*task $1: checkpoint \([0-9]*\): SLUICE_SNAPSHOT_WRITE_DELAY_MS=.*/\1/p" \
        "$WORK/w1.err" | sort -n | tail -n 1 | grep . || echo 0
}
# state_of C.S N: the number of state files subtask C.S wrote for checkpoint N
state_of() { find "$WORK/state" -path "*/chk-$2/task-${1/./-}.state" 2>/dev/null | wc -l; }

T=$(job_status | grep -o '{"task":"[0-9]*\.[0-9]*"[^{}]*"operators":\["totals"' | head -n 1 |
    grep -o '"task":"[0-9.]*"' | cut -d'"' -f4)
[ -n "$T" ] || fail "no subtask of the aggregate in: $(job_status)"

step "1: records flow through the aggregate's subtask $T while its snapshot is written"
# a snapshot of T whose write is held back: its state file is not there yet
held() {
    id=$(delayed_id "$T")
    [ "$id" -gt 0 ] && [ "$(state_of "$T" "$id")" -eq 0 ]
}
wait_for 60 held || fail "no snapshot write of $T is held back: $(tail -3 "$WORK/w1.err")"
echo "  $(date +%T.%N | cut -c1-12) chk-$id of $T held back"
# The records_in of a subtask reach the master with the worker's reports:
# a value read now may predate the snapshot. Two changes of it after the
# delay began, seen while T's state file of chk-$id is still missing, show
# records processed while the snapshot was being written.
r0=$(task_in "$T")
prev=$r0
changed() {
    local r
    r=$(task_in "$T")
    [ "$(state_of "$T" "$id")" -eq 0 ] ||
        fail "chk-$id of $T was written before its records_in moved twice (machine too slow? raise ASYNC_DELAY_MS)"
    echo "  $(date +%T.%N | cut -c1-12) $T records_in $r"
    [ "$r" -gt "$prev" ] && prev=$r
}
for n in 1 2; do
    wait_for 30 changed || fail "subtask $T processed nothing while its snapshot chk-$id waited"
done
r1=$prev
echo "subtask $T: $r0 -> $r1 records in while its chk-$id was held back"

step "2: kill -9 the worker in the middle of an asynchronous write"
# a snapshot whose write is held back: none of its state files exists yet
wait_for 60 held || fail "no snapshot write is pending: $(tail -3 "$WORK/w1.err")"
attempt=$(job_field attempt)
before=$(job_field checkpoints)
kill -9 "$PID_w1"
wait "$PID_w1" 2>/dev/null || true
[ "$(job_field checkpoints)" -ge "$before" ] || fail "checkpoints went backwards"
echo "killed with chk-$id being written; last completed: $before"
start_worker w2
restarted() {
    local st
    st=$(job_status)
    echo "$st" | grep -q '"state":"\(RUNNING\|FINISHED\)"' &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | cut -d: -f2)" -gt "$attempt" ]
}
wait_for 90 restarted || fail "the job did not restart: $(sluice status "$JOB")"
finished() { [ "$(job_field state)" = FINISHED ]; }
wait_for 240 finished || fail "job did not finish: $(sluice status "$JOB")"
job_status >"$WORK/final.json"
from=$(grep -o '"restored_from":[0-9]*' "$WORK/final.json" | head -n 1 | cut -d: -f2)
[ -n "$from" ] && [ "$from" -gt 0 ] || fail "the restarted attempt restored no checkpoint: $(cat "$WORK/final.json")"
[ "$from" -lt "$id" ] || fail "restored from chk-$from, which was being written when the worker died"

keyed_exact
for f in "$WORK"/w1.err "$WORK"/w2.err "$WORK"/master.err; do
    ! grep -q "Sanitizer" "$f" || { cat "$f" >&2; fail "sanitizer report in $f"; }
done
echo "PASS records flow during the asynchronous write; kill -9 in it recovers from chk-$from"
