#!/usr/bin/env bash
# The bounded Kafka source against the development broker (docs/kafka.md):
# JSON records produced with kcat across 4 partitions are counted per word
# at parallelism 1 and 3 and compared with counts computed by awk from the
# produced input; two topics (a list, then a pattern) read together; a
# pattern matching nothing fails; start: committed starts at the group's
# offsets (kafka-group commits them) with either fallback; a start
# timestamp reads nothing on the mock (it cannot look one up); headers
# become a "k=v,..." field; start: latest reads nothing; explicit offsets skip the
# first records of a partition; a malformed record fails the job naming
# topic, partition and offset (on_error: skip skips and logs it); offsets
# past the log end or below the log start fail naming topic, partition and
# offset; a dead broker fails within the timeout naming its address.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must name the build tree}"
command -v kcat >/dev/null ||
    fail "kcat is not installed: this test needs it as an independent Kafka client (apt-get install kcat; 'make test' installs it)"

step "start 3 mock brokers: words (4 partitions), bad (2), big (1)"
start_devk --brokers 3 --topic words:4 --topic bad:2 --topic big:1 --topic more:2 --topic hdr:1

# job FILE SOURCE-EXTRA...: writes a job counting words of a kafka source
# (topic $TOPIC) into $WORK/out.csv; extra lines go into the source.
job() {
    local file=$1
    shift
    {
        printf 'name: kafka-count\nsources:\n  - name: src\n    type: kafka\n'
        printf '    bootstrap: "%s"\n    %s\n    format: json\n    bounded: true\n' \
            "$BOOT" "${TOPICS:-topic: ${TOPIC:-words}}"
        printf '    schema:\n      - { name: word, type: string }\n      - { name: n, type: int64 }\n'
        for l in "$@"; do printf '    %s\n' "$l"; done
        printf 'operators:\n  - { name: counts, type: aggregate, input: src, key: [word], '
        printf 'aggregates: [{ name: c, fn: count }, { name: s, fn: sum, field: n }] }\n'
        printf 'sinks:\n  - { name: out, type: file, format: csv, input: counts, path: "%s" }\n' \
            "$WORK/out.csv"
    } >"$file"
}
# expect FILE: the job's output (sorted, without header) must equal FILE.
expect() {
    tail -n +2 "$WORK/out.csv" | sort >"$WORK/got"
    sort "$1" >"$WORK/want"
    cmp -s "$WORK/got" "$WORK/want" || fail "output differs: $(diff "$WORK/want" "$WORK/got" | head)"
}
# counts < JSONL: per word "word,count,sum" as the job writes it.
counts() {
    sed 's/.*"word":"\([^"]*\)","n":\([0-9]*\).*/\1 \2/' |
        awk '{ c[$1]++; s[$1] += $2 } END { for (w in c) print w "," c[w] "," s[w] }'
}

step "produce 4000 JSON records across 4 partitions"
N=4000
seq 1 "$N" | awk '{ printf "{\"word\":\"w%d\",\"n\":%d}\n", ($1 * 7919) % 37, $1 }' >"$WORK/in.jsonl"
for p in 0 1 2 3; do
    awk -v p="$p" 'NR % 4 == p' "$WORK/in.jsonl" >"$WORK/in.$p"
    kcat -P -b "$BOOT" -t words -p "$p" <"$WORK/in.$p" 2>"$WORK/kcat.err" ||
        fail "producing to partition $p: $(cat "$WORK/kcat.err")"
done
counts <"$WORK/in.jsonl" >"$WORK/want.all"
[ "$(wc -l <"$WORK/want.all")" -eq 37 ] || fail "expected 37 words in the input"

for par in 1 3; do
    step "bounded read at parallelism $par equals the input's counts"
    job "$WORK/job.yaml"
    sluice run "$WORK/job.yaml" --parallelism "$par" >"$WORK/run.out" ||
        fail "run at parallelism $par: $(cat "$WORK/stderr")"
    expect "$WORK/want.all"
    grep -E "^src +kafka +$N " "$WORK/stderr" >/dev/null ||
        fail "the source did not read $N records: $(cat "$WORK/stderr")"
done

