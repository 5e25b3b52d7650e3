// The cycle write path: exactly-once storage, conflicts, unknown cells, batch atomicity; on
// both backends (SQLite and PostgreSQL).
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "backend_test_util.h"
#include "cyclecast/storage/database.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using testing::BackendTest;
using testing::make_cell;
using testing::make_cycle;
using testing::make_cycles;

// The rejected record's payload as JSON (the field order and spacing are the backend's).
nlohmann::json payload_json(const RejectedRecord& record) {
  return nlohmann::json::parse(record.payload, nullptr, false);
}

class CyclesTest : public BackendTest {
 protected:
  void SetUp() override { open(); }

  void open() {
    Result<Database> opened = open_database();
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_.emplace(std::move(*opened));
    ASSERT_TRUE(db_->upsert_cell(make_cell("c1")).ok());
    ASSERT_TRUE(db_->upsert_cell(make_cell("c2")).ok());
  }

  Database& db() { return *db_; }

  std::optional<Database> db_;
};

CYCLECAST_ON_BOTH_BACKENDS(CyclesTest);

TEST_P(CyclesTest, InsertsNewCyclesAndReportsEachOutcome) {
  const auto records = make_cycles("c1", 1, 3);
  Result<BatchResult> result = db().write_cycles(records);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->inserted, 3u);
  EXPECT_EQ(result->outcomes, std::vector<CycleOutcome>(3, CycleOutcome::kInserted));
  EXPECT_EQ(db().counts()->cycles, 3);
  EXPECT_EQ(db().counts()->rejected, 0);
}

TEST_P(CyclesTest, StoredCycleReadsBackWithEveryField) {
  CycleRecord record = make_cycle("c1", 42);
  record.temperature_min_c.reset();
  record.source = "import:cycles.csv";
  ASSERT_TRUE(db().write_cycles({&record, 1}).ok());
  Result<std::vector<CycleRecord>> stored = db().cycles_of("c1");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  const CycleRecord& back = stored->front();
  EXPECT_TRUE(back.same_measurement(record));
  EXPECT_FALSE(back.temperature_min_c.has_value());
  EXPECT_EQ(back.charge_time_min, record.charge_time_min);
  EXPECT_EQ(back.measured_at_ms, record.measured_at_ms);
  EXPECT_EQ(back.received_at_ms, record.received_at_ms);
  EXPECT_EQ(back.source, "import:cycles.csv");
}

TEST_P(CyclesTest, ZeroReceivedAtIsSetToTheTimeOfTheWrite) {
  CycleRecord record = make_cycle("c1", 1);
  record.received_at_ms = 0;
  const std::int64_t before_ms = now_ms();
  ASSERT_TRUE(db().write_cycles({&record, 1}).ok());
  const std::int64_t after_ms = now_ms();
  const std::int64_t stored_ms = db().cycles_of("c1")->front().received_at_ms;
  EXPECT_GE(stored_ms, before_ms);
  EXPECT_LE(stored_ms, after_ms);
}

TEST_P(CyclesTest, SameRecordAgainIsANoOpDuplicate) {
  const auto records = make_cycles("c1", 1, 5);
  ASSERT_TRUE(db().write_cycles(records).ok());
  // A re-send may differ in when and where it was received, not in what was measured.
  auto resent = records;
  for (CycleRecord& record : resent) {
    record.received_at_ms += 1000;
    record.source = "mqtt:resend";
  }
  Result<BatchResult> again = db().write_cycles(resent);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->duplicates, 5u);
  EXPECT_EQ(again->inserted, 0u);
  EXPECT_EQ(again->outcomes, std::vector<CycleOutcome>(5, CycleOutcome::kDuplicate));
  EXPECT_EQ(db().counts()->cycles, 5);
  EXPECT_EQ(db().counts()->rejected, 0);
  EXPECT_EQ(db().cycles_of("c1")->front().source, "test") << "the first write is kept";
}

TEST_P(CyclesTest, DuplicateWithinOneBatchIsDetected) {
  std::vector<CycleRecord> records = {make_cycle("c1", 1), make_cycle("c1", 1)};
  Result<BatchResult> result = db().write_cycles(records);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcomes,
            (std::vector<CycleOutcome>{CycleOutcome::kInserted, CycleOutcome::kDuplicate}));
}

