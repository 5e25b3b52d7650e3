// Forecast rows: stored once per (cell, at_cycle, model_version, origin), read back by cell with
// their SOH vectors bit for bit, unknown cells counted and not written; on both backends.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend_test_util.h"
#include "cyclecast/storage/database.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::BackendTest;

// Every forecast test but the SQLite migration's runs on both backends.
class ForecastsTest : public BackendTest {};
CYCLECAST_ON_BOTH_BACKENDS(ForecastsTest);

const std::vector<std::string> kC1 = {"c1"};

TEST_P(ForecastsTest, AreStoredOnceAndReadBack) {
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  const CellInfo cell{"c1", "rig-1", "LFP", 1.1, "", "{}"};
  ASSERT_TRUE(db->upsert_cell(cell).ok());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ForecastRecord edge{"c1", 120, "v1", "edge:nano-1", {nan, 0.98f, nan, 0.95f}, 1700000000000};
  ForecastRecord other = edge;
  other.origin = "host";
  ForecastRecord stranger = edge;
  stranger.cell_id = "nobody";
  const std::vector<ForecastRecord> batch = {edge, other, edge, stranger};
  auto written = db->write_forecasts(batch);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->stored, 2u);
  EXPECT_EQ(written->duplicates, 1u);
  EXPECT_EQ(written->unknown_cells, 1u);
  auto again = db->write_forecasts(std::vector<ForecastRecord>{edge});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1u);

  auto read = db->forecasts_of("c1");
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[1].origin, "host");  // "edge:..." sorts before "host"
  const ForecastRecord& stored = (*read)[0];
  EXPECT_EQ(stored.origin, "edge:nano-1");
  EXPECT_EQ(stored.at_cycle, 120);
  EXPECT_EQ(stored.model_version, "v1");
  EXPECT_EQ(stored.created_at_ms, 1700000000000);
  ASSERT_EQ(stored.soh.size(), 4u);
  EXPECT_TRUE(std::isnan(stored.soh[0]));
  EXPECT_EQ(stored.soh[1], 0.98f);
  EXPECT_EQ(stored.soh[3], 0.95f);
  EXPECT_EQ(db->counts()->forecasts, 2);
  EXPECT_TRUE(db->forecasts_of("nobody")->empty());
}

TEST_P(ForecastsTest, IntervalsAreStoredBitForBitAndAForecastWithoutOneReadsWithout) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ForecastRecord with{"c1", 10, "v2", "host", {0.97f, 0.96f}, 1};
  with.lower = {0.95f, 0.93f};
  with.upper = {0.99f, 0.985f};
  ForecastRecord without{"c1", 11, "v1", "host", {0.97f, 0.96f}, 2};
  ASSERT_TRUE(db->write_forecasts(std::vector<ForecastRecord>{with, without}).ok());
  auto read = db->forecasts_of("c1");
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].lower, with.lower);
  EXPECT_EQ((*read)[0].upper, with.upper);
  EXPECT_TRUE((*read)[1].lower.empty());
  EXPECT_TRUE((*read)[1].upper.empty());
  EXPECT_EQ(raw_count("SELECT count(*) FROM forecasts WHERE lower_f32le IS NULL"), 1);
}

