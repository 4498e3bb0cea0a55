#!/usr/bin/env bash
# An operator that fails on what the op before it in the same chain hands
# it keeps its message, wherever the chain passes the records on: here a
# keyed window fires at a watermark and the task flushes what it emitted
# to the next op of its chain (a map with a function of the test plugin
# tests/data/plugins/refusing_udf.c that refuses every record). The job's
# error must name that map, its function and the function's own reason,
# not just an error code.
source "$(dirname "$0")/lib.sh"
: "${PLUGIN_DIR:?}"

cat >"$WORK/job.yaml" <<EOF
name: chain-errors
parallelism: 1
plugin: $PLUGIN_DIR/librefusing_udf.so
sources:
  - { name: gen, type: generator, count: 100, timestamp: ts, watermark: { max_out_of_order: 0 } }
operators:
  - { name: keyed, type: map, input: gen, select: { k: seq % 2, ts: ts } }
  - name: per_key
    type: window
    input: keyed
    key: [k]
    window: { type: tumbling, size: 1s }
    aggregates: [{ name: n, fn: count }]
  - { name: check, type: map, input: per_key, function: refuse }
sinks:
  - { name: out, type: discard, input: check }
EOF

step "the window's fired rows, flushed along the chain, fail the map: its message reaches the job"
rc=0
sluice run "$WORK/job.yaml" --quiet >"$WORK/run.out" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc, wanted 1: $(cat "$WORK/stderr")"
# (at parallelism 1 the keyed window chains into the source's task, gen's)
grep -q "task [0-9.]* (gen) failed: map 'check': function 'refuse' failed: refused a count of 50" \
    "$WORK/stderr" || fail "the error does not name the map, its function and the reason: $(cat "$WORK/stderr")"
echo "PASS"
