#!/usr/bin/env bash
# Keyed state in RocksDB through failures (docs/fault-tolerance.md, "State
# backends"): a master and three worker processes run rocks/keyed.yaml (the
# keyed aggregation and window of chaos/keyed.yaml with
# `state: {backend: rocksdb}`, incremental checkpoints every 300 ms).
#
# 1. After two checkpoints, a worker running the job is killed with
#    SIGKILL and started again: the job restarts from its latest
#    checkpoint (its stores restored from the shared SST files).
# 2. With the master frozen (SIGSTOP) between two checkpoints, the SST
#    files that the newest checkpoint added are damaged (one byte flipped
#    in one, the others deleted) and a worker is killed: the master must
#    call the newest checkpoint unusable ("... falling back to the
#    previous one") and restore the one before it.
# Both outputs must equal the failure-free results exactly; the checkpoint
# directory must hold shared SSTs referenced by several checkpoints, and
# no shared file that no retained checkpoint needs once the job is done.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/rocks
COUNT=${ROCKS_COUNT:-120000}
RATE=${ROCKS_RATE:-2000}
HB=1000   # the master's --heartbeat-timeout, ms
RETAIN=10 # checkpoint.retain of rocks/keyed.yaml

# On failure, the master's account of the restarts too.
FAIL_LOG_RE="unusable|restarts from|not collected"
completed_ids() {
    local d
    for d in "$CK"/chk-*; do [ -e "$d/_metadata" ] && echo "${d##*/chk-}"; done | sort -n
}
pending_dirs() {
    local d
    for d in "$CK"/chk-*; do [ -d "$d" ] && [ ! -e "$d/_metadata" ] && echo "$d"; done
    return 0
}
pick_victim() { # -> a worker running the job in $VICTIM
    local ws=()
    mapfile -t ws < <(job_workers "$JOB")
    [ "${#ws[@]}" -gt 0 ] || fail "no worker runs the job: $(sluice status "$JOB")"
    VICTIM=${ws[$((RANDOM % ${#ws[@]}))]}
}
kill_victim() { # (not started again)
    local vpid
    vpid=$(worker_pid "$VICTIM")
    kill -9 "$vpid"
    wait "$vpid" 2>/dev/null || true
}

step "start a master (heartbeat timeout $HB ms) and three workers"
start_local_master
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

step "submit: $COUNT records at $RATE/s, state in rocksdb, checkpoints every 300 ms"
submit_keyed "$DIR/keyed.yaml" "" 2
CK="$WORK/state/checkpoints/$JOB"

# The checkpoints are incremental: a store's files are in the shared
# directory, the checkpoint directories hold the stores' small private
# files, and a later checkpoint references SSTs an earlier one stored.
ls "$CK"/shared/*.sst >/dev/null 2>&1 || fail "no shared SST files in $CK/shared"
ls -d "$CK"/chk-*/kv-* >/dev/null 2>&1 || fail "no store directories in the checkpoints"
if ls "$CK"/chk-*/kv-*/*.sst >/dev/null 2>&1; then fail "SST files inside a checkpoint directory"; fi

step "1: kill -9 a worker after $(job_field checkpoints) checkpoints"
before=$(job_field checkpoints)
pick_victim
kill_victim
echo "   killed $VICTIM"
start_worker "$VICTIM"
wait_for 60 running_attempt_at_least 2 || fail "the job did not restart: $(sluice status "$JOB")"
grep -q "job $JOB restarts from checkpoint" "$WORK/master.err" ||
    fail "the restart did not restore a checkpoint: $(grep -F "$JOB" "$WORK/master.err" | tail -3)"
wait_for 60 checkpoints_at_least $((before + 2)) ||
    fail "no two checkpoints after the restart: $(sluice status "$JOB")"

step "2: damage the SSTs of the newest checkpoint, kill -9 a worker"
# Freeze the master when no checkpoint is in flight: none can complete
# while the files are damaged (only the master writes _metadata).
pick_victim
frozen=false
for try in $(seq 1 500); do
    [ $((try % 20)) -ne 1 ] || ! job_ended || fail "the job ended before the fault: $(sluice status "$JOB")"
    freeze "$MASTER_PID"
    mapfile -t ids < <(completed_ids)
    if [ "${#ids[@]}" -ge 2 ] && [ "${#ids[@]}" -le "$RETAIN" ] && [ -z "$(pending_dirs)" ]; then
        frozen=true
        break
    fi
    thaw "$MASTER_PID"
    sleep 0.0$((RANDOM % 5 + 1))
done
$frozen || fail "never found the master between two checkpoints"
newest=${ids[-1]}
keep=${ids[-2]}
# The SSTs the newest checkpoint added: copied after the previous one completed.
mapfile -t added < <(find "$CK/shared" -name '*.sst' -newer "$CK/chk-$keep/_metadata" | sort)
[ "${#added[@]}" -ge 1 ] || { thaw "$MASTER_PID"; fail "checkpoint $newest added no SST file"; }
f=${added[0]}
flip_byte "$f"
for g in "${added[@]:1}"; do rm -f "$g"; done
kill_victim
while read -r p; do [ -z "$p" ] || rm -rf "$p"; done < <(pending_dirs)
echo "   checkpoint $newest: flipped a byte of ${f##*/}, deleted $((${#added[@]} - 1)) more; killed $VICTIM"
thaw "$MASTER_PID"
start_worker "$VICTIM"
wait_for 60 running_attempt_at_least 3 || fail "the job did not restart after the fault: $(sluice status "$JOB")"
line=$(grep -F "sluice-master: job $JOB: checkpoint $newest is unusable (" "$WORK/master.err" || true)
[ -n "$line" ] || fail "the master does not say checkpoint $newest is unusable: $(tail -5 "$WORK/master.err")"
grep -qE "state file .*(is corrupt|is missing)" <<<"$line" || fail "unexpected reason: $line"
grep -qF "; falling back to the previous one" <<<"$line" || fail "no fallback: $line"
grep -qxF "sluice-master: job $JOB restarts from checkpoint $keep" "$WORK/master.err" ||
    fail "the master does not restart from checkpoint $keep: $(grep -F "$JOB" "$WORK/master.err" | tail -3)"

step "wait for the end"
wait_for 180 job_ended || fail "job did not end: $(sluice status "$JOB")"
job_state_is FINISHED || fail "job did not finish: $(sluice status "$JOB")"
keyed_exact

# Garbage: once the damaged checkpoint retired, its files went with it.
if [ -d "$CK/shared" ] && [ -e "$f" ] && [ ! -d "$CK/chk-$newest" ]; then
    fail "the damaged ${f##*/} outlived its checkpoint"
fi
no_sanitizer_reports
echo "PASS rocksdb state through kill -9 and a damaged checkpoint"
