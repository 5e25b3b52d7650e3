// The gateway's half of the node protocol and the edge MQTT payloads, as pure functions.
#include "cyclecast/wire/node_frames.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cyclecast/wire/edge.h"

namespace cyclecast::wire {
namespace {

std::string sha() {
  return std::string(64, 'a');
}

// A frame as the node would send it, without the '\n'.
std::string answer(const std::string& body) {
  std::string line = frame(body);
  line.pop_back();
  return line;
}

TEST(NodeFrames, Crc32IsZlibs) {
  EXPECT_EQ(node_crc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(node_crc32(""), 0u);
}

TEST(NodeFrames, RequestsAreFramedWithTheirCrc) {
  const std::string id = identify_request(7);
  EXPECT_EQ(id.substr(0, 9), "cc1 ID 7*");
  EXPECT_EQ(id.size(), 9u + 8u + 1u);
  EXPECT_EQ(id.back(), '\n');
  NodeCycle c;
  c.cell = "b1c0";
  c.cycle = 12;
  c.soh = 0.987654321987;
  c.ir_ohm = 0.0165;
  c.charge_time_min = 10.5;
  const std::string cy = cycle_request(3, c);
  EXPECT_EQ(cy.substr(0, cy.find('*')), "cc1 CY 3 b1c0 12 0.987654322 0.0165 - 10.5");
  c.temperature_c = std::numeric_limits<double>::quiet_NaN();
  c.ir_ohm = 2e6;  // beyond the node's range: sent as not measured
  const std::string odd = cycle_request(4, c);
  EXPECT_EQ(odd.substr(0, odd.find('*')), "cc1 CY 4 b1c0 12 0.987654322 - - 10.5");
}

TEST(NodeFrames, ParsesEveryAnswer) {
  auto hi = parse_answer(answer("cc1 HI 0 1 v1 " + sha()));
  ASSERT_TRUE(hi.ok()) << hi.error().message;
  EXPECT_EQ(std::get<HelloAnswer>(*hi).model_version, "v1");

  auto id = parse_answer(answer("cc1 ID 5 1 v1 " + sha() + " 100 100 ir_ohm 8") + "\r");
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(std::get<IdentifyAnswer>(*id).window, 100);
  EXPECT_EQ(answer_seq(*id), 5u);

  auto ok = parse_answer(answer("cc1 OK 6 b1c0 12 12"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(std::get<StoredAnswer>(*ok).have, 12);

  auto fc = parse_answer(answer("cc1 FC 7 b1c0 100 v1 1.061022 0.952871 - 412"));
  ASSERT_TRUE(fc.ok()) << fc.error().message;
  const auto& f = std::get<ForecastAnswer>(*fc);
  EXPECT_DOUBLE_EQ(f.soh_at_10.value(), 1.061022);
  EXPECT_DOUBLE_EQ(f.soh_at_h, 0.952871);
  EXPECT_FALSE(f.eol_cycle.has_value());
  EXPECT_EQ(f.forecast_us, 412);
  auto fc_eol = parse_answer(answer("cc1 FC 8 b1c0 100 v1 - 0.79 187 50"));
  ASSERT_TRUE(fc_eol.ok());
  EXPECT_EQ(std::get<ForecastAnswer>(*fc_eol).eol_cycle, 187);
  EXPECT_FALSE(std::get<ForecastAnswer>(*fc_eol).soh_at_10.has_value());

  auto er = parse_answer(answer("cc1 ER 9 order"));
  ASSERT_TRUE(er.ok());
  EXPECT_EQ(std::get<ErrorAnswer>(*er).code, "order");
  auto st = parse_answer(answer("cc1 ST 10 rx=1 crc=0 bad=0 long=0 fc=0 err=0 evict=0 cells=1"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(std::get<StatsAnswer>(*st).counters,
            "rx=1 crc=0 bad=0 long=0 fc=0 err=0 evict=0 cells=1");
}

TEST(NodeFrames, RefusesGarbageWithAReason) {
  std::string bad_crc = answer("cc1 OK 6 b1c0 12 12");
  bad_crc[4] = 'X';
  const std::pair<std::string, const char*> cases[] = {
      {bad_crc, "CRC mismatch"},
      {"hello world", "no '*' and CRC"},
      {std::string("cc1 OK\x01") + "*00000000", "non-printable"},
      {std::string(300, 'x'), "longer than 255"},
      {answer("cc3 OK 6 b1c0 12 12"), "not a protocol v1 or v2 frame"},
      {answer("cc1 ZZ 6"), "unknown answer type 'ZZ'"},
      {answer("cc1 OK 6 b1c0 twelve 12"), "malformed OK"},
      {answer("cc1 FC 7 b1c0 100 v1 1.0 nan - 412"), "malformed FC"},
      {answer("cc1 ID 5 1 v1 short 100 100 - 8"), "malformed ID"},
      {"cc1 OK 6 b1c0 12 12*ABCDEF01", "8 lower-case hex"},
  };
  for (const auto& [line, reason] : cases) {
    auto parsed = parse_answer(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_NE(parsed.error().message.find(reason), std::string::npos)
        << line << ": " << parsed.error().message;
  }
}

TEST(NodeFrames, UpdateRequestsAndAnswersOfProtocol2) {
  EXPECT_EQ(update_begin_request(4, 1000, sha(), "v-2"), frame("cc2 UB 4 1000 " + sha() + " v-2"));
  const std::string data("\x00\xff\x10", 3);
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", node_crc32(data));
  EXPECT_EQ(update_chunk_request(5, 96, data), frame("cc2 UC 5 96 00ff10 " + std::string(crc)));
  const std::string longest =
      update_chunk_request(4294967295u, 4294967295u, std::string(kUpdateChunkBytes + 10, 'x'));
  EXPECT_LE(longest.size(), kMaxNodeLine + 1) << "the largest chunk fits a line";
  EXPECT_EQ(update_commit_request(6), frame("cc2 UE 6"));
  EXPECT_EQ(slots_request(7), frame("cc2 SL 7"));

  auto up = parse_answer(answer("cc2 UP 5 receiving 192 ok"));
  ASSERT_TRUE(up.ok());
  const auto& u = std::get<UpdateAnswer>(*up);
  EXPECT_EQ(u.seq, 5u);
  EXPECT_TRUE(u.receiving);
  EXPECT_EQ(u.next, 192);
  EXPECT_EQ(u.word, "ok");
  EXPECT_EQ(std::get<UpdateAnswer>(*parse_answer(answer("cc2 UP 6 idle 0 selftest"))).word,
            "selftest");
  auto sl = parse_answer(answer("cc2 SL 8 A A v-2 " + sha() + " B - -"));
  ASSERT_TRUE(sl.ok());
  EXPECT_EQ(std::get<SlotsAnswer>(*sl).active, "A");
  EXPECT_EQ(std::get<SlotsAnswer>(*sl).version[0], "v-2");
  EXPECT_EQ(std::get<SlotsAnswer>(*sl).sha256[1], "-");
  EXPECT_EQ(std::get<ErrorAnswer>(*parse_answer(answer("cc2 ER 9 field"))).code, "field");
  // One protocol 2 for both: the ID of a node with the update module adds the active slot and the
  // last update's outcome after the interval table's rows.
  auto id = parse_answer(answer("cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 1 B switched"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  const auto& i = std::get<IdentifyAnswer>(*id);
  EXPECT_EQ(i.interval_bands, 1);
  EXPECT_EQ(i.active_slot, "B");
  EXPECT_EQ(i.last_update, "switched");
  auto plain = parse_answer(answer("cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 0"));
  ASSERT_TRUE(plain.ok()) << "a node without the update module";
  EXPECT_EQ(std::get<IdentifyAnswer>(*plain).active_slot, "");
  for (const std::string& bad : std::vector<std::string>{
           "cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 1 B", "cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 B x",
           "cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 1 C ok",
           "cc2 ID 3 2 v-2 " + sha() + " 5 12 - 8 1 A a/b",
           "cc1 ID 3 1 v-2 " + sha() + " 5 12 - 8 1 A ok"}) {
    EXPECT_FALSE(parse_answer(answer(bad)).ok()) << bad;
  }

  for (const std::string& bad : std::vector<std::string>{
           "cc2 UP 5 receiving 192", "cc2 UP 5 sending 0 ok", "cc2 UP 5 idle -1 ok",
           "cc2 UP 5 idle 0 ok extra", "cc2 UP 5 idle 0 a/b", "cc2 UP x idle 0 ok",
           "cc2 UP 5 idle 99999999999999999999 ok", "cc2 SL 8 C A - - B - -",
           "cc2 SL 8 A A v-2 - B - -", "cc2 SL 8 A A - " + sha() + " B - -",
           "cc2 SL 8 A B - - A - -", "cc2 SL 8 A A v " + sha(), "cc2 FC 1 c 1 v 1 1 - 1",
           "cc2 HI 0 2 v " + sha()}) {
    EXPECT_FALSE(parse_answer(answer(bad)).ok()) << bad;
  }
}

TEST(EdgePayloads, ForecastRoundTripsAndIsStrict) {
  EdgeForecast f;
  f.node = "nano-1";
  f.cell = "b1c0";
  f.cycle = 120;
  f.model_version = "v1";
  f.model_sha256 = sha();
  f.horizon = 100;
  f.soh_at_10 = 0.98;
  f.soh_at_h = 0.95;
  f.forecast_us = 412;
  f.received_at_ms = 1700000000123;
  const std::string text = serialize_edge_forecast(f);
  auto parsed = parse_edge_forecast(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(serialize_edge_forecast(*parsed), text);
  EXPECT_FALSE(parsed->eol_cycle.has_value());
  EXPECT_EQ(node_forecasts_topic("nano-1"), "cyclecast/v1/nodes/nano-1/forecasts");
  EXPECT_EQ(node_status_topic("nano-1"), "cyclecast/v1/nodes/nano-1/status");

  std::string extra = text;
  extra.insert(1, "\"x\":1,");
  EXPECT_NE(parse_edge_forecast(extra).error().message.find("unknown field 'x'"),
            std::string::npos);
  EXPECT_NE(parse_edge_forecast("{\"v\":1}").error().message.find("missing field"),
            std::string::npos);
  EXPECT_FALSE(parse_edge_forecast("[]").ok());
  std::string wrong = text;
  wrong.replace(wrong.find("\"cycle\":120"), 11, "\"cycle\":\"120\"");
  EXPECT_NE(parse_edge_forecast(wrong).error().message.find("'cycle' is not an integer"),
            std::string::npos);
}

TEST(EdgePayloads, NodeStatusRoundTripsAndIsStrict) {
  NodeStatus status;
  status.node = "nano-1";
  status.state = "unresponsive";
  status.model_version = "v1";
  status.model_sha256 = sha();
  status.window = 100;
  status.horizon = 100;
  status.last_seen_ms = 1700000000123;
  status.forecasts = 5120;
  status.resets = 1;
  status.queued = 3;
  const std::string text = serialize_node_status(status);
  auto parsed = parse_node_status(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(serialize_node_status(*parsed), text);
  EXPECT_EQ(node_status_subscription(), "cyclecast/v1/nodes/+/status");

  // What a hostile publisher on a node's status topic may try, each refused naming why.
  const auto refused = [&](const std::string& from, const std::string& to) {
    std::string changed = text;
    const std::size_t at = changed.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    changed.replace(at, from.size(), to);
    auto result = parse_node_status(changed);
    return result.ok() ? std::string("accepted") : result.error().message;
  };
  EXPECT_NE(refused("\"v\":1", "\"v\":2").find("'v' must be 1"), std::string::npos);
  EXPECT_NE(refused("\"unresponsive\"", "\"on fire\"").find("'state'"), std::string::npos);
  EXPECT_NE(refused("\"nano-1\"", "\"../x\"").find("'node'"), std::string::npos);
  EXPECT_NE(refused("\"queued\":3", "\"queued\":-3").find("'queued' is not an integer >= 0"),
            std::string::npos);
  EXPECT_NE(refused("\"resets\":1", "\"resets\":1.5").find("'resets'"), std::string::npos);
  EXPECT_NE(refused("\"v\":1", "\"x\":1,\"v\":1").find("unknown field 'x'"), std::string::npos);
  EXPECT_NE(refused("\"model_sha256\":\"", "\"model_sha256\":\"Z").find("'model_sha256'"),
            std::string::npos);
  EXPECT_NE(parse_node_status("{\"v\":1}").error().message.find("missing field"),
            std::string::npos);
  EXPECT_FALSE(parse_node_status("[]").ok());
  EXPECT_FALSE(parse_node_status(std::string(kMaxEdgeForecastBytes + 1, ' ')).ok());
}

// A gateway's liveness on cyclecast/v1/daemons/cyclecast-gateway-{node}/status: what the MQTT
// client of cyclecast-gateway publishes, and what anyone else may put there, refused naming why.
TEST(EdgePayloads, NodeStatusCarriesTheUpdateOnlyWhenThereIsOne) {
  NodeStatus s;
  s.node = "n1";
  s.state = "online";
  EXPECT_EQ(serialize_node_status(s).find("update"), std::string::npos)
      << "a gateway without an update sends what older readers know";
  s.active_slot = "B";
  s.update = "failed:selftest";
  auto back = parse_node_status(serialize_node_status(s));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->active_slot, "B");
  EXPECT_EQ(back->update, "failed:selftest");
  for (const auto& [slot, update] :
       std::vector<std::pair<std::string, std::string>>{{"C", "current"},
                                                        {"A", "failed:"},
                                                        {"A", "failed:a b"},
                                                        {"A", "done"},
                                                        {"A", "failed:" + std::string(17, 'x')}}) {
    s.active_slot = slot;
    s.update = update;
    EXPECT_FALSE(parse_node_status(serialize_node_status(s)).ok()) << slot << " " << update;
  }
}

TEST(GatewayStatus, ReadsOnlineAndOfflineOfAGatewayAndRefusesTheRest) {
  const std::string topic = "cyclecast/v1/daemons/cyclecast-gateway-nano-1/status";
  EXPECT_EQ(daemon_status_subscription(), "cyclecast/v1/daemons/+/status");
  auto online = parse_gateway_status(topic, "online 9f3c2a1b7d4e5f60");
  ASSERT_TRUE(online.ok()) << online.error().message;
  EXPECT_EQ(online->client_id, "cyclecast-gateway-nano-1");
  EXPECT_EQ(online->node, "nano-1");
  EXPECT_EQ(online->state, "online");
  EXPECT_EQ(online->start_id, "9f3c2a1b7d4e5f60");
  auto offline = parse_gateway_status(topic, "offline");
  ASSERT_TRUE(offline.ok()) << offline.error().message;
  EXPECT_EQ(offline->state, "offline");
  EXPECT_EQ(offline->start_id, "");
  EXPECT_TRUE(parse_gateway_status(topic, "online").ok());  // a gateway before start ids

  // Not a gateway's topic at all: the daemons' own statuses, or another layout.
  EXPECT_FALSE(is_gateway_status_topic("cyclecast/v1/daemons/cyclecastd/status"));
  EXPECT_FALSE(is_gateway_status_topic("cyclecast/v1/nodes/nano-1/status"));
  EXPECT_TRUE(is_gateway_status_topic(topic));

  const auto refused = [&](const std::string& t, const std::string& payload) {
    auto result = parse_gateway_status(t, payload);
    return result.ok() ? std::string("accepted") : result.error().message;
  };
  const std::string big(kMaxGatewayStatusBytes + 1, 'x');
  EXPECT_NE(refused(topic, big)
                .find("exceeds the limit of " + std::to_string(kMaxGatewayStatusBytes) + " bytes"),
            std::string::npos);
  EXPECT_NE(refused(topic, "online " + std::string(100, 'a')).find("start id"), std::string::npos);
  EXPECT_NE(refused(topic, "on fire").find("'online <start id>' or 'offline'"), std::string::npos);
  EXPECT_NE(refused(topic, "offline now").find("'online <start id>' or 'offline'"),
            std::string::npos);
  EXPECT_NE(refused(topic, "online  x").find("start id"), std::string::npos);
  EXPECT_NE(refused(topic, std::string("online \0\x01", 9)).find("start id"), std::string::npos);
  EXPECT_NE(refused(topic, "{\"state\":\"online\"}").find("'online <start id>' or 'offline'"),
            std::string::npos);
  EXPECT_NE(refused("cyclecast/v1/daemons/cyclecast-gateway-../status", "offline").find("node"),
            std::string::npos);
  EXPECT_NE(refused("cyclecast/v1/daemons/cyclecast-gateway-/status", "offline").find("node"),
            std::string::npos);
  EXPECT_NE(refused("cyclecast/v1/daemons/cyclecastd/status", "offline").find("not a gateway"),
            std::string::npos);
}

}  // namespace
}  // namespace cyclecast::wire
