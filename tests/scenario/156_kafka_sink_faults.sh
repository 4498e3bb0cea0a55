#!/usr/bin/env bash
# The Kafka sink under broker faults and at-least-once (docs/kafka.md
# "Kafka sink"). Exactly-once run: through the dev broker's control channel
# the test pushes retriable Produce and AddPartitionsToTxn errors (retried:
# the job goes on), takes a broker down for two seconds, and pushes a
# non-retriable Produce error into a transaction (it must be aborted and
# the job restarts from its checkpoint); the journal oracle must still hold.
# At-least-once run: a worker is killed with SIGKILL mid-run; nothing may
# be lost (duplicates are counted and allowed).
# The faults of the exactly-once run need it running (each one's effect is
# seen in its checkpoints or its restart), one after another: its input is
# 1.5 times the at-least-once run's, so that a loaded machine, where every
# status call takes seconds, still gets them all in before its end.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${BUILD:?}"
DIR=$SRC/tests/scenario/kafka
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
COUNT=${KFAULT_COUNT:-720000} # 18 s at the rate (at-least-once)
RATE=${KFAULT_RATE:-40000}
EO_COUNT=${KFAULT_EO_COUNT:-$((COUNT * 3 / 2))}

step "start the dev broker with a control FIFO, a master and two workers"
start_devk --brokers 3 --topic eo:3 --topic alo:3

HB=3000 # --heartbeat-timeout, ms: a loaded machine must not lose a worker (a restart the steps do not expect)
start_local_master
start_worker w1
start_worker w2
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
python3 "$DIR/verify.py" want "$EO_COUNT" "$RATE" "$WORK/want-eo"
python3 "$DIR/verify.py" want "$COUNT" "$RATE" "$WORK/want"

step "exactly-once: submit $EO_COUNT records at $RATE/s"
sluice submit "$DIR/chaos.yaml" --detach -p count="$EO_COUNT" -p rate="$RATE" -p bootstrap="$BOOT" \
    -p topic=eo -p delivery=exactly-once -p journal="$WORK/journal" >"$WORK/job" ||
    { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
wait_for 60 checkpoints_at_least 2 || fail "no two checkpoints: $(sluice status "$JOB")"

step "retriable errors on Produce and AddPartitionsToTxn: retried, the job goes on"
rides_through 2 "Produce NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT,NOT_LEADER_FOR_PARTITION" \
    "AddPartitionsToTxn CONCURRENT_TRANSACTIONS,COORDINATOR_LOAD_IN_PROGRESS"

step "a non-retriable Produce error inside a transaction: aborted, restart from the checkpoint"
restarts_on Produce TOPIC_AUTHORIZATION_FAILED "aborted|not delivered"
step "a broker down for 2 s: the job rides it out"
ctl broker down 2
sleep 2
ctl broker up 2
before=$(job_field checkpoints)
# two checkpoints after it came back, or (a slow machine: the input ran out
# meanwhile) the job finished; either way, not FAILED
rode_out() { checkpoints_at_least $((before + 2)) || job_finished; }
wait_for 60 rode_out || fail "no checkpoints after the broker came back: $(sluice status "$JOB")"

wait_for 120 job_finished || fail "the job did not finish: $(sluice status "$JOB")"

kafka_read eo "$WORK/got-eo"
res=$(python3 "$DIR/verify.py" check "$WORK/want-eo" "$WORK/got-eo" --journal "$WORK/journal") ||
    fail "not exactly once under broker faults: $res"
echo "exactly-once: $res (attempts $(job_field attempt))"

step "at-least-once: kill -9 a worker mid-run; nothing lost"
sed -e '/commit_proof:/d' -e '/journal:/d' "$DIR/chaos.yaml" >"$WORK/alo.yaml"
sluice submit "$WORK/alo.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p bootstrap="$BOOT" \
    -p topic=alo -p delivery=at-least-once >"$WORK/job" ||
    { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
wait_for 60 checkpoints_at_least 3 || fail "no three checkpoints: $(sluice status "$JOB")"
running_attempt_at_least 1 || fail "the job is not running: $(sluice status "$JOB")"
victim=w$((RANDOM % 2 + 1))
echo "kill -9 $victim"
eval "kill -9 \$PID_$victim"
wait "$(eval echo "\$PID_$victim")" 2>/dev/null || true
start_worker "$victim"
wait_for 60 running_attempt_at_least 2 || fail "the job did not restart: $(sluice status "$JOB")"
wait_for 120 job_finished || fail "the job did not finish: $(sluice status "$JOB")"
kafka_read alo "$WORK/got-alo"
res=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got-alo" --at-least-once) ||
    fail "records lost at-least-once: $res"
echo "at-least-once: $res"
no_sanitizer_reports
echo "PASS the Kafka sink under broker faults and at-least-once"
