#include "cyclecast/pipeline/csv_import.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "csv_common.h"
#include "csv_reader.h"
#include "csv_values.h"

namespace cyclecast::pipeline {

namespace {

using csv::Column;
using csv::Layout;

// Plausibility limits: values outside them are ones no working rig reports (docs/csv-format.md).
// Real glitches (a 1.5 Ah spike on a 1.1 Ah cell, a 0 Ω resistance) stay inside on purpose:
// cleaning them is the pipeline's job, refusing them here would lose data.
constexpr double kMaxCapacityPerRated = 2.0;  // qd_ah, qc_ah <= 2 x rated capacity
constexpr double kMaxInternalResistanceOhm = 100.0;
constexpr double kMinTemperatureC = -60.0;     // below any cycler's operating range
constexpr double kMaxTemperatureC = 150.0;     // above it, the cell has vented
constexpr double kMaxChargeTimeMin = 10080.0;  // one week for a single charge step
constexpr std::int64_t kMaxCycle = 1'000'000;
constexpr std::int64_t kMinMeasuredAtMs = 0;                  // 1970-01-01
constexpr std::int64_t kMaxMeasuredAtMs = 4'102'444'800'000;  // 2100-01-01
constexpr std::size_t kProgressEveryRows = 1 << 16;

// An inclusive or half-open range for one numeric column, with its unit for messages.
struct Range {
  double min;
  bool min_inclusive;
  double max;  // always inclusive
  const char* unit;
  bool relative_to_rated = false;  // max is a multiple of the cell's rated capacity
};

std::string describe(const Range& range, double rated_ah) {
  std::string text = std::string(range.min_inclusive ? "[" : "(") + csv::format_number(range.min) +
                     ", " + csv::format_number(range.max) + "] " + range.unit;
  if (range.relative_to_rated) {
    text += " (" + csv::format_number(kMaxCapacityPerRated) + " x rated capacity " +
            csv::format_number(rated_ah) + " Ah)";
  }
  return text;
}

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// Parses rows of one file into compact validated rows.
class RowParser {
 public:
  RowParser(const Layout& layout, const std::string& source, const ParseOptions& options,
            ParsedCycles& out)
      : layout_(layout), source_(source), options_(options), out_(out) {}

  // Registers the BatteryArchive file's one cell.
  Result<void> add_fixed_cell(std::string_view cell_id, std::uint32_t line) {
    if (const std::string problem = csv::check_cell_id(cell_id); !problem.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        source_ + ": " + csv::quote_for_message(cell_id) + ": " + problem +
                            "; a BatteryArchive file's cell id is its file name without "
                            "'_cycle_data.csv' unless one is given (--cell)");
    }
    auto added = add_cell(cell_id, line);
    if (!added) return added.error();
    return {};
  }

  // Parses one record; false with `reason` set when the row is bad. A structural failure
  // (a cell with no rated capacity) is returned as an error.
  Result<bool> parse(std::span<const std::string_view> fields, std::uint32_t line, CycleRow& row,
                     std::string& reason) {
    if (fields.size() != layout_.columns.size()) {
      reason = "row has " + std::to_string(fields.size()) + " fields, the header has " +
               std::to_string(layout_.columns.size());
      if (fields.size() == 1 && fields[0].find(';') != std::string_view::npos) {
        reason += " (fields must be separated by ',', not ';')";
      }
      return false;
    }
    row = CycleRow{};
    row.line = line;
    row.qc_ah = row.ir_ohm = row.tmin_c = row.tavg_c = row.tmax_c = row.chargetime_min = kMissing;
    if (layout_.format == CsvFormat::kCyclecast) {
      auto cell = read_cell(fields, line, reason);
      if (!cell) return cell.error();
      if (!*cell) return false;
    }
    row.cell = current_cell_;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (!read_field(i, fields[i], row, reason)) return false;
    }
    return check_temperature_order(row, reason);
  }

 private:
  Result<std::uint32_t> add_cell(std::string_view cell_id, std::uint32_t line) {
    std::optional<double> rated;
    if (options_.catalog != nullptr) {
      auto info = options_.catalog->resolve(cell_id);
      if (!info)
        return make_error(info.error().code,
                          csv::location(source_, line) + ": " + info.error().message);
      rated = info->rated_capacity_ah;
    }
    if (!rated) {
      return make_error(ErrorCode::kInvalidArgument, csv::location(source_, line) +
                                                         ": no rated capacity known for cell " +
                                                         csv::quote_for_message(cell_id));
    }
    const auto index = static_cast<std::uint32_t>(out_.cell_ids.size());
    out_.cell_ids.emplace_back(cell_id);
    out_.cell_batches.emplace_back();
    rated_ah_.push_back(*rated);
    cell_index_.emplace(std::string(cell_id), index);
    current_cell_ = index;
    return index;
  }

