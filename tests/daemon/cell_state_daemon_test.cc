// The daemon's knowledge of cells against a real mosquitto and the built cyclecastd: what it
// remembers of a cell changes only after the commit that stores it, so a cell whose write failed
// (a full database, metadata the database refuses) is written again and its records are never
// answered with a final refusal; and a cell belongs to the rig that registered it until an
// operator moves it through the API (docs/protocol.md, docs/api.md).
#include <sqlite3.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "cell-state-test-token";
// A second between a batch's first item and its commit: metadata and the records published
// right after it are written in one batch.
constexpr const char* kSlowBatches = "[ingest]\nbatch_ms = 1000\n";
constexpr const char* kNoRetraining = "[retrain]\ninterval_h = 0\nnew_cycles = 0\n";

std::string records_json(int first, int last, double qd_ah = 1.05) {
  std::string out = "[";
  for (int cycle = first; cycle <= last; ++cycle) {
    if (cycle > first) out += ",";
    out += R"({"cycle":)" + std::to_string(cycle) + R"(,"qd_ah":)" + std::to_string(qd_ah) + "}";
  }
  return out + "]";
}

std::optional<storage::CellInfo> stored_cell(const std::filesystem::path& db_path,
                                             const std::string& cell_id) {
  storage::OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  auto db = storage::Database::open(db_path, options);
  if (!db) return std::nullopt;
  auto found = db->find_cell(cell_id);
  return found && *found ? std::optional<storage::CellInfo>(**found) : std::nullopt;
}

std::int64_t cycles_of(const std::filesystem::path& db_path, const std::string& cell_id) {
  std::int64_t n = 0;
  for (const auto& row : stored_cycles(db_path))
    n += row.cell_id == cell_id ? 1 : 0;
  return n;
}

bool has_reason(const std::filesystem::path& db_path, const std::string& part) {
  for (const auto& reason : rejected_reasons(db_path))
    if (reason.find(part) != std::string::npos) return true;
  return false;
}

// Runs SQL on the file behind the daemon's back (a connection of its own).
bool exec_sql(const std::filesystem::path& path, const char* sql) {
  sqlite3* db = nullptr;
  bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK;
  if (ok) {
    sqlite3_busy_timeout(db, 5000);
    ok = sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  sqlite3_close(db);
  return ok;
}

// Fills a new database up to `limit_bytes` with cycles of a filler cell until not even one more
// record fits, then with filler cells until not one more cell fits, so that any later batch
// holding a record or a new cell fails with kFull. Filling in batches of
// 200 only would leave room for a smaller batch, and a slow run (sanitizers) that commits the
// first few records of a cell with its metadata before the rest would store the cell.
void fill_database(const std::filesystem::path& path, std::int64_t limit_bytes) {
  storage::OpenOptions options;
  options.max_size_bytes = limit_bytes;
  auto db = storage::Database::open(path, options);
  ASSERT_TRUE(db.ok()) << db.error().message;
  storage::CellInfo filler;
  filler.cell_id = "filler";
  filler.rig_id = "rig-filler";
  filler.rated_capacity_ah = 1.1;
  ASSERT_TRUE(db->upsert_cell(filler).ok());
  std::int64_t cycle = 1;
  for (const std::size_t batch_size : {200, 20, 1}) {
    for (bool full = false; !full;) {
      ASSERT_LT(cycle, 1'000'000) << "the database never filled up";
      std::vector<storage::CycleRecord> records(batch_size);
      for (auto& r : records) {
        r.cell_id = "filler";
        r.cycle = cycle++;
        r.discharge_capacity_ah = 1.0;
        r.source = "filler";
      }
      auto written = db->write_cycles(records);
      full = !written;
      if (full) {
        ASSERT_EQ(written.error().code, ErrorCode::kFull) << written.error().message;
      }
    }
  }
  // And cells until not one more fits: a loaded machine may commit a batch holding the new
  // cells' metadata alone, before their records arrive.
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 100'000) << "the cells table never filled up";
    filler.cell_id = "filler-" + std::to_string(i);
    auto written = db->upsert_cell(filler);
    if (!written) {
      ASSERT_EQ(written.error().code, ErrorCode::kFull) << written.error().message;
      return;
    }
  }
}

