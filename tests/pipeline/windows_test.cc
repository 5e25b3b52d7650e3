// Tests of the forecasting representation: feature statistics, the representation-2 encoding of
// inputs and targets, the linear design of the baselines, the metadata round trip, window
// placement, and splits by cell without leakage.
#include "cyclecast/pipeline/windows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace cyclecast::pipeline {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// SOH 1 - 0.01 * row; IR 0.02 + 0.001 * row; no temperature; charge time 10 or 12 alternately.
CellSeries cell_of(const std::string& id, int64_t rows) {
  CellSeries cell{id, "", 1.1, {}, "", {}};
  for (int64_t r = 0; r < rows; ++r) {
    const double x = static_cast<double>(r);
    cell.rows.push_back(
        SeriesRow{r + 1, 1.0 - 0.01 * x, 0.02 + 0.001 * x, kNaN, r % 2 == 0 ? 10.0 : 12.0});
  }
  return cell;
}

FeatureOptions small(int64_t w, int64_t h) {
  FeatureOptions options;
  options.input_len = w;
  options.horizon = h;
  return options;
}

TEST(FeatureSpec, FitsLevelAndFeatureStatisticsOnTheGivenCellsAndSkipsUnreportedFeatures) {
  const std::vector<CellSeries> cells{cell_of("a", 6)};
  auto spec = fit_feature_spec(cells, small(3, 2));
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  // Windows start at rows 0 and 1: their last inputs are rows 2 and 3 (SOH 0.98 and 0.97).
  EXPECT_NEAR(spec->level_offset, 0.975, 1e-12);
  EXPECT_NEAR(spec->level_scale, 3.0 * std::sqrt(0.00005), 1e-12);  // 3 standard deviations
  ASSERT_EQ(spec->features.size(), 2u);
  EXPECT_EQ(spec->features[0].name, kFeatureIrOhm);
  EXPECT_NEAR(spec->features[0].mean, 0.0225, 1e-12);
  EXPECT_EQ(spec->features[1].name, kFeatureChargeTimeMin);
  EXPECT_NEAR(spec->features[1].mean, 11.0, 1e-12);
  // Both windows fall 0.02 over their inputs: one log amplitude, so its std falls back to 1.
  EXPECT_NEAR(spec->log_amp_mean, std::log(0.02), 1e-12);
  EXPECT_EQ(spec->log_amp_std, 3.0);
  EXPECT_EQ(spec->amp_floor, 0.003);
  EXPECT_EQ(spec->input_size(), 3 + 2 + 2 * 3 + 1);
}

TEST(FeatureSpec, FitsLogAmplitudeStatisticsOverTheSameWindowsAsTheLevel) {
  // W 3, H 1 over 7 rows: windows start at rows 0..3 and fall 0.03, 0.05, 0.07, 0.09.
  CellSeries cell{"a", "", 1.1, {}, "", {}};
  for (const double soh : {1.0, 0.99, 0.97, 0.94, 0.90, 0.85, 0.79}) {
    cell.rows.push_back(
        SeriesRow{static_cast<int64_t>(cell.rows.size()) + 1, soh, kNaN, kNaN, kNaN});
  }
  auto spec = fit_feature_spec(std::vector<CellSeries>{cell}, small(3, 1));
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  const std::vector<double> logs{std::log(0.03), std::log(0.05), std::log(0.07), std::log(0.09)};
  const double mean = (logs[0] + logs[1] + logs[2] + logs[3]) / 4.0;
  double ss = 0.0;
  for (const double l : logs)
    ss += (l - mean) * (l - mean);
  EXPECT_NEAR(spec->log_amp_mean, mean, 1e-9);
  EXPECT_NEAR(spec->log_amp_std, 3.0 * std::sqrt(ss / 3.0), 1e-9);
  EXPECT_NEAR(spec->level_offset, (0.97 + 0.94 + 0.90 + 0.85) / 4.0, 1e-12);
}

