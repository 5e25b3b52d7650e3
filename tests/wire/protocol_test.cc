// Protocol v1 (docs/protocol.md): every validation rule of topics, cycle payloads, cell metadata
// and acks, each malformed input with the exact reason it must be refused with.
#include "cyclecast/wire/protocol.h"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cyclecast::protocol {
namespace {

storage::CellInfo rated_cell(double rated_ah = 1.1) {
  storage::CellInfo cell;
  cell.cell_id = "b2c7";
  cell.rig_id = "rig-1";
  cell.rated_capacity_ah = rated_ah;
  return cell;
}

Topic cycles(std::string cell = "b2c7") {
  return Topic{TopicKind::kCycles, "rig-1", cell};
}
Topic meta(std::string cell = "b2c7") {
  return Topic{TopicKind::kCellMeta, "rig-1", cell};
}

TEST(ProtocolTopic, ParsesCyclesMetaAndAckTopics) {
  auto t = parse_topic("cyclecast/v1/rigs/rig-1/cells/b2c7/cycles");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->kind, TopicKind::kCycles);
  EXPECT_EQ(t->rig_id, "rig-1");
  EXPECT_EQ(t->cell_id, "b2c7");
  auto m = parse_topic(meta_topic("r", "c.1_x"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, TopicKind::kCellMeta);
  EXPECT_EQ(m->cell_id, "c.1_x");
  auto a = parse_topic(acks_topic("rig-9"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind, TopicKind::kAcks);
  EXPECT_EQ(a->rig_id, "rig-9");
}

TEST(ProtocolTopic, BuildersAndSubscriptionsFollowTheLayout) {
  EXPECT_EQ(cycles_topic("r1", "c1"), "cyclecast/v1/rigs/r1/cells/c1/cycles");
  EXPECT_EQ(meta_topic("r1", "c1"), "cyclecast/v1/rigs/r1/cells/c1/meta");
  EXPECT_EQ(acks_topic("r1"), "cyclecast/v1/rigs/r1/acks");
  EXPECT_EQ(status_topic("d"), "cyclecast/v1/daemons/d/status");
  EXPECT_EQ(cycles_subscription(), "cyclecast/v1/rigs/+/cells/+/cycles");
  EXPECT_EQ(meta_subscription(), "cyclecast/v1/rigs/+/cells/+/meta");
}

struct BadTopic {
  const char* name;
  std::string topic;
  std::string reason;
};

class ProtocolBadTopic : public ::testing::TestWithParam<BadTopic> {};

TEST_P(ProtocolBadTopic, IsRefusedWithItsReason) {
  auto t = parse_topic(GetParam().topic);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(t.error().message, GetParam().reason);
}

const std::string kLayout =
    "topic must be cyclecast/v1/rigs/{rig}/cells/{cell}/{cycles|meta} or .../rigs/{rig}/acks";

INSTANTIATE_TEST_SUITE_P(
    Corpus, ProtocolBadTopic,
    ::testing::Values(
        BadTopic{"WrongRoot", "other/v1/rigs/r/cells/c/cycles",
                 "topic does not start with 'cyclecast/v1/'"},
        BadTopic{"WrongVersion", "cyclecast/v2/rigs/r/cells/c/cycles",
                 "topic does not start with 'cyclecast/v1/'"},
        BadTopic{"NoRigs", "cyclecast/v1/labs/r/cells/c/cycles",
                 "topic must be cyclecast/v1/rigs/{rig}/..."},
        BadTopic{"TooShort", "cyclecast/v1/rigs/r", "topic must be cyclecast/v1/rigs/{rig}/..."},
        BadTopic{"TooManySegments", "cyclecast/v1/rigs/r/cells/c/cycles/extra", kLayout},
        BadTopic{"UnknownKind", "cyclecast/v1/rigs/r/cells/c/voltages",
                 "unknown record kind 'voltages' (expected cycles or meta)"},
        BadTopic{"EmptyRig", "cyclecast/v1/rigs//cells/c/cycles", "rig empty id"},
        BadTopic{"EmptyCell", "cyclecast/v1/rigs/r/cells//cycles", "cell empty id"},
        BadTopic{"CellTooLong", "cyclecast/v1/rigs/r/cells/" + std::string(65, 'c') + "/cycles",
                 "cell id of 65 characters exceeds 64"},
        BadTopic{"RigWithSpace", "cyclecast/v1/rigs/rig 1/cells/c/cycles",
                 "rig id contains a character outside [A-Za-z0-9_.-] (byte 32)"},
        BadTopic{"CellWithUtf8", "cyclecast/v1/rigs/r/cells/c\xc3\xa9/cycles",
                 "cell id contains a character outside [A-Za-z0-9_.-] (byte 195)"},
        BadTopic{"CellStartingWithDot", "cyclecast/v1/rigs/r/cells/.hidden/cycles",
                 "cell id '.hidden' starts with '.'"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ProtocolCycles, ParsesOneRecordWithEveryField) {
  const std::string payload =
      R"({"cycle":12,"qd_ah":1.0705,"qc_ah":1.0712,"ir_ohm":0.0165,"tmin_c":29.5,)"
      R"("tavg_c":31.25,"tmax_c":35.0,"chargetime_min":10.33,"measured_at_ms":1700000000000})";
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(payload, cycles(), &cell);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->records.size(), 1u);
  EXPECT_TRUE(parsed->rejected.empty());
  const auto& r = parsed->records[0];
  EXPECT_EQ(r.cell_id, "b2c7");
  EXPECT_EQ(r.cycle, 12);
  EXPECT_DOUBLE_EQ(r.discharge_capacity_ah, 1.0705);
  EXPECT_DOUBLE_EQ(*r.charge_capacity_ah, 1.0712);
  EXPECT_DOUBLE_EQ(*r.internal_resistance_ohm, 0.0165);
  EXPECT_DOUBLE_EQ(*r.temperature_min_c, 29.5);
  EXPECT_DOUBLE_EQ(*r.temperature_avg_c, 31.25);
  EXPECT_DOUBLE_EQ(*r.temperature_max_c, 35.0);
  EXPECT_DOUBLE_EQ(*r.charge_time_min, 10.33);
  EXPECT_EQ(*r.measured_at_ms, 1700000000000);
  EXPECT_EQ(r.source, "mqtt:cyclecast/v1/rigs/rig-1/cells/b2c7/cycles");
}

TEST(ProtocolCycles, OptionalFieldsMayBeAbsentOrNull) {
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(R"({"cycle":1,"qd_ah":1.0,"ir_ohm":null})", cycles(), &cell);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->records.size(), 1u);
  EXPECT_FALSE(parsed->records[0].internal_resistance_ohm.has_value());
  EXPECT_FALSE(parsed->records[0].charge_capacity_ah.has_value());
  EXPECT_FALSE(parsed->records[0].measured_at_ms.has_value());
}

TEST(ProtocolCycles, AcceptsRecordedDefectsOfRealRigs) {
  // Values the reference data really contains: 1.54 Ah on a 1.1 Ah cell after an interruption,
  // 1290 min charge time, internal resistance exactly 0.
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(
      R"([{"cycle":253,"qd_ah":1.54,"chargetime_min":1290.4},{"cycle":331,"qd_ah":1.0,"ir_ohm":0}])",
      cycles(), &cell);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->records.size(), 2u);
  EXPECT_TRUE(parsed->rejected.empty());
}

TEST(ProtocolCycles, ArrayKeepsGoodRecordsAndRejectsBadOnesWithTheirCycle) {
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(
      R"([{"cycle":1,"qd_ah":1.07},{"cycle":2,"qd_ah":-1},{"cycle":3,"qd_ah":1.06}])", cycles(),
      &cell);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->records.size(), 2u);
  EXPECT_EQ(parsed->records[0].cycle, 1);
  EXPECT_EQ(parsed->records[1].cycle, 3);
  ASSERT_EQ(parsed->rejected.size(), 1u);
  EXPECT_EQ(parsed->rejected[0].cycle, 2);
  EXPECT_EQ(parsed->rejected[0].record_json, R"({"cycle":2,"qd_ah":-1})");
}

