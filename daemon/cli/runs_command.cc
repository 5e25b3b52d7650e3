// `cyclecast runs list|show|report` and `cyclecast retrain [--wait]`: training runs through
// cyclecastd's API (docs/api.md, "Runs"; docs/lifecycle.md).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api_support.h"
#include "status_line.h"

extern char** environ;

namespace cyclecast::cli {
namespace {

using nlohmann::json;

std::string run_path(std::int64_t id) {
  return "/api/v1/runs/" + std::to_string(id);
}

int run_runs_list(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto runs = api.get("/api/v1/runs");
  if (!runs) return api.exit_code();
  if (flags.json_output) {
    print_json(*runs);
    return kExitOk;
  }
  TableRows rows{{"ID", "TRIGGER", "BY", "STATUS", "STAGE", "PROGRESS", "STARTED", "FINISHED",
                  "MODEL", "REPORT"}};
  for (const json& run : *runs) {
    rows.push_back({text_of(field(run, "id")), text_of(field(run, "trigger")),
                    text_of(field(run, "requested_by")), text_of(field(run, "status")),
                    text_of(field(run, "stage")), fixed(field(run, "progress"), 2),
                    time_of(field(run, "started_at")), time_of(field(run, "finished_at")),
                    text_of(field(run, "model_version")),
                    field(run, "report_url").is_string() ? "yes" : "-"});
  }
  print_table(rows);
  return kExitOk;
}

int run_runs_show(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto run = api.get(run_path(flags.run_id));
  if (!run) return api.exit_code();
  if (flags.json_output) {
    print_json(*run);
  } else {
    print_fields(*run);
  }
  return kExitOk;
}

// Runs `program file` (a browser, or xdg-open) and waits for it; its exit status, or -1 when it
// could not be started. posix_spawnp, not a shell: the file name is never interpreted.
int open_with(const std::string& program, const std::string& file) {
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>(file.c_str()),
                             nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run_runs_report(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const std::string out =
      flags.out.empty() ? "run-" + std::to_string(flags.run_id) + "-report.html" : flags.out;
  http::Response response;
  auto download =
      api.client().download(run_path(flags.run_id) + "/report", out, std::nullopt, response);
  if (!download) return api.fail(download.error());
  if (!response.ok()) return api.fail(response);
  std::cout << "wrote " << out << ": the report of run " << flags.run_id << ", " << download->bytes
            << " bytes\n";
  if (!flags.open) return kExitOk;
  // $BROWSER as the freedesktop convention has it: the first of a ':'-separated list.
  std::string browser = env_or("BROWSER", "xdg-open");
  browser = browser.substr(0, browser.find(':'));
  const int status = open_with(browser, out);
  if (status != 0) {
    std::cerr << "cyclecast: could not open " << out << " with " << browser
              << (status < 0 ? " (not found)" : " (exit " + std::to_string(status) + ")")
              << "; set $BROWSER, or open the file yourself\n";
    return kExitApiError;
  }
  return kExitOk;
}

// "[##########----------]  50%".
std::string bar(double fraction) {
  constexpr int kWidth = 20;
  const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * kWidth + 0.5);
  char percent[8];
  std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100 + 0.5));
  return "[" + std::string(filled, '#') + std::string(kWidth - filled, '-') + "] " + percent;
}

