#!/bin/sh
# Runs every test binary of a build (default build/asan): the unit tests first, then the
# integration tests against a private MariaDB and Google's Firestore emulator, started once for
# the whole run and always stopped (on failure and interruption too). The last line is the
# summary "N passed, N failed". Exit status 0 only when nothing failed.
#
#   tests/run.sh [BUILD] [PATTERN]     PATTERN: only binaries whose name contains it
set -u
BUILD=${1:-build/asan}
PATTERN=${2:-}
passed=0
failed=0
failed_names=""
run_dir=""

cleanup() {
    if [ -n "$run_dir" ]; then
        "$BUILD/tests/harness/svcctl" down "$run_dir" >/dev/null 2>&1
        if [ "$failed" -eq 0 ]; then rm -rf "$run_dir"; else echo "services' logs kept in $run_dir"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CMOCKA_MESSAGE_OUTPUT=TAP

# run_one BINARY: runs a cmocka binary, counts its "ok" and "not ok" lines. A binary that
# crashes or exits non-zero without reporting a failing test counts as one failure.
run_one() {
    bin=$1
    name=$(basename "$bin")
    out=$(mktemp)
    "$bin" >"$out" 2>&1
    rc=$?
    ok=$(grep -c '^ok ' "$out")
    nok=$(grep -c '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        nok=1
    fi
    passed=$((passed + ok))
    failed=$((failed + nok))
    if [ "$nok" -ne 0 ]; then
        failed_names="$failed_names $name"
        echo "---- $name: FAILED (exit $rc)"
        cat "$out"
    else
        echo "---- $name: $ok passed"
    fi
    rm -f "$out"
}

matches() { [ -z "$PATTERN" ] || case "$1" in *"$PATTERN"*) return 0 ;; *) return 1 ;; esac; }

for bin in "$BUILD"/tests/unit/test_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.d) continue ;; esac
    matches "$bin" && run_one "$bin"
done

integ=""
for bin in "$BUILD"/tests/integration/test_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.d) continue ;; esac
    matches "$bin" && integ="$integ $bin"
done

if [ -n "$integ" ]; then
    run_dir=$(mktemp -d /tmp/firesync-test.XXXXXX)
    echo "---- starting MariaDB and the Firestore emulator in $run_dir"
    if "$BUILD/tests/harness/svcctl" up "$run_dir"; then
        export FIRESYNC_TEST_DIR="$run_dir"
        for bin in $integ; do run_one "$bin"; done
    else
        for bin in $integ; do
            failed=$((failed + 1))
            failed_names="$failed_names $(basename "$bin")"
        done
        echo "---- integration tests not run: the services did not start (see above)"
    fi
fi

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