TEST_P(CyclesTest, ConflictingDuplicateKeepsFirstAndRecordsRejection) {
  const CycleRecord first = make_cycle("c1", 7);
  ASSERT_TRUE(db().write_cycles({&first, 1}).ok());
  CycleRecord second = first;
  second.discharge_capacity_ah += 0.01;
  second.source = "mqtt:rig-a";
  Result<BatchResult> result = db().write_cycles({&second, 1});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->outcomes, std::vector<CycleOutcome>{CycleOutcome::kConflict});
  EXPECT_EQ(result->conflicts, 1u);

  Result<std::vector<CycleRecord>> stored = db().cycles_of("c1");
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(stored->front().discharge_capacity_ah, first.discharge_capacity_ah);

  Result<std::vector<RejectedRecord>> rejected = db().rejected();
  ASSERT_TRUE(rejected.ok());
  ASSERT_EQ(rejected->size(), 1u);
  EXPECT_EQ(rejected->front().reason, "conflicting duplicate");
  EXPECT_EQ(rejected->front().source, "mqtt:rig-a");
  const nlohmann::json payload = payload_json(rejected->front());
  EXPECT_EQ(payload.value("cell_id", ""), "c1") << rejected->front().payload;
  EXPECT_EQ(payload.value("cycle", 0), 7);
  // SQLite's json_object prints 15 significant digits.
  EXPECT_NEAR(payload.value("discharge_capacity_ah", 0.0), second.discharge_capacity_ah, 1e-12);
}

TEST_P(CyclesTest, MissingOptionalFieldAgainstStoredValueIsAConflict) {
  const CycleRecord first = make_cycle("c1", 3);
  ASSERT_TRUE(db().write_cycles({&first, 1}).ok());
  CycleRecord second = first;
  second.internal_resistance_ohm.reset();
  Result<BatchResult> result = db().write_cycles({&second, 1});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcomes, std::vector<CycleOutcome>{CycleOutcome::kConflict});
}

TEST_P(CyclesTest, UnknownCellIsRejectedWithReason) {
  std::vector<CycleRecord> records = {make_cycle("c1", 1), make_cycle("nobody", 1),
                                      make_cycle("c1", 2)};
  Result<BatchResult> result = db().write_cycles(records);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcomes,
            (std::vector<CycleOutcome>{CycleOutcome::kInserted, CycleOutcome::kUnknownCell,
                                       CycleOutcome::kInserted}));
  EXPECT_EQ(result->unknown_cells, 1u);
  EXPECT_EQ(db().counts()->cycles, 2);
  Result<std::vector<RejectedRecord>> rejected = db().rejected();
  ASSERT_EQ(rejected->size(), 1u);
  EXPECT_EQ(rejected->front().reason, "unknown cell");
  EXPECT_EQ(payload_json(rejected->front()).value("cell_id", ""), "nobody")
      << rejected->front().payload;
}

TEST_P(CyclesTest, CellRegisteredAfterAnUnknownCellRejectionIsAccepted) {
  const CycleRecord record = make_cycle("late", 1);
  ASSERT_EQ(db().write_cycles({&record, 1})->outcomes.front(), CycleOutcome::kUnknownCell);
  ASSERT_TRUE(db().upsert_cell(make_cell("late")).ok());
  ASSERT_EQ(db().write_cycles({&record, 1})->outcomes.front(), CycleOutcome::kInserted);
}

TEST_P(CyclesTest, CellRegisteredByAnotherConnectionIsSeen) {
  const CycleRecord record = make_cycle("other", 1);
  ASSERT_EQ(db().write_cycles({&record, 1})->outcomes.front(), CycleOutcome::kUnknownCell);
  {
    Result<Database> second = open_database();
    ASSERT_TRUE(second.ok());
    ASSERT_TRUE(second->upsert_cell(make_cell("other")).ok());
  }
  ASSERT_EQ(db().write_cycles({&record, 1})->outcomes.front(), CycleOutcome::kInserted);
}

