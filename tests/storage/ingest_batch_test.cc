// Database::write_batch: one ingest batch of the daemon's writer is one transaction. Its cases
// run on both backends (SQLite and PostgreSQL) where they apply.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "backend_test_util.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::BackendTest;
using testing::make_cell;
using testing::make_cycles;
using testing::raw_exec;

ForecastRecord make_forecast(const std::string& cell_id, std::int64_t at_cycle) {
  return {cell_id, at_cycle, "v1", "edge:nano-1", {0.98f, 0.97f}, 1'700'000'000'000};
}

class IngestBatchTest : public BackendTest {
 protected:
  Result<Database> open_db() { return open_database(); }
};

CYCLECAST_ON_BOTH_BACKENDS(IngestBatchTest);

TEST_P(IngestBatchTest, CellsRejectedAndCyclesAreDurableTogether) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<CellInfo> cells = {make_cell("c1")};
  const std::vector<RejectedRecord> rejected = {{"rig-a", "not json", "malformed JSON", 0}};
  auto written = db->write_batch({cells, rejected, make_cycles("c1", 1, 5), {}});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->cycles.inserted, 5u);  // the cell announced in the same batch is known
  EXPECT_EQ(raw_count("SELECT count(*) FROM cells"), 1);
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles"), 5);
  EXPECT_EQ(raw_count("SELECT count(*) FROM rejected"), 1);
}

// Metadata that is not a JSON object is refused by the database itself (a CHECK on both
// backends): the cell costs only itself.
TEST_P(IngestBatchTest, ACellWithMetadataThatIsNotJsonCostsOnlyItself) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  CellInfo bad = make_cell("bad");
  bad.metadata_json = "{not json";
  const std::vector<CellInfo> cells = {bad, make_cell("good")};
  auto written = db->write_batch({cells, {}, make_cycles("good", 1, 2), {}});
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_EQ(written->refused_cells.size(), 1u);
  EXPECT_EQ(written->refused_cells[0].cell_id, "bad");
  EXPECT_EQ(written->refused_cells[0].index, 0u);
  EXPECT_EQ(written->cycles.inserted, 2u);
  EXPECT_FALSE(db->find_cell("bad")->has_value());
}

TEST_P(IngestBatchTest, CellsRejectedCyclesAndForecastsAreDurableTogether) {
  auto db = open_database();
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

TEST_P(IngestBatchTest, AFailedCyclesPartLeavesNothingOfTheBatchBehind) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<CellInfo> cells = {make_cell("c1")};
  const std::vector<RejectedRecord> rejected = {{"rig-a", "not json", "malformed JSON", 0}};
  // The database refuses the third cycle after the first two were written.
  add_failing_trigger("refuse_third", "cycles", "NEW.cycle = 3", "refused by the test");
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
TEST_P(IngestBatchTest, ACellOfARolledBackBatchIsForgotten) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  add_failing_trigger("refuse_third", "cycles", "NEW.cycle = 3", "refused by the test");
  const std::vector<CellInfo> first = {make_cell("c1")};
  ASSERT_FALSE(db->write_batch({first, {}, make_cycles("c1", 1, 5), {}}).ok());
  drop_trigger("refuse_third", "cycles");
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

// A cell whose content the database refuses (here a trigger; in the field, metadata that json_valid
// rejects) costs only itself: the other cell of the batch is stored with its cycles.
TEST_P(IngestBatchTest, ACellTheDatabaseRefusesCostsOnlyItself) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  add_failing_trigger("refuse_bad", "cells", "NEW.cell_id = 'bad'", "refused by the test");
  const std::vector<CellInfo> cells = {make_cell("bad"), make_cell("good")};
  std::vector<CycleRecord> cycles = make_cycles("bad", 1, 3);
  for (auto& c : make_cycles("good", 1, 3))
    cycles.push_back(c);

  auto written = db->write_batch({cells, {}, cycles, {}});
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_EQ(written->refused_cells.size(), 1u);
  EXPECT_EQ(written->refused_cells[0].cell_id, "bad");
  EXPECT_FALSE(written->refused_cells[0].owned_elsewhere);
  EXPECT_NE(written->refused_cells[0].reason.find("refused by the test"), std::string::npos);
  EXPECT_EQ(written->cycles.inserted, 3u);
  EXPECT_EQ(written->cycles.unknown_cells, 3u);
  auto counts = db->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->cells, 1);

  // Once the database takes it, the same cell is stored by a later batch.
  drop_trigger("refuse_bad", "cells");
  auto again = db->write_batch({std::span<const CellInfo>(cells.data(), 1), {}, cycles, {}});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->refused_cells.empty());
  EXPECT_EQ(again->cycles.inserted, 3u);
}

// A cell belongs to the rig that registered it: metadata from another rig changes nothing.
TEST_P(IngestBatchTest, ACellOfAnotherRigKeepsItsRigAndMetadata) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  CellInfo intruder = make_cell("c1");
  intruder.rig_id = "rig-b";
  intruder.rated_capacity_ah = 2.0;
  const std::vector<CellInfo> cells = {intruder};

  auto written = db->write_batch({cells, {}, {}, {}});
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_EQ(written->refused_cells.size(), 1u);
  EXPECT_TRUE(written->refused_cells[0].owned_elsewhere);
  EXPECT_NE(written->refused_cells[0].reason.find("belongs to rig 'rig-a'"), std::string::npos);
  auto stored = db->find_cell("c1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->rig_id, "rig-a");
  EXPECT_EQ((*stored)->rated_capacity_ah, 1.1);
}

TEST_P(IngestBatchTest, AMovedCellTakesItsNewRigsMetadataOnly) {
  auto db = open_db();
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(
      db->write_batch({std::vector<CellInfo>{make_cell("c1")}, {}, make_cycles("c1", 1, 4), {}})
          .ok());
  auto moved = db->move_cell("c1", "rig-b");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->rig_id, "rig-b");
  EXPECT_EQ(moved->rated_capacity_ah, 1.1);
  EXPECT_EQ(db->cycles_of("c1")->size(), 4u);

  CellInfo old_owner = make_cell("c1");
  old_owner.rated_capacity_ah = 3.0;
  auto refused = db->write_batch({std::vector<CellInfo>{old_owner}, {}, {}, {}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->refused_cells.size(), 1u);
  CellInfo new_owner = make_cell("c1");
  new_owner.rig_id = "rig-b";
  new_owner.rated_capacity_ah = 1.2;
  auto taken = db->write_batch({std::vector<CellInfo>{new_owner}, {}, {}, {}});
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE(taken->refused_cells.empty());
  EXPECT_EQ((*db->find_cell("c1"))->rated_capacity_ah, 1.2);

  EXPECT_EQ(db->move_cell("nope", "rig-b").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(db->move_cell("c1", "").error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IngestBatchTest, RefusedForecastsCostOnlyThemselves) {
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  add_failing_trigger("refuse_second", "forecasts", "NEW.at_cycle = 4", "refused by the test");
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

TEST_P(IngestBatchTest, AnInvalidForecastIsRefusedWithoutWritingAndTheRestCommits) {
  auto db = open_database();
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
