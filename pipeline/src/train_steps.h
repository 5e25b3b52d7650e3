// The pieces run_training (train.cc) is built from, private to pipeline/: the run's progress and
// cancellation (RunContext), the models it trains and how (train_models.cc), and what it writes
// besides the models' training: the report's samples, settings and the output files
// (train_outputs.cc).
#pragma once

#include <Eigen/Core>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cyclecast/models/cost.h"
#include "cyclecast/models/model.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/models/quantize.h"
#include "cyclecast/models/student.h"
#include "cyclecast/models/training.h"
#include "cyclecast/pipeline/cleaning.h"
#include "cyclecast/pipeline/gate_evidence.h"
#include "cyclecast/pipeline/intervals.h"
#include "cyclecast/pipeline/paired_bootstrap.h"
#include "cyclecast/pipeline/pareto.h"
#include "cyclecast/pipeline/protocols.h"
#include "cyclecast/pipeline/report.h"
#include "cyclecast/pipeline/train.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline::training {

using Mf = models::Matrix<float>;
using Vf = models::Vector<float>;

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr int64_t kBatchSize = 256;
inline constexpr double kLearningRate = 1e-3;
inline constexpr double kStage2LearningRate = 5e-4;
// Input jitter of the students, in steps of the int16 input grid (models/tuning_student.h).
inline constexpr double kJitterSteps = 4.0;

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline Error cancelled_error() {
  return make_error(ErrorCode::kCancelled, "training was interrupted");
}

// Progress, cancellation and per-stage timings of one run (train.cc).
class RunContext {
 public:
  RunContext(const TrainingProgressCallback& callback, const std::atomic<bool>* cancel)
      : callback_(callback), cancel_(cancel) {}

  bool cancelled() const { return cancel_ != nullptr && cancel_->load(); }
  std::function<bool()> stop_check() const {
    const std::atomic<bool>* cancel = cancel_;
    return [cancel] { return cancel != nullptr && cancel->load(); };
  }

  void begin(Stage stage);
  void report(double stage_fraction, const std::string& detail);
  // Closes the current stage's timing; the run's total is the sum.
  void finish_stage();
  const std::vector<std::pair<std::string, double>>& timings() const { return timings_; }
  double elapsed() const { return seconds_since(run_start_); }

 private:
  const TrainingProgressCallback& callback_;
  const std::atomic<bool>* cancel_;
  Stage stage_ = Stage::kPrepare;
  bool stage_open_ = false;
  std::chrono::steady_clock::time_point run_start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point stage_start_ = run_start_;
  std::vector<std::pair<std::string, double>> timings_;
};

// --- Forecasts: the last input row is the window's gain (windows.h) ---------------------------

// Forecasts in target units. A model that takes the gain row (a student) applies it itself; one
// trained on the encoded rows only (the DLNet teacher) forecasts in amplitude units and is scaled
// here.
Mf forecast(const models::Model<float>& model, const Vf& params, const Mf& inputs, int64_t threads);
Result<Mf> forecast_int8(const models::QuantizedStudent& student, const Mf& inputs);
ForecastMetrics score(const Windows& windows, const Mf& outputs, const FeatureSpec& spec);

// --- The models of a run (train_models.cc) ------------------------------------------------------

// Ridge regression from the encoded rows to the targets in amplitude units (targets / gain): the
// bypass every student and the liquid teacher start from.
struct LinearInit {
  Eigen::MatrixXd weights;  // H x encoded rows
  Eigen::VectorXd bias;
  double lambda = 0.0;
  double validation_mae = kNaN;
};
Result<LinearInit> fit_linear_init(const EvalProtocol& protocol);

// A student (or the liquid teacher) whose untrained function is the rank-`features` truncation
// of the linear fit.
Vf init_student(const models::StudentModel<float>& model, const LinearInit& init, uint64_t seed);

models::TrainConfig distill_config(const TrainingOptions& options, int64_t epochs, double lr,
                                   const RunContext& ctx);
models::Dataset<float> dataset(const Windows& windows);

struct TrainedModel {
  std::string name;  // "liquid", "dlnet"
  std::unique_ptr<models::Model<float>> model;
  models::ModelConfig config;
  Vf params;
  double validation_mae = kNaN;
  int64_t epochs = 0;
};
// Trains the teacher of `kind` within `seconds`, reporting progress over [fraction_start,
// fraction_start + fraction_span] of the stage.
Result<TrainedModel> train_teacher(const std::string& kind, const EvalProtocol& protocol,
                                   const LinearInit& init, const TrainingOptions& options,
                                   double seconds, RunContext& ctx, double fraction_start,
                                   double fraction_span);

