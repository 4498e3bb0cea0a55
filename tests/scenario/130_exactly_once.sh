#!/usr/bin/env bash
# Exactly-once through kill -9 (docs/fault-tolerance.md): a master and
# three worker processes run chaos/keyed.yaml (a keyed aggregation and a
# keyed event-time window over a paced generator, checkpointed every
# second). After at least two checkpoints completed, a chaos loop kills
# the master and starts it again on its state directory, then kills a
# random worker with SIGKILL at a random moment, several times, starting it
# again; the job restarts from its latest checkpoint each time. Its
# outputs must equal the closed-form results exactly: lost and duplicated
# records are counted separately.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=${CHAOS_COUNT:-3200000}
RATE=${CHAOS_RATE:-80000}
KILLS=${CHAOS_KILLS:-3}

json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

start_master() {
    "$SLUICE_MASTER_BIN" --bind "${1:-tcp://127.0.0.1:*}" --heartbeat-timeout 1000 \
        --state-dir "$WORK/state" >>"$WORK/master.out" 2>>"$WORK/master.err" &
    MASTER_PID=$!
    PIDS+=("$MASTER_PID")
}

step "start a master and three workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

keyed_want "$COUNT" "$RATE"

step "submit: $COUNT records at $RATE/s, checkpoints every second"
submit_keyed "$DIR/keyed.yaml" "" 2
# Polled often on a busy machine: plain text tools, no interpreter start-up.
status() { sluice status --json "$JOB"; }
# field NAME: the job-level field (the first of that name in the JSON)
field() { status | grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2 | tr -d '"'; }
checkpoints_at_least() { [ "$(field checkpoints)" -ge "$1" ]; }
running_attempt() {
    local st
    st=$(status)
    [ "$(echo "$st" | grep -o '"state":"[A-Z]*"' | head -n 1)" = '"state":"RUNNING"' ] &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | cut -d: -f2)" -ge "$1" ]
}

# restarted N: attempt N or later runs, or has already finished
restarted() {
    local st
    st=$(status)
    echo "$st" | grep -q '"state":"\(RUNNING\|FINISHED\)"' &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | cut -d: -f2)" -ge "$1" ]
}
checkpointed_or_done() { checkpoints_at_least "$1" || [ "$(field state)" = FINISHED ]; }

step "chaos: kill -9 the master, start it again on its state directory"
before=$(field checkpoints)
attempt=$(field attempt)
kill -9 "$MASTER_PID"
wait "$MASTER_PID" 2>/dev/null || true
start_master "$SLUICE_MASTER"
resumed() {
    local st
    st=$(status)
    echo "$st" | grep -q '"state":"\(RUNNING\|FINISHED\)"' &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | cut -d: -f2)" -gt "$attempt" ]
}
wait_for 60 resumed ||
    fail "the job did not resume after the master restart: $(sluice status "$JOB" 2>&1; tail -5 "$WORK/master.err")"
grep -q "resuming job $JOB" "$WORK/master.err" || fail "the master does not say it resumes $JOB"
wait_for 60 checkpoints_at_least $((before + 1)) ||
    fail "no checkpoint after the master restart: $(sluice status "$JOB")"
kills=1

# Records the source read in the current attempt (a lower bound of its
# position): the chaos loop stops killing near the end, where a kill may
# land after the job finished.
progress() {
    status | grep -o '"name":"gen","records_in":[0-9]*,"records_out":[0-9]*' | sed 's/.*://'
}
for k in $(seq 1 "$KILLS"); do
    if [ "$(progress)" -gt $((COUNT * 7 / 10)) ]; then
        echo "chaos $k: skipped, the job is near its end"
        break
    fi
    # a random worker among those running the job's tasks, while it runs
    status >"$WORK/chaos.json"
    mapfile -t busy < <(running_workers "$WORK/chaos.json")
    if [ ${#busy[@]} -eq 0 ]; then
        echo "chaos $k: skipped, the job no longer runs: $(jget state <"$WORK/chaos.json")"
        break
    fi
    victim=${busy[$((RANDOM % ${#busy[@]}))]}
    # a random moment: up to 900 ms into a checkpoint interval
    sleep "0.$((RANDOM % 9))"
    status >"$WORK/chaos.json" # (still running tasks of the running job?)
    before=$(jget checkpoints <"$WORK/chaos.json")
    attempt=$(jget attempt <"$WORK/chaos.json")
    if ! running_workers "$WORK/chaos.json" | grep -qx "$victim"; then
        echo "chaos $k: skipped, $victim no longer runs tasks of the running job"
        break
    fi
    step "chaos $k: kill -9 $victim (attempt $attempt, $before checkpoints)"
    eval "kill -9 \$PID_$victim"
    start_worker "$victim"
    # (on a slow machine the new attempt may already have finished; and the
    # job may have finished in the instant between the status and the kill)
    finished_in() { [ "$(field state)" = FINISHED ] && [ "$(field attempt)" -eq "$1" ]; }
    wait_for 60 eval "restarted $((attempt + 1)) || finished_in $attempt" ||
        fail "the job did not restart after killing $victim: $(sluice status "$JOB")"
    if finished_in "$attempt"; then
        echo "chaos $k: the job finished before the kill landed"
        break
    fi
    wait_for 60 checkpointed_or_done $((before + 1)) ||
        fail "no checkpoint after the restart: $(sluice status "$JOB")"
    kills=$((kills + 1))
done
[ "$kills" -ge 3 ] || fail "only $kills kills before the end: make the job longer (CHAOS_COUNT)"
KILLS=$kills

step "wait for the end"
finished() { [ "$(field state)" = FINISHED ]; }
wait_for 180 finished || fail "job did not finish: $(sluice status "$JOB")"
status > "$WORK/final.json"
[ "$(json 'j["attempt"]' < "$WORK/final.json")" -ge $((KILLS + 1)) ] ||
    fail "expected $((KILLS + 1)) attempts: $(cat "$WORK/final.json")"
[ "$(json 'j["restored_from"] > 0' < "$WORK/final.json")" = True ] ||
    fail "the last attempt did not restore a checkpoint"

keyed_exact
wait_for 20 test ! -e "$WORK/.totals.csv.sluice-staging" || fail "the sink's staging directory was left behind"
echo "PASS exactly-once through $KILLS kill -9"
