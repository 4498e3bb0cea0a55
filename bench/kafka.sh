#!/usr/bin/env bash
# kafka.sh — the Kafka benchmark run by `make bench-kafka`.
#
#   bash bench/kafka.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# Against one development broker (tools/sluice-dev-kafka: librdkafka's mock
# cluster, 3 brokers, in its own process on the same machine), BENCH_RUNS
# rounds of, in this order:
#   raw produce   bench/kafka_raw produce: BENCH_KAFKA_RECORDS JSON records
#                 of BENCH_KAFKA_SIZE bytes, round-robin over the
#                 BENCH_KAFKA_PARTITIONS partitions of a fresh topic in-R,
#                 one idempotent producer (acks=all, linger.ms=5,
#                 batch.num.messages=10000, as Sluice's sink)
#   raw produce + headers  the same into a fresh topic hdr-R, each record
#                 with the five headers Sluice's sink writes
#   raw consume   bench/kafka_raw consume: topic in-1 read from the
#                 beginning to the end with rd_kafka_consumer_poll
#   sluice alo    `sluice run` (embedded master, 2 workers, parallelism
#                 BENCH_KAFKA_PARALLELISM): Kafka source (bounded, JSON,
#                 topic in-1) -> map -> Kafka sink (JSON, key = user,
#                 delivery: at-least-once) into a fresh topic, checkpoint
#                 every 1 s
#   sluice eo     the same with delivery: exactly-once (commit_proof:
#                 journal: the dev broker has no transaction semantics)
# Records/s = records / wall time (for sluice: of the whole `sluice run`
# process, start-up and the final commit included). Every timed run is
# checked: the producer got every record acknowledged; the consumer read
# exactly the records produced; each sluice run's source read them all and
# its output topic holds exactly that many records with nothing dropped by
# retention (low watermarks 0), and for exactly-once the journal accounts
# for every record. A run that lost records stops the benchmark.
#
# The medians are printed and written, with the machine, into the "Kafka"
# section of docs/benchmarks.md (the rest of the file is kept).
#
# Environment:
#   BENCH_RUNS               rounds (default 3; medians reported)
#   BENCH_KAFKA_RECORDS      records per run (default 400000)
#   BENCH_KAFKA_SIZE         bytes per record value (default 100)
#   BENCH_KAFKA_PARTITIONS   partitions of every topic (default 32: the mock
#                            keeps only about 5 MiB per partition)
#   BENCH_KAFKA_PARALLELISM  parallelism of the sluice job (default 2)
#   BENCH_DATA               scratch directory (default BUILD_DIR/../bench-data/kafka)
#   BENCH_DOC                report to write (default docs/benchmarks.md; "-" writes none)
set -euo pipefail
export LC_ALL=C

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/kafka.sh BUILD_DIR"
[ -d "$1" ] || die "no build directory '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
RUNS=${BENCH_RUNS:-3}
N=${BENCH_KAFKA_RECORDS:-400000}
SIZE=${BENCH_KAFKA_SIZE:-100}
PARTS=${BENCH_KAFKA_PARTITIONS:-32}
PAR=${BENCH_KAFKA_PARALLELISM:-2}
DATA=${BENCH_DATA:-$(dirname "$BUILD")/bench-data/kafka}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a number >= 1, got '$2'"; }
posint BENCH_RUNS "$RUNS"
posint BENCH_KAFKA_RECORDS "$N"
posint BENCH_KAFKA_SIZE "$SIZE"
posint BENCH_KAFKA_PARTITIONS "$PARTS"
posint BENCH_KAFKA_PARALLELISM "$PAR"
[ "$SIZE" -ge 100 ] || die "BENCH_KAFKA_SIZE must be at least 100 (the JSON record and its padding)"

SLUICE=$BUILD/sluice
RAW=$BUILD/bench/kafka_raw
DEVK=$BUILD/tools/sluice-dev-kafka
for b in "$SLUICE" "$RAW" "$DEVK"; do
    [ -x "$b" ] || die "missing $b (build everything first: make release)"
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ "$BUILD_TYPE" = Release ] || echo "kafka.sh: warning: $BUILD is a '${BUILD_TYPE:-unknown}' build, not Release" >&2

