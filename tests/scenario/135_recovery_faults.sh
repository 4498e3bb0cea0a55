#!/usr/bin/env bash
# Recovery from faults that are not a clean kill (docs/fault-tolerance.md):
#
# 1. A corrupt newest checkpoint: with the master frozen (SIGSTOP) at a
#    moment when no checkpoint is in flight, every completed checkpoint but
#    the oldest is damaged (a truncated _metadata, a flipped byte in a state
#    file, a deleted state file: one job each), a worker running the job is
#    killed with SIGKILL and started again, and the master is let go. The
#    restart must skip the damaged ones, saying why ("checkpoint N is
#    unusable (...); falling back to the previous one"), restore the intact
#    one, and the outputs must equal the failure-free results exactly.
# 2. A permanently failing job (a malformed record with on_error: fail)
#    ends FAILED once its restart strategy is exhausted, with the cause,
#    and without a restart loop: fixed-delay (2 restarts), none, and
#    failure-rate (1 failure per minute).
# 3. A paused worker is fenced: SIGSTOP longer than the heartbeat timeout
#    makes the master run a new attempt elsewhere; after SIGCONT the worker
#    is told it is unknown, drops what it ran and registers again, and the
#    job's outputs are still exact.
#
# The master is frozen only for a few file operations (the time it is
# frozen is not counted against the workers' heartbeats: 065); every wait
# polls with a deadline.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
CHAOS=$SRC/tests/scenario/chaos
DIR=$SRC/tests/scenario/recovery
COUNT=${RECOVERY_COUNT:-20000} # 10 s a job
RATE=${RECOVERY_RATE:-2000}
# Each source subtask of parts 1 and 3 holds after PAUSE_AFTER of its
# records until the test creates the job's release file, once the fault is
# done and the new attempt runs: on a slow machine the job cannot end before
# the fault; a restored source holds there too if it has not passed it.
PAUSE_AFTER=$((COUNT / 4))
HB=2500 # the master's --heartbeat-timeout, ms (a loaded machine may not schedule a worker for 1 s)
RETAIN=10 # checkpoint.retain of recovery/keyed.yaml

# Problems found that do not stop the rest of the test (reported at the end).
SOFT=()
soft_fail() {
    echo "FAIL (continuing): $*" >&2
    SOFT+=("$*")
}

# (jget, start_master, start_worker, job_workers, freeze, thaw: lib.sh; jget reads the
# job-level fields, which come before the tasks' fields of the same names)
status() { sluice status --json "$1"; }
field() { status "$1" | jget "$2"; }
checkpoints_at_least() { [ "$(field "$1" checkpoints)" -ge "$2" ]; }
running_attempt() {
    local s
    s=$(status "$1")
    [ "$(jget state <<<"$s") $(jget attempt <<<"$s")" = "RUNNING $2" ]
}
# final JOB: the job's status in $WORK/final.json; prints "STATE ATTEMPT
# RESTORED_FROM NFAILURES" (each failure starts with "attempt N: ").
final() {
    status "$1" >"$WORK/final.json"
    echo "$(jget state <"$WORK/final.json") $(jget attempt <"$WORK/final.json")" \
        "$(jget restored_from <"$WORK/final.json")" \
        "$(grep -o '"attempt [0-9]*: ' "$WORK/final.json" | wc -l)"
}
is_state() { [ "$(field "$1" state)" = "$2" ]; }
ended() { field "$1" state | grep -qxE 'FINISHED|FAILED|CANCELED'; }
worker_alive() { sluice workers --json | grep -q "\"id\":\"$1\"[^}]*\"alive\":true"; }

# Completed checkpoints of a job (ids, oldest first) and checkpoints in
# flight (directories without _metadata) in its checkpoint directory.
completed_ids() {
    local d
    for d in "$1"/chk-*; do [ -e "$d/_metadata" ] && echo "${d##*/chk-}"; done | sort -n
}
pending_dirs() {
    local d
    for d in "$1"/chk-*; do [ -d "$d" ] && [ ! -e "$d/_metadata" ] && echo "$d"; done
    return 0
}