  // Finds or registers the row's cell; false with `reason` for a bad cell id.
  Result<bool> read_cell(std::span<const std::string_view> fields, std::uint32_t line,
                         std::string& reason) {
    const std::size_t position = position_of(Column::kCellId);
    const std::string_view cell_id = csv::trim(fields[position]);
    // Rows come grouped by cell in practice: compare with the previous row's cell first.
    if (!out_.cell_ids.empty() && out_.cell_ids[current_cell_] == cell_id) return true;
    if (const std::string problem = csv::check_cell_id(cell_id); !problem.empty()) {
      reason = column_label(position) + ": " + problem;
      return false;
    }
    if (const auto it = cell_index_.find(cell_id); it != cell_index_.end()) {
      current_cell_ = it->second;
      return true;
    }
    auto added = add_cell(cell_id, line);
    if (!added) return added.error();
    return true;
  }

  bool read_field(std::size_t position, std::string_view field, CycleRow& row,
                  std::string& reason) {
    const double rated = rated_ah_[row.cell];
    const double max_capacity_ah = kMaxCapacityPerRated * rated;
    switch (layout_.columns[position]) {
      case Column::kCellId:
      case Column::kIgnored:
        return true;
      case Column::kBatch:
        return read_batch(position, field, row, reason);
      case Column::kCycle:
        return read_cycle(position, field, row, reason);
      case Column::kQd:
        return read_number(position, field, true, Range{0.0, false, max_capacity_ah, "Ah", true},
                           row.qd_ah, reason);
      case Column::kQc:
        return read_number(position, field, false, Range{0.0, true, max_capacity_ah, "Ah", true},
                           row.qc_ah, reason);
      case Column::kIr:
        return read_number(position, field, false,
                           Range{0.0, true, kMaxInternalResistanceOhm, "ohm"}, row.ir_ohm, reason);
      case Column::kTmax:
        return read_temperature(position, field, row.tmax_c, reason);
      case Column::kTavg:
        return read_temperature(position, field, row.tavg_c, reason);
      case Column::kTmin:
        return read_temperature(position, field, row.tmin_c, reason);
      case Column::kChargeTime:
        return read_number(position, field, false, Range{0.0, true, kMaxChargeTimeMin, "min"},
                           row.chargetime_min, reason);
      case Column::kMeasuredAt:
        return read_measured_at(position, field, row, reason);
    }
    return true;
  }

  bool read_batch(std::size_t position, std::string_view field, const CycleRow& row,
                  std::string& reason) {
    const std::string_view batch = csv::trim(field);
    if (batch.empty()) return true;
    std::string& known = out_.cell_batches[row.cell];
    if (known.empty()) {
      known.assign(batch);
      return true;
    }
    if (known == batch) return true;
    reason = column_label(position) + ": cell " + csv::quote_for_message(out_.cell_ids[row.cell]) +
             " was in batch " + csv::quote_for_message(known) + " on an earlier row, found " +
             csv::quote_for_message(batch);
    return false;
  }

  bool read_cycle(std::size_t position, std::string_view field, CycleRow& row,
                  std::string& reason) {
    const bool allow_zero_fraction = layout_.format == CsvFormat::kBatteryArchive;
    const csv::IntegerStatus status = csv::parse_integer(field, allow_zero_fraction, row.cycle);
    if (status == csv::IntegerStatus::kOk && row.cycle >= 1 && row.cycle <= kMaxCycle) return true;
    if (status == csv::IntegerStatus::kEmpty) {
      reason = column_label(position) + ": required value is empty";
    } else {
      reason = column_label(position) + ": expected a cycle number, an integer in [1, " +
               std::to_string(kMaxCycle) + "], found " + csv::quote_for_message(field);
    }
    return false;
  }

  bool read_number(std::size_t position, std::string_view field, bool required, const Range& range,
                   double& out, std::string& reason) {
    const csv::NumberStatus status = csv::parse_double(field, out);
    if (status == csv::NumberStatus::kOk) {
      const bool above_min = range.min_inclusive ? out >= range.min : out > range.min;
      if (above_min && out <= range.max) return true;
    } else if (status == csv::NumberStatus::kEmpty && !required) {
      out = kMissing;
      return true;
    }
    // Built only on failure: the happy path above allocates nothing.
    const std::string expected = describe(range, rated_ah_[current_cell_]);
    const std::string found = ", found " + csv::quote_for_message(csv::trim(field));
    reason = column_label(position) + ": ";
    switch (status) {
      case csv::NumberStatus::kEmpty:
        reason += "required value is empty; expected a number in " + expected;
        break;
      case csv::NumberStatus::kNaN:
        reason += "NaN is not a measurement; leave the field empty if it was not measured";
        break;
      case csv::NumberStatus::kInfinite:
        reason += "expected a finite number in " + expected + found;
        break;
      case csv::NumberStatus::kNotANumber:
      case csv::NumberStatus::kOk:  // out of range
        reason += "expected a number in " + expected + found;
        break;
    }
    return false;
  }

