// Background WAL checkpoints for the daemon's database. SQLite's automatic checkpoint runs inside
// the commit that crosses 1000 WAL pages, so every few megabytes one commit also copies the WAL
// into the database and fsyncs it: a stall of the writer (and of every ack behind it) that was
// the whole p99 of publish-to-confirm latency. This thread runs PASSIVE checkpoints on its own
// connection, so the WAL is backfilled and restarted before the writer's commit would have to.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cyclecast/storage/database.h"

namespace cyclecast::daemon {

class Checkpointer {
 public:
  // Opens its own connection to `database` (which must exist) and starts checkpointing every
  // `interval`. On failure to open it does nothing (SQLite's automatic checkpoint remains).
  Checkpointer(const std::filesystem::path& database, std::chrono::milliseconds interval);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  bool running() const { return thread_.joinable(); }
  // Last error text of a checkpoint, empty if none: for the log.
  std::string last_error();

 private:
  void run();

  std::optional<storage::Database> db_;  // used by the checkpoint thread only
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace cyclecast::daemon
