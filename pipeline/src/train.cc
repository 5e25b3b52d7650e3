// run_training (train.h): the pipeline's stages in order, each a function of the run's state
// (TrainingRun below); the models they train are in train_models.cc, the files besides the report
// in train_outputs.cc.
#include "cyclecast/pipeline/train.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>

#include "cyclecast/models/model_file.h"
#include "cyclecast/models/pruning.h"
#include "cyclecast/pipeline/baselines.h"
#include "cyclecast/pipeline/report.h"
#include "printf_string.h"
#include "train_steps.h"

namespace cyclecast::pipeline {

namespace fs = std::filesystem;
using namespace training;  // NOLINT(google-build-using-namespace): this file is their user

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::kPrepare:
      return "prepare";
    case Stage::kTeacher:
      return "teacher";
    case Stage::kStage1:
      return "stage1";
    case Stage::kPrune:
      return "prune";
    case Stage::kStage2:
      return "stage2";
    case Stage::kQuantize:
      return "int8";
    case Stage::kSelect:
      return "select";
    case Stage::kReport:
      return "report";
  }
  return "?";
}

namespace training {
namespace {

// Share of the whole run each stage stands for in the overall progress (sums to 1).
double stage_weight(Stage stage) {
  switch (stage) {
    case Stage::kPrepare:
      return 0.02;
    case Stage::kTeacher:
      return 0.30;
    case Stage::kStage1:
      return 0.27;
    case Stage::kPrune:
      return 0.01;
    case Stage::kStage2:
      return 0.27;
    case Stage::kQuantize:
      return 0.06;
    case Stage::kSelect:  // the gate's evidence: k-fold refits on few cells (train_linear.cc)
      return 0.05;
    case Stage::kReport:
      return 0.02;
  }
  return 0.0;
}

}  // namespace

void RunContext::begin(Stage stage) {
  finish_stage();
  stage_ = stage;
  stage_start_ = std::chrono::steady_clock::now();
  report(0.0, "");
}

void RunContext::report(double stage_fraction, const std::string& detail) {
  if (!callback_) return;
  TrainingProgress p;
  p.stage = stage_;
  p.stage_fraction = std::clamp(stage_fraction, 0.0, 1.0);
  double done = 0.0;
  for (int s = 0; s < static_cast<int>(stage_); ++s)
    done += stage_weight(static_cast<Stage>(s));
  p.overall_fraction = done + stage_weight(stage_) * p.stage_fraction;
  p.detail = detail;
  const double elapsed = seconds_since(run_start_);
  p.eta_s =
      p.overall_fraction > 0.02 ? elapsed * (1.0 - p.overall_fraction) / p.overall_fraction : kNaN;
  callback_(p);
}

void RunContext::finish_stage() {
  if (stage_open_) timings_.emplace_back(stage_name(stage_), seconds_since(stage_start_));
  stage_open_ = true;
}

}  // namespace training