rm -rf "$DATA"
mkdir -p "$DATA"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

DK_PID=
cleanup() { [ -z "$DK_PID" ] || kill "$DK_PID" 2>/dev/null || true; }
trap cleanup EXIT

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
nums() { tr ' ' '\n' | grep -v '^$' || true; }

# ---- the broker, its topics, the job ---------------------------------------------
topics=()
for ((r = 1; r <= RUNS; r++)); do
    topics+=(--topic "in-$r:$PARTS" --topic "hdr-$r:$PARTS" --topic "out-alo-$r:$PARTS" --topic "out-eo-$r:$PARTS")
done
"$DEVK" --brokers 3 "${topics[@]}" --no-stdin --port-file "$DATA/boot" </dev/null \
    >"$DATA/dk.out" 2>"$DATA/dk.err" &
DK_PID=$!
for _ in $(seq 100); do [ -s "$DATA/boot" ] && break; sleep 0.1; done
[ -s "$DATA/boot" ] || die "the dev broker did not start: $(cat "$DATA/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$DATA/boot")

cat >"$DATA/job.yaml" <<'YAML'
name: kafka-bench
checkpoint: { interval: 1s }
sources:
  - name: src
    type: kafka
    bootstrap: "${bootstrap}"
    topic: "${input}"
    format: json
    schema:
      - { name: id, type: int64 }
      - { name: user, type: string }
      - { name: amount, type: int64 }
      - { name: ts, type: int64 }
      - { name: pad, type: string }
    timeout_ms: 30000
    bounded: true
operators:
  - name: doubled
    type: map
    input: src
    select: { id: id, user: user, amount: amount * 2, ts: ts, pad: pad }
sinks:
  - name: out
    type: kafka
    input: doubled
    bootstrap: "${bootstrap}"
    topic: "${output}"
    format: json
    key: user
    delivery: "${delivery}"
    timeout_ms: 60000
YAML
sed 's/^\(    delivery: .*\)$/\1\n    commit_proof: journal\n    journal: "${journal}"/' "$DATA/job.yaml" >"$DATA/job-eo.yaml"
grep -q 'commit_proof: journal' "$DATA/job-eo.yaml" || die "could not write the exactly-once spec"

# count TOPIC: sets LOW and HIGH (sums of the partitions' watermarks)
count() {
    local out
    out=$("$RAW" count "$BOOT" "$1") || die "watermarks of $1"
    LOW=$(echo "$out" | awk '{ print $2 }')
    HIGH=$(echo "$out" | awk '{ print $4 }')
}
# rate LINE: the records_per_s of a kafka_raw line
field() { echo "$2" | awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }'; }

declare -A RATES SECS CPUS
# add KEY RATE SECS: one run's figures, with the CPU seconds of $DATA/cpu
add() {
    RATES[$1]="${RATES[$1]:-} $2"
    SECS[$1]="${SECS[$1]:-} $3"
    CPUS[$1]="${CPUS[$1]:-} $(awk '{ printf "%.2f", $1 + $2 }' "$DATA/cpu")"
}
# timed CMD...: runs CMD, its user + system CPU seconds into $DATA/cpu
timed() { /usr/bin/time -o "$DATA/cpu" -f '%U %S' "$@"; }
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed for the CPU seconds"

