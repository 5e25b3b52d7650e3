// Background WAL checkpoints for the daemon's database. SQLite's automatic checkpoint runs inside
// the commit that crosses 1000 WAL pages, so every few megabytes one commit also copies the WAL
// into the database and fsyncs it: a stall of the writer (and of every ack behind it) that was
// the whole p99 of publish-to-confirm latency. This thread runs PASSIVE checkpoints on its own
// connection, so the WAL is backfilled and restarted before the writer's commit would have to.
//
// A reader that keeps a read transaction open (an operator's sqlite3 shell, a long backup) pins
// the WAL: nothing after its snapshot can be copied back, and the WAL grows with every commit.
// Once it is gone and a checkpoint finishes, a WAL over storage::kWalSizeLimitBytes is emptied
// (a TRUNCATE checkpoint that does not wait); while checkpoints cannot finish for longer than
// `alert_after`, status() says so for /healthz (docs/storage.md, "The WAL and its bound").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cyclecast/storage/database.h"

namespace cyclecast::daemon {

struct WalStatus {
  std::int64_t wal_bytes = 0;     // the WAL file's size after the last checkpoint
  std::int64_t blocked_ms = 0;    // how long checkpoints have been unable to finish; 0: they do
  bool blocked_too_long = false;  // blocked_ms reached the alert threshold
  std::uint64_t truncations = 0;  // WAL files emptied after growing past the limit
};

class Checkpointer {
 public:
  // Opens its own connection to `database` (which must exist) and starts checkpointing every
  // `interval`. On failure to open it does nothing (SQLite's automatic checkpoint remains).
  Checkpointer(const std::filesystem::path& database, std::chrono::milliseconds interval,
               std::chrono::milliseconds alert_after = std::chrono::seconds(30));
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  bool running() const { return thread_.joinable(); }
  // Last error text of a checkpoint, empty if none: for the log.
  std::string last_error();
  // Thread-safe: for /metrics and /healthz.
  WalStatus status();

 private:
  void run();
  void checkpoint_once();  // mutex_ not held

  std::optional<storage::Database> db_;  // used by the checkpoint thread only
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds alert_after_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string last_error_;
  WalStatus status_;
  std::optional<std::chrono::steady_clock::time_point> blocked_since_;
  std::thread thread_;
};

}  // namespace cyclecast::daemon
