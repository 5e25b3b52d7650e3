// The fast path of cycle payload parsing against its reference (nlohmann's DOM): on every input
// here — the shapes rigs send, JSON edge cases, every truncation and many one-byte corruptions of
// a full record — parse_cycles_payload must give exactly what parse_cycles_payload_reference
// gives: the same records to the last bit, the same rejections, the same reasons. And the fast
// path must really take the messages rigs send, or the comparison would prove nothing.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../../wire/src/protocol_internal.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::protocol {
namespace {

storage::CellInfo rated_cell() {
  storage::CellInfo cell;
  cell.cell_id = "b2c7";
  cell.rig_id = "rig-1";
  cell.rated_capacity_ah = 1.1;
  return cell;
}

const Topic kTopic{TopicKind::kCycles, "rig-1", "b2c7"};
const std::string kSource = "mqtt:cyclecast/v1/rigs/rig-1/cells/b2c7/cycles";

// Bit-exact: the fast path must not round differently from the reference.
bool same_bits(const std::optional<double>& a, const std::optional<double>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || std::memcmp(&*a, &*b, sizeof(double)) == 0;
}

void expect_same_record(const storage::CycleRecord& fast, const storage::CycleRecord& reference) {
  EXPECT_EQ(fast.cell_id, reference.cell_id);
  EXPECT_EQ(fast.cycle, reference.cycle);
  EXPECT_TRUE(same_bits(fast.discharge_capacity_ah, reference.discharge_capacity_ah));
  EXPECT_TRUE(same_bits(fast.charge_capacity_ah, reference.charge_capacity_ah));
  EXPECT_TRUE(same_bits(fast.internal_resistance_ohm, reference.internal_resistance_ohm));
  EXPECT_TRUE(same_bits(fast.temperature_min_c, reference.temperature_min_c));
  EXPECT_TRUE(same_bits(fast.temperature_avg_c, reference.temperature_avg_c));
  EXPECT_TRUE(same_bits(fast.temperature_max_c, reference.temperature_max_c));
  EXPECT_TRUE(same_bits(fast.charge_time_min, reference.charge_time_min));
  EXPECT_EQ(fast.measured_at_ms, reference.measured_at_ms);
  EXPECT_EQ(fast.source, reference.source);
}

void expect_same_as_reference(const std::string& payload, const Limits& limits = {}) {
  SCOPED_TRACE("payload: " + payload);
  const auto cell = rated_cell();
  const auto fast = parse_cycles_payload(payload, kTopic, &cell, limits);
  const auto reference = parse_cycles_payload_reference(payload, kTopic, &cell, limits);
  ASSERT_EQ(fast.ok(), reference.ok());
  if (!reference.ok()) {
    EXPECT_EQ(fast.error().code, reference.error().code);
    EXPECT_EQ(fast.error().message, reference.error().message);
    return;
  }
  ASSERT_EQ(fast->records.size(), reference->records.size());
  for (std::size_t i = 0; i < fast->records.size(); ++i) {
    expect_same_record(fast->records[i], reference->records[i]);
  }
  ASSERT_EQ(fast->rejected.size(), reference->rejected.size());
  for (std::size_t i = 0; i < fast->rejected.size(); ++i) {
    EXPECT_EQ(fast->rejected[i].cycle, reference->rejected[i].cycle);
    EXPECT_EQ(fast->rejected[i].record_json, reference->rejected[i].record_json);
    EXPECT_EQ(fast->rejected[i].reason, reference->rejected[i].reason);
  }
}

bool fast_path_takes(const std::string& payload, const Limits& limits = {}) {
  return detail::parse_cycles_fast(payload, kTopic, rated_cell(), limits, kSource).has_value();
}

const std::string kFull =
    R"({"cycle":12,"qd_ah":1.0705,"qc_ah":1.0712,"ir_ohm":0.0165,"tmin_c":29.5,)"
    R"("tavg_c":31.25,"tmax_c":35.0,"chargetime_min":10.33,"measured_at_ms":1700000000000})";

TEST(ProtocolFastPath, TakesWhatRigsSendAndAgreesWithTheReference) {
  std::vector<storage::CycleRecord> records;
  for (int c = 1; c <= 100; ++c) {
    storage::CycleRecord r;
    r.cell_id = "b2c7";
    r.cycle = c;
    r.discharge_capacity_ah = 1.1 - 0.0013 * c;
    r.charge_capacity_ah = 1.1 - 0.0011 * c;
    r.internal_resistance_ohm = 0.0165 + 1e-6 * c;
    r.temperature_min_c = 29.0 + 0.01 * c;
    r.temperature_avg_c = 31.0 + 0.01 * c;
    r.temperature_max_c = 35.0 + 0.01 * c;
    if (c % 3 != 0) r.charge_time_min = 10.0 + c / 7.0;
    if (c % 2 == 0) r.measured_at_ms = 1700000000000 + c;
    records.push_back(r);
  }
  const std::string array = serialize_cycles(records);
  EXPECT_TRUE(fast_path_takes(array));
  expect_same_as_reference(array);
  EXPECT_TRUE(fast_path_takes(serialize_cycle(records[4])));
  expect_same_as_reference(serialize_cycle(records[4]));
  EXPECT_TRUE(fast_path_takes(kFull));
  expect_same_as_reference(kFull);
}

TEST(ProtocolFastPath, TakesWhitespaceNullsIntegersAndExponents) {
  const std::string payloads[] = {
      " \t\r\n[ {\"cycle\" : 1 , \"qd_ah\" : 1 } ,\n{\"qd_ah\":1e0,\"cycle\":2} ] \n",
      R"({"cycle":3,"qd_ah":1.0,"qc_ah":null,"ir_ohm":null,"measured_at_ms":null})",
      R"({"cycle":3,"qd_ah":10.5e-1,"ir_ohm":0,"tmin_c":-0,"tavg_c":-0.0,"tmax_c":2.5E+1})",
      R"({"cycle":1000000,"qd_ah":0.000000000000000000000000000001})",
      R"({"cycle":4,"qd_ah":1.0,"ir_ohm":1e-320})",  // subnormal: from_chars and strtod agree
      R"([{"cycle":9,"qd_ah":1.0},{"cycle":2,"qd_ah":1.0},{"cycle":5,"qd_ah":1.0}])",
  };
  for (const auto& payload : payloads) {
    expect_same_as_reference(payload);
  }
  EXPECT_TRUE(fast_path_takes(payloads[0]));
  EXPECT_TRUE(fast_path_takes(payloads[1]));
  EXPECT_TRUE(fast_path_takes(payloads[2]));
  EXPECT_TRUE(fast_path_takes(payloads[3]));
  EXPECT_TRUE(fast_path_takes(payloads[5]));  // out of order but no repeat
}

TEST(ProtocolFastPath, NegativeZeroIntegerReadsAsPositiveZeroLikeTheReference) {
  // nlohmann reads "-0" as the integer 0 and "-0.0" as the double -0.0.
  const auto cell = rated_cell();
  const auto parsed =
      parse_cycles_payload(R"({"cycle":1,"qd_ah":1.0,"ir_ohm":-0,"tmin_c":-0.0})", kTopic, &cell);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(std::signbit(*parsed->records[0].internal_resistance_ohm));
  EXPECT_TRUE(std::signbit(*parsed->records[0].temperature_min_c));
}

TEST(ProtocolFastPath, LeavesEveryUnusualInputToTheReference) {
  const std::string payloads[] = {
      // escapes: the reference decodes "cycl\u0065" to "cycle" and accepts it
      R"({"cycl\u0065":1,"qd_ah":1.0})",
      R"({"cycle":1,"qd_ah":1.0,"v\"oltage":1})",
      // duplicate keys: the reference keeps the last value
      R"({"cycle":1,"qd_ah":9.0,"qd_ah":1.0})",
      R"({"cycle":1,"cycle":2,"qd_ah":1.0})",
      // integers beyond 64 bits become doubles in the reference
      R"({"cycle":1,"qd_ah":1.0,"ir_ohm":0.5,"tmin_c":-99999999999999999999})",
      R"({"cycle":99999999999999999999,"qd_ah":1.0})",
      R"({"cycle":1,"qd_ah":0.00000000000000000000000000000000000000000000000000000001e-300})",
      R"({"cycle":1,"qd_ah":1e-400})",
      // nesting, other types, strings as values
      R"({"cycle":1,"qd_ah":{"value":1.0}})",
      R"({"cycle":1,"qd_ah":[1.0]})",
      R"({"cycle":1,"qd_ah":true})",
      R"({"cycle":1,"qd_ah":"1.0"})",
      R"([[{"cycle":1,"qd_ah":1.0}]])",
      std::string(2000, '[') + std::string(2000, ']'),
      // syntax the grammar forbids
      R"({"cycle":01,"qd_ah":1.0})",
      R"({"cycle":1,"qd_ah":1.})",
      R"({"cycle":1,"qd_ah":.5})",
      R"({"cycle":1,"qd_ah":+1})",
      R"({"cycle":1,"qd_ah":1e})",
      R"({"cycle":1,"qd_ah":-})",
      R"({"cycle":1,"qd_ah":1.0,})",
      R"([{"cycle":1,"qd_ah":1.0},])",
      R"({"cycle":1 "qd_ah":1.0})",
      R"({'cycle':1,'qd_ah':1.0})",
      R"({"cycle":1,"qd_ah":nul})",
      R"({"cycle":1,"qd_ah":Infinity})",
      "\xef\xbb\xbf{\"cycle\":1,\"qd_ah\":1.0}",  // UTF-8 byte order mark
      std::string(R"({"cycle":1,"qd_ah":1.0})") + '\0',
      "{\"cycle\":1,\"qd_ah\":1.0,\"t\xc3\xa9\":1}",
      "{\"cycle\":1,\"qd_ah\":1.0,\"t\x01\":1}",
      // refused records, repeated cycles, empty things
      R"([{"cycle":1,"qd_ah":1.0},{"cycle":2,"qd_ah":-1.0},{"cycle":3,"qd_ah":1.0}])",
      R"([{"cycle":1,"qd_ah":1.0},{"cycle":1,"qd_ah":1.0}])",
      R"([{"cycle":2,"qd_ah":1.0},{"cycle":1,"qd_ah":1.0},{"cycle":2,"qd_ah":1.1}])",
      R"({"cycle":1,"qd_ah":1.0,"measured_at_ms":1700000000000.0})",
      R"({"cycle":1,"qd_ah":1.0,"measured_at_ms":17})",
      R"({"cycle":1.0,"qd_ah":1.0})",
      R"({"cycle":-0,"qd_ah":1.0})",
      R"({"cycle":1,"qd_ah":null})",
      R"({"cycle":null,"qd_ah":1.0})",
      R"({"qd_ah":1.0})",
      R"({"cycle":1})",
      "{}",
      "[]",
      "[{}]",
      "",
      " ",
      "null",
      "[null]",
      R"([{"cycle":1,"qd_ah":1.0}] [])",
  };
  for (const auto& payload : payloads) {
    EXPECT_FALSE(fast_path_takes(payload)) << payload;
    expect_same_as_reference(payload);
  }
}