TEST_P(CyclesTest, FailureHalfWayLeavesNothingOfTheBatch) {
  ASSERT_TRUE(db().write_cycles(make_cycles("c1", 1, 10)).ok());
  // Make the database itself fail at cycle 60 of c2, mid-batch.
  add_failing_trigger("fail_at_60", "cycles", "NEW.cycle = 60");
  std::vector<CycleRecord> batch = make_cycles("c2", 1, 100);
  // Before the failure point: a conflict and an unknown cell, whose rejections must vanish too.
  batch[10] = make_cycle("c1", 5);
  batch[10].discharge_capacity_ah = 0.5;
  batch[20] = make_cycle("ghost", 1);

  Result<BatchResult> result = db().write_cycles(batch);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("injected failure"), std::string::npos)
      << result.error().message;
  EXPECT_EQ(db().counts()->cycles, 10);
  EXPECT_EQ(db().counts()->rejected, 0);
  EXPECT_TRUE(db().cycles_of("c2")->empty());

  // The connection is usable afterwards and the same batch goes through once fixed.
  drop_trigger("fail_at_60", "cycles");
  Result<BatchResult> retried = db().write_cycles(batch);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->conflicts, 1u);
  EXPECT_EQ(retried->unknown_cells, 1u);
  EXPECT_EQ(db().counts()->rejected, 2);
}

TEST_P(CyclesTest, NewSourceOfARolledBackBatchIsRecordedOnRetry) {
  add_failing_trigger("fail_at_3", "cycles", "NEW.cycle = 3");
  std::vector<CycleRecord> batch = make_cycles("c1", 1, 3);
  for (CycleRecord& record : batch)
    record.source = "import:first-try.csv";
  ASSERT_FALSE(db().write_cycles(batch).ok());
  drop_trigger("fail_at_3", "cycles");
  ASSERT_TRUE(db().write_cycles(batch).ok());
  EXPECT_EQ(db().cycles_of("c1")->back().source, "import:first-try.csv");
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles c JOIN sources s ON s.id = c.source"), 3)
      << "every stored cycle names a stored source";
  if (on_postgresql()) return;  // check() is SQLite's integrity_check
  Result<CheckReport> report = db().check();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->integrity_ok) << report->integrity_messages.back();
}

TEST_P(CyclesTest, RefusesWholeBatchWithANonFiniteValue) {
  std::vector<CycleRecord> batch = make_cycles("c1", 1, 4);
  batch[2].temperature_max_c = std::numeric_limits<double>::quiet_NaN();
  Result<BatchResult> result = db().write_cycles(batch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message.find("record 2"), std::string::npos) << result.error().message;
  EXPECT_EQ(db().counts()->cycles, 0);
}

TEST_P(CyclesTest, RefusesCycleNumberBelowOne) {
  const CycleRecord record = make_cycle("c1", 0);
  Result<BatchResult> result = db().write_cycles({&record, 1});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(CyclesTest, CyclesOfReturnsIncreasingCycleOrderWhateverTheWriteOrder) {
  std::vector<CycleRecord> batch = {make_cycle("c1", 30), make_cycle("c1", 2), make_cycle("c2", 1),
                                    make_cycle("c1", 17)};
  ASSERT_TRUE(db().write_cycles(batch).ok());
  const CycleRecord late = make_cycle("c1", 1);
  ASSERT_TRUE(db().write_cycles({&late, 1}).ok());
  Result<std::vector<CycleRecord>> cycles = db().cycles_of("c1");
  ASSERT_TRUE(cycles.ok());
  std::vector<std::int64_t> numbers;
  for (const CycleRecord& record : *cycles) {
    EXPECT_EQ(record.cell_id, "c1");
    numbers.push_back(record.cycle);
  }
  EXPECT_EQ(numbers, (std::vector<std::int64_t>{1, 2, 17, 30}));
}

TEST_P(CyclesTest, CyclesOfUnknownCellIsEmpty) {
  Result<std::vector<CycleRecord>> cycles = db().cycles_of("nobody");
  ASSERT_TRUE(cycles.ok());
  EXPECT_TRUE(cycles->empty());
}

TEST_P(CyclesTest, WriteRejectedKeepsRawBytesAndTruncatesHugePayloads) {
  std::vector<RejectedRecord> records(2);
  records[0].source = "mqtt:cyclecast/rigs/a/cycles";
  records[0].payload = std::string("\xff\x00{bad", 6);
  records[0].reason = "malformed JSON";
  records[0].rejected_at_ms = 1234;
  records[1].source = "import:x.csv:7";
  records[1].payload = std::string(kMaxRejectedPayloadBytes + 100, 'p');
  records[1].reason = "line too long";
  ASSERT_TRUE(db().write_rejected(records).ok());
  Result<std::vector<RejectedRecord>> stored = db().rejected(10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 2u);
  // Newest first.
  EXPECT_EQ((*stored)[1].payload, records[0].payload);
  EXPECT_EQ((*stored)[1].rejected_at_ms, 1234);
  EXPECT_EQ((*stored)[1].reason, "malformed JSON");
  EXPECT_EQ((*stored)[0].payload.size(), kMaxRejectedPayloadBytes);
  EXPECT_GT((*stored)[0].rejected_at_ms, 0);
}

TEST_P(CyclesTest, RejectedHonoursTheLimit) {
  std::vector<RejectedRecord> records(5);
  for (std::size_t i = 0; i < records.size(); ++i) {
    records[i].source = "s";
    records[i].reason = "r" + std::to_string(i);
  }
  ASSERT_TRUE(db().write_rejected(records).ok());
  Result<std::vector<RejectedRecord>> latest = db().rejected(2);
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].reason, "r4");
  EXPECT_EQ((*latest)[1].reason, "r3");
}

