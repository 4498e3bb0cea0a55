#!/usr/bin/env bash
# The Yahoo Streaming Benchmark job jobs/ysb.yaml (ysb source -> filter
# views -> enrich join ad -> campaign from the static table -> 10 s
# tumbling count and newest event time per campaign) over 200 000 events at
# 10 000 events/s of event time (20 s: two windows of 100 campaigns) equals
# the output of bench/ysb_ref, a straight C loop over the same events, at
# parallelism 1 and 2, for two seeds. Also: the committed table
# jobs/data/ysb-campaigns.csv is the one `ysb_ref campaigns` makes, the raw
# source rows are the same set at parallelism 1 and 3 and have the
# documented shape, and bad source fields are reported.
source "$(dirname "$0")/lib.sh"

: "${BUILD:=$(dirname "$SLUICE")}"
REF=$BUILD/bench/ysb_ref
[ -x "$REF" ] || fail "reference binary $REF not built"
EVENTS=200000
RATE=10000
cd "$SRC"

step "the campaign table is the generated one"
"$REF" campaigns "$WORK/campaigns.csv" || fail "ysb_ref campaigns"
cmp -s "$WORK/campaigns.csv" "$SRC/jobs/data/ysb-campaigns.csv" ||
    fail "jobs/data/ysb-campaigns.csv differs from 'ysb_ref campaigns' (regenerate it)"
[ "$(tail -n +2 "$WORK/campaigns.csv" | cut -d, -f1 | sort -u | wc -l)" -eq 1000 ] ||
    fail "the table does not have 1000 distinct ads"
[ "$(tail -n +2 "$WORK/campaigns.csv" | cut -d, -f2 | sort -u | wc -l)" -eq 100 ] ||
    fail "the table does not have 100 campaigns"

for seed in 0 5; do
    step "seed $seed: reference"
    "$REF" ref $EVENTS "$seed" "$WORK/ref.csv" $RATE || fail "ysb_ref ref"
    head -n 1 "$WORK/ref.csv" > "$WORK/want.csv"
    tail -n +2 "$WORK/ref.csv" | sort >> "$WORK/want.csv"
    rows=$(($(wc -l < "$WORK/want.csv") - 1))
    [ "$rows" -eq 200 ] || fail "reference has $rows rows, expected 2 windows x 100 campaigns"
    views=$(awk -F, 'NR > 1 { n += $4 } END { print n + 0 }' "$WORK/want.csv")
    [ "$views" -gt $((EVENTS * 32 / 100)) ] && [ "$views" -lt $((EVENTS * 35 / 100)) ] ||
        fail "reference counts $views views of $EVENTS events, not about a third"
    for P in 1 2; do
        step "seed $seed, parallelism $P"
        OUT=$WORK/out-$P.csv
        sluice run jobs/ysb.yaml --parallelism "$P" --workers "$P" --quiet \
            --param events=$EVENTS --param seed="$seed" --param event_rate=$RATE \
            --param output="$OUT" ||
            { cat "$WORK/stderr" >&2; fail "run ysb P=$P"; }
        { head -n 1 "$OUT" && tail -n +2 "$OUT" | sort; } > "$WORK/got.csv"
        if ! cmp -s "$WORK/want.csv" "$WORK/got.csv"; then
            diff "$WORK/want.csv" "$WORK/got.csv" | head -n 10 >&2
            fail "ysb (seed $seed) differs from the reference at parallelism $P"
        fi
        grep -Eq "^events +ysb +$EVENTS +$EVENTS" "$WORK/stderr" ||
            fail "summary does not show $EVENTS events from the source"
        grep -Eq "^joined +join +$((views + 1000)) +$views " "$WORK/stderr" ||
            fail "the join did not take $views views and 1000 table rows and emit every view"
    done
done

step "raw source rows: same set at parallelism 1 and 3, documented shape"
cat > "$WORK/raw.yaml" <<'YAML'
name: ysb-raw
sources:
  - { name: ev, type: ysb, events: 3000, seed: 3, event_rate: 1000,
      first_event_time: 2026-01-01T00:00:00Z }
sinks:
  - { name: out, type: file, format: csv, input: ev, path: "${output}" }
YAML
for P in 1 3; do
    sluice run "$WORK/raw.yaml" --parallelism $P --quiet --param output="$WORK/raw-$P.csv" ||
        { cat "$WORK/stderr" >&2; fail "raw source run P=$P"; }
    tail -n +2 "$WORK/raw-$P.csv" | sort > "$WORK/raw-$P.sorted"
done
cmp -s "$WORK/raw-1.sorted" "$WORK/raw-3.sorted" || fail "raw rows differ between P=1 and P=3"
[ "$(head -n 1 "$WORK/raw-1.csv")" = "user_id,page_id,ad_id,ad_type,event_type,event_time,ip" ] ||
    fail "raw header is '$(head -n 1 "$WORK/raw-1.csv")'"
[ "$(wc -l < "$WORK/raw-1.sorted")" -eq 3000 ] || fail "not 3000 raw rows"
U='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
bad=$(grep -Evc "^$U,$U,$U,(banner|modal|sponsored-search|mail|mobile),(view|click|purchase),2026-01-01T00:00:0[0-2]\.[0-9]{3}Z,[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$" \
    "$WORK/raw-1.sorted" || true)
[ "$bad" -eq 0 ] || fail "$bad raw rows do not have the documented shape"
# every ad of the stream is in the table
cut -d, -f3 "$WORK/raw-1.sorted" | sort -u > "$WORK/ads"
tail -n +2 "$SRC/jobs/data/ysb-campaigns.csv" | cut -d, -f1 | sort > "$WORK/table-ads"
[ "$(comm -23 "$WORK/ads" "$WORK/table-ads" | wc -l)" -eq 0 ] || fail "an ad is not in the table"
# the last event: n = 2999 at 1000 events/s is 2.999 s after the first
grep -q ",2026-01-01T00:00:02.999Z," "$WORK/raw-1.sorted" || fail "no event at 2.999 s"

step "bad fields are reported"
cat > "$WORK/bad.yaml" <<'YAML'
name: bad-ysb
sources:
  - { name: ev, type: ysb, events: -1, event_rate: 0, first_event_time: yesterday }
sinks:
  - { name: out, type: stdout, input: ev }
YAML
if sluice validate "$WORK/bad.yaml"; then fail "a bad ysb source validated"; fi
for w in events event_rate first_event_time; do
    grep -q "$w" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "no error about $w"; }
done
sed -i 's/first_event_time: yesterday/colour: red/' "$WORK/bad.yaml"
if sluice validate "$WORK/bad.yaml"; then fail "an unknown ysb field validated"; fi
grep -q "unknown ysb field 'colour'" "$WORK/stderr" || fail "no error about the unknown field"
echo "PASS ysb"
