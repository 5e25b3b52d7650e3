// cyclecastd on a database that fills up or is damaged, against a real mosquitto and the built
// daemon: a full database stops the confirmations, says so (log, /healthz, /metrics) while the
// API keeps serving, and once there is room again the rigs' resends are stored exactly once; a
// database that fails its integrity check at start is refused with instructions.
#include <csignal>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/storage/database.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kCells = 10;
constexpr int kCycles = 4000;  // 40,000 records: about 2 MB, twice the 1 MB limit

std::string metric_line(const std::string& metrics, const std::string& name) {
  const auto at = metrics.find("\n" + name + " ");
  if (at == std::string::npos) return {};
  return metrics.substr(at + 1, metrics.find('\n', at + 1) - at - 1);
}

TEST(StorageFaultsDaemon, AFullDatabaseStopsConfirmationsAndResumesWithoutLoss) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  const auto config = dir / "cyclecastd.toml";
  std::ofstream(config)
      << "[storage]\nmax_size_mb = 1\n[retrain]\ninterval_h = 0\nnew_cycles = 0\n";
  DaemonProcess daemon(dir / "state", port, config);
  daemon.start();
  ASSERT_TRUE(eventually([&] { return daemon.api_port() > 0; }, 10s));
  auto api = http::ApiClient::create(
      {.base_url = "http://127.0.0.1:" + std::to_string(daemon.api_port()), .token = ""});
  ASSERT_TRUE(api.ok());

  const RigData data = write_rig_data(dir.path(), kCells, kCycles);
  Child rig =
      start_rig(dir.path(), port,
                {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                 (dir / "outbox.db").string(), "--ack-timeout-ms", "1000", "--deadline-s", "240"},
                "rig.log");
  ASSERT_TRUE(eventually(
      [&] { return read_text(daemon.log()).find("database full") != std::string::npos; }, 60s))
      << read_text(daemon.log());

  // The condition is reported everywhere an operator looks, and the API keeps answering. Near
  // the limit a small batch may still fit and clear it until the next large one fails, so the
  // reports are read until one shows it (health and metrics together).
  std::string health_body, metrics_body;
  EXPECT_TRUE(eventually(
      [&] {
        const auto health = api->get("/healthz");
        const auto metrics = api->get("/metrics");
        if (!health.ok() || !metrics.ok()) return false;
        health_body = health->body;
        metrics_body = metrics->body;
        return health->status == 503u && health->body.find("database full") != std::string::npos &&
               metric_line(metrics->body, "cyclecast_storage_full") == "cyclecast_storage_full 1" &&
               metric_line(metrics->body, "cyclecast_commit_failing") ==
                   "cyclecast_commit_failing 1";
      },
      30s))
      << health_body << "\n"
      << metric_line(metrics_body, "cyclecast_storage_full") << "\n"
      << metric_line(metrics_body, "cyclecast_commit_failing");
  const auto cells = api->get("/api/v1/cells");
  EXPECT_TRUE(cells.ok() && cells->status == 200u)
      << (cells.ok() ? cells->body : cells.error().message);
  const std::int64_t stored_while_full = stored_cycle_count(daemon.database());
  EXPECT_LT(stored_while_full, kCells * kCycles);
  EXPECT_TRUE(rig.running()) << "the rig must keep what was not confirmed";

  // Room again: raised by a reload, no restart.
  std::ofstream(config)
      << "[storage]\nmax_size_mb = 0\n[retrain]\ninterval_h = 0\nnew_cycles = 0\n";
  daemon.signal(SIGHUP);
  ASSERT_EQ(rig.wait(270s).value_or(-1), 0) << read_text(dir / "rig.log");
  EXPECT_NE(read_text(dir / "rig.log")
                .find("confirmed " + std::to_string(kCells * kCycles) + ", rejected 0"),
            std::string::npos)
      << read_text(dir / "rig.log");
  const std::string log = read_text(daemon.log());
  EXPECT_NE(log.find("reload: database size limit 0 MB"), std::string::npos) << log;
  EXPECT_NE(log.find("commits succeed again after"), std::string::npos) << log;

  std::map<std::pair<std::string, std::int64_t>, int> seen;
  for (const auto& row : stored_cycles(daemon.database()))
    ++seen[{row.cell_id, row.cycle}];
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCells * kCycles));
  for (const auto& [key, count] : seen)
    EXPECT_EQ(count, 1) << key.first << " cycle " << key.second;
  EXPECT_EQ(integrity(daemon.database()), "ok");

  const auto health = api->get("/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200u) << health->body;
  const auto metrics = api->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metric_line(metrics->body, "cyclecast_storage_full"), "cyclecast_storage_full 0");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s).value_or(-1), 0);
}

TEST(StorageFaultsDaemon, ADamagedDatabaseIsRefusedAtStartWithInstructions) {
  TempDir dir;
  const auto state = dir / "state";
  std::filesystem::create_directories(state);
  const auto db_path = state / "cyclecast.db";
  {
    auto db = storage::Database::open(db_path);
    ASSERT_TRUE(db.ok());
    storage::CellInfo cell;
    cell.cell_id = "c1";
    cell.rig_id = "rig";
    cell.rated_capacity_ah = 1.1;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
    std::vector<storage::CycleRecord> records;
    for (int cycle = 1; cycle <= 3000; ++cycle) {
      storage::CycleRecord record;
      record.cell_id = "c1";
      record.cycle = cycle;
      record.discharge_capacity_ah = 1.0;
      records.push_back(record);
    }
    ASSERT_TRUE(db->write_cycles(records).ok());
  }
  damage_middle(db_path);
  const std::string before = read_file(db_path);

  Child daemon({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecastd", "--config", "/dev/null",
                "--state-dir", state.string(), "--mqtt-port", std::to_string(free_port()),
                "--http-port", "0"},
               dir / "out.log");
  EXPECT_EQ(daemon.wait(30s).value_or(-1), 1);
  const std::string log = read_text(dir / "out.log");
  EXPECT_NE(log.find("failed its integrity check"), std::string::npos) << log;
  EXPECT_NE(log.find("cyclecast db check --db " + db_path.string()), std::string::npos) << log;
  EXPECT_NE(log.find(".recover"), std::string::npos) << log;
  EXPECT_EQ(read_file(db_path), before) << "a damaged file must not be written to";
}

}  // namespace
}  // namespace cyclecast::testing
