#include "checkpointer.h"

namespace cyclecast::daemon {

Checkpointer::Checkpointer(const std::filesystem::path& database,
                           std::chrono::milliseconds interval,
                           std::chrono::milliseconds alert_after)
    : interval_(interval), alert_after_(alert_after) {
  storage::OpenOptions options;
  options.create_if_missing = false;
  auto opened = storage::Database::open(database, options);
  if (!opened) return;
  db_.emplace(std::move(*opened));
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string Checkpointer::last_error() {
  std::lock_guard lock(mutex_);
  return last_error_;
}

WalStatus Checkpointer::status() {
  std::lock_guard lock(mutex_);
  return status_;
}

void Checkpointer::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    checkpoint_once();
    lock.lock();
  }
}

void Checkpointer::checkpoint_once() {
  // PASSIVE copies what it can without waiting for the writer or readers; never blocks them.
  // Only a WAL grown past the limit (behind a reader, since passes keep up otherwise) is worth
  // emptying: truncating every pass would make the writer grow the file again each time.
  const auto mode = db_->wal_bytes() > storage::kWalSizeLimitBytes
                        ? storage::CheckpointMode::kTruncate
                        : storage::CheckpointMode::kPassive;
  const auto done = db_->checkpoint(mode);
  const std::int64_t wal_bytes = db_->wal_bytes();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (!done) {
    last_error_ = done.error().message;
    return;
  }
  if (done->blocked()) {
    if (!blocked_since_) blocked_since_ = now;
  } else {
    blocked_since_.reset();
  }
  status_.wal_bytes = wal_bytes;
  status_.blocked_ms =
      blocked_since_
          ? std::chrono::duration_cast<std::chrono::milliseconds>(now - *blocked_since_).count()
          : 0;
  status_.blocked_too_long = blocked_since_ && now - *blocked_since_ >= alert_after_;
  if (done->truncated) ++status_.truncations;
}

}  // namespace cyclecast::daemon
