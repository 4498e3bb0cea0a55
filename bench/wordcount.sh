#!/usr/bin/env bash
# wordcount.sh — the word-count benchmark run by `make bench`.
#
#   bash bench/wordcount.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# Generates a ~500 MB text once (bench/gen_text.c; cached in
# BUILD_DIR/../bench-data and reused while its size matches), then runs, in
# the same session and interleaved round by round so that load changes on a
# shared machine hit every configuration alike:
#   baseline    bench/wc_baseline.c, one thread, a bare C loop (the ceiling)
#   sluice P=1  jobs/wordcount.yaml, --parallelism 1 --workers 1
#   sluice P=2  jobs/wordcount.yaml, --parallelism 2 --workers 2
# Every output is checked against the baseline's (sorted, byte for byte).
# Prints a table of medians and writes it, with the machine and the
# command, into docs/benchmarks.md.
#
# Environment:
#   BENCH_BYTES  size of the text in bytes        (default 500000000)
#   BENCH_RUNS   runs per configuration            (default 3; median reported)
#   BENCH_SEED   generator seed                    (default 42)
#   BENCH_DATA   cache directory of text/outputs   (default BUILD_DIR/../bench-data)
#   BENCH_DOC    report to write                   (default docs/benchmarks.md;
#                                                   "-" writes none)
set -euo pipefail
export LC_ALL=C

die() {
    echo "wordcount.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/wordcount.sh BUILD_DIR"
[ -d "$1" ] || die "no build directory '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
BYTES=${BENCH_BYTES:-500000000}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-42}
DATA=${BENCH_DATA:-$(dirname "$BUILD")/bench-data}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
if ! [[ $BYTES =~ ^[0-9]+$ ]] || [ "$BYTES" -eq 0 ]; then
    die "BENCH_BYTES must be a positive number of bytes, got '$BYTES'"
fi
if ! [[ $RUNS =~ ^[0-9]+$ ]] || [ "$RUNS" -eq 0 ]; then
    die "BENCH_RUNS must be a number >= 1, got '$RUNS'"
fi
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a number, got '$SEED'"

SLUICE=$BUILD/sluice
GEN=$BUILD/bench/gen_text
BASE=$BUILD/bench/wc_baseline
JOB=$ROOT/jobs/wordcount.yaml
for b in "$SLUICE" "$GEN" "$BASE"; do
    [ -x "$b" ] || die "missing $b (build everything first: make release)"
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ "$BUILD_TYPE" = Release ] || echo "wordcount.sh: warning: $BUILD is a '${BUILD_TYPE:-unknown}' build, not Release" >&2

TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=

# ---- the input text ---------------------------------------------------------
mkdir -p "$DATA/out"
TEXT=$DATA/text-$BYTES-seed$SEED.txt
if [ -f "$TEXT" ] && [ "$(stat -c %s "$TEXT")" = "$BYTES" ]; then
    echo "== text: $TEXT (cached)"
else
    echo "== text: generating $BYTES bytes into $TEXT"
    "$GEN" "$TEXT" "$BYTES" "$SEED"
fi
cat "$TEXT" >/dev/null # into the page cache: every run reads it warm

# ---- one timed run -------------------------------------------------------------
CONFIGS=(baseline "sluice P=1" "sluice P=2")
SLUICE_CMD='sluice run jobs/wordcount.yaml --param input=TEXT --param output=OUT --parallelism P --workers P --quiet'

# run_config INDEX OUT LOG: runs configuration INDEX writing OUT, its
# stdout+stderr into LOG; sets WALL, CPU (user + sys s) and RSS (peak KiB)
# (CPU and RSS are "-" without /usr/bin/time).
run_config() {
    local i=$1 out=$2 log=$3 tf=$DATA/out/time.txt
    local -a cmd
    case $i in
    0) cmd=("$BASE" "$TEXT" "$out") ;;
    *) cmd=("$SLUICE" run "$JOB" --param "input=$TEXT" --param "output=$out"
        --parallelism "$i" --workers "$i" --quiet) ;;
    esac
    rm -f "$out" "$tf"
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    if [ -n "$TIME" ]; then
        "$TIME" -o "$tf" -f "%U %S %M" "${cmd[@]}" >"$log" 2>&1 || rc=$?
    else
        "${cmd[@]}" >"$log" 2>&1 || rc=$?
    fi
    t1=$(date +%s.%N)
    if [ $rc -ne 0 ]; then
        cat "$log" >&2
        die "${CONFIGS[$i]} failed (exit $rc): ${cmd[*]}"
    fi
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    CPU=-
    RSS=-
    if [ -n "$TIME" ]; then
        CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$tf")
        RSS=$(awk 'END { print $3 }' "$tf")
    fi
}

