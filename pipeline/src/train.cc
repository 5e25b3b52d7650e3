#include "cyclecast/pipeline/train.h"

#include <Eigen/SVD>
#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>

#include "cyclecast/models/cost.h"
#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/models/pruning.h"
#include "cyclecast/models/quantize.h"
#include "cyclecast/models/student.h"
#include "cyclecast/models/training.h"
#include "cyclecast/models/tuning_student.h"
#include "cyclecast/pipeline/baselines.h"
#include "cyclecast/pipeline/report.h"

namespace cyclecast::pipeline {

namespace fs = std::filesystem;
using Mf = models::Matrix<float>;
using Vf = models::Vector<float>;

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

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kBatchSize = 256;
constexpr double kLearningRate = 1e-3;
constexpr double kStage2LearningRate = 5e-4;
// Input jitter of the students, in steps of the int16 input grid (models/tuning_student.h).
constexpr double kJitterSteps = 4.0;
// Epochs of fine-tuning around the int8 encoder before the rest is quantized (see quantize()).
constexpr int64_t kEncoderTuneEpochs = 3;
constexpr int64_t kTeacherFeatures = 16;
constexpr int64_t kTeacherWidth = 256;
// Ridge strengths tried for the linear initialization of every bypass, weakest first.
constexpr double kInitLambdas[] = {1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0};
// The strongest of them whose validation MAE is within this factor of the best is kept: on
// strongly correlated SOH inputs a weakly regularized fit has large weights of alternating sign
// that cancel in float but not after int8 rounding, and the students start from (and stay near)
// these weights.
constexpr double kInitTolerance = 1.02;

// Share of the whole run each stage stands for in the overall progress (sums to 1).
double stage_weight(Stage stage) {
  switch (stage) {
    case Stage::kPrepare:
      return 0.02;
    case Stage::kTeacher:
      return 0.34;
    case Stage::kStage1:
      return 0.27;
    case Stage::kPrune:
      return 0.01;
    case Stage::kStage2:
      return 0.27;
    case Stage::kQuantize:
      return 0.06;
    case Stage::kSelect:
      return 0.01;
    case Stage::kReport:
      return 0.02;
  }
  return 0.0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Progress, cancellation and per-stage timings of one run.
class RunContext {
 public:
  RunContext(const TrainingProgressCallback& callback, const std::atomic<bool>* cancel)
      : callback_(callback), cancel_(cancel) {}

  bool cancelled() const { return cancel_ != nullptr && cancel_->load(); }
  std::function<bool()> stop_check() const {
    const std::atomic<bool>* cancel = cancel_;
    return [cancel] { return cancel != nullptr && cancel->load(); };
  }

  void begin(Stage stage) {
    finish_stage();
    stage_ = stage;
    stage_start_ = std::chrono::steady_clock::now();
    report(0.0, "");
  }
  void report(double stage_fraction, const std::string& detail) {
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
    p.eta_s = p.overall_fraction > 0.02 ? elapsed * (1.0 - p.overall_fraction) / p.overall_fraction
                                        : kNaN;
    callback_(p);
  }
  // Closes the current stage's timing; the run's total is the sum.
  void finish_stage() {
    if (stage_open_) timings_.emplace_back(stage_name(stage_), seconds_since(stage_start_));
    stage_open_ = true;
  }
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

Error cancelled_error() {
  return make_error(ErrorCode::kCancelled, "training was interrupted");
}

// --- Representation helpers: the last input row is the window's gain (windows.h) -------------

Mf encoded_rows(const Mf& inputs) {
  return inputs.topRows(inputs.rows() - 1);
}

void apply_gain(Mf& outputs, const Mf& inputs) {
  outputs.array().rowwise() *= inputs.row(inputs.rows() - 1).array();
}

// Forecasts in target units. A model that takes the gain row (a student) applies it itself; one
// trained on the encoded rows only (the DLNet teacher) forecasts in amplitude units and is scaled
// here.
Mf forecast(const models::Model<float>& model, const Vf& params, const Mf& inputs,
            int64_t threads) {
  if (model.input_size() == inputs.rows()) {
    return models::predict_all(model, params.data(), inputs, threads);
  }
  Mf out = models::predict_all(model, params.data(), encoded_rows(inputs), threads);
  apply_gain(out, inputs);
  return out;
}

Result<Mf> forecast_int8(const models::QuantizedStudent& student, const Mf& inputs) {
  auto out = models::run_quantized(student, encoded_rows(inputs));
  if (!out) return out.error();
  apply_gain(*out, inputs);
  return std::move(*out);
}

ForecastMetrics score(const Windows& windows, const Mf& outputs, const FeatureSpec& spec) {
  return compute_metrics(windows.truth_soh, to_soh(outputs, windows.last_soh, spec),
                         windows.last_soh);
}

// --- Linear initialization --------------------------------------------------------------------

// Ridge regression from the encoded rows to the targets in amplitude units (targets / gain): the
// bypass every student and the liquid teacher start from.
struct LinearInit {
  Eigen::MatrixXd weights;  // H x encoded rows
  Eigen::VectorXd bias;
  double lambda = 0.0;
  double validation_mae = kNaN;
};

Mf amplitude_targets(const Windows& windows) {
  Mf y = windows.targets;
  y.array().rowwise() /= windows.inputs.row(windows.inputs.rows() - 1).array();
  return y;
}

Result<LinearInit> fit_linear_init(const EvalProtocol& protocol) {
  const Mf x = encoded_rows(protocol.train.inputs);
  const Mf y = amplitude_targets(protocol.train);
  const Mf x_val = encoded_rows(protocol.validation.inputs);
  std::vector<LinearInit> fits;
  double best_mae = std::numeric_limits<double>::infinity();
  for (double lambda : kInitLambdas) {
    auto ridge = fit_ridge(x, y, lambda);
    if (!ridge) continue;
    Mf out = ridge->predict(x_val).cast<float>();
    apply_gain(out, protocol.validation.inputs);
    const double mae = score(protocol.validation, out, protocol.spec).mae;
    best_mae = std::min(best_mae, mae);
    fits.push_back(LinearInit{ridge->weights, ridge->bias, lambda, mae});
  }
  for (auto it = fits.rbegin(); it != fits.rend(); ++it) {
    if (it->validation_mae <= kInitTolerance * best_mae) return std::move(*it);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "the linear initialization could not be fitted (too few training windows?)");
}

// A student (or the liquid teacher) whose untrained function is the rank-`features` truncation
// of the linear fit: W = U S V^T gives E = sqrt(S) V^T and D = U sqrt(S), the bias goes to the
// head bias, and the liquid part starts with a zero head so training only adds the correction.
Vf init_student(const models::StudentModel<float>& model, const LinearInit& init, uint64_t seed) {
  Vf params(model.layout().size());
  model.init(params.data(), seed);
  const int64_t features = model.config().features;
  const Eigen::JacobiSVD<Eigen::MatrixXd> svd(init.weights,
                                              Eigen::ComputeThinU | Eigen::ComputeThinV);
  const int64_t rank = std::min<int64_t>(features, svd.singularValues().size());
  Eigen::MatrixXd encoder = Eigen::MatrixXd::Zero(features, init.weights.cols());
  Eigen::MatrixXd bypass = Eigen::MatrixXd::Zero(init.weights.rows(), features);
  const Eigen::VectorXd root = svd.singularValues().head(rank).cwiseSqrt();
  encoder.topRows(rank) = root.asDiagonal() * svd.matrixV().leftCols(rank).transpose();
  bypass.leftCols(rank) = svd.matrixU().leftCols(rank) * root.asDiagonal();
  const auto set = model.set_bypass(params.data(), encoder, bypass);
  assert(set.ok());
  (void)set;
  models::VectorMap<float>(params.data() + model.tensors().head_bias, model.config().horizon) =
      init.bias.cast<float>();
  return params;
}

// --- Training -----------------------------------------------------------------------------------

models::TrainConfig train_config(const TrainingOptions& options, int64_t epochs, double lr,
                                 const RunContext& ctx) {
  models::TrainConfig c;
  c.epochs = epochs;
  c.batch_size = kBatchSize;
  c.learning_rate = lr;
  c.min_learning_rate = lr * 0.01;
  c.adamw.weight_decay = 0.0;
  c.threads = options.threads;
  c.seed = options.seed;
  c.loss = options.truth_loss_mae ? models::LossSpec{0.0, 1.0, 0.0} : models::LossSpec{};
  c.should_stop = ctx.stop_check();
  return c;
}

models::TrainConfig distill_config(const TrainingOptions& options, int64_t epochs, double lr,
                                   const RunContext& ctx) {
  models::TrainConfig c = train_config(options, epochs, lr, ctx);
  c.distillation.enabled = true;
  c.distillation.lambda_start = options.lambda_start;
  c.distillation.lambda_end = options.lambda_end;
  c.distillation.kd = options.kd_cosine ? models::TrainConfig::Distillation::Kd::kCosine
                                        : models::TrainConfig::Distillation::Kd::kMse;
  return c;
}

models::Dataset<float> subset(const models::Dataset<float>& data, int64_t n) {
  models::Dataset<float> out;
  const int64_t count = std::min(n, data.size());
  out.inputs = data.inputs.leftCols(count);
  out.targets = data.targets.leftCols(count);
  if (data.teacher.size() > 0) out.teacher = data.teacher.leftCols(count);
  return out;
}

// How many epochs fit in `seconds`: one timed epoch over a slice of the data, scaled up.
Result<int64_t> affordable_epochs(const models::Model<float>& model, const Vf& params,
                                  const models::Dataset<float>& data, models::TrainConfig config,
                                  double seconds, int64_t max_epochs) {
  constexpr int64_t kProbeSamples = 4096;
  const models::Dataset<float> probe = subset(data, kProbeSamples);
  Vf scratch = params;
  config.epochs = 1;
  const auto start = std::chrono::steady_clock::now();
  auto trained = models::train(model, scratch, probe, nullptr, config);
  if (!trained) return trained.error();
  const double per_epoch =
      seconds_since(start) * static_cast<double>(data.size()) / static_cast<double>(probe.size());
  const auto fits = static_cast<int64_t>(seconds / std::max(per_epoch, 1e-6));
  return std::clamp<int64_t>(fits, 2, max_epochs);
}

struct TrainedModel {
  std::string name;  // "liquid", "dlnet"
  std::unique_ptr<models::Model<float>> model;
  models::ModelConfig config;
  Vf params;
  double validation_mae = kNaN;
  int64_t epochs = 0;
};

models::Dataset<float> dataset(const Windows& windows) {
  return {windows.inputs, windows.targets, {}};
}

// The DLNet model sees the encoded rows and learns targets in amplitude units.
models::Dataset<float> amplitude_dataset(const Windows& windows) {
  return {encoded_rows(windows.inputs), amplitude_targets(windows), {}};
}

Result<TrainedModel> train_teacher(const std::string& kind, const EvalProtocol& protocol,
                                   const LinearInit& init, const TrainingOptions& options,
                                   double seconds, RunContext& ctx, double fraction_start,
                                   double fraction_span) {
  TrainedModel t;
  t.name = kind;
  const int64_t encoded = protocol.spec.encoded_size();
  models::Dataset<float> train_set;
  models::Dataset<float> validation_set;
  if (kind == "liquid") {
    models::StudentConfig c{encoded, kTeacherFeatures,      kTeacherWidth,
                            1,       protocol.spec.horizon, true};
    auto student = std::make_unique<models::StudentModel<float>>(c);
    t.params = init_student(*student, init, options.seed);
    t.config = c;
    t.model = std::move(student);
    train_set = dataset(protocol.train);
    validation_set = dataset(protocol.validation);
  } else {
    models::DlnetConfig c = models::DlnetConfig::teacher();
    c.input_len = encoded;
    c.horizon = protocol.spec.horizon;
    t.config = c;
    t.model = models::build_model(t.config);
    t.params.resize(t.model->layout().size());
    t.model->init(t.params.data(), options.seed);
    train_set = amplitude_dataset(protocol.train);
    validation_set = amplitude_dataset(protocol.validation);
  }
  const models::TrainConfig base = train_config(options, 1, kLearningRate, ctx);
  auto epochs =
      affordable_epochs(*t.model, t.params, train_set, base, seconds, options.teacher_max_epochs);
  if (!epochs) return epochs.error();
  models::TrainConfig config = train_config(options, *epochs, kLearningRate, ctx);
  auto trained = models::train(
      *t.model, t.params, train_set, &validation_set, config, [&](const models::EpochProgress& e) {
        const double f = static_cast<double>(e.epoch) / static_cast<double>(e.epochs);
        ctx.report(
            fraction_start + fraction_span * f,
            kind + " teacher, epoch " + std::to_string(e.epoch) + "/" + std::to_string(e.epochs));
      });
  if (!trained) return trained.error();
  t.epochs = *epochs;
  t.validation_mae =
      score(protocol.validation,
            forecast(*t.model, t.params, protocol.validation.inputs, options.threads),
            protocol.spec)
          .mae;
  return t;
}

// --- Candidates ---------------------------------------------------------------------------------

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
                     double fraction_start, double fraction_span) {
  const models::TuningStudent<float> model(run.config, jitter, false);
  auto trained = models::train(
      model, run.params, train_set, &validation_set, config, [&](const models::EpochProgress& e) {
        const double f = static_cast<double>(e.epoch) / static_cast<double>(e.epochs);
        ctx.report(
            fraction_start + fraction_span * f,
            run.name + ", epoch " + std::to_string(e.epoch) + "/" + std::to_string(e.epochs));
      });
  if (!trained) return trained.error();
  return {};
}

std::string ratio_text(double ratio) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%.2f", ratio);
  return buffer;
}

// Every `count`-th training input (encoded rows) up to `count` of them, for int8 calibration.
Eigen::MatrixXf calibration_inputs(const Windows& train, int64_t count) {
  const int64_t n = train.size();
  const int64_t take = std::clamp<int64_t>(count, 1, n);
  Eigen::MatrixXf out(train.inputs.rows() - 1, take);
  for (int64_t i = 0; i < take; ++i) {
    out.col(i) = train.inputs.col(i * n / take).head(train.inputs.rows() - 1);
  }
  return out;
}

// The float encoder the int8 one computes: row f of the int8 weights times its requantization
// factor m_f 2^s_f, up to one common factor (the z scale over the input scale), fitted here by
// least squares against the float encoder.
Eigen::MatrixXf effective_int8_encoder(const models::QuantizedStudent& q,
                                       const Eigen::MatrixXf& encoder) {
  Eigen::MatrixXf out(encoder.rows(), encoder.cols());
  for (Eigen::Index f = 0; f < out.rows(); ++f) {
    const double factor = static_cast<double>(q.encoder_multiplier[static_cast<size_t>(f)]) *
                          std::ldexp(1.0, q.encoder_shift[static_cast<size_t>(f)]);
    for (Eigen::Index i = 0; i < out.cols(); ++i) {
      out(f, i) =
          static_cast<float>(q.encoder_weight[static_cast<size_t>(f * out.cols() + i)] * factor);
    }
  }
  const double scale = out.cwiseProduct(encoder).sum() / std::max(out.squaredNorm(), 1e-30f);
  return out * static_cast<float>(scale);
}

// int8 quantization of one candidate. The encoder is the layer whose rounding matters: the
// SOH inputs are strongly correlated and its weights cancel each other, so a 1 % rounding of E
// moved the forecasts by about as much as the whole float error (measured on the paper protocol:
// 99 % of the int8-vs-float difference came from E). So E is quantized first, the rest of the
// student is fine-tuned for a few epochs around the int8 encoder, and then the whole student is
// quantized (E, already on the int8 grid, stays where it is).
Result<void> quantize(StudentRun& run, const Eigen::MatrixXf& calibration,
                      const EvalProtocol& protocol, const models::Dataset<float>& train_set,
                      const models::Dataset<float>& validation_set, double jitter,
                      const TrainingOptions& options, RunContext& ctx) {
  const models::StudentModel<float> model(run.config);
  auto first =
      models::quantize_student(models::student_weights(model, run.params.data()), calibration);
  if (!first) return first.error();
  const models::StudentTensors& t = model.tensors();
  models::MatrixMap<float> encoder(run.params.data() + t.encoder, run.config.features,
                                   run.config.input_size);
  encoder = effective_int8_encoder(*first, encoder);
  const models::TuningStudent<float> frozen(run.config, jitter, true);
  auto tuned = models::train(frozen, run.params, train_set, &validation_set,
                             distill_config(options, kEncoderTuneEpochs, kStage2LearningRate, ctx));
  if (!tuned) return tuned.error();
  auto q = models::quantize_student(models::student_weights(model, run.params.data()), calibration);
  if (!q) return q.error();
  auto int8_out = forecast_int8(*q, protocol.validation.inputs);
  if (!int8_out) return int8_out.error();
  run.validation_int8 = score(protocol.validation, *int8_out, protocol.spec).mae;
  run.validation_float =
      score(protocol.validation,
            forecast(model, run.params, protocol.validation.inputs, options.threads), protocol.spec)
          .mae;
  run.int8 = std::move(*q);
  return {};
}

Candidate candidate_of(const StudentRun& run, const models::CostConstants& constants) {
  const models::StudentCost cost =
      models::student_cost(models::student_shape(run.config), constants);
  Candidate c;
  c.name = run.name;
  c.stage = run.stage;
  c.width = run.config.width;
  c.features = run.config.features;
  c.prune_ratio = run.prune_ratio;
  c.params = models::student_parameter_count(run.config);
  c.float_mae = run.validation_float;
  c.int8_mae = run.validation_int8;
  c.flash_bytes = cost.flash_bytes;
  c.ram_bytes = cost.ram_bytes;
  c.macs = cost.macs;
  c.cycles = static_cast<double>(cost.cycles);
  c.ms_at_64mhz = cost.milliseconds;
  return c;
}

// --- Baselines for the report's samples
// -----------------------------------------------------------

// Forecasts (absolute SOH, H x n) of the named baseline of evaluate_baselines on `windows`.
Eigen::MatrixXd baseline_forecast(const std::string& name, const EvalProtocol& protocol,
                                  const Windows& windows) {
  const int64_t horizon = protocol.spec.horizon;
  if (name == "last value") return forecast_last_value(windows.input_soh, horizon);
  if (name == "line-10") return forecast_polynomial(windows.input_soh, horizon, 10, 1);
  if (name == "quadratic-50") return forecast_polynomial(windows.input_soh, horizon, 50, 2);
  Mf design = linear_inputs(protocol.train, protocol.spec);
  Mf target_design = linear_inputs(windows, protocol.spec);
  if (name == "ridge (SOH only)") {
    const Eigen::Index rows = protocol.spec.input_len + 1;
    design = Mf(design.topRows(rows));
    target_design = Mf(target_design.topRows(rows));
  }
  auto ridge = fit_ridge(design, protocol.train.targets, protocol.ridge_lambda);
  if (!ridge) return Eigen::MatrixXd::Constant(horizon, windows.size(), kNaN);
  return to_soh(ridge->predict(target_design), windows.last_soh, protocol.spec);
}

std::vector<double> column(const Eigen::MatrixXd& m, Eigen::Index col) {
  return {m.col(col).data(), m.col(col).data() + m.rows()};
}

// One test window per SOH band (the middle one of the band's windows), drawn in the report.
std::vector<SampleForecast> sample_forecasts(const EvalProtocol& protocol,
                                             const TrainedModel& teacher, const StudentRun& chosen,
                                             const std::string& best_baseline, int64_t threads) {
  std::vector<std::string> bands;
  for (const std::string& band : protocol.test_bands) {
    if (std::find(bands.begin(), bands.end(), band) == bands.end()) bands.push_back(band);
  }
  std::vector<int64_t> picks;
  for (const std::string& band : bands) {
    std::vector<int64_t> members;
    for (size_t i = 0; i < protocol.test_bands.size(); ++i) {
      if (protocol.test_bands[i] == band) members.push_back(static_cast<int64_t>(i));
    }
    picks.push_back(members[members.size() / 2]);
  }
  const Windows windows = select_windows(protocol.test, picks);
  const models::StudentModel<float> student(chosen.config);
  const Eigen::MatrixXd teacher_soh =
      to_soh(forecast(*teacher.model, teacher.params, windows.inputs, threads), windows.last_soh,
             protocol.spec);
  const Eigen::MatrixXd float_soh = to_soh(
      forecast(student, chosen.params, windows.inputs, threads), windows.last_soh, protocol.spec);
  auto int8_out = forecast_int8(*chosen.int8, windows.inputs);
  const Eigen::MatrixXd int8_soh =
      int8_out ? to_soh(*int8_out, windows.last_soh, protocol.spec)
               : Eigen::MatrixXd::Constant(protocol.spec.horizon, windows.size(), kNaN);
  const Eigen::MatrixXd baseline_soh = baseline_forecast(best_baseline, protocol, windows);
  std::vector<SampleForecast> samples;
  for (int64_t i = 0; i < windows.size(); ++i) {
    const WindowRef& ref = windows.refs[static_cast<size_t>(i)];
    const CellSeries& cell = protocol.data.cells[static_cast<size_t>(ref.cell)];
    SampleForecast s;
    s.cell = cell.cell_id;
    s.band = bands[static_cast<size_t>(i)];
    s.first_cycle = cell.rows[static_cast<size_t>(ref.first_row)].cycle;
    s.input = column(windows.input_soh, i);
    s.truth = column(windows.truth_soh, i);
    s.teacher = column(teacher_soh, i);
    s.student_float = column(float_soh, i);
    s.student_int8 = column(int8_soh, i);
    s.best_baseline = column(baseline_soh, i);
    samples.push_back(std::move(s));
  }
  return samples;
}

// --- Output files
// ---------------------------------------------------------------------------------

std::string utc_timestamp(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, format, &tm);
  return buffer;
}

