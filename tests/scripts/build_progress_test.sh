#!/usr/bin/env bash
# scripts.BuildProgress: scripts/build-progress (scripts/demo's build step) turns a real ninja's
# status lines into a few "[n/N] p%" lines and passes everything else through whole, so a failing
# build still shows its diagnostics.
#   build_progress_test.sh SCRIPT
set -euo pipefail

filter=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/cyclecast-progress.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
check() {  # check DESCRIPTION COMMAND...: one named expectation
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

# A build of 100 steps that all succeed, and one whose step 7 fails with a diagnostic.
write_build() {  # write_build DIR FAILING_STEP (0: none)
  local dir=$1 failing=$2
  mkdir -p "$dir"
  {
    echo 'rule step'
    echo '  command = sh -c "$cmd" && touch $out'
    for i in $(seq 1 100); do
      echo "build out$i: step"
      if [ "$i" -eq "$failing" ]; then
        echo "  cmd = echo 'src/part$i.cc:3:1: error: expected a cell id' >&2; exit 1"
      else
        echo "  cmd = true"
      fi
    done
  } > "$dir/build.ninja"
}

write_build "$work/ok" 0
NINJA_STATUS='[%f/%t] ' ninja -C "$work/ok" -j1 > "$work/ok.log" 2>&1
"$filter" < "$work/ok.log" > "$work/ok.out"
progress_lines=$(grep -c '^   build: \[[0-9]*/100\] [0-9]*%$' "$work/ok.out" || true)
check "a 100-step build shows between 10 and 25 progress lines (got $progress_lines)" \
  test "$progress_lines" -ge 10 -a "$progress_lines" -le 25
check "the last progress line is 100%" test "$(grep '^   build:' "$work/ok.out" | tail -n 1)" \
  = "   build: [100/100] 100%"
check "no status line of ninja's passes through" \
  test "$(grep -c '^\[' "$work/ok.out" || true)" -eq 0

write_build "$work/bad" 7
if NINJA_STATUS='[%f/%t] ' ninja -C "$work/bad" -j1 > "$work/bad.log" 2>&1; then
  echo "FAIL: the failing build succeeded"
  exit 1
fi
"$filter" < "$work/bad.log" > "$work/bad.out"
check "the compiler's diagnostic is shown" \
  grep -qx 'src/part7.cc:3:1: error: expected a cell id' "$work/bad.out"
check "ninja's FAILED line is shown" grep -q '^FAILED: .*out7' "$work/bad.out"
check "ninja's own message is shown" grep -q '^ninja: build stopped' "$work/bad.out"

printf 'no newline at the end' | "$filter" > "$work/tail.out"
check "a last line without a newline passes through" grep -qx 'no newline at the end' "$work/tail.out"

[ "$failures" -eq 0 ] || { echo "$failures expectation(s) failed"; exit 1; }
echo "all expectations met"