TEST(ProtocolFastPath, AgreesOnEveryTruncationOfARecord) {
  const std::string array = "[" + kFull + "," + kFull.substr(0, 10) + "13" + kFull.substr(12) + "]";
  for (std::size_t n = 0; n <= array.size(); ++n) {
    expect_same_as_reference(array.substr(0, n));
  }
}

TEST(ProtocolFastPath, AgreesOnEveryOneByteCorruptionOfARecord) {
  // Bytes that change the meaning: structure, number syntax, escapes, quotes and high bytes.
  const std::string replacements = "{}[],:\"\\ 0159.-+eEnx\x7f\xff";
  for (std::size_t i = 0; i < kFull.size(); ++i) {
    for (const char c : replacements) {
      std::string corrupted = kFull;
      corrupted[i] = c;
      expect_same_as_reference(corrupted);
    }
  }
}

TEST(ProtocolFastPath, HonoursTheLimitsLikeTheReference) {
  Limits limits;
  limits.max_records_per_message = 2;
  limits.max_payload_bytes = 100;
  const std::string two = R"([{"cycle":1,"qd_ah":1.0},{"cycle":2,"qd_ah":1.0}])";
  const std::string three = R"([{"cycle":1,"qd_ah":1.0},{"cycle":2,"qd_ah":1.0},)"
                            R"({"cycle":3,"qd_ah":1.0}])";
  EXPECT_TRUE(fast_path_takes(two, limits));
  EXPECT_FALSE(fast_path_takes(three, limits));
  EXPECT_FALSE(fast_path_takes(two + std::string(60, ' '), limits));
  expect_same_as_reference(two, limits);
  expect_same_as_reference(three, limits);
  expect_same_as_reference(two + std::string(60, ' '), limits);
}

