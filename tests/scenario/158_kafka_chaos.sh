#!/usr/bin/env bash
# Kafka -> Sluice -> Kafka exactly once under chaos (docs/kafka.md). The dev
# broker holds topic `in` (3 partitions) pre-filled by kcat -P with a
# self-checking event stream (kafka/kchaos.py events: per-key sequence
# numbers, closed-form window sums); a master and three workers run
# kafka/kchaos.yaml (bounded Kafka source with `start: committed` -> keyed
# tumbling event-time window -> Kafka sink, parallelism 3, checkpoints
# every 500 ms) with delivery: exactly-once and commit_proof: journal.
# Chaos: kill -9 of workers that run the job's tasks (picked from `sluice
# status --json`), and the failpoints kafka-sink-before-commit and
# kafka-sink-after-commit on different workers at different counts. After
# every kill the test commits offset 0 of every partition to the source's
# group, so a restore that took its offsets from the group (or from
# `start: committed`) would read the input again. Checks: kcat reads the
# output and kafka/verify.py (journal filter) finds nothing lost, nothing
# duplicated, equal to the reference; every restored partition resumed at
# offset > 0 equal to the one in the checkpoint it restored (read from the
# checkpoint's state files by kafka/kchaos.py). Then the same chaos (kills
# only) at-least-once: nothing lost, duplicates counted.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}" "${BUILD:?}"
DIR=$SRC/tests/scenario/kafka
DEVK="$BUILD/tools/sluice-dev-kafka"
GROUPTOOL="$BUILD/tools/kafka-group"
[ -x "$DEVK" ] && [ -x "$GROUPTOOL" ] || fail "$DEVK or $GROUPTOOL is not built"
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
COUNT=${KCHAOS_COUNT:-24000} # input events
EVRATE=600                   # events per second of event time: 40 windows per key
RATE=${KCHAOS_RATE:-800}     # records per second per source subtask
HB=1000

step "[${SECONDS} s] dev broker: topic in (3 partitions), output topics eo and alo"
"$DEVK" --brokers 3 --topic in:3 --topic eo:3 --topic alo:3 --no-stdin \
    --port-file "$WORK/boot" </dev/null >"$WORK/dk.out" 2>"$WORK/dk.err" &
PIDS+=("$!")
wait_for 10 test -s "$WORK/boot" || fail "the dev broker did not start: $(cat "$WORK/dk.err")"
BOOT=$(sed -n 's/^bootstrap=//p' "$WORK/boot")
step "[${SECONDS} s] a master and three workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
# different workers, different counts: never in the same checkpoint
# (ARM_<id>: the failpoint the worker's current process has)
start_worker w1 kafka-sink-before-commit:4
start_worker w2 kafka-sink-after-commit:8
start_worker w3
ARM_w1=kafka-sink-before-commit ARM_w2=kafka-sink-after-commit ARM_w3=
step "[${SECONDS} s] kcat -P: $COUNT events into topic in"
python3 "$DIR/kchaos.py" gen "$COUNT" "$EVRATE" 3 "$WORK"
for p in 0 1 2; do
    kcat -P -b "$BOOT" -t in -p "$p" -K '|' <"$WORK/in-$p" 2>"$WORK/kcat.err" ||
        fail "kcat -P: $(cat "$WORK/kcat.err")"
done
ends=$(for p in 0 1 2; do kcat -Q -b "$BOOT" -t "in:$p:-1" 2>/dev/null | awk '{ print $NF }'; done |
    awk '{ n += $1 } END { print n }')
[ "$ends" = "$COUNT" ] || fail "topic in holds $ends records, not $COUNT"

wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

