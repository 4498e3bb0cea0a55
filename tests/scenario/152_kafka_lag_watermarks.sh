#!/usr/bin/env bash
# The unbounded Kafka source's consumer lag and per-partition watermarks on
# a cluster (docs/kafka.md): a job reading a 2-partition topic slowly
# (`rate:`) reports lag 0 while the topic is empty, a lag that grows by what
# kcat produced, per partition, in `sluice status --json` and the text
# status, and 0 again once it caught up; its checkpoints commit the offsets
# to its group (read back with kafka-group). Then the watermark: with one
# partition far behind in event time the source's watermark is that
# partition's (the least), not the largest event time read; with an idle
# timeout the silent partition is left out and the watermark moves on.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?}" "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DEVK="$BUILD/tools/sluice-dev-kafka"
GROUPTOOL="$BUILD/tools/kafka-group"
[ -x "$DEVK" ] && [ -x "$GROUPTOOL" ] || fail "$DEVK or $GROUPTOOL is not built"
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"

step "start a dev broker (topics lag:2, wm:2), a master and a worker"
"$DEVK" --brokers 1 --topic lag:2 --topic wm:2 --topic wmi:2 --no-stdin \
    --port-file "$WORK/boot" </dev/null >"$WORK/dk.out" 2>"$WORK/dk.err" &
PIDS+=("$!")
wait_for 10 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 3000 --state-dir "$WORK/state" \
    >"$WORK/master.out" 2>"$WORK/master.err" &
MPID=$!
PIDS+=("$MPID")
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
"$SLUICE_WORKER_BIN" --id w1 --slots 4 --data-bind tcp://127.0.0.1 >"$WORK/w1.out" 2>"$WORK/w1.err" &
WPID=$!
PIDS+=("$WPID")
wait_for 20 eval '[ "$(sluice workers --json | grep -o "\"alive\":true" | wc -l)" -eq 1 ]' ||
    fail "the worker did not register"

GROUP="lag-$$-$RANDOM"
cat >"$WORK/lag.yaml" <<EOF
name: kafka-lag
parallelism: 1
checkpoint: { interval: 500ms }
sources:
  - name: src
    type: kafka
    bootstrap: "$BOOT"
    topic: lag
    format: json
    group: $GROUP
    rate: 200
    schema: [{ name: n, type: int64 }]
sinks:
  - { name: out, type: discard, input: src }
EOF
sluice submit "$WORK/lag.yaml" --detach >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
status() { sluice status --json "$JOB"; }
lag() { status | grep -o '"lag":[0-9-]*' | head -n 1 | cut -d: -f2; }
lag_is() { [ "$(lag)" = "$1" ]; }
wait_for 60 lag_is 0 || fail "no lag 0 reported for the empty topic: $(sluice status "$JOB")"

step "produce 1000 records to each partition: the lag grows by what was produced"
seq 1 1000 | awk '{ printf "{\"n\":%d}\n", $1 }' >"$WORK/lag.in"
kcat -P -b "$BOOT" -t lag -p 0 <"$WORK/lag.in" & # both at once
kcat -P -b "$BOOT" -t lag -p 1 <"$WORK/lag.in" || fail "kcat produce"
wait $! || fail "kcat produce"
# reading at 200 records/s, the lag right after the produce is close to 2000
max=0
lag_big() {
    local l
    l=$(lag)
    [ "${l:-0}" -gt "$max" ] && max=$l
    [ "$max" -ge 1000 ]
}
wait_for 30 lag_big || fail "the lag did not grow to 1000 or more (max $max): $(sluice status "$JOB")"
status >"$WORK/st.json"
grep -q '"lag_partitions":"lag/0=[0-9]* lag/1=[0-9]*"' "$WORK/st.json" ||
    fail "no lag per partition in the task's status: $(cat "$WORK/st.json")"
sluice status "$JOB" >"$WORK/st.txt"
grep -q "task 0.0 lag [0-9]*: lag/0=[0-9]* lag/1=[0-9]*" "$WORK/st.txt" ||
    fail "no lag in the text status: $(cat "$WORK/st.txt")"

step "the lag returns to 0 once the job caught up; the group holds the end offsets"
read_all() { [ "$(status | grep -o '"records_in":[0-9]*' | head -n 1 | cut -d: -f2)" = 2000 ]; }
wait_for 60 read_all || fail "the job did not read the 2000 records: $(sluice status "$JOB")"
wait_for 30 lag_is 0 || fail "the lag did not return to 0: $(sluice status "$JOB")"
committed() { [ "$("$GROUPTOOL" "$BOOT" "$GROUP" committed lag 2 | tr '\n' ' ')" = "0 1000 1 1000 " ]; }
wait_for 30 committed ||
    fail "the group's committed offsets are not the end offsets: $("$GROUPTOOL" "$BOOT" "$GROUP" committed lag 2 2>&1)"