  bool read_temperature(std::size_t position, std::string_view field, double& out,
                        std::string& reason) {
    return read_number(position, field, false,
                       Range{kMinTemperatureC, true, kMaxTemperatureC, "degC"}, out, reason);
  }

  bool read_measured_at(std::size_t position, std::string_view field, CycleRow& row,
                        std::string& reason) {
    if (csv::trim(field).empty()) return true;
    std::int64_t ms = 0;
    if (csv::parse_utc_timestamp_ms(field, ms) && ms >= kMinMeasuredAtMs && ms < kMaxMeasuredAtMs) {
      row.measured_at_ms = ms;
      row.has_measured_at = true;
      return true;
    }
    reason = column_label(position) +
             ": expected an ISO-8601 UTC time between 1970 and 2100 like "
             "2026-01-01T00:00:00Z, found " +
             csv::quote_for_message(field);
    return false;
  }

  // A minimum above the mean or maximum is a swapped or corrupt column, not a reading.
  bool check_temperature_order(const CycleRow& row, std::string& reason) {
    const auto out_of_order = [](double low, double high) {
      return !std::isnan(low) && !std::isnan(high) && low > high;
    };
    const char* low_name = nullptr;
    const char* high_name = nullptr;
    if (out_of_order(row.tmin_c, row.tavg_c)) {
      low_name = "minimum";
      high_name = "mean";
    } else if (out_of_order(row.tavg_c, row.tmax_c)) {
      low_name = "mean";
      high_name = "maximum";
    } else if (out_of_order(row.tmin_c, row.tmax_c)) {
      low_name = "minimum";
      high_name = "maximum";
    } else {
      return true;
    }
    reason = std::string("temperatures out of order: the ") + low_name +
             " temperature is above the " + high_name + " (expected tmin_c <= tavg_c <= tmax_c)";
    return false;
  }

  std::size_t position_of(Column column) const {
    return static_cast<std::size_t>(
        std::find(layout_.columns.begin(), layout_.columns.end(), column) -
        layout_.columns.begin());
  }

  std::string column_label(std::size_t position) const {
    return "column " + csv::quote_for_message(layout_.names[position]) + " (" +
           std::to_string(position + 1) + ")";
  }

  const Layout& layout_;
  const std::string& source_;
  const ParseOptions& options_;
  ParsedCycles& out_;
  std::vector<double> rated_ah_;  // per cell index
  std::map<std::string, std::uint32_t, std::less<>> cell_index_;
  std::uint32_t current_cell_ = 0;
};

bool same_value(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

// Same measurement in the sense of storage::CycleRecord::same_measurement (time ignored).
bool same_measurement(const CycleRow& a, const CycleRow& b) {
  return a.qd_ah == b.qd_ah && same_value(a.qc_ah, b.qc_ah) && same_value(a.ir_ohm, b.ir_ohm) &&
         same_value(a.tmin_c, b.tmin_c) && same_value(a.tavg_c, b.tavg_c) &&
         same_value(a.tmax_c, b.tmax_c) && same_value(a.chargetime_min, b.chargetime_min);
}

std::uint64_t row_key(const CycleRow& row) {
  return (std::uint64_t{row.cell} << 32) | static_cast<std::uint64_t>(row.cycle);
}

// Drops later repeats of a (cell, cycle): identical ones are counted, differing ones rejected.
// `raw_lines` holds each row's text, parallel to parsed.rows.
void remove_repeats(ParsedCycles& parsed, const std::vector<std::string_view>& raw_lines) {
  std::vector<CycleRow>& rows = parsed.rows;
  bool strictly_increasing = true;
  for (std::size_t i = 1; i < rows.size() && strictly_increasing; ++i) {
    strictly_increasing = row_key(rows[i - 1]) < row_key(rows[i]);
  }
  if (strictly_increasing) return;  // the common case: no repeat possible

  std::vector<std::uint32_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0U);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return row_key(rows[a]) < row_key(rows[b]);
  });
  std::vector<bool> drop(rows.size(), false);
  std::size_t first = 0;
  for (std::size_t i = 1; i < order.size(); ++i) {
    const CycleRow& kept = rows[order[first]];
    const CycleRow& repeat = rows[order[i]];
    if (row_key(kept) != row_key(repeat)) {
      first = i;
      continue;
    }
    drop[order[i]] = true;
    if (same_measurement(kept, repeat)) {
      ++parsed.duplicate_rows;
      continue;
    }
    ++parsed.conflicting_rows;
    parsed.rejected.push_back(
        RowRejection{repeat.line, std::string(raw_lines[order[i]]),
                     "conflicting duplicate: cycle " + std::to_string(repeat.cycle) + " of cell " +
                         csv::quote_for_message(parsed.cell_ids[repeat.cell]) + " is on line " +
                         std::to_string(kept.line) + " with other values"});
  }
  std::size_t write = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!drop[i]) rows[write++] = rows[i];
  }
  rows.resize(write);
  std::sort(parsed.rejected.begin(), parsed.rejected.end(),
            [](const RowRejection& a, const RowRejection& b) { return a.line < b.line; });
}
}  // namespace

