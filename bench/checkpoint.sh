#!/usr/bin/env bash
# checkpoint.sh — the checkpoint benchmark run by `make bench-checkpoint`.
#
#   bash bench/checkpoint.sh BUILD_DIR        (e.g. build/release, a Release build)
#
# Measures what checkpoints (docs/fault-tolerance.md) cost and buy, in three
# parts:
#
# 1. throughput  Each job below runs embedded (`sluice run`, master and
#                workers in-process, checkpoints into the master's temporary
#                state directory), once without checkpoints and once with
#                `checkpoint: {interval: 1s}` added to a temporary copy of
#                its spec, interleaved round by round, BENCH_RUNS rounds:
#                  agg-10k  generator -> map (k = seq % 10 000) -> keyed
#                           aggregate (count, sum) -> discard
#                  agg-1m   the same over 1 000 000 distinct keys
#                  q5       jobs/nexmark/q5.yaml (keyed sliding window), its
#                           file sink replaced by `discard`
#                  q7       jobs/nexmark/q7.yaml (a global tumbling window)
#                Events/s from the median wall time, CPU from GNU time; both
#                runs of a pair must emit every event and sink the same
#                number of rows, and the checkpointed one must have
#                completed a checkpoint.
# 2. size        A master (--state-dir) and 2 worker processes run a paced
#                keyed aggregation over BENCH_STATE_KEYS distinct keys with
#                checkpoints kept (retain: 1000), twice: every 1 s, and
#                every 10 ms (back to back: the master triggers the next
#                checkpoint as soon as the previous one completed, so the
#                time between two completions is one checkpoint's duration,
#                plus at most one 50 ms master tick). Size of each chk-N
#                directory (du of its files); times from file mtimes.
# 3. recovery    A master and 2 worker processes (2 slots each) run a paced
#                generator -> map -> keyed aggregate job (checkpoint every
#                1 s, restart: fixed-delay with BENCH_RESTART_DELAY); after a
#                checkpoint of the current attempt completed, a random
#                worker running a task is killed with SIGKILL at a random
#                moment; the time from the kill to the job RUNNING again with
#                a higher attempt and its source's records_out > 0 in that
#                attempt (polling `sluice status --json`) is measured, with
#                the worker started again at once (the master notices when it
#                registers again) or not (the master notices by the heartbeat
#                timeout), BENCH_RECOVERY_RUNS times each, interleaved.
# 4. backends   State backends (docs/fault-tolerance.md): for each size MB of
#                BENCH_BACKEND_MB, the part 2 job over BENCH_BACKEND_KEYS
#                keys, each key holding about MB / keys of heap state (above
#                ~13 bytes without, the aggregate also keeps
#                the max of a string of pseudo-random digits that depends
#                only on the key, as wide as it takes), paced at
#                BENCH_STATE_RATE, checkpoints every 1 s (retain: 1000),
#                with `state: {backend: heap}` (full snapshots) and
#                `{backend: rocksdb}` (incremental: SSTs copied once into
#                shared/), BENCH_RUNS runs each, interleaved. Per checkpoint
#                taken once every key exists: its state (heap: the chk-N
#                files; rocksdb: the chk-N files and the shared SSTs its
#                store manifests list), bytes written (rocksdb: the chk-N
#                files and the shared SSTs no earlier checkpoint listed) and
#                duration (first state file -> _metadata); per run the
#                workers' peak RSS and CPU. Medians of the runs' medians.
#                Then (BENCH_BACKEND_TPUT=1) throughput of the agg-1m job
#                with the rocksdb backend, checkpoints off vs every 1 s,
#                embedded, as in part 1.
# 5. large      Recovery with large state (BENCH_LARGE_MB, default 100 MB):
#                for each backend of BENCH_LARGE_BACKENDS, BENCH_LARGE_RUNS
#                times, a fresh master and 2 workers run the part 3 job
#                over BENCH_LARGE_KEYS keys (every record a new key until
#                then, so the state grows with the input), checkpoints every
#                1 s; once the last completed checkpoint holds
#                >= BENCH_LARGE_MB MB (its files, plus for rocksdb the job's
#                shared/ files), the worker running the first aggregate
#                subtask is killed with SIGKILL and started again at once.
#                Reported from the kill: the restarted worker's first log
#                line, the master's log lines (attempt failed, verifying the
#                checkpoints, checkpoint chosen; a thread reads the logs
#                every ~2 ms), the new attempt (attempt + 1), the restore
#                (the tasks' own log lines: state files read and verified +
#                operators restored, the longest task), the job RUNNING
#                again, and records flowing through the aggregate (its
#                records_in > 0 in the new attempt).
#
# The tables of medians are printed and written, with the machine, into the
# "Checkpoints" section of docs/benchmarks.md (parts 4 and 5: their own
# subsections of the "State backends" section, one per size; the rest of
# the file is kept).
#
# Environment:
#   BENCH_RUNS           throughput rounds (default 3; median reported)
#   BENCH_JOBS           throughput jobs (default "agg-10k agg-1m q5 q7")
#   BENCH_AGG_EVENTS     records per agg-10k run  (default 30000000)
#   BENCH_AGG1M_EVENTS   records per agg-1m run   (default 6000000: with
#                        checkpoints every 1 s that run takes 10-30 s, see
#                        the "Checkpoints" section of docs/benchmarks.md)
#   BENCH_NEXMARK_EVENTS events per q5 / q7 run   (default 3000000)
#   BENCH_STATE_KEYS     distinct keys of part 2  (default 1000000)
#   BENCH_STATE_EVENTS   records of part 2, per run (default 6000000, at
#                        BENCH_STATE_RATE = 1000000/s)
#   BENCH_RECOVERY_RUNS  kills per mode           (default 5)
#   BENCH_HEARTBEAT_MS   the master's --heartbeat-timeout in parts 3 and 4 (default 1000)
#   BENCH_RESTART_DELAY  restart delay of the part 3 job (default 0ms; the
#                        default of a checkpointed job is 1s)
#   BENCH_BACKEND_KEYS   distinct keys of part 4 (default 1650000; the state per key follows BENCH_BACKEND_MB)
#   BENCH_BACKEND_EVENTS records of part 4, per run (default 8000000)
#   BENCH_BACKEND_MB     state sizes of part 4, MB of heap snapshot (default "100";
#                        "100 1000" also measures 1 GB, with a ~527-byte string per
#                        key: the same keys, so it takes minutes, not hours)
#   BENCH_BACKEND_TPUT   1 (default) also runs part 4's rocksdb throughput; 0 skips it
#   BENCH_RECOVERY_STATE a `state:` block for part 3's job (default none: heap), e.g.
#                        "state: { backend: rocksdb }" to time recovery from an
#                        incremental RocksDB checkpoint
#   BENCH_ROCKS_STATE    extra `state:` options of part 4's rocksdb jobs (default
#                        "key_cache: 256MB": the operator's write-back cache holds
#                        the keys of a subtask; "" keeps the 32 MB default, where
#                        every record reads and writes RocksDB)
#   BENCH_LARGE_BACKENDS backends of part 5 (default "heap rocksdb")
#   BENCH_LARGE_MB       state at the kill in part 5, MB (default 100)
#   BENCH_LARGE_RUNS     kills per backend in part 5 (default 3)
#   BENCH_LARGE_KEYS     distinct keys of part 5 (default 100000000)
#   BENCH_LARGE_SECS     deadline for the state to reach BENCH_LARGE_MB (default 1800)
#   BENCH_LARGE_RATE     records/s of part 5 (default BENCH_STATE_RATE; the heap state
#                        grows ~60 bytes per record, so at 1000000/s the kill comes up
#                        to a checkpoint interval's ~60 MB past BENCH_LARGE_MB)
#   BENCH_PARTS          parts to run (default "throughput size recovery backends"; "large" -- recovery with ~100 MB of state -- runs only when named: it takes tens of minutes)
#   BENCH_DATA           scratch directory (default BUILD_DIR/../bench-data/checkpoint)
#   BENCH_DOC            report to write (default docs/benchmarks.md; "-" writes none)
set -euo pipefail
export LC_ALL=C

