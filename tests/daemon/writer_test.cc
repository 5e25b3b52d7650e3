// The daemon's writer thread: batches commit on size or age, and each commit report acks exactly
// what the commit made final, per rig.
#include "writer.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace cyclecast::daemon {
namespace {

using protocol::AckOutcome;

storage::CycleRecord record(const std::string& cell, std::int64_t cycle, double qd_ah = 1.0) {
  storage::CycleRecord r;
  r.cell_id = cell;
  r.cycle = cycle;
  r.discharge_capacity_ah = qd_ah;
  r.source = "test";
  return r;
}

storage::CellInfo cell(const std::string& id, const std::string& rig) {
  storage::CellInfo c;
  c.cell_id = id;
  c.rig_id = rig;
  c.rated_capacity_ah = 1.1;
  return c;
}

// Collects commit reports from the writer thread.
struct Reports {
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<CommitReport> list;

  Writer::OnCommit sink() {
    return [this](CommitReport r) {
      std::lock_guard lock(mutex);
      list.push_back(std::move(r));
      arrived.notify_all();
    };
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex);
    return arrived.wait_for(lock, std::chrono::seconds(10), [&] { return list.size() >= n; });
  }
};

storage::Database open_db(const testing::TempDir& dir) {
  auto db = storage::Database::open(dir / "w.db");
  EXPECT_TRUE(db.ok());
  return std::move(*db);
}

TEST(DaemonWriter, CommitsWhenTheBatchIsFullAndAcksPerRig) {
  testing::TempDir dir;
  Reports reports;
  // A huge batch_ms: only the record count can trigger this commit.
  Writer writer(open_db(dir), BatchPolicy{4, 600000}, reports.sink());
  writer.add_cell(cell("a", "rig-1"));
  writer.add_cell(cell("b", "rig-2"));
  writer.add_record("rig-1", record("a", 1));
  writer.add_record("rig-1", record("a", 2));
  writer.add_record("rig-2", record("b", 7));
  storage::RejectedRecord bad{"mqtt:t", "{}", "missing required field 'cycle'", 0};
  writer.add_rejection("rig-2", "b", 8, bad);
  ASSERT_TRUE(reports.wait_for(1));
  const CommitReport& report = reports.list[0];
  EXPECT_TRUE(report.error.empty()) << report.error;
  EXPECT_EQ(report.stored, 3u);
  EXPECT_EQ(report.rejected, 1u);
  EXPECT_EQ(report.cells.size(), 2u);
  ASSERT_EQ(report.acks.size(), 2u);
  const auto& rig1 = report.acks.at("rig-1").ranges;
  ASSERT_EQ(rig1.size(), 1u);
  EXPECT_EQ(rig1[0].first_cycle, 1);
  EXPECT_EQ(rig1[0].last_cycle, 2);
  EXPECT_EQ(rig1[0].outcome, AckOutcome::kStored);
  const auto& rig2 = report.acks.at("rig-2").ranges;
  ASSERT_EQ(rig2.size(), 2u);
  EXPECT_EQ(rig2[0].outcome, AckOutcome::kStored);
  EXPECT_EQ(rig2[1].first_cycle, 8);
  EXPECT_EQ(rig2[1].outcome, AckOutcome::kRejected);
  EXPECT_EQ(rig2[1].reason, "missing required field 'cycle'");
}

TEST(DaemonWriter, StopCommitsWhatIsPendingAndReportsDuplicatesAndConflicts) {
  testing::TempDir dir;
  Reports reports;
  {
    Writer writer(open_db(dir), BatchPolicy{1000, 600000}, reports.sink());
    writer.add_cell(cell("a", "rig-1"));
    writer.add_record("rig-1", record("a", 1, 1.0));
    writer.stop();
  }
  ASSERT_TRUE(reports.wait_for(1));
  {
    Writer writer(open_db(dir), BatchPolicy{1000, 600000}, reports.sink());
    writer.add_record("rig-1", record("a", 1, 1.0));  // identical: duplicate
    writer.add_record("rig-1", record("a", 1, 0.5));  // different: conflict
    writer.stop();
  }
  ASSERT_TRUE(reports.wait_for(2));
  const CommitReport& second = reports.list[1];
  EXPECT_EQ(second.stored, 0u);
  EXPECT_EQ(second.duplicates, 1u);
  EXPECT_EQ(second.conflicts, 1u);
  const auto& ranges = second.acks.at("rig-1").ranges;
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].outcome, AckOutcome::kDuplicate);
  EXPECT_EQ(ranges[1].outcome, AckOutcome::kConflict);
  EXPECT_EQ(ranges[1].reason, "conflicting duplicate");
}

