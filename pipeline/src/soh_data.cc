#include "cyclecast/pipeline/soh_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "csv_reader.h"
#include "csv_values.h"
#include "cyclecast/bounded_json.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::pipeline {

namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The A123 APR18650M1A cells of the reference data.
constexpr double kSeversonRatedAh = 1.1;

Result<std::string> slurp(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return make_error(ErrorCode::kNotFound, "no file " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, "cannot read " + path.string());
  return text.str();
}

// A CSV file read whole, walked record by record with its columns looked up by header name.
class Table {
 public:
  static Result<Table> open(const fs::path& path) {
    auto text = slurp(path);
    if (!text) return text.error();
    Table table(path.filename().string(), std::move(*text));
    if (auto header = table.read_header(); !header) return header.error();
    return table;
  }
  // Index of a column, or an error naming it.
  Result<std::size_t> column(const std::string& name) const {
    auto it = columns_.find(name);
    if (it == columns_.end()) {
      return make_error(ErrorCode::kParse, name_ + ": no column '" + name + "' in the header");
    }
    return it->second;
  }
  bool has_column(const std::string& name) const { return columns_.count(name) != 0; }

  // Next non-blank record; false at the end. Errors for malformed CSV or short records.
  Result<bool> next() {
    for (;;) {
      const auto status = reader_.next();
      if (status == csv::ReadStatus::kEnd) return false;
      if (status == csv::ReadStatus::kError) return error("malformed CSV: " + reader_.error());
      if (reader_.blank()) continue;
      if (reader_.fields().size() < columns_.size()) return error("too few fields");
      return true;
    }
  }
  std::string_view field(std::size_t column) const { return csv::trim(reader_.fields()[column]); }

  // A number; NaN for an empty field or "nan". Errors for text that is not a number.
  Result<double> number(std::size_t column) const {
    double value = kNaN;
    switch (csv::parse_double(field(column), value)) {
      case csv::NumberStatus::kOk:
      case csv::NumberStatus::kInfinite:
        return value;
      case csv::NumberStatus::kEmpty:
      case csv::NumberStatus::kNaN:
        return kNaN;
      case csv::NumberStatus::kNotANumber:
        break;
    }
    return error("'" + std::string(field(column)) + "' is not a number");
  }
  Result<int64_t> integer(std::size_t column) const {
    int64_t value = 0;
    if (csv::parse_integer(field(column), true, value) != csv::IntegerStatus::kOk) {
      return error("'" + std::string(field(column)) + "' is not an integer");
    }
    return value;
  }
  Error error(const std::string& what) const {
    return make_error(ErrorCode::kParse,
                      name_ + " line " + std::to_string(reader_.line()) + ": " + what);
  }

 private:
  // The text lives on the heap so that moving a Table keeps the reader's views valid.
  Table(std::string name, std::string text)
      : name_(std::move(name)),
        text_(std::make_unique<std::string>(std::move(text))),
        reader_(*text_) {}

  Result<void> read_header() {
    if (reader_.next() != csv::ReadStatus::kRecord) {
      return make_error(ErrorCode::kParse, name_ + ": no header row");
    }
    const auto fields = reader_.fields();
    for (std::size_t i = 0; i < fields.size(); ++i)
      columns_[std::string(csv::trim(fields[i]))] = i;
    return {};
  }

  std::string name_;
  std::unique_ptr<std::string> text_;
  csv::RecordReader reader_;
  std::map<std::string, std::size_t> columns_;
};

SeriesRow soh_only_row(int64_t cycle, double soh) {
  return SeriesRow{cycle, soh, kNaN, kNaN, kNaN};
}