# The three ways a checkpoint is damaged, and what the master must say.
corrupt() { # KIND DIR
    case $1 in
    truncate)
        local size
        size=$(stat -c %s "$2/_metadata")
        truncate -s $((size / 2)) "$2/_metadata"
        ;;
    flip) # one byte in the middle of the largest state file (keyed state)
        local f off b
        f=$(ls -S "$2"/task-*.state | head -n 1)
        off=$(($(stat -c %s "$f") / 2))
        b=$(od -An -tu1 -j "$off" -N 1 "$f" | tr -d ' ')
        # shellcheck disable=SC2059
        printf "$(printf '\\%03o' $((b ^ 0x5A)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
        ;;
    delete) rm -f "$(ls "$2"/task-*.state | sort | tail -n 1)" ;;
    esac
}
reason_of() {
    case $1 in
    truncate) echo "_metadata is truncated (no checksum line)" ;;
    flip) echo "is corrupt (its SHA-256 differs)" ;;
    delete) echo ".state is missing" ;;
    esac
}

check_outputs() { # NAME: its totals and windows equal the closed-form results
    local name=$1 out counts
    for out in totals windows; do
        [ -f "$WORK/$name-$out.csv" ] || { soft_fail "$name: no $out output"; continue; }
        tail -n +2 "$WORK/$name-$out.csv" | sort >"$WORK/got-$name-$out.csv"
        if cmp -s "$WORK/want-$out.csv" "$WORK/got-$name-$out.csv"; then
            echo "   $name $out: exact"
        else
            counts=$(python3 "$CHAOS/expected.py" check "$WORK/want-$out.csv" "$WORK/got-$name-$out.csv")
            diff "$WORK/want-$out.csv" "$WORK/got-$name-$out.csv" | head -n 6 >&2 || true
            soft_fail "$name: $out differ from the failure-free result ($counts)"
        fi
        wait_for 20 test ! -e "$WORK/.$name-$out.csv.sluice-staging" ||
            soft_fail "$name: the $out sink's staging directory was left behind"
    done
}

T0=$SECONDS
step "start a master (heartbeat timeout $HB ms) and three workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 60 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

# ---- 1. corrupt checkpoints: the restart falls back to an intact one ---------

