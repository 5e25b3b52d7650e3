// `cyclecast train` and `cyclecast eval`: the retraining pipeline and model evaluation on a data
// source (an SQLite database, a severson-soh folder or a severson-raw folder). The work is in
// pipeline/ (run_training, evaluate_model_file); this file maps flags to options, draws a
// progress bar on a terminal, stops cleanly on SIGINT and prints the summary.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "cyclecast/pipeline/protocols.h"
#include "cyclecast/pipeline/report.h"
#include "cyclecast/pipeline/train.h"
#include "status_line.h"

namespace cyclecast::cli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int /*signal*/) {
  g_interrupted.store(true);
}

// Installs the SIGINT/SIGTERM handler for the duration of a run and restores the previous one.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted.store(false);
    previous_int_ = std::signal(SIGINT, on_interrupt);
    previous_term_ = std::signal(SIGTERM, on_interrupt);
  }
  ~InterruptScope() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  void (*previous_int_)(int) = SIG_DFL;
  void (*previous_term_)(int) = SIG_DFL;
};

struct DataFlags {
  std::string data;
  std::string protocol = "auto";
  // SOH only by default: on the heldout cells the features made every model worse (student
  // MAE 0.00437 with them, 0.00313 without; docs/benchmarks.md), though they helped the linear
  // model on the validation cells, so "auto" picked them.
  std::string inputs = "soh";
  bool include_approx = false;
  std::string test_batch;
  int64_t window = 100;
  int64_t horizon = 100;
};

struct TrainFlags {
  DataFlags data;
  std::string out;
  std::string teacher = "auto";
  pipeline::TrainingOptions options;
  bool json = false;
};

struct EvalFlags {
  DataFlags data;
  std::string model;
  bool json = false;
};

void add_data_flags(CLI::App& command, DataFlags& flags) {
  command
      .add_option("--data", flags.data,
                  "SQLite database, severson-soh folder or severson-raw folder")
      ->required();
  command
      .add_option("--protocol", flags.protocol,
                  "auto (paper for severson-soh, heldout for severson-raw, split otherwise), "
                  "paper, heldout, split, or cross-batch (severson-raw: leave one batch out, "
                  "--test-batch)")
      ->check(CLI::IsMember({"auto", "paper", "heldout", "split", "cross-batch"}))
      ->capture_default_str();
  command
      .add_option("--inputs", flags.inputs,
                  "per-cycle inputs besides SOH: all (IR, temperature, charge time where the data "
                  "has them), soh (none), or auto (the features only when they improve the linear "
                  "model on the validation cells)")
      ->check(CLI::IsMember({"auto", "soh", "all"}))
      ->capture_default_str();
  command.add_flag("--include-approx", flags.include_approx,
                   "severson-raw: also read cycles_qd_approx.csv (capacity only, approximate cycle "
                   "numbers), which joins the earlier batch's cells to their continuations");
  command.add_option("--test-batch", flags.test_batch,
                     "cross-batch: the batch held out for testing (e.g. 2017-05-12); default the "
                     "earliest batch. Reads cycles_qd_approx.csv too and uses SOH only");
  command.add_option("--window", flags.window, "input cycles per window (W)")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  command.add_option("--horizon", flags.horizon, "forecast cycles (H)")
      ->check(CLI::Range(10, 1000))
      ->capture_default_str();
}

Result<pipeline::EvalProtocol> load_protocol(const DataFlags& flags) {
  pipeline::ProtocolOptions options;
  options.input_len = flags.window;
  options.horizon = flags.horizon;
  options.raw.include_approx = flags.include_approx;
  options.test_batch = flags.test_batch;
  const auto inputs = flags.inputs == "soh"   ? pipeline::InputChoice::kSohOnly
                      : flags.inputs == "all" ? pipeline::InputChoice::kAll
                                              : pipeline::InputChoice::kAuto;
  return pipeline::load_training_protocol(flags.data, flags.protocol, options, inputs);
}