namespace {

Result<void> check_options(const EvalProtocol& protocol, const TrainingOptions& o,
                           const std::string& out_dir) {
  const auto bad = [](const std::string& message) {
    return make_error(ErrorCode::kInvalidArgument, message);
  };
  if (o.widths.empty()) return bad("at least one student width is needed");
  for (int64_t w : o.widths) {
    if (w < 1 || w > 1024) return bad("student widths must lie in [1, 1024]");
  }
  if (o.features < 1) return bad("students need at least one bypass feature");
  for (double r : o.prune_ratios) {
    if (!(r > 0.0 && r < 1.0)) return bad("prune ratios must lie in (0, 1)");
  }
  if (o.student_epochs < 1 || o.stage2_epochs < 1 || o.teacher_max_epochs < 2) {
    return bad("epochs must be at least 1 (teacher: 2)");
  }
  if (!(o.teacher_budget_s > 0.0)) return bad("the teacher budget must be positive");
  if (!(o.lambda_start >= 0.0 && o.lambda_end <= 1.0 && o.lambda_start <= o.lambda_end)) {
    return bad("distillation lambda must rise within [0, 1]");
  }
  if (o.calibration_windows < 1) return bad("calibration needs at least one window");
  if (!(o.interval_coverage > 0.0 && o.interval_coverage < 1.0))
    return bad("the interval coverage must lie in (0, 1)");
  if (auto augment = check_augment_options(o.augment); !augment) return augment;
  if (o.smooth_radius < 0 || o.smooth_radius > 50) {
    return bad("the training series' median radius must lie in [0, 50] cycles");
  }
  if (!(o.weight_decay >= 0.0 && o.weight_decay < 1.0)) {
    return bad("the weight decay must lie in [0, 1)");
  }
  if (protocol.train.size() == 0 || protocol.validation.size() == 0 || protocol.test.size() == 0) {
    return bad("the " + protocol.name + " protocol left " + std::to_string(protocol.train.size()) +
               " training, " + std::to_string(protocol.validation.size()) + " validation and " +
               std::to_string(protocol.test.size()) +
               " test windows; every split needs at least one (more cells, or a shorter window)");
  }
  if (out_dir.empty()) return bad("an output directory is needed");
  std::error_code ec;
  if (fs::exists(out_dir, ec)) return bad(out_dir + " already exists; give a new directory");
  return {};
}

// --- The run, stage by stage --------------------------------------------------------------------

// What the stages of one run hand each other, in the order they fill it.
struct TrainingRun {
  TrainingRun(const EvalProtocol& p, const EvalProtocol& l, const TrainingOptions& o,
              const fs::path& dir, RunContext& c)
      : protocol(p), learn(l), options(o), partial(dir), ctx(c) {}

