#!/usr/bin/env bash
# nexmark.sh — the Nexmark benchmark run by `make bench-nexmark`.
#
#   bash bench/nexmark.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# For each query of jobs/nexmark/ (q0, q1, q2, the event-time windowed
# q5, q7, q11, the string queries q14, q21, q22, the joins q4, q9, q13,
# q20, the daily statistics q15, q16, q17 and the per-key top-N q18, q19)
# runs, over the same events
# of the deterministic generator (sluice/nexmark.h), interleaved round
# by round so that load changes on a shared machine hit every configuration
# alike:
#   ceiling     bench/nexmark_ceiling.c: the same events, the same result, one
#               thread, no framework; counts the rows and discards them
#   sluice P=1  jobs/nexmark/qN.yaml, --parallelism 1 --workers 1
#   sluice P=2  jobs/nexmark/qN.yaml, --parallelism 2 --workers 2
# sluice runs a temporary copy of each job whose file sink is replaced by a
# `discard` sink (counts and drops, chained into the query's task, like the
# ceiling). Before timing, each job as written is checked against
# bench/nexmark_ref on a small stream (sorted rows, byte for byte); in every
# timed run sluice's sink must count as many rows as the ceiling, and its
# source as many events.
# Wall time, CPU time (user + sys, from the kernel's accounting of the
# process via GNU time, like Nexmark's Cores x Time) and peak RSS of every
# run; the table of medians is printed and written, with the machine, into
# the "Nexmark" section of docs/benchmarks.md (the rest of the file is kept).
#
# Environment:
#   BENCH_EVENTS   events per run (all kinds), for every query
#                  (default: q0, q1, q14, q21, q22 27000000; q2 48000000;
#                  the others: see events_of — about 11 s of the P=1 run
#                  on a nearly idle 2-CPU machine; the whole harness takes
#                  about 25 minutes)
#   BENCH_RUNS     runs per configuration              (default 3; median reported)
#   BENCH_SEED     generator seed                      (default 0)
#   BENCH_QUERIES  queries to run                      (default "q0 q1 q2 q5 q7 q11
#                                                        q14 q21 q22 q4 q9 q13 q15 q16
#                                                        q17 q18 q19 q20")
#   BENCH_PARALLELISM  sluice parallelisms             (default "1 2")
#   BENCH_DATA     scratch directory (specs, logs)     (default BUILD_DIR/../bench-data/nexmark)
#   BENCH_DOC      report to write                     (default docs/benchmarks.md;
#                                                        "-" writes none)
set -euo pipefail
export LC_ALL=C

die() {
    echo "nexmark.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/nexmark.sh BUILD_DIR"
[ -d "$1" ] || die "no build directory '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
EVENTS=${BENCH_EVENTS:-}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-0}
ALL_QUERIES="q0 q1 q2 q5 q7 q11 q14 q21 q22 q4 q9 q13 q15 q16 q17 q18 q19 q20"
QUERIES=${BENCH_QUERIES:-$ALL_QUERIES}
PARS=${BENCH_PARALLELISM:-1 2}
DATA=${BENCH_DATA:-$(dirname "$BUILD")/bench-data/nexmark}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
if [ -n "$EVENTS" ] && { ! [[ $EVENTS =~ ^[0-9]+$ ]] || [ "$EVENTS" -eq 0 ]; }; then
    die "BENCH_EVENTS must be a positive number of events, got '$EVENTS'"
fi
if ! [[ $RUNS =~ ^[0-9]+$ ]] || [ "$RUNS" -eq 0 ]; then
    die "BENCH_RUNS must be a number >= 1, got '$RUNS'"