TEST(ProtocolFastPath, UnknownCellAndWrongTopicGoToTheReference) {
  const auto cell = rated_cell();
  auto unknown = parse_cycles_payload(kFull, kTopic, nullptr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message.substr(0, 19), "unknown cell 'b2c7'");
  auto meta = parse_cycles_payload(kFull, Topic{TopicKind::kCellMeta, "rig-1", "b2c7"}, &cell);
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.error().message, "not a cycles topic");
}

TEST(ProtocolSerialise, WritesShortestRoundTripDigitsAndMarksIntegralDoubles) {
  storage::CycleRecord r;
  r.cycle = 7;
  r.discharge_capacity_ah = 1.0;
  r.charge_capacity_ah = 0.1;
  r.internal_resistance_ohm = 1e-05;
  r.temperature_max_c = 1e20;
  r.charge_time_min = 10.332668333333277;
  r.measured_at_ms = 1700000000000;
  EXPECT_EQ(serialize_cycle(r),
            R"({"cycle":7,"qd_ah":1.0,"qc_ah":0.1,"ir_ohm":1e-05,"tmax_c":1e+20,)"
            R"("chargetime_min":10.332668333333277,"measured_at_ms":1700000000000})");
}

TEST(ProtocolSerialise, EveryDoubleReadsBackBitExact) {
  const double values[] = {1.0680572,
                           0.017542101,
                           30.3635449709479,
                           1e-300,
                           4.9406564584124654e-324,
                           std::numeric_limits<double>::max(),
                           123456789012345678.0,
                           -0.0,
                           0.30000000000000004};
  for (const double v : values) {
    storage::CycleRecord r;
    r.cycle = 1;
    r.discharge_capacity_ah = 1.0;
    r.temperature_avg_c = v;
    const std::string text = serialize_cycle(r);
    const auto cell = rated_cell();
    // Out-of-range temperatures are refused; the others must read back to the same bits.
    const auto parsed = parse_cycles_payload_reference(text, kTopic, &cell);
    ASSERT_TRUE(parsed.ok()) << text;
    if (v >= kMinTemperatureC && v <= kMaxTemperatureC) {
      ASSERT_EQ(parsed->records.size(), 1u) << text;
      EXPECT_TRUE(same_bits(parsed->records[0].temperature_avg_c, v)) << text;
    } else {
      ASSERT_EQ(parsed->rejected.size(), 1u) << text;
    }
  }
}

}  // namespace
}  // namespace cyclecast::protocol
