#include "cyclecast/pipeline/csv_import.h"

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "csv_common.h"
#include "csv_values.h"

namespace cyclecast::pipeline {

std::optional<CsvFormat> csv_format_from_name(std::string_view name) {
  if (name == "auto") return CsvFormat::kAuto;
  if (name == "cyclecast") return CsvFormat::kCyclecast;
  if (name == "batteryarchive") return CsvFormat::kBatteryArchive;
  return std::nullopt;
}

std::string_view csv_format_name(CsvFormat format) {
  switch (format) {
    case CsvFormat::kAuto:
      return "auto";
    case CsvFormat::kCyclecast:
      return "cyclecast";
    case CsvFormat::kBatteryArchive:
      return "batteryarchive";
  }
  return "auto";
}

namespace csv {

namespace {

struct ColumnName {
  std::string_view name;
  Column column;
};

constexpr std::array kCyclecastColumns{
    ColumnName{"cell_id", Column::kCellId},
    ColumnName{"batch", Column::kBatch},
    ColumnName{"cycle", Column::kCycle},
    ColumnName{"qd_ah", Column::kQd},
    ColumnName{"qc_ah", Column::kQc},
    ColumnName{"ir_ohm", Column::kIr},
    ColumnName{"tmax_c", Column::kTmax},
    ColumnName{"tavg_c", Column::kTavg},
    ColumnName{"tmin_c", Column::kTmin},
    ColumnName{"chargetime_min", Column::kChargeTime},
    ColumnName{"measured_at", Column::kMeasuredAt},
};

// BatteryArchive.org cycle summaries (cycle_data.csv). Currents, voltages, energies and times
// relative to the test start have no place in a cycle record and are read past.
constexpr std::array kBatteryArchiveColumns{
    ColumnName{"Cycle_Index", Column::kCycle},
    ColumnName{"Discharge_Capacity (Ah)", Column::kQd},
    ColumnName{"Charge_Capacity (Ah)", Column::kQc},
    ColumnName{"Internal_Resistance (Ohm)", Column::kIr},
    ColumnName{"Max_Temperature (C)", Column::kTmax},
    ColumnName{"Avg_Temperature (C)", Column::kTavg},
    ColumnName{"Min_Temperature (C)", Column::kTmin},
    ColumnName{"Start_Time", Column::kIgnored},
    ColumnName{"End_Time", Column::kIgnored},
    ColumnName{"Test_Time (s)", Column::kIgnored},
    ColumnName{"Min_Current (A)", Column::kIgnored},
    ColumnName{"Max_Current (A)", Column::kIgnored},
    ColumnName{"Min_Voltage (V)", Column::kIgnored},
    ColumnName{"Max_Voltage (V)", Column::kIgnored},
    ColumnName{"Charge_Energy (Wh)", Column::kIgnored},
    ColumnName{"Discharge_Energy (Wh)", Column::kIgnored},
};

constexpr std::array<std::string_view, 3> kCyclecastRequired{"cell_id", "cycle", "qd_ah"};
constexpr std::array<std::string_view, 2> kBatteryArchiveRequired{"Cycle_Index",
                                                                  "Discharge_Capacity (Ah)"};

CsvFormat detect_format(std::span<const std::string_view> fields) {
  for (const std::string_view field : fields) {
    const std::string_view name = trim(field);
    if (name == "Cycle_Index" || name == "Discharge_Capacity (Ah)") {
      return CsvFormat::kBatteryArchive;
    }
  }
  return CsvFormat::kCyclecast;
}

template <std::size_t N>
std::string join(const std::array<std::string_view, N>& names) {
  std::string out;
  for (const std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

template <std::size_t N>
std::string join(const std::array<ColumnName, N>& table) {
  std::array<std::string_view, N> names;
  std::transform(table.begin(), table.end(), names.begin(),
                 [](const ColumnName& entry) { return entry.name; });
  return join(names);
}

// What a refused header is compared with. With --format the one layout's columns; when the
// format was guessed from the header, the guess may be wrong (a file of another tool altogether,
// such as a NASA-style export with an unnamed index column), so the message names every layout
// import reads and the columns each requires.
std::string expected_columns(CsvFormat format, bool guessed) {
  if (!guessed) {
    const std::string all = format == CsvFormat::kBatteryArchive ? join(kBatteryArchiveColumns)
                                                                 : join(kCyclecastColumns);
    const std::string required = format == CsvFormat::kBatteryArchive
                                     ? join(kBatteryArchiveRequired)
                                     : join(kCyclecastRequired);
    return "the " + std::string(csv_format_name(format)) + " format has the columns: " + all +
           " (required: " + required + ")";
  }
  return "import reads two layouts, told apart by the header: cyclecast (required columns: " +
         join(kCyclecastRequired) +
         ") and batteryarchive (required columns: " + join(kBatteryArchiveRequired) +
         "); docs/csv-format.md lists all their columns";
}

template <std::size_t N, std::size_t R>
Result<Layout> map_columns(std::span<const std::string_view> fields,
                           const std::array<ColumnName, N>& table,
                           const std::array<std::string_view, R>& required, CsvFormat format,
                           bool guessed, const std::string& source) {
  Layout layout;
  layout.format = format;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = trim(fields[i]);
    const std::string position = "column " + std::to_string(i + 1);
    if (name.empty()) {
      return parse_error(source, 1,
                         position +
                             " has no name (an index column written by a spreadsheet or "
                             "pandas?); " +
                             expected_columns(format, guessed));
    }
    const auto it = std::find_if(table.begin(), table.end(),
                                 [&](const ColumnName& entry) { return entry.name == name; });
    if (it == table.end()) {
      return parse_error(source, 1,
                         "unknown column " + quote_for_message(name) + " (" + position + "); " +
                             expected_columns(format, guessed));
    }
    const auto seen = std::find(layout.names.begin(), layout.names.end(), name);
    if (seen != layout.names.end()) {
      return parse_error(source, 1,
                         "column " + quote_for_message(name) + " appears twice (columns " +
                             std::to_string(seen - layout.names.begin() + 1) + " and " +
                             std::to_string(i + 1) + ")");
    }
    layout.columns.push_back(it->column);
    layout.names.emplace_back(name);
  }
  for (const std::string_view name : required) {
    if (std::find(layout.names.begin(), layout.names.end(), name) == layout.names.end()) {
      return parse_error(source, 1,
                         "missing required column " + quote_for_message(name) + "; " +
                             expected_columns(format, guessed));
    }
  }
  return layout;
}

}  // namespace

Result<Layout> read_layout(std::span<const std::string_view> fields, std::string_view raw,
                           CsvFormat requested, const std::string& source) {
  if (auto shape = check_header_shape(fields, raw, source); !shape) return shape.error();
  const bool guessed = requested == CsvFormat::kAuto;
  const CsvFormat format = guessed ? detect_format(fields) : requested;
  if (format == CsvFormat::kBatteryArchive) {
    return map_columns(fields, kBatteryArchiveColumns, kBatteryArchiveRequired, format, guessed,
                       source);
  }
  return map_columns(fields, kCyclecastColumns, kCyclecastRequired, format, guessed, source);
}

}  // namespace csv

}  // namespace cyclecast::pipeline
