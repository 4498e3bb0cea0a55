#!/usr/bin/env bash
# The Kafka broker of development and tests (tools/sluice-dev-kafka, see
# docs/kafka.md), cross-checked with kcat as an independent client: bad
# arguments exit 2; three mock brokers serve a 4-partition topic whose records
# read back exact per partition; broker down/up, round-trip delay and pushed
# request errors behave as documented; garbage on the control channel is
# answered and never fatal; quit, SIGTERM and EOF stop it cleanly (no
# sanitizer report). The CANARY asserts the mock's known transaction and
# timestamp gaps, so a librdkafka that closes one is noticed.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must name the build tree}"
DEVK="$BUILD/tools/sluice-dev-kafka"
CANARY="$BUILD/tools/kafka-canary"
[ -x "$DEVK" ] || fail "$DEVK is not built"
[ -x "$CANARY" ] || fail "$CANARY is not built"
command -v kcat >/dev/null ||
    fail "kcat is not installed: this test needs it as an independent Kafka client (apt-get install kcat; 'make test' installs it)"

# no_sanitizer FILE: fails when FILE holds a sanitizer report.
no_sanitizer() {
    if grep -q "Sanitizer" "$1"; then
        cat "$1" >&2
        fail "sanitizer report in $1"
    fi
}
# gone PID: true once PID has exited (a zombie counts as exited).
gone() {
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [ -z "$s" ] || [ "${s:0:1}" = Z ]
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

step "bad arguments exit 2 with a reason"
for args in "--brokers 0" "--brokers x" "--topic orders" "--topic bad/name:2" \
    "--topic t:0" "--topic t:2:4" "--topic t:1 --topic t:2" "--frobnicate" "--port-file"; do
    rc=0
    # shellcheck disable=SC2086
    "$DEVK" $args </dev/null >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
    [ "$rc" -eq 2 ] || fail "sluice-dev-kafka $args: exit $rc, expected 2"
    grep -q "sluice-dev-kafka: " "$WORK/bad.err" || fail "sluice-dev-kafka $args: no reason given"
    no_sanitizer "$WORK/bad.err"
done

step "start 3 mock brokers with a 4-partition topic"
mkfifo "$WORK/ctl"
exec 8<>"$WORK/ctl"
"$DEVK" --brokers 3 --topic orders:4 --topic canary:1 --port-file "$WORK/boot" \
    <"$WORK/ctl" >"$WORK/out" 2>"$WORK/err" &
DPID=$!
PIDS+=("$DPID")
wait_for 10 test -s "$WORK/boot" || fail "no --port-file: $(cat "$WORK/err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")
[ "$(head -1 "$WORK/out")" = "bootstrap=$BOOT" ] || fail "stdout does not start with the bootstrap line"
[ "$(tr ',' '\n' <<<"$BOOT" | grep -c '^127\.0\.0\.1:[0-9]*$')" -eq 3 ] ||
    fail "bootstrap is not 3 loopback brokers: $BOOT"

# ctl CMD...: sends a control command, waits for its answer, leaves it in ANSWER.
answers() { [ "$(grep -c -E '^(ok|error: )' "$WORK/out")" -ge "$1" ]; }
NANS=0
ctl() {
    NANS=$((NANS + 1))
    echo "$*" >&8
    wait_for 10 answers "$NANS" || fail "no answer to '$*'"
    ANSWER=$(grep -E '^(ok|error: )' "$WORK/out" | sed -n "${NANS}p")
}
expect_ok() {
    ctl "$@"
    [ "$ANSWER" = ok ] || fail "'$*' answered '$ANSWER'"
}

step "metadata through kcat: 3 brokers, 4 partitions"
kcat -L -b "$BOOT" -t orders -m 10 >"$WORK/meta" 2>&1 || fail "kcat -L: $(cat "$WORK/meta")"
grep -q " 3 brokers:" "$WORK/meta" || fail "not 3 brokers: $(cat "$WORK/meta")"
grep -q 'topic "orders" with 4 partitions' "$WORK/meta" || fail "not 4 partitions: $(cat "$WORK/meta")"

step "produce 4 x 250 records per partition and 200 keyed ones; read them back"
expect_ok leader orders 0 2
expect_ok leader orders 1 3
expect_ok leader orders 2 1
expect_ok leader orders 3 1
for p in 0 1 2 3; do
    seq 0 249 | sed "s/^/p$p-m/" | kcat -P -b "$BOOT" -t orders -p "$p" 2>"$WORK/kcat.err" ||
        fail "producing to partition $p: $(cat "$WORK/kcat.err")"
done
seq 0 199 | awk '{ print "k" ($1 % 10) ":v" $1 }' |
    kcat -P -b "$BOOT" -t orders -K: 2>"$WORK/kcat.err" || fail "keyed produce: $(cat "$WORK/kcat.err")"
kcat -C -b "$BOOT" -t orders -e -o beginning -f '%p\t%o\t%k\t%s\n' >"$WORK/all" 2>"$WORK/kcat.err" ||
    fail "consume: $(cat "$WORK/kcat.err")"
[ "$(wc -l <"$WORK/all")" -eq 1200 ] || fail "read $(wc -l <"$WORK/all") records, expected 1200"
for p in 0 1 2 3; do
    awk -F'\t' -v p="$p" '$1 == p && $3 == "" { print $2 " " $4 }' "$WORK/all" >"$WORK/got.$p"
    seq 0 249 | awk -v p="$p" '{ print $1 " p" p "-m" $1 }' >"$WORK/want.$p"
    cmp -s "$WORK/got.$p" "$WORK/want.$p" || fail "partition $p differs: $(diff "$WORK/want.$p" "$WORK/got.$p" | head)"
done
# every key lands in one partition, and every keyed record is there once
[ "$(awk -F'\t' '$3 != "" { print $3, $1 }' "$WORK/all" | sort -u | wc -l)" -eq 10 ] ||
    fail "a key was spread over partitions"
[ "$(awk -F'\t' '$3 != "" { print $4 }' "$WORK/all" | sort -u | wc -l)" -eq 200 ] || fail "keyed records lost or doubled"

step "broker down: its partitions stall (no fail-over), the others serve; broker up recovers"
END0=$(awk -F'\t' '$1 == 0' "$WORK/all" | wc -l) # partition 0's end offset
expect_ok broker down 2
kcat -L -b "$BOOT" -t orders -m 10 >"$WORK/meta" 2>/dev/null || fail "metadata with a broker down"
grep -q "partition 0, leader 2," "$WORK/meta" || fail "the mock moved the leader: $(cat "$WORK/meta")"
rc=0
echo lost | kcat -P -b "$BOOT" -t orders -p 0 -X message.timeout.ms=1500 2>"$WORK/kcat.err" || rc=$?
[ "$rc" -ne 0 ] || fail "producing to a partition of a downed broker succeeded"
grep -q "timed out" "$WORK/kcat.err" || fail "expected a delivery time-out: $(cat "$WORK/kcat.err")"
echo during | kcat -P -b "$BOOT" -t orders -p 1 -X message.timeout.ms=5000 2>"$WORK/kcat.err" ||
    fail "partition 1 (broker 3) failed while broker 2 was down: $(cat "$WORK/kcat.err")"
expect_ok broker up 2
echo back | kcat -P -b "$BOOT" -t orders -p 0 -X message.timeout.ms=10000 2>"$WORK/kcat.err" ||
    fail "broker 2 did not recover: $(cat "$WORK/kcat.err")"
kcat -C -b "$BOOT" -t orders -p 0 -e -o "$END0" -f "%o %s\n" >"$WORK/p0" 2>&1
[ "$(grep -v "^%" "$WORK/p0")" = "$END0 back" ] ||
    fail "after broker up, partition 0 does not end with the one record back at $END0: $(cat "$WORK/p0")"

step "rtt delays a broker's responses"
expect_ok rtt 1 400
t0=$(now_ms)
echo slow | kcat -P -b "$BOOT" -t orders -p 2 2>"$WORK/kcat.err" || fail "produce with rtt: $(cat "$WORK/kcat.err")"
[ $(($(now_ms) - t0)) -ge 400 ] || fail "a produce to broker 1 with rtt 400 took $(($(now_ms) - t0)) ms"
expect_ok rtt 1 0

step "pushed request errors: retriable ones are retried, fatal ones fail the produce"
expect_ok push-errors Produce NOT_LEADER_FOR_PARTITION,NOT_LEADER_FOR_PARTITION
echo retried | kcat -P -b "$BOOT" -t orders -p 3 2>"$WORK/kcat.err" ||
    fail "a produce did not survive two NOT_LEADER errors: $(cat "$WORK/kcat.err")"
expect_ok push-errors 0 29 # TOPIC_AUTHORIZATION_FAILED, by number
rc=0
echo denied | kcat -P -b "$BOOT" -t orders -p 3 2>"$WORK/kcat.err" || rc=$?
[ "$rc" -ne 0 ] && grep -qi "authoriz" "$WORK/kcat.err" ||
    fail "TOPIC_AUTHORIZATION_FAILED did not fail the produce (rc $rc): $(cat "$WORK/kcat.err")"
END3=$(awk -F'\t' '$1 == 3' "$WORK/all" | wc -l)
kcat -C -b "$BOOT" -t orders -p 3 -e -o "$END3" -f '%s\n' >"$WORK/p3" 2>&1
[ "$(grep -v "^%" "$WORK/p3")" = "retried" ] ||
    fail "partition 3 should end with exactly the one retried record: $(cat "$WORK/p3")"

step "garbage on the control channel is answered and never fatal"
for bad in "frobnicate" "broker" "broker down" "broker down 0" "broker down 4" "broker sideways 1" \
    "rtt 1" "rtt 1 -5" "rtt x 5" "push-errors Produce" "push-errors Nope 1" \
    "push-errors Fetch NOT_AN_ERROR" "push-errors Fetch ,," "clear-errors" "leader nope 0 1" \
    "leader orders 0 7" "topic orders 2" "topic bad/name 2" "topic t 0" "topic t 2 9" \
    "a b c d e f g h i j" "zz$(head -c 300 /dev/urandom | tr -d '\n\0')"; do
    ctl "$bad"
    case "$ANSWER" in error:*) ;; *) fail "'$bad' answered '$ANSWER'" ;; esac
