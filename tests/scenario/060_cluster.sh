#!/usr/bin/env bash
# Cluster mode: sluice-master and three sluice-worker processes over TCP on
# loopback, driven by the CLI and checked through its --json output. A job
# runs across the workers and its result is exact; a streaming job stops
# within a second of `sluice cancel` and frees its slots; a job blocked on
# its sink is canceled; kill -9 of a worker fails its job with the reason and
# the survivors run the next job; the CLI names its errors.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"



step "start a master on an ephemeral port"
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 3000 \
    >"$WORK/master.out" 2>"$WORK/master.err" &
MASTER_PID=$!
PIDS+=("$MASTER_PID")
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
EP=$(sed -n 's/.*listening on //p' "$WORK/master.out")
export SLUICE_MASTER=$EP

# The workers' stdout (where stdout sinks write) is a FIFO nobody reads: a
# job with a stdout sink blocks once the pipe is full.
mkfifo "$WORK/fifo"
exec 7<>"$WORK/fifo"
for id in w1 w2 w3; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 2 --data-bind tcp://127.0.0.1 \
        >"$WORK/fifo" 2>"$WORK/$id.err" &
    PIDS+=($!)
    eval "PID_$id=$!"
done
alive_workers() {
    [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq "$1" ]
}
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

# json EXPR: evaluates a Python expression over the JSON on stdin (bound to j).
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

step "word count at parallelism 4 across three worker processes"
awk 'BEGIN { srand(3); for (i = 0; i < 40000; i++) { printf "w%d%s", int(3000 * rand() * rand()), (i % 11 == 10) ? "\n" : " " } print "" }' > "$WORK/text.txt"
tr -s '[:space:]' '\n' < "$WORK/text.txt" | sed '/^$/d' | sort | uniq -c |
    awk '{ print $2 "," $1 }' | sort > "$WORK/expected.csv"
sluice submit "$SRC/jobs/wordcount.yaml" --parallelism 4 --quiet \
    --param input="$WORK/text.txt" --param output="$WORK/out.csv" ||
    { cat "$WORK/stderr"; fail "submit failed"; }
tail -n +2 "$WORK/out.csv" | sort > "$WORK/got.csv"
cmp -s "$WORK/expected.csv" "$WORK/got.csv" || fail "cluster word count differs"
sluice list --json > "$WORK/list.json"
[ "$(json '[(x["id"], x["name"], x["state"]) for x in j]' < "$WORK/list.json")" = \
    "[('job-0001', 'wordcount', 'FINISHED')]" ] || fail "list: $(cat "$WORK/list.json")"
sluice status --json job-0001 > "$WORK/status.json"
[ "$(json 'sorted(set(t["state"] for t in j["tasks"]))' < "$WORK/status.json")" = "['FINISHED']" ] ||
    fail "not every task finished: $(cat "$WORK/status.json")"
[ "$(json 'len(set(t["worker"] for t in j["tasks"]))' < "$WORK/status.json")" -eq 3 ] ||
    fail "the job did not spread over the three workers: $(cat "$WORK/status.json")"
lines=$(wc -l < "$WORK/text.txt")
[ "$(json '[o["records_out"] for o in j["operators"] if o["name"] == "lines"][0]' \
    < "$WORK/status.json")" -eq "$lines" ] || fail "status does not count the $lines lines read"
[ "$(json '[o["records_in"] for o in j["operators"] if o["name"] == "out"][0]' \
    < "$WORK/status.json")" -eq "$(wc -l < "$WORK/expected.csv")" ] || fail "sink count wrong"
[ "$(sluice workers --json | json 'sum(w["slots_used"] for w in j)')" -eq 0 ] ||
    fail "slots still used after the job ended"

step "a streaming job runs until canceled, then stops within a second"
cat > "$WORK/stream.yaml" <<'YAML'
name: stream
parallelism: 2
sources:
  - { name: ticks, type: generator, rate: 2000 }
operators:
  - { name: even, type: filter, input: ticks, where: seq % 2 = 0 }
sinks:
  - { name: out, type: file, format: csv, input: even, path: "${output}" }
YAML
JOB=$(sluice submit "$WORK/stream.yaml" --detach --param output="$WORK/stream.csv")
progressing() {
    [ "$(sluice status --json "$1" | json '[o["records_in"] for o in j["operators"] if o["name"] == "out"][0]')" -gt 500 ]
}
wait_for 30 progressing "$JOB" || fail "the stream made no progress: $(sluice status "$JOB")"
all_tasks_ended() {
    sluice status --json "$1" > "$WORK/st.json"
    ! grep -Eq '"state":"(RUNNING|DEPLOYING|DEPLOYED)"' "$WORK/st.json"
}
sluice cancel "$JOB" >/dev/null || fail "cancel failed"
wait_for 10 all_tasks_ended "$JOB" || fail "tasks still running: $(sluice status "$JOB")"
[ "$(json 'sorted(set(t["state"] for t in j["tasks"]))' < "$WORK/st.json")" = "['CANCELED']" ] ||
    fail "tasks ended otherwise: $(cat "$WORK/st.json")"
# Measured on the master's clock: from the cancel (the job's end) to the
# last task's final report, free of the CLI's own start-up time.
ms=$(json 'max(t["end_ms"] for t in j["tasks"]) - j["end_ms"]' < "$WORK/st.json")
echo "   every task of the stream stopped ${ms} ms after the cancel"
[ "$ms" -le 1000 ] || fail "tasks took ${ms} ms to stop"
[ "$(sluice workers --json | json 'sum(w["slots_used"] for w in j)')" -eq 0 ] ||
    fail "the stream's slots were not freed"
