// Crash safety: a writer process SIGKILLed in the middle of a batch leaves a database that
// passes integrity_check and holds only whole batches, every acknowledged one included.
//
// The kill point is chosen by progress, not time: a trigger on cycles calls an SQL function
// (registered in every connection of this process with sqlite3_auto_extension) that reports
// every 100th row through the pipe, so the parent can kill after row 200, 1000, 1900 or 2000
// (the commit) of a batch.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "cyclecast/storage/database.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

using cyclecast::testing::TempDir;
using testing::make_cell;
using testing::make_cycles;

constexpr std::int64_t kBatchRows = 2000;
constexpr char kBatchStarted = 'b';
constexpr char kBatchCommitted = 'c';
constexpr char kRowsProgress = 'p';
constexpr std::int64_t kRowsPerProgress = 100;

// Where report_progress() writes; set in the writer child only (-1: nowhere).
int g_progress_fd = -1;

void write_byte(int fd, char byte) {
  while (::write(fd, &byte, 1) < 0 && errno == EINTR) {
  }
}

// 0 at end of file, else the byte read.
char read_byte(int fd) {
  char byte = 0;
  ssize_t n = 0;
  while ((n = ::read(fd, &byte, 1)) < 0 && errno == EINTR) {
  }
  return n == 1 ? byte : 0;
}

void report_progress(sqlite3_context* context, int /*argc*/, sqlite3_value** /*argv*/) {
  if (g_progress_fd >= 0) write_byte(g_progress_fd, kRowsProgress);
  sqlite3_result_null(context);
}

int register_report_progress(sqlite3* db, const char** /*error*/,
                             const sqlite3_api_routines* /*api*/) {
  return sqlite3_create_function(db, "report_progress", 1, SQLITE_UTF8, nullptr, report_progress,
                                 nullptr, nullptr);
}

// Makes report_progress() exist in every connection this process opens from now on.
class ProgressFunction {
 public:
  ProgressFunction() { sqlite3_auto_extension(entry()); }
  ~ProgressFunction() { sqlite3_cancel_auto_extension(entry()); }
  ProgressFunction(const ProgressFunction&) = delete;
  ProgressFunction& operator=(const ProgressFunction&) = delete;

 private:
  // SQLite takes entry points as void(*)(void), the type that matches every function pointer.
  static void (*entry())(void) {
    return reinterpret_cast<void (*)(void)>(register_report_progress);
  }
};

// The child: writes numbered batches for ever, reporting each start and each commit. Commits
// are acknowledged only after write_cycles returned, as the daemon acknowledges rigs.
[[noreturn]] void run_writer(const std::filesystem::path& path, int report_fd) {
  g_progress_fd = report_fd;
  OpenOptions options;
  options.synchronous_full = true;
  Result<Database> db = Database::open(path, options);
  if (!db) _exit(2);
  Result<TableCounts> counts = db->counts();
  if (!counts) _exit(3);
  std::int64_t next_cycle = counts->cycles + 1;
  for (int batch = 0; batch < 100000; ++batch) {
    const auto records = make_cycles("c1", next_cycle, kBatchRows);
    write_byte(report_fd, kBatchStarted);
    Result<BatchResult> written = db->write_cycles(records);
    if (!written || written->inserted != static_cast<std::size_t>(kBatchRows)) _exit(4);
    write_byte(report_fd, kBatchCommitted);
    next_cycle += kBatchRows;
  }
  _exit(0);
}

struct KillOutcome {
  std::int64_t committed_reported = 0;
  int wait_status = 0;
};

// Forks a writer, lets it commit `commits_before_kill` batches, then SIGKILLs it once it has
// written `progress_before_kill` x kRowsPerProgress rows of the next batch.
KillOutcome kill_writer_mid_batch(const std::filesystem::path& path, int commits_before_kill,
                                  int progress_before_kill) {
  int fds[2];
  if (::pipe(fds) != 0) ADD_FAILURE() << "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    run_writer(path, fds[1]);
  }
  ::close(fds[1]);
  KillOutcome outcome;
  bool killed = false;
  int progress_in_batch = 0;
  for (char byte = read_byte(fds[0]); byte != 0; byte = read_byte(fds[0])) {
    if (byte == kBatchCommitted) ++outcome.committed_reported;
    // A commit ends the batch: its progress must not count towards the next one.
    if (byte == kBatchStarted || byte == kBatchCommitted) progress_in_batch = 0;
    if (byte == kRowsProgress) ++progress_in_batch;
    if (!killed && outcome.committed_reported >= commits_before_kill &&
        progress_in_batch >= progress_before_kill) {
      ::kill(child, SIGKILL);
      killed = true;
    }
  }
  // End of file: the child is gone. Commits reported after the kill byte still count.
  ::waitpid(child, &outcome.wait_status, 0);
  ::close(fds[0]);
  return outcome;
}

TEST(CrashSafety, WriterKilledMidBatchLeavesWholeBatchesAndPassesIntegrity) {
  TempDir dir;
  const auto path = dir / "crash.db";
  {
    Result<Database> db = Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_TRUE(db->upsert_cell(make_cell("c1")).ok());
  }
  testing::raw_exec(path, "CREATE TRIGGER progress AFTER INSERT ON cycles WHEN NEW.cycle % " +
                              std::to_string(kRowsPerProgress) +
                              " = 0 BEGIN SELECT report_progress(NEW.cycle); END");
  const ProgressFunction progress_function;
  // Rows of the batch written when the kill is sent: early, middle, late, and all of them
  // (the kill then lands in the commit itself).
  constexpr int kProgressBeforeKill[] = {2, 10, 19,
                                         static_cast<int>(kBatchRows / kRowsPerProgress)};
  std::int64_t batches_before = 0;
  int round = 0;
  for (const int progress_before_kill : kProgressBeforeKill) {
    ++round;
    const KillOutcome outcome = kill_writer_mid_batch(path, round, progress_before_kill);
    ASSERT_TRUE(WIFSIGNALED(outcome.wait_status))
        << "writer exited by itself with status " << WEXITSTATUS(outcome.wait_status);
    ASSERT_EQ(WTERMSIG(outcome.wait_status), SIGKILL);

    Result<Database> db = Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    Result<CheckReport> report = db->check();
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_TRUE(report->integrity_ok) << report->integrity_messages.front();
    const std::int64_t rows = report->counts.cycles;
    ASSERT_EQ(rows % kBatchRows, 0) << "a partial batch survived: " << rows << " rows";
    const std::int64_t batches = rows / kBatchRows - batches_before;
    // Every acknowledged batch is there; at most one more committed before its report.
    EXPECT_GE(batches, outcome.committed_reported) << "round " << round;
    EXPECT_LE(batches, outcome.committed_reported + 1) << "round " << round;
    // Whole batches are consecutive cycle numbers: no holes where a batch was lost.
    Result<std::vector<CellSummary>> cells = db->cells();
    ASSERT_TRUE(cells.ok());
    EXPECT_EQ(cells->front().first_cycle, rows > 0 ? 1 : 0);
    EXPECT_EQ(cells->front().last_cycle, rows);
    batches_before += batches;
  }
}

}  // namespace
}  // namespace cyclecast::storage
