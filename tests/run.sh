#!/bin/sh
# Runs every test binary given on the command line, then the shell tests in tests/integration/,
# and prints one closing line: "N passed, N failed".
passed=0; failed=0; failures=""
for t in "$@"; do
  echo "== $t"
  if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures="$failures $t"; fi
done
for t in tests/integration/test_*.sh; do
  [ -f "$t" ] || continue
  echo "== $t"
  if sh "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures="$failures $t"; fi
done
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
