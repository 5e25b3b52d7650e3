#include "writer.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace cyclecast::daemon {
namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

protocol::AckOutcome ack_outcome(storage::CycleOutcome outcome) {
  switch (outcome) {
    case storage::CycleOutcome::kInserted:
      return protocol::AckOutcome::kStored;
    case storage::CycleOutcome::kDuplicate:
      return protocol::AckOutcome::kDuplicate;
    case storage::CycleOutcome::kConflict:
      return protocol::AckOutcome::kConflict;
    case storage::CycleOutcome::kUnknownCell:
      // The cell's metadata is not stored (its write failed or was refused): nothing final.
      return protocol::AckOutcome::kRetry;
  }
  return protocol::AckOutcome::kRejected;
}

std::string outcome_reason(storage::CycleOutcome outcome) {
  switch (outcome) {
    case storage::CycleOutcome::kConflict:
      return "conflicting duplicate";
    case storage::CycleOutcome::kUnknownCell:
      return "unknown cell: its metadata is not stored yet";
    default:
      return {};
  }
}

// Splits the batch's cells into those stored and those refused, in the order they came.
void note_cells(std::vector<storage::CellInfo>& cells,
                const std::vector<storage::RefusedCell>& refused, CommitReport& report) {
  std::size_t next_refused = 0;  // write_batch lists refusals in the order of the batch's cells
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (next_refused < refused.size() && refused[next_refused].index == i) {
      const auto& r = refused[next_refused++];
      report.refused_cells.push_back({std::move(cells[i]), r.reason, r.owned_elsewhere});
    } else {
      report.cells.push_back(std::move(cells[i]));
    }
  }
}

}  // namespace

Writer::Writer(storage::Database db, BatchPolicy policy, OnCommit on_commit)
    : db_(std::move(db)), on_commit_(std::move(on_commit)), policy_(policy) {
  last_alive_ns_ = steady_ns();
  thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
  stop();
}

void Writer::note_added() {
  if (pending_.size() + pending_.cells.size() == 1) {
    oldest_pending_ = std::chrono::steady_clock::now();
  }
  if (pending_.size() >= policy_.batch_records || pending_.size() + pending_.cells.size() == 1) {
    wake_.notify_one();
  }
}

void Writer::add_cell(storage::CellInfo cell) {
  std::lock_guard lock(mutex_);
  pending_.cells.push_back(std::move(cell));
  note_added();
}

void Writer::add_forecast(storage::ForecastRecord forecast) {
  std::lock_guard lock(mutex_);
  pending_.forecasts.push_back(std::move(forecast));
  note_added();
}

void Writer::add_record(std::string rig_id, storage::CycleRecord record) {
  std::lock_guard lock(mutex_);
  pending_.records.push_back(std::move(record));
  pending_.record_rigs.push_back(std::move(rig_id));
  note_added();
}

void Writer::add_records(const std::string& rig_id, std::vector<storage::CycleRecord> records) {
  if (records.empty()) return;
  std::lock_guard lock(mutex_);
  const bool was_empty = pending_.size() + pending_.cells.size() == 0;
  if (was_empty) oldest_pending_ = std::chrono::steady_clock::now();
  for (auto& r : records) {
    pending_.records.push_back(std::move(r));
    pending_.record_rigs.push_back(rig_id);
  }
  if (was_empty || pending_.size() >= policy_.batch_records) wake_.notify_one();
}

void Writer::add_rejection(std::string rig_id, std::string cell_id,
                           std::optional<std::int64_t> cycle, storage::RejectedRecord rejected) {
  std::lock_guard lock(mutex_);
  pending_.rejections.push_back(
      {std::move(rig_id), std::move(cell_id), cycle, std::move(rejected)});
  note_added();
}

void Writer::set_policy(BatchPolicy policy) {
  std::lock_guard lock(mutex_);
  policy_ = policy;
  wake_.notify_one();
}

void Writer::set_max_size(std::int64_t bytes) {
  std::lock_guard lock(mutex_);
  new_max_size_ = bytes;
  wake_.notify_one();
}

void Writer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::chrono::steady_clock::time_point Writer::last_alive() const {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(last_alive_ns_.load()));
}

std::size_t Writer::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size() + pending_.cells.size();
}

