#!/usr/bin/env bash
# The Kafka source through kill -9 and a rescaled resume (docs/kafka.md):
# kcat produces a self-checking keyed event stream (per-key sequence
# numbers, event times) into a 4-partition topic; a master and three
# workers run kafkarec/job.yaml (unbounded Kafka source, checkpoints every
# 300 ms, per-key event-time windows into the exactly-once file sink).
# While it reads, a worker running its tasks is killed with SIGKILL twice
# (after checkpoints completed) and more records are produced. Once it
# caught up (lag 0) its group holds the end offsets (commits on checkpoint
# completion); it is stopped with a savepoint. Then bogus offsets (0) are
# committed to the group, more records produced, and the job resumed from
# the savepoint at parallelism 3 with `bounded: true` (and
# `start: committed`, which a restore must ignore): it reads exactly the
# records produced after the savepoint and finishes. The windows must equal
# those computed from the produced events: nothing lost, nothing twice.
# Before that resume, the savepoint resumed against an empty cluster fails
# naming the topic, partition and offset it cannot find.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?}" "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/kafkarec
DEVK="$BUILD/tools/sluice-dev-kafka"
GROUPTOOL="$BUILD/tools/kafka-group"
[ -x "$DEVK" ] && [ -x "$GROUPTOOL" ] || fail "$DEVK or $GROUPTOOL is not built"
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"

step "start a dev broker (topic ev:4), a master and three workers"
"$DEVK" --brokers 3 --topic ev:4 --no-stdin --port-file "$WORK/boot" </dev/null \
    >"$WORK/dk.out" 2>"$WORK/dk.err" &
PIDS+=("$!")
wait_for 10 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 1000 --state-dir "$WORK/state" \
    >"$WORK/master.out" 2>"$WORK/master.err" &
MASTER_PID=$!
PIDS+=("$MASTER_PID")
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

TOTAL=0
# produce COUNT: the next COUNT events, keyed (kcat's partitioner spreads the keys)
produce() {
    python3 "$DIR/events.py" gen "$TOTAL" "$1" | kcat -P -b "$BOOT" -t ev -K '|' 2>"$WORK/kcat.err" ||
        fail "kcat produce: $(cat "$WORK/kcat.err")"
    TOTAL=$((TOTAL + $1))
}
# ends: the topic's end offsets, "P OFFSET" per line
ends() {
    for p in 0 1 2 3; do
        echo "$p $(kcat -Q -b "$BOOT" -t "ev:$p:-1" 2>/dev/null | awk '{ print $NF }')"
    done
}

GROUP="rec-$$-$RANDOM"
step "produce 4000 events, submit the unbounded job (500 records/s per subtask)"
produce 4000
sluice submit "$DIR/job.yaml" --detach -p bootstrap="$BOOT" -p group="$GROUP" \
    -p out="$WORK/windows.csv" >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
status() { sluice status --json "$JOB"; }
field() { status | grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2 | tr -d '"'; }
checkpoints_at_least() { [ "$(field checkpoints)" -ge "$1" ]; }
running_attempt() {
    local st
    st=$(status)
    [ "$(echo "$st" | grep -o '"state":"[A-Z]*"' | head -n 1)" = '"state":"RUNNING"' ] &&
        [ "$(echo "$st" | grep -o '"attempt":[0-9]*' | cut -d: -f2)" -ge "$1" ]
}
wait_for 60 checkpoints_at_least 2 || fail "no two checkpoints completed: $(sluice status "$JOB")"