# median of the numbers on stdin ("-" if there are none)
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0 || v[1] == "-") { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---- the runs ------------------------------------------------------------------------
REF=$DATA/out/reference.sorted.csv
declare -a WALLS CPUS RSSS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORDS=
DISTINCT=
for ((r = 1; r <= RUNS; r++)); do
    for i in 0 1 2; do
        name=${CONFIGS[$i]}
        out=$DATA/out/wordcount-$i.csv
        log=$DATA/out/run-$i.log
        run_config "$i" "$out" "$log"
        if [ "$i" -eq 0 ] && [ -z "$WORDS" ]; then
            WORDS=$(sed -n 's/.*words=\([0-9]*\).*/\1/p' "$log")
            DISTINCT=$(sed -n 's/.*distinct=\([0-9]*\).*/\1/p' "$log")
            [ -n "$WORDS" ] || die "baseline printed no word count: $(cat "$log")"
            sort "$out" >"$REF"
        fi
        sort "$out" | cmp -s - "$REF" ||
            die "$name (run $r) wrote different counts than the baseline: compare sorted $out with $REF"
        WALLS[i]="${WALLS[i]:-} $WALL"
        CPUS[i]="${CPUS[i]:-} $CPU"
        RSSS[i]="${RSSS[i]:-} $RSS"
        printf '   run %d/%d  %-11s %8.3f s   (output checked)\n' "$r" "$RUNS" "$name" "$WALL"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ------------------------------------------------------------------
nums() { tr ' ' '\n' | grep -v '^$' || true; }
BASE_MED=$(echo "${WALLS[0]}" | nums | median)
TABLE="| config | runs (wall s) | median s | words/s | MB/s | CPU s (median) | peak RSS MB | vs baseline |
|---|---|---|---|---|---|---|---|"
for i in 0 1 2; do
    med=$(echo "${WALLS[i]}" | nums | median)
    cpu=$(echo "${CPUS[i]}" | nums | median)
    rss=$(echo "${RSSS[i]}" | nums | median)
    row=$(awk -v name="${CONFIGS[$i]}" -v runs="$(echo "${WALLS[i]}" | nums | paste -sd' ')" \
        -v med="$med" -v cpu="$cpu" -v rss="$rss" -v words="$WORDS" -v bytes="$BYTES" \
        -v base="$BASE_MED" 'BEGIN {
            wps = words / med; mbs = bytes / 1e6 / med
            w = wps >= 1e6 ? sprintf("%.2f M", wps / 1e6) : sprintf("%.1f K", wps / 1e3)
            r = rss == "-" ? "-" : sprintf("%.0f", rss / 1024)
            printf "| %s | %s | %.3f | %s | %.1f | %s | %s | %.2f |", name, runs, med, w, mbs, cpu, r, base / med }')
    TABLE+=$'\n'"$row"
done

echo
echo "== word count: $BYTES bytes, $WORDS words ($DISTINCT distinct), median of $RUNS runs"
echo "$TABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
echo "   (vs baseline = sluice words/s / baseline words/s; load average ${LOAD_START// /, } -> ${LOAD_END// /, })"

[ "$DOC" = - ] && exit 0

# ---- docs/benchmarks.md ----------------------------------------------------------
COMMIT=$(commit_id "$ROOT")
ENVS=""
[ -n "${BENCH_BYTES:-}" ] && ENVS+="BENCH_BYTES=$BYTES "
[ -n "${BENCH_RUNS:-}" ] && ENVS+="BENCH_RUNS=$RUNS "
[ -n "${BENCH_SEED:-}" ] && ENVS+="BENCH_SEED=$SEED "
if [ "${BUILD#"$ROOT"/}" = build/release ]; then
    HOW="\`${ENVS}make bench\`, i.e. \`${ENVS}bash bench/wordcount.sh build/release\`"
else
    HOW="\`${ENVS}bash bench/wordcount.sh $1\`"
fi
OPS1=$(sed -n '/^operator/,$p' "$DATA/out/run-1.log")
OPS2=$(sed -n '/^operator/,$p' "$DATA/out/run-2.log")
SECTION=$(cat <<EOF
## Word count: sluice against a bare C loop

$TABLE

- **When:** $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$COMMIT\`, build \`${BUILD_TYPE:-unknown}\`.
- **Machine:** $(machine_line).
  Load average ${LOAD_START// /, } at the start, ${LOAD_END// /, } at the end
  (the machine is shared: see the spread of the runs).
- **Input:** $BYTES bytes of generated text (\`bench/gen_text\`, seed $SEED):
  $WORDS words, $DISTINCT distinct; a 100k-word vocabulary drawn with a
  Zipf (s = 1) distribution, some UTF-8 words, punctuation attached to some
  words (so some CSV fields are quoted), lines of 0 to 500 words.
- **Command:** $HOW.
  Each round runs the three configurations one after the other, $RUNS rounds;
  sluice runs \`$SLUICE_CMD\`
  on the embedded mini-cluster.

### How to read it

- **baseline** is \`bench/wc_baseline\`: one thread, 4 MiB \`read(2)\` calls, a
  split on the same whitespace (" \\t\\n\\v\\f\\r") and an open-addressing hash
  table. It is the ceiling: what the hardware does for this job with no
  engine at all.
- A record is a word: **words/s** = words in the text / median wall time,
  **MB/s** = text bytes (10^6) / median wall time. Wall time is the whole
  process, start to output file written, with the text in the page cache.
- **vs baseline** = sluice words/s / baseline words/s (1.00 = as fast as the
  bare loop; 0.25 = four times slower). This ratio is the figure to track:
  it cancels most of the machine's speed.
- **CPU s** is user + system time of the process: above the wall time means
  several threads were busy at once. P=2 can only beat P=1 by as much as
  there are idle cores.
- Every run's output was checked equal to the baseline's (sorted CSV, byte
  for byte), so a fast but wrong run cannot appear here.

### Where sluice's time went (its own summary, last run)

sluice P=1:

\`\`\`
$OPS1
\`\`\`

sluice P=2:

\`\`\`
$OPS2
\`\`\`
EOF
)
write_section "$DOC" "## Word count: sluice against a bare C loop"
echo "== wrote the word-count section of $DOC"
