#!/usr/bin/env bash
# Event time end to end: tumbling, sliding and session windows per user over
# a generated, out-of-order (within the watermark bound) click stream equal
# an independent Python reference (eventtime/reference.py), byte for byte
# after sorting, at parallelism 1, 2 and 4, with small batches
# (SLUICE_BATCH_BYTES), and on the same records in another arrival order.
source "$(dirname "$0")/lib.sh"

ET=$SRC/tests/scenario/eventtime
JOB=$ET/windows.yaml
OUTS="tumbling sliding sessions"
declare -A HEADER=(
    [tumbling]="user,window_start,window_end,n,total,lo,hi,first_kind,last_kind,kinds"
    [sliding]="user,window_start,window_end,n,total"
    [sessions]="user,window_start,window_end,n,total"
)

step "generating events"
python3 "$ET/gen_events.py" --seed 11 --count 60000 --out "$WORK/events.csv" ||
    fail "gen_events.py"
python3 "$ET/gen_events.py" --seed 11 --count 60000 --shuffle 5 --out "$WORK/shuffled.csv" ||
    fail "gen_events.py --shuffle"
cmp -s <(sort "$WORK/events.csv") <(sort "$WORK/shuffled.csv") ||
    fail "--shuffle changed the records, not only their order"
cmp -s "$WORK/events.csv" "$WORK/shuffled.csv" && fail "--shuffle did not change the order"

step "computing the reference"
mkdir "$WORK/ref"
python3 "$ET/reference.py" "$WORK/events.csv" "$WORK/ref" || fail "reference.py"
# The data must exercise the windows: many sessions, most with several
# records, tumbling windows holding both kinds, sliding rows > tumbling rows.
rows() { wc -l < "$1"; }
test "$(rows "$WORK/ref/sessions.csv")" -ge 1000 || fail "too few sessions in the reference"
test "$(awk -F, '$4 > 1' "$WORK/ref/sessions.csv" | wc -l)" -ge 500 ||
    fail "too few sessions with more than one record"
test "$(awk -F, '$4 == 1' "$WORK/ref/sessions.csv" | wc -l)" -ge 10 ||
    fail "no single-record sessions"
test "$(rows "$WORK/ref/tumbling.csv")" -ge 1000 || fail "too few tumbling windows"
test "$(awk -F, '$10 == 2' "$WORK/ref/tumbling.csv" | wc -l)" -ge 100 ||
    fail "too few tumbling windows with both kinds"
test "$(rows "$WORK/ref/sliding.csv")" -gt "$(rows "$WORK/ref/tumbling.csv")" ||
    fail "sliding windows should outnumber tumbling ones"

# run NAME INPUT P [ENV=VALUE]: runs the job and checks its three outputs
# (header, then the sorted rows) against the reference; on a mismatch prints
# the first differing lines of every output that differs, then fails.
FIRST=""
run() {
    local name=$1 input=$2 p=$3 envset=${4:-}
    local dir=$WORK/$name
    mkdir "$dir"
    step "$name: parallelism $p${envset:+, $envset}"
    local t0=$SECONDS
    if [ -n "$envset" ]; then export "${envset?}"; fi
    local rc=0
    sluice run "$JOB" --quiet --workers 2 --parallelism "$p" --param input="$input" \
        --param out_tumbling="$dir/tumbling.csv" --param out_sliding="$dir/sliding.csv" \
        --param out_sessions="$dir/sessions.csv" || rc=$?
    if [ -n "$envset" ]; then unset "${envset%%=*}"; fi
    [ $rc -eq 0 ] || { cat "$WORK/stderr" >&2; fail "$name: sluice run exited $rc"; }
    if grep -q "ignoring SLUICE_BATCH_BYTES" "$WORK/stderr"; then
        fail "$name: the workers ignored $envset"
    fi
    grep -q "FINISHED" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$name: not FINISHED"; }
    compgen -G "$dir/.*tmp*" >/dev/null && fail "$name: temporary output files left behind"
    local bad=0 o
    for o in $OUTS; do
        [ -f "$dir/$o.csv" ] || { echo "$name: no output $o.csv" >&2; bad=1; continue; }
        local h
        h=$(head -n 1 "$dir/$o.csv")
        if [ "$h" != "${HEADER[$o]}" ]; then
            echo "$name: $o header is '$h', expected '${HEADER[$o]}'" >&2
            bad=1
        fi
        tail -n +2 "$dir/$o.csv" | sort > "$dir/$o.sorted"
        if ! cmp -s "$WORK/ref/$o.csv" "$dir/$o.sorted"; then
            echo "$name: $o differs from the reference" \
                "($(rows "$WORK/ref/$o.csv") rows expected, $(rows "$dir/$o.sorted") written;" \
                "'<' reference, '>' engine):" >&2
            diff "$WORK/ref/$o.csv" "$dir/$o.sorted" | head -n 20 >&2 || true
            bad=1
        fi
        if [ -n "$FIRST" ] && ! cmp -s "$WORK/$FIRST/$o.sorted" "$dir/$o.sorted"; then
            echo "$name: $o differs from run $FIRST" >&2
            bad=1
        fi
    done
    [ $bad -eq 0 ] || fail "$name: outputs differ"
    [ -n "$FIRST" ] || FIRST=$name
    echo "   ok in $((SECONDS - t0)) s"
}

run p1 "$WORK/events.csv" 1
run p2 "$WORK/events.csv" 2
run p4 "$WORK/events.csv" 4
run p2-small-batches "$WORK/events.csv" 2 SLUICE_BATCH_BYTES=4096
run p2-shuffled "$WORK/shuffled.csv" 2
run p4-shuffled-small-batches "$WORK/shuffled.csv" 4 SLUICE_BATCH_BYTES=4096
echo "PASS event time"