TEST(FeatureSpec, UsesSohOnlyWhenAskedOrWhenAFeatureIsRarelyReported) {
  std::vector<CellSeries> cells{cell_of("a", 10)};
  FeatureOptions options = small(3, 2);
  options.use_optional_features = false;
  auto soh_only = fit_feature_spec(cells, options);
  ASSERT_TRUE(soh_only.ok());
  EXPECT_TRUE(soh_only->features.empty());
  EXPECT_EQ(soh_only->input_size(), 3 + 2 + 1);
  for (std::size_t i = 1; i < cells[0].rows.size(); ++i)
    cells[0].rows[i].ir_ohm = kNaN;
  auto sparse = fit_feature_spec(cells, small(3, 2));
  ASSERT_TRUE(sparse.ok());
  ASSERT_EQ(sparse->features.size(), 1u);
  EXPECT_EQ(sparse->features[0].name, kFeatureChargeTimeMin);
}

TEST(FeatureSpec, RefusesCellsTooShortForOneWindow) {
  const std::vector<CellSeries> cells{cell_of("a", 4)};
  auto spec = fit_feature_spec(cells, small(3, 2));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().code, ErrorCode::kInvalidArgument);
}

FeatureSpec hand_spec() {
  FeatureSpec spec;
  spec.input_len = 3;
  spec.horizon = 2;
  spec.delta_scale = 100.0;
  spec.level_offset = 0.9;
  spec.level_scale = 0.05;
  spec.log_amp_mean = std::log(0.01);
  spec.log_amp_std = 0.5;
  spec.features = {{kFeatureIrOhm, 0.02, 0.004}, {kFeatureChargeTimeMin, 11.0, 1.0 / 3.0}};
  return spec;
}

TEST(FeatureSpec, MetadataRoundTripsExactly) {
  const FeatureSpec spec = hand_spec();
  auto back = FeatureSpec::from_metadata(spec.to_metadata());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->input_len, 3);
  EXPECT_EQ(back->horizon, 2);
  EXPECT_EQ(back->delta_scale, 100.0);
  EXPECT_EQ(back->level_offset, 0.9);
  EXPECT_EQ(back->level_scale, 0.05);
  EXPECT_EQ(back->amp_floor, 0.003);
  EXPECT_EQ(back->log_amp_mean, std::log(0.01));
  EXPECT_EQ(back->log_amp_std, 0.5);
  ASSERT_EQ(back->features.size(), 2u);
  EXPECT_EQ(back->features[1].name, kFeatureChargeTimeMin);
  EXPECT_EQ(back->features[1].std, 1.0 / 3.0);
  FeatureSpec none = spec;
  none.features.clear();
  auto back_none = FeatureSpec::from_metadata(none.to_metadata());
  ASSERT_TRUE(back_none.ok()) << back_none.error().message;
  EXPECT_TRUE(back_none->features.empty());
  const auto metadata = spec.to_metadata();
  EXPECT_EQ(metadata.at("pipeline.representation"), "2");
  EXPECT_EQ(metadata.at("pipeline.amp_floor"), "0.003");
}

