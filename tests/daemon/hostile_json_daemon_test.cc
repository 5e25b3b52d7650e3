// Hostile JSON against the built cyclecastd and a real mosquitto (docs/reliability.md, "Hostile
// JSON"): documents nested 90,000 deep (about 180 kB, under the 256 KiB payload limit) in cell
// metadata, in an unknown record field and as an array element once made the daemon's serialiser
// overflow the stack, and, sent retained, crash it at every start. Now each is refused with its
// reason, the daemon keeps running and a legitimate cell loses none of its records; edge
// forecasts get the same limits as cycle records.
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using std::chrono::seconds;

constexpr std::size_t kHostileDepth = 90000;
constexpr const char* kRig = "rig-j";
constexpr const char* kDeepReason = "nested deeper than 64 levels";

std::string deep_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}
std::string deep_objects(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i)
    text += "{\"a\":";
  return text + "1" + std::string(depth, '}');
}

std::string cycles(const std::string& cell) {
  return protocol::cycles_topic(kRig, cell);
}
std::string meta(const std::string& cell) {
  return protocol::meta_topic(kRig, cell);
}

// Cycles first..last of the legitimate cell, one array.
std::string records(int first, int last) {
  std::string text = "[";
  for (int cycle = first; cycle <= last; ++cycle) {
    if (cycle > first) text += ",";
    text += "{\"cycle\":" + std::to_string(cycle) + ",\"qd_ah\":1.05}";
  }
  return text + "]";
}

// mosquitto_pub with the retain flag (the harness publishes without it).
bool publish_retained(const TempDir& dir, int port, const std::string& topic,
                      const std::string& payload) {
  const auto file = dir / "retained-payload";
  write_file(file, payload);
  Child pub({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1",
             "-r", "-t", topic, "-f", file.string()},
            "/dev/null");
  const auto status = pub.wait(seconds(10));
  return status && *status == 0;
}

long reasons_saying(const std::filesystem::path& db, const std::string& text) {
  const auto reasons = rejected_reasons(db);
  return std::count_if(reasons.begin(), reasons.end(),
                       [&](const std::string& r) { return r.find(text) != std::string::npos; });
}

