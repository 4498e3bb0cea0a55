#!/usr/bin/env bash
# Late data, session merges and idle sources (docs/time.md):
#  1. records later than the allowed lateness all reach the side output,
#     none counts in a window, the metrics count them, and late-but-allowed
#     records update their fired windows;
#  2. a late-but-allowed record that bridges two fired sessions merges them;
#  3. an idle source stops holding the watermark back after its idle
#     timeout, and holds it back again when it emits again; without an idle
#     timeout it stalls the windows for as long as it is silent.
#  4. the worked example of docs/time.md gives the results it shows, and
#     jobs/click-sessions.yaml equals sessions computed in Python;
#  5. windows rolled up into larger windows count each result in the window
#     holding its event time, window_end - 1 ms, at parallelism 1 and 2.
source "$(dirname "$0")/lib.sh"
DIR=$SRC/tests/scenario/lateness
# Small batches: the watermark moves per batch, and the inputs leave a
# margin of 80 records around every late record.
export SLUICE_BATCH_BYTES=512

step "late records go to the side output"
python3 "$DIR/late.py" gen "$WORK/late-in.csv"
sluice run "$DIR/late.yaml" --quiet -p input="$WORK/late-in.csv" -p main="$WORK/main.csv" \
    -p late="$WORK/late.csv" || { cat "$WORK/stderr" >&2; fail "late job"; }
python3 "$DIR/late.py" check "$WORK/late-in.csv" "$WORK/main.csv" "$WORK/late.csv" ||
    fail "late records"
nlate=$(($(wc -l < "$WORK/late.csv") - 1))
grep -Eq "^per_key +window .*\($nlate late records to the side output\)" "$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; fail "the summary does not count $nlate late records"; }

step "a late record bridges two fired sessions"
sluice run "$DIR/bridge.yaml" --quiet -p input="$DIR/bridge.csv" -p output="$WORK/bridge.csv" ||
    { cat "$WORK/stderr" >&2; fail "bridge job"; }
# key a: sessions [0 s, 4 s) and [6 s, 10 s) fire with 2 records each; the
# record at 3.5 s arrives after both fired and merges them into [0 s, 10 s)
# with all 5 records, emitted at once (in this order).
grep '^a,' "$WORK/bridge.csv" > "$WORK/a.csv"
cat > "$WORK/want-a.csv" <<'CSV'
a,2026-01-01T00:00:00.000Z,2026-01-01T00:00:04.000Z,2,2026-01-01T00:00:00.000Z,2026-01-01T00:00:01.000Z
a,2026-01-01T00:00:06.000Z,2026-01-01T00:00:10.000Z,2,2026-01-01T00:00:06.000Z,2026-01-01T00:00:07.000Z
a,2026-01-01T00:00:00.000Z,2026-01-01T00:00:10.000Z,5,2026-01-01T00:00:00.000Z,2026-01-01T00:00:07.000Z
CSV
diff "$WORK/want-a.csv" "$WORK/a.csv" >&2 || fail "sessions of key a"

step "a record inside a session still open joins it"
pad=$(printf '%072d' 0)
printf 'key,ts,note\n' > "$WORK/sl-in.csv"
for r in a,0 a,2000 a,4000 b,6500 a,1000 b,20000 a,500; do printf '%s,%s\n' "$r" "$pad" >> "$WORK/sl-in.csv"; done
SLUICE_BATCH_BYTES=64 sluice run "$DIR/session_late.yaml" --quiet -p input="$WORK/sl-in.csv" \
    -p main="$WORK/sl-main.csv" -p late="$WORK/sl-late.csv" ||
    { cat "$WORK/stderr" >&2; fail "session lateness job"; }
