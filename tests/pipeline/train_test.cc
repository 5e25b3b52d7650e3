// The retraining pipeline end to end on a tiny generated data set: every stage runs, the output
// directory is complete and consistent with what the run reported, and an interrupted run leaves
// nothing behind.
#include "cyclecast/pipeline/train.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "cyclecast/models/model_file.h"
#include "cyclecast/models/quantize.h"
#include "cyclecast/pipeline/intervals.h"
#include "fading_cells.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

using cyclecast::testing::write_fading_cells_csv;

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_fading_cells_csv(tmp_.path() / "data", 18, 160);
    ProtocolOptions p;
    p.input_len = 20;
    p.horizon = 10;
    p.use_optional_features = false;
    p.train_stride = 2;
    auto protocol = heldout_protocol(tmp_.path() / "data", p);
    ASSERT_TRUE(protocol.ok()) << protocol.error().message;
    protocol_ = std::move(*protocol);
    options_.teacher = TeacherKind::kLiquid;
    options_.teacher_budget_s = 2.0;
    options_.teacher_max_epochs = 3;
    options_.widths = {8, 4};
    options_.features = 3;
    options_.prune_ratios = {0.5};
    options_.student_epochs = 3;
    options_.stage2_epochs = 2;
    options_.min_student_steps = 0;
    options_.min_stage2_steps = 0;
    options_.calibration_windows = 64;
    options_.threads = 2;
  }

  TempDir tmp_;
  EvalProtocol protocol_;
  TrainingOptions options_;
};

TEST_F(TrainingTest, TinyRunWritesACompleteConsistentDirectory) {
  const std::string out = (tmp_.path() / "run").string();
  std::vector<Stage> stages;
  auto result = run_training(protocol_, options_, out, [&](const TrainingProgress& p) {
    if (stages.empty() || stages.back() != p.stage) stages.push_back(p.stage);
    EXPECT_GE(p.overall_fraction, 0.0);
    EXPECT_LE(p.overall_fraction, 1.0);
  });
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(stages.size(), 8u);  // every stage reported, in order
  for (const char* name :
       {"student.ccm", "student.int8", "teacher.ccm", "report.json", "report.html"}) {
    EXPECT_TRUE(fs::exists(fs::path(out) / name)) << name;
  }
  EXPECT_FALSE(fs::exists(out + ".partial"));

  std::ifstream in(fs::path(out) / "report.json");
  const auto report = nlohmann::json::parse(in);
  // 2 stage-1 students, each pruned once, and the linear candidate.
  EXPECT_EQ(report["candidates"].size(), 5u);
  EXPECT_EQ(report["candidates"].back()["name"], "linear");
  EXPECT_EQ(report["candidates"].back()["width"], 1);
  // The gate's evidence, for the student the run chose, on the protocol's held-out test cells.
  const auto& evidence = report["gate_evidence"];
  ASSERT_TRUE(evidence.is_object()) << report.dump().substr(0, 400);
  EXPECT_EQ(evidence["scoring"], "held-out");
  EXPECT_EQ(evidence["candidate"], result->chosen);
  EXPECT_EQ(evidence["reason"], result->gate_evidence.reason);
  EXPECT_EQ(evidence["cells"], static_cast<int64_t>(protocol_.test_cells.size()));
  EXPECT_FALSE(result->chosen.empty());
  EXPECT_FALSE(result->choice_reason.empty());
  EXPECT_LT(result->chosen_params, result->teacher_params);

  // The files on disk are the models the run scored.
  auto float_metrics = evaluate_model_file(out + "/student.ccm", protocol_);
  ASSERT_TRUE(float_metrics.ok()) << float_metrics.error().message;
  EXPECT_NEAR(float_metrics->mae, result->chosen_float.mae, 1e-9);
  auto int8_metrics = evaluate_model_file(out + "/student.int8", protocol_);
  ASSERT_TRUE(int8_metrics.ok()) << int8_metrics.error().message;
  EXPECT_NEAR(int8_metrics->mae, result->chosen_int8.mae, 1e-9);
  auto teacher_metrics = evaluate_model_file(out + "/teacher.ccm", protocol_);
  ASSERT_TRUE(teacher_metrics.ok()) << teacher_metrics.error().message;
  EXPECT_NEAR(teacher_metrics->mae, result->teacher.mae, 1e-9);
  // Trained, the student forecasts better than holding the last value.
  EXPECT_LT(result->chosen_float.mae, result->baselines.front().second.mae);

  // The intervals: calibrated on the validation cells, measured on the test windows, and their
  // table in the int8 blob and the float model's metadata (the teacher has none).
  const auto& intervals = report["intervals"];
  ASSERT_TRUE(intervals.is_object());
  ASSERT_TRUE(result->intervals.has_value());
  EXPECT_EQ(intervals["nominal_coverage"], 0.9);
  EXPECT_EQ(intervals["half_width_int8"].size(), 10u);
  EXPECT_EQ(intervals["test"][0]["group"], "all");
  EXPECT_EQ(intervals["test"][0]["model"]["windows"], result->chosen_int8.windows);
  EXPECT_EQ(intervals["baseline"], "ridge");
  EXPECT_EQ(intervals["level_capped"].get<bool>() || intervals["few_cells"].get<bool>(),
            !intervals["note"].get<std::string>().empty());
  std::ifstream blob_in(fs::path(out) / "student.int8", std::ios::binary);
  const std::vector<uint8_t> blob{std::istreambuf_iterator<char>(blob_in), {}};
  auto student = models::deserialize_quantized_student(blob);
  ASSERT_TRUE(student.ok());
  EXPECT_EQ(student->interval_half_width, result->intervals->table);
  auto saved = models::load_model(out + "/student.ccm");
  ASSERT_TRUE(saved.ok());
  auto from_file = intervals_from_metadata(saved->metadata, 10);
  ASSERT_TRUE(from_file.ok() && from_file->has_value());
  EXPECT_EQ((*from_file)->half_width, result->intervals->calibration.half_width);
  auto teacher = models::load_model(out + "/teacher.ccm");
  ASSERT_TRUE(teacher.ok());
  EXPECT_FALSE(intervals_from_metadata(teacher->metadata, 10)->has_value());
}

