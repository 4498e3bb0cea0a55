#!/usr/bin/env bash
# Savepoints and rescaling (docs/fault-tolerance.md): a keyed aggregation
# and window job runs at parallelism 2 on a master and three workers;
# `sluice stop --savepoint` ends it with a savepoint; the same savepoint is
# then resumed at parallelism 1, 2 and 4 (the keyed operators' state is
# redistributed by key group; the source keeps parallelism 1). Every resumed
# run's outputs equal the closed-form results of the whole input.
# The first run's source pauses (10 min) after PAUSE_AFTER records, so that
# on a slow machine it is stopped in that pause at the latest, never after
# its end; the resumed runs do not pause.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"
DIR=$SRC/tests/scenario/chaos
COUNT=400000
PAUSE_AFTER=300000
RATE=40000

json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

step "start a master and three workers"
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' --heartbeat-timeout 2000 \
    --state-dir "$WORK/state" >"$WORK/master.out" 2>"$WORK/master.err" &
PIDS+=($!)
wait_for 30 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
export SLUICE_MASTER=$(sed -n 's/.*listening on //p' "$WORK/master.out")
for id in w1 w2 w3; do
    "$SLUICE_WORKER_BIN" --id "$id" --slots 4 --data-bind tcp://127.0.0.1 2>"$WORK/$id.err" &
    PIDS+=($!)
done
wait_for 20 alive_workers 3 || fail "workers did not register: $(sluice workers)"
keyed_want "$COUNT" "$RATE"

step "run at parallelism 2, stop it with a savepoint"
submit_keyed "$DIR/keyed.yaml" first- 2 --parallelism 2 -p source_parallelism=1 -p interval=500ms \
    -p pause_after="$PAUSE_AFTER" -p pause_for=10m
sluice stop "$JOB" --savepoint --dir "$WORK/savepoints" > "$WORK/sp" ||
    { cat "$WORK/stderr" >&2; fail "stop --savepoint"; }
SP=$(cat "$WORK/sp")
[ -s "$SP/_metadata" ] || fail "no savepoint at '$SP'"
sluice status --json "$JOB" > "$WORK/stopped.json" || fail "status: $(cat "$WORK/stderr")"
[ "$(json 'j["state"]' < "$WORK/stopped.json")" = STOPPED ] || fail "not stopped: $(cat "$WORK/stopped.json")"
json 'j["error"]' < "$WORK/stopped.json" | grep -q "stopped with a savepoint: $SP" || fail "no stop reason"
# The source stopped at the savepoint's barrier: it emitted no record after
# the position the savepoint holds (the generator's count of emitted records).
sp_position() {
    python3 - "$SP/task-0-0.state" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
nops, p = struct.unpack_from("<I", d, 8)[0], 12
for _ in range(nops):
    n = struct.unpack_from("<I", d, p)[0]; name = d[p + 4:p + 4 + n]; p += 4 + n
    m = struct.unpack_from("<I", d, p)[0]; st = d[p + 4:p + 4 + m]; p += 4 + m
    if name == b"gen":
        print(struct.unpack_from("<q", st, 9)[0])  # version, next seq, emitted
PY
}
tasks_ended() { ! sluice status --json "$JOB" | grep -q '"state":"\(RUNNING\|DEPLOY[A-Z]*\)"'; }
wait_for 30 tasks_ended || fail "tasks still running after the stop: $(sluice status "$JOB")"
POS=$(sp_position)
EMITTED=$(sluice status --json "$JOB" | json '[t["records_out"] for t in j["tasks"] if t["task"] == "0.0"][0]')
[ "$POS" -gt 0 ] && [ "$POS" -le "$PAUSE_AFTER" ] || fail "savepoint position $POS"
[ "$EMITTED" = "$POS" ] ||
    fail "the source emitted $EMITTED records; its savepoint is at $POS (records after the savepoint)"
sluice checkpoints "$JOB" > "$WORK/list.txt"
grep -q "savepoint.*$SP" "$WORK/list.txt" || fail "checkpoints does not list the savepoint: $(cat "$WORK/list.txt")"
[ ! -e "$WORK/first-totals.csv" ] || fail "a stopped job published its output"

for P in 1 2 4; do
    step "resume the savepoint at parallelism $P"
    sluice submit "$DIR/keyed.yaml" --parallelism "$P" --from-savepoint "$SP" --quiet \
        -p source_parallelism=1 -p count="$COUNT" -p rate="$RATE" -p interval=500ms \
        -p out_totals="$WORK/p$P-totals.csv" -p out_windows="$WORK/p$P-windows.csv" ||
        { cat "$WORK/stderr" >&2; fail "resume at P=$P"; }
    grep -q "FINISHED" "$WORK/stderr" || fail "resumed job did not finish: $(cat "$WORK/stderr")"
    keyed_exact "p$P-"
done
grep -q "starts from savepoint .* (at another parallelism or chaining)" "$WORK/master.err" ||
    fail "the master did not rescale: $(cat "$WORK/master.err")"