Result<std::vector<Segment>> read_segments(const fs::path& path) {
  auto text = slurp(path);
  if (!text) return text.error();
  const std::string name = path.filename().string();
  auto parsed = parse_bounded_json(*text, text->size());
  if (!parsed) return make_error(ErrorCode::kParse, name + ": " + parsed.error().message);
  const nlohmann::json& json = *parsed;
  if (!json.is_array()) {
    return make_error(ErrorCode::kParse, name + ": expected a JSON array of segments");
  }
  std::vector<Segment> segments;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& item = json[i];
    const auto bad = [&](const std::string& what) {
      return make_error(ErrorCode::kParse, name + ": segment " + std::to_string(i) + ": " + what);
    };
    if (!item.is_object() || !item.contains("series") || !item["series"].is_string()) {
      return bad("expected an object with a string 'series'");
    }
    const auto range = [&](const char* key, int64_t& begin, int64_t& end) {
      if (!item.contains(key) || !item[key].is_array() || item[key].size() != 2 ||
          !item[key][0].is_number_integer() || !item[key][1].is_number_integer()) {
        return false;
      }
      begin = item[key][0].get<int64_t>();
      end = item[key][1].get<int64_t>();
      return begin >= 0 && end > begin;
    };
    Segment segment;
    segment.series = item["series"].get<std::string>();
    int64_t input_end = 0;
    if (!range("input_rows", segment.input_begin, input_end)) {
      return bad("'input_rows' must be [begin, end) with 0 <= begin < end");
    }
    if (!range("target_rows", segment.target_begin, segment.target_end)) {
      return bad("'target_rows' must be [begin, end) with 0 <= begin < end");
    }
    if (input_end != segment.target_begin) return bad("target rows must follow the input rows");
    if (item.contains("band") && item["band"].is_string()) {
      segment.band = item["band"].get<std::string>();
    }
    segments.push_back(std::move(segment));
  }
  return segments;
}

// Per-cell facts from severson-raw's cells.csv.
struct RawCellInfo {
  std::string split;
  std::string continuation_of;
  std::string batch;
};

Result<std::map<std::string, RawCellInfo>> read_raw_cells(const fs::path& path) {
  auto table = Table::open(path);
  if (!table) return table.error();
  auto id = table->column("cell_id");
  auto split = table->column("paper_split");
  auto parent = table->column("continuation_of");
  auto batch = table->column("batch");
  if (!id) return id.error();
  if (!batch) return batch.error();
  if (!split) return split.error();
  if (!parent) return parent.error();
  std::map<std::string, RawCellInfo> cells;
  for (;;) {
    auto more = table->next();
    if (!more) return more.error();
    if (!*more) break;
    cells[std::string(table->field(*id))] =
        RawCellInfo{std::string(table->field(*split)), std::string(table->field(*parent)),
                    std::string(table->field(*batch))};
  }
  return cells;
}

// Reads a severson-raw cycles file into per-cell series in file order. `qd_only` reads capacity
// alone (cycles_qd_approx.csv leaves the other columns empty).
Result<std::vector<CellSeries>> read_raw_cycles(const fs::path& path, bool qd_only) {
  auto table = Table::open(path);
  if (!table) return table.error();
  std::vector<std::pair<std::string, std::size_t*>> wanted;
  std::size_t c_id = 0, c_cycle = 0, c_qd = 0, c_ir = 0, c_temp = 0, c_charge = 0;
  wanted = {{"cell_id", &c_id}, {"cycle", &c_cycle}, {"qd_ah", &c_qd}};
  if (!qd_only) {
    wanted.insert(wanted.end(),
                  {{"ir_ohm", &c_ir}, {"tavg_c", &c_temp}, {"chargetime_min", &c_charge}});
  }
  for (auto& [name, index] : wanted) {
    auto column = table->column(name);
    if (!column) return column.error();
    *index = *column;
  }
  std::vector<CellSeries> cells;
  std::map<std::string, std::size_t, std::less<>> index_of;
  for (;;) {
    auto more = table->next();
    if (!more) return more.error();
    if (!*more) break;
    const std::string_view id = table->field(c_id);
    if (id.empty()) return table->error("empty cell_id");
    auto it = index_of.find(id);
    if (it == index_of.end()) {
      it = index_of.emplace(std::string(id), cells.size()).first;
      cells.push_back(CellSeries{std::string(id), "", kSeversonRatedAh, {}, "", {}});
    }
    auto cycle = table->integer(c_cycle);
    auto qd = table->number(c_qd);
    if (!cycle) return cycle.error();
    if (!qd) return qd.error();
    SeriesRow row = soh_only_row(*cycle, *qd / kSeversonRatedAh);
    if (!qd_only) {
      auto ir = table->number(c_ir);
      auto temp = table->number(c_temp);
      auto charge = table->number(c_charge);
      if (!ir) return ir.error();
      if (!temp) return temp.error();
      if (!charge) return charge.error();
      row.ir_ohm = *ir;
      row.temperature_c = *temp;
      row.charge_time_min = *charge;
    }
    cells[it->second].rows.push_back(row);
  }
  return cells;
}