# run_sluice MODE ROUND: one timed sluice run, checked
run_sluice() {
    local mode=$1 r=$2 spec=$DATA/job.yaml topic=out-$1-$2 delivery=at-least-once log=$DATA/run-$1-$2.log
    local -a extra=()
    if [ "$mode" = eo ]; then
        spec=$DATA/job-eo.yaml delivery=exactly-once extra=(--param journal="$DATA/journal-$r")
    fi
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    timed "$SLUICE" run "$spec" --param bootstrap="$BOOT" --param input=in-1 --param output="$topic" \
        --param delivery="$delivery" "${extra[@]}" --parallelism "$PAR" --workers 2 --quiet \
        >/dev/null 2>"$log" || rc=$?
    t1=$(date +%s.%N)
    [ $rc -eq 0 ] || die "sluice $mode (round $r) failed (exit $rc): $(cat "$log")"
    local wall src cks
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    src=$(awk '$1 == "src" && $2 == "kafka" { print $4 }' "$log")
    [ "$src" = "$N" ] || die "sluice $mode (round $r): the source read '$src' records, not $N: $(cat "$log")"
    count "$topic"
    [ "$LOW" = 0 ] || die "sluice $mode (round $r): retention dropped records of $topic (low watermarks $LOW): fewer records or more partitions"
    [ "$HIGH" = "$N" ] || die "sluice $mode (round $r): topic $topic holds $HIGH records, not $N"
    if [ "$mode" = eo ]; then
        local j
        j=$(awk '{ n += $5 } END { print n + 0 }' "$DATA/journal-$r")
        [ "$j" = "$N" ] || die "sluice eo (round $r): the journal accounts for $j records, not $N"
    fi
    cks=$(sed -n 's/^\([0-9]*\) checkpoints\{0,1\} completed.*/\1/p' "$log")
    add "sluice-$mode" "$(awk -v n="$N" -v w="$wall" 'BEGIN { printf "%.0f", n / w }')" "$wall"
    CKS[$mode]="${CKS[$mode]:-} ${cks:-0}"
    printf '   round %d/%d  sluice %-3s     %8.3f s  %8.0f records/s  %s checkpoints  (%s records out, checked)\n' \
        "$r" "$RUNS" "$mode" "$wall" "$(awk -v n="$N" -v w="$wall" 'BEGIN { print n / w }')" "${cks:-0}" "$HIGH"
}
declare -A CKS

echo "== Kafka: $N records of $SIZE bytes, $PARTS partitions, $RUNS rounds, dev broker at $BOOT"
for ((r = 1; r <= RUNS; r++)); do
    out=$(timed "$RAW" produce "$BOOT" "in-$r" "$PARTS" "$N" "$SIZE") || die "raw produce (round $r) failed"
    count "in-$r"
    [ "$LOW" = 0 ] && [ "$HIGH" = "$N" ] ||
        die "raw produce (round $r): in-$r holds offsets $LOW..$HIGH summed, not 0..$N (retention? use more partitions)"
    add raw-produce "$(field records_per_s "$out")" "$(field seconds "$out")"
    printf '   round %d/%d  raw produce    %8.3f s  %8s records/s\n' "$r" "$RUNS" "$(field seconds "$out")" "$(field records_per_s "$out")"
    out=$(timed "$RAW" produce "$BOOT" "hdr-$r" "$PARTS" "$N" "$SIZE" headers) || die "raw produce with headers (round $r) failed"
    count "hdr-$r"
    [ "$LOW" = 0 ] && [ "$HIGH" = "$N" ] ||
        die "raw produce with headers (round $r): hdr-$r holds offsets $LOW..$HIGH summed, not 0..$N (retention? use more partitions)"
    add raw-headers "$(field records_per_s "$out")" "$(field seconds "$out")"
    printf '   round %d/%d  raw + headers  %8.3f s  %8s records/s\n' "$r" "$RUNS" "$(field seconds "$out")" "$(field records_per_s "$out")"
    out=$(timed "$RAW" consume "$BOOT" in-1 "$N") || die "raw consume (round $r) failed"
    add raw-consume "$(field records_per_s "$out")" "$(field seconds "$out")"
    printf '   round %d/%d  raw consume    %8.3f s  %8s records/s\n' "$r" "$RUNS" "$(field seconds "$out")" "$(field records_per_s "$out")"
    run_sluice alo "$r"
    run_sluice eo "$r"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