Result<void> write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "could not write " + path.string());
  return {};
}

Result<void> save(const fs::path& path, const models::ModelConfig& config, const Vf& params,
                  std::map<std::string, std::string> metadata) {
  models::SavedModel saved;
  saved.config = config;
  saved.params = params;
  saved.metadata = std::move(metadata);
  return models::save_model(path.string(), saved);
}

std::string list_text(const auto& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i)
    out << (i ? "," : "") << values[i];
  return out.str();
}

std::map<std::string, std::string> settings_of(const TrainingOptions& o,
                                               const TrainedModel& teacher,
                                               const LinearInit& init) {
  std::map<std::string, std::string> s;
  s["teacher"] = teacher.name;
  s["teacher_epochs"] = std::to_string(teacher.epochs);
  s["teacher_budget_s"] = std::to_string(o.teacher_budget_s);
  s["widths"] = list_text(o.widths);
  s["features"] = std::to_string(o.features);
  s["prune_ratios"] = list_text(o.prune_ratios);
  s["student_epochs"] = std::to_string(o.student_epochs);
  s["stage2_epochs"] = std::to_string(o.stage2_epochs);
  s["lambda"] = std::to_string(o.lambda_start) + " -> " + std::to_string(o.lambda_end);
  s["kd"] = o.kd_cosine ? "cosine" : "mse";
  s["truth_loss"] = o.truth_loss_mae ? "mae" : "mse";
  s["calibration_windows"] = std::to_string(o.calibration_windows);
  s["init_ridge_lambda"] = std::to_string(init.lambda);
  s["seed"] = std::to_string(o.seed);
  return s;
}

