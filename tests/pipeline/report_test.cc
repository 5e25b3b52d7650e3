#include "cyclecast/pipeline/report.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;

constexpr const char* kHostileCell = "b2c<script>alert('x')</script>&";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

ForecastMetrics metrics(double mae, double eol_error_cycles) {
  ForecastMetrics m;
  m.mae = mae;
  m.mae_10 = mae * 0.5;
  m.mae_100 = mae * 2;
  m.rmse = mae * 1.3;
  m.eol_error_cycles = eol_error_cycles;
  m.eol_windows = std::isnan(eol_error_cycles) ? 0 : 4;
  m.windows = 12;
  for (int step = 1; step <= 100; ++step)
    m.mae_by_step.push_back(mae * step / 50.0);
  return m;
}

Candidate candidate(const std::string& name, const std::string& stage, int64_t flash_bytes,
                    double int8_mae) {
  Candidate c;
  c.name = name;
  c.stage = stage;
  c.width = flash_bytes / 512;
  c.features = 8;
  c.prune_ratio = stage == "stage2" ? 0.5 : 0.0;
  c.params = flash_bytes - 200;
  c.float_mae = int8_mae * 0.98;
  c.int8_mae = int8_mae;
  c.flash_bytes = flash_bytes;
  c.ram_bytes = 2048;
  c.macs = flash_bytes;
  c.cycles = static_cast<double>(flash_bytes) * 3;
  c.ms_at_64mhz = c.cycles / 64e3;
  return c;
}

// A cell fading from `start` by `fade` per cycle, W = H = 100; forecasts a little off.
SampleForecast sample(const std::string& cell, const std::string& band, double start) {
  SampleForecast s;
  s.cell = cell;
  s.band = band;
  s.first_cycle = 300;
  const double fade = 0.0004;
  for (int i = 0; i < 100; ++i)
    s.input.push_back(start - fade * i);
  for (int j = 0; j < 100; ++j) {
    const double truth = start - fade * (100 + j) - 1e-6 * j * j;
    s.truth.push_back(truth);
    s.teacher.push_back(truth + 0.0003);
    s.student_float.push_back(truth - 0.0004);
    s.student_int8.push_back(truth - 0.0005);
    s.best_baseline.push_back(start - fade * (100 + j));
  }
  s.teacher[50] = kNaN;  // a gap the plot must survive
  return s;
}

