#include "cyclecast/lifecycle/training_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <system_error>

#include "cyclecast/bounded_json.h"

extern char** environ;

namespace {
// JSON has no NaN (metrics use it for "none"): null stands for it.
nlohmann::json number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}
double number_or_nan(const nlohmann::json& j) {
  return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

// JSON of the options a request carries. Every field, so that a new one is not silently left at
// its default in the worker (training_worker_test.cc checks a round trip).
namespace cyclecast::models {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CostConstants, runtime_code_bytes, tanh_table_bytes,
                                                descriptor_bytes, stack_bytes, cycles_per_mac,
                                                cycles_per_encoder_mac, cycles_per_row,
                                                cycles_per_tanh, cycles_per_euler_unit,
                                                cycles_fixed, clock_hz)
}  // namespace cyclecast::models

namespace cyclecast::pipeline {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CleaningOptions, charge_time_fill_min,
                                                charge_time_max_min, spike_median_cycles,
                                                spike_threshold_soh, max_gap_cycles)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RawReadOptions, include_approx)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProtocolOptions, input_len, horizon, delta_scale,
                                                use_optional_features, train_stride, test_stride,
                                                paper_validation_fraction,
                                                heldout_validation_fraction,
                                                split_validation_fraction, split_test_fraction,
                                                seed, cleaning, raw, ridge_lambda)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Budget, max_flash_bytes, max_ram_bytes, max_ms)
NLOHMANN_JSON_SERIALIZE_ENUM(TeacherKind, {{TeacherKind::kAuto, "auto"},
                                           {TeacherKind::kDlnet, "dlnet"},
                                           {TeacherKind::kLiquid, "liquid"}})