TEST_P(ForecastsTest, AnIntervalWithoutABoundForEveryStepIsRefused) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ForecastRecord half{"c1", 10, "v2", "host", {0.97f, 0.96f}, 1};
  half.lower = {0.95f, 0.93f};
  EXPECT_EQ(db->write_forecasts(std::vector<ForecastRecord>{half}).error().code,
            ErrorCode::kInvalidArgument);
  ForecastRecord short_bounds = half;
  short_bounds.upper = {0.99f};
  EXPECT_EQ(db->write_forecasts(std::vector<ForecastRecord>{short_bounds}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(db->counts()->forecasts, 0);
}

// A database written before intervals (schema version 3) is migrated forward: its forecasts are
// kept, read without an interval, and new ones can carry one.
TEST(Forecasts, AVersion3DatabaseGainsIntervalColumnsAndKeepsItsForecasts) {
  TempDir dir;
  const auto path = dir / "v3.db";
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
    ASSERT_TRUE(db->write_forecasts(
                      std::vector<ForecastRecord>{{"c1", 10, "old", "host", {0.9f, 0.89f}, 5}})
                    .ok());
  }
  // Back to what version 3 wrote: no interval columns, no rows of version 4 or later (version
  // 5's copy of model_events runs again on the reopen, which it may).
  raw_exec(path,
           "ALTER TABLE forecasts DROP COLUMN lower_f32le; "
           "ALTER TABLE forecasts DROP COLUMN upper_f32le; "
           "DELETE FROM schema_version WHERE version >= 4;");
  ASSERT_EQ(raw_int(path, "SELECT max(version) FROM schema_version"), 3);
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->schema_version(), kSchemaVersion);
  auto read = db->forecasts_of("c1");
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].soh, (std::vector<float>{0.9f, 0.89f}));
  EXPECT_TRUE((*read)[0].lower.empty());
  ForecastRecord next{"c1", 11, "new", "host", {0.9f}, 6};
  next.lower = {0.8f};
  next.upper = {1.0f};
  ASSERT_TRUE(db->write_forecasts(std::vector<ForecastRecord>{next}).ok());
  EXPECT_EQ(db->forecasts_of("c1")->back().upper, std::vector<float>{1.0f});
}

TEST_P(ForecastsTest, RecentAreTheNewestFirstUpToTheLimit) {
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell(CellInfo{"c1", "rig-1", "LFP", 1.1, "", "{}"}).ok());
  std::vector<ForecastRecord> batch;
  for (std::int64_t at = 100; at <= 104; ++at)
    batch.push_back({"c1", at, "v1", "host", {0.9f}, 0});
  batch.push_back({"c1", 104, "v1", "edge:n1", {0.8f}, 0});
  ASSERT_TRUE(db->write_forecasts(batch).ok());
  auto recent = db->recent_forecasts("c1", 3);
  ASSERT_TRUE(recent.ok()) << recent.error().message;
  ASSERT_EQ(recent->size(), 3u);
  EXPECT_EQ((*recent)[0].at_cycle, 104);
  EXPECT_EQ((*recent)[0].origin, "edge:n1");  // stored after the host forecast of cycle 104
  EXPECT_EQ((*recent)[1].at_cycle, 104);
  EXPECT_EQ((*recent)[2].at_cycle, 103);
  EXPECT_TRUE(db->recent_forecasts("nobody", 3)->empty());
}

TEST_P(ForecastsTest, TheOldestUnforecastCycleIsTheFirstHoleAfterTheFirstForecast) {
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell(CellInfo{"c1", "rig-1", "LFP", 1.1, "", "{}"}).ok());
  ASSERT_TRUE(db->write_cycles(testing::make_cycles("c1", 1, 30)).ok());
  EXPECT_EQ(*db->oldest_unforecast_cycle("c1", "host"), 0) << "never forecast: history";
  std::vector<ForecastRecord> batch;
  for (std::int64_t at : {20, 21, 22, 26, 27, 28, 29, 30})
    batch.push_back({"c1", at, "v1", "host", {0.9f}, 0});
  batch.push_back({"c1", 23, "v1", "edge:n1", {0.8f}, 0});
  ASSERT_TRUE(db->write_forecasts(batch).ok());
  EXPECT_EQ(*db->oldest_unforecast_cycle("c1", "host"), 23);
  EXPECT_EQ(*db->oldest_unforecast_cycle("c1", "edge:n1"), 24);
  EXPECT_EQ(*db->oldest_unforecast_cycle("nobody", "host"), 0);
}

TEST_P(ForecastsTest, RefuseABatchWithAnInvalidForecastWhole) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ForecastRecord bad{"c1", 0, "v1", "host", {0.9f}, 0};
  auto written = db->write_forecasts(std::vector<ForecastRecord>{bad});
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(db->counts()->forecasts, 0);
}

