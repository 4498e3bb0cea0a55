#!/usr/bin/env bash
# Joins end to end: an interval join (orders and their payments), a sliding
# window join (the same pairs per window) and an enrich join (orders with
# the customer version as of their time, from a changelog) over generated,
# out-of-order (within the watermark bound) streams equal an independent
# Python reference (joins/reference.py), byte for byte after sorting, at
# parallelism 1, 2 and 4 on two workers, with small batches
# (SLUICE_BATCH_BYTES), on the same records in another arrival order, and on
# other data; and with the joins' rows in RocksDB (`state: {backend:
# rocksdb}`, a cache far smaller than the state) at parallelism 2.
source "$(dirname "$0")/lib.sh"

JD=$SRC/tests/scenario/joins
JOB=$JD/joins.yaml
OUTS="interval window enrich"
declare -A HEADER=(
    [interval]="order_id,customer,amount,ts,payment_id,right_order_id,paid,right_ts"
    [window]="window_start,window_end,order_id,customer,amount,ts,payment_id,right_order_id,paid,right_ts"
    [enrich]="order_id,customer,amount,ts,right_customer,tier,region,right_ts"
)
rows() { wc -l < "$1"; }

# data NAME SEED: generates the inputs into $WORK/NAME and the reference
# into $WORK/NAME/ref, and checks the data exercises the joins.
data() {
    local name=$1 seed=$2
    step "generating $name (seed $seed)"
    python3 "$JD/gen.py" --seed "$seed" --count 20000 ${3:+--order-seed "$3"} "$WORK/$name" \
        2>/dev/null || fail "gen.py"
    python3 "$JD/reference.py" "$WORK/$name" "$WORK/$name/ref" || fail "reference.py"
    local ref=$WORK/$name/ref
    test "$(rows "$ref/interval.csv")" -ge 10000 || fail "too few interval pairs"
    test "$(rows "$ref/window.csv")" -gt "$(rows "$ref/interval.csv")" ||
        fail "window pairs (two windows each) should outnumber interval pairs"
    test "$(rows "$ref/enrich.csv")" -eq 20000 || fail "enrich must keep every order"
    test "$(grep -c ',,,$' "$ref/enrich.csv")" -ge 100 || fail "too few orders without a customer"
    # payments before their order match too
    test "$(awk -F, '$8 < $4' "$ref/interval.csv" | wc -l)" -ge 100 ||
        fail "too few payments before their order"
}

# run NAME DATA P [ENV=VALUE]: runs the job and checks its three outputs
# (header, then the sorted rows) against the reference of DATA and against
# the first run on the same data.
declare -A FIRST=()
run() {
    local name=$1 d=$2 p=$3 envset=${4:-}
    local dir=$WORK/out-$name
    mkdir "$dir"
    step "$name: $d at parallelism $p${envset:+, $envset}, state on ${BACKEND:-heap}"
    local t0=$SECONDS
    if [ -n "$envset" ]; then export "${envset?}"; fi
    local rc=0
    sluice run "$JOB" --workers 2 --parallelism "$p" --param dir="$WORK/$d" \
        --param backend="${BACKEND:-heap}" \
        --param out_interval="$dir/interval.csv" --param out_window="$dir/window.csv" \
        --param out_enrich="$dir/enrich.csv" || rc=$?
    if [ -n "$envset" ]; then unset "${envset%%=*}"; fi
    [ $rc -eq 0 ] || { cat "$WORK/stderr" >&2; fail "$name: sluice run exited $rc"; }
    if grep -q "ignoring SLUICE_BATCH_BYTES" "$WORK/stderr"; then
        fail "$name: the workers ignored $envset"
    fi
    grep -q "FINISHED" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$name: not FINISHED"; }
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
        if ! cmp -s "$WORK/$d/ref/$o.csv" "$dir/$o.sorted"; then
            echo "$name: $o differs from the reference" \
                "($(rows "$WORK/$d/ref/$o.csv") rows expected, $(rows "$dir/$o.sorted") written;" \
                "'<' reference, '>' engine):" >&2
            diff "$WORK/$d/ref/$o.csv" "$dir/$o.sorted" | head -n 20 >&2 || true
            bad=1
        fi
        local first=${FIRST[$d]:-}
        if [ -n "$first" ] && ! cmp -s "$WORK/out-$first/$o.sorted" "$dir/$o.sorted"; then
            echo "$name: $o differs from run $first" >&2
            bad=1
        fi
    done
    [ $bad -eq 0 ] || fail "$name: outputs differ"
    [ -n "${FIRST[$d]:-}" ] || FIRST[$d]=$name
    echo "   ok in $((SECONDS - t0)) s"
}

data a 7
data b 8
data a-reordered 7 99 # the records of a, arriving in another order
run p1 a 1
run p2 a 2
run p4 a 4
run p2-small-batches a 2 SLUICE_BATCH_BYTES=4096
run b-p4-small-batches b 4 SLUICE_BATCH_BYTES=4096
run b-p1 b 1
run a-reordered-p4 a-reordered 4
BACKEND=rocksdb run rocks-p2 a 2 # bigger state: check_join's rocksdb-big
for o in $OUTS; do
    cmp -s "$WORK/out-p1/$o.sorted" "$WORK/out-a-reordered-p4/$o.sorted" ||
        fail "$o of the reordered input differs from the first run"
done
echo "PASS joins"
