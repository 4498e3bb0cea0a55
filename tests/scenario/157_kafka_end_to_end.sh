#!/usr/bin/env bash
# Kafka in, Kafka out, with kcat at both ends (docs/kafka.md): kcat -P
# produces a generated stream of keyed JSON events with event timestamps
# (the Kafka key is the user) into topic events (4 partitions) of the dev
# broker; a master and two workers run kafka/e2e.yaml (bounded Kafka
# source, key: true -> tumbling event-time window per key -> Kafka sink,
# record key = the window key) at parallelism 1 and 2, at-least-once and
# exactly-once (commit_proof: journal); kcat -C -e reads each output topic
# back and kafka/e2e.py compares it, sorted, with the reference it computed
# from the produced input: every window exactly once, each record keyed by
# its window's key, and for exactly-once only journaled transactions, each
# complete.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${BUILD:?}"
DIR=$SRC/tests/scenario/kafka
DEVK="$BUILD/tools/sluice-dev-kafka"
[ -x "$DEVK" ] || fail "$DEVK is not built"
command -v kcat >/dev/null ||
    fail "kcat is not installed: this test needs it as an independent Kafka client (apt-get install kcat)"
N=${E2E_COUNT:-5000}
KEYS=20

step "start a master, the dev broker (events: 4 partitions; an output topic of 3 per run), two workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
"$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 2000 --state-dir "$WORK/state" \
    >>"$WORK/master.out" 2>>"$WORK/master.err" &
PIDS+=("$!")
"$DEVK" --brokers 3 --topic events:4 --topic out-alo-1:3 --topic out-alo-2:3 \
    --topic out-eo-1:3 --topic out-eo-2:3 --no-stdin --port-file "$WORK/boot" </dev/null \
    >"$WORK/dk.out" 2>"$WORK/dk.err" &
PIDS+=("$!")
wait_for 20 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")

wait_for 30 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 2 --data-bind tcp://127.0.0.1 \
        >>"$WORK/$id.out" 2>>"$WORK/$id.err" &
    PIDS+=($!)
done

step "kcat -P: $N keyed events ($KEYS keys) into topic events"
python3 "$DIR/e2e.py" gen "$N" "$KEYS" 5000 "$WORK/in.txt" "$WORK/want"
kcat -P -b "$BOOT" -t events -K '|' <"$WORK/in.txt" 2>"$WORK/kcat.err" ||
    fail "kcat -P: $(cat "$WORK/kcat.err")"
kcat -C -b "$BOOT" -t events -e -o beginning -f '%p\n' 2>"$WORK/kcat.err" | sort | uniq -c >"$WORK/parts" ||
    fail "kcat -C events: $(cat "$WORK/kcat.err")"
[ "$(awk '{ n += $1 } END { print n }' "$WORK/parts")" -eq "$N" ] ||
    fail "topic events holds $(awk '{ n += $1 } END { print n }' "$WORK/parts") records, not $N"
[ "$(wc -l <"$WORK/parts")" -ge 3 ] || fail "the keys went to fewer than 3 partitions: $(cat "$WORK/parts")"
echo "$(wc -l <"$WORK/want") windows expected"

wait_for 30 alive_workers 2 || fail "workers did not register: $(sluice workers)"

# the at-least-once spec: the same job without the commit proof
sed -e '/^ *commit_proof:/d' -e '/^ *journal:/d' "$DIR/e2e.yaml" >"$WORK/alo.yaml"
grep -q 'delivery:' "$WORK/alo.yaml" && ! grep -q 'journal' "$WORK/alo.yaml" ||
    fail "could not derive the at-least-once spec"

for mode in alo eo; do
    for par in 1 2; do
        topic=out-$mode-$par
        if [ $mode = alo ]; then
            spec=$WORK/alo.yaml delivery=at-least-once extra=()
        else
            spec=$DIR/e2e.yaml delivery=exactly-once extra=(-p journal="$WORK/journal-$par")
        fi
        step "$delivery at parallelism $par into topic $topic"
        timeout 120 "$SLUICE" submit "$spec" -p bootstrap="$BOOT" -p topic="$topic" \
            -p delivery="$delivery" --parallelism "$par" "${extra[@]}" \
            >"$WORK/submit-$topic.out" 2>"$WORK/submit-$topic.err" ||
            fail "the job did not finish: $(cat "$WORK/submit-$topic.err" "$WORK/submit-$topic.out")"
        ! grep -q "Sanitizer" "$WORK/submit-$topic.err" || fail "sanitizer report from sluice submit"
        kcat -C -b "$BOOT" -t "$topic" -e -o beginning -J >"$WORK/got-$topic" 2>"$WORK/kcat.err" ||
            fail "kcat -C $topic: $(cat "$WORK/kcat.err")"
        if [ $mode = alo ]; then
            res=$(python3 "$DIR/e2e.py" check "$WORK/want" "$WORK/got-$topic") ||
                fail "$topic differs from the reference: $res"
        else
            [ -s "$WORK/journal-$par" ] || fail "exactly-once at parallelism $par journaled nothing"
            # no failure, so nothing aborted: every record is of a journaled transaction
            res=$(python3 "$DIR/e2e.py" check "$WORK/want" "$WORK/got-$topic" \
                --journal "$WORK/journal-$par" --no-aborted) ||
                fail "$topic differs from the reference (journaled transactions): $res"
        fi
        echo "$topic: $res ($(grep -o 'FINISHED in [0-9.]* s' "$WORK/submit-$topic.err"))"
    done
done
! grep -q "Sanitizer" "$WORK"/w?.err "$WORK/master.err" || fail "sanitizer report in a daemon's log"
echo "PASS Kafka -> keyed event-time window -> Kafka, at-least-once and exactly-once, P=1 and P=2"
