#!/usr/bin/env bash
# The master's control loop never waits for a restart's checkpoint
# verification (docs/fault-tolerance.md): reading and hashing every state
# file of a checkpoint happens in a thread of its own while the job stays
# RESTARTING, and the master keeps answering clients meanwhile.
#
# The master runs with SLUICE_MASTER_VERIFY_DELAY_MS (test builds): every
# verification first waits DELAY ms, a slow disk. The job is
# bigstate/keyed.yaml with megabytes of keyed heap state.
#
# 1. A worker running an aggregate subtask is killed with SIGKILL: while the
#    master verifies, `sluice status` answers promptly (well under DELAY)
#    and says RESTARTING; a master that verified in its loop would answer
#    only after choosing the checkpoint, with the job RUNNING again. Then
#    the job restarts from its checkpoint (the same log lines as ever).
# 2. Killed again, the job is canceled while the master verifies: the
#    cancel is answered promptly, the job is CANCELED and never restarts.
# 3. A second job is restarting (verifying) when the master gets SIGTERM:
#    it stops promptly (the verification is abandoned) with no sanitizer
#    report (no leak, no use after free).
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/bigstate
KEYS=${RESP_KEYS:-150000}
M=4
COUNT=$((KEYS * M))
RATE=${RESP_RATE:-30000} # 20 s of records: the kills come well before the end
DELAY=12000              # ms every verification takes at least
PROMPT=6000              # ms a request may take while the master verifies (a loaded machine)
HB=2000

FAIL_LOG_RE="lost|failed|restarts from|verifying|unusable|given up"
state_attempt() {
    local s
    s=$(job_status)
    [ "$(jget state <<<"$s") $(jget attempt <<<"$s")" = "$1 $2" ]
}
nlines() { grep -c "$1" "$WORK/master.err" || true; }
verifying() { [ "$(nlines "job $JOB: verifying checkpoints")" -ge "$1" ]; }
# kill_aggregate: SIGKILL a worker that runs an aggregate subtask of $JOB and
# start it again.
kill_aggregate() {
    local victim vpid
    victim=$(job_status | grep -o '"task":"1\.[0-9]*","worker":"[^"]*"' | head -n 1 | cut -d'"' -f8)
    [ -n "$victim" ] || fail "no worker runs the aggregate: $(sluice status "$JOB")"
    vpid=$(worker_pid "$victim")
    kill -9 "$vpid"
    wait "$vpid" 2>/dev/null || true
    start_worker "$victim"
    echo "   killed and restarted $victim"
}

step "start a master (verification delay $DELAY ms) and two workers"
SLUICE_MASTER_VERIFY_DELAY_MS=$DELAY start_local_master
for id in w1 w2; do start_worker "$id"; done
wait_for 30 alive_workers 2 || fail "workers did not register: $(sluice workers)"

step "submit: $KEYS keys, $COUNT records at $RATE/s, checkpoints every 1 s"
sluice submit "$DIR/keyed.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p keys="$KEYS" \
    -p out="$WORK/totals.csv" >"$WORK/job" || { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
wait_for 120 checkpoints_at_least 2 || fail "no checkpoints: $(sluice status "$JOB")"
state_attempt RUNNING 1 || fail "the job is not running in attempt 1: $(sluice status "$JOB")"

step "1: while the master verifies a restart's checkpoint, status answers promptly"
kill_aggregate
wait_for 60 verifying 1 || fail "the master did not start verifying: $(sluice status "$JOB")"
answered=0
for i in 1 2 3; do
    t0=$(now_ms)
    s=$(job_status) || fail "status failed while verifying"
    took=$(($(now_ms) - t0))
    st=$(jget state <<<"$s")
    echo "   status #$i: $st in $took ms"
    [ "$st" = RESTARTING ] || break # verification done (a slow machine)
    [ "$took" -lt "$PROMPT" ] || fail "status took $took ms while the master verified"
    answered=$((answered + 1))
done
[ "$answered" -ge 1 ] || fail "no status answered while the master verified (the loop blocked?)"
wait_for 120 state_attempt RUNNING 2 || fail "the job did not restart: $(sluice status "$JOB")"
[ "$(nlines "job $JOB restarts from checkpoint")" -eq 1 ] || fail "no restart from a checkpoint"
! grep -q "unusable" "$WORK/master.err" || fail "a checkpoint was found unusable"

step "2: a cancel while the master verifies"
wait_for 60 alive_workers 2 || fail "the restarted worker did not register"
kill_aggregate
wait_for 60 verifying 2 || fail "the master did not start verifying again: $(sluice status "$JOB")"
t0=$(now_ms)
sluice cancel "$JOB" >/dev/null || fail "cancel failed: $(cat "$WORK/stderr")"
took=$(($(now_ms) - t0))
echo "   cancel answered in $took ms"
[ "$took" -lt "$PROMPT" ] || fail "cancel took $took ms while the master verified"
job_state_is CANCELED || fail "the job is not canceled: $(sluice status "$JOB")"
sleep 1 # the abandoned verifier ends and is reaped by the loop
job_state_is CANCELED || fail "the canceled job changed state: $(sluice status "$JOB")"
[ "$(nlines "job $JOB restarts from checkpoint")" -eq 1 ] || fail "the canceled job restarted"

step "3: SIGTERM while the master verifies"
wait_for 60 alive_workers 2 || fail "the restarted worker did not register"
sluice submit "$DIR/keyed.yaml" --detach -p count=1000000 -p rate=2000 -p keys=1000 \
    -p out="$WORK/totals2.csv" >"$WORK/job" || { cat "$WORK/stderr" >&2; fail "submit 2"; }
JOB=$(cat "$WORK/job")
wait_for 120 checkpoints_at_least 1 || fail "no checkpoint of job 2: $(sluice status "$JOB")"
kill_aggregate
wait_for 60 verifying 1 || fail "the master did not verify job 2: $(sluice status "$JOB")"
term_master
[ "$took" -lt $((PROMPT + 2000)) ] || fail "the master took $took ms to stop"
[ "$rc" -eq 0 ] || fail "the master exited with $rc"
! grep -q "Sanitizer" "$WORK/master.err" || fail "sanitizer report from the master"
for w in w1 w2; do
    ! grep -q "Sanitizer" "$WORK/$w.err" || fail "sanitizer report from worker $w"
done
echo "PASS"
