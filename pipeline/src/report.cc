// report.json (report.h) and the RunOutput it describes, read back (run_output.h), in one file so
// that the report's keys are written and read in one place.
#include "cyclecast/pipeline/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "cyclecast/bounded_json.h"
#include "cyclecast/pipeline/run_output.h"

namespace cyclecast::pipeline {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kReportVersion = 1;

// ---------------------------------------------------------------------------------------------
// JSON

Json metrics_json(const ForecastMetrics& m) {
  return Json{{"mae", m.mae},
              {"mae_10", m.mae_10},
              {"mae_100", m.mae_100},
              {"rmse", m.rmse},
              {"eol_error_cycles", m.eol_error_cycles},
              {"eol_windows", m.eol_windows},
              {"windows", m.windows},
              {"mae_by_step", m.mae_by_step}};
}

Json candidate_json(const Candidate& c) {
  return Json{{"name", c.name},
              {"stage", c.stage},
              {"width", c.width},
              {"features", c.features},
              {"prune_ratio", c.prune_ratio},
              {"params", c.params},
              {"float_mae", c.float_mae},
              {"int8_mae", c.int8_mae},
              {"flash_bytes", c.flash_bytes},
              {"ram_bytes", c.ram_bytes},
              {"macs", c.macs},
              {"cycles", c.cycles},
              {"ms_at_64mhz", c.ms_at_64mhz}};
}

Json sample_json(const SampleForecast& s) {
  return Json{{"cell", s.cell},
              {"band", s.band},
              {"first_cycle", s.first_cycle},
              {"input", s.input},
              {"truth", s.truth},
              {"teacher", s.teacher},
              {"student_float", s.student_float},
              {"student_int8", s.student_int8},
              {"best_baseline", s.best_baseline}};
}

Json choice_json(const RunReport& r) {
  if (!r.has_choice())
    return Json{{"index", nullptr}, {"name", nullptr}, {"reason", r.choice.reason}};
  return Json{{"index", r.choice.index},
              {"name", r.candidates[r.choice.index].name},
              {"reason", r.choice.reason}};
}

// The summary with every comparison behind it, for the report.
Json report_gate_evidence_json(const GateEvidence& e) {
  Json j = gate_evidence_json(e);
  if (j.is_null()) return j;
  j["comparisons"] = Json::array();
  for (const BaselineComparison& c : e.comparisons) {
    j["comparisons"].push_back(Json{{"baseline", c.reference},
                                    {"baseline_mae", c.result.reference_mae},
                                    {"candidate_mae", c.result.candidate_mae},
                                    {"improvement", c.result.improvement},
                                    {"lower", c.result.lower}});
  }
  return j;
}

Json coverage_json(const IntervalCoverage& c) {
  return Json{{"coverage", c.coverage}, {"mean_width", c.mean_width}, {"windows", c.windows}};
}

// The chosen student's prediction intervals (docs/pipeline-report.md, "intervals").
Json intervals_json(const std::optional<IntervalReport>& intervals) {
  if (!intervals) return nullptr;
  const IntervalReport& r = *intervals;
  const ConformalQuantiles& q = r.calibration;
  Json j{{"method", r.method},           {"nominal_coverage", q.coverage},
         {"calibration_cells", q.cells}, {"calibration_windows", q.windows},
         {"quantile_level", q.level},    {"level_capped", q.capped},
         {"few_cells", q.few_cells},     {"note", r.note},
         {"baseline", r.baseline},       {"half_width_amplitude", q.half_width},
         {"half_width_int8", r.table},   {"coverage_by_step", r.coverage_by_step},
         {"test", Json::array()}};
  for (const IntervalCoverageRow& row : r.rows) {
    j["test"].push_back(Json{{"group", row.group},
                             {"model", coverage_json(row.model)},
                             {"baseline", coverage_json(row.baseline)}});
  }
  return j;
}

Json report_json(const RunReport& r) {
  Json j{{"format", "cyclecast-report"},
         {"version", kReportVersion},
         {"run_id", r.run_id},
         {"created_at", r.created_at},
         {"data_source", r.data_source},
         {"protocol", r.protocol},
         {"settings", Json(r.settings)},
         {"budget", Json::object()},
         {"stages", Json::array()},
         {"candidates", Json::array()},
         {"front", r.front},
         {"choice", choice_json(r)},
         {"gate_evidence", report_gate_evidence_json(r.gate_evidence)},
         {"intervals", intervals_json(r.intervals)},
         {"samples", Json::array()},
         {"error_by_step", Json::array()},
         {"timings_s", Json::array()},
         {"cleaning", Json::array()}};
  j["budget"] = Json{{"max_flash_bytes", r.budget.max_flash_bytes},
                     {"max_ram_bytes", r.budget.max_ram_bytes},
                     {"max_ms", r.budget.max_ms}};
  for (const StageRow& s : r.stages) {
    j["stages"].push_back(
        Json{{"stage", s.stage}, {"model", s.model}, {"metrics", metrics_json(s.metrics)}});
  }
  for (const Candidate& c : r.candidates)
    j["candidates"].push_back(candidate_json(c));
  for (const SampleForecast& s : r.samples)
    j["samples"].push_back(sample_json(s));
  for (const auto& [model, mae] : r.error_by_step) {
    j["error_by_step"].push_back(Json{{"model", model}, {"mae", mae}});
  }
  for (const auto& [stage, seconds] : r.timings_s) {
    j["timings_s"].push_back(Json{{"stage", stage}, {"seconds", seconds}});
  }
  for (const auto& [rule, count] : r.cleaning) {
    j["cleaning"].push_back(Json{{"rule", rule}, {"count", count}});
  }
  return j;
}

// ---------------------------------------------------------------------------------------------
// Reading a run directory's report.json back (read_run_output)

// A run's report is a few hundred kilobytes; anything much larger is not one.
constexpr std::uintmax_t kMaxReportBytes = std::uintmax_t{64} << 20;

double number_or_nan(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>()
                                          : std::numeric_limits<double>::quiet_NaN();
}
int64_t integer_or_zero(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? static_cast<int64_t>(std::llround(it->get<double>()))
                                          : 0;
}
std::string text_or_empty(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// metrics_json read back; null (NaN written) reads as NaN.
ForecastMetrics metrics_of(const Json& j) {
  ForecastMetrics m;
  m.mae = number_or_nan(j, "mae");
  m.mae_10 = number_or_nan(j, "mae_10");
  m.mae_100 = number_or_nan(j, "mae_100");
  m.rmse = number_or_nan(j, "rmse");
  m.eol_error_cycles = number_or_nan(j, "eol_error_cycles");
  m.eol_windows = integer_or_zero(j, "eol_windows");
  m.windows = integer_or_zero(j, "windows");
  for (const Json& v : j.value("mae_by_step", Json::array()))
    m.mae_by_step.push_back(v.is_number() ? v.get<double>()
                                          : std::numeric_limits<double>::quiet_NaN());
  return m;
}

Result<Json> read_report_object(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(ErrorCode::kNotFound, path.string() + " is missing (or not a file)");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxReportBytes) {
    return make_error(ErrorCode::kIo, path.string() + ": cannot read it, or it is over 64 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parse_bounded_json(text.str(), kMaxReportBytes);
  if (!parsed || !parsed->is_object()) {
    return make_error(ErrorCode::kParse, path.string() + " is not a JSON object" +
                                             (parsed ? "" : " (" + parsed.error().message + ")"));
  }
  Json j = std::move(*parsed);
  const auto version = j.find("version");
  if (text_or_empty(j, "format") != "cyclecast-report" || version == j.end() ||
      !version->is_number_integer() || version->get<int64_t>() != kReportVersion) {
    return make_error(ErrorCode::kUnsupported,
                      path.string() + " is not a cyclecast-report of version 1");
  }
  return j;
}

// The chosen candidate's name, cost and test metrics (float: its last distillation stage).
Result<void> read_chosen(const Json& report, const std::string& file, RunOutput& out) {
  const Json& choice = report.value("choice", Json::object());
  const Json& candidates = report.value("candidates", Json::array());
  const auto index = choice.find("index");
  if (index == choice.end() || !index->is_number_unsigned() ||
      index->get<size_t>() >= candidates.size()) {
    return make_error(ErrorCode::kInvalidArgument, "run " + out.run_id + " chose no student (" +
                                                       text_or_empty(choice, "reason") +
                                                       "); there is nothing to deploy");
  }
  const Json& chosen = candidates[index->get<size_t>()];
  out.chosen = text_or_empty(chosen, "name");
  out.choice_reason = text_or_empty(choice, "reason");
  out.chosen_params = integer_or_zero(chosen, "params");
  out.chosen_flash_bytes = integer_or_zero(chosen, "flash_bytes");
  out.chosen_ram_bytes = integer_or_zero(chosen, "ram_bytes");
  out.chosen_cycles = integer_or_zero(chosen, "cycles");
  const std::string stage = text_or_empty(chosen, "stage");
  bool int8_found = false;
  for (const Json& row : report.value("stages", Json::array())) {
    if (!row.is_object() || text_or_empty(row, "model") != out.chosen) continue;
    const std::string row_stage = text_or_empty(row, "stage");
    const Json& metrics = row.value("metrics", Json::object());
    if (row_stage == "int8") {
      out.chosen_int8 = metrics_of(metrics);
      int8_found = true;
    } else if (row_stage == stage) {
      out.chosen_float = metrics_of(metrics);
    }
  }
  if (!int8_found) {
    return make_error(ErrorCode::kCorrupt,
                      file + " has no int8 test metrics of the " + "chosen student " + out.chosen);
  }
  return {};
}

}  // namespace

Json gate_evidence_json(const GateEvidence& e) {
  if (!e.present()) return nullptr;
  return Json{{"scoring", e.scoring},
              {"folds", e.folds},
              {"candidate", e.candidate},
              {"cells", e.cells},
              {"candidate_mae", e.candidate_mae},
              {"best_baseline", e.best_reference},
              {"best_baseline_mae", e.best_reference_mae},
              {"weakest_baseline", e.weakest_reference},
              {"lower", e.lower},
              {"beats_baselines", e.beats_references},
              {"reason", e.reason}};
}

std::string report_json_text(const RunReport& report) {
  // replace: a cell name that is not UTF-8 must not make the whole report unwritable.
  return report_json(report).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

namespace {

Result<void> write_atomically(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      return make_error(ErrorCode::kIo, "cannot write the report to " + tmp.string() + ".");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    Error error = make_error(ErrorCode::kIo, "cannot rename " + tmp.string() + " to " +
                                                 path.string() + ": " + ec.message() + ".");
    std::filesystem::remove(tmp, ec);  // best effort: the error above is what the caller needs
    return error;
  }
  return {};
}

}  // namespace

Result<void> write_report_json(const std::filesystem::path& path, const RunReport& report) {
  return write_atomically(path, report_json_text(report));
}

Result<void> write_report_html(const std::filesystem::path& path, const RunReport& report) {
  return write_atomically(path, report_html_text(report));
}

Result<RunOutput> read_run_output(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / RunFiles::kReportJson;
  auto report = read_report_object(path);
  if (!report) return report.error();
  RunOutput out;
  out.out_dir = dir.string();
  out.run_id = text_or_empty(*report, "run_id");
  out.protocol = text_or_empty(*report, "protocol");
  out.data_source = text_or_empty(*report, "data_source");
  if (auto chosen = read_chosen(*report, path.string(), out); !chosen) return chosen.error();
  return out;
}

}  // namespace cyclecast::pipeline
