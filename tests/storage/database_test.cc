// Opening, migrating, cells, counts, check and backup of the cyclecast database.
#include "cyclecast/storage/database.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::make_cell;
using testing::make_cycles;
using testing::raw_exec;
using testing::raw_int;

TEST(DatabaseOpen, NewFileGetsCurrentSchemaVersion) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "new.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->schema_version(), kSchemaVersion);
  EXPECT_EQ(raw_int(dir / "new.db", "SELECT max(version) FROM schema_version"), kSchemaVersion);
}

TEST(DatabaseOpen, UsesWalAndMarksTheFileAsCyclecast) {
  TempDir dir;
  { ASSERT_TRUE(Database::open(dir / "a.db").ok()); }
  EXPECT_EQ(raw_int(dir / "a.db", "PRAGMA application_id"), 0x6379636C);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "a.db").c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST(DatabaseOpen, ReopeningKeepsVersionAndData) {
  TempDir dir;
  {
    Result<Database> db = Database::open(dir / "a.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  }
  Result<Database> again = Database::open(dir / "a.db");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->schema_version(), kSchemaVersion);
  EXPECT_EQ(raw_int(dir / "a.db", "SELECT count(*) FROM schema_version"), kSchemaVersion);
  Result<std::optional<CellInfo>> cell = again->find_cell("c1");
  ASSERT_TRUE(cell.ok());
  EXPECT_TRUE(cell->has_value());
}

TEST(DatabaseOpen, RefusesNewerSchemaVersionNamingBothVersions) {
  TempDir dir;
  { ASSERT_TRUE(Database::open(dir / "a.db").ok()); }
  raw_exec(dir / "a.db",
           "INSERT INTO schema_version(version, description, applied_at_ms) "
           "VALUES (" +
               std::to_string(kSchemaVersion + 41) + ", 'from the future', 0)");
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(db.error().message.find("schema version " + std::to_string(kSchemaVersion + 41)),
            std::string::npos)
      << db.error().message;
  EXPECT_NE(db.error().message.find("version " + std::to_string(kSchemaVersion) + " "),
            std::string::npos)
      << db.error().message;
}

TEST(DatabaseOpen, RefusesAFileThatIsNotSqlite) {
  TempDir dir;
  cyclecast::testing::write_file(dir / "garbage.db",
                                 std::string(8192, 'x') + "this is not a database");
  Result<Database> db = Database::open(dir / "garbage.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(db.error().message.find("is not an SQLite database"), std::string::npos)
      << db.error().message;
  EXPECT_NE(db.error().message.find("garbage.db"), std::string::npos) << db.error().message;
}

TEST(DatabaseOpen, RefusesAnSqliteDatabaseOfAnotherApplication) {
  TempDir dir;
  raw_exec(dir / "other.db", "CREATE TABLE songs(title TEXT)");
  Result<Database> db = Database::open(dir / "other.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(db.error().message.find("not a cyclecast database"), std::string::npos)
      << db.error().message;
  // Refusing must not have touched the other application's file.
  EXPECT_EQ(raw_int(dir / "other.db", "SELECT count(*) FROM sqlite_schema"), 1);
}

TEST(DatabaseOpen, WithoutCreateRefusesAMissingFileAndCreatesNothing) {
  TempDir dir;
  OpenOptions options;
  options.create_if_missing = false;
  Result<Database> db = Database::open(dir / "missing.db", options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kNotFound);
  EXPECT_NE(db.error().message.find("missing.db"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "missing.db"));
}

TEST(DatabaseOpen, EmptyFileIsInitialised) {
  TempDir dir;
  cyclecast::testing::write_file(dir / "empty.db", "");
  Result<Database> db = Database::open(dir / "empty.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->schema_version(), kSchemaVersion);
}

TEST(Cells, UpsertCellCreatesRigAndReadsBack) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("b2c7")).ok());
  Result<std::optional<CellInfo>> found = db->find_cell("b2c7");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  const CellInfo& cell = **found;
  EXPECT_EQ(cell.rig_id, "rig-a");
  EXPECT_EQ(cell.chemistry, "LFP/graphite");
  EXPECT_DOUBLE_EQ(cell.rated_capacity_ah, 1.1);
  EXPECT_EQ(cell.charge_policy, "5.4C(40%)-3.6C");
  EXPECT_EQ(cell.metadata_json, R"({"batch":"test"})");
  EXPECT_EQ(db->counts()->rigs, 1);
}

TEST(Cells, UpsertCellUpdatesMetadataOfAnExistingCell) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  CellInfo changed = make_cell("c1");
  changed.rig_id = "rig-b";
  changed.charge_policy = "3.6C(80%)-3.6C";
  changed.rated_capacity_ah = 1.05;
  changed.metadata_json = R"({"batch":"test","note":"moved"})";
  ASSERT_TRUE(db->upsert_cell(changed).ok());
  Result<std::optional<CellInfo>> found = db->find_cell("c1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->rig_id, "rig-b");
  EXPECT_EQ((*found)->charge_policy, "3.6C(80%)-3.6C");
  EXPECT_DOUBLE_EQ((*found)->rated_capacity_ah, 1.05);
  EXPECT_EQ((*found)->metadata_json, R"({"batch":"test","note":"moved"})");
  EXPECT_EQ(db->counts()->cells, 1);
}

TEST(Cells, RefusesMetadataThatIsNotAJsonObject) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  CellInfo cell = make_cell("c1");
  cell.metadata_json = "[1, 2";
  Result<void> written = db->upsert_cell(cell);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(db->counts()->cells, 0);
  EXPECT_EQ(db->counts()->rigs, 0) << "the rig of a refused cell must be rolled back too";
}

