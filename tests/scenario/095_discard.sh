#!/usr/bin/env bash
# The discard sink counts and drops: it runs at the job's parallelism and
# chains into the task that feeds it (no exchange, no output), and the
# summary counts exactly what reached it.
source "$(dirname "$0")/lib.sh"

cat > "$WORK/d.yaml" <<'YAML'
name: discard
parallelism: 3
sources:
  - { name: gen, type: generator, count: 90000 }
operators:
  - { name: even, type: filter, input: gen, where: seq % 2 = 0 }
sinks:
  - { name: out, type: discard, input: even }
YAML
step "the discard sink chains into its input's task"
sluice plan "$WORK/d.yaml" > "$WORK/plan.txt" || fail "plan failed: $(cat "$WORK/stderr")"
grep -q "^job discard: 1 task," "$WORK/plan.txt" || fail "not one chained task: $(cat "$WORK/plan.txt")"
grep -Eq -- "-> out +discard" "$WORK/plan.txt" || fail "out not chained: $(cat "$WORK/plan.txt")"

step "it counts exactly what reached it, and writes nothing"
(cd "$WORK" && sluice run d.yaml --quiet > "$WORK/stdout") || fail "run failed: $(cat "$WORK/stderr")"
grep -Eq "^out +discard +45000 +45000 " "$WORK/stderr" || fail "wrong count: $(cat "$WORK/stderr")"
[ ! -s "$WORK/stdout" ] || fail "the discard sink wrote output"
[ "$(ls "$WORK")" = "$(printf 'd.yaml\nplan.txt\nstderr\nstdout')" ] || fail "files appeared: $(ls "$WORK")"

# A realtime Nexmark source emits event n when the wall clock reaches its
# event time (1 000 events/s here: 1 500 events span 1.5 s), and the discard
# sink measures now - date_time of every record whose date_time lies 500 ms
# to 1 s after the first one's: exactly 500 records (events 500..999).
cat > "$WORK/lat.yaml" <<'YAML'
name: latency
sources:
  - name: ev
    type: nexmark
    events: 1500
    event_rate: 1000
    realtime: true
    first_event_time: ${start}
sinks:
  - {name: out, type: discard, input: ev, latency: date_time, latency_warmup: 500ms, latency_span: 500ms}
YAML
step "a realtime source keeps to the wall clock; the discard sink measures latency"
start=$(($(date +%s%3N) + 300))
sluice run "$WORK/lat.yaml" --quiet -p start="$start" > "$WORK/stdout" || fail "run failed: $(cat "$WORK/stderr")"
end=$(date +%s%3N)
[ $((end - start)) -ge 1499 ] || fail "1.5 s of realtime events took $((end - start)) ms"
line=$(grep '^latency out\[0\]: ' "$WORK/stderr") || fail "no latency line: $(cat "$WORK/stderr")"
[[ $line =~ p50\ ([0-9]+)\ ms\ p99\ ([0-9]+)\ ms\ max\ ([0-9]+)\ ms\ over\ 500\ records\ \(1000\ outside ]] ||
    fail "not 500 records measured, 1000 left out: $line"
p50=${BASH_REMATCH[1]} p99=${BASH_REMATCH[2]} max=${BASH_REMATCH[3]}
[ "$p50" -le "$p99" ] && [ "$p99" -le "$max" ] || fail "quantiles out of order: $line"
# every record was emitted after its event time and measured after that
[ "$max" -lt $((end - start)) ] || fail "a latency longer than the run: $line"
echo "PASS discard"