TEST(FeatureSpec, MetadataOfAnotherOrNoRepresentationIsRefused) {
  auto metadata = hand_spec().to_metadata();
  metadata["pipeline.representation"] = "1";
  auto other = FeatureSpec::from_metadata(metadata);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(other.error().message.find("pipeline.representation"), std::string::npos);
  // The keys a model file written before representation 2 had: refused, not misread.
  metadata.erase("pipeline.representation");
  metadata.erase("pipeline.amp_floor");
  metadata.erase("pipeline.log_amp_mean");
  metadata.erase("pipeline.log_amp_std");
  auto v1 = FeatureSpec::from_metadata(metadata);
  ASSERT_FALSE(v1.ok());
  EXPECT_EQ(v1.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(v1.error().message.find("pipeline.representation"), std::string::npos)
      << v1.error().message;
}

TEST(FeatureSpec, MetadataWithAMissingOrBadKeyIsRefusedNamingTheKey) {
  const auto good = hand_spec().to_metadata();
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"pipeline.input_len", ""},
      {"pipeline.horizon", "0"},
      {"pipeline.delta_scale", "abc"},
      {"pipeline.level_scale", "-1"},
      {"pipeline.level_offset", "nan"},
      {"pipeline.features", "ir_ohm,volts"},
      {"pipeline.features", "ir_ohm,ir_ohm"},
      {"pipeline.feature.ir_ohm.std", "0"},
      {"pipeline.input_len", "3x"},
      {"pipeline.representation", "3"},
      {"pipeline.amp_floor", "0"},
      {"pipeline.log_amp_mean", "inf"},
      {"pipeline.log_amp_std", "-0.5"}};
  for (const auto& [key, value] : changes) {
    auto metadata = good;
    metadata[key] = value;
    auto spec = FeatureSpec::from_metadata(metadata);
    ASSERT_FALSE(spec.ok()) << key << "=" << value;
    EXPECT_EQ(spec.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(spec.error().message.find(key), std::string::npos) << spec.error().message;
  }
  for (const auto& [key, value] : good) {
    auto metadata = good;
    metadata.erase(key);
    auto spec = FeatureSpec::from_metadata(metadata);
    ASSERT_FALSE(spec.ok()) << "without " << key;
    EXPECT_NE(spec.error().message.find(key), std::string::npos) << spec.error().message;
  }
}

// W 4, H 2 with both features: input size 4 + 2 + 2 * 4 + 1.
FeatureSpec hand_spec_4() {
  FeatureSpec spec = hand_spec();
  spec.input_len = 4;
  return spec;
}

TEST(Windows, EncodeInputsAndTargetsAsRepresentation2Says) {
  const std::vector<CellSeries> cells{cell_of("a", 8)};
  const FeatureSpec spec = hand_spec_4();
  auto w = make_windows_at(cells, spec, std::vector<WindowRef>{{0, 2}});
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_EQ(w->size(), 1);
  ASSERT_EQ(w->inputs.rows(), 15);
  EXPECT_EQ(spec.gain_index(), 14);
  EXPECT_EQ(spec.encoded_size(), 14);
  // Input rows 2..5: SOH 0.98, 0.97, 0.96, 0.95; soh_last 0.95, amp 0.03.
  EXPECT_NEAR(w->inputs(0, 0), 1.0, 1e-5);
  EXPECT_NEAR(w->inputs(1, 0), 2.0 / 3.0, 1e-5);
  EXPECT_NEAR(w->inputs(2, 0), 1.0 / 3.0, 1e-5);
  EXPECT_NEAR(w->inputs(3, 0), 0.0, 1e-6);
  EXPECT_NEAR(w->inputs(4, 0), (0.95 - 0.9) / 0.05, 1e-5);                      // level
  EXPECT_NEAR(w->inputs(5, 0), (std::log(0.03) - std::log(0.01)) / 0.5, 1e-5);  // 2 ln 3
  EXPECT_NEAR(w->inputs(6, 0), (0.022 - 0.02) / 0.004, 1e-5);                   // IR of row 2
  EXPECT_NEAR(w->inputs(9, 0), (0.025 - 0.02) / 0.004, 1e-5);                   // IR of row 5
  EXPECT_NEAR(w->inputs(10, 0), (10.0 - 11.0) * 3.0, 1e-5);                     // charge, row 2
  EXPECT_NEAR(w->inputs(11, 0), (12.0 - 11.0) * 3.0, 1e-5);
  EXPECT_NEAR(w->inputs(14, 0), 0.03 * 100.0, 1e-5);  // gain, not normalized
  // Targets rows 6, 7: SOH 0.94, 0.93, as deltas (not divided by the amplitude).
  EXPECT_NEAR(w->targets(0, 0), -1.0, 1e-5);
  EXPECT_NEAR(w->targets(1, 0), -2.0, 1e-5);
  EXPECT_DOUBLE_EQ(w->last_soh[0], 0.95);
  EXPECT_DOUBLE_EQ(w->input_soh(0, 0), 0.98);
  EXPECT_DOUBLE_EQ(w->truth_soh(1, 0), 0.93);
}

