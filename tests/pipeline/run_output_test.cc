// A run directory read back (pipeline/run_output.h): read_run_output recovers from report.json
// exactly the chosen student, metrics and cost the report was written with, and refuses a
// directory that is not a finished run, naming the file.
#include "cyclecast/pipeline/run_output.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "cyclecast/pipeline/report.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

ForecastMetrics metrics(double mae, double eol_error_cycles) {
  ForecastMetrics m;
  m.mae = mae;
  m.mae_10 = mae * 0.5;
  m.mae_100 = mae * 2;
  m.rmse = mae * 1.3;
  m.eol_error_cycles = eol_error_cycles;
  m.eol_windows = std::isnan(eol_error_cycles) ? 0 : 4;
  m.windows = 12;
  m.mae_by_step = {mae * 0.25, mae, kNaN};
  return m;
}

Candidate candidate(const std::string& name, const std::string& stage, int64_t flash_bytes) {
  Candidate c;
  c.name = name;
  c.stage = stage;
  c.params = flash_bytes - 200;
  c.int8_mae = 0.001;
  c.flash_bytes = flash_bytes;
  c.ram_bytes = flash_bytes / 2;
  c.cycles = static_cast<double>(flash_bytes) * 3.25;
  return c;
}

// A report whose chosen student (index 1, "w8-p0.50") was pruned: its float metrics are the
// stage-2 row's, not the pruned one's.
RunReport make_report() {
  RunReport r;
  r.run_id = "20261130T170000Z";
  r.data_source = "database";
  r.protocol = "split";
  r.stages = {{"teacher", "liquid", metrics(0.0009, 3.5)},
              {"stage1", "w8", metrics(0.0010, 4.0)},
              {"int8", "w8", metrics(0.0012, 4.0)},
              {"pruned", "w8-p0.50", metrics(0.0030, kNaN)},
              {"stage2", "w8-p0.50", metrics(0.0011, 4.5)},
              {"int8", "w8-p0.50", metrics(0.00113, kNaN)},
              {"baseline", "last value", metrics(0.0040, kNaN)}};
  r.candidates = {candidate("w8", "stage1", 2500), candidate("w8-p0.50", "stage2", 1801)};
  r.choice = Choice{1, "the knee of the front"};
  return r;
}

void expect_same(const ForecastMetrics& a, const ForecastMetrics& b) {
  const auto same = [](double x, double y) { return (std::isnan(x) && std::isnan(y)) || x == y; };
  EXPECT_TRUE(same(a.mae, b.mae));
  EXPECT_TRUE(same(a.mae_10, b.mae_10));
  EXPECT_TRUE(same(a.mae_100, b.mae_100));
  EXPECT_TRUE(same(a.rmse, b.rmse));
  EXPECT_TRUE(same(a.eol_error_cycles, b.eol_error_cycles));
  EXPECT_EQ(a.eol_windows, b.eol_windows);
  EXPECT_EQ(a.windows, b.windows);
  ASSERT_EQ(a.mae_by_step.size(), b.mae_by_step.size());
  for (size_t i = 0; i < a.mae_by_step.size(); ++i)
    EXPECT_TRUE(same(a.mae_by_step[i], b.mae_by_step[i])) << i;
}

TEST(ReadRunOutput, RecoversTheChosenStudentItsMetricsAndCost) {
  TempDir dir;
  const RunReport report = make_report();
  ASSERT_TRUE(write_report_json(dir / RunFiles::kReportJson, report).ok());
  auto run = read_run_output(dir.path());
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->out_dir, dir.path().string());
  EXPECT_EQ(run->file(RunFiles::kStudent), dir.path() / "student.ccm");
  EXPECT_EQ(run->run_id, "20261130T170000Z");
  EXPECT_EQ(run->protocol, "split");
  EXPECT_EQ(run->data_source, "database");
  EXPECT_EQ(run->chosen, "w8-p0.50");
  EXPECT_EQ(run->choice_reason, "the knee of the front");
  EXPECT_EQ(run->chosen_params, 1601);
  EXPECT_EQ(run->chosen_flash_bytes, 1801);
  EXPECT_EQ(run->chosen_ram_bytes, 900);
  EXPECT_EQ(run->chosen_cycles, 5853);  // 1801 * 3.25 = 5853.25, rounded
  expect_same(run->chosen_int8, report.stages[5].metrics);
  expect_same(run->chosen_float, report.stages[4].metrics);
}

TEST(ReadRunOutput, NamesTheMissingReport) {
  TempDir dir;
  auto run = read_run_output(dir / "nothing");
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, ErrorCode::kNotFound);
  EXPECT_NE(run.error().message.find("report.json"), std::string::npos);
}

TEST(ReadRunOutput, RefusesWhatIsNotAFinishedRunsReport) {
  TempDir dir;
  const auto refusal = [&](const std::string& text) {
    write_file(dir / RunFiles::kReportJson, text);
    auto run = read_run_output(dir.path());
    EXPECT_FALSE(run.ok()) << text;
    return run.ok() ? ErrorCode::kIo : run.error().code;
  };
  EXPECT_EQ(refusal("{not json"), ErrorCode::kParse);
  EXPECT_EQ(refusal("[1, 2]"), ErrorCode::kParse);
  EXPECT_EQ(refusal(R"({"format": "cyclecast-report", "version": 2})"), ErrorCode::kUnsupported);
  EXPECT_EQ(refusal(R"({"format": "cyclecast-report", "version": "1"})"), ErrorCode::kUnsupported);
  EXPECT_EQ(refusal(R"({"format": "other", "version": 1})"), ErrorCode::kUnsupported);

  // Every candidate over budget: no choice, nothing to deploy.
  RunReport none = make_report();
  none.choice = Choice{none.candidates.size(), "nothing fits"};
  ASSERT_TRUE(write_report_json(dir / RunFiles::kReportJson, none).ok());
  auto unchosen = read_run_output(dir.path());
  ASSERT_FALSE(unchosen.ok());
  EXPECT_EQ(unchosen.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unchosen.error().message.find("nothing fits"), std::string::npos);

  // The chosen student without its int8 test metrics.
  RunReport unscored = make_report();
  unscored.stages.erase(unscored.stages.begin() + 5);
  ASSERT_TRUE(write_report_json(dir / RunFiles::kReportJson, unscored).ok());
  auto corrupt = read_run_output(dir.path());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(corrupt.error().message.find("w8-p0.50"), std::string::npos);
}

}  // namespace
}  // namespace cyclecast::pipeline