die() {
    echo "checkpoint.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: bash bench/checkpoint.sh BUILD_DIR"
[ -d "$1" ] || die "no build directory '$1' (run a Release build first: make release)"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BUILD=$(cd "$1" && pwd)
RUNS=${BENCH_RUNS:-3}
JOBS=${BENCH_JOBS:-agg-10k agg-1m q5 q7}
AGG_EVENTS=${BENCH_AGG_EVENTS:-30000000}
AGG1M_EVENTS=${BENCH_AGG1M_EVENTS:-6000000}
NX_EVENTS=${BENCH_NEXMARK_EVENTS:-3000000}
STATE_KEYS=${BENCH_STATE_KEYS:-1000000}
STATE_EVENTS=${BENCH_STATE_EVENTS:-6000000}
STATE_RATE=${BENCH_STATE_RATE:-1000000}
REC_RUNS=${BENCH_RECOVERY_RUNS:-5}
HB_MS=${BENCH_HEARTBEAT_MS:-1000}
RESTART_DELAY=${BENCH_RESTART_DELAY:-0ms}
BACKEND_KEYS=${BENCH_BACKEND_KEYS:-1650000}
BACKEND_EVENTS=${BENCH_BACKEND_EVENTS:-8000000}
BACKEND_MB=${BENCH_BACKEND_MB:-100}
BACKEND_TPUT=${BENCH_BACKEND_TPUT:-1}
ROCKS_STATE=${BENCH_ROCKS_STATE-key_cache: 256MB}
LARGE_BACKENDS=${BENCH_LARGE_BACKENDS:-heap rocksdb}
LARGE_MB=${BENCH_LARGE_MB:-100}
LARGE_RUNS=${BENCH_LARGE_RUNS:-3}
LARGE_KEYS=${BENCH_LARGE_KEYS:-100000000}
LARGE_SECS=${BENCH_LARGE_SECS:-1800}
LARGE_RATE=${BENCH_LARGE_RATE:-$STATE_RATE}
PARTS=${BENCH_PARTS:-throughput size recovery backends}
DATA=${BENCH_DATA:-$(dirname "$BUILD")/bench-data/checkpoint}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a number >= 1, got '$2'"; }
posint BENCH_RUNS "$RUNS"
posint BENCH_AGG_EVENTS "$AGG_EVENTS"
posint BENCH_AGG1M_EVENTS "$AGG1M_EVENTS"
posint BENCH_NEXMARK_EVENTS "$NX_EVENTS"
posint BENCH_STATE_KEYS "$STATE_KEYS"
posint BENCH_STATE_EVENTS "$STATE_EVENTS"
posint BENCH_STATE_RATE "$STATE_RATE"
posint BENCH_RECOVERY_RUNS "$REC_RUNS"
posint BENCH_HEARTBEAT_MS "$HB_MS"
posint BENCH_BACKEND_KEYS "$BACKEND_KEYS"
posint BENCH_BACKEND_EVENTS "$BACKEND_EVENTS"
read -r -a BMB <<<"$BACKEND_MB"
[ ${#BMB[@]} -ge 1 ] || die "BENCH_BACKEND_MB must name at least one size"
for m in "${BMB[@]}"; do posint "BENCH_BACKEND_MB ($m)" "$m"; done
[[ $BACKEND_TPUT =~ ^[01]$ ]] || die "BENCH_BACKEND_TPUT must be 0 or 1, got '$BACKEND_TPUT'"
posint BENCH_LARGE_MB "$LARGE_MB"
posint BENCH_LARGE_RUNS "$LARGE_RUNS"
posint BENCH_LARGE_KEYS "$LARGE_KEYS"
posint BENCH_LARGE_SECS "$LARGE_SECS"
posint BENCH_LARGE_RATE "$LARGE_RATE"
read -r -a LB <<<"$LARGE_BACKENDS"
for b in "${LB[@]}"; do
    case $b in heap | rocksdb) ;; *) die "BENCH_LARGE_BACKENDS: unknown backend '$b' (heap, rocksdb)" ;; esac
done
[[ $RESTART_DELAY =~ ^[0-9]+(ms|s)$ ]] || die "BENCH_RESTART_DELAY must be like 0ms or 1s, got '$RESTART_DELAY'"
read -r -a JS <<<"$JOBS"
read -r -a PA <<<"$PARTS"
for j in "${JS[@]}"; do
    case $j in agg-10k | agg-1m | q5 | q7) ;; *) die "BENCH_JOBS: unknown job '$j' (agg-10k, agg-1m, q5, q7)" ;; esac
done
DO_T=0 DO_S=0 DO_R=0 DO_B=0 DO_L=0
for p in "${PA[@]}"; do
    case $p in
    throughput) DO_T=1 ;;
    size) DO_S=1 ;;
    recovery) DO_R=1 ;;
    backends) DO_B=1 ;;
    large) DO_L=1 ;;
    *) die "BENCH_PARTS: unknown part '$p' (throughput, size, recovery, backends, large)" ;;
    esac
done

SLUICE=$BUILD/sluice
MASTER=$BUILD/sluice-master
WORKER=$BUILD/sluice-worker
for b in "$SLUICE" "$MASTER" "$WORKER"; do
    [ -x "$b" ] || die "missing $b (build everything first: make release)"
done
command -v python3 >/dev/null || die "python3 is needed (parts 2 and 3 drive the cluster with it)"
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ "$BUILD_TYPE" = Release ] || echo "checkpoint.sh: warning: $BUILD is a '${BUILD_TYPE:-unknown}' build, not Release" >&2
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=

rm -rf "$DATA"
mkdir -p "$DATA"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# median of the numbers on stdin ("-" if there are none)
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0 || v[1] == "-") { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
nums() { tr ' ' '\n' | grep -v '^$' || true; }

# ---- the specs ----------------------------------------------------------------------
# agg.yaml: generator -> map -> keyed aggregate -> discard; ${count}, ${keys}
# and (paced, for parts 2 and 3) ${rate}.
# With WIDE = N, every key also holds a string that depends only on the key,
# w = concat(k, N numbers of 12 digits, (k * A_i) % 999999999989), as the max
# of w (the same value on every update, so the heap table stores it once):
# wide state per key, ~12 N bytes, that RocksDB's LZ4 cannot squeeze much.
wide_expr() {
    local i e="concat(seq % \${keys}"
    for ((i = 0; i < $1; i++)); do e+=", '-', (seq % \${keys}) * $((2654435761 + i * 40503001)) % 999999999989"; done
    echo "$e)"
}
agg_spec() { # agg_spec PACED(0|1) [WIDE]
    local pad=${2:-}
    cat <<EOF
name: ckbench-agg
parallelism: 2
sources:
  - name: gen
    type: generator
    count: \${count}
EOF
    [ "$1" = 1 ] && echo "    rate: \${rate}"
    cat <<'EOF'
operators:
  - name: keyed
    type: map
    input: gen
EOF
    if [ -n "$pad" ]; then
        echo "    select: { k: \"seq % \${keys}\", v: seq, w: \"$(wide_expr "$pad")\" }"
    else
        # shellcheck disable=SC2016 # ${keys} is the job's parameter
        echo '    select: { k: "seq % ${keys}", v: seq }'
    fi
    cat <<'EOF'
  - name: totals
    type: aggregate
    input: keyed
    key: [k]
    aggregates:
      - { name: n, fn: count }
      - { name: s, fn: sum, field: v }
EOF
    [ -z "$pad" ] || echo "      - { name: w, fn: max, field: w }"
    cat <<'EOF'
sinks:
  - { name: out, type: discard, input: totals }
EOF
}
# with_checkpoint SPEC OUT BLOCK...: a copy of SPEC with top-level lines BLOCK
# before its `sources:`
with_checkpoint() {
    local src=$1 dst=$2
    shift 2
    awk -v block="$(printf '%s\n' "$@")" '/^sources:/ && !done { print block; done = 1 } { print }' \
        "$src" >"$dst"
    grep -q '^checkpoint:' "$dst" || die "could not add a checkpoint block to $dst"
}
agg_spec 0 >"$DATA/agg-off.yaml"
with_checkpoint "$DATA/agg-off.yaml" "$DATA/agg-on.yaml" 'checkpoint: { interval: 1s }'
for q in q5 q7; do
    sed -e 's/^\([[:space:]]*\)type: file[[:space:]]*$/\1type: discard/' \
        -e '/^[[:space:]]*path:/d' -e '/^[[:space:]]*format:[[:space:]]*csv/d' \
        "$ROOT/jobs/nexmark/$q.yaml" >"$DATA/$q-off.yaml"
    if ! grep -q '^[[:space:]]*type: discard' "$DATA/$q-off.yaml" ||
        grep -q '^[[:space:]]*type: file' "$DATA/$q-off.yaml"; then
        die "could not replace the file sink of jobs/nexmark/$q.yaml by a discard sink"
    fi
    with_checkpoint "$DATA/$q-off.yaml" "$DATA/$q-on.yaml" 'checkpoint: { interval: 1s }'
done
agg_spec 1 >"$DATA/paced.yaml"
with_checkpoint "$DATA/paced.yaml" "$DATA/state-1s.yaml" \
    'checkpoint: { interval: 1s, retain: 1000 }'
with_checkpoint "$DATA/paced.yaml" "$DATA/state-10ms.yaml" \
    'checkpoint: { interval: 10ms, retain: 1000 }'
# part 4, per size MB of BENCH_BACKEND_MB: backend-{heap,rocksdb}-MB.yaml over
# BACKEND_KEYS keys, with the string of each key (agg_spec's WIDE: BWIDE[MB]
# numbers of 13 bytes with their '-') as wide as it takes for MB of heap
# snapshot: NARROW_BPK bytes per key without it, WIDE_BPK + 13 per number
# with it (the heap aggregate's snapshot version 4: varints, 13 bytes a key
# measured at 1 000 000 keys; the string adds a length and its digits; the
# table reports the bytes actually written).
NARROW_BPK=13
WIDE_BPK=23
declare -A BWIDE
for m in "${BMB[@]}"; do
    n=$(((m * 1000000 / BACKEND_KEYS - WIDE_BPK + 6) / 13))
    if [ $((m * 1000000 / BACKEND_KEYS)) -le $((NARROW_BPK * 5 / 4)) ] || [ $n -lt 1 ]; then
        BWIDE[$m]=""
        agg_spec 1 >"$DATA/paced-$m.yaml"
    else
        BWIDE[$m]=$n
        agg_spec 1 "$n" >"$DATA/paced-$m.yaml"
    fi
    with_checkpoint "$DATA/paced-$m.yaml" "$DATA/backend-heap-$m.yaml" \
        'checkpoint: { interval: 1s, retain: 1000 }' 'state: { backend: heap }'
    with_checkpoint "$DATA/paced-$m.yaml" "$DATA/backend-rocksdb-$m.yaml" \
        'checkpoint: { interval: 1s, retain: 1000 }' "state: { backend: rocksdb${ROCKS_STATE:+, $ROCKS_STATE} }"
done
for b in heap rocksdb; do
    st="state: { backend: $b }"
    [ $b = rocksdb ] && st="state: { backend: rocksdb${ROCKS_STATE:+, $ROCKS_STATE} }"
    with_checkpoint "$DATA/paced.yaml" "$DATA/large-$b.yaml" 'checkpoint: { interval: 1s }' \
        "restart: { strategy: fixed-delay, attempts: 1000, delay: $RESTART_DELAY }" "$st"
done
# agg-1m with its state in rocksdb (part 4's throughput)
with_checkpoint "$DATA/agg-off.yaml" "$DATA/aggr-on.yaml" 'checkpoint: { interval: 1s }' \
    "state: { backend: rocksdb${ROCKS_STATE:+, $ROCKS_STATE} }"
grep -v '^checkpoint:' "$DATA/aggr-on.yaml" >"$DATA/aggr-off.yaml"
with_checkpoint "$DATA/paced.yaml" "$DATA/recovery.yaml" 'checkpoint: { interval: 1s }' \
    "restart: { strategy: fixed-delay, attempts: 1000, delay: $RESTART_DELAY }" \
    ${BENCH_RECOVERY_STATE:+"$BENCH_RECOVERY_STATE"}

job_spec() {
    case $1 in
    agg-1m-rocks) echo "$DATA/aggr-$2.yaml" ;;
    agg-*) echo "$DATA/agg-$2.yaml" ;;
    *) echo "$DATA/$1-$2.yaml" ;;
    esac
}
job_events() { case $1 in agg-10k) echo "$AGG_EVENTS" ;; agg-1m*) echo "$AGG1M_EVENTS" ;; *) echo "$NX_EVENTS" ;; esac; }
job_params() {
    case $1 in
    agg-10k) echo "--param count=$AGG_EVENTS --param keys=10000" ;;
    agg-1m*) echo "--param count=$AGG1M_EVENTS --param keys=1000000" ;;
    *) echo "--param events=$NX_EVENTS" ;;
    esac
}
job_what() {
    case $1 in
    agg-10k) echo "keyed aggregate, 10 000 keys" ;;
    agg-1m) echo "keyed aggregate, 1 000 000 keys" ;;
    agg-1m-rocks) echo "keyed aggregate, 1 000 000 keys, state in rocksdb" ;;
    q5) echo "Nexmark q5, keyed sliding window" ;;
    q7) echo "Nexmark q7, global tumbling window" ;;
    esac
}