TEST(ProtocolCycles, SerialisedRecordsParseBackToTheSameMeasurement) {
  storage::CycleRecord r;
  r.cell_id = "b2c7";
  r.cycle = 77;
  r.discharge_capacity_ah = 1.0680572;
  r.charge_capacity_ah = 1.0675609;
  r.internal_resistance_ohm = 0.017542101;
  r.temperature_max_c = 31.487127;
  r.temperature_avg_c = 30.3635449709479;
  r.temperature_min_c = 28.999689;
  r.charge_time_min = 10.332668333333277;
  r.measured_at_ms = 1500000000123;
  storage::CycleRecord second = r;
  second.cycle = 78;
  second.charge_capacity_ah.reset();
  const storage::CycleRecord both[] = {r, second};
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(serialize_cycles(both), cycles(), &cell);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->records.size(), 2u);
  EXPECT_TRUE(parsed->records[0].same_measurement(r));
  EXPECT_TRUE(parsed->records[1].same_measurement(second));
  auto one = parse_cycles_payload(serialize_cycle(r), cycles(), &cell);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->records.at(0).same_measurement(r));
}

// Messages refused as a whole: the error's message is the recorded reason.
struct BadMessage {
  const char* name;
  std::string payload;
  std::string reason;
};

class ProtocolBadMessage : public ::testing::TestWithParam<BadMessage> {};

