#!/usr/bin/env bash
# The Nexmark queries built on joins, sessions and day windows equal the
# output of bench/nexmark_ref (a straight C loop over the same events) at
# parallelism 1 and 3, over 50 000 generated events (100 000 for the daily
# statistics; a separate test from 090 so that the two run in parallel):
#   q4 (average winning price per category) and q9 (winning bids): an
#     interval join of auctions with their bids, then aggregates / a session
#     window with the top bid; q20 (bids with their category-10 auction): an
#     interval join; q18 (last bid per bidder and auction) and q19 (top 10
#     bids per auction): session windows with top — all at 1 000 events/s
#     of event time, where every event has its own millisecond;
#   q13 (side-input join): an enrich join with jobs/nexmark/side_input.csv;
#   q15, q16, q17 (daily statistics: filtered and distinct counts) at
#     1 event/s, so that 100 000 events span two days (28 hours).
# The reference's results are checked for plausibility too (every
# category, two days, counts adding up to the bids, ranks up to 10).
source "$(dirname "$0")/lib.sh"

: "${BUILD:=$(dirname "$SLUICE")}"
REF=$BUILD/bench/nexmark_ref
[ -x "$REF" ] || fail "reference binary $REF not built"
EVENTS=50000
BIDS=$((EVENTS / 50 * 46))
SIDE=$SRC/jobs/nexmark/side_input.csv

step "the side input is keys 0..9999 with values side-KEY (the reference's model)"
seq 0 9999 | awk 'BEGIN { print "key,value" } { print $1 ",side-" $1 }' > "$WORK/side.csv"
cmp -s "$WORK/side.csv" "$SIDE" || fail "$SIDE is not the table nexmark_ref q13 assumes"

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

# reference QUERY SEED RATE: the reference's sorted rows in $WORK/want.csv,
# their count in ROWS
reference() {
    step "$1, seed $2: reference"
    "$REF" "$1" "$EVENTS" "$2" "$WORK/ref-$1.csv" "$3" || fail "nexmark_ref $1"
    head -n 1 "$WORK/ref-$1.csv" > "$WORK/want.csv"
    tail -n +2 "$WORK/ref-$1.csv" | sort >> "$WORK/want.csv"
    ROWS=$(($(wc -l < "$WORK/want.csv") - 1))
}

# sum_col N: the sum of column N of $WORK/want.csv's rows
sum_col() { awk -F, -v c="$1" 'NR > 1 { n += $c } END { print n + 0 }' "$WORK/want.csv"; }

seed=0
RATE=1000
reference q4 $seed $RATE
[ "$ROWS" -eq 5 ] || fail "q4: $ROWS categories, expected 5"
WINNERS=$(sum_col 3)
[ "$WINNERS" -gt 1500 ] || fail "q4: only $WINNERS auctions with a winning bid"
check_job q4 $seed --param event_rate=$RATE

reference q9 $seed $RATE
[ "$ROWS" -eq "$WINNERS" ] || fail "q9: $ROWS winning bids, but q4 averaged over $WINNERS"
awk -F, 'NR > 1 && ($11 != $1 || $14 < $6 || $14 > $7) { bad = 1 } END { exit bad }' \
    "$WORK/want.csv" || fail "q9: a winning bid outside its auction's time"
check_job q9 $seed --param event_rate=$RATE

reference q18 $seed $RATE
[ "$ROWS" -gt $((BIDS / 10)) ] && [ "$ROWS" -lt "$BIDS" ] ||
    fail "q18: $ROWS (bidder, auction) pairs of $BIDS bids"
[ "$(tail -n +2 "$WORK/want.csv" | cut -d, -f1-2 | sort | uniq -d | wc -l)" -eq 0 ] ||
    fail "q18: a (bidder, auction) pair has two rows"
check_job q18 $seed --param event_rate=$RATE

reference q19 $seed $RATE
[ "$(awk -F, 'NR > 1 && $8 == 10' "$WORK/want.csv" | wc -l)" -gt 100 ] ||
    fail "q19: too few auctions with 10 bids"
awk -F, 'NR > 1 && ($8 < 1 || $8 > 10) { bad = 1 } END { exit bad }' "$WORK/want.csv" ||
    fail "q19: a rank outside 1..10"
check_job q19 $seed --param event_rate=$RATE

reference q20 $seed $RATE
[ "$ROWS" -gt 1000 ] || fail "q20: only $ROWS bids on category 10"
awk -F, 'NR > 1 && $15 != 10 { bad = 1 } END { exit bad }' "$WORK/want.csv" ||
    fail "q20: an auction of another category"
check_job q20 $seed --param event_rate=$RATE

reference q13 3 10000
[ "$ROWS" -eq "$BIDS" ] || fail "q13: $ROWS rows, expected the $BIDS bids"
check_job q13 3 --param side_input="$SIDE"

# 1 event/s: 100 000 events from 2024-01-01T00:00:00Z span two days
EVENTS=100000
BIDS=$((EVENTS / 50 * 46))
for q in q15 q16 q17; do
    reference $q $seed 1
    case $q in
    q15)
        [ "$ROWS" -eq 2 ] || fail "q15: $ROWS days, expected 2"
        [ "$(sum_col 2)" -eq "$BIDS" ] || fail "q15: total_bids add up to $(sum_col 2)"
        [ $(($(sum_col 3) + $(sum_col 4) + $(sum_col 5))) -eq "$BIDS" ] ||
            fail "q15: the price ranges do not add up to the bids"
        ;;
    q16)
        [ "$(sum_col 4)" -eq "$BIDS" ] || fail "q16: total_bids add up to $(sum_col 4)"
        [ "$(awk -F, 'NR > 1 && $1 == "Google"' "$WORK/want.csv" | wc -l)" -eq 2 ] ||
            fail "q16: Google has not two days"
        ;;
    q17)
        [ "$(sum_col 3)" -eq "$BIDS" ] || fail "q17: total_bids add up to $(sum_col 3)"
        ;;
    esac
    check_job $q $seed --param event_rate=1
done
echo "PASS nexmark_more"
