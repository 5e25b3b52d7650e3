// Little-endian bytes for the project's binary formats (model files, int8 student blobs,
// node-model blobs): one writer that lays values out, and one reader that checks what is left
// before every read, so a short or hostile input fails as a value instead of being read past.
//
// Integers are two's complement and floats IEEE-754 (pinned below), least significant byte
// first, whatever the host's own byte order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

namespace cyclecast {

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4,
              "binary formats store f32 as IEEE-754 single precision");
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8,
              "binary formats store f64 as IEEE-754 double precision");

// A value the formats store: an integer or floating-point type of 1, 2, 4 or 8 bytes (not bool).
template <typename T>
concept ByteOrderValue = std::is_arithmetic_v<T> && !std::is_same_v<T, bool> &&
                         (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);

// The unsigned integer of T's size: a value's bits are shifted through it byte by byte.
template <ByteOrderValue T>
using ByteOrderBits =
    std::conditional_t<sizeof(T) == 1, uint8_t,
                       std::conditional_t<sizeof(T) == 2, uint16_t,
                                          std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

// Appends little-endian values to a byte vector it owns. Writes cannot fail (short of memory).
class ByteWriter {
 public:
  void u8(uint8_t v) { put(v); }
  void u16(uint16_t v) { put(v); }
  void u32(uint32_t v) { put(v); }
  void u64(uint64_t v) { put(v); }
  void i32(int32_t v) { put(v); }
  void f32(float v) { put(v); }
  void f64(double v) { put(v); }
  // Every element of `values` (a vector, array or span), in order.
  template <std::ranges::input_range Range>
  requires ByteOrderValue<std::ranges::range_value_t<Range>>
  void array(const Range& values) {
    for (const auto v : values)
      put(v);
  }
  // Bytes as they are.
  void raw(std::span<const uint8_t> bytes) {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  void reserve(size_t total_bytes) { bytes_.reserve(total_bytes); }

  // What has been written so far; the writer keeps appending to it.
  std::vector<uint8_t>& bytes() { return bytes_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  template <ByteOrderValue T>
  void put(T value) {
    using Bits = ByteOrderBits<T>;
    const auto bits = std::bit_cast<Bits>(value);
    for (size_t i = 0; i < sizeof(T); ++i)
      bytes_.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  }

  std::vector<uint8_t> bytes_;
};

// Reads little-endian values from a span it does not own (the bytes must outlive the reader).
// Every read first checks that enough bytes are left. A read that would go past the end reads
// nothing, returns zero (or an empty span) and leaves the reader failed: ok() turns false and
// every later read fails too, so a sequence of reads can be checked once, at its end, before
// any of the values is trusted.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint8_t u8() { return get<uint8_t>(); }
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  int32_t i32() { return get<int32_t>(); }
  float f32() { return get<float>(); }
  double f64() { return get<double>(); }
  // out.size() values into `out`; on failure `out` is left as it was.
  template <ByteOrderValue T>
  void array(std::span<T> out) {
    // Divided rather than multiplied, so that no count can wrap around.
    if (!ok_ || out.size() > remaining() / sizeof(T)) {
      ok_ = false;
      return;
    }
    for (T& v : out)
      v = get<T>();
  }
  // The next `count` bytes, as a view into the reader's span.
  std::span<const uint8_t> raw(size_t count) {
    if (!take(count)) return {};
    return bytes_.subspan(pos_ - count, count);
  }

  // True while no read has failed.
  [[nodiscard]] bool ok() const { return ok_; }
  // Bytes not read yet (those after a failed read included).
  [[nodiscard]] size_t remaining() const { return bytes_.size() - pos_; }

 private:
  template <ByteOrderValue T>
  T get() {
    using Bits = ByteOrderBits<T>;
    if (!take(sizeof(T))) return T{};
    Bits bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      bits = static_cast<Bits>(bits | (static_cast<Bits>(bytes_[pos_ - sizeof(T) + i]) << (8 * i)));
    return std::bit_cast<T>(bits);
  }
  bool take(size_t count) {
    if (!ok_ || count > remaining()) {
      ok_ = false;
      return false;
    }
    pos_ += count;
    return true;
  }

  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace cyclecast
