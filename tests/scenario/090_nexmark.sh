#!/usr/bin/env bash
# The Nexmark queries of jobs/nexmark/ over 100 000 generated events equal
# the output of bench/nexmark_ref, a straight C loop over the same events,
# at parallelism 1 and 3 (the source splits the event stream over its
# subtasks without changing it), for the default seed and another one:
# the row-wise q0 (pass-through), q1 (currency conversion), q2 (selection),
# and the event-time windowed q5 (hot items: sliding windows, then the top
# auction per window), q3 (local items: an enrich join of auctions with
# their sellers), q7 (highest bid per tumbling window), q8 (new
# sellers: a window join of persons and auctions) and q11 (user sessions)
# at 1 000 events/s of event time (100 s, so that there are many
# windows). q12 (processing-time windows) is not deterministic: its counts
# must add up to the number of bids. The string queries q14 (price band,
# part of the day, count_char; at 1 event/s so that 100 000 events span 28
# hours), q21 (channel id by regexp_extract) and q22 (split_index) are
# compared with the reference for seed 3.
source "$(dirname "$0")/lib.sh"

: "${BUILD:=$(dirname "$SLUICE")}"
REF=$BUILD/bench/nexmark_ref
[ -x "$REF" ] || fail "reference binary $REF not built"
EVENTS=100000

# check_job QUERY SEED [ARGS...]: runs jobs/nexmark/QUERY.yaml at
# parallelism 1 and 3 with ARGS and compares its sorted rows with
# $WORK/want.csv (header, then the reference's sorted rows).
check_job() {
    local q=$1 seed=$2 P OUT
    shift 2
    for P in 1 3; do
        step "$q, seed $seed, parallelism $P"
        OUT=$WORK/out-$q-$P.csv
        sluice run "$SRC/jobs/nexmark/$q.yaml" --parallelism "$P" --quiet \
            --param events=$EVENTS --param seed="$seed" --param output="$OUT" "$@" ||
            { cat "$WORK/stderr" >&2; fail "run $q P=$P"; }
        { head -n 1 "$OUT" && tail -n +2 "$OUT" | sort; } > "$WORK/got.csv"
        if ! cmp -s "$WORK/want.csv" "$WORK/got.csv"; then
            diff "$WORK/want.csv" "$WORK/got.csv" | head -n 10 >&2
            fail "$q (seed $seed) differs from the reference at parallelism $P"
        fi
        grep -Eq "^events +nexmark +$EVENTS +$EVENTS" "$WORK/stderr" ||
            fail "summary does not show $EVENTS events from the source"
    done
}

for seed in 0 7; do
    for q in q0 q1 q2; do
        step "$q, seed $seed: reference"
        "$REF" "$q" "$EVENTS" "$seed" "$WORK/ref-$q.csv" || fail "nexmark_ref $q"
        head -n 1 "$WORK/ref-$q.csv" > "$WORK/want.csv"
        tail -n +2 "$WORK/ref-$q.csv" | sort >> "$WORK/want.csv"
        rows=$(($(wc -l < "$WORK/want.csv") - 1))
        case $q in
        q0 | q1) [ "$rows" -eq $((EVENTS / 50 * 46)) ] || fail "$q: $rows bids, expected 46 in 50" ;;
        q2) [ "$rows" -gt 10 ] || fail "q2 selects only $rows bids" ;;
        esac
        check_job "$q" "$seed"
    done
done

# The windowed queries: 100 000 events at 1 000 events/s span 100 s of event
# time: 54 sliding windows (every 2 s, the first 4 starting before the first
# event), 10 tumbling ones, thousands of sessions. Seed 1 has a window where
# two auctions tie for the most bids (q5 then takes the smallest id).
RATE=1000
TIES=0
for seed in 0 1; do
    for q in q3 q5 q7 q8 q11; do
        step "$q, seed $seed: reference"
        "$REF" "$q" "$EVENTS" "$seed" "$WORK/ref-$q.csv" "$RATE" 2> "$WORK/ref.err" ||
            { cat "$WORK/ref.err" >&2; fail "nexmark_ref $q"; }
        head -n 1 "$WORK/ref-$q.csv" > "$WORK/want.csv"
        tail -n +2 "$WORK/ref-$q.csv" | sort >> "$WORK/want.csv"
        rows=$(($(wc -l < "$WORK/want.csv") - 1))
        case $q in
        q5)
            [ "$rows" -eq 54 ] || fail "q5: $rows sliding windows, expected 54"
            t=$(sed -n 's/^nexmark_ref: q5: \([0-9]*\) of .*/\1/p' "$WORK/ref.err")
            TIES=$((TIES + ${t:-0}))
            ;;
        q7) [ "$rows" -eq 10 ] || fail "q7: $rows tumbling windows, expected 10" ;;
        q8) [ "$rows" -gt 100 ] || fail "q8: only $rows new sellers" ;;
        q3) [ "$rows" -gt 100 ] || fail "q3: only $rows local items" ;;
        q11)
            [ "$rows" -gt 1000 ] || fail "q11: only $rows sessions"
            [ "$(awk -F, 'NR > 1 && $4 > 1' "$WORK/want.csv" | wc -l)" -gt 500 ] ||
                fail "q11: too few sessions of several bids"
            ;;
        esac
        check_job "$q" "$seed" --param event_rate=$RATE
    done