[ ! -e "$WORK/stream.csv" ] || fail "a canceled job published its output"

seq 1 3000000 > "$WORK/numbers.txt"
cat > "$WORK/to-stdout.yaml" <<'YAML'
name: to-stdout
parallelism: 2
sources:
  - { name: nums, type: file, format: text, path: "${input}" }
sinks:
  - { name: out, type: stdout, input: nums }
YAML
state_is() { sluice status --json "$1" | grep -q "\"state\":\"$2\""; }

step "cancel a job blocked on its sink"
JOB=$(sluice submit "$WORK/to-stdout.yaml" --detach --param input="$WORK/numbers.txt") ||
    fail "detached submit failed: $(cat "$WORK/stderr")"
wait_for 20 state_is "$JOB" RUNNING || fail "$JOB never ran: $(sluice status "$JOB")"
sluice cancel "$JOB" | grep -q "canceled $JOB" || fail "cancel did not confirm"
wait_for 20 state_is "$JOB" CANCELED || fail "$JOB not canceled: $(sluice status "$JOB")"
# Its slots come back.
wait_for 20 sh -c "! \"$SLUICE\" workers | grep -Eq ' [1-9] +2 '" || fail "slots not freed"

step "kill -9 of a worker fails its running job with the reason"
JOB=$(sluice submit "$WORK/to-stdout.yaml" --detach --param input="$WORK/numbers.txt")
wait_for 20 state_is "$JOB" RUNNING || fail "$JOB never ran"
VICTIM=$(sluice status --json "$JOB" | json '[t["worker"] for t in j["tasks"] if t["task"] == "0.0"][0]')
eval "VICTIM_PID=\$PID_$VICTIM"
kill -9 "$VICTIM_PID"
t0=$SECONDS
wait_for 20 state_is "$JOB" FAILED || fail "$JOB did not fail: $(sluice status "$JOB")"
echo "   failed $((SECONDS - t0)) s after the kill (heartbeat timeout 3 s)"
sluice status "$JOB" | grep -q "worker $VICTIM lost: no heartbeat for 3000 ms" ||
    fail "no reason given: $(sluice status "$JOB")"
[ "$(sluice workers --json | json '[w["alive"] for w in j if w["id"] == "'"$VICTIM"'"][0]')" = False ] ||
    fail "$VICTIM not shown dead: $(sluice workers)"
[ "$(sluice workers --json | json 'sum(w["slots_used"] for w in j if w["alive"])')" -eq 0 ] ||
    fail "the survivors' slots were not freed: $(sluice workers)"

step "the survivors run the next job"
sluice submit "$SRC/jobs/wordcount.yaml" --parallelism 4 --quiet \
    --param input="$WORK/text.txt" --param output="$WORK/out2.csv" ||
    { cat "$WORK/stderr"; fail "a job on the survivors failed"; }
tail -n +2 "$WORK/out2.csv" | sort | cmp -s "$WORK/expected.csv" - || fail "survivors' result differs"

step "errors name their cause"
rc=0
sluice status job-9999 || rc=$?
[ $rc -eq 1 ] && grep -q "job 'job-9999' not found" "$WORK/stderr" || fail "unknown job: rc=$rc"
rc=0
sluice list --master tcp://127.0.0.1:1 --timeout 300 || rc=$?
[ $rc -eq 1 ] && grep -q "did not answer within 300 ms" "$WORK/stderr" || fail "unreachable: rc=$rc"
rc=0
sluice submit "$SRC/tests/data/specs/bad/plan_filter_not_bool.yaml" || rc=$?
[ $rc -eq 1 ] && grep -q "plan_filter_not_bool.yaml:16:12:" "$WORK/stderr" || fail "bad spec: rc=$rc"

step "a worker stopped with SIGTERM fails its job at once, not after the heartbeat timeout"
JOB=$(sluice submit "$WORK/to-stdout.yaml" --detach --param input="$WORK/numbers.txt")
wait_for 20 state_is "$JOB" RUNNING || fail "$JOB never ran"
LEAVER=$(sluice status --json "$JOB" | json '[t["worker"] for t in j["tasks"] if t["task"] == "0.0"][0]')
eval "LEAVER_PID=\$PID_$LEAVER"
kill -TERM "$LEAVER_PID"
wait_for 2 state_is "$JOB" FAILED || fail "$JOB still $(sluice status "$JOB")"
sluice status "$JOB" | grep -q "canceled by worker $LEAVER (the worker is stopping)" ||
    fail "no reason given: $(sluice status "$JOB")"

step "the master and the remaining workers stop cleanly on SIGTERM"
REMAINING=""
for id in w1 w2 w3; do
    p=$(eval echo \$PID_$id)
    ! kill -0 "$p" 2>/dev/null || REMAINING="$REMAINING $p"
done
kill -TERM $REMAINING "$MASTER_PID"
for p in $REMAINING $LEAVER_PID $MASTER_PID; do
    wait_for 20 sh -c "! kill -0 $p 2>/dev/null" || fail "process $p did not stop"
done
if grep -l "Sanitizer" "$WORK"/*.err; then fail "sanitizer report from a daemon"; fi
echo "PASS cluster"
