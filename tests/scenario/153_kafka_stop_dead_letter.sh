#!/usr/bin/env bash
# The Kafka source's bounded ends and dead-letter topic (docs/kafka.md),
# checked with kcat as the independent client:
# - stop: {offsets: {...}}: exactly the records before the given offsets
#   (with start offsets too; unnamed partitions end at their end), and a stop
#   offset past the log end waits for the records to come;
# - stop: {timestamp: T}: per partition, exactly the records before the first
#   one stamped at or after T (a partition without one ends at its end);
# - on_error: {dead_letter: TOPIC}: malformed records in the middle of good
#   ones land in the topic as they were (key, value, headers) plus headers
#   naming the error, topic, partition and offset; the good ones are counted
#   exactly; while a dead letter cannot be delivered (its partition's leader
#   is down) no checkpoint commits an offset past its record, and once the
#   broker is back it is delivered and the checkpoints go on. (A dead-letter
#   topic the cluster does not have cannot be tested here: the mock creates
#   every topic a client asks about.)
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must name the build tree}"
command -v kcat >/dev/null ||
    fail "kcat is not installed: this test needs it as an independent Kafka client (apt-get install kcat; 'make test' installs it)"

step "start 3 mock brokers: ev (2 partitions), ts (2), mix (2), dlq (1)"
start_devk --brokers 3 --topic ev:2 --topic ts:2 --topic mix:2 --topic dlq:1

# produce TOPIC PARTITION FILE [kcat options]: one record per line of FILE
produce() {
    local t=$1 p=$2 f=$3
    shift 3
    kcat -P -b "$BOOT" -t "$t" -p "$p" "$@" <"$f" 2>"$WORK/kcat.err" ||
        fail "producing to $t/$p: $(cat "$WORK/kcat.err")"
}
# rawjob FILE TOPIC PARALLELISM SOURCE-LINES...: raw records -> "partition,offset,value" CSV
rawjob() {
    local file=$1 topic=$2
    shift 2
    {
        printf 'name: kafka-stop\nsources:\n  - name: src\n    type: kafka\n'
        printf '    bootstrap: "%s"\n    topic: %s\n    format: raw\n    timeout_ms: 20000\n' "$BOOT" "$topic"
        printf '    schema: [{ name: partition, type: int64 }, { name: offset, type: int64 }, { name: value, type: string }]\n'
        for l in "$@"; do printf '    %s\n' "$l"; done
        printf 'sinks:\n  - { name: out, type: file, format: csv, input: src, path: "%s" }\n' "$WORK/out.csv"
    } >"$file"
}
# expect FILE: the job's output (sorted, without header) must equal FILE (sorted).
expect() {
    tail -n +2 "$WORK/out.csv" | sort >"$WORK/got"
    sort "$1" >"$WORK/want"
    cmp -s "$WORK/got" "$WORK/want" ||
        fail "output differs ($(wc -l <"$WORK/got") lines, want $(wc -l <"$WORK/want")): $(diff "$WORK/want" "$WORK/got" | head)"
}
# records P FROM TO PREFIX: the expected lines "P,offset,PREFIXoffset" for offsets FROM..TO
records() { seq "$2" "$3" | awk -v p="$1" -v x="$4" '{ print p "," $1 "," x $1 }'; }

step "produce 100 records to ev/0 and 80 to ev/1"
seq 0 99 | sed 's/^/a/' >"$WORK/ev0"
seq 0 79 | sed 's/^/b/' >"$WORK/ev1"
produce ev 0 "$WORK/ev0"
produce ev 1 "$WORK/ev1"

step "stop: {offsets: {0: 30}} reads ev/0 up to offset 29 and all of ev/1"
rawjob "$WORK/stop.yaml" ev "stop:" "  offsets: { 0: 30 }"
sluice run "$WORK/stop.yaml" --parallelism 2 >"$WORK/run.out" || fail "stop offsets: $(cat "$WORK/stderr")"
{
    records 0 0 29 a
    records 1 0 79 b
} >"$WORK/want.stop"
expect "$WORK/want.stop"

