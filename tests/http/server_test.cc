// The HTTP layer of the operators' API over real loopback HTTP: routes and their JSON, auth,
// validation of path segments before the backend, size limits, keep-alive and concurrency.
#include <sys/stat.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cyclecast/http/client.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::read_file;
using cyclecast::testing::write_file;

class ServerTest : public HttpTest {
 protected:
  ApiClient client(const std::string& token = "") const {
    ClientOptions options;
    options.base_url = base_url();
    options.token = token;
    auto made = ApiClient::create(options);
    EXPECT_TRUE(made.ok());
    return std::move(*made);
  }
  Response get(const std::string& path) const {
    auto response = client().get(path);
    EXPECT_TRUE(response.ok()) << response.error().message;
    return response.ok() ? *response : Response{};
  }
  Response post(const std::string& path, const std::string& token,
                const json& body = json::object()) {
    auto response = client(token).post(path, body);
    EXPECT_TRUE(response.ok()) << response.error().message;
    return response.ok() ? *response : Response{};
  }
  static json body_of(const Response& response) { return json::parse(response.body); }
};

TEST_F(ServerTest, ServesHealthAndMetrics) {
  start();
  const Response health = get("/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.content_type, "application/json");
  EXPECT_EQ(body_of(health)["status"], "ok");
  const Response metrics = get("/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body, backend_.metrics());
}

TEST_F(ServerTest, DegradedHealthIs503WithTheSameBody) {
  backend_.health_status = "degraded";
  start();
  const Response health = get("/healthz");
  EXPECT_EQ(health.status, 503u);
  EXPECT_EQ(body_of(health)["status"], "degraded");
}

TEST_F(ServerTest, ServesCellsModelsAndRunsAsTheBackendGivesThem) {
  start();
  EXPECT_EQ(body_of(get("/api/v1/cells")), backend_.cells_json);
  const json cell = body_of(get("/api/v1/cells/c1"));
  EXPECT_EQ(cell["cell"]["cell_id"], "c1");
  EXPECT_EQ(cell["forecasts"].size(), 1u);
  EXPECT_EQ(body_of(get("/api/v1/models")), backend_.models_json);
  EXPECT_EQ(body_of(get("/api/v1/models/m-1"))["status"], "champion");
  EXPECT_EQ(body_of(get("/api/v1/runs")), backend_.runs_json);
  EXPECT_EQ(body_of(get("/api/v1/runs/1"))["status"], "succeeded");
  const auto calls = backend_.calls();
  EXPECT_EQ(calls,
            (std::vector<std::string>{"cells", "cell:c1", "models", "model:m-1", "runs", "run:1"}));
}

TEST_F(ServerTest, BackendErrorsMapToStatusesWithTheirMessage) {
  backend_.run_in_progress = true;
  start({}, "s3cret");
  const Response missing = get("/api/v1/cells/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(body_of(missing)["error"], "no cell 'nope'");
  EXPECT_EQ(get("/api/v1/runs/99").status, 404u);
  const Response busy = post("/api/v1/retrain", "s3cret");
  EXPECT_EQ(busy.status, 409u);
  EXPECT_EQ(body_of(busy)["error"], "run 2 is in progress");
}

TEST_F(ServerTest, StreamsTheBundleAndTheReportByteIdentical) {
  start();
  RawConnection connection(port());
  const RawResponse bundle = connection.exchange(request_text("GET", "/api/v1/models/m-1/bundle"));
  EXPECT_EQ(bundle.status, 200u);
  EXPECT_EQ(bundle.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(bundle.header("Content-Disposition"), "attachment; filename=\"m-1.ccb\"");
  EXPECT_EQ(bundle.header("Content-Length"), std::to_string(backend_.bundle_bytes.size()));
  EXPECT_TRUE(bundle.body == backend_.bundle_bytes);
  const RawResponse report = connection.exchange(request_text("GET", "/api/v1/runs/1/report"));
  EXPECT_EQ(report.status, 200u);
  EXPECT_EQ(report.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(report.body, backend_.report_html);
  EXPECT_EQ(connection.exchange(request_text("GET", "/api/v1/runs/2/report")).status, 404u);
}

TEST_F(ServerTest, MutatingRoutesAreDisabledWithoutATokenFile) {
  start();
  const Response refused = post("/api/v1/retrain", "anything");
  EXPECT_EQ(refused.status, 403u);
  EXPECT_NE(body_of(refused)["error"].get<std::string>().find("disabled"), std::string::npos);
  EXPECT_EQ(post("/api/v1/models/m-2/promote", "").status, 403u);
  EXPECT_EQ(post("/api/v1/rollback", "").status, 403u);
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, MutatingRoutesNeedTheRightBearerToken) {
  start({}, "s3cret-token");
  RawConnection connection(port());
  const RawResponse anonymous = connection.exchange(request_text("POST", "/api/v1/retrain"));
  EXPECT_EQ(anonymous.status, 401u);
  EXPECT_EQ(anonymous.header("WWW-Authenticate"), "Bearer realm=\"cyclecast\"");
  EXPECT_EQ(connection
                .exchange(request_text("POST", "/api/v1/retrain",
                                       "Authorization: Basic czNjcmV0LXRva2Vu\r\n"))
                .status,
            401u);
  EXPECT_EQ(post("/api/v1/retrain", "wrong").status, 403u);
  EXPECT_EQ(post("/api/v1/retrain", "s3cret-tokenX").status, 403u);
  EXPECT_EQ(post("/api/v1/retrain", "s3cret-toke").status, 403u);
  EXPECT_TRUE(backend_.calls().empty());

  EXPECT_EQ(post("/api/v1/retrain", "s3cret-token").status, 200u);
  EXPECT_EQ(
      post("/api/v1/models/m-2/promote", "s3cret-token", {{"who", "ana@lab"}, {"why", "better"}})
          .status,
      200u);
  EXPECT_EQ(post("/api/v1/rollback", "s3cret-token", {{"why", "drift"}}).status, 200u);
  EXPECT_EQ(backend_.calls(),
            (std::vector<std::string>{"retrain:api:", "promote:m-2:ana@lab:better",
                                      "rollback:api:drift"}));
}

TEST_F(ServerTest, MovingACellNeedsTheTokenAndAValidRig) {
  start({}, "s3cret-token");
  EXPECT_EQ(post("/api/v1/cells/b2c7/move", "", {{"rig", "rig-b"}}).status, 401u);
  EXPECT_EQ(post("/api/v1/cells/b2c7/move", "s3cret-token").status, 400u);
  EXPECT_EQ(post("/api/v1/cells/b2c7/move", "s3cret-token", {{"rig", "a/b"}}).status, 400u);
  EXPECT_EQ(post("/api/v1/cells/b2c7/move", "s3cret-token", {{"rig", 7}}).status, 400u);
  EXPECT_TRUE(backend_.calls().empty());
  const Response moved =
      post("/api/v1/cells/b2c7/move", "s3cret-token", {{"rig", "rig-b"}, {"why", "rewired"}});
  EXPECT_EQ(moved.status, 200u);
  EXPECT_EQ(body_of(moved)["rig_id"], "rig-b");
  EXPECT_EQ(post("/api/v1/cells/nope/move", "s3cret-token", {{"rig", "rig-b"}}).status, 404u);
  EXPECT_EQ(backend_.calls(),
            (std::vector<std::string>{"move:b2c7:rig-b:api:rewired", "move:nope:rig-b:api:"}));
}

TEST_F(ServerTest, AnswersExpect100ContinueThenReadsTheBody) {
  start({}, "t");
  RawConnection connection(port());
  connection.send(
      "POST /api/v1/rollback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
      "Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n");
  connection.send(R"({"why":"drift"})");
  EXPECT_EQ(connection.receive().status, 200u);  // after the interim 100, which receive() skips
  EXPECT_EQ(backend_.calls(), (std::vector<std::string>{"rollback:api:drift"}));
}

TEST_F(ServerTest, RefusesMalformedCallerBodies) {
  start({}, "t");
  EXPECT_EQ(post("/api/v1/rollback", "t", {{"who", 7}}).status, 400u);
  EXPECT_EQ(post("/api/v1/rollback", "t", {{"why", "line\nbreak"}}).status, 400u);
  EXPECT_EQ(post("/api/v1/rollback", "t", json::array()).status, 400u);
  RawConnection connection(port());
  EXPECT_EQ(connection
                .exchange(request_text("POST", "/api/v1/rollback", "Authorization: Bearer t\r\n",
                                       "{not json"))
                .status,
            400u);
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, ReloadedTokenReplacesTheOldOne) {
  start({}, "old");
  write_file(dir_ / "api-token", "new\n");
  ASSERT_TRUE(server_->reload_token().ok());
  EXPECT_EQ(post("/api/v1/rollback", "old").status, 403u);
  EXPECT_EQ(post("/api/v1/rollback", "new").status, 200u);
}

TEST_F(ServerTest, RefusesToStartWithATokenFileOthersCanRead) {
  const fs::path token = dir_ / "api-token";
  write_file(token, "s3cret\n");
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
  ServerOptions options;
  options.port = 0;
  options.token_file = token;
  HttpServer server(io_, backend_, options);
  auto started = server.start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(started.error().message.find("other users"), std::string::npos)
      << started.error().message;
  EXPECT_EQ(server.port(), 0);
}

TEST_F(ServerTest, RefusesToStartWithAMissingOrEmptyTokenFile) {
  ServerOptions options;
  options.port = 0;
  options.token_file = dir_ / "absent";
  HttpServer missing(io_, backend_, options);
  auto started = missing.start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::kNotFound);
  write_file(dir_ / "empty", " \n");
  fs::permissions(dir_ / "empty", fs::perms::owner_read);
  options.token_file = dir_ / "empty";
  HttpServer empty(io_, backend_, options);
  started = empty.start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(ServerTest, PathEscapesNeverReachTheBackend) {
  start();
  const std::vector<std::string> targets = {
      "/api/v1/cells/..",
      "/api/v1/cells/.",
      "/api/v1/cells/%2e%2e",
      "/api/v1/cells/%2E%2E%2Fetc%2Fpasswd",
      "/api/v1/cells/a%2fb",
      "/api/v1/cells/a%2Fb",
      "/api/v1/cells/%00",
      "/api/v1/cells/a%00b",
      "/api/v1/cells/%252e%252e",
      "/api/v1/cells/..%5c..%5cwindows",
      "/api/v1/cells/.hidden",
      "/api/v1/cells/%zz",
      "/api/v1/cells/a%2",
      "/api/v1/cells/" + std::string(65, 'a'),
      "/api/v1/cells/",
      "/api/v1/models/..%2f..%2fetc%2fpasswd/bundle",
      "/api/v1/models/../bundle",
      "/api/v1/models/m-1/../../etc/passwd",
      "/api/v1/models/m-1/bundle/..",
      "/api/v1/runs/..%2f1/report",
      "/api/v1/runs/0",
      "/api/v1/runs/-1",
      "/api/v1/runs/+1",
      "/api/v1/runs/1e3",
      "/api/v1/runs/99999999999999999999",
      "/api/v1/../healthz",
      "/api/v1/cells/../../healthz",
      "/../etc/passwd",
      "//etc/passwd",
      "api/v1/cells",
  };
  for (const auto& target : targets) {
    RawConnection connection(port());
    const RawResponse response = connection.exchange(request_text("GET", target));
    EXPECT_TRUE(response.status == 400u || response.status == 404u)
        << target << " answered " << response.status;
  }
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, RawNulAndControlBytesInTheTargetAre400) {
  start();
  for (const std::string& target :
       {std::string("/api/v1/cells/a\0b", 17), std::string("/api/v1/cells/a\tb"),
        std::string("/api/v1/cells/a\x7f"
                    "b")}) {
    RawConnection connection(port());
    EXPECT_EQ(connection.exchange(request_text("GET", target)).status, 400u);
  }
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, AcceptsTheWholeRangeOfValidNames) {
  start();
  const std::string longest(64, 'z');
  EXPECT_EQ(get("/api/v1/cells/" + longest).status, 404u);
  EXPECT_EQ(get("/api/v1/cells/A-z_0.9").status, 404u);
  EXPECT_EQ(get("/api/v1/cells/c%31").status, 200u);  // decoded once: c1
  EXPECT_EQ(get("/api/v1/cells/c1?with=query").status, 200u);
  EXPECT_EQ(backend_.calls(),
            (std::vector<std::string>{"cell:" + longest, "cell:A-z_0.9", "cell:c1", "cell:c1"}));
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start({}, "t");
  EXPECT_EQ(get("/api/v2/cells").status, 404u);
  EXPECT_EQ(get("/api").status, 404u);
  EXPECT_EQ(get("/index.html").status, 404u);  // the dashboard is "/" only
  RawConnection connection(port());
  RawResponse response = connection.exchange(request_text("DELETE", "/api/v1/cells"));
  EXPECT_EQ(response.status, 405u);
  EXPECT_EQ(response.header("Allow"), "GET");
  response = connection.exchange(request_text("FROB", "/healthz"));
  EXPECT_EQ(response.status, 405u);
  response = connection.exchange(request_text("GET", "/api/v1/retrain"));
  EXPECT_EQ(response.status, 405u);
  EXPECT_EQ(response.header("Allow"), "POST");
  response =
      connection.exchange(request_text("POST", "/api/v1/cells", "Authorization: Bearer t\r\n"));
  EXPECT_EQ(response.status, 405u);
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, OverlongTargetIs414) {
  ServerOptions options;
  options.max_target_bytes = 1024;
  start(options);
  RawConnection connection(port());
  const RawResponse response =
      connection.exchange(request_text("GET", "/api/v1/cells/" + std::string(2000, 'a')));
  EXPECT_EQ(response.status, 414u);
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, OversizedHeaderIs431) {
  ServerOptions options;
  options.max_header_bytes = 4096;
  start(options);
  RawConnection connection(port());
  const RawResponse response = connection.exchange(
      request_text("GET", "/healthz", "X-Padding: " + std::string(20000, 'x') + "\r\n"));
  EXPECT_EQ(response.status, 431u);
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, OversizedBodyIs413WhetherAnnouncedOrSent) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  start(options, "t");
  {
    RawConnection announced(port());
    const RawResponse response = announced.exchange(
        "POST /api/v1/rollback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
        "Content-Length: 100000\r\n\r\n");
    EXPECT_EQ(response.status, 413u);
  }
  {
    RawConnection chunked(port());
    const std::string chunk(3000, 'x');
    const RawResponse response = chunked.exchange(
        "POST /api/v1/rollback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
        "Transfer-Encoding: chunked\r\n\r\nbb8\r\n" +
        chunk + "\r\n0\r\n\r\n");
    EXPECT_EQ(response.status, 413u);
  }
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ServerTest, KeepsTheConnectionAliveAcrossRequests) {
  start();
  RawConnection connection(port());
  for (const char* target : {"/healthz", "/api/v1/cells", "/api/v1/cells/nope", "/api/v1/runs/1"}) {
    const RawResponse response = connection.exchange(request_text("GET", target));
    EXPECT_NE(response.status, 0u) << target;
    EXPECT_FALSE(response.header("Content-Type").empty()) << target;
    EXPECT_FALSE(response.header("Content-Length").empty()) << target;
  }
  EXPECT_EQ(backend_.calls().size(), 4u);
}

TEST_F(ServerTest, ASlowBackendCallDoesNotBlockOtherConnections) {
  start();
  backend_.hold_cells();
  auto slow = std::async(std::launch::async, [this] { return client().get("/api/v1/cells"); });
  backend_.wait_until_blocked();
  EXPECT_EQ(get("/healthz").status, 200u);
  backend_.release_cells();
  const auto cells = slow.get();
  ASSERT_TRUE(cells.ok()) << cells.error().message;
  EXPECT_EQ(cells->status, 200u);
}

TEST_F(ServerTest, ServesConcurrentClientsWithTheLoopOnSeveralThreads) {
  start({}, "t", 3);
  std::vector<std::future<int>> clients;
  for (int c = 0; c < 6; ++c) {
    clients.push_back(std::async(std::launch::async, [this, c] {
      int ok = 0;
      RawConnection connection(port());  // keep-alive on one, fresh connections on the other
      for (int i = 0; i < 20; ++i) {
        const std::string target = i % 2 == 0 ? "/api/v1/cells" : "/api/v1/models/m-1";
        if (c % 2 == 0) {
          ok += connection.exchange(request_text("GET", target)).status == 200u ? 1 : 0;
        } else {
          ok += get(target).status == 200u ? 1 : 0;
        }
      }
      return ok;
    }));
  }
  for (auto& client : clients)
    EXPECT_EQ(client.get(), 20);
  EXPECT_EQ(post("/api/v1/rollback", "t").status, 200u);
  EXPECT_EQ(backend_.calls().size(), 6u * 20u + 1u);
}

TEST_F(ServerTest, ReportsEachRequestToTheAccessLog) {
  std::mutex mutex;
  std::condition_variable logged;
  std::vector<AccessLogEntry> entries;
  ServerOptions options;
  options.access_log = [&](const AccessLogEntry& entry) {
    std::lock_guard lock(mutex);
    entries.push_back(entry);
    logged.notify_all();
  };
  start(options);
  RawConnection connection(port());
  ASSERT_EQ(connection.exchange(request_text("GET", "/api/v1/cells/nope")).status, 404u);
  std::unique_lock lock(mutex);
  logged.wait(lock, [&] { return !entries.empty(); });  // written once the response is sent
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].method, "GET");
  EXPECT_EQ(entries[0].target, "/api/v1/cells/nope");
  EXPECT_EQ(entries[0].status, 404u);
  EXPECT_EQ(entries[0].remote.rfind("127.0.0.1:", 0), 0u);
}

TEST(IsLoopback, KnowsLoopbackFromEverythingElse) {
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.1.2.3"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("::"));
  EXPECT_FALSE(is_loopback("192.168.1.10"));
  EXPECT_FALSE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback(""));
}

}  // namespace
}  // namespace cyclecast::http::testing
