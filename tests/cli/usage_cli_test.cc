// What `cyclecast` says to a command line it cannot run: the command that is missing or unknown
// with the choices, the option that is in the wrong place with where it belongs; and the tables
// that stay aligned whatever the length of an id.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_run.h"
#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace {

namespace storage = cyclecast::storage;
using cyclecast::testing::CliRun;
using cyclecast::testing::TempDir;

CliRun run(const TempDir& dir, const std::string& args) {
  return cyclecast::testing::run_cyclecast(dir.path(), args, "env -u CYCLECAST_DB ");
}

// Cells "c1" and a 64-character id (the longest the API takes), with a few cycles each.
void make_database(const std::filesystem::path& path, const std::string& long_id) {
  auto db = storage::Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::vector<storage::CycleRecord> records;
  for (const std::string& id : {std::string("c1"), long_id}) {
    storage::CellInfo cell;
    cell.cell_id = id;
    cell.rig_id = "rig-7";
    cell.rated_capacity_ah = 1.1;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
    for (std::int64_t cycle = 1; cycle <= 3; ++cycle) {
      storage::CycleRecord record;
      record.cell_id = id;
      record.cycle = cycle;
      record.discharge_capacity_ah = 1.05;
      record.source = "usage_cli_test";
      records.push_back(record);
    }
  }
  ASSERT_TRUE(db->write_cycles(records).ok());
}

TEST(UsageCli, DbAfterTheCommandIsAcceptedLikeBeforeIt) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(make_database(dir / "a.db", "c2"));
  const std::string db = "'" + (dir / "a.db").string() + "'";
  const CliRun after = run(dir, "db cells --db " + db);
  ASSERT_EQ(after.exit_code, 0) << after.err;
  const CliRun before = run(dir, "--db " + db + " db cells");
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(after.out, before.out);
  EXPECT_NE(after.out.find("c2"), std::string::npos) << after.out;
  EXPECT_EQ(run(dir, "db check --db " + db).exit_code, 0);
}

TEST(UsageCli, AnOptionOfTheCommandGivenBeforeItSaysWhereItGoes) {
  TempDir dir;
  const CliRun misplaced = run(dir, "--json cells");
  EXPECT_EQ(misplaced.exit_code, 2);
  EXPECT_EQ(misplaced.err,
            "cyclecast: --json is an option of cyclecast cells: put it after the command "
            "(cyclecast cells ... --json)\n");
}

TEST(UsageCli, AnOptionOfAnotherCommandNamesTheCommandsThatTakeIt) {
  TempDir dir;
  const CliRun other = run(dir, "cells --why x");
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("cyclecast cells: --why is not an option of cyclecast cells; it is "
                           "one of cyclecast retrain, "),
            std::string::npos)
      << other.err;
  // --db belongs to the main command: it goes before the command that does not take it.
  const CliRun db = run(dir, "cells --db x.db");
  EXPECT_EQ(db.exit_code, 2);
  EXPECT_NE(db.err.find("--db is not an option of cyclecast cells; it is one of cyclecast, "),
            std::string::npos)
      << db.err;
  EXPECT_NE(db.err.find("goes before the command (cyclecast --db VALUE cells ...)"),
            std::string::npos)
      << db.err;
  const CliRun unknown = run(dir, "cells --whyy x");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err, "cyclecast cells: unknown option --whyy (see cyclecast cells --help)\n");
  const CliRun extra = run(dir, "cells c1");
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_EQ(extra.err, "cyclecast cells: unexpected argument 'c1' (see cyclecast cells --help)\n");
}

TEST(UsageCli, AMissingOrUnknownCommandListsTheChoices) {
  TempDir dir;
  const CliRun missing = run(dir, "models");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err,
            "cyclecast models: a command is needed; one of: list, show, pull, promote, rollback "
            "(see cyclecast models --help)\n");
  const CliRun unknown = run(dir, "models lst");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err,
            "cyclecast models: unknown command 'lst'; one of: list, show, pull, promote, rollback "
            "(see cyclecast models --help)\n");
  const CliRun top = run(dir, "statsu");
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_EQ(top.err.rfind("cyclecast: unknown command 'statsu'; one of: db, import, ", 0), 0u)
      << top.err;
  const CliRun nothing = run(dir, "");
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_EQ(nothing.err.rfind("cyclecast: a command is needed; one of: db, ", 0), 0u)
      << nothing.err;
}

TEST(UsageCli, AMissingArgumentNamesItsCommand) {
  TempDir dir;
  const CliRun missing = run(dir, "forecast");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "cyclecast forecast: cell is required (see cyclecast forecast --help)\n");
}

TEST(UsageCli, DbCellsStaysAlignedWithLongIds) {
  TempDir dir;
  const std::string long_id(64, 'x');
  ASSERT_NO_FATAL_FAILURE(make_database(dir / "a.db", long_id));
  const CliRun table = run(dir, "--db '" + (dir / "a.db").string() + "' db cells");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::string pad(64 - 4 + 2, ' ');
  EXPECT_EQ(table.out, "CELL" + pad + "RIG    CYCLES  FIRST  LAST\n" + "c1" + std::string(64, ' ') +
                           "rig-7  3       1      3\n" + long_id + "  rig-7  3       1      3\n");
}

}  // namespace