for k in 1 2; do
    mapfile -t busy < <(status | grep -o '"worker":"[^"]*"' | cut -d'"' -f4 | sort -u)
    victim=${busy[$((RANDOM % ${#busy[@]}))]}
    before=$(field checkpoints)
    attempt=$(field attempt)
    step "kill $k: kill -9 $victim (attempt $attempt, $before checkpoints, lag $(field lag))"
    eval "kill -9 \$PID_$victim"
    start_worker "$victim"
    produce 3000
    wait_for 60 running_attempt $((attempt + 1)) ||
        fail "the job did not restart after killing $victim: $(sluice status "$JOB")"
    wait_for 60 checkpoints_at_least $((before + 1)) ||
        fail "no checkpoint after the restart: $(sluice status "$JOB")"
done
status >"$WORK/st.json"
grep -q '"restored_from":[1-9]' "$WORK/st.json" || fail "the last attempt did not restore a checkpoint"

step "wait until the job caught up: lag 0, the group holds the end offsets"
caught_up() {
    local st
    st=$(status)
    [ "$(echo "$st" | grep -o '"name":"ev","records_in":[0-9]*,[^}]*"lag":[0-9]*' |
        grep -o '"lag":[0-9]*' | cut -d: -f2)" = 0 ]
}
wait_for 90 caught_up || fail "the job did not catch up: $(sluice status "$JOB")"
ends >"$WORK/ends"
committed() { [ "$("$GROUPTOOL" "$BOOT" "$GROUP" committed ev 4)" = "$(cat "$WORK/ends")" ]; }
wait_for 30 committed || fail "the group's offsets $("$GROUPTOOL" "$BOOT" "$GROUP" committed ev 4 | tr '\n' ' ') are not the end offsets $(tr '\n' ' ' <"$WORK/ends")"
# this attempt restarted from a checkpoint: it read less than everything
last_read=$(status | grep -o '"name":"ev","records_in":[0-9]*' | grep -o '[0-9]*$')
[ "$last_read" -lt "$TOTAL" ] || fail "the last attempt read $last_read of $TOTAL records: not restored?"

step "stop with a savepoint; commit bogus offsets (0) to the group; produce 2000 more"
sluice stop "$JOB" --savepoint --dir "$WORK/sp" >"$WORK/sp.path" || fail "stop: $(cat "$WORK/stderr")"
SP=$(tail -n 1 "$WORK/sp.path")
[ -d "$SP" ] || fail "no savepoint directory: $(cat "$WORK/sp.path")"
"$GROUPTOOL" "$BOOT" "$GROUP" commit ev 0=0 1=0 2=0 3=0 || fail "commit bogus offsets"
[ "$("$GROUPTOOL" "$BOOT" "$GROUP" committed ev 4 | awk '{ s += $2 } END { print s }')" = 0 ] ||
    fail "the bogus offsets were not committed"
AT_STOP=$TOTAL
produce 2000

# (before the resume below: a job resumed into the same output path
# publishes the savepoint's staged parts, which this one copies)
step "the savepoint against an empty cluster: its offsets are not there, the job fails naming them"
"$DEVK" --brokers 1 --topic ev:4 --no-stdin --port-file "$WORK/boot2" </dev/null >/dev/null 2>&1 &
PIDS+=("$!")
wait_for 10 test -s "$WORK/boot2" || fail "the second dev broker did not start"
BOOT2=$(sed -n 's/^bootstrap=//p' "$WORK/boot2")
sluice submit "$DIR/job.yaml" --detach --from-savepoint "$SP" -p bootstrap="$BOOT2" -p attempts=0 \
    -p group="$GROUP" -p out="$WORK/empty.csv" >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
failed() { [ "$(field state)" = FAILED ]; }
wait_for 60 failed || fail "the job did not fail: $(sluice status "$JOB")"
status | grep -q "topic 'ev' partition [0-3] has no offset [1-9][0-9]* (restored from the checkpoint): it holds offsets 0 to -1" ||
    fail "no clear error for offsets the cluster does not have: $(sluice status "$JOB")"
step "resume from the savepoint at parallelism 3, bounded: reads only what came after"
sluice submit "$DIR/job.yaml" --detach --parallelism 3 --from-savepoint "$SP" -p bootstrap="$BOOT" \
    -p group="$GROUP" -p out="$WORK/windows.csv" -p bounded=true >"$WORK/job" ||
    fail "resume: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
finished() { [ "$(field state)" = FINISHED ]; }
wait_for 90 finished || fail "the resumed job did not finish: $(sluice status "$JOB")"
status >"$WORK/final.json"
read_after=$(grep -o '"name":"ev","records_in":[0-9]*' "$WORK/final.json" | grep -o '[0-9]*$')
[ "$read_after" -eq $((TOTAL - AT_STOP)) ] ||
    fail "the resumed job read $read_after records, expected the $((TOTAL - AT_STOP)) produced after the savepoint (the bogus group offsets would give $TOTAL)"

step "the windows equal those of the $TOTAL events: nothing lost, nothing twice"
python3 "$DIR/events.py" check "$TOTAL" "$WORK/windows.csv" >"$WORK/check.out" ||
    fail "windows differ: $(head -n 20 "$WORK/check.out")"
cat "$WORK/check.out"
step "stop the workers and the master: no leak, no sanitizer report"
for id in w1 w2 w3; do eval "kill -TERM \$PID_$id"; done
kill -TERM "$MASTER_PID"
for p in "$PID_w1" "$PID_w2" "$PID_w3" "$MASTER_PID"; do
    wait_for 60 eval '! kill -0 '"$p"' 2>/dev/null' || fail "process $p did not stop on SIGTERM"
done
for f in "$WORK"/w*.err "$WORK/master.err"; do
    grep -q Sanitizer "$f" && fail "sanitizer report in $f: $(head -n 30 "$f")"
done
echo "PASS"