// Cycles `from`..`to` of cell c1 with discharge capacity `capacity_ah` (rated 2.0 Ah).
void store_cycles(Database& db, std::int64_t from, std::int64_t to, double capacity_ah) {
  std::vector<CycleRecord> cycles;
  for (std::int64_t c = from; c <= to; ++c) {
    CycleRecord r;
    r.cell_id = "c1";
    r.cycle = c;
    r.discharge_capacity_ah = capacity_ah;
    r.source = "test";
    cycles.push_back(r);
  }
  ASSERT_TRUE(db.write_cycles(cycles).ok());
}

TEST_P(ForecastsTest, AreScoredAtPlus10AndPlusHAsTheirCyclesArrive) {
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell({"c1", "rig-1", "LFP", 2.0, "", "{}"}).ok());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> edge_soh(20, nan);
  edge_soh[9] = 0.97f;
  edge_soh[19] = 0.96f;
  const std::vector<ForecastRecord> forecasts = {
      {"c1", 5, "v1", "host", std::vector<float>(20, 0.9f), 0},
      {"c1", 5, "v1", "edge:n1", edge_soh, 0},
      {"c1", 30, "v1", "host", std::vector<float>(20, 0.9f), 0}};
  ASSERT_TRUE(db->write_forecasts(forecasts).ok());
  EXPECT_EQ(*db->score_forecasts(kC1), 0u);  // no cycles yet

  store_cycles(*db, 1, 15, 1.9);  // SOH 0.95: +10 of the cycle-5 forecasts is known
  EXPECT_EQ(*db->score_forecasts(kC1), 2u);
  EXPECT_EQ(*db->score_forecasts(kC1), 0u);  // nothing new: scoring is idempotent
  store_cycles(*db, 16, 25, 1.8);            // SOH 0.9 at cycle 25 = +20 of the cycle-5 ones
  std::vector<ScoredForecast> scored_h;
  EXPECT_EQ(*db->score_forecasts(kC1, &scored_h), 2u);
  // The drift monitor's stream: the two +H errors just set, with whose forecasts they were.
  ASSERT_EQ(scored_h.size(), 2u);
  for (const ScoredForecast& s : scored_h) {
    EXPECT_EQ(s.cell_id, "c1");
    EXPECT_EQ(s.at_cycle, 5);
    EXPECT_EQ(s.target_cycle, 25);
    EXPECT_EQ(s.model_version, "v1");
    EXPECT_NEAR(s.origin_soh, 0.95, 1e-9) << "the SOH of cycle 5, its band for the drift monitor";
  }
  const bool host_first = scored_h[0].origin == "host";
  EXPECT_NEAR(scored_h[host_first ? 0 : 1].error_h, 0.0, 1e-6);
  EXPECT_EQ(scored_h[host_first ? 1 : 0].origin, "edge:n1");
  EXPECT_NEAR(scored_h[host_first ? 1 : 0].error_h, 0.9 - 0.96, 1e-6);
  scored_h.clear();
  EXPECT_EQ(*db->score_forecasts(kC1, &scored_h), 0u);
  EXPECT_TRUE(scored_h.empty()) << "each +H error is handed out once";

  auto read = db->forecasts_of("c1");
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  const ForecastRecord& edge = (*read)[0];
  const ForecastRecord& host = (*read)[1];
  EXPECT_NEAR(host.error_10, 0.95 - 0.9, 1e-6);
  EXPECT_NEAR(host.error_h, 0.9 - 0.9, 1e-6);
  EXPECT_NEAR(edge.error_10, 0.95 - 0.97, 1e-6);
  EXPECT_NEAR(edge.error_h, 0.9 - 0.96, 1e-6);
  EXPECT_TRUE(std::isnan((*read)[2].error_10));  // cycle 40 not stored
  EXPECT_TRUE(std::isnan((*read)[2].error_h));

  auto live = db->live_errors();
  ASSERT_TRUE(live.ok()) << live.error().message;
  ASSERT_EQ(live->size(), 2u);
  EXPECT_EQ((*live)[0].origin, "edge:n1");
  EXPECT_EQ((*live)[1].origin, "host");
  EXPECT_EQ((*live)[1].scored_10, 1);
  EXPECT_EQ((*live)[1].scored_h, 1);
  EXPECT_NEAR((*live)[1].mae_10, 0.05, 1e-6);
  EXPECT_NEAR((*live)[0].mae_h, 0.06, 1e-6);

  EXPECT_EQ(*db->last_forecast_cycle("c1", "host"), 30);
  EXPECT_EQ(*db->last_forecast_cycle("c1", "edge:n2"), 0);
}

