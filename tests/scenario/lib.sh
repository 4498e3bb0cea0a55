# lib.sh — shared helpers of the scenario tests (sourced, not run).
# Environment from CTest: SLUICE (the CLI binary), SRC (source tree).
set -euo pipefail
export LC_ALL=C
: "${SLUICE:?SLUICE must name the sluice binary}"
: "${SRC:?SRC must name the source tree}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scenario-XXXXXX")
# Every temporary directory the test's processes make (a master's state
# directory, a worker's cache: sl_fs_mkdtemp) goes under TMP_ROOT, removed
# with WORK, so a process killed with -9 leaves nothing behind.
TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scenario-tmp-XXXXXX")
export TMPDIR=$TMP_ROOT

# Background processes a test starts (daemons) go into PIDS; at exit they are
# killed and the work directory removed.
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK" "$TMP_ROOT"
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

# fail MESSAGE: ends the test. With FAIL_LOG_RE set, the lines of the
# daemons' logs that match it (grep -E) come first: the logs named by
# FAIL_LOGS (globs in $WORK; master.err unless set).
fail() {
    if [ -n "${FAIL_LOG_RE:-}" ]; then
        # shellcheck disable=SC2086 # FAIL_LOGS holds globs
        (cd "$WORK" && grep -hE "$FAIL_LOG_RE" ${FAIL_LOGS:-master.err}) >&2 2>/dev/null || true
    fi
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
# start_worker ID [FAILPOINT [OPTION...]] (2 slots; SLUICE_FAILPOINT=FAILPOINT;
# the OPTIONs added to its command line; its pid in PID_<ID>, worker_pid ID)
# log to $WORK; start_local_master starts a master on a free local port,
# exports its endpoint as SLUICE_MASTER and returns once it listens;
# job_workers JOB lists the workers running a job's tasks.
# freeze / thaw PID: SIGSTOP / SIGCONT, returning once it took effect.
jget() { grep -o "\"$1\":[^,]*" | head -n 1 | cut -d: -f2- | tr -d '"'; }
start_master() {
    "$SLUICE_MASTER_BIN" --bind "$1" --heartbeat-timeout "$HB" \
        --state-dir "$WORK/state" >>"$WORK/master.out" 2>>"$WORK/master.err" &
    MASTER_PID=$!
    PIDS+=("$MASTER_PID")
}
now_ms() { date +%s%3N; }
# term_master: SIGTERM to the master, waiting (15 s at most) for it to exit;
# its exit status in rc, the milliseconds it took in took
term_master() {
    local t0 _
    t0=$(now_ms)
    kill -TERM "$MASTER_PID"
    for _ in $(seq 1 300); do kill -0 "$MASTER_PID" 2>/dev/null || break; sleep 0.05; done
    wait "$MASTER_PID" 2>/dev/null && rc=0 || rc=$?
    took=$(($(now_ms) - t0))
    echo "   master exited with $rc in $took ms"
}
start_local_master() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export SLUICE_MASTER=tcp://127.0.0.1:$port
    start_master "$SLUICE_MASTER"
    wait_for 30 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
}
start_worker() { # ID [FAILPOINT [OPTION...]]
    local id=$1 fp=${2:-}
    shift $(($# < 2 ? $# : 2))
    SLUICE_FAILPOINT=$fp "$SLUICE_WORKER_BIN" --id "$id" --slots 2 --data-bind tcp://127.0.0.1 \
        "$@" >>"$WORK/$id.out" 2>>"$WORK/$id.err" &
    PIDS+=($!)
    eval "PID_$id=$!"
}
worker_pid() { eval "echo \$PID_$1"; }
# alive_workers N: exactly N workers are registered and alive
alive_workers() { [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq "$1" ]; }
# job_workers JOB: the workers that run the job's tasks now, one per line
job_workers() { sluice status --json "$1" | grep -o '"worker":"[^"]*"' | cut -d'"' -f4 | sort -u; }
# running_workers FILE: from a job's saved `sluice status --json`, the
# workers whose tasks of it are RUNNING, one per line; none unless the job
# itself is RUNNING (a kill then would restart nothing)
running_workers() {
    [ "$(jget state <"$1")" = RUNNING ] || return 0
    grep -o '"worker":"[^"]*","host":"[^"]*","state":"RUNNING"' "$1" | cut -d'"' -f4 | sort -u
}
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
# stop_devk: stops the broker start_devk started (its address in BOOT then
# answers nothing: a dead broker) and closes its control FIFO.
stop_devk() {
    kill -TERM "$DEVK_PID" 2>/dev/null || true
    wait "$DEVK_PID" 2>/dev/null || true
    exec 8>&-
    rm -f "$WORK/ctl"
}
# kafka_read TOPIC FILE: the whole topic at $BOOT, headers included, as
# kcat -J lines in FILE.
kafka_read() {
    kcat -C -b "$BOOT" -t "$1" -e -o beginning -J >"$2" 2>"$WORK/kcat.err" ||
        fail "kcat: $(cat "$WORK/kcat.err")"
}

# ---- a submitted job (its id in JOB) -------------------------------------------
# job_status: its status (JSON); job_field FIELD: a top-level field of it;
# checkpoints_at_least N, running_attempt_at_least N (fails the test if the
# job ended first), job_state_is STATE, job_ended (in any final state) and
# job_finished (fails it if the job FAILED) are conditions for wait_for.
job_status() { sluice status --json "$JOB"; }
job_field() { job_status | jget "$1"; }
job_state_is() { [ "$(job_field state)" = "$1" ]; }
job_ended() { job_field state | grep -qxE 'FINISHED|FAILED|CANCELED'; }
checkpoints_at_least() { [ "$(job_field checkpoints)" -ge "$1" ]; }
running_attempt_at_least() {
    local st
    sluice status --json "$JOB" >"$WORK/st.json"
    st=$(jget state <"$WORK/st.json")
    [ "$st" != FINISHED ] || fail "the job finished first: make it longer"
    [ "$st" != FAILED ] || fail "the job failed: $(sluice status "$JOB")"
    [ "$st" = RUNNING ] && [ "$(jget attempt <"$WORK/st.json")" -ge "$1" ]
}
job_finished() {
    local st
    st=$(job_field state)
    [ "$st" != FAILED ] || fail "the job failed: $(sluice status "$JOB")"
    [ "$st" = FINISHED ]
}
# rides_through N "API ERR[,ERR...]"...: pushes the errors to the dev
# broker (retriable ones); the job must complete N more checkpoints in its
# first attempt.
rides_through() {
    local n=$1 e before
    shift
    for e in "$@"; do ctl push-errors $e; done
    before=$(job_field checkpoints)
    wait_for 60 checkpoints_at_least $((before + n)) || fail "no checkpoints after retriable errors: $*"
    [ "$(job_field attempt)" -eq 1 ] || fail "retriable errors restarted the job: $(sluice status "$JOB")"
}
# restarts_on API ERR[,ERR...] REGEX: pushes the errors to the dev broker;
# the job must run again in a later attempt, its status naming the failure
# (grep -E REGEX).
restarts_on() {
    local attempt
    attempt=$(job_field attempt)
    ctl push-errors "$1" "$2"
    wait_for 60 running_attempt_at_least $((attempt + 1)) ||
        fail "$1 $2 did not restart the job: $(sluice status "$JOB")"
    sluice status "$JOB" >"$WORK/st.txt"
    grep -qE "$3" "$WORK/st.txt" || fail "after $1 $2, the status does not match '$3': $(cat "$WORK/st.txt")"
}

# ---- failpoints through restarts (chaos tests; workers w1 w2 w3) ---------------
# fp_fired NAME: how often failpoint NAME was reached (the workers' logs).
# fp_armed NAME: a live worker was started with it (ARM_<id>).
# restart_dead_workers [-x] FP:N...: starts again every worker whose process
# ended, with the first FP:N whose failpoint has not fired yet (-x: and no
# live worker is armed with), or none; ARM_<id> records it.
fp_fired() { cat "$WORK"/w?.err | grep -c "failpoint $1 reached" || true; }
fp_armed() {
    local id
    for id in w1 w2 w3; do
        [ "$(eval echo "\${ARM_$id:-}")" = "$1" ] && kill -0 "$(worker_pid "$id")" 2>/dev/null && return 0
    done
    return 1
}
restart_dead_workers() {
    local excl=0 id pid f fp
    [ "${1:-}" != -x ] || { excl=1; shift; }
    for id in w1 w2 w3; do
        pid=$(worker_pid "$id")
        kill -0 "$pid" 2>/dev/null && continue
        wait "$pid" 2>/dev/null || true
        eval "ARM_$id="
        fp=
        for f in "$@"; do
            [ "$(fp_fired "${f%:*}")" -eq 0 ] || continue
            [ $excl -eq 0 ] || ! fp_armed "${f%:*}" || continue
            fp=$f
            break
        done
        echo "worker $id died; starting it again ${fp:+(failpoint $fp)}"
        start_worker "$id" "$fp"
        eval "ARM_$id=\${fp%:*}"
    done
}

# ---- the keyed job of chaos/ (chaos/keyed.yaml and its variants) ---------------
# submit_keyed YAML PREFIX CHECKPOINTS [ARG...]: submits YAML detached with
# count=$COUNT and rate=$RATE, its outputs in $WORK/PREFIXtotals.csv and
# $WORK/PREFIXwindows.csv, and the ARGs (more -p NAME=VALUE); its id in JOB.
# Returns once CHECKPOINTS checkpoints completed (0: once it runs), failing
# the test if that takes over 90 s or the job ends first.
submit_keyed() {
    local yaml=$1 prefix=$2 n=$3
    shift 3
    sluice submit "$yaml" --detach -p count="$COUNT" -p rate="$RATE" \
        -p out_totals="$WORK/${prefix}totals.csv" -p out_windows="$WORK/${prefix}windows.csv" \
        "$@" >"$WORK/job" || fail "submit ${yaml##*/}: $(cat "$WORK/stderr")"
    JOB=$(cat "$WORK/job")
    wait_for 90 s_keyed_running "$n" ||
        fail "the job did not run to $n checkpoints: $(sluice status "$JOB")"
}
s_keyed_running() { # N: the job runs, with N checkpoints completed (fails the test if it ended)
    local st
    sluice status --json "$JOB" >"$WORK/submitted.json"
    st=$(jget state <"$WORK/submitted.json")
    case $st in FINISHED | FAILED | CANCELED | STOPPED)
        fail "the job ended ($st) before $1 checkpoints: $(sluice status "$JOB")" ;;
    esac
    [ "$st" = RUNNING ] && [ "$(jget checkpoints <"$WORK/submitted.json")" -ge "$1" ]
}
# keyed_want COUNT RATE: its failure-free outputs for COUNT records at RATE/s
# in $WORK/want-totals.csv and $WORK/want-windows.csv, sorted.
# keyed_exact [PREFIX]: $WORK/PREFIXtotals.csv and $WORK/PREFIXwindows.csv
# (CSV with a header) hold exactly those rows, or the test fails.
keyed_want() {
    python3 "$SRC/tests/scenario/chaos/expected.py" want "$1" "$2" "$WORK/want-totals.csv" \
        "$WORK/want-windows.csv"
    sort -o "$WORK/want-totals.csv" "$WORK/want-totals.csv"
    sort -o "$WORK/want-windows.csv" "$WORK/want-windows.csv"
}
keyed_exact() {
    local out counts
    for out in totals windows; do
        tail -n +2 "$WORK/${1:-}$out.csv" | sort >"$WORK/got-$out.csv"
        cmp -s "$WORK/want-$out.csv" "$WORK/got-$out.csv" || {
            counts=$(python3 "$SRC/tests/scenario/chaos/expected.py" check "$WORK/want-$out.csv" \
                "$WORK/got-$out.csv")
            diff "$WORK/want-$out.csv" "$WORK/got-$out.csv" | head -n 6 >&2 || true
            fail "$out differ from the failure-free result ($counts)"
        }
        echo "   $out: exact"
    done
}

# flip_byte FILE: XORs the byte in the middle of FILE with 0x5A, in place
# (bit rot).
flip_byte() {
    local off b
    off=$(($(stat -c %s "$1") / 2))
    b=$(od -An -tu1 -j "$off" -N 1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059
    printf "$(printf '\\%03o' $((b ^ 0x5A)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

# no_sanitizer_reports: no log in $WORK (*.err: the daemons') has a
# sanitizer report.
no_sanitizer_reports() {
    local f
    for f in "$WORK"/*.err; do
        [ -e "$f" ] || continue
        if grep -q "Sanitizer" "$f"; then
            cat "$f" >&2
            fail "sanitizer report in ${f##*/}"
        fi
    done
}