// One integer from the database (read-only), -1 when the query fails.
std::int64_t query_integer(const std::filesystem::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::int64_t value = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

class HostileJson : public ::testing::Test {
 protected:
  HostileJson()
      : port_(free_port()), broker_(dir_.path(), port_), daemon_(dir_.path() / "state", port_) {}

  void SetUp() override {
    broker_.start();
    daemon_.start();
    ASSERT_TRUE(publish_raw(port_, meta("legit"), R"({"rated_capacity_ah": 1.1})"));
  }

  bool publish(const std::string& topic, const std::string& payload) {
    return publish_raw(port_, topic, payload);
  }
  std::int64_t legit_cycles() {
    return query_integer(daemon_.database(),
                         "SELECT count(*) FROM cycles JOIN cells ON cells.id = cycles.cell "
                         "WHERE cells.cell_id = 'legit'");
  }
  bool eventually_rejected(const std::string& text, long count) {
    return eventually([&] { return reasons_saying(daemon_.database(), text) >= count; },
                      seconds(30));
  }

  TempDir dir_;
  int port_;
  Broker broker_;
  DaemonProcess daemon_;
};

TEST_F(HostileJson, DeepDocumentsAreRefusedAndALegitimateCellLosesNothing) {
  const std::string deep = deep_arrays(kHostileDepth);
  const std::string deep_meta = R"({"rated_capacity_ah": 1.1, "metadata": {"x": )" + deep + "}}";
  ASSERT_LT(deep_meta.size(), protocol::kDefaultMaxPayloadBytes);
  ASSERT_TRUE(publish(cycles("legit"), records(1, 10)));
  ASSERT_TRUE(publish(meta("deep-meta"), deep_meta));
  ASSERT_TRUE(publish(cycles("legit"), R"([{"cycle": 11, "qd_ah": 1.05, "x": )" + deep + "}]"));
  ASSERT_TRUE(publish(cycles("legit"), R"([{"cycle": 11, "qd_ah": 1.05}, )" + deep + "]"));
  // 2,000 levels: SQLite's json_valid refuses them; the daemon must refuse them first, or the
  // batch with the legitimate records below would fail.
  ASSERT_TRUE(publish(meta("sqlite-deep"),
                      R"({"rated_capacity_ah": 1.1, "metadata": )" + deep_objects(2000) + "}"));
  ASSERT_TRUE(publish(cycles("legit"), records(11, 30)));
  ASSERT_TRUE(publish(meta("twice"), R"({"rated_capacity_ah": 1.1, "rated_capacity_ah": 900})"));
  ASSERT_TRUE(publish(meta("nul"), R"({"rated_capacity_ah": 1.1, "chemistry": "LFP\u0000x"})"));

  EXPECT_TRUE(eventually([&] { return legit_cycles() == 30; }, seconds(30))) << legit_cycles();
  EXPECT_TRUE(eventually_rejected(kDeepReason, 4)) << read_text(daemon_.log());
  EXPECT_TRUE(eventually_rejected("duplicate key 'rated_capacity_ah'", 1));
  EXPECT_TRUE(eventually_rejected("NUL character", 1));
  EXPECT_TRUE(daemon_.running()) << read_text(daemon_.log());
  EXPECT_EQ(query_integer(daemon_.database(), "SELECT count(*) FROM cells"), 1)
      << "only the legitimate cell is registered";
  EXPECT_EQ(integrity(daemon_.database()), "ok");
}

TEST_F(HostileJson, RetainedDeepMetadataDoesNotStopTheNextStart) {
  ASSERT_TRUE(publish_retained(
      dir_, port_, meta("deep-retained"),
      R"({"rated_capacity_ah": 1.1, "metadata": )" + deep_objects(kHostileDepth / 3) + "}"));
  ASSERT_TRUE(eventually_rejected(kDeepReason, 1)) << read_text(daemon_.log());
  daemon_.signal(SIGTERM);
  const auto status = daemon_.wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  daemon_.start();  // the broker delivers the retained message again
  EXPECT_TRUE(eventually_rejected(kDeepReason, 2)) << read_text(daemon_.log());
  ASSERT_TRUE(publish(cycles("legit"), records(1, 5)));
  EXPECT_TRUE(eventually([&] { return legit_cycles() == 5; }, seconds(30)));
  EXPECT_TRUE(daemon_.running()) << read_text(daemon_.log());
}

std::string edge_forecast(std::int64_t cycle, const std::string& model_version) {
  wire::EdgeForecast f;
  f.node = "n1";
  f.cell = "legit";
  f.cycle = cycle;
  f.model_version = model_version;
  f.model_sha256 = std::string(64, 'a');
  f.horizon = 20;
  f.soh_at_10 = 0.9;
  f.soh_at_h = 0.85;
  f.forecast_us = 10;
  f.received_at_ms = 1700000000000;
  return wire::serialize_edge_forecast(f);
}

TEST_F(HostileJson, EdgeForecastsGetTheLimitsOfCycleRecords) {
  const std::string kEdgeRows = "SELECT count(*) FROM forecasts WHERE origin = 'edge:n1'";
  ASSERT_TRUE(publish(cycles("legit"), records(1, 5)));
  ASSERT_TRUE(eventually([&] { return legit_cycles() == 5; }, seconds(30)));
  const std::string topic = wire::node_forecasts_topic("n1");
  ASSERT_TRUE(publish(topic, edge_forecast(5, std::string(5 * 1024 * 1024, 'v'))));
  ASSERT_TRUE(publish(topic, edge_forecast(std::numeric_limits<std::int64_t>::max(), "m1")));
  ASSERT_TRUE(publish(topic, R"({"v": 1, "node": )" + deep_arrays(kHostileDepth / 100) + "}"));
  ASSERT_TRUE(publish(topic, edge_forecast(5, "m1")));
  EXPECT_TRUE(
      eventually([&] { return query_integer(daemon_.database(), kEdgeRows) == 1; }, seconds(30)));
  EXPECT_TRUE(eventually_rejected("exceeds the limit of 4096 bytes", 1));
  EXPECT_TRUE(eventually_rejected("'cycle' must be in [1, 1000000]", 1));
  EXPECT_TRUE(eventually_rejected(kDeepReason, 1));
  EXPECT_EQ(
      query_integer(daemon_.database(),
                    "SELECT max(length(model_version)) FROM forecasts WHERE origin = 'edge:n1'"),
      2);
  EXPECT_TRUE(daemon_.running()) << read_text(daemon_.log());
}

}  // namespace
}  // namespace cyclecast::testing