TEST(Cells, RefusesNonPositiveRatedCapacity) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  CellInfo cell = make_cell("c1");
  cell.rated_capacity_ah = 0.0;
  Result<void> written = db->upsert_cell(cell);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kInvalidArgument);
}

TEST(Cells, UpsertCellsStoresAllOrNone) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  std::vector<CellInfo> cells{make_cell("c1"), make_cell("c2"), make_cell("c3")};
  cells[2].metadata_json = "not json";  // refused by SQLite half way through the batch
  Result<void> written = db->upsert_cells(cells);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(db->counts()->cells, 0) << "cells before the refused one must be rolled back";

  cells[2].metadata_json = "{}";
  ASSERT_TRUE(db->upsert_cells(cells).ok());
  EXPECT_EQ(db->counts()->cells, 3);
}

TEST(Checkpoint, BackfillsTheWalWhileAnotherConnectionReads) {
  TempDir dir;
  Result<Database> writer = Database::open(dir / "a.db");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->upsert_cell(make_cell("c1")).ok());
  ASSERT_TRUE(writer->write_cycles(make_cycles("c1", 1, 500)).ok());
  OpenOptions existing;
  existing.create_if_missing = false;
  Result<Database> checkpointer = Database::open(dir / "a.db", existing);
  ASSERT_TRUE(checkpointer.ok());
  ASSERT_TRUE(checkpointer->checkpoint().ok());
  EXPECT_EQ(writer->counts()->cycles, 500);
  EXPECT_TRUE(checkpointer->check()->integrity_ok);
}

TEST(Cells, FindCellOfUnknownIdIsEmpty) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  Result<std::optional<CellInfo>> found = db->find_cell("nope");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST(Cells, ListsCellsByIdWithCycleCountsAndRange) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c2")).ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  const auto records = make_cycles("c2", 5, 10);
  ASSERT_TRUE(db->write_cycles(records).ok());
  Result<std::vector<CellSummary>> cells = db->cells();
  ASSERT_TRUE(cells.ok());
  ASSERT_EQ(cells->size(), 2u);
  EXPECT_EQ((*cells)[0].info.cell_id, "c1");
  EXPECT_EQ((*cells)[0].cycles, 0);
  EXPECT_EQ((*cells)[1].info.cell_id, "c2");
  EXPECT_EQ((*cells)[1].cycles, 10);
  EXPECT_EQ((*cells)[1].first_cycle, 5);
  EXPECT_EQ((*cells)[1].last_cycle, 14);
}

