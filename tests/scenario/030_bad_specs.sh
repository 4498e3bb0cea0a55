#!/usr/bin/env bash
# Every spec in tests/data/specs/bad is rejected by `sluice validate` with
# exit status 1, the error at the line:col its first line announces
# (`# expect: LINE:COL: text`), and no crash or sanitizer report.
source "$(dirname "$0")/lib.sh"

n=0
for spec in "$SRC"/tests/data/specs/bad/*.yaml; do
    name=$(basename "$spec")
    expect=$(head -n 1 "$spec" | sed -n 's/^# expect: //p')
    [ -n "$expect" ] || fail "$name has no '# expect:' line"
    pos=${expect%%: *}
    text=${expect#*: }
    rc=0
    sluice validate "$spec" || rc=$?
    [ "$rc" -eq 1 ] || { cat "$WORK/stderr"; fail "$name: exit status $rc, wanted 1"; }
    grep -F -- "$name:$pos: error: " "$WORK/stderr" | grep -qF -- "$text" || {
        cat "$WORK/stderr" >&2
        fail "$name: no error '$text' at $pos"
    }
    n=$((n + 1))
done
[ "$n" -ge 30 ] || fail "only $n bad specs; the corpus must hold at least 30"
echo "PASS $n bad specs rejected at the right place"