std::vector<std::pair<std::string, int64_t>> cleaning_rows(const CleaningReport& c) {
  return {{"non-finite values", c.non_finite},
          {"zero or negative values", c.non_positive},
          {"fill values", c.fill_values},
          {"charge-time outliers", c.charge_time_outliers},
          {"SOH spikes", c.soh_spikes},
          {"duplicate cycles", c.duplicate_cycles},
          {"out-of-order cycles", c.out_of_order_cycles},
          {"gap cycles filled", c.gap_cycles_filled},
          {"cycle jumps dropped", c.cycle_jumps_dropped},
          {"leading rows dropped", c.leading_rows_dropped}};
}

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

// The run itself, writing into `partial`; run_training owns the directory's lifetime.
Result<TrainingResult> run_stages(const EvalProtocol& protocol, const TrainingOptions& options,
                                  const fs::path& partial, RunContext& ctx) {
  const FeatureSpec& spec = protocol.spec;
  RunReport report;
  report.run_id = utc_timestamp("%Y%m%dT%H%M%SZ");
  report.created_at = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
  report.data_source = protocol.data.source;
  report.protocol = protocol.name;
  report.budget = options.budget;
  report.cleaning = cleaning_rows(protocol.cleaning);

  ctx.begin(Stage::kPrepare);
  auto init = fit_linear_init(protocol);
  if (!init) return init.error();
  const auto baselines = evaluate_baselines(protocol);

  // 1. Teacher.
  ctx.begin(Stage::kTeacher);
  std::vector<std::string> kinds;
  if (options.teacher != TeacherKind::kLiquid) kinds.push_back("dlnet");
  if (options.teacher != TeacherKind::kDlnet) kinds.push_back("liquid");
  std::optional<TrainedModel> teacher;
  const double kind_share = 1.0 / static_cast<double>(kinds.size());
  for (size_t k = 0; k < kinds.size(); ++k) {
    const std::string& kind = kinds[k];
    auto t = train_teacher(kind, protocol, *init, options, options.teacher_budget_s * kind_share,
                           ctx, static_cast<double>(k) * kind_share, kind_share);
    if (!t) return t.error();
    report.stages.push_back(
        {"teacher", kind,
         score(protocol.test, forecast(*t->model, t->params, protocol.test.inputs, options.threads),
               spec)});
    if (!teacher || t->validation_mae < teacher->validation_mae) teacher = std::move(*t);
  }
  report.settings = settings_of(options, *teacher, *init);
  models::Dataset<float> train_set = dataset(protocol.train);
  train_set.teacher = forecast(*teacher->model, teacher->params, train_set.inputs, options.threads);
  const models::Dataset<float> validation_set = dataset(protocol.validation);

  // The int8 input calibration, and the students' input jitter: a few steps of the int16 input
  // grid the quantizer will derive from it.
  const Eigen::MatrixXf calibration =
      calibration_inputs(protocol.train, options.calibration_windows);
  const double jitter = kJitterSteps * models::QuantizeOptions{}.range_margin *
                        calibration.cwiseAbs().maxCoeff() / 32767.0;

  const int64_t batches = (protocol.train.size() + kBatchSize - 1) / kBatchSize;
  const auto epochs_for = [batches](int64_t epochs, int64_t min_steps) {
    return std::max(epochs, (min_steps + batches - 1) / batches);
  };
  const int64_t stage1_epochs = epochs_for(options.student_epochs, options.min_student_steps);
  const int64_t stage2_epochs = epochs_for(options.stage2_epochs, options.min_stage2_steps);
  report.settings["student_epochs"] = std::to_string(stage1_epochs);
  report.settings["stage2_epochs"] = std::to_string(stage2_epochs);

  // 2. Stage-1 distillation, one student per width.
  ctx.begin(Stage::kStage1);
  std::vector<StudentRun> runs;
  const double width_share = 1.0 / static_cast<double>(options.widths.size());
  for (size_t i = 0; i < options.widths.size(); ++i) {
    StudentRun run;
    run.name = "w" + std::to_string(options.widths[i]);
    run.stage = "stage1";
    run.config = {spec.encoded_size(), options.features, options.widths[i], 1, spec.horizon, true};
    run.params = init_student(models::StudentModel<float>(run.config), *init, options.seed + i);
    auto done = distill(run, train_set, validation_set,
                        distill_config(options, stage1_epochs, kLearningRate, ctx), jitter, ctx,
                        static_cast<double>(i) * width_share, width_share);
    if (!done) return done.error();
    runs.push_back(std::move(run));
  }

  // 3. Structured pruning of every stage-1 student.
  ctx.begin(Stage::kPrune);
  const size_t stage1_count = runs.size();
  for (size_t i = 0; i < stage1_count; ++i) {
    for (double ratio : options.prune_ratios) {
      auto pruned = models::prune_student(runs[i].config, runs[i].params.data(), ratio, 0.0);
      if (!pruned) return pruned.error();
      if (pruned->config.width == runs[i].config.width) continue;  // nothing removed
      StudentRun run;
      run.name = runs[i].name + "-p" + ratio_text(ratio);
      run.stage = "stage2";
      run.prune_ratio = ratio;
      run.config = pruned->config;
      run.params = std::move(pruned->params);
      run.pruned_test = score(protocol.test,
                              forecast(models::StudentModel<float>(run.config), run.params,
                                       protocol.test.inputs, options.threads),
                              spec);
      runs.push_back(std::move(run));
    }
  }

  // 4. Stage-2 distillation of the pruned students.
  ctx.begin(Stage::kStage2);
  const size_t pruned_count = runs.size() - stage1_count;
  for (size_t i = stage1_count; i < runs.size(); ++i) {
    const double share = 1.0 / static_cast<double>(pruned_count);
    auto done = distill(runs[i], train_set, validation_set,
                        distill_config(options, stage2_epochs, kStage2LearningRate, ctx), jitter,
                        ctx, static_cast<double>(i - stage1_count) * share, share);
    if (!done) return done.error();
  }

  // 5. int8 quantization, scored with the firmware's own code.
  ctx.begin(Stage::kQuantize);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (ctx.cancelled()) return cancelled_error();
    ctx.report(static_cast<double>(i) / static_cast<double>(runs.size()), runs[i].name);
    auto done =
        quantize(runs[i], calibration, protocol, train_set, validation_set, jitter, options, ctx);
    if (!done) return done.error();
  }

  // 6-7. Cost and Pareto selection.
  ctx.begin(Stage::kSelect);
  for (const StudentRun& run : runs)
    report.candidates.push_back(candidate_of(run, options.cost));
  report.front = pareto_front(report.candidates);
  auto choice = choose_knee(report.candidates, options.budget);
  if (!choice) return choice.error();
  report.choice = *choice;
  const StudentRun& chosen = runs[choice->index];

  // 8. Test metrics of every stage and the report.
  ctx.begin(Stage::kReport);
  ForecastMetrics chosen_float;
  ForecastMetrics chosen_int8;
  for (const StudentRun& run : runs) {
    const models::StudentModel<float> model(run.config);
    const ForecastMetrics float_metrics = score(
        protocol.test, forecast(model, run.params, protocol.test.inputs, options.threads), spec);
    auto int8_out = forecast_int8(*run.int8, protocol.test.inputs);
    if (!int8_out) return int8_out.error();
    const ForecastMetrics int8_metrics = score(protocol.test, *int8_out, spec);
    if (run.stage == "stage2") report.stages.push_back({"pruned", run.name, run.pruned_test});
    report.stages.push_back({run.stage, run.name, float_metrics});
    report.stages.push_back({"int8", run.name, int8_metrics});
    if (&run == &chosen) {
      chosen_float = float_metrics;
      chosen_int8 = int8_metrics;
    }
  }
  std::string best_baseline;
  double best_baseline_mae = std::numeric_limits<double>::infinity();
  for (const auto& [name, metrics] : baselines) {
    report.stages.push_back({"baseline", name, metrics});
    if (metrics.mae < best_baseline_mae) {
      best_baseline_mae = metrics.mae;
      best_baseline = name;
    }
  }
  const ForecastMetrics teacher_test = score(
      protocol.test,
      forecast(*teacher->model, teacher->params, protocol.test.inputs, options.threads), spec);
  report.samples = sample_forecasts(protocol, *teacher, chosen, best_baseline, options.threads);
  report.error_by_step = {{chosen.name + " int8", chosen_int8.mae_by_step},
                          {chosen.name + " float", chosen_float.mae_by_step},
                          {"teacher (" + teacher->name + ")", teacher_test.mae_by_step}};
  for (const auto& [name, metrics] : baselines) {
    if (name == best_baseline) report.error_by_step.emplace_back(name, metrics.mae_by_step);
  }

  std::map<std::string, std::string> metadata = spec.to_metadata();
  metadata["pipeline.run_id"] = report.run_id;
  metadata["pipeline.protocol"] = protocol.name;
  metadata["pipeline.data_source"] = protocol.data.source;
  metadata["pipeline.candidate"] = chosen.name;
  if (auto saved = save(partial / "student.ccm", chosen.config, chosen.params, metadata); !saved) {
    return saved.error();
  }
  if (auto saved =
          write_bytes(partial / "student.int8", models::serialize_quantized_student(*chosen.int8));
      !saved) {
    return saved.error();
  }
  metadata["pipeline.candidate"] = "teacher-" + teacher->name;
  if (auto saved = save(partial / "teacher.ccm", teacher->config, teacher->params, metadata);
      !saved) {
    return saved.error();
  }
  ctx.finish_stage();
  report.timings_s = ctx.timings();
  report.timings_s.emplace_back("total", ctx.elapsed());
  if (auto written = write_report_json(partial / "report.json", report); !written) {
    return written.error();
  }
  if (auto written = write_report_html(partial / "report.html", report); !written) {
    return written.error();
  }

  TrainingResult result;
  result.chosen = chosen.name;
  result.choice_reason = choice->reason;
  result.chosen_int8 = chosen_int8;
  result.chosen_float = chosen_float;
  result.teacher = teacher_test;
  result.baselines = baselines;
  result.chosen_params = models::student_parameter_count(chosen.config);
  result.teacher_params = teacher->model->layout().size();
  result.chosen_flash_bytes = report.candidates[choice->index].flash_bytes;
  result.seconds = ctx.elapsed();
  return result;
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

Result<ForecastMetrics> evaluate_model_file(const std::string& path, const EvalProtocol& protocol) {
  const fs::path file(path);
  const bool int8 = file.extension() == ".int8";
  // An int8 blob carries no normalization: it is read from the float student beside it.
  const fs::path model_path = int8 ? file.parent_path() / "student.ccm" : file;
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
    return score(*windows, *out, *spec);
  }
  const auto model = models::build_model(saved->config);
  if (model->input_size() != spec->input_size() && model->input_size() != spec->encoded_size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      path + ": the model's input size does not match its feature description");
  }
  return score(*windows, forecast(*model, saved->params, windows->inputs, 0), *spec);
}

}  // namespace cyclecast::pipeline