CONSUME=$(echo "${RATES[raw-consume]}" | nums | median)
TABLE="| what | runs (s) | median s | records/s (median) | vs raw consume | client CPU s (median) | records per client CPU s | vs raw consume |
|---|---|---|---|---|---|---|---|"
CCPU=$(echo "${CPUS[raw-consume]}" | nums | median)
for k in raw-produce raw-headers raw-consume sluice-alo sluice-eo; do
    case $k in
    raw-produce) what="raw librdkafka produce (idempotent, acks=all, linger.ms=5)" ;;
    raw-headers) what="raw librdkafka produce, with the sink's 5 headers per record" ;;
    raw-consume) what="raw librdkafka consume (consumer_poll)" ;;
    sluice-alo) what="sluice: Kafka source → map → Kafka sink, at-least-once" ;;
    sluice-eo) what="sluice: Kafka source → map → Kafka sink, exactly-once" ;;
    esac
    rate=$(echo "${RATES[$k]}" | nums | median)
    secs=$(echo "${SECS[$k]}" | nums | median)
    runs=$(echo "${SECS[$k]}" | nums | tr '\n' ' ' | sed 's/ $//; s/ /, /g')
    ratio=$(awk -v a="$rate" -v b="$CONSUME" 'BEGIN { printf "%.2f", a / b }')
    cpu=$(echo "${CPUS[$k]}" | nums | median)
    cr=$(awk -v c="$cpu" -v n="$N" -v cc="$CCPU" 'BEGIN { printf "%.0f | %.2f", n / c, cc / c }')
    TABLE+=$'\n'"| $what | $runs | $secs | $(printf "%.0f" "$rate") | $ratio | $cpu | $cr |"
    if [ $k = raw-consume ]; then
        # what a pipeline of a bare consumer and a bare producer with the headers would cost
        s2=$(awk -v a="$secs" -v b="$(echo "${SECS[raw-headers]}" | nums | median)" 'BEGIN { printf "%.3f", a + b }')
        c2=$(awk -v a="$cpu" -v b="$(echo "${CPUS[raw-headers]}" | nums | median)" 'BEGIN { printf "%.2f", a + b }')
        TABLE+=$'\n'"$(awk -v s="$s2" -v c="$c2" -v n="$N" -v cr="$CONSUME" -v cc="$CCPU" 'BEGIN {
            printf "| raw consume + raw produce with headers (sums of the medians) | - | %s | %.0f | %.2f | %s | %.0f | %.2f |",
                s, n / s, n / s / cr, c, n / c, cc / c }')"
    fi
done
echo
echo "$TABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | sed 's/→/->/g' | column -t -s '|' | sed 's/^/   /'
echo "   checkpoints per sluice run: alo${CKS[alo]}, eo${CKS[eo]}"
echo "   (load average ${LOAD_START// /, } -> ${LOAD_END// /, })"

[ "$DOC" = - ] && exit 0

COMMIT=$(commit_id "$ROOT")
CKNOTE=""
if [ -z "$(echo "${CKS[alo]} ${CKS[eo]}" | tr -d ' 0')" ]; then
    CKNOTE="
None completed: the bounded Kafka source takes no part in checkpoints yet
(offsets in checkpoints are not built, see kafka.md), so a run's first
checkpoint stays pending until the job ends, and exactly-once commits one
transaction per sink subtask at the end of input (the journal has one line
per subtask). So these runs do not yet measure the cost of periodic
commits."
fi
ENVS=""
for v in BENCH_RUNS BENCH_KAFKA_RECORDS BENCH_KAFKA_SIZE BENCH_KAFKA_PARTITIONS BENCH_KAFKA_PARALLELISM; do
    [ -n "${!v:-}" ] && ENVS+="$v=\"${!v}\" "
done
if [ "${BUILD#"$ROOT"/}" = build/release ]; then
    HOW="\`${ENVS}make bench-kafka\`, i.e. \`${ENVS}bash bench/kafka.sh build/release\`"
else
    HOW="\`${ENVS}bash bench/kafka.sh $1\` (a Release build; \`make bench-kafka\` runs it on build/release)"
