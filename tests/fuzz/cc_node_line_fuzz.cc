// libFuzzer target for the node's line parser (firmware/node/cc_node.c): any bytes, in any
// split, must neither crash nor hang the node, and every answer must be one well-formed frame.
// Input: byte 0 picks the mode; odd: the rest are frame bodies, one per line, and the target
// appends each body's correct CRC so the fuzzer explores the body parser (CY, ID, ST, errors,
// cell histories, forecasts); even: the rest is fed raw. Byte 1 sets the chunk size of feeding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/models/model_file.h"
#include "node_fixture.h"

namespace {

const cyclecast::edge::LoadedNodeModel& fuzz_model() {
  static const auto* model = [] {
    const auto cells = cyclecast::testing::generated_cells(2, 40, 1);
    cyclecast::pipeline::FeatureOptions options;
    options.input_len = 4;  // forecasts after four cycles: reachable by the fuzzer
    options.horizon = 12;
    const auto spec = *cyclecast::pipeline::fit_feature_spec(cells, options);
    const auto windows = cyclecast::pipeline::make_windows(cells, spec, 2);
    auto student = cyclecast::testing::random_student(spec, windows, 4, 3);
    // An interval table, so that v2 forecasts reach the interval's code (the last step at the
    // 2^30 limit).
    student.interval_half_width = {0,       1,       100,     10000,   1 << 20, 1 << 24,
                                   1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 29, 1 << 30};
    auto exported = cyclecast::pipeline::export_model(student, spec, "fuzz");
    auto loaded = cyclecast::edge::load_node_model(exported->blob);
    return loaded.value().release();
  }();
  return *model;
}

void check_line(void*, const char* bytes, size_t length) {
  const std::string line(bytes, length);
  // One frame: at most 255 bytes before '\n', printable body, '*', 8 hex digits of its CRC.
  if (length < 11 || length > 256 || line.back() != '\n' || line[length - 10] != '*') abort();
  const std::string body = line.substr(0, length - 10);
  char crc[9];
  std::snprintf(
      crc, sizeof crc, "%08x",
      cyclecast::models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  if (line.substr(length - 9, 8) != crc) abort();
  for (const char c : body)
    if (c < 0x20 || c > 0x7E) abort();
}

uint32_t clock_hook(void*) {
  return 0;
}

std::string with_crcs(const uint8_t* data, size_t size) {
  std::string out;
  std::string body;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == '\n') {
      char crc[10];
      std::snprintf(
          crc, sizeof crc, "*%08x",
          cyclecast::models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
      out += body + crc + "\n";
      body.clear();
    } else {
      body += static_cast<char>(data[i]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto node = std::make_unique<cc_node>();
  if (size < 2) return 0;
  if (cc_node_init(node.get(), &fuzz_model().view(), cc_node_io{check_line, clock_hook, nullptr}) !=
      CC_NODE_OK)
    abort();
  const std::string input = (data[0] & 1u)
                                ? with_crcs(data + 2, size - 2)
                                : std::string(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t chunk = 1 + data[1] % 64;
  for (size_t i = 0; i < input.size(); i += chunk)
    cc_node_feed(node.get(), input.data() + i, std::min(chunk, input.size() - i));
  return 0;
}
