#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time ($1, default 5s) on
# top of its committed seed corpus (testdata/fuzz). A crash fails the run and
# leaves the failing input in testdata/fuzz for a regression test.
set -euo pipefail
t=${1:-5s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($t)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg" >/tmp/vw-fuzz.log 2>&1 || { cat /tmp/vw-fuzz.log; exit 1; }
  done
done