step "start and stop offsets together: ev/0 10..29, ev/1 0..4"
rawjob "$WORK/stop2.yaml" ev "start: { offsets: { 0: 10 } }" "stop: { offsets: { 0: 30, 1: 5 } }"
sluice run "$WORK/stop2.yaml" --parallelism 1 >"$WORK/run.out" || fail "start+stop: $(cat "$WORK/stderr")"
{
    records 0 10 29 a
    records 1 0 4 b
} >"$WORK/want.stop2"
expect "$WORK/want.stop2"

step "a stop offset before the start offset fails, naming both"
rawjob "$WORK/stop3.yaml" ev "start: { offsets: { 1: 50 } }" "stop: { offsets: { 1: 40 } }"
rc=0
sluice run "$WORK/stop3.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "stop before start: exit $rc"
grep -q "topic 'ev' partition 1 would stop at offset 40, before its start offset 50" "$WORK/stderr" ||
    fail "no clear error for a stop before the start: $(cat "$WORK/stderr")"

step "a stop offset past the log end waits for the records to come"
rawjob "$WORK/stop4.yaml" ev "stop: { offsets: { 1: 90 } }"
"$SLUICE" run "$WORK/stop4.yaml" --parallelism 2 >"$WORK/run4.out" 2>"$WORK/run4.err" &
JOB=$!
PIDS+=("$JOB")
# it cannot end before ev/1 holds offset 89: still running after 3 s
sleep 3
kill -0 "$JOB" 2>/dev/null || fail "the job ended before ev/1 reached its stop offset: $(cat "$WORK/run4.err")"
seq 80 94 | sed 's/^/b/' >"$WORK/ev1b"
produce ev 1 "$WORK/ev1b"
wait_for 60 eval '! kill -0 $JOB 2>/dev/null' || fail "the job did not end after ev/1 reached offset 90"
rc=0
wait "$JOB" || rc=$?
[ "$rc" -eq 0 ] || fail "stop past the end: exit $rc: $(cat "$WORK/run4.err")"
! grep -q Sanitizer "$WORK/run4.err" || fail "sanitizer: $(cat "$WORK/run4.err")"
{
    records 0 0 99 a
    records 1 0 89 b
} >"$WORK/want.stop4"
expect "$WORK/want.stop4"

step "stop: {timestamp: T}: the records stamped before T; ts/1 (nothing at T) to its end"
seq 0 49 | sed 's/^/c/' >"$WORK/ts0a"
seq 0 59 | sed 's/^/d/' >"$WORK/ts1"
produce ts 0 "$WORK/ts0a"
produce ts 1 "$WORK/ts1"
MAXA=$(kcat -C -b "$BOOT" -t ts -e -o beginning -f '%T\n' 2>/dev/null | sort -n | tail -n 1)
[ -n "$MAXA" ] && [ "$MAXA" -gt 0 ] || fail "no timestamps on ts: '$MAXA'"
T=$((MAXA + 1))
wait_for 10 eval '[ "$(date +%s%3N)" -gt $T ]' || fail "the clock does not pass $T"
seq 50 69 | sed 's/^/c/' >"$WORK/ts0b"
produce ts 0 "$WORK/ts0b"
MINB=$(kcat -C -b "$BOOT" -t ts -p 0 -o 50 -e -f '%T\n' 2>/dev/null | sort -n | head -n 1)
[ "$MINB" -ge "$T" ] || fail "the second batch is stamped $MINB, before $T"
rawjob "$WORK/ts.yaml" ts "stop: { timestamp: $T }"
sluice run "$WORK/ts.yaml" --parallelism 2 >"$WORK/run.out" || fail "stop timestamp: $(cat "$WORK/stderr")"
{
    records 0 0 49 c
    records 1 0 59 d
} >"$WORK/want.ts"
expect "$WORK/want.ts"
# the same with T as ISO-8601 (milliseconds), at parallelism 1
ISO=$(date -u -d "@$((T / 1000)).$(printf '%03d' $((T % 1000)))" '+%Y-%m-%dT%H:%M:%S.%3NZ')
rawjob "$WORK/ts2.yaml" ts "stop: { timestamp: '$ISO' }"
sluice run "$WORK/ts2.yaml" >"$WORK/run.out" || fail "stop timestamp $ISO: $(cat "$WORK/stderr")"
expect "$WORK/want.ts"

