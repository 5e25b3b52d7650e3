// Database::write_batch: one ingest batch of the daemon's writer is one transaction.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::make_cell;
using testing::make_cycles;
using testing::raw_exec;

ForecastRecord make_forecast(const std::string& cell_id, std::int64_t at_cycle) {
  return {cell_id, at_cycle, "v1", "edge:nano-1", {0.98f, 0.97f}, 1'700'000'000'000};
}

TEST(IngestBatch, CellsRejectedCyclesAndForecastsAreDurableTogether) {
  TempDir dir;
  auto db = Database::open(dir / "b.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<CellInfo> cells = {make_cell("c1")};
  const std::vector<RejectedRecord> rejected = {{"rig-a", "not json", "malformed JSON", 0}};
  const std::vector<CycleRecord> cycles = make_cycles("c1", 1, 5);
  const std::vector<ForecastRecord> forecasts = {make_forecast("c1", 5)};

  auto written = db->write_batch({cells, rejected, cycles, forecasts});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->cycles.inserted, 5u);  // the cell announced in the same batch is known
  EXPECT_EQ(written->forecasts.stored, 1u);
  EXPECT_FALSE(written->forecast_error);
  auto counts = db->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->cells, 1);
  EXPECT_EQ(counts->cycles, 5);
  EXPECT_EQ(counts->rejected, 1);
  EXPECT_EQ(counts->forecasts, 1);
}

TEST(IngestBatch, AFailedCyclesPartLeavesNothingOfTheBatchBehind) {
  TempDir dir;
  auto db = Database::open(dir / "b.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<CellInfo> cells = {make_cell("c1")};
  const std::vector<RejectedRecord> rejected = {{"rig-a", "not json", "malformed JSON", 0}};
  // The database refuses the third cycle after the first two were written.
  raw_exec(dir / "b.db",
           "CREATE TRIGGER refuse_third BEFORE INSERT ON cycles WHEN NEW.cycle = 3 "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  const std::vector<CycleRecord> cycles = make_cycles("c1", 1, 5);

  auto written = db->write_batch({cells, rejected, cycles, {}});
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().message.find("cycles: "), std::string::npos) << written.error().message;
  auto counts = db->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->cells, 0);
  EXPECT_EQ(counts->cycles, 0);
  EXPECT_EQ(counts->rejected, 0);
}

// A cell inserted by a batch that rolled back is gone: its cycles that come later are of an
// unknown cell, never stored under the cell that was given its rowid next.
TEST(IngestBatch, ACellOfARolledBackBatchIsForgotten) {
  TempDir dir;
  auto db = Database::open(dir / "b.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  raw_exec(dir / "b.db",
           "CREATE TRIGGER refuse_third BEFORE INSERT ON cycles WHEN NEW.cycle = 3 "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  const std::vector<CellInfo> first = {make_cell("c1")};
  ASSERT_FALSE(db->write_batch({first, {}, make_cycles("c1", 1, 5), {}}).ok());
  raw_exec(dir / "b.db", "DROP TRIGGER refuse_third");
  const std::vector<CellInfo> second = {make_cell("c2")};
  ASSERT_TRUE(db->write_batch({second, {}, make_cycles("c2", 1, 2), {}}).ok());

  auto later = db->write_batch({{}, {}, make_cycles("c1", 1, 2), {}});
  ASSERT_TRUE(later.ok()) << later.error().message;
  EXPECT_EQ(later->cycles.unknown_cells, 2u);
  EXPECT_EQ(later->cycles.inserted, 0u);
  auto c2 = db->cycles_of("c2");
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->size(), 2u);
}

TEST(IngestBatch, RefusedForecastsCostOnlyThemselves) {
  TempDir dir;
  auto db = Database::open(dir / "b.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  raw_exec(dir / "b.db",
           "CREATE TRIGGER refuse_second BEFORE INSERT ON forecasts WHEN NEW.at_cycle = 4 "
           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  const std::vector<CellInfo> cells = {make_cell("c1")};
  const std::vector<CycleRecord> cycles = make_cycles("c1", 1, 5);
  // The first forecast is written, then the second fails: the savepoint takes back both.
  const std::vector<ForecastRecord> forecasts = {make_forecast("c1", 3), make_forecast("c1", 4)};

  auto written = db->write_batch({cells, {}, cycles, forecasts});
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_TRUE(written->forecast_error);
  EXPECT_NE(written->forecast_error->message.find("refused by the test"), std::string::npos);
  EXPECT_EQ(written->cycles.inserted, 5u);
  auto counts = db->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->cells, 1);
  EXPECT_EQ(counts->cycles, 5);
  EXPECT_EQ(counts->forecasts, 0);
}

TEST(IngestBatch, AnInvalidForecastIsRefusedWithoutWritingAndTheRestCommits) {
  TempDir dir;
  auto db = Database::open(dir / "b.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<CellInfo> cells = {make_cell("c1")};
  ForecastRecord invalid = make_forecast("c1", 2);
  invalid.model_version.clear();
  const std::vector<ForecastRecord> forecasts = {invalid};

  auto written = db->write_batch({cells, {}, make_cycles("c1", 1, 2), forecasts});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_TRUE(written->forecast_error);
  EXPECT_EQ(written->cycles.inserted, 2u);
}

// The registry works on the Database's own connection, so the options it was opened with hold
// for registry writes too.
TEST(IngestBatch, RegistryWritesObeyTheDatabasesReadOnlyOption) {
  TempDir dir;
  {
    auto created = Database::open(dir / "r.db");
    ASSERT_TRUE(created.ok()) << created.error().message;
  }
  OpenOptions options;
  options.read_only = true;
  auto db = Database::open(dir / "r.db", options);
  ASSERT_TRUE(db.ok()) << db.error().message;
  NewRun new_run;
  new_run.trigger = "manual";
  auto run = create_run(*db, new_run);
  ASSERT_FALSE(run.ok());
  auto runs = list_runs(*db);
  ASSERT_TRUE(runs.ok()) << runs.error().message;
  EXPECT_TRUE(runs->empty());
}

}  // namespace
}  // namespace cyclecast::storage
