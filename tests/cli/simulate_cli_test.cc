// Runs the built `cyclecast simulate` as an operator would and checks its files, output and
// exit codes.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_run.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;

using cyclecast::testing::CliRun;
using cyclecast::testing::run_cyclecast;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

constexpr const char* kCyclesHeader =
    "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min,measured_at";

TEST(SimulateCli, WritesCyclesFileAndDerivedCellsFile) {
  TempDir dir;
  const fs::path out = dir / "run.csv";
  const auto r = run_cyclecast(dir, "simulate --cells 3 --seed 5 --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cycles = lines_of(read_file(out));
  ASSERT_GT(cycles.size(), 3u * 100);
  EXPECT_EQ(cycles[0], kCyclesHeader);
  EXPECT_EQ(cycles[1].rfind("sim5c0,sim-5,1,", 0), 0u) << cycles[1];
  const auto cells = lines_of(read_file(dir / "run.cells.csv"));
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].rfind("cell_id,rig_id,chemistry,rated_capacity_ah,policy,", 0), 0u);
  EXPECT_EQ(cells[3].rfind("sim5c2,rig-sim-2,LFP/graphite,1.1,", 0), 0u) << cells[3];
  EXPECT_FALSE(fs::exists(dir / "run.csv.partial"));
  EXPECT_NE(r.err.find(std::to_string(cycles.size() - 1) + " cycles of 3 cells"), std::string::npos)
      << r.err;
}

TEST(SimulateCli, SameSeedWritesTheSameBytes) {
  TempDir dir;
  const fs::path a = dir / "a.csv";
  const fs::path b = dir / "b.csv";
  ASSERT_EQ(run_cyclecast(dir, "simulate --cells 4 --seed 77 --out '" + a.string() + "'").exit_code,
            0);
  ASSERT_EQ(run_cyclecast(dir, "simulate --cells 4 --seed 77 --out '" + b.string() + "'").exit_code,
            0);
  EXPECT_EQ(read_file(a), read_file(b));
  EXPECT_EQ(read_file(dir / "a.cells.csv"), read_file(dir / "b.cells.csv"));
  const fs::path c = dir / "c.csv";
  ASSERT_EQ(run_cyclecast(dir, "simulate --cells 4 --seed 78 --out '" + c.string() + "'").exit_code,
            0);
  EXPECT_NE(read_file(a), read_file(c));
}