step "several topics, and a topic pattern: partitions of all topics, round-robin"
seq 1 300 | awk '{ printf "{\"word\":\"m%d\",\"n\":%d}\n", $1 % 5, $1 }' >"$WORK/more.jsonl"
for p in 0 1; do
    awk -v p="$p" 'NR % 2 == p' "$WORK/more.jsonl" | kcat -P -b "$BOOT" -t more -p "$p" ||
        fail "produce more"
done
cat "$WORK/in.jsonl" "$WORK/more.jsonl" | counts >"$WORK/want.topics"
TOPICS="topics: [words, more]" job "$WORK/topics.yaml"
sluice run "$WORK/topics.yaml" --parallelism 4 >"$WORK/run.out" || fail "topics: $(cat "$WORK/stderr")"
expect "$WORK/want.topics"
grep -E "^src +kafka +$((N + 300)) " "$WORK/stderr" >/dev/null || fail "topics: $(cat "$WORK/stderr")"
TOPICS="topic_pattern: 'mo.e|wor.s'" job "$WORK/pattern.yaml"
sluice run "$WORK/pattern.yaml" --parallelism 3 >"$WORK/run.out" || fail "pattern: $(cat "$WORK/stderr")"
expect "$WORK/want.topics"
TOPICS="topic_pattern: 'nomatch.*'" job "$WORK/nomatch.yaml" "timeout_ms: 2000"
rc=0
sluice run "$WORK/nomatch.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a pattern matching nothing: exit $rc"
grep -q "no topic at $BOOT matches topic_pattern 'nomatch.\*'" "$WORK/stderr" ||
    fail "no clear error for a pattern matching nothing: $(cat "$WORK/stderr")"

step "start: committed reads from the group's offsets, else the fallback"
"$BUILD/tools/kafka-group" "$BOOT" g85 commit words 0=500 2=999 || fail "commit"
job "$WORK/committed.yaml" "group: g85" "start: committed"
sluice run "$WORK/committed.yaml" --parallelism 2 >"$WORK/run.out" || fail "committed: $(cat "$WORK/stderr")"
{
    tail -n +501 "$WORK/in.0"
    cat "$WORK/in.1"
    tail -n +1000 "$WORK/in.2"
    cat "$WORK/in.3"
} | counts >"$WORK/want.committed"
expect "$WORK/want.committed"
job "$WORK/committed.yaml" "group: g85" "start: committed" "fallback: latest"
sluice run "$WORK/committed.yaml" --parallelism 2 >"$WORK/run.out" || fail "committed: $(cat "$WORK/stderr")"
{
    tail -n +501 "$WORK/in.0"
    tail -n +1000 "$WORK/in.2"
} | counts >"$WORK/want.committed"
expect "$WORK/want.committed"

step "start: {timestamp: ...}: the dev broker cannot look one up (it answers the end)"
job "$WORK/ts.yaml" "start: { timestamp: '2020-01-01T00:00:00Z' }"
sluice run "$WORK/ts.yaml" >"$WORK/run.out" || fail "timestamp: $(cat "$WORK/stderr")"
[ "$(wc -l <"$WORK/out.csv")" -eq 1 ] || fail "a timestamp start on the mock read records"

step "headers: a string field 'k=v,...'"
printf 'one\ntwo\n' | kcat -P -b "$BOOT" -t hdr -p 0 -H "src=a" -H "trace=7" || fail "produce hdr"
cat >"$WORK/hdr.yaml" <<EOF
name: kafka-headers
sources:
  - { name: src, type: kafka, bootstrap: "$BOOT", topic: hdr, format: raw, bounded: true,
      headers: true, schema: [{ name: value, type: string }, { name: headers, type: string }] }
sinks:
  - { name: out, type: file, format: csv, input: src, path: "$WORK/out.csv" }
EOF
sluice run "$WORK/hdr.yaml" >"$WORK/run.out" || fail "headers: $(cat "$WORK/stderr")"
printf 'one,"src=a,trace=7"\ntwo,"src=a,trace=7"\n' >"$WORK/want.hdr"
expect "$WORK/want.hdr"

step "start: latest reads nothing"
job "$WORK/latest.yaml" "start: latest"
sluice run "$WORK/latest.yaml" --parallelism 3 >"$WORK/run.out" || fail "latest: $(cat "$WORK/stderr")"
[ "$(wc -l <"$WORK/out.csv")" -eq 1 ] || fail "start: latest produced records: $(head "$WORK/out.csv")"

