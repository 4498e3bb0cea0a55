#!/usr/bin/env bash
# A worker started before its master waits for it; when the master is
# killed (kill -9) and started again on the same address, the worker
# registers again by itself and runs the next job.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"

alive() { sluice workers --json 2>/dev/null | grep -q '"id":"early","host":"127.0.0.1","slots":2,"slots_used":0,"heartbeat_age_ms":[0-9]*,"alive":true'; }

# A free port for the master: bind an ephemeral one, note it, release it.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT

step "a worker started before its master"
"$SLUICE_WORKER_BIN" --id early --slots 2 --data-bind tcp://127.0.0.1 2>"$WORK/worker.err" &
PIDS+=($!)
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" >"$WORK/master1.out" 2>"$WORK/master1.err" &
M1=$!
PIDS+=($M1)
wait_for 20 alive || fail "the early worker never registered: $(sluice workers)"
sluice submit "$SRC/jobs/wordcount.yaml" --quiet --param input="$SRC/jobs/data/sluice-gates.txt" \
    --param output="$WORK/one.csv" || { cat "$WORK/stderr"; fail "first job failed"; }

step "kill -9 the master, start a new one on the same address"
kill -9 $M1
wait $M1 2>/dev/null || true
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" >"$WORK/master2.out" 2>"$WORK/master2.err" &
PIDS+=($!)
wait_for 20 alive || fail "the worker did not register with the new master: $(sluice workers)"
grep -q "registering again" "$WORK/worker.err" || fail "the worker did not say it re-registered"
sluice submit "$SRC/jobs/wordcount.yaml" --quiet --param input="$SRC/jobs/data/sluice-gates.txt" \
    --param output="$WORK/two.csv" || { cat "$WORK/stderr"; fail "job on the new master failed"; }
cmp -s <(sort "$WORK/one.csv") <(sort "$WORK/two.csv") || fail "the two runs differ"

step "a master paused for longer than its heartbeat timeout loses no worker"
# Its own pause says nothing about the workers (their heartbeats wait, unread,
# in its socket): the running job must finish in its first attempt.
kill -9 "${PIDS[-1]}"
wait "${PIDS[-1]}" 2>/dev/null || true
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 1000 --state-dir "$WORK/state" \
    >"$WORK/master3.out" 2>"$WORK/master3.err" &
M3=$!
PIDS+=($M3)
wait_for 20 alive || fail "the worker did not register with the third master: $(sluice workers)"
sluice submit "$SRC/tests/scenario/recovery/keyed.yaml" --detach -p count=20000 -p rate=4000 \
    -p out_totals="$WORK/totals.csv" -p out_windows="$WORK/windows.csv" >"$WORK/job" ||
    { cat "$WORK/stderr"; fail "submit"; }
JOB=$(cat "$WORK/job")
running() { sluice status --json "$JOB" | grep -q '"state":"RUNNING"'; }
wait_for 30 running || fail "the job did not start: $(sluice status "$JOB")"
log_size=$(stat -c %s "$WORK/worker.err")
freeze "$M3"
t=$SECONDS
until [ $((SECONDS - t)) -ge 3 ]; do sleep 0.2; done # 2-3 s, far past the 1 s timeout
thaw "$M3"
ended() { sluice status --json "$JOB" | grep -qE '"state":"(FINISHED|FAILED|CANCELED)"'; }
wait_for 120 ended || fail "the job did not end: $(sluice status "$JOB")"
sluice status --json "$JOB" >"$WORK/final.json"
[ "$(jget state <"$WORK/final.json") $(jget attempt <"$WORK/final.json")" = "FINISHED 1" ] ||
    fail "the job did not finish in its first attempt: $(sluice status "$JOB"; cat "$WORK/master3.err")"
grep -q "the master did not run for [0-9]* ms; it is not counted against the workers' heartbeats" "$WORK/master3.err" ||
    fail "the master does not say it credited its pause: $(cat "$WORK/master3.err")"
! tail -c +$((log_size + 1)) "$WORK/worker.err" | grep -q "master forgot this worker" ||
    fail "the master declared the worker lost: $(tail -c +$((log_size + 1)) "$WORK/worker.err")"
alive || fail "the worker is not alive: $(sluice workers)"
echo "PASS master restart"
