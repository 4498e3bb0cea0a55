#!/usr/bin/env bash
# ysb.sh — the Yahoo Streaming Benchmark run by `make bench-ysb`.
#
#   bash bench/ysb.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# Runs, over the same events of the `ysb` generator (sluice/ysb.h), round by
# round so that load changes on a shared machine hit every configuration
# alike:
#   ceiling  bench/ysb_ref ceiling: the same result, one thread, no framework
#   P=1      jobs/ysb.yaml, sluice run --parallelism 1 --workers 1 (one process)
#   P=2      jobs/ysb.yaml, sluice run --parallelism 2 --workers 2 (one process)
#   P=2 x2   a sluice-master and two sluice-worker processes (data channels
#            over ZeroMQ TCP on 127.0.0.1), sluice submit --parallelism 2
# sluice runs a copy of the job whose file sink is a `discard` sink. Every
# sluice run must count as many window rows at its sink as the ceiling, and
# its source as many events. CPU time is user + sys of the processes (GNU
# time for one process; /proc/PID/stat of the two workers, before and after
# the job, for P=2 x2: the master is not counted). events/s per core = events
# / CPU seconds. The table of medians goes to stdout with the ratio of each
# configuration's events/s per core to the ceiling's in the same run, and
# the load average before and after.
#
# Environment:
#   BENCH_EVENTS   events per run        (default 20000000)
#   BENCH_RUNS     runs per configuration (default 3; the median is reported)
#   BENCH_SEED     generator seed        (default 0)
#   BENCH_CONFIGS  which configurations  (default "ceiling p1 p2 p2x2")
#   BENCH_DATA     scratch directory     (default BUILD_DIR/../bench-data/ysb)
set -euo pipefail
export LC_ALL=C

die() {
    echo "ysb.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/ysb.sh BUILD_DIR"
[ -d "$1" ] || die "no build directory '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
EVENTS=${BENCH_EVENTS:-20000000}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-0}
CONFIGS=${BENCH_CONFIGS:-ceiling p1 p2 p2x2}
DATA=${BENCH_DATA:-$(dirname "$BUILD")/bench-data/ysb}
[[ $EVENTS =~ ^[0-9]+$ ]] && [ "$EVENTS" -gt 0 ] || die "BENCH_EVENTS must be a positive number, got '$EVENTS'"
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -gt 0 ] || die "BENCH_RUNS must be a number >= 1, got '$RUNS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a number, got '$SEED'"
read -r -a CS <<<"$CONFIGS"
for c in "${CS[@]}"; do
    case $c in
    ceiling | p1 | p2 | p2x2) ;;
    *) die "BENCH_CONFIGS: unknown configuration '$c' (ceiling p1 p2 p2x2)" ;;
    esac
done
SLUICE=$BUILD/sluice
REF=$BUILD/bench/ysb_ref
for b in "$SLUICE" "$REF" "$BUILD/sluice-master" "$BUILD/sluice-worker"; do
    [ -x "$b" ] || die "missing $b (build $BUILD first)"
done
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed for the CPU times"
mkdir -p "$DATA"
CAMPAIGNS=$ROOT/jobs/data/ysb-campaigns.csv

# the job with a discard sink
SPEC=$DATA/ysb-discard.yaml
sed -e '/^sinks:/,$ { s/^\([[:space:]]*\)type: file[[:space:]]*$/\1type: discard/' \
    -e '/^[[:space:]]*format: csv[[:space:]]*$/d' -e '/^[[:space:]]*path: /d }' \
    "$ROOT/jobs/ysb.yaml" >"$SPEC"
grep -q '^[[:space:]]*type: discard' "$SPEC" || die "could not make a discard sink in $SPEC"

# the expected number of window rows
WANT=$("$REF" ceiling "$EVENTS" "$SEED" | awk '{ print $2 }')
[[ $WANT =~ ^[0-9]+$ ]] || die "ysb_ref ceiling printed no row count"

# cpu_ticks PID: utime + stime of a process, in seconds
cpu_of() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# check_summary LOG: sluice's summary must show every event and every row
check_summary() {
    local log=$1 what=$2 ev rows
    ev=$(awk '$2 == "ysb" && $3 ~ /^[0-9]+$/ { print $3 }' "$log")
    rows=$(awk '$2 == "discard" { print $3 }' "$log")
    [ "$ev" = "$EVENTS" ] || die "$what: the source read '$ev' events, not $EVENTS (see $log)"
    [ "$rows" = "$WANT" ] || die "$what: the sink counted '$rows' rows, ysb_ref $WANT (see $log)"
}