# a@1 s comes after b@6.5 s moved the watermark past its own window [1 s,
# 4 s), but inside a's session [0 s, 7 s), which is still open: it counts
# there. a@0.5 s comes after b@20 s closed that session: late.
cat > "$WORK/want-sl.csv" <<'CSV'
a,1970-01-01T00:00:00.000Z,1970-01-01T00:00:07.000Z,4
b,1970-01-01T00:00:06.500Z,1970-01-01T00:00:09.500Z,1
b,1970-01-01T00:00:20.000Z,1970-01-01T00:00:23.000Z,1
CSV
tail -n +2 "$WORK/sl-main.csv" | sort | diff "$WORK/want-sl.csv" - >&2 || fail "sessions with a record inside"
printf 'key,ts,note\na,500,%s\n' "$pad" | diff - "$WORK/sl-late.csv" >&2 ||
    fail "sessions: side output"

step "a join counts its late records (it has no side output)"
{
    printf 'side,k,ts,note\n'
    for i in $(seq 1 80); do printf 'l,%d,%d,%s\nr,%d,%d,%s\n' "$i" "$((i * 1000))" "$pad" "$i" "$((i * 1000))" "$pad"; done
    printf 'l,1,500,%s\n' "$pad"
    for i in $(seq 81 160); do printf 'l,%d,%d,%s\nr,%d,%d,%s\n' "$i" "$((i * 1000))" "$pad" "$i" "$((i * 1000))" "$pad"; done
} > "$WORK/jl-in.csv"
SLUICE_BATCH_BYTES=64 sluice run "$DIR/join_late.yaml" --quiet -p input="$WORK/jl-in.csv" \
    -p output="$WORK/jl-out.csv" || { cat "$WORK/stderr" >&2; fail "join lateness job"; }
[ "$(($(wc -l < "$WORK/jl-out.csv") - 1))" -eq 160 ] || fail "join: not 160 pairs"
grep -Eq "^pairs +join .*\(1 late records\)$" "$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; fail "join: the summary does not count the late record as such"; }

# The trace of idle.yaml: window results and bursty's records, in the order
# the sink got them. Prints "pause_windows resumed_windows": the largest
# window end (ms into the run) printed before bursty's first record after the
# pause, and the number of windows printed between bursty's 150th and 350th
# records (while it is active again). Not up to its last (450th) record: when
# bursty ends, the windows it held back fire at once, and their results may
# reach the sink before bursty's last records, which take another path there.
# 100 records (0.5 s) of margin; were the watermark not held, steady's windows
# would fire every 0.5 s in that second.
trace_stats() {
    awk -F, 'function ms(s) { split(substr(s, 12, 12), p, ":"); return (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 }
        $1 == "bursty" { nb++; if (nb == 51) resumed = 1; if (nb == 150) active = 1; if (nb == 350) active = 0 }
        $1 == "window" { if (!resumed && ms($2) > before) before = ms($2); if (active) n++ }
        END { printf "%d %d\n", before, n }' "$1"
}

step "an idle source does not stall the watermark, and holds it back again when active"
sluice run "$DIR/idle.yaml" --quiet -p pause=5s -p steady_count=2200 -p idle=1s > "$WORK/idle.out" ||
    { cat "$WORK/stderr" >&2; fail "idle job"; }
read -r before during <<< "$(trace_stats "$WORK/idle.out")"
[ "$before" -ge 1500 ] ||
    fail "with an idle timeout, windows stalled during the pause (last window end ${before} ms)"
[ "$during" -eq 0 ] ||
    fail "$during windows fired while the resumed source was behind (it must hold the watermark)"
grep -q "records dropped" "$WORK/stderr" || fail "the resumed source's late records are not counted"

step "without an idle timeout the silent source holds the windows back"
sluice run "$DIR/idle.yaml" --quiet -p pause=2s -p steady_count=800 -p idle=0 > "$WORK/stall.out" ||
    { cat "$WORK/stderr" >&2; fail "stall job"; }
read -r before during <<< "$(trace_stats "$WORK/stall.out")"
[ "$before" -le 500 ] || fail "windows up to ${before} ms fired while a source was silent"
step "event time from an expression"
printf 'user,sec\na,1\na,4\nb,12\na,15\nb,3\n' > "$WORK/sec.csv"
SLUICE_BATCH_BYTES=64 sluice run "$DIR/expr_ts.yaml" --quiet -p input="$WORK/sec.csv" -p output="$WORK/expr.csv" ||
    { cat "$WORK/stderr" >&2; fail "expression timestamp job"; }