done
head -c 9000 /dev/zero | tr '\0' x >&8
echo >&8
NANS=$((NANS + 1))
wait_for 10 answers "$NANS" || fail "no answer to an over-long line"
grep -q "^error: line too long" "$WORK/out" || fail "an over-long line was not refused"
expect_ok help
grep -q "^# *broker down N" "$WORK/out" || fail "help does not list the commands"
expect_ok clear-errors Produce
expect_ok topic late 2
echo hello | kcat -P -b "$BOOT" -t late -p 1 2>"$WORK/kcat.err" || fail "topic created later: $(cat "$WORK/kcat.err")"
gone "$DPID" && fail "the daemon died"

step "CANARY: the mock has no transaction semantics and no timestamp lookup"
# If this step fails, librdkafka's mock changed: revisit docs/kafka.md's
# limits and the exactly-once oracle before touching the assertions.
"$CANARY" "$BOOT" canary 0 5 >"$WORK/canary" 2>"$WORK/canary.err" ||
    fail "kafka-canary failed: $(cat "$WORK/canary.err")"
no_sanitizer "$WORK/canary.err"
fact() { sed -n "s/^$1=//p" "$WORK/canary"; }
[ "$(fact aborted)" = 5 ] && [ "$(fact committed)" = 1 ] || fail "canary: $(cat "$WORK/canary")"
[ "$(fact read_committed_visible)" = 7 ] ||
    fail "CANARY: read_committed no longer sees aborted/zombie records (mock gained transaction markers?): $(cat "$WORK/canary")"