NLOHMANN_JSON_SERIALIZE_ENUM(InputChoice, {{InputChoice::kAuto, "auto"},
                                           {InputChoice::kSohOnly, "soh-only"},
                                           {InputChoice::kAll, "all"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainingOptions, teacher, teacher_budget_s,
                                                teacher_max_epochs, widths, features, prune_ratios,
                                                student_epochs, stage2_epochs, min_student_steps,
                                                min_stage2_steps, lambda_start, lambda_end,
                                                kd_cosine, truth_loss_mae, calibration_windows,
                                                budget, kfold_below_cells, kfold_folds, threads,
                                                seed, cost)

void to_json(nlohmann::json& j, const ForecastMetrics& m) {
  nlohmann::json steps = nlohmann::json::array();
  for (double v : m.mae_by_step)
    steps.push_back(number(v));
  j = {{"mae", number(m.mae)},
       {"mae_10", number(m.mae_10)},
       {"mae_100", number(m.mae_100)},
       {"rmse", number(m.rmse)},
       {"eol_error_cycles", number(m.eol_error_cycles)},
       {"eol_windows", m.eol_windows},
       {"windows", m.windows},
       {"mae_by_step", steps}};
}
void from_json(const nlohmann::json& j, ForecastMetrics& m) {
  m.mae = number_or_nan(j.at("mae"));
  m.mae_10 = number_or_nan(j.at("mae_10"));
  m.mae_100 = number_or_nan(j.at("mae_100"));
  m.rmse = number_or_nan(j.at("rmse"));
  m.eol_error_cycles = number_or_nan(j.at("eol_error_cycles"));
  m.eol_windows = j.at("eol_windows").get<int64_t>();
  m.windows = j.at("windows").get<int64_t>();
  m.mae_by_step.clear();
  for (const auto& v : j.at("mae_by_step"))
    m.mae_by_step.push_back(number_or_nan(v));
}
// The run's output crosses the process boundary as this typed value, so the daemon never re-reads
// what the training process had in memory (run_output.h).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RunOutput, out_dir, run_id, protocol, data_source, chosen,
                                   choice_reason, chosen_int8, chosen_float, chosen_params,
                                   chosen_flash_bytes, chosen_ram_bytes, chosen_cycles)
void to_json(nlohmann::json& j, const PairedBootstrap& b) {
  j = {{"cells", b.cells},
       {"reference_mae", number(b.reference_mae)},
       {"candidate_mae", number(b.candidate_mae)},
       {"improvement", number(b.improvement)},
       {"lower", number(b.lower)}};
}
void from_json(const nlohmann::json& j, PairedBootstrap& b) {
  b.cells = j.at("cells").get<int64_t>();
  b.reference_mae = number_or_nan(j.at("reference_mae"));
  b.candidate_mae = number_or_nan(j.at("candidate_mae"));
  b.improvement = number_or_nan(j.at("improvement"));
  b.lower = number_or_nan(j.at("lower"));
}
void to_json(nlohmann::json& j, const BaselineComparison& c) {
  j = {{"reference", c.reference}, {"result", c.result}};
}
void from_json(const nlohmann::json& j, BaselineComparison& c) {
  j.at("reference").get_to(c.reference);
  j.at("result").get_to(c.result);
}
void to_json(nlohmann::json& j, const GateEvidence& e) {
  j = {{"scoring", e.scoring},
       {"folds", e.folds},
       {"candidate", e.candidate},
       {"cells", e.cells},
       {"candidate_mae", number(e.candidate_mae)},
       {"best_reference", e.best_reference},
       {"best_reference_mae", number(e.best_reference_mae)},
       {"weakest_reference", e.weakest_reference},
       {"lower", number(e.lower)},
       {"beats_references", e.beats_references},
       {"comparisons", e.comparisons},
       {"reason", e.reason}};
}
void from_json(const nlohmann::json& j, GateEvidence& e) {
  j.at("scoring").get_to(e.scoring);
  j.at("folds").get_to(e.folds);
  j.at("candidate").get_to(e.candidate);
  j.at("cells").get_to(e.cells);
  e.candidate_mae = number_or_nan(j.at("candidate_mae"));
  j.at("best_reference").get_to(e.best_reference);
  e.best_reference_mae = number_or_nan(j.at("best_reference_mae"));
  j.at("weakest_reference").get_to(e.weakest_reference);
  e.lower = number_or_nan(j.at("lower"));
  j.at("beats_references").get_to(e.beats_references);
  j.at("comparisons").get_to(e.comparisons);
  j.at("reason").get_to(e.reason);
}
void to_json(nlohmann::json& j, const TrainingResult& r) {
  to_json(j, static_cast<const RunOutput&>(r));
  j["gate_evidence"] = r.gate_evidence;
  j["teacher"] = r.teacher;
  j["baselines"] = r.baselines;
  j["teacher_params"] = r.teacher_params;
  j["seconds"] = r.seconds;
}
void from_json(const nlohmann::json& j, TrainingResult& r) {
  from_json(j, static_cast<RunOutput&>(r));
  j.at("gate_evidence").get_to(r.gate_evidence);
  j.at("teacher").get_to(r.teacher);
  j.at("baselines").get_to(r.baselines);
  j.at("teacher_params").get_to(r.teacher_params);
  j.at("seconds").get_to(r.seconds);
}
}  // namespace cyclecast::pipeline

namespace cyclecast::lifecycle {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kProgressEvery = std::chrono::milliseconds(250);
constexpr auto kKillAfterTerm = std::chrono::seconds(30);

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

pid_t parent_pid_of(const std::string& request_text) {
  const auto j = parse_bounded_json(request_text, request_text.size());
  return j && j->is_object() ? j->value("parent_pid", pid_t{0}) : 0;
}

// ---- The worker's side -------------------------------------------------------------------

std::atomic<bool> g_cancel{false};
extern "C" void on_stop_signal(int) {
  g_cancel.store(true);
}

// Whole lines on stdout, from any of the pipeline's threads.
class Reporter {
 public:
  void line(const Json& j) {
    const std::string text = dump(j) + "\n";
    std::lock_guard lock(mutex_);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  int error(const Error& e) {
    line({{"error", {{"code", static_cast<int>(e.code)}, {"message", e.message}}}});
    return 1;
  }
  // At most every kProgressEvery, but every change of stage.
  void progress(const pipeline::TrainingProgress& p) {
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      if (p.stage == last_stage_ && now - last_ < kProgressEvery) return;
      last_stage_ = p.stage;
      last_ = now;
    }
    line({{"progress",
           {{"stage", static_cast<int>(p.stage)},
            {"stage_fraction", number(p.stage_fraction)},
            {"overall_fraction", number(p.overall_fraction)},
            {"detail", p.detail},
            {"eta_s", number(p.eta_s)}}}});
  }

