#!/usr/bin/env bash
# package.Lintian: lintian, Debian's own checker, on the package package.Build made: no error and
# no warning (informational tags are printed, not failed on).
#   lintian_test.sh DEB_DIR
set -euo pipefail
deb_dir=$1

if ! command -v lintian >/dev/null 2>&1; then
  echo "FAIL: lintian is missing (package lintian): run scripts/setup"
  exit 1
fi
shopt -s nullglob
debs=("$deb_dir"/cyclecast_*.deb)
if [ ${#debs[@]} -ne 1 ]; then
  echo "FAIL: expected one cyclecast_*.deb in $deb_dir (package.Build), got ${#debs[@]}"
  exit 1
fi
lintian --version
out=$(mktemp "${TMPDIR:-/tmp}/cyclecast-lintian.XXXXXX")
trap 'rm -f "$out"' EXIT
status=0
lintian --display-info --fail-on error,warning "${debs[0]}" >"$out" 2>&1 || status=$?
cat "$out"
if grep -qE '^[EW]: ' "$out" || [ "$status" -ne 0 ]; then
  echo "FAIL: lintian reports errors or warnings (exit $status)"
  exit 1
fi
echo "lintian: no errors, no warnings"
