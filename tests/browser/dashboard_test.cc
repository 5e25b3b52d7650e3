// The dashboard in a real browser against the real service: a mosquitto on a free loopback port,
// the built cyclecastd on a database of generated fading cells, two training runs (the first
// model champion, the second a candidate), host forecasts scored as cycles arrive and an edge
// forecast published as a gateway would, and a real cyclecast-gateway (no device behind it). Then
// tests/browser/dashboard_check.mjs drives Debian's headless chromium through every page
// (puppeteer-core, installed by scripts/setup under tests/browser/node_modules) and writes
// screenshots at 1280 and 390 px into <build>/test-artifacts/dashboard/.
//
// Labelled "browser": left out of the sanitizer presets (a browser adds nothing there and is slow).
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/wire/edge.h"
#include "service_fixture.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kCells = 6;
constexpr std::int64_t kCycles = 120;
constexpr const char* kToken = "dashboard-test-token";
constexpr const char* kNode = "nano-7";
// The node of the real cyclecast-gateway the test starts (no device behind it: disconnected).
constexpr const char* kGatewayNode = "nano-9";

std::filesystem::path on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (!dir.empty() && std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

// No trigger but the API; margin 0.9 keeps the second run's model a candidate.
class Dashboard : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(seed_service(kToken, kCells, kCycles));
    ASSERT_NO_FATAL_FAILURE(start_daemon(
        tiny_service_config(token_file_, "interval_h = 0\nnew_cycles = 0\nmargin = 0.9\n")));
  }
};

