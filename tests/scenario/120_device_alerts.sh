#!/usr/bin/env bash
# Process functions with keyed state and timers: the device-alerts job
# (jobs/device-alerts.yaml, plugin jobs/plugins/device_alerts.c) over
# generated heartbeat traces, out of order within the watermark bound,
# gives exactly the alerts computed independently by
# devicealerts/heartbeats.py, at parallelism 1, 2 and 4, with small batches
# and on the same records in another order; after a window it sees each
# result at the window's last instant (window_end - 1 ms). A plugin built
# against UDF ABI version 1 still loads and runs unchanged; process steps
# that cannot work are refused with clear messages.
source "$(dirname "$0")/lib.sh"
: "${PLUGIN_DIR:?}"

HB=$SRC/tests/scenario/devicealerts/heartbeats.py
JOB=$SRC/jobs/device-alerts.yaml
PLUGIN=$PLUGIN_DIR/libsluice_device_alerts.so

step "generating heartbeat traces"
python3 "$HB" trace --seed 3 --out "$WORK/beats.csv" || fail "heartbeats.py trace"
python3 "$HB" trace --seed 3 --shuffle 8 --out "$WORK/shuffled.csv" || fail "heartbeats.py --shuffle"
cmp -s <(sort "$WORK/beats.csv") <(sort "$WORK/shuffled.csv") ||
    fail "--shuffle changed the records, not only their order"
cmp -s "$WORK/beats.csv" "$WORK/shuffled.csv" && fail "--shuffle did not change the order"
python3 "$HB" expect "$WORK/beats.csv" > "$WORK/expected.csv" || fail "heartbeats.py expect"
# The trace must exercise the function: many alerts, devices alerting
# several times, and records out of order.
test "$(wc -l < "$WORK/expected.csv")" -ge 500 || fail "too few expected alerts"
test "$(grep -c '^"pump, north",' "$WORK/expected.csv")" -ge 3 || fail "a device should alert often"
test "$(grep -c '^lonely-' "$WORK/expected.csv")" -eq 2 || fail "single-beat devices alert once"
tail -n +2 "$WORK/beats.csv" | awk -F, '{ t = $NF } t < max { n++ } t > max { max = t }
    END { exit !(n >= 1000) }' || fail "the trace is hardly out of order"

# run NAME INPUT P [ENV=VALUE]: runs the job; its sorted output must equal
# the expected alerts exactly.
run() {
    local name=$1 input=$2 p=$3 envset=${4:-}
    step "$name: parallelism $p${envset:+, $envset}"
    if [ -n "$envset" ]; then export "${envset?}"; fi
    local rc=0
    sluice run "$JOB" --quiet --workers 2 --parallelism "$p" --param plugin="$PLUGIN" \
        --param input="$input" --param output="$WORK/$name.csv" || rc=$?
    if [ -n "$envset" ]; then unset "${envset%%=*}"; fi
    [ $rc -eq 0 ] || { cat "$WORK/stderr" >&2; fail "$name: sluice run exited $rc"; }
    grep -q "FINISHED" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$name: not FINISHED"; }
    [ "$(head -n 1 "$WORK/$name.csv")" = "device,last_seen,alert_at" ] || fail "$name: header"
    tail -n +2 "$WORK/$name.csv" | sort > "$WORK/$name.sorted"
    if ! cmp -s "$WORK/expected.csv" "$WORK/$name.sorted"; then
        echo "$name: $(wc -l < "$WORK/expected.csv") alerts expected," \
            "$(wc -l < "$WORK/$name.sorted") written ('<' expected, '>' engine):" >&2
        diff "$WORK/expected.csv" "$WORK/$name.sorted" | head -n 20 >&2 || true
        fail "$name: alerts differ"
    fi
}
run p1 "$WORK/beats.csv" 1
run p2 "$WORK/beats.csv" 2
run p4 "$WORK/beats.csv" 4
run p2-small-batches "$WORK/beats.csv" 2 SLUICE_BATCH_BYTES=4096
run p2-shuffled "$WORK/shuffled.csv" 2
run p1-shuffled-small-batches "$WORK/shuffled.csv" 1 SLUICE_BATCH_BYTES=4096
# The same alerts with the keyed state in RocksDB (and a state_ttl far
# longer than the run, so nothing expires).
ROCKS_JOB=$WORK/device-alerts-rocksdb.yaml
{ echo "state: {backend: rocksdb, block_cache: 1MB, write_buffer: 256KB}"
  sed 's/function: silence/function: silence, state_ttl: 1h/' "$JOB"; } > "$ROCKS_JOB"