corrupt_round() { # KIND
    local kind=$1 t=$SECONDS
    step "1/$kind: $COUNT records at $RATE/s, checkpoints every 300 ms"
    submit_keyed "$DIR/keyed.yaml" "corrupt-$kind-" 3 -p pause_after="$PAUSE_AFTER" -p pause_for=10m \
        -p pause_until="$WORK/release-$kind"
    local ckdir="$WORK/state/checkpoints/$JOB"
    local victim
    local ws=()
    mapfile -t ws < <(job_workers "$JOB")
    victim=${ws[$((RANDOM % ${#ws[@]}))]}

    # Freeze the master when no checkpoint is in flight on disk: then no
    # checkpoint can complete (only the master writes _metadata) while the
    # files are damaged, and none can complete afterwards either, since
    # the killed worker never acknowledges one. (A checkpoint whose
    # trigger was sent but whose directory does not exist yet is in
    # flight too: it is removed below once the victim is dead, so it
    # could only complete without the victim's files, i.e. unusable.)
    local ids=() try frozen=false
    for try in $(seq 1 500); do
        [ $((try % 20)) -ne 1 ] || is_state "$JOB" RUNNING ||
            fail "the job ended before the fault: $(sluice status "$JOB")"
        freeze "$MASTER_PID"
        mapfile -t ids < <(completed_ids "$ckdir")
        # (more than `retain` complete: the master is deleting the oldest)
        if [ "${#ids[@]}" -ge 3 ] && [ "${#ids[@]}" -le "$RETAIN" ] &&
            [ -z "$(pending_dirs "$ckdir")" ]; then
            frozen=true
            break
        fi
        thaw "$MASTER_PID"
        sleep 0.0$((RANDOM % 5 + 1))
    done
    $frozen || fail "never found the master between two checkpoints"
    echo "   the master frozen between two checkpoints after $try tries"
    local vpid
    vpid=$(worker_pid "$victim")
    kill -9 "$vpid"
    wait "$vpid" 2>/dev/null || true
    local p
    while read -r p; do [ -z "$p" ] || rm -rf "$p"; done < <(pending_dirs "$ckdir")
    local keep=${ids[0]} bad=("${ids[@]:1}") id
    for id in "${bad[@]}"; do corrupt "$kind" "$ckdir/chk-$id"; done
    echo "   kill -9 $victim; checkpoints ${bad[*]} damaged ($kind), $keep intact"
    thaw "$MASTER_PID"
    start_worker "$victim"

    wait_for 60 running_attempt "$JOB" 2 ||
        fail "the job did not restart after the fault: $(sluice status "$JOB"; tail -5 "$WORK/master.err")"
    touch "$WORK/release-$kind"
    local why
    why=$(reason_of "$kind")
    for id in "${bad[@]}"; do
        local line
        line=$(grep -F "sluice-master: job $JOB: checkpoint $id is unusable (" "$WORK/master.err" || true)
        [ -n "$line" ] || { soft_fail "$kind: the master does not say checkpoint $id is unusable"; continue; }
        grep -qF "$why" <<<"$line" || soft_fail "$kind: checkpoint $id: unexpected reason: $line"
        grep -qF "; falling back to the previous one" <<<"$line" ||
            soft_fail "$kind: checkpoint $id: no fallback: $line"
    done
    grep -qF "job $JOB: checkpoint $keep is unusable" "$WORK/master.err" &&
        soft_fail "$kind: the intact checkpoint $keep was called unusable"
    grep -qxF "sluice-master: job $JOB restarts from checkpoint $keep" "$WORK/master.err" ||
        soft_fail "$kind: the master does not say it restarts from checkpoint $keep: $(grep -F "$JOB" "$WORK/master.err" | tail -3)"

    wait_for 120 ended "$JOB" || fail "job did not end: $(sluice status "$JOB")"
    local got
    got=$(final "$JOB")
    [ "$got" = "FINISHED 2 $keep 1" ] ||
        soft_fail "$kind: want 'FINISHED 2 $keep 1' (state, attempt, restored_from, failures), got '$got': $(sluice status "$JOB")"
    check_outputs "corrupt-$kind"
    wait_for 20 worker_alive "$victim" || fail "$victim did not come back"
    echo "   ($((SECONDS - t)) s)"
}

for kind in truncate flip delete; do corrupt_round "$kind"; done

# ---- 2. a permanently failing job ends FAILED, without a restart loop --------

{ # 300 good records, a malformed one on line 302, 100 more
    echo k,v
    seq 0 299 | awk '{ print $1 % 7 "," $1 }'
    echo 3,oops
    seq 0 99 | awk '{ print $1 % 7 "," $1 }'
} >"$WORK/bad.csv"
PARSE="task 0.0 (src) failed: source 'src': $WORK/bad.csv:302: column 'v': 'oops' is not an int64 (set on_error: skip to skip bad records)"

failing_job() { # SPEC ATTEMPTS ERROR-PREFIX
    local spec=$1 attempts=$2 prefix=$3 t=$SECONDS
    step "2/$spec: fails after $attempts attempt(s)"
    sluice submit "$DIR/bad_$spec.yaml" --detach -p input="$WORK/bad.csv" \
        -p output="$WORK/bad-$spec.csv" >"$WORK/job" || { cat "$WORK/stderr" >&2; fail "submit $spec"; }
    JOB=$(cat "$WORK/job")
    wait_for 60 ended "$JOB" || fail "$spec: the job did not end: $(sluice status "$JOB")"
    local got want i
    got=$(final "$JOB" | cut -d' ' -f1,2,4) # (restored_from: a checkpoint may complete first)
    [ "$got" = "FAILED $attempts $attempts" ] ||
        soft_fail "$spec: want 'FAILED $attempts $attempts' (state, attempt, failures), got '$got': $(cat "$WORK/final.json")"
    # (the strings need no JSON escapes)
    grep -qF "\"error\":\"$prefix$PARSE\"" "$WORK/final.json" ||
        soft_fail "$spec: the error is not '$prefix$PARSE': $(cat "$WORK/final.json")"
    want='"failures":['
    for i in $(seq 1 "$attempts"); do want+="$([ "$i" -eq 1 ] || echo ,)\"attempt $i: $PARSE\""; done
    grep -qF "$want]" "$WORK/final.json" ||
        soft_fail "$spec: the failures are not $want]: $(cat "$WORK/final.json")"
    local restarts
    restarts=$(grep -c "sluice-master: job $JOB attempt [0-9]* failed (.*); restarting in 100 ms" "$WORK/master.err" || true)
    [ "$restarts" -eq $((attempts - 1)) ] ||
        soft_fail "$spec: the master restarted the job $restarts times, want $((attempts - 1))"
    # no restart loop: the master's record of the job keeps the final state
    [ "$(field "$JOB" state) $(field "$JOB" attempt)" = "FAILED $attempts" ] ||
        soft_fail "$spec: the job changed after it FAILED: $(sluice status "$JOB")"
    [ ! -e "$WORK/bad-$spec.csv" ] || soft_fail "$spec: the failed job published an output file"
    # (a sink task still opening when the job failed may make it again: it
    # goes when the last task is down)
    wait_for 10 test ! -e "$WORK/.bad-$spec.csv.sluice-staging" ||
        soft_fail "$spec: the FAILED job left its sink's staging directory $WORK/.bad-$spec.csv.sluice-staging behind (the file sink 'removes its temporary file and publishes nothing' on failure)"
    echo "   ($((SECONDS - t)) s)"
}

failing_job fixed 3 "restart strategy exhausted after 2 restarts; last failure: "
failing_job none 1 ""
failing_job rate 2 "failure rate exceeded: 2 failures within 60000 ms; last failure: "

# ---- 3. a paused worker is fenced off ----------------------------------------

step "3: SIGSTOP the worker running the sinks for longer than the heartbeat timeout"
t=$SECONDS
submit_keyed "$DIR/keyed.yaml" paused- 2 -p pause_after="$PAUSE_AFTER" -p pause_for=10m \
    -p pause_until="$WORK/release-paused"
# the worker of the sink tasks: if anything of its old attempt were still
# accepted, it would show in the published output
victim=$(status "$JOB" | grep -o '"worker":"[^"]*"[^}]*"operators":\["out_totals"\]' | cut -d'"' -f4)
[ -n "$victim" ] || fail "no worker runs the sink out_totals: $(sluice status "$JOB")"
vpid=$(worker_pid "$victim")
log_size=$(stat -c %s "$WORK/$victim.err")
freeze "$vpid"
echo "   $victim paused"
wait_for 60 running_attempt "$JOB" 2 ||
    fail "the job did not move to a new attempt: $(sluice status "$JOB"; tail -5 "$WORK/master.err")"
status "$JOB" | grep -qF '"failures":["attempt 1: worker '"$victim"' lost: ' ||
    soft_fail "the failure does not name the lost worker: $(sluice status "$JOB")"
job_workers "$JOB" | grep -qx "$victim" &&
    soft_fail "the new attempt runs on the paused worker $victim"
worker_alive "$victim" && soft_fail "the paused worker $victim is still listed alive"
touch "$WORK/release-paused" # (the old attempt's source, if on $victim, may go on too: fenced)
thaw "$vpid"
echo "   $victim continued"
told_unknown() {
    tail -c +$((log_size + 1)) "$WORK/$victim.err" |
        grep -qF "master forgot this worker (unknown worker '$victim'); registering again"
}
wait_for 30 told_unknown ||
    soft_fail "$victim was not told it is unknown: $(tail -3 "$WORK/$victim.err")"
wait_for 30 worker_alive "$victim" || soft_fail "$victim did not register again: $(sluice workers)"
wait_for 120 ended "$JOB" || fail "job did not end: $(sluice status "$JOB")"
got=$(final "$JOB")
[ "$(cut -d' ' -f1,2,4 <<<"$got")" = "FINISHED 2 1" ] ||
    soft_fail "the job did not finish in attempt 2: $(sluice status "$JOB")"
check_outputs paused
kill -0 "$vpid" 2>/dev/null || soft_fail "the revived worker $victim died: $(tail -3 "$WORK/$victim.err")"
echo "   ($((SECONDS - t)) s)"

grep -h "Sanitizer" "$WORK"/*.err >&2 && soft_fail "sanitizer reports in the daemons' logs"

if [ "${#SOFT[@]}" -gt 0 ]; then
    printf 'FAIL: %s\n' "${SOFT[@]}" >&2
    exit 1
fi
echo "PASS recovery faults ($((SECONDS - T0)) s)"