fi
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a number, got '$SEED'"
read -r -a QS <<<"$QUERIES"
read -r -a PS <<<"$PARS"
[ ${#QS[@]} -gt 0 ] || die "BENCH_QUERIES is empty"
[ ${#PS[@]} -gt 0 ] || die "BENCH_PARALLELISM is empty"
for q in "${QS[@]}"; do
    case " $ALL_QUERIES " in
    *" $q "*) ;;
    *) die "BENCH_QUERIES: unknown query '$q' ($ALL_QUERIES)" ;;
    esac
done
for p in "${PS[@]}"; do
    [[ $p =~ ^[1-9][0-9]*$ ]] || die "BENCH_PARALLELISM: bad parallelism '$p'"
done

SLUICE=$BUILD/sluice
CEIL=$BUILD/bench/nexmark_ceiling
REFP=$BUILD/bench/nexmark_ref
for b in "$SLUICE" "$CEIL" "$REFP"; do
    [ -x "$b" ] || die "missing $b (build everything first: make release)"
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ "$BUILD_TYPE" = Release ] || echo "nexmark.sh: warning: $BUILD is a '${BUILD_TYPE:-unknown}' build, not Release" >&2

TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=

# Flink's published throughput per core (github.com/nexmark/nexmark README,
# "Benchmark Results": Flink 1.13, 100 M events, 8 TaskManagers on 3 x 8-core
# machines, exactly-once checkpoints every 3 min, RocksDB state backend).
flink_per_core() {
    case $1 in
    q0) echo "155.0 K" ;;
    q1) echo "157.9 K" ;;
    q2) echo "175.2 K" ;;
    q14) echo "161.2 K" ;;
    q4) echo "34 K" ;;
    q5) echo "22 K" ;;
    q7) echo "12 K" ;;
    q9) echo "14 K" ;;
    q21) echo "98.5 K" ;;
    q22) echo "130.0 K" ;;
    *) echo "-" ;;
    esac
}

# events_of QUERY: the events a run of QUERY generates
events_of() {
    if [ -n "$EVENTS" ]; then
        echo "$EVENTS"
    else
        # about 11 s of the P=1 run each on a nearly idle 2-CPU machine (the
        # rates of the last table): >= 10 s, so start-up and the last
        # flush are noise
        case $1 in
        q2) echo 48000000 ;; # keeps 0.75 % of the events: sluice runs faster
        q7) echo 25000000 ;;
        q5 | q11 | q17) echo 22000000 ;; # windows: keyed state, watermarks
        q4 | q15) echo 19000000 ;;
        q13) echo 26000000 ;;
        q9 | q18) echo 12000000 ;; # joins, dedup
        q19) echo 13000000 ;;
        q20) echo 9000000 ;;
        q16) echo 6500000 ;; # distinct sets of 10 000 channels
        *) echo 27000000 ;;  # q0, q1, q14, q21, q22
        esac
    fi
}

# ---- the job copies: the file sink replaced by a discard sink -------------------
mkdir -p "$DATA"
for q in "${QS[@]}"; do
    src=$ROOT/jobs/nexmark/$q.yaml
    dst=$DATA/$q-discard.yaml
    [ -f "$src" ] || die "missing $src"
    # only in the sinks section: q13 has a file source
    sed -e '/^sinks:/,$ { s/^\([[:space:]]*\)type: file[[:space:]]*$/\1type: discard/' \
        -e '/^[[:space:]]*path:/d' -e '/^[[:space:]]*format:[[:space:]]*csv/d' -e '}' "$src" >"$dst"
    if ! grep -q '^[[:space:]]*type: discard' "$dst" || sed -n '/^sinks:/,$p' "$dst" | grep -q 'type: file'; then
        die "could not replace the file sink of $src by a discard sink (see $dst)"
    fi
done

