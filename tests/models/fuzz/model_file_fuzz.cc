// libFuzzer target for the model-file reader: any bytes must decode or be refused with an
// Error, never crash or read out of bounds. Build with clang:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Imodels/include \
//     -Ibase/include -Ifirmware/include -I/usr/include/eigen3 tests/models/fuzz/model_file_fuzz.cc
//     \ models/src/*.cc -o model_file_fuzz
// (not in the default build: GCC has no libFuzzer; ModelFile.BrokenFileCorpusIsRefusedWithout
// Crashing runs a deterministic corpus of broken files in every test run instead).
#include <cstddef>
#include <cstdint>
#include <span>

#include "cyclecast/models/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = cyclecast::models::decode_model(std::span<const uint8_t>(data, size));
  if (result.ok()) {
    // A decoded model must be runnable.
    auto model = cyclecast::models::build_model(result->config);
    if (model->layout().size() != result->params.size()) __builtin_trap();
  }
  return 0;
}
