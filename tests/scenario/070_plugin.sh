#!/usr/bin/env bash
# User functions in C: the example plugin's word count equals an awk
# reference, on the embedded cluster and on a real cluster where only the
# submitting CLI can see the plugin file (workers get it from the master);
# a plugin with the wrong ABI, a shared object that is not a plugin and an
# unknown function are refused at submission with clear messages.
source "$(dirname "$0")/lib.sh"
: "${PLUGIN_DIR:?}" "${SLUICE_MASTER_BIN:?}" "${SLUICE_WORKER_BIN:?}"


awk 'BEGIN { srand(5); split("The the THE, \"quoted\" (paren) end. --- ... 42 x-ray Keeper keeper! gate? ?? a", w, " ")
             for (i = 0; i < 30000; i++) printf "%s%s", w[1 + int(17 * rand())], (i % 9 == 8) ? "\n" : " " }' \
    > "$WORK/text.txt"
# The reference: lower case, strip surrounding ASCII punctuation, keep words
# with a letter or digit.
tr -s '[:space:]' '\n' < "$WORK/text.txt" | sed '/^$/d' |
    awk '{ w = tolower($0); gsub(/^[[:punct:]]+|[[:punct:]]+$/, "", w); if (w ~ /[a-z0-9]/) n[w]++ }
         END { for (w in n) print w "," n[w] }' | sort > "$WORK/expected.csv"

step "plugin word count on the embedded cluster"
sluice run "$SRC/jobs/udf-wordcount.yaml" --quiet --parallelism 3 \
    --param plugin="$PLUGIN_DIR/libsluice_example_udf.so" \
    --param input="$WORK/text.txt" --param output="$WORK/out.csv" ||
    { cat "$WORK/stderr"; fail "embedded run failed"; }
tail -n +2 "$WORK/out.csv" | sort | cmp -s "$WORK/expected.csv" - || {
    tail -n +2 "$WORK/out.csv" | sort | diff "$WORK/expected.csv" - | head >&2
    fail "plugin word count differs"
}

step "on a cluster, the plugin reaches the workers only through the master"
mkdir -p "$WORK/client" "$WORK/node"
cp "$PLUGIN_DIR/libsluice_example_udf.so" "$WORK/client/libexample.so"
cd "$WORK/node" # the daemons' working directory: no plugin here
"$SLUICE_MASTER_BIN" --bind 'tcp://127.0.0.1:*' >"$WORK/master.out" 2>"$WORK/master.err" &
PIDS+=($!)
wait_for 10 grep -qs "listening on" "$WORK/master.out" || fail "master did not start"
export SLUICE_MASTER=$(sed -n 's/.*listening on //p' "$WORK/master.out")
for id in p1 p2; do
    "$SLUICE_WORKER_BIN" --id $id --slots 2 --data-bind tcp://127.0.0.1 2>"$WORK/$id.err" &
    PIDS+=($!)
done
two_workers() { [ "$(sluice workers --json | grep -o '"alive":true' | wc -l)" -eq 2 ]; }
wait_for 20 two_workers || fail "workers did not register"
cd "$WORK/client"
sluice submit "$SRC/jobs/udf-wordcount.yaml" --quiet --parallelism 4 --param plugin=libexample.so \
    --param input="$WORK/text.txt" --param output="$WORK/out2.csv" ||
    { cat "$WORK/stderr"; fail "cluster run failed"; }
tail -n +2 "$WORK/out2.csv" | sort | cmp -s "$WORK/expected.csv" - || fail "cluster result differs"
[ ! -e "$WORK/node/libexample.so" ] || fail "the plugin appeared in the workers' directory"

step "a plugin built for another ABI is refused at submission"
sed 's/function: split_words/function: keep/' "$SRC/jobs/udf-wordcount.yaml" > "$WORK/bad.yaml"
rc=0
sluice submit "$WORK/bad.yaml" --param plugin="$PLUGIN_DIR/libbad_abi_udf.so" || rc=$?
[ $rc -eq 1 ] || fail "bad ABI accepted (rc=$rc)"
grep -q "bad.yaml:10:9: error: plugin .*libbad_abi_udf.so refused: it was built for UDF ABI version 999" \
    "$WORK/stderr" || fail "unclear message: $(cat "$WORK/stderr")"
[ "$(sluice list --json)" = "[]" ] || [ "$(sluice list --json | grep -c bad)" -eq 0 ] ||
    fail "the refused job reached the master"

step "a shared object that is not a plugin, and an unknown function"
rc=0
sluice validate "$SRC/jobs/udf-wordcount.yaml" --param plugin="$PLUGIN_DIR/libno_entry_udf.so" || rc=$?
[ $rc -eq 1 ] && grep -q "does not export sluice_plugin()" "$WORK/stderr" ||
    fail "non-plugin: $(cat "$WORK/stderr")"
sed 's/function: normalize/function: normalise/' "$SRC/jobs/udf-wordcount.yaml" > "$WORK/typo.yaml"
rc=0
sluice validate "$WORK/typo.yaml" --param plugin="$PLUGIN_DIR/libsluice_example_udf.so" || rc=$?
[ $rc -eq 1 ] && grep -q "typo.yaml:17:.*no function 'normalise' (did you mean 'normalize'?)" \
    "$WORK/stderr" || fail "unknown function: $(cat "$WORK/stderr")"
echo "PASS plugin"