# ---- part 1: throughput, checkpoints off / every 1 s ------------------------------
# run_embedded JOB CFG LOG: sets WALL, CPU, RSS (KiB), ROWS (the discard sink's
# records in), SRC (the source's records out), CKS (checkpoints completed)
run_embedded() {
    local job=$1 cfg=$2 log=$3 tf=$DATA/time.txt rc=0
    local -a cmd
    # shellcheck disable=SC2046
    cmd=("$SLUICE" run "$(job_spec "$job" "$cfg")" $(job_params "$job") --parallelism 2 --workers 2 --quiet)
    rm -f "$tf"
    local t0 t1
    t0=$(date +%s.%N)
    if [ -n "$TIME" ]; then
        "$TIME" -o "$tf" -f "%U %S %M" "${cmd[@]}" >/dev/null 2>"$log" || rc=$?
    else
        (
            "${cmd[@]}" >/dev/null 2>"$log" || exit $?
            times | tail -n 1 >"$tf"
        ) || rc=$?
    fi
    t1=$(date +%s.%N)
    [ $rc -eq 0 ] || die "$job checkpoints=$cfg failed (exit $rc): ${cmd[*]}: $(cat "$log")"
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ -n "$TIME" ]; then
        CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$tf")
        RSS=$(awk 'END { print $3 }' "$tf")
    else
        CPU=$(awk '{ n = 0; for (f = 1; f <= 2; f++) { split($f, a, /[ms]/); n += a[1] * 60 + a[2] }
                     printf "%.2f", n }' "$tf")
        RSS=-
    fi
    ROWS=$(awk '$2 == "discard" { print $3 }' "$log")
    SRC=$(awk '$2 == "generator" || $2 == "nexmark" { print $3 }' "$log")
    CKS=$(sed -n 's/^\([0-9]*\) checkpoints\{0,1\} completed.*/\1/p' "$log")
    CKS=${CKS:-0}
    [ -n "$ROWS" ] || die "$job: no discard sink in sluice's summary: $(cat "$log")"
    [ "$SRC" = "$(job_events "$job")" ] || die "$job checkpoints=$cfg: the source read '$SRC' records, not $(job_events "$job")"
}

declare -A WALLS CPUS RSSS CKSS TROWS
TTABLE=""
if [ $DO_T = 1 ]; then
    echo "== part 1: throughput, checkpoints off / every 1 s (embedded, P=2, 2 workers), $RUNS rounds"
    for ((r = 1; r <= RUNS; r++)); do
        for j in "${JS[@]}"; do
            for cfg in off on; do
                # alternate which configuration goes first, round by round
                [ $((r % 2)) = 0 ] && { [ $cfg = off ] && c=on || c=off; } || c=$cfg
                run_embedded "$j" "$c" "$DATA/run-$j-$c.log"
                k=$j/$c
                WALLS[$k]="${WALLS[$k]:-} $WALL"
                CPUS[$k]="${CPUS[$k]:-} $CPU"
                RSSS[$k]="${RSSS[$k]:-} $RSS"
                CKSS[$k]="${CKSS[$k]:-} $CKS"
                if [ -z "${TROWS[$j]:-}" ]; then
                    TROWS[$j]=$ROWS
                elif [ "$ROWS" != "${TROWS[$j]}" ]; then
                    die "$j checkpoints=$c (round $r): the sink counted $ROWS rows, another run ${TROWS[$j]}"
                fi
                [ "$c" = off ] || [ "$CKS" -ge 1 ] ||
                    die "$j: the checkpointed run completed no checkpoint (too short? raise its events)"
                printf '   round %d/%d  %-8s checkpoints %-3s %8.3f s  %7s CPU s  %3s checkpoints  %9s rows (checked)\n' \
                    "$r" "$RUNS" "$j" "$c" "$WALL" "$CPU" "$CKS" "$ROWS"
            done
        done
    done
    TTABLE="| job | records | checkpoints | runs (wall s) | median wall s | events/s | vs off | CPU s | events/s/core | vs off | completed checkpoints | peak RSS MB |