// The RunOutput a run returns (and the retraining worker hands on in memory) is the one its
// directory describes: read_run_output on report.json recovers every figure of it exactly.
TEST_F(TrainingTest, TheDirectoryDescribesTheRunOutputItReturned) {
  options_.widths = {4};
  const std::string out = (tmp_.path() / "described").string();
  auto result = run_training(protocol_, options_, out);
  ASSERT_TRUE(result.ok()) << result.error().message;
  auto read = read_run_output(out);
  ASSERT_TRUE(read.ok()) << read.error().message;
  const RunOutput& returned = *result;
  EXPECT_EQ(read->out_dir, returned.out_dir);
  EXPECT_EQ(read->run_id, returned.run_id);
  EXPECT_FALSE(returned.run_id.empty());
  EXPECT_EQ(read->protocol, returned.protocol);
  EXPECT_EQ(read->data_source, returned.data_source);
  EXPECT_EQ(read->chosen, returned.chosen);
  EXPECT_EQ(read->choice_reason, returned.choice_reason);
  EXPECT_EQ(read->chosen_params, returned.chosen_params);
  EXPECT_EQ(read->chosen_flash_bytes, returned.chosen_flash_bytes);
  EXPECT_EQ(read->chosen_ram_bytes, returned.chosen_ram_bytes);
  EXPECT_EQ(read->chosen_cycles, returned.chosen_cycles);
  EXPECT_GT(returned.chosen_cycles, 0);
  EXPECT_DOUBLE_EQ(read->chosen_int8.mae, returned.chosen_int8.mae);
  EXPECT_DOUBLE_EQ(read->chosen_float.mae, returned.chosen_float.mae);
  EXPECT_EQ(read->chosen_int8.windows, returned.chosen_int8.windows);
  EXPECT_EQ(read->chosen_int8.mae_by_step.size(), returned.chosen_int8.mae_by_step.size());
  for (const char* name : RunFiles::kAll)
    EXPECT_TRUE(fs::exists(returned.file(name))) << name;
}

