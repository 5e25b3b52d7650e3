// The MQTT connection's reconnect backoff (mqtt/).
#include "cyclecast/mqtt/client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace cyclecast::mqtt {
namespace {

TEST(DaemonReconnect, DelayDoublesUpToTheCapWithJitterInTheUpperHalf) {
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 12; ++attempt) {
    long long full = 100;
    for (int i = 0; i < attempt; ++i)
      full = std::min(full * 2, 5000LL);
    for (int draw = 0; draw < 50; ++draw) {
      const int delay = reconnect_delay_ms(attempt, 100, 5000, rng);
      EXPECT_GE(delay, full / 2) << "attempt " << attempt;
      EXPECT_LE(delay, full) << "attempt " << attempt;
    }
  }
}

}  // namespace
}  // namespace cyclecast::mqtt