TEST(Check, ReportsIntegrityVersionAndCounts) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c2")).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("c1", 1, 7)).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("ghost", 1, 2)).ok());
  Result<CheckReport> report = db->check();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->integrity_ok);
  EXPECT_EQ(report->integrity_messages, std::vector<std::string>{"ok"});
  EXPECT_EQ(report->schema_version, kSchemaVersion);
  EXPECT_EQ(report->counts.rigs, 1);
  EXPECT_EQ(report->counts.cells, 2);
  EXPECT_EQ(report->counts.cycles, 7);
  EXPECT_EQ(report->counts.rejected, 2);
  EXPECT_EQ(report->counts.forecasts, 0);
  EXPECT_EQ(report->counts.models, 0);
  EXPECT_EQ(report->counts.training_runs, 0);
  EXPECT_TRUE(report->counts_valid);
}

TEST(Check, ReportsADanglingForeignKeyAsAProblem) {
  TempDir dir;
  {
    Result<Database> db = Database::open(dir / "a.db");
    ASSERT_TRUE(db.ok());
  }
  // Foreign keys are off on this raw connection, as in a file edited by hand.
  raw_exec(dir / "a.db",
           "INSERT INTO forecasts(cell, at_cycle, model_version, origin, soh_f32le, "
           "created_at_ms) VALUES (99, 1, 'm1', 'host', x'0000803f', 0)");
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  Result<CheckReport> report = db->check();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->integrity_ok);
  ASSERT_EQ(report->integrity_messages.size(), 2u);
  EXPECT_NE(report->integrity_messages[1].find("forecasts"), std::string::npos);
}

TEST(Check, ReportsDamagedPagesInTheReportNotAsAnError) {
  TempDir dir;
  const auto path = dir / "a.db";
  {
    Result<Database> db = Database::open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
    ASSERT_TRUE(db->write_cycles(make_cycles("c1", 1, 3000)).ok());
  }
  // The last connection closed checkpointed the WAL into the file; damage its middle pages.
  ASSERT_GT(cyclecast::testing::damage_middle(path), 64u * 1024u);

  Result<Database> db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  Result<CheckReport> report = db->check();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_FALSE(report->integrity_ok);
  ASSERT_FALSE(report->integrity_messages.empty());
  EXPECT_NE(report->integrity_messages.front(), "ok");
  EXPECT_EQ(report->schema_version, kSchemaVersion);
}

TEST(Backup, CopyHasSameCountsAndPassesIntegrity) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("c1", 1, 250)).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("ghost", 1, 3)).ok());
  const Result<void> backed_up = db->backup_to(dir / "copy.db");
  ASSERT_TRUE(backed_up.ok()) << backed_up.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir / "copy.db.partial"));

  Result<Database> copy = Database::open(dir / "copy.db");
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  Result<CheckReport> original_report = db->check();
  Result<CheckReport> copy_report = copy->check();
  ASSERT_TRUE(original_report.ok() && copy_report.ok());
  EXPECT_TRUE(copy_report->integrity_ok);
  EXPECT_EQ(copy_report->schema_version, kSchemaVersion);
  EXPECT_EQ(copy_report->counts.cycles, 250);
  EXPECT_EQ(copy_report->counts.rejected, 3);
  EXPECT_EQ(copy_report->counts.cells, original_report->counts.cells);
  EXPECT_EQ(copy->cycles_of("c1")->back().discharge_capacity_ah,
            db->cycles_of("c1")->back().discharge_capacity_ah);
}

TEST(Backup, RefusesToOverwriteAnExistingFile) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  cyclecast::testing::write_file(dir / "precious", "keep me");
  Result<void> backed_up = db->backup_to(dir / "precious");
  ASSERT_FALSE(backed_up.ok());
  EXPECT_EQ(backed_up.error().code, ErrorCode::kConflict);
  EXPECT_EQ(cyclecast::testing::read_file(dir / "precious"), "keep me");
}

TEST(Backup, FailsCleanlyIntoAMissingDirectory) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  Result<void> backed_up = db->backup_to(dir / "no-such-dir" / "copy.db");
  ASSERT_FALSE(backed_up.ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "no-such-dir"));
}

}  // namespace
}  // namespace cyclecast::storage