// One candidate student through distillation, pruning and quantization.
struct StudentRun {
  std::string name;
  std::string stage;  // "stage1" or "stage2"
  double prune_ratio = 0.0;
  models::StudentConfig config;
  Vf params;
  ForecastMetrics pruned_test;  // stage 2 only: after pruning, before fine-tuning
  std::optional<models::QuantizedStudent> int8;
  double validation_float = kNaN;
  double validation_int8 = kNaN;
};
Result<void> distill(StudentRun& run, const models::Dataset<float>& train_set,
                     const models::Dataset<float>& validation_set,
                     const models::TrainConfig& config, double jitter, RunContext& ctx,
                     double fraction_start, double fraction_span);
std::string ratio_text(double ratio);
// Every `count`-th training input (encoded rows) up to `count` of them, for int8 calibration.
Eigen::MatrixXf calibration_inputs(const Windows& train, int64_t count);
// int8 quantization of one candidate, with the encoder quantized first (train_models.cc).
Result<void> quantize(StudentRun& run, const Eigen::MatrixXf& calibration,
                      const EvalProtocol& protocol, const models::Dataset<float>& train_set,
                      const models::Dataset<float>& validation_set, double jitter,
                      const TrainingOptions& options, RunContext& ctx);
Candidate candidate_of(const StudentRun& run, const models::CostConstants& constants);

// --- The linear candidate and the gate's evidence (train_linear.cc) ---------------------------

// The candidate the node runs as a plain linear model: the student's bypass alone (a rank-
// `features` ridge in amplitude units, from `init`) with one inert hidden unit (every weight of
// the liquid part zero), since the node's kernel needs a width of at least one. The unit stays
// inert through fine-tuning: with G = 0 and h = 0 every gradient of the liquid part is zero.
inline constexpr const char* kLinearCandidate = "linear";
StudentRun linear_student(const LinearInit& init, int64_t encoded_size, int64_t features,
                          int64_t horizon, uint64_t seed);
bool is_linear(const StudentRun& run);

// Errors by cell of the students given (their int8 forecasts) and of the node's extrapolation
// baselines ("last value", "line-10", "quadratic-50"), all on the same windows: the protocol's
// test windows ("held-out"), or with few cells in a split protocol every cell once, each student's
// architecture refitted on the other folds ("k-fold"; see docs/pipeline.md, "Gate evidence").
struct CellScores {
  std::string scoring;  // "held-out" or "k-fold"
  int64_t folds = 0;
  std::string note;  // why k-fold was not possible, when it was asked for; else empty
  std::vector<std::pair<std::string, std::vector<CellError>>> models;  // students, then baselines
  const std::vector<CellError>* find(const std::string& name) const;
};
Result<CellScores> score_cells(const std::vector<const StudentRun*>& students,
                               const EvalProtocol& protocol, const TrainingOptions& options,
                               double jitter, int64_t epochs, RunContext& ctx);
// The names of the node's extrapolation baselines in CellScores, in order.
inline constexpr const char* kNodeBaselines[] = {"last value", "line-10", "quadratic-50"};

// --- Prediction intervals (train_intervals.cc) -------------------------------------------------

// Calibrates the chosen int8 student's per-step intervals at `coverage` on the protocol's
// validation windows (intervals.h) and measures them, and the ridge baseline's residual
// quantiles calibrated the same way, on its test windows, overall and per SOH band.
Result<IntervalReport> calibrate_intervals(const EvalProtocol& protocol,
                                           const models::QuantizedStudent& student,
                                           double coverage);

// --- What the run writes (train_outputs.cc) ---------------------------------------------------

// One test window per SOH band (the middle one of the band's windows), drawn in the report.
std::vector<SampleForecast> sample_forecasts(const EvalProtocol& protocol,
                                             const TrainedModel& teacher, const StudentRun& chosen,
                                             const std::string& best_baseline, int64_t threads);
std::string utc_timestamp(const char* format);
Result<void> write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);
Result<void> save(const std::filesystem::path& path, const models::ModelConfig& config,
                  const Vf& params, std::map<std::string, std::string> metadata);
std::map<std::string, std::string> settings_of(const TrainingOptions& o,
                                               const TrainedModel& teacher, const LinearInit& init);
std::vector<std::pair<std::string, int64_t>> cleaning_rows(const CleaningReport& c);

}  // namespace cyclecast::pipeline::training