[ "$(fact second_init_fenced_first)" = no ] ||
    fail "CANARY: a second init_transactions now fences the first producer: $(cat "$WORK/canary")"
[ "$(fact txn_offsets_committed)" = none ] ||
    fail "CANARY: offsets sent with a transaction are now committed: $(cat "$WORK/canary")"
[ "$(fact offsets_for_times)" = -1 ] ||
    fail "CANARY: the mock now looks up timestamps: $(cat "$WORK/canary")"
# cross-check with kcat: a read_committed reader sees the aborted records
kcat -C -b "$BOOT" -t canary -p 0 -e -o beginning -X isolation.level=read_committed \
    -f '%s\n' >"$WORK/rc" 2>/dev/null || fail "kcat read_committed"
[ "$(grep -c '^aborted-' "$WORK/rc")" -eq 5 ] ||
    fail "CANARY: kcat read_committed does not see the 5 aborted records: $(cat "$WORK/rc")"

step "quit stops the daemon cleanly"
expect_ok quit
wait_for 10 gone "$DPID" || fail "the daemon did not stop on quit"
rc=0
wait "$DPID" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc after quit: $(cat "$WORK/err")"
no_sanitizer "$WORK/err"

step "SIGTERM (with --no-stdin) and EOF on stdin stop it cleanly"
"$DEVK" --brokers 1 --no-stdin --port-file "$WORK/boot2" </dev/null >/dev/null 2>"$WORK/err2" &
P2=$!
PIDS+=("$P2")
wait_for 10 test -s "$WORK/boot2" || fail "--no-stdin instance did not start"
gone "$P2" && fail "--no-stdin instance stopped at EOF on stdin"
kill -TERM "$P2"
wait_for 10 gone "$P2" || fail "SIGTERM did not stop it"
rc=0
wait "$P2" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(cat "$WORK/err2")"
no_sanitizer "$WORK/err2"
rc=0
printf 'rtt 1 5' | timeout 20 "$DEVK" --brokers 2 >"$WORK/out3" 2>"$WORK/err3" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc at EOF: $(cat "$WORK/err3")"
[ "$(tail -1 "$WORK/out3")" = ok ] || fail "a last line without newline was not run: $(cat "$WORK/out3")"
no_sanitizer "$WORK/err3"
echo "PASS"
