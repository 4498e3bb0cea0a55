#!/usr/bin/env bash
# Fast local recovery of RocksDB state (docs/fault-tolerance.md, "Local
# recovery"): a master and worker processes run localrec/keyed.yaml (the
# keyed aggregation and window of chaos/keyed.yaml, state in RocksDB,
# checkpoints every second). w1 has a failpoint that fails one of its tasks
# (its process lives on) twice, after checkpoints completed.
#
# 1. The first failure: the job restarts on the same two workers (the
#    master places each subtask back where it ran), and every store is
#    built from the worker's local copy of the checkpoint restored ("state
#    of chk-N restored from local copy"), fetching nothing.
# 2. The second failure: while the job waits to restart, w1's local copies
#    of the checkpoint to restore are damaged (a byte flipped in an SST of
#    one store, an SST of the other deleted). w1 must refuse them, say why
#    and fetch from checkpoint storage; w2 still restores locally.
# 3. A worker is killed with SIGKILL and not started again: its subtask
#    moves to a spare worker, which has no local copy and fetches its state
#    from storage; the other stays on w1 and restores locally.
# After each restart, `sluice status --json` reports every task's restored
# bytes: local (> 0) and none fetched where the copies were used, fetched
# (> 0) where they were not.
# The outputs must equal the failure-free results exactly; a worker keeps
# the local copies of at most the newest checkpoints, and drops the job's
# once the job has ended. The workers delete copies slowly (a test-build
# knob: every deletion first waits DISCARD_DELAY ms, longer than the
# master's heartbeat timeout): the deletion runs off the worker's loop, so
# no worker is ever lost for it (a lost worker would restart the job once
# more than the steps expect).
source "$(dirname "$0")/lib.sh"
eval "lib_$(declare -f step)"
step() { lib_step "$* (at ${SECONDS}s)"; }
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/localrec
COUNT=${LOCALREC_COUNT:-120000} # 60 s at the rate
RATE=${LOCALREC_RATE:-2000}
# Each source subtask holds after PAUSE_AFTER of its records (50 s in at
# the rate, well after step 3 on an idle machine) until step 3 is done and
# creates $WORK/release: on a slow machine, where the steps take longer,
# the job must still run when step 3 kills a worker.
PAUSE_AFTER=${LOCALREC_PAUSE_AFTER:-50000}
HB=1000 # the master's --heartbeat-timeout, ms
export SLUICE_WORKER_DISCARD_DELAY_MS=1500
# The failpoint's hits: every task of w1 counts one per completion it sees.
# w1 registers first, so it gets slot 0: five tasks (gen>keyed, totals,
# per_second and the two sinks). The 11th hit comes after at least three
# completions; the 31st after at least three more in the next attempt, once
# step 1 is done with it.
FAILPOINT=task-fail-after-complete:11,31

