# lib.sh — shared helpers of the scenario tests (sourced, not run).
# Environment from CTest: SLUICE (the CLI binary), SRC (source tree).
set -euo pipefail
export LC_ALL=C
: "${SLUICE:?SLUICE must name the sluice binary}"
: "${SRC:?SRC must name the source tree}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scenario-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "== $*"
}

# Runs the CLI; its stderr goes to $WORK/stderr and is checked for
# sanitizer reports (a leak or UB report fails the test even when the
# command's own exit status is what we expected).
sluice() {
    local rc=0
    "$SLUICE" "$@" 2>"$WORK/stderr" || rc=$?
    if grep -q "Sanitizer" "$WORK/stderr"; then
        cat "$WORK/stderr" >&2
        fail "sanitizer report from: sluice $*"
    fi
    return $rc
}
