// DaemonStarts: a rig re-sends what is in flight once per distinct daemon start, and never more
// often than its interval, whatever the status topics carry (docs/protocol.md, "Daemon status").
#include <gtest/gtest.h>

#include <chrono>

#include "cyclecast/rig/rig.h"

namespace cyclecast::rig {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const char* const kTopic = "cyclecast/v1/daemons/cyclecastd/status";

class DaemonStartsTest : public ::testing::Test {
 protected:
  DaemonStarts starts_{seconds(5)};
  DaemonStarts::Clock::time_point t0_{};
};

TEST_F(DaemonStartsTest, ANewStartIdReSendsOnce) {
  starts_.seen(kTopic, "online 0000000000000001", false);
  EXPECT_TRUE(starts_.resend_due(t0_));
  EXPECT_FALSE(starts_.resend_due(t0_ + seconds(60)));
  EXPECT_EQ(starts_.resends(), 1u);
  EXPECT_EQ(starts_.ignored(), 0u);
}

TEST_F(DaemonStartsTest, TheSameStartIdRepeatedReSendsNothingMore) {
  starts_.seen(kTopic, "online 0000000000000001", false);
  EXPECT_TRUE(starts_.resend_due(t0_));
  for (int i = 0; i < 50; ++i)
    starts_.seen(kTopic, "online 0000000000000001", false);
  EXPECT_FALSE(starts_.resend_due(t0_ + seconds(60)));
  EXPECT_EQ(starts_.resends(), 1u);
  EXPECT_EQ(starts_.ignored(), 50u);
}

TEST_F(DaemonStartsTest, TheRetainedStartIsRememberedNotActedOn) {
  starts_.seen(kTopic, "online 00000000000000aa", true);
  EXPECT_FALSE(starts_.resend_due(t0_));
  starts_.seen(kTopic, "online 00000000000000aa", false);  // a replay of the current start
  EXPECT_FALSE(starts_.resend_due(t0_ + seconds(60)));
  EXPECT_EQ(starts_.resends(), 0u);
  EXPECT_EQ(starts_.ignored(), 1u);
}

TEST_F(DaemonStartsTest, StatusesWithoutIdReSendAtMostOncePerInterval) {
  for (int i = 0; i < 50; ++i)
    starts_.seen(kTopic, "online", false);
  EXPECT_TRUE(starts_.resend_due(t0_));
  for (int i = 0; i < 50; ++i)
    starts_.seen(kTopic, "online", false);
  EXPECT_FALSE(starts_.resend_due(t0_ + milliseconds(4999)));
  EXPECT_TRUE(starts_.resend_due(t0_ + seconds(5)));
  EXPECT_FALSE(starts_.resend_due(t0_ + seconds(60)));
  EXPECT_EQ(starts_.resends(), 2u);
  EXPECT_EQ(starts_.ignored(), 98u);
}

TEST_F(DaemonStartsTest, AFloodOfDistinctIdsIsHeldToTheInterval) {
  int due = 0;
  for (int i = 0; i < 1000; ++i) {
    starts_.seen(kTopic, "online id-" + std::to_string(i), false);
    due += starts_.resend_due(t0_ + milliseconds(10 * i)) ? 1 : 0;  // 10 s in all
  }
  EXPECT_EQ(due, 2);  // at 0 and at 5 s
}

TEST_F(DaemonStartsTest, ARestartWithinTheIntervalIsDeferredNotDropped) {
  starts_.seen(kTopic, "online", false);  // a spoofed status
  EXPECT_TRUE(starts_.resend_due(t0_));
  starts_.seen(kTopic, "online 0000000000000002", false);  // the daemon really restarts
  EXPECT_FALSE(starts_.resend_due(t0_ + seconds(1)));
  EXPECT_TRUE(starts_.resend_due(t0_ + seconds(5)));
}

TEST_F(DaemonStartsTest, EachStatusTopicHasItsOwnStarts) {
  starts_.seen(kTopic, "online 0000000000000001", true);
  starts_.seen("cyclecast/v1/daemons/cyclecast-gateway-n1/status", "online 0000000000000001",
               false);
  EXPECT_TRUE(starts_.resend_due(t0_));
}

TEST_F(DaemonStartsTest, OfflineAndOtherStatesAreNotStarts) {
  starts_.seen(kTopic, "offline", false);
  starts_.seen(kTopic, "onlinex 1", false);
  starts_.seen(kTopic, "", false);
  EXPECT_FALSE(starts_.resend_due(t0_));
  EXPECT_EQ(starts_.ignored(), 0u);
}

}  // namespace
}  // namespace cyclecast::rig