step "malformed records in the middle go to the dead-letter topic"
# mix/0: good 0..6, a bad one at offset 7 (key k7, header trace=t7), good 8..19
# mix/1: good 0..2, a bad one at offset 3 (no key, no header), good 4..9
good() { seq "$1" "$2" | awk -v p="$3" '{ printf "{\"word\":\"p%s\",\"n\":%d}\n", p, $1 }'; }
good 0 6 0 >"$WORK/m0a"
good 8 19 0 >"$WORK/m0b"
good 0 2 1 >"$WORK/m1a"
good 4 9 1 >"$WORK/m1b"
produce mix 0 "$WORK/m0a"
printf 'k7:{"word":"p0","n":oops}\n' >"$WORK/bad0"
produce mix 0 "$WORK/bad0" -K: -H trace=t7
produce mix 0 "$WORK/m0b"
produce mix 1 "$WORK/m1a"
printf 'not json at all\n' >"$WORK/bad1"
produce mix 1 "$WORK/bad1"
produce mix 1 "$WORK/m1b"
cat >"$WORK/dlq.yaml" <<EOF
name: kafka-dlq
sources:
  - name: src
    type: kafka
    bootstrap: "$BOOT"
    topic: mix
    format: json
    bounded: true
    timeout_ms: 20000
    schema: [{ name: word, type: string }, { name: n, type: int64 }, { name: offset, type: int64 }]
    on_error:
      dead_letter: \${dlq}
sinks:
  - { name: out, type: file, format: csv, input: src, path: "$WORK/out.csv" }
EOF
sluice run "$WORK/dlq.yaml" --param dlq=dlq --parallelism 2 >"$WORK/run.out" ||
    fail "dead letters: $(cat "$WORK/stderr")"
{
    seq 0 6 | awk '{ print "p0," $1 "," $1 }'
    seq 8 19 | awk '{ print "p0," $1 "," $1 }'
    seq 0 2 | awk '{ print "p1," $1 "," $1 }'
    seq 4 9 | awk '{ print "p1," $1 "," $1 }'
} >"$WORK/want.dlq"
expect "$WORK/want.dlq"
grep -E "^src +kafka +28 +28 " "$WORK/stderr" >/dev/null ||
    fail "the source did not emit exactly 28 records: $(cat "$WORK/stderr")"
grep -q "2 bad records to dead-letter topic 'dlq'" "$WORK/stderr" ||
    fail "the 2 dead letters are not counted: $(cat "$WORK/stderr")"
grep -q "bad record topic 'mix' partition 0 offset 7 sent to dead-letter topic 'dlq'" "$WORK/stderr" ||
    fail "the dead letter of mix/0 offset 7 was not logged: $(cat "$WORK/stderr")"
kcat -C -b "$BOOT" -t dlq -e -o beginning -J >"$WORK/dlq.json" 2>"$WORK/kcat.err" ||
    fail "reading dlq: $(cat "$WORK/kcat.err")"
python3 - "$WORK/dlq.json" <<'PY' || fail "the dead-letter topic is wrong: $(cat "$WORK/dlq.json")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(recs) == 2, f"{len(recs)} dead letters, want 2"
by = {}
for r in recs:
    h = r.get("headers") or []
    hd = dict(zip(h[0::2], h[1::2]))
    by[(hd["sluice.topic"], hd["sluice.partition"], hd["sluice.offset"])] = (r, h, hd)
r, h, hd = by[("mix", "0", "7")]
assert r["key"] == "k7" and r["payload"] == '{"word":"p0","n":oops}', r
assert h[0:2] == ["trace", "t7"], h  # the record's own headers first, as they were
assert hd["sluice.error"].startswith("bad JSON"), hd
r, h, hd = by[("mix", "1", "3")]
assert r["key"] is None and r["payload"] == "not json at all", r
assert set(hd) == {"sluice.error", "sluice.topic", "sluice.partition", "sluice.offset"}, hd
assert hd["sluice.error"], hd
print("dead letters ok")
PY

