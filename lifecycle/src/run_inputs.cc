// collect_run: what a training run directory contributes to a bundle, cross-checked so that the
// manifest cannot describe one student while the bundle ships another. The run's choice and its
// figures come from its RunOutput (pipeline/run_output.h), in memory or read by the pipeline.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "cyclecast/bounded_json.h"
#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/pipeline/windows.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr uint64_t kMaxRunFileBytes = uint64_t{64} << 20;

Result<std::vector<uint8_t>> read_bytes(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return make_error(ErrorCode::kNotFound, path.string() + " is missing (or not a file)");
  }
  const auto size = fs::file_size(path, ec);
  if (ec || size > kMaxRunFileBytes) {
    return make_error(ErrorCode::kIo, path.string() + ": cannot read it, or it is over 64 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    return make_error(ErrorCode::kIo, "cannot read " + path.string());
  }
  return bytes;
}

Result<Json> parse_json(const std::vector<uint8_t>& bytes, const fs::path& path) {
  auto j = parse_bounded_json(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), bytes.size());
  if (!j) return make_error(ErrorCode::kParse, path.string() + ": " + j.error().message);
  if (!j->is_object()) {
    return make_error(ErrorCode::kParse, path.string() + " is not a JSON object");
  }
  return std::move(*j);
}

std::optional<int64_t> integer_or_null(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return static_cast<int64_t>(std::llround(it->get<double>()));
}
std::string text_or_empty(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::optional<double> finite_or_null(double value) {
  return std::isfinite(value) ? std::optional<double>(value) : std::nullopt;
}

// The run's choice, its test metrics and its estimated cost.
void describe_run(const pipeline::RunOutput& run, Manifest& m) {
  m.training_run.run_id = run.run_id;
  m.training_run.protocol = run.protocol;
  m.data_snapshot.source = run.data_source;
  m.training_run.candidate = run.chosen;
  m.footprint.kind = "estimate";
  m.footprint.method = "the pipeline's Cortex-M4 cost model (models/cost.h), not measured";
  m.footprint.flash_bytes = run.chosen_flash_bytes;
  m.footprint.ram_bytes = run.chosen_ram_bytes;
  m.footprint.cycles = run.chosen_cycles;
  const pipeline::ForecastMetrics& test = run.chosen_int8;
  m.heldout.mae = finite_or_null(test.mae);
  m.heldout.mae_10 = finite_or_null(test.mae_10);
  m.heldout.mae_100 = finite_or_null(test.mae_100);
  m.heldout.rmse = finite_or_null(test.rmse);
  m.heldout.eol_error_cycles = finite_or_null(test.eol_error_cycles);
  m.heldout.windows = test.windows;
  m.heldout.eol_windows = test.eol_windows;
}

// Feature schema and normalization from student.ccm, checked against the run's description.
Result<void> read_student(const fs::path& path, Manifest& m) {
  auto saved = models::load_model(path.string());
  if (!saved) return saved.error();
  auto spec = pipeline::FeatureSpec::from_metadata(saved->metadata);
  if (!spec) return make_error(spec.error().code, path.string() + ": " + spec.error().message);
  const auto get = [&](const char* key) {
    const auto it = saved->metadata.find(key);
    return it == saved->metadata.end() ? std::string() : it->second;
  };
  if (get("pipeline.candidate") != m.training_run.candidate ||
      get("pipeline.run_id") != m.training_run.run_id) {
    return make_error(ErrorCode::kInvalidArgument,
                      path.string() + " is student '" + get("pipeline.candidate") + "' of run '" +
                          get("pipeline.run_id") + "', but the run chose '" +
                          m.training_run.candidate + "' of run '" + m.training_run.run_id + "'");
  }
  m.feature_spec = spec->to_metadata();
  m.window = spec->input_len;
  m.horizon = spec->horizon;
  return {};
}

// Measured figures from a JSON file (docs/bundles.md, "Footprint"); unknown keys are refused so a
// misspelt figure is not silently dropped.
Result<void> read_footprint(const fs::path& path, Footprint& f) {
  auto bytes = read_bytes(path);
  if (!bytes) return bytes.error();
  auto j = parse_json(*bytes, path);
  if (!j) return j.error();
  static const char* const kKeys[] = {"method",      "flash_bytes",  "ram_bytes",
                                      "stack_bytes", "instructions", "cycles"};
  for (const auto& item : j->items()) {
    const std::string& key = item.key();
    const bool known = std::find_if(std::begin(kKeys), std::end(kKeys),
                                    [&key](const char* k) { return key == k; }) != std::end(kKeys);
    if (!known ||
        (key == "method" ? !item.value().is_string() : !item.value().is_number_unsigned())) {
      return make_error(ErrorCode::kParse, path.string() + ": unknown or mistyped key '" + key +
                                               "' (figures are non-negative integers)");
    }
  }
  f = Footprint{};
  f.kind = "measured";
  f.method = text_or_empty(*j, "method");
  f.flash_bytes = integer_or_null(*j, "flash_bytes");
  f.ram_bytes = integer_or_null(*j, "ram_bytes");
  f.stack_bytes = integer_or_null(*j, "stack_bytes");
  f.instructions = integer_or_null(*j, "instructions");
  f.cycles = integer_or_null(*j, "cycles");
  if (f.method.empty()) f.method = "measured (" + path.filename().string() + ")";
  return {};
}

// sha256sum-style digest of a file, or of a directory: SHA-256 over the lines
// "<sha256 of file>  <path relative to the directory>\n" of its regular files sorted by path
// (byte order), as `find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum |
// sha256sum` computes.
Result<void> digest_data(const fs::path& path, DataSnapshot& d) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    auto digest = sha256_file_hex(path);
    if (!digest) return digest.error();
    d.digest = "sha256:" + *digest;
    d.digest_of = "file " + path.filename().string();
    return {};
  }
  if (!fs::is_directory(path, ec)) {
    return make_error(ErrorCode::kNotFound, "data snapshot " + path.string() + " does not exist");
  }
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), path).generic_string());
  }
  if (ec) return make_error(ErrorCode::kIo, "cannot list " + path.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::string listing;
  for (const std::string& name : files) {
    auto digest = sha256_file_hex(path / name);
    if (!digest) return digest.error();
    listing += *digest + "  " + name + "\n";
  }
  d.digest =
      "sha256:" + sha256_hex({reinterpret_cast<const uint8_t*>(listing.data()), listing.size()});
  d.digest_of = "directory " + path.filename().string() + ", " + std::to_string(files.size()) +
                " files, sha256sum listing";
  return {};
}