step "explicit offsets skip the first records of a partition"
job "$WORK/offsets.yaml" "start:" "  offsets:" '    0: ${skip0}' '    2: ${skip2}'
sluice run "$WORK/offsets.yaml" --param skip0=100 --param skip2=999 --parallelism 3 \
    >"$WORK/run.out" || fail "offsets: $(cat "$WORK/stderr")"
{
    tail -n +101 "$WORK/in.0"
    cat "$WORK/in.1"
    tail -n +1000 "$WORK/in.2"
    cat "$WORK/in.3"
} | counts >"$WORK/want.off"
expect "$WORK/want.off"
grep -E "^src +kafka +$((N - 100 - 999)) " "$WORK/stderr" >/dev/null ||
    fail "expected $((N - 1099)) records: $(cat "$WORK/stderr")"

step "an offset beyond the log end fails naming topic, partition and offset"
rc=0
sluice run "$WORK/offsets.yaml" --param skip0=1001 --param skip2=0 >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "offset past the end: exit $rc"
grep -q "topic 'words' partition 0 has no offset 1001" "$WORK/stderr" ||
    fail "no clear error for offset 1001: $(cat "$WORK/stderr" "$WORK/run.out")"
rc=0
sluice run "$WORK/offsets.yaml" --param skip0=1000 --param skip2=1000 >"$WORK/run.out" || rc=$?
[ "$rc" -eq 0 ] || fail "offsets at the log end (nothing to read): $(cat "$WORK/stderr")"
{
    cat "$WORK/in.1" "$WORK/in.3"
} | counts >"$WORK/want.end"
expect "$WORK/want.end"

step "a malformed record fails the job naming topic, partition and offset"
{
    for i in 1 2 3 4 5; do echo "{\"word\":\"ok\",\"n\":$i}"; done
    echo '{"word":"broken","n":'
    for i in 6 7 8; do echo "{\"word\":\"ok\",\"n\":$i}"; done
} >"$WORK/bad.1"
kcat -P -b "$BOOT" -t bad -p 1 <"$WORK/bad.1" 2>"$WORK/kcat.err" || fail "produce bad: $(cat "$WORK/kcat.err")"
echo '{"word":"ok","n":100}' | kcat -P -b "$BOOT" -t bad -p 0 2>"$WORK/kcat.err" || fail "produce bad p0"
TOPIC=bad job "$WORK/bad.yaml"
rc=0
sluice run "$WORK/bad.yaml" --parallelism 2 >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a malformed record: exit $rc, expected 1"
grep -q "topic 'bad' partition 1 offset 5: bad JSON" "$WORK/stderr" ||
    fail "the error does not name topic, partition and offset: $(cat "$WORK/stderr")"
[ ! -e "$WORK/out.csv" ] || rm -f "$WORK/out.csv"

step "on_error: skip skips it, logs it and counts the rest"
TOPIC=bad job "$WORK/skip.yaml" "on_error: skip"
sluice run "$WORK/skip.yaml" --parallelism 2 >"$WORK/run.out" || fail "skip: $(cat "$WORK/stderr")"
echo "ok,9,136" >"$WORK/want.skip"
expect "$WORK/want.skip"
grep -q "skipped bad record in source 'src': topic 'bad' partition 1 offset 5" "$WORK/stderr" ||
    fail "the skipped record was not logged: $(cat "$WORK/stderr")"

step "an offset below the log start (retention dropped it) fails"
# the mock keeps about 5 MiB per partition: 7000 records of 1 KiB push the
# log start past 0
head -c 1000 /dev/zero | tr '\0' x >"$WORK/kib"
awk -v pad="$(cat "$WORK/kib")" '{ printf "{\"word\":\"w\",\"n\":%d,\"pad\":\"%s\"}\n", $1, pad }' \
    <(seq 1 7000) | kcat -P -b "$BOOT" -t big -p 0 2>"$WORK/kcat.err" || fail "produce big: $(cat "$WORK/kcat.err")"
