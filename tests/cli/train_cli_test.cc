// Runs the built `cyclecast train` and `cyclecast eval` as an operator would, on a database of
// simulated cells: a tiny training run, its JSON summary, evaluating what it wrote, and the exit
// codes of the usual mistakes.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_run.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;

using cyclecast::testing::CliRun;
using cyclecast::testing::run_cyclecast;

// Short windows so that simulated cells of a few hundred cycles give enough of them.
constexpr const char* kData = " --protocol split --window 20 --horizon 10";

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path csv = dir_ / "sim.csv";
    ASSERT_EQ(run_cyclecast(dir_, "simulate --cells 14 --seed 3 --max-cycles 150 --out '" +
                                      csv.string() + "'")
                  .exit_code,
              0);
    const auto imported =
        run_cyclecast(dir_, "--db '" + db().string() + "' import '" + csv.string() + "' --cells '" +
                                (dir_ / "sim.cells.csv").string() + "'");
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }
  fs::path db() const { return dir_ / "cells.db"; }
  std::string data() const { return " --data '" + db().string() + "'" + kData; }

  TempDir dir_;
};

TEST_F(TrainCli, TrainsWritesTheRunAndEvaluatesWhatItWrote) {
  const fs::path out = dir_ / "run";
  const auto trained = run_cyclecast(
      dir_,
      "train" + data() + " --out '" + out.string() +
          "' --teacher liquid --teacher-budget 2 --widths 6 4 --features 3 --prune-ratios "
          "0.5 --epochs 2 --stage2-epochs 1 --min-steps 0 --min-stage2-steps 0 --threads 1 --json");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto summary = nlohmann::json::parse(trained.out);
  EXPECT_FALSE(summary["chosen"].get<std::string>().empty());
  EXPECT_GT(summary["student_int8"]["windows"].get<int64_t>(), 0);
  EXPECT_TRUE(summary["baselines"].contains("ridge"));
  EXPECT_TRUE(fs::exists(out / "report.html"));
  // No augmentation unless asked for, outside the cross-batch protocol.
  const auto report = nlohmann::json::parse(read_file(out / "report.json"));
  EXPECT_FALSE(report["settings"].contains("augment")) << report["settings"].dump();

  const auto evaluated = run_cyclecast(
      dir_, "eval" + data() + " --model '" + (out / "student.int8").string() + "' --json");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  const auto eval = nlohmann::json::parse(evaluated.out);
  EXPECT_NEAR(eval["metrics"]["mae"].get<double>(), summary["student_int8"]["mae"].get<double>(),
              1e-12);

  // Text output for people: the table has the student and the baselines.
  const auto text =
      run_cyclecast(dir_, "eval" + data() + " --model '" + (out / "student.ccm").string() + "'");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("quadratic-50"), std::string::npos) << text.out;

  // The same output directory again is refused, and the finished run is left alone.
  const auto again =
      run_cyclecast(dir_, "train" + data() + " --out '" + out.string() + "' --widths 4");
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_TRUE(fs::exists(out / "student.int8"));
}

TEST_F(TrainCli, RefusesWhatItCannotUse) {
  const auto no_model =
      run_cyclecast(dir_, "eval" + data() + " --model '" + (dir_ / "none.ccm").string() + "'");
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find("none.ccm"), std::string::npos) << no_model.err;

  const auto no_data = run_cyclecast(dir_, "train --data '" + (dir_ / "missing").string() +
                                               "' --out '" + (dir_ / "x").string() + "'");
  EXPECT_NE(no_data.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "x"));

  const auto bad_teacher = run_cyclecast(
      dir_, "train" + data() + " --out '" + (dir_ / "y").string() + "' --teacher lstm");
  EXPECT_EQ(bad_teacher.exit_code, 2);

  for (const char* bad : {" --augment-copies 17", " --augment-gain 0.5", " --smooth-train -1",
                          " --weight-decay 1", " --teacher-epochs 1"}) {
    const auto refused =
        run_cyclecast(dir_, "train" + data() + " --out '" + (dir_ / "z").string() + "'" + bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.err;
    EXPECT_FALSE(fs::exists(dir_ / "z"));
  }
}

}  // namespace