RunReport make_report() {
  RunReport r;
  r.run_id = "20260101-120000";
  r.created_at = "2026-01-01T12:00:00Z";
  r.data_source = "simulated: 12 cells, seed 7";
  r.protocol = "paper";
  r.settings = {{"widths", "64,32,16,8,4"}, {"note", "a<b & c"}};
  r.stages = {{"teacher", "ltc-256", metrics(0.0009, 3.5)},
              {"stage1", "w16", metrics(0.0010, 4.0)},
              {"pruned", "w16-p0.50", metrics(0.0030, kNaN)},
              {"stage2", "w16-p0.50", metrics(0.0011, 4.5)},
              {"int8", "w16-p0.50", metrics(0.00112, 4.5)},
              {"baseline", "ridge", metrics(0.0016, 9.0)},
              {"baseline", "last value", metrics(0.0040, kNaN)}};
  r.candidates = {candidate("w4", "stage1", 1200, 0.0080),
                  candidate("w8", "stage1", 2500, 0.0021),
                  candidate("w16", "stage1", 5000, 0.0013),
                  candidate("w16-p0.50", "stage2", 3600, 0.0016),
                  candidate("w32", "stage1", 11000, 0.0011),
                  candidate("w32-p0.25", "stage2", 9000, 0.0019),  // dominated
                  candidate("w64", "stage1", 40000, 0.0010),       // over budget
                  candidate("broken", "stage2", 7000, kNaN)};      // never measured
  r.front = pareto_front(r.candidates);
  r.choice = choose_knee(r.candidates, r.budget).value();
  r.samples = {sample("b2c1", "0.95-1.00", 0.99), sample("b2c2", "0.90-0.95", 0.94),
               sample(kHostileCell, "0.85-0.90", 0.89)};
  r.error_by_step = {{"int8 student", r.stages[4].metrics.mae_by_step},
                     {"teacher", r.stages[0].metrics.mae_by_step},
                     {"ridge", r.stages[5].metrics.mae_by_step}};
  r.timings_s = {{"teacher", 120.5}, {"stage1", 60.25}, {"quantize", 3.0}};
  r.cleaning = {{"capacity spike", 2}, {"charge-time fill value", 1100}};
  return r;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// The element that starts at `open` (e.g. `<svg id="pareto"`), up to its closing tag.
std::string element(const std::string& html, const std::string& open, const std::string& close) {
  const size_t begin = html.find(open);
  if (begin == std::string::npos) return {};
  const size_t end = html.find(close, begin);
  return html.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

TEST(Report, JsonParsesBackWithEveryField) {
  TempDir dir;
  const RunReport r = make_report();
  ASSERT_TRUE(write_report_json(dir / "report.json", r).ok());
  const auto j = nlohmann::json::parse(read_file(dir / "report.json"));

  EXPECT_EQ(j["format"], "cyclecast-report");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["run_id"], "20260101-120000");
  EXPECT_EQ(j["protocol"], "paper");
  EXPECT_EQ(j["settings"]["note"], "a<b & c");
  EXPECT_EQ(j["budget"]["max_flash_bytes"], 16384);
  ASSERT_EQ(j["stages"].size(), 7u);
  EXPECT_EQ(j["stages"][4]["stage"], "int8");
  EXPECT_DOUBLE_EQ(j["stages"][4]["metrics"]["mae"].get<double>(), 0.00112);
  EXPECT_DOUBLE_EQ(j["stages"][4]["metrics"]["mae_100"].get<double>(), 0.00224);
  EXPECT_EQ(j["stages"][4]["metrics"]["mae_by_step"].size(), 100u);
  EXPECT_TRUE(j["stages"][2]["metrics"]["eol_error_cycles"].is_null()) << "NaN is written as null";
  ASSERT_EQ(j["candidates"].size(), 8u);
  EXPECT_EQ(j["candidates"][3]["name"], "w16-p0.50");
  EXPECT_EQ(j["candidates"][3]["flash_bytes"], 3600);
  EXPECT_TRUE(j["candidates"][7]["int8_mae"].is_null());
  EXPECT_EQ(j["front"].get<std::vector<size_t>>(), r.front);
  EXPECT_EQ(j["choice"]["index"], r.choice.index);
  EXPECT_EQ(j["choice"]["name"], r.candidates[r.choice.index].name);
  EXPECT_EQ(j["choice"]["reason"], r.choice.reason);
  ASSERT_EQ(j["samples"].size(), 3u);
  EXPECT_EQ(j["samples"][2]["cell"], kHostileCell);
  EXPECT_EQ(j["samples"][0]["first_cycle"], 300);
  EXPECT_EQ(j["samples"][0]["truth"].size(), 100u);
  EXPECT_TRUE(j["samples"][0]["teacher"][50].is_null());
  EXPECT_DOUBLE_EQ(j["samples"][0]["input"][0].get<double>(), 0.99);
  ASSERT_EQ(j["error_by_step"].size(), 3u);
  EXPECT_EQ(j["error_by_step"][2]["model"], "ridge");
  EXPECT_EQ(j["timings_s"][1]["stage"], "stage1");
  EXPECT_DOUBLE_EQ(j["timings_s"][1]["seconds"].get<double>(), 60.25);
  EXPECT_EQ(j["cleaning"][1]["rule"], "charge-time fill value");
  EXPECT_EQ(j["cleaning"][1]["count"], 1100);
}

TEST(Report, JsonStillWritesNamesThatAreNotUtf8) {
  RunReport r = make_report();
  r.samples[0].cell = "b2c\xff";
  const auto j = nlohmann::json::parse(report_json_text(r));
  EXPECT_EQ(j["samples"][0]["cell"], "b2c\xEF\xBF\xBD") << "the invalid byte becomes U+FFFD";
}

TEST(Report, WritersReplaceTheFileThroughATemporaryName) {
  TempDir dir;
  cyclecast::testing::write_file(dir / "report.html", "old");
  ASSERT_TRUE(write_report_html(dir / "report.html", make_report()).ok());
  EXPECT_EQ(read_file(dir / "report.html").rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir / "report.html.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir / "report.json.tmp"));
}

TEST(Report, WritersFailWithIoErrorWhenTheDirectoryIsMissing) {
  TempDir dir;
  const auto json = write_report_json(dir / "missing" / "report.json", make_report());
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.error().code, ErrorCode::kIo);
  const auto html = write_report_html(dir / "missing" / "report.html", make_report());
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.error().code, ErrorCode::kIo);
}

