// Tests of the evaluation protocols: on small generated data (always), and the reference figures
// on the shared Severson data (only where it exists: $CYCLECAST_DATA_DIR, default ../shared/data
// next to the source tree).
#include "cyclecast/pipeline/protocols.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "cyclecast/pipeline/baselines.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

fs::path data_dir() {
  if (const char* env = std::getenv("CYCLECAST_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return fs::path(CYCLECAST_SOURCE_DIR) / ".." / "shared" / "data";
}

// Evaluates the baselines once, prints their table (the figures docs/pipeline.md quotes) and
// returns them by name.
std::map<std::string, ForecastMetrics> baselines_table(const std::string& title,
                                                       const EvalProtocol& protocol) {
  std::printf("%s: %lld train, %lld validation, %lld test windows, input size %lld\n",
              title.c_str(), static_cast<long long>(protocol.train.size()),
              static_cast<long long>(protocol.validation.size()),
              static_cast<long long>(protocol.test.size()),
              static_cast<long long>(protocol.spec.input_size()));
  std::map<std::string, ForecastMetrics> out;
  for (const auto& [name, m] : evaluate_baselines(protocol)) {
    std::printf("  %-13s MAE %.5f  +10 %.5f  +100 %.5f  RMSE %.5f  EOL %.1f (%lld)\n", name.c_str(),
                m.mae, m.mae_10, m.mae_100, m.rmse, m.eol_error_cycles,
                static_cast<long long>(m.eol_windows));
    out[name] = m;
  }
  return out;
}

// A smooth, slowly accelerating fade with a small sawtooth, like a smoothed SOH series.
double fade(int64_t row, double rate) {
  const double t = static_cast<double>(row);
  return 1.0 - rate * t - 2e-8 * t * t + 0.0005 * std::sin(0.3 * t);
}

// Writes a severson-soh folder: `series` series of `rows` rows and one segment per series.
void write_soh_folder(const fs::path& dir, int series, int64_t rows) {
  fs::create_directories(dir);
  std::string csv = "series,cell_id,row,soh\n";
  std::string json = "[";
  for (int s = 0; s < series; ++s) {
    char name[16];
    std::snprintf(name, sizeof name, "Bat%03d", s + 1);
    for (int64_t r = 0; r < rows; ++r) {
      csv += std::string(name) + ",c" + std::to_string(s) + "," + std::to_string(r) + "," +
             std::to_string(fade(r, 1e-4 * (1 + s % 3))) + "\n";
    }
    if (s > 0) json += ",";
    json += "{\"series\":\"" + std::string(name) +
            "\",\"input_rows\":[100,120],\"target_rows\":[120,130],\"band\":\"high\"}";
  }
  write_file(dir / "soh.csv", csv);
  write_file(dir / "segments.json", json + "]");
}

ProtocolOptions small_options() {
  ProtocolOptions options;
  options.input_len = 20;
  options.horizon = 10;
  return options;
}

TEST(PaperProtocol, TestsOnTheSegmentsAndTrainsOnNoWindowTouchingTheirTargets) {
  TempDir tmp;
  write_soh_folder(tmp.path(), 10, 300);
  auto p = paper_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->test.size(), 10);
  EXPECT_EQ(p->test.refs[0].first_row, 100);
  EXPECT_EQ(p->test_bands[0], "high");
  EXPECT_EQ(p->test_cells.size(), 10u);
  // Neither the inputs nor the targets of a training window may cover a segment's target rows:
  // a window whose inputs hold them would teach the model the answer to that test segment.
  for (const Windows* windows : {&p->train, &p->validation}) {
    for (const WindowRef& ref : windows->refs) {
      const int64_t end = ref.first_row + 20 + 10;
      EXPECT_FALSE(ref.first_row < 130 && 120 < end)
          << "cell " << ref.cell << " row " << ref.first_row;
    }
  }
  // 300 rows hold 271 windows; those with rows meeting [120, 130) start at 91..129.
  EXPECT_EQ(p->train.size() + p->validation.size(), 10 * (271 - 39));
  EXPECT_EQ(p->validation.size(), 1 * (271 - 39));  // 10 % of 10 series
  EXPECT_EQ(p->windows_left_out, 10 * 39);
}

TEST(PaperProtocol, RefusesAWindowThatDoesNotMatchTheSegments) {
  TempDir tmp;
  write_soh_folder(tmp.path(), 3, 300);
  ProtocolOptions options = small_options();
  options.horizon = 11;
  auto p = paper_protocol(tmp.path(), options);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
}

// Writes a severson-raw folder: `cells` cells, alternately train and test1, with one glitch.
void write_raw_folder(const fs::path& dir, int cells, int64_t cycles) {
  fs::create_directories(dir);
  std::string cycles_csv =
      "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
  std::string cells_csv =
      "cell_id,batch,policy,cycle_life,in_paper_124,paper_split,continuation_of,continued_in,"
      "dlnet_id\n";
  for (int c = 0; c < cells; ++c) {
    const std::string id = "b9c" + std::to_string(c);
    cells_csv += id + ",x,p,1,1," + (c % 2 == 0 ? "train" : "test1") + ",,,\n";
    for (int64_t k = 1; k <= cycles; ++k) {
      double qd = 1.1 * fade(k, 2e-4 * (1 + c % 4));
      if (c == 0 && k == 150) qd = 1.54;  // an interruption spike
      cycles_csv += id + ",x," + std::to_string(k) + "," + std::to_string(qd) + ",1.0,0.017,32," +
                    std::to_string(30.0 + 0.001 * static_cast<double>(k)) + ",29,10.5\n";
    }
  }
  write_file(dir / "cycles.csv", cycles_csv);
  write_file(dir / "cells.csv", cells_csv);
}

TEST(HeldoutProtocol, TrainsOnTrainCellsAndTestsOnTest1CellsWithStride10) {
  TempDir tmp;
  write_raw_folder(tmp.path(), 12, 200);
  auto p = heldout_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->name, "heldout");
  EXPECT_EQ(p->cleaning.soh_spikes, 1);
  EXPECT_EQ(p->test_cells.size(), 6u);
  for (const auto& id : p->test_cells) {
    EXPECT_EQ(p->data.cells[static_cast<std::size_t>(find_cell(p->data, id))].split, "test1");
  }
  // 200 cycles, span 30: first rows 0, 10, ..., 170 -> 18 windows per test cell.
  EXPECT_EQ(p->test.size(), 6 * 18);
  EXPECT_EQ(p->validation.size(), 1 * 171);  // round(0.15 * 6) = 1 validation cell
  EXPECT_EQ(p->train.size(), 5 * 171);
  std::set<int64_t> train_cells;
  for (const auto& ref : p->train.refs)
    train_cells.insert(ref.cell);
  for (const auto& ref : p->validation.refs)
    EXPECT_EQ(train_cells.count(ref.cell), 0u);
  for (const auto c : train_cells) {
    EXPECT_EQ(p->data.cells[static_cast<std::size_t>(c)].split, "train");
  }
  // The raw data reports IR, temperature and charge time: all become inputs.
  EXPECT_EQ(p->spec.features.size(), 3u);
  EXPECT_EQ(p->spec.input_size(), 20 + 2 + 3 * 20 + 1);
}

