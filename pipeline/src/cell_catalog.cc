#include "cyclecast/pipeline/csv_import.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "csv_common.h"
#include "csv_reader.h"
#include "csv_values.h"
#include "cyclecast/ids.h"

namespace cyclecast::pipeline {

namespace {

// A plausibility limit: a rated capacity no real cell has (docs/csv-format.md).
constexpr double kMaxRatedCapacityAh = 10000.0;

// Cells file columns with a fixed meaning; every other column is metadata.
enum class CellColumn { kCellId, kRigId, kChemistry, kRatedCapacity, kPolicy, kMetadata };

CellColumn cell_column_of(std::string_view name) {
  if (name == "cell_id") return CellColumn::kCellId;
  if (name == "rig_id") return CellColumn::kRigId;
  if (name == "chemistry") return CellColumn::kChemistry;
  // capacity_ah: the rated capacity in batteryarchive.org's metadata.csv.
  if (name == "rated_capacity_ah" || name == "capacity_ah") return CellColumn::kRatedCapacity;
  if (name == "policy") return CellColumn::kPolicy;
  return CellColumn::kMetadata;
}

void append_metadata_member(std::string& json, std::string_view key, std::string_view value) {
  // `json` is an object still open: "{" or "{...members".
  if (json.back() != '{') json.push_back(',');
  csv::append_json_string(json, key);
  json.push_back(':');
  if (csv::is_json_number(value)) {
    json.append(value);
  } else {
    csv::append_json_string(json, value);
  }
}

// The cells file's header: what each column means, and its name for messages and metadata.
struct CellHeader {
  std::vector<CellColumn> columns;
  std::vector<std::string> names;
};

// Reads the header row from a fresh `reader`; a missing, malformed or cell_id-less header is an
// error, because no row can be read without knowing which column names the cell.
Result<CellHeader> read_cell_header(csv::RecordReader& reader, const std::string& source_name) {
  const csv::ReadStatus status = reader.next();
  if (status == csv::ReadStatus::kEnd) {
    return csv::parse_error(source_name, 1,
                            "empty file: expected a header row starting with cell_id");
  }
  if (status == csv::ReadStatus::kError)
    return csv::parse_error(source_name, reader.line(), reader.error());
  if (auto shape = csv::check_header_shape(reader.fields(), reader.raw(), source_name); !shape) {
    return shape.error();
  }
  CellHeader header;
  for (const std::string_view field : reader.fields()) {
    const std::string_view name = csv::trim(field);
    if (std::find(header.names.begin(), header.names.end(), name) != header.names.end()) {
      return csv::parse_error(source_name, 1,
                              "column " + csv::quote_for_message(name) + " appears twice");
    }
    header.names.emplace_back(name);
    header.columns.push_back(cell_column_of(name));
  }
  if (std::find(header.columns.begin(), header.columns.end(), CellColumn::kCellId) ==
      header.columns.end()) {
    return csv::parse_error(source_name, 1, "missing required column 'cell_id'");
  }
  if (std::count(header.columns.begin(), header.columns.end(), CellColumn::kRatedCapacity) > 1) {
    return csv::parse_error(source_name, 1,
                            "columns 'rated_capacity_ah' and 'capacity_ah' both give the rated "
                            "capacity: keep one");
  }
  return header;
}

// batteryarchive.org's metadata names cells with a '/' ("SNL_18650_LFP_25C_0-100_0.5/1C_a")
// that its file names, and so the ids import derives from them, write as '-'
// ("..._0.5-1C_a_cycle_data.csv"). A '/' cannot be in an id (cyclecast/ids.h), so reading it as
// '-' matches such a row to its file and loses nothing.
std::string cell_id_of_row(std::string_view value) {
  std::string id(value);
  std::replace(id.begin(), id.end(), '/', '-');
  return id;
}

// A non-empty rated_capacity_ah field; `label` names its column in the message.
Result<double> parse_rated_capacity(std::string_view value, const std::string& label,
                                    const std::string& source_name, std::uint32_t line) {
  double rated = 0.0;
  if (csv::parse_double(value, rated) != csv::NumberStatus::kOk || rated <= 0.0 ||
      rated > kMaxRatedCapacityAh) {
    return csv::parse_error(source_name, line,
                            label + ": expected a rated capacity in (0, " +
                                csv::format_number(kMaxRatedCapacityAh) + "] Ah, found " +
                                csv::quote_for_message(value));
  }
  return rated;
}

}  // namespace

CellCatalog::CellCatalog(CellDefaults defaults) : defaults_(std::move(defaults)) {}

Result<CellCatalog> CellCatalog::load(const std::filesystem::path& path, CellDefaults defaults) {
  auto bytes = csv::read_whole_file(path);
  if (!bytes) return bytes.error();
  return parse(bytes->view(), path.string(), std::move(defaults));
}

Result<CellCatalog> CellCatalog::parse(std::string_view text, const std::string& source_name,
                                       CellDefaults defaults) {
  CellCatalog catalog(std::move(defaults));
  csv::RecordReader reader(text);
  auto header = read_cell_header(reader, source_name);
  if (!header) return header.error();
  const std::vector<CellColumn>& columns = header->columns;
  const std::vector<std::string>& names = header->names;
  csv::ReadStatus status;
  while ((status = reader.next()) == csv::ReadStatus::kRecord) {
    if (reader.blank()) continue;
    const auto fields = reader.fields();
    const std::uint32_t line = reader.line();
    if (fields.size() != columns.size()) {
      return csv::parse_error(source_name, line,
                              "row has " + std::to_string(fields.size()) +
                                  " fields, the header has " + std::to_string(columns.size()));
    }
    Entry entry;
    entry.info.metadata_json = "{";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::string_view value = csv::trim(fields[i]);
      const std::string label =
          "column " + csv::quote_for_message(names[i]) + " (" + std::to_string(i + 1) + ")";
      switch (columns[i]) {
        case CellColumn::kCellId: {
          std::string id = cell_id_of_row(value);
          if (const std::string problem = csv::check_cell_id(id); !problem.empty()) {
            return csv::parse_error(source_name, line, label + ": " + problem);
          }
          entry.info.cell_id = std::move(id);
          break;
        }
        case CellColumn::kRigId:
          if (!value.empty()) {
            if (const std::string problem = check_id(value); !problem.empty()) {
              return csv::parse_error(source_name, line, label + ": rig " + problem);
            }
          }
          entry.info.rig_id.assign(value);
          break;
        case CellColumn::kChemistry:
          entry.info.chemistry.assign(value);
          break;
        case CellColumn::kPolicy:
          entry.info.charge_policy.assign(value);
          break;
        case CellColumn::kRatedCapacity: {
          if (value.empty()) break;
          auto rated = parse_rated_capacity(value, label, source_name, line);
          if (!rated) return rated.error();
          entry.rated_capacity_ah = *rated;
          break;
        }
        case CellColumn::kMetadata:
          if (value.empty()) break;  // not given, like an empty optional cycle field
          append_metadata_member(entry.info.metadata_json, names[i], value);
          entry.has_batch = entry.has_batch || names[i] == "batch";
          break;
      }
    }
    entry.info.metadata_json.push_back('}');
    std::string id = entry.info.cell_id;
    const std::string quoted = csv::quote_for_message(id);
    if (!catalog.cells_.emplace(std::move(id), std::move(entry)).second) {
      return csv::parse_error(source_name, line, "cell " + quoted + " is listed twice");
    }
  }
  if (status == csv::ReadStatus::kError)
    return csv::parse_error(source_name, reader.line(), reader.error());
  return catalog;
}