TEST(DaemonWriter, AcksEachRigItsOwnRecordsWhenMessagesOfRigsInterleave) {
  testing::TempDir dir;
  Reports reports;
  Writer writer(open_db(dir), BatchPolicy{1000, 600000}, reports.sink());
  for (int i = 0; i < 300; ++i) {
    writer.add_cell(cell("c" + std::to_string(i), "rig-" + std::to_string(i % 3)));
  }
  // Messages of three rigs, one after the other and back: runs of records per rig.
  writer.add_records("rig-0", {record("c0", 1), record("c0", 2)});
  writer.add_records("rig-1", {record("c1", 1)});
  writer.add_records("rig-0", {record("c0", 3), record("c3", 1)});
  writer.add_records("rig-2", {record("c2", 5), record("c2", 6)});
  writer.add_records("rig-1", {record("c1", 2)});
  writer.stop();
  ASSERT_TRUE(reports.wait_for(1));
  const CommitReport& report = reports.list[0];
  EXPECT_TRUE(report.error.empty()) << report.error;
  EXPECT_EQ(report.cells.size(), 300u);
  EXPECT_EQ(report.stored, 8u);
  ASSERT_EQ(report.acks.size(), 3u);
  const auto& rig0 = report.acks.at("rig-0").ranges;
  ASSERT_EQ(rig0.size(), 2u);
  EXPECT_EQ(rig0[0].cell_id, "c0");
  EXPECT_EQ(rig0[0].first_cycle, 1);
  EXPECT_EQ(rig0[0].last_cycle, 3);
  EXPECT_EQ(rig0[1].cell_id, "c3");
  const auto& rig1 = report.acks.at("rig-1").ranges;
  ASSERT_EQ(rig1.size(), 1u);
  EXPECT_EQ(rig1[0].first_cycle, 1);
  EXPECT_EQ(rig1[0].last_cycle, 2);
  const auto& rig2 = report.acks.at("rig-2").ranges;
  ASSERT_EQ(rig2.size(), 1u);
  EXPECT_EQ(rig2[0].first_cycle, 5);
  EXPECT_EQ(rig2[0].last_cycle, 6);
}

TEST(DaemonWriter, CommitsAPartialBatchOnceItIsOldEnough) {
  testing::TempDir dir;
  Reports reports;
  Writer writer(open_db(dir), BatchPolicy{1000000, 5}, reports.sink());
  writer.add_cell(cell("a", "rig-1"));
  writer.add_record("rig-1", record("a", 1));
  ASSERT_TRUE(reports.wait_for(1));
  EXPECT_EQ(reports.list[0].stored, 1u);
}

void exec_sql(const testing::TempDir& dir, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "w.db").c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

// A failed commit reports no cell as stored and the writer keeps the cells for its next batch:
// rigs send their records again, not their retained metadata.
TEST(DaemonWriter, TheCellsOfAFailedCommitAreWrittenWithTheNextBatch) {
  testing::TempDir dir;
  Reports reports;
  Writer writer(open_db(dir), BatchPolicy{2, 600000}, reports.sink());
  exec_sql(dir,
           "CREATE TRIGGER refuse BEFORE INSERT ON cycles "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  writer.add_cell(cell("a", "rig-1"));
  writer.add_records("rig-1", {record("a", 1), record("a", 2)});
  ASSERT_TRUE(reports.wait_for(1));
  EXPECT_FALSE(reports.list[0].error.empty());
  EXPECT_TRUE(reports.list[0].cells.empty());
  EXPECT_TRUE(reports.list[0].acks.empty());

  exec_sql(dir, "DROP TRIGGER refuse");
  writer.add_records("rig-1", {record("a", 1), record("a", 2)});
  ASSERT_TRUE(reports.wait_for(2));
  const CommitReport& second = reports.list[1];
  EXPECT_TRUE(second.error.empty()) << second.error;
  ASSERT_EQ(second.cells.size(), 1u);
  EXPECT_EQ(second.cells[0].cell_id, "a");
  EXPECT_EQ(second.stored, 2u);
}

// Records of a cell whose metadata is not stored are answered `retry`, never a final refusal;
// a cell the database refuses is reported as refused, not stored.
TEST(DaemonWriter, RecordsOfACellNotStoredAreAnsweredRetry) {
  testing::TempDir dir;
  Reports reports;
  Writer writer(open_db(dir), BatchPolicy{3, 600000}, reports.sink());
  exec_sql(dir,
           "CREATE TRIGGER refuse_x BEFORE INSERT ON cells WHEN NEW.cell_id = 'x' "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  writer.add_cell(cell("x", "rig-1"));
  writer.add_cell(cell("y", "rig-1"));
  writer.add_records("rig-1", {record("x", 1), record("x", 2), record("y", 1)});
  ASSERT_TRUE(reports.wait_for(1));
  const CommitReport& report = reports.list[0];
  EXPECT_TRUE(report.error.empty()) << report.error;
  ASSERT_EQ(report.cells.size(), 1u);
  EXPECT_EQ(report.cells[0].cell_id, "y");
  ASSERT_EQ(report.refused_cells.size(), 1u);
  EXPECT_EQ(report.refused_cells[0].cell.cell_id, "x");
  EXPECT_FALSE(report.refused_cells[0].owned_elsewhere);
  const auto& ranges = report.acks.at("rig-1").ranges;
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].cell_id, "x");
  EXPECT_EQ(ranges[0].outcome, AckOutcome::kRetry);
  EXPECT_EQ(ranges[0].last_cycle, 2);
  EXPECT_EQ(ranges[1].outcome, AckOutcome::kStored);
}

}  // namespace
}  // namespace cyclecast::daemon
