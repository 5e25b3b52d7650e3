// The int8 student's blob: the byte layout of docs/firmware.md ("The `CCQ8` blob"), written and
// read back with the bounds-checked little-endian reader and writer.
#include <cassert>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cyclecast/byte_order.h"
#include "cyclecast/models/model_file.h"  // crc32, shared with the model files
#include "cyclecast/models/quantize.h"

namespace cyclecast::models {

namespace {

constexpr uint8_t kMagic[4] = {'C', 'C', 'Q', '8'};
constexpr uint16_t kBlobVersion = 1;
constexpr uint16_t kBlobVersionWithIntervals = 2;  // version 1 + the interval table
// The version field's high byte holds layout flags; this one: the encoder's rows in pair order.
constexpr uint16_t kFlagEncoderPaired = 0x0100;
constexpr int32_t kMaxHalfWidth = int32_t{1} << 30;
constexpr size_t kBlobHeaderBytes = 4 + 2 * 7 + 4 * 5;  // magic, version + 6 u16, 5 i32
constexpr size_t kCrcBytes = 4;

// Bytes of the arrays for the given dimensions, in blob order.
size_t payload_bytes(size_t in, size_t f, size_t w, size_t h) {
  const size_t weights = f * in + w * f + w * w + h * f + h * w;
  const size_t int32_values = f + w + w + w + w + w + w + h + h + h;
  const size_t shifts = f + w + w + h + h;
  return weights + 4 * int32_values + shifts;
}

// Every array in blob order; `visit` gets (array, element count).
template <typename Student, typename Visit>
void for_each_array(Student& s, Visit&& visit) {
  const size_t in = s.input_size, f = s.features, w = s.width, h = s.horizon;
  visit(s.encoder_weight, f * in);
  visit(s.encoder_multiplier, f);
  visit(s.encoder_shift, f);
  visit(s.lift_weight, w * f);
  visit(s.lift_bias, w);
  visit(s.lift_multiplier, w);
  visit(s.lift_shift, w);
  visit(s.liquid_weight, w * w);
  visit(s.liquid_bias, w);
  visit(s.liquid_multiplier, w);
  visit(s.liquid_shift, w);
  visit(s.liquid_alpha_q24, w);
  visit(s.liquid_beta_q24, w);
  visit(s.bypass_weight, h * f);
  visit(s.head_bias, h);
  visit(s.bypass_multiplier, h);
  visit(s.bypass_shift, h);
  visit(s.head_weight, h * w);
  visit(s.head_multiplier, h);
  visit(s.head_shift, h);
}

// Slot of column i of an n-column row in pair order (cc_student.c's pair_slot): bits 0 and 1
// swapped within whole groups of four. Its own inverse, so it both writes and reads the layout.
size_t pair_slot(size_t i, size_t n) {
  if (i >= (n & ~size_t{3})) return i;
  return (i & ~size_t{3}) | ((i & 1) << 1) | ((i >> 1) & 1);
}

// Rows of n columns, each row's columns moved to their pair-order slots (or back).
std::vector<int8_t> swap_pair_order(const std::vector<int8_t>& rows, size_t n) {
  std::vector<int8_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    out[i - i % n + pair_slot(i % n, n)] = rows[i];
  return out;
}

Error corrupt_blob(std::string message) {
  return make_error(ErrorCode::kCorrupt, "quantized student blob: " + std::move(message));
}

}  // namespace

std::vector<int8_t> encoder_weight_in_layout(const QuantizedStudent& s, uint32_t layout) {
  assert(layout == CC_STUDENT_LAYOUT_NATURAL || layout == CC_STUDENT_LAYOUT_ENCODER_PAIRED);
  if (layout == CC_STUDENT_LAYOUT_NATURAL || s.input_size == 0) return s.encoder_weight;
  return swap_pair_order(s.encoder_weight, s.input_size);
}

std::vector<uint8_t> serialize_quantized_student(const QuantizedStudent& s,
                                                 uint32_t encoder_layout) {
  const bool paired = encoder_layout == CC_STUDENT_LAYOUT_ENCODER_PAIRED;
  ByteWriter out;
  for (const uint8_t byte : kMagic)
    out.u8(byte);
  const bool intervals = !s.interval_half_width.empty();
  out.u16(static_cast<uint16_t>((intervals ? kBlobVersionWithIntervals : kBlobVersion) |
                                (paired ? kFlagEncoderPaired : 0)));
  out.u16(s.input_size);
  out.u16(s.features);
  out.u16(s.width);
  out.u16(s.horizon);
  out.u16(s.euler_steps);
  out.u16(s.hidden_frac_bits);
  out.i32(s.dt_q30);
  out.i32(s.input_scale_mantissa);
  out.i32(s.input_scale_exponent);
  out.i32(s.output_scale_mantissa);
  out.i32(s.output_scale_exponent);
  const std::vector<int8_t> encoder = encoder_weight_in_layout(s, encoder_layout);
  for_each_array(s, [&](const auto& array, size_t) {
    if constexpr (std::is_same_v<std::decay_t<decltype(array)>, std::vector<int8_t>>) {
      out.array(&array == &s.encoder_weight ? encoder : array);
    } else {
      out.array(array);
    }
  });
  if (intervals) out.array(s.interval_half_width);
  out.u32(crc32(out.bytes()));
  return std::move(out.bytes());
}

Result<QuantizedStudent> deserialize_quantized_student(std::span<const uint8_t> bytes) {
  if (bytes.size() < kBlobHeaderBytes + kCrcBytes) return corrupt_blob("truncated header");
  if (!std::equal(std::begin(kMagic), std::end(kMagic), bytes.begin()))
    return make_error(ErrorCode::kParse, "not a quantized student blob (magic is not CCQ8)");
  ByteReader in(bytes.subspan(4));
  const uint16_t field = in.u16();
  const uint16_t version = field & 0xFF, flags = field & 0xFF00;
  if (version != kBlobVersion && version != kBlobVersionWithIntervals)
    return make_error(ErrorCode::kUnsupported,
                      "quantized student blob version " + std::to_string(version) +
                          " is not supported (this build reads versions 1 and 2)");
  if ((flags & ~kFlagEncoderPaired) != 0)
    return make_error(ErrorCode::kUnsupported, "quantized student blob has unknown layout flags " +
                                                   std::to_string(flags >> 8));
  const bool intervals = version == kBlobVersionWithIntervals;
  QuantizedStudent s;
  s.input_size = in.u16();
  s.features = in.u16();
  s.width = in.u16();
  s.horizon = in.u16();
  s.euler_steps = in.u16();
  s.hidden_frac_bits = in.u16();
  s.dt_q30 = in.i32();
  s.input_scale_mantissa = in.i32();
  s.input_scale_exponent = in.i32();
  s.output_scale_mantissa = in.i32();
  s.output_scale_exponent = in.i32();
  const size_t expected = kBlobHeaderBytes +
                          payload_bytes(s.input_size, s.features, s.width, s.horizon) +
                          (intervals ? 4 * size_t{s.horizon} : 0) + kCrcBytes;
  if (bytes.size() != expected)
    return corrupt_blob(std::to_string(bytes.size()) + " bytes where the dimensions need " +
                        std::to_string(expected));
  const auto body = bytes.first(bytes.size() - kCrcBytes);
  if (ByteReader(bytes.subspan(bytes.size() - kCrcBytes)).u32() != crc32(body))
    return corrupt_blob("CRC mismatch");
  for_each_array(s, [&](auto& array, size_t n) {
    array.resize(n);
    in.array(std::span(array));
  });
  if (intervals) {
    s.interval_half_width.resize(s.horizon);
    in.array(std::span(s.interval_half_width));
    for (int32_t w : s.interval_half_width) {
      if (w < 0 || w > kMaxHalfWidth)
        return corrupt_blob("an interval half-width outside [0, 2^30]");
    }
  }
  assert(in.ok());  // proven by the size check above (and the reader cannot read past anyway)
  if ((flags & kFlagEncoderPaired) != 0 && s.input_size > 0)
    s.encoder_weight = swap_pair_order(s.encoder_weight, s.input_size);
  const cc_student_model view = s.model();
  if (cc_student_validate(&view) != CC_OK)
    return corrupt_blob("the model fails cc_student_validate");
  return s;
}

}  // namespace cyclecast::models