fi
SECTION=$(
    cat <<EOF
## Kafka

Written by \`make bench-kafka\` (\`bench/kafka.sh\`); rerun it rather than
editing the numbers by hand. Sluice's Kafka source and sink
([kafka.md](kafka.md)) against a plain librdkafka client, on the same
development broker in the same invocation.

- **When:** $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$COMMIT\`, build \`${BUILD_TYPE:-unknown}\`.
- **Machine:** $(machine_line).
  Load average ${LOAD_START// /, } at the start, ${LOAD_END// /, } at the end
  (the machine is shared: see the spread of the runs).
- **Command:** $HOW.

$TABLE

Every run moves $N records of $SIZE-byte JSON values
(\`{"id":…,"user":"u…","amount":…,"ts":…,"pad":"xx…"}\`) through topics of
$PARTS partitions on \`sluice-dev-kafka\` (3 mock brokers, one process),
$RUNS rounds, the five runs of a round one after the other. **raw produce**:
\`bench/kafka_raw produce\`, one producer with Sluice's sink settings
(\`enable.idempotence=true\`, \`acks=all\`, \`linger.ms=5\`,
\`batch.num.messages=10000\`), round-robin over the partitions, from the
first \`produce\` to the end of the flush; each round writes a fresh topic.
**with the sink's 5 headers**: the same, each record also carrying the
headers \`job\`, \`subtask\`, \`epoch\`, \`attempt\`, \`seq\` that Sluice's
sink adds (formatted per record, as the sink does).
**raw consume**: \`bench/kafka_raw consume\`, one consumer assigned every
partition of the first round's topic, \`rd_kafka_consumer_poll\` (one
record per call; Sluice's source takes batches), from the assignment to the last
end of partition. **sluice**: \`sluice run\` (embedded master, 2 workers,
parallelism $PAR), the bounded Kafka source reading that same topic
(JSON, 5 fields) → a map (\`amount * 2\`) → the Kafka sink (JSON, key =
\`user\`, 5 headers per record) into a fresh topic, \`checkpoint: {
interval: 1s }\`; records/s = $N / the wall time of the whole process
(start-up, reading the watermarks, and the final flush or commit
included). Exactly-once uses \`commit_proof: journal\` (the dev broker
has no transaction semantics, see kafka.md). **vs raw consume** = records/s
relative to the raw consumer's median. **client CPU s** = user + system
CPU seconds of the client process (GNU time; \`kafka_raw\`, or the whole
\`sluice run\` process: embedded master, 2 workers, source, map, sink),
not counting the broker's; **records per client CPU s** is less sensitive
to the load of the shared machine than the wall-clock rate, and its
**vs raw consume** is the raw consumer's CPU over the row's. Checked in every timed run: all
records acknowledged (raw produce), exactly $N read (raw consume), the
source read $N and the output topic holds $N with nothing dropped by
retention (sluice), and the journal accounts for all $N (exactly-once).
Checkpoints completed per sluice run: at-least-once${CKS[alo]},
exactly-once${CKS[eo]}.$CKNOTE

How to read it: all of it runs on the same $(nproc) cores — the mock
brokers (one process, librdkafka's mock cluster, single-threaded per
broker, everything in memory), the client under test and, for Sluice, its
master, two workers and their ZeroMQ channels. So the figures are bounded
by the mock broker and by the sharing of those cores, not by the network
or a disk; they compare Sluice's connectors with a bare client on the
*same* broker, and say nothing about a real Kafka cluster (see kafka.md:
"Treat the mock as a functional broker, never as a benchmark target").
The Sluice job both consumes and produces every record, so its baseline is
the row **raw consume + raw produce with headers**: a bare client doing the
same two transfers one after the other. The CPU columns are the steadier
comparison: what Sluice spends beyond that row (per record: the difference
of the CPU seconds / $N) is the engine's own cost — decoding the JSON into
rows, the map, the ZeroMQ channels between the tasks, encoding the JSON
again — and, for exactly-once, keeping a copy of every record of the open
epoch for the snapshot and the transactional producer. The two raw produce
rows differ only by the headers: that is the price of labelling every
record with its transaction (what the exactly-once oracle reads), paid by
both delivery modes. The wall-clock rates move with the load of the shared
machine (compare the runs of one row).
Short runs also carry Sluice's fixed costs (starting the embedded
cluster, the source's watermark lookups, the sink's final flush or
commit), which weigh more the fewer records a run has.
EOF
)
write_section "$DOC" "## Kafka"
echo "== wrote the Kafka section of $DOC"
