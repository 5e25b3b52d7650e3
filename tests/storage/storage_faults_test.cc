// Storage faults the daemon must survive: a size limit reached (as on a full disk), I/O errors on
// commit (injected through a faulty VFS), and a damaged file found by the start-up check.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cyclecast/storage/database.h"
#include "faulty_vfs.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::FaultyVfs;
using cyclecast::testing::TempDir;
using testing::make_cell;
using testing::make_cycles;

// Writes batches of 500 cycles of `cell` from cycle `first` until one fails; the failure.
Error write_until_refused(Database& db, const std::string& cell, std::int64_t& first) {
  for (int batch = 0; batch < 1000; ++batch) {
    Result<BatchResult> written = db.write_cycles(make_cycles(cell, first, 500));
    if (!written) return written.error();
    first += 500;
  }
  ADD_FAILURE() << "the size limit was never reached";
  return {ErrorCode::kIo, ""};
}

TEST(StorageFull, ASizeLimitRefusesTheBatchWholeAndRaisingItResumes) {
  TempDir dir;
  OpenOptions options;
  options.max_size_bytes = 512 * 1024;
  Result<Database> db = Database::open(dir / "a.db", options);
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  std::int64_t next = 1;
  const Error refused = write_until_refused(*db, "c1", next);
  EXPECT_EQ(refused.code, ErrorCode::kFull) << refused.message;
  EXPECT_NE(refused.message.find("full"), std::string::npos) << refused.message;
  // Nothing of the refused batch is stored; the file is still sound and readable.
  Result<std::optional<CellSummary>> cell = db->cell_summary("c1");
  ASSERT_TRUE(cell.ok() && cell->has_value());
  EXPECT_EQ((*cell)->cycles, next - 1);
  EXPECT_EQ((*cell)->last_cycle, next - 1);
  Result<std::vector<std::string>> problems = db->quick_check();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());

  ASSERT_TRUE(db->set_max_size(0).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("c1", next, 500)).ok());
  EXPECT_EQ((*db->cell_summary("c1"))->cycles, next + 499);
}

TEST(StorageIoErrors, AFailedCommitStoresNothingAndTheConnectionRecovers) {
  FaultyVfs& vfs = FaultyVfs::instance();
  TempDir dir;
  OpenOptions options;
  options.vfs = FaultyVfs::kName;
  Result<Database> db = Database::open(dir / "a.db", options);
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("c1", 1, 100)).ok());

  vfs.fail_writes(true);
  const std::uint64_t before = vfs.failures();
  Result<BatchResult> failed = db->write_cycles(make_cycles("c1", 101, 100));
  vfs.fail_writes(false);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kIo) << failed.error().message;
  EXPECT_GT(vfs.failures(), before);

  // The same batch again, as a rig resends it: all stored, once.
  Result<BatchResult> again = db->write_cycles(make_cycles("c1", 101, 100));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->inserted, 100u);
  EXPECT_EQ(again->duplicates, 0u);
  EXPECT_EQ((*db->cell_summary("c1"))->cycles, 200);
  EXPECT_TRUE(db->quick_check()->empty());
}

TEST(StorageStartCheck, QuickCheckFindsDamagedPagesAndPassesASoundFile) {
  TempDir dir;
  const auto path = dir / "a.db";
  {
    Result<Database> db = Database::open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
    ASSERT_TRUE(db->write_cycles(make_cycles("c1", 1, 3000)).ok());
    Result<std::vector<std::string>> problems = db->quick_check();
    ASSERT_TRUE(problems.ok());
    EXPECT_TRUE(problems->empty());
  }
  cyclecast::testing::damage_middle(path);
  Result<Database> db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  Result<std::vector<std::string>> problems = db->quick_check();
  ASSERT_TRUE(problems.ok()) << problems.error().message;
  EXPECT_FALSE(problems->empty());
}

TEST(Cells, SummaryOfOneCellAndOfAnUnknownOne) {
  TempDir dir;
  Result<Database> db = Database::open(dir / "a.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  ASSERT_TRUE(db->write_cycles(make_cycles("c1", 5, 10)).ok());
  Result<std::optional<CellSummary>> one = db->cell_summary("c1");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->info.rated_capacity_ah, 1.1);
  EXPECT_EQ((*one)->cycles, 10);
  EXPECT_EQ((*one)->first_cycle, 5);
  EXPECT_EQ((*one)->last_cycle, 14);
  Result<std::optional<CellSummary>> none = db->cell_summary("nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

}  // namespace
}  // namespace cyclecast::storage
