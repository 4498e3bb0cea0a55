#!/usr/bin/env bash
# The master's control loop never waits for checkpoint files
# (docs/fault-tolerance.md): a checkpoint's _metadata (temporary file,
# fsync, rename, fsync of the directory) is written, a savepoint copied,
# given-up checkpoints deleted, and the savepoint a job is submitted from
# checked, off the loop, while the master keeps answering clients and
# reading heartbeats.
#
# The master runs with SLUICE_MASTER_METADATA_DELAY_MS and
# SLUICE_MASTER_SAVEPOINT_DELAY_MS (test builds): every _metadata write and
# every savepoint check first waits DELAY ms (a slow disk), and logs that it
# does. The job is chaos/keyed.yaml (results known in closed form).
#
# 1. While a checkpoint's _metadata waits: status and workers answer
#    promptly; the checkpoint is not complete yet (status still names the
#    previous one) and its _metadata does not exist; every worker stays alive
#    with a fresh heartbeat; the file thread runs niced (+5). Then the
#    checkpoint completes, with its _metadata on disk.
# 2. `sluice stop --savepoint` (its checkpoint's _metadata waits too, the
#    copy follows off the loop) stops the job with a savepoint.
# 3. A job submitted from that savepoint: while the master checks the
#    savepoint, the submit is pending and status answers promptly; then the
#    job starts, runs (its checkpoints wait as well) and its outputs are the
#    closed-form results of the whole input.
# 4. A job canceled while its _metadata waits: the cancel is answered
#    promptly, the checkpoint is given up, its directory removed, and the
#    job stays CANCELED.
# 5. SIGTERM while a _metadata write waits and a savepoint is being checked:
#    the master stops promptly, the pending submit is answered with an
#    error, and no sanitizer report (no leak, no use after free).
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=300000
RATE=12000 # 25 s of records
# The first job's source pauses (10 min) after PAUSE_AFTER records (17 s
# in), so that on a slow machine it is stopped in that pause at the latest,
# never after its end; the job resumed from its savepoint does not pause.
PAUSE_AFTER=200000
DELAY=6000 # ms every _metadata write and savepoint check waits first
PROMPT=$DELAY # ms a request may take meanwhile (a loaded machine: the proof is the order)
HB=3000

keyed_want "$COUNT" "$RATE"