grep -q "state_ttl: 1h" "$ROCKS_JOB" || fail "no process step to give a state_ttl in $JOB"
JOB=$ROCKS_JOB run p2-rocksdb "$WORK/shuffled.csv" 2

step "after a window, the process function sees each result at its window's last instant"
# 20 s counts per device, their window_end copied into ts, into silence:
# the heartbeats it sees are window_end - 1 ms (the results' event time),
# so its alerts equal those of a trace of those instants.
cat > "$WORK/after-window.yaml" <<YAML
name: alerts-after-window
plugin: $PLUGIN
sources:
  - name: beats
    type: file
    format: csv
    path: $WORK/beats.csv
    header: true
    schema: [{name: device, type: string}, {name: ts, type: timestamp}]
    timestamp: ts
    watermark: {max_out_of_order: 5s}
operators:
  - {name: per20s, type: window, input: beats, key: [device], window: {type: tumbling, size: 20s},
     aggregates: [{name: n, fn: count}]}
  - {name: ends, type: map, input: per20s, select: {device: device, ts: window_end}}
  - {name: alerts, type: process, input: ends, key: [device], function: silence}
sinks:
  - {name: out, type: file, format: csv, input: alerts, path: "$WORK/after-window.csv"}
YAML
python3 - "$WORK/beats.csv" > "$WORK/window-ends.csv" <<'PY'
import csv, sys
ends = {(r["device"], int(r["ts"]) // 20000 * 20000 + 20000 - 1) for r in csv.DictReader(open(sys.argv[1]))}
print("device,ts")
for dev, t in sorted(ends):
    print("%s,%d" % (dev if "," not in dev and '"' not in dev else '"' + dev.replace('"', '""') + '"', t))
PY
python3 "$HB" expect "$WORK/window-ends.csv" > "$WORK/want-after-window.csv" ||
    fail "heartbeats.py expect (window ends)"
test "$(wc -l < "$WORK/want-after-window.csv")" -ge 100 || fail "too few alerts expected after the window"
sluice run "$WORK/after-window.yaml" --quiet --workers 2 --parallelism 2 ||
    { cat "$WORK/stderr" >&2; fail "alerts after a window"; }
tail -n +2 "$WORK/after-window.csv" | sort | diff "$WORK/want-after-window.csv" - | head -n 10 >&2
cmp -s "$WORK/want-after-window.csv" <(tail -n +2 "$WORK/after-window.csv" | sort) ||
    fail "alerts after a window differ ('<' expected, '>' engine)"

step "a plugin built against UDF ABI version 1 still runs"
# The version-1 declarations, as the old sluice/udf.h had them (shorter
# function entries: the engine must read the table with their stride).
cat > "$WORK/v1.c" <<'C'
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef struct { int type; bool is_null; uint32_t len;
                 union { int64_t i; double d; bool b; const char *s; } u; } v_t;
typedef struct { const char *name; int type; } f_t;
typedef struct ctx ctx_t;
typedef struct { int (*emit)(ctx_t *, const v_t *); void *(*alloc)(ctx_t *, size_t);
                 void (*error)(ctx_t *, const char *); } host_t;
struct ctx { const host_t *host; void *user; };
typedef struct { const char *name; int kind; const f_t *in; int nin; const f_t *out; int nout;
                 int (*call)(ctx_t *, const v_t *, v_t *); } fn_t;
typedef struct { uint32_t abi_version; const char *name, *version; int nfunctions;
                 const fn_t *functions; } plugin_t;
static int keep(ctx_t *c, const v_t *in, v_t *out) { (void)c; (void)in; (void)out; return 1; }
static int later(ctx_t *c, const v_t *in, v_t *out)
{
    (void)c;
    out[0] = in[0];
    out[1] = in[1];
    if (!in[1].is_null)
        out[1].u.i += 1000;
    return 0;
}
static const f_t s_in[] = {{"device", 4}, {"ts", 5}};
static const fn_t s_fns[] = {{"keep", 2, s_in, 2, NULL, 0, keep},
                             {"later", 1, s_in, 2, s_in, 2, later}};
static const plugin_t s_plugin = {1, "v1", "1", 2, s_fns};
const plugin_t *sluice_plugin(void);
const plugin_t *sluice_plugin(void) { return &s_plugin; }
C
"${CC:-cc}" -shared -fPIC -O1 -o "$WORK/libv1.so" "$WORK/v1.c" || fail "cannot build the v1 plugin"
cat > "$WORK/v1.yaml" <<YAML
name: v1-map
parallelism: 1
plugin: $WORK/libv1.so
sources:
  - name: beats
    type: file
    format: csv
    path: $WORK/beats.csv
    header: true
    schema: [{ name: device, type: string }, { name: ts, type: int64 }]
operators:
  - { name: kept, type: filter, input: beats, function: keep }
  - { name: shifted, type: map, input: kept, function: later }
sinks:
  - { name: out, type: file, format: csv, input: shifted, path: $WORK/v1.out }
YAML
# ts declared int64 here: the v1 function declares a timestamp, so planning fails
sluice validate "$WORK/v1.yaml" && fail "a type mismatch was accepted"
grep -q "function 'keep' needs input field 'ts' of type timestamp" "$WORK/stderr" ||
    fail "v1 plugin: unclear message: $(cat "$WORK/stderr")"
sed -i 's/name: ts, type: int64/name: ts, type: timestamp/' "$WORK/v1.yaml"
sluice run "$WORK/v1.yaml" --quiet || { cat "$WORK/stderr" >&2; fail "v1 plugin run failed"; }
test "$(wc -l < "$WORK/v1.out")" -eq "$(wc -l < "$WORK/beats.csv")" || fail "v1: records lost"
python3 - "$WORK/beats.csv" "$WORK/v1.out" <<'PY' || fail "v1 map output differs"
import csv, datetime, sys
E = datetime.datetime(1970, 1, 1)
def ms(s):
    d = datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return int((d - E).total_seconds()) * 1000 + int(s[20:23])
a = sorted((d, int(t) + 1000) for d, t in list(csv.reader(open(sys.argv[1], encoding="utf-8")))[1:])
b = sorted((d, ms(t)) for d, t in list(csv.reader(open(sys.argv[2], encoding="utf-8")))[1:])
sys.exit(a != b)
PY

step "process steps that cannot work are refused"
sed -e '/timestamp: ts/d' -e '/watermark:/d' "$JOB" > "$WORK/no_time.yaml"
rc=0
sluice validate "$WORK/no_time.yaml" --param plugin="$PLUGIN" || rc=$?
[ $rc -eq 1 ] && grep -q "process 'alerts' is on event time, but its input 'beats' has no event time" \
    "$WORK/stderr" || fail "no event time: $(cat "$WORK/stderr")"
sed 's/type: process, input: beats, key: \[device\]/type: map, input: beats/' "$JOB" > "$WORK/as_map.yaml"
rc=0
sluice validate "$WORK/as_map.yaml" --param plugin="$PLUGIN" || rc=$?
[ $rc -eq 1 ] && grep -q "function 'silence' is a process function; 'alerts' is a map" \
    "$WORK/stderr" || fail "process function as a map: $(cat "$WORK/stderr")"
sed 's/function: silence/function: normalize/' "$JOB" > "$WORK/map_as_process.yaml"
rc=0
sluice validate "$WORK/map_as_process.yaml" \
    --param plugin="$PLUGIN_DIR/libsluice_example_udf.so" || rc=$?
[ $rc -eq 1 ] && grep -q "function 'normalize' is a map function; 'alerts' is a process" \
    "$WORK/stderr" || fail "map function as a process: $(cat "$WORK/stderr")"
sluice plan "$JOB" --param plugin="$PLUGIN" --parallelism 2 > "$WORK/plan.txt" ||
    fail "plan: $(cat "$WORK/stderr")"
grep -q "hash(device) from beats" "$WORK/plan.txt" || fail "the edge into a process step is not hash-partitioned"
echo "PASS device alerts"
