#!/usr/bin/env bash
# Every example job of docs/job-spec.md (docs/examples/*.yaml) validates,
# runs to completion from the repository root at its own parallelism and at
# parallelism 3, and produces the output the documentation shows
# (docs/examples/expected/<name>.csv or .jsonl; CSV header first, then the
# rows sorted, since parallel runs write rows in any order). An example
# naming a `plugin:` runs with the example plugin built with the binaries.
source "$(dirname "$0")/lib.sh"

EX=docs/examples
# An example with a top-level `plugin:` uses the example plugin CMake builds
# next to the binaries (PLUGIN_DIR from CTest; else beside $SLUICE).
PLUGIN=${PLUGIN_DIR:-$(dirname "$SLUICE")/jobs}/libsluice_example_udf.so
case "$PLUGIN" in /*) ;; *) PLUGIN=$PWD/$PLUGIN ;; esac
cd "$SRC" || fail "cannot enter $SRC" # the examples' default paths are relative to the repository root

# Compares output file $1 with the expected file $2 (rows in any order).
same_output() {
    local got=$1 want=$2
    case "$want" in
    *.csv) { head -n 1 "$got" && tail -n +2 "$got" | sort; } > "$WORK/sorted" ;;
    *) sort "$got" > "$WORK/sorted" ;;
    esac
    if ! cmp -s "$want" "$WORK/sorted"; then
        diff "$want" "$WORK/sorted" | head -n 20 >&2
        return 1
    fi
}

n=0
for spec in "$EX"/*.yaml; do
    name=$(basename "$spec" .yaml)
    step "$name"
    popts=()
    if grep -q "^plugin:" "$spec"; then
        [ -f "$PLUGIN" ] || fail "$name needs the example plugin, not found at $PLUGIN"
        popts=(--param plugin="$PLUGIN")
    fi
    sluice validate "$spec" "${popts[@]}" > "$WORK/validate.out" || {
        cat "$WORK/stderr" >&2
        fail "$name: validate failed"
    }
    grep -q "^$spec: ok " "$WORK/validate.out" || fail "$name: validate did not say ok"

    want=
    for ext in csv jsonl; do
        [ -f "$EX/expected/$name.$ext" ] && want=$EX/expected/$name.$ext
    done
    ext=${want##*.}
    [ -n "$want" ] || ext=csv

    for par in "" 3; do
        opts=(--quiet "${popts[@]}")
        [ -n "$par" ] && opts+=(--parallelism "$par" --workers 2)
        out=$WORK/$name${par:+-p$par}.$ext
        if grep -q "type: stdout" "$spec"; then
            sluice run "$spec" "${opts[@]}" > "$out" || {
                cat "$WORK/stderr" >&2
                fail "$name: run ${par:+at parallelism $par }failed"
            }
        else
            sluice run "$spec" "${opts[@]}" --param output="$out" > "$WORK/stdout" || {
                cat "$WORK/stderr" >&2
                fail "$name: run ${par:+at parallelism $par }failed"
            }
        fi
        grep -q "FINISHED" "$WORK/stderr" || fail "$name: summary does not say FINISHED"
        [ -s "$out" ] || fail "$name: no output"
        if [ -n "$want" ]; then
            same_output "$out" "$want" ||
                fail "$name: output ${par:+at parallelism $par }differs from $want"
        fi
        if [ "$name" = source_options ]; then
            grep -q "(2 bad records skipped)" "$WORK/stderr" ||
                fail "$name: the summary does not report 2 skipped records"
        fi
    done
    ls "$WORK"/.*.tmp-* 2>/dev/null && fail "$name: temporary output files left behind"
    n=$((n + 1))
done
[ "$n" -ge 8 ] || fail "only $n examples found in $EX"
echo "PASS $n documented examples"