TEST_F(TrainingTest, DlnetTeacherRunsToo) {
  options_.teacher = TeacherKind::kDlnet;
  options_.widths = {4};
  options_.prune_ratios = {};
  const std::string out = (tmp_.path() / "dlnet").string();
  auto result = run_training(protocol_, options_, out);
  ASSERT_TRUE(result.ok()) << result.error().message;
  auto saved = models::load_model(out + "/teacher.ccm");
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(std::holds_alternative<models::DlnetConfig>(saved->config));
  auto teacher_metrics = evaluate_model_file(out + "/teacher.ccm", protocol_);
  ASSERT_TRUE(teacher_metrics.ok()) << teacher_metrics.error().message;
  EXPECT_NEAR(teacher_metrics->mae, result->teacher.mae, 1e-9);
}

TEST_F(TrainingTest, InterruptedRunLeavesNoDirectoryBehind) {
  const std::string out = (tmp_.path() / "stopped").string();
  std::atomic<bool> cancel{false};
  bool saw_partial = false;
  auto result = run_training(
      protocol_, options_, out,
      [&](const TrainingProgress& p) {
        if (p.stage == Stage::kStage1) {
          saw_partial = saw_partial || fs::exists(out + ".partial");
          cancel = true;
        }
      },
      &cancel);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
  EXPECT_TRUE(saw_partial);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

TEST_F(TrainingTest, RefusesAnExistingOutputDirectoryAndBadOptions) {
  fs::create_directories(tmp_.path() / "taken");
  auto taken = run_training(protocol_, options_, (tmp_.path() / "taken").string());
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::kInvalidArgument);

  TrainingOptions bad = options_;
  bad.widths.clear();
  auto no_widths = run_training(protocol_, bad, (tmp_.path() / "a").string());
  ASSERT_FALSE(no_widths.ok());
  EXPECT_EQ(no_widths.error().code, ErrorCode::kInvalidArgument);
  bad = options_;
  bad.prune_ratios = {1.0};
  EXPECT_FALSE(run_training(protocol_, bad, (tmp_.path() / "b").string()).ok());
  EXPECT_FALSE(fs::exists(tmp_.path() / "a.partial"));
}

// The training aids change what the models learn from, never the baselines or the test windows;
// the report says which aids ran and how many training windows they left.
TEST_F(TrainingTest, TrainingAidsReachTheReportAndLeaveTheBaselinesAlone) {
  options_.widths = {4};
  options_.prune_ratios = {};
  auto plain = run_training(protocol_, options_, (tmp_.path() / "plain").string());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  options_.augment.copies = 1;
  options_.smooth_radius = 2;
  options_.weight_decay = 0.05;
  const std::string out = (tmp_.path() / "aided").string();
  auto aided = run_training(protocol_, options_, out);
  ASSERT_TRUE(aided.ok()) << aided.error().message;
  ASSERT_EQ(aided->baselines.size(), plain->baselines.size());
  for (size_t i = 0; i < plain->baselines.size(); ++i)
    EXPECT_EQ(aided->baselines[i].second.mae, plain->baselines[i].second.mae);
  EXPECT_EQ(aided->chosen_int8.windows, plain->chosen_int8.windows);
  std::ifstream in(fs::path(out) / "report.json");
  const auto settings = nlohmann::json::parse(in)["settings"];
  EXPECT_EQ(settings["training_windows"], std::to_string(2 * protocol_.train.size()) + " (" +
                                              std::to_string(protocol_.train.size()) +
                                              " before the aids)");
  EXPECT_EQ(settings["training_series_median"], "5 cycles (training windows only)");
  EXPECT_EQ(settings["student_weight_decay"], "0.05");
  EXPECT_TRUE(settings.contains("augment"));
}

TEST_F(TrainingTest, RefusesTrainingAidsOutOfRange) {
  TrainingOptions bad = options_;
  bad.augment.copies = -1;
  EXPECT_FALSE(run_training(protocol_, bad, (tmp_.path() / "a").string()).ok());
  bad = options_;
  bad.smooth_radius = 51;
  EXPECT_FALSE(run_training(protocol_, bad, (tmp_.path() / "b").string()).ok());
  bad = options_;
  bad.weight_decay = -0.1;
  auto refused = run_training(protocol_, bad, (tmp_.path() / "c").string());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp_.path() / "c"));
}

