// The dashboard's files as the server sends them (docs/dashboard.md): from the binary, with their
// Content-Type, a strict Content-Security-Policy, revalidation by ETag (304), GET only, and no
// backend call. What the pages do in a browser: tests/browser/.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dashboard.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

class DashboardFiles : public HttpTest {};

TEST_F(DashboardFiles, ThePageAndItsFilesAreServedWithTypeAndPolicy) {
  start({}, "t");
  const std::vector<std::pair<std::string, std::string>> files = {
      {"/", "text/html; charset=utf-8"},
      {"/?from=bookmark", "text/html; charset=utf-8"},
      {"/dashboard/app.js", "text/javascript; charset=utf-8"},
      {"/dashboard/style.css", "text/css; charset=utf-8"},
      {"/dashboard/icon.svg", "image/svg+xml"},
      {"/dashboard/chart.min.js", "text/javascript; charset=utf-8"},
  };
  for (const auto& [target, type] : files) {
    RawConnection connection(port());
    const RawResponse response = connection.exchange(request_text("GET", target));
    ASSERT_EQ(response.status, 200u) << target;
    EXPECT_EQ(response.header("Content-Type"), type) << target;
    EXPECT_EQ(response.header("Content-Security-Policy"), kDashboardPolicy) << target;
    EXPECT_EQ(response.header("Cache-Control"), "no-cache") << target;
    EXPECT_EQ(response.header("X-Content-Type-Options"), "nosniff") << target;
    EXPECT_EQ(response.header("ETag").size(), 34u) << target;  // 32 hex digits, quoted
    EXPECT_FALSE(response.body.empty()) << target;
  }
  EXPECT_TRUE(backend_.calls().empty()) << "the files need no backend call";
}

TEST_F(DashboardFiles, ThePageLoadsOnlyItsOwnScriptsAndStyles) {
  start();
  RawConnection connection(port());
  const std::string page = connection.exchange(request_text("GET", "/")).body;
  EXPECT_NE(page.find("<script src=\"/dashboard/chart.min.js\" defer></script>"),
            std::string::npos);
  EXPECT_NE(page.find("<script src=\"/dashboard/app.js\" defer></script>"), std::string::npos);
  // No inline script or style, which the policy would block anyway.
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(page.find("<style"), std::string::npos);
  EXPECT_EQ(page.find("style=\""), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos) << "nothing from elsewhere";
  EXPECT_EQ(page.find("https://"), std::string::npos) << "nothing from elsewhere";
  const std::string chart =
      connection.exchange(request_text("GET", "/dashboard/chart.min.js")).body;
  EXPECT_NE(chart.find("Chart.js v"), std::string::npos) << "Debian's Chart.js, embedded";
}

TEST_F(DashboardFiles, AnUnchangedFileIsNotSentAgain) {
  start();
  RawConnection connection(port());
  const RawResponse first = connection.exchange(request_text("GET", "/dashboard/app.js"));
  const std::string etag = first.header("ETag");
  ASSERT_FALSE(etag.empty());
  for (const std::string& condition : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    const RawResponse again = connection.exchange(
        request_text("GET", "/dashboard/app.js", "If-None-Match: " + condition + "\r\n"));
    EXPECT_EQ(again.status, 304u) << condition;
    EXPECT_TRUE(again.body.empty()) << condition;
    EXPECT_EQ(again.header("ETag"), etag) << condition;
  }
  const RawResponse changed =
      connection.exchange(request_text("GET", "/dashboard/app.js", "If-None-Match: \"0123\"\r\n"));
  EXPECT_EQ(changed.status, 200u);
  EXPECT_EQ(changed.body, first.body);
}

TEST_F(DashboardFiles, UnknownFilesAre404AndOtherMethods405) {
  start({}, "t");
  RawConnection connection(port());
  EXPECT_EQ(connection.exchange(request_text("GET", "/dashboard/")).status, 404u);
  EXPECT_EQ(connection.exchange(request_text("GET", "/dashboard/../healthz")).status, 404u);
  EXPECT_EQ(connection.exchange(request_text("GET", "/dashboard/app.js/x")).status, 404u);
  EXPECT_EQ(connection.exchange(request_text("GET", "/dashboard/%61pp.js")).status, 404u)
      << "file paths are matched as sent";
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD"}) {
    const RawResponse response = connection.exchange(request_text(method, "/"));
    EXPECT_EQ(response.status, 405u) << method;
    EXPECT_EQ(response.header("Allow"), "GET") << method;
  }
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(DashboardFiles, TheNodesAreAnApiRead) {
  start();
  RawConnection connection(port());
  const RawResponse response = connection.exchange(request_text("GET", "/api/v1/nodes"));
  ASSERT_EQ(response.status, 200u);
  EXPECT_EQ(json::parse(response.body), backend_.nodes_json);
  EXPECT_EQ(connection.exchange(request_text("POST", "/api/v1/nodes")).status, 405u);
}

}  // namespace
}  // namespace cyclecast::http::testing
