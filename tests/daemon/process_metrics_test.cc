// The process metrics' reading of /proc/self/stat (docs/daemon.md, "Metrics"): fields counted
// after the command name, which may itself hold spaces and parentheses.
#include <gtest/gtest.h>

#include "process_metrics.h"

namespace cyclecast::daemon {
namespace {

// Fields 3 to 24 of proc(5): state ... utime (14) = 250, stime (15) = 50, starttime (22) = 1000,
// vsize (23) = 4096000, rss (24) = 300 pages.
constexpr const char* kTail =
    " S 1 2 3 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 4096000 300 18446744073709551615\n";

TEST(ProcStat, ReadsCpuStartAndMemoryAfterTheCommandName) {
  const std::string stat = std::string("4242 (cycle) (castd)") + kTail;
  const auto sample = parse_proc_stat(stat, 1'700'000'000.0, 100.0, 4096.0);
  ASSERT_TRUE(sample.has_value());
  EXPECT_DOUBLE_EQ(sample->cpu_seconds, 3.0);
  EXPECT_DOUBLE_EQ(sample->start_time_s, 1'700'000'010.0);
  EXPECT_EQ(sample->virtual_bytes, 4'096'000u);
  EXPECT_EQ(sample->resident_bytes, 300u * 4096u);
}

TEST(ProcStat, RefusesWhatIsNotAStatLine) {
  EXPECT_FALSE(parse_proc_stat("", 0, 100, 4096).has_value());
  EXPECT_FALSE(parse_proc_stat("4242 cyclecastd S 1 2", 0, 100, 4096).has_value());
  EXPECT_FALSE(parse_proc_stat("4242 (c) S 1 2 3", 0, 100, 4096).has_value());
  const std::string letters = std::string("1 (c)") + " S" + std::string(40, ' ') +
                              " a b c d e f g h i j k l m n o p q r s t u v";
  EXPECT_FALSE(parse_proc_stat(letters, 0, 100, 4096).has_value());
  EXPECT_FALSE(parse_proc_stat(std::string("1 (c)") + kTail, 0, 0, 4096).has_value());
}

TEST(ProcStat, ThisProcessHasCpuTimeMemoryAndOpenFiles) {
  const auto sample = sample_this_process();
  ASSERT_TRUE(sample.has_value());
  EXPECT_GT(sample->resident_bytes, 0u);
  EXPECT_GE(sample->open_fds, 3u);  // stdin, stdout, stderr at least
  EXPECT_GT(sample->start_time_s, 1e9);
}

}  // namespace
}  // namespace cyclecast::daemon