step "a checkpoint does not move past a record whose dead letter is not acknowledged"
# dlq2's only partition is led by broker 3, mix2's by broker 1; a group whose
# coordinator is not broker 3 (probed with broker 3 down) takes the commits.
ctl topic mix2 1
ctl topic dlq2 1
ctl leader mix2 0 1
ctl leader dlq2 0 3
GROUPTOOL="$BUILD/tools/kafka-group"
ctl broker down 3
GROUP=
for g in g153a g153b g153c g153d g153e g153f g153g g153h; do
    if timeout 20 "$GROUPTOOL" "$BOOT" "$g" committed mix2 1 >/dev/null 2>&1; then
        GROUP=$g
        break
    fi
done
[ -n "$GROUP" ] || fail "no group with a coordinator other than broker 3"
ctl broker up 3
committed() { "$GROUPTOOL" "$BOOT" "$GROUP" committed mix2 1 2>/dev/null | awk '$1 == 0 { print $2 }'; }
good 0 4 0 >"$WORK/c0a"
produce mix2 0 "$WORK/c0a"
cat >"$WORK/ck.yaml" <<EOF
name: kafka-dlq-checkpoint
checkpoint: { interval: 300ms }
sources:
  - name: src
    type: kafka
    bootstrap: "$BOOT"
    topic: mix2
    group: $GROUP
    format: json
    timeout_ms: 60000
    schema: [{ name: word, type: string }, { name: n, type: int64 }]
    on_error:
      dead_letter: dlq2
sinks:
  - { name: out, type: file, format: csv, input: src, path: "$WORK/ck.csv" }
EOF
"$SLUICE" run "$WORK/ck.yaml" >"$WORK/ck.out" 2>"$WORK/ck.err" &
JOB=$!
PIDS+=("$JOB")
wait_for 60 eval '[ "$(committed)" = 5 ]' ||
    fail "the job's checkpoints did not commit offset 5: '$(committed)'; $(cat "$WORK/ck.err")"
ctl broker down 3
printf '{"word":"p0","n":bad}\n' >"$WORK/cbad"
produce mix2 0 "$WORK/cbad"
good 6 9 0 >"$WORK/c0b"
produce mix2 0 "$WORK/c0b"
wait_for 60 grep -q "topic 'mix2' partition 0 offset 5 sent to dead-letter topic 'dlq2'" "$WORK/ck.err" ||
    fail "the bad record was not sent to dlq2: $(cat "$WORK/ck.err")"
# several checkpoint intervals while its dead letter cannot be delivered:
# no commit may pass offset 5 (a slow machine only commits less)
for _ in 1 2 3 4 5 6; do
    sleep 0.5
    c=$(committed)
    [ "$c" = 5 ] || fail "a checkpoint committed offset '$c' while the dead letter of offset 5 was undelivered"
done
kill -0 "$JOB" 2>/dev/null || fail "the job ended: $(cat "$WORK/ck.err")"
ctl broker up 3
wait_for 90 eval '[ "$(committed)" = 10 ]' ||
    fail "the job did not commit offset 10 after the broker came back: '$(committed)'; $(cat "$WORK/ck.err")"
kcat -C -b "$BOOT" -t dlq2 -e -o beginning -f '%h|%s\n' >"$WORK/dlq2" 2>/dev/null || fail "reading dlq2"
grep -q 'sluice.topic=mix2,sluice.partition=0,sluice.offset=5|{"word":"p0","n":bad}' "$WORK/dlq2" ||
    fail "dlq2 does not hold the dead letter of mix2/0 offset 5: $(cat "$WORK/dlq2")"
kill -INT "$JOB"
wait_for 60 eval '! kill -0 $JOB 2>/dev/null' || fail "the job did not stop on SIGINT"
! grep -q Sanitizer "$WORK/ck.err" || fail "sanitizer: $(cat "$WORK/ck.err")"
echo "PASS"