# b@3 s is 9 s behind b@12 s: late (the bound is 1 s; one record per batch,
# a watermark after each), counted, not in a window
cat > "$WORK/want-expr.csv" <<'CSV'
a,1970-01-01T00:00:00.000Z,1970-01-01T00:00:10.000Z,2,4000
a,1970-01-01T00:00:10.000Z,1970-01-01T00:00:20.000Z,1,15000
b,1970-01-01T00:00:10.000Z,1970-01-01T00:00:20.000Z,1,12000
CSV
tail -n +2 "$WORK/expr.csv" | sort | diff "$WORK/want-expr.csv" - >&2 || fail "expression timestamps"
grep -q "(1 late records dropped" "$WORK/stderr" || fail "the late record is not counted"

# worked NAME TIME...: runs lateness/worked.yaml over records of key a at
# the given event times (ms), in that order, each in a batch of its own
# (a note longer than a 64-byte batch pads it); the results go to
# $WORK/NAME-main.csv, the late records to $WORK/NAME-late.csv.
pad=$(printf '%072d' 0)
worked() {
    local name=$1 t
    shift
    printf 'key,ts,note\n' > "$WORK/$name.csv"
    for t in "$@"; do printf 'a,%s,%s\n' "$t" "$pad" >> "$WORK/$name.csv"; done
    SLUICE_BATCH_BYTES=64 sluice run "$DIR/worked.yaml" --quiet -p input="$WORK/$name.csv" \
        -p main="$WORK/$name-main.csv" -p late="$WORK/$name-late.csv" ||
        { cat "$WORK/stderr" >&2; fail "$name job"; }
}

step "a time beyond any calendar is an error, and does not move the watermark"
worked far 1000 4000000000000000000 3000 12000
# the record at 4e18 ms (beyond 2^60) is skipped as bad; a@3 s after it is
# not late, as the watermark stayed at 1.999 s
cat > "$WORK/want-far.csv" <<'CSV'
key,window_start,window_end,n
a,1970-01-01T00:00:00.000Z,1970-01-01T00:00:10.000Z,2
a,1970-01-01T00:00:10.000Z,1970-01-01T00:00:20.000Z,1
CSV
diff "$WORK/want-far.csv" "$WORK/far-main.csv" >&2 || fail "far time: window results"
grep -Eq "^per_key +window .*\(1 bad records skipped\)$" "$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; fail "far time: not counted as a bad record (or records late)"; }

step "the worked example of docs/time.md"
worked worked 1000 4000 3000 12000 8000 19000 7000
# In arrival order: [0,10) fires at a@12 with 3 records, a@8 (late, within
# the allowed 5 s) updates it to 4, a@19 drops it, a@7 is too late and goes
# to the side output, and end of input fires [10,20) with 2.
cat > "$WORK/want-worked.csv" <<'CSV'
key,window_start,window_end,n
a,1970-01-01T00:00:00.000Z,1970-01-01T00:00:10.000Z,3
a,1970-01-01T00:00:00.000Z,1970-01-01T00:00:10.000Z,4
a,1970-01-01T00:00:10.000Z,1970-01-01T00:00:20.000Z,2
CSV
diff "$WORK/want-worked.csv" "$WORK/worked-main.csv" >&2 || fail "worked example: window results"
printf 'key,ts,note\na,7000,%s\n' "$pad" | diff - "$WORK/worked-late.csv" >&2 ||
    fail "worked example: side output"
grep -Eq "^per_key +window .*\(1 late records to the side output\)" "$WORK/stderr" ||
    fail "worked example: the late record is not counted"

step "windows after windows: a 10 s count belongs to the minute holding its window_end - 1 ms"
python3 - "$WORK/ru-in.csv" "$WORK/want-ru.csv" <<'PY'
import datetime, random, sys
random.seed(7)
pad = "0" * 72
recs = []
for key in "abc":
    t = random.randrange(0, 1300)
    while t < 300000:
        recs.append((t, key))
        t += random.randrange(200, 2600)
    recs += [(t, key) for t in (50000, 59999, 60000, 119999, 179998)]  # minute edges
