// libFuzzer target for the int8 student blob (the file a node is flashed with and a bundle
// carries): any bytes must deserialize or be refused with an Error, never crash or read out of
// bounds, and a blob that is accepted must run. Each input is tried twice: as given, and with a
// correct CRC-32 appended, so that the fuzzer reaches the field and model checks behind the
// checksum instead of stopping at it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cyclecast/models/model_file.h"
#include "cyclecast/models/quantize.h"

namespace {

void check(std::span<const uint8_t> bytes) {
  auto student = cyclecast::models::deserialize_quantized_student(bytes);
  if (!student.ok()) return;
  // Accepted blobs passed cc_student_validate: one forecast must run and round-trip.
  const Eigen::MatrixXf input = Eigen::MatrixXf::Constant(student->input_size, 1, 0.5f);
  if (!cyclecast::models::run_quantized(*student, input).ok()) __builtin_trap();
  // The reader gives the natural layout back; the layout flag (byte 5) says how it was stored.
  const uint32_t layout =
      (bytes[5] & 1u) != 0 ? CC_STUDENT_LAYOUT_ENCODER_PAIRED : CC_STUDENT_LAYOUT_NATURAL;
  if (cyclecast::models::serialize_quantized_student(*student, layout) !=
      std::vector<uint8_t>(bytes.begin(), bytes.end())) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  check(bytes);
  std::vector<uint8_t> sealed(bytes.begin(), bytes.end());
  const uint32_t crc = cyclecast::models::crc32(bytes);
  for (int i = 0; i < 4; ++i)
    sealed.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  check(sealed);
  return 0;
}
