// The stream forecaster: every new cycle of a cell with W cycles of history gets a host forecast
// equal to the node's forecast of that window; cells new to it start at their newest cycle; a
// restart resumes after the last stored forecast; short histories are counted, not forecast; and
// earlier forecasts are scored as their cycles arrive.
#include "forecaster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "node_fixture.h"
#include "temp_dir.h"

namespace cyclecast::daemon {
namespace {

constexpr double kRatedAh = 1.1;

// interval_half_width: the blob's interval table (empty: a model from before intervals).
std::shared_ptr<const edge::LoadedNodeModel> test_model(
    std::vector<int32_t> interval_half_width = {}) {
  const auto cells = testing::generated_cells(4, 120, 7);
  pipeline::FeatureOptions options;
  options.input_len = 20;
  options.horizon = 24;
  options.use_optional_features = false;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  const auto windows = pipeline::make_windows(cells, spec, 5);
  auto student = testing::random_student(spec, windows, 8, 11);
  student.interval_half_width = std::move(interval_half_width);
  auto exported = pipeline::export_model(student, spec, "stream-v1");
  EXPECT_TRUE(exported.ok());
  auto loaded = edge::load_node_model(exported->blob);
  EXPECT_TRUE(loaded.ok());
  return std::shared_ptr<const edge::LoadedNodeModel>(std::move(loaded.value()));
}

double soh_of(std::int64_t cycle) {
  return 1.0 - 0.001 * static_cast<double>(cycle);
}

void store(storage::Database& db, const std::string& cell, std::int64_t from, std::int64_t to) {
  std::vector<storage::CycleRecord> records;
  for (std::int64_t c = from; c <= to; ++c) {
    storage::CycleRecord r;
    r.cell_id = cell;
    r.cycle = c;
    r.discharge_capacity_ah = soh_of(c) * kRatedAh;
    r.source = "test";
    records.push_back(r);
  }
  ASSERT_TRUE(db.write_cycles(records).ok());
}

// Waits until the forecaster has nothing pending and has stored `forecasts` in all.
bool settle(Forecaster& f, std::uint64_t forecasts) {
  for (int i = 0; i < 500; ++i) {
    const ForecasterStats s = f.stats();
    if (s.forecasts >= forecasts && s.cells_pending == 0) return s.forecasts == forecasts;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Waits until the forecaster's stats satisfy `done` (or about 10 s pass).
bool eventually_stats(Forecaster& f, const std::function<bool(const ForecasterStats&)>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done(f.stats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class ForecasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = storage::Database::open(dir_ / "f.db");
    ASSERT_TRUE(db.ok());
    db_.emplace(std::move(*db));
    for (const char* cell : {"c1", "short"})
      ASSERT_TRUE(db_->upsert_cell({cell, "rig", "LFP", kRatedAh, "", "{}"}).ok());
  }
  std::unique_ptr<Forecaster> start() {
    ForecasterOptions options{dir_ / "f.db"};
    options.pass_interval = std::chrono::milliseconds(1);
    auto f = Forecaster::start(options, [this](std::vector<storage::ForecastRecord> made) {
      std::lock_guard lock(mutex_);
      for (auto& m : made)
        published_.push_back(std::move(m));
    });
    EXPECT_TRUE(f.ok()) << f.error().message;
    EXPECT_TRUE((*f)->set_model(model_).ok());
    return std::move(*f);
  }

  testing::TempDir dir_;
  std::optional<storage::Database> db_;
  std::shared_ptr<const edge::LoadedNodeModel> model_ = test_model();
  std::mutex mutex_;
  std::vector<storage::ForecastRecord> published_;
};

TEST_F(ForecasterTest, ForecastsEveryNewCycleWithTheNodesCodeAndResumesAfterARestart) {
  store(*db_, "c1", 1, 50);  // imported history: only cycle 50 is forecast
  auto f = start();
  f->notify({{"c1", {0, 50}}});
  ASSERT_TRUE(settle(*f, 1));
  store(*db_, "c1", 51, 55);
  f->notify({{"c1", {0, 55}}});
  ASSERT_TRUE(settle(*f, 6));
  {
    std::lock_guard lock(mutex_);
    ASSERT_FALSE(published_.empty());
    EXPECT_EQ(published_.back().at_cycle, 55);  // the newest of the pass is published
  }
  f->stop();

  store(*db_, "c1", 56, 60);  // stored while the forecaster was down
  auto again = start();
  again->notify({{"c1", {0, 60}}});
  ASSERT_TRUE(settle(*again, 5));

  auto stored = db_->forecasts_of("c1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 11u);
  auto reference = edge::WindowForecaster::create(model_);
  ASSERT_TRUE(reference.ok());
  for (std::size_t i = 0; i < stored->size(); ++i) {
    const storage::ForecastRecord& r = (*stored)[i];
    EXPECT_EQ(r.at_cycle, 50 + static_cast<std::int64_t>(i));
    EXPECT_EQ(r.origin, "host");
    EXPECT_EQ(r.model_version, "stream-v1");
    std::vector<edge::WindowCycle> window;
    for (std::int64_t c = r.at_cycle - 19; c <= r.at_cycle; ++c)
      window.push_back({static_cast<double>(static_cast<float>(soh_of(c) * kRatedAh)) / kRatedAh,
                        std::nullopt, std::nullopt, std::nullopt});
    auto expected = (*reference)->forecast(window);
    ASSERT_TRUE(expected.ok());
    ASSERT_EQ(r.soh.size(), 24u);
    for (std::size_t j = 0; j < r.soh.size(); ++j)
      EXPECT_NEAR(r.soh[j], (*expected)[j], 1e-6) << "cycle " << r.at_cycle << " step " << j;
  }
}

TEST_F(ForecasterTest, AModelWithoutAnIntervalTableForecastsWithoutBounds) {
  store(*db_, "c1", 1, 30);
  auto f = start();
  f->notify({{"c1", {0, 30}}});
  ASSERT_TRUE(settle(*f, 1));
  auto stored = db_->forecasts_of("c1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE(stored->front().lower.empty());
  EXPECT_TRUE(stored->front().upper.empty());
  std::lock_guard lock(mutex_);
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_TRUE(published_.front().lower.empty());
}

TEST_F(ForecasterTest, AModelWithAnIntervalTableStoresAndPublishesEveryForecastsBounds) {
  // Half-widths that grow with the step, one of them far beyond int32 when added to the output
  // (saturated, not wrapped), one zero (the bounds are the forecast).
  std::vector<int32_t> table(24);
  for (std::size_t j = 0; j < table.size(); ++j)
    table[j] = static_cast<int32_t>(j) * 1000;
  table[23] = 1 << 30;
  model_ = test_model(table);
  store(*db_, "c1", 1, 30);
  auto f = start();
  f->notify({{"c1", {0, 30}}});
  ASSERT_TRUE(settle(*f, 1));
  store(*db_, "c1", 31, 33);
  f->notify({{"c1", {0, 33}}});
  ASSERT_TRUE(settle(*f, 4));

  auto reference = edge::WindowForecaster::create(model_);
  ASSERT_TRUE(reference.ok());
  ASSERT_TRUE((*reference)->has_interval());
  auto stored = db_->forecasts_of("c1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 4u);
  for (const storage::ForecastRecord& r : *stored) {
    std::vector<edge::WindowCycle> window;
    for (std::int64_t c = r.at_cycle - 19; c <= r.at_cycle; ++c)
      window.push_back({static_cast<double>(static_cast<float>(soh_of(c) * kRatedAh)) / kRatedAh,
                        std::nullopt, std::nullopt, std::nullopt});
    auto expected = (*reference)->forecast_with_interval(window);
    ASSERT_TRUE(expected.ok());
    ASSERT_EQ(r.lower.size(), 24u);
    ASSERT_EQ(r.upper.size(), 24u);
    EXPECT_EQ(r.lower[0], r.soh[0]);  // a zero half-width
    EXPECT_EQ(r.upper[0], r.soh[0]);
    for (std::size_t j = 0; j < 24; ++j) {
      // The window here is rebuilt from float SOH values: its amplitude can differ in the last
      // bit, which the huge half-width of the last step magnifies.
      const double tolerance = 2e-6 * (1.0 + expected->upper[j] - expected->lower[j]);
      EXPECT_NEAR(r.lower[j], expected->lower[j], tolerance) << r.at_cycle << " step " << j;
      EXPECT_NEAR(r.upper[j], expected->upper[j], tolerance) << r.at_cycle << " step " << j;
      EXPECT_LE(r.lower[j], r.soh[j]);
      EXPECT_GE(r.upper[j], r.soh[j]);
      if (j > 0 && j < 23) {
        EXPECT_LT(r.lower[j], r.soh[j]);
        EXPECT_GT(r.upper[j], r.soh[j]);
      }
    }
    // The widths grow with the half-widths (the amplitude is the window's, the same per step).
    EXPECT_LT(r.upper[5] - r.lower[5], r.upper[20] - r.lower[20]);
  }
  std::lock_guard lock(mutex_);
  ASSERT_FALSE(published_.empty());
  EXPECT_EQ(published_.back().lower.size(), 24u);
  EXPECT_EQ(published_.back().upper.size(), 24u);
}

TEST_F(ForecasterTest, CountsCyclesWithoutEnoughHistoryAndScoresAsCyclesArrive) {
  store(*db_, "short", 1, 5);
  store(*db_, "c1", 1, 30);
  auto f = start();
  f->notify({{"short", {0, 5}}, {"c1", {0, 30}}});
  ASSERT_TRUE(settle(*f, 1));
  EXPECT_EQ(f->stats().lacking_history, 1u);
  EXPECT_EQ(f->stats().model_version, "stream-v1");
  EXPECT_TRUE(db_->forecasts_of("short")->empty());

  store(*db_, "c1", 31, 54);  // +10 and +24 of the cycle-30 forecast
  f->notify({{"c1", {0, 54}}});
  ASSERT_TRUE(settle(*f, 25));
  const storage::ForecastRecord first = db_->forecasts_of("c1")->front();
  EXPECT_EQ(first.at_cycle, 30);
  EXPECT_NEAR(first.error_10, soh_of(40) - first.soh[9], 1e-5);
  EXPECT_NEAR(first.error_h, soh_of(54) - first.soh[23], 1e-5);
  EXPECT_GE(f->stats().errors_scored, 2u);
}

std::vector<std::int64_t> forecast_cycles(storage::Database& db, const std::string& cell) {
  auto stored = db.forecasts_of(cell);
  EXPECT_TRUE(stored.ok());
  std::vector<std::int64_t> cycles;
  if (!stored.ok()) return cycles;
  for (const storage::ForecastRecord& f : stored.value())
    cycles.push_back(f.at_cycle);
  return cycles;
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t c = from; c <= to; ++c)
    out.push_back(c);
  return out;
}

TEST_F(ForecasterTest, CyclesStoredAfterNewerOnesOfTheirCellAreForecastToo) {
  store(*db_, "c1", 1, 50);
  auto f = start();
  f->notify({{"c1", {50, 50}}});
  ASSERT_TRUE(settle(*f, 1));
  // A rig's resend of 51..55 arrives after 56..60 (the broker was down when it first sent them).
  store(*db_, "c1", 56, 60);
  f->notify({{"c1", {56, 60}}});
  ASSERT_TRUE(settle(*f, 6));
  store(*db_, "c1", 51, 55);
  f->notify({{"c1", {51, 55}}});
  ASSERT_TRUE(settle(*f, 11));
  EXPECT_EQ(forecast_cycles(*db_, "c1"), range(50, 60));
}

TEST_F(ForecasterTest, AModelArrivingResumesEveryCellAfterItsLastForecastWithoutBeingTold) {
  store(*db_, "c1", 1, 50);
  {
    auto f = start();
    f->notify({{"c1", {50, 50}}});
    ASSERT_TRUE(settle(*f, 1));
  }
  // Stored while the daemon was down (or just before it was killed): nobody notifies them.
  store(*db_, "c1", 51, 55);
  auto again = start();
  ASSERT_TRUE(settle(*again, 5));
  EXPECT_EQ(forecast_cycles(*db_, "c1"), range(50, 55));
}

TEST_F(ForecasterTest, WithoutAModelNothingIsForecastButForecastsAreStillScored) {
  store(*db_, "c1", 1, 30);
  ASSERT_TRUE(
      db_->write_forecasts(std::vector<storage::ForecastRecord>{
                               {"c1", 10, "edge-v", "edge:n1", std::vector<float>(20, 0.99f), 0}})
          .ok());
  ForecasterOptions options{dir_ / "f.db"};
  auto f = Forecaster::start(options, {});
  ASSERT_TRUE(f.ok());
  (*f)->notify({{"c1", {0, 0}}});
  for (int i = 0; i < 500 && (*f)->stats().errors_scored < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ((*f)->stats().errors_scored, 2u);
  EXPECT_EQ((*f)->stats().forecasts, 0u);
  EXPECT_TRUE((*f)->stats().model_version.empty());
}

}  // namespace
}  // namespace cyclecast::daemon

namespace cyclecast::daemon {
namespace {

void store_soh(storage::Database& db, const std::string& cell, std::int64_t from, std::int64_t to,
               double soh) {
  std::vector<storage::CycleRecord> records;
  for (std::int64_t c = from; c <= to; ++c) {
    storage::CycleRecord r;
    r.cell_id = cell;
    r.cycle = c;
    r.discharge_capacity_ah = soh * kRatedAh;
    r.source = "test";
    records.push_back(r);
  }
  ASSERT_TRUE(db.write_cycles(records).ok());
}

TEST_F(ForecasterTest, CellsPastEndOfLifeAreNotForecast) {
  ASSERT_TRUE(db_->upsert_cell({"old", "rig", "LFP", kRatedAh, "", "{}"}).ok());
  ASSERT_TRUE(db_->upsert_cell({"tough", "rig", "LFP", kRatedAh, "", R"({"eol_soh": 0.7})"}).ok());
  for (const char* cell : {"old", "tough"})
    store_soh(*db_, cell, 1, 50, 0.85);
  auto f = start();
  f->notify({{"old", {0, 50}}, {"tough", {0, 50}}});
  ASSERT_TRUE(eventually_stats(*f, [](const ForecasterStats& s) {
    return s.forecasts + s.implausible == 2 && s.cells_pending == 0;
  }));
  // From cycle 53 on, three of the last five cycles read 0.75: under 0.8, not under 0.7.
  for (const char* cell : {"old", "tough"})
    store_soh(*db_, cell, 51, 60, 0.75);
  f->notify({{"old", {0, 60}}, {"tough", {0, 60}}});
  ASSERT_TRUE(eventually_stats(*f, [](const ForecasterStats& s) {
    return s.forecasts + s.implausible + s.past_end_of_life == 22 && s.cells_pending == 0;
  }));
  const ForecasterStats s = f->stats();
  EXPECT_EQ(s.past_end_of_life, 8u) << "cycles 53..60 of 'old'";
  EXPECT_EQ(s.implausible, 0u) << s.last_implausible;
  EXPECT_EQ(forecast_cycles(*db_, "old"), range(50, 52));
  EXPECT_EQ(forecast_cycles(*db_, "tough"), range(50, 60));
}

TEST_F(ForecasterTest, HandsOverEachPlusHErrorItSetsOnce) {
  store(*db_, "c1", 1, 30);
  std::mutex mutex;
  std::vector<storage::ScoredForecast> scored;
  ForecasterOptions options{dir_ / "f.db"};
  options.pass_interval = std::chrono::milliseconds(1);
  auto f = Forecaster::start(options, {}, [&](std::vector<storage::ScoredForecast> more) {
    std::lock_guard lock(mutex);
    scored.insert(scored.end(), more.begin(), more.end());
  });
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->set_model(model_).ok());
  (*f)->notify({{"c1", {0, 30}}});
  ASSERT_TRUE(settle(**f, 1));
  store(*db_, "c1", 31, 54);  // +24 of the cycle-30 forecast
  (*f)->notify({{"c1", {0, 54}}});
  ASSERT_TRUE(settle(**f, 25));
  (*f)->stop();
  std::lock_guard lock(mutex);
  ASSERT_EQ(scored.size(), 1u);
  EXPECT_EQ(scored[0].cell_id, "c1");
  EXPECT_EQ(scored[0].at_cycle, 30);
  EXPECT_EQ(scored[0].target_cycle, 54);
  EXPECT_EQ(scored[0].model_version, "stream-v1");
  EXPECT_EQ(scored[0].origin, "host");
  const storage::ForecastRecord first = db_->forecasts_of("c1")->front();
  EXPECT_DOUBLE_EQ(scored[0].error_h, first.error_h);
}

}  // namespace
}  // namespace cyclecast::daemon