TEST(Windows, AFlatWindowIsNormalizedByTheAmplitudeFloor) {
  // Falls only 0.001 from first to last input (a bump between): amp is the floor, 0.003.
  CellSeries cell{"flat", "", 1.1, {}, "", {}};
  for (const double soh : {0.901, 0.905, 0.9, 0.9, 0.899, 0.898}) {
    cell.rows.push_back(
        SeriesRow{static_cast<int64_t>(cell.rows.size()) + 1, soh, 0.02, kNaN, 11.0});
  }
  const FeatureSpec spec = hand_spec_4();
  auto w = make_windows_at(std::vector<CellSeries>{cell}, spec, std::vector<WindowRef>{{0, 0}});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_NEAR(w->inputs(0, 0), 0.001 / 0.003, 1e-5);
  EXPECT_NEAR(w->inputs(1, 0), 0.005 / 0.003, 1e-5);  // the shape may pass 1 when not monotone
  EXPECT_NEAR(w->inputs(2, 0), 0.0, 1e-6);
  EXPECT_NEAR(w->inputs(5, 0), (std::log(0.003) - std::log(0.01)) / 0.5, 1e-5);
  EXPECT_NEAR(w->inputs(spec.gain_index(), 0), 0.3, 1e-6);
  // A window that does not move at all encodes a zero shape rather than dividing by zero.
  for (auto& row : cell.rows)
    row.soh = 0.9;
  auto still = make_windows_at(std::vector<CellSeries>{cell}, spec, std::vector<WindowRef>{{0, 0}});
  ASSERT_TRUE(still.ok());
  for (int64_t t = 0; t < 4; ++t)
    EXPECT_EQ(still->inputs(t, 0), 0.0f);
  EXPECT_NEAR(still->inputs(spec.gain_index(), 0), 0.3, 1e-6);
}

TEST(Windows, EncodeInputIsTheColumnMakeWindowsBuilds) {
  const std::vector<CellSeries> cells{cell_of("a", 30)};
  const FeatureSpec spec = hand_spec_4();
  const Windows w = make_windows(cells, spec, 3);
  ASSERT_GT(w.size(), 3);
  for (int64_t i = 0; i < w.size(); ++i) {
    const auto first = static_cast<std::size_t>(w.refs[static_cast<std::size_t>(i)].first_row);
    const std::span<const SeriesRow> rows(cells[0].rows.data() + first, 4);
    EXPECT_EQ(encode_input(rows, spec), w.inputs.col(i)) << "window " << i;
  }
}

// The input vector before representation 2, written out again as it was.
models::Vector<float> v1_encoding(std::span<const SeriesRow> rows, const FeatureSpec& spec) {
  const int64_t w = spec.input_len;
  models::Vector<float> x(w + 1 + w * static_cast<int64_t>(spec.features.size()));
  const double last = rows[static_cast<std::size_t>(w - 1)].soh;
  for (int64_t t = 0; t < w; ++t)
    x(t) = static_cast<float>((rows[static_cast<std::size_t>(t)].soh - last) * spec.delta_scale);
  x(w) = static_cast<float>((last - spec.level_offset) / spec.level_scale);
  int64_t offset = w + 1;
  for (const FeatureStats& f : spec.features) {
    for (int64_t t = 0; t < w; ++t) {
      const double v = feature_value(rows[static_cast<std::size_t>(t)], f.name);
      x(offset + t) = std::isfinite(v) ? static_cast<float>((v - f.mean) / f.std) : 0.0f;
    }
    offset += w;
  }
  return x;
}