std::vector<uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

}  // namespace

Result<BundleContents> collect_run(const RunBundleOptions& options) {
  if (auto ok = check_model_version(options.model_version); !ok) return ok.error();
  const fs::path run = options.run_dir;
  BundleContents out;
  Manifest& m = out.manifest;
  m.model_version = options.model_version;
  m.created_at = options.created_at.empty() ? now_iso8601() : options.created_at;
  auto described =
      options.run ? Result<pipeline::RunOutput>(*options.run) : pipeline::read_run_output(run);
  if (!described) return described.error();
  describe_run(*described, m);
  if (auto ok = read_student(run / pipeline::RunFiles::kStudent, m); !ok) return ok.error();
  if (options.footprint_path && options.measure_with) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a footprint is either read from a file or measured, not both");
  }
  if (options.footprint_path) {
    if (auto ok = read_footprint(*options.footprint_path, m.footprint); !ok) return ok.error();
  }
  m.data_snapshot.digest_of =
      "not recorded: the run keeps no digest of its data (bundle build --data)";
  if (options.data_path) {
    if (auto ok = digest_data(*options.data_path, m.data_snapshot); !ok) return ok.error();
  }
  auto exported = options.exported ? Result<pipeline::ExportedModel>(*options.exported)
                                   : pipeline::export_run(run, options.model_version);
  if (!exported) return exported.error();
  m.runtime_abi_version = pipeline::kNodeModelVersion;
  if (options.measure_with) {
    auto measured =
        measure_model({exported->model_data_h, exported->model_data_c}, *options.measure_with);
    if (!measured) return measured.error();
    m.footprint = *measured;
  }
  auto report_bytes = read_bytes(run / pipeline::RunFiles::kReportJson);
  if (!report_bytes) return report_bytes.error();
  auto html = read_bytes(run / pipeline::RunFiles::kReportHtml);
  if (!html) return html.error();
  out.files.push_back({"model/model.bin", exported->blob});
  out.files.push_back({"model/model_data.h", bytes_of(exported->model_data_h)});
  out.files.push_back({"model/model_data.c", bytes_of(exported->model_data_c)});
  out.files.push_back({"report/report.json", std::move(*report_bytes)});
  out.files.push_back({"report/report.html", std::move(*html)});
  for (BundleFile& file : runtime_files())
    out.files.push_back(std::move(file));
  return out;
}

}  // namespace cyclecast::bundle
