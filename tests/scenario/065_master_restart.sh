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
echo "PASS master restart"
