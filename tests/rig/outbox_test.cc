// The rig's outbox: records stay pending until answered, re-adding the same input keeps their
// answers, answers cover whole ranges (but only records present when they came), a version 1
// file is migrated with its answers, and a newer outbox file is refused.
#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cyclecast/rig/rig.h"
#include "temp_dir.h"

namespace cyclecast::rig {
namespace {

using protocol::AckOutcome;

storage::CellInfo cell(const std::string& id) {
  storage::CellInfo c;
  c.cell_id = id;
  c.rig_id = "rig-" + id;
  c.rated_capacity_ah = 1.1;
  c.chemistry = "LFP";
  return c;
}

std::vector<storage::CycleRecord> cycles(const std::string& cell_id, int first, int last) {
  std::vector<storage::CycleRecord> out;
  for (int c = first; c <= last; ++c) {
    storage::CycleRecord r;
    r.cell_id = cell_id;
    r.cycle = c;
    r.discharge_capacity_ah = 1.0;
    out.push_back(r);
  }
  return out;
}

TEST(RigOutbox, KeepsRecordsPendingUntilAnswered) {
  testing::TempDir dir;
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok()) << outbox.error().message;
  const storage::CellInfo cells[] = {cell("a")};
  auto added = outbox->add(cells, cycles("a", 1, 10));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, 10u);
  auto pending = outbox->pending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 10u);
  EXPECT_EQ((*pending)[0].rig_id, "rig-a");
  EXPECT_EQ((*pending)[0].payload, R"({"cycle":1,"qd_ah":1.0})");
  const Settlement answers[] = {{"a", 1, 4, AckOutcome::kStored, ""},
                                {"a", 5, 5, AckOutcome::kRejected, "why"}};
  ASSERT_TRUE(outbox->settle(answers).ok());
  auto counts = outbox->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->stored, 4);
  EXPECT_EQ(counts->rejected, 1);
  EXPECT_EQ(counts->pending, 5);
  EXPECT_EQ(outbox->pending()->front().cycle, 6);
}

TEST(RigOutbox, ReAddingTheSameInputKeepsAnswersAndPersistsAcrossReopen) {
  testing::TempDir dir;
  const storage::CellInfo cells[] = {cell("a")};
  {
    auto outbox = Outbox::open(dir / "o.db");
    ASSERT_TRUE(outbox.ok());
    ASSERT_TRUE(outbox->add(cells, cycles("a", 1, 5)).ok());
    const Settlement answers[] = {{"a", 1, 3, AckOutcome::kDuplicate, ""}};
    ASSERT_TRUE(outbox->settle(answers).ok());
  }
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok());
  auto added = outbox->add(cells, cycles("a", 1, 7));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, 2u);
  auto pending = outbox->pending();
  ASSERT_EQ(pending->size(), 4u);
  EXPECT_EQ((*pending)[0].cycle, 4);
  auto known = outbox->cells();
  ASSERT_TRUE(known.ok());
  ASSERT_EQ(known->size(), 1u);
  EXPECT_EQ((*known)[0].chemistry, "LFP");
  EXPECT_DOUBLE_EQ((*known)[0].rated_capacity_ah, 1.1);
}

TEST(RigOutbox, FirstAnswerWins) {
  testing::TempDir dir;
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok());
  const storage::CellInfo cells[] = {cell("a")};
  ASSERT_TRUE(outbox->add(cells, cycles("a", 1, 1)).ok());
  const Settlement first[] = {{"a", 1, 1, AckOutcome::kStored, ""}};
  const Settlement second[] = {{"a", 1, 1, AckOutcome::kDuplicate, ""}};
  ASSERT_TRUE(outbox->settle(first).ok());
  ASSERT_TRUE(outbox->settle(second).ok());
  EXPECT_EQ(outbox->counts()->stored, 1);
  EXPECT_EQ(outbox->counts()->duplicate, 0);
}

TEST(RigOutbox, AnAnswerDoesNotCoverRecordsAddedAfterIt) {
  // An ack's range may name cycles this outbox did not hold yet (another process with the same
  // rig id): records added later must still be sent.
  testing::TempDir dir;
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok());
  const storage::CellInfo cells[] = {cell("a")};
  ASSERT_TRUE(outbox->add(cells, cycles("a", 1, 5)).ok());
  const Settlement answers[] = {{"a", 1, 10, AckOutcome::kStored, ""}};
  ASSERT_TRUE(outbox->settle(answers).ok());
  auto added = outbox->add(cells, cycles("a", 1, 10));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, 5u);
  auto pending = outbox->pending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 5u);
  EXPECT_EQ(pending->front().cycle, 6);
  EXPECT_EQ(outbox->counts()->stored, 5);
  EXPECT_EQ(outbox->counts()->pending, 5);
}

