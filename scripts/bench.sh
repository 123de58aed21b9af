#!/bin/sh
# Runs every benchmark program in DIR (build/bench, built by `make bench`) and prints one table
# at the end: figure, value, unit, aim, and the ratio value / aim (under 1.00 is within the aim),
# followed by one line per figure saying what it measures. An aim written ">=x" is a floor (a
# rate that should stay above x): its ratio is x / value, so under 1.00 is within the aim there
# too. Benchmarks print figures; nothing here
# passes or fails on them. A program that exits non-zero (its own sanity checks failed, e.g. a
# RESET of unchanged documents produced sink events) stops the run.
#
# Each program prints progress lines and one line per figure:
#   FIGURE|name|value|unit|aim or -|what it means
#   scripts/bench.sh build/bench
set -eu
dir=${1:-build/bench}
figs=$(mktemp)
one=$(mktemp)
trap 'rm -f "$figs" "$one"' EXIT

# bench_pipeline and bench_rss run the agent itself: FIRESYNC_BIN when set, else this tree's
# release ./firesync, built or brought up to date here (`make firesync`).
if [ -z "${FIRESYNC_BIN:-}" ]; then
    root=$(cd "$(dirname "$0")/.." && pwd)
    make -C "$root" --no-print-directory -s firesync
    FIRESYNC_BIN=$root/firesync
fi
export FIRESYNC_BIN

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr)"
for bin in "$dir"/bench_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.d) continue ;; esac
    echo "== $(basename "$bin")"
    # the previous program's files (a MariaDB datadir, logs) written back to disk first: a
    # write-back running under the next one stalls its MySQL commits by tens to hundreds of ms
    sync
    if ! "$bin" >"$one"; then
        cat "$one"
        echo "$(basename "$bin") failed; no table" >&2
        exit 1
    fi
    grep -v '^FIGURE|' "$one" | sed 's/^/   /' || true
    grep '^FIGURE|' "$one" >>"$figs" || true
done

echo
awk -F'|' '
    BEGIN { fmt = "%-28s %10s  %-6s %6s  %6s\n"
            printf fmt, "figure", "value", "unit", "aim", "ratio" }
    { if ($5 ~ /^>=/) {
          floor = substr($5, 3) + 0
          ratio = ($3 + 0 == 0) ? "-" : sprintf("%.2f", floor / $3)
      } else
          ratio = ($5 == "-" || $5 == 0) ? "-" : sprintf("%.2f", $3 / $5)
      printf fmt, $2, $3, $4, $5, ratio }' "$figs"
echo
echo "What each figure is (ratio = value / aim, or floor / value for an aim \">=floor\"; under 1.00 is"
echo "within the aim):"
awk -F'|' '{ printf "  %-28s %s\n", $2, $6 }' "$figs"
