// A SQLite VFS that wraps the default one and fails writes and syncs on demand: I/O errors on
// commit, injected the way SQLite's own tests do it, without touching the production code (a
// Database opened with OpenOptions::vfs = FaultyVfs::kName uses it).
#pragma once

#include <atomic>
#include <cstdint>

namespace cyclecast::testing {

class FaultyVfs {
 public:
  static constexpr const char* kName = "cyclecast-faulty";

  // Registers the VFS (once per process, not as the default) and returns it.
  static FaultyVfs& instance();

  // While on, every write and sync of every file opened through the VFS fails with an I/O
  // error (SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC).
  void fail_writes(bool on) { failing_ = on; }
  bool failing() const { return failing_; }
  // Writes and syncs refused so far.
  std::uint64_t failures() const { return failures_; }
  void count_failure() { ++failures_; }

 private:
  FaultyVfs();
  std::atomic<bool> failing_{false};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace cyclecast::testing