  const EvalProtocol& protocol;
  // The same protocol with the training aids applied to its training windows (augment.h): what
  // the linear fit, the teacher and the students learn from. `protocol` itself without aids.
  const EvalProtocol& learn;
  const TrainingOptions& options;
  const fs::path& partial;  // where the files go; run_training owns the directory's lifetime
  RunContext& ctx;
  RunReport report;
  // Prepare: the students' linear starting point and the baselines' test metrics.
  std::optional<LinearInit> init;
  std::vector<std::pair<std::string, ForecastMetrics>> baselines;
  // Teacher: the better teacher on validation, and what distillation needs from it.
  std::optional<TrainedModel> teacher;
  models::Dataset<float> train_set, validation_set;
  Eigen::MatrixXf calibration;  // int8 input calibration
  double jitter = 0.0;          // the students' input jitter
  int64_t stage1_epochs = 0, stage2_epochs = 0;
  // Stage 1 to select: every candidate (stage-1 ones first), and the chosen one.
  std::vector<StudentRun> students;
  size_t stage1_count = 0;
  size_t chosen = 0;
  TrainingResult result;
};

Result<void> prepare(TrainingRun& run) {
  auto init = fit_linear_init(run.learn);
  if (!init) return init.error();
  run.init = std::move(*init);
  run.baselines = evaluate_baselines(run.protocol);
  return {};
}

// The training aids in the report's settings, with the training windows they left.
void add_aid_settings(TrainingRun& run) {
  const TrainingOptions& o = run.options;
  auto& settings = run.report.settings;
  if (o.augment.copies > 0) {
    settings["augment"] =
        printf_string("%lld copies, fade x exp(U(-%g, %g)), gain 1 + U(-%g, %g)",
                      static_cast<long long>(o.augment.copies), o.augment.fade_scale,
                      o.augment.fade_scale, o.augment.gain, o.augment.gain);
  }
  if (o.smooth_radius > 0) {
    settings["training_series_median"] =
        std::to_string(2 * o.smooth_radius + 1) + " cycles (training windows only)";
  }
  if (o.weight_decay > 0.0) settings["student_weight_decay"] = printf_string("%g", o.weight_decay);
  if (&run.learn != &run.protocol) {
    settings["training_windows"] = std::to_string(run.learn.train.size()) + " (" +
                                   std::to_string(run.protocol.train.size()) + " before the aids)";
  }
}

// The datasets the students distill from, their input calibration and jitter, and their epochs.
void prepare_distillation(TrainingRun& run) {
  const EvalProtocol& protocol = run.protocol;
  const TrainingOptions& options = run.options;
  run.report.settings = settings_of(options, *run.teacher, *run.init);
  if (!protocol.test_batch.empty()) {
    // cross-batch: which batch the test figures are on, and which ones trained and validated.
    std::string trained;
    for (const std::string& b : protocol.train_batches)
      trained += (trained.empty() ? "" : ", ") + b;
    run.report.settings["test_batch"] = protocol.test_batch;
    run.report.settings["train_batches"] = trained;
  }
  run.train_set = dataset(run.learn.train);
  run.train_set.teacher =
      forecast(*run.teacher->model, run.teacher->params, run.train_set.inputs, options.threads);
  run.validation_set = dataset(protocol.validation);

  // The int8 input calibration, and the students' input jitter: a few steps of the int16 input
  // grid the quantizer will derive from it.
  run.calibration = calibration_inputs(protocol.train, options.calibration_windows);
  run.jitter = kJitterSteps * models::QuantizeOptions{}.range_margin *
               run.calibration.cwiseAbs().maxCoeff() / 32767.0;

  const int64_t batches = (run.learn.train.size() + kBatchSize - 1) / kBatchSize;
  const auto epochs_for = [batches](int64_t epochs, int64_t min_steps) {
    return std::max(epochs, (min_steps + batches - 1) / batches);
  };
  run.stage1_epochs = epochs_for(options.student_epochs, options.min_student_steps);
  run.stage2_epochs = epochs_for(options.stage2_epochs, options.min_stage2_steps);
  run.report.settings["student_epochs"] = std::to_string(run.stage1_epochs);
  add_aid_settings(run);
  run.report.settings["stage2_epochs"] = std::to_string(run.stage2_epochs);
}

// Each teacher kind the options ask for, within its share of the budget; the better one on
// validation teaches.
Result<void> train_teachers(TrainingRun& run) {
  const TrainingOptions& options = run.options;
  std::vector<std::string> kinds;
  if (options.teacher != TeacherKind::kLiquid) kinds.push_back("dlnet");
  if (options.teacher != TeacherKind::kDlnet) kinds.push_back("liquid");
  const double kind_share = 1.0 / static_cast<double>(kinds.size());
  for (size_t k = 0; k < kinds.size(); ++k) {
    const std::string& kind = kinds[k];
    auto t =
        train_teacher(kind, run.learn, *run.init, options, options.teacher_budget_s * kind_share,
                      run.ctx, static_cast<double>(k) * kind_share, kind_share);
    if (!t) return t.error();
    run.report.stages.push_back(
        {"teacher", kind,
         score(run.protocol.test,
               forecast(*t->model, t->params, run.protocol.test.inputs, options.threads),
               run.protocol.spec)});
    if (!run.teacher || t->validation_mae < run.teacher->validation_mae)
      run.teacher = std::move(*t);
  }
  prepare_distillation(run);
  return {};
}

// Stage-1 distillation, one student per width.
Result<void> distill_widths(TrainingRun& run) {
  const TrainingOptions& options = run.options;
  const FeatureSpec& spec = run.protocol.spec;
  const double width_share = 1.0 / static_cast<double>(options.widths.size());
  for (size_t i = 0; i < options.widths.size(); ++i) {
    StudentRun student;
    student.name = "w" + std::to_string(options.widths[i]);
    student.stage = "stage1";
    student.config = {
        spec.encoded_size(), options.features, options.widths[i], 1, spec.horizon, true};
    student.params =
        init_student(models::StudentModel<float>(student.config), *run.init, options.seed + i);
    auto done = distill(student, run.train_set, run.validation_set,
                        distill_config(options, run.stage1_epochs, kLearningRate, run.ctx),
                        run.jitter, run.ctx, static_cast<double>(i) * width_share, width_share);
    if (!done) return done.error();
    run.students.push_back(std::move(student));
  }
  run.stage1_count = run.students.size();
  return {};
}

// Structured pruning of every stage-1 student, at every ratio that removes a unit.
Result<void> prune_students(TrainingRun& run) {
  for (size_t i = 0; i < run.stage1_count; ++i) {
    for (double ratio : run.options.prune_ratios) {
      const StudentRun& parent = run.students[i];
      auto pruned = models::prune_student(parent.config, parent.params.data(), ratio, 0.0);
      if (!pruned) return pruned.error();
      if (pruned->config.width == parent.config.width) continue;  // nothing removed
      StudentRun student;
      student.name = parent.name + "-p" + ratio_text(ratio);
      student.stage = "stage2";
      student.prune_ratio = ratio;
      student.config = pruned->config;
      student.params = std::move(pruned->params);
      student.pruned_test =
          score(run.protocol.test,
                forecast(models::StudentModel<float>(student.config), student.params,
                         run.protocol.test.inputs, run.options.threads),
                run.protocol.spec);
      run.students.push_back(std::move(student));
    }
  }
  return {};
}

// Stage-2 distillation of the pruned students.
Result<void> distill_pruned(TrainingRun& run) {
  const size_t pruned_count = run.students.size() - run.stage1_count;
  for (size_t i = run.stage1_count; i < run.students.size(); ++i) {
    const double share = 1.0 / static_cast<double>(pruned_count);
    auto done =
        distill(run.students[i], run.train_set, run.validation_set,
                distill_config(run.options, run.stage2_epochs, kStage2LearningRate, run.ctx),
                run.jitter, run.ctx, static_cast<double>(i - run.stage1_count) * share, share);
    if (!done) return done.error();
  }
  return {};
}

// int8 quantization of every candidate, scored with the firmware's own code. The linear
// candidate (the bypass alone) joins the others here: it needs no distillation of its own.
Result<void> quantize_students(TrainingRun& run) {
  const FeatureSpec& spec = run.protocol.spec;
  run.students.push_back(linear_student(*run.init, spec.encoded_size(), run.options.features,
                                        spec.horizon, run.options.seed));
  for (size_t i = 0; i < run.students.size(); ++i) {
    if (run.ctx.cancelled()) return cancelled_error();
    run.ctx.report(static_cast<double>(i) / static_cast<double>(run.students.size()),
                   run.students[i].name);
    auto done = quantize(run.students[i], run.calibration, run.protocol, run.train_set,
                         run.validation_set, run.jitter, run.options, run.ctx);
    if (!done) return done.error();
  }
  return {};
}

// The deployed student is candidates[choice.index] (the same index in run.students).
void apply_choice(TrainingRun& run, const Choice& choice) {
  run.report.choice = choice;
  run.chosen = choice.index;
  const Candidate& chosen = run.report.candidates[choice.index];
  RunOutput& out = run.result;
  out.chosen = chosen.name;
  out.choice_reason = choice.reason;
  out.chosen_params = chosen.params;
  out.chosen_flash_bytes = chosen.flash_bytes;
  out.chosen_ram_bytes = chosen.ram_bytes;
  out.chosen_cycles = static_cast<int64_t>(std::llround(chosen.cycles));
}

std::optional<size_t> linear_index(const TrainingRun& run) {
  for (size_t i = 0; i < run.students.size(); ++i) {
    if (is_linear(run.students[i])) return i;
  }
  return std::nullopt;
}

// The chosen student against the baselines the node could run (gate_evidence.h): the
// extrapolations, and the linear candidate when the chosen one is liquid.
Result<GateEvidence> evidence_for(const StudentRun& student, const CellScores& scores) {
  std::vector<std::pair<std::string, std::vector<CellError>>> references;
  if (!is_linear(student)) {
    if (const auto* linear = scores.find(kLinearCandidate))
      references.emplace_back(kLinearCandidate, *linear);
  }
  for (const char* name : kNodeBaselines)
    references.emplace_back(name, *scores.find(name));
  auto evidence = judge_against_references(student.name, *scores.find(student.name), references,
                                           scores.scoring, scores.folds);
  if (evidence && !scores.note.empty()) evidence->reason += " (" + scores.note + ")";
  return evidence;
}

// The gate's evidence for the chosen student. A liquid student that does not beat those
// baselines gives way to the linear candidate when that one does: the run then deploys what the
// data supports rather than a student the gate would refuse (docs/pipeline.md, "Gate evidence").
Result<void> judge_choice(TrainingRun& run) {
  const std::optional<size_t> linear = linear_index(run);
  std::vector<const StudentRun*> scored{&run.students[run.chosen]};
  if (linear && *linear != run.chosen) scored.push_back(&run.students[*linear]);
  auto scores =
      score_cells(scored, run.protocol, run.options, run.jitter, run.stage1_epochs, run.ctx);
  if (!scores) return scores.error();
  auto evidence = evidence_for(run.students[run.chosen], *scores);
  if (!evidence) return evidence.error();
  if (!evidence->beats_references && linear && *linear != run.chosen &&
      within_budget(run.report.candidates[*linear], run.options.budget)) {
    auto fallback = evidence_for(run.students[*linear], *scores);
    if (!fallback) return fallback.error();
    if (fallback->beats_references) {
      apply_choice(run, Choice{*linear, run.report.choice.reason +
                                            " Replaced by the linear "
                                            "candidate, since " +
                                            evidence->reason + "."});
      evidence = std::move(fallback);
    }
  }
  run.report.gate_evidence = *evidence;
  run.result.gate_evidence = *evidence;
  return {};
}

// Cost and Pareto selection.
Result<void> select_student(TrainingRun& run) {
  RunReport& report = run.report;
  for (const StudentRun& student : run.students)
    report.candidates.push_back(candidate_of(student, run.options.cost));
  report.front = pareto_front(report.candidates);
  auto choice = choose_knee(report.candidates, run.options.budget);
  if (!choice) return choice.error();
  apply_choice(run, *choice);
  return judge_choice(run);
}

// The test metrics of every stage of every candidate, in the report's stages table.
Result<void> score_students(TrainingRun& run) {
  const EvalProtocol& protocol = run.protocol;
  for (const StudentRun& student : run.students) {
    const models::StudentModel<float> model(student.config);
    const ForecastMetrics float_metrics = score(
        protocol.test, forecast(model, student.params, protocol.test.inputs, run.options.threads),
        protocol.spec);
    auto int8_out = forecast_int8(*student.int8, protocol.test.inputs);
    if (!int8_out) return int8_out.error();
    const ForecastMetrics int8_metrics = score(protocol.test, *int8_out, protocol.spec);
    if (student.stage == "stage2") {
      run.report.stages.push_back({"pruned", student.name, student.pruned_test});
    }
    run.report.stages.push_back({student.stage, student.name, float_metrics});
    run.report.stages.push_back({"int8", student.name, int8_metrics});
    if (&student == &run.students[run.chosen]) {
      run.result.chosen_float = float_metrics;
      run.result.chosen_int8 = int8_metrics;
    }
  }
  return {};
}

// The baselines' rows, the teacher's test metrics, the sample plots and the error by step.
void compare_with_baselines(TrainingRun& run) {
  RunReport& report = run.report;
  std::string best_baseline;
  double best_baseline_mae = std::numeric_limits<double>::infinity();
  for (const auto& [name, metrics] : run.baselines) {
    report.stages.push_back({"baseline", name, metrics});
    if (metrics.mae < best_baseline_mae) {
      best_baseline_mae = metrics.mae;
      best_baseline = name;
    }
  }
  const TrainedModel& teacher = *run.teacher;
  const StudentRun& chosen = run.students[run.chosen];
  run.result.teacher =
      score(run.protocol.test,
            forecast(*teacher.model, teacher.params, run.protocol.test.inputs, run.options.threads),
            run.protocol.spec);
  report.samples =
      sample_forecasts(run.protocol, teacher, chosen, best_baseline, run.options.threads);
  report.error_by_step = {{chosen.name + " int8", run.result.chosen_int8.mae_by_step},
                          {chosen.name + " float", run.result.chosen_float.mae_by_step},
                          {"teacher (" + teacher.name + ")", run.result.teacher.mae_by_step}};
  for (const auto& [name, metrics] : run.baselines) {
    if (name == best_baseline) report.error_by_step.emplace_back(name, metrics.mae_by_step);
  }
}

// The chosen student (float and int8) and the teacher, each with the run's metadata.
Result<void> save_models(const TrainingRun& run) {
  const StudentRun& chosen = run.students[run.chosen];
  const TrainedModel& teacher = *run.teacher;
  std::map<std::string, std::string> metadata = run.protocol.spec.to_metadata();
  metadata["pipeline.run_id"] = run.report.run_id;
  metadata["pipeline.protocol"] = run.protocol.name;
  metadata["pipeline.data_source"] = run.protocol.data.source;
  metadata["pipeline.candidate"] = chosen.name;
  if (run.report.intervals) {
    const auto intervals = interval_metadata(*run.report.intervals);
    metadata.insert(intervals.begin(), intervals.end());
  }
  if (auto saved = save(run.partial / RunFiles::kStudent, chosen.config, chosen.params, metadata);
      !saved) {
    return saved.error();
  }
  if (auto saved = write_bytes(run.partial / RunFiles::kStudentInt8,
                               models::serialize_quantized_student(*chosen.int8));
      !saved) {
    return saved.error();
  }
  metadata["pipeline.candidate"] = "teacher-" + teacher.name;
  metadata.erase("pipeline.interval.coverage");  // the intervals are the student's
  metadata.erase("pipeline.interval.half_width");
  return save(run.partial / RunFiles::kTeacher, teacher.config, teacher.params, metadata);
}

// The chosen int8 student's prediction intervals: its table travels in the blob.
Result<void> add_intervals(TrainingRun& run) {
  StudentRun& chosen = run.students[run.chosen];
  auto intervals = calibrate_intervals(run.protocol, *chosen.int8, run.options.interval_coverage);
  if (!intervals) return intervals.error();
  chosen.int8->interval_half_width = intervals->table;
  run.result.intervals = *intervals;
  run.report.intervals = std::move(*intervals);
  return {};
}

// Test metrics of every stage, the models and the report.
Result<void> write_outputs(TrainingRun& run) {
  if (auto scored = score_students(run); !scored) return scored;
  compare_with_baselines(run);
  if (auto added = add_intervals(run); !added) return added;
  if (auto saved = save_models(run); !saved) return saved;
  run.ctx.finish_stage();
  run.report.timings_s = run.ctx.timings();
  run.report.timings_s.emplace_back("total", run.ctx.elapsed());
  if (auto written = write_report_json(run.partial / RunFiles::kReportJson, run.report); !written) {
    return written;
  }
  return write_report_html(run.partial / RunFiles::kReportHtml, run.report);
}

// The stages in order (Stage's order: the progress weights are indexed by it).
struct RunStage {
  Stage stage;
  Result<void> (*run)(TrainingRun&);
};
constexpr RunStage kRunStages[] = {
    {Stage::kPrepare, prepare},       {Stage::kTeacher, train_teachers},
    {Stage::kStage1, distill_widths}, {Stage::kPrune, prune_students},
    {Stage::kStage2, distill_pruned}, {Stage::kQuantize, quantize_students},
    {Stage::kSelect, select_student}, {Stage::kReport, write_outputs},
};

// The run itself, writing into `partial`; run_training owns the directory's lifetime.
// The protocol with its training windows made again from the median-smoothed series and then
// augmented, when the options ask for either; nullopt when they ask for neither.
Result<std::optional<EvalProtocol>> with_training_aids(const EvalProtocol& protocol,
                                                       const TrainingOptions& options) {
  if (options.smooth_radius == 0 && options.augment.copies == 0) {
    return std::optional<EvalProtocol>{};
  }
  std::optional<EvalProtocol> learn = protocol;
  if (options.smooth_radius > 0) {
    const std::vector<CellSeries> smoothed =
        median_smoothed(protocol.data.cells, options.smooth_radius);
    auto windows = make_windows_at(smoothed, protocol.spec, protocol.train.refs);
    if (!windows) return windows.error();
    learn->train = std::move(*windows);
  }
  if (options.augment.copies > 0) {
    AugmentOptions augment = options.augment;
    augment.seed = options.seed;
    learn->train = augment_windows(learn->train, protocol.spec, augment);
  }
  return learn;
}

Result<TrainingResult> run_stages(const EvalProtocol& protocol, const TrainingOptions& options,
                                  const fs::path& partial, RunContext& ctx) {
  auto aided = with_training_aids(protocol, options);
  if (!aided) return aided.error();
  TrainingRun run(protocol, *aided ? **aided : protocol, options, partial, ctx);
  run.report.run_id = utc_timestamp("%Y%m%dT%H%M%SZ");
  run.report.created_at = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
  run.report.data_source = protocol.data.source;
  run.report.protocol = protocol.name;
  run.report.budget = options.budget;
  run.report.cleaning = cleaning_rows(protocol.cleaning);
  if (protocol.name == "paper") {
    run.report.cleaning.emplace_back("windows touching a test segment's targets left out",
                                     protocol.windows_left_out);
  }
  run.report.cleaning.emplace_back("windows spanning a long gap left out",
                                   protocol.windows_across_gaps);
  for (const RunStage& stage : kRunStages) {
    ctx.begin(stage.stage);
    if (auto done = stage.run(run); !done) return done.error();
  }
  TrainingResult& result = run.result;
  result.run_id = run.report.run_id;
  result.protocol = protocol.name;
  result.data_source = protocol.data.source;
  result.baselines = run.baselines;
  result.teacher_params = run.teacher->model->layout().size();
  result.seconds = ctx.elapsed();
  return std::move(result);
}

}  // namespace

