// Runs the built `cyclecast import` as an operator would and checks exit codes, messages and
// what ends up in the database.
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast {
namespace {

using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ImportCli : public ::testing::Test {
 protected:
  // Runs `cyclecast --db <test db> import <args>` with stdout and stderr captured in files
  // (so stderr is not a terminal: no progress line may appear).
  RunResult import(const std::string& args) {
    const std::string command = std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast --db '" +
                                db_path().string() + "' import " + args + " > '" +
                                (dir_ / "out").string() + "' 2> '" + (dir_ / "err").string() + "'";
    const int status = std::system(command.c_str());
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_file(dir_ / "out");
    result.err = read_file(dir_ / "err");
    return result;
  }

  std::filesystem::path db_path() const { return dir_ / "cli.db"; }

  std::string write(const std::string& name, const std::string& text) {
    write_file(dir_ / name, text);
    return "'" + (dir_ / name).string() + "'";
  }

  storage::TableCounts counts() {
    auto db = storage::Database::open(db_path());
    EXPECT_TRUE(db.ok());
    auto counts = db->counts();
    EXPECT_TRUE(counts.ok());
    return counts.ok() ? *counts : storage::TableCounts{};
  }

  TempDir dir_;
};

TEST_F(ImportCli, PrintsAJsonSummaryOfTheImport) {
  const std::string file = write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,2,0.99\na,2,0.99\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const auto summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary.at("files"), 1);
  EXPECT_EQ(summary.at("rows"), 3);
  EXPECT_EQ(summary.at("inserted"), 2);
  EXPECT_EQ(summary.at("duplicates"), 1);
  EXPECT_EQ(summary.at("conflicts"), 0);
  EXPECT_EQ(summary.at("rejected"), 0);
  EXPECT_EQ(summary.at("cells"), 1);
  EXPECT_TRUE(summary.at("seconds").is_number());
  EXPECT_TRUE(summary.at("rows_per_s").is_number());
  EXPECT_EQ(counts().cycles, 2);
}

TEST_F(ImportCli, BadRowRefusesTheFileWithExitCode3NamingLineAndColumn) {
  const std::string file = write("bad.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,2,1.0e\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("bad.csv:3: column 'qd_ah' (3): expected a number in (0, 2.2] Ah"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("--skip-bad"), std::string::npos) << run.err;
  EXPECT_EQ(counts().cycles, 0);
}

TEST_F(ImportCli, SkipBadImportsTheGoodRowsAndStoresTheBadOnes) {
  const std::string file = write("bad.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,1.5,1.0\na,2,1.0\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1 --skip-bad --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary.at("inserted"), 2);
  EXPECT_EQ(summary.at("rejected"), 1);
  const storage::TableCounts stored = counts();
  EXPECT_EQ(stored.cycles, 2);
  EXPECT_EQ(stored.rejected, 1);
}

TEST_F(ImportCli, CellWithoutRatedCapacityIsRefusedNamingTheCell) {
  const std::string file = write("a.csv", "cell_id,cycle,qd_ah\nb7,1,1.0\n");
  const RunResult run = import(file);
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("no rated capacity known for cell 'b7'"), std::string::npos) << run.err;
}

TEST_F(ImportCli, CellsFileAndFlagsRegisterTheCell) {
  const std::string cells = write("cells.csv", "cell_id,policy,cycle_life\nb7,4C-4C,812\n");
  const std::string file = write("a.csv", "cell_id,cycle,qd_ah\nb7,1,1.0\n");
  const RunResult run =
      import(file + " --cells " + cells + " --rated-capacity-ah 1.1 --chemistry LFP --rig rig-3");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out.rfind("imported 1 file(s): 1 rows, 1 inserted", 0), 0U) << run.out;
  auto db = storage::Database::open(db_path());
  ASSERT_TRUE(db.ok());
  auto cell = db->find_cell("b7");
  ASSERT_TRUE(cell.ok());
  ASSERT_TRUE(cell->has_value());
  EXPECT_EQ((*cell)->rig_id, "rig-3");
  EXPECT_EQ((*cell)->chemistry, "LFP");
  EXPECT_EQ((*cell)->charge_policy, "4C-4C");
  EXPECT_EQ((*cell)->metadata_json, R"({"cycle_life":812})");
}

TEST_F(ImportCli, UnknownFormatIsABadCommandLine) {
  const std::string file = write("a.csv", "cell_id,cycle,qd_ah\nb7,1,1.0\n");
  EXPECT_EQ(import(file + " --format excel").exit_code, 2);
}

TEST_F(ImportCli, MissingFileFailsWithExitCode1) {
  const RunResult run = import("'" + (dir_ / "absent.csv").string() + "' --rated-capacity-ah 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("absent.csv: cannot open"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace cyclecast
