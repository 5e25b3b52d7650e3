// The daemon's checkpointer against a reader that pins the WAL: while the reader's transaction
// lasts, the checkpoints cannot finish and status() says so; once it ends, the WAL is cut back
// below storage::kWalSizeLimitBytes. Driven by conditions, not by time.
#include "checkpointer.h"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <vector>

#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::daemon {
namespace {

using namespace std::chrono_literals;
using cyclecast::testing::eventually;

std::vector<storage::CycleRecord> records(std::int64_t first, std::int64_t count) {
  std::vector<storage::CycleRecord> out(static_cast<std::size_t>(count));
  for (auto& r : out) {
    r.cell_id = "c1";
    r.cycle = first++;
    r.discharge_capacity_ah = 1.0;
    r.source = "test";
  }
  return out;
}

TEST(Checkpointer, ReportsAReaderBlockingItAndTruncatesTheWalOnceTheReaderEnds) {
  testing::TempDir dir;
  auto db = storage::Database::open(dir / "w.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  storage::CellInfo cell;
  cell.cell_id = "c1";
  cell.rig_id = "rig-1";
  cell.rated_capacity_ah = 1.1;
  ASSERT_TRUE(db->upsert_cell(cell).ok());
  Checkpointer checkpointer(dir / "w.db", 5ms, /*alert_after=*/0ms);
  ASSERT_TRUE(checkpointer.running());

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "w.db").c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM cycles;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::int64_t next = 1;
  for (int i = 0; i < 20000 && db->wal_bytes() < 2 * storage::kWalSizeLimitBytes; ++i) {
    ASSERT_TRUE(db->write_cycles(records(next, 20)).ok());
    next += 20;
  }
  ASSERT_GE(db->wal_bytes(), 2 * storage::kWalSizeLimitBytes);
  EXPECT_TRUE(eventually(
      [&] {
        const WalStatus s = checkpointer.status();
        return s.blocked_too_long && s.wal_bytes >= 2 * storage::kWalSizeLimitBytes;
      },
      30s));

  ASSERT_EQ(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(reader);
  EXPECT_TRUE(eventually(
      [&] {
        const WalStatus s = checkpointer.status();
        return !s.blocked_too_long && s.blocked_ms == 0 && s.truncations >= 1 &&
               s.wal_bytes <= storage::kWalSizeLimitBytes;
      },
      30s));
  EXPECT_LE(db->wal_bytes(), storage::kWalSizeLimitBytes);
  EXPECT_EQ(db->counts()->cycles, next - 1);
}

}  // namespace
}  // namespace cyclecast::daemon
