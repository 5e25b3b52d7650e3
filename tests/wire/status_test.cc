// The daemon status payload of protocol v1 (docs/protocol.md, "Daemon status").
#include <gtest/gtest.h>

#include <string>

#include "cyclecast/wire/protocol.h"

namespace cyclecast::protocol {
namespace {

TEST(DaemonStatus, OnlineCarriesTheStartId) {
  const Status status = parse_status("online 9f3c2a1b7d4e5f60");
  EXPECT_EQ(status.state, "online");
  EXPECT_EQ(status.start_id, "9f3c2a1b7d4e5f60");
}

TEST(DaemonStatus, ABareOnlineFromAnOlderDaemonHasNoStartId) {
  const Status status = parse_status("online");
  EXPECT_EQ(status.state, "online");
  EXPECT_EQ(status.start_id, "");
}

TEST(DaemonStatus, OfflineAndEmptyPayloads) {
  EXPECT_EQ(parse_status("offline").state, "offline");
  EXPECT_EQ(parse_status("").state, "");
  EXPECT_EQ(parse_status("").start_id, "");
}

TEST(DaemonStatus, AStartIdOutsideTheIdRuleIsDropped) {
  EXPECT_EQ(parse_status("online ").start_id, "");
  EXPECT_EQ(parse_status("online a b").start_id, "");
  EXPECT_EQ(parse_status("online a/b").start_id, "");
  EXPECT_EQ(parse_status("online .hidden").start_id, "");
  EXPECT_EQ(parse_status("online " + std::string(65, 'a')).start_id, "");
  EXPECT_EQ(parse_status("online " + std::string(64, 'a')).start_id, std::string(64, 'a'));
  EXPECT_EQ(parse_status("online a b").state, "online");
}

}  // namespace
}  // namespace cyclecast::protocol
