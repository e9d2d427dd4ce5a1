#!/usr/bin/env bash
# Runs every fuzz target in the module briefly ($1: a count of inputs such
# as 10000x, the default, or a duration such as 30s) on top of its committed
# seed corpus (testdata/fuzz). A crash fails the run and leaves the failing
# input in testdata/fuzz for a regression test.
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when the
# time runs out while a worker is busy (golang/go#75804, fixed in Go 1.27),
# which on a loaded machine fails a run that found nothing. A count has no
# deadline to race.
set -euo pipefail
t=${1:-10000x}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($t)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg" >/tmp/vw-fuzz.log 2>&1 || { cat /tmp/vw-fuzz.log; exit 1; }
  done
done