// Two batches as severson-raw has them: batch "A" only in cycles_qd_approx.csv (capacity only,
// cycle numbers offset by a few), batch "B" in cycles.csv with every column; cell B0 continues A0
// and numbers its cycles from 1 again.
void write_two_batch_folder(const fs::path& dir, int cells_per_batch, int64_t cycles) {
  fs::create_directories(dir);
  const std::string header =
      "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
  std::string exact = header;
  std::string approx = header;
  std::string cells_csv =
      "cell_id,batch,policy,cycle_life,in_paper_124,paper_split,continuation_of,continued_in,"
      "dlnet_id\n";
  for (int c = 0; c < cells_per_batch; ++c) {
    const std::string a = "bAc" + std::to_string(c);
    const std::string b = "bBc" + std::to_string(c);
    cells_csv += a + ",A,p,1,1,train,," + (c == 0 ? "bBc0" : "") + ",\n";
    cells_csv += b + ",B,p,1,1,test1," + (c == 0 ? "bAc0" : "") + ",,\n";
    for (int64_t k = 1; k <= cycles; ++k) {
      approx += a + ",A," + std::to_string(k + 3) + "," +
                std::to_string(1.1 * fade(k, 2e-4 * (1 + c % 3))) + ",,,,,,\n";
      exact += b + ",B," + std::to_string(k) + "," +
               std::to_string(1.1 * fade(k, 3e-4 * (1 + c % 3))) + ",1.0,0.017,32,30,29,10.5\n";
    }
  }
  write_file(dir / "cycles.csv", exact);
  write_file(dir / "cycles_qd_approx.csv", approx);
  write_file(dir / "cells.csv", cells_csv);
}

