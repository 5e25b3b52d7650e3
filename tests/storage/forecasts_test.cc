// Forecast rows: stored once per (cell, at_cycle, model_version, origin), read back by cell with
// their SOH vectors bit for bit, unknown cells counted and not written.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;

TEST(Forecasts, AreStoredOnceAndReadBack) {
  TempDir dir;
  auto db = Database::open(dir / "f.db");
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

TEST(Forecasts, RefuseABatchWithAnInvalidForecastWhole) {
  TempDir dir;
  auto db = Database::open(dir / "f.db");
  ASSERT_TRUE(db.ok());
  ForecastRecord bad{"c1", 0, "v1", "host", {0.9f}, 0};
  auto written = db->write_forecasts(std::vector<ForecastRecord>{bad});
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(db->counts()->forecasts, 0);
}

}  // namespace
}  // namespace cyclecast::storage