FAIL_LOG_RE="lost|failed|given up|waiting|savepoint|stopping"
# waiting_meta: the id of the newest checkpoint of $JOB whose _metadata waits
waiting_meta() {
    sed -n "s/.*job $JOB: _metadata of checkpoint \([0-9]*\): .*waiting/\1/p" "$WORK/master.err" |
        tail -n 1
}
nwaiting_meta() { grep -c "job $JOB: _metadata of checkpoint" "$WORK/master.err" || true; }
more_waiting() { [ "$(nwaiting_meta)" -gt "$1" ]; }
# timed CMD...: runs CMD, its output in $OUT, its duration in $TOOK (ms)
timed() {
    local t0
    t0=$(now_ms)
    OUT=$("$@") || fail "$* failed: $(cat "$WORK/stderr")"
    TOOK=$(($(now_ms) - t0))
}
# workers_fresh: every worker alive, its last heartbeat younger than HB
workers_fresh() {
    timed sluice workers --json
    echo "   workers in $TOOK ms"
    [ "$(grep -o '"alive":true' <<<"$OUT" | wc -l)" -eq 2 ] || fail "a worker was lost: $OUT"
    local age
    for age in $(grep -o '"heartbeat_age_ms":[0-9]*' <<<"$OUT" | cut -d: -f2); do
        [ "$age" -lt "$HB" ] || fail "a heartbeat is $age ms old while the master waits: $OUT"
    done
}
# nice_of STAT: the nice value in a /proc stat file
nice_of() { sed 's/.*) //' "$1" 2>/dev/null | awk '{ print $17 }'; }
# niced_thread: a thread of the master runs 5 nicer than the master itself
# (the file thread; at most 19), whatever nice the test runs at
niced_thread() {
    local t base want
    base=$(nice_of /proc/"$MASTER_PID"/stat)
    want=$((base + 5 < 19 ? base + 5 : 19))
    for t in /proc/"$MASTER_PID"/task/*/stat; do
        [ "$t" != /proc/"$MASTER_PID"/task/"$MASTER_PID"/stat ] || continue
        [ "$(nice_of "$t")" = "$want" ] && return 0
    done
    return 1
}

step "start a master (_metadata and savepoint checks wait $DELAY ms) and two workers"
SLUICE_MASTER_METADATA_DELAY_MS=$DELAY SLUICE_MASTER_SAVEPOINT_DELAY_MS=$DELAY start_local_master
for id in w1 w2; do start_worker "$id"; done
wait_for 30 alive_workers 2 || fail "workers did not register: $(sluice workers)"

step "submit: $COUNT records at $RATE/s, checkpoints every 200 ms (each takes $DELAY ms)"
submit_keyed "$DIR/keyed.yaml" first- 0 -p source_parallelism=1 -p interval=200ms \
    -p pause_after="$PAUSE_AFTER" -p pause_for=10m
CK=$WORK/state/checkpoints/$JOB

step "1: while a checkpoint's _metadata waits, status and heartbeats are served"
wait_for 60 more_waiting 0 || fail "no _metadata write began: $(sluice status "$JOB")"
N=$(waiting_meta)
t_begin=$(now_ms)
answered=0
for i in 1 2 3; do
    [ "$i" = 1 ] || workers_fresh # answered before the status below, by the same loop
    timed job_status
    st=$(jget state <<<"$OUT")
    ck=$(jget checkpoint_id <<<"$OUT")
    echo "   status #$i: $st, latest checkpoint $ck, in $TOOK ms"
    [ "$st" = RUNNING ] || fail "the job is not running: $OUT"
    [ "$ck" -lt "$N" ] || break # the write is over (a slow machine): no proof from this one
    # answered before checkpoint N completed, which needs its _metadata written
    [ ! -e "$CK/chk-$N/_metadata" ] || [ $(($(now_ms) - t_begin)) -ge $((DELAY / 2)) ] ||
        fail "chk-$N/_metadata exists while its write still waits"
    answered=$((answered + 1))
done
[ "$answered" -ge 1 ] || fail "no status answered while _metadata waited (the loop blocked?)"
niced_thread || fail "the master's file thread does not run niced"
done_n() { [ "$(job_field checkpoint_id)" -ge "$N" ]; }
wait_for 60 done_n || fail "checkpoint $N did not complete: $(sluice status "$JOB")"
grep -q "^checkpoint $N\$" "$CK/chk-$N/_metadata" || fail "chk-$N/_metadata missing after it completed"
[ "$(job_field attempt)" = 1 ] || fail "the job restarted: $(sluice status "$JOB")"

step "2: stop with a savepoint (its _metadata waits as well)"
timed sluice stop "$JOB" --savepoint --dir "$WORK/savepoints"
SP=$OUT
echo "   savepoint $SP in $TOOK ms"
[ -s "$SP/_metadata" ] || fail "no savepoint at '$SP'"
job_state_is STOPPED || fail "not stopped: $(sluice status "$JOB")"

step "3: submit from the savepoint: the check waits, status is served meanwhile"
"$SLUICE" submit "$DIR/keyed.yaml" --detach --timeout 60000 --from-savepoint "$SP" \
    -p source_parallelism=1 -p count="$COUNT" -p rate="$RATE" -p interval=200ms \
    -p out_totals="$WORK/totals.csv" -p out_windows="$WORK/windows.csv" \
    >"$WORK/job2" 2>"$WORK/submit2.err" &
SUBMIT=$!
checking() { grep -q "checking its savepoint" "$WORK/master.err"; }
wait_for 30 checking || fail "the master did not check the savepoint: $(cat "$WORK/submit2.err")"
t_begin=$(now_ms)
answered=0
for i in 1 2 3; do
    timed sluice list
    kill -0 "$SUBMIT" 2>/dev/null || break # the check is over (a slow machine)
    echo "   list #$i in $TOOK ms while the submit waits"
    [ "$TOOK" -lt "$PROMPT" ] || fail "list took $TOOK ms while the master checked a savepoint"
    answered=$((answered + 1))
done
[ "$answered" -ge 1 ] || fail "nothing answered while the master checked the savepoint"
wait "$SUBMIT" || fail "submit from the savepoint: $(cat "$WORK/submit2.err")"
! grep -q Sanitizer "$WORK/submit2.err" || fail "sanitizer report from submit: $(cat "$WORK/submit2.err")"
echo "   the submit took $(($(now_ms) - t_begin)) ms more"
JOB=$(cat "$WORK/job2")
grep -q "job $JOB starts from savepoint $SP" "$WORK/master.err" || fail "no start from the savepoint"
wait_for 120 job_state_is FINISHED || fail "the resumed job did not finish: $(sluice status "$JOB")"
keyed_exact
[ "$(job_field attempt)" = 1 ] || fail "the resumed job restarted: $(sluice status "$JOB")"

step "4: cancel while a checkpoint's _metadata waits"
sluice submit "$DIR/keyed.yaml" --detach -p count=100000000 -p rate=2000 -p interval=200ms \
    -p out_totals="$WORK/t3.csv" -p out_windows="$WORK/w3.csv" >"$WORK/job" ||
    { cat "$WORK/stderr" >&2; fail "submit 3"; }
JOB=$(cat "$WORK/job")
CK=$WORK/state/checkpoints/$JOB
wait_for 60 more_waiting 0 || fail "no _metadata write began: $(sluice status "$JOB")"
N=$(waiting_meta)
timed sluice cancel "$JOB"
echo "   cancel answered in $TOOK ms"
[ "$TOOK" -lt "$PROMPT" ] || fail "cancel took $TOOK ms while the master wrote _metadata"
job_state_is CANCELED || fail "the job is not canceled: $(sluice status "$JOB")"
gone() { [ ! -e "$CK/chk-$N" ]; }
wait_for 30 gone || fail "the given-up checkpoint $N was left: $(ls -la "$CK/chk-$N")"
grep -q "checkpoint $N of job $JOB given up: the job ended" "$WORK/master.err" ||
    fail "checkpoint $N was not given up"
[ "$(job_field checkpoints)" = 0 ] || fail "a checkpoint completed after the cancel: $(sluice status "$JOB")"
job_state_is CANCELED || fail "the canceled job changed state: $(sluice status "$JOB")"

step "5: SIGTERM while a _metadata write waits and a savepoint is checked"
sluice submit "$DIR/keyed.yaml" --detach -p count=100000000 -p rate=2000 -p interval=200ms \
    -p out_totals="$WORK/t4.csv" -p out_windows="$WORK/w4.csv" >"$WORK/job" ||
    { cat "$WORK/stderr" >&2; fail "submit 4"; }
JOB=$(cat "$WORK/job")
wait_for 60 more_waiting 0 || fail "no _metadata write began: $(sluice status "$JOB")"
"$SLUICE" submit "$DIR/keyed.yaml" --detach --timeout 60000 --from-savepoint "$SP" \
    -p source_parallelism=1 -p count="$COUNT" -p rate="$RATE" \
    -p out_totals="$WORK/t5.csv" -p out_windows="$WORK/w5.csv" >/dev/null 2>"$WORK/submit5.err" &
SUBMIT=$!
checking2() { [ "$(grep -c "checking its savepoint" "$WORK/master.err")" -ge 2 ]; }
wait_for 30 checking2 || fail "the master did not check the savepoint again"
term_master
[ "$took" -lt $((2 * DELAY)) ] || fail "the master took $took ms to stop"
[ "$rc" -eq 0 ] || fail "the master exited with $rc"
wait "$SUBMIT" && fail "the pending submit succeeded after the master stopped"
grep -q "the master is stopping" "$WORK/submit5.err" ||
    fail "the pending submit was not told: $(cat "$WORK/submit5.err")"
! grep -q "Sanitizer" "$WORK/master.err" || fail "sanitizer report from the master"
for w in w1 w2; do
    ! grep -q "Sanitizer" "$WORK/$w.err" || fail "sanitizer report from worker $w"
done
echo "PASS"