TEST(CellStateDaemon, CellsAnnouncedWhileTheDatabaseIsFullAreStoredOnceThereIsRoom) {
  TempDir dir;
  std::filesystem::create_directories(dir / "state");
  ASSERT_NO_FATAL_FAILURE(fill_database(dir / "state" / "cyclecast.db", 1024 * 1024));
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  const auto config = dir / "cyclecastd.toml";
  std::ofstream(config) << "[storage]\nmax_size_mb = 1\n" << kSlowBatches << kNoRetraining;
  DaemonProcess daemon(dir / "state", port, config);
  daemon.start();

  // New cells: their metadata and records fail together for want of room.
  const RigData data = write_rig_data(dir.path(), 2, 300);
  Child rig =
      start_rig(dir.path(), port,
                {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                 (dir / "outbox.db").string(), "--ack-timeout-ms", "1000", "--deadline-s", "120"},
                "rig.log");
  ASSERT_TRUE(eventually(
      [&] { return read_text(daemon.log()).find("database full") != std::string::npos; }, 60s))
      << read_text(daemon.log());
  EXPECT_FALSE(stored_cell(daemon.database(), RigData::cell_id(0)).has_value());

  std::ofstream(config) << "[storage]\nmax_size_mb = 0\n" << kSlowBatches << kNoRetraining;
  daemon.signal(SIGHUP);
  ASSERT_EQ(rig.wait(150s).value_or(-1), 0)
      << read_text(dir / "rig.log") << read_text(daemon.log());
  EXPECT_NE(read_text(dir / "rig.log").find("confirmed 600, rejected 0"), std::string::npos)
      << read_text(dir / "rig.log");
  EXPECT_EQ(cycles_of(daemon.database(), RigData::cell_id(0)), 300);
  EXPECT_EQ(cycles_of(daemon.database(), RigData::cell_id(1)), 300);
  EXPECT_FALSE(has_reason(daemon.database(), "unknown cell"));
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s).value_or(-1), 0);
}

TEST(CellStateDaemon, ACellTheDatabaseRefusedIsWrittenWhenAnnouncedAgain) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  const auto config = dir / "cyclecastd.toml";
  std::ofstream(config) << kSlowBatches << kNoRetraining;
  DaemonProcess daemon(dir / "state", port, config);
  daemon.start();
  // The database refuses cell x as SQLite refuses metadata its json_valid rejects.
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(daemon.database()); }, 10s));
  ASSERT_TRUE(exec_sql(daemon.database(),
                       "CREATE TRIGGER refuse_x BEFORE INSERT ON cells WHEN NEW.cell_id = 'x' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"));
  Child acks({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1",
              "-t", protocol::acks_topic("rig-t")},
             dir / "acks.log");
  const std::string meta = R"({"rated_capacity_ah":1.1})";
  // x and y in one batch: the refusal of x costs y nothing.
  ASSERT_TRUE(publish_raw(port, protocol::meta_topic("rig-t", "x"), meta));
  ASSERT_TRUE(publish_raw(port, protocol::meta_topic("rig-t", "y"), meta));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-t", "x"), records_json(1, 3)));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-t", "y"), records_json(1, 3)));
  ASSERT_TRUE(eventually([&] { return cycles_of(daemon.database(), "y") == 3; }, 30s))
      << read_text(daemon.log());
  ASSERT_TRUE(
      eventually([&] { return has_reason(daemon.database(), "cell metadata not stored: "); }, 30s));
  EXPECT_FALSE(stored_cell(daemon.database(), "x").has_value());
  // x's records are answered so that the rig keeps them: `retry` when they reached the database
  // with x's refusal, a refused message (unknown cell) when they came after it.
  ASSERT_TRUE(eventually(
      [&] {
        const std::string answers = read_text(dir / "acks.log");
        return answers.find(R"("outcome":"retry")") != std::string::npos ||
               answers.find("unknown cell 'x'") != std::string::npos;
      },
      30s))
      << read_text(dir / "acks.log");
  EXPECT_EQ(read_text(dir / "acks.log").find(R"("outcome":"rejected")"), std::string::npos)
      << read_text(dir / "acks.log");

  // Once the database takes it, the same metadata announced again is written, and x's records
  // sent again are stored.
  ASSERT_TRUE(exec_sql(daemon.database(), "DROP TRIGGER refuse_x"));
  ASSERT_TRUE(publish_raw(port, protocol::meta_topic("rig-t", "x"), meta));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-t", "x"), records_json(1, 3)));
  ASSERT_TRUE(eventually([&] { return cycles_of(daemon.database(), "x") == 3; }, 30s))
      << read_text(daemon.log());
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s).value_or(-1), 0);
}

