// What every response carries (a Date header, RFC 9110) and what a change's body may hold: its
// documented fields only, so that a typo such as "whyy" is refused instead of silently losing the
// reason (docs/api.md, "Changes").
#include <ctime>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http_date.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

using namespace std::chrono_literals;

TEST(ImfFixdate, WritesRfc9110sExample) {
  // RFC 9110, section 5.6.7: 784111777 is "Sun, 06 Nov 1994 08:49:37 GMT".
  EXPECT_EQ(imf_fixdate(std::chrono::system_clock::from_time_t(784111777)),
            "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(imf_fixdate(std::chrono::system_clock::from_time_t(0)),
            "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(imf_fixdate(std::chrono::system_clock::from_time_t(1709208000)),  // a leap day
            "Thu, 29 Feb 2024 12:00:00 GMT");
  EXPECT_EQ(imf_fixdate(std::chrono::system_clock::from_time_t(1798761599)),
            "Thu, 31 Dec 2026 23:59:59 GMT");
}

// The seconds since the epoch of an IMF-fixdate, or -1 when `text` is not one.
std::time_t parse_imf_fixdate(const std::string& text) {
  static const std::regex kFixdate(
      R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) )"
      R"(\d{4} \d\d:\d\d:\d\d GMT$)");
  if (!std::regex_match(text, kFixdate)) return -1;
  std::tm utc{};
  if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &utc) == nullptr) return -1;
  return timegm(&utc);
}

class DateAndFields : public HttpTest {};

TEST_F(DateAndFields, EveryResponseCarriesTheDateAsAnImfFixdate) {
  start({}, "t");
  const std::vector<std::string> requests = {
      request_text("GET", "/healthz"),                   // 200 JSON
      request_text("GET", "/metrics"),                   // 200 text
      request_text("GET", "/api/v1/models/m-1/bundle"),  // 200 streamed file
      request_text("GET", "/api/v1/cells/nope"),         // 404 from the backend
      request_text("GET", "/nowhere"),                   // 404 from the router
      request_text("GET", "/api/v1/cells/%2e%2e"),       // 400 bad id
      request_text("POST", "/api/v1/cells"),             // 405
      request_text("POST", "/api/v1/rollback"),          // 401
      request_text("POST", "/api/v1/rollback", "Authorization: Bearer x\r\n"),  // 403
      request_text("GET", "/" + std::string(3000, 'a')),                        // 414
  };
  for (const std::string& request : requests) {
    const std::time_t before = std::time(nullptr);
    RawConnection connection(port());
    const RawResponse response = connection.exchange(request);
    const std::time_t after = std::time(nullptr);
    ASSERT_NE(response.status, 0u) << request;
    const std::string date = response.header("Date");
    const std::time_t sent = parse_imf_fixdate(date);
    EXPECT_NE(sent, -1) << response.status << " has Date '" << date << "'";
    EXPECT_LE(before, sent) << date;
    EXPECT_LE(sent, after) << date;
  }
  // A request the parser refuses is answered with a Date too.
  RawConnection connection(port());
  const RawResponse malformed = connection.exchange("GET / HTTP/1.1\r\nHost x\r\n\r\n");
  EXPECT_EQ(malformed.status, 400u);
  EXPECT_NE(parse_imf_fixdate(malformed.header("Date")), -1) << malformed.header("Date");
}

TEST_F(DateAndFields, EveryChangeRefusesAnUnknownFieldNamingIt) {
  start({}, "t");
  const std::vector<std::string> changes = {"/api/v1/retrain", "/api/v1/models/m-2/promote",
                                            "/api/v1/rollback", "/api/v1/cells/b2c7/move"};
  for (const std::string& path : changes) {
    RawConnection connection(port());
    const std::string body = R"({"rig": "rig-b", "who": "ana", "whyy": "beats m-1"})";
    const RawResponse refused =
        connection.exchange(request_text("POST", path, "Authorization: Bearer t\r\n", body));
    EXPECT_EQ(refused.status, 400u) << path;
    const json error = json::parse(refused.body, nullptr, false);
    ASSERT_TRUE(error.is_object()) << refused.body;
    const std::string message = error.value("error", "");
    EXPECT_NE(message.find("\"whyy\""), std::string::npos) << path << ": " << message;
    EXPECT_NE(message.find("\"why\""), std::string::npos) << path << ": " << message;
  }
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(DateAndFields, RigIsAFieldOfAMoveOnly) {
  start({}, "t");
  RawConnection connection(port());
  const RawResponse promote = connection.exchange(request_text(
      "POST", "/api/v1/models/m-2/promote", "Authorization: Bearer t\r\n", R"({"rig": "rig-b"})"));
  EXPECT_EQ(promote.status, 400u);
  EXPECT_NE(promote.body.find("\\\"rig\\\""), std::string::npos) << promote.body;
  const RawResponse moved = connection.exchange(
      request_text("POST", "/api/v1/cells/b2c7/move", "Authorization: Bearer t\r\n",
                   R"({"rig": "rig-b", "who": "ana", "why": "rewired"})"));
  EXPECT_EQ(moved.status, 200u) << moved.body;
  EXPECT_EQ(backend_.calls(), (std::vector<std::string>{"move:b2c7:rig-b:ana:rewired"}));
}

TEST_F(DateAndFields, UnknownFieldsAreQuotedAsJsonAndCutShort) {
  start({}, "t");
  RawConnection connection(port());
  const std::string long_name(1000, 'k');
  const RawResponse refused =
      connection.exchange(request_text("POST", "/api/v1/rollback", "Authorization: Bearer t\r\n",
                                       R"({"a\"b\n": 1, "why": "x", ")" + long_name + R"(": 2})"));
  EXPECT_EQ(refused.status, 400u);
  const json error = json::parse(refused.body, nullptr, false);
  ASSERT_TRUE(error.is_object()) << refused.body;
  const std::string message = error["error"];
  EXPECT_EQ(message, R"(unknown fields "a\"b\n", ")" + std::string(64, 'k') +
                         R"(..." in the body; this endpoint takes "who", "why")");
}

}  // namespace
}  // namespace cyclecast::http::testing
