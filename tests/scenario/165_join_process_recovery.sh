#!/usr/bin/env bash
# Joins and process functions recover exactly (docs/fault-tolerance.md):
# recovery/join_process.yaml (an enrich join and an interval join of two
# paced generators, and the device_alerts process function with map state
# and event-time timers) runs three times at once on a master and three
# workers:
#   - uninterrupted, in process (`sluice run`): the reference;
#   - on the cluster, stopped with a savepoint at parallelism 2 after two
#     checkpoints (every 300 ms) and resumed from it at parallelism 3;
#   - on the cluster too, with a worker running its join or process
#     function killed (kill -9) after two checkpoints and started again:
#     the job restarts from its latest checkpoint (so may the resumed run);
#   - the same with the joins' rows and the process state in RocksDB
#     (`-p backend=rocksdb`; a fifth of the records, RocksDB under ASan is
#     slow): restored from the stores' checkpoints, equal to an
#     uninterrupted in-process run of those records.
# Every output of the cluster runs equals its reference's, row for row.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${PLUGIN_DIR:?}"
SPEC=$SRC/tests/scenario/recovery/join_process.yaml
PARAMS=(-p plugin="$PLUGIN_DIR/libsluice_device_alerts.so" -p count=100000 -p rate=4000
    -p ccount=10000 -p crate=400) # 25 s each
RPARAMS=(-p plugin="$PLUGIN_DIR/libsluice_device_alerts.so" -p count=20000 -p rate=1000
    -p ccount=2000 -p crate=100) # 20 s

json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

step "start a master and three workers"
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 2000 \
    --state-dir "$WORK/state" >"$WORK/master.out" 2>"$WORK/master.err" &
PIDS+=($!)
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
export SLUICE_MASTER=$(sed -n 's/.*listening on //p' "$WORK/master.out")
declare -A WPID
start_worker() {
    "$SLUICE_WORKER_BIN" --id "$1" --slots 10 --data-bind tcp://127.0.0.1 2>>"$WORK/$1.err" &
    WPID[$1]=$!
    PIDS+=($!)
}
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

