// Node protocol v2 on the gateway's side: requests in either version, the v2 identify and forecast
// answers with their interval, every hostile form of them refused, and the interval in the edge
// MQTT payload (docs/node-protocol.md "Versions", docs/protocol.md "Edge forecast").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/node_frames.h"

namespace cyclecast::wire {
namespace {

const std::string kSha(64, 'b');

// A v2 line as the node sends it, without the '\n'.
std::string node_line(const std::string& body) {
  std::string line = frame(body);
  line.pop_back();
  return line;
}

// A v2 forecast answer of cell c1 at cycle 100 (H = 100): the v1 fields, then `interval`, then
// the duration.
std::string v2_forecast(const std::string& v1_fields, const std::string& interval) {
  return node_line("cc2 FC 7 c1 100 m1 " + v1_fields + " " + interval + " 412");
}

TEST(NodeFramesV2, RequestsCarryTheirVersion) {
  EXPECT_EQ(identify_request(7, 2).substr(0, 9), "cc2 ID 7*");
  EXPECT_EQ(identify_request(7).substr(0, 9), "cc1 ID 7*") << "v1 by default";
  NodeCycle c;
  c.cell = "c1";
  c.cycle = 3;
  c.soh = 0.98;
  const std::string cy = cycle_request(4, c, 2);
  EXPECT_EQ(cy.substr(0, cy.find('*')), "cc2 CY 4 c1 3 0.98 - - -");
}

TEST(NodeFramesV2, ParsesIdentifyWithItsIntervalRowsAndAnswersInEitherVersion) {
  auto id = parse_answer(node_line("cc2 ID 5 2 m1 " + kSha + " 100 100 - 8 3"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  const auto& a = std::get<IdentifyAnswer>(*id);
  EXPECT_EQ(a.version, 2);
  EXPECT_EQ(a.interval_bands, 3);
  auto v1 = parse_answer(node_line("cc1 ID 5 1 m1 " + kSha + " 100 100 - 8"));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(std::get<IdentifyAnswer>(*v1).version, 1);
  EXPECT_EQ(std::get<IdentifyAnswer>(*v1).interval_bands, 0);
  auto er = parse_answer(node_line("cc2 ER 9 order"));
  ASSERT_TRUE(er.ok());
  EXPECT_EQ(std::get<ErrorAnswer>(*er).code, "order");
  auto ok = parse_answer(node_line("cc2 OK 6 c1 12 12"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(std::get<StoredAnswer>(*ok).version, 2);
  auto st = parse_answer(node_line("cc2 ST 10 rx=1 crc=0"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(std::get<StatsAnswer>(*st).counters, "rx=1 crc=0");
}

TEST(NodeFramesV2, ParsesAForecastWithItsInterval) {
  auto fc = parse_answer(
      v2_forecast("0.981000 0.790000 187", "0.975000 0.986000 0.700000 0.850000 160 -"));
  ASSERT_TRUE(fc.ok()) << fc.error().message;
  const auto& f = std::get<ForecastAnswer>(*fc);
  EXPECT_EQ(f.version, 2);
  EXPECT_EQ(f.eol_cycle, 187);
  EXPECT_EQ(f.forecast_us, 412);
  ASSERT_TRUE(f.interval.has_value());
  EXPECT_DOUBLE_EQ(f.interval->lower_at_10.value(), 0.975);
  EXPECT_DOUBLE_EQ(f.interval->upper_at_10.value(), 0.986);
  EXPECT_DOUBLE_EQ(f.interval->lower_at_h, 0.7);
  EXPECT_DOUBLE_EQ(f.interval->upper_at_h, 0.85);
  EXPECT_EQ(f.interval->eol_earliest, 160);
  EXPECT_FALSE(f.interval->eol_latest.has_value()) << "the upper bound stays above 0.8";
  // A model without a table: six dashes, no interval.
  auto bare = parse_answer(v2_forecast("0.981000 0.950000 -", "- - - - - -"));
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_FALSE(std::get<ForecastAnswer>(*bare).interval.has_value());
  // H < 10: no value at step 10, so no bounds there either.
  auto short_h = parse_answer(v2_forecast("- 0.950000 -", "- - 0.940000 0.960000 - -"));
  ASSERT_TRUE(short_h.ok()) << short_h.error().message;
  EXPECT_FALSE(std::get<ForecastAnswer>(*short_h).interval->lower_at_10.has_value());
  // v1 forecasts have no interval.
  auto v1 = parse_answer(node_line("cc1 FC 7 c1 100 m1 0.981000 0.950000 - 412"));
  ASSERT_TRUE(v1.ok());
  EXPECT_FALSE(std::get<ForecastAnswer>(*v1).interval.has_value());
}

TEST(NodeFramesV2, RefusesHostileForecastAnswersWithAReason) {
  const std::string good_v1 = "0.981000 0.790000 187";
  const std::string good_iv = "0.975000 0.986000 0.700000 0.850000 160 -";
  ASSERT_TRUE(parse_answer(v2_forecast(good_v1, good_iv)).ok());
  const std::vector<std::string> bad = {
      // wrong counts: a v1 forecast in v2, a v2 forecast in v1, a field missing or extra
      node_line("cc2 FC 7 c1 100 m1 " + good_v1 + " 412"),
      node_line("cc1 FC 7 c1 100 m1 " + good_v1 + " " + good_iv + " 412"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 160"),
      v2_forecast(good_v1, good_iv + " -"),
      // not numbers, not finite
      v2_forecast(good_v1, "nan 0.986000 0.700000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 inf 0.700000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 x 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 1e2 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 160 -1"),
      // half an interval: some bounds without the others
      v2_forecast(good_v1, "- - 0.700000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 - 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 - 160 -"),
      v2_forecast("0.981000 0.950000 -", "- - - - 160 -"),
      v2_forecast("- 0.790000 187", "0.975000 0.986000 0.700000 0.850000 160 -"),
      // bounds on the wrong side of the forecast
      v2_forecast(good_v1, "0.982000 0.986000 0.700000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.980000 0.700000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.800000 0.850000 160 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.780000 160 -"),
      // end-of-life interval around the wrong cycle
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 190 -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 - -"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 160 180"),
      v2_forecast(good_v1, "0.975000 0.986000 0.700000 0.850000 100 -"),
      v2_forecast("0.981000 0.950000 -", "0.975000 0.986000 0.900000 0.960000 - 199"),
      // a v2 HI (HI is the same v1 frame in every version)
      node_line("cc2 HI 0 2 m1 " + kSha),
      // identify: rows missing, out of range, or a v1 count in v2
      node_line("cc2 ID 5 2 m1 " + kSha + " 100 100 - 8"),
      node_line("cc2 ID 5 2 m1 " + kSha + " 100 100 - 8 4"),
      node_line("cc2 ID 5 1 m1 " + kSha + " 100 100 - 8 1"),
      node_line("cc3 ID 5 3 m1 " + kSha + " 100 100 - 8 1"),
  };
  for (const std::string& line : bad) {
    auto parsed = parse_answer(line);
    EXPECT_FALSE(parsed.ok()) << line;
  }
  // Truncated at every byte: never parsed as a forecast.
  const std::string line = v2_forecast(good_v1, good_iv);
  for (size_t n = 0; n < line.size(); ++n)
    EXPECT_FALSE(parse_answer(line.substr(0, n)).ok()) << n;
  auto reason = parse_answer(v2_forecast(good_v1, "0.982000 0.986000 0.700000 0.850000 160 -"));
  ASSERT_FALSE(reason.ok());
  EXPECT_NE(reason.error().message.find("malformed FC"), std::string::npos)
      << reason.error().message;
}

EdgeForecast edge_with_interval() {
  EdgeForecast f;
  f.node = "nano-1";
  f.cell = "c1";
  f.cycle = 100;
  f.model_version = "m1";
  f.model_sha256 = kSha;
  f.horizon = 100;
  f.soh_at_10 = 0.981;
  f.soh_at_h = 0.79;
  f.eol_cycle = 187;
  f.forecast_us = 412;
  f.received_at_ms = 1700000000123;
  f.interval = ForecastInterval{0.975, 0.986, 0.7, 0.85, 160, std::nullopt};
  return f;
}

TEST(EdgePayloadsV2, IntervalUsesTheHostPayloadsFieldsAndRoundTrips) {
  const EdgeForecast f = edge_with_interval();
  const std::string text = serialize_edge_forecast(f);
  // The host forecast payload's fields: "lower"/"upper" per step (null where the node gives
  // no value: every step but 10 and H) and "eol_interval".
  EXPECT_NE(text.find("\"lower\":[null,null,null,null,null,null,null,null,null,0.975,null"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(",0.85]"), std::string::npos) << text;
  EXPECT_NE(text.find("\"eol_interval\":{\"earliest\":160,\"latest\":null}"), std::string::npos)
      << text;
  EXPECT_LT(text.size(), kMaxEdgeForecastBytes);
  auto parsed = parse_edge_forecast(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_TRUE(parsed->interval.has_value());
  EXPECT_EQ(parsed->interval->eol_earliest, 160);
  EXPECT_EQ(serialize_edge_forecast(*parsed), text);
  // Without an interval the payload is what it was before.
  EdgeForecast bare = f;
  bare.interval.reset();
  const std::string bare_text = serialize_edge_forecast(bare);
  EXPECT_EQ(bare_text.find("lower"), std::string::npos);
  auto bare_parsed = parse_edge_forecast(bare_text);
  ASSERT_TRUE(bare_parsed.ok()) << bare_parsed.error().message;
  EXPECT_FALSE(bare_parsed->interval.has_value());
}

TEST(EdgePayloadsV2, RefusesAnInconsistentInterval) {
  const std::string text = serialize_edge_forecast(edge_with_interval());
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string out = text;
    const size_t at = out.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) out.replace(at, from.size(), to);
    return out;
  };
  const std::vector<std::string> bad = {
      edited("\"eol_interval\":{\"earliest\":160,\"latest\":null}", "\"x\":1"),  // one missing
      edited(",0.85]", "]"),                                                     // H - 1 entries
      edited(",0.85]", ",0.85,null]"),                                           // H + 1
      edited(",0.85]", ",null]"),                                                // no bound at H
      edited("null,0.975,null", "null,null,null"),                               // none at 10
      edited("null,0.975,null", "null,\"0.975\",null"),                          // mistyped
      edited("null,0.975,null", "null,0.99,null"),                               // above soh_at_10
      edited(",0.85]", ",0.7]"),                                                 // upper below soh
      edited(",0.85]", ",11]"),                                                  // out of range
      edited("[null,null,null,null", "[0.5,null,null,null"),       // a bound elsewhere
      edited("\"earliest\":160", "\"earliest\":190"),              // after eol_cycle
      edited("\"earliest\":160", "\"earliest\":null"),             // eol without it
      edited("\"earliest\":160", "\"earliest\":100"),              // not after cycle
      edited("\"latest\":null", "\"latest\":150"),                 // before eol_cycle
      edited("\"latest\":null", "\"latest\":null,\"x\":1"),        // unknown key
      edited("{\"earliest\":160,\"latest\":null}", "[160,null]"),  // not an object
      edited("\"lower\":[", "\"lower\":{\"a\":1},\"y\":["),        // not an array
  };
  for (const std::string& payload : bad)
    EXPECT_FALSE(parse_edge_forecast(payload).ok()) << payload;
}

}  // namespace
}  // namespace cyclecast::wire