status() { sluice status --json "$JOB"; }
field() { status | jget "$1"; }
# chaos MODE GROUP KILLS: runs until the job $JOB finishes: restarts dead
# workers (exactly-once: arming a failpoint that did not fire yet and no
# live worker has), kills a worker that runs the job's tasks KILLS times,
# 3 s apart, each after two checkpoints of the current attempt (sparing
# workers whose failpoint is still to fire when it can), and commits
# offset 0 to the group after each kill.
chaos() {
    local mode=$1 group=$2 nkill=$3 kills=0 next_kill=$((SECONDS + 2)) deadline=$((SECONDS + 120))
    local st attempt seen_attempt=1 base_ckpt=0 ck id victim
    local -a busy spare
    while :; do
        status >"$WORK/st.json"
        st=$(jget state <"$WORK/st.json")
        attempt=$(jget attempt <"$WORK/st.json")
        ck=$(jget checkpoints <"$WORK/st.json")
        [ "$st" != FINISHED ] || break
        [ "$st" != FAILED ] || fail "the job failed: $(sluice status "$JOB")"
        [ $SECONDS -lt $deadline ] || fail "the job did not finish: $(sluice status "$JOB")"
        if [ "$attempt" != "$seen_attempt" ]; then
            seen_attempt=$attempt
            base_ckpt=$ck
        fi
        # (again at different counts: 2 before, 5 after the commit)
        if [ "$mode" = eo ]; then
            restart_dead_workers -x kafka-sink-before-commit:2 kafka-sink-after-commit:5
        else
            restart_dead_workers
        fi
        if [ "$kills" -lt "$nkill" ] && [ $SECONDS -ge $next_kill ] && [ "$st" = RUNNING ] &&
            [ "$ck" -ge $((base_ckpt + 2)) ]; then
            mapfile -t busy < <(grep -o '"worker":"[^"]*"' "$WORK/st.json" | cut -d'"' -f4 | sort -u)
            # spare a worker whose failpoint is still to fire (it keeps its count)
            mapfile -t spare < <(for id in "${busy[@]}"; do
                [ -n "$(eval echo "\${ARM_$id:-}")" ] || echo "$id"
            done)
            [ "${#spare[@]}" -eq 0 ] || busy=("${spare[@]}")
            if [ "${#busy[@]}" -gt 0 ]; then
                victim=${busy[$((RANDOM % ${#busy[@]}))]}
                echo "chaos: kill -9 $victim (attempt $attempt, $ck checkpoints; runs: ${busy[*]})"
                kill -9 "$(worker_pid "$victim")" 2>/dev/null || true
                "$GROUPTOOL" "$BOOT" "$group" commit in 0=0 1=0 2=0 >/dev/null 2>&1 ||
                    fail "cannot commit bogus offsets to $group"
                kills=$((kills + 1))
                next_kill=$((SECONDS + 3))
            fi
        fi
        sleep 0.2
    done
    KILLED=$kills
}

step "[${SECONDS} s] exactly-once: submit, then chaos"
sluice submit "$DIR/kchaos.yaml" --detach -p bootstrap="$BOOT" -p input=in -p topic=eo \
    -p group=eo-$$ -p rate="$RATE" -p delivery=exactly-once -p journal="$WORK/journal" \
    >"$WORK/job" || fail "submit: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
t0=$SECONDS
chaos eo "eo-$$" 3
status >"$WORK/final-eo.json"
sluice status "$JOB" >"$WORK/final-eo.txt"
failures=$(grep -c "^  failed " "$WORK/final-eo.txt" || true)
echo "exactly-once: finished in $((SECONDS - t0)) s, attempt $(jget attempt <"$WORK/final-eo.json"):" \
    "failpoints before-commit $(fp_fired kafka-sink-before-commit), after-commit" \
    "$(fp_fired kafka-sink-after-commit); kills $KILLED; $failures failures in status"
grep "^  failed " "$WORK/final-eo.txt" | cut -c1-160
[ "$(fp_fired kafka-sink-before-commit)" -ge 1 ] || fail "failpoint kafka-sink-before-commit never fired"
[ "$(fp_fired kafka-sink-after-commit)" -ge 1 ] || fail "failpoint kafka-sink-after-commit never fired"
# 3 kills and 2 failpoints; a failpoint may fire in the attempt a kill ends
[ "$failures" -ge 3 ] ||
    fail "$failures failures in status after $KILLED kills and the failpoints: $(cat "$WORK/final-eo.txt")"
grep -q "re-producing" "$WORK"/w?.err || fail "no restore re-produced an uncommitted epoch"

step "[${SECONDS} s] exactly-once: the output equals the reference (journaled transactions)"
kafka_read eo "$WORK/got-eo"
res=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got-eo" --journal "$WORK/journal") ||
    fail "not exactly once: $res"
echo "$res"
all=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got-eo" --at-least-once) ||
    fail "records lost even before the journal filter: $all"
echo "without the journal: $all"
echo "$all" | grep -qv "duplicated 0 " || fail "no aborted record in the topic: the filter was not exercised"

step "[${SECONDS} s] the source resumed from the checkpoints' offsets (not from 0, not from the group)"
res=$(python3 "$DIR/kchaos.py" resumed "$WORK/state/checkpoints/$JOB" events "$WORK"/w?.err) ||
    fail "the source did not resume at its checkpoints' offsets: $res"
[ "$(echo "$res" | awk '{ print $4 }')" -gt 0 ] || fail "every restored partition resumed at offset 0: $res"
echo "$res (restored partitions; past offset 0; each at its checkpoint's offset)"

step "[${SECONDS} s] at-least-once: the same chaos (kills)"
sed -e '/^ *commit_proof:/d' -e '/^ *journal:/d' "$DIR/kchaos.yaml" >"$WORK/alo.yaml"
sluice submit "$WORK/alo.yaml" --detach -p bootstrap="$BOOT" -p input=in -p topic=alo \
    -p group=alo-$$ -p rate="$RATE" -p delivery=at-least-once >"$WORK/job" ||
    fail "submit: $(cat "$WORK/stderr")"
JOB=$(cat "$WORK/job")
t0=$SECONDS
chaos alo "alo-$$" 2
echo "at-least-once: finished in $((SECONDS - t0)) s, attempt $(field attempt), kills $KILLED"
[ "$(sluice status "$JOB" | grep -c "^  failed ")" -ge "$KILLED" ] ||
    fail "fewer failures than kills: $(sluice status "$JOB")"
kafka_read alo "$WORK/got-alo"
res=$(python3 "$DIR/verify.py" check "$WORK/want" "$WORK/got-alo" --at-least-once) ||
    fail "records lost at-least-once: $res"
echo "at-least-once: $res"
! grep -q "Sanitizer" "$WORK"/w?.err "$WORK/master.err" || fail "sanitizer report in a daemon's log"
echo "PASS Kafka -> Sluice -> Kafka exactly once through failpoints and kill -9; at-least-once loses nothing ($SECONDS s)"
