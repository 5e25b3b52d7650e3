#include "checkpointer.h"

#include <sqlite3.h>

namespace cyclecast::daemon {

Checkpointer::Checkpointer(const std::filesystem::path& database,
                           std::chrono::milliseconds interval)
    : interval_(interval) {
  if (sqlite3_open_v2(database.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return;
  }
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  sqlite3_close_v2(db_);
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
    const int rc =
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) last_error_ = sqlite3_errmsg(db_);
  }
}

}  // namespace cyclecast::daemon