TEST(Windows, LinearInputsAreTheV1EncodingBitForBit) {
  std::vector<CellSeries> cells{cell_of("a", 30), cell_of("b", 12)};
  cells[0].rows[7].ir_ohm = kNaN;
  const FeatureSpec spec = hand_spec_4();
  const Windows w = make_windows(cells, spec, 1);
  const models::Matrix<float> x = linear_inputs(w, spec);
  ASSERT_EQ(x.rows(), 4 + 1 + 2 * 4);
  ASSERT_EQ(x.cols(), w.size());
  for (int64_t i = 0; i < w.size(); ++i) {
    const WindowRef& ref = w.refs[static_cast<std::size_t>(i)];
    const auto& rows = cells[static_cast<std::size_t>(ref.cell)].rows;
    const std::span<const SeriesRow> window(rows.data() + ref.first_row, 4);
    EXPECT_EQ(x.col(i), v1_encoding(window, spec)) << "window " << i;
  }
  // By hand for the window at row 2 of "a": deltas 3, 2, 1, 0 (x 100), level 1.
  EXPECT_NEAR(x(0, 2), 3.0, 1e-5);
  EXPECT_NEAR(x(2, 2), 1.0, 1e-5);
  EXPECT_NEAR(x(4, 2), 1.0, 1e-5);
  FeatureSpec soh_only = spec;
  soh_only.features.clear();
  const Windows plain = make_windows(cells, soh_only, 1);
  EXPECT_EQ(linear_inputs(plain, soh_only), x.topRows(5));
}

TEST(Windows, AMissingFeatureValueEncodesAsTheTrainingMean) {
  std::vector<CellSeries> cells{cell_of("a", 8)};
  cells[0].rows[3].ir_ohm = kNaN;
  auto w = make_windows_at(cells, hand_spec(), std::vector<WindowRef>{{0, 2}});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->inputs(3 + 2 + 1, 0), 0.0f);  // IR of the second input row
}

TEST(Windows, ToSohInvertsTheTargetEncoding) {
  const std::vector<CellSeries> cells{cell_of("a", 30), cell_of("b", 12)};
  const FeatureSpec spec = hand_spec();
  const Windows w = make_windows(cells, spec, 1);
  const Eigen::MatrixXd soh = to_soh(w.targets, w.last_soh, spec);
  EXPECT_LT((soh - w.truth_soh).cwiseAbs().maxCoeff(), 1e-7);
}

TEST(Windows, CoverEveryCellWithTheStrideAndHonourTheExclusion) {
  const std::vector<CellSeries> cells{cell_of("a", 20), cell_of("b", 4), cell_of("c", 10)};
  const FeatureSpec spec = hand_spec();  // span 5
  const Windows all = make_windows(cells, spec, 1);
  EXPECT_EQ(all.size(), 16 + 0 + 6);
  const Windows strided = make_windows(cells, spec, 5);
  ASSERT_EQ(strided.size(), 4 + 2);
  EXPECT_EQ(strided.refs[3].first_row, 15);
  EXPECT_EQ(strided.refs[4].cell, 2);
  const std::vector<int64_t> only_c{2};
  const Windows filtered =
      make_windows(cells, spec, 1, only_c, [](const WindowRef& r) { return r.first_row % 2 == 1; });
  ASSERT_EQ(filtered.size(), 3);
  for (const auto& r : filtered.refs) {
    EXPECT_EQ(r.cell, 2);
    EXPECT_EQ(r.first_row % 2, 0);
  }
  const std::vector<int64_t> columns{2, 0};
  const Windows picked = select_windows(filtered, columns);
  ASSERT_EQ(picked.size(), 2);
  EXPECT_EQ(picked.refs[0].first_row, 4);
  EXPECT_EQ(picked.inputs.col(1), filtered.inputs.col(0));
  EXPECT_EQ(picked.truth_soh.col(0), filtered.truth_soh.col(2));
}

TEST(Windows, NoCellsListedGiveNoWindows) {
  const std::vector<CellSeries> cells{cell_of("a", 20)};
  const Windows none = make_windows(cells, hand_spec(), 1, std::span<const int64_t>{});
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.inputs.cols(), 0);
  EXPECT_EQ(none.inputs.rows(), hand_spec().input_size());
}