TEST_P(ProtocolBadMessage, IsRefusedWholeWithItsReason) {
  const auto cell = rated_cell();
  Limits limits;
  limits.max_payload_bytes = 4096;
  limits.max_records_per_message = 3;
  auto parsed = parse_cycles_payload(GetParam().payload, cycles(), &cell, limits);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.error().message.substr(0, GetParam().reason.size()), GetParam().reason)
      << parsed.error().message;
}

const std::string kRecord = R"({"cycle":1,"qd_ah":1.0})";

INSTANTIATE_TEST_SUITE_P(
    Corpus, ProtocolBadMessage,
    ::testing::Values(
        BadMessage{"Empty", "", "empty payload"},
        BadMessage{"TooLarge", "[" + std::string(5000, ' ') + "]",
                   "payload of 5002 bytes exceeds the limit of 4096 bytes"},
        BadMessage{"NotJson", "cycle=1 qd=1.0", "invalid JSON: "},
        BadMessage{"TruncatedJson", R"({"cycle":1,"qd_ah":)", "invalid JSON: "},
        BadMessage{"NanLiteral", R"({"cycle":1,"qd_ah":NaN})", "invalid JSON: "},
        BadMessage{"TrailingGarbage", kRecord + "x", "invalid JSON: "},
        BadMessage{"QdOverflowsToInfinity", R"({"cycle":1,"qd_ah":1e999})",
                   "invalid JSON: a number overflows to infinity"},
        BadMessage{"IrOverflowsToInfinity", R"([{"cycle":1,"qd_ah":1.0,"ir_ohm":-1e400}])",
                   "invalid JSON: a number overflows to infinity"},
        BadMessage{"BareNumber", "42",
                   "payload must be a JSON object or an array of objects, got number"},
        BadMessage{"BareString", R"("hello")",
                   "payload must be a JSON object or an array of objects, got string"},
        BadMessage{"EmptyArray", "[]", "empty array: no records"},
        BadMessage{"TooManyRecords",
                   "[" + kRecord + "," + kRecord + "," + kRecord + "," + kRecord + "]",
                   "4 records in one message exceed the limit of 3"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ProtocolCycles, UnknownCellRefusesTheMessageNamingTheMetaTopic) {
  auto parsed = parse_cycles_payload(kRecord, cycles("b9c9"), nullptr);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "unknown cell 'b9c9': publish its metadata on "
            "cyclecast/v1/rigs/rig-1/cells/b9c9/meta first");
}

// Single records refused (inside an otherwise valid message) with their reason.
struct BadRecord {
  const char* name;
  std::string record;
  std::string reason;
};

class ProtocolBadRecord : public ::testing::TestWithParam<BadRecord> {};

TEST_P(ProtocolBadRecord, IsRejectedWithItsReasonWhileTheOthersStand) {
  const auto cell = rated_cell(1.1);
  const std::string payload = "[" + GetParam().record + R"(,{"cycle":500,"qd_ah":1.0}])";
  auto parsed = parse_cycles_payload(payload, cycles(), &cell);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->records.size(), 1u);
  EXPECT_EQ(parsed->records[0].cycle, 500);
  ASSERT_EQ(parsed->rejected.size(), 1u);
  EXPECT_EQ(parsed->rejected[0].reason, GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ProtocolBadRecord,
    ::testing::Values(
        BadRecord{"NotAnObject", "[1,2]", "record must be a JSON object, got array"},
        BadRecord{"NullRecord", "null", "record must be a JSON object, got null"},
        BadRecord{"UnknownField", R"({"cycle":1,"qd_ah":1.0,"voltage":3.3})",
                  "unknown field 'voltage'"},
        BadRecord{"MissingCycle", R"({"qd_ah":1.0})", "missing required field 'cycle'"},
        BadRecord{"CycleAsString", R"({"cycle":"7","qd_ah":1.0})",
                  "field 'cycle' must be an integer, got string"},
        BadRecord{"CycleFractional", R"({"cycle":7.5,"qd_ah":1.0})",
                  "field 'cycle' must be an integer, got 7.5"},
        BadRecord{"CycleZero", R"({"cycle":0,"qd_ah":1.0})",
                  "field 'cycle' must be in [1, 1000000], got 0"},
        BadRecord{"CycleNegative", R"({"cycle":-3,"qd_ah":1.0})",
                  "field 'cycle' must be in [1, 1000000], got -3"},
        BadRecord{"CycleHuge", R"({"cycle":18446744073709551615,"qd_ah":1.0})",
                  "field 'cycle' must be <= 1000000, got 18446744073709551615"},
        BadRecord{"MissingQd", R"({"cycle":1})", "missing required field 'qd_ah'"},
        BadRecord{"NullQd", R"({"cycle":1,"qd_ah":null})", "missing required field 'qd_ah'"},
        BadRecord{"QdAsString", R"({"cycle":1,"qd_ah":"1.0"})",
                  "field 'qd_ah' must be a number or null, got string"},
        BadRecord{"QdAsBool", R"({"cycle":1,"qd_ah":true})",
                  "field 'qd_ah' must be a number or null, got boolean"},
        BadRecord{"QdZero", R"({"cycle":1,"qd_ah":0})",
                  "field 'qd_ah' = 0 Ah is out of range (0, 1.65] for a cell "
                  "rated 1.1 Ah"},
        BadRecord{"QdAboveRatedLimit", R"({"cycle":1,"qd_ah":2.5})",
                  "field 'qd_ah' = 2.5 Ah is out of range (0, 1.65] for a cell "
                  "rated 1.1 Ah"},
        BadRecord{"QdInMilliampHours", R"({"cycle":1,"qd_ah":1070})",
                  "field 'qd_ah' = 1070 Ah is out of range (0, 1.65] for a "
                  "cell rated 1.1 Ah"},
        BadRecord{"QcNegative", R"({"cycle":1,"qd_ah":1.0,"qc_ah":-0.1})",
                  "field 'qc_ah' = -0.1 Ah is out of range (0, 1.65] for a cell "
                  "rated 1.1 Ah"},
        BadRecord{"IrNegative", R"({"cycle":1,"qd_ah":1.0,"ir_ohm":-0.01})",
                  "field 'ir_ohm' = -0.01 ohm is out of range [0, 1]"},
        BadRecord{"IrInMilliohm", R"({"cycle":1,"qd_ah":1.0,"ir_ohm":16.5})",
                  "field 'ir_ohm' = 16.5 ohm is out of range [0, 1]"},
        BadRecord{"TemperatureInKelvin", R"({"cycle":1,"qd_ah":1.0,"tmax_c":305.1})",
                  "field 'tmax_c' = 305.1 C is out of range [-40, 150]"},
        BadRecord{"TemperatureTooCold", R"({"cycle":1,"qd_ah":1.0,"tmin_c":-80})",
                  "field 'tmin_c' = -80 C is out of range [-40, 150]"},
        BadRecord{"TemperaturesOutOfOrder",
                  R"({"cycle":1,"qd_ah":1.0,"tmin_c":35,"tavg_c":30,"tmax_c":40})",
                  "temperatures out of order: need tmin_c <= tavg_c <= tmax_c"},
        BadRecord{"ChargeTimeZero", R"({"cycle":1,"qd_ah":1.0,"chargetime_min":0})",
                  "field 'chargetime_min' = 0 min is out of range (0, 10000]"},
        BadRecord{"ChargeTimeInSeconds", R"({"cycle":1,"qd_ah":1.0,"chargetime_min":620000})",
                  "field 'chargetime_min' = 620000 min is out of range (0, 10000]"},
        BadRecord{"MeasuredAtInSeconds", R"({"cycle":1,"qd_ah":1.0,"measured_at_ms":1700000000})",
                  "field 'measured_at_ms' must be in [946684800000, 4102444800000], got "
                  "1700000000"},
        BadRecord{"MeasuredAtFractional",
                  R"({"cycle":1,"qd_ah":1.0,"measured_at_ms":1700000000000.5})",
                  "field 'measured_at_ms' must be an integer, got 1700000000000.5"},
        BadRecord{"RepeatedCycleInOneMessage", R"({"cycle":500,"qd_ah":1.0})",
                  "cycle 500 appears twice in one message"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ProtocolMeta, ParsesCellMetadata) {
  auto cell =
      parse_cell_meta(R"({"rated_capacity_ah":1.1,"chemistry":"LFP","policy":"5.4C(40%)-3.6C",)"
                      R"("metadata":{"batch":"2017-06-30"}})",
                      meta());
  ASSERT_TRUE(cell.ok()) << cell.error().message;
  EXPECT_EQ(cell->cell_id, "b2c7");
  EXPECT_EQ(cell->rig_id, "rig-1");
  EXPECT_DOUBLE_EQ(cell->rated_capacity_ah, 1.1);
  EXPECT_EQ(cell->chemistry, "LFP");
  EXPECT_EQ(cell->charge_policy, "5.4C(40%)-3.6C");
  EXPECT_EQ(cell->metadata_json, R"({"batch":"2017-06-30"})");
}

TEST(ProtocolMeta, SerialisedMetadataParsesBack) {
  storage::CellInfo cell = rated_cell(2.5);
  cell.chemistry = "NMC";
  cell.charge_policy = "1C";
  cell.metadata_json = R"({"k":1})";
  auto back = parse_cell_meta(serialize_cell_meta(cell), meta());
  ASSERT_TRUE(back.ok());
  EXPECT_DOUBLE_EQ(back->rated_capacity_ah, 2.5);
  EXPECT_EQ(back->chemistry, "NMC");
  EXPECT_EQ(back->charge_policy, "1C");
  EXPECT_EQ(back->metadata_json, R"({"k":1})");
}

struct BadMeta {
  const char* name;
  std::string payload;
  std::string reason;
};

class ProtocolBadMeta : public ::testing::TestWithParam<BadMeta> {};

TEST_P(ProtocolBadMeta, IsRefusedWithItsReason) {
  auto cell = parse_cell_meta(GetParam().payload, meta());
  ASSERT_FALSE(cell.ok());
  EXPECT_EQ(cell.error().message.substr(0, GetParam().reason.size()), GetParam().reason)
      << cell.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, ProtocolBadMeta,
    ::testing::Values(BadMeta{"NotJson", "rated=1.1", "invalid JSON: "},
                      BadMeta{"Array", "[1.1]", "cell metadata must be a JSON object, got array"},
                      BadMeta{"MissingRated", R"({"chemistry":"LFP"})",
                              "missing required field 'rated_capacity_ah'"},
                      BadMeta{"RatedAsString", R"({"rated_capacity_ah":"1.1"})",
                              "field 'rated_capacity_ah' must be a number or null, got string"},
                      BadMeta{"RatedZero", R"({"rated_capacity_ah":0})",
                              "field 'rated_capacity_ah' = 0 Ah is out of range (0, 1000]"},
                      BadMeta{"UnknownField", R"({"rated_capacity_ah":1.1,"colour":"blue"})",
                              "unknown field 'colour'"},
                      BadMeta{"ChemistryNotString", R"({"rated_capacity_ah":1.1,"chemistry":7})",
                              "field 'chemistry' must be a string"},
                      BadMeta{"MetadataNotObject", R"({"rated_capacity_ah":1.1,"metadata":[1]})",
                              "field 'metadata' must be a JSON object"},
                      BadMeta{"CellIdMismatch", R"({"rated_capacity_ah":1.1,"cell_id":"b2c8"})",
                              "field 'cell_id' does not match the topic's cell 'b2c7'"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ProtocolAck, CompressesConsecutiveCyclesWithTheSameOutcome) {
  std::vector<AckEntry> entries = {
      {"b", 3, AckOutcome::kStored, ""},   {"a", 2, AckOutcome::kStored, ""},
      {"a", 1, AckOutcome::kStored, ""},   {"a", 3, AckOutcome::kDuplicate, ""},
      {"a", 5, AckOutcome::kStored, ""},   {"b", 4, AckOutcome::kRejected, "x"},
      {"b", 5, AckOutcome::kRejected, "x"}};
  const auto ranges = compress_acks(entries);
  ASSERT_EQ(ranges.size(), 5u);
  EXPECT_EQ(ranges[0].cell_id, "a");
  EXPECT_EQ(ranges[0].first_cycle, 1);
  EXPECT_EQ(ranges[0].last_cycle, 2);
  EXPECT_EQ(ranges[1].outcome, AckOutcome::kDuplicate);
  EXPECT_EQ(ranges[2].first_cycle, 5);
  EXPECT_EQ(ranges[3].cell_id, "b");
  EXPECT_EQ(ranges[3].outcome, AckOutcome::kStored);
  EXPECT_EQ(ranges[4].first_cycle, 4);
  EXPECT_EQ(ranges[4].last_cycle, 5);
  EXPECT_EQ(ranges[4].reason, "x");
}

TEST(ProtocolAck, RoundTripsThroughJson) {
  Ack ack;
  ack.seq = 42;
  ack.committed_at_ms = 1700000000000;
  ack.ranges = {{"b2c7", 1, 100, AckOutcome::kStored, ""},
                {"b2c7", 101, 101, AckOutcome::kConflict, "conflicting duplicate"}};
  ack.rejected_messages = {{"b2c8", "invalid JSON"}};
  const std::string text = serialize_ack(ack);
  auto back = parse_ack(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->seq, 42u);
  EXPECT_EQ(back->committed_at_ms, 1700000000000);
  ASSERT_EQ(back->ranges.size(), 2u);
  EXPECT_EQ(back->ranges[0].last_cycle, 100);
  EXPECT_EQ(back->ranges[1].outcome, AckOutcome::kConflict);
  EXPECT_EQ(back->ranges[1].reason, "conflicting duplicate");
  ASSERT_EQ(back->rejected_messages.size(), 1u);
  EXPECT_EQ(back->rejected_messages[0].cell_id, "b2c8");
}

TEST(ProtocolAck, RetryIsAnOutcomeOfItsOwn) {
  Ack ack;
  ack.ranges = {{"b2c7", 5, 9, AckOutcome::kRetry, "cell 'b2c7' is not registered yet"}};
  const std::string text = serialize_ack(ack);
  EXPECT_NE(text.find(R"("outcome":"retry")"), std::string::npos) << text;
  auto back = parse_ack(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->ranges.size(), 1u);
  EXPECT_EQ(back->ranges[0].outcome, AckOutcome::kRetry);
  EXPECT_EQ(back->ranges[0].reason, "cell 'b2c7' is not registered yet");
}

TEST(ProtocolAck, RefusesMalformedAcks) {
  EXPECT_FALSE(parse_ack("{}").ok());
  EXPECT_FALSE(parse_ack(R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[{"cell":"a"}]})").ok());
  EXPECT_FALSE(
      parse_ack(
          R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[{"cell":"a","from":5,"to":4,"outcome":"stored"}]})")
          .ok());
  EXPECT_FALSE(
      parse_ack(
          R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[{"cell":"a","from":1,"to":1,"outcome":"eaten"}]})")
          .ok());
}

// Found by protocol_fuzz: a float where an integer belongs was cast to int64 (undefined
// behaviour when it does not fit) instead of being refused.
TEST(ProtocolAck, RefusesNonIntegerNumbersWhereIntegersBelong) {
  EXPECT_FALSE(parse_ack(R"({"v":1,"seq":1,"committed_at_ms":1e300,"ranges":[]})").ok());
  EXPECT_FALSE(parse_ack(R"({"v":1.5,"seq":1,"committed_at_ms":1,"ranges":[]})").ok());
  EXPECT_FALSE(parse_ack(R"({"v":1,"seq":-1,"committed_at_ms":1,"ranges":[]})").ok());
  EXPECT_FALSE(
      parse_ack(
          R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[{"cell":"a","from":1e30,"to":2,"outcome":"stored"}]})")
          .ok());
  EXPECT_TRUE(parse_ack(R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[]})").ok());
}

}  // namespace
}  // namespace cyclecast::protocol

