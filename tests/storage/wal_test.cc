// The WAL's bound (docs/storage.md, "The WAL and its bound"): a reader that holds an old
// snapshot keeps the WAL growing, and once it ends the WAL shrinks back below
// kWalSizeLimitBytes, by a TRUNCATE checkpoint or at the next write after a complete one.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <cstdint>

#include "cyclecast/storage/database.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::make_cell;
using testing::make_cycles;

// A second connection inside a read transaction: its snapshot pins the WAL until end().
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN; SELECT count(*) FROM cycles;", nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  void end() { EXPECT_EQ(sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK); }
  ~Reader() { sqlite3_close(db_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

 private:
  sqlite3* db_ = nullptr;
};

// Commits small batches until the WAL is `times` over the limit (bounded number of commits),
// checkpointing as the daemon's checkpointer does; the last checkpoint's stats.
CheckpointStats grow_wal(Database& db, Database& checkpointer, std::int64_t& next_cycle,
                         int times) {
  CheckpointStats last;
  for (int commit = 0; commit < 20000 && db.wal_bytes() < times * kWalSizeLimitBytes; ++commit) {
    EXPECT_TRUE(db.write_cycles(make_cycles("c1", next_cycle, 20)).ok());
    next_cycle += 20;
    auto stats = checkpointer.checkpoint(CheckpointMode::kTruncate);
    EXPECT_TRUE(stats.ok());
    if (stats.ok()) last = *stats;
  }
  return last;
}

struct Databases {
  TempDir dir;
  Result<Database> writer = Database::open(dir / "w.db");
  Result<Database> checkpointer = make_error(ErrorCode::kIo, "not opened");
  std::int64_t next_cycle = 1;
  Databases() {
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE(writer->upsert_cell(make_cell("c1")).ok());
    checkpointer = Database::open(dir / "w.db");
    EXPECT_TRUE(checkpointer.ok());
  }
};

TEST(Wal, GrowsBehindAReaderAndIsTruncatedOnceItEnds) {
  Databases d;
  ASSERT_TRUE(d.writer.ok() && d.checkpointer.ok());
  Reader reader(d.dir / "w.db");
  const CheckpointStats during = grow_wal(*d.writer, *d.checkpointer, d.next_cycle, 2);
  ASSERT_GE(d.writer->wal_bytes(), 2 * kWalSizeLimitBytes);
  EXPECT_TRUE(during.blocked()) << "the reader's snapshot must hold frames back";
  EXPECT_FALSE(during.truncated);

  reader.end();
  auto after = d.checkpointer->checkpoint(CheckpointMode::kTruncate);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_TRUE(after->truncated);
  EXPECT_FALSE(after->blocked());
  EXPECT_LE(d.writer->wal_bytes(), kWalSizeLimitBytes);
  EXPECT_EQ(d.writer->counts()->cycles, d.next_cycle - 1);
}

// Without a TRUNCATE checkpoint, journal_size_limit cuts the file when the next write restarts
// the WAL after a complete (passive) checkpoint.
TEST(Wal, TheNextWriteAfterACompleteCheckpointCutsItToTheLimit) {
  Databases d;
  ASSERT_TRUE(d.writer.ok() && d.checkpointer.ok());
  {
    Reader reader(d.dir / "w.db");
    (void)grow_wal(*d.writer, *d.checkpointer, d.next_cycle, 2);
    ASSERT_GE(d.writer->wal_bytes(), 2 * kWalSizeLimitBytes);
    reader.end();
  }
  auto passive = d.checkpointer->checkpoint(CheckpointMode::kPassive);
  ASSERT_TRUE(passive.ok());
  EXPECT_FALSE(passive->blocked());
  EXPECT_FALSE(passive->truncated);
  ASSERT_TRUE(d.writer->write_cycles(make_cycles("c1", d.next_cycle, 20)).ok());
  EXPECT_LE(d.writer->wal_bytes(), kWalSizeLimitBytes);
}

}  // namespace
}  // namespace cyclecast::storage
