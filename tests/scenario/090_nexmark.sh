#!/usr/bin/env bash
# The Nexmark queries of jobs/nexmark/ (q0 pass-through, q1 currency
# conversion, q2 selection) over 100 000 generated events equal the output
# of bench/nexmark_ref, a straight C loop over the same events, at
# parallelism 1 and 3 (the source splits the event stream over its
# subtasks without changing it), for the default seed and another one.
source "$(dirname "$0")/lib.sh"

: "${BUILD:=$(dirname "$SLUICE")}"
REF=$BUILD/bench/nexmark_ref
[ -x "$REF" ] || fail "reference binary $REF not built"
EVENTS=100000

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
        for P in 1 3; do
            step "$q, seed $seed, parallelism $P"
            OUT=$WORK/out-$q-$P.csv
            sluice run "$SRC/jobs/nexmark/$q.yaml" --parallelism "$P" --quiet \
                --param events=$EVENTS --param seed=$seed --param output="$OUT" ||
                { cat "$WORK/stderr" >&2; fail "run $q P=$P"; }
            { head -n 1 "$OUT" && tail -n +2 "$OUT" | sort; } > "$WORK/got.csv"
            if ! cmp -s "$WORK/want.csv" "$WORK/got.csv"; then
                diff "$WORK/want.csv" "$WORK/got.csv" | head -n 10 >&2
                fail "$q (seed $seed) differs from the reference at parallelism $P"
            fi
            grep -Eq "^events +nexmark +$EVENTS +$EVENTS" "$WORK/stderr" ||
                fail "summary does not show $EVENTS events from the source"
        done
    done
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
