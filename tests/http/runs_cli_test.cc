// The built `cyclecast` against the real HTTP server with the in-memory test backend: runs and
// their reports, retrain --wait, forecast --last, a model's events as a table, and the champion's
// promotion in status (docs/api.md, "CLI").
#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>

#include "cli_run.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::CliRun;
using cyclecast::testing::read_file;
using cyclecast::testing::write_file;

class RunsCliTest : public HttpTest {
 protected:
  CliRun run(const std::string& args, const std::string& env = "") const {
    return cyclecast::testing::run_cyclecast(
        dir_.path(), args + " --api " + base_url(),
        "env -u CYCLECAST_API -u CYCLECAST_API_TOKEN_FILE USER=tester " + env);
  }
  std::string token() const { return "--token-file '" + (dir_ / "api-token").string() + "' "; }
};

TEST_F(RunsCliTest, RunsListShowsEveryRunAlignedNewestFirst) {
  start();
  const CliRun list = run("runs list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("ID  TRIGGER  BY  STATUS     STAGE    PROGRESS  STARTED", 0), 0u)
      << list.out;
  EXPECT_NE(list.out.find("\n2   cycles   -   running    distill  0.40      2026-11-30T09:00:00Z"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("\n1   manual   -   succeeded  done     1.00"), std::string::npos)
      << list.out;
  const CliRun json_list = run("runs list --json");
  ASSERT_EQ(json_list.exit_code, 0) << json_list.err;
  EXPECT_EQ(json::parse(json_list.out), backend_.runs_json);
}

TEST_F(RunsCliTest, RunsShowPrintsOneRunAndNamesAMissingOne) {
  start();
  const CliRun shown = run("runs show 1");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("status: succeeded\n"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("report_url: /api/v1/runs/1/report\n"), std::string::npos) << shown.out;
  const CliRun missing = run("runs show 99");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no run 99 (HTTP 404)"), std::string::npos) << missing.err;
  EXPECT_EQ(run("runs show x").exit_code, 2);
}

TEST_F(RunsCliTest, RunsReportWritesTheReportAndOpensItWithTheBrowser) {
  start();
  const fs::path browser = dir_ / "browser";
  write_file(browser, "#!/bin/sh\nprintf '%s' \"$1\" > '" + (dir_ / "opened").string() + "'\n");
  ::chmod(browser.c_str(), 0700);
  const fs::path out = dir_ / "report of run 1.html";  // a space: passed as one argument
  const CliRun opened = run("runs report 1 --open --out '" + out.string() + "'",
                            "BROWSER='" + browser.string() + "' ");
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  EXPECT_EQ(read_file(out), backend_.report_html);
  EXPECT_EQ(read_file(dir_ / "opened"), out.string());
  const CliRun missing = run("runs report 2 --out '" + (dir_ / "none.html").string() + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("run 2 has no report (HTTP 404)"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(dir_ / "none.html"));
  const CliRun no_browser = run("runs report 1 --open --out '" + out.string() + "'",
                                "BROWSER='" + (dir_ / "absent").string() + "' ");
  EXPECT_EQ(no_browser.exit_code, 1);
  EXPECT_NE(no_browser.err.find("could not open"), std::string::npos) << no_browser.err;
}

TEST_F(RunsCliTest, RetrainWaitFollowsTheRunAndPrintsWhatItGave) {
  start({}, "s3cret");
  const CliRun waited = run("retrain --wait --poll-s 0.01 --why 'new cells' " + token());
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  // Not a terminal: a line per stage, not a redrawn bar.
  EXPECT_NE(waited.err.find("run 3: stage train (0.25)\n"), std::string::npos) << waited.err;
  EXPECT_NE(waited.err.find("run 3: stage gate (0.90)\n"), std::string::npos) << waited.err;
  EXPECT_EQ(waited.err.find('\r'), std::string::npos) << waited.err;
  EXPECT_EQ(waited.out,
            "run 3 succeeded: model m-2 is candidate\n"
            "report: cyclecast runs report 3 --open\n");
}

TEST_F(RunsCliTest, RetrainWaitExits1WhenTheRunFails) {
  backend_.started_run_fails = true;
  start({}, "s3cret");
  const CliRun waited = run("retrain --wait --poll-s 0.01 " + token());
  EXPECT_EQ(waited.exit_code, 1) << waited.err;
  EXPECT_EQ(waited.out, "run 3 failed at stage distill: out of memory\n");
}

TEST_F(RunsCliTest, RetrainWithoutWaitSaysHowToFollowTheRun) {
  start({}, "s3cret");
  const CliRun started = run("retrain " + token());
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(started.out,
            "retraining started: run 3 (follow it: cyclecast runs show 3, or retrain --wait)\n");
}

TEST_F(RunsCliTest, ForecastLastKeepsTheNewestForecasts) {
  backend_.cell_forecasts = 12;
  start();
  const CliRun two = run("forecast c1 --last 2");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.out.find("\n150 "), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("\n149 "), std::string::npos) << two.out;
  EXPECT_EQ(two.out.find("\n148 "), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("(the newest 2 of 12 forecasts; --last N for more, --last 0 for all)"),
            std::string::npos)
      << two.out;
  const CliRun by_default = run("forecast c1");  // the newest 10
  EXPECT_EQ(by_default.out.find("\n140 "), std::string::npos) << by_default.out;
  EXPECT_NE(by_default.out.find("\n141 "), std::string::npos) << by_default.out;
  const CliRun all = run("forecast c1 --last 0");
  EXPECT_NE(all.out.find("\n139 "), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find("(the newest"), std::string::npos) << all.out;
  const CliRun json_one = run("forecast c1 --last 1 --json");
  ASSERT_EQ(json_one.exit_code, 0) << json_one.err;
  EXPECT_EQ(json::parse(json_one.out)["forecasts"].size(), 1u);
  EXPECT_EQ(run("forecast c1 --last -1").exit_code, 2);
}

TEST_F(RunsCliTest, ModelsShowPrintsEventsAsATable) {
  start();
  const CliRun shown = run("models show m-1");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out.find("events: ["), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("\nevents (oldest first):\n"
                           "AT                    ACTION      ACTOR      REASON\n"
                           "2026-11-29T08:00:00Z  registered  scheduler  run 1\n"
                           "2026-11-30T12:00:00Z  promoted    ana@lab-3  beats m-0 on the new "
                           "cells\n"),
            std::string::npos)
      << shown.out;
}

TEST_F(RunsCliTest, StatusSaysWhenTheChampionWasPromotedNotCreated) {
  start();
  const CliRun status = run("status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("  champion: m-1 (promoted 2026-11-30T12:00:00Z by ana@lab-3: beats "
                            "m-0 on the new cells)\n"),
            std::string::npos)
      << status.out;
  EXPECT_EQ(status.out.find("2026-11-29T08:00:00Z"), std::string::npos) << status.out;
}

TEST_F(RunsCliTest, TablesStayAlignedWithLongIds) {
  const std::string long_id(64, 'c');
  backend_.cells_json[1]["cell_id"] = long_id;
  start();
  const CliRun table = run("cells");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::string header = table.out.substr(0, table.out.find('\n'));
  EXPECT_EQ(header.find("RIG"), 66u) << table.out;
  EXPECT_NE(table.out.find("\nc1" + std::string(64, ' ') + "rig-7"), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("\n" + long_id + "  rig-7"), std::string::npos) << table.out;
}

}  // namespace
}  // namespace cyclecast::http::testing
