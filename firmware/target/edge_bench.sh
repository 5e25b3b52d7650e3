#!/bin/sh
# The Edge benchmark (docs/benchmarks.md, "Edge"): the node with a trained run's student on the
# Cortex-M4 under QEMU, fed real windows, and the generated-data w16 shape of the test suite.
# Prints a Markdown block to paste. Usage:
#   firmware/target/edge_bench.sh BUILD_DIR RUN_DIR [SEVERSON_SOH_DIR [FOOTPRINT_JSON]]
# BUILD_DIR is a host build with firmware_test built; RUN_DIR a `cyclecast train` output.
# FOOTPRINT_JSON, when given, receives the trained student's measured footprint for
# `cyclecast bundle build --footprint` (docs/bundles.md).
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR RUN_DIR [SEVERSON_SOH_DIR [FOOTPRINT_JSON]]" >&2
  exit 2
fi
build=$1
run=$2
data=${3:-/work/shared/data/severson-soh}
footprint=${4:-}
# The suite's shapes (generated w16 with three features; w16 on the real data's normalization),
# then the trained run's chosen student.
suite=$(CYCLECAST_EDGE_DATA="$data" "$build/bin/firmware_test" \
  --gtest_filter='NodeQemu.Cortex*:NodeQemu.Real*' 2>&1) || {
  echo "$suite" >&2
  exit 1
}
trained=$(CYCLECAST_EDGE_RUN="$run" CYCLECAST_EDGE_DATA="$data" CYCLECAST_EDGE_FOOTPRINT="$footprint" \
  "$build/bin/firmware_test" --gtest_filter='NodeQemu.Real*' 2>&1) || {
  echo "$trained" >&2
  exit 1
}
out="$suite
$trained"
echo "### $(date -u +%Y-%m-%d) on $(nproc) x $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo
echo "Command: \`firmware/target/edge_bench.sh $build $run $data\`"
echo "($(arm-none-eabi-gcc --version | head -1), -Os, \`$(qemu-system-arm --version | head -1)\`"
echo "-M mps2-an386 -icount shift=0; run $(basename "$run"), chosen student:"
echo "$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['choice']['name'], '/', d['protocol'], 'protocol')" "$run/report.json" 2>/dev/null || echo '?'))"
echo
echo '```'
echo "$out" | grep -E '^(generated|real-data|trained) '
echo '```'
