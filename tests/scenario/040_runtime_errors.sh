#!/usr/bin/env bash
# Failures at run time end the job with a non-zero exit status and an error
# that names what and where; `on_error: skip` skips and counts bad records.
source "$(dirname "$0")/lib.sh"

CSV=$WORK/sales.csv
cat > "$CSV" <<'CSV'
order_id,region,ordered_at,status,quantity,unit_price_cents
1,north,2025-01-03T10:00:00Z,completed,2,1000
2,north,2025-01-04T10:00:00Z,completed,two,1000
3,south,2025-02-01T10:00:00Z,completed,1,500
4,south,not-a-date,completed,1,500
CSV

step "a malformed record fails the job, naming file and line"
rc=0
sluice run "$SRC/jobs/sales-by-region.yaml" --parallelism 1 --quiet \
    --param input="$CSV" --param output="$WORK/out.csv" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc, wanted 1"
grep -q "FAILED" "$WORK/stderr" || fail "no FAILED in: $(cat "$WORK/stderr")"
grep -q "sales.csv:3" "$WORK/stderr" || fail "error does not name sales.csv:3: $(cat "$WORK/stderr")"
[ ! -e "$WORK/out.csv" ] || fail "a failed job published its output"
ls -a "$WORK" | grep -q "\.out\.csv\.tmp" && fail "temporary output left behind"

step "on_error: skip skips and counts bad records"
sluice run "$SRC/jobs/sales-by-region.yaml" --parallelism 1 --quiet --param on_error=skip \
    --param input="$CSV" --param output="$WORK/out.csv" || { cat "$WORK/stderr"; fail "skip run failed"; }
grep -q "2 bad records skipped" "$WORK/stderr" || fail "skipped records not counted: $(cat "$WORK/stderr")"
grep -q "sales.csv:5" "$WORK/stderr" || fail "skipped record not logged with its line"
grep -qx "NORTH,2025-01,1,2000,2000,2000,0" "$WORK/out.csv" || fail "wrong result: $(cat "$WORK/out.csv")"

step "a missing input file"
rc=0
sluice run "$SRC/jobs/wordcount.yaml" --quiet --param input="$WORK/nope.txt" \
    --param output="$WORK/wc.csv" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc, wanted 1"
grep -q "no file matches '$WORK/nope.txt'" "$WORK/stderr" || fail "unclear error: $(cat "$WORK/stderr")"

step "an unwritable output directory"
rc=0
sluice run "$SRC/jobs/wordcount.yaml" --quiet --param input="$SRC/jobs/data/sluice-gates.txt" \
    --param output="$WORK/no/such/dir/wc.csv" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc, wanted 1"
grep -q "$WORK/no/such/dir" "$WORK/stderr" || fail "error does not name the path: $(cat "$WORK/stderr")"

step "bad usage"
rc=0
sluice run "$SRC/jobs/wordcount.yaml" --parallelism zero || rc=$?
[ "$rc" -eq 2 ] || fail "exit status $rc for bad usage, wanted 2"
rc=0
sluice run "$SRC/jobs/wordcount.yaml" --param noequals || rc=$?
[ "$rc" -eq 2 ] || fail "exit status $rc for bad --param, wanted 2"
echo "PASS runtime errors"
