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
echo "PASS discard"
