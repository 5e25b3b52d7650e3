// The PostgreSQL backend's own edges: its schema and migrations, the same refusals as SQLite's
// (a newer schema, a foreign database), connection errors, and the clear kUnsupported of what is
// not on PostgreSQL yet (docs/storage.md, "Backends").
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "backend_test_util.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"
#include "storage_test_util.h"

namespace cyclecast::storage {
namespace {

using testing::BackendTest;
using testing::make_cell;

class PgSchemaTest : public BackendTest {};

INSTANTIATE_TEST_SUITE_P(Backends, PgSchemaTest,
                         ::testing::Values(testing::TestBackend::kPostgresql),
                         testing::backend_name);

TEST_P(PgSchemaTest, NewDatabaseIsMigratedOnceAndReopens) {
  {
    Result<Database> db = open_database();
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ(db->backend(), Database::Backend::kPostgresql);
    EXPECT_GE(db->schema_version(), 1);
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  }
  const std::int64_t migrations = raw_count("SELECT count(*) FROM schema_version");
  Result<Database> again = open_database();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(raw_count("SELECT count(*) FROM schema_version"), migrations);
  EXPECT_TRUE(again->find_cell("c1")->has_value()) << "reopening keeps what was stored";
}

TEST_P(PgSchemaTest, NewerSchemaIsRefused) {
  ASSERT_TRUE(open_database().ok());
  raw_sql("", "INSERT INTO schema_version VALUES (999, 'from the future', 0)");
  Result<Database> db = open_database();
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(db.error().message.find("schema version 999"), std::string::npos) << db.error().message;
}

TEST_P(PgSchemaTest, ForeignDatabaseIsRefusedAndLeftAlone) {
  raw_sql("", "CREATE TABLE invoices (id integer PRIMARY KEY)");
  Result<Database> db = open_database();
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(db.error().message.find("not a cyclecast database"), std::string::npos)
      << db.error().message;
  EXPECT_EQ(raw_count("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                      "current_schema()"),
            1);
}

TEST_P(PgSchemaTest, ReadOnlyOpenDoesNotMigrate) {
  OpenOptions options;
  options.read_only = true;
  Result<Database> db = open_database(options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnsupported);
  ASSERT_TRUE(open_database().ok());
  Result<Database> reader = open_database(options);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_FALSE(reader->upsert_cell(make_cell("c1")).ok()) << "a read-only handle cannot write";
}

TEST_P(PgSchemaTest, ConcurrentOpensMigrateOnce) {
  // Replicas starting together: the advisory lock lets one migrate, the others see it done.
  // Several rounds on fresh databases, so that an open racing another's commit (which once read
  // a half-seen schema as a foreign one) shows here rather than one CI run in five.
  constexpr int kRounds = 8;
  constexpr int kReplicas = 4;
  for (int round = 0; round < kRounds; ++round) {
    const std::string url = round == 0 ? location()
                            : on_postgresql()
                                ? cyclecast::testing::PgServer::shared().create_database()
                                : (dir_ / ("round" + std::to_string(round) + ".db")).string();
    std::vector<Result<Database>> opened;
    opened.reserve(kReplicas);
    for (int i = 0; i < kReplicas; ++i)
      opened.push_back(make_error(ErrorCode::kIo, "not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kReplicas; ++i) {
      threads.emplace_back(
          [&, i] { opened[static_cast<std::size_t>(i)] = Database::open_url(url); });
    }
    for (std::thread& thread : threads)
      thread.join();
    for (const Result<Database>& db : opened)
      ASSERT_TRUE(db.ok()) << "round " << round << ": " << db.error().message;
  }
  EXPECT_EQ(raw_count("SELECT count(*) FROM schema_version WHERE version = 1"), 1);
}

TEST_P(PgSchemaTest, UnreachableServerIsAnErrorThatHidesThePassword) {
  Result<Database> db = Database::open_url("postgresql://someone:secret@/cyclecast?host=" +
                                           (dir_ / "no-server").string());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kIo);
  EXPECT_EQ(db.error().message.find("secret"), std::string::npos) << db.error().message;
  EXPECT_NE(db.error().message.find("someone:***@"), std::string::npos) << db.error().message;
}

TEST_P(PgSchemaTest, WhatIsNotOnPostgresqlYetSaysSo) {
  Result<Database> db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto expect_unsupported = [](const Error& error) {
    EXPECT_EQ(error.code, ErrorCode::kUnsupported);
    EXPECT_NE(error.message.find("not available on the PostgreSQL storage backend yet"),
              std::string::npos)
        << error.message;
  };
  expect_unsupported(db->check().error());
  expect_unsupported(db->backup_to(dir_ / "copy.db").error());
  OpenOptions limited;
  limited.max_size_bytes = 1 << 20;
  expect_unsupported(open_database(limited).error());
}

TEST(OpenUrl, APathOpensSqlite) {
  cyclecast::testing::TempDir dir;
  EXPECT_FALSE(is_postgresql_url((dir / "x.db").string()));
  EXPECT_TRUE(is_postgresql_url("postgres://h/db"));
  Result<Database> db = Database::open_url((dir / "x.db").string());
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->backend(), Database::Backend::kSqlite);
}

}  // namespace
}  // namespace cyclecast::storage