TEST(CrossBatchProtocol, TestsOnTheHeldOutBatchAndSelectsOnTheOthersOnly) {
  TempDir tmp;
  write_two_batch_folder(tmp.path(), 8, 150);
  for (const std::string held_out : {"A", "B"}) {
    ProtocolOptions options = small_options();
    options.test_batch = held_out;
    auto p = load_protocol(tmp.path(), "cross-batch", options);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->name, "cross-batch");
    EXPECT_EQ(p->test_batch, held_out);
    ASSERT_EQ(p->train_batches.size(), 1u);
    EXPECT_NE(p->train_batches[0], held_out);
    // bBc0 joins bAc0 (batch A): 7 cells of batch B remain, 8 of A, one of them 300 cycles.
    EXPECT_EQ(p->test_cells.size(), held_out == "A" ? 8u : 7u);
    for (const Windows* w : {&p->train, &p->validation}) {
      for (const WindowRef& ref : w->refs)
        EXPECT_NE(p->data.cells[static_cast<std::size_t>(ref.cell)].batch, held_out);
    }
    for (const WindowRef& ref : p->test.refs)
      EXPECT_EQ(p->data.cells[static_cast<std::size_t>(ref.cell)].batch, held_out);
    EXPECT_GT(p->validation.size(), 0);
    // Batch A reports capacity only: the protocol uses SOH alone whichever batch is held out.
    EXPECT_TRUE(p->spec.features.empty());
  }
  ProtocolOptions first = small_options();
  auto by_default = cross_batch_protocol(tmp.path(), first);
  ASSERT_TRUE(by_default.ok()) << by_default.error().message;
  EXPECT_EQ(by_default->test_batch, "A");  // the earliest batch
}

TEST(CrossBatchProtocol, RefusesAnUnknownBatchAndASingleBatch) {
  TempDir tmp;
  write_two_batch_folder(tmp / "two", 4, 150);
  ProtocolOptions options = small_options();
  options.test_batch = "C";
  auto unknown = cross_batch_protocol(tmp / "two", options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.error().message.find("A, B"), std::string::npos) << unknown.error().message;
  write_raw_folder(tmp / "one", 4, 100);  // every cell in batch "x"
  auto single = cross_batch_protocol(tmp / "one", small_options());
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.error().code, ErrorCode::kInvalidArgument);
}

