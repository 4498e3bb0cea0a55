#!/usr/bin/env bash
# The rolling exactly-once file sink (`publish: checkpoint`,
# docs/fault-tolerance.md) on a master and three workers: a paced
# generator (parallelism 2, checkpoints every 300 ms) into a sink that
# publishes each subtask's part when the checkpoint committing it
# completes. After a few parts are out, a worker running the job is
# killed with SIGKILL (and started again); the job restarts from its
# latest checkpoint and finishes.
#
# Checked all along, while the job runs: every published file is whole
# (header, complete rows) and the files of each subtask hold a gapless
# prefix of its generator subtask's sequence, and a file once published
# stays as it is (rolling/check.py): nothing of an epoch whose checkpoint
# did not complete is ever visible, before or after the kill. At the end: the parts, concatenated without headers,
# hold every record exactly once (equal to the reference after sorting),
# and no staging directory is left.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/rolling
COUNT=${ROLLING_COUNT:-16000} # 10 s at RATE: the kill comes well before the end
RATE=${ROLLING_RATE:-1600}
HB=1000 # the master's --heartbeat-timeout, ms
OUT=$WORK/out

status() { sluice status --json "$1"; }
field() { status "$1" | jget "$2"; }
ended() { field "$1" state | grep -qxE 'FINISHED|FAILED|CANCELED'; }
alive_workers() { [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq "$1" ]; }
CHECKS=0
# check [COUNT]: what is published now is whole and gapless (the whole output
# with COUNT), and every file published before is still there, unchanged
check() {
    local got
    got=$(python3 "$DIR/check.py" "$OUT" 2 "$WORK/seen" "$@" 2>&1) || fail "published output: $got"
    CHECKS=$((CHECKS + 1))
    echo "$got"
}
published_at_least() { [ "$(find "$OUT" -maxdepth 1 -name 'part-*' | wc -l)" -ge "$1" ]; }

step "start a master (heartbeat timeout $HB ms) and three workers"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLUICE_MASTER=tcp://127.0.0.1:$PORT
start_master "$SLUICE_MASTER"
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
for id in w1 w2 w3; do start_worker "$id"; done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"

step "submit: $COUNT records at $RATE/s, a part per subtask and checkpoint"
sluice submit "$DIR/job.yaml" --detach -p count="$COUNT" -p rate="$RATE" -p out="$OUT" \
    >"$WORK/job" || { cat "$WORK/stderr" >&2; fail "submit"; }
JOB=$(cat "$WORK/job")
# (few CLI calls before the kill: on a loaded machine each takes a while,
# and the kill must come well before the end of the input)
wait_for 60 published_at_least 1 || fail "no part published: $(sluice status "$JOB")"
mapfile -t ws < <(job_workers "$JOB")
[ ${#ws[@]} -gt 0 ] || fail "no worker runs $JOB"
victim=${ws[$((RANDOM % ${#ws[@]}))]}
wait_for 60 published_at_least 4 || fail "no four parts published: $(ls -a "$OUT")"

step "kill -9 $victim (runs the job on: ${ws[*]}), start it again"
kill -9 "$(worker_pid "$victim")"
wait "$(worker_pid "$victim")" 2>/dev/null || true
echo "   published at the kill (files rows): $(check)"
start_worker "$victim"

step "check the published output until the job ends"
# (both subtasks wrote their end marker: they published everything; no CLI
# call in the loop, so that it checks often even on a loaded machine)
deadline=$((SECONDS + 120))
until [ -e "$OUT/.sluice-end-0" ] && [ -e "$OUT/.sluice-end-1" ]; do
    [ $SECONDS -lt $deadline ] || fail "the job did not end: $(sluice status "$JOB")"
    check >/dev/null
    sleep 0.1
done
wait_for 60 ended "$JOB" || fail "the job did not end: $(sluice status "$JOB")"
status "$JOB" >"$WORK/final.json"
[ "$(jget state <"$WORK/final.json")" = FINISHED ] || fail "job ended: $(cat "$WORK/final.json")"
attempt=$(jget attempt <"$WORK/final.json")
restored=$(jget restored_from <"$WORK/final.json")
echo "   FINISHED at attempt $attempt, restored from checkpoint $restored; $CHECKS checks while it ran"
[ "$attempt" -ge 2 ] || fail "the kill did not restart the job (attempt $attempt)"
[ "${restored:-0}" -ge 1 ] || fail "the restart did not restore a checkpoint"

step "the whole output: every record once"
echo "   $(check "$COUNT") (files rows)"
for f in "$OUT"/part-*.csv; do tail -n +2 "$f"; done | sort >"$WORK/got.csv"
awk -v n="$COUNT" 'BEGIN { for (i = 0; i < n; i++) printf "%d,%d,%d\n", i, i % 2, 3 * i + 1 }' |
    sort >"$WORK/want.csv"
cmp -s "$WORK/want.csv" "$WORK/got.csv" ||
    fail "output differs: $(comm -23 "$WORK/want.csv" "$WORK/got.csv" | wc -l) lost," \
        "$(sort "$WORK/got.csv" | uniq -d | wc -l) duplicated," \
        "$(comm -13 "$WORK/want.csv" "$WORK/got.csv" | wc -l) extra"
if ls -d "$OUT"/.sluice-staging-* >/dev/null 2>&1; then
    fail "staging directories left: $(ls -a "$OUT")"
fi
if grep -q "Sanitizer" "$WORK"/*.err; then
    grep -h -A20 "Sanitizer" "$WORK"/*.err | head -n 40 >&2
    fail "sanitizer report from a daemon"
fi
echo "PASS"
