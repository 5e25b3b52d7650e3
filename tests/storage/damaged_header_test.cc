// A database whose header is damaged is refused with what to do next (restore the latest backup,
// or salvage with .recover; docs/storage.md, "Check and backup"), not only with SQLite's words.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;

void overwrite(const std::filesystem::path& path, std::streamoff offset, const std::string& bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(offset);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(DamagedHeader, RefusalSaysHowToRecover) {
  TempDir dir;
  const auto path = dir / "cyclecast.db";
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    CellInfo cell;
    cell.cell_id = "c1";
    cell.rated_capacity_ah = 1.1;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
  }
  overwrite(path, 0, std::string(16, 'x'));  // the "SQLite format 3" magic
  auto db = Database::open(path);
  ASSERT_FALSE(db.ok());
  const std::string& message = db.error().message;
  EXPECT_NE(message.find("header is damaged"), std::string::npos) << message;
  EXPECT_NE(message.find("restore the latest `cyclecast db backup`"), std::string::npos) << message;
  EXPECT_NE(message.find(".recover"), std::string::npos) << message;
}

}  // namespace
}  // namespace cyclecast::storage
