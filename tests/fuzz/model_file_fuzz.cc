// libFuzzer target for the model-file reader: any bytes must decode or be refused with an
// Error, never crash or read out of bounds. Built and run by the `fuzz` preset
// (tests/CMakeLists.txt); ModelFile.BrokenFileCorpusIsRefusedWithoutCrashing runs a deterministic
// corpus of broken files in every test run besides.
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