 private:
  std::mutex mutex_;
  pipeline::Stage last_stage_ = pipeline::Stage::kPrepare;
  Clock::time_point last_{};
};

// Own session (so its own autogroup), autogroup nice 19, nice 19, SCHED_IDLE; threads created
// later inherit the last two. Each is best effort: what held is reported by describe_priority.
void lower_priority() {
  setsid();
  if (std::FILE* f = std::fopen("/proc/self/autogroup", "w")) {
    std::fputs("19", f);
    std::fclose(f);
  }
  setpriority(PRIO_PROCESS, 0, 19);
  sched_param param{};
  sched_setscheduler(0, SCHED_IDLE, &param);
}

std::string describe_priority() {
  std::ostringstream out;
  out << "pid " << getpid() << ", nice " << getpriority(PRIO_PROCESS, 0) << ", ";
  const int policy = sched_getscheduler(0);
  out << (policy == SCHED_IDLE    ? std::string("SCHED_IDLE")
          : policy == SCHED_OTHER ? std::string("SCHED_OTHER")
                                  : "policy " + std::to_string(policy));
  out << (getsid(0) == getpid() ? ", own session" : ", the daemon's session");
  std::ifstream autogroup("/proc/self/autogroup");  // "/autogroup-123 nice 19"
  std::string name, word;
  int nice = 0;
  if (autogroup >> name >> word >> nice) out << ", autogroup nice " << nice;
  return out.str();
}

// ---- The daemon's side -------------------------------------------------------------------

Result<void> write_request(const fs::path& path, const TrainingRequest& request) {
  std::ofstream out(path, std::ios::trunc);
  out << training_request_text(request) << '\n';
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "cannot write " + path.string());
  return {};
}

std::string exit_description(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Relays one line of the worker's to `events`; keeps its answer, the "result" or "error" line.
// A line that is not one of the worker's objects is ignored.
void handle_line(const std::string& text, const TrainingWorkerEvents& events,
                 std::optional<Json>& answer) try {
  const auto parsed = parse_bounded_json(text, text.size());
  if (!parsed || !parsed->is_object()) return;
  const Json& j = *parsed;
  if (j.contains("started")) {
    if (events.started) events.started(j["started"].get<std::string>());
  } else if (j.contains("loaded")) {
    if (events.loaded) events.loaded();
  } else if (j.contains("progress")) {
    if (!events.progress) return;
    const Json& p = j["progress"];
    pipeline::TrainingProgress progress;
    progress.stage = static_cast<pipeline::Stage>(p.at("stage").get<int>());
    progress.stage_fraction = number_or_nan(p.at("stage_fraction"));
    progress.overall_fraction = number_or_nan(p.at("overall_fraction"));
    progress.detail = p.at("detail").get<std::string>();
    progress.eta_s = number_or_nan(p.at("eta_s"));
    events.progress(progress);
  } else if (j.contains("result") || j.contains("error")) {
    answer = j;
  }
} catch (const Json::exception&) {
}

Result<TrainingOutcome> outcome_of(const std::optional<Json>& answer, int status) {
  if (!answer) {
    return make_error(ErrorCode::kCorrupt, "the training process ended without a result (" +
                                               exit_description(status) +
                                               "; its messages are in the daemon's log)");
  }
  if (answer->contains("error")) {
    const Json& error = (*answer)["error"];
    const int code = error.at("code").get<int>();
    const bool known = code >= 0 && code <= static_cast<int>(ErrorCode::kCancelled);
    return Error{known ? static_cast<ErrorCode>(code) : ErrorCode::kCorrupt,
                 error.at("message").get<std::string>()};
  }
  const Json& r = (*answer)["result"];
  TrainingOutcome outcome;
  outcome.protocol_name = r.at("protocol").get<std::string>();
  outcome.test_cells = r.at("test_cells").get<std::vector<std::string>>();
  outcome.result = r.at("training").get<pipeline::TrainingResult>();
  outcome.champion_mae = number_or_nan(r.at("champion_mae"));
  if (r.contains("champion_comparison")) {
    outcome.champion_comparison = r.at("champion_comparison").get<pipeline::PairedBootstrap>();
    outcome.champion_scoring = r.value("champion_scoring", "held-out");
  }
  return outcome;
}

pid_t spawn_worker(const fs::path& executable, const fs::path& request_file, int stdout_fd,
                   int& error) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Nothing else of the daemon's (broker and API sockets, database files) stays open in it.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  const std::string exe = executable.string();
  const std::string request = request_file.string();
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(kTrainingWorkerFlag),
                  const_cast<char*>(request.c_str()), nullptr};
  pid_t pid = 0;
  error = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

}  // namespace