Result<TrainingResult> run_training(const EvalProtocol& protocol, const TrainingOptions& options,
                                    const std::string& out_dir,
                                    const TrainingProgressCallback& progress,
                                    const std::atomic<bool>* cancel) {
  if (auto checked = check_options(protocol, options, out_dir); !checked) return checked.error();
  // A leftover .partial directory is an earlier interrupted run of this same output: replace it.
  const fs::path partial = out_dir + ".partial";
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "could not create " + partial.string() + ": " + ec.message());
  RunContext ctx(progress, cancel);
  auto result = run_stages(protocol, options, partial, ctx);
  if (result && ctx.cancelled()) result = cancelled_error();
  if (result) {
    fs::rename(partial, out_dir, ec);
    if (ec) {
      result = make_error(ErrorCode::kIo, "could not rename " + partial.string() + " to " +
                                              out_dir + ": " + ec.message());
    }
  }
  if (!result) {
    fs::remove_all(partial, ec);
    return result.error();
  }
  result->out_dir = out_dir;
  return result;
}

Result<EvalProtocol> load_training_protocol(const std::filesystem::path& path,
                                            const std::string& name, ProtocolOptions options,
                                            InputChoice inputs) {
  options.use_optional_features = inputs != InputChoice::kSohOnly;
  auto with_features = load_protocol(path, name, options);
  if (!with_features || inputs != InputChoice::kAuto || with_features->spec.features.empty()) {
    return with_features;
  }
  options.use_optional_features = false;
  auto soh_only = load_protocol(path, name, options);
  if (!soh_only) return soh_only;
  auto linear_all = fit_linear_init(*with_features);
  auto linear_soh = fit_linear_init(*soh_only);
  if (!linear_all) return soh_only;
  if (!linear_soh) return with_features;
  return linear_all->validation_mae < linear_soh->validation_mae ? std::move(with_features)
                                                                 : std::move(soh_only);
}

