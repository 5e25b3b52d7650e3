// Runs the built `cyclecast` API commands as an operator would, against the real HTTP server
// (with the in-memory test backend) started in this process.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>

#include "cli_run.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::read_file;
using cyclecast::testing::write_file;

using cyclecast::testing::CliRun;

class ApiCliTest : public HttpTest {
 protected:
  // Runs `cyclecast <args>` with the environment unset, stdout and stderr captured.
  CliRun run(const std::string& args) const {
    return cyclecast::testing::run_cyclecast(
        dir_.path(), args, "env -u CYCLECAST_API -u CYCLECAST_API_TOKEN_FILE USER=tester ");
  }
  std::string api() const { return "--api " + base_url(); }
};

std::string hostname() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

TEST_F(ApiCliTest, StatusPrintsHealthChampionAndLatestRun) {
  start();
  const CliRun table = run("status " + api());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(": ok"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("champion: m-1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("latest run: 2 running, stage distill"), std::string::npos) << table.out;
  const CliRun json_run = run("status --json " + api());
  ASSERT_EQ(json_run.exit_code, 0) << json_run.err;
  EXPECT_EQ(json::parse(json_run.out)["status"], "ok");
}

TEST_F(ApiCliTest, CellsAsJsonAndAsAnAlignedTable) {
  start();
  const CliRun json_run = run("cells --json " + api());
  ASSERT_EQ(json_run.exit_code, 0) << json_run.err;
  EXPECT_EQ(json::parse(json_run.out), backend_.cells_json);
  const CliRun table = run("cells " + api());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("CELL  RIG    CYCLES  LAST  SOH    FORECAST_AT  MODEL  ORIGIN  SOH+10  "
                            "SOH+100  EOL\n",
                            0),
            0u)
      << table.out;
  EXPECT_NE(table.out.find("c1    rig-7  150     150   0.912  150          m-1    host    0.905   "
                           "0.862    612\n"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("c2    rig-7  12      12    0.990  -"), std::string::npos) << table.out;
}

TEST_F(ApiCliTest, ForecastShowsACellsForecasts) {
  start();
  const CliRun table = run("forecast c1 " + api());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("cell c1 (rig rig-7): 150 cycles, last 150 at SOH 0.912"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("AT_CYCLE"), std::string::npos) << table.out;
  // The bounds at each printed step and the end-of-life interval, open where the upper bound
  // stays above 0.8 within the horizon.
  EXPECT_NE(table.out.find("SOH+10  RANGE+10      SOH+100  RANGE+100     EOL  EOL_RANGE"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("0.905   0.901..0.909  0.862    0.840..0.880  612  598..open"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("fall under SOH 0.8, open: not within the horizon"), std::string::npos)
      << table.out;
  const CliRun missing = run("forecast nope " + api());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no cell 'nope' (HTTP 404)"), std::string::npos) << missing.err;
}

TEST_F(ApiCliTest, ModelsListAndShow) {
  start();
  const CliRun json_run = run("models list --json " + api());
  ASSERT_EQ(json_run.exit_code, 0) << json_run.err;
  EXPECT_EQ(json::parse(json_run.out), backend_.models_json);
  const CliRun table = run("models list " + api());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("VERSION  STATUS     CREATED               RUN  MAE     FLASH  RAM   "
                            "FOOTPRINT  LIVE+100  BUNDLE\n",
                            0),
            0u)
      << table.out;
  EXPECT_NE(table.out.find(
                "m-1      champion   2026-11-29T08:00:00Z  1    0.0123  20480  4096  estimate   -"),
            std::string::npos)
      << table.out;
  const CliRun show = run("models show m-2 " + api());
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("status: candidate\n"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("footprint.flash_bytes: 20480\n"), std::string::npos) << show.out;
}

TEST_F(ApiCliTest, ModelsPullWritesTheBundleAndChecksItsSha256) {
  start();
  const fs::path out = dir_ / "pulled.ccb";
  const CliRun pulled = run("models pull m-2 --out '" + out.string() + "' " + api());
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_TRUE(read_file(out) == backend_.bundle_bytes);
  EXPECT_NE(pulled.out.find("matches the registry"), std::string::npos) << pulled.out;
  EXPECT_FALSE(fs::exists(out.string() + ".partial"));

  const fs::path bad = dir_ / "bad.ccb";
  const CliRun refused = run("models pull m-bad --out '" + bad.string() + "' " + api());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("SHA-256"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(bad.string() + ".partial"));
}

TEST_F(ApiCliTest, PromoteWithoutATokenExits1WithThe401Message) {
  start({}, "s3cret");
  const CliRun refused =
      run("models promote m-2 --token-file '" + (dir_ / "absent").string() + "' " + api());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("authentication required"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("HTTP 401"), std::string::npos) << refused.err;
  EXPECT_TRUE(backend_.calls().empty());
}

TEST_F(ApiCliTest, PromoteRollbackAndRetrainWithTheTokenRecordWhoAndWhy) {
  start({}, "s3cret");
  const std::string token = "--token-file '" + (dir_ / "api-token").string() + "' ";
  const CliRun promoted = run("models promote m-2 --why 'beats m-1' " + token + api());
  ASSERT_EQ(promoted.exit_code, 0) << promoted.err;
  EXPECT_NE(promoted.out.find("promoted m-2"), std::string::npos) << promoted.out;
  ASSERT_EQ(run("models rollback " + token + api()).exit_code, 0);
  ASSERT_EQ(run("retrain --json " + token + api()).exit_code, 0);
  const std::string who = "tester@" + hostname();
  EXPECT_EQ(backend_.calls(),
            (std::vector<std::string>{"promote:m-2:" + who + ":beats m-1", "rollback:" + who + ":",
                                      "retrain:" + who + ":"}));
}

TEST_F(ApiCliTest, CellMoveSendsTheRigAndRecordsWhoAndWhy) {
  start({}, "s3cret");
  const std::string token = "--token-file '" + (dir_ / "api-token").string() + "' ";
  const CliRun moved = run("cell move b2c7 rig-b --why 'rewired' " + token + api());
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find("moved b2c7 to rig-b"), std::string::npos) << moved.out;
  const CliRun missing = run("cell move nope rig-b " + token + api());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no cell 'nope'"), std::string::npos) << missing.err;
  const std::string who = "tester@" + hostname();
  EXPECT_EQ(backend_.calls(), (std::vector<std::string>{"move:b2c7:rig-b:" + who + ":rewired",
                                                        "move:nope:rig-b:" + who + ":"}));
}

TEST_F(ApiCliTest, TheApiUrlAndTokenFileComeFromTheEnvironment) {
  start({}, "s3cret");
  const std::string env = "env CYCLECAST_API=" + base_url() + " CYCLECAST_API_TOKEN_FILE='" +
                          (dir_ / "api-token").string() + "' '" + CYCLECAST_BINARY_DIR +
                          "/bin/cyclecast' models rollback >/dev/null 2>&1";
  const int status = std::system(env.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(backend_.calls().size(), 1u);
}

TEST_F(ApiCliTest, ConnectionRefusedExits3NamingTheUrl) {
  // A port that was free a moment ago and that nothing listens on.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto free_port = probe.local_endpoint().port();
  probe.close();
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port);
  const CliRun refused = run("cells --api " + url);
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.err.find(url), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("cyclecastd"), std::string::npos) << refused.err;
}

TEST_F(ApiCliTest, BadUsageExits2) {
  EXPECT_EQ(run("models").exit_code, 2);
  EXPECT_EQ(run("forecast").exit_code, 2);
  EXPECT_EQ(run("cells --api ftp://somewhere").exit_code, 2);
}

}  // namespace
}  // namespace cyclecast::http::testing
