// Runs the built `cyclecast import` as an operator would and checks exit codes, messages and
// what ends up in the database.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
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

  // Whether the database or any of SQLite's side files exists.
  bool any_database_file() const {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      if (std::filesystem::exists(db_path().string() + suffix)) return true;
    }
    return false;
  }

  // A cyclecast-format file of `rows` cycles of cell "a".
  std::string many_rows(int rows) {
    std::string text = "cell_id,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c\n";
    for (int cycle = 1; cycle <= rows; ++cycle) {
      text += "a," + std::to_string(cycle) + ",1.0,1.01,0.017,31.5,30.2,29.1\n";
    }
    return write("many.csv", text);
  }

  // `import(args)` with the files cyclecast writes limited to `kib` KiB (ulimit -f; SIGXFSZ
  // ignored so that the write fails with EFBIG instead of killing the process): a disk that fills
  // up after some rows were written.
  RunResult import_with_file_size_limit(int kib, const std::string& args) {
    const std::string command = "trap '' XFSZ; ulimit -f " + std::to_string(kib * 2) + "; exec " +
                                std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast --db '" +
                                db_path().string() + "' import " + args;
    return run_shell(command);
  }

  RunResult run_shell(const std::string& command) {
    const std::string full = "( " + command + " ) > '" + (dir_ / "out").string() + "' 2> '" +
                             (dir_ / "err").string() + "'";
    const int status = std::system(full.c_str());
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_file(dir_ / "out");
    result.err = read_file(dir_ / "err");
    return result;
  }

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
  EXPECT_FALSE(any_database_file()) << "a refused import created the database";
}

TEST_F(ImportCli, SkipBadWithEveryRowBadFailsAndStoresNothing) {
  const std::string file = write("wrong.csv", "cell_id,cycle,qd_ah\na,1,5.0\na,2,4.9\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1 --skip-bad --json");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("wrong.csv: every one of its 2 rows is bad, e.g. "), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("nothing was imported"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("pass --skip-bad"), std::string::npos) << run.err;
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, HeaderErrorDoesNotSuggestSkipBad) {
  const std::string file = write("h.csv", "cell_id,cycle,qd_ah,volts\na,1,1.0,3.3\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("h.csv:1: unknown column 'volts' (column 4)"), std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("--skip-bad"), std::string::npos) << run.err;
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, FileOfAnUnknownLayoutIsToldWhatWasExpected) {
  const std::string file = write("B0005.csv",
                                 ",cycle,ambient_temperature,datetime,capacity\n"
                                 "0,1,24,2008-04-02 15:25:41,1.856487\n");
  const RunResult run = import(file + " --rated-capacity-ah 2");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("B0005.csv:1: column 1 has no name"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("cyclecast (required columns: cell_id, cycle, qd_ah) and "
                         "batteryarchive (required columns: Cycle_Index, Discharge_Capacity (Ah))"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("--skip-bad"), std::string::npos) << run.err;
}

TEST_F(ImportCli, CellIdTheApiWouldRefuseIsRefused) {
  const std::string file = write("slash.csv", "cell_id,cycle,qd_ah\nrig/b2c7,1,1.0\n");
  const RunResult run = import(file + " --rated-capacity-ah 1.1");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("slash.csv:2: column 'cell_id' (1): cell id contains a character "
                         "outside [A-Za-z0-9_.-] (byte 47)"),
            std::string::npos)
      << run.err;
  const std::string ba = write("a_cycle_data.csv", "Cycle_Index,Discharge_Capacity (Ah)\n1,1.0\n");
  EXPECT_EQ(import(ba + " --rated-capacity-ah 1.1 --cell ../etc").exit_code, 3);
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, AFailedImportKeepsAnExistingDatabase) {
  ASSERT_EQ(import(write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\n") + " --rated-capacity-ah 1.1")
                .exit_code,
            0);
  const RunResult run =
      import(write("bad.csv", "cell_id,cycle,qd_ah\na,2,-1\n") + " --rated-capacity-ah 1.1");
  EXPECT_EQ(run.exit_code, 3);
  ASSERT_TRUE(std::filesystem::exists(db_path()));
  EXPECT_EQ(counts().cycles, 1);
}

// The disk fills up after some batches were committed: the database this import created goes
// again, with its WAL and shared-memory files, rather than staying as a partial import.
TEST_F(ImportCli, AWriteFailingPartWayRemovesTheDatabaseItCreated) {
  const std::string file = many_rows(20000);
  const RunResult run =
      import_with_file_size_limit(256, file + " --rated-capacity-ah 1.1 --batch-rows 500");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("writing rows failed after "), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("after 0 rows"), std::string::npos) << "no batch was committed first";
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, AWriteFailingPartWayKeepsAnExistingDatabase) {
  ASSERT_EQ(import(write("a.csv", "cell_id,cycle,qd_ah\nb,1,1.0\n") + " --rated-capacity-ah 1.1")
                .exit_code,
            0);
  const std::string file = many_rows(20000);
  const RunResult run =
      import_with_file_size_limit(256, file + " --rated-capacity-ah 1.1 --batch-rows 500");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  ASSERT_TRUE(std::filesystem::exists(db_path()));
  auto db = storage::Database::open(db_path());
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto cycles = db->cycles_of("b");
  ASSERT_TRUE(cycles.ok());
  EXPECT_EQ(cycles->size(), 1U);
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

// An endless file without a line break (/dev/zero) once ran the reader out of memory
// (std::bad_alloc); any line over the maximum ends the import naming the limit, before a
// database exists.
TEST_F(ImportCli, DevZeroEndsNamingTheMaximumLineLengthAndLeavesNoDatabase) {
  const RunResult run = import("/dev/zero --rated-capacity-ah 1");
  EXPECT_EQ(run.exit_code, 3) << run.err;  // input refused
  EXPECT_NE(run.err.find("/dev/zero: line 1 is longer than the maximum line length of 1048576 "
                         "bytes"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("bad_alloc"), std::string::npos) << run.err;
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, AGiganticLineAfterGoodOnesIsRefusedNamingItsLine) {
  const std::string file = write("long.csv", "cell_id,cycle,qd_ah\nb7,1,1.0\nb7,2," +
                                                 std::string(2 << 20, '9') + "\nb7,3,1.0\n");
  const RunResult run = import(file + " --rated-capacity-ah 1");
  EXPECT_EQ(run.exit_code, 3) << run.err;  // input refused
  EXPECT_NE(run.err.find("long.csv: line 3 is longer than the maximum line length of 1048576 "
                         "bytes (1 MiB)"),
            std::string::npos)
      << run.err;
  EXPECT_FALSE(any_database_file());
}

TEST_F(ImportCli, ALineJustUnderTheMaximumIsReadAsAField) {
  // Not refused for its length: the value itself is what is wrong with it.
  const std::string file =
      write("wide.csv", "cell_id,cycle,qd_ah\nb7,1," + std::string((1 << 20) - 10, '9') + "\n");
  const RunResult run = import(file + " --rated-capacity-ah 1");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.err.find("maximum line length"), std::string::npos) << run.err.substr(0, 500);
}

}  // namespace
}  // namespace cyclecast