FAIL_LOG_RE="restarts from|failed|lost|failpoint|local copy|from checkpoint storage"
FAIL_LOGS="master.err w?.err"
# workers_of_job: the workers running the job's tasks, on one line
workers_of_job() { job_workers "$JOB" | paste -sd' '; }
# Every worker has its own cache directory, $WORK/cache-ID.
# lines W PATTERN: how many lines of W's log match (fixed string)
lines() { grep -cF "$2" "$WORK/$1.err" || true; }
local_lines() { # ID CHK: stores of ID restored from their local copy of chk-CHK
    lines "$1" "state of chk-$2 restored from local copy"
}
fetched_lines() { # ID CHK: stores of ID that fetched chk-CHK from storage
    lines "$1" "state of chk-$2 fetched from checkpoint storage"
}
restored_from() { # ID CHK: local + fetched
    echo $(($(local_lines "$1" "$2") + $(fetched_lines "$1" "$2")))
}
# restored_bytes ID local|remote: the bytes the job's tasks on ID restored
# so, in the status saved in $WORK/rs.json (the tasks' objects come first,
# each with its worker; the job's operators, each with a name, after them).
restored_bytes() {
    grep -o '"worker":"[^"]*"\|"name":"[^"]*"\|"restored_bytes_'"$2"'":[0-9]*' "$WORK/rs.json" |
        awk -F: -v w="\"worker\":\"$1\"" '/^"(worker|name)"/ { on = $0 == w }
            /^"restored/ && on { s += $2 } END { print s + 0 }'
}
# restored_as ID:local|remote...: each ID's tasks report bytes restored that
# way (> 0) and none the other way (one status call per look: a loaded
# machine answers slowly, and step 2 must not start late).
restored_all() {
    local p
    job_status >"$WORK/rs.json"
    for p in "$@"; do [ "$(restored_bytes "${p%:*}" "${p#*:}")" -gt 0 ] || return 1; done
}
restored_as() {
    local p other
    wait_for 30 restored_all "$@" || fail "restored bytes, not $*: $(cat "$WORK/rs.json")"
    for p in "$@"; do
        other=remote
        [ "${p#*:}" = local ] || other=local
        [ "$(restored_bytes "${p%:*}" $other)" -eq 0 ] ||
            fail "${p%:*} reports $other restored bytes: $(cat "$WORK/rs.json")"
        echo "   ${p%:*}: $(restored_bytes "${p%:*}" "${p#*:}") bytes restored (${p#*:})"
    done
}
n_local_chks() { # ID: local checkpoint copies ID keeps of the job
    find "$WORK/cache-$1/local/$JOB" -mindepth 1 -maxdepth 1 -name 'chk-*' 2>/dev/null | wc -l
}

step "start a master (heartbeat timeout $HB ms) and workers w1 (failpoint $FAILPOINT), w2"
start_local_master
start_worker w1 "$FAILPOINT" --cache-dir "$WORK/cache-w1"
wait_for 20 alive_workers 1 || fail "w1 did not register: $(sluice workers)"
start_worker w2 "" --cache-dir "$WORK/cache-w2"
wait_for 20 alive_workers 2 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

step "submit: $COUNT records at $RATE/s (held after $PAUSE_AFTER per subtask until step 3), state in rocksdb, checkpoints every second"
submit_keyed "$DIR/keyed.yaml" "" 0 -p pause_after="$PAUSE_AFTER" -p pause_for=10m \
    -p pause_until="$WORK/release"
CK="$WORK/state/checkpoints/$JOB"
[ "$(workers_of_job)" = "w1 w2" ] || fail "the job does not run on w1 and w2: $(workers_of_job)"
start_worker w3 "" --cache-dir "$WORK/cache-w3" # the spare, for step 3
wait_for 20 alive_workers 3 || fail "w3 did not register: $(sluice workers)"

step "1: a task of w1 fails after checkpoints completed; the job restarts on the same workers"
wait_for 60 running_attempt_at_least 2 || fail "the job did not restart: $(sluice status "$JOB")"
grep -q "failpoint task-fail-after-complete reached (hit 11)" "$WORK/w1.err" ||
    fail "w1's failpoint did not fail the job"
n1=$(sed -n "s/^sluice-master: job $JOB restarts from checkpoint \([0-9]*\)$/\1/p" "$WORK/master.err" | head -n 1)
[ -n "$n1" ] && [ "$n1" -ge 2 ] || fail "the restart did not restore a checkpoint >= 2 (${n1:-none})"
[ "$(workers_of_job)" = "w1 w2" ] || fail "attempt 2 does not run on w1 and w2: $(workers_of_job)"
# every store (the aggregate's and the window's, on both workers) restores
for w in w1 w2; do
    wait_for 30 eval '[ "$(restored_from '$w' '$n1')" -ge 2 ]' ||
        fail "$w did not restore its two stores of chk-$n1"
    [ "$(local_lines $w "$n1")" -eq 2 ] ||
        fail "$w fetched chk-$n1 instead of restoring its local copy: $(grep -F "chk-$n1" "$WORK/$w.err")"
done
grep -F "state of chk-$n1 restored from local copy" "$WORK/w1.err" | head -n 1 | sed 's/^/   /'
grep -qE "task [0-9]+\.[0-9]+ \((totals|per_second)\): state of chk-$n1 restored from local copy \([0-9]+ files, [0-9]+ bytes not fetched\)" \
    "$WORK/w2.err" || fail "unexpected local restore line: $(grep -F "chk-$n1" "$WORK/w2.err")"
restored_as w1:local w2:local

step "2: the second failure; w1's local copies are damaged before the restart"
# As soon as the failpoint fires, the master is frozen (SIGSTOP) so that it
# cannot restart the job while the copies are damaged; the newest completed
# checkpoint, which the restart restores, is read from its directory.
wait_for 60 grep -q "failpoint task-fail-after-complete reached (hit 31)" "$WORK/w1.err" ||
    fail "the failpoint did not fail the job again: $(sluice status "$JOB")"
freeze "$MASTER_PID"
[ "$(grep -c "^sluice-master: job $JOB restarts from checkpoint" "$WORK/master.err")" -eq 1 ] ||
    { thaw "$MASTER_PID"; fail "the job restarted before the local copies could be damaged"; }
n2=$(for d in "$CK"/chk-*; do [ -e "$d/_metadata" ] && echo "${d##*/chk-}"; done | sort -n | tail -n 1)
[ -n "$n2" ] && [ "$n2" -gt "$n1" ] || { thaw "$MASTER_PID"; fail "no checkpoint completed in attempt 2"; }
mapfile -t stores < <(find "$WORK/cache-w1/local/$JOB/chk-$n2" -mindepth 1 -maxdepth 1 -name 'kv-*' | sort)
[ "${#stores[@]}" -eq 2 ] || { thaw "$MASTER_PID"; fail "w1 has ${#stores[@]} local store copies of chk-$n2, not 2"; }
sst=$(find "${stores[0]}" -name '*.sst' | sort | head -n 1)
gone=$(find "${stores[1]}" -name '*.sst' | sort | head -n 1)
[ -n "$sst" ] && [ -n "$gone" ] || { thaw "$MASTER_PID"; fail "no SST in the local copies of chk-$n2"; }
# bit rot in a copy of the file (a new inode: the store still running
# keeps the hard link it has), and a lost file
cp "$sst" "$sst.x"
flip_byte "$sst.x"
mv "$sst.x" "$sst"
rm -f "$gone"
thaw "$MASTER_PID"
echo "   chk-$n2 on w1: flipped a byte of ${stores[0]##*/}/${sst##*/}, deleted ${stores[1]##*/}/${gone##*/}"
wait_for 60 running_attempt_at_least 3 || fail "the job did not restart: $(sluice status "$JOB")"
grep -qxF "sluice-master: job $JOB restarts from checkpoint $n2" "$WORK/master.err" ||
    fail "the master does not restart from checkpoint $n2"
for w in w1 w2; do
    wait_for 30 eval '[ "$(restored_from '$w' '$n2')" -ge 2 ]' ||
        fail "$w did not restore its two stores of chk-$n2"
done
[ "$(fetched_lines w1 "$n2")" -eq 2 ] || fail "w1 did not fetch both damaged stores"
grep -F "state of chk-$n2 fetched from checkpoint storage" "$WORK/w1.err" | sed 's/^/   /'
grep -qE "state of chk-$n2 fetched from checkpoint storage: .*local copy .*${sst##*/}.* is corrupt" \
    "$WORK/w1.err" || fail "w1 does not say ${sst##*/} is corrupt"
grep -qE "state of chk-$n2 fetched from checkpoint storage: .*local copy .*${gone##*/}.* is missing" \
    "$WORK/w1.err" || fail "w1 does not say ${gone##*/} is missing"
[ "$(local_lines w2 "$n2")" -eq 2 ] || fail "w2 did not restore chk-$n2 locally"
wait_for 30 restored_all w1:remote w2:local || fail "restored bytes: $(cat "$WORK/rs.json")"
echo "   w1: $(restored_bytes w1 remote) bytes fetched; w2: $(restored_bytes w2 local) local"

step "3: kill -9 w2; its subtask moves to w3, which fetches from storage"
before=$(job_field checkpoints)
wait_for 60 checkpoints_at_least $((before + 1)) ||
    fail "no checkpoints after the restart: $(sluice status "$JOB")"
! job_ended || fail "the job ended before the kill: $(sluice status "$JOB")"
# local copies are bounded: the newest completed checkpoint(s) and the one in flight
for w in w1 w2; do
    k=$(n_local_chks $w)
    [ "$k" -ge 1 ] && [ "$k" -le 3 ] || fail "$w keeps $k local checkpoint copies: $(ls "$WORK/cache-$w/local/$JOB")"
done
kill -9 "$PID_w2"
wait "$PID_w2" 2>/dev/null || true
wait_for 60 running_attempt_at_least 4 || fail "the job did not restart after the kill: $(sluice status "$JOB")"
n3=$(job_field restored_from)
[ "$n3" -gt "$n2" ] || fail "attempt 4 restored $n3, not a checkpoint after $n2"
[ "$(workers_of_job)" = "w1 w3" ] || fail "attempt 4 does not run on w1 and w3: $(workers_of_job)"
wait_for 30 eval '[ "$(restored_from w3 '$n3')" -ge 2 ] && [ "$(restored_from w1 '$n3')" -ge 2 ]' ||
    fail "the stores of chk-$n3 were not all restored"
[ "$(lines w3 "state of chk-$n3 fetched from checkpoint storage: no local copy")" -eq 2 ] ||
    fail "w3 did not fetch chk-$n3 from storage: $(grep -F "chk-$n3" "$WORK/w3.err")"
[ "$(local_lines w1 "$n3")" -eq 2 ] || fail "w1 did not restore chk-$n3 locally"
restored_as w3:remote w1:local
sluice status "$JOB" >"$WORK/st.txt"
grep -qE "^  task [0-9]+\.[0-9]+ restored its state: [0-9.]+[KMG]?B from the local copy, 0B fetched" \
    "$WORK/st.txt" || fail "the status does not show the local restore: $(cat "$WORK/st.txt")"
grep -qE "^  task [0-9]+\.[0-9]+ restored its state: 0B from the local copy, [0-9.]+[KMG]?B fetched" \
    "$WORK/st.txt" || fail "the status does not show the fetch: $(cat "$WORK/st.txt")"
touch "$WORK/release"

step "wait for the end"
wait_for 300 job_ended || fail "job did not end: $(sluice status "$JOB")"
job_state_is FINISHED || fail "job did not finish: $(sluice status "$JOB")"
keyed_exact
for w in w1 w3; do
    wait_for 30 test ! -e "$WORK/cache-$w/local/$JOB" ||
        fail "$w kept the local copies of the ended job: $(ls "$WORK/cache-$w/local/$JOB")"
done
# the deletions ran (slowly) off the loop, and every one was done
grep -q "deleting local copies" "$WORK/w1.err" || fail "w1 deleted no local copy"
trash_empty() { [ -z "$(ls -A "$WORK/cache-$1/local/.trash" 2>/dev/null)" ]; }
for w in w1 w3; do
    wait_for 30 trash_empty $w || fail "$w did not delete: $(ls "$WORK/cache-$w/local/.trash")"
done
[ "$(job_field attempt)" -eq 4 ] || fail "the job ran $(job_field attempt) attempts, not 4 (a lost worker?)"
no_sanitizer_reports
echo "PASS local recovery: local copies used, damaged ones refused, a moved task fetches"