std::string training_request_text(const TrainingRequest& r) {
  return dump({{"parent_pid", getpid()},
               {"snapshot_path", r.snapshot_path.string()},
               {"protocol", r.protocol},
               {"protocol_options", r.protocol_options},
               {"inputs", r.inputs},
               {"training", r.training},
               {"out_dir", r.out_dir.string()},
               {"champion_model", r.champion_model.string()},
               {"lower_priority", r.lower_priority}});
}

Result<TrainingRequest> parse_training_request(const std::string& text) {
  try {
    auto parsed = parse_bounded_json(text, text.size());
    if (!parsed)
      return make_error(ErrorCode::kParse, "bad training request: " + parsed.error().message);
    const Json& j = *parsed;
    TrainingRequest r;
    r.snapshot_path = j.at("snapshot_path").get<std::string>();
    r.protocol = j.at("protocol").get<std::string>();
    r.protocol_options = j.at("protocol_options").get<pipeline::ProtocolOptions>();
    r.inputs = j.at("inputs").get<pipeline::InputChoice>();
    r.training = j.at("training").get<pipeline::TrainingOptions>();
    r.out_dir = j.at("out_dir").get<std::string>();
    r.champion_model = j.at("champion_model").get<std::string>();
    r.lower_priority = j.at("lower_priority").get<bool>();
    return r;
  } catch (const Json::exception& e) {
    return make_error(ErrorCode::kParse, std::string("bad training request: ") + e.what());
  }
}