TEST_P(CyclesTest, LargeBatchIsStoredWhole) {
  const auto records = make_cycles("c1", 1, 20000);
  Result<BatchResult> result = db().write_cycles(records);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->inserted, 20000u);
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles"), 20000);
}

TEST_P(CyclesTest, AMixedBatchGetsEachRecordsOutcomeInOrder) {
  // Every case in one batch, as the record-by-record path decides them: a repeat inside the
  // batch is compared with what its first record left stored, and rejections keep the batch's
  // order. PostgreSQL writes a batch in a few multi-row statements; the outcomes are the same.
  const CycleRecord stored = make_cycle("c1", 1);
  ASSERT_TRUE(db().write_cycles({&stored, 1}).ok());
  CycleRecord conflicting_stored = stored;
  conflicting_stored.discharge_capacity_ah += 0.01;
  CycleRecord conflicting_new = make_cycle("c2", 5);
  conflicting_new.charge_time_min.reset();
  std::vector<CycleRecord> batch = {
      make_cycle("c2", 5),      // new
      stored,                   // duplicate of a stored row
      make_cycle("ghost", 1),   // unknown cell
      conflicting_stored,       // conflicts with the stored row
      make_cycle("c2", 5),      // duplicate of the first record of this batch
      conflicting_new,          // conflicts with the first record of this batch
      make_cycle("c2", 6),      // new
      conflicting_stored,       // the same conflict again
      make_cycle("ghost", 2)};  // unknown cell
  Result<BatchResult> result = db().write_cycles(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  using O = CycleOutcome;
  EXPECT_EQ(result->outcomes, (std::vector<O>{O::kInserted, O::kDuplicate, O::kUnknownCell,
                                              O::kConflict, O::kDuplicate, O::kConflict,
                                              O::kInserted, O::kConflict, O::kUnknownCell}));
  EXPECT_EQ(result->inserted, 2u);
  EXPECT_EQ(result->duplicates, 2u);
  EXPECT_EQ(result->conflicts, 3u);
  EXPECT_EQ(result->unknown_cells, 2u);
  EXPECT_EQ(db().cycles_of("c2")->front().charge_time_min, make_cycle("c2", 5).charge_time_min)
      << "the first record of a key is the one stored";
  Result<std::vector<RejectedRecord>> rejected = db().rejected();
  ASSERT_TRUE(rejected.ok());
  std::vector<std::pair<std::string, std::int64_t>> order;  // oldest first
  for (auto it = rejected->rbegin(); it != rejected->rend(); ++it) {
    const nlohmann::json payload = payload_json(*it);
    order.emplace_back(payload.value("cell_id", "") + " " + it->reason,
                       payload.value("cycle", std::int64_t{0}));
  }
  EXPECT_EQ(order,
            (std::vector<std::pair<std::string, std::int64_t>>{{"ghost unknown cell", 1},
                                                               {"c1 conflicting duplicate", 1},
                                                               {"c2 conflicting duplicate", 5},
                                                               {"c1 conflicting duplicate", 1},
                                                               {"ghost unknown cell", 2}}));
}

TEST_P(CyclesTest, CellNamesWithQuotesBracesAndBackslashesAreStoredAsTheyAre) {
  // PostgreSQL's batch travels as array literals: names must survive their quoting.
  const std::string odd = "rig \"a\", {cell} \\ 7 NULL \xc3\xa9";
  ASSERT_TRUE(db().upsert_cell(make_cell(odd)).ok());
  std::vector<CycleRecord> batch = {make_cycle(odd, 1), make_cycle("NULL", 1), make_cycle(odd, 2)};
  batch[0].source = "mqtt:{odd} \"source\"";
  Result<BatchResult> result = db().write_cycles(batch);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->inserted, 2u);
  EXPECT_EQ(result->unknown_cells, 1u);
  Result<std::vector<CycleRecord>> cycles = db().cycles_of(odd);
  ASSERT_TRUE(cycles.ok());
  ASSERT_EQ(cycles->size(), 2u);
  EXPECT_EQ(cycles->front().source, "mqtt:{odd} \"source\"");
  Result<std::vector<RejectedRecord>> rejected = db().rejected();
  ASSERT_TRUE(rejected.ok());
  ASSERT_EQ(rejected->size(), 1u);
  EXPECT_EQ(payload_json(rejected->front()).value("cell_id", ""), "NULL");
}

