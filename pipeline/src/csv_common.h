// Private to pipeline/: what the files of the CSV import share. csv_layout.cc reads a cycles
// file's header into a Layout, csv_rows.cc parses the rows under it, cell_catalog.cc reads the
// cells file, csv_import.cc writes an import to the database. Their messages all name a place as
// "<source>:<line>: " and quote input the same way, so those helpers live here once.
// The formats and their rules are documented in docs/csv-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/pipeline/csv_import.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline::csv {

// `value` as printf's %g writes it (limits in messages: "2.2", not "2.200000").
std::string format_number(double value);

// `text` in single quotes, cut after 40 bytes so that a runaway field cannot flood a message, with
// control characters written as \xNN.
std::string quote_for_message(std::string_view text);

// "<source>:<line>", the place every message about a row starts with.
std::string location(const std::string& source, std::uint32_t line);

// kParse with the message "<source>:<line>: <what>".
Error parse_error(const std::string& source, std::uint32_t line, const std::string& what);

// Empty when `id` is a usable cell id (cyclecast::check_id, the rule the API and MQTT topics
// share), else what is wrong with it.
std::string check_cell_id(std::string_view id);

// Refuses a header row that is not one: empty, split by ';' or tabs, or holding data. Both the
// cycles and the cells file need a header, and a wrong one is a whole-file error.
Result<void> check_header_shape(std::span<const std::string_view> fields, std::string_view raw,
                                const std::string& source);

// What a column of a cycles file means for a cycle record.
enum class Column {
  kCellId,
  kBatch,
  kCycle,
  kQd,
  kQc,
  kIr,
  kTmax,
  kTavg,
  kTmin,
  kChargeTime,
  kMeasuredAt,
  kIgnored,  // a known column whose value cyclecast does not store
};

// The header names; a header is refused when it is not one (delimiter, data, unknown column).
struct Layout {
  CsvFormat format = CsvFormat::kAuto;
  std::vector<Column> columns;     // meaning of each position
  std::vector<std::string> names;  // header text of each position, for messages
};

// The layout of a cycles file's header row (`fields`, whose text is `raw`). With kAuto the
// format is recognised from the column names.
Result<Layout> read_layout(std::span<const std::string_view> fields, std::string_view raw,
                           CsvFormat requested, const std::string& source);

// A file's bytes. The buffer is left uninitialized before reading: zero-filling a large file
// first would cost a pass over it for nothing.
struct FileBytes {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;
  std::string_view view() const { return {data.get(), size}; }
};

// The longest line a CSV file may hold. A cycle record is under 200 bytes and a metadata row a
// few KiB; without a limit an endless line (/dev/zero, a binary file) was read until memory ran
// out.
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

// kIo naming the path when it is a directory or cannot be opened or read; kParse naming the
// line when one is longer than kMaxLineBytes (its line break not counted), found while reading.
Result<FileBytes> read_whole_file(const std::filesystem::path& path);

}  // namespace cyclecast::pipeline::csv
