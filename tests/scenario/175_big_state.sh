#!/usr/bin/env bash
# Big keyed state never stalls a worker's heartbeats (docs/fault-tolerance.md):
# a master with --heartbeat-timeout 1000 and two worker processes run
# bigstate/keyed.yaml, a keyed aggregation over KEYS distinct keys on the
# heap (about 13 bytes a key in the varint snapshot format: ~8 MB written
# whole into every checkpoint, every second).
#
# 1. Several checkpoints of that state complete in attempt 1 with no worker
#    lost (writing a snapshot of megabytes in a task's thread must not hold
#    up the worker's control loop).
# 2. Then a worker running an aggregate subtask is killed with SIGKILL and
#    started again: the job restarts once, every subtask reads and verifies
#    its state (in its own thread: the control loops keep
#    sending heartbeats), and the job finishes in attempt 2, with that one
#    failure only (no other worker lost on the way, nor at the end when the
#    tasks free their state) and the exact totals of every key.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/bigstate
KEYS=${BIG_KEYS:-640000}
M=2                               # records per key
COUNT=$((KEYS * M))
RATE=${BIG_RATE:-100000}          # >= 16 s a job: the kill comes well before its end
MIN_STATE=${BIG_MIN_STATE:-5000000} # bytes of state files a "big" checkpoint holds at least
# Each source subtask holds after PAUSE_AFTER of its records (every key has
# its state by then) until the job restarted after the kill: on a slow
# machine the job cannot end before it.
PAUSE_AFTER=$((COUNT * 3 / 8))
HB=1000                           # the master's --heartbeat-timeout, ms

eval "lib_$(declare -f fail)"
fail() {
    grep -E "lost|failed|restarts from|given up" "$WORK/master.err" >&2 || true
    lib_fail "$@"
}
status() { sluice status --json "$JOB"; }
field() { status | jget "$1"; }
ended() { field state | grep -qxE 'FINISHED|FAILED|CANCELED'; }
running_attempt() {
    local s
    s=$(status)
    [ "$(jget state <<<"$s") $(jget attempt <<<"$s")" = "RUNNING $1" ]
}
# Bytes of the state files of completed checkpoint ID.
state_bytes() { du -cb "$CK/chk-$1"/*.state 2>/dev/null | tail -n 1 | cut -f1; }
# Completed checkpoints (ids) whose state is big.
big_checkpoints() {
    local d id
    for d in "$CK"/chk-*; do
        [ -e "$d/_metadata" ] || continue
        id=${d##*/chk-}
        [ "$(state_bytes "$id")" -ge "$MIN_STATE" ] && echo "$id"
    done
    return 0
}
# Two big checkpoints completed, and more than 2 checkpoints in all, in
# attempt 1 (retain is 2: the older ones are deleted).
enough_checkpoints() {
    local s
    s=$(status)
    [ "$(jget attempt <<<"$s")" = 1 ] || fail "the job restarted before the kill: $(sluice status "$JOB")"
    [ "$(jget checkpoints <<<"$s")" -ge 3 ] && [ "$(big_checkpoints | wc -l)" -ge 2 ]
}

step "start a master (heartbeat timeout $HB ms) and two workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2; do start_worker "$id"; done
wait_for 30 alive_workers 2 || fail "workers did not register: $(sluice workers)"
# every key k: n = M, s = M * k + KEYS * M * (M - 1) / 2
awk -v keys="$KEYS" -v m="$M" 'BEGIN { for (k = 0; k < keys; k++) printf "%d,%d,%d\n", k, m, m * k + keys * m * (m - 1) / 2 }' |
    sort >"$WORK/want.csv"

step "submit: $KEYS keys, $COUNT records at $RATE/s, checkpoints every 1 s"
sluice submit "$DIR/keyed.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p keys="$KEYS" \
    -p pause_after="$PAUSE_AFTER" -p pause_for=10m -p pause_until="$WORK/release" \
    -p out="$WORK/totals.csv" >"$WORK/job" || { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
CK="$WORK/state/checkpoints/$JOB"

step "1: checkpoints of big state complete in attempt 1, no worker lost"
wait_for 120 enough_checkpoints || fail "no two checkpoints of >= $MIN_STATE bytes: $(sluice status "$JOB")"
! grep -q "worker [^ ]* lost" "$WORK/master.err" || fail "a worker was lost while checkpointing big state"
! ended || fail "the job ended before the kill: $(sluice status "$JOB")"
big=$(big_checkpoints | tail -n 1)
echo "   $(field checkpoints) checkpoints; checkpoint $big holds $(state_bytes "$big") bytes of state"

step "2: kill -9 a worker running an aggregate subtask, start it again"
VICTIM=$(status | grep -o '"task":"1\.[0-9]*","worker":"[^"]*"' | head -n 1 | cut -d'"' -f8)
[ -n "$VICTIM" ] || fail "no worker runs the aggregate: $(sluice status "$JOB")"
vpid=$(worker_pid "$VICTIM")
kill -9 "$vpid"
wait "$vpid" 2>/dev/null || true
echo "   killed $VICTIM"
start_worker "$VICTIM"
wait_for 120 running_attempt 2 || fail "the job did not restart: $(sluice status "$JOB")"
touch "$WORK/release"
grep -q "job $JOB restarts from checkpoint" "$WORK/master.err" ||
    fail "the restart did not restore a checkpoint"
restored=$(sed -n "s/.*job $JOB restarts from checkpoint \([0-9]*\).*/\1/p" "$WORK/master.err" | tail -n 1)
wait_for 240 ended || fail "the job did not end: $(sluice status "$JOB")"

status >"$WORK/final.json"
st=$(jget state <"$WORK/final.json")
att=$(jget attempt <"$WORK/final.json")
nfail=$(grep -o '"attempt [0-9]*: ' "$WORK/final.json" | wc -l)
[ "$st $att $nfail" = "FINISHED 2 1" ] ||
    fail "want FINISHED in attempt 2 after one failure, got $st in attempt $att after $nfail: $(cat "$WORK/final.json")"
grep -q "\"attempt 1: worker $VICTIM lost" "$WORK/final.json" ||
    fail "the one failure is not the killed worker: $(grep -o '"failures":\[[^]]*\]' "$WORK/final.json")"
[ "$(grep -c "worker [^ ]* lost" "$WORK/master.err")" -eq 1 ] || fail "more than one worker lost"
echo "   restored checkpoint $restored, finished in attempt 2"

sort "$WORK/totals.csv" | grep -v '^k,' >"$WORK/got.csv"
cmp -s "$WORK/want.csv" "$WORK/got.csv" ||
    fail "totals differ from the closed form: $(diff "$WORK/want.csv" "$WORK/got.csv" | head -n 5)"
echo "   $KEYS totals exact"
for w in w1 w2; do
    ! grep -q "Sanitizer" "$WORK/$w.err" || fail "sanitizer report from worker $w: $(cat "$WORK/$w.err")"
done
! grep -q "Sanitizer" "$WORK/master.err" || fail "sanitizer report from the master"
echo "PASS"
