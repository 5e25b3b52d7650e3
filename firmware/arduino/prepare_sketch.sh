#!/bin/sh
# Fills firmware/arduino/cyclecast_node/src/ with the int8 runtime, the node program and an
# exported model (model_data.h/.c from `cyclecast export`), so that arduino-cli can build the
# sketch. Usage: firmware/arduino/prepare_sketch.sh MODEL_DIR [SKETCH_DIR]
set -eu
if [ $# -lt 1 ] || [ ! -f "$1/model_data.c" ] || [ ! -f "$1/model_data.h" ]; then
  echo "usage: $0 MODEL_DIR [SKETCH_DIR]   (MODEL_DIR holds model_data.h/.c from cyclecast export)" >&2
  exit 2
fi
firmware=$(cd "$(dirname "$0")/.." && pwd)
sketch=${2:-$firmware/arduino/cyclecast_node}
src=$sketch/src
rm -rf "$src"
mkdir -p "$src/cyclecast"
cp "$firmware"/include/cyclecast/cc_nn.h "$src/cyclecast/"
# The Arduino build has no -I for the sketch: headers include their neighbours by plain name.
sed 's|#include "cyclecast/cc_nn.h"|#include "cc_nn.h"|' \
  "$firmware"/include/cyclecast/cc_student.h >"$src/cyclecast/cc_student.h"
cp "$firmware"/src/cc_student.c "$firmware"/src/cc_requantize.c "$firmware"/src/cc_tanh.c "$src/"
cp "$firmware"/node/cc_node.h "$firmware"/node/cc_node.c "$src/"
cp "$1/model_data.h" "$1/model_data.c" "$src/"
echo "sketch ready: $sketch (model $(sed -n 's/^#define CC_MODEL_VERSION "\(.*\)"/\1/p' "$1/model_data.h"))"
