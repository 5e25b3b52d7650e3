// The one id rule (cyclecast/ids.h) that MQTT topics, the API's paths and CSV import share:
// hostile ids are refused with a reason, every id of the alphabet is accepted.
#include "cyclecast/ids.h"

#include <gtest/gtest.h>

#include <string>

namespace cyclecast {
namespace {

TEST(CheckId, AcceptsIdsOfTheAlphabet) {
  const std::string longest(kMaxIdLength, 'z');
  for (const std::string& id :
       {std::string("b2c0"), std::string("a"), std::string("A-Z_a-z.0-9"), std::string("a..b"),
        std::string("rig-3"), std::string("v1.2.0"), std::string("x."), longest}) {
    EXPECT_EQ(check_id(id), "") << id;
    EXPECT_TRUE(is_valid_id(id)) << id;
  }
}

TEST(CheckId, RefusesIdsOutsideTheAlphabetSayingWhy) {
  EXPECT_EQ(check_id(""), "empty id");
  EXPECT_EQ(check_id(std::string(kMaxIdLength + 1, 'z')), "id of 65 characters exceeds 64");
  EXPECT_EQ(check_id("."), "id '.' starts with '.'");
  EXPECT_EQ(check_id(".."), "id '..' starts with '.'");
  EXPECT_EQ(check_id(".hidden"), "id '.hidden' starts with '.'");
  EXPECT_EQ(check_id(".\x1b[2J"), "id contains a character outside [A-Za-z0-9_.-] (byte 27)");
  EXPECT_FALSE(is_valid_id("../etc"));
  EXPECT_EQ(check_id("a/b"), "id contains a character outside [A-Za-z0-9_.-] (byte 47)");
  EXPECT_EQ(check_id("a b"), "id contains a character outside [A-Za-z0-9_.-] (byte 32)");
  EXPECT_EQ(check_id("b2c\xC3\xA9"), "id contains a character outside [A-Za-z0-9_.-] (byte 195)");
  EXPECT_EQ(check_id(std::string("a\0b", 3)),
            "id contains a character outside [A-Za-z0-9_.-] (byte 0)");
  for (const char* id : {"a+b", "a#b", "a%2e", "a?b", "a\\b", "a\tb", "a\nb", "a\x7f"}) {
    EXPECT_FALSE(is_valid_id(id)) << id;
  }
}

}  // namespace
}  // namespace cyclecast
