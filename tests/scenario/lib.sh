# lib.sh — shared helpers of the scenario tests (sourced, not run).
# Environment from CTest: SLUICE (the CLI binary), SRC (source tree).
set -euo pipefail
export LC_ALL=C
: "${SLUICE:?SLUICE must name the sluice binary}"
: "${SRC:?SRC must name the source tree}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scenario-XXXXXX")

# Background processes a test starts (daemons) go into PIDS; at exit they are
# killed and the work directory removed.
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# wait_for SECS CMD...: polls CMD until it succeeds; fails after SECS seconds.
wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "== $*"
}

# Runs the CLI; its stderr goes to $WORK/stderr and is checked for
# sanitizer reports (a leak or UB report fails the test even when the
# command's own exit status is what we expected).
sluice() {
    local rc=0
    "$SLUICE" "$@" 2>"$WORK/stderr" || rc=$?
    if grep -q "Sanitizer" "$WORK/stderr"; then
        cat "$WORK/stderr" >&2
        fail "sanitizer report from: sluice $*"
    fi
    return $rc
}

# ---- a cluster of daemons (tests that kill, freeze and restart them) ----------
# jget FIELD: a top-level scalar of the one-line JSON on stdin, with grep and
# cut, not python: on a loaded machine a python start can take seconds.
# start_master ENDPOINT (heartbeat timeout $HB ms, state in $WORK/state) and
# start_worker ID [FAILPOINT] (2 slots; SLUICE_FAILPOINT=FAILPOINT; its pid in
# PID_<ID>, worker_pid ID) log to $WORK;
# job_workers JOB lists the workers running a job's tasks.
# freeze / thaw PID: SIGSTOP / SIGCONT, returning once it took effect.
jget() { grep -o "\"$1\":[^,]*" | head -n 1 | cut -d: -f2- | tr -d '"'; }
start_master() {
    "$SLUICE_MASTER_BIN" --bind "$1" --heartbeat-timeout "$HB" \
        --state-dir "$WORK/state" >>"$WORK/master.out" 2>>"$WORK/master.err" &
    MASTER_PID=$!
    PIDS+=("$MASTER_PID")
}
start_worker() { # ID [FAILPOINT]
    SLUICE_FAILPOINT=${2:-} "$SLUICE_WORKER_BIN" --id "$1" --slots 2 --data-bind tcp://127.0.0.1 \
        >>"$WORK/$1.out" 2>>"$WORK/$1.err" &
    PIDS+=($!)
    eval "PID_$1=$!"
}
worker_pid() { eval "echo \$PID_$1"; }
# alive_workers N: exactly N workers are registered and alive
alive_workers() { [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq "$1" ]; }
# job_workers JOB: the workers that run the job's tasks now, one per line
job_workers() { sluice status --json "$1" | grep -o '"worker":"[^"]*"' | cut -d'"' -f4 | sort -u; }
proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null; }
is_stopped() { [ "$(proc_state "$1")" = T ]; }
is_not_stopped() { [ "$(proc_state "$1")" != T ]; }
freeze() {
    local i
    kill -STOP "$1"
    for i in $(seq 1 2000); do is_stopped "$1" && return 0; sleep 0.005; done
    fail "process $1 did not stop"
}
thaw() {
    local i
    kill -CONT "$1"
    for i in $(seq 1 2000); do is_not_stopped "$1" && return 0; sleep 0.005; done
    fail "process $1 did not continue"
}

# ---- the development Kafka broker (tools/sluice-dev-kafka) ---------------------
# start_devk ARGS...: starts it with ARGS (--brokers, --topic ...) and its
# control commands on a FIFO (fd 8); sets BOOT (the bootstrap address) and
# DEVK_PID; its answers go to $WORK/dk.out. ctl COMMAND sends a command and
# waits for its answer, which must be ok.
start_devk() {
    local devk="$BUILD/tools/sluice-dev-kafka"
    [ -x "$devk" ] || fail "$devk is not built"
    mkfifo "$WORK/ctl"
    exec 8<>"$WORK/ctl"
    "$devk" "$@" --port-file "$WORK/boot" <"$WORK/ctl" >"$WORK/dk.out" 2>"$WORK/dk.err" &
    DEVK_PID=$!
    PIDS+=("$DEVK_PID")
    wait_for 10 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
    BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")
    NANS=0
}
ctl() {
    NANS=$((NANS + 1))
    echo "$*" >&8
    wait_for 10 eval '[ "$(grep -c -E "^(ok|error: )" "$WORK/dk.out")" -ge $NANS ]' ||
        fail "no answer to '$*'"
    [ "$(grep -E '^(ok|error: )' "$WORK/dk.out" | sed -n "${NANS}p")" = ok ] ||
        fail "'$*': $(grep -E '^(ok|error: )' "$WORK/dk.out" | sed -n "${NANS}p")"
}