TEST_P(ForecastsTest, EdgeNodesAreSummedFromTheirForecasts) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell({"c1", "rig-1", "LFP", 1.1, "", "{}"}).ok());
  ASSERT_TRUE(db->upsert_cell({"c2", "rig-1", "LFP", 1.1, "", "{}"}).ok());
  EXPECT_TRUE(db->edge_nodes()->empty());
  const std::vector<float> soh(10, 0.9f);
  const std::vector<ForecastRecord> forecasts = {
      {"c1", 10, "v1", "edge:n1", soh, 1000},
      {"c2", 10, "v2", "edge:n1", soh, 3000},  // n1's newest: its model is v2
      {"c1", 11, "v1", "edge:n1", soh, 2000},
      {"c1", 10, "v1", "edge:n2", soh, 500},
      {"c1", 10, "v1", "host", soh, 9000},  // not a node
      {"c1", 12, "v1", "edge", soh, 9000},  // not "edge:<node>" either
  };
  ASSERT_TRUE(db->write_forecasts(forecasts).ok());
  auto nodes = db->edge_nodes();
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].node, "n1");
  EXPECT_EQ((*nodes)[0].model_version, "v2");
  EXPECT_EQ((*nodes)[0].last_seen_ms, 3000);
  EXPECT_EQ((*nodes)[0].forecasts, 3);
  EXPECT_EQ((*nodes)[0].cells, 2);
  EXPECT_EQ((*nodes)[1].node, "n2");
  EXPECT_EQ((*nodes)[1].model_version, "v1");
  EXPECT_EQ((*nodes)[1].last_seen_ms, 500);
  EXPECT_EQ((*nodes)[1].forecasts, 1);
  EXPECT_EQ((*nodes)[1].cells, 1);
}

TEST_P(ForecastsTest, ATargetCycleThatNeverArrivesLeavesThatErrorUnset) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell({"c1", "rig-1", "LFP", 2.0, "", "{}"}).ok());
  ASSERT_TRUE(db->write_forecasts(std::vector<ForecastRecord>{
                                      {"c1", 1, "v1", "host", std::vector<float>(20, 1.0f), 0}})
                  .ok());
  store_cycles(*db, 1, 10, 2.0);  // cycle 11 (+10) missing
  store_cycles(*db, 12, 21, 2.0);
  EXPECT_EQ(*db->score_forecasts(kC1), 1u);
  const ForecastRecord f = db->forecasts_of("c1")->front();
  EXPECT_TRUE(std::isnan(f.error_10));
  EXPECT_NEAR(f.error_h, 0.0, 1e-6);
}

TEST_P(ForecastsTest, RecentCyclesAreTheLastOnesUpToACycleInOrder) {
  auto db = open_database();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell({"c1", "rig-1", "LFP", 2.0, "", "{}"}).ok());
  store_cycles(*db, 1, 50, 2.0);
  auto recent = db->recent_cycles("c1", 30, 5);
  ASSERT_TRUE(recent.ok()) << recent.error().message;
  ASSERT_EQ(recent->size(), 5u);
  EXPECT_EQ(recent->front().cycle, 26);
  EXPECT_EQ(recent->back().cycle, 30);
  EXPECT_EQ(db->recent_cycles("c1", 3, 5)->size(), 3u);
  EXPECT_TRUE(db->recent_cycles("nobody", 30, 5)->empty());
}

}  // namespace
}  // namespace cyclecast::storage