submit() { # NAME PARALLELISM [ARGS...]: submits detached (with $SUBMIT_PARAMS, default PARAMS), prints the job id
    local name=$1 p=$2
    local -n params=${SUBMIT_PARAMS:-PARAMS}
    shift 2
    mkdir -p "$WORK/$name"
    sluice submit "$SPEC" --detach --parallelism "$p" "${params[@]}" -p out="$WORK/$name" "$@" ||
        fail "submit $name: $(cat "$WORK/stderr")"
}
state_of() { sluice status --json "$1" | json 'j["state"]'; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
checkpoints_at_least() { [ "$(sluice status --json "$1" | json 'j["checkpoints"]')" -ge "$2" ]; }
same_output() { # RUN [REFERENCE]: each output equals the reference's (default ref)
    local out ref=${2:-ref}
    for out in enriched near alerts; do
        [ -s "$WORK/$1/$out.csv" ] || fail "$1: no $out.csv"
        tail -n +2 "$WORK/$1/$out.csv" | sort >"$WORK/got.csv"
        tail -n +2 "$WORK/$ref/$out.csv" | sort >"$WORK/want.csv"
        cmp -s "$WORK/want.csv" "$WORK/got.csv" || {
            diff "$WORK/want.csv" "$WORK/got.csv" | head -n 10 >&2 || true
            fail "$1: $out.csv differs from the uninterrupted run's ($(wc -l <"$WORK/got.csv") rows, want $(wc -l <"$WORK/want.csv"))"
        }
    done
}

step "run the reference (in process), and the one to stop on the cluster"
mkdir -p "$WORK/ref"
"$SLUICE" run "$SPEC" --quiet "${PARAMS[@]}" -p out="$WORK/ref" >"$WORK/ref.out" 2>"$WORK/ref.err" &
REF_PID=$!
PIDS+=($REF_PID)
mkdir -p "$WORK/rref"
"$SLUICE" run "$SPEC" --quiet "${RPARAMS[@]}" -p out="$WORK/rref" >"$WORK/rref.out" 2>"$WORK/rref.err" &
RREF_PID=$!
PIDS+=($RREF_PID)
STOP=$(submit stop 2)

step "stop it with a savepoint after two checkpoints; resume it at parallelism 3"
wait_for 60 checkpoints_at_least "$STOP" 2 || fail "no checkpoints: $(sluice status "$STOP")"
sluice stop "$STOP" --savepoint --dir "$WORK/savepoints" >"$WORK/sp" ||
    fail "stop --savepoint: $(cat "$WORK/stderr") $(sluice status "$STOP")"
SP=$(cat "$WORK/sp")
[ -s "$SP/_metadata" ] || fail "no savepoint at '$SP'"
is_state "$STOP" STOPPED || fail "not stopped: $(sluice status "$STOP")"
RESUMED=$(submit resumed 3 --from-savepoint "$SP")

victim_of() { # JOB: a worker running its join or process function, while the job runs
    sluice status --json "$1" | json '(lambda w: w[0] if w and j["state"] == "RUNNING" else "")([t["worker"] for t in j.get("tasks", []) if "alerts" in t["operators"] or "enriched" in t["operators"]])'
}
can_kill() { checkpoints_at_least "$1" 2 && [ -n "$(victim_of "$1")" ]; }
restarted() { [ "$(sluice status --json "$1" | json 'j["attempt"]')" -ge 2 ]; }
kill_one() { # JOB NAME: kills -9 a worker running its join or process function, starts it
    # again and, once the job restarted, lets its sources go on past their pause
    wait_for 60 can_kill "$1" || fail "no checkpoints or not running: $(sluice status "$1")"
    local victim
    victim=$(victim_of "$1")
    [ -n "${WPID[$victim]:-}" ] || fail "no worker '$victim': $(sluice status "$1")"
    kill -9 "${WPID[$victim]}"
    start_worker "$victim"
    wait_for 60 restarted "$1" || fail "the killed run $1 did not restart: $(sluice status "$1")"
    touch "$WORK/release-$2"
}
# The runs to kill hold their sources halfway (pause_after) until the
# test lets them go after the kill: on a slow machine a run cannot end
# before it.
HOLD=(-p pause_for=10m)

step "run it twice more (heap, rocksdb) and kill -9 a worker running its join or process after two checkpoints"
KILL=$(submit kill 2 "${HOLD[@]}" -p pause_after=50000 -p cpause_after=5000 -p pause_until="$WORK/release-kill")
RKILL=$(SUBMIT_PARAMS=RPARAMS submit rkill 2 -p backend=rocksdb "${HOLD[@]}" -p pause_after=10000 \
    -p cpause_after=1000 -p pause_until="$WORK/release-rkill")
kill_one "$KILL" kill
kill_one "$RKILL" rkill

step "all finish"
wait "$REF_PID" || fail "the reference run failed: $(cat "$WORK/ref.err")"
wait "$RREF_PID" || fail "the second reference run failed: $(cat "$WORK/rref.err")"
for j in "$RESUMED" "$KILL" "$RKILL"; do
    wait_for 120 is_state "$j" FINISHED || fail "job $j did not finish: $(sluice status "$j")"
done
for j in "$KILL" "$RKILL"; do
    [ "$(sluice status --json "$j" | json 'j["attempt"]')" -ge 2 ] ||
        fail "the killed run $j did not restart: $(sluice status "$j")"
    [ "$(sluice status --json "$j" | json 'j["restored_from"]')" -gt 0 ] ||
        fail "the killed run $j did not restore a checkpoint: $(sluice status "$j")"
done
[ -n "$(find "$WORK/state" -name '_manifest' -print -quit)" ] ||
    fail "the rocksdb run checkpointed no store"
grep -q "starts from savepoint .* (at another parallelism or chaining)" "$WORK/master.err" ||
    fail "the master did not rescale: $(cat "$WORK/master.err")"
[ "$(wc -l <"$WORK/ref/alerts.csv")" -gt 10 ] || fail "the reference has too few alerts"
[ "$(wc -l <"$WORK/ref/near.csv")" -gt 1000 ] || fail "the reference has too few interval pairs"
[ "$(wc -l <"$WORK/rref/near.csv")" -gt 200 ] || fail "the second reference has too few interval pairs"

step "their outputs equal the uninterrupted run's"
same_output resumed
same_output kill
same_output rkill rref
echo "PASS joins and process functions recover exactly"