TEST(RigOutbox, AnswersOfSeveralCellsAndOverlappingRangesSettleTheRightRecords) {
  testing::TempDir dir;
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok());
  const storage::CellInfo cells[] = {cell("a"), cell("b"), cell("c")};
  ASSERT_TRUE(outbox->add(cells, cycles("a", 1, 6)).ok());
  ASSERT_TRUE(outbox->add(cells, cycles("b", 1, 6)).ok());
  ASSERT_TRUE(outbox->add(cells, cycles("c", 1, 2)).ok());
  const Settlement answers[] = {{"b", 2, 3, AckOutcome::kStored, ""},
                                {"a", 1, 2, AckOutcome::kConflict, "conflicting duplicate"},
                                {"b", 1, 5, AckOutcome::kDuplicate, ""},
                                {"zz", 1, 9, AckOutcome::kStored, ""},
                                {"a", 5, 5, AckOutcome::kRejected, "why"}};
  ASSERT_TRUE(outbox->settle(answers).ok());
  auto pending = outbox->pending();
  ASSERT_TRUE(pending.ok());
  std::vector<std::pair<std::string, std::int64_t>> left;
  for (const auto& r : *pending)
    left.emplace_back(r.cell_id, r.cycle);
  const std::vector<std::pair<std::string, std::int64_t>> expected = {{"a", 3}, {"a", 4}, {"a", 6},
                                                                      {"b", 6}, {"c", 1}, {"c", 2}};
  EXPECT_EQ(left, expected);
  auto counts = outbox->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->pending, 6);
  EXPECT_EQ(counts->stored, 2);     // b2, b3: the first answer wins over the later duplicate
  EXPECT_EQ(counts->duplicate, 3);  // b1, b4, b5
  EXPECT_EQ(counts->conflict, 2);   // a1, a2
  EXPECT_EQ(counts->rejected, 1);   // a5
}

TEST(RigOutbox, MigratesAVersionOneFileKeepingItsAnswers) {
  testing::TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "o.db").c_str(), &db), SQLITE_OK);
  const char* v1 = R"sql(
    CREATE TABLE cells(cell_id TEXT PRIMARY KEY, rig_id TEXT NOT NULL, meta TEXT NOT NULL)
      WITHOUT ROWID;
    CREATE TABLE outbox(cell_id TEXT NOT NULL, cycle INTEGER NOT NULL, rig_id TEXT NOT NULL,
      payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending'
      CHECK (state IN ('pending', 'stored', 'duplicate', 'conflict', 'rejected')),
      reason TEXT, PRIMARY KEY (cell_id, cycle)) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox(state) WHERE state = 'pending';
    INSERT INTO cells VALUES('a', 'rig-a', '{"rated_capacity_ah":1.1}');
    INSERT INTO outbox VALUES('a', 1, 'rig-a', '{"cycle":1,"qd_ah":1.0}', 'stored', NULL);
    INSERT INTO outbox VALUES('a', 2, 'rig-a', '{"cycle":2,"qd_ah":1.0}', 'pending', NULL);
    INSERT INTO outbox VALUES('a', 3, 'rig-a', '{"cycle":3,"qd_ah":1.0}', 'rejected', 'why');
    PRAGMA user_version = 1;
  )sql";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok()) << outbox.error().message;
  auto pending = outbox->pending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].cycle, 2);
  EXPECT_EQ((*pending)[0].payload, R"({"cycle":2,"qd_ah":1.0})");
  auto counts = outbox->counts();
  EXPECT_EQ(counts->stored, 1);
  EXPECT_EQ(counts->rejected, 1);
  EXPECT_EQ(counts->pending, 1);
  // Re-adding the same input after the upgrade sends nothing again.
  const storage::CellInfo cells[] = {cell("a")};
  EXPECT_EQ(*outbox->add(cells, cycles("a", 1, 3)), 0u);
  EXPECT_EQ(outbox->pending()->size(), 1u);
}

TEST(RigOutbox, RefusesRecordsOfACellWithoutMetadata) {
  testing::TempDir dir;
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_TRUE(outbox.ok());
  auto added = outbox->add({}, cycles("ghost", 1, 1));
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().message, "outbox: cell 'ghost' has no metadata");
  EXPECT_TRUE(outbox->pending()->empty());
}

TEST(RigOutbox, RefusesAFileWithANewerSchema) {
  testing::TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "o.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 9", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto outbox = Outbox::open(dir / "o.db");
  ASSERT_FALSE(outbox.ok());
  EXPECT_EQ(outbox.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace cyclecast::rig