TEST(Report, HtmlEscapesEveryTextFromTheData) {
  const std::string html = report_html_text(make_report());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("b2c&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"),
            std::string::npos);
  EXPECT_NE(html.find("a&lt;b &amp; c"), std::string::npos);
  // Every '<' opens a tag the writer emits itself: data never reaches the markup unescaped.
  const std::set<std::string> tags = {
      "!DOCTYPE", "html",    "head", "meta", "title",  "style",      "body", "h1",     "h2",
      "p",        "section", "svg",  "rect", "line",   "text",       "path", "circle", "g",
      "table",    "tr",      "th",   "td",   "figure", "figcaption", "div"};
  for (size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    size_t begin = at + 1;
    if (begin < html.size() && html[begin] == '/') ++begin;
    size_t end = begin;
    while (end < html.size() && (std::isalnum(static_cast<unsigned char>(html[end])) ||
                                 html[end] == '!' || html[end] == '-')) {
      ++end;
    }
    const std::string tag = html.substr(begin, end - begin);
    EXPECT_TRUE(tags.count(tag)) << "unexpected tag '" << tag << "' at " << html.substr(at, 60);
  }
  EXPECT_EQ(count(html, "<svg "), count(html, "</svg>"));
  EXPECT_EQ(count(html, "<table"), count(html, "</table>"));
}