// Appends each continuation cell to its parent's series (cycles renumbered after the parent's
// last one) where the parent is loaded; otherwise keeps it, with the parent's split.
std::vector<CellSeries> join_continuations(std::vector<CellSeries> cells,
                                           const std::map<std::string, RawCellInfo>& info) {
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < cells.size(); ++i)
    index_of[cells[i].cell_id] = i;
  std::vector<bool> merged(cells.size(), false);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    auto it = info.find(cells[i].cell_id);
    if (it == info.end() || it->second.continuation_of.empty()) continue;
    const std::string& parent_id = it->second.continuation_of;
    auto parent = index_of.find(parent_id);
    if (parent == index_of.end()) {
      auto parent_info = info.find(parent_id);
      if (parent_info != info.end()) {
        cells[i].split = parent_info->second.split;
        cells[i].batch = parent_info->second.batch;
      }
      continue;
    }
    CellSeries& target = cells[parent->second];
    const int64_t offset = target.rows.empty() ? 0 : target.rows.back().cycle;
    for (SeriesRow row : cells[i].rows) {
      row.cycle += offset;
      target.rows.push_back(row);
    }
    merged[i] = true;
  }
  std::vector<CellSeries> out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (!merged[i]) out.push_back(std::move(cells[i]));
  }
  return out;
}

bool is_sqlite_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 16 &&
         std::string_view(magic, 16) == std::string_view("SQLite format 3\0", 16);
}

}  // namespace

Result<SeriesSet> read_severson_soh(const fs::path& dir) {
  auto table = Table::open(dir / "soh.csv");
  if (!table) return table.error();
  auto c_series = table->column("series");
  auto c_row = table->column("row");
  auto c_soh = table->column("soh");
  if (!c_series) return c_series.error();
  if (!c_row) return c_row.error();
  if (!c_soh) return c_soh.error();
  SeriesSet set;
  set.source = "severson-soh";
  std::map<std::string, std::size_t, std::less<>> index_of;
  for (;;) {
    auto more = table->next();
    if (!more) return more.error();
    if (!*more) break;
    const std::string_view series = table->field(*c_series);
    if (series.empty()) return table->error("empty series name");
    auto it = index_of.find(series);
    if (it == index_of.end()) {
      it = index_of.emplace(std::string(series), set.cells.size()).first;
      set.cells.push_back(CellSeries{std::string(series), "", kSeversonRatedAh, {}, "", {}});
    }
    CellSeries& cell = set.cells[it->second];
    auto row = table->integer(*c_row);
    auto soh = table->number(*c_soh);
    if (!row) return row.error();
    if (!soh) return soh.error();
    if (*row != static_cast<int64_t>(cell.rows.size())) {
      return table->error("row " + std::to_string(*row) + " of series " + cell.cell_id +
                          " where row " + std::to_string(cell.rows.size()) + " was expected");
    }
    if (!std::isfinite(*soh)) return table->error("SOH must be a finite number");
    cell.rows.push_back(soh_only_row(*row + 1, *soh));
  }
  auto segments = read_segments(dir / "segments.json");
  if (!segments) return segments.error();
  for (const Segment& segment : *segments) {
    auto it = index_of.find(segment.series);
    if (it == index_of.end()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "segments.json names series " + segment.series + ", not in soh.csv");
    }
    if (segment.target_end > static_cast<int64_t>(set.cells[it->second].rows.size())) {
      return make_error(
          ErrorCode::kInvalidArgument,
          "segments.json: a segment of " + segment.series + " ends after the series' last row");
    }
  }
  set.segments = std::move(*segments);
  return set;
}