// Students distilled from a barely trained DLNet teacher alone (no truth term) are worse than
// the ridge they started from. The run then deploys the linear candidate, or a student whose
// evidence says it does not beat the baselines (which the gate refuses): never a worse model
// passed off as better.
TEST_F(TrainingTest, LiquidStudentsWorseThanTheLinearCandidateDeployItOrNothing) {
  options_.teacher = TeacherKind::kDlnet;
  options_.teacher_max_epochs = 2;
  options_.lambda_start = 0.0;
  options_.lambda_end = 0.0;
  options_.min_student_steps = 300;
  const std::string out = (tmp_.path() / "worse").string();
  auto result = run_training(protocol_, options_, out);
  ASSERT_TRUE(result.ok()) << result.error().message;
  std::ifstream in(fs::path(out) / "report.json");
  const auto report = nlohmann::json::parse(in);
  double linear_mae = std::nan("");
  std::vector<double> liquid_mae;
  for (const auto& row : report["stages"]) {
    if (row["stage"] != "int8") continue;
    const double mae = row["metrics"]["mae"].get<double>();
    (row["model"] == "linear" ? linear_mae : liquid_mae.emplace_back()) = mae;
  }
  ASSERT_FALSE(liquid_mae.empty());
  for (double mae : liquid_mae)
    ASSERT_GT(mae, linear_mae) << "the setting must make them worse";

  const GateEvidence& e = result->gate_evidence;
  ASSERT_TRUE(e.present());
  EXPECT_EQ(e.candidate, result->chosen);
  if (result->chosen == "linear") {
    ASSERT_EQ(e.comparisons.size(), 3u);  // the node's extrapolations only
    EXPECT_EQ(e.comparisons[0].reference, "last value");
  } else {
    EXPECT_FALSE(e.beats_references) << e.reason;
    EXPECT_EQ(e.comparisons.front().reference, "linear");
  }
  if (e.beats_references) {
    for (const BaselineComparison& c : e.comparisons)
      EXPECT_LT(e.candidate_mae, c.result.reference_mae) << c.reference;
  }
}

// With fewer cells than kfold_below_cells a split protocol is scored by k-fold over cells: every
// cell is tested once, by the chosen architecture refitted without it.
TEST_F(TrainingTest, FewCellsAreScoredByKFoldSoEveryCellIsTestedOnce) {
  ProtocolOptions p;
  p.input_len = 20;
  p.horizon = 10;
  p.use_optional_features = false;
  p.train_stride = 2;
  auto split = data_protocol(tmp_.path() / "data", p);
  ASSERT_TRUE(split.ok()) << split.error().message;
  ASSERT_EQ(split->name, "split");
  options_.widths = {4};
  options_.prune_ratios = {};
  const std::string out = (tmp_.path() / "kfold").string();
  std::vector<std::string> details;
  auto result = run_training(*split, options_, out, [&](const TrainingProgress& progress) {
    if (progress.detail.rfind("k-fold", 0) == 0) details.push_back(progress.detail);
  });
  ASSERT_TRUE(result.ok()) << result.error().message;
  const GateEvidence& e = result->gate_evidence;
  EXPECT_EQ(e.scoring, "k-fold");
  EXPECT_EQ(e.folds, 5);
  EXPECT_EQ(e.cells, 18);  // every cell, against 2 or 3 held-out test cells
  for (const BaselineComparison& c : e.comparisons)
    EXPECT_EQ(c.result.cells, 18) << c.reference;
  EXPECT_NE(e.reason.find("18 cells, 5-fold over cells"), std::string::npos) << e.reason;
  EXPECT_FALSE(details.empty());
  std::ifstream in(fs::path(out) / "report.json");
  const auto report = nlohmann::json::parse(in);
  EXPECT_EQ(report["gate_evidence"]["scoring"], "k-fold");
  EXPECT_EQ(report["gate_evidence"]["folds"], 5);

  // Turned off, the same run is scored on its held-out test cells.
  options_.kfold_below_cells = 0;
  auto held_out = run_training(*split, options_, (tmp_.path() / "held-out").string());
  ASSERT_TRUE(held_out.ok()) << held_out.error().message;
  EXPECT_EQ(held_out->gate_evidence.scoring, "held-out");
  EXPECT_EQ(held_out->gate_evidence.cells, static_cast<int64_t>(split->test_cells.size()));
}

TEST_F(TrainingTest, NothingFitsTheBudgetIsAnErrorNamingTheClosestMiss) {
  options_.budget.max_flash_bytes = 100;
  const std::string out = (tmp_.path() / "tight").string();
  auto result = run_training(protocol_, options_, out);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

}  // namespace
}  // namespace cyclecast::pipeline
