#!/usr/bin/env bash
# Exactly-once into Kafka through kill -9 (docs/kafka.md "Kafka sink"): a
# master and three workers run kafka/chaos.yaml (a keyed window over a
# paced generator, checkpointed every 500 ms) into the development broker
# with delivery: exactly-once and commit_proof: journal. Workers die by
# failpoints at the two steps that matter: between a checkpoint's
# completion and commit_transaction (kafka-sink-before-commit: the epoch
# is re-produced on restore) and just after the commit but before the
# journal line (kafka-sink-after-commit: it looks aborted to sink and
# oracle alike, and is re-produced); random workers are killed with
# SIGKILL too. The topic is read back with kcat (headers included) and
# checked by kafka/verify.py against the closed-form result, counting only
# journaled transactions: nothing lost, nothing duplicated.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${BUILD:?}"
DIR=$SRC/tests/scenario/kafka
DEVK="$BUILD/tools/sluice-dev-kafka"
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
COUNT=${KCHAOS_COUNT:-600000}
RATE=${KCHAOS_RATE:-40000}

step "start the dev broker (topic out: 3 partitions) and a cluster of three workers"
"$DEVK" --brokers 3 --topic out:3 --no-stdin --port-file "$WORK/boot" </dev/null \
    >"$WORK/dk.out" 2>"$WORK/dk.err" &
PIDS+=("$!")
wait_for 10 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 1000 --state-dir "$WORK/state" \
    >>"$WORK/master.out" 2>>"$WORK/master.err" &
PIDS+=("$!")
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
# (different counts: two failpoints reached in the same checkpoint would
# make one failure)
start_worker w1 kafka-sink-before-commit:3
start_worker w2 kafka-sink-after-commit:6
start_worker w3 kafka-sink-before-commit:9
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

python3 "$DIR/verify.py" want "$COUNT" "$RATE" "$WORK/want"

step "submit: $COUNT records at $RATE/s, exactly-once into topic out"
sluice submit "$DIR/chaos.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p bootstrap="$BOOT" \
    -p topic=out -p delivery=exactly-once -p journal="$WORK/journal" >"$WORK/job" ||
    { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
status() { sluice status --json "$JOB"; }
field() { status | grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2 | tr -d '"'; }
checkpoints_at_least() { [ "$(field checkpoints)" -ge "$1" ]; }
wait_for 60 checkpoints_at_least 2 || fail "no two checkpoints completed: $(sluice status "$JOB")"

step "chaos: failpoints around commit_transaction, and kill -9 of random workers"
kills=0
next_kill=$((SECONDS + 3))
deadline=$((SECONDS + 150))
while [ "$(field state)" != FINISHED ]; do
    [ $SECONDS -lt $deadline ] || fail "the job did not finish: $(sluice status "$JOB")"
    st=$(field state)
    [ "$st" != FAILED ] || fail "the job failed: $(sluice status "$JOB")"
    # the other failpoint next, until both fired
    restart_dead_workers kafka-sink-before-commit:2 kafka-sink-after-commit:2
    if [ "$kills" -lt 2 ] && [ $SECONDS -ge $next_kill ] && [ "$(field checkpoints)" -ge 2 ] &&
        [ "$st" = RUNNING ]; then
        # a worker that runs tasks of the job: killing one without any would
        # not fail it
        mapfile -t ws < <(job_workers "$JOB")
        if [ "${#ws[@]}" -gt 0 ]; then
            victim=${ws[$((RANDOM % ${#ws[@]}))]}
            echo "chaos: kill -9 $victim (attempt $(field attempt))"
            # (it may have just ended at its failpoint: not an error)
            eval "kill -9 \$PID_$victim" 2>/dev/null || true
            kills=$((kills + 1))
            next_kill=$((SECONDS + 4))
        fi
    fi
    sleep 0.2
done
status >"$WORK/final.json"
attempt=$(field attempt)
echo "attempts: $attempt; failpoints before-commit $(fp_fired kafka-sink-before-commit)," \
    "after-commit $(fp_fired kafka-sink-after-commit); random kills $kills"
[ "$(fp_fired kafka-sink-before-commit)" -ge 1 ] || fail "failpoint kafka-sink-before-commit never fired"
[ "$(fp_fired kafka-sink-after-commit)" -ge 1 ] || fail "failpoint kafka-sink-after-commit never fired"
# (each failpoint and each kill fails an attempt, unless two land in the
# same one or a kill comes as the job ends: at least one more than the
# failpoints alone is a safe floor)
[ "$attempt" -ge 3 ] || fail "expected at least 3 attempts, got $attempt: $(cat "$WORK/final.json")"
grep -q "re-producing" "$WORK"/w?.err || fail "no restore re-produced an uncommitted epoch"
! grep -q "Sanitizer" "$WORK"/w?.err "$WORK/master.err" || fail "sanitizer report in a daemon's log"

step "read the topic back with kcat and check it against the journal"
kafka_read out "$WORK/got"
res=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got" --journal "$WORK/journal") ||
    fail "not exactly once: $res"
echo "$res"
# the journal filter is needed: the broker kept records of aborted attempts
all=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got" --at-least-once) ||
    fail "records lost even before the journal filter: $all"
echo "without the journal: $all"
echo "$all" | grep -qv "duplicated 0 " || fail "the chaos left no aborted record: the filter was not exercised"
echo "PASS exactly-once into Kafka through $((attempt - 1)) failures"
