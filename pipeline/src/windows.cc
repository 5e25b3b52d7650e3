#include "cyclecast/pipeline/windows.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <set>
#include <string_view>

namespace cyclecast::pipeline {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const char* const kFeatureNames[] = {kFeatureIrOhm, kFeatureTemperatureC, kFeatureChargeTimeMin};
constexpr const char* kPrefix = "pipeline.";
// The input representation this build writes and reads (windows.h).
constexpr const char* kRepresentation = "2";

bool is_feature_name(const std::string& name) {
  return std::any_of(std::begin(kFeatureNames), std::end(kFeatureNames),
                     [&](const char* known) { return name == known; });
}

// Shortest text that reads back as the same double.
std::string exact_text(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// Welford's running mean and variance.
struct Moments {
  int64_t n = 0;
  double mean = 0.0;
  double m2 = 0.0;
  void add(double x) {
    ++n;
    const double delta = x - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (x - mean);
  }
  double std() const { return n > 1 ? std::sqrt(m2 / static_cast<double>(n - 1)) : 0.0; }
};

// Normalized inputs (level, log amplitude, features) are divided by this many standard
// deviations, so that they span about [-1, 1] like the shape rows. The int8 runtime quantizes
// the whole input vector with one int16 scale set by its largest value; at one standard deviation
// the level reached 4 and set that scale, and the rounding of the shape rows then moved int8
// forecasts by 12 % of the float MAE on the paper segments.
constexpr double kSpreads = 3.0;

// A spread too small to divide by (a constant feature) is replaced by 1, so it encodes as 0.
double usable_std(double std) {
  return std > 1e-12 && std::isfinite(std) ? std : 1.0;
}

class MetadataReader {
 public:
  explicit MetadataReader(const std::map<std::string, std::string>& metadata)
      : metadata_(metadata) {}

  Result<std::string> text(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) return bad(key, "is missing");
    return it->second;
  }
  Result<double> number(const std::string& key) const {
    auto value = text(key);
    if (!value) return value.error();
    double out = 0.0;
    const char* end = value->data() + value->size();
    const auto result = std::from_chars(value->data(), end, out);
    if (result.ec != std::errc() || result.ptr != end || !std::isfinite(out)) {
      return bad(key, "is not a finite number: '" + *value + "'");
    }
    return out;
  }
  Result<int64_t> integer(const std::string& key) const {
    auto value = text(key);
    if (!value) return value.error();
    int64_t out = 0;
    const char* end = value->data() + value->size();
    const auto result = std::from_chars(value->data(), end, out);
    if (result.ec != std::errc() || result.ptr != end) {
      return bad(key, "is not an integer: '" + *value + "'");
    }
    return out;
  }
  static Error bad(const std::string& key, const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "model metadata '" + key + "' " + what);
  }

 private:
  const std::map<std::string, std::string>& metadata_;
};