TEST(HeldoutProtocol, NoWindowSpansALongGapAndTheCountsAreReported) {
  TempDir tmp;
  write_raw_folder(tmp.path(), 12, 200);
  // Cell b9c1 (test1) loses cycles 101-130 (30 > the 10-cycle limit), cell b9c2 (train) loses
  // cycles 51-55 (5: filled and kept).
  const fs::path csv = tmp.path() / "cycles.csv";
  std::ifstream in(csv);
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto c1 = line.find(',');
    const auto c2 = line.find(',', c1 + 1);
    const auto c3 = line.find(',', c2 + 1);
    const std::string id = line.substr(0, c1);
    const std::string cycle = line.substr(c2 + 1, c3 - c2 - 1);
    const int64_t k = id.rfind("b9c", 0) == 0 ? std::stoll(cycle) : 0;
    if (id == "b9c1" && k >= 101 && k <= 130) continue;
    if (id == "b9c2" && k >= 51 && k <= 55) continue;
    kept += line + "\n";
  }
  in.close();
  write_file(csv, kept);
  auto p = heldout_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->cleaning.gap_cycles_filled, 35);
  EXPECT_EQ(p->cleaning.long_gaps, 1);
  const int64_t long_gap_cell = find_cell(p->data, "b9c1");
  for (const Windows* w : {&p->train, &p->validation, &p->test}) {
    for (const WindowRef& ref : w->refs) {
      const CellSeries& cell = p->data.cells[static_cast<std::size_t>(ref.cell)];
      EXPECT_FALSE(spans_long_gap(cell, ref.first_row, 30, 10));
      if (ref.cell == long_gap_cell) {
        // Rows 100..129 are the filled gap: a 30-row window starting at 71..129 meets it.
        EXPECT_TRUE(ref.first_row < 71 || ref.first_row >= 130) << ref.first_row;
      }
    }
  }
  // b9c1, stride 10: of first rows 0..170, 80..120 meet the gap (5 windows).
  EXPECT_EQ(p->windows_across_gaps, 5);
  EXPECT_EQ(p->test.size(), 6 * 18 - 5);
  // The short gap is filled and its windows kept: 5 train/validation cells x 171 windows.
  EXPECT_EQ(p->train.size() + p->validation.size(), 6 * 171);
}

TEST(DataProtocol, SplitsCellsSeventyFifteenFifteen) {
  TempDir tmp;
  write_raw_folder(tmp.path(), 20, 100);
  auto p = data_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::set<int64_t> train, validation, test;
  for (const auto& r : p->train.refs)
    train.insert(r.cell);
  for (const auto& r : p->validation.refs)
    validation.insert(r.cell);
  for (const auto& r : p->test.refs)
    test.insert(r.cell);
  EXPECT_EQ(train.size(), 14u);
  EXPECT_EQ(validation.size(), 3u);
  EXPECT_EQ(test.size(), 3u);
}

TEST(LoadProtocol, AutoPicksByTheKindOfSource) {
  TempDir tmp;
  write_soh_folder(tmp / "soh", 3, 300);
  write_raw_folder(tmp / "raw", 4, 100);
  auto paper = load_protocol(tmp / "soh", "auto", small_options());
  auto heldout = load_protocol(tmp / "raw", "auto", small_options());
  ASSERT_TRUE(paper.ok()) << paper.error().message;
  ASSERT_TRUE(heldout.ok()) << heldout.error().message;
  EXPECT_EQ(paper->name, "paper");
  EXPECT_EQ(heldout->name, "heldout");
  auto unknown = load_protocol(tmp / "raw", "bogus", small_options());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  auto mismatched = load_protocol(tmp / "soh", "heldout", small_options());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code, ErrorCode::kInvalidArgument);
}

TEST(EvaluateBaselines, ReportsTheFourBaselinesInOrderAndRidgeBeatsLastValueOnSmoothFades) {
  TempDir tmp;
  write_soh_folder(tmp.path(), 10, 300);
  auto p = paper_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto baselines = evaluate_baselines(*p);
  ASSERT_EQ(baselines.size(), 4u);
  EXPECT_EQ(baselines[0].first, "last value");
  EXPECT_EQ(baselines[1].first, "line-10");
  EXPECT_EQ(baselines[2].first, "quadratic-50");
  EXPECT_EQ(baselines[3].first, "ridge");
  EXPECT_LT(baselines[3].second.mae, 0.5 * baselines[0].second.mae);
  EXPECT_EQ(baselines[0].second.windows, 10);
}