Result<storage::CellInfo> CellCatalog::resolve(std::string_view cell_id,
                                               std::string_view batch) const {
  storage::CellInfo info;
  info.cell_id.assign(cell_id);
  std::optional<double> rated = defaults_.rated_capacity_ah;
  bool has_batch = false;
  if (const auto it = cells_.find(cell_id); it != cells_.end()) {
    info = it->second.info;
    if (it->second.rated_capacity_ah) rated = it->second.rated_capacity_ah;
    has_batch = it->second.has_batch;
  }
  if (!rated) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no rated capacity known for cell " + csv::quote_for_message(cell_id) +
                          " (neither the cells file nor the defaults give one)");
  }
  info.rated_capacity_ah = *rated;
  if (info.rig_id.empty()) info.rig_id = defaults_.rig_id;
  if (info.chemistry.empty()) info.chemistry = defaults_.chemistry;
  if (info.charge_policy.empty()) info.charge_policy = defaults_.policy;
  if (info.metadata_json.empty()) info.metadata_json = "{}";
  if (!batch.empty() && !has_batch) {
    info.metadata_json.pop_back();  // reopen the object
    append_metadata_member(info.metadata_json, "batch", batch);
    info.metadata_json.push_back('}');
  }
  return info;
}

}  // namespace cyclecast::pipeline