namespace {

// A saved model's forecasts (absolute SOH) on the protocol's test windows, with the windows.
struct FileForecasts {
  Windows windows;
  Eigen::MatrixXd soh;
};

Result<FileForecasts> forecast_model_file(const std::string& path, const EvalProtocol& protocol) {
  const fs::path file(path);
  const bool int8 = file.extension() == ".int8";
  // An int8 blob carries no normalization: it is read from the float student beside it.
  const fs::path model_path = int8 ? file.parent_path() / RunFiles::kStudent : file;
  auto saved = models::load_model(model_path.string());
  if (!saved) {
    return make_error(saved.error().code,
                      (int8 ? "an int8 blob is evaluated with the normalization of student.ccm "
                              "in the same directory: "
                            : "") +
                          saved.error().message);
  }
  auto spec = FeatureSpec::from_metadata(saved->metadata);
  if (!spec) return spec.error();
  if (spec->input_len != protocol.spec.input_len || spec->horizon != protocol.spec.horizon) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the model forecasts " + std::to_string(spec->horizon) + " cycles from " +
                          std::to_string(spec->input_len) + "; the evaluation windows are " +
                          std::to_string(protocol.spec.horizon) + " from " +
                          std::to_string(protocol.spec.input_len) + " (--window, --horizon)");
  }
  auto windows = make_windows_at(protocol.data.cells, *spec, protocol.test.refs);
  if (!windows) return windows.error();
  if (int8) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
    auto student = models::deserialize_quantized_student(bytes);
    if (!student) return student.error();
    if (student->input_size != spec->encoded_size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        path + " does not match the student.ccm beside it (input size)");
    }
    auto out = forecast_int8(*student, windows->inputs);
    if (!out) return out.error();
    Eigen::MatrixXd soh = to_soh(*out, windows->last_soh, *spec);
    return FileForecasts{std::move(*windows), std::move(soh)};
  }
  const auto model = models::build_model(saved->config);
  if (model->input_size() != spec->input_size() && model->input_size() != spec->encoded_size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      path + ": the model's input size does not match its feature description");
  }
  Eigen::MatrixXd soh =
      to_soh(forecast(*model, saved->params, windows->inputs, 0), windows->last_soh, *spec);
  return FileForecasts{std::move(*windows), std::move(soh)};
}

}  // namespace

Result<ForecastMetrics> evaluate_model_file(const std::string& path, const EvalProtocol& protocol) {
  auto f = forecast_model_file(path, protocol);
  if (!f) return f.error();
  return compute_metrics(f->windows.truth_soh, f->soh, f->windows.last_soh);
}

Result<std::vector<CellError>> model_file_errors_by_cell(const std::string& path,
                                                         const EvalProtocol& protocol) {
  auto f = forecast_model_file(path, protocol);
  if (!f) return f.error();
  std::vector<std::string> cells;
  for (const WindowRef& ref : f->windows.refs)
    cells.push_back(protocol.data.cells[static_cast<size_t>(ref.cell)].cell_id);
  return errors_by_cell(f->windows.truth_soh, f->soh, cells);
}

}  // namespace cyclecast::pipeline