Result<SeriesSet> read_severson_raw(const fs::path& dir, const RawReadOptions& options) {
  auto info = read_raw_cells(dir / "cells.csv");
  if (!info) return info.error();
  auto cells = read_raw_cycles(dir / "cycles.csv", false);
  if (!cells) return cells.error();
  if (options.include_approx) {
    auto approx = read_raw_cycles(dir / "cycles_qd_approx.csv", true);
    if (!approx) return approx.error();
    std::set<std::string> exact;
    for (const auto& cell : *cells)
      exact.insert(cell.cell_id);
    for (auto& cell : *approx) {
      if (!exact.count(cell.cell_id)) cells->push_back(std::move(cell));
    }
  }
  for (auto& cell : *cells) {
    auto it = info->find(cell.cell_id);
    if (it == info->end()) continue;
    cell.split = it->second.split;
    cell.batch = it->second.batch;
  }
  SeriesSet set;
  set.source = "severson-raw";
  const std::size_t loaded = cells->size();
  set.cells = join_continuations(std::move(*cells), *info);
  set.continuations_joined = static_cast<int64_t>(loaded - set.cells.size());
  return set;
}

Result<SeriesSet> read_database(const fs::path& path) {
  storage::OpenOptions open_options;
  open_options.create_if_missing = false;
  open_options.read_only = true;
  auto db = storage::Database::open(path, open_options);
  if (!db) return db.error();
  auto summaries = db->cells();
  if (!summaries) return summaries.error();
  SeriesSet set;
  set.source = "database";
  for (const auto& summary : *summaries) {
    const double rated_ah = summary.info.rated_capacity_ah;
    if (!(rated_ah > 0.0) || summary.cycles == 0) continue;
    auto records = db->cycles_of(summary.info.cell_id);
    if (!records) return records.error();
    CellSeries cell{summary.info.cell_id, "", rated_ah, {}, "", {}};
    cell.rows.reserve(records->size());
    for (const auto& r : *records) {
      cell.rows.push_back(SeriesRow{
          r.cycle, r.discharge_capacity_ah / rated_ah, r.internal_resistance_ohm.value_or(kNaN),
          r.temperature_avg_c.value_or(kNaN), r.charge_time_min.value_or(kNaN)});
    }
    set.cells.push_back(std::move(cell));
  }
  return set;
}

Result<SeriesSet> read_series(const fs::path& path, const RawReadOptions& raw_options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return make_error(ErrorCode::kNotFound, "no such file or folder: " + path.string());
  }
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "soh.csv", ec)) return read_severson_soh(path);
    if (fs::exists(path / "cycles.csv", ec)) return read_severson_raw(path, raw_options);
    return make_error(ErrorCode::kUnsupported,
                      path.string() +
                          " is a folder with neither soh.csv (severson-soh) nor cycles.csv "
                          "(severson-raw)");
  }
  if (is_sqlite_file(path)) return read_database(path);
  return make_error(ErrorCode::kUnsupported,
                    path.string() +
                        " is neither a data folder (severson-soh, severson-raw) nor an SQLite "
                        "database");
}

int64_t find_cell(const SeriesSet& set, const std::string& cell_id) {
  for (std::size_t i = 0; i < set.cells.size(); ++i) {
    if (set.cells[i].cell_id == cell_id) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace cyclecast::pipeline
