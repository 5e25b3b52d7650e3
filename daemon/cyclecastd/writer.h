// The storage writer: a thread of its own with its own Database, so that SQLite commits (and
// their fsyncs) never stall the event loop. The loop hands it validated records, cell metadata
// and rejections; it commits them in batches (when batch_records are pending or the oldest has
// waited batch_ms) and reports, per rig, what each commit made durable. Acks are built from
// that report only, so nothing is acknowledged before it is on disk.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cycle_span.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::daemon {

struct BatchPolicy {
  std::size_t batch_records = 2000;
  int batch_ms = 5;
};

// A cell of the batch that the database did not take (storage::Database::write_batch).
struct RefusedCell {
  storage::CellInfo cell;
  std::string reason;
  bool owned_elsewhere = false;  // registered to another rig
};

// What one commit did, for the acks and the counters.
struct CommitReport {
  std::map<std::string, protocol::Ack> acks;  // by rig id; seq and time not yet set
  std::size_t stored = 0, duplicates = 0, conflicts = 0, unknown_cells = 0, rejected = 0;
  // The cells this commit made durable, in the order they were added (a later one of the same
  // cell is its newer metadata), and those it refused. Both empty when the commit failed: the
  // writer then keeps the batch's cells and writes them with its next batch.
  std::vector<storage::CellInfo> cells;
  std::vector<RefusedCell> refused_cells;
  std::chrono::microseconds commit_time{0};
  std::string error;                      // non-empty: the commit failed, nothing of it is durable
  ErrorCode error_code = ErrorCode::kIo;  // with `error`: kFull when out of room
  // Edge forecasts (docs/protocol.md, "Edge nodes") are written after the cycles, in the same
  // transaction under a savepoint, and are not acknowledged: a failure there is reported here
  // and does not undo the cycles (storage::Database::write_batch).
  std::size_t edge_forecasts = 0;
  std::string forecast_error;
  // For the forecaster: the oldest and newest cycle stored in this commit per cell, and 0 for a
  // cell that only got an edge forecast (to be scored if its cycles are already there).
  NewCycles new_cycles;
};

class Writer {
 public:
  using OnCommit = std::function<void(CommitReport)>;

  // Takes the database. `on_commit` runs on the writer thread after every commit attempt.
  Writer(storage::Database db, BatchPolicy policy, OnCommit on_commit);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void add_cell(storage::CellInfo cell);
  void add_record(std::string rig_id, storage::CycleRecord record);
  // The records of one message, under one lock.
  void add_records(const std::string& rig_id, std::vector<storage::CycleRecord> records);
  // Cell metadata to register. A cell whose commit fails is written again with the next batch
  // (rigs re-send their records, not their retained metadata), and at once after set_max_size.
  // A rejection: `cycle` when the (cell, cycle) is known (acked as a range), else the rig gets a
  // message-level rejection (when rig_id is known).
  void add_rejection(std::string rig_id, std::string cell_id, std::optional<std::int64_t> cycle,
                     storage::RejectedRecord rejected);

  // A forecast from an edge node, stored with the next commit.
  void add_forecast(storage::ForecastRecord forecast);
  void set_policy(BatchPolicy policy);
  // The database's size limit (OpenOptions::max_size_bytes), applied by the writer thread before
  // its next commit; 0: none.
  void set_max_size(std::int64_t bytes);
  // Commits what is pending, then stops the thread. Idempotent.
  void stop();
  // Last time the thread was seen alive (idle wait or finished commit): for the watchdog.
  std::chrono::steady_clock::time_point last_alive() const;
  std::size_t pending() const;

 private:
  struct PendingRejection {
    std::string rig_id;
    std::string cell_id;
    std::optional<std::int64_t> cycle;
    storage::RejectedRecord rejected;
  };
  struct Batch {
    std::vector<storage::CellInfo> cells;
    // Records and the rig each came from, side by side: the records go to write_cycles as
    // they are, without a copy per commit.
    std::vector<storage::CycleRecord> records;
    std::vector<std::string> record_rigs;
    std::vector<PendingRejection> rejections;
    std::vector<storage::ForecastRecord> forecasts;
    std::size_t size() const { return records.size() + rejections.size() + forecasts.size(); }
  };

  void run();
  void note_added();  // caller holds mutex_
  CommitReport commit(Batch& batch);

  storage::Database db_;
  OnCommit on_commit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  BatchPolicy policy_;
  std::optional<std::int64_t> new_max_size_;
  Batch pending_;
  std::vector<storage::CellInfo> retry_cells_;  // of a failed commit; go first in the next batch
  std::chrono::steady_clock::time_point oldest_pending_{};
  bool stopping_ = false;
  std::atomic<std::int64_t> last_alive_ns_{0};
  std::thread thread_;
};

}  // namespace cyclecast::daemon
