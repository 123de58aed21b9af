#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, on a scratch copy of its corpus
# (tests/fuzz/corpus/NAME), so that runs do not litter the tree. Stops at the first crash and
# leaves the reproducer in build/fuzz/crashes/.
#   scripts/fuzz.sh build/fuzz 600
set -eu
dir=$1
secs=$2
mkdir -p "$dir/crashes"
for bin in "$dir"/fuzz_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.d) continue ;; esac
    name=$(basename "$bin" | sed 's/^fuzz_//')
    work=$(mktemp -d)
    if [ -d "tests/fuzz/corpus/$name" ]; then cp -r "tests/fuzz/corpus/$name/." "$work/"; fi
    echo "== fuzz_$name for ${secs}s"
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$dir/crashes/$name-" \
        "$work" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|#[0-9]+ +DONE)' || true
    rm -rf "$work"
    if ls "$dir/crashes/$name-"* >/dev/null 2>&1; then
        echo "fuzz_$name found a crash: $(ls "$dir/crashes/$name-"*)"
        exit 1
    fi
done
echo "all fuzz targets ran clean"
