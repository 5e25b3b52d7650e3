// What a training run writes besides its models' training (train_steps.h): the report's sample
// forecasts, settings and cleaning rows, and the model files.
#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "cyclecast/pipeline/baselines.h"
#include "train_steps.h"

namespace cyclecast::pipeline::training {

namespace fs = std::filesystem;

// --- The report's samples -----------------------------------------------------------------------

namespace {

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

}  // namespace

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

// --- Output files --------------------------------------------------------------------------------

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

namespace {

std::string list_text(const auto& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i)
    out << (i ? "," : "") << values[i];
  return out.str();
}

}  // namespace

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
          {"leading rows dropped", c.leading_rows_dropped},
          {"cycle numbering restarts renumbered", c.cycle_restarts},
          {"gaps longer than the window limit", c.long_gaps},
          {"continuation cells joined to their parent", c.continuations_joined}};
}

}  // namespace cyclecast::pipeline::training
