#include "checkpointer.h"

namespace cyclecast::daemon {

Checkpointer::Checkpointer(const std::filesystem::path& database,
                           std::chrono::milliseconds interval)
    : interval_(interval) {
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

void Checkpointer::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    // PASSIVE: copies what it can without waiting for the writer or readers; never blocks them.
    const Result<void> done = db_->checkpoint();
    lock.lock();
    if (!done) last_error_ = done.error().message;
  }
}

}  // namespace cyclecast::daemon