namespace cyclecast::protocol {
namespace {

TEST(ProtocolForecast, SerializesTheNewestForecastForConsumers) {
  storage::ForecastRecord f;
  f.cell_id = "b1c2";
  f.at_cycle = 300;
  f.model_version = "r3-20261130";
  f.origin = "host";
  f.soh.assign(100, 0.9f);
  f.soh[9] = 0.95f;
  f.soh[40] = 0.79f;  // cycle 341: the end of life
  f.soh[99] = 0.7f;
  EXPECT_EQ(forecast_topic("b1c2"), "cyclecast/v1/cells/b1c2/forecasts");
  for (const char* unsafe : {"a/b", "#", "+", "", "../x", ".hidden", "a b"})
    EXPECT_EQ(forecast_topic(unsafe), std::nullopt) << unsafe;
  const auto j = nlohmann::json::parse(serialize_forecast(f));
  EXPECT_EQ(j["cell"], "b1c2");
  EXPECT_EQ(j["at_cycle"], 300);
  EXPECT_EQ(j["horizon"], 100);
  EXPECT_NEAR(j["soh_at_10"].get<double>(), 0.95, 1e-6);
  EXPECT_NEAR(j["soh_at_h"].get<double>(), 0.7, 1e-6);
  EXPECT_EQ(j["eol_cycle"], 341);
  EXPECT_EQ(j["soh"].size(), 100u);
  // A model without an interval table: the payload has the shape it had before intervals.
  EXPECT_FALSE(j.contains("lower"));
  EXPECT_FALSE(j.contains("upper"));
  EXPECT_FALSE(j.contains("eol_interval"));

  f.soh.assign(5, std::nanf(""));  // H < 10 and values unknown: nulls, not NaN (invalid JSON)
  const auto short_one = nlohmann::json::parse(serialize_forecast(f));
  EXPECT_TRUE(short_one["soh_at_10"].is_null());
  EXPECT_TRUE(short_one["soh_at_h"].is_null());
  EXPECT_TRUE(short_one["eol_cycle"].is_null());
  EXPECT_TRUE(short_one["soh"][0].is_null());
}

TEST(ProtocolForecast, CarriesTheIntervalAndTheEndOfLifeIntervalWhenTheForecastHasOne) {
  storage::ForecastRecord f;
  f.cell_id = "b1c2";
  f.at_cycle = 300;
  f.origin = "host";
  f.soh.assign(100, 0.9f);
  f.soh[40] = 0.79f;  // the forecast crosses at cycle 341
  f.lower = f.soh;
  f.upper = f.soh;
  for (std::size_t j = 0; j < 100; ++j) {
    f.lower[j] -= 0.05f;  // 0.85: above the threshold until step 40
    f.upper[j] += 0.05f;  // never below it: the cell may live past the horizon
  }
  f.lower[20] = 0.75f;  // crosses at cycle 321
  const auto j = nlohmann::json::parse(serialize_forecast(f));
  ASSERT_EQ(j["lower"].size(), 100u);
  ASSERT_EQ(j["upper"].size(), 100u);
  EXPECT_NEAR(j["lower"][0].get<double>(), 0.85, 1e-6);
  EXPECT_NEAR(j["upper"][0].get<double>(), 0.95, 1e-6);
  EXPECT_EQ(j["eol_cycle"], 341);
  EXPECT_EQ(j["eol_interval"]["earliest"], 321);
  EXPECT_TRUE(j["eol_interval"]["latest"].is_null());  // open: not within the horizon

  // A cell's own threshold: the upper bound crosses it too, at the forecast's step 40.
  const ForecastEol at_86 = forecast_eol_interval(f, 0.86);
  EXPECT_EQ(at_86.earliest, 301);
  EXPECT_EQ(at_86.expected, 341);
  EXPECT_EQ(at_86.latest, 341);
  f.lower.clear();
  f.upper.clear();
  const ForecastEol without = forecast_eol_interval(f);
  EXPECT_EQ(without.earliest, std::nullopt);
  EXPECT_EQ(without.expected, 341);
  EXPECT_EQ(without.latest, std::nullopt);
}

}  // namespace
}  // namespace cyclecast::protocol