int exit_code_for(const Error& error) {
  switch (error.code) {
    case ErrorCode::kParse:
    case ErrorCode::kInvalidArgument:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

nlohmann::json metrics_json(const pipeline::ForecastMetrics& m) {
  return {{"mae", m.mae},
          {"mae_10", m.mae_10},
          {"mae_100", m.mae_100},
          {"rmse", m.rmse},
          {"eol_error_cycles", m.eol_error_cycles},
          {"eol_windows", m.eol_windows},
          {"windows", m.windows}};
}

void print_metrics_row(const std::string& name, const pipeline::ForecastMetrics& m) {
  std::printf("  %-22s %9.5f %9.5f %9.5f %9.5f %9.1f\n", name.c_str(), m.mae, m.mae_10, m.mae_100,
              m.rmse, m.eol_error_cycles);
}

void print_metrics_header() {
  std::printf("  %-22s %9s %9s %9s %9s %9s\n", "model", "MAE", "MAE+10", "MAE+H", "RMSE",
              "EOL err");
}

// Training progress as a bar with the stage, what it is doing and the ETA (TTY only).
class ProgressBar {
 public:
  void update(const pipeline::TrainingProgress& p) {
    if (!line_.due()) return;
    constexpr int kWidth = 30;
    const int filled =
        std::clamp(static_cast<int>(std::lround(p.overall_fraction * kWidth)), 0, kWidth);
    const std::string bar = std::string(static_cast<size_t>(filled), '#') +
                            std::string(static_cast<size_t>(kWidth - filled), '.');
    const std::string eta =
        std::isfinite(p.eta_s) ? std::to_string(static_cast<int64_t>(p.eta_s)) + " s" : "?";
    char text[512];
    std::snprintf(text, sizeof text, "[%s] %3.0f%% %-9s %s  ETA %s", bar.c_str(),
                  100.0 * p.overall_fraction, pipeline::stage_name(p.stage), p.detail.c_str(),
                  eta.c_str());
    line_.draw(text);
  }
  void clear() { line_.clear(); }

 private:
  StatusLine line_;
};

Result<pipeline::TeacherKind> teacher_kind(const std::string& name) {
  static const std::map<std::string, pipeline::TeacherKind> kinds = {
      {"auto", pipeline::TeacherKind::kAuto},
      {"dlnet", pipeline::TeacherKind::kDlnet},
      {"liquid", pipeline::TeacherKind::kLiquid}};
  const auto it = kinds.find(name);
  if (it == kinds.end()) return make_error(ErrorCode::kInvalidArgument, "unknown teacher " + name);
  return it->second;
}

// The intervals' test coverage, overall and per SOH band, against the baseline's.
nlohmann::json intervals_json(const std::optional<pipeline::IntervalReport>& intervals) {
  if (!intervals) return nullptr;
  nlohmann::json test = nlohmann::json::array();
  for (const pipeline::IntervalCoverageRow& row : intervals->rows) {
    test.push_back({{"group", row.group},
                    {"coverage", row.model.coverage},
                    {"mean_width", row.model.mean_width},
                    {"baseline_coverage", row.baseline.coverage},
                    {"baseline_mean_width", row.baseline.mean_width},
                    {"windows", row.model.windows}});
  }
  return {{"nominal_coverage", intervals->calibration.coverage},
          {"calibration_cells", intervals->calibration.cells},
          {"level_capped", intervals->calibration.capped},
          {"baseline", intervals->baseline},
          {"test", test}};
}

void print_intervals(const std::optional<pipeline::IntervalReport>& intervals) {
  if (!intervals) return;
  std::printf("intervals (nominal %.0f %%, %lld validation cells%s):\n",
              100.0 * intervals->calibration.coverage,
              static_cast<long long>(intervals->calibration.cells),
              intervals->note.empty() ? "" : ", level capped");
  std::printf("  %-8s %9s %11s %15s %15s\n", "windows", "coverage", "mean width",
              (intervals->baseline + " cover").c_str(), (intervals->baseline + " width").c_str());
  for (const pipeline::IntervalCoverageRow& row : intervals->rows) {
    std::printf("  %-8s %8.1f%% %11.5f %14.1f%% %15.5f\n", row.group.c_str(),
                100.0 * row.model.coverage, row.model.mean_width, 100.0 * row.baseline.coverage,
                row.baseline.mean_width);
  }
}

void print_training_summary(const pipeline::TrainingResult& r, bool json) {
  if (json) {
    nlohmann::json baselines = nlohmann::json::object();
    for (const auto& [name, m] : r.baselines)
      baselines[name] = metrics_json(m);
    const nlohmann::json out = {{"out_dir", r.out_dir},
                                {"chosen", r.chosen},
                                {"choice_reason", r.choice_reason},
                                {"student_int8", metrics_json(r.chosen_int8)},
                                {"student_float", metrics_json(r.chosen_float)},
                                {"teacher", metrics_json(r.teacher)},
                                {"baselines", baselines},
                                {"student_params", r.chosen_params},
                                {"teacher_params", r.teacher_params},
                                {"student_flash_bytes", r.chosen_flash_bytes},
                                {"gate", pipeline::gate_evidence_json(r.gate_evidence)},
                                {"intervals", intervals_json(r.intervals)},
                                {"seconds", r.seconds}};
    std::cout << out.dump() << '\n';
    return;
  }
  std::printf("trained in %.1f s; wrote %s\n", r.seconds, r.out_dir.c_str());
  std::printf("chosen student %s: %lld parameters (teacher %lld), %lld bytes int8 flash\n",
              r.chosen.c_str(), static_cast<long long>(r.chosen_params),
              static_cast<long long>(r.teacher_params),
              static_cast<long long>(r.chosen_flash_bytes));
  std::printf("why: %s\n", r.choice_reason.c_str());
  std::printf("test windows: %lld\n", static_cast<long long>(r.chosen_int8.windows));
  print_metrics_header();
  print_metrics_row("student int8", r.chosen_int8);
  print_metrics_row("student float", r.chosen_float);
  print_metrics_row("teacher", r.teacher);
  for (const auto& [name, m] : r.baselines)
    print_metrics_row(name, m);
  if (r.gate_evidence.present()) std::printf("gate: %s\n", r.gate_evidence.reason.c_str());
  print_intervals(r.intervals);
}

int run_train(const TrainFlags& flags) {
  auto kind = teacher_kind(flags.teacher);
  if (!kind) {
    std::cerr << "cyclecast train: " << kind.error().message << '\n';
    return kExitUsage;
  }
  auto protocol = load_protocol(flags.data);
  if (!protocol) {
    std::cerr << "cyclecast train: " << protocol.error().message << '\n';
    return exit_code_for(protocol.error());
  }
  pipeline::TrainingOptions options = flags.options;
  options.teacher = *kind;
  ProgressBar bar;
  pipeline::TrainingProgressCallback progress;
  std::optional<pipeline::Stage> logged_stage;
  if (!flags.json && isatty(STDERR_FILENO) == 1) {
    progress = [&bar](const pipeline::TrainingProgress& p) { bar.update(p); };
  } else if (!flags.json) {
    // Not a terminal (a log file, a pipe): one line per stage instead of a redrawn bar.
    progress = [&logged_stage](const pipeline::TrainingProgress& p) {
      if (logged_stage == p.stage) return;
      logged_stage = p.stage;
      std::fprintf(stderr, "[%3.0f%%] %s\n", 100.0 * p.overall_fraction,
                   pipeline::stage_name(p.stage));
    };
  }
  const InterruptScope interrupt_scope;
  auto result = pipeline::run_training(*protocol, options, flags.out, progress, &g_interrupted);
  bar.clear();
  if (!result) {
    if (result.error().code == ErrorCode::kCancelled) {
      std::cerr << "cyclecast train: interrupted; nothing was written to " << flags.out << '\n';
      return kExitFailure;
    }
    std::cerr << "cyclecast train: " << result.error().message << '\n';
    return exit_code_for(result.error());
  }
  print_training_summary(*result, flags.json);
  return kExitOk;
}

int run_eval(const EvalFlags& flags) {
  auto protocol = load_protocol(flags.data);
  if (!protocol) {
    std::cerr << "cyclecast eval: " << protocol.error().message << '\n';
    return exit_code_for(protocol.error());
  }
  auto metrics = pipeline::evaluate_model_file(flags.model, *protocol);
  if (!metrics) {
    std::cerr << "cyclecast eval: " << metrics.error().message << '\n';
    return exit_code_for(metrics.error());
  }
  const auto baselines = pipeline::evaluate_baselines(*protocol);
  if (flags.json) {
    nlohmann::json out = {
        {"protocol", protocol->name}, {"model", flags.model}, {"metrics", metrics_json(*metrics)}};
    for (const auto& [name, m] : baselines)
      out["baselines"][name] = metrics_json(m);
    std::cout << out.dump() << '\n';
    return kExitOk;
  }
  std::printf("protocol %s, %lld test windows\n", protocol->name.c_str(),
              static_cast<long long>(metrics->windows));
  print_metrics_header();
  print_metrics_row(flags.model, *metrics);
  for (const auto& [name, m] : baselines)
    print_metrics_row(name, m);
  return kExitOk;
}

}  // namespace

void add_train_commands(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* train = app.add_subcommand(
      "train",
      "Train a teacher, distil, prune and quantize students, pick one on the Pareto front and "
      "write it with report.json/report.html into --out (a new directory). Ctrl-C stops the run "
      "and leaves nothing behind.");
  add_data_flags(*train, flags->data);
  train->add_option("--out", flags->out, "output directory (must not exist yet)")->required();
  train
      ->add_option("--teacher", flags->teacher,
                   "auto (the better of dlnet and liquid on validation), dlnet or liquid")
      ->capture_default_str();
  auto& o = flags->options;
  train->add_option("--teacher-budget", o.teacher_budget_s, "seconds for the teacher stage")
      ->capture_default_str();
  train
      ->add_option("--teacher-epochs", o.teacher_max_epochs,
                   "most epochs of the teacher (it stops earlier when the budget runs out; with "
                   "a budget it never reaches, a run no longer depends on the machine's load)")
      ->check(CLI::Range(int64_t{2}, int64_t{10000}))
      ->capture_default_str();
  train->add_option("--widths", o.widths, "student widths")->capture_default_str();
  train->add_option("--features", o.features, "bypass rank of the students")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  train->add_option("--prune-ratios", o.prune_ratios, "structured pruning ratios")
      ->check(CLI::Range(0.0, 0.95))
      ->capture_default_str();
  train->add_option("--epochs", o.student_epochs, "stage-1 epochs per student")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  train
      ->add_option("--min-steps", o.min_student_steps,
                   "at least this many optimizer steps per stage-1 student (more epochs on small "
                   "data)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}))
      ->capture_default_str();
  train
      ->add_option("--min-stage2-steps", o.min_stage2_steps,
                   "at least this many optimizer steps per stage-2 student")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}))
      ->capture_default_str();
  train->add_option("--stage2-epochs", o.stage2_epochs, "stage-2 epochs per pruned student")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  train
      ->add_option("--lambda-start", o.lambda_start,
                   "weight of the truth loss at the first epoch (the rest is distillation)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  train->add_option("--lambda-end", o.lambda_end, "weight of the truth loss at the last epoch")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  train->add_flag("--kd-cosine", o.kd_cosine, "cosine instead of MSE distillation term");
  train->add_option("--max-flash", o.budget.max_flash_bytes, "deployment budget: int8 flash bytes")
      ->capture_default_str();
  train->add_option("--max-ram", o.budget.max_ram_bytes, "deployment budget: RAM bytes")
      ->capture_default_str();
  train->add_option("--max-ms", o.budget.max_ms, "deployment budget: ms per forecast at 64 MHz")
      ->capture_default_str();
  train
      ->add_option("--interval-coverage", o.interval_coverage,
                   "nominal coverage of the per-step prediction intervals, calibrated on the "
                   "validation cells")
      ->check(CLI::Range(0.5, 0.999))
      ->capture_default_str();
  train
      ->add_option("--augment-copies", o.augment.copies,
                   "training aid: augmented copies of every training window (fade and gain "
                   "scaled; 0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{16}))
      ->capture_default_str();
  train
      ->add_option("--augment-fade", o.augment.fade_scale,
                   "augmentation: a copy's fade around its last input SOH is scaled by exp(u), u "
                   "uniform in [-F, F]")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  train
      ->add_option("--augment-gain", o.augment.gain,
                   "augmentation: a copy's SOH is multiplied by 1 + v, v uniform in [-G, G]")
      ->check(CLI::Range(0.0, 0.49))
      ->capture_default_str();
  train
      ->add_option("--smooth-train", o.smooth_radius,
                   "training aid: the training windows are made from series smoothed by a "
                   "running median of 2R+1 cycles (the node still forecasts from the raw window; "
                   "0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{50}))
      ->capture_default_str();
  train
      ->add_option("--weight-decay", o.weight_decay,
                   "training aid: the students' decoupled weight decay (AdamW)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  train->add_option("--threads", o.threads, "training threads (0: all cores)")
      ->capture_default_str();
  train->add_option("--seed", o.seed, "seed of initialization, shuffling and splits")
      ->capture_default_str();
  train
      ->add_option("--kfold-below-cells", o.kfold_below_cells,
                   "split protocol with fewer cells: the gate's evidence by k-fold over cells "
                   "(0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  train->add_option("--folds", o.kfold_folds, "folds of that k-fold")
      ->capture_default_str()
      ->check(CLI::Range(2, 100));
  train->add_flag("--json", flags->json, "print one JSON object instead of text");
  train->callback([flags, &global] { global.exit_code = run_train(*flags); });

  auto eval_flags = std::make_shared<EvalFlags>();
  CLI::App* eval = app.add_subcommand(
      "eval", "Evaluate a model file (.ccm float or .int8 blob) against the baselines");
  add_data_flags(*eval, eval_flags->data);
  eval->add_option("--model", eval_flags->model, "model file")->required();
  eval->add_flag("--json", eval_flags->json, "print one JSON object instead of text");
  eval->callback([eval_flags, &global] { global.exit_code = run_eval(*eval_flags); });
}

}  // namespace cyclecast::cli