recs.sort()
# out of order by less than the 2 s bound: swap neighbours less than 1.5 s apart
for i in range(0, len(recs) - 1, 3):
    if recs[i + 1][0] - recs[i][0] < 1500:
        recs[i], recs[i + 1] = recs[i + 1], recs[i]
with open(sys.argv[1], "w") as f:
    f.write("key,ts,note\n")
    for t, key in recs:
        f.write("%s,%d,%s\n" % (key, t, pad))
iso = lambda ms: datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
    "%Y-%m-%dT%H:%M:%S.000Z")
mins = {}
for t, key in recs:  # the 10 s window [s, s + 10 s) is in the minute holding s + 10 s - 1 ms
    tens = t // 10000 * 10000
    mins.setdefault((key, (tens + 10000 - 1) // 60000 * 60000), {}).setdefault(tens, 0)
    mins[(key, (tens + 10000 - 1) // 60000 * 60000)][tens] += 1
with open(sys.argv[2], "w") as f:
    for (key, m), parts in sorted(mins.items()):
        f.write("%s,%s,%s,%d,%d\n" % (key, iso(m), iso(m + 60000), sum(parts.values()), len(parts)))
PY
for p in 1 2; do
    SLUICE_BATCH_BYTES=64 sluice run "$DIR/rollup.yaml" --quiet --workers 2 --parallelism $p \
        -p input="$WORK/ru-in.csv" -p main="$WORK/ru-main-$p.csv" -p late="$WORK/ru-late-$p.csv" ||
        { cat "$WORK/stderr" >&2; fail "rollup job, parallelism $p"; }
    [ "$(head -n 1 "$WORK/ru-main-$p.csv")" = "key,window_start,window_end,total,parts" ] ||
        fail "rollup, parallelism $p: header"
    tail -n +2 "$WORK/ru-main-$p.csv" | sort | diff "$WORK/want-ru.csv" - >&2 ||
        fail "rollup, parallelism $p: minute totals"
    [ "$(wc -l < "$WORK/ru-late-$p.csv")" -le 1 ] || fail "rollup, parallelism $p: late 10 s counts"
    grep -q "late records" "$WORK/stderr" && { cat "$WORK/stderr" >&2; fail "rollup, parallelism $p: late records"; }
done

step "jobs/click-sessions.yaml equals sessions computed in Python"
sluice run "$SRC/jobs/click-sessions.yaml" --quiet -p input="$SRC/jobs/data/clicks.csv" \
    -p output="$WORK/sessions.csv" -p late="$WORK/late-clicks.csv" ||
    { cat "$WORK/stderr" >&2; fail "click-sessions"; }
python3 - "$SRC/jobs/data/clicks.csv" > "$WORK/want-sessions.csv" <<'PY'
import csv, datetime, sys
by = {}
for r in csv.DictReader(open(sys.argv[1])):
    by.setdefault(r["user"], []).append((int(r["ts"]), r["kind"]))
for user, evs in by.items():
    evs.sort()
    sessions = []
    for t, kind in evs:
        if sessions and t < sessions[-1][-1][0] + 30 * 60000:
            sessions[-1].append((t, kind))
        else:
            sessions.append([(t, kind)])
    for s in sessions:
        start = datetime.datetime.fromtimestamp(s[0][0] / 1000, datetime.timezone.utc)
        print("%s,%s.%03dZ,%d,%d,%d" % (user, start.strftime("%Y-%m-%dT%H:%M:%S"), s[0][0] % 1000,
              sum(k == "view" for _, k in s), sum(k == "click" for _, k in s),
              (s[-1][0] - s[0][0]) // 1000))
PY
tail -n +2 "$WORK/sessions.csv" | sort > "$WORK/got-sessions.csv"
sort -o "$WORK/want-sessions.csv" "$WORK/want-sessions.csv"
diff "$WORK/want-sessions.csv" "$WORK/got-sessions.csv" >&2 || fail "click sessions differ"
[ "$(wc -l < "$WORK/got-sessions.csv")" -ge 10 ] || fail "too few sessions"
echo "PASS late data, session merge, idleness"