TEST_P(CyclesTest, ReplicasWritingOneBatchInOppositeOrdersStoreEachRecordOnce) {
  // Active-active replicas may both get a rig's re-send: two connections write the same records
  // at once, one in the opposite order. Neither fails (no deadlock: PostgreSQL inserts a batch
  // in key order; SQLite has one writer at a time) and each record is stored once.
  constexpr int kRounds = 4;
  constexpr std::int64_t kCycles = 2000;
  for (int round = 0; round < kRounds; ++round) {
    const std::string cell = "replicated" + std::to_string(round);
    ASSERT_TRUE(db().upsert_cell(make_cell(cell)).ok());
    const std::vector<CycleRecord> forward = make_cycles(cell, 1, kCycles);
    const std::vector<CycleRecord> backward(forward.rbegin(), forward.rend());
    Result<BatchResult> results[2] = {make_error(ErrorCode::kIo, "not run"),
                                      make_error(ErrorCode::kIo, "not run")};
    std::vector<std::thread> replicas;
    for (int r = 0; r < 2; ++r) {
      replicas.emplace_back([&, r] {
        auto replica = Database::open_url(location());
        if (!replica) {
          results[r] = replica.error();
          return;
        }
        results[r] = replica->write_cycles(r == 0 ? forward : backward);
      });
    }
    for (std::thread& replica : replicas)
      replica.join();
    ASSERT_TRUE(results[0].ok()) << "round " << round << ": " << results[0].error().message;
    ASSERT_TRUE(results[1].ok()) << "round " << round << ": " << results[1].error().message;
    EXPECT_EQ(results[0]->inserted + results[1]->inserted, static_cast<std::size_t>(kCycles));
    EXPECT_EQ(results[0]->duplicates + results[1]->duplicates, static_cast<std::size_t>(kCycles));
    EXPECT_EQ(db().cell_summary(cell)->value().cycles, kCycles);
  }
}

TEST(CycleRecordTest, SameMeasurementIgnoresTimestampsAndSource) {
  CycleRecord a = make_cycle("c1", 1);
  CycleRecord b = a;
  b.received_at_ms += 5;
  b.measured_at_ms = std::nullopt;
  b.source = "elsewhere";
  EXPECT_TRUE(a.same_measurement(b));
  b.charge_time_min = 11.0;
  EXPECT_FALSE(a.same_measurement(b));
  CycleRecord c = a;
  c.cycle = 2;
  EXPECT_FALSE(a.same_measurement(c));
}

}  // namespace
}  // namespace cyclecast::storage
