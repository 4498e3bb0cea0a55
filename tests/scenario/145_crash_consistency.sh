#!/usr/bin/env bash
# Crash consistency of the checkpoint protocol (docs/fault-tolerance.md):
# with a failpoint (SLUICE_FAILPOINT=NAME:N, sluice/failpoint.h) a worker or
# the master kills itself with SIGKILL at one step of a checkpoint — before
# a task writes its state, with the state's temporary file written, before
# its rename, before the directory sync, before the acknowledgement; before
# the master writes _metadata, mid-write, before its rename, before the
# directory sync, before it notifies the tasks — and the master once more
# after every task finished (the sinks published the whole output) but
# before it recorded the job as finished. The test starts the process
# again without the failpoint; recovery must only ever load a complete
# checkpoint, and the job's outputs must equal the closed-form results.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=120000
RATE=40000

python3 "$DIR/expected.py" want "$COUNT" "$RATE" "$WORK/want-totals.csv" "$WORK/want-windows.csv"
sort -o "$WORK/want-totals.csv" "$WORK/want-totals.csv"
sort -o "$WORK/want-windows.csv" "$WORK/want-windows.csv"

# run_with_failpoint WHO POINT [HIT]: WHO is "master" or "worker"; the
# failpoint fires at its HIT-th hit (default: after a checkpoint or two)
run_with_failpoint() {
    local who=$1 point=$2 hit=${3:-} run=$WORK/$2
    mkdir -p "$run"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export SLUICE_MASTER=tcp://127.0.0.1:$port
    local fp_master="" fp_worker=""
    [ "$who" = master ] && fp_master="$point:${hit:-3}"
    [ "$who" = worker ] && fp_worker="$point:${hit:-5}"
    SLUICE_FAILPOINT=$fp_master "$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 1000 \
        --state-dir "$run/state" >>"$run/master.out" 2>>"$run/master.err" &
    local master=$!
    PIDS+=("$master")
    wait_for 10 grep -qs "listening on" "$run/master.out" || fail "$point: master did not start"
    SLUICE_FAILPOINT=$fp_worker "$SLUICE_WORKER_BIN" --id w1 --slots 2 --data-bind tcp://127.0.0.1 \
        2>>"$run/w1.err" &
    local w1=$!
    PIDS+=("$w1")
    "$SLUICE_WORKER_BIN" --id w2 --slots 2 --data-bind tcp://127.0.0.1 2>>"$run/w2.err" &
    PIDS+=($!)
    wait_for 20 bash -c '[ "$("$0" workers --json | grep -o "\"alive\":true" | wc -l)" -eq 2 ]' "$SLUICE" ||
        fail "$point: workers did not register"
    sluice submit "$DIR/keyed.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p interval=200ms \
        -p out_totals="$run/totals.csv" -p out_windows="$run/windows.csv" > "$run/job" ||
        { cat "$WORK/stderr" >&2; fail "$point: submit"; }
    local job
    job=$(cat "$run/job")
    # the process with the failpoint dies at it; start it again without it
    local victim=$w1
    [ "$who" = master ] && victim=$master
    wait_for 60 bash -c "! kill -0 $victim 2>/dev/null" ||
        fail "$point: the failpoint never fired: $(sluice status "$job")"
    grep -q "failpoint $point reached" "$run/$([ "$who" = master ] && echo master || echo w1).err" ||
        fail "$point: the process died, but not at the failpoint"
    if [ "$who" = master ]; then
        "$SLUICE_MASTER_BIN" --bind "$SLUICE_MASTER" --heartbeat-timeout 1000 \
            --state-dir "$run/state" >>"$run/master.out" 2>>"$run/master.err" &
        PIDS+=($!)
    else
        "$SLUICE_WORKER_BIN" --id w1 --slots 2 --data-bind tcp://127.0.0.1 2>>"$run/w1.err" &
        PIDS+=($!)
    fi
    finished() { sluice status --json "$job" | grep -q '"state":"FINISHED"'; }
    wait_for 120 finished || fail "$point: the job did not finish: $(sluice status "$job")"
    for out in totals windows; do
        tail -n +2 "$run/$out.csv" | sort > "$run/got.csv"
        cmp -s "$WORK/want-$out.csv" "$run/got.csv" || {
            diff "$WORK/want-$out.csv" "$run/got.csv" | head -n 5 >&2 || true
            fail "$point: $out differ: $(python3 "$DIR/expected.py" check "$WORK/want-$out.csv" "$run/got.csv")"
        }
    done
    # a checkpoint is only what has a _metadata: nothing else may be restored
    if grep -q "restarts from checkpoint" "$run/master.err"; then
        local id
        id=$(sed -n 's/.*restarts from checkpoint \([0-9]*\).*/\1/p' "$run/master.err" | tail -n 1)
        # (a later checkpoint may have retired it: its deletion may be under way)
        wait_for 20 bash -c 'grep -qx "checkpoint $1" "$2/_metadata" 2>/dev/null || [ ! -d "$2" ]' \
            _ "$id" "$run/state/checkpoints/$job/chk-$id" ||
            fail "$point: restored checkpoint $id has no valid _metadata"
    fi
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

# (sl_fs_write_atomic_fp also has state-before-rename / state-before-dirsync
# and metadata-before-write; the steps below cover each kind of crash)
for point in state-before-write state-tmp-written task-before-ack; do
    step "worker crashes at $point"
    run_with_failpoint worker "$point"
done
for point in metadata-tmp-written metadata-before-rename metadata-before-dirsync \
    master-before-notify; do
    step "master crashes at $point"
    run_with_failpoint master "$point"
done
# the restart restores a checkpoint taken before the end: the sinks' staged
# parts are gone (published), their end markers say so
step "master crashes after the job's tasks finished, before it recorded the end"
run_with_failpoint master master-before-finished 1
grep -q "restarts from checkpoint" "$WORK/master-before-finished/master.err" ||
    fail "master-before-finished: the job was not restarted after the master came back"
[ "$(cat "$WORK/master-before-finished/w"*.err |
    grep -c "the failed attempt had published the whole output")" -ge 1 ] ||
    fail "master-before-finished: the sinks did not find their end markers"
for f in totals windows; do
    wait_for 20 test ! -e "$WORK/master-before-finished/.$f.csv.sluice-staging" ||
        fail "master-before-finished: the finished job's staging directory for $f.csv is still there"
done
echo "PASS crash consistency at 8 steps of the checkpoint protocol"
