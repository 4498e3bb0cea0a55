#!/usr/bin/env bash
# Word count on the embedded mini-cluster equals
#   tr -s '[:space:]' '\n' < F | sort | uniq -c
# for a generated text (hundreds of thousands of words, skewed, UTF-8),
# at parallelism 1, 2 and 4 and with several numbers of workers.
source "$(dirname "$0")/lib.sh"

F=$WORK/text.txt
step "generating text"
awk -v seed=42 -v nwords=300000 'BEGIN {
    srand(seed)
    n = split("the of and a to in is you that it he was for on are as with his they I at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part", common, " ")
    n2 = split("sluice stream fluß река 川 ñandú café naïve Ωmega Zürich straße åland œuvre δέλτα", utf, " ")
    line = ""
    for (i = 0; i < nwords; i++) {
        r = rand()
        if (r < 0.6)      w = common[1 + int(n * rand() * rand())]   # skewed: low ranks dominate
        else if (r < 0.7) w = utf[1 + int(n2 * rand())]
        else if (r < 0.75) w = toupper(common[1 + int(n * rand())])
        else              w = sprintf("w%d", int(50000 * rand() * rand() * rand()))
        if (rand() < 0.02) w = w "," w "\"q"   # punctuation stays part of words
        sep = rand() < 0.05 ? "\t" : (rand() < 0.03 ? "   " : " ")
        line = line (line == "" ? "" : sep) w
        if (rand() < 0.08) { print line; line = "" }
        if (rand() < 0.001) print ""          # blank lines
    }
    if (line != "") print line
}' > "$F"
printf 'last line without newline\r' >> "$F"

# The reference, by an independent route: tr | sort | uniq -c, turned into
# word,count (with CSV quoting for words holding a comma or a quote).
tr -s '[:space:]' '\n' < "$F" | sed '/^$/d' | sort | uniq -c |
    awk '{ c = $1; sub(/^ *[0-9]+ /, ""); w = $0
           if (w ~ /[",]/) { gsub(/"/, "\"\"", w); w = "\"" w "\"" }
           print w "," c }' | sort > "$WORK/expected.csv"
test "$(wc -l < "$WORK/expected.csv")" -gt 10000 || fail "the generated text has too few distinct words"

for case in "1 1" "2 1" "2 2" "4 2" "4 3"; do
    set -- $case
    P=$1 W=$2
    step "parallelism $P, $W worker(s)"
    OUT=$WORK/out-$P-$W.csv
    sluice run "$SRC/jobs/wordcount.yaml" --parallelism "$P" --workers "$W" --quiet \
        --param input="$F" --param output="$OUT" || { cat "$WORK/stderr"; fail "run P=$P W=$W"; }
    head -n 1 "$OUT" | grep -qx "word,count" || fail "missing CSV header in $OUT"
    tail -n +2 "$OUT" | sort > "$WORK/got.csv"
    if ! cmp -s "$WORK/expected.csv" "$WORK/got.csv"; then
        diff "$WORK/expected.csv" "$WORK/got.csv" | head -n 20 >&2
        fail "word counts differ at parallelism $P with $W workers"
    fi
    # The summary names every operator with its record counts.
    grep -Eq "^lines +file +[0-9]+ +[0-9]+" "$WORK/stderr" || fail "no summary line for 'lines'"
    grep -q "FINISHED" "$WORK/stderr" || fail "summary does not say FINISHED"
    ls "$WORK"/.out-* 2>/dev/null && fail "temporary output files left behind"
done
echo "PASS wordcount"