TEST(SimulateCli, WritesToStdoutWithoutCellsFileUnlessAsked) {
  TempDir dir;
  const auto r = run_cyclecast(dir, "simulate --cells 1 --seed 2 --max-cycles 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 21u);
  EXPECT_EQ(lines[0], kCyclesHeader);
  EXPECT_EQ(lines[20].rfind("sim2c0,sim-2,20,", 0), 0u);

  const fs::path cells = dir / "cells.csv";
  const auto with_cells = run_cyclecast(
      dir, "simulate --cells 2 --seed 2 --max-cycles 5 --cells-out '" + cells.string() + "'");
  ASSERT_EQ(with_cells.exit_code, 0) << with_cells.err;
  EXPECT_EQ(lines_of(with_cells.out).size(), 11u);
  EXPECT_EQ(lines_of(read_file(cells)).size(), 3u);
}

TEST(SimulateCli, PassesPolicyRigsAndBatchThrough) {
  TempDir dir;
  const fs::path out = dir / "p.csv";
  const auto r = run_cyclecast(dir,
                               "simulate --cells 2 --seed 3 --rigs 1 --policy '4C(80%)-4C' "
                               "--batch lab7 --max-cycles 10 --no-glitches --out '" +
                                   out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cells = lines_of(read_file(dir / "p.cells.csv"));
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_NE(cells[2].find(",rig-sim-0,LFP/graphite,1.1,4C(80%)-4C,"), std::string::npos)
      << cells[2];
  EXPECT_EQ(cells[2].substr(cells[2].rfind(',')), ",0");  // no glitch rows
  EXPECT_EQ(lines_of(read_file(out))[1].rfind("sim3c0,lab7,1,", 0), 0u);
}

TEST(SimulateCli, HelpDescribesTheOptions) {
  TempDir dir;
  const auto r = run_cyclecast(dir, "simulate --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option :
       {"--cells", "--seed", "--out", "--cells-out", "--max-cycles", "--policy", "--no-glitches",
        "--regime-change-cycle", "--regime-fade-factor", "--regime-every"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
}

TEST(SimulateCli, RegimeChangeShowsInTheCellsFileAndBadFactorsAreRefused) {
  TempDir dir;
  const fs::path out = dir / "regime.csv";
  const auto r = run_cyclecast(dir,
                               "simulate --cells 2 --seed 3 --policy '2C(10%)-6C' --no-glitches "
                               "--regime-change-cycle 40 --regime-fade-factor 4 --regime-every 2 "
                               "--out '" +
                                   out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path plain_out = dir / "plain.csv";
  ASSERT_EQ(run_cyclecast(dir,
                          "simulate --cells 2 --seed 3 --policy '2C(10%)-6C' --no-glitches "
                          "--out '" +
                              plain_out.string() + "'")
                .exit_code,
            0);
  const auto changed = lines_of(read_file(dir / "regime.cells.csv"));
  const auto plain = lines_of(read_file(dir / "plain.cells.csv"));
  ASSERT_EQ(changed.size(), 3u);
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_NE(changed[1], plain[1]) << "cell 0 changed: an earlier end of life";
  EXPECT_EQ(changed[2], plain[2]) << "cell 1 is not a multiple of 2: unchanged";
  const auto bad = run_cyclecast(
      dir, "simulate --cells 1 --seed 1 --regime-change-cycle 5 --regime-fade-factor 0");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("regime_fade_factor"), std::string::npos) << bad.err;
}

TEST(SimulateCli, TheRigSimulatesTheRegimeChangeToo) {
  TempDir dir;
  const auto help = run_cyclecast(dir, "rig --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--regime-change-cycle", "--regime-fade-factor", "--regime-every"})
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  // Checked before anything is published (the broker address is never used).
  const auto bad = run_cyclecast(dir,
                                 "rig --simulate 1 --regime-change-cycle 5 --regime-fade-factor 0 "
                                 "--broker 127.0.0.1:1 --outbox '" +
                                     (dir / "rig.outbox").string() + "'");
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.err.find("regime_fade_factor"), std::string::npos) << bad.err;
}

TEST(SimulateCli, RefusesZeroCellsWithAMessage) {
  TempDir dir;
  const fs::path out = dir / "zero.csv";
  const auto r = run_cyclecast(dir, "simulate --cells 0 --seed 1 --out '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cells"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(SimulateCli, RefusesABadPolicyAndAMissingSeed) {
  TempDir dir;
  const auto bad_policy = run_cyclecast(dir, "simulate --cells 1 --seed 1 --policy fast");
  EXPECT_EQ(bad_policy.exit_code, 2);
  EXPECT_NE(bad_policy.err.find("charge policy 'fast'"), std::string::npos) << bad_policy.err;
  const auto no_seed = run_cyclecast(dir, "simulate --cells 1");
  EXPECT_EQ(no_seed.exit_code, 2);
  EXPECT_NE(no_seed.err.find("--seed"), std::string::npos) << no_seed.err;
  const auto not_a_number = run_cyclecast(dir, "simulate --cells many --seed 1");
  EXPECT_EQ(not_a_number.exit_code, 2);
}

TEST(SimulateCli, FailsWhenTheOutputCannotBeCreated) {
  TempDir dir;
  const fs::path out = dir / "missing-dir" / "x.csv";
  const auto r = run_cyclecast(dir, "simulate --cells 1 --seed 1 --out '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot create"), std::string::npos) << r.err;
}

}  // namespace