# one run of configuration $1: prints "WALL CPU"
run_one() {
    local c=$1 log=$DATA/$1.log tf=$DATA/$1.time
    case $c in
    ceiling)
        /usr/bin/time -f "%e %U %S" -o "$tf" "$REF" ceiling "$EVENTS" "$SEED" >"$log"
        [ "$(awk '{ print $2 }' "$log")" = "$WANT" ] || die "ceiling: wrong row count"
        ;;
    p1 | p2)
        local p=${c#p}
        /usr/bin/time -f "%e %U %S" -o "$tf" "$SLUICE" run "$SPEC" --parallelism "$p" \
            --workers "$p" --param "events=$EVENTS" --param "seed=$SEED" \
            --param "campaigns=$CAMPAIGNS" >"$log" 2>&1 || die "$c: sluice run failed: $(tail -n 5 "$log")"
        check_summary "$log" "$c"
        ;;
    p2x2)
        run_cluster >"$tf" 2>"$log.err" || die "p2x2: $(tail -n 5 "$log.err")"
        awk '{ print $1, $2, 0 }' "$tf" >"$tf.x" && mv "$tf.x" "$tf"
        ;;
    esac
    tail -n 1 "$tf" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }'
}

# master + 2 workers over TCP; prints "WALL CPU_OF_THE_WORKERS"
run_cluster() {
    local port ep w
    CLUSTER_PIDS=()
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ep=tcp://127.0.0.1:$port
    local state=$DATA/cluster-state
    rm -rf "$state"
    "$BUILD/sluice-master" --bind "$ep" --state-dir "$state" >"$DATA/master.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    # run_one runs in a subshell: its end (or a die) stops the cluster
    trap 'kill "${CLUSTER_PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
    for w in w1 w2; do
        "$BUILD/sluice-worker" --id "$w" --slots 4 --master "$ep" \
            --data-bind tcp://127.0.0.1 >"$DATA/$w.out" 2>&1 &
        CLUSTER_PIDS+=($!)
    done
    local deadline=$((SECONDS + 30)) alive=0
    while [ "$alive" -lt 2 ]; do
        [ $SECONDS -lt $deadline ] || die "p2x2: the workers did not register"
        alive=$(SLUICE_MASTER=$ep "$SLUICE" workers --json 2>/dev/null |
            python3 -c 'import json, sys; print(sum(w["alive"] for w in json.load(sys.stdin)))' 2>/dev/null || echo 0)
        sleep 0.1
    done
    local c0 c1 t0 t1 log=$DATA/p2x2.log
    c0=$(awk -v a="$(cpu_of "${CLUSTER_PIDS[1]}")" -v b="$(cpu_of "${CLUSTER_PIDS[2]}")" 'BEGIN { print a + b }')
    t0=$(date +%s.%N)
    SLUICE_MASTER=$ep "$SLUICE" submit "$SPEC" --parallelism 2 --param "events=$EVENTS" \
        --param "seed=$SEED" --param "campaigns=$CAMPAIGNS" >"$log" 2>&1 ||
        die "p2x2: sluice submit failed: $(tail -n 5 "$log")"
    t1=$(date +%s.%N)
    c1=$(awk -v a="$(cpu_of "${CLUSTER_PIDS[1]}")" -v b="$(cpu_of "${CLUSTER_PIDS[2]}")" 'BEGIN { print a + b }')
    check_summary "$log" p2x2
    awk -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" 'BEGIN { printf "%.2f %.3f\n", t1 - t0, c1 - c0 }'
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A WALLS CPUS
for ((r = 1; r <= RUNS; r++)); do
    for c in "${CS[@]}"; do
        read -r wall cpu < <(run_one "$c") || true
        [ -n "${cpu:-}" ] || die "run $r of $c failed (see $DATA/$c.log)"
        WALLS[$c]+="$wall "
        CPUS[$c]+="$cpu "
        echo "run $r $c: wall $wall s, cpu $cpu s" >&2
    done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A NAME=([ceiling]="ysb_ref ceiling (one thread)" [p1]="-P 1 --workers 1"
    [p2]="-P 2 --workers 2 (one process)" [p2x2]="-P 2, master + 2 sluice-worker (TCP)")
echo "YSB, $EVENTS events, seed $SEED, medians of $RUNS runs; $(machine_line)"
echo "commit $(commit_id "$ROOT"), load average $LOAD0 before, $LOAD1 after"
echo
echo "| configuration | wall | CPU | events/s (wall) | events/s per core (CPU) | per core / ceiling |"
echo "|---|---|---|---|---|---|"
ceil_pc=""
for c in "${CS[@]}"; do
    w=$(tr ' ' '\n' <<<"${WALLS[$c]}" | grep . | median)
    u=$(tr ' ' '\n' <<<"${CPUS[$c]}" | grep . | median)
    pc=$(awk -v e="$EVENTS" -v u="$u" 'BEGIN { print (u > 0) ? e / u : 0 }')
    [ "$c" = ceiling ] && ceil_pc=$pc
    awk -v n="${NAME[$c]}" -v e="$EVENTS" -v w="$w" -v u="$u" -v pc="$pc" -v cp="$ceil_pc" 'BEGIN {
        printf "| %s | %.2f s | %.2f s | %.2f M | %.2f M | %s |\n", n, w, u, e / w / 1e6, pc / 1e6,
            (cp > 0) ? sprintf("%.2f", pc / cp) : "-" }'
done
