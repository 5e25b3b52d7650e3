// The little-endian writer lays values out least significant byte first, and the reader gives
// them back, refusing (as a value, never by reading past the end) whatever the span lacks.
#include "cyclecast/byte_order.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace cyclecast {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(ByteWriter, WritesLeastSignificantByteFirst) {
  ByteWriter w;
  w.u8(0xAB);
  w.u16(0x0102);
  w.u32(0x03040506u);
  w.u64(0x0708090A0B0C0D0Eull);
  w.i32(-2);
  EXPECT_EQ(w.bytes(), (Bytes{0xAB, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B,
                              0x0A, 0x09, 0x08, 0x07, 0xFE, 0xFF, 0xFF, 0xFF}));
}

TEST(ByteWriter, WritesFloatsAsTheirIeee754Bits) {
  ByteWriter w;
  w.f32(1.0f);
  w.f64(-2.0);
  EXPECT_EQ(w.bytes(), (Bytes{0x00, 0x00, 0x80, 0x3F, 0, 0, 0, 0, 0, 0, 0x00, 0xC0}));
}

TEST(ByteWriter, WritesArraysElementByElementAndRawBytesAsTheyAre) {
  ByteWriter w;
  w.array(std::vector<int8_t>{-1, 2});
  w.array(std::array<int32_t, 2>{1, -1});
  w.raw(Bytes{9, 8});
  EXPECT_EQ(w.bytes(), (Bytes{0xFF, 0x02, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 9, 8}));
}

TEST(ByteReader, ReadsBackEveryValueTheWriterWrote) {
  ByteWriter w;
  w.u8(200);
  w.u16(65535);
  w.u32(4000000000u);
  w.u64(std::numeric_limits<uint64_t>::max() - 1);
  w.i32(std::numeric_limits<int32_t>::min());
  w.f32(-0.1f);
  w.f64(std::numeric_limits<double>::denorm_min());
  w.array(std::vector<float>{1.5f, -2.5f});
  ByteReader r(w.bytes());
  EXPECT_EQ(r.u8(), 200);
  EXPECT_EQ(r.u16(), 65535);
  EXPECT_EQ(r.u32(), 4000000000u);
  EXPECT_EQ(r.u64(), std::numeric_limits<uint64_t>::max() - 1);
  EXPECT_EQ(r.i32(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(r.f32(), -0.1f);
  EXPECT_EQ(r.f64(), std::numeric_limits<double>::denorm_min());
  std::vector<float> floats(2);
  r.array(std::span(floats));
  EXPECT_EQ(floats, (std::vector<float>{1.5f, -2.5f}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ByteReader, KeepsNanPayloadsBitForBit) {
  const Bytes nan_bits{0x01, 0x00, 0xC0, 0x7F};  // a quiet NaN with a payload
  ByteReader r(nan_bits);
  const float v = r.f32();
  EXPECT_TRUE(std::isnan(v));
  ByteWriter w;
  w.f32(v);
  EXPECT_EQ(w.bytes(), nan_bits);
}

TEST(ByteReader, ReadsUpToTheExactEndButNotOneByteFurther) {
  const Bytes bytes{1, 2, 3, 4};
  ByteReader whole(bytes);
  EXPECT_EQ(whole.u32(), 0x04030201u);
  EXPECT_TRUE(whole.ok());
  EXPECT_EQ(whole.remaining(), 0u);
  // One byte short: zero comes back, nothing is consumed and the reader says so.
  ByteReader one_short(std::span<const uint8_t>(bytes).first(3));
  EXPECT_EQ(one_short.u32(), 0u);
  EXPECT_FALSE(one_short.ok());
  EXPECT_EQ(one_short.remaining(), 3u);
}

TEST(ByteReader, StaysFailedAfterAShortRead) {
  const Bytes bytes{1, 2, 3};
  ByteReader r(bytes);
  EXPECT_TRUE(r.raw(4).empty());
  EXPECT_EQ(r.u8(), 0u);  // bytes are there, but the reader has already failed
  EXPECT_EQ(r.u16(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, NothingCanBeReadFromAnEmptySpan) {
  ByteReader r(std::span<const uint8_t>{});
  EXPECT_EQ(r.f64(), 0.0);
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, RawGivesAViewOfTheNextBytesOrNothing) {
  const Bytes bytes{1, 2, 3, 4, 5};
  ByteReader r(bytes);
  const auto first = r.raw(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first.data(), bytes.data());
  EXPECT_EQ(r.raw(0).size(), 0u);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.raw(4).empty());
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, AnArrayLongerThanWhatIsLeftIsRefusedUntouched) {
  const Bytes bytes{1, 0, 0, 0, 2, 0, 0};  // one int32 and three bytes of a second
  ByteReader r(bytes);
  std::vector<int32_t> out{7, 7};
  r.array(std::span(out));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(out, (std::vector<int32_t>{7, 7}));
  EXPECT_EQ(r.remaining(), bytes.size());
}

}  // namespace
}  // namespace cyclecast