TEST(CellStateDaemon, ACellBelongsToItsRigUntilAnOperatorMovesIt) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  const auto token_file = dir / "api-token";
  std::ofstream(token_file) << kToken << "\n";
  ::chmod(token_file.c_str(), 0600);
  const auto config = dir / "cyclecastd.toml";
  std::ofstream(config) << "[http]\ntoken_file = \"" << token_file.string() << "\"\n"
                        << kNoRetraining;
  DaemonProcess daemon(dir / "state", port, config);
  daemon.start();
  ASSERT_TRUE(eventually([&] { return daemon.api_port() > 0; }, 10s));
  const auto db = daemon.database();

  ASSERT_TRUE(
      publish_raw(port, protocol::meta_topic("rig-a", "c"), R"({"rated_capacity_ah":1.1})"));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-a", "c"), records_json(1, 2)));
  ASSERT_TRUE(eventually([&] { return cycles_of(db, "c") == 2; }, 30s)) << read_text(daemon.log());

  // Another rig's metadata and records for c are refused; the owner's still count.
  ASSERT_TRUE(
      publish_raw(port, protocol::meta_topic("rig-b", "c"), R"({"rated_capacity_ah":2.0})"));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-b", "c"), records_json(3, 3, 1.9)));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-a", "c"), records_json(3, 4)));
  ASSERT_TRUE(eventually([&] { return cycles_of(db, "c") == 4; }, 30s)) << read_text(daemon.log());
  ASSERT_TRUE(eventually(
      [&] {
        int n = 0;
        for (const auto& r : rejected_reasons(db))
          n += r.find("cell 'c' belongs to rig 'rig-a'") != std::string::npos ? 1 : 0;
        return n == 2;
      },
      30s));
  auto cell = stored_cell(db, "c");
  ASSERT_TRUE(cell.has_value());
  EXPECT_EQ(cell->rig_id, "rig-a");
  EXPECT_EQ(cell->rated_capacity_ah, 1.1);
  for (const auto& row : stored_cycles(db))
    EXPECT_NE(row.qd_ah, 1.9) << "the intruder's record was stored";

  // An operator moves c to rig-b: from then on rig-b's metadata and records count, rig-a's not.
  auto api = http::ApiClient::create(
      {.base_url = "http://127.0.0.1:" + std::to_string(daemon.api_port()), .token = kToken});
  ASSERT_TRUE(api.ok());
  auto moved = api->post("/api/v1/cells/c/move", Json{{"rig", "rig-b"}, {"why", "rewired"}});
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  ASSERT_EQ(moved->status, 200u) << moved->body;
  EXPECT_EQ(Json::parse(moved->body)["previous_rig_id"], "rig-a");
  ASSERT_TRUE(eventually(
      [&] {
        return read_text(daemon.log()).find("cell c moved to rig rig-b") != std::string::npos;
      },
      10s));
  ASSERT_TRUE(
      publish_raw(port, protocol::meta_topic("rig-b", "c"), R"({"rated_capacity_ah":2.0})"));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-a", "c"), records_json(5, 5)));
  ASSERT_TRUE(publish_raw(port, protocol::cycles_topic("rig-b", "c"), records_json(6, 6, 1.9)));
  ASSERT_TRUE(eventually([&] { return cycles_of(db, "c") == 5; }, 30s)) << read_text(daemon.log());
  ASSERT_TRUE(eventually([&] { return stored_cell(db, "c")->rated_capacity_ah == 2.0; }, 30s));
  EXPECT_TRUE(eventually([&] { return has_reason(db, "cell 'c' belongs to rig 'rig-b'"); }, 30s));
  for (const auto& row : stored_cycles(db))
    EXPECT_NE(row.cycle, 5) << "the former owner's record was stored";
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s).value_or(-1), 0);
}

}  // namespace
}  // namespace cyclecast::testing