TEST(Windows, AWindowOutsideItsCellIsRefused) {
  const std::vector<CellSeries> cells{cell_of("a", 6)};
  for (const WindowRef ref : {WindowRef{0, 2}, WindowRef{1, 0}, WindowRef{0, -1}}) {
    auto w = make_windows_at(cells, hand_spec(), std::vector<WindowRef>{ref});
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error().code, ErrorCode::kInvalidArgument);
  }
}

std::vector<CellSeries> many_cells(int n) {
  std::vector<CellSeries> cells;
  for (int i = 0; i < n; ++i)
    cells.push_back(cell_of("cell" + std::to_string(i), 12));
  return cells;
}

TEST(SplitByCell, MakesDisjointSplitsOfTheRequestedSizesCoveringEveryCell) {
  const auto cells = many_cells(20);
  const CellSplit s = split_by_cell(cells, 0.15, 0.15, 7);
  EXPECT_EQ(s.validation.size(), 3u);
  EXPECT_EQ(s.test.size(), 3u);
  EXPECT_EQ(s.train.size(), 14u);
  std::set<int64_t> seen;
  for (const auto* list : {&s.train, &s.validation, &s.test}) {
    for (const int64_t c : *list)
      EXPECT_TRUE(seen.insert(c).second) << "cell " << c << " twice";
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(SplitByCell, DependsOnIdsAndSeedNotOnTheOrderOfCells) {
  auto cells = many_cells(30);
  const CellSplit a = split_by_cell(cells, 0.2, 0.2, 3);
  std::set<std::string> a_test;
  for (const int64_t c : a.test)
    a_test.insert(cells[static_cast<std::size_t>(c)].cell_id);
  std::reverse(cells.begin(), cells.end());
  const CellSplit b = split_by_cell(cells, 0.2, 0.2, 3);
  std::set<std::string> b_test;
  for (const int64_t c : b.test)
    b_test.insert(cells[static_cast<std::size_t>(c)].cell_id);
  EXPECT_EQ(a_test, b_test);
  const CellSplit other_seed = split_by_cell(cells, 0.2, 0.2, 4);
  std::set<std::string> c_test;
  for (const int64_t c : other_seed.test)
    c_test.insert(cells[static_cast<std::size_t>(c)].cell_id);
  EXPECT_NE(a_test, c_test);
}

TEST(SplitByCell, LeakageIsImpossibleEveryWindowsCellBelongsToExactlyOneSplit) {
  const auto cells = many_cells(25);
  const FeatureSpec spec = hand_spec();
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const CellSplit s = split_by_cell(cells, 0.15, 0.15, seed);
    const Windows train = make_windows(cells, spec, 1, s.train);
    const Windows validation = make_windows(cells, spec, 1, s.validation);
    const Windows test = make_windows(cells, spec, 1, s.test);
    std::map<int64_t, std::set<int>> splits_of_cell;
    int split_index = 0;
    for (const Windows* w : {&train, &validation, &test}) {
      for (const WindowRef& r : w->refs)
        splits_of_cell[r.cell].insert(split_index);
      ++split_index;
    }
    EXPECT_EQ(splits_of_cell.size(), cells.size());
    for (const auto& [cell, splits] : splits_of_cell) {
      EXPECT_EQ(splits.size(), 1u) << "seed " << seed << " cell " << cell;
    }
  }
}

TEST(SplitByCell, SplitsOnlyTheListedCells) {
  const auto cells = many_cells(10);
  const std::vector<int64_t> among{1, 3, 5, 7};
  const CellSplit s = split_by_cell(cells, among, 0.25, 0.0, 1);
  EXPECT_EQ(s.validation.size(), 1u);
  EXPECT_EQ(s.train.size(), 3u);
  EXPECT_TRUE(s.test.empty());
  for (const auto* list : {&s.train, &s.validation}) {
    for (const int64_t c : *list)
      EXPECT_EQ(c % 2, 1);
  }
}

}  // namespace
}  // namespace cyclecast::pipeline