sluice cancel "$JOB" || fail "cancel: $(cat "$WORK/stderr")"

# wmjob TOPIC IDLE: a job reading TOPIC with event time `ts` (no lateness
# allowed) and the given watermark idle timeout (0: none).
wmjob() {
    cat <<EOF
name: kafka-wm-$1
parallelism: 1
sources:
  - name: src
    type: kafka
    bootstrap: "$BOOT"
    topic: $1
    format: json
    group: wm-$$-$1
    schema: [{ name: ts, type: timestamp }, { name: v, type: int64 }]
    timestamp: ts
    watermark: { max_out_of_order: 0, interval: 0ms, idle_timeout: $2 }
sinks:
  - { name: out, type: discard, input: src }
EOF
}
T=1700000000000
# produce TOPIC: partition 1 gets event time T only; partition 0 goes to T+10 s
produce_wm() {
    echo "{\"ts\":$T,\"v\":1}" | kcat -P -b "$BOOT" -t "$1" -p 1 || fail "kcat produce"
    seq 0 10 | awk -v t=$T '{ printf "{\"ts\":%d,\"v\":%d}\n", t + $1 * 1000, $1 }' |
        kcat -P -b "$BOOT" -t "$1" -p 0 || fail "kcat produce"
}
wm() { sluice status --json "$1" | grep -o '"name":"src"[^}]*' | grep -o '"watermark":[0-9-]*' | cut -d: -f2; }

step "per-partition watermarks: the least partition holds the source's watermark back"
produce_wm wm
wmjob wm 0ms >"$WORK/wm.yaml"
sluice submit "$WORK/wm.yaml" --detach >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
WJOB=$(cat "$WORK/job")
# read_n JOB N: the source of JOB has read N records
read_n() { [ "$(sluice status --json "$1" | grep -o '"records_in":[0-9]*' | head -n 1 | cut -d: -f2)" = "$2" ]; }
wait_for 60 read_n "$WJOB" 12 || fail "the watermark job did not read its 12 records: $(sluice status "$WJOB")"
wm_is() { [ "$(wm "$1")" = "$2" ]; }
wait_for 20 wm_is "$WJOB" $((T - 1)) ||
    fail "watermark $(wm "$WJOB"), expected $((T - 1)) (partition 1's event time - 1)"
# it stays there while partition 0 moves on and partition 1 stays silent:
# two more batches to partition 0, each read before the next is produced
# (the watermark of the first was computed by the time the second is read)
for i in 11 12; do
    echo "{\"ts\":$((T + i * 1000)),\"v\":$i}" | kcat -P -b "$BOOT" -t wm -p 0 || fail "kcat produce"
    wait_for 60 read_n "$WJOB" $((i + 2)) || fail "the job did not read record $i: $(sluice status "$WJOB")"
done
wm_is "$WJOB" $((T - 1)) || fail "the watermark moved past the silent partition: $(wm "$WJOB")"
sluice cancel "$WJOB" || fail "cancel"

step "with an idle timeout the silent partition is left out"
produce_wm wmi
wmjob wmi 1s >"$WORK/wmi.yaml"
sluice submit "$WORK/wmi.yaml" --detach >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
IJOB=$(cat "$WORK/job")
wait_for 60 read_n "$IJOB" 12 || fail "the idle job did not read its 12 records: $(sluice status "$IJOB")"
# partition 0 goes on, a record a round (event time a second further each);
# partition 1 stays silent: once it was silent for the idle timeout it is
# left out, and the watermark passes its event time T
n=11
p0_goes_on() {
    echo "{\"ts\":$((T + n * 1000)),\"v\":$n}" | kcat -P -b "$BOOT" -t wmi -p 0 || fail "kcat produce"
    n=$((n + 1))
    [ "$(wm "$IJOB")" -ge $((T + 11000 - 1)) ]
}
wait_for 60 p0_goes_on ||
    fail "watermark $(wm "$IJOB"), expected $((T + 10999)) or more with partition 1 idle"
step "stop the worker (the job still running) and the master: no leak, no sanitizer report"
kill -TERM "$WPID"
wait_for 60 eval '! kill -0 "$WPID" 2>/dev/null' || fail "the worker did not stop on SIGTERM"
kill -TERM "$MPID"
wait_for 60 eval '! kill -0 "$MPID" 2>/dev/null' || fail "the master did not stop on SIGTERM"
if grep -q Sanitizer "$WORK/w1.err" "$WORK/master.err"; then
    cat "$WORK/w1.err" "$WORK/master.err" >&2
    fail "sanitizer report"
fi
echo "PASS"