step "a savepoint whose operators were chained otherwise is restored by operator name"
# The same savepoint as if an older Sluice had run per_second in the task
# where this one runs totals and the other way round (the chain lines and
# the tasks' chain numbers swapped, the checksum made anew): at the same
# parallelism the master must not give each task the file of its chain
# number (an operator would find no state of its own and start empty),
# but restore by operator name, as on a rescale.
cp -r "$SP" "$WORK/old-chains"
python3 - "$WORK/old-chains/_metadata" <<'PY'
import hashlib, sys
path = sys.argv[1]
lines = [l for l in open(path).read().splitlines(True) if not l.startswith("sha256 ")]
chain = {l.split()[2].rstrip(): l.split()[1] for l in lines if l.startswith("chain ")}
a, b = chain["totals"], chain["per_second"]
swap = {a: b, b: a}
out = []
for l in lines:
    f = l.split(" ")
    if f[0] in ("chain", "task") and f[1] in swap:
        f[1] = swap[f[1]]
        l = " ".join(f)
    out.append(l)
body = "".join(out)
assert body != "".join(lines)
open(path, "w").write(body + "sha256 " + hashlib.sha256(body.encode()).hexdigest() + "\n")
PY
n_rescaled=$(grep -c "starts from savepoint .*old-chains (at another parallelism or chaining)" "$WORK/master.err" || true)
sluice submit "$DIR/keyed.yaml" --parallelism 2 --from-savepoint "$WORK/old-chains" --quiet \
    -p source_parallelism=1 -p count="$COUNT" -p rate="$RATE" -p interval=500ms \
    -p out_totals="$WORK/rc-totals.csv" -p out_windows="$WORK/rc-windows.csv" ||
    { cat "$WORK/stderr" >&2; fail "resume from the rechained savepoint"; }
grep -q "FINISHED" "$WORK/stderr" || fail "the job did not finish: $(cat "$WORK/stderr")"
[ "$(grep -c "starts from savepoint .*old-chains (at another parallelism or chaining)" "$WORK/master.err")" -gt "$n_rescaled" ] ||
    fail "the master did not restore the rechained savepoint by name: $(grep old-chains "$WORK/master.err")"
keyed_exact rc-

step "a savepoint without chain lines is restored by operator name"
# The rechained savepoint above as written before _metadata listed the
# chains' operators: nothing says which task ran which operator, so at the
# same subtask counts the master must not trust the chain numbers either.
cp -r "$WORK/old-chains" "$WORK/no-chains"
python3 - "$WORK/no-chains/_metadata" <<'PY'
import hashlib, sys
path = sys.argv[1]
lines = open(path).read().splitlines(True)
body = "".join(l for l in lines if not l.startswith(("chain ", "sha256 ")))
assert len(body) < sum(len(l) for l in lines if not l.startswith("sha256 "))
open(path, "w").write(body + "sha256 " + hashlib.sha256(body.encode()).hexdigest() + "\n")
PY
sluice submit "$DIR/keyed.yaml" --parallelism 2 --from-savepoint "$WORK/no-chains" --quiet \
    -p source_parallelism=1 -p count="$COUNT" -p rate="$RATE" -p interval=500ms \
    -p out_totals="$WORK/nc-totals.csv" -p out_windows="$WORK/nc-windows.csv" ||
    { cat "$WORK/stderr" >&2; fail "resume from the savepoint without chain lines"; }
grep -q "FINISHED" "$WORK/stderr" || fail "the job did not finish: $(cat "$WORK/stderr")"
grep -q "starts from savepoint .*no-chains (at another parallelism or chaining)" "$WORK/master.err" ||
    fail "the master did not restore the savepoint without chain lines by name: $(grep no-chains "$WORK/master.err")"
keyed_exact nc-

step "bad savepoints are refused with the reason"
if sluice submit "$DIR/keyed.yaml" --detach --from-savepoint "$WORK/nowhere" -p count=1 -p rate=1 \
    -p out_totals="$WORK/x" -p out_windows="$WORK/y"; then fail "a missing savepoint was accepted"; fi
grep -q "cannot start from savepoint" "$WORK/stderr" || fail "no reason: $(cat "$WORK/stderr")"
# A savepoint of format 1 (keys hashed into key groups by the old hash),
# with a valid checksum: refused, saying why, instead of restored into the
# wrong key groups.
cp -r "$SP" "$WORK/old-format"
python3 - "$WORK/old-format/_metadata" <<'PY'
import hashlib, sys
path = sys.argv[1]
lines = open(path).read().splitlines(True)
assert lines[0] == "sluice-checkpoint 2\n", lines[0]
body = "sluice-checkpoint 1\n" + "".join(l for l in lines[1:] if not l.startswith("sha256 "))
open(path, "w").write(body + "sha256 " + hashlib.sha256(body.encode()).hexdigest() + "\n")
PY
if sluice submit "$DIR/keyed.yaml" --detach --from-savepoint "$WORK/old-format" -p count=1 -p rate=1 \
    -p out_totals="$WORK/x" -p out_windows="$WORK/y"; then fail "a format 1 savepoint was accepted"; fi
grep -q "checkpoint format 1, this Sluice reads format 2 only.*wrong subtasks" "$WORK/stderr" ||
    fail "no reason for the old format: $(cat "$WORK/stderr")"
echo "PASS savepoint, stop and rescale"
