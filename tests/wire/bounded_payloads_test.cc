// Protocol v1 and edge payloads under the limits every document from outside gets
// (docs/protocol.md, "Limits"): nesting 90,000 deep in metadata, in an unknown record field or as
// an array element is refused whole and never serialised (it crashed the daemon's serialiser);
// duplicate keys and NUL are refused; edge forecasts are bounded like cycle records.
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "cyclecast/bounded_json.h"
#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::protocol {
namespace {

constexpr std::size_t kHostileDepth = 90000;  // about 180 kB: under the 256 KiB payload limit

std::string deep_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}
std::string deep_objects(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i)
    text += "{\"a\":";
  return text + "1" + std::string(depth, '}');
}

storage::CellInfo rated_cell() {
  storage::CellInfo cell;
  cell.cell_id = "b2c7";
  cell.rig_id = "rig-1";
  cell.rated_capacity_ah = 1.1;
  return cell;
}
const Topic kCycles{TopicKind::kCycles, "rig-1", "b2c7"};
const Topic kMeta{TopicKind::kCellMeta, "rig-1", "b2c7"};

std::string meta_refusal(const std::string& payload) {
  auto cell = parse_cell_meta(payload, kMeta);
  return cell ? "" : cell.error().message;
}
std::string cycles_refusal(const std::string& payload) {
  const auto cell = rated_cell();
  auto parsed = parse_cycles_payload(payload, kCycles, &cell);
  auto reference = parse_cycles_payload_reference(payload, kCycles, &cell);
  EXPECT_EQ(parsed.ok(), reference.ok());
  return parsed ? "" : parsed.error().message;
}

TEST(ProtocolLimits, DeepMetadataIsRefusedWhole) {
  const std::string payload =
      R"({"rated_capacity_ah": 1.1, "metadata": {"x": )" + deep_arrays(kHostileDepth) + "}}";
  ASSERT_LT(payload.size(), kDefaultMaxPayloadBytes);
  EXPECT_EQ(meta_refusal(payload), "invalid JSON: nested deeper than 64 levels");
  // 2,000 levels: what SQLite's json_valid refuses must never reach the database.
  EXPECT_EQ(meta_refusal(R"({"rated_capacity_ah": 1.1, "metadata": )" + deep_objects(2000) + "}"),
            "invalid JSON: nested deeper than 64 levels");
}

TEST(ProtocolLimits, MetadataAtTheLimitIsStoredAsReceived) {
  // The whole document is 64 deep: the outer object and 63 levels of metadata.
  const std::string metadata = deep_objects(kMaxJsonDepth - 1);
  auto cell = parse_cell_meta(R"({"rated_capacity_ah": 1.1, "metadata": )" + metadata + "}", kMeta);
  ASSERT_TRUE(cell) << cell.error().message;
  EXPECT_EQ(cell->metadata_json, metadata);
  EXPECT_NE(serialize_cell_meta(*cell).find(metadata), std::string::npos);
}

TEST(ProtocolLimits, StoredMetadataOverTheLimitIsLeftOutWhenSerialised) {
  auto cell = rated_cell();
  cell.metadata_json = deep_objects(1000);  // stored by a version without the limit
  EXPECT_EQ(serialize_cell_meta(cell), R"({"rated_capacity_ah":1.1})");
}

TEST(ProtocolLimits, DeepUnknownFieldOrArrayElementRefusesTheMessage) {
  const std::string deep = deep_arrays(kHostileDepth);
  EXPECT_EQ(cycles_refusal(R"({"cycle": 1, "qd_ah": 1.0, "x": )" + deep + "}"),
            "invalid JSON: nested deeper than 64 levels");
  EXPECT_EQ(cycles_refusal(R"([{"cycle": 1, "qd_ah": 1.0}, )" + deep + "]"),
            "invalid JSON: nested deeper than 64 levels");
  EXPECT_EQ(cycles_refusal(deep), "invalid JSON: nested deeper than 64 levels");
}

TEST(ProtocolLimits, ARefusedRecordAtTheLimitIsQuotedInItsRejection) {
  // A record refused on its own is re-serialised for the rejected table: safe at the limit.
  const std::string field = deep_arrays(kMaxJsonDepth - 2);
  const auto cell = rated_cell();
  auto parsed =
      parse_cycles_payload(R"([{"cycle": 1, "qd_ah": 1.0, "x": )" + field + "}]", kCycles, &cell);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->rejected.size(), 1u);
  EXPECT_EQ(parsed->rejected[0].reason, "unknown field 'x'");
  EXPECT_NE(parsed->rejected[0].record_json.find(field), std::string::npos);
}

TEST(ProtocolLimits, DuplicateKeysAreRefused) {
  EXPECT_EQ(cycles_refusal(R"({"cycle": 1, "qd_ah": 1.0, "qd_ah": 1.05})"),
            "invalid JSON: duplicate key 'qd_ah' in one object");
  EXPECT_EQ(meta_refusal(R"({"rated_capacity_ah": 1.1, "rated_capacity_ah": 500})"),
            "invalid JSON: duplicate key 'rated_capacity_ah' in one object");
}

TEST(ProtocolLimits, NulInsideAStringIsRefused) {
  EXPECT_EQ(meta_refusal(R"({"rated_capacity_ah": 1.1, "chemistry": "LFP\u0000; DROP"})"),
            "invalid JSON: a string holds a NUL character (\\u0000)");
}