// One look at a running run, for people: on a terminal a bar redrawn in place, otherwise a line
// each time the stage changes (a log must not fill with redraws).
class Progress {
 public:
  explicit Progress(std::int64_t id) : id_(id), terminal_(::isatty(STDERR_FILENO) != 0) {}
  ~Progress() { line_.clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void show(const json& run) {
    const std::string stage = text_of(field(run, "stage"));
    const json& progress = field(run, "progress");
    if (terminal_) {
      std::string text = "run " + std::to_string(id_) + " " + stage + " " +
                         (progress.is_number() ? bar(progress.get<double>()) : "");
      if (field(run, "detail").is_string()) text += " " + text_of(field(run, "detail"));
      if (field(run, "eta_s").is_number()) {
        text += ", about " + std::to_string(field(run, "eta_s").get<std::int64_t>()) + " s left";
      }
      if (line_.due()) line_.draw(text);
    } else if (stage != last_stage_) {
      std::cerr << "run " << id_ << ": stage " << stage;
      if (progress.is_number()) std::cerr << " (" << fixed(progress, 2) << ")";
      std::cerr << '\n';
    }
    last_stage_ = stage;
  }

 private:
  std::int64_t id_;
  bool terminal_;
  StatusLine line_;
  std::string last_stage_;
};

// What a finished run gave: the model it registered and what the gate made of it.
void print_outcome(Api& api, const json& run) {
  const std::string id = text_of(field(run, "id"));
  if (field(run, "status") != "succeeded") {
    std::cout << "run " << id << " " << text_of(field(run, "status")) << " at stage "
              << text_of(field(run, "stage")) << ": " << text_of(field(run, "error")) << '\n';
    return;
  }
  const json& version = field(run, "model_version");
  std::cout << "run " << id << " succeeded";
  if (!version.is_string()) {
    std::cout << ": no model registered\n";
    return;
  }
  std::cout << ": model " << version.get<std::string>();
  const auto model = api.get("/api/v1/models/" + path_segment(version.get<std::string>()));
  if (model) {
    std::cout << " is " << text_of(field(*model, "status"));
    if (field(*model, "status_reason").is_string()) {
      std::cout << " (" << text_of(field(*model, "status_reason")) << ")";
    }
  }
  std::cout << '\n';
  if (field(run, "report_url").is_string()) {
    std::cout << "report: cyclecast runs report " << id << " --open\n";
  }
}

int run_retrain(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(true)) return api.exit_code();
  const auto started = api.post("/api/v1/retrain", caller_body(flags));
  if (!started) return api.exit_code();
  const json& id = field(*started, "id");
  if (!flags.wait || !id.is_number_integer()) {
    if (flags.json_output) {
      print_json(*started);
    } else {
      std::cout << "retraining started: run " << text_of(id) << " (follow it: cyclecast runs show "
                << text_of(id) << ", or retrain --wait)\n";
    }
    return kExitOk;
  }
  const std::int64_t run_id = id.get<std::int64_t>();
  std::optional<json> run;
  {
    Progress progress(run_id);
    const auto pause = std::chrono::duration<double>(flags.poll_s);
    for (;;) {
      run = api.get(run_path(run_id));
      if (!run) return api.exit_code();
      if (field(*run, "status") != "running") break;
      progress.show(*run);
      std::this_thread::sleep_for(pause);
    }
  }
  if (flags.json_output) {
    print_json(*run);
  } else {
    print_outcome(api, *run);
  }
  return field(*run, "status") == "succeeded" ? kExitOk : kExitApiError;
}

}  // namespace

void add_run_commands(CLI::App& app, const std::shared_ptr<ApiFlags>& flags,
                      GlobalOptions& global) {
  CLI::App* retrain = add_api_command(app, "retrain", "start a retraining run now (API, token)",
                                      flags, global, run_retrain);
  retrain->add_option("--why", flags->why, "reason, recorded with the run");
  retrain->add_flag("--wait", flags->wait,
                    "follow the run to its end, then print what it gave; exit 1 if it failed");
  retrain->add_option("--poll-s", flags->poll_s, "seconds between looks at the run (--wait)")
      ->check(CLI::Range(0.01, 60.0))
      ->group("");  // for tests; not shown in --help

  CLI::App* runs = app.add_subcommand("runs", "training runs and their reports (API)");
  runs->require_subcommand(1);
  add_api_command(*runs, "list", "runs, newest first", flags, global, run_runs_list);
  add_api_command(*runs, "show", "one run in full: stage, snapshot, configuration, summary", flags,
                  global, run_runs_show)
      ->add_option("id", flags->run_id, "run id")
      ->required()
      ->check(CLI::PositiveNumber);
  CLI::App* report = add_api_command(*runs, "report", "download a run's report.html", flags, global,
                                     run_runs_report);
  report->add_option("id", flags->run_id, "run id")->required()->check(CLI::PositiveNumber);
  report->add_option("--out", flags->out, "file to write (default run-ID-report.html)");
  report->add_flag("--open", flags->open, "then open it with $BROWSER (default xdg-open)");
}

}  // namespace cyclecast::cli
