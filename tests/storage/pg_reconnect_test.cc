// A PostgreSQL restart during ingest loses nothing and duplicates nothing (docs/storage.md,
// "Backends"): between batches the handle reconnects by itself; a batch the restart cuts off
// fails whole (kIo), nothing of it is stored, and its re-send, as the daemon's caller makes it,
// is stored once. The real server of the test process is restarted.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend_test_util.h"
#include "cyclecast/storage/database.h"
#include "pg_server.h"
#include "storage_test_util.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::PgServer;
using cyclecast::testing::PgSession;
using testing::BackendTest;
using testing::make_cell;
using testing::make_cycles;

class PgReconnectTest : public BackendTest {
 protected:
  void SetUp() override {
    // The test server commits asynchronously (pg_server.cc: durability is not what most tests
    // check); these tests kill it, so their sessions commit synchronously, as a production
    // server does (fsync stays off: the WAL in the page cache survives a killed server).
    location_ = PgServer::shared().create_database() + "%20-csynchronous_commit%3Don";
    Result<Database> opened = open_database();
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_.emplace(std::move(*opened));
    ASSERT_TRUE(db_->upsert_cell(make_cell("c1")).ok());
  }

  // An ingest batch of cycles first .. first + count - 1 of c1 (a batch holds spans: the
  // records live in the fixture).
  IngestBatch batch_of(std::int64_t first, std::int64_t count) {
    records_.push_back(make_cycles("c1", first, count));
    IngestBatch batch;
    batch.cycles = records_.back();
    return batch;
  }

  // True once `sql` (a count) is positive, polled until a deadline generous for a loaded CI.
  bool eventually_positive(const std::string& sql) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (raw_count(sql) > 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the poll interval
    }
    return false;
  }

  std::optional<Database> db_;
  std::list<std::vector<CycleRecord>> records_;  // a list: a new batch moves no older one
};

INSTANTIATE_TEST_SUITE_P(Backends, PgReconnectTest,
                         ::testing::Values(testing::TestBackend::kPostgresql),
                         testing::backend_name);

TEST_P(PgReconnectTest, ARestartBetweenBatchesIsReconnectedWithoutAFailure) {
  ASSERT_TRUE(db_->write_batch(batch_of(1, 100)).ok());
  PgServer::shared().restart(PgServer::Shutdown::kFast);
  // The next batch starts with BEGIN on the lost connection: it is made again, and the batch
  // goes through as if nothing happened.
  Result<IngestResult> second = db_->write_batch(batch_of(101, 100));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->cycles.inserted, 100u);
  PgServer::shared().restart(PgServer::Shutdown::kImmediate);
  // A read alone is run again on a new connection too.
  Result<std::vector<CellSummary>> cells = db_->cells();
  ASSERT_TRUE(cells.ok()) << cells.error().message;
  ASSERT_EQ(cells->size(), 1u);
  EXPECT_EQ(cells->front().cycles, 200) << "both batches survived the crash-like restart";
  // A re-send of a committed batch (its acknowledgement lost with the connection) is a no-op.
  Result<IngestResult> again = db_->write_batch(batch_of(1, 100));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->cycles.duplicates, 100u);
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles"), 200);
}

TEST_P(PgReconnectTest, ABatchARestartCutsOffFailsWholeAndItsReSendIsStoredOnce) {
  ASSERT_TRUE(db_->write_batch(batch_of(1, 50)).ok());
  // Hold the batch inside its transaction: a trigger waits for a lock the test holds, so the
  // restart lands in the middle of the batch, deterministically.
  raw_sql("",
          "CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$; "
          "CREATE TRIGGER wait_for_test BEFORE INSERT ON cycles FOR EACH ROW "
          "EXECUTE FUNCTION wait_for_test()");
  std::atomic<bool> done{false};
  Result<IngestResult> cut = make_error(ErrorCode::kIo, "not run");
  {
    PgSession holder(location());
    holder.exec("SELECT pg_advisory_lock(4242)");
    std::thread writer([&] {
      cut = db_->write_batch(batch_of(51, 500));
      done = true;
    });
    const bool waiting = eventually_positive(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
        "wait_event = 'advisory'");
    if (waiting) PgServer::shared().restart(PgServer::Shutdown::kImmediate);
    writer.join();
    ASSERT_TRUE(waiting) << "the batch never reached the trigger";
  }
  ASSERT_TRUE(done);
  ASSERT_FALSE(cut.ok()) << "a batch whose connection was lost cannot have committed";
  EXPECT_EQ(cut.error().code, ErrorCode::kIo) << cut.error().message;
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles"), 50) << "nothing of the cut batch";

  raw_sql("", "DROP TRIGGER wait_for_test ON cycles; DROP FUNCTION wait_for_test()");
  // The caller re-sends what it was not acknowledged: stored once, on a new connection.
  Result<IngestResult> resent = db_->write_batch(batch_of(51, 500));
  ASSERT_TRUE(resent.ok()) << resent.error().message;
  EXPECT_EQ(resent->cycles.inserted, 500u);
  EXPECT_EQ(raw_count("SELECT count(*) FROM cycles"), 550);
  EXPECT_EQ(raw_count("SELECT count(DISTINCT (cell, cycle)) FROM cycles"), 550);
}

}  // namespace
}  // namespace cyclecast::storage