Result<TrainingOutcome> train_in_worker(const fs::path& executable, const TrainingRequest& request,
                                        const fs::path& request_file,
                                        const TrainingWorkerEvents& events,
                                        const std::atomic<bool>& cancel) {
  if (auto written = write_request(request_file, request); !written) return written.error();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return make_error(ErrorCode::kIo, "pipe failed");
  int spawn_error = 0;
  const pid_t pid = spawn_worker(executable, request_file, pipe_fds[1], spawn_error);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return make_error(ErrorCode::kIo, "cannot start the training process " + executable.string() +
                                          ": " + std::generic_category().message(spawn_error));
  }

  std::optional<Json> answer;
  std::string pending;
  std::optional<Clock::time_point> terminated_at;
  bool killed = false;
  for (;;) {
    if (cancel.load() && !terminated_at) {
      kill(pid, SIGTERM);
      terminated_at = Clock::now();
    }
    if (terminated_at && !killed && Clock::now() - *terminated_at > kKillAfterTerm) {
      kill(pid, SIGKILL);
      killed = true;
    }
    pollfd fd{pipe_fds[0], POLLIN, 0};
    if (poll(&fd, 1, 100) < 0 && errno != EINTR) break;
    if (fd.revents == 0) continue;
    char chunk[4096];
    const ssize_t n = read(pipe_fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output: the worker exited
    pending.append(chunk, static_cast<size_t>(n));
    for (size_t end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
      handle_line(pending.substr(0, end), events, answer);
      pending.erase(0, end + 1);
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::error_code ec;
  fs::remove(request_file, ec);
  if (cancel.load()) return make_error(ErrorCode::kCancelled, "training was interrupted");
  try {
    return outcome_of(answer, status);
  } catch (const Json::exception& e) {
    return make_error(ErrorCode::kCorrupt,
                      std::string("the training process's result did not parse: ") + e.what());
  }
}

namespace {

// The champion's int8 file on every window of the cells the run judged by k-fold, by cell in the
// order of `candidate` (the chosen student's k-fold errors: each cell forecast by the architecture
// refitted without it), then the two paired by cell.
Result<pipeline::PairedBootstrap> compare_over_folds(const fs::path& champion_model,
                                                     std::span<const pipeline::CellError> candidate,
                                                     const pipeline::EvalProtocol& protocol) {
  std::map<std::string, std::int64_t> index_of;
  for (std::size_t i = 0; i < protocol.data.cells.size(); ++i)
    index_of[protocol.data.cells[i].cell_id] = static_cast<std::int64_t>(i);
  std::vector<std::int64_t> cells;
  for (const pipeline::CellError& e : candidate) {
    const auto found = index_of.find(e.cell);
    if (found == index_of.end())
      return make_error(ErrorCode::kInvalidArgument,
                        "k-fold cell " + e.cell + " is not in the run");
    cells.push_back(found->second);
  }
  std::sort(cells.begin(), cells.end());
  pipeline::EvalProtocol every_cell = protocol;
  // The windows the folds tested (train_linear.cc's fold_protocol): every test_stride of each cell.
  every_cell.test =
      pipeline::make_windows(protocol.data.cells, protocol.spec, protocol.test_stride, cells);
  auto champion = pipeline::model_file_errors_by_cell(champion_model.string(), every_cell);
  if (!champion) return champion.error();
  std::map<std::string, pipeline::CellError> by_cell;
  for (pipeline::CellError& e : *champion)
    by_cell[e.cell] = std::move(e);
  std::vector<pipeline::CellError> paired;
  for (const pipeline::CellError& e : candidate) {
    const auto found = by_cell.find(e.cell);
    if (found == by_cell.end())
      return make_error(ErrorCode::kInvalidArgument,
                        "the champion has no window of cell " + e.cell);
    paired.push_back(found->second);
  }
  return pipeline::paired_bootstrap(paired, candidate);
}

// The champion against the run's int8 student, paired by cell: on the run's test cells, or the
// same k-fold test the baselines faced when the run scored that way (TrainingOutcome).
Result<pipeline::PairedBootstrap> compare_with_champion(const fs::path& champion_model,
                                                        const pipeline::TrainingResult& trained,
                                                        const pipeline::EvalProtocol& protocol) {
  const pipeline::GateEvidence& evidence = trained.gate_evidence;
  if (evidence.scoring == "k-fold" && !evidence.candidate_errors.empty())
    return compare_over_folds(champion_model, evidence.candidate_errors, protocol);
  auto champion = pipeline::model_file_errors_by_cell(champion_model.string(), protocol);
  if (!champion) return champion.error();
  auto candidate = pipeline::model_file_errors_by_cell(
      trained.file(pipeline::RunFiles::kStudentInt8).string(), protocol);
  if (!candidate) return candidate.error();
  return pipeline::paired_bootstrap(*champion, *candidate);
}

}  // namespace

int training_worker_main(const fs::path& request_file) {
  Reporter out;
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // of the daemon's thread that waits for this process
  std::ifstream in(request_file);
  std::ostringstream read;
  read << in.rdbuf();
  const std::string text = read.str();
  auto request = parse_training_request(text);
  if (!request) {
    return out.error(
        Error{request.error().code, request_file.string() + ": " + request.error().message});
  }
  if (getppid() != parent_pid_of(text)) return 1;  // that thread is gone already
  if (request->lower_priority) lower_priority();
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  out.line({{"started", describe_priority()}});

  auto protocol = pipeline::load_training_protocol(request->snapshot_path, request->protocol,
                                                   request->protocol_options, request->inputs);
  if (!protocol) return out.error(protocol.error());
  out.line({{"loaded", true}});
  auto trained = pipeline::run_training(
      *protocol, request->training, request->out_dir.string(),
      [&out](const pipeline::TrainingProgress& p) { out.progress(p); }, &g_cancel);
  if (!trained) return out.error(trained.error());
  double champion_mae = std::numeric_limits<double>::quiet_NaN();
  pipeline::PairedBootstrap comparison;
  std::string scoring = "held-out";
  if (!request->champion_model.empty()) {
    auto measured = pipeline::evaluate_model_file(request->champion_model.string(), *protocol);
    if (measured) champion_mae = measured->mae;
    if (auto compared = compare_with_champion(request->champion_model, *trained, *protocol)) {
      comparison = *compared;
      if (trained->gate_evidence.scoring == "k-fold") {
        scoring = "k-fold";
        champion_mae = comparison.reference_mae;  // on the windows it was compared on
      }
    }
  }
  out.line({{"result",
             {{"protocol", protocol->name},
              {"test_cells", protocol->test_cells},
              {"training", *trained},
              {"champion_mae", number(champion_mae)},
              {"champion_comparison", comparison},
              {"champion_scoring", scoring}}}});
  return 0;
}

}  // namespace cyclecast::lifecycle