// The amplitude a window's shape is normalized by: its first input SOH against its last.
double window_amp(double first_soh, double last_soh, double amp_floor) {
  return std::max(std::abs(first_soh - last_soh), amp_floor);
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::size_t begin = 0;
  while (begin <= text.size() && !text.empty()) {
    const std::size_t comma = text.find(',', begin);
    const std::size_t end = comma == std::string::npos ? text.size() : comma;
    names.push_back(text.substr(begin, end - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return names;
}

void append_window(const CellSeries& cell, const FeatureSpec& spec, const WindowRef& ref,
                   int64_t column, Windows& out) {
  const int64_t w = spec.input_len;
  const int64_t h = spec.horizon;
  const auto* rows = cell.rows.data() + ref.first_row;
  out.inputs.col(column) =
      encode_input(std::span<const SeriesRow>(rows, static_cast<std::size_t>(w)), spec);
  const double last = rows[w - 1].soh;
  out.last_soh[static_cast<std::size_t>(column)] = last;
  for (int64_t t = 0; t < w; ++t)
    out.input_soh(t, column) = rows[t].soh;
  for (int64_t j = 0; j < h; ++j) {
    const double soh = rows[w + j].soh;
    out.truth_soh(j, column) = soh;
    out.targets(j, column) = static_cast<float>((soh - last) * spec.delta_scale);
  }
  out.refs[static_cast<std::size_t>(column)] = ref;
}

Windows allocate(const FeatureSpec& spec, int64_t n) {
  Windows w;
  w.inputs.resize(spec.input_size(), n);
  w.targets.resize(spec.horizon, n);
  w.last_soh.resize(static_cast<std::size_t>(n));
  w.input_soh.resize(spec.input_len, n);
  w.truth_soh.resize(spec.horizon, n);
  w.refs.resize(static_cast<std::size_t>(n));
  return w;
}

uint64_t fnv1a(std::string_view text, uint64_t seed) {
  uint64_t hash = 0xCBF29CE484222325ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  // A final avalanche so that ids differing in the last character spread over the whole range.
  return models::Rng(hash).next();
}

}  // namespace

double feature_value(const SeriesRow& row, const std::string& name) {
  if (name == kFeatureIrOhm) return row.ir_ohm;
  if (name == kFeatureTemperatureC) return row.temperature_c;
  if (name == kFeatureChargeTimeMin) return row.charge_time_min;
  return kNaN;
}

std::map<std::string, std::string> FeatureSpec::to_metadata() const {
  std::map<std::string, std::string> m;
  const std::string p = kPrefix;
  m[p + "representation"] = kRepresentation;
  m[p + "input_len"] = std::to_string(input_len);
  m[p + "horizon"] = std::to_string(horizon);
  m[p + "delta_scale"] = exact_text(delta_scale);
  m[p + "level_offset"] = exact_text(level_offset);
  m[p + "level_scale"] = exact_text(level_scale);
  m[p + "amp_floor"] = exact_text(amp_floor);
  m[p + "log_amp_mean"] = exact_text(log_amp_mean);
  m[p + "log_amp_std"] = exact_text(log_amp_std);
  std::string names;
  for (const FeatureStats& f : features) {
    if (!names.empty()) names += ',';
    names += f.name;
    m[p + "feature." + f.name + ".mean"] = exact_text(f.mean);
    m[p + "feature." + f.name + ".std"] = exact_text(f.std);
  }
  m[p + "features"] = names;
  return m;
}

Result<FeatureSpec> FeatureSpec::from_metadata(const std::map<std::string, std::string>& metadata) {
  const MetadataReader r(metadata);
  const std::string p = kPrefix;
  FeatureSpec spec;
  auto representation = r.text(p + "representation");
  if (!representation) return representation.error();
  if (*representation != kRepresentation) {
    return MetadataReader::bad(p + "representation", "is '" + *representation +
                                                         "'; this build reads representation " +
                                                         kRepresentation + " only");
  }
  auto input_len = r.integer(p + "input_len");
  auto horizon = r.integer(p + "horizon");
  auto delta_scale = r.number(p + "delta_scale");
  auto level_offset = r.number(p + "level_offset");
  auto level_scale = r.number(p + "level_scale");
  auto amp_floor = r.number(p + "amp_floor");
  auto log_amp_mean = r.number(p + "log_amp_mean");
  auto log_amp_std = r.number(p + "log_amp_std");
  auto names = r.text(p + "features");
  if (!input_len) return input_len.error();
  if (!horizon) return horizon.error();
  if (!delta_scale) return delta_scale.error();
  if (!level_offset) return level_offset.error();
  if (!level_scale) return level_scale.error();
  if (!amp_floor) return amp_floor.error();
  if (!log_amp_mean) return log_amp_mean.error();
  if (!log_amp_std) return log_amp_std.error();
  if (!names) return names.error();
  if (*input_len < 1) return MetadataReader::bad(p + "input_len", "must be at least 1");
  if (*horizon < 1) return MetadataReader::bad(p + "horizon", "must be at least 1");
  if (*delta_scale <= 0.0) return MetadataReader::bad(p + "delta_scale", "must be positive");
  if (*level_scale <= 0.0) return MetadataReader::bad(p + "level_scale", "must be positive");
  if (*amp_floor <= 0.0) return MetadataReader::bad(p + "amp_floor", "must be positive");
  if (*log_amp_std <= 0.0) return MetadataReader::bad(p + "log_amp_std", "must be positive");
  spec.input_len = *input_len;
  spec.horizon = *horizon;
  spec.delta_scale = *delta_scale;
  spec.level_offset = *level_offset;
  spec.level_scale = *level_scale;
  spec.amp_floor = *amp_floor;
  spec.log_amp_mean = *log_amp_mean;
  spec.log_amp_std = *log_amp_std;
  std::set<std::string> seen;
  for (const std::string& name : split_names(*names)) {
    if (!is_feature_name(name)) {
      return MetadataReader::bad(p + "features", "names an unknown feature '" + name + "'");
    }
    if (!seen.insert(name).second) {
      return MetadataReader::bad(p + "features", "names '" + name + "' twice");
    }
    auto mean = r.number(p + "feature." + name + ".mean");
    auto std = r.number(p + "feature." + name + ".std");
    if (!mean) return mean.error();
    if (!std) return std.error();
    if (*std <= 0.0) return MetadataReader::bad(p + "feature." + name + ".std", "must be positive");
    spec.features.push_back(FeatureStats{name, *mean, *std});
  }
  return spec;
}

Result<FeatureSpec> fit_feature_spec(std::span<const CellSeries> cells,
                                     const FeatureOptions& options) {
  if (options.input_len < 1 || options.horizon < 1) {
    return make_error(ErrorCode::kInvalidArgument, "window input length and horizon must be >= 1");
  }
  if (!(options.delta_scale > 0.0)) {
    return make_error(ErrorCode::kInvalidArgument, "delta_scale must be positive");
  }
  if (!(options.amp_floor > 0.0) || !std::isfinite(options.amp_floor)) {
    return make_error(ErrorCode::kInvalidArgument, "amp_floor must be positive");
  }
  FeatureSpec spec;
  spec.input_len = options.input_len;
  spec.horizon = options.horizon;
  spec.delta_scale = options.delta_scale;
  spec.amp_floor = options.amp_floor;
  const int64_t span = options.input_len + options.horizon;
  Moments level;
  Moments log_amp;
  int64_t rows = 0;
  std::vector<Moments> moments(std::size(kFeatureNames));
  for (const CellSeries& cell : cells) {
    const int64_t n = static_cast<int64_t>(cell.rows.size());
    for (int64_t last = options.input_len - 1; last + options.horizon < n; ++last) {
      const double last_soh = cell.rows[static_cast<std::size_t>(last)].soh;
      const double first_soh =
          cell.rows[static_cast<std::size_t>(last - options.input_len + 1)].soh;
      level.add(last_soh);
      log_amp.add(std::log(window_amp(first_soh, last_soh, options.amp_floor)));
    }
    if (n < span) continue;
    rows += n;
    for (const SeriesRow& row : cell.rows) {
      for (std::size_t f = 0; f < moments.size(); ++f) {
        const double v = feature_value(row, kFeatureNames[f]);
        if (std::isfinite(v)) moments[f].add(v);
      }
    }
  }
  if (level.n == 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "no training cell has the " + std::to_string(span) + " cycles one window needs");
  }
  spec.level_offset = level.mean;
  spec.level_scale = kSpreads * usable_std(level.std());
  spec.log_amp_mean = log_amp.mean;
  spec.log_amp_std = kSpreads * usable_std(log_amp.std());
  if (options.use_optional_features) {
    for (std::size_t f = 0; f < moments.size(); ++f) {
      const double coverage = static_cast<double>(moments[f].n) / static_cast<double>(rows);
      if (moments[f].n < 2 || coverage < options.min_feature_coverage) continue;
      spec.features.push_back(
          FeatureStats{kFeatureNames[f], moments[f].mean, kSpreads * usable_std(moments[f].std())});
    }
  }
  return spec;
}

models::Vector<float> encode_input(std::span<const SeriesRow> rows, const FeatureSpec& spec) {
  const int64_t w = spec.input_len;
  assert(static_cast<int64_t>(rows.size()) == w);
  models::Vector<float> x(spec.input_size());
  const double last = rows[static_cast<std::size_t>(w - 1)].soh;
  const double amp = window_amp(rows[0].soh, last, spec.amp_floor);
  for (int64_t t = 0; t < w; ++t) {
    x(t) = static_cast<float>((rows[static_cast<std::size_t>(t)].soh - last) / amp);
  }
  x(w) = static_cast<float>((last - spec.level_offset) / spec.level_scale);
  x(w + 1) = static_cast<float>((std::log(amp) - spec.log_amp_mean) / spec.log_amp_std);
  int64_t offset = w + 2;
  for (const FeatureStats& f : spec.features) {
    for (int64_t t = 0; t < w; ++t) {
      const double v = feature_value(rows[static_cast<std::size_t>(t)], f.name);
      // A value not reported yet encodes as the training mean.
      x(offset + t) = std::isfinite(v) ? static_cast<float>((v - f.mean) / f.std) : 0.0f;
    }
    offset += w;
  }
  x(spec.gain_index()) = static_cast<float>(amp * spec.delta_scale);
  return x;
}

models::Matrix<float> linear_inputs(const Windows& windows, const FeatureSpec& spec) {
  const int64_t w = spec.input_len;
  const int64_t feature_rows = w * static_cast<int64_t>(spec.features.size());
  const auto n = static_cast<Eigen::Index>(windows.last_soh.size());
  assert(windows.input_soh.rows() == w && windows.input_soh.cols() == n);
  assert(windows.inputs.rows() == spec.input_size() && windows.inputs.cols() == n);
  models::Matrix<float> x(w + 1 + feature_rows, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double last = windows.last_soh[static_cast<std::size_t>(i)];
    // The same double expressions as the encoding before representation 2, so the same floats.
    for (int64_t t = 0; t < w; ++t) {
      x(t, i) = static_cast<float>((windows.input_soh(t, i) - last) * spec.delta_scale);
    }
    x(w, i) = static_cast<float>((last - spec.level_offset) / spec.level_scale);
  }
  x.bottomRows(feature_rows) = windows.inputs.middleRows(w + 2, feature_rows);
  return x;
}

Result<Windows> make_windows_at(std::span<const CellSeries> cells, const FeatureSpec& spec,
                                std::span<const WindowRef> refs) {
  const int64_t span = spec.input_len + spec.horizon;
  for (const WindowRef& ref : refs) {
    if (ref.cell < 0 || ref.cell >= static_cast<int64_t>(cells.size()) || ref.first_row < 0 ||
        ref.first_row + span >
            static_cast<int64_t>(cells[static_cast<std::size_t>(ref.cell)].rows.size())) {
      return make_error(ErrorCode::kInvalidArgument, "window at cell " + std::to_string(ref.cell) +
                                                         " row " + std::to_string(ref.first_row) +
                                                         " is outside the data");
    }
  }
  Windows out = allocate(spec, static_cast<int64_t>(refs.size()));
  for (std::size_t i = 0; i < refs.size(); ++i) {
    append_window(cells[static_cast<std::size_t>(refs[i].cell)], spec, refs[i],
                  static_cast<int64_t>(i), out);
  }
  return out;
}

Windows make_windows(std::span<const CellSeries> cells, const FeatureSpec& spec, int64_t stride,
                     std::span<const int64_t> cell_indices, const WindowFilter& exclude) {
  stride = std::max<int64_t>(1, stride);
  const int64_t span = spec.input_len + spec.horizon;
  std::vector<WindowRef> refs;
  for (const int64_t c : cell_indices) {
    const int64_t n = static_cast<int64_t>(cells[static_cast<std::size_t>(c)].rows.size());
    for (int64_t first = 0; first + span <= n; first += stride) {
      const WindowRef ref{c, first};
      if (!exclude || !exclude(ref)) refs.push_back(ref);
    }
  }
  // Every ref was built inside its cell, so this cannot fail.
  return std::move(make_windows_at(cells, spec, refs).value());
}

Windows make_windows(std::span<const CellSeries> cells, const FeatureSpec& spec, int64_t stride) {
  std::vector<int64_t> all(cells.size());
  std::iota(all.begin(), all.end(), int64_t{0});
  return make_windows(cells, spec, stride, all);
}

Windows select_windows(const Windows& windows, std::span<const int64_t> columns) {
  Windows out;
  const auto n = static_cast<Eigen::Index>(columns.size());
  out.inputs.resize(windows.inputs.rows(), n);
  out.targets.resize(windows.targets.rows(), n);
  out.input_soh.resize(windows.input_soh.rows(), n);
  out.truth_soh.resize(windows.truth_soh.rows(), n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto c = columns[static_cast<std::size_t>(i)];
    out.inputs.col(i) = windows.inputs.col(c);
    out.targets.col(i) = windows.targets.col(c);
    out.input_soh.col(i) = windows.input_soh.col(c);
    out.truth_soh.col(i) = windows.truth_soh.col(c);
    out.last_soh.push_back(windows.last_soh[static_cast<std::size_t>(c)]);
    out.refs.push_back(windows.refs[static_cast<std::size_t>(c)]);
  }
  return out;
}

Eigen::MatrixXd to_soh(const Eigen::MatrixXd& outputs, std::span<const double> last_soh,
                       const FeatureSpec& spec) {
  Eigen::MatrixXd soh = outputs / spec.delta_scale;
  for (Eigen::Index i = 0; i < soh.cols(); ++i) {
    soh.col(i).array() += last_soh[static_cast<std::size_t>(i)];
  }
  return soh;
}

Eigen::MatrixXd to_soh(const models::Matrix<float>& outputs, std::span<const double> last_soh,
                       const FeatureSpec& spec) {
  return to_soh(Eigen::MatrixXd(outputs.cast<double>()), last_soh, spec);
}

CellSplit split_by_cell(std::span<const CellSeries> cells, std::span<const int64_t> among,
                        double validation_fraction, double test_fraction, uint64_t seed) {
  std::vector<std::pair<uint64_t, int64_t>> order;
  for (const int64_t c : among) {
    order.emplace_back(fnv1a(cells[static_cast<std::size_t>(c)].cell_id, seed), c);
  }
  std::sort(order.begin(), order.end());
  const double n = static_cast<double>(order.size());
  const auto n_validation = std::min(
      order.size(), static_cast<std::size_t>(std::llround(std::max(0.0, validation_fraction) * n)));
  const auto n_test =
      std::min(order.size() - std::min(order.size(), n_validation),
               static_cast<std::size_t>(std::llround(std::max(0.0, test_fraction) * n)));
  CellSplit split;
  for (std::size_t i = 0; i < order.size(); ++i) {
    auto& list = i < n_validation            ? split.validation
                 : i < n_validation + n_test ? split.test
                                             : split.train;
    list.push_back(order[i].second);
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.test.begin(), split.test.end());
  return split;
}

CellSplit split_by_cell(std::span<const CellSeries> cells, double validation_fraction,
                        double test_fraction, uint64_t seed) {
  std::vector<int64_t> all(cells.size());
  std::iota(all.begin(), all.end(), int64_t{0});
  return split_by_cell(cells, all, validation_fraction, test_fraction, seed);
}

}  // namespace cyclecast::pipeline