void Writer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (new_max_size_) {
      // A limit that cannot be set leaves the old one; the next commit reports what it meets.
      (void)db_.set_max_size(*std::exchange(new_max_size_, std::nullopt));
      // Room again, perhaps: cells that failed for want of it need not wait for a record.
      if (!retry_cells_.empty() && pending_.size() + pending_.cells.size() == 0) {
        oldest_pending_ = std::chrono::steady_clock::now();
      }
      pending_.cells.insert(pending_.cells.begin(), std::make_move_iterator(retry_cells_.begin()),
                            std::make_move_iterator(retry_cells_.end()));
      retry_cells_.clear();
    }
    const bool empty = pending_.size() + pending_.cells.size() == 0;
    if (empty && stopping_) return;
    const auto deadline = oldest_pending_ + std::chrono::milliseconds(policy_.batch_ms);
    const bool due = !empty && (stopping_ || pending_.size() >= policy_.batch_records ||
                                std::chrono::steady_clock::now() >= deadline);
    if (!due) {
      // Wake at least every 100 ms so that last_alive() tells the watchdog we are not stuck.
      const auto idle_limit = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
      wake_.wait_until(lock, empty ? idle_limit : std::min(deadline, idle_limit));
      last_alive_ns_ = steady_ns();
      continue;
    }
    Batch batch = std::exchange(pending_, Batch{});
    batch.cells.insert(batch.cells.begin(), std::make_move_iterator(retry_cells_.begin()),
                       std::make_move_iterator(retry_cells_.end()));
    retry_cells_.clear();
    lock.unlock();
    CommitReport report = commit(batch);
    const bool failed = !report.error.empty();
    last_alive_ns_ = steady_ns();
    on_commit_(std::move(report));
    lock.lock();
    if (failed) retry_cells_ = std::move(batch.cells);
  }
}

CommitReport Writer::commit(Batch& batch) {
  const auto started = std::chrono::steady_clock::now();
  CommitReport report;
  // The whole batch in one transaction: one fsync for all of it, and a failed batch leaves
  // nothing behind (a rig announcing hundreds of cells on connect costs one commit too).
  std::vector<storage::RejectedRecord> rejected;
  rejected.reserve(batch.rejections.size());
  for (const auto& r : batch.rejections)
    rejected.push_back(r.rejected);
  const std::vector<storage::CycleRecord>& records = batch.records;
  auto written = db_.write_batch({batch.cells, rejected, records, batch.forecasts});
  if (!written) {
    report.error = written.error().message;
    report.error_code = written.error().code;
    return report;
  }
  note_cells(batch.cells, written->refused_cells, report);
  const storage::BatchResult& result = written->cycles;
  if (written->forecast_error) {
    report.forecast_error = written->forecast_error->message;
  } else if (!batch.forecasts.empty()) {
    report.edge_forecasts = written->forecasts.stored;
    for (const auto& f : batch.forecasts)
      report.new_cycles.try_emplace(f.cell_id);
  }
  // Everything above is committed: now say so, per rig. Consecutive records nearly always come
  // from the same rig, so its list is looked up once per run of them, not once per record.
  std::map<std::string, std::vector<protocol::AckEntry>> entries;
  std::vector<protocol::AckEntry>* rig_entries = nullptr;
  const std::string* list_rig = nullptr;
  CycleSpan* span = nullptr;
  const std::string* span_cell = nullptr;
  for (std::size_t i = 0; i < records.size() && i < result.outcomes.size(); ++i) {
    const std::string& rig = batch.record_rigs[i];
    if (list_rig == nullptr || *list_rig != rig) {
      rig_entries = &entries[rig];
      list_rig = &rig;
    }
    const auto outcome = result.outcomes[i];
    if (outcome == storage::CycleOutcome::kInserted) {
      // unordered_map values stay where they are: the cell's entry is found once per run.
      if (span == nullptr || records[i].cell_id != *span_cell) {
        span = &report.new_cycles[records[i].cell_id];
        span_cell = &records[i].cell_id;
      }
      const std::int64_t cycle = records[i].cycle;
      span->oldest = span->oldest > 0 ? std::min(span->oldest, cycle) : cycle;
      span->newest = std::max(span->newest, cycle);
    }
    rig_entries->push_back(
        {records[i].cell_id, records[i].cycle, ack_outcome(outcome), outcome_reason(outcome)});
  }
  for (auto& r : batch.rejections) {
    if (r.rig_id.empty()) continue;
    if (r.cycle) {
      entries[r.rig_id].push_back(
          {r.cell_id, *r.cycle, protocol::AckOutcome::kRejected, r.rejected.reason});
    } else {
      report.acks[r.rig_id].rejected_messages.push_back({r.cell_id, r.rejected.reason});
    }
  }
  for (auto& [rig, list] : entries)
    report.acks[rig].ranges = protocol::compress_acks(std::move(list));
  report.stored = result.inserted;
  report.duplicates = result.duplicates;
  report.conflicts = result.conflicts;
  report.unknown_cells = result.unknown_cells;
  report.rejected = batch.rejections.size();
  report.commit_time = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace cyclecast::daemon
