# lib.sh — shared helpers of the scenario tests (sourced, not run).
# Environment from CTest: SLUICE (the CLI binary), SRC (source tree).
set -euo pipefail
export LC_ALL=C
: "${SLUICE:?SLUICE must name the sluice binary}"
: "${SRC:?SRC must name the source tree}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scenario-XXXXXX")

# Background processes a test starts (daemons) go into PIDS; at exit they are
# killed and the work directory removed.
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# wait_for SECS CMD...: polls CMD until it succeeds; fails after SECS seconds.
wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

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