# ---- correctness of the copies, on a small stream (untimed) ---------------------
# The windowed queries are checked at 1 000 events/s of event time (100 s,
# dozens of windows; the joins and sessions of q4, q9, q18, q19, q20 are
# exact from 1 000 events/s on and every event has its own millisecond),
# q14 and the daily q15-q17 at 1 event/s (28 hours, so that every part of
# the day occurs, and two days); all are timed at the default 10 000
# events/s. q13 reads jobs/nexmark/side_input.csv (passed as a parameter,
# ignored by the other jobs).
SIDE=(--param "side_input=$ROOT/jobs/nexmark/side_input.csv")
CHECK_EVENTS=100000
CHECK_RATE=1000
PMAX=${PS[${#PS[@]} - 1]}
for q in "${QS[@]}"; do
    out=$DATA/check-$q.csv
    ref=$DATA/check-$q-ref.csv
    crate=
    case $q in
    q5 | q7 | q11 | q4 | q9 | q18 | q19 | q20) crate=$CHECK_RATE ;;
    q14 | q15 | q16 | q17) crate=1 ;;
    esac
    rate=()
    [ -z "$crate" ] || rate=(--param "event_rate=$crate")
    "$SLUICE" run "$ROOT/jobs/nexmark/$q.yaml" --param "events=$CHECK_EVENTS" --param "seed=$SEED" \
        "${rate[@]}" "${SIDE[@]}" --param "output=$out" --parallelism "$PMAX" --workers "$PMAX" --quiet \
        2>"$DATA/check-$q.log" ||
        die "$q: check run failed: $(cat "$DATA/check-$q.log")"
    "$REFP" "$q" "$CHECK_EVENTS" "$SEED" "$ref" ${crate:+"$crate"} 2>/dev/null ||
        die "$q: nexmark_ref failed"
    cmp -s <(sort "$out") <(sort "$ref") ||
        die "$q: sluice's rows differ from nexmark_ref's on $CHECK_EVENTS events: compare sorted $out with $ref"
    echo "== $q: the job writes nexmark_ref's rows ($CHECK_EVENTS events, P=$PMAX)"
done

# ---- one timed run ----------------------------------------------------------------
CONFIGS=(ceiling)
for p in "${PS[@]}"; do CONFIGS+=("sluice P=$p"); done
NC=${#CONFIGS[@]}
SLUICE_CMD='sluice run QUERY-COPY.yaml --param events=EVENTS --param seed=SEED --parallelism P --workers P --quiet >/dev/null'

# run_config QUERY INDEX LOG: runs configuration INDEX of QUERY, sluice with
# stdout to /dev/null and stderr (its summary) to LOG, the ceiling with stdout
# to LOG and stderr to LOG.err; sets WALL,
# CPU (user + sys s), RSS (peak KiB, "-" without GNU time) and ROWS (rows the
# ceiling computed / sluice's sink counted).
run_config() {
    local q=$1 i=$2 log=$3 tf=$DATA/time.txt out=/dev/null errf=$3 ev
    ev=$(events_of "$1")
    local -a cmd
    if [ "$i" -eq 0 ]; then
        cmd=("$CEIL" "$q" "$ev" "$SEED")
        out=$log
        errf=$log.err
    else
        local p=${PS[i - 1]}
        cmd=("$SLUICE" run "$DATA/$q-discard.yaml" --param "events=$ev" --param "seed=$SEED"
            "${SIDE[@]}" --parallelism "$p" --workers "$p" --quiet)
    fi
    rm -f "$tf"
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    if [ -n "$TIME" ]; then
        "$TIME" -o "$tf" -f "%U %S %M" "${cmd[@]}" >"$out" 2>"$errf" || rc=$?
    else
        # bash's `times` in a subshell: the user and sys time of its children
        (
            "${cmd[@]}" >"$out" 2>"$errf" || exit $?
            times | tail -n 1 >"$tf"
        ) || rc=$?
    fi
    t1=$(date +%s.%N)
    if [ $rc -ne 0 ]; then
        cat "$log" "$errf" >&2 2>/dev/null || true
        die "$q ${CONFIGS[$i]} failed (exit $rc): ${cmd[*]}"
    fi
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ -n "$TIME" ]; then
        CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$tf")
        RSS=$(awk 'END { print $3 }' "$tf")
    else
        # "0m1.234s 0m0.056s"
        CPU=$(awk '{ n = 0; for (f = 1; f <= 2; f++) { split($f, a, /[ms]/); n += a[1] * 60 + a[2] }
                     printf "%.2f", n }' "$tf")
        RSS=-
    fi
    if [ "$i" -eq 0 ]; then
        ROWS=$(sed -n 's/.* rows=\([0-9]*\) .*/\1/p' "$log")
        [ -n "$ROWS" ] || die "$q: the ceiling printed no row count: $(cat "$log")"
    else
        # sluice's summary: "operator type records-in records-out busy records/s"
        ROWS=$(awk '$2 == "discard" { print $3 }' "$log")
        local got
        # records in: the events generated (a fused filter emits fewer rows)
        got=$(awk '$2 == "nexmark" { print $3 }' "$log")
        [ -n "$ROWS" ] || die "$q ${CONFIGS[$i]}: no discard sink in sluice's summary: $(cat "$log")"
        [ "$got" = "$ev" ] || die "$q ${CONFIGS[$i]}: the source generated '$got' events, not $ev"
    fi
}

# median of the numbers on stdin ("-" if there are none)
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0 || v[1] == "-") { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
nums() { tr ' ' '\n' | grep -v '^$' || true; }

# ---- the runs ----------------------------------------------------------------------
declare -A WALLS CPUS RSSS CROWS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= RUNS; r++)); do
    for q in "${QS[@]}"; do
        for ((i = 0; i < NC; i++)); do
            log=$DATA/run-$q-$i.log
            run_config "$q" "$i" "$log"
            if [ "$i" -eq 0 ]; then
                CROWS[$q]=$ROWS
            elif [ "$ROWS" != "${CROWS[$q]}" ]; then
                die "$q ${CONFIGS[$i]} (run $r): sluice's sink counted $ROWS rows, the ceiling ${CROWS[$q]}"
            fi
            k=$q/$i
            WALLS[$k]="${WALLS[$k]:-} $WALL"
            CPUS[$k]="${CPUS[$k]:-} $CPU"
            RSSS[$k]="${RSSS[$k]:-} $RSS"
            printf '   run %d/%d  %s %-11s %8.3f s  %7s CPU s  %9s rows (checked)\n' \
                "$r" "$RUNS" "$q" "${CONFIGS[$i]}" "$WALL" "$CPU" "$ROWS"
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table --------------------------------------------------------------------
TABLE="| query | config | events | rows | runs (wall s) | median wall s | cores | events/s | events/s/core | peak RSS MB | vs ceiling | per core vs ceiling | Flink/core, published |
|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for q in "${QS[@]}"; do
    cw=$(echo "${WALLS[$q/0]}" | nums | median)
    cc=$(echo "${CPUS[$q/0]}" | nums | median)
    for ((i = 0; i < NC; i++)); do
        k=$q/$i
        med=$(echo "${WALLS[$k]}" | nums | median)
        cpu=$(echo "${CPUS[$k]}" | nums | median)
        rss=$(echo "${RSSS[$k]}" | nums | median)
        row=$(awk -v q="$q" -v name="${CONFIGS[$i]}" -v ev="$(events_of "$q")" -v rows="${CROWS[$q]}" \
            -v runs="$(echo "${WALLS[$k]}" | nums | paste -sd' ')" -v med="$med" -v cpu="$cpu" \
            -v rss="$rss" -v cw="$cw" -v cc="$cc" -v flink="$(flink_per_core "$q")" '
            function h(x) { return x >= 1e6 ? sprintf("%.2f M", x / 1e6) : sprintf("%.1f K", x / 1e3) }
            BEGIN {
                eps = ev / med; epc = cpu > 0 ? ev / cpu : 0
                ceps = ev / cw; cepc = cc > 0 ? ev / cc : 0
                r = rss == "-" ? "-" : sprintf("%.0f", rss / 1024)
                printf "| %s | %s | %d | %d | %s | %.3f | %.2f | %s | %s | %s | %.2f | %s | %s |",
                    q, name, ev, rows, runs, med, cpu / med, h(eps), (epc > 0 ? h(epc) : "-"), r,
                    eps / ceps, (epc > 0 && cepc > 0 ? sprintf("%.2f", epc / cepc) : "-"), flink }')
        TABLE+=$'\n'"$row"
    done
done

echo
echo "== Nexmark: seed $SEED, median of $RUNS runs"
echo "$TABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
echo "   (cores = CPU s / wall s; events/s/core = events / CPU s; vs ceiling = events/s / the"
echo "    ceiling's events/s; load average ${LOAD_START// /, } -> ${LOAD_END// /, })"

[ "$DOC" = - ] && exit 0

# ---- docs/benchmarks.md: the "## Nexmark" section ---------------------------------------
COMMIT=$(commit_id "$ROOT")
ENVS=""
[ -n "${BENCH_EVENTS:-}" ] && ENVS+="BENCH_EVENTS=$EVENTS "
[ -n "${BENCH_RUNS:-}" ] && ENVS+="BENCH_RUNS=$RUNS "
[ -n "${BENCH_SEED:-}" ] && ENVS+="BENCH_SEED=$SEED "
[ -n "${BENCH_QUERIES:-}" ] && ENVS+="BENCH_QUERIES=\"$QUERIES\" "
[ -n "${BENCH_PARALLELISM:-}" ] && ENVS+="BENCH_PARALLELISM=\"$PARS\" "
if [ "${BUILD#"$ROOT"/}" = build/release ]; then
    HOW="\`${ENVS}make bench-nexmark\`, i.e. \`${ENVS}bash bench/nexmark.sh build/release\`"
else
    HOW="\`${ENVS}bash bench/nexmark.sh $1\`"
fi
SUMMARIES=""
for q in "${QS[@]}"; do
    for ((i = 1; i < NC; i++)); do
        SUMMARIES+="$q, ${CONFIGS[$i]}:"$'\n\n```\n'
        SUMMARIES+=$(sed -n '/^operator/,$p' "$DATA/run-$q-$i.log")
        SUMMARIES+=$'\n```\n\n'
    done
done
SECTION=$(
    cat <<EOF
## Nexmark

Written by \`make bench-nexmark\` (\`bench/nexmark.sh\`); rerun it rather
than editing the numbers by hand.

$TABLE

- **When:** $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$COMMIT\`, build \`${BUILD_TYPE:-unknown}\`.
- **Machine:** $(machine_line).
  Load average ${LOAD_START// /, } at the start, ${LOAD_END// /, } at the end
  (the machine is shared: see the spread of the runs).
- **Input:** the events column: that many events of the \`nexmark\`
  source (seed $SEED, default model: persons : auctions : bids = 1 : 3 : 46,
  see [nexmark.md](nexmark.md)), the same for the ceiling and sluice; rows
  is the size of the query's result.
- **Command:** $HOW.
  Each round runs, query after query, the ceiling then sluice at each
  parallelism, $RUNS rounds; sluice runs \`$SLUICE_CMD\`
  on the embedded mini-cluster.

### How to read it

- **ceiling** is \`bench/nexmark_ceiling\`: one thread, no framework. It
  generates every event with the same generator as the source
  (\`sl_nexmark_gen_event\`, the same seed, per-channel caches; without the
  \`extra\` filler for the queries that never read it, as the source leaves
  out the columns no operator of the job reads), selects the bids (q2: on auctions that are multiples of 123),
  computes the query's result row (q1: \`price * 908 / 1000\`) as ints and
  string views, and discards it, counting rows and folding them into a
  checksum. The windowed queries keep their windows as a hand-written
  streaming program would (q5: bid counts per auction in a hash table per
  2 s pane, summed over the 5 panes of a window when it ends; q7: the best
  bid of the current window; q11: a hash table of open sessions per bidder,
  swept every second of event time). The string queries parse by hand, with
  no regular expression (q14: a loop counting 'c's; q21: \`strcasecmp\` on
  the channel, else \`strstr\` for \`channel_id=\` in the url; q22:
  \`strchr\` for the '/'s), where sluice runs \`count_char\`,
  \`regexp_extract\` (for q21's pattern a literal search and a scan,
  regexec for other patterns) and \`split_index\`. It is what the
  hardware does for the query with no engine.
- **sluice** runs a copy of \`jobs/nexmark/qN.yaml\` whose file sink is
  replaced by a \`discard\` sink, which counts and drops the rows, as the
  ceiling does; the jobs as written were first checked against
  \`bench/nexmark_ref\` on $CHECK_EVENTS events.
- **events/s** = events (all kinds, the Nexmark convention) / median wall
  time of the whole process, start to exit. **cores** = median CPU time
  (user + sys of the process and its threads, from the kernel's accounting
  via GNU time) / median wall time. **events/s/core** = events / median CPU
  time, i.e. events / (Cores × Time), the figure Nexmark publishes as
  Throughput/Cores. P=2 can only use the cores that are idle: with
  $(nproc) CPUs and the load average below, its cores stay under 2, and
  per-core throughput falls when the threads wait on each other.
- **vs ceiling** = events/s / the ceiling's events/s for the same query in
  the same invocation; **per core vs ceiling** compares events/s/core. These
  ratios are the figures to track: they cancel most of the machine's speed.
- **Flink/core, published** is Throughput/Cores from the Nexmark project's
  results (github.com/nexmark/nexmark, README, "Benchmark Results": Flink
  1.13, 100 M events, 3 machines × 8 cores, 8 TaskManagers, a blackhole sink,
  exactly-once checkpoints every 3 min on RocksDB). A reference point only:
  other hardware, a JVM, Beam's generator, and its cores are counted across
  the whole cluster.
- **Checked:** before the timed runs, each sluice copy's rows on
  $CHECK_EVENTS events (P=$PMAX) were compared, sorted, byte for byte with
  \`bench/nexmark_ref\`'s CSV; in every timed run sluice's sink counted as
  many rows as the ceiling computed, and its source generated all the
  events. A fast but wrong run cannot appear here.

### Where sluice's time went (its own summary, last run)

$SUMMARIES
EOF
)
write_section "$DOC" "## Nexmark"
echo "== wrote the Nexmark section of $DOC"
