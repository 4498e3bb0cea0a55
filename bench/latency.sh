#!/usr/bin/env bash
# latency.sh — event-to-result latency, run by `make bench-latency`.
#
#   bash bench/latency.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# Runs Nexmark q1 and q7, q5, and the Yahoo Streaming Benchmark with their
# generator in `realtime` mode: event n is emitted when the wall clock reaches
# its event time, at a fixed rate below capacity, so event time is ingestion
# time. The job's sink is replaced by a `discard` sink that measures, per
# record, the wall clock minus a timestamp field of the result:
#   q1   date_time      ingestion to sink (a stateless query)
#   q7   window_end     a tumbling window's result after its end
#   q5   window_end     the hottest auction of a sliding window after its end
#                       (the job ranks the counts in a second window of one
#                       slide, so its results come one slide after the end)
#   ysb  latest         YSB's definition: emission minus the newest event of
#                       the window
# Results whose timestamp lies in the first LAT_WARMUP seconds of event time
# (start-up) or after LAT_WARMUP + LAT_SPAN (windows the end of the input
# closes early) are not measured. Windows are shorter than the queries'
# defaults (q7 and ysb 1 s, q5 10 s sliding by 1 s) so that a run has tens of
# results. Medians over LAT_RUNS runs of each run's p50, p99 and max; the
# table goes into the "Latency" section of docs/benchmarks.md.
#
# Environment:
#   LAT_RATE     events/s of the generator       (default 100000)
#   LAT_SECONDS  event time of one run (s)       (default 30)
#   LAT_WARMUP   start-up left out (s)           (default 5)
#   LAT_SPAN     event time measured (s)         (default 20)
#   LAT_RUNS     runs per query                  (default 3)
#   LAT_QUERIES  queries                         (default "q1 q7 q5 ysb")
#   BENCH_DOC    report to write                 (default docs/benchmarks.md; "-" none)
set -euo pipefail
export LC_ALL=C

die() {
    echo "latency.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/latency.sh BUILD_DIR"
[ -x "$1/sluice" ] || die "no sluice in '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
RATE=${LAT_RATE:-100000}
SECONDS_RUN=${LAT_SECONDS:-30}
WARMUP=${LAT_WARMUP:-5}
SPAN=${LAT_SPAN:-20}
RUNS=${LAT_RUNS:-3}
QUERIES=${LAT_QUERIES:-q1 q7 q5 ysb}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
for v in RATE SECONDS_RUN WARMUP SPAN RUNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
[ $((WARMUP + SPAN)) -lt "$SECONDS_RUN" ] || die "LAT_WARMUP + LAT_SPAN must be below LAT_SECONDS"
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT

# spec QUERY: the query's job with a realtime source and a measuring sink.
spec() {
    local q=$1 path field
    case $q in
    q1) path=$ROOT/jobs/nexmark/q1.yaml field=date_time ;;
    q5 | q7) path=$ROOT/jobs/nexmark/$q.yaml field=window_end ;;
    ysb) path=$ROOT/jobs/ysb.yaml field=latest ;;
    *) die "unknown query '$q' (q1, q5, q7, ysb)" ;;
    esac
    python3 - "$path" "$field" <<'PY'
import re, sys
path, field = sys.argv[1:3]
s = open(path).read()
head, rest = s.split("sources:\n", 1)
src, tail = rest.split("\n\n", 1)
src = re.sub(r"\n    first_event_time: [^\n]*", "", src)
src = re.sub(r"\n    event_rate: [^\n]*", "", src)
add = "\n    realtime: true\n    first_event_time: ${start}\n    event_rate: ${event_rate}"
assert "    seed: ${seed:-0}" in src, path
src = src.replace("    seed: ${seed:-0}", "    seed: ${seed:-0}" + add, 1)
s = head + "sources:\n" + src + "\n\n" + tail
i = s.index("\nsinks:")
last = re.findall(r"\n  - name: (\w+)", s[:i])[-1]
print(s[:i] + "\nsinks:\n  - {name: out, type: discard, input: %s, latency: %s,"
      " latency_warmup: \"${warmup}\", latency_span: \"${span}\"}" % (last, field))
PY
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A P50 P99 MAX NRES
for q in $QUERIES; do
    spec "$q" >"$DATA/$q.yaml"
    for r in $(seq 1 "$RUNS"); do
        start=$(($(date +%s%3N) + 1000))
        log=$DATA/$q.$r.log
        "$BUILD/sluice" run "$DATA/$q.yaml" --parallelism 1 --workers 1 --quiet \
            -p events=$((RATE * SECONDS_RUN)) -p event_rate="$RATE" -p start="$start" \
            -p warmup="${WARMUP}s" -p span="${SPAN}s" -p window=1s -p slide=1s \
            -p campaigns="$ROOT/jobs/data/ysb-campaigns.csv" 2>"$log" ||
            { cat "$log" >&2; die "$q run $r failed"; }
        line=$(grep -m1 '^latency out\[0\]: p50' "$log") || { cat "$log" >&2; die "$q: no latency line"; }
        read -r p50 p99 max n <<<"$(sed -E 's/.*p50 ([0-9]+) ms p99 ([0-9]+) ms max ([0-9]+) ms over ([0-9]+) .*/\1 \2 \3 \4/' <<<"$line")"
        P50[$q]+="$p50 " P99[$q]+="$p99 " MAX[$q]+="$max " NRES[$q]=$n
        echo "$q run $r: $line" >&2
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

table="| query | measures | results measured (per run) | p50 ms | p99 ms | max ms |
|---|---|---:|---:|---:|---:|"
for q in $QUERIES; do
    case $q in
    q1) what="ingestion → sink, per record" ;;
    q7) what="tumbling 1 s window end → result" ;;
    q5) what="sliding 10 s/1 s window end → hottest result" ;;
    ysb) what="newest event of a 1 s window → result" ;;
    esac
    table+="
| $q | $what | ${NRES[$q]} | $(median "${P50[$q]}") | $(median "${P99[$q]}") | $(median "${MAX[$q]}") |"
done
echo "$table"

[ "$DOC" = "-" ] && exit 0
SECTION="## Latency

\`make bench-latency\` ($(commit_id "$ROOT"), $(date -u +%Y-%m-%d)): $(machine_line);
load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on
the machine shows in the p99 and max).
One process, parallelism 1, generator in \`realtime\` mode at $RATE events/s
(below capacity), $SECONDS_RUN s of events per run, results of the first
$WARMUP s and after $((WARMUP + SPAN)) s of event time left out; medians of
$RUNS runs of each run's p50, p99 and max (bench/latency.sh says how each is
measured).

$table

### How to read it

- A window's result cannot come before its end: the watermark (here with
  no out-of-orderness allowed) passes the end when the first event after it
  arrives, and sources send a watermark at most every 10 ms (\`watermark.interval\`).
- q5 ranks each sliding window's counts in a second (tumbling) window of one
  slide, which fires a slide later: its latency is one slide (1 s) plus the
  pipeline's.
- YSB's reference point is the newest event in the window; WindFlow's
  published median on this pipeline is about 8 ms.
"
write_section "$DOC" "## Latency"
echo "latency.sh: wrote the Latency section of $DOC" >&2