|---|---|---|---|---|---|---|---|---|---|---|---|"
    for j in "${JS[@]}"; do
        ow=$(echo "${WALLS[$j/off]}" | nums | median)
        oc=$(echo "${CPUS[$j/off]}" | nums | median)
        for cfg in off on; do
            k=$j/$cfg
            row=$(awk -v j="$j ($(job_what "$j"))" -v cfg="$cfg" -v ev="$(job_events "$j")" \
                -v runs="$(echo "${WALLS[$k]}" | nums | paste -sd' ')" \
                -v med="$(echo "${WALLS[$k]}" | nums | median)" -v cpu="$(echo "${CPUS[$k]}" | nums | median)" \
                -v rss="$(echo "${RSSS[$k]}" | nums | median)" -v cks="$(echo "${CKSS[$k]}" | nums | paste -sd' ')" \
                -v ow="$ow" -v oc="$oc" '
                function h(x) { return x >= 1e6 ? sprintf("%.2f M", x / 1e6) : sprintf("%.1f K", x / 1e3) }
                BEGIN {
                    printf "| %s | %d | %s | %s | %.3f | %s | %s | %.2f | %s | %s | %s | %s |",
                        j, ev, (cfg == "on" ? "every 1 s" : "off"), runs, med, h(ev / med),
                        (cfg == "on" ? sprintf("%+.1f %%", (ow / med - 1) * 100) : "-"), cpu,
                        h(ev / cpu), (cfg == "on" ? sprintf("%+.1f %%", (oc / cpu - 1) * 100) : "-"),
                        (cfg == "on" ? cks : "-"), (rss == "-" ? "-" : sprintf("%.0f", rss / 1024)) }')
            TTABLE+=$'\n'"$row"
        done
    done
    echo
    echo "== throughput: median of $RUNS rounds"
    echo "$TTABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
fi

# ---- parts 2 and 3: a master and worker processes, driven by python -----------------
cat >"$DATA/cluster.py" <<'PYEOF'
# cluster.py — parts 2 and 3 of bench/checkpoint.sh (see there).
import json, os, random, re, signal, socket, subprocess, sys, threading, time

B, DATA = sys.argv[1], sys.argv[2]
SLUICE, MASTER, WORKER = B + "/sluice", B + "/sluice-master", B + "/sluice-worker"
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Cluster:
    def __init__(self, tag, hb_ms, state_dir):
        self.tag, self.ep = tag, "tcp://127.0.0.1:%d" % free_port()
        self.env = dict(os.environ, SLUICE_MASTER=self.ep)
        self.master = self.spawn([MASTER, "--bind", self.ep, "--heartbeat-timeout", str(hb_ms),
                                  "--state-dir", state_dir], "master")
        self.workers = {}
        deadline = time.monotonic() + 10
        while "listening on" not in open(self.log("master") + ".out").read():
            if time.monotonic() > deadline or self.master.poll() is not None:
                sys.exit("cluster.py: the master did not start: " + open(self.log("master") + ".err").read())
            time.sleep(0.02)

    def log(self, who):
        return "%s/%s-%s" % (DATA, self.tag, who)

    def spawn(self, cmd, who):
        p = subprocess.Popen(cmd, stdout=open(self.log(who) + ".out", "a"),
                             stderr=open(self.log(who) + ".err", "a"), env=self.env)
        procs.append(p)
        return p

    def start_worker(self, wid):
        # a cache directory of its own under DATA (local checkpoint copies):
        # a worker killed with SIGKILL cannot remove the /tmp one it would
        # make, and a restarted one drops its predecessor's at start, as a
        # worker with a configured --cache-dir does
        self.workers[wid] = self.spawn([WORKER, "--id", wid, "--slots", "2", "--master", self.ep,
                                        "--data-bind", "tcp://127.0.0.1",
                                        "--cache-dir", self.log(wid) + "-cache"], wid)

    def cli(self, *args):
        r = subprocess.run([SLUICE] + list(args), capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            raise RuntimeError("sluice %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def alive(self):
        return sum(w["alive"] for w in json.loads(self.cli("workers", "--json")))

    def wait(self, what, pred, secs):
        deadline = time.monotonic() + secs
        while True:
            try:
                v = pred()
            except (RuntimeError, ValueError):
                v = None
            if v:
                return v
            if time.monotonic() > deadline:
                sys.exit("cluster.py: timed out waiting for " + what)
            time.sleep(0.02)

    def submit(self, spec, params):
        args = ["submit", spec, "--detach"]
        for k, v in params.items():
            args += ["-p", "%s=%s" % (k, v)]
        return self.cli(*args).strip()

    def status(self, job):
        return json.loads(self.cli("status", "--json", job))

    def stop(self):
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        procs.clear()
        for w in self.workers:
            subprocess.run(["rm", "-rf", self.log(w) + "-cache"])


def size(spec_1s, spec_10ms, keys, events, rate):
    """Part 2: one line per run: 'interval chk_id size_bytes files t_first t_last t_meta'."""
    out = []
    for tag, spec in (("1s", spec_1s), ("10ms", spec_10ms)):
        state = "%s/state-%s" % (DATA, tag)
        c = Cluster("size-" + tag, 1000, state)
        try:
            for w in ("w1", "w2"):
                c.start_worker(w)
            c.wait("2 workers", lambda: c.alive() == 2, 20)
            job = c.submit(spec, {"count": events, "rate": rate, "keys": keys})
            st = c.wait("the end of " + job,
                        lambda: (lambda s: s if s["state"] in ("FINISHED", "FAILED", "CANCELED") else None)(
                            c.status(job)), 600)
            if st["state"] != "FINISHED" or st["attempt"] != 1:
                sys.exit("cluster.py: the state job ended %s (attempt %d): %s" %
                         (st["state"], st["attempt"], st["error"]))
        finally:
            c.stop()
        d = "%s/checkpoints/%s" % (state, job)
        for name in sorted(os.listdir(d), key=lambda n: int(n[4:]) if n.startswith("chk-") else -1):
            p = d + "/" + name
            if not name.startswith("chk-") or not os.path.exists(p + "/_metadata"):
                continue
            files = os.listdir(p)
            tasks = [f for f in files if f.endswith(".state")]
            size = sum(os.stat(p + "/" + f).st_size for f in files)
            mt = [os.stat(p + "/" + f).st_mtime_ns / 1e9 for f in tasks]
            out.append("%s %s %d %d %.6f %.6f %.6f" % (tag, name[4:], size, len(tasks), min(mt) if mt else 0,
                                                      max(mt) if mt else 0, os.stat(p + "/_metadata").st_mtime_ns / 1e9))
    print("\n".join(out))


def du(path):
    n = 0
    for root, _, files in os.walk(path):
        n += sum(os.stat(os.path.join(root, f)).st_size for f in files)
    return n


def shared_refs(p):
    """{stored name: size} of the shared files that checkpoint directory p's
    store manifests (kv-*/_manifest) reference (core/src/kvstate.c's encoding)."""
    refs = {}
    for kv in os.listdir(p):
        m = "%s/%s/_manifest" % (p, kv)
        if not kv.startswith("kv-") or not os.path.exists(m):
            continue
        b = open(m, "rb").read()
        if b[:4] != b"SLKV":
            sys.exit("cluster.py: %s is not a store manifest" % m)
        n, o = int.from_bytes(b[8:12], "little"), 12
        for _ in range(n):
            shared, size = b[o], int.from_bytes(b[o + 1:o + 9], "little")
            o += 41
            a = int.from_bytes(b[o:o + 2], "little")
            o += 2 + a
            c = int.from_bytes(b[o:o + 2], "little")
            stored = b[o + 2:o + 2 + c].decode()
            o += 2 + c
            if shared:
                refs[stored] = size
    return refs


def proc_figures(pid):
    """(peak RSS KiB, CPU s) of a live process, from /proc."""
    hwm = 0
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return hwm, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def backends(spec_heap, spec_rocks, keys, events, rate, runs, hb_ms):
    """Part 4: one line per checkpoint: 'backend run chk_id written_bytes t_first
    t_meta state_bytes' (state: every byte the checkpoint references, its own
    files and the shared ones; written: its own files and the shared files no
    earlier completed checkpoint of the run references), and per run
    'run backend run wall_s peak_rss_kib_w1 peak_rss_kib_w2 cpu_s_w1+w2 t_full' (t_full:
    when the aggregate had received `keys` records, so every key existed)."""
    out = []
    for r in range(int(runs)):
        order = (("heap", spec_heap), ("rocksdb", spec_rocks))
        for tag, spec in (order if r % 2 == 0 else order[::-1]):
            state = "%s/state-%s" % (DATA, tag)
            c = Cluster("backend-%s-%d" % (tag, r), int(hb_ms), state)  # a lost worker fails the run (attempt 1)
            try:
                for w in ("w1", "w2"):
                    c.start_worker(w)
                c.wait("2 workers", lambda: c.alive() == 2, 20)
                t0 = time.monotonic()
                job = c.submit(spec, {"count": events, "rate": rate, "keys": keys})
                full = []  # wall clock when the aggregate had received `keys` records: every key exists

                def ended():
                    s = c.status(job)
                    if not full and sum(o["records_in"] for o in s["operators"] if o["name"] == "totals") >= int(keys):
                        full.append(time.time())
                    return s if s["state"] in ("FINISHED", "FAILED", "CANCELED") else None

                st = c.wait("the end of " + job, ended, 1800)
                wall = time.monotonic() - t0
                if st["state"] != "FINISHED" or st["attempt"] != 1:
                    sys.exit("cluster.py: the %s job ended %s (attempt %d): %s" %
                             (tag, st["state"], st["attempt"], st["error"]))
                figs = [proc_figures(c.workers[w].pid) for w in ("w1", "w2")]
                out.append("run %s %d %.3f %d %d %.2f %.6f" % (tag, r, wall, figs[0][0], figs[1][0],
                                                              figs[0][1] + figs[1][1], full[0] if full else 0))
            finally:
                c.stop()
            d = "%s/checkpoints/%s" % (state, job)
            seen = set()
            for name in sorted(os.listdir(d), key=lambda n: int(n[4:]) if n.startswith("chk-") else -1):
                p = d + "/" + name
                if not name.startswith("chk-") or not os.path.exists(p + "/_metadata"):
                    continue
                meta = os.stat(p + "/_metadata").st_mtime_ns / 1e9
                tasks = [p + "/" + f for f in os.listdir(p) if f.endswith(".state")]
                first = min(os.stat(f).st_mtime_ns / 1e9 for f in tasks)
                refs = shared_refs(p)
                own = du(p)
                written = own + sum(sz for f, sz in refs.items() if f not in seen)
                seen.update(refs)
                out.append("%s %d %s %d %.6f %.6f %d" % (tag, r, name[4:], written, first, meta,
                                                        own + sum(refs.values())))
            subprocess.run(["rm", "-rf", state])
            print("   %s run %d/%s: %.0f s" % (tag, r + 1, runs, wall), file=sys.stderr, flush=True)
    print("\n".join(out))


def recovery(spec, runs, hb_ms, rate, keys):
    """Part 3: one line per kill: 'mode detect_ms running_ms flowing_ms polls cause'."""
    c = Cluster("recovery", hb_ms, DATA + "/state-recovery")
    try:
        for w in ("w1", "w2"):
            c.start_worker(w)
        c.wait("2 workers", lambda: c.alive() == 2, 20)
        job = c.submit(spec, {"count": 10 ** 12, "rate": rate, "keys": keys})
        modes = []
        for i in range(runs):
            modes += ["restarted", "not restarted"] if i % 2 == 0 else ["not restarted", "restarted"]
        for n, mode in enumerate(modes):
            c.wait("2 live workers", lambda: c.alive() == 2, 30)
            st = c.wait("RUNNING", lambda: (lambda s: s if s["state"] == "RUNNING" else None)(c.status(job)), 60)
            att = st["attempt"]
            base = st["checkpoints"]
            # a checkpoint of this attempt completed: the restart restores one
            st = c.wait("a checkpoint of attempt %d" % att,
                        lambda: (lambda s: s if s["state"] == "RUNNING" and s["attempt"] == att and
                                 s["checkpoints"] > base else None)(c.status(job)), 60)
            if st["attempt"] != att:
                sys.exit("cluster.py: the job restarted by itself (attempt %d): %s" % (st["attempt"], st["failures"]))
            victims = sorted({t["worker"] for t in st["tasks"]})
            victim = random.choice(victims)
            time.sleep(random.random() * 0.9)  # a random moment in the checkpoint interval
            t0 = time.monotonic()
            c.workers[victim].kill()
            if mode == "restarted":
                c.start_worker(victim)
            c.workers[victim].poll()
            detect = running = None
            polls = 0
            while True:
                s = c.status(job)
                polls += 1
                now = (time.monotonic() - t0) * 1000
                if s["state"] != "RUNNING" and s["state"] != "RESTARTING" and s["state"] != "SCHEDULED":
                    if s["state"] in ("FINISHED", "FAILED", "CANCELED"):
                        sys.exit("cluster.py: the job ended %s: %s" % (s["state"], s["error"]))
                if s["attempt"] > att and detect is None:
                    detect = now
                if s["attempt"] > att and s["state"] == "RUNNING":
                    if running is None:
                        running = now
                    gen = [o for o in s["operators"] if o["name"] == "gen"]
                    if gen and gen[0]["records_out"] > 0:
                        break
                if now > 60000:
                    sys.exit("cluster.py: no recovery within 60 s: %s" % json.dumps(s))
                time.sleep(0.01)
            cause = s["failures"][-1] if s["failures"] else "?"
            if s["attempt"] != att + 1:
                cause += " (attempt %d -> %d)" % (att, s["attempt"])
            print("%s\t%.0f\t%.0f\t%.0f\t%d\t%s" % (mode, detect, running, now, polls, cause.replace("\t", " ")),
                  flush=True)
            print("   kill %d/%d (%s, %s): detected %.0f ms, RUNNING %.0f ms, records flowing %.0f ms (%s)" %
                  (n + 1, len(modes), mode, victim, detect, running, now, cause), file=sys.stderr, flush=True)
            if mode == "not restarted":
                c.start_worker(victim)
        c.cli("cancel", job)
    finally:
        c.stop()


def chk_bytes(d, name):
    """Bytes of the state of completed checkpoint d/name: its files, plus, with
    shared RocksDB files, every file in d/shared (the retained checkpoints')."""
    n = du(d + "/" + name)
    if os.path.isdir(d + "/shared"):
        n += du(d + "/shared")
    return n


def large(backend, spec, keys, rate, mb, runs, hb_ms, secs):
    """Part 5: one line per kill, once the state of the last completed checkpoint
    is >= mb MB: 'backend run state_bytes grow_s ckpt_ms detect_ms restore_ms
    restored_ms running_ms flowing_ms records_before'."""
    for r in range(int(runs)):
        state = "%s/state-large-%s" % (DATA, backend)
        c = Cluster("large-%s-%d" % (backend, r), int(hb_ms), state)
        try:
            for w in ("w1", "w2"):
                c.start_worker(w)
            c.wait("2 workers", lambda: c.alive() == 2, 30)
            job = c.submit(spec, {"count": 10 ** 12, "rate": rate, "keys": keys})
            d = "%s/checkpoints/%s" % (state, job)
            t_start = time.monotonic()
            done = []

            def big_enough():
                s = c.status(job)
                if s["state"] in ("FINISHED", "FAILED", "CANCELED") or s["attempt"] != 1:
                    sys.exit("cluster.py: the %s job restarted or ended before the kill (%s, attempt %d): %s" %
                             (backend, s["state"], s["attempt"], s["failures"]))
                if not os.path.isdir(d):
                    return None
                chks = sorted((int(n[4:]) for n in os.listdir(d) if n.startswith("chk-") and
                               os.path.exists("%s/%s/_metadata" % (d, n))), reverse=True)
                if not chks:
                    return None
                name = "chk-%d" % chks[0]
                try:
                    b = chk_bytes(d, name)
                except FileNotFoundError:
                    return None  # removed by retention meanwhile
                if b not in done:
                    done.append(b)
                    print("   %s run %d: %s is %.1f MB after %.0f s" % (backend, r + 1, name, b / 1e6,
                          time.monotonic() - t_start), file=sys.stderr, flush=True)
                return (b, name, s) if b >= int(mb) * 1e6 else None

            size, name, st = c.wait("%s MB of %s state" % (mb, backend), big_enough, int(secs))
            grow = time.monotonic() - t_start
            p = d + "/" + name
            tasks = [p + "/" + f for f in os.listdir(p) if f.endswith(".state")]
            ckpt_ms = (os.stat(p + "/_metadata").st_mtime_ns / 1e9 -
                       min(os.stat(f).st_mtime_ns / 1e9 for f in tasks)) * 1000
            before = max([o["records_in"] for o in st["operators"] if o["name"] == "totals"] or [0])
            # the worker running the first aggregate subtask
            victim = sorted(t["worker"] for t in st["tasks"] if "totals" in t["operators"])[0]
            logs = {w: os.path.getsize(c.log(w) + ".err") for w in ("w1", "w2", "master")}
            t0, w0 = time.monotonic(), time.time()
            c.workers[victim].kill()
            c.start_worker(victim)
            c.workers[victim].poll()
            detect = running = None
            # when (ms after the kill; a thread reads the logs every ~2 ms) the
            # restarted worker logged its start, the master logged the
            # attempt failed (it noticed: RESTARTING), that it verifies the
            # checkpoints to restart from, and the checkpoint it chose
            seen = {"up": None, "noticed": None, "verify": None, "chosen": None}
            pats = {"up": (victim, "sluice-worker %s: 2 slots" % victim),
                    "noticed": ("master", "attempt 1 failed"),
                    "verify": ("master", "verifying checkpoints to restart from"),
                    "chosen": ("master", "restarts from checkpoint")}
            watching = [True]

            def watch():
                while watching[0] and None in seen.values():
                    text = {}
                    for who in (victim, "master"):
                        with open(c.log(who) + ".err") as f:
                            f.seek(logs[who])
                            text[who] = f.read()
                    now = (time.monotonic() - t0) * 1000
                    for k, (who, pat) in pats.items():
                        if seen[k] is None and pat in text[who]:
                            seen[k] = now
                    time.sleep(0.002)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            while True:
                s = c.status(job)
                now = (time.monotonic() - t0) * 1000
                if s["state"] in ("FINISHED", "FAILED", "CANCELED"):
                    sys.exit("cluster.py: the job ended %s: %s" % (s["state"], s["error"]))
                if s["attempt"] > 1 and detect is None:
                    detect = now
                if s["attempt"] > 1 and s["state"] == "RUNNING":
                    if running is None:
                        running = now
                    tot = [o for o in s["operators"] if o["name"] == "totals"]
                    if tot and tot[0]["records_in"] > 0:
                        break
                if now > 300000:
                    sys.exit("cluster.py: no recovery within 300 s: %s" % json.dumps(s))
                time.sleep(0.01)
            watching[0] = False
            watcher.join()
            # the tasks' own restore times, from the workers' logs after the kill
            restore = restored = cpu = 0.0
            read = {}
            for w in ("w1", "w2"):
                with open(c.log(w) + ".err") as f:
                    f.seek(logs[w])  # the logs are appended to, the victim's too
                    for line in f:
                        m = re.search(r"task (\d+\.\d+): \d+ bytes of state files read and verified in (\d+) ms, "
                                      r"(\d+) ms CPU", line)
                        if m:
                            read[(w, m.group(1))] = (float(m.group(2)), float(m.group(3)))
                        m = re.search(r"task (\d+\.\d+): state restored in (\d+) ms, (\d+) ms CPU \(at ([\d.]+)\)",
                                      line)
                        if m and float(m.group(4)) >= w0:
                            rd = read.get((w, m.group(1)), (0.0, 0.0))
                            restore = max(restore, rd[0] + float(m.group(2)))
                            cpu = max(cpu, rd[1] + float(m.group(3)))
                            restored = max(restored, (float(m.group(4)) - w0) * 1000)
            nv = lambda v: -1 if v is None else v
            print("%s\t%d\t%d\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f" %
                  (backend, r, size, grow, ckpt_ms, detect, restore, restored, running, now, before, cpu,
                   nv(seen["up"]), nv(seen["noticed"]), nv(seen["verify"]), nv(seen["chosen"])), flush=True)
            print("   %s run %d: killed %s at %.1f MB (%s, after %.0f s): worker logged its start %.0f ms, "
                  "attempt failed %.0f ms, master verifying the checkpoints %.0f ms, chose one %.0f ms, attempt 2 %.0f ms, "
                  "restore %.0f ms (%.0f ms CPU; done %.0f ms after the kill), RUNNING %.0f ms, "
                  "records through the aggregate %.0f ms" %
                  (backend, r + 1, victim, size / 1e6, name, grow, nv(seen["up"]), nv(seen["noticed"]),
                   nv(seen["verify"]), nv(seen["chosen"]), detect, restore, cpu, restored, running, now),
                  file=sys.stderr, flush=True)
            c.cli("cancel", job)
        finally:
            c.stop()
        subprocess.run(["rm", "-rf", state])


try:
    if sys.argv[3] == "size":
        size(*sys.argv[4:9])
    elif sys.argv[3] == "backends":
        backends(*sys.argv[4:11])
    elif sys.argv[3] == "large":
        large(*sys.argv[4:12])
    else:
        recovery(sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8])
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
PYEOF

STABLE=""
if [ $DO_S = 1 ]; then
    echo
    echo "== part 2: checkpoint size and duration ($STATE_KEYS keys, $STATE_EVENTS records at $STATE_RATE/s, master + 2 workers)"
    python3 "$DATA/cluster.py" "$BUILD" "$DATA" size "$DATA/state-1s.yaml" "$DATA/state-10ms.yaml" \
        "$STATE_KEYS" "$STATE_EVENTS" "$STATE_RATE" >"$DATA/size.txt" || die "part 2 failed"
    # interval id size files t_first t_last t_meta
    STABLE="| interval | checkpoints kept | size of a full checkpoint, median (max) | bytes per key | state files | first state file -> _metadata, median (max) ms | _metadata -> next _metadata, median (max) ms |
|---|---|---|---|---|---|---|"
    for tag in 1s 10ms; do
        row=$(awk -v tag="$tag" -v keys="$STATE_KEYS" '
            function med(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
            $1 == tag { n++; size[n] = $3; files = $4; first[n] = $5; meta[n] = $7; if ($3 > mx) mx = $3 }
            END {
                if (!n) { printf "| %s | 0 | - | - | - | - | - |", tag; exit }
                # full checkpoints: those at least 95 % of the largest (the state grows for the first keys)
                for (i = 1; i <= n; i++) if (size[i] >= 0.95 * mx) { f++; fs[f] = size[i] }
                for (i = 1; i <= n; i++) { sp[i] = (meta[i] - first[i]) * 1000; if (sp[i] > spx) spx = sp[i] }
                for (i = 2; i <= n; i++) { g[i - 1] = (meta[i] - meta[i - 1]) * 1000; if (g[i - 1] > gx) gx = g[i - 1] }
                m = med(fs, f)
                printf "| every %s | %d (%d full) | %.1f MB (%.1f MB) | %.1f | %d | %.0f (%.0f) | %s |",
                    tag, n, f, m / 1e6, mx / 1e6, m / keys, files, med(sp, n), spx,
                    (n > 1 ? sprintf("%.0f (%.0f)", med(g, n - 1), gx) : "-") }' "$DATA/size.txt")
        STABLE+=$'\n'"$row"
    done
    echo "$STABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
    rm -rf "$DATA/state-1s" "$DATA/state-10ms"
fi

RTABLE=""
if [ $DO_R = 1 ]; then
    echo
    echo "== part 3: recovery after kill -9 of a worker ($REC_RUNS kills per mode, heartbeat timeout $HB_MS ms, restart delay $RESTART_DELAY)"
    python3 "$DATA/cluster.py" "$BUILD" "$DATA" recovery "$DATA/recovery.yaml" "$REC_RUNS" "$HB_MS" 100000 10000 \
        >"$DATA/recovery.txt" || die "part 3 failed"
    RTABLE="| worker after the kill | kills | detected (attempt + 1), median ms | RUNNING again, median ms | records flowing, median ms (runs) | min - max ms | status polls per kill, median | how the master noticed |
|---|---|---|---|---|---|---|---|"
    for mode in restarted "not restarted"; do
        row=$(awk -F '\t' -v mode="$mode" '
            function med(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
            $1 == mode {
                n++; d[n] = $2; r[n] = $3; f[n] = $4; p[n] = $5; runs = runs (runs ? " " : "") $4
                if (n == 1 || $4 < lo) lo = $4; if ($4 > hi) hi = $4
                c = $6; sub(/^attempt [0-9]+: /, "", c); sub(/worker [^ ]+ lost: /, "", c); cause[c]++
            }
            END {
                for (k in cause) causes = causes (causes ? "; " : "") cause[k] " x " k
                printf "| %s | %d | %.0f | %.0f | %.0f (%s) | %d - %d | %.0f | %s |",
                    (mode == "restarted" ? "started again at once" : "not started again"), n, med(d, n),
                    med(r, n), med(f, n), runs, lo, hi, med(p, n), causes }' "$DATA/recovery.txt")
        RTABLE+=$'\n'"$row"
    done
    echo "$RTABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
fi
# btable FILE: part 4's table of one size from cluster.py's lines in FILE.
# Counted: the checkpoints of a run triggered once the aggregate had received
# as many records as there are keys (every key exists; before, the state
# grows; if none, the last one); every figure is the median over the runs of the run's own
# median, with the runs' own figures in parentheses.
btable() {
    python3 - "$1" <<'PY'
import statistics, sys
ck, runs = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "run":
        runs.setdefault(f[1], {})[int(f[2])] = (float(f[3]), int(f[4]) + int(f[5]), float(f[6]), float(f[7]))
    elif len(f) == 7:
        ck.setdefault(f[0], {}).setdefault(int(f[1]), []).append(
            (int(f[3]), (float(f[5]) - float(f[4])) * 1000, int(f[6]), float(f[4])))
med = statistics.median
print("| backend | runs | checkpoints completed per run (counted) | state per checkpoint, MB | "
      "written per checkpoint, MB | largest written, MB | duration, ms | longest, ms | "
      "workers' peak RSS, MB (sum of 2) | workers' CPU s per run | run wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for b in ("heap", "rocksdb"):
    per = ck.get(b, {})
    if not per:
        print("| %s | 0 | - | - | - | - | - | - | - | - | - |" % b)
        continue
    cnt, st, wr, du, wx, dx = [], [], [], [], 0, 0
    for r in sorted(per):
        c = per[r]
        full = [x for x in c if x[3] >= runs[b][r][3]] or c[-1:]
        cnt.append("%d (%d)" % (len(c), len(full)))
        st.append(med(x[2] for x in full) / 1e6)
        wr.append(med(x[0] for x in full) / 1e6)
        du.append(med(x[1] for x in full))
        wx, dx = max([wx] + [x[0] / 1e6 for x in full]), max([dx] + [x[1] for x in full])
    rr = list(runs.get(b, {}).values())

    def fmt(v, p):
        return ("%." + str(p) + "f (%s)") % (med(v), " ".join(("%." + str(p) + "f") % x for x in v))

    print("| %s | %d | %s | %s | %s | %.1f | %s | %.0f | %s | %s | %s |" % (
        b, len(per), " ".join(cnt), fmt(st, 1), fmt(wr, 1), wx, fmt(du, 0), dx,
        fmt([x[1] / 1024 for x in rr], 0) if rr else "-", fmt([x[2] for x in rr], 1) if rr else "-",
        fmt([x[0] for x in rr], 1) if rr else "-"))
PY
}
declare -A BTABLES
if [ $DO_B = 1 ]; then
    for m in "${BMB[@]}"; do
        echo
        echo "== part 4: state backends, ~$m MB ($BACKEND_KEYS keys${BWIDE[$m]:+, a string of ~$((BWIDE[$m] * 13 + 7)) bytes per key}, $BACKEND_EVENTS records at $STATE_RATE/s, checkpoints every 1 s, $RUNS runs each)"
        python3 "$DATA/cluster.py" "$BUILD" "$DATA" backends "$DATA/backend-heap-$m.yaml" "$DATA/backend-rocksdb-$m.yaml" \
            "$BACKEND_KEYS" "$BACKEND_EVENTS" "$STATE_RATE" "$RUNS" "$HB_MS" >"$DATA/backends-$m.txt" || die "part 4 ($m MB) failed"
        BTABLES[$m]=$(btable "$DATA/backends-$m.txt")
        echo "${BTABLES[$m]}" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
    done
fi
if [ $DO_B = 1 ] && [ "$BACKEND_TPUT" = 1 ]; then
    echo "   throughput, agg-1m with its state in rocksdb:"
    for ((r = 1; r <= RUNS; r++)); do
        for cfg in off on; do
            [ $((r % 2)) = 0 ] && { [ $cfg = off ] && c=on || c=off; } || c=$cfg
            run_embedded agg-1m-rocks "$c" "$DATA/run-rocks-$c.log"
            WALLS[rocks/$c]="${WALLS[rocks/$c]:-} $WALL"
            CPUS[rocks/$c]="${CPUS[rocks/$c]:-} $CPU"
            RSSS[rocks/$c]="${RSSS[rocks/$c]:-} $RSS"
            CKSS[rocks/$c]="${CKSS[rocks/$c]:-} $CKS"
            [ "$c" = off ] || [ "$CKS" -ge 1 ] || die "agg-1m-rocks: the checkpointed run completed no checkpoint"
            printf '   round %d/%d  checkpoints %-3s %8.3f s  %7s CPU s  %3s checkpoints  %9s rows\n' \
                "$r" "$RUNS" "$c" "$WALL" "$CPU" "$CKS" "$ROWS"
        done
    done
    BTTABLE="| checkpoints | runs (wall s) | median wall s | events/s | vs off | CPU s | completed checkpoints | peak RSS MB |
|---|---|---|---|---|---|---|---|"
    ow=$(echo "${WALLS[rocks/off]}" | nums | median)
    for cfg in off on; do
        k=rocks/$cfg
        BTTABLE+=$'\n'$(awk -v cfg="$cfg" -v ev="$AGG1M_EVENTS" -v runs="$(echo "${WALLS[$k]}" | nums | paste -sd' ')" \
            -v med="$(echo "${WALLS[$k]}" | nums | median)" -v cpu="$(echo "${CPUS[$k]}" | nums | median)" \
            -v rss="$(echo "${RSSS[$k]}" | nums | median)" -v cks="$(echo "${CKSS[$k]}" | nums | paste -sd' ')" -v ow="$ow" '
            function h(x) { return x >= 1e6 ? sprintf("%.2f M", x / 1e6) : sprintf("%.1f K", x / 1e3) }
            BEGIN { printf "| %s | %s | %.3f | %s | %s | %.2f | %s | %s |", (cfg == "on" ? "every 1 s" : "off"), runs,
                    med, h(ev / med), (cfg == "on" ? sprintf("%+.1f %%", (ow / med - 1) * 100) : "-"), cpu,
                    (cfg == "on" ? cks : "-"), (rss == "-" ? "-" : sprintf("%.0f", rss / 1024)) }')
    done
    echo "$BTTABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
fi
LTABLE=""
if [ $DO_L = 1 ]; then
    echo
    echo "== part 5: recovery after kill -9 with $LARGE_MB MB of state ($LARGE_BACKENDS; $LARGE_RUNS kills each, heartbeat timeout $HB_MS ms)"
    : >"$DATA/large.txt"
    for b in "${LB[@]}"; do
        python3 "$DATA/cluster.py" "$BUILD" "$DATA" large "$b" "$DATA/large-$b.yaml" "$LARGE_KEYS" "$LARGE_RATE" \
            "$LARGE_MB" "$LARGE_RUNS" "$HB_MS" "$LARGE_SECS" >>"$DATA/large.txt" || die "part 5 ($b) failed"
    done
    # backend run bytes grow_s ckpt_ms detect restore restored running flowing records_before
    LTABLE="| backend | kills | state at the kill, median MB | input until then, median s | its checkpoint took, median ms | restarted worker logged its start, median ms | attempt failed (master's log), median ms | master verifying the checkpoint, median ms | checkpoint chosen, median ms | new attempt (attempt + 1), median ms | restore, longest task, median ms | its CPU, median ms | state restored, median ms after the kill | RUNNING again, median ms | records through the aggregate, median ms (runs) | of which after the restore, median ms |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for b in "${LB[@]}"; do
        LTABLE+=$'\n'$(awk -F '\t' -v b="$b" '
            function med(a, n,   i, j, t) {
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
            $1 == b { n++; sz[n] = $3 / 1e6; g[n] = $4; ck[n] = $5; d[n] = $6; rs[n] = $7; cp[n] = $12; rd[n] = $8; ru[n] = $9
                      up[n] = $13; no[n] = $14; ve[n] = $15; ch[n] = $16
                      f[n] = $10; ff[n] = $10; rp[n] = $10 - $8; runs = runs (runs ? " " : "") $10 }
            END {
                if (!n) { printf "| %s | 0 | - | - | - | - | - | - | - | - | - | - | - | - | - | - |", b; exit }
                printf "| %s | %d | %.1f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f (%s) | %.0f |", b, n,
                    med(sz, n), med(g, n), med(ck, n), med(up, n), med(no, n), med(ve, n), med(ch, n), med(d, n), med(rs, n), med(cp, n),
                    med(rd, n), med(ru, n), med(f, n), runs, med(rp, n) }' "$DATA/large.txt")
    done
    echo "$LTABLE" | grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /|/g' | column -t -s '|' | sed 's/^/   /'
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "   (load average ${LOAD_START// /, } -> ${LOAD_END// /, })"

[ "$DOC" = - ] && exit 0

# ---- docs/benchmarks.md: the "## Checkpoints" section ------------------------------
COMMIT=$(commit_id "$ROOT")
ENVS=""
for v in BENCH_RUNS BENCH_JOBS BENCH_AGG_EVENTS BENCH_AGG1M_EVENTS BENCH_NEXMARK_EVENTS BENCH_STATE_KEYS \
    BENCH_STATE_EVENTS BENCH_STATE_RATE BENCH_RECOVERY_RUNS BENCH_HEARTBEAT_MS BENCH_RESTART_DELAY BENCH_PARTS \
    BENCH_BACKEND_KEYS BENCH_BACKEND_EVENTS BENCH_BACKEND_MB BENCH_BACKEND_TPUT BENCH_ROCKS_STATE BENCH_RECOVERY_STATE BENCH_LARGE_BACKENDS \
    BENCH_LARGE_MB BENCH_LARGE_RUNS BENCH_LARGE_KEYS BENCH_LARGE_SECS BENCH_LARGE_RATE; do
    [ -n "${!v:-}" ] && ENVS+="$v=\"${!v}\" "
done
if [ "${BUILD#"$ROOT"/}" = build/release ]; then
    HOW="\`${ENVS}make bench-checkpoint\`, i.e. \`${ENVS}bash bench/checkpoint.sh build/release\`"
else
    HOW="\`${ENVS}bash bench/checkpoint.sh $1\` (a Release build of the same commit; \`make bench-checkpoint\` runs it on build/release)"
fi
BODY=""
if [ $DO_T = 1 ]; then
    BODY+="### Throughput: checkpoints off vs every 1 s

$TTABLE

Embedded (\`sluice run SPEC --parallelism 2 --workers 2 --quiet\`), the
spec without a \`checkpoint:\` block and a copy with
\`checkpoint: { interval: 1s }\` (so \`restart\` is fixed-delay, and the
checkpoints go to the embedded master's temporary state directory), $RUNS
rounds, the two runs of a job one after the other, their order alternating
round by round. **events/s** = records the source emitted / median wall
time of the process; **vs off** = the checkpointed run's events/s (or
events per CPU second) relative to the run without, in the same
invocation; **CPU s** = user + sys of the process (GNU time). Both runs of
a job emitted every record and sank the same number of rows; the
checkpointed one completed the checkpoints listed (one per run, from its
summary).

"
fi
if [ $DO_S = 1 ]; then
    BODY+="### Size and duration of a checkpoint with a lot of keyed state

$STABLE

A master (\`--state-dir\`) and 2 worker processes run a generator → map
(\`k = seq % $STATE_KEYS\`) → keyed aggregate (count and sum per key) →
discard at parallelism 2, $STATE_EVENTS records paced at $STATE_RATE/s, with
\`retain: 1000\` so that every completed checkpoint stays on disk, once with
\`interval: 1s\` and once with \`interval: 10ms\`. Only checkpoints with a
\`_metadata\` (completed) count. **Size** = the bytes of a \`chk-N\`
directory's files (its 4 state files and \`_metadata\`), over the
checkpoints taken once all $STATE_KEYS keys exist (within 5 % of the
largest); bytes per key = that / keys. The master does not report
durations yet, so they come from file modification times: a source's
snapshot is written as soon as its trigger arrives (it only holds the
generator's position), and \`_metadata\` once every task acknowledged, so
**first state file → _metadata** is the duration of a checkpoint from its
trigger (less the trigger's trip to the worker, about a millisecond) to its
completion. With \`interval: 10ms\` the master starts the next checkpoint as
soon as one completes (its tick is 50 ms at most), so **_metadata → next
_metadata** is a second, independent reading of the same duration; at
1 s it is the larger of the interval and the duration.

"
fi
if [ $DO_R = 1 ]; then
    BODY+="### Recovery after \`kill -9\` of a worker

$RTABLE

A master (\`--heartbeat-timeout $HB_MS\`) and 2 worker processes with 2
slots each run a generator paced at 100 000 records/s → map (10 000 keys) →
keyed aggregate → discard, parallelism 2, \`checkpoint: { interval: 1s }\`,
\`restart: { strategy: fixed-delay, attempts: 1000, delay: $RESTART_DELAY }\`
(the restart delay is included in the times below; the default delay of a
checkpointed job is 1 s). Each round waits for both workers alive, the job
RUNNING and a checkpoint of its current attempt completed, picks a random
worker that runs a task, waits a random 0-900 ms, and kills it with
SIGKILL; then it polls \`sluice status --json\` (a new CLI process every
~10 ms plus the call's own time, so each figure is late by up to one poll).
**Started again at once**: the same \`sluice-worker --id\` is started right
after the kill; the master notices when it registers again. **Not started
again**: the master notices when the heartbeat timeout expires, and the job
restarts on the other worker's free slots (the killed worker is started
again after the measurement). **Detected** = the job's attempt went up;
**RUNNING again** = the new attempt is RUNNING; **records flowing** = also
its source's \`records_out\` (which starts from 0 in every attempt) is above
0 — that is what the figure of the table measures, and it includes the
worker's metrics report period (200 ms heartbeats). The modes alternate;
$REC_RUNS kills each.

"
fi
# write_sub HEADING: replaces the subsection HEADING ("### ...", up to the next
# "### " or "## ") of DOC's "## State backends" section by the text in SUB
# (which starts with HEADING), or appends it to the section; creates the
# section (with its introduction) when missing. The rest of DOC is kept, so
# parts 4 and 5 can be run apart.
BINTRO="## State backends

Written by \`make bench-checkpoint\` (\`bench/checkpoint.sh\`, parts 4 and 5,
each subsection by the run named in it); rerun it rather than editing the
numbers by hand. Keyed state on the heap (full snapshots) vs in RocksDB
(incremental checkpoints: SST files copied once into the job's \`shared/\`
directory, see [fault-tolerance.md](fault-tolerance.md#state-backends))."
write_sub() {
    touch "$DOC"
    SUB=$SUB HEAD=$1 INTRO=$BINTRO awk '
        BEGIN { sec = "## State backends" }
        /^## / {
            if (insec && !done) { print ENVIRON["SUB"]; print ""; done = 1 }
            skip = 0; insec = ($0 == sec); print; next
        }
        insec && /^### / {
            skip = 0
            if ($0 == ENVIRON["HEAD"] && !done) { print ENVIRON["SUB"]; print ""; done = skip = 1; next }
        }
        !skip { print }
        END {
            if (insec && !done) { print ""; print ENVIRON["SUB"]; done = 1 }
            if (!done) { print ""; print ENVIRON["INTRO"]; print ""; print ENVIRON["SUB"] }
        }' "$DOC" >"$DOC.tmp"
    mv "$DOC.tmp" "$DOC"
}
# the When / Machine / Command lines of a subsection
META="- **When:** $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$COMMIT\`, build \`${BUILD_TYPE:-unknown}\`.
- **Machine:** $(machine_line).
  Load average ${LOAD_START// /, } at the start, ${LOAD_END// /, } at the end.
- **Command:** $HOW."
# "100 MB" or "1 GB"
size_name() { if [ "$1" -ge 1000 ]; then awk -v m="$1" 'BEGIN { printf "%g GB", m / 1000 }'; else echo "$1 MB"; fi; }
if [ $DO_B = 1 ]; then
    for m in "${BMB[@]}"; do
        SZ=$(size_name "$m")
        if [ -n "${BWIDE[$m]}" ]; then
            SHAPE="keyed aggregate (count and sum per key, and the max of a string
\`w = concat(k, '-', k * A1 % 999999999989, '-', ..., k * A${BWIDE[$m]} % 999999999989)\` of
~$((BWIDE[$m] * 13 + 7)) bytes, pseudo-random digits (LZ4 cannot squeeze them much) that depend only
on the key, so the heap table stores it once; about $SZ as a heap snapshot)"
        else
            SHAPE="keyed aggregate (count and sum per key; about $SZ as a heap snapshot)"
        fi
        SUB=$(
            cat <<EOF
### Checkpoints of about $SZ of keyed state

$META

${BTABLES[$m]}

A master (\`--state-dir\`, \`--heartbeat-timeout $HB_MS\`; every run must
finish in attempt 1, no worker lost) and 2 worker processes (2 slots each)
run a generator → map (\`k = seq % $BACKEND_KEYS\`) → $SHAPE → discard at
parallelism 2, $BACKEND_EVENTS records paced at $STATE_RATE/s,
\`checkpoint: { interval: 1s, retain: 1000 }\`, with \`state: { backend: heap }\`
(full snapshots) and \`state: { backend: rocksdb${ROCKS_STATE:+, $ROCKS_STATE} }\`
(incremental), $RUNS runs each, alternating, each in a fresh cluster.
**Counted** checkpoints: those triggered (first state file) once the
aggregate had received $BACKEND_KEYS records, so that every key exists
(\`sluice status\` polled every ~20 ms), to the end of the run. Each figure
is the median over the runs of the run's own median (the runs' figures in
parentheses); **largest written** and **longest** are over every counted
checkpoint. **State** = every byte the checkpoint references: heap, its
\`chk-N\` files (the whole state every time); rocksdb, its \`chk-N\` files
(the stores' MANIFEST, OPTIONS, CURRENT and \`_manifest\`) plus the shared
SST files its store manifests list. **Written** = what the checkpoint added
to storage: heap, the same as its state; rocksdb, its \`chk-N\` files plus
the shared SSTs that no earlier checkpoint of the run listed (from the
manifests). **Duration** = first state file (the source's, written at the
trigger) → \`_metadata\`. **Peak RSS** = VmHWM of the two worker processes,
summed, and **CPU** = their user + system time, both from /proc at the end
of the run; **run wall** = submit → FINISHED.
EOF
        )
        write_sub "### Checkpoints of about $SZ of keyed state"
    done
fi
if [ $DO_B = 1 ] && [ "$BACKEND_TPUT" = 1 ]; then
    SUB=$(
        cat <<EOF
### Throughput with the rocksdb backend: checkpoints off vs every 1 s

$META

$BTTABLE

The agg-1m job of part 1 (1 000 000 keys, $AGG1M_EVENTS records, embedded,
P=2) with \`state: { backend: rocksdb${ROCKS_STATE:+, $ROCKS_STATE} }\`, without and with
\`checkpoint: { interval: 1s }\`, $RUNS rounds, order alternating.
EOF
    )
    write_sub "### Throughput with the rocksdb backend: checkpoints off vs every 1 s"
    echo "== wrote part 4's subsections of the State backends section of $DOC"
fi
if [ $DO_L = 1 ]; then
    if [ "$LARGE_MB" -ge 1000 ]; then SZ="$(awk -v m="$LARGE_MB" 'BEGIN { printf "%g GB", m / 1000 }')"; else SZ="$LARGE_MB MB"; fi
    SUB=$(
        cat <<EOF
### Recovery after \`kill -9\` with $SZ of keyed state

$META

$LTABLE

A fresh master (\`--state-dir\`, \`--heartbeat-timeout $HB_MS\`) and 2 worker
processes (2 slots each) per kill run a generator paced at $LARGE_RATE records/s
→ map (\`k = seq % $LARGE_KEYS\`: every record a new key, so the state grows
with the input) → keyed aggregate (count and sum per key) → discard at
parallelism 2, \`checkpoint: { interval: 1s }\`,
\`restart: { strategy: fixed-delay, attempts: 1000, delay: $RESTART_DELAY }\`,
the backend's \`state:\` block (rocksdb: \`${ROCKS_STATE:-defaults}\`).
When the last completed checkpoint holds at least $SZ (**state at the
kill**: its files, plus for rocksdb the job's \`shared/\` SST files; heap
snapshots are about 60 bytes per key, rocksdb SSTs less), the worker
running the first aggregate subtask is killed with SIGKILL and started
again at once (the master notices when it registers again); every task of
the job restarts from that checkpoint. From the kill (the logs read by a
thread every ~2 ms; \`sluice status --json\` polled every ~10 ms plus the
CLI's own time): **restarted worker logged its start** = its first log
line (printed once it started its loop, which registers at once);
**attempt failed** = the master's \`job … attempt 1 failed (worker w1 lost:
it registered again (restarted))\` line (it handled the registration and
found the worker alive in its table: RESTARTING); **master verifying the
checkpoint** = its line \`verifying checkpoints to restart from\` (with a
restart delay of 0 ms it starts at once: the master reads and
SHA-256-hashes every state file of the checkpoint, and for rocksdb every
SST its store manifests list, in a thread of its own that runs 5 nice
levels below the loop); **checkpoint chosen** = its line \`restarts from
checkpoint N\` (verified); **new attempt** = the job's attempt went up
(polled; the tasks deployed);
**restore** = the longest task's own figure from its log lines (state files
read and SHA-256-verified + operators restored; for rocksdb the stores
fetched and verified file by file, see "Restore: local copy vs checkpoint
storage"), and **its CPU** = the CPU time of that task's thread over the
same steps, plus the heap aggregate's restore thread (per core; RocksDB's
threads not counted), the figure that does not depend on the machine's
load;
**state restored** = when the last task logged its restore done
(wall clock); **RUNNING again** = the new attempt RUNNING; **records
through the aggregate** = the aggregate's \`records_in\` above 0 in the new
attempt (it includes the 200 ms metrics report period), the figure to
compare with the 2 s aim; **after the restore** = that minus state
restored: the generator's resumption, the channels, and the report period.
$LARGE_RUNS kills per backend, each in a fresh cluster.
EOF
    )
    write_sub "### Recovery after \`kill -9\` with $SZ of keyed state"
    echo "== wrote the $SZ recovery subsection of the State backends section of $DOC"
fi
[ $DO_T = 1 ] || [ $DO_S = 1 ] || [ $DO_R = 1 ] || exit 0
SECTION=$(
    cat <<EOF
## Checkpoints

Written by \`make bench-checkpoint\` (\`bench/checkpoint.sh\`); rerun it
rather than editing the numbers by hand. What checkpoints cost in
throughput, how big and how long they are, and how long a job takes to
recover from a lost worker (see [fault-tolerance.md](fault-tolerance.md)).

- **When:** $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$COMMIT\`, build \`${BUILD_TYPE:-unknown}\`.
- **Machine:** $(machine_line).
  Load average ${LOAD_START// /, } at the start, ${LOAD_END// /, } at the end
  (the machine is shared: see the spread of the runs).
- **Command:** $HOW.

$BODY
EOF
)
write_section "$DOC" "## Checkpoints"
echo "== wrote the Checkpoints section of $DOC"
