#!/bin/sh
# The long convergence run: tests/integration/test_converge.c's random workload and faults for
# MINUTES minutes (default 30) against a private MariaDB and the Firestore emulator, started here
# and always stopped. Prints the seed, the faults as they happen and the summary; a failure keeps
# the services' and the agent's logs and names the directory.
#   scripts/soak.sh [MINUTES] [SEED]        (make soak SOAK_MINUTES=30 SOAK_SEED=)
set -u
build=${BUILD:-build/asan}
mins=${1:-30}
seed=${2:-}
dir=$(mktemp -d /tmp/firesync-soak.XXXXXX)
rc=1
cleanup() {
    "$build/tests/harness/svcctl" down "$dir" >/dev/null 2>&1
    if [ "$rc" -eq 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: $mins minutes, services in $dir"
"$build/tests/harness/svcctl" up "$dir" || exit 1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CMOCKA_MESSAGE_OUTPUT=TAP
FIRESYNC_TEST_DIR=$dir FIRESYNC_BIN=${FIRESYNC_BIN:-$PWD/$build/firesync} \
    FIRESYNC_SOAK_SECONDS=$((mins * 60)) FIRESYNC_SOAK_SEED=$seed \
    "$build/tests/integration/test_converge"
rc=$?
exit $rc