LOW=$(kcat -C -b "$BOOT" -t big -p 0 -o beginning -c 1 -f '%o\n' 2>/dev/null)
[ "$LOW" -gt 0 ] || fail "the mock kept the whole log (low watermark $LOW): cannot test below it"
TOPIC=big job "$WORK/big.yaml" 'start: { offsets: { 0: 3 } }'
rc=0
sluice run "$WORK/big.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "offset below the log start: exit $rc"
grep -q "topic 'big' partition 0 has no offset 3: it holds offsets $LOW to 6999" "$WORK/stderr" ||
    fail "no clear error for offset 3 below $LOW: $(cat "$WORK/stderr")"
TOPIC=big job "$WORK/big.yaml"
sluice run "$WORK/big.yaml" >"$WORK/run.out" || fail "earliest on big: $(cat "$WORK/stderr")"
echo "w,$((7000 - LOW)),$(seq $((LOW + 1)) 7000 | awk '{ s += $1 } END { print s }')" >"$WORK/want.big"
expect "$WORK/want.big"

step "a failed authentication fails the source and the sink at once, with librdkafka's reason"
# (the dev broker speaks no SASL: a SASL client cannot authenticate to it)
SASL=("properties: { security.protocol: SASL_PLAINTEXT, sasl.mechanisms: PLAIN,"
    "  sasl.username: alice, sasl.password: wrong }")
job "$WORK/auth.yaml" "timeout_ms: 20000" "${SASL[@]}"
t0=$SECONDS
rc=0
sluice run "$WORK/auth.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a failed authentication: exit $rc"
[ $((SECONDS - t0)) -lt 15 ] || fail "a failed authentication waited for the timeout ($((SECONDS - t0)) s)"
grep -q "source 'src': authentication to Kafka at $BOOT failed: .*SASL" "$WORK/stderr" ||
    fail "no clear error for a failed authentication: $(cat "$WORK/stderr")"
cat >"$WORK/authsink.yaml" <<EOF2
name: auth-sink
sources: [{ name: gen, type: generator, count: 100 }]
sinks:
  - name: out
    type: kafka
    input: gen
    bootstrap: "$BOOT"
    topic: more
    format: json
    timeout_ms: 20000
    ${SASL[0]}
    ${SASL[1]}
EOF2
t0=$SECONDS
rc=0
sluice run "$WORK/authsink.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a sink's failed authentication: exit $rc"
[ $((SECONDS - t0)) -lt 15 ] || fail "a sink's failed authentication waited for the timeout"
grep -q "sink 'out': .*authentication failed: .*SASL" "$WORK/stderr" ||
    fail "no clear error for a sink's failed authentication: $(cat "$WORK/stderr")"

step "a partition whose leader is down (no fail-over on the mock) fails within the timeout"
ctl topic t3 3
ctl leader t3 0 1
ctl leader t3 1 2
ctl leader t3 2 3
for p in 0 1 2; do
    echo "{\"word\":\"a\",\"n\":$p}" | kcat -P -b "$BOOT" -t t3 -p "$p" 2>"$WORK/kcat.err" ||
        fail "produce t3: $(cat "$WORK/kcat.err")"
done
TOPIC=t3 job "$WORK/t3.yaml" "timeout_ms: 3000"
sluice run "$WORK/t3.yaml" >"$WORK/run.out" || fail "t3 with every broker up: $(cat "$WORK/stderr")"
echo "a,3,3" >"$WORK/want.t3"
expect "$WORK/want.t3"
ctl broker down 2
t0=$SECONDS
rc=0
sluice run "$WORK/t3.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a partition without leader: exit $rc"
[ $((SECONDS - t0)) -le 12 ] || fail "a partition without leader took $((SECONDS - t0)) s to fail (timeout 3 s)"
grep -q "topic 't3' partition 1 from Kafka at $BOOT within 3000 ms" "$WORK/stderr" ||
    fail "no clear error for partition 1 without leader: $(cat "$WORK/stderr")"

step "a broker that is down: a clear error within the timeout, naming the address"
stop_devk
job "$WORK/dead.yaml" "timeout_ms: 3000"
t0=$SECONDS
rc=0
sluice run "$WORK/dead.yaml" >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "a dead broker: exit $rc"
[ $((SECONDS - t0)) -le 10 ] || fail "a dead broker took $((SECONDS - t0)) s to fail (timeout 3 s)"
grep -q "cannot reach Kafka at $BOOT within 3000 ms" "$WORK/stderr" ||
    fail "no clear error for the dead broker: $(cat "$WORK/stderr")"
echo "PASS"