TEST(EvaluateBaselines, AddsAnSohOnlyRidgeWhenTheInputsHaveFeatures) {
  TempDir tmp;
  write_raw_folder(tmp.path(), 12, 200);
  auto p = heldout_protocol(tmp.path(), small_options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto baselines = evaluate_baselines(*p);
  ASSERT_EQ(baselines.size(), 5u);
  EXPECT_EQ(baselines[3].first, "ridge");
  EXPECT_EQ(baselines[4].first, "ridge (SOH only)");
  EXPECT_EQ(baselines[4].second.windows, p->test.size());
  EXPECT_LT(baselines[4].second.mae, baselines[0].second.mae);
}

TEST(SharedData, PaperProtocolBaselinesReproduceTheReadme) {
  const fs::path dir = data_dir() / "severson-soh";
  if (!fs::exists(dir / "soh.csv")) {
    GTEST_SKIP() << "no reference data at " << dir << " (set CYCLECAST_DATA_DIR)";
  }
  auto p = paper_protocol(dir);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->test.size(), 12);
  const auto b = baselines_table("paper", *p);
  // The README gives these to 3 significant digits.
  EXPECT_NEAR(b.at("last value").mae, 0.0244, 0.00005);
  EXPECT_NEAR(b.at("line-10").mae, 0.00525, 0.000005);
  EXPECT_NEAR(b.at("quadratic-50").mae, 0.00176, 0.000005);
  // Ridge on the linear design (deltas and level), lambda 1e-3: docs/pipeline.md's 0.00078,
  // pinned so that a change of the model input vector cannot move the baseline.
  EXPECT_NEAR(b.at("ridge").mae, 0.00078, 0.000005);
}

TEST(SharedData, HeldoutProtocolBuildsFromTheRawTelemetry) {
  const fs::path dir = data_dir() / "severson-raw";
  if (!fs::exists(dir / "cycles.csv")) {
    GTEST_SKIP() << "no reference data at " << dir << " (set CYCLECAST_DATA_DIR)";
  }
  auto p = heldout_protocol(dir);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto b = baselines_table("heldout", *p);
  const auto& c = p->cleaning;
  std::printf(
      "cleaning: spikes %lld fill %lld charge-time outliers %lld non-positive %lld "
      "gaps %lld duplicates %lld out-of-order %lld leading %lld\n",
      static_cast<long long>(c.soh_spikes), static_cast<long long>(c.fill_values),
      static_cast<long long>(c.charge_time_outliers), static_cast<long long>(c.non_positive),
      static_cast<long long>(c.gap_cycles_filled), static_cast<long long>(c.duplicate_cycles),
      static_cast<long long>(c.out_of_order_cycles),
      static_cast<long long>(c.leading_rows_dropped));
  // The README's known defects: two interruption spikes, ~1,100 charge-time fill values, seven
  // cells with charge times near 500 min, three zero resistances.
  EXPECT_GE(c.soh_spikes, 2);
  EXPECT_GE(c.fill_values, 1000);
  EXPECT_GE(c.charge_time_outliers, 7);
  EXPECT_EQ(c.non_positive, 3);
  EXPECT_LT(b.at("ridge").mae, b.at("last value").mae);
  EXPECT_LT(b.at("ridge (SOH only)").mae, b.at("quadratic-50").mae);
  // docs/pipeline.md's figures, pinned like the paper protocol's.
  EXPECT_NEAR(b.at("ridge").mae, 0.00412, 0.000005);
  EXPECT_NEAR(b.at("ridge (SOH only)").mae, 0.00349, 0.000005);
}

}  // namespace
}  // namespace cyclecast::pipeline