done
[ "$TIES" -gt 0 ] || fail "no q5 window with a tie: the tie-break is not tested"

# The string queries: one seed, and checks that each branch of the results
# occurs (every part of the day, the four fixed channel ids and ids from
# urls, bids dropped for lack of one).
seed=3
for q in q14 q21 q22; do
    rate=10000
    [ "$q" = q14 ] && rate=1
    step "$q, seed $seed: reference"
    "$REF" "$q" "$EVENTS" "$seed" "$WORK/ref-$q.csv" "$rate" || fail "nexmark_ref $q"
    head -n 1 "$WORK/ref-$q.csv" > "$WORK/want.csv"
    tail -n +2 "$WORK/ref-$q.csv" | sort >> "$WORK/want.csv"
    rows=$(($(wc -l < "$WORK/want.csv") - 1))
    bids=$((EVENTS / 50 * 46))
    case $q in
    q14)
        [ "$rows" -gt $((bids / 5)) ] && [ "$rows" -lt $((bids / 3)) ] ||
            fail "q14: $rows bids in the price band, expected about 28 %"
        for t in dayTime nightTime otherTime; do
            grep -q ",$t," "$WORK/want.csv" || fail "q14: no $t bid"
        done
        awk -F, 'NR > 1 && $7 > 0 { n++ } END { exit !(n > 100) }' "$WORK/want.csv" ||
            fail "q14: too few extras with a 'c'"
        ;;
    q21)
        [ "$rows" -lt "$bids" ] && [ "$rows" -gt $((bids * 9 / 10)) ] ||
            fail "q21: $rows of $bids bids have a channel id, expected about 95 %"
        [ "$(awk -F, 'NR > 1 && $5 ~ /^[0-3]$/ { print $5 }' "$WORK/want.csv" | sort -u | wc -l)" -eq 4 ] ||
            fail "q21: not every fixed channel id occurs"
        awk -F, 'NR > 1 && $4 ~ /^channel-/ && $5 ~ /^[0-9]+$/ { n++ } END { exit !(n > 1000) }' \
            "$WORK/want.csv" || fail "q21: too few channel ids from urls"
        ;;
    q22)
        [ "$rows" -eq "$bids" ] || fail "q22: $rows rows, expected the $bids bids"
        awk -F, 'NR > 1 && ($5 == "" || $6 == "" || $7 == "" || $7 ~ /item/) { bad = 1 }
                 END { exit bad }' "$WORK/want.csv" || fail "q22: a directory is empty or wrong"
        ;;
    esac
    check_job "$q" "$seed" --param event_rate=$rate
done

step "q12: processing-time windows count every bid once"
for P in 1 3; do
    OUT=$WORK/out-q12-$P.csv
    sluice run "$SRC/jobs/nexmark/q12.yaml" --parallelism "$P" --quiet \
        --param events=$EVENTS --param output="$OUT" ||
        { cat "$WORK/stderr" >&2; fail "run q12 P=$P"; }
    [ "$(head -n 1 "$OUT")" = "bidder,window_start,window_end,bid_count" ] ||
        fail "q12: header is '$(head -n 1 "$OUT")'"
    total=$(awk -F, 'NR > 1 { n += $4 } END { print n + 0 }' "$OUT")
    [ "$total" -eq $((EVENTS / 50 * 46)) ] ||
        fail "q12 P=$P: the counts add up to $total, not the $((EVENTS / 50 * 46)) bids"
    # each row is one 10 s window of one bidder, at most one row per pair
    awk -F, 'NR > 1 && (substr($3, 19, 6) != "0.000Z" || substr($2, 19, 6) != "0.000Z" ||
             $4 < 1) { bad = 1 } END { exit bad }' "$OUT" ||
        fail "q12 P=$P: a window is not aligned to 10 s or is empty"
    [ "$(tail -n +2 "$OUT" | cut -d, -f1-2 | sort | uniq -d | wc -l)" -eq 0 ] ||
        fail "q12 P=$P: a bidder has two rows for one window"
done

step "bad fields are reported"
cat > "$WORK/bad.yaml" <<'YAML'
name: bad-nexmark
sources:
  - { name: ev, type: nexmark, events: -1, first_event_time: yesterday }
sinks:
  - { name: out, type: stdout, input: ev }
YAML
if sluice validate "$WORK/bad.yaml"; then fail "a negative event count validated"; fi
grep -q "events" "$WORK/stderr" || fail "no error about events"
grep -q "first_event_time" "$WORK/stderr" || fail "no error about first_event_time"
echo "PASS nexmark"