TEST(ProtocolLimits, AcksAreBoundedToo) {
  auto ack = parse_ack(R"({"v": 1, "v": 1, "seq": 1, "committed_at_ms": 1, "ranges": []})");
  ASSERT_FALSE(ack);
  EXPECT_NE(ack.error().message.find("duplicate key 'v'"), std::string::npos);
  EXPECT_FALSE(parse_ack(deep_arrays(kHostileDepth)));
}

// ---- edge forecasts ----

wire::EdgeForecast forecast() {
  wire::EdgeForecast f;
  f.node = "nano-1";
  f.cell = "b1c0";
  f.cycle = 120;
  f.model_version = "v1";
  f.model_sha256 = std::string(64, 'a');
  f.horizon = 100;
  f.soh_at_10 = 0.98;
  f.soh_at_h = 0.95;
  f.eol_cycle = 200;
  f.forecast_us = 412;
  f.received_at_ms = 1700000000123;
  return f;
}

std::string edge_refusal(const wire::EdgeForecast& f) {
  auto parsed = wire::parse_edge_forecast(wire::serialize_edge_forecast(f));
  return parsed ? "" : parsed.error().message;
}

TEST(EdgeForecastLimits, AValidForecastPasses) {
  EXPECT_EQ(edge_refusal(forecast()), "");
  auto f = forecast();
  f.model_sha256.clear();  // before the node identified itself
  f.eol_cycle.reset();
  f.soh_at_10.reset();
  EXPECT_EQ(edge_refusal(f), "");
}

TEST(EdgeForecastLimits, OversizedPayloadIsRefusedBeforeParsing) {
  auto f = forecast();
  f.model_version = std::string(5 * 1024 * 1024, 'v');
  EXPECT_NE(edge_refusal(f).find("bytes exceeds the limit of 4096 bytes"), std::string::npos);
}

TEST(EdgeForecastLimits, StringsAreBoundedLikeCellMetadata) {
  auto f = forecast();
  f.model_version = std::string(kMaxTextFieldLength + 1, 'v');
  EXPECT_EQ(edge_refusal(f), "edge forecast: 'model_version' must be 1 to 256 bytes");
  f.model_version = std::string(kMaxTextFieldLength, 'v');
  EXPECT_EQ(edge_refusal(f), "");
  f = forecast();
  f.cell = "a/b";
  EXPECT_NE(edge_refusal(f).find("'cell': id contains a character"), std::string::npos);
  f = forecast();
  f.node = "";
  EXPECT_EQ(edge_refusal(f), "edge forecast: 'node': empty id");
  f = forecast();
  f.model_sha256 = "not-a-hash";
  EXPECT_NE(edge_refusal(f).find("'model_sha256'"), std::string::npos);
}

TEST(EdgeForecastLimits, CycleIsBoundedSoTheEndOfLifeCannotOverflow) {
  auto f = forecast();
  f.cycle = std::numeric_limits<std::int64_t>::max();
  f.eol_cycle.reset();
  EXPECT_EQ(edge_refusal(f), "edge forecast: 'cycle' must be in [1, 1000000]");
  f.cycle = kMaxCycle;
  EXPECT_EQ(edge_refusal(f), "");
  f = forecast();
  f.horizon = wire::kMaxEdgeHorizon + 1;
  EXPECT_EQ(edge_refusal(f), "edge forecast: 'horizon' must be in [1, 10000]");
  f = forecast();
  f.eol_cycle = f.cycle + f.horizon + 1;
  EXPECT_NE(edge_refusal(f).find("'eol_cycle'"), std::string::npos);
  f.eol_cycle = f.cycle;
  EXPECT_NE(edge_refusal(f).find("'eol_cycle'"), std::string::npos);
  // Beyond int64 as text: not an integer we can hold.
  auto text = wire::serialize_edge_forecast(forecast());
  text.replace(text.find("\"cycle\":120"), 11, "\"cycle\":18446744073709551615");
  EXPECT_NE(wire::parse_edge_forecast(text).error().message.find("'cycle' is not an integer"),
            std::string::npos);
}

TEST(EdgeForecastLimits, NumbersAreInRange) {
  auto f = forecast();
  f.soh_at_h = 1e300;  // would overflow the float it is stored as
  EXPECT_NE(edge_refusal(f).find("'soh_at_h'"), std::string::npos);
  f = forecast();
  f.forecast_us = -1;
  EXPECT_EQ(edge_refusal(f), "edge forecast: 'forecast_us' must be >= 0");
  f = forecast();
  f.received_at_ms = std::numeric_limits<std::int64_t>::max();
  EXPECT_NE(edge_refusal(f).find("'received_at_ms'"), std::string::npos);
}

TEST(EdgeForecastLimits, DeepNestingDuplicateKeysAndNulAreRefused) {
  EXPECT_EQ(wire::parse_edge_forecast(deep_arrays(2000)).error().message,
            "edge forecast: invalid JSON: nested deeper than 64 levels");
  auto text = wire::serialize_edge_forecast(forecast());
  EXPECT_NE(wire::parse_edge_forecast(R"({"v":1,"v":1})").error().message.find("duplicate key"),
            std::string::npos);
  text.replace(text.find("\"v1\""), 4, R"("v\u00001")");
  EXPECT_NE(wire::parse_edge_forecast(text).error().message.find("NUL"), std::string::npos);
}

}  // namespace
}  // namespace cyclecast::protocol
