// The training process of a retraining run (lifecycle/training_worker.h): its request carries
// every option through JSON, and it dies with the daemon's thread that started it, so a killed
// daemon leaves no training behind.
#include "cyclecast/lifecycle/training_worker.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "lifecycle_fixture.h"
#include "temp_dir.h"

namespace cyclecast::lifecycle {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using Clock = std::chrono::steady_clock;

TEST(TrainingRequest, EveryOptionSurvivesTheTripThroughJson) {
  TrainingRequest request;
  request.snapshot_path = "/state/runs/7/snapshot.db";
  request.protocol = "heldout";
  request.protocol_options.input_len = 20;
  request.protocol_options.horizon = 10;
  request.protocol_options.use_optional_features = false;
  request.protocol_options.cleaning.max_gap_cycles = 9;
  request.protocol_options.raw.include_approx = true;
  request.protocol_options.ridge_lambda = 0.5;
  request.inputs = pipeline::InputChoice::kAll;
  request.training.teacher = pipeline::TeacherKind::kDlnet;
  request.training.widths = {12, 6};
  request.training.prune_ratios = {};
  request.training.kd_cosine = true;
  request.training.budget.max_ms = 2.5;
  request.training.cost.cycles_per_mac = 3.25;
  request.training.seed = 99;
  request.training.kfold_below_cells = 12;
  request.training.kfold_folds = 3;
  request.out_dir = "/state/runs/7/train";
  request.champion_model = "/state/models/r6-20261201/student.int8";
  request.lower_priority = false;

  const std::string text = training_request_text(request);
  auto parsed = parse_training_request(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(training_request_text(*parsed), text);
  EXPECT_EQ(parsed->protocol_options.cleaning.max_gap_cycles, 9);
  EXPECT_TRUE(parsed->protocol_options.raw.include_approx);
  EXPECT_EQ(parsed->inputs, pipeline::InputChoice::kAll);
  EXPECT_EQ(parsed->training.teacher, pipeline::TeacherKind::kDlnet);
  EXPECT_EQ(parsed->training.widths, (std::vector<int64_t>{12, 6}));
  EXPECT_TRUE(parsed->training.prune_ratios.empty());
  EXPECT_DOUBLE_EQ(parsed->training.cost.cycles_per_mac, 3.25);
  EXPECT_EQ(parsed->training.seed, 99u);
  EXPECT_EQ(parsed->training.kfold_below_cells, 12);
  EXPECT_EQ(parsed->training.kfold_folds, 3);
  EXPECT_EQ(parsed->champion_model, request.champion_model);
  EXPECT_FALSE(parsed->lower_priority);
}

TEST(TrainingRequest, AMalformedOneIsRefused) {
  for (const char* text : {"", "{}", R"({"snapshot_path": 3})"}) {
    auto parsed = parse_training_request(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
  }
}

// The pid of the process whose command line mentions `needle`, or 0.
pid_t process_mentioning(const std::string& needle) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find(needle) != std::string::npos) return std::stoi(name);
  }
  return 0;
}

// Gone, or a zombie nobody has reaped yet.
bool has_ended(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return true;
  const auto state = line.find(") ");
  return state != std::string::npos && line[state + 2] == 'Z';
}

// A daemon killed with SIGKILL mid-run: its training process goes too (PR_SET_PDEATHSIG, and
// SIGPIPE at its next line of progress). The
// "daemon" is a forked copy of this test that starts a long run and waits in it.
TEST(TrainingWorker, DiesWithTheDaemon) {
  TempDir tmp;
  const fs::path db = tmp / "cyclecast.db";
  cyclecast::testing::write_fading_cells(db, 18, 160);
  const RetrainerConfig config = testing::tiny_config(db, tmp / "state");
  TrainingRequest request;
  request.snapshot_path = db;
  request.protocol = config.protocol;
  request.protocol_options = config.protocol_options;
  request.training = config.training;
  request.training.teacher_budget_s = 600;
  request.training.teacher_max_epochs = 100000;
  request.out_dir = tmp / "train";
  request.lower_priority = false;
  const fs::path request_file = tmp / "training-request.json";

  const pid_t daemon = fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    std::atomic<bool> never{false};
    (void)train_in_worker(config.worker_executable, request, request_file, {}, never);
    _exit(0);
  }
  pid_t worker = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (worker == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    worker = process_mentioning(request_file.string());
    if (worker == daemon) worker = 0;  // not the fork itself (same command line as this test)
  }
  ASSERT_NE(worker, 0) << "no training process started";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_FALSE(has_ended(worker)) << "the training process ended by itself";
  kill(daemon, SIGKILL);
  ASSERT_EQ(waitpid(daemon, nullptr, 0), daemon);
  const auto gone_by = Clock::now() + std::chrono::seconds(10);
  while (!has_ended(worker) && Clock::now() < gone_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(has_ended(worker)) << "training process " << worker << " outlived its daemon";
  if (!has_ended(worker)) kill(worker, SIGKILL);
}

}  // namespace
}  // namespace cyclecast::lifecycle