TEST(Report, HtmlIsSelfContained) {
  const std::string html = report_html_text(make_report());
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  // The only URL is the SVG namespace name, which browsers never fetch.
  EXPECT_EQ(count(html, "http"), count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST(Report, HtmlPlotsEveryMeasuredCandidateAndMarksTheChoice) {
  const RunReport r = make_report();
  const std::string html = report_html_text(r);
  const std::string pareto = element(html, "<svg id=\"pareto\"", "</svg>");
  ASSERT_FALSE(pareto.empty());
  EXPECT_EQ(count(pareto, "<circle class=\"candidate"), 7u) << "the NaN candidate is not drawn";
  EXPECT_EQ(count(pareto, "<circle class=\"choice\""), 1u);
  EXPECT_EQ(count(pareto, "class=\"front\" fill=\"none\""), 1u);
  EXPECT_NE(pareto.find("int8 flash (kB, log scale)"), std::string::npos);
  EXPECT_NE(pareto.find(">16</text>"), std::string::npos) << "a tick at the 16 kB budget";
  EXPECT_NE(html.find("<tr class=\"chosen\"><td>" + r.candidates[r.choice.index].name),
            std::string::npos);
  EXPECT_EQ(count(html, "<svg class=\"forecast plot\""), 3u);
  EXPECT_EQ(count(element(html, "<svg id=\"error-by-step\"", "</svg>"), "<path "), 3u);
}

TEST(Report, SaysSoWhenNoCandidateWasChosen) {
  RunReport r = make_report();
  r.choice = Choice{r.candidates.size(), "no candidate fits the deployment budget"};
  const auto j = nlohmann::json::parse(report_json_text(r));
  EXPECT_TRUE(j["choice"]["index"].is_null());
  EXPECT_EQ(j["choice"]["reason"], "no candidate fits the deployment budget");
  const std::string html = report_html_text(r);
  EXPECT_NE(html.find("none: no candidate fits the budget"), std::string::npos);
  EXPECT_EQ(html.find("<circle class=\"choice\""), std::string::npos);
}

TEST(Report, EmptyReportStillRendersEverySection) {
  const RunReport empty;
  const std::string html = report_html_text(empty);
  EXPECT_NE(html.find("No candidate has a measured int8 MAE"), std::string::npos);
  EXPECT_NE(html.find("No error-by-step figures"), std::string::npos);
  EXPECT_NE(html.find("No sample forecasts"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::parse(report_json_text(empty))["choice"]["index"].is_null());
}

// ---------------------------------------------------------------------------------------------
// The issue requires the report to render in a real browser: headless Chromium from
// scripts/setup takes a screenshot and dumps the DOM it built.

std::filesystem::path find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (!dir.empty() && std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

// Runs chromium on `page` with `arguments`; stdout goes to `stdout_file`. Returns the exit code.
int run_chromium(const std::filesystem::path& chromium, const TempDir& dir,
                 const std::filesystem::path& page, const std::string& arguments,
                 const std::filesystem::path& stdout_file) {
  // timeout: a browser that hangs must fail the test, not the CI job's time limit.
  const std::string command =
      "timeout 120 '" + chromium.string() +
      "' --headless --disable-gpu --no-sandbox --no-first-run --hide-scrollbars "
      // containers often give /dev/shm only 64 MB, which a renderer can exhaust
      "--disable-dev-shm-usage "
      "--user-data-dir='" +
      (dir / "profile").string() + "' " + arguments + " 'file://" + page.string() + "' > '" +
      stdout_file.string() + "' 2> '" + (dir / "chromium.log").string() + "'";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

uint32_t big_endian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

TEST(Report, RendersItsPlotsInHeadlessChromium) {
  const std::filesystem::path chromium = find_on_path("chromium");
  ASSERT_FALSE(chromium.empty())
      << "chromium is not installed: run scripts/setup (the report test needs headless "
         "Chromium)";
  TempDir dir;
  const RunReport r = make_report();
  ASSERT_TRUE(write_report_html(dir / "report.html", r).ok());

  const std::filesystem::path png = dir / "report.png";
  ASSERT_EQ(run_chromium(chromium, dir, dir / "report.html",
                         "--screenshot='" + png.string() + "' --window-size=1200,2000",
                         dir / "screenshot.out"),
            0)
      << read_file(dir / "chromium.log");
  const std::string image = read_file(png);
  ASSERT_GT(image.size(), 10u * 1024) << "a blank page compresses to a few kB";
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(image.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian32(image, 16), 1200u);
  EXPECT_EQ(big_endian32(image, 20), 2000u);

  ASSERT_EQ(run_chromium(chromium, dir, dir / "report.html", "--dump-dom", dir / "dom.html"), 0)
      << read_file(dir / "chromium.log");
  const std::string dom = read_file(dir / "dom.html");
  const std::string pareto = element(dom, "<svg id=\"pareto\"", "</svg>");
  ASSERT_FALSE(pareto.empty()) << dom.substr(0, 2000);
  EXPECT_EQ(count(pareto, "<circle"), 8u) << "7 measured candidates and the choice ring";
  EXPECT_EQ(count(dom, "<svg class=\"forecast plot\""), r.samples.size());
  for (size_t at = dom.find("<svg class=\"forecast plot\""); at != std::string::npos;
       at = dom.find("<svg class=\"forecast plot\"", at + 1)) {
    EXPECT_GE(count(element(dom.substr(at), "<svg", "</svg>"), "<path"), 5u)
        << "input, truth, teacher, int8 student, baseline";
  }
  EXPECT_GE(count(element(dom, "<svg id=\"error-by-step\"", "</svg>"), "<path"), 3u);
  EXPECT_EQ(dom.find("<script"), std::string::npos);
}

}  // namespace
}  // namespace cyclecast::pipeline