TEST_F(Dashboard, EveryPageInHeadlessChromium) {
  const std::filesystem::path node = on_path("node");
  const std::filesystem::path chromium = on_path("chromium");
  const std::filesystem::path tests = std::filesystem::path(CYCLECAST_SOURCE_DIR) / "tests/browser";
  ASSERT_FALSE(node.empty()) << "node is not installed: run scripts/setup";
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed: run scripts/setup";
  ASSERT_TRUE(std::filesystem::exists(tests / "node_modules/puppeteer-core/package.json"))
      << "puppeteer-core is not installed under tests/browser: run scripts/setup";

  // The champion, forecasting the cells' new cycles; those of t0 score its earlier forecasts.
  const std::string champion = train();
  ASSERT_FALSE(champion.empty());
  ASSERT_TRUE(eventually([&] { return fetch("/healthz")["champion"] == champion; }, 30s)) << log();
  ASSERT_TRUE(eventually(
      [&] { return log().find("forecasting with champion " + champion) != std::string::npos; },
      30s));
  for (int cell = 0; cell < kCells; ++cell)
    ASSERT_TRUE(publish_cycles(cell, kCycles + 1, kCycles + (cell == 0 ? 15 : 2)));

  // An edge forecast of t0, as the gateway of node nano-7 publishes it.
  const Json edge = {{"v", 1},
                     {"node", kNode},
                     {"cell", "t0"},
                     {"cycle", kCycles + 3},
                     {"model_version", champion},
                     {"model_sha256", ""},
                     {"horizon", 10},
                     {"soh_at_10", fading_soh(0, kCycles + 13) + 0.002},
                     {"soh_at_h", fading_soh(0, kCycles + 13) + 0.002},
                     {"eol_cycle", nullptr},
                     {"forecast_us", 400},
                     {"received_at_ms", 1800000000000}};
  ASSERT_TRUE(publish_raw(broker_.port(), std::string("cyclecast/v1/nodes/") + kNode + "/forecasts",
                          edge.dump()));
  ASSERT_TRUE(eventually(
      [&] {
        const Json cell = fetch("/api/v1/cells/t0");
        if (!cell.is_object()) return false;
        bool host_scored = false, from_edge = false;
        for (const auto& f : cell["forecasts"]) {
          host_scored |= f["origin"] == "host" && !f["error_10"].is_null();
          from_edge |= f["origin"] == "edge";
        }
        return host_scored && from_edge;
      },
      60s))
      << fetch("/api/v1/cells/t0").dump() << log();
  // The gateways' statuses: nano-7's online, and a nano-8 that never forecast, disconnected.
  wire::NodeStatus online;
  online.node = kNode;
  online.state = "online";
  online.model_version = champion;
  online.last_seen_ms = 1800000000000;
  online.forecasts = 1;
  online.reopens = 2;
  wire::NodeStatus gone = online;
  gone.node = "nano-8";
  gone.state = "disconnected";
  for (const auto& status : {online, gone}) {
    ASSERT_TRUE(publish_raw(broker_.port(), wire::node_status_topic(status.node),
                            wire::serialize_node_status(status)));
  }
  Json nodes;
  ASSERT_TRUE(eventually(
      [&] {
        nodes = fetch("/api/v1/nodes");
        return nodes.size() == 2u && nodes[0]["state"] == "online";
      },
      30s))
      << nodes.dump() << log();
  EXPECT_EQ(nodes[0]["node"], kNode);
  EXPECT_EQ(nodes[0]["model_version"], champion);
  EXPECT_EQ(nodes[0]["cells"], 1);
  EXPECT_EQ(nodes[0]["gateway"]["reopens"], 2);
  EXPECT_EQ(nodes[1]["node"], "nano-8");
  EXPECT_EQ(nodes[1]["state"], "disconnected");
  EXPECT_EQ(nodes[1]["forecasts"], 0);
  // A status on another node's topic is ignored.
  gone.state = "offline";
  ASSERT_TRUE(publish_raw(broker_.port(), wire::node_status_topic(kNode),
                          wire::serialize_node_status(gone)));
  online.reopens = 3;  // then nano-7's own: once it shows, the one before it was handled
  ASSERT_TRUE(publish_raw(broker_.port(), wire::node_status_topic(kNode),
                          wire::serialize_node_status(online)));
  ASSERT_TRUE(eventually(
      [&] {
        nodes = fetch("/api/v1/nodes");
        return nodes.size() == 2u && nodes[0]["gateway"]["reopens"] == 3;
      },
      30s))
      << nodes.dump();
  EXPECT_EQ(nodes[0]["state"], "online");
  EXPECT_EQ(nodes[1]["state"], "disconnected");

  // A real gateway, online until dashboard_check.mjs kills it and its last will shows.
  Child gateway({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-gateway", "--node",
                 kGatewayNode, "--serial", (dir_ / "no-such-device").string(), "--cells", "t1",
                 "--mqtt-port", std::to_string(broker_.port())},
                dir_ / "gateway.log");
  ASSERT_TRUE(eventually(
      [&] {
        nodes = fetch("/api/v1/nodes");
        return nodes.size() == 3u && nodes[2]["liveness"].is_object() &&
               nodes[2]["liveness"]["state"] == "online";
      },
      30s))
      << nodes.dump() << read_text(dir_ / "gateway.log");

  // A second model, kept a candidate by the margin: the one the browser promotes.
  const std::string candidate = train();
  ASSERT_FALSE(candidate.empty());
  ASSERT_EQ(fetch("/api/v1/models/" + candidate)["status"], "candidate");

  const auto out = std::filesystem::path(CYCLECAST_BINARY_DIR) / "test-artifacts" / "dashboard";
  std::filesystem::remove_all(out);
  const auto output = dir_ / "dashboard_check.log";
  const std::string command = "cd '" + tests.string() + "' && timeout 400 '" + node.string() +
                              "' dashboard_check.mjs --url " + base_url_ + " --token " + kToken +
                              " --out '" + out.string() + "' --cells " + std::to_string(kCells) +
                              " --cell t0 --candidate " + candidate + " --champion " + champion +
                              " --node " + kNode + " --gateway-node " + kGatewayNode +
                              " --gateway-pid " + std::to_string(gateway.pid()) + " --chromium '" +
                              chromium.string() + "' > '" + output.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  const std::string report = read_text(output);
  EXPECT_EQ(status, 0) << report << "\ncyclecastd's log:\n" << log();
  std::cout << report;
  EXPECT_TRUE(gateway.wait(30s).has_value()) << "the gateway was not killed";
  EXPECT_EQ(fetch("/api/v1/nodes")[2]["state"], "offline");
  for (const char* page : {"fleet", "cell", "models", "runs", "run", "nodes"}) {
    for (const int width : {1280, 390}) {
      const auto shot = out / (std::string(page) + "-" + std::to_string(width) + ".png");
      EXPECT_TRUE(std::filesystem::exists(shot)) << shot;
    }
  }
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(60s), 0) << log();
}

}  // namespace
}  // namespace cyclecast::testing
