#!/usr/bin/env bash
# Cluster mode: sluice-master and two sluice-worker processes over TCP on
# loopback, driven by the CLI. A job runs across both workers and its result
# is exact; a job blocked on its sink is canceled; kill -9 of a worker fails
# its job with the reason; the CLI names its errors.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until "$@" succeeds, polling, for at most $1 seconds.
wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

step "start a master on an ephemeral port"
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 3000 \
    >"$WORK/master.out" 2>"$WORK/master.err" &
MASTER_PID=$!
PIDS+=("$MASTER_PID")
wait_for 10 grep -q "listening on" "$WORK/master.out" || fail "master did not start"
EP=$(sed -n 's/.*listening on //p' "$WORK/master.out")
export SLUICE_MASTER=$EP

# The workers' stdout (where stdout sinks write) is a FIFO nobody reads: a
# job with a stdout sink blocks once the pipe is full.
mkfifo "$WORK/fifo"
exec 7<>"$WORK/fifo"
for id in w1 w2; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 2 --data-bind tcp://127.0.0.1 \
        >"$WORK/fifo" 2>"$WORK/$id.err" &
    PIDS+=($!)
    eval "PID_$id=$!"
done
alive_workers() {
    [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq "$1" ]
}
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"

step "word count across two worker processes"
awk 'BEGIN { srand(3); for (i = 0; i < 40000; i++) { printf "w%d%s", int(3000 * rand() * rand()), (i % 11 == 10) ? "\n" : " " } print "" }' > "$WORK/text.txt"
tr -s '[:space:]' '\n' < "$WORK/text.txt" | sed '/^$/d' | sort | uniq -c |
    awk '{ print $2 "," $1 }' | sort > "$WORK/expected.csv"
sluice submit "$SRC/jobs/wordcount.yaml" --parallelism 4 --quiet \
    --param input="$WORK/text.txt" --param output="$WORK/out.csv" ||
    { cat "$WORK/stderr"; fail "submit failed"; }
tail -n +2 "$WORK/out.csv" | sort > "$WORK/got.csv"
cmp -s "$WORK/expected.csv" "$WORK/got.csv" || fail "cluster word count differs"
sluice list | grep -E "^job-0001 +wordcount +FINISHED" >/dev/null || fail "list: $(sluice list)"
sluice status job-0001 > "$WORK/status.txt"
grep -q "w1" "$WORK/status.txt" && grep -q "w2" "$WORK/status.txt" ||
    fail "the job did not use both workers: $(cat "$WORK/status.txt")"

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
kill -9 "$PID_w2"
wait_for 20 state_is "$JOB" FAILED || fail "$JOB did not fail: $(sluice status "$JOB")"
sluice status "$JOB" | grep -q "worker w2 lost: no heartbeat" ||
    fail "no reason given: $(sluice status "$JOB")"
sluice workers | grep -E "^w2 .*dead" >/dev/null || fail "w2 not shown dead: $(sluice workers)"

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

step "the master and the last worker stop cleanly on SIGTERM"
kill -TERM "$PID_w1" "$MASTER_PID"
wait_for 20 sh -c "! kill -0 $PID_w1 2>/dev/null && ! kill -0 $MASTER_PID 2>/dev/null" ||
    fail "daemons did not stop"
grep -q "Sanitizer" "$WORK/master.err" "$WORK/w1.err" && fail "sanitizer report from a daemon"
echo "PASS cluster"