Result<ParsedCycles> parse_cycles_csv(std::string_view text, const std::string& source_name,
                                      const ParseOptions& options) {
  ParsedCycles parsed;
  csv::RecordReader reader(text);
  csv::ReadStatus status = reader.next();
  if (status == csv::ReadStatus::kEnd) {
    return csv::parse_error(source_name, 1, "empty file: expected a header row");
  }
  if (status == csv::ReadStatus::kError) {
    return csv::parse_error(source_name, reader.line(), reader.error());
  }
  auto layout = csv::read_layout(reader.fields(), reader.raw(), options.format, source_name);
  if (!layout) return layout.error();
  parsed.format = layout->format;

  RowParser parser(*layout, source_name, options, parsed);
  if (parsed.format == CsvFormat::kBatteryArchive) {
    if (options.cell_id.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        source_name + ": a BatteryArchive file holds one cell; its id is needed");
    }
    if (auto added = parser.add_fixed_cell(options.cell_id, 1); !added) return added.error();
  }

  std::vector<std::string_view> raw_lines;  // for messages about repeats found after the pass
  // Rows are usually about as long as the header: reserving for that many saves the regrowth
  // copies of a large file. Overestimates cost address space only (untouched pages are not
  // committed); the floor keeps a tiny header from reserving absurdly much.
  constexpr std::size_t kMinRowBytesForEstimate = 32;
  const std::size_t rows_estimate =
      text.size() / std::max(reader.raw().size(), kMinRowBytesForEstimate);
  parsed.rows.reserve(rows_estimate);
  raw_lines.reserve(rows_estimate);
  std::string reason;
  CycleRow row;
  while ((status = reader.next()) == csv::ReadStatus::kRecord) {
    if (reader.blank()) continue;
    ++parsed.data_rows;
    auto good = parser.parse(reader.fields(), reader.line(), row, reason);
    if (!good) return good.error();
    if (*good) {
      parsed.rows.push_back(row);
      raw_lines.push_back(reader.raw());
    } else {
      parsed.rejected.push_back(RowRejection{reader.line(), std::string(reader.raw()), reason});
    }
    if (options.progress && parsed.data_rows % kProgressEveryRows == 0) {
      options.progress(ParseProgress{reader.offset(), reader.size(), parsed.data_rows});
    }
  }
  if (status == csv::ReadStatus::kError) {
    return csv::parse_error(source_name, reader.line(), reader.error());
  }
  remove_repeats(parsed, raw_lines);
  if (options.progress) {
    options.progress(ParseProgress{reader.size(), reader.size(), parsed.data_rows});
  }
  return parsed;
}

void cycle_row_to_record(const ParsedCycles& parsed, const CycleRow& row, const std::string& source,
                         storage::CycleRecord& out) {
  const auto optional = [](double value) {
    return std::isnan(value) ? std::optional<double>() : std::optional<double>(value);
  };
  out.cell_id = parsed.cell_ids[row.cell];  // assignment reuses the string's buffer
  out.cycle = row.cycle;
  out.discharge_capacity_ah = row.qd_ah;
  out.charge_capacity_ah = optional(row.qc_ah);
  out.internal_resistance_ohm = optional(row.ir_ohm);
  out.temperature_min_c = optional(row.tmin_c);
  out.temperature_avg_c = optional(row.tavg_c);
  out.temperature_max_c = optional(row.tmax_c);
  out.charge_time_min = optional(row.chargetime_min);
  out.measured_at_ms =
      row.has_measured_at ? std::optional<std::int64_t>(row.measured_at_ms) : std::nullopt;
  out.received_at_ms = 0;
  out.source = source;
}

std::string cell_id_from_file_name(const std::filesystem::path& path) {
  constexpr std::string_view kSuffix = "_cycle_data";
  std::string stem = path.stem().string();
  if (stem.size() > kSuffix.size() && stem.ends_with(kSuffix)) {
    stem.resize(stem.size() - kSuffix.size());
  }
  return stem;
}

}  // namespace cyclecast::pipeline
