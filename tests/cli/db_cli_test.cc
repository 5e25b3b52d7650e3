// Runs the built `cyclecast db ...` commands as an operator would, against databases made with
// the storage API, and checks their output and exit codes.
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
namespace storage = cyclecast::storage;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;

struct DbRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `cyclecast --db <db> <args>` with stdout and stderr captured in files of `dir`.
DbRun run_db(const TempDir& dir, const fs::path& db, const std::string& args) {
  const fs::path out = dir / "db-stdout.txt";
  const fs::path err = dir / "db-stderr.txt";
  const std::string command = std::string("'") + CYCLECAST_BINARY_DIR + "/bin/cyclecast' --db '" +
                              db.string() + "' " + args + " >'" + out.string() + "' 2>'" +
                              err.string() + "'";
  const int status = std::system(command.c_str());
  DbRun result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

storage::CycleRecord cycle_of(const std::string& cell_id, std::int64_t cycle) {
  storage::CycleRecord record;
  record.cell_id = cell_id;
  record.cycle = cycle;
  record.discharge_capacity_ah = 1.05;
  record.source = "db_cli_test";
  return record;
}

// A database with two cells, 12 cycles of c1 and 3 of c2, and one rejected record.
void make_database(const fs::path& path) {
  auto db = storage::Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  for (const char* id : {"c1", "c2"}) {
    storage::CellInfo cell;
    cell.cell_id = id;
    cell.rig_id = "rig-7";
    cell.rated_capacity_ah = 1.1;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
  }
  std::vector<storage::CycleRecord> records;
  for (std::int64_t cycle = 1; cycle <= 12; ++cycle)
    records.push_back(cycle_of("c1", cycle));
  for (std::int64_t cycle = 4; cycle <= 6; ++cycle)
    records.push_back(cycle_of("c2", cycle));
  records.push_back(cycle_of("stranger", 1));
  ASSERT_TRUE(db->write_cycles(records).ok());
}

TEST(DbCheckCli, PrintsIntegrityVersionAndCounts) {
  TempDir dir;
  make_database(dir / "a.db");
  const DbRun run = run_db(dir, dir / "a.db", "db check");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("integrity:      ok"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("schema version: " + std::to_string(storage::kSchemaVersion)),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("cycles                  15"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("rejected                 1"), std::string::npos) << run.out;
}

TEST(DbCheckCli, JsonOutputHasTheSameFacts) {
  TempDir dir;
  make_database(dir / "a.db");
  const DbRun run = run_db(dir, dir / "a.db", "db check --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report.at("integrity_ok"), true);
  EXPECT_EQ(report.at("integrity_messages"), nlohmann::json::array({"ok"}));
  EXPECT_EQ(report.at("schema_version"), storage::kSchemaVersion);
  EXPECT_EQ(report.at("counts").at("cells"), 2);
  EXPECT_EQ(report.at("counts").at("cycles"), 15);
  EXPECT_EQ(report.at("counts").at("rejected"), 1);
  EXPECT_EQ(report.at("counts").at("rigs"), 1);
  EXPECT_EQ(report.at("database"), (dir / "a.db").string());
}

TEST(DbCheckCli, MissingDatabaseFailsNamingTheFileAndCreatesNothing) {
  TempDir dir;
  const DbRun run = run_db(dir, dir / "absent.db", "db check");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find((dir / "absent.db").string()), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("does not exist"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(dir / "absent.db"));
}

TEST(DbCheckCli, FileThatIsNotADatabaseFails) {
  TempDir dir;
  cyclecast::testing::write_file(dir / "notes.txt", std::string(4096, 'n'));
  const DbRun run = run_db(dir, dir / "notes.txt", "db check");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("not an SQLite database"), std::string::npos) << run.err;
}

TEST(DbCheckCli, CorruptedPagesFailTheCheck) {
  TempDir dir;
  const fs::path path = dir / "a.db";
  {
    auto db = storage::Database::open(path);
    ASSERT_TRUE(db.ok());
    storage::CellInfo cell;
    cell.cell_id = "c1";
    cell.rated_capacity_ah = 1.1;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
    std::vector<storage::CycleRecord> records;
    for (std::int64_t cycle = 1; cycle <= 3000; ++cycle)
      records.push_back(cycle_of("c1", cycle));
    ASSERT_TRUE(db->write_cycles(records).ok());
    // Closing the last connection checkpoints the WAL into the main file.
  }
  ASSERT_FALSE(fs::exists(dir / "a.db-wal"));
  // Overwrite the middle of the file (cycle pages) with garbage, keeping the header intact.
  std::string bytes = read_file(path);
  ASSERT_GT(bytes.size(), 64u * 1024u);
  for (std::size_t i = bytes.size() / 2; i < bytes.size() / 2 + 8192; ++i)
    bytes[i] = '\x5a';
  cyclecast::testing::write_file(path, bytes);

  const DbRun run = run_db(dir, path, "db check");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.out.find("integrity:      FAILED"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("integrity check of"), std::string::npos) << run.err;
}

TEST(DbBackupCli, WritesACopyThatChecksOk) {
  TempDir dir;
  make_database(dir / "a.db");
  const DbRun run = run_db(dir, dir / "a.db", "db backup '" + (dir / "copy.db").string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("copy.db"), std::string::npos);
  const DbRun check = run_db(dir, dir / "copy.db", "db check --json");
  ASSERT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(nlohmann::json::parse(check.out).at("counts").at("cycles"), 15);
}

TEST(DbBackupCli, RefusesToOverwriteAndExitsOne) {
  TempDir dir;
  make_database(dir / "a.db");
  cyclecast::testing::write_file(dir / "copy.db", "do not touch");
  const DbRun run = run_db(dir, dir / "a.db", "db backup '" + (dir / "copy.db").string() + "'");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("already exists"), std::string::npos) << run.err;
  EXPECT_EQ(read_file(dir / "copy.db"), "do not touch");
}

TEST(DbBackupCli, NeedsADestination) {
  TempDir dir;
  make_database(dir / "a.db");
  const DbRun run = run_db(dir, dir / "a.db", "db backup");
  EXPECT_EQ(run.exit_code, 2);
}

TEST(DbCellsCli, ListsCellsWithCycleCounts) {
  TempDir dir;
  make_database(dir / "a.db");
  const DbRun run = run_db(dir, dir / "a.db", "db cells --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json cells = nlohmann::json::parse(run.out);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].at("cell_id"), "c1");
  EXPECT_EQ(cells[0].at("cycles"), 12);
  EXPECT_EQ(cells[1].at("cell_id"), "c2");
  EXPECT_EQ(cells[1].at("first_cycle"), 4);
  EXPECT_EQ(cells[1].at("last_cycle"), 6);
  EXPECT_EQ(cells[1].at("rig_id"), "rig-7");

  const DbRun table = run_db(dir, dir / "a.db", "db cells");
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_EQ(table.out,
            "CELL  RIG    CYCLES  FIRST  LAST\n"
            "c1    rig-7  12      1      12\n"
            "c2    rig-7  3       4      6\n");
}

}  // namespace
