#!/usr/bin/env bash
# The Kafka sink under injected transaction errors (docs/kafka.md "Kafka
# sink", "Transaction errors"). Through the dev broker's control channel
# (push-errors: the next requests of an API fail with these errors) a
# master and two workers run kafka/chaos.yaml exactly-once into topic eo:
#   - retriable errors: coordinator unavailable / not coordinator / loading
#     on EndTxn and AddPartitionsToTxn, and transport errors (the broker
#     drops the connection) on EndTxn, AddPartitionsToTxn and Produce: the
#     job rides through in its first attempt;
#   - fatal errors: PRODUCER_FENCED on EndTxn, INVALID_PRODUCER_EPOCH on
#     Produce: the task fails naming the sink, the topic and librdkafka's
#     error, the job restarts with a new producer, and the journal oracle
#     (kafka/verify.py) still finds every window exactly once.
# Then a fenced producer that stays fenced (EndTxn always PRODUCER_FENCED)
# outlasts `restart: attempts: 1`: the job FAILS with that message. Last,
# at-least-once with a refused record (TOPIC_AUTHORIZATION_FAILED on
# Produce): the job restarts and nothing is lost (a failed delivery met by
# a checkpoint barrier used to be forgotten once that checkpoint was
# declined, losing the records behind the next one).
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${BUILD:?}"
DIR=$SRC/tests/scenario/kafka
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
COUNT=${KTXN_COUNT:-800000}
RATE=${KTXN_RATE:-40000}
HB=1000

step "[${SECONDS} s] the dev broker with a control FIFO, a master and two workers"
start_devk --brokers 3 --topic eo:3 --topic fatal:3 --topic alo:3
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
start_worker w1
start_worker w2
python3 "$DIR/verify.py" want "$COUNT" "$RATE" "$WORK/want"
wait_for 30 alive_workers 2 || fail "workers did not register: $(sluice workers)"

# submit SPEC TOPIC DELIVERY [JOURNAL]
submit() {
    sluice submit "$1" --detach -p count="$COUNT" -p rate="$RATE" -p bootstrap="$BOOT" \
        -p topic="$2" -p delivery="$3" -p journal="${4:-$WORK/unused}" >"$WORK/job" ||
        { cat "$WORK/stderr" >&2; fail "submit"; }
    JOB=$(cat "$WORK/job")
}

step "[${SECONDS} s] exactly-once: submit $COUNT records at $RATE/s into topic eo"
submit "$DIR/chaos.yaml" eo exactly-once "$WORK/journal"
wait_for 60 checkpoints_at_least 2 || fail "no two checkpoints: $(sluice status "$JOB")"

step "[${SECONDS} s] retriable: coordinator errors and transport errors; the job rides through"
# each checkpoint ends a transaction per sink subtask (2 EndTxn, and new
# AddPartitionsToTxn and Produce requests): three are more than enough
rides_through 3 "EndTxn COORDINATOR_NOT_AVAILABLE,NOT_COORDINATOR,COORDINATOR_LOAD_IN_PROGRESS" \
    "AddPartitionsToTxn NOT_COORDINATOR,COORDINATOR_NOT_AVAILABLE" "EndTxn _TRANSPORT" \
    "AddPartitionsToTxn _TRANSPORT" "Produce _TRANSPORT,_TRANSPORT"

step "[${SECONDS} s] fenced on EndTxn (PRODUCER_FENCED): fatal, the job restarts with a new producer"
restarts_on EndTxn PRODUCER_FENCED \
    "^  failed .*sink 'out' \(topic 'eo'\): commit_transaction failed with a fatal error for transactional.id 'sluice\.kafka-chaos\.out\.[01]'.*fenced"
wait_for 60 checkpoints_at_least $(($(job_field checkpoints) + 1)) || fail "no checkpoint after the restart"

step "[${SECONDS} s] an old epoch on Produce (INVALID_PRODUCER_EPOCH): fatal, restart"
restarts_on Produce INVALID_PRODUCER_EPOCH "sink 'out'.*'eo'.*old epoch"

wait_for 120 job_finished || fail "the job did not finish: $(sluice status "$JOB")"
kafka_read eo "$WORK/got-eo"
res=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got-eo" --journal "$WORK/journal") ||
    fail "not exactly once under transaction errors: $res"
echo "exactly-once: $res (attempts $(job_field attempt))"
# the producers of the restarted attempts (new ones, fresh epochs) committed
[ "$(awk '$4 >= 3' "$WORK/journal" | wc -l)" -gt 0 ] ||
    fail "no transaction of attempt 3 or later was committed: $(tail -n 3 "$WORK/journal")"
sluice status "$JOB" | grep "^  failed" | cut -c1-200

step "[${SECONDS} s] a producer fenced on every commit outlasts restart attempts: 1; the job FAILS"
sed -e 's/attempts: 30/attempts: 1/' "$DIR/chaos.yaml" >"$WORK/once.yaml"
grep -q "attempts: 1," "$WORK/once.yaml" || fail "could not derive a spec with attempts: 1"
ctl push-errors EndTxn "$(printf 'PRODUCER_FENCED,%.0s' $(seq 1 30))PRODUCER_FENCED"
submit "$WORK/once.yaml" fatal exactly-once "$WORK/journal-fatal"
failed() {
    local st
    st=$(job_field state)
    [ "$st" != FINISHED ] || fail "the job finished although every commit was fenced"
    [ "$st" = FAILED ]
}
wait_for 90 failed || fail "the job did not fail: $(sluice status "$JOB")"
err=$(sluice status "$JOB" | sed -n 's/^  error: //p')
echo "error: $err"
grep -q "sink 'out' (topic 'fatal'): commit_transaction failed with a fatal error.*fenced" <<<"$err" ||
    fail "the job's error does not name the sink, the topic and librdkafka's error: $(sluice status "$JOB")"
ctl clear-errors EndTxn

step "[${SECONDS} s] at-least-once: a refused record restarts the job; nothing lost"
sed -e '/commit_proof:/d' -e '/journal:/d' "$DIR/chaos.yaml" >"$WORK/alo.yaml"
COUNT=240000
python3 "$DIR/verify.py" want "$COUNT" "$RATE" "$WORK/want-alo"
submit "$WORK/alo.yaml" alo at-least-once
wait_for 60 checkpoints_at_least 2 || fail "no two checkpoints: $(sluice status "$JOB")"
# (the refusal comes back in a delivery report, or from the produce call
# itself once librdkafka has marked the partition failed)
restarts_on Produce TOPIC_AUTHORIZATION_FAILED \
    "sink 'out': (a record to 'alo' was not delivered|cannot produce to 'alo' partition [0-9]+).*Topic authorization failed"
wait_for 120 job_finished || fail "the job did not finish: $(sluice status "$JOB")"
kafka_read alo "$WORK/got-alo"
res=$(python3 "$DIR/verify.py" check "$WORK/want-alo" "$WORK/got-alo" --at-least-once) ||
    fail "records lost at-least-once after a refused record: $res"
echo "at-least-once: $res"
! grep -q "Sanitizer" "$WORK"/w?.err "$WORK/master.err" || fail "sanitizer report in a daemon's log"
echo "PASS the Kafka sink's transaction errors: retried, restarted with a new producer, failed clearly ($SECONDS s)"
